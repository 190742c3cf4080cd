//! The shape of the configuration as data: which keys exist and what kind of value each holds.
//!
//! The reference shape is [`NodeConfig::fully_populated`] serialized to a TOML table: every
//! optional key set, one element in every array. Layers are checked against it key by key, so
//! an unknown key in a file, an environment variable or a flag is reported with its full dotted
//! path, its layer, and the nearest known key. It is also what tells a string-typed key from a
//! number when a value comes from the environment (see [`crate::layering`]).

use std::sync::OnceLock;

use toml::{Table, Value};

use crate::error::{ConfigError, Origin};
use crate::NodeConfig;

/// The reference table, built once.
pub(crate) fn reference() -> &'static Table {
    static REFERENCE: OnceLock<Table> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        match Value::try_from(NodeConfig::fully_populated()) {
            Ok(Value::Table(table)) => table,
            // Serializing plain structs of strings and numbers to a table cannot fail; an empty
            // reference would reject every key, which every layering test would show at once.
            _ => Table::new(),
        }
    })
}

/// The reference value at dotted `path` (a key path from the environment or a flag).
pub(crate) fn lookup(path: &str, origin: &Origin) -> Result<&'static Value, ConfigError> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut table = reference();
    for (i, segment) in segments.iter().enumerate() {
        let prefix = segments[..=i].join(".");
        let last = i + 1 == segments.len();
        match table.get(*segment) {
            None => {
                let parent = segments[..i].join(".");
                return Err(unknown_key(origin, path, nearest(table, &parent, segment)));
            }
            Some(value) if last => return Ok(value),
            Some(Value::Table(inner)) => table = inner,
            Some(Value::Array(_)) => {
                return Err(unknown_key(
                    origin,
                    path,
                    Some(Hint::Text(format!("`{prefix}` is an array and is set whole, e.g. {prefix}=[...]"))),
                ))
            }
            Some(_) => {
                return Err(unknown_key(
                    origin,
                    path,
                    Some(Hint::Text(format!("`{prefix}` is a value, not a section"))),
                ))
            }
        }
    }
    // `split` yields at least one segment, so the loop returned.
    Err(unknown_key(origin, path, None))
}

/// Checks every key of a layer exists in the reference, descending into tables and into the
/// tables of arrays (`keyspaces[1].name`).
pub(crate) fn check_keys(layer: &Table, origin: &Origin) -> Result<(), ConfigError> {
    check_table(layer, reference(), "", origin)
}

fn check_table(layer: &Table, reference: &Table, prefix: &str, origin: &Origin) -> Result<(), ConfigError> {
    for (key, value) in layer {
        let path = join(prefix, key);
        match (reference.get(key), value) {
            (None, _) => return Err(unknown_key(origin, &path, nearest(reference, prefix, key))),
            (Some(Value::Table(inner)), Value::Table(table)) => {
                check_table(table, inner, &path, origin)?;
            }
            (Some(Value::Array(reference_items)), Value::Array(items)) => {
                if let Some(Value::Table(inner)) = reference_items.first() {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Table(table) = item {
                            check_table(table, inner, &format!("{path}[{i}]"), origin)?;
                        }
                    }
                }
            }
            // A value of the wrong kind is reported by typed deserialization, with its path.
            _ => {}
        }
    }
    Ok(())
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A suggestion attached to an unknown key.
enum Hint {
    /// The nearest known key, as a dotted path.
    Key(String),
    /// Free text.
    Text(String),
}

fn unknown_key(origin: &Origin, key: &str, hint: Option<Hint>) -> ConfigError {
    let hint = hint.map(|hint| match (hint, origin) {
        (Hint::Key(path), Origin::Env(_)) => format!("did you mean {}?", env_var_name(&path)),
        (Hint::Key(path), _) => format!("did you mean `{path}`?"),
        (Hint::Text(text), _) => text,
    });
    ConfigError::UnknownKey { origin: origin.clone(), key: key.to_owned(), hint }
}

/// The environment variable that sets dotted `path`: `cluster.seeds` → `MERIDIAN_CLUSTER__SEEDS`.
pub(crate) fn env_var_name(path: &str) -> String {
    format!("{}{}", crate::layering::ENV_PREFIX, path.replace('.', crate::layering::ENV_SEPARATOR).to_ascii_uppercase())
}

/// The known key nearest to `key` among the keys of `table`, if it is close enough to be a typo.
fn nearest(table: &Table, prefix: &str, key: &str) -> Option<Hint> {
    let limit = (key.chars().count() / 3).max(1);
    table
        .keys()
        .map(|known| (edit_distance(known, key), known))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, known)| Hint::Key(join(prefix, known)))
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("replication_factor", "replicaton_factor"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn reference_has_every_section() {
        let keys: Vec<&str> = reference().keys().map(String::as_str).collect();
        for section in
            ["node", "storage", "clock", "cluster", "http", "auth", "rpc", "tls", "wan", "keyspaces", "telemetry"]
        {
            assert!(keys.contains(&section), "{section} missing from {keys:?}");
        }
    }

    #[test]
    fn lookup_reports_the_nearest_key() {
        let err = lookup("cluster.replicaton_factor", &Origin::Flag("x".into())).unwrap_err();
        assert_eq!(err.key(), Some("cluster.replicaton_factor"));
        assert!(err.to_string().contains("did you mean `cluster.replication_factor`?"), "{err}");
        let err = lookup("wan.peers.region", &Origin::Flag("x".into())).unwrap_err();
        assert!(err.to_string().contains("is an array"), "{err}");
        let err = lookup("clock.max_offset_ms.x", &Origin::Flag("x".into())).unwrap_err();
        assert!(err.to_string().contains("not a section"), "{err}");
    }
}
