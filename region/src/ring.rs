//! Consistent hashing: the token ring, virtual nodes and replica placement.
//!
//! The ring is the 64-bit token space `0..=u64::MAX`, closed into a circle. A key sits at its
//! token, [`meridian_local::token_of`]`(keyspace, key)`. Each physical node places `vnodes`
//! tokens on the ring (default [`DEFAULT_VNODES`]); a token `t` of node `A` makes `A` the owner of
//! the **vnode range** `(p, t]`, where `p` is the previous token on the ring (wrapping past
//! `u64::MAX`), so a key's **primary** is the owner of the first vnode token `>= key token`.
//!
//! The **preference list** of a token for replication factor `n` is the primary followed by the
//! next distinct physical nodes met walking clockwise, `min(n, nodes)` of them in all. It is
//! constant over a vnode range, so the ring can also be read as a partition into ranges, each
//! with one preference list ([`Ring::range_replicas`]); [`Ring::ranges_of`] and [`Ring::diff`]
//! are views of that partition for anti-entropy and for join/decommission streaming.
//!
//! Tokens: [`tokens_for`] derives a node's tokens from its id with a fixed hash, so a node can
//! compute its own tokens without coordination, but a [`Ring`] is always built from explicit
//! `(node, tokens)` lists (membership gossip carries each node's tokens), so the placement of
//! an existing node never depends on this function again. Two nodes claiming the same token:
//! the smaller node id owns it.
//!
//! A ring is immutable and carries a **version** assigned by membership; a change builds a new
//! ring ([`Ring::with_node`], [`Ring::without_node`]).
//!
//! The algorithm, its invariants and the tests that prove them: `docs/algorithms/ring.md`.

use std::collections::BTreeMap;
use std::fmt;

use meridian_crdt::NodeId;
use meridian_local::{token_of, TokenRange};
use xxhash_rust::xxh3::xxh3_64;

use crate::RegionError;

/// Virtual nodes (tokens) per physical node unless configured otherwise.
pub const DEFAULT_VNODES: usize = 256;

/// Domain-separation prefix of the token hash; the `v1` names this token derivation. Changing
/// the derivation means a new prefix (existing nodes keep the tokens they gossip).
const TOKEN_DOMAIN: &[u8; 16] = b"meridian/ring/v1";

/// The tokens node `node` places on the ring when it has `vnodes` virtual nodes.
///
/// Token `i` (for `i` in `0..vnodes`) is `xxh3_64` (XXH3, 64-bit, seed 0) of the 32 bytes
/// `b"meridian/ring/v1" ‖ node id (u64, big-endian) ‖ i (u64, big-endian)`. The result is
/// therefore stable across versions, platforms and endianness, and prefix-stable: the tokens
/// for `k` vnodes are the first `k` of the tokens for any larger count, so changing a node's
/// vnode count only adds or removes tokens. Tokens are returned in vnode order (unsorted); the
/// astronomically unlikely duplicate is removed when a [`Ring`] is built.
pub fn tokens_for(node: NodeId, vnodes: usize) -> Vec<u64> {
    let mut input = [0u8; 32];
    input[..16].copy_from_slice(TOKEN_DOMAIN);
    input[16..24].copy_from_slice(&node.0.to_be_bytes());
    (0..vnodes as u64)
        .map(|i| {
            input[24..].copy_from_slice(&i.to_be_bytes());
            xxh3_64(&input)
        })
        .collect()
}

/// A range whose replica set changes between two rings (see [`Ring::diff`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeChange {
    /// The tokens concerned.
    pub range: TokenRange,
    /// The preference list in the old ring.
    pub old: Vec<NodeId>,
    /// The preference list in the new ring.
    pub new: Vec<NodeId>,
}

impl RangeChange {
    /// Nodes that replicate the range in the new ring but not in the old one: they must
    /// receive its data (streaming targets).
    pub fn gained(&self) -> Vec<NodeId> {
        self.new.iter().filter(|n| !self.old.contains(n)).copied().collect()
    }

