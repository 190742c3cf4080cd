//! The one error type of the replicator.

/// Errors of cross-region replication.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WanError {
    /// A peer sent bytes that do not decode (or decompress), or a frame over the limit.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The QUIC transport failed (connect, timeout, stream).
    #[error("transport to {peer}: {reason}")]
    Transport {
        /// The peer region or address.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The peer region refused the request.
    #[error("{peer} refused: {code}: {message}")]
    Refused {
        /// The peer region.
        peer: String,
        /// Its stable error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The local region could not apply or answer (not enough replicas, storage).
    #[error("local region: {0}")]
    Local(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] meridian_local::StoreError),
    /// The link is fenced by an operator.
    #[error("region {0} is fenced")]
    Fenced(String),
    /// Configuration or TLS material is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

impl WanError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            WanError::Protocol(_) => "protocol_error",
            WanError::Transport { .. } => "transport",
            WanError::Refused { .. } => "refused",
            WanError::Local(_) => "local_unavailable",
            WanError::Store(e) => e.code(),
            WanError::Fenced(_) => "region_fenced",
            WanError::Config(_) => "config",
        }
    }

    /// Whether trying again later may succeed (everything but bad configuration and garbage).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, WanError::Config(_) | WanError::Protocol(_))
    }
}
