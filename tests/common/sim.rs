//! Deterministic-network simulation of whole nodes (turmoil): each node is a turmoil host
//! running the real [`Node`] (membership, RPC over quinn on turmoil's UDP, coordinator) on an
//! in-memory store, with mutual TLS from a development CA.
//!
//! Clients are co-located with a node: a test sends commands to node `i` through a channel and
//! that node coordinates them, as an application talking to its nearest node would. Network
//! faults (partitions, holds, latency) come from turmoil; crashes are `sim.crash` /
//! `sim.bounce`, and a node's store lives outside its host, so a crash keeps its data unless
//! the test wipes it ([`SimCluster::wipe`]).
//!
//! Every run is seeded; the seed is printed first so a failure can be replayed with
//! `MERIDIAN_SIM_SEED=<seed>`.

use std::sync::Arc;
use std::time::Duration;

use meridian_config::{ConsistencyLevel, NodeConfig};
use meridian_crdt::{Op, ReadValue};
use meridian_local::{MemoryEngine, NodeStore, Store};
use meridian_net::TlsIdentity;
use meridian_region::clock::TokioClock;
use meridian_region::node::{Network, Node, NodeOptions};
use meridian_region::service::{
    HintsStatus, KvService, ReadOutcome, RegionsStatus, RepairStatus, WriteOutcome, WriteRequest,
};
use meridian_region::RegionError;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Port every simulated node listens on (each host has its own IP).
pub const RPC_PORT: u16 = 7000;
/// WAN port of every simulated node (several regions).
pub const WAN_PORT: u16 = 7100;
/// The simulated wall clock starts here (2024-01-01).
pub const EPOCH_MS: u64 = 1_704_067_200_000;

/// The seed of this run: `MERIDIAN_SIM_SEED` or `default`. Printed. Also installs a log
/// subscriber when `RUST_LOG` is set (for replaying a failure).
pub fn seed(default: u64) -> u64 {
    init_logs();
    let s = std::env::var("MERIDIAN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    eprintln!("simulation seed {s} (replay with MERIDIAN_SIM_SEED={s})");
    s
}

/// Virtual ms since the simulation started (0 outside a simulated host).
pub fn sim_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A simulation seeded with `seed` that fails after `limit` of virtual time: 1 ms ticks, 1–5 ms
/// of latency, and 4096 datagrams of buffer per socket (turmoil queues 64 by default and drops
/// the rest; bursts of quorum traffic would otherwise drop gossip).
pub fn new_sim(seed: u64, limit: Duration) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(limit)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .udp_capacity(4096)
        .build()
}

/// A crash or restart a simulated client asks for: turmoil only lets the owner of the `Sim`
/// crash and restart hosts, so the client sends these to [`drive`].
#[derive(Debug)]
pub enum HostFault {
    /// Crash `host` once the simulation reaches `at_ms` (virtual ms since its start).
    Crash { host: String, at_ms: u64 },
    /// Restart `host` (its store is kept unless the test wiped it).
    Restart(String),
}

/// Steps `sim` until its clients are done, applying the faults they send.
pub fn drive(sim: &mut turmoil::Sim<'_>, faults: &std::sync::mpsc::Receiver<HostFault>) -> turmoil::Result {
    let mut crashes: Vec<(String, u64)> = Vec::new();
    loop {
        while let Ok(fault) = faults.try_recv() {
            match fault {
                HostFault::Crash { host, at_ms } => crashes.push((host, at_ms)),
                HostFault::Restart(host) => sim.bounce(host.as_str()),
            }
        }
        let now = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        crashes.retain(|(host, at)| {
            if *at > now {
                return true;
            }
            sim.crash(host.as_str());
            false
        });
        if sim.step()? {
            return Ok(());
        }
    }
}

/// Installs a log subscriber when `RUST_LOG` is set (for replaying a failure).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

