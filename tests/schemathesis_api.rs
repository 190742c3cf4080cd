//! Schemathesis (property-based API testing from the OpenAPI document) against a real node:
//! every operation of `/openapi.json` gets generated requests, valid and invalid (examples,
//! boundary coverage, random fuzzing, stateful sequences), bounded by `--max-examples` and a
//! fixed seed; the check is that no request gets a server error (5xx) and the node stays
//! healthy. Schemathesis comes from PyPI into `$MERIDIAN_CACHE/venv-schemathesis` (created on
//! the first run, pinned version; later runs reuse it).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::procs::{http_get_json, Cluster, ClusterSpec};

const VERSION: &str = "4.32.5";

fn schemathesis() -> PathBuf {
    let cache = std::env::var("MERIDIAN_CACHE").unwrap_or_else(|_| "/var/cache/meridian".into());
    let venv = PathBuf::from(cache).join("venv-schemathesis");
    let bin = venv.join("bin/schemathesis");
    let ok = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(VERSION));
    if !ok {
        let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().expect("python3 -m venv");
        assert!(status.success(), "creating {}", venv.display());
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", &format!("schemathesis=={VERSION}")])
            .status()
            .expect("pip install schemathesis");
        assert!(status.success(), "pip install schemathesis=={VERSION} (needs PyPI)");
    }
    bin
}

#[test]
fn schemathesis_finds_no_server_error() {
    let bin = schemathesis();
    let cluster = Cluster::start(ClusterSpec { nodes: 1, replication_factor: 1, ..ClusterSpec::default() });
    let node = &cluster.nodes[0];
    let started = Instant::now();
    let out = Command::new(&bin)
        .args(["run", &node.url("/openapi.json")])
        .args(["--checks", "not_a_server_error", "--max-examples", "15", "--seed", "20261202", "--no-color"])
        .args(["--request-timeout", "10", "--max-failures", "20"])
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    println!("schemathesis ({:.1} s):\n{}", started.elapsed().as_secs_f64(), tail.join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found server errors (or could not run):\n{stdout}\n{}\nnode log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log_tail(30)
    );
    assert!(stdout.contains("generated"), "schemathesis ran test cases: {stdout}");
    let health = http_get_json(&node.url("/healthz")).expect("healthz after the run");
    assert_eq!(health["status"], "ok", "the node is healthy after the run: {health}");
}
