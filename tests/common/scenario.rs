//! The three-region scenario of the simulation tests (turmoil; see `sim.rs`): three regions of
//! three nodes, every node running the cross-region replicator over simulated QUIC. Clients in
//! every region write all four value types at QUORUM while a seeded nemesis cuts random region
//! pairs apart and heals them, and (see [`Nemesis`]) crashes nodes, at most one per region at a
//! time, so QUORUM stays possible everywhere, and restarts them. After the last heal and
//! restart, once every backlog drained and anti-entropy ran in every region, every region and
//! every node is read and the history checker verifies contracts 2 to 7.
//!
//! `sim_wan.rs` runs one long seed of it; `sim_sweep.rs` runs many short ones and checks that
//! a seed replays to the same [`Outcome::trace`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use meridian_config::ConsistencyLevel::{All, One, Quorum};
use meridian_crdt::{CausalContext, Op, ReadValue};
use meridian_history::{check, FinalState, History, Observed, Op as HOp, OpResult, Report};
use meridian_region::RegionError;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

use super::sim::{drive, new_sim, sim_ms, HostFault, SimClient, SimCluster, SimSpec, EPOCH_MS};

pub const REGIONS: [&str; 3] = ["us", "eu", "ap"];
/// Nodes per region.
const NODES: usize = 3;

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Client operations, one at a time, each through a random live node.
    pub steps: u64,
    /// The nemesis acts before every `nemesis_every`-th operation.
    pub nemesis_every: u64,
    /// The faults besides region cuts.
    pub nemesis: Nemesis,
    /// Virtual time between two operations.
    pub pause: Duration,
    /// Virtual time after which turmoil fails the run.
    pub limit: Duration,
}

impl Scenario {
    /// `sim_wan.rs`: 240 operations, region cuts only.
    pub fn long() -> Scenario {
        Scenario {
            steps: 240,
            nemesis_every: 20,
            nemesis: Nemesis::Cuts,
            pause: Duration::from_millis(50),
            limit: Duration::from_secs(900),
        }
    }

    /// The sweep's scenario: fewer operations, a busier nemesis (region cuts only: with
    /// crashes, runs find the open failures of `docs/reliability.md`).
    pub fn compact() -> Scenario {
        Scenario {
            steps: 60,
            nemesis_every: 6,
            nemesis: Nemesis::Cuts,
            pause: Duration::from_millis(50),
            limit: Duration::from_secs(600),
        }
    }
}

/// The faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nemesis {
    /// Region pairs cut apart and healed.
    Cuts,
    /// And node crashes (at most one per region down at a time; the operation that follows a
    /// crash goes through the crashing node), every crashed node restarting after the workload.
    Crashes,
    /// And crashed nodes also restart during the workload.
    Restarts,
}

impl std::str::FromStr for Nemesis {
    type Err = String;

    fn from_str(s: &str) -> Result<Nemesis, String> {
        match s {
            "cuts" => Ok(Nemesis::Cuts),
            "crashes" => Ok(Nemesis::Crashes),
            "restarts" => Ok(Nemesis::Restarts),
            other => Err(format!("{other:?} is not a nemesis (cuts, crashes, restarts)")),
        }
    }
}

impl std::fmt::Display for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Nemesis::Cuts => "cuts",
            Nemesis::Crashes => "crashes",
            Nemesis::Restarts => "restarts",
        })
    }
}

/// What one run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The checker's verdict.
    pub report: Report,
    /// What the run did and observed, one line per history event, nemesis action and final
    /// read, without the virtual times and HLC versions (see [`Outcome::timed`]): the same
    /// seed gives the same bytes.
    pub trace: String,
    /// The same lines with the virtual ms of every event and action and every HLC version.
    /// These are not reproducible: see `docs/reliability.md`, "Determinism".
    pub timed: String,
}

/// A crash lands this many virtual ms after the nemesis asks for it, while the operation that
/// follows, which the victim coordinates, is in flight: the victim has received it (the app
/// runs after the nodes in a turmoil step, so a node reads a command one ms after it is sent)
/// and sent its replica writes, whose answers take at least two more ms (one ms of latency
/// each way). So that operation always ends indeterminate, whatever the latencies drawn.
const CRASH_DELAY_MS: u64 = 2;

/// How far behind the simulated wall clock a write's timestamp may be: its coordinator stamps
/// it before the answer travels back (a few ms of latency, at most the RPC timeout).
const MAX_CLOCK_LAG_MS: u64 = 500;

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
        Ok(o) => {
            // Every node's wall clock is the simulation's, restarts included (see `sim.rs`):
            // a write's HLC is at most a few ms of latency ahead of it, never behind.
            let now = EPOCH_MS + sim_ms();
            let stamped = o.ts.physical_ms();
            assert!(
                stamped + MAX_CLOCK_LAG_MS >= now,
                "{}: op {id} stamped at {stamped} ms, {} ms behind the simulated clock",
                client.node,
                now - stamped
            );
            history.ok(id, OpResult::written(o.version()))
        }
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

