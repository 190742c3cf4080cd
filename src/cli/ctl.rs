//! `meridian ctl`: operating a running region over its HTTP API, in the manner of `nodetool`
//! and `riak-admin`, and reading and writing data from the command line.
//!
//! The administration subcommands (`status`, `ring`, `hints`, `repair`, `decommission`,
//! `digest`, `keyspace list`, `region sync`, `endpoints`) talk to one node (the *contact*):
//! `--node HOST:PORT`, or a node of an endpoints file written by `meridian dev`
//! (`--endpoints-file FILE`, the first node of the first region, or of `--region NAME`); with
//! neither, `./meridian-dev/endpoints.json` if it exists. The calls are plain blocking
//! HTTP/1.1 (ureq) with a 2 s connect and a 10 s request timeout; `--wait` polls every 500 ms.
//!
//! The data subcommands (`get`, `put`, `del`, `incr`, `sadd`, `srem`, `smembers`) go through
//! the client library (`meridian-client`) with the same timeouts: with an endpoints file, to
//! the nearest region of the file (or only `--region NAME`), with failover and the client's
//! safe retries; with `--node`, to that node's region through that node. `keyspace create`,
//! `region list`, `region lag`, `region fence` and `region unfence` ask a node of each region
//! (or of the region named) in turn until one answers.
//!
//! Exit codes: `0` success; `1` the command ran and reports a failure (the repair or the
//! decommission failed, a node is missing from a listing, a node did not answer its digest,
//! `get` of an absent key, an increment whose outcome is unknown, a region or node that did not
//! answer while others did);
//! `2` bad usage, an unreachable node, or an HTTP error from the cluster (its `error` code and
//! `message` are printed). Errors and `--wait` progress go to stderr (progress goes to stdout
//! when stdout is a terminal, on one updating line); results go to stdout, as tables or, with
//! `--output json`, as one JSON document.
//!
//! # Layout
//!
//! - Arguments: [`CtlArgs`], [`CtlCommand`], [`CtlOutput`], [`RangeArg`], [`DataOpts`],
//!   [`KeyspaceCommand`], [`RegionCommand`].
//! - The contact: [`resolve_contact`], [`resolve_regions`] and the endpoints file (read with
//!   the client library's [`EndpointsFile`]).
//! - HTTP: `Client`, [`CtlError`] and its exit codes.
//! - The answers as this command reads them (`StatusView`, `RepairView`, ...).
//! - One function per subcommand, then progress display and table formatting.
//! - Data commands (through `meridian_client::Client`), then keyspaces, regions and endpoints,
//!   each with its formatting.
//!
//! The file is past the ~1,000 lines of the style guide (a third of it tests); the formatting
//! half is the natural `ctl/format.rs`, and the data and region commands `ctl/data.rs` and
//! `ctl/regions.rs`, when it is split.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use meridian_client::{Consistency, EndpointsFile, EndpointsNode, EndpointsRegion, RingView};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// The endpoints file read when neither `--node` nor `--endpoints-file` is given.
pub const DEFAULT_ENDPOINTS_FILE: &str = "./meridian-dev/endpoints.json";

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for a whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between two polls of `--wait`.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Consecutive failed polls tolerated before `--wait` gives up.
const MAX_POLL_ERRORS: usize = 5;
/// Polls a repair may report `idle` after it was started before `--wait` calls it failed.
const MAX_IDLE_POLLS: usize = 10;
/// Polls the leaving node may stay unreachable while still in the ring (30 s).
const MAX_UNREACHABLE_POLLS: usize = 60;
/// Polls to wait for a decommissioned node to disappear from the ring after streaming (60 s).
const MAX_LEAVE_POLLS: usize = 120;
/// The status of a node that was decommissioned and is no longer in the ring.
const LEFT: &str = "left";
/// Polls (10 s) for a region to report the fence state `region fence` / `unfence` asked for.
const MAX_FENCE_POLLS: usize = 20;
/// Tokens shown per node by `ctl ring`.
const RING_SAMPLE: usize = 4;

// ---------------------------------------------------------------------------------------------
// Arguments

/// Options of `meridian ctl`.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The HTTP address of the node to talk to; wins over --endpoints-file.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub node: Option<String>,
    /// An endpoints file written by `meridian dev` (default: ./meridian-dev/endpoints.json if it
    /// exists); admin commands talk to the first node of the first region, data commands to the
    /// nearest region (failing over to the others).
    #[arg(long, global = true, value_name = "FILE")]
    pub endpoints_file: Option<PathBuf>,
    /// With an endpoints file: talk to the first node of this region (data commands, keyspace
    /// create, region list and lag: only this region).
    #[arg(long, global = true, value_name = "NAME")]
    pub region: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = CtlOutput::Table)]
    pub output: CtlOutput,
    /// Bearer token and CA of the API.
    #[command(flatten)]
    pub access: crate::cli::access::AccessArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// How `meridian ctl` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CtlOutput {
    /// Aligned columns, for people.
    #[value(alias = "text")]
    Table,
    /// One JSON document (the node's answer where there is one), for scripts.
    Json,
}

/// The subcommands of `meridian ctl`.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// The region's nodes: status, addresses, load, ownership, tokens and keys.
    Status,
    /// Token ownership per node (counts and a sample).
    Ring,
    /// Pending hinted-handoff writes on the contact node, per target.
    Hints,
    /// Start an anti-entropy pass on the contact node.
    Repair {
        /// Only this token range, `(START, END]` (decimal tokens; `START == END` is the whole
        /// ring). Default: every range the node replicates.
        #[arg(long, value_name = "START:END")]
        range: Option<RangeArg>,
        /// Follow the pass until it finishes; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Remove a node from the region: it streams its ranges to their new replicas and leaves.
    Decommission {
        /// The node's name (`node.id`).
        #[arg(value_name = "NODE")]
        name: String,
        /// Follow the streaming until the node has left the ring; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Write a consistent snapshot of the contact node's store (a RocksDB checkpoint) under
    /// its `storage.snapshot_dir`; restore it with `meridian restore` (docs/operations.md).
    Snapshot {
        /// The snapshot's name (1-100 of A-Z a-z 0-9 . _ -). Default: `<node>-<ms>`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// The Merkle root of what the contact node holds for its ranges.
    Digest {
        /// Ask every node of the region (but those that have left) and compare the roots (roots
        /// differ legitimately when nodes hold different ranges); exit 1 if one does not answer.
        #[arg(long)]
        all: bool,
    },
    /// Read a register (`lww` or `mvr`); exit 1 if the key is absent.
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Write an `lww` register (or a blind `mvr` sibling).
    Put {
        /// The key.
        key: String,
        /// The value (its UTF-8 bytes).
        value: String,
        /// Expire the key after this many seconds.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
        ttl: Option<u64>,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Delete a register.
    Del {
        /// The key.
        key: String,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Add DELTA (default 1, may be negative) to a counter (keyspace `counters` by default); exit
    /// 1 if the outcome is unknown (it is never retried once it may have been applied).
    Incr {
        /// The key.
        key: String,
        /// The amount to add.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        delta: i64,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Add members to a set (keyspace `sets` by default).
    Sadd {
        /// The key.
        key: String,
        /// The members to add.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Remove members from a set (every addition the coordinating replica holds).
    Srem {
        /// The key.
        key: String,
        /// The members to remove.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        #[command(flatten)]
        data: DataOpts,
    },
    /// A set's members.
    Smembers {
        /// The key.
        key: String,
        #[command(flatten)]
        data: DataOpts,
    },
    /// Create and list keyspaces.
    Keyspace {
        #[command(subcommand)]
        command: KeyspaceCommand,
    },
    /// Cross-region replication: links, lag, full sync, fencing for failover drills.
    Region {
        #[command(subcommand)]
        command: RegionCommand,
    },
    /// The replicas of a key in the contact's region, from its ring (like `nodetool
    /// getendpoints`).
    Endpoints {
        /// The key.
        key: String,
        /// The keyspace.
        #[arg(long, short = 'k', value_name = "KS", default_value = "default")]
        keyspace: String,
    },
}

/// Options of the data subcommands.
#[derive(Debug, Clone, Default, Args)]
pub struct DataOpts {
    /// The keyspace (default: `default` for get, put and del, `counters` for incr, `sets` for
    /// sadd, srem and smembers).
    #[arg(long, short = 'k', value_name = "KS")]
    pub keyspace: Option<String>,
    /// The consistency level in the region: ONE, QUORUM or ALL (default: the keyspace's).
    #[arg(long, value_name = "LEVEL")]
    pub consistency: Option<Consistency>,
}

/// `meridian ctl keyspace ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeyspaceCommand {
    /// Create a keyspace in every region (of the endpoints file; with --node, the node's region;
    /// with --region, that one); creating one that exists with the same type succeeds.
    Create {
        /// Its name (`[a-z0-9_-]{1,64}`).
        name: String,
        /// Its value type.
        #[arg(long = "type", value_enum)]
        kind: KindArg,
    },
    /// The keyspaces of the contact node's region.
    List,
}

/// A keyspace's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Last-writer-wins register.
    Lww,
    /// Multi-value register.
    Mvr,
    /// PN-counter.
    Counter,
    /// Add-wins set.
    Set,
}

impl KindArg {
    fn as_str(self) -> &'static str {
        match self {
            KindArg::Lww => "lww",
            KindArg::Mvr => "mvr",
            KindArg::Counter => "counter",
            KindArg::Set => "set",
        }
    }
}

/// `meridian ctl region ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum RegionCommand {
    /// Each region's replication links as one node of it sees them: link, lag p50/p99 of the
    /// peer's changes applied there, backlog towards the peer.
    List,
    /// Lag and backlog per pair of regions, over every node of every region (the backlog of
    /// a pair is the RPO if the source region were lost now).
    Lag,
    /// Start a cross-region full sync towards region NAME (default: every peer) on every node
    /// of the contact's region.
    Sync {
        /// The peer region.
        name: Option<String>,
    },
    /// Fence region NAME: its nodes refuse client reads and writes (503 region_fenced, so
    /// clients fail over) and its WAN links are cut. Sent to a node of that region.
    Fence {
        /// The region.
        name: String,
    },
    /// Lift the fence of region NAME. Sent to a node of that region.
    Unfence {
        /// The region.
        name: String,
    },
    /// Each region's Merkle root over the whole ring, asked of one node per region, and
    /// whether they are equal (exit 1 if they differ: the regions have not converged).
    Digest,
}

/// A token range `START:END` as `--range` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeArg {
    /// The exclusive start token.
    pub start: u64,
    /// The inclusive end token.
    pub end: u64,
}

impl FromStr for RangeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<RangeArg, String> {
        let (start, end) =
            s.split_once(':').ok_or_else(|| format!("{s:?} is not START:END (two decimal tokens and a colon)"))?;
        let token = |t: &str, what: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("the {what} token {t:?} is not a decimal number"));
            }
            t.parse::<u64>().map_err(|_| format!("the {what} token {t} is larger than {}", u64::MAX))
        };
        Ok(RangeArg { start: token(start, "start")?, end: token(end, "end")? })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a `ctl` command did not succeed, and so its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    /// Bad arguments or no node to talk to (exit 2).
    Usage(String),
    /// The node could not be reached, or the connection failed (exit 2).
    Unreachable {
        /// The URL asked.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The node answered with an HTTP error (exit 2).
    Http {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The stable `error` code of the body (`http_<status>` if the body had none).
        code: String,
        /// The body's `message`.
        message: String,
    },
    /// The node's answer is not what this command understands (exit 2).
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The command ran and reports a failure (exit 1).
    Failed(String),
}

impl CtlError {
    /// The process exit code: 1 for a reported failure, 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Failed(_) => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(m) | CtlError::Failed(m) => f.write_str(m),
            CtlError::Unreachable { url, reason } => write!(f, "cannot reach {url}: {reason}"),
            CtlError::Http { url, status, code, message } => write!(f, "{url} answered {status} [{code}]: {message}"),
            CtlError::BadAnswer { url, reason } => write!(f, "unexpected answer from {url}: {reason}"),
        }
    }
}

impl std::error::Error for CtlError {}

// ---------------------------------------------------------------------------------------------
// The contact node

/// The base URL (`http://host:port`) of the node to talk to: `--node` if given, else the
/// first node (of `region`, or of the first region) of `endpoints_file`, else of
/// `default_file` if it exists.
pub fn resolve_contact(
    node: Option<&str>,
    endpoints_file: Option<&Path>,
    region: Option<&str>,
    default_file: &Path,
) -> Result<String, CtlError> {
    if let Some(node) = node {
        return base_url(node);
    }
    let (file, endpoints) = read_endpoints(endpoints_file, default_file)?;
    let http = pick_node(&endpoints, region).map_err(|m| CtlError::Usage(format!("{}: {m}", file.display())))?;
    base_url(http)
}

