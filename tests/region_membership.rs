//! Real processes: a region goes from 3 to 4 nodes (a join) and back to 3 (a decommission of
//! another node) while a writer and a reader run at QUORUM. No acknowledged write is lost; the
//! errors clients saw during the changes are counted and reported, with the streaming figures
//! (recorded in docs/benchmarks.md).
//!
//! `MERIDIAN_MEMBERSHIP_KEYS` (default 2000) sets how many 1 KiB records the region holds
//! before the changes.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::procs::{http, Cluster, ClusterSpec};

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![b'x'; 1024];
    v[..8].copy_from_slice(&i.to_be_bytes());
    v
}

#[test]
fn join_then_decommission_under_load_loses_no_acknowledged_write() {
    let preload: u64 = std::env::var("MERIDIAN_MEMBERSHIP_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let mut cluster = Cluster::start(ClusterSpec { spare_nodes: 1, vnodes: 32, ..ClusterSpec::default() });
    // Coordinators for the clients: nodes 1 and 3 (node 2 will be decommissioned).
    let coordinators: Vec<String> = [0, 2].iter().map(|&i| cluster.nodes[i].http().to_owned()).collect();
    for i in 0..preload {
        let (status, _) = http(
            "PUT",
            &format!("http://{}/api/v1/keys/k{i}", coordinators[(i % 2) as usize]),
            &[("X-Consistency-Level", "QUORUM")],
            Some(&value(i)),
        );
        assert_eq!(status, 200);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<u64, ()>>> = Arc::new(Mutex::new((0..preload).map(|i| (i, ())).collect()));
    let write_errors = Arc::new(AtomicU64::new(0));
    let read_errors = Arc::new(AtomicU64::new(0));
    let wrong_reads = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(preload));
    let writer = {
        let (stop, acked, errors, next, coords) =
            (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&write_errors), Arc::clone(&next), coordinators.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let url = format!("http://{}/api/v1/keys/k{i}", coords[(i % 2) as usize]);
                match http("PUT", &url, &[("X-Consistency-Level", "QUORUM")], Some(&value(i))).0 {
                    200 => {
                        acked.lock().expect("lock").insert(i, ());
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let reader = {
        let (stop, acked, errors, wrong, coords) = (
            Arc::clone(&stop),
            Arc::clone(&acked),
            Arc::clone(&read_errors),
            Arc::clone(&wrong_reads),
            coordinators.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = {
                    let a = acked.lock().expect("lock");
                    let len = a.len() as u64;
                    *a.keys().nth(((n * 7919) % len) as usize).expect("key")
                };
                let url = format!("http://{}/api/v1/keys/k{key}", coords[(n % 2) as usize]);
                let (status, body) = http("GET", &url, &[("X-Consistency-Level", "QUORUM")], None);
                use base64::Engine as _;
                match status {
                    200 => {
                        let got = body["value"]
                            .as_str()
                            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                        if got.as_deref() != Some(value(key).as_slice()) {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // 3 -> 4: node4 joins through node1 and streams its ranges.
    let t = Instant::now();
    let n4 = cluster.join();
    cluster.wait_until(Duration::from_secs(180), "node4 healthy everywhere", |c| {
        (0..4).all(|i| c.status_seen_by(&c.nodes[i], "node4").as_deref() == Some("healthy"))
    });
    let join_took = t.elapsed();
    let s4 = cluster.cluster_status(&cluster.nodes[n4]).expect("node4 status");
    let (join_bytes, join_keys) =
        (s4["streaming"]["bytes"].as_u64().unwrap_or(0), s4["streaming"]["keys"].as_u64().unwrap_or(0));
    let join_secs = stream_secs(&s4["streaming"]);
    assert_eq!(s4["streaming"]["state"], "done", "{s4}");

    // 4 -> 3: node2 is decommissioned (asked through node1) and streams its ranges away.
    let t = Instant::now();
    let (status, body) = http("DELETE", &cluster.nodes[0].url("/api/v1/cluster/nodes/node2"), &[], None);
    assert_eq!(status, 202, "{body}");
    cluster.wait_until(Duration::from_secs(180), "node2 left in every remaining node's view", |c| {
        [0, 2, 3].iter().all(|&i| c.status_seen_by(&c.nodes[i], "node2").as_deref() == Some("left"))
    });
    let leave_took = t.elapsed();
    let s2 = cluster.cluster_status(&cluster.nodes[1]).expect("node2 status");
    let (leave_bytes, leave_keys) =
        (s2["streaming"]["bytes"].as_u64().unwrap_or(0), s2["streaming"]["keys"].as_u64().unwrap_or(0));
    let leave_secs = stream_secs(&s2["streaming"]);
    assert_eq!(s2["streaming"]["state"], "done", "{s2}");

    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    reader.join().expect("reader");
    cluster.nodes[1].kill9();

    // Every acknowledged write is readable at QUORUM from the three remaining nodes.
    let acked: Vec<u64> = acked.lock().expect("lock").keys().copied().collect();
    let mut lost = Vec::new();
    for (n, i) in acked.iter().enumerate() {
        let node = &cluster.nodes[[0, 2, 3][n % 3]];
        let (status, body) =
            http("GET", &node.url(&format!("/api/v1/keys/k{i}")), &[("X-Consistency-Level", "QUORUM")], None);
        use base64::Engine as _;
        let got = body["value"].as_str().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        if status != 200 || got.as_deref() != Some(value(*i).as_slice()) {
            lost.push(*i);
        }
    }
    let (we, re, wr) = (
        write_errors.load(Ordering::Relaxed),
        read_errors.load(Ordering::Relaxed),
        wrong_reads.load(Ordering::Relaxed),
    );
    let written = next.load(Ordering::Relaxed) - preload;
    println!(
        "membership changes under load: {} acknowledged writes ({written} attempted during the changes), {} lost; \
         QUORUM errors during the changes: {we} writes, {re} reads; {wr} reads returned a wrong value",
        acked.len(),
        lost.len()
    );
    println!(
        "join: node4 healthy everywhere after {:.2} s; streamed {join_keys} records, {join_bytes} bytes in {join_secs:.2} s \
         ({:.2} MB/s)",
        join_took.as_secs_f64(),
        join_bytes as f64 / 1e6 / join_secs.max(1e-3)
    );
    println!(
        "decommission: node2 left after {:.2} s; streamed {leave_keys} records, {leave_bytes} bytes in {leave_secs:.2} s \
         ({:.2} MB/s)",
        leave_took.as_secs_f64(),
        leave_bytes as f64 / 1e6 / leave_secs.max(1e-3)
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {:?}", &lost[..lost.len().min(20)]);
    assert_eq!(wr, 0, "a QUORUM read returned a value other than the acknowledged one");
}

/// Seconds between `started_ms` and `finished_ms` of a streaming status.
fn stream_secs(s: &serde_json::Value) -> f64 {
    match (s["started_ms"].as_u64(), s["finished_ms"].as_u64()) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1000.0,
        _ => 0.0,
    }
}
