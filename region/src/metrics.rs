//! The regional cluster's counters. Rendered as Prometheus text by the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one node's coordinator and replica.
#[derive(Debug, Default)]
pub struct RegionMetrics {
    /// Client writes that succeeded at their level.
    pub writes_ok: AtomicU64,
    /// Client writes that failed (any error).
    pub writes_failed: AtomicU64,
    /// Client reads that succeeded.
    pub reads_ok: AtomicU64,
    /// Client reads that failed.
    pub reads_failed: AtomicU64,
    /// Requests refused because the level could not be met (a subset of the failures).
    pub unavailable: AtomicU64,
    /// Hints stored for replicas that did not acknowledge.
    pub hints_written: AtomicU64,
    /// Hints delivered to their target.
    pub hints_replayed: AtomicU64,
    /// Hints dropped: past the hint window, or for a node that left.
    pub hints_dropped: AtomicU64,
    /// Anti-entropy passes run.
    pub ae_passes: AtomicU64,
    /// Ranges compared by anti-entropy (one per peer exchange and shared range).
    pub ae_ranges_compared: AtomicU64,
    /// Keys exchanged by anti-entropy.
    pub ae_keys_repaired: AtomicU64,
    /// Start time (ms) of the last pass that completed with every peer.
    pub ae_last_complete_ms: AtomicU64,
    /// Records removed by garbage collection.
    pub gc_purged: AtomicU64,
    /// Record bytes moved by join and decommission streaming.
    pub streamed_bytes: AtomicU64,
    /// Changes from other regions merged by this node as coordinator.
    pub remote_applied: AtomicU64,
    /// LWW conflicts: a change from another region lost to a newer write it had not seen (one
    /// of two concurrent writes was overwritten), counted at the replica.
    pub conflicts_lww_overwrites: AtomicU64,
    /// MVR conflicts: merging a change from another region left more siblings than either side
    /// had (concurrent writes kept side by side), counted at the replica.
    pub conflicts_siblings_created: AtomicU64,
    /// Read-repair merges sent (blocking and background).
    pub read_repairs: AtomicU64,
    /// Remote HLC timestamps rejected as too far ahead.
    pub hlc_rejected: AtomicU64,
    /// Replica reads answered from memory (memtable, block cache) on the async worker.
    pub reads_from_memory: AtomicU64,
    /// Replica reads that needed disk, run on the blocking pool.
    pub reads_from_disk: AtomicU64,
    /// RPC requests served for other nodes.
    pub rpc_served: AtomicU64,
    /// RPC payloads that did not decode.
    pub rpc_malformed: AtomicU64,
    /// Latency of client reads at the coordinator (success or failure).
    pub read_latency: LatencyHistogram,
    /// Latency of client writes at the coordinator (success or failure).
    pub write_latency: LatencyHistogram,
}

impl RegionMetrics {
    /// Adds one.
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Upper bounds (µs) of the [`LatencyHistogram`] buckets: 0.5 ms to 10 s, with the alert
/// thresholds of `ops/prometheus/alerts.yml` (10, 15, 50 and 100 ms) among them so that
/// `histogram_quantile` is exact there.
pub const LATENCY_BOUNDS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 15_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// A lock-free latency histogram with the fixed buckets [`LATENCY_BOUNDS_US`] plus an overflow
/// bucket, and the sum of all samples.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Samples per bucket (not cumulative); the last one is the overflow bucket.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of all samples, in µs.
    sum_us: AtomicU64,
}

/// A point-in-time copy of a [`LatencyHistogram`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// `(upper bound in µs, samples at or below it)` for every bound of [`LATENCY_BOUNDS_US`].
    pub cumulative: Vec<(u64, u64)>,
    /// Every sample, the overflow bucket included (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all samples, in µs.
    pub sum_us: u64,
}

impl LatencyHistogram {
    /// Records one sample.
    pub fn observe(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US.iter().position(|&le| us <= le).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The cumulative counts. The count is the sum of the buckets read, so the `+Inf` bucket
    /// is never below another even while samples are being recorded.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut seen = 0u64;
        let mut cumulative = Vec::with_capacity(LATENCY_BOUNDS_US.len());
        for (le, bucket) in LATENCY_BOUNDS_US.iter().zip(&self.buckets) {
            seen = seen.saturating_add(bucket.load(Ordering::Relaxed));
            cumulative.push((*le, seen));
        }
        let overflow = self.buckets[LATENCY_BOUNDS_US.len()].load(Ordering::Relaxed);
        LatencySnapshot {
            cumulative,
            count: seen.saturating_add(overflow),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_inclusive_and_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_micros(501));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], (500, 1), "a sample on a bound is in that bucket");
        assert_eq!(s.cumulative[1], (1_000, 2));
        assert_eq!(s.cumulative[4], (10_000, 3));
        assert_eq!(s.cumulative.last(), Some(&(10_000_000, 3)));
        assert_eq!(s.count, 4, "the overflow sample counts in +Inf only");
        assert_eq!(s.sum_us, 500 + 501 + 10_000 + 60_000_000);
    }
}
