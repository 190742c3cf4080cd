//! Real processes (three `meridian server`s, RocksDB, mutual TLS): anti-entropy restores a node
//! that missed writes while it was down (its hints expired), and a node whose data directory
//! was wiped re-joins and streams back every key it should hold. Convergence is checked with
//! the nodes' Merkle roots (`GET /api/v1/cluster/digest`), and the bytes moved are reported
//! against the bytes restored (recorded in docs/benchmarks.md).

mod common;

use std::time::{Duration, Instant};

use common::procs::{http, http_get_json, Cluster, ClusterSpec, NodeProc};
use serde_json::Value;

fn put(node: &NodeProc, key: &str, value: &[u8]) -> u16 {
    http("PUT", &node.url(&format!("/api/v1/keys/{key}")), &[("X-Consistency-Level", "QUORUM")], Some(value)).0
}

fn digest(node: &NodeProc) -> (String, u64) {
    let v = http_get_json(&node.url("/api/v1/cluster/digest")).expect("digest");
    (v["root"].as_str().expect("root").to_owned(), v["records"].as_u64().expect("records"))
}

/// Starts a repair on `node` and waits for its end; returns the final status.
fn repair(node: &NodeProc) -> Value {
    let (status, body) =
        http("POST", &node.url("/api/v1/cluster/repair"), &[("Content-Type", "application/json")], Some(b"{}"));
    assert_eq!(status, 202, "{body}");
    let start = Instant::now();
    loop {
        let st = http_get_json(&node.url("/api/v1/cluster/repair")).expect("repair status");
        if st["state"] != "running" {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "repair still running after 120 s: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn value(i: usize, round: u8) -> Vec<u8> {
    let mut v = vec![round; 1024];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

#[test]
fn anti_entropy_restores_a_node_that_missed_writes_and_a_wiped_node_rejoins() {
    let keys: usize = std::env::var("MERIDIAN_HEAL_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let mut cluster = Cluster::start(ClusterSpec { hint_window_secs: 1, ..ClusterSpec::default() });
    for i in 0..keys {
        assert_eq!(put(&cluster.nodes[i % 3], &format!("k{i}"), &value(i, 1)), 200);
    }

    // Node 3 is down while a third of the keys are overwritten and as many are added.
    cluster.nodes[2].terminate(Duration::from_secs(20));
    for i in (0..keys).step_by(3).chain(keys..keys + keys / 3) {
        assert_eq!(put(&cluster.nodes[i % 2], &format!("k{i}"), &value(i, 2)), 200, "write k{i} with node3 down");
    }
    // Past the hint window: the hints are dropped, only anti-entropy can repair node 3.
    std::thread::sleep(Duration::from_secs(3));
    cluster.nodes[2].spawn();
    cluster.nodes[2].wait_ready(Duration::from_secs(60));
    cluster.wait_until(Duration::from_secs(60), "node3 healthy everywhere", |c| {
        (0..3).all(|i| c.status_seen_by(&c.nodes[i], "node3").as_deref() == Some("healthy"))
    });
    let hints = http_get_json(&cluster.nodes[0].url("/api/v1/cluster/hints")).expect("hints");
    let dropped = hints["dropped"].as_u64().unwrap_or(0)
        + http_get_json(&cluster.nodes[1].url("/api/v1/cluster/hints")).expect("hints")["dropped"]
            .as_u64()
            .unwrap_or(0);
    assert!(dropped > 0, "hints past the window were dropped: {hints}");
    assert_ne!(digest(&cluster.nodes[2]), digest(&cluster.nodes[0]), "node3 is behind before the repair");

    let t = Instant::now();
    let st = repair(&cluster.nodes[2]);
    let took = t.elapsed();
    assert_eq!(st["state"], "done", "{st}");
    let reference = digest(&cluster.nodes[0]);
    for i in 0..3 {
        assert_eq!(digest(&cluster.nodes[i]), reference, "node{} converged", i + 1);
    }
    let (moved, restored, repaired) = (
        st["bytes_transferred"].as_u64().unwrap(),
        st["bytes_restored"].as_u64().unwrap(),
        st["keys_repaired"].as_u64().unwrap(),
    );
    let expected = (keys / 3 + keys / 3) as u64; // overwritten + added while node3 was down
    assert!(repaired >= expected, "every missed key was exchanged: {repaired} of {expected}");
    println!(
        "anti-entropy: {repaired} keys repaired ({expected} missed) of {} stored; {moved} bytes transferred for {restored} \
         bytes restored ({:.2}x) in {:.2} s",
        reference.1,
        moved as f64 / restored.max(1) as f64,
        took.as_secs_f64()
    );

    // Node 2 loses its disk: stopped, wiped, restarted: it joins and streams its ranges back.
    cluster.nodes[1].terminate(Duration::from_secs(20));
    std::fs::remove_dir_all(cluster.nodes[1].dir.join("data")).expect("wipe node2");
    let t = Instant::now();
    cluster.nodes[1].spawn();
    cluster.nodes[1].wait_ready(Duration::from_secs(60));
    cluster.wait_until(Duration::from_secs(120), "the wiped node2 joined and is healthy everywhere", |c| {
        (0..3).all(|i| c.status_seen_by(&c.nodes[i], "node2").as_deref() == Some("healthy"))
    });
    let took = t.elapsed();
    assert_eq!(digest(&cluster.nodes[1]), reference, "the wiped node holds every key again");
    let status = cluster.cluster_status(&cluster.nodes[1]).expect("status");
    let streamed = status["streaming"]["bytes"].as_u64().unwrap_or(0);
    let streamed_keys = status["streaming"]["keys"].as_u64().unwrap_or(0);
    let repair_bytes = status["repair"]["bytes_transferred"].as_u64().unwrap_or(0);
    assert_eq!(status["streaming"]["state"], "done", "{status}");
    println!(
        "wiped node: re-joined in {:.2} s; streamed {streamed_keys} records, {streamed} bytes, then anti-entropy \
         moved {repair_bytes} bytes; {} records restored",
        took.as_secs_f64(),
        reference.1
    );
}
