//! Seeded simulation of a three-node region (turmoil; see `common/sim.rs`): the quorum
//! contracts under crashes, data loss, latency and partitions.
//!
//! - QUORUM writes survive the loss of one of three replicas (crash and wiped store).
//! - W + R > N: a read at R sees every write acknowledged at W, under random latency.
//! - ONE keeps working in a minority partition; QUORUM there is refused with `unavailable`;
//!   after the heal, a read at ALL returns the greatest LWW write of both sides.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::sim::{seed, SimCluster, SimSpec};
use meridian_config::ConsistencyLevel::{All, One, Quorum};
use meridian_region::RegionError;
use rand::{Rng, SeedableRng};

/// Waits until every node sees `n` live nodes. A node counts a peer live only after two of
/// its heartbeats, so one node's view says nothing about the others'.
async fn all_live(clients: &[common::sim::SimClient], n: usize) -> bool {
    for c in clients {
        if !c.wait_live(n, Duration::from_secs(30)).await {
            return false;
        }
    }
    true
}

fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(300))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        // turmoil queues 64 datagrams per socket by default and drops the rest; a kernel
        // socket buffers hundreds of KiB. Bursts of quorum traffic would otherwise drop gossip.
        .udp_capacity(4096)
        .build()
}

#[test]
fn quorum_writes_survive_the_loss_of_one_of_three_replicas() {
    for s in [seed(1), 2, 3] {
        let mut sim = sim(s);
        let cluster = SimCluster::build(&mut sim, SimSpec::default());
        let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
        let victim = cluster.name(2).to_owned();
        let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        sim.client("app", async move {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(s);
            assert!(all_live(&clients, 3).await, "seed {s}: region formed");
            let mut acked = BTreeMap::new();
            for i in 0..30 {
                let (k, v) = (format!("k{i}"), format!("v{i}"));
                let c = &clients[rng.random_range(0..3)];
                c.put(&k, &v, Quorum).await.unwrap_or_else(|e| panic!("seed {s}: write {k} via {}: {e}", c.node));
                acked.insert(k, v);
            }
            // Lose node 3 with its disk.
            ctl_tx.send("crash").expect("control");
            tokio::time::sleep(Duration::from_millis(10)).await;
            for i in 30..60 {
                let (k, v) = (format!("k{i}"), format!("v{i}"));
                let c = &clients[rng.random_range(0..2)];
                c.put(&k, &v, Quorum).await.unwrap_or_else(|e| panic!("seed {s}: write {k} after the loss: {e}"));
                acked.insert(k, v);
            }
            for (k, v) in &acked {
                let c = &clients[rng.random_range(0..2)];
                let got = c.get(k, Quorum).await.unwrap_or_else(|e| panic!("seed {s}: read {k}: {e}"));
                assert_eq!(got.as_deref(), Some(v.as_str()), "seed {s}: acknowledged write of {k} lost");
            }
            // Node 3 comes back with an empty disk: reads through it still see every write
            // (the other replica of each decision set has it, and blocking repair copies it).
            ctl_tx.send("bounce").expect("control");
            assert!(clients[2].wait_live(3, Duration::from_secs(30)).await, "seed {s}: n3 back");
            for (k, v) in &acked {
                let got = clients[2].get(k, Quorum).await.unwrap_or_else(|e| panic!("seed {s}: read {k} via n3: {e}"));
                assert_eq!(got.as_deref(), Some(v.as_str()), "seed {s}: {k} via the wiped node");
            }
            done_tx.send(()).expect("done");
            Ok(())
        });
        // Drive the simulation step by step so the crash happens when the app asks for it.
        loop {
            if let Ok(cmd) = ctl_rx.try_recv() {
                match cmd {
                    "crash" => {
                        sim.crash(victim.as_str());
                        cluster.wipe(2);
                    }
                    "bounce" => sim.bounce(victim.as_str()),
                    other => panic!("unknown control {other}"),
                }
            }
            match sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => panic!("seed {s}: simulation failed: {e}"),
            }
        }
        done_rx.try_recv().unwrap_or_else(|_| panic!("seed {s}: the app did not finish"));
    }
}

