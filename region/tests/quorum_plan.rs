//! Write plans: which operations every replica applies and which one leader applies, and why
//! (each "why" is a test that shows what the other choice would break).

mod quorum_common;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{CausalContext, CrdtError, Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};
use meridian_region::quorum::{retry_may_duplicate, WritePlan};
use meridian_region::RegionError;
use proptest::prelude::*;
use quorum_common::{includes, node, replica_states, simple_op, Cluster, T0};

fn ctx(actor: NodeId, t: u64) -> OpContext {
    OpContext { actor, ts: Hlc::from_physical_ms(T0 + t, actor), now_ms: T0 + t }
}

fn apply(cur: Option<Record>, kind: ValueKind, op: &Op, c: &OpContext) -> Record {
    Record::apply(cur, kind, op, c, &Limits { max_siblings: 1_000, ..Limits::default() }).expect("apply")
}

fn merged(records: &[Record]) -> Record {
    let mut out = records[0].clone();
    for r in &records[1..] {
        out.merge(r).expect("same kind");
    }
    out
}

fn leader(follower_op: Option<Op>) -> WritePlan {
    WritePlan::ApplyAtLeaderThenReplicate { follower_op }
}

#[test]
fn plan_per_operation_and_kind() {
    let cc = CausalContext::new();
    let e = || vec![1u8];
    let cases: Vec<(ValueKind, Op, WritePlan)> = vec![
        (ValueKind::Lww, Op::LwwPut { value: e(), ttl_ms: Some(5) }, WritePlan::ApplyAtEach),
        (ValueKind::Lww, Op::LwwDelete, WritePlan::ApplyAtEach),
        (ValueKind::Lww, Op::Reset, WritePlan::ApplyAtEach),
        (ValueKind::Mvr, Op::MvrPut { value: Some(e()), context: cc.clone(), ttl_ms: None }, leader(None)),
        (ValueKind::Mvr, Op::MvrPut { value: None, context: cc.clone(), ttl_ms: None }, leader(None)),
        (ValueKind::Mvr, Op::Reset, leader(None)),
        (ValueKind::Counter, Op::CounterAdd { delta: 3, ttl_ms: None }, leader(None)),
        (ValueKind::Counter, Op::Reset, leader(None)),
        (
            ValueKind::Set,
            Op::SetUpdate { add: vec![e()], remove: vec![], context: Some(cc.clone()), ttl_ms: None },
            leader(None),
        ),
        (ValueKind::Set, Op::SetUpdate { add: vec![], remove: vec![e()], context: None, ttl_ms: None }, leader(None)),
        (
            ValueKind::Set,
            Op::SetUpdate { add: vec![vec![2]], remove: vec![e()], context: Some(cc.clone()), ttl_ms: Some(9) },
            leader(Some(Op::SetUpdate { add: vec![], remove: vec![e()], context: Some(cc.clone()), ttl_ms: None })),
        ),
        (ValueKind::Set, Op::Reset, leader(None)),
    ];
    for (kind, op, plan) in cases {
        assert_eq!(WritePlan::for_op(kind, &op).expect("fits"), plan, "{kind} {op:?}");
        assert_eq!(plan.has_leader(), kind != ValueKind::Lww);
    }
}

#[test]
fn an_op_of_another_kind_is_a_kind_mismatch() {
    let err = WritePlan::for_op(ValueKind::Counter, &Op::LwwDelete).expect_err("mismatch");
    assert!(matches!(
        err,
        RegionError::Crdt(CrdtError::KindMismatch { expected: ValueKind::Counter, found: ValueKind::Lww })
    ));
    assert_eq!(err.code(), "kind_mismatch");
}

#[test]
fn only_a_counter_increment_may_double_on_retry() {
    assert!(retry_may_duplicate(&Op::CounterAdd { delta: -1, ttl_ms: None }));
    assert!(!retry_may_duplicate(&Op::CounterAdd { delta: 0, ttl_ms: None }));
    assert!(!retry_may_duplicate(&Op::LwwPut { value: vec![1], ttl_ms: None }));
    assert!(!retry_may_duplicate(&Op::Reset));
    assert!(!retry_may_duplicate(&Op::SetUpdate { add: vec![vec![1]], remove: vec![], context: None, ttl_ms: None }));
}

