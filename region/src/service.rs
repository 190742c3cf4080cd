//! What a node offers its clients, independent of HTTP: [`KvService`] and its request and
//! answer types.
//!
//! The HTTP API (`crate::http`) is a thin translation of this trait; the node
//! ([`crate::node::Node`]) implements it, and tests can implement it with a fake.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use meridian_config::ConsistencyLevel;
use meridian_crdt::{Hlc, Op, ReadValue, Record, ValueKind};
use serde::{Deserialize, Serialize};

use crate::error::RegionError;

/// One client write: an operation on a key of a keyspace.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The keyspace (`default` for `/api/v1/keys/{key}`).
    pub keyspace: String,
    /// The key (1..=256 bytes; the node checks).
    pub key: Vec<u8>,
    /// The operation. Its kind must match the keyspace's type ([`RegionError::WrongType`]
    /// otherwise); [`Op::Reset`] deletes a key of any type.
    pub op: Op,
    /// The level; `None`: the keyspace's default, else the cluster's.
    pub consistency: Option<ConsistencyLevel>,
    /// Conditional write: the version the client last read (`If-Match`). The node reads the
    /// key at the request's level first and answers [`RegionError::VersionConflict`] if the
    /// version differs; an absent key matches no version. An empty version is invalid.
    pub if_match: Option<String>,
}

/// What a successful write returns.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// The keyspace's type.
    pub kind: ValueKind,
    /// The state the write produced at the replica that applied it first (for counters and
    /// sets, the leader's state: it includes the write and what that replica held).
    pub record: Record,
    /// The write's HLC timestamp (the coordinator's for `lww`, the leader's otherwise).
    pub ts: Hlc,
    /// The level the write was acknowledged at.
    pub consistency: ConsistencyLevel,
    /// How many replicas had acknowledged when the write succeeded.
    pub acknowledged: usize,
    /// Replicas of the key (N).
    pub replicas: usize,
}

impl WriteOutcome {
    /// The version string of this write. For `lww` it is the write's own HLC timestamp, even
    /// when a concurrent write with a greater timestamp already won at the replica that applied
    /// it first: two acknowledged writes never report the same version (contract 5), and
    /// `If-Match` with it succeeds exactly while this write is the current value. For the other
    /// types it is the version of the state the write produced (see [`version_of`]).
    pub fn version(&self) -> String {
        match self.kind {
            ValueKind::Lww => self.ts.to_string(),
            _ => version_of(&self.record),
        }
    }
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutcome {
    /// The keyspace's type.
    pub kind: ValueKind,
    /// The merged state of the replicas that answered (`None`: none had the key). Present
    /// also when `value` is absent (tombstone, expired).
    pub record: Option<Record>,
    /// What the client sees (expired, deleted and empty read as absent).
    pub value: ReadValue,
    /// The level the read was answered at.
    pub consistency: ConsistencyLevel,
    /// How many replicas the answer was decided on (R).
    pub responders: usize,
}

impl ReadOutcome {
    /// The version string of the state read, if there is one (see [`version_of`]).
    pub fn version(&self) -> Option<String> {
        self.record.as_ref().map(version_of)
    }
}

/// The version of a state as the API shows it and `If-Match` compares it: the `lww` register's
/// HLC timestamp (`<ntp64 time>/<node id>`), and for the other types the greatest HLC folded
/// into the record. Equal versions of an `lww` key mean the same winning write.
pub fn version_of(record: &Record) -> String {
    match record.as_lww() {
        Some(reg) => reg.ts().to_string(),
        None => record.last_modified().to_string(),
    }
}

/// A keyspace as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyspaceInfo {
    /// Its name.
    pub name: String,
    /// Its value type (`lww`, `mvr`, `counter`, `set`).
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// Its default consistency level, if it sets one.
    pub consistency: Option<ConsistencyLevel>,
    /// Where it was defined: `config` (the node's file) or `api` (created at run time).
    pub source: &'static str,
}

/// One node as cluster status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The node's name (`node.id` in its configuration).
    pub id: String,
    /// Its 64-bit number (hex), the id in HLC timestamps and version vectors.
    pub number: String,
    /// `healthy` (normal and live), `joining` (receiving its ranges; not read from yet),
    /// `leaving` (handing its ranges over), `left` (no longer on the ring), or `down` (the
    /// failure detector considers it dead).
    pub status: String,
    /// Its intra-region RPC / gossip address.
    pub rpc: SocketAddr,
    /// Its HTTP API address, if it published one.
    pub http: Option<SocketAddr>,
    /// Fraction of the ring it replicates at the region's replication factor (0..=1).
    pub load: f64,
    /// Fraction of the ring it is primary for.
    pub ownership: f64,
    /// How many tokens (vnodes) it holds.
    pub tokens: usize,
    /// A few of its tokens, for display (the full list is in gossip).
    pub tokens_sample: Vec<u64>,
    /// Records it stores, as it last published (gossiped), if known.
    pub keys: Option<u64>,
    /// Software version it runs.
    pub version: Option<String>,
    /// Whether this is the node answering.
    pub is_self: bool,
}

