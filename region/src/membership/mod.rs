//! Membership and failure detection: who is in the region, who is live, and the ring they
//! form.
//!
//! Gossip is [chitchat](https://docs.rs/chitchat) (scuttlebutt anti-entropy of per-node
//! key-values, heartbeats, a phi-accrual failure detector), carried over the node's mutual-TLS
//! QUIC endpoint ([`transport::QuicGossipTransport`]), so only nodes holding a certificate of
//! the region's CA and identity take part. Each node publishes its tokens, HTTP address, role
//! ([`NodeState`]), record count and version ([`view::keys`]). A refresher task turns the
//! gossip state into a [`RegionView`] with [`view::build_view`] (pure, unit-tested) and
//! publishes it on a watch channel; the coordinator reads the latest view per request.
//!
//! The algorithm and its invariants are in `docs/algorithms/membership.md`.
//!
//! # Layout
//!
//! - `view.rs`: [`RegionView`], [`Member`], [`NodeState`], [`build_view`], token encoding.
//! - `transport.rs`: chitchat's transport over [`meridian_net::Endpoint`].
//! - `mod.rs`: [`Membership`], the async shell around chitchat.

pub mod transport;
pub mod view;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chitchat::{spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig};
use meridian_config::IdentityConfig;
use meridian_crdt::NodeId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use transport::{GossipInbox, GossipStats, QuicGossipTransport};
pub use view::{build_view, GossipedNode, Member, NodeState, RegionView};

use crate::error::RegionError;

/// How membership runs.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// The region (chitchat's cluster id: gossip from another region is refused).
    pub region: String,
    /// This node's name.
    pub name: String,
    /// Its generation: its start time in ms, so a restart supersedes the earlier incarnation.
    pub generation: u64,
    /// The address peers gossip and send RPCs to.
    pub advertise: SocketAddr,
    /// Seeds (`host:port`).
    pub seeds: Vec<String>,
    /// Gossip period.
    pub gossip_interval: Duration,
    /// Phi-accrual threshold.
    pub phi_threshold: f64,
    /// How long a dead node's state is kept before chitchat forgets it (it then leaves the
    /// ring); long, since a down node keeps its ranges until it is decommissioned.
    pub dead_node_grace: Duration,
    /// Keys published from the start.
    pub initial: Vec<(String, String)>,
}

/// The node's membership: chitchat plus the derived [`RegionView`].
pub struct Membership {
    handle: ChitchatHandle,
    view: watch::Receiver<Arc<RegionView>>,
    refresher: JoinHandle<()>,
    me: NodeId,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("me", &self.me).field("view", &*self.view.borrow()).finish_non_exhaustive()
    }
}

/// The 64-bit number of node `name` in `region` (the same formula as the configuration's).
pub fn node_number(region: &str, name: &str) -> NodeId {
    NodeId(IdentityConfig { id: name.to_owned(), region: region.to_owned() }.node_number())
}

