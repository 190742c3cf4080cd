//! A full disk on a real node: its data directory is a 32 MiB tmpfs. Writes of 256 KiB values
//! go in until the disk is full; from then on writes get a clear error (`503 unavailable`,
//! the replica's reason `storage_engine: ... No space left on device`) and the node keeps answering reads with every
//! acknowledged value. After the operator makes room (the tmpfs is grown) and restarts the
//! node, every acknowledged value is still there and writes work again.
//!
//! Needs root (it mounts a tmpfs); CI runs as root.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::procs::{config_text, http, ClusterSpec, NodeProc};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn value(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 256 * 1024];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

fn get(node: &NodeProc, i: usize) -> Option<Vec<u8>> {
    let r = ureq::get(&node.url(&format!("/api/v1/keys/k{i}")))
        .set("X-Consistency-Level", "ONE")
        .timeout(Duration::from_secs(10))
        .call();
    match r {
        Ok(r) => {
            let body: serde_json::Value = r.into_json().expect("json");
            Some(STANDARD.decode(body["value"].as_str().expect("an lww value")).expect("base64"))
        }
        Err(ureq::Error::Status(404, _)) => None,
        Err(e) => panic!("read k{i}: {e}"),
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ClusterSpec { nodes: 1, replication_factor: 1, durability: "sync", ..ClusterSpec::default() };
    let certs = dir.path().join("certs");
    meridian_net::certs::write_dev_bundle(&certs, &[(spec.region.as_str(), vec!["node1"])]).expect("certificates");
    let ndir = dir.path().join("node1");
    let data = ndir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"]).arg(&data).status().expect("mount");
    assert!(st.success(), "mounting a tmpfs at {} (the test needs root)", data.display());
    let _mount = Mount(data.clone());
    let config = ndir.join("node.toml");
    std::fs::write(&config, config_text(&spec, "node1", &ndir, &certs, &[])).expect("config");
    let mut node = NodeProc {
        name: "node1".into(),
        dir: ndir,
        config,
        child: None,
        ready: None,
        args: Vec::new(),
        env: Vec::new(),
    };
    node.spawn();
    node.wait_ready(Duration::from_secs(60));

    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..400 {
        let (status, body) = http(
            "PUT",
            &node.url(&format!("/api/v1/keys/k{i}")),
            &[("Content-Type", "application/octet-stream")],
            Some(&value(i)),
        );
        match status {
            200 => acked.push(i),
            _ => {
                refusal = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = refusal.expect("32 MiB filled up within 400 writes of 256 KiB");
    println!("{} writes acknowledged, then {status}: {body}", acked.len());
    assert!(acked.len() >= 10, "the disk took some writes first");
    assert!((500..600).contains(&status), "a full disk is a server-side error: {status} {body}");
    // The replica's failure is the cause: the write is `unavailable` (the quorum was not met)
    // and the failing replica's reason carries the storage code and the OS error.
    assert_eq!(body["error"], "unavailable", "{body}");
    let reasons: Vec<String> = body["failures"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["reason"].as_str()).map(str::to_owned).collect())
        .unwrap_or_default();
    assert!(
        reasons.iter().any(|r| r.starts_with("storage_engine") && r.to_lowercase().contains("no space left")),
        "the replica's reason names the storage code and the full disk: {body}"
    );
    // Later writes are refused the same way; reads keep working and see every acknowledged value.
    let (again, _) =
        http("PUT", &node.url("/api/v1/keys/later"), &[("Content-Type", "application/octet-stream")], Some(b"x"));
    assert!((500..600).contains(&again), "still refused: {again}");
    for &i in &acked {
        assert_eq!(get(&node, i), Some(value(i)), "acknowledged k{i} readable on the full disk");
    }

    // The operator makes room and restarts the node: nothing acknowledged is lost.
    node.terminate(Duration::from_secs(20));
    let st = Command::new("mount").args(["-o", "remount,size=256m"]).arg(&data).status().expect("remount");
    assert!(st.success(), "growing the tmpfs");
    node.spawn();
    node.wait_ready(Duration::from_secs(60));
    for &i in &acked {
        assert_eq!(get(&node, i), Some(value(i)), "acknowledged k{i} after the restart");
    }
    let (status, body) =
        http("PUT", &node.url("/api/v1/keys/later"), &[("Content-Type", "application/octet-stream")], Some(b"x"));
    assert_eq!(status, 200, "writes work again once there is room: {body}");
    node.terminate(Duration::from_secs(20));
}
