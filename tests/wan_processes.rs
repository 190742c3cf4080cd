//! Two regions of three real `meridian server` processes, 50 ms apart one way (the WAN
//! emulator), clients writing all four value types in both regions at QUORUM. While they
//! write: a shipping node of one region is killed with SIGKILL and restarted, then the other
//! region is cut off from it (`MERIDIAN_WAN_CUT_SECS`, default 5 s here; the benchmark runs
//! 60 s) and healed. After the writers stop, both regions converge and the history checker
//! verifies contracts 2 to 7: no acknowledged update lost.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::multi::MultiCluster;
use common::procs::{http, http_get_json, ClusterSpec};
use meridian_history::{check, collect_final, execute_http, History, Kind, Op};
use rand::{Rng, SeedableRng};

const REGIONS: [&str; 2] = ["us-east", "eu-west"];

fn workload(history: &History, region: &str, client: &str, addrs: &[String], stop: &AtomicBool, seed: u64) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let addr = &addrs[rng.random_range(0..addrs.len())];
        let op = match rng.random_range(0..10) {
            0..=3 => Op::Put {
                keyspace: "default".into(),
                key: format!("k{}", rng.random_range(0..12)),
                value: format!("{client}-{n}"),
            },
            4..=5 => Op::Incr {
                keyspace: "counters".into(),
                key: format!("c{}", rng.random_range(0..4)),
                delta: rng.random_range(-3..=10),
            },
            6..=7 => Op::Sadd {
                keyspace: "sets".into(),
                key: format!("s{}", rng.random_range(0..4)),
                members: vec![format!("{client}-{n}")],
            },
            8 => Op::Srem {
                keyspace: "sets".into(),
                key: format!("s{}", rng.random_range(0..4)),
                members: vec![format!("{client}-{}", n.saturating_sub(rng.random_range(1..20)))],
                context: None,
            },
            _ => Op::MvrPut {
                keyspace: "carts".into(),
                key: format!("m{}", rng.random_range(0..3)),
                value: format!("{client}-{n}"),
                context: None,
            },
        };
        execute_http(history, &agent, client, region, addr, Some("QUORUM"), &op);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Change-log entries not yet acknowledged, summed over every node's links.
fn backlog(mc: &MultiCluster) -> u64 {
    let mut total = 0;
    for (_, nodes) in &mc.regions {
        for p in nodes {
            match http_get_json(&p.url("/api/v1/regions")) {
                Some(v) => {
                    total +=
                        v["peers"].as_array().map_or(0, |a| a.iter().map(|l| l["backlog"].as_u64().unwrap_or(0)).sum())
                }
                None => total += 1_000_000,
            }
        }
    }
    total
}

#[test]
fn two_regions_converge_through_a_killed_shipper_and_a_region_cut_without_losing_acknowledged_updates() {
    let cut_secs: u64 = std::env::var("MERIDIAN_WAN_CUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut mc =
        MultiCluster::start(&REGIONS, ClusterSpec { nodes: 3, ..ClusterSpec::default() }, Duration::from_millis(50));
    for region in REGIONS {
        let (status, body) = http(
            "POST",
            &mc.region(region)[0].url("/api/v1/keyspaces"),
            &[("Content-Type", "application/json")],
            Some(br#"{"name": "carts", "type": "mvr"}"#),
        );
        assert!(status == 201 || status == 200, "{body}");
    }

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

    let events = history.events();
    let mut keys: BTreeSet<(String, String, Kind)> = BTreeSet::new();
    for e in &events {
        let (ks, key) = e.op.target();
        keys.insert((ks.to_owned(), key.to_owned(), e.op.kind()));
    }
    let keys: Vec<_> = keys.into_iter().collect();
    let regions: Vec<(String, Vec<String>)> =
        mc.regions.iter().map(|(r, nodes)| (r.clone(), nodes.iter().map(|p| p.http().to_owned()).collect())).collect();
    // Anti-entropy inside each region is what makes every node equal: run one pass on each.
    for (_, nodes) in &mc.regions {
        for p in nodes {
            let _ =
                http("POST", &p.url("/api/v1/cluster/repair"), &[("Content-Type", "application/json")], Some(b"{}"));
        }
    }
    common::procs::wait_for(Duration::from_secs(60), "repairs done", || {
        mc.regions
            .iter()
            .flat_map(|(_, n)| n)
            .all(|p| http_get_json(&p.url("/api/v1/cluster/repair")).is_some_and(|v| v["state"] != "running"))
    });
    let final_state = collect_final(&regions, &keys);
    let report = check(&events, &final_state);
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
