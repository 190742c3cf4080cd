//! Versioned, canonical binary encodings of [`Record`] and [`CausalContext`].
//!
//! Layout: one version byte, then postcard of that version's private wire struct. Version 1 is
//! the only one so far; a new version adds a `RecordV2` and a match arm, and keeps decoding V1
//! (mixed-version regions during a rolling upgrade). The wire structs are separate from the
//! in-memory types so refactoring those cannot change the bytes; the golden vectors in
//! `tests/golden.rs` pin the format.
//!
//! Canonical form: maps are written as sequences sorted by key with no duplicates, version
//! vectors have no zero entries, varints are shortest-form. Decoding rejects anything else (and
//! trailing bytes), so every accepted input re-encodes to the same bytes and equal states always
//! hash alike. Postcard itself accepts overlong varints (`[0x80, 0x00]` reads as 0), so after
//! the structural checks the decoder counts the bytes a re-serialization would write (a
//! counting flavor: no allocation, no copy) and requires the input to be exactly that long
//! (see `require_canonical` for why the length suffices).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};

use crate::causal::{CausalContext, Dot};
use crate::counter::{CounterEntry, PnCounter, Slot};
use crate::error::CrdtError;
use crate::expiry::Expiry;
use crate::hlc::{Hlc, NodeId};
use crate::lww::LwwRegister;
use crate::mvr::MvRegister;
use crate::record::{Record, Value};
use crate::set::AwSet;

/// The version byte [`Record::encode`] and [`CausalContext::encode`] write.
pub const CURRENT_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct HlcV1 {
    time: u64,
    node: u64,
}

#[derive(Serialize, Deserialize)]
struct DotV1 {
    actor: u64,
    counter: u64,
}

#[derive(Serialize, Deserialize)]
struct ExpiryV1 {
    ts: HlcV1,
    expire_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct CounterEntryV1 {
    actor: u64,
    epoch: u64,
    p: u64,
    n: u64,
    p_floor: u64,
    n_floor: u64,
}

/// Version vector: `(actor, counter)` pairs, actors strictly ascending, counters nonzero.
type ContextV1 = Vec<(u64, u64)>;

/// The value on the wire, generic over the byte-string type: `&Bytes` to encode without
/// copying, `ByteBuf` to decode. Both go through serde's bytes path, so postcard writes a
/// varint length and the raw bytes (the same bytes as a `Vec<u8>` sequence, memcpy'd instead
/// of visited one by one).
#[derive(Serialize, Deserialize)]
enum ValueV1<B> {
    Lww { ts: HlcV1, value: Option<B> },
    Mvr { siblings: Vec<(DotV1, Option<B>)>, context: ContextV1 },
    Counter { entries: Vec<CounterEntryV1> },
    Set { elements: Vec<(B, Vec<DotV1>)>, context: ContextV1 },
}

#[derive(Serialize, Deserialize)]
struct RecordV1<B> {
    value: ValueV1<B>,
    expiry: ExpiryV1,
    last_modified: HlcV1,
}

fn hlc_v1(h: Hlc) -> HlcV1 {
    HlcV1 { time: h.time_ntp64(), node: h.node().0 }
}

fn dot_v1(d: &Dot) -> DotV1 {
    DotV1 { actor: d.actor.0, counter: d.counter }
}

fn context_v1(c: &CausalContext) -> ContextV1 {
    c.iter().map(|(a, n)| (a.0, n)).collect()
}

fn to_wire(r: &Record) -> RecordV1<&Bytes> {
    let value = match &r.value {
        Value::Lww(reg) => ValueV1::Lww { ts: hlc_v1(reg.ts()), value: reg.value().map(Bytes::new) },
        Value::Mvr(m) => ValueV1::Mvr {
            siblings: m.siblings().iter().map(|(d, v)| (dot_v1(d), v.as_deref().map(Bytes::new))).collect(),
            context: context_v1(m.context()),
        },
        Value::Counter(c) => ValueV1::Counter {
            entries: c
                .entries()
                .iter()
                .map(|(s, e)| CounterEntryV1 {
                    actor: s.actor.0,
                    epoch: s.epoch,
                    p: e.p,
                    n: e.n,
                    p_floor: e.p_floor,
                    n_floor: e.n_floor,
                })
                .collect(),
        },
        Value::Set(s) => ValueV1::Set {
            elements: s.entries().iter().map(|(e, dots)| (Bytes::new(e), dots.iter().map(dot_v1).collect())).collect(),
            context: context_v1(s.context()),
        },
    };
    RecordV1 {
        value,
        expiry: ExpiryV1 { ts: hlc_v1(r.expiry.ts()), expire_at_ms: r.expiry.expire_at_ms() },
        last_modified: hlc_v1(r.last_modified),
    }
}

fn bad(msg: impl Into<String>) -> CrdtError {
    CrdtError::Decode(msg.into())
}

fn strictly_ascending<T: Ord>(items: impl IntoIterator<Item = T>, what: &str) -> Result<(), CrdtError> {
    let mut prev: Option<T> = None;
    for item in items {
        if prev.as_ref().is_some_and(|p| *p >= item) {
            return Err(bad(format!("{what} not strictly ascending")));
        }
        prev = Some(item);
    }
    Ok(())
}

fn hlc_from(h: HlcV1) -> Hlc {
    Hlc::new(h.time, NodeId(h.node))
}

fn context_from(c: ContextV1) -> Result<CausalContext, CrdtError> {
    strictly_ascending(c.iter().map(|(a, _)| *a), "context actors")?;
    if c.iter().any(|(_, n)| *n == 0) {
        return Err(bad("context entry with counter 0"));
    }
    Ok(CausalContext::from_canonical(c.into_iter().map(|(a, n)| (NodeId(a), n))))
}

fn dot_from(d: DotV1, context: &CausalContext) -> Result<Dot, CrdtError> {
    let dot = Dot::new(NodeId(d.actor), d.counter);
    if dot.counter == 0 || !context.contains(&dot) {
        return Err(bad("dot not covered by the context"));
    }
    Ok(dot)
}

fn from_wire(w: RecordV1<ByteBuf>) -> Result<Record, CrdtError> {
    let value = match w.value {
        ValueV1::Lww { ts, value } => Value::Lww(LwwRegister::new(hlc_from(ts), value.map(ByteBuf::into_vec))),
        ValueV1::Mvr { siblings, context } => {
            let context = context_from(context)?;
            strictly_ascending(siblings.iter().map(|(d, _)| (d.actor, d.counter)), "siblings")?;
            let mut map = BTreeMap::new();
            for (d, v) in siblings {
                map.insert(dot_from(d, &context)?, v.map(ByteBuf::into_vec));
            }
            Value::Mvr(MvRegister::from_parts(map, context))
        }
        ValueV1::Counter { entries } => {
            strictly_ascending(entries.iter().map(|e| (e.actor, e.epoch)), "counter slots")?;
            let mut map = BTreeMap::new();
            for e in entries {
                if e.p_floor > e.p || e.n_floor > e.n {
                    return Err(bad("counter floor above its count"));
                }
                if e.p == 0 && e.n == 0 {
                    return Err(bad("empty counter slot"));
                }
                map.insert(
                    Slot { actor: NodeId(e.actor), epoch: e.epoch },
                    CounterEntry { p: e.p, n: e.n, p_floor: e.p_floor, n_floor: e.n_floor },
                );
            }
            Value::Counter(PnCounter::from_entries(map))
        }
        ValueV1::Set { elements, context } => {
            let context = context_from(context)?;
            strictly_ascending(elements.iter().map(|(e, _)| e.as_slice()), "set elements")?;
            let mut map = BTreeMap::new();
            for (elem, dots) in elements {
                if dots.is_empty() {
                    return Err(bad("set element without dots"));
                }
                strictly_ascending(dots.iter().map(|d| (d.actor, d.counter)), "element dots")?;
                let dots =
                    dots.into_iter().map(|d| dot_from(d, &context)).collect::<Result<BTreeSet<Dot>, CrdtError>>()?;
                map.insert(elem.into_vec(), dots);
            }
            Value::Set(AwSet::from_parts(map, context))
        }
    };
    Ok(Record {
        value,
        expiry: Expiry::new(hlc_from(w.expiry.ts), w.expiry.expire_at_ms),
        last_modified: hlc_from(w.last_modified),
    })
}

fn versioned<T: Serialize>(body: &T) -> Vec<u8> {
    let mut out = vec![CURRENT_VERSION];
    // Writing into a Vec cannot fail, and every sequence in the wire structs has a known
    // length, which is all postcard's serializer can reject.
    out.extend(postcard::to_allocvec(body).expect("postcard serialization of wire structs is infallible"));
    out
}

/// A postcard output flavor that only counts the bytes a serialization would write.
struct CountBytes {
    len: usize,
}

impl postcard::ser_flavors::Flavor for CountBytes {
    type Output = usize;

