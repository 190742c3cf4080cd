//! Layered loading: defaults < file < environment < command-line overrides.
//!
//! Every layer becomes a partial TOML table. Each layer is checked on its own first — its keys
//! against the reference shape (the private `schema` module), its values by deserializing it
//! alone (every section has `#[serde(default)]`, so a partial table is a whole configuration) —
//! so that an error names the layer it came from. The tables are then merged in order: tables merge key by
//! key, anything else (numbers, strings, arrays, arrays of tables) is replaced whole by the
//! later layer. The merged table is deserialized once more and validated.
//!
//! Values from the environment and from flags are text. A value for a string-typed key is taken
//! as it is (`node.id=123` is the string `"123"`); any other value is parsed as a TOML value
//! (`5`, `true`, `8.5`, `["a:1", "b:2"]`, `{ name = "x" }`) and kept as a string when it does
//! not parse, so that the typed check reports what was expected. A string list also accepts
//! comma-separated text (`a:1,b:2`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use crate::error::{ConfigError, Origin};
use crate::schema;
use crate::NodeConfig;

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "MERIDIAN_";
/// Separator of sections in an environment variable name (`MERIDIAN_CLUSTER__SEEDS`).
pub const ENV_SEPARATOR: &str = "__";

/// Parses one TOML document into a configuration (no validation).
pub(crate) fn parse_document(text: &str, origin: Origin) -> Result<NodeConfig, ConfigError> {
    let table = parse_table(text, &origin)?;
    schema::check_keys(&table, &origin)?;
    // Deserialize from the text rather than the table so type errors carry line and column.
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|err| type_error(origin, err))
}

fn parse_table(text: &str, origin: &Origin) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|err| ConfigError::Syntax { origin: origin.clone(), message: err.to_string() })
}

fn type_error(origin: Origin, err: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let key = err.path().to_string();
    let inner = err.into_inner();
    // With a span (errors in a file) the full text shows the line; without one it only
    // repeats the key, which is already given.
    let message = match inner.span() {
        Some(_) => inner.to_string(),
        None => inner.message().to_owned(),
    };
    ConfigError::Type { origin, key, message }
}

/// See [`NodeConfig::load`].
pub(crate) fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<NodeConfig, ConfigError> {
    let mut merged = Table::new();
    if let Some(path) = path {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let origin = Origin::File(path.to_owned());
        // Parses, checks keys and types, with the file's line numbers in errors.
        parse_document(&text, origin.clone())?;
        merge(&mut merged, parse_table(&text, &origin)?);
    }
    for layer in env_layers(env)? {
        merge(&mut merged, layer);
    }
    for (key, value) in overrides {
        let origin = Origin::Flag(key.clone());
        merge(&mut merged, value_layer(key, value, &origin)?);
    }
    let config = deserialize(merged, Origin::Merged)?;
    config.validate()?;
    Ok(config)
}

/// See [`NodeConfig::load_from_process_env`].
pub(crate) fn load_from_process_env(
    path: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<NodeConfig, ConfigError> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        // Variables that are not Unicode cannot be configuration unless they carry our prefix.
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) if name.starts_with(ENV_PREFIX) => {
                return Err(ConfigError::Override {
                    origin: Origin::Env(name),
                    reason: "value is not valid UTF-8".into(),
                })
            }
            Err(_) => {}
        }
    }
    load(path, env, overrides)
}

/// Splits a command-line override `key=value` (as given to `--set`) at the first `=`.
/// The key is trimmed; the value is kept as written.
pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => Err(ConfigError::Override {
            origin: Origin::Flag(arg.to_owned()),
            reason: "expected KEY=VALUE, e.g. cluster.replication_factor=5".into(),
        }),
    }
}

/// The layers set by `MERIDIAN_*` variables, in name order.
///
/// A variable is configuration when its name, without the prefix and lowercased, starts with a
/// top-level key (`MERIDIAN_CLUSTER__SEEDS`, `MERIDIAN_KEYSPACES`), or contains the separator.
/// Other `MERIDIAN_*` variables (`MERIDIAN_CONFIG`, read by the CLI) are left alone, except
/// that a name that starts with a section and a single `_` (`MERIDIAN_CLUSTER_SEEDS`) is
/// refused as the typo it almost certainly is.
fn env_layers(env: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Table>, ConfigError> {
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut layers = Vec::new();
    for (name, value) in vars {
        let origin = Origin::Env(name.clone());
        let Some(path) = env_key_path(&name, &origin)? else {
            continue;
        };
        if let Some(previous) = seen.insert(path.clone(), name.clone()) {
            return Err(ConfigError::Override { origin, reason: format!("sets `{path}`, which {previous} sets too") });
        }
        layers.push(value_layer(&path, &value, &origin)?);
    }
    Ok(layers)
}

/// The dotted key an environment variable sets, or `None` when it is not configuration.
fn env_key_path(name: &str, origin: &Origin) -> Result<Option<String>, ConfigError> {
    let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
    let path = rest.replace(ENV_SEPARATOR, ".");
    let first = path.split('.').next().unwrap_or_default();
    let reference = schema::reference();
    if reference.contains_key(first) || rest.contains(ENV_SEPARATOR) {
        return Ok(Some(path));
    }
    if let Some(section) = reference.keys().find(|section| rest.starts_with(&format!("{section}_"))) {
        let key = &rest[section.len() + 1..];
        return Err(ConfigError::UnknownKey {
            origin: origin.clone(),
            key: rest.clone(),
            hint: Some(format!(
                "sections are separated by a double underscore: {}",
                schema::env_var_name(&format!("{section}.{key}"))
            )),
        });
    }
    Ok(None)
}

/// One layer that sets the dotted `path` to the text `raw`, checked alone.
fn value_layer(path: &str, raw: &str, origin: &Origin) -> Result<Table, ConfigError> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(ConfigError::Override {
            origin: origin.clone(),
            reason: format!("`{path}` has an empty key segment"),
        });
    }
    let reference = schema::lookup(path, origin)?;
    let mut layer = Table::new();
    if let Some((last, parents)) = segments.split_last() {
        layer.insert((*last).to_owned(), coerce(raw, reference));
        for parent in parents.iter().rev() {
            let mut outer = Table::new();
            outer.insert((*parent).to_owned(), Value::Table(layer));
            layer = outer;
        }
    }
    // An inline table or an array of tables brings keys of its own.
    schema::check_keys(&layer, origin)?;
    deserialize(layer.clone(), origin.clone())?;
    Ok(layer)
}

