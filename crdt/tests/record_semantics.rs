//! Record-level behaviour: kind checks, TTL rules, deletes and resets, limits, garbage
//! collection. Regression tests are named after the surprise they catch.

use meridian_crdt::{CausalContext, CrdtError, Hlc, Limits, NodeId, Op, OpContext, ReadValue, Record, ValueKind};

const T0: u64 = 1_700_000_000_000;

fn at(node: u64, ms: u64) -> OpContext {
    OpContext { actor: NodeId(node), ts: Hlc::from_physical_ms(ms, NodeId(node)), now_ms: ms }
}

fn apply(r: Option<&Record>, kind: ValueKind, op: Op, c: OpContext) -> Record {
    Record::apply(r.cloned(), kind, &op, &c, &Limits::default()).expect("valid op")
}

fn try_apply(r: Option<&Record>, kind: ValueKind, op: Op, c: OpContext) -> Result<Record, CrdtError> {
    Record::apply(r.cloned(), kind, &op, &c, &Limits::default())
}

fn merged(a: &Record, b: &Record) -> Record {
    let mut m = a.clone();
    m.merge(b).expect("same kind");
    m
}

fn put(v: &str, ttl_ms: Option<u64>) -> Op {
    Op::LwwPut { value: v.as_bytes().to_vec(), ttl_ms }
}

fn mvr_put(v: Option<&str>, context: CausalContext, ttl_ms: Option<u64>) -> Op {
    Op::MvrPut { value: v.map(|v| v.as_bytes().to_vec()), context, ttl_ms }
}

fn add(delta: i64, ttl_ms: Option<u64>) -> Op {
    Op::CounterAdd { delta, ttl_ms }
}

fn set_op(add: &[&str], remove: &[&str], context: Option<CausalContext>, ttl_ms: Option<u64>) -> Op {
    Op::SetUpdate {
        add: add.iter().map(|e| e.as_bytes().to_vec()).collect(),
        remove: remove.iter().map(|e| e.as_bytes().to_vec()).collect(),
        context,
        ttl_ms,
    }
}

fn members(r: &Record, now: u64) -> Vec<String> {
    match r.read(now) {
        ReadValue::Set { members, .. } => members.into_iter().map(|m| String::from_utf8(m).expect("utf8")).collect(),
        ReadValue::Absent => vec![],
        other => panic!("not a set read: {other:?}"),
    }
}

fn siblings(r: &Record, now: u64) -> Vec<String> {
    match r.read(now) {
        ReadValue::Mvr { siblings, .. } => siblings.into_iter().map(|m| String::from_utf8(m).expect("utf8")).collect(),
        ReadValue::Absent => vec![],
        other => panic!("not an mvr read: {other:?}"),
    }
}

// ---- kinds and malformed ops -------------------------------------------------------------

#[test]
fn op_of_another_kind_is_a_kind_mismatch() {
    let err = try_apply(None, ValueKind::Lww, add(1, None), at(1, T0)).expect_err("mismatch");
    assert_eq!(err, CrdtError::KindMismatch { expected: ValueKind::Lww, found: ValueKind::Counter });
    assert_eq!(err.code(), "kind_mismatch");
}

#[test]
fn stored_record_of_another_kind_is_a_kind_mismatch() {
    let c = apply(None, ValueKind::Counter, add(1, None), at(1, T0));
    let err = try_apply(Some(&c), ValueKind::Set, Op::Reset, at(1, T0 + 1)).expect_err("mismatch");
    assert_eq!(err, CrdtError::KindMismatch { expected: ValueKind::Set, found: ValueKind::Counter });
}

#[test]
fn zero_ttl_is_rejected_rather_than_writing_an_already_expired_value() {
    let err = try_apply(None, ValueKind::Lww, put("v", Some(0)), at(1, T0)).expect_err("invalid");
    assert_eq!(err.code(), "invalid_op");
}

#[test]
fn counter_overflow_is_an_invalid_op_not_a_panic() {
    let c = apply(None, ValueKind::Counter, add(i64::MAX, None), at(1, T0));
    let c = apply(Some(&c), ValueKind::Counter, add(i64::MAX, None), at(1, T0 + 1));
    let err = try_apply(Some(&c), ValueKind::Counter, add(2, None), at(1, T0 + 2)).expect_err("overflow");
    assert_eq!(err.code(), "invalid_op");
    assert_eq!(c.read(T0), ReadValue::Counter(i64::MAX), "value saturates");
}

