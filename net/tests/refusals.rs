//! Handshake refusals: each is refused during the handshake, fails on the client, and (when
//! the server refuses) is counted by reason in the server identity's `TlsStats`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use meridian_net::{
    tls, CertAuthority, CertSpec, Endpoint, HandshakeRefusals, NetError, TlsIdentity, TransportOptions, WAN_ALPN,
};

async fn refused(client: &Endpoint, server: &Endpoint) -> NetError {
    let err = client.request(server.local_addr(), Bytes::from_static(b"hello"), DEADLINE).await.unwrap_err();
    assert_eq!(err.code(), "handshake_refused", "{err}");
    assert!(!err.is_retryable());
    assert_eq!(server.stats().requests_received, 0, "nothing reached the handler");
    err
}

fn server_of_r1(ca: &CertAuthority) -> (TlsIdentity, Endpoint) {
    let identity = node_identity(ca, "r1", "server");
    let endpoint = bind(&identity);
    let _ = serve_echo(&endpoint);
    (identity, endpoint)
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let ca = CertAuthority::generate("test").unwrap();
    let (server_id, server) = server_of_r1(&ca);

    // A client that trusts the CA but presents no certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![meridian_net::RPC_ALPN.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client(loopback()).unwrap();
    let connecting = endpoint.connect_with(config, server.local_addr(), server_id.expected_peer()).unwrap();
    // TLS 1.3: the client may finish its side of the handshake before the server has checked
    // its (empty) certificate; either way the connection ends with the server's refusal.
    let reason = match connecting.await {
        Ok(conn) => conn.closed().await,
        Err(e) => e,
    };
    match reason {
        quinn::ConnectionError::ConnectionClosed(close) => {
            assert_eq!(u64::from(close.error_code), 0x100 + 116, "certificate_required alert: {close}");
        }
        other => panic!("expected the server's certificate_required alert, got {other}"),
    }
    // Counted by the server's accept loop (another task): wait for it without polling.
    let stats = tokio::time::timeout(HANG_GUARD, server_id.stats().wait_until(|s| s.no_cert >= 1)).await.unwrap();
    assert_eq!(stats, HandshakeRefusals { no_cert: 1, bad_chain: 0, wrong_identity: 0 });
    assert_eq!(server.stats().handshakes_refused, stats);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let ca = CertAuthority::generate("test").unwrap();
    let rogue = CertAuthority::generate("rogue").unwrap();
    let (server_id, server) = server_of_r1(&ca);
    // Trusts the right CA (so it accepts the server), but its own certificate is the rogue's,
    // with the right names.
    let spec = CertSpec::valid_for_days(vec!["n9.r1.node.meridian".into(), "r1.region.meridian".into()], 1);
    let client = bind(&identity_with(&ca, &rogue, &spec, "r1"));
    refused(&client, &server).await;
    assert_eq!(server_id.stats().snapshot(), HandshakeRefusals { no_cert: 0, bad_chain: 1, wrong_identity: 0 });
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let ca = CertAuthority::generate("test").unwrap();
    let (server_id, server) = server_of_r1(&ca);
    let spec = expired_spec(vec!["n9.r1.node.meridian".into(), "r1.region.meridian".into()]);
    let client = bind(&identity_with(&ca, &ca, &spec, "r1"));
    let err = refused(&client, &server).await;
    assert!(err.to_string().contains("CertificateExpired"), "{err}");
    assert_eq!(server_id.stats().snapshot(), HandshakeRefusals { no_cert: 0, bad_chain: 1, wrong_identity: 0 });
}

#[tokio::test]
async fn certificate_of_another_region_is_refused() {
    let ca = CertAuthority::generate("test").unwrap();
    let (server_id, server) = server_of_r1(&ca);
    // Same CA, valid chain, but a node of region `other`: it is not `r1.region.meridian`. It
    // expects `r1` peers itself, so it accepts the server and the refusal is the server's.
    let issued = ca.issue_node("other", "n1", &[], 1).unwrap();
    let client_id = TlsIdentity::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        "r1.region.meridian",
    )
    .unwrap();
    let client = bind(&client_id);
    refused(&client, &server).await;
    assert_eq!(server_id.stats().snapshot(), HandshakeRefusals { no_cert: 0, bad_chain: 0, wrong_identity: 1 });
}

