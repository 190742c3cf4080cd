//! The tokio driver of one emulated link: the sockets and the tasks that move datagrams
//! through the [`Shaper`].
//!
//! One link (`from` → `to`, standing for `target`) runs:
//!
//! - a **front task** that receives on the front socket, creates a client mapping (an
//!   upstream socket and its task) on the first datagram of each client address, passes each
//!   datagram to the forward scheduler, and expires idle mappings;
//! - one **upstream task** per client mapping, receiving the target's answers on the
//!   upstream socket and passing them to the reverse scheduler;
//! - two **scheduler tasks**, forward (`from` → `to`) and reverse (`to` → `from`): each owns
//!   a [`Shaper`] and a [`DelayQueue`], decides every datagram's fate on receipt and sends it
//!   when due, waking with one reusable `sleep_until` timer.
//!
//! Receivers hand datagrams to a scheduler over a bounded channel; when it is full the
//! datagram is dropped and counted (`packets_dropped_overflow`). The number of tasks depends
//! on the number of links and clients, never on the traffic.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::shaper::{DelayQueue, DropReason, Pacer, Shaper, Verdict};
use super::spec::LinkSpec;
use super::stats::Counters;

/// Large enough for any UDP payload.
const MAX_DATAGRAM: usize = 65_536;
/// Pause after a failed `recv_from`, so that a persistent error cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(5);
/// Datagrams taken from the channel in one go before the scheduler sends what is due.
const ADMIT_BATCH: usize = 256;

/// The shared state of one direction of a pair of regions: its spec, its bandwidth state and
/// its counters. Every link of that pair uses it.
#[derive(Debug, Default)]
pub(crate) struct Direction {
    pub(crate) spec: RwLock<LinkSpec>,
    pub(crate) pacer: Mutex<Pacer>,
    pub(crate) counters: Counters,
}

/// Where a scheduled datagram goes: out of `socket`, to `dest`.
#[derive(Debug)]
struct Route {
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
}

#[derive(Debug)]
struct Datagram {
    arrival: Instant,
    payload: Box<[u8]>,
    route: Route,
}

/// A client address's upstream socket and the task that reads it. Dropping the mapping stops
/// the task.
#[derive(Debug)]
struct Mapping {
    upstream: Arc<UdpSocket>,
    /// The target when the mapping was made; a mapping made for an older target is replaced.
    target: SocketAddr,
    /// Milliseconds since the link's epoch of the last datagram in either direction.
    last_seen: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

type Mappings = Arc<Mutex<HashMap<SocketAddr, Mapping>>>;

/// What [`start`] needs to know about a link.
#[derive(Debug)]
pub(crate) struct LinkParams {
    /// `from->to`, for logs.
    pub(crate) label: Arc<str>,
    /// `None`: a pending link, whose datagrams are dropped until it is retargeted.
    pub(crate) target: Option<SocketAddr>,
    pub(crate) bind_ip: IpAddr,
    pub(crate) idle_timeout: Duration,
    pub(crate) backlog: usize,
    pub(crate) forward: Arc<Direction>,
    pub(crate) reverse: Arc<Direction>,
    pub(crate) forward_seed: u64,
    pub(crate) reverse_seed: u64,
}

/// The running tasks of one link.
#[derive(Debug)]
pub(crate) struct RunningLink {
    pub(crate) front_addr: SocketAddr,
    target: Arc<RwLock<Option<SocketAddr>>>,
    front_task: JoinHandle<()>,
    forward_task: JoinHandle<()>,
    reverse_task: JoinHandle<()>,
    mappings: Mappings,
}

impl RunningLink {
    /// Aborts every task of the link and returns their handles, to be awaited.
    pub(crate) fn abort(self) -> Vec<JoinHandle<()>> {
        let mut handles = vec![self.front_task, self.forward_task, self.reverse_task];
        handles.extend(self.mappings.lock().drain().filter_map(|(_, mut mapping)| mapping.task.take()));
        for handle in &handles {
            handle.abort();
        }
        handles
    }

