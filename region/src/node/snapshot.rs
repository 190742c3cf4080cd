//! Snapshots of a node's store, and what a node restored from one does first.
//!
//! **Taking one.** [`take`] writes a RocksDB checkpoint into `<snapshot dir>/.<name>.partial`,
//! adds the manifest ([`SnapshotInfo`], `meridian-snapshot.json`), fsyncs it, and renames the
//! directory to `<snapshot dir>/<name>`: a snapshot directory either is complete or does not
//! exist. The checkpoint is one point in the store's history: every column family at the
//! same sequence number, so each atomic write (record + change-log entry + Merkle delta) is
//! wholly in or wholly out, and the Merkle segments, change log, hints and WAN cursors agree
//! with the records.
//!
//! **Restoring one** is offline (`meridian restore`, `src/cli/restore.rs`): the node's data
//! directory is replaced by a copy of the snapshot, and [`META_RESTORE_PENDING`] is set. On the
//! next start the node ([`on_start`]):
//!
//! 1. records the current HLC time as its *own-slot floor* ([`META_OWN_SLOT_FLOOR`], kept
//!    forever): its counter increments open new slots instead of extending slots from before
//!    the restore, whose later counts (acknowledged before the restore, held by the other
//!    replicas) this copy no longer has. Extending them would produce totals that the
//!    max-merge swallows: acknowledged increments would be lost. Register and set dots are
//!    already drawn above the HLC time, so they cannot collide with dots issued before.
//! 2. starts a full anti-entropy pass at once, so what it missed since the snapshot comes back
//!    from the other replicas without waiting for the periodic pass. Reads at `QUORUM`/`ALL`
//!    repair what they touch meanwhile.
//!
//! Change-log cursors roll back with the copy, so the node re-ships to other regions what it
//! had shipped after the snapshot: merges are idempotent, at-least-once is the contract.

use std::path::{Path, PathBuf};

use meridian_local::Store;

use crate::error::RegionError;
use crate::service::SnapshotInfo;

/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "meridian-snapshot.json";
/// Store metadata: set by `meridian restore`, cleared by the first start after it.
pub const META_RESTORE_PENDING: &str = "restore_pending";
/// Store metadata: the HLC time (NTP64, big-endian u64) below which this node does not extend
/// its own counter slots.
pub const META_OWN_SLOT_FLOOR: &str = "own_slot_floor";

/// Checks a snapshot name: 1–100 of `[A-Za-z0-9._-]`, not starting with a dot.
pub fn check_name(name: &str) -> Result<(), RegionError> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 100 || !ok_chars || name.starts_with('.') {
        return Err(RegionError::InvalidRequest(format!(
            "snapshot name {name:?} must be 1 to 100 of A-Z a-z 0-9 . _ - and not start with a dot"
        )));
    }
    Ok(())
}

/// What [`take`] needs to know about the node.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    /// The directory snapshots go to.
    pub dir: PathBuf,
    /// The snapshot's name (checked with [`check_name`]).
    pub name: String,
    /// The node's `node.id`.
    pub node: String,
    /// The node's region.
    pub region: String,
    /// Wall-clock now, ms since the epoch.
    pub now_ms: u64,
    /// The node's `storage.gc_grace_secs`.
    pub gc_grace_secs: u64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> RegionError {
    RegionError::Store(meridian_local::StoreError::Engine(format!("{what} {}: {e}", path.display())))
}

