//! Codec properties: reachable records of every kind round-trip; decoding arbitrary bytes,
//! truncations and bit flips of valid encodings never panics, and anything accepted is
//! canonical (re-encodes to the same bytes).

mod common;

use common::*;
use meridian_crdt::{CrdtError, Record, ValueKind};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = Record> {
    any_kind().prop_flat_map(|k| three_states(k, true)).prop_map(|(a, b, _)| merged(&a, &b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn record_codec_round_trips(r in record()) {
        let bytes = r.encode();
        prop_assert_eq!(bytes[0], 1, "version byte");
        let back = Record::decode(&bytes).expect("valid encoding");
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.encode(), bytes);
        // The context a read hands out survives its own codec too.
        let ctx = r.context();
        prop_assert_eq!(meridian_crdt::CausalContext::decode(&ctx.encode()), Ok(ctx));
    }

    #[test]
    fn decode_of_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes);
        }
    }

    #[test]
    fn decode_of_damaged_encodings_never_panics(r in record(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = r.encode();
        // Every strict prefix is an error.
        let n = cut.index(bytes.len());
        prop_assert!(Record::decode(&bytes[..n]).is_err());
        // A bit flip is an error or another canonical record.
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        if let Ok(other) = Record::decode(&flipped) {
            prop_assert_eq!(other.encode(), flipped);
        }
        // Trailing garbage is an error.
        let mut longer = bytes;
        longer.push(0);
        prop_assert!(Record::decode(&longer).is_err());
    }
}

#[test]
fn unknown_version_is_reported_as_such() {
    let mut bytes = Record::empty(ValueKind::Lww).encode();
    bytes[0] = 2;
    assert_eq!(Record::decode(&bytes), Err(CrdtError::UnsupportedVersion(2)));
    assert_eq!(Record::decode(&[0]), Err(CrdtError::UnsupportedVersion(0)));
    assert!(matches!(Record::decode(&[]), Err(CrdtError::Decode(_))));
}

#[test]
fn huge_declared_length_fails_fast_without_allocating_it() {
    // Version 1, variant Mvr (1), then a sibling count of 2^63 and no data.
    let mut bytes = vec![1u8, 1];
    bytes.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(Record::decode(&bytes), Err(CrdtError::Decode(_))));
    // Same for a set element of declared length 2^63.
    let mut bytes = vec![1u8, 3, 1];
    bytes.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(Record::decode(&bytes), Err(CrdtError::Decode(_))));
}

/// Regression (CI, seed cc 6997c5a6): postcard reads `[0x80, 0x00]` as the varint 0, so a bit
/// flip produced a second, longer encoding of a valid record. The decoder must refuse it.
#[test]
fn overlong_varint_is_rejected() {
    let bytes = Record::empty(ValueKind::Counter).encode();
    assert_eq!(&bytes[..3], &[1, 2, 0], "version 1, variant Counter, zero entries");
    assert!(Record::decode(&bytes).is_ok());
    let mut overlong = vec![1, 2, 0x80, 0x00];
    overlong.extend_from_slice(&bytes[3..]);
    assert!(matches!(Record::decode(&overlong), Err(CrdtError::Decode(m)) if m.contains("non-canonical")));
    // The same for a causal context: one entry (actor 1, counter 1), count written overlong.
    let ctx = meridian_crdt::CausalContext::decode(&[1, 1, 1, 1]).expect("canonical context");
    assert_eq!(ctx.encode(), vec![1, 1, 1, 1]);
    assert!(meridian_crdt::CausalContext::decode(&[1, 0x81, 0x00, 1, 1]).is_err());
}
