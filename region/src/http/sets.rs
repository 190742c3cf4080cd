//! Add-wins sets: `POST/GET/DELETE /api/v1/sets/{key}` (the `sets` keyspace) and
//! `/api/v1/keyspaces/{ks}/sets/{key}`.
//!
//! Members are written as UTF-8 strings. A set that was never written (or was deleted, or
//! expired) reads as empty with `200`. A remove drops the additions its `context` (from a
//! `GET`) observed, or, without one, everything the coordinating replica holds; concurrent
//! additions it did not observe survive (add wins).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use meridian_crdt::{CausalContext, CrdtError, Op, ReadValue, ValueKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::codes;
use super::keys::{DeletedBody, WriteBody};
use super::{
    consistency, context_of, encode_context, encode_value, if_match, ttl_of, wrong_type, ApiError, ApiJson, ApiPath,
    AppState, ErrorBody, KeyParam, KsKeyParam,
};
use crate::error::RegionError;
use crate::service::WriteRequest;

/// The keyspace `/api/v1/sets/{key}` addresses.
pub const SETS_KEYSPACE: &str = "sets";

/// A `POST` body: members to add and to remove (at least one of either).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUpdate {
    /// Members to add.
    #[serde(default)]
    pub add: Vec<String>,
    /// Members to remove (an element may not be both added and removed).
    #[serde(default)]
    pub remove: Vec<String>,
    /// The `context` of an earlier `GET`: removes drop only what that read saw.
    #[serde(default)]
    pub context: Option<String>,
    /// Time to live in seconds (same as `X-TTL`); replaces the set's expiry.
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 315360000)]
    pub ttl: Option<serde_json::Value>,
}

/// A set's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SetBody {
    /// The key.
    pub key: String,
    /// The members, sorted (by bytes, which for UTF-8 is by code point). Empty for a set never
    /// written, deleted or expired.
    pub members: Vec<String>,
    /// Opaque causal context: send it with a remove so it drops only what this read saw.
    pub context: String,
    /// `base64` when some member is not UTF-8 (written by another client than this API):
    /// then every member is base64 (standard alphabet). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "base64")]
    pub members_encoding: Option<&'static str>,
}

fn check_set(state: &AppState, ks: &str) -> Result<(), ApiError> {
    match state.keyspace_kind(ks)? {
        ValueKind::Set => Ok(()),
        other => Err(wrong_type(ks, other, ValueKind::Set, None)),
    }
}

/// The members as strings: all UTF-8 as they are, else all base64 with the flag.
fn members_body(key: &str, members: Vec<Vec<u8>>, context: &CausalContext) -> SetBody {
    let utf8: Result<Vec<String>, _> = members.iter().map(|m| String::from_utf8(m.clone())).collect();
    let (members, members_encoding) = match utf8 {
        Ok(strings) => (strings, None),
        Err(_) => (members.iter().map(|m| encode_value(m)).collect(), Some("base64")),
    };
    SetBody { key: key.to_owned(), members, context: encode_context(context), members_encoding }
}

async fn post(
    state: AppState,
    ks: &str,
    key: &str,
    headers: HeaderMap,
    body: SetUpdate,
) -> Result<Json<WriteBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    check_set(&state, ks)?;
    if body.add.is_empty() && body.remove.is_empty() {
        return Err(ApiError::bad_request(codes::INVALID_REQUEST, "give at least one member in add or remove"));
    }
    for m in body.add.iter().chain(&body.remove) {
        state.check_value_len(m.len())?;
    }
    if let Some(both) = body.remove.iter().find(|r| body.add.contains(r)) {
        // The value model refuses this too; checked here so nothing is sent.
        return Err(RegionError::Crdt(CrdtError::InvalidOp(format!(
            "member of {} bytes is both added and removed in one update",
            both.len()
        )))
        .into());
    }
    let ttl_ms = ttl_of(&headers, body.ttl.as_ref())?;
    let context = context_of(&headers, body.context.as_deref())?;
    let op = Op::SetUpdate {
        add: body.add.into_iter().map(String::into_bytes).collect(),
        remove: body.remove.into_iter().map(String::into_bytes).collect(),
        context,
        ttl_ms,
    };
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op, consistency: level, if_match };
    let out = state.service.write(req).await?;
    Ok(Json(WriteBody::new(key, &out)))
}

