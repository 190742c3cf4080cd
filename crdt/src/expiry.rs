//! Record-level time to live, replicated as a last-writer-wins register.
//!
//! Expiry is part of the replicated state, not a local timer, so anti-entropy and read repair
//! carry it with the value and never bring an expired value back: a replica that has not seen
//! the expiry takes it on merge because its HLC is greater than the one it replaces.

use std::cmp::{Ordering, Reverse};

use crate::hlc::Hlc;

/// `(ts, expire_at_ms)`: when the key stops being readable (`None` = never), as set by the
/// write at `ts`.
///
/// Merge keeps the greater `ts`; at an equal `ts` the earlier expiry wins (`Some` before
/// `None`), so a tie never extends a value's life. The order is total, so merge is a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expiry {
    ts: Hlc,
    expire_at_ms: Option<u64>,
}

impl Expiry {
    /// An expiry set at `ts`.
    pub fn new(ts: Hlc, expire_at_ms: Option<u64>) -> Self {
        Expiry { ts, expire_at_ms }
    }

    /// The HLC of the write that set this expiry ([`Hlc::ZERO`] if never set).
    pub fn ts(&self) -> Hlc {
        self.ts
    }

    /// The expiry time in ms since the UNIX epoch, if any.
    pub fn expire_at_ms(&self) -> Option<u64> {
        self.expire_at_ms
    }

    /// `now_ms >= expire_at_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// Join. Returns whether `self` changed.
    pub fn merge(&mut self, other: &Expiry) -> bool {
        if other.precedence(self) == Ordering::Greater {
            *self = *other;
            true
        } else {
            false
        }
    }

    /// The merge order: `(ts, earlier expiry)`.
    pub fn precedence(&self, other: &Expiry) -> Ordering {
        let key = |e: &Expiry| (e.ts, Reverse(e.expire_at_ms.unwrap_or(u64::MAX)), e.expire_at_ms.is_some());
        key(self).cmp(&key(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::NodeId;

    #[test]
    fn later_setting_wins_even_if_it_clears() {
        let mut e = Expiry::new(Hlc::new(1, NodeId(1)), Some(100));
        assert!(e.merge(&Expiry::new(Hlc::new(2, NodeId(1)), None)));
        assert!(!e.is_expired(u64::MAX));
        assert!(!e.merge(&Expiry::new(Hlc::new(1, NodeId(9)), Some(5))));
    }

    #[test]
    fn tie_on_hlc_never_extends_life() {
        let ts = Hlc::new(1, NodeId(1));
        let a = Expiry::new(ts, Some(100));
        let b = Expiry::new(ts, Some(200));
        let c = Expiry::new(ts, None);
        for (x, y) in [(a, b), (b, a), (a, c), (c, a)] {
            let mut m = x;
            m.merge(&y);
            assert_eq!(m, a);
        }
        // Some(u64::MAX) and None are still distinct and ordered.
        let d = Expiry::new(ts, Some(u64::MAX));
        assert_eq!(d.precedence(&c), Ordering::Greater);
    }

    #[test]
    fn expired_at_exactly_the_deadline() {
        let e = Expiry::new(Hlc::ZERO, Some(100));
        assert!(!e.is_expired(99));
        assert!(e.is_expired(100));
    }
}
