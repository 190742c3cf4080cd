//! The `[tls]` section: certificates for mutual TLS on intra-region RPC and the WAN.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The `[tls]` section. Either all three paths are set (mutual TLS on) or none is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) that peers' certificates must chain to.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of this node's certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM file of this node's private key.
    pub key: Option<PathBuf>,
    /// Lets the server start without TLS (plaintext, unauthenticated transport). For loopback
    /// development and tests only: with it false, a node without certificates refuses to start.
    pub allow_insecure: bool,
}

impl TlsConfig {
    /// Whether certificates are configured (validation guarantees all three or none).
    pub fn is_configured(&self) -> bool {
        self.ca_cert.is_some() && self.cert.is_some() && self.key.is_some()
    }

    /// Whether the node may start: TLS is configured, or plaintext is explicitly allowed.
    /// The server refuses to start when this is false; `validate` does not, so that the
    /// defaults stay valid for tests.
    pub fn permits_start(&self) -> bool {
        self.is_configured() || self.allow_insecure
    }

    /// Checks that the paths are all set or all unset, and not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let paths: [(&str, Option<&Path>); 3] = [
            ("tls.ca_cert", self.ca_cert.as_deref()),
            ("tls.cert", self.cert.as_deref()),
            ("tls.key", self.key.as_deref()),
        ];
        for (field, path) in paths {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(field, "must not be empty"));
            }
        }
        let set: Vec<&str> = paths.iter().filter(|(_, path)| path.is_some()).map(|(field, _)| *field).collect();
        if set.is_empty() {
            return Ok(());
        }
        if let Some((missing, _)) = paths.iter().find(|(_, path)| path.is_none()) {
            return Err(ConfigError::invalid(
                *missing,
                format!(
                    "must be set because {} {} set; set tls.ca_cert, tls.cert and tls.key together",
                    set.join(" and "),
                    if set.len() == 1 { "is" } else { "are" }
                ),
            ));
        }
        Ok(())
    }
}