    /// Nodes that replicated the range in the old ring but not in the new one: they may drop
    /// its data once the new replicas have it.
    pub fn lost(&self) -> Vec<NodeId> {
        self.old.iter().filter(|n| !self.new.contains(n)).copied().collect()
    }
}

/// An immutable, versioned token ring.
///
/// Built from each member's tokens; equal member lists build equal rings whatever their order.
#[derive(Clone, PartialEq, Eq)]
pub struct Ring {
    version: u64,
    /// Each member's tokens as given (sorted, deduplicated). Kept so that a rebuild without a
    /// node hands back the tokens it had won in collisions.
    members: BTreeMap<NodeId, Vec<u64>>,
    /// Vnode tokens, ascending and distinct.
    tokens: Vec<u64>,
    /// `owners[i]` owns the vnode range `(tokens[i - 1], tokens[i]]` (wrapping for `i == 0`).
    owners: Vec<NodeId>,
    /// Nodes owning at least one vnode, ascending.
    nodes: Vec<NodeId>,
}

impl Ring {
    /// Builds the ring `version` from each member's tokens.
    ///
    /// A member listed twice gets the union of its lists; a member with no tokens is not on the
    /// ring. Where several members claim the same token, the smallest node id owns it.
    pub fn new(version: u64, members: impl IntoIterator<Item = (NodeId, Vec<u64>)>) -> Self {
        let mut by_node: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        for (node, tokens) in members {
            by_node.entry(node).or_default().extend(tokens);
        }
        by_node.retain(|_, tokens| {
            tokens.sort_unstable();
            tokens.dedup();
            !tokens.is_empty()
        });
        Self::build(version, by_node)
    }

    fn build(version: u64, members: BTreeMap<NodeId, Vec<u64>>) -> Self {
        let mut vnodes: Vec<(u64, NodeId)> =
            members.iter().flat_map(|(&node, tokens)| tokens.iter().map(move |&t| (t, node))).collect();
        // Sorting by (token, node) puts the smallest claimant of a token first; dedup keeps it.
        vnodes.sort_unstable();
        vnodes.dedup_by_key(|(token, _)| *token);
        let (tokens, owners): (Vec<u64>, Vec<NodeId>) = vnodes.into_iter().unzip();
        let mut nodes = owners.clone();
        nodes.sort_unstable();
        nodes.dedup();
        Self { version, members, tokens, owners, nodes }
    }

    /// The empty ring (no nodes): every preference list is empty.
    pub fn empty(version: u64) -> Self {
        Self::build(version, BTreeMap::new())
    }

    /// A new ring, `version`, with `node` added (or its tokens replaced by `tokens`).
    pub fn with_node(&self, version: u64, node: NodeId, tokens: Vec<u64>) -> Self {
        let mut members = self.members.clone();
        members.remove(&node);
        Self::new(version, members.into_iter().chain([(node, tokens)]))
    }

    /// A new ring, `version`, without `node` (unchanged apart from the version if it is absent).
    pub fn without_node(&self, version: u64, node: NodeId) -> Self {
        let mut members = self.members.clone();
        members.remove(&node);
        Self::build(version, members)
    }

    /// The version membership gave this ring.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The nodes on the ring (owning at least one vnode), ascending.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// How many physical nodes are on the ring.
    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// How many vnodes (distinct tokens) are on the ring.
    pub fn len_vnodes(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the ring has no nodes.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `node` owns at least one vnode.
    pub fn contains_node(&self, node: NodeId) -> bool {
        self.nodes.binary_search(&node).is_ok()
    }

    /// The tokens `node` was given (sorted; including any lost to a smaller node id), as
    /// gossip should carry them; `None` if it is not a member.
    pub fn tokens_of(&self, node: NodeId) -> Option<&[u64]> {
        self.members.get(&node).map(Vec::as_slice)
    }

    /// Every vnode as `(token, owner)`, in token order.
    pub fn vnodes(&self) -> impl Iterator<Item = (u64, NodeId)> + '_ {
        self.tokens.iter().copied().zip(self.owners.iter().copied())
    }

