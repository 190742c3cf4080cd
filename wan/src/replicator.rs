//! The replicator of one node: a WAN endpoint receiving other regions' batches, one shipper
//! per peer region, full sync, log trimming, and the status the API shows.
//!
//! **Shipping** (invariants in `docs/algorithms/wan-replication.md`): each node reads its own
//! change log and ships, to each peer region, the entries it is the *shipper* of: the
//! entry's key has this node as its first live replica (in this node's view), and the change
//! did not come from another region (no echo) or from range streaming. A per-peer cursor
//! over the log is persisted only after the peer acknowledged the batch (or when the entries
//! passed were someone else's to ship). When the node's shipping ranges change (a replica went
//! down, came back, joined or left), when the log was trimmed past the cursor, and on demand,
//! it runs a **full sync** of its shipping ranges with the peer: a Merkle comparison against
//! the whole peer region, pushing only the keys that differ.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use meridian_crdt::Record;
use meridian_local::merkle::{buckets, differing, differing_keys, digest_of, segment_keys, segments_in};
use meridian_local::{ChangeEntry, Origin, Store, TokenRange};
use meridian_net::{Endpoint, Handler, TlsIdentity, TransportOptions, WAN_ALPN};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::WanError;
use crate::lag::LagWindow;
use crate::local::LocalRegion;
use crate::protocol::{
    decode_request_traced, decode_response, encode_request_traced, encode_response, Codec, DigestAnswer, DigestQuery,
    Items, WanRequest, WanResponse,
};

/// Metadata entry of the cursor towards `region`.
fn cursor_key(region: &str) -> String {
    format!("wan_cursor:{region}")
}

/// One peer region.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Its name.
    pub region: String,
    /// Its WAN endpoints, tried in order.
    pub addresses: Vec<SocketAddr>,
    /// The name its certificate must be valid for.
    pub server_name: String,
}

/// How the replicator runs.
#[derive(Debug, Clone)]
pub struct ReplicatorConfig {
    /// Where to accept other regions (none: ship only).
    pub listen: Option<SocketAddr>,
    /// The other regions.
    pub peers: Vec<PeerConfig>,
    /// Most changes per batch.
    pub batch_max_entries: usize,
    /// Longest a change waits for its batch to fill.
    pub batch_max_delay: Duration,
    /// Batches sent to a peer before the first of them is acknowledged (at least 1).
    pub max_batches_in_flight: usize,
    /// Batch compression.
    pub codec: Codec,
    /// Most log entries kept; older ones are trimmed even if a peer has not acknowledged them
    /// (that peer then gets a full sync).
    pub retention_entries: u64,
    /// Deadline of one WAN request.
    pub request_timeout: Duration,
    /// Run store calls inline (in-memory stores in simulation) instead of the blocking pool.
    pub inline_storage: bool,
    /// Use turmoil sockets.
    pub simulated: bool,
}

impl ReplicatorConfig {
    /// Defaults for `peers` (batching, compression and limits as in the configuration's
    /// defaults).
    pub fn new(listen: Option<SocketAddr>, peers: Vec<PeerConfig>) -> ReplicatorConfig {
        ReplicatorConfig {
            listen,
            peers,
            batch_max_entries: 512,
            batch_max_delay: Duration::from_millis(20),
            max_batches_in_flight: 8,
            codec: Codec::Lz4,
            retention_entries: 10_000_000,
            request_timeout: Duration::from_secs(10),
            inline_storage: false,
            simulated: false,
        }
    }
}

