//! Wall-clock time for a node, as a parameter.
//!
//! The node reads physical time only through a [`WallClock`], so simulation can run on tokio's
//! virtual time ([`TokioClock`]) and fault tests can skew one node's clock ([`SkewedClock`]).
//! The HLC state machine ([`meridian_crdt::HlcClock`]) takes the time read here as an argument.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the UNIX epoch.
pub trait WallClock: Send + Sync + Debug + 'static {
    /// The current time in ms since the UNIX epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// Wall time derived from tokio's clock: `base_ms` plus the time elapsed on
/// `tokio::time::Instant` since creation. Under a simulator that drives tokio's time (turmoil)
/// it is deterministic.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `base_ms` now.
    pub fn new(base_ms: u64) -> Self {
        TokioClock { base_ms, start: tokio::time::Instant::now() }
    }
}

impl WallClock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
}

/// Another clock shifted by an offset that can change at run time (clock-skew faults).
#[derive(Debug)]
pub struct SkewedClock<C> {
    inner: C,
    offset_ms: AtomicI64,
}

impl<C: WallClock> SkewedClock<C> {
    /// `inner` shifted by `offset_ms` (may be negative).
    pub fn new(inner: C, offset_ms: i64) -> Self {
        SkewedClock { inner, offset_ms: AtomicI64::new(offset_ms) }
    }

    /// Changes the offset.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

impl<C: WallClock> WallClock for SkewedClock<C> {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }
}
