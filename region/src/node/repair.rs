//! The anti-entropy driver and the tombstone GC it unlocks.
//!
//! A *pass* exchanges, with every other replica of this node's ranges, the ranges both hold
//! ([`crate::anti_entropy`]): bucket digests, then the segments of differing buckets, then the
//! key lists of differing segments, then the records of differing keys. Records the peer has
//! are fetched and merged here (`Origin::Repair`); where this node's state (after that merge)
//! still differs from the peer's, it is pushed to the peer. After an exchange both hold the
//! join of their states for every key that differed when it started. Traffic is paced by
//! `cluster.streaming_bytes_per_sec`.
//!
//! Passes run every `cluster.anti_entropy_interval_secs`, and on demand (`POST
//! /api/v1/cluster/repair`, `meridian ctl repair`). A pass over every range that completed
//! with every peer moves the **GC safe point** to its start time: every record this node held
//! before then is on every replica. Garbage collection then purges tombstones and expired
//! records older than the horizon `max(safe point − clock.max_offset_ms, now −
//! storage.gc_grace_secs)`. The reasoning and what the grace costs: `docs/algorithms/tombstones.md`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use meridian_crdt::{Hlc, NodeId};
use meridian_local::{Origin, StorageKey, TokenRange};
use tokio::time::Instant;

use crate::anti_entropy::{self, buckets, differing, shared_ranges};
use crate::error::RegionError;
use crate::membership::RegionView;
use crate::node::Inner;
use crate::rpc::{encode_request, Request, Response};
use crate::service::RepairStatus;

/// Store metadata entry: the GC safe point (physical ms, decimal) and the ring version it was
/// reached at (`<ms>@<version>`).
pub const META_SAFE_POINT: &str = "gc_safe_point";
/// Segments per key-list request.
const SEGMENTS_PER_REQUEST: usize = 64;
/// Keys per record request.
const KEYS_PER_REQUEST: usize = 256;

/// What one exchange with a peer did.
#[derive(Debug, Default, Clone, Copy)]
struct Exchange {
    segments: u64,
    keys: u64,
    bytes: u64,
    restored: u64,
}

/// Starts a pass unless one is running; returns the status either way.
pub(crate) fn start(inner: &Arc<Inner>, range: Option<TokenRange>, trigger: &str) -> RepairStatus {
    {
        let mut st = inner.repair.lock();
        if st.state == "running" {
            return st.clone();
        }
        *st = RepairStatus {
            state: "running".into(),
            trigger: Some(trigger.to_owned()),
            range: range.map(|r| (r.start, r.end)),
            started_ms: Some(inner.clock.now_ms()),
            last_complete_ms: st.last_complete_ms,
            ..RepairStatus::default()
        };
    }
    let task_inner = Arc::clone(inner);
    tokio::spawn(async move {
        let result = run_pass(&task_inner, range).await;
        let mut st = task_inner.repair.lock();
        st.finished_ms = Some(task_inner.clock.now_ms());
        match result {
            Ok(()) => st.state = "done".into(),
            Err(e) => {
                st.state = "failed".into();
                st.error = Some(e.to_string());
            }
        }
    });
    inner.repair.lock().clone()
}

