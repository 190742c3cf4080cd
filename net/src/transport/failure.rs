//! Mapping quinn's errors to [`NetError`], and recognising handshake refusals.

use std::net::SocketAddr;

use quinn::{ConnectError, ConnectionError, ReadError, TransportErrorCode, VarInt, WriteError};
use rustls::AlertDescription;

use super::wire;
use crate::error::{FrameLimit, NetError};

/// When a connection error happened: while connecting, or on an established connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connect,
    Established,
}

/// The TLS alert carried by a QUIC crypto error code (`0x100 + alert`), if it is one.
fn tls_alert(code: TransportErrorCode) -> Option<AlertDescription> {
    let code = u64::from(code);
    if (0x100..=0x1ff).contains(&code) {
        u8::try_from(code - 0x100).ok().map(AlertDescription::from)
    } else {
        None
    }
}

/// Whether a server-side handshake failed because the client sent no certificate (rustls
/// answers with the `certificate_required` alert, before any verifier runs).
pub(crate) fn is_missing_client_cert(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::TransportError(t) if tls_alert(t.code) == Some(AlertDescription::CertificateRequired))
}

/// Whether a handshake failed on a TLS alert (a refusal, as opposed to a timeout).
pub(crate) fn is_tls_refusal(e: &ConnectionError) -> bool {
    match e {
        ConnectionError::TransportError(t) => tls_alert(t.code).is_some(),
        ConnectionError::ConnectionClosed(c) => tls_alert(c.error_code).is_some(),
        ConnectionError::VersionMismatch => true,
        _ => false,
    }
}

pub(crate) fn connection_error(addr: SocketAddr, e: ConnectionError, phase: Phase) -> NetError {
    match e {
        ConnectionError::TransportError(t) => match tls_alert(t.code) {
            Some(alert) => NetError::HandshakeRefused { addr, reason: format!("{alert:?} (local): {}", t.reason) },
            None if phase == Phase::Connect => NetError::Connect { addr, reason: t.to_string() },
            None => NetError::Closed { addr, reason: format!("protocol error: {t}") },
        },
        ConnectionError::ConnectionClosed(c) => match tls_alert(c.error_code) {
            Some(alert) => NetError::HandshakeRefused {
                addr,
                reason: format!("{alert:?} (sent by the peer): {}", String::from_utf8_lossy(&c.reason)),
            },
            None => NetError::Closed { addr, reason: format!("closed by the peer: {c}") },
        },
        ConnectionError::ApplicationClosed(c) if c.error_code == wire::CLOSE_SHUTDOWN => {
            NetError::Closed { addr, reason: "the peer shut down".into() }
        }
        ConnectionError::ApplicationClosed(c) => NetError::Closed { addr, reason: format!("closed by the peer: {c}") },
        ConnectionError::VersionMismatch => {
            NetError::HandshakeRefused { addr, reason: "no common QUIC version".into() }
        }
        ConnectionError::Reset => {
            let reason = "the peer reset the connection (stateless reset: it probably restarted)".to_owned();
            match phase {
                Phase::Connect => NetError::Connect { addr, reason },
                Phase::Established => NetError::Closed { addr, reason },
            }
        }
        ConnectionError::TimedOut => match phase {
            Phase::Connect => {
                NetError::Connect { addr, reason: "no answer to the handshake (peer unreachable?)".into() }
            }
            Phase::Established => NetError::Closed { addr, reason: "idle timeout: nothing heard from the peer".into() },
        },
        ConnectionError::LocallyClosed => NetError::ShutDown,
        ConnectionError::CidsExhausted => NetError::Closed { addr, reason: "connection IDs exhausted".into() },
    }
}

pub(crate) fn connect_error(addr: SocketAddr, e: ConnectError) -> NetError {
    match e {
        ConnectError::EndpointStopping => NetError::ShutDown,
        other => NetError::Connect { addr, reason: other.to_string() },
    }
}

/// A stream stopped or reset by the peer with `code`.
pub(crate) fn peer_code(addr: SocketAddr, code: VarInt) -> NetError {
    match code {
        wire::FRAME_TOO_LARGE => NetError::FrameTooLarge { addr, limit: FrameLimit::RefusedByPeer },
        wire::SHUTTING_DOWN => NetError::Closed { addr, reason: "the peer is shutting down".into() },
        wire::HANDLER_FAILED => NetError::Stream { addr, reason: "the peer's handler failed".into() },
        wire::CANCELLED | wire::QUINN_DROPPED => NetError::Stream { addr, reason: "cancelled by the peer".into() },
        other => NetError::Stream { addr, reason: format!("the peer aborted the stream with code {other}") },
    }
}

pub(crate) fn write_error(addr: SocketAddr, e: WriteError) -> NetError {
    match e {
        WriteError::Stopped(code) => peer_code(addr, code),
        WriteError::ConnectionLost(e) => connection_error(addr, e, Phase::Established),
        WriteError::ClosedStream => NetError::Stream { addr, reason: "stream already closed".into() },
        WriteError::ZeroRttRejected => NetError::Stream { addr, reason: "0-RTT rejected".into() },
    }
}

pub(crate) fn read_error(addr: SocketAddr, e: ReadError) -> NetError {
    match e {
        ReadError::Reset(code) => peer_code(addr, code),
        ReadError::ConnectionLost(e) => connection_error(addr, e, Phase::Established),
        ReadError::ClosedStream => NetError::Stream { addr, reason: "stream already closed".into() },
        ReadError::IllegalOrderedRead => NetError::Stream { addr, reason: "illegal ordered read".into() },
        ReadError::ZeroRttRejected => NetError::Stream { addr, reason: "0-RTT rejected".into() },
    }
}

/// A panic payload's message, for the log.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_codes_are_recognised() {
        assert_eq!(tls_alert(TransportErrorCode::crypto(116)), Some(AlertDescription::CertificateRequired));
        assert_eq!(tls_alert(TransportErrorCode::crypto(42)), Some(AlertDescription::BadCertificate));
        assert_eq!(tls_alert(TransportErrorCode::PROTOCOL_VIOLATION), None);
    }

    #[test]
    fn peer_codes_map_to_variants() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(peer_code(addr, wire::FRAME_TOO_LARGE).code(), "frame_too_large");
        assert_eq!(peer_code(addr, wire::SHUTTING_DOWN).code(), "connection_closed");
        assert_eq!(peer_code(addr, wire::HANDLER_FAILED).code(), "stream_failed");
        assert_eq!(peer_code(addr, VarInt::from_u32(999)).code(), "stream_failed");
    }
}
