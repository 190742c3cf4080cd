//! Certificate verifiers: the identity-checking client verifier of mutual TLS, and the
//! accept-anything verifiers of insecure mode.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use tracing::debug;

use crate::metrics::{RefusalReason, TlsStats};

/// Checks that `end_entity` is valid for `expected` (a DNS SAN match, done by webpki).
pub(crate) fn check_identity(end_entity: &CertificateDer<'_>, expected: &ServerName<'static>) -> Result<(), Error> {
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    cert.verify_is_valid_for_subject_name(expected).map_err(|e| match e {
        webpki::Error::CertNotValidForName(context) => {
            Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: expected.clone(),
                presented: context.presented,
            })
        }
        _ => Error::InvalidCertificate(CertificateError::NotValidForName),
    })
}

/// The server's client-certificate verifier in mutual-TLS mode: the chain must verify against
/// the CA (delegated to rustls' `WebPkiClientVerifier`), and then the end-entity certificate
/// must be valid for one of the accepted peer names. Refusals are counted in [`TlsStats`].
#[derive(Debug)]
pub(crate) struct PeerIdentityVerifier {
    pub(crate) chain: Arc<dyn ClientCertVerifier>,
    pub(crate) accepted: Vec<ServerName<'static>>,
    pub(crate) stats: Arc<TlsStats>,
}

impl ClientCertVerifier for PeerIdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Err(e) = self.chain.verify_client_cert(end_entity, intermediates, now) {
            self.stats.record(RefusalReason::BadChain);
            debug!(error = %e, "refused client certificate: chain does not verify");
            return Err(e);
        }
        let mut last = None;
        for name in &self.accepted {
            match check_identity(end_entity, name) {
                Ok(()) => return Ok(ClientCertVerified::assertion()),
                Err(e) => last = Some(e),
            }
        }
        self.stats.record(RefusalReason::WrongIdentity);
        debug!(error = ?last, accepted = ?self.accepted, "refused client certificate: wrong identity");
        Err(last.unwrap_or(Error::InvalidCertificate(CertificateError::NotValidForName)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// Insecure mode, client side: accepts any server certificate. The handshake signature is
/// still checked (the peer holds the key of the certificate it sent), but nothing ties that
/// certificate to anyone: the link is encrypted, not authenticated.
#[derive(Debug)]
pub(crate) struct AcceptAnyServer {
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Insecure mode, server side: asks for a client certificate and accepts any (or none).
#[derive(Debug)]
pub(crate) struct AcceptAnyClient {
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AcceptAnyClient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