enum Cmd {
    Write(WriteRequest, oneshot::Sender<Result<WriteOutcome, RegionError>>),
    Read(String, Vec<u8>, Option<ConsistencyLevel>, oneshot::Sender<Result<ReadOutcome, RegionError>>),
    Live(oneshot::Sender<usize>),
    Repair(oneshot::Sender<RepairStatus>),
    Hints(oneshot::Sender<Result<HintsStatus, RegionError>>),
    Regions(oneshot::Sender<RegionsStatus>),
}

struct Slot {
    /// The turmoil host name.
    name: String,
    /// The node id within its region.
    node: String,
    region: String,
    store: Mutex<Arc<dyn Store>>,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Cmd>>>,
}

/// Runs one node (and, with several regions, its replicator) until its host is crashed.
async fn run_node(
    slot: Arc<Slot>,
    all: Vec<(String, Vec<String>)>,
    spec: SimSpec,
    dir: std::path::PathBuf,
    multi: bool,
) -> turmoil::Result {
    let ip = turmoil::lookup(slot.name.as_str());
    let mut cfg = NodeConfig::default();
    cfg.node.id = slot.node.clone();
    cfg.node.region = slot.region.clone();
    // turmoil binds only the unspecified address; peers reach the host's IP.
    cfg.rpc.listen = ([0, 0, 0, 0], RPC_PORT).into();
    cfg.rpc.advertise = Some((ip, RPC_PORT).into());
    let own = &all.iter().find(|(r, _)| *r == slot.region).expect("own region").1;
    cfg.cluster.seeds = own
        .iter()
        .filter(|n| **n != slot.name)
        .map(|n| format!("{}:{RPC_PORT}", turmoil::lookup(n.as_str())))
        .collect();
    cfg.cluster.replication_factor = spec.replication_factor;
    cfg.keyspaces.push(meridian_config::KeyspaceConfig {
        name: "mvrs".into(),
        kind: meridian_config::KeyspaceType::Mvr,
        consistency: None,
    });
    cfg.cluster.vnodes = 32;
    cfg.cluster.rpc_timeout_ms = spec.rpc_timeout_ms;
    cfg.cluster.gossip_interval_ms = spec.gossip_interval_ms;
    cfg.cluster.hint_window_secs = spec.hint_window_secs;
    let region_dir = dir.join(&slot.region);
    let tls = TlsIdentity::from_pem_files(
        &dir.join("ca.pem"),
        &region_dir.join(format!("{}.pem", slot.node)),
        &region_dir.join(format!("{}.key", slot.node)),
        &format!("{}.region.meridian", slot.region),
    )?;
    let store = slot.store.lock().clone();
    let node = Node::start(NodeOptions {
        config: cfg,
        store: Arc::clone(&store),
        // Each start of a host is a fresh tokio runtime whose clock starts at zero: the wall
        // clock resumes from the simulation's elapsed time, so a restarted node is not behind
        // its peers by its uptime (which its HLC would count as skew beyond max_offset).
        clock: Arc::new(TokioClock::new(EPOCH_MS + sim_ms())),
        tls,
        http_addr: None,
        network: Network::Sim,
        ready_timeout: Duration::from_secs(10),
        inline_storage: true,
    })
    .await?;
    if multi {
        let peers = all
            .iter()
            .filter(|(r, _)| *r != slot.region)
            .map(|(r, hosts)| meridian_wan::PeerConfig {
                region: r.clone(),
                addresses: hosts
                    .iter()
                    .map(|h| std::net::SocketAddr::new(turmoil::lookup(h.as_str()), WAN_PORT))
                    .collect(),
                server_name: format!("{r}.wan.meridian"),
            })
            .collect();
        let wan_tls = TlsIdentity::from_pem_files(
            &dir.join("wan-ca.pem"),
            &region_dir.join("wan.pem"),
            &region_dir.join("wan.key"),
            &format!("{}.wan.meridian", slot.region),
        )?;
        let mut rcfg = meridian_wan::ReplicatorConfig::new(Some(([0, 0, 0, 0], WAN_PORT).into()), peers);
        rcfg.simulated = true;
        rcfg.inline_storage = true;
        rcfg.batch_max_delay = Duration::from_millis(5);
        rcfg.request_timeout = Duration::from_secs(2);
        let replicator = meridian_wan::Replicator::start(rcfg, &wan_tls, node.wan_bridge(), store).await?;
        node.attach_replicator(replicator);
    }
    let mut rx = slot.rx.lock().await;
    while let Some(cmd) = rx.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            match cmd {
                Cmd::Write(req, reply) => {
                    let _ = reply.send(node.write(req).await);
                }
                Cmd::Read(ks, key, level, reply) => {
                    let _ = reply.send(node.read(&ks, &key, level).await);
                }
                Cmd::Repair(reply) => {
                    // Starts a pass (or joins the running one) and waits for its end.
                    let _ = node.start_repair(None);
                    loop {
                        let st = node.repair_status();
                        if st.state != "running" {
                            let _ = reply.send(st);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Cmd::Hints(reply) => {
                    let _ = reply.send(node.hints().await);
                }
                Cmd::Regions(reply) => {
                    let _ = reply.send(node.regions());
                }
                Cmd::Live(reply) => {
                    // Live *and* normal: joining nodes are not read replicas yet.
                    let healthy = node.cluster_status().nodes.iter().filter(|n| n.status == "healthy").count();
                    let _ = reply.send(healthy);
                }
            }
        });
    }
    Ok(())
}

