//! Shared helpers of the quorum tests: node ids, levels, and a small synchronous "shell" that
//! drives the rounds against in-memory replica stores.

#![allow(dead_code)] // each test binary uses a different part of this module

use meridian_config::ConsistencyLevel;
use meridian_crdt::{HlcClock, Limits, NodeId, Op, OpContext, Record, ValueKind};
use meridian_local::{MemoryEngine, NodeStore, Origin, Store};
use meridian_region::quorum::{ReadRound, ReadStatus, WriteAction, WritePlan, WriteRound, WriteStatus};

/// Every level.
pub const LEVELS: [ConsistencyLevel; 3] = [ConsistencyLevel::One, ConsistencyLevel::Quorum, ConsistencyLevel::All];

/// Start of simulated wall-clock time (2023-11-14).
pub const T0: u64 = 1_700_000_000_000;

/// The keyspace every test key lives in.
pub const KS: &str = "ks";

/// The key every test uses.
pub const KEY: &[u8] = b"k";

/// Replica `i`'s node id (ids start at 1: 0 is reserved).
pub fn node(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

/// Node ids of `n` replicas.
pub fn nodes(n: usize) -> Vec<NodeId> {
    (0..n).map(node).collect()
}

/// W or R by hand: 1, a majority, or all (as a test oracle independent of the code).
pub fn expected_required(level: ConsistencyLevel, n: usize) -> usize {
    match level {
        ConsistencyLevel::One => 1,
        ConsistencyLevel::Quorum => n / 2 + 1,
        ConsistencyLevel::All => n.max(1),
    }
}

/// `a ⊒ b` in the join order: merging `b` into `a` changes nothing.
pub fn includes(a: &Record, b: &Record) -> bool {
    let mut m = a.clone();
    !m.merge(b).expect("same kind")
}

/// One replica: a store and its HLC.
#[derive(Debug)]
pub struct Replica {
    pub id: NodeId,
    pub store: NodeStore<MemoryEngine>,
    pub clock: HlcClock,
}

/// A region of replicas of one key, a coordinator clock, and which replicas are down.
#[derive(Debug)]
pub struct Cluster {
    pub kind: ValueKind,
    pub replicas: Vec<Replica>,
    pub coordinator: HlcClock,
    pub down: Vec<bool>,
    pub now: u64,
    pub limits: Limits,
}

/// What one driven write did.
#[derive(Debug)]
pub struct WriteResult {
    pub succeeded: bool,
    /// The state every acknowledging replica holds (or includes): the op's own state for
    /// `ApplyAtEach`, the leader's state for a leader plan. `None` if nothing was applied.
    pub effect: Option<Record>,
    pub round: WriteRound,
}

impl Cluster {
    pub fn new(kind: ValueKind, n: usize) -> Cluster {
        Cluster {
            kind,
            replicas: (0..n)
                .map(|i| Replica {
                    id: node(i),
                    store: NodeStore::open(MemoryEngine::new()).expect("open memory store"),
                    clock: HlcClock::new(node(i), 10_000),
                })
                .collect(),
            coordinator: HlcClock::new(NodeId(1_000), 10_000),
            down: vec![false; n],
            now: T0,
            limits: Limits { max_siblings: 10_000, ..Limits::default() },
        }
    }

    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    fn index(&self, id: NodeId) -> usize {
        self.replicas.iter().position(|r| r.id == id).expect("a replica")
    }

    pub fn state(&self, i: usize) -> Option<Record> {
        self.replicas[i].store.get(KS, KEY).expect("get")
    }

    /// Replica ids in the order given by `order` (indexes, missing ones appended).
    pub fn ordered(&self, order: &[usize]) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = order.iter().map(|&i| self.replicas[i % self.n()].id).collect();
        out.extend(self.replicas.iter().map(|r| r.id));
        let mut seen = Vec::new();
        out.retain(|n| {
            let fresh = !seen.contains(n);
            seen.push(*n);
            fresh
        });
        out
    }

    /// Drives one write to completion: the transmits are delivered in the order `pick` chooses
    /// (an index into the pending ones), a down replica fails, the deadline passes at the end.
    pub fn write(
        &mut self,
        op: &Op,
        level: ConsistencyLevel,
        order: Vec<NodeId>,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> WriteResult {
        self.now += 1;
        let plan = WritePlan::for_op(self.kind, op).expect("op fits kind");
        let mut round = WriteRound::new(order, level, plan.clone(), 100);
        let shared =
            OpContext { actor: self.coordinator.node(), ts: self.coordinator.tick(self.now), now_ms: self.now };
        let mut pending = Vec::new();
        loop {
            while let Some(t) = round.poll_transmit() {
                pending.push(t);
            }
            if pending.is_empty() {
                break;
            }
            let t = pending.remove(pick(pending.len()) % pending.len());
            let i = self.index(t.to);
            if self.down[i] {
                round.on_failure(t.to, "down");
                continue;
            }
            let now = self.now;
            let r = &mut self.replicas[i];
            match t.action {
                WriteAction::Apply => match r.store.apply(KS, KEY, self.kind, op, &shared, &self.limits) {
                    Ok(out) => {
                        round.on_applied(t.to, out.record);
                    }
                    Err(e) => {
                        round.on_failure(t.to, e.to_string());
                    }
                },
                WriteAction::ApplyAsLeader => {
                    let ctx = OpContext { actor: r.id, ts: r.clock.tick(now), now_ms: now };
                    match r.store.apply(KS, KEY, self.kind, op, &ctx, &self.limits) {
                        Ok(out) => {
                            round.on_applied(t.to, out.record);
                        }
                        Err(e) => {
                            round.on_failure(t.to, e.to_string());
                        }
                    }
                }
                WriteAction::Merge { record, origin, then_apply } => {
                    r.store.merge(KS, KEY, &record, origin).expect("merge");
                    if let Some(f) = then_apply {
                        let ctx = record.follower_context();
                        r.store.apply(KS, KEY, self.kind, &f, &ctx, &self.limits).expect("follower op");
                    }
                    round.on_ack(t.to);
                }
            }
        }
        round.on_timeout(100);
        let succeeded = round.poll().is_succeeded();
        let effect = match plan {
            WritePlan::ApplyAtEach => Some(Record::apply(None, self.kind, op, &shared, &self.limits).expect("apply")),
            WritePlan::ApplyAtLeaderThenReplicate { .. } => round.hint_record().cloned(),
        };
        WriteResult { succeeded, effect, round }
    }

    /// Drives one read: asks every replica, delivers responses in the order `pick` chooses,
    /// runs the repair (blocking at QUORUM/ALL, background at ONE) at the replicas that are
    /// up. Returns the status and, if the blocking repair failed, its error.
    pub fn read(
        &mut self,
        level: ConsistencyLevel,
        order: Vec<NodeId>,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> ReadStatus {
        self.now += 1;
        let mut round = ReadRound::new(order.clone(), level, 100);
        let mut pending = Vec::new();
        while let Some(to) = round.poll_transmit() {
            pending.push(to);
        }
        while !pending.is_empty() {
            let to = pending.remove(pick(pending.len()) % pending.len());
            let i = self.index(to);
            if self.down[i] {
                round.on_failure(to, "down");
            } else {
                round.on_response(to, self.state(i));
            }
            while let Some(to) = round.poll_transmit() {
                pending.push(to);
            }
        }
        round.on_timeout(100);
        let status = round.poll(self.now);
        if let ReadStatus::Decided(d) = &status {
            if let Some(plan) = round.take_repairs() {
                let mut repair = plan.round(&order, level, 100);
                while let Some(t) = repair.poll_transmit() {
                    let i = self.index(t.to);
                    if self.down[i] {
                        repair.on_failure(t.to, "down");
                        continue;
                    }
                    let WriteAction::Merge { record, origin, .. } = t.action else { panic!("repair merges") };
                    assert_eq!(origin, Origin::Repair);
                    self.replicas[i].store.merge(KS, KEY, &record, origin).expect("merge");
                    repair.on_ack(t.to);
                }
                repair.on_timeout(100);
                if d.repair_blocking {
                    if let WriteStatus::Failed(e) = repair.poll() {
                        return ReadStatus::Failed(e);
                    }
                }
            }
        }
        status
    }
}

/// A small operation of `kind` chosen by `x`; MVR writes and set removes carry `ctx`.
pub fn simple_op(kind: ValueKind, x: u8, ctx: Option<meridian_crdt::CausalContext>) -> Op {
    match kind {
        ValueKind::Lww => {
            if x.is_multiple_of(5) {
                Op::LwwDelete
            } else {
                Op::LwwPut { value: vec![x % 4], ttl_ms: None }
            }
        }
        ValueKind::Mvr => Op::MvrPut {
            value: (!x.is_multiple_of(7)).then(|| vec![x % 4]),
            context: ctx.unwrap_or_default(),
            ttl_ms: None,
        },
        ValueKind::Counter => Op::CounterAdd { delta: i64::from(x % 11) - 5, ttl_ms: None },
        ValueKind::Set => {
            let e = vec![x % 5];
            if x.is_multiple_of(3) {
                Op::SetUpdate { add: Vec::new(), remove: vec![e], context: ctx, ttl_ms: None }
            } else {
                Op::SetUpdate { add: vec![e], remove: Vec::new(), context: None, ttl_ms: None }
            }
        }
    }
}

/// Replica states reached by a history of `(replica, x, sync)` steps: `sync` merges replica
/// `x % n` into `replica`, otherwise `replica` applies `simple_op(kind, x, its own context)`.
/// Replicas never touched hold nothing (`None`).
pub fn replica_states(kind: ValueKind, n: usize, steps: &[(usize, u8, bool)]) -> Vec<Option<Record>> {
    let mut states: Vec<Option<Record>> = vec![None; n];
    let mut clocks: Vec<HlcClock> = (0..n).map(|i| HlcClock::new(node(i), 10_000)).collect();
    let limits = Limits { max_siblings: 10_000, ..Limits::default() };
    for (t, &(r, x, sync)) in steps.iter().enumerate() {
        let r = r % n;
        let now = T0 + t as u64;
        if sync {
            let from = x as usize % n;
            if let Some(src) = states[from].clone() {
                match &mut states[r] {
                    Some(dst) => {
                        dst.merge(&src).expect("same kind");
                    }
                    None => states[r] = Some(src),
                }
            }
        } else {
            let ctx = states[r].as_ref().map(Record::context);
            let op = simple_op(kind, x, ctx);
            let oc = OpContext { actor: node(r), ts: clocks[r].tick(now), now_ms: now };
            states[r] = Some(Record::apply(states[r].clone(), kind, &op, &oc, &limits).expect("apply"));
        }
    }
    states
}

/// The join of `records` (in the order given).
pub fn join<'a>(records: impl IntoIterator<Item = &'a Option<Record>>) -> Option<Record> {
    let mut out: Option<Record> = None;
    for r in records.into_iter().flatten() {
        match &mut out {
            None => out = Some(r.clone()),
            Some(o) => {
                o.merge(r).expect("same kind");
            }
        }
    }
    out
}
