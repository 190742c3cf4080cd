//! `meridian bench`: a load generator on the client library (`meridian-client`), for
//! YCSB-style workloads, a hot counter and set updates. It prints figures; it asserts
//! nothing about them (`docs/bench.md`; benchmarks are programs, not timed tests).
//!
//! How it measures:
//!
//! - **Open loop** (`--rate N`): operation `i` is due at `start + i / N`
//!   ([`OpenLoop`]); a dispatcher sends each when it is due, whatever happened to the
//!   previous ones (at most `--concurrency` in flight, default 512: past that it waits), and
//!   its latency runs from the **due time**, so a stall of the cluster shows up as the
//!   latency of every operation that should have been sent meanwhile (no coordinated
//!   omission). When the dispatcher sends an operation more than [`LATE`] after its due time
//!   (the in-flight cap was reached, or this machine was too busy), the operation counts as
//!   late; the report says how many and by how much at most, and warns when the target rate
//!   was not offered.
//! - **Closed loop** (no `--rate`): `--concurrency N` workers (default 16) each send the next
//!   operation when the previous one answered; latency is the service time. This hides stalls
//!   (each worker waits) and is reported as closed loop.
//! - Latencies go into HDR histograms (1 µs to 60 s, 3 significant digits), every operation
//!   (success or error) overall and per operation type; errors are counted by their stable
//!   code. A progress line on stderr shows operations, rate and errors about once a second.
//! - `counter`: every operation adds 1 to one fresh key; at the end the counter is read back
//!   from every region (each through its own client) until every region shows the same value
//!   and it lies in `[acknowledged, acknowledged + indeterminate]` (exactly the acknowledged
//!   sum when no increment was indeterminate), or `--converge-timeout` passes: exit 1 then.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use meridian_client::load::{key_name, Distribution, KeyChooser, OpKind, OpenLoop, Workload};
use meridian_client::{Client, Consistency, RegionEndpoints};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::cli::ctl::{resolve_regions, CtlError, CtlOutput, DEFAULT_ENDPOINTS_FILE};
use crate::cli::peers::{Peer, PeerError};

/// An operation dispatched later than this after its due time counts as late.
const LATE: Duration = Duration::from_millis(10);
/// Largest latency the histograms hold (larger ones are recorded as this).
const MAX_LATENCY_US: u64 = 60_000_000;
/// In-flight cap of the open loop unless `--concurrency` says otherwise.
const DEFAULT_MAX_IN_FLIGHT: usize = 512;
/// Workers of the closed loop unless `--concurrency` says otherwise.
const DEFAULT_WORKERS: usize = 16;
/// Members per set in the `set` workload.
const SET_MEMBERS: u64 = 100;
/// Interval of the counter read-back.
const CONVERGE_POLL: Duration = Duration::from_millis(250);

/// Options of `meridian bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// An endpoints file written by `meridian dev` (default: ./meridian-dev/endpoints.json).
    #[arg(long, value_name = "FILE")]
    pub endpoints_file: Option<PathBuf>,
    /// Talk to this node only (HOST:PORT) instead of the regions of an endpoints file.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "endpoints_file")]
    pub node: Option<String>,
    /// Send to these regions only (repeatable, or comma-separated); default: every region of
    /// the file, nearest first, failing over between them.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub region: Vec<String>,
    /// The operation mix: a (50% reads, 50% updates), b (95/5), c (reads), write (updates),
    /// counter (one hot counter), set (adds and removes).
    #[arg(long, default_value = "a")]
    pub workload: Workload,
    /// How long to measure (`30s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Open loop: this many operations per second, latency measured from each one's due time.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,
    /// Closed loop (no --rate): workers sending back to back (default 16). Open loop: the most
    /// operations in flight (default 512).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: Option<u64>,
    /// Keys (registers or sets) the operations draw from.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// How keys are drawn: uniform or zipfian (scrambled, θ 0.99).
    #[arg(long, default_value = "uniform")]
    pub distribution: Distribution,
    /// Bytes per written value.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub value_size: u64,
    /// Consistency level of every request: ONE, QUORUM or ALL (default: the keyspace's).
    #[arg(long, value_name = "LEVEL")]
    pub consistency: Option<Consistency>,
    /// Write keys 0..N first (not measured), so that reads find values.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preload: u64,
    /// The keyspace (default: `default`, `counters` for counter, `sets` for set).
    #[arg(long, value_name = "KS")]
    pub keyspace: Option<String>,
    /// Prefix of every key the run writes.
    #[arg(long, default_value = "bench:", value_name = "PREFIX")]
    pub key_prefix: String,
    /// Seed of the operation and key draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time allowed for one request.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// counter: how long to wait for every region to show the final value.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub converge_timeout: Duration,
    /// Also measure the cross-region replication lag of the changes the measured phase
    /// wrote: every node's lag histogram before and after the phase, after waiting (at most
    /// --converge-timeout) for every WAN backlog to drain. Needs an endpoints file with
    /// several regions.
    #[arg(long)]
    pub lag: bool,
    /// Drive a peer store instead of Meridian, with the same generator (register workloads
    /// a, b, c and write only): `redis` (RESP) or `etcd` (v3 JSON gateway).
    #[arg(long, value_enum, requires = "peer_addr", conflicts_with_all = ["lag", "endpoints_file", "node"])]
    pub peer: Option<crate::cli::peers::PeerKind>,
    /// The peer's address(es), `HOST:PORT[,HOST:PORT...]` (etcd: every member, round-robin).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    pub peer_addr: Vec<String>,
    /// Output format: a summary table, or one JSON document.
    #[arg(long, value_enum, default_value_t = CtlOutput::Table)]
    pub output: CtlOutput,
    /// Bearer token and CA of the API.
    #[command(flatten)]
    pub access: crate::cli::access::AccessArgs,
}

