//! The `[cluster]` section: the regional cluster (ring, replication, membership, repair).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address::check_host_port;
use crate::bounds::{check_at_least, check_range};
use crate::error::ConfigError;

/// How many replicas of the local region must answer a request (Cassandra's `LOCAL_*` levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyLevel {
    /// One replica.
    One,
    /// A majority of the N replicas: `N / 2 + 1`.
    Quorum,
    /// All N replicas.
    All,
}

impl ConsistencyLevel {
    /// The name used in configuration (`one`, `quorum`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsistencyLevel::One => "one",
            ConsistencyLevel::Quorum => "quorum",
            ConsistencyLevel::All => "all",
        }
    }

    /// How many of `replication_factor` replicas must answer.
    pub fn required(self, replication_factor: u32) -> u32 {
        match self {
            ConsistencyLevel::One => 1.min(replication_factor),
            ConsistencyLevel::Quorum => replication_factor / 2 + 1,
            ConsistencyLevel::All => replication_factor,
        }
    }
}

impl std::fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[cluster]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Addresses (`host:port`, the intra-region RPC/gossip port `rpc.listen` of those nodes)
    /// a starting node contacts to join the region. Listing the node itself is harmless; an
    /// empty list starts a new region alone.
    pub seeds: Vec<String>,
    /// N: how many distinct nodes of the region hold each key (1..=9).
    pub replication_factor: u32,
    /// Virtual nodes (tokens) this node places on the ring (1..=4096). More vnodes spread load
    /// and streaming more evenly at the cost of a larger ring in gossip.
    pub vnodes: u32,
    /// Consistency level of requests that do not name one and whose keyspace sets none.
    pub default_consistency: ConsistencyLevel,
    /// Period of gossip rounds, in milliseconds (10..=60000).
    pub gossip_interval_ms: u64,
    /// Phi-accrual suspicion level above which a silent node is considered down (1..=64).
    /// Meridian's gossip (chitchat) computes phi as the silence since a node's last heartbeat
    /// divided by the mean interval between its heartbeats, so a node is declared down after
    /// about `phi_threshold` mean heartbeat intervals (≈ gossip rounds) without news: 16 at
    /// 200 ms is about 3 s. Lower detects faster and raises false alarms under load.
    pub phi_threshold: f64,
    /// Deadline of one intra-region RPC, in milliseconds (10..=300000).
    pub rpc_timeout_ms: u64,
    /// How long writes for a down replica are kept as hints, in seconds (at least 1 and less
    /// than `storage.gc_grace_secs`). Older hints are dropped (counted in a metric) and the
    /// replica is left to anti-entropy.
    pub hint_window_secs: u64,
    /// Period of Merkle anti-entropy rounds over the node's token ranges, in seconds (at least
    /// 1 and less than `storage.gc_grace_secs`, since a full pass must finish within the grace
    /// or deleted data can come back).
    pub anti_entropy_interval_secs: u64,
    /// Most bytes per second that anti-entropy and join/decommission streaming may move, each
    /// (1 KiB/s..=10 GiB/s). Protects client traffic from repair and rebalancing.
    pub streaming_bytes_per_sec: u64,
    /// Most hints per second replayed to one returning node (1..=1000000).
    pub hint_replay_per_sec: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            replication_factor: 3,
            vnodes: 256,
            default_consistency: ConsistencyLevel::Quorum,
            gossip_interval_ms: 200,
            phi_threshold: 16.0,
            rpc_timeout_ms: 2_000,
            hint_window_secs: 3 * 3_600,
            anti_entropy_interval_secs: 600,
            streaming_bytes_per_sec: 64 << 20,
            hint_replay_per_sec: 5_000,
        }
    }
}

impl ClusterConfig {
    /// The gossip period as a duration.
    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }

    /// The RPC deadline as a duration.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// The hint window as a duration.
    pub fn hint_window(&self) -> Duration {
        Duration::from_secs(self.hint_window_secs)
    }

    /// The anti-entropy period as a duration.
    pub fn anti_entropy_interval(&self) -> Duration {
        Duration::from_secs(self.anti_entropy_interval_secs)
    }

    /// Checks the section's own bounds (the bounds against `storage.gc_grace_secs` are checked
    /// by [`NodeConfig::validate`](crate::NodeConfig::validate)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, seed) in self.seeds.iter().enumerate() {
            let field = format!("cluster.seeds[{i}]");
            check_host_port(&field, seed)?;
            if self.seeds[..i].contains(seed) {
                return Err(ConfigError::invalid(field, format!("{seed:?} is listed twice")));
            }
        }
        check_range("cluster.replication_factor", self.replication_factor, 1..=9)?;
        check_range("cluster.vnodes", self.vnodes, 1..=4096)?;
        check_range("cluster.gossip_interval_ms", self.gossip_interval_ms, 10..=60_000)?;
        check_range("cluster.phi_threshold", self.phi_threshold, 1.0..=64.0)?;
        check_range("cluster.rpc_timeout_ms", self.rpc_timeout_ms, 10..=300_000)?;
        check_at_least("cluster.hint_window_secs", self.hint_window_secs, 1)?;
        check_at_least("cluster.anti_entropy_interval_secs", self.anti_entropy_interval_secs, 1)?;
        check_range("cluster.streaming_bytes_per_sec", self.streaming_bytes_per_sec, 1024..=10 << 30)?;
        check_range("cluster.hint_replay_per_sec", self.hint_replay_per_sec, 1..=1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_replicas() {
        assert_eq!(ConsistencyLevel::Quorum.required(3), 2);
        assert_eq!(ConsistencyLevel::Quorum.required(4), 3);
        assert_eq!(ConsistencyLevel::Quorum.required(1), 1);
        assert_eq!(ConsistencyLevel::One.required(3), 1);
        assert_eq!(ConsistencyLevel::All.required(5), 5);
    }
}
