//! Administration of a node and its region: hinted handoff, anti-entropy repair,
//! decommission and Merkle digests.
//!
//! - `GET /api/v1/cluster/hints`: pending hints on this node, per target ([`HintsStatusBody`]).
//! - `POST /api/v1/cluster/repair`: starts an anti-entropy pass in the background, `202` with
//!   its [`RepairStatusBody`]; the optional body [`RepairRequest`] narrows it to one token
//!   range. `GET` on the same path reports the current or last pass.
//! - `DELETE /api/v1/cluster/nodes/{id}`: decommissions a node, `202` with its
//!   [`StreamingStatusBody`]; progress is in that node's cluster status.
//! - `GET /api/v1/cluster/digest`: the Merkle root of what this node holds
//!   ([`DigestStatusBody`]), for convergence checks.
//! - `POST /api/v1/cluster/snapshot`: writes a consistent snapshot of this node's store,
//!   `201` with its [`SnapshotBody`]; the optional body [`SnapshotRequest`] names it.
//!
//! The answer bodies mirror the service types ([`HintsStatus`], [`RepairStatus`],
//! [`StreamingStatus`], [`DigestStatus`]) field for field and serialize to the same JSON; they
//! are declared here so the OpenAPI document can describe them without the service types
//! depending on utoipa. Token ranges are `[start, end]` pairs covering `(start, end]` on the
//! ring.
//!
//! Tokens in request bodies are JSON numbers (`0..=18446744073709551615`) or strings of
//! decimal digits, because JavaScript clients cannot write integers above 2^53 exactly.
//!
//! # Layout
//!
//! - The answer bodies and their `From` conversions.
//! - The repair request: [`RepairRequest`], [`TokenRange`] and the token deserializer.
//! - The handlers, in route order.

use std::fmt;

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::ToSchema;

use super::error::codes;
use super::{ApiError, ApiJson, ApiPath, AppState, ErrorBody, RawBody};
use crate::service::{DigestStatus, HintQueue, HintsStatus, RegionDigest, RepairStatus, SnapshotInfo, StreamingStatus};

// ---------------------------------------------------------------------------------------------
// Answer bodies

/// Pending hints kept on this node for one target replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HintQueueBody {
    /// The target's name, if it is (still) a member.
    #[schema(example = "node2")]
    pub target: Option<String>,
    /// The target's 64-bit node number (hex).
    #[schema(example = "9e1a007d41b21c1d")]
    pub number: String,
    /// Hints waiting.
    pub pending: u64,
    /// Age of the oldest, in ms.
    pub oldest_age_ms: Option<u64>,
    /// Whether the failure detector considers the target live (replay runs when it is).
    pub target_live: bool,
}

impl From<HintQueue> for HintQueueBody {
    fn from(q: HintQueue) -> Self {
        HintQueueBody {
            target: q.target,
            number: q.number,
            pending: q.pending,
            oldest_age_ms: q.oldest_age_ms,
            target_live: q.target_live,
        }
    }
}

/// Hinted-handoff state of the answering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HintsStatusBody {
    /// The answering node.
    pub node: String,
    /// One queue per target with pending hints.
    pub queues: Vec<HintQueueBody>,
    /// Hints stored since the node started.
    pub stored: u64,
    /// Hints replayed to their target since the node started.
    pub replayed: u64,
    /// Hints dropped (past the hint window, or for a removed node) since the node started.
    pub dropped: u64,
}

impl From<HintsStatus> for HintsStatusBody {
    fn from(h: HintsStatus) -> Self {
        HintsStatusBody {
            node: h.node,
            queues: h.queues.into_iter().map(Into::into).collect(),
            stored: h.stored,
            replayed: h.replayed,
            dropped: h.dropped,
        }
    }
}

/// Progress of an anti-entropy (repair) pass on the answering node.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RepairStatusBody {
    /// `idle`, `running`, `done` or `failed`.
    #[schema(example = "running")]
    pub state: String,
    /// Why the pass started: `schedule`, `api` or `startup`.
    #[schema(example = "api")]
    pub trigger: Option<String>,
    /// The token range asked for, `[start, end]` covering `(start, end]`; `null`: every range
    /// the node replicates.
    #[schema(value_type = Option<Vec<u64>>, min_items = 2, max_items = 2)]
    pub range: Option<(u64, u64)>,
    /// Peer exchanges planned (one per peer replica sharing ranges with this node).
    pub peers_total: usize,
    /// Exchanges finished.
    pub peers_done: usize,
    /// Exchanges that failed (peer down, error); the pass then does not count as complete.
    pub peers_failed: usize,
    /// Merkle segments found to differ.
    pub segments_differing: u64,
    /// Keys whose state was exchanged.
    pub keys_repaired: u64,
    /// Bytes received and sent by the pass (digests, key lists and records).
    pub bytes_transferred: u64,
    /// Bytes of the records fetched and merged here.
    pub bytes_restored: u64,
    /// When the pass started, ms since the UNIX epoch.
    pub started_ms: Option<u64>,
    /// When it finished, ms since the UNIX epoch.
    pub finished_ms: Option<u64>,
    /// Start of the last pass that completed with every peer (the GC safe point comes from it).
    pub last_complete_ms: Option<u64>,
    /// The error of a failed pass.
    pub error: Option<String>,
}

