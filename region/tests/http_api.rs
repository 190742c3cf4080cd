//! The HTTP API over a fake single-replica service: every endpoint's happy path, every bad
//! input with its status and `error` code, and that bad input changes nothing.

mod http_common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_common::{b64, unb64, Api, FakeService, FAILED_NODE, T0};
use meridian_config::ConsistencyLevel;
use meridian_crdt::{Op, ReadValue};
use meridian_region::service::IngressLimits;
use serde_json::{json, Value};

const TEN_YEARS_SECS: u64 = 10 * 365 * 24 * 3600;

/// Writes `value` under `path` and asserts it worked.
async fn put_ok(api: &Api, path: &str, value: &[u8]) -> Value {
    let r = api.put(path, &[], value.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    r.json()
}

/// Reads `path` and returns the decoded `lww` value.
async fn get_value(api: &Api, path: &str) -> Vec<u8> {
    let r = api.get(path, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    unb64(r.json()["value"].as_str().expect("value"))
}

/// Asserts that the request `f` sends is refused with `status`/`code`, reaches no write, and
/// leaves `/api/v1/keys/k` at `v0`.
async fn assert_refused_and_unchanged(api: &Api, r: http_common::Resp, status: u16, code: &str) {
    r.assert_error(status, code);
    assert_eq!(get_value(api, "/api/v1/keys/k").await, b"v0");
}

// ---------------------------------------------------------------------------------------------
// lww keys

#[tokio::test]
async fn put_raw_then_get_round_trips_bytes_version_and_timestamp() {
    let api = Api::new();
    let value = [0u8, 159, 146, 150, 255];
    let w = api.put("/api/v1/keys/user:1", &[("content-type", "application/octet-stream")], value.to_vec()).await;
    assert_eq!(w.status, StatusCode::OK);
    let wj = w.json();
    assert_eq!(wj["key"], "user:1");
    assert_eq!(wj["status"], "ok");
    assert_eq!(wj["timestamp"], T0);
    assert_eq!(wj["consistency"], "QUORUM");
    assert_eq!(wj["acknowledged"], 1);
    let version = wj["version"].as_str().expect("version").to_owned();
    assert!(version.ends_with("/42"), "version is <hlc>/<node>: {version}");
    assert_eq!(w.headers["etag"], format!("\"{version}\"").as_str());

    let r = api.get("/api/v1/keys/user:1", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let rj = r.json();
    assert_eq!(rj["key"], "user:1");
    assert_eq!(rj["value"], b64(&value));
    assert_eq!(rj["version"], version.as_str());
    assert_eq!(rj["timestamp"], T0);
    assert!(rj.get("expires_at").is_none(), "no TTL, no expires_at: {rj}");
    assert_eq!(r.headers["etag"], format!("\"{version}\"").as_str());
}

#[tokio::test]
async fn put_without_content_type_is_a_raw_value() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"{\"value\": \"not parsed\"}").await;
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"{\"value\": \"not parsed\"}");
}

#[tokio::test]
async fn put_json_body_decodes_the_base64_value() {
    let api = Api::new();
    let r = api.put_json("/api/v1/keys/k", &[], &json!({ "value": b64(b"hello") })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"hello");
    // Padding is optional and `application/json; charset=utf-8` is JSON too.
    let r = api
        .call(
            Method::PUT,
            "/api/v1/keys/k",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"value":"aGk"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"hi");
}

#[tokio::test]
async fn consistency_header_is_case_insensitive_and_reaches_the_service() {
    let api = Api::new();
    let r = api.put("/api/v1/keys/k", &[("x-consistency-level", "all")], "v").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["consistency"], "ALL");
    assert_eq!(api.svc.last_write().expect("a write").consistency, Some(ConsistencyLevel::All));
    let r = api.get("/api/v1/keys/k", &[("X-Consistency-Level", "One")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.svc.last_read_level(), Some(Some(ConsistencyLevel::One)));
    let r = api.delete("/api/v1/keys/k", &[("x-consistency-level", "QUORUM")]).await;
    assert_eq!(r.json()["consistency"], "QUORUM");
    assert_eq!(api.svc.last_write().expect("a write").consistency, Some(ConsistencyLevel::Quorum));
}

