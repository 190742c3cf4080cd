//! [`LinkSpec`]: what one direction of an emulated link does to the datagrams it carries.

use std::time::Duration;

/// Bytes the bandwidth queue of a direction may hold by default (see
/// [`LinkSpec::queue_limit_bytes`]): 256 KiB, about 20 ms at 100 Mbit/s.
pub const DEFAULT_QUEUE_LIMIT_BYTES: u64 = 256 * 1024;

/// The behaviour of one direction (`from` → `to`) of an emulated link.
///
/// The default is a perfect link: no delay, no jitter, no loss, no bandwidth limit, not
/// partitioned. Every field applies to datagrams that arrive after it was set
/// ([`Emulator::set`](super::Emulator::set)); datagrams already scheduled keep the fate they
/// were given on arrival.
///
/// Each arriving datagram, in this order:
///
/// 1. is dropped if [`partitioned`](Self::partitioned);
/// 2. is dropped with probability [`loss`](Self::loss);
/// 3. with a [`bandwidth_bytes_per_sec`](Self::bandwidth_bytes_per_sec), waits for the
///    datagrams queued before it to be "transmitted" at that rate, then takes `len / rate`
///    itself; it is dropped instead if the queue already holds more than
///    [`queue_limit_bytes`](Self::queue_limit_bytes) (a drop-tail router buffer);
/// 4. is delivered after a one-way [`delay`](Self::delay) plus a uniform offset in
///    `[-jitter, +jitter]`, never before it was (fully) received.
///
/// **Reordering.** Each datagram draws its own jitter, so two datagrams that arrive less than
/// `2 × jitter` apart may be delivered in the opposite order, as on real networks (and as with
/// Linux netem); datagrams further apart never swap. A change of `delay` at run time can also
/// let later datagrams overtake earlier ones (a shorter delay). Set [`in_order`](Self::in_order)
/// to forbid reordering within one emulated link: a datagram is then never delivered before
/// the one that arrived before it, which turns jitter into extra delay for the followers.
/// (QUIC tolerates reordering, but deep reordering looks like loss to its packet-threshold loss
/// detection and costs spurious retransmissions.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSpec {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Half-width of the uniform jitter added to `delay` (the result is clamped at zero).
    pub jitter: Duration,
    /// Probability in `0.0..=1.0` that a datagram is lost. Values outside are clamped, NaN is
    /// treated as `0.0` (with a warning in the log).
    pub loss: f64,
    /// Serialization rate of the direction in bytes per second (UDP payload bytes; headers are
    /// not counted). `None`: unlimited. `Some(0)` is treated as `Some(1)`.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// With a bandwidth limit: how many bytes may wait to be transmitted before arriving
    /// datagrams are dropped. Ignored without a limit.
    pub queue_limit_bytes: u64,
    /// Forbid reordering within one emulated link (see the type documentation).
    pub in_order: bool,
    /// Drop everything.
    pub partitioned: bool,
}

impl Default for LinkSpec {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            bandwidth_bytes_per_sec: None,
            queue_limit_bytes: DEFAULT_QUEUE_LIMIT_BYTES,
            in_order: false,
            partitioned: false,
        }
    }
}

impl LinkSpec {
    /// A link with this one-way delay and nothing else.
    pub fn with_delay(delay: Duration) -> Self {
        Self { delay, ..Self::default() }
    }

    /// The same spec with `jitter`.
    pub fn jitter(self, jitter: Duration) -> Self {
        Self { jitter, ..self }
    }

    /// The same spec with `loss` (a probability).
    pub fn loss(self, loss: f64) -> Self {
        Self { loss, ..self }
    }

    /// The same spec with a bandwidth limit in bytes per second.
    pub fn bandwidth(self, bytes_per_sec: u64) -> Self {
        Self { bandwidth_bytes_per_sec: Some(bytes_per_sec), ..self }
    }

    /// The spec with its values brought into range: `loss` clamped to `0.0..=1.0` (NaN: `0.0`),
    /// a zero bandwidth raised to one byte per second. Returns whether anything changed.
    pub(crate) fn normalized(mut self) -> (Self, bool) {
        let mut changed = false;
        if self.loss.is_nan() {
            self.loss = 0.0;
            changed = true;
        } else if !(0.0..=1.0).contains(&self.loss) {
            self.loss = self.loss.clamp(0.0, 1.0);
            changed = true;
        }
        if self.bandwidth_bytes_per_sec == Some(0) {
            self.bandwidth_bytes_per_sec = Some(1);
            changed = true;
        }
        (self, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_clamps_loss_and_zero_bandwidth() {
        let (spec, changed) = LinkSpec::default().loss(f64::NAN).normalized();
        assert!(changed);
        assert_eq!(spec.loss, 0.0);
        let (spec, changed) = LinkSpec::default().loss(1.5).bandwidth(0).normalized();
        assert!(changed);
        assert_eq!(spec.loss, 1.0);
        assert_eq!(spec.bandwidth_bytes_per_sec, Some(1));
        let (spec, changed) = LinkSpec::with_delay(Duration::from_millis(5)).loss(0.25).normalized();
        assert!(!changed);
        assert_eq!(spec, LinkSpec::with_delay(Duration::from_millis(5)).loss(0.25));
    }
}
