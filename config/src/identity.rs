//! The `[node]` section: who this node is, and the numeric id derived from it.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::ConfigError;
use crate::names::check_node_name;

/// The `[node]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Name of the node, unique within its region: `[a-z0-9-]`, 1 to 63 characters.
    /// Changing it makes the node a different node (see [`IdentityConfig::node_number`]).
    pub id: String,
    /// Name of the region the node belongs to: `[a-z0-9-]`, 1 to 63 characters. Every node of
    /// a region carries the same name; it is the identity other regions know the region by.
    pub region: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { id: "node1".into(), region: "local".into() }
    }
}

impl IdentityConfig {
    /// The node's stable, nonzero 64-bit number, used wherever a compact node id is needed
    /// (HLC and LWW tie-breaks, counter actors, version-vector entries).
    ///
    /// Formula: `xxh3_64(region ‖ 0x00 ‖ id)` over the UTF-8 bytes, with the seedless XXH3
    /// 64-bit hash; a result of 0 is mapped to 1, so 0 stays free as "no node". The NUL byte
    /// cannot occur in a valid name, so distinct (region, id) pairs hash distinct inputs.
    /// The formula is part of the on-disk and wire state: it must never change.
    ///
    /// Two nodes of a cluster collide with probability about n²/2⁶⁵ for n nodes over all
    /// regions (below 10⁻¹³ for 10,000 nodes).
    pub fn node_number(&self) -> u64 {
        let mut input = Vec::with_capacity(self.region.len() + 1 + self.id.len());
        input.extend_from_slice(self.region.as_bytes());
        input.push(0);
        input.extend_from_slice(self.id.as_bytes());
        match xxh3_64(&input) {
            0 => 1,
            n => n,
        }
    }

    /// Checks the names' charset and length.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_node_name("node.id", &self.id)?;
        check_node_name("node.region", &self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(region: &str, id: &str) -> IdentityConfig {
        IdentityConfig { id: id.into(), region: region.into() }
    }

    /// Golden values: `node_number` is persisted state, so these must never change. They were
    /// cross-checked against the reference XXH3 (Python `xxhash.xxh3_64_intdigest`).
    #[test]
    fn node_number_is_stable() {
        assert_eq!(ident("us-east", "node1").node_number(), 0x9e1a_007d_41b2_1c1d);
        assert_eq!(ident("local", "node1").node_number(), 0xf02d_9db2_5ba6_a471);
    }

    #[test]
    fn node_number_separates_region_and_id() {
        assert_ne!(ident("ab", "c").node_number(), ident("a", "bc").node_number());
        assert_ne!(ident("us-east", "node1").node_number(), ident("eu-west", "node1").node_number());
        assert_ne!(ident("r", "n").node_number(), 0);
    }

    #[test]
    fn node_number_matches_the_documented_formula() {
        assert_eq!(ident("us-east", "node1").node_number(), xxh3_64(b"us-east\0node1"));
    }
}