impl From<RepairStatus> for RepairStatusBody {
    fn from(r: RepairStatus) -> Self {
        RepairStatusBody {
            state: r.state,
            trigger: r.trigger,
            range: r.range,
            peers_total: r.peers_total,
            peers_done: r.peers_done,
            peers_failed: r.peers_failed,
            segments_differing: r.segments_differing,
            keys_repaired: r.keys_repaired,
            bytes_transferred: r.bytes_transferred,
            bytes_restored: r.bytes_restored,
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            last_complete_ms: r.last_complete_ms,
            error: r.error,
        }
    }
}

/// Range streaming of a join or a decommission on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StreamingStatusBody {
    /// `idle`, `joining` (receiving its ranges), `leaving` (handing its ranges over), `done` or
    /// `failed`.
    #[schema(example = "leaving")]
    pub state: String,
    /// Ranges to move.
    pub ranges_total: usize,
    /// Ranges moved.
    pub ranges_done: usize,
    /// Records moved.
    pub keys: u64,
    /// Record bytes moved.
    pub bytes: u64,
    /// When the stream started, ms since the UNIX epoch.
    pub started_ms: Option<u64>,
    /// When it finished, ms since the UNIX epoch.
    pub finished_ms: Option<u64>,
    /// The error of a failed stream.
    pub error: Option<String>,
}

impl From<StreamingStatus> for StreamingStatusBody {
    fn from(s: StreamingStatus) -> Self {
        StreamingStatusBody {
            state: s.state,
            ranges_total: s.ranges_total,
            ranges_done: s.ranges_done,
            keys: s.keys,
            bytes: s.bytes,
            started_ms: s.started_ms,
            finished_ms: s.finished_ms,
            error: s.error,
        }
    }
}

/// The Merkle root of what the answering node stores for its ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DigestStatusBody {
    /// The answering node.
    pub node: String,
    /// Root hash over the ranges (hex), the XOR of the segment hashes.
    pub root: String,
    /// Records counted.
    pub records: u64,
    /// The ranges covered, as `[start, end]` pairs covering `(start, end]`.
    #[schema(value_type = Vec<Vec<u64>>)]
    pub ranges: Vec<(u64, u64)>,
}

impl From<DigestStatus> for DigestStatusBody {
    fn from(d: DigestStatus) -> Self {
        DigestStatusBody { node: d.node, root: d.root, records: d.records, ranges: d.ranges }
    }
}

/// The Merkle root of everything the region stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegionDigestBody {
    /// The region.
    pub region: String,
    /// The answering node.
    pub node: String,
    /// Root hash over the whole ring (hex), the XOR of the entry hashes of every record.
    pub root: String,
    /// Records counted.
    pub records: u64,
    /// The nodes asked, each for the ranges assigned to it.
    pub nodes: Vec<String>,
}

impl From<RegionDigest> for RegionDigestBody {
    fn from(d: RegionDigest) -> Self {
        RegionDigestBody { region: d.region, node: d.node, root: d.root, records: d.records, nodes: d.nodes }
    }
}

// ---------------------------------------------------------------------------------------------
// The repair request

/// A snapshot of one node's store, on that node's machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SnapshotBody {
    /// Manifest format version.
    pub format: u32,
    /// The snapshot's name.
    #[schema(example = "node1-1764691200000")]
    pub name: String,
    /// Its directory on the node's machine (give it to `meridian restore --snapshot`).
    pub path: String,
    /// The node it copies.
    pub node: String,
    /// The node's region.
    pub region: String,
    /// When it was taken, ms since the UNIX epoch.
    pub created_ms: u64,
    /// Size of its files in bytes (hard links to live files count in full).
    pub bytes: u64,
    /// Number of files.
    pub files: u64,
    /// Records the node held (live, expired and tombstones).
    pub records: u64,
    /// The node's tombstone grace: restoring a snapshot older than this can bring deleted
    /// keys back, and `meridian restore` refuses it without `--force`.
    pub gc_grace_secs: u64,
    /// The Meridian version that wrote it.
    pub meridian_version: String,
}

