//! The one error type of the storage crate.

use meridian_crdt::CrdtError;

/// Errors of node-local storage.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine (RocksDB, the file system) failed; the write was not applied.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A stored record or log entry could not be decoded: on-disk corruption or a format this
    /// version does not know.
    #[error("corrupt {what} at {key}: {reason}")]
    Corrupt {
        /// Which kind of entry (record, change, hint, segment).
        what: &'static str,
        /// The hex-encoded storage key.
        key: String,
        /// Why decoding failed.
        reason: String,
    },
    /// The value model refused the operation (type mismatch, sibling cap, bad op).
    #[error(transparent)]
    Crdt(#[from] CrdtError),
    /// The keyspace name is empty or longer than 255 bytes.
    #[error("invalid keyspace name: {0}")]
    InvalidKeyspace(String),
    /// A configuration value is out of bounds.
    #[error("{field}: {reason}")]
    InvalidConfig {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The store is closed or shutting down.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Engine(_) => "storage_engine",
            StoreError::Corrupt { .. } => "storage_corrupt",
            StoreError::Crdt(e) => e.code(),
            StoreError::InvalidKeyspace(_) => "invalid_keyspace",
            StoreError::InvalidConfig { .. } => "invalid_config",
            StoreError::Closed => "store_closed",
        }
    }

    /// Whether the same request may succeed if tried again (transient engine trouble).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Engine(_) | StoreError::Closed)
    }

    /// Whether the error is the caller's fault (a bad keyspace name, an operation the value
    /// model refuses): a 4xx at the API.
    pub fn is_client_error(&self) -> bool {
        match self {
            StoreError::InvalidKeyspace(_) => true,
            StoreError::Crdt(e) => e.is_client_error(),
            _ => false,
        }
    }
}
