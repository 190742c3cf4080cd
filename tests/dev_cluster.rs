//! `meridian dev`: the default local cluster (3 regions x 3 nodes, the WAN emulator between
//! them) starts within a bounded time, writes its endpoints file (with the API token), serves
//! on every node (API authentication on: the token is needed), replicates a write to the other
//! regions, and stops every node on SIGINT.

mod common;

use std::time::{Duration, Instant};

use common::procs::{http, start_dev};

#[test]
fn dev_starts_a_region_writes_endpoints_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Bounded start: the endpoints file appears once every node sees every other.
    let start = Instant::now();
    let (mut dev, doc) = start_dev(dir.path(), &[]);
    println!("dev cluster ready in {:.1} s", start.elapsed().as_secs_f64());

    let regions = doc["regions"].as_array().expect("regions");
    let names: Vec<&str> = regions.iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["us-east", "eu-west", "ap-southeast"]);
    let mut pids = Vec::new();
    for r in regions {
        let nodes = r["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 3);
        for n in nodes {
            assert!(n["id"].is_string() && n["data_dir"].is_string() && n["wan"].is_string(), "{n}");
            pids.push(n["pid"].as_u64().expect("pid") as i32);
        }
    }
    let http_of = |r: usize, i: usize| regions[r]["nodes"][i]["http"].as_str().expect("http").to_owned();
    let token = doc["token"].as_str().expect("the endpoints file holds the API token");
    assert!(token.starts_with("mrd_") && token.len() > 40, "{token}");
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    // Authentication is on: no token, no data (health stays open).
    let (status, body) = http("PUT", &format!("http://{}/api/v1/keys/hello", http_of(0, 0)), &[], Some(b"world"));
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
    assert_eq!(http("GET", &format!("http://{}/healthz", http_of(0, 0)), &[], None).0, 200);

    // A write through one node of us-east is read through every node of its region at QUORUM,
    // and reaches the other two regions (bounded wait: 115 ms one way to ap-southeast).
    let (status, _) = http("PUT", &format!("http://{}/api/v1/keys/hello", http_of(0, 0)), &auth, Some(b"world"));
    assert_eq!(status, 200);
    for i in 0..3 {
        let (status, body) = http("GET", &format!("http://{}/api/v1/keys/hello", http_of(0, i)), &auth, None);
        assert_eq!(status, 200);
        assert_eq!(body["value"], "d29ybGQ=", "node {i}");
    }
    for (r, name) in names.iter().enumerate().skip(1) {
        let url = format!("http://{}/api/v1/keys/hello", http_of(r, 2));
        common::procs::wait_for(Duration::from_secs(20), &format!("the write reached {name}"), || {
            http("GET", &url, &auth, None).1["value"] == "d29ybGQ="
        });
    }

    // SIGINT stops the cluster: dev exits 0 and no node process is left.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(dev.id() as i32), nix::sys::signal::SIGINT);
    let stop = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = dev.try_wait() {
            break s;
        }
        assert!(stop.elapsed() < Duration::from_secs(30), "meridian dev did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "meridian dev exit status {status}");
    for pid in pids {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        assert!(!alive, "node process {pid} still running after dev stopped");
    }
}