#[tokio::test]
async fn ttl_header_sets_expires_at_and_the_key_expires() {
    let api = Api::new();
    let r = api.put("/api/v1/keys/k", &[("x-ttl", "60")], "v").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.svc.last_write().expect("a write").op, Op::LwwPut { value: b"v".to_vec(), ttl_ms: Some(60_000) });
    let rj = api.get("/api/v1/keys/k", &[]).await.json();
    assert_eq!(rj["expires_at"], T0 + 60_000);
    api.svc.advance(60_001);
    api.get("/api/v1/keys/k", &[]).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn ttl_of_exactly_ten_years_is_accepted() {
    let api = Api::new();
    let r = api.put("/api/v1/keys/k", &[("x-ttl", &TEN_YEARS_SECS.to_string())], "v").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

#[tokio::test]
async fn delete_writes_a_tombstone_and_get_is_404_with_the_key() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v").await;
    let d = api.delete("/api/v1/keys/k", &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    let dj = d.json();
    assert_eq!(dj["key"], "k");
    assert_eq!(dj["status"], "deleted");
    assert!(dj["version"].is_string());
    assert_eq!(dj["timestamp"], T0);
    assert_eq!(api.svc.last_write().expect("a write").op, Op::LwwDelete);
    let g = api.get("/api/v1/keys/k", &[]).await;
    g.assert_error(404, "not_found");
    assert_eq!(g.json()["key"], "k");
}

#[tokio::test]
async fn get_of_a_key_never_written_is_404_not_found_with_the_key() {
    let api = Api::new();
    let g = api.get("/api/v1/keys/nobody", &[]).await;
    g.assert_error(404, "not_found");
    assert_eq!(g.json()["key"], "nobody");
}

#[tokio::test]
async fn if_match_with_the_current_version_writes_and_quotes_are_stripped() {
    let api = Api::new();
    let v1 = put_ok(&api, "/api/v1/keys/k", b"v1").await["version"].as_str().expect("version").to_owned();
    let r = api.put("/api/v1/keys/k", &[("if-match", &format!("\"{v1}\""))], "v2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(api.svc.last_write().expect("a write").if_match.as_deref(), Some(v1.as_str()));
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v2");
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_409_conflict_with_current_version_and_changes_nothing() {
    let api = Api::new();
    let v1 = put_ok(&api, "/api/v1/keys/k", b"v1").await["version"].as_str().expect("version").to_owned();
    let v2 = put_ok(&api, "/api/v1/keys/k", b"v2").await["version"].as_str().expect("version").to_owned();
    let r = api.put("/api/v1/keys/k", &[("if-match", &v1)], "v3").await;
    r.assert_error(409, "conflict");
    assert_eq!(r.json()["current_version"], v2.as_str());
    assert_eq!(r.json()["expected_version"], v1.as_str());
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v2");
    // A conditional delete with a stale version is refused as well.
    api.delete("/api/v1/keys/k", &[("if-match", &v1)]).await.assert_error(409, "conflict");
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v2");
}

#[tokio::test]
async fn if_match_on_an_absent_key_is_409_with_null_current_version() {
    let api = Api::new();
    let r = api.put("/api/v1/keys/k", &[("if-match", "123/1")], "v").await;
    r.assert_error(409, "conflict");
    assert_eq!(r.json()["current_version"], Value::Null);
    assert!(r.json().as_object().expect("object").contains_key("current_version"));
    api.get("/api/v1/keys/k", &[]).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn keyspace_scoped_keys_address_that_keyspace() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keyspaces/default/keys/k", b"v").await;
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v");
    assert_eq!(get_value(&api, "/api/v1/keyspaces/default/keys/k").await, b"v");
    assert_eq!(api.svc.last_write().expect("a write").keyspace, "default");
    let d = api.delete("/api/v1/keyspaces/default/keys/k", &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    api.get("/api/v1/keys/k", &[]).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn keys_are_percent_decoded_path_segments() {
    let api = Api::new();
    let r = api.put("/api/v1/keys/user%3A1%2Fprofile%20%E2%9C%93", &[], "v").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["key"], "user:1/profile \u{2713}");
    assert!(matches!(api.svc.stored("default", "user:1/profile \u{2713}".as_bytes()), ReadValue::Lww { .. }));
    assert_eq!(get_value(&api, "/api/v1/keys/user:1%2Fprofile%20%E2%9C%93").await, b"v");
}

#[tokio::test]
async fn unknown_keyspace_is_404_unknown_keyspace() {
    let api = Api::new();
    let r = api.put("/api/v1/keyspaces/nope/keys/k", &[], "v").await;
    r.assert_error(404, "unknown_keyspace");
    assert_eq!(r.json()["keyspace"], "nope");
    api.get("/api/v1/keyspaces/nope/counters/k", &[]).await.assert_error(404, "unknown_keyspace");
    api.get("/api/v1/keyspaces/nope/sets/k", &[]).await.assert_error(404, "unknown_keyspace");
    assert_eq!(api.svc.write_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// mvr keys

#[tokio::test]
async fn mvr_blind_writes_become_siblings_and_a_write_with_the_context_supersedes_them() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"apple").await;
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"pear").await;
    let r = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let rj = r.json();
    assert_eq!(rj["key"], "c");
    assert_eq!(rj["siblings"], json!([b64(b"apple"), b64(b"pear")]));
    assert!(rj["version"].is_string());
    let ctx = rj["context"].as_str().expect("context").to_owned();

    let w = api.put("/api/v1/keyspaces/carts/keys/c", &[("x-context", &ctx)], "apple+pear").await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json());
    match api.svc.last_write().expect("a write").op {
        Op::MvrPut { value, context, ttl_ms } => {
            assert_eq!(value.as_deref(), Some(&b"apple+pear"[..]));
            assert!(!context.is_empty());
            assert_eq!(ttl_ms, None);
        }
        other => panic!("expected MvrPut, got {other:?}"),
    }
    let rj = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json();
    assert_eq!(rj["siblings"], json!([b64(b"apple+pear")]));
}

#[tokio::test]
async fn mvr_json_body_context_supersedes_like_the_header() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"a").await;
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"b").await;
    let ctx = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json()["context"].clone();
    let w = api.put_json("/api/v1/keyspaces/carts/keys/c", &[], &json!({"value": b64(b"ab"), "context": ctx})).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json());
    let rj = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json();
    assert_eq!(rj["siblings"], json!([b64(b"ab")]));
}