#[test]
fn set_update_adding_and_removing_one_element_is_rejected() {
    let err = try_apply(None, ValueKind::Set, set_op(&["x"], &["x"], None, None), at(1, T0)).expect_err("invalid");
    assert_eq!(err.code(), "invalid_op");
}

#[test]
fn value_kind_names_round_trip() {
    for k in ValueKind::ALL {
        assert_eq!(k.to_string().parse::<ValueKind>(), Ok(k));
        assert_eq!(serde_json::to_string(&k).expect("json"), format!("\"{k}\""));
    }
    assert_eq!("LWW".parse::<ValueKind>().map_err(|e| e.code()), Err("unknown_kind"));
    assert_eq!(ValueKind::default(), ValueKind::Lww);
}

#[test]
fn ops_serialize_for_hints_and_logs() {
    let op = set_op(&["a"], &["b"], Some(CausalContext::new()), Some(5));
    let json = serde_json::to_string(&op).expect("json");
    assert_eq!(serde_json::from_str::<Op>(&json).expect("parse"), op);
}

// ---- LWW ---------------------------------------------------------------------------------

#[test]
fn lww_delete_is_a_timestamped_tombstone_that_older_puts_cannot_undo() {
    let r = apply(None, ValueKind::Lww, put("v", None), at(1, T0));
    let r = apply(Some(&r), ValueKind::Lww, Op::LwwDelete, at(1, T0 + 10));
    assert!(r.read(T0 + 10).is_absent());
    let stale_put = apply(None, ValueKind::Lww, put("old", None), at(2, T0 + 5));
    assert!(merged(&r, &stale_put).read(T0 + 20).is_absent());
    assert!(merged(&stale_put, &r).read(T0 + 20).is_absent());
    assert_eq!(r.last_modified(), Hlc::from_physical_ms(T0 + 10, NodeId(1)));
}

#[test]
fn lww_put_older_than_the_current_value_loses_its_ttl_too() {
    let r = apply(None, ValueKind::Lww, put("new", None), at(1, T0 + 10));
    // A write with an older HLC arrives at the same replica (e.g. through a coordinator with a
    // lagging clock): it loses, and must not make the winner expire.
    let r = apply(Some(&r), ValueKind::Lww, put("old", Some(1)), at(2, T0 + 5));
    assert!(matches!(r.read(T0 + 100), ReadValue::Lww { value, .. } if value == b"new"));
    assert_eq!(r.expires_at_ms(), None);
}

#[test]
fn expired_lww_does_not_come_back_when_a_stale_replica_merges_in() {
    let old = apply(None, ValueKind::Lww, put("v1", None), at(1, T0));
    let fresh = apply(Some(&old), ValueKind::Lww, put("v2", Some(100)), at(2, T0 + 10));
    let later = T0 + 1_000;
    assert!(fresh.read(later).is_absent());
    assert!(merged(&fresh, &old).read(later).is_absent());
    assert!(merged(&old, &fresh).read(later).is_absent());
}

#[test]
fn lww_put_after_expiry_writes_a_fresh_value() {
    let r = apply(None, ValueKind::Lww, put("v1", Some(100)), at(1, T0));
    let r = apply(Some(&r), ValueKind::Lww, put("v2", None), at(1, T0 + 500));
    assert!(matches!(r.read(T0 + 10_000), ReadValue::Lww { value, .. } if value == b"v2"));
}

#[test]
fn reset_on_lww_is_a_delete() {
    let r = apply(None, ValueKind::Lww, put("v", Some(1_000)), at(1, T0));
    let r = apply(Some(&r), ValueKind::Lww, Op::Reset, at(1, T0 + 1));
    assert!(r.read(T0 + 1).is_absent());
    assert_eq!(r.expires_at_ms(), None);
}

// ---- MVR ---------------------------------------------------------------------------------

