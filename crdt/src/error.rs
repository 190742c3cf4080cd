//! The crate's one error type.

use crate::record::ValueKind;

/// Everything that can go wrong inside `meridian-crdt`.
///
/// Every variant has a stable snake_case [`code`](CrdtError::code) that the API layer can put
/// in its error body; the `Display` text is for humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdtError {
    /// The key holds (or the keyspace declares) one kind of value and the operation or state
    /// is of another.
    #[error("value kind mismatch: expected {expected}, found {found}")]
    KindMismatch {
        /// The kind the caller asked for (the keyspace's kind).
        expected: ValueKind,
        /// The kind that was actually there.
        found: ValueKind,
    },
    /// A client write to a multi-value register would leave more siblings than allowed.
    /// Resolve by writing with the context returned by a read.
    #[error("multi-value register would hold {count} siblings, more than the limit of {max}; write with the read context to resolve")]
    TooManySiblings {
        /// Siblings the write would have left.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// A remote timestamp is further ahead of local physical time than the clock allows.
    #[error("remote clock is {remote_ms} ms, more than {max_offset_ms} ms ahead of local {now_ms} ms")]
    ClockTooFarAhead {
        /// Physical part of the remote timestamp, ms since the UNIX epoch.
        remote_ms: u64,
        /// Local physical time, ms since the UNIX epoch.
        now_ms: u64,
        /// The configured maximum offset.
        max_offset_ms: u64,
    },
    /// Bytes that are not a valid encoding.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// An encoding whose version byte this build does not know.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    /// An operation that is malformed whatever the state (e.g. `ttl_ms = 0`, an element both
    /// added and removed, a counter overflow).
    #[error("invalid operation: {0}")]
    InvalidOp(String),
    /// A timestamp that cannot be represented (e.g. a uhlc ID wider than 64 bits).
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// A value-kind name that is not one of `lww`, `mvr`, `counter`, `set`.
    #[error("unknown value kind {0:?} (expected lww, mvr, counter or set)")]
    UnknownKind(String),
}

impl CrdtError {
    /// A stable, machine-readable code for this error (never changes between releases).
    pub fn code(&self) -> &'static str {
        match self {
            CrdtError::KindMismatch { .. } => "kind_mismatch",
            CrdtError::TooManySiblings { .. } => "too_many_siblings",
            CrdtError::ClockTooFarAhead { .. } => "clock_too_far_ahead",
            CrdtError::Decode(_) => "decode_error",
            CrdtError::UnsupportedVersion(_) => "unsupported_version",
            CrdtError::InvalidOp(_) => "invalid_op",
            CrdtError::InvalidTimestamp(_) => "invalid_timestamp",
            CrdtError::UnknownKind(_) => "unknown_kind",
        }
    }

    /// True when the same request may succeed later without being changed: only a clock
    /// rejection (the local clock catches up, or the skewed peer is fixed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CrdtError::ClockTooFarAhead { .. })
    }

    /// True when the error is the caller's fault (bad input); maps to a 4xx at the API.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            CrdtError::KindMismatch { .. }
                | CrdtError::TooManySiblings { .. }
                | CrdtError::InvalidOp(_)
                | CrdtError::UnknownKind(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        let all = [
            CrdtError::KindMismatch { expected: ValueKind::Lww, found: ValueKind::Set },
            CrdtError::TooManySiblings { count: 65, max: 64 },
            CrdtError::ClockTooFarAhead { remote_ms: 2, now_ms: 1, max_offset_ms: 0 },
            CrdtError::Decode("x".into()),
            CrdtError::UnsupportedVersion(9),
            CrdtError::InvalidOp("x".into()),
            CrdtError::InvalidTimestamp("x".into()),
            CrdtError::UnknownKind("x".into()),
        ];
        let codes: Vec<&str> = all.iter().map(CrdtError::code).collect();
        assert_eq!(
            codes,
            [
                "kind_mismatch",
                "too_many_siblings",
                "clock_too_far_ahead",
                "decode_error",
                "unsupported_version",
                "invalid_op",
                "invalid_timestamp",
                "unknown_kind"
            ]
        );
        assert!(all[2].is_retryable());
        assert!(!all[0].is_retryable());
        assert!(all[1].is_client_error());
        assert!(!all[3].is_client_error());
    }
}
