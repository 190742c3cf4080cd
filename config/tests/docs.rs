//! `docs/configuration.md` cannot drift from the code: every key is documented.

mod common;

#[test]
fn every_leaf_key_is_documented() {
    let path = common::crate_dir().join("../docs/configuration.md");
    let docs = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let keys = common::leaf_keys();
    assert!(keys.len() > 40, "too few keys found: {keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|key| !docs.contains(&format!("`{key}`"))).collect();
    assert!(missing.is_empty(), "keys not documented in docs/configuration.md (write them as `key`): {missing:?}");
}

#[test]
fn layering_rules_are_documented() {
    let docs = std::fs::read_to_string(common::crate_dir().join("../docs/configuration.md")).expect("docs exist");
    assert!(docs.contains("MERIDIAN_CLUSTER__REPLICATION_FACTOR"));
    assert!(docs.contains("cluster.replication_factor=5"));
}
