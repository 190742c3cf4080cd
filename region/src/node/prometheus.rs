//! The node's metrics in the Prometheus text exposition format, version 0.0.4 (`GET /metrics`).
//!
//! Conventions (checked by `promtool check metrics` in `tests/metrics_promtool.rs`):
//!
//! - one prefix, `meridian_`, and base units in the name: `_seconds`, `_bytes`, `_total` for
//!   counters, `_timestamp_seconds` for points in time (seconds since the UNIX epoch);
//! - every sample carries `region` and `node`; the only other labels are low-cardinality
//!   names: `op`, `status`, `state`, `kind`, `reason`, `endpoint`, `member` (a node of this
//!   region) and `peer_region`. Never a key, a keyspace value or a client address;
//! - every family has `# HELP` and `# TYPE`, and a family whose source is absent (no WAN
//!   replicator attached, a store call that failed) is left out rather than reported as 0.
//!
//! `docs/observability.md` lists every metric with its labels and meaning, and the alert rules
//! built on them (`ops/prometheus/alerts.yml`).
//!
//! # Layout
//!
//! - [`render`] gathers the figures from the node's parts, one section per concern;
//! - [`Exposition`] writes families and samples with the escaping the format requires; it
//!   knows nothing about the node, so its output is unit-tested on its own.

use std::fmt::{self, Write as _};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use meridian_crdt::Hlc;
use meridian_local::metrics::StoreMetrics;
use meridian_local::EngineStats;

use crate::membership::{NodeState, RegionView};
use crate::metrics::{LatencySnapshot, RegionMetrics};
use crate::node::Inner;

/// Upper bounds (ms) of the exported replication-lag buckets: 5 ms to 60 s. Each is a bucket
/// boundary of [`meridian_wan::lag::LagHistogram`] (1 ms wide to 1 s, 10 ms to 10 s, 100 ms to
/// 100 s), so the exported counts are exact: below 1 s a bucket holds the lags at or below
/// its bound, above 1 s those below it (the source's buckets are `[lower, upper)` there, which
/// makes a lag of exactly 5 000 ms count above `le="5"`). 5 s and 30 s are the alert
/// thresholds.
pub const LAG_BOUNDS_MS: [u64; 13] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

/// The member states of [`member_status`], in the order they are exported.
pub const MEMBER_STATES: [&str; 5] = ["healthy", "down", "joining", "leaving", "left"];

/// The WAN link states of [`meridian_wan::PeerStatus::link`], in the order they are exported.
pub const LINK_STATES: [&str; 4] = ["up", "down", "fenced", "idle"];

/// The role states of [`NodeState`], in the order they are exported.
const NODE_STATES: [NodeState; 4] = [NodeState::Joining, NodeState::Normal, NodeState::Leaving, NodeState::Left];

/// The kind of a metric family (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic since the process started; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative `_bucket{le}` samples, `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A histogram's samples in the exposition's terms: cumulative buckets at finite upper bounds
/// (in the family's unit), the total count (the `+Inf` bucket) and, when it is tracked, the
/// sum.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSamples {
    /// `(upper bound, samples at or below it)`, ascending.
    pub buckets: Vec<(f64, u64)>,
    /// Every sample.
    pub count: u64,
    /// Sum of the samples, if the source keeps it.
    pub sum: Option<f64>,
}

/// A text exposition being written: families of samples, each sample labelled with the
/// constant labels given at creation (`region`, `node`) and then its own.
#[derive(Debug)]
pub struct Exposition {
    out: String,
    constant: String,
}

impl Exposition {
    /// An empty exposition whose samples all carry `constant` labels first.
    pub fn new(constant: &[(&str, &str)]) -> Exposition {
        let mut labels = String::new();
        for (i, (name, value)) in constant.iter().enumerate() {
            if i > 0 {
                labels.push(',');
            }
            push_label(&mut labels, name, value);
        }
        Exposition { out: String::with_capacity(16 * 1024), constant: labels }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !self.constant.is_empty() || !labels.is_empty() {
            self.out.push('{');
            self.out.push_str(&self.constant);
            for (name, value) in labels {
                if !self.out.ends_with('{') {
                    self.out.push(',');
                }
                push_label(&mut self.out, name, value);
            }
            self.out.push('}');
        }
        self.out.push(' ');
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{}", value.into());
        self.out.push('\n');
    }

