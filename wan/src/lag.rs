//! Replication lag: how long after its write (its HLC's physical time) a change was applied in
//! another region, as a histogram with a recent window.
//!
//! Buckets are 1 ms wide up to 1 s, 10 ms up to 10 s, 100 ms up to 100 s, then one overflow
//! bucket, so percentiles are exact to the bucket width. [`LagWindow`] keeps the last two
//! periods (default 30 s each), so `recent()` covers between one and two periods.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

const FINE: u64 = 1_000;
const MID: u64 = 10_000;
const COARSE: u64 = 100_000;
const BUCKETS: usize = 1_000 + 900 + 900 + 1;

/// A histogram of lags in milliseconds.
#[derive(Debug, Clone)]
pub struct LagHistogram {
    counts: Vec<u64>,
    total: u64,
    max_ms: u64,
    sum_ms: u64,
}

impl Default for LagHistogram {
    fn default() -> Self {
        LagHistogram { counts: vec![0; BUCKETS], total: 0, max_ms: 0, sum_ms: 0 }
    }
}

fn bucket(ms: u64) -> usize {
    if ms < FINE {
        ms as usize
    } else if ms < MID {
        1_000 + ((ms - FINE) / 10) as usize
    } else if ms < COARSE {
        1_900 + ((ms - MID) / 100) as usize
    } else {
        BUCKETS - 1
    }
}

/// The upper bound (ms) of a bucket.
fn upper(b: usize) -> u64 {
    if b < 1_000 {
        b as u64
    } else if b < 1_900 {
        FINE + (b as u64 - 1_000 + 1) * 10
    } else if b < BUCKETS - 1 {
        MID + (b as u64 - 1_900 + 1) * 100
    } else {
        u64::MAX
    }
}

impl LagHistogram {
    /// Records one lag.
    pub fn record(&mut self, ms: u64) {
        self.counts[bucket(ms)] += 1;
        self.total += 1;
        self.max_ms = self.max_ms.max(ms);
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// The sum of all samples, in ms.
    pub fn sum_ms(&self) -> u64 {
        self.sum_ms
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `p`-quantile (0..=1) in ms, the upper bound of its bucket (the overflow bucket
    /// reports the maximum seen); `None` without samples.
    pub fn quantile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(if b == BUCKETS - 1 { self.max_ms } else { upper(b).min(self.max_ms) });
            }
        }
        Some(self.max_ms)
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &LagHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    /// Every non-empty bucket as `(upper bound ms, count)`, in increasing order: exact to
    /// 1 ms below 1 s, 10 ms below 10 s, 100 ms below 100 s; the overflow bucket's bound is the
    /// largest lag seen. Two snapshots of one histogram subtract bucket by bucket (the bounds
    /// are stable, except the overflow's), which is how `meridian bench --lag` measures the
    /// lag of one phase.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (if b == BUCKETS - 1 { self.max_ms } else { upper(b) }, *c))
            .collect()
    }

    /// The bucket upper bounds (ms) and cumulative counts, for Prometheus-style export at the
    /// given bounds.
    pub fn cumulative(&self, bounds_ms: &[u64]) -> Vec<(u64, u64)> {
        bounds_ms
            .iter()
            .map(|&le| (le, self.counts.iter().enumerate().filter(|(b, _)| upper(*b) <= le).map(|(_, c)| c).sum()))
            .collect()
    }
}

/// All-time and recent lag of one region pair.
#[derive(Debug)]
pub struct LagWindow {
    inner: Mutex<WindowInner>,
    period: Duration,
}

#[derive(Debug)]
struct WindowInner {
    all: LagHistogram,
    current: LagHistogram,
    previous: LagHistogram,
    since: Instant,
    last_ms: Option<u64>,
}

impl LagWindow {
    /// A window rotating every `period`.
    pub fn new(period: Duration) -> LagWindow {
        LagWindow {
            inner: Mutex::new(WindowInner {
                all: LagHistogram::default(),
                current: LagHistogram::default(),
                previous: LagHistogram::default(),
                since: Instant::now(),
                last_ms: None,
            }),
            period,
        }
    }

    fn rotate(&self, w: &mut WindowInner) {
        if w.since.elapsed() >= self.period {
            w.previous = std::mem::take(&mut w.current);
            w.since = Instant::now();
        }
    }

    /// Records a lag observed at wall time `now_ms`.
    pub fn record(&self, lag_ms: u64, now_ms: u64) {
        let mut w = self.inner.lock();
        self.rotate(&mut w);
        w.all.record(lag_ms);
        w.current.record(lag_ms);
        w.last_ms = Some(now_ms);
    }

    /// The samples of the last one to two periods.
    pub fn recent(&self) -> LagHistogram {
        let mut w = self.inner.lock();
        self.rotate(&mut w);
        let mut h = w.previous.clone();
        h.merge(&w.current);
        h
    }

    /// Every sample since start.
    pub fn all(&self) -> LagHistogram {
        self.inner.lock().all.clone()
    }

    /// When the last change was applied (ms since the UNIX epoch).
    pub fn last_applied_ms(&self) -> Option<u64> {
        self.inner.lock().last_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_list_the_non_empty_ones_by_upper_bound() {
        let mut h = LagHistogram::default();
        for ms in [3, 3, 52, 1_234, 250_000] {
            h.record(ms);
        }
        assert_eq!(h.buckets(), vec![(3, 2), (52, 1), (1_240, 1), (250_000, 1)]);
        assert!(LagHistogram::default().buckets().is_empty());
    }

    #[test]
    fn quantiles_are_exact_to_the_bucket() {
        let mut h = LagHistogram::default();
        for ms in 1..=100 {
            h.record(ms);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        let mut h = LagHistogram::default();
        h.record(5_555);
        assert_eq!(h.quantile(0.5), Some(5_555), "capped at the maximum seen");
        h.record(500_000);
        assert_eq!(h.quantile(1.0), Some(500_000));
        assert_eq!(LagHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn buckets_are_monotone_and_cover_everything() {
        let mut prev = 0;
        for ms in [0, 1, 999, 1_000, 1_009, 1_010, 9_999, 10_000, 99_999, 100_000, u64::MAX] {
            let b = bucket(ms);
            assert!(b >= prev && b < BUCKETS, "{ms}");
            assert!(upper(b) >= ms.min(COARSE), "{ms} <= upper({b})");
            prev = b;
        }
    }
}
