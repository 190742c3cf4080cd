//! The client's counters ([`ClientMetrics`]) and a snapshot of them ([`MetricsSnapshot`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one client (shared by its clones).
#[derive(Debug, Default)]
pub struct ClientMetrics {
    /// Operations started.
    pub operations: AtomicU64,
    /// HTTP requests sent for operations (retries included, probes and ring fetches not).
    pub requests: AtomicU64,
    /// Attempts after the first of an operation.
    pub retries: AtomicU64,
    /// Times an operation moved to another region after a failure.
    pub failovers: AtomicU64,
    /// Operations that failed (any error, indeterminate ones included).
    pub errors: AtomicU64,
    /// Counter increments that ended indeterminate.
    pub indeterminate: AtomicU64,
    /// Reads repeated because they did not show the session's own write yet.
    pub session_retries: AtomicU64,
    /// Reads that ended in `session_not_satisfied`.
    pub session_failures: AtomicU64,
    /// Probe rounds of a region (`GET /healthz`, median of 3).
    pub probes: AtomicU64,
    /// Ring fetches (`GET /api/v1/cluster/ring`) that succeeded.
    pub ring_fetches: AtomicU64,
}

impl ClientMetrics {
    /// Adds one.
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// The counters now, with the current region.
    pub fn snapshot(&self, current_region: Option<String>) -> MetricsSnapshot {
        MetricsSnapshot {
            operations: Self::get(&self.operations),
            requests: Self::get(&self.requests),
            retries: Self::get(&self.retries),
            failovers: Self::get(&self.failovers),
            errors: Self::get(&self.errors),
            indeterminate: Self::get(&self.indeterminate),
            session_retries: Self::get(&self.session_retries),
            session_failures: Self::get(&self.session_failures),
            probes: Self::get(&self.probes),
            ring_fetches: Self::get(&self.ring_fetches),
            current_region,
        }
    }
}

/// The client's counters at one moment (see [`ClientMetrics`] for each).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Operations started.
    pub operations: u64,
    /// HTTP requests sent for operations.
    pub requests: u64,
    /// Attempts after the first of an operation.
    pub retries: u64,
    /// Times an operation moved to another region after a failure.
    pub failovers: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Increments that ended indeterminate.
    pub indeterminate: u64,
    /// Reads repeated for the session.
    pub session_retries: u64,
    /// Reads that ended in `session_not_satisfied`.
    pub session_failures: u64,
    /// Probe rounds.
    pub probes: u64,
    /// Ring fetches.
    pub ring_fetches: u64,
    /// The region that served the last successful request.
    pub current_region: Option<String>,
}
