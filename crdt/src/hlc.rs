//! Hybrid logical clock: node ids, timestamps and the clock state machine.
//!
//! The clock never reads time: [`HlcClock::tick`] and [`HlcClock::observe`] take the physical
//! time (ms since the UNIX epoch) from the caller, so the node shell owns the wall clock and
//! simulations drive time by hand. See `docs/algorithms/hlc-lww.md`.

use std::fmt;
use std::num::NonZeroU128;

use serde::{Deserialize, Serialize};

use crate::error::CrdtError;

/// Identity of a node (a replica). Nonzero by convention; `NodeId(0)` only appears in
/// [`Hlc::ZERO`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Fraction units (2^-32 s) per second in the NTP64 format.
const FRAC_PER_SEC: u64 = 1 << 32;
/// Largest representable whole-seconds value in NTP64 (the high 32 bits).
const MAX_SECS: u64 = u32::MAX as u64;
/// Largest physical time, in ms, that NTP64 can hold (early 2106).
const MAX_MS: u64 = MAX_SECS * 1000 + 999;
/// The uhlc ID used for `NodeId(0)`: 2^64, outside the `u64` range, so the mapping between our
/// node ids and uhlc IDs (which cannot be zero) is a bijection.
const UHLC_ID_FOR_NODE_ZERO: NonZeroU128 = match NonZeroU128::new(1 << 64) {
    Some(id) => id,
    None => panic!("2^64 is nonzero"),
};

/// A hybrid-logical-clock timestamp: a 64-bit NTP time (32 bits of seconds since the UNIX
/// epoch, 32 bits of fraction, the low bits doubling as a logical counter) and the id of the
/// node that issued it.
///
/// The order is the total order `(time, node)`, comparing node ids as numbers. That is why the
/// fields are kept here rather than inside a `uhlc::Timestamp`, whose derived order compares
/// IDs as little-endian byte arrays (node 256 would sort before node 1). Convert with
/// [`Hlc::to_uhlc`] / [`Hlc::from_uhlc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc {
    // Field order matters: the derived `Ord` compares `time` first, then `node`.
    time: u64,
    node: NodeId,
}

impl Hlc {
    /// The smallest timestamp; every issued timestamp is greater.
    pub const ZERO: Hlc = Hlc { time: 0, node: NodeId(0) };

    /// A timestamp from a raw NTP64 time and a node id.
    pub fn new(time_ntp64: u64, node: NodeId) -> Hlc {
        Hlc { time: time_ntp64, node }
    }

    /// The smallest timestamp at physical time `ms` (ms since the UNIX epoch) for `node`.
    /// Saturates at the NTP64 limit (year 2106). `from_physical_ms(ms).physical_ms() == ms`.
    pub fn from_physical_ms(ms: u64, node: NodeId) -> Hlc {
        Hlc::new(ms_to_ntp64(ms), node)
    }

    /// The smallest timestamp, as a function (same as [`Hlc::ZERO`]).
    pub fn zero() -> Hlc {
        Hlc::ZERO
    }

    /// The raw NTP64 time.
    pub fn time_ntp64(&self) -> u64 {
        self.time
    }

    /// The wall-time part in ms since the UNIX epoch (the logical bits are dropped).
    pub fn physical_ms(&self) -> u64 {
        ntp64_to_ms(self.time)
    }

    /// The node that issued this timestamp.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The next timestamp in the total order that `node` may use: `(time + 1, node)`
    /// (saturating). Used when an operation must win over a timestamp it observed.
    pub(crate) fn successor_for(&self, node: NodeId) -> Hlc {
        Hlc::new(self.time.saturating_add(1), node)
    }

    /// This timestamp as a `uhlc::Timestamp`. Node ids map to uhlc IDs of the same numeric
    /// value, except `NodeId(0)` (not a valid uhlc ID), which maps to the ID `2^64`.
    pub fn to_uhlc(&self) -> uhlc::Timestamp {
        let id = NonZeroU128::new(u128::from(self.node.0)).unwrap_or(UHLC_ID_FOR_NODE_ZERO);
        uhlc::Timestamp::new(uhlc::NTP64(self.time), uhlc::ID::from(id))
    }

