//! The one error body of the API: `{"error": "<stable code>", "message": "<human text>", ...}`.
//!
//! Every failure, whether it comes from the service ([`RegionError`]), from validation in this
//! layer, or from axum itself (a body that is not JSON, a body over the limit, an unknown
//! route, a wrong method), is turned into an [`ApiError`] and answered with an [`ErrorBody`].
//! The `error` code is stable and machine-readable; `message` is for humans and may change.
//! Extra fields appear only for the errors they belong to (`key` on `not_found`,
//! `current_version` on `conflict`, the quorum figures on `unavailable`, ...).

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_crdt::NodeId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::RegionError;

/// Stable codes produced by the HTTP layer itself (service errors bring their own, see
/// [`RegionError::code`]).
pub mod codes {
    /// No such route, or (for `GET`) no value under the key.
    pub const NOT_FOUND: &str = "not_found";
    /// The route exists but not for this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The body is not syntactically valid JSON.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// The request's `Content-Type` is not one the endpoint takes.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// The request body is larger than `http.max_body_bytes`.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The request is malformed in another way (JSON of the wrong shape, a bad `If-Match`, ...).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The key is empty or not valid UTF-8 after percent-decoding.
    pub const INVALID_KEY: &str = "invalid_key";
    /// `X-Consistency-Level` is not `ONE`, `QUORUM` or `ALL`.
    pub const INVALID_CONSISTENCY: &str = "invalid_consistency";
    /// `X-TTL` (or a body `ttl`) is not a whole number of seconds in `1..=315360000`.
    pub const INVALID_TTL: &str = "invalid_ttl";
    /// A causal context (`X-Context`, body `context`) that does not decode.
    pub const INVALID_CONTEXT: &str = "invalid_context";
    /// A body `value` that is not base64.
    pub const INVALID_BASE64: &str = "invalid_base64";
    /// A keyspace name outside `[a-z0-9_-]{1,64}`.
    pub const INVALID_KEYSPACE: &str = "invalid_keyspace";
    /// An unexpected failure inside the server.
    pub const INTERNAL: &str = "internal";
    /// No bearer token, a malformed `Authorization` header, or an unknown token (`401`, with
    /// `WWW-Authenticate: Bearer`).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The token does not have the scope the endpoint needs (`403`; `scope` names it).
    pub const FORBIDDEN: &str = "forbidden";
    /// The token is over its rate limit (`429`, with `Retry-After`).
    pub const RATE_LIMITED: &str = "rate_limited";
}

/// One replica that failed a request, as `unavailable` errors list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FailureBody {
    /// The replica's 64-bit node number, hex (16 digits).
    pub node: String,
    /// Why it failed.
    pub reason: String,
}

/// The error body every endpoint answers failures with.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (see `docs/api.md` for the table).
    #[schema(example = "not_found")]
    pub error: String,
    /// Human-readable explanation; may change between releases.
    pub message: String,
    /// The key the request named (`not_found`, `conflict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The keyspace involved (`unknown_keyspace`, `wrong_type`, `keyspace_exists`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspace: Option<String>,
    /// The keyspace's actual value type (`wrong_type`, `keyspace_exists`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `conflict`: the version the key is at (`null` when the key is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub current_version: Option<Option<String>>,
    /// `conflict`: the version `If-Match` named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<String>,
    /// `unavailable`: the consistency level asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// `unavailable`: replicas that had to answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<usize>,
    /// `unavailable`: replicas that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<usize>,
    /// `unavailable`: replicas asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<usize>,
    /// `unavailable`: the replicas that failed, with why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<FailureBody>>,
    /// `key_too_large`, `value_too_large`, `payload_too_large`: the limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `key_too_large`, `value_too_large`: the size sent, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// `not_found` on a multi-value register that was deleted: the causal context to write with
    /// (base64url), so a new write supersedes the delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `forbidden`: the scope the endpoint needs (`read`, `write` or `admin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ErrorBody {
    fn new(code: &str, message: String) -> ErrorBody {
        ErrorBody {
            error: code.to_owned(),
            message,
            key: None,
            keyspace: None,
            kind: None,
            current_version: None,
            expected_version: None,
            consistency: None,
            required: None,
            answered: None,
            asked: None,
            failures: None,
            limit: None,
            size: None,
            context: None,
            scope: None,
        }
    }
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    // Boxed: handlers return `Result<_, ApiError>` everywhere and the body is large.
    body: Box<ErrorBody>,
}

