//! The `[[keyspaces]]` tables: namespaces with a fixed value type.

use serde::{Deserialize, Serialize};

use crate::cluster::ConsistencyLevel;
use crate::error::ConfigError;
use crate::names::check_keyspace_name;

/// Name of the keyspace that always exists, with type `lww`; the seed's `/api/v1/keys/{key}`
/// addresses it.
pub const DEFAULT_KEYSPACE: &str = "default";

/// The value type of a keyspace, which fixes how its conflicts resolve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyspaceType {
    /// Last-writer-wins register ordered by (HLC timestamp, node id).
    #[default]
    Lww,
    /// Multi-value register: concurrent writes are kept as siblings.
    Mvr,
    /// PN-counter.
    Counter,
    /// Add-wins observed-remove set of byte strings.
    Set,
}

impl KeyspaceType {
    /// The name used in configuration and the API (`lww`, `mvr`, `counter`, `set`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyspaceType::Lww => "lww",
            KeyspaceType::Mvr => "mvr",
            KeyspaceType::Counter => "counter",
            KeyspaceType::Set => "set",
        }
    }
}

impl std::fmt::Display for KeyspaceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[keyspaces]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyspaceConfig {
    /// Name: `[a-z0-9_-]`, 1 to 64 characters, unique among keyspaces.
    pub name: String,
    /// Value type: `lww`, `mvr`, `counter` or `set`. Fixed once the keyspace holds data.
    #[serde(rename = "type")]
    pub kind: KeyspaceType,
    /// Consistency level of requests to this keyspace that do not name one. Unset: the
    /// cluster's `default_consistency`.
    pub consistency: Option<ConsistencyLevel>,
}

impl KeyspaceConfig {
    /// The implicit `default` keyspace: `lww`, cluster-default consistency.
    pub fn default_keyspace() -> Self {
        Self { name: DEFAULT_KEYSPACE.into(), kind: KeyspaceType::Lww, consistency: None }
    }
}

/// Checks a keyspace name given at run time (the admin API): `[a-z0-9_-]`, 1 to 64 characters.
pub fn validate_keyspace_name(name: &str) -> Result<(), ConfigError> {
    check_keyspace_name("name", name)
}

/// Checks names, uniqueness, and that `default` stays `lww`.
pub(crate) fn validate_keyspaces(keyspaces: &[KeyspaceConfig]) -> Result<(), ConfigError> {
    for (i, keyspace) in keyspaces.iter().enumerate() {
        check_keyspace_name(&format!("keyspaces[{i}].name"), &keyspace.name)?;
        if let Some(j) = keyspaces[..i].iter().position(|k| k.name == keyspace.name) {
            return Err(ConfigError::invalid(
                format!("keyspaces[{i}].name"),
                format!("{:?} is already keyspaces[{j}].name", keyspace.name),
            ));
        }
        if keyspace.name == DEFAULT_KEYSPACE && keyspace.kind != KeyspaceType::Lww {
            return Err(ConfigError::invalid(
                format!("keyspaces[{i}].type"),
                format!(
                    "the {DEFAULT_KEYSPACE:?} keyspace always exists with type \"lww\"; it cannot be redefined as \"{}\"",
                    keyspace.kind
                ),
            ));
        }
    }
    Ok(())
}