    /// The inverse of [`Hlc::to_uhlc`]. IDs wider than 64 bits (other than the `2^64` used
    /// for node 0) are rejected.
    pub fn from_uhlc(ts: &uhlc::Timestamp) -> Result<Hlc, CrdtError> {
        let id = u128::from_le_bytes(ts.get_id().to_le_bytes());
        let node =
            if id == UHLC_ID_FOR_NODE_ZERO.get() {
                NodeId(0)
            } else {
                NodeId(u64::try_from(id).map_err(|_| {
                    CrdtError::InvalidTimestamp(format!("uhlc ID {id:#x} does not fit a 64-bit node id"))
                })?)
            };
        Ok(Hlc::new(ts.get_time().as_u64(), node))
    }
}

impl Default for Hlc {
    fn default() -> Self {
        Hlc::ZERO
    }
}

impl fmt::Display for Hlc {
    /// `<ntp64 time>/<node>`, lossless (the same shape uhlc uses, with a decimal node id).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.time, self.node)
    }
}

impl std::str::FromStr for Hlc {
    type Err = CrdtError;

    /// Parses the [`Display`](fmt::Display) form `<ntp64 time>/<node>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CrdtError::InvalidTimestamp(format!("{s:?} is not <ntp64 time>/<node id>"));
        let (time, node) = s.split_once('/').ok_or_else(bad)?;
        Ok(Hlc::new(time.parse().map_err(|_| bad())?, NodeId(node.parse().map_err(|_| bad())?)))
    }
}

/// ms since the epoch → NTP64, rounding the fraction up so that the round trip is exact.
fn ms_to_ntp64(ms: u64) -> u64 {
    let ms = ms.min(MAX_MS);
    let secs = ms / 1000;
    let rem = ms % 1000;
    // ceil(rem * 2^32 / 1000): at most 2^32 - 1 for rem <= 999, so it stays in the fraction.
    let frac = (rem * FRAC_PER_SEC).div_ceil(1000);
    (secs << 32) | frac
}

/// NTP64 → ms since the epoch, rounding the fraction down.
fn ntp64_to_ms(time: u64) -> u64 {
    let secs = time >> 32;
    let frac = time & (FRAC_PER_SEC - 1);
    secs * 1000 + ((frac * 1000) >> 32)
}

/// The HLC state machine of one node. Time is passed in; nothing here reads a clock.
///
/// Invariants (proved by `tests/hlc_props.rs`):
/// - every [`tick`](HlcClock::tick) returns a timestamp strictly greater than every timestamp
///   this clock returned or accepted through [`observe`](HlcClock::observe) before, whatever
///   the physical times passed in (until the NTP64 range is exhausted in 2106);
/// - a tick's physical part is never behind the physical time passed in;
/// - `observe` rejects, and counts, a remote timestamp more than `max_offset_ms` ahead of the
///   physical time passed in, leaving the clock unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlcClock {
    node: NodeId,
    max_offset_ms: u64,
    /// The greatest NTP64 time issued or observed.
    last: u64,
    rejected: u64,
}

impl HlcClock {
    /// A clock for `node` that rejects remote timestamps more than `max_offset_ms` ahead.
    pub fn new(node: NodeId, max_offset_ms: u64) -> Self {
        HlcClock { node, max_offset_ms, last: 0, rejected: 0 }
    }

    /// A fresh timestamp for a local event at physical time `now_physical_ms`:
    /// `max(physical(now), last + 1)`. Strictly increasing even when the physical time goes
    /// backwards.
    pub fn tick(&mut self, now_physical_ms: u64) -> Hlc {
        let physical = ms_to_ntp64(now_physical_ms);
        self.last = physical.max(self.last.saturating_add(1));
        Hlc::new(self.last, self.node)
    }