#[tokio::test]
async fn mvr_delete_resets_and_the_404_carries_the_context() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"a").await;
    let d = api.delete("/api/v1/keyspaces/carts/keys/c", &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json()["status"], "deleted");
    assert_eq!(api.svc.last_write().expect("a write").op, Op::Reset);
    let g = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await;
    g.assert_error(404, "not_found");
    assert!(g.json()["context"].is_string(), "{}", g.json());
}

#[tokio::test]
async fn mvr_put_with_ttl_sets_expires_at() {
    let api = Api::new();
    let r = api.put("/api/v1/keyspaces/carts/keys/c", &[("x-ttl", "10")], "a").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json()["expires_at"], T0 + 10_000);
}

// ---------------------------------------------------------------------------------------------
// counters

#[tokio::test]
async fn counter_increments_decrements_and_reads() {
    let api = Api::new();
    let w = api.post_json("/api/v1/counters/hits", &[], &json!({"delta": 5})).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json());
    let wj = w.json();
    assert_eq!(wj["key"], "hits");
    assert_eq!(wj["status"], "ok");
    assert!(wj["version"].is_string());
    assert_eq!(wj["consistency"], "QUORUM");
    assert_eq!(api.svc.last_write().expect("a write").op, Op::CounterAdd { delta: 5, ttl_ms: None });
    api.post_json("/api/v1/counters/hits", &[], &json!({"delta": -2})).await;
    let r = api.get("/api/v1/counters/hits", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"key": "hits", "value": 3}));
}

#[tokio::test]
async fn counter_never_incremented_reads_zero_with_200() {
    let api = Api::new();
    let r = api.get("/api/v1/counters/never", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"key": "never", "value": 0}));
}

#[tokio::test]
async fn counter_zero_delta_is_accepted_and_changes_nothing() {
    let api = Api::new();
    api.post_json("/api/v1/counters/c", &[], &json!({"delta": 4})).await;
    let r = api.post_json("/api/v1/counters/c", &[], &json!({"delta": 0})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 4);
}

#[tokio::test]
async fn counter_delete_resets_to_zero() {
    let api = Api::new();
    api.post_json("/api/v1/counters/c", &[], &json!({"delta": 4})).await;
    let d = api.delete("/api/v1/counters/c", &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json()["status"], "deleted");
    assert_eq!(api.svc.last_write().expect("a write").op, Op::Reset);
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 0);
}

#[tokio::test]
async fn counter_ttl_in_the_body_or_header_expires_the_counter() {
    let api = Api::new();
    api.post_json("/api/v1/counters/c", &[], &json!({"delta": 4, "ttl": 5})).await;
    assert_eq!(api.svc.last_write().expect("a write").op, Op::CounterAdd { delta: 4, ttl_ms: Some(5_000) });
    api.post_json("/api/v1/counters/d", &[("x-ttl", "7")], &json!({"delta": 1})).await;
    assert_eq!(api.svc.last_write().expect("a write").op, Op::CounterAdd { delta: 1, ttl_ms: Some(7_000) });
    api.svc.advance(5_001);
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 0);
    assert_eq!(api.get("/api/v1/counters/d", &[]).await.json()["value"], 1);
}

#[tokio::test]
async fn counter_keyspace_scoped_path_works_for_counter_keyspaces() {
    let api = Api::new();
    let r = api.post_json("/api/v1/keyspaces/counters/counters/c", &[], &json!({"delta": 2})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 2);
    assert_eq!(api.get("/api/v1/keyspaces/counters/counters/c", &[]).await.json()["value"], 2);
    assert_eq!(api.delete("/api/v1/keyspaces/counters/counters/c", &[]).await.status, StatusCode::OK);
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 0);
}

#[tokio::test]
async fn counter_bad_bodies_are_400_and_change_nothing() {
    let api = Api::new();
    api.post_json("/api/v1/counters/c", &[], &json!({"delta": 4})).await;
    let before = api.svc.write_calls();
    for (body, code) in [
        (json!({"delta": 1.5}), "invalid_request"),
        (json!({"delta": "1"}), "invalid_request"),
        (json!({}), "invalid_request"),
        (json!({"delta": 1, "detla": 2}), "invalid_request"),
        (json!({"delta": 1, "ttl": 0}), "invalid_ttl"),
        (json!({"delta": 1, "ttl": 1.5}), "invalid_ttl"),
        (json!({"delta": 1, "ttl": TEN_YEARS_SECS + 1}), "invalid_ttl"),
        (json!([1]), "invalid_request"),
    ] {
        api.post_json("/api/v1/counters/c", &[], &body).await.assert_error(400, code);
    }
    let r = api.post_json("/api/v1/counters/c", &[], &json!({"delta": 9_223_372_036_854_775_808u64})).await;
    r.assert_error(400, "invalid_request");
    let r = api.call(Method::POST, "/api/v1/counters/c", &[("content-type", "application/json")], "{\"delta\":").await;
    r.assert_error(400, "malformed_json");
    let r = api.call(Method::POST, "/api/v1/counters/c", &[("content-type", "text/plain")], "{\"delta\": 1}").await;
    r.assert_error(415, "unsupported_media_type");
    let r = api.post_json("/api/v1/counters/c", &[("x-ttl", "5")], &json!({"delta": 1, "ttl": 6})).await;
    r.assert_error(400, "invalid_ttl");
    assert_eq!(api.svc.write_calls(), before);
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 4);
}