    /// A family with one sample without labels of its own.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram of the current family (`name` without suffix).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSamples) {
        let bucket = format!("{name}_bucket");
        for (le, count) in &h.buckets {
            self.bucket(&bucket, labels, &Value::Float(*le).to_string(), *count);
        }
        self.bucket(&bucket, labels, "+Inf", h.count);
        if let Some(sum) = h.sum {
            self.sample(&format!("{name}_sum"), labels, sum);
        }
        self.sample(&format!("{name}_count"), labels, h.count);
    }

    /// One `_bucket` sample: `labels` and then `le`.
    fn bucket(&mut self, name: &str, labels: &[(&str, &str)], le: &str, count: u64) {
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", le));
        self.sample(name, &with_le, count);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A sample value: counts are exact integers, the rest floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer (counters, sizes, counts).
    Int(u64),
    /// A float (seconds, ratios).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Appends `name="value"` with the value escaped (backslash, double quote, newline).
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Milliseconds as seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A member's status as `cluster status` names it (one of [`MEMBER_STATES`]).
pub fn member_status(state: Option<NodeState>, live: bool) -> &'static str {
    match (state, live) {
        (Some(NodeState::Left), _) => "left",
        (_, false) => "down",
        (Some(NodeState::Joining), true) => "joining",
        (Some(NodeState::Leaving), true) => "leaving",
        (Some(NodeState::Normal) | None, true) => "healthy",
    }
}

/// A request-latency histogram in seconds.
fn latency_samples(s: &LatencySnapshot) -> HistogramSamples {
    HistogramSamples {
        buckets: s.cumulative.iter().map(|&(le_us, n)| (le_us as f64 / 1e6, n)).collect(),
        count: s.count,
        sum: Some(s.sum_us as f64 / 1e6),
    }
}

/// A replication-lag histogram in seconds at [`LAG_BOUNDS_MS`], with its sum.
pub fn lag_samples(h: &meridian_wan::lag::LagHistogram) -> HistogramSamples {
    HistogramSamples {
        buckets: h.cumulative(&LAG_BOUNDS_MS).into_iter().map(|(le, n)| (seconds(le), n)).collect(),
        count: h.count(),
        sum: Some(h.sum_ms() as f64 / 1e3),
    }
}

/// What the store reports, read on the blocking pool (RocksDB property reads may block).
struct StoreFigures {
    hints_pending: Option<u64>,
    records: u64,
    engine: EngineStats,
    horizon: Hlc,
}

/// Renders every metric of the node.
pub(crate) async fn render(inner: &Arc<Inner>) -> String {
    let mut x = Exposition::new(&[("region", &inner.region), ("node", &inner.name)]);
    let m = inner.metrics.as_ref();
    let view = inner.membership.view();

    node_section(&mut x, inner);
    request_section(&mut x, m);
    rpc_section(&mut x, inner);

    let store = Arc::clone(&inner.store);
    let figures = inner
        .replica
        .blocking(move || {
            let hints_pending = match store.hint_counts() {
                Ok(counts) => Some(counts.values().sum()),
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: hint counts unavailable");
                    None
                }
            };
            StoreFigures {
                hints_pending,
                records: store.record_count(),
                engine: store.engine_stats(),
                horizon: store.gc_horizon(),
            }
        })
        .await;
    let figures = match figures {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::debug!(error = %e, "metrics: store figures unavailable");
            None
        }
    };

    hints_section(&mut x, m, figures.as_ref().and_then(|f| f.hints_pending));
    repair_section(&mut x, inner, figures.as_ref().map(|f| f.horizon));
    membership_section(&mut x, &view);
    gossip_section(&mut x, &inner.gossip_stats);
    wan_section(&mut x, inner);
    if let Some(f) = &figures {
        storage_section(&mut x, f, inner.store.metrics());
    }
    x.finish()
}

