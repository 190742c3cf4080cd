//! The conformance suite against the in-memory engine.

use std::path::Path;
use std::sync::Arc;

use meridian_local::conformance::EngineFactory;
use meridian_local::{MemoryEngine, NodeStore, Store};

struct Memory;

impl EngineFactory for Memory {
    fn open(&self, _dir: &Path) -> Arc<dyn Store> {
        Arc::new(NodeStore::open(MemoryEngine::new()).expect("open"))
    }
    fn persistent(&self) -> bool {
        false
    }
}

meridian_local::conformance_tests!(Memory);
