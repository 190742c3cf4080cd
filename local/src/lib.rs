//! Node-local storage for Meridian.
//!
//! A node keeps every record it replicates in a [`Store`]: merge-on-write of CRDT states,
//! a sequence-numbered change log written in the same batch as each change (for WAN
//! shipping and range streaming), hinted-handoff queues, node metadata, and incremental
//! Merkle digests per token range for anti-entropy. The store is written once, over the
//! small [`Engine`] interface; this crate has the in-memory engine and does not depend on
//! RocksDB (the `meridian-rocksdb` crate has that engine). Both engines pass the same
//! conformance suite ([`conformance`]).
//!
//! The algorithms and their invariants are in `docs/algorithms/storage.md` and
//! `docs/algorithms/merkle.md`.
//!
//! # Layout
//!
//! - [`keys`]: ring tokens and the storage key layout (a token range is one contiguous scan).
//! - [`engine`]: the [`Engine`] trait, column families, atomic write batches.
//! - [`store`]: the [`Store`] trait and [`NodeStore`], its engine-independent implementation.
//! - [`changelog`]: change-log entries and the sequence tracker.
//! - [`hints`]: hinted-handoff entries.
//! - [`merkle`]: segment digests, range digests and their comparison.
//! - [`memory`]: the in-memory engine.
//! - [`config`]: the `[storage]` configuration section.
//! - [`metrics`]: the store's counters.
//! - [`error`]: the crate's error type, [`StoreError`].

pub mod changelog;
pub mod config;
pub mod conformance;
pub mod engine;
pub mod error;
pub mod hints;
pub mod keys;
pub mod memory;
pub mod merkle;
pub mod metrics;
pub mod store;

pub use changelog::{ChangeEntry, Origin};
pub use config::{Durability, EngineKind, StorageConfig};
pub use engine::{BatchOp, Cf, Engine, EngineStats, SegmentDigest, WriteBatch};
pub use error::StoreError;
pub use hints::Hint;
pub use keys::{token_of, StorageKey, TokenRange};
pub use memory::MemoryEngine;
pub use merkle::RangeDigest;
pub use store::{ApplyOutcome, GcStats, MergeOutcome, NodeStore, Store};
