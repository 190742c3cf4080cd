//! Last-writer-wins register ordered by HLC. See `docs/algorithms/hlc-lww.md`.

use std::cmp::Ordering;

use crate::hlc::Hlc;

/// A last-writer-wins register: a value (or a tombstone) and the HLC of the write that set it.
///
/// Merge keeps the greater write in the total order [`LwwRegister::precedence`]:
/// greater [`Hlc`] wins; at an equal `Hlc` (which a correct deployment never produces: one node
/// never issues the same timestamp twice) a tombstone beats a value, and between two values the
/// lexicographically greater bytes win. The order is total, so merge is a join
/// (commutative, associative, idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LwwRegister {
    ts: Hlc,
    value: Option<Vec<u8>>,
}

impl LwwRegister {
    /// A register holding `value` (`None` = tombstone) written at `ts`.
    pub fn new(ts: Hlc, value: Option<Vec<u8>>) -> Self {
        LwwRegister { ts, value }
    }

    /// The HLC of the winning write ([`Hlc::ZERO`] for a never-written register).
    pub fn ts(&self) -> Hlc {
        self.ts
    }

    /// The value, `None` if deleted (or never written).
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// Applies a write (`None` = delete). Returns whether it won.
    pub fn write(&mut self, ts: Hlc, value: Option<Vec<u8>>) -> bool {
        let candidate = LwwRegister { ts, value };
        if candidate.precedence(self) == Ordering::Greater {
            *self = candidate;
            true
        } else {
            false
        }
    }

    /// Join with another register. Returns whether `self` changed.
    pub fn merge(&mut self, other: &LwwRegister) -> bool {
        if other.precedence(self) == Ordering::Greater {
            *self = other.clone();
            true
        } else {
            false
        }
    }

    /// The total order used by merge: `(ts, tombstone-beats-value, bytes)`.
    pub fn precedence(&self, other: &LwwRegister) -> Ordering {
        self.ts.cmp(&other.ts).then_with(|| match (&self.value, &other.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::NodeId;

    fn ts(t: u64, n: u64) -> Hlc {
        Hlc::new(t, NodeId(n))
    }

    #[test]
    fn greater_hlc_wins_regardless_of_arrival_order() {
        let mut a = LwwRegister::new(ts(1, 1), Some(b"old".to_vec()));
        assert!(a.write(ts(2, 1), Some(b"new".to_vec())));
        assert!(!a.write(ts(1, 9), Some(b"late but older".to_vec())));
        assert_eq!(a.value(), Some(&b"new"[..]));
    }

    #[test]
    fn node_id_breaks_equal_physical_time() {
        let mut a = LwwRegister::new(ts(5, 1), Some(b"from 1".to_vec()));
        assert!(a.write(ts(5, 2), Some(b"from 2".to_vec())));
        assert_eq!(a.value(), Some(&b"from 2"[..]));
    }

    #[test]
    fn equal_hlc_tie_is_deterministic_and_tombstone_wins() {
        let x = LwwRegister::new(ts(5, 1), Some(b"a".to_vec()));
        let y = LwwRegister::new(ts(5, 1), Some(b"b".to_vec()));
        let z = LwwRegister::new(ts(5, 1), None);
        let mut xy = x.clone();
        xy.merge(&y);
        let mut yx = y.clone();
        yx.merge(&x);
        assert_eq!(xy, yx);
        assert_eq!(xy.value(), Some(&b"b"[..]));
        xy.merge(&z);
        assert_eq!(xy.value(), None);
    }
}
