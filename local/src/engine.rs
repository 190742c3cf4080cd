//! The engine interface: an ordered key-value store with column families and atomic,
//! durable write batches. Everything above it (merge-on-write, change log, hints, Merkle
//! segments, GC) is engine-independent and lives in [`crate::store`].

use std::fmt::Debug;
use std::ops::ControlFlow;

use crate::error::StoreError;

/// The column families of a node's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Records, keyed by storage key (token-ordered).
    Data,
    /// The change log, keyed by sequence number (big-endian u64).
    Changelog,
    /// Hinted writes for other replicas, keyed by target node ‖ sequence number.
    Hints,
    /// Node metadata (GC horizon, cursors, ring state), keyed by name.
    Meta,
    /// Merkle segment digests, keyed by segment number (big-endian u16); written only with
    /// [`BatchOp::SegmentDelta`].
    Merkle,
}

impl Cf {
    /// Every column family.
    pub const ALL: [Cf; 5] = [Cf::Data, Cf::Changelog, Cf::Hints, Cf::Meta, Cf::Merkle];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Data => "data",
            Cf::Changelog => "changelog",
            Cf::Hints => "hints",
            Cf::Meta => "meta",
            Cf::Merkle => "merkle",
        }
    }
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
    },
    /// Remove every key in `[start, end)`.
    DeleteRange {
        /// Column family.
        cf: Cf,
        /// First key removed.
        start: Vec<u8>,
        /// First key kept.
        end: Vec<u8>,
    },
    /// Fold a delta into a Merkle segment: XOR into its hash, wrapping add into its count.
    /// Both operations commute, so concurrent writers need no ordering between them.
    SegmentDelta {
        /// The segment.
        segment: u16,
        /// The delta.
        delta: SegmentDigest,
    },
}

/// The digest of one Merkle segment: XOR of the hashes of its entries and their number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SegmentDigest {
    /// XOR of the per-entry hashes.
    pub hash: u64,
    /// Number of entries (wrapping arithmetic; deltas are ±1 as u64).
    pub count: u64,
}

impl SegmentDigest {
    /// Folds `other` into `self`.
    pub fn fold(&mut self, other: SegmentDigest) {
        self.hash ^= other.hash;
        self.count = self.count.wrapping_add(other.count);
    }

    /// The 16-byte on-disk form (little-endian hash, then count).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        out[8..].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Parses the on-disk form; `None` if it is not 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; 16] = bytes.try_into().ok()?;
        Some(Self {
            hash: u64::from_le_bytes(b[..8].try_into().ok()?),
            count: u64::from_le_bytes(b[8..].try_into().ok()?),
        })
    }

    /// Whether nothing has been folded in (or everything folded in was folded out again).
    pub fn is_empty(&self) -> bool {
        self.hash == 0 && self.count == 0
    }
}

/// An atomic group of writes: after a crash, all of them are present or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The operations, applied in order.
    pub ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// Adds a put.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put { cf, key: key.into(), value: value.into() });
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete { cf, key: key.into() });
    }

    /// Adds a range delete of `[start, end)`.
    pub fn delete_range(&mut self, cf: Cf, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::DeleteRange { cf, start: start.into(), end: end.into() });
    }

    /// Adds a Merkle segment delta.
    pub fn segment_delta(&mut self, segment: u16, delta: SegmentDigest) {
        self.ops.push(BatchOp::SegmentDelta { segment, delta });
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Figures an engine reports about itself (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Estimated bytes of live data.
    pub live_data_bytes: u64,
    /// Bytes compaction still has to rewrite.
    pub pending_compaction_bytes: u64,
    /// Bytes in memtables.
    pub memtable_bytes: u64,
}

/// The visitor of [`Engine::scan`]: gets each key and value, returns whether to go on.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// An ordered key-value engine with column families.
///
/// Implementations: [`crate::memory::MemoryEngine`] and `meridian_rocksdb::RocksEngine`.
/// Both pass [`crate::conformance`].
pub trait Engine: Send + Sync + Debug + 'static {
    /// Reads one key.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads one key and hands the value to `f` without copying it where the engine can.
    fn read(&self, cf: Cf, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), StoreError> {
        let v = self.get(cf, key)?;
        f(v.as_deref());
        Ok(())
    }

    /// Like [`Engine::read`], but only from memory (memtables and block cache): `Ok(false)`,
    /// without calling `f`, when answering would need disk I/O. Lets async callers serve hot
    /// reads without a thread hand-off. Engines that never block answer every read.
    fn read_cached(&self, cf: Cf, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<bool, StoreError> {
        self.read(cf, key, f)?;
        Ok(true)
    }

    /// Applies `batch` atomically. Returns once it is as durable as the engine's configured
    /// durability promises.
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError>;

    /// Visits the keys in `[start, end)` (`end = None`: to the last key) in order, until `f`
    /// breaks. Sees a consistent snapshot.
    fn scan(&self, cf: Cf, start: &[u8], end: Option<&[u8]>, f: &mut ScanVisitor<'_>) -> Result<(), StoreError>;

    /// The greatest key of `cf`, if any.
    fn last_key(&self, cf: Cf) -> Result<Option<Vec<u8>>, StoreError>;

    /// Flushes memtables (and the WAL) to disk.
    fn flush(&self) -> Result<(), StoreError>;

    /// Engine figures for metrics.
    fn stats(&self) -> EngineStats;

    /// Writes a consistent point-in-time copy of the whole database (every column family) to
    /// `dir`, which must not exist. Engines without a durable form refuse.
    fn checkpoint(&self, dir: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Engine(format!("this storage engine cannot write a snapshot to {}", dir.display())))
    }
}