/// The regions (with their nodes) a command that talks to several regions uses: with `--node`,
/// one region of that node (named after its address); else every region of the endpoints
/// file (`endpoints_file`, else `default_file` if it exists), or only `region`.
pub fn resolve_regions(
    node: Option<&str>,
    endpoints_file: Option<&Path>,
    region: Option<&str>,
    default_file: &Path,
) -> Result<Vec<EndpointsRegion>, CtlError> {
    if let Some(node) = node {
        let http = base_url(node)?;
        let addr = http.trim_start_matches("http://").to_owned();
        return Ok(vec![EndpointsRegion {
            name: addr.clone(),
            nodes: vec![EndpointsNode { id: addr.clone(), http: addr }],
        }]);
    }
    let (file, endpoints) = read_endpoints(endpoints_file, default_file)?;
    let usage = |m: String| CtlError::Usage(format!("{}: {m}", file.display()));
    let mut regions: Vec<EndpointsRegion> = match region {
        Some(name) => vec![find_region(&endpoints, name).map_err(usage)?.clone()],
        None => endpoints.regions.clone(),
    };
    if regions.is_empty() {
        return Err(usage("no regions listed".to_owned()));
    }
    for r in &mut regions {
        r.nodes.retain(|n| !n.http.is_empty());
        if r.nodes.is_empty() {
            return Err(usage(format!("region {:?} lists no nodes with an HTTP address", r.name)));
        }
    }
    Ok(regions)
}

/// The endpoints file to read (`endpoints_file`, else `default_file` if it exists), read.
fn read_endpoints(endpoints_file: Option<&Path>, default_file: &Path) -> Result<(PathBuf, EndpointsFile), CtlError> {
    let file = match endpoints_file {
        Some(f) => f,
        None if default_file.is_file() => default_file,
        None => {
            return Err(CtlError::Usage(format!(
                "no node to talk to: give --node HOST:PORT or --endpoints-file FILE \
                 (without either, {} as written by `meridian dev` is read, and there is none)",
                default_file.display()
            )))
        }
    };
    let endpoints = EndpointsFile::read(file).map_err(|e| CtlError::Usage(e.to_string()))?;
    Ok((file.to_owned(), endpoints))
}

/// Region `name` of the file.
fn find_region<'a>(endpoints: &'a EndpointsFile, name: &str) -> Result<&'a EndpointsRegion, String> {
    endpoints.regions.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = endpoints.regions.iter().map(|r| r.name.as_str()).collect();
        format!("no region {name:?} (regions: {})", known.join(", "))
    })
}

/// The HTTP address of the first node of `region` (or of the first region).
fn pick_node<'a>(endpoints: &'a EndpointsFile, region: Option<&str>) -> Result<&'a str, String> {
    let chosen = match region {
        Some(name) => find_region(endpoints, name)?,
        None => endpoints.regions.first().ok_or("no regions listed")?,
    };
    let node = chosen.nodes.first().ok_or_else(|| format!("region {:?} lists no nodes", chosen.name))?;
    if node.http.is_empty() {
        return Err(format!("node {:?} has no HTTP address", node.id));
    }
    Ok(&node.http)
}

/// `http://HOST:PORT` from `HOST:PORT` (an `http://` prefix and a trailing `/` are accepted),
/// `https://HOST:PORT` kept as it is.
pub fn base_url(node: &str) -> Result<String, CtlError> {
    meridian_client::base_url(node).map_err(|e| CtlError::Usage(e.to_string()))
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(segment: &str) -> String {
    meridian_client::encode_segment(segment)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A blocking HTTP client with the command's timeouts, its token and trusted CA.
#[derive(Clone)]
struct Client {
    agent: ureq::Agent,
    /// `Bearer <token>`, sent with every request.
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("authorization", &self.authorization.as_ref().map(|_| "<redacted>")).finish()
    }
}

impl Client {
    fn new(access: &crate::cli::access::Access) -> Result<Client, CtlError> {
        let builder = ureq::AgentBuilder::new().timeout_connect(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT);
        Ok(Client { agent: access.ureq(builder)?.build(), authorization: access.authorization() })
    }

    /// A request with the token.
    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let req = self.agent.request(method, url);
        match &self.authorization {
            Some(auth) => req.set("Authorization", auth),
            None => req,
        }
    }

    fn get(&self, base: &str, path: &str) -> Result<Value, CtlError> {
        let url = format!("{base}{path}");
        answer(&url, self.request("GET", &url).call())
    }

    fn post(&self, base: &str, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        let url = format!("{base}{path}");
        let req = self.request("POST", &url);
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        answer(&url, result)
    }

    /// `POST`, with the status of the answer (`201` created, `200` ...).
    fn post_status(&self, base: &str, path: &str, body: &Value) -> Result<(u16, Value), CtlError> {
        let url = format!("{base}{path}");
        match self.request("POST", &url).send_json(body) {
            Ok(resp) => {
                let status = resp.status();
                answer(&url, Ok(resp)).map(|v| (status, v))
            }
            Err(e) => answer(&url, Err(e)).map(|v| (0, v)),
        }
    }

    fn delete(&self, base: &str, path: &str) -> Result<Value, CtlError> {
        let url = format!("{base}{path}");
        answer(&url, self.request("DELETE", &url).call())
    }

    /// `GET` and decode.
    fn get_as<T: DeserializeOwned>(&self, base: &str, path: &str) -> Result<(Value, T), CtlError> {
        let value = self.get(base, path)?;
        let typed = decode(&format!("{base}{path}"), &value)?;
        Ok((value, typed))
    }
}

/// The JSON body of a successful answer, or the error.
fn answer(url: &str, result: Result<ureq::Response, ureq::Error>) -> Result<Value, CtlError> {
    match result {
        Ok(resp) => resp
            .into_json::<Value>()
            .map_err(|e| CtlError::BadAnswer { url: url.to_owned(), reason: format!("the body is not JSON: {e}") }),
        Err(ureq::Error::Status(status, resp)) => {
            let text = resp.into_string().unwrap_or_default();
            Err(http_error(url, status, &text))
        }
        Err(ureq::Error::Transport(t)) => {
            // ureq's text starts with the URL, which the error already names.
            let text = t.to_string();
            let reason = text.strip_prefix(&format!("{url}: ")).unwrap_or(&text).to_owned();
            Err(CtlError::Unreachable { url: url.to_owned(), reason })
        }
    }
}

/// The error for an HTTP error answer: the API's `error` and `message` when the body has them.
fn http_error(url: &str, status: u16, body: &str) -> CtlError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
    let code = field("error").unwrap_or_else(|| format!("http_{status}"));
    let message = field("message").unwrap_or_else(|| {
        let text = body.trim();
        if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    CtlError::Http { url: url.to_owned(), status, code, message }
}

fn decode<T: DeserializeOwned>(url: &str, value: &Value) -> Result<T, CtlError> {
    T::deserialize(value).map_err(|e| CtlError::BadAnswer { url: url.to_owned(), reason: e.to_string() })
}

// ---------------------------------------------------------------------------------------------
// The answers, as this command reads them (lenient: fields it does not use may be missing)

/// `GET /api/v1/cluster/status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct StatusView {
    region: String,
    node: String,
    replication_factor: usize,
    ring_version: u64,
    nodes: Vec<NodeView>,
    total_keys: u64,
    /// The answering node's streaming; absent from nodes that do not report it.
    streaming: Option<StreamingView>,
}

impl StatusView {
    fn find(&self, id: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Node `id` as a member of the ring: `None` when it is not listed or listed as `left`
    /// (a decommissioned node stays listed with that status for a while).
    fn in_ring(&self, id: &str) -> Option<&NodeView> {
        self.find(id).filter(|n| n.status != LEFT)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeView {
    id: String,
    status: String,
    rpc: String,
    http: Option<String>,
    load: f64,
    ownership: f64,
    tokens: usize,
    tokens_sample: Vec<u64>,
    keys: Option<u64>,
    is_self: bool,
}

/// `GET /api/v1/cluster/hints`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HintsView {
    node: String,
    queues: Vec<HintQueueView>,
    stored: u64,
    replayed: u64,
    dropped: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HintQueueView {
    target: Option<String>,
    number: String,
    pending: u64,
    oldest_age_ms: Option<u64>,
    target_live: bool,
}

/// `GET /api/v1/cluster/repair`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RepairView {
    state: String,
    trigger: Option<String>,
    range: Option<(u64, u64)>,
    peers_total: usize,
    peers_done: usize,
    peers_failed: usize,
    segments_differing: u64,
    keys_repaired: u64,
    bytes_transferred: u64,
    started_ms: Option<u64>,
    last_complete_ms: Option<u64>,
    error: Option<String>,
}

/// The `streaming` of a node's status, and what `DELETE /api/v1/cluster/nodes/{id}` answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct StreamingView {
    state: String,
    ranges_total: usize,
    ranges_done: usize,
    keys: u64,
    bytes: u64,
    error: Option<String>,
}

/// `GET /api/v1/cluster/digest`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct DigestView {
    node: String,
    root: String,
    records: u64,
    ranges: Vec<(u64, u64)>,
}

// ---------------------------------------------------------------------------------------------
// Running