// ---------------------------------------------------------------------------------------------
// sets

#[tokio::test]
async fn set_adds_and_removes_and_reads_sorted_members_with_a_context() {
    let api = Api::new();
    let w = api.post_json("/api/v1/sets/s", &[], &json!({"add": ["pear", "apple", "fig"]})).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json());
    assert_eq!(w.json()["status"], "ok");
    let w = api.post_json("/api/v1/sets/s", &[], &json!({"remove": ["fig"], "add": ["kiwi"]})).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json());
    match api.svc.last_write().expect("a write").op {
        Op::SetUpdate { add, remove, context, ttl_ms } => {
            assert_eq!(add, vec![b"kiwi".to_vec()]);
            assert_eq!(remove, vec![b"fig".to_vec()]);
            assert_eq!(context, None);
            assert_eq!(ttl_ms, None);
        }
        other => panic!("expected SetUpdate, got {other:?}"),
    }
    let r = api.get("/api/v1/sets/s", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let rj = r.json();
    assert_eq!(rj["key"], "s");
    assert_eq!(rj["members"], json!(["apple", "kiwi", "pear"]));
    assert!(rj["context"].is_string());
    assert!(rj.get("members_encoding").is_none());
}

#[tokio::test]
async fn set_remove_with_a_read_context_keeps_a_later_add() {
    let api = Api::new();
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["x"]})).await;
    let ctx = api.get("/api/v1/sets/s", &[]).await.json()["context"].clone();
    // Another client adds "x" again after that read: the remove did not observe it.
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["x"]})).await;
    let r = api.post_json("/api/v1/sets/s", &[], &json!({"remove": ["x"], "context": ctx})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert!(matches!(api.svc.last_write().expect("a write").op, Op::SetUpdate { context: Some(_), .. }));
    assert_eq!(api.get("/api/v1/sets/s", &[]).await.json()["members"], json!(["x"]));
    // Without a context the remove drops what the replica holds.
    api.post_json("/api/v1/sets/s", &[], &json!({"remove": ["x"]})).await;
    assert_eq!(api.get("/api/v1/sets/s", &[]).await.json()["members"], json!([]));
}

#[tokio::test]
async fn set_never_written_reads_empty_with_200() {
    let api = Api::new();
    let r = api.get("/api/v1/sets/none", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["members"], json!([]));
    assert!(r.json()["context"].is_string());
}

#[tokio::test]
async fn set_delete_empties_it() {
    let api = Api::new();
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["a"]})).await;
    let d = api.delete("/api/v1/sets/s", &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json()["status"], "deleted");
    assert_eq!(api.svc.last_write().expect("a write").op, Op::Reset);
    assert_eq!(api.get("/api/v1/sets/s", &[]).await.json()["members"], json!([]));
}

#[tokio::test]
async fn set_keyspace_scoped_path_and_ttl() {
    let api = Api::new();
    let r = api.post_json("/api/v1/keyspaces/sets/sets/s", &[], &json!({"add": ["a"], "ttl": 3})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(api.get("/api/v1/keyspaces/sets/sets/s", &[]).await.json()["members"], json!(["a"]));
    api.svc.advance(3_001);
    assert_eq!(api.get("/api/v1/sets/s", &[]).await.json()["members"], json!([]));
    assert_eq!(api.delete("/api/v1/keyspaces/sets/sets/s", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn set_members_that_are_not_utf8_are_all_returned_base64_with_a_flag() {
    let api = Api::new();
    let op = Op::SetUpdate { add: vec![vec![0xff, 0x00], b"ok".to_vec()], remove: vec![], context: None, ttl_ms: None };
    api.svc.apply_direct("sets", b"raw", op);
    let rj = api.get("/api/v1/sets/raw", &[]).await.json();
    assert_eq!(rj["members_encoding"], "base64");
    assert_eq!(rj["members"], json!([b64(b"ok"), b64(&[0xff, 0x00])]));
}

#[tokio::test]
async fn set_bad_updates_are_refused_and_change_nothing() {
    let api = Api::over(FakeService::with_limits(IngressLimits {
        max_key_bytes: 16,
        max_value_bytes: 8,
        max_body_bytes: 256,
    }));
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["a"]})).await;
    let before = api.svc.write_calls();
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["b"], "remove": ["b"]})).await.assert_error(400, "invalid_op");
    api.post_json("/api/v1/sets/s", &[], &json!({})).await.assert_error(400, "invalid_request");
    api.post_json("/api/v1/sets/s", &[], &json!({"add": [], "remove": []})).await.assert_error(400, "invalid_request");
    let r = api.post_json("/api/v1/sets/s", &[], &json!({"add": ["123456789"]})).await;
    r.assert_error(413, "value_too_large");
    assert_eq!(r.json()["limit"], 8);
    assert_eq!(r.json()["size"], 9);
    api.post_json("/api/v1/sets/s", &[], &json!({"remove": ["123456789"]})).await.assert_error(413, "value_too_large");
    api.post_json("/api/v1/sets/s", &[], &json!({"add": [1]})).await.assert_error(400, "invalid_request");
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["c"], "context": "%%"}))
        .await
        .assert_error(400, "invalid_context");
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["c"], "ttl": -1})).await.assert_error(400, "invalid_ttl");
    assert_eq!(api.svc.write_calls(), before);
    assert_eq!(api.get("/api/v1/sets/s", &[]).await.json()["members"], json!(["a"]));
}

