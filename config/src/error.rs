//! The one error type of the configuration crate.

use std::fmt;
use std::path::PathBuf;

use meridian_local::StoreError;

/// Where a configuration value came from: one layer of [`NodeConfig::load`](crate::NodeConfig::load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file.
    File(PathBuf),
    /// TOML text given to [`NodeConfig::from_toml_str`](crate::NodeConfig::from_toml_str).
    Text,
    /// An environment variable, by name (`MERIDIAN_CLUSTER__REPLICATION_FACTOR`).
    Env(String),
    /// A command-line override, by its dotted key (`cluster.replication_factor`).
    Flag(String),
    /// The layers merged together. Every layer is checked alone first, so an error here means a
    /// combination of layers that is invalid although each layer is not; not expected to happen.
    Merged,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Text => f.write_str("TOML text"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(key) => write!(f, "override `{key}`"),
            Origin::Merged => f.write_str("merged configuration"),
        }
    }
}

/// Errors of loading and validating a node's configuration.
///
/// Every variant names what is wrong: the layer ([`Origin`]) for errors found while reading a
/// layer, and the dotted key path (`cluster.replication_factor`, `keyspaces[1].name`) for errors
/// about one value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A layer is not well-formed TOML.
    #[error("{origin}: {}", message.trim_end())]
    Syntax {
        /// The layer.
        origin: Origin,
        /// The parser's message (with line and column for files).
        message: String,
    },
    /// A layer sets a key that no section has.
    #[error("{origin}: unknown key `{key}`{}", hint_suffix(.hint))]
    UnknownKey {
        /// The layer.
        origin: Origin,
        /// Dotted path of the unknown key.
        key: String,
        /// A suggestion (the nearest known key, or how to spell an environment variable).
        hint: Option<String>,
    },
    /// A value has the wrong type or form (a string where a number belongs, an unknown enum
    /// value, an unparsable socket address).
    #[error("{origin}: {key}: {}", message.trim_end())]
    Type {
        /// The layer.
        origin: Origin,
        /// Dotted path of the value (`.` for the document itself).
        key: String,
        /// What was expected.
        message: String,
    },
    /// An environment variable or a command-line override is malformed (no `=`, an empty key
    /// segment, a key set twice in the environment).
    #[error("{origin}: {reason}")]
    Override {
        /// The layer.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
    /// A value is well-formed but out of bounds, or contradicts another value.
    #[error("{field}: {reason}")]
    Invalid {
        /// Dotted path of the field (`cluster.replication_factor`, `wan.peers[0].region`).
        field: String,
        /// What is wrong, with the value when it helps (`0 is outside 1..=9`).
        reason: String,
    },
    /// The storage section was refused by the storage crate for a reason other than a bound.
    #[error("storage: {0}")]
    Storage(#[source] StoreError),
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(hint) => format!(" ({hint})"),
        None => String::new(),
    }
}

impl ConfigError {
    /// An out-of-bounds or contradictory value at `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The dotted key path the error is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Type { key, .. } => Some(key),
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The layer the error was found in, for errors found while reading one layer.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Syntax { origin, .. }
            | ConfigError::UnknownKey { origin, .. }
            | ConfigError::Type { origin, .. }
            | ConfigError::Override { origin, .. } => Some(origin),
            _ => None,
        }
    }

    /// A stable, machine-readable code for this error (for `meridian config check --output json`).
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_read",
            ConfigError::Syntax { .. } => "config_syntax",
            ConfigError::UnknownKey { .. } => "config_unknown_key",
            ConfigError::Type { .. } => "config_type",
            ConfigError::Override { .. } => "config_override",
            ConfigError::Invalid { .. } | ConfigError::Storage(_) => "config_invalid",
        }
    }
}

impl From<StoreError> for ConfigError {
    /// Bounds errors of the storage section become [`ConfigError::Invalid`] with the same field
    /// path, so every bounds error looks alike; anything else is kept as [`ConfigError::Storage`].
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidConfig { field, reason } => ConfigError::invalid(field, reason),
            other => ConfigError::Storage(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary turns config errors into `anyhow::Error` and clap value-parser errors, which
    /// need `Send + Sync + 'static`.
    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<ConfigError>();
    }

    #[test]
    fn storage_bounds_errors_keep_their_field() {
        let err = ConfigError::from(StoreError::InvalidConfig {
            field: "storage.data_dir",
            reason: "must not be empty".into(),
        });
        assert_eq!(err.key(), Some("storage.data_dir"));
        assert_eq!(err.to_string(), "storage.data_dir: must not be empty");
        let err = ConfigError::from(StoreError::Closed);
        assert_eq!(err.code(), "config_invalid");
        assert!(err.to_string().starts_with("storage: "), "{err}");
    }
}