    /// The index of the vnode whose range contains `token`: the first vnode token `>= token`,
    /// wrapping to 0 past the last. The ring must not be empty.
    fn vnode_index(&self, token: u64) -> usize {
        let i = self.tokens.partition_point(|&t| t < token);
        if i == self.tokens.len() {
            0
        } else {
            i
        }
    }

    /// The primary (first replica) of `token`; `None` on an empty ring.
    pub fn owner(&self, token: u64) -> Option<NodeId> {
        if self.is_empty() {
            return None;
        }
        Some(self.owners[self.vnode_index(token)])
    }

    /// The preference list of `token` for replication factor `n`: the owner of the vnode range
    /// containing `token`, then the next distinct physical nodes clockwise, `min(n, nodes)` in
    /// all (every node when the ring has fewer than `n`).
    ///
    /// One binary search and one allocation of `min(n, nodes)` ids.
    pub fn replicas(&self, token: u64, n: usize) -> Vec<NodeId> {
        if self.is_empty() {
            return Vec::new();
        }
        self.replicas_from(self.vnode_index(token), n)
    }

    /// As [`Ring::replicas`], but fails with [`RegionError::NotEnoughNodes`] when the ring has
    /// fewer than `n` nodes.
    pub fn replicas_checked(&self, token: u64, n: usize) -> Result<Vec<NodeId>, RegionError> {
        if self.nodes.len() < n {
            return Err(RegionError::NotEnoughNodes { nodes: self.nodes.len(), replication_factor: n });
        }
        Ok(self.replicas(token, n))
    }

    /// The preference list of `key` in `keyspace` (at `token_of(keyspace, key)`).
    pub fn replicas_for_key(&self, keyspace: &str, key: &[u8], n: usize) -> Vec<NodeId> {
        self.replicas(token_of(keyspace, key), n)
    }

