//! `GET /metrics` of real `meridian server` processes, checked by Prometheus' own tools.
//!
//! - A 3-node region takes writes and reads over HTTP; one node's scrape must have the
//!   figures those requests imply (request counters, members, ring version, records), follow
//!   the naming rules (one prefix, no key-level labels), pass `promtool check metrics` (the
//!   linter that flags non-base units, counters without `_total`, missing help), name every
//!   metric the alert rules use, and have every family documented in `docs/observability.md`.
//! - Two regions of one node each, 50 ms apart (the WAN emulator): the receiving node's lag
//!   histogram counts every change applied, none under the one-way delay; the sending node's
//!   link is `up` with an empty backlog, then, with the region cut off, a backlog and a link
//!   `down`. Both scrapes pass `promtool check metrics` with the WAN families filled in.
//! - The alert rules (`ops/prometheus/alerts.yml`) pass `promtool check rules`, and their unit
//!   tests (`ops/prometheus/alerts_test.yml`: synthetic series, expected alerts) pass
//!   `promtool test rules`.
//!
//! `promtool` comes with Debian's `prometheus` package (`apt-get install -y prometheus`); set
//! `PROMTOOL` to use another binary. Without it these tests fail and say so: they are part of
//! the gate, not optional.

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::multi::MultiCluster;
use common::procs::{http, wait_for, Cluster, ClusterSpec, NodeProc};

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool`: `$PROMTOOL`, else the first on `PATH`. Panics with what to install.
fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("promtool")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "promtool not found on PATH: install Debian's `prometheus` package \
             (`apt-get install -y prometheus`) or set PROMTOOL to the binary"
        )
    })
}

/// Runs promtool with `args`, `stdin` piped in.
fn run_promtool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(root())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    }
    child.wait_with_output().expect("promtool output")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `GET /metrics`: (content type, body).
fn scrape(node: &NodeProc) -> (String, String) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let r = agent.get(&node.url("/metrics")).call().expect("GET /metrics");
    assert_eq!(r.status(), 200);
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    (ct, r.into_string().expect("metrics body"))
}

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the sample lines of an exposition (label values here never contain `,` or `}`).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {l}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|e| panic!("bad value in {l}: {e}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {l}"));
                    let labels = inner
                        .split(',')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("bad label in {l}"));
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            Sample { name: name.to_owned(), labels, value }
        })
        .collect()
}

/// The value of the one sample `name` with (at least) `labels`; panics if there is none.
fn value(all: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = all
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v)))
        .collect();
    assert_eq!(found.len(), 1, "want one sample {name}{labels:?}, found {found:?}");
    found[0].value
}

/// Families declared by `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `meridian_*` metric name an alert or recording rule expression uses, without the
/// histogram suffixes.
fn metrics_in_rules(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("read alert rules");
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("meridian_") {
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            names.insert(base.to_owned());
            rest = &tail[end..];
        }
    }
    names
}

fn put(node: &NodeProc, key: &str, value: &str) -> u16 {
    let url = node.url(&format!("/api/v1/keys/{key}"));
    let headers = [("Content-Type", "application/octet-stream"), ("X-Consistency-Level", "QUORUM")];
    http("PUT", &url, &headers, Some(value.as_bytes())).0
}

/// The labels a sample may carry besides `region` and `node` (docs/observability.md).
const LOW_CARDINALITY_LABELS: [&str; 11] =
    ["op", "status", "state", "kind", "reason", "endpoint", "member", "peer_region", "version", "tier", "le"];

