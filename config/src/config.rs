//! [`NodeConfig`]: the whole configuration of one node, and the rules that span sections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meridian_local::StorageConfig;
use serde::{Deserialize, Serialize};

use crate::address::listen_conflict;
use crate::auth::{AuthConfig, Scope, TokenConfig};
use crate::clock::ClockConfig;
use crate::cluster::{ClusterConfig, ConsistencyLevel};
use crate::error::{ConfigError, Origin};
use crate::http::HttpConfig;
use crate::identity::IdentityConfig;
use crate::keyspace::{validate_keyspaces, KeyspaceConfig, KeyspaceType, DEFAULT_KEYSPACE};
use crate::layering;
use crate::rpc::RpcConfig;
use crate::telemetry::TelemetryConfig;
use crate::tls::TlsConfig;
use crate::wan::{WanConfig, WanPeer};

/// The configuration of one node: one TOML file, one table per section.
///
/// Every section and field has a default, so an empty file is a valid configuration of a
/// single-node development region on loopback. Unknown keys are errors everywhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// `[node]`: the node's name and region.
    pub node: IdentityConfig,
    /// `[storage]`: the node-local store (owned by `meridian-local`).
    pub storage: StorageConfig,
    /// `[clock]`: hybrid logical clock bounds.
    pub clock: ClockConfig,
    /// `[cluster]`: the regional cluster.
    pub cluster: ClusterConfig,
    /// `[http]`: the client API.
    pub http: HttpConfig,
    /// `[auth]`: bearer tokens of the client API.
    pub auth: AuthConfig,
    /// `[rpc]`: intra-region RPC and gossip.
    pub rpc: RpcConfig,
    /// `[tls]`: certificates for mutual TLS.
    pub tls: TlsConfig,
    /// `[wan]`: cross-region replication.
    pub wan: WanConfig,
    /// `[[keyspaces]]`: declared keyspaces, besides the implicit `default` (`lww`).
    pub keyspaces: Vec<KeyspaceConfig>,
    /// `[telemetry]`: logs and trace export.
    pub telemetry: TelemetryConfig,
}

