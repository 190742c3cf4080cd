//! Shared generators for the property tests: a small deterministic simulation of replicas
//! that apply random client operations and exchange states, so every state a law is checked
//! on is one the real system can reach.

#![allow(dead_code)] // each test binary uses a different part of this module

use meridian_crdt::{CausalContext, CrdtError, Hlc, HlcClock, Limits, NodeId, Op, OpContext, Record, ValueKind};
use proptest::prelude::*;

/// Where a client got the causal context it sends with a write or remove.
#[derive(Debug, Clone)]
pub enum CtxChoice {
    /// No context (a blind write / for sets: let the replica use its own).
    None,
    /// Read from the replica that applies the op.
    Own,
    /// Read from another replica (index modulo the replica count).
    Other(usize),
}

/// A client operation with small values so collisions happen.
#[derive(Debug, Clone)]
pub enum GenOp {
    LwwPut { v: u8, ttl: Option<u64> },
    LwwDelete,
    MvrPut { v: Option<u8>, ctx: CtxChoice, ttl: Option<u64> },
    CounterAdd { delta: i64, ttl: Option<u64> },
    SetUpdate { add: Vec<u8>, remove: Vec<u8>, ctx: CtxChoice, ttl: Option<u64> },
    Reset,
}

/// One step of a run.
#[derive(Debug, Clone)]
pub enum Step {
    /// Advance global time by `dt` ms, then replica `replica` applies `op`.
    Op { replica: usize, dt: u64, op: GenOp },
    /// Replica `to` merges replica `from`'s state.
    Sync { from: usize, to: usize },
}

/// Start of simulated time (2023-11-14), far from both 0 and the NTP64 limit.
pub const T0: u64 = 1_700_000_000_000;

fn ttl(with_ttl: bool) -> BoxedStrategy<Option<u64>> {
    if with_ttl {
        prop_oneof![3 => Just(None), 1 => (1u64..120).prop_map(Some)].boxed()
    } else {
        Just(None).boxed()
    }
}

fn ctx_choice() -> impl Strategy<Value = CtxChoice> {
    prop_oneof![Just(CtxChoice::None), Just(CtxChoice::Own), (0usize..4).prop_map(CtxChoice::Other)]
}

/// Operations that fit `kind`, with or without TTLs.
pub fn gen_op(kind: ValueKind, with_ttl: bool, with_reset: bool) -> BoxedStrategy<GenOp> {
    let reset_weight = if with_reset { 1 } else { 0 };
    match kind {
        ValueKind::Lww => prop_oneof![
            4 => (0u8..4, ttl(with_ttl)).prop_map(|(v, ttl)| GenOp::LwwPut { v, ttl }),
            1 => Just(GenOp::LwwDelete),
            reset_weight => Just(GenOp::Reset),
        ]
        .boxed(),
        ValueKind::Mvr => prop_oneof![
            6 => (proptest::option::weighted(0.85, 0u8..4), ctx_choice(), ttl(with_ttl))
                .prop_map(|(v, ctx, ttl)| GenOp::MvrPut { v, ctx, ttl }),
            reset_weight => Just(GenOp::Reset),
        ]
        .boxed(),
        ValueKind::Counter => prop_oneof![
            6 => (-5i64..=5, ttl(with_ttl)).prop_map(|(delta, ttl)| GenOp::CounterAdd { delta, ttl }),
            reset_weight => Just(GenOp::Reset),
        ]
        .boxed(),
        ValueKind::Set => prop_oneof![
            6 => (
                proptest::collection::btree_set(0u8..5, 0..3),
                proptest::collection::btree_set(0u8..5, 0..3),
                ctx_choice(),
                ttl(with_ttl)
            )
                .prop_map(|(add, remove, ctx, ttl)| GenOp::SetUpdate {
                    remove: remove.difference(&add).copied().collect(),
                    add: add.into_iter().collect(),
                    ctx,
                    ttl,
                }),
            reset_weight => Just(GenOp::Reset),
        ]
        .boxed(),
    }
}

/// A run of ops and syncs among `replicas` replicas.
pub fn gen_steps(
    kind: ValueKind,
    replicas: usize,
    max_len: usize,
    with_ttl: bool,
    with_reset: bool,
) -> BoxedStrategy<Vec<Step>> {
    let op = (0..replicas, 0u64..40, gen_op(kind, with_ttl, with_reset)).prop_map(|(replica, dt, op)| Step::Op {
        replica,
        dt,
        op,
    });
    let sync = (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Sync { from, to });
    proptest::collection::vec(prop_oneof![3 => op, 1 => sync], 0..max_len).boxed()
}

