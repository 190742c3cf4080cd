//! Quorum reads and read repair: [`ReadRound`], [`ReadDecision`], [`RepairPlan`].

use std::collections::VecDeque;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{CrdtError, NodeId, ReadValue, Record};

use super::write::WriteRound;
use super::{required_answers, unavailable, Answer, Replicas, Slot, NO_ANSWER};
use crate::error::RegionError;

/// The answer to a read, decided on the first R responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadDecision {
    /// The CRDT merge ([`Record::merge`]) of every record in the decision set; `None` when no
    /// responder had one.
    pub merged: Option<Record>,
    /// What the client sees: `merged.read(now_ms)`, [`ReadValue::Absent`] without a record.
    pub value: ReadValue,
    /// The decision set: the first R replicas that responded, in arrival order.
    pub responders: Vec<NodeId>,
    /// Responders whose state differs from `merged` (encoded bytes compared; `None` while
    /// `merged` is some is stale), in arrival order.
    pub stale: Vec<NodeId>,
    /// Repair before answering: the level is `QUORUM` or `ALL` and some responder is stale.
    /// At `ONE`, repair runs in the background.
    pub repair_blocking: bool,
}

/// Where a read stands. Once it is not [`ReadStatus::Pending`] the decision never changes
/// (only `value` is recomputed for the `now_ms` passed to [`ReadRound::poll`]).
#[derive(Debug)]
pub enum ReadStatus {
    /// Fewer than R responses and no reason to give up yet.
    Pending,
    /// R responses came: the answer.
    Decided(ReadDecision),
    /// R responses can no longer come, or the deadline passed first
    /// ([`RegionError::Unavailable`]); or the responses could not be merged
    /// ([`RegionError::Crdt`] with a kind mismatch: replicas disagree on the keyspace's type,
    /// which only a bug or a corrupted replica produces).
    Failed(RegionError),
}

impl ReadStatus {
    /// True while pending.
    pub fn is_pending(&self) -> bool {
        matches!(self, ReadStatus::Pending)
    }
}

/// What read repair sends: merge `record` at each of `targets` (`Store::merge(keyspace, key,
/// &record, Origin::Repair)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    /// The state every responder should hold: the decision's merge joined with any late
    /// response.
    pub record: Record,
    /// Responders known to hold something else (or nothing).
    pub targets: Vec<NodeId>,
    /// Responders known to hold exactly `record` (or to have been sent it by an earlier plan).
    pub holders: Vec<NodeId>,
}

impl RepairPlan {
    /// The acknowledgement round of a *blocking* repair: a [`WriteRound`] over `replicas` at
    /// `level` whose transmits are the merges at `targets` (origin `Repair`) and in which
    /// `holders` count as acknowledged from the start. It succeeds once `record` is durable
    /// at as many replicas as the read level requires, so a later read at that level sees at
    /// least what this one returned.
    pub fn round(&self, replicas: &[NodeId], level: ConsistencyLevel, deadline_ms: u64) -> WriteRound {
        WriteRound::repair(replicas, level, self, deadline_ms)
    }
}

#[derive(Debug, Clone)]
struct Decided {
    merged: Option<Record>,
    responders: Vec<NodeId>,
    stale: Vec<NodeId>,
    /// `merged` joined with every late response.
    repair_state: Option<Record>,
    /// The encoded state each responder is known to hold (or was sent by a repair plan).
    known: Vec<(NodeId, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Pending,
    Decided(Box<Decided>),
    Unavailable { answered: usize, asked: usize, failures: Vec<(NodeId, String)> },
    Conflict(CrdtError),
}

/// One read at a consistency level: asks replicas, decides on the first R responses (merged
/// by type), names the stale ones, and keeps taking late responses for background repair.
///
/// Invariants (tested in `region/tests/quorum_read.rs`): the decision is made exactly at the
/// R-th response and never changes; the merge is the join of the decision set whatever the
/// arrival order; the read fails exactly when more than N − R replicas failed, or at the
/// deadline with fewer than R responses.
#[derive(Debug, Clone)]
pub struct ReadRound {
    level: ConsistencyLevel,
    required: usize,
    deadline_ms: u64,
    replicas: Replicas,
    asked: Vec<bool>,
    transmits: VecDeque<NodeId>,
    /// Responses that arrived before the decision, in arrival order.
    responses: Vec<(NodeId, Option<Record>)>,
    outcome: Outcome,
}

impl ReadRound {
    /// A read of one key from `replicas` (its N replicas in preference order, duplicates
    /// ignored) that asks all of them and decides on the first R responses; late ones feed
    /// background repair.
    pub fn new(replicas: Vec<NodeId>, level: ConsistencyLevel, deadline_ms: u64) -> ReadRound {
        ReadRound::with_fanout(replicas, level, usize::MAX, deadline_ms)
    }