/// Progress of an anti-entropy (repair) pass on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepairStatus {
    /// `idle`, `running`, `done` or `failed`.
    pub state: String,
    /// Why the pass started: `schedule`, `api` or `startup`.
    pub trigger: Option<String>,
    /// The token range asked for (`start`..`end`, exclusive-inclusive), `None`: every range
    /// the node replicates.
    pub range: Option<(u64, u64)>,
    /// Peer exchanges (one per peer replica sharing ranges with this node) planned.
    pub peers_total: usize,
    /// Exchanges finished.
    pub peers_done: usize,
    /// Exchanges that failed (peer down, error); the pass then does not count as complete.
    pub peers_failed: usize,
    /// Merkle segments found to differ.
    pub segments_differing: u64,
    /// Keys whose state was exchanged.
    pub keys_repaired: u64,
    /// Bytes received and sent by the pass (digests, key lists and records).
    pub bytes_transferred: u64,
    /// Bytes of the records fetched and merged here.
    pub bytes_restored: u64,
    /// When it started and finished, ms since the UNIX epoch.
    pub started_ms: Option<u64>,
    /// When it finished.
    pub finished_ms: Option<u64>,
    /// Start time of the last pass over *every* range that completed with every peer (the GC
    /// safe point comes from it). A pass over a sub-range never changes it.
    pub last_complete_ms: Option<u64>,
    /// The error of a failed pass.
    pub error: Option<String>,
}

/// Range streaming of a join or a decommission on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamingStatus {
    /// `idle`, `joining` (receiving its ranges), `leaving` (handing its ranges over), `done`
    /// or `failed`.
    pub state: String,
    /// Ranges to move.
    pub ranges_total: usize,
    /// Ranges moved.
    pub ranges_done: usize,
    /// Records moved.
    pub keys: u64,
    /// Record bytes moved.
    pub bytes: u64,
    /// When it started and finished, ms since the UNIX epoch.
    pub started_ms: Option<u64>,
    /// When it finished.
    pub finished_ms: Option<u64>,
    /// The error of a failed stream.
    pub error: Option<String>,
}

/// Pending hints kept on this node for one target replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HintQueue {
    /// The target's name, if it is (still) a member.
    pub target: Option<String>,
    /// The target's number (hex).
    pub number: String,
    /// Hints waiting.
    pub pending: u64,
    /// Age of the oldest, in ms.
    pub oldest_age_ms: Option<u64>,
    /// Whether the failure detector considers the target live (replay runs when it is).
    pub target_live: bool,
}

/// Hinted-handoff state of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HintsStatus {
    /// The answering node.
    pub node: String,
    /// One queue per target with pending hints.
    pub queues: Vec<HintQueue>,
    /// Hints stored, replayed and dropped (past the hint window or for a removed node) since
    /// the node started.
    pub stored: u64,
    /// Replayed.
    pub replayed: u64,
    /// Dropped.
    pub dropped: u64,
}

/// The Merkle root of what this node stores for its ranges (convergence checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestStatus {
    /// The answering node.
    pub node: String,
    /// Root hash over the ranges (hex), XOR of the segment hashes.
    pub root: String,
    /// Records counted.
    pub records: u64,
    /// The ranges covered, as `(start, end]` token pairs.
    pub ranges: Vec<(u64, u64)>,
}

/// A snapshot of one node's store ([`KvService::snapshot`]); written beside the copy as its
/// manifest, `meridian-snapshot.json`, which `meridian restore` checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Manifest format version (1).
    pub format: u32,
    /// The snapshot's name (its directory's name).
    pub name: String,
    /// The directory holding the copy, on the node's machine.
    pub path: String,
    /// The node (`node.id`) it is a copy of.
    pub node: String,
    /// The node's region.
    pub region: String,
    /// When it was taken, in ms since the UNIX epoch (the node's wall clock).
    pub created_ms: u64,
    /// Size of its files, in bytes (hard links to live files count in full).
    pub bytes: u64,
    /// Number of files.
    pub files: u64,
    /// Records the node held when the copy was taken (live, expired and tombstones).
    pub records: u64,
    /// The node's `storage.gc_grace_secs`: a snapshot older than this may hold keys whose
    /// tombstones were collected since, so restoring it could bring deleted data back.
    pub gc_grace_secs: u64,
    /// The version of Meridian that wrote it.
    pub meridian_version: String,
}

