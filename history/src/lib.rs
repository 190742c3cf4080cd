//! Operation histories and the checker of the contracts of `design.md` §5.
//!
//! A workload (a simulation, a chaos run, a failover drill) records every operation it attempts
//! in a [`History`]: an `invoke` event before the request is sent and one completion after it,
//! `ok` (acknowledged), `fail` (known not applied) or `info` (indeterminate: it may or may not
//! have been applied). Once the test has healed the cluster and writes have stopped, it reads
//! the value of every key it touched in every region (and through every node) into a
//! [`FinalState`], and [`check`] compares the two: convergence (contracts 2 and 3), no lost
//! CRDT updates (4), LWW order (5), MVR siblings (6) and no resurrection (7). The rules and
//! their reasoning are in `docs/history-checker.md`.
//!
//! # Layout
//!
//! - the history: [`Op`], [`OpResult`], [`Event`], [`History`] (thread-safe recorder, JSONL);
//! - talking to nodes: [`classify`] (an HTTP answer → ok / fail / info), [`execute_http`]
//!   (perform and record one op), [`parse_read`] and [`collect_final`] (the final state);
//! - the checker: [`check`] → [`Report`] of [`Violation`]s and [`Stats`].
//!
//! Values and set members are strings; they travel as their UTF-8 bytes. A stored value that
//! is not UTF-8 is read back as `base64:<standard base64>`, which no history can have written,
//! so it shows up as a value that was never written.
//!
//! The checker orders events by the order of the history (`t` is for people and for merging
//! histories: events are stably sorted by `t` first, which leaves a recorded history as it is).
//!
//! The integration tests, `meridian drill` and chaos runs share this crate.

mod check;
mod format;
mod http;

pub use check::{check, OpStats, Report, Stats, Violation};
pub use format::{
    Completion, Event, EventKind, FinalState, History, HistoryError, Key, Kind, Observed, Op, OpResult, ReadFailure,
};
pub use http::{classify, collect_final, collect_final_with, encode_segment, execute_http, parse_read, Transport};
