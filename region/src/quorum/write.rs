//! Quorum writes: who applies an operation ([`WritePlan`]) and when a write is acknowledged
//! ([`WriteRound`]).

use std::collections::VecDeque;
use std::sync::Arc;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{CrdtError, NodeId, Op, Record, ValueKind};
use meridian_local::Origin;

use super::read::RepairPlan;
use super::{required_answers, unavailable, Answer, Replicas, Slot, NO_ANSWER};
use crate::error::RegionError;

/// Who applies a client operation. Chosen per operation and value kind by
/// [`WritePlan::for_op`]; `docs/algorithms/quorum.md` ("Write plans") gives the reasoning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WritePlan {
    /// Every replica applies the operation with the *same* [`meridian_crdt::OpContext`], built
    /// once by the coordinator (its HLC timestamp and physical time). Used for `lww` writes,
    /// deletes and resets: such an operation is equivalent to merging one state that depends
    /// only on the operation and its timestamp, so applying it at each replica, in any order
    /// and any number of times, gives the same result as applying it once and replicating.
    ApplyAtEach,
    /// The first replica (the *leader*) applies the operation with its own node id as the
    /// actor and its own HLC; the others then merge the state the leader returned (and, if
    /// `follower_op` is set, apply that operation after the merge, with the merged state's
    /// [`meridian_crdt::Record::follower_context`], so their result depends on no clock).
    ///
    /// Used for everything whose effect depends on the applying replica: counter increments
    /// (applied at each replica they would be counted once per replica), multi-value register
    /// and set writes (a new dot must be issued by one actor from a state that covers that
    /// actor's earlier dots), context-less set removes and resets (they remove what the
    /// applying replica observed).
    ApplyAtLeaderThenReplicate {
        /// The remove part of a set update that carries the client's causal context: each
        /// follower applies it too, so the remove takes effect at every replica that holds an
        /// observed element, not only when the leader does (see `quorum.md`).
        follower_op: Option<Op>,
    },
}

impl WritePlan {
    /// The plan for `op` on a keyspace of `kind`. Errors with
    /// [`CrdtError::KindMismatch`] if the op does not fit the kind.
    pub fn for_op(kind: ValueKind, op: &Op) -> Result<WritePlan, RegionError> {
        if let Some(found) = op.kind() {
            if found != kind {
                return Err(CrdtError::KindMismatch { expected: kind, found }.into());
            }
        }
        Ok(match (kind, op) {
            (ValueKind::Lww, _) => WritePlan::ApplyAtEach,
            (ValueKind::Set, Op::SetUpdate { remove, context: Some(context), .. }) if !remove.is_empty() => {
                WritePlan::ApplyAtLeaderThenReplicate {
                    follower_op: Some(Op::SetUpdate {
                        add: Vec::new(),
                        remove: remove.clone(),
                        context: Some(context.clone()),
                        // The leader's state carries the op's expiry; followers must not set
                        // their own.
                        ttl_ms: None,
                    }),
                }
            }
            (ValueKind::Mvr | ValueKind::Counter | ValueKind::Set, _) => {
                WritePlan::ApplyAtLeaderThenReplicate { follower_op: None }
            }
        })
    }

    /// Whether one replica applies the operation first.
    pub fn has_leader(&self) -> bool {
        matches!(self, WritePlan::ApplyAtLeaderThenReplicate { .. })
    }
}

/// Whether sending `op` again after an indeterminate failure (a timeout, an unavailable
/// error) could apply it twice with a visible effect. True only for a nonzero counter
/// increment: every retry is a new increment. The coordinator never retries on its own;
/// retrying is the caller's decision (contract 4 counts such deltas as indeterminate).
///
/// Every other operation converges to the same visible value when retried: an `lww` write or
/// delete (the later attempt wins with the same value), a set add (the element is present
/// either way), a remove, a reset, a multi-value register write (a retry can leave one more
/// sibling with the *same* bytes, which reads show once and the next write with the read
/// context supersedes).
pub fn retry_may_duplicate(op: &Op) -> bool {
    matches!(op, Op::CounterAdd { delta, .. } if *delta != 0)
}

