//! A WAN emulator: a delaying, dropping UDP relay between regions, for machines without
//! `netem` (this kernel has none).
//!
//! QUIC between regions goes through it and sees inter-region latency, jitter, loss, a
//! bandwidth limit and partitions, all switchable at run time. Integration tests run it
//! in-process, so does `meridian dev --regions N` in its supervisor, and so can benchmarks.
//!
//! ```no_run
//! # async fn example(eu_west_endpoint: std::net::SocketAddr) -> std::io::Result<()> {
//! use std::time::Duration;
//! use meridian_wan::emulator::{default_delays, Emulator};
//!
//! let emulator = Emulator::new(42);
//! emulator.set_delays(default_delays());
//! // us-east's nodes dial `front` instead of eu-west's endpoint.
//! let front = emulator.add_link("us-east", "eu-west", eu_west_endpoint).await?;
//! emulator.partition("us-east", "eu-west");
//! emulator.heal("us-east", "eu-west");
//! println!("{:?}", emulator.stats("us-east", "eu-west"));
//! emulator.shutdown().await;
//! # let _ = (front, Duration::ZERO); Ok(()) }
//! ```
//!
//! # Model
//!
//! A **link** ([`Emulator::add_link`]) is a UDP socket, the **front**, bound to
//! `127.0.0.1:0`, that stands for region `to`'s `target` as seen from region `from`. Each
//! datagram arriving at the front from a client address `C` is forwarded to `target` from an
//! **upstream** socket dedicated to `C` (created on `C`'s first datagram, like a NAT mapping),
//! after the `from` → `to` one-way delay; what `target` sends to that upstream socket goes
//! back to `C` from the front after the `to` → `from` delay. The client sees the front as its
//! peer, the server sees the upstream socket: QUIC works through it unchanged. Connections
//! are opened from the `from` side only; the other way round is another link
//! (`add_link(to, from, ..)`). Mappings idle for
//! [`EmulatorConfig::mapping_idle_timeout`] (60 s) are removed; the next datagram opens a new
//! one with a new upstream port, which a QUIC server sees as a client migration.
//! [`Emulator::retarget`] points a link at another address (a supervisor can bind the fronts
//! first, hand them out as peer addresses, and fill in the servers' port-0 addresses later).
//!
//! A [`LinkSpec`] per ordered pair of region names says what happens to datagrams
//! (partition, loss, bandwidth, delay and jitter, in that order; see its documentation, also
//! for **reordering**). It is shared by every link of that pair, and so are the bandwidth
//! state and the [`LinkStats`]. Spec changes take effect for datagrams arriving after the
//! change; datagrams already scheduled keep their delivery time (a partition therefore lets
//! what is already in flight, at most `delay + jitter` of traffic, arrive).
//!
//! Randomness comes from seeded [`SmallRng`](rand::rngs::SmallRng)s, one per link direction
//! (see [`EmulatorConfig::seed`]): the same seed and the same arrival order give the same
//! losses and jitter. Delivery times are honoured to the resolution of tokio's timer (1 ms,
//! rounded up): a datagram is never early, and may be up to about a millisecond late, more on
//! a loaded machine.
//!
//! # Not emulated
//!
//! No MTU changes or fragmentation (any datagram up to 64 KiB passes), no duplication, no
//! corruption, no ECN marks (they are not carried: QUIC's ECN validation fails and it goes
//! on without ECN), no IP-level effects (TTL, ICMP: a dead target is silence, not "port
//! unreachable"). The bandwidth limit counts UDP payload bytes only. See
//! `docs/wan-emulator.md`.
//!
//! # Layout
//!
//! - this file: [`Emulator`] (the handle: links, retargeting, specs, stats, shutdown) and
//!   [`default_delays`];
//! - [`config`]: [`EmulatorConfig`] (seed, mapping idle timeout, bind address, backlog);
//! - [`spec`]: [`LinkSpec`], the behaviour of one direction;
//! - [`stats`]: [`LinkStats`], the counters of one direction;
//! - `shaper`: the sans-IO core (no sockets, no clock reads): the fate of a datagram, the
//!   bandwidth pacer, the delay queue, seed derivation; unit-tested;
//! - `relay`: the tokio driver: front, upstream and scheduler tasks per link (a fixed number
//!   of tasks per link and client, never one per datagram).