/// Why counters need a leader: applied at each of three replicas, one increment of 1 is
/// counted three times (once per actor).
#[test]
fn counter_applied_at_each_replica_would_count_three_times() {
    let op = Op::CounterAdd { delta: 1, ttl_ms: None };
    let each: Vec<Record> = (0..3).map(|i| apply(None, ValueKind::Counter, &op, &ctx(node(i), 1))).collect();
    assert_eq!(merged(&each).as_counter().expect("counter").value(), 3, "the wrong way");

    let mut c = Cluster::new(ValueKind::Counter, 3);
    let out = c.write(&op, ConsistencyLevel::All, c.ordered(&[1]), &mut |_| 0);
    assert!(out.succeeded);
    for i in 0..3 {
        let state = c.state(i).expect("written");
        let counter = state.as_counter().expect("counter");
        assert_eq!(counter.value(), 1, "replica {i}");
        let actors: Vec<NodeId> = counter.entries().keys().map(|s| s.actor).collect();
        assert_eq!(actors, vec![node(1)], "the leader is the actor");
    }
}

/// Why multi-value register writes need one actor: applied at each replica with its own
/// actor, one write becomes three siblings (three dots), which a reader sees as concurrent
/// writes and which count against the sibling cap.
#[test]
fn mvr_write_applied_at_each_replica_would_make_one_sibling_per_replica() {
    let op = Op::MvrPut { value: Some(b"v".to_vec()), context: CausalContext::new(), ttl_ms: None };
    let each: Vec<Record> = (0..3).map(|i| apply(None, ValueKind::Mvr, &op, &ctx(node(i), 1))).collect();
    assert_eq!(merged(&each).as_mvr().expect("mvr").siblings().len(), 3, "the wrong way");

    let mut c = Cluster::new(ValueKind::Mvr, 3);
    assert!(c.write(&op, ConsistencyLevel::All, c.ordered(&[2]), &mut |_| 0).succeeded);
    let state = c.state(0).expect("written");
    let sib: Vec<_> = state.as_mvr().expect("mvr").siblings().keys().copied().collect();
    assert_eq!(sib.len(), 1);
    assert_eq!(sib[0].actor, node(2));
}

/// Why one actor must also be one replica: the same actor applying at replicas in different
/// states issues the same dot for different writes, and merge then keeps only one of them.
#[test]
fn mvr_write_with_a_shared_actor_at_each_replica_would_reuse_a_dot_and_lose_a_write() {
    let x = NodeId(50);
    let blind = |v: &[u8]| Op::MvrPut { value: Some(v.to_vec()), context: CausalContext::new(), ttl_ms: None };
    // An earlier write reached replica a only.
    let a = apply(None, ValueKind::Mvr, &blind(b"first"), &ctx(x, 1));
    let b: Option<Record> = None;
    // A second blind write "applied at each" with actor x and the same timestamp.
    let a2 = apply(Some(a), ValueKind::Mvr, &blind(b"second"), &ctx(x, 1));
    let b2 = apply(b, ValueKind::Mvr, &blind(b"second"), &ctx(x, 1));
    let m = merged(&[a2, b2]);
    let values = m.as_mvr().expect("mvr").values();
    assert!(!values.contains(&b"first".to_vec()), "a concurrent acknowledged write vanished: {values:?}");
}

/// Why `lww` can be applied at each replica: with one shared `OpContext`, applying the op at a
/// replica is the same as merging the op's own state into it. That makes the per-replica
/// applications idempotent, order-independent, and equal to replicating one state.
#[test]
fn lww_apply_equals_merging_the_ops_state_on_reachable_states() {
    // Deterministic sweep; the property below covers random histories.
    for x in 0..20u8 {
        let states = replica_states(ValueKind::Lww, 3, &[(0, x, false), (1, x.wrapping_add(3), false), (2, 1, true)]);
        let op = simple_op(ValueKind::Lww, x.wrapping_mul(7), None);
        let c = ctx(NodeId(1_000), 2);
        let delta = apply(None, ValueKind::Lww, &op, &c);
        for s in &states {
            let applied = apply(s.clone(), ValueKind::Lww, &op, &c);
            let mut via_merge = s.clone().unwrap_or_else(|| Record::empty(ValueKind::Lww));
            via_merge.merge(&delta).expect("lww");
            assert_eq!(applied.encode(), via_merge.encode());
        }
    }
}

