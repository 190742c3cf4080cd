//! Counters the store keeps about itself; the node exports them to Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

/// Storage counters. Monotonic unless said otherwise.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Writes that changed a record (local ops and merges).
    pub writes: AtomicU64,
    /// Merges that changed nothing (the incoming state was already included).
    pub noop_merges: AtomicU64,
    /// Incoming states dropped because they were older than the GC horizon for an absent key.
    pub rejected_below_horizon: AtomicU64,
    /// Records removed by garbage collection.
    pub gc_purged: AtomicU64,
    /// Change-log entries trimmed.
    pub changelog_trimmed: AtomicU64,
    /// Hints stored.
    pub hints_stored: AtomicU64,
    /// Hints deleted (replayed or dropped).
    pub hints_deleted: AtomicU64,
}

impl StoreMetrics {
    pub(crate) fn inc(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
