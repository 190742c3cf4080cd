//! The HTTP API: a thin translation of [`KvService`] into JSON over HTTP/1.1 (axum).
//!
//! Every handler validates all of its input (path, headers, body, limits) before it calls the
//! service, so a bad request changes nothing (design §5.9). Every failure is answered with
//! one JSON shape, `{"error": "<stable code>", "message": "...", ...}` ([`ErrorBody`]),
//! including axum's own rejections, unknown routes (`404 not_found`) and wrong methods
//! (`405 method_not_allowed`). `docs/api.md` describes every endpoint and the table of codes;
//! `GET /openapi.json` serves the OpenAPI 3 document generated from the handlers.
//!
//! Keys are the bytes of one percent-decoded UTF-8 path segment. Values travel raw
//! (`application/octet-stream`) or base64 in JSON; causal contexts travel as base64url of
//! [`CausalContext::encode`](meridian_crdt::CausalContext::encode), opaque to clients.
//!
//! # Layout
//!
//! - `mod.rs` (this file): [`router`], [`serve`], the shared extractors (path, raw body,
//!   JSON body) and header parsing (`X-Consistency-Level`, `X-TTL`, `If-Match`, `X-Context`).
//! - [`error`]: [`ApiError`] and [`ErrorBody`], the one error shape, and the mapping from
//!   [`RegionError`] and axum rejections.
//! - [`keys`]: `PUT/GET/DELETE /api/v1/keys/{key}` and the keyspace-scoped form, for `lww` and
//!   `mvr` keyspaces.
//! - [`counters`]: PN-counter endpoints.
//! - [`sets`]: add-wins set endpoints.
//! - [`keyspaces`]: list, show and create keyspaces.
//! - [`cluster`]: `/api/v1/cluster/status` and `/healthz`.
//! - [`admin`]: hints, repair, decommission and digest under `/api/v1/cluster/`.
//! - [`openapi`]: the generated OpenAPI document and `/openapi.json`.
//! - [`dashboard`]: `GET /dashboard`, the live web dashboard (a static page polling the JSON
//!   endpoints above).
//! - [`auth`]: the middleware on every route: bearer tokens, scopes, per-token rate limits
//!   ([`router_with_auth`]).
//! - [`tls`]: HTTPS ([`serve_api`] with a rustls configuration from `http.tls_cert` and
//!   `http.tls_key`).

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod counters;
pub mod dashboard;
pub mod error;
pub mod keys;
pub mod keyspaces;
pub mod metrics;
pub mod openapi;
pub mod regions;
pub mod sets;
pub mod tls;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{any, delete, get, post};
use axum::Router;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use meridian_config::ConsistencyLevel;
use meridian_crdt::{CausalContext, ValueKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

pub use self::auth::ApiAuth;
use self::error::codes;
pub use self::error::{ApiError, ErrorBody};
use crate::error::RegionError;
use crate::service::{IngressLimits, KvService};

/// The largest TTL the API accepts: ten years of 365 days, in seconds.
pub const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The header that names a request's consistency level.
pub const CONSISTENCY_HEADER: &str = "x-consistency-level";
/// The header that gives a write a time to live, in seconds.
pub const TTL_HEADER: &str = "x-ttl";
/// The header that carries a causal context (base64url) for `mvr` writes.
pub const CONTEXT_HEADER: &str = "x-context";

/// What every handler shares: the service and the ingress limits read when the router was
/// built.
#[derive(Clone)]
pub(crate) struct AppState {
    service: Arc<dyn KvService>,
    limits: IngressLimits,
    auth: ApiAuth,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl AppState {
    /// The type of keyspace `ks` (`404 unknown_keyspace` if there is none).
    fn keyspace_kind(&self, ks: &str) -> Result<ValueKind, ApiError> {
        Ok(self.service.keyspace(ks)?.kind)
    }

    /// The key as bytes, checked against the limits: empty is `400 invalid_key`, too long is
    /// `414 key_too_large`.
    fn check_key(&self, key: &str) -> Result<Vec<u8>, ApiError> {
        if key.is_empty() {
            return Err(ApiError::bad_request(codes::INVALID_KEY, "the key is empty"));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(RegionError::KeyTooLarge { len: key.len(), max: self.limits.max_key_bytes }.into());
        }
        Ok(key.as_bytes().to_vec())
    }

    /// `413 value_too_large` if `len` is over the value limit.
    fn check_value_len(&self, len: usize) -> Result<(), ApiError> {
        if len > self.limits.max_value_bytes {
            return Err(RegionError::ValueTooLarge { len, max: self.limits.max_value_bytes }.into());
        }
        Ok(())
    }
}

/// `409 wrong_type`: keyspace `ks` holds `actual` values and this endpoint serves `endpoint`.
fn wrong_type(ks: &str, actual: ValueKind, endpoint: ValueKind, message: Option<String>) -> ApiError {
    let err: ApiError = RegionError::WrongType { keyspace: ks.to_owned(), actual, endpoint }.into();
    match message {
        Some(m) => err.with_message(m),
        None => err,
    }
}

/// The router of the whole API over `service`, with the body limit set from
/// [`KvService::limits`], and authentication off.
pub fn router(service: Arc<dyn KvService>) -> Router {
    router_with_auth(service, ApiAuth::disabled())
}

/// The router of the whole API over `service`, every route behind the [`auth`] middleware
/// with `auth`'s tokens.
pub fn router_with_auth(service: Arc<dyn KvService>, auth: ApiAuth) -> Router {
    let limits = service.limits();
    let state = AppState { service, limits, auth: auth.clone() };
    Router::new()
        .route("/api/v1/keys/{key}", get(keys::get_key).put(keys::put_key).delete(keys::delete_key))
        .route(
            "/api/v1/keyspaces/{ks}/keys/{key}",
            get(keys::get_ks_key).put(keys::put_ks_key).delete(keys::delete_ks_key),
        )
        .route(
            "/api/v1/counters/{key}",
            get(counters::get_counter).post(counters::post_counter).delete(counters::delete_counter),
        )
        .route(
            "/api/v1/keyspaces/{ks}/counters/{key}",
            get(counters::get_ks_counter).post(counters::post_ks_counter).delete(counters::delete_ks_counter),
        )
        .route("/api/v1/sets/{key}", get(sets::get_set).post(sets::post_set).delete(sets::delete_set))
        .route(
            "/api/v1/keyspaces/{ks}/sets/{key}",
            get(sets::get_ks_set).post(sets::post_ks_set).delete(sets::delete_ks_set),
        )
        // A `{key}` segment never matches the empty string: name the mistake instead of 404.
        .route("/api/v1/keys/", any(empty_key))
        .route("/api/v1/counters/", any(empty_key))
        .route("/api/v1/sets/", any(empty_key))
        .route("/api/v1/keyspaces/{ks}/keys/", any(empty_key))
        .route("/api/v1/keyspaces/{ks}/counters/", any(empty_key))
        .route("/api/v1/keyspaces/{ks}/sets/", any(empty_key))
        .route("/api/v1/keyspaces", get(keyspaces::list_keyspaces).post(keyspaces::create_keyspace))
        .route("/api/v1/keyspaces/{ks}", get(keyspaces::get_keyspace))
        .route("/api/v1/cluster/status", get(cluster::cluster_status))
        .route("/api/v1/cluster/hints", get(admin::get_hints))
        .route("/api/v1/cluster/repair", get(admin::get_repair).post(admin::post_repair))
        .route("/api/v1/cluster/nodes/{id}", delete(admin::delete_node))
        .route("/api/v1/cluster/nodes/", any(admin::empty_node_id))
        .route("/api/v1/cluster/digest", get(admin::get_digest))
        .route("/api/v1/cluster/digest/region", get(admin::get_region_digest))
        .route("/api/v1/cluster/snapshot", post(admin::post_snapshot))
        .route("/api/v1/cluster/ring", get(cluster::ring))
        .route("/api/v1/regions", get(regions::get_regions))
        .route("/api/v1/regions/sync", post(regions::sync_all))
        .route("/api/v1/regions/{name}/fence", post(regions::fence))
        .route("/api/v1/regions/{name}/unfence", post(regions::unfence))
        .route("/api/v1/regions/{name}/sync", post(regions::sync_one))
        .route("/healthz", get(cluster::healthz))
        .route("/metrics", get(metrics::get_metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/dashboard", get(dashboard::get_dashboard))
        // Every route above; not the fallback (an unknown route is a 404 for anyone).
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::require))
        .fallback(route_not_found)
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// Serves the API over `listener` until `shutdown` completes, then stops accepting and waits
/// for in-flight requests to finish (graceful shutdown).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    service: Arc<dyn KvService>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_api(listener, router(service), None, shutdown).await
}

/// Serves `app` over `listener`, as HTTPS when `tls` is given (see [`tls::TlsListener`]), else
/// plain HTTP, until `shutdown` completes; then stops accepting and waits for in-flight
/// requests to finish.
pub async fn serve_api<F>(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
    }
}

async fn route_not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

async fn empty_key() -> ApiError {
    ApiError::bad_request(codes::INVALID_KEY, "the key is empty")
}

// ---------------------------------------------------------------------------------------------
// Extractors

/// Path parameters, with axum's rejection turned into an [`ApiError`]: a parameter that is not
/// UTF-8 after percent-decoding is `400 invalid_key` (for the key) or `400 invalid_request`.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(match e.kind() {
                PathErrorKind::InvalidUtf8InPathParam { key } if key == "key" => {
                    ApiError::bad_request(codes::INVALID_KEY, "the key is not valid UTF-8 after percent-decoding")
                }
                PathErrorKind::InvalidUtf8InPathParam { key } => ApiError::bad_request(
                    codes::INVALID_REQUEST,
                    format!("path parameter {key} is not valid UTF-8 after percent-decoding"),
                ),
                _ => ApiError::bad_request(codes::INVALID_REQUEST, e.body_text()),
            }),
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// `{key}` of the default-keyspace routes.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct KeyParam {
    key: String,
}

