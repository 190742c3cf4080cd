//! PN-counter with observed-remove reset. See `docs/algorithms/counter.md`.

use std::collections::BTreeMap;

use crate::error::CrdtError;
use crate::hlc::NodeId;

/// Which incarnation of an actor's entry: the actor plus the HLC time at which that actor first
/// incremented this key (as seen by its own state).
///
/// A replica keeps adding to its newest slot. It opens a new slot only when its state has no
/// slot of its own, which happens after it garbage-collected (or lost) the key; because the new
/// epoch is a later HLC time, the new increments live next to, not under, the counts that stale
/// copies elsewhere still remember, and max-merge cannot swallow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The replica that applied the increments.
    pub actor: NodeId,
    /// HLC time (NTP64) at which the actor opened this slot.
    pub epoch: u64,
}

/// One slot's totals: increments `p`, decrements `n`, and the reset floors below which counts
/// no longer contribute. Every field merges by max; `p_floor <= p` and `n_floor <= n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CounterEntry {
    /// Sum of positive deltas applied by the slot's actor.
    pub p: u64,
    /// Sum of the magnitudes of negative deltas applied by the slot's actor.
    pub n: u64,
    /// `p` as observed by the latest reset.
    pub p_floor: u64,
    /// `n` as observed by the latest reset.
    pub n_floor: u64,
}

impl CounterEntry {
    /// This slot's contribution to the value, `(p - p_floor) - (n - n_floor)`.
    pub fn contribution(&self) -> i128 {
        i128::from(self.p.saturating_sub(self.p_floor)) - i128::from(self.n.saturating_sub(self.n_floor))
    }

    /// True when some increment or decrement is above its floor (not reset away).
    pub fn is_live(&self) -> bool {
        self.p > self.p_floor || self.n > self.n_floor
    }

    fn join(&mut self, o: &CounterEntry) {
        self.p = self.p.max(o.p);
        self.n = self.n.max(o.n);
        self.p_floor = self.p_floor.max(o.p_floor);
        self.n_floor = self.n_floor.max(o.n_floor);
    }
}

/// A PN-counter: per-slot max-merged totals plus observed-remove reset floors.
///
/// `value = Σ (p - p_floor) - Σ (n - n_floor)`. A reset raises the floors of the slots it has
/// observed to their current counts; increments it did not observe stay above the floors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PnCounter {
    entries: BTreeMap<Slot, CounterEntry>,
}

impl PnCounter {
    /// The zero counter.
    pub fn new() -> Self {
        PnCounter::default()
    }

    pub(crate) fn from_entries(entries: BTreeMap<Slot, CounterEntry>) -> Self {
        PnCounter { entries }
    }

    /// The per-slot totals.
    pub fn entries(&self) -> &BTreeMap<Slot, CounterEntry> {
        &self.entries
    }

    /// The current value, saturated to the `i64` range.
    pub fn value(&self) -> i64 {
        let sum: i128 = self.entries.values().map(CounterEntry::contribution).sum();
        i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
    }

    /// True when some slot has a count above its floor (the counter was not reset away).
    pub fn is_live(&self) -> bool {
        self.entries.values().any(CounterEntry::is_live)
    }

    /// Adds `delta` at replica `actor`. `epoch` (the op's HLC time) is used only if the actor
    /// has no slot in this state yet. Errors with [`CrdtError::InvalidOp`], changing nothing,
    /// if the actor's total would overflow `u64`.
    pub fn add(&mut self, actor: NodeId, epoch: u64, delta: i64) -> Result<(), CrdtError> {
        self.add_above(actor, epoch, delta, 0)
    }

    /// [`add`](PnCounter::add), except that a slot of `actor` opened before `slot_floor` is not
    /// extended: a new slot `(actor, max(epoch, slot_floor))` is opened. A node restored from a
    /// snapshot passes its restore time, so its increments never extend a slot whose newer
    /// counts (acknowledged before the restore) it no longer holds.
    pub fn add_above(&mut self, actor: NodeId, epoch: u64, delta: i64, slot_floor: u64) -> Result<(), CrdtError> {
        if delta == 0 {
            return Ok(());
        }
        let slot = self
            .entries
            .range(Slot { actor, epoch: slot_floor }..=Slot { actor, epoch: u64::MAX })
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(Slot { actor, epoch: epoch.max(slot_floor) });
        let entry = self.entries.get(&slot).copied().unwrap_or_default();
        let magnitude = delta.unsigned_abs();
        let overflow = || CrdtError::InvalidOp(format!("counter overflow at actor {actor}"));
        let updated = if delta > 0 {
            CounterEntry { p: entry.p.checked_add(magnitude).ok_or_else(overflow)?, ..entry }
        } else {
            CounterEntry { n: entry.n.checked_add(magnitude).ok_or_else(overflow)?, ..entry }
        };
        self.entries.insert(slot, updated);
        Ok(())
    }

