//! quinn over turmoil: a [`quinn::AsyncUdpSocket`] on a [`turmoil::net::UdpSocket`], so that
//! real [`Endpoint`](crate::Endpoint)s (TLS, streams, timers) run inside a deterministic
//! network simulation with partitions, holds and latency. Used through
//! [`Endpoint::bind_sim`](crate::Endpoint::bind_sim).
//!
//! How it maps:
//!
//! - Sending: turmoil's `try_send_to` never blocks (its UDP has no backpressure), so the
//!   [`UdpPoller`] is always ready. A datagram to an address with no host fails with an error,
//!   which quinn treats like a lost packet.
//! - Receiving: turmoil has no `poll_recv_from`, only `async fn readable()` and a non-blocking
//!   `try_recv_from`. [`poll_recv`](quinn::AsyncUdpSocket::poll_recv) drains what is queued
//!   with `try_recv_from`; when nothing is, it stores a boxed `readable()` future and polls it,
//!   returning `Pending` until a datagram arrives. The stored future holds turmoil's internal
//!   receive lock while pending, so `try_recv_from` is only called once it has resolved (and
//!   been dropped).
//! - One datagram per transmit and per receive (no GSO/GRO), no ECN, no destination-address
//!   information, may fragment = false (turmoil delivers datagrams whole, whatever their
//!   size: it has no MTU, so quinn's 1200-byte initial MTU and its MTU probes all pass).
//!
//! Time: quinn reads the clock through its runtime (`TokioRuntime::now`, tokio's clock),
//! which turmoil controls. Randomness is not simulated: quinn's connection IDs and rustls'
//! handshake use the OS random generator, so a run is reproducible in its network schedule
//! but not byte for byte.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

type Readable = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A turmoil UDP socket usable as quinn's socket.
pub struct TurmoilUdpSocket {
    inner: Arc<turmoil::net::UdpSocket>,
    local_addr: SocketAddr,
    /// The pending `readable()` future of the receive side, if `poll_recv` is waiting.
    readable: Mutex<Option<Readable>>,
}

impl fmt::Debug for TurmoilUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurmoilUdpSocket").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl TurmoilUdpSocket {
    /// Binds a simulated socket (from inside a turmoil host or client).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::new(turmoil::net::UdpSocket::bind(addr).await?)
    }

    /// Wraps a bound simulated socket.
    pub fn new(socket: turmoil::net::UdpSocket) -> io::Result<Self> {
        let local_addr = socket.local_addr()?;
        Ok(Self { inner: Arc::new(socket), local_addr, readable: Mutex::new(None) })
    }
}

/// turmoil's UDP is always writable.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for TurmoilUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        match transmit.segment_size {
            // Not produced with max_transmit_segments() == 1, but split correctly if it were.
            Some(size) if size > 0 && size < transmit.contents.len() => {
                for segment in transmit.contents.chunks(size) {
                    self.inner.try_send_to(segment, transmit.destination)?;
                }
            }
            _ => {
                self.inner.try_send_to(transmit.contents, transmit.destination)?;
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut readable = self.readable.lock();
        loop {
            if let Some(pending) = readable.as_mut() {
                match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => {
                        // Drop the future first: it holds turmoil's receive lock.
                        *readable = None;
                        result?;
                    }
                }
            }
            let mut received = 0;
            for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
                match self.inner.try_recv_from(buf) {
                    Ok((len, from)) => {
                        *meta = RecvMeta::default();
                        meta.addr = from;
                        meta.len = len;
                        meta.stride = len;
                        meta.ecn = None;
                        meta.dst_ip = None;
                        received += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if received == 0 => return Poll::Ready(Err(e)),
                    Err(_) => break,
                }
            }
            if received > 0 {
                return Poll::Ready(Ok(received));
            }
            let socket = self.inner.clone();
            *readable = Some(Box::pin(async move { socket.readable().await }));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        false
    }
}
