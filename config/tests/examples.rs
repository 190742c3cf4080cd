//! Every file in `config/examples/` parses and validates; the development region is coherent;
//! the production template shows every key.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use meridian_config::{NodeConfig, DEFAULT_KEYSPACE};
use toml::{Table, Value};

/// All `*.toml` files in `config/examples/`, so that a new example is covered automatically.
fn example_files() -> Vec<PathBuf> {
    let dir = common::crate_dir().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> NodeConfig {
    let path = common::crate_dir().join("examples").join(name);
    NodeConfig::load(Some(&path), [], &[]).unwrap_or_else(|err| panic!("{name}: {err}"))
}

#[test]
fn every_example_parses_and_validates() {
    let files = example_files();
    let names: BTreeSet<String> =
        files.iter().map(|path| path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in [
        "region-us-east-node1.toml",
        "region-us-east-node2.toml",
        "region-us-east-node3.toml",
        "production-template.toml",
    ] {
        assert!(names.contains(expected), "{expected} missing from {names:?}");
    }
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let config = NodeConfig::from_toml_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        config.validate().unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        // The layered loader agrees with the plain parser.
        assert_eq!(NodeConfig::load(Some(path), [], &[]).unwrap(), config);
    }
}

#[test]
fn development_region_is_coherent() {
    let nodes: Vec<NodeConfig> = (1..=3).map(|n| load(&format!("region-us-east-node{n}.toml"))).collect();
    let rpc: Vec<String> = nodes.iter().map(|c| c.rpc.advertise_addr().to_string()).collect();
    let mut ports = BTreeSet::new();
    for (i, config) in nodes.iter().enumerate() {
        let n = i + 1;
        assert_eq!(config.node.id, format!("node{n}"));
        assert_eq!(config.node.region, "us-east");
        assert_eq!(config.storage.data_dir, PathBuf::from(format!("./data/us-east/node{n}")));
        assert!(config.http.listen.ip().is_loopback());
        assert!(config.rpc.listen.ip().is_loopback());
        assert!(ports.insert(config.http.listen.port()), "port reused");
        assert!(ports.insert(config.rpc.listen.port()), "port reused");
        // Seeds are the other nodes' RPC addresses.
        let others: BTreeSet<&String> = rpc.iter().filter(|a| **a != rpc[i]).collect();
        let seeds: BTreeSet<&String> = config.cluster.seeds.iter().collect();
        assert_eq!(seeds, others, "node{n} seeds");
        // What must agree across a region does.
        assert_eq!(config.cluster.replication_factor, nodes[0].cluster.replication_factor);
        assert_eq!(config.cluster.vnodes, nodes[0].cluster.vnodes);
        assert_eq!(config.keyspaces, nodes[0].keyspaces);
        assert!(config.tls.permits_start());
    }
    let numbers: BTreeSet<u64> = nodes.iter().map(NodeConfig::node_number).collect();
    assert_eq!(numbers.len(), 3);
    assert_eq!(nodes[0].effective_keyspaces()[0].name, DEFAULT_KEYSPACE, "the implicit default keyspace comes first");
}

#[test]
fn production_template_sets_every_key_and_tls() {
    let path = common::crate_dir().join("examples/production-template.toml");
    let table: Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let missing: Vec<String> = common::leaf_keys().into_iter().filter(|key| !has_key(&table, key)).collect();
    assert!(missing.is_empty(), "keys not shown in the template: {missing:?}");

    let config = load("production-template.toml");
    assert!(config.tls.is_configured());
    assert!(!config.tls.allow_insecure);
    assert!(config.http.has_tls() && !config.http.allow_plaintext);
    assert!(config.auth.enabled && !config.auth.allow_unauthenticated);
    assert_eq!(config.api_exposure_refusal(), None);
}

#[test]
fn the_api_is_refused_on_a_reachable_address_without_tls_or_auth() {
    let production = load("production-template.toml");
    let mut plaintext = production.clone();
    plaintext.http.tls_cert = None;
    plaintext.http.tls_key = None;
    let why = plaintext.api_exposure_refusal().expect("plain HTTP on 0.0.0.0 is refused");
    assert!(why.contains("http.allow_plaintext"), "{why}");
    plaintext.http.allow_plaintext = true;
    assert_eq!(plaintext.api_exposure_refusal(), None);

    let mut open = production.clone();
    open.auth.enabled = false;
    let why = open.api_exposure_refusal().expect("no auth on 0.0.0.0 is refused");
    assert!(why.contains("auth.allow_unauthenticated"), "{why}");
    open.auth.allow_unauthenticated = true;
    assert_eq!(open.api_exposure_refusal(), None);

    // Loopback only: a development node needs neither.
    let dev = load("region-us-east-node1.toml");
    assert!(!dev.http.has_tls() && !dev.auth.enabled);
    assert_eq!(dev.api_exposure_refusal(), None);
    let mut exposed = dev;
    exposed.http.listen = "10.0.0.5:8081".parse().unwrap();
    assert!(exposed.api_exposure_refusal().is_some());
}

/// Whether dotted `key` (with `[]` for any element of an array of tables) is set in `table`.
fn has_key(table: &Table, key: &str) -> bool {
    let Some((head, rest)) = key.split_once('.') else {
        return table.contains_key(key);
    };
    match (head.strip_suffix("[]"), table.get(head.trim_end_matches("[]"))) {
        (Some(_), Some(Value::Array(items))) => {
            items.iter().any(|item| item.as_table().is_some_and(|t| has_key(t, rest)))
        }
        (None, Some(Value::Table(inner))) => has_key(inner, rest),
        _ => false,
    }
}