    /// Observed-remove reset: every slot's floors rise to its current counts.
    pub fn reset(&mut self) {
        for e in self.entries.values_mut() {
            e.p_floor = e.p;
            e.n_floor = e.n;
        }
    }

    /// Pointwise max of every field. Returns whether `self` changed.
    pub fn merge(&mut self, other: &PnCounter) -> bool {
        let mut changed = false;
        for (slot, theirs) in &other.entries {
            let mine = self.entries.entry(*slot).or_default();
            let before = *mine;
            mine.join(theirs);
            changed |= *mine != before;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_increments_minus_decrements() {
        let mut c = PnCounter::new();
        c.add(NodeId(1), 1, 5).expect("add");
        c.add(NodeId(1), 2, -2).expect("add");
        c.add(NodeId(2), 3, i64::MIN).expect("add");
        assert_eq!(c.value(), i64::MIN + 3);
        assert_eq!(c.entries().len(), 2, "actor 1 keeps its first slot");
    }

    #[test]
    fn reset_keeps_concurrent_unobserved_increments() {
        let mut a = PnCounter::new();
        a.add(NodeId(1), 1, 10).expect("add");
        let mut b = a.clone();
        b.add(NodeId(2), 2, 7).expect("add"); // a never sees this before resetting
        a.reset();
        a.merge(&b);
        assert_eq!(a.value(), 7);
        assert!(a.is_live());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic_or_wrap() {
        let mut c = PnCounter::new();
        c.add(NodeId(1), 1, i64::MAX).expect("add");
        c.add(NodeId(1), 1, i64::MAX).expect("add");
        let before = c.clone();
        assert!(matches!(c.add(NodeId(1), 1, 2), Err(CrdtError::InvalidOp(_))));
        assert_eq!(c, before);
        // The value saturates instead of wrapping.
        assert_eq!(c.value(), i64::MAX);
    }

    #[test]
    fn increments_after_gc_are_not_swallowed_by_a_stale_copy() {
        // Stale copy: actor 1 counted 100 then the counter was reset (garbage).
        let mut stale = PnCounter::new();
        stale.add(NodeId(1), 10, 100).expect("add");
        stale.reset();
        // Actor 1 collected the key and counts again from zero in a new slot.
        let mut fresh = PnCounter::new();
        fresh.add(NodeId(1), 20, 5).expect("add");
        fresh.merge(&stale);
        assert_eq!(fresh.value(), 5);
    }

    #[test]
    fn a_restored_actor_does_not_extend_a_slot_it_is_behind_on() {
        // Actor 1 counted 150 in slot 10; its restored copy only saw the first 100.
        let mut acknowledged = PnCounter::new();
        acknowledged.add(NodeId(1), 10, 150).expect("add");
        let mut restored = PnCounter::new();
        restored.add(NodeId(1), 10, 100).expect("add");
        let mut naive = restored.clone();
        // Extending the stale slot loses the new increments to the max-merge.
        naive.add(NodeId(1), 30, 25).expect("add");
        naive.merge(&acknowledged);
        assert_eq!(naive.value(), 150, "the swallowed increments this guards against");
        // With the restore time as floor, the increments go to a new slot and survive.
        restored.add_above(NodeId(1), 30, 25, 20).expect("add");
        restored.add_above(NodeId(1), 31, 5, 20).expect("add");
        restored.merge(&acknowledged);
        assert_eq!(restored.value(), 180);
        assert_eq!(restored.entries.len(), 2, "one new slot, extended by the second increment");
        // A floor at or below the slot's epoch changes nothing.
        let mut same = PnCounter::new();
        same.add(NodeId(1), 10, 1).expect("add");
        same.add_above(NodeId(1), 40, 1, 10).expect("add");
        assert_eq!(same.entries.len(), 1);
    }
}
