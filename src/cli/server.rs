//! `meridian server --config FILE`: runs one node until SIGTERM or SIGINT.
//!
//! Start-up: load and validate the configuration (file < `MERIDIAN_*` environment < `--set`),
//! refuse to start without TLS unless `tls.allow_insecure`, and with an API exposed on a
//! non-loopback address without HTTPS or authentication unless explicitly allowed
//! (`NodeConfig::api_exposure_refusal`); load the API's certificate and tokens, open the store,
//! bind the HTTP listener, start the node (RPC endpoint, gossip, ring), serve the API, and, with
//! `--ready-file`, write a JSON description of the running node once it serves.
//!
//! Shutdown (SIGTERM, SIGINT): stop accepting HTTP connections, let requests in flight finish
//! (bounded), then stop the node (gossip, RPC endpoint) and flush the store. A second signal
//! exits at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use meridian_config::{parse_override, EngineKind, NodeConfig};
use meridian_local::{MemoryEngine, NodeStore, Store};
use meridian_net::TlsIdentity;
use meridian_region::clock::SystemClock;
use meridian_region::node::{Network, Node, NodeOptions};
use meridian_region::service::KvService;
use meridian_rocksdb::RocksEngine;
use serde_json::json;

/// Options of `meridian server`.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// The node's configuration file.
    pub config: Option<PathBuf>,
    /// `section.key=value` overrides.
    pub set: Vec<String>,
    /// Extra seed to join through (`host:port` of a node's RPC address).
    pub join: Vec<String>,
    /// Where to write the ready file.
    pub ready_file: Option<PathBuf>,
    /// Exit when the parent process goes away (used by `meridian dev`).
    pub exit_with_parent: bool,
}

/// The name every node certificate of `region` is valid for (see `meridian_net::tls`).
pub fn region_peer_name(region: &str) -> String {
    format!("{region}.region.meridian")
}

fn load_tls(cfg: &NodeConfig) -> anyhow::Result<TlsIdentity> {
    let tls = &cfg.tls;
    match (&tls.ca_cert, &tls.cert, &tls.key) {
        (Some(ca), Some(cert), Some(key)) => {
            TlsIdentity::from_pem_files(ca, cert, key, &region_peer_name(&cfg.node.region))
                .with_context(|| "loading the node's TLS identity ([tls] section)")
        }
        _ if tls.allow_insecure => {
            tracing::warn!(
                "tls.allow_insecure = true and no certificates: intra-region traffic is encrypted but NOT \
                 authenticated; any host that can reach the RPC port can join. For development only."
            );
            Ok(TlsIdentity::insecure_ephemeral(&cfg.node.id)?)
        }
        _ => bail!(
            "refusing to start without TLS: set tls.ca_cert, tls.cert and tls.key (see `meridian certs`), \
             or tls.allow_insecure = true for a development node"
        ),
    }
}

/// The region's WAN identity: `[wan]` certificates (its own trust), else an unauthenticated
/// link when `tls.allow_insecure`; refused otherwise when other regions are configured.
fn load_wan_tls(cfg: &NodeConfig) -> anyhow::Result<Option<TlsIdentity>> {
    let wan = &cfg.wan;
    if wan.peers.is_empty() && wan.listen.is_none() {
        return Ok(None);
    }
    match (&wan.ca_cert, &wan.cert, &wan.key) {
        (Some(ca), Some(cert), Some(key)) => {
            let own = meridian_net::tls::wan_name(&cfg.node.region)?;
            let first = wan.peers.first().map(|p| p.server_name.clone()).unwrap_or(own);
            Ok(Some(
                TlsIdentity::from_pem_files(ca, cert, key, &first)
                    .with_context(|| "loading the region's WAN identity ([wan] ca_cert, cert, key)")?,
            ))
        }
        _ if cfg.tls.allow_insecure => {
            tracing::warn!("no [wan] certificates: links to other regions are encrypted but NOT authenticated");
            Ok(Some(TlsIdentity::insecure_ephemeral(&cfg.node.region)?))
        }
        _ => bail!(
            "other regions are configured but wan.ca_cert, wan.cert and wan.key are not set (see `meridian certs`), \
             and tls.allow_insecure is false"
        ),
    }
}

/// The API's HTTPS configuration (`http.tls_cert`, `http.tls_key`), if any, and its
/// authentication (`[auth]`, with the tokens file read now). Refuses an exposed API without
/// them unless explicitly allowed.
fn load_api_security(
    cfg: &NodeConfig,
) -> anyhow::Result<(Option<Arc<rustls::ServerConfig>>, meridian_region::http::ApiAuth)> {
    if let Some(why) = cfg.api_exposure_refusal() {
        bail!("{why}");
    }
    let tls = match (&cfg.http.tls_cert, &cfg.http.tls_key) {
        (Some(cert), Some(key)) => {
            Some(meridian_region::http::tls::server_config(cert, key).context("loading the API's HTTPS certificate")?)
        }
        _ => {
            if !cfg.http.listen.ip().is_loopback() {
                tracing::warn!(listen = %cfg.http.listen, "http.allow_plaintext = true: the API is plain HTTP");
            }
            None
        }
    };
    let auth = if cfg.auth.enabled {
        let tokens = cfg.auth.load_tokens().context("loading the API tokens ([auth])")?;
        tracing::info!(tokens = tokens.len(), "API authentication on");
        meridian_region::http::ApiAuth::new(&tokens)
    } else {
        if !cfg.http.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %cfg.http.listen,
                "auth.allow_unauthenticated = true: anyone who reaches the API can read, write and operate the cluster"
            );
        }
        meridian_region::http::ApiAuth::disabled()
    };
    Ok((tls, auth))
}

