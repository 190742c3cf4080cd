//! Identities and mutual TLS for QUIC.
//!
//! # Naming scheme
//!
//! Region and node names are `[a-z0-9-]{1,63}` (one DNS label; one that ends with `-` is
//! refused, as it cannot appear in a certificate). Certificates carry DNS subject alternative
//! names under the `meridian` pseudo top-level domain:
//!
//! | certificate | DNS SANs | used for |
//! |---|---|---|
//! | node `N` of region `R` | `N.R.node.meridian`, `R.region.meridian` (+ any IP SANs) | intra-region RPC and gossip, both directions |
//! | WAN identity of region `R` | `R.wan.meridian` | cross-region replication (later) |
//! | insecure throwaway for `N` | `N.insecure.meridian` (self-signed) | development only |
//!
//! Every [`TlsIdentity`] has an **expected peer name**: the name a peer's certificate must be
//! valid for. Inside region `R` it is `R.region.meridian` ([`region_name`]): any node of the
//! same region is accepted, a node of another region (`other.region.meridian`) or a WAN
//! certificate is not, even when issued by the same CA. For a WAN link to region `S` it will
//! be `S.wan.meridian` ([`wan_name`]).
//!
//! # Checks
//!
//! - **Server side** (incoming connections): TLS 1.3 only; a client certificate is
//!   *required*; its chain must verify against the CA roots (rustls' `WebPkiClientVerifier`:
//!   issuer, signatures, validity period, client-auth EKU); then the end-entity certificate
//!   must be valid for the expected peer name (webpki's
//!   `EndEntityCert::verify_is_valid_for_subject_name`). Refusals are counted by reason in
//!   [`TlsStats`] ([`TlsIdentity::stats`]).
//! - **Client side** (outgoing connections): we present our certificate, and verify the
//!   server's chain against the CA with the expected peer name as the TLS server name, whatever
//!   address we dial. Connecting code therefore always uses
//!   [`expected_peer`](TlsIdentity::expected_peer) as the SNI name, never an IP address.
//! - ALPN: both sides offer exactly the protocol(s) they are given; no overlap fails the
//!   handshake (`no_application_protocol`).
//!
//! All cryptography comes from `rustls::crypto::ring::default_provider()`, passed explicitly
//! to every builder; no process-wide default provider is installed or relied upon.
//!
//! # Insecure mode
//!
//! [`TlsIdentity::insecure_ephemeral`] (for `tls.allow_insecure = true`) generates a
//! throwaway self-signed certificate and verifiers that accept any peer certificate (they still
//! check that the peer holds the key of the certificate it shows). The link is **encrypted but
//! NOT authenticated**: anyone who can reach the port can talk to the node, and an active
//! attacker on the path can impersonate either side. Loopback development and tests only.

mod names;
mod verify;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::RootCertStore;

pub use names::{
    node_name, region_name, validate_name, wan_name, INSECURE_SUFFIX, MAX_NAME_LEN, NODE_SUFFIX, REGION_SUFFIX,
    WAN_SUFFIX,
};
#[cfg(test)]
pub(crate) use verify::check_identity;

use crate::config::TransportOptions;
use crate::error::NetError;
use crate::metrics::TlsStats;
use verify::{AcceptAnyClient, AcceptAnyServer, PeerIdentityVerifier};

/// The crypto provider used everywhere in this crate: rustls' `ring` provider.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Who we are and whom we accept: the CA roots, this node's certificate chain and private key,
/// and the name every peer must be valid for. Cheap to clone (shared inside); clones share the
/// same [`TlsStats`].
#[derive(Clone)]
pub struct TlsIdentity {
    roots: Arc<RootCertStore>,
    certified: Arc<CertifiedKey>,
    expected_peer: ServerName<'static>,
    expected_peer_str: Arc<str>,
    /// Names a client certificate may be valid for (the server side); empty: only
    /// `expected_peer`.
    accepted: Arc<Vec<ServerName<'static>>>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
    stats: Arc<TlsStats>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsIdentity")
            .field("expected_peer", &self.expected_peer_str)
            .field("insecure", &self.insecure)
            .field("roots", &self.roots.len())
            .field("chain_len", &self.certified.cert.len())
            .finish_non_exhaustive()
    }
}

/// Where the parts of an identity came from, for error messages.
struct Origin<'a> {
    ca: &'a str,
    cert: &'a str,
    key: &'a str,
}

