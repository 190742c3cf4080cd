//! The one error type of the networking crate.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Errors of the QUIC stack: loading identities, building TLS configurations, binding, and
/// talking to peers.
///
/// Every variant has a stable, machine-readable [`code`](NetError::code). I/O sources are kept
/// behind an [`Arc`] so that the error is [`Clone`] (a failed connect can be reported to every
/// request that waited for it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// A file that should exist does not.
    #[error("{what} file {} does not exist", path.display())]
    FileNotFound {
        /// Which file this is ("CA certificate", "certificate", "private key").
        what: &'static str,
        /// The path that was tried.
        path: PathBuf,
    },
    /// A file could not be read (permissions, I/O error, not a regular file).
    #[error("cannot read {what} file {}: {source}", path.display())]
    ReadFile {
        /// Which file this is.
        what: &'static str,
        /// The path that was tried.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The path that was written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A PEM file holds no certificate.
    #[error("no certificate found in {what} file {} (expected a `-----BEGIN CERTIFICATE-----` section)", path.display())]
    NoCertificate {
        /// Which file this is.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A PEM file is malformed (broken section markers, bad base64).
    #[error("malformed PEM in {what} file {}: {reason}", path.display())]
    InvalidPem {
        /// Which file this is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A certificate is unusable (not DER, refused by the trust store, not a CA).
    #[error("invalid certificate ({context}): {reason}")]
    InvalidCertificate {
        /// Where it came from (a file path, or what it was meant to be).
        context: String,
        /// Why it is refused.
        reason: String,
    },
    /// A private key is missing, malformed, of an unsupported type, or does not match the
    /// certificate.
    #[error("invalid private key ({context}): {reason}")]
    InvalidKey {
        /// Where it came from (a file path, or what it was meant to be).
        context: String,
        /// Why it is refused.
        reason: String,
    },
    /// A region or node name does not follow the naming scheme (see [`crate::tls`]).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificate generation (rcgen) failed.
    #[error("cannot generate certificate: {0}")]
    CertGeneration(String),
    /// A TLS or QUIC configuration could not be built from the identity.
    #[error("cannot build TLS configuration: {0}")]
    TlsConfig(String),
    /// A [`TransportOptions`](crate::TransportOptions) value is out of bounds.
    #[error("invalid transport option {field}: {reason}")]
    InvalidOptions {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The UDP socket could not be bound or the QUIC endpoint not started.
    #[error("cannot bind QUIC endpoint to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// No connection could be established: the peer did not answer the handshake in time, or
    /// the address is unusable. Usually transient.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The TLS handshake was refused, by us or by the peer: unknown CA, expired certificate,
    /// a certificate for another region or role, no client certificate, or no common ALPN.
    /// A configuration problem, not retryable.
    #[error("TLS handshake with {addr} refused: {reason}")]
    HandshakeRefused {
        /// The peer.
        addr: SocketAddr,
        /// The alert and message, as reported by rustls or the peer.
        reason: String,
    },
    /// The request did not complete within its deadline (connect + send + wait + receive).
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// The deadline that passed.
        after: Duration,
    },
    /// The connection was closed (by the peer, an idle timeout, or a reset) while in use.
    #[error("connection to {addr} closed: {reason}")]
    Closed {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A frame exceeded a size limit (ours or the peer's).
    #[error("frame to or from {addr} too large: {limit}")]
    FrameTooLarge {
        /// The peer.
        addr: SocketAddr,
        /// Which limit was exceeded.
        limit: FrameLimit,
    },
    /// A stream failed: the peer reset it (its handler failed, it was cancelled) or it was
    /// malformed.
    #[error("stream with {addr} failed: {reason}")]
    Stream {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// This endpoint has been shut down.
    #[error("endpoint is shut down")]
    ShutDown,
}

/// Which frame size limit a [`NetError::FrameTooLarge`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLimit {
    /// Our outgoing payload is larger than our own `max_frame_bytes`; nothing was sent.
    Outgoing {
        /// The payload's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer's response was larger than our `max_frame_bytes`; it was discarded.
    Incoming {
        /// The limit.
        limit: usize,
    },
    /// The peer refused our frame as larger than its own limit.
    RefusedByPeer,
}

impl fmt::Display for FrameLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameLimit::Outgoing { len, limit } => {
                write!(f, "outgoing payload of {len} bytes exceeds the limit of {limit} bytes")
            }
            FrameLimit::Incoming { limit } => write!(f, "incoming frame exceeds the limit of {limit} bytes"),
            FrameLimit::RefusedByPeer => f.write_str("the peer refused the frame as larger than its limit"),
        }
    }
}

impl NetError {
    /// A stable, machine-readable code for this error (snake_case).
    pub fn code(&self) -> &'static str {
        match self {
            NetError::FileNotFound { .. } => "file_not_found",
            NetError::ReadFile { .. } => "file_unreadable",
            NetError::WriteFile { .. } => "file_write_failed",
            NetError::NoCertificate { .. } => "no_certificate",
            NetError::InvalidPem { .. } => "invalid_pem",
            NetError::InvalidCertificate { .. } => "invalid_certificate",
            NetError::InvalidKey { .. } => "invalid_key",
            NetError::InvalidName { .. } => "invalid_name",
            NetError::CertGeneration(_) => "cert_generation_failed",
            NetError::TlsConfig(_) => "tls_config",
            NetError::InvalidOptions { .. } => "invalid_transport_options",
            NetError::Bind { .. } => "bind_failed",
            NetError::Connect { .. } => "connect_failed",
            NetError::HandshakeRefused { .. } => "handshake_refused",
            NetError::Timeout { .. } => "timeout",
            NetError::Closed { .. } => "connection_closed",
            NetError::FrameTooLarge { .. } => "frame_too_large",
            NetError::Stream { .. } => "stream_failed",
            NetError::ShutDown => "endpoint_shut_down",
        }
    }

    /// Whether the same call may succeed if tried again (possibly against another replica):
    /// timeouts, unreachable peers, closed connections and failed streams. Refused handshakes,
    /// oversized frames, bad files and a shut-down endpoint are not retryable.
    ///
    /// A retried request may be executed twice by the peer: `Timeout`, `Closed` and `Stream`
    /// do not say whether the peer's handler ran. Retry only idempotent requests.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NetError::Connect { .. } | NetError::Timeout { .. } | NetError::Closed { .. } | NetError::Stream { .. }
        )
    }

    /// The peer this error is about, for errors of a peer exchange.
    pub fn peer(&self) -> Option<SocketAddr> {
        match self {
            NetError::Connect { addr, .. }
            | NetError::HandshakeRefused { addr, .. }
            | NetError::Timeout { addr, .. }
            | NetError::Closed { addr, .. }
            | NetError::FrameTooLarge { addr, .. }
            | NetError::Stream { addr, .. } => Some(*addr),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_unique() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let io = || Arc::new(io::Error::other("x"));
        let all = [
            NetError::FileNotFound { what: "x", path: "p".into() },
            NetError::ReadFile { what: "x", path: "p".into(), source: io() },
            NetError::WriteFile { path: "p".into(), source: io() },
            NetError::NoCertificate { what: "x", path: "p".into() },
            NetError::InvalidPem { what: "x", path: "p".into(), reason: "r".into() },
            NetError::InvalidCertificate { context: "c".into(), reason: "r".into() },
            NetError::InvalidKey { context: "c".into(), reason: "r".into() },
            NetError::InvalidName { name: "n".into(), reason: "r".into() },
            NetError::CertGeneration("r".into()),
            NetError::TlsConfig("r".into()),
            NetError::InvalidOptions { field: "f", reason: "r".into() },
            NetError::Bind { addr, source: io() },
            NetError::Connect { addr, reason: "r".into() },
            NetError::HandshakeRefused { addr, reason: "r".into() },
            NetError::Timeout { addr, after: Duration::from_secs(1) },
            NetError::Closed { addr, reason: "r".into() },
            NetError::FrameTooLarge { addr, limit: FrameLimit::RefusedByPeer },
            NetError::Stream { addr, reason: "r".into() },
            NetError::ShutDown,
        ];
        let mut codes: Vec<&str> = all.iter().map(NetError::code).collect();
        for code in &codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes must be unique");
    }
}
