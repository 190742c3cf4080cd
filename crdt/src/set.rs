//! Add-wins observed-remove set of byte strings. See `docs/algorithms/set.md`.

use std::collections::{BTreeMap, BTreeSet};

use crate::causal::{CausalContext, Dot};
use crate::error::CrdtError;
use crate::hlc::NodeId;

/// An add-wins set: each present element carries the dots of the adds that put it there, and
/// the causal context remembers every dot the state has observed, including those of removed
/// elements.
///
/// Invariants: every element's dot set is non-empty and covered by the context. A remove drops
/// the element's observed dots and records nothing else: there are no per-element remove
/// contexts to defer, so merge is the plain dot-store join.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AwSet {
    entries: BTreeMap<Vec<u8>, BTreeSet<Dot>>,
    context: CausalContext,
}

impl AwSet {
    /// The empty set.
    pub fn new() -> Self {
        AwSet::default()
    }

    pub(crate) fn from_parts(entries: BTreeMap<Vec<u8>, BTreeSet<Dot>>, context: CausalContext) -> Self {
        AwSet { entries, context }
    }

    /// Present elements with their dots, in byte order.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, BTreeSet<Dot>> {
        &self.entries
    }

    /// Everything this state has observed.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Present elements, sorted by bytes.
    pub fn members(&self) -> Vec<Vec<u8>> {
        self.entries.keys().cloned().collect()
    }

    /// Whether `elem` is present.
    pub fn contains(&self, elem: &[u8]) -> bool {
        self.entries.contains_key(elem)
    }

    /// True when no element is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One update at replica `actor`: first the removes, then the adds.
    ///
    /// A remove drops the dots of the element that are covered by `observed` (the client's read
    /// context) or, when `observed` is `None`, all the dots this replica holds for it. Dots of
    /// the element this replica has not received yet are not removed: the context is not
    /// widened by a client context, because a client context also covers other elements' adds.
    /// All adds of one update share one fresh dot (counter `>= floor`), which replaces the
    /// element's previous dots (they are all observed by this replica).
    ///
    /// Errors with [`CrdtError::InvalidOp`], changing nothing, if an element is both added and
    /// removed.
    pub fn update(
        &mut self,
        actor: NodeId,
        floor: u64,
        add: &[Vec<u8>],
        remove: &[Vec<u8>],
        observed: Option<&CausalContext>,
    ) -> Result<(), CrdtError> {
        let adds: BTreeSet<&Vec<u8>> = add.iter().collect();
        if let Some(both) = remove.iter().find(|e| adds.contains(e)) {
            return Err(CrdtError::InvalidOp(format!(
                "element of {} bytes is both added and removed in one update",
                both.len()
            )));
        }
        let dot = if adds.is_empty() { None } else { Some(self.context.next_dot(actor, floor)?) };
        for elem in remove {
            self.remove_observed(elem, observed);
        }
        if let Some(dot) = dot {
            for elem in adds {
                self.entries.insert(elem.clone(), BTreeSet::from([dot]));
            }
            self.context.insert(dot);
        }
        Ok(())
    }

    fn remove_observed(&mut self, elem: &[u8], observed: Option<&CausalContext>) {
        let Some(dots) = self.entries.get_mut(elem) else {
            return;
        };
        match observed {
            None => dots.clear(),
            Some(ctx) => dots.retain(|d| !ctx.contains(d)),
        }
        if dots.is_empty() {
            self.entries.remove(elem);
        }
    }

    /// Removes every element this replica holds (the context keeps their dots).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Dot-store join, per element: a dot survives if both sides hold it, or one side holds it
    /// and the other has not observed it. Contexts join. Returns whether `self` changed.
    pub fn merge(&mut self, other: &AwSet) -> bool {
        let before = self.clone();
        let keys: BTreeSet<Vec<u8>> = self.entries.keys().chain(other.entries.keys()).cloned().collect();
        let empty = BTreeSet::new();
        let mut out = BTreeMap::new();
        for k in keys {
            let mine = self.entries.get(&k).unwrap_or(&empty);
            let theirs = other.entries.get(&k).unwrap_or(&empty);
            let kept: BTreeSet<Dot> = mine
                .iter()
                .filter(|d| theirs.contains(d) || !other.context.contains(d))
                .chain(theirs.iter().filter(|d| !self.context.contains(d)))
                .copied()
                .collect();
            if !kept.is_empty() {
                out.insert(k, kept);
            }
        }
        self.entries = out;
        self.context.join(&other.context);
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn concurrent_add_survives_remove_that_did_not_see_it() {
        let mut a = AwSet::new();
        a.update(NodeId(1), 0, &[e("x")], &[], None).expect("add");
        let mut b = a.clone();
        b.update(NodeId(2), 0, &[e("x")], &[], None).expect("re-add at b");
        a.update(NodeId(1), 0, &[], &[e("x")], None).expect("remove at a");
        assert!(!a.contains(b"x"));
        a.merge(&b);
        assert!(a.contains(b"x"), "add wins");
        assert_eq!(a.entries()[&e("x")].len(), 1);
    }

    #[test]
    fn remove_with_client_context_spares_adds_the_client_did_not_see() {
        let mut a = AwSet::new();
        a.update(NodeId(1), 0, &[e("x")], &[], None).expect("add");
        let seen = a.context().clone();
        a.update(NodeId(1), 0, &[e("x")], &[], None).expect("second add");
        a.update(NodeId(1), 0, &[], &[e("x")], Some(&seen)).expect("remove");
        assert!(a.contains(b"x"));
    }

    #[test]
    fn client_context_does_not_remove_other_elements_arriving_later() {
        // The surprise an AW-set with a widened context would have: b's add of y is in the
        // client's context (read at b), the client removes only x at a.
        let mut a = AwSet::new();
        let mut b = AwSet::new();
        a.update(NodeId(1), 0, &[e("x")], &[], None).expect("add x");
        b.merge(&a);
        b.update(NodeId(2), 0, &[e("y")], &[], None).expect("add y");
        let client_ctx = b.context().clone();
        a.update(NodeId(1), 0, &[], &[e("x")], Some(&client_ctx)).expect("remove x");
        a.merge(&b);
        assert_eq!(a.members(), vec![e("y")]);
    }

    #[test]
    fn add_and_remove_of_the_same_element_is_rejected() {
        let mut a = AwSet::new();
        let err = a.update(NodeId(1), 0, &[e("x")], &[e("x")], None);
        assert!(matches!(err, Err(CrdtError::InvalidOp(_))));
        assert_eq!(a, AwSet::new());
    }
}
