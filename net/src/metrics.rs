//! Counters: TLS handshake refusals ([`TlsStats`]) and endpoint traffic ([`TransportStats`]).
//!
//! Counters are plain atomics updated with `Relaxed` ordering; a snapshot is not a consistent
//! cut across counters, only each counter is exact.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// Why a peer's certificate was refused during the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The client presented no certificate.
    NoCertificate,
    /// The chain does not verify: unknown CA, expired, not yet valid, bad signature.
    BadChain,
    /// The chain verifies, but the certificate is not valid for the expected peer name
    /// (another region, or another role).
    WrongIdentity,
}

/// Handshake refusals of one [`TlsIdentity`](crate::TlsIdentity), counted on the server side,
/// by reason. Shared (`Arc`) by every configuration and endpoint built from the identity.
///
/// `refused_bad_chain` and `refused_wrong_identity` are counted by the client-certificate
/// verifier itself. `refused_no_cert` is counted by the [`Endpoint`](crate::Endpoint)'s accept
/// loop from the handshake error, because rustls refuses an empty client certificate before
/// it calls any verifier; a server built with [`server_config`](crate::TlsIdentity::server_config)
/// but driven by other code does not count it.
#[derive(Debug)]
pub struct TlsStats {
    refused_no_cert: AtomicU64,
    refused_bad_chain: AtomicU64,
    refused_wrong_identity: AtomicU64,
    /// Bumped after every refusal, for [`TlsStats::wait_until`].
    changes: watch::Sender<u64>,
}

impl Default for TlsStats {
    fn default() -> Self {
        Self {
            refused_no_cert: AtomicU64::new(0),
            refused_bad_chain: AtomicU64::new(0),
            refused_wrong_identity: AtomicU64::new(0),
            changes: watch::Sender::new(0),
        }
    }
}

impl TlsStats {
    /// Handshakes refused because the client presented no certificate.
    pub fn refused_no_cert(&self) -> u64 {
        self.refused_no_cert.load(Ordering::Relaxed)
    }

    /// Handshakes refused because the client's chain did not verify against the CA (wrong CA,
    /// expired, not yet valid, bad signature).
    pub fn refused_bad_chain(&self) -> u64 {
        self.refused_bad_chain.load(Ordering::Relaxed)
    }

    /// Handshakes refused because the client's certificate is not valid for the expected peer
    /// name (right CA, but another region or role).
    pub fn refused_wrong_identity(&self) -> u64 {
        self.refused_wrong_identity.load(Ordering::Relaxed)
    }

    /// All three counters at once.
    pub fn snapshot(&self) -> HandshakeRefusals {
        HandshakeRefusals {
            no_cert: self.refused_no_cert(),
            bad_chain: self.refused_bad_chain(),
            wrong_identity: self.refused_wrong_identity(),
        }
    }

    pub(crate) fn record(&self, reason: RefusalReason) {
        let counter = match reason {
            RefusalReason::NoCertificate => &self.refused_no_cert,
            RefusalReason::BadChain => &self.refused_bad_chain,
            RefusalReason::WrongIdentity => &self.refused_wrong_identity,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until `done` holds for the counters (checked now and after every refusal), and
    /// returns the snapshot that satisfied it. For tests and tooling that must observe a
    /// refusal counted by another task without polling.
    pub async fn wait_until(&self, mut done: impl FnMut(&HandshakeRefusals) -> bool) -> HandshakeRefusals {
        let mut changes = self.changes.subscribe();
        loop {
            let snapshot = self.snapshot();
            if done(&snapshot) {
                return snapshot;
            }
            // The sender lives in `self`: `changed` cannot fail while we borrow it.
            if changes.changed().await.is_err() {
                return self.snapshot();
            }
        }
    }
}

/// A snapshot of [`TlsStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeRefusals {
    /// See [`TlsStats::refused_no_cert`].
    pub no_cert: u64,
    /// See [`TlsStats::refused_bad_chain`].
    pub bad_chain: u64,
    /// See [`TlsStats::refused_wrong_identity`].
    pub wrong_identity: u64,
}

impl HandshakeRefusals {
    /// Refusals for any reason.
    pub fn total(&self) -> u64 {
        self.no_cert + self.bad_chain + self.wrong_identity
    }
}

/// A snapshot of an [`Endpoint`](crate::Endpoint)'s counters (see
/// [`Endpoint::stats`](crate::Endpoint::stats)). All are totals since bind, except
/// `connections_open`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Connections currently established, in both directions.
    pub connections_open: u64,
    /// Outgoing connections established.
    pub connects: u64,
    /// Outgoing connection attempts that failed or were abandoned (deadline) before the
    /// handshake completed.
    pub connect_failures: u64,
    /// Incoming connections whose handshake completed.
    pub accepted: u64,
    /// Requests this endpoint sent (whatever their outcome).
    pub requests_sent: u64,
    /// Requests that failed (any [`NetError`](crate::NetError), including timeouts).
    pub requests_failed: u64,
    /// Requests received and handed to the handler.
    pub requests_received: u64,
    /// One-way messages this endpoint sent successfully.
    pub messages_sent: u64,
    /// One-way messages received and handed to the handler.
    pub messages_received: u64,
    /// Incoming frames refused because they exceeded `max_frame_bytes` (requests, messages,
    /// responses), plus handler responses too large to send.
    pub frames_refused_oversized: u64,
    /// Handler calls that panicked (the request's stream was reset).
    pub handler_panics: u64,
    /// Payload bytes received (requests, responses and messages; not QUIC overhead).
    pub bytes_in: u64,
    /// Payload bytes sent (requests, responses and messages; not QUIC overhead).
    pub bytes_out: u64,
    /// Handshakes refused by this endpoint's server side, from the identity's [`TlsStats`].
    pub handshakes_refused: HandshakeRefusals,
}

/// The live counters behind [`TransportStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_open: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) frames_refused_oversized: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

impl Counters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn dec(counter: &AtomicU64) {
        // Saturating: a gauge never wraps below zero even if a decrement were doubled.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
    }

    pub(crate) fn snapshot(&self, tls: &TlsStats) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            connections_open: get(&self.connections_open),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            accepted: get(&self.accepted),
            requests_sent: get(&self.requests_sent),
            requests_failed: get(&self.requests_failed),
            requests_received: get(&self.requests_received),
            messages_sent: get(&self.messages_sent),
            messages_received: get(&self.messages_received),
            frames_refused_oversized: get(&self.frames_refused_oversized),
            handler_panics: get(&self.handler_panics),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            handshakes_refused: tls.snapshot(),
        }
    }
}
