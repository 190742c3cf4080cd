//! One key's replicated state: a typed value, its expiry and its last-modified HLC.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::causal::CausalContext;
use crate::counter::PnCounter;
use crate::error::CrdtError;
use crate::expiry::Expiry;
use crate::hlc::{Hlc, NodeId};
use crate::lww::LwwRegister;
use crate::mvr::MvRegister;
use crate::set::AwSet;

/// The value type of a keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Last-writer-wins register (the default).
    #[default]
    Lww,
    /// Multi-value register.
    Mvr,
    /// PN-counter.
    Counter,
    /// Add-wins set of byte strings.
    Set,
}

impl ValueKind {
    /// Every kind, in declaration order.
    pub const ALL: [ValueKind; 4] = [ValueKind::Lww, ValueKind::Mvr, ValueKind::Counter, ValueKind::Set];

    /// The name used in configuration and the API: `lww`, `mvr`, `counter`, `set`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ValueKind::Lww => "lww",
            ValueKind::Mvr => "mvr",
            ValueKind::Counter => "counter",
            ValueKind::Set => "set",
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueKind {
    type Err = CrdtError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ValueKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| CrdtError::UnknownKind(s.to_owned()))
    }
}

/// Who applies an operation, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpContext {
    /// The replica applying the op; it names the op's dot / counter slot.
    pub actor: NodeId,
    /// That replica's HLC for this op (strictly greater than its earlier ones).
    pub ts: Hlc,
    /// Physical time in ms since the UNIX epoch, for TTL arithmetic and expiry checks.
    pub now_ms: u64,
}

/// An operation a replica applies to one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Write an LWW value; `ttl_ms` replaces the key's expiry (`None` clears it).
    LwwPut {
        /// The value.
        value: Vec<u8>,
        /// Time to live from `now_ms`.
        ttl_ms: Option<u64>,
    },
    /// Write an LWW tombstone; clears the expiry.
    LwwDelete,
    /// Write (`Some`) or delete (`None`) a multi-value register, superseding the siblings
    /// covered by `context` (from a read; empty for a blind write). `ttl_ms` replaces the
    /// expiry.
    MvrPut {
        /// The value, `None` to delete.
        value: Option<Vec<u8>>,
        /// What the client observed.
        context: CausalContext,
        /// Time to live from `now_ms`.
        ttl_ms: Option<u64>,
    },
    /// Add `delta` (may be negative) to a counter; `ttl_ms`, if given, replaces the expiry.
    CounterAdd {
        /// The amount.
        delta: i64,
        /// Time to live from `now_ms`.
        ttl_ms: Option<u64>,
    },
    /// Remove then add elements of a set. Removes drop what `context` (or, if `None`, the
    /// applying replica) observed; `ttl_ms`, if given, replaces the expiry.
    SetUpdate {
        /// Elements to add.
        add: Vec<Vec<u8>>,
        /// Elements to remove.
        remove: Vec<Vec<u8>>,
        /// What the client observed, for the removes.
        context: Option<CausalContext>,
        /// Time to live from `now_ms`.
        ttl_ms: Option<u64>,
    },
    /// Delete the key, observing everything the applying replica holds: for counters and sets
    /// concurrent unobserved increments and adds survive; for `lww` it is `LwwDelete`, for
    /// `mvr` a delete with the replica's full context. Clears the expiry.
    Reset,
}

impl Op {
    /// The value kind this op belongs to; `None` for [`Op::Reset`], which fits every kind.
    pub fn kind(&self) -> Option<ValueKind> {
        match self {
            Op::LwwPut { .. } | Op::LwwDelete => Some(ValueKind::Lww),
            Op::MvrPut { .. } => Some(ValueKind::Mvr),
            Op::CounterAdd { .. } => Some(ValueKind::Counter),
            Op::SetUpdate { .. } => Some(ValueKind::Set),
            Op::Reset => None,
        }
    }

