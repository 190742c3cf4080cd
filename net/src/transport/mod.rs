//! Request/response and one-way messages over QUIC: the [`Endpoint`] and its [`Handler`].
//!
//! One endpoint is both a server (it accepts connections and hands requests and messages to its
//! handler) and a client (it keeps one connection per peer address and sends requests and
//! messages over it). Two endpoints that talk to each other may each hold a connection to the
//! other; that is fine.
//!
//! # Framing (version 1, named by the ALPN, e.g. `meridian-rpc/1`)
//!
//! - A request is one bidirectional stream: the client writes the payload and finishes its
//!   side; the server reads to the end, calls the handler, writes the response and finishes.
//! - A one-way message is one unidirectional stream holding the payload.
//! - A frame is complete only when its stream is *finished*. A stream that is reset (the sender
//!   gave up, a handler panicked) never reaches a handler or a requester as data. quinn
//!   finishes a send stream that is dropped, which would pass a truncated payload off as
//!   complete; every send stream here is wrapped so that a drop resets it instead.
//! - Payload encoding, and its versioning, belong to the caller.
//!
//! Stream error codes (QUIC application codes in `RESET_STREAM` / `STOP_SENDING`): `0x10`
//! cancelled, `0x11` frame too large, `0x12` handler failed, `0x13` shutting down (`0x00` is
//! quinn's code for a receive stream dropped early). Connection close code `0x01`: endpoint
//! shutting down.
//!
//! # Limits and concurrency
//!
//! Every frame is at most [`TransportOptions::max_frame_bytes`]. A larger incoming frame is
//! refused with a stream reset (counted in [`TransportStats::frames_refused_oversized`])
//! without being buffered whole, and the endpoint keeps serving; an outgoing payload over our
//! own limit is refused before anything is sent. The server serves at most
//! [`TransportOptions::max_inflight_requests`] streams at once (a semaphore, taken before the
//! payload is read and released once the response is acknowledged); quinn's per-connection
//! stream limits push back on the peers beyond that. Each incoming connection and each stream
//! runs in its own task: the accept loops never wait for a handshake or a handler.
//!
//! # Connections
//!
//! Outgoing connections are pooled by peer address. Concurrent first requests to a peer share
//! one handshake. A pooled connection found closed (idle timeout, peer shut down) is replaced
//! transparently; one that fails to open a stream is replaced once. A dead peer whose
//! connection has not timed out yet costs requests their deadline until the idle timeout
//! closes it.

mod failure;
mod pool;
mod serve;
pub(crate) mod wire;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use quinn::{Connection, EndpointConfig, ReadToEndError, StoppedError, TokioRuntime};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::config::TransportOptions;
use crate::error::{FrameLimit, NetError};
use crate::metrics::{Counters, TlsStats, TransportStats};
use crate::tls::TlsIdentity;
use failure::Phase;
use pool::Pool;
use wire::SendGuard;

/// What an [`Endpoint`] does with incoming traffic.
///
/// Payloads are opaque bytes: decoding them, and refusing garbage, is the handler's job.
pub trait Handler: Send + Sync + 'static {
    /// A request from `peer` (its remote address); returns the response bytes.
    ///
    /// If the requester gives up (its deadline passes), the returned future is dropped. If it
    /// panics, the requester gets [`NetError::Stream`]. A response larger than
    /// `max_frame_bytes` is not sent (the requester gets [`NetError::FrameTooLarge`]).
    fn request(&self, peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes>;

    /// A one-way message (gossip). Must not block: hand the payload to a task or a bounded
    /// queue.
    fn message(&self, peer: SocketAddr, payload: Bytes);
}

/// A QUIC endpoint for intra-region RPC and gossip (and, later, WAN replication). Cheap to
/// clone; all clones share one socket, one connection pool and one set of counters. When the
/// last clone is dropped, the endpoint is closed (without the drain of
/// [`shutdown`](Self::shutdown)).
#[derive(Clone)]
pub struct Endpoint {
    owner: Arc<Owner>,
}

/// Held only by [`Endpoint`] handles (not by background tasks), so that dropping the last
/// handle closes the QUIC endpoint, which ends every background task.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.quinn.close(wire::CLOSE_SHUTDOWN, b"endpoint dropped");
    }
}

