//! Dots and causal contexts (version vectors), shared by the multi-value register and the set.
//!
//! A [`Dot`] `(actor, counter)` names one write issued by one replica. A [`CausalContext`] is a
//! version vector `actor → max counter` and stands for the set of dots
//! `{(a, c) | 1 <= c <= vv[a]}`. That is exact (no dot cloud needed) because of the
//! *prefix invariant*: any state that contains or covers a dot `(a, n)` covers every dot of `a`
//! with a smaller counter. It holds because replica `a` issues its dots in increasing order
//! from a state that covers all its earlier dots, and states only grow by join.
//! See `docs/algorithms/mvr.md`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CrdtError;
use crate::hlc::NodeId;

/// One event: the `counter`-th write issued by `actor` (counters are sparse, see
/// [`CausalContext::next_dot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that issued the write.
    pub actor: NodeId,
    /// Its position in that replica's sequence; never 0.
    pub counter: u64,
}

impl Dot {
    /// A dot.
    pub fn new(actor: NodeId, counter: u64) -> Dot {
        Dot { actor, counter }
    }
}

/// A version vector: what a state (or a client read) has observed. Opaque to clients, who
/// carry it between a read and a write as [`encode`](CausalContext::encode)d bytes.
///
/// Ordered by inclusion (`PartialOrd`): `a <= b` iff `a[r] <= b[r]` for every actor `r`;
/// [`join`](CausalContext::join) is the least upper bound. Entries are never zero, so equal
/// contexts have identical encodings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "Vec<(NodeId, u64)>", from = "Vec<(NodeId, u64)>")]
pub struct CausalContext {
    vv: BTreeMap<NodeId, u64>,
}

impl CausalContext {
    /// The empty context (has observed nothing).
    pub fn new() -> Self {
        CausalContext::default()
    }

    /// The greatest counter observed for `actor` (0 if none).
    pub fn get(&self, actor: NodeId) -> u64 {
        self.vv.get(&actor).copied().unwrap_or(0)
    }

    /// Whether `dot` has been observed.
    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.get(dot.actor)
    }

    /// Records `dot` (and, by the prefix invariant, every earlier dot of its actor).
    pub fn insert(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        let e = self.vv.entry(dot.actor).or_insert(0);
        *e = (*e).max(dot.counter);
    }

    /// In-place least upper bound (pointwise max).
    pub fn join(&mut self, other: &CausalContext) {
        for (actor, counter) in &other.vv {
            self.insert(Dot::new(*actor, *counter));
        }
    }

    /// The least upper bound of two contexts.
    pub fn joined(&self, other: &CausalContext) -> CausalContext {
        let mut out = self.clone();
        out.join(other);
        out
    }

    /// `self <= other`: everything `self` observed, `other` observed too.
    pub fn le(&self, other: &CausalContext) -> bool {
        self.vv.iter().all(|(a, c)| *c <= other.get(*a))
    }

    /// Neither context includes the other.
    pub fn concurrent(&self, other: &CausalContext) -> bool {
        !self.le(other) && !other.le(self)
    }

    /// True for the empty context.
    pub fn is_empty(&self) -> bool {
        self.vv.is_empty()
    }

    /// `(actor, max counter)` pairs in ascending actor order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.vv.iter().map(|(a, c)| (*a, *c))
    }

    /// The dot for a new write by `actor`: counter `max(self[actor] + 1, floor)`.
    ///
    /// `floor` is the writer's HLC time. Seeding counters from the HLC keeps dots unique across
    /// incarnations of a key: a replica that garbage-collected the key and writes it again
    /// issues dots above any that stale copies elsewhere still remember, so the new write is
    /// not mistaken for one they already observed.
    pub fn next_dot(&self, actor: NodeId, floor: u64) -> Result<Dot, CrdtError> {
        let next = self
            .get(actor)
            .checked_add(1)
            .ok_or_else(|| CrdtError::InvalidOp(format!("dot counter of actor {actor} exhausted")))?;
        Ok(Dot::new(actor, next.max(floor)))
    }

    /// Versioned canonical bytes: `[1] + postcard(sorted (actor, counter) pairs)`.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode_context(self)
    }

    /// Inverse of [`encode`](CausalContext::encode). Rejects unknown versions, trailing bytes,
    /// unsorted or duplicate actors and zero counters, so accepted bytes are canonical.
    pub fn decode(bytes: &[u8]) -> Result<Self, CrdtError> {
        crate::codec::decode_context(bytes)
    }

    /// Builds a context from pairs already known to be strictly ascending and nonzero.
    pub(crate) fn from_canonical(pairs: impl IntoIterator<Item = (NodeId, u64)>) -> Self {
        CausalContext { vv: pairs.into_iter().collect() }
    }
}

impl PartialOrd for CausalContext {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.le(other), other.le(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

impl From<CausalContext> for Vec<(NodeId, u64)> {
    fn from(c: CausalContext) -> Self {
        c.vv.into_iter().collect()
    }
}

/// Lenient conversion for serde formats (JSON etc.): zero counters are dropped and repeated
/// actors keep their maximum. [`CausalContext::decode`] is the strict, canonical path.
impl From<Vec<(NodeId, u64)>> for CausalContext {
    fn from(pairs: Vec<(NodeId, u64)>) -> Self {
        let mut c = CausalContext::new();
        for (actor, counter) in pairs {
            c.insert(Dot::new(actor, counter));
        }
        c
    }
}

impl FromIterator<Dot> for CausalContext {
    fn from_iter<T: IntoIterator<Item = Dot>>(iter: T) -> Self {
        let mut c = CausalContext::new();
        for d in iter {
            c.insert(d);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(pairs: &[(u64, u64)]) -> CausalContext {
        pairs.iter().map(|(a, c)| Dot::new(NodeId(*a), *c)).collect()
    }

    #[test]
    fn contains_is_prefix_coverage() {
        let c = cc(&[(1, 3)]);
        assert!(c.contains(&Dot::new(NodeId(1), 1)));
        assert!(c.contains(&Dot::new(NodeId(1), 3)));
        assert!(!c.contains(&Dot::new(NodeId(1), 4)));
        assert!(!c.contains(&Dot::new(NodeId(2), 1)));
    }

    #[test]
    fn order_and_join() {
        let a = cc(&[(1, 2)]);
        let b = cc(&[(2, 1)]);
        assert!(a.concurrent(&b));
        assert_eq!(a.partial_cmp(&b), None);
        let j = a.joined(&b);
        assert!(a < j && b < j);
        assert_eq!(j, cc(&[(1, 2), (2, 1)]));
    }

    #[test]
    fn zero_counter_dots_are_not_stored_so_encodings_stay_canonical() {
        let mut c = CausalContext::new();
        c.insert(Dot::new(NodeId(1), 0));
        assert!(c.is_empty());
        assert_eq!(c, CausalContext::from(vec![(NodeId(1), 0)]));
    }

    #[test]
    fn next_dot_is_above_both_the_context_and_the_floor() {
        let c = cc(&[(1, 10)]);
        assert_eq!(c.next_dot(NodeId(1), 0), Ok(Dot::new(NodeId(1), 11)));
        assert_eq!(c.next_dot(NodeId(1), 500), Ok(Dot::new(NodeId(1), 500)));
        assert!(cc(&[(1, u64::MAX)]).next_dot(NodeId(1), 0).is_err());
    }
}
