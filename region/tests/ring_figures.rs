//! Balance figures of the ring, printed for `docs/algorithms/ring.md`.
//!
//! `cargo test --release -p meridian-region --test ring_figures -- --nocapture` prints the
//! largest/mean share for node ids `1..=n`; add `--include-ignored --test-threads=1` to also
//! sample `RING_SAMPLES` (default 1,000) random id sets per size (seeded, so the figures are
//! reproducible) and measure the tail.

use meridian_crdt::NodeId;
use meridian_region::ring::{tokens_for, Ring, DEFAULT_VNODES};

fn ring_of(ids: &[u64], vnodes: usize) -> Ring {
    Ring::new(1, ids.iter().map(|&id| (NodeId(id), tokens_for(NodeId(id), vnodes))))
}

/// Largest share over mean share at replication factor `n`, from exact token counts.
fn largest_over_mean(ring: &Ring, n: usize) -> f64 {
    let owned = ring.owned_tokens(n);
    let total: u128 = owned.values().sum();
    let largest = *owned.values().max().expect("non-empty ring");
    largest as f64 * owned.len() as f64 / total as f64
}

#[test]
fn balance_for_ids_one_to_n() {
    println!("nodes  vnodes  largest/mean N=1  largest/mean N=3");
    for n in [3u64, 5, 10, 20, 50] {
        let ids: Vec<u64> = (1..=n).collect();
        let ring = ring_of(&ids, DEFAULT_VNODES);
        let (p, r) = (largest_over_mean(&ring, 1), largest_over_mean(&ring, 3));
        println!("{n:>5}  {DEFAULT_VNODES:>6}  {p:>16.4}  {r:>16.4}");
        assert!(p <= 1.25, "{n} nodes: {p}");
    }
}

/// splitmix64: a fixed, dependency-free generator so the sampled figures are reproducible.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
#[ignore = "measurement: samples thousands of rings (minutes in debug)"]
fn balance_tail_over_random_ids() {
    let samples: usize = std::env::var("RING_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut seed = 0x6d65_7269_6469_616e; // "meridian"
    println!("nodes  samples  mean  p99  max  (largest/mean, N=1, {DEFAULT_VNODES} vnodes)  over 1.25");
    for n in [3usize, 10, 50] {
        let mut figures: Vec<f64> = (0..samples)
            .map(|_| {
                let ids: Vec<u64> = (0..n).map(|_| splitmix(&mut seed)).collect();
                largest_over_mean(&ring_of(&ids, DEFAULT_VNODES), 1)
            })
            .collect();
        figures.sort_by(f64::total_cmp);
        let mean = figures.iter().sum::<f64>() / samples as f64;
        let p99 = figures[samples * 99 / 100];
        let over = figures.iter().filter(|&&f| f > 1.25).count();
        println!("{n:>5}  {samples:>7}  {mean:.4}  {p99:.4}  {:.4}  {over}", figures[samples - 1]);
    }
}
