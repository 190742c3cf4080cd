//! Merge is a join for every value type: commutative, associative, idempotent, compared on
//! encoded bytes (what storage hashes); and replicas that exchange states in any order, with
//! duplicates, end byte-identical.

mod common;

use common::*;
use meridian_crdt::{Record, ValueKind};
use proptest::prelude::*;

fn check_laws((a, b, c): (Record, Record, Record)) -> Result<(), TestCaseError> {
    // Commutative.
    prop_assert_eq!(merged(&a, &b).encode(), merged(&b, &a).encode());
    // Associative.
    prop_assert_eq!(merged(&merged(&a, &b), &c).encode(), merged(&a, &merged(&b, &c)).encode());
    // Idempotent, and `merge` reports no change.
    let mut aa = a.clone();
    prop_assert!(!aa.merge(&a).expect("same kind"));
    prop_assert_eq!(aa.encode(), a.encode());
    // Merge result is an upper bound: absorbing either side again changes nothing.
    let mut ab = merged(&a, &b);
    prop_assert!(!ab.merge(&b).expect("same kind"));
    prop_assert!(!ab.merge(&a).expect("same kind"));
    // The change flag is exact: true iff the bytes changed.
    let mut x = a.clone();
    let changed = x.merge(&b).expect("same kind");
    prop_assert_eq!(changed, x.encode() != a.encode());
    // Merging into the empty record yields the record.
    prop_assert_eq!(merged(&Record::empty(a.kind()), &a).encode(), a.encode());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn lww_merge_is_a_join(states in three_states(ValueKind::Lww, true)) {
        check_laws(states)?;
    }

    #[test]
    fn mvr_merge_is_a_join(states in three_states(ValueKind::Mvr, true)) {
        check_laws(states)?;
    }

    #[test]
    fn counter_merge_is_a_join(states in three_states(ValueKind::Counter, true)) {
        check_laws(states)?;
    }

    #[test]
    fn set_merge_is_a_join(states in three_states(ValueKind::Set, true)) {
        check_laws(states)?;
    }
}

/// Random ops at 2–4 replicas (with syncs in between), then each replica receives every other
/// replica's final state in a random order with duplicates, interleaved with relays of states
/// that are themselves partial merges.
fn converges(
    kind: ValueKind,
    replicas: usize,
    steps: &[Step],
    deliveries: &[(usize, usize)],
    order_seed: &[usize],
) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(kind, replicas);
    sim.run(steps);
    let finals = sim.states.clone();
    // Gossip phase: relay whatever partial state a replica holds.
    for (from, to) in deliveries {
        let (from, to) = (from % replicas, to % replicas);
        let s = sim.states[from].clone();
        sim.states[to].merge(&s).expect("same kind");
    }
    // Delivery phase: every replica gets every final state, in a per-replica shuffled order,
    // some twice.
    for to in 0..replicas {
        let mut queue: Vec<usize> = (0..replicas).chain(order_seed.iter().map(|i| i % replicas)).collect();
        let k = order_seed.get(to).copied().unwrap_or(0);
        let len = queue.len();
        queue.rotate_left(k % len);
        if to % 2 == 1 {
            queue.reverse();
        }
        for from in queue {
            sim.states[to].merge(&finals[from]).expect("same kind");
        }
    }
    let first = sim.states[0].encode();
    for s in &sim.states[1..] {
        prop_assert_eq!(&s.encode(), &first);
    }
    // And they all read the same at any time.
    for t in [T0, T0 + 500, T0 + 10_000] {
        let r0 = sim.states[0].read(t);
        for s in &sim.states[1..] {
            prop_assert_eq!(&s.read(t), &r0);
        }
    }
    Ok(())
}

/// Replica count, the run, relays `(from, to)`, and a seed for delivery orders.
type ConvergenceCase = (usize, Vec<Step>, Vec<(usize, usize)>, Vec<usize>);

fn convergence_case(kind: ValueKind) -> impl Strategy<Value = ConvergenceCase> {
    (2usize..=4).prop_flat_map(move |n| {
        (
            Just(n),
            gen_steps(kind, n, 24, true, true),
            proptest::collection::vec((0usize..4, 0usize..4), 0..6),
            proptest::collection::vec(0usize..16, 0..4),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn lww_replicas_converge((n, steps, gossip, order) in convergence_case(ValueKind::Lww)) {
        converges(ValueKind::Lww, n, &steps, &gossip, &order)?;
    }

    #[test]
    fn mvr_replicas_converge((n, steps, gossip, order) in convergence_case(ValueKind::Mvr)) {
        converges(ValueKind::Mvr, n, &steps, &gossip, &order)?;
    }

    #[test]
    fn counter_replicas_converge((n, steps, gossip, order) in convergence_case(ValueKind::Counter)) {
        converges(ValueKind::Counter, n, &steps, &gossip, &order)?;
    }

    #[test]
    fn set_replicas_converge((n, steps, gossip, order) in convergence_case(ValueKind::Set)) {
        converges(ValueKind::Set, n, &steps, &gossip, &order)?;
    }
}

#[test]
fn merge_of_different_kinds_is_an_error_and_changes_nothing() {
    for a in ValueKind::ALL {
        for b in ValueKind::ALL {
            if a == b {
                continue;
            }
            let mut x = Record::empty(a);
            let err = x.merge(&Record::empty(b)).expect_err("kinds differ");
            assert_eq!(err.code(), "kind_mismatch");
            assert_eq!(x, Record::empty(a));
        }
    }
}