impl TlsIdentity {
    /// Loads an identity from PEM files: `ca` holds the CA certificate(s) peers must chain to,
    /// `cert` this node's chain (end-entity first), `key` its private key (PKCS#8, PKCS#1 or
    /// SEC1). `expected_peer` is the DNS name peers must be valid for (intra-region:
    /// [`region_name`]).
    ///
    /// Errors name the file: missing ([`NetError::FileNotFound`]), unreadable, without a
    /// certificate ([`NetError::NoCertificate`]), malformed PEM, a key that is missing, invalid
    /// or does not match the certificate ([`NetError::InvalidKey`]).
    pub fn from_pem_files(ca: &Path, cert: &Path, key: &Path, expected_peer: &str) -> Result<Self, NetError> {
        let roots = read_certs("CA certificate", ca)?;
        let chain = read_certs("certificate", cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
            pem::Error::NoItemsFound => NetError::InvalidKey {
                context: key.display().to_string(),
                reason: "no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM section)".into(),
            },
            other => pem_error("private key", key, other),
        })?;
        let (ca, cert, key) = (ca.display().to_string(), cert.display().to_string(), key.display().to_string());
        Self::build(roots, chain, key_der, expected_peer, Origin { ca: &ca, cert: &cert, key: &key })
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text in memory.
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8], expected_peer: &str) -> Result<Self, NetError> {
        let parse_certs = |context: &str, data: &[u8]| -> Result<Vec<CertificateDer<'static>>, NetError> {
            let certs = CertificateDer::pem_slice_iter(data)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| NetError::InvalidCertificate { context: context.into(), reason: e.to_string() })?;
            if certs.is_empty() {
                return Err(NetError::InvalidCertificate {
                    context: context.into(),
                    reason: "no certificate found in PEM text".into(),
                });
            }
            Ok(certs)
        };
        let roots = parse_certs("CA certificate", ca_pem)?;
        let chain = parse_certs("certificate", cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| NetError::InvalidKey { context: "private key".into(), reason: e.to_string() })?;
        Self::from_der(roots, chain, key, expected_peer)
    }

    /// Builds an identity from DER parts: the CA roots, our chain (end-entity first) and key.
    pub fn from_der(
        roots: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        expected_peer: &str,
    ) -> Result<Self, NetError> {
        Self::build(
            roots,
            chain,
            key,
            expected_peer,
            Origin { ca: "CA certificate", cert: "certificate", key: "private key" },
        )
    }

    /// A throwaway self-signed identity for insecure (development) mode, with the name
    /// `name.insecure.meridian`. Its verifiers accept any peer: the link is encrypted but
    /// **not authenticated** (see the [module documentation](self)). Two insecure endpoints
    /// talk to each other; an insecure endpoint and a mutual-TLS one refuse each other.
    pub fn insecure_ephemeral(name: &str) -> Result<Self, NetError> {
        validate_name(name)?;
        let gen_err = |e: rcgen::Error| NetError::CertGeneration(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let params = rcgen::CertificateParams::new(vec![format!("{name}.{INSECURE_SUFFIX}")]).map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let provider = crypto_provider();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let certified = CertifiedKey::from_der(vec![cert.der().clone()], key_der, &provider)
            .map_err(|e| NetError::InvalidKey { context: "ephemeral key".into(), reason: e.to_string() })?;
        let expected_peer = dns_name(INSECURE_SUFFIX)?;
        Ok(Self {
            roots: Arc::new(RootCertStore::empty()),
            certified: Arc::new(certified),
            expected_peer,
            expected_peer_str: INSECURE_SUFFIX.into(),
            accepted: Arc::default(),
            insecure: true,
            provider,
            stats: Arc::default(),
        })
    }

    fn build(
        roots: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        expected_peer: &str,
        origin: Origin<'_>,
    ) -> Result<Self, NetError> {
        let expected = dns_name(expected_peer)?;
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(|e| NetError::InvalidCertificate {
                context: origin.ca.to_owned(),
                reason: format!("not usable as a trust anchor: {e}"),
            })?;
        }
        let Some(end_entity) = chain.first() else {
            return Err(NetError::InvalidCertificate { context: origin.cert.to_owned(), reason: "empty chain".into() });
        };
        webpki::EndEntityCert::try_from(end_entity).map_err(|e| NetError::InvalidCertificate {
            context: origin.cert.to_owned(),
            reason: format!("not a valid X.509 end-entity certificate: {e}"),
        })?;
        let provider = crypto_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| NetError::InvalidKey {
            context: origin.key.to_owned(),
            reason: match e {
                rustls::Error::InconsistentKeys(_) => format!("does not match the certificate in {}", origin.cert),
                other => other.to_string(),
            },
        })?;
        Ok(Self {
            roots: Arc::new(store),
            certified: Arc::new(certified),
            expected_peer: expected,
            expected_peer_str: expected_peer.into(),
            accepted: Arc::default(),
            insecure: false,
            provider,
            stats: Arc::default(),
        })
    }

    /// The same identity, but whose server side accepts a client certificate valid for **any**
    /// of `names` (instead of only [`expected_peer`](Self::expected_peer)). Cross-region
    /// replication uses it: a region's WAN endpoint accepts each configured peer region.
    pub fn accepting(&self, names: &[&str]) -> Result<TlsIdentity, NetError> {
        let accepted = names.iter().map(|n| dns_name(n)).collect::<Result<Vec<_>, _>>()?;
        if accepted.is_empty() {
            return Err(NetError::InvalidName { name: String::new(), reason: "no accepted peer names".into() });
        }
        Ok(TlsIdentity { accepted: Arc::new(accepted), ..self.clone() })
    }

    /// The same identity, dialing (and verifying) servers valid for `name` instead of
    /// [`expected_peer`](Self::expected_peer). Cross-region replication uses one per peer
    /// region. Shares the [`TlsStats`].
    pub fn dialing(&self, name: &str) -> Result<TlsIdentity, NetError> {
        if self.insecure {
            return Ok(self.clone());
        }
        Ok(TlsIdentity { expected_peer: dns_name(name)?, expected_peer_str: name.into(), ..self.clone() })
    }

    /// Whether this is an insecure (unauthenticated) identity.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The DNS name peers must be valid for; also the TLS server name (SNI) we dial with.
    pub fn expected_peer(&self) -> &str {
        &self.expected_peer_str
    }

    /// Handshake refusals counted by the server side of this identity (shared by clones).
    pub fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }

    /// Our certificate chain, end-entity first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    /// The quinn server configuration with the default [`TransportOptions`].
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<quinn::ServerConfig, NetError> {
        self.server_config_with(alpn, &TransportOptions::default())
    }

    /// The quinn server configuration: TLS 1.3, client certificates required and checked (see
    /// the [module documentation](self)), the given ALPN protocols, and the transport
    /// parameters of `opts`.
    pub fn server_config_with(&self, alpn: &[&[u8]], opts: &TransportOptions) -> Result<quinn::ServerConfig, NetError> {
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(self.client_verifier()?)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(self.certified.clone())));
        tls.alpn_protocols = alpn_list(alpn)?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_err)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(opts.transport_config()?);
        Ok(config)
    }

    /// The quinn client configuration with the default [`TransportOptions`].
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<quinn::ClientConfig, NetError> {
        self.client_config_with(alpn, &TransportOptions::default())
    }

    /// The quinn client configuration: TLS 1.3, presents our certificate, verifies the server
    /// against the CA for the server name it is given, which must be
    /// [`expected_peer`](Self::expected_peer) (insecure mode: accepts any server).
    pub fn client_config_with(&self, alpn: &[&[u8]], opts: &TransportOptions) -> Result<quinn::ClientConfig, NetError> {
        let builder = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer { provider: self.provider.clone() }))
        } else {
            let verifier = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .build()
                .map_err(|e| NetError::TlsConfig(format!("server certificate verifier: {e}")))?;
            builder.with_webpki_verifier(verifier)
        };
        let mut tls = builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(self.certified.clone())));
        tls.alpn_protocols = alpn_list(alpn)?;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_err)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(opts.transport_config()?);
        Ok(config)
    }

    fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, NetError> {
        if self.insecure {
            return Ok(Arc::new(AcceptAnyClient { provider: self.provider.clone() }));
        }
        let chain = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| NetError::TlsConfig(format!("client certificate verifier: {e}")))?;
        let accepted =
            if self.accepted.is_empty() { vec![self.expected_peer.clone()] } else { self.accepted.as_ref().clone() };
        Ok(Arc::new(PeerIdentityVerifier { chain, accepted, stats: self.stats.clone() }))
    }
}

