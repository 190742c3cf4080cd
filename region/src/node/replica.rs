//! The replica side of intra-region RPC: runs [`Request`]s against the local store.
//!
//! Store calls block on disk (fsync), so each runs on tokio's blocking pool
//! (`spawn_blocking`), never on an async worker. The coordinator calls [`Replica::handle`]
//! directly for itself (no serialization) and remote nodes reach it through the RPC endpoint.

use std::sync::Arc;

use meridian_crdt::{Hlc, HlcClock, Limits, NodeId, OpContext, Record};
use meridian_local::Store;
use parking_lot::Mutex;

use crate::anti_entropy;
use crate::clock::WallClock;
use crate::error::RegionError;
use crate::metrics::RegionMetrics;
use crate::node::keyspaces::{Keyspaces, Learned};
use crate::rpc::{Request, Response};

/// Executes requests at this node.
#[derive(Debug, Clone)]
pub struct Replica {
    pub(crate) me: NodeId,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hlc: Arc<Mutex<HlcClock>>,
    pub(crate) clock: Arc<dyn WallClock>,
    pub(crate) keyspaces: Arc<Keyspaces>,
    pub(crate) metrics: Arc<RegionMetrics>,
    /// Run store calls inline instead of on the blocking pool: for stores that never block
    /// (the in-memory engine in simulation, where extra threads would break determinism).
    pub(crate) inline: bool,
    /// The node, for requests that are node-level actions (decommission); set once started.
    pub(crate) node: Arc<std::sync::OnceLock<std::sync::Weak<crate::node::Inner>>>,
    /// HLC time (NTP64) below which this node's own counter slots are not extended: set when
    /// the node was restored from a snapshot (`node/snapshot.rs`), else 0.
    pub(crate) own_slot_floor: Arc<std::sync::atomic::AtomicU64>,
}