#[test]
fn mvr_delete_reads_absent_but_still_hands_out_a_usable_context() {
    let r = apply(None, ValueKind::Mvr, mvr_put(Some("a"), CausalContext::new(), None), at(1, T0));
    let r = apply(Some(&r), ValueKind::Mvr, mvr_put(None, r.context(), None), at(1, T0 + 1));
    assert!(r.read(T0 + 1).is_absent());
    assert!(!r.context().is_empty());
    let r = apply(Some(&r), ValueKind::Mvr, mvr_put(Some("b"), r.context(), None), at(1, T0 + 2));
    assert_eq!(siblings(&r, T0 + 2), ["b"]);
    assert_eq!(r.as_mvr().expect("mvr").siblings().len(), 1, "the delete marker was superseded");
}

#[test]
fn mvr_sibling_cap_applies_to_client_writes_never_to_merges() {
    let limits = Limits { max_siblings: 2, ..Limits::default() };
    let w = |node, v: &str| {
        Record::apply(None, ValueKind::Mvr, &mvr_put(Some(v), CausalContext::new(), None), &at(node, T0), &limits)
            .expect("under cap")
    };
    let mut r = w(1, "a");
    for (n, v) in [(2, "b"), (3, "c")] {
        r.merge(&w(n, v)).expect("merge never enforces the cap");
    }
    assert_eq!(siblings(&r, T0), ["a", "b", "c"]);
    let err = Record::apply(
        Some(r.clone()),
        ValueKind::Mvr,
        &mvr_put(Some("d"), CausalContext::new(), None),
        &at(1, T0 + 1),
        &limits,
    )
    .expect_err("cap");
    assert_eq!(err, CrdtError::TooManySiblings { count: 4, max: 2 });
    // Writing with the read context resolves it.
    let r =
        Record::apply(Some(r.clone()), ValueKind::Mvr, &mvr_put(Some("d"), r.context(), None), &at(1, T0 + 1), &limits)
            .expect("resolves");
    assert_eq!(siblings(&r, T0 + 1), ["d"]);
}

#[test]
fn expired_mvr_write_does_not_keep_the_expired_siblings() {
    let a = apply(None, ValueKind::Mvr, mvr_put(Some("a"), CausalContext::new(), Some(100)), at(1, T0));
    // A blind write after expiry: without the reset rule "a" would be a live sibling again.
    let b = apply(Some(&a), ValueKind::Mvr, mvr_put(Some("b"), CausalContext::new(), None), at(1, T0 + 200));
    assert_eq!(siblings(&b, T0 + 200), ["b"]);
    // And a stale replica still holding "a" (with its expiry) cannot bring it back.
    assert_eq!(siblings(&merged(&b, &a), T0 + 300), ["b"]);
    assert_eq!(siblings(&merged(&a, &b), T0 + 300), ["b"]);
}

#[test]
fn mvr_write_after_gc_is_not_swallowed_by_a_stale_copy() {
    // The surprise with plain "next counter" dots: replica 1 deletes, everyone collects the
    // tombstone but replica 2, replica 1 writes again starting from an empty state, and the
    // stale copy's context already covers the new dot, so the write silently vanishes.
    let r = apply(None, ValueKind::Mvr, mvr_put(Some("a"), CausalContext::new(), None), at(1, T0));
    let stale = apply(Some(&r), ValueKind::Mvr, mvr_put(None, r.context(), None), at(1, T0 + 1));
    assert!(stale.is_garbage(T0 + 10, Hlc::from_physical_ms(T0 + 5, NodeId(0))));
    let reborn = apply(None, ValueKind::Mvr, mvr_put(Some("again"), CausalContext::new(), None), at(1, T0 + 100));
    assert_eq!(siblings(&merged(&stale, &reborn), T0 + 100), ["again"]);
    assert_eq!(siblings(&merged(&reborn, &stale), T0 + 100), ["again"]);
}

#[test]
fn mvr_reset_deletes_everything_the_replica_holds() {
    let a = apply(None, ValueKind::Mvr, mvr_put(Some("a"), CausalContext::new(), None), at(1, T0));
    let b = apply(None, ValueKind::Mvr, mvr_put(Some("b"), CausalContext::new(), None), at(2, T0));
    let ab = merged(&a, &b);
    let gone = apply(Some(&ab), ValueKind::Mvr, Op::Reset, at(1, T0 + 1));
    assert!(gone.read(T0 + 1).is_absent());
    assert!(merged(&gone, &b).read(T0 + 1).is_absent());
}

