//! The read round: R out of N, merge by type whatever the arrival order, stale replicas,
//! late responses, read repair (blocking at QUORUM and ALL).

mod quorum_common;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{CrdtError, Hlc, Limits, NodeId, Op, OpContext, ReadValue, Record, ValueKind};
use meridian_local::Origin;
use meridian_region::quorum::{Answer, ReadDecision, ReadRound, ReadStatus, RepairPlan, WriteAction, WriteStatus};
use meridian_region::RegionError;
use proptest::prelude::*;
use quorum_common::{expected_required, join, node, nodes, replica_states, LEVELS, T0};

const DEADLINE: u64 = 1_000;

fn lww(v: u8, t: u64) -> Record {
    let ctx = OpContext { actor: node(0), ts: Hlc::from_physical_ms(T0 + t, node(0)), now_ms: T0 + t };
    Record::apply(None, ValueKind::Lww, &Op::LwwPut { value: vec![v], ttl_ms: None }, &ctx, &Limits::default())
        .expect("apply")
}

fn decided(r: &ReadRound) -> ReadDecision {
    match r.poll(T0 + 1_000) {
        ReadStatus::Decided(d) => d,
        other => panic!("expected a decision, got {other:?}"),
    }
}

#[test]
fn decides_exactly_at_the_r_th_response_for_every_level_and_n() {
    for n in 1..=5 {
        for level in LEVELS {
            let r_needed = expected_required(level, n);
            let mut r = ReadRound::new(nodes(n), level, DEADLINE);
            assert_eq!(r.required(), r_needed);
            let asked: Vec<NodeId> = std::iter::from_fn(|| r.poll_transmit()).collect();
            assert_eq!(asked, nodes(n), "asks all N by default");
            for i in 0..r_needed {
                assert!(r.poll(T0).is_pending(), "{level} N={n}: decided after {i}");
                assert_eq!(r.on_response(node(i), Some(lww(i as u8, i as u64))), Answer::Counted);
            }
            let d = decided(&r);
            assert_eq!(d.responders, nodes(r_needed));
            // The newest of the decision set wins.
            assert_eq!(d.merged, Some(lww((r_needed - 1) as u8, (r_needed - 1) as u64)));
            for i in r_needed..n {
                assert_eq!(r.on_response(node(i), None), Answer::Late);
            }
            assert_eq!(decided(&r), d, "no flip");
        }
    }
}

