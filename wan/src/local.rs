//! What the replicator needs from its region, as a trait: the node implements it (the
//! replicator does not depend on the regional cluster's code).

use futures::future::BoxFuture;
use meridian_local::TokenRange;

use crate::error::WanError;
use crate::protocol::{DigestAnswer, DigestQuery, Items};

/// Conflicts resolved while applying remote changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Items whose merge changed the region's state.
    pub changed: u32,
}

/// The local region as the replicator sees it.
pub trait LocalRegion: Send + Sync + 'static {
    /// This region's name.
    fn region(&self) -> String;

    /// This node's name.
    fn node(&self) -> String;

    /// Whether this node ships the changes of this key now: it is the first live replica of
    /// the key in the region's read ring.
    fn ships(&self, keyspace: &str, key: &[u8]) -> bool;

    /// The ranges this node ships, and an epoch that changes whenever they may have changed
    /// (a ring change, a replica going down or coming back).
    fn shipping_ranges(&self) -> (u64, Vec<TokenRange>);

    /// Merges remote states into the region at local QUORUM, this node coordinating, with
    /// the origin `Remote { region: from }` (so they are never shipped again).
    fn apply_remote<'a>(&'a self, from: &'a str, items: Items) -> BoxFuture<'a, Result<ApplyReport, WanError>>;

    /// Answers a full-sync query for the whole region over `ranges`: the digests (or key
    /// lists) of every replica group folded together.
    fn region_digest(&self, query: DigestQuery) -> BoxFuture<'_, Result<DigestAnswer, WanError>>;

    /// Wall-clock ms since the UNIX epoch.
    fn now_ms(&self) -> u64;

    /// Whether an operator fenced this region (its WAN links are cut both ways).
    fn fenced(&self) -> bool;
}