// ---- counter -----------------------------------------------------------------------------

#[test]
fn counter_at_zero_is_live_until_reset() {
    let c = apply(None, ValueKind::Counter, add(1, None), at(1, T0));
    let c = apply(Some(&c), ValueKind::Counter, add(-1, None), at(1, T0 + 1));
    assert_eq!(c.read(T0 + 1), ReadValue::Counter(0));
    let c = apply(Some(&c), ValueKind::Counter, Op::Reset, at(1, T0 + 2));
    assert!(c.read(T0 + 2).is_absent());
    let c = apply(Some(&c), ValueKind::Counter, add(4, None), at(1, T0 + 3));
    assert_eq!(c.read(T0 + 3), ReadValue::Counter(4));
}

#[test]
fn expired_counter_increment_starts_from_zero_not_from_the_dead_value() {
    let c = apply(None, ValueKind::Counter, add(10, Some(100)), at(1, T0));
    assert!(c.read(T0 + 100).is_absent());
    let c2 = apply(Some(&c), ValueKind::Counter, add(1, None), at(1, T0 + 200));
    assert_eq!(c2.read(T0 + 200), ReadValue::Counter(1));
    assert_eq!(c2.expires_at_ms(), None, "the expiry was cleared");
    // The stale expired copy merging back changes nothing.
    assert_eq!(merged(&c2, &c).read(T0 + 300), ReadValue::Counter(1));
    assert_eq!(merged(&c, &c2).read(T0 + 300), ReadValue::Counter(1));
}

#[test]
fn counter_op_without_ttl_keeps_the_existing_ttl() {
    let c = apply(None, ValueKind::Counter, add(1, Some(1_000)), at(1, T0));
    let c = apply(Some(&c), ValueKind::Counter, add(1, None), at(1, T0 + 10));
    assert_eq!(c.expires_at_ms(), Some(T0 + 1_000));
    let c = apply(Some(&c), ValueKind::Counter, add(1, Some(50)), at(1, T0 + 20));
    assert_eq!(c.expires_at_ms(), Some(T0 + 70));
}

#[test]
fn expiry_is_cleared_even_when_the_writers_hlc_lags_the_ttl_setter() {
    // Node 2's clock is far behind node 1's, and it applies an increment to a counter whose
    // TTL node 1 set "in its future". The increment must not land in a dead record.
    let c = apply(None, ValueKind::Counter, add(10, Some(100)), at(1, T0 + 10_000));
    let lagging = OpContext { actor: NodeId(2), ts: Hlc::from_physical_ms(T0, NodeId(2)), now_ms: T0 + 20_000 };
    let c2 = apply(Some(&c), ValueKind::Counter, add(1, None), lagging);
    assert_eq!(c2.read(T0 + 20_000), ReadValue::Counter(1));
    assert!(c2.expiry().ts() > c.expiry().ts());
    assert!(c2.last_modified() >= c2.expiry().ts());
    assert_eq!(merged(&c, &c2).read(T0 + 20_000), ReadValue::Counter(1));
}

#[test]
fn concurrent_increment_survives_a_reset_that_did_not_see_it() {
    let base = apply(None, ValueKind::Counter, add(5, None), at(1, T0));
    let reset = apply(Some(&base), ValueKind::Counter, Op::Reset, at(1, T0 + 1));
    let concurrent = apply(Some(&base), ValueKind::Counter, add(3, None), at(2, T0 + 1));
    assert_eq!(merged(&reset, &concurrent).read(T0 + 2), ReadValue::Counter(3));
}

#[test]
fn counter_increment_after_gc_is_not_swallowed_by_a_stale_copy() {
    let c = apply(None, ValueKind::Counter, add(100, None), at(1, T0));
    let stale = apply(Some(&c), ValueKind::Counter, Op::Reset, at(1, T0 + 1));
    let reborn = apply(None, ValueKind::Counter, add(5, None), at(1, T0 + 100));
    assert_eq!(merged(&stale, &reborn).read(T0 + 100), ReadValue::Counter(5));
}

// ---- set ---------------------------------------------------------------------------------

