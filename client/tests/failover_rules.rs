//! The client's driver against fake regions (small axum servers on loopback that answer as a
//! region would, or fail in a chosen way): which failures are retried, where, and which end an
//! increment as indeterminate, end to end through `Client` (the decision table itself is
//! unit-tested in `src/retry.rs`). Each fake counts the data requests it received, so a test
//! sees whether an operation was sent again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meridian_client::{Client, ClientConfig, Error, RetryPolicy, SwitchReason, Version};
use serde_json::{json, Value};

/// How a fake region answers data requests.
#[derive(Debug, Clone)]
enum Mode {
    /// As a healthy region: writes acknowledged at `version`, reads return `value` at it.
    Ok { version: String, value: &'static str },
    /// This status and body.
    Fail(u16, Value),
    /// Never within the client's timeout.
    Hang,
}

#[derive(Debug, Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn data(State(f): State<Fake>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    f.hits.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = headers.get("x-session-token").and_then(|v| v.to_str().ok()) {
        f.tokens.lock().unwrap_or_else(PoisonError::into_inner).push(t.to_owned());
    }
    let mode = f.mode.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match mode {
        Mode::Ok { version, value } => {
            use base64::Engine as _;
            let body = if method == Method::GET && uri.path().contains("/counters/") {
                json!({"key": "k", "value": 7})
            } else if method == Method::GET {
                let b64 = base64::engine::general_purpose::STANDARD.encode(value);
                json!({"key": "k", "value": b64, "version": version, "timestamp": 1})
            } else {
                json!({"key": "k", "version": version, "timestamp": 1, "status": "ok",
                       "consistency": "QUORUM", "acknowledged": 2, "replicas": 3})
            };
            Json(body).into_response()
        }
        Mode::Fail(status, body) => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn fake(mode: Mode) -> (SocketAddr, Fake) {
    let f = Fake { mode: Arc::new(Mutex::new(mode)), hits: Arc::default(), tokens: Arc::default() };
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/v1/regions", get(|| async { Json(json!({"region": "x", "fenced": false, "peers": []})) }))
        .fallback(data)
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, f)
}

fn ok(version: &str) -> Mode {
    Mode::Ok { version: version.to_owned(), value: "v" }
}

fn unavailable(asked: u64) -> Mode {
    Mode::Fail(503, json!({"error": "unavailable", "message": "not enough replicas", "asked": asked}))
}

/// A client of region `a` then region `b` (in that order: RTTs on loopback tie), no background
/// probing during a test, failed regions kept down.
async fn client(a: SocketAddr, b: SocketAddr) -> Client {
    let config = ClientConfig {
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        probe_interval: Duration::from_secs(600),
        region_down_for: Duration::from_secs(600),
        rtt_tolerance: Duration::from_secs(1),
        token_aware: false,
        session_wait: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    Client::builder()
        .config(config)
        .region("a", [a.to_string()])
        .region("b", [b.to_string()])
        .build()
        .await
        .expect("client")
}

#[tokio::test]
async fn an_increment_after_replicas_were_asked_is_indeterminate_and_not_sent_again() {
    let (a, fa) = fake(unavailable(2)).await;
    let (b, fb) = fake(ok("5/1")).await;
    let c = client(a, b).await;
    let err = c.incr("counters", "k", 1).await.expect_err("indeterminate");
    assert!(matches!(&err, Error::Indeterminate { region, .. } if region == "a"), "{err}");
    assert_eq!(err.root().code(), "unavailable");
    assert_eq!((fa.hits(), fb.hits()), (1, 0), "never sent to another region");
    assert_eq!(c.metrics().indeterminate, 1);
    // The region is now down: the next increment goes to b at once.
    let ack = c.incr("counters", "k", 1).await.expect("b");
    assert_eq!((ack.region.as_str(), fa.hits(), fb.hits()), ("b", 1, 1));
}

#[tokio::test]
async fn increments_refused_before_effect_go_to_the_next_region() {
    for refusal in [
        unavailable(0),
        Mode::Fail(503, json!({"error": "region_fenced", "message": "fenced"})),
        Mode::Fail(503, json!({"error": "not_enough_nodes", "message": "1 of 3"})),
    ] {
        let (a, fa) = fake(refusal.clone()).await;
        let (b, fb) = fake(ok("5/1")).await;
        let c = client(a, b).await;
        let ack = c.incr("counters", "k", 3).await.unwrap_or_else(|e| panic!("{refusal:?}: {e}"));
        assert_eq!((ack.region.as_str(), fa.hits(), fb.hits()), ("b", 1, 1), "{refusal:?}");
        let switch = c.failover_events().last().cloned();
        assert!(switch.is_none(), "the first success is not a switch: {switch:?}");
    }
}

#[tokio::test]
async fn a_timeout_ends_an_increment_but_fails_a_put_over() {
    let (a, fa) = fake(Mode::Hang).await;
    let (b, fb) = fake(ok("5/1")).await;
    let c = client(a, b).await;
    let err = c.incr("counters", "k", 1).await.expect_err("indeterminate");
    assert_eq!(err.root().code(), "timeout", "{err}");
    assert_eq!((fa.hits(), fb.hits()), (1, 0));
    let (a2, fa2) = fake(Mode::Hang).await;
    let (b2, fb2) = fake(ok("6/1")).await;
    let c2 = client(a2, b2).await;
    let ack = c2.put("default", "k", "v", None).await.expect("failed over");
    assert_eq!((ack.region.as_str(), fa2.hits(), fb2.hits()), ("b", 1, 1));
    assert_eq!(c2.metrics().failovers, 1);
    assert_eq!(c2.metrics().retries, 1);
}

#[tokio::test]
async fn a_refused_connection_is_safe_for_increments() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    // Region a: a dead node first (round-robin starts there), then a live one.
    let (a, fa) = fake(ok("5/1")).await;
    let (b, fb) = fake(ok("5/2")).await;
    let mut config =
        ClientConfig { token_aware: false, rtt_tolerance: Duration::from_secs(1), ..ClientConfig::default() };
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.max_backoff = Duration::from_millis(5);
    let c = Client::builder()
        .config(config)
        .region("a", [closed.to_string(), a.to_string()])
        .region("b", [b.to_string()])
        .build()
        .await
        .expect("client");
    let ack = c.incr("counters", "k", 1).await.expect("sent again to a's other node");
    assert_eq!((ack.region.as_str(), fa.hits(), fb.hits()), ("a", 1, 0));
    assert_eq!(c.metrics().retries, 1);
    // The dead node is avoided now: no retry.
    c.incr("counters", "k", 1).await.expect("a");
    assert_eq!((c.metrics().retries, fa.hits()), (1, 2));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (a, fa) = fake(Mode::Fail(400, json!({"error": "invalid_ttl", "message": "bad"}))).await;
    let (b, fb) = fake(ok("5/1")).await;
    let c = client(a, b).await;
    let err = c.put("default", "k", "v", None).await.expect_err("400");
    assert_eq!((err.code(), err.status()), ("invalid_ttl", Some(400)));
    assert_eq!((fa.hits(), fb.hits()), (1, 0));
    let (a, fa) = fake(Mode::Fail(500, json!({"error": "storage_engine", "message": "disk"}))).await;
    let c = client(a, b).await;
    assert_eq!(c.put("default", "k", "v", None).await.expect_err("500").code(), "storage_engine");
    assert_eq!(fa.hits(), 1, "a 500 is not retried");
    let err = c.incr("counters", "k", 1).await.expect_err("500 after sending");
    assert!(matches!(err, Error::Indeterminate { .. }), "{err}");
}