fn node_section(x: &mut Exposition, inner: &Inner) {
    x.family("meridian_build_info", Kind::Gauge, "Build information: always 1, the version in a label.");
    x.sample("meridian_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    let now_ms = inner.clock.now_ms();
    let up_ms = u64::try_from(inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    x.single(
        "meridian_node_start_time_seconds",
        Kind::Gauge,
        "When the node started, in seconds since the UNIX epoch (wall clock).",
        seconds(now_ms.saturating_sub(up_ms)),
    );
    x.single(
        "meridian_node_ready",
        Kind::Gauge,
        "1 once the node serves requests (it saw itself on the ring), else 0.",
        inner.ready.load(Ordering::Relaxed) && !inner.shutting_down.load(Ordering::Relaxed),
    );
    let state = *inner.state.lock();
    x.family(
        "meridian_node_state",
        Kind::Gauge,
        "This node's role in the ring: 1 for the current state, 0 for the others.",
    );
    for s in NODE_STATES {
        x.sample("meridian_node_state", &[("state", s.as_str())], s == state);
    }
    x.single(
        "meridian_region_fenced",
        Kind::Gauge,
        "1 while the region is fenced (refuses client writes for a failover), else 0.",
        inner.fenced(),
    );
}

fn request_section(x: &mut Exposition, m: &RegionMetrics) {
    x.family(
        "meridian_requests_total",
        Kind::Counter,
        "Client reads and writes coordinated by this node, by outcome at their consistency level.",
    );
    for (op, status, c) in [
        ("read", "ok", &m.reads_ok),
        ("read", "failed", &m.reads_failed),
        ("write", "ok", &m.writes_ok),
        ("write", "failed", &m.writes_failed),
    ] {
        x.sample("meridian_requests_total", &[("op", op), ("status", status)], RegionMetrics::get(c));
    }
    x.single(
        "meridian_requests_unavailable_total",
        Kind::Counter,
        "Quorum failures: client requests refused because too few replicas answered for their \
         consistency level (a subset of the failed requests).",
        RegionMetrics::get(&m.unavailable),
    );
    x.family(
        "meridian_request_duration_seconds",
        Kind::Histogram,
        "Latency of client requests at the coordinator, successful or not.",
    );
    x.histogram("meridian_request_duration_seconds", &[("op", "read")], &latency_samples(&m.read_latency.snapshot()));
    x.histogram("meridian_request_duration_seconds", &[("op", "write")], &latency_samples(&m.write_latency.snapshot()));
    x.single(
        "meridian_read_repairs_total",
        Kind::Counter,
        "Read-repair merges sent to stale replicas (blocking and background).",
        RegionMetrics::get(&m.read_repairs),
    );
}

fn rpc_section(x: &mut Exposition, inner: &Inner) {
    let m = inner.metrics.as_ref();
    x.single(
        "meridian_rpc_served_total",
        Kind::Counter,
        "Intra-region RPC requests this node served for other nodes.",
        RegionMetrics::get(&m.rpc_served),
    );
    x.single(
        "meridian_rpc_malformed_total",
        Kind::Counter,
        "Intra-region RPC payloads and messages that did not decode.",
        RegionMetrics::get(&m.rpc_malformed),
    );
    let t = inner.endpoint.stats();
    let ep = [("endpoint", "rpc")];
    x.family("meridian_transport_connections_open", Kind::Gauge, "QUIC connections currently established.");
    x.sample("meridian_transport_connections_open", &ep, t.connections_open);
    for (name, help, v) in [
        ("meridian_transport_connects_total", "Outgoing QUIC connections established.", t.connects),
        (
            "meridian_transport_connect_failures_total",
            "Outgoing QUIC connection attempts that failed before the handshake completed.",
            t.connect_failures,
        ),
        ("meridian_transport_accepted_total", "Incoming QUIC connections whose handshake completed.", t.accepted),
        ("meridian_transport_requests_sent_total", "Requests sent, whatever their outcome.", t.requests_sent),
        (
            "meridian_transport_requests_failed_total",
            "Requests sent that failed (timeouts included).",
            t.requests_failed,
        ),
        (
            "meridian_transport_requests_received_total",
            "Requests received and handed to the handler.",
            t.requests_received,
        ),
        ("meridian_transport_messages_sent_total", "One-way messages (gossip) sent.", t.messages_sent),
        ("meridian_transport_messages_received_total", "One-way messages (gossip) received.", t.messages_received),
        (
            "meridian_transport_frames_refused_total",
            "Frames refused because they exceeded the frame limit.",
            t.frames_refused_oversized,
        ),
        ("meridian_transport_handler_panics_total", "Request handlers that panicked.", t.handler_panics),
        ("meridian_transport_received_bytes_total", "Payload bytes received (not QUIC overhead).", t.bytes_in),
        ("meridian_transport_sent_bytes_total", "Payload bytes sent (not QUIC overhead).", t.bytes_out),
    ] {
        x.family(name, Kind::Counter, help);
        x.sample(name, &ep, v);
    }
    let r = t.handshakes_refused;
    x.family(
        "meridian_tls_handshakes_refused_total",
        Kind::Counter,
        "TLS handshakes refused by this endpoint: no client certificate, a chain that does not \
         verify against the CA, or a certificate for another identity.",
    );
    for (reason, v) in [("no_cert", r.no_cert), ("bad_chain", r.bad_chain), ("wrong_identity", r.wrong_identity)] {
        x.sample("meridian_tls_handshakes_refused_total", &[("endpoint", "rpc"), ("reason", reason)], v);
    }
}

fn hints_section(x: &mut Exposition, m: &RegionMetrics, pending: Option<u64>) {
    if let Some(pending) = pending {
        x.single(
            "meridian_hints_pending",
            Kind::Gauge,
            "Hints this node keeps for replicas that missed writes, all targets together.",
            pending,
        );
    }
    x.single(
        "meridian_hints_stored_total",
        Kind::Counter,
        "Hints stored for replicas that did not acknowledge a write in time.",
        RegionMetrics::get(&m.hints_written),
    );
    x.single(
        "meridian_hints_replayed_total",
        Kind::Counter,
        "Hints delivered to their target.",
        RegionMetrics::get(&m.hints_replayed),
    );
    x.single(
        "meridian_hints_dropped_total",
        Kind::Counter,
        "Hints dropped, past the hint window or for a node that left (anti-entropy repairs those).",
        RegionMetrics::get(&m.hints_dropped),
    );
}

fn repair_section(x: &mut Exposition, inner: &Inner, horizon: Option<Hlc>) {
    let m = inner.metrics.as_ref();
    x.single(
        "meridian_anti_entropy_passes_total",
        Kind::Counter,
        "Anti-entropy passes run (complete or not).",
        RegionMetrics::get(&m.ae_passes),
    );
    x.single(
        "meridian_anti_entropy_ranges_compared_total",
        Kind::Counter,
        "Token ranges whose Merkle digests anti-entropy compared with a peer replica.",
        RegionMetrics::get(&m.ae_ranges_compared),
    );
    x.single(
        "meridian_anti_entropy_keys_repaired_total",
        Kind::Counter,
        "Keys whose state anti-entropy exchanged with a peer replica.",
        RegionMetrics::get(&m.ae_keys_repaired),
    );
    x.single(
        "meridian_anti_entropy_last_complete_timestamp_seconds",
        Kind::Gauge,
        "Start of the last anti-entropy pass over every range that completed with every peer, in \
         seconds since the UNIX epoch; 0 before the first. Tombstone GC waits for it.",
        seconds(RegionMetrics::get(&m.ae_last_complete_ms)),
    );
    let running = inner.repair.lock().state == "running";
    x.single("meridian_anti_entropy_running", Kind::Gauge, "1 while an anti-entropy pass runs, else 0.", running);
    x.single(
        "meridian_gc_purged_total",
        Kind::Counter,
        "Records (tombstones and expired values) removed by garbage collection.",
        RegionMetrics::get(&m.gc_purged),
    );
    if let Some(h) = horizon {
        x.single(
            "meridian_gc_horizon_timestamp_seconds",
            Kind::Gauge,
            "The GC horizon (records last changed before it may be purged once absent), in seconds \
             since the UNIX epoch; 0 until the first complete anti-entropy pass allows GC.",
            seconds(h.physical_ms()),
        );
    }
    let streaming = inner.streaming.lock().state.clone();
    x.single(
        "meridian_streaming_active",
        Kind::Gauge,
        "1 while this node streams token ranges for a join or a decommission, else 0.",
        streaming == "joining" || streaming == "leaving",
    );
    x.single(
        "meridian_streaming_bytes_total",
        Kind::Counter,
        "Record bytes moved by join and decommission streaming.",
        RegionMetrics::get(&m.streamed_bytes),
    );
}

fn gossip_section(x: &mut Exposition, g: &crate::membership::GossipStats) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for (name, help, v) in [
        ("meridian_gossip_messages_sent_total", "Gossip messages handed to the RPC endpoint.", get(&g.sent)),
        ("meridian_gossip_messages_received_total", "Gossip messages received and queued.", get(&g.received)),
        (
            "meridian_gossip_send_dropped_total",
            "Gossip sends dropped because too many were in flight.",
            get(&g.send_dropped),
        ),
        (
            "meridian_gossip_send_failed_total",
            "Gossip sends that failed (peer unreachable or refusing).",
            get(&g.send_failed),
        ),
        (
            "meridian_gossip_receive_dropped_total",
            "Received gossip messages dropped because the queue was full.",
            get(&g.recv_dropped),
        ),
        ("meridian_gossip_malformed_total", "Received gossip payloads that did not decode.", get(&g.malformed)),
    ] {
        x.single(name, Kind::Counter, help, v);
    }
}

fn membership_section(x: &mut Exposition, view: &RegionView) {
    let mut counts = [0u64; MEMBER_STATES.len()];
    for member in view.members.values() {
        let status = member_status(member.state, member.live);
        if let Some(i) = MEMBER_STATES.iter().position(|s| *s == status) {
            counts[i] += 1;
        }
    }
    x.family(
        "meridian_gossip_members",
        Kind::Gauge,
        "Members of the region as this node's gossip view sees them, by status.",
    );
    for (state, n) in MEMBER_STATES.iter().zip(counts) {
        x.sample("meridian_gossip_members", &[("state", state)], n);
    }
    x.family(
        "meridian_gossip_member_up",
        Kind::Gauge,
        "1 if this node's failure detector sees the member live, else 0 (members that left are not listed).",
    );
    let mut members: Vec<_> = view.members.values().filter(|m| m.state != Some(NodeState::Left)).collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    for member in members {
        x.sample("meridian_gossip_member_up", &[("member", &member.name)], member.live);
    }
    x.single(
        "meridian_ring_version",
        Kind::Gauge,
        "Version of the ring this node routes with; it increases with every membership change it sees.",
        view.ring.version(),
    );
    x.single("meridian_ring_nodes", Kind::Gauge, "Nodes owning tokens on the ring.", view.ring.len_nodes());
}

fn wan_section(x: &mut Exposition, inner: &Inner) {
    let m = inner.metrics.as_ref();
    x.single(
        "meridian_wan_changes_merged_total",
        Kind::Counter,
        "Changes from other regions merged by this node as coordinator.",
        RegionMetrics::get(&m.remote_applied),
    );
    x.family(
        "meridian_conflicts_total",
        Kind::Counter,
        "Conflicts resolved when merging changes from other regions: lww_overwrite (a write lost \
         to a newer one it had not seen), mvr_siblings (concurrent writes kept as siblings).",
    );
    x.sample("meridian_conflicts_total", &[("kind", "lww_overwrite")], RegionMetrics::get(&m.conflicts_lww_overwrites));
    x.sample(
        "meridian_conflicts_total",
        &[("kind", "mvr_siblings")],
        RegionMetrics::get(&m.conflicts_siblings_created),
    );
    x.family(
        "meridian_replica_reads_total",
        Kind::Counter,
        "Replica reads by where they were answered: memory (memtable or block cache, no thread hand-off) or disk (blocking pool).",
    );
    x.sample("meridian_replica_reads_total", &[("tier", "memory")], RegionMetrics::get(&m.reads_from_memory));
    x.sample("meridian_replica_reads_total", &[("tier", "disk")], RegionMetrics::get(&m.reads_from_disk));
    x.single(
        "meridian_hlc_rejected_total",
        Kind::Counter,
        "Remote HLC timestamps rejected for being further ahead of local time than clock.max_offset.",
        RegionMetrics::get(&m.hlc_rejected),
    );
    let Some(replicator) = inner.replicator.get() else {
        return;
    };
    let peers = replicator.status();
    x.family(
        "meridian_wan_link",
        Kind::Gauge,
        "State of the link to a peer region: 1 for the current state (up, down, fenced, idle), 0 for the others.",
    );
    for p in &peers {
        for state in LINK_STATES {
            x.sample("meridian_wan_link", &[("peer_region", &p.region), ("state", state)], p.link == state);
        }
    }
    x.family(
        "meridian_wan_backlog_entries",
        Kind::Gauge,
        "Change-log entries not yet acknowledged by the peer region (the RPO if the region were cut now).",
    );
    for p in &peers {
        x.sample("meridian_wan_backlog_entries", &[("peer_region", &p.region)], p.backlog);
    }
    x.family("meridian_wan_shipped_total", Kind::Counter, "Change-log entries this node shipped to the peer region.");
    for p in &peers {
        x.sample("meridian_wan_shipped_total", &[("peer_region", &p.region)], p.shipped);
    }
    x.family("meridian_wan_applied_total", Kind::Counter, "Changes from the peer region applied here.");
    for p in &peers {
        x.sample("meridian_wan_applied_total", &[("peer_region", &p.region)], p.applied);
    }
    x.family(
        "meridian_wan_last_ack_timestamp_seconds",
        Kind::Gauge,
        "When the peer region last acknowledged a batch of this node, in seconds since the UNIX epoch.",
    );
    for p in &peers {
        if let Some(ms) = p.last_ack_ms {
            x.sample("meridian_wan_last_ack_timestamp_seconds", &[("peer_region", &p.region)], seconds(ms));
        }
    }
    x.family(
        "meridian_wan_last_applied_timestamp_seconds",
        Kind::Gauge,
        "When the last change from the peer region was applied here, in seconds since the UNIX epoch.",
    );
    for p in &peers {
        if let Some(ms) = p.last_applied_ms {
            x.sample("meridian_wan_last_applied_timestamp_seconds", &[("peer_region", &p.region)], seconds(ms));
        }
    }
    x.family(
        "meridian_wan_full_syncs_total",
        Kind::Counter,
        "Cross-region Merkle full syncs run towards the peer region.",
    );
    for p in &peers {
        x.sample("meridian_wan_full_syncs_total", &[("peer_region", &p.region)], p.full_syncs);
    }
    x.family("meridian_wan_full_sync_keys_total", Kind::Counter, "Keys pushed to the peer region by full syncs.");
    for p in &peers {
        x.sample("meridian_wan_full_sync_keys_total", &[("peer_region", &p.region)], p.full_sync_keys);
    }
    x.family(
        "meridian_wan_replication_lag_seconds",
        Kind::Histogram,
        "End-to-end lag of changes from the peer region applied here: apply time minus the HLC \
         time of the write.",
    );
    for p in &peers {
        if let Some(h) = replicator.lag(&p.region) {
            x.histogram("meridian_wan_replication_lag_seconds", &[("peer_region", &p.region)], &lag_samples(&h));
        }
    }
    x.single(
        "meridian_wan_requests_rejected_total",
        Kind::Counter,
        "Requests from other regions refused (unknown region, fenced, malformed).",
        replicator.rejected(),
    );
}

fn storage_section(x: &mut Exposition, f: &StoreFigures, sm: &StoreMetrics) {
    x.single(
        "meridian_storage_records",
        Kind::Gauge,
        "Records this node stores (live, expired and tombstones), from the Merkle counts.",
        f.records,
    );
    x.single(
        "meridian_storage_live_data_bytes",
        Kind::Gauge,
        "Estimated bytes of live data in the storage engine.",
        f.engine.live_data_bytes,
    );
    x.single(
        "meridian_storage_pending_compaction_bytes",
        Kind::Gauge,
        "Bytes the storage engine's compaction still has to rewrite.",
        f.engine.pending_compaction_bytes,
    );
    x.single(
        "meridian_storage_memtable_bytes",
        Kind::Gauge,
        "Bytes in the storage engine's memtables.",
        f.engine.memtable_bytes,
    );
    x.single(
        "meridian_storage_writes_total",
        Kind::Counter,
        "Store writes that changed a record (local operations and merges).",
        StoreMetrics::get(&sm.writes),
    );
    x.single(
        "meridian_storage_noop_merges_total",
        Kind::Counter,
        "Merges that changed nothing (the incoming state was already included).",
        StoreMetrics::get(&sm.noop_merges),
    );
    x.single(
        "meridian_storage_rejected_below_horizon_total",
        Kind::Counter,
        "Incoming states dropped because they were older than the GC horizon for an absent key.",
        StoreMetrics::get(&sm.rejected_below_horizon),
    );
    x.single(
        "meridian_storage_changelog_trimmed_total",
        Kind::Counter,
        "Change-log entries trimmed: acknowledged by every peer region, or past the retention cap.",
        StoreMetrics::get(&sm.changelog_trimmed),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_carry_the_constant_labels_and_escape_values() {
        let mut x = Exposition::new(&[("region", "eu"), ("node", "n\"1\\")]);
        x.family("meridian_a_total", Kind::Counter, "Line one\nline two \\ end.");
        x.sample("meridian_a_total", &[("op", "read")], 3u64);
        x.single("meridian_b", Kind::Gauge, "B.", 0.25);
        let text = x.finish();
        assert_eq!(
            text,
            "# HELP meridian_a_total Line one\\nline two \\\\ end.\n# TYPE meridian_a_total counter\n\
             meridian_a_total{region=\"eu\",node=\"n\\\"1\\\\\",op=\"read\"} 3\n\
             # HELP meridian_b B.\n# TYPE meridian_b gauge\nmeridian_b{region=\"eu\",node=\"n\\\"1\\\\\"} 0.25\n"
        );
    }

    #[test]
    fn samples_without_labels_have_no_braces_and_no_leading_comma() {
        let mut x = Exposition::new(&[]);
        x.single("meridian_c", Kind::Gauge, "C.", 1u64);
        x.family("meridian_d", Kind::Gauge, "D.");
        x.sample("meridian_d", &[("state", "up")], true);
        assert_eq!(
            x.finish(),
            "# HELP meridian_c C.\n# TYPE meridian_c gauge\nmeridian_c 1\n\
             # HELP meridian_d D.\n# TYPE meridian_d gauge\nmeridian_d{state=\"up\"} 1\n"
        );
    }

    #[test]
    fn histograms_end_with_inf_and_count() {
        let mut x = Exposition::new(&[("node", "a")]);
        x.family("meridian_h_seconds", Kind::Histogram, "H.");
        let h = HistogramSamples { buckets: vec![(0.005, 1), (1.0, 2)], count: 3, sum: Some(61.5) };
        x.histogram("meridian_h_seconds", &[("op", "read")], &h);
        let text = x.finish();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "meridian_h_seconds_bucket{node=\"a\",op=\"read\",le=\"0.005\"} 1",
                "meridian_h_seconds_bucket{node=\"a\",op=\"read\",le=\"1\"} 2",
                "meridian_h_seconds_bucket{node=\"a\",op=\"read\",le=\"+Inf\"} 3",
                "meridian_h_seconds_sum{node=\"a\",op=\"read\"} 61.5",
                "meridian_h_seconds_count{node=\"a\",op=\"read\"} 3",
            ]
        );
    }

    #[test]
    fn lag_buckets_are_exact_at_the_exported_bounds() {
        let mut h = meridian_wan::lag::LagHistogram::default();
        for ms in [5, 6, 4_999, 5_000, 29_999, 120_000] {
            h.record(ms);
        }
        let s = lag_samples(&h);
        let at = |le: f64| s.buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(at(0.005), Some(1), "below 1 s, a lag on a bound is in that bucket");
        assert_eq!(at(0.01), Some(2));
        assert_eq!(at(5.0), Some(3), "above 1 s, a lag on a bound is in the next bucket");
        assert_eq!(at(10.0), Some(4));
        assert_eq!(at(30.0), Some(5));
        assert_eq!(at(60.0), Some(5));
        assert_eq!(s.count, 6, "the 120 s lag is only in +Inf");
        assert_eq!(s.sum, Some((5 + 6 + 4_999 + 5_000 + 29_999 + 120_000) as f64 / 1e3));
    }

    #[test]
    fn member_status_matches_cluster_status() {
        assert_eq!(member_status(Some(NodeState::Normal), true), "healthy");
        assert_eq!(member_status(None, true), "healthy");
        assert_eq!(member_status(Some(NodeState::Normal), false), "down");
        assert_eq!(member_status(Some(NodeState::Joining), true), "joining");
        assert_eq!(member_status(Some(NodeState::Leaving), true), "leaving");
        assert_eq!(member_status(Some(NodeState::Left), false), "left");
    }

    #[test]
    fn special_floats_use_the_exposition_spelling() {
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(1e-3).to_string(), "0.001");
        assert_eq!(Value::Int(u64::MAX).to_string(), "18446744073709551615");
    }
}