impl NodeConfig {
    /// Parses one TOML document. Unknown keys and mistyped values are errors; bounds are not
    /// checked (call [`NodeConfig::validate`], or use [`NodeConfig::load`], which does).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        layering::parse_document(text, Origin::Text)
    }

    /// Loads and validates a configuration from its layers, later layers winning:
    ///
    /// 1. the defaults;
    /// 2. the TOML file at `path`, if any;
    /// 3. `env`: variables `MERIDIAN_<SECTION>__<KEY>` (`MERIDIAN_CLUSTER__REPLICATION_FACTOR=5`,
    ///    `MERIDIAN_NODE__ID=n2`); other variables are ignored;
    /// 4. `overrides`: dotted keys with text values, from command-line flags
    ///    (`("cluster.replication_factor", "5")`, see [`parse_override`](crate::parse_override)),
    ///    applied in order.
    ///
    /// Values from the environment and flags are taken as TOML values (`5`, `true`,
    /// `["a:1"]`) when they parse, as strings otherwise, and always as strings for string keys.
    /// Tables merge key by key; arrays are replaced whole. An unknown key in any layer is an
    /// error naming the key and the layer. The environment is a parameter so that tests and
    /// embedders control it; [`NodeConfig::load_from_process_env`] reads the process's.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        layering::load(path, env, overrides)
    }

    /// [`NodeConfig::load`] with the environment of this process.
    pub fn load_from_process_env(path: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        layering::load_from_process_env(path, overrides)
    }

    /// The node's stable, nonzero 64-bit number, derived from `node.region` and `node.id`
    /// (see [`IdentityConfig::node_number`] for the formula).
    pub fn node_number(&self) -> u64 {
        self.node.node_number()
    }

    /// The keyspaces the node serves: the implicit `default` (`lww`) first unless declared,
    /// then the declared ones in file order.
    pub fn effective_keyspaces(&self) -> Vec<KeyspaceConfig> {
        let declares_default = self.keyspaces.iter().any(|k| k.name == DEFAULT_KEYSPACE);
        let implicit = (!declares_default).then(KeyspaceConfig::default_keyspace);
        implicit.into_iter().chain(self.keyspaces.iter().cloned()).collect()
    }

    /// Checks every bound and every rule between fields; the first violation is returned,
    /// naming the field by its dotted path.
    ///
    /// Rules across sections: `cluster.hint_window_secs` and
    /// `cluster.anti_entropy_interval_secs` are less than `storage.gc_grace_secs` (otherwise a
    /// late hint or repair could resurrect a collected tombstone's key); `http.listen`,
    /// `rpc.listen` and `wan.listen` do not collide; no WAN peer is this node's own region.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.node.validate()?;
        self.storage.validate()?;
        self.clock.validate()?;
        self.cluster.validate()?;
        self.http.validate()?;
        self.auth.validate()?;
        self.rpc.validate()?;
        self.tls.validate()?;
        self.wan.validate(&self.node.region)?;
        validate_keyspaces(&self.keyspaces)?;
        self.telemetry.validate()?;
        self.validate_against_gc_grace()?;
        self.validate_listeners()
    }

    /// Why the server must refuse to expose the HTTP API as configured, if it must: an API
    /// that listens on a non-loopback address needs TLS (`http.tls_cert`, `http.tls_key`) or
    /// `http.allow_plaintext`, and authentication (`auth.enabled`) or
    /// `auth.allow_unauthenticated`. A node that listens on loopback only is a development node
    /// and needs neither. Like [`TlsConfig::permits_start`], this is not part of
    /// [`NodeConfig::validate`], so that test configurations stay valid; `meridian server`
    /// and `meridian config check` apply it.
    pub fn api_exposure_refusal(&self) -> Option<String> {
        let listen = self.http.listen;
        if listen.ip().is_loopback() {
            return None;
        }
        if !self.http.has_tls() && !self.http.allow_plaintext {
            return Some(format!(
                "refusing to serve the HTTP API in plain text on {listen}: set http.tls_cert and http.tls_key, or \
                 http.allow_plaintext = true (for example behind a load balancer that terminates TLS)"
            ));
        }
        if !self.auth.enabled && !self.auth.allow_unauthenticated {
            return Some(format!(
                "refusing to serve the HTTP API without authentication on {listen}: set auth.enabled = true with \
                 tokens (`meridian token create`), or auth.allow_unauthenticated = true"
            ));
        }
        None
    }

    fn validate_against_gc_grace(&self) -> Result<(), ConfigError> {
        let grace = self.storage.gc_grace_secs;
        let checks = [
            ("cluster.hint_window_secs", self.cluster.hint_window_secs, "a hint"),
            ("cluster.anti_entropy_interval_secs", self.cluster.anti_entropy_interval_secs, "a repair"),
        ];
        for (field, value, what) in checks {
            if value >= grace {
                return Err(ConfigError::invalid(
                    field,
                    format!(
                        "{value} must be less than storage.gc_grace_secs ({grace}), or {what} could \
                         bring back data whose tombstone was already collected"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let mut listeners: Vec<(&str, SocketAddr)> =
            vec![("http.listen", self.http.listen), ("rpc.listen", self.rpc.listen)];
        listeners.extend(self.wan.listen.map(|addr| ("wan.listen", addr)));
        for (i, &(field, addr)) in listeners.iter().enumerate() {
            if let Some(&(other, other_addr)) =
                listeners[..i].iter().find(|(_, earlier)| listen_conflict(*earlier, addr))
            {
                return Err(ConfigError::invalid(
                    field,
                    format!("{addr} collides with {other} ({other_addr}); each listener needs its own port"),
                ));
            }
        }
        Ok(())
    }

    /// A valid configuration with every optional key set and one element in every list.
    ///
    /// It is the reference shape that layered loading checks keys against (so a key missing
    /// here cannot be set from the environment), and the tests check that every key in it is
    /// documented in `docs/configuration.md` and shown in `config/examples/production-template.toml`.
    /// A new optional field must be set here.
    pub fn fully_populated() -> Self {
        let addr = |ip: [u8; 4], port: u16| SocketAddr::from((ip, port));
        NodeConfig {
            node: IdentityConfig { id: "node1".into(), region: "us-east".into() },
            storage: StorageConfig::default(),
            clock: ClockConfig::default(),
            cluster: ClusterConfig {
                seeds: vec!["10.0.1.12:7000".into(), "10.0.1.13:7000".into()],
                ..ClusterConfig::default()
            },
            http: HttpConfig {
                listen: addr([0, 0, 0, 0], 8080),
                tls_cert: Some(PathBuf::from("/etc/meridian/tls/api.pem")),
                tls_key: Some(PathBuf::from("/etc/meridian/tls/api.key")),
                ..HttpConfig::default()
            },
            auth: AuthConfig {
                enabled: true,
                allow_unauthenticated: false,
                tokens: vec![TokenConfig {
                    name: "app".into(),
                    sha256: "1f0fb4a2d5e6b4ee3b0ee33c6a00a47e6fa2e5bd8c8e0f7d1a4c0c9b1b6e7d21".into(),
                    scopes: vec![Scope::Read, Scope::Write],
                    rate_per_sec: Some(5_000),
                    burst: Some(10_000),
                }],
                tokens_file: Some(PathBuf::from("/etc/meridian/tokens.toml")),
            },
            rpc: RpcConfig { listen: addr([0, 0, 0, 0], 7000), advertise: Some(addr([10, 0, 1, 11], 7000)) },
            tls: TlsConfig {
                ca_cert: Some(PathBuf::from("/etc/meridian/tls/ca.pem")),
                cert: Some(PathBuf::from("/etc/meridian/tls/node.pem")),
                key: Some(PathBuf::from("/etc/meridian/tls/node.key")),
                allow_insecure: false,
            },
            wan: WanConfig {
                listen: Some(addr([0, 0, 0, 0], 7100)),
                peers: vec![WanPeer {
                    region: "eu-west".into(),
                    address: "wan.eu-west.meridian.internal:7100".into(),
                    server_name: "eu-west.wan.meridian".into(),
                    extra_addresses: vec!["wan2.eu-west.meridian.internal:7100".into()],
                }],
                ca_cert: Some(PathBuf::from("/etc/meridian/tls/wan-ca.pem")),
                cert: Some(PathBuf::from("/etc/meridian/tls/wan.pem")),
                key: Some(PathBuf::from("/etc/meridian/tls/wan.key")),
                ..WanConfig::default()
            },
            keyspaces: vec![KeyspaceConfig {
                name: "carts".into(),
                kind: KeyspaceType::Mvr,
                consistency: Some(ConsistencyLevel::Quorum),
            }],
            telemetry: TelemetryConfig {
                otlp_endpoint: Some("http://127.0.0.1:4317".into()),
                ..TelemetryConfig::default()
            },
        }
    }
}
