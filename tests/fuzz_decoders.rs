//! Fuzz targets (bolero) for every decoder that reads bytes from outside the process: records
//! and causal contexts (disk, RPC, WAN), intra-region RPC frames (requests, responses, one-way
//! messages), gossip messages (chitchat's codec, as our transport calls it), WAN frames
//! (requests, including compressed batches, and responses), and node configuration files.
//!
//! Each target must never panic, hang or allocate without bound; whatever decodes must encode
//! and decode again to the same value (frames) or validate (configs). Under `cargo test` bolero
//! runs each target on its committed corpus (`tests/__fuzz__/<target>/corpus/`, valid
//! encodings written by `MERIDIAN_WRITE_CORPUS=1 cargo test --test fuzz_decoders`) plus random
//! and mutated inputs for a bounded time: the CI smoke. For a long run: `cargo install
//! cargo-bolero` and `cargo bolero test --test fuzz_decoders <target>` (libFuzzer, nightly).

use std::path::PathBuf;
use std::time::Duration;

use meridian_crdt::{CausalContext, Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};

/// Time each target gets in the CI smoke run (override: `MERIDIAN_FUZZ_SECS`).
fn budget() -> Duration {
    let secs = std::env::var("MERIDIAN_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    Duration::from_secs(secs)
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/__fuzz__").join(target).join("corpus")
}

/// With `MERIDIAN_WRITE_CORPUS=1`, writes `seeds` as the target's corpus files.
fn write_corpus(target: &str, seeds: &[Vec<u8>]) {
    if std::env::var("MERIDIAN_WRITE_CORPUS").is_err() {
        return;
    }
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s).expect("corpus file");
    }
}

fn ctx(ms: u64) -> OpContext {
    let ts = Hlc::from_physical_ms(ms, NodeId(7));
    OpContext { actor: NodeId(7), ts, now_ms: ms }
}

fn records() -> Vec<Record> {
    let limits = Limits::default();
    let lww = Record::apply(
        None,
        ValueKind::Lww,
        &Op::LwwPut { value: b"v".to_vec(), ttl_ms: Some(60_000) },
        &ctx(1_000),
        &limits,
    )
    .expect("lww");
    let counter =
        Record::apply(None, ValueKind::Counter, &Op::CounterAdd { delta: -5, ttl_ms: None }, &ctx(2_000), &limits)
            .expect("counter");
    let set = Record::apply(
        None,
        ValueKind::Set,
        &Op::SetUpdate { add: vec![b"a".to_vec(), b"b".to_vec()], remove: vec![], context: None, ttl_ms: None },
        &ctx(3_000),
        &limits,
    )
    .expect("set");
    let mvr = Record::apply(
        None,
        ValueKind::Mvr,
        &Op::MvrPut { value: Some(b"x".to_vec()), context: CausalContext::default(), ttl_ms: None },
        &ctx(4_000),
        &limits,
    )
    .expect("mvr");
    vec![lww, counter, set, mvr]
}

#[test]
fn record_decoder() {
    let seeds: Vec<Vec<u8>> = records().iter().map(Record::encode).collect();
    write_corpus("record_decoder", &seeds);
    bolero::check!().with_test_time(budget()).for_each(|bytes: &[u8]| {
        if let Ok(r) = Record::decode(bytes) {
            // Accepted bytes are canonical: they re-encode to themselves.
            assert_eq!(r.encode(), bytes, "a decoded record re-encodes to its bytes");
        }
        if let Ok(c) = CausalContext::decode(bytes) {
            assert_eq!(c.encode(), bytes, "a decoded context re-encodes to its bytes");
        }
    });
}