impl BenchArgs {
    /// The token and CA to use (the endpoints file's token unless --token or --node).
    fn access(&self) -> Result<crate::cli::access::Access, CtlError> {
        self.access.resolve(self.endpoints_file.as_deref(), Path::new(DEFAULT_ENDPOINTS_FILE), self.node.is_some())
    }
}

/// `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds (fractions allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (30s, 500ms, 2m, 1h)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 * 7.0 {
        return Err(format!("{text:?} must be more than zero and at most a week"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `meridian bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    match run_bench(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// What one run is: the resolved parameters.
#[derive(Debug, Clone)]
struct Plan {
    workload: Workload,
    keyspace: String,
    prefix: String,
    chooser: KeyChooser,
    value: Bytes,
    counter_key: String,
}

fn run_bench(args: BenchArgs) -> Result<(), CtlError> {
    if args.peer.is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CtlError::Failed(format!("cannot start the async runtime: {e}")))?;
        return runtime.block_on(bench(args, Vec::new(), Vec::new()));
    }
    let all =
        resolve_regions(args.node.as_deref(), args.endpoints_file.as_deref(), None, Path::new(DEFAULT_ENDPOINTS_FILE))?;
    let all: Vec<RegionEndpoints> =
        all.iter().map(|r| RegionEndpoints::new(&r.name, r.nodes.iter().map(|n| n.http.clone()))).collect();
    let mut targets = all.clone();
    if !args.region.is_empty() {
        for name in &args.region {
            if !all.iter().any(|r| &r.name == name) {
                let known: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                return Err(CtlError::Usage(format!("no region {name:?} (regions: {})", known.join(", "))));
            }
        }
        targets.retain(|r| args.region.contains(&r.name));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(bench(args, all, targets))
}

async fn build_client(regions: Vec<RegionEndpoints>, args: &BenchArgs, through_node: bool) -> Result<Client, CtlError> {
    let mut b = args
        .access()?
        .client()
        .regions(regions)
        .request_timeout(args.request_timeout)
        .connect_timeout(args.request_timeout.min(Duration::from_secs(1)))
        .token_aware(!through_node);
    if let Some(level) = args.consistency {
        b = b.consistency(level);
    }
    b.build().await.map_err(|e| CtlError::Usage(format!("cannot build the client: {e}")))
}

/// Everything the operations record.
#[derive(Debug)]
struct Recorder {
    all: Histogram<u64>,
    by_op: BTreeMap<OpKind, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    fn new(kinds: &[OpKind]) -> Result<Recorder, CtlError> {
        let mut by_op = BTreeMap::new();
        for kind in kinds {
            by_op.insert(*kind, histogram()?);
        }
        Ok(Recorder { all: histogram()?, by_op, errors: BTreeMap::new() })
    }

    fn record(&mut self, kind: OpKind, latency: Duration, error: Option<&str>) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.all.saturating_record(us);
        if let Some(h) = self.by_op.get_mut(&kind) {
            h.saturating_record(us);
        }
        if let Some(code) = error {
            *self.errors.entry(code.to_owned()).or_default() += 1;
        }
    }
}

fn histogram() -> Result<Histogram<u64>, CtlError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| CtlError::Failed(format!("histogram: {e}")))
}

/// The operation types of a workload.
fn kinds_of(workload: Workload) -> &'static [OpKind] {
    match workload {
        Workload::A | Workload::B => &[OpKind::Read, OpKind::Update],
        Workload::C => &[OpKind::Read],
        Workload::Write => &[OpKind::Update],
        Workload::Counter => &[OpKind::Incr],
        Workload::Set => &[OpKind::SetAdd, OpKind::SetRemove],
    }
}

/// Counters the progress line and the report read.
#[derive(Debug, Default)]
struct Tally {
    done: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    absent: AtomicU64,
    acked_delta: AtomicI64,
    indeterminate_delta: AtomicI64,
    late: AtomicU64,
    max_behind_us: AtomicU64,
}

/// What the generator drives: Meridian through the client library, or a peer store.
#[derive(Debug, Clone)]
enum Backend {
    Meridian(Client),
    Peer(Arc<Peer>),
}

/// A failed operation: its stable code, and whether it may have taken effect (an
/// indeterminate counter increment).
#[derive(Debug)]
struct OpError {
    code: String,
    indeterminate: bool,
}

impl From<meridian_client::Error> for OpError {
    fn from(e: meridian_client::Error) -> Self {
        OpError { code: e.code().to_owned(), indeterminate: matches!(e, meridian_client::Error::Indeterminate { .. }) }
    }
}

impl From<PeerError> for OpError {
    fn from(e: PeerError) -> Self {
        OpError { code: e.code.to_owned(), indeterminate: false }
    }
}

/// Runs one operation; `Ok(false)` for a read that found no value.
async fn execute(backend: &Backend, plan: &Plan, kind: OpKind, index: u64, member: u64) -> Result<bool, OpError> {
    let key = key_name(&plan.prefix, index);
    let ks = plan.keyspace.as_str();
    let client = match backend {
        Backend::Meridian(c) => c,
        Backend::Peer(p) => {
            return match kind {
                OpKind::Read => Ok(p.get(key.as_bytes()).await?),
                OpKind::Update => Ok(p.put(key.as_bytes(), &plan.value).await.map(|_| true)?),
                other => Err(OpError { code: format!("unsupported_{}", other.as_str()), indeterminate: false }),
            };
        }
    };
    Ok(match kind {
        OpKind::Read => client.get(ks, &key).await?.is_some(),
        OpKind::Update => client.put(ks, &key, plan.value.clone(), None).await.map(|_| true)?,
        OpKind::Incr => client.incr(ks, &plan.counter_key, 1).await.map(|_| true)?,
        OpKind::SetAdd => client.sadd(ks, &key, &[&format!("m{member}")]).await.map(|_| true)?,
        OpKind::SetRemove => client.srem(ks, &key, &[&format!("m{member}")], None).await.map(|_| true)?,
    })
}

/// One operation's draws.
fn draw(rng: &mut SmallRng, plan: &Plan) -> (OpKind, u64, u64) {
    let kind = plan.workload.next_op(rng.random::<f64>());
    let index = plan.chooser.next(rng.random::<f64>());
    let member = rng.random_range(0..SET_MEMBERS);
    (kind, index, member)
}

fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs an operation and records it, its latency measured from `since`.
async fn run_one(
    client: &Backend,
    plan: &Plan,
    (kind, index, member): (OpKind, u64, u64),
    since: Instant,
    recorder: &Mutex<Recorder>,
    tally: &Tally,
) {
    tally.in_flight.fetch_add(1, Ordering::Relaxed);
    let result = execute(client, plan, kind, index, member).await;
    let latency = since.elapsed();
    tally.in_flight.fetch_sub(1, Ordering::Relaxed);
    tally.done.fetch_add(1, Ordering::Relaxed);
    let code = match &result {
        Ok(found) => {
            if !found {
                tally.absent.fetch_add(1, Ordering::Relaxed);
            }
            if kind == OpKind::Incr {
                tally.acked_delta.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
        Err(e) => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            if kind == OpKind::Incr && e.indeterminate {
                tally.indeterminate_delta.fetch_add(1, Ordering::Relaxed);
            }
            Some(e.code.clone())
        }
    };
    lock(recorder).record(kind, latency, code.as_deref());
}

/// How the operations were offered.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Open { rate: f64, max_in_flight: usize },
    Closed { workers: usize },
}

async fn bench(args: BenchArgs, all: Vec<RegionEndpoints>, targets: Vec<RegionEndpoints>) -> Result<(), CtlError> {
    let through_node = args.node.is_some();
    let backend = match args.peer {
        Some(kind) => {
            if !matches!(args.workload, Workload::A | Workload::B | Workload::C | Workload::Write) {
                return Err(CtlError::Usage(format!(
                    "--peer runs the register workloads (a, b, c, write), not {}",
                    args.workload
                )));
            }
            let pool = args.concurrency.map_or(DEFAULT_WORKERS, |c| c as usize).min(256);
            let peer = Peer::connect(kind, &args.peer_addr, pool, args.request_timeout).await.map_err(|e| {
                CtlError::Unreachable { url: args.peer_addr.join(","), reason: format!("{}: {}", e.code, e.message) }
            })?;
            Backend::Peer(Arc::new(peer))
        }
        None => Backend::Meridian(build_client(targets.clone(), &args, through_node).await?),
    };
    let client = match &backend {
        Backend::Meridian(c) => Some(c.clone()),
        Backend::Peer(_) => None,
    };
    let mode = match args.rate {
        Some(rate) => {
            let max = args.concurrency.map_or(DEFAULT_MAX_IN_FLIGHT, |c| c as usize);
            OpenLoop::new(rate).ok_or_else(|| CtlError::Usage("--rate must be a positive number".into()))?;
            Mode::Open { rate, max_in_flight: max }
        }
        None => Mode::Closed { workers: args.concurrency.map_or(DEFAULT_WORKERS, |c| c as usize) },
    };
    let mut value = vec![0u8; args.value_size as usize];
    SmallRng::seed_from_u64(args.seed).fill(&mut value[..]);
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let plan = Arc::new(Plan {
        workload: args.workload,
        keyspace: args.keyspace.clone().unwrap_or_else(|| args.workload.default_keyspace().to_owned()),
        prefix: args.key_prefix.clone(),
        chooser: KeyChooser::new(args.keys, args.distribution),
        value: Bytes::from(value),
        counter_key: format!("{}counter:{run_id}", args.key_prefix),
    });
    if args.workload.reads() && args.preload == 0 {
        eprintln!(
            "note: workload {} reads keys; without --preload N, reads of unwritten keys find nothing",
            args.workload
        );
    }
    if args.preload > 0 {
        preload(&backend, &plan, args.preload, args.concurrency.map_or(DEFAULT_WORKERS, |c| c as usize)).await;
    }
    let admin = args
        .access()?
        .reqwest()?
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot build the HTTP client: {e}")))?;
    let lag_before = if args.lag {
        if all.len() < 2 {
            return Err(CtlError::Usage("--lag needs an endpoints file with at least two regions".into()));
        }
        Some(crate::cli::lag::snapshot(&admin, &all).await)
    } else {
        None
    };
    let recorder = Arc::new(Mutex::new(Recorder::new(kinds_of(args.workload))?));
    let tally = Arc::new(Tally::default());
    let progress = tokio::spawn(progress_loop(Arc::clone(&tally)));
    let start = Instant::now();
    match mode {
        Mode::Open { rate, max_in_flight } => {
            open_loop(&backend, &plan, rate, max_in_flight, args.duration, args.seed, &recorder, &tally).await
        }
        Mode::Closed { workers } => {
            closed_loop(&backend, &plan, workers, args.duration, args.seed, &recorder, &tally).await
        }
    }
    let elapsed = start.elapsed();
    progress.abort();
    end_progress_line();
    let counter = if args.workload == Workload::Counter {
        Some(counter_check(&args, &all, &plan, &tally, through_node).await)
    } else {
        None
    };
    let lag = match &lag_before {
        Some(before) => {
            eprintln!("waiting for the WAN backlog to drain (at most {:?})", args.converge_timeout);
            let (drained, waited) = crate::cli::lag::wait_drained(&admin, &all, args.converge_timeout).await;
            let after = crate::cli::lag::snapshot(&admin, &all).await;
            let mut failed = before.failed.clone();
            failed.extend(after.failed.iter().cloned());
            Some(crate::cli::lag::report(&crate::cli::lag::delta(before, &after), drained, waited, &failed))
        }
        None => None,
    };
    let mut report =
        report(&args, mode, &targets, elapsed, &lock(&recorder), &tally, client.as_ref(), counter.as_ref());
    if let Some(lag) = lag {
        report["replication_lag"] = lag;
    }
    match args.output {
        CtlOutput::Json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string())),
        CtlOutput::Table => print!("{}", report_table(&report)),
    }
    match counter {
        Some(c) if !c.converged => Err(CtlError::Failed(format!(
            "the counter did not converge within {:?}: expected {}..={}, regions show {}",
            args.converge_timeout,
            c.expected_min,
            c.expected_max,
            c.values
                .iter()
                .map(|(r, v)| format!("{r}={}", v.map_or_else(|| "?".to_owned(), |v| v.to_string())))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Writes keys `0..n` (closed loop, not measured), with a progress line.
async fn preload(client: &Backend, plan: &Arc<Plan>, n: u64, workers: usize) {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers.min(n as usize).max(1) {
        let (client, plan, next, failed) = (client.clone(), Arc::clone(plan), Arc::clone(&next), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                if execute(&client, &plan, OpKind::Update, i, 0).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    let mut line = ProgressLine::new();
    loop {
        let done = next.load(Ordering::Relaxed).min(n);
        line.show(&format!("preloading: {done}/{n} keys written, {} failed", failed.load(Ordering::Relaxed)));
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    line.finish();
    eprintln!(
        "preloaded {n} keys in {:.1}s ({} failed)",
        start.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
}

#[allow(clippy::too_many_arguments)]
async fn open_loop(
    client: &Backend,
    plan: &Arc<Plan>,
    rate: f64,
    max_in_flight: usize,
    duration: Duration,
    seed: u64,
    recorder: &Arc<Mutex<Recorder>>,
    tally: &Arc<Tally>,
) {
    let Some(schedule) = OpenLoop::new(rate) else { return };
    let total = schedule.ops_within(duration);
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut rng = SmallRng::seed_from_u64(seed);
    let start = Instant::now();
    for i in 0..total {
        let due = start + schedule.due(i);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { break };
        let behind = due.elapsed();
        if behind > LATE {
            tally.late.fetch_add(1, Ordering::Relaxed);
        }
        tally.max_behind_us.fetch_max(behind.as_micros() as u64, Ordering::Relaxed);
        let op = draw(&mut rng, plan);
        let (client, plan, recorder, tally) =
            (client.clone(), Arc::clone(plan), Arc::clone(recorder), Arc::clone(tally));
        tokio::spawn(async move {
            run_one(&client, &plan, op, due, &recorder, &tally).await;
            drop(permit);
        });
    }
    // Every operation answered (or timed out, within the client's bounded retries).
    let _ = permits.acquire_many(max_in_flight as u32).await;
}

async fn closed_loop(
    client: &Backend,
    plan: &Arc<Plan>,
    workers: usize,
    duration: Duration,
    seed: u64,
    recorder: &Arc<Mutex<Recorder>>,
    tally: &Arc<Tally>,
) {
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, plan, recorder, tally) =
            (client.clone(), Arc::clone(plan), Arc::clone(recorder), Arc::clone(tally));
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            while Instant::now() < end {
                let op = draw(&mut rng, &plan);
                run_one(&client, &plan, op, Instant::now(), &recorder, &tally).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The counter as every region shows it at the end.
#[derive(Debug, Clone)]
struct CounterCheck {
    key: String,
    expected_min: i64,
    expected_max: i64,
    values: Vec<(String, Option<i64>)>,
    converged: bool,
    waited: Duration,
}

async fn counter_check(
    args: &BenchArgs,
    all: &[RegionEndpoints],
    plan: &Plan,
    tally: &Tally,
    through_node: bool,
) -> CounterCheck {
    let expected_min = tally.acked_delta.load(Ordering::Relaxed);
    let expected_max = expected_min + tally.indeterminate_delta.load(Ordering::Relaxed);
    let mut readers = Vec::new();
    for r in all {
        readers.push((r.name.clone(), build_client(vec![r.clone()], args, through_node).await.ok()));
    }
    let start = Instant::now();
    let mut line = ProgressLine::new();
    loop {
        let mut values = Vec::new();
        for (name, reader) in &readers {
            let v = match reader {
                Some(c) => c.counter(&plan.keyspace, &plan.counter_key).await.ok(),
                None => None,
            };
            values.push((name.clone(), v));
        }
        let first = values.first().and_then(|(_, v)| *v);
        let converged = first.is_some_and(|f| (expected_min..=expected_max).contains(&f))
            && values.iter().all(|(_, v)| *v == first);
        let waited = start.elapsed();
        if converged || waited >= args.converge_timeout {
            line.finish();
            return CounterCheck {
                key: plan.counter_key.clone(),
                expected_min,
                expected_max,
                values,
                converged,
                waited,
            };
        }
        let shown: Vec<String> = values
            .iter()
            .map(|(r, v)| format!("{r}={}", v.map_or_else(|| "?".to_owned(), |v| v.to_string())))
            .collect();
        line.show(&format!("counter: expecting {expected_min}..={expected_max}, regions show {}", shown.join(", ")));
        tokio::time::sleep(CONVERGE_POLL).await;
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "mean": h.mean() / 1000.0,
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &BenchArgs,
    mode: Mode,
    targets: &[RegionEndpoints],
    elapsed: Duration,
    rec: &Recorder,
    tally: &Tally,
    client: Option<&Client>,
    counter: Option<&CounterCheck>,
) -> Value {
    let done = tally.done.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let generator = match mode {
        Mode::Open { rate, max_in_flight } => {
            let late = tally.late.load(Ordering::Relaxed);
            json!({
                "mode": "open", "target_rate": rate, "max_in_flight": max_in_flight,
                "offered_rate": done as f64 / secs, "late_ops": late,
                "late_threshold_ms": LATE.as_millis() as u64,
                "max_behind_ms": ms(tally.max_behind_us.load(Ordering::Relaxed)),
                "fell_behind": late * 100 > done.max(1),
            })
        }
        Mode::Closed { workers } => json!({"mode": "closed", "concurrency": workers}),
    };
    let client_section = client.map(|client| {
        let events: Vec<Value> = client
            .failover_events()
            .iter()
            .map(|e| {
                json!({
                    "unix_ms": e.unix_ms, "from": e.from, "to": e.to, "reason": e.reason.as_str(),
                    "recovery_ms": e.down_since.map(|d| e.at.saturating_duration_since(d).as_secs_f64() * 1000.0),
                })
            })
            .collect();
        json!({
            "metrics": client.metrics(),
            "regions": client.regions().iter().map(|r| json!({
                "region": r.name, "rtt_ms": r.rtt.map(|d| d.as_secs_f64() * 1000.0), "down": r.down,
            })).collect::<Vec<_>>(),
            "failover_events": events,
        })
    });
    let by_op: serde_json::Map<String, Value> =
        rec.by_op.iter().filter(|(_, h)| !h.is_empty()).map(|(k, h)| (k.as_str().to_owned(), percentiles(h))).collect();
    json!({
        "parameters": {
            "workload": args.workload.as_str(),
            "keyspace": args.keyspace.clone().unwrap_or_else(|| args.workload.default_keyspace().to_owned()),
            "duration_s": args.duration.as_secs_f64(),
            "rate": args.rate,
            "concurrency": args.concurrency,
            "keys": args.keys,
            "distribution": format!("{:?}", args.distribution).to_lowercase(),
            "value_size": args.value_size,
            "consistency": args.consistency.map(|c| c.as_str()),
            "preload": args.preload,
            "regions": targets.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            "seed": args.seed,
        },
        "elapsed_s": secs,
        "operations": done,
        "ok": done - errors,
        "errors": errors,
        "throughput_ops_s": (done - errors) as f64 / secs,
        "reads_absent": tally.absent.load(Ordering::Relaxed),
        "latency_ms": percentiles(&rec.all),
        "latency_by_op_ms": by_op,
        "errors_by_code": rec.errors,
        "generator": generator,
        "target": args.peer.map_or("meridian", |p| p.as_str()),
        "client": client_section,
        "counter": counter.map(|c| json!({
            "key": c.key,
            "expected_min": c.expected_min,
            "expected_max": c.expected_max,
            "acknowledged": c.expected_min,
            "indeterminate": c.expected_max - c.expected_min,
            "regions": c.values.iter().map(|(r, v)| json!({"region": r, "value": v})).collect::<Vec<_>>(),
            "converged": c.converged,
            "waited_ms": c.waited.as_secs_f64() * 1000.0,
        })),
    })
}

fn report_table(r: &Value) -> String {
    let f = |v: &Value| v.as_f64().map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    let p = &r["parameters"];
    let mut out = format!(
        "{}workload {} on {} ({}), {} keys {}, values {} B, consistency {}\n",
        match r["target"].as_str() {
            Some(t) if t != "meridian" => format!("peer {t}: "),
            _ => String::new(),
        },
        p["workload"].as_str().unwrap_or("?"),
        p["regions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        p["keyspace"].as_str().unwrap_or("?"),
        p["keys"],
        p["distribution"].as_str().unwrap_or("?"),
        p["value_size"],
        p["consistency"].as_str().unwrap_or("keyspace default"),
    );
    let g = &r["generator"];
    match g["mode"].as_str() {
        Some("open") => out.push_str(&format!(
            "open loop: target {} ops/s, offered {} ops/s, {} ops sent over {} ms late (max {} ms behind){}\n",
            f(&g["target_rate"]),
            f(&g["offered_rate"]),
            g["late_ops"],
            g["late_threshold_ms"],
            f(&g["max_behind_ms"]),
            if g["fell_behind"].as_bool() == Some(true) {
                " - THE GENERATOR FELL BEHIND: the target rate was not offered"
            } else {
                ""
            }
        )),
        _ => out.push_str(&format!(
            "closed loop: {} workers back to back (latency is service time; stalls are hidden)\n",
            g["concurrency"]
        )),
    }
    out.push_str(&format!(
        "{} operations in {}s: {} ok, {} errors, {} ops/s\n",
        r["operations"],
        f(&r["elapsed_s"]),
        r["ok"],
        r["errors"],
        f(&r["throughput_ops_s"])
    ));
    let mut t = crate::cli::ctl::Table::new(&["Op", "Count", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"]);
    let mut row = |name: &str, h: &Value| {
        t.row(vec![
            name.to_owned(),
            h["count"].to_string(),
            f(&h["p50"]),
            f(&h["p95"]),
            f(&h["p99"]),
            f(&h["p999"]),
            f(&h["max"]),
        ])
    };
    row("all", &r["latency_ms"]);
    if let Some(by) = r["latency_by_op_ms"].as_object() {
        for (name, h) in by {
            row(name, h);
        }
    }
    out.push_str(&t.render());
    if let Some(errors) = r["errors_by_code"].as_object().filter(|e| !e.is_empty()) {
        let list: Vec<String> = errors.iter().map(|(code, n)| format!("{code} {n}")).collect();
        out.push_str(&format!("errors by code: {}\n", list.join(", ")));
    }
    if r["reads_absent"].as_u64().is_some_and(|n| n > 0) {
        out.push_str(&format!("reads that found no value: {}\n", r["reads_absent"]));
    }
    let m = &r["client"]["metrics"];
    if m.is_object() {
        out.push_str(&format!(
            "client: {} requests, {} retries, {} failovers, current region {}\n",
            m["requests"],
            m["retries"],
            m["failovers"],
            m["current_region"].as_str().unwrap_or("-")
        ));
    }
    if let Some(events) = r["client"]["failover_events"].as_array().filter(|e| !e.is_empty()) {
        for e in events {
            out.push_str(&format!(
                "  region switch at {} ms: {} -> {} ({}{})\n",
                e["unix_ms"],
                e["from"].as_str().unwrap_or("?"),
                e["to"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?"),
                e["recovery_ms"].as_f64().map_or_else(String::new, |ms| format!(", {ms:.0} ms after the failure"))
            ));
        }
    }
    if r["replication_lag"].is_object() {
        out.push_str(&crate::cli::lag::table(&r["replication_lag"]));
    }
    let c = &r["counter"];
    if c.is_object() {
        let values: Vec<String> = c["regions"]
            .as_array()
            .map(|a| a.iter().map(|v| format!("{}={}", v["region"].as_str().unwrap_or("?"), v["value"])).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "counter {}: expected {}..={} ({} acknowledged, {} indeterminate); final {}; {}\n",
            c["key"].as_str().unwrap_or("?"),
            c["expected_min"],
            c["expected_max"],
            c["acknowledged"],
            c["indeterminate"],
            values.join(", "),
            if c["converged"].as_bool() == Some(true) {
                format!("converged (read back after {} ms)", f(&c["waited_ms"]))
            } else {
                "DID NOT CONVERGE".to_owned()
            }
        ));
    }
    out
}

/// The progress line of the measured phase, about once a second.
async fn progress_loop(tally: Arc<Tally>) {
    let start = Instant::now();
    let mut line = ProgressLine::new();
    let mut last = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = tally.done.load(Ordering::Relaxed);
        line.show(&format!(
            "[{:>4.0}s] {done} ops, {} ops/s, {} errors, {} in flight",
            start.elapsed().as_secs_f64(),
            done - last,
            tally.errors.load(Ordering::Relaxed),
            tally.in_flight.load(Ordering::Relaxed)
        ));
        last = done;
    }
}

/// A line on stderr, rewritten in place on a terminal, else printed as it comes.
#[derive(Debug)]
struct ProgressLine {
    in_place: bool,
    open: bool,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine { in_place: std::io::stderr().is_terminal(), open: false }
    }

    fn show(&mut self, text: &str) {
        // Progress is best effort: a closed stderr must not stop the run.
        let mut err = std::io::stderr().lock();
        if self.in_place {
            let _ = write!(err, "\r\x1b[K{text}");
            self.open = true;
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }
}

/// Ends the measured phase's progress line (its task was aborted mid-line).
fn end_progress_line() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        use clap::Parser as _;
        TestCli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory as _;
        TestCli::command().debug_assert();
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "0s", "-1s", "10x", "1e3s", "9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let a = parse(&[]).expect("defaults");
        assert_eq!(a.workload, Workload::A);
        assert_eq!(a.duration, Duration::from_secs(30));
        assert_eq!((a.keys, a.value_size, a.preload, a.rate, a.concurrency), (100_000, 1024, 0, None, None));
        assert_eq!(a.distribution, Distribution::Uniform);
        let a = parse(&[
            "--workload",
            "counter",
            "--rate",
            "2000",
            "--concurrency",
            "64",
            "--region",
            "us-east,eu-west",
            "--region",
            "ap-southeast",
            "--distribution",
            "zipfian",
            "--consistency",
            "one",
            "--output",
            "json",
            "--duration",
            "5s",
        ])
        .expect("parse");
        assert_eq!(a.workload, Workload::Counter);
        assert_eq!((a.rate, a.concurrency), (Some(2000.0), Some(64)));
        assert_eq!(a.region, ["us-east", "eu-west", "ap-southeast"]);
        assert_eq!(
            (a.distribution, a.consistency, a.output),
            (Distribution::Zipfian, Some(Consistency::One), CtlOutput::Json)
        );
        for bad in [
            &["--workload", "d"][..],
            &["--duration", "forever"],
            &["--concurrency", "0"],
            &["--keys", "0"],
            &["--value-size", "0"],
            &["--distribution", "normal"],
            &["--node", "h:1", "--endpoints-file", "e.json"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_workload_records_the_operations_it_draws() {
        for w in Workload::ALL {
            for i in 0..100 {
                let op = w.next_op(f64::from(i) / 100.0);
                assert!(kinds_of(w).contains(&op), "{w} drew {op:?}");
            }
        }
    }

    #[test]
    fn the_recorder_clamps_and_counts_errors() {
        let mut r = Recorder::new(kinds_of(Workload::A)).expect("recorder");
        r.record(OpKind::Read, Duration::from_millis(2), None);
        r.record(OpKind::Update, Duration::from_secs(3600), Some("timeout"));
        r.record(OpKind::Update, Duration::ZERO, Some("timeout"));
        assert_eq!(r.all.len(), 3);
        assert_eq!(r.by_op[&OpKind::Update].len(), 2);
        assert!(r.all.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 1000, "clamped to the histogram's range");
        assert_eq!(r.errors["timeout"], 2);
        let p = percentiles(&r.by_op[&OpKind::Read]);
        assert!((p["p50"].as_f64().expect("p50") - 2.0).abs() < 0.01, "{p}");
        assert_eq!(percentiles(&histogram().expect("h")), json!({"count": 0}));
    }

    #[test]
    fn the_table_says_what_was_measured_and_warns_when_the_generator_fell_behind() {
        let report = json!({
            "parameters": {"workload": "counter", "regions": ["us-east"], "keyspace": "counters", "keys": 1,
                "distribution": "uniform", "value_size": 1024, "consistency": null},
            "generator": {"mode": "open", "target_rate": 1000.0, "offered_rate": 700.0, "late_ops": 300,
                "late_threshold_ms": 10, "max_behind_ms": 250.0, "fell_behind": true},
            "operations": 1000, "elapsed_s": 1.0, "ok": 999, "errors": 1, "throughput_ops_s": 999.0,
            "latency_ms": {"count": 1000, "p50": 1.0, "p95": 2.0, "p99": 3.0, "p999": 4.0, "max": 5.0},
            "latency_by_op_ms": {"incr": {"count": 1000, "p50": 1.0, "p95": 2.0, "p99": 3.0, "p999": 4.0, "max": 5.0}},
            "errors_by_code": {"indeterminate": 1},
            "reads_absent": 0,
            "client": {"metrics": {"requests": 1001, "retries": 1, "failovers": 1, "current_region": "us-east"},
                "failover_events": [
                    {"unix_ms": 5, "from": "a", "to": "b", "reason": "failover", "recovery_ms": 1200.0},
                ]},
            "counter": {"key": "c", "expected_min": 999, "expected_max": 1000, "acknowledged": 999, "indeterminate": 1,
                "regions": [{"region": "us-east", "value": 1000}], "converged": true, "waited_ms": 10.0},
        });
        let text = report_table(&report);
        assert!(text.contains("THE GENERATOR FELL BEHIND"), "{text}");
        assert!(text.contains("errors by code: indeterminate 1"), "{text}");
        assert!(text.contains("region switch at 5 ms: a -> b (failover, 1200 ms after the failure)"), "{text}");
        assert!(
            text.contains("expected 999..=1000 (999 acknowledged, 1 indeterminate); final us-east=1000; converged"),
            "{text}"
        );
        assert!(text.contains("incr  1000   1.000"), "{text}");
    }
}
