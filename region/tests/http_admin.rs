//! The administration endpoints (hints, repair, decommission, digest) over the fake service:
//! happy paths, status codes, every bad input with its `error` code, and that bad input calls
//! nothing in the service.

mod http_common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_common::{Api, T0};
use meridian_region::service::HintQueue;
use meridian_region::RegionError;
use serde_json::{json, Value};

const REPAIR: &str = "/api/v1/cluster/repair";

/// `POST /api/v1/cluster/repair` with `body` sent as JSON text.
async fn post_repair(api: &Api, body: &str) -> http_common::Resp {
    api.call(Method::POST, REPAIR, &[("content-type", "application/json")], body.to_owned()).await
}

/// Asserts a `202` repair answer and returns its body.
#[track_caller]
fn accepted(r: &http_common::Resp) -> Value {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    r.json()
}

// ---------------------------------------------------------------------------------------------
// hints

#[tokio::test]
async fn hints_lists_the_queues_and_counts() {
    let api = Api::new();
    let r = api.get("/api/v1/cluster/hints", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"node": "node-a", "queues": [], "stored": 5, "replayed": 5, "dropped": 0}));

    api.svc.set_hint_queues(vec![
        HintQueue {
            target: Some("node-b".into()),
            number: "000000000000002b".into(),
            pending: 12,
            oldest_age_ms: Some(3_500),
            target_live: false,
        },
        HintQueue {
            target: None,
            number: "00000000deadbeef".into(),
            pending: 1,
            oldest_age_ms: None,
            target_live: false,
        },
    ]);
    let j = api.get("/api/v1/cluster/hints", &[]).await.json();
    assert_eq!(j["stored"], 18);
    assert_eq!(
        j["queues"],
        json!([
            {"target": "node-b", "number": "000000000000002b", "pending": 12, "oldest_age_ms": 3500, "target_live": false},
            {"target": null, "number": "00000000deadbeef", "pending": 1, "oldest_age_ms": null, "target_live": false},
        ])
    );
}

#[tokio::test]
async fn hints_errors_use_the_error_shape() {
    let api = Api::new();
    api.svc.fail_admin(Some(RegionError::ShuttingDown));
    let r = api.get("/api/v1/cluster/hints", &[]).await;
    r.assert_error(503, "shutting_down");
    assert_eq!(r.headers["retry-after"], "1");
}

// ---------------------------------------------------------------------------------------------
// repair: happy paths

#[tokio::test]
async fn repair_without_a_body_repairs_every_range_and_is_202() {
    let api = Api::new();
    let r = api.call(Method::POST, REPAIR, &[], Body::empty()).await;
    let j = accepted(&r);
    assert_eq!(j["state"], "running");
    assert_eq!(j["trigger"], "api");
    assert_eq!(j["range"], Value::Null);
    assert_eq!(j["peers_total"], 2);
    assert_eq!(j["started_ms"], T0);
    assert_eq!(api.svc.repair_calls(), vec![None]);
}