/// Turns text into a value of the kind the reference holds at that key.
fn coerce(raw: &str, reference: &Value) -> Value {
    let parsed = Value::deserialize(toml::de::ValueDeserializer::new(raw)).ok();
    match (reference, parsed) {
        // A string key: the text itself, unless it is written as a quoted TOML string.
        (Value::String(_), Some(Value::String(text))) => Value::String(text),
        (Value::String(_), _) => Value::String(raw.to_owned()),
        (_, Some(value)) => value,
        // A list of strings written as `a,b,c`.
        (Value::Array(items), None) if items.first().is_none_or(Value::is_str) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        (_, None) => Value::String(raw.to_owned()),
    }
}

fn deserialize(table: Table, origin: Origin) -> Result<NodeConfig, ConfigError> {
    serde_path_to_error::deserialize(Value::Table(table)).map_err(|err| type_error(origin, err))
}

/// Merges `layer` into `base`: tables key by key, everything else replaced whole.
fn merge(base: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(layer_table)) => {
                merge(base_table, layer_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::Flag("test".into())
    }

    #[test]
    fn coerce_by_reference_kind() {
        let string = Value::String(String::new());
        let number = Value::Integer(0);
        let list = Value::Array(vec![Value::String(String::new())]);
        assert_eq!(coerce("123", &string), Value::String("123".into()));
        assert_eq!(coerce("\"n2\"", &string), Value::String("n2".into()));
        assert_eq!(coerce("true", &string), Value::String("true".into()));
        assert_eq!(coerce("5", &number), Value::Integer(5));
        assert_eq!(coerce("five", &number), Value::String("five".into()));
        assert_eq!(
            coerce("a:1, b:2", &list),
            Value::Array(vec![Value::String("a:1".into()), Value::String("b:2".into())])
        );
        assert_eq!(coerce("[\"a:1\"]", &list), Value::Array(vec![Value::String("a:1".into())]));
        assert_eq!(coerce("", &list), Value::Array(vec![]));
        // Not a value followed by a key: the whole text is one value or none.
        assert_eq!(coerce("5\nx = 1", &number), Value::String("5\nx = 1".into()));
    }

    #[test]
    fn merge_is_deep_for_tables_and_whole_for_arrays() {
        let mut base: Table = "a = { x = 1, y = 2 }\nl = [1, 2]".parse().unwrap();
        let layer: Table = "a = { y = 3 }\nl = [9]".parse().unwrap();
        merge(&mut base, layer);
        let expected: Table = "a = { x = 1, y = 3 }\nl = [9]".parse().unwrap();
        assert_eq!(base, expected);
    }

    #[test]
    fn env_names_map_to_paths() {
        let path = |name: &str| env_key_path(name, &origin());
        assert_eq!(path("MERIDIAN_CLUSTER__REPLICATION_FACTOR").unwrap(), Some("cluster.replication_factor".into()));
        assert_eq!(path("MERIDIAN_KEYSPACES").unwrap(), Some("keyspaces".into()));
        assert_eq!(path("MERIDIAN_CONFIG").unwrap(), None);
        assert_eq!(path("MERIDIAN_FOO__BAR").unwrap(), Some("foo.bar".into()));
        let err = path("MERIDIAN_CLUSTER_SEEDS").unwrap_err();
        assert!(err.to_string().contains("MERIDIAN_CLUSTER__SEEDS"), "{err}");
    }

    #[test]
    fn parse_override_splits_at_the_first_equals() {
        assert_eq!(
            parse_override("telemetry.log_level=info,meridian=debug").unwrap(),
            ("telemetry.log_level".into(), "info,meridian=debug".into())
        );
        assert_eq!(parse_override(" node.id =n2").unwrap(), ("node.id".into(), "n2".into()));
        assert!(parse_override("node.id").is_err());
        assert!(parse_override("=5").is_err());
    }
}
