//! The conformance suite every engine must pass, run through [`NodeStore`].
//!
//! An engine crate provides an [`EngineFactory`] and invokes
//! [`conformance_tests!`](crate::conformance_tests), which defines one `#[test]` per case.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, ReadValue, Record, ValueKind};

use crate::changelog::Origin;
use crate::keys::{token_of, StorageKey, TokenRange};
use crate::merkle::{diff_keys, entry_hash, segment_of};
use crate::store::{MergeOutcome, Store};

/// Opens stores of one engine kind in a directory.
pub trait EngineFactory {
    /// Opens (or reopens) the store kept in `dir`.
    fn open(&self, dir: &Path) -> Arc<dyn Store>;
    /// Whether a store reopened in the same directory keeps its data.
    fn persistent(&self) -> bool;
}

/// Defines one `#[test]` per conformance case for the factory `$factory` (an expression).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            get_missing_is_none, apply_then_get, apply_logs_one_change, noop_merge_logs_nothing,
            merge_logs_with_origin, kind_mismatch_changes_nothing, changes_paginate_and_trim,
            scan_token_ranges, scan_resumes_after_key, digest_is_order_independent,
            digest_matches_brute_force, digest_diff_finds_the_key, hints_round_trip, meta_round_trip,
            gc_purges_only_old_garbage, gc_blocks_resurrection, expired_ttl_collected_not_resurrected,
            stale_expired_copy_cannot_revive_rewritten_key,
            record_count_tracks_writes, concurrent_increments_sum, reopen_keeps_everything,
            cached_reads_answer_like_get);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$factory);
            }
        )*
    };
}

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const KS: &str = "default";
const NOW: u64 = 1_700_000_000_000;

fn ts(ms: u64, node: NodeId) -> Hlc {
    Hlc::from_physical_ms(ms, node)
}

fn ctx(ms: u64, node: NodeId) -> OpContext {
    OpContext { actor: node, ts: ts(ms, node), now_ms: ms }
}

fn lww(value: &[u8], ms: u64, node: NodeId) -> Record {
    Record::apply(
        None,
        ValueKind::Lww,
        &Op::LwwPut { value: value.to_vec(), ttl_ms: None },
        &ctx(ms, node),
        &Limits::default(),
    )
    .expect("lww put")
}

fn tombstone(ms: u64, node: NodeId) -> Record {
    Record::apply(None, ValueKind::Lww, &Op::LwwDelete, &ctx(ms, node), &Limits::default()).expect("lww delete")
}

fn put(store: &dyn Store, key: &[u8], value: &[u8], ms: u64) {
    store
        .apply(
            KS,
            key,
            ValueKind::Lww,
            &Op::LwwPut { value: value.to_vec(), ttl_ms: None },
            &ctx(ms, N1),
            &Limits::default(),
        )
        .expect("apply");
}

fn read_lww(store: &dyn Store, key: &[u8], now: u64) -> Option<Vec<u8>> {
    match store.get(KS, key).expect("get")?.read(now) {
        ReadValue::Lww { value, .. } => Some(value),
        ReadValue::Absent => None,
        other => panic!("not an lww value: {other:?}"),
    }
}

fn fresh(f: &dyn EngineFactory) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = f.open(dir.path());
    (dir, store)
}

/// Brute-force digest of a range: XOR of entry hashes of scanned records, per segment.
fn brute_digest(store: &dyn Store, range: TokenRange) -> BTreeMap<u16, (u64, u64)> {
    let mut out: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    for (k, rec) in store.scan(range, None, usize::MAX).expect("scan") {
        let e = out.entry(segment_of(k.token())).or_default();
        e.0 ^= entry_hash(k.as_bytes(), &rec.encode());
        e.1 += 1;
    }
    out
}

/// A key absent from a fresh store reads as `None`.
pub fn get_missing_is_none(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    assert!(s.get(KS, b"nope").unwrap().is_none());
    assert_eq!(s.visible_seq(), 0);
}

/// An applied write is read back.
pub fn apply_then_get(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    put(&*s, b"k", b"v1", NOW);
    assert_eq!(read_lww(&*s, b"k", NOW), Some(b"v1".to_vec()));
    put(&*s, b"k", b"v2", NOW + 1);
    assert_eq!(read_lww(&*s, b"k", NOW + 1), Some(b"v2".to_vec()));
}

