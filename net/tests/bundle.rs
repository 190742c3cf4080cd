//! The development bundle and loading identities from PEM files.

mod common;

use bytes::Bytes;
use common::*;
use meridian_net::{write_dev_bundle, Endpoint, NetError, TlsIdentity, TransportOptions, RPC_ALPN};

#[tokio::test]
async fn dev_bundle_loads_and_its_nodes_talk() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = write_dev_bundle(dir.path(), &[("r1", vec!["n1", "n2"]), ("r2", vec!["n1"])]).unwrap();
    assert_eq!(bundle.ca_cert, dir.path().join("ca.pem"));
    assert_eq!(bundle.ca_key, dir.path().join("ca.key"));
    for (region, node) in [("r1", "n1"), ("r1", "n2"), ("r2", "n1")] {
        let files = bundle.node(region, node).unwrap();
        assert_eq!(files.cert, dir.path().join(region).join(format!("{node}.pem")));
        assert_eq!(files.key, dir.path().join(region).join(format!("{node}.key")));
        TlsIdentity::from_pem_files(&bundle.ca_cert, &files.cert, &files.key, &format!("{region}.region.meridian"))
            .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [bundle.ca_key.clone(), bundle.node("r1", "n1").unwrap().key.clone()] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
    // The CA can be loaded back to issue more certificates.
    let ca_pem = std::fs::read_to_string(&bundle.ca_cert).unwrap();
    let key_pem = std::fs::read_to_string(&bundle.ca_key).unwrap();
    meridian_net::CertAuthority::from_pem(&ca_pem, &key_pem).unwrap();

    let n1 =
        Endpoint::bind(loopback(), &bundle.identity("r1", "n1").unwrap(), RPC_ALPN, TransportOptions::lan()).unwrap();
    let _ = serve_echo(&n1);
    let n2 = bind(&bundle.identity("r1", "n2").unwrap());
    let response = n2.request(n1.local_addr(), Bytes::from_static(b"hi"), DEADLINE).await.unwrap();
    assert_eq!(&response[..], b"echo:hi");
    // r2's node is refused by r1.
    let other = bind(&bundle.identity("r2", "n1").unwrap());
    let err = other.request(n1.local_addr(), Bytes::from_static(b"hi"), DEADLINE).await.unwrap_err();
    assert_eq!(err.code(), "handshake_refused");

    // Writing again replaces the bundle (a new CA).
    let again = write_dev_bundle(dir.path(), &[("r1", vec!["n1"])]).unwrap();
    assert_ne!(std::fs::read_to_string(&again.ca_cert).unwrap(), ca_pem);
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = write_dev_bundle(dir.path(), &[("r1", vec!["n1", "n2"])]).unwrap();
    let n1 = bundle.node("r1", "n1").unwrap();
    let n2 = bundle.node("r1", "n2").unwrap();
    let expected = "r1.region.meridian";

    let missing = dir.path().join("nope.pem");
    let err = TlsIdentity::from_pem_files(&missing, &n1.cert, &n1.key, expected).unwrap_err();
    assert!(matches!(&err, NetError::FileNotFound { path, .. } if *path == missing), "{err}");
    assert!(err.to_string().contains("nope.pem"), "{err}");

    // A key file where a certificate is expected.
    let err = TlsIdentity::from_pem_files(&bundle.ca_cert, &n1.key, &n1.key, expected).unwrap_err();
    assert!(matches!(&err, NetError::NoCertificate { path, .. } if *path == n1.key), "{err}");
    assert_eq!(err.code(), "no_certificate");

    // A certificate file where the key is expected.
    let err = TlsIdentity::from_pem_files(&bundle.ca_cert, &n1.cert, &n1.cert, expected).unwrap_err();
    assert_eq!(err.code(), "invalid_key", "{err}");
    assert!(err.to_string().contains("n1.pem"), "{err}");

    // Another node's key.
    let err = TlsIdentity::from_pem_files(&bundle.ca_cert, &n1.cert, &n2.key, expected).unwrap_err();
    assert_eq!(err.code(), "invalid_key", "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");

    // Garbage.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
    let err = TlsIdentity::from_pem_files(&garbage, &n1.cert, &n1.key, expected).unwrap_err();
    assert_eq!(err.code(), "invalid_pem", "{err}");

    // The expected peer must be a DNS name.
    let err = TlsIdentity::from_pem_files(&bundle.ca_cert, &n1.cert, &n1.key, "10.0.0.1").unwrap_err();
    assert_eq!(err.code(), "invalid_name", "{err}");
}

#[test]
fn bundle_refuses_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_dev_bundle(dir.path(), &[("R1", vec!["n1"])]).unwrap_err();
    assert_eq!(err.code(), "invalid_name");
    let err = write_dev_bundle(dir.path(), &[("r1", vec!["n.1"])]).unwrap_err();
    assert_eq!(err.code(), "invalid_name");
}
