//! The region's status and the node's health: `GET /api/v1/cluster/status`, `GET /healthz`.
//!
//! The bodies mirror [`ClusterStatus`] and [`Health`] field for field; they are declared here
//! so the OpenAPI document can describe them without the service types depending on utoipa.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::{RepairStatusBody, StreamingStatusBody};
use super::AppState;
use crate::service::{ClusterStatus, Health, NodeStatus};

/// One node as cluster status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeStatusBody {
    /// The node's name (`node.id` in its configuration).
    pub id: String,
    /// Its 64-bit number (hex), the id in HLC timestamps and version vectors.
    pub number: String,
    /// `healthy`, `joining`, `leaving` or `down`.
    pub status: String,
    /// Its intra-region RPC / gossip address.
    #[schema(value_type = String, example = "10.0.0.1:7000")]
    pub rpc: String,
    /// Its HTTP API address, if it published one.
    #[schema(value_type = Option<String>, example = "10.0.0.1:8081")]
    pub http: Option<String>,
    /// Fraction of the ring it replicates at the region's replication factor (0..=1).
    pub load: f64,
    /// Fraction of the ring it is primary for.
    pub ownership: f64,
    /// How many tokens (vnodes) it holds.
    pub tokens: usize,
    /// A few of its tokens, for display.
    pub tokens_sample: Vec<u64>,
    /// Records it stores, as it last published, if known.
    pub keys: Option<u64>,
    /// Software version it runs.
    pub version: Option<String>,
    /// Whether this is the node answering.
    pub is_self: bool,
}

impl From<NodeStatus> for NodeStatusBody {
    fn from(n: NodeStatus) -> Self {
        NodeStatusBody {
            id: n.id,
            number: n.number,
            status: n.status,
            rpc: n.rpc.to_string(),
            http: n.http.map(|a| a.to_string()),
            load: n.load,
            ownership: n.ownership,
            tokens: n.tokens,
            tokens_sample: n.tokens_sample,
            keys: n.keys,
            version: n.version,
            is_self: n.is_self,
        }
    }
}

/// The region as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClusterStatusBody {
    /// The region's name.
    pub region: String,
    /// The answering node's name.
    pub node: String,
    /// Replicas per key (N).
    pub replication_factor: usize,
    /// The ring's version; it increases every time this node sees the membership change.
    pub ring_version: u64,
    /// Nodes, sorted by id.
    pub nodes: Vec<NodeStatusBody>,
    /// Estimated distinct keys in the region.
    pub total_keys: u64,
    /// This node's anti-entropy status.
    pub repair: RepairStatusBody,
    /// This node's join / decommission streaming status.
    pub streaming: StreamingStatusBody,
}

impl From<ClusterStatus> for ClusterStatusBody {
    fn from(s: ClusterStatus) -> Self {
        ClusterStatusBody {
            region: s.region,
            node: s.node,
            replication_factor: s.replication_factor,
            ring_version: s.ring_version,
            nodes: s.nodes.into_iter().map(Into::into).collect(),
            total_keys: s.total_keys,
            repair: s.repair.into(),
            streaming: s.streaming.into(),
        }
    }
}

/// Liveness and readiness of the answering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok` when the node serves requests; `starting` or `shutting_down` otherwise.
    #[schema(example = "ok")]
    pub status: String,
    /// The node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Nodes the failure detector sees live (this one included).
    pub live_nodes: usize,
    /// Nodes known to membership.
    pub known_nodes: usize,
}

impl From<Health> for HealthBody {
    fn from(h: Health) -> Self {
        HealthBody {
            status: h.status.to_owned(),
            node: h.node,
            region: h.region,
            live_nodes: h.live_nodes,
            known_nodes: h.known_nodes,
        }
    }
}

/// The region as this node sees it.
#[utoipa::path(
    get,
    path = "/api/v1/cluster/status",
    tag = "cluster",
    responses((status = 200, description = "Nodes, ring version and key estimate", body = ClusterStatusBody))
)]
pub(crate) async fn cluster_status(State(state): State<AppState>) -> Json<ClusterStatusBody> {
    Json(state.service.cluster_status().into())
}

/// One node on the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RingNodeBody {
    /// The node's name.
    pub id: String,
    /// Its HTTP address.
    pub http: Option<String>,
    /// Whether it is live.
    pub live: bool,
    /// Its tokens, ascending.
    pub tokens: Vec<u64>,
}

/// The read ring, for token-aware clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RingBody {
    /// The region.
    pub region: String,
    /// The ring version.
    pub version: u64,
    /// Replicas per key.
    pub replication_factor: usize,
    /// Nodes on the ring.
    pub nodes: Vec<RingNodeBody>,
}

/// The read ring with every node's tokens.
#[utoipa::path(get, path = "/api/v1/cluster/ring", tag = "cluster",
    responses((status = 200, description = "Tokens per node, for token-aware routing", body = RingBody)))]
pub(crate) async fn ring(State(state): State<AppState>) -> Json<RingBody> {
    let r = state.service.ring();
    Json(RingBody {
        region: r.region,
        version: r.version,
        replication_factor: r.replication_factor,
        nodes: r
            .nodes
            .into_iter()
            .map(|n| RingNodeBody { id: n.id, http: n.http.map(|a| a.to_string()), live: n.live, tokens: n.tokens })
            .collect(),
    })
}

/// Liveness and readiness: `200` when the node serves requests, `503` otherwise (same body).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "cluster",
    responses(
        (status = 200, description = "Ready", body = HealthBody),
        (status = 503, description = "Not ready (starting or shutting down)", body = HealthBody),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<HealthBody>) {
    let health = state.service.health();
    let status = if health.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(health.into()))
}
