//! Counters per link direction: [`LinkStats`] (a snapshot) and the atomics behind it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters of one direction (`from` → `to`) of the emulator, summed over
/// every link added for that pair of regions ([`Emulator::stats`](super::Emulator::stats)).
///
/// Every datagram counted in `packets_received` ends up in exactly one of the other packet
/// counters (forwarded, one of the drops, or a send error) once it leaves the emulator; the
/// difference is what is in flight (being delayed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams that entered this direction.
    pub packets_received: u64,
    /// Datagrams sent on to their destination.
    pub packets_forwarded: u64,
    /// Payload bytes of `packets_forwarded`.
    pub bytes_forwarded: u64,
    /// Datagrams dropped by [`LinkSpec::loss`](super::LinkSpec::loss).
    pub packets_dropped_loss: u64,
    /// Datagrams dropped because the direction was partitioned when they arrived.
    pub packets_dropped_partition: u64,
    /// Datagrams dropped because the bandwidth queue was full
    /// ([`LinkSpec::queue_limit_bytes`](super::LinkSpec::queue_limit_bytes)).
    pub packets_dropped_queue: u64,
    /// Datagrams that arrived at the front of a link without a target yet
    /// ([`Emulator::add_pending_link`](super::Emulator::add_pending_link)).
    pub packets_dropped_no_target: u64,
    /// Datagrams dropped because the emulator's own backlog between its receiving and its
    /// scheduling task was full (the emulator could not keep up; should stay zero).
    pub packets_dropped_overflow: u64,
    /// Datagrams whose final `send_to` failed (logged).
    pub send_errors: u64,
    /// Client mappings (upstream sockets) created. Counted on the `from` → `to` direction of a
    /// link only, the one whose clients they map.
    pub mappings_created: u64,
    /// Client mappings removed after being idle for the configured time.
    pub mappings_expired: u64,
}

impl LinkStats {
    /// All dropped datagrams, whatever the reason (send errors excluded).
    pub fn packets_dropped(&self) -> u64 {
        self.packets_dropped_loss
            + self.packets_dropped_partition
            + self.packets_dropped_queue
            + self.packets_dropped_overflow
            + self.packets_dropped_no_target
    }

    /// Datagrams that have left the emulator one way or another.
    pub fn packets_done(&self) -> u64 {
        self.packets_forwarded + self.packets_dropped() + self.send_errors
    }
}

/// The live counters of one direction.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_forwarded: AtomicU64,
    pub(crate) bytes_forwarded: AtomicU64,
    pub(crate) packets_dropped_loss: AtomicU64,
    pub(crate) packets_dropped_partition: AtomicU64,
    pub(crate) packets_dropped_queue: AtomicU64,
    pub(crate) packets_dropped_overflow: AtomicU64,
    pub(crate) packets_dropped_no_target: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) mappings_created: AtomicU64,
    pub(crate) mappings_expired: AtomicU64,
}

impl Counters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            packets_received: get(&self.packets_received),
            packets_forwarded: get(&self.packets_forwarded),
            bytes_forwarded: get(&self.bytes_forwarded),
            packets_dropped_loss: get(&self.packets_dropped_loss),
            packets_dropped_partition: get(&self.packets_dropped_partition),
            packets_dropped_queue: get(&self.packets_dropped_queue),
            packets_dropped_overflow: get(&self.packets_dropped_overflow),
            packets_dropped_no_target: get(&self.packets_dropped_no_target),
            send_errors: get(&self.send_errors),
            mappings_created: get(&self.mappings_created),
            mappings_expired: get(&self.mappings_expired),
        }
    }
}