/// A simulated region (or several).
pub struct SimCluster {
    slots: Vec<Arc<Slot>>,
    _certs: tempfile::TempDir,
}

/// Settings of a simulated region.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub nodes: usize,
    pub replication_factor: u32,
    pub rpc_timeout_ms: u64,
    pub gossip_interval_ms: u64,
    pub hint_window_secs: u64,
}

impl Default for SimSpec {
    fn default() -> Self {
        SimSpec {
            nodes: 3,
            replication_factor: 3,
            rpc_timeout_ms: 500,
            gossip_interval_ms: 100,
            hint_window_secs: 3600,
        }
    }
}

pub fn memory_store() -> Arc<dyn Store> {
    Arc::new(NodeStore::open(MemoryEngine::new()).expect("memory store"))
}

impl SimCluster {
    /// Registers one host per node (`n1`, `n2`, ...) in `sim`.
    pub fn build(sim: &mut turmoil::Sim<'_>, spec: SimSpec) -> SimCluster {
        Self::build_regions(sim, &["sim"], spec)
    }

    /// Registers `spec.nodes` hosts per region. With one region they are `n1`, `n2`, ...; with
    /// several, `<region>-n1`, ... and every node also runs the cross-region replicator (WAN
    /// port [`WAN_PORT`]) towards every other region's nodes. Slots are in region order.
    pub fn build_regions(sim: &mut turmoil::Sim<'_>, regions: &[&str], spec: SimSpec) -> SimCluster {
        let certs = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (1..=spec.nodes).map(|i| format!("n{i}")).collect();
        let bundle: Vec<(&str, Vec<&str>)> =
            regions.iter().map(|r| (*r, names.iter().map(String::as_str).collect())).collect();
        meridian_net::certs::write_dev_bundle(certs.path(), &bundle).expect("dev certificates");
        let multi = regions.len() > 1;
        let host = |region: &str, node: &str| if multi { format!("{region}-{node}") } else { node.to_owned() };
        let all: Vec<(String, Vec<String>)> =
            regions.iter().map(|r| (r.to_string(), names.iter().map(|n| host(r, n)).collect())).collect();
        let mut slots = Vec::new();
        for region in regions {
            for node in &names {
                let (tx, rx) = mpsc::unbounded_channel();
                let slot = Arc::new(Slot {
                    name: host(region, node),
                    node: node.clone(),
                    region: region.to_string(),
                    store: Mutex::new(memory_store()),
                    tx,
                    rx: Arc::new(tokio::sync::Mutex::new(rx)),
                });
                slots.push(Arc::clone(&slot));
                let (all, spec) = (all.clone(), spec.clone());
                let dir = certs.path().to_path_buf();
                let host_name = slot.name.clone();
                sim.host(host_name.as_str(), move || {
                    let (slot, all, spec, dir) = (Arc::clone(&slot), all.clone(), spec.clone(), dir.clone());
                    async move { run_node(slot, all, spec, dir, multi).await }
                });
            }
        }
        SimCluster { slots, _certs: certs }
    }