async fn get(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Json<SetBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    check_set(&state, ks)?;
    let out = state.service.read(ks, &key_bytes, level).await?;
    match out.value {
        ReadValue::Set { members, context } => Ok(Json(members_body(key, members, &context))),
        ReadValue::Absent => {
            let context = out.record.as_ref().map(|r| r.context()).unwrap_or_default();
            Ok(Json(members_body(key, Vec::new(), &context)))
        }
        other => Err(ApiError::internal(format!("keyspace {ks:?} returned a non-set value: {other:?}"))),
    }
}

async fn delete(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Json<DeletedBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    check_set(&state, ks)?;
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op: Op::Reset, consistency: level, if_match };
    let out = state.service.write(req).await?;
    Ok(Json(DeletedBody::new(key, &out)))
}

/// Adds and removes members of a set of the `sets` keyspace.
#[utoipa::path(
    post,
    path = "/api/v1/sets/{key}",
    tag = "sets",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
        ("X-Context" = Option<String>, Header, nullable = false, description = "Same as the body's context"),
    ),
    request_body(content = SetUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = WriteBody),
        (status = 400, description = "Bad input (invalid_request for an empty update, invalid_op for a member both added and removed, invalid_context, invalid_ttl, malformed_json)", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 413, description = "value_too_large (a member) or payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn post_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SetUpdate>,
) -> Result<Json<WriteBody>, ApiError> {
    post(state, SETS_KEYSPACE, &p.key, headers, body).await
}

/// Adds and removes members of a set of a set keyspace.
#[utoipa::path(
    post,
    path = "/api/v1/keyspaces/{ks}/sets/{key}",
    tag = "sets",
    params(
        ("ks" = String, Path, description = "The keyspace (set)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
        ("X-Context" = Option<String>, Header, nullable = false, description = "Same as the body's context"),
    ),
    request_body(content = SetUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = WriteBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 413, description = "value_too_large or payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn post_ks_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SetUpdate>,
) -> Result<Json<WriteBody>, ApiError> {
    post(state, &p.ks, &p.key, headers, body).await
}

/// Reads a set of the `sets` keyspace (empty if never written).
#[utoipa::path(
    get,
    path = "/api/v1/sets/{key}",
    tag = "sets",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The members; empty for a set never written, deleted or expired", body = SetBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Json<SetBody>, ApiError> {
    get(state, SETS_KEYSPACE, &p.key, headers).await
}

/// Reads a set of a set keyspace (empty if never written).
#[utoipa::path(
    get,
    path = "/api/v1/keyspaces/{ks}/sets/{key}",
    tag = "sets",
    params(
        ("ks" = String, Path, description = "The keyspace (set)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The members; empty for a set never written, deleted or expired", body = SetBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_ks_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Json<SetBody>, ApiError> {
    get(state, &p.ks, &p.key, headers).await
}

/// Empties a set of the `sets` keyspace (concurrent additions the coordinating replica has not
/// seen survive).
#[utoipa::path(
    delete,
    path = "/api/v1/sets/{key}",
    tag = "sets",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
    ),
    responses(
        (status = 200, description = "Emptied", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, SETS_KEYSPACE, &p.key, headers).await
}

/// Empties a set of a set keyspace.
#[utoipa::path(
    delete,
    path = "/api/v1/keyspaces/{ks}/sets/{key}",
    tag = "sets",
    params(
        ("ks" = String, Path, description = "The keyspace (set)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
    ),
    responses(
        (status = 200, description = "Emptied", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_ks_set(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, &p.ks, &p.key, headers).await
}