impl ApiError {
    /// An error with a status, a stable code and a message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, body: Box::new(ErrorBody::new(code, message.into())) }
    }

    /// `400` with `code`.
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `404 not_found` for an absent key.
    pub fn key_not_found(key: &str) -> ApiError {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("no value under key {key:?}"));
        e.body.key = Some(key.to_owned());
        e
    }

    /// `500 internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }

    /// Adds the `key` field.
    pub fn with_key(mut self, key: &str) -> ApiError {
        self.body.key = Some(key.to_owned());
        self
    }

    /// Adds the `context` field.
    pub(crate) fn with_context(mut self, context: String) -> ApiError {
        self.body.context = Some(context);
        self
    }

    /// Adds the `scope` field.
    pub(crate) fn with_scope(mut self, scope: &str) -> ApiError {
        self.body.scope = Some(scope.to_owned());
        self
    }

    /// Replaces the message.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.body.message = message.into();
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.body.error
    }

    /// `413 payload_too_large` for a body over `limit` bytes.
    pub(crate) fn payload_too_large(limit: usize) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        );
        e.body.limit = Some(limit);
        e
    }

    /// The error for a body that could not be read (over the limit, or the connection failed).
    pub(crate) fn from_bytes_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request(
                codes::INVALID_REQUEST,
                format!("cannot read the request body: {}", rejection.body_text()),
            )
        }
    }

    /// The error for a JSON body serde refused: a syntax error (or a truncated document) is
    /// `malformed_json`; valid JSON of the wrong shape is `invalid_request`.
    pub(crate) fn from_json_error(err: &serde_json::Error) -> ApiError {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request(codes::MALFORMED_JSON, format!("the body is not valid JSON: {err}"))
            }
            Category::Data => {
                ApiError::bad_request(codes::INVALID_REQUEST, format!("the JSON body has the wrong shape: {err}"))
            }
        }
    }
}

fn node_hex(id: NodeId) -> String {
    format!("{:016x}", id.0)
}

impl From<RegionError> for ApiError {
    fn from(err: RegionError) -> ApiError {
        let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = ErrorBody::new(err.code(), err.to_string());
        match &err {
            RegionError::Unavailable { level, required, answered, asked, failures } => {
                body.consistency = Some(level.as_str().to_ascii_uppercase());
                body.required = Some(*required);
                body.answered = Some(*answered);
                body.asked = Some(*asked);
                body.failures =
                    Some(failures.iter().map(|(n, r)| FailureBody { node: node_hex(*n), reason: r.clone() }).collect());
            }
            RegionError::VersionConflict { expected, current } => {
                body.current_version = Some(current.clone());
                body.expected_version = Some(expected.clone());
            }
            RegionError::UnknownKeyspace(name) => body.keyspace = Some(name.clone()),
            RegionError::WrongType { keyspace, actual, .. } => {
                body.keyspace = Some(keyspace.clone());
                body.kind = Some(actual.as_str().to_owned());
            }
            RegionError::KeyspaceExists { name, existing, .. } => {
                body.keyspace = Some(name.clone());
                body.kind = Some(existing.as_str().to_owned());
            }
            RegionError::KeyTooLarge { len, max } | RegionError::ValueTooLarge { len, max } => {
                body.limit = Some(*max);
                body.size = Some(*len);
            }
            _ => {}
        }
        ApiError { status, body: Box::new(body) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Quorum failures are transient; a client may retry after a short pause.
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
