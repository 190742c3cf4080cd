//! Membership changes: a node joining the ring, a node leaving it, and the range streaming
//! that moves their data while the region keeps serving.
//!
//! **Join.** A node starting for the first time (no tokens in its store) publishes its tokens
//! with the state `joining`. If the region already has `normal` members, it *bootstraps*:
//! every coordinator now sends writes for the ranges it will own to it as a *pending* replica
//! (and requires one more acknowledgement per pending replica), reads still go to the old
//! owners. It waits a few gossip rounds so every coordinator knows, then pulls each range it
//! gains from a live old replica ([`Request::ScanRange`], paged, paced by
//! `cluster.streaming_bytes_per_sec`), runs an anti-entropy pass over its future ranges to pick
//! up what that source missed, and turns `normal`. A node that finds no `normal` member (the
//! region is forming) turns `normal` at once: there is nothing to stream.
//!
//! **Decommission.** The leaving node publishes `leaving`: it stays a read replica, and writes
//! for its ranges also go to their new owners. After the same propagation wait it pushes each
//! range it loses to the replicas that gain it ([`Request::MergeBatch`], paced), then publishes
//! `left` and leaves the ring. Refused when the region would be left with fewer nodes than
//! the replication factor.
//!
//! Writes during a change are acknowledged by W replicas of the old ring plus every pending
//! one, so an acknowledged write is durable at W replicas of the ring before and of the ring
//! after the change: nothing acknowledged is lost when reads switch. Invariants and tests:
//! `docs/algorithms/membership-changes.md`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use meridian_crdt::{NodeId, Record};
use meridian_local::{Origin, StorageKey, TokenRange};
use tokio::time::Instant;

use crate::error::RegionError;
use crate::membership::view::keys;
use crate::membership::{NodeState, RegionView};
use crate::node::Inner;
use crate::rpc::{Request, Response};
use crate::service::StreamingStatus;

/// Store metadata entry: this node's role (`joining`, `normal`, `leaving`, `left`).
pub const META_STATE: &str = "member_state";
/// Records per streaming page.
const PAGE: u32 = 512;
/// How many gossip rounds to wait for a state change to reach every coordinator.
const PROPAGATION_ROUNDS: u32 = 10;

/// Publishes and persists this node's role.
pub(crate) async fn set_state(inner: &Arc<Inner>, state: NodeState) -> Result<(), RegionError> {
    let store = Arc::clone(&inner.store);
    inner.replica.blocking(move || store.put_meta(META_STATE, state.as_str().as_bytes())).await??;
    inner.membership.publish(keys::STATE, state.as_str()).await;
    *inner.state.lock() = state;
    tracing::info!(node = %inner.name, state = state.as_str(), "role changed");
    Ok(())
}

/// The stored role, if any.
pub(crate) fn stored_state(store: &dyn meridian_local::Store) -> Result<Option<NodeState>, RegionError> {
    Ok(store.get_meta(META_STATE)?.and_then(|b| std::str::from_utf8(&b).ok().and_then(NodeState::parse)))
}

fn status_update(inner: &Inner, f: impl FnOnce(&mut StreamingStatus)) {
    f(&mut inner.streaming.lock());
}

/// Waits until `pred` holds for the view (or `timeout`).
async fn wait_view(inner: &Arc<Inner>, timeout: Duration, pred: impl FnMut(&RegionView) -> bool) -> bool {
    inner.membership.wait_for(timeout, pred).await
}

/// The join of a node that started in `joining` (see the module docs). Runs as a task.
pub(crate) async fn join(inner: Arc<Inner>) {
    let started = inner.clock.now_ms();
    status_update(&inner, |s| {
        *s = StreamingStatus { state: "joining".into(), started_ms: Some(started), ..StreamingStatus::default() }
    });
    let result = join_inner(&inner).await;
    status_update(&inner, |s| {
        s.finished_ms = Some(inner.clock.now_ms());
        match &result {
            Ok(()) => s.state = "done".into(),
            Err(e) => {
                s.state = "failed".into();
                s.error = Some(e.to_string());
            }
        }
    });
    match result {
        Ok(()) => {
            if let Err(e) = set_state(&inner, NodeState::Normal).await {
                tracing::error!(error = %e, "could not turn normal after the join");
            }
        }
        Err(e) => tracing::error!(error = %e, "join failed; the node stays joining (restart it to retry)"),
    }
}

