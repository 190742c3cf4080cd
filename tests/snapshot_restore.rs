//! Real processes (three `meridian server`s, RocksDB, RF 3): `meridian ctl snapshot` writes a
//! consistent snapshot of a node, `meridian restore` refuses what it must (a running node,
//! another node's config, a snapshot older than the tombstone grace) and changes nothing
//! then, and a restored node (1) holds exactly the state of the snapshot's moment, (2) does not
//! lose counter increments it makes before it caught up (its own counter slot in the copy is
//! behind what the other replicas hold), and (3) converges with its replicas afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::procs::{http, http_get_json, meridian_bin, Cluster, ClusterSpec, NodeProc};
use serde_json::Value;

fn put_all(node: &NodeProc, key: &str, value: &str) {
    let (status, body) = http(
        "PUT",
        &node.url(&format!("/api/v1/keys/{key}")),
        &[("X-Consistency-Level", "ALL")],
        Some(value.as_bytes()),
    );
    assert_eq!(status, 200, "put {key}: {body}");
}

fn delete_all(node: &NodeProc, key: &str) {
    let (status, body) =
        http("DELETE", &node.url(&format!("/api/v1/keys/{key}")), &[("X-Consistency-Level", "ALL")], None);
    assert!(status == 200 || status == 204, "delete {key}: {status} {body}");
}

fn incr(node: &NodeProc, delta: i64, level: &str) {
    let body = format!("{{\"delta\": {delta}}}");
    let (status, answer) = http(
        "POST",
        &node.url("/api/v1/counters/hits"),
        &[("Content-Type", "application/json"), ("X-Consistency-Level", level)],
        Some(body.as_bytes()),
    );
    assert_eq!(status, 200, "incr at {level}: {answer}");
}

/// The key's value read at ONE on `node` (only what that node holds), `None` if absent.
fn local_value(node: &NodeProc, key: &str) -> Option<String> {
    let url = node.url(&format!("/api/v1/keys/{key}"));
    let res = ureq::get(&url).set("X-Consistency-Level", "ONE").timeout(Duration::from_secs(5)).call();
    match res {
        Ok(r) => {
            let body: Value = r.into_json().expect("json");
            let b64 = body["value"].as_str().expect("an lww value");
            Some(String::from_utf8(STANDARD.decode(b64).expect("base64")).expect("utf-8"))
        }
        Err(ureq::Error::Status(404, _)) => None,
        Err(e) => panic!("read {key}: {e}"),
    }
}

fn local_counter(node: &NodeProc) -> i64 {
    let url = node.url("/api/v1/counters/hits");
    let r = ureq::get(&url).set("X-Consistency-Level", "ONE").timeout(Duration::from_secs(5)).call().expect("counter");
    r.into_json::<Value>().expect("json")["value"].as_i64().expect("value")
}

fn digest(node: &NodeProc) -> String {
    http_get_json(&node.url("/api/v1/cluster/digest")).expect("digest")["root"].as_str().expect("root").to_owned()
}

