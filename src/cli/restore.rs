//! `meridian restore --config NODE.toml --snapshot DIR`: replaces a stopped node's data
//! directory with a snapshot written by `meridian ctl snapshot`.
//!
//! Checks first, changes nothing on a refusal: the snapshot's manifest must name this node
//! and region (a snapshot holds the node's ring tokens and identity: it cannot seed another
//! node); a snapshot older than `storage.gc_grace_secs` is refused without `--force` (keys
//! deleted since may have had their tombstones collected, and would come back); the node must
//! be stopped (its RocksDB lock is free). Then the current data directory is moved aside to
//! `<data_dir>.pre-restore-<ms>` (kept: delete it once the node is healthy), the snapshot's
//! files are copied into a new data directory, and the store is marked *restore pending*, so
//! the next start sets the node's own-slot floor and runs a full anti-entropy pass
//! (`region/src/node/snapshot.rs`, `docs/operations.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use meridian_config::{parse_override, NodeConfig};
use meridian_local::{EngineKind, NodeStore, Store};
use meridian_region::node::snapshot::{read_manifest, MANIFEST, META_RESTORE_PENDING};
use meridian_rocksdb::RocksEngine;

/// Options of `meridian restore`.
#[derive(Debug, Clone)]
pub struct RestoreArgs {
    /// The node's configuration file.
    pub config: PathBuf,
    /// Overrides, `section.key=value`.
    pub set: Vec<String>,
    /// The snapshot directory (its `path`); `None` with `in_place`.
    pub snapshot: Option<PathBuf>,
    /// The data directory was already replaced out of band (a volume snapshot, a file copy):
    /// only mark it restored.
    pub in_place: bool,
    /// Restore a snapshot older than the tombstone grace.
    pub force: bool,
}

