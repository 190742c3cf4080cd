//! chitchat's [`Transport`] over the node's mTLS QUIC endpoint, so gossip is authenticated
//! like every other intra-region message: a peer without a certificate of the region's CA
//! and identity cannot even deliver a gossip message.
//!
//! Sends never block the gossip loop: each message is handed to its own task (a connect to a
//! dead peer can take the whole RPC deadline), at most [`MAX_INFLIGHT_SENDS`] at once; beyond
//! that, and when the receive queue is full, messages are dropped and counted (gossip is
//! periodic, a dropped round is repaired by the next).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};
use meridian_net::Endpoint;
use tokio::sync::mpsc;

use crate::rpc::{encode_message, Message};

/// Most gossip sends in flight at once.
pub const MAX_INFLIGHT_SENDS: usize = 64;
/// Capacity of the queue of received gossip messages.
pub const INBOX_CAPACITY: usize = 1024;

/// Gossip traffic counters.
#[derive(Debug, Default)]
pub struct GossipStats {
    /// Messages handed to the endpoint.
    pub sent: AtomicU64,
    /// Messages received and queued for chitchat.
    pub received: AtomicU64,
    /// Sends dropped because too many were in flight.
    pub send_dropped: AtomicU64,
    /// Sends that failed (peer unreachable, refused).
    pub send_failed: AtomicU64,
    /// Received messages dropped because the queue was full.
    pub recv_dropped: AtomicU64,
    /// Received payloads that did not decode.
    pub malformed: AtomicU64,
}

/// The receiving side: the node's RPC handler feeds one-way gossip payloads here.
#[derive(Debug, Clone)]
pub struct GossipInbox {
    tx: mpsc::Sender<(SocketAddr, ChitchatMessage)>,
    stats: Arc<GossipStats>,
}

impl GossipInbox {
    /// Decodes a chitchat message from `peer` and queues it; drops (and counts) garbage and
    /// overflow. Never blocks.
    pub fn deliver(&self, peer: SocketAddr, payload: &[u8]) {
        let mut buf = payload;
        let msg = match ChitchatMessage::deserialize(&mut buf) {
            Ok(m) if buf.is_empty() => m,
            _ => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, len = payload.len(), "malformed gossip message dropped");
                return;
            }
        };
        match self.tx.try_send((peer, msg)) {
            Ok(()) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.recv_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A chitchat transport over an [`Endpoint`].
#[derive(Debug)]
pub struct QuicGossipTransport {
    endpoint: Endpoint,
    send_timeout: Duration,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<(SocketAddr, ChitchatMessage)>>>,
    stats: Arc<GossipStats>,
}

impl QuicGossipTransport {
    /// A transport sending through `endpoint` (each send bounded by `send_timeout`), and the
    /// inbox its receiving side reads.
    pub fn new(endpoint: Endpoint, send_timeout: Duration) -> (QuicGossipTransport, GossipInbox) {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let stats = Arc::new(GossipStats::default());
        let inbox = GossipInbox { tx, stats: Arc::clone(&stats) };
        (QuicGossipTransport { endpoint, send_timeout, rx: parking_lot::Mutex::new(Some(rx)), stats }, inbox)
    }

    /// The traffic counters.
    pub fn stats(&self) -> Arc<GossipStats> {
        Arc::clone(&self.stats)
    }
}

#[async_trait]
impl Transport for QuicGossipTransport {
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let rx = self.rx.lock().take().ok_or_else(|| anyhow::anyhow!("gossip transport opened twice"))?;
        Ok(Box::new(QuicGossipSocket {
            endpoint: self.endpoint.clone(),
            send_timeout: self.send_timeout,
            rx,
            inflight: Arc::new(AtomicUsize::new(0)),
            stats: Arc::clone(&self.stats),
        }))
    }
}

struct QuicGossipSocket {
    endpoint: Endpoint,
    send_timeout: Duration,
    rx: mpsc::Receiver<(SocketAddr, ChitchatMessage)>,
    inflight: Arc<AtomicUsize>,
    stats: Arc<GossipStats>,
}

#[async_trait]
impl Socket for QuicGossipSocket {
    async fn send(&mut self, to: SocketAddr, msg: ChitchatMessage) -> anyhow::Result<()> {
        if self.inflight.load(Ordering::Relaxed) >= MAX_INFLIGHT_SENDS {
            self.stats.send_dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let payload = Bytes::from(encode_message(&Message::Gossip(msg.serialize_to_vec())));
        self.inflight.fetch_add(1, Ordering::Relaxed);
        let (endpoint, inflight, stats, timeout) =
            (self.endpoint.clone(), Arc::clone(&self.inflight), Arc::clone(&self.stats), self.send_timeout);
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, endpoint.send_message(to, payload)).await {
                Ok(Ok(())) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    stats.send_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(peer = %to, error = %e, "gossip send failed");
                }
                Err(_) => {
                    stats.send_failed.fetch_add(1, Ordering::Relaxed);
                    // A stalled connection (loss-recovery backoff after a partition) is
                    // replaced rather than waited on.
                    endpoint.reset_peer(to).await;
                }
            }
            inflight.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        self.rx.recv().await.ok_or_else(|| anyhow::anyhow!("gossip inbox closed"))
    }
}