    /// Like [`ReadRound::new`], but asks only the first `max(fanout, R)` replicas, and one
    /// more (the next in preference order) each time an asked replica fails.
    pub fn with_fanout(replicas: Vec<NodeId>, level: ConsistencyLevel, fanout: usize, deadline_ms: u64) -> ReadRound {
        let replicas = Replicas::new(replicas);
        let n = replicas.len();
        let required = required_answers(level, n);
        let first = fanout.max(required).min(n);
        let mut asked = vec![false; n];
        asked[..first].fill(true);
        let mut round = ReadRound {
            level,
            required,
            deadline_ms,
            transmits: replicas.nodes[..first].iter().copied().collect(),
            replicas,
            asked,
            responses: Vec::new(),
            outcome: Outcome::Pending,
        };
        round.evaluate();
        round
    }

    /// Requires `required` responses instead of the level's count over the replicas given
    /// (never fewer than 1); see [`WriteRound::with_required`].
    pub fn with_required(mut self, required: usize) -> ReadRound {
        if matches!(self.outcome, Outcome::Pending) {
            self.required = required.max(1);
            let missing = self.required.saturating_sub(self.transmits.len() + self.responses.len());
            for _ in 0..missing {
                match (0..self.replicas.len()).find(|&j| !self.asked[j]) {
                    Some(next) => {
                        self.asked[next] = true;
                        self.transmits.push_back(self.replicas.nodes[next]);
                    }
                    None => break,
                }
            }
            self.evaluate();
        }
        self
    }

    /// The next replica to ask, if any.
    pub fn poll_transmit(&mut self) -> Option<NodeId> {
        self.transmits.pop_front()
    }

    /// When to call [`ReadRound::on_timeout`]: the deadline while pending, `None` after.
    pub fn poll_timeout(&self) -> Option<u64> {
        matches!(self.outcome, Outcome::Pending).then_some(self.deadline_ms)
    }

    /// A replica answered with its record of the key (`Store::get`), `None` if it has none.
    pub fn on_response(&mut self, node: NodeId, record: Option<Record>) -> Answer {
        let i = match self.replicas.check(node) {
            Ok(i) => i,
            Err(a) => return a,
        };
        self.replicas.answer(i);
        self.asked[i] = true;
        match &mut self.outcome {
            Outcome::Pending => {
                self.responses.push((node, record));
                self.evaluate();
                Answer::Counted
            }
            Outcome::Decided(d) => {
                let mut repair = d.repair_state.clone();
                if let Some(r) = &record {
                    match &mut repair {
                        None => repair = Some(r.clone()),
                        Some(state) => {
                            if state.merge(r).is_err() {
                                return Answer::Unexpected;
                            }
                        }
                    }
                }
                d.repair_state = repair;
                d.known.push((node, record.as_ref().map(Record::encode)));
                Answer::Late
            }
            Outcome::Unavailable { .. } | Outcome::Conflict(_) => Answer::Late,
        }
    }

    /// A replica failed to answer (error, unreachable, RPC timeout). While pending, the next
    /// replica not asked yet is asked instead.
    pub fn on_failure(&mut self, node: NodeId, reason: impl Into<String>) -> Answer {
        let i = match self.replicas.check(node) {
            Ok(i) => i,
            Err(a) => return a,
        };
        self.replicas.fail(i, reason.into());
        self.asked[i] = true;
        if !matches!(self.outcome, Outcome::Pending) {
            return Answer::Late;
        }
        if let Some(next) = (0..self.replicas.len()).find(|&j| !self.asked[j]) {
            self.asked[next] = true;
            self.transmits.push_back(self.replicas.nodes[next]);
        }
        self.evaluate();
        Answer::Counted
    }

    /// The shell's timer fired at `now_ms`. At or past the deadline a pending read fails;
    /// earlier calls change nothing.
    pub fn on_timeout(&mut self, now_ms: u64) {
        if !matches!(self.outcome, Outcome::Pending) || now_ms < self.deadline_ms {
            return;
        }
        let mut failures = self.replicas.failures.clone();
        failures
            .extend(self.replicas.waiting().filter(|(i, _)| self.asked[*i]).map(|(_, n)| (n, NO_ANSWER.to_owned())));
        self.outcome =
            Outcome::Unavailable { answered: self.replicas.answered.len(), asked: self.asked_count(), failures };
    }