/// What the shell must do at one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAction {
    /// `Store::apply` the client's op with the coordinator's `OpContext`, the same for every
    /// replica ([`WritePlan::ApplyAtEach`]). Answer with [`WriteRound::on_applied`] (or
    /// [`WriteRound::on_ack`]) once it is durable, [`WriteRound::on_failure`] otherwise.
    Apply,
    /// `Store::apply` the client's op as the leader: the replica's own node id as the actor,
    /// its own HLC tick and physical time. Answer with [`WriteRound::on_applied`] and the
    /// record the replica returned: the others merge it.
    ApplyAsLeader,
    /// `Store::merge(keyspace, key, &record, origin)`; then, if `then_apply` is set,
    /// `Store::apply` it with `record.follower_context()`. Answer with
    /// [`WriteRound::on_ack`] once both are durable.
    Merge {
        /// The state to merge (shared by every follower's transmit).
        record: Arc<Record>,
        /// The change's origin in the replica's change log: `Local` for a client write,
        /// `Repair` for read repair.
        origin: Origin,
        /// An operation to apply after the merge (the remove part of a set update).
        then_apply: Option<Op>,
    },
}

/// One message the shell must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTransmit {
    /// The replica.
    pub to: NodeId,
    /// What it must do.
    pub action: WriteAction,
}

/// Where a write stands. Once it is not [`WriteStatus::Pending`] it never changes.
#[derive(Debug)]
pub enum WriteStatus {
    /// Neither W acknowledgements nor a reason to give up yet.
    Pending,
    /// W replicas acknowledged: answer the client. The shell keeps delivering to the others
    /// and hints those that fail ([`WriteRound::hint_targets`]).
    Succeeded {
        /// The replicas that had acknowledged when the write succeeded, in arrival order.
        acked: Vec<NodeId>,
    },
    /// W acknowledgements can no longer come, or the deadline passed first:
    /// [`RegionError::Unavailable`] with the counts and who failed. Some replicas may have
    /// applied the write anyway (it is indeterminate, not undone).
    Failed(RegionError),
}

impl WriteStatus {
    /// True while pending.
    pub fn is_pending(&self) -> bool {
        matches!(self, WriteStatus::Pending)
    }

    /// True once succeeded.
    pub fn is_succeeded(&self) -> bool {
        matches!(self, WriteStatus::Succeeded { .. })
    }

    /// True once failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, WriteStatus::Failed(_))
    }
}

#[derive(Debug, Clone)]
enum Mode {
    Each,
    Leader {
        follower_op: Option<Op>,
        /// The leader reported the state it applied.
        applied: bool,
    },
    /// Read repair: only `targets` are sent the record; the others that hold it count as
    /// acknowledged from the start.
    Repair {
        targets: Vec<bool>,
    },
}

#[derive(Debug, Clone)]
enum Decision {
    Succeeded { acked: Vec<NodeId> },
    Failed { answered: usize, failures: Vec<(NodeId, String)> },
}

/// One write at a consistency level: sends the operation to all N replicas and succeeds as
/// soon as W of them acknowledged it durably, or fails as soon as W acknowledgements can no
/// longer come (more than N − W failures, or the leader failed before applying) or at the
/// deadline.
///
/// Invariants (tested in `region/tests/quorum_write.rs`): the status changes at most once;
/// it is `Succeeded` exactly from the answer that brings the acknowledgements to W; an answer
/// from a node that is not a replica, a second answer from a replica and a follower's
/// acknowledgement before the leader applied are ignored.
#[derive(Debug, Clone)]
pub struct WriteRound {
    level: ConsistencyLevel,
    required: usize,
    deadline_ms: u64,
    replicas: Replicas,
    mode: Mode,
    /// The state to hint: the leader's applied state, the first state an `Apply` returned, or
    /// the repair record.
    state: Option<Record>,
    transmits: VecDeque<WriteTransmit>,
    decision: Option<Decision>,
}