/// The Merkle root of everything a region stores, for comparing regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionDigest {
    /// The region.
    pub region: String,
    /// The answering node.
    pub node: String,
    /// Root hash over the whole ring (hex), the XOR of the entry hashes of every record.
    pub root: String,
    /// Records counted.
    pub records: u64,
    /// The nodes asked, each for the ranges assigned to it.
    pub nodes: Vec<String>,
}

/// The link from this node to one peer region (and the changes from that region applied
/// here), as the replicator reports it.
pub use meridian_wan::PeerStatus as RegionLink;

/// Cross-region replication as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RegionsStatus {
    /// This region.
    pub region: String,
    /// The answering node.
    pub node: String,
    /// Whether this region is fenced.
    pub fenced: bool,
    /// One entry per peer region.
    pub peers: Vec<RegionLink>,
    /// Conflicts resolved on this node while merging other regions' changes: LWW writes
    /// overwritten by a concurrent newer one, and MVR merges that created siblings.
    pub conflicts_lww_overwrites: u64,
    /// MVR siblings created.
    pub conflicts_siblings_created: u64,
}

/// The region as one node sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    /// The region's name.
    pub region: String,
    /// The answering node's name.
    pub node: String,
    /// Replicas per key (N).
    pub replication_factor: usize,
    /// The ring's version: it increases every time this node sees the membership change.
    pub ring_version: u64,
    /// Nodes, sorted by id.
    pub nodes: Vec<NodeStatus>,
    /// Estimated distinct keys in the region: the sum of the nodes' record counts divided by
    /// the replication factor.
    pub total_keys: u64,
    /// This node's anti-entropy status.
    pub repair: RepairStatus,
    /// This node's join / decommission streaming status.
    pub streaming: StreamingStatus,
}

/// One node's place on the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingNode {
    /// The node's name.
    pub id: String,
    /// Its HTTP API address, if published.
    pub http: Option<SocketAddr>,
    /// Whether the failure detector considers it live.
    pub live: bool,
    /// Its tokens, ascending.
    pub tokens: Vec<u64>,
}

/// The read ring, for token-aware clients: a key's replicas are the owners of the first token
/// `>= token_of(keyspace, key)` and the next distinct nodes clockwise (see
/// `docs/algorithms/ring.md` for `token_of`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingStatus {
    /// The region.
    pub region: String,
    /// The ring version.
    pub version: u64,
    /// Replicas per key.
    pub replication_factor: usize,
    /// Nodes on the read ring, by name.
    pub nodes: Vec<RingNode>,
}

/// Liveness and readiness of the answering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok` when the node serves requests; `starting` or `shutting_down` otherwise.
    pub status: &'static str,
    /// The node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Nodes the failure detector sees live (this one included).
    pub live_nodes: usize,
    /// Nodes known to membership.
    pub known_nodes: usize,
}

impl Health {
    /// Whether the node takes requests.
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }
}

/// Ingress limits the API enforces (from `[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressLimits {
    /// Largest key in bytes.
    pub max_key_bytes: usize,
    /// Largest value (or set element) in bytes.
    pub max_value_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
}

impl Default for IngressLimits {
    fn default() -> Self {
        IngressLimits { max_key_bytes: 256, max_value_bytes: 1 << 20, max_body_bytes: 3 << 19 }
    }
}