/// A set update that adds and removes with a client context: the followers also apply the
/// remove, so it takes effect even when the leader had not received the add the client saw
/// and removed. With the leader alone, the remove would be lost for good.
#[test]
fn set_remove_takes_effect_even_when_the_leader_had_not_received_the_add() {
    let e = |b: u8| vec![b];
    let mut c = Cluster::new(ValueKind::Set, 3);
    // Add x at replicas 1 and 2 (leader 1); replica 0 is down.
    c.down[0] = true;
    let add = Op::SetUpdate { add: vec![e(7)], remove: vec![], context: None, ttl_ms: None };
    assert!(c.write(&add, ConsistencyLevel::Quorum, c.ordered(&[1, 2, 0]), &mut |_| 0).succeeded);
    c.down[0] = false;
    // The client read x at replica 2 and removes it (and adds y) through leader 0, which
    // never received x.
    let seen = c.state(2).expect("x").context();
    let op = Op::SetUpdate { add: vec![e(8)], remove: vec![e(7)], context: Some(seen), ttl_ms: None };
    c.down[2] = true;
    assert!(c.write(&op, ConsistencyLevel::Quorum, c.ordered(&[0, 1, 2]), &mut |_| 0).succeeded);
    c.down[2] = false;
    assert!(c.state(0).expect("leader").as_set().expect("set").contains(&e(8)));
    assert!(!c.state(1).expect("follower").as_set().expect("set").contains(&e(7)), "removed at the follower");
    // After a full exchange (anti-entropy), x is gone everywhere and y is there.
    let all = merged(&(0..3).map(|i| c.state(i).expect("state")).collect::<Vec<_>>());
    assert_eq!(all.as_set().expect("set").members(), vec![e(8)]);

    // The leader-only variant, for contrast: x survives the exchange.
    let leader_only = {
        let x_at_2 = c.state(2).expect("x");
        let l = apply(None, ValueKind::Set, &op, &ctx(node(0), 50));
        merged(&[l, x_at_2])
    };
    assert!(leader_only.as_set().expect("set").contains(&e(7)), "the remove would have been lost");
}