#[test]
fn set_remove_without_context_removes_everything_the_replica_observed() {
    let a = apply(None, ValueKind::Set, set_op(&["x"], &[], None, None), at(1, T0));
    let b = apply(None, ValueKind::Set, set_op(&["x"], &[], None, None), at(2, T0));
    let ab = merged(&a, &b);
    let removed = apply(Some(&ab), ValueKind::Set, set_op(&[], &["x"], None, None), at(1, T0 + 1));
    assert!(removed.read(T0 + 1).is_absent(), "an emptied set reads as absent");
    assert!(merged(&removed, &b).read(T0 + 1).is_absent(), "both observed adds are gone");
    // A concurrent add that the remove did not observe survives.
    let c = apply(None, ValueKind::Set, set_op(&["x"], &[], None, None), at(3, T0 + 1));
    assert_eq!(members(&merged(&removed, &c), T0 + 2), ["x"]);
}

#[test]
fn expired_set_add_does_not_bring_back_expired_members() {
    let s = apply(None, ValueKind::Set, set_op(&["old"], &[], None, Some(100)), at(1, T0));
    let s2 = apply(Some(&s), ValueKind::Set, set_op(&["new"], &[], None, None), at(1, T0 + 200));
    assert_eq!(members(&s2, T0 + 200), ["new"]);
    assert_eq!(members(&merged(&s2, &s), T0 + 200), ["new"]);
    assert_eq!(members(&merged(&s, &s2), T0 + 200), ["new"]);
}

#[test]
fn set_reset_keeps_the_context_so_old_adds_stay_removed() {
    let s = apply(None, ValueKind::Set, set_op(&["a", "b"], &[], None, None), at(1, T0));
    let gone = apply(Some(&s), ValueKind::Set, Op::Reset, at(2, T0 + 1));
    assert!(gone.read(T0 + 1).is_absent());
    assert!(merged(&gone, &s).read(T0 + 1).is_absent());
    assert_eq!(gone.context(), s.context());
}

// ---- metadata ----------------------------------------------------------------------------

#[test]
fn last_modified_is_the_max_over_ops_and_merges() {
    let a = apply(None, ValueKind::Counter, add(1, None), at(1, T0 + 50));
    let b = apply(None, ValueKind::Counter, add(1, None), at(2, T0 + 10));
    assert_eq!(merged(&a, &b).last_modified(), a.last_modified());
    assert_eq!(merged(&b, &a).last_modified(), a.last_modified());
    // A losing LWW write still counts as folded in.
    let r = apply(None, ValueKind::Lww, put("x", None), at(1, T0 + 50));
    let r2 = apply(Some(&r), ValueKind::Lww, put("y", None), at(2, T0 + 10));
    assert_eq!(r2.last_modified(), r.last_modified());
}

#[test]
fn garbage_means_absent_and_older_than_the_horizon() {
    let horizon = Hlc::from_physical_ms(T0 + 100, NodeId(0));
    let live = apply(None, ValueKind::Lww, put("v", None), at(1, T0));
    assert!(!live.is_garbage(T0 + 200, horizon));
    let deleted = apply(Some(&live), ValueKind::Lww, Op::LwwDelete, at(1, T0 + 1));
    assert!(deleted.is_garbage(T0 + 200, horizon));
    let recent = apply(Some(&live), ValueKind::Lww, Op::LwwDelete, at(1, T0 + 150));
    assert!(!recent.is_garbage(T0 + 200, horizon));
    let expiring = apply(None, ValueKind::Lww, put("v", Some(10)), at(1, T0));
    assert!(!expiring.is_garbage(T0 + 5, horizon));
    assert!(expiring.is_garbage(T0 + 10, horizon));
    assert!(Record::empty(ValueKind::Set).is_garbage(T0, horizon));
}

#[test]
fn merge_reports_whether_anything_changed() {
    let a = apply(None, ValueKind::Set, set_op(&["x"], &[], None, None), at(1, T0));
    let mut m = a.clone();
    assert!(!m.merge(&a).expect("same kind"));
    let b = apply(None, ValueKind::Set, set_op(&["y"], &[], None, None), at(2, T0));
    assert!(m.merge(&b).expect("same kind"));
    assert!(!m.merge(&b).expect("same kind"));
}