impl WriteRound {
    /// A write of one operation to `replicas` (the key's N replicas in preference order,
    /// duplicates ignored; with a leader plan the first is the leader, so put a live one,
    /// ideally the coordinator itself, first). `deadline_ms` is on the shell's monotonic
    /// clock.
    pub fn new(replicas: Vec<NodeId>, level: ConsistencyLevel, plan: WritePlan, deadline_ms: u64) -> WriteRound {
        let replicas = Replicas::new(replicas);
        let mut transmits = VecDeque::new();
        let mode = match plan {
            WritePlan::ApplyAtEach => {
                transmits.extend(replicas.nodes.iter().map(|&to| WriteTransmit { to, action: WriteAction::Apply }));
                Mode::Each
            }
            WritePlan::ApplyAtLeaderThenReplicate { follower_op } => {
                if let Some(&to) = replicas.nodes.first() {
                    transmits.push_back(WriteTransmit { to, action: WriteAction::ApplyAsLeader });
                }
                Mode::Leader { follower_op, applied: false }
            }
        };
        let mut round = WriteRound {
            level,
            required: required_answers(level, replicas.len()),
            deadline_ms,
            replicas,
            mode,
            state: None,
            transmits,
            decision: None,
        };
        round.evaluate();
        round
    }

    /// The acknowledgement round of a blocking read repair: `plan.record` is merged at
    /// `plan.targets`; `plan.holders` already hold it and count as acknowledged.
    pub(crate) fn repair(
        replicas: &[NodeId],
        level: ConsistencyLevel,
        plan: &RepairPlan,
        deadline_ms: u64,
    ) -> WriteRound {
        Self::merge_round(replicas, level, plan, Origin::Repair, deadline_ms)
    }

    /// A write of a *state* (not an operation): `record` is merged at every one of `replicas`
    /// with `origin`, and the round succeeds at `level`'s count of acknowledgements. Used to
    /// apply a change from another region (origin `Remote`) at local QUORUM. Merging is a
    /// join, so replicas in any state end up including `record`.
    pub fn merge_state(
        replicas: Vec<NodeId>,
        level: ConsistencyLevel,
        record: Record,
        origin: Origin,
        deadline_ms: u64,
    ) -> WriteRound {
        let plan = RepairPlan { record, targets: replicas.clone(), holders: Vec::new() };
        Self::merge_round(&replicas, level, &plan, origin, deadline_ms)
    }

    fn merge_round(
        replicas: &[NodeId],
        level: ConsistencyLevel,
        plan: &RepairPlan,
        origin: Origin,
        deadline_ms: u64,
    ) -> WriteRound {
        let mut replicas = Replicas::new(replicas.to_vec());
        let mut targets = vec![false; replicas.len()];
        let mut transmits = VecDeque::new();
        let shared = Arc::new(plan.record.clone());
        for &node in &plan.holders {
            if let Ok(i) = replicas.check(node) {
                replicas.answer(i);
            }
        }
        for &node in &plan.targets {
            if let Ok(i) = replicas.check(node) {
                if !targets[i] {
                    targets[i] = true;
                    transmits.push_back(WriteTransmit {
                        to: node,
                        action: WriteAction::Merge {
                            record: Arc::clone(&shared),
                            origin: origin.clone(),
                            then_apply: None,
                        },
                    });
                }
            }
        }
        let mut round = WriteRound {
            level,
            required: required_answers(level, replicas.len()),
            deadline_ms,
            replicas,
            mode: Mode::Repair { targets },
            state: Some(plan.record.clone()),
            transmits,
            decision: None,
        };
        round.evaluate();
        round
    }

