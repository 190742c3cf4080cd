//! quinn over turmoil: real endpoints (TLS, streams, timers) in a simulated network.
//! Run with `cargo test -p meridian-net --features sim`.

#![cfg(feature = "sim")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{node_identity, Echo};
use meridian_net::{CertAuthority, Endpoint, NetError, TransportOptions, RPC_ALPN};
use tokio::sync::mpsc;

const PORT: u16 = 7000;

fn sim() -> turmoil::Sim<'static> {
    turmoil::Builder::new().simulation_duration(Duration::from_secs(300)).build()
}

fn server_host(sim: &mut turmoil::Sim<'_>, ca: &CertAuthority) {
    let identity = node_identity(ca, "r1", "server");
    sim.host("server", move || {
        let identity = identity.clone();
        async move {
            let endpoint =
                Endpoint::bind_sim(([0, 0, 0, 0], PORT).into(), &identity, RPC_ALPN, TransportOptions::lan()).await?;
            let (messages, mut received) = mpsc::unbounded_channel();
            endpoint.serve(Arc::new(Echo { messages }));
            // Answer every one-way message with a request back to its sender's endpoint, and
            // pass the response on in a one-way message.
            while let Some((from, payload)) = received.recv().await {
                let mut reply = b"ack:".to_vec();
                reply.extend_from_slice(&payload);
                let response = endpoint.request(from, Bytes::from(reply), Duration::from_secs(5)).await?;
                endpoint.send_message(from, response).await?;
            }
            Ok(())
        }
    });
}

#[test]
fn requests_and_messages_through_the_simulated_network() -> turmoil::Result {
    let ca = CertAuthority::generate("sim").unwrap();
    let mut sim = sim();
    server_host(&mut sim, &ca);
    let client_id = node_identity(&ca, "r1", "client");
    sim.client("client", async move {
        let endpoint =
            Endpoint::bind_sim(([0, 0, 0, 0], PORT).into(), &client_id, RPC_ALPN, TransportOptions::lan()).await?;
        let (messages, mut acks) = mpsc::unbounded_channel();
        endpoint.serve(Arc::new(Echo { messages }));
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        for i in 0..10 {
            let response = endpoint.request(server, Bytes::from(format!("{i}")), Duration::from_secs(5)).await?;
            assert_eq!(response, Bytes::from(format!("echo:{i}")));
        }
        // A one-way message; the server sends a request back to us (answered by our handler),
        // then our response to us in a one-way message.
        endpoint.send_message(server, Bytes::from_static(b"gossip")).await?;
        let (from, payload) = acks.recv().await.ok_or("handler channel closed")?;
        assert_eq!(&payload[..], b"echo:ack:gossip");
        assert_eq!(from.ip(), server.ip());
        assert_eq!(endpoint.stats().connects, 1);
        Ok(())
    });
    sim.run()
}

#[test]
fn partition_times_out_requests_and_repair_restores_them() -> turmoil::Result {
    let ca = CertAuthority::generate("sim").unwrap();
    let mut sim = sim();
    server_host(&mut sim, &ca);
    let client_id = node_identity(&ca, "r1", "client");
    sim.client("client", async move {
        let endpoint =
            Endpoint::bind_sim(([0, 0, 0, 0], 0).into(), &client_id, RPC_ALPN, TransportOptions::lan()).await?;
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        let deadline = Duration::from_secs(1);
        assert_eq!(&endpoint.request(server, Bytes::from_static(b"a"), deadline).await?[..], b"echo:a");

        // A short partition: the request times out and its connection leaves the pool (it may
        // sit in loss-recovery backoff after the repair); the next request dials a new one.
        turmoil::partition("client", "server");
        let err = endpoint.request(server, Bytes::from_static(b"b"), deadline).await.unwrap_err();
        assert!(matches!(err, NetError::Timeout { .. }), "{err}");
        turmoil::repair("client", "server");
        assert_eq!(&endpoint.request(server, Bytes::from_static(b"c"), deadline).await?[..], b"echo:c");
        assert_eq!(endpoint.stats().connects, 2);

        // A partition longer than the idle timeout (10 s): the connection dies...
        turmoil::partition("client", "server");
        let err = endpoint.request(server, Bytes::from_static(b"d"), Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(err, NetError::Closed { .. }), "idle timeout expected, got {err}");
        let err = endpoint.request(server, Bytes::from_static(b"e"), deadline).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        // ...and after the repair, a new one is made transparently.
        turmoil::repair("client", "server");
        assert_eq!(&endpoint.request(server, Bytes::from_static(b"f"), Duration::from_secs(5)).await?[..], b"echo:f");
        let stats = endpoint.stats();
        assert_eq!(stats.connects, 3, "{stats:?}");
        Ok(())
    });
    sim.run()
}