// ---------------------------------------------------------------------------------------------
// wrong types

#[tokio::test]
async fn register_endpoints_on_counter_or_set_keyspaces_are_409_wrong_type() {
    let api = Api::new();
    for ks in ["counters", "sets"] {
        let path = format!("/api/v1/keyspaces/{ks}/keys/k");
        let r = api.put(&path, &[], "v").await;
        r.assert_error(409, "wrong_type");
        assert_eq!(r.json()["keyspace"], ks);
        api.get(&path, &[]).await.assert_error(409, "wrong_type");
        api.delete(&path, &[]).await.assert_error(409, "wrong_type");
    }
    assert_eq!(api.svc.write_calls(), 0);
    assert_eq!(api.svc.read_calls(), 0);
}

#[tokio::test]
async fn counter_and_set_endpoints_on_other_keyspaces_are_409_wrong_type() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    for ks in ["default", "carts", "sets"] {
        let path = format!("/api/v1/keyspaces/{ks}/counters/k");
        api.post_json(&path, &[], &json!({"delta": 1})).await.assert_error(409, "wrong_type");
        api.get(&path, &[]).await.assert_error(409, "wrong_type");
        api.delete(&path, &[]).await.assert_error(409, "wrong_type");
    }
    for ks in ["default", "carts", "counters"] {
        let path = format!("/api/v1/keyspaces/{ks}/sets/k");
        api.post_json(&path, &[], &json!({"add": ["a"]})).await.assert_error(409, "wrong_type");
        api.get(&path, &[]).await.assert_error(409, "wrong_type");
        api.delete(&path, &[]).await.assert_error(409, "wrong_type");
    }
    assert_eq!(api.svc.write_calls(), 1);
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v0");
}

// ---------------------------------------------------------------------------------------------
// keyspaces

#[tokio::test]
async fn keyspaces_are_listed_sorted_and_shown_one_by_one() {
    let api = Api::new();
    let r = api.get("/api/v1/keyspaces", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let names: Vec<&str> =
        list["keyspaces"].as_array().expect("list").iter().map(|k| k["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["carts", "counters", "default", "sets"]);
    let r = api.get("/api/v1/keyspaces/carts", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"name": "carts", "type": "mvr", "source": "config"}));
    api.get("/api/v1/keyspaces/nope", &[]).await.assert_error(404, "unknown_keyspace");
}

#[tokio::test]
async fn create_keyspace_is_201_then_200_for_the_same_type_and_usable() {
    let api = Api::new();
    let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": "likes", "type": "counter"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json(), json!({"name": "likes", "type": "counter", "source": "api"}));
    assert_eq!(r.headers["location"], "/api/v1/keyspaces/likes");
    let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": "likes", "type": "counter"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["type"], "counter");
    let w = api.post_json("/api/v1/keyspaces/likes/counters/post1", &[], &json!({"delta": 1})).await;
    assert_eq!(w.status, StatusCode::OK);
    // `type` defaults to lww.
    let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": "plain"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["type"], "lww");
}

#[tokio::test]
async fn create_keyspace_bad_input_is_refused_and_creates_nothing() {
    let api = Api::new();
    let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": "carts", "type": "lww"})).await;
    r.assert_error(409, "keyspace_exists");
    assert_eq!(r.json()["type"], "mvr");
    for name in ["", "Upper", "has space", "dots.no", &"x".repeat(65)] {
        let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": name, "type": "lww"})).await;
        r.assert_error(400, "invalid_keyspace");
    }
    api.post_json("/api/v1/keyspaces", &[], &json!({"name": "ok", "type": "map"}))
        .await
        .assert_error(400, "unknown_kind");
    api.post_json("/api/v1/keyspaces", &[], &json!({"type": "lww"})).await.assert_error(400, "invalid_request");
    let r = api.call(Method::POST, "/api/v1/keyspaces", &[("content-type", "application/json")], "{name}").await;
    r.assert_error(400, "malformed_json");
    let r = api.call(Method::POST, "/api/v1/keyspaces", &[("content-type", "text/xml")], r#"{"name":"ok"}"#).await;
    r.assert_error(415, "unsupported_media_type");
    assert_eq!(api.get("/api/v1/keyspaces", &[]).await.json()["keyspaces"].as_array().expect("list").len(), 4);
    assert_eq!(api.get("/api/v1/keyspaces/carts", &[]).await.json()["type"], "mvr");
}

// ---------------------------------------------------------------------------------------------
// cluster and health

#[tokio::test]
async fn cluster_status_is_the_service_status_as_json() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v").await;
    let r = api.get("/api/v1/cluster/status", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["region"], "eu-west");
    assert_eq!(j["node"], "node-a");
    assert_eq!(j["replication_factor"], 1);
    assert_eq!(j["ring_version"], 7);
    assert_eq!(j["total_keys"], 1);
    assert_eq!(j["nodes"][0]["id"], "node-a");
    assert_eq!(j["nodes"][0]["status"], "healthy");
    assert_eq!(j["nodes"][0]["rpc"], "127.0.0.1:7000");
    assert_eq!(j["nodes"][0]["http"], "127.0.0.1:8081");
    assert_eq!(j["nodes"][0]["tokens"], 256);
    assert_eq!(j["nodes"][0]["is_self"], true);
    assert_eq!(j, serde_json::to_value(api_status(&api)).expect("serialize"));
}

fn api_status(api: &Api) -> meridian_region::service::ClusterStatus {
    use meridian_region::service::KvService;
    api.svc.cluster_status()
}

#[tokio::test]
async fn healthz_is_200_when_ready_and_503_otherwise() {
    let api = Api::new();
    let r = api.get("/healthz", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["live_nodes"], 1);
    api.svc.set_ready(false);
    let r = api.get("/healthz", &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["status"], "starting");
}

// ---------------------------------------------------------------------------------------------
// bad input on keys: status, code, and nothing changed

#[tokio::test]
async fn invalid_consistency_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    let before = api.svc.write_calls();
    for level in ["TWO", "", "LOCAL_QUORUM", "quorum!"] {
        let r = api.put("/api/v1/keys/k", &[("x-consistency-level", level)], "v1").await;
        assert_refused_and_unchanged(&api, r, 400, "invalid_consistency").await;
        let r = api.delete("/api/v1/keys/k", &[("x-consistency-level", level)]).await;
        assert_refused_and_unchanged(&api, r, 400, "invalid_consistency").await;
        api.get("/api/v1/keys/k", &[("x-consistency-level", level)]).await.assert_error(400, "invalid_consistency");
        api.get("/api/v1/counters/c", &[("x-consistency-level", level)]).await.assert_error(400, "invalid_consistency");
    }
    assert_eq!(api.svc.write_calls(), before);
}

