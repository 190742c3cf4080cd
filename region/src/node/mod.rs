//! The node: storage, clock, membership, RPC and the coordinator, composed.
//!
//! [`Node::start`] binds the RPC endpoint, serves replica requests and gossip on it, starts
//! membership, publishes this node's tokens and addresses, and waits until it sees itself on
//! the ring. [`Node`] implements [`KvService`], which the HTTP API serves.
//!
//! # Layout
//!
//! - `mod.rs`: [`Node`], [`NodeOptions`], start-up, shutdown, the RPC handler, [`KvService`].
//! - `coordinator.rs`: quorum writes and reads, hints, read repair.
//! - `replica.rs`: [`Replica`], requests executed against the local store.
//! - `keyspaces.rs`: [`Keyspaces`], the keyspace registry.
//! - `handoff.rs`: hint replay.
//! - `repair.rs`: anti-entropy passes and the tombstone GC they unlock.
//! - `streaming.rs`: join and decommission with range streaming.
//! - `throttle.rs`: the rate limit of background transfers.

pub mod coordinator;
pub mod handoff;
pub mod keyspaces;
pub mod prometheus;
pub mod repair;
pub mod replica;
pub mod snapshot;
pub mod streaming;
pub mod throttle;
pub mod wan;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use meridian_config::{ConsistencyLevel, NodeConfig};
use meridian_crdt::{HlcClock, Limits, NodeId, ValueKind};
use meridian_local::Store;
use meridian_net::{Endpoint, Handler, TlsIdentity, TransportOptions};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

pub use keyspaces::{Keyspace, Keyspaces};
pub use replica::Replica;

use crate::clock::WallClock;
use crate::error::RegionError;
use crate::membership::view::encode_tokens;
use crate::membership::view::keys;
use crate::membership::{node_number, GossipInbox, Membership, MembershipConfig};
use crate::membership::{NodeState, QuicGossipTransport, RegionView};
use crate::metrics::RegionMetrics;
use crate::ring::tokens_for;
use crate::rpc::{
    decode_message, decode_request_traced, encode_response, KeyspaceDef, Message, Request, Response, ALPN,
};
use crate::service::{
    ClusterStatus, Health, IngressLimits, KeyspaceInfo, KvService, NodeStatus, ReadOutcome, WriteOutcome, WriteRequest,
};

/// Store metadata entry holding this node's ring tokens (postcard `Vec<u64>`), written once at
/// the first start so the node keeps its tokens whatever `cluster.vnodes` says later.
const META_TOKENS: &str = "ring_tokens";
/// How often the node republishes its record count.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(2);

/// How the RPC endpoint gets its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A real UDP socket.
    Udp,
    /// A turmoil socket (simulation).
    #[cfg(feature = "sim")]
    Sim,
}

/// Everything a node needs to start.
#[derive(Debug)]
pub struct NodeOptions {
    /// The node's configuration (validated).
    pub config: NodeConfig,
    /// Its store.
    pub store: Arc<dyn Store>,
    /// Its wall clock.
    pub clock: Arc<dyn WallClock>,
    /// Its TLS identity for intra-region traffic.
    pub tls: TlsIdentity,
    /// The address its HTTP API listens on, if it serves one (published in gossip).
    pub http_addr: Option<SocketAddr>,
    /// The socket kind.
    pub network: Network,
    /// How long to wait at start-up until the node sees itself on the ring.
    pub ready_timeout: Duration,
    /// Run store calls inline on the async task instead of the blocking pool. Only for stores
    /// that never block (the in-memory engine, in simulation).
    pub inline_storage: bool,
}