impl From<SnapshotInfo> for SnapshotBody {
    fn from(s: SnapshotInfo) -> Self {
        SnapshotBody {
            format: s.format,
            name: s.name,
            path: s.path,
            node: s.node,
            region: s.region,
            created_ms: s.created_ms,
            bytes: s.bytes,
            files: s.files,
            records: s.records,
            gc_grace_secs: s.gc_grace_secs,
            meridian_version: s.meridian_version,
        }
    }
}

/// A `POST /api/v1/cluster/snapshot` body; optional (none or `{}`: a name is chosen).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// 1 to 100 of `A-Z a-z 0-9 . _ -`, not starting with a dot; default `<node>-<ms>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A `POST /api/v1/cluster/repair` body. The body is optional: none (or `{}`) repairs every
/// range the node replicates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// The token range to repair; absent or `null`: every range.
    #[serde(default, deserialize_with = "range_object")]
    pub range: Option<TokenRange>,
}

/// `range` as an object or `null` (serde would otherwise also take the array `[start, end]`,
/// which is the answers' form, not the request's).
fn range_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<TokenRange>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        v @ serde_json::Value::Object(_) => TokenRange::deserialize(v).map(Some).map_err(de::Error::custom),
        _ => Err(de::Error::custom("range must be an object {\"start\": <token>, \"end\": <token>} or null")),
    }
}

/// A token range `(start, end]` on the ring (it wraps past `u64::MAX` when `end < start`);
/// `start == end` is the whole ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRange {
    /// The exclusive start token.
    #[schema(schema_with = token_schema)]
    pub start: Token,
    /// The inclusive end token.
    #[schema(schema_with = token_schema)]
    pub end: Token,
}

impl TokenRange {
    /// The range as the service takes it: `None` (every range) for the whole ring.
    fn to_service(self) -> Option<(u64, u64)> {
        (self.start != self.end).then_some((self.start.0, self.end.0))
    }
}

/// A 64-bit ring token, from a JSON number or a string of decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(pub u64);

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Token, D::Error> {
        deserializer.deserialize_any(TokenVisitor)
    }
}

struct TokenVisitor;

const TOKEN_EXPECTED: &str = "a token: an integer from 0 to 18446744073709551615, or a string of its decimal digits";