/// The client-facing operations of a node.
///
/// Every method validates its input and changes nothing on error. Futures are boxed so the
/// trait is object-safe (`Arc<dyn KvService>` in the HTTP router).
pub trait KvService: Send + Sync + 'static {
    /// Runs a write at its consistency level.
    fn write(&self, req: WriteRequest) -> BoxFuture<'_, Result<WriteOutcome, RegionError>>;

    /// Reads a key at a consistency level (`None`: the keyspace's default, else the cluster's).
    fn read<'a>(
        &'a self,
        keyspace: &'a str,
        key: &'a [u8],
        consistency: Option<ConsistencyLevel>,
    ) -> BoxFuture<'a, Result<ReadOutcome, RegionError>>;

    /// The keyspace `name`, or [`RegionError::UnknownKeyspace`].
    fn keyspace(&self, name: &str) -> Result<KeyspaceInfo, RegionError>;

    /// Every keyspace, sorted by name.
    fn keyspaces(&self) -> Vec<KeyspaceInfo>;

    /// Creates a keyspace in the whole region. Creating one that exists with the same type is
    /// not an error (idempotent: returns it); with another type it is
    /// [`RegionError::KeyspaceExists`]. Names: `[a-z0-9_-]`, 1 to 64 characters.
    fn create_keyspace(&self, name: String, kind: ValueKind) -> BoxFuture<'_, Result<KeyspaceInfo, RegionError>>;

    /// The region as this node sees it.
    fn cluster_status(&self) -> ClusterStatus;

    /// Liveness and readiness.
    fn health(&self) -> Health;

    /// The ingress limits.
    fn limits(&self) -> IngressLimits;

    /// The node's wall clock in ms since the UNIX epoch (for TTLs and expiry in answers).
    fn now_ms(&self) -> u64;

    /// Pending hints on this node, per target.
    fn hints(&self) -> BoxFuture<'_, Result<HintsStatus, RegionError>>;

    /// Starts an anti-entropy pass now over `range` (`(start, end]`; `None`: every range this
    /// node replicates) unless one is running; returns its status (the running one if any).
    fn start_repair(&self, range: Option<(u64, u64)>) -> Result<RepairStatus, RegionError>;

    /// The current or last anti-entropy pass.
    fn repair_status(&self) -> RepairStatus;

    /// Decommissions node `name` (this node, or another member, which is told over RPC): it
    /// streams its ranges to their new replicas, then leaves the ring. Returns at once with
    /// the streaming status; progress is in [`ClusterStatus::streaming`] of that node.
    /// [`RegionError::InvalidRequest`] for an unknown node or one already leaving, and when
    /// the region would have fewer nodes than the replication factor.
    fn decommission(&self, name: String) -> BoxFuture<'_, Result<StreamingStatus, RegionError>>;

    /// The Merkle root of what this node holds for its ranges.
    fn digest(&self) -> BoxFuture<'_, Result<DigestStatus, RegionError>>;

    /// The Merkle root of what the whole region stores: the ring is cut into its ranges, each
    /// range's digest is asked of one live replica (this node when it is one), and the digests
    /// are folded. Regions that hold the same records have the same root, whatever their ring.
    /// [`RegionError::Unavailable`] when a range has no live replica.
    fn region_digest(&self) -> BoxFuture<'_, Result<RegionDigest, RegionError>>;

    /// Cross-region replication status.
    fn regions(&self) -> RegionsStatus;

    /// The read ring with every node's tokens.
    fn ring(&self) -> RingStatus;

    /// This node's metrics in the Prometheus text exposition format (version 0.0.4).
    fn metrics_text(&self) -> BoxFuture<'_, String>;

    /// Fences (`fenced = true`) or unfences region `region`, which must be this node's own:
    /// every member is told. A fenced region refuses client reads and writes with
    /// [`RegionError::Fenced`] and its WAN links are cut both ways.
    fn fence(&self, region: String, fenced: bool) -> BoxFuture<'_, Result<RegionsStatus, RegionError>>;

    /// Asks for a cross-region full sync towards `region` (`None`: every peer region) of the
    /// ranges this node ships.
    fn sync_region(&self, region: Option<String>) -> Result<RegionsStatus, RegionError>;

    /// Writes a consistent snapshot of this node's store (a RocksDB checkpoint) named `name`
    /// (default: `<node>-<ms since the epoch>`) under the node's snapshot directory.
    /// [`RegionError::SnapshotExists`] when the name is taken, [`RegionError::InvalidRequest`]
    /// for a name that is not 1–100 of `[A-Za-z0-9._-]` or starts with a dot.
    fn snapshot(&self, name: Option<String>) -> BoxFuture<'_, Result<SnapshotInfo, RegionError>> {
        let _ = name;
        Box::pin(async { Err(RegionError::InvalidRequest("this service does not take snapshots".into())) })
    }
}

#[cfg(test)]
mod tests {
    use meridian_crdt::{Limits, NodeId, OpContext};

    use super::*;

    fn put(current: Option<Record>, value: &[u8], ts: Hlc) -> Record {
        let ctx = OpContext { actor: ts.node(), ts, now_ms: ts.physical_ms() };
        let op = Op::LwwPut { value: value.to_vec(), ttl_ms: None };
        Record::apply(current, ValueKind::Lww, &op, &ctx, &Limits::default()).expect("apply")
    }

    fn outcome(record: Record, ts: Hlc) -> WriteOutcome {
        WriteOutcome {
            kind: ValueKind::Lww,
            record,
            ts,
            consistency: ConsistencyLevel::Quorum,
            acknowledged: 2,
            replicas: 3,
        }
    }

    #[test]
    fn an_lww_write_that_lost_to_a_newer_one_reports_its_own_version() {
        let newer = Hlc::from_physical_ms(2_000, NodeId(7));
        let older = Hlc::from_physical_ms(1_000, NodeId(9));
        let winner = put(None, b"new", newer);
        // The older write reaches a replica that already holds the newer value: the state
        // stays the newer one, the write's version is still its own timestamp.
        let after = put(Some(winner.clone()), b"old", older);
        assert_eq!(version_of(&after), newer.to_string());
        assert_eq!(outcome(after, older).version(), older.to_string());
        assert_eq!(outcome(winner, newer).version(), newer.to_string());
    }
}