/// Shared state of a node (behind `Arc` in [`Node`]).
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) me: NodeId,
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn WallClock>,
    pub(crate) keyspaces: Arc<Keyspaces>,
    pub(crate) replica: Replica,
    pub(crate) membership: Membership,
    /// Gossip traffic of the membership transport.
    pub(crate) gossip_stats: Arc<crate::membership::GossipStats>,
    pub(crate) endpoint: Endpoint,
    pub(crate) rf: usize,
    pub(crate) rpc_timeout: Duration,
    pub(crate) default_consistency: ConsistencyLevel,
    pub(crate) limits: IngressLimits,
    pub(crate) crdt_limits: Limits,
    pub(crate) metrics: Arc<RegionMetrics>,
    pub(crate) started: Instant,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) ready: AtomicBool,
    /// This node's role in the ring.
    pub(crate) state: Mutex<NodeState>,
    pub(crate) gossip_interval: Duration,
    pub(crate) hint_window: Duration,
    pub(crate) ae_interval: Duration,
    pub(crate) gc_grace: Duration,
    pub(crate) max_offset_ms: u64,
    pub(crate) hint_throttle: throttle::Throttle,
    pub(crate) repair_throttle: throttle::Throttle,
    pub(crate) stream_throttle: throttle::Throttle,
    pub(crate) repair: Mutex<crate::service::RepairStatus>,
    pub(crate) streaming: Mutex<crate::service::StreamingStatus>,
    /// This node's part of the region fence.
    pub(crate) fence_local: AtomicBool,
    /// Where snapshots go (`storage.snapshot_dir`).
    pub(crate) snapshot_dir: std::path::PathBuf,
    /// Started from a restored snapshot: a full repair runs at once.
    pub(crate) restored: bool,
    /// `(ring version and live set hash, epoch, ranges)` of the shipping ranges.
    pub(crate) shipping_cache: Mutex<Option<(u64, u64, Vec<meridian_local::TokenRange>)>>,
    /// The cross-region replicator, once the server attached one.
    pub(crate) replicator: std::sync::OnceLock<meridian_wan::Replicator>,
}

impl Inner {
    pub(crate) fn accepting(&self) -> Result<(), RegionError> {
        if self.shutting_down.load(Ordering::Relaxed) {
            Err(RegionError::ShuttingDown)
        } else {
            Ok(())
        }
    }
}

/// A running node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Serves RPC requests and gossip arriving on the endpoint.
#[derive(Debug)]
struct RpcHandler {
    replica: Replica,
    inbox: GossipInbox,
    metrics: Arc<RegionMetrics>,
}

impl Handler for RpcHandler {
    fn request(&self, _peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        let replica = self.replica.clone();
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let response = match decode_request_traced(&payload) {
                Ok((req, traceparent)) => {
                    metrics.inc(&metrics.rpc_served);
                    // A span only for requests that are part of a trace (client operations and
                    // what they cause): background traffic (hints, repair) would be noise.
                    let span = match traceparent.as_deref() {
                        Some(tp) => {
                            let span = tracing::info_span!("replica.handle", rpc = req.name(), node = %replica.me);
                            meridian_net::trace::set_remote_parent(&span, Some(tp));
                            span
                        }
                        None => tracing::Span::none(),
                    };
                    replica.handle(req).instrument(span).await
                }
                Err(e) => {
                    metrics.inc(&metrics.rpc_malformed);
                    Response::error(&e)
                }
            };
            Bytes::from(encode_response(&response))
        })
    }

    fn message(&self, peer: SocketAddr, payload: Bytes) {
        match decode_message(&payload) {
            Ok(Message::Gossip(bytes)) => self.inbox.deliver(peer, &bytes),
            Err(_) => self.metrics.inc(&self.metrics.rpc_malformed),
        }
    }
}

fn store_err(e: meridian_local::StoreError) -> RegionError {
    RegionError::Store(e)
}