#[tokio::test]
async fn every_region_failing_exhausts_the_attempts() {
    let (a, fa) = fake(unavailable(3)).await;
    let (b, fb) = fake(unavailable(3)).await;
    let c = client(a, b).await;
    let err = c.get("default", "k").await.expect_err("exhausted");
    let Error::Exhausted { attempts, regions, .. } = &err else { panic!("{err}") };
    assert_eq!((*attempts, regions.as_slice()), (4, &["a".to_owned(), "b".to_owned()][..]));
    assert_eq!(err.code(), "unavailable");
    assert_eq!(fa.hits() + fb.hits(), 4);
}

#[tokio::test]
async fn a_read_that_does_not_show_the_sessions_write_waits_then_errs() {
    let (a, fa) = fake(ok("100/1")).await;
    let (b, fb) = fake(ok("50/1")).await;
    let c = client(a, b).await;
    let ack = c.put("default", "k", "mine", None).await.expect("put in a");
    assert_eq!((ack.region.as_str(), ack.version), ("a", Version::new(100, 1)));
    assert_eq!(c.session_token(), Some(Version::new(100, 1)));
    // a fails; b still has an older version of the key.
    fa.set(unavailable(2));
    let err = c.get("default", "k").await.expect_err("not satisfied");
    let Error::SessionNotSatisfied { required, seen, region, waited } = &err else { panic!("{err}") };
    assert_eq!((*required, *seen, region.as_str()), (Version::new(100, 1), Some(Version::new(50, 1)), "b"));
    assert!(*waited >= Duration::from_millis(300));
    assert!(fb.hits() >= 2, "the read was repeated");
    assert!(fb.tokens().iter().all(|t| t == "100/1") && !fb.tokens().is_empty(), "{:?}", fb.tokens());
    assert_eq!(c.failover_events().last().map(|s| s.reason), Some(SwitchReason::Failover));
    // Another key, never written by this session, reads as it is.
    assert!(c.get("default", "other").await.expect("other").is_some());
    // b catches up: the read returns.
    fb.set(Mode::Ok { version: "100/1".into(), value: "mine" });
    let v = c.get("default", "k").await.expect("satisfied").expect("value");
    assert_eq!(v.bytes, b"mine");
    // A later version written by someone else satisfies the session too.
    fb.set(Mode::Ok { version: "101/7".into(), value: "theirs" });
    assert_eq!(c.get("default", "k").await.expect("later").expect("value").bytes, b"theirs");
}

#[tokio::test]
async fn a_deleted_key_read_as_absent_satisfies_the_session() {
    let (a, fa) = fake(ok("100/1")).await;
    let (b, fb) = fake(Mode::Fail(404, json!({"error": "not_found", "message": "no value", "key": "k"}))).await;
    let c = client(a, b).await;
    c.delete("default", "k").await.expect("delete in a");
    fa.set(unavailable(2));
    assert_eq!(c.get("default", "k").await.expect("absent is what a delete shows"), None);
    assert_eq!(fb.hits(), 1);
    // But a put that b has not seen is not satisfied by an absent key.
    let (a, fa) = fake(ok("200/1")).await;
    let (b, _) = fake(Mode::Fail(404, json!({"error": "not_found", "message": "no value", "key": "k"}))).await;
    let c = client(a, b).await;
    c.put("default", "k", "back", None).await.expect("put in a");
    fa.set(unavailable(2));
    let err = c.get("default", "k").await.expect_err("missing put");
    assert!(matches!(err, Error::SessionNotSatisfied { seen: None, .. }), "{err}");
}