/// Runs the restore; prints what it did or why it refused.
pub fn run(args: RestoreArgs) -> ExitCode {
    match restore(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let overrides = args.set.iter().map(|s| parse_override(s)).collect::<Result<Vec<_>, _>>()?;
    let cfg = NodeConfig::load_from_process_env(Some(&args.config), &overrides)
        .with_context(|| format!("loading {}", args.config.display()))?;
    if cfg.storage.engine != EngineKind::Rocksdb {
        bail!("storage.engine is {:?}: only a rocksdb node has a data directory to restore", cfg.storage.engine);
    }
    let snapshot = match (&args.snapshot, args.in_place) {
        (Some(_), true) => bail!("--snapshot and --in-place exclude each other"),
        (None, false) => {
            bail!("name the snapshot with --snapshot DIR (or pass --in-place for a data directory already restored)")
        }
        (None, true) => return mark_in_place(&cfg),
        (Some(s), false) => s,
    };
    let manifest = read_manifest(snapshot).map_err(anyhow::Error::msg)?;
    if manifest.node != cfg.node.id || manifest.region != cfg.node.region {
        bail!(
            "the snapshot is of node {} in region {}, this configuration is node {} in region {}: a snapshot \
             carries its node's ring tokens and identity and can only restore that node",
            manifest.node,
            manifest.region,
            cfg.node.id,
            cfg.node.region
        );
    }
    let age = Duration::from_millis(now_ms().saturating_sub(manifest.created_ms));
    let grace = Duration::from_secs(cfg.storage.gc_grace_secs.min(manifest.gc_grace_secs));
    if age >= grace && !args.force {
        bail!(
            "the snapshot is {} s old, at least the tombstone grace ({} s): keys deleted since may have had their \
             tombstones collected and would come back. Restore a newer snapshot, or pass --force to accept that",
            age.as_secs(),
            grace.as_secs()
        );
    }
    let data_dir = cfg.storage.data_dir.clone();
    if data_dir.exists() {
        // Fails while the node runs: RocksDB holds a lock on its directory.
        match RocksEngine::open(&cfg.storage) {
            Ok(engine) => drop(engine),
            Err(e) if is_locked(&e) => {
                bail!("{} is locked: the node is running. Stop it first ({e})", data_dir.display())
            }
            Err(e) => eprintln!("warning: the current data directory does not open ({e}); replacing it anyway"),
        }
    }
    let stamp = now_ms();
    let staging = sibling(&data_dir, &format!(".restoring-{stamp}"));
    let (files, bytes) = copy_tree(snapshot, &staging)
        .with_context(|| format!("copying {} to {}", snapshot.display(), staging.display()))?;
    let aside = sibling(&data_dir, &format!(".pre-restore-{stamp}"));
    if data_dir.exists() {
        std::fs::rename(&data_dir, &aside)
            .with_context(|| format!("moving {} to {}", data_dir.display(), aside.display()))?;
    }
    std::fs::rename(&staging, &data_dir)
        .with_context(|| format!("moving {} to {}", staging.display(), data_dir.display()))?;
    mark_pending(&cfg, stamp)?;
    println!(
        "restored node {} ({}) from snapshot {} taken {} s ago: {files} files, {bytes} bytes into {}",
        cfg.node.id,
        cfg.node.region,
        manifest.name,
        age.as_secs(),
        data_dir.display()
    );
    if aside.exists() {
        println!("the previous data directory is kept in {} (delete it once the node is healthy)", aside.display());
    }
    println!(
        "next: start the node; it opens new counter slots and runs a full anti-entropy pass at once \
         (follow it with `meridian ctl --node HOST:PORT repair` or GET /api/v1/cluster/repair)"
    );
    Ok(())
}

/// RocksDB's answer when another process holds the database.
fn is_locked(e: &meridian_local::StoreError) -> bool {
    e.to_string().contains("lock")
}

/// Marks the store in `storage.data_dir` restore pending (the node must be stopped).
fn mark_pending(cfg: &NodeConfig, stamp: u64) -> anyhow::Result<()> {
    let engine = match RocksEngine::open(&cfg.storage) {
        Ok(e) => e,
        Err(e) if is_locked(&e) => {
            bail!("{} is locked: the node is running. Stop it first ({e})", cfg.storage.data_dir.display())
        }
        Err(e) => return Err(e).context("opening the restored store"),
    };
    let store = NodeStore::open(engine).context("opening the restored store")?;
    store.put_meta(META_RESTORE_PENDING, stamp.to_string().as_bytes())?;
    store.flush()?;
    Ok(())
}

/// `--in-place`: the data directory already holds the restored copy.
fn mark_in_place(cfg: &NodeConfig) -> anyhow::Result<()> {
    let data_dir = &cfg.storage.data_dir;
    if !data_dir.join("CURRENT").exists() {
        bail!("{} holds no RocksDB database: nothing to mark restored", data_dir.display());
    }
    mark_pending(cfg, now_ms())?;
    println!(
        "marked {} restored: at its next start node {} opens new counter slots and runs a full anti-entropy pass. \
         Its age could not be checked: it must be younger than storage.gc_grace_secs ({} s)",
        data_dir.display(),
        cfg.node.id,
        cfg.storage.gc_grace_secs
    );
    Ok(())
}

/// `path` with `suffix` added to its last component.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "data".into());
    name.push(suffix);
    path.with_file_name(name)
}

/// Copies `from` into the new directory `to` (recursively, without the manifest), fsyncing
/// each file; shows progress on standard error for copies that take a while.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    let mut total = 0u64;
    let mut todo = vec![from.to_path_buf()];
    let mut all = Vec::new();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                todo.push(entry.path());
            } else if !(dir == from && entry.file_name() == MANIFEST) {
                total += meta.len();
                all.push(entry.path());
            }
        }
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let started = Instant::now();
    let mut last = Instant::now();
    let mut copied = 0u64;
    for (i, src) in all.iter().enumerate() {
        let rel = src.strip_prefix(from).expect("under the snapshot");
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        copied += std::fs::copy(src, &dest).with_context(|| format!("copying {}", src.display()))?;
        std::fs::File::open(&dest)?.sync_all()?;
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprint!(
                "\rcopying: {}/{} files, {:.0}% of {} MB, {:.0} s",
                i + 1,
                all.len(),
                copied as f64 * 100.0 / total.max(1) as f64,
                total >> 20,
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
        }
    }
    if started.elapsed() >= Duration::from_secs(1) {
        eprintln!();
    }
    std::fs::File::open(to)?.sync_all()?;
    Ok((all.len() as u64, copied))
}
