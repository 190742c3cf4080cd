//! Anti-entropy planning: what two replicas compare and how, without I/O.
//!
//! Two replicas compare exactly the token ranges both replicate ([`shared_ranges`]), so their
//! digests cover the same keys. The comparison descends three levels of the store's Merkle
//! segments (65,536 segments of the 64-bit ring, XOR of entry hashes each):
//!
//! 1. 256 **buckets** (segments folded by `segment >> 8`): one small message for the whole
//!    range set;
//! 2. the **segments** of the buckets that differ;
//! 3. the `(storage key, entry hash)` lists of the segments that differ, diffed with
//!    [`meridian_local::merkle::diff_keys`].
//!
//! Then the differing records are exchanged both ways and merged (a join, so the order and
//! repetition do not matter). The algorithm and its invariants are in
//! `docs/algorithms/anti-entropy.md`; the node's driver is `node/repair.rs`.

use meridian_crdt::NodeId;
use meridian_local::TokenRange;

use crate::ring::Ring;

pub use meridian_local::merkle::{
    bucket_of, buckets, differing, differing_keys, digest_of, segment_keys, segments_in, BUCKET_SHIFT,
};

/// The ranges of `ring` (at replication factor `n`) that both `a` and `b` replicate, adjacent
/// ones merged, ordered by end token.
pub fn shared_ranges(ring: &Ring, n: usize, a: NodeId, b: NodeId) -> Vec<TokenRange> {
    let ranges: Vec<TokenRange> = ring
        .range_replicas(n)
        .into_iter()
        .filter(|(_, list)| list.contains(&a) && list.contains(&b))
        .map(|(r, _)| r)
        .collect();
    merge_touching(ranges)
}

/// Merges ranges that touch (`x.end == y.start`), including across the wrap; the input is
/// ordered by end token and disjoint.
pub fn merge_touching(ranges: Vec<TokenRange>) -> Vec<TokenRange> {
    let mut out: Vec<TokenRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    if out.len() > 1 && out[out.len() - 1].end == out[0].start {
        let tail = out.pop().expect("more than one range");
        out[0].start = tail.start;
    }
    if out.len() == 1 && out[0].start == out[0].end {
        out[0] = TokenRange::FULL;
    }
    out
}

/// The inclusive token spans of a range set.
fn spans(ranges: &[TokenRange]) -> Vec<(u64, u64)> {
    ranges.iter().flat_map(|r| r.spans()).collect()
}

/// A range from an inclusive span `[lo, hi]`.
fn from_span(lo: u64, hi: u64) -> TokenRange {
    // (lo - 1, hi]; lo = 0 wraps to (MAX, hi], which holds exactly [0, hi].
    TokenRange::new(lo.wrapping_sub(1), hi)
}

/// The part of `ranges` inside `filter` (`None`: all of them).
pub fn restrict(ranges: &[TokenRange], filter: Option<TokenRange>) -> Vec<TokenRange> {
    let Some(filter) = filter else { return ranges.to_vec() };
    let fs = filter.spans();
    let mut out = Vec::new();
    for (lo, hi) in spans(ranges) {
        for &(flo, fhi) in &fs {
            let (l, h) = (lo.max(flo), hi.min(fhi));
            if l <= h {
                out.push(from_span(l, h));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> TokenRange {
        TokenRange::new(start, end)
    }

    #[test]
    fn restrict_intersects_wrapping_ranges() {
        // Everything restricted to (10, 20] is (10, 20].
        assert_eq!(restrict(&[TokenRange::FULL], Some(r(10, 20))), vec![r(10, 20)]);
        // A wrapping range (100, 5] restricted to (0, 200] is (0, 5] and (100, 200].
        let got = restrict(&[r(100, 5)], Some(r(0, 200)));
        assert_eq!(got, vec![r(0, 5), r(100, 200)]);
        // Token 0 itself: (MAX, 3] holds 0..=3.
        let got = restrict(&[r(u64::MAX - 1, 3)], Some(r(u64::MAX, 1)));
        assert_eq!(got, vec![r(u64::MAX, 1)]);
        assert!(restrict(&[r(10, 20)], Some(r(30, 40))).is_empty());
        assert_eq!(restrict(&[r(10, 20)], None), vec![r(10, 20)]);
    }

    #[test]
    fn merge_touching_joins_runs_and_the_wrap() {
        assert_eq!(merge_touching(vec![r(0, 5), r(5, 9), r(20, 30)]), vec![r(0, 9), r(20, 30)]);
        assert_eq!(merge_touching(vec![r(30, 5), r(5, 10), r(20, 30)]), vec![r(20, 10)]);
        assert_eq!(merge_touching(vec![r(30, 5), r(5, 30)]), vec![TokenRange::FULL]);
    }

    #[test]
    fn shared_ranges_of_three_nodes_at_rf3_is_the_whole_ring() {
        let ring = Ring::new(1, (1..=3).map(|n| (NodeId(n), crate::ring::tokens_for(NodeId(n), 16))));
        assert_eq!(shared_ranges(&ring, 3, NodeId(1), NodeId(2)), vec![TokenRange::FULL]);
        // At RF 1 two nodes share nothing.
        assert!(shared_ranges(&ring, 1, NodeId(1), NodeId(2)).is_empty());
    }

    #[test]
    fn differing_lists_one_sided_and_changed() {
        use std::collections::BTreeMap;

        use meridian_local::SegmentDigest;
        let d = |h| SegmentDigest { hash: h, count: 1 };
        let a = BTreeMap::from([(1, d(1)), (2, d(2))]);
        let b = BTreeMap::from([(2, d(3)), (4, d(4))]);
        assert_eq!(differing(&a, &b), vec![1, 2, 4]);
        assert!(differing(&a, &a).is_empty());
    }
}
