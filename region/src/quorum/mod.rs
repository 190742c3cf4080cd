//! The coordinator's per-request decisions: quorum writes, quorum reads and read repair, as
//! state machines with no I/O.
//!
//! The async shell (the coordinator node) owns the sockets, the clocks and the stores. For each
//! request it builds a round, sends what the round asks for ([`WriteRound::poll_transmit`],
//! [`ReadRound::poll_transmit`]), feeds every answer back (`on_ack`, `on_applied`,
//! `on_response`, `on_failure`), calls `on_timeout(now_ms)` when [`WriteRound::poll_timeout`] /
//! [`ReadRound::poll_timeout`] passes, and answers the client from `poll`. Time is an argument
//! (milliseconds on the shell's monotonic clock for deadlines, wall-clock ms for
//! [`meridian_crdt::Record::read`]); nothing here reads a clock, spawns or blocks, so the same
//! code runs in seeded simulation and in production.
//!
//! The algorithm, its invariants and the tests that prove each are written down in
//! `docs/algorithms/quorum.md`.
//!
//! # Layout
//!
//! - `write.rs`: [`WritePlan`] (who applies an operation: every replica, or one leader replica
//!   whose resulting state the others merge) and [`WriteRound`] (W acknowledgements out of N).
//! - `read.rs`: [`ReadRound`] (R responses out of N, merged by type), [`ReadDecision`] (the
//!   answer and the stale replicas) and [`RepairPlan`] (what read repair sends, blocking at
//!   `QUORUM` and `ALL`).
//! - `mod.rs`: what is shared: [`required_answers`], [`Answer`], the replica bookkeeping and
//!   the `unavailable` error.

mod read;
mod write;

pub use read::{ReadDecision, ReadRound, ReadStatus, RepairPlan};
pub use write::{retry_may_duplicate, WriteAction, WritePlan, WriteRound, WriteStatus, WriteTransmit};

use meridian_config::ConsistencyLevel;
use meridian_crdt::NodeId;

use crate::error::RegionError;

/// How many of `n` replicas must answer at `level`: [`ConsistencyLevel::required`], but never
/// less than 1, so a round over an empty replica set fails instead of succeeding with no
/// answer at all.
pub fn required_answers(level: ConsistencyLevel, n: usize) -> usize {
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    (level.required(n32) as usize).max(1)
}

/// What one answer did to a round. Only [`Answer::Counted`] can move a round towards its
/// decision; everything else is ignored by the decision (the shell may count it in a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Counted towards the decision (the round was still pending).
    Counted,
    /// Recorded after the decision: it cannot change the decision, but it feeds hinted
    /// handoff (writes) or background read repair (reads).
    Late,
    /// The replica had already answered; its first answer stands.
    Duplicate,
    /// The node is not one of the round's replicas.
    UnknownReplica,
    /// An answer the round did not ask for (a follower's acknowledgement before the leader
    /// applied the operation, a leader acknowledgement without the state it applied, a
    /// response whose value kind does not match): not counted.
    Unexpected,
}

/// Where one replica stands in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not answered yet.
    Waiting,
    /// Acknowledged (writes) or responded (reads).
    Answered,
    /// Reported failed by the shell.
    Failed,
}

/// The replicas of a round in preference order, without duplicates, and where each stands.
#[derive(Debug, Clone)]
struct Replicas {
    nodes: Vec<NodeId>,
    slots: Vec<Slot>,
    /// Answers in arrival order.
    answered: Vec<NodeId>,
    /// Failures in arrival order, with the reason the shell gave.
    failures: Vec<(NodeId, String)>,
}

impl Replicas {
    fn new(nodes: Vec<NodeId>) -> Replicas {
        let mut distinct: Vec<NodeId> = Vec::with_capacity(nodes.len());
        for n in nodes {
            if !distinct.contains(&n) {
                distinct.push(n);
            }
        }
        let slots = vec![Slot::Waiting; distinct.len()];
        Replicas { nodes: distinct, slots, answered: Vec::new(), failures: Vec::new() }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn index(&self, node: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| *n == node)
    }

    /// Records an answer or failure if `node` is a replica that has not answered yet;
    /// otherwise says why it is ignored.
    fn check(&self, node: NodeId) -> Result<usize, Answer> {
        let i = self.index(node).ok_or(Answer::UnknownReplica)?;
        if self.slots[i] != Slot::Waiting {
            return Err(Answer::Duplicate);
        }
        Ok(i)
    }

    fn answer(&mut self, i: usize) {
        self.slots[i] = Slot::Answered;
        self.answered.push(self.nodes[i]);
    }

    fn fail(&mut self, i: usize, reason: String) {
        self.slots[i] = Slot::Failed;
        self.failures.push((self.nodes[i], reason));
    }

    fn waiting(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        self.nodes.iter().enumerate().filter(|(i, _)| self.slots[*i] == Slot::Waiting).map(|(i, n)| (i, *n))
    }
}

/// The error of a round that cannot meet its level.
fn unavailable(
    level: ConsistencyLevel,
    required: usize,
    answered: usize,
    asked: usize,
    failures: Vec<(NodeId, String)>,
) -> RegionError {
    RegionError::Unavailable { level, required, answered, asked, failures }
}

/// The reason given for a replica that had not answered when the deadline passed.
const NO_ANSWER: &str = "no answer before the deadline";
