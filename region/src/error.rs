//! The one error type of the regional cluster.
//!
//! Every variant has a stable snake_case [`code`](RegionError::code) (the `error` field of the
//! HTTP error body) and an HTTP status ([`RegionError::http_status`]); the `Display` text is for
//! humans and may change.

use meridian_config::ConsistencyLevel;
use meridian_crdt::{CrdtError, NodeId, ValueKind};
use meridian_local::StoreError;

/// Errors of the regional cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegionError {
    /// Fewer distinct nodes than the replication factor needs.
    #[error("not enough nodes: {nodes} in the ring, replication factor {replication_factor}")]
    NotEnoughNodes {
        /// Distinct physical nodes in the ring.
        nodes: usize,
        /// Replicas wanted per key.
        replication_factor: usize,
    },
    /// The consistency level could not be met.
    #[error("{}", unavailable_message(*level, *required, *answered, *asked, failures))]
    Unavailable {
        /// The level asked for.
        level: ConsistencyLevel,
        /// Acknowledgements (or responses) needed.
        required: usize,
        /// Acknowledgements (or responses) received.
        answered: usize,
        /// Replicas asked.
        asked: usize,
        /// The replicas that failed, with why.
        failures: Vec<(NodeId, String)>,
    },
    /// The keyspace is neither configured nor created.
    #[error("unknown keyspace {0:?}")]
    UnknownKeyspace(String),
    /// A keyspace of that name exists with another type.
    #[error("keyspace {name:?} exists with type {existing}, not {requested}")]
    KeyspaceExists {
        /// The keyspace.
        name: String,
        /// Its type.
        existing: ValueKind,
        /// The type asked for.
        requested: ValueKind,
    },
    /// The request used an endpoint of one value type on a keyspace of another.
    #[error("keyspace {keyspace:?} holds {actual} values; this endpoint is for {endpoint} keyspaces")]
    WrongType {
        /// The keyspace.
        keyspace: String,
        /// Its type.
        actual: ValueKind,
        /// The type the endpoint serves.
        endpoint: ValueKind,
    },
    /// A conditional write (`If-Match`) found another version.
    #[error("version mismatch: the request expected version {expected}, the key is {}", match current { Some(v) => format!("at version {v}"), None => "absent".to_owned() })]
    VersionConflict {
        /// The version the request named.
        expected: String,
        /// The version found (`None`: the key is absent).
        current: Option<String>,
    },
    /// The request is malformed (bad header, bad body, bad parameter, empty key, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A key longer than the limit.
    #[error("key is {len} bytes, more than the limit of {max}")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value (or set element) longer than the limit.
    #[error("value is {len} bytes, more than the limit of {max}")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A remote node failed an RPC or could not be reached.
    #[error("rpc to {peer} failed: {reason}")]
    Rpc {
        /// The peer's address or id.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// A remote peer sent something that does not decode, or a frame over the limit.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS material could not be loaded or a peer presented an unacceptable certificate.
    #[error("tls: {0}")]
    Tls(String),
    /// The node is shutting down and takes no new requests.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// An operator fenced this region (a failover drill, a regional outage): its clients are
    /// sent to other regions and its WAN links are cut.
    #[error("region {0} is fenced: use another region")]
    Fenced(String),
    /// A replica refused the operation for a reason that no retry or other replica changes
    /// (too many siblings, a kind mismatch, an invalid op): the client's error, with the
    /// replica's stable code.
    #[error("{message}")]
    Refused {
        /// The replica's stable code (`too_many_siblings`, `kind_mismatch`, `invalid_op`).
        code: String,
        /// Its message.
        message: String,
    },
    /// A snapshot of that name exists already on this node.
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The value model refused the operation.
    #[error(transparent)]
    Crdt(#[from] CrdtError),
}

fn unavailable_message(
    level: ConsistencyLevel,
    required: usize,
    answered: usize,
    asked: usize,
    failures: &[(NodeId, String)],
) -> String {
    if asked == 0 {
        format!(
            "consistency level {level} not met: {required} replicas required, {} of them down; \
             the request was not sent to any replica",
            failures.len()
        )
    } else {
        format!(
            "consistency level {level} not met: {answered} of {required} required replicas answered ({asked} asked)"
        )
    }
}

impl RegionError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RegionError::NotEnoughNodes { .. } => "not_enough_nodes",
            RegionError::Unavailable { .. } => "unavailable",
            RegionError::UnknownKeyspace(_) => "unknown_keyspace",
            RegionError::KeyspaceExists { .. } => "keyspace_exists",
            RegionError::WrongType { .. } => "wrong_type",
            RegionError::VersionConflict { .. } => "conflict",
            RegionError::InvalidRequest(_) => "invalid_request",
            RegionError::KeyTooLarge { .. } => "key_too_large",
            RegionError::ValueTooLarge { .. } => "value_too_large",
            RegionError::Rpc { .. } => "rpc_failed",
            RegionError::Protocol(_) => "protocol_error",
            RegionError::Tls(_) => "tls_error",
            RegionError::ShuttingDown => "shutting_down",
            RegionError::Fenced(_) => "region_fenced",
            RegionError::SnapshotExists(_) => "snapshot_exists",
            RegionError::Refused { code, .. } => match code.as_str() {
                "too_many_siblings" => "too_many_siblings",
                "kind_mismatch" => "kind_mismatch",
                _ => "invalid_op",
            },
            RegionError::Store(e) => e.code(),
            RegionError::Crdt(e) => e.code(),
        }
    }

    /// The HTTP status the API answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            RegionError::InvalidRequest(_) => 400,
            RegionError::KeyTooLarge { .. } => 414,
            RegionError::ValueTooLarge { .. } => 413,
            RegionError::UnknownKeyspace(_) => 404,
            RegionError::KeyspaceExists { .. }
            | RegionError::WrongType { .. }
            | RegionError::VersionConflict { .. }
            | RegionError::SnapshotExists(_) => 409,
            RegionError::NotEnoughNodes { .. }
            | RegionError::Unavailable { .. }
            | RegionError::Rpc { .. }
            | RegionError::ShuttingDown
            | RegionError::Fenced(_) => 503,
            RegionError::Store(StoreError::Crdt(e)) => RegionError::Crdt(e.clone()).http_status(),
            RegionError::Refused { code, .. } => {
                if code == "invalid_op" {
                    400
                } else {
                    409
                }
            }
            RegionError::Crdt(e) => match e {
                CrdtError::KindMismatch { .. } | CrdtError::TooManySiblings { .. } => 409,
                CrdtError::InvalidOp(_) | CrdtError::UnknownKind(_) | CrdtError::Decode(_) => 400,
                CrdtError::ClockTooFarAhead { .. } => 503,
                CrdtError::UnsupportedVersion(_) | CrdtError::InvalidTimestamp(_) => 500,
            },
            RegionError::Store(e) if e.is_client_error() => 400,
            RegionError::Store(_) | RegionError::Protocol(_) | RegionError::Tls(_) => 500,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegionError::NotEnoughNodes { .. }
            | RegionError::Unavailable { .. }
            | RegionError::Rpc { .. }
            | RegionError::ShuttingDown
            | RegionError::Fenced(_) => true,
            RegionError::Store(e) => e.is_retryable(),
            RegionError::Crdt(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// A short error for an RPC failure.
    pub fn rpc(peer: impl ToString, reason: impl ToString) -> RegionError {
        RegionError::Rpc { peer: peer.to_string(), reason: reason.to_string() }
    }
}