    /// The op's time to live, if it sets one.
    pub fn ttl_ms(&self) -> Option<u64> {
        match self {
            Op::LwwPut { ttl_ms, .. }
            | Op::MvrPut { ttl_ms, .. }
            | Op::CounterAdd { ttl_ms, .. }
            | Op::SetUpdate { ttl_ms, .. } => *ttl_ms,
            Op::LwwDelete | Op::Reset => None,
        }
    }
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadValue {
    /// No value: never written, deleted, reset, emptied or expired.
    Absent,
    /// The winning LWW write.
    Lww {
        /// The value.
        value: Vec<u8>,
        /// Its HLC.
        ts: Hlc,
    },
    /// The sibling values (sorted by bytes, duplicates removed) and the context to write with.
    Mvr {
        /// The values.
        siblings: Vec<Vec<u8>>,
        /// Pass this back with the next write to supersede these siblings.
        context: CausalContext,
    },
    /// The counter's value.
    Counter(i64),
    /// The members (sorted by bytes) and the context to remove with.
    Set {
        /// The elements.
        members: Vec<Vec<u8>>,
        /// Pass this back with a remove so it drops only what was read.
        context: CausalContext,
    },
}

impl ReadValue {
    /// True for [`ReadValue::Absent`].
    pub fn is_absent(&self) -> bool {
        matches!(self, ReadValue::Absent)
    }
}

/// Limits enforced on client operations (never on replication merges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Most siblings a client write may leave in a multi-value register (at least 1).
    pub max_siblings: usize,
    /// The applying actor does not extend its own counter slots opened before this HLC time
    /// (NTP64); it opens a new slot instead. Set on a node restored from a snapshot, whose own
    /// slots may be behind counts it acknowledged after the snapshot: extending them would
    /// produce totals that a max-merge swallows (`docs/algorithms/counter.md`). Local policy
    /// of the applying replica: never sent on the wire (the RPC format is unchanged).
    #[serde(skip)]
    pub own_slot_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_siblings: 64, own_slot_floor: 0 }
    }
}

/// The typed part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Value {
    Lww(LwwRegister),
    Mvr(MvRegister),
    Counter(PnCounter),
    Set(AwSet),
}

impl Value {
    fn empty(kind: ValueKind) -> Value {
        match kind {
            ValueKind::Lww => Value::Lww(LwwRegister::default()),
            ValueKind::Mvr => Value::Mvr(MvRegister::new()),
            ValueKind::Counter => Value::Counter(PnCounter::new()),
            ValueKind::Set => Value::Set(AwSet::new()),
        }
    }

    fn kind(&self) -> ValueKind {
        match self {
            Value::Lww(_) => ValueKind::Lww,
            Value::Mvr(_) => ValueKind::Mvr,
            Value::Counter(_) => ValueKind::Counter,
            Value::Set(_) => ValueKind::Set,
        }
    }

    fn has_value(&self) -> bool {
        match self {
            Value::Lww(r) => r.value().is_some(),
            Value::Mvr(m) => m.has_value(),
            Value::Counter(c) => c.is_live(),
            Value::Set(s) => !s.is_empty(),
        }
    }
}

/// The replicated state of one key: one of the four value types, a replicated [`Expiry`] and
/// the greatest HLC of any operation folded in.
///
/// Equal records encode to identical bytes ([`Record::encode`]), and [`Record::merge`] is a
/// join (commutative, associative, idempotent), so replicas that have exchanged their states
/// hold byte-identical records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub(crate) value: Value,
    pub(crate) expiry: Expiry,
    pub(crate) last_modified: Hlc,
}

impl Record {
    /// A record of `kind` that has observed nothing (reads [`ReadValue::Absent`]). Merging any
    /// record of the same kind into it yields that record.
    pub fn empty(kind: ValueKind) -> Record {
        Record { value: Value::empty(kind), expiry: Expiry::default(), last_modified: Hlc::ZERO }
    }

    /// The value kind.
    pub fn kind(&self) -> ValueKind {
        self.value.kind()
    }

