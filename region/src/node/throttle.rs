//! A rate limit on bytes (or items) per second for background work: anti-entropy, range
//! streaming, hint replay. Time is tokio's, so simulations control it.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Paces work to at most `rate` units per second: each `consume(n)` books `n` units and sleeps
/// until the booked total is within the rate (a virtual-clock scheduler: no bursts beyond
/// one `consume`).
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    /// When the units booked so far will have been "paid for".
    next_free: Mutex<Option<Instant>>,
}

impl Throttle {
    /// At most `rate` units per second (at least 1).
    pub fn new(rate: u64) -> Throttle {
        Throttle { rate: rate.max(1), next_free: Mutex::new(None) }
    }

    /// How long `n` units take at the rate.
    fn cost(&self, n: u64) -> Duration {
        Duration::from_secs_f64(n as f64 / self.rate as f64)
    }

    /// Books `n` units and waits until the rate allows them.
    pub async fn consume(&self, n: u64) {
        let wait_until = {
            let mut next = self.next_free.lock();
            let now = Instant::now();
            let start = next.filter(|t| *t > now).unwrap_or(now);
            let end = start + self.cost(n);
            *next = Some(end);
            // The first units of an idle period go at once; later ones wait their turn.
            start
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_to_the_rate() {
        let t = Throttle::new(1000);
        let start = Instant::now();
        for _ in 0..10 {
            t.consume(500).await;
        }
        // 5,000 units at 1,000/s: the tenth consume starts after 4.5 s of booked units.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(4500) && elapsed < Duration::from_millis(4600), "{elapsed:?}");
    }
}
