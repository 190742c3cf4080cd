//! Every validation rule: the bad value is refused and the error names the field.

use std::net::SocketAddr;
use std::path::PathBuf;

use meridian_config::{ConfigError, ConsistencyLevel, KeyspaceConfig, KeyspaceType, NodeConfig, WanPeer};

/// The defaults with `change` applied must be refused, naming `field`.
fn rejects(field: &str, change: impl FnOnce(&mut NodeConfig)) -> ConfigError {
    let mut config = NodeConfig::default();
    change(&mut config);
    let err = config.validate().expect_err(&format!("expected {field} to be refused"));
    assert_eq!(err.key(), Some(field), "wrong field in: {err}");
    assert!(err.to_string().starts_with(&format!("{field}: ")), "message does not lead with the field: {err}");
    assert_eq!(err.code(), "config_invalid");
    err
}

fn accepts(change: impl FnOnce(&mut NodeConfig)) {
    let mut config = NodeConfig::default();
    change(&mut config);
    if let Err(err) = config.validate() {
        panic!("expected valid, got: {err}");
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn peer(region: &str) -> WanPeer {
    WanPeer {
        region: region.into(),
        address: format!("wan.{region}.example:7100"),
        server_name: format!("wan.{region}.example"),
        extra_addresses: Vec::new(),
    }
}

fn keyspace(name: &str, kind: KeyspaceType) -> KeyspaceConfig {
    KeyspaceConfig { name: name.into(), kind, consistency: None }
}

#[test]
fn defaults_are_valid() {
    NodeConfig::default().validate().unwrap();
    assert_eq!(NodeConfig::from_toml_str("").unwrap(), NodeConfig::default());
}

#[test]
fn fully_populated_is_valid_and_round_trips() {
    let config = NodeConfig::fully_populated();
    config.validate().unwrap();
    let text = toml::to_string(&config).unwrap();
    assert_eq!(NodeConfig::from_toml_str(&text).unwrap(), config);
}

#[test]
fn documented_defaults() {
    let c = NodeConfig::default();
    assert_eq!(c.clock.max_offset_ms, 500);
    assert_eq!(c.cluster.replication_factor, 3);
    assert_eq!(c.cluster.vnodes, 256);
    assert_eq!(c.cluster.default_consistency, ConsistencyLevel::Quorum);
    assert_eq!(c.cluster.gossip_interval_ms, 200);
    assert_eq!(c.cluster.phi_threshold, 16.0);
    assert_eq!(c.cluster.rpc_timeout_ms, 2000);
    assert_eq!(c.cluster.hint_window_secs, 3 * 3600);
    assert_eq!(c.cluster.anti_entropy_interval_secs, 600);
    assert_eq!(c.http.listen, addr("127.0.0.1:8080"));
    assert_eq!(c.http.max_body_bytes, 3 << 19, "1.5 MiB: a 1 MiB value fits base64-encoded in JSON");
    assert_eq!(c.http.max_key_bytes, 256);
    assert_eq!(c.http.max_value_bytes, 1 << 20);
    assert!(!c.tls.allow_insecure);
    assert!(!c.tls.permits_start(), "no TLS and no opt-in: the server must refuse");
    assert_eq!(c.effective_keyspaces(), vec![KeyspaceConfig::default_keyspace()]);
}

#[test]
fn node_names() {
    rejects("node.id", |c| c.node.id = String::new());
    rejects("node.id", |c| c.node.id = "a".repeat(64));
    rejects("node.id", |c| c.node.id = "Node1".into());
    rejects("node.id", |c| c.node.id = "node_1".into());
    rejects("node.region", |c| c.node.region = "us east".into());
    rejects("node.region", |c| c.node.region = String::new());
    accepts(|c| c.node.id = "a".repeat(63));
}

#[test]
fn storage_section_is_validated_by_the_storage_crate() {
    rejects("storage.data_dir", |c| c.storage.data_dir = PathBuf::new());
    rejects("storage.block_cache_bytes", |c| c.storage.block_cache_bytes = 1);
    rejects("storage.gc_grace_secs", |c| c.storage.gc_grace_secs = 1);
}

#[test]
fn clock_bounds() {
    rejects("clock.max_offset_ms", |c| c.clock.max_offset_ms = 0);
    rejects("clock.max_offset_ms", |c| c.clock.max_offset_ms = 60_001);
    accepts(|c| c.clock.max_offset_ms = 60_000);
}

#[test]
fn replication_factor_bounds() {
    let err = rejects("cluster.replication_factor", |c| c.cluster.replication_factor = 0);
    assert_eq!(err.to_string(), "cluster.replication_factor: 0 is outside 1..=9");
    rejects("cluster.replication_factor", |c| c.cluster.replication_factor = 10);
    accepts(|c| c.cluster.replication_factor = 9);
    accepts(|c| c.cluster.replication_factor = 1);
}

#[test]
fn cluster_bounds() {
    rejects("cluster.vnodes", |c| c.cluster.vnodes = 0);
    rejects("cluster.vnodes", |c| c.cluster.vnodes = 4097);
    rejects("cluster.gossip_interval_ms", |c| c.cluster.gossip_interval_ms = 5);
    rejects("cluster.phi_threshold", |c| c.cluster.phi_threshold = 0.5);
    rejects("cluster.phi_threshold", |c| c.cluster.phi_threshold = f64::NAN);
    rejects("cluster.phi_threshold", |c| c.cluster.phi_threshold = f64::INFINITY);
    rejects("cluster.rpc_timeout_ms", |c| c.cluster.rpc_timeout_ms = 0);
    rejects("cluster.hint_window_secs", |c| c.cluster.hint_window_secs = 0);
    rejects("cluster.anti_entropy_interval_secs", |c| c.cluster.anti_entropy_interval_secs = 0);
}

#[test]
fn seeds_are_host_port_and_distinct() {
    rejects("cluster.seeds[1]", |c| c.cluster.seeds = vec!["127.0.0.1:7001".into(), "127.0.0.1".into()]);
    rejects("cluster.seeds[0]", |c| c.cluster.seeds = vec!["host:0".into()]);
    rejects("cluster.seeds[1]", |c| c.cluster.seeds = vec!["a:1".into(), "a:1".into()]);
    accepts(|c| {
        c.cluster.seeds = vec!["127.0.0.1:7001".into(), "node-2.us-east.internal:7000".into(), "[::1]:7003".into()]
    });
}

#[test]
fn hint_window_and_anti_entropy_stay_within_gc_grace() {
    let err = rejects("cluster.hint_window_secs", |c| {
        c.storage.gc_grace_secs = 3600;
        c.cluster.hint_window_secs = 3600;
    });
    assert!(err.to_string().contains("storage.gc_grace_secs"), "{err}");
    rejects("cluster.anti_entropy_interval_secs", |c| {
        c.storage.gc_grace_secs = 3600;
        c.cluster.hint_window_secs = 60;
        c.cluster.anti_entropy_interval_secs = 7200;
    });
    accepts(|c| {
        c.storage.gc_grace_secs = 3600;
        c.cluster.hint_window_secs = 3599;
        c.cluster.anti_entropy_interval_secs = 3599;
    });
}

#[test]
fn http_limits() {
    rejects("http.max_key_bytes", |c| c.http.max_key_bytes = 0);
    rejects("http.max_key_bytes", |c| c.http.max_key_bytes = 257);
    rejects("http.max_value_bytes", |c| c.http.max_value_bytes = 0);
    rejects("http.max_value_bytes", |c| c.http.max_value_bytes = (1 << 20) + 1);
    rejects("http.max_body_bytes", |c| c.http.max_body_bytes = 1000);
    rejects("http.max_body_bytes", |c| c.http.max_body_bytes = (64 << 20) + 1);
    accepts(|c| {
        c.http.max_value_bytes = 1000;
        c.http.max_body_bytes = 1000;
    });
}

#[test]
fn rpc_advertise_is_reachable() {
    let err = rejects("rpc.advertise", |c| c.rpc.listen = addr("0.0.0.0:7000"));
    assert!(err.to_string().contains("0.0.0.0:7000"), "{err}");
    rejects("rpc.advertise", |c| c.rpc.advertise = Some(addr("0.0.0.0:7000")));
    rejects("rpc.advertise", |c| c.rpc.advertise = Some(addr("10.0.0.1:0")));
    accepts(|c| {
        c.rpc.listen = addr("[::]:7000");
        c.rpc.advertise = Some(addr("[fd00::1]:7000"));
    });
}

#[test]
fn listeners_are_distinct() {
    let err = rejects("rpc.listen", |c| c.rpc.listen = c.http.listen);
    assert!(err.to_string().contains("http.listen"), "{err}");
    rejects("wan.listen", |c| c.wan.listen = Some(c.rpc.listen));
    rejects("wan.listen", |c| c.wan.listen = Some(addr("0.0.0.0:8080")));
    rejects("rpc.listen", |c| {
        c.http.listen = addr("0.0.0.0:9000");
        c.rpc.listen = addr("127.0.0.1:9000");
    });
    // Port 0 lets the OS pick a free port for each listener.
    accepts(|c| {
        c.http.listen = addr("127.0.0.1:0");
        c.rpc.listen = addr("127.0.0.1:0");
        c.wan.listen = Some(addr("127.0.0.1:0"));
    });
    accepts(|c| c.wan.listen = Some(addr("127.0.0.1:7100")));
}

#[test]
fn tls_paths_come_together() {
    let err = rejects("tls.ca_cert", |c| c.tls.cert = Some("node.pem".into()));
    assert!(err.to_string().contains("tls.cert"), "{err}");
    rejects("tls.key", |c| {
        c.tls.ca_cert = Some("ca.pem".into());
        c.tls.cert = Some("node.pem".into());
    });
    rejects("tls.cert", |c| {
        c.tls.ca_cert = Some("ca.pem".into());
        c.tls.key = Some("node.key".into());
    });
    rejects("tls.key", |c| {
        c.tls.ca_cert = Some("ca.pem".into());
        c.tls.cert = Some("node.pem".into());
        c.tls.key = Some(PathBuf::new());
    });
    accepts(|c| {
        c.tls.ca_cert = Some("ca.pem".into());
        c.tls.cert = Some("node.pem".into());
        c.tls.key = Some("node.key".into());
    });
}

#[test]
fn wan_batching_bounds() {
    rejects("wan.batch_max_entries", |c| c.wan.batch_max_entries = 0);
    rejects("wan.batch_max_entries", |c| c.wan.batch_max_entries = 65_537);
    rejects("wan.batch_max_delay_ms", |c| c.wan.batch_max_delay_ms = 10_001);
    accepts(|c| c.wan.batch_max_delay_ms = 0);
    rejects("wan.max_batches_in_flight", |c| c.wan.max_batches_in_flight = 0);
    rejects("wan.max_batches_in_flight", |c| c.wan.max_batches_in_flight = 65);
    accepts(|c| c.wan.max_batches_in_flight = 1);
}

#[test]
fn wan_tls_paths_are_all_or_nothing_and_extra_addresses_are_checked() {
    rejects("wan.cert", |c| c.wan.ca_cert = Some("ca.pem".into()));
    rejects("wan.key", |c| {
        c.wan.ca_cert = Some("ca.pem".into());
        c.wan.cert = Some("wan.pem".into());
    });
    accepts(|c| {
        c.wan.ca_cert = Some("ca.pem".into());
        c.wan.cert = Some("wan.pem".into());
        c.wan.key = Some("wan.key".into());
    });
    rejects("wan.peers[0].extra_addresses[0]", |c| {
        let mut p = peer("eu-west");
        p.extra_addresses = vec!["no-port".into()];
        c.wan.peers = vec![p];
    });
}

#[test]
fn wan_peers() {
    let err = rejects("wan.peers[0].region", |c| {
        c.node.region = "us-east".into();
        c.wan.peers = vec![peer("us-east")];
    });
    assert!(err.to_string().contains("own region"), "{err}");
    rejects("wan.peers[1].region", |c| c.wan.peers = vec![peer("eu-west"), peer("eu-west")]);
    rejects("wan.peers[0].region", |c| c.wan.peers = vec![peer("EU")]);
    rejects("wan.peers[0].address", |c| {
        let mut p = peer("eu-west");
        p.address = "eu-west.example".into();
        c.wan.peers = vec![p];
    });
    rejects("wan.peers[0].server_name", |c| {
        let mut p = peer("eu-west");
        p.server_name = String::new();
        c.wan.peers = vec![p];
    });
    accepts(|c| c.wan.peers = vec![peer("eu-west"), peer("ap-south")]);
}

#[test]
fn keyspaces() {
    rejects("keyspaces[0].name", |c| c.keyspaces = vec![keyspace("", KeyspaceType::Lww)]);
    rejects("keyspaces[0].name", |c| c.keyspaces = vec![keyspace(&"k".repeat(65), KeyspaceType::Lww)]);
    rejects("keyspaces[0].name", |c| c.keyspaces = vec![keyspace("Carts", KeyspaceType::Mvr)]);
    let err = rejects("keyspaces[1].name", |c| {
        c.keyspaces = vec![keyspace("carts", KeyspaceType::Mvr), keyspace("carts", KeyspaceType::Counter)]
    });
    assert!(err.to_string().contains("keyspaces[0]"), "{err}");
    rejects("keyspaces[0].type", |c| c.keyspaces = vec![keyspace("default", KeyspaceType::Counter)]);
    // Declaring `default` as lww (to give it a consistency level) is fine, and replaces the
    // implicit one.
    let config = NodeConfig {
        keyspaces: vec![KeyspaceConfig {
            consistency: Some(ConsistencyLevel::All),
            ..keyspace("default", KeyspaceType::Lww)
        }],
        ..NodeConfig::default()
    };
    config.validate().unwrap();
    assert_eq!(config.effective_keyspaces(), config.keyspaces);
    accepts(|c| {
        c.keyspaces = vec![keyspace("user_sessions", KeyspaceType::Lww), keyspace(&"k".repeat(64), KeyspaceType::Set)]
    });
}

#[test]
fn telemetry() {
    rejects("telemetry.log_level", |c| c.telemetry.log_level = " ".into());
    rejects("telemetry.otlp_endpoint", |c| c.telemetry.otlp_endpoint = Some("collector:4317".into()));
    rejects("telemetry.otlp_endpoint", |c| c.telemetry.otlp_endpoint = Some("http://".into()));
    accepts(|c| c.telemetry.otlp_endpoint = Some("https://otel.example:4317/v1".into()));
    accepts(|c| c.telemetry.log_level = "info,meridian_region=debug".into());
}

#[test]
fn node_number_is_nonzero_and_depends_on_region_and_id() {
    let mut a = NodeConfig::default();
    a.node.region = "us-east".into();
    a.node.id = "node1".into();
    let mut b = a.clone();
    b.node.region = "eu-west".into();
    let mut c = a.clone();
    c.node.id = "node2".into();
    assert_ne!(a.node_number(), 0);
    assert_ne!(a.node_number(), b.node_number());
    assert_ne!(a.node_number(), c.node_number());
    assert_eq!(a.node_number(), a.clone().node_number());
}