#[test]
fn a_node_scrape_has_the_region_figures_and_passes_promtool() {
    // Fail first, and fast, if the tool is missing.
    promtool();
    let cluster = Cluster::start(ClusterSpec::default());
    let node = &cluster.nodes[0];
    const WRITES: usize = 25;
    const READS: usize = 10;
    for i in 0..WRITES {
        assert_eq!(put(node, &format!("metric-key-{i}"), &format!("v{i}")), 200, "write {i}");
    }
    for i in 0..READS {
        let (status, _) = http("GET", &node.url(&format!("/api/v1/keys/metric-key-{i}")), &[], None);
        assert_eq!(status, 200, "read {i}");
    }
    let (status, _) = http("GET", &node.url("/api/v1/keys/never-written"), &[], None);
    assert_eq!(status, 404);

    // Records reach the coordinator's own store at most a round trip after the QUORUM ack.
    wait_for(Duration::from_secs(10), "node1 stores every key written", || {
        let all = samples(&scrape(node).1);
        value(&all, "meridian_storage_records", &[]) >= WRITES as f64
    });
    let (content_type, text) = scrape(node);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "content type {content_type:?}");
    let all = samples(&text);

    // The figures the requests above imply.
    let region = [("region", "test"), ("node", "node1")];
    assert_eq!(value(&all, "meridian_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    let writes_ok = value(&all, "meridian_requests_total", &[("op", "write"), ("status", "ok")]);
    assert!(writes_ok >= WRITES as f64, "writes ok {writes_ok} < {WRITES}");
    let reads_ok = value(&all, "meridian_requests_total", &[("op", "read"), ("status", "ok")]);
    assert!(reads_ok > READS as f64, "reads ok {reads_ok} <= {READS} (a 404 is a successful read)");
    assert_eq!(value(&all, "meridian_requests_total", &[("op", "write"), ("status", "failed")]), 0.0);
    assert_eq!(value(&all, "meridian_requests_unavailable_total", &region), 0.0);
    assert_eq!(value(&all, "meridian_gossip_members", &[("state", "healthy")]), 3.0);
    assert_eq!(value(&all, "meridian_gossip_members", &[("state", "down")]), 0.0);
    for member in ["node1", "node2", "node3"] {
        assert_eq!(value(&all, "meridian_gossip_member_up", &[("member", member)]), 1.0, "{member} up");
    }
    assert!(value(&all, "meridian_ring_version", &[]) >= 1.0);
    assert_eq!(value(&all, "meridian_ring_nodes", &[]), 3.0);
    assert_eq!(value(&all, "meridian_node_ready", &[]), 1.0);
    assert_eq!(value(&all, "meridian_node_state", &[("state", "normal")]), 1.0);
    assert_eq!(value(&all, "meridian_hints_pending", &[]), 0.0, "every replica was up");
    assert!(value(&all, "meridian_storage_writes_total", &[]) >= WRITES as f64);
    assert!(value(&all, "meridian_transport_requests_received_total", &[("endpoint", "rpc")]) > 0.0);
    let refused: f64 = all.iter().filter(|s| s.name == "meridian_tls_handshakes_refused_total").map(|s| s.value).sum();
    assert_eq!(refused, 0.0, "every peer has a certificate of the region");
    let started = value(&all, "meridian_node_start_time_seconds", &[]);
    assert!(started > 1.6e9, "start time {started} is in seconds since the epoch");
    // Request latency histograms: the family is there for both ops, `+Inf` equals `_count`.
    for op in ["read", "write"] {
        let inf = value(&all, "meridian_request_duration_seconds_bucket", &[("op", op), ("le", "+Inf")]);
        assert_eq!(inf, value(&all, "meridian_request_duration_seconds_count", &[("op", op)]), "{op}");
    }

    // Naming rules.
    for s in &all {
        assert!(s.name.starts_with("meridian_"), "one prefix: {}", s.name);
        let names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names[..2], ["region", "node"], "{} starts with region and node", s.name);
        for label in &names[2..] {
            assert!(
                LOW_CARDINALITY_LABELS.contains(label),
                "label {label} of {} is not a low-cardinality name",
                s.name
            );
        }
        assert!(!s.labels.iter().any(|(_, v)| v.contains("metric-key")), "a key in a label: {s:?}");
    }

    // Prometheus' linter (parse errors exit 1, lint problems 3).
    assert_promtool_accepts(&text);

    // Every metric an alert uses is exported (the WAN ones only by nodes with peer regions:
    // checked against the renderer's family list in the docs below instead).
    let exported = families(&text);
    let wan_only = ["meridian_wan_link", "meridian_wan_replication_lag_seconds", "meridian_wan_backlog_entries"];
    for name in metrics_in_rules(&root().join("ops/prometheus/alerts.yml")) {
        assert!(exported.contains(&name) || wan_only.contains(&name.as_str()), "alerts.yml uses {name}, not exported");
    }

    // Every family is documented.
    let docs = std::fs::read_to_string(root().join("docs/observability.md")).expect("docs/observability.md");
    for name in exported.iter().chain(wan_only.iter().map(|s| s.to_string()).collect::<Vec<_>>().iter()) {
        assert!(docs.contains(&format!("`{name}`")), "{name} is not in docs/observability.md");
    }
}

