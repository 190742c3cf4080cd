//! Keyspaces: `GET/POST /api/v1/keyspaces` and `GET /api/v1/keyspaces/{ks}`.
//!
//! Creating a keyspace is idempotent: creating one that exists with the same type answers
//! `200` with it, with another type `409 keyspace_exists`; a new one is `201`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_crdt::ValueKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::codes;
use super::{ApiError, ApiJson, ApiPath, AppState, ConsistencyName, ErrorBody};
use crate::error::RegionError;
use crate::service::KeyspaceInfo;

/// A `POST /api/v1/keyspaces` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyspace {
    /// The name: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
    #[schema(example = "carts")]
    pub name: String,
    /// The value type: `lww` (the default), `mvr`, `counter` or `set`.
    #[serde(rename = "type", default)]
    #[schema(example = "mvr")]
    pub kind: Option<String>,
}

/// A keyspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyspaceBody {
    /// Its name.
    pub name: String,
    /// Its value type: `lww`, `mvr`, `counter` or `set`.
    #[serde(rename = "type")]
    #[schema(example = "lww")]
    pub kind: String,
    /// Its default consistency level, if it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyName>,
    /// Where it was defined: `config` or `api`.
    #[schema(example = "config")]
    pub source: String,
}

impl From<KeyspaceInfo> for KeyspaceBody {
    fn from(info: KeyspaceInfo) -> Self {
        KeyspaceBody {
            name: info.name,
            kind: info.kind.as_str().to_owned(),
            consistency: info.consistency.map(Into::into),
            source: info.source.to_owned(),
        }
    }
}

/// Every keyspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyspaceList {
    /// Sorted by name.
    pub keyspaces: Vec<KeyspaceBody>,
}

/// Lists the keyspaces.
#[utoipa::path(
    get,
    path = "/api/v1/keyspaces",
    tag = "keyspaces",
    responses((status = 200, description = "Every keyspace, sorted by name", body = KeyspaceList))
)]
pub(crate) async fn list_keyspaces(State(state): State<AppState>) -> Json<KeyspaceList> {
    Json(KeyspaceList { keyspaces: state.service.keyspaces().into_iter().map(Into::into).collect() })
}

/// Shows one keyspace.
#[utoipa::path(
    get,
    path = "/api/v1/keyspaces/{ks}",
    tag = "keyspaces",
    params(("ks" = String, Path, description = "The keyspace")),
    responses(
        (status = 200, description = "The keyspace", body = KeyspaceBody),
        (status = 404, description = "unknown_keyspace", body = ErrorBody),
    )
)]
pub(crate) async fn get_keyspace(
    State(state): State<AppState>,
    ApiPath(ks): ApiPath<String>,
) -> Result<Json<KeyspaceBody>, ApiError> {
    Ok(Json(state.service.keyspace(&ks)?.into()))
}

/// Creates a keyspace in the whole region (idempotent for the same type).
#[utoipa::path(
    post,
    path = "/api/v1/keyspaces",
    tag = "keyspaces",
    request_body(content = CreateKeyspace, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = KeyspaceBody, headers(("Location" = String, description = "The keyspace's URL"))),
        (status = 200, description = "It existed with the same type", body = KeyspaceBody),
        (status = 400, description = "invalid_keyspace (bad name), unknown_kind (bad type), malformed_json, invalid_request", body = ErrorBody),
        (status = 409, description = "keyspace_exists with another type", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 503, description = "unavailable: the region could not agree", body = ErrorBody),
    )
)]
pub(crate) async fn create_keyspace(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateKeyspace>,
) -> Result<Response, ApiError> {
    // The same rule as keyspaces in the configuration file.
    if let Err(e) = meridian_config::validate_keyspace_name(&body.name) {
        return Err(ApiError::bad_request(codes::INVALID_KEYSPACE, format!("invalid keyspace name: {e}")));
    }
    let kind = match body.kind.as_deref() {
        None => ValueKind::Lww,
        Some(k) => k.parse::<ValueKind>().map_err(RegionError::from)?,
    };
    match state.service.keyspace(&body.name) {
        Ok(info) if info.kind == kind => return Ok(Json(KeyspaceBody::from(info)).into_response()),
        Ok(info) => {
            return Err(RegionError::KeyspaceExists { name: body.name, existing: info.kind, requested: kind }.into())
        }
        Err(RegionError::UnknownKeyspace(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let info = state.service.create_keyspace(body.name, kind).await?;
    let mut resp = (StatusCode::CREATED, Json(KeyspaceBody::from(info.clone()))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/keyspaces/{}", info.name)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}