/// State shared by the endpoint handles and its background tasks.
pub(crate) struct Shared {
    quinn: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    server_name: Arc<str>,
    local_addr: SocketAddr,
    opts: TransportOptions,
    insecure: bool,
    pool: Pool,
    counters: Counters,
    tls_stats: Arc<TlsStats>,
    inflight: Arc<Semaphore>,
    closing: AtomicBool,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.owner.shared;
        f.debug_struct("Endpoint")
            .field("local_addr", &shared.local_addr)
            .field("expected_peer", &shared.server_name)
            .field("insecure", &shared.insecure)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds a UDP socket on `addr` and starts a QUIC endpoint with `tls`'s identity, speaking
    /// `alpn` in both directions (intra-region: `b"meridian-rpc/1"`). Must be called inside a
    /// tokio runtime. Incoming connections are served once [`serve`](Self::serve) is called.
    pub fn bind(
        addr: SocketAddr,
        tls: &TlsIdentity,
        alpn: &'static [u8],
        opts: TransportOptions,
    ) -> Result<Self, NetError> {
        let (server_config, client_config) = configs(tls, alpn, &opts)?;
        let bind_err = |e: std::io::Error| NetError::Bind { addr, source: Arc::new(e) };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(bind_err(std::io::Error::other("Endpoint::bind must be called inside a tokio runtime")));
        }
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        let quinn =
            quinn::Endpoint::new(EndpointConfig::default(), Some(server_config), socket, Arc::new(TokioRuntime))
                .map_err(bind_err)?;
        let local_addr = quinn.local_addr().map_err(bind_err)?;
        Ok(Self::start(quinn, local_addr, client_config, tls, opts))
    }

    /// Like [`bind`](Self::bind), on a turmoil simulated UDP socket (see [`crate::sim`]). Must
    /// be called from a turmoil host or client. If `addr` is unspecified (`0.0.0.0:port`),
    /// [`local_addr`](Self::local_addr) is too; peers reach the host at its turmoil address.
    #[cfg(feature = "sim")]
    pub async fn bind_sim(
        addr: SocketAddr,
        tls: &TlsIdentity,
        alpn: &'static [u8],
        opts: TransportOptions,
    ) -> Result<Self, NetError> {
        let (server_config, client_config) = configs(tls, alpn, &opts)?;
        let bind_err = |e: std::io::Error| NetError::Bind { addr, source: Arc::new(e) };
        let socket = crate::sim::TurmoilUdpSocket::bind(addr).await.map_err(bind_err)?;
        let local_addr = quinn::AsyncUdpSocket::local_addr(&socket).map_err(bind_err)?;
        let quinn = quinn::Endpoint::new_with_abstract_socket(
            EndpointConfig::default(),
            Some(server_config),
            Arc::new(socket),
            Arc::new(TokioRuntime),
        )
        .map_err(bind_err)?;
        Ok(Self::start(quinn, local_addr, client_config, tls, opts))
    }

    fn start(
        quinn: quinn::Endpoint,
        local_addr: SocketAddr,
        client_config: quinn::ClientConfig,
        tls: &TlsIdentity,
        opts: TransportOptions,
    ) -> Self {
        let shared = Shared {
            quinn,
            client_config,
            server_name: tls.expected_peer().into(),
            local_addr,
            insecure: tls.is_insecure(),
            pool: Pool::default(),
            counters: Counters::default(),
            tls_stats: tls.stats().clone(),
            inflight: Arc::new(Semaphore::new(opts.max_inflight_requests)),
            opts,
            closing: AtomicBool::new(false),
            accept_task: Mutex::new(None),
        };
        Self { owner: Arc::new(Owner { shared: Arc::new(shared) }) }
    }

    /// The address the socket is bound to (with the real port if `0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.owner.shared.local_addr
    }

    /// The name every peer must be valid for, also the TLS server name we dial with.
    pub fn expected_peer(&self) -> &str {
        &self.owner.shared.server_name
    }

    /// Starts serving incoming connections with `handler` (spawns the accept loop; must be
    /// called inside a tokio runtime). Only the first call has an effect; later calls, and
    /// calls after [`shutdown`](Self::shutdown), are ignored with a warning.
    pub fn serve(&self, handler: Arc<dyn Handler>) {
        let shared = &self.owner.shared;
        let mut task = shared.accept_task.lock();
        if task.is_some() || shared.closing.load(Ordering::SeqCst) {
            tracing::warn!(local_addr = %shared.local_addr, "Endpoint::serve called twice or after shutdown; ignored");
            return;
        }
        *task = Some(tokio::spawn(serve::accept_loop(shared.clone(), handler)));
    }

    /// Sends a request to `to` and waits for the response. `timeout` bounds the whole exchange:
    /// connecting if needed, opening the stream, writing, the peer's handler, and reading.
    ///
    /// Errors: [`NetError::Timeout`]; [`NetError::Connect`] (unreachable) or
    /// [`NetError::HandshakeRefused`] (certificates, ALPN); [`NetError::Closed`];
    /// [`NetError::FrameTooLarge`] (ours or the peer's limit); [`NetError::Stream`]. See
    /// [`NetError::is_retryable`] before retrying: the peer may have run the request.
    pub async fn request(&self, to: SocketAddr, payload: Bytes, timeout: Duration) -> Result<Bytes, NetError> {
        let shared = &self.owner.shared;
        Counters::inc(&shared.counters.requests_sent);
        let result = match tokio::time::timeout(timeout, shared.request(to, payload)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                // The connection may be stuck in loss-recovery backoff (a healed partition):
                // the next request to this peer dials a fresh one.
                shared.discard(to).await;
                Err(NetError::Timeout { addr: to, after: timeout })
            }
        };
        if let Err(e) = &result {
            Counters::inc(&shared.counters.requests_failed);
            debug!(peer = %to, error = %e, "request failed");
        }
        result
    }

    /// Sends a one-way message to `to` on its own unidirectional stream. Returns once the
    /// peer's QUIC stack has acknowledged the whole message (not once its handler ran); fails if
    /// the peer refuses it first (e.g. [`NetError::FrameTooLarge`]). There is no deadline
    /// parameter: an unreachable peer fails after the idle timeout (handshake), a peer that
    /// dies mid-way after the idle timeout too. Wrap in `tokio::time::timeout` for a tighter
    /// bound.
    pub async fn send_message(&self, to: SocketAddr, payload: Bytes) -> Result<(), NetError> {
        let shared = &self.owner.shared;
        let result = shared.send_message(to, payload).await;
        match &result {
            Ok(()) => Counters::inc(&shared.counters.messages_sent),
            Err(e) => debug!(peer = %to, error = %e, "message failed"),
        }
        result
    }

    /// Forgets the pooled connection to `to`, if any (requests still running on it finish on
    /// it), so that the next request or message dials a fresh one. [`Endpoint::request`] does this itself when a request misses
    /// its deadline; callers that bound [`Endpoint::send_message`] with their own timeout
    /// should do it when that timeout fires.
    pub async fn reset_peer(&self, to: SocketAddr) {
        self.owner.shared.discard(to).await;
    }

    /// A snapshot of the counters, including the identity's handshake refusals.
    pub fn stats(&self) -> TransportStats {
        let shared = &self.owner.shared;
        shared.counters.snapshot(&shared.tls_stats)
    }

    /// Shuts the endpoint down: stops accepting connections and streams, waits for in-flight
    /// requests to finish (at most `shutdown_grace`), closes every connection with an
    /// application close, and waits for the peers to be told (at most `shutdown_grace`). The
    /// accept loop and connection tasks end. Afterwards requests fail with
    /// [`NetError::ShutDown`]. Idempotent.
    pub async fn shutdown(&self) {
        let shared = &self.owner.shared;
        let grace = shared.opts.shutdown_grace;
        shared.closing.store(true, Ordering::SeqCst);
        shared.quinn.set_server_config(None);
        let all = u32::try_from(shared.opts.max_inflight_requests).unwrap_or(u32::MAX);
        match tokio::time::timeout(grace, shared.inflight.acquire_many(all)).await {
            Ok(Ok(permits)) => drop(permits),
            Ok(Err(_closed)) => {}
            Err(_elapsed) => debug!(local_addr = %shared.local_addr, "shutdown: in-flight requests still running"),
        }
        shared.quinn.close(wire::CLOSE_SHUTDOWN, b"endpoint shutting down");
        if tokio::time::timeout(grace, shared.quinn.wait_idle()).await.is_err() {
            debug!(local_addr = %shared.local_addr, "shutdown: connections did not drain within the grace period");
        }
        let task = shared.accept_task.lock().take();
        if let Some(mut task) = task {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

fn configs(
    tls: &TlsIdentity,
    alpn: &'static [u8],
    opts: &TransportOptions,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NetError> {
    opts.validate()?;
    Ok((tls.server_config_with(&[alpn], opts)?, tls.client_config_with(&[alpn], opts)?))
}

/// Counts an outgoing connection attempt as failed unless it is marked as succeeded (also when
/// the attempt is abandoned because the request's deadline passed).
struct ConnectAttempt<'a> {
    counters: &'a Counters,
    succeeded: bool,
}

impl Drop for ConnectAttempt<'_> {
    fn drop(&mut self) {
        if !self.succeeded {
            Counters::inc(&self.counters.connect_failures);
        }
    }
}

impl Shared {
    fn check_outgoing(&self, to: SocketAddr, len: usize) -> Result<(), NetError> {
        let limit = self.opts.max_frame_bytes;
        if len > limit {
            return Err(NetError::FrameTooLarge { addr: to, limit: FrameLimit::Outgoing { len, limit } });
        }
        Ok(())
    }

    async fn request(self: &Arc<Self>, to: SocketAddr, payload: Bytes) -> Result<Bytes, NetError> {
        self.check_outgoing(to, payload.len())?;
        let (send, mut recv) = self.open(to, |conn| async move { conn.open_bi().await }).await?;
        let mut send = SendGuard::new(send);
        let len = payload.len();
        send.write_chunk(payload).await.map_err(|e| failure::write_error(to, e))?;
        send.finish().map_err(|_| NetError::Stream { addr: to, reason: "stream closed before finishing".into() })?;
        Counters::add(&self.counters.bytes_out, len);
        let limit = self.opts.max_frame_bytes;
        match recv.read_to_end(limit).await {
            Ok(response) => {
                Counters::add(&self.counters.bytes_in, response.len());
                Ok(Bytes::from(response))
            }
            Err(ReadToEndError::TooLong) => {
                Counters::inc(&self.counters.frames_refused_oversized);
                let _ = recv.stop(wire::FRAME_TOO_LARGE);
                Err(NetError::FrameTooLarge { addr: to, limit: FrameLimit::Incoming { limit } })
            }
            Err(ReadToEndError::Read(e)) => Err(failure::read_error(to, e)),
        }
    }

    async fn send_message(self: &Arc<Self>, to: SocketAddr, payload: Bytes) -> Result<(), NetError> {
        self.check_outgoing(to, payload.len())?;
        let send = self.open(to, |conn| async move { conn.open_uni().await }).await?;
        let mut send = SendGuard::new(send);
        let len = payload.len();
        send.write_chunk(payload).await.map_err(|e| failure::write_error(to, e))?;
        let delivered = send.stopped();
        send.finish().map_err(|_| NetError::Stream { addr: to, reason: "stream closed before finishing".into() })?;
        Counters::add(&self.counters.bytes_out, len);
        match delivered.await {
            Ok(None) => Ok(()),
            Ok(Some(code)) => Err(failure::peer_code(to, code)),
            Err(StoppedError::ConnectionLost(e)) => Err(failure::connection_error(to, e, Phase::Established)),
            Err(StoppedError::ZeroRttRejected) => Err(NetError::Stream { addr: to, reason: "0-RTT rejected".into() }),
        }
    }

    /// Opens a stream to `to` with `open`, on the pooled connection. If a *reused* connection
    /// fails to open one (it closed since it was last used), reconnects once and tries again; a
    /// fresh connection that fails is not retried (its failure is the answer, e.g. a refused
    /// handshake).
    async fn open<T, F, Fut>(self: &Arc<Self>, to: SocketAddr, open: F) -> Result<T, NetError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, quinn::ConnectionError>>,
    {
        let (conn, fresh) = self.connection(to).await?;
        match open(conn).await {
            Ok(stream) => Ok(stream),
            Err(e) if fresh => Err(failure::connection_error(to, e, Phase::Established)),
            Err(first) => {
                debug!(peer = %to, error = %first, "pooled connection unusable; reconnecting");
                let (conn, _) = self.connection(to).await?;
                open(conn).await.map_err(|e| failure::connection_error(to, e, Phase::Established))
            }
        }
    }

    /// Takes the pooled connection to `to` out of the pool, so new requests dial a fresh one.
    /// It is not closed: requests still running on it keep it (their streams hold it), and
    /// quinn closes it when the last of them is done.
    async fn discard(self: &Arc<Self>, to: SocketAddr) {
        let slot = self.pool.slot(to);
        let mut current = slot.lock().await;
        if current.take().is_some() {
            debug!(peer = %to, "pooled connection replaced after a missed deadline");
        }
    }

    /// The connection to `to`: the pooled one if it is open, else a new one (one handshake for
    /// all concurrent callers). `true` with a connection this call created.
    async fn connection(self: &Arc<Self>, to: SocketAddr) -> Result<(Connection, bool), NetError> {
        let slot = self.pool.slot(to);
        let mut current = slot.lock().await;
        if let Some(conn) = current.as_ref() {
            if conn.close_reason().is_none() {
                return Ok((conn.clone(), false));
            }
        }
        *current = None;
        let conn = self.connect(to).await?;
        *current = Some(conn.clone());
        Ok((conn, true))
    }

    async fn connect(self: &Arc<Self>, to: SocketAddr) -> Result<Connection, NetError> {
        let mut attempt = ConnectAttempt { counters: &self.counters, succeeded: false };
        let connecting = self
            .quinn
            .connect_with(self.client_config.clone(), to, &self.server_name)
            .map_err(|e| failure::connect_error(to, e))?;
        let conn = connecting.await.map_err(|e| failure::connection_error(to, e, Phase::Connect))?;
        attempt.succeeded = true;
        Counters::inc(&self.counters.connects);
        Counters::inc(&self.counters.connections_open);
        debug!(peer = %to, id = conn.stable_id(), "connected");
        let shared = self.clone();
        let watched = conn.clone();
        tokio::spawn(async move {
            let reason = watched.closed().await;
            Counters::dec(&shared.counters.connections_open);
            debug!(peer = %to, id = watched.stable_id(), %reason, "outgoing connection closed");
            shared.pool.forget(to, watched.stable_id());
        });
        Ok(conn)
    }
}
