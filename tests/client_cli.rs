//! `meridian ctl` data, keyspace, region and endpoints commands, and a short `meridian bench`,
//! run as processes against one region of three real nodes: each command's output and exit
//! code (0 ok, 1 ran but failed, 2 usage, unreachable or HTTP error). Nothing here measures
//! performance: the bench runs for a second or two and only its report's shape and its
//! counter check are looked at.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::procs::{http_get_json, meridian_bin, Cluster, ClusterSpec};
use serde_json::{json, Value};

/// Runs `meridian ARGS`: (exit code, stdout, stderr).
fn meridian(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(meridian_bin()).args(args).output().expect("run meridian");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs `meridian ctl --endpoints-file FILE ARGS`.
fn ctl(file: &Path, args: &[&str]) -> (i32, String, String) {
    let file = file.to_str().expect("utf-8 path");
    let all: Vec<&str> = ["ctl", "--endpoints-file", file].into_iter().chain(args.iter().copied()).collect();
    meridian(&all)
}

/// Runs a ctl command with `--output json`, expecting exit code `code`; its JSON document.
fn ctl_json(file: &Path, args: &[&str], code: i32) -> Value {
    let all: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let (got, out, err) = ctl(file, &all);
    assert_eq!(got, code, "ctl {args:?}: stdout {out}\nstderr {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl {args:?} printed no JSON ({e}): {out}\n{err}"))
}

fn expect_code(file: &Path, args: &[&str], code: i32) -> (String, String) {
    let (got, out, err) = ctl(file, args);
    assert_eq!(got, code, "ctl {args:?}: stdout {out}\nstderr {err}");
    (out, err)
}