impl Node {
    /// Starts a node.
    pub async fn start(opts: NodeOptions) -> Result<Node, RegionError> {
        let cfg = &opts.config;
        let me = node_number(&cfg.node.region, &cfg.node.id);
        let metrics = Arc::new(RegionMetrics::default());
        let store = Arc::clone(&opts.store);

        let keyspaces = Arc::new(Keyspaces::new(&cfg.keyspaces));
        if let Some(bytes) = store.get_meta(keyspaces::META_KEY).map_err(store_err)? {
            let json = String::from_utf8_lossy(&bytes);
            for def in Keyspaces::parse_defs(&json).unwrap_or_default() {
                keyspaces.learn(def);
            }
        }
        let first_start = store.get_meta(META_TOKENS).map_err(store_err)?.is_none();
        let tokens = match store.get_meta(META_TOKENS).map_err(store_err)? {
            Some(bytes) => postcard::from_bytes::<Vec<u64>>(&bytes)
                .map_err(|e| RegionError::Protocol(format!("stored ring tokens do not decode: {e}")))?,
            None => {
                let mut t = tokens_for(me, cfg.cluster.vnodes as usize);
                t.sort_unstable();
                t.dedup();
                let bytes = postcard::to_allocvec(&t).expect("serializing a Vec<u64> cannot fail");
                store.put_meta(META_TOKENS, &bytes).map_err(store_err)?;
                t
            }
        };

        // The role: as stored; on the first start `joining` if there is a region to join
        // (seeds other than this node), else `normal` (this node founds the region).
        let has_seeds =
            cfg.cluster.seeds.iter().any(|s| Some(s.as_str()) != cfg.rpc.advertise.map(|a| a.to_string()).as_deref());
        let state = match streaming::stored_state(store.as_ref())? {
            Some(s) => s,
            None if first_start && has_seeds => NodeState::Joining,
            None => NodeState::Normal,
        };
        store.put_meta(streaming::META_STATE, state.as_str().as_bytes()).map_err(store_err)?;

        let hlc = Arc::new(Mutex::new(HlcClock::new(me, cfg.clock.max_offset_ms)));
        let replica = Replica {
            me,
            store: Arc::clone(&store),
            hlc,
            clock: Arc::clone(&opts.clock),
            keyspaces: Arc::clone(&keyspaces),
            metrics: Arc::clone(&metrics),
            inline: opts.inline_storage,
            node: Arc::new(std::sync::OnceLock::new()),
            own_slot_floor: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let (slot_floor, restored) = snapshot::on_start(store.as_ref(), replica.own_context().ts.time_ntp64())?;
        replica.own_slot_floor.store(slot_floor, Ordering::Relaxed);
        if restored {
            tracing::info!(
                own_slot_floor = slot_floor,
                "restored from a snapshot: counters open new slots, a full repair follows"
            );
        }

        let rpc_timeout = cfg.cluster.rpc_timeout();
        let topts = TransportOptions::default();
        let endpoint = match opts.network {
            Network::Udp => Endpoint::bind(cfg.rpc.listen, &opts.tls, ALPN, topts),
            #[cfg(feature = "sim")]
            Network::Sim => Endpoint::bind_sim(cfg.rpc.listen, &opts.tls, ALPN, topts).await,
        }
        .map_err(|e| RegionError::rpc(cfg.rpc.listen, format!("cannot bind the RPC endpoint: {e}")))?;
        let advertise = cfg.rpc.advertise.unwrap_or_else(|| endpoint.local_addr());

        let (transport, inbox) = QuicGossipTransport::new(endpoint.clone(), rpc_timeout);
        let gossip_stats = transport.stats();
        endpoint.serve(Arc::new(RpcHandler { replica: replica.clone(), inbox, metrics: Arc::clone(&metrics) }));

        let mut initial = vec![
            (keys::TOKENS.to_owned(), encode_tokens(&tokens)),
            (keys::STATE.to_owned(), state.as_str().to_owned()),
            (keys::VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            (keys::NUMBER.to_owned(), format!("{:016x}", me.0)),
            (keys::KEYS.to_owned(), store.record_count().to_string()),
            (keys::KEYSPACES.to_owned(), keyspaces.defs_json()),
            (keys::FENCED.to_owned(), "0".to_owned()),
        ];
        if let Some(http) = opts.http_addr {
            initial.push((keys::HTTP.to_owned(), http.to_string()));
        }
        let membership = Membership::start(
            MembershipConfig {
                region: cfg.node.region.clone(),
                name: cfg.node.id.clone(),
                generation: opts.clock.now_ms(),
                advertise,
                seeds: cfg.cluster.seeds.clone(),
                gossip_interval: cfg.cluster.gossip_interval(),
                phi_threshold: cfg.cluster.phi_threshold,
                dead_node_grace: Duration::from_secs(7 * 24 * 3600),
                initial,
            },
            transport,
        )
        .await?;

        let inner = Arc::new(Inner {
            me,
            name: cfg.node.id.clone(),
            region: cfg.node.region.clone(),
            store,
            clock: opts.clock,
            keyspaces,
            replica,
            membership,
            gossip_stats,
            endpoint,
            rf: cfg.cluster.replication_factor as usize,
            rpc_timeout,
            default_consistency: cfg.cluster.default_consistency,
            limits: IngressLimits {
                max_key_bytes: cfg.http.max_key_bytes as usize,
                max_value_bytes: cfg.http.max_value_bytes as usize,
                max_body_bytes: cfg.http.max_body_bytes as usize,
            },
            crdt_limits: Limits::default(),
            metrics,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            state: Mutex::new(state),
            gossip_interval: cfg.cluster.gossip_interval(),
            hint_window: cfg.cluster.hint_window(),
            ae_interval: cfg.cluster.anti_entropy_interval(),
            gc_grace: Duration::from_secs(cfg.storage.gc_grace_secs),
            max_offset_ms: cfg.clock.max_offset_ms,
            hint_throttle: throttle::Throttle::new(cfg.cluster.hint_replay_per_sec),
            repair_throttle: throttle::Throttle::new(cfg.cluster.streaming_bytes_per_sec),
            stream_throttle: throttle::Throttle::new(cfg.cluster.streaming_bytes_per_sec),
            repair: Mutex::new(crate::service::RepairStatus { state: "idle".into(), ..Default::default() }),
            streaming: Mutex::new(crate::service::StreamingStatus { state: "idle".into(), ..Default::default() }),
            fence_local: AtomicBool::new(false),
            shipping_cache: Mutex::new(None),
            replicator: std::sync::OnceLock::new(),
            snapshot_dir: cfg.storage.snapshot_dir(),
            restored,
        });
        let _ = inner.replica.node.set(Arc::downgrade(&inner));
        // On the ring it is about to own (a joining node is on the future ring only).
        let on_ring = inner.membership.wait_for(opts.ready_timeout, |v| v.future_ring().contains_node(me)).await;
        if !on_ring {
            return Err(RegionError::rpc("membership", "the node did not see itself on the ring in time"));
        }
        // Settle: a peer counts as live only after two of its heartbeats, so right after a
        // (re)start every peer looks down and requests would be refused. Wait until every
        // member gossip has named is live, for at most 20 gossip rounds (a member that is
        // really down stays down and the wait ends there).
        let settle = cfg.cluster.gossip_interval() * 20;
        let settled = inner.membership.wait_for(settle, |v| v.members.len() > 1 || cfg.cluster.seeds.is_empty()).await
            && inner.membership.wait_for(settle, |v| v.members.values().all(|m| m.live)).await;
        if !settled {
            let view = inner.membership.view();
            let down: Vec<&str> = view.members.values().filter(|m| !m.live).map(|m| m.name.as_str()).collect();
            tracing::warn!(?down, "starting with members not (yet) live");
        }
        inner.ready.store(true, Ordering::Relaxed);
        let node = Node { inner, tasks: Arc::new(Mutex::new(Vec::new())) };
        node.spawn_background();
        tracing::info!(node = %node.inner.name, region = %node.inner.region, rpc = %advertise, "node started");
        Ok(node)
    }

    fn spawn_background(&self) {
        let mut tasks = self.tasks.lock();
        tasks.push(tokio::spawn(handoff::replay_loop(Arc::clone(&self.inner))));
        tasks.push(tokio::spawn(repair::schedule_loop(Arc::clone(&self.inner))));
        if *self.inner.state.lock() == NodeState::Joining {
            tasks.push(tokio::spawn(streaming::join(Arc::clone(&self.inner))));
        } else if self.inner.restored {
            repair::start(&self.inner, None, "restore");
        }
        drop(tasks);
        let inner = Arc::clone(&self.inner);
        let publisher = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PUBLISH_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut published_keyspaces = inner.keyspaces.defs_json();
            loop {
                ticker.tick().await;
                inner.membership.publish(keys::KEYS, inner.store.record_count()).await;
                // Learn keyspaces other nodes created while this one was away.
                for json in inner.membership.values_of(keys::KEYSPACES).await.into_values() {
                    for def in Keyspaces::parse_defs(&json).unwrap_or_default() {
                        let _ = inner.replica.handle(Request::PutKeyspace(def)).await;
                    }
                }
                let now = inner.keyspaces.defs_json();
                if now != published_keyspaces {
                    inner.membership.publish(keys::KEYSPACES, &now).await;
                    published_keyspaces = now;
                }
            }
        });
        self.tasks.lock().push(publisher);
    }