#[tokio::test]
async fn invalid_ttl_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    let before = api.svc.write_calls();
    let too_long = (TEN_YEARS_SECS + 1).to_string();
    for ttl in ["0", "-1", "abc", "1.5", "", "99999999999999999999999", too_long.as_str()] {
        let r = api.put("/api/v1/keys/k", &[("x-ttl", ttl)], "v1").await;
        assert_refused_and_unchanged(&api, r, 400, "invalid_ttl").await;
    }
    let r = api.put_json("/api/v1/keys/k", &[], &json!({"value": b64(b"v1"), "ttl": 0})).await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_ttl").await;
    let r = api.put_json("/api/v1/keys/k", &[("x-ttl", "5")], &json!({"value": b64(b"v1"), "ttl": 6})).await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_ttl").await;
    assert_eq!(api.svc.write_calls(), before);
}

#[tokio::test]
async fn empty_key_is_400_invalid_key() {
    let api = Api::new();
    for path in [
        "/api/v1/keys/",
        "/api/v1/counters/",
        "/api/v1/sets/",
        "/api/v1/keyspaces/default/keys/",
        "/api/v1/keyspaces/counters/counters/",
        "/api/v1/keyspaces/sets/sets/",
    ] {
        api.put(path, &[], "v").await.assert_error(400, "invalid_key");
        api.get(path, &[]).await.assert_error(400, "invalid_key");
    }
    assert_eq!(api.svc.write_calls(), 0);
}

#[tokio::test]
async fn key_that_is_not_utf8_is_400_invalid_key() {
    let api = Api::new();
    api.put("/api/v1/keys/%FF%FE", &[], "v").await.assert_error(400, "invalid_key");
    api.get("/api/v1/counters/%C3", &[]).await.assert_error(400, "invalid_key");
    assert_eq!(api.svc.write_calls(), 0);
}

#[tokio::test]
async fn key_over_the_limit_is_414_key_too_large_and_at_the_limit_is_fine() {
    let api = Api::new();
    let at_limit = "k".repeat(256);
    put_ok(&api, &format!("/api/v1/keys/{at_limit}"), b"v").await;
    let over = "k".repeat(257);
    let r = api.put(&format!("/api/v1/keys/{over}"), &[], "v").await;
    r.assert_error(414, "key_too_large");
    assert_eq!(r.json()["limit"], 256);
    assert_eq!(r.json()["size"], 257);
    api.get(&format!("/api/v1/keys/{over}"), &[]).await.assert_error(414, "key_too_large");
    api.post_json(&format!("/api/v1/counters/{over}"), &[], &json!({"delta": 1}))
        .await
        .assert_error(414, "key_too_large");
    api.post_json(&format!("/api/v1/sets/{over}"), &[], &json!({"add": ["a"]}))
        .await
        .assert_error(414, "key_too_large");
    // Multi-byte characters count in bytes: 86 three-byte characters are 258 bytes.
    let wide = "%E2%9C%93".repeat(86);
    api.put(&format!("/api/v1/keys/{wide}"), &[], "v").await.assert_error(414, "key_too_large");
    assert_eq!(api.svc.write_calls(), 1);
}

#[tokio::test]
async fn value_at_the_limit_is_accepted_and_over_it_is_413_value_too_large() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    let max = IngressLimits::default().max_value_bytes;
    put_ok(&api, "/api/v1/keys/big", &vec![7u8; max]).await;
    assert_eq!(get_value(&api, "/api/v1/keys/big").await.len(), max);
    let r = api.put("/api/v1/keys/k", &[], vec![7u8; max + 1]).await;
    assert_refused_and_unchanged(&api, r, 413, "value_too_large").await;
}