    /// The host name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.slots[i].name
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Replaces node `i`'s store by an empty one (its disk is lost); takes effect at its next
    /// start (`sim.bounce`).
    pub fn wipe(&self, i: usize) {
        *self.slots[i].store.lock() = memory_store();
    }

    /// Node `i`'s store, as it is on its "disk" (readable from the test while the node runs).
    pub fn store(&self, i: usize) -> Arc<dyn Store> {
        self.slots[i].store.lock().clone()
    }

    /// A client of node `i`.
    pub fn client(&self, i: usize) -> SimClient {
        SimClient {
            tx: self.slots[i].tx.clone(),
            node: self.slots[i].name.clone(),
            region: self.slots[i].region.clone(),
        }
    }

    /// The region of node `i`.
    pub fn region_of(&self, i: usize) -> &str {
        &self.slots[i].region
    }
}

/// An application talking to one node.
#[derive(Clone)]
pub struct SimClient {
    tx: mpsc::UnboundedSender<Cmd>,
    pub node: String,
    pub region: String,
}

/// A lost answer (the node crashed while coordinating) reads as this error.
fn lost() -> RegionError {
    RegionError::rpc("sim", "the coordinator went away")
}

impl SimClient {
    pub async fn write(
        &self,
        keyspace: &str,
        key: &str,
        op: Op,
        level: ConsistencyLevel,
    ) -> Result<WriteOutcome, RegionError> {
        let (tx, rx) = oneshot::channel();
        let req = WriteRequest {
            keyspace: keyspace.into(),
            key: key.as_bytes().to_vec(),
            op,
            consistency: Some(level),
            if_match: None,
        };
        self.tx.send(Cmd::Write(req, tx)).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }

    pub async fn put(&self, key: &str, value: &str, level: ConsistencyLevel) -> Result<WriteOutcome, RegionError> {
        self.write("default", key, Op::LwwPut { value: value.as_bytes().to_vec(), ttl_ms: None }, level).await
    }

    pub async fn read(&self, keyspace: &str, key: &str, level: ConsistencyLevel) -> Result<ReadOutcome, RegionError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Read(keyspace.into(), key.as_bytes().to_vec(), Some(level), tx)).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }

    /// The LWW value of `key` at `level` (`None`: absent).
    pub async fn get(&self, key: &str, level: ConsistencyLevel) -> Result<Option<String>, RegionError> {
        Ok(match self.read("default", key, level).await?.value {
            ReadValue::Lww { value, .. } => Some(String::from_utf8_lossy(&value).into_owned()),
            _ => None,
        })
    }

    /// The node's cross-region status (`None` if it does not answer).
    pub async fn regions(&self) -> Option<RegionsStatus> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Regions(tx)).ok()?;
        tokio::time::timeout(Duration::from_millis(500), rx).await.ok()?.ok()
    }

    /// Runs an anti-entropy pass on the node now and returns its final status.
    pub async fn repair(&self) -> Result<RepairStatus, RegionError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Repair(tx)).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())
    }

    /// The node's hint queues.
    pub async fn hints(&self) -> Result<HintsStatus, RegionError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Hints(tx)).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }

    /// Nodes the node sees live and normal (`None` if it does not answer).
    pub async fn live(&self) -> Option<usize> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Live(tx)).ok()?;
        tokio::time::timeout(Duration::from_millis(200), rx).await.ok()?.ok()
    }

    /// Waits (virtual time) until the node sees `n` live, normal nodes.
    pub async fn wait_live(&self, n: usize, timeout: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while start.elapsed() < timeout {
            if self.live().await == Some(n) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}