    /// This node's number.
    pub fn id(&self) -> NodeId {
        self.inner.me
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address peers reach this node's RPC endpoint at.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.inner.endpoint.local_addr()
    }

    /// The latest membership view.
    pub fn view(&self) -> Arc<RegionView> {
        self.inner.membership.view()
    }

    /// Membership (to wait for views in tests and tools).
    pub fn membership(&self) -> &Membership {
        &self.inner.membership
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The node's counters.
    pub fn metrics(&self) -> &RegionMetrics {
        &self.inner.metrics
    }

    /// The node as the cross-region replicator's [`meridian_wan::LocalRegion`].
    pub fn wan_bridge(&self) -> Arc<dyn meridian_wan::LocalRegion> {
        Arc::new(wan::WanBridge::new(&self.inner))
    }

    /// Attaches the running replicator (for status, sync and shutdown). Once.
    pub fn attach_replicator(&self, replicator: meridian_wan::Replicator) {
        let _ = self.inner.replicator.set(replicator);
    }

    /// The attached replicator.
    pub fn replicator(&self) -> Option<&meridian_wan::Replicator> {
        self.inner.replicator.get()
    }

    /// The RPC endpoint's counters.
    pub fn transport_stats(&self) -> meridian_net::TransportStats {
        self.inner.endpoint.stats()
    }

    /// Stops taking requests, stops background work, leaves gossip, closes the endpoint and
    /// flushes the store. Requests already running finish first (bounded by the RPC deadline).
    pub async fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::info!(node = %self.inner.name, "node shutting down");
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        if let Some(r) = self.inner.replicator.get() {
            r.shutdown().await;
        }
        self.inner.membership.stop().await;
        // Let in-flight coordinator rounds deliver their last messages.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.inner.endpoint.shutdown().await;
        let store = Arc::clone(&self.inner.store);
        if let Err(e) = self.inner.replica.blocking(move || store.flush()).await.and_then(|r| r.map_err(store_err)) {
            tracing::warn!(error = %e, "flush at shutdown failed");
        }
    }
}