/// `{ks}` and `{key}` of the keyspace-scoped routes.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct KsKeyParam {
    ks: String,
    key: String,
}

/// The raw request body, with the body limit's rejection turned into
/// `413 payload_too_large`.
#[derive(Debug)]
pub(crate) struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| ApiError::from_bytes_rejection(r, state.limits.max_body_bytes))
    }
}

/// A JSON body: `Content-Type` `application/json` (or `application/*+json`), none, or
/// `application/x-www-form-urlencoded` (what `curl -d` sends by default; the body is read as
/// JSON, never form-decoded); any other type is `415 unsupported_media_type`. Bad syntax is
/// `400 malformed_json`, the wrong shape `400 invalid_request`, too large
/// `413 payload_too_large`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match media_type(req.headers())? {
            Some(m) if is_json(&m) || m == FORM_URLENCODED => {}
            None => {}
            Some(m) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    codes::UNSUPPORTED_MEDIA_TYPE,
                    format!("Content-Type {m} is not supported here; send application/json"),
                ))
            }
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON object, classifying serde's errors. Anything but an object is
/// `400 invalid_request` (serde would otherwise accept `[1]` for a struct with one field).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::from_json_error(&e))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(codes::INVALID_REQUEST, "the JSON body must be an object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::from_json_error(&e))
}

