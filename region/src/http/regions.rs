//! Cross-region replication: status, fencing for failover drills, and full sync.
//!
//! - `GET /api/v1/regions`: this region, whether it is fenced, and for each peer region the
//!   link state, lag p50/p99 of that region's changes applied here, this node's backlog
//!   towards it, and when its last change was applied ([`RegionsStatusBody`]).
//! - `POST /api/v1/regions/{name}/fence` and `/unfence`: fence this node's own region
//!   (`name` must be it): its nodes refuse client reads and writes with `503 region_fenced`, so
//!   clients fail over, and its WAN links are cut both ways.
//! - `POST /api/v1/regions/{name}/sync` (one peer) and `POST /api/v1/regions/sync` (all):
//!   a cross-region Merkle full sync of the ranges this node ships, in the background (`202`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ApiPath, AppState, ErrorBody};
use crate::service::{RegionLink, RegionsStatus};

/// The link to one peer region.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RegionLinkBody {
    /// The peer region.
    #[schema(example = "eu-west")]
    pub region: String,
    /// `up`, `down`, `fenced` or `idle`.
    pub link: String,
    /// This node's change-log entries not yet acknowledged by that region.
    pub backlog: u64,
    /// Lag (write to applied here, ms), p50 over the last 30-60 s.
    pub lag_p50_ms: Option<u64>,
    /// Lag p99 over the same window.
    pub lag_p99_ms: Option<u64>,
    /// The all-time lag histogram of changes from that region applied by this node:
    /// `[upper bound ms, count]` for every non-empty bucket, 1 ms wide below 1 s, 10 ms below
    /// 10 s, 100 ms below 100 s (the last bucket's bound is the largest lag seen). Subtract two
    /// snapshots to get the lag of the changes applied between them.
    #[schema(value_type = Vec<Vec<u64>>, example = json!([[51, 120], [52, 310], [60, 4]]))]
    pub lag_buckets: Vec<(u64, u64)>,
    /// Changes from that region applied by this node.
    pub applied: u64,
    /// When the last change from that region was applied here (ms since the UNIX epoch).
    pub last_applied_ms: Option<u64>,
    /// Entries this node shipped to that region.
    pub shipped: u64,
    /// When that region last acknowledged a batch of this node.
    pub last_ack_ms: Option<u64>,
    /// Full syncs this node ran towards that region.
    pub full_syncs: u64,
    /// Keys those full syncs pushed.
    pub full_sync_keys: u64,
    /// The last error while the link is down.
    pub last_error: Option<String>,
}

impl From<RegionLink> for RegionLinkBody {
    fn from(l: RegionLink) -> Self {
        RegionLinkBody {
            region: l.region,
            link: l.link,
            backlog: l.backlog,
            lag_p50_ms: l.lag_p50_ms,
            lag_p99_ms: l.lag_p99_ms,
            lag_buckets: l.lag_buckets,
            applied: l.applied,
            last_applied_ms: l.last_applied_ms,
            shipped: l.shipped,
            last_ack_ms: l.last_ack_ms,
            full_syncs: l.full_syncs,
            full_sync_keys: l.full_sync_keys,
            last_error: l.last_error,
        }
    }
}

/// Cross-region replication as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RegionsStatusBody {
    /// This region.
    pub region: String,
    /// The answering node.
    pub node: String,
    /// Whether this region is fenced.
    pub fenced: bool,
    /// One entry per peer region.
    pub peers: Vec<RegionLinkBody>,
    /// LWW writes from other regions overwritten by a concurrent newer write (on this node).
    pub conflicts_lww_overwrites: u64,
    /// MVR merges of other regions' changes that created siblings (on this node).
    pub conflicts_siblings_created: u64,
}

impl From<RegionsStatus> for RegionsStatusBody {
    fn from(s: RegionsStatus) -> Self {
        RegionsStatusBody {
            region: s.region,
            node: s.node,
            fenced: s.fenced,
            peers: s.peers.into_iter().map(Into::into).collect(),
            conflicts_lww_overwrites: s.conflicts_lww_overwrites,
            conflicts_siblings_created: s.conflicts_siblings_created,
        }
    }
}

/// Cross-region replication status.
#[utoipa::path(get, path = "/api/v1/regions", tag = "regions",
    responses((status = 200, description = "This region and its links", body = RegionsStatusBody)))]
pub(crate) async fn get_regions(State(state): State<AppState>) -> Json<RegionsStatusBody> {
    Json(state.service.regions().into())
}

/// Fences this node's own region.
#[utoipa::path(post, path = "/api/v1/regions/{name}/fence", tag = "regions",
    params(("name" = String, Path, description = "This node's region")),
    responses(
        (status = 200, description = "Fenced", body = RegionsStatusBody),
        (status = 400, description = "invalid_request: not this node's region", body = ErrorBody),
    ))]
pub(crate) async fn fence(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RegionsStatusBody>, ApiError> {
    Ok(Json(state.service.fence(name, true).await?.into()))
}

/// Lifts the fence of this node's own region.
#[utoipa::path(post, path = "/api/v1/regions/{name}/unfence", tag = "regions",
    params(("name" = String, Path, description = "This node's region")),
    responses(
        (status = 200, description = "Unfenced", body = RegionsStatusBody),
        (status = 400, description = "invalid_request: not this node's region", body = ErrorBody),
    ))]
pub(crate) async fn unfence(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RegionsStatusBody>, ApiError> {
    Ok(Json(state.service.fence(name, false).await?.into()))
}

/// Starts a cross-region full sync towards one peer region.
#[utoipa::path(post, path = "/api/v1/regions/{name}/sync", tag = "regions",
    params(("name" = String, Path, description = "A peer region")),
    responses(
        (status = 202, description = "Full sync requested", body = RegionsStatusBody),
        (status = 400, description = "invalid_request: not a peer region, or no peers configured", body = ErrorBody),
    ))]
pub(crate) async fn sync_one(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<RegionsStatusBody>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.service.sync_region(Some(name))?.into())))
}

/// Starts a cross-region full sync towards every peer region.
#[utoipa::path(post, path = "/api/v1/regions/sync", tag = "regions",
    responses(
        (status = 202, description = "Full sync requested", body = RegionsStatusBody),
        (status = 400, description = "invalid_request: no peers configured", body = ErrorBody),
    ))]
pub(crate) async fn sync_all(State(state): State<AppState>) -> Result<(StatusCode, Json<RegionsStatusBody>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.service.sync_region(None)?.into())))
}