#[test]
fn reads_at_r_see_every_write_acknowledged_at_w_when_w_plus_r_exceeds_n() {
    let s = seed(11);
    let mut sim = turmoil::Builder::new()
        .rng_seed(s)
        .simulation_duration(Duration::from_secs(300))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(40))
        .udp_capacity(4096)
        .build();
    let cluster = SimCluster::build(&mut sim, SimSpec::default());
    let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
    sim.client("app", async move {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(s);
        assert!(all_live(&clients, 3).await, "seed {s}: region formed");
        let pairs = [(Quorum, Quorum), (All, One), (One, All)];
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        for i in 0..150 {
            let key = format!("k{}", rng.random_range(0..10));
            let value = format!("v{i}");
            let (w, r) = pairs[rng.random_range(0..pairs.len())];
            let writer = &clients[rng.random_range(0..3)];
            writer.put(&key, &value, w).await.unwrap_or_else(|e| panic!("seed {s}: write {key} at {w}: {e:?}"));
            last.insert(key.clone(), value.clone());
            let reader = &clients[rng.random_range(0..3)];
            let got = reader.get(&key, r).await.unwrap_or_else(|e| panic!("seed {s}: read {key} at {r}: {e}"));
            assert_eq!(
                got.as_deref(),
                Some(value.as_str()),
                "seed {s}: write at {w} via {} not seen by a read at {r} via {}",
                writer.node,
                reader.node
            );
        }
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

#[test]
fn one_keeps_working_in_a_minority_partition() {
    let s = seed(21);
    let mut sim = sim(s);
    let cluster = SimCluster::build(&mut sim, SimSpec::default());
    let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
    let names: Vec<String> = (0..3).map(|i| cluster.name(i).to_owned()).collect();
    sim.client("app", async move {
        assert!(all_live(&clients, 3).await, "seed {s}: region formed");
        clients[0].put("shared", "before", All).await.expect("write before the partition");
        // Cut n3 off from n1 and n2.
        turmoil::partition(names[2].as_str(), names[0].as_str());
        turmoil::partition(names[2].as_str(), names[1].as_str());
        assert!(clients[2].wait_live(1, Duration::from_secs(30)).await, "seed {s}: n3 sees itself alone");
        assert!(clients[0].wait_live(2, Duration::from_secs(30)).await, "seed {s}: n1 sees n3 down");

        // The minority side: ONE works, QUORUM is refused with a count of who answered.
        clients[2].put("minority", "m1", One).await.unwrap_or_else(|e| panic!("seed {s}: ONE write in minority: {e}"));
        assert_eq!(clients[2].get("minority", One).await.expect("ONE read in minority").as_deref(), Some("m1"));
        // The failure detector already sees the other two down, so the write is refused before
        // anything is sent or written: the client knows it had no effect.
        match clients[2].put("minority", "m2", Quorum).await {
            Err(RegionError::Unavailable { required: 2, answered: 0, asked: 0, failures, .. }) => {
                assert_eq!(failures.len(), 2, "seed {s}: both unreachable replicas are named");
            }
            other => panic!("seed {s}: QUORUM in a minority partition must be unavailable, got {other:?}"),
        }
        assert_eq!(
            clients[2].get("minority", One).await.expect("ONE read").as_deref(),
            Some("m1"),
            "seed {s}: a refused write changes nothing"
        );
        match clients[2].get("minority", Quorum).await {
            Err(RegionError::Unavailable { required: 2, .. }) => {}
            other => panic!("seed {s}: QUORUM read in a minority partition must be unavailable, got {other:?}"),
        }
        // The majority side keeps QUORUM.
        clients[0].put("majority", "M1", Quorum).await.expect("QUORUM in majority");
        // Both sides write the same key; the later write (greater HLC) must win after the heal.
        clients[0].put("shared", "from-majority", Quorum).await.expect("majority write");
        tokio::time::sleep(Duration::from_millis(20)).await;
        clients[2].put("shared", "from-minority", One).await.expect("minority write");

        turmoil::repair(names[2].as_str(), names[0].as_str());
        turmoil::repair(names[2].as_str(), names[1].as_str());
        assert!(all_live(&clients, 3).await, "seed {s}: healed");
        // ALL reads every replica, merges, and repairs.
        assert_eq!(clients[0].get("minority", All).await.expect("ALL").as_deref(), Some("m1"));
        assert_eq!(clients[1].get("majority", All).await.expect("ALL").as_deref(), Some("M1"));
        assert_eq!(clients[1].get("shared", All).await.expect("ALL").as_deref(), Some("from-minority"));
        // After the blocking repair at ALL, a QUORUM read anywhere agrees.
        for c in &clients {
            assert_eq!(c.get("shared", Quorum).await.expect("QUORUM").as_deref(), Some("from-minority"));
        }
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}

/// Regression (cross-region test): a leader replica refusing an mvr write at the sibling cap
/// reached the client as `503 unavailable`, an indeterminate failure; it is the client's
/// `409 too_many_siblings`, and nothing was written.
#[test]
fn an_mvr_write_past_the_sibling_cap_is_the_clients_error_not_unavailable() {
    let s = seed(81);
    let mut sim = sim(s);
    let cluster = SimCluster::build(&mut sim, SimSpec::default());
    let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
    sim.client("app", async move {
        assert!(all_live(&clients, 3).await, "seed {s}: region formed");
        // `mvrs` is the simulation's configured mvr keyspace.
        let blind = |i: usize| meridian_crdt::Op::MvrPut {
            value: Some(format!("v{i}").into_bytes()),
            context: meridian_crdt::CausalContext::new(),
            ttl_ms: None,
        };
        let mut refused = None;
        for i in 0..70 {
            match clients[i % 3].write("mvrs", "cart", blind(i), Quorum).await {
                Ok(_) => {}
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = refused.unwrap_or_else(|| panic!("seed {s}: the sibling cap never refused"));
        // The leader enforces the cap on the state it holds. A QUORUM write may not have
        // reached the next write's leader yet, so that leader can accept one more sibling than
        // the region holds in total: the refusal comes at the 65th write or a little after,
        // never before (64 siblings must be at the leader).
        assert!((64..70).contains(&i), "seed {s}: refused at write {} (cap 64)", i + 1);
        assert_eq!((e.code(), e.http_status()), ("too_many_siblings", 409), "seed {s}: {e:?}");
        Ok(())
    });
    sim.run().unwrap_or_else(|e| panic!("seed {s}: {e}"));
}