/// Runs `meridian ctl`.
pub fn run(args: CtlArgs) -> ExitCode {
    let result = dispatch(args);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(args: CtlArgs) -> Result<(), CtlError> {
    let default_file = Path::new(DEFAULT_ENDPOINTS_FILE);
    let (node, file, region) = (args.node.as_deref(), args.endpoints_file.as_deref(), args.region.as_deref());
    let access = args.access.resolve(file, default_file, node.is_some())?;
    let http = Client::new(&access)?;
    let contact = || -> Result<Ctl, CtlError> {
        let base = resolve_contact(node, file, region, default_file)?;
        Ok(Ctl { client: http.clone(), base, output: args.output })
    };
    let regions = || resolve_regions(node, file, region, default_file);
    match args.command {
        CtlCommand::Status => contact()?.status(),
        CtlCommand::Ring => contact()?.ring(),
        CtlCommand::Hints => contact()?.hints(),
        CtlCommand::Repair { range, wait } => contact()?.repair(range, wait),
        CtlCommand::Decommission { ref name, wait } => contact()?.decommission(name, wait),
        CtlCommand::Digest { all } => contact()?.digest(all),
        CtlCommand::Snapshot { ref name } => contact()?.snapshot(name.as_deref()),
        CtlCommand::Keyspace { command: KeyspaceCommand::List } => contact()?.keyspace_list(),
        CtlCommand::Keyspace { command: KeyspaceCommand::Create { ref name, kind } } => {
            keyspace_create(&http, &regions()?, name, kind, args.output)
        }
        CtlCommand::Endpoints { ref key, ref keyspace } => contact()?.endpoints(keyspace, key),
        CtlCommand::Region { command: RegionCommand::Sync { ref name } } => contact()?.region_sync(name.as_deref()),
        CtlCommand::Region { command: RegionCommand::List } => region_list(&http, &regions()?, args.output),
        CtlCommand::Region { command: RegionCommand::Lag } => region_lag(&http, &regions()?, args.output),
        CtlCommand::Region { command: RegionCommand::Digest } => region_digest(&http, &regions()?, args.output),
        CtlCommand::Region { command: RegionCommand::Fence { ref name } } => {
            region_fence(&http, &regions_named(node, file, name, default_file)?, name, true, args.output)
        }
        CtlCommand::Region { command: RegionCommand::Unfence { ref name } } => {
            region_fence(&http, &regions_named(node, file, name, default_file)?, name, false, args.output)
        }
        command => {
            let op = DataOp::from_command(command)
                .ok_or_else(|| CtlError::Usage("this subcommand is not a data command".to_owned()))?;
            run_data(&regions()?, op, node.is_some(), &access, args.output)
        }
    }
}

/// The nodes to send `region fence NAME` to: `--node` alone, else region `name` of the file.
fn regions_named(
    node: Option<&str>,
    file: Option<&Path>,
    name: &str,
    default_file: &Path,
) -> Result<Vec<EndpointsRegion>, CtlError> {
    resolve_regions(node, file, if node.is_some() { None } else { Some(name) }, default_file)
}

/// One invocation: the client, the contact node and the output format.
#[derive(Debug)]
struct Ctl {
    client: Client,
    base: String,
    output: CtlOutput,
}

impl Ctl {
    fn print_json(&self, value: &Value) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(_) => println!("{value}"),
        }
    }

    fn status(&self) -> Result<(), CtlError> {
        let (raw, status) = self.client.get_as::<StatusView>(&self.base, "/api/v1/cluster/status")?;
        match self.output {
            CtlOutput::Json => self.print_json(&raw),
            CtlOutput::Table => print!("{}", status_table(&status)),
        }
        Ok(())
    }

    fn ring(&self) -> Result<(), CtlError> {
        let (_, status) = self.client.get_as::<StatusView>(&self.base, "/api/v1/cluster/status")?;
        match self.output {
            CtlOutput::Json => self.print_json(&ring_json(&status)),
            CtlOutput::Table => print!("{}", ring_table(&status)),
        }
        Ok(())
    }

    fn hints(&self) -> Result<(), CtlError> {
        let (raw, hints) = self.client.get_as::<HintsView>(&self.base, "/api/v1/cluster/hints")?;
        match self.output {
            CtlOutput::Json => self.print_json(&raw),
            CtlOutput::Table => print!("{}", hints_table(&hints)),
        }
        Ok(())
    }

    fn snapshot(&self, name: Option<&str>) -> Result<(), CtlError> {
        let body = name.map(|n| json!({ "name": n }));
        let raw = self.client.post(&self.base, "/api/v1/cluster/snapshot", body.as_ref())?;
        match self.output {
            CtlOutput::Json => self.print_json(&raw),
            CtlOutput::Table => {
                let field = |k: &str| raw.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                println!(
                    "snapshot {} of {} ({}): {} files, {} bytes, {} records\n  path: {}\nrestore (node stopped): meridian restore --config NODE.toml --snapshot {}",
                    field("name").unwrap_or_default(),
                    field("node").unwrap_or_default(),
                    field("region").unwrap_or_default(),
                    field("files").unwrap_or_default(),
                    field("bytes").unwrap_or_default(),
                    field("records").unwrap_or_default(),
                    field("path").unwrap_or_default(),
                    field("path").unwrap_or_default(),
                );
            }
        }
        Ok(())
    }

    fn repair(&self, range: Option<RangeArg>, wait: bool) -> Result<(), CtlError> {
        let body = range.map(|r| json!({"range": {"start": r.start, "end": r.end}}));
        let path = "/api/v1/cluster/repair";
        let raw = self.client.post(&self.base, path, body.as_ref())?;
        let started: RepairView = decode(&format!("{}{path}", self.base), &raw)?;
        if !wait {
            match self.output {
                CtlOutput::Json => self.print_json(&raw),
                CtlOutput::Table => println!("repair on {}: {}", self.base, repair_line(&started)),
            }
            return Ok(());
        }
        if self.output == CtlOutput::Table {
            println!("repair started on {}: {}", self.base, describe_range(started.range));
        }
        let mut progress = Progress::new(self.output);
        let mut errors = 0;
        let mut idle = 0;
        loop {
            thread::sleep(POLL_INTERVAL);
            let (raw, now) = match self.client.get_as::<RepairView>(&self.base, path) {
                Ok(r) => {
                    errors = 0;
                    r
                }
                Err(e) => {
                    errors += 1;
                    progress.warn(&format!("poll failed ({errors}/{MAX_POLL_ERRORS}): {e}"));
                    if errors >= MAX_POLL_ERRORS {
                        progress.done();
                        return Err(e);
                    }
                    continue;
                }
            };
            progress.update(&repair_line(&now));
            idle = if now.state == "idle" { idle + 1 } else { 0 };
            let outcome = match repair_outcome(started.started_ms, &now) {
                RepairOutcome::Pending if idle >= MAX_IDLE_POLLS => {
                    RepairOutcome::Failed("the node reports no repair pass (did it restart?)".to_owned())
                }
                o => o,
            };
            match outcome {
                RepairOutcome::Pending => continue,
                RepairOutcome::Done => {
                    progress.done();
                    match self.output {
                        CtlOutput::Json => self.print_json(&raw),
                        CtlOutput::Table => println!("repair {}", repair_line(&now)),
                    }
                    return Ok(());
                }
                RepairOutcome::Failed(why) => {
                    progress.done();
                    if self.output == CtlOutput::Json {
                        self.print_json(&raw);
                    }
                    return Err(CtlError::Failed(format!("repair failed: {why}")));
                }
            }
        }
    }

    fn decommission(&self, node: &str, wait: bool) -> Result<(), CtlError> {
        let path = format!("/api/v1/cluster/nodes/{}", encode_segment(node));
        let raw = self.client.delete(&self.base, &path)?;
        let started: StreamingView = decode(&format!("{}{path}", self.base), &raw)?;
        if !wait {
            match self.output {
                CtlOutput::Json => self.print_json(&raw),
                CtlOutput::Table => println!("decommission of {node} started: {}", streaming_line(&started)),
            }
            return Ok(());
        }
        if self.output == CtlOutput::Table {
            println!("decommission of {node} started: {}", streaming_line(&started));
        }
        let (_, status) = self.client.get_as::<StatusView>(&self.base, "/api/v1/cluster/status")?;
        let leaving = status.find(node).ok_or_else(|| {
            CtlError::Failed(format!("node {node} is not in the cluster status of {} ({})", status.node, self.base))
        })?;
        let target = match (&leaving.http, leaving.is_self) {
            (_, true) => Some(self.base.clone()),
            (Some(http), false) => Some(base_url(http)?),
            (None, false) => None,
        };
        let confirmer = pick_confirmer(&status, node, &self.base)?;
        let mut progress = Progress::new(self.output);
        if target.is_none() {
            progress.warn(&format!("{node} publishes no HTTP address; waiting for it to leave the ring"));
        }
        let mut unreachable = 0;
        let mut errors = 0;
        let mut warned_no_streaming = false;
        let streamed = loop {
            thread::sleep(POLL_INTERVAL);
            // The leaving node's own view of its streaming.
            let mut known = false;
            if let Some(target) = &target {
                match self.client.get_as::<StatusView>(target, "/api/v1/cluster/status") {
                    Ok((_, own)) => {
                        unreachable = 0;
                        match own.streaming {
                            Some(s) => {
                                known = true;
                                progress.update(&format!("{node}: {}", streaming_line(&s)));
                                match s.state.as_str() {
                                    "done" => break Some(s),
                                    "failed" => {
                                        progress.done();
                                        let why = s.error.unwrap_or_else(|| "no reason given".to_owned());
                                        return Err(CtlError::Failed(format!("decommission of {node} failed: {why}")));
                                    }
                                    _ => {}
                                }
                            }
                            None if !warned_no_streaming => {
                                warned_no_streaming = true;
                                progress.warn(&format!(
                                    "{node} does not report streaming progress; waiting for it to leave the ring"
                                ));
                            }
                            None => {}
                        }
                    }
                    Err(_) => unreachable += 1,
                }
            }
            if known {
                continue;
            }
            // Unknown progress (no streaming field, or the node does not answer): the ring.
            let Some(confirmer) = &confirmer else {
                if unreachable >= MAX_UNREACHABLE_POLLS {
                    progress.done();
                    return Err(CtlError::Failed(format!("{node} stopped answering before it finished streaming")));
                }
                continue;
            };
            match self.client.get_as::<StatusView>(confirmer, "/api/v1/cluster/status") {
                Ok((_, view)) => {
                    errors = 0;
                    match view.in_ring(node) {
                        None => break None,
                        Some(n) => {
                            progress.update(&format!("{node}: {} in the ring of {}", n.status, view.node));
                            if unreachable >= MAX_UNREACHABLE_POLLS {
                                progress.done();
                                return Err(CtlError::Failed(format!(
                                    "{node} stopped answering before it left the ring (status {})",
                                    n.status
                                )));
                            }
                        }
                    }
                }
                Err(e) => {
                    errors += 1;
                    progress.warn(&format!("poll failed ({errors}/{MAX_POLL_ERRORS}): {e}"));
                    if errors >= MAX_POLL_ERRORS {
                        progress.done();
                        return Err(e);
                    }
                }
            }
        };
        // Streaming is done (or unknown and the node is gone): confirm it left the ring.
        let gone = match &confirmer {
            None => false,
            Some(_) if streamed.is_none() => true,
            Some(confirmer) => self.wait_gone(node, confirmer, &mut progress)?,
        };
        progress.done();
        let result = json!({
            "node": node,
            "streaming": streamed.as_ref().map(|s| json!({
                "state": s.state, "ranges_total": s.ranges_total, "ranges_done": s.ranges_done,
                "keys": s.keys, "bytes": s.bytes,
            })),
            "left_ring": gone,
        });
        match self.output {
            CtlOutput::Json => self.print_json(&result),
            CtlOutput::Table => {
                if let Some(s) = &streamed {
                    println!("{node} streamed its ranges: {}", streaming_line(s));
                }
                if gone {
                    println!("{node} has left the ring");
                } else {
                    println!("{node}: no other node to confirm that it left the ring");
                }
            }
        }
        Ok(())
    }

    /// Polls `confirmer` until `node` is not in its ring; `Failed` after [`MAX_LEAVE_POLLS`].
    fn wait_gone(&self, node: &str, confirmer: &str, progress: &mut Progress) -> Result<bool, CtlError> {
        let mut last = String::from("unknown");
        for _ in 0..MAX_LEAVE_POLLS {
            match self.client.get_as::<StatusView>(confirmer, "/api/v1/cluster/status") {
                Ok((_, view)) => match view.in_ring(node) {
                    None => return Ok(true),
                    Some(n) => {
                        last = n.status.clone();
                        progress.update(&format!(
                            "{node}: streaming done, still {} in the ring of {}",
                            n.status, view.node
                        ));
                    }
                },
                Err(e) => progress.warn(&format!("poll failed: {e}")),
            }
            thread::sleep(POLL_INTERVAL);
        }
        progress.done();
        Err(CtlError::Failed(format!(
            "{node} finished streaming but is still in the ring of {confirmer} (status {last})"
        )))
    }

    fn digest(&self, all: bool) -> Result<(), CtlError> {
        if !all {
            let (raw, digest) = self.client.get_as::<DigestView>(&self.base, "/api/v1/cluster/digest")?;
            match self.output {
                CtlOutput::Json => self.print_json(&raw),
                CtlOutput::Table => {
                    let mut t = Table::new(&["Node", "Root", "Records", "Ranges"]);
                    t.row(vec![digest.node, digest.root, digest.records.to_string(), digest.ranges.len().to_string()]);
                    print!("{}", t.render());
                }
            }
            return Ok(());
        }
        let (_, status) = self.client.get_as::<StatusView>(&self.base, "/api/v1/cluster/status")?;
        let mut answers: Vec<DigestAnswer> = Vec::new();
        for n in status.nodes.iter().filter(|n| n.status != LEFT) {
            let result = match &n.http {
                None => Err("publishes no HTTP address".to_owned()),
                Some(http) => base_url(http)
                    .and_then(|b| self.client.get_as::<DigestView>(&b, "/api/v1/cluster/digest"))
                    .map_err(|e| e.to_string()),
            };
            answers.push(DigestAnswer { id: n.id.clone(), http: n.http.clone(), result });
        }
        let pairs = digest_pairs(&answers);
        let failed: Vec<&str> = answers.iter().filter(|a| a.result.is_err()).map(|a| a.id.as_str()).collect();
        match self.output {
            CtlOutput::Json => self.print_json(&digests_json(&answers, &pairs)),
            CtlOutput::Table => print!("{}", digests_table(&answers, &pairs)),
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CtlError::Failed(format!("no digest from {}", failed.join(", "))))
        }
    }
}

/// The node to confirm a decommission with: the contact unless it is the leaving node, else
/// another node of the region that is not down and publishes an HTTP address.
fn pick_confirmer(status: &StatusView, leaving: &str, contact: &str) -> Result<Option<String>, CtlError> {
    let contact_is_leaving = status.find(leaving).is_some_and(|n| n.is_self);
    if !contact_is_leaving {
        return Ok(Some(contact.to_owned()));
    }
    status
        .nodes
        .iter()
        .find(|n| n.id != leaving && n.status != "down" && n.status != LEFT && n.http.is_some())
        .and_then(|n| n.http.as_deref())
        .map(base_url)
        .transpose()
}

/// Where a repair being waited for stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RepairOutcome {
    /// Still running (or not visible yet).
    Pending,
    /// Finished.
    Done,
    /// Failed, with why.
    Failed(String),
}

/// The outcome of the pass that started at `started_ms`, from a later status `now`. If another
/// pass has started since, ours is over: it completed if the last complete pass started no
/// earlier than ours.
fn repair_outcome(started_ms: Option<u64>, now: &RepairView) -> RepairOutcome {
    if let (Some(ours), Some(current)) = (started_ms, now.started_ms) {
        if current != ours {
            return if now.last_complete_ms.is_some_and(|c| c >= ours) {
                RepairOutcome::Done
            } else {
                RepairOutcome::Failed(format!(
                    "the pass ended without completing with every peer; a later pass ({}) has started",
                    now.trigger.as_deref().unwrap_or("unknown trigger")
                ))
            };
        }
    }
    match now.state.as_str() {
        "done" => RepairOutcome::Done,
        "failed" => RepairOutcome::Failed(now.error.clone().unwrap_or_else(|| "no reason given".to_owned())),
        _ => RepairOutcome::Pending,
    }
}

/// One node's answer to `digest --all`.
#[derive(Debug, Clone)]
struct DigestAnswer {
    id: String,
    http: Option<String>,
    result: Result<(Value, DigestView), String>,
}

/// Every pair of nodes that answered, in order, and whether their roots are equal.
fn digest_pairs(answers: &[DigestAnswer]) -> Vec<(String, String, bool)> {
    let ok: Vec<(&str, &str)> =
        answers.iter().filter_map(|a| a.result.as_ref().ok().map(|(_, d)| (a.id.as_str(), d.root.as_str()))).collect();
    let mut pairs = Vec::new();
    for (i, (a, ra)) in ok.iter().enumerate() {
        for (b, rb) in &ok[i + 1..] {
            pairs.push(((*a).to_owned(), (*b).to_owned(), ra == rb));
        }
    }
    pairs
}