/// The state of the link to one peer region, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PeerStatus {
    /// The peer region.
    pub region: String,
    /// `up` (the last batch or probe was acknowledged), `down`, `fenced` or `idle` (nothing
    /// shipped yet).
    pub link: String,
    /// Change-log entries after the cursor (not yet shipped, or shipped and not acknowledged).
    pub backlog: u64,
    /// Lag of the changes *from* that region applied here (p50, p99, in ms, last 30–60 s).
    pub lag_p50_ms: Option<u64>,
    /// p99 of the same.
    pub lag_p99_ms: Option<u64>,
    /// The all-time lag histogram of the same changes: `(upper bound ms, count)` of every
    /// non-empty bucket ([`crate::lag::LagHistogram::buckets`]).
    pub lag_buckets: Vec<(u64, u64)>,
    /// Changes from that region applied here.
    pub applied: u64,
    /// When the last change from it was applied here (ms since the UNIX epoch).
    pub last_applied_ms: Option<u64>,
    /// Entries this node shipped to it.
    pub shipped: u64,
    /// When it last acknowledged a batch of this node.
    pub last_ack_ms: Option<u64>,
    /// Full syncs run towards it, and keys they pushed.
    pub full_syncs: u64,
    /// Keys pushed by full syncs.
    pub full_sync_keys: u64,
    /// The last shipping error, if the link is down.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Peer {
    cfg: PeerConfig,
    endpoint: Endpoint,
    /// Index in `cfg.addresses` of the endpoint that last answered.
    address: AtomicU64,
    cursor: AtomicU64,
    link_up: AtomicBool,
    shipped: AtomicU64,
    last_ack_ms: AtomicU64,
    full_syncs: AtomicU64,
    full_sync_keys: AtomicU64,
    sync_requested: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// One batch of the shipping pipeline.
struct InFlight {
    id: u64,
    /// Its last log entry: the cursor once it and every earlier batch are acknowledged.
    last: u64,
    /// Log entries it covers, and those it ships (0: all someone else's to ship).
    entries: u64,
    items: u64,
    _task: Option<AbortOnDrop>,
    result: Option<Result<WanResponse, WanError>>,
}

/// A task aborted when the pipeline drops it (a reset after a failure, fencing, shutdown).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    cfg: ReplicatorConfig,
    region: String,
    local: Arc<dyn LocalRegion>,
    store: Arc<dyn Store>,
    server: Option<Endpoint>,
    peers: Vec<Arc<Peer>>,
    lag: Mutex<BTreeMap<String, Arc<LagWindow>>>,
    applied: Mutex<BTreeMap<String, u64>>,
    rejected: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator").field("region", &self.region).field("peers", &self.peers.len()).finish()
    }
}

/// A running replicator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Replicator {
    inner: Arc<Inner>,
}

async fn blocking<T: Send + 'static>(inline: bool, f: impl FnOnce() -> T + Send + 'static) -> Result<T, WanError> {
    if inline {
        Ok(f())
    } else {
        tokio::task::spawn_blocking(f).await.map_err(|e| WanError::Local(format!("storage task: {e}")))
    }
}

async fn bind(addr: SocketAddr, tls: &TlsIdentity, simulated: bool) -> Result<Endpoint, WanError> {
    let opts = TransportOptions::wan();
    let res = if simulated {
        #[cfg(feature = "sim")]
        {
            Endpoint::bind_sim(addr, tls, WAN_ALPN, opts).await
        }
        #[cfg(not(feature = "sim"))]
        {
            return Err(WanError::Config("simulated sockets need the `sim` feature".into()));
        }
    } else {
        Endpoint::bind(addr, tls, WAN_ALPN, opts)
    };
    res.map_err(|e| WanError::Config(format!("cannot bind the WAN endpoint on {addr}: {e}")))
}

/// Receives other regions' requests.
struct Receiver {
    inner: std::sync::Weak<Inner>,
}

