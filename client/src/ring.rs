//! [`RingView`]: a region's token ring as `GET /api/v1/cluster/ring` shows it, and the
//! replicas of a key on it, found exactly as the nodes find them (`region/src/ring.rs`).
//!
//! Each node owns the vnode ranges `(previous token, token]` of its tokens; a key sits at
//! [`meridian_local::token_of`]`(keyspace, key)`; its replicas are the owner of the first vnode
//! token `>=` the key's token (wrapping past the last), then the next distinct nodes clockwise,
//! `replication_factor` of them. Two nodes claiming the same token: the ring gives it to the
//! smaller node id, which is a number the API does not show; this view gives it to the smaller
//! node name, so such a (2^-64-unlikely) key may be sent to its second replica, which serves it
//! just as well.

use serde::Deserialize;

/// One node of a [`RingView`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RingNode {
    /// The node's name.
    pub id: String,
    /// Its HTTP address, if it publishes one.
    #[serde(default)]
    pub http: Option<String>,
    /// Whether the answering node's failure detector sees it live.
    #[serde(default)]
    pub live: bool,
    /// Its tokens.
    #[serde(default)]
    pub tokens: Vec<u64>,
}

/// The body of `GET /api/v1/cluster/ring`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RingBody {
    region: String,
    version: u64,
    replication_factor: usize,
    nodes: Vec<RingNode>,
}

/// A region's ring, ready to find replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingView {
    /// The region.
    pub region: String,
    /// The ring version membership gave it.
    pub version: u64,
    /// Replicas per key (N).
    pub replication_factor: usize,
    /// The nodes, in the order the answer listed them.
    pub nodes: Vec<RingNode>,
    /// `(token, index into nodes)`, ascending by token, one owner per token.
    vnodes: Vec<(u64, usize)>,
    /// Distinct nodes owning at least one vnode.
    owners: usize,
}

impl RingView {
    /// Parses the JSON body of `GET /api/v1/cluster/ring`.
    pub fn from_json(value: &serde_json::Value) -> Result<RingView, String> {
        let body = RingBody::deserialize(value).map_err(|e| e.to_string())?;
        Ok(RingView::new(body.region, body.version, body.replication_factor, body.nodes))
    }

    /// A ring of these nodes.
    pub fn new(region: String, version: u64, replication_factor: usize, nodes: Vec<RingNode>) -> RingView {
        let mut vnodes: Vec<(u64, usize)> =
            nodes.iter().enumerate().flat_map(|(i, n)| n.tokens.iter().map(move |&t| (t, i))).collect();
        // By token, then by node name, so the first of a duplicated token is the smaller name.
        vnodes.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| nodes[a.1].id.cmp(&nodes[b.1].id)));
        vnodes.dedup_by_key(|(token, _)| *token);
        let mut owning: Vec<usize> = vnodes.iter().map(|&(_, i)| i).collect();
        owning.sort_unstable();
        owning.dedup();
        RingView { region, version, replication_factor, nodes, vnodes, owners: owning.len() }
    }

    /// The replicas of `token`, primary first: `min(replication_factor, nodes on the ring)`
    /// nodes (none on an empty ring).
    pub fn replicas(&self, token: u64) -> Vec<&RingNode> {
        let want = self.replication_factor.min(self.owners);
        let mut out: Vec<usize> = Vec::with_capacity(want);
        if want == 0 {
            return Vec::new();
        }
        let start = self.vnodes.partition_point(|&(t, _)| t < token) % self.vnodes.len();
        for &(_, node) in self.vnodes[start..].iter().chain(&self.vnodes[..start]) {
            if !out.contains(&node) {
                out.push(node);
                if out.len() == want {
                    break;
                }
            }
        }
        out.into_iter().map(|i| &self.nodes[i]).collect()
    }

    /// The replicas of `key` in `keyspace` (at `token_of(keyspace, key)`), primary first.
    pub fn replicas_for_key(&self, keyspace: &str, key: &[u8]) -> Vec<&RingNode> {
        self.replicas(meridian_local::token_of(keyspace, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, tokens: &[u64]) -> RingNode {
        RingNode { id: id.into(), http: Some(format!("{id}:1")), live: true, tokens: tokens.to_vec() }
    }

    fn ids(nodes: Vec<&RingNode>) -> Vec<&str> {
        nodes.into_iter().map(|n| n.id.as_str()).collect()
    }

    #[test]
    fn the_seed_example_preference_list() {
        // As region/src/ring.rs: B at 33 and 180, A at 98, C at 150; a key at 50.
        let r = RingView::new("r".into(), 1, 3, vec![node("a", &[98]), node("b", &[33, 180]), node("c", &[150])]);
        assert_eq!(ids(r.replicas(50)), ["a", "c", "b"]);
        assert_eq!(ids(r.replicas(98)), ["a", "c", "b"]);
        assert_eq!(ids(r.replicas(99)), ["c", "b", "a"]);
        assert_eq!(ids(r.replicas(181)), ["b", "a", "c"]);
        assert_eq!(ids(r.replicas(0)), ["b", "a", "c"]);
    }

    #[test]
    fn fewer_nodes_than_n_and_the_empty_ring() {
        let r = RingView::new("r".into(), 1, 3, vec![node("a", &[10, 20]), node("b", &[30]), node("idle", &[])]);
        assert_eq!(ids(r.replicas(15)), ["a", "b"]);
        let empty = RingView::new("r".into(), 1, 3, vec![node("idle", &[])]);
        assert!(empty.replicas(15).is_empty());
    }

    #[test]
    fn a_duplicated_token_goes_to_the_smaller_name() {
        let r = RingView::new("r".into(), 1, 1, vec![node("z", &[100]), node("m", &[100, 200])]);
        assert_eq!(ids(r.replicas(50)), ["m"]);
    }

    #[test]
    fn parses_the_ring_answer_and_routes_keys_by_their_token() {
        let body = serde_json::json!({
            "region": "us-east", "version": 7, "replication_factor": 2,
            "nodes": [
                {"id": "node1", "http": "127.0.0.1:8081", "live": true, "tokens": [100, u64::MAX]},
                {"id": "node2", "http": null, "live": false, "tokens": [200]},
            ]
        });
        let r = RingView::from_json(&body).expect("parse");
        assert_eq!((r.region.as_str(), r.version, r.replication_factor), ("us-east", 7, 2));
        assert_eq!(r.nodes[1].http, None);
        let token = meridian_local::token_of("default", b"user:1");
        assert_eq!(r.replicas_for_key("default", b"user:1"), r.replicas(token));
        assert!(RingView::from_json(&serde_json::json!({"nodes": 1})).is_err());
    }
}