/// Files and bytes under `dir` (recursively).
fn usage(dir: &Path) -> Result<(u64, u64), RegionError> {
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io_err("reading", dir, e))? {
        let entry = entry.map_err(|e| io_err("reading", dir, e))?;
        let meta = entry.metadata().map_err(|e| io_err("reading", &entry.path(), e))?;
        if meta.is_dir() {
            let (f, b) = usage(&entry.path())?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}

/// Writes the snapshot (blocking: call it on the blocking pool). See the module docs.
pub fn take(store: &dyn Store, req: &SnapshotRequest) -> Result<SnapshotInfo, RegionError> {
    check_name(&req.name)?;
    std::fs::create_dir_all(&req.dir).map_err(|e| io_err("creating", &req.dir, e))?;
    let dest = req.dir.join(&req.name);
    if dest.exists() {
        return Err(RegionError::SnapshotExists(req.name.clone()));
    }
    let partial = req.dir.join(format!(".{}.partial", req.name));
    if partial.exists() {
        // Left by a snapshot that failed half-way (or one running now under the same name).
        std::fs::remove_dir_all(&partial).map_err(|e| io_err("removing", &partial, e))?;
    }
    let records = store.record_count();
    let result = (|| {
        store.checkpoint(&partial)?;
        let (files, bytes) = usage(&partial)?;
        let info = SnapshotInfo {
            format: 1,
            name: req.name.clone(),
            path: dest.display().to_string(),
            node: req.node.clone(),
            region: req.region.clone(),
            created_ms: req.now_ms,
            bytes,
            files,
            records,
            gc_grace_secs: req.gc_grace_secs,
            meridian_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let manifest = partial.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&info).expect("a manifest serializes");
        let file = std::fs::File::create(&manifest).map_err(|e| io_err("creating", &manifest, e))?;
        std::io::Write::write_all(&mut &file, &json).map_err(|e| io_err("writing", &manifest, e))?;
        file.sync_all().map_err(|e| io_err("syncing", &manifest, e))?;
        std::fs::rename(&partial, &dest).map_err(|e| io_err("renaming", &partial, e))?;
        if let Ok(d) = std::fs::File::open(&req.dir) {
            let _ = d.sync_all();
        }
        Ok(info)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// Reads a snapshot's manifest.
pub fn read_manifest(dir: &Path) -> Result<SnapshotInfo, String> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{} is not a Meridian snapshot: cannot read {}: {e}", dir.display(), path.display()))?;
    let info: SnapshotInfo =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} does not decode: {e}", path.display()))?;
    if info.format != 1 {
        return Err(format!("{}: snapshot format {} is not known to this version", path.display(), info.format));
    }
    Ok(info)
}

/// At start: the own-slot floor to use, after turning a pending restore into one (`now_ntp64`
/// is the HLC time now). Returns `(floor, restored)`; `restored` asks for the catch-up pass.
pub fn on_start(store: &dyn Store, now_ntp64: u64) -> Result<(u64, bool), RegionError> {
    let stored = store
        .get_meta(META_OWN_SLOT_FLOOR)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    let pending = store.get_meta(META_RESTORE_PENDING)?.is_some_and(|b| !b.is_empty());
    if !pending {
        return Ok((stored, false));
    }
    let floor = stored.max(now_ntp64);
    store.put_meta(META_OWN_SLOT_FLOOR, &floor.to_be_bytes())?;
    store.put_meta(META_RESTORE_PENDING, b"")?;
    Ok((floor, true))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meridian_local::{MemoryEngine, NodeStore};

    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["a", "node1-1764691200000", "before.upgrade_2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "x y", &"n".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_pending_restore_sets_the_floor_once_and_keeps_it() {
        let store: Arc<dyn Store> = Arc::new(NodeStore::open(MemoryEngine::new()).expect("store"));
        assert_eq!(on_start(store.as_ref(), 500).expect("start"), (0, false));
        store.put_meta(META_RESTORE_PENDING, b"1").expect("meta");
        assert_eq!(on_start(store.as_ref(), 700).expect("start"), (700, true));
        // Later starts keep the floor and do not repair again.
        assert_eq!(on_start(store.as_ref(), 900).expect("start"), (700, false));
        // A second restore raises it.
        store.put_meta(META_RESTORE_PENDING, b"1").expect("meta");
        assert_eq!(on_start(store.as_ref(), 1000).expect("start"), (1000, true));
    }

    #[test]
    fn the_memory_engine_refuses_and_leaves_nothing() {
        let store = NodeStore::open(MemoryEngine::new()).expect("store");
        let dir = tempfile::tempdir().expect("tempdir");
        let req = SnapshotRequest {
            dir: dir.path().join("snaps"),
            name: "s1".into(),
            node: "n1".into(),
            region: "r".into(),
            now_ms: 1,
            gc_grace_secs: 60,
        };
        assert!(take(&store, &req).is_err());
        assert!(!dir.path().join("snaps/s1").exists());
        assert!(!dir.path().join("snaps/.s1.partial").exists());
    }
}
