//! Golden vectors: one record of each kind (each with an expiry) and one causal context,
//! encoded byte for byte. Changing these files means changing the on-disk and wire format:
//! add a new version instead (see `src/codec.rs`), and keep decoding these.

use meridian_crdt::{CausalContext, Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};

const T0: u64 = 1_700_000_000_000;

fn ctx(node: u64, ms: u64) -> OpContext {
    OpContext { actor: NodeId(node), ts: Hlc::from_physical_ms(ms, NodeId(node)), now_ms: ms }
}

fn apply(r: Option<Record>, kind: ValueKind, op: Op, c: OpContext) -> Record {
    Record::apply(r, kind, &op, &c, &Limits::default()).expect("valid op")
}

fn merged(mut a: Record, b: &Record) -> Record {
    a.merge(b).expect("same kind");
    a
}

/// `lww`: "hello" written by node 1 with a 60 s TTL.
fn lww() -> Record {
    let op = Op::LwwPut { value: b"hello".to_vec(), ttl_ms: Some(60_000) };
    apply(None, ValueKind::Lww, op, ctx(1, T0))
}

/// `mvr`: concurrent writes "a" (node 1, 10 s TTL) and "b" (node 2) merged, then a delete at
/// node 3 that observed only "a" — two siblings: "b" and a delete marker.
fn mvr() -> Record {
    let a = apply(
        None,
        ValueKind::Mvr,
        Op::MvrPut { value: Some(b"a".to_vec()), context: CausalContext::new(), ttl_ms: Some(10_000) },
        ctx(1, T0),
    );
    let b = apply(
        None,
        ValueKind::Mvr,
        Op::MvrPut { value: Some(b"b".to_vec()), context: CausalContext::new(), ttl_ms: None },
        ctx(2, T0 + 1),
    );
    let del = apply(
        None,
        ValueKind::Mvr,
        Op::MvrPut { value: None, context: a.context(), ttl_ms: Some(5_000) },
        ctx(3, T0 + 2),
    );
    merged(merged(a, &b), &del)
}

/// `counter`: +5 at node 1, -2 at node 2, merged and reset at node 1, then +3 at node 1 with a
/// 30 s TTL.
fn counter() -> Record {
    let add = |delta, ttl_ms| Op::CounterAdd { delta, ttl_ms };
    let a = apply(None, ValueKind::Counter, add(5, None), ctx(1, T0));
    let b = apply(None, ValueKind::Counter, add(-2, None), ctx(2, T0 + 1));
    let a = merged(a, &b);
    let a = apply(Some(a), ValueKind::Counter, Op::Reset, ctx(1, T0 + 2));
    apply(Some(a), ValueKind::Counter, add(3, Some(30_000)), ctx(1, T0 + 3))
}

/// `set`: node 1 adds "x" and "y"; node 2, having seen that, removes "x" and adds "z" with a
/// 20 s TTL.
fn set() -> Record {
    let a = apply(
        None,
        ValueKind::Set,
        Op::SetUpdate { add: vec![b"x".to_vec(), b"y".to_vec()], remove: vec![], context: None, ttl_ms: None },
        ctx(1, T0),
    );
    let seen = a.context();
    apply(
        Some(a),
        ValueKind::Set,
        Op::SetUpdate {
            add: vec![b"z".to_vec()],
            remove: vec![b"x".to_vec()],
            context: Some(seen),
            ttl_ms: Some(20_000),
        },
        ctx(2, T0 + 1),
    )
}

fn golden(name: &str, text: &str) -> Vec<u8> {
    let hex: String = text.split_whitespace().collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"))
}

fn check(name: &str, text: &str, built: &Record) {
    let want = golden(name, text);
    let got = built.encode();
    assert_eq!(
        hex::encode(&got),
        hex::encode(&want),
        "{name}: encoding drifted; if intended, this is a new format version"
    );
    assert_eq!(&Record::decode(&want).expect("golden decodes"), built, "{name}: decoding drifted");
}

#[test]
fn golden_lww() {
    check("lww", include_str!("golden/lww.hex"), &lww());
}

#[test]
fn golden_mvr() {
    check("mvr", include_str!("golden/mvr.hex"), &mvr());
}

#[test]
fn golden_counter() {
    check("counter", include_str!("golden/counter.hex"), &counter());
}

#[test]
fn golden_set() {
    check("set", include_str!("golden/set.hex"), &set());
}

#[test]
fn golden_context() {
    let c = mvr().context();
    let want = golden("context", include_str!("golden/context.hex"));
    assert_eq!(hex::encode(c.encode()), hex::encode(&want), "context encoding drifted");
    assert_eq!(CausalContext::decode(&want), Ok(c));
}

#[test]
fn golden_records_read_as_documented() {
    use meridian_crdt::ReadValue;
    assert_eq!(lww().read(T0), ReadValue::Lww { value: b"hello".to_vec(), ts: Hlc::from_physical_ms(T0, NodeId(1)) });
    assert!(lww().read(T0 + 60_000).is_absent());
    match mvr().read(T0 + 3) {
        ReadValue::Mvr { siblings, .. } => assert_eq!(siblings, vec![b"b".to_vec()]),
        other => panic!("unexpected {other:?}"),
    }
    // The delete's 5 s TTL is the newest expiry setting.
    assert!(mvr().read(T0 + 2 + 5_000).is_absent());
    assert_eq!(counter().read(T0 + 4), ReadValue::Counter(3));
    match set().read(T0 + 2) {
        ReadValue::Set { members, .. } => assert_eq!(members, vec![b"y".to_vec(), b"z".to_vec()]),
        other => panic!("unexpected {other:?}"),
    }
}
