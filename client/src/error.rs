//! [`Error`]: every way an operation of the client can fail, each with a stable
//! [`code`](Error::code).
//!
//! Errors the server sent keep the server's code (`not_found`, `wrong_type`, `unavailable`,
//! `region_fenced`, ...; see `docs/api.md`); the client adds its own for what happens on its
//! side (`connect_failed`, `timeout`, `connection_lost`, `indeterminate`,
//! `session_not_satisfied`, `bad_answer`, `config`, `invalid_argument`).

use std::time::Duration;

use crate::Version;

/// What went wrong at the transport level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be opened (refused, unreachable, connect timeout): the request was
    /// never sent.
    Connect,
    /// The request timed out after the connection was open: it may have been applied.
    Timeout,
    /// The connection failed after it was open (reset, closed mid-answer): the request may
    /// have been applied.
    Connection,
}

impl TransportKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            TransportKind::Connect => "connect_failed",
            TransportKind::Timeout => "timeout",
            TransportKind::Connection => "connection_lost",
        }
    }
}

/// Why an operation of the [`Client`](crate::Client) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's configuration or endpoints are unusable.
    #[error("{0}")]
    Config(String),
    /// An argument the server would refuse anyway (an empty key, an empty member list), caught
    /// before anything is sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A request failed at the transport level.
    #[error("{url}: {} ({message})", kind.code())]
    Transport {
        /// What happened.
        kind: TransportKind,
        /// The URL asked.
        url: String,
        /// The transport's description.
        message: String,
    },
    /// The server answered with an error.
    #[error("{url} answered {status} [{code}]: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's stable `error` code (`http_<status>` if the body had none).
        code: String,
        /// The server's `message`.
        message: String,
        /// The URL asked.
        url: String,
    },
    /// A 2xx answer the client does not understand.
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Every attempt failed with a retryable error; `last` is the last one.
    #[error("{attempts} attempts failed (regions tried: {}); last: {last}", regions.join(", "))]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The regions the attempts went to, in order, without repeats.
        regions: Vec<String>,
        /// The last attempt's error.
        last: Box<Error>,
    },
    /// A counter increment may or may not have been applied (a timeout, a connection lost
    /// after the request was sent, a 503 after replicas were asked). It was not retried: doing
    /// so could apply it twice. The caller decides (count it as "maybe", read the counter, ...).
    #[error("the increment may or may not have been applied in region {region}: {cause}")]
    Indeterminate {
        /// The region the increment was sent to.
        region: String,
        /// What happened.
        cause: Box<Error>,
    },
    /// A read did not show this session's own last write of the key within the wait
    /// (`ClientConfig::session_wait`): the region serving it has not received that write yet
    /// (typically just after a failover, while replication from the old region lags or is cut).
    #[error(
        "region {region} has not seen this session's write {required} of the key after {waited:?} (it shows {})",
        seen.map_or_else(|| "no value".to_owned(), |v| v.to_string())
    )]
    SessionNotSatisfied {
        /// How long the client retried.
        waited: Duration,
        /// The version the session wrote.
        required: Version,
        /// The version the region returned (`None`: the key is absent there).
        seen: Option<Version>,
        /// The region that answered last.
        region: String,
    },
}

impl Error {
    /// The stable code: the server's for [`Error::Api`], the last attempt's for
    /// [`Error::Exhausted`], else the client's own.
    pub fn code(&self) -> &str {
        match self {
            Error::Config(_) => "config",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Transport { kind, .. } => kind.code(),
            Error::Api { code, .. } => code,
            Error::BadAnswer { .. } => "bad_answer",
            Error::Exhausted { last, .. } => last.code(),
            Error::Indeterminate { .. } => "indeterminate",
            Error::SessionNotSatisfied { .. } => "session_not_satisfied",
        }
    }

    /// The HTTP status, if the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether the same operation may succeed if the caller tries again later (the client has
    /// already retried what it could): transport failures, `503`s and unsatisfied sessions.
    /// An [`Error::Indeterminate`] increment is not: trying again may apply it twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::SessionNotSatisfied { .. } => true,
            Error::Api { status, .. } => *status == 503,
            Error::Exhausted { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// The error at the bottom of [`Error::Exhausted`] and [`Error::Indeterminate`].
    pub fn root(&self) -> &Error {
        match self {
            Error::Exhausted { last, .. } => last.root(),
            Error::Indeterminate { cause, .. } => cause.root(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api { status, code: code.into(), message: "m".into(), url: "http://h:1/x".into() }
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(api(409, "wrong_type").code(), "wrong_type");
        let t = Error::Transport { kind: TransportKind::Timeout, url: "u".into(), message: "m".into() };
        assert_eq!(t.code(), "timeout");
        let e = Error::Exhausted { attempts: 3, regions: vec!["a".into(), "b".into()], last: Box::new(t.clone()) };
        assert_eq!(e.code(), "timeout");
        assert!(e.to_string().starts_with("3 attempts failed (regions tried: a, b); last: u: timeout"), "{e}");
        let i = Error::Indeterminate { region: "a".into(), cause: Box::new(t) };
        assert_eq!(i.code(), "indeterminate");
        assert_eq!(i.root().code(), "timeout");
        let s = Error::SessionNotSatisfied {
            waited: Duration::from_secs(2),
            required: Version::new(5, 1),
            seen: None,
            region: "b".into(),
        };
        assert_eq!(s.code(), "session_not_satisfied");
        assert!(s.to_string().contains("shows no value"), "{s}");
    }

    #[test]
    fn only_what_may_succeed_later_is_retryable() {
        assert!(api(503, "unavailable").is_retryable());
        assert!(!api(400, "invalid_request").is_retryable());
        assert!(!api(500, "internal").is_retryable());
        let t = Error::Transport { kind: TransportKind::Connect, url: "u".into(), message: "m".into() };
        assert!(t.is_retryable());
        assert!(!Error::Indeterminate { region: "a".into(), cause: Box::new(t) }.is_retryable());
        assert_eq!(api(503, "x").status(), Some(503));
    }
}