/// The media type of the request (`type/subtype`, lowercase, parameters dropped), if any.
fn media_type(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, codes::UNSUPPORTED_MEDIA_TYPE, "Content-Type is not ASCII")
    })?;
    let essence = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    Ok(Some(essence))
}

/// What `curl -d` and `curl --data-binary` send when no `Content-Type` is given. Bodies of this
/// type are taken as they are (raw value, or JSON on JSON endpoints), never form-decoded.
pub(crate) const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

// ---------------------------------------------------------------------------------------------
// Headers

/// The consistency level as the API writes it: `ONE`, `QUORUM`, `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConsistencyName {
    /// One replica.
    One,
    /// A majority of the replicas.
    Quorum,
    /// Every replica.
    All,
}

impl From<ConsistencyLevel> for ConsistencyName {
    fn from(level: ConsistencyLevel) -> Self {
        match level {
            ConsistencyLevel::One => ConsistencyName::One,
            ConsistencyLevel::Quorum => ConsistencyName::Quorum,
            ConsistencyLevel::All => ConsistencyName::All,
        }
    }
}

/// Parses a consistency level name, case-insensitively.
pub fn parse_consistency(text: &str) -> Option<ConsistencyLevel> {
    let t = text.trim();
    [ConsistencyLevel::One, ConsistencyLevel::Quorum, ConsistencyLevel::All]
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(t))
}

