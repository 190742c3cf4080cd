//! `meridian dev`: a local multi-region cluster of separate `meridian server` processes on
//! loopback, the regions joined through the WAN emulator (one-way delays modelled on real
//! inter-region round trips; `--wan-delay-ms` overrides them).
//!
//! It generates a development CA and node certificates (mutual TLS between the nodes) and an
//! API token with every scope (API authentication is on, as in production; the API is plain
//! HTTP on loopback), writes one configuration per node under the base directory, starts the
//! first node, then the others with the first as their seed, waits until every node sees every
//! other one live, and writes the endpoints file (`<base dir>/endpoints.json`, and
//! `--endpoints-file` if given, with the token as `"token"`). It
//! then prints the endpoints and a few example commands and a
//! status line whenever the cluster changes, until SIGINT or SIGTERM, when it stops every node
//! (SIGTERM, then SIGKILL after a grace period).
//!
//! Every port is chosen by the OS (port 0); each node reports its addresses in a ready file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::cli::server::write_atomically;

/// Region names `meridian dev` uses, in order.
pub const REGION_NAMES: [&str; 5] = ["us-east", "eu-west", "ap-southeast", "us-west", "sa-east"];

/// Options of `meridian dev`.
#[derive(Debug, Clone)]
pub struct DevArgs {
    /// Regions to start.
    pub regions: usize,
    /// Nodes in each region.
    pub nodes_per_region: usize,
    /// Replicas per key.
    pub replication_factor: usize,
    /// Where configurations, certificates, data and logs go.
    pub base_dir: PathBuf,
    /// Where to write the endpoints JSON once every node is ready.
    pub endpoints_file: Option<PathBuf>,
    /// Start from empty data directories.
    pub clean: bool,
    /// One-way delay between every pair of regions, overriding the defaults.
    pub wan_delay_ms: Option<u64>,
    /// Run the convergence demo once the cluster is up.
    pub demo: bool,
}

/// What a node writes in its ready file (see `meridian server --ready-file`).
#[derive(Debug, Clone, Deserialize)]
struct Ready {
    id: String,
    http: String,
    rpc: String,
    pid: u32,
    data_dir: PathBuf,
    #[serde(default)]
    wan: Option<String>,
}

struct Running {
    region: String,
    child: Child,
    ready: Ready,
}

/// The `[wan]` section of a node of `region`: its own WAN certificate, and for each peer
/// region the emulator fronts standing for that region's nodes.
fn wan_config(region: &str, certs: &Path, peers: &[(String, Vec<std::net::SocketAddr>)]) -> String {
    if peers.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n[wan]\nlisten = \"127.0.0.1:0\"\nbatch_max_delay_ms = 10\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("wan-ca.pem").display(),
        certs.join(region).join("wan.pem").display(),
        certs.join(region).join("wan.key").display(),
    );
    for (peer, fronts) in peers {
        let extra: Vec<String> = fronts.iter().skip(1).map(|a| format!("\"{a}\"")).collect();
        s.push_str(&format!(
            "\n[[wan.peers]]\nregion = \"{peer}\"\naddress = \"{}\"\nserver_name = \"{peer}.wan.meridian\"\nextra_addresses = [{}]\n",
            fronts[0],
            extra.join(", ")
        ));
    }
    s
}

/// The `[auth]` section of every node: authentication on, one token (`dev`) with every scope.
fn auth_config(token: &str) -> String {
    format!(
        "\n[auth]\nenabled = true\n\n{}",
        crate::cli::token::config_entry(
            "dev",
            &meridian_region::http::auth::token_sha256_hex(token),
            &meridian_config::Scope::ALL,
            None,
            None
        )
    )
}

/// An HTTP client for the nodes' API that sends `token`.
fn api_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, value)]);
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(2)).default_headers(headers).build()?)
}