    /// Points the link at another target: later datagrams go there through new mappings.
    pub(crate) fn retarget(&self, target: SocketAddr) {
        *self.target.write() = Some(target);
        // The front task also replaces stale mappings on their next datagram; clearing here
        // closes the old upstream sockets at once.
        self.mappings.lock().retain(|_, mapping| mapping.target == target);
    }

    /// The current target.
    pub(crate) fn target(&self) -> Option<SocketAddr> {
        *self.target.read()
    }

    /// The number of live client mappings.
    pub(crate) fn mappings(&self) -> usize {
        self.mappings.lock().len()
    }
}

/// Binds the front socket and starts the link's tasks.
pub(crate) async fn start(params: LinkParams) -> io::Result<RunningLink> {
    let front = Arc::new(UdpSocket::bind(SocketAddr::new(params.bind_ip, 0)).await?);
    let front_addr = front.local_addr()?;
    let backlog = params.backlog.max(1);
    let (forward_tx, forward_rx) = mpsc::channel(backlog);
    let (reverse_tx, reverse_rx) = mpsc::channel(backlog);
    let forward_task = tokio::spawn(schedule_loop(
        forward_rx,
        params.forward.clone(),
        Shaper::new(params.forward_seed),
        params.label.clone(),
    ));
    let reverse_task = tokio::spawn(schedule_loop(
        reverse_rx,
        params.reverse.clone(),
        Shaper::new(params.reverse_seed),
        params.label.clone(),
    ));
    let mappings = Mappings::default();
    let target = Arc::new(RwLock::new(params.target));
    let front_loop = FrontLoop {
        front,
        target: target.clone(),
        bind_ip: params.bind_ip,
        idle_timeout: params.idle_timeout,
        epoch: Instant::now(),
        forward: params.forward,
        reverse: params.reverse,
        forward_tx,
        reverse_tx,
        mappings: mappings.clone(),
        label: params.label,
    };
    let front_task = tokio::spawn(front_loop.run());
    Ok(RunningLink { front_addr, target, front_task, forward_task, reverse_task, mappings })
}

/// The address an upstream socket binds: the loopback address of the target's family for a
/// loopback target, else the configured address.
fn upstream_ip(bind_ip: IpAddr, target: SocketAddr) -> IpAddr {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && bind_ip.is_ipv6() => IpAddr::V4(ip),
        IpAddr::V6(ip) if ip.is_loopback() && bind_ip.is_ipv4() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => bind_ip,
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How often idle mappings are looked for: a quarter of the timeout, within [10 ms, 5 s].
fn sweep_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
}

/// Hands a datagram to a scheduler, counting it as received, or as an overflow drop.
fn hand_over(tx: &mpsc::Sender<Datagram>, direction: &Direction, datagram: Datagram, label: &str) {
    Counters::inc(&direction.counters.packets_received);
    match tx.try_send(datagram) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            Counters::inc(&direction.counters.packets_dropped_overflow);
            tracing::debug!(link = label, "emulator backlog full; datagram dropped");
        }
        // The scheduler is gone: the emulator is shutting down.
        Err(TrySendError::Closed(_)) => Counters::inc(&direction.counters.packets_dropped_overflow),
    }
}

#[derive(Debug)]
struct FrontLoop {
    front: Arc<UdpSocket>,
    target: Arc<RwLock<Option<SocketAddr>>>,
    bind_ip: IpAddr,
    idle_timeout: Duration,
    epoch: Instant,
    forward: Arc<Direction>,
    reverse: Arc<Direction>,
    forward_tx: mpsc::Sender<Datagram>,
    reverse_tx: mpsc::Sender<Datagram>,
    mappings: Mappings,
    label: Arc<str>,
}