/// Every state change is one change-log entry; reading the log returns the current state.
pub fn apply_logs_one_change(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    put(&*s, b"a", b"1", NOW);
    put(&*s, b"b", b"2", NOW + 1);
    let ch = s.changes(0, 10).unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!((ch[0].seq, ch[1].seq), (1, 2));
    assert_eq!(ch[1].key, b"b");
    assert_eq!(ch[1].origin, Origin::Local);
    let rec = Record::decode(ch[1].record.as_deref().expect("state present")).unwrap();
    assert_eq!(rec, s.get(KS, b"b").unwrap().unwrap());
    assert_eq!(s.visible_seq(), 2);
}

/// Merging a state that is already included writes and logs nothing.
pub fn noop_merge_logs_nothing(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let r = lww(b"v", NOW, N2);
    assert!(matches!(s.merge(KS, b"k", &r, Origin::Repair).unwrap(), MergeOutcome::Changed { seq: 1 }));
    assert_eq!(s.merge(KS, b"k", &r, Origin::Repair).unwrap(), MergeOutcome::Unchanged);
    let older = lww(b"old", NOW - 10, N2);
    assert_eq!(s.merge(KS, b"k", &older, Origin::Repair).unwrap(), MergeOutcome::Unchanged);
    assert_eq!(s.changes(0, 10).unwrap().len(), 1);
    assert_eq!(read_lww(&*s, b"k", NOW), Some(b"v".to_vec()));
}

/// Merges are logged with where they came from; a newer state wins.
pub fn merge_logs_with_origin(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    put(&*s, b"k", b"local", NOW);
    let remote = lww(b"remote", NOW + 5, N2);
    let origin = Origin::Remote { region: "eu-west".into() };
    assert!(matches!(s.merge(KS, b"k", &remote, origin.clone()).unwrap(), MergeOutcome::Changed { .. }));
    let ch = s.changes(1, 10).unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].origin, origin);
    assert_eq!(read_lww(&*s, b"k", NOW + 5), Some(b"remote".to_vec()));
}

/// An operation of the wrong type is refused and changes nothing.
pub fn kind_mismatch_changes_nothing(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    put(&*s, b"k", b"v", NOW);
    let before = s.get(KS, b"k").unwrap();
    let err = s
        .apply(
            KS,
            b"k",
            ValueKind::Counter,
            &Op::CounterAdd { delta: 1, ttl_ms: None },
            &ctx(NOW + 1, N1),
            &Limits::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.code(),
        meridian_crdt::CrdtError::KindMismatch { expected: ValueKind::Counter, found: ValueKind::Lww }.code()
    );
    let counter = Record::apply(
        None,
        ValueKind::Counter,
        &Op::CounterAdd { delta: 1, ttl_ms: None },
        &ctx(NOW, N2),
        &Limits::default(),
    )
    .unwrap();
    assert!(s.merge(KS, b"k", &counter, Origin::Repair).is_err());
    assert_eq!(s.get(KS, b"k").unwrap(), before);
    assert_eq!(s.changes(0, 10).unwrap().len(), 1);
}