    /// Applies a client operation at a replica, returning the new state.
    ///
    /// `kind` is the keyspace's kind; `current` must be of that kind and `op` must fit it
    /// ([`CrdtError::KindMismatch`] otherwise). On an expired record, the op first resets
    /// everything the record holds and clears the expiry, so an expired value never comes back
    /// and new increments or adds are not folded into a dead value. On error nothing is
    /// returned: the caller's stored state is unchanged.
    pub fn apply(
        current: Option<Record>,
        kind: ValueKind,
        op: &Op,
        ctx: &OpContext,
        limits: &Limits,
    ) -> Result<Record, CrdtError> {
        if let Some(found) = op.kind() {
            if found != kind {
                return Err(CrdtError::KindMismatch { expected: kind, found });
            }
        }
        let mut rec = match current {
            Some(r) if r.kind() != kind => return Err(CrdtError::KindMismatch { expected: kind, found: r.kind() }),
            Some(r) => r,
            None => Record::empty(kind),
        };
        if op.ttl_ms() == Some(0) {
            return Err(CrdtError::InvalidOp("ttl_ms must be at least 1".into()));
        }
        let expire_at = |ttl: &Option<u64>| ttl.map(|t| ctx.now_ms.saturating_add(t));
        let expired = rec.expiry.is_expired(ctx.now_ms);
        // Non-LWW ops causally follow the expiry they observed, so their expiry setting must
        // win over it even if the replica's HLC lags behind the one that set it.
        let causal_ts = if ctx.ts > rec.expiry.ts() { ctx.ts } else { rec.expiry.ts().successor_for(ctx.ts.node()) };
        let floor = ctx.ts.time_ntp64();
        let max_siblings = limits.max_siblings;

        match (&mut rec.value, op) {
            (Value::Lww(r), Op::LwwPut { value, ttl_ms }) => {
                // Pure LWW: an expired value is simply overwritten by a later write, and a write
                // older than the current one loses together with its TTL.
                r.write(ctx.ts, Some(value.clone()));
                rec.expiry.merge(&Expiry::new(ctx.ts, expire_at(ttl_ms)));
            }
            (Value::Lww(r), Op::LwwDelete | Op::Reset) => {
                r.write(ctx.ts, None);
                rec.expiry.merge(&Expiry::new(ctx.ts, None));
            }
            (Value::Mvr(m), Op::MvrPut { value, context, ttl_ms }) => {
                if expired {
                    m.clear();
                }
                m.write(ctx.actor, floor, value.clone(), context, max_siblings)?;
                rec.expiry = Expiry::new(causal_ts, expire_at(ttl_ms));
            }
            (Value::Mvr(m), Op::Reset) => {
                m.clear();
                let all = m.context().clone();
                m.write(ctx.actor, floor, None, &all, max_siblings.max(1))?;
                rec.expiry = Expiry::new(causal_ts, None);
            }
            (Value::Counter(c), Op::CounterAdd { delta, ttl_ms }) => {
                if expired {
                    c.reset();
                }
                c.add_above(ctx.actor, floor, *delta, limits.own_slot_floor)?;
                if expired || ttl_ms.is_some() {
                    rec.expiry = Expiry::new(causal_ts, expire_at(ttl_ms));
                }
            }
            (Value::Counter(c), Op::Reset) => {
                c.reset();
                rec.expiry = Expiry::new(causal_ts, None);
            }
            (Value::Set(s), Op::SetUpdate { add, remove, context, ttl_ms }) => {
                if expired {
                    s.clear();
                }
                s.update(ctx.actor, floor, add, remove, context.as_ref())?;
                if expired || ttl_ms.is_some() {
                    rec.expiry = Expiry::new(causal_ts, expire_at(ttl_ms));
                }
            }
            (Value::Set(s), Op::Reset) => {
                s.clear();
                rec.expiry = Expiry::new(causal_ts, None);
            }
            (value, op) => {
                // Unreachable after the kind checks above; kept as an error, not a panic.
                return Err(CrdtError::KindMismatch {
                    expected: value.kind(),
                    found: op.kind().unwrap_or(value.kind()),
                });
            }
        }
        rec.last_modified = rec.last_modified.max(ctx.ts).max(rec.expiry.ts());
        Ok(rec)
    }

    /// State merge (join). Returns `Ok(true)` iff `self` changed. Errors only with
    /// [`CrdtError::KindMismatch`] (leaving `self` unchanged); never enforces [`Limits`]:
    /// replication does not drop data.
    pub fn merge(&mut self, other: &Record) -> Result<bool, CrdtError> {
        let changed = match (&mut self.value, &other.value) {
            (Value::Lww(a), Value::Lww(b)) => a.merge(b),
            (Value::Mvr(a), Value::Mvr(b)) => a.merge(b),
            (Value::Counter(a), Value::Counter(b)) => a.merge(b),
            (Value::Set(a), Value::Set(b)) => a.merge(b),
            (a, b) => return Err(CrdtError::KindMismatch { expected: a.kind(), found: b.kind() }),
        };
        let expiry_changed = self.expiry.merge(&other.expiry);
        let lm = self.last_modified.max(other.last_modified);
        let lm_changed = lm != self.last_modified;
        self.last_modified = lm;
        Ok(changed || expiry_changed || lm_changed)
    }

