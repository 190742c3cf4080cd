//! The sans-IO core of the emulator: what happens to a datagram ([`Shaper::decide`]), the
//! bandwidth model ([`Pacer`]) and the queue of scheduled datagrams ([`DelayQueue`]).
//!
//! No sockets, no clock reads, no tasks: the arrival time and the spec are arguments and the
//! randomness is a seeded generator owned by the [`Shaper`], so everything here is unit-tested
//! without a network. The relay tasks in `relay.rs` are the thin driver.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::spec::LinkSpec;

/// The fate of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it at this instant.
    Deliver(Instant),
    /// Drop it.
    Drop(DropReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    Partition,
    Loss,
    Queue,
}

/// The bandwidth state of one direction, shared by every link of that pair of regions: the
/// instant the (virtual) transmitter becomes free. A datagram starts transmitting when the
/// ones before it are done and takes `len / rate`; this is a token bucket whose depth is one
/// datagram, with a drop-tail queue in front of it.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    free_at: Option<Instant>,
}

impl Pacer {
    /// Admits a datagram of `len` bytes arriving at `now` on a transmitter of `rate` bytes per
    /// second (`rate >= 1`) whose queue holds at most `queue_limit` bytes. Returns the instant
    /// its transmission ends, or `None` if the queue is full. An empty queue accepts any
    /// datagram, however large.
    pub(crate) fn admit(&mut self, now: Instant, len: usize, rate: u64, queue_limit: u64) -> Option<Instant> {
        const NANOS: u128 = 1_000_000_000;
        let rate = u128::from(rate.max(1));
        let start = match self.free_at {
            Some(free_at) if free_at > now => free_at,
            _ => now,
        };
        let backlog_bytes = (start - now).as_nanos() * rate / NANOS;
        let len = len as u128;
        if backlog_bytes > 0 && backlog_bytes + len > u128::from(queue_limit) {
            return None;
        }
        // Round up so that a sustained stream never exceeds the rate.
        let tx_nanos = (len * NANOS).div_ceil(rate);
        let done = start + Duration::from_nanos(u64::try_from(tx_nanos).unwrap_or(u64::MAX));
        self.free_at = Some(done);
        Some(done)
    }
}

/// The per-link-direction decision maker: owns the seeded generator and remembers the latest
/// delivery instant it scheduled (for [`LinkSpec::in_order`]).
#[derive(Debug)]
pub(crate) struct Shaper {
    rng: SmallRng,
    last_due: Option<Instant>,
}

impl Shaper {
    pub(crate) fn new(seed: u64) -> Self {
        Self { rng: SmallRng::seed_from_u64(seed), last_due: None }
    }

    /// Decides the fate of a datagram of `len` bytes that arrived at `arrival`, under `spec`.
    /// `pacer` is the direction's bandwidth state; it is only used (and must only be given)
    /// when `spec` has a bandwidth limit.
    ///
    /// Draws from the generator only for what the spec needs (a loss strictly between 0 and
    /// 1, a non-zero jitter), so a given spec and arrival order always give the same fates.
    pub(crate) fn decide(
        &mut self,
        spec: &LinkSpec,
        pacer: Option<&mut Pacer>,
        arrival: Instant,
        len: usize,
    ) -> Verdict {
        if spec.partitioned {
            return Verdict::Drop(DropReason::Partition);
        }
        if spec.loss >= 1.0 || (spec.loss > 0.0 && self.rng.random::<f64>() < spec.loss) {
            return Verdict::Drop(DropReason::Loss);
        }
        let ready = match (spec.bandwidth_bytes_per_sec, pacer) {
            (Some(rate), Some(pacer)) => match pacer.admit(arrival, len, rate, spec.queue_limit_bytes) {
                Some(done) => done,
                None => return Verdict::Drop(DropReason::Queue),
            },
            _ => arrival,
        };
        let mut due = ready + self.delay_with_jitter(spec);
        if spec.in_order {
            if let Some(last) = self.last_due {
                due = due.max(last);
            }
        }
        self.last_due = Some(self.last_due.map_or(due, |last| last.max(due)));
        Verdict::Deliver(due)
    }

