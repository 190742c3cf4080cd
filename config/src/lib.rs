//! Typed configuration of a Meridian node.
//!
//! A node is configured by one TOML file with one table per concern (`[node]`, `[storage]`,
//! `[clock]`, `[cluster]`, `[http]`, `[auth]`, `[rpc]`, `[tls]`, `[wan]`, `[[keyspaces]]`,
//! `[telemetry]`), deserialized into [`NodeConfig`]. Every field has a default and unknown keys
//! are refused, so a typo is an error rather than a silently ignored setting.
//!
//! [`NodeConfig::load`] layers the defaults, the file, `MERIDIAN_*` environment variables
//! (`MERIDIAN_CLUSTER__REPLICATION_FACTOR=5`) and command-line overrides
//! (`cluster.replication_factor=5`), later layers winning, and validates the result.
//! [`NodeConfig::validate`] checks bounds and the rules between fields and returns a
//! [`ConfigError`] that names the field (`cluster.replication_factor: 0 is outside 1..=9`).
//!
//! The `[storage]` section is `meridian_local::StorageConfig`, owned by the storage crate.
//! Every key is documented in `docs/configuration.md`; a test keeps that file in step with
//! the code, and another parses and validates every file in `config/examples/`.
//!
//! ```
//! use meridian_config::NodeConfig;
//!
//! let env = [("MERIDIAN_NODE__ID".to_string(), "node2".to_string())];
//! let flags = [("cluster.replication_factor".to_string(), "5".to_string())];
//! let config = NodeConfig::load(None, env, &flags)?;
//! assert_eq!(config.node.id, "node2");
//! assert_eq!(config.cluster.replication_factor, 5);
//! # Ok::<(), meridian_config::ConfigError>(())
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`NodeConfig`], the whole file, and the rules that span sections.
//! - One module per section: [`identity`] (`[node]`, and the node number), [`clock`],
//!   [`cluster`], [`http`], [`auth`], [`rpc`], [`tls`], [`wan`], [`keyspace`] (`[[keyspaces]]`),
//!   [`telemetry`].
//! - [`layering`]: file < environment < flags; environment variable names; merging.
//! - `schema`: the reference shape of the file (which keys exist), for unknown-key errors
//!   with suggestions and for typing text values from the environment.
//! - `names`, `address`, `bounds`: the checks shared by sections (operator-chosen names,
//!   `host:port` and listener collisions, numeric ranges).
//! - [`error`]: [`ConfigError`], the crate's one error type, and [`Origin`], the layer a
//!   value came from.

mod address;
pub mod auth;
mod bounds;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod identity;
pub mod keyspace;
pub mod layering;
mod names;
pub mod rpc;
mod schema;
pub mod telemetry;
pub mod tls;
pub mod wan;

pub use auth::{AuthConfig, Scope, TokenConfig};
pub use clock::ClockConfig;
pub use cluster::{ClusterConfig, ConsistencyLevel};
pub use config::NodeConfig;
pub use error::{ConfigError, Origin};
pub use http::HttpConfig;
pub use identity::IdentityConfig;
pub use keyspace::{validate_keyspace_name, KeyspaceConfig, KeyspaceType, DEFAULT_KEYSPACE};
pub use layering::parse_override;
pub use meridian_local::{Durability, EngineKind, StorageConfig};
pub use names::{MAX_KEYSPACE_NAME_LEN, MAX_NODE_NAME_LEN};
pub use rpc::RpcConfig;
pub use telemetry::{LogFormat, TelemetryConfig};
pub use tls::TlsConfig;
pub use wan::{Compression, WanConfig, WanPeer};
