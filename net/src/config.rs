//! Transport tuning: QUIC timers and stream limits, frame limits, server concurrency.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::error::NetError;

/// Tuning of an [`Endpoint`](crate::Endpoint) and of the QUIC transport parameters that
/// [`TlsIdentity::server_config_with`](crate::TlsIdentity::server_config_with) and
/// [`TlsIdentity::client_config_with`](crate::TlsIdentity::client_config_with) put in place.
///
/// [`Default`] is the LAN preset ([`TransportOptions::lan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// How often an idle connection sends a keep-alive (PING), so that it is not closed by the
    /// idle timeout and a dead peer is noticed. Must be shorter than `idle_timeout`.
    pub keep_alive_interval: Duration,
    /// A connection that has received nothing for this long is closed. It also bounds the
    /// handshake with an unreachable peer. Negotiated: the smaller of both sides' values wins.
    pub idle_timeout: Duration,
    /// Concurrent bidirectional streams (requests) the peer may open on one connection.
    /// Further requests wait in the peer's `open_bi` (backpressure).
    pub max_concurrent_bidi_streams: u32,
    /// Concurrent unidirectional streams (one-way messages) the peer may open on one connection.
    pub max_concurrent_uni_streams: u32,
    /// Largest request, response or message payload accepted or sent, in bytes. Larger
    /// incoming frames are refused (the stream is reset) without being buffered whole.
    pub max_frame_bytes: usize,
    /// Incoming requests and messages served at once by this endpoint (reading the payload and
    /// running the handler), over all connections. Further streams wait for a slot.
    pub max_inflight_requests: usize,
    /// Bound on each phase of [`Endpoint::shutdown`](crate::Endpoint::shutdown): draining
    /// in-flight requests, then waiting for connections to close.
    pub shutdown_grace: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self::lan()
    }
}

impl TransportOptions {
    /// The preset for intra-region RPC and gossip: short timers, so that a dead node is noticed
    /// in seconds.
    pub fn lan() -> Self {
        Self {
            keep_alive_interval: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            max_concurrent_bidi_streams: 512,
            max_concurrent_uni_streams: 512,
            max_frame_bytes: 64 * 1024 * 1024,
            max_inflight_requests: 1024,
            shutdown_grace: Duration::from_secs(2),
        }
    }

    /// The preset for cross-region links: longer timers, which tolerate WAN latency spikes and
    /// brief outages without tearing the connection down.
    pub fn wan() -> Self {
        Self { keep_alive_interval: Duration::from_secs(5), idle_timeout: Duration::from_secs(30), ..Self::lan() }
    }

    /// Checks that the values are usable.
    pub fn validate(&self) -> Result<(), NetError> {
        let invalid = |field, reason: &str| Err(NetError::InvalidOptions { field, reason: reason.to_owned() });
        if self.idle_timeout.is_zero() {
            return invalid("idle_timeout", "must be positive");
        }
        if IdleTimeout::try_from(self.idle_timeout).is_err() {
            return invalid("idle_timeout", "is too large for QUIC (at most 2^62 milliseconds)");
        }
        if self.keep_alive_interval.is_zero() || self.keep_alive_interval >= self.idle_timeout {
            return invalid("keep_alive_interval", "must be positive and shorter than idle_timeout");
        }
        if self.max_concurrent_bidi_streams == 0 {
            return invalid("max_concurrent_bidi_streams", "must be at least 1");
        }
        if self.max_concurrent_uni_streams == 0 {
            return invalid("max_concurrent_uni_streams", "must be at least 1");
        }
        if self.max_frame_bytes == 0 {
            return invalid("max_frame_bytes", "must be at least 1");
        }
        if self.max_inflight_requests == 0 || u32::try_from(self.max_inflight_requests).is_err() {
            return invalid("max_inflight_requests", "must be between 1 and 2^32 - 1");
        }
        Ok(())
    }

    /// The quinn transport configuration for these options (after [`validate`](Self::validate)).
    pub fn transport_config(&self) -> Result<Arc<TransportConfig>, NetError> {
        self.validate()?;
        let idle = IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| NetError::InvalidOptions { field: "idle_timeout", reason: "is too large for QUIC".into() })?;
        let mut transport = TransportConfig::default();
        transport
            .keep_alive_interval(Some(self.keep_alive_interval))
            .max_idle_timeout(Some(idle))
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams));
        Ok(Arc::new(transport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        TransportOptions::lan().validate().unwrap();
        TransportOptions::wan().validate().unwrap();
        assert_eq!(TransportOptions::default(), TransportOptions::lan());
        TransportOptions::default().transport_config().unwrap();
    }

    #[test]
    fn keep_alive_must_be_shorter_than_idle_timeout() {
        let opts = TransportOptions { keep_alive_interval: Duration::from_secs(10), ..TransportOptions::lan() };
        let err = opts.validate().unwrap_err();
        assert_eq!(err.code(), "invalid_transport_options");
        assert!(err.to_string().contains("keep_alive_interval"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        for opts in [
            TransportOptions { max_frame_bytes: 0, ..TransportOptions::lan() },
            TransportOptions { max_inflight_requests: 0, ..TransportOptions::lan() },
            TransportOptions { max_concurrent_bidi_streams: 0, ..TransportOptions::lan() },
            TransportOptions { idle_timeout: Duration::ZERO, ..TransportOptions::lan() },
        ] {
            assert!(opts.validate().is_err(), "{opts:?}");
        }
    }
}
