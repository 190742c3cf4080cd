//! Frame limits, deadlines, handler failures and shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use meridian_net::{BoxFuture, CertAuthority, FrameLimit, Handler, NetError, TransportOptions};
use tokio::sync::mpsc;

fn small_frames() -> TransportOptions {
    TransportOptions { max_frame_bytes: 64 * 1024, ..TransportOptions::lan() }
}

#[tokio::test]
async fn oversized_request_is_refused_and_the_server_keeps_serving() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind_with(&node_identity(&ca, "r1", "server"), small_frames());
    let _ = serve_echo(&server);
    // The client's own limit is the default (64 MiB), so the server's limit is what refuses.
    let client = bind(&node_identity(&ca, "r1", "client"));

    let big = Bytes::from(vec![7u8; 1024 * 1024]);
    let err = client.request(server.local_addr(), big, DEADLINE).await.unwrap_err();
    match &err {
        NetError::FrameTooLarge { limit: FrameLimit::RefusedByPeer, addr } => assert_eq!(*addr, server.local_addr()),
        other => panic!("expected the peer's refusal, got {other}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.stats().frames_refused_oversized, 1);
    assert_eq!(server.stats().requests_received, 0);

    // The same connection and server still serve.
    let response = client.request(server.local_addr(), Bytes::from_static(b"next"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:next");
    assert_eq!(client.stats().connects, 1);
    // Exactly at the limit is fine.
    let exact = Bytes::from(vec![1u8; 64 * 1024]);
    let err = client.request(server.local_addr(), exact, DEADLINE).await.unwrap_err();
    // The echo adds 5 bytes: the *response* is over the server's limit and is not sent.
    assert!(matches!(err, NetError::FrameTooLarge { limit: FrameLimit::RefusedByPeer, .. }), "{err}");
    assert_eq!(server.stats().frames_refused_oversized, 2);
    let ok = Bytes::from(vec![1u8; 64 * 1024 - 5]);
    assert_eq!(client.request(server.local_addr(), ok, DEADLINE).await.unwrap().len(), 64 * 1024);
}

#[tokio::test]
async fn outgoing_payload_over_our_limit_is_not_sent() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    let _ = serve_echo(&server);
    let client = bind_with(&node_identity(&ca, "r1", "client"), small_frames());
    let big = Bytes::from(vec![0u8; 64 * 1024 + 1]);
    let err = client.request(server.local_addr(), big.clone(), DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { limit: FrameLimit::Outgoing { len: 65537, limit: 65536 }, .. }),
        "{err}"
    );
    let err = client.send_message(server.local_addr(), big).await.unwrap_err();
    assert_eq!(err.code(), "frame_too_large");
    assert_eq!(client.stats().connects, 0, "nothing was sent");
}

#[tokio::test]
async fn oversized_response_is_refused_by_the_requester() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    let _ = serve_echo(&server);
    let client = bind_with(&node_identity(&ca, "r1", "client"), small_frames());
    let err = client.request(server.local_addr(), Bytes::from_static(b"big:1000000"), DEADLINE).await.unwrap_err();
    assert!(matches!(err, NetError::FrameTooLarge { limit: FrameLimit::Incoming { limit: 65536 }, .. }), "{err}");
    assert_eq!(client.stats().frames_refused_oversized, 1);
    let response = client.request(server.local_addr(), Bytes::from_static(b"big:10"), DEADLINE).await.unwrap();
    assert_eq!(response.len(), 10);
}

#[tokio::test]
async fn slow_handler_times_out_and_is_cancelled() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let (cancelled_tx, mut cancelled) = mpsc::unbounded_channel();
    server.serve(Arc::new(Sleepy { entered: entered_tx, cancelled: cancelled_tx }));
    let client = bind(&node_identity(&ca, "r1", "client"));

    let deadline = std::time::Duration::from_millis(300);
    let err = client.request(server.local_addr(), Bytes::from_static(b"zzz"), deadline).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { after, .. } if after == deadline), "{err}");
    assert!(err.is_retryable());
    tokio::time::timeout(HANG_GUARD, entered.recv()).await.unwrap().unwrap();
    // The requester's give-up reaches the server, which drops the handler's future.
    tokio::time::timeout(HANG_GUARD, cancelled.recv()).await.unwrap().unwrap();
    assert_eq!(client.stats().requests_failed, 1);
}

/// Regression (simulation): after a partition healed, a pooled connection in QUIC loss-recovery
/// backoff made requests miss their deadlines on a working path. A timed-out request takes its
/// connection out of the pool, so the next one dials afresh.
#[tokio::test]
async fn a_timed_out_request_drops_its_connection_and_the_next_one_reconnects() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    let (entered_tx, _entered) = mpsc::unbounded_channel();
    let (cancelled_tx, _cancelled) = mpsc::unbounded_channel();
    server.serve(Arc::new(Sleepy { entered: entered_tx, cancelled: cancelled_tx }));
    let client = bind(&node_identity(&ca, "r1", "client"));
    let deadline = std::time::Duration::from_millis(200);
    for attempt in 1..=2u64 {
        let err = client.request(server.local_addr(), Bytes::from_static(b"zzz"), deadline).await.unwrap_err();
        assert!(matches!(err, NetError::Timeout { .. }), "{err}");
        assert_eq!(client.stats().connects, attempt, "attempt {attempt} dialled a fresh connection");
    }
}

