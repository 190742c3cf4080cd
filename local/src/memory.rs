//! The in-memory engine, for simulation and tests. Same semantics as the RocksDB engine
//! (both pass the conformance suite), no durability.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use crate::engine::{BatchOp, Cf, Engine, EngineStats, ScanVisitor, SegmentDigest, WriteBatch};
use crate::error::StoreError;

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// An engine that keeps every column family in a `BTreeMap`.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: RwLock<[Table; 5]>,
}

fn idx(cf: Cf) -> usize {
    Cf::ALL.iter().position(|c| *c == cf).expect("every Cf is in Cf::ALL")
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Engine for MemoryEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables.read()[idx(cf)].get(key).cloned())
    }

    fn read(&self, cf: Cf, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), StoreError> {
        f(self.tables.read()[idx(cf)].get(key).map(Vec::as_slice));
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut tables = self.tables.write();
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => {
                    tables[idx(cf)].insert(key, value);
                }
                BatchOp::Delete { cf, key } => {
                    tables[idx(cf)].remove(&key);
                }
                BatchOp::DeleteRange { cf, start, end } => {
                    let t = &mut tables[idx(cf)];
                    let doomed: Vec<Vec<u8>> = t.range(start..end).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        t.remove(&k);
                    }
                }
                BatchOp::SegmentDelta { segment, delta } => {
                    let t = &mut tables[idx(Cf::Merkle)];
                    let key = segment.to_be_bytes().to_vec();
                    let mut cur = t.get(&key).and_then(|v| SegmentDigest::from_bytes(v)).unwrap_or_default();
                    cur.fold(delta);
                    t.insert(key, cur.to_bytes().to_vec());
                }
            }
        }
        Ok(())
    }

    fn scan(&self, cf: Cf, start: &[u8], end: Option<&[u8]>, f: &mut ScanVisitor<'_>) -> Result<(), StoreError> {
        let tables = self.tables.read();
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        for (k, v) in tables[idx(cf)].range::<[u8], _>((Bound::Included(start), upper)) {
            if f(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, cf: Cf) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables.read()[idx(cf)].keys().next_back().cloned())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn stats(&self) -> EngineStats {
        let tables = self.tables.read();
        let bytes: usize = tables.iter().flat_map(|t| t.iter()).map(|(k, v)| k.len() + v.len()).sum();
        EngineStats { live_data_bytes: bytes as u64, pending_compaction_bytes: 0, memtable_bytes: bytes as u64 }
    }
}
