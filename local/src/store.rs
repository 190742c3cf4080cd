//! The `Store` trait and its engine-independent implementation, [`NodeStore`].
//!
//! Invariants (docs/algorithms/storage.md gives the reasoning):
//! 1. **Merge-on-write is atomic per key**: a key's read-modify-write runs under that key's
//!    stripe lock, and its data, change-log entry and Merkle delta go in one engine batch.
//! 2. **The change log is complete**: every state change is logged with a sequence number in
//!    the batch that makes it; no-op merges change nothing and log nothing.
//! 3. **Segment digests equal the data**: for every segment, the stored digest is the XOR of
//!    the entry hashes of the records in it (each batch carries the delta of its change).
//! 4. **No resurrection through GC**: a record is purged only when it reads as absent and its
//!    last modification is older than the GC horizon; the horizon is persisted before any
//!    purge, and an incoming state that is entirely older than the horizon is dropped, whether
//!    the key is present or not (it can only be a copy of something every replica already
//!    received, since superseded and perhaps collected).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use meridian_crdt::{Hlc, Limits, Op, OpContext, Record, ValueKind};
use parking_lot::{Mutex, MutexGuard};

use crate::changelog::{ChangeEntry, LoggedChange, Origin, SeqTracker};
use crate::engine::{Cf, Engine, EngineStats, ScanVisitor, SegmentDigest, WriteBatch};
use crate::error::StoreError;
use crate::hints::Hint;
use crate::keys::{data_bounds, hex, StorageKey, TokenRange};
use crate::merkle::{entry_hash, segment_bounds, segment_of, RangeDigest, SEGMENTS};
use crate::metrics::StoreMetrics;

const STRIPES: usize = 4096;
const META_GC_HORIZON: &str = "gc_horizon";
const GC_CHUNK: usize = 1024;

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The stored state changed; the change is in the log at this sequence number.
    Changed {
        /// Change-log sequence number.
        seq: u64,
    },
    /// The incoming state was already included: nothing written.
    Unchanged,
    /// The incoming state is entirely older than the GC horizon: dropped.
    BelowHorizon,
}

/// What a replica-side operation did.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// The record after the operation.
    pub record: Record,
    /// The change-log sequence number, if the operation changed the state.
    pub seq: Option<u64>,
}

/// Progress and result of a garbage collection pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Records looked at.
    pub scanned: u64,
    /// Records removed.
    pub purged: u64,
}

/// Node-local storage as the rest of Meridian sees it. Calls block on disk I/O: async callers
/// run them on a blocking thread pool.
pub trait Store: Send + Sync + Debug {
    /// The record of `key` in `keyspace`, expired or not (callers read it with `now`).
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StoreError>;

    /// [`Store::get`] answered from memory only, without blocking on disk: `Some(answer)`
    /// (the same answer `get` gives), or `None` when answering needs I/O, and the caller
    /// should run `get` on a blocking thread. The default never answers.
    fn get_cached(&self, keyspace: &str, key: &[u8]) -> Result<Option<Option<Record>>, StoreError> {
        let _ = (keyspace, key);
        Ok(None)
    }

    /// Applies an operation at this replica (this node is `ctx.actor`): read, apply, write,
    /// log, atomically for the key.
    fn apply(
        &self,
        keyspace: &str,
        key: &[u8],
        kind: ValueKind,
        op: &Op,
        ctx: &OpContext,
        limits: &Limits,
    ) -> Result<ApplyOutcome, StoreError>;

    /// Merges a state from elsewhere (a coordinator, a replica, another region) into the
    /// stored one, atomically for the key.
    fn merge(&self, keyspace: &str, key: &[u8], incoming: &Record, origin: Origin) -> Result<MergeOutcome, StoreError>;

    /// Up to `limit` records of `range` in token order, starting after `after` (a storage
    /// key returned by an earlier call) when given.
    fn scan(
        &self,
        range: TokenRange,
        after: Option<&StorageKey>,
        limit: usize,
    ) -> Result<Vec<(StorageKey, Record)>, StoreError>;

    /// The Merkle digest of `range`.
    fn digest(&self, range: TokenRange) -> Result<RangeDigest, StoreError>;

    /// `(storage key, entry hash)` of every record of `range` in `segment`, sorted.
    fn segment_entries(&self, range: TokenRange, segment: u16) -> Result<Vec<(Vec<u8>, u64)>, StoreError>;

