//! Incremental Merkle digests (TicTac trees, as in Riak).
//!
//! The ring is cut into [`SEGMENTS`] segments by the top 16 bits of the token. Each segment
//! digest is the XOR of `entry_hash(storage key, record bytes)` over the records in it, with
//! their count. XOR is commutative and its own inverse, so a write updates its segment in
//! O(1) without reading anything else: XOR out the old entry hash, XOR in the new one. The
//! digest is therefore independent of the order writes were applied in: two replicas with
//! the same records have the same segment digests, whatever their histories.
//!
//! A token range's digest is the list of its non-empty segments; segments the range only
//! partly covers are recomputed by scanning the covered keys (at most two per contiguous
//! span). Two digests of the same range compare root first (XOR of all segments), then
//! segment by segment; the differing segments' key hashes are compared to find the keys to
//! stream. A two-level tree over 65,536 leaves is enough: a vnode range of a 3-node region
//! at 256 vnodes covers about 85 segments, so comparing them all costs less than one round
//! trip of a deeper tree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::engine::SegmentDigest;
use crate::error::StoreError;
use crate::keys::TokenRange;
use crate::store::Store;

/// `(storage key, entry hash)` of the records of one segment, sorted by key.
pub type KeyList = Vec<(Vec<u8>, u64)>;

/// Segments per bucket: 65,536 segments fold into 256 buckets of 256 (the first level of a
/// comparison between replicas or regions).
pub const BUCKET_SHIFT: u32 = 8;

/// The bucket of a segment.
pub fn bucket_of(segment: u16) -> u16 {
    segment >> BUCKET_SHIFT
}

/// The digest of a set of disjoint ranges: the store's digest of each, folded.
pub fn digest_of(store: &dyn Store, ranges: &[TokenRange]) -> Result<RangeDigest, StoreError> {
    let mut out = RangeDigest::default();
    for r in ranges {
        for (seg, d) in store.digest(*r)?.segments {
            out.segments.entry(seg).or_default().fold(d);
        }
    }
    out.segments.retain(|_, d| !d.is_empty());
    Ok(out)
}

/// Folds a digest's segments into buckets (non-empty ones only).
pub fn buckets(digest: &RangeDigest) -> BTreeMap<u16, SegmentDigest> {
    let mut out: BTreeMap<u16, SegmentDigest> = BTreeMap::new();
    for (seg, d) in &digest.segments {
        out.entry(bucket_of(*seg)).or_default().fold(*d);
    }
    out.retain(|_, d| !d.is_empty());
    out
}

/// The segments of `digest` that fall in `wanted` buckets.
pub fn segments_in(digest: &RangeDigest, wanted: &[u16]) -> BTreeMap<u16, SegmentDigest> {
    digest.segments.iter().filter(|(s, _)| wanted.contains(&bucket_of(**s))).map(|(s, d)| (*s, *d)).collect()
}

/// The key lists of `ranges` in each of `segments`.
pub fn segment_keys(
    store: &dyn Store,
    ranges: &[TokenRange],
    segments: &[u16],
) -> Result<Vec<(u16, KeyList)>, StoreError> {
    let mut out = Vec::with_capacity(segments.len());
    for &seg in segments {
        let mut entries = Vec::new();
        for r in ranges {
            entries.extend(store.segment_entries(*r, seg)?);
        }
        entries.sort_unstable();
        out.push((seg, entries));
    }
    Ok(out)
}

/// The numbers whose digests differ between two maps (number → digest): present on one side
/// only, or with different digests. Sorted.
pub fn differing(a: &BTreeMap<u16, SegmentDigest>, b: &BTreeMap<u16, SegmentDigest>) -> Vec<u16> {
    let mut out: Vec<u16> = a.iter().filter(|(k, d)| b.get(k) != Some(d)).map(|(k, _)| *k).collect();
    out.extend(b.keys().filter(|k| !a.contains_key(k)));
    out.sort_unstable();
    out.dedup();
    out
}

