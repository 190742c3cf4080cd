//! Five real `meridian server` processes on loopback (mutual TLS with a development CA,
//! RocksDB, OS-chosen ports): kill -9 one of them, QUORUM reads and writes go on; the others
//! see it down; restarted, it is seen up again and serves its data.
//!
//! Prints the failure-detection and recovery times it measured (recorded in
//! docs/benchmarks.md). They are reported, never asserted against a speed.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::procs::{http, Cluster, ClusterSpec};

fn put(node: &common::procs::NodeProc, key: &str, value: &str, level: &str) -> u16 {
    let (status, _) = http(
        "PUT",
        &node.url(&format!("/api/v1/keys/{key}")),
        &[("Content-Type", "application/octet-stream"), ("X-Consistency-Level", level)],
        Some(value.as_bytes()),
    );
    status
}

fn get(node: &common::procs::NodeProc, key: &str, level: &str) -> (u16, Option<String>) {
    use base64::Engine as _;
    let (status, body) =
        http("GET", &node.url(&format!("/api/v1/keys/{key}")), &[("X-Consistency-Level", level)], None);
    let value = body["value"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    (status, value)
}

#[test]
fn kill_nine_one_of_five_quorum_continues_and_the_node_comes_back() {
    let t0 = Instant::now();
    let mut cluster = Cluster::start(ClusterSpec { nodes: 5, ..ClusterSpec::default() });
    println!("cluster of 5 started in {:.2} s", t0.elapsed().as_secs_f64());
    let mut acked: BTreeMap<String, String> = BTreeMap::new();

    // Before the fault: writes through every node.
    for i in 0..60 {
        let key = format!("k{i}");
        let value = format!("v{i}-a");
        let node = &cluster.nodes[i % 5];
        assert_eq!(put(node, &key, &value, "QUORUM"), 200, "write {key} via {}", node.name);
        acked.insert(key, value);
    }

    // kill -9 node3.
    let victim = 2;
    let killed_at = Instant::now();
    cluster.nodes[victim].kill9();
    let victim_name = cluster.nodes[victim].name.clone();

    // QUORUM keeps working through the survivors, before and after the failure detector notices.
    let mut errors = 0;
    for i in 0..60 {
        let key = format!("k{i}");
        let value = format!("v{i}-b");
        let node = &cluster.nodes[[0, 1, 3, 4][i % 4]];
        let status = put(node, &key, &value, "QUORUM");
        if status == 200 {
            acked.insert(key, value);
        } else {
            errors += 1;
        }
    }
    assert_eq!(errors, 0, "QUORUM writes must succeed with 4 of 5 nodes up (RF 3: at most one replica lost)");

    let survivors: Vec<usize> = (0..5).filter(|i| *i != victim).collect();
    let detected = cluster.wait_until(Duration::from_secs(60), "every survivor sees the killed node down", |c| {
        survivors.iter().all(|&i| c.status_seen_by(&c.nodes[i], &victim_name).as_deref() == Some("down"))
    });
    let detection = killed_at.elapsed();

    for (key, value) in &acked {
        let node = &cluster.nodes[survivors[key.len() % 4]];
        let (status, got) = get(node, key, "QUORUM");
        assert_eq!(status, 200, "read {key} via {}", node.name);
        assert_eq!(got.as_deref(), Some(value.as_str()), "acknowledged write of {key}");
    }

    // Restart it on the same data directory.
    let restarted_at = Instant::now();
    cluster.nodes[victim].spawn();
    cluster.nodes[victim].wait_ready(Duration::from_secs(60));
    cluster.wait_until(Duration::from_secs(60), "every node sees the restarted node up", |c| {
        (0..5).all(|i| c.status_seen_by(&c.nodes[i], &victim_name).as_deref() == Some("healthy"))
    });
    assert_eq!(
        cluster.live_seen_by(&cluster.nodes[victim]),
        Some(5),
        "a node reports ready only once it sees its live peers live"
    );
    let recovery = restarted_at.elapsed();

    // It serves reads again, and every acknowledged write is still there at QUORUM.
    for (key, value) in &acked {
        let (status, got) = get(&cluster.nodes[victim], key, "QUORUM");
        assert_eq!(status, 200);
        assert_eq!(got.as_deref(), Some(value.as_str()), "acknowledged write of {key} via the restarted node");
    }
    // And writes through it work.
    assert_eq!(put(&cluster.nodes[victim], "after", "x", "ALL"), 200);

    println!(
        "failure detection: kill -9 -> down on every survivor in {:.2} s (polling {:.2} s after the writes); \
         restart -> healthy on every node in {:.2} s",
        detection.as_secs_f64(),
        detected.as_secs_f64(),
        recovery.as_secs_f64()
    );

    // Clean shutdown on SIGTERM.
    for p in cluster.nodes.iter_mut() {
        let t = Instant::now();
        let status = p.terminate(Duration::from_secs(20));
        println!("{} stopped on SIGTERM in {:.2} s", p.name, t.elapsed().as_secs_f64());
        assert!(status.is_some_and(|s| s.success()), "{} did not exit cleanly on SIGTERM:\n{}", p.name, p.log_tail(20));
    }
}