// ---------------------------------------------------------------------------------------------
// Data commands, through the client library

/// A data subcommand, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DataOp {
    Get { keyspace: String, key: String },
    Put { keyspace: String, key: String, value: String, ttl: Option<u64> },
    Del { keyspace: String, key: String },
    Incr { keyspace: String, key: String, delta: i64 },
    Sadd { keyspace: String, key: String, members: Vec<String> },
    Srem { keyspace: String, key: String, members: Vec<String> },
    Smembers { keyspace: String, key: String },
}

impl DataOp {
    /// The data operation of `command` and its consistency level; `None` for the others.
    fn from_command(command: CtlCommand) -> Option<(DataOp, Option<Consistency>)> {
        let ks = |data: &DataOpts, default: &str| data.keyspace.clone().unwrap_or_else(|| default.to_owned());
        Some(match command {
            CtlCommand::Get { key, data } => (DataOp::Get { keyspace: ks(&data, "default"), key }, data.consistency),
            CtlCommand::Put { key, value, ttl, data } => {
                (DataOp::Put { keyspace: ks(&data, "default"), key, value, ttl }, data.consistency)
            }
            CtlCommand::Del { key, data } => (DataOp::Del { keyspace: ks(&data, "default"), key }, data.consistency),
            CtlCommand::Incr { key, delta, data } => {
                (DataOp::Incr { keyspace: ks(&data, "counters"), key, delta }, data.consistency)
            }
            CtlCommand::Sadd { key, members, data } => {
                (DataOp::Sadd { keyspace: ks(&data, "sets"), key, members }, data.consistency)
            }
            CtlCommand::Srem { key, members, data } => {
                (DataOp::Srem { keyspace: ks(&data, "sets"), key, members }, data.consistency)
            }
            CtlCommand::Smembers { key, data } => {
                (DataOp::Smembers { keyspace: ks(&data, "sets"), key }, data.consistency)
            }
            _ => return None,
        })
    }
}

/// What a data command produced: a text for people and a JSON document for scripts.
#[derive(Debug, Clone, PartialEq)]
struct Printed {
    text: String,
    json: Value,
}

fn emit(output: CtlOutput, printed: &Printed) {
    match output {
        CtlOutput::Json => match serde_json::to_string_pretty(&printed.json) {
            Ok(text) => println!("{text}"),
            Err(_) => println!("{}", printed.json),
        },
        CtlOutput::Table => print!("{}", printed.text),
    }
}

/// The `CtlError` (and so the exit code) of a client error.
fn client_error(e: meridian_client::Error) -> CtlError {
    use meridian_client::Error as E;
    match e {
        E::Config(m) | E::InvalidArgument(m) => CtlError::Usage(m),
        E::Transport { kind, url, message } => {
            CtlError::Unreachable { url, reason: format!("{} ({message})", kind.code()) }
        }
        E::Api { status, code, message, url } => CtlError::Http { url, status, code, message },
        E::BadAnswer { url, reason } => CtlError::BadAnswer { url, reason },
        E::Exhausted { attempts, last, .. } => match client_error(*last) {
            CtlError::Unreachable { url, reason } => {
                CtlError::Unreachable { url, reason: format!("{reason}; {attempts} attempts") }
            }
            other => other,
        },
        other => CtlError::Failed(other.to_string()),
    }
}

/// Runs a data command: one client over `regions` (token-aware unless `through_node`: then
/// every request goes through the one node given).
fn run_data(
    regions: &[EndpointsRegion],
    (op, consistency): (DataOp, Option<Consistency>),
    through_node: bool,
    access: &crate::cli::access::Access,
    output: CtlOutput,
) -> Result<(), CtlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot start the async runtime: {e}")))?;
    let endpoints: Vec<meridian_client::RegionEndpoints> = regions
        .iter()
        .map(|r| meridian_client::RegionEndpoints::new(&r.name, r.nodes.iter().map(|n| n.http.clone())))
        .collect();
    runtime.block_on(async move {
        let mut builder = access
            .client()
            .regions(endpoints)
            .request_timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .retry(meridian_client::RetryPolicy { max_attempts: 3, ..Default::default() })
            .token_aware(!through_node);
        if let Some(level) = consistency {
            builder = builder.consistency(level);
        }
        let client = builder.build().await.map_err(client_error)?;
        let printed = data_op(&client, &op).await;
        let printed = match printed {
            Ok(p) => p,
            Err(DataFailure::Client(e)) => return Err(client_error(e)),
            Err(DataFailure::Absent(p, why)) => {
                if output == CtlOutput::Json {
                    emit(output, &p);
                }
                return Err(CtlError::Failed(why));
            }
        };
        emit(output, &printed);
        Ok(())
    })
}

/// Why a data command did not print a result.
#[derive(Debug)]
enum DataFailure {
    /// The client failed.
    Client(meridian_client::Error),
    /// `get` of an absent key: the JSON to print and the message (exit 1).
    Absent(Printed, String),
}

impl From<meridian_client::Error> for DataFailure {
    fn from(e: meridian_client::Error) -> Self {
        DataFailure::Client(e)
    }
}

async fn data_op(client: &meridian_client::Client, op: &DataOp) -> Result<Printed, DataFailure> {
    let region = || client.current_region().unwrap_or_default();
    Ok(match op {
        DataOp::Get { keyspace, key } => match client.get_register(keyspace, key).await? {
            Some(reg) => register_printed(keyspace, key, &reg, &region()),
            None => {
                let json = json!({"keyspace": keyspace, "key": key, "found": false, "region": region()});
                let why = format!("no value under key {key:?} in keyspace {keyspace:?}");
                return Err(DataFailure::Absent(Printed { text: String::new(), json }, why));
            }
        },
        DataOp::Put { keyspace, key, value, ttl } => {
            let ttl = ttl.map(Duration::from_secs);
            let ack = client.put(keyspace, key, value.clone().into_bytes(), ttl).await?;
            ack_printed(keyspace, key, "written", &ack)
        }
        DataOp::Del { keyspace, key } => ack_printed(keyspace, key, "deleted", &client.delete(keyspace, key).await?),
        DataOp::Incr { keyspace, key, delta } => {
            let ack = client.incr(keyspace, key, *delta).await?;
            let mut p = ack_printed(keyspace, key, &format!("incremented by {delta}"), &ack);
            p.json["delta"] = json!(delta);
            p
        }
        DataOp::Sadd { keyspace, key, members } => {
            let refs: Vec<&str> = members.iter().map(String::as_str).collect();
            let ack = client.sadd(keyspace, key, &refs).await?;
            ack_printed(keyspace, key, &format!("{} member(s) added", members.len()), &ack)
        }
        DataOp::Srem { keyspace, key, members } => {
            let refs: Vec<&str> = members.iter().map(String::as_str).collect();
            let ack = client.srem(keyspace, key, &refs, None).await?;
            ack_printed(keyspace, key, &format!("{} member(s) removed", members.len()), &ack)
        }
        DataOp::Smembers { keyspace, key } => {
            members_printed(keyspace, key, &client.smembers(keyspace, key).await?, &region())
        }
    })
}

