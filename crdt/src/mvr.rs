//! Multi-value register with dotted version vectors. See `docs/algorithms/mvr.md`.

use std::collections::BTreeMap;

use crate::causal::{CausalContext, Dot};
use crate::error::CrdtError;
use crate::hlc::NodeId;

/// A multi-value register: concurrent writes are kept side by side as *siblings*, each tagged
/// with the [`Dot`] of the write that made it, plus the [`CausalContext`] of every write the
/// state has observed.
///
/// Invariant: every sibling's dot is covered by the context (`siblings ⊆ context`).
/// A sibling `None` is a delete marker: it is causally like a write (a later write that observed
/// it removes it) but is not a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MvRegister {
    siblings: BTreeMap<Dot, Option<Vec<u8>>>,
    context: CausalContext,
}

impl MvRegister {
    /// The empty register.
    pub fn new() -> Self {
        MvRegister::default()
    }

    pub(crate) fn from_parts(siblings: BTreeMap<Dot, Option<Vec<u8>>>, context: CausalContext) -> Self {
        MvRegister { siblings, context }
    }

    /// Every sibling, delete markers included, in dot order.
    pub fn siblings(&self) -> &BTreeMap<Dot, Option<Vec<u8>>> {
        &self.siblings
    }

    /// Everything this state has observed.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The non-deleted sibling values, sorted by bytes, duplicates removed.
    pub fn values(&self) -> Vec<Vec<u8>> {
        let mut vals: Vec<Vec<u8>> = self.siblings.values().flatten().cloned().collect();
        vals.sort();
        vals.dedup();
        vals
    }

    /// True when some sibling is a value (not a delete marker).
    pub fn has_value(&self) -> bool {
        self.siblings.values().any(Option::is_some)
    }

    /// A write (`None` = delete) at replica `actor` by a client that observed `observed`.
    ///
    /// Drops every sibling covered by `observed`, adds the new sibling under a fresh dot
    /// (counter `>= floor`, see [`CausalContext::next_dot`]) and joins `observed` and the new
    /// dot into the context. Errors with [`CrdtError::TooManySiblings`], changing nothing, if
    /// more than `max_siblings` siblings would remain.
    pub fn write(
        &mut self,
        actor: NodeId,
        floor: u64,
        value: Option<Vec<u8>>,
        observed: &CausalContext,
        max_siblings: usize,
    ) -> Result<Dot, CrdtError> {
        let seen = self.context.joined(observed);
        let dot = seen.next_dot(actor, floor)?;
        let survivors = self.siblings.keys().filter(|d| !observed.contains(d)).count();
        let count = survivors + 1;
        if count > max_siblings {
            return Err(CrdtError::TooManySiblings { count, max: max_siblings });
        }
        self.siblings.retain(|d, _| !observed.contains(d));
        self.siblings.insert(dot, value);
        self.context = seen;
        self.context.insert(dot);
        Ok(dot)
    }

    /// Drops every sibling (they stay observed in the context). Used when an expired register
    /// is written again: the write supersedes everything the replica holds.
    pub(crate) fn clear(&mut self) {
        self.siblings.clear();
    }

    /// DVV join: a sibling survives if both sides hold it, or one side holds it and the other
    /// has not observed it. Contexts join. Returns whether `self` changed.
    pub fn merge(&mut self, other: &MvRegister) -> bool {
        let before = self.clone();
        let mine = std::mem::take(&mut self.siblings);
        let mut out = BTreeMap::new();
        for (dot, v) in mine {
            match other.siblings.get(&dot) {
                // A dot names one write, so both copies are equal in any reachable state; keep
                // the greater one anyway so the merge stays commutative on arbitrary input.
                Some(w) => {
                    out.insert(dot, v.max(w.clone()));
                }
                None if !other.context.contains(&dot) => {
                    out.insert(dot, v);
                }
                None => {}
            }
        }
        for (dot, w) in &other.siblings {
            if !out.contains_key(dot) && !self.context.contains(dot) {
                out.insert(*dot, w.clone());
            }
        }
        self.siblings = out;
        self.context.join(&other.context);
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64;

    fn w(r: &mut MvRegister, actor: u64, v: &str, ctx: &CausalContext) -> Dot {
        r.write(NodeId(actor), 0, Some(v.as_bytes().to_vec()), ctx, MAX).expect("write")
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_context_write_supersedes_them() {
        let mut a = MvRegister::new();
        let mut b = MvRegister::new();
        w(&mut a, 1, "x", &CausalContext::new());
        w(&mut b, 2, "y", &CausalContext::new());
        a.merge(&b);
        assert_eq!(a.values(), vec![b"x".to_vec(), b"y".to_vec()]);
        let ctx = a.context().clone();
        w(&mut a, 1, "z", &ctx);
        assert_eq!(a.values(), vec![b"z".to_vec()]);
        // b learns of z: its y was observed by z, so it goes.
        b.merge(&a);
        assert_eq!(b.values(), vec![b"z".to_vec()]);
    }

    #[test]
    fn write_with_stale_context_keeps_what_it_did_not_see() {
        let mut a = MvRegister::new();
        w(&mut a, 1, "x", &CausalContext::new());
        let stale = a.context().clone();
        w(&mut a, 1, "y", &CausalContext::new()); // blind write: x and y are siblings
        w(&mut a, 1, "z", &stale); // observed x only
        assert_eq!(a.values(), vec![b"y".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn context_from_another_replica_removes_siblings_not_yet_delivered_here() {
        // Client reads {y} at b, writes z at a which has not received y yet.
        let mut a = MvRegister::new();
        let mut b = MvRegister::new();
        w(&mut b, 2, "y", &CausalContext::new());
        let ctx = b.context().clone();
        w(&mut a, 1, "z", &ctx);
        a.merge(&b);
        assert_eq!(a.values(), vec![b"z".to_vec()]);
    }

    #[test]
    fn sibling_cap_is_an_error_that_changes_nothing() {
        let mut a = MvRegister::new();
        for _ in 0..3 {
            a.write(NodeId(1), 0, Some(vec![1]), &CausalContext::new(), 3).expect("under cap");
        }
        let before = a.clone();
        let err = a.write(NodeId(1), 0, Some(vec![1]), &CausalContext::new(), 3);
        assert_eq!(err, Err(CrdtError::TooManySiblings { count: 4, max: 3 }));
        assert_eq!(a, before);
        let ctx = a.context().clone();
        assert!(a.write(NodeId(1), 0, Some(vec![2]), &ctx, 3).is_ok());
    }

    #[test]
    fn delete_marker_is_not_a_value_but_is_superseded_like_one() {
        let mut a = MvRegister::new();
        w(&mut a, 1, "x", &CausalContext::new());
        let ctx = a.context().clone();
        a.write(NodeId(1), 0, None, &ctx, MAX).expect("delete");
        assert!(!a.has_value());
        assert_eq!(a.siblings().len(), 1);
        let ctx = a.context().clone();
        w(&mut a, 1, "again", &ctx);
        assert_eq!(a.siblings().len(), 1);
        assert_eq!(a.values(), vec![b"again".to_vec()]);
    }
}
