//! Which failed attempts may be retried, and where: the decision table of `docs/client.md`,
//! as a pure function of the failure and of whether the operation may be applied twice.
//!
//! A failure is either **before effect** (the request was refused before any replica applied
//! it: no connection, `503 region_fenced`, `503 not_enough_nodes`, `503 unavailable` with
//! `"asked": 0`) or **outcome unknown** (a timeout or a lost connection after the request was
//! sent, any other `503`, a `5xx`). Every operation may be sent again after a failure before
//! effect. After an unknown outcome only [`Safety::Idempotent`] operations are (their second
//! application converges to the state of one); a [`Safety::Increment`] then ends in
//! [`Error::Indeterminate`].

use crate::error::TransportKind;
use crate::Error;

/// Whether applying an operation twice is the same as applying it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Reads, LWW puts and deletes, set adds and removes, MVR writes: a second application
    /// converges to the same value (see `docs/client.md`, per operation).
    Idempotent,
    /// A counter increment: a second application adds the delta twice.
    Increment,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The node failed (refused the connection, or lost it): avoid it and try another node of
    /// the same region.
    NextNode,
    /// The region failed: mark it down and try the next-nearest region.
    NextRegion,
    /// Stop with this error (it would fail again: a 4xx, or a 5xx the client cannot cure).
    Fail,
    /// Stop: the increment may have been applied ([`Error::Indeterminate`]).
    Indeterminate,
}

/// Whether the server refused the request before any replica applied it: `region_fenced` and
/// `not_enough_nodes` are checked before a write starts, and `unavailable` with `"asked": 0`
/// sent it to no replica.
pub fn refused_before_effect(code: &str, asked: Option<u64>) -> bool {
    match code {
        "region_fenced" | "not_enough_nodes" => true,
        "unavailable" => asked == Some(0),
        _ => false,
    }
}

/// The verdict for a failed attempt: `err` is the attempt's error and `asked` the `asked`
/// field of a `503 unavailable` body.
pub fn classify(err: &Error, asked: Option<u64>, safety: Safety) -> Verdict {
    let unknown = match safety {
        Safety::Idempotent => Verdict::NextRegion,
        Safety::Increment => Verdict::Indeterminate,
    };
    let final_or_unknown = match safety {
        Safety::Idempotent => Verdict::Fail,
        Safety::Increment => Verdict::Indeterminate,
    };
    match err {
        Error::Transport { kind: TransportKind::Connect, .. } => Verdict::NextNode,
        // A connection that broke is one node's failure (a crash, a proxy whose backend died);
        // a timeout is the region's (a partition, an overload).
        Error::Transport { kind: TransportKind::Connection, .. } => match safety {
            Safety::Idempotent => Verdict::NextNode,
            Safety::Increment => Verdict::Indeterminate,
        },
        Error::Transport { .. } => unknown,
        // Every 503 (unavailable, rpc_failed, shutting_down, clock_too_far_ahead, ...) says "not
        // now, not here": another region may serve.
        Error::Api { status: 503, code, .. } if refused_before_effect(code, asked) => Verdict::NextRegion,
        Error::Api { status: 503, .. } => unknown,
        // Other 5xx and answers that do not parse: retrying would not help, but an increment
        // may have been applied (a 2xx that did not parse certainly was).
        Error::Api { status, .. } if *status >= 500 => final_or_unknown,
        Error::BadAnswer { .. } => final_or_unknown,
        _ => Verdict::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api { status, code: code.into(), message: String::new(), url: "u".into() }
    }

    fn transport(kind: TransportKind) -> Error {
        Error::Transport { kind, url: "u".into(), message: String::new() }
    }

    #[test]
    fn refused_connections_move_to_another_node_for_every_operation() {
        for safety in [Safety::Idempotent, Safety::Increment] {
            assert_eq!(classify(&transport(TransportKind::Connect), None, safety), Verdict::NextNode);
        }
    }

    #[test]
    fn unknown_outcomes_fail_over_idempotent_operations_and_stop_increments() {
        assert_eq!(classify(&transport(TransportKind::Connection), None, Safety::Idempotent), Verdict::NextNode);
        assert_eq!(classify(&transport(TransportKind::Connection), None, Safety::Increment), Verdict::Indeterminate);
        for err in [
            transport(TransportKind::Timeout),
            api(503, "unavailable"),
            api(503, "rpc_failed"),
            api(503, "shutting_down"),
            api(503, "clock_too_far_ahead"),
            api(503, "http_503"),
        ] {
            assert_eq!(classify(&err, Some(2), Safety::Idempotent), Verdict::NextRegion, "{err}");
            assert_eq!(classify(&err, Some(2), Safety::Increment), Verdict::Indeterminate, "{err}");
        }
    }

    #[test]
    fn refusals_before_effect_fail_over_every_operation() {
        for (code, asked) in [("region_fenced", None), ("not_enough_nodes", None), ("unavailable", Some(0))] {
            for safety in [Safety::Idempotent, Safety::Increment] {
                assert_eq!(classify(&api(503, code), asked, safety), Verdict::NextRegion, "{code} {safety:?}");
            }
        }
        // An unavailable answer without the field is not known to be before effect.
        assert_eq!(classify(&api(503, "unavailable"), None, Safety::Increment), Verdict::Indeterminate);
    }

    #[test]
    fn client_errors_are_final_and_server_errors_unknown_for_increments() {
        for code in ["invalid_request", "wrong_type", "not_found", "conflict"] {
            assert_eq!(classify(&api(409, code), None, Safety::Increment), Verdict::Fail);
            assert_eq!(classify(&api(400, code), None, Safety::Idempotent), Verdict::Fail);
        }
        assert_eq!(classify(&api(500, "internal"), None, Safety::Idempotent), Verdict::Fail);
        assert_eq!(classify(&api(500, "storage_engine"), None, Safety::Increment), Verdict::Indeterminate);
        let bad = Error::BadAnswer { url: "u".into(), reason: "r".into() };
        assert_eq!(classify(&bad, None, Safety::Idempotent), Verdict::Fail);
        assert_eq!(classify(&bad, None, Safety::Increment), Verdict::Indeterminate);
    }
}