#[test]
fn fails_exactly_when_failures_exceed_n_minus_r() {
    for n in 1..=5 {
        for level in LEVELS {
            let r_needed = expected_required(level, n);
            let mut r = ReadRound::new(nodes(n), level, DEADLINE);
            for i in 0..=(n - r_needed) {
                assert!(r.poll(T0).is_pending(), "{level} N={n}: failed after {i}");
                r.on_failure(node(i), "io error");
            }
            match r.poll(T0) {
                ReadStatus::Failed(RegionError::Unavailable { required, answered, asked, failures, .. }) => {
                    assert_eq!((required, answered, asked), (r_needed, 0, n));
                    assert_eq!(failures.len(), n - r_needed + 1);
                    assert_eq!(failures[0], (node(0), "io error".to_owned()));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn deadline_with_fewer_than_r_responses_fails_and_says_who_did_not_answer() {
    let mut r = ReadRound::new(nodes(3), ConsistencyLevel::All, DEADLINE);
    r.on_response(node(0), None);
    r.on_response(node(2), Some(lww(1, 1)));
    r.on_timeout(DEADLINE - 1);
    assert!(r.poll(T0).is_pending());
    r.on_timeout(DEADLINE);
    let ReadStatus::Failed(e) = r.poll(T0) else { panic!("failed") };
    let msg = e.to_string();
    assert!(msg.contains("all") && msg.contains("2 of 3 required") && msg.contains("(3 asked)"), "{msg}");
    let RegionError::Unavailable { failures, .. } = e else { panic!() };
    assert_eq!(failures, vec![(node(1), "no answer before the deadline".to_owned())]);
    assert_eq!(r.on_response(node(1), None), Answer::Late);
    assert!(matches!(r.poll(T0), ReadStatus::Failed(_)), "no flip");
}

#[test]
fn duplicate_and_unknown_responses_are_ignored() {
    let mut r = ReadRound::new(nodes(3), ConsistencyLevel::Quorum, DEADLINE);
    assert_eq!(r.on_response(node(0), Some(lww(1, 1))), Answer::Counted);
    assert_eq!(r.on_response(node(0), Some(lww(2, 2))), Answer::Duplicate);
    assert_eq!(r.on_failure(node(0), "x"), Answer::Duplicate);
    assert_eq!(r.on_response(NodeId(77), Some(lww(3, 3))), Answer::UnknownReplica);
    assert!(r.poll(T0).is_pending());
    assert_eq!(r.on_response(node(1), None), Answer::Counted);
    let d = decided(&r);
    assert_eq!(d.merged, Some(lww(1, 1)), "neither the duplicate nor the stranger got in");
    assert_eq!(d.stale, vec![node(1)]);
}

#[test]
fn fanout_asks_r_first_and_the_next_replica_on_each_failure() {
    let mut r = ReadRound::with_fanout(nodes(5), ConsistencyLevel::Quorum, 1, DEADLINE);
    let first: Vec<NodeId> = std::iter::from_fn(|| r.poll_transmit()).collect();
    assert_eq!(first, nodes(3), "max(fanout, R)");
    r.on_failure(node(1), "down");
    assert_eq!(r.poll_transmit(), Some(node(3)));
    r.on_failure(node(0), "down");
    assert_eq!(r.poll_transmit(), Some(node(4)));
    r.on_failure(node(2), "down");
    assert_eq!(r.poll_transmit(), None, "no replica left to ask");
    let ReadStatus::Failed(RegionError::Unavailable { answered, asked, .. }) = r.poll(T0) else { panic!() };
    assert_eq!((answered, asked), (0, 5));
}

#[test]
fn fanout_timeout_lists_only_the_replicas_asked() {
    let mut r = ReadRound::with_fanout(nodes(5), ConsistencyLevel::One, 1, DEADLINE);
    assert_eq!(std::iter::from_fn(|| r.poll_transmit()).count(), 1);
    r.on_timeout(DEADLINE);
    let ReadStatus::Failed(RegionError::Unavailable { asked, failures, .. }) = r.poll(T0) else { panic!() };
    assert_eq!(asked, 1);
    assert_eq!(failures.len(), 1);
}

#[test]
fn stale_compares_encodings_and_a_missing_record_is_stale_only_if_something_exists() {
    let mut r = ReadRound::new(nodes(3), ConsistencyLevel::All, DEADLINE);
    r.on_response(node(0), None);
    r.on_response(node(1), None);
    r.on_response(node(2), None);
    let d = decided(&r);
    assert_eq!((d.merged, d.value, d.stale, d.repair_blocking), (None, ReadValue::Absent, vec![], false));
    assert_eq!(r.take_repairs(), None);

    let mut r = ReadRound::new(nodes(3), ConsistencyLevel::All, DEADLINE);
    r.on_response(node(0), Some(lww(1, 1)));
    r.on_response(node(1), None);
    r.on_response(node(2), Some(lww(2, 2)));
    let d = decided(&r);
    assert_eq!(d.merged, Some(lww(2, 2)));
    assert_eq!(d.value, ReadValue::Lww { value: vec![2], ts: Hlc::from_physical_ms(T0 + 2, node(0)) });
    assert_eq!(d.stale, vec![node(0), node(1)]);
    assert!(d.repair_blocking);
}

#[test]
fn repair_blocks_at_quorum_and_all_but_not_at_one() {
    for level in LEVELS {
        let mut r = ReadRound::new(nodes(3), level, DEADLINE);
        r.on_response(node(0), Some(lww(1, 1)));
        r.on_response(node(1), Some(lww(2, 2)));
        r.on_response(node(2), None);
        let d = decided(&r);
        assert_eq!(d.repair_blocking, level != ConsistencyLevel::One && !d.stale.is_empty(), "{level}");
        if level == ConsistencyLevel::One {
            assert!(d.stale.is_empty(), "one response cannot be stale against itself");
            // The late ones are: background repair.
            let plan = r.take_repairs().expect("late responses are stale");
            assert_eq!(plan.record, lww(2, 2));
            assert_eq!(plan.targets, vec![node(0), node(2)]);
            assert_eq!(plan.holders, vec![node(1)]);
        }
    }
}

#[test]
fn value_is_read_at_the_time_passed_in() {
    let ctx = OpContext { actor: node(0), ts: Hlc::from_physical_ms(T0, node(0)), now_ms: T0 };
    let rec =
        Record::apply(None, ValueKind::Lww, &Op::LwwPut { value: vec![9], ttl_ms: Some(10) }, &ctx, &Limits::default())
            .expect("apply");
    let mut r = ReadRound::new(nodes(1), ConsistencyLevel::One, DEADLINE);
    r.on_response(node(0), Some(rec.clone()));
    let ReadStatus::Decided(before) = r.poll(T0 + 9) else { panic!() };
    assert!(!before.value.is_absent());
    let ReadStatus::Decided(after) = r.poll(T0 + 10) else { panic!() };
    assert!(after.value.is_absent(), "expired");
    assert_eq!(after.merged, Some(rec), "the state is kept (and repaired) even when it reads absent");
}

#[test]
fn kind_mismatch_between_replicas_is_an_error_not_a_silent_pick() {
    let counter = Record::empty(ValueKind::Counter);
    let mut r = ReadRound::new(nodes(2), ConsistencyLevel::All, DEADLINE);
    r.on_response(node(0), Some(lww(1, 1)));
    r.on_response(node(1), Some(counter.clone()));
    match r.poll(T0) {
        ReadStatus::Failed(RegionError::Crdt(CrdtError::KindMismatch { expected, found })) => {
            assert_eq!((expected, found), (ValueKind::Lww, ValueKind::Counter));
        }
        other => panic!("{other:?}"),
    }
    // A late response of the wrong kind is not folded into the repair state.
    let mut r = ReadRound::new(nodes(2), ConsistencyLevel::One, DEADLINE);
    r.on_response(node(0), Some(lww(1, 1)));
    assert_eq!(r.on_response(node(1), Some(counter)), Answer::Unexpected);
    assert_eq!(r.take_repairs(), None);
}

#[test]
fn late_newer_response_makes_the_decision_set_stale_again_without_changing_the_answer() {
    let mut r = ReadRound::new(nodes(3), ConsistencyLevel::Quorum, DEADLINE);
    r.on_response(node(0), Some(lww(1, 1)));
    r.on_response(node(1), Some(lww(2, 2)));
    let d = decided(&r);
    let first = r.take_repairs().expect("node 0 is stale");
    assert_eq!((first.targets.clone(), first.holders.clone()), (vec![node(0)], vec![node(1)]));
    assert_eq!(r.take_repairs(), None, "handed out once");
    assert_eq!(r.on_response(node(2), Some(lww(3, 3))), Answer::Late);
    assert_eq!(decided(&r), d, "the client's answer does not change");
    let second = r.take_repairs().expect("node 2 had something newer");
    assert_eq!(second.record, lww(3, 3));
    assert_eq!(second.targets, vec![node(0), node(1)]);
    assert_eq!(second.holders, vec![node(2)]);
}

#[test]
fn blocking_repair_round_counts_holders_and_waits_for_the_targets() {
    let plan = RepairPlan { record: lww(2, 2), targets: vec![node(0)], holders: vec![node(1)] };
    let mut round = plan.round(&nodes(3), ConsistencyLevel::Quorum, DEADLINE);
    assert!(round.poll().is_pending(), "1 holder of 2 required");
    let t = round.poll_transmit().expect("a merge");
    assert_eq!(t.to, node(0));
    match t.action {
        WriteAction::Merge { record, origin, then_apply } => {
            assert_eq!((*record).clone(), lww(2, 2));
            assert_eq!(origin, Origin::Repair);
            assert_eq!(then_apply, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(round.poll_transmit(), None, "holders and non-responders are not sent anything");
    assert_eq!(round.on_ack(node(2)), Answer::Unexpected, "not a target");
    assert_eq!(round.on_ack(node(1)), Answer::Duplicate, "already a holder");
    assert_eq!(round.on_ack(node(0)), Answer::Counted);
    assert!(round.poll().is_succeeded());

    let mut round = plan.round(&nodes(3), ConsistencyLevel::Quorum, DEADLINE);
    round.on_failure(node(0), "down");
    let WriteStatus::Failed(RegionError::Unavailable { answered, required, .. }) = round.poll() else { panic!() };
    assert_eq!((answered, required), (1, 2));
    assert_eq!(round.hint_targets(), vec![node(0)]);
}

fn kind() -> impl Strategy<Value = ValueKind> {
    prop_oneof![Just(ValueKind::Lww), Just(ValueKind::Mvr), Just(ValueKind::Counter), Just(ValueKind::Set)]
}

fn level() -> impl Strategy<Value = ConsistencyLevel> {
    prop_oneof![Just(ConsistencyLevel::One), Just(ConsistencyLevel::Quorum), Just(ConsistencyLevel::All)]
}

/// Replica states of one kind reached by a random history, and a delivery order.
/// A kind, N, a history of `(replica, x, sync)` steps, and an arrival order.
type Setup = (ValueKind, usize, Vec<(usize, u8, bool)>, Vec<usize>);

fn setup() -> impl Strategy<Value = Setup> {
    (kind(), 1usize..=5).prop_flat_map(|(kind, n)| {
        (
            Just(kind),
            Just(n),
            proptest::collection::vec((0..n, any::<u8>(), proptest::bool::weighted(0.3)), 0..30),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The decision is the join of the first R responses, whatever order they came in; the
    /// stale ones are exactly those whose bytes differ; late responses join the repair state;
    /// after the repairs every responder holds the same bytes.
    #[test]
    fn read_merges_the_decision_set_in_any_order_and_repair_converges(
        (kind, n, steps, order) in setup(),
        level in level(),
    ) {
        let states = replica_states(kind, n, &steps);
        let r_needed = expected_required(level, n);
        let mut r = ReadRound::new(nodes(n), level, DEADLINE);
        for (k, &i) in order.iter().enumerate() {
            let a = r.on_response(node(i), states[i].clone());
            prop_assert_eq!(a, if k < r_needed { Answer::Counted } else { Answer::Late });
            if k + 1 == r_needed {
                let d = decided(&r);
                let set: Vec<usize> = order[..r_needed].to_vec();
                let mut sorted = set.clone();
                sorted.sort();
                // The join in a fixed order equals the one built in arrival order.
                let expected = join(sorted.iter().map(|&i| &states[i]));
                prop_assert_eq!(d.merged.as_ref().map(Record::encode), expected.as_ref().map(Record::encode));
                prop_assert_eq!(d.responders.clone(), set.iter().map(|&i| node(i)).collect::<Vec<_>>());
                let enc = expected.as_ref().map(Record::encode);
                let stale: Vec<NodeId> =
                    set.iter().filter(|&&i| states[i].as_ref().map(Record::encode) != enc).map(|&i| node(i)).collect();
                prop_assert_eq!(d.stale.clone(), stale.clone());
                prop_assert_eq!(d.repair_blocking, level != ConsistencyLevel::One && !stale.is_empty());
                prop_assert_eq!(d.value, expected.as_ref().map_or(ReadValue::Absent, |m| m.read(T0 + 1_000)));
            }
        }
        // Every response is in: one repair plan brings every replica to the join of all.
        let all = join(states.iter());
        let mut held = states.clone();
        if let Some(plan) = r.take_repairs() {
            prop_assert_eq!(Some(plan.record.encode()), all.as_ref().map(Record::encode));
            for t in &plan.targets {
                let i = nodes(n).iter().position(|x| x == t).expect("replica");
                match &mut held[i] {
                    Some(h) => { h.merge(&plan.record).expect("same kind"); }
                    None => held[i] = Some(plan.record.clone()),
                }
            }
            for h in &plan.holders {
                let i = nodes(n).iter().position(|x| x == h).expect("replica");
                prop_assert_eq!(held[i].as_ref().map(Record::encode), Some(plan.record.encode()));
            }
        }
        let encs: Vec<Option<Vec<u8>>> = held.iter().map(|h| h.as_ref().map(Record::encode)).collect();
        prop_assert!(encs.iter().all(|e| *e == encs[0]), "replicas differ after repair");
        prop_assert_eq!(r.take_repairs(), None);
    }

    /// With random failures and a timeout interleaved: the read decides exactly at the R-th
    /// response, fails exactly when failures exceed N − R (or at the deadline short of R), and
    /// never changes its mind.
    #[test]
    fn read_round_decides_or_fails_at_the_exact_event_and_never_flips(
        n in 1usize..=5,
        level in level(),
        events in proptest::collection::vec((0usize..7, 0u8..4), 0..20),
    ) {
        let r_needed = expected_required(level, n);
        let mut r = ReadRound::new(nodes(n), level, DEADLINE);
        let (mut answered, mut responded, mut failed) = (vec![false; n], 0usize, 0usize);
        let mut model: Option<bool> = None;
        let mut first: Option<bool> = None;
        for &(i, what) in &events {
            let pending = model.is_none();
            if what == 3 {
                r.on_timeout(DEADLINE);
                if pending { model = Some(false); }
            } else {
                let a = if what == 2 { r.on_failure(node(i), "f") } else { r.on_response(node(i), None) };
                let expected = if i >= n {
                    Answer::UnknownReplica
                } else if answered[i] {
                    Answer::Duplicate
                } else {
                    answered[i] = true;
                    if what == 2 { failed += 1 } else { responded += 1 }
                    if pending { Answer::Counted } else { Answer::Late }
                };
                prop_assert_eq!(a, expected);
                if pending {
                    if responded >= r_needed { model = Some(true) } else if failed > n - r_needed { model = Some(false) }
                }
            }
            let now = match r.poll(T0) {
                ReadStatus::Pending => None,
                ReadStatus::Decided(d) => { prop_assert_eq!(d.responders.len(), r_needed); Some(true) }
                ReadStatus::Failed(_) => Some(false),
            };
            prop_assert_eq!(now, model);
            if let Some(f) = first { prop_assert_eq!(now, Some(f), "flipped"); }
            first = first.or(now);
        }
    }
}