impl Membership {
    /// Starts gossip and the view refresher.
    pub async fn start(cfg: MembershipConfig, transport: QuicGossipTransport) -> Result<Membership, RegionError> {
        let me = node_number(&cfg.region, &cfg.name);
        let fd = FailureDetectorConfig {
            phi_threshold: cfg.phi_threshold,
            sampling_window_size: 1000,
            max_interval: Duration::from_secs(10),
            initial_interval: cfg.gossip_interval,
            dead_node_grace_period: cfg.dead_node_grace,
        };
        let chitchat_cfg = ChitchatConfig {
            chitchat_id: ChitchatId::new(cfg.name.clone(), cfg.generation, cfg.advertise),
            cluster_id: cfg.region.clone(),
            gossip_interval: cfg.gossip_interval,
            listen_addr: cfg.advertise,
            seed_nodes: cfg.seeds.clone(),
            failure_detector_config: fd,
            marked_for_deletion_grace_period: cfg.dead_node_grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let handle = spawn_chitchat(chitchat_cfg, cfg.initial.clone(), &transport)
            .await
            .map_err(|e| RegionError::rpc("gossip", format!("cannot start gossip: {e}")))?;
        let (tx, rx) = watch::channel(Arc::new(RegionView::empty()));
        let chitchat = handle.chitchat();
        let region = cfg.region.clone();
        let period = (cfg.gossip_interval / 2).max(Duration::from_millis(5));
        let refresher = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let nodes = {
                    let guard = chitchat.lock().await;
                    let live: std::collections::HashSet<ChitchatId> = guard.live_nodes().cloned().collect();
                    guard
                        .node_states()
                        .iter()
                        .map(|(cid, state)| GossipedNode {
                            name: cid.node_id.to_string(),
                            id: node_number(&region, &cid.node_id),
                            generation: cid.generation_id,
                            rpc: cid.gossip_advertise_addr,
                            live: live.contains(cid),
                            kv: state.key_values().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
                        })
                        .collect::<Vec<_>>()
                };
                let prev = tx.borrow().clone();
                let next = build_view(nodes, &prev);
                let pending_version = |v: &RegionView| v.pending.as_ref().map(|p| p.version());
                if next.ring.version() != prev.ring.version()
                    || pending_version(&next) != pending_version(&prev)
                    || next.members != prev.members
                {
                    log_transitions(&prev, &next);
                    if tx.send(Arc::new(next)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Membership { handle, view: rx, refresher, me })
    }

    /// This node's number.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The latest view.
    pub fn view(&self) -> Arc<RegionView> {
        self.view.borrow().clone()
    }

    /// A receiver that sees every new view.
    pub fn watch(&self) -> watch::Receiver<Arc<RegionView>> {
        self.view.clone()
    }

    /// Publishes (or replaces) one of this node's keys.
    pub async fn publish(&self, key: &str, value: impl ToString) {
        let value = value.to_string();
        self.handle.with_chitchat(|c| c.self_node_state().set(key, value.clone())).await;
    }

    /// Every node's published value of `key`, by node name (newest generation).
    pub async fn values_of(&self, key: &str) -> BTreeMap<String, String> {
        self.handle
            .with_chitchat(|c| {
                let mut out: BTreeMap<String, (u64, String)> = BTreeMap::new();
                for (cid, state) in c.node_states() {
                    if let Some(v) = state.get(key) {
                        let newer = out.get(&*cid.node_id).is_none_or(|(g, _)| *g < cid.generation_id);
                        if newer {
                            out.insert(cid.node_id.to_string(), (cid.generation_id, v.to_owned()));
                        }
                    }
                }
                out.into_iter().map(|(k, (_, v))| (k, v)).collect()
            })
            .await
    }

    /// Waits until the view satisfies `pred` or `timeout` passes; returns whether it did.
    pub async fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&RegionView) -> bool) -> bool {
        let mut rx = self.view.clone();
        tokio::time::timeout(timeout, async {
            loop {
                if pred(&rx.borrow_and_update()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Stops gossip and the refresher (idempotent). Call before closing the endpoint gossip
    /// runs on.
    pub async fn stop(&self) {
        self.refresher.abort();
        let _ = self.handle.initiate_shutdown();
        // Let the gossip loop see the command before its transport goes away.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_transitions(prev: &RegionView, next: &RegionView) {
    for (id, m) in &next.members {
        match prev.members.get(id) {
            None => tracing::info!(node = %m.name, rpc = %m.rpc, live = m.live, "member discovered"),
            Some(p) if p.live && !m.live => tracing::warn!(node = %m.name, "member down"),
            Some(p) if !p.live && m.live => tracing::info!(node = %m.name, "member up"),
            Some(p) if p.generation != m.generation => tracing::info!(node = %m.name, "member restarted"),
            Some(p) if p.state != m.state => {
                tracing::info!(node = %m.name, state = m.state.map(NodeState::as_str), "member state changed")
            }
            _ => {}
        }
    }
    if next.ring.version() != prev.ring.version() {
        tracing::info!(version = next.ring.version(), nodes = next.ring.len_nodes(), "ring changed");
    }
}