#[tokio::test]
async fn repair_with_an_empty_object_or_null_range_repairs_every_range() {
    let api = Api::new();
    accepted(&post_repair(&api, "{}").await);
    accepted(&post_repair(&api, r#"{"range": null}"#).await);
    // `curl -d '{}'` without a content type sends application/x-www-form-urlencoded.
    let r =
        api.call(Method::POST, REPAIR, &[("content-type", "application/x-www-form-urlencoded")], "{}".to_owned()).await;
    accepted(&r);
    assert_eq!(api.svc.repair_calls(), vec![None, None, None]);
}

#[tokio::test]
async fn repair_with_a_range_reaches_the_service() {
    let api = Api::new();
    let j = accepted(&post_repair(&api, r#"{"range": {"start": 100, "end": 200}}"#).await);
    assert_eq!(j["range"], json!([100, 200]));
    assert_eq!(api.svc.repair_calls(), vec![Some((100, 200))]);
}

#[tokio::test]
async fn repair_tokens_may_be_u64_max_as_numbers_or_digit_strings() {
    let api = Api::new();
    let max = u64::MAX;
    accepted(&post_repair(&api, &format!(r#"{{"range": {{"start": {max}, "end": 0}}}}"#)).await);
    api.svc.finish_repair(0, None);
    accepted(&post_repair(&api, &format!(r#"{{"range": {{"start": "0", "end": "{max}"}}}}"#)).await);
    api.svc.finish_repair(0, None);
    // Mixed, with leading zeros.
    accepted(&post_repair(&api, r#"{"range": {"start": "0018446744073709551614", "end": 7}}"#).await);
    assert_eq!(api.svc.repair_calls(), vec![Some((max, 0)), Some((0, max)), Some((max - 1, 7))]);
}

#[tokio::test]
async fn repair_with_start_equal_to_end_is_the_whole_ring() {
    let api = Api::new();
    let j = accepted(&post_repair(&api, r#"{"range": {"start": 5, "end": "5"}}"#).await);
    assert_eq!(j["range"], Value::Null);
    assert_eq!(api.svc.repair_calls(), vec![None]);
}

#[tokio::test]
async fn repair_while_one_runs_answers_the_running_pass() {
    let api = Api::new();
    accepted(&post_repair(&api, r#"{"range": {"start": 1, "end": 2}}"#).await);
    api.svc.advance(1_000);
    let j = accepted(&post_repair(&api, "{}").await);
    assert_eq!(j["range"], json!([1, 2]), "the running pass, not a new one: {j}");
    assert_eq!(j["started_ms"], T0);
    assert_eq!(api.svc.repair_calls().len(), 2);
}

#[tokio::test]
async fn repair_status_reports_the_current_then_the_finished_pass() {
    let api = Api::new();
    let r = api.get(REPAIR, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "idle");
    assert!(api.svc.repair_calls().is_empty(), "GET starts nothing");

    accepted(&post_repair(&api, "{}").await);
    assert_eq!(api.get(REPAIR, &[]).await.json()["state"], "running");
    api.svc.advance(2_000);
    api.svc.finish_repair(7, None);
    let j = api.get(REPAIR, &[]).await.json();
    assert_eq!(j["state"], "done");
    assert_eq!(j["peers_done"], 2);
    assert_eq!(j["keys_repaired"], 7);
    assert_eq!(j["bytes_transferred"], 700);
    assert_eq!(j["finished_ms"], T0 + 2_000);
    assert_eq!(j["last_complete_ms"], T0);
    assert_eq!(j["error"], Value::Null);

    accepted(&post_repair(&api, "{}").await);
    api.svc.finish_repair(0, Some("peer node-c down"));
    let j = api.get(REPAIR, &[]).await.json();
    assert_eq!(j["state"], "failed");
    assert_eq!(j["peers_failed"], 1);
    assert_eq!(j["error"], "peer node-c down");
    assert_eq!(j["last_complete_ms"], T0, "a failed pass keeps the last complete one");
}

#[tokio::test]
async fn repair_body_mirrors_the_service_status() {
    let api = Api::new();
    let j = accepted(&post_repair(&api, r#"{"range": {"start": 1, "end": 2}}"#).await);
    use meridian_region::service::KvService;
    assert_eq!(j, serde_json::to_value(api.svc.repair_status()).expect("serialize"));
}

#[tokio::test]
async fn repair_service_errors_use_the_error_shape() {
    let api = Api::new();
    api.svc.fail_admin(Some(RegionError::InvalidRequest("no ranges to repair".into())));
    post_repair(&api, "{}").await.assert_error(400, "invalid_request");
    api.svc.fail_admin(Some(RegionError::ShuttingDown));
    post_repair(&api, "{}").await.assert_error(503, "shutting_down");
}

// ---------------------------------------------------------------------------------------------
// repair: bad input is refused and starts nothing

/// Asserts that `body` is refused with `400 code` and reaches no `start_repair`.
async fn assert_repair_refused(api: &Api, body: &str, code: &str) {
    let r = post_repair(api, body).await;
    r.assert_error(400, code);
    assert!(api.svc.repair_calls().is_empty(), "{body:?} started a repair");
    assert_eq!(api.get(REPAIR, &[]).await.json()["state"], "idle", "{body:?}");
}

#[tokio::test]
async fn repair_with_malformed_json_is_400_malformed_json() {
    let api = Api::new();
    for body in ["{", "not json", r#"{"range": {"start": 1, "end": 2}"#, " ", "{\"range\": {\"start\": 01}}"] {
        assert_repair_refused(&api, body, "malformed_json").await;
    }
}

#[tokio::test]
async fn repair_with_the_wrong_shape_is_400_invalid_request() {
    let api = Api::new();
    for body in [
        "[]",
        "null",
        "42",
        r#""range""#,
        r#"{"range": 5}"#,
        r#"{"range": [1, 2]}"#,
        r#"{"range": {"start": 1}}"#,
        r#"{"range": {"end": 1}}"#,
        r#"{"range": {}}"#,
        r#"{"range": {"start": 1, "end": 2, "step": 3}}"#,
        r#"{"ranges": {"start": 1, "end": 2}}"#,
        r#"{"range": {"start": 1, "end": 2}, "wait": true}"#,
        r#"{"range": {"start": true, "end": 2}}"#,
        r#"{"range": {"start": null, "end": 2}}"#,
        r#"{"range": {"start": [1], "end": 2}}"#,
    ] {
        assert_repair_refused(&api, body, "invalid_request").await;
    }
}

#[tokio::test]
async fn repair_with_negative_fractional_or_too_large_tokens_is_400_invalid_request() {
    let api = Api::new();
    for token in ["-1", "-9223372036854775808", "1.5", "1e3", "18446744073709551616", "1e30"] {
        let body = format!(r#"{{"range": {{"start": 0, "end": {token}}}}}"#);
        assert_repair_refused(&api, &body, "invalid_request").await;
        let body = format!(r#"{{"range": {{"start": {token}, "end": 0}}}}"#);
        assert_repair_refused(&api, &body, "invalid_request").await;
    }
}

#[tokio::test]
async fn repair_with_token_strings_that_are_not_decimal_digits_is_400_invalid_request() {
    let api = Api::new();
    for token in ["", " 1", "1 ", "+1", "-1", "0x10", "ten", "1_000", "1.0", "18446744073709551616", "١٢"] {
        let body = json!({"range": {"start": token, "end": "1"}}).to_string();
        let r = post_repair(&api, &body).await;
        r.assert_error(400, "invalid_request");
        assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("decimal digits")), "{}", r.json());
        assert!(api.svc.repair_calls().is_empty(), "{body} started a repair");
    }
}

#[tokio::test]
async fn repair_with_another_content_type_is_415() {
    let api = Api::new();
    let r = api.call(Method::POST, REPAIR, &[("content-type", "text/plain")], "{}".to_owned()).await;
    r.assert_error(415, "unsupported_media_type");
    assert!(api.svc.repair_calls().is_empty());
}

#[tokio::test]
async fn repair_with_a_body_over_the_limit_is_413() {
    let limits = meridian_region::service::IngressLimits { max_body_bytes: 64, ..Default::default() };
    let api = Api::over(http_common::FakeService::with_limits(limits));
    let body = format!(r#"{{"range": {{"start": "{}", "end": 1}}}}"#, "0".repeat(100));
    post_repair(&api, &body).await.assert_error(413, "payload_too_large");
    assert!(api.svc.repair_calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// decommission

#[tokio::test]
async fn decommission_is_202_with_the_streaming_status_and_marks_the_node_leaving() {
    let api = Api::new();
    let r = api.delete("/api/v1/cluster/nodes/node-b", &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    assert_eq!(
        r.json(),
        json!({"state": "leaving", "ranges_total": 8, "ranges_done": 0, "keys": 0, "bytes": 0,
               "started_ms": T0, "finished_ms": null, "error": null})
    );
    assert_eq!(api.svc.decommission_calls(), vec!["node-b".to_owned()]);
    let status = api.get("/api/v1/cluster/status", &[]).await.json();
    assert_eq!(status["nodes"][1]["id"], "node-b");
    assert_eq!(status["nodes"][1]["status"], "leaving");
}

#[tokio::test]
async fn decommission_of_the_answering_node_shows_in_its_streaming_status() {
    let api = Api::new();
    let r = api.delete("/api/v1/cluster/nodes/node-a", &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    use meridian_region::service::KvService;
    let streaming = api.svc.cluster_status().streaming;
    assert_eq!(streaming.state, "leaving");
    assert_eq!(r.json(), serde_json::to_value(streaming).expect("serialize"), "the body mirrors the service type");
}

#[tokio::test]
async fn decommission_of_an_unknown_node_is_400_invalid_request() {
    let api = Api::new();
    api.delete("/api/v1/cluster/nodes/node-z", &[]).await.assert_error(400, "invalid_request");
    let status = api.get("/api/v1/cluster/status", &[]).await.json();
    assert!(status["nodes"].as_array().expect("nodes").iter().all(|n| n["status"] == "healthy"), "{status}");
}

#[tokio::test]
async fn decommission_twice_or_below_the_replication_factor_is_400_invalid_request() {
    let api = Api::new();
    assert_eq!(api.delete("/api/v1/cluster/nodes/node-b", &[]).await.status, StatusCode::ACCEPTED);
    api.delete("/api/v1/cluster/nodes/node-b", &[]).await.assert_error(400, "invalid_request");
    assert_eq!(api.delete("/api/v1/cluster/nodes/node-c", &[]).await.status, StatusCode::ACCEPTED);
    let r = api.delete("/api/v1/cluster/nodes/node-a", &[]).await;
    r.assert_error(400, "invalid_request");
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("replication factor")), "{}", r.json());
}

#[tokio::test]
async fn decommission_names_are_percent_decoded_and_must_be_utf8() {
    let api = Api::new();
    // `node%2Db` is `node-b`.
    assert_eq!(api.delete("/api/v1/cluster/nodes/node%2Db", &[]).await.status, StatusCode::ACCEPTED);
    api.delete("/api/v1/cluster/nodes/%FF", &[]).await.assert_error(400, "invalid_request");
    api.delete("/api/v1/cluster/nodes/", &[]).await.assert_error(400, "invalid_request");
    assert_eq!(api.svc.decommission_calls(), vec!["node-b".to_owned()], "bad names reach nothing");
}

#[tokio::test]
async fn decommission_rpc_failures_are_503() {
    let api = Api::new();
    api.svc.fail_admin(Some(RegionError::rpc("node-b", "connection refused")));
    api.delete("/api/v1/cluster/nodes/node-b", &[]).await.assert_error(503, "rpc_failed");
}

// ---------------------------------------------------------------------------------------------
// digest

#[tokio::test]
async fn digest_reports_the_root_records_and_ranges() {
    let api = Api::new();
    let empty = api.get("/api/v1/cluster/digest", &[]).await;
    assert_eq!(empty.status, StatusCode::OK);
    let ej = empty.json();
    assert_eq!(ej["node"], "node-a");
    assert_eq!(ej["records"], 0);
    assert_eq!(ej["ranges"], json!([[u64::MAX - 10, 5], [100, 200]]), "u64 tokens survive exactly");

    assert_eq!(api.put("/api/v1/keys/k", &[], "v").await.status, StatusCode::OK);
    let j = api.get("/api/v1/cluster/digest", &[]).await.json();
    assert_eq!(j["records"], 1);
    assert_ne!(j["root"], ej["root"], "the root follows the data");
}

#[tokio::test]
async fn digest_errors_use_the_error_shape() {
    let api = Api::new();
    api.svc.fail_admin(Some(RegionError::ShuttingDown));
    api.get("/api/v1/cluster/digest", &[]).await.assert_error(503, "shutting_down");
}

// ---------------------------------------------------------------------------------------------
// routing and the OpenAPI document

#[tokio::test]
async fn wrong_methods_on_admin_routes_are_405_and_call_nothing() {
    let api = Api::new();
    for (method, path) in [
        (Method::POST, "/api/v1/cluster/hints"),
        (Method::DELETE, "/api/v1/cluster/hints"),
        (Method::PUT, REPAIR),
        (Method::DELETE, REPAIR),
        (Method::GET, "/api/v1/cluster/nodes/node-b"),
        (Method::POST, "/api/v1/cluster/nodes/node-b"),
        (Method::POST, "/api/v1/cluster/digest"),
    ] {
        api.call(method.clone(), path, &[], Body::empty()).await.assert_error(405, "method_not_allowed");
    }
    let r = api.call(Method::PUT, REPAIR, &[], Body::empty()).await;
    let allow = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    assert!(api.svc.repair_calls().is_empty());
    assert!(api.svc.decommission_calls().is_empty());
    assert_eq!(api.svc.hints_and_digest_calls(), (0, 0));
}

#[tokio::test]
async fn openapi_lists_the_admin_routes_and_bodies() {
    let api = Api::new();
    let doc = api.get("/openapi.json", &[]).await.json();
    let paths = &doc["paths"];
    assert!(paths["/api/v1/cluster/hints"]["get"].is_object());
    assert!(paths[REPAIR]["get"].is_object());
    assert!(paths[REPAIR]["post"]["responses"]["202"].is_object());
    assert!(paths["/api/v1/cluster/nodes/{id}"]["delete"]["responses"]["202"].is_object());
    assert!(paths["/api/v1/cluster/digest"]["get"].is_object());
    let schemas = &doc["components"]["schemas"];
    for name in [
        "HintsStatusBody",
        "HintQueueBody",
        "RepairRequest",
        "TokenRange",
        "RepairStatusBody",
        "StreamingStatusBody",
        "DigestStatusBody",
    ] {
        assert!(schemas[name].is_object(), "{name} missing");
    }
    let start = &schemas["TokenRange"]["properties"]["start"];
    assert!(start["oneOf"].as_array().is_some_and(|v| v.len() == 2), "a token is a number or digits: {start}");
}