    /// Folds a remote timestamp into the clock so later ticks are greater than it.
    ///
    /// Errors with [`CrdtError::ClockTooFarAhead`] (and counts the rejection) when the remote
    /// physical time is more than `max_offset_ms` ahead of `now_physical_ms`; the clock is then
    /// unchanged.
    pub fn observe(&mut self, remote: Hlc, now_physical_ms: u64) -> Result<(), CrdtError> {
        let remote_ms = remote.physical_ms();
        if remote_ms > now_physical_ms.saturating_add(self.max_offset_ms) {
            self.rejected = self.rejected.saturating_add(1);
            return Err(CrdtError::ClockTooFarAhead {
                remote_ms,
                now_ms: now_physical_ms,
                max_offset_ms: self.max_offset_ms,
            });
        }
        self.last = self.last.max(remote.time);
        Ok(())
    }

    /// How many `observe` calls were rejected since this clock was created.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The node this clock issues timestamps for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The configured maximum offset in ms.
    pub fn max_offset_ms(&self) -> u64 {
        self.max_offset_ms
    }

    /// The greatest timestamp issued or observed so far (with this clock's node id), without
    /// advancing the clock. [`Hlc::ZERO`]'s time before the first event.
    pub fn last(&self) -> Hlc {
        Hlc::new(self.last, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_ms_round_trips_exactly() {
        for ms in [0, 1, 999, 1000, 1001, 1_700_000_000_123, MAX_MS] {
            assert_eq!(Hlc::from_physical_ms(ms, NodeId(1)).physical_ms(), ms);
        }
        // Saturates instead of wrapping past 2106.
        assert_eq!(Hlc::from_physical_ms(u64::MAX, NodeId(1)).physical_ms(), MAX_MS);
    }

    #[test]
    fn order_is_time_then_numeric_node_id() {
        let a = Hlc::new(5, NodeId(1));
        let b = Hlc::new(5, NodeId(256));
        let c = Hlc::new(6, NodeId(1));
        assert!(a < b && b < c);
        assert!(Hlc::ZERO < a);
    }

    #[test]
    fn node_256_does_not_sort_before_node_1_as_uhlc_would() {
        // The surprise: uhlc::Timestamp orders IDs by little-endian bytes.
        let a = Hlc::new(5, NodeId(1));
        let b = Hlc::new(5, NodeId(256));
        assert!(a.to_uhlc() > b.to_uhlc());
        assert!(a < b);
    }

    #[test]
    fn uhlc_round_trip_including_node_zero() {
        for h in [Hlc::ZERO, Hlc::new(7, NodeId(1)), Hlc::new(u64::MAX, NodeId(u64::MAX))] {
            assert_eq!(Hlc::from_uhlc(&h.to_uhlc()), Ok(h));
        }
        let wide = uhlc::Timestamp::new(uhlc::NTP64(1), uhlc::ID::try_from(u128::MAX).expect("valid id"));
        assert_eq!(Hlc::from_uhlc(&wide).map_err(|e| e.code()), Err("invalid_timestamp"));
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let h = Hlc::new(7_301_444_403_200_000_000, NodeId(42));
        assert_eq!(h.to_string(), "7301444403200000000/42");
        assert_eq!(h.to_string().parse::<Hlc>(), Ok(h));
        assert!("12".parse::<Hlc>().is_err());
        assert!("x/1".parse::<Hlc>().is_err());
    }

    #[test]
    fn tick_survives_clock_going_backwards() {
        let mut c = HlcClock::new(NodeId(1), 500);
        let a = c.tick(10_000);
        let b = c.tick(5_000);
        let d = c.tick(5_000);
        assert!(a < b && b < d);
        assert_eq!(d.physical_ms(), 10_000);
    }

    #[test]
    fn observe_rejects_beyond_offset_and_counts() {
        let mut c = HlcClock::new(NodeId(1), 500);
        let remote = Hlc::from_physical_ms(10_501, NodeId(2));
        let err = c.observe(remote, 10_000);
        assert!(matches!(
            err,
            Err(CrdtError::ClockTooFarAhead { remote_ms: 10_501, now_ms: 10_000, max_offset_ms: 500 })
        ));
        assert_eq!(c.rejected(), 1);
        assert_eq!(c.last(), Hlc::new(0, NodeId(1)));
        let ok = Hlc::from_physical_ms(10_500, NodeId(2));
        assert_eq!(c.observe(ok, 10_000), Ok(()));
        assert!(c.tick(10_000) > ok);
        assert_eq!(c.rejected(), 1);
    }
}