/// The log pages by sequence number and trims a prefix.
pub fn changes_paginate_and_trim(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    for i in 0..25u64 {
        put(&*s, format!("k{i}").as_bytes(), b"v", NOW + i);
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.changes(after, 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().seq;
        seen.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    assert_eq!(s.first_seq().unwrap(), 1);
    assert_eq!(s.trim_changes(10).unwrap(), 10);
    assert_eq!(s.first_seq().unwrap(), 11);
    assert_eq!(s.changes(0, 100).unwrap().first().map(|e| e.seq), Some(11));
    assert_eq!(s.trim_changes(10).unwrap(), 0, "trimming again removes nothing");
    assert_eq!(s.trim_changes(1000).unwrap(), 15, "trim stops at the visible end");
    assert_eq!(s.first_seq().unwrap(), 26);
    put(&*s, b"after-trim", b"v", NOW + 100);
    assert_eq!(s.changes(25, 10).unwrap()[0].seq, 26, "numbering continues after a full trim");
}

/// A token range scan returns exactly the keys whose tokens are in the range, in token order,
/// including ranges that wrap past the top of the ring.
pub fn scan_token_ranges(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key-{i}").into_bytes()).collect();
    for (i, k) in keys.iter().enumerate() {
        put(&*s, k, b"v", NOW + i as u64);
    }
    let mut tokens: Vec<u64> = keys.iter().map(|k| token_of(KS, k)).collect();
    tokens.sort_unstable();
    let ranges = [
        TokenRange::FULL,
        TokenRange::new(tokens[20], tokens[80]),
        TokenRange::new(tokens[150], tokens[30]),
        TokenRange::new(u64::MAX / 3, u64::MAX / 3 * 2),
        TokenRange::new(tokens[5], tokens[5]),
    ];
    for r in ranges {
        let got: Vec<u64> = s.scan(r, None, usize::MAX).unwrap().iter().map(|(k, _)| k.token()).collect();
        let mut want: Vec<u64> = tokens.iter().copied().filter(|t| r.contains(*t)).collect();
        // Wrapping ranges come back in span order: [0, end] first, then (start, MAX].
        want.sort_unstable();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, want, "range {r:?}");
        assert_eq!(got, want, "scan order for {r:?} is token order");
    }
}

/// Paging a scan with `after` visits every key once.
pub fn scan_resumes_after_key(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    for i in 0..100u64 {
        put(&*s, format!("p{i}").as_bytes(), b"v", NOW + i);
    }
    for range in [TokenRange::FULL, TokenRange::new(u64::MAX / 2, u64::MAX / 4)] {
        let all: Vec<StorageKey> = s.scan(range, None, usize::MAX).unwrap().into_iter().map(|(k, _)| k).collect();
        let mut paged = Vec::new();
        let mut after: Option<StorageKey> = None;
        loop {
            let page = s.scan(range, after.as_ref(), 9).unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|(k, _)| k.clone());
            paged.extend(page.into_iter().map(|(k, _)| k));
        }
        assert_eq!(paged, all);
    }
}

/// Two replicas that received the same states in different orders have equal digests.
pub fn digest_is_order_independent(f: &dyn EngineFactory) {
    let (_d1, a) = fresh(f);
    let (_d2, b) = fresh(f);
    let states: Vec<(Vec<u8>, Record)> = (0..300u64)
        .map(|i| {
            (
                format!("k{}", i % 120).into_bytes(),
                lww(format!("v{i}").as_bytes(), NOW + i, if i % 2 == 0 { N1 } else { N2 }),
            )
        })
        .collect();
    for (k, r) in &states {
        a.merge(KS, k, r, Origin::Repair).unwrap();
    }
    for (k, r) in states.iter().rev() {
        b.merge(KS, k, r, Origin::Repair).unwrap();
    }
    for range in [TokenRange::FULL, TokenRange::new(1 << 60, 1 << 63), TokenRange::new(u64::MAX - (1 << 62), 1 << 61)] {
        let (da, db) = (a.digest(range).unwrap(), b.digest(range).unwrap());
        assert_eq!(da, db, "{range:?}");
        assert!(da.diff(&db).is_empty());
    }
    assert_eq!(a.digest(TokenRange::FULL).unwrap().count(), 120);
}

