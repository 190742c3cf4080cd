//! Registers: `PUT/GET/DELETE /api/v1/keys/{key}` (the `default` keyspace) and
//! `/api/v1/keyspaces/{ks}/keys/{key}`, for `lww` and `mvr` keyspaces.
//!
//! An `lww` key holds one value; a write is [`Op::LwwPut`], a delete [`Op::LwwDelete`]. An
//! `mvr` key holds one value per concurrent write (siblings) and a causal context; a write
//! carrying the context of a read ([`Op::MvrPut`]) supersedes what that read saw, and a delete
//! is [`Op::Reset`], superseding everything the coordinating replica observed.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_crdt::{Op, ReadValue, ValueKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::codes;
use super::ErrorBody;
use super::{
    consistency, context_of, encode_context, encode_value, if_match, is_json, media_type, parse_json, ttl_of,
    wrong_type, ApiError, ApiPath, AppState, ConsistencyName, KeyParam, KsKeyParam, RawBody,
};
use crate::service::{WriteOutcome, WriteRequest};

/// The keyspace `/api/v1/keys/{key}` addresses.
pub const DEFAULT_KEYSPACE: &str = "default";

/// A `PUT` body sent as `application/json`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// The value, base64 (standard alphabet; padding optional).
    pub value: String,
    /// `mvr` only: the `context` of an earlier `GET` (same as `X-Context`).
    #[serde(default)]
    pub context: Option<String>,
    /// Time to live in seconds (same as `X-TTL`).
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 315360000)]
    pub ttl: Option<serde_json::Value>,
}

/// The raw value of an `application/octet-stream` `PUT` (OpenAPI schema only).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawValue(pub Vec<u8>);

/// What a successful write answers (keys, counters, sets).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WriteBody {
    /// The key written.
    pub key: String,
    /// The version of the written state (`If-Match` compares it).
    #[schema(example = "7301444403200000000/42")]
    pub version: String,
    /// The write's HLC physical time, ms since the UNIX epoch.
    pub timestamp: u64,
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The level the write was acknowledged at.
    pub consistency: ConsistencyName,
    /// Replicas that had acknowledged when the write succeeded.
    pub acknowledged: usize,
    /// Replicas of the key (N).
    pub replicas: usize,
}

impl WriteBody {
    pub(crate) fn new(key: &str, out: &WriteOutcome) -> WriteBody {
        WriteBody {
            key: key.to_owned(),
            version: out.version(),
            timestamp: out.ts.physical_ms(),
            status: "ok",
            consistency: out.consistency.into(),
            acknowledged: out.acknowledged,
            replicas: out.replicas,
        }
    }
}

/// What a successful delete answers (keys, counters, sets).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeletedBody {
    /// The key deleted.
    pub key: String,
    /// Always `deleted`.
    #[schema(example = "deleted")]
    pub status: &'static str,
    /// The version of the tombstone.
    pub version: String,
    /// The delete's HLC physical time, ms since the UNIX epoch.
    pub timestamp: u64,
    /// The level the delete was acknowledged at.
    pub consistency: ConsistencyName,
    /// Replicas that had acknowledged when the delete succeeded.
    pub acknowledged: usize,
}

impl DeletedBody {
    pub(crate) fn new(key: &str, out: &WriteOutcome) -> DeletedBody {
        DeletedBody {
            key: key.to_owned(),
            status: "deleted",
            version: out.version(),
            timestamp: out.ts.physical_ms(),
            consistency: out.consistency.into(),
            acknowledged: out.acknowledged,
        }
    }
}

/// The value of an `lww` key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LwwValueBody {
    /// The key.
    pub key: String,
    /// The value, base64 (standard alphabet, padded).
    pub value: String,
    /// The version (`If-Match` compares it; also the `ETag`).
    pub version: String,
    /// When the value was written (HLC physical time), ms since the UNIX epoch.
    pub timestamp: u64,
    /// When the key expires, ms since the UNIX epoch, if it has a TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// The values of an `mvr` key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MvrValueBody {
    /// The key.
    pub key: String,
    /// The concurrent values, base64 (standard alphabet), sorted by bytes.
    pub siblings: Vec<String>,
    /// Opaque causal context: send it back (`X-Context` or body `context`) with the next write
    /// to supersede these siblings.
    pub context: String,
    /// The version (greatest HLC folded into the state).
    pub version: String,
    /// When the key expires, ms since the UNIX epoch, if it has a TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A register's value: `lww` or `mvr` depending on the keyspace.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum KeyValueBody {
    /// An `lww` key.
    Lww(LwwValueBody),
    /// An `mvr` key.
    Mvr(MvrValueBody),
}

