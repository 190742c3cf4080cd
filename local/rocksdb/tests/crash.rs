//! Crash test: a child process writes with fsync (and, in other rounds, group commit) from
//! several threads and reports each acknowledged write on stdout; the parent kills it with
//! SIGKILL at a pseudo-random moment, reopens the store, and checks that every acknowledged
//! write is there and that the Merkle segments still equal the data.
//!
//! The child is this same test binary, re-executed with `MERIDIAN_CRASH_CHILD` set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, ReadValue, ValueKind};
use meridian_local::merkle::{entry_hash, segment_of};
use meridian_local::{Durability, NodeStore, StorageConfig, Store, TokenRange};
use meridian_rocksdb::RocksEngine;

const CHILD_ENV: &str = "MERIDIAN_CRASH_CHILD";
const ROUNDS: u64 = 6;
const WRITER_THREADS: u64 = 4;
/// The child stops by itself after this long even if nobody kills it.
const CHILD_MAX: Duration = Duration::from_secs(30);

fn config(dir: &Path, durability: Durability) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        durability,
        group_commit_interval_ms: 1,
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: 1 << 20, // small: memtable flushes happen during the run
        ..StorageConfig::default()
    }
}

fn durability_of(round: u64) -> Durability {
    if round.is_multiple_of(2) {
        Durability::Sync
    } else {
        Durability::Group
    }
}

fn value_for(key: &str) -> Vec<u8> {
    key.as_bytes().repeat(16)
}

/// The child: write forever (bounded), printing `ACK <key>` after each acknowledged write.
fn child(dir: &str, round: u64) {
    let store = NodeStore::open(RocksEngine::open(&config(Path::new(dir), durability_of(round))).unwrap()).unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..WRITER_THREADS {
            let store = &store;
            s.spawn(move || {
                let mut i = 0u64;
                while start.elapsed() < CHILD_MAX {
                    let key = format!("r{round}-t{t}-{i}");
                    let ms = 1_700_000_000_000 + i;
                    let ctx =
                        OpContext { actor: NodeId(t + 1), ts: Hlc::from_physical_ms(ms, NodeId(t + 1)), now_ms: ms };
                    store
                        .apply(
                            "default",
                            key.as_bytes(),
                            ValueKind::Lww,
                            &Op::LwwPut { value: value_for(&key), ttl_ms: None },
                            &ctx,
                            &Limits::default(),
                        )
                        .unwrap();
                    // One write(2) per line, so a line is either whole or absent.
                    println!("ACK {key}");
                    i += 1;
                }
            });
        }
    });
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("MERIDIAN_CRASH_ROUND").unwrap().parse().unwrap();
        child(&dir, round);
        return;
    }
    let seed: u64 = std::env::var("MERIDIAN_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x005e_edc0_ffee);
    eprintln!("crash test seed {seed} (set MERIDIAN_CRASH_SEED to replay)");
    let mut rng = seed | 1;
    let dir = tempfile::tempdir().unwrap();
    let mut total_acked = 0usize;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(30 + xorshift(&mut rng) % 400);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "acknowledged_writes_survive_sigkill", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("MERIDIAN_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(key) = line.strip_prefix("ACK ") {
                    if acked.is_empty() {
                        let _ = tx.send(());
                    }
                    acked.push(key.to_owned());
                }
            }
            acked
        });
        // Kill at a random moment after the first acknowledgement.
        rx.recv_timeout(Duration::from_secs(60)).expect("child acknowledged a first write");
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(!acked.is_empty());
        total_acked += acked.len();

        let store = NodeStore::open(RocksEngine::open(&config(dir.path(), Durability::Sync)).unwrap()).unwrap();
        for key in &acked {
            let rec = store.get("default", key.as_bytes()).unwrap();
            let rec = rec
                .unwrap_or_else(|| panic!("round {round}: acknowledged {key} is missing after SIGKILL (seed {seed})"));
            match rec.read(u64::MAX / 2) {
                ReadValue::Lww { value, .. } => assert_eq!(value, value_for(key), "round {round}: {key}"),
                other => panic!("{other:?}"),
            }
        }
        // Segment digests were written in the same batches as the data: they still agree.
        let mut brute: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
        for (k, rec) in store.scan(TokenRange::FULL, None, usize::MAX).unwrap() {
            let e = brute.entry(segment_of(k.token())).or_default();
            e.0 ^= entry_hash(k.as_bytes(), &rec.encode());
            e.1 += 1;
        }
        let digest: BTreeMap<u16, (u64, u64)> =
            store.digest(TokenRange::FULL).unwrap().segments.into_iter().map(|(s, d)| (s, (d.hash, d.count))).collect();
        assert_eq!(digest, brute, "round {round}: Merkle segments disagree with the data after a crash");
        // The change log holds at least every acknowledged write, numbered without reuse.
        assert!(store.changes(0, usize::MAX).unwrap().len() >= total_acked);
        eprintln!(
            "round {round} ({:?}): killed after {kill_after:?}, {} acknowledged writes all present",
            durability_of(round),
            acked.len()
        );
    }
}
