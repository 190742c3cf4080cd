//! Model-based properties: after a full exchange, the converged state is exactly what the
//! type's specification says, given which writes observed which.
//!
//! - MVR: the surviving siblings are exactly the writes no other write observed (contract 6:
//!   no acknowledged concurrent write disappears without a write that observed it).
//! - Set: an element's surviving add-dots are exactly those no remove (and no re-add at a
//!   replica holding them) observed; add-wins (contract 4).
//! - Counter: the value is the sum of the applied deltas that no reset observed (contract 4).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use meridian_crdt::{Dot, Op, ReadValue, ValueKind};
use proptest::prelude::*;

fn case(kind: ValueKind) -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=4).prop_flat_map(move |n| (Just(n), gen_steps(kind, n, 24, false, true)))
}

fn mvr_siblings(sim: &Sim, r: usize) -> BTreeMap<Dot, Option<Vec<u8>>> {
    sim.states[r].as_mvr().expect("mvr").siblings().clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mvr_no_write_disappears_unless_a_later_write_observed_it((n, steps) in case(ValueKind::Mvr)) {
        let mut sim = Sim::new(ValueKind::Mvr, n);
        let mut written: BTreeMap<Dot, Option<Vec<u8>>> = BTreeMap::new();
        let mut observed: BTreeSet<Dot> = BTreeSet::new();
        for step in &steps {
            match step {
                Step::Sync { from, to } => sim.sync(*from, *to),
                Step::Op { replica, dt, op } => {
                    sim.now += dt;
                    let r = *replica;
                    let op = sim.to_op(r, op);
                    // What this write observes: the client's context, or for a reset the
                    // replica's whole context.
                    let seen = match &op {
                        Op::MvrPut { context, .. } => context.clone(),
                        _ => sim.states[r].context(),
                    };
                    let before = mvr_siblings(&sim, r);
                    sim.apply(r, &op).expect("no cap in this test");
                    let after = mvr_siblings(&sim, r);
                    let new: Vec<_> = after.iter().filter(|(d, _)| !before.contains_key(d)).collect();
                    prop_assert_eq!(new.len(), 1, "each write adds exactly one sibling");
                    for d in written.keys() {
                        if seen.contains(d) {
                            observed.insert(*d);
                        }
                    }
                    written.insert(*new[0].0, new[0].1.clone());
                }
            }
        }
        sim.exchange_all();
        let expected: BTreeMap<Dot, Option<Vec<u8>>> =
            written.into_iter().filter(|(d, _)| !observed.contains(d)).collect();
        for r in 0..n {
            prop_assert_eq!(&mvr_siblings(&sim, r), &expected);
        }
        // The read shows exactly the surviving values.
        let mut values: Vec<Vec<u8>> = expected.values().flatten().cloned().collect();
        values.sort();
        values.dedup();
        match sim.states[0].read(sim.now) {
            ReadValue::Absent => prop_assert!(values.is_empty()),
            ReadValue::Mvr { siblings, context } => {
                prop_assert_eq!(siblings, values);
                prop_assert_eq!(context, sim.states[0].context());
            }
            other => prop_assert!(false, "unexpected read {:?}", other),
        }
    }

    #[test]
    fn set_add_wins_over_every_remove_that_did_not_observe_it((n, steps) in case(ValueKind::Set)) {
        let mut sim = Sim::new(ValueKind::Set, n);
        let mut added: BTreeSet<(Vec<u8>, Dot)> = BTreeSet::new();
        let mut killed: BTreeSet<(Vec<u8>, Dot)> = BTreeSet::new();
        for step in &steps {
            match step {
                Step::Sync { from, to } => sim.sync(*from, *to),
                Step::Op { replica, dt, op } => {
                    sim.now += dt;
                    let r = *replica;
                    let op = sim.to_op(r, op);
                    let before = sim.states[r].as_set().expect("set").entries().clone();
                    let held = |e: &Vec<u8>| before.get(e).cloned().unwrap_or_default();
                    // The specification of what this op may kill, from the pre-state only.
                    match &op {
                        Op::SetUpdate { add, remove, context, .. } => {
                            for e in remove {
                                for d in held(e) {
                                    if context.as_ref().is_none_or(|c| c.contains(&d)) {
                                        killed.insert((e.clone(), d));
                                    }
                                }
                            }
                            for e in add {
                                for d in held(e) {
                                    killed.insert((e.clone(), d));
                                }
                            }
                        }
                        _ => {
                            for (e, dots) in &before {
                                for d in dots {
                                    killed.insert((e.clone(), *d));
                                }
                            }
                        }
                    }
                    sim.apply(r, &op).expect("valid op");
                    let after = sim.states[r].as_set().expect("set").entries().clone();
                    for (e, dots) in &after {
                        for d in dots {
                            if !held(e).contains(d) {
                                added.insert((e.clone(), *d));
                            }
                        }
                    }
                }
            }
        }
        sim.exchange_all();
        let mut expected: BTreeMap<Vec<u8>, BTreeSet<Dot>> = BTreeMap::new();
        for (e, d) in added.difference(&killed) {
            expected.entry(e.clone()).or_default().insert(*d);
        }
        for r in 0..n {
            prop_assert_eq!(sim.states[r].as_set().expect("set").entries(), &expected);
        }
        // Members: every add no remove observed, and nothing never added.
        let members: Vec<Vec<u8>> = expected.keys().cloned().collect();
        match sim.states[0].read(sim.now) {
            ReadValue::Absent => prop_assert!(members.is_empty()),
            ReadValue::Set { members: got, .. } => prop_assert_eq!(got, members),
            other => prop_assert!(false, "unexpected read {:?}", other),
        }
    }

    #[test]
    fn counter_equals_sum_of_deltas_no_reset_observed((n, steps) in case(ValueKind::Counter)) {
        let mut sim = Sim::new(ValueKind::Counter, n);
        // Each applied delta: (replica, positive side?, running total on that side, delta).
        let mut applied: Vec<(usize, bool, u64, i64)> = Vec::new();
        let mut observed: BTreeSet<usize> = BTreeSet::new();
        let side_total = |sim: &Sim, r: usize, actor: usize, positive: bool| -> u64 {
            sim.states[r]
                .as_counter()
                .expect("counter")
                .entries()
                .iter()
                .filter(|(s, _)| s.actor == node(actor))
                .map(|(_, e)| if positive { e.p } else { e.n })
                .sum()
        };
        for step in &steps {
            match step {
                Step::Sync { from, to } => sim.sync(*from, *to),
                Step::Op { replica, dt, op } => {
                    sim.now += dt;
                    let r = *replica;
                    let op = sim.to_op(r, op);
                    match &op {
                        Op::CounterAdd { delta, .. } => {
                            sim.apply(r, &op).expect("no overflow");
                            if *delta != 0 {
                                let positive = *delta > 0;
                                applied.push((r, positive, side_total(&sim, r, r, positive), *delta));
                            }
                        }
                        _ => {
                            // A reset at r observes every delta r's state already counts.
                            for (i, (actor, positive, total, _)) in applied.iter().enumerate() {
                                if side_total(&sim, r, *actor, *positive) >= *total {
                                    observed.insert(i);
                                }
                            }
                            sim.apply(r, &op).expect("reset");
                        }
                    }
                }
            }
        }
        sim.exchange_all();
        let expected: i64 = applied
            .iter()
            .enumerate()
            .filter(|(i, _)| !observed.contains(i))
            .map(|(_, (_, _, _, d))| d)
            .sum();
        let live = applied.iter().enumerate().any(|(i, _)| !observed.contains(&i));
        for r in 0..n {
            let got = sim.states[r].read(sim.now);
            if live {
                prop_assert_eq!(got, ReadValue::Counter(expected));
            } else {
                prop_assert_eq!(got, ReadValue::Absent);
            }
        }
    }

    #[test]
    fn counter_without_resets_is_the_plain_sum((n, steps) in (2usize..=4).prop_flat_map(|n| (Just(n), gen_steps(ValueKind::Counter, n, 24, false, false)))) {
        let mut sim = Sim::new(ValueKind::Counter, n);
        let mut sum = 0i64;
        for step in &steps {
            match step {
                Step::Sync { from, to } => sim.sync(*from, *to),
                Step::Op { replica, dt, op } => {
                    sim.now += dt;
                    let op = sim.to_op(*replica, op);
                    if let Op::CounterAdd { delta, .. } = op {
                        sum += delta;
                    }
                    sim.apply(*replica, &op).expect("no overflow");
                }
            }
        }
        sim.exchange_all();
        for r in 0..n {
            prop_assert_eq!(sim.states[r].as_counter().expect("counter").value(), sum);
        }
    }
}