#[tokio::test]
async fn wan_certificate_is_not_a_node_certificate() {
    let ca = CertAuthority::generate("test").unwrap();
    let (server_id, server) = server_of_r1(&ca);
    let issued = ca.issue_region("r1", &[], 1).unwrap();
    let client_id = TlsIdentity::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        "r1.region.meridian",
    )
    .unwrap();
    refused(&bind(&client_id), &server).await;
    assert_eq!(server_id.stats().refused_wrong_identity(), 1);
}

#[tokio::test]
async fn server_of_another_region_is_refused_by_the_client() {
    let ca = CertAuthority::generate("test").unwrap();
    // The server holds an `r2` certificate but would accept `r1` clients.
    let issued = ca.issue_node("r2", "server", &[], 1).unwrap();
    let server_id = TlsIdentity::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        "r1.region.meridian",
    )
    .unwrap();
    let server = bind(&server_id);
    let _ = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n1"));
    let err = refused(&client, &server).await;
    assert!(err.to_string().contains("local"), "the client refused, not the server: {err}");
    assert_eq!(client.stats().connects, 0);
    assert_eq!(client.stats().connect_failures, 1);
    assert_eq!(server_id.stats().snapshot().total(), 0, "the server refused nothing");
}

#[tokio::test]
async fn different_alpn_fails_the_handshake() {
    let ca = CertAuthority::generate("test").unwrap();
    let server_id = node_identity(&ca, "r1", "server");
    let server = Endpoint::bind(loopback(), &server_id, meridian_net::WAN_ALPN, TransportOptions::lan()).unwrap();
    let _ = serve_echo(&server);
    let client = bind(&node_identity(&ca, "r1", "n1"));
    let err = refused(&client, &server).await;
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
}

#[tokio::test]
async fn insecure_and_secure_endpoints_refuse_each_other() {
    let ca = CertAuthority::generate("test").unwrap();
    let (secure_id, secure) = server_of_r1(&ca);
    let insecure = bind(&TlsIdentity::insecure_ephemeral("dev").unwrap());
    let _ = serve_echo(&insecure);

    // The insecure client accepts the secure server, whose client check refuses the
    // self-signed certificate.
    refused(&insecure, &secure).await;
    assert_eq!(secure_id.stats().refused_bad_chain(), 1);
    // The secure client refuses the insecure server's self-signed certificate.
    let client = bind(&node_identity(&ca, "r1", "n1"));
    refused(&client, &insecure).await;
}

/// Cross-region: a WAN endpoint accepts every configured peer region, and refuses a region
/// that is not configured; each client dials with the name of the region it calls.
#[tokio::test]
async fn a_wan_endpoint_accepts_each_configured_peer_region_and_only_those() {
    use tls::wan_name;
    let ca = CertAuthority::generate("wan").unwrap();
    let region_identity = |region: &str, expected: &str| {
        let c = ca.issue_region(region, &[std::net::IpAddr::from([127, 0, 0, 1])], 30).unwrap();
        TlsIdentity::from_pem(ca.cert_pem().as_bytes(), c.cert_pem.as_bytes(), c.key_pem.as_bytes(), expected).unwrap()
    };
    let server_id = region_identity("us-east", &wan_name("eu-west").unwrap())
        .accepting(&[&wan_name("eu-west").unwrap(), &wan_name("ap-southeast").unwrap()])
        .unwrap();
    let server = Endpoint::bind(loopback(), &server_id, WAN_ALPN, TransportOptions::wan()).unwrap();
    let _ = serve_echo(&server);
    for (region, accepted) in [("eu-west", true), ("ap-southeast", true), ("sa-east", false)] {
        let client_id = region_identity(region, "unused.meridian").dialing(&wan_name("us-east").unwrap()).unwrap();
        let client = Endpoint::bind(loopback(), &client_id, WAN_ALPN, TransportOptions::wan()).unwrap();
        let res = client.request(server.local_addr(), Bytes::from_static(b"hi"), DEADLINE).await;
        assert_eq!(res.is_ok(), accepted, "{region}: {res:?}");
    }
    assert_eq!(server_id.stats().snapshot().wrong_identity, 1, "the unconfigured region was refused and counted");
}
