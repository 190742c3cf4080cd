//! Mutual TLS between nodes of one region: requests, one-way messages, connection reuse.

mod common;

use bytes::Bytes;
use common::*;
use meridian_net::{CertAuthority, TlsIdentity};

#[tokio::test]
async fn nodes_of_a_region_exchange_a_request_and_a_message() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "n1"));
    let mut messages = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n2"));

    let response = client.request(server.local_addr(), Bytes::from_static(b"ping"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:ping");

    client.send_message(server.local_addr(), Bytes::from_static(b"gossip")).await.unwrap();
    let (from, payload) = tokio::time::timeout(HANG_GUARD, messages.recv()).await.unwrap().unwrap();
    assert_eq!(&payload[..], b"gossip");
    assert_eq!(from, client.local_addr(), "the handler sees the sender's address");

    let client_stats = client.stats();
    assert_eq!((client_stats.requests_sent, client_stats.messages_sent), (1, 1));
    assert_eq!(client_stats.requests_failed, 0);
    assert_eq!(client_stats.bytes_out, 4 + 6);
    assert_eq!(client_stats.bytes_in, 9);
    let server_stats = server.stats();
    assert_eq!((server_stats.requests_received, server_stats.messages_received), (1, 1));
    assert_eq!(server_stats.handshakes_refused.total(), 0);
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "n1"));
    let _messages = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n2"));
    for i in 0..20 {
        let payload = Bytes::from(format!("req-{i}"));
        let response = client.request(server.local_addr(), payload, DEADLINE).await.unwrap();
        assert_eq!(response, Bytes::from(format!("echo:req-{i}")));
    }
    client.send_message(server.local_addr(), Bytes::from_static(b"m")).await.unwrap();
    let stats = client.stats();
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.connections_open, 1, "{stats:?}");
    assert_eq!(stats.requests_sent, 20);
    assert_eq!(server.stats().accepted, 1);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_handshake() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "n1"));
    let _messages = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n2"));
    let to = server.local_addr();
    let requests = (0..64).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { (i, client.request(to, Bytes::from(format!("{i}")), DEADLINE).await) })
    });
    for joined in futures::future::join_all(requests).await {
        let (i, response) = joined.unwrap();
        assert_eq!(response.unwrap(), Bytes::from(format!("echo:{i}")));
    }
    assert_eq!(client.stats().connects, 1);
    assert_eq!(server.stats().accepted, 1);
    assert_eq!(server.stats().requests_received, 64);
}

#[tokio::test]
async fn both_sides_may_connect_to_each_other() {
    let ca = CertAuthority::generate("test").unwrap();
    let a = bind(&node_identity(&ca, "r1", "a"));
    let b = bind(&node_identity(&ca, "r1", "b"));
    let _ma = serve_echo(&a);
    let _mb = serve_echo(&b);
    let (ab, ba) = tokio::join!(
        a.request(b.local_addr(), Bytes::from_static(b"from-a"), DEADLINE),
        b.request(a.local_addr(), Bytes::from_static(b"from-b"), DEADLINE),
    );
    assert_eq!(&ab.unwrap()[..], b"echo:from-a");
    assert_eq!(&ba.unwrap()[..], b"echo:from-b");
    // One outgoing and one incoming connection each.
    assert_eq!(a.stats().connections_open, 2);
    assert_eq!(b.stats().connections_open, 2);
}

#[tokio::test]
async fn insecure_endpoints_talk_to_each_other() {
    let server_id = TlsIdentity::insecure_ephemeral("dev1").unwrap();
    let client_id = TlsIdentity::insecure_ephemeral("dev2").unwrap();
    assert!(server_id.is_insecure() && client_id.is_insecure());
    let server = bind(&server_id);
    let mut messages = serve_echo(&server);
    let client = bind(&client_id);
    let response = client.request(server.local_addr(), Bytes::from_static(b"hi"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:hi");
    client.send_message(server.local_addr(), Bytes::from_static(b"m")).await.unwrap();
    let (_, payload) = tokio::time::timeout(HANG_GUARD, messages.recv()).await.unwrap().unwrap();
    assert_eq!(&payload[..], b"m");
}

#[tokio::test]
async fn empty_payloads_are_valid_frames() {
    let ca = CertAuthority::generate("test").unwrap();
    let server = bind(&node_identity(&ca, "r1", "n1"));
    let mut messages = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n2"));
    let response = client.request(server.local_addr(), Bytes::new(), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:");
    client.send_message(server.local_addr(), Bytes::new()).await.unwrap();
    let (_, payload) = tokio::time::timeout(HANG_GUARD, messages.recv()).await.unwrap().unwrap();
    assert!(payload.is_empty());
}
