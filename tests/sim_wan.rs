//! Seeded simulation of three regions of three nodes (turmoil; see `common/sim.rs`), every
//! node running the cross-region replicator over simulated QUIC. Clients in every region write
//! all four value types at QUORUM while a seeded nemesis cuts random region pairs apart and
//! heals them. After the last heal, once every backlog drained, every region and every node is
//! read and the history checker verifies contracts 2 to 7 (`common/history.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sim::{seed, SimClient, SimCluster, SimSpec};
use meridian_config::ConsistencyLevel::{All, One, Quorum};
use meridian_crdt::{CausalContext, Op, ReadValue};
use meridian_history::{check, FinalState, History, Observed, Op as HOp, OpResult};
use meridian_region::RegionError;
use rand::{Rng, SeedableRng};

const REGIONS: [&str; 3] = ["us", "eu", "ap"];

/// Whether an error means the write certainly did not happen.
fn not_applied(e: &RegionError) -> bool {
    matches!(e, RegionError::Unavailable { asked: 0, .. } | RegionError::NotEnoughNodes { .. })
        || (400..500).contains(&e.http_status())
}

async fn perform(history: &History, client: &SimClient, cid: &str, op: HOp) {
    let (ks, key, rop) = match &op {
        HOp::Put { keyspace, key, value } => {
            (keyspace, key, Op::LwwPut { value: value.clone().into_bytes(), ttl_ms: None })
        }
        HOp::Incr { keyspace, key, delta } => (keyspace, key, Op::CounterAdd { delta: *delta, ttl_ms: None }),
        HOp::Sadd { keyspace, key, members } => (
            keyspace,
            key,
            Op::SetUpdate {
                add: members.iter().map(|m| m.clone().into_bytes()).collect(),
                remove: vec![],
                context: None,
                ttl_ms: None,
            },
        ),
        HOp::Srem { keyspace, key, members, .. } => (
            keyspace,
            key,
            Op::SetUpdate {
                add: vec![],
                remove: members.iter().map(|m| m.clone().into_bytes()).collect(),
                context: None,
                ttl_ms: None,
            },
        ),
        HOp::MvrPut { keyspace, key, value, .. } => (
            keyspace,
            key,
            Op::MvrPut { value: Some(value.clone().into_bytes()), context: CausalContext::new(), ttl_ms: None },
        ),
        other => panic!("not a write: {other:?}"),
    };
    let (ks, key) = (ks.clone(), key.clone());
    let id = history.invoke(cid, &client.region, op);
    match client.write(&ks, &key, rop, Quorum).await {
        Ok(o) => history.ok(id, OpResult::written(o.version())),
        Err(e) if not_applied(&e) => history.fail(id, e.to_string()),
        Err(e) => history.info(id, e.to_string()),
    }
}

fn observed(v: ReadValue, version: Option<String>) -> Observed {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    match v {
        ReadValue::Absent => Observed::Absent,
        ReadValue::Lww { value, .. } => Observed::Lww { value: text(value), version: version.unwrap_or_default() },
        ReadValue::Mvr { siblings, .. } => Observed::Mvr { siblings: siblings.into_iter().map(text).collect() },
        ReadValue::Counter(n) => Observed::Counter(n),
        ReadValue::Set { members, .. } => Observed::Set(members.into_iter().map(text).collect()),
    }
}