fn node_config(region: &str, node: &str, dir: &Path, certs: &Path, rf: usize, seeds: &[String]) -> String {
    let seeds = seeds.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    format!(
        r#"# Written by `meridian dev`. Every port is chosen by the OS.
[node]
id = "{node}"
region = "{region}"

[storage]
engine = "rocksdb"
data_dir = "{data}"
durability = "sync"
block_cache_bytes = 33554432

[cluster]
seeds = [{seeds}]
replication_factor = {rf}
default_consistency = "quorum"

[http]
listen = "127.0.0.1:0"

[rpc]
listen = "127.0.0.1:0"

[tls]
ca_cert = "{ca}"
cert = "{cert}"
key = "{key}"

[telemetry]
log_format = "text"
log_level = "info"
"#,
        data = dir.join("data").display(),
        ca = certs.join("ca.pem").display(),
        cert = certs.join(region).join(format!("{node}.pem")).display(),
        key = certs.join(region).join(format!("{node}.key")).display(),
    )
}

async fn spawn_node(exe: &Path, config: &Path, ready_file: &Path, log: &Path) -> anyhow::Result<Child> {
    let _ = std::fs::remove_file(ready_file);
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(exe)
        .arg("server")
        .arg("--config")
        .arg(config)
        .arg("--ready-file")
        .arg(ready_file)
        .arg("--exit-with-parent")
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    Ok(child)
}

async fn wait_ready(child: &mut Child, ready_file: &Path, log: &Path, timeout: Duration) -> anyhow::Result<Ready> {
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(ready_file) {
            if let Ok(r) = serde_json::from_slice::<Ready>(&bytes) {
                return Ok(r);
            }
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "node exited with {status} before it was ready; last lines of {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if start.elapsed() > timeout {
            bail!("node not ready after {:?}; see {}", timeout, log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    nodes: Vec<StatusNode>,
}

#[derive(Debug, Deserialize)]
struct StatusNode {
    status: String,
}

/// How many nodes `http` sees healthy (live and normal: joining nodes are not read from yet).
async fn live_nodes(client: &reqwest::Client, http: &str) -> Option<usize> {
    let resp = client.get(format!("http://{http}/api/v1/cluster/status")).send().await.ok()?;
    let body = resp.json::<StatusBody>().await.ok()?;
    Some(body.nodes.iter().filter(|n| n.status == "healthy").count())
}

async fn stop_all(nodes: &mut [Running]) {
    for n in nodes.iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(n.ready.pid as i32), nix::sys::signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in nodes.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, n.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} did not stop in time; killing it", n.ready.id);
                let _ = n.child.kill().await;
            }
        }
    }
}