    /// The record stored under a raw storage key (as listed by [`Store::segment_entries`]).
    fn get_raw(&self, storage_key: &[u8]) -> Result<Option<(StorageKey, Record)>, StoreError>;

    /// Up to `limit` change-log entries after `after_seq`, never past [`Store::visible_seq`].
    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<ChangeEntry>, StoreError>;

    /// The greatest sequence number up to which the log is complete.
    fn visible_seq(&self) -> u64;

    /// The smallest sequence number still in the log (`visible_seq() + 1` when empty).
    fn first_seq(&self) -> Result<u64, StoreError>;

    /// Removes log entries up to and including `upto`. Returns how many were removed.
    fn trim_changes(&self, upto: u64) -> Result<u64, StoreError>;

    /// Stores a hint for `target`. Returns its sequence number.
    fn put_hint(
        &self,
        target: u64,
        keyspace: &str,
        key: &[u8],
        record: &Record,
        now_ms: u64,
    ) -> Result<u64, StoreError>;

    /// Up to `limit` hints for `target`, oldest first.
    fn hints(&self, target: u64, limit: usize) -> Result<Vec<Hint>, StoreError>;

    /// Deletes one hint.
    fn delete_hint(&self, target: u64, seq: u64) -> Result<(), StoreError>;

    /// Number of pending hints per target.
    fn hint_counts(&self) -> Result<BTreeMap<u64, u64>, StoreError>;

    /// Reads a metadata value.
    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes a metadata value durably.
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Raises the GC horizon to `horizon` (never lowers it) and removes every record that
    /// reads as absent at `now_ms` and was last modified before the horizon. `progress` is
    /// called after every chunk.
    fn collect_garbage(
        &self,
        now_ms: u64,
        horizon: Hlc,
        progress: &mut dyn FnMut(&GcStats),
    ) -> Result<GcStats, StoreError>;

    /// The current GC horizon.
    fn gc_horizon(&self) -> Hlc;

    /// Number of records (live, expired and tombstones), from the Merkle counts.
    fn record_count(&self) -> u64;

    /// Flushes to disk.
    fn flush(&self) -> Result<(), StoreError>;

    /// Engine figures.
    fn engine_stats(&self) -> EngineStats;

    /// A consistent point-in-time copy of the node's whole state (records, change log, hints,
    /// metadata, Merkle segments) in `dir`, which must not exist ([`Engine::checkpoint`]).
    fn checkpoint(&self, dir: &std::path::Path) -> Result<(), StoreError>;

    /// The store's counters.
    fn metrics(&self) -> &StoreMetrics;
}

/// The [`Store`] over any [`Engine`].
#[derive(Debug)]
pub struct NodeStore<E: Engine> {
    engine: E,
    stripes: Box<[Mutex<()>]>,
    seqs: SeqTracker,
    hint_seq: AtomicU64,
    seg_hash: Box<[AtomicU64]>,
    seg_count: Box<[AtomicU64]>,
    horizon: Mutex<Hlc>,
    metrics: StoreMetrics,
}

fn corrupt_record(key: &[u8], e: impl ToString) -> StoreError {
    StoreError::Corrupt { what: "record", key: hex(key), reason: e.to_string() }
}

fn decode_record(key: &[u8], bytes: &[u8]) -> Result<Record, StoreError> {
    Record::decode(bytes).map_err(|e| corrupt_record(key, e))
}