#[test]
fn rpc_frame_decoders() {
    use meridian_region::rpc::{
        decode_message, decode_request_traced, decode_response, encode_message, encode_request, encode_request_traced,
        encode_response, Message, Request, Response,
    };
    let recs = records();
    let seeds = vec![
        encode_request(&Request::Ping),
        encode_request(&Request::Read { keyspace: "default".into(), key: b"k".to_vec() }),
        encode_request_traced(
            &Request::MergeBatch {
                items: recs.iter().map(|r| ("default".to_owned(), b"k".to_vec(), r.clone())).collect(),
                origin: meridian_local::Origin::Repair,
            },
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ),
        encode_response(&Response::Pong { node: 3 }),
        encode_response(&Response::Record(Some(recs[0].clone()))),
        encode_response(&Response::Error { code: "invalid_op".into(), message: "no".into() }),
        encode_message(&Message::Gossip(vec![1, 2, 3])),
    ];
    write_corpus("rpc_frame_decoders", &seeds);
    bolero::check!().with_test_time(budget()).for_each(|bytes: &[u8]| {
        if let Ok((req, tp)) = decode_request_traced(bytes) {
            let again = encode_request_traced(&req, tp.as_deref());
            assert!(decode_request_traced(&again).is_ok(), "a decoded request encodes to a decodable frame");
        }
        if let Ok(resp) = decode_response(bytes) {
            assert!(decode_response(&encode_response(&resp)).is_ok());
        }
        if let Ok(m) = decode_message(bytes) {
            assert!(decode_message(&encode_message(&m)).is_ok());
        }
    });
}

#[test]
fn gossip_decoder() {
    use chitchat::{ChitchatMessage, Deserializable};
    // No valid chitchat message is built here (its constructors are the library's); the corpus
    // holds a few byte patterns and bolero mutates from there.
    write_corpus("gossip_decoder", &[vec![0], vec![1, 0, 0, 0], vec![2; 16]]);
    bolero::check!().with_test_time(budget()).for_each(|bytes: &[u8]| {
        let mut buf = bytes;
        let _ = ChitchatMessage::deserialize(&mut buf);
    });
}

#[test]
fn wan_frame_decoders() {
    use meridian_wan::protocol::{
        decode_request_traced, decode_response, encode_request, encode_request_traced, encode_response, WanRequest,
        WanResponse,
    };
    use meridian_wan::{Codec, DigestQuery};
    let items: Vec<_> = records().into_iter().map(|r| ("default".to_owned(), b"k".to_vec(), r)).collect();
    let batch = WanRequest::Batch { source_region: "eu-west".into(), items };
    let seeds = vec![
        encode_request(&batch, Codec::None),
        encode_request(&batch, Codec::Lz4),
        encode_request_traced(&batch, Codec::Zstd, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
        encode_request(
            &WanRequest::Sync { source_region: "us-east".into(), query: DigestQuery::Buckets { ranges: vec![] } },
            Codec::None,
        ),
        encode_response(&WanResponse::Ack { changed: 4 }),
    ];
    write_corpus("wan_frame_decoders", &seeds);
    bolero::check!().with_test_time(budget()).for_each(|bytes: &[u8]| {
        if let Ok((req, tp)) = decode_request_traced(bytes) {
            let again = encode_request_traced(&req, Codec::Lz4, tp.as_deref());
            assert!(decode_request_traced(&again).is_ok(), "a decoded WAN request encodes to a decodable frame");
        }
        if let Ok(resp) = decode_response(bytes) {
            assert!(decode_response(&encode_response(&resp)).is_ok());
        }
    });
}

#[test]
fn config_decoder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(&dir).expect("examples") {
        seeds.push(std::fs::read(e.expect("entry").path()).expect("example"));
    }
    seeds.sort();
    write_corpus("config_decoder", &seeds);
    bolero::check!().with_test_time(budget()).for_each(|bytes: &[u8]| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            // Parsing validates: an accepted file is a valid configuration, anything else is a
            // ConfigError with a stable code, never a panic.
            match meridian_config::NodeConfig::from_toml_str(text) {
                Ok(cfg) => assert!(cfg.validate().is_ok(), "an accepted config validates"),
                Err(e) => assert!(!e.code().is_empty()),
            }
        }
    });
}
