//! Layered loading: file < environment < flags, unknown keys in every layer, text values.

use std::io::Write;
use std::path::Path;

use meridian_config::{parse_override, Compression, ConfigError, ConsistencyLevel, KeyspaceType, NodeConfig, Origin};

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn flags(pairs: &[&str]) -> Vec<(String, String)> {
    pairs.iter().map(|pair| parse_override(pair).expect("KEY=VALUE")).collect()
}

fn load(path: Option<&Path>, vars: &[(&str, &str)], pairs: &[&str]) -> Result<NodeConfig, ConfigError> {
    NodeConfig::load(path, env(vars), &flags(pairs))
}

const FILE: &str = r#"
[node]
id = "from-file"
region = "us-east"

[cluster]
replication_factor = 2
vnodes = 128
seeds = ["127.0.0.1:7001"]

[[keyspaces]]
name = "carts"
type = "mvr"
"#;

#[test]
fn no_layers_gives_the_defaults() {
    assert_eq!(load(None, &[], &[]).unwrap(), NodeConfig::default());
}

#[test]
fn file_then_environment_then_flags() {
    let f = file(FILE);
    let path = Some(f.path());
    let rf_env = [("MERIDIAN_CLUSTER__REPLICATION_FACTOR", "4")];

    assert_eq!(load(path, &[], &[]).unwrap().cluster.replication_factor, 2);
    assert_eq!(load(path, &rf_env, &[]).unwrap().cluster.replication_factor, 4);
    let config = load(path, &rf_env, &["cluster.replication_factor=5"]).unwrap();
    assert_eq!(config.cluster.replication_factor, 5);
    // Keys no later layer sets keep the file's value: tables merge key by key.
    assert_eq!(config.cluster.vnodes, 128);
    assert_eq!(config.node.id, "from-file");
    assert_eq!(config.cluster.seeds, ["127.0.0.1:7001"]);
    // Flags win over the environment without a file too.
    let config = load(None, &rf_env, &["cluster.replication_factor=5"]).unwrap();
    assert_eq!(config.cluster.replication_factor, 5);
}

#[test]
fn later_flags_win() {
    let config = load(None, &[], &["node.id=a", "node.id=b"]).unwrap();
    assert_eq!(config.node.id, "b");
}

