//! Hinted handoff: replaying the hints this node keeps for replicas that missed writes.
//!
//! The coordinator stores a hint (`Store::put_hint`: the state the write produced) for every
//! replica that did not acknowledge a write by the deadline (`coordinator.rs`). This loop runs
//! every [`REPLAY_PERIOD`]:
//!
//! - for each target with pending hints, if membership sees the target live, it sends the
//!   oldest hints in batches ([`Request::MergeBatch`], origin `Repair`) at most
//!   `cluster.hint_replay_per_sec` per second, and deletes each batch once the target
//!   acknowledged it (merges are idempotent, so a batch resent after a lost acknowledgement is
//!   harmless);
//! - hints older than `cluster.hint_window_secs` are dropped and counted: the target is left to
//!   anti-entropy (which repairs every difference, hinted or not);
//! - hints for a node that has left the ring are dropped and counted.
//!
//! Invariants and the tests that prove them: `docs/algorithms/hinted-handoff.md`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use meridian_crdt::{NodeId, Record};
use meridian_local::{Hint, Origin};
use tokio::time::Instant;

use crate::error::RegionError;
use crate::membership::NodeState;
use crate::node::Inner;
use crate::rpc::{Request, Response};
use crate::service::{HintQueue, HintsStatus};

/// How often the replay loop looks at the queues.
pub const REPLAY_PERIOD: Duration = Duration::from_millis(250);
/// Hints per replay message.
pub const BATCH: usize = 128;

/// Why a hint is not replayed.
fn expired(hint: &Hint, now_ms: u64, window_ms: u64) -> bool {
    now_ms.saturating_sub(hint.created_ms) > window_ms
}

/// Runs forever (the node aborts it at shutdown).
pub(crate) async fn replay_loop(inner: Arc<Inner>) {
    let mut ticker = tokio::time::interval(REPLAY_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = replay_once(&inner).await {
            tracing::debug!(error = %e, "hint replay round failed");
        }
    }
}

/// One round over every queue.
pub(crate) async fn replay_once(inner: &Arc<Inner>) -> Result<(), RegionError> {
    let store = Arc::clone(&inner.store);
    let counts: BTreeMap<u64, u64> = inner.replica.blocking(move || store.hint_counts()).await??;
    for (target, _) in counts {
        let target = NodeId(target);
        let view = inner.membership.view();
        let member = view.members.get(&target);
        let left = member.is_some_and(|m| m.state == Some(NodeState::Left));
        let live = member.is_some_and(|m| m.live) && !left;
        drain_queue(inner, target, live, left).await?;
    }
    Ok(())
}

/// Replays (when `live`) or expires the hints of one target.
async fn drain_queue(inner: &Arc<Inner>, target: NodeId, live: bool, left: bool) -> Result<(), RegionError> {
    let window_ms = inner.hint_window.as_millis() as u64;
    loop {
        let store = Arc::clone(&inner.store);
        let batch: Vec<Hint> = inner.replica.blocking(move || store.hints(target.0, BATCH)).await??;
        if batch.is_empty() {
            return Ok(());
        }
        let now = inner.clock.now_ms();
        // Oldest first: expired hints (and every hint of a node that left) are at the front.
        let (drop, keep): (Vec<Hint>, Vec<Hint>) = batch.into_iter().partition(|h| left || expired(h, now, window_ms));
        if !drop.is_empty() {
            let n = drop.len() as u64;
            delete(inner, target, &drop).await?;
            inner.metrics.hints_dropped.fetch_add(n, Ordering::Relaxed);
            tracing::info!(target = %target, dropped = n, "hints dropped (past the hint window or node left)");
        }
        if keep.is_empty() {
            continue;
        }
        if !live {
            return Ok(());
        }
        inner.hint_throttle.consume(keep.len() as u64).await;
        let mut items = Vec::with_capacity(keep.len());
        for h in &keep {
            match Record::decode(&h.record) {
                Ok(r) => items.push((h.keyspace.clone(), h.key.clone(), r)),
                Err(e) => tracing::warn!(target = %target, error = %e, "undecodable hint dropped"),
            }
        }
        let view = inner.membership.view();
        let deadline = Instant::now() + inner.rpc_timeout;
        let req = Request::MergeBatch { items, origin: Origin::Repair };
        let (_, res) = Arc::clone(inner).call(target, req, view, deadline).await;
        match res {
            Ok(Response::Merged) => {
                let n = keep.len() as u64;
                delete(inner, target, &keep).await?;
                inner.metrics.hints_replayed.fetch_add(n, Ordering::Relaxed);
            }
            Ok(Response::Error { code, message }) => {
                return Err(RegionError::rpc(target, format!("hint replay refused: {code}: {message}")))
            }
            Ok(other) => return Err(RegionError::Protocol(format!("unexpected answer to hint replay: {other:?}"))),
            Err(e) => return Err(e),
        }
    }
}

async fn delete(inner: &Arc<Inner>, target: NodeId, hints: &[Hint]) -> Result<(), RegionError> {
    let store = Arc::clone(&inner.store);
    let seqs: Vec<u64> = hints.iter().map(|h| h.seq).collect();
    inner
        .replica
        .blocking(move || -> Result<(), RegionError> {
            for seq in seqs {
                store.delete_hint(target.0, seq)?;
            }
            Ok(())
        })
        .await?
}

/// The queues as the API shows them.
pub(crate) async fn status(inner: &Arc<Inner>) -> Result<HintsStatus, RegionError> {
    let store = Arc::clone(&inner.store);
    let heads: Vec<(u64, u64, Option<u64>)> = inner
        .replica
        .blocking(move || -> Result<Vec<(u64, u64, Option<u64>)>, RegionError> {
            let mut out = Vec::new();
            for (target, n) in store.hint_counts()? {
                let oldest = store.hints(target, 1)?.first().map(|h| h.created_ms);
                out.push((target, n, oldest));
            }
            Ok(out)
        })
        .await??;
    let now = inner.clock.now_ms();
    let view = inner.membership.view();
    let queues = heads
        .into_iter()
        .map(|(target, pending, oldest)| {
            let m = view.members.get(&NodeId(target));
            HintQueue {
                target: m.map(|m| m.name.clone()),
                number: format!("{target:016x}"),
                pending,
                oldest_age_ms: oldest.map(|t| now.saturating_sub(t)),
                target_live: m.is_some_and(|m| m.live),
            }
        })
        .collect();
    Ok(HintsStatus {
        node: inner.name.clone(),
        queues,
        stored: inner.metrics.hints_written.load(Ordering::Relaxed),
        replayed: inner.metrics.hints_replayed.load(Ordering::Relaxed),
        dropped: inner.metrics.hints_dropped.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_expires_strictly_after_the_window() {
        let h = Hint { target: 1, seq: 1, keyspace: "k".into(), key: vec![1], record: vec![], created_ms: 1_000 };
        assert!(!expired(&h, 1_000 + 500, 500));
        assert!(expired(&h, 1_000 + 501, 500));
        assert!(!expired(&h, 0, 500), "a clock behind the hint does not expire it");
    }
}