async fn join_inner(inner: &Arc<Inner>) -> Result<(), RegionError> {
    let me = inner.me;
    let propagation = inner.gossip_interval * PROPAGATION_ROUNDS;
    // Let gossip tell us who else is there.
    wait_view(inner, propagation, |v| v.members.values().any(|m| m.id != me && m.live)).await;
    let view = inner.membership.view();
    let normal_peers = view.ring.nodes().iter().any(|n| *n != me);
    if !normal_peers {
        tracing::info!("no normal member: the region is forming; nothing to stream");
        return Ok(());
    }
    // Every coordinator must send writes to this pending replica before the ranges are read.
    tokio::time::sleep(propagation).await;
    let view = inner.membership.view();
    let future = Arc::clone(view.future_ring());
    let changes: Vec<_> = view.ring.diff(&future, inner.rf).into_iter().filter(|c| c.gained().contains(&me)).collect();
    status_update(inner, |s| s.ranges_total = changes.len());
    tracing::info!(ranges = changes.len(), "join: streaming ranges");
    for change in changes {
        let sources: Vec<NodeId> = change.old.iter().copied().filter(|n| *n != me && view.is_live(*n)).collect();
        let mut last_err = None;
        let mut done = false;
        for source in sources {
            match pull_range(inner, &view, source, change.range).await {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if !done {
            return Err(last_err.unwrap_or_else(|| {
                RegionError::rpc("join", format!("no live replica to stream range {:?} from", change.range))
            }));
        }
        status_update(inner, |s| s.ranges_done += 1);
    }
    // Pick up whatever the sources missed (writes they had not received yet).
    crate::node::repair::start(inner, None, "join");
    while inner.repair.lock().state == "running" {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Pulls one range from `source`, merging every record here.
async fn pull_range(
    inner: &Arc<Inner>,
    view: &Arc<RegionView>,
    source: NodeId,
    range: TokenRange,
) -> Result<(), RegionError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let req = Request::ScanRange { range, after: after.clone(), limit: PAGE };
        let deadline = Instant::now() + inner.rpc_timeout * 4;
        let (_, res) = Arc::clone(inner).call(source, req, Arc::clone(view), deadline).await;
        let (items, done) = match res? {
            Response::Scan { items, done } => (items, done),
            Response::Error { code, message } => return Err(RegionError::rpc(source, format!("{code}: {message}"))),
            other => return Err(RegionError::Protocol(format!("unexpected answer to a range scan: {other:?}"))),
        };
        let bytes: u64 = items.iter().map(|(k, r)| (k.len() + r.encode().len()) as u64).sum();
        inner.stream_throttle.consume(bytes).await;
        after = items.last().map(|(k, _)| k.clone());
        let n = items.len() as u64;
        let store = Arc::clone(&inner.store);
        inner
            .replica
            .blocking(move || -> Result<(), RegionError> {
                for (k, record) in items {
                    let skey = StorageKey::from_bytes(&k)?;
                    store.merge(skey.keyspace(), skey.key(), &record, Origin::Stream)?;
                }
                Ok(())
            })
            .await??;
        status_update(inner, |s| {
            s.keys += n;
            s.bytes += bytes;
        });
        inner.metrics.streamed_bytes.fetch_add(bytes, Ordering::Relaxed);
        if done || after.is_none() {
            return Ok(());
        }
    }
}

/// Starts decommissioning this node (checks, then a task). Errors if it cannot.
pub(crate) fn start_decommission(inner: Arc<Inner>) -> Result<StreamingStatus, RegionError> {
    let view = inner.membership.view();
    let state = *inner.state.lock();
    if state != NodeState::Normal {
        return Err(RegionError::InvalidRequest(format!(
            "{} is {}, not normal: only a normal node can be decommissioned",
            inner.name,
            state.as_str()
        )));
    }
    let remaining = view.ring.nodes().iter().filter(|n| **n != inner.me).count();
    if remaining < inner.rf {
        return Err(RegionError::InvalidRequest(format!(
            "decommissioning {} would leave {remaining} nodes for replication factor {}",
            inner.name, inner.rf
        )));
    }
    {
        let mut s = inner.streaming.lock();
        if s.state == "leaving" {
            return Ok(s.clone());
        }
        *s = StreamingStatus {
            state: "leaving".into(),
            started_ms: Some(inner.clock.now_ms()),
            ..StreamingStatus::default()
        };
    }
    let status = inner.streaming.lock().clone();
    tokio::spawn(async move {
        let result = decommission_inner(&inner).await;
        status_update(&inner, |s| {
            s.finished_ms = Some(inner.clock.now_ms());
            match &result {
                Ok(()) => s.state = "done".into(),
                Err(e) => {
                    s.state = "failed".into();
                    s.error = Some(e.to_string());
                }
            }
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "decommission failed; the node stays leaving (retry the decommission)");
        }
    });
    Ok(status)
}

async fn decommission_inner(inner: &Arc<Inner>) -> Result<(), RegionError> {
    let me = inner.me;
    set_state(inner, NodeState::Leaving).await?;
    wait_view(inner, inner.gossip_interval * PROPAGATION_ROUNDS, |v| v.pending.is_some()).await;
    // Every coordinator must send writes to the new owners before this node's copy is taken.
    tokio::time::sleep(inner.gossip_interval * PROPAGATION_ROUNDS).await;
    let view = inner.membership.view();
    let future = Arc::clone(view.future_ring());
    let changes: Vec<_> = view.ring.diff(&future, inner.rf).into_iter().filter(|c| c.lost().contains(&me)).collect();
    status_update(inner, |s| s.ranges_total = changes.len());
    tracing::info!(ranges = changes.len(), "decommission: streaming ranges away");
    for change in changes {
        for target in change.gained() {
            push_range(inner, &view, target, change.range).await?;
        }
        status_update(inner, |s| s.ranges_done += 1);
    }
    set_state(inner, NodeState::Left).await?;
    Ok(())
}

/// Pushes this node's records of `range` to `target`.
async fn push_range(
    inner: &Arc<Inner>,
    view: &Arc<RegionView>,
    target: NodeId,
    range: TokenRange,
) -> Result<(), RegionError> {
    let mut after: Option<StorageKey> = None;
    loop {
        let store = Arc::clone(&inner.store);
        let from = after.clone();
        let page: Vec<(StorageKey, Record)> =
            inner.replica.blocking(move || store.scan(range, from.as_ref(), PAGE as usize)).await??;
        if page.is_empty() {
            return Ok(());
        }
        let done = page.len() < PAGE as usize;
        after = page.last().map(|(k, _)| k.clone());
        let bytes: u64 = page.iter().map(|(k, r)| (k.as_bytes().len() + r.encode().len()) as u64).sum();
        inner.stream_throttle.consume(bytes).await;
        let n = page.len() as u64;
        let items = page.into_iter().map(|(k, r)| (k.keyspace().to_owned(), k.key().to_vec(), r)).collect();
        let deadline = Instant::now() + inner.rpc_timeout * 4;
        let req = Request::MergeBatch { items, origin: Origin::Stream };
        match Arc::clone(inner).call(target, req, Arc::clone(view), deadline).await.1? {
            Response::Merged => {}
            Response::Error { code, message } => return Err(RegionError::rpc(target, format!("{code}: {message}"))),
            other => return Err(RegionError::Protocol(format!("unexpected answer to a range push: {other:?}"))),
        }
        status_update(inner, |s| {
            s.keys += n;
            s.bytes += bytes;
        });
        inner.metrics.streamed_bytes.fetch_add(bytes, Ordering::Relaxed);
        if done {
            return Ok(());
        }
    }
}