/// The scheduled passes: the first one interval after start, then every interval.
pub(crate) async fn schedule_loop(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(inner.ae_interval).await;
        start(&inner, None, "schedule");
        // Wait for it to end before scheduling the next.
        while inner.repair.lock().state == "running" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn run_pass(inner: &Arc<Inner>, filter: Option<TokenRange>) -> Result<(), RegionError> {
    let started_ms = inner.clock.now_ms();
    let view = inner.membership.view();
    // A joining node compares the ranges it is about to own.
    let ring = if view.ring.contains_node(inner.me) { Arc::clone(&view.ring) } else { Arc::clone(view.future_ring()) };
    let ring_version = ring.version();
    let peers: Vec<NodeId> = ring.nodes().iter().copied().filter(|n| *n != inner.me).collect();
    let plans: Vec<(NodeId, Vec<TokenRange>)> = peers
        .into_iter()
        .map(|p| (p, anti_entropy::restrict(&shared_ranges(&ring, inner.rf, inner.me, p), filter)))
        .filter(|(_, ranges)| !ranges.is_empty())
        .collect();
    inner.repair.lock().peers_total = plans.len();
    let mut failed = 0;
    for (peer, ranges) in plans {
        let res = if view.is_live(peer) {
            exchange(inner, &view, peer, &ranges).await
        } else {
            Err(RegionError::rpc(peer, "down according to the failure detector"))
        };
        let mut st = inner.repair.lock();
        match res {
            Ok(x) => {
                st.peers_done += 1;
                st.segments_differing += x.segments;
                st.keys_repaired += x.keys;
                st.bytes_transferred += x.bytes;
                st.bytes_restored += x.restored;
            }
            Err(e) => {
                failed += 1;
                st.peers_failed += 1;
                tracing::info!(peer = %peer, error = %e, "anti-entropy exchange failed");
            }
        }
    }
    inner.metrics.inc(&inner.metrics.ae_passes);
    let st = inner.repair.lock().clone();
    inner.metrics.ae_keys_repaired.fetch_add(st.keys_repaired, Ordering::Relaxed);
    tracing::info!(
        peers = st.peers_total,
        failed,
        keys = st.keys_repaired,
        bytes = st.bytes_transferred,
        "anti-entropy pass finished"
    );
    // A ring of fewer nodes than the replication factor is not the whole region (a node that
    // restarted first, before gossip found the others): comparing with the members it knows
    // proves nothing about the replicas it does not, so such a pass is never complete. Taken as
    // complete, it moved the GC horizon to now and every older record then arriving from the
    // returning replicas was refused as below the horizon.
    let whole_ring = ring.len_nodes() >= inner.rf;
    if failed == 0 && filter.is_none() && whole_ring {
        // Complete: every record held before `started_ms` is now on every replica.
        let value = format!("{started_ms}@{ring_version}");
        let store = Arc::clone(&inner.store);
        inner.replica.blocking(move || store.put_meta(META_SAFE_POINT, value.as_bytes())).await??;
        inner.repair.lock().last_complete_ms = Some(started_ms);
        inner.metrics.ae_last_complete_ms.store(started_ms, Ordering::Relaxed);
    }
    if filter.is_none() {
        // Also after an incomplete pass: the grace alone may allow collection.
        collect_garbage(inner).await?;
    }
    if failed > 0 {
        return Err(RegionError::rpc(
            "anti-entropy",
            format!("{failed} peer exchange(s) failed; the pass is incomplete"),
        ));
    }
    Ok(())
}

/// The stored safe point, if it was reached at `ring_version`.
async fn safe_point(inner: &Arc<Inner>, ring_version: u64) -> Result<Option<u64>, RegionError> {
    let store = Arc::clone(&inner.store);
    let bytes = inner.replica.blocking(move || store.get_meta(META_SAFE_POINT)).await??;
    Ok(bytes.and_then(|b| {
        let text = String::from_utf8(b).ok()?;
        let (ms, version) = text.split_once('@')?;
        (version.parse::<u64>().ok()? == ring_version).then(|| ms.parse().ok()).flatten()
    }))
}

/// The GC horizon in physical ms: see the module docs.
pub fn horizon_ms(now_ms: u64, grace_ms: u64, safe_point_ms: Option<u64>, max_offset_ms: u64) -> u64 {
    let forced = now_ms.saturating_sub(grace_ms);
    let safe = safe_point_ms.map(|t| t.saturating_sub(max_offset_ms)).unwrap_or(0);
    forced.max(safe)
}

/// Purges tombstones and expired records below the horizon.
pub(crate) async fn collect_garbage(inner: &Arc<Inner>) -> Result<(), RegionError> {
    let view = inner.membership.view();
    let mut safe = safe_point(inner, view.ring.version()).await?;
    // The safe point says every replica of this region has the tombstones older than it; it
    // says nothing of other regions. A tombstone this node has not yet shipped to every peer
    // region must stay, or the delete never leaves (the shipper sends a key's current record,
    // and a collected one has none) and the peer keeps the value for ever. While any peer
    // region has a backlog from this node, only the grace collects.
    if let Some(r) = inner.replicator.get() {
        if let Some(peer) = r.status().into_iter().find(|p| p.backlog > 0) {
            tracing::debug!(peer = %peer.region, backlog = peer.backlog, "GC waits for cross-region shipping");
            safe = None;
        }
    }
    let now = inner.clock.now_ms();
    let h = horizon_ms(now, inner.gc_grace.as_millis() as u64, safe, inner.max_offset_ms);
    let horizon = Hlc::from_physical_ms(h, NodeId(0));
    let store = Arc::clone(&inner.store);
    let stats = inner.replica.blocking(move || store.collect_garbage(now, horizon, &mut |_| {})).await??;
    inner.metrics.gc_purged.fetch_add(stats.purged, Ordering::Relaxed);
    if stats.purged > 0 {
        tracing::info!(purged = stats.purged, scanned = stats.scanned, horizon_ms = h, "garbage collected");
    }
    Ok(())
}

/// Sends one anti-entropy request to `peer`, paced, counting bytes both ways. Every
/// anti-entropy request is idempotent (reads, and merges of states), so one that fails
/// retryably (a timeout: typically a connection still in loss-recovery backoff after a healed
/// partition, which the transport then replaces) is sent once more.
async fn ask(
    inner: &Arc<Inner>,
    view: &Arc<RegionView>,
    peer: NodeId,
    req: Request,
    bytes: &mut u64,
) -> Result<Response, RegionError> {
    let size = encode_request(&req).len() as u64;
    inner.repair_throttle.consume(size).await;
    let deadline = Instant::now() + inner.rpc_timeout * 4;
    let (_, res) = Arc::clone(inner).call(peer, req.clone(), Arc::clone(view), deadline).await;
    let resp = match res {
        Err(e) if e.is_retryable() => {
            tracing::debug!(peer = %peer, error = %e, "anti-entropy request failed; sending it once more");
            *bytes += size;
            let deadline = Instant::now() + inner.rpc_timeout * 4;
            Arc::clone(inner).call(peer, req, Arc::clone(view), deadline).await.1?
        }
        other => other?,
    };
    let resp_size = crate::rpc::encode_response(&resp).len() as u64;
    inner.repair_throttle.consume(resp_size).await;
    *bytes += size + resp_size;
    match resp {
        Response::Error { code, message } => Err(RegionError::rpc(peer, format!("{code}: {message}"))),
        other => Ok(other),
    }
}

fn unexpected(what: &str, r: &Response) -> RegionError {
    RegionError::Protocol(format!("unexpected answer to {what}: {r:?}"))
}

/// One push-pull exchange with `peer` over `ranges`.
async fn exchange(
    inner: &Arc<Inner>,
    view: &Arc<RegionView>,
    peer: NodeId,
    ranges: &[TokenRange],
) -> Result<Exchange, RegionError> {
    let mut x = Exchange::default();
    let store = Arc::clone(&inner.store);
    let r = ranges.to_vec();
    let local = inner.replica.blocking(move || anti_entropy::digest_of(store.as_ref(), &r)).await??;

    // Level 1: buckets.
    let remote_buckets =
        match ask(inner, view, peer, Request::DigestBuckets { ranges: ranges.to_vec() }, &mut x.bytes).await? {
            Response::Digests(d) => d.into_iter().collect(),
            other => return Err(unexpected("bucket digests", &other)),
        };
    let diff_buckets = differing(&buckets(&local), &remote_buckets);
    inner.metrics.ae_ranges_compared.fetch_add(ranges.len() as u64, Ordering::Relaxed);
    if diff_buckets.is_empty() {
        return Ok(x);
    }
    // Level 2: segments of the differing buckets.
    let remote_segments = match ask(
        inner,
        view,
        peer,
        Request::DigestSegments { ranges: ranges.to_vec(), buckets: diff_buckets.clone() },
        &mut x.bytes,
    )
    .await?
    {
        Response::Digests(d) => d.into_iter().collect(),
        other => return Err(unexpected("segment digests", &other)),
    };
    let local_segments = local
        .segments
        .iter()
        .filter(|(s, _)| diff_buckets.contains(&anti_entropy::bucket_of(**s)))
        .map(|(s, d)| (*s, *d))
        .collect();
    let diff_segments = differing(&local_segments, &remote_segments);
    x.segments = diff_segments.len() as u64;

    // Level 3: key lists of the differing segments, then the records.
    for chunk in diff_segments.chunks(SEGMENTS_PER_REQUEST) {
        let remote_keys = match ask(
            inner,
            view,
            peer,
            Request::SegmentKeys { ranges: ranges.to_vec(), segments: chunk.to_vec() },
            &mut x.bytes,
        )
        .await?
        {
            Response::Keys(k) => k,
            other => return Err(unexpected("segment keys", &other)),
        };
        let store = Arc::clone(&inner.store);
        let (r, segs) = (ranges.to_vec(), chunk.to_vec());
        let local_keys =
            inner.replica.blocking(move || anti_entropy::segment_keys(store.as_ref(), &r, &segs)).await??;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for (seg, theirs) in &remote_keys {
            let ours = local_keys.iter().find(|(s, _)| s == seg).map(|(_, l)| l.as_slice()).unwrap_or(&[]);
            keys.extend(meridian_local::merkle::diff_keys(ours, theirs));
        }
        for (seg, ours) in &local_keys {
            if !remote_keys.iter().any(|(s, _)| s == seg) {
                keys.extend(ours.iter().map(|(k, _)| k.clone()));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        for batch in keys.chunks(KEYS_PER_REQUEST) {
            sync_keys(inner, view, peer, batch, &mut x).await?;
        }
    }
    Ok(x)
}

/// Fetches the peer's records of `keys`, merges them here, and pushes back what the peer lacks.
async fn sync_keys(
    inner: &Arc<Inner>,
    view: &Arc<RegionView>,
    peer: NodeId,
    keys: &[Vec<u8>],
    x: &mut Exchange,
) -> Result<(), RegionError> {
    let theirs = match ask(inner, view, peer, Request::GetRecords { storage_keys: keys.to_vec() }, &mut x.bytes).await?
    {
        Response::Records(r) => r,
        other => return Err(unexpected("records", &other)),
    };
    let store = Arc::clone(&inner.store);
    let (push, restored) = inner
        .replica
        .blocking(move || -> Result<(crate::rpc::RecordItems, u64), RegionError> {
            let mut push = Vec::new();
            let mut restored = 0u64;
            for (skey_bytes, remote) in theirs {
                let skey = StorageKey::from_bytes(&skey_bytes)?;
                if let Some(r) = &remote {
                    if let meridian_local::MergeOutcome::Changed { .. } =
                        store.merge(skey.keyspace(), skey.key(), r, Origin::Repair)?
                    {
                        restored += r.encode().len() as u64;
                    }
                }
                if let Some((_, mine)) = store.get_raw(&skey_bytes)? {
                    if remote.as_ref() != Some(&mine) {
                        push.push((skey.keyspace().to_owned(), skey.key().to_vec(), mine));
                    }
                }
            }
            Ok((push, restored))
        })
        .await??;
    x.keys += keys.len() as u64;
    x.restored += restored;
    if !push.is_empty() {
        match ask(inner, view, peer, Request::MergeBatch { items: push, origin: Origin::Repair }, &mut x.bytes).await? {
            Response::Merged => {}
            other => return Err(unexpected("repair push", &other)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_is_the_later_of_the_safe_point_and_the_grace() {
        let (now, grace, off) = (1_000_000, 100_000, 500);
        // No complete pass: only the grace.
        assert_eq!(horizon_ms(now, grace, None, off), 900_000);
        // A recent complete pass moves it forward, minus the clock bound.
        assert_eq!(horizon_ms(now, grace, Some(990_000), off), 989_500);
        // An old pass does not hold it back.
        assert_eq!(horizon_ms(now, grace, Some(10), off), 900_000);
        // Early in time nothing underflows.
        assert_eq!(horizon_ms(5, grace, Some(3), off), 0);
    }
}