#[test]
fn arrays_are_replaced_whole() {
    let f = file(FILE);
    let config = load(Some(f.path()), &[], &[r#"keyspaces=[{ name = "tags", type = "set" }]"#]).unwrap();
    assert_eq!(config.keyspaces.len(), 1);
    assert_eq!(config.keyspaces[0].name, "tags");
    assert_eq!(config.keyspaces[0].kind, KeyspaceType::Set);

    let config = load(Some(f.path()), &[("MERIDIAN_CLUSTER__SEEDS", "127.0.0.1:7002,127.0.0.1:7003")], &[]).unwrap();
    assert_eq!(config.cluster.seeds, ["127.0.0.1:7002", "127.0.0.1:7003"]);
}

#[test]
fn environment_values_are_typed_by_key() {
    let config = load(
        None,
        &[
            ("MERIDIAN_NODE__ID", "123"),
            ("MERIDIAN_NODE__REGION", "eu-west"),
            ("MERIDIAN_CLUSTER__PHI_THRESHOLD", "9"),
            ("MERIDIAN_CLUSTER__DEFAULT_CONSISTENCY", "all"),
            ("MERIDIAN_CLUSTER__SEEDS", r#"["a:1", "b:2"]"#),
            ("MERIDIAN_TLS__ALLOW_INSECURE", "true"),
            ("MERIDIAN_HTTP__LISTEN", "127.0.0.1:9090"),
            ("MERIDIAN_RPC__ADVERTISE", "10.0.0.5:7000"),
            ("MERIDIAN_WAN__COMPRESSION", "zstd"),
            ("MERIDIAN_TELEMETRY__LOG_LEVEL", "info,meridian_region=debug"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(config.node.id, "123", "a string key keeps digits as text");
    assert_eq!(config.node.region, "eu-west");
    assert_eq!(config.cluster.phi_threshold, 9.0);
    assert_eq!(config.cluster.default_consistency, ConsistencyLevel::All);
    assert_eq!(config.cluster.seeds, ["a:1", "b:2"]);
    assert!(config.tls.allow_insecure);
    assert_eq!(config.http.listen.port(), 9090);
    assert_eq!(config.rpc.advertise, Some("10.0.0.5:7000".parse().unwrap()));
    assert_eq!(config.wan.compression, Compression::Zstd);
    assert_eq!(config.telemetry.log_level, "info,meridian_region=debug");
}

#[test]
fn whole_sections_and_peers_can_be_set_from_flags() {
    let config = load(
        None,
        &[],
        &[
            "cluster={ replication_factor = 5, vnodes = 64 }",
            r#"wan.peers=[{ region = "eu-west", address = "eu.example:7100", server_name = "eu.example" }]"#,
        ],
    )
    .unwrap();
    assert_eq!(config.cluster.replication_factor, 5);
    assert_eq!(config.cluster.vnodes, 64);
    assert_eq!(config.cluster.gossip_interval_ms, 200);
    assert_eq!(config.wan.peers[0].region, "eu-west");
}

#[test]
fn other_environment_variables_are_ignored() {
    let config = load(
        None,
        &[
            ("PATH", "/usr/bin"),
            ("MERIDIAN_CONFIG", "/etc/meridian/node.toml"),
            ("meridian_node__id", "lowercase-prefix-is-not-ours"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(config, NodeConfig::default());
}

#[test]
fn unknown_key_in_the_file_is_named() {
    let f = file("[cluster]\nreplicaton_factor = 3\n");
    let err = load(Some(f.path()), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("cluster.replicaton_factor"));
    assert_eq!(err.origin(), Some(&Origin::File(f.path().to_owned())));
    let text = err.to_string();
    assert!(text.contains(&f.path().display().to_string()), "{text}");
    assert!(text.contains("did you mean `cluster.replication_factor`?"), "{text}");

    let err = NodeConfig::from_toml_str("[clusterr]\nvnodes = 3\n").unwrap_err();
    assert_eq!(err.key(), Some("clusterr"));
    assert_eq!(err.code(), "config_unknown_key");
    let err = NodeConfig::from_toml_str("[[keyspaces]]\nname = \"a\"\nkind = \"lww\"\n").unwrap_err();
    assert_eq!(err.key(), Some("keyspaces[0].kind"));
    let err = NodeConfig::from_toml_str("[[wan.peers]]\nregion = \"eu\"\nhost = \"x\"\n").unwrap_err();
    assert_eq!(err.key(), Some("wan.peers[0].host"));
    let err = NodeConfig::from_toml_str("[storage]\ndatadir = \"x\"\n").unwrap_err();
    assert_eq!(err.key(), Some("storage.datadir"));
}

#[test]
fn unknown_key_in_the_environment_is_named() {
    let err = load(None, &[("MERIDIAN_CLUSTER__REPLICATON_FACTOR", "5")], &[]).unwrap_err();
    assert_eq!(err.key(), Some("cluster.replicaton_factor"));
    assert_eq!(err.origin(), Some(&Origin::Env("MERIDIAN_CLUSTER__REPLICATON_FACTOR".into())));
    assert!(err.to_string().contains("did you mean MERIDIAN_CLUSTER__REPLICATION_FACTOR?"), "{err}");

    let err = load(None, &[("MERIDIAN_NOSUCH__KEY", "1")], &[]).unwrap_err();
    assert_eq!(err.key(), Some("nosuch.key"));

    // A single underscore after a section name is the typo it looks like.
    let err = load(None, &[("MERIDIAN_CLUSTER_REPLICATION_FACTOR", "5")], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert!(err.to_string().contains("MERIDIAN_CLUSTER__REPLICATION_FACTOR"), "{err}");
}

#[test]
fn unknown_key_in_a_flag_is_named() {
    let err = load(None, &[], &["cluster.replicaton_factor=5"]).unwrap_err();
    assert_eq!(err.key(), Some("cluster.replicaton_factor"));
    assert_eq!(err.origin(), Some(&Origin::Flag("cluster.replicaton_factor".into())));
    let err = load(None, &[], &["keyspaces=[{ name = \"a\", typ = \"lww\" }]"]).unwrap_err();
    assert_eq!(err.key(), Some("keyspaces[0].typ"));
    let err = load(None, &[], &["wan.peers.region=eu"]).unwrap_err();
    assert!(err.to_string().contains("is an array"), "{err}");
    let err = load(None, &[], &["cluster..vnodes=3"]).unwrap_err();
    assert!(matches!(err, ConfigError::Override { .. }), "{err:?}");
}

#[test]
fn mistyped_values_name_key_and_layer() {
    let err = load(None, &[("MERIDIAN_CLUSTER__REPLICATION_FACTOR", "five")], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Type { .. }), "{err:?}");
    assert_eq!(err.key(), Some("cluster.replication_factor"));
    assert_eq!(err.origin(), Some(&Origin::Env("MERIDIAN_CLUSTER__REPLICATION_FACTOR".into())));

    let err = load(None, &[], &["cluster.default_consistency=two"]).unwrap_err();
    assert_eq!(err.key(), Some("cluster.default_consistency"));
    assert!(err.to_string().contains("quorum"), "{err}");

    let err = load(None, &[], &["http.listen=localhost"]).unwrap_err();
    assert_eq!(err.key(), Some("http.listen"));

    let f = file("[cluster]\nvnodes = \"many\"\n");
    let err = load(Some(f.path()), &[], &[]).unwrap_err();
    assert_eq!(err.key(), Some("cluster.vnodes"));
    assert!(err.to_string().contains("line 2"), "{err}");

    let err = NodeConfig::from_toml_str("[[keyspaces]]\nname = \"a\"\ntype = \"map\"\n").unwrap_err();
    assert_eq!(err.key(), Some("keyspaces[0].type"));
}

#[test]
fn the_loaded_result_is_validated() {
    let err = load(None, &[("MERIDIAN_CLUSTER__REPLICATION_FACTOR", "0")], &[]).unwrap_err();
    assert_eq!(err.to_string(), "cluster.replication_factor: 0 is outside 1..=9");
    // A rule across layers: the file's region, the flag's peer.
    let f = file(FILE);
    let err = load(
        Some(f.path()),
        &[],
        &[r#"wan.peers=[{ region = "us-east", address = "x.example:7100", server_name = "x.example" }]"#],
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("wan.peers[0].region"));
}

#[test]
fn a_key_set_twice_in_the_environment_is_refused() {
    let err = load(None, &[("MERIDIAN_NODE__ID", "a"), ("MERIDIAN_node__id", "b")], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Override { .. }), "{err:?}");
    assert!(err.to_string().contains("node.id"), "{err}");
}

#[test]
fn file_errors() {
    let err = load(Some(Path::new("/nonexistent/meridian.toml")), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/meridian.toml"), "{err}");

    let f = file("[cluster\n");
    let err = load(Some(f.path()), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn overrides_are_split_at_the_first_equals() {
    assert_eq!(
        parse_override("telemetry.log_level=info,a=debug").unwrap(),
        ("telemetry.log_level".to_string(), "info,a=debug".to_string())
    );
    let err = parse_override("cluster.replication_factor").unwrap_err();
    assert!(err.to_string().contains("KEY=VALUE"), "{err}");
}
