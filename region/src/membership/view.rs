//! The region as membership sees it: [`RegionView`], built from gossip by [`build_view`], a
//! pure function (no sockets, no clock).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use meridian_crdt::NodeId;

use crate::ring::Ring;

/// Gossip keys a node publishes about itself.
pub mod keys {
    /// The HTTP API address.
    pub const HTTP: &str = "http";
    /// [`super::NodeState`] as text.
    pub const STATE: &str = "state";
    /// The node's ring tokens: base64 of the big-endian `u64`s, ascending.
    pub const TOKENS: &str = "tokens";
    /// Records in the node's store (decimal), refreshed periodically.
    pub const KEYS: &str = "keys";
    /// The software version.
    pub const VERSION: &str = "version";
    /// The node's 64-bit number (hex), as a check of the (region, name) derivation.
    pub const NUMBER: &str = "number";
    /// Keyspaces created through the API, as JSON (`[{"name", "kind", "created"}]`).
    pub const KEYSPACES: &str = "keyspaces";
    /// `1` while an operator has fenced the region through this node.
    pub const FENCED: &str = "fenced";
}

/// A node's own view of its role in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Taking its tokens and receiving their data; not yet read from.
    Joining,
    /// Serving its ranges.
    Normal,
    /// Handing its ranges over before leaving.
    Leaving,
    /// Gone: its ranges were handed over; it is no longer on the ring.
    Left,
}

impl NodeState {
    /// The gossip text.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Normal => "normal",
            NodeState::Leaving => "leaving",
            NodeState::Left => "left",
        }
    }

    /// Parses the gossip text.
    pub fn parse(s: &str) -> Option<NodeState> {
        match s {
            "joining" => Some(NodeState::Joining),
            "normal" => Some(NodeState::Normal),
            "leaving" => Some(NodeState::Leaving),
            "left" => Some(NodeState::Left),
            _ => None,
        }
    }
}

/// One node as gossip reports it (the input of [`build_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipedNode {
    /// Its name (`node.id`).
    pub name: String,
    /// Its 64-bit number.
    pub id: NodeId,
    /// Its generation (start time): of two entries for one name, the greater wins.
    pub generation: u64,
    /// Its gossip / RPC address.
    pub rpc: SocketAddr,
    /// Whether the failure detector considers it live.
    pub live: bool,
    /// Its published keys.
    pub kv: BTreeMap<String, String>,
}

/// One member of the region.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its number (HLC node id, actor).
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its generation.
    pub generation: u64,
    /// RPC / gossip address.
    pub rpc: SocketAddr,
    /// HTTP API address, if published.
    pub http: Option<SocketAddr>,
    /// Its role; `None` if it has not published one (just started).
    pub state: Option<NodeState>,
    /// Live according to the failure detector (the local node always is).
    pub live: bool,
    /// Its tokens (ascending), empty until published.
    pub tokens: Arc<Vec<u64>>,
    /// Records in its store, as published.
    pub keys: Option<u64>,
    /// Software version, as published.
    pub version: Option<String>,
    /// Whether it publishes the region fence.
    pub fenced: bool,
}

/// The region as one node sees it: members and the rings they form.
#[derive(Debug, Clone)]
pub struct RegionView {
    /// The *read* ring: members with tokens that are `normal` or `leaving`, live or not (a down
    /// node keeps its ranges; writes for it become hints). Reads ask its replicas.
    pub ring: Arc<Ring>,
    /// The ring once the membership changes under way complete: `normal` and `joining`
    /// members (`leaving` ones removed). `None` when it equals [`RegionView::ring`]. Writes go
    /// to the replicas of both rings (the extra ones are *pending*) so that no write is missed
    /// by a node taking over a range.
    pub pending: Option<Arc<Ring>>,
    /// Members by id.
    pub members: BTreeMap<NodeId, Member>,
}

impl RegionView {
    /// The view before any gossip.
    pub fn empty() -> RegionView {
        RegionView { ring: Arc::new(Ring::empty(0)), pending: None, members: BTreeMap::new() }
    }

    /// The ring writes and streaming plans look ahead to: [`RegionView::pending`] or the read
    /// ring.
    pub fn future_ring(&self) -> &Arc<Ring> {
        self.pending.as_ref().unwrap_or(&self.ring)
    }

    /// Replicas of a token that only the future ring has (they must also get writes).
    pub fn pending_replicas(&self, token: u64, n: usize) -> Vec<NodeId> {
        match &self.pending {
            None => Vec::new(),
            Some(future) => {
                let current = self.ring.replicas(token, n);
                future.replicas(token, n).into_iter().filter(|r| !current.contains(r)).collect()
            }
        }
    }

