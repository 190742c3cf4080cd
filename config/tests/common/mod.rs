//! Helpers shared by the integration tests.

use std::path::PathBuf;

use meridian_config::NodeConfig;
use toml::{Table, Value};

/// Every leaf key of a fully populated configuration serialized to TOML, as dotted paths;
/// elements of arrays of tables are written `wan.peers[].region`.
pub fn leaf_keys() -> Vec<String> {
    let text = toml::to_string(&NodeConfig::fully_populated()).expect("serializes");
    let table: Table = text.parse().expect("parses back");
    let mut keys = Vec::new();
    collect(&table, "", &mut keys);
    keys
}

fn collect(table: &Table, prefix: &str, keys: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Table(inner) => collect(inner, &path, keys),
            Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
                for item in items {
                    if let Value::Table(inner) = item {
                        collect(inner, &format!("{path}[]"), keys);
                    }
                }
            }
            _ => keys.push(path),
        }
    }
    keys.sort();
    keys.dedup();
}

/// The crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
