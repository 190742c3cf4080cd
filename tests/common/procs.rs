//! Real `meridian server` processes on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// The binary under test (`MERIDIAN_BIN` overrides it: a long soak runs a copy, so builds
/// meanwhile do not change what its restarts start).
pub fn meridian_bin() -> PathBuf {
    std::env::var_os("MERIDIAN_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_meridian")), PathBuf::from)
}

/// Starts `meridian dev` with `args` in `dir` (its cluster under `dir/cluster`, its log in
/// `dir/dev.log`) and waits, at most 120 s, for the endpoints file it writes once every node is
/// ready. Returns the process and the parsed endpoints file; panics with the log if dev exits
/// first.
pub fn start_dev(dir: &Path, args: &[&str]) -> (Child, Value) {
    let endpoints = dir.join("endpoints.json");
    let log = std::fs::File::create(dir.join("dev.log")).expect("log");
    let mut dev = Command::new(meridian_bin())
        .arg("dev")
        .args(args)
        .arg("--base-dir")
        .arg(dir.join("cluster"))
        .arg("--endpoints-file")
        .arg(&endpoints)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn meridian dev");
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(&endpoints) {
            if let Ok(doc) = serde_json::from_slice::<Value>(&bytes) {
                return (dev, doc);
            }
        }
        if let Ok(Some(status)) = dev.try_wait() {
            let out = std::fs::read_to_string(dir.join("dev.log")).unwrap_or_default();
            panic!("meridian dev exited with {status}:\n{out}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no endpoints file after 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `meridian server --ready-file` writes.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub id: String,
    pub http: String,
    pub rpc: String,
    pub pid: u32,
    #[serde(default)]
    pub wan: Option<String>,
}

/// One node process.
#[derive(Debug)]
pub struct NodeProc {
    pub name: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub ready: Option<Ready>,
    /// Extra arguments of `meridian server` (e.g. `--join HOST:PORT`).
    pub args: Vec<String>,
    /// Extra environment of the process (e.g. libfaketime for clock skew).
    pub env: Vec<(String, String)>,
}

impl NodeProc {
    pub fn http(&self) -> &str {
        &self.ready.as_ref().expect("node is ready").http
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http(), path)
    }

    /// The node's WAN endpoint, if it listens for other regions.
    pub fn wan_addr(&self) -> Option<std::net::SocketAddr> {
        self.ready.as_ref()?.wan.as_ref()?.parse().ok()
    }

    fn ready_file(&self) -> PathBuf {
        self.dir.join("ready.json")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Starts the process (the config must exist).
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.ready_file());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).expect("log file");
        let child = Command::new(meridian_bin())
            .arg("server")
            .arg("--config")
            .arg(&self.config)
            .arg("--ready-file")
            .arg(self.ready_file())
            .arg("--exit-with-parent")
            .args(&self.args)
            .env("RUST_LOG", "info,quinn=warn,quinn_proto=warn,chitchat=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn meridian server");
        self.child = Some(child);
        self.ready = None;
    }

    /// Writes the ports the OS chose at the first start into the configuration, so a restart
    /// keeps its addresses (as a deployment with fixed ports does; peers and seeds find it).
    fn pin_ports(&self, r: &Ready) {
        let Ok(text) = std::fs::read_to_string(&self.config) else { return };
        let mut text =
            text.replacen("[http]\nlisten = \"127.0.0.1:0\"", &format!("[http]\nlisten = \"{}\"", r.http), 1);
        text = text.replacen("[rpc]\nlisten = \"127.0.0.1:0\"", &format!("[rpc]\nlisten = \"{}\"", r.rpc), 1);
        if let Some(wan) = &r.wan {
            text = text.replacen("[wan]\nlisten = \"127.0.0.1:0\"", &format!("[wan]\nlisten = \"{wan}\""), 1);
        }
        let _ = std::fs::write(&self.config, text);
    }

    /// Waits for the ready file; panics with the log tail if the process dies or times out.
    pub fn wait_ready(&mut self, timeout: Duration) -> Ready {
        let start = Instant::now();
        loop {
            if let Ok(bytes) = std::fs::read(self.ready_file()) {
                if let Ok(r) = serde_json::from_slice::<Ready>(&bytes) {
                    self.pin_ports(&r);
                    self.ready = Some(r.clone());
                    return r;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited with {status} before ready:\n{}", self.name, self.log_tail(40));
            }
            if start.elapsed() > timeout {
                panic!("{} not ready after {timeout:?}:\n{}", self.name, self.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait up to `timeout` for a clean exit; returns the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if start.elapsed() > timeout {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Settings of a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub region: String,
    pub nodes: usize,
    pub replication_factor: usize,
    pub gossip_interval_ms: u64,
    pub rpc_timeout_ms: u64,
    pub durability: &'static str,
    /// Certificates are made for this many more nodes, started later with [`Cluster::join`].
    pub spare_nodes: usize,
    pub hint_window_secs: u64,
    pub vnodes: u32,
    /// `telemetry.otlp_endpoint` of every node (spans exported there).
    pub otlp_endpoint: Option<String>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            region: "test".into(),
            nodes: 3,
            replication_factor: 3,
            gossip_interval_ms: 100,
            rpc_timeout_ms: 1000,
            durability: "none",
            spare_nodes: 0,
            hint_window_secs: 3600,
            vnodes: 64,
            otlp_endpoint: None,
        }
    }
}

/// A cluster of node processes in a temp dir.
#[derive(Debug)]
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub spec: ClusterSpec,
    pub nodes: Vec<NodeProc>,
}

pub fn config_text(spec: &ClusterSpec, name: &str, dir: &Path, certs: &Path, seeds: &[String]) -> String {
    let seeds = seeds.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    format!(
        r#"[node]
id = "{name}"
region = "{region}"

[storage]
engine = "rocksdb"
data_dir = "{data}"
durability = "{durability}"
block_cache_bytes = 8388608
write_buffer_bytes = 4194304

[cluster]
seeds = [{seeds}]
replication_factor = {rf}
vnodes = {vnodes}
gossip_interval_ms = {gossip}
rpc_timeout_ms = {rpc_timeout}
hint_window_secs = {hint_window}

[http]
listen = "127.0.0.1:0"

[rpc]
listen = "127.0.0.1:0"

[tls]
ca_cert = "{ca}"
cert = "{cert}"
key = "{key}"

[telemetry]
log_level = "info"
{otlp}
"#,
        otlp = spec.otlp_endpoint.as_ref().map(|e| format!("otlp_endpoint = {e:?}")).unwrap_or_default(),
        region = spec.region,
        data = dir.join("data").display(),
        durability = spec.durability,
        rf = spec.replication_factor,
        gossip = spec.gossip_interval_ms,
        rpc_timeout = spec.rpc_timeout_ms,
        hint_window = spec.hint_window_secs,
        vnodes = spec.vnodes,
        ca = certs.join("ca.pem").display(),
        cert = certs.join(&spec.region).join(format!("{name}.pem")).display(),
        key = certs.join(&spec.region).join(format!("{name}.key")).display(),
    )
}

impl Cluster {
    /// Writes certificates and configs, starts the first node, then the rest with it as seed,
    /// and waits until every node sees all of them live.
    pub fn start(spec: ClusterSpec) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (1..=spec.nodes).map(|i| format!("node{i}")).collect();
        let all: Vec<String> = (1..=spec.nodes + spec.spare_nodes).map(|i| format!("node{i}")).collect();
        let certs = dir.path().join("certs");
        meridian_net::certs::write_dev_bundle(
            &certs,
            &[(spec.region.as_str(), all.iter().map(String::as_str).collect::<Vec<_>>())],
        )
        .expect("dev certificates");
        let mut nodes = Vec::new();
        let mut seeds = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let ndir = dir.path().join(name);
            std::fs::create_dir_all(&ndir).expect("node dir");
            let config = ndir.join("node.toml");
            std::fs::write(&config, config_text(&spec, name, &ndir, &certs, &seeds)).expect("config");
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
                let r = p.wait_ready(Duration::from_secs(60));
                seeds.push(r.rpc);
            }
            nodes.push(p);
        }
        for p in nodes.iter_mut().skip(1) {
            p.wait_ready(Duration::from_secs(60));
        }
        let cluster = Cluster { dir, spec, nodes };
        let n = cluster.nodes.len();
        cluster.wait_until(Duration::from_secs(60), "every node sees every node live and normal", |c| {
            c.nodes.iter().all(|p| c.healthy_seen_by(p) == Some(n))
        });
        cluster
    }

    /// Starts one more node (with a spare certificate and no seeds in its file) with
    /// `meridian server --join <first node's RPC address>`, and waits for its ready file.
    /// Returns its index.
    pub fn join(&mut self) -> usize {
        let i = self.nodes.len();
        let name = format!("node{}", i + 1);
        let ndir = self.dir.path().join(&name);
        std::fs::create_dir_all(&ndir).expect("node dir");
        let config = ndir.join("node.toml");
        let seed = self.nodes[0].ready.as_ref().expect("first node ready").rpc.clone();
        let certs = self.dir.path().join("certs");
        std::fs::write(&config, config_text(&self.spec, &name, &ndir, &certs, &[])).expect("config");
        let mut p = NodeProc {
            name,
            dir: ndir,
            config,
            child: None,
            ready: None,
            args: vec!["--join".into(), seed],
            env: Vec::new(),
        };
        p.spawn();
        p.wait_ready(Duration::from_secs(60));
        self.nodes.push(p);
        i
    }

    /// The node named `name`'s status, its `streaming` object and its `repair` object as seen
    /// by `p`.
    pub fn cluster_status(&self, p: &NodeProc) -> Option<Value> {
        http_get_json(&p.url("/api/v1/cluster/status"))
    }

    /// `GET /healthz` → `live_nodes` as seen by `p`.
    pub fn live_seen_by(&self, p: &NodeProc) -> Option<usize> {
        let v = http_get_json(&p.url("/healthz"))?;
        v["live_nodes"].as_u64().map(|n| n as usize)
    }

    /// How many nodes `p` sees `healthy` (live and normal).
    pub fn healthy_seen_by(&self, p: &NodeProc) -> Option<usize> {
        let v = http_get_json(&p.url("/api/v1/cluster/status"))?;
        Some(v["nodes"].as_array()?.iter().filter(|n| n["status"] == "healthy").count())
    }

    /// The status of node `name` as seen by `p` (`healthy`, `down`, ...).
    pub fn status_seen_by(&self, p: &NodeProc, name: &str) -> Option<String> {
        let v = http_get_json(&p.url("/api/v1/cluster/status"))?;
        v["nodes"].as_array()?.iter().find(|n| n["id"] == name).and_then(|n| n["status"].as_str().map(String::from))
    }

    /// Polls `pred` every 50 ms; panics after `timeout`. Returns the time it took.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut pred: impl FnMut(&Cluster) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if pred(self) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let logs: Vec<String> =
                    self.nodes.iter().map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(20))).collect();
                panic!("timed out after {timeout:?} waiting until {what}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How many nodes `p` sees `healthy` (live and normal).
pub fn healthy_seen_by(p: &NodeProc) -> Option<usize> {
    let v = http_get_json(&p.url("/api/v1/cluster/status"))?;
    Some(v["nodes"].as_array()?.iter().filter(|n| n["status"] == "healthy").count())
}

/// Polls `pred` every 50 ms; panics after `timeout` naming `what`. Returns the time it took.
pub fn wait_for(timeout: Duration, what: &str, mut pred: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if pred() {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build()
}

/// GET, parsed as JSON, any status; `None` if unreachable or not JSON.
pub fn http_get_json(url: &str) -> Option<Value> {
    match agent().get(url).call() {
        Ok(r) => r.into_json().ok(),
        Err(ureq::Error::Status(_, r)) => r.into_json().ok(),
        Err(_) => None,
    }
}

/// A request with a body; returns (status, JSON body or Null). Status 0: transport error.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> (u16, Value) {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    match res {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}
