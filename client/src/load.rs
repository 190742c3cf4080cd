//! The pure half of the load generator behind `meridian bench`: workloads, key choice and
//! the open-loop schedule. No clock reads and no randomness of its own: every choice takes a
//! uniform draw `u` in `[0, 1)` from the caller, so a seeded generator replays the same
//! operations. The driver (timing, concurrency, histograms, output) is `src/cli/bench.rs`.
//!
//! - [`Workload`]: the operation mix (YCSB A, B, C, write-only, a hot counter, set updates).
//! - [`KeyChooser`]: uniform, or YCSB's scrambled Zipfian (θ = 0.99 by default): ranks drawn
//!   with the generator of Gray et al. ("Quickly generating billion-record synthetic
//!   databases", SIGMOD 1994) as YCSB implements it, then hashed (FNV-1a 64) onto the key
//!   space so that the hot keys are spread over the ring instead of being neighbours.
//! - [`OpenLoop`]: the intended send time of operation `i` at a fixed rate. Latency measured
//!   from the intended time includes the time an operation waited because earlier ones
//!   stalled, so coordinated omission does not hide stalls.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// YCSB's Zipfian constant.
pub const ZIPFIAN_THETA: f64 = 0.99;

/// The operation mix of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// YCSB A: 50 % reads, 50 % updates.
    A,
    /// YCSB B: 95 % reads, 5 % updates.
    B,
    /// YCSB C: reads only.
    C,
    /// Updates (LWW puts) only.
    Write,
    /// One hot counter, incremented by 1.
    Counter,
    /// Set updates: 50 % adds, 50 % removes of a member.
    Set,
}

impl Workload {
    /// Every workload, in the order of the documentation.
    pub const ALL: [Workload; 6] =
        [Workload::A, Workload::B, Workload::C, Workload::Write, Workload::Counter, Workload::Set];

    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::Write => "write",
            Workload::Counter => "counter",
            Workload::Set => "set",
        }
    }

    /// The keyspace it uses unless told otherwise (one of the configured defaults).
    pub fn default_keyspace(self) -> &'static str {
        match self {
            Workload::Counter => "counters",
            Workload::Set => "sets",
            _ => "default",
        }
    }

    /// Whether it reads registers (and so wants keys preloaded).
    pub fn reads(self) -> bool {
        matches!(self, Workload::A | Workload::B | Workload::C)
    }

    /// The operation for draw `u`.
    pub fn next_op(self, u: f64) -> OpKind {
        let read = |fraction: f64| if u < fraction { OpKind::Read } else { OpKind::Update };
        match self {
            Workload::A => read(0.5),
            Workload::B => read(0.95),
            Workload::C => OpKind::Read,
            Workload::Write => OpKind::Update,
            Workload::Counter => OpKind::Incr,
            Workload::Set if u < 0.5 => OpKind::SetAdd,
            Workload::Set => OpKind::SetRemove,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not a workload (a, b, c, write, counter, set)"))
    }
}

/// One operation of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// A register read.
    Read,
    /// A register write (LWW put).
    Update,
    /// A counter increment.
    Incr,
    /// A set add.
    SetAdd,
    /// A set remove.
    SetRemove,
}

impl OpKind {
    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Incr => "incr",
            OpKind::SetAdd => "sadd",
            OpKind::SetRemove => "srem",
        }
    }
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Scrambled Zipfian, θ = [`ZIPFIAN_THETA`].
    Zipfian,
}

impl FromStr for Distribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Distribution, String> {
        match s.to_ascii_lowercase().as_str() {
            "uniform" => Ok(Distribution::Uniform),
            "zipfian" | "zipf" => Ok(Distribution::Zipfian),
            _ => Err(format!("{s:?} is not a distribution (uniform, zipfian)")),
        }
    }
}

/// Zipfian ranks in `[0, items)`: rank 0 the most frequent (YCSB's `ZipfianGenerator`).
#[derive(Debug, Clone, PartialEq)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

/// `Σ_{i=1..n} 1 / i^θ`. O(n): a million items take a few milliseconds.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// The generator over `items` (at least 1) ranks with constant `theta` in `(0, 1)`.
    pub fn new(items: u64, theta: f64) -> Zipfian {
        let items = items.max(1);
        let zetan = zeta(items, theta);
        let zeta2 = zeta(2, theta);
        let eta = if items < 3 { 0.0 } else { (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan) };
        Zipfian { items, theta, alpha: 1.0 / (1.0 - theta), zetan, eta }
    }

    /// The rank for draw `u`.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 || self.items == 1 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let r = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.items - 1)
    }
}