/// The keys that differ between two sides' key lists of the same segments (each side's lists
/// by segment; a segment missing on one side counts as empty there).
pub fn differing_keys(ours: &[(u16, KeyList)], theirs: &[(u16, KeyList)]) -> Vec<Vec<u8>> {
    let empty: KeyList = Vec::new();
    let mut segs: Vec<u16> = ours.iter().chain(theirs).map(|(s, _)| *s).collect();
    segs.sort_unstable();
    segs.dedup();
    let mut out = Vec::new();
    for seg in segs {
        let a = ours.iter().find(|(s, _)| *s == seg).map(|(_, l)| l).unwrap_or(&empty);
        let b = theirs.iter().find(|(s, _)| *s == seg).map(|(_, l)| l).unwrap_or(&empty);
        out.extend(diff_keys(a, b));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Number of segments (leaves) of the tree.
pub const SEGMENTS: usize = 1 << 16;

/// The segment of `token`.
pub fn segment_of(token: u64) -> u16 {
    (token >> 48) as u16
}

/// The inclusive token interval of `segment`.
pub fn segment_bounds(segment: u16) -> (u64, u64) {
    let lo = (segment as u64) << 48;
    (lo, lo | ((1u64 << 48) - 1))
}

/// The hash of one stored entry. Never 0 in practice; 0 is only the empty digest.
pub fn entry_hash(storage_key: &[u8], record: &[u8]) -> u64 {
    // Seeded with the key so that a record moved to another key hashes differently.
    xxh3_64_with_seed(record, xxhash_rust::xxh3::xxh3_64(storage_key))
}

/// The digest of a token range: its non-empty segments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDigest {
    /// Non-empty segments, by number.
    pub segments: BTreeMap<u16, SegmentDigest>,
}

impl RangeDigest {
    /// The root: all segments folded together.
    pub fn root(&self) -> SegmentDigest {
        let mut root = SegmentDigest::default();
        for d in self.segments.values() {
            root.fold(*d);
        }
        root
    }

    /// Number of entries in the range.
    pub fn count(&self) -> u64 {
        self.root().count
    }

    /// The segments whose digests differ between `self` and `other` (present in only one
    /// counts as differing), in order.
    pub fn diff(&self, other: &RangeDigest) -> Vec<u16> {
        if self.root() == other.root() && self.segments == other.segments {
            return Vec::new();
        }
        let mut out: Vec<u16> =
            self.segments.iter().filter(|(s, d)| other.segments.get(s) != Some(d)).map(|(s, _)| *s).collect();
        out.extend(other.segments.keys().filter(|s| !self.segments.contains_key(s)));
        out.sort_unstable();
        out
    }
}

/// Given the `(storage key, entry hash)` lists of one segment on two replicas (each sorted
/// by key), the keys whose entries differ: missing on one side or hashed differently.
pub fn diff_keys(a: &[(Vec<u8>, u64)], b: &[(Vec<u8>, u64)]) -> Vec<Vec<u8>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                if x.1 != y.1 {
                    out.push(x.0.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(x.0.clone());
                i += 1;
            }
            (Some(_), Some(y)) => {
                out.push(y.0.clone());
                j += 1;
            }
            (Some(x), None) => {
                out.push(x.0.clone());
                i += 1;
            }
            (None, Some(y)) => {
                out.push(y.0.clone());
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_bounds_cover_the_ring() {
        assert_eq!(segment_bounds(0).0, 0);
        assert_eq!(segment_bounds(u16::MAX).1, u64::MAX);
        assert_eq!(segment_bounds(1).0, segment_bounds(0).1 + 1);
        assert_eq!(segment_of(segment_bounds(77).0), 77);
        assert_eq!(segment_of(segment_bounds(77).1), 77);
    }

    #[test]
    fn diff_finds_missing_and_changed() {
        let a = vec![(b"a".to_vec(), 1), (b"b".to_vec(), 2), (b"d".to_vec(), 4)];
        let b = vec![(b"b".to_vec(), 3), (b"c".to_vec(), 5), (b"d".to_vec(), 4)];
        assert_eq!(diff_keys(&a, &b), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(diff_keys(&a, &a).is_empty());
    }

    #[test]
    fn range_digest_diff() {
        let mut x = RangeDigest::default();
        let mut y = RangeDigest::default();
        x.segments.insert(1, SegmentDigest { hash: 5, count: 1 });
        y.segments.insert(1, SegmentDigest { hash: 5, count: 1 });
        assert!(x.diff(&y).is_empty());
        y.segments.insert(9, SegmentDigest { hash: 7, count: 1 });
        x.segments.insert(3, SegmentDigest { hash: 7, count: 1 });
        assert_eq!(x.diff(&y), vec![3, 9]);
    }
}