impl FrontLoop {
    async fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut sweep = tokio::time::interval(sweep_period(self.idle_timeout));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = self.front.recv_from(&mut buf) => match received {
                    Ok((len, client)) => self.on_datagram(&buf[..len], client).await,
                    Err(e) => {
                        tracing::warn!(link = &*self.label, error = %e, "emulator front socket: recv_from failed");
                        tokio::time::sleep(ERROR_BACKOFF).await;
                    }
                },
                _ = sweep.tick() => self.expire_idle(),
            }
        }
    }

    async fn on_datagram(&self, payload: &[u8], client: SocketAddr) {
        let arrival = Instant::now();
        let now_ms = millis_since(self.epoch);
        let Some(target) = *self.target.read() else {
            Counters::inc(&self.forward.counters.packets_received);
            Counters::inc(&self.forward.counters.packets_dropped_no_target);
            return;
        };
        let existing = {
            let mut mappings = self.mappings.lock();
            match mappings.get(&client) {
                Some(m) if m.target == target => {
                    m.last_seen.store(now_ms, Ordering::Relaxed);
                    Some(m.upstream.clone())
                }
                Some(_) => {
                    // Made for a previous target (see `retarget`).
                    mappings.remove(&client);
                    None
                }
                None => None,
            }
        };
        let upstream = match existing {
            Some(upstream) => upstream,
            None => match self.open_mapping(client, target, now_ms).await {
                Ok(upstream) => upstream,
                Err(e) => {
                    Counters::inc(&self.forward.counters.packets_received);
                    Counters::inc(&self.forward.counters.send_errors);
                    tracing::warn!(link = &*self.label, %client, error = %e, "emulator: cannot bind an upstream socket");
                    return;
                }
            },
        };
        let datagram = Datagram { arrival, payload: payload.into(), route: Route { socket: upstream, dest: target } };
        hand_over(&self.forward_tx, &self.forward, datagram, &self.label);
    }

    /// Binds the upstream socket of a new client and starts reading it. Only this task inserts
    /// mappings, so there is no race between the lookup and the insertion.
    async fn open_mapping(&self, client: SocketAddr, target: SocketAddr, now_ms: u64) -> io::Result<Arc<UdpSocket>> {
        let upstream = Arc::new(UdpSocket::bind(SocketAddr::new(upstream_ip(self.bind_ip, target), 0)).await?);
        let last_seen = Arc::new(AtomicU64::new(now_ms));
        let reader = UpstreamLoop {
            upstream: upstream.clone(),
            front: self.front.clone(),
            client,
            target,
            last_seen: last_seen.clone(),
            epoch: self.epoch,
            reverse: self.reverse.clone(),
            reverse_tx: self.reverse_tx.clone(),
            label: self.label.clone(),
        };
        let task = tokio::spawn(reader.run());
        tracing::debug!(
            link = &*self.label,
            %client,
            upstream = ?upstream.local_addr().ok(),
            "emulator: new client mapping"
        );
        self.mappings
            .lock()
            .insert(client, Mapping { upstream: upstream.clone(), target, last_seen, task: Some(task) });
        Counters::inc(&self.forward.counters.mappings_created);
        Ok(upstream)
    }

    fn expire_idle(&self) {
        let now_ms = millis_since(self.epoch);
        let idle_ms = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut expired = 0;
        self.mappings.lock().retain(|client, mapping| {
            let keep = now_ms.saturating_sub(mapping.last_seen.load(Ordering::Relaxed)) < idle_ms;
            if !keep {
                expired += 1;
                tracing::debug!(link = &*self.label, %client, "emulator: idle client mapping expired");
            }
            keep
        });
        Counters::add(&self.forward.counters.mappings_expired, expired);
    }
}

#[derive(Debug)]
struct UpstreamLoop {
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddr,
    last_seen: Arc<AtomicU64>,
    epoch: Instant,
    reverse: Arc<Direction>,
    reverse_tx: mpsc::Sender<Datagram>,
    label: Arc<str>,
}

