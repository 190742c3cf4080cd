//! Storage configuration: the `[storage]` section of a node's TOML file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// When an acknowledged write is on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every write is fsynced before it is acknowledged. Concurrent writers share one fsync
    /// (RocksDB's write group), so this is already a group commit under concurrency.
    Sync,
    /// Writes go to the WAL without fsync; a syncer thread fsyncs the WAL at most every
    /// `group_commit_interval` and acknowledges every write the fsync covered. Amortises one
    /// fsync over the writers of an interval, at the price of up to that interval of latency.
    Group,
    /// No fsync: a write survives a crash of the process (the WAL is in the OS page cache) but
    /// not of the machine.
    None,
}

/// The `[storage]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Engine: `rocksdb` (durable) or `memory` (tests and simulation only).
    pub engine: EngineKind,
    /// Directory of the node's data; created when missing.
    pub data_dir: PathBuf,
    /// Durability of acknowledged writes.
    pub durability: Durability,
    /// Longest wait for the WAL fsync in `group` mode, in milliseconds.
    pub group_commit_interval_ms: u64,
    /// RocksDB block cache size, in bytes.
    pub block_cache_bytes: u64,
    /// RocksDB write buffer (memtable) size per column family, in bytes.
    pub write_buffer_bytes: u64,
    /// Grace after which a tombstone or an expired value may be collected even when not every
    /// replica is known to have seen it, in seconds. Anti-entropy must complete a full pass
    /// within this time or deleted data can come back (see docs/algorithms/storage.md).
    pub gc_grace_secs: u64,
    /// How many change-log entries to keep at most before the oldest are trimmed even if a
    /// region has not acknowledged them (that region is then repaired by full sync).
    pub changelog_retention_entries: u64,
    /// Where `POST /api/v1/cluster/snapshot` writes snapshots. Unset: `<data_dir>.snapshots`
    /// beside the data directory (the same file system, so the copy is hard links).
    pub snapshot_dir: Option<PathBuf>,
}

/// Which storage engine backs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// RocksDB on `data_dir`.
    Rocksdb,
    /// In memory; nothing survives a restart.
    Memory,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::Rocksdb,
            data_dir: PathBuf::from("data"),
            durability: Durability::Sync,
            group_commit_interval_ms: 2,
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
            gc_grace_secs: 10 * 24 * 3600,
            changelog_retention_entries: 10_000_000,
            snapshot_dir: None,
        }
    }
}

impl StorageConfig {
    /// The group-commit interval as a duration.
    pub fn group_commit_interval(&self) -> Duration {
        Duration::from_millis(self.group_commit_interval_ms)
    }

    /// The directory snapshots go to: `snapshot_dir`, else `<data_dir>.snapshots`.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.snapshot_dir.clone().unwrap_or_else(|| {
            let mut name = self.data_dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "data".into());
            name.push(".snapshots");
            self.data_dir.with_file_name(name)
        })
    }

    /// Checks the values a typo or a unit mistake would break.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |field: &'static str, reason: String| Err(StoreError::InvalidConfig { field, reason });
        if self.data_dir.as_os_str().is_empty() {
            return bad("storage.data_dir", "must not be empty".into());
        }
        if self.durability == Durability::Group && !(1..=1000).contains(&self.group_commit_interval_ms) {
            return bad(
                "storage.group_commit_interval_ms",
                format!("{} is outside 1..=1000", self.group_commit_interval_ms),
            );
        }
        if self.block_cache_bytes < (1 << 20) {
            return bad("storage.block_cache_bytes", "must be at least 1 MiB".into());
        }
        if self.write_buffer_bytes < (1 << 20) {
            return bad("storage.write_buffer_bytes", "must be at least 1 MiB".into());
        }
        if self.gc_grace_secs < 60 {
            return bad("storage.gc_grace_secs", "must be at least 60 seconds".into());
        }
        if self.snapshot_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty() || *d == self.data_dir) {
            return bad("storage.snapshot_dir", "must not be empty or the data directory itself".into());
        }
        if self.changelog_retention_entries < 1000 {
            return bad("storage.changelog_retention_entries", "must be at least 1000".into());
        }
        Ok(())
    }
}
