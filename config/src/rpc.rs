//! The `[rpc]` section: intra-region RPC and gossip (QUIC).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The `[rpc]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Socket address intra-region RPC and gossip listen on (QUIC over UDP). Port 0 lets the
    /// OS choose (tests); the chosen port is then what the node advertises.
    pub listen: SocketAddr,
    /// Address other nodes of the region reach this node at, when it differs from `listen`
    /// (NAT, containers). Required when `listen` is an unspecified address (`0.0.0.0`, `::`).
    pub advertise: Option<SocketAddr>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 7000)), advertise: None }
    }
}

impl RpcConfig {
    /// The address announced to the region in gossip: `advertise`, or else `listen`.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.advertise.unwrap_or(self.listen)
    }

    /// Checks that other nodes can reach the advertised address.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.advertise {
            None if self.listen.ip().is_unspecified() => Err(ConfigError::invalid(
                "rpc.advertise",
                format!("must be set when rpc.listen is the unspecified address {}", self.listen),
            )),
            Some(addr) if addr.ip().is_unspecified() || addr.port() == 0 => Err(ConfigError::invalid(
                "rpc.advertise",
                format!("{addr} is not reachable: it needs a concrete IP and port"),
            )),
            _ => Ok(()),
        }
    }
}
