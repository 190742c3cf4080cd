//! The node as the cross-region replicator sees it ([`meridian_wan::LocalRegion`]), and
//! region fencing.
//!
//! - **Who ships what**: a node ships a key's changes iff it is the first *live* replica of
//!   the key in the read ring of its current view ([`WanBridge::ships`]); its shipping ranges
//!   are those where that holds, with an epoch that changes when the ring or the live set does
//!   (the replicator then runs a full sync of them). See `docs/algorithms/wan-replication.md`.
//! - **Applying**: a batch from another region is merged key by key at local QUORUM, this node
//!   coordinating, with the origin `Remote { region }` so nothing is shipped back.
//! - **Full sync**: the region's digests over token ranges are folded from one live replica
//!   per replica group (`region_digest`).
//! - **Fencing**: `POST /api/v1/regions/{name}/fence` on a node of region `name` fences the
//!   whole region: every member is told (and publishes `fenced` in gossip); a fenced region
//!   refuses client reads and writes (`503 region_fenced`, so clients fail over) and its WAN
//!   links are cut both ways.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use meridian_config::ConsistencyLevel;
use meridian_crdt::{NodeId, Record};
use meridian_local::{Origin, SegmentDigest, TokenRange};
use meridian_wan::{ApplyReport, DigestAnswer, DigestQuery, Items, LocalRegion, WanError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::anti_entropy::{merge_touching, restrict};
use crate::clock::WallClock;
use crate::error::RegionError;
use crate::membership::view::keys;
use crate::membership::RegionView;
use crate::node::coordinator::WriteJob;
use crate::node::Inner;
use crate::quorum::{WriteRound, WriteStatus};
use crate::rpc::{KeyspaceDef, Request, Response};

/// Remote changes merged at once per batch.
const APPLY_CONCURRENCY: usize = 64;

/// The first live replica of `token` in the read ring.
fn shipper_of(view: &RegionView, token: u64, rf: usize, me: NodeId) -> Option<NodeId> {
    view.ring.replicas(token, rf).into_iter().find(|n| *n == me || view.is_live(*n))
}

/// The [`LocalRegion`] of a node. It holds the node weakly: the node holds its replicator,
/// which holds this bridge, and a strong reference would make that a cycle that keeps a
/// dropped node (its endpoint bound, its store open) alive for ever, as when a simulated host
/// crashes. Once the node is gone, the bridge ships nothing and refuses to apply.
#[derive(Debug, Clone)]
pub struct WanBridge {
    pub(crate) inner: Weak<Inner>,
    pub(crate) region: String,
    pub(crate) name: String,
    pub(crate) clock: Arc<dyn WallClock>,
}

impl WanBridge {
    pub(crate) fn new(inner: &Arc<Inner>) -> WanBridge {
        WanBridge {
            inner: Arc::downgrade(inner),
            region: inner.region.clone(),
            name: inner.name.clone(),
            clock: Arc::clone(&inner.clock),
        }
    }

    fn live(&self) -> Result<Arc<Inner>, WanError> {
        self.inner.upgrade().ok_or_else(|| WanError::Local(format!("node {} stopped", self.name)))
    }
}

fn local_err(e: RegionError) -> WanError {
    WanError::Local(format!("{}: {e}", e.code()))
}

impl Inner {
    /// Whether this region is fenced (this node, or a member, says so).
    pub(crate) fn fenced(&self) -> bool {
        self.fence_local.load(Ordering::Relaxed)
            || self
                .membership
                .view()
                .members
                .values()
                .any(|m| m.fenced && m.state != Some(crate::membership::NodeState::Left))
    }

    /// Refuses client data requests in a fenced region.
    pub(crate) fn check_fence(&self) -> Result<(), RegionError> {
        if self.fenced() {
            Err(RegionError::Fenced(self.region.clone()))
        } else {
            Ok(())
        }
    }

    /// Sets this node's fence flag and publishes it.
    pub(crate) async fn set_fence_local(&self, on: bool) {
        self.fence_local.store(on, Ordering::Relaxed);
        self.membership.publish(keys::FENCED, if on { "1" } else { "0" }).await;
        tracing::warn!(region = %self.region, fenced = on, "region fence changed");
    }

    /// Learns a keyspace first seen in a change from another region (so that region's
    /// keyspaces exist here too), with the record's type.
    async fn ensure_keyspace(self: &Arc<Self>, name: &str, record: &Record) -> Result<(), RegionError> {
        if self.keyspaces.get(name).is_ok() {
            return Ok(());
        }
        meridian_config::validate_keyspace_name(name).map_err(|e| RegionError::InvalidRequest(e.to_string()))?;
        let def = KeyspaceDef { name: name.to_owned(), kind: record.kind(), created: record.last_modified() };
        let _ = self.replica.handle(Request::PutKeyspace(def)).await;
        self.membership.publish(keys::KEYSPACES, self.keyspaces.defs_json()).await;
        Ok(())
    }

    /// Merges one remote state at local QUORUM.
    pub(crate) async fn merge_remote(
        self: Arc<Self>,
        keyspace: String,
        key: Vec<u8>,
        record: Record,
        from: String,
    ) -> Result<(), RegionError> {
        self.ensure_keyspace(&keyspace, &record).await?;
        let level = ConsistencyLevel::Quorum;
        let view = self.membership.view();
        let (replicas, required) = self.replicas(&view, &keyspace, &key, level, true)?;
        let deadline = Instant::now() + self.rpc_timeout;
        let mut round = WriteRound::merge_state(
            replicas.clone(),
            level,
            record.clone(),
            Origin::Remote { region: from },
            self.mono_ms(deadline),
        )
        .with_required(required);
        for r in &replicas {
            if *r != self.me && !view.is_live(*r) {
                round.on_failure(*r, "down according to the failure detector");
            }
        }
        let job = Arc::new(WriteJob {
            keyspace,
            key,
            kind: record.kind(),
            op: meridian_crdt::Op::Reset,
            ctx: self.replica.own_context(),
            view,
            deadline,
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(tracing::Instrument::in_current_span(Arc::clone(&self).drive_write(round, job, Some(tx))));
        match rx.await.map_err(|_| RegionError::Protocol("remote apply ended early".into()))?.0 {
            WriteStatus::Succeeded { .. } => Ok(()),
            WriteStatus::Failed(e) => Err(e),
            WriteStatus::Pending => Err(RegionError::Protocol("remote apply reported without a decision".into())),
        }
    }

    /// The ranges this node ships, cached by ring version and live set.
    pub(crate) fn shipping(&self) -> (u64, Vec<TokenRange>) {
        let view = self.membership.view();
        let live: Vec<NodeId> =
            view.ring.nodes().iter().copied().filter(|n| *n == self.me || view.is_live(*n)).collect();
        let key = xxhash_rust::xxh3::xxh3_64(
            &[view.ring.version().to_be_bytes().to_vec(), live.iter().flat_map(|n| n.0.to_be_bytes()).collect()]
                .concat(),
        );
        let mut cache = self.shipping_cache.lock();
        if let Some((k, epoch, ranges)) = cache.as_ref() {
            if *k == key {
                return (*epoch, ranges.clone());
            }
        }
        let ranges: Vec<TokenRange> = view
            .ring
            .range_replicas(self.rf)
            .into_iter()
            .filter(|(_, list)| list.iter().find(|n| **n == self.me || view.is_live(**n)) == Some(&self.me))
            .map(|(r, _)| r)
            .collect();
        let ranges = merge_touching(ranges);
        *cache = Some((key, key, ranges.clone()));
        (key, ranges)
    }

    /// The region's answer to a full-sync query: one live replica per replica group asked for
    /// its part, the parts folded.
    async fn region_digest(self: &Arc<Self>, query: DigestQuery) -> Result<DigestAnswer, RegionError> {
        let view = self.membership.view();
        let ranges = match &query {
            DigestQuery::Buckets { ranges }
            | DigestQuery::Segments { ranges, .. }
            | DigestQuery::Keys { ranges, .. } => ranges.clone(),
        };
        let mut by_node: BTreeMap<NodeId, Vec<TokenRange>> = BTreeMap::new();
        for (range, list) in view.ring.range_replicas(self.rf) {
            let pieces = restrict(&ranges, Some(range));
            if pieces.is_empty() {
                continue;
            }
            let Some(owner) = list.iter().copied().find(|n| *n == self.me || view.is_live(*n)) else {
                return Err(RegionError::NotEnoughNodes { nodes: view.ring.len_nodes(), replication_factor: self.rf });
            };
            by_node.entry(owner).or_default().extend(pieces);
        }
        let mut digests: BTreeMap<u16, SegmentDigest> = BTreeMap::new();
        let mut keys: BTreeMap<u16, Vec<(Vec<u8>, u64)>> = BTreeMap::new();
        for (node, pieces) in by_node {
            let req = match &query {
                DigestQuery::Buckets { .. } => Request::DigestBuckets { ranges: pieces },
                DigestQuery::Segments { buckets, .. } => {
                    Request::DigestSegments { ranges: pieces, buckets: buckets.clone() }
                }
                DigestQuery::Keys { segments, .. } => {
                    Request::SegmentKeys { ranges: pieces, segments: segments.clone() }
                }
            };
            let deadline = Instant::now() + self.rpc_timeout * 4;
            match Arc::clone(self).call(node, req, Arc::clone(&view), deadline).await.1? {
                Response::Digests(d) => {
                    for (n, sd) in d {
                        digests.entry(n).or_default().fold(sd);
                    }
                }
                Response::Keys(k) => {
                    for (seg, list) in k {
                        keys.entry(seg).or_default().extend(list);
                    }
                }
                Response::Error { code, message } => return Err(RegionError::rpc(node, format!("{code}: {message}"))),
                other => return Err(RegionError::Protocol(format!("unexpected answer to a digest query: {other:?}"))),
            }
        }
        Ok(match query {
            DigestQuery::Keys { segments, .. } => DigestAnswer::Keys(
                segments
                    .into_iter()
                    .map(|s| {
                        let mut list = keys.remove(&s).unwrap_or_default();
                        list.sort_unstable();
                        (s, list)
                    })
                    .collect(),
            ),
            _ => DigestAnswer::Digests(digests.into_iter().filter(|(_, d)| !d.is_empty()).collect()),
        })
    }
}

impl LocalRegion for WanBridge {
    fn region(&self) -> String {
        self.region.clone()
    }

    fn node(&self) -> String {
        self.name.clone()
    }

    fn ships(&self, keyspace: &str, key: &[u8]) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let view = inner.membership.view();
        shipper_of(&view, meridian_local::token_of(keyspace, key), inner.rf, inner.me) == Some(inner.me)
    }

    fn shipping_ranges(&self) -> (u64, Vec<TokenRange>) {
        self.inner.upgrade().map_or((0, Vec::new()), |inner| inner.shipping())
    }

    fn apply_remote<'a>(&'a self, from: &'a str, items: Items) -> BoxFuture<'a, Result<ApplyReport, WanError>> {
        Box::pin(async move {
            let node = self.live()?;
            let n = items.len() as u32;
            stream::iter(items.into_iter().map(|(ks, key, record)| {
                let inner = Arc::clone(&node);
                let from = from.to_owned();
                async move { inner.merge_remote(ks, key, record, from).await }
            }))
            .buffer_unordered(APPLY_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map_err(local_err)?;
            node.metrics.remote_applied.fetch_add(u64::from(n), Ordering::Relaxed);
            Ok(ApplyReport { changed: n })
        })
    }

    fn region_digest(&self, query: DigestQuery) -> BoxFuture<'_, Result<DigestAnswer, WanError>> {
        Box::pin(async move { self.live()?.region_digest(query).await.map_err(local_err) })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn fenced(&self) -> bool {
        // A stopped node ships nothing.
        self.inner.upgrade().is_none_or(|inner| inner.fenced())
    }
}
