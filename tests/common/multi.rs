//! Several regions of real `meridian server` processes on loopback, their WAN traffic going
//! through the in-process WAN emulator (`meridian_wan::emulator`): every node of region A
//! reaches every node of region B through its own emulated link, so delays, loss and
//! partitions apply per region pair.

use std::path::Path;
use std::time::Duration;

use meridian_wan::emulator::{Emulator, LinkSpec};

use super::procs::{config_text, healthy_seen_by, wait_for, ClusterSpec, NodeProc};

/// Several regions.
pub struct MultiCluster {
    pub dir: tempfile::TempDir,
    pub regions: Vec<(String, Vec<NodeProc>)>,
    pub emulator: Emulator,
    pub runtime: tokio::runtime::Runtime,
    pub spec: ClusterSpec,
}

fn wan_section(
    region: &str,
    certs: &Path,
    peers: &[(String, Vec<std::net::SocketAddr>)],
    batch_delay_ms: u64,
) -> String {
    let mut s = format!(
        "\n[wan]\nlisten = \"127.0.0.1:0\"\nbatch_max_delay_ms = {batch_delay_ms}\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("wan-ca.pem").display(),
        certs.join(region).join("wan.pem").display(),
        certs.join(region).join("wan.key").display(),
    );
    for (peer, fronts) in peers {
        let extra: Vec<String> = fronts[1..].iter().map(|a| format!("\"{a}\"")).collect();
        s.push_str(&format!(
            "\n[[wan.peers]]\nregion = \"{peer}\"\naddress = \"{}\"\nserver_name = \"{peer}.wan.meridian\"\nextra_addresses = [{}]\n",
            fronts[0],
            extra.join(", ")
        ));
    }
    s
}

impl MultiCluster {
    /// Starts `regions` of `spec.nodes` nodes each, every pair `one_way` apart.
    pub fn start(regions: &[&str], spec: ClusterSpec, one_way: Duration) -> MultiCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (1..=spec.nodes).map(|i| format!("node{i}")).collect();
        let certs = dir.path().join("certs");
        let bundle: Vec<(&str, Vec<&str>)> =
            regions.iter().map(|r| (*r, names.iter().map(String::as_str).collect())).collect();
        meridian_net::certs::write_dev_bundle(&certs, &bundle).expect("dev certificates");
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let emulator = Emulator::new(7);
        // fronts[(a, b)][j]: how region a's nodes reach node j of region b.
        let mut fronts = std::collections::BTreeMap::new();
        for a in regions {
            for b in regions {
                if a == b {
                    continue;
                }
                let mut list = Vec::new();
                for _ in 0..spec.nodes {
                    list.push(runtime.block_on(emulator.add_pending_link(a, b)).expect("emulator link"));
                }
                fronts.insert((a.to_string(), b.to_string()), list);
                emulator.set(a, b, LinkSpec { delay: one_way, in_order: true, ..LinkSpec::default() });
            }
        }
        let mut out = Vec::new();
        for region in regions {
            let peers: Vec<(String, Vec<std::net::SocketAddr>)> = regions
                .iter()
                .filter(|b| *b != region)
                .map(|b| (b.to_string(), fronts[&(region.to_string(), b.to_string())].clone()))
                .collect();
            let rspec = ClusterSpec { region: region.to_string(), ..spec.clone() };
            let wan = wan_section(region, &certs, &peers, 5);
            let mut nodes = Vec::new();
            let mut seeds = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let ndir = dir.path().join(region).join(name);
                std::fs::create_dir_all(&ndir).expect("node dir");
                let config = ndir.join("node.toml");
                let text = config_text(&rspec, name, &ndir, &certs, &seeds) + &wan;
                std::fs::write(&config, text).expect("config");
                let mut p =
                    NodeProc { name: name.clone(), dir: ndir, config, child: None, ready: None, args: Vec::new() };
                p.spawn();
                if i == 0 {
                    seeds.push(p.wait_ready(Duration::from_secs(60)).rpc);
                }
                nodes.push(p);
            }
            for p in nodes.iter_mut().skip(1) {
                p.wait_ready(Duration::from_secs(60));
            }
            out.push((region.to_string(), nodes));
        }
        let mc = MultiCluster { dir, regions: out, emulator, runtime, spec };
        for (b, nodes) in &mc.regions {
            for (j, p) in nodes.iter().enumerate() {
                let wan = p.wan_addr().expect("node reports its WAN address");
                for a in regions.iter().filter(|a| *a != b) {
                    mc.emulator.retarget(fronts[&(a.to_string(), b.clone())][j], wan).expect("retarget");
                }
            }
        }
        for (_, nodes) in &mc.regions {
            wait_for(Duration::from_secs(60), "every node of the region live and normal", || {
                nodes.iter().all(|p| healthy_seen_by(p) == Some(nodes.len()))
            });
        }
        mc
    }

    /// The nodes of region `name`.
    pub fn region(&self, name: &str) -> &[NodeProc] {
        &self.regions.iter().find(|(r, _)| r == name).expect("region").1
    }

    /// Mutable nodes of region `name`.
    pub fn region_mut(&mut self, name: &str) -> &mut Vec<NodeProc> {
        &mut self.regions.iter_mut().find(|(r, _)| r == name).expect("region").1
    }

    /// Cuts every link of `region` (both ways).
    pub fn cut(&self, region: &str) {
        for (other, _) in &self.regions {
            if other != region {
                self.emulator.update(region, other, |s| s.partitioned = true);
                self.emulator.update(other, region, |s| s.partitioned = true);
            }
        }
    }

    /// Heals every link of `region`.
    pub fn heal(&self, region: &str) {
        for (other, _) in &self.regions {
            if other != region {
                self.emulator.update(region, other, |s| s.partitioned = false);
                self.emulator.update(other, region, |s| s.partitioned = false);
            }
        }
    }
}
