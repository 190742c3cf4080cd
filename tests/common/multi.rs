//! Several regions of real `meridian server` processes on loopback, their WAN traffic going
//! through the in-process WAN emulator (`meridian_wan::emulator`): every node of region A
//! reaches every node of region B through its own emulated link, so delays, loss and
//! partitions apply per region pair.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_history::{check, collect_final, execute_http, History, Kind, Op, Report};
use meridian_wan::emulator::{Emulator, LinkSpec};
use rand::{Rng, SeedableRng};

use super::procs::{config_text, healthy_seen_by, http, http_get_json, wait_for, ClusterSpec, NodeProc};

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
                let mut p = NodeProc {
                    name: name.clone(),
                    dir: ndir,
                    config,
                    child: None,
                    ready: None,
                    args: Vec::new(),
                    env: Vec::new(),
                };
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

/// A client writing all four value types at QUORUM to random nodes of `addrs` until `stop`,
/// recording every operation and its outcome in `history`.
pub fn workload(history: &History, region: &str, client: &str, addrs: &[String], stop: &AtomicBool, seed: u64) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let addr = &addrs[rng.random_range(0..addrs.len())];
        let op = match rng.random_range(0..10) {
            0..=3 => Op::Put {
                keyspace: "default".into(),
                key: format!("k{}", rng.random_range(0..12)),
                value: format!("{client}-{n}"),
            },
            4..=5 => Op::Incr {
                keyspace: "counters".into(),
                key: format!("c{}", rng.random_range(0..4)),
                delta: rng.random_range(-3..=10),
            },
            6..=7 => Op::Sadd {
                keyspace: "sets".into(),
                key: format!("s{}", rng.random_range(0..4)),
                members: vec![format!("{client}-{n}")],
            },
            8 => Op::Srem {
                keyspace: "sets".into(),
                key: format!("s{}", rng.random_range(0..4)),
                members: vec![format!("{client}-{}", n.saturating_sub(rng.random_range(1..20)))],
                context: None,
            },
            _ => Op::MvrPut {
                keyspace: "carts".into(),
                key: format!("m{}", rng.random_range(0..3)),
                value: format!("{client}-{n}"),
                context: None,
            },
        };
        execute_http(history, &agent, client, region, addr, Some("QUORUM"), &op);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Change-log entries not yet acknowledged, summed over every node's links (a node that does
/// not answer counts a million).
pub fn backlog(mc: &MultiCluster) -> u64 {
    let mut total = 0;
    for (_, nodes) in &mc.regions {
        for p in nodes {
            match http_get_json(&p.url("/api/v1/regions")) {
                Some(v) => {
                    total +=
                        v["peers"].as_array().map_or(0, |a| a.iter().map(|l| l["backlog"].as_u64().unwrap_or(0)).sum())
                }
                None => total += 1_000_000,
            }
        }
    }
    total
}

impl MultiCluster {
    /// Creates keyspace `name` of `kind` in every region (through its first node).
    pub fn create_keyspace(&self, name: &str, kind: &str) {
        let body = format!(r#"{{"name": "{name}", "type": "{kind}"}}"#);
        for (_, nodes) in &self.regions {
            let (status, answer) = http(
                "POST",
                &nodes[0].url("/api/v1/keyspaces"),
                &[("Content-Type", "application/json")],
                Some(body.as_bytes()),
            );
            assert!(status == 201 || status == 200, "{answer}");
        }
    }

    /// After the writers stopped and the backlog drained: one anti-entropy pass on every node
    /// (what makes every node of a region equal), then the history checker over the final
    /// state read from every region. Returns the events and the report.
    pub fn repair_and_check(&self, history: &History) -> (Vec<meridian_history::Event>, Report) {
        let events = history.events();
        let mut keys: BTreeSet<(String, String, Kind)> = BTreeSet::new();
        for e in &events {
            let (ks, key) = e.op.target();
            keys.insert((ks.to_owned(), key.to_owned(), e.op.kind()));
        }
        let keys: Vec<_> = keys.into_iter().collect();
        let regions: Vec<(String, Vec<String>)> = self
            .regions
            .iter()
            .map(|(r, nodes)| (r.clone(), nodes.iter().map(|p| p.http().to_owned()).collect()))
            .collect();
        for (_, nodes) in &self.regions {
            for p in nodes {
                let _ = http(
                    "POST",
                    &p.url("/api/v1/cluster/repair"),
                    &[("Content-Type", "application/json")],
                    Some(b"{}"),
                );
            }
        }
        wait_for(Duration::from_secs(60), "repairs done", || {
            self.regions
                .iter()
                .flat_map(|(_, n)| n)
                .all(|p| http_get_json(&p.url("/api/v1/cluster/repair")).is_some_and(|v| v["state"] != "running"))
        });
        let final_state = collect_final(&regions, &keys);
        let report = check(&events, &final_state);
        (events, report)
    }
}
