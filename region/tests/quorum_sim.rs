//! Contract 1 and read-your-writes at the core level: replicas are real stores
//! (`NodeStore<MemoryEngine>`), the rounds are driven by a small synchronous shell
//! (`quorum_common::Cluster`) with random delivery orders, random replicas down per request,
//! reads with repair in between, and at the end the loss (crash with its data) of up to W − 1
//! replicas. The survivors must still hold every acknowledged write, and a read at R with
//! W + R > N must include every one of them.
//!
//! Why W − 1 and not contract 1's N − W: an acknowledgement at W says W replicas hold the
//! write, so it survives the loss of any W − 1. That covers N − W exactly when W > N / 2
//! (`QUORUM` and `ALL`). At `ONE` with N ≥ 2, losing N − W replicas can take the only one that
//! acknowledged (`one_acknowledged_write_dies_with_its_only_replica`); after a kill -9 that
//! replica still has the write in its WAL, but until it is back no read can see it.

mod quorum_common;

use meridian_config::ConsistencyLevel;
use meridian_crdt::{Op, ValueKind};
use meridian_region::quorum::{ReadStatus, WriteStatus};
use meridian_region::RegionError;
use proptest::prelude::*;
use quorum_common::{expected_required, includes, join, simple_op, Cluster};

/// A tiny deterministic generator for delivery orders (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A client write chosen by `x`; `down` is a bitmask of replicas that fail it; with
    /// `live_first` the shell puts the replicas that are up first (so the leader is up).
    Write { x: u8, down: u8, live_first: bool, seed: u64 },
    /// A client read at R (repair included); its context feeds the next writes.
    Read { down: u8, seed: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<u8>(), any::<u8>(), proptest::bool::weighted(0.7), any::<u64>())
            .prop_map(|(x, down, live_first, seed)| Step::Write { x, down, live_first, seed: seed | 1 }),
        1 => (any::<u8>(), any::<u64>()).prop_map(|(down, seed)| Step::Read { down, seed: seed | 1 }),
    ]
}

fn level() -> impl Strategy<Value = ConsistencyLevel> {
    prop_oneof![Just(ConsistencyLevel::One), Just(ConsistencyLevel::Quorum), Just(ConsistencyLevel::All)]
}

fn kind() -> impl Strategy<Value = ValueKind> {
    prop_oneof![Just(ValueKind::Lww), Just(ValueKind::Mvr), Just(ValueKind::Counter), Just(ValueKind::Set)]
}

/// Replica indexes in a random order; with `live_first`, the ones that are up first.
fn order(c: &Cluster, rng: &mut Rng, live_first: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..c.n()).collect();
    for i in (1..idx.len()).rev() {
        idx.swap(i, rng.next() % (i + 1));
    }
    if live_first {
        idx.sort_by_key(|&i| c.down[i]);
    }
    idx
}