/// The register type of keyspace `ks`, or `409 wrong_type` for counters and sets.
fn register_kind(state: &AppState, ks: &str) -> Result<ValueKind, ApiError> {
    match state.keyspace_kind(ks)? {
        kind @ (ValueKind::Lww | ValueKind::Mvr) => Ok(kind),
        other => {
            let path = if other == ValueKind::Counter { "counters" } else { "sets" };
            Err(wrong_type(
                ks,
                other,
                ValueKind::Lww,
                Some(format!(
                    "keyspace {ks:?} holds {other} values; the keys endpoints serve lww and mvr keyspaces \
                     (use /api/v1/keyspaces/{ks}/{path}/{{key}})"
                )),
            ))
        }
    }
}

fn etag(version: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{version}\"")).ok()
}

fn with_etag(mut resp: Response, version: &str) -> Response {
    if let Some(v) = etag(version) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// The value, context and TTL a `PUT` body carries.
struct PutInput {
    value: Vec<u8>,
    body_context: Option<String>,
    body_ttl: Option<serde_json::Value>,
}

fn put_input(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<PutInput, ApiError> {
    // JSON is the envelope; multipart bodies are envelopes this API does not read. Anything
    // else (octet-stream, none, text/*, curl's default form type, image/png, ...) is the value,
    // taken byte for byte.
    let input = match media_type(headers)? {
        Some(m) if is_json(&m) => {
            // The body limit bounds the decoding work; the value limit applies to the bytes.
            let b: PutBody = parse_json(body)?;
            PutInput { value: super::decode_value(&b.value, "value")?, body_context: b.context, body_ttl: b.ttl }
        }
        Some(m) if m.starts_with("multipart/") => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {m} is not supported: send the value raw (e.g. application/octet-stream) \
                     or a JSON envelope (application/json)"
                ),
            ))
        }
        _ => PutInput { value: body.to_vec(), body_context: None, body_ttl: None },
    };
    state.check_value_len(input.value.len())?;
    Ok(input)
}

async fn put(state: AppState, ks: &str, key: &str, headers: HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    let kind = register_kind(&state, ks)?;
    let input = put_input(&state, &headers, body)?;
    let ttl_ms = ttl_of(&headers, input.body_ttl.as_ref())?;
    let context = context_of(&headers, input.body_context.as_deref())?;
    let op = match kind {
        ValueKind::Mvr => Op::MvrPut { value: Some(input.value), context: context.unwrap_or_default(), ttl_ms },
        _ => {
            if context.is_some() {
                return Err(ApiError::bad_request(
                    codes::INVALID_REQUEST,
                    format!("keyspace {ks:?} is lww: a causal context only applies to mvr keyspaces"),
                ));
            }
            Op::LwwPut { value: input.value, ttl_ms }
        }
    };
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op, consistency: level, if_match };
    let out = state.service.write(req).await?;
    let body = WriteBody::new(key, &out);
    let version = body.version.clone();
    Ok(with_etag(Json(body).into_response(), &version))
}

async fn get(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Response, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let kind = register_kind(&state, ks)?;
    let out = state.service.read(ks, &key_bytes, level).await?;
    let version = out.version().unwrap_or_default();
    let expires_at = out.record.as_ref().and_then(|r| r.expires_at_ms());
    let body = match out.value {
        ReadValue::Lww { value, ts } => KeyValueBody::Lww(LwwValueBody {
            key: key.to_owned(),
            value: encode_value(&value),
            version: version.clone(),
            timestamp: ts.physical_ms(),
            expires_at,
        }),
        ReadValue::Mvr { siblings, context } => KeyValueBody::Mvr(MvrValueBody {
            key: key.to_owned(),
            siblings: siblings.iter().map(|v| encode_value(v)).collect(),
            context: encode_context(&context),
            version: version.clone(),
            expires_at,
        }),
        ReadValue::Absent => {
            let err = ApiError::key_not_found(key);
            return Err(match (kind, &out.record) {
                (ValueKind::Mvr, Some(rec)) => err.with_context(encode_context(&rec.context())),
                _ => err,
            });
        }
        other => return Err(ApiError::internal(format!("keyspace {ks:?} returned a non-register value: {other:?}"))),
    };
    Ok(with_etag(Json(body).into_response(), &version))
}

async fn delete(state: AppState, ks: &str, key: &str, headers: HeaderMap) -> Result<Json<DeletedBody>, ApiError> {
    let key_bytes = state.check_key(key)?;
    let level = consistency(&headers)?;
    let if_match = if_match(&headers)?;
    let kind = register_kind(&state, ks)?;
    let op = if kind == ValueKind::Lww { Op::LwwDelete } else { Op::Reset };
    let req = WriteRequest { keyspace: ks.to_owned(), key: key_bytes, op, consistency: level, if_match };
    let out = state.service.write(req).await?;
    Ok(Json(DeletedBody::new(key, &out)))
}