/// Replicas of one key, each with its own HLC and a fixed clock skew.
#[derive(Debug, Clone)]
pub struct Sim {
    pub kind: ValueKind,
    pub states: Vec<Record>,
    pub clocks: Vec<HlcClock>,
    pub skew_ms: Vec<i64>,
    pub now: u64,
    pub limits: Limits,
}

impl Sim {
    pub fn new(kind: ValueKind, replicas: usize) -> Sim {
        Sim {
            kind,
            states: vec![Record::empty(kind); replicas],
            clocks: (0..replicas).map(|i| HlcClock::new(node(i), 10_000)).collect(),
            // Replica clocks disagree by up to ±30 ms, so HLC order differs from real order.
            skew_ms: (0..replicas).map(|i| [0, 25, -30, 10][i % 4]).collect(),
            now: T0,
            limits: Limits { max_siblings: 1_000, ..Limits::default() },
        }
    }

    pub fn physical(&self, r: usize) -> u64 {
        self.now.saturating_add_signed(self.skew_ms[r])
    }

    /// The client context a `CtxChoice` stands for, as seen by replica `r`.
    pub fn context(&self, r: usize, choice: &CtxChoice) -> Option<CausalContext> {
        match choice {
            CtxChoice::None => None,
            CtxChoice::Own => Some(self.states[r].context()),
            CtxChoice::Other(j) => Some(self.states[j % self.states.len()].context()),
        }
    }

    pub fn to_op(&self, r: usize, op: &GenOp) -> Op {
        match op {
            GenOp::LwwPut { v, ttl } => Op::LwwPut { value: vec![*v], ttl_ms: *ttl },
            GenOp::LwwDelete => Op::LwwDelete,
            GenOp::MvrPut { v, ctx, ttl } => Op::MvrPut {
                value: v.map(|v| vec![v]),
                context: self.context(r, ctx).unwrap_or_default(),
                ttl_ms: *ttl,
            },
            GenOp::CounterAdd { delta, ttl } => Op::CounterAdd { delta: *delta, ttl_ms: *ttl },
            GenOp::SetUpdate { add, remove, ctx, ttl } => Op::SetUpdate {
                add: add.iter().map(|e| vec![*e]).collect(),
                remove: remove.iter().map(|e| vec![*e]).collect(),
                context: self.context(r, ctx),
                ttl_ms: *ttl,
            },
            GenOp::Reset => Op::Reset,
        }
    }

    /// Replica `r` applies `op` at the current time. On error its state is unchanged.
    pub fn apply(&mut self, r: usize, op: &Op) -> Result<OpContext, CrdtError> {
        let physical = self.physical(r);
        let ts = self.clocks[r].tick(physical);
        let ctx = OpContext { actor: node(r), ts, now_ms: physical };
        let next = Record::apply(Some(self.states[r].clone()), self.kind, op, &ctx, &self.limits)?;
        self.states[r] = next;
        Ok(ctx)
    }

    /// Replica `to` merges replica `from`'s state (and observes its clock, as the shell does).
    pub fn sync(&mut self, from: usize, to: usize) {
        let incoming = self.states[from].clone();
        let physical = self.physical(to);
        let _ = self.clocks[to].observe(incoming.last_modified(), physical);
        self.states[to].merge(&incoming).expect("same kind");
    }

    pub fn run(&mut self, steps: &[Step]) {
        for step in steps {
            match step {
                Step::Op { replica, dt, op } => {
                    self.now += dt;
                    let op = self.to_op(*replica, op);
                    let _ = self.apply(*replica, &op);
                }
                Step::Sync { from, to } => self.sync(*from, *to),
            }
        }
    }

    /// Every replica merges every other replica's state (two rounds: full exchange).
    pub fn exchange_all(&mut self) {
        let n = self.states.len();
        for _ in 0..2 {
            for to in 0..n {
                for from in 0..n {
                    if from != to {
                        self.sync(from, to);
                    }
                }
            }
        }
    }
}

pub fn node(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

/// Three reachable states of one key, from a run among three replicas.
pub fn three_states(kind: ValueKind, with_ttl: bool) -> impl Strategy<Value = (Record, Record, Record)> {
    gen_steps(kind, 3, 20, with_ttl, true).prop_map(move |steps| {
        let mut sim = Sim::new(kind, 3);
        sim.run(&steps);
        (sim.states[0].clone(), sim.states[1].clone(), sim.states[2].clone())
    })
}

pub fn any_kind() -> impl Strategy<Value = ValueKind> {
    prop_oneof![Just(ValueKind::Lww), Just(ValueKind::Mvr), Just(ValueKind::Counter), Just(ValueKind::Set)]
}

pub fn merged(a: &Record, b: &Record) -> Record {
    let mut m = a.clone();
    m.merge(b).expect("same kind");
    m
}

pub fn hlc(ms: u64, n: u64) -> Hlc {
    Hlc::from_physical_ms(ms, NodeId(n))
}
