//! The regional cluster: a Dynamo-style quorum cluster inside one region.
//!
//! Protocol logic is written as state machines that take time and inputs as arguments and
//! return decisions (no sockets, no clock reads, no spawned tasks), so the same code runs in
//! seeded simulation and in production behind a thin tokio shell.
//!
//! # Layout
//!
//! - [`ring`]: consistent hashing with virtual nodes; replica placement; ring versions.
//! - [`quorum`]: the coordinator's per-request state machines for writes and reads at
//!   `ONE` / `QUORUM` / `ALL`, with read-repair decisions.
//! - [`service`]: [`service::KvService`], what a node offers clients, independent of HTTP.
//! - [`http`]: the HTTP API (axum) over a [`service::KvService`].
//! - [`membership`]: gossip (chitchat over the mTLS endpoint), failure detection, the
//!   [`membership::RegionView`] and the ring it forms.
//! - [`rpc`]: the versioned intra-region messages.
//! - [`node`]: the node: store, clock, membership, RPC and the coordinator composed;
//!   implements [`service::KvService`].
//! - [`anti_entropy`] — what two replicas compare, without I/O.
//! - [`clock`] — wall-clock time as a parameter.
//! - [`metrics`] — counters.
//! - [`error`] — [`RegionError`].

pub mod anti_entropy;
pub mod clock;
pub mod error;
pub mod http;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod quorum;
pub mod ring;
pub mod rpc;
pub mod service;

pub use error::RegionError;