#[tokio::test]
async fn json_value_is_checked_after_base64_decoding() {
    let api = Api::over(FakeService::with_limits(IngressLimits {
        max_key_bytes: 16,
        max_value_bytes: 8,
        max_body_bytes: 256,
    }));
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    // 8 bytes encode to 12 base64 characters: longer than the limit, but the value fits.
    let r = api.put_json("/api/v1/keys/k8", &[], &json!({"value": b64(b"12345678")})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let r = api.put_json("/api/v1/keys/k", &[], &json!({"value": b64(b"123456789")})).await;
    assert_refused_and_unchanged(&api, r, 413, "value_too_large").await;
}

#[tokio::test]
async fn body_over_the_limit_is_413_payload_too_large_and_changes_nothing() {
    let api = Api::over(FakeService::with_limits(IngressLimits {
        max_key_bytes: 16,
        max_value_bytes: 8,
        max_body_bytes: 256,
    }));
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    let r = api.put("/api/v1/keys/k", &[], vec![1u8; 257]).await;
    assert_eq!(r.json()["limit"], 256);
    assert_refused_and_unchanged(&api, r, 413, "payload_too_large").await;
    let big = json!({"value": b64(&[1u8; 300])});
    let r = api.put_json("/api/v1/keys/k", &[], &big).await;
    assert_refused_and_unchanged(&api, r, 413, "payload_too_large").await;
    let r = api.post_json("/api/v1/sets/s", &[], &json!({"add": vec!["a"; 100]})).await;
    r.assert_error(413, "payload_too_large");
    let r = api.post_json("/api/v1/keyspaces", &[], &json!({"name": "x".repeat(300)})).await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(api.svc.write_calls(), 1);
}

#[tokio::test]
async fn unsupported_content_type_is_415_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    for ct in ["multipart/form-data; boundary=x", "multipart/mixed"] {
        let r = api.put("/api/v1/keys/k", &[("content-type", ct)], "v1").await;
        assert_refused_and_unchanged(&api, r, 415, "unsupported_media_type").await;
    }
}

/// `curl --data-binary 'v'` sends `application/x-www-form-urlencoded`; the body is the value as
/// it is (never form-decoded), as for any non-JSON, non-multipart type.
#[tokio::test]
async fn raw_values_of_any_other_content_type_are_stored_byte_for_byte() {
    let api = Api::new();
    for (ct, value) in [
        ("application/x-www-form-urlencoded", &b"a=1&b=%20"[..]),
        ("text/plain; charset=utf-8", &b"plain text"[..]),
        ("image/png", &[0x89, b'P', b'N', b'G', 0, 0xff][..]),
    ] {
        let r = api.put("/api/v1/keys/raw", &[("content-type", ct)], value.to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {:?}", r.json());
        let got = api.get("/api/v1/keys/raw", &[]).await;
        assert_eq!(got.json()["value"], b64(value), "{ct}");
    }
}

/// `curl -d '{"delta": 1}'` sends `application/x-www-form-urlencoded`, or no type at all from
/// other clients: JSON endpoints read such bodies as JSON.
#[tokio::test]
async fn json_endpoints_accept_curl_defaults_and_no_content_type() {
    let api = Api::new();
    for headers in [&[][..], &[("content-type", "application/x-www-form-urlencoded")][..]] {
        let r = api.call(Method::POST, "/api/v1/counters/c", headers, "{\"delta\": 2}").await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}: {:?}", r.json());
    }
    assert_eq!(api.get("/api/v1/counters/c", &[]).await.json()["value"], 4);
}

#[tokio::test]
async fn malformed_or_misshapen_json_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    let json_ct = [("content-type", "application/json")];
    let r = api.put("/api/v1/keys/k", &json_ct, "{\"value\": ").await;
    assert_refused_and_unchanged(&api, r, 400, "malformed_json").await;
    let r = api.put("/api/v1/keys/k", &json_ct, "not json").await;
    assert_refused_and_unchanged(&api, r, 400, "malformed_json").await;
    let r = api.put_json("/api/v1/keys/k", &[], &json!({"value": 5})).await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_request").await;
    let r = api.put_json("/api/v1/keys/k", &[], &json!({"valeu": b64(b"v1")})).await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_request").await;
    let r = api.put_json("/api/v1/keys/k", &[], &json!({"value": "not base64!"})).await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_base64").await;
}

#[tokio::test]
async fn invalid_context_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"a").await;
    let before = api.svc.write_calls();
    // Not base64url; base64url of bytes that are not a context; an empty header.
    for ctx in ["***", "AAAA", ""] {
        let r = api.put("/api/v1/keyspaces/carts/keys/c", &[("x-context", ctx)], "b").await;
        r.assert_error(400, "invalid_context");
    }
    let r = api.put_json("/api/v1/keyspaces/carts/keys/c", &[], &json!({"value": b64(b"b"), "context": "AAAA"})).await;
    r.assert_error(400, "invalid_context");
    assert_eq!(api.svc.write_calls(), before);
    let rj = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json();
    assert_eq!(rj["siblings"], json!([b64(b"a")]));
}

#[tokio::test]
async fn context_on_an_lww_keyspace_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    put_ok(&api, "/api/v1/keyspaces/carts/keys/c", b"a").await;
    let ctx = api.get("/api/v1/keyspaces/carts/keys/c", &[]).await.json()["context"].as_str().expect("ctx").to_owned();
    let r = api.put("/api/v1/keys/k", &[("x-context", &ctx)], "v1").await;
    assert_refused_and_unchanged(&api, r, 400, "invalid_request").await;
}