#[test]
fn ctl_data_commands_and_a_short_bench_against_a_real_region() {
    let cluster = Cluster::start(ClusterSpec::default());
    let file = cluster.dir.path().join("endpoints.json");
    let endpoints = json!({"regions": [{
        "name": "test",
        "nodes": cluster.nodes.iter().map(|p| json!({
            "id": p.name, "http": p.http(), "rpc": "", "wan": null, "pid": 0, "data_dir": "",
        })).collect::<Vec<_>>(),
    }]});
    std::fs::write(&file, endpoints.to_string()).expect("endpoints file");
    let f = file.as_path();

    // Registers: put, get (table and JSON), absent keys, delete.
    let put = ctl_json(f, &["put", "greeting", "hello", "--ttl", "3600"], 0);
    assert_eq!((put["status"].as_str(), put["region"].as_str()), (Some("ok"), Some("test")), "{put}");
    let version = put["version"].as_str().expect("version").to_owned();
    let got = ctl_json(f, &["get", "greeting"], 0);
    assert_eq!(got["value"], "hello", "{got}");
    assert_eq!(got["version"].as_str(), Some(version.as_str()));
    assert!(got["expires_at"].as_u64().is_some(), "the TTL gives an expiry: {got}");
    let (out, _) = expect_code(f, &["get", "greeting"], 0);
    assert!(out.contains("hello") && out.contains(&version), "{out}");
    let absent = ctl_json(f, &["get", "nobody"], 1);
    assert_eq!(absent["found"], false);
    let (_, err) = expect_code(f, &["get", "nobody"], 1);
    assert!(err.contains("no value"), "{err}");
    expect_code(f, &["del", "greeting"], 0);
    expect_code(f, &["get", "greeting"], 1);

    // Counters: increments (negative too) and the value the API reads.
    expect_code(f, &["incr", "page"], 0);
    expect_code(f, &["incr", "page", "5"], 0);
    let inc = ctl_json(f, &["incr", "page", "-2"], 0);
    assert_eq!(inc["delta"], -2);
    let counter = http_get_json(&cluster.nodes[1].url("/api/v1/counters/page")).expect("counter");
    assert_eq!(counter["value"], 4);

    // Sets.
    expect_code(f, &["sadd", "tags", "a", "b", "c"], 0);
    expect_code(f, &["srem", "tags", "b"], 0);
    let members = ctl_json(f, &["smembers", "tags"], 0);
    assert_eq!(members["members"], json!(["a", "c"]));
    let empty = ctl_json(f, &["smembers", "untouched"], 0);
    assert_eq!(empty["members"], json!([]));

    // Keyspaces: create (idempotent), a conflicting type, list, use.
    let created = ctl_json(f, &["keyspace", "create", "likes", "--type", "counter"], 0);
    assert_eq!(created["regions"][0]["created"], true, "{created}");
    let again = ctl_json(f, &["keyspace", "create", "likes", "--type", "counter"], 0);
    assert_eq!(again["regions"][0]["created"], false, "{again}");
    let (_, err) = expect_code(f, &["keyspace", "create", "likes", "--type", "set"], 2);
    assert!(err.contains("keyspace_exists"), "{err}");
    let list = ctl_json(f, &["keyspace", "list"], 0);
    assert!(
        list["keyspaces"].as_array().expect("list").iter().any(|k| k["name"] == "likes" && k["type"] == "counter"),
        "{list}"
    );
    expect_code(f, &["incr", "post:1", "--keyspace", "likes"], 0);
    let (_, err) = expect_code(f, &["get", "post:1", "--keyspace", "likes"], 2);
    assert!(err.contains("wrong_type"), "a register read of a counter keyspace: {err}");

    // Endpoints: the replicas of a key, with the token the nodes use.
    let ep = ctl_json(f, &["endpoints", "greeting"], 0);
    assert_eq!(ep["token"].as_u64(), Some(meridian_local::token_of("default", b"greeting")));
    let mut ids: Vec<&str> =
        ep["replicas"].as_array().expect("replicas").iter().filter_map(|r| r["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["node1", "node2", "node3"]);

    // Regions: a single region has no peers; fencing it refuses data, unfencing restores it.
    let regions = ctl_json(f, &["region", "list"], 0);
    assert_eq!(regions["regions"][0]["answer"]["region"], "test", "{regions}");
    expect_code(f, &["region", "lag"], 0);
    expect_code(f, &["region", "fence", "test"], 0);
    let (_, err) = expect_code(f, &["put", "k", "v"], 2);
    assert!(err.contains("region_fenced"), "{err}");
    let (_, err) = expect_code(f, &["region", "fence", "mars"], 2);
    assert!(err.contains("mars"), "{err}");
    expect_code(f, &["region", "unfence", "test"], 0);
    let start = Instant::now();
    while ctl(f, &["put", "k", "v"]).0 != 0 {
        assert!(start.elapsed() < Duration::from_secs(15), "writes resume after unfence");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Through one node, and the usage and unreachable errors.
    let node = cluster.nodes[2].http().to_owned();
    let (code, out, err) = meridian(&["ctl", "--node", &node, "get", "k", "--output", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"value\": \"v\""), "{out}");
    assert_eq!(meridian(&["ctl", "--node", &node, "put", "only-a-key"]).0, 2, "a missing value is a usage error");
    assert_eq!(meridian(&["ctl", "--node", &node, "incr", "c", "x"]).0, 2, "a delta must be a number");
    let (code, _, err) = meridian(&["ctl", "--node", "127.0.0.1:1", "get", "k"]);
    assert_eq!(code, 2, "an unreachable node: {err}");
    assert!(err.contains("connect_failed"), "{err}");

    // bench: a counter run whose final value is read back from the region, and a YCSB A run.
    let f = file.to_str().expect("utf-8");
    let (code, out, err) = meridian(&[
        "bench",
        "--endpoints-file",
        f,
        "--workload",
        "counter",
        "--duration",
        "2s",
        "--rate",
        "50",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("bench JSON");
    let c = &report["counter"];
    assert_eq!(c["converged"], true, "{c}");
    assert_eq!(c["regions"][0]["value"], c["expected_min"], "no increment was indeterminate: {c}");
    assert_eq!(report["generator"]["mode"], "open");
    assert!(report["operations"].as_u64().is_some_and(|n| n > 0), "{report}");
    let (code, out, err) = meridian(&[
        "bench",
        "--endpoints-file",
        f,
        "--workload",
        "a",
        "--duration",
        "1s",
        "--keys",
        "20",
        "--preload",
        "20",
        "--concurrency",
        "2",
        "--distribution",
        "zipfian",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("bench JSON");
    assert_eq!(report["generator"]["mode"], "closed");
    assert_eq!(report["latency_ms"]["count"], report["operations"], "every operation is in the histogram");
    assert_eq!(report["reads_absent"], 0, "the preload wrote every key");
    for field in ["p50", "p95", "p99", "p999", "max"] {
        assert!(report["latency_ms"][field].as_f64().is_some(), "{field} in {report}");
    }
    let (code, _, err) = meridian(&["bench", "--endpoints-file", f, "--region", "mars", "--duration", "1s"]);
    assert_eq!(code, 2, "an unknown region: {err}");
}
