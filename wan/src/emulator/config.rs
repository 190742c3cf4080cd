//! [`EmulatorConfig`]: the settings of an [`Emulator`](super::Emulator) that are fixed at
//! construction (link behaviour is set at run time with [`LinkSpec`](super::LinkSpec)).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// How long a client mapping may stay idle (no datagram either way) before its upstream
/// socket is closed, by default.
pub const DEFAULT_MAPPING_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Datagrams that may wait between a link's receiving tasks and its scheduling task, per
/// direction, before arrivals are dropped and counted in
/// [`LinkStats::packets_dropped_overflow`](super::LinkStats::packets_dropped_overflow).
pub const DEFAULT_BACKLOG: usize = 8192;

/// Construction-time settings of an [`Emulator`](super::Emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// Seed of the random numbers (loss and jitter). Each link direction draws from its own
    /// generator, derived from this seed, the two region names and the order in which the links
    /// of that pair were added, so a run is reproducible as long as the datagrams of each link
    /// arrive in the same order.
    pub seed: u64,
    /// Idle time after which a client mapping (and its upstream socket) is removed. The next
    /// datagram from that client creates a new mapping, which the server sees as a new peer
    /// address (QUIC treats it as a migration). Default: 60 s.
    pub mapping_idle_timeout: Duration,
    /// The address front and upstream sockets bind to (with port 0). Default: `127.0.0.1`.
    /// An upstream socket for an IPv6 loopback target binds `::1` instead.
    pub bind_ip: IpAddr,
    /// See [`DEFAULT_BACKLOG`]; at least 1.
    pub backlog: usize,
}

impl EmulatorConfig {
    /// The defaults with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            mapping_idle_timeout: DEFAULT_MAPPING_IDLE_TIMEOUT,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            backlog: DEFAULT_BACKLOG,
        }
    }

    /// The same settings with another mapping idle timeout.
    pub fn mapping_idle_timeout(self, timeout: Duration) -> Self {
        Self { mapping_idle_timeout: timeout, ..self }
    }
}