/// Decodes the entries of `[start, end)` of `cf` with `decode` and appends them to `out` until
/// it holds `limit`; stops at the first entry that does not decode.
fn collect_decoded<T>(
    engine: &impl Engine,
    cf: Cf,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
    out: &mut Vec<T>,
    decode: impl Fn(&[u8], &[u8]) -> Result<T, StoreError>,
) -> Result<(), StoreError> {
    if out.len() >= limit {
        return Ok(());
    }
    let mut err = None;
    engine.scan(cf, start, end, &mut |k, v| {
        match decode(k, v) {
            Ok(t) => out.push(t),
            Err(e) => {
                err = Some(e);
                return ControlFlow::Break(());
            }
        }
        if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    err.map_or(Ok(()), Err)
}

impl<E: Engine> NodeStore<E> {
    /// Opens a store over `engine`: recovers the sequence counters, the Merkle segments and
    /// the GC horizon from what the engine holds.
    pub fn open(engine: E) -> Result<Self, StoreError> {
        let last_seq = match engine.last_key(Cf::Changelog)? {
            Some(k) => u64::from_be_bytes(k.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                what: "change",
                key: hex(&k),
                reason: "key is not 8 bytes".into(),
            })?),
            None => 0,
        };
        let mut max_hint = 0u64;
        engine.scan(Cf::Hints, &[], None, &mut |k, _| {
            if k.len() == 16 {
                max_hint = max_hint.max(u64::from_be_bytes(k[8..].try_into().expect("16 bytes")));
            }
            ControlFlow::Continue(())
        })?;
        let seg_hash: Box<[AtomicU64]> = (0..SEGMENTS).map(|_| AtomicU64::new(0)).collect();
        let seg_count: Box<[AtomicU64]> = (0..SEGMENTS).map(|_| AtomicU64::new(0)).collect();
        let mut bad = None;
        engine.scan(
            Cf::Merkle,
            &[],
            None,
            &mut |k, v| match (<[u8; 2]>::try_from(k), SegmentDigest::from_bytes(v)) {
                (Ok(seg), Some(d)) => {
                    let s = u16::from_be_bytes(seg) as usize;
                    seg_hash[s].store(d.hash, Ordering::Relaxed);
                    seg_count[s].store(d.count, Ordering::Relaxed);
                    ControlFlow::Continue(())
                }
                _ => {
                    bad = Some(k.to_vec());
                    ControlFlow::Break(())
                }
            },
        )?;
        if let Some(k) = bad {
            return Err(StoreError::Corrupt { what: "segment", key: hex(&k), reason: "malformed digest".into() });
        }
        let horizon = match engine.get(Cf::Meta, META_GC_HORIZON.as_bytes())? {
            Some(b) => postcard::from_bytes(&b).map_err(|e| StoreError::Corrupt {
                what: "gc horizon",
                key: META_GC_HORIZON.into(),
                reason: e.to_string(),
            })?,
            None => Hlc::ZERO,
        };
        Ok(Self {
            engine,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            seqs: SeqTracker::new(last_seq),
            hint_seq: AtomicU64::new(max_hint),
            seg_hash,
            seg_count,
            horizon: Mutex::new(horizon),
            metrics: StoreMetrics::default(),
        })
    }

    /// The engine underneath.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    fn lock(&self, skey: &StorageKey) -> MutexGuard<'_, ()> {
        // The token is already a uniform hash of the key.
        self.stripes[(skey.token() % STRIPES as u64) as usize].lock()
    }

    /// Writes `new` over `old` for `skey`, with its log entry and segment delta, in one batch.
    /// Caller holds the key's stripe lock.
    fn commit(&self, skey: &StorageKey, old: Option<&[u8]>, new: Vec<u8>, origin: Origin) -> Result<u64, StoreError> {
        let seg = segment_of(skey.token());
        let mut delta = SegmentDigest { hash: entry_hash(skey.as_bytes(), &new), count: 1 };
        if let Some(old) = old {
            delta.fold(SegmentDigest { hash: entry_hash(skey.as_bytes(), old), count: u64::MAX });
        }
        let seq = self.seqs.allocate();
        let entry = LoggedChange::encode_parts(skey.keyspace(), skey.key(), &origin);
        let mut batch = WriteBatch::default();
        batch.put(Cf::Data, skey.as_bytes(), new);
        batch.put(Cf::Changelog, seq.to_be_bytes(), entry);
        batch.segment_delta(seg, delta);
        let res = self.engine.write(batch);
        self.seqs.complete(seq);
        res?;
        self.fold_segment(seg, delta);
        StoreMetrics::inc(&self.metrics.writes, 1);
        Ok(seq)
    }

    fn fold_segment(&self, seg: u16, delta: SegmentDigest) {
        self.seg_hash[seg as usize].fetch_xor(delta.hash, Ordering::Relaxed);
        self.seg_count[seg as usize].fetch_add(delta.count, Ordering::Relaxed);
    }

    fn segment(&self, seg: u16) -> SegmentDigest {
        SegmentDigest {
            hash: self.seg_hash[seg as usize].load(Ordering::Relaxed),
            count: self.seg_count[seg as usize].load(Ordering::Relaxed),
        }
    }

    /// Visits the raw entries of the inclusive token interval `[lo, hi]`.
    fn scan_tokens(&self, lo: u64, hi: u64, f: &mut ScanVisitor<'_>) -> Result<(), StoreError> {
        let (start, end) = data_bounds(lo, hi);
        self.engine.scan(Cf::Data, &start, end.as_deref(), f)
    }

    /// Digest of the part `[lo, hi]` of one segment, by scanning.
    fn partial_segment(&self, lo: u64, hi: u64) -> Result<SegmentDigest, StoreError> {
        let mut d = SegmentDigest::default();
        self.scan_tokens(lo, hi, &mut |k, v| {
            d.fold(SegmentDigest { hash: entry_hash(k, v), count: 1 });
            ControlFlow::Continue(())
        })?;
        Ok(d)
    }

    /// Removes `skey` if it is still garbage. Returns whether it was removed.
    fn purge_if_garbage(&self, skey: &StorageKey, now_ms: u64, horizon: Hlc) -> Result<bool, StoreError> {
        let _g = self.lock(skey);
        let Some(bytes) = self.engine.get(Cf::Data, skey.as_bytes())? else { return Ok(false) };
        let rec = decode_record(skey.as_bytes(), &bytes)?;
        if !rec.is_garbage(now_ms, horizon) {
            return Ok(false);
        }
        let seg = segment_of(skey.token());
        let delta = SegmentDigest { hash: entry_hash(skey.as_bytes(), &bytes), count: u64::MAX };
        let mut batch = WriteBatch::default();
        batch.delete(Cf::Data, skey.as_bytes());
        batch.segment_delta(seg, delta);
        self.engine.write(batch)?;
        self.fold_segment(seg, delta);
        Ok(true)
    }
}