#[tokio::test]
async fn bad_if_match_is_400_and_changes_nothing() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    for v in ["", "\"\"", "*", "\"a\", \"b\""] {
        let r = api.put("/api/v1/keys/k", &[("if-match", v)], "v1").await;
        assert_refused_and_unchanged(&api, r, 400, "invalid_request").await;
    }
}

// ---------------------------------------------------------------------------------------------
// service failures

#[tokio::test]
async fn unavailable_is_503_with_the_quorum_figures_and_failures() {
    let api = Api::new();
    put_ok(&api, "/api/v1/keys/k", b"v0").await;
    api.svc.set_unavailable(true);
    let r = api.put("/api/v1/keys/k", &[("x-consistency-level", "ALL")], "v1").await;
    r.assert_error(503, "unavailable");
    let j = r.json();
    assert_eq!(j["required"], 2);
    assert_eq!(j["answered"], 1);
    assert_eq!(j["asked"], 3);
    assert_eq!(j["consistency"], "ALL");
    assert_eq!(
        j["failures"],
        json!([{"node": format!("{:016x}", FAILED_NODE.0), "reason": "timed out after 2000 ms"}])
    );
    assert_eq!(r.headers["retry-after"], "1");
    api.get("/api/v1/keys/k", &[]).await.assert_error(503, "unavailable");
    api.get("/api/v1/counters/c", &[]).await.assert_error(503, "unavailable");
    api.post_json("/api/v1/sets/s", &[], &json!({"add": ["a"]})).await.assert_error(503, "unavailable");
    api.svc.set_unavailable(false);
    assert_eq!(get_value(&api, "/api/v1/keys/k").await, b"v0");
}

// ---------------------------------------------------------------------------------------------
// routing

#[tokio::test]
async fn unknown_route_is_404_not_found_in_the_error_shape() {
    let api = Api::new();
    for path in ["/nope", "/api/v2/keys/k", "/api/v1/keys", "/api/v1/keys/a/b"] {
        api.get(path, &[]).await.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn wrong_method_is_405_method_not_allowed_in_the_error_shape() {
    let api = Api::new();
    let r = api.call(Method::POST, "/api/v1/keys/k", &[], Body::empty()).await;
    r.assert_error(405, "method_not_allowed");
    let allow = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(allow.contains("PUT") && allow.contains("GET") && allow.contains("DELETE"), "Allow: {allow}");
    api.call(Method::PUT, "/api/v1/counters/c", &[], "1").await.assert_error(405, "method_not_allowed");
    api.call(Method::PATCH, "/api/v1/sets/s", &[], Body::empty()).await.assert_error(405, "method_not_allowed");
    api.call(Method::DELETE, "/api/v1/keyspaces", &[], Body::empty()).await.assert_error(405, "method_not_allowed");
    api.call(Method::POST, "/healthz", &[], Body::empty()).await.assert_error(405, "method_not_allowed");
    assert_eq!(api.svc.write_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

#[tokio::test]
async fn openapi_json_is_an_openapi_3_document_listing_every_route() {
    let api = Api::new();
    let r = api.get("/openapi.json", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi: {}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let expected: &[(&str, &[&str])] = &[
        ("/api/v1/keys/{key}", &["put", "get", "delete"]),
        ("/api/v1/keyspaces/{ks}/keys/{key}", &["put", "get", "delete"]),
        ("/api/v1/counters/{key}", &["post", "get", "delete"]),
        ("/api/v1/keyspaces/{ks}/counters/{key}", &["post", "get", "delete"]),
        ("/api/v1/sets/{key}", &["post", "get", "delete"]),
        ("/api/v1/keyspaces/{ks}/sets/{key}", &["post", "get", "delete"]),
        ("/api/v1/keyspaces", &["get", "post"]),
        ("/api/v1/keyspaces/{ks}", &["get"]),
        ("/api/v1/cluster/status", &["get"]),
        ("/api/v1/cluster/ring", &["get"]),
        ("/metrics", &["get"]),
        ("/api/v1/cluster/hints", &["get"]),
        ("/api/v1/cluster/repair", &["get", "post"]),
        ("/api/v1/cluster/nodes/{id}", &["delete"]),
        ("/api/v1/cluster/digest", &["get"]),
        ("/api/v1/cluster/digest/region", &["get"]),
        ("/api/v1/cluster/snapshot", &["post"]),
        ("/api/v1/regions", &["get"]),
        ("/api/v1/regions/sync", &["post"]),
        ("/api/v1/regions/{name}/fence", &["post"]),
        ("/api/v1/regions/{name}/unfence", &["post"]),
        ("/api/v1/regions/{name}/sync", &["post"]),
        ("/healthz", &["get"]),
        ("/openapi.json", &["get"]),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in expected {
        let item = paths.get(*path).unwrap_or_else(|| panic!("{path} missing from {:?}", paths.keys()));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing");
        }
    }
    assert_eq!(paths.len(), expected.len(), "unexpected paths: {:?}", paths.keys());
    let put = &paths["/api/v1/keys/{key}"]["put"];
    let content = put["requestBody"]["content"].as_object().expect("content");
    assert!(content.contains_key("application/octet-stream") && content.contains_key("application/json"));
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let described = paths["/api/v1/counters/{key}"]["get"]["responses"]["200"]["description"].as_str();
    assert!(described.is_some_and(|d| d.contains('0')), "the 0-for-absent choice is documented: {described:?}");
}
