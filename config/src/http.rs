//! The `[http]` section: the client-facing HTTP API and its ingress limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounds::check_range;
use crate::error::ConfigError;

/// Largest key the data model allows, in bytes (design §2).
pub const KEY_LIMIT_BYTES: u64 = 256;
/// Largest value the data model allows, in bytes (design §2).
pub const VALUE_LIMIT_BYTES: u64 = 1 << 20;
/// Largest request body the server may be configured to accept, in bytes.
pub const BODY_LIMIT_BYTES: u64 = 64 << 20;

/// The `[http]` section.
///
/// The size limits are enforced at client ingress only; replication, hints, repair and WAN
/// never drop data for size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Socket address the HTTP API listens on (TCP). Port 0 lets the OS choose.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (`max_value_bytes`..=64 MiB); larger requests
    /// get 413. It must leave room for a largest value plus its JSON envelope.
    pub max_body_bytes: u64,
    /// Largest key accepted, in bytes (1..=256).
    pub max_key_bytes: u64,
    /// Largest value accepted, in bytes (1..=1048576, i.e. 1 MiB).
    pub max_value_bytes: u64,
    /// PEM file of the certificate chain the API serves HTTPS with (TLS 1.2/1.3, rustls).
    /// Set together with `tls_key`; unset: the API is plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Lets a node whose API listens on a non-loopback address serve plain HTTP (for
    /// example behind a load balancer that terminates TLS). Off by default; a node listening on
    /// loopback only (development) needs no permission.
    pub allow_plaintext: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            // A largest value (1 MiB) base64-encoded in a JSON body is about 1.33 MiB.
            max_body_bytes: 3 << 19,
            max_key_bytes: KEY_LIMIT_BYTES,
            max_value_bytes: VALUE_LIMIT_BYTES,
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
        }
    }
}

impl HttpConfig {
    /// Whether the API serves HTTPS (`tls_cert` and `tls_key` set; validation guarantees both
    /// or neither).
    pub fn has_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Checks the limits against the data model's and against each other, and the TLS paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let paths: [(&str, Option<&Path>); 2] =
            [("http.tls_cert", self.tls_cert.as_deref()), ("http.tls_key", self.tls_key.as_deref())];
        for (field, path) in paths {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(field, "must not be empty"));
            }
        }
        match paths {
            [(_, Some(_)), (missing, None)] | [(missing, None), (_, Some(_))] => {
                return Err(ConfigError::invalid(missing, "set http.tls_cert and http.tls_key together"));
            }
            _ => {}
        }
        check_range("http.max_key_bytes", self.max_key_bytes, 1..=KEY_LIMIT_BYTES)?;
        check_range("http.max_value_bytes", self.max_value_bytes, 1..=VALUE_LIMIT_BYTES)?;
        if self.max_body_bytes < self.max_value_bytes {
            return Err(ConfigError::invalid(
                "http.max_body_bytes",
                format!(
                    "{} is less than http.max_value_bytes ({}); a largest value could not be sent",
                    self.max_body_bytes, self.max_value_bytes
                ),
            ));
        }
        check_range("http.max_body_bytes", self.max_body_bytes, 1..=BODY_LIMIT_BYTES)
    }
}
