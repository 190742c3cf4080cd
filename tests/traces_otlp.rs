//! Traces with real processes: two regions of three nodes export their spans over OTLP/HTTP to a
//! stub collector in this test. One client write must arrive as one trace across processes:
//! `coordinator.write` on the node asked, `replica.handle` on the other replicas as its
//! children (the W3C context travelled in the RPC frames); and the batch that carried it to the
//! other region as `wan.ship` → `wan.apply` in that region → `replica.handle` on its replicas
//! (the context travelled in the WAN frame). No span names the key.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::multi::MultiCluster;
use common::procs::{http, ClusterSpec};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

#[derive(Debug, Clone)]
struct SpanRec {
    name: String,
    trace: String,
    id: String,
    parent: String,
    node: String,
    region: String,
    attributes: HashMap<String, String>,
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A minimal OTLP/HTTP collector: decodes every POST body as an `ExportTraceServiceRequest`.
type Collected = (String, Arc<Mutex<Vec<SpanRec>>>, Arc<Mutex<u64>>);

fn start_collector() -> Collected {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let spans = Arc::new(Mutex::new(Vec::new()));
    let posts = Arc::new(Mutex::new(0u64));
    let (s2, p2) = (Arc::clone(&spans), Arc::clone(&posts));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (spans, posts) = (Arc::clone(&s2), Arc::clone(&p2));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    assert!(request_line.starts_with("POST /v1/traces "), "{request_line}");
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP trace export");
                    *posts.lock().unwrap() += 1;
                    let mut out = spans.lock().unwrap();
                    for rs in req.resource_spans {
                        let attrs: HashMap<String, String> = rs
                            .resource
                            .map(|r| r.attributes.into_iter().map(|kv| (kv.key, text(&kv.value))).collect())
                            .unwrap_or_default();
                        for ss in rs.scope_spans {
                            for s in ss.spans {
                                out.push(SpanRec {
                                    name: s.name,
                                    trace: hex::encode(&s.trace_id),
                                    id: hex::encode(&s.span_id),
                                    parent: hex::encode(&s.parent_span_id),
                                    node: attrs.get("service.instance.id").cloned().unwrap_or_default(),
                                    region: attrs.get("meridian.region").cloned().unwrap_or_default(),
                                    attributes: s.attributes.into_iter().map(|kv| (kv.key, text(&kv.value))).collect(),
                                });
                            }
                        }
                    }
                    drop(out);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (url, spans, posts)
}

#[test]
fn one_write_is_one_trace_across_replicas_and_regions() {
    let (url, spans, posts) = start_collector();
    let spec = ClusterSpec { otlp_endpoint: Some(url), ..ClusterSpec::default() };
    let mc = MultiCluster::start(&["us-east", "eu-west"], spec, Duration::from_millis(20));
    let n1 = &mc.region("us-east")[0];
    let (status, body) =
        http("PUT", &n1.url("/api/v1/keys/traced-key-7"), &[("X-Consistency-Level", "ALL")], Some(b"the value"));
    assert_eq!(status, 200, "{body}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let (write, wan_pair) = loop {
        let all = spans.lock().unwrap().clone();
        let write =
            all.iter().find(|s| s.name == "coordinator.write" && s.region == "us-east" && s.node == "node1").cloned();
        let replicas: Vec<&SpanRec> = write
            .as_ref()
            .map(|w| {
                all.iter().filter(|s| s.name == "replica.handle" && s.trace == w.trace && s.parent == w.id).collect()
            })
            .unwrap_or_default();
        let remote_replicas = replicas
            .iter()
            .filter(|s| s.region == "us-east" && s.node != "node1")
            .map(|s| s.node.clone())
            .collect::<std::collections::BTreeSet<_>>();
        let wan_pair = all.iter().filter(|s| s.name == "wan.ship" && s.region == "us-east").find_map(|ship| {
            let apply = all.iter().find(|a| {
                a.name == "wan.apply" && a.region == "eu-west" && a.trace == ship.trace && a.parent == ship.id
            })?;
            let merges = all
                .iter()
                .filter(|m| m.name == "replica.handle" && m.region == "eu-west" && m.trace == ship.trace)
                .map(|m| m.node.clone())
                .collect::<std::collections::BTreeSet<_>>();
            (merges.len() >= 2).then(|| (ship.clone(), apply.clone(), merges))
        });
        if let (Some(w), Some(pair), 2) = (&write, &wan_pair, remote_replicas.len()) {
            break (w.clone(), pair.clone());
        }
        assert!(
            Instant::now() < deadline,
            "incomplete traces after 30 s ({} exports): write {write:?}, replicas {remote_replicas:?}, wan {:?}; spans: {:?}",
            posts.lock().unwrap(),
            wan_pair.as_ref().map(|(s, a, _)| (s.id.clone(), a.id.clone())),
            all.iter().filter(|s| s.name.starts_with("wan") || s.region == "eu-west").map(|s| (&s.name, &s.region, &s.node, &s.trace[..8], &s.id[..8], &s.parent)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (ship, apply, merges) = wan_pair;
    assert_eq!(write.attributes.get("keyspace").map(String::as_str), Some("default"), "{:?}", write.attributes);
    assert_eq!(apply.attributes.get("source_region").map(String::as_str), Some("us-east"));
    assert_eq!(ship.attributes.get("peer_region").map(String::as_str), Some("eu-west"));
    let all = spans.lock().unwrap().clone();
    for s in &all {
        for (k, v) in &s.attributes {
            assert!(
                !v.contains("traced-key-7") && !v.contains("the value"),
                "span {} attribute {k} names the key or value",
                s.name
            );
        }
    }
    println!(
        "trace {}: coordinator.write on us-east/node1, replica.handle on 2 other replicas; wan.ship {} -> wan.apply {} in eu-west, \
         merged on {merges:?}; {} spans received in {} exports",
        write.trace,
        ship.id,
        apply.id,
        all.len(),
        posts.lock().unwrap()
    );
}