#[tokio::test]
async fn unreachable_peer_fails_within_the_deadline() {
    let ca = CertAuthority::generate("test").unwrap();
    let client = bind(&node_identity(&ca, "r1", "client"));
    // A UDP socket that never answers: the handshake gets no reply.
    let silent = std::net::UdpSocket::bind(loopback()).unwrap();
    let deadline = std::time::Duration::from_millis(300);
    let err = client.request(silent.local_addr().unwrap(), Bytes::from_static(b"hello"), deadline).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    let stats = client.stats();
    assert_eq!((stats.connects, stats.connect_failures), (0, 1), "{stats:?}");
}

struct Panicky;

impl Handler for Panicky {
    fn request(&self, _peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        Box::pin(async move {
            if &payload[..] == b"panic" {
                panic!("handler bug");
            }
            payload
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {
        panic!("message handler bug");
    }
}

#[tokio::test]
async fn panicking_handler_fails_the_request_not_the_endpoint() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    server.serve(Arc::new(Panicky));
    let client = bind(&node_identity(&ca, "r1", "client"));
    let err = client.request(server.local_addr(), Bytes::from_static(b"panic"), DEADLINE).await.unwrap_err();
    assert_eq!(err.code(), "stream_failed", "{err}");
    assert!(err.to_string().contains("handler failed"), "{err}");
    client.send_message(server.local_addr(), Bytes::from_static(b"m")).await.unwrap();
    let response = client.request(server.local_addr(), Bytes::from_static(b"fine"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"fine");
    assert!(server.stats().handler_panics >= 1);
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_refuses() {
    let ca = CertAuthority::generate("test").unwrap();
    let opts = TransportOptions { shutdown_grace: std::time::Duration::from_secs(20), ..TransportOptions::lan() };
    let server = bind_with(&node_identity(&ca, "r1", "server"), opts);
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    server.serve(Arc::new(Gate { entered: entered_tx }));
    let client = bind(&node_identity(&ca, "r1", "client"));

    let to = server.local_addr();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.request(to, Bytes::from_static(b"slow"), HANG_GUARD).await }
    });
    tokio::time::timeout(HANG_GUARD, entered.recv()).await.unwrap().unwrap();
    server.shutdown().await;
    // The request that was being served completed.
    assert_eq!(&in_flight.await.unwrap().unwrap()[..], b"done");
    // A shut-down endpoint sends nothing.
    let err = server.request(client.local_addr(), Bytes::new(), DEADLINE).await.unwrap_err();
    assert!(matches!(err, NetError::ShutDown), "{err}");
    // And serves nothing: its connection to the client is gone.
    let deadline = std::time::Duration::from_millis(500);
    assert!(client.request(to, Bytes::from_static(b"after"), deadline).await.is_err());
    server.shutdown().await; // idempotent
}

/// Answers `done` a little later than asked (the sleep is the handler's work, not test
/// synchronization: the test waits on `entered`).
struct Gate {
    entered: mpsc::UnboundedSender<()>,
}

impl Handler for Gate {
    fn request(&self, _peer: SocketAddr, _payload: Bytes) -> BoxFuture<'static, Bytes> {
        let entered = self.entered.clone();
        Box::pin(async move {
            let _ = entered.send(());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Bytes::from_static(b"done")
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {}
}

#[tokio::test]
async fn garbage_datagrams_do_not_disturb_the_endpoint() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "server"));
    let _ = serve_echo(&server);
    let junk = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    for size in [0usize, 1, 20, 1200, 1500, 9000] {
        let datagram: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        junk.send_to(&datagram, server.local_addr()).await.unwrap();
    }
    let client = bind(&node_identity(&ca, "r1", "client"));
    let response = client.request(server.local_addr(), Bytes::from_static(b"ok"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:ok");
}

/// Holds requests saying `block` until released; reports the length of every other request.
struct Recorder {
    entered: mpsc::UnboundedSender<()>,
    release: Arc<tokio::sync::Semaphore>,
    lengths: mpsc::UnboundedSender<usize>,
}

impl Handler for Recorder {
    fn request(&self, _peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        let entered = self.entered.clone();
        let release = self.release.clone();
        let lengths = self.lengths.clone();
        Box::pin(async move {
            if &payload[..] == b"block" {
                let _ = entered.send(());
                let _permit = release.acquire().await;
            } else {
                let _ = lengths.send(payload.len());
            }
            Bytes::from_static(b"ok")
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {}
}

#[tokio::test]
async fn a_request_cut_off_by_its_deadline_never_reaches_the_handler() {
    let ca = CertAuthority::generate("test").unwrap();
    // One serving slot: while `block` holds it, the next request's payload is not read, so its
    // sender stalls on flow control and its deadline passes in the middle of the write.
    let opts = TransportOptions { max_inflight_requests: 1, ..TransportOptions::lan() };
    let server = bind_with(&node_identity(&ca, "r1", "server"), opts);
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let (lengths_tx, mut lengths) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    server.serve(Arc::new(Recorder { entered: entered_tx, release: release.clone(), lengths: lengths_tx }));
    let client = bind(&node_identity(&ca, "r1", "client"));
    let to = server.local_addr();

    let blocker = tokio::spawn({
        let client = client.clone();
        async move { client.request(to, Bytes::from_static(b"block"), HANG_GUARD).await }
    });
    tokio::time::timeout(HANG_GUARD, entered.recv()).await.unwrap().unwrap();
    let big = Bytes::from(vec![9u8; 8 * 1024 * 1024]);
    let err = client.request(to, big, std::time::Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");

    release.add_permits(1);
    blocker.await.unwrap().unwrap();
    client.request(to, Bytes::from_static(b"after"), DEADLINE).await.unwrap();
    // The handler saw `after` and nothing else: the abandoned request was reset, not finished.
    assert_eq!(lengths.recv().await, Some(5));
    assert!(lengths.try_recv().is_err());
}