pub mod config;
mod relay;
mod shaper;
pub mod spec;
pub mod stats;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use config::{EmulatorConfig, DEFAULT_BACKLOG, DEFAULT_MAPPING_IDLE_TIMEOUT};
pub use spec::{LinkSpec, DEFAULT_QUEUE_LIMIT_BYTES};
pub use stats::LinkStats;

use relay::{Direction, LinkParams, RunningLink};

/// Approximate one-way delays between the regions `meridian dev` uses, for development and
/// tests: `(a, b, one-way delay)`, to apply in both directions
/// ([`Emulator::set_delays`]).
///
/// | pair | one way | round trip |
/// |---|---|---|
/// | us-east ↔ eu-west | 40 ms | 80 ms |
/// | us-east ↔ ap-southeast | 115 ms | 230 ms |
/// | eu-west ↔ ap-southeast | 85 ms | 170 ms |
///
/// Where such figures come from: cloud providers' public inter-region round-trip tables (for
/// example Azure's "network round-trip latency statistics" page and Google Cloud's
/// inter-region latency dashboard in Network Intelligence Center) and community measurements
/// between AWS regions (cloudping.co, and the older tables built on it) or between cities
/// (WonderNetwork's ping tables). For Virginia–Ireland, Virginia–Singapore and
/// Ireland–Singapore pairings they land around 70–90 ms, 210–240 ms and 160–180 ms round
/// trip; the last one has been as high as ~240 ms in older (2017) AWS measurements, when that
/// traffic went the long way round. The exact values depend on the provider, the cities
/// behind each region name, the routing of the day; these are round numbers in that range,
/// not a measurement. Other region names `meridian dev` knows (`us-west`, `sa-east`) get no
/// default: set them explicitly.
pub fn default_delays() -> Vec<(&'static str, &'static str, Duration)> {
    vec![
        ("us-east", "eu-west", Duration::from_millis(40)),
        ("us-east", "ap-southeast", Duration::from_millis(115)),
        ("eu-west", "ap-southeast", Duration::from_millis(85)),
    ]
}

/// Describes one link of an [`Emulator`] ([`Emulator::links`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The region whose nodes dial the front.
    pub from: String,
    /// The region the front stands for.
    pub to: String,
    /// The front address (what [`Emulator::add_link`] returned).
    pub front: SocketAddr,
    /// The real address behind the front (`None` for a pending link not yet retargeted).
    pub target: Option<SocketAddr>,
    /// Live client mappings.
    pub mappings: usize,
}

/// The WAN emulator. Cheap to clone (an `Arc` inside); every clone controls the same links.
/// Its tasks stop on [`shutdown`](Self::shutdown), or when the last clone is dropped.
///
/// Must be used inside a tokio runtime with the time and I/O drivers enabled.
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

type Pair = (String, String);

#[derive(Debug)]
struct Inner {
    config: EmulatorConfig,
    /// Per ordered pair `(from, to)`: spec, bandwidth state, counters.
    directions: RwLock<HashMap<Pair, Arc<Direction>>>,
    /// Links added per ordered pair (the ordinal of the next one, for its seed).
    ordinals: Mutex<HashMap<Pair, u64>>,
    links: Mutex<Vec<(LinkInfo, RunningLink)>>,
    shut_down: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for (_, link) in self.links.get_mut().drain(..) {
            link.abort();
        }
    }
}

impl Emulator {
    /// An emulator with the default [`EmulatorConfig`] and this seed.
    pub fn new(seed: u64) -> Self {
        Self::with_config(EmulatorConfig::new(seed))
    }