async fn run_async(args: DevArgs) -> anyhow::Result<()> {
    if args.regions == 0 || args.regions > REGION_NAMES.len() {
        bail!("--regions must be 1..={}", REGION_NAMES.len());
    }
    if args.nodes_per_region == 0 || args.replication_factor == 0 || args.replication_factor > 9 {
        bail!("--nodes-per-region must be at least 1 and --replication-factor in 1..=9");
    }
    let exe = std::env::current_exe().context("locating the meridian executable")?;
    let base = &args.base_dir;
    if args.clean && base.exists() {
        std::fs::remove_dir_all(base).with_context(|| format!("removing {}", base.display()))?;
    }
    std::fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    let base = base.canonicalize()?;
    let regions: Vec<(String, Vec<String>)> = REGION_NAMES[..args.regions]
        .iter()
        .map(|r| (r.to_string(), (1..=args.nodes_per_region).map(|i| format!("node{i}")).collect()))
        .collect();
    // A new token every start (the configurations are rewritten every start too).
    let token = crate::cli::token::generate()?;
    let certs = base.join("certs");
    if !certs.join("ca.pem").exists() {
        let spec: Vec<(&str, Vec<&str>)> =
            regions.iter().map(|(r, ns)| (r.as_str(), ns.iter().map(String::as_str).collect())).collect();
        meridian_net::certs::write_dev_bundle(&certs, &spec).context("writing development certificates")?;
    }
    println!(
        "meridian dev: {} region(s) x {} node(s), RF {}, in {}",
        args.regions,
        args.nodes_per_region,
        args.replication_factor,
        base.display()
    );

    // The WAN emulator: for each ordered pair of regions (a, b) and each node j of b, a front
    // address a's nodes dial for b's node j; pointed at that node once it reports its port.
    let emulator = meridian_wan::emulator::Emulator::new(42);
    let names: Vec<&str> = regions.iter().map(|(r, _)| r.as_str()).collect();
    let mut fronts: std::collections::BTreeMap<(String, String), Vec<std::net::SocketAddr>> = Default::default();
    for a in &names {
        for b in &names {
            if a != b {
                let mut list = Vec::new();
                for _ in 0..args.nodes_per_region {
                    list.push(emulator.add_pending_link(a, b).await?);
                }
                fronts.insert((a.to_string(), b.to_string()), list);
            }
        }
    }
    let delays: Vec<(String, String, Duration)> = match args.wan_delay_ms {
        Some(ms) => {
            let mut d = Vec::new();
            for (i, a) in names.iter().enumerate() {
                for b in &names[i + 1..] {
                    d.push((a.to_string(), b.to_string(), Duration::from_millis(ms)));
                }
            }
            d
        }
        None => {
            let known = meridian_wan::emulator::default_delays();
            let mut d = Vec::new();
            for (i, a) in names.iter().enumerate() {
                for b in &names[i + 1..] {
                    let delay = known
                        .iter()
                        .find(|(x, y, _)| (x == a && y == b) || (x == b && y == a))
                        .map(|(_, _, d)| *d)
                        .unwrap_or(Duration::from_millis(50));
                    d.push((a.to_string(), b.to_string(), delay));
                }
            }
            d
        }
    };
    for (a, b, delay) in &delays {
        for (x, y) in [(a, b), (b, a)] {
            emulator.update(x, y, |s| {
                s.delay = *delay;
                s.in_order = true;
            });
        }
    }

    let mut running: Vec<Running> = Vec::new();
    let result = async {
        for (region, nodes) in &regions {
            let peers: Vec<(String, Vec<std::net::SocketAddr>)> = names
                .iter()
                .filter(|b| **b != region.as_str())
                .map(|b| (b.to_string(), fronts[&(region.clone(), b.to_string())].clone()))
                .collect();
            let wan = wan_config(region, &certs, &peers);
            let mut seeds: Vec<String> = Vec::new();
            // The first node starts alone; the others join through it, all at once.
            for (i, node) in nodes.iter().enumerate() {
                let dir = base.join(region).join(node);
                std::fs::create_dir_all(&dir)?;
                let config = dir.join("node.toml");
                let text = node_config(region, node, &dir, &certs, args.replication_factor, &seeds)
                    + &wan
                    + &auth_config(&token);
                std::fs::write(&config, text)?;
                let ready_file = dir.join("ready.json");
                let log = dir.join("node.log");
                let mut child = spawn_node(&exe, &config, &ready_file, &log).await?;
                if i == 0 {
                    let ready = wait_ready(&mut child, &ready_file, &log, Duration::from_secs(60)).await?;
                    seeds.push(ready.rpc.clone());
                    println!("  {region}/{node}: http {} (pid {})", ready.http, ready.pid);
                    running.push(Running { region: region.clone(), child, ready });
                } else {
                    running.push(Running {
                        region: region.clone(),
                        child,
                        ready: Ready {
                            id: node.clone(),
                            http: String::new(),
                            rpc: String::new(),
                            pid: 0,
                            data_dir: dir.join("data"),
                            wan: None,
                        },
                    });
                }
            }
            for r in running.iter_mut().filter(|r| r.region == *region && r.ready.pid == 0) {
                let dir = base.join(region).join(&r.ready.id);
                let ready =
                    wait_ready(&mut r.child, &dir.join("ready.json"), &dir.join("node.log"), Duration::from_secs(60))
                        .await?;
                println!("  {region}/{}: http {} (pid {})", ready.id, ready.http, ready.pid);
                r.ready = ready;
            }
        }
        for (b, nodes) in &regions {
            for (j, node) in nodes.iter().enumerate() {
                let Some(r) = running.iter().find(|r| &r.region == b && &r.ready.id == node) else { continue };
                let Some(wan) = r.ready.wan.as_ref().and_then(|w| w.parse().ok()) else { continue };
                for a in names.iter().filter(|a| **a != b.as_str()) {
                    emulator.retarget(fronts[&(a.to_string(), b.clone())][j], wan)?;
                }
            }
        }
        // Every node must see every node of its region live and normal (joined) before the
        // cluster is announced.
        let client = api_client(&token)?;
        let start = Instant::now();
        loop {
            let mut all = true;
            for r in &running {
                let want = running.iter().filter(|o| o.region == r.region).count();
                if live_nodes(&client, &r.ready.http).await != Some(want) {
                    all = false;
                    break;
                }
            }
            if all {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the nodes did not all see each other within 60 s; see the node.log files under {}",
                    base.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        stop_all(&mut running).await;
        return Err(e);
    }

    let endpoints = json!({
        "regions": regions.iter().map(|(region, _)| json!({
            "name": region,
            "nodes": running.iter().filter(|r| &r.region == region).map(|r| json!({
                "id": r.ready.id,
                "http": r.ready.http,
                "rpc": r.ready.rpc,
                "pid": r.ready.pid,
                "data_dir": r.ready.data_dir,
                "wan": r.ready.wan,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "token": token,
    });
    let default_file = base.join("endpoints.json");
    write_atomically(&default_file, &endpoints)?;
    println!("endpoints written to {}", default_file.display());
    if let Some(path) = &args.endpoints_file {
        write_atomically(path, &endpoints)?;
        println!("endpoints written to {}", path.display());
    }
    let first = &running[0].ready.http;
    if regions.len() > 1 {
        println!("emulated WAN (one-way):");
        for (a, b, d) in &delays {
            println!("  {a} <-> {b}: {} ms", d.as_millis());
        }
    }
    // The commands are printed with this executable's path and the endpoints file, so that
    // they work as shown from any directory.
    let me = exe.display();
    let ef = default_file.display();
    println!();
    println!("API token (read, write, admin; also \"token\" in {ef}, which ctl, bench and drill read):");
    println!("  export MERIDIAN_TOKEN={token}");
    println!();
    println!("ready. try:");
    let auth = "-H \"Authorization: Bearer $MERIDIAN_TOKEN\"";
    println!("  curl {auth} -X PUT --data-binary 'hello' http://{first}/api/v1/keys/greeting");
    if let Some(other) = running.iter().find(|r| r.region != running[0].region) {
        println!("  curl {auth} http://{}/api/v1/keys/greeting        # read it in {}", other.ready.http, other.region);
    } else {
        println!("  curl {auth} http://{first}/api/v1/keys/greeting");
    }
    println!("  curl {auth} -X POST -d '{{\"delta\": 5}}' http://{first}/api/v1/counters/visits");
    println!("  open http://{first}/dashboard#token={token}");
    println!("  {me} ctl --endpoints-file {ef} status");
    println!("  {me} ctl --endpoints-file {ef} region lag");
    if regions.len() > 1 {
        println!("  {me} drill failover --endpoints-file {ef} --region {} --duration 60s", running[0].region);
    }
    println!("Ctrl-C stops every node.");

    let client = api_client(&token)?;
    if args.demo {
        let firsts: Vec<(String, String)> = regions
            .iter()
            .filter_map(|(region, _)| {
                running.iter().find(|r| &r.region == region).map(|r| (region.clone(), r.ready.http.clone()))
            })
            .collect();
        if let Err(e) = demo(&client, &firsts).await {
            println!("demo: {e:#}");
        }
    }
    let mut last = String::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                let mut line = Vec::new();
                for (region, nodes) in &regions {
                    let mut up = 0;
                    for r in running.iter_mut().filter(|r| &r.region == region) {
                        if r.child.try_wait().ok().flatten().is_none() && live_nodes(&client, &r.ready.http).await.is_some() {
                            up += 1;
                        }
                    }
                    line.push(format!("{region}: {up}/{} up", nodes.len()));
                }
                // Per region pair: the p99 lag of b's changes applied in a (the worst of a's
                // nodes, each reporting what it applied) and a's backlog towards b (summed).
                for (region, _) in &regions {
                    let mut pairs: std::collections::BTreeMap<String, (Option<u64>, u64)> = Default::default();
                    for r in running.iter().filter(|r| &r.region == region) {
                        let Some(v) = regions_status(&client, &r.ready.http).await else { continue };
                        for p in v["peers"].as_array().into_iter().flatten() {
                            let e = pairs.entry(p["region"].as_str().unwrap_or("?").to_owned()).or_default();
                            e.0 = e.0.max(p["lag_p99_ms"].as_u64());
                            e.1 += p["backlog"].as_u64().unwrap_or(0);
                        }
                    }
                    for (peer, (lag, backlog)) in pairs {
                        let lag = lag.map_or("-".to_owned(), |l| format!("{l} ms"));
                        line.push(format!("{peer}->{region} lag p99 {lag}, {region}->{peer} backlog {backlog}"));
                    }
                }
                let line = line.join(", ");
                if line != last {
                    println!("status: {line}");
                    last = line;
                }
            }
        }
    }
    println!("stopping...");
    stop_all(&mut running).await;
    emulator.shutdown().await;
    println!("stopped; data kept in {}", base.display());
    Ok(())
}

/// What `--demo` reads back from one region.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DemoView {
    visits: i64,
    members: Vec<String>,
    greeting: Option<String>,
}

async fn demo_read(client: &reqwest::Client, http: &str) -> anyhow::Result<DemoView> {
    use base64::Engine as _;
    let get = |path: String| async move {
        let v: serde_json::Value = client.get(format!("http://{http}{path}")).send().await?.json().await?;
        anyhow::Ok(v)
    };
    let counter = get("/api/v1/counters/demo:visits".to_owned()).await?;
    let set = get("/api/v1/sets/demo:regions".to_owned()).await?;
    let greeting = get("/api/v1/keys/demo:greeting".to_owned()).await?;
    let greeting = greeting["value"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(DemoView {
        visits: counter["value"].as_i64().context("counter value")?,
        members: set["members"]
            .as_array()
            .context("set members")?
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect(),
        greeting,
    })
}

/// `--demo`: every region (through its first node) adds to a counter, adds its name to a
/// set and writes a register, all at about the same time; then every region is read until
/// they all show the same values: the counter the sum of every increment, the set every
/// region, the register one winner.
async fn demo(client: &reqwest::Client, regions: &[(String, String)]) -> anyhow::Result<()> {
    println!();
    println!("demo: writing in every region at once");
    let mut expected = 0i64;
    let writes = regions.iter().enumerate().map(|(i, (region, http))| {
        let delta = 10 * (i as i64 + 1);
        expected += delta;
        async move {
            let base = format!("http://{http}/api/v1");
            client
                .post(format!("{base}/counters/demo:visits"))
                .json(&json!({ "delta": delta }))
                .send()
                .await?
                .error_for_status()?;
            client
                .post(format!("{base}/sets/demo:regions"))
                .json(&json!({ "add": [region] }))
                .send()
                .await?
                .error_for_status()?;
            client
                .put(format!("{base}/keys/demo:greeting"))
                .body(format!("hello from {region}"))
                .send()
                .await?
                .error_for_status()?;
            println!("  {region}: counter demo:visits += {delta}, set demo:regions += {region}, greeting = \"hello from {region}\"");
            anyhow::Ok(())
        }
    });
    for r in futures::future::join_all(writes).await {
        r?;
    }
    let start = Instant::now();
    let mut want_members: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
    want_members.sort();
    loop {
        let mut views = Vec::new();
        for (region, http) in regions {
            views.push((region.clone(), demo_read(client, http).await));
        }
        let converged = views.iter().all(|(_, v)| {
            v.as_ref().is_ok_and(|v| v.visits >= expected && v.members == want_members && v.greeting.is_some())
        }) && views.windows(2).all(|w| match (&w[0].1, &w[1].1) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        });
        if converged || start.elapsed() > Duration::from_secs(60) {
            println!(
                "demo: {} after {:.2} s:",
                if converged { "every region agrees" } else { "NOT converged" },
                start.elapsed().as_secs_f64()
            );
            for (region, v) in &views {
                match v {
                    Ok(v) => println!(
                        "  {region}: demo:visits = {}, demo:regions = {:?}, demo:greeting = {:?}",
                        v.visits,
                        v.members,
                        v.greeting.as_deref().unwrap_or("")
                    ),
                    Err(e) => println!("  {region}: {e:#}"),
                }
            }
            println!(
                "  (the counter is the sum of every region's increments, the set holds every \
                 region, and one write won the register by its HLC timestamp)"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn regions_status(client: &reqwest::Client, http: &str) -> Option<serde_json::Value> {
    client.get(format!("http://{http}/api/v1/regions")).send().await.ok()?.json().await.ok()
}

/// Runs `meridian dev`.
pub fn run(args: DevArgs) -> ExitCode {
    // Two workers: the WAN emulator relays every packet between regions in this process.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