/// Runs `promtool check metrics` on `text`; panics with its findings.
fn assert_promtool_accepts(text: &str) {
    let out = run_promtool(&["check", "metrics"], Some(text));
    assert!(out.status.success(), "promtool check metrics:\n{}\n--- scrape ---\n{text}", describe(&out));
}

#[test]
fn wan_lag_backlog_and_link_state_are_exported_per_peer_region() {
    promtool();
    let spec = ClusterSpec { nodes: 1, replication_factor: 1, ..ClusterSpec::default() };
    let mc = MultiCluster::start(&["us-east", "eu-west"], spec, Duration::from_millis(50));
    let us = &mc.region("us-east")[0];
    let eu = &mc.region("eu-west")[0];
    const WRITES: usize = 20;
    for i in 0..WRITES {
        assert_eq!(put(us, &format!("wan-key-{i}"), &format!("v{i}")), 200, "write {i} in us-east");
    }
    let from_us = [("peer_region", "us-east")];
    wait_for(Duration::from_secs(60), "eu-west applied every change of us-east", || {
        value(&samples(&scrape(eu).1), "meridian_wan_applied_total", &from_us) >= WRITES as f64
    });
    let eu_text = scrape(eu).1;
    let all = samples(&eu_text);
    let bucket = |le: &str| {
        value(&all, "meridian_wan_replication_lag_seconds_bucket", &[("peer_region", "us-east"), ("le", le)])
    };
    let count = value(&all, "meridian_wan_replication_lag_seconds_count", &from_us);
    assert!(count >= WRITES as f64, "lag samples {count} < {WRITES}");
    assert_eq!(bucket("+Inf"), count);
    assert_eq!(bucket("0.025"), 0.0, "no change arrives faster than the 50 ms one-way delay");
    assert_promtool_accepts(&eu_text);

    let to_eu = [("peer_region", "eu-west")];
    wait_for(Duration::from_secs(30), "us-east's link to eu-west is up with nothing pending", || {
        let all = samples(&scrape(us).1);
        value(&all, "meridian_wan_link", &[("peer_region", "eu-west"), ("state", "up")]) == 1.0
            && value(&all, "meridian_wan_backlog_entries", &to_eu) == 0.0
    });
    let all = samples(&scrape(us).1);
    assert!(value(&all, "meridian_wan_shipped_total", &to_eu) >= WRITES as f64);
    assert!(value(&all, "meridian_wan_last_ack_timestamp_seconds", &to_eu) > 1.6e9);
    let states: f64 = all.iter().filter(|s| s.name == "meridian_wan_link").map(|s| s.value).sum();
    assert_eq!(states, 1.0, "exactly one link state is current");

    // Cut off: what is written in us-east waits, and the link goes down (after the WAN
    // request deadline).
    mc.cut("us-east");
    for i in 0..5 {
        assert_eq!(put(us, &format!("cut-key-{i}"), "v"), 200, "write {i} in the cut-off region");
    }
    wait_for(Duration::from_secs(60), "us-east's link to eu-west is down with a backlog", || {
        let all = samples(&scrape(us).1);
        value(&all, "meridian_wan_link", &[("peer_region", "eu-west"), ("state", "down")]) == 1.0
            && value(&all, "meridian_wan_backlog_entries", &to_eu) >= 5.0
    });
    assert_promtool_accepts(&scrape(us).1);
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let out = run_promtool(&["check", "rules", "ops/prometheus/alerts.yml"], None);
    assert!(out.status.success(), "promtool check rules:\n{}", describe(&out));
    let out = run_promtool(&["test", "rules", "ops/prometheus/alerts_test.yml"], None);
    assert!(out.status.success(), "promtool test rules:\n{}", describe(&out));
}
