//! Two regions of three real `meridian server` processes, 50 ms apart one way (the WAN
//! emulator), clients writing all four value types in both regions at QUORUM. While they
//! write: a shipping node of one region is killed with SIGKILL and restarted, then the other
//! region is cut off from it (`MERIDIAN_WAN_CUT_SECS`, default 5 s here; the benchmark runs
//! 60 s) and healed. After the writers stop, both regions converge and the history checker
//! verifies contracts 2 to 7: no acknowledged update lost.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::multi::{backlog, workload, MultiCluster};
use common::procs::{http, http_get_json, ClusterSpec};
use meridian_history::History;

const REGIONS: [&str; 2] = ["us-east", "eu-west"];

#[test]
fn two_regions_converge_through_a_killed_shipper_and_a_region_cut_without_losing_acknowledged_updates() {
    let cut_secs: u64 = std::env::var("MERIDIAN_WAN_CUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut mc =
        MultiCluster::start(&REGIONS, ClusterSpec { nodes: 3, ..ClusterSpec::default() }, Duration::from_millis(50));
    mc.create_keyspace("carts", "mvr");

    // Replication works before any fault: a write in us-east is read in eu-west.
    let t = Instant::now();
    assert_eq!(http("PUT", &mc.region("us-east")[0].url("/api/v1/keys/hello"), &[], Some(b"world")).0, 200);
    common::procs::wait_for(Duration::from_secs(20), "the write reached eu-west", || {
        http("GET", &mc.region("eu-west")[1].url("/api/v1/keys/hello"), &[], None).1["value"] == "d29ybGQ="
    });
    println!("first write visible in the other region after {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);

    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let addrs: Vec<String> = mc.region(region).iter().map(|p| p.http().to_owned()).collect();
        for c in 0..2 {
            let (h, s, addrs, region) = (Arc::clone(&history), Arc::clone(&stop), addrs.clone(), region.to_string());
            let client = format!("{region}-c{c}");
            writers.push(std::thread::spawn(move || workload(&h, &region, &client, &addrs, &s, (r * 10 + c) as u64)));
        }
    }

    std::thread::sleep(Duration::from_secs(3));
    // SIGKILL a node of us-east mid-stream (node1 ships some of the region's ranges), restart it.
    mc.region_mut("us-east")[0].kill9();
    std::thread::sleep(Duration::from_secs(2));
    mc.region_mut("us-east")[0].spawn();
    mc.region_mut("us-east")[0].wait_ready(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));

    // Cut eu-west off under writes, then heal.
    mc.cut("eu-west");
    let backlog_at_cut = backlog(&mc);
    std::thread::sleep(Duration::from_secs(cut_secs));
    let backlog_before_heal = backlog(&mc);
    mc.heal("eu-west");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }

    let heal = Instant::now();
    common::procs::wait_for(Duration::from_secs(120), "every node's WAN backlog drained", || backlog(&mc) == 0);
    let converged = heal.elapsed();

    let (events, report) = mc.repair_and_check(&history);
    let st = http_get_json(&mc.region("eu-west")[0].url("/api/v1/regions")).expect("regions");
    println!(
        "ops: {}; backlog at the cut {backlog_at_cut}, before the heal {backlog_before_heal}; converged {:.2} s after \
         the writers stopped; eu-west sees us-east: {}",
        events.len(),
        converged.as_secs_f64(),
        st["peers"][0]
    );
    println!("{report}");
    report.assert_ok();
}