    /// Requires `required` acknowledgements instead of the level's count over the replicas
    /// given (never fewer than 1). The coordinator passes the level's count over the
    /// *configured* replication factor, so a region with fewer nodes than N cannot acknowledge
    /// a `QUORUM` write with fewer replicas than a quorum of N.
    pub fn with_required(mut self, required: usize) -> WriteRound {
        if self.decision.is_none() {
            self.required = required.max(1);
            self.evaluate();
        }
        self
    }

    /// The next message to send, if any. Drain it after building the round and after every
    /// `on_applied` (the leader's state makes the followers' merges).
    pub fn poll_transmit(&mut self) -> Option<WriteTransmit> {
        self.transmits.pop_front()
    }

    /// When to call [`WriteRound::on_timeout`]: the deadline while pending, `None` after.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.decision.is_none().then_some(self.deadline_ms)
    }

    /// A replica acknowledged durably (an `Apply` without its state, or a `Merge`).
    pub fn on_ack(&mut self, node: NodeId) -> Answer {
        let i = match self.replicas.check(node) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let allowed = match &self.mode {
            Mode::Each => true,
            // The leader must report the state it applied (`on_applied`): the followers merge it.
            Mode::Leader { applied, .. } => *applied && i != 0,
            Mode::Repair { targets } => targets[i],
        };
        if !allowed {
            return Answer::Unexpected;
        }
        self.record_answer(i)
    }

    /// A replica applied the operation durably and returned the resulting record
    /// (`ApplyOutcome::record`). From the leader this queues the merges at the followers.
    pub fn on_applied(&mut self, node: NodeId, record: Record) -> Answer {
        let i = match self.replicas.check(node) {
            Ok(i) => i,
            Err(a) => return a,
        };
        match &mut self.mode {
            Mode::Each => {
                if self.state.is_none() {
                    self.state = Some(record);
                }
            }
            Mode::Leader { follower_op, applied } => {
                if i != 0 {
                    // A follower's acknowledgement of its merge; the record adds nothing.
                    if !*applied {
                        return Answer::Unexpected;
                    }
                } else {
                    *applied = true;
                    let shared = Arc::new(record.clone());
                    for (_, to) in self.replicas.waiting().filter(|(j, _)| *j != 0) {
                        self.transmits.push_back(WriteTransmit {
                            to,
                            action: WriteAction::Merge {
                                record: Arc::clone(&shared),
                                origin: Origin::Local,
                                then_apply: follower_op.clone(),
                            },
                        });
                    }
                    self.state = Some(record);
                }
            }
            Mode::Repair { targets } => {
                if !targets[i] {
                    return Answer::Unexpected;
                }
            }
        }
        self.record_answer(i)
    }

    /// A replica failed (refused, errored, unreachable, its RPC timed out). `reason` goes
    /// into the error the client sees.
    pub fn on_failure(&mut self, node: NodeId, reason: impl Into<String>) -> Answer {
        let i = match self.replicas.check(node) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let reason = reason.into();
        let reason = match self.mode {
            Mode::Leader { applied: false, .. } if i == 0 => format!("leader, before applying: {reason}"),
            _ => reason,
        };
        let late = self.decision.is_some();
        self.replicas.fail(i, reason);
        if late {
            return Answer::Late;
        }
        self.evaluate();
        Answer::Counted
    }

    /// The shell's timer fired at `now_ms`. At or past the deadline a pending write fails;
    /// earlier calls change nothing.
    pub fn on_timeout(&mut self, now_ms: u64) {
        if self.decision.is_some() || now_ms < self.deadline_ms {
            return;
        }
        let mut failures = self.replicas.failures.clone();
        for (i, node) in self.replicas.waiting() {
            let reason = match &self.mode {
                Mode::Leader { applied: false, .. } if i == 0 => {
                    format!("leader, {NO_ANSWER}: the operation may have been applied")
                }
                Mode::Leader { applied: false, .. } => "not sent: the leader had not applied the operation".to_owned(),
                Mode::Repair { targets } if !targets[i] => continue,
                _ => NO_ANSWER.to_owned(),
            };
            failures.push((node, reason));
        }
        self.decision = Some(Decision::Failed { answered: self.replicas.answered.len(), failures });
    }

    /// The write's status; see [`WriteStatus`].
    pub fn poll(&self) -> WriteStatus {
        match &self.decision {
            None => WriteStatus::Pending,
            Some(Decision::Succeeded { acked }) => WriteStatus::Succeeded { acked: acked.clone() },
            Some(Decision::Failed { answered, failures }) => WriteStatus::Failed(unavailable(
                self.level,
                self.required,
                *answered,
                self.replicas.len(),
                failures.clone(),
            )),
        }
    }

    /// True once succeeded or failed.
    pub fn is_decided(&self) -> bool {
        self.decision.is_some()
    }

    /// The consistency level.
    pub fn level(&self) -> ConsistencyLevel {
        self.level
    }

    /// W: acknowledgements needed.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The replicas (N of them), in preference order, without duplicates.
    pub fn replicas(&self) -> &[NodeId] {
        &self.replicas.nodes
    }

    /// The leader, with a leader plan.
    pub fn leader(&self) -> Option<NodeId> {
        match self.mode {
            Mode::Leader { .. } => self.replicas.nodes.first().copied(),
            Mode::Each | Mode::Repair { .. } => None,
        }
    }

    /// Replicas that acknowledged, in arrival order (late ones included).
    pub fn acked(&self) -> &[NodeId] {
        &self.replicas.answered
    }

    /// Replicas that failed, with the reasons, in arrival order (late ones included).
    pub fn failures(&self) -> &[(NodeId, String)] {
        &self.replicas.failures
    }

    /// Replicas that have neither acknowledged nor failed.
    pub fn unanswered(&self) -> Vec<NodeId> {
        self.replicas.waiting().map(|(_, n)| n).collect()
    }

    /// The replicas that should get a hint ([`WriteRound::hint_record`]) once the shell
    /// stops waiting: every replica that was to receive the write and has not acknowledged
    /// it. Empty while nothing was applied anywhere (no state to hint).
    pub fn hint_targets(&self) -> Vec<NodeId> {
        if self.state.is_none() {
            return Vec::new();
        }
        self.replicas
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.replicas.slots[*i] != Slot::Answered)
            .filter(|(i, _)| match &self.mode {
                Mode::Repair { targets } => targets[*i],
                Mode::Each | Mode::Leader { .. } => true,
            })
            .map(|(_, n)| *n)
            .collect()
    }

    /// The state to hint: the leader's applied state, the first state a replica returned
    /// from `Apply`, or the repair record. Merging it gives the hinted replica the write
    /// (for a set update with a context, not its remove part: that takes effect where it was
    /// applied and spreads by merge).
    pub fn hint_record(&self) -> Option<&Record> {
        self.state.as_ref()
    }

    fn record_answer(&mut self, i: usize) -> Answer {
        let late = self.decision.is_some();
        self.replicas.answer(i);
        if late {
            return Answer::Late;
        }
        self.evaluate();
        Answer::Counted
    }

    /// Decides if the answers so far allow it.
    fn evaluate(&mut self) {
        if self.decision.is_some() {
            return;
        }
        let acks = self.replicas.answered.len();
        if acks >= self.required {
            self.decision = Some(Decision::Succeeded { acked: self.replicas.answered.clone() });
            return;
        }
        let leader_lost = match self.mode {
            Mode::Leader { applied: false, .. } => self.replicas.slots.first() != Some(&Slot::Waiting),
            _ => false,
        };
        let could_still_ack = self
            .replicas
            .waiting()
            .filter(|(i, _)| match &self.mode {
                Mode::Each => true,
                Mode::Leader { .. } => !leader_lost,
                Mode::Repair { targets } => targets[*i],
            })
            .count();
        if acks + could_still_ack < self.required {
            self.decision = Some(Decision::Failed { answered: acks, failures: self.replicas.failures.clone() });
        }
    }
}
