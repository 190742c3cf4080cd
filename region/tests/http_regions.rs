//! The regions endpoints over a fake service: status, fence and unfence of this node's own
//! region (and refusal for another region), full-sync requests, and that a fenced region
//! answers data requests with `503 region_fenced`.

mod http_common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_common::Api;

#[tokio::test]
async fn regions_status_lists_each_peer_link() {
    let api = Api::new();
    let r = api.get("/api/v1/regions", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["region"], "test");
    assert_eq!(v["fenced"], false);
    let peer = &v["peers"][0];
    assert_eq!(peer["region"], "eu-west");
    assert_eq!(peer["link"], "up");
    assert_eq!(peer["lag_p99_ms"], 57);
    assert_eq!(peer["backlog"], 3);
    assert_eq!(peer["lag_buckets"], serde_json::json!([[41, 6], [57, 4]]));
    assert!(peer["last_applied_ms"].is_u64());
}

#[tokio::test]
async fn fence_and_unfence_the_own_region_only() {
    let api = Api::new();
    let r = api.call(Method::POST, "/api/v1/regions/eu-west/fence", &[], Body::empty()).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(api.get("/api/v1/regions", &[]).await.json()["fenced"], false, "a refused fence changes nothing");
    let r = api.call(Method::POST, "/api/v1/regions/test/fence", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["fenced"], true);
    assert_eq!(r.json()["peers"][0]["link"], "fenced");
    let r = api.call(Method::POST, "/api/v1/regions/test/unfence", &[], Body::empty()).await;
    assert_eq!(r.json()["fenced"], false);
    let r = api.call(Method::GET, "/api/v1/regions/test/fence", &[], Body::empty()).await;
    r.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn full_sync_requests_reach_the_service() {
    let api = Api::new();
    let r = api.call(Method::POST, "/api/v1/regions/eu-west/sync", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = api.call(Method::POST, "/api/v1/regions/sync", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = api.call(Method::POST, "/api/v1/regions/mars/sync", &[], Body::empty()).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(api.svc.sync_requests(), vec![Some("eu-west".to_owned()), None], "the refused request asked nothing");
}