fn tls_err(e: impl fmt::Display) -> NetError {
    NetError::TlsConfig(e.to_string())
}

fn alpn_list(alpn: &[&[u8]]) -> Result<Vec<Vec<u8>>, NetError> {
    if alpn.is_empty() || alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(NetError::TlsConfig("ALPN: at least one protocol of 1 to 255 bytes is required".into()));
    }
    Ok(alpn.iter().map(|p| p.to_vec()).collect())
}

fn dns_name(name: &str) -> Result<ServerName<'static>, NetError> {
    match ServerName::try_from(name.to_owned()) {
        Ok(server_name @ ServerName::DnsName(_)) => Ok(server_name),
        _ => Err(NetError::InvalidName { name: name.to_owned(), reason: "expected peer must be a DNS name".into() }),
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(NetError::NoCertificate { what, path: path.to_owned() });
    }
    Ok(certs)
}

fn pem_error(what: &'static str, path: &Path, e: pem::Error) -> NetError {
    match e {
        pem::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            NetError::FileNotFound { what, path: path.to_owned() }
        }
        pem::Error::Io(io) => NetError::ReadFile { what, path: path.to_owned(), source: Arc::new(io) },
        pem::Error::NoItemsFound => NetError::NoCertificate { what, path: path.to_owned() },
        other => NetError::InvalidPem { what, path: path.to_owned(), reason: other.to_string() },
    }
}