impl UpstreamLoop {
    async fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match self.upstream.recv_from(&mut buf).await {
                Ok((len, source)) => {
                    if !self.is_from_target(source) {
                        // Like a NAT with address-and-port-dependent filtering.
                        tracing::trace!(link = &*self.label, %source, "emulator: datagram from a stranger ignored");
                        continue;
                    }
                    let arrival = Instant::now();
                    self.last_seen.store(millis_since(self.epoch), Ordering::Relaxed);
                    let route = Route { socket: self.front.clone(), dest: self.client };
                    let datagram = Datagram { arrival, payload: buf[..len].into(), route };
                    hand_over(&self.reverse_tx, &self.reverse, datagram, &self.label);
                }
                Err(e) => {
                    tracing::warn!(link = &*self.label, error = %e, "emulator upstream socket: recv_from failed");
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// Whether `source` is the target (a target bound to an unspecified address answers from
    /// a concrete one: only the port is compared then).
    fn is_from_target(&self, source: SocketAddr) -> bool {
        source == self.target || (self.target.ip().is_unspecified() && source.port() == self.target.port())
    }
}

/// The scheduler of one direction of one link: decides each datagram's fate on receipt and
/// sends it when due.
async fn schedule_loop(
    mut rx: mpsc::Receiver<Datagram>,
    direction: Arc<Direction>,
    mut shaper: Shaper,
    label: Arc<str>,
) {
    let mut queue: DelayQueue<Datagram> = DelayQueue::default();
    let sleep = tokio::time::sleep_until(Instant::now());
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        send_due(&mut queue, &direction, &label).await;
        let next = queue.next_due();
        if next != armed {
            if let Some(due) = next {
                sleep.as_mut().reset(due);
            }
            armed = next;
        }
        tokio::select! {
            received = rx.recv() => {
                let Some(datagram) = received else { break };
                admit(&mut shaper, &mut queue, &direction, datagram);
                for _ in 1..ADMIT_BATCH {
                    match rx.try_recv() {
                        Ok(datagram) => admit(&mut shaper, &mut queue, &direction, datagram),
                        Err(_) => break,
                    }
                }
            }
            () = &mut sleep, if armed.is_some() => armed = None,
        }
    }
    // Every sender is gone (the link stopped): what is still in flight is lost.
    tracing::trace!(link = &*label, in_flight = queue.len(), "emulator scheduler stopped");
}

fn admit(shaper: &mut Shaper, queue: &mut DelayQueue<Datagram>, direction: &Direction, datagram: Datagram) {
    let spec = *direction.spec.read();
    let mut pacer = spec.bandwidth_bytes_per_sec.map(|_| direction.pacer.lock());
    let verdict = shaper.decide(&spec, pacer.as_deref_mut(), datagram.arrival, datagram.payload.len());
    drop(pacer);
    let counters = &direction.counters;
    match verdict {
        Verdict::Deliver(due) => queue.push(due, datagram),
        Verdict::Drop(DropReason::Partition) => Counters::inc(&counters.packets_dropped_partition),
        Verdict::Drop(DropReason::Loss) => Counters::inc(&counters.packets_dropped_loss),
        Verdict::Drop(DropReason::Queue) => Counters::inc(&counters.packets_dropped_queue),
    }
}

async fn send_due(queue: &mut DelayQueue<Datagram>, direction: &Direction, label: &str) {
    let now = Instant::now();
    let counters = &direction.counters;
    while let Some(datagram) = queue.pop_due(now) {
        match datagram.route.socket.send_to(&datagram.payload, datagram.route.dest).await {
            Ok(sent) => {
                Counters::inc(&counters.packets_forwarded);
                Counters::add(&counters.bytes_forwarded, sent as u64);
            }
            Err(e) => {
                Counters::inc(&counters.send_errors);
                tracing::debug!(link = label, dest = %datagram.route.dest, error = %e, "emulator: send_to failed");
            }
        }
    }
}
