//! Version-vector laws: inclusion is a partial order (reflexive, antisymmetric, transitive),
//! join is the least upper bound (commutative, associative, idempotent), and the context codec
//! round-trips and is canonical.

use meridian_crdt::{CausalContext, Dot, NodeId};
use proptest::prelude::*;

fn context() -> impl Strategy<Value = CausalContext> {
    proptest::collection::btree_map(1u64..5, 1u64..6, 0..4)
        .prop_map(|m| m.into_iter().map(|(a, c)| Dot::new(NodeId(a), c)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn inclusion_is_a_partial_order(a in context(), b in context(), c in context()) {
        prop_assert!(a.le(&a));
        if a.le(&b) && b.le(&a) {
            prop_assert_eq!(&a, &b);
        }
        if a.le(&b) && b.le(&c) {
            prop_assert!(a.le(&c));
        }
        // PartialOrd agrees with le.
        prop_assert_eq!(a <= b, a.le(&b));
        prop_assert_eq!(a.concurrent(&b), a.partial_cmp(&b).is_none());
    }

    #[test]
    fn join_is_the_least_upper_bound(a in context(), b in context(), c in context()) {
        let j = a.joined(&b);
        prop_assert!(a.le(&j) && b.le(&j));
        if a.le(&c) && b.le(&c) {
            prop_assert!(j.le(&c));
        }
        prop_assert_eq!(&j, &b.joined(&a));
        prop_assert_eq!(a.joined(&b).joined(&c), a.joined(&b.joined(&c)));
        prop_assert_eq!(&a.joined(&a), &a);
        // Coverage of a dot in the join is coverage in either side.
        for actor in 1..5u64 {
            for counter in 1..7u64 {
                let d = Dot::new(NodeId(actor), counter);
                prop_assert_eq!(j.contains(&d), a.contains(&d) || b.contains(&d));
            }
        }
    }

    #[test]
    fn context_codec_round_trips_canonically(a in context(), b in context()) {
        let bytes = a.encode();
        prop_assert_eq!(bytes[0], 1);
        prop_assert_eq!(CausalContext::decode(&bytes), Ok(a.clone()));
        prop_assert_eq!(a == b, bytes == b.encode());
    }

    #[test]
    fn context_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(c) = CausalContext::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes);
        }
    }
}

#[test]
fn context_decode_rejects_non_canonical_forms() {
    // [version 1][len 2][(2,1)][(1,1)]: unsorted actors.
    assert_eq!(CausalContext::decode(&[1, 2, 2, 1, 1, 1]).map_err(|e| e.code()), Err("decode_error"));
    // Zero counter.
    assert_eq!(CausalContext::decode(&[1, 1, 1, 0]).map_err(|e| e.code()), Err("decode_error"));
    // Trailing byte.
    assert_eq!(CausalContext::decode(&[1, 0, 0]).map_err(|e| e.code()), Err("decode_error"));
    // Unknown version.
    assert_eq!(CausalContext::decode(&[2, 0]).map_err(|e| e.code()), Err("unsupported_version"));
    assert_eq!(CausalContext::decode(&[]).map_err(|e| e.code()), Err("decode_error"));
    assert_eq!(CausalContext::decode(&[1, 0]), Ok(CausalContext::new()));
}

#[test]
fn context_serde_json_is_pairs_and_lenient_on_input() {
    let c: CausalContext = [Dot::new(NodeId(1), 3), Dot::new(NodeId(7), 2)].into_iter().collect();
    let json = serde_json::to_string(&c).expect("serialize");
    assert_eq!(json, "[[1,3],[7,2]]");
    assert_eq!(serde_json::from_str::<CausalContext>(&json).expect("parse"), c);
    // Unsorted, repeated and zero entries are normalised rather than kept.
    let messy: CausalContext = serde_json::from_str("[[7,2],[1,1],[1,3],[9,0]]").expect("parse");
    assert_eq!(messy, c);
    assert_eq!(messy.encode(), c.encode());
}