impl Handler for Receiver {
    fn request(&self, _peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        let inner = self.inner.upgrade();
        Box::pin(async move {
            let resp = match inner {
                Some(inner) => match inner.receive(&payload).await {
                    Ok(r) => r,
                    Err(e) => {
                        inner.rejected.fetch_add(1, Ordering::Relaxed);
                        WanResponse::Error { code: e.code().to_owned(), message: e.to_string() }
                    }
                },
                None => WanResponse::Error { code: "shutting_down".into(), message: "replicator stopped".into() },
            };
            Bytes::from(encode_response(&resp))
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {}
}

impl Inner {
    fn known_peer(&self, region: &str) -> Result<(), WanError> {
        if self.cfg.peers.iter().any(|p| p.region == region) {
            Ok(())
        } else {
            Err(WanError::Refused {
                peer: region.to_owned(),
                code: "unknown_region".into(),
                message: format!("{region} is not a configured peer of {}", self.region),
            })
        }
    }

    async fn receive(self: &Arc<Self>, payload: &[u8]) -> Result<WanResponse, WanError> {
        if self.local.fenced() {
            return Err(WanError::Fenced(self.region.clone()));
        }
        let (request, traceparent) = decode_request_traced(payload)?;
        match request {
            WanRequest::Batch { source_region, items } => {
                self.known_peer(&source_region)?;
                let span = tracing::info_span!("wan.apply", source_region = %source_region, entries = items.len());
                meridian_net::trace::set_remote_parent(&span, traceparent.as_deref());
                let writes: Vec<u64> = items.iter().map(|(_, _, r)| r.last_modified().physical_ms()).collect();
                let n = items.len() as u64;
                let report = self.local.apply_remote(&source_region, items).instrument(span).await?;
                let now = self.local.now_ms();
                let window = self.lag_window(&source_region);
                for w in writes {
                    window.record(now.saturating_sub(w), now);
                }
                *self.applied.lock().entry(source_region).or_default() += n;
                Ok(WanResponse::Ack { changed: report.changed })
            }
            WanRequest::Sync { source_region, query } => {
                self.known_peer(&source_region)?;
                Ok(WanResponse::Digest(self.local.region_digest(query).await?))
            }
        }
    }

    fn lag_window(&self, region: &str) -> Arc<LagWindow> {
        Arc::clone(
            self.lag
                .lock()
                .entry(region.to_owned())
                .or_insert_with(|| Arc::new(LagWindow::new(Duration::from_secs(30)))),
        )
    }

    /// Sends a request to `peer`, trying its addresses in order from the one that last answered.
    async fn ask(&self, peer: &Peer, req: &WanRequest) -> Result<WanResponse, WanError> {
        let traceparent = meridian_net::trace::current_traceparent();
        let payload = Bytes::from(encode_request_traced(req, self.cfg.codec, traceparent.as_deref()));
        let n = peer.cfg.addresses.len().max(1);
        let start = peer.address.load(Ordering::Relaxed) as usize % n;
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            let Some(addr) = peer.cfg.addresses.get(i) else { break };
            match peer.endpoint.request(*addr, payload.clone(), self.cfg.request_timeout).await {
                Ok(bytes) => {
                    peer.address.store(i as u64, Ordering::Relaxed);
                    return match decode_response(&bytes)? {
                        WanResponse::Error { code, message } => {
                            Err(WanError::Refused { peer: peer.cfg.region.clone(), code, message })
                        }
                        other => Ok(other),
                    };
                }
                Err(e) => {
                    last = Some(WanError::Transport {
                        peer: format!("{} ({addr})", peer.cfg.region),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| WanError::Config(format!("no address for {}", peer.cfg.region))))
    }

    fn failed(&self, peer: &Peer, e: &WanError) {
        if peer.link_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(peer = %peer.cfg.region, error = %e, "WAN link down");
        }
        *peer.last_error.lock() = Some(e.to_string());
    }

    fn succeeded(&self, peer: &Peer) {
        if !peer.link_up.swap(true, Ordering::Relaxed) {
            tracing::info!(peer = %peer.cfg.region, "WAN link up");
        }
        *peer.last_error.lock() = None;
        peer.last_ack_ms.store(self.local.now_ms(), Ordering::Relaxed);
    }

    async fn persist_cursor(&self, peer: &Peer, seq: u64) -> Result<(), WanError> {
        peer.cursor.store(seq, Ordering::Relaxed);
        let store = Arc::clone(&self.store);
        let key = cursor_key(&peer.cfg.region);
        blocking(self.cfg.inline_storage, move || store.put_meta(&key, &seq.to_be_bytes())).await??;
        Ok(())
    }

    /// The items of a log page this node ships: its own keys' current states, once each.
    fn to_ship(&self, page: &[ChangeEntry]) -> Items {
        let mut seen = BTreeSet::new();
        let mut items = Items::new();
        for e in page.iter().rev() {
            if !matches!(e.origin, Origin::Local | Origin::Repair) {
                continue;
            }
            if !seen.insert((e.keyspace.clone(), e.key.clone())) {
                continue;
            }
            if !self.local.ships(&e.keyspace, &e.key) {
                continue;
            }
            match e.record.as_deref().map(Record::decode) {
                Some(Ok(r)) => items.push((e.keyspace.clone(), e.key.clone(), r)),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "undecodable record in the change log; left to full sync")
                }
                // The key was collected since: nothing to ship.
                None => {}
            }
        }
        items.reverse();
        items
    }

    /// The shipping loop towards one peer.
    ///
    /// Batches are **pipelined**: up to `max_batches_in_flight` are sent before the first is
    /// acknowledged (each on its own QUIC stream), so a change waits for its batch delay and
    /// one trip, not for the round trips of the batches before it. The cursor still moves only
    /// over the acknowledged prefix, in log order: a batch acknowledged before an earlier one
    /// waits for it. A failure drops the pipeline and resends from the cursor (the peer may
    /// merge a batch twice; merges are idempotent, W3). Merges commute, so the peer applying
    /// batches out of order is harmless.
    async fn ship_loop(self: Arc<Self>, peer: Arc<Peer>) {
        let mut last_epoch: Option<u64> = None;
        let mut need_sync = false;
        let mut backoff = Duration::from_millis(100);
        let mut skipped_since_persist = 0u64;
        let window = self.cfg.max_batches_in_flight.max(1);
        let idle = self.cfg.batch_max_delay.max(Duration::from_millis(5));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Result<WanResponse, WanError>)>();
        let mut pipeline: VecDeque<InFlight> = VecDeque::new();
        let mut next_id = 0u64;
        // The last log entry handed to the pipeline (== the cursor when it is empty).
        let mut sent = peer.cursor.load(Ordering::Relaxed);
        loop {
            if self.local.fenced() {
                pipeline.clear();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let (epoch, ranges) = self.local.shipping_ranges();
            if last_epoch.is_some_and(|e| e != epoch) {
                need_sync = true;
            }
            last_epoch = Some(epoch);

            // Retire the acknowledged prefix, in order.
            let mut failure = None;
            while pipeline.front().is_some_and(|b| b.result.is_some()) {
                let Some(b) = pipeline.pop_front() else { break };
                match b.result {
                    Some(Ok(WanResponse::Ack { .. })) if b.items == 0 => {
                        // Nothing of ours: move on; persist now and then (a crash re-reads a
                        // little).
                        peer.cursor.store(b.last, Ordering::Relaxed);
                        skipped_since_persist += b.entries;
                        if skipped_since_persist >= 4096 {
                            skipped_since_persist = 0;
                            let _ = self.persist_cursor(&peer, b.last).await;
                        }
                    }
                    Some(Ok(WanResponse::Ack { .. })) => {
                        backoff = Duration::from_millis(100);
                        peer.shipped.fetch_add(b.items, Ordering::Relaxed);
                        skipped_since_persist = 0;
                        if let Err(e) = self.persist_cursor(&peer, b.last).await {
                            tracing::warn!(error = %e, "could not persist the WAN cursor");
                        }
                        self.succeeded(&peer);
                    }
                    Some(Ok(other)) => {
                        failure = Some(WanError::Protocol(format!("unexpected answer to a batch: {other:?}")))
                    }
                    Some(Err(e)) => failure = Some(e),
                    None => {}
                }
                if failure.is_some() {
                    break;
                }
            }
            if let Some(e) = failure {
                self.failed(&peer, &e);
                pipeline.clear();
                sent = peer.cursor.load(Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }

            if pipeline.is_empty() {
                sent = peer.cursor.load(Ordering::Relaxed);
                let store = Arc::clone(&self.store);
                let first = match blocking(self.cfg.inline_storage, move || store.first_seq()).await {
                    Ok(Ok(f)) => f,
                    _ => {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                };
                if sent + 1 < first {
                    tracing::warn!(peer = %peer.cfg.region, cursor = sent, first, "change log trimmed past the cursor: full sync");
                    need_sync = true;
                    let _ = self.persist_cursor(&peer, first - 1).await;
                    sent = first - 1;
                }
                if need_sync || peer.sync_requested.swap(false, Ordering::Relaxed) {
                    match self.full_sync(&peer, &ranges).await {
                        Ok(keys) => {
                            need_sync = false;
                            peer.full_syncs.fetch_add(1, Ordering::Relaxed);
                            peer.full_sync_keys.fetch_add(keys, Ordering::Relaxed);
                            tracing::info!(peer = %peer.cfg.region, keys, "full sync done");
                            self.succeeded(&peer);
                        }
                        Err(e) => {
                            need_sync = true;
                            self.failed(&peer, &e);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
            }

            // Fill the pipeline, unless a full sync waits for it to drain.
            let may_fill = pipeline.len() < window && !need_sync && !peer.sync_requested.load(Ordering::Relaxed);
            let mut filled = false;
            if may_fill {
                let store = Arc::clone(&self.store);
                let limit = self.cfg.batch_max_entries;
                let from = sent;
                let mut page = match blocking(self.cfg.inline_storage, move || store.changes(from, limit)).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                };
                if !page.is_empty() && page.len() < limit && !self.cfg.batch_max_delay.is_zero() {
                    // Let the batch fill for up to the batching delay.
                    tokio::time::sleep(self.cfg.batch_max_delay).await;
                    let store = Arc::clone(&self.store);
                    if let Ok(Ok(p)) = blocking(self.cfg.inline_storage, move || store.changes(from, limit)).await {
                        page = p;
                    }
                }
                if let Some(last) = page.last().map(|e| e.seq) {
                    filled = true;
                    sent = last;
                    let items = self.to_ship(&page);
                    let id = next_id;
                    next_id += 1;
                    let mut b = InFlight {
                        id,
                        last,
                        entries: page.len() as u64,
                        items: items.len() as u64,
                        _task: None,
                        result: None,
                    };
                    if items.is_empty() {
                        b.result = Some(Ok(WanResponse::Ack { changed: 0 }));
                    } else {
                        let (this, p, tx) = (Arc::clone(&self), Arc::clone(&peer), done_tx.clone());
                        let req = WanRequest::Batch { source_region: self.region.clone(), items };
                        let span = tracing::info_span!(
                            "wan.ship",
                            peer_region = %p.cfg.region,
                            entries = b.items,
                            last_seq = last,
                        );
                        b._task = Some(AbortOnDrop(tokio::spawn(
                            async move {
                                let res = this.ask(&p, &req).await;
                                let _ = tx.send((id, res));
                            }
                            .instrument(span),
                        )));
                    }
                    pipeline.push_back(b);
                }
            }
            if filled {
                continue;
            }
            // Wait for an acknowledgement, or (with room in the pipeline) for new changes.
            let room = pipeline.len() < window;
            tokio::select! {
                done = done_rx.recv(), if !pipeline.is_empty() => {
                    if let Some((id, res)) = done {
                        if let Some(b) = pipeline.iter_mut().find(|b| b.id == id) {
                            b.result = Some(res);
                        }
                    }
                }
                _ = tokio::time::sleep(idle), if room || pipeline.is_empty() => {}
            }
        }
    }

    async fn query(&self, peer: &Peer, query: DigestQuery) -> Result<DigestAnswer, WanError> {
        match self.ask(peer, &WanRequest::Sync { source_region: self.region.clone(), query }).await? {
            WanResponse::Digest(d) => Ok(d),
            other => Err(WanError::Protocol(format!("unexpected answer to a sync query: {other:?}"))),
        }
    }

    /// Full sync of `ranges` towards `peer`: push every key whose state differs. Returns the
    /// number of keys pushed.
    async fn full_sync(&self, peer: &Peer, ranges: &[TokenRange]) -> Result<u64, WanError> {
        let mut pushed = 0u64;
        for chunk in ranges.chunks(64) {
            let chunk = chunk.to_vec();
            let store = Arc::clone(&self.store);
            let r = chunk.clone();
            let local = blocking(self.cfg.inline_storage, move || digest_of(store.as_ref(), &r)).await??;
            let remote = match self.query(peer, DigestQuery::Buckets { ranges: chunk.clone() }).await? {
                DigestAnswer::Digests(d) => d.into_iter().collect(),
                other => return Err(WanError::Protocol(format!("expected bucket digests, got {other:?}"))),
            };
            let diff_buckets = differing(&buckets(&local), &remote);
            if diff_buckets.is_empty() {
                continue;
            }
            let remote_segments = match self
                .query(peer, DigestQuery::Segments { ranges: chunk.clone(), buckets: diff_buckets.clone() })
                .await?
            {
                DigestAnswer::Digests(d) => d.into_iter().collect(),
                other => return Err(WanError::Protocol(format!("expected segment digests, got {other:?}"))),
            };
            let diff_segments = differing(&segments_in(&local, &diff_buckets), &remote_segments);
            for segs in diff_segments.chunks(64) {
                let theirs =
                    match self.query(peer, DigestQuery::Keys { ranges: chunk.clone(), segments: segs.to_vec() }).await?
                    {
                        DigestAnswer::Keys(k) => k,
                        other => return Err(WanError::Protocol(format!("expected key lists, got {other:?}"))),
                    };
                let store = Arc::clone(&self.store);
                let (r, s) = (chunk.clone(), segs.to_vec());
                let ours = blocking(self.cfg.inline_storage, move || segment_keys(store.as_ref(), &r, &s)).await??;
                let keys = differing_keys(&ours, &theirs);
                for batch in keys.chunks(self.cfg.batch_max_entries.max(1)) {
                    let store = Arc::clone(&self.store);
                    let batch = batch.to_vec();
                    let items: Items = blocking(self.cfg.inline_storage, move || -> Result<Items, WanError> {
                        let mut out = Items::new();
                        for k in batch {
                            if let Some((skey, rec)) = store.get_raw(&k)? {
                                out.push((skey.keyspace().to_owned(), skey.key().to_vec(), rec));
                            }
                        }
                        Ok(out)
                    })
                    .await??;
                    if items.is_empty() {
                        continue;
                    }
                    pushed += items.len() as u64;
                    match self.ask(peer, &WanRequest::Batch { source_region: self.region.clone(), items }).await? {
                        WanResponse::Ack { .. } => {}
                        other => {
                            return Err(WanError::Protocol(format!("unexpected answer to a sync batch: {other:?}")))
                        }
                    }
                }
            }
        }
        Ok(pushed)
    }

    /// Trims the log up to what every peer acknowledged, or to the retention cap.
    async fn trim_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let store = Arc::clone(&self.store);
            let visible = store.visible_seq();
            let acked = self.peers.iter().map(|p| p.cursor.load(Ordering::Relaxed)).min().unwrap_or(visible);
            let cap = visible.saturating_sub(self.cfg.retention_entries);
            let upto = acked.max(cap);
            if upto == 0 {
                continue;
            }
            let _ = blocking(self.cfg.inline_storage, move || store.trim_changes(upto)).await;
        }
    }
}

impl Replicator {
    /// Starts the replicator: the receiving endpoint (if `cfg.listen`), a client endpoint and
    /// a shipper per peer, and log trimming. `tls` is the region's WAN identity; its server side
    /// accepts every peer's `server_name`, each client dials its peer's.
    pub async fn start(
        cfg: ReplicatorConfig,
        tls: &TlsIdentity,
        local: Arc<dyn LocalRegion>,
        store: Arc<dyn Store>,
    ) -> Result<Replicator, WanError> {
        let region = local.region();
        let server = match cfg.listen {
            Some(addr) => {
                let names: Vec<&str> = cfg.peers.iter().map(|p| p.server_name.as_str()).collect();
                let identity = if names.is_empty() || tls.is_insecure() {
                    tls.clone()
                } else {
                    tls.accepting(&names).map_err(|e| WanError::Config(e.to_string()))?
                };
                Some(bind(addr, &identity, cfg.simulated).await?)
            }
            None => None,
        };
        let mut peers = Vec::new();
        for p in &cfg.peers {
            let identity = tls.dialing(&p.server_name).map_err(|e| WanError::Config(e.to_string()))?;
            // A client-only endpoint per peer, on an OS-chosen port of every interface.
            let endpoint = bind(SocketAddr::from(([0, 0, 0, 0], 0)), &identity, cfg.simulated).await?;
            let st = Arc::clone(&store);
            let key = cursor_key(&p.region);
            let cursor = blocking(cfg.inline_storage, move || st.get_meta(&key))
                .await??
                .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            peers.push(Arc::new(Peer {
                cfg: p.clone(),
                endpoint,
                address: AtomicU64::new(0),
                cursor: AtomicU64::new(cursor),
                link_up: AtomicBool::new(false),
                shipped: AtomicU64::new(0),
                last_ack_ms: AtomicU64::new(0),
                full_syncs: AtomicU64::new(0),
                full_sync_keys: AtomicU64::new(0),
                sync_requested: AtomicBool::new(false),
                last_error: Mutex::new(None),
            }));
        }
        let inner = Arc::new(Inner {
            cfg,
            region,
            local,
            store,
            server,
            peers,
            lag: Mutex::new(BTreeMap::new()),
            applied: Mutex::new(BTreeMap::new()),
            rejected: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        if let Some(server) = &inner.server {
            server.serve(Arc::new(Receiver { inner: Arc::downgrade(&inner) }));
        }
        {
            let mut tasks = inner.tasks.lock();
            for p in &inner.peers {
                tasks.push(tokio::spawn(Arc::clone(&inner).ship_loop(Arc::clone(p))));
            }
            tasks.push(tokio::spawn(Arc::clone(&inner).trim_loop()));
        }
        Ok(Replicator { inner })
    }

    /// The address other regions reach this node's WAN endpoint at.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.server.as_ref().map(Endpoint::local_addr)
    }

    /// Asks for a full sync towards `region` (every peer if `None`) at the next loop turn.
    pub fn request_sync(&self, region: Option<&str>) -> Result<(), WanError> {
        let mut found = false;
        for p in &self.inner.peers {
            if region.is_none_or(|r| r == p.cfg.region) {
                p.sync_requested.store(true, Ordering::Relaxed);
                found = true;
            }
        }
        match (found, region) {
            (false, Some(r)) => Err(WanError::Config(format!("{r} is not a peer region"))),
            _ => Ok(()),
        }
    }

    /// The status of every peer link.
    pub fn status(&self) -> Vec<PeerStatus> {
        let inner = &self.inner;
        let visible = inner.store.visible_seq();
        inner
            .peers
            .iter()
            .map(|p| {
                let window = inner.lag.lock().get(&p.cfg.region).cloned();
                let recent = window.as_ref().map(|w| w.recent());
                let last_ack = p.last_ack_ms.load(Ordering::Relaxed);
                PeerStatus {
                    region: p.cfg.region.clone(),
                    link: if inner.local.fenced() {
                        "fenced"
                    } else if p.link_up.load(Ordering::Relaxed) {
                        "up"
                    } else if last_ack == 0 && p.last_error.lock().is_none() {
                        "idle"
                    } else {
                        "down"
                    }
                    .to_owned(),
                    backlog: visible.saturating_sub(p.cursor.load(Ordering::Relaxed)),
                    lag_p50_ms: recent.as_ref().and_then(|h| h.quantile(0.5)),
                    lag_p99_ms: recent.as_ref().and_then(|h| h.quantile(0.99)),
                    lag_buckets: window.as_ref().map(|w| w.all().buckets()).unwrap_or_default(),
                    applied: inner.applied.lock().get(&p.cfg.region).copied().unwrap_or(0),
                    last_applied_ms: window.and_then(|w| w.last_applied_ms()),
                    shipped: p.shipped.load(Ordering::Relaxed),
                    last_ack_ms: (last_ack > 0).then_some(last_ack),
                    full_syncs: p.full_syncs.load(Ordering::Relaxed),
                    full_sync_keys: p.full_sync_keys.load(Ordering::Relaxed),
                    last_error: p.last_error.lock().clone(),
                }
            })
            .collect()
    }

    /// All-time lag of changes from `region` applied here.
    pub fn lag(&self, region: &str) -> Option<crate::lag::LagHistogram> {
        self.inner.lag.lock().get(region).map(|w| w.all())
    }

    /// Requests from other regions refused (unknown region, fenced, garbage).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// Stops shipping and closes the endpoints.
    pub async fn shutdown(&self) {
        for t in self.inner.tasks.lock().drain(..) {
            t.abort();
        }
        for p in &self.inner.peers {
            p.endpoint.shutdown().await;
        }
        if let Some(s) = &self.inner.server {
            s.shutdown().await;
        }
    }
}