/// Writes a value under a key of the `default` keyspace.
#[utoipa::path(
    put,
    path = "/api/v1/keys/{key}",
    tag = "keys",
    params(
        ("key" = String, Path, description = "The key (1..=256 bytes of UTF-8, percent-encoded)"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive); default: the keyspace's, else the cluster's"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version (quotes optional); else 409 conflict"),
        ("X-Context" = Option<String>, Header, nullable = false, description = "mvr keyspaces: the context of an earlier GET, so this write supersedes what it saw"),
    ),
    request_body(
        description = "The raw value (application/octet-stream, or no Content-Type) or a JSON envelope",
        content(
            (RawValue = "application/octet-stream"),
            (PutBody = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Written", body = WriteBody, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 400, description = "Bad input (invalid_key, invalid_consistency, invalid_ttl, invalid_context, invalid_base64, malformed_json, invalid_request)", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "conflict (If-Match failed; current_version) or wrong_type", body = ErrorBody),
        (status = 413, description = "value_too_large or payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable: the consistency level could not be met", body = ErrorBody),
    )
)]
pub(crate) async fn put_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    put(state, DEFAULT_KEYSPACE, &p.key, headers, &body).await
}

/// Writes a value under a key of an `lww` or `mvr` keyspace.
#[utoipa::path(
    put,
    path = "/api/v1/keyspaces/{ks}/keys/{key}",
    tag = "keys",
    params(
        ("ks" = String, Path, description = "The keyspace (lww or mvr)"),
        ("key" = String, Path, description = "The key (1..=256 bytes of UTF-8, percent-encoded)"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("X-TTL" = Option<u64>, Header, nullable = false, minimum = 1, maximum = 315360000, description = "Time to live in seconds (1..=315360000)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Write only if the key is at this version"),
        ("X-Context" = Option<String>, Header, nullable = false, description = "mvr keyspaces: the context of an earlier GET"),
    ),
    request_body(
        description = "The raw value (application/octet-stream, or no Content-Type) or a JSON envelope",
        content(
            (RawValue = "application/octet-stream"),
            (PutBody = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Written", body = WriteBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "conflict or wrong_type", body = ErrorBody),
        (status = 413, description = "value_too_large or payload_too_large", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn put_ks_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    put(state, &p.ks, &p.key, headers, &body).await
}

/// Reads a key of the `default` keyspace.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{key}",
    tag = "keys",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The value (lww) or the siblings and context (mvr)", body = KeyValueBody, headers(("ETag" = String, description = "The version, quoted"))),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "not_found (never written, deleted or expired) or unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    get(state, DEFAULT_KEYSPACE, &p.key, headers).await
}

/// Reads a key of an `lww` or `mvr` keyspace.
#[utoipa::path(
    get,
    path = "/api/v1/keyspaces/{ks}/keys/{key}",
    tag = "keys",
    params(
        ("ks" = String, Path, description = "The keyspace (lww or mvr)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
    ),
    responses(
        (status = 200, description = "The value (lww) or the siblings and context (mvr)", body = KeyValueBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "not_found or unknown_keyspace", body = ErrorBody),
        (status = 409, description = "wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_ks_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    get(state, &p.ks, &p.key, headers).await
}

/// Deletes a key of the `default` keyspace (writes a tombstone).
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{key}",
    tag = "keys",
    params(
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Delete only if the key is at this version"),
    ),
    responses(
        (status = 200, description = "Deleted", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "conflict or wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, DEFAULT_KEYSPACE, &p.key, headers).await
}

/// Deletes a key of an `lww` or `mvr` keyspace (`mvr`: supersedes every sibling the
/// coordinating replica holds).
#[utoipa::path(
    delete,
    path = "/api/v1/keyspaces/{ks}/keys/{key}",
    tag = "keys",
    params(
        ("ks" = String, Path, description = "The keyspace (lww or mvr)"),
        ("key" = String, Path, description = "The key"),
        ("X-Consistency-Level" = Option<super::ConsistencyName>, Header, nullable = false, description = "ONE, QUORUM or ALL (case-insensitive)"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Delete only if the key is at this version"),
    ),
    responses(
        (status = 200, description = "Deleted", body = DeletedBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
        (status = 409, description = "conflict or wrong_type", body = ErrorBody),
        (status = 414, description = "key_too_large", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn delete_ks_key(
    State(state): State<AppState>,
    ApiPath(p): ApiPath<KsKeyParam>,
    headers: HeaderMap,
) -> Result<Json<DeletedBody>, ApiError> {
    delete(state, &p.ks, &p.key, headers).await
}
