//! Meridian's cross-region replicator.
//!
//! Each region accepts the other regions' QUIC connections (mutual TLS, ALPN
//! `meridian-wan/1`, each peer's certificate checked against its configured `server_name`) and
//! each node ships, to every peer region, the changes of its change log that it is the
//! *shipper* of, in compressed batches, moving a durable per-peer cursor only after the peer
//! merged them at local QUORUM. Delivery is at least once; merges are idempotent joins.
//! Changes that came from another region are never shipped again (no echo). A Merkle **full
//! sync** against the whole peer region repairs what the stream cannot: a log trimmed past a
//! cursor, and the entries of a shipper that went down before shipping them. The algorithm,
//! its invariants and the tests that prove them: `docs/algorithms/wan-replication.md`.
//!
//! The replicator talks to its node through [`LocalRegion`]; it does not depend on the
//! regional cluster's crate.
//!
//! # Layout
//!
//! - [`replicator`]: [`Replicator`]: receiver, shippers, full sync, trimming, status.
//! - [`protocol`]: versioned frames, batch compression with a decompression bound.
//! - [`local`]: [`LocalRegion`], what the replicator needs from its node.
//! - [`lag`]: the lag histogram with a recent window.
//! - [`emulator`]: a delaying, lossy, partitionable UDP relay between regions (no netem here).
//! - [`error`] — [`WanError`].

pub mod emulator;
pub mod error;
pub mod lag;
pub mod local;
pub mod protocol;
pub mod replicator;

pub use error::WanError;
pub use local::{ApplyReport, LocalRegion};
pub use protocol::{Codec, DigestAnswer, DigestQuery, Items};
pub use replicator::{PeerConfig, PeerStatus, Replicator, ReplicatorConfig};