    /// The preference list of the vnode range at index `start`.
    fn replicas_from(&self, start: usize, n: usize) -> Vec<NodeId> {
        let want = n.min(self.nodes.len());
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        for node in self.owners[start..].iter().chain(&self.owners[..start]) {
            if !out.contains(node) {
                out.push(*node);
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }

    /// The ring as a partition into ranges, each with its preference list for replication
    /// factor `n`, ordered by end token (so a range wrapping past `u64::MAX` comes first).
    ///
    /// Ranges are vnode ranges, adjacent ones merged when their preference lists are equal
    /// (same nodes in the same order), so a range is the unit anti-entropy compares and
    /// streaming moves. A ring whose every token has the same list is one range,
    /// [`TokenRange::FULL`]; the empty ring has no ranges.
    pub fn range_replicas(&self, n: usize) -> Vec<(TokenRange, Vec<NodeId>)> {
        let lists = (0..self.tokens.len()).map(|i| self.replicas_from(i, n));
        merge_adjacent(&self.tokens, lists)
    }

    /// Every range (of [`Ring::range_replicas`]) for which `node` is one of the `n` replicas:
    /// disjoint, ordered by end token, each with a single preference list; their union is
    /// exactly the tokens `t` with `node` in `replicas(t, n)`.
    pub fn ranges_of(&self, node: NodeId, n: usize) -> Vec<TokenRange> {
        self.range_replicas(n).into_iter().filter(|(_, list)| list.contains(&node)).map(|(r, _)| r).collect()
    }

    /// The ranges `node` is primary for: its vnode ranges, runs of consecutive vnodes merged.
    pub fn primary_ranges(&self, node: NodeId) -> Vec<TokenRange> {
        self.ranges_of(node, 1)
    }

    /// The fraction of the ring (of the 2^64 tokens) each node replicates at replication
    /// factor `n`, computed exactly from the token ranges (then rounded to `f64`). At `n = 1`
    /// the fractions sum to 1; in general to `min(n, nodes)`.
    pub fn ownership(&self, n: usize) -> BTreeMap<NodeId, f64> {
        self.owned_tokens(n).into_iter().map(|(node, count)| (node, count as f64 / TOKENS_IN_RING as f64)).collect()
    }

    /// How many tokens each node replicates at replication factor `n`, exactly (a node may own
    /// all 2^64 tokens, hence `u128`).
    pub fn owned_tokens(&self, n: usize) -> BTreeMap<NodeId, u128> {
        let mut owned: BTreeMap<NodeId, u128> = self.nodes.iter().map(|&node| (node, 0)).collect();
        for (range, list) in self.range_replicas(n) {
            let width = range_width(range);
            for node in list {
                *owned.get_mut(&node).expect("replicas are ring nodes") += width;
            }
        }
        owned
    }

    /// The ranges whose replica *set* at replication factor `n` differs between `self` (old)
    /// and `new`: the streaming plan of a join or a decommission. Ordered by end token;
    /// adjacent ranges with the same old and new preference lists are merged. Ranges where only
    /// the order of the replicas changes (a new primary, same data placement) are not listed.
    pub fn diff(&self, new: &Ring, n: usize) -> Vec<RangeChange> {
        // Between two consecutive tokens of either ring both preference lists are constant.
        let mut bounds: Vec<u64> = self.tokens.iter().chain(&new.tokens).copied().collect();
        bounds.sort_unstable();
        bounds.dedup();
        let pairs = bounds.iter().map(|&t| (self.replicas(t, n), new.replicas(t, n)));
        merge_adjacent(&bounds, pairs)
            .into_iter()
            .filter(|(_, (old, new))| !same_set(old, new))
            .map(|(range, (old, new))| RangeChange { range, old, new })
            .collect()
    }
}

impl fmt::Debug for Ring {
    // Thousands of tokens are noise in logs: show the shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("version", &self.version)
            .field("nodes", &self.nodes)
            .field("vnodes", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Tokens on the ring, 2^64.
const TOKENS_IN_RING: u128 = 1 << 64;

/// How many tokens `range` holds (`(t, t]` is the whole ring).
fn range_width(range: TokenRange) -> u128 {
    match range.end.wrapping_sub(range.start) {
        0 => TOKENS_IN_RING,
        w => u128::from(w),
    }
}

/// Whether two replica lists (each without duplicates) hold the same nodes.
fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|n| b.contains(n))
}

/// Turns `values[i]`, the value of the range `(bounds[i - 1], bounds[i]]` (wrapping for
/// `i == 0`), into ranges ordered by end token, adjacent equal values merged (also across
/// the wrap); a single remaining range is [`TokenRange::FULL`].
fn merge_adjacent<V: PartialEq>(bounds: &[u64], values: impl Iterator<Item = V>) -> Vec<(TokenRange, V)> {
    let Some(&last) = bounds.last() else {
        return Vec::new();
    };
    let mut out: Vec<(TokenRange, V)> = Vec::new();
    let mut start = last;
    for (&end, value) in bounds.iter().zip(values) {
        match out.last_mut() {
            Some((range, prev)) if *prev == value => range.end = end,
            _ => out.push((TokenRange::new(start, end), value)),
        }
        start = end;
    }
    if out.len() > 1 && out[0].1 == out[out.len() - 1].1 {
        let (tail, _) = out.pop().expect("more than one range");
        out[0].0.start = tail.start;
    }
    if out.len() == 1 {
        out[0].0 = TokenRange::FULL;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(members: &[(u64, &[u64])]) -> Ring {
        Ring::new(1, members.iter().map(|&(n, t)| (NodeId(n), t.to_vec())))
    }

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&n| NodeId(n)).collect()
    }

    #[test]
    fn token_hash_golden_vectors() {
        // These values are the ring: if they change, every node computes different tokens.
        let t = tokens_for(NodeId(1), 3);
        assert_eq!(t, GOLDEN_NODE_1);
        assert_eq!(tokens_for(NodeId(u64::MAX), 1), GOLDEN_NODE_MAX);
        // Prefix-stable: more vnodes only add tokens.
        assert_eq!(tokens_for(NodeId(7), 256)[..128], tokens_for(NodeId(7), 128)[..]);
        assert!(tokens_for(NodeId(7), 0).is_empty());
    }

    const GOLDEN_NODE_1: [u64; 3] = [15618753499776242186, 13834119659845093621, 17479582434350547731];
    const GOLDEN_NODE_MAX: [u64; 1] = [14900021972647847650];

    #[test]
    fn seed_example_preference_list() {
        // Section 7.1 of the seed: B at 33 and 180, A at 98, C at 150; a key at 50.
        let r = ring(&[(1, &[98]), (2, &[33, 180]), (3, &[150])]);
        assert_eq!(r.owner(50), Some(NodeId(1)));
        assert_eq!(r.replicas(50, 3), ids(&[1, 3, 2]));
        // A token equal to a vnode token belongs to that vnode; past the last one, wrap.
        assert_eq!(r.replicas(98, 2), ids(&[1, 3]));
        assert_eq!(r.replicas(99, 2), ids(&[3, 2]));
        assert_eq!(r.replicas(181, 3), ids(&[2, 1, 3]));
        assert_eq!(r.replicas(0, 1), ids(&[2]));
    }

    #[test]
    fn fewer_nodes_than_n() {
        let r = ring(&[(1, &[10, 20]), (2, &[30])]);
        assert_eq!(r.replicas(15, 3), ids(&[1, 2]));
        assert_eq!(r.replicas(15, 0), ids(&[]));
        let err = r.replicas_checked(15, 3).unwrap_err();
        assert!(matches!(err, RegionError::NotEnoughNodes { nodes: 2, replication_factor: 3 }));
        assert_eq!(r.replicas_checked(15, 2).unwrap(), ids(&[1, 2]));
    }

    #[test]
    fn empty_ring() {
        let r = Ring::empty(0);
        assert!(r.is_empty());
        assert_eq!(r.owner(5), None);
        assert!(r.replicas(5, 3).is_empty());
        assert!(r.range_replicas(3).is_empty());
        assert!(r.ownership(1).is_empty());
        assert!(r.replicas_checked(5, 1).is_err());
        assert_eq!(Ring::new(0, [(NodeId(1), vec![])]), r);
    }

    #[test]
    fn token_collision_goes_to_the_smaller_node_id() {
        let r = ring(&[(9, &[100, 200]), (4, &[100])]);
        assert_eq!(r.vnodes().collect::<Vec<_>>(), vec![(100, NodeId(4)), (200, NodeId(9))]);
        // Removing the winner hands the token back.
        let back = r.without_node(2, NodeId(4));
        assert_eq!(back.vnodes().collect::<Vec<_>>(), vec![(100, NodeId(9)), (200, NodeId(9))]);
        assert_eq!(back.tokens_of(NodeId(9)), Some(&[100, 200][..]));
    }

    #[test]
    fn member_order_and_duplicates_do_not_matter() {
        let a = ring(&[(1, &[5, 1]), (2, &[3]), (1, &[7, 5])]);
        let b = ring(&[(2, &[3]), (1, &[1, 5, 7])]);
        assert_eq!(a, b);
        assert_eq!(a.len_vnodes(), 4);
        assert_eq!(format!("{a:?}"), "Ring { version: 1, nodes: [NodeId(1), NodeId(2)], vnodes: 4, .. }");
    }

    #[test]
    fn single_node_owns_the_full_ring() {
        let r = ring(&[(1, &[10, 20, 30])]);
        assert_eq!(r.range_replicas(3), vec![(TokenRange::FULL, ids(&[1]))]);
        assert_eq!(r.primary_ranges(NodeId(1)), vec![TokenRange::FULL]);
        assert_eq!(r.owned_tokens(1)[&NodeId(1)], TOKENS_IN_RING);
        assert_eq!(r.ownership(3)[&NodeId(1)], 1.0);
    }

    #[test]
    fn ranges_merge_runs_and_wrap() {
        // 1 owns (40, 10] (wrapping) and (10, 20]; 2 owns (20, 30]; 1 owns (30, 40].
        let r = ring(&[(1, &[10, 20, 40]), (2, &[30])]);
        assert_eq!(
            r.range_replicas(1),
            vec![(TokenRange::new(30, 20), ids(&[1])), (TokenRange::new(20, 30), ids(&[2]))]
        );
        assert_eq!(r.primary_ranges(NodeId(1)), vec![TokenRange::new(30, 20)]);
        // N = 2: (40, 10] and (10, 20] list [1, 2], (20, 30] lists [2, 1], (30, 40] lists
        // [1, 2] again: merged across the wrap into (30, 20].
        assert_eq!(
            r.range_replicas(2),
            vec![(TokenRange::new(30, 20), ids(&[1, 2])), (TokenRange::new(20, 30), ids(&[2, 1]))]
        );
        let owned = r.owned_tokens(1);
        assert_eq!(owned[&NodeId(2)], 10);
        assert_eq!(owned[&NodeId(1)], TOKENS_IN_RING - 10);
    }

    #[test]
    fn diff_lists_only_changed_sets() {
        let old = ring(&[(1, &[100]), (2, &[200]), (3, &[300])]);
        let new = old.with_node(2, NodeId(4), vec![150]);
        assert_eq!(new.version(), 2);
        // N = 1: only (100, 150] moves, from 2 to 4.
        assert_eq!(
            old.diff(&new, 1),
            vec![RangeChange { range: TokenRange::new(100, 150), old: ids(&[2]), new: ids(&[4]) }]
        );
        // N = 2: (100, 150] was {2, 3}, now {4, 2}; (300, 100] was {1, 2}, now {1, 4}.
        let d = old.diff(&new, 2);
        assert_eq!(
            d,
            vec![
                RangeChange { range: TokenRange::new(300, 100), old: ids(&[1, 2]), new: ids(&[1, 4]) },
                RangeChange { range: TokenRange::new(100, 150), old: ids(&[2, 3]), new: ids(&[4, 2]) },
            ]
        );
        assert_eq!(d[1].gained(), ids(&[4]));
        assert_eq!(d[1].lost(), ids(&[3]));
        // The inverse change is the mirror image.
        let back = new.without_node(3, NodeId(4));
        assert_eq!(back.vnodes().collect::<Vec<_>>(), old.vnodes().collect::<Vec<_>>());
        let mirrored: Vec<RangeChange> =
            d.iter().map(|c| RangeChange { range: c.range, old: c.new.clone(), new: c.old.clone() }).collect();
        assert_eq!(new.diff(&back, 2), mirrored);
        assert!(old.diff(&old, 3).is_empty());
    }

    #[test]
    fn diff_from_and_to_the_empty_ring() {
        let r = ring(&[(1, &[100])]);
        assert_eq!(
            Ring::empty(0).diff(&r, 3),
            vec![RangeChange { range: TokenRange::FULL, old: vec![], new: ids(&[1]) }]
        );
        assert!(Ring::empty(0).diff(&Ring::empty(1), 3).is_empty());
    }

    #[test]
    fn replicas_for_key_uses_the_key_token() {
        let r = Ring::new(1, (1..=5).map(|n| (NodeId(n), tokens_for(NodeId(n), 16))));
        let t = token_of("default", b"user:42");
        assert_eq!(r.replicas_for_key("default", b"user:42", 3), r.replicas(t, 3));
    }
}