/// FNV-1a, 64 bits, of a rank's little-endian bytes (YCSB scrambles with FNV too).
fn fnv1a64(value: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.to_le_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Draws key indices in `[0, keys)`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChooser {
    keys: u64,
    zipfian: Option<Zipfian>,
}

impl KeyChooser {
    /// A chooser over `keys` (at least 1) keys.
    pub fn new(keys: u64, distribution: Distribution) -> KeyChooser {
        let keys = keys.max(1);
        let zipfian = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipfian => Some(Zipfian::new(keys, ZIPFIAN_THETA)),
        };
        KeyChooser { keys, zipfian }
    }

    /// The number of keys.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The key index for draw `u`.
    pub fn next(&self, u: f64) -> u64 {
        match &self.zipfian {
            None => ((u * self.keys as f64) as u64).min(self.keys - 1),
            Some(z) => fnv1a64(z.rank(u)) % self.keys,
        }
    }
}

/// The name of key `index`: `prefix` and the index, zero-padded to 10 digits.
pub fn key_name(prefix: &str, index: u64) -> String {
    format!("{prefix}{index:010}")
}

/// A fixed-rate schedule: operation `i` is due `i / rate` seconds after the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    rate: f64,
}

impl OpenLoop {
    /// A schedule of `rate` operations per second (must be positive and finite).
    pub fn new(rate: f64) -> Option<OpenLoop> {
        (rate.is_finite() && rate > 0.0).then_some(OpenLoop { rate })
    }

    /// The target rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When operation `i` is due, after the start.
    pub fn due(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many operations are due within `duration` of the start.
    pub fn ops_within(&self, duration: Duration) -> u64 {
        (duration.as_secs_f64() * self.rate).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_and_mixes() {
        for w in Workload::ALL {
            assert_eq!(w.as_str().parse::<Workload>(), Ok(w));
        }
        assert_eq!("A".parse::<Workload>(), Ok(Workload::A));
        assert!("d".parse::<Workload>().is_err());
        assert_eq!(Workload::A.next_op(0.49), OpKind::Read);
        assert_eq!(Workload::A.next_op(0.5), OpKind::Update);
        assert_eq!(Workload::B.next_op(0.949), OpKind::Read);
        assert_eq!(Workload::B.next_op(0.95), OpKind::Update);
        assert_eq!(Workload::C.next_op(0.999), OpKind::Read);
        assert_eq!(Workload::Write.next_op(0.0), OpKind::Update);
        assert_eq!(Workload::Counter.next_op(0.3), OpKind::Incr);
        assert_eq!(Workload::Set.next_op(0.2), OpKind::SetAdd);
        assert_eq!(Workload::Set.next_op(0.7), OpKind::SetRemove);
        assert_eq!(Workload::Counter.default_keyspace(), "counters");
        assert!(Workload::B.reads() && !Workload::Write.reads());
    }

    #[test]
    fn mix_fractions_hold_over_many_draws() {
        let n = 10_000;
        let reads = (0..n).filter(|i| Workload::B.next_op(*i as f64 / n as f64) == OpKind::Read).count();
        assert_eq!(reads, 9_500);
    }

    #[test]
    fn uniform_keys_cover_the_range() {
        let c = KeyChooser::new(10, Distribution::Uniform);
        assert_eq!(c.next(0.0), 0);
        assert_eq!(c.next(0.999_999), 9);
        let mut seen = [false; 10];
        for i in 0..100 {
            seen[c.next(i as f64 / 100.0) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn zipfian_ranks_are_skewed_and_in_range() {
        let z = Zipfian::new(1000, ZIPFIAN_THETA);
        let n = 100_000;
        let mut counts = vec![0u32; 1000];
        for i in 0..n {
            let r = z.rank((i as f64 + 0.5) / n as f64);
            counts[r as usize] += 1;
        }
        // With θ = 0.99 over 1000 items, rank 0 takes about 1/zeta(1000) ≈ 13 % of draws.
        let top = f64::from(counts[0]) / n as f64;
        assert!((0.11..0.16).contains(&top), "rank 0 drew {top}");
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        assert_eq!(Zipfian::new(1, ZIPFIAN_THETA).rank(0.99), 0);
        assert!(Zipfian::new(2, ZIPFIAN_THETA).rank(0.99) <= 1);
    }

    #[test]
    fn scrambled_zipfian_keys_spread_the_hot_ranks() {
        let c = KeyChooser::new(1_000_000, Distribution::Zipfian);
        let hot = c.next(0.0);
        assert!(hot < 1_000_000);
        assert_ne!(hot, 0, "rank 0 is hashed away from index 0");
        assert_eq!(c.next(0.0), hot, "deterministic");
    }

    #[test]
    fn open_loop_schedule() {
        assert!(OpenLoop::new(0.0).is_none() && OpenLoop::new(f64::NAN).is_none());
        let s = OpenLoop::new(1000.0).expect("rate");
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1500), Duration::from_millis(1500));
        assert_eq!(s.ops_within(Duration::from_secs(2)), 2000);
        assert_eq!(key_name("k", 42), "k0000000042");
    }
}
