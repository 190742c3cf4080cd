//! Seeded simulation of three regions of three nodes (turmoil; see `common/sim.rs`), every
//! node running the cross-region replicator over simulated QUIC. Clients in every region write
//! all four value types at QUORUM while a seeded nemesis cuts random region pairs apart and
//! heals them. After the last heal, once every backlog drained, every region and every node is
//! read and the history checker verifies contracts 2 to 7. The scenario lives in
//! `common/scenario.rs`; `sim_sweep.rs` runs many shorter seeds of it, with crashes.

mod common;

use common::scenario::{run, Scenario};
use common::sim::seed;

#[test]
fn three_regions_converge_after_random_partitions_and_the_checker_passes() {
    let s = seed(101);
    let out = run(s, &Scenario::long());
    println!("seed {s}: {}", out.report);
    assert!(out.report.ok, "seed {s}: {:#}", out.report);
}
