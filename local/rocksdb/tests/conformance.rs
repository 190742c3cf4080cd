//! The storage conformance suite against RocksDB, in each durability mode.

use std::path::Path;
use std::sync::Arc;

use meridian_local::conformance::EngineFactory;
use meridian_local::{Durability, NodeStore, StorageConfig, Store};
use meridian_rocksdb::RocksEngine;

struct Rocks(Durability);

impl EngineFactory for Rocks {
    fn open(&self, dir: &Path) -> Arc<dyn Store> {
        let cfg = StorageConfig {
            data_dir: dir.to_path_buf(),
            durability: self.0,
            group_commit_interval_ms: 1,
            block_cache_bytes: 8 << 20,
            write_buffer_bytes: 4 << 20,
            ..StorageConfig::default()
        };
        Arc::new(NodeStore::open(RocksEngine::open(&cfg).expect("open rocksdb")).expect("open store"))
    }
    fn persistent(&self) -> bool {
        true
    }
}

mod sync {
    use super::*;
    meridian_local::conformance_tests!(Rocks(Durability::Sync));
}

mod group {
    use super::*;
    meridian_local::conformance_tests!(Rocks(Durability::Group));
}

mod no_fsync {
    use super::*;
    meridian_local::conformance_tests!(Rocks(Durability::None));
}