/// Bytes for people: as they are when UTF-8, else `base64:` and their base64.
fn bytes_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// Bytes in JSON: `{"value": <UTF-8 text or null>, "value_base64": <base64>}` fields.
fn bytes_json(bytes: &[u8]) -> (Value, Value) {
    let text = std::str::from_utf8(bytes).map_or(Value::Null, |t| json!(t));
    (text, json!(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

fn register_printed(keyspace: &str, key: &str, reg: &meridian_client::Register, region: &str) -> Printed {
    use meridian_client::Register;
    match reg {
        Register::Lww(v) => {
            let mut t = Table::new(&["Key", "Value", "Version", "Expires"]);
            let expires = v.expires_at.map_or_else(|| "-".to_owned(), |ms| ms.to_string());
            t.row(vec![key.to_owned(), bytes_text(&v.bytes), v.version.to_string(), expires]);
            let (text, b64) = bytes_json(&v.bytes);
            Printed {
                text: t.render(),
                json: json!({
                    "keyspace": keyspace, "key": key, "found": true, "type": "lww", "value": text,
                    "value_base64": b64, "version": v.version.to_string(), "expires_at": v.expires_at,
                    "region": region,
                }),
            }
        }
        Register::Mvr(m) => {
            let mut t = Table::new(&["Key", "Sibling", "Value"]);
            for (i, s) in m.siblings.iter().enumerate() {
                t.row(vec![key.to_owned(), (i + 1).to_string(), bytes_text(s)]);
            }
            let version = m.version.map(|v| v.to_string());
            let text = format!(
                "{}{} sibling(s), version {}, context {}\n",
                t.render(),
                m.siblings.len(),
                version.as_deref().unwrap_or("-"),
                if m.context.is_empty() { "-" } else { &m.context }
            );
            let siblings: Vec<Value> = m
                .siblings
                .iter()
                .map(|s| {
                    let (text, b64) = bytes_json(s);
                    json!({"value": text, "value_base64": b64})
                })
                .collect();
            Printed {
                text,
                json: json!({
                    "keyspace": keyspace, "key": key, "found": true, "type": "mvr", "siblings": siblings,
                    "context": m.context, "version": version, "expires_at": m.expires_at, "region": region,
                }),
            }
        }
    }
}

fn ack_printed(keyspace: &str, key: &str, what: &str, ack: &meridian_client::WriteAck) -> Printed {
    Printed {
        text: format!(
            "{keyspace}/{key}: {what}, version {} (region {}, {} replica(s) acknowledged at {})\n",
            ack.version, ack.region, ack.acknowledged, ack.consistency
        ),
        json: json!({
            "keyspace": keyspace, "key": key, "status": "ok", "version": ack.version.to_string(),
            "region": ack.region, "node": ack.node, "acknowledged": ack.acknowledged,
            "consistency": ack.consistency,
        }),
    }
}

fn members_printed(keyspace: &str, key: &str, set: &meridian_client::SetValue, region: &str) -> Printed {
    let mut t = Table::new(&["Member"]);
    for m in &set.members {
        t.row(vec![bytes_text(m)]);
    }
    let all_utf8 = set.members.iter().all(|m| std::str::from_utf8(m).is_ok());
    let members: Vec<Value> = set
        .members
        .iter()
        .map(|m| {
            if all_utf8 {
                json!(String::from_utf8_lossy(m))
            } else {
                json!(base64::engine::general_purpose::STANDARD.encode(m))
            }
        })
        .collect();
    let mut json = json!({
        "keyspace": keyspace, "key": key, "members": members, "context": set.context, "region": region,
    });
    if !all_utf8 {
        json["members_encoding"] = json!("base64");
    }
    let text = if set.members.is_empty() {
        format!("{keyspace}/{key}: no members\n")
    } else {
        format!("{}{} member(s)\n", t.render(), set.members.len())
    };
    Printed { text, json }
}

// ---------------------------------------------------------------------------------------------
// Keyspaces, regions, endpoints

/// `GET /api/v1/keyspaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct KeyspacesView {
    keyspaces: Vec<KeyspaceView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct KeyspaceView {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    consistency: Option<String>,
    source: String,
}

/// `GET /api/v1/regions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RegionsView {
    region: String,
    node: String,
    fenced: bool,
    peers: Vec<PeerLinkView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct PeerLinkView {
    region: String,
    link: String,
    backlog: u64,
    lag_p50_ms: Option<u64>,
    lag_p99_ms: Option<u64>,
    last_applied_ms: Option<u64>,
    last_error: Option<String>,
}

/// The first node of `nodes` that answers `f`: its id and answer. A node that cannot be
/// reached is skipped; an HTTP error ends the search (the next node would say the same).
fn first_answer<T>(
    nodes: &[EndpointsNode],
    mut f: impl FnMut(&str) -> Result<T, CtlError>,
) -> Result<(String, T), CtlError> {
    let mut last = CtlError::Usage("no nodes to ask".to_owned());
    for n in nodes {
        let base = base_url(&n.http)?;
        match f(&base) {
            Ok(t) => return Ok((n.id.clone(), t)),
            Err(e @ CtlError::Unreachable { .. }) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// The error of a command that asked several regions or nodes: `None` if all answered, the
/// first error if none did (exit 2), else a reported failure naming those that did not (exit 1).
fn partial_failure(failed: Vec<(String, CtlError)>, answered: usize, what: &str) -> Result<(), CtlError> {
    if failed.is_empty() {
        return Ok(());
    }
    if answered == 0 {
        return Err(failed.into_iter().next().map(|(_, e)| e).unwrap_or(CtlError::Failed(format!("no {what}"))));
    }
    let names: Vec<String> = failed.iter().map(|(n, e)| format!("{n} ({e})")).collect();
    Err(CtlError::Failed(format!("no answer from {what} {}", names.join(", "))))
}

/// Creates keyspace `name` in each of `regions` (a node of each).
fn keyspace_create(
    client: &Client,
    regions: &[EndpointsRegion],
    name: &str,
    kind: KindArg,
    output: CtlOutput,
) -> Result<(), CtlError> {
    let body = json!({"name": name, "type": kind.as_str()});
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for r in regions {
        match first_answer(&r.nodes, |base| client.post_status(base, "/api/v1/keyspaces", &body)) {
            Ok((node, (status, raw))) => results.push((r.name.clone(), node, status, raw)),
            Err(e) => failed.push((r.name.clone(), e)),
        }
    }
    match output {
        CtlOutput::Json => {
            let doc = json!({
                "keyspace": name, "type": kind.as_str(),
                "regions": results.iter().map(|(region, node, status, raw)| json!({
                    "region": region, "node": node, "created": *status == 201, "keyspace": raw,
                })).collect::<Vec<_>>(),
                "failed": failed.iter().map(|(region, e)| json!({"region": region, "error": e.to_string()}))
                    .collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        }
        CtlOutput::Table => {
            for (region, node, status, _) in &results {
                let what = if *status == 201 { "created" } else { "already exists (same type)" };
                println!("keyspace {name} ({}) {what} in {region} (asked {node})", kind.as_str());
            }
        }
    }
    partial_failure(failed, results.len(), "region")
}

/// A region's answer to `GET /api/v1/regions`: the node that answered, its body, the body read.
type RegionAnswer = Result<(String, Value, RegionsView), CtlError>;

/// Each region's links as one of its nodes sees them.
fn region_list(client: &Client, regions: &[EndpointsRegion], output: CtlOutput) -> Result<(), CtlError> {
    let mut answers: Vec<(String, RegionAnswer)> = Vec::new();
    for r in regions {
        let result = first_answer(&r.nodes, |base| client.get_as::<RegionsView>(base, "/api/v1/regions"))
            .map(|(node, (raw, view))| (node, raw, view));
        answers.push((r.name.clone(), result));
    }
    let now = now_ms();
    match output {
        CtlOutput::Json => {
            let doc = json!({"regions": answers.iter().map(|(name, a)| match a {
                Ok((node, raw, _)) => json!({"region": name, "node": node, "answer": raw, "error": null}),
                Err(e) => json!({"region": name, "node": null, "answer": null, "error": e.to_string()}),
            }).collect::<Vec<_>>()});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        }
        CtlOutput::Table => {
            let views: Vec<(String, Result<&RegionsView, String>)> = answers
                .iter()
                .map(|(name, a)| (name.clone(), a.as_ref().map(|(_, _, v)| v).map_err(|e| e.to_string())))
                .collect();
            print!("{}", regions_table(&views, now));
        }
    }
    let answered = answers.iter().filter(|(_, a)| a.is_ok()).count();
    let failed: Vec<(String, CtlError)> =
        answers.into_iter().filter_map(|(name, a)| a.err().map(|e| (name, e))).collect();
    partial_failure(failed, answered, "region")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn lag_text(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
}

fn regions_table(views: &[(String, Result<&RegionsView, String>)], now_ms: u64) -> String {
    let mut t =
        Table::new(&["Region", "Node", "Fenced", "Peer", "Link", "Lag p50", "Lag p99", "Backlog", "Last applied"]);
    for (name, view) in views {
        let v = match view {
            Ok(v) => v,
            Err(e) => {
                t.row(vec![name.clone(), "-".into(), "-".into(), format!("error: {e}")]);
                continue;
            }
        };
        let fenced = if v.fenced { "yes" } else { "no" }.to_owned();
        let region = if v.region.is_empty() { name.clone() } else { v.region.clone() };
        if v.peers.is_empty() {
            t.row(vec![region.clone(), v.node.clone(), fenced.clone(), "(no peers)".into()]);
        }
        for p in &v.peers {
            let link = match &p.last_error {
                Some(e) if p.link != "up" => format!("{} ({e})", p.link),
                _ => p.link.clone(),
            };
            let last = p
                .last_applied_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{} ago", human_ms(now_ms.saturating_sub(ms))));
            t.row(vec![
                region.clone(),
                v.node.clone(),
                fenced.clone(),
                p.region.clone(),
                link,
                lag_text(p.lag_p50_ms),
                lag_text(p.lag_p99_ms),
                p.backlog.to_string(),
                last,
            ]);
        }
    }
    t.render()
}

/// Replication between one ordered pair of regions, over every node that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LagPair {
    source: String,
    destination: String,
    /// The median of the destination nodes' p50 lag of the source's changes.
    lag_p50_ms: Option<u64>,
    /// The largest of their p99s.
    lag_p99_ms: Option<u64>,
    /// The source nodes' backlogs towards the destination, summed.
    backlog: u64,
    /// Source nodes whose link to the destination is up, of those reporting it.
    links_up: usize,
    links: usize,
}

/// The pairs of regions from every node's `GET /api/v1/regions`, ordered by source then
/// destination.
fn lag_pairs(views: &[RegionsView]) -> Vec<LagPair> {
    let mut pairs: std::collections::BTreeMap<(String, String), (LagPair, Vec<u64>)> = Default::default();
    for v in views {
        for p in &v.peers {
            // As the destination: lag of the peer's changes applied here.
            let (pair, p50s) = pairs.entry((p.region.clone(), v.region.clone())).or_default();
            p50s.extend(p.lag_p50_ms);
            pair.lag_p99_ms = pair.lag_p99_ms.max(p.lag_p99_ms);
            // As the source: this node's backlog and link towards the peer.
            let (pair, _) = pairs.entry((v.region.clone(), p.region.clone())).or_default();
            pair.backlog += p.backlog;
            pair.links += 1;
            pair.links_up += usize::from(p.link == "up");
        }
    }
    pairs
        .into_iter()
        .map(|((source, destination), (mut pair, mut p50s))| {
            p50s.sort_unstable();
            pair.lag_p50_ms = p50s.get(p50s.len().saturating_sub(1) / 2).copied();
            LagPair { source, destination, ..pair }
        })
        .collect()
}

fn lag_table(pairs: &[LagPair]) -> String {
    let mut t = Table::new(&["Source", "Destination", "Lag p50", "Lag p99", "Backlog", "Links up"]);
    for p in pairs {
        t.row(vec![
            p.source.clone(),
            p.destination.clone(),
            lag_text(p.lag_p50_ms),
            lag_text(p.lag_p99_ms),
            p.backlog.to_string(),
            format!("{}/{}", p.links_up, p.links),
        ]);
    }
    format!(
        "{}(lag: measured by the destination's nodes; backlog: the source's nodes' unacknowledged changes)\n",
        t.render()
    )
}

/// Lag and backlog per pair of regions, from every node of every region.
fn region_lag(client: &Client, regions: &[EndpointsRegion], output: CtlOutput) -> Result<(), CtlError> {
    let mut views = Vec::new();
    let mut failed = Vec::new();
    for r in regions {
        for n in &r.nodes {
            match base_url(&n.http).and_then(|b| client.get_as::<RegionsView>(&b, "/api/v1/regions")) {
                Ok((_, view)) => views.push(view),
                Err(e) => failed.push((format!("{}/{}", r.name, n.id), e)),
            }
        }
    }
    let pairs = lag_pairs(&views);
    match output {
        CtlOutput::Json => {
            let doc = json!({
                "pairs": pairs.iter().map(|p| json!({
                    "source": p.source, "destination": p.destination, "lag_p50_ms": p.lag_p50_ms,
                    "lag_p99_ms": p.lag_p99_ms, "backlog": p.backlog, "links_up": p.links_up, "links": p.links,
                })).collect::<Vec<_>>(),
                "nodes_answered": views.len(),
                "failed": failed.iter().map(|(n, e)| json!({"node": n, "error": e.to_string()})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        }
        CtlOutput::Table if pairs.is_empty() => println!("no replication links (a single region?)"),
        CtlOutput::Table => print!("{}", lag_table(&pairs)),
    }
    partial_failure(failed, views.len(), "node")
}

/// `GET /api/v1/cluster/digest/region`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RegionDigestView {
    region: String,
    node: String,
    root: String,
    records: u64,
}

/// One region root per region (asked of the first node of each that answers), and whether
/// they are all equal: exit 1 when they differ or a region did not answer.
fn region_digest(client: &Client, regions: &[EndpointsRegion], output: CtlOutput) -> Result<(), CtlError> {
    let mut views = Vec::new();
    let mut failed = Vec::new();
    for r in regions {
        match first_answer(&r.nodes, |base| client.get_as::<RegionDigestView>(base, "/api/v1/cluster/digest/region")) {
            Ok((_, (_, view))) => views.push(view),
            Err(e) => failed.push((r.name.clone(), e)),
        }
    }
    let equal = views.windows(2).all(|w| w[0].root == w[1].root);
    match output {
        CtlOutput::Json => {
            let doc = json!({
                "regions": views.iter().map(|v| json!({
                    "region": v.region, "node": v.node, "root": v.root, "records": v.records,
                })).collect::<Vec<_>>(),
                "equal": equal && failed.is_empty(),
                "failed": failed.iter().map(|(n, e)| json!({"region": n, "error": e.to_string()})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        }
        CtlOutput::Table => {
            let mut t = Table::new(&["REGION", "ASKED", "ROOT", "RECORDS"]);
            for v in &views {
                t.row(vec![v.region.clone(), v.node.clone(), v.root.clone(), v.records.to_string()]);
            }
            print!("{}", t.render());
            if views.len() > 1 {
                println!("{}", if equal { "roots equal: the regions hold the same records" } else { "roots DIFFER" });
            }
        }
    }
    partial_failure(failed, views.len(), "region")?;
    if !equal {
        return Err(CtlError::Failed("the regions' Merkle roots differ (not converged yet?)".to_owned()));
    }
    Ok(())
}

/// Fences or unfences region `name` through the first node of `regions` that answers.
fn region_fence(
    client: &Client,
    regions: &[EndpointsRegion],
    name: &str,
    on: bool,
    output: CtlOutput,
) -> Result<(), CtlError> {
    let verb = if on { "fence" } else { "unfence" };
    let path = format!("/api/v1/regions/{}/{verb}", encode_segment(name));
    let nodes: Vec<EndpointsNode> = regions.iter().flat_map(|r| r.nodes.clone()).collect();
    let (node, (base, mut raw)) =
        first_answer(&nodes, |base| client.post(base, &path, None).map(|raw| (base.to_owned(), raw)))?;
    let mut view: RegionsView = decode(&path, &raw)?;
    // The node answers at once; the other members' part of the fence travels by gossip, so
    // the region may report the old state for a moment.
    for _ in 0..MAX_FENCE_POLLS {
        if view.fenced == on {
            break;
        }
        thread::sleep(POLL_INTERVAL);
        if let Ok((r, v)) = client.get_as::<RegionsView>(&base, "/api/v1/regions") {
            (raw, view) = (r, v);
        }
    }
    match output {
        CtlOutput::Json => println!("{}", serde_json::to_string_pretty(&raw).unwrap_or_else(|_| raw.to_string())),
        CtlOutput::Table if view.fenced => println!(
            "region {name} is fenced (asked {node}): its nodes refuse client reads and writes with \
             503 region_fenced and its WAN links are cut"
        ),
        CtlOutput::Table => println!("region {name} is not fenced (asked {node})"),
    }
    if view.fenced != on {
        return Err(CtlError::Failed(format!(
            "region {name} still reports fenced = {} {}s after {verb}",
            view.fenced,
            (POLL_INTERVAL * MAX_FENCE_POLLS as u32).as_secs()
        )));
    }
    Ok(())
}

impl Ctl {
    fn keyspace_list(&self) -> Result<(), CtlError> {
        let (raw, list) = self.client.get_as::<KeyspacesView>(&self.base, "/api/v1/keyspaces")?;
        match self.output {
            CtlOutput::Json => self.print_json(&raw),
            CtlOutput::Table => {
                let mut t = Table::new(&["Name", "Type", "Consistency", "Source"]);
                for k in &list.keyspaces {
                    t.row(vec![
                        k.name.clone(),
                        k.kind.clone(),
                        k.consistency.clone().unwrap_or_else(|| "-".to_owned()),
                        k.source.clone(),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        Ok(())
    }

    fn endpoints(&self, keyspace: &str, key: &str) -> Result<(), CtlError> {
        let path = "/api/v1/cluster/ring";
        let raw = self.client.get(&self.base, path)?;
        let ring = RingView::from_json(&raw)
            .map_err(|reason| CtlError::BadAnswer { url: format!("{}{path}", self.base), reason })?;
        print_endpoints(self.output, &ring, keyspace, key);
        Ok(())
    }

    fn region_sync(&self, peer: Option<&str>) -> Result<(), CtlError> {
        let path = match peer {
            Some(name) => format!("/api/v1/regions/{}/sync", encode_segment(name)),
            None => "/api/v1/regions/sync".to_owned(),
        };
        let (_, status) = self.client.get_as::<StatusView>(&self.base, "/api/v1/cluster/status")?;
        let mut requested = Vec::new();
        let mut failed = Vec::new();
        for n in status.nodes.iter().filter(|n| n.status != LEFT) {
            let result = match (&n.http, n.is_self) {
                (_, true) => self.client.post(&self.base, &path, None),
                (Some(http), false) => base_url(http).and_then(|b| self.client.post(&b, &path, None)),
                (None, false) => Err(CtlError::Failed("publishes no HTTP address".to_owned())),
            };
            match result {
                Ok(_) => requested.push(n.id.clone()),
                Err(e) => failed.push((n.id.clone(), e)),
            }
        }
        let towards = peer.map_or_else(|| "every peer region".to_owned(), |p| format!("region {p}"));
        match self.output {
            CtlOutput::Json => self.print_json(&json!({
                "region": status.region, "towards": peer, "requested": requested,
                "failed": failed.iter().map(|(n, e)| json!({"node": n, "error": e.to_string()})).collect::<Vec<_>>(),
            })),
            CtlOutput::Table => println!(
                "full sync of {} towards {towards} requested on {} (runs in the background; follow it with \
                 `meridian ctl region list`)",
                status.region,
                if requested.is_empty() { "no node".to_owned() } else { requested.join(", ") }
            ),
        }
        partial_failure(failed, requested.len(), "node")
    }
}

fn print_endpoints(output: CtlOutput, ring: &RingView, keyspace: &str, key: &str) {
    let token = meridian_local_token(keyspace, key);
    let replicas = ring.replicas(token);
    match output {
        CtlOutput::Json => {
            let doc = json!({
                "region": ring.region, "keyspace": keyspace, "key": key, "token": token,
                "ring_version": ring.version, "replication_factor": ring.replication_factor,
                "replicas": replicas.iter().map(|n| json!({"id": n.id, "http": n.http, "live": n.live}))
                    .collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        }
        CtlOutput::Table => print!("{}", endpoints_table(ring, keyspace, key)),
    }
}

/// The token of `key` in `keyspace`, as the nodes compute it.
fn meridian_local_token(keyspace: &str, key: &str) -> u64 {
    meridian_local::token_of(keyspace, key.as_bytes())
}

fn endpoints_table(ring: &RingView, keyspace: &str, key: &str) -> String {
    let token = meridian_local_token(keyspace, key);
    let mut t = Table::new(&["Replica", "Node", "HTTP", "Live"]);
    for (i, n) in ring.replicas(token).iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            n.id.clone(),
            n.http.clone().unwrap_or_else(|| "-".to_owned()),
            if n.live { "yes" } else { "no" }.to_owned(),
        ]);
    }
    format!(
        "{keyspace}/{key}: token {token}, region {}, ring version {}, replication factor {}\n{}",
        ring.region,
        ring.version,
        ring.replication_factor,
        t.render()
    )
}

// ---------------------------------------------------------------------------------------------
// Progress of `--wait`

/// One updating progress line: on stdout when it is a terminal (and the output is a table),
/// else on stderr; rewritten in place on a terminal, else printed when it changes.
#[derive(Debug)]
struct Progress {
    to_stdout: bool,
    in_place: bool,
    last: String,
    open: bool,
}

impl Progress {
    fn new(output: CtlOutput) -> Progress {
        let to_stdout = output == CtlOutput::Table && std::io::stdout().is_terminal();
        let in_place = if to_stdout { true } else { std::io::stderr().is_terminal() };
        Progress { to_stdout, in_place, last: String::new(), open: false }
    }

    fn write(&self, text: &str) {
        // Progress display is best effort: a closed stream must not stop the command.
        if self.to_stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        } else {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    fn update(&mut self, line: &str) {
        if line == self.last {
            return;
        }
        if self.in_place {
            self.write(&format!("\r\x1b[K{line}"));
            self.open = true;
        } else {
            self.write(&format!("{line}\n"));
        }
        self.last = line.to_owned();
    }

    /// A message on its own line (stderr), keeping the progress line intact.
    fn warn(&mut self, message: &str) {
        if self.open {
            self.write("\n");
            self.open = false;
            self.last.clear();
        }
        eprintln!("warning: {message}");
    }

    /// Ends the progress line.
    fn done(&mut self) {
        if self.open {
            self.write("\n");
            self.open = false;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// Columns aligned on the widest cell, two spaces apart.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Adds a row (missing cells are empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row (headers first), each ending in a newline.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for cells in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate().take(cols) {
                let cell = cells.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A fraction as a percentage with one decimal (`0.3333` → `33.3%`).
fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// Bytes in binary units (`1536` → `1.5 KiB`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in ms for people (`3500` → `3.5s`, `125000` → `2m05s`).
fn human_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

fn status_table(s: &StatusView) -> String {
    let mut t = Table::new(&["Status", "Node", "RPC", "HTTP", "Load", "Owns", "Tokens", "Keys"]);
    for n in &s.nodes {
        t.row(vec![
            n.status.clone(),
            if n.is_self { format!("{}*", n.id) } else { n.id.clone() },
            n.rpc.clone(),
            n.http.clone().unwrap_or_else(|| "-".to_owned()),
            percent(n.load),
            percent(n.ownership),
            n.tokens.to_string(),
            n.keys.map_or_else(|| "-".to_owned(), |k| k.to_string()),
        ]);
    }
    format!(
        "Region {} (as seen by {}, marked *)\n{}Ring version {}, replication factor {}, total keys {} (estimated)\n",
        s.region,
        s.node,
        t.render(),
        s.ring_version,
        s.replication_factor,
        s.total_keys
    )
}

fn sample_text(tokens: &[u64], total: usize) -> String {
    let shown: Vec<String> = tokens.iter().take(RING_SAMPLE).map(u64::to_string).collect();
    let mut text = shown.join(", ");
    if total > shown.len() {
        text.push_str(", ...");
    }
    text
}

fn ring_table(s: &StatusView) -> String {
    let mut t = Table::new(&["Node", "Status", "Tokens", "Owns", "Sample"]);
    for n in &s.nodes {
        t.row(vec![
            n.id.clone(),
            n.status.clone(),
            n.tokens.to_string(),
            percent(n.ownership),
            sample_text(&n.tokens_sample, n.tokens),
        ]);
    }
    let total: usize = s.nodes.iter().map(|n| n.tokens).sum();
    format!(
        "{}{} nodes, {total} tokens, ring version {}, replication factor {}\n",
        t.render(),
        s.nodes.len(),
        s.ring_version,
        s.replication_factor
    )
}

fn ring_json(s: &StatusView) -> Value {
    json!({
        "region": s.region,
        "node": s.node,
        "ring_version": s.ring_version,
        "replication_factor": s.replication_factor,
        "tokens": s.nodes.iter().map(|n| n.tokens).sum::<usize>(),
        "nodes": s.nodes.iter().map(|n| json!({
            "id": n.id,
            "status": n.status,
            "tokens": n.tokens,
            "ownership": n.ownership,
            "tokens_sample": n.tokens_sample,
        })).collect::<Vec<_>>(),
    })
}

fn hints_table(h: &HintsView) -> String {
    let totals =
        format!("since {} started: {} stored, {} replayed, {} dropped\n", h.node, h.stored, h.replayed, h.dropped);
    if h.queues.is_empty() {
        return format!("no pending hints on {}\n{totals}", h.node);
    }
    let mut t = Table::new(&["Target", "Number", "Pending", "Oldest", "Live"]);
    for q in &h.queues {
        t.row(vec![
            q.target.clone().unwrap_or_else(|| "(not a member)".to_owned()),
            q.number.clone(),
            q.pending.to_string(),
            q.oldest_age_ms.map_or_else(|| "-".to_owned(), human_ms),
            if q.target_live { "yes" } else { "no" }.to_owned(),
        ]);
    }
    let pending: u64 = h.queues.iter().map(|q| q.pending).sum();
    format!("{}{pending} hints pending on {}; {totals}", t.render(), h.node)
}

fn describe_range(range: Option<(u64, u64)>) -> String {
    match range {
        None => "every range".to_owned(),
        Some((s, e)) => format!("range ({s}, {e}]"),
    }
}

fn repair_line(r: &RepairView) -> String {
    let mut line = format!(
        "{}: {}, peers {}/{} done ({} failed), {} segments differ, {} keys repaired, {} transferred",
        r.state,
        describe_range(r.range),
        r.peers_done,
        r.peers_total,
        r.peers_failed,
        r.segments_differing,
        r.keys_repaired,
        human_bytes(r.bytes_transferred)
    );
    if let Some(e) = &r.error {
        line.push_str(&format!(" - {e}"));
    }
    line
}

fn streaming_line(s: &StreamingView) -> String {
    let mut line = format!(
        "{}, ranges {}/{}, {} keys, {} moved",
        s.state,
        s.ranges_done,
        s.ranges_total,
        s.keys,
        human_bytes(s.bytes)
    );
    if let Some(e) = &s.error {
        line.push_str(&format!(" - {e}"));
    }
    line
}

fn digests_table(answers: &[DigestAnswer], pairs: &[(String, String, bool)]) -> String {
    let mut t = Table::new(&["Node", "HTTP", "Root", "Records", "Ranges"]);
    for a in answers {
        let http = a.http.clone().unwrap_or_else(|| "-".to_owned());
        match &a.result {
            Ok((_, d)) => {
                t.row(vec![a.id.clone(), http, d.root.clone(), d.records.to_string(), d.ranges.len().to_string()])
            }
            Err(e) => t.row(vec![a.id.clone(), http, format!("error: {e}")]),
        }
    }
    let mut out = t.render();
    for (a, b, equal) in pairs {
        out.push_str(&format!("{a} / {b}: {}\n", if *equal { "equal" } else { "differ" }));
    }
    if !pairs.is_empty() {
        out.push_str("(roots differ legitimately when nodes hold different ranges)\n");
    }
    out
}

fn digests_json(answers: &[DigestAnswer], pairs: &[(String, String, bool)]) -> Value {
    json!({
        "nodes": answers.iter().map(|a| match &a.result {
            Ok((raw, _)) => json!({"id": a.id, "http": a.http, "digest": raw, "error": null}),
            Err(e) => json!({"id": a.id, "http": a.http, "digest": null, "error": e}),
        }).collect::<Vec<_>>(),
        "pairs": pairs.iter().map(|(a, b, equal)| json!({"a": a, "b": b, "equal": equal})).collect::<Vec<_>>(),
        "all_equal": pairs.iter().all(|(_, _, equal)| *equal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, status: &str, http: Option<&str>, is_self: bool) -> NodeView {
        NodeView {
            id: id.to_owned(),
            status: status.to_owned(),
            rpc: "127.0.0.1:7000".to_owned(),
            http: http.map(str::to_owned),
            load: 1.0,
            ownership: 1.0 / 3.0,
            tokens: 256,
            tokens_sample: vec![10, 20, 30, 40, 50],
            keys: Some(12),
            is_self,
        }
    }

    fn region_status() -> StatusView {
        StatusView {
            region: "us-east".to_owned(),
            node: "node1".to_owned(),
            replication_factor: 3,
            ring_version: 42,
            nodes: vec![
                node("node1", "healthy", Some("127.0.0.1:8081"), true),
                node("node2", "down", Some("127.0.0.1:8082"), false),
                node("node3", "healthy", Some("127.0.0.1:8083"), false),
            ],
            total_keys: 12,
            streaming: None,
        }
    }

    // --- arguments

    #[derive(Debug, clap::Parser)]
    struct TestCli {
        #[command(subcommand)]
        top: Top,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Ctl(CtlArgs),
    }

    fn parse(args: &[&str]) -> Result<CtlArgs, clap::Error> {
        use clap::Parser as _;
        TestCli::try_parse_from(std::iter::once("meridian").chain(args.iter().copied())).map(|c| match c.top {
            Top::Ctl(a) => a,
        })
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory as _;
        TestCli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let a = parse(&["ctl", "--node", "h:1", "decommission", "node3", "--wait", "--output", "json"]).expect("parse");
        assert_eq!(a.node.as_deref(), Some("h:1"));
        assert_eq!(a.output, CtlOutput::Json);
        assert!(matches!(a.command, CtlCommand::Decommission { ref name, wait: true } if name == "node3"));
        let a =
            parse(&["ctl", "repair", "--range", "1:2", "--endpoints-file", "e.json", "--region", "r"]).expect("parse");
        assert_eq!(a.endpoints_file.as_deref(), Some(Path::new("e.json")));
        assert_eq!(a.region.as_deref(), Some("r"));
        assert!(matches!(a.command, CtlCommand::Repair { range: Some(RangeArg { start: 1, end: 2 }), wait: false }));
        let a = parse(&["ctl", "digest", "--all", "--output", "text"]).expect("parse");
        assert_eq!(a.output, CtlOutput::Table);
        assert!(a.node.is_none());
    }

    #[test]
    fn bad_arguments_are_clap_usage_errors() {
        for bad in [
            &["ctl"][..],
            &["ctl", "decommission"],
            &["ctl", "repair", "--range", "1-2"],
            &["ctl", "status", "--output", "yaml"],
            &["ctl", "explode"],
        ] {
            let err = parse(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    // --- range parsing

    #[test]
    fn range_parses_two_decimal_tokens() {
        assert_eq!("1:2".parse::<RangeArg>(), Ok(RangeArg { start: 1, end: 2 }));
        assert_eq!("0:0".parse::<RangeArg>(), Ok(RangeArg { start: 0, end: 0 }));
        let max = format!("{}:0", u64::MAX);
        assert_eq!(max.parse::<RangeArg>(), Ok(RangeArg { start: u64::MAX, end: 0 }));
        assert_eq!("007:8".parse::<RangeArg>(), Ok(RangeArg { start: 7, end: 8 }));
    }

    #[test]
    fn range_refuses_anything_else() {
        for bad in
            ["", ":", "1", "1:", ":2", "1-2", "1:2:3", "-1:2", "1:-2", "+1:2", " 1:2", "1:2 ", "0x1:2", "a:b", "1.0:2"]
        {
            assert!(bad.parse::<RangeArg>().is_err(), "{bad:?} was accepted");
        }
        let over = "18446744073709551616:1".parse::<RangeArg>();
        assert!(over.as_ref().is_err_and(|e| e.contains("larger")), "{over:?}");
    }

    // --- contact resolution

    fn endpoints_json() -> &'static str {
        r#"{"regions": [
            {"name": "us-east", "nodes": [
                {"id": "node1", "http": "127.0.0.1:8081", "rpc": "127.0.0.1:7001", "pid": 1, "data_dir": "/d/1"},
                {"id": "node2", "http": "127.0.0.1:8082", "rpc": "127.0.0.1:7002", "pid": 2, "data_dir": "/d/2"}]},
            {"name": "eu-west", "nodes": [
                {"id": "node1", "http": "127.0.0.1:9081", "rpc": "127.0.0.1:9001", "pid": 3, "data_dir": "/d/3"}]},
            {"name": "empty", "nodes": []}
        ]}"#
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the endpoints file");
        path
    }

    #[test]
    fn node_flag_wins_over_every_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "e.json", endpoints_json());
        let got = resolve_contact(Some("10.0.0.1:8081"), Some(&file), Some("eu-west"), &file);
        assert_eq!(got, Ok("http://10.0.0.1:8081".to_owned()));
    }

    #[test]
    fn endpoints_file_gives_the_first_node_of_the_first_or_named_region() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "e.json", endpoints_json());
        let missing = dir.path().join("missing.json");
        assert_eq!(resolve_contact(None, Some(&file), None, &missing), Ok("http://127.0.0.1:8081".to_owned()));
        assert_eq!(
            resolve_contact(None, Some(&file), Some("eu-west"), &missing),
            Ok("http://127.0.0.1:9081".to_owned())
        );
    }

    #[test]
    fn the_default_file_is_read_when_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let default = write(dir.path(), "endpoints.json", endpoints_json());
        assert_eq!(resolve_contact(None, None, None, &default), Ok("http://127.0.0.1:8081".to_owned()));
        assert_eq!(resolve_contact(None, None, Some("eu-west"), &default), Ok("http://127.0.0.1:9081".to_owned()));
    }

    #[test]
    fn without_node_or_file_the_error_says_what_to_give() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = resolve_contact(None, None, None, &dir.path().join("endpoints.json")).expect_err("no contact");
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("--node") && text.contains("--endpoints-file"), "{text}");
    }

    #[test]
    fn bad_endpoints_files_and_regions_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "e.json", endpoints_json());
        let missing = dir.path().join("missing.json");
        let unknown = resolve_contact(None, Some(&file), Some("mars"), &missing).expect_err("unknown region");
        assert!(matches!(&unknown, CtlError::Usage(m) if m.contains("mars") && m.contains("us-east")), "{unknown}");
        let empty = resolve_contact(None, Some(&file), Some("empty"), &missing).expect_err("no nodes");
        assert!(empty.to_string().contains("no nodes"), "{empty}");
        assert!(matches!(resolve_contact(None, Some(&missing), None, &missing), Err(CtlError::Usage(_))));
        let garbage = write(dir.path(), "g.json", "{\"nodes\": []}");
        assert!(matches!(resolve_contact(None, Some(&garbage), None, &missing), Err(CtlError::Usage(_))));
        let none = write(dir.path(), "n.json", "{\"regions\": []}");
        let err = resolve_contact(None, Some(&none), None, &missing).expect_err("no regions");
        assert!(err.to_string().contains("no regions"), "{err}");
    }

    #[test]
    fn base_url_takes_host_port_with_or_without_the_scheme() {
        assert_eq!(base_url("127.0.0.1:8081"), Ok("http://127.0.0.1:8081".to_owned()));
        assert_eq!(base_url("http://localhost:8081/"), Ok("http://localhost:8081".to_owned()));
        assert_eq!(base_url("[::1]:8081"), Ok("http://[::1]:8081".to_owned()));
        // An API served over TLS.
        assert_eq!(base_url("https://h:1"), Ok("https://h:1".to_owned()));
        for bad in ["", "localhost", ":8081", "host:", "host:0", "host:70000", "host:80/x", "https://h:0"] {
            assert!(matches!(base_url(bad), Err(CtlError::Usage(_))), "{bad:?} was accepted");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("node-1_a.b~"), "node-1_a.b~");
        assert_eq!(encode_segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    // --- errors

    #[test]
    fn http_errors_carry_the_servers_code_and_message() {
        let e = http_error("http://h:1/x", 400, r#"{"error": "invalid_request", "message": "unknown node \"z\""}"#);
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "http://h:1/x answered 400 [invalid_request]: unknown node \"z\"");
        let e = http_error("http://h:1/x", 502, "bad gateway");
        assert!(matches!(&e, CtlError::Http { code, message, .. } if code == "http_502" && message == "bad gateway"));
        let e = http_error("http://h:1/x", 500, "");
        assert!(e.to_string().contains("(empty body)"), "{e}");
    }

    #[test]
    fn only_reported_failures_exit_1() {
        assert_eq!(CtlError::Failed("x".into()).exit_code(), 1);
        assert_eq!(CtlError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CtlError::Unreachable { url: "u".into(), reason: "r".into() }.exit_code(), 2);
        assert_eq!(CtlError::BadAnswer { url: "u".into(), reason: "r".into() }.exit_code(), 2);
    }

    // --- tables and formats

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut t = Table::new(&["A", "Long header", "C"]);
        t.row(vec!["wide cell".into(), "x".into(), "".into()]);
        t.row(vec!["y".into()]);
        assert_eq!(t.render(), "A          Long header  C\nwide cell  x\ny\n");
    }

    #[test]
    fn tables_count_characters_not_bytes() {
        let mut t = Table::new(&["N", "V"]);
        t.row(vec!["é".into(), "1".into()]);
        t.row(vec!["ab".into(), "2".into()]);
        assert_eq!(t.render(), "N   V\né   1\nab  2\n");
    }

    #[test]
    fn status_table_lists_every_node_and_the_summary() {
        let text = status_table(&region_status());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].starts_with("Region us-east (as seen by node1"), "{text}");
        assert!(lines[1].starts_with("Status   Node    RPC"), "{text}");
        assert!(lines[2].starts_with("healthy  node1*  127.0.0.1:7000  127.0.0.1:8081  100.0%  33.3%  256"), "{text}");
        assert!(lines[3].starts_with("down     node2 "), "{text}");
        assert_eq!(lines[5], "Ring version 42, replication factor 3, total keys 12 (estimated)");
    }

    #[test]
    fn ring_table_samples_tokens() {
        let text = ring_table(&region_status());
        assert!(text.contains("10, 20, 30, 40, ..."), "{text}");
        assert!(text.ends_with("3 nodes, 768 tokens, ring version 42, replication factor 3\n"), "{text}");
        assert_eq!(sample_text(&[1, 2], 2), "1, 2");
        assert_eq!(ring_json(&region_status())["tokens"], 768);
    }

    #[test]
    fn hints_table_shows_queues_or_says_there_are_none() {
        let mut h = HintsView { node: "node1".into(), stored: 9, replayed: 2, dropped: 1, ..Default::default() };
        assert!(hints_table(&h).starts_with("no pending hints on node1\n"));
        h.queues = vec![
            HintQueueView {
                target: Some("node2".into()),
                number: "2b".into(),
                pending: 7,
                oldest_age_ms: Some(125_000),
                target_live: false,
            },
            HintQueueView { target: None, number: "ff".into(), pending: 1, oldest_age_ms: None, target_live: true },
        ];
        let text = hints_table(&h);
        assert!(text.contains("node2           2b      7        2m05s   no"), "{text}");
        assert!(text.contains("(not a member)  ff      1        -       yes"), "{text}");
        assert!(text.contains("8 hints pending on node1; since node1 started: 9 stored, 2 replayed, 1 dropped"));
    }

    #[test]
    fn human_units() {
        assert_eq!(percent(0.3333), "33.3%");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
        assert_eq!(human_ms(3_500), "3.5s");
        assert_eq!(human_ms(3_600_000 + 60_000), "1h01m");
        assert_eq!(human_ms(90_000_000), "1d01h");
    }

    #[test]
    fn progress_lines_say_where_the_pass_is() {
        let r = RepairView {
            state: "running".into(),
            range: Some((1, 2)),
            peers_total: 4,
            peers_done: 2,
            peers_failed: 1,
            keys_repaired: 10,
            bytes_transferred: 2048,
            ..Default::default()
        };
        assert_eq!(
            repair_line(&r),
            "running: range (1, 2], peers 2/4 done (1 failed), 0 segments differ, 10 keys repaired, 2.0 KiB transferred"
        );
        let s = StreamingView {
            state: "failed".into(),
            ranges_total: 8,
            ranges_done: 3,
            keys: 5,
            bytes: 10,
            error: Some("peer down".into()),
        };
        assert_eq!(streaming_line(&s), "failed, ranges 3/8, 5 keys, 10 B moved - peer down");
    }

    // --- repair outcome

    fn repair(state: &str, started: u64) -> RepairView {
        RepairView { state: state.into(), started_ms: Some(started), ..Default::default() }
    }

    #[test]
    fn repair_outcome_follows_the_state_of_our_pass() {
        assert_eq!(repair_outcome(Some(5), &repair("running", 5)), RepairOutcome::Pending);
        assert_eq!(repair_outcome(Some(5), &repair("idle", 5)), RepairOutcome::Pending);
        assert_eq!(repair_outcome(Some(5), &repair("done", 5)), RepairOutcome::Done);
        let mut failed = repair("failed", 5);
        failed.error = Some("peer down".into());
        assert_eq!(repair_outcome(Some(5), &failed), RepairOutcome::Failed("peer down".into()));
        assert_eq!(repair_outcome(None, &repair("done", 5)), RepairOutcome::Done);
    }

    #[test]
    fn repair_outcome_when_a_later_pass_replaced_ours() {
        let mut later = repair("running", 9);
        later.last_complete_ms = Some(5);
        assert_eq!(repair_outcome(Some(5), &later), RepairOutcome::Done, "ours completed");
        later.last_complete_ms = Some(1);
        assert!(matches!(repair_outcome(Some(5), &later), RepairOutcome::Failed(_)), "ours did not complete");
    }

    // --- decommission and digest helpers

    #[test]
    fn the_confirmer_is_the_contact_unless_it_is_the_one_leaving() {
        let s = region_status();
        assert_eq!(pick_confirmer(&s, "node3", "http://c:1"), Ok(Some("http://c:1".to_owned())));
        // node1 is the contact and leaves: node2 is down, so node3 confirms.
        assert_eq!(pick_confirmer(&s, "node1", "http://c:1"), Ok(Some("http://127.0.0.1:8083".to_owned())));
    }

    #[test]
    fn a_node_that_left_is_no_longer_in_the_ring() {
        let mut s = region_status();
        assert!(s.in_ring("node3").is_some());
        s.nodes[2].status = "left".into();
        assert!(s.in_ring("node3").is_none());
        assert!(s.find("node3").is_some(), "still listed");
        assert!(s.in_ring("node9").is_none());
        // node1 leaves, node2 is down and node3 has left: nobody can confirm.
        assert_eq!(pick_confirmer(&s, "node1", "http://c:1"), Ok(None));
    }

    #[test]
    fn digest_pairs_compare_every_answering_pair() {
        let ok = |id: &str, root: &str| DigestAnswer {
            id: id.into(),
            http: None,
            result: Ok((Value::Null, DigestView { root: root.into(), ..Default::default() })),
        };
        let answers = vec![
            ok("a", "r1"),
            ok("b", "r1"),
            DigestAnswer { id: "c".into(), http: None, result: Err("down".into()) },
            ok("d", "r2"),
        ];
        let pairs = digest_pairs(&answers);
        assert_eq!(
            pairs,
            vec![("a".into(), "b".into(), true), ("a".into(), "d".into(), false), ("b".into(), "d".into(), false)]
        );
        let text = digests_table(&answers, &pairs);
        assert!(text.contains("a / b: equal\n") && text.contains("b / d: differ\n"), "{text}");
        assert!(text.contains("c     -     error: down"), "{text}");
        assert_eq!(digests_json(&answers, &pairs)["all_equal"], false);
    }

    #[test]
    fn answers_decode_leniently() {
        let v = json!({"region": "r", "nodes": [{"id": "n", "status": "healthy", "extra": 1}]});
        let s: StatusView = decode("u", &v).expect("decode");
        assert_eq!(s.nodes[0].id, "n");
        assert!(s.streaming.is_none());
        let bad = decode::<StatusView>("u", &json!({"nodes": 5}));
        assert!(matches!(bad, Err(CtlError::BadAnswer { .. })));
    }

    // --- data, keyspace, region and endpoints commands

    fn data(args: &[&str]) -> (DataOp, Option<Consistency>) {
        let a = parse(args).expect("parse");
        DataOp::from_command(a.command).expect("a data command")
    }

    #[test]
    fn data_commands_parse_with_their_default_keyspaces() {
        assert_eq!(data(&["ctl", "get", "k"]).0, DataOp::Get { keyspace: "default".into(), key: "k".into() });
        assert_eq!(
            data(&["ctl", "put", "k", "v v", "--ttl", "60", "-k", "carts", "--consistency", "all"]),
            (
                DataOp::Put { keyspace: "carts".into(), key: "k".into(), value: "v v".into(), ttl: Some(60) },
                Some(Consistency::All)
            )
        );
        assert_eq!(data(&["ctl", "del", "k"]).0, DataOp::Del { keyspace: "default".into(), key: "k".into() });
        assert_eq!(
            data(&["ctl", "incr", "c"]).0,
            DataOp::Incr { keyspace: "counters".into(), key: "c".into(), delta: 1 }
        );
        assert_eq!(
            data(&["ctl", "incr", "c", "-5", "--keyspace", "likes"]).0,
            DataOp::Incr { keyspace: "likes".into(), key: "c".into(), delta: -5 }
        );
        assert_eq!(
            data(&["ctl", "sadd", "s", "a", "b"]).0,
            DataOp::Sadd { keyspace: "sets".into(), key: "s".into(), members: vec!["a".into(), "b".into()] }
        );
        assert_eq!(
            data(&["ctl", "srem", "s", "a"]).0,
            DataOp::Srem { keyspace: "sets".into(), key: "s".into(), members: vec!["a".into()] }
        );
        assert_eq!(data(&["ctl", "smembers", "s"]).0, DataOp::Smembers { keyspace: "sets".into(), key: "s".into() });
        assert_eq!(data(&["ctl", "get", "k", "--consistency", "quorum"]).1, Some(Consistency::Quorum));
        assert!(DataOp::from_command(CtlCommand::Status).is_none());
    }

    #[test]
    fn admin_commands_parse() {
        let a = parse(&["ctl", "keyspace", "create", "likes", "--type", "counter"]).expect("parse");
        let CtlCommand::Keyspace { command: KeyspaceCommand::Create { name, kind } } = a.command else {
            panic!("not keyspace create: {:?}", a.command)
        };
        assert_eq!((name.as_str(), kind), ("likes", KindArg::Counter));
        assert!(matches!(parse(&["ctl", "keyspace", "list"]).expect("parse").command, CtlCommand::Keyspace { .. }));
        for (args, want) in [
            (&["ctl", "region", "list"][..], "list"),
            (&["ctl", "region", "lag"], "lag"),
            (&["ctl", "region", "sync"], "sync all"),
            (&["ctl", "region", "sync", "eu-west"], "sync eu-west"),
            (&["ctl", "region", "fence", "us-east"], "fence us-east"),
            (&["ctl", "region", "unfence", "us-east"], "unfence us-east"),
        ] {
            let got = match parse(args).expect("parse").command {
                CtlCommand::Region { command } => match command {
                    RegionCommand::List => "list".to_owned(),
                    RegionCommand::Lag => "lag".to_owned(),
                    RegionCommand::Sync { name } => format!("sync {}", name.as_deref().unwrap_or("all")),
                    RegionCommand::Fence { name } => format!("fence {name}"),
                    RegionCommand::Unfence { name } => format!("unfence {name}"),
                    RegionCommand::Digest => "digest".to_owned(),
                },
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want);
        }
        let a = parse(&["ctl", "endpoints", "user:1", "--keyspace", "carts", "--output", "json"]).expect("parse");
        let CtlCommand::Endpoints { key, keyspace } = a.command else { panic!("not endpoints: {:?}", a.command) };
        assert_eq!((key.as_str(), keyspace.as_str()), ("user:1", "carts"));
    }

    #[test]
    fn bad_data_arguments_are_usage_errors() {
        for bad in [
            &["ctl", "get"][..],
            &["ctl", "put", "k"],
            &["ctl", "put", "k", "v", "--ttl", "0"],
            &["ctl", "put", "k", "v", "--ttl", "x"],
            &["ctl", "incr", "c", "1.5"],
            &["ctl", "sadd", "s"],
            &["ctl", "srem", "s"],
            &["ctl", "get", "k", "--consistency", "two"],
            &["ctl", "keyspace", "create", "x"],
            &["ctl", "keyspace", "create", "x", "--type", "map"],
            &["ctl", "region", "fence"],
            &["ctl", "region", "explode"],
            &["ctl", "endpoints"],
        ] {
            let err = parse(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn regions_resolve_from_the_file_the_named_region_or_the_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "e.json", endpoints_json());
        let missing = dir.path().join("missing.json");
        let all = resolve_regions(None, Some(&file), None, &missing).expect_err("a region lists no nodes");
        assert!(all.to_string().contains("empty"), "{all}");
        let east = resolve_regions(None, Some(&file), Some("us-east"), &missing).expect("us-east");
        assert_eq!(east.len(), 1);
        assert_eq!(east[0].nodes.len(), 2);
        let node = resolve_regions(Some("10.0.0.1:8081"), Some(&file), Some("eu-west"), &missing).expect("node");
        assert_eq!(node[0].nodes[0].http, "10.0.0.1:8081");
        assert!(matches!(resolve_regions(None, Some(&file), Some("mars"), &missing), Err(CtlError::Usage(_))));
        let two = write(
            dir.path(),
            "two.json",
            r#"{"regions": [{"name": "a", "nodes": [{"id": "n", "http": "127.0.0.1:1"}]},
                {"name": "b", "nodes": [{"id": "n", "http": ""}, {"id": "m", "http": "127.0.0.1:2"}]}]}"#,
        );
        let both = resolve_regions(None, Some(&two), None, &missing).expect("both");
        assert_eq!(both.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(both[1].nodes.len(), 1, "nodes without an HTTP address are left out");
    }

    #[test]
    fn client_errors_keep_the_exit_code_conventions() {
        use meridian_client::{Error as E, TransportKind};
        let t = E::Transport { kind: TransportKind::Connect, url: "u".into(), message: "refused".into() };
        let e = client_error(E::Exhausted { attempts: 3, regions: vec!["r".into()], last: Box::new(t.clone()) });
        let CtlError::Unreachable { reason, .. } = &e else { panic!("not unreachable: {e:?}") };
        assert!(reason.contains("connect_failed") && reason.contains("3 attempts"), "{reason}");
        assert_eq!(e.exit_code(), 2);
        let api = E::Api { status: 409, code: "wrong_type".into(), message: "m".into(), url: "u".into() };
        assert!(matches!(client_error(api), CtlError::Http { status: 409, ref code, .. } if code == "wrong_type"));
        let maybe = client_error(E::Indeterminate { region: "r".into(), cause: Box::new(t) });
        assert_eq!(maybe.exit_code(), 1, "an increment of unknown outcome ran but failed");
        assert_eq!(client_error(E::InvalidArgument("x".into())).exit_code(), 2);
    }

    #[test]
    fn partial_answers_exit_1_and_no_answers_exit_2() {
        assert_eq!(partial_failure(vec![], 3, "node"), Ok(()));
        let down = || CtlError::Unreachable { url: "u".into(), reason: "refused".into() };
        let some = partial_failure(vec![("n2".into(), down())], 2, "node").expect_err("partial");
        assert_eq!(some.exit_code(), 1);
        assert!(some.to_string().contains("n2"), "{some}");
        assert_eq!(partial_failure(vec![("n2".into(), down())], 0, "node").expect_err("none").exit_code(), 2);
    }

    #[test]
    fn values_print_as_text_or_base64() {
        assert_eq!(bytes_text(b"hello"), "hello");
        assert_eq!(bytes_text(&[0xff, 0x00]), "base64:/wA=");
        assert_eq!(bytes_json(&[0xff]), (Value::Null, json!("/w==")));
        let reg = meridian_client::Register::Lww(meridian_client::Value {
            bytes: b"hi".to_vec(),
            version: meridian_client::Version::new(5, 7),
            expires_at: None,
        });
        let p = register_printed("default", "k", &reg, "us-east");
        assert_eq!(p.text, "Key  Value  Version  Expires\nk    hi     5/7      -\n");
        assert_eq!(p.json["value"], "hi");
        assert_eq!(p.json["region"], "us-east");
        let set = meridian_client::SetValue { members: vec![b"a".to_vec(), vec![0xff]], context: "c".into() };
        let p = members_printed("sets", "s", &set, "r");
        assert_eq!(p.json["members_encoding"], "base64");
        assert_eq!(p.json["members"], json!(["YQ==", "/w=="]));
        assert!(p.text.ends_with("2 member(s)\n"), "{}", p.text);
    }

    fn peer(region: &str, backlog: u64, p50: Option<u64>, p99: Option<u64>, link: &str) -> PeerLinkView {
        PeerLinkView {
            region: region.into(),
            link: link.into(),
            backlog,
            lag_p50_ms: p50,
            lag_p99_ms: p99,
            ..Default::default()
        }
    }

    #[test]
    fn lag_pairs_join_the_destinations_lag_and_the_sources_backlog() {
        let views = vec![
            RegionsView {
                region: "a".into(),
                node: "a1".into(),
                peers: vec![peer("b", 3, Some(10), Some(40), "up")],
                ..Default::default()
            },
            RegionsView {
                region: "a".into(),
                node: "a2".into(),
                peers: vec![peer("b", 4, Some(30), Some(90), "down")],
                ..Default::default()
            },
            RegionsView {
                region: "b".into(),
                node: "b1".into(),
                peers: vec![peer("a", 1, Some(20), None, "up")],
                ..Default::default()
            },
        ];
        let pairs = lag_pairs(&views);
        assert_eq!(
            pairs,
            vec![
                LagPair {
                    source: "a".into(),
                    destination: "b".into(),
                    lag_p50_ms: Some(20),
                    lag_p99_ms: None,
                    backlog: 7,
                    links_up: 1,
                    links: 2
                },
                LagPair {
                    source: "b".into(),
                    destination: "a".into(),
                    lag_p50_ms: Some(10),
                    lag_p99_ms: Some(90),
                    backlog: 1,
                    links_up: 1,
                    links: 1
                },
            ]
        );
        let text = lag_table(&pairs);
        assert!(text.contains("a       b            20 ms    -        7        1/2"), "{text}");
    }

    #[test]
    fn region_tables_show_links_and_errors() {
        let mut down = peer("b", 2, Some(5), Some(9), "down");
        down.last_error = Some("timed out".into());
        down.last_applied_ms = Some(1_000);
        let view = RegionsView { region: "a".into(), node: "n1".into(), fenced: true, peers: vec![down] };
        let lonely = RegionsView { region: "c".into(), node: "n9".into(), ..Default::default() };
        let text = regions_table(
            &[("a".into(), Ok(&view)), ("c".into(), Ok(&lonely)), ("x".into(), Err("unreachable".into()))],
            4_500,
        );
        assert!(
            text.contains(
                "a       n1    yes     b                   down (timed out)  5 ms     9 ms     2        3.5s ago"
            ),
            "{text}"
        );
        assert!(text.contains("c       n9    no      (no peers)"), "{text}");
        assert!(text.contains("x       -     -       error: unreachable"), "{text}");
    }

    #[test]
    fn endpoints_list_the_keys_replicas_in_order() {
        let node = |id: &str, tokens: &[u64], live: bool| meridian_client::RingNode {
            id: id.into(),
            http: Some(format!("{id}:1")),
            live,
            tokens: tokens.to_vec(),
        };
        let ring = RingView::new("r".into(), 9, 2, vec![node("a", &[0], true), node("b", &[u64::MAX / 2], false)]);
        let text = endpoints_table(&ring, "default", "k");
        let token = meridian_local::token_of("default", b"k");
        assert!(
            text.starts_with(&format!("default/k: token {token}, region r, ring version 9, replication factor 2\n"))
        );
        let first = if token == 0 || token > u64::MAX / 2 { "a" } else { "b" };
        assert!(text.contains(&format!("1        {first}")), "{text}");
        assert!(text.contains("no") && text.contains("yes"), "{text}");
    }
}