fn mask(c: &mut Cluster, down: u8) {
    for i in 0..c.n() {
        c.down[i] = down & (1 << i) != 0;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn read_at_r_sees_every_write_acknowledged_at_w_after_w_minus_1_replicas_are_lost(
        kind in kind(),
        n in 1usize..=5,
        wl in level(),
        rl in level(),
        steps in proptest::collection::vec(step(), 1..12),
        crash in any::<u8>(),
        seed in any::<u64>(),
    ) {
        let (w, r) = (expected_required(wl, n), expected_required(rl, n));
        prop_assume!(w + r > n);
        let mut c = Cluster::new(kind, n);
        let mut acked = Vec::new();
        let (mut acked_sum, mut failed_neg, mut failed_pos) = (0i64, 0i64, 0i64);
        let mut ctx = None;
        // What reads at QUORUM / ALL returned (after their blocking repair).
        let mut returned = Vec::new();
        for s in &steps {
            match s {
                Step::Write { x, down, live_first, seed } => {
                    mask(&mut c, *down);
                    let mut rng = Rng(*seed);
                    let ids = c.ordered(&order(&c, &mut rng, *live_first));
                    let op = simple_op(kind, *x, ctx.clone());
                    let out = c.write(&op, wl, ids, &mut |_| rng.next());
                    // Decided exactly by the count of acknowledgements.
                    prop_assert_eq!(out.succeeded, out.round.acked().len() >= w);
                    if let WriteStatus::Failed(RegionError::Unavailable { answered, required, asked, .. }) = out.round.poll() {
                        prop_assert!(answered < required);
                        prop_assert_eq!((required, asked), (w, n));
                    }
                    let delta = match op { Op::CounterAdd { delta, .. } => delta, _ => 0 };
                    if out.succeeded {
                        acked_sum += delta;
                        acked.push(out.effect.expect("an acknowledged write has a state"));
                    } else if delta < 0 {
                        failed_neg += delta;
                    } else {
                        failed_pos += delta;
                    }
                }
                Step::Read { down, seed } => {
                    mask(&mut c, *down);
                    let mut rng = Rng(*seed);
                    let ids = c.ordered(&order(&c, &mut rng, false));
                    if let ReadStatus::Decided(d) = c.read(rl, ids, &mut |_| rng.next()) {
                        // Read-your-writes without crashes: every acknowledged write is in.
                        let m = d.merged.clone();
                        for e in &acked {
                            prop_assert!(m.as_ref().is_some_and(|m| includes(m, e)), "read missed an acknowledged write");
                        }
                        // Monotonic reads: a blocking repair left what an earlier read returned
                        // at R replicas, and any R replicas intersect them (2R > N).
                        if rl != ConsistencyLevel::One {
                            for e in &returned {
                                prop_assert!(m.as_ref().is_some_and(|m| includes(m, e)), "read went back in time");
                            }
                            returned.extend(m.clone());
                        }
                        ctx = m.map(|m| m.context());
                    }
                }
            }
        }
        // Lose up to W − 1 replicas (which is at least N − W at QUORUM and ALL): their data is
        // gone, they do not answer.
        prop_assert!(wl == ConsistencyLevel::One || w > n - w, "W − 1 ≥ N − W");
        let mut crashed = 0;
        for i in 0..n {
            c.down[i] = crash & (1 << i) != 0 && crashed < w - 1;
            crashed += usize::from(c.down[i]);
        }
        // Contract 1: the survivors together still hold every acknowledged write.
        let survivors: Vec<_> = (0..n).filter(|&i| !c.down[i]).map(|i| c.state(i)).collect();
        let union = join(survivors.iter());
        for e in &acked {
            prop_assert!(union.as_ref().is_some_and(|u| includes(u, e)), "an acknowledged write was lost");
        }
        // A read at R from the survivors sees them all, or is unavailable because fewer than
        // R replicas are left.
        let mut rng = Rng(seed | 1);
        let ids = c.ordered(&order(&c, &mut rng, false));
        match c.read(rl, ids, &mut |_| rng.next()) {
            ReadStatus::Decided(d) => {
                for e in &acked {
                    prop_assert!(d.merged.as_ref().is_some_and(|m| includes(m, e)), "read at R missed an acknowledged write");
                }
                if kind == ValueKind::Counter && !acked.is_empty() {
                    // Contract 4 at the core: acknowledged deltas all in, failed ones in or out.
                    let v = d.merged.as_ref().and_then(|m| m.as_counter()).map_or(0, |c| c.value()) - acked_sum;
                    prop_assert!(failed_neg <= v && v <= failed_pos, "counter off by {}", v);
                }
            }
            ReadStatus::Failed(_) => prop_assert!(n - crashed < r, "read failed with {} of {} left", n - crashed, r),
            ReadStatus::Pending => panic!("the deadline passed"),
        }
    }
}

/// The surprise the simulation caught in contract 1's wording (see the module doc): N = 2,
/// W = 1, the write reaches one replica, and that one is the N − W = 1 replica that crashes.
#[test]
fn one_acknowledged_write_dies_with_its_only_replica() {
    let mut c = Cluster::new(ValueKind::Lww, 2);
    c.down[0] = true;
    let out = c.write(&Op::LwwDelete, ConsistencyLevel::One, c.ordered(&[0, 1]), &mut |_| 0);
    assert!(out.succeeded, "acknowledged at ONE by replica 1");
    c.down = vec![false, true]; // replica 1 lost; replica 0 is back
    assert_eq!(c.state(0), None, "the survivor never received it");
    match c.read(ConsistencyLevel::One, c.ordered(&[0, 1]), &mut |_| 0) {
        ReadStatus::Decided(d) => assert_eq!(d.merged, None),
        other => panic!("{other:?}"),
    }
}