impl Visitor<'_> for TokenVisitor {
    type Value = Token;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TOKEN_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Token, E> {
        Ok(Token(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Token, E> {
        u64::try_from(v).map(Token).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Token, E> {
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        match v.parse::<u64>() {
            Ok(t) if digits => Ok(Token(t)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

/// A token in the OpenAPI document: an unsigned 64-bit integer or its decimal digits.
fn token_schema() -> Schema {
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::Custom("uint64".to_owned())))
                .minimum(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$")))
        .description(Some("A ring token: an integer from 0 to 2^64 - 1, or a string of its decimal digits"))
        .examples([serde_json::json!(9223372036854775808_u64), serde_json::json!("9223372036854775808")])
        .build();
    Schema::OneOf(one_of)
}

/// An optional JSON body: `None` when empty; otherwise it goes through the same checks as every
/// JSON body (content type, syntax, shape).
async fn optional_json<T: serde::de::DeserializeOwned + Send>(
    state: &AppState,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Option<T>, ApiError> {
    if body.0.is_empty() {
        return Ok(None);
    }
    let mut req = Request::new(Body::from(body.0));
    *req.headers_mut() = headers;
    let ApiJson(parsed) = ApiJson::<T>::from_request(req, state).await?;
    Ok(Some(parsed))
}

/// The range a repair body asks for: an empty body is every range.
async fn repair_range(state: &AppState, headers: HeaderMap, body: RawBody) -> Result<Option<(u64, u64)>, ApiError> {
    let parsed = optional_json::<RepairRequest>(state, headers, body).await?;
    Ok(parsed.and_then(|p| p.range).and_then(TokenRange::to_service))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Pending hints on this node, per target replica.
#[utoipa::path(
    get,
    path = "/api/v1/cluster/hints",
    tag = "admin",
    responses(
        (status = 200, description = "Pending hints per target, and counts since the node started", body = HintsStatusBody),
        (status = 503, description = "shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn get_hints(State(state): State<AppState>) -> Result<Json<HintsStatusBody>, ApiError> {
    Ok(Json(state.service.hints().await?.into()))
}

/// Starts an anti-entropy pass in the background (unless one is running: then its status).
#[utoipa::path(
    post,
    path = "/api/v1/cluster/repair",
    tag = "admin",
    request_body(
        content = Option<RepairRequest>,
        content_type = "application/json",
        description = "Optional: none, or `{}`, repairs every range the node replicates",
    ),
    responses(
        (status = 202, description = "The pass started (or one was running); poll GET for progress", body = RepairStatusBody),
        (status = 400, description = "malformed_json, invalid_request (wrong shape, a token that is negative, too large or not decimal digits)", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn post_repair(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<(StatusCode, Json<RepairStatusBody>), ApiError> {
    let range = repair_range(&state, headers, body).await?;
    let status = state.service.start_repair(range)?;
    Ok((StatusCode::ACCEPTED, Json(status.into())))
}

/// The current or last anti-entropy pass on this node.
#[utoipa::path(
    get,
    path = "/api/v1/cluster/repair",
    tag = "admin",
    responses((status = 200, description = "The pass's progress (`state` `idle` if none ran)", body = RepairStatusBody))
)]
pub(crate) async fn get_repair(State(state): State<AppState>) -> Json<RepairStatusBody> {
    Json(state.service.repair_status().into())
}

/// Decommissions a node: it streams its ranges to their new replicas, then leaves the ring.
#[utoipa::path(
    delete,
    path = "/api/v1/cluster/nodes/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The node's name (`node.id`)")),
    responses(
        (status = 202, description = "Streaming started; progress is in the `streaming` field of that node's cluster status", body = StreamingStatusBody),
        (status = 400, description = "invalid_request: unknown node, already leaving, or the region would have fewer nodes than the replication factor", body = ErrorBody),
        (status = 503, description = "rpc_failed (the node could not be told), not_enough_nodes, shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn delete_node(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<StreamingStatusBody>), ApiError> {
    let status = state.service.decommission(id).await?;
    Ok((StatusCode::ACCEPTED, Json(status.into())))
}

/// The Merkle root of what this node holds for its ranges.
#[utoipa::path(
    get,
    path = "/api/v1/cluster/digest",
    tag = "admin",
    responses(
        (status = 200, description = "Root hash, records counted and the ranges covered", body = DigestStatusBody),
        (status = 500, description = "storage errors", body = ErrorBody),
        (status = 503, description = "shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn get_digest(State(state): State<AppState>) -> Result<Json<DigestStatusBody>, ApiError> {
    Ok(Json(state.service.digest().await?.into()))
}

/// The Merkle root of everything the region stores, to compare regions.
#[utoipa::path(
    get,
    path = "/api/v1/cluster/digest/region",
    tag = "admin",
    responses(
        (status = 200, description = "Root hash over the whole ring, records counted, the nodes asked", body = RegionDigestBody),
        (status = 500, description = "storage errors", body = ErrorBody),
        (status = 503, description = "unavailable (a range without a live replica), rpc_failed, shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn get_region_digest(State(state): State<AppState>) -> Result<Json<RegionDigestBody>, ApiError> {
    Ok(Json(state.service.region_digest().await?.into()))
}

/// Writes a consistent snapshot of this node's store (a RocksDB checkpoint) under its snapshot
/// directory (`storage.snapshot_dir`).
#[utoipa::path(
    post,
    path = "/api/v1/cluster/snapshot",
    tag = "admin",
    request_body(
        content = Option<SnapshotRequest>,
        content_type = "application/json",
        description = "Optional: none, or `{}`, names it `<node>-<ms since the epoch>`",
    ),
    responses(
        (status = 201, description = "The snapshot is complete on the node's disk", body = SnapshotBody),
        (status = 400, description = "malformed_json, invalid_request (a bad name)", body = ErrorBody),
        (status = 409, description = "snapshot_exists", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 500, description = "storage_engine (the disk, or an engine without snapshots)", body = ErrorBody),
        (status = 503, description = "shutting_down", body = ErrorBody),
    )
)]
pub(crate) async fn post_snapshot(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<(StatusCode, Json<SnapshotBody>), ApiError> {
    let name = optional_json::<SnapshotRequest>(&state, headers, body).await?.and_then(|r| r.name);
    let info = state.service.snapshot(name).await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// `DELETE /api/v1/cluster/nodes/` (no id): name the mistake instead of `404`.
pub(crate) async fn empty_node_id() -> ApiError {
    ApiError::bad_request(codes::INVALID_REQUEST, "the node id is empty")
}
