//! Names chosen by operators: node ids, regions and keyspaces.
//!
//! Names end up in metrics labels, file names, certificate names and URLs, so they are kept to
//! lowercase ASCII letters, digits, `-` (and `_` for keyspaces).

use crate::error::ConfigError;

/// Longest node id or region name, in bytes (a DNS label).
pub const MAX_NODE_NAME_LEN: usize = 63;
/// Longest keyspace name, in bytes.
pub const MAX_KEYSPACE_NAME_LEN: usize = 64;

/// Checks a node id or a region name: `[a-z0-9-]`, 1 to 63 characters.
pub(crate) fn check_node_name(field: &str, name: &str) -> Result<(), ConfigError> {
    check(field, name, MAX_NODE_NAME_LEN, "[a-z0-9-]", |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks a keyspace name: `[a-z0-9_-]`, 1 to 64 characters.
pub(crate) fn check_keyspace_name(field: &str, name: &str) -> Result<(), ConfigError> {
    check(field, name, MAX_KEYSPACE_NAME_LEN, "[a-z0-9_-]", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    })
}

fn check(
    field: &str,
    name: &str,
    max_len: usize,
    charset: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > max_len {
        return Err(ConfigError::invalid(
            field,
            format!("{name:?} must be 1 to {max_len} characters long, is {}", name.len()),
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
        return Err(ConfigError::invalid(field, format!("{name:?} contains {bad:?}; allowed are {charset}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert!(check_node_name("node.id", "node-1").is_ok());
        assert!(check_node_name("node.id", &"a".repeat(63)).is_ok());
        assert!(check_node_name("node.id", &"a".repeat(64)).is_err());
        assert!(check_node_name("node.id", "").is_err());
        assert!(check_node_name("node.id", "Node1").is_err());
        assert!(check_node_name("node.id", "node_1").is_err());
        assert!(check_node_name("node.id", "nöde").is_err());
    }

    #[test]
    fn keyspace_names() {
        assert!(check_keyspace_name("keyspaces[0].name", "user_sessions-2").is_ok());
        assert!(check_keyspace_name("keyspaces[0].name", &"k".repeat(64)).is_ok());
        assert!(check_keyspace_name("keyspaces[0].name", &"k".repeat(65)).is_err());
        assert!(check_keyspace_name("keyspaces[0].name", "a.b").is_err());
    }
}