    /// The role of `id`, if it published one.
    pub fn state_of(&self, id: NodeId) -> Option<NodeState> {
        self.members.get(&id).and_then(|m| m.state)
    }

    /// Whether `id` is a member the failure detector considers live.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.members.get(&id).is_some_and(|m| m.live)
    }

    /// The RPC address of `id`.
    pub fn rpc_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.members.get(&id).map(|m| m.rpc)
    }

    /// Live members.
    pub fn live_count(&self) -> usize {
        self.members.values().filter(|m| m.live).count()
    }
}

/// Encodes tokens for gossip.
pub fn encode_tokens(tokens: &[u64]) -> String {
    let mut bytes = Vec::with_capacity(tokens.len() * 8);
    for t in tokens {
        bytes.extend_from_slice(&t.to_be_bytes());
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Decodes gossiped tokens; `None` if malformed.
pub fn decode_tokens(s: &str) -> Option<Vec<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(s).ok()?;
    if bytes.len() % 8 != 0 {
        return None;
    }
    let mut tokens: Vec<u64> =
        bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8-byte chunk"))).collect();
    tokens.sort_unstable();
    tokens.dedup();
    Some(tokens)
}

/// Builds the view from gossip. `prev` is the previous view: each ring keeps its version when
/// its members and tokens did not change, and gets the previous version + 1 otherwise, so
/// ring versions only grow on one node.
///
/// Rules: of several entries for one name (restarts), the greatest generation wins; a member
/// is on the read ring iff it published tokens and is `normal` or `leaving` (no state yet
/// counts as `normal`), on the future ring iff it published tokens and is `normal` or
/// `joining`; `left` members are on neither. Malformed values are ignored (the member stays,
/// the value is treated as unpublished).
pub fn build_view(nodes: impl IntoIterator<Item = GossipedNode>, prev: &RegionView) -> RegionView {
    let mut by_name: BTreeMap<String, GossipedNode> = BTreeMap::new();
    for n in nodes {
        match by_name.get(&n.name) {
            Some(existing) if existing.generation >= n.generation => {}
            _ => {
                by_name.insert(n.name.clone(), n);
            }
        }
    }
    let mut members = BTreeMap::new();
    for n in by_name.into_values() {
        let tokens = n.kv.get(keys::TOKENS).and_then(|s| decode_tokens(s)).unwrap_or_default();
        let member = Member {
            id: n.id,
            name: n.name,
            generation: n.generation,
            rpc: n.rpc,
            http: n.kv.get(keys::HTTP).and_then(|s| s.parse().ok()),
            state: n.kv.get(keys::STATE).and_then(|s| NodeState::parse(s)),
            live: n.live,
            tokens: Arc::new(tokens),
            keys: n.kv.get(keys::KEYS).and_then(|s| s.parse().ok()),
            version: n.kv.get(keys::VERSION).cloned(),
            fenced: n.kv.get(keys::FENCED).is_some_and(|v| v == "1"),
        };
        members.insert(member.id, member);
    }
    let on = |m: &Member, states: &[NodeState]| {
        !m.tokens.is_empty() && states.contains(&m.state.unwrap_or(NodeState::Normal))
    };
    let read: BTreeMap<NodeId, &[u64]> = members
        .values()
        .filter(|m| on(m, &[NodeState::Normal, NodeState::Leaving]))
        .map(|m| (m.id, m.tokens.as_slice()))
        .collect();
    let future: BTreeMap<NodeId, &[u64]> = members
        .values()
        .filter(|m| on(m, &[NodeState::Normal, NodeState::Joining]))
        .map(|m| (m.id, m.tokens.as_slice()))
        .collect();
    let ring = next_ring(&prev.ring, &read);
    let pending = if future == read {
        None
    } else {
        Some(match &prev.pending {
            Some(p) => next_ring(p, &future),
            None => next_ring(&Arc::new(Ring::empty(ring.version())), &future),
        })
    };
    RegionView { ring, pending, members }
}

/// `prev` if its members and tokens are `members`, else a new ring with the next version.
fn next_ring(prev: &Arc<Ring>, members: &BTreeMap<NodeId, &[u64]>) -> Arc<Ring> {
    let unchanged =
        members.len() == prev.len_nodes() && members.iter().all(|(id, tokens)| prev.tokens_of(*id) == Some(*tokens));
    if unchanged {
        Arc::clone(prev)
    } else {
        Arc::new(Ring::new(prev.version() + 1, members.iter().map(|(id, t)| (*id, t.to_vec()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: u64, generation: u64, live: bool, tokens: &[u64]) -> GossipedNode {
        let mut kv = BTreeMap::new();
        if !tokens.is_empty() {
            kv.insert(keys::TOKENS.to_owned(), encode_tokens(tokens));
        }
        kv.insert(keys::STATE.to_owned(), "normal".to_owned());
        GossipedNode {
            name: name.into(),
            id: NodeId(id),
            generation,
            rpc: SocketAddr::from(([127, 0, 0, 1], 7000 + id as u16)),
            live,
            kv,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = vec![3, 1, u64::MAX, 0];
        assert_eq!(decode_tokens(&encode_tokens(&t)), Some(vec![0, 1, 3, u64::MAX]));
        assert_eq!(decode_tokens("!!!"), None);
        assert_eq!(decode_tokens(&base64::engine::general_purpose::STANDARD_NO_PAD.encode([1u8, 2, 3])), None);
    }

    #[test]
    fn ring_version_moves_only_when_the_ring_changes() {
        let v0 = RegionView::empty();
        let v1 = build_view([node("a", 1, 1, true, &[10]), node("b", 2, 1, true, &[20])], &v0);
        assert_eq!(v1.ring.version(), 1);
        assert_eq!(v1.ring.len_nodes(), 2);
        // Liveness changes do not change the ring: a down node keeps its ranges.
        let v2 = build_view([node("a", 1, 1, true, &[10]), node("b", 2, 1, false, &[20])], &v1);
        assert_eq!(v2.ring.version(), 1);
        assert!(!v2.is_live(NodeId(2)));
        // New tokens do.
        let v3 = build_view([node("a", 1, 1, true, &[10]), node("b", 2, 1, true, &[20, 30])], &v2);
        assert_eq!(v3.ring.version(), 2);
    }

    #[test]
    fn newest_generation_of_a_name_wins() {
        let v = build_view([node("a", 1, 5, false, &[10]), node("a", 1, 9, true, &[10])], &RegionView::empty());
        assert_eq!(v.members.len(), 1);
        assert_eq!(v.members[&NodeId(1)].generation, 9);
        assert!(v.is_live(NodeId(1)));
        // Order of the input does not matter.
        let w = build_view([node("a", 1, 9, true, &[10]), node("a", 1, 5, false, &[10])], &RegionView::empty());
        assert_eq!(w.members[&NodeId(1)].generation, 9);
    }

    fn with_state(mut n: GossipedNode, state: &str) -> GossipedNode {
        n.kv.insert(keys::STATE.to_owned(), state.to_owned());
        n
    }

    #[test]
    fn joining_and_leaving_members_are_pending() {
        let v0 = RegionView::empty();
        let base = [node("a", 1, 1, true, &[10]), node("b", 2, 1, true, &[20])];
        let v1 = build_view(base.clone(), &v0);
        assert!(v1.pending.is_none());
        // A joining node is not read from, but writes look ahead to the ring with it.
        let mut nodes = base.to_vec();
        nodes.push(with_state(node("c", 3, 1, true, &[30]), "joining"));
        let v2 = build_view(nodes.clone(), &v1);
        assert_eq!(v2.ring.nodes(), &[NodeId(1), NodeId(2)]);
        let future = v2.pending.as_ref().expect("pending ring");
        assert_eq!(future.nodes(), &[NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(v2.pending_replicas(25, 1), vec![NodeId(3)]);
        assert!(v2.pending_replicas(5, 1).is_empty());
        // Normal: on both rings, nothing pending.
        nodes[2] = with_state(node("c", 3, 1, true, &[30]), "normal");
        let v3 = build_view(nodes.clone(), &v2);
        assert!(v3.pending.is_none());
        assert_eq!(v3.ring.nodes().len(), 3);
        assert!(v3.ring.version() > v2.ring.version());
        // Leaving: still read from, gone from the future ring; left: gone from both.
        nodes[0] = with_state(node("a", 1, 1, true, &[10]), "leaving");
        let v4 = build_view(nodes.clone(), &v3);
        assert_eq!(v4.ring.nodes().len(), 3);
        assert_eq!(v4.future_ring().nodes(), &[NodeId(2), NodeId(3)]);
        nodes[0] = with_state(node("a", 1, 1, false, &[10]), "left");
        let v5 = build_view(nodes, &v4);
        assert_eq!(v5.ring.nodes(), &[NodeId(2), NodeId(3)]);
        assert!(v5.pending.is_none());
    }

    #[test]
    fn a_member_without_tokens_is_not_on_the_ring() {
        let v = build_view([node("a", 1, 1, true, &[10]), node("b", 2, 1, true, &[])], &RegionView::empty());
        assert_eq!(v.members.len(), 2);
        assert_eq!(v.ring.nodes(), &[NodeId(1)]);
    }
}
