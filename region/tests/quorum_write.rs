//! The write round as a state machine: W out of N, early failure, deadline, ignored answers,
//! no flips, leader plans, hints and the error the client sees.

mod quorum_common;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{NodeId, Record, ValueKind};
use meridian_local::Origin;
use meridian_region::quorum::{required_answers, Answer, WriteAction, WritePlan, WriteRound, WriteStatus};
use meridian_region::RegionError;
use proptest::prelude::*;
use quorum_common::{expected_required, node, nodes, LEVELS};

const DEADLINE: u64 = 1_000;

fn each(n: usize, level: ConsistencyLevel) -> WriteRound {
    WriteRound::new(nodes(n), level, WritePlan::ApplyAtEach, DEADLINE)
}

fn leader(n: usize, level: ConsistencyLevel) -> WriteRound {
    WriteRound::new(nodes(n), level, WritePlan::ApplyAtLeaderThenReplicate { follower_op: None }, DEADLINE)
}

fn rec() -> Record {
    Record::empty(ValueKind::Counter)
}

fn unavailable(status: WriteStatus) -> (usize, usize, usize, Vec<(NodeId, String)>) {
    match status {
        WriteStatus::Failed(RegionError::Unavailable { required, answered, asked, failures, .. }) => {
            (required, answered, asked, failures)
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn required_is_one_majority_all_for_every_n() {
    for n in 0..=9 {
        for level in LEVELS {
            assert_eq!(required_answers(level, n), expected_required(level, n), "{level} N={n}");
            assert_eq!(each(n, level).required(), expected_required(level, n));
        }
    }
}

#[test]
fn succeeds_exactly_at_the_w_th_ack_for_every_level_and_n() {
    for n in 1..=5 {
        for level in LEVELS {
            let w = expected_required(level, n);
            let mut r = each(n, level);
            for i in 0..n {
                assert!(r.poll().is_pending(), "{level} N={n}: decided after {i} acks");
                assert_eq!(r.on_ack(node(i)), Answer::Counted);
                if i + 1 == w {
                    break;
                }
            }
            match r.poll() {
                WriteStatus::Succeeded { acked } => assert_eq!(acked, nodes(w)),
                other => panic!("{level} N={n}: {other:?}"),
            }
            // The rest keep arriving; nothing changes.
            for i in w..n {
                assert_eq!(r.on_ack(node(i)), Answer::Late);
            }
            r.on_timeout(DEADLINE);
            assert!(r.poll().is_succeeded());
            assert_eq!(r.acked(), nodes(n).as_slice());
        }
    }
}

#[test]
fn fails_exactly_when_failures_exceed_n_minus_w() {
    for n in 1..=5 {
        for level in LEVELS {
            let w = expected_required(level, n);
            let mut r = each(n, level);
            for i in 0..=(n - w) {
                assert!(r.poll().is_pending(), "{level} N={n}: failed after {i} failures");
                assert_eq!(r.on_failure(node(i), format!("disk {i} full")), Answer::Counted);
            }
            let (required, answered, asked, failures) = unavailable(r.poll());
            assert_eq!((required, answered, asked), (w, 0, n));
            assert_eq!(failures.len(), n - w + 1);
            assert_eq!(failures[0], (node(0), "disk 0 full".to_owned()));
        }
    }
}

#[test]
fn deadline_fails_a_pending_write_and_lists_who_did_not_answer() {
    let mut r = each(3, ConsistencyLevel::Quorum);
    r.on_ack(node(0));
    r.on_failure(node(1), "connection refused");
    assert_eq!(r.poll_timeout(), Some(DEADLINE));
    r.on_timeout(DEADLINE - 1);
    assert!(r.poll().is_pending(), "before the deadline nothing happens");
    r.on_timeout(DEADLINE);
    assert_eq!(r.poll_timeout(), None);
    let err = match r.poll() {
        WriteStatus::Failed(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err.code(), "unavailable");
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(msg.contains("quorum") && msg.contains("1 of 2 required") && msg.contains("(3 asked)"), "{msg}");
    let (_, answered, _, failures) = unavailable(r.poll());
    assert_eq!(answered, 1);
    assert_eq!(failures[0], (node(1), "connection refused".to_owned()));
    assert_eq!(failures[1].0, node(2));
    assert!(failures[1].1.contains("no answer before the deadline"));
    // An ack after the deadline is recorded (for hints) but does not flip the decision.
    assert_eq!(r.on_ack(node(2)), Answer::Late);
    assert!(r.poll().is_failed());
}

#[test]
fn duplicate_and_unknown_answers_are_ignored() {
    let mut r = each(3, ConsistencyLevel::Quorum);
    assert_eq!(r.on_ack(node(0)), Answer::Counted);
    assert_eq!(r.on_ack(node(0)), Answer::Duplicate);
    assert_eq!(r.on_applied(node(0), rec()), Answer::Duplicate);
    assert_eq!(r.on_failure(node(0), "x"), Answer::Duplicate);
    assert_eq!(r.on_ack(NodeId(99)), Answer::UnknownReplica);
    assert_eq!(r.on_failure(NodeId(99), "x"), Answer::UnknownReplica);
    assert!(r.poll().is_pending(), "one ack out of two, however often it is repeated");
    assert_eq!(r.on_failure(node(1), "x"), Answer::Counted);
    assert_eq!(r.on_ack(node(1)), Answer::Duplicate, "the first answer stands");
    assert!(r.poll().is_pending());
    assert_eq!(r.on_ack(node(2)), Answer::Counted);
    assert!(r.poll().is_succeeded());
}

#[test]
fn duplicate_replicas_are_counted_once() {
    let r = WriteRound::new(vec![node(0), node(1), node(0), node(2)], ConsistencyLevel::All, WritePlan::ApplyAtEach, 1);
    assert_eq!(r.replicas(), nodes(3).as_slice());
    assert_eq!(r.required(), 3);
}

#[test]
fn no_replicas_fails_at_once_instead_of_succeeding_with_no_ack() {
    for level in LEVELS {
        for plan in [WritePlan::ApplyAtEach, WritePlan::ApplyAtLeaderThenReplicate { follower_op: None }] {
            let r = WriteRound::new(Vec::new(), level, plan, 1);
            let (required, answered, asked, _) = unavailable(r.poll());
            assert_eq!((required, answered, asked), (1, 0, 0));
        }
    }
}

#[test]
fn apply_at_each_sends_the_op_to_every_replica() {
    let mut r = each(3, ConsistencyLevel::One);
    let sent: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).collect();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|t| t.action == WriteAction::Apply));
    assert_eq!(sent.iter().map(|t| t.to).collect::<Vec<_>>(), nodes(3));
    assert_eq!(r.leader(), None);
}

#[test]
fn leader_plan_applies_at_the_leader_then_merges_its_state_at_the_others() {
    let mut r = leader(3, ConsistencyLevel::Quorum);
    assert_eq!(r.leader(), Some(node(0)));
    let first: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).collect();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].to, node(0));
    assert_eq!(first[0].action, WriteAction::ApplyAsLeader);
    // Followers cannot acknowledge what they were not sent; a leader ack without the state is
    // not enough to replicate.
    assert_eq!(r.on_ack(node(1)), Answer::Unexpected);
    assert_eq!(r.on_applied(node(1), rec()), Answer::Unexpected);
    assert_eq!(r.on_ack(node(0)), Answer::Unexpected);
    assert!(r.poll().is_pending());
    assert_eq!(r.on_applied(node(0), rec()), Answer::Counted);
    let merges: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).collect();
    assert_eq!(merges.iter().map(|t| t.to).collect::<Vec<_>>(), vec![node(1), node(2)]);
    for t in &merges {
        match &t.action {
            WriteAction::Merge { record, origin, then_apply } => {
                assert_eq!(**record, rec());
                assert_eq!(*origin, Origin::Local);
                assert_eq!(*then_apply, None);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(r.poll().is_pending(), "1 of 2");
    assert_eq!(r.on_ack(node(2)), Answer::Counted);
    match r.poll() {
        WriteStatus::Succeeded { acked } => assert_eq!(acked, vec![node(0), node(2)]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn leader_failure_fails_the_write_at_once_whatever_the_level() {
    for n in 1..=5 {
        for level in LEVELS {
            let mut r = leader(n, level);
            r.poll_transmit();
            assert_eq!(r.on_failure(node(0), "stopped"), Answer::Counted);
            let (required, answered, asked, failures) = unavailable(r.poll());
            assert_eq!((required, answered, asked), (expected_required(level, n), 0, n));
            assert_eq!(failures.len(), 1);
            assert!(failures[0].1.contains("leader") && failures[0].1.contains("stopped"), "{failures:?}");
            assert_eq!(r.poll_transmit(), None, "nothing to replicate");
            assert!(r.hint_targets().is_empty(), "nothing was applied, nothing to hint");
        }
    }
}

#[test]
fn leader_timeout_says_the_operation_may_have_been_applied() {
    let mut r = leader(3, ConsistencyLevel::One);
    assert_eq!(r.poll_transmit().map(|t| t.to), Some(node(0)));
    r.on_timeout(DEADLINE);
    let (_, _, _, failures) = unavailable(r.poll());
    assert!(failures[0].1.contains("may have been applied"), "{failures:?}");
    assert!(failures[1].1.contains("not sent"), "{failures:?}");
    // The leader answers late: its state still goes to the followers (it is applied there).
    assert_eq!(r.on_applied(node(0), rec()), Answer::Late);
    assert_eq!(std::iter::from_fn(|| r.poll_transmit()).count(), 2);
    assert!(r.poll().is_failed());
}

#[test]
fn hint_targets_are_the_replicas_that_did_not_acknowledge() {
    let mut r = each(3, ConsistencyLevel::One);
    assert!(r.hint_targets().is_empty(), "no state yet");
    r.on_applied(node(1), rec());
    assert!(r.poll().is_succeeded());
    r.on_failure(node(0), "down");
    assert_eq!(r.hint_targets(), vec![node(0), node(2)]);
    assert_eq!(r.unanswered(), vec![node(2)]);
    assert_eq!(r.hint_record(), Some(&rec()));
    r.on_ack(node(2));
    assert_eq!(r.hint_targets(), vec![node(0)]);
    assert_eq!(r.failures(), &[(node(0), "down".to_owned())]);
}

#[test]
fn follower_failed_before_the_leader_applied_gets_no_merge_but_a_hint() {
    let mut r = leader(3, ConsistencyLevel::One);
    r.poll_transmit();
    r.on_failure(node(2), "known down");
    r.on_applied(node(0), rec());
    assert!(r.poll().is_succeeded());
    let merges: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).map(|t| t.to).collect();
    assert_eq!(merges, vec![node(1)]);
    assert_eq!(r.hint_targets(), vec![node(1), node(2)]);
}

/// One event in a generated history.
#[derive(Debug, Clone)]
enum Ev {
    /// `on_ack(i)`; `i >= n` is a node that is not a replica.
    Ack(usize),
    /// `on_applied(i, ..)`.
    Applied(usize),
    /// `on_failure(i, ..)`.
    Fail(usize),
    /// `on_timeout`, at (`true`) or before the deadline.
    Timeout(bool),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => (0usize..7).prop_map(Ev::Ack),
        3 => (0usize..7).prop_map(Ev::Applied),
        2 => (0usize..7).prop_map(Ev::Fail),
        1 => any::<bool>().prop_map(Ev::Timeout),
    ]
}

fn level() -> impl Strategy<Value = ConsistencyLevel> {
    prop_oneof![Just(ConsistencyLevel::One), Just(ConsistencyLevel::Quorum), Just(ConsistencyLevel::All)]
}

/// The reference: the rules of `quorum.md` written as plainly as possible.
#[derive(Debug, Default)]
struct Model {
    n: usize,
    w: usize,
    leader_plan: bool,
    answered: Vec<bool>,
    acked: Vec<usize>,
    failed: Vec<usize>,
    leader_applied: bool,
    /// `Some(true)` succeeded, `Some(false)` failed.
    decided: Option<bool>,
    acked_at_decision: Vec<usize>,
}

impl Model {
    fn step(&mut self, e: &Ev) -> Option<Answer> {
        let pending = self.decided.is_none();
        let answer = match *e {
            Ev::Timeout(at) => {
                if at && pending {
                    self.decided = Some(false);
                }
                return None;
            }
            Ev::Ack(i) | Ev::Applied(i) | Ev::Fail(i) if i >= self.n => Answer::UnknownReplica,
            Ev::Ack(i) | Ev::Applied(i) | Ev::Fail(i) if self.answered[i] => Answer::Duplicate,
            Ev::Fail(i) => {
                self.answered[i] = true;
                self.failed.push(i);
                if pending {
                    Answer::Counted
                } else {
                    Answer::Late
                }
            }
            Ev::Ack(i) | Ev::Applied(i) => {
                let applied = matches!(e, Ev::Applied(_));
                let allowed = !self.leader_plan || if i == 0 { applied } else { self.leader_applied };
                if !allowed {
                    return Some(Answer::Unexpected);
                }
                if self.leader_plan && i == 0 {
                    self.leader_applied = true;
                }
                self.answered[i] = true;
                self.acked.push(i);
                if pending {
                    Answer::Counted
                } else {
                    Answer::Late
                }
            }
        };
        if pending {
            let leader_lost = self.leader_plan && !self.leader_applied && self.answered[0];
            let waiting = self.answered.iter().filter(|a| !**a).count();
            let possible = self.acked.len() + if leader_lost { 0 } else { waiting };
            if self.acked.len() >= self.w {
                self.decided = Some(true);
                self.acked_at_decision = self.acked.clone();
            } else if possible < self.w {
                self.decided = Some(false);
            }
        }
        Some(answer)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Against the reference model, after every event: the same answer, the same status, the
    /// status changes at most once, and success carries the acks it was decided on.
    #[test]
    fn write_round_matches_the_model_and_never_flips(
        n in 1usize..=5,
        level in level(),
        leader_plan in any::<bool>(),
        events in proptest::collection::vec(ev(), 0..24),
    ) {
        let mut r = if leader_plan { leader(n, level) } else { each(n, level) };
        let w = expected_required(level, n);
        let mut m = Model { n, w, leader_plan, answered: vec![false; n], ..Model::default() };
        let mut first_decision: Option<bool> = None;
        for e in &events {
            let expected = m.step(e);
            let got = match *e {
                Ev::Ack(i) => Some(r.on_ack(node(i))),
                Ev::Applied(i) => Some(r.on_applied(node(i), rec())),
                Ev::Fail(i) => Some(r.on_failure(node(i), format!("f{i}"))),
                Ev::Timeout(at) => {
                    r.on_timeout(if at { DEADLINE } else { DEADLINE - 1 });
                    None
                }
            };
            prop_assert_eq!(got, expected, "answer to {:?}", e);
            let status = r.poll();
            let now = match &status {
                WriteStatus::Pending => None,
                WriteStatus::Succeeded { acked } => {
                    prop_assert_eq!(acked.clone(), m.acked_at_decision.iter().map(|&i| node(i)).collect::<Vec<_>>());
                    prop_assert!(acked.len() >= w);
                    Some(true)
                }
                WriteStatus::Failed(RegionError::Unavailable { required, answered, asked, failures, .. }) => {
                    prop_assert_eq!(*required, w);
                    prop_assert!(*answered < w);
                    prop_assert_eq!(*asked, n);
                    for f in &m.failed {
                        if failures.iter().all(|(node_id, _)| *node_id != node(*f)) {
                            // Failures after the decision are not in the frozen error.
                            prop_assert!(first_decision.is_some());
                        }
                    }
                    Some(false)
                }
                WriteStatus::Failed(other) => panic!("unexpected error {other}"),
            };
            prop_assert_eq!(now, m.decided, "status after {:?}", e);
            if let Some(d) = first_decision {
                prop_assert_eq!(now, Some(d), "flipped");
            }
            first_decision = first_decision.or(now);
            prop_assert_eq!(r.poll_timeout().is_some(), now.is_none());
        }
    }

    /// Transmits: every replica gets exactly one message, whatever the history; with a leader
    /// the followers' merges come only after the leader applied, and only to followers that
    /// had not failed by then.
    #[test]
    fn every_replica_is_sent_the_write_at_most_once(
        n in 1usize..=5,
        level in level(),
        leader_plan in any::<bool>(),
        events in proptest::collection::vec(ev(), 0..24),
    ) {
        let mut r = if leader_plan { leader(n, level) } else { each(n, level) };
        let mut sent: Vec<NodeId> = std::iter::from_fn(|| r.poll_transmit()).map(|t| t.to).collect();
        for e in &events {
            match *e {
                Ev::Ack(i) => { r.on_ack(node(i)); }
                Ev::Applied(i) => { r.on_applied(node(i), rec()); }
                Ev::Fail(i) => { r.on_failure(node(i), "f"); }
                Ev::Timeout(at) => r.on_timeout(if at { DEADLINE } else { 0 }),
            }
            sent.extend(std::iter::from_fn(|| r.poll_transmit()).map(|t| t.to));
        }
        let mut dedup = sent.clone();
        dedup.sort();
        dedup.dedup();
        prop_assert_eq!(dedup.len(), sent.len(), "sent twice: {:?}", sent);
        prop_assert!(sent.iter().all(|s| nodes(n).contains(s)));
        if !leader_plan {
            prop_assert_eq!(sent.len(), n);
        }
    }
}