/// The followers apply the remove part with the leader state's context, not their own clock:
/// after a set update with a client context reached every replica, the three records are
/// byte-identical (equal Merkle digests), with no anti-entropy pass. Each follower applying
/// with its own HLC would leave a different `last_modified` at each replica, and the region's
/// digests would differ until a repair.
#[test]
fn replicas_hold_identical_records_after_a_set_remove_with_a_context() {
    let e = |b: u8| vec![b];
    let mut c = Cluster::new(ValueKind::Set, 3);
    let add = Op::SetUpdate { add: vec![e(7), e(9)], remove: vec![], context: None, ttl_ms: None };
    assert!(c.write(&add, ConsistencyLevel::All, c.ordered(&[1, 2, 0]), &mut |_| 0).succeeded);
    // Follower clocks ahead of the leader's, as on real machines.
    for i in 1..3 {
        c.replicas[i].clock.tick(c.now + 1_000 * i as u64);
    }
    let seen = c.state(2).expect("x").context();
    let op = Op::SetUpdate { add: vec![e(8)], remove: vec![e(7)], context: Some(seen), ttl_ms: None };
    assert!(c.write(&op, ConsistencyLevel::All, c.ordered(&[0, 1, 2]), &mut |_| 0).succeeded);
    let states: Vec<Record> = (0..3).map(|i| c.state(i).expect("state")).collect();
    assert_eq!(states[0].as_set().expect("set").members(), vec![e(8), e(9)]);
    for s in &states[1..] {
        assert_eq!(s.encode(), states[0].encode(), "a follower's record differs from the leader's");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// `lww` ops are states: apply(S, op) = S ⊔ state(op) for every reachable S, so applying
    /// at each replica, in any order and any number of times, is replicating one state.
    #[test]
    fn lww_apply_at_each_is_a_merge_of_the_ops_state(
        steps in proptest::collection::vec((0usize..3, any::<u8>(), proptest::bool::weighted(0.3)), 0..20),
        x in any::<u8>(),
        ttl in proptest::option::of(1u64..50),
        t in 0u64..40,
    ) {
        let states = replica_states(ValueKind::Lww, 3, &steps);
        let op = match simple_op(ValueKind::Lww, x, None) {
            Op::LwwPut { value, .. } => Op::LwwPut { value, ttl_ms: ttl },
            other => other,
        };
        let c = ctx(NodeId(1_000), t);
        let delta = apply(None, ValueKind::Lww, &op, &c);
        for s in &states {
            let once = apply(s.clone(), ValueKind::Lww, &op, &c);
            let twice = apply(Some(once.clone()), ValueKind::Lww, &op, &c);
            prop_assert_eq!(once.encode(), twice.encode(), "idempotent");
            let mut via_merge = s.clone().unwrap_or_else(|| Record::empty(ValueKind::Lww));
            via_merge.merge(&delta).expect("lww");
            prop_assert_eq!(once.encode(), via_merge.encode());
        }
    }

    /// The hybrid set plan: a follower that merges the leader's state and then applies the
    /// remove part ends with the same set as one that does it the other way round, includes
    /// the leader's state, and after a full exchange no dot of a removed element that the
    /// client observed survives if the leader or the follower held it.
    #[test]
    fn set_follower_remove_commutes_with_the_leader_merge_and_kills_observed_dots(
        steps in proptest::collection::vec((0usize..4, any::<u8>(), proptest::bool::weighted(0.3)), 0..25),
        leader_i in 0usize..4,
        follower_i in 0usize..4,
        client_i in 0usize..4,
        add in 0u8..5,
        remove in 0u8..5,
    ) {
        prop_assume!(leader_i != follower_i && add != remove);
        let states = replica_states(ValueKind::Set, 4, &steps);
        let seen = states[client_i].as_ref().map(Record::context).unwrap_or_default();
        let op = Op::SetUpdate { add: vec![vec![add]], remove: vec![vec![remove]], context: Some(seen.clone()), ttl_ms: None };
        let WritePlan::ApplyAtLeaderThenReplicate { follower_op: Some(fop) } =
            WritePlan::for_op(ValueKind::Set, &op).expect("fits") else { panic!("hybrid plan") };
        let l = apply(states[leader_i].clone(), ValueKind::Set, &op, &ctx(node(leader_i), 100));
        let fc = ctx(node(follower_i), 101);
        let mut merged_first = states[follower_i].clone().unwrap_or_else(|| Record::empty(ValueKind::Set));
        merged_first.merge(&l).expect("set");
        let a = apply(Some(merged_first), ValueKind::Set, &fop, &fc);
        let mut b = apply(states[follower_i].clone(), ValueKind::Set, &fop, &fc);
        b.merge(&l).expect("set");
        prop_assert_eq!(a.as_set(), b.as_set());
        prop_assert!(includes(&a, &l));
        // Full exchange of everyone (the others did not get the write).
        let mut everyone: Vec<Record> = states.iter().flatten().cloned().collect();
        everyone.push(l.clone());
        everyone.push(a.clone());
        let all = merged(&everyone);
        let set = all.as_set().expect("set");
        let held_by = |r: &Record| r.as_set().and_then(|s| s.entries().get(&vec![remove]).cloned()).unwrap_or_default();
        let observed_held: Vec<_> = [&states[leader_i], &states[follower_i]]
            .iter()
            .filter_map(|s| s.as_ref())
            .flat_map(held_by)
            .filter(|d| seen.contains(d))
            .collect();
        if let Some(dots) = set.entries().get(&vec![remove]) {
            for d in &observed_held {
                prop_assert!(!dots.contains(d), "observed dot {:?} held by leader/follower survived", d);
            }
        }
        prop_assert!(set.contains(&[add]), "the add is there");
    }
}