impl Replica {
    /// Runs blocking storage work: on tokio's blocking pool, or inline for a store that never
    /// blocks.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RegionError> {
        if self.inline {
            Ok(f())
        } else {
            blocking(f).await
        }
    }

    /// A fresh context for an op this replica applies as its actor.
    pub fn own_context(&self) -> OpContext {
        let now_ms = self.clock.now_ms();
        let ts = self.hlc.lock().tick(now_ms);
        OpContext { actor: self.me, ts, now_ms }
    }

    /// The coordinator's `limits` with this node's own-slot floor when `ctx` is this node's
    /// own: the floor is local policy and never travels on the wire.
    fn limits_for(&self, mut limits: Limits, ctx: &OpContext) -> Limits {
        if ctx.actor == self.me {
            limits.own_slot_floor = self.own_slot_floor.load(std::sync::atomic::Ordering::Relaxed);
        }
        limits
    }

    /// Folds a remote timestamp into the HLC. `Err` when it is too far ahead (counted).
    pub fn observe(&self, ts: Hlc) -> Result<(), RegionError> {
        let now = self.clock.now_ms();
        let res = self.hlc.lock().observe(ts, now);
        if res.is_err() {
            self.metrics.inc(&self.metrics.hlc_rejected);
        }
        res.map_err(RegionError::from)
    }

    /// Runs one request; errors become [`Response::Error`].
    pub async fn handle(&self, req: Request) -> Response {
        match self.run(req).await {
            Ok(r) => r,
            Err(e) => Response::error(&e),
        }
    }

    async fn run(&self, req: Request) -> Result<Response, RegionError> {
        match req {
            Request::Ping => Ok(Response::Pong { node: self.me.0 }),
            Request::Apply { keyspace, key, kind, op, ctx, limits } => {
                let ctx = match ctx {
                    // The coordinator's timestamp decides LWW order: refuse one from a clock
                    // too far ahead rather than let it win forever.
                    Some(c) => {
                        self.observe(c.ts)?;
                        OpContext::from(c)
                    }
                    None => self.own_context(),
                };
                let limits = self.limits_for(limits, &ctx);
                let store = Arc::clone(&self.store);
                let out = self.blocking(move || store.apply(&keyspace, &key, kind, &op, &ctx, &limits)).await??;
                Ok(Response::Applied { record: out.record })
            }
            Request::Merge { keyspace, key, kind, record, origin, then_apply, limits } => {
                // Replication must not drop data: a timestamp too far ahead is counted, the
                // clock not moved, and the state merged anyway.
                let _ = self.observe(record.last_modified());
                let ctx = then_apply.as_ref().map(|_| record.follower_context());
                let limits = ctx.as_ref().map_or(limits, |c| self.limits_for(limits, c));
                let store = Arc::clone(&self.store);
                let metrics = Arc::clone(&self.metrics);
                self.blocking(move || -> Result<(), RegionError> {
                    if matches!(origin, meridian_local::Origin::Remote { .. }) {
                        let before = store.get(&keyspace, &key)?;
                        store.merge(&keyspace, &key, &record, origin.clone())?;
                        let after = store.get(&keyspace, &key)?;
                        count_conflicts(&metrics, before.as_ref(), &record, after.as_ref());
                    } else {
                        store.merge(&keyspace, &key, &record, origin)?;
                    }
                    if let (Some(op), Some(ctx)) = (then_apply, ctx) {
                        store.apply(&keyspace, &key, kind, &op, &ctx, &limits)?;
                    }
                    Ok(())
                })
                .await??;
                Ok(Response::Merged)
            }
            Request::Read { keyspace, key } => {
                let store = Arc::clone(&self.store);
                // Hot reads (memtable, block cache) are answered here, without the hand-off to
                // the blocking pool: on 2 vCPUs that hand-off cost ~40% of read throughput
                // (docs/benchmarks.md). A read that needs disk goes to the blocking pool.
                let record: Option<Record> = match store.get_cached(&keyspace, &key)? {
                    Some(answer) => {
                        self.metrics.inc(&self.metrics.reads_from_memory);
                        answer
                    }
                    None => {
                        self.metrics.inc(&self.metrics.reads_from_disk);
                        self.blocking(move || store.get(&keyspace, &key)).await??
                    }
                };
                Ok(Response::Record(record))
            }
            Request::PutKeyspace(def) => {
                let _ = self.observe(def.created);
                let requested = def.kind;
                match self.keyspaces.learn(def) {
                    Learned::New | Learned::Replaced => {
                        let json = self.keyspaces.defs_json();
                        let store = Arc::clone(&self.store);
                        self.blocking(move || store.put_meta(crate::node::keyspaces::META_KEY, json.as_bytes()))
                            .await??;
                        Ok(Response::Done)
                    }
                    Learned::Known => Ok(Response::Done),
                    Learned::Lost(existing) => Err(RegionError::KeyspaceExists {
                        name: existing.name.clone(),
                        existing: existing.kind,
                        requested,
                    }),
                }
            }
            Request::MergeBatch { items, origin } => {
                if let Some(max) = items.iter().map(|(_, _, r)| r.last_modified()).max() {
                    let _ = self.observe(max);
                }
                let store = Arc::clone(&self.store);
                self.blocking(move || -> Result<(), RegionError> {
                    for (keyspace, key, record) in items {
                        store.merge(&keyspace, &key, &record, origin.clone())?;
                    }
                    Ok(())
                })
                .await??;
                Ok(Response::Merged)
            }
            Request::DigestBuckets { ranges } => {
                let store = Arc::clone(&self.store);
                let digest = self.blocking(move || anti_entropy::digest_of(store.as_ref(), &ranges)).await??;
                Ok(Response::Digests(anti_entropy::buckets(&digest).into_iter().collect()))
            }
            Request::DigestSegments { ranges, buckets } => {
                let store = Arc::clone(&self.store);
                let digest = self.blocking(move || anti_entropy::digest_of(store.as_ref(), &ranges)).await??;
                let wanted: std::collections::BTreeSet<u16> = buckets.into_iter().collect();
                Ok(Response::Digests(
                    digest
                        .segments
                        .into_iter()
                        .filter(|(seg, _)| wanted.contains(&anti_entropy::bucket_of(*seg)))
                        .collect(),
                ))
            }
            Request::SegmentKeys { ranges, segments } => {
                let store = Arc::clone(&self.store);
                let keys =
                    self.blocking(move || anti_entropy::segment_keys(store.as_ref(), &ranges, &segments)).await??;
                Ok(Response::Keys(keys))
            }
            Request::GetRecords { storage_keys } => {
                let store = Arc::clone(&self.store);
                let records = self
                    .blocking(move || -> Result<crate::rpc::StoredRecords, RegionError> {
                        storage_keys
                            .into_iter()
                            .map(|k| {
                                let r = store.get_raw(&k)?.map(|(_, r)| r);
                                Ok((k, r))
                            })
                            .collect()
                    })
                    .await??;
                Ok(Response::Records(records))
            }
            Request::ScanRange { range, after, limit } => {
                let store = Arc::clone(&self.store);
                let limit = limit.clamp(1, 10_000) as usize;
                let page = self
                    .blocking(move || -> Result<Vec<(meridian_local::StorageKey, Record)>, RegionError> {
                        let after = after.map(|a| meridian_local::StorageKey::from_bytes(&a)).transpose()?;
                        Ok(store.scan(range, after.as_ref(), limit)?)
                    })
                    .await??;
                let done = page.len() < limit;
                Ok(Response::Scan { items: page.into_iter().map(|(k, r)| (k.as_bytes().to_vec(), r)).collect(), done })
            }
            Request::SetFence { on } => {
                let inner = self.node.get().and_then(std::sync::Weak::upgrade).ok_or(RegionError::ShuttingDown)?;
                inner.set_fence_local(on).await;
                Ok(Response::Done)
            }
            Request::Decommission => {
                let inner = self.node.get().and_then(std::sync::Weak::upgrade).ok_or(RegionError::ShuttingDown)?;
                crate::node::streaming::start_decommission(inner)?;
                Ok(Response::Done)
            }
        }
    }
}

/// Counts the conflicts a change from another region resolved at this replica: an LWW write
/// that lost to a different, newer local write (concurrent writes, one overwritten), and an
/// MVR merge that left more siblings than either side had.
fn count_conflicts(metrics: &RegionMetrics, before: Option<&Record>, incoming: &Record, after: Option<&Record>) {
    use std::sync::atomic::Ordering::Relaxed;
    if let (Some(b), Some(inc)) = (before.and_then(Record::as_lww), incoming.as_lww()) {
        if inc.ts() < b.ts() && inc.value() != b.value() {
            metrics.conflicts_lww_overwrites.fetch_add(1, Relaxed);
        }
    }
    if let (Some(b), Some(inc), Some(a)) =
        (before.and_then(Record::as_mvr), incoming.as_mvr(), after.and_then(Record::as_mvr))
    {
        if a.siblings().len() > b.siblings().len().max(inc.siblings().len()) {
            metrics.conflicts_siblings_created.fetch_add(1, Relaxed);
        }
    }
}

/// Runs blocking storage work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RegionError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RegionError::Protocol(format!("storage task failed: {e}")))
}