/// The incremental digest of any range equals one computed from scratch by scanning,
/// after overwrites and deletions.
pub fn digest_matches_brute_force(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    for i in 0..400u64 {
        put(&*s, format!("b{}", i % 150).as_bytes(), format!("v{i}").as_bytes(), NOW + i);
    }
    for i in 0..30u64 {
        s.apply(
            KS,
            format!("b{i}").as_bytes(),
            ValueKind::Lww,
            &Op::LwwDelete,
            &ctx(NOW + 1000 + i, N1),
            &Limits::default(),
        )
        .unwrap();
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..40 {
        // xorshift: deterministic pseudo-random range bounds
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let start = x;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let range = TokenRange::new(start, x);
        let got: BTreeMap<u16, (u64, u64)> =
            s.digest(range).unwrap().segments.into_iter().map(|(k, d)| (k, (d.hash, d.count))).collect();
        assert_eq!(got, brute_digest(&*s, range), "{range:?}");
    }
}

/// A differing record shows up as a differing segment, and the segment's entries name the key.
pub fn digest_diff_finds_the_key(f: &dyn EngineFactory) {
    let (_d1, a) = fresh(f);
    let (_d2, b) = fresh(f);
    for i in 0..100u64 {
        let r = lww(b"same", NOW + i, N1);
        a.merge(KS, format!("d{i}").as_bytes(), &r, Origin::Repair).unwrap();
        b.merge(KS, format!("d{i}").as_bytes(), &r, Origin::Repair).unwrap();
    }
    a.merge(KS, b"d42", &lww(b"newer", NOW + 500, N2), Origin::Repair).unwrap();
    b.merge(KS, b"only-b", &lww(b"x", NOW, N2), Origin::Repair).unwrap();
    let (da, db) = (a.digest(TokenRange::FULL).unwrap(), b.digest(TokenRange::FULL).unwrap());
    let segs = da.diff(&db);
    let mut keys = Vec::new();
    for seg in &segs {
        let ea = a.segment_entries(TokenRange::FULL, *seg).unwrap();
        let eb = b.segment_entries(TokenRange::FULL, *seg).unwrap();
        keys.extend(diff_keys(&ea, &eb));
    }
    let mut want = vec![
        StorageKey::new(KS, b"d42").unwrap().as_bytes().to_vec(),
        StorageKey::new(KS, b"only-b").unwrap().as_bytes().to_vec(),
    ];
    want.sort();
    keys.sort();
    assert_eq!(keys, want);
    // Repair: copy the differing records both ways, then the digests agree.
    for k in &keys {
        if let Some((sk, r)) = a.get_raw(k).unwrap() {
            b.merge(sk.keyspace(), sk.key(), &r, Origin::Repair).unwrap();
        }
        if let Some((sk, r)) = b.get_raw(k).unwrap() {
            a.merge(sk.keyspace(), sk.key(), &r, Origin::Repair).unwrap();
        }
    }
    assert_eq!(a.digest(TokenRange::FULL).unwrap(), b.digest(TokenRange::FULL).unwrap());
}

/// Hints are listed per target, oldest first, counted and deleted.
pub fn hints_round_trip(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let r = lww(b"v", NOW, N1);
    let h1 = s.put_hint(7, KS, b"a", &r, NOW).unwrap();
    let h2 = s.put_hint(7, KS, b"b", &r, NOW + 1).unwrap();
    s.put_hint(9, KS, b"c", &r, NOW + 2).unwrap();
    s.put_hint(u64::MAX, KS, b"d", &r, NOW + 3).unwrap();
    assert!(h2 > h1);
    let hs = s.hints(7, 10).unwrap();
    assert_eq!(hs.iter().map(|h| h.key.clone()).collect::<Vec<_>>(), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(Record::decode(&hs[0].record).unwrap(), r);
    assert_eq!(hs[1].created_ms, NOW + 1);
    assert_eq!(s.hints(u64::MAX, 10).unwrap().len(), 1);
    assert_eq!(s.hint_counts().unwrap(), BTreeMap::from([(7, 2), (9, 1), (u64::MAX, 1)]));
    s.delete_hint(7, h1).unwrap();
    assert_eq!(s.hints(7, 10).unwrap().len(), 1);
    assert_eq!(s.hints(7, 0).unwrap().len(), 0);
}

/// Metadata values are stored and overwritten.
pub fn meta_round_trip(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    assert_eq!(s.get_meta("cursor/eu").unwrap(), None);
    s.put_meta("cursor/eu", b"1").unwrap();
    s.put_meta("cursor/eu", b"2").unwrap();
    assert_eq!(s.get_meta("cursor/eu").unwrap(), Some(b"2".to_vec()));
}

/// GC removes tombstones older than the horizon and nothing else.
pub fn gc_purges_only_old_garbage(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    put(&*s, b"live", b"v", NOW);
    s.merge(KS, b"old-tomb", &tombstone(NOW + 10, N1), Origin::Local).unwrap();
    s.merge(KS, b"new-tomb", &tombstone(NOW + 1000, N1), Origin::Local).unwrap();
    let horizon = ts(NOW + 500, N1);
    let mut calls = 0;
    let stats = s.collect_garbage(NOW + 2000, horizon, &mut |_| calls += 1).unwrap();
    assert!(calls >= 1, "progress is reported");
    assert_eq!(stats, crate::store::GcStats { scanned: 3, purged: 1 });
    assert!(s.get(KS, b"old-tomb").unwrap().is_none());
    assert!(s.get(KS, b"new-tomb").unwrap().is_some());
    assert_eq!(read_lww(&*s, b"live", NOW + 2000), Some(b"v".to_vec()));
    assert_eq!(s.record_count(), 2);
    assert_eq!(s.gc_horizon(), horizon);
    // A lower horizon never lowers it.
    s.collect_garbage(NOW + 2000, ts(NOW, N1), &mut |_| {}).unwrap();
    assert_eq!(s.gc_horizon(), horizon);
}

/// After a tombstone is collected, a stale replica's older live state cannot bring the key back.
pub fn gc_blocks_resurrection(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let old_live = lww(b"zombie", NOW, N2);
    s.merge(KS, b"k", &old_live, Origin::Local).unwrap();
    s.merge(KS, b"k", &tombstone(NOW + 10, N1), Origin::Local).unwrap();
    s.collect_garbage(NOW + 100, ts(NOW + 50, N1), &mut |_| {}).unwrap();
    assert!(s.get(KS, b"k").unwrap().is_none());
    assert_eq!(s.merge(KS, b"k", &old_live, Origin::Repair).unwrap(), MergeOutcome::BelowHorizon);
    assert!(s.get(KS, b"k").unwrap().is_none(), "no resurrection");
    let log = s.changes(0, 10).unwrap();
    assert_eq!(log.len(), 2, "the log still names both changes");
    assert!(log.iter().all(|e| e.record.is_none()), "the collected state is not shipped");
    // A genuinely newer write is accepted.
    let newer = lww(b"reborn", NOW + 60, N2);
    assert!(matches!(s.merge(KS, b"k", &newer, Origin::Repair).unwrap(), MergeOutcome::Changed { .. }));
    assert_eq!(read_lww(&*s, b"k", NOW + 100), Some(b"reborn".to_vec()));
}

/// An expired value reads as absent, is collected after the horizon, and does not come back.
pub fn expired_ttl_collected_not_resurrected(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let stale = lww(b"no-ttl", NOW - 5, N2);
    s.apply(
        KS,
        b"t",
        ValueKind::Lww,
        &Op::LwwPut { value: b"v".to_vec(), ttl_ms: Some(100) },
        &ctx(NOW, N1),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(read_lww(&*s, b"t", NOW + 50), Some(b"v".to_vec()));
    assert_eq!(read_lww(&*s, b"t", NOW + 100), None, "expired at the deadline");
    // Not garbage until the horizon passes its last modification.
    assert_eq!(s.collect_garbage(NOW + 200, ts(NOW - 1, N1), &mut |_| {}).unwrap().purged, 0);
    assert_eq!(s.collect_garbage(NOW + 200, ts(NOW + 1, N1), &mut |_| {}).unwrap().purged, 1);
    assert_eq!(s.merge(KS, b"t", &stale, Origin::Repair).unwrap(), MergeOutcome::BelowHorizon);
    assert!(s.get(KS, b"t").unwrap().is_none());
}

/// A key collected after expiry and written again is not disturbed by a stale expired copy
/// from a replica that has not collected it yet (regression: the stale copy's expiry and old
/// contents would otherwise merge into the new incarnation).
pub fn stale_expired_copy_cannot_revive_rewritten_key(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let expired = Record::apply(
        None,
        ValueKind::Counter,
        &Op::CounterAdd { delta: 5, ttl_ms: Some(10) },
        &ctx(NOW, N2),
        &Limits::default(),
    )
    .unwrap();
    s.merge(KS, b"c", &expired, Origin::Repair).unwrap();
    assert_eq!(s.collect_garbage(NOW + 100, ts(NOW + 50, N1), &mut |_| {}).unwrap().purged, 1);
    s.apply(
        KS,
        b"c",
        ValueKind::Counter,
        &Op::CounterAdd { delta: 1, ttl_ms: None },
        &ctx(NOW + 200, N1),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s.merge(KS, b"c", &expired, Origin::Repair).unwrap(), MergeOutcome::BelowHorizon);
    match s.get(KS, b"c").unwrap().unwrap().read(NOW + 300) {
        ReadValue::Counter(v) => assert_eq!(v, 1, "only the new incarnation's increment counts"),
        other => panic!("{other:?}"),
    }
}

/// The record count follows inserts, overwrites and purges.
pub fn record_count_tracks_writes(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    for i in 0..50u64 {
        put(&*s, format!("c{}", i % 20).as_bytes(), b"v", NOW + i);
    }
    assert_eq!(s.record_count(), 20);
    assert_eq!(s.digest(TokenRange::FULL).unwrap().count(), 20);
}

/// Concurrent increments of one key from many threads all count.
pub fn concurrent_increments_sum(f: &dyn EngineFactory) {
    let (_d, s) = fresh(f);
    let threads = 4u64;
    let per = 50u64;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..per {
                    let c = ctx(NOW + t * 1000 + i, NodeId(t + 1));
                    s.apply(
                        KS,
                        b"hot",
                        ValueKind::Counter,
                        &Op::CounterAdd { delta: 2, ttl_ms: None },
                        &c,
                        &Limits::default(),
                    )
                    .unwrap();
                }
            });
        }
    });
    match s.get(KS, b"hot").unwrap().unwrap().read(NOW) {
        ReadValue::Counter(v) => assert_eq!(v, (threads * per * 2) as i64),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.changes(0, 10_000).unwrap().len() as u64, threads * per);
}