/// `X-Consistency-Level`, if given (`400 invalid_consistency` if it is not a level).
fn consistency(headers: &HeaderMap) -> Result<Option<ConsistencyLevel>, ApiError> {
    let Some(value) = headers.get(CONSISTENCY_HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            codes::INVALID_CONSISTENCY,
            "X-Consistency-Level must be ONE, QUORUM or ALL (case-insensitive)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    parse_consistency(text).map(Some).ok_or_else(bad)
}

fn invalid_ttl(what: &str) -> ApiError {
    ApiError::bad_request(
        codes::INVALID_TTL,
        format!("{what} must be a whole number of seconds from 1 to {MAX_TTL_SECS} (10 years)"),
    )
}

/// Seconds → ms, if `secs` is in `1..=MAX_TTL_SECS`.
fn ttl_ms(secs: u64) -> Option<u64> {
    (1..=MAX_TTL_SECS).contains(&secs).then(|| secs * 1000)
}

/// `X-TTL` in ms, if given (`400 invalid_ttl` unless it is a whole number of seconds in
/// `1..=MAX_TTL_SECS`).
fn ttl_header(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(TTL_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_ttl("X-TTL"))?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_ttl("X-TTL"));
    }
    text.parse::<u64>().ok().and_then(ttl_ms).map(Some).ok_or_else(|| invalid_ttl("X-TTL"))
}

/// A body's `ttl` field in ms (same rules as `X-TTL`; JSON `null` is absent).
fn ttl_body(value: Option<&serde_json::Value>) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v.as_u64().and_then(ttl_ms).map(Some).ok_or_else(|| invalid_ttl("ttl")),
    }
}

/// The TTL of a write from the header and the body: either, or both if they agree.
fn ttl_of(headers: &HeaderMap, body: Option<&serde_json::Value>) -> Result<Option<u64>, ApiError> {
    match (ttl_header(headers)?, ttl_body(body)?) {
        (Some(h), Some(b)) if h != b => {
            Err(ApiError::bad_request(codes::INVALID_TTL, "X-TTL and the body's ttl disagree; give one"))
        }
        (h, b) => Ok(h.or(b)),
    }
}

/// `If-Match`, if given: one version, surrounding quotes stripped as in ETags. Empty, `*` and
/// lists are `400 invalid_request`.
fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = |why: &str| ApiError::bad_request(codes::INVALID_REQUEST, format!("If-Match: {why}"));
    let text = value.to_str().map_err(|_| bad("not ASCII"))?.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let version = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    if version.is_empty() {
        return Err(bad("the version is empty"));
    }
    if version == "*" {
        return Err(bad("`*` is not supported; name the version read"));
    }
    if version.contains(',') || version.contains('"') {
        return Err(bad("give exactly one version"));
    }
    Ok(Some(version.to_owned()))
}

/// `X-Context`, if given, decoded (`400 invalid_context` if it does not decode).
fn context_header(headers: &HeaderMap) -> Result<Option<CausalContext>, ApiError> {
    let Some(value) = headers.get(CONTEXT_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_context("X-Context is not ASCII"))?;
    decode_context(text).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Encodings

/// Standard base64, padding optional on input (values and set members).
const VALUE_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64 without padding, padding optional on input (causal contexts).
const CONTEXT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Bytes as standard base64 (padded).
pub fn encode_value(bytes: &[u8]) -> String {
    VALUE_B64.encode(bytes)
}

fn decode_value(text: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    VALUE_B64
        .decode(text)
        .map_err(|e| ApiError::bad_request(codes::INVALID_BASE64, format!("{what} is not base64: {e}")))
}

/// A causal context as the API carries it: base64url (no padding) of
/// [`CausalContext::encode`].
pub fn encode_context(ctx: &CausalContext) -> String {
    CONTEXT_B64.encode(ctx.encode())
}

fn invalid_context(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_CONTEXT, message)
}

/// The inverse of [`encode_context`] (`400 invalid_context`).
fn decode_context(text: &str) -> Result<CausalContext, ApiError> {
    let bytes =
        CONTEXT_B64.decode(text.trim()).map_err(|e| invalid_context(format!("the context is not base64url: {e}")))?;
    CausalContext::decode(&bytes).map_err(|e| invalid_context(format!("the context does not decode: {e}")))
}

/// The context of a write from the header and the body: either, or both if they agree.
fn context_of(headers: &HeaderMap, body: Option<&str>) -> Result<Option<CausalContext>, ApiError> {
    let body = body.map(decode_context).transpose()?;
    match (context_header(headers)?, body) {
        (Some(h), Some(b)) if h != b => Err(invalid_context("X-Context and the body's context disagree; give one")),
        (h, b) => Ok(h.or(b)),
    }
}