/// Starts the cross-region replicator (also without peers: it trims the change log).
async fn start_replicator(cfg: &NodeConfig, node: &Node) -> anyhow::Result<meridian_wan::Replicator> {
    let tls = match load_wan_tls(cfg)? {
        Some(t) => t,
        None => TlsIdentity::insecure_ephemeral(&cfg.node.id)?,
    };
    let mut peers = Vec::new();
    for p in &cfg.wan.peers {
        let mut addresses = Vec::new();
        for a in std::iter::once(&p.address).chain(&p.extra_addresses) {
            match tokio::net::lookup_host(a.as_str()).await {
                Ok(found) => addresses.extend(found),
                Err(e) => tracing::warn!(peer = %p.region, address = %a, error = %e, "cannot resolve a WAN address"),
            }
        }
        peers.push(meridian_wan::PeerConfig {
            region: p.region.clone(),
            addresses,
            server_name: p.server_name.clone(),
        });
    }
    let mut rcfg = meridian_wan::ReplicatorConfig::new(cfg.wan.listen, peers);
    rcfg.batch_max_entries = cfg.wan.batch_max_entries as usize;
    rcfg.batch_max_delay = cfg.wan.batch_max_delay();
    rcfg.max_batches_in_flight = cfg.wan.max_batches_in_flight as usize;
    rcfg.codec = match cfg.wan.compression {
        meridian_config::Compression::None => meridian_wan::Codec::None,
        meridian_config::Compression::Lz4 => meridian_wan::Codec::Lz4,
        meridian_config::Compression::Zstd => meridian_wan::Codec::Zstd,
    };
    rcfg.retention_entries = cfg.storage.changelog_retention_entries;
    Ok(meridian_wan::Replicator::start(rcfg, &tls, node.wan_bridge(), Arc::clone(node.store())).await?)
}

fn open_store(cfg: &NodeConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match cfg.storage.engine {
        EngineKind::Rocksdb => {
            let engine = RocksEngine::open(&cfg.storage)
                .with_context(|| format!("opening RocksDB in {}", cfg.storage.data_dir.display()))?;
            Arc::new(NodeStore::open(engine)?)
        }
        EngineKind::Memory => {
            tracing::warn!("storage.engine = \"memory\": nothing survives a restart");
            Arc::new(NodeStore::open(MemoryEngine::new())?)
        }
    })
}

/// Writes `value` to `path` atomically (temporary file, then rename).
pub fn write_atomically(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return futures_pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

async fn futures_pending() {
    std::future::pending::<()>().await
}

async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            tracing::warn!("parent process exited; shutting down");
            return;
        }
    }
}

async fn run_async(args: ServerArgs, cfg: NodeConfig) -> anyhow::Result<()> {
    let tls = load_tls(&cfg)?;
    let (api_tls, api_auth) = load_api_security(&cfg)?;
    let store = open_store(&cfg)?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("binding the HTTP API on {}", cfg.http.listen))?;
    let http_addr: SocketAddr = listener.local_addr()?;
    let node = Node::start(NodeOptions {
        config: cfg.clone(),
        store,
        clock: Arc::new(SystemClock),
        tls,
        http_addr: Some(http_addr),
        network: Network::Udp,
        ready_timeout: Duration::from_secs(10),
        inline_storage: false,
    })
    .await
    .context("starting the node")?;
    let replicator = start_replicator(&cfg, &node).await.context("starting cross-region replication")?;
    let wan_addr = replicator.local_addr();
    node.attach_replicator(replicator);
    let service: Arc<dyn KvService> = Arc::new(node.clone());
    let app = meridian_region::http::router_with_auth(Arc::clone(&service), api_auth.clone());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let exit_with_parent = args.exit_with_parent;
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = parent_gone(), if exit_with_parent => {}
        }
        let _ = stop_tx.send(true);
        // A second signal exits at once.
        shutdown_signal().await;
        tracing::warn!("second signal: exiting without a clean shutdown");
        std::process::exit(130);
    });

    if let Some(path) = &args.ready_file {
        write_atomically(
            path,
            &json!({
                "id": cfg.node.id,
                "region": cfg.node.region,
                "number": format!("{:016x}", node.id().0),
                "http": http_addr.to_string(),
                "https": api_tls.is_some(),
                "auth": api_auth.is_enabled(),
                "rpc": node.rpc_addr().to_string(),
                "wan": wan_addr.map(|a| a.to_string()),
                "pid": std::process::id(),
                "data_dir": cfg.storage.data_dir,
            }),
        )?;
    }
    tracing::info!(http = %http_addr, https = api_tls.is_some(), rpc = %node.rpc_addr(), "serving");
    let mut stop = stop_rx.clone();
    let server = meridian_region::http::serve_api(listener, app, api_tls, async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    server.await.context("HTTP server")?;
    node.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs `meridian server`.
pub fn run(args: ServerArgs) -> ExitCode {
    let overrides: Result<Vec<(String, String)>, _> = args.set.iter().map(|s| parse_override(s)).collect();
    let cfg = overrides
        .map_err(anyhow::Error::from)
        .and_then(|o| NodeConfig::load_from_process_env(args.config.as_deref(), &o).map_err(anyhow::Error::from));
    let mut cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    for seed in &args.join {
        if !cfg.cluster.seeds.contains(seed) {
            cfg.cluster.seeds.push(seed.clone());
        }
    }
    let _telemetry = crate::cli::logging::init(
        &cfg.telemetry,
        crate::cli::logging::Service { node: &cfg.node.id, region: &cfg.node.region },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("meridian").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(args, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
