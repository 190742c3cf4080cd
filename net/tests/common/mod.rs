//! Shared test fixtures: a CA, node identities, endpoints on loopback, handlers.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use meridian_net::{BoxFuture, CertAuthority, CertSpec, Endpoint, Handler, TlsIdentity, TransportOptions, RPC_ALPN};
use tokio::sync::mpsc;

/// A generous bound so that a broken test fails instead of hanging; never a speed assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(30);
/// Deadline for requests expected to succeed.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The intra-region identity of `node` in `region`, issued by `ca`.
pub fn node_identity(ca: &CertAuthority, region: &str, node: &str) -> TlsIdentity {
    let issued = ca.issue_node(region, node, &[], 1).unwrap();
    TlsIdentity::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        &meridian_net::tls::region_name(region).unwrap(),
    )
    .unwrap()
}

/// An identity that trusts `trust` and expects peers of `region`, with a certificate issued by
/// `issuer` as described by `spec`.
pub fn identity_with(trust: &CertAuthority, issuer: &CertAuthority, spec: &CertSpec, region: &str) -> TlsIdentity {
    let issued = issuer.issue_with(spec).unwrap();
    TlsIdentity::from_pem(
        trust.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        &meridian_net::tls::region_name(region).unwrap(),
    )
    .unwrap()
}

pub fn expired_spec(names: Vec<String>) -> CertSpec {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    CertSpec {
        common_name: "expired".into(),
        dns_names: names,
        ips: vec![],
        not_before: now - day * 10,
        not_after: now - day,
    }
}

pub fn bind(identity: &TlsIdentity) -> Endpoint {
    bind_with(identity, TransportOptions::lan())
}

pub fn bind_with(identity: &TlsIdentity, opts: TransportOptions) -> Endpoint {
    Endpoint::bind(loopback(), identity, RPC_ALPN, opts).unwrap()
}

/// Serves with [`Echo`] and returns the channel of received messages.
pub fn serve_echo(endpoint: &Endpoint) -> mpsc::UnboundedReceiver<(SocketAddr, Bytes)> {
    let (tx, rx) = mpsc::unbounded_channel();
    endpoint.serve(Arc::new(Echo { messages: tx }));
    rx
}

/// Answers `echo:` + the request; `big:N` answers N bytes; `sleep` sleeps for a minute (and
/// reports on `cancelled` when its future is dropped unfinished). Messages go to a channel.
pub struct Echo {
    pub messages: mpsc::UnboundedSender<(SocketAddr, Bytes)>,
}

impl Handler for Echo {
    fn request(&self, _peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        Box::pin(async move {
            if let Some(n) = payload.strip_prefix(b"big:") {
                let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
                return Bytes::from(vec![b'x'; n]);
            }
            let mut out = b"echo:".to_vec();
            out.extend_from_slice(&payload);
            Bytes::from(out)
        })
    }

    fn message(&self, peer: SocketAddr, payload: Bytes) {
        let _ = self.messages.send((peer, payload));
    }
}

/// A handler whose requests sleep for a minute; tells `entered` when one starts and
/// `cancelled` when its future is dropped before finishing.
pub struct Sleepy {
    pub entered: mpsc::UnboundedSender<()>,
    pub cancelled: mpsc::UnboundedSender<()>,
}

struct OnDrop(Option<mpsc::UnboundedSender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Handler for Sleepy {
    fn request(&self, _peer: SocketAddr, _payload: Bytes) -> BoxFuture<'static, Bytes> {
        let entered = self.entered.clone();
        let cancelled = self.cancelled.clone();
        Box::pin(async move {
            let mut guard = OnDrop(Some(cancelled));
            let _ = entered.send(());
            tokio::time::sleep(Duration::from_secs(60)).await;
            guard.0 = None;
            Bytes::from_static(b"late")
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {}
}
