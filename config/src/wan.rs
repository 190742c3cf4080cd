//! The `[wan]` section: cross-region replication over QUIC with mutual TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address::check_host_port;
use crate::bounds::check_range;
use crate::error::ConfigError;
use crate::names::check_node_name;

/// Compression of WAN change batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Batches are sent as they are.
    None,
    /// LZ4: cheap on CPU, moderate ratio.
    Lz4,
    /// Zstandard: better ratio for more CPU; worth it on expensive or slow links.
    Zstd,
}

/// One remote region this region replicates with (one `[[wan.peers]]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WanPeer {
    /// The remote region's name (its nodes' `node.region`): `[a-z0-9-]`, 1 to 63 characters.
    pub region: String,
    /// `host:port` of the remote region's WAN endpoint (a DNS name or a load balancer in front
    /// of its nodes' `wan.listen`).
    pub address: String,
    /// Name the remote certificate must be valid for (TLS server name / SAN); this is how the
    /// peer's identity is checked against configuration.
    pub server_name: String,
    /// Other `host:port` WAN endpoints of that region (its other nodes), tried in order when
    /// `address` does not answer.
    pub extra_addresses: Vec<String>,
}

/// The `[wan]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WanConfig {
    /// Socket address this node accepts WAN connections from other regions on (QUIC over UDP).
    /// Unset: the node does not accept WAN connections (it may still ship to peers).
    pub listen: Option<SocketAddr>,
    /// The other regions, full mesh. Empty for a single-region deployment.
    pub peers: Vec<WanPeer>,
    /// Most changes in one shipped batch (1..=65536).
    pub batch_max_entries: u32,
    /// Longest a change waits for its batch to fill before the batch is sent, in milliseconds
    /// (0..=10000; 0 sends at once). Adds up to this much replication lag.
    pub batch_max_delay_ms: u64,
    /// Batches sent to each peer region before the first of them is acknowledged (1..=64):
    /// with 1 a change also waits for the round trips of the batches before it.
    pub max_batches_in_flight: u32,
    /// Compression of batches on the wire: `none`, `lz4` or `zstd`.
    pub compression: Compression,
    /// PEM file of the CA certificate(s) peer regions' WAN certificates must chain to. Kept
    /// separate from `tls.ca_cert`: trust between regions is not trust inside a region.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of this region's WAN certificate chain (valid for `<region>.wan.meridian`, or
    /// the name peers list as their `server_name` for this region).
    pub cert: Option<PathBuf>,
    /// PEM file of the WAN certificate's private key.
    pub key: Option<PathBuf>,
}

impl Default for WanConfig {
    fn default() -> Self {
        Self {
            listen: None,
            peers: Vec::new(),
            batch_max_entries: 512,
            batch_max_delay_ms: 20,
            max_batches_in_flight: 8,
            compression: Compression::Lz4,
            ca_cert: None,
            cert: None,
            key: None,
        }
    }
}

impl WanConfig {
    /// The batching delay as a duration.
    pub fn batch_max_delay(&self) -> Duration {
        Duration::from_millis(self.batch_max_delay_ms)
    }

    /// Checks batching bounds and the peers, given the node's own region.
    pub fn validate(&self, own_region: &str) -> Result<(), ConfigError> {
        check_range("wan.batch_max_entries", self.batch_max_entries, 1..=65_536)?;
        check_range("wan.batch_max_delay_ms", self.batch_max_delay_ms, 0..=10_000)?;
        check_range("wan.max_batches_in_flight", self.max_batches_in_flight, 1..=64)?;
        for (i, peer) in self.peers.iter().enumerate() {
            let field = |name: &str| format!("wan.peers[{i}].{name}");
            check_node_name(&field("region"), &peer.region)?;
            if peer.region == own_region {
                return Err(ConfigError::invalid(
                    field("region"),
                    format!("{:?} is this node's own region (node.region)", peer.region),
                ));
            }
            if let Some(j) = self.peers[..i].iter().position(|p| p.region == peer.region) {
                return Err(ConfigError::invalid(
                    field("region"),
                    format!("{:?} is already wan.peers[{j}].region", peer.region),
                ));
            }
            check_host_port(&field("address"), &peer.address)?;
            for (j, extra) in peer.extra_addresses.iter().enumerate() {
                check_host_port(&field(&format!("extra_addresses[{j}]")), extra)?;
            }
            check_server_name(&field("server_name"), &peer.server_name)?;
        }
        let paths = [("wan.ca_cert", &self.ca_cert), ("wan.cert", &self.cert), ("wan.key", &self.key)];
        let set = paths.iter().filter(|(_, p)| p.is_some()).count();
        if set != 0 && set != 3 {
            let missing = paths.iter().find(|(_, p)| p.is_none()).map(|(f, _)| *f).unwrap_or("wan.key");
            return Err(ConfigError::invalid(missing, "set wan.ca_cert, wan.cert and wan.key together"));
        }
        Ok(())
    }

    /// Whether WAN certificates are configured.
    pub fn has_tls(&self) -> bool {
        self.ca_cert.is_some() && self.cert.is_some() && self.key.is_some()
    }
}

/// A TLS server name: a DNS name of labels `[A-Za-z0-9-]` separated by dots, or an IP address.
fn check_server_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, format!("{name:?} is not a DNS name or an IP address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for ok in ["wan.eu-west.meridian.internal", "localhost", "10.0.0.1", "::1"] {
            assert!(check_server_name("f", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "a b", "wan.eu-west.", "under_score.example"] {
            assert!(check_server_name("f", bad).is_err(), "{bad}");
        }
    }
}