fn metrics_of(node: &NodeProc) -> String {
    let text = ureq::get(&node.url("/metrics")).call().map(|r| r.into_string().unwrap_or_default()).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("merges") || l.contains("horizon") || l.contains("gc_"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn meridian(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(meridian_bin()).args(args).output().expect("run meridian");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn restore(config: &Path, snapshot: &Path) -> (i32, String, String) {
    meridian(&["restore", "--config", config.to_str().unwrap(), "--snapshot", snapshot.to_str().unwrap()])
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_node_restored_from_a_snapshot_holds_its_moment_loses_no_increment_and_catches_up() {
    let mut cluster = Cluster::start(ClusterSpec::default());
    let n1 = &cluster.nodes[0];
    for i in 0..60 {
        put_all(n1, &format!("k{i}"), &format!("v{i}"));
    }
    for _ in 0..10 {
        incr(n1, 10, "ALL");
    }

    // The snapshot, through the CLI.
    let (code, out, err) = meridian(&["ctl", "--node", n1.http(), "--output", "json", "snapshot", "--name", "before"]);
    assert_eq!(code, 0, "ctl snapshot: {out}{err}");
    let snap: Value = serde_json::from_str(&out).expect("snapshot JSON");
    let path = PathBuf::from(snap["path"].as_str().expect("path"));
    assert_eq!(snap["node"], "node1");
    assert!(snap["records"].as_u64().unwrap() >= 61, "{snap}");
    assert!(path.join("meridian-snapshot.json").exists() && path.join("CURRENT").exists(), "{}", path.display());
    // Names are checked, and a taken name is refused without touching the existing snapshot.
    let (code, _, err) = meridian(&["ctl", "--node", n1.http(), "snapshot", "--name", "before"]);
    assert_ne!(code, 0);
    assert!(err.contains("snapshot_exists") || err.contains("already exists"), "{err}");
    let (status, body) = http(
        "POST",
        &n1.url("/api/v1/cluster/snapshot"),
        &[("Content-Type", "application/json")],
        Some(br#"{"name": "../escape"}"#),
    );
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) =
        http("POST", &n1.url("/api/v1/cluster/snapshot"), &[("Content-Type", "application/json")], Some(b"{\"nam"));
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed_json")), "{body}");

    // After the snapshot: more keys, deletes, and 50 more increments led by node1.
    for i in 60..120 {
        put_all(n1, &format!("k{i}"), &format!("v{i}"));
    }
    for i in 0..10 {
        delete_all(n1, &format!("k{i}"));
    }
    for _ in 0..5 {
        incr(n1, 10, "ALL");
    }
    assert_eq!(local_counter(n1), 150);

    // Refusals change nothing.
    let data_parent = cluster.nodes[0].dir.clone();
    let before = dir_names(&data_parent);
    let (code, _, err) = restore(&cluster.nodes[0].config, &path);
    assert_ne!(code, 0);
    assert!(err.contains("running"), "a running node is refused: {err}");
    let (code, _, err) = restore(&cluster.nodes[1].config, &path);
    assert_ne!(code, 0);
    assert!(err.contains("can only restore that node"), "another node's config is refused: {err}");
    let manifest = path.join("meridian-snapshot.json");
    let original = std::fs::read_to_string(&manifest).expect("manifest");
    let mut old: Value = serde_json::from_str(&original).expect("manifest JSON");
    old["created_ms"] = Value::from(old["created_ms"].as_u64().unwrap() - 11 * 24 * 3600 * 1000);
    std::fs::write(&manifest, old.to_string()).expect("age the manifest");
    for p in cluster.nodes.iter_mut() {
        p.terminate(Duration::from_secs(20));
    }
    let (code, _, err) = restore(&cluster.nodes[0].config, &path);
    assert_ne!(code, 0);
    assert!(err.contains("tombstone grace"), "a snapshot older than gc_grace is refused: {err}");
    std::fs::write(&manifest, original).expect("restore the manifest");
    assert_eq!(dir_names(&data_parent), before, "refused restores changed nothing");

    // The restore, with every node down: node1 comes back alone first.
    let (code, out, err) = restore(&cluster.nodes[0].config, &path);
    assert_eq!(code, 0, "restore: {out}{err}");
    assert!(out.contains("restored node node1"), "{out}");
    assert!(dir_names(&data_parent).iter().any(|n| n.starts_with("data.pre-restore-")), "the old data is kept");
    cluster.nodes[0].spawn();
    cluster.nodes[0].wait_ready(Duration::from_secs(60));
    let n1 = &cluster.nodes[0];
    // (1) The snapshot's moment: keys written after it are absent, keys deleted after it present.
    assert_eq!(local_value(n1, "k0").as_deref(), Some("v0"));
    assert_eq!(local_value(n1, "k59").as_deref(), Some("v59"));
    assert_eq!(local_value(n1, "k60"), None);
    assert_eq!(local_counter(n1), 100);
    // (2) Increments node1 leads before it has caught up: its copy of its own counter slot
    // says 100 where the other replicas hold 150. Extending that slot would give 125, which
    // the max-merge with 150 swallows; a new slot keeps them.
    for _ in 0..5 {
        incr(n1, 5, "ONE");
    }
    assert_eq!(local_counter(n1), 125);

    // (3) The replicas come back; node1 catches up and they converge.
    for i in 1..3 {
        cluster.nodes[i].spawn();
    }
    for i in 1..3 {
        cluster.nodes[i].wait_ready(Duration::from_secs(60));
    }
    cluster.wait_until(Duration::from_secs(60), "every node sees every node healthy", |c| {
        c.nodes.iter().all(|p| c.healthy_seen_by(p) == Some(3))
    });
    // Every node runs a pass: a complete pass also lets a node collect the tombstones every
    // replica has, so the roots agree once each has run one.
    let start = Instant::now();
    loop {
        for p in &cluster.nodes {
            let (status, body) =
                http("POST", &p.url("/api/v1/cluster/repair"), &[("Content-Type", "application/json")], Some(b"{}"));
            assert_eq!(status, 202, "{body}");
            while http_get_json(&p.url("/api/v1/cluster/repair")).expect("repair")["state"] == "running" {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let roots: Vec<String> = cluster.nodes.iter().map(digest).collect();
        if roots.iter().all(|r| *r == roots[0]) {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let counters: Vec<i64> = cluster.nodes.iter().map(local_counter).collect();
            let repair = http_get_json(&cluster.nodes[0].url("/api/v1/cluster/repair"));
            let missing: Vec<(usize, String)> = (0..120)
                .flat_map(|i| cluster.nodes.iter().enumerate().map(move |(n, p)| (n, i, p)))
                .filter(|(_, i, p)| local_value(p, &format!("k{i}")).is_some() != (*i >= 10))
                .map(|(n, i, _)| (n, format!("k{i}")))
                .collect();
            panic!("replicas did not converge: {roots:?}; counters {counters:?}; wrong keys {missing:?}; repair {repair:?}\n{}", metrics_of(&cluster.nodes[0]));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for p in &cluster.nodes {
        assert_eq!(local_counter(p), 175, "{}: every acknowledged increment counted once", p.name);
        assert_eq!(local_value(p, "k0"), None, "{}: deleted after the snapshot, stays deleted", p.name);
        assert_eq!(local_value(p, "k10").as_deref(), Some("v10"), "{}", p.name);
        assert_eq!(local_value(p, "k119").as_deref(), Some("v119"), "{}: written after the snapshot", p.name);
    }
    // A data directory replaced out of band (a volume snapshot) is marked with --in-place: the
    // node then takes the same precautions (its first pass is the restore's).
    let (code, _, err) = meridian(&["restore", "--config", cluster.nodes[2].config.to_str().unwrap(), "--in-place"]);
    assert_ne!(code, 0);
    assert!(err.contains("running"), "{err}");
    cluster.nodes[2].terminate(Duration::from_secs(20));
    let (code, out, err) = meridian(&["restore", "--config", cluster.nodes[2].config.to_str().unwrap(), "--in-place"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("marked"), "{out}");
    cluster.nodes[2].spawn();
    cluster.nodes[2].wait_ready(Duration::from_secs(60));
    let repair = http_get_json(&cluster.nodes[2].url("/api/v1/cluster/repair")).expect("repair");
    assert_eq!(repair["trigger"], "restore", "{repair}");
    println!(
        "snapshot {}: {} files, {} bytes; converged {:.2} s after the replicas returned",
        snap["name"],
        snap["files"],
        snap["bytes"],
        start.elapsed().as_secs_f64()
    );
}