    /// The read's status; the value is read at wall-clock `now_ms` (expiry).
    pub fn poll(&self, now_ms: u64) -> ReadStatus {
        match &self.outcome {
            Outcome::Pending => ReadStatus::Pending,
            Outcome::Decided(d) => ReadStatus::Decided(ReadDecision {
                value: d.merged.as_ref().map_or(ReadValue::Absent, |r| r.read(now_ms)),
                merged: d.merged.clone(),
                responders: d.responders.clone(),
                stale: d.stale.clone(),
                repair_blocking: self.level != ConsistencyLevel::One && !d.stale.is_empty(),
            }),
            Outcome::Unavailable { answered, asked, failures } => {
                ReadStatus::Failed(unavailable(self.level, self.required, *answered, *asked, failures.clone()))
            }
            Outcome::Conflict(e) => ReadStatus::Failed(RegionError::Crdt(e.clone())),
        }
    }

    /// The repair work not handed out yet: after the decision, the responders (late ones
    /// included) whose known state differs from the decision's merge joined with the late
    /// responses. Taking a plan marks its targets as holding its record, so each plan is
    /// handed out once; a late response that adds something makes everyone stale again.
    /// `None` before the decision or when every responder holds the state.
    pub fn take_repairs(&mut self) -> Option<RepairPlan> {
        let Outcome::Decided(d) = &mut self.outcome else { return None };
        let record = d.repair_state.clone()?;
        let enc = record.encode();
        let mut targets = Vec::new();
        let mut holders = Vec::new();
        for (node, known) in &mut d.known {
            if known.as_deref() == Some(enc.as_slice()) {
                holders.push(*node);
            } else {
                targets.push(*node);
                *known = Some(enc.clone());
            }
        }
        (!targets.is_empty()).then_some(RepairPlan { record, targets, holders })
    }

    /// True once decided or failed.
    pub fn is_decided(&self) -> bool {
        !matches!(self.outcome, Outcome::Pending)
    }

    /// The consistency level.
    pub fn level(&self) -> ConsistencyLevel {
        self.level
    }

    /// R: responses needed.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The replicas (N of them), in preference order, without duplicates.
    pub fn replicas(&self) -> &[NodeId] {
        &self.replicas.nodes
    }

    /// Replicas that responded, in arrival order (late ones included).
    pub fn responded(&self) -> &[NodeId] {
        &self.replicas.answered
    }

    /// Replicas that failed, with the reasons, in arrival order.
    pub fn failures(&self) -> &[(NodeId, String)] {
        &self.replicas.failures
    }

    fn asked_count(&self) -> usize {
        self.asked.iter().filter(|a| **a).count()
    }

    fn evaluate(&mut self) {
        if !matches!(self.outcome, Outcome::Pending) {
            return;
        }
        if self.responses.len() >= self.required {
            self.outcome = match decide(&self.responses) {
                Ok(d) => Outcome::Decided(Box::new(d)),
                Err(e) => Outcome::Conflict(e),
            };
            return;
        }
        let could_still_respond = self.replicas.slots.iter().filter(|s| **s == Slot::Waiting).count();
        if self.responses.len() + could_still_respond < self.required {
            self.outcome = Outcome::Unavailable {
                answered: self.responses.len(),
                asked: self.asked_count(),
                failures: self.replicas.failures.clone(),
            };
        }
    }
}

/// Merges the decision set and compares every responder with the result.
fn decide(responses: &[(NodeId, Option<Record>)]) -> Result<Decided, CrdtError> {
    let mut merged: Option<Record> = None;
    for record in responses.iter().filter_map(|(_, r)| r.as_ref()) {
        match &mut merged {
            None => merged = Some(record.clone()),
            Some(m) => {
                m.merge(record)?;
            }
        }
    }
    let enc = merged.as_ref().map(Record::encode);
    let known: Vec<(NodeId, Option<Vec<u8>>)> =
        responses.iter().map(|(n, r)| (*n, r.as_ref().map(Record::encode))).collect();
    let stale = known.iter().filter(|(_, k)| *k != enc).map(|(n, _)| *n).collect();
    Ok(Decided {
        responders: responses.iter().map(|(n, _)| *n).collect(),
        stale,
        repair_state: merged.clone(),
        merged,
        known,
    })
}