/// A persistent engine reopened in the same directory has the same records, log, hints,
/// digests, sequence numbering and GC horizon.
pub fn reopen_keeps_everything(f: &dyn EngineFactory) {
    if !f.persistent() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (digest, seq, horizon) = {
        let s = f.open(dir.path());
        for i in 0..60u64 {
            put(&*s, format!("r{i}").as_bytes(), b"v", NOW + i);
        }
        s.merge(KS, b"gone", &tombstone(NOW, N1), Origin::Local).unwrap();
        s.put_hint(3, KS, b"r1", &lww(b"h", NOW, N1), NOW).unwrap();
        s.collect_garbage(NOW + 100, ts(NOW + 1, N1), &mut |_| {}).unwrap();
        (s.digest(TokenRange::FULL).unwrap(), s.visible_seq(), s.gc_horizon())
    };
    let s = f.open(dir.path());
    assert_eq!(s.digest(TokenRange::FULL).unwrap(), digest);
    assert_eq!(s.visible_seq(), seq);
    assert_eq!(s.gc_horizon(), horizon);
    assert_eq!(s.record_count(), 60);
    assert_eq!(s.hint_counts().unwrap(), BTreeMap::from([(3, 1)]));
    let h2 = s.put_hint(3, KS, b"r2", &lww(b"h", NOW, N1), NOW).unwrap();
    assert_eq!(s.hints(3, 10).unwrap().last().unwrap().seq, h2, "hint numbering continues");
    put(&*s, b"after", b"v", NOW + 500);
    assert_eq!(s.visible_seq(), seq + 1, "log numbering continues");
    assert_eq!(read_lww(&*s, b"r59", NOW), Some(b"v".to_vec()));
}