impl<E: Engine> Store for NodeStore<E> {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let skey = StorageKey::new(keyspace, key)?;
        let mut out = Ok(None);
        self.engine.read(Cf::Data, skey.as_bytes(), &mut |v| {
            if let Some(b) = v {
                out = decode_record(skey.as_bytes(), b).map(Some);
            }
        })?;
        out
    }

    fn get_cached(&self, keyspace: &str, key: &[u8]) -> Result<Option<Option<Record>>, StoreError> {
        let skey = StorageKey::new(keyspace, key)?;
        let mut out = Ok(None);
        let answered = self.engine.read_cached(Cf::Data, skey.as_bytes(), &mut |v| {
            if let Some(b) = v {
                out = decode_record(skey.as_bytes(), b).map(Some);
            }
        })?;
        if answered {
            out.map(Some)
        } else {
            Ok(None)
        }
    }

    fn apply(
        &self,
        keyspace: &str,
        key: &[u8],
        kind: ValueKind,
        op: &Op,
        ctx: &OpContext,
        limits: &Limits,
    ) -> Result<ApplyOutcome, StoreError> {
        let skey = StorageKey::new(keyspace, key)?;
        let _g = self.lock(&skey);
        let old = self.engine.get(Cf::Data, skey.as_bytes())?;
        let current = old.as_deref().map(|b| decode_record(skey.as_bytes(), b)).transpose()?;
        let record = Record::apply(current, kind, op, ctx, limits)?;
        let new = record.encode();
        if old.as_deref() == Some(new.as_slice()) {
            return Ok(ApplyOutcome { record, seq: None });
        }
        let seq = self.commit(&skey, old.as_deref(), new, Origin::Local)?;
        Ok(ApplyOutcome { record, seq: Some(seq) })
    }

    fn merge(&self, keyspace: &str, key: &[u8], incoming: &Record, origin: Origin) -> Result<MergeOutcome, StoreError> {
        let skey = StorageKey::new(keyspace, key)?;
        let _g = self.lock(&skey);
        // A state entirely older than the horizon was, by the horizon's definition, received
        // by every replica already: here it is either included or was superseded and
        // collected. Merging it could only bring collected data back (invariant 4).
        if incoming.last_modified() < *self.horizon.lock() {
            StoreMetrics::inc(&self.metrics.rejected_below_horizon, 1);
            return Ok(MergeOutcome::BelowHorizon);
        }
        let old = self.engine.get(Cf::Data, skey.as_bytes())?;
        let merged = match old.as_deref() {
            None => incoming.clone(),
            Some(b) => {
                let mut cur = decode_record(skey.as_bytes(), b)?;
                if !cur.merge(incoming)? {
                    StoreMetrics::inc(&self.metrics.noop_merges, 1);
                    return Ok(MergeOutcome::Unchanged);
                }
                cur
            }
        };
        let new = merged.encode();
        if old.as_deref() == Some(new.as_slice()) {
            StoreMetrics::inc(&self.metrics.noop_merges, 1);
            return Ok(MergeOutcome::Unchanged);
        }
        let seq = self.commit(&skey, old.as_deref(), new, origin)?;
        Ok(MergeOutcome::Changed { seq })
    }

    fn scan(
        &self,
        range: TokenRange,
        after: Option<&StorageKey>,
        limit: usize,
    ) -> Result<Vec<(StorageKey, Record)>, StoreError> {
        let mut out = Vec::new();
        for (lo, hi) in range.spans() {
            let (mut start, end) = data_bounds(lo, hi);
            if let Some(a) = after {
                if a.token() > hi {
                    continue;
                }
                if a.token() >= lo {
                    // Resume just after `after`: the smallest key greater than it.
                    start = a.as_bytes().to_vec();
                    start.push(0);
                }
            }
            collect_decoded(&self.engine, Cf::Data, &start, end.as_deref(), limit, &mut out, |k, v| {
                Ok((StorageKey::from_bytes(k)?, decode_record(k, v)?))
            })?;
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn digest(&self, range: TokenRange) -> Result<RangeDigest, StoreError> {
        let mut digest = RangeDigest::default();
        for (lo, hi) in range.spans() {
            let (first, last) = (segment_of(lo), segment_of(hi));
            for seg in first..=last {
                let (slo, shi) = segment_bounds(seg);
                let d = if lo <= slo && shi <= hi {
                    self.segment(seg)
                } else {
                    self.partial_segment(lo.max(slo), hi.min(shi))?
                };
                if !d.is_empty() {
                    digest.segments.entry(seg).or_default().fold(d);
                }
            }
        }
        digest.segments.retain(|_, d| !d.is_empty());
        Ok(digest)
    }

    fn segment_entries(&self, range: TokenRange, segment: u16) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        let (slo, shi) = segment_bounds(segment);
        let mut out = Vec::new();
        for (lo, hi) in range.spans() {
            let (lo, hi) = (lo.max(slo), hi.min(shi));
            if lo > hi {
                continue;
            }
            self.scan_tokens(lo, hi, &mut |k, v| {
                out.push((k.to_vec(), entry_hash(k, v)));
                ControlFlow::Continue(())
            })?;
        }
        out.sort_unstable();
        Ok(out)
    }

    fn get_raw(&self, storage_key: &[u8]) -> Result<Option<(StorageKey, Record)>, StoreError> {
        let skey = StorageKey::from_bytes(storage_key)?;
        match self.engine.get(Cf::Data, storage_key)? {
            Some(b) => Ok(Some((skey, decode_record(storage_key, &b)?))),
            None => Ok(None),
        }
    }

    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<ChangeEntry>, StoreError> {
        let visible = self.seqs.visible();
        let mut logged = Vec::new();
        if after_seq >= visible || limit == 0 {
            return Ok(Vec::new());
        }
        let start = (after_seq + 1).to_be_bytes();
        let end = (visible + 1).to_be_bytes();
        collect_decoded(&self.engine, Cf::Changelog, &start, Some(&end), limit, &mut logged, LoggedChange::decode)?;
        // Look the states up after the scan: an engine may not allow reads inside its scan.
        logged
            .into_iter()
            .map(|e| {
                let skey = StorageKey::new(&e.keyspace, &e.key)?;
                let record = self.engine.get(Cf::Data, skey.as_bytes())?;
                Ok(ChangeEntry { seq: e.seq, keyspace: e.keyspace, key: e.key, origin: e.origin, record })
            })
            .collect()
    }

    fn visible_seq(&self) -> u64 {
        self.seqs.visible()
    }

    fn first_seq(&self) -> Result<u64, StoreError> {
        let mut first = None;
        self.engine.scan(Cf::Changelog, &[], None, &mut |k, _| {
            first = k.try_into().ok().map(u64::from_be_bytes);
            ControlFlow::Break(())
        })?;
        Ok(first.unwrap_or(self.seqs.visible() + 1))
    }

    fn trim_changes(&self, upto: u64) -> Result<u64, StoreError> {
        let upto = upto.min(self.seqs.visible());
        let mut n = 0u64;
        self.engine.scan(Cf::Changelog, &[], Some(&(upto.saturating_add(1)).to_be_bytes()), &mut |_, _| {
            n += 1;
            ControlFlow::Continue(())
        })?;
        if n > 0 {
            let mut batch = WriteBatch::default();
            batch.delete_range(Cf::Changelog, 0u64.to_be_bytes(), (upto.saturating_add(1)).to_be_bytes());
            self.engine.write(batch)?;
            StoreMetrics::inc(&self.metrics.changelog_trimmed, n);
        }
        Ok(n)
    }

    fn put_hint(
        &self,
        target: u64,
        keyspace: &str,
        key: &[u8],
        record: &Record,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        StorageKey::new(keyspace, key)?;
        let seq = self.hint_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let hint = Hint {
            target,
            seq,
            keyspace: keyspace.to_owned(),
            key: key.to_vec(),
            record: record.encode(),
            created_ms: now_ms,
        };
        let mut batch = WriteBatch::default();
        batch.put(Cf::Hints, Hint::storage_key(target, seq), hint.encode_value());
        self.engine.write(batch)?;
        StoreMetrics::inc(&self.metrics.hints_stored, 1);
        Ok(seq)
    }

    fn hints(&self, target: u64, limit: usize) -> Result<Vec<Hint>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let start = Hint::storage_key(target, 0);
        let end = target.checked_add(1).map(|t| Hint::storage_key(t, 0));
        collect_decoded(&self.engine, Cf::Hints, &start, end.as_deref(), limit, &mut out, Hint::decode)?;
        Ok(out)
    }

    fn delete_hint(&self, target: u64, seq: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete(Cf::Hints, Hint::storage_key(target, seq));
        self.engine.write(batch)?;
        StoreMetrics::inc(&self.metrics.hints_deleted, 1);
        Ok(())
    }

    fn hint_counts(&self) -> Result<BTreeMap<u64, u64>, StoreError> {
        let mut out = BTreeMap::new();
        self.engine.scan(Cf::Hints, &[], None, &mut |k, _| {
            if k.len() == 16 {
                *out.entry(u64::from_be_bytes(k[..8].try_into().expect("16 bytes"))).or_insert(0) += 1;
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.engine.get(Cf::Meta, name.as_bytes())
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put(Cf::Meta, name.as_bytes(), value);
        self.engine.write(batch)
    }

    fn collect_garbage(
        &self,
        now_ms: u64,
        horizon: Hlc,
        progress: &mut dyn FnMut(&GcStats),
    ) -> Result<GcStats, StoreError> {
        // Raise and persist the horizon before purging anything (invariant 4).
        let horizon = {
            let mut h = self.horizon.lock();
            if horizon > *h {
                let bytes = postcard::to_stdvec(&horizon).expect("serializing to a Vec cannot fail");
                self.put_meta(META_GC_HORIZON, &bytes)?;
                *h = horizon;
            }
            *h
        };
        let mut stats = GcStats::default();
        let mut resume: Vec<u8> = Vec::new();
        loop {
            let mut candidates = Vec::new();
            let mut last = None;
            let mut err = None;
            self.engine.scan(Cf::Data, &resume, None, &mut |k, v| {
                last = Some(k.to_vec());
                stats.scanned += 1;
                match Record::decode(v) {
                    Ok(r) if r.is_garbage(now_ms, horizon) => candidates.push(k.to_vec()),
                    Ok(_) => {}
                    Err(e) => {
                        err = Some(corrupt_record(k, e));
                        return ControlFlow::Break(());
                    }
                }
                if stats.scanned % GC_CHUNK as u64 == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            for k in candidates {
                if self.purge_if_garbage(&StorageKey::from_bytes(&k)?, now_ms, horizon)? {
                    stats.purged += 1;
                    StoreMetrics::inc(&self.metrics.gc_purged, 1);
                }
            }
            progress(&stats);
            match last {
                Some(mut k) if stats.scanned % GC_CHUNK as u64 == 0 => {
                    k.push(0);
                    resume = k;
                }
                _ => break,
            }
        }
        Ok(stats)
    }

    fn gc_horizon(&self) -> Hlc {
        *self.horizon.lock()
    }

    fn record_count(&self) -> u64 {
        self.seg_count.iter().fold(0u64, |acc, c| acc.wrapping_add(c.load(Ordering::Relaxed)))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.engine.flush()
    }

    fn engine_stats(&self) -> EngineStats {
        self.engine.stats()
    }

    fn checkpoint(&self, dir: &std::path::Path) -> Result<(), StoreError> {
        self.engine.checkpoint(dir)
    }

    fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }
}