impl KvService for Node {
    fn write(&self, req: WriteRequest) -> BoxFuture<'_, Result<WriteOutcome, RegionError>> {
        Box::pin(Arc::clone(&self.inner).write(req))
    }

    fn read<'a>(
        &'a self,
        keyspace: &'a str,
        key: &'a [u8],
        consistency: Option<ConsistencyLevel>,
    ) -> BoxFuture<'a, Result<ReadOutcome, RegionError>> {
        Box::pin(Arc::clone(&self.inner).read(keyspace.to_owned(), key.to_vec(), consistency))
    }

    fn keyspace(&self, name: &str) -> Result<KeyspaceInfo, RegionError> {
        self.inner.keyspaces.get(name).map(|k| k.info())
    }

    fn keyspaces(&self) -> Vec<KeyspaceInfo> {
        self.inner.keyspaces.list().iter().map(Keyspace::info).collect()
    }

    fn create_keyspace(&self, name: String, kind: ValueKind) -> BoxFuture<'_, Result<KeyspaceInfo, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.accepting()?;
            meridian_config::validate_keyspace_name(&name).map_err(|e| RegionError::InvalidRequest(e.to_string()))?;
            if let Ok(existing) = inner.keyspaces.get(&name) {
                return if existing.kind == kind {
                    Ok(existing.info())
                } else {
                    Err(RegionError::KeyspaceExists { name, existing: existing.kind, requested: kind })
                };
            }
            let def = KeyspaceDef { name: name.clone(), kind, created: inner.replica.own_context().ts };
            match inner.replica.handle(Request::PutKeyspace(def.clone())).await {
                Response::Done => {}
                Response::Error { code, message } if code == "keyspace_exists" => {
                    let existing = inner.keyspaces.get(&name)?;
                    tracing::debug!(%message, "keyspace created concurrently");
                    return Err(RegionError::KeyspaceExists { name, existing: existing.kind, requested: kind });
                }
                Response::Error { code, message } => {
                    return Err(RegionError::rpc("local", format!("{code}: {message}")))
                }
                other => return Err(RegionError::Protocol(format!("unexpected answer {other:?}"))),
            }
            inner.membership.publish(keys::KEYSPACES, inner.keyspaces.defs_json()).await;
            // Tell every live member now; gossip reaches the others later.
            let view = inner.membership.view();
            let deadline = Instant::now() + inner.rpc_timeout;
            let calls: Vec<_> = view
                .members
                .values()
                .filter(|m| m.id != inner.me && m.live)
                .map(|m| Arc::clone(inner).call(m.id, Request::PutKeyspace(def.clone()), Arc::clone(&view), deadline))
                .collect();
            futures::future::join_all(calls).await;
            let ks = inner.keyspaces.get(&name)?;
            if ks.kind != kind {
                return Err(RegionError::KeyspaceExists { name, existing: ks.kind, requested: kind });
            }
            Ok(ks.info())
        })
    }

    fn cluster_status(&self) -> ClusterStatus {
        let inner = &self.inner;
        let view = inner.membership.view();
        let load = view.ring.ownership(inner.rf);
        let primary = view.ring.ownership(1);
        let nodes: Vec<NodeStatus> = view
            .members
            .values()
            .map(|m| {
                let status = match (m.state, m.live) {
                    (Some(NodeState::Left), _) => "left",
                    (_, false) => "down",
                    (Some(NodeState::Joining), true) => "joining",
                    (Some(NodeState::Leaving), true) => "leaving",
                    (Some(NodeState::Normal) | None, true) => "healthy",
                };
                let keys = if m.id == inner.me { Some(inner.store.record_count()) } else { m.keys };
                NodeStatus {
                    id: m.name.clone(),
                    number: format!("{:016x}", m.id.0),
                    status: status.to_owned(),
                    rpc: m.rpc,
                    http: m.http,
                    load: load.get(&m.id).copied().unwrap_or(0.0),
                    ownership: primary.get(&m.id).copied().unwrap_or(0.0),
                    tokens: m.tokens.len(),
                    tokens_sample: m.tokens.iter().take(4).copied().collect(),
                    keys,
                    version: m.version.clone(),
                    is_self: m.id == inner.me,
                }
            })
            .collect();
        let mut nodes = nodes;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let total: u64 = nodes.iter().filter_map(|n| n.keys).sum();
        ClusterStatus {
            region: inner.region.clone(),
            node: inner.name.clone(),
            replication_factor: inner.rf,
            ring_version: view.ring.version(),
            total_keys: total / inner.rf.max(1) as u64,
            nodes,
            repair: inner.repair.lock().clone(),
            streaming: inner.streaming.lock().clone(),
        }
    }

    fn health(&self) -> Health {
        let inner = &self.inner;
        let view = inner.membership.view();
        let status = if inner.shutting_down.load(Ordering::Relaxed) {
            "shutting_down"
        } else if inner.ready.load(Ordering::Relaxed) {
            "ok"
        } else {
            "starting"
        };
        Health {
            status,
            node: inner.name.clone(),
            region: inner.region.clone(),
            live_nodes: view.live_count(),
            known_nodes: view.members.len(),
        }
    }

    fn limits(&self) -> IngressLimits {
        self.inner.limits
    }

    fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn hints(&self) -> BoxFuture<'_, Result<crate::service::HintsStatus, RegionError>> {
        Box::pin(handoff::status(&self.inner))
    }

    fn start_repair(&self, range: Option<(u64, u64)>) -> Result<crate::service::RepairStatus, RegionError> {
        self.inner.accepting()?;
        Ok(repair::start(&self.inner, range.map(|(s, e)| meridian_local::TokenRange::new(s, e)), "api"))
    }

    fn repair_status(&self) -> crate::service::RepairStatus {
        self.inner.repair.lock().clone()
    }

    fn decommission(&self, name: String) -> BoxFuture<'_, Result<crate::service::StreamingStatus, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.accepting()?;
            if name == inner.name {
                return streaming::start_decommission(Arc::clone(inner));
            }
            let view = inner.membership.view();
            let Some(member) = view.members.values().find(|m| m.name == name) else {
                return Err(RegionError::InvalidRequest(format!(
                    "no member named {name:?} in region {}",
                    inner.region
                )));
            };
            let deadline = Instant::now() + inner.rpc_timeout;
            match Arc::clone(inner).call(member.id, Request::Decommission, Arc::clone(&view), deadline).await.1? {
                Response::Done => Ok(crate::service::StreamingStatus {
                    state: "leaving".into(),
                    started_ms: Some(inner.clock.now_ms()),
                    ..Default::default()
                }),
                Response::Error { code, message } if code == "invalid_request" => {
                    Err(RegionError::InvalidRequest(message))
                }
                Response::Error { code, message } => Err(RegionError::rpc(&name, format!("{code}: {message}"))),
                other => Err(RegionError::Protocol(format!("unexpected answer to decommission: {other:?}"))),
            }
        })
    }

    fn metrics_text(&self) -> BoxFuture<'_, String> {
        Box::pin(prometheus::render(&self.inner))
    }

    fn ring(&self) -> crate::service::RingStatus {
        let inner = &self.inner;
        let view = inner.membership.view();
        let nodes = view
            .ring
            .nodes()
            .iter()
            .filter_map(|id| view.members.get(id))
            .map(|m| crate::service::RingNode {
                id: m.name.clone(),
                http: m.http,
                live: m.live,
                tokens: view.ring.tokens_of(m.id).map(<[u64]>::to_vec).unwrap_or_default(),
            })
            .collect();
        crate::service::RingStatus {
            region: inner.region.clone(),
            version: view.ring.version(),
            replication_factor: inner.rf,
            nodes,
        }
    }

    fn regions(&self) -> crate::service::RegionsStatus {
        let inner = &self.inner;
        let peers = inner.replicator.get().map(|r| r.status()).unwrap_or_default();
        crate::service::RegionsStatus {
            region: inner.region.clone(),
            node: inner.name.clone(),
            fenced: inner.fenced(),
            peers,
            conflicts_lww_overwrites: inner.metrics.conflicts_lww_overwrites.load(Ordering::Relaxed),
            conflicts_siblings_created: inner.metrics.conflicts_siblings_created.load(Ordering::Relaxed),
        }
    }

    fn fence(&self, region: String, fenced: bool) -> BoxFuture<'_, Result<crate::service::RegionsStatus, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            if region != inner.region {
                return Err(RegionError::InvalidRequest(format!(
                    "this node is in region {}; fence region {region} through one of its own nodes",
                    inner.region
                )));
            }
            inner.set_fence_local(fenced).await;
            let view = inner.membership.view();
            let deadline = Instant::now() + inner.rpc_timeout;
            let calls: Vec<_> = view
                .members
                .values()
                .filter(|m| m.id != inner.me)
                .map(|m| Arc::clone(inner).call(m.id, Request::SetFence { on: fenced }, Arc::clone(&view), deadline))
                .collect();
            for (node, res) in futures::future::join_all(calls).await {
                if !matches!(res, Ok(Response::Done)) {
                    tracing::warn!(node = %node, "could not tell a member about the fence; gossip will");
                }
            }
            Ok(self.regions())
        })
    }

    fn sync_region(&self, region: Option<String>) -> Result<crate::service::RegionsStatus, RegionError> {
        let Some(r) = self.inner.replicator.get() else {
            return Err(RegionError::InvalidRequest("no peer regions are configured on this node".into()));
        };
        r.request_sync(region.as_deref()).map_err(|e| RegionError::InvalidRequest(e.to_string()))?;
        Ok(self.regions())
    }

    fn snapshot(&self, name: Option<String>) -> BoxFuture<'_, Result<crate::service::SnapshotInfo, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.accepting()?;
            let now_ms = inner.clock.now_ms();
            let req = snapshot::SnapshotRequest {
                dir: inner.snapshot_dir.clone(),
                name: name.unwrap_or_else(|| format!("{}-{now_ms}", inner.name)),
                node: inner.name.clone(),
                region: inner.region.clone(),
                now_ms,
                gc_grace_secs: inner.gc_grace.as_secs(),
            };
            snapshot::check_name(&req.name)?;
            let store = Arc::clone(&inner.store);
            let started = Instant::now();
            let info = inner.replica.blocking(move || snapshot::take(store.as_ref(), &req)).await??;
            tracing::info!(name = %info.name, path = %info.path, bytes = info.bytes, took_ms = started.elapsed().as_millis() as u64, "snapshot written");
            Ok(info)
        })
    }

    fn region_digest(&self) -> BoxFuture<'_, Result<crate::service::RegionDigest, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.accepting()?;
            let view = inner.membership.view();
            // Each range to one replica: this node when it holds the range, else the first
            // live one. The ranges partition the ring, so every record is counted once.
            let mut plan: std::collections::BTreeMap<meridian_crdt::NodeId, Vec<meridian_local::TokenRange>> =
                std::collections::BTreeMap::new();
            for (range, replicas) in view.ring.range_replicas(inner.rf) {
                let pick = if replicas.contains(&inner.me) {
                    Some(inner.me)
                } else {
                    replicas.iter().copied().find(|r| view.is_live(*r))
                };
                let Some(pick) = pick else {
                    return Err(RegionError::Unavailable {
                        level: ConsistencyLevel::One,
                        required: 1,
                        answered: 0,
                        asked: 0,
                        failures: replicas
                            .iter()
                            .map(|r| (*r, "down according to the failure detector".to_owned()))
                            .collect(),
                    });
                };
                plan.entry(pick).or_default().push(range);
            }
            let deadline = Instant::now() + inner.rpc_timeout * 4;
            let asks = plan.into_iter().map(|(node, ranges)| {
                Arc::clone(inner).call(node, Request::DigestBuckets { ranges }, Arc::clone(&view), deadline)
            });
            let mut root = meridian_local::SegmentDigest::default();
            let mut nodes = Vec::new();
            for (node, res) in futures::future::join_all(asks).await {
                let name = view.members.get(&node).map_or_else(|| format!("{:016x}", node.0), |m| m.name.clone());
                match res? {
                    Response::Digests(d) => d.into_iter().for_each(|(_, s)| root.fold(s)),
                    Response::Error { code, message } => {
                        return Err(RegionError::rpc(&name, format!("{code}: {message}")))
                    }
                    other => {
                        return Err(RegionError::Protocol(format!("{name} answered a digest request with {other:?}")))
                    }
                }
                nodes.push(name);
            }
            Ok(crate::service::RegionDigest {
                region: inner.region.clone(),
                node: inner.name.clone(),
                root: format!("{:016x}", root.hash),
                records: root.count,
                nodes,
            })
        })
    }

    fn digest(&self) -> BoxFuture<'_, Result<crate::service::DigestStatus, RegionError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let view = inner.membership.view();
            let ranges = view.ring.ranges_of(inner.me, inner.rf);
            let store = Arc::clone(&inner.store);
            let r = ranges.clone();
            let digest = inner.replica.blocking(move || crate::anti_entropy::digest_of(store.as_ref(), &r)).await??;
            let root = digest.root();
            Ok(crate::service::DigestStatus {
                node: inner.name.clone(),
                root: format!("{:016x}", root.hash),
                records: root.count,
                ranges: ranges.iter().map(|r| (r.start, r.end)).collect(),
            })
        })
    }
}