    /// `delay + uniform(-jitter, +jitter)`, clamped at zero.
    fn delay_with_jitter(&mut self, spec: &LinkSpec) -> Duration {
        let jitter = u64::try_from(spec.jitter.as_nanos()).unwrap_or(u64::MAX / 2).min(u64::MAX / 2);
        if jitter == 0 {
            return spec.delay;
        }
        let offset = i128::from(self.rng.random_range(0..=2 * jitter)) - i128::from(jitter);
        let nanos = (spec.delay.as_nanos() as i128 + offset).max(0);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Derives the seed of one link direction from the emulator's seed, the region names and the
/// ordinal of the link among the links of that pair (FNV-1a over the names, then SplitMix64):
/// stable across runs, platforms and Rust versions, and different for every direction.
pub(crate) fn link_seed(seed: u64, from: &str, to: &str, ordinal: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(from.as_bytes());
    eat(&[0xff]);
    eat(to.as_bytes());
    eat(&[0xff]);
    eat(&ordinal.to_le_bytes());
    splitmix64(seed ^ hash)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Scheduled items ordered by due instant, first in first out among equal instants.
#[derive(Debug)]
pub(crate) struct DelayQueue<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    due: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), next_seq: 0 }
    }
}

impl<T> DelayQueue<T> {
    pub(crate) fn push(&mut self, due: Instant, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry { due, seq, item }));
    }

    /// The earliest due instant, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.due)
    }

    /// Removes and returns the earliest item if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| e.item)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn deliver(v: Verdict) -> Instant {
        match v {
            Verdict::Deliver(at) => at,
            Verdict::Drop(reason) => panic!("dropped: {reason:?}"),
        }
    }

    #[test]
    fn delay_queue_pops_by_due_then_fifo() {
        let t0 = Instant::now();
        let mut q = DelayQueue::default();
        q.push(t0 + 3 * MS, "c");
        q.push(t0 + MS, "a1");
        q.push(t0 + MS, "a2");
        q.push(t0 + 2 * MS, "b");
        assert_eq!(q.len(), 4);
        assert_eq!(q.next_due(), Some(t0 + MS));
        assert_eq!(q.pop_due(t0), None, "nothing is due before its time");
        assert_eq!(q.pop_due(t0 + MS), Some("a1"));
        assert_eq!(q.pop_due(t0 + MS), Some("a2"));
        assert_eq!(q.pop_due(t0 + MS), None);
        assert_eq!(q.pop_due(t0 + 10 * MS), Some("b"));
        assert_eq!(q.pop_due(t0 + 10 * MS), Some("c"));
        assert_eq!(q.pop_due(t0 + 10 * MS), None);
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn constant_delay_without_jitter() {
        let t0 = Instant::now();
        let mut s = Shaper::new(1);
        let spec = LinkSpec::with_delay(40 * MS);
        assert_eq!(deliver(s.decide(&spec, None, t0, 100)), t0 + 40 * MS);
    }

    #[test]
    fn jitter_stays_within_bounds_and_clamps_at_zero() {
        let t0 = Instant::now();
        let mut s = Shaper::new(7);
        let spec = LinkSpec::with_delay(10 * MS).jitter(3 * MS);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let d = deliver(s.decide(&spec, None, t0, 1)) - t0;
            assert!(d >= 7 * MS && d <= 13 * MS, "{d:?}");
            seen_low |= d < 8 * MS;
            seen_high |= d > 12 * MS;
        }
        assert!(seen_low && seen_high, "the whole range is used");
        let spec = LinkSpec::with_delay(MS).jitter(5 * MS);
        for _ in 0..200 {
            assert!(deliver(s.decide(&spec, None, t0, 1)) >= t0, "never before arrival");
        }
    }

    #[test]
    fn in_order_never_delivers_before_the_previous_datagram() {
        let t0 = Instant::now();
        let spec = LinkSpec { in_order: true, ..LinkSpec::with_delay(10 * MS).jitter(5 * MS) };
        let mut s = Shaper::new(3);
        let mut last = t0;
        for i in 0..500u32 {
            let due = deliver(s.decide(&spec, None, t0 + Duration::from_micros(u64::from(i) * 100), 1));
            assert!(due >= last);
            last = due;
        }
        // Without it, datagrams arriving closer than 2 x jitter do get reordered.
        let spec = LinkSpec { in_order: false, ..spec };
        let mut s = Shaper::new(3);
        let dues: Vec<_> = (0..500u32)
            .map(|i| deliver(s.decide(&spec, None, t0 + Duration::from_micros(u64::from(i) * 100), 1)))
            .collect();
        assert!(dues.windows(2).any(|w| w[1] < w[0]));
    }

    #[test]
    fn partition_and_certain_loss_drop_without_drawing() {
        let t0 = Instant::now();
        let mut s = Shaper::new(5);
        let cut = LinkSpec { partitioned: true, ..LinkSpec::default() };
        assert_eq!(s.decide(&cut, None, t0, 1), Verdict::Drop(DropReason::Partition));
        assert_eq!(s.decide(&LinkSpec::default().loss(1.0), None, t0, 1), Verdict::Drop(DropReason::Loss));
        for _ in 0..1000 {
            assert!(matches!(s.decide(&LinkSpec::default(), None, t0, 1), Verdict::Deliver(_)));
        }
    }

    #[test]
    fn loss_is_reproducible_with_the_seed() {
        let t0 = Instant::now();
        let spec = LinkSpec::default().loss(0.3);
        let run = |seed| {
            let mut s = Shaper::new(seed);
            (0..1000).map(|_| s.decide(&spec, None, t0, 1)).collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
        let lost = run(11).iter().filter(|v| matches!(v, Verdict::Drop(DropReason::Loss))).count();
        assert!((200..400).contains(&lost), "{lost}");
    }

    #[test]
    fn pacer_spaces_datagrams_and_drops_when_the_queue_is_full() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // 1000 bytes per second: a 100-byte datagram takes 100 ms.
        assert_eq!(p.admit(t0, 100, 1000, 250), Some(t0 + 100 * MS));
        assert_eq!(p.admit(t0, 100, 1000, 250), Some(t0 + 200 * MS), "queued behind the first");
        assert_eq!(p.admit(t0, 100, 1000, 250), None, "200 bytes queued + 100 > 250");
        // Once the transmitter is idle again, it starts at the arrival.
        assert_eq!(p.admit(t0 + MS * 1000, 100, 1000, 250), Some(t0 + 1100 * MS));
        // An empty queue takes any datagram.
        let mut p = Pacer::default();
        assert_eq!(p.admit(t0, 10_000, 1000, 10), Some(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn bandwidth_comes_before_delay() {
        let t0 = Instant::now();
        let mut s = Shaper::new(1);
        let mut p = Pacer::default();
        let spec = LinkSpec::with_delay(50 * MS).bandwidth(10_000);
        assert_eq!(deliver(s.decide(&spec, Some(&mut p), t0, 1000)), t0 + 150 * MS);
        assert_eq!(deliver(s.decide(&spec, Some(&mut p), t0, 1000)), t0 + 250 * MS);
    }

    #[test]
    fn link_seeds_are_stable_and_distinct() {
        assert_eq!(link_seed(1, "us-east", "eu-west", 0), link_seed(1, "us-east", "eu-west", 0));
        let seeds = [
            link_seed(1, "us-east", "eu-west", 0),
            link_seed(1, "eu-west", "us-east", 0),
            link_seed(1, "us-east", "eu-west", 1),
            link_seed(2, "us-east", "eu-west", 0),
            link_seed(1, "us-eas", "teu-west", 0),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
