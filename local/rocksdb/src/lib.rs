//! The RocksDB engine behind Meridian's [`Store`](meridian_local::Store).
//!
//! One RocksDB database per node with a column family per [`Cf`]. Merkle segment deltas use
//! an associative merge operator (XOR of hashes, wrapping add of counts), so concurrent
//! writers fold their deltas without reading or ordering anything.
//!
//! Durability ([`Durability`]): `sync` writes with `sync = true` (RocksDB's write groups make
//! concurrent writers share one fsync); `group` writes without sync, then one leader writer
//! fsyncs the WAL for every writer that arrived within a window; `none` never
//! fsyncs (a process crash loses nothing, a machine crash may).
//!
//! # Layout
//!
//! - this file: [`RocksEngine`], its options and the merge operator.
//! - [`group`]: group commit.

pub mod group;

use std::path::Path;

use meridian_local::engine::ScanVisitor;
use meridian_local::{BatchOp, Cf, Durability, Engine, EngineStats, SegmentDigest, StorageConfig, StoreError};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, MergeOperands, Options, ReadOptions,
    WriteOptions, DB,
};

use crate::group::GroupSync;

/// A [`meridian_local::Engine`] over RocksDB.
pub struct RocksEngine {
    db: DB,
    durability: Durability,
    group: Option<GroupSync>,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine").field("path", &self.db.path()).field("durability", &self.durability).finish()
    }
}

fn engine_err(e: rocksdb::Error) -> StoreError {
    StoreError::Engine(e.into_string())
}

/// The merge operator of the Merkle column family: folds 16-byte segment digests.
fn segment_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut acc = existing.and_then(SegmentDigest::from_bytes).unwrap_or_default();
    for op in operands {
        // A malformed operand cannot come from this engine; skipping it keeps the rest.
        if let Some(d) = SegmentDigest::from_bytes(op) {
            acc.fold(d);
        }
    }
    Some(acc.to_bytes().to_vec())
}

/// The database and column-family options for `cfg`. Public so benchmarks can open a raw
/// RocksDB with exactly the same options.
pub fn options(cfg: &StorageConfig) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(cfg.block_cache_bytes as usize);
    let mut db = Options::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.increase_parallelism(2);
    db.set_enable_pipelined_write(true);
    db.set_max_background_jobs(2);
    let cf_opts = |cf: Cf| {
        let mut o = Options::default();
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        if cf == Cf::Data {
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
        }
        o.set_block_based_table_factory(&table);
        o.set_write_buffer_size(cfg.write_buffer_bytes as usize);
        o.set_compression_type(DBCompressionType::Lz4);
        if cf == Cf::Merkle {
            o.set_merge_operator_associative("meridian_segment_xor", segment_merge);
        }
        o
    };
    let cfs = Cf::ALL.iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_opts(*cf))).collect();
    (db, cfs)
}

impl RocksEngine {
    /// Opens (creating when missing) the database in `cfg.data_dir`.
    pub fn open(cfg: &StorageConfig) -> Result<Self, StoreError> {
        Self::open_at(&cfg.data_dir, cfg)
    }

    /// Opens the database in `path` with the other settings of `cfg`.
    pub fn open_at(path: &Path, cfg: &StorageConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Engine(format!("creating {}: {e}", path.display())))?;
        let (opts, cfs) = options(cfg);
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(engine_err)?;
        let group = (cfg.durability == Durability::Group).then(|| GroupSync::start(cfg.group_commit_interval()));
        Ok(Self { db, durability: cfg.durability, group })
    }

    fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(cf.name()).expect("every column family is created on open")
    }

    /// The underlying database (for checkpoints and tools).
    pub fn db(&self) -> &DB {
        &self.db
    }

    fn int_property(&self, name: &str) -> u64 {
        Cf::ALL.iter().filter_map(|cf| self.db.property_int_value_cf(self.cf(*cf), name).ok().flatten()).sum()
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf), key).map_err(engine_err)
    }

    fn read(&self, cf: Cf, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), StoreError> {
        let pinned = self.db.get_pinned_cf(self.cf(cf), key).map_err(engine_err)?;
        f(pinned.as_deref());
        Ok(())
    }

    fn read_cached(&self, cf: Cf, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<bool, StoreError> {
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_read_tier(rocksdb::ReadTier::BlockCache);
        match self.db.get_pinned_cf_opt(self.cf(cf), key, &ro) {
            Ok(pinned) => {
                f(pinned.as_deref());
                Ok(true)
            }
            // The value (or proof of its absence) is not in memory.
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(false),
            Err(e) => Err(engine_err(e)),
        }
    }

    fn write(&self, batch: meridian_local::WriteBatch) -> Result<(), StoreError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => wb.put_cf(self.cf(cf), key, value),
                BatchOp::Delete { cf, key } => wb.delete_cf(self.cf(cf), key),
                BatchOp::DeleteRange { cf, start, end } => wb.delete_range_cf(self.cf(cf), start, end),
                BatchOp::SegmentDelta { segment, delta } => {
                    wb.merge_cf(self.cf(Cf::Merkle), segment.to_be_bytes(), delta.to_bytes())
                }
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Sync);
        self.db.write_opt(wb, &wo).map_err(engine_err)?;
        if let Some(group) = &self.group {
            group.wait_synced(|| self.db.flush_wal(true).map_err(engine_err))?;
        }
        Ok(())
    }

    fn scan(&self, cf: Cf, start: &[u8], end: Option<&[u8]>, f: &mut ScanVisitor<'_>) -> Result<(), StoreError> {
        let mut ro = ReadOptions::default();
        if let Some(end) = end {
            ro.set_iterate_upper_bound(end.to_vec());
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf), ro);
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if f(k, v).is_break() {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(engine_err)
    }

    fn last_key(&self, cf: Cf) -> Result<Option<Vec<u8>>, StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf));
        it.seek_to_last();
        let key = it.key().map(<[u8]>::to_vec);
        it.status().map_err(engine_err)?;
        Ok(key)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true).map_err(engine_err)?;
        for cf in Cf::ALL {
            self.db.flush_cf(self.cf(cf)).map_err(engine_err)?;
        }
        Ok(())
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            live_data_bytes: self.int_property("rocksdb.estimate-live-data-size"),
            pending_compaction_bytes: self.int_property("rocksdb.estimate-pending-compaction-bytes"),
            memtable_bytes: self.int_property("rocksdb.cur-size-all-mem-tables"),
        }
    }

    /// RocksDB's checkpoint: live SST files hard-linked (copied across file systems), the
    /// MANIFEST and OPTIONS copied, memtables flushed first, so every column family is at the
    /// same sequence number and every atomic write batch is wholly in or wholly out.
    fn checkpoint(&self, dir: &Path) -> Result<(), StoreError> {
        if dir.exists() {
            return Err(StoreError::Engine(format!("snapshot directory {} already exists", dir.display())));
        }
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(engine_err)?;
        cp.create_checkpoint(dir).map_err(engine_err)
    }
}
