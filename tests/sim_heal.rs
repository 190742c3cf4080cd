//! Seeded simulation of a region's self-healing (turmoil; see `common/sim.rs`):
//!
//! - hints written for a partitioned replica are replayed when it comes back;
//! - hints older than the hint window are dropped (counted), and anti-entropy repairs instead;
//! - a QUORUM read that finds a stale replica leaves it up to date (blocking read repair);
//! - a delete, or an expiry, missed by a partitioned replica never comes back: garbage
//!   collection waits for a complete anti-entropy pass, which the partition prevents.
//!
//! Each test checks the replicas' stores directly, not only what reads return.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sim::{seed, SimClient, SimCluster, SimSpec, EPOCH_MS};
use meridian_config::ConsistencyLevel::{All, One, Quorum};
use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};
use meridian_local::{Origin, Store};

fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(600))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .udp_capacity(4096)
        .build()
}

async fn all_healthy(clients: &[SimClient], n: usize) -> bool {
    for c in clients {
        if !c.wait_live(n, Duration::from_secs(60)).await {
            return false;
        }
    }
    true
}

/// The LWW value `store` holds for `key` in `default`, ignoring expiry (`None`: no record or a
/// tombstone).
fn stored_value(store: &Arc<dyn Store>, key: &str) -> Option<String> {
    let rec = store.get("default", key.as_bytes()).expect("store read")?;
    rec.as_lww().and_then(|r| r.value()).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn stored(store: &Arc<dyn Store>, key: &str) -> Option<Record> {
    store.get("default", key.as_bytes()).expect("store read")
}

fn cut(names: &[String], i: usize) {
    for (j, n) in names.iter().enumerate() {
        if j != i {
            turmoil::partition(names[i].as_str(), n.as_str());
        }
    }
}

fn heal(names: &[String], i: usize) {
    for (j, n) in names.iter().enumerate() {
        if j != i {
            turmoil::repair(names[i].as_str(), n.as_str());
        }
    }
}

struct Fixture {
    sim: turmoil::Sim<'static>,
    cluster: Arc<SimCluster>,
    clients: Vec<SimClient>,
    names: Vec<String>,
}

fn fixture(s: u64, spec: SimSpec) -> Fixture {
    let mut sim = sim(s);
    let cluster = Arc::new(SimCluster::build(&mut sim, spec));
    let clients = (0..cluster.len()).map(|i| cluster.client(i)).collect();
    let names = (0..cluster.len()).map(|i| cluster.name(i).to_owned()).collect();
    Fixture { sim, cluster, clients, names }
}

#[test]
fn hints_for_a_partitioned_replica_are_replayed_when_it_returns() {
    let s = seed(31);
    let Fixture { mut sim, cluster, clients, names } = fixture(s, SimSpec::default());
    let c = Arc::clone(&cluster);
    sim.client("app", async move {
        assert!(all_healthy(&clients, 3).await, "seed {s}: region formed");
        cut(&names, 2);
        assert!(clients[0].wait_live(2, Duration::from_secs(30)).await, "seed {s}: n1 sees n3 down");
        assert!(clients[1].wait_live(2, Duration::from_secs(30)).await, "seed {s}: n2 sees n3 down");
        for i in 0..20 {
            clients[i % 2].put(&format!("k{i}"), &format!("v{i}"), Quorum).await.expect("QUORUM with n3 away");
        }
        assert!(stored_value(&c.store(2), "k0").is_none(), "seed {s}: n3 missed the writes");
        // Hints are stored when a write's round ends; with n3 known down that is at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pending: u64 = [0, 1].iter().map(|i| c.store(*i).hint_counts().expect("hints").values().sum::<u64>()).sum();
        assert_eq!(pending, 20, "seed {s}: one hint per write for n3");
        heal(&names, 2);
        assert!(all_healthy(&clients, 3).await, "seed {s}: healed");
        // Replay runs every 250 ms once the target is seen live.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while (0..20).any(|i| stored_value(&c.store(2), &format!("k{i}")).is_none()) {
            assert!(tokio::time::Instant::now() < deadline, "seed {s}: hints not replayed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for i in 0..20 {
            assert_eq!(stored_value(&c.store(2), &format!("k{i}")), Some(format!("v{i}")), "seed {s}");
        }
        // A replayer counts a hint once the target acknowledged it and the hint is deleted,
        // which can come a moment after the record is visible at the target.
        let (h0, h1) = loop {
            let h0 = clients[0].hints().await.expect("hints");
            let h1 = clients[1].hints().await.expect("hints");
            if h0.queues.is_empty() && h1.queues.is_empty() || tokio::time::Instant::now() >= deadline {
                break (h0, h1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(h0.queues.is_empty() && h1.queues.is_empty(), "seed {s}: queues drained");
        assert_eq!(h0.replayed + h1.replayed, 20, "seed {s}: every hint replayed once");
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

#[test]
fn hints_past_the_window_are_dropped_and_anti_entropy_repairs_instead() {
    let s = seed(41);
    let Fixture { mut sim, cluster, clients, names } =
        fixture(s, SimSpec { hint_window_secs: 1, ..SimSpec::default() });
    let c = Arc::clone(&cluster);
    sim.client("app", async move {
        assert!(all_healthy(&clients, 3).await, "seed {s}: region formed");
        cut(&names, 2);
        assert!(clients[0].wait_live(2, Duration::from_secs(30)).await);
        for i in 0..20 {
            clients[0].put(&format!("k{i}"), &format!("v{i}"), Quorum).await.expect("QUORUM");
        }
        // Longer than the window: the hints are dropped, not replayed.
        tokio::time::sleep(Duration::from_secs(3)).await;
        heal(&names, 2);
        assert!(all_healthy(&clients, 3).await, "seed {s}: healed");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let h = clients[0].hints().await.expect("hints");
        assert_eq!(h.dropped, 20, "seed {s}: the 20 hints were past the window");
        assert_eq!(h.replayed, 0);
        assert!(stored_value(&c.store(2), "k0").is_none(), "seed {s}: nothing reached n3 yet");
        // Anti-entropy from n3 pulls what it missed.
        let st = clients[2].repair().await.expect("repair");
        assert_eq!(st.state, "done", "seed {s}: {st:?}");
        assert_eq!(st.peers_failed, 0);
        assert_eq!(st.keys_repaired, 20, "seed {s}: exactly the missed keys were exchanged");
        for i in 0..20 {
            assert_eq!(stored_value(&c.store(2), &format!("k{i}")), Some(format!("v{i}")), "seed {s}");
        }
        // A second pass finds nothing to do.
        let again = clients[2].repair().await.expect("repair");
        assert_eq!((again.keys_repaired, again.segments_differing), (0, 0), "seed {s}: converged");
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

#[test]
fn a_quorum_read_that_finds_a_stale_replica_leaves_it_up_to_date() {
    let s = seed(51);
    let Fixture { mut sim, cluster, clients, names: _ } = fixture(s, SimSpec::default());
    let c = Arc::clone(&cluster);
    sim.client("app", async move {
        assert!(all_healthy(&clients, 3).await, "seed {s}: region formed");
        clients[0].put("k", "old", All).await.expect("ALL");
        // Make n3 stale without hints or coordinators: a newer state lands on n1 and n2 only.
        let old = stored(&c.store(0), "k").expect("n1 has k");
        let ctx = OpContext {
            actor: NodeId(7),
            ts: Hlc::from_physical_ms(EPOCH_MS + 3_600_000, NodeId(7)),
            now_ms: EPOCH_MS,
        };
        let newer = Record::apply(
            Some(old),
            ValueKind::Lww,
            &Op::LwwPut { value: b"new".to_vec(), ttl_ms: None },
            &ctx,
            &Limits::default(),
        )
        .expect("apply");
        for i in [0, 1] {
            c.store(i).merge("default", b"k", &newer, Origin::Repair).expect("merge");
        }
        assert_eq!(stored_value(&c.store(2), "k").as_deref(), Some("old"), "seed {s}: n3 is stale");
        // A QUORUM read coordinated by n3 decides on n3 (itself) and one of n1/n2, sees n3 stale,
        // and repairs it before answering.
        assert_eq!(clients[2].get("k", Quorum).await.expect("QUORUM read").as_deref(), Some("new"));
        assert_eq!(stored_value(&c.store(2), "k").as_deref(), Some("new"), "seed {s}: the read repaired n3");
        assert_eq!(stored(&c.store(2), "k"), Some(newer), "seed {s}: byte-identical to the others");
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

#[test]
fn a_delete_missed_by_a_partitioned_replica_never_comes_back() {
    let s = seed(61);
    let Fixture { mut sim, cluster, clients, names } =
        fixture(s, SimSpec { hint_window_secs: 1, ..SimSpec::default() });
    let c = Arc::clone(&cluster);
    sim.client("app", async move {
        assert!(all_healthy(&clients, 3).await, "seed {s}: region formed");
        clients[0].put("doomed", "v", All).await.expect("ALL");
        cut(&names, 2);
        assert!(clients[0].wait_live(2, Duration::from_secs(30)).await);
        clients[0].write("default", "doomed", Op::LwwDelete, Quorum).await.expect("delete at QUORUM");
        tokio::time::sleep(Duration::from_secs(3)).await; // the hint for n3 expires
                                                          // Repair and GC on the majority side: the pass cannot complete (n3 is away), so the
                                                          // GC safe point does not move and the tombstone stays.
        let st = clients[0].repair().await.expect("repair");
        assert_eq!((st.state.as_str(), st.peers_failed), ("failed", 1), "seed {s}: {st:?}");
        for i in [0, 1] {
            let rec = stored(&c.store(i), "doomed").expect("the tombstone is kept");
            assert!(rec.as_lww().is_some_and(|r| r.value().is_none()), "seed {s}: n{} holds a tombstone", i + 1);
        }
        assert_eq!(stored_value(&c.store(2), "doomed").as_deref(), Some("v"), "seed {s}: n3 still has the value");
        heal(&names, 2);
        assert!(all_healthy(&clients, 3).await, "seed {s}: healed");
        // A complete pass spreads the tombstone; the next GC may then drop it everywhere.
        let st = clients[0].repair().await.expect("repair");
        assert_eq!(st.state, "done", "seed {s}: {st:?}");
        assert!(stored_value(&c.store(2), "doomed").is_none(), "seed {s}: n3 got the tombstone");
        for c in &clients {
            assert_eq!(c.get("doomed", All).await.expect("ALL read"), None, "seed {s}: the key stays deleted");
        }
        // Complete passes on every node move every safe point past the delete (minus the
        // 500 ms clock bound): the tombstone is collected everywhere, and the key stays deleted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for c in &clients {
            let st = c.repair().await.expect("repair");
            assert_eq!(st.state, "done", "seed {s}");
        }
        for i in 0..3 {
            assert!(stored(&c.store(i), "doomed").is_none(), "seed {s}: n{} collected the tombstone", i + 1);
        }
        for c in &clients {
            assert_eq!(c.get("doomed", All).await.expect("ALL read"), None, "seed {s}: never comes back");
            assert_eq!(c.get("doomed", One).await.expect("ONE read"), None, "seed {s}: never comes back");
        }
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

#[test]
fn an_expired_value_missed_by_a_partitioned_replica_never_comes_back() {
    let s = seed(71);
    let Fixture { mut sim, cluster, clients, names } =
        fixture(s, SimSpec { hint_window_secs: 1, ..SimSpec::default() });
    let c = Arc::clone(&cluster);
    sim.client("app", async move {
        assert!(all_healthy(&clients, 3).await, "seed {s}: region formed");
        clients[0].put("session", "old", All).await.expect("ALL");
        cut(&names, 2);
        assert!(clients[0].wait_live(2, Duration::from_secs(30)).await);
        // A newer value with a 2 s TTL reaches n1 and n2 only.
        let op = Op::LwwPut { value: b"short-lived".to_vec(), ttl_ms: Some(2_000) };
        clients[0].write("default", "session", op, Quorum).await.expect("QUORUM");
        tokio::time::sleep(Duration::from_secs(3)).await; // expired, and the hint dropped
        assert_eq!(clients[0].get("session", Quorum).await.expect("read"), None, "seed {s}: expired reads absent");
        let st = clients[0].repair().await.expect("repair");
        assert_eq!(st.peers_failed, 1, "seed {s}: incomplete pass");
        assert!(stored(&c.store(0), "session").is_some(), "seed {s}: not collected before a complete pass");
        assert_eq!(stored_value(&c.store(2), "session").as_deref(), Some("old"), "seed {s}: n3 holds the old value");
        heal(&names, 2);
        assert!(all_healthy(&clients, 3).await, "seed {s}: healed");
        let st = clients[0].repair().await.expect("repair");
        assert_eq!(st.state, "done", "seed {s}: {st:?}");
        // The expired state replaced the old value on n3 (it is newer), so nothing revives.
        assert_eq!(stored_value(&c.store(2), "session").as_deref(), Some("short-lived"), "seed {s}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        for c in &clients {
            assert_eq!(c.repair().await.expect("repair").state, "done");
        }
        for i in 0..3 {
            assert!(stored(&c.store(i), "session").is_none(), "seed {s}: n{} collected the expired record", i + 1);
        }
        for c in &clients {
            assert_eq!(c.get("session", All).await.expect("ALL"), None, "seed {s}: the old value never comes back");
        }
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}