/// `get_cached` answers exactly what `get` answers, or not at all; an engine that never blocks
/// always answers. A persistent engine reopened after a flush holds the records on disk only:
/// the first cached read of one does not answer, and once `get` has read it, it does.
pub fn cached_reads_answer_like_get(f: &dyn EngineFactory) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = f.open(dir.path());
        for i in 0..60u64 {
            put(&*s, format!("c{i}").as_bytes(), b"v", NOW + i);
        }
        s.merge(KS, b"gone", &tombstone(NOW, N1), Origin::Local).unwrap();
        for key in [&b"c0"[..], b"c59", b"gone", b"never-written"] {
            let got = s.get(KS, key).unwrap();
            match s.get_cached(KS, key).unwrap() {
                Some(cached) => assert_eq!(cached, got, "key {key:?}"),
                None => assert!(f.persistent(), "an engine that never blocks must answer"),
            }
        }
        s.flush().unwrap();
    }
    if !f.persistent() {
        return;
    }
    let s = f.open(dir.path());
    assert_eq!(s.get_cached(KS, b"c7").unwrap(), None, "cold: on disk only, not answered from memory");
    let got = s.get(KS, b"c7").unwrap();
    assert!(got.is_some());
    assert_eq!(s.get_cached(KS, b"c7").unwrap(), Some(got), "warm after a read");
}
