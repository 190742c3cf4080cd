//! `meridian drill failover` end to end against `meridian dev --regions 2`: the drill runs,
//! passes, and every figure of its JSON report agrees with the history it wrote, recomputed
//! here independently of the drill's own code.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{meridian_bin, start_dev};
use meridian_history::{EventKind, History};
use serde_json::Value;

/// What the test recomputes for one client.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    ops: u64,
    ok: u64,
    fail: u64,
    info: u64,
    errors_during: u64,
    served_by: BTreeMap<String, u64>,
    rto_ms: Option<u64>,
    failback_ms: Option<u64>,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn a_failover_drill_passes_and_its_report_matches_its_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut dev, _) = start_dev(dir.path(), &["--regions", "2"]);
    let endpoints = dir.path().join("endpoints.json");

    let history_path = dir.path().join("drill.jsonl");
    let out = Command::new(meridian_bin())
        .args(["drill", "failover", "--region", "us-east", "--duration", "14s", "--fence-at", "3s"])
        .args(["--fence-for", "6s", "--clients-per-region", "2", "--rate", "10", "--keys", "8"])
        .args(["--converge-timeout", "60s", "--output", "json", "--endpoints-file"])
        .arg(&endpoints)
        .arg("--history")
        .arg(&history_path)
        .stdin(Stdio::null())
        .output()
        .expect("run the drill");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(dev.id() as i32), nix::sys::signal::SIGINT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("the report is not JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    });
    assert!(
        out.status.success(),
        "drill exit {}: {}\n{stderr}",
        out.status,
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    assert_eq!(report["passed"], true);
    assert_eq!(report["checker"]["ok"], true, "{}", report["checker"]);
    assert_eq!(report["convergence"]["converged"], true, "{}", report["convergence"]);
    assert_eq!(report["convergence"]["roots_equal"], true);
    let roots: Vec<&Value> = report["convergence"]["roots"].as_object().expect("roots").values().collect();
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0], roots[1], "both regions report the same root and record count");

    // The timeline is ordered.
    let tl = &report["timeline_ms"];
    let (t0, fence, unfence, stop) = (u(&tl["start"]), u(&tl["fence"]), u(&tl["unfence"]), u(&tl["stop"]));
    let everywhere = u(&tl["fenced_everywhere"]);
    let converged = u(&tl["converged"]);
    assert!(
        t0 <= fence && fence <= everywhere && everywhere <= unfence && unfence <= stop && stop <= converged,
        "{tl}"
    );

    // Recompute every client's figures from the history file.
    let history = History::read_jsonl(&history_path).expect("the history file reads back");
    let events = history.events();
    assert_eq!(report["checker"]["events"].as_u64(), Some(events.len() as u64));
    let mut figures: BTreeMap<String, Figures> = BTreeMap::new();
    let mut invoked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut fenced_served_after_fence = Vec::new();
    for e in &events {
        let f = figures.entry(e.client.clone()).or_default();
        let home = e.client.split('/').next().expect("client names are region/cN");
        match e.kind {
            EventKind::Invoke => {
                f.ops += 1;
                invoked.insert(e.id, e.t);
            }
            EventKind::Ok => {
                f.ok += 1;
                *f.served_by.entry(e.region.clone()).or_default() += 1;
                let at = invoked[&e.id];
                if home == "us-east" {
                    if f.rto_ms.is_none() && at >= fence && e.region != "us-east" {
                        f.rto_ms = Some(e.t - fence);
                    }
                    if f.failback_ms.is_none() && at >= unfence && e.region == "us-east" {
                        f.failback_ms = Some(e.t - unfence);
                    }
                }
                // The fence holds: once every node of us-east reported it, nothing invoked
                // before the unfence is served by us-east.
                if e.region == "us-east" && at >= everywhere && e.t < unfence {
                    fenced_served_after_fence.push(e.id);
                }
            }
            EventKind::Fail | EventKind::Info => {
                if e.kind == EventKind::Fail {
                    f.fail += 1;
                } else {
                    f.info += 1;
                }
                if e.t >= fence && e.t < unfence {
                    f.errors_during += 1;
                }
            }
        }
    }
    assert!(fenced_served_after_fence.is_empty(), "us-east served {fenced_served_after_fence:?} while fenced");

    let clients = report["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 4, "2 clients in each of 2 regions");
    assert_eq!(clients.len(), figures.len(), "every client appears in the history");
    let (mut ops, mut ok) = (0, 0);
    for c in clients {
        let name = c["client"].as_str().expect("client name");
        let mine = &figures[name];
        let served: BTreeMap<String, u64> =
            c["served_by"].as_object().expect("served_by").iter().map(|(k, v)| (k.clone(), u(v))).collect();
        let theirs = Figures {
            ops: u(&c["ops"]),
            ok: u(&c["ok"]),
            fail: u(&c["fail"]),
            info: u(&c["info"]),
            errors_during: u(&c["errors_during"]),
            served_by: served,
            rto_ms: c["rto_ms"].as_u64(),
            failback_ms: c["failback_ms"].as_u64(),
        };
        assert_eq!(&theirs, mine, "client {name}");
        let by_code: u64 = c["errors_by_code"].as_object().expect("codes").values().map(u).sum();
        assert_eq!(by_code, mine.fail + mine.info, "client {name}: errors by code add up");
        assert!(mine.ops >= mine.ok + mine.fail + mine.info, "client {name}");
        if c["home"] == "us-east" {
            // Every client of the fenced region failed over and came back.
            let rto = mine.rto_ms.unwrap_or_else(|| panic!("{name} never failed over: {c}"));
            assert!(rto < unfence - fence, "{name}: RTO {rto} ms is within the fence");
            assert!(mine.failback_ms.is_some(), "{name} never came back home: {c}");
            assert!(mine.served_by.get("eu-west").copied().unwrap_or(0) > 0, "{name}");
        } else {
            assert_eq!((mine.rto_ms, mine.failback_ms), (None, None), "{name}");
        }
        ops += mine.ops;
        ok += mine.ok;
    }
    assert_eq!(u(&report["totals"]["ops"]), ops);
    assert_eq!(u(&report["totals"]["ok"]), ok);
    assert!(ok > 0);

    // The RPO lists the one peer, with a count and non-negative seconds.
    let rpo = report["rpo"].as_array().expect("rpo");
    assert_eq!(rpo.len(), 1);
    assert_eq!(rpo[0]["peer"], "eu-west");
    assert!(rpo[0]["backlog"].is_u64() && rpo[0]["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{rpo:?}");

    let stop_at = Instant::now();
    while dev.try_wait().ok().flatten().is_none() {
        assert!(stop_at.elapsed() < Duration::from_secs(30), "meridian dev did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