    fn try_push(&mut self, _data: u8) -> postcard::Result<()> {
        self.len += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.len += data.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
}

/// Fails unless `body` (the input without its version byte) is the canonical serialization of
/// `wire`, the value decoded from it.
///
/// Comparing lengths is enough: the structural checks of the decoder already rejected every
/// other non-canonical form (unsorted or duplicate entries, zero counters, option and bool tags
/// other than 0 and 1), so the only freedom left is an overlong varint (`[0x80, 0x00]` for 0),
/// which makes the input strictly longer than the re-serialization of the same value. Equal
/// lengths therefore mean every varint is minimal and the bytes are identical.
fn require_canonical<T: Serialize>(wire: &T, body: &[u8]) -> Result<(), CrdtError> {
    let len = postcard::serialize_with_flavor(wire, CountBytes { len: 0 })
        .map_err(|e| bad(format!("re-serialization failed: {e}")))?;
    if len == body.len() {
        Ok(())
    } else {
        Err(bad("non-canonical encoding (overlong varint)"))
    }
}

/// Splits the version byte and postcard-decodes the body, requiring it to use every byte.
fn unversioned<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CrdtError> {
    let (&version, body) = bytes.split_first().ok_or_else(|| bad("empty input"))?;
    match version {
        1 => {
            let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| bad(e.to_string()))?;
            if !rest.is_empty() {
                return Err(bad(format!("{} trailing bytes", rest.len())));
            }
            Ok(value)
        }
        other => Err(CrdtError::UnsupportedVersion(other)),
    }
}

pub(crate) fn encode_record(r: &Record) -> Vec<u8> {
    versioned(&to_wire(r))
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record, CrdtError> {
    let record = from_wire(unversioned::<RecordV1<ByteBuf>>(bytes)?)?;
    require_canonical(&to_wire(&record), &bytes[1..])?;
    Ok(record)
}

pub(crate) fn encode_context(c: &CausalContext) -> Vec<u8> {
    versioned(&context_v1(c))
}

pub(crate) fn decode_context(bytes: &[u8]) -> Result<CausalContext, CrdtError> {
    let context = context_from(unversioned::<ContextV1>(bytes)?)?;
    require_canonical(&context_v1(&context), &bytes[1..])?;
    Ok(context)
}