/// One random operation of client `cid` at step `n`.
fn random_op(rng: &mut impl Rng, cid: &str, n: u64) -> HOp {
    match rng.random_range(0..10) {
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
    }
}

/// Runs `scenario` with seed `s`. Panics (naming the seed) when the harness cannot get to the
/// check: a region that does not form, a backlog that does not drain, a final read that fails.
pub fn run(s: u64, scenario: &Scenario) -> Outcome {
    let mut sim = new_sim(s, scenario.limit);
    let cluster = Arc::new(SimCluster::build_regions(&mut sim, &REGIONS, SimSpec::default()));
    let clients: Vec<SimClient> = (0..cluster.len()).map(|i| cluster.client(i)).collect();
    let hosts: Vec<Vec<String>> =
        (0..REGIONS.len()).map(|r| (0..NODES).map(|j| cluster.name(r * NODES + j).to_owned()).collect()).collect();
    let history = Arc::new(History::with_clock(sim_ms));
    let nemesis = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    // The quiescing rounds (how many, and what they repaired, depend on timing: timed only).
    let rounds = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let result = Arc::new(Mutex::new(None));
    let (ctl_tx, ctl_rx) = std::sync::mpsc::channel::<HostFault>();
    let (h, actions, verdict, sc) = (Arc::clone(&history), Arc::clone(&nemesis), Arc::clone(&result), scenario.clone());
    let quiesce = Arc::clone(&rounds);
    sim.client("app", async move {
        let note = |action: String| actions.lock().push((sim_ms(), action));
        for c in &clients {
            assert!(c.wait_live(NODES, Duration::from_secs(60)).await, "seed {s}: {} formed its region", c.node);
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
        // Crashed nodes (indexes into `clients`), at most one per region.
        let mut down: Vec<usize> = Vec::new();
        for step in 0..sc.steps {
            // The node just told to crash, which coordinates the next operation.
            let mut victim = None;
            if step % sc.nemesis_every == 0 {
                // A node fault: restart a crashed node, or crash one. Without mid-run restarts,
                // a restart turns into a region cut or heal, and crashed nodes stay down.
                let node_fault = sc.nemesis != Nemesis::Cuts && rng.random_bool(0.4);
                let restart = node_fault && !down.is_empty() && (down.len() == REGIONS.len() || rng.random_bool(0.5));
                if restart && sc.nemesis == Nemesis::Restarts {
                    let i = down.remove(rng.random_range(0..down.len()));
                    note(format!("restart {}", clients[i].node));
                    ctl_tx.send(HostFault::Restart(clients[i].node.clone())).expect("driver");
                } else if node_fault && !restart {
                    let up: Vec<usize> = (0..REGIONS.len()).filter(|r| !down.iter().any(|d| d / NODES == *r)).collect();
                    let i = up[rng.random_range(0..up.len())] * NODES + rng.random_range(0..NODES);
                    note(format!("crash {}", clients[i].node));
                    ctl_tx
                        .send(HostFault::Crash { host: clients[i].node.clone(), at_ms: sim_ms() + CRASH_DELAY_MS })
                        .expect("driver");
                    down.push(i);
                    victim = Some(i);
                } else if !cuts.is_empty() && rng.random_bool(0.5) {
                    let (a, b) = cuts.remove(rng.random_range(0..cuts.len()));
                    note(format!("heal {}-{}", REGIONS[a], REGIONS[b]));
                    cut(a, b, false);
                } else {
                    let a = rng.random_range(0..3);
                    let b = (a + 1 + rng.random_range(0..2)) % 3;
                    note(format!("cut {}-{}", REGIONS[a], REGIONS[b]));
                    cut(a, b, true);
                    cuts.push((a, b));
                }
            }
            // A random node; if it is down, the next one of its region (never two down).
            let mut i = rng.random_range(0..clients.len());
            if down.contains(&i) {
                i = i / NODES * NODES + (i + 1) % NODES;
            }
            let c = &clients[victim.unwrap_or(i)];
            let cid = format!("{}-client", c.node);
            let op = random_op(&mut rng, &cid, step);
            // Through a crashing node, the answer is lost (an indeterminate `info`); should the
            // command wait in the node's queue instead, the timeout leaves it `pending`, which
            // the checker also counts as indeterminate.
            let _ = tokio::time::timeout(Duration::from_secs(30), perform(&h, c, &cid, op)).await;
            tokio::time::sleep(sc.pause).await;
        }
        for (a, b) in cuts.drain(..) {
            note(format!("heal {}-{}", REGIONS[a], REGIONS[b]));
            cut(a, b, false);
        }
        for i in down.drain(..) {
            note(format!("restart {}", clients[i].node));
            ctl_tx.send(HostFault::Restart(clients[i].node.clone())).expect("driver");
        }
        for c in &clients {
            assert!(c.wait_live(NODES, Duration::from_secs(60)).await, "seed {s}: {} rejoined its region", c.node);
        }
        // Quiesce: hints are replayed and the backlogs drain, then anti-entropy makes the nodes
        // of each region equal. A write that reached its key's shipper only through a hint or
        // a repair is a `Repair` entry in the shipper's log, shipped from there: so hints go
        // first, and after a pass that repaired something, drain and repair again until a pass
        // repairs nothing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        for round in 1.. {
            loop {
                let (mut backlog, mut hints) = (0u64, 0u64);
                for c in &clients {
                    backlog += c.regions().await.map_or(1, |r| r.peers.iter().map(|p| p.backlog).sum());
                    hints += c.hints().await.map_or(1, |h| h.queues.iter().map(|q| q.pending).sum());
                }
                if backlog == 0 && hints == 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "seed {s}: backlog {backlog} and hints {hints} did not drain"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut repaired = 0;
            for c in &clients {
                let st = c.repair().await.expect("repair");
                assert_eq!(st.state, "done", "seed {s}: {st:?}");
                repaired += st.keys_repaired;
            }
            quiesce.lock().push((sim_ms(), format!("quiesce round {round}: anti-entropy repaired {repaired} keys")));
            if repaired == 0 {
                break;
            }
            assert!(round < 10, "seed {s}: anti-entropy still repairing keys after {round} rounds");
        }
        let mut keys = BTreeSet::new();
        for e in h.events() {
            let (ks, key) = e.op.target();
            keys.insert((ks.to_owned(), key.to_owned()));
        }
        let mut fin = FinalState::default();
        for (r, region) in REGIONS.iter().enumerate() {
            for (ks, key) in &keys {
                let out = clients[r * NODES]
                    .read(ks, key, All)
                    .await
                    .unwrap_or_else(|e| panic!("seed {s}: read {ks}/{key}: {e}"));
                let version = out.version();
                fin.set_region(region, ks, key, observed(out.value, version));
                for j in 0..NODES {
                    let c = &clients[r * NODES + j];
                    let out = c.read(ks, key, One).await.unwrap_or_else(|e| panic!("seed {s}: read {ks}/{key}: {e}"));
                    let version = out.version();
                    fin.set_node(region, &c.node, ks, key, observed(out.value, version));
                }
            }
        }
        let report = check(&h.events(), &fin);
        *verdict.lock() = Some((report, fin));
        Ok(())
    });
    drive(&mut sim, &ctl_rx).unwrap_or_else(|e| panic!("seed {s}: {e}"));
    let (report, fin) = result.lock().take().unwrap_or_else(|| panic!("seed {s}: the app did not finish"));
    let nemesis = nemesis.lock();
    let mut timed = trace(&history, &nemesis, &fin, true);
    for (t, round) in rounds.lock().iter() {
        let _ = writeln!(timed, "{t} {round}");
    }
    Outcome { report, trace: trace(&history, &nemesis, &fin, false), timed }
}

/// The history (in recording order), the nemesis actions and the final reads, one per line;
/// `timed`: with each event's `t` (virtual ms), each action's time and every HLC version.
fn trace(history: &History, nemesis: &[(u64, String)], fin: &FinalState, timed: bool) -> String {
    let mut out = String::new();
    for mut e in history.events() {
        if !timed {
            e.t = 0;
            e.result.version = None;
        }
        let _ = writeln!(out, "{}", serde_json::to_string(&e).expect("event as JSON"));
    }
    for (t, action) in nemesis {
        match timed {
            true => writeln!(out, "nemesis {t} {action}"),
            false => writeln!(out, "nemesis {action}"),
        }
        .expect("write to a String");
    }
    let show = |o: &Observed| match o {
        Observed::Lww { value, version } if timed => format!("lww {value:?} {version}"),
        Observed::Lww { value, .. } => format!("lww {value:?}"),
        other => format!("{other:?}"),
    };
    for (region, keys) in &fin.by_region {
        for ((ks, key), o) in keys {
            let _ = writeln!(out, "final {region} ALL {ks}/{key} {}", show(o));
        }
    }
    for (region, nodes) in &fin.by_node {
        for (node, keys) in nodes {
            for ((ks, key), o) in keys {
                let _ = writeln!(out, "final {region} {node} {ks}/{key} {}", show(o));
            }
        }
    }
    out
}
