//! Meridian's value model and conflict resolution.
//!
//! Every key holds a [`Record`]: one of four replicated data types, a replicated expiry and the
//! greatest HLC of any operation folded in. Replicas change records in two ways only:
//! [`Record::apply`] runs a client operation at one replica, and [`Record::merge`] joins another
//! replica's state. Merge is commutative, associative and idempotent for every type, and equal
//! states encode to identical bytes, so replicas that have exchanged states converge to
//! byte-identical records (which is what the storage layer's Merkle digests compare).
//!
//! The crate is pure: no I/O, no clock reads, no randomness, no tasks. Time enters as
//! arguments (`now_ms`, [`OpContext::ts`]); the node shell owns the wall clock and the
//! [`HlcClock`] instance.
//!
//! # Layout
//!
//! | module | concept |
//! |---|---|
//! | [`hlc`] | [`NodeId`], the [`Hlc`] timestamp (total order `(time, node)`), the [`HlcClock`] state machine with its max-offset rejection |
//! | [`causal`] | [`Dot`] and [`CausalContext`], the version vector shared by `mvr` and `set` |
//! | [`lww`] | [`LwwRegister`]: greater HLC wins, deterministic tie-break |
//! | [`mvr`] | [`MvRegister`]: multi-value register with dotted version vectors |
//! | [`counter`] | [`PnCounter`]: PN-counter with observed-remove reset floors |
//! | [`set`] | [`AwSet`]: add-wins observed-remove set of byte strings |
//! | [`expiry`] | [`Expiry`]: record-level TTL as an LWW register |
//! | [`record`] | [`Record`], [`Op`], [`OpContext`], [`ReadValue`], [`ValueKind`], [`Limits`]: the API the storage layer uses |
//! | [`codec`] | versioned canonical encodings (version byte + postcard), pinned by golden vectors |
//! | [`error`] | [`CrdtError`], the crate's one error type, with stable codes |
//!
//! The algorithms and their invariants are written down in `docs/algorithms/hlc-lww.md`,
//! `mvr.md`, `counter.md` and `set.md`; the property tests in `tests/` check them.

#![deny(clippy::disallowed_methods)]

pub mod causal;
pub mod codec;
pub mod counter;
pub mod error;
pub mod expiry;
pub mod hlc;
pub mod lww;
pub mod mvr;
pub mod record;
pub mod set;

pub use causal::{CausalContext, Dot};
pub use counter::{CounterEntry, PnCounter, Slot};
pub use error::CrdtError;
pub use expiry::Expiry;
pub use hlc::{Hlc, HlcClock, NodeId};
pub use lww::LwwRegister;
pub use mvr::MvRegister;
pub use record::{Limits, Op, OpContext, ReadValue, Record, ValueKind};
pub use set::AwSet;
