//! PN-counters: `POST/GET/DELETE /api/v1/counters/{key}` (the `counters` keyspace) and
//! `/api/v1/keyspaces/{ks}/counters/{key}`.
//!
//! A counter that was never incremented (or was deleted, or expired) reads as `0` with
//! `200`: every counter exists and starts at zero, so there is no `404` for an absent one.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use meridian_crdt::{Op, ReadValue, ValueKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::{DeletedBody, WriteBody};
use super::{
    consistency, if_match, ttl_of, wrong_type, ApiError, ApiJson, ApiPath, AppState, ErrorBody, KeyParam, KsKeyParam,
};
use crate::service::WriteRequest;

/// The keyspace `/api/v1/counters/{key}` addresses.
pub const COUNTERS_KEYSPACE: &str = "counters";

/// A `POST` body: the amount to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterUpdate {
    /// The amount to add (a 64-bit integer, negative to decrement, `0` changes nothing but the
    /// TTL if one is given).
    pub delta: i64,
    /// Time to live in seconds (same as `X-TTL`); replaces the counter's expiry.
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 315360000)]
    pub ttl: Option<serde_json::Value>,
}

/// A counter's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CounterBody {
    /// The key.
    pub key: String,
    /// The value; `0` for a counter that was never incremented, was deleted or expired.
    pub value: i64,
}

fn check_counter(state: &AppState, ks: &str) -> Result<(), ApiError> {
    match state.keyspace_kind(ks)? {
        ValueKind::Counter => Ok(()),
        other => Err(wrong_type(ks, other, ValueKind::Counter, None)),
    }
}

async fn post(
    state: AppState,
    ks: &str,
    key: &str,
    headers: HeaderMap,
    body: CounterUpdate,
) -> Result<Json<WriteBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    check_counter(&state, ks)?;
    let ttl_ms = ttl_of(&headers, body.ttl.as_ref())?;
    let op = Op::CounterAdd { delta: body.delta, ttl_ms };
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op, consistency: level, if_match };
    let out = state.service.write(req).await?;
    Ok(Json(WriteBody::new(key, &out)))
}

async fn get(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Json<CounterBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    check_counter(&state, ks)?;
    let out = state.service.read(ks, &key_bytes, level).await?;
    let value = match out.value {
        ReadValue::Counter(v) => v,
        ReadValue::Absent => 0,
        other => return Err(ApiError::internal(format!("keyspace {ks:?} returned a non-counter value: {other:?}"))),
    };
    Ok(Json(CounterBody { key: key.to_owned(), value }))
}

async fn delete(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Json<DeletedBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    check_counter(&state, ks)?;
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op: Op::Reset, consistency: level, if_match };
    let out = state.service.write(req).await?;
    Ok(Json(DeletedBody::new(key, &out)))
}

/// Adds `delta` to a counter of the `counters` keyspace.
#[utoipa::path(
    post,
    path = "/api/v1/counters/{key}",
    tag = "counters",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
    ),
    request_body(content = CounterUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "Added", body = WriteBody),
        (status = 400, description = "Bad input (invalid_request for a missing or non-integer delta, malformed_json, invalid_ttl, ...)", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn post_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CounterUpdate>,
) -> Result<Json<WriteBody>, ApiError> {
    post(state, COUNTERS_KEYSPACE, &p.key, headers, body).await
}

/// Adds `delta` to a counter of a counter keyspace.
#[utoipa::path(
    post,
    path = "/api/v1/keyspaces/{ks}/counters/{key}",
    tag = "counters",
    params(
        ("ks" = String, Path, description = "The keyspace (counter)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
    ),
    request_body(content = CounterUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "Added", body = WriteBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn post_ks_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CounterUpdate>,
) -> Result<Json<WriteBody>, ApiError> {
    post(state, &p.ks, &p.key, headers, body).await
}

/// Reads a counter of the `counters` keyspace. A counter that was never incremented is `0`
/// (`200`, not `404`).
#[utoipa::path(
    get,
    path = "/api/v1/counters/{key}",
    tag = "counters",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The value; 0 for a counter never incremented, deleted or expired", body = CounterBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Json<CounterBody>, ApiError> {
    get(state, COUNTERS_KEYSPACE, &p.key, headers).await
}

/// Reads a counter of a counter keyspace (`0` if never incremented).
#[utoipa::path(
    get,
    path = "/api/v1/keyspaces/{ks}/counters/{key}",
    tag = "counters",
    params(
        ("ks" = String, Path, description = "The keyspace (counter)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The value; 0 for a counter never incremented, deleted or expired", body = CounterBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_ks_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Json<CounterBody>, ApiError> {
    get(state, &p.ks, &p.key, headers).await
}

/// Resets a counter of the `counters` keyspace to 0 (increments the coordinating replica
/// has not seen survive).
#[utoipa::path(
    delete,
    path = "/api/v1/counters/{key}",
    tag = "counters",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
    ),
    responses(
        (status = 200, description = "Reset", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, COUNTERS_KEYSPACE, &p.key, headers).await
}

/// Resets a counter of a counter keyspace.
#[utoipa::path(
    delete,
    path = "/api/v1/keyspaces/{ks}/counters/{key}",
    tag = "counters",
    params(
        ("ks" = String, Path, description = "The keyspace (counter)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version; else 409 conflict"),
    ),
    responses(
        (status = 200, description = "Reset", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_ks_counter(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, &p.ks, &p.key, headers).await
}