    /// An emulator with these settings.
    pub fn with_config(config: EmulatorConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                directions: RwLock::default(),
                ordinals: Mutex::default(),
                links: Mutex::default(),
                shut_down: AtomicBool::new(false),
            }),
        }
    }

    /// The settings this emulator was built with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    /// Adds a link that stands for `target` (in region `to`) as seen from region `from`, and
    /// returns its front address: `from`'s nodes send to it instead of `target`. Both
    /// directions use the specs of the pair, `from` → `to` for client datagrams and `to` →
    /// `from` for the answers. Several links may exist for one pair (one per node of `to`,
    /// say); they share specs, bandwidth and counters.
    ///
    /// Errors: `target` is a front of this emulator ([`io::ErrorKind::InvalidInput`]: it would
    /// loop), binding the front socket failed, or the emulator was shut down.
    pub async fn add_link(&self, from: &str, to: &str, target: SocketAddr) -> io::Result<SocketAddr> {
        self.check_not_a_front(target)?;
        self.start_link(from, to, Some(target)).await
    }

    /// Adds a link without a target yet, and returns its front address: datagrams arriving at
    /// it are dropped (counted in [`LinkStats::packets_dropped_no_target`]) until
    /// [`retarget`](Self::retarget) gives it one. For supervisors that must hand out the
    /// front addresses before the servers behind them have bound theirs (port 0).
    ///
    /// Errors: as [`add_link`](Self::add_link).
    pub async fn add_pending_link(&self, from: &str, to: &str) -> io::Result<SocketAddr> {
        self.start_link(from, to, None).await
    }

    async fn start_link(&self, from: &str, to: &str, target: Option<SocketAddr>) -> io::Result<SocketAddr> {
        if self.is_shut_down() {
            return Err(shut_down_error());
        }
        let ordinal = {
            let mut ordinals = self.inner.ordinals.lock();
            let next = ordinals.entry((from.to_owned(), to.to_owned())).or_insert(0);
            *next += 1;
            *next - 1
        };
        let seed = self.inner.config.seed;
        let params = LinkParams {
            label: format!("{from}->{to}").into(),
            target,
            bind_ip: self.inner.config.bind_ip,
            idle_timeout: self.inner.config.mapping_idle_timeout,
            backlog: self.inner.config.backlog,
            forward: self.direction(from, to),
            reverse: self.direction(to, from),
            forward_seed: shaper::link_seed(seed, from, to, ordinal),
            reverse_seed: shaper::link_seed(seed, to, from, ordinal),
        };
        let link = relay::start(params).await?;
        let front = link.front_addr;
        let mut links = self.inner.links.lock();
        if self.is_shut_down() {
            // Shut down while we were binding: do not leave tasks behind.
            drop(links);
            link.abort();
            return Err(shut_down_error());
        }
        let info = LinkInfo { from: from.to_owned(), to: to.to_owned(), front, target, mappings: 0 };
        tracing::debug!(from, to, %front, ?target, "emulator: link added");
        links.push((info, link));
        Ok(front)
    }

    /// Sets the spec of the direction `from` → `to` (whether or not a link exists for it yet).
    /// A `loss` outside `0.0..=1.0` is clamped (NaN: `0.0`) and a zero bandwidth raised to 1,
    /// with a warning.
    pub fn set(&self, from: &str, to: &str, spec: LinkSpec) {
        self.update(from, to, |s| *s = spec);
    }

    /// The spec of the direction `from` → `to` (the default if it was never set).
    pub fn spec(&self, from: &str, to: &str) -> LinkSpec {
        self.inner.directions.read().get(&pair(from, to)).map(|d| *d.spec.read()).unwrap_or_default()
    }

    /// Changes the spec of the direction `from` → `to` in place (atomically: concurrent
    /// updates of the same direction do not lose each other's changes). The result is
    /// normalized as in [`set`](Self::set).
    pub fn update(&self, from: &str, to: &str, change: impl FnOnce(&mut LinkSpec)) {
        let direction = self.direction(from, to);
        let mut current = direction.spec.write();
        let mut spec = *current;
        change(&mut spec);
        let (spec, changed) = spec.normalized();
        if changed {
            tracing::warn!(from, to, ?spec, "emulator: link spec out of range; clamped");
        }
        *current = spec;
    }

    /// Sets the one-way delay of both directions between `a` and `b`, keeping the rest of
    /// their specs.
    pub fn set_delay(&self, a: &str, b: &str, one_way: Duration) {
        self.update(a, b, |s| s.delay = one_way);
        self.update(b, a, |s| s.delay = one_way);
    }

    /// [`set_delay`](Self::set_delay) for each `(a, b, one_way)`, e.g. [`default_delays`].
    pub fn set_delays<'a>(&self, delays: impl IntoIterator<Item = (&'a str, &'a str, Duration)>) {
        for (a, b, one_way) in delays {
            self.set_delay(a, b, one_way);
        }
    }

    /// Cuts both directions between `a` and `b`: arriving datagrams are dropped (and counted in
    /// [`LinkStats::packets_dropped_partition`]).
    pub fn partition(&self, a: &str, b: &str) {
        self.update(a, b, |s| s.partitioned = true);
        self.update(b, a, |s| s.partitioned = true);
    }

    /// Undoes [`partition`](Self::partition) between `a` and `b`.
    pub fn heal(&self, a: &str, b: &str) {
        self.update(a, b, |s| s.partitioned = false);
        self.update(b, a, |s| s.partitioned = false);
    }

    /// Partitions every direction from or to `region` that the emulator knows of (every pair
    /// that has a link or a spec). A pair first configured later is not affected.
    pub fn partition_region(&self, region: &str) {
        self.set_partitioned_touching(region, true);
    }

    /// Heals every direction from or to `region` that the emulator knows of, including
    /// partitions made with [`partition`](Self::partition).
    pub fn heal_region(&self, region: &str) {
        self.set_partitioned_touching(region, false);
    }

    /// The counters of the direction `from` → `to`, over every link of that pair (all zero if
    /// the pair is unknown).
    pub fn stats(&self, from: &str, to: &str) -> LinkStats {
        self.inner.directions.read().get(&pair(from, to)).map(|d| d.counters.snapshot()).unwrap_or_default()
    }

    /// The links added so far, in order.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.inner
            .links
            .lock()
            .iter()
            .map(|(info, link)| LinkInfo { target: link.target(), mappings: link.mappings(), ..info.clone() })
            .collect()
    }

    /// Points the link whose front is `front` at another target. Later datagrams from clients
    /// go to `target` through new client mappings (new upstream sockets); existing mappings are
    /// closed, and datagrams already scheduled still go where they were going.
    ///
    /// This lets a supervisor bind the fronts first, hand them out as the peers' addresses,
    /// and fill in the real addresses once the servers have bound theirs (port 0).
    ///
    /// Errors: no link has this front ([`io::ErrorKind::NotFound`]); `target` is a front of
    /// this emulator ([`io::ErrorKind::InvalidInput`]).
    pub fn retarget(&self, front: SocketAddr, target: SocketAddr) -> io::Result<()> {
        self.check_not_a_front(target)?;
        let links = self.inner.links.lock();
        let (info, link) = links.iter().find(|(info, _)| info.front == front).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("the WAN emulator has no link with front {front}"))
        })?;
        tracing::debug!(from = %info.from, to = %info.to, %front, %target, "emulator: link retargeted");
        link.retarget(target);
        Ok(())
    }

    /// Stops every task and closes every socket of every link, then returns. Datagrams in
    /// flight are lost. Later [`add_link`](Self::add_link) calls fail; the other methods still
    /// work (on specs and counters only). Idempotent.
    pub async fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        let links: Vec<_> = self.inner.links.lock().drain(..).collect();
        let handles: Vec<_> = links.into_iter().flat_map(|(_, link)| link.abort()).collect();
        for handle in handles {
            // Aborted tasks end with a cancellation error; a panic in one has been logged by
            // tokio's default hook already.
            let _ = handle.await;
        }
    }

    /// A link whose target is one of our fronts would feed itself, at full speed when the
    /// delay is zero.
    fn check_not_a_front(&self, target: SocketAddr) -> io::Result<()> {
        if self.inner.links.lock().iter().any(|(info, _)| info.front == target) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{target} is a front of this WAN emulator: a link to it would loop"),
            ));
        }
        Ok(())
    }

    fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::SeqCst)
    }

    fn direction(&self, from: &str, to: &str) -> Arc<Direction> {
        if let Some(direction) = self.inner.directions.read().get(&pair(from, to)) {
            return direction.clone();
        }
        self.inner.directions.write().entry(pair(from, to)).or_default().clone()
    }

    fn set_partitioned_touching(&self, region: &str, partitioned: bool) {
        let directions = self.inner.directions.read();
        for ((from, to), direction) in directions.iter() {
            if from == region || to == region {
                direction.spec.write().partitioned = partitioned;
            }
        }
    }
}

fn pair(from: &str, to: &str) -> Pair {
    (from.to_owned(), to.to_owned())
}

fn shut_down_error() -> io::Error {
    io::Error::other("the WAN emulator has been shut down")
}
