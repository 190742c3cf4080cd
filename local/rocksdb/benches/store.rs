//! Store vs raw RocksDB, measured in the same run with the same options and 1 KiB values.
//!
//! `cargo bench -p meridian-rocksdb` (add `-- --ops N --rounds R --durability none|sync|group`).
//!
//! Workloads, each on a fresh database:
//! - put: `Store::apply` (LWW put: read, merge, write record + change-log entry + Merkle
//!   delta) vs raw `put_cf` of the same encoded record;
//! - get: `Store::get` (get + decode) vs raw `get_cf`, over the keys the put phase wrote;
//! - merge: `Store::merge` of a newer remote state (striped read-modify-write) vs a raw
//!   RocksDB merge operator that performs the same CRDT merge at read/compaction time
//!   (`merge_cf` plus the `get_cf` that resolves it, since a merge must be read to be used).
//!
//! Prints ops/s per workload (median of the rounds) and the ratios Store ÷ raw.

use std::time::Instant;

use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};
use meridian_local::{Durability, NodeStore, Origin, StorageConfig, Store};
use meridian_rocksdb::{options, RocksEngine};
use rocksdb::{MergeOperands, WriteOptions, DB};

const BASE_MS: u64 = 1_700_000_000_000;

struct Args {
    ops: u64,
    rounds: usize,
    durability: Durability,
}