#[test]
fn three_regions_converge_after_random_partitions_and_the_checker_passes() {
    let s = seed(101);
    let mut sim = turmoil::Builder::new()
        .rng_seed(s)
        .simulation_duration(Duration::from_secs(900))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .udp_capacity(4096)
        .build();
    let cluster = Arc::new(SimCluster::build_regions(&mut sim, &REGIONS, SimSpec::default()));
    let clients: Vec<SimClient> = (0..cluster.len()).map(|i| cluster.client(i)).collect();
    let hosts: Vec<Vec<String>> =
        (0..REGIONS.len()).map(|r| (0..3).map(|j| cluster.name(r * 3 + j).to_owned()).collect()).collect();
    let history = Arc::new(History::new());
    let h = Arc::clone(&history);
    sim.client("app", async move {
        for c in &clients {
            assert!(c.wait_live(3, Duration::from_secs(60)).await, "seed {s}: {} formed its region", c.node);
        }
        let cut = |a: usize, b: usize, on: bool| {
            for x in &hosts[a] {
                for y in &hosts[b] {
                    if on {
                        turmoil::partition(x.as_str(), y.as_str());
                    } else {
                        turmoil::repair(x.as_str(), y.as_str());
                    }
                }
            }
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(s);
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        for step in 0..240u64 {
            // The nemesis: now and then cut a random pair of regions, or heal one.
            if step % 20 == 0 {
                if !cuts.is_empty() && rng.random_bool(0.5) {
                    let (a, b) = cuts.remove(rng.random_range(0..cuts.len()));
                    cut(a, b, false);
                } else {
                    let a = rng.random_range(0..3);
                    let b = (a + 1 + rng.random_range(0..2)) % 3;
                    cut(a, b, true);
                    cuts.push((a, b));
                }
            }
            let c = &clients[rng.random_range(0..clients.len())];
            let cid = format!("{}-client", c.node);
            let n = step;
            let op = match rng.random_range(0..10) {
                0..=3 => HOp::Put {
                    keyspace: "default".into(),
                    key: format!("k{}", rng.random_range(0..6)),
                    value: format!("{cid}-{n}"),
                },
                4..=5 => HOp::Incr {
                    keyspace: "counters".into(),
                    key: format!("c{}", rng.random_range(0..3)),
                    delta: rng.random_range(-2..=5),
                },
                6..=7 => HOp::Sadd {
                    keyspace: "sets".into(),
                    key: format!("s{}", rng.random_range(0..3)),
                    members: vec![format!("{cid}-{n}")],
                },
                8 => HOp::Srem {
                    keyspace: "sets".into(),
                    key: format!("s{}", rng.random_range(0..3)),
                    members: vec![format!("{cid}-{}", n.saturating_sub(rng.random_range(1..10)))],
                    context: None,
                },
                _ => HOp::MvrPut {
                    keyspace: "mvrs".into(),
                    key: format!("m{}", rng.random_range(0..2)),
                    value: format!("{cid}-{n}"),
                    context: None,
                },
            };
            perform(&h, c, &cid, op).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (a, b) in cuts.drain(..) {
            cut(a, b, false);
        }
        // Quiesce: every node's backlog towards every region drains.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let mut pending = 0u64;
            for c in &clients {
                pending += c.regions().await.map_or(u64::MAX / 64, |r| r.peers.iter().map(|p| p.backlog).sum());
            }
            if pending == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "seed {s}: backlog {pending} did not drain");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Anti-entropy inside each region makes its nodes equal.
        for c in &clients {
            let st = c.repair().await.expect("repair");
            assert_eq!(st.state, "done", "seed {s}: {st:?}");
        }
        let mut keys = std::collections::BTreeSet::new();
        for e in h.events() {
            let (ks, key) = e.op.target();
            keys.insert((ks.to_owned(), key.to_owned()));
        }
        let mut fin = FinalState::default();
        for (r, region) in REGIONS.iter().enumerate() {
            for (ks, key) in &keys {
                let out = clients[r * 3]
                    .read(ks, key, All)
                    .await
                    .unwrap_or_else(|e| panic!("seed {s}: read {ks}/{key}: {e}"));
                let version = out.version();
                fin.set_region(region, ks, key, observed(out.value, version));
                for j in 0..3 {
                    let c = &clients[r * 3 + j];
                    let out = c.read(ks, key, One).await.unwrap_or_else(|e| panic!("seed {s}: read {ks}/{key}: {e}"));
                    let version = out.version();
                    fin.set_node(region, &c.node, ks, key, observed(out.value, version));
                }
            }
        }
        let report = check(&h.events(), &fin);
        println!("seed {s}: {report}");
        assert!(report.ok, "seed {s}: {report:#}");
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}