    /// What a client sees at physical time `now_ms`. Expired, deleted, reset or empty →
    /// [`ReadValue::Absent`].
    pub fn read(&self, now_ms: u64) -> ReadValue {
        if !self.is_live(now_ms) {
            return ReadValue::Absent;
        }
        match &self.value {
            Value::Lww(r) => match r.value() {
                Some(v) => ReadValue::Lww { value: v.to_vec(), ts: r.ts() },
                None => ReadValue::Absent,
            },
            Value::Mvr(m) => ReadValue::Mvr { siblings: m.values(), context: m.context().clone() },
            Value::Counter(c) => ReadValue::Counter(c.value()),
            Value::Set(s) => ReadValue::Set { members: s.members(), context: s.context().clone() },
        }
    }

    /// `read(now_ms) != Absent`, without building the value.
    pub fn is_live(&self, now_ms: u64) -> bool {
        !self.expiry.is_expired(now_ms) && self.value.has_value()
    }

    /// The greatest HLC of any operation folded into this state (merged by max).
    pub fn last_modified(&self) -> Hlc {
        self.last_modified
    }

    /// The context a follower applies a leader's follow-up operation with (the remove part of
    /// a set update with a client context), after merging this state, the leader's: its
    /// last-modified timestamp as `ts` and that timestamp's physical time as `now_ms`.
    ///
    /// Invariant: the follower's result depends only on the states it merged and the op, never
    /// on the follower's own clock. Its `last_modified` stays the join of the merged states'
    /// and the expiry check sees the leader's time, so replicas that received the same writes
    /// hold byte-identical records (and equal Merkle digests) without an anti-entropy pass.
    /// The op must not issue a dot (no adds): the actor is the leader state's timestamp node.
    pub fn follower_context(&self) -> OpContext {
        let ts = self.last_modified;
        OpContext { actor: ts.node(), ts, now_ms: ts.physical_ms() }
    }

    /// True when the record reads as absent and nothing newer than `horizon` touched it. The
    /// store may drop it only if `horizon` is a point every replica (in every region) has
    /// passed; see `docs/algorithms/*.md` on incarnations.
    pub fn is_garbage(&self, now_ms: u64, horizon: Hlc) -> bool {
        !self.is_live(now_ms) && self.last_modified < horizon
    }

    /// The causal context to write with (multi-value registers and sets); empty for other
    /// kinds. Available even when the record reads as absent.
    pub fn context(&self) -> CausalContext {
        match &self.value {
            Value::Mvr(m) => m.context().clone(),
            Value::Set(s) => s.context().clone(),
            Value::Lww(_) | Value::Counter(_) => CausalContext::new(),
        }
    }

    /// The replicated expiry register.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// When the record expires, in ms since the UNIX epoch, if it has a TTL.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.expiry.expire_at_ms()
    }

    /// The LWW register, if this is an `lww` record.
    pub fn as_lww(&self) -> Option<&LwwRegister> {
        match &self.value {
            Value::Lww(r) => Some(r),
            _ => None,
        }
    }

    /// The multi-value register, if this is an `mvr` record.
    pub fn as_mvr(&self) -> Option<&MvRegister> {
        match &self.value {
            Value::Mvr(m) => Some(m),
            _ => None,
        }
    }

    /// The counter, if this is a `counter` record.
    pub fn as_counter(&self) -> Option<&PnCounter> {
        match &self.value {
            Value::Counter(c) => Some(c),
            _ => None,
        }
    }

    /// The set, if this is a `set` record.
    pub fn as_set(&self) -> Option<&AwSet> {
        match &self.value {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    /// Canonical bytes: version byte `1`, then postcard of the V1 wire struct. Equal records
    /// encode identically.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode_record(self)
    }

    /// Inverse of [`Record::encode`]. Never panics on arbitrary input; unknown versions are
    /// [`CrdtError::UnsupportedVersion`]; non-canonical or invariant-breaking bytes are
    /// [`CrdtError::Decode`].
    pub fn decode(bytes: &[u8]) -> Result<Record, CrdtError> {
        crate::codec::decode_record(bytes)
    }
}
