//! A seeded chaos schedule on real processes: two regions of three `meridian server`s (WAN
//! emulator, 30 ms one way), clients writing all four value types in both regions at QUORUM
//! into a recorded history, while a nemesis drawn from `MERIDIAN_CHAOS_SEED` (default 1) for
//! `MERIDIAN_CHAOS_SECS` (default 20) mixes:
//!
//! - a region cut off from the other (both directions, 1–3 s);
//! - `kill -9` of a node and its restart;
//! - `SIGSTOP` of a node for 1–2 s, then `SIGCONT` (a pause: its peers see it down, it wakes
//!   up with stale leases and in-flight requests);
//! - clock skew on one node with libfaketime, restarted with its clock ahead by 200 ms (inside
//!   `clock.max_offset_ms` = 500) or by 3 s (beyond: its timestamps are refused and counted),
//!   then restarted with the true clock.
//!
//! At the end: every fault healed, writers stopped, backlogs drained, one anti-entropy pass on
//! every node, then the history checker (contracts 2–7) over the final state of both regions.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::multi::{backlog, workload, MultiCluster};
use common::procs::{ClusterSpec, NodeProc};
use meridian_history::History;
use rand::{Rng, SeedableRng};

const REGIONS: [&str; 2] = ["us-east", "eu-west"];
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

fn signal(p: &NodeProc, sig: nix::sys::signal::Signal) {
    let pid = p.child.as_ref().expect("running").id() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).expect("signal");
}

/// Resident memory of every running node, in MiB (from /proc).
fn rss_mib(mc: &MultiCluster) -> f64 {
    let mut kib = 0u64;
    for (_, nodes) in &mc.regions {
        for p in nodes {
            let Some(c) = p.child.as_ref() else { continue };
            let status = std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap_or_default();
            kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    kib as f64 / 1024.0
}

fn restart(p: &mut NodeProc, env: Vec<(String, String)>) {
    p.terminate(Duration::from_secs(20));
    p.env = env;
    p.spawn();
    p.wait_ready(Duration::from_secs(60));
}

#[test]
fn a_seeded_chaos_schedule_loses_no_acknowledged_update() {
    let seed: u64 = std::env::var("MERIDIAN_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let secs: u64 = std::env::var("MERIDIAN_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    assert!(Path::new(FAKETIME).exists(), "{FAKETIME} is missing: apt-get install libfaketime (scripts/env.sh does)");
    let mut mc =
        MultiCluster::start(&REGIONS, ClusterSpec { nodes: 3, ..ClusterSpec::default() }, Duration::from_millis(30));
    mc.create_keyspace("carts", "mvr");
    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let addrs: Vec<String> = mc.region(region).iter().map(|p| p.http().to_owned()).collect();
        for c in 0..2 {
            let (h, s, addrs, region) = (Arc::clone(&history), Arc::clone(&stop), addrs.clone(), region.to_string());
            let client = format!("{region}-c{c}");
            let wseed = seed * 100 + (r * 10 + c) as u64;
            writers.push(std::thread::spawn(move || workload(&h, &region, &client, &addrs, &s, wseed)));
        }
    }

    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let mut rss = vec![(0.0, rss_mib(&mc))];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        let i = rng.random_range(0..3);
        let t = start.elapsed().as_secs_f64();
        match rng.random_range(0..4) {
            0 => {
                let ms = rng.random_range(1000..3000);
                mc.cut(region);
                std::thread::sleep(Duration::from_millis(ms));
                mc.heal(region);
                faults.push(format!("{t:5.1} s: {region} cut off for {ms} ms"));
            }
            1 => {
                let ms = rng.random_range(500..2000);
                let p = &mut mc.region_mut(region)[i];
                p.kill9();
                std::thread::sleep(Duration::from_millis(ms));
                p.spawn();
                p.wait_ready(Duration::from_secs(60));
                faults.push(format!("{t:5.1} s: kill -9 {region}/{}, restarted after {ms} ms", p.name));
            }
            2 => {
                let ms = rng.random_range(1000..2000);
                let p = &mc.region(region)[i];
                signal(p, nix::sys::signal::Signal::SIGSTOP);
                std::thread::sleep(Duration::from_millis(ms));
                signal(p, nix::sys::signal::Signal::SIGCONT);
                faults.push(format!("{t:5.1} s: SIGSTOP {region}/{} for {ms} ms", p.name));
            }
            _ => {
                let ahead = if rng.random_bool(0.5) { "+0.2" } else { "+3" };
                let p = &mut mc.region_mut(region)[i];
                let env = vec![
                    ("LD_PRELOAD".to_owned(), FAKETIME.to_owned()),
                    ("FAKETIME".to_owned(), ahead.to_owned()),
                    ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
                ];
                restart(p, env);
                std::thread::sleep(Duration::from_millis(2000));
                restart(p, Vec::new());
                faults.push(format!("{t:5.1} s: {region}/{} ran with its clock {ahead} s ahead for 2 s", p.name));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1000)));
        rss.push((start.elapsed().as_secs_f64(), rss_mib(&mc)));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    common::procs::wait_for(Duration::from_secs(120), "every node's WAN backlog drained", || backlog(&mc) == 0);
    let (events, report) = mc.repair_and_check(&history);
    println!("chaos seed {seed}, {secs} s, {} ops; faults:\n  {}", events.len(), faults.join("\n  "));
    let peak = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    let tenth = rss.len() / 10;
    println!(
        "node RSS (sum of 6 processes): start {:.0} MiB, after the first tenth {:.0} MiB, end {:.0} MiB, peak {peak:.0} MiB ({} samples)",
        rss[0].1,
        rss[tenth].1,
        rss.last().map_or(0.0, |r| r.1),
        rss.len()
    );
    println!("{report}");
    report.assert_ok();
}