fn parse_args() -> Args {
    let mut a = Args { ops: 50_000, rounds: 3, durability: Durability::None };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--ops" => {
                a.ops = argv[i + 1].parse().expect("--ops N");
                i += 1;
            }
            "--rounds" => {
                a.rounds = argv[i + 1].parse().expect("--rounds N");
                i += 1;
            }
            "--durability" => {
                a.durability = match argv[i + 1].as_str() {
                    "none" => Durability::None,
                    "sync" => Durability::Sync,
                    "group" => Durability::Group,
                    other => panic!("unknown durability {other}"),
                };
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

fn ctx(i: u64, node: u64) -> OpContext {
    OpContext { actor: NodeId(node), ts: Hlc::from_physical_ms(BASE_MS + i, NodeId(node)), now_ms: BASE_MS + i }
}

fn key(i: u64) -> Vec<u8> {
    format!("user{:012}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1_000_000_000_000).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; 1024];
    for (j, b) in v.iter_mut().enumerate() {
        *b = (i as usize).wrapping_add(j * 31) as u8;
    }
    v
}

fn config(dir: &std::path::Path, d: Durability) -> StorageConfig {
    StorageConfig { data_dir: dir.to_path_buf(), durability: d, ..StorageConfig::default() }
}

fn rate(ops: u64, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    ops as f64 / t.elapsed().as_secs_f64()
}

fn crdt_merge(_k: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut acc = existing.and_then(|b| Record::decode(b).ok());
    for op in operands {
        let Ok(r) = Record::decode(op) else { continue };
        match &mut acc {
            Some(a) => {
                a.merge(&r).ok()?;
            }
            None => acc = Some(r),
        }
    }
    acc.map(|r| r.encode())
}

fn lww(i: u64, node: u64) -> Record {
    Record::apply(
        None,
        ValueKind::Lww,
        &Op::LwwPut { value: value(i), ttl_ms: None },
        &ctx(i, node),
        &Limits::default(),
    )
    .unwrap()
}

/// One round: returns (store put, raw put, store get, raw get, store merge, raw merge-operator).
fn round(a: &Args) -> [f64; 6] {
    let n = a.ops;
    let limits = Limits::default();
    // --- Store
    let dir = tempfile::tempdir().unwrap();
    let store = NodeStore::open(RocksEngine::open(&config(dir.path(), a.durability)).unwrap()).unwrap();
    // Inputs are prepared outside the timed loops, for the Store and raw RocksDB alike.
    let keys: Vec<Vec<u8>> = (0..n).map(key).collect();
    let ops: Vec<Op> = (0..n).map(|i| Op::LwwPut { value: value(i), ttl_ms: None }).collect();
    let ctxs: Vec<OpContext> = (0..n).map(|i| ctx(i, 1)).collect();
    let store_put = rate(n, || {
        for i in 0..n as usize {
            store.apply("default", &keys[i], ValueKind::Lww, &ops[i], &ctxs[i], &limits).unwrap();
        }
    });
    let store_get = rate(n, || {
        for i in 0..n {
            assert!(store.get("default", &keys[i as usize]).unwrap().is_some());
        }
    });
    let remote: Vec<Record> = (0..n).map(|i| lww(i + n, 2)).collect();
    let origin = Origin::Remote { region: "eu".into() };
    let store_merge = rate(n, || {
        for i in 0..n {
            store.merge("default", &keys[i as usize], &remote[i as usize], origin.clone()).unwrap();
        }
    });
    drop(store);
    // --- Raw RocksDB, same options (data column family), same encoded records.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), a.durability);
    let (db_opts, mut cfs) = options(&cfg);
    // The merge-on-write alternative: a CRDT merge operator on the data column family.
    let mut data_opts = rocksdb::Options::default();
    data_opts.set_merge_operator_associative("crdt", crdt_merge);
    data_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    data_opts.set_write_buffer_size(cfg.write_buffer_bytes as usize);
    cfs.push(rocksdb::ColumnFamilyDescriptor::new("data_merge", data_opts));
    let db = DB::open_cf_descriptors(&db_opts, dir.path(), cfs).unwrap();
    let data = db.cf_handle("data").unwrap();
    let mut wo = WriteOptions::default();
    wo.set_sync(a.durability != Durability::None);
    let local: Vec<Vec<u8>> = (0..n).map(|i| lww(i, 1).encode()).collect();
    let raw_put = rate(n, || {
        for i in 0..n {
            db.put_cf_opt(data, &keys[i as usize], &local[i as usize], &wo).unwrap();
        }
    });
    let raw_get = rate(n, || {
        for i in 0..n {
            assert!(db.get_cf(data, &keys[i as usize]).unwrap().is_some());
        }
    });
    let dm = db.cf_handle("data_merge").unwrap();
    for i in 0..n {
        db.put_cf_opt(dm, &keys[i as usize], &local[i as usize], &wo).unwrap();
    }
    let remote_bytes: Vec<Vec<u8>> = remote.iter().map(Record::encode).collect();
    let raw_merge = rate(n, || {
        for i in 0..n {
            db.merge_cf_opt(dm, &keys[i as usize], &remote_bytes[i as usize], &wo).unwrap();
            assert!(db.get_cf(dm, &keys[i as usize]).unwrap().is_some());
        }
    });
    [store_put, raw_put, store_get, raw_get, store_merge, raw_merge]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let a = parse_args();
    println!(
        "store vs raw RocksDB: {} ops per workload, 1 KiB values, durability {:?}, median of {} rounds",
        a.ops, a.durability, a.rounds
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("loadavg before: {}", load.trim());
    }
    let rounds: Vec<[f64; 6]> = (0..a.rounds).map(|_| round(&a)).collect();
    let m: Vec<f64> = (0..6).map(|j| median(rounds.iter().map(|r| r[j]).collect())).collect();
    println!("{:<8} {:>14} {:>14} {:>8}", "op", "store ops/s", "raw ops/s", "ratio");
    for (name, s, r) in [("put", m[0], m[1]), ("get", m[2], m[3])] {
        println!("{name:<8} {s:>14.0} {r:>14.0} {:>8.2}", s / r);
    }
    println!(
        "{:<8} {:>14.0} {:>14.0} {:>8.2}   (raw = RocksDB merge operator + resolving get)",
        "merge",
        m[4],
        m[5],
        m[4] / m[5]
    );
    // CPU-only parts of the Store's per-operation work, to read the ratios against.
    let rec = lww(7, 1);
    let bytes = rec.encode();
    let reps = a.ops * 4;
    let enc = rate(reps, || {
        for _ in 0..reps {
            std::hint::black_box(std::hint::black_box(&rec).encode());
        }
    });
    let dec = rate(reps, || {
        for _ in 0..reps {
            std::hint::black_box(Record::decode(std::hint::black_box(&bytes)).unwrap());
        }
    });
    let skey = rate(reps, || {
        for i in 0..reps {
            std::hint::black_box(
                meridian_local::StorageKey::new("default", std::hint::black_box(&key(i % 1000))).unwrap(),
            );
        }
    });
    println!("cpu only: record encode {enc:.0}/s, record decode {dec:.0}/s, storage key (incl. formatting the key) {skey:.0}/s");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("loadavg after: {}", load.trim());
    }
}
