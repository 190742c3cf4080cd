//! `meridian drill failover`: a regional failover drill against a running cluster.
//!
//! The drill runs a workload with the client library in every region, fences one region (its
//! nodes refuse clients with `503 region_fenced`, so its clients fail over, and its WAN links
//! are cut), keeps the workload going, lifts the fence, stops, waits for the regions to
//! converge and checks the recorded history. The algorithm, its invariants and the definition
//! of every figure are in `docs/drill.md`; in short:
//!
//! - every operation is recorded in a [`History`] (invoke, then ok / fail / info with the
//!   region that answered), and the figures per client ([`client_figures`]) are computed
//!   from that history and the drill's timeline, which is on the history's clock: a test can
//!   recompute them from the history file and compare;
//! - RTO of a client of the fenced region: from the fence to the first acknowledged operation
//!   it invoked after the fence that another region served; failback: from the unfence to
//!   the first acknowledged operation the home region served again;
//! - RPO: the fenced region's change-log entries not yet acknowledged by each peer region at
//!   the cut (summed over its nodes, read once every node reports the fence), and the time
//!   since that peer's last acknowledgement;
//! - convergence: the first time, after the workload stopped, that no node of any region has a
//!   backlog towards any peer and every region's Merkle root
//!   (`GET /api/v1/cluster/digest/region`) is the same;
//! - the verdict: the history checker ([`meridian_history::check`]) over the final state read
//!   through every node, and convergence. Exit code 0 when both hold, 1 when not, 2 when the
//!   drill could not run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use meridian_client::{Client, Consistency, Error as ClientError, RegionEndpoints, SwitchReason};
use meridian_history::{check, collect_final_with, Completion, Event, EventKind, History, Kind, Op, OpResult, Report};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cli::bench::parse_duration;
use crate::cli::ctl::{resolve_regions, CtlError, CtlOutput, DEFAULT_ENDPOINTS_FILE};

/// The keyspaces the drill writes, one per value type, created in every region if missing.
pub const KEYSPACES: [(&str, Kind); 4] =
    [("drill_lww", Kind::Lww), ("drill_mvr", Kind::Mvr), ("drill_counters", Kind::Counter), ("drill_sets", Kind::Set)];
/// Members a set key draws from.
const SET_MEMBERS: u32 = 8;
/// Poll interval of the fence propagation and convergence waits.
const POLL: Duration = Duration::from_millis(250);
/// Time allowed for one admin request (fence, status, digest).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `meridian drill ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DrillCommand {
    /// Fence one region under load, let its clients fail over, heal, and check that the
    /// regions converge with no acknowledged write lost.
    Failover(FailoverArgs),
}

/// Options of `meridian drill failover`.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// The region to fence.
    #[arg(long)]
    pub region: String,
    /// Length of the workload (`60s`, `2m`); the fence covers its middle half unless
    /// --fence-at / --fence-for say otherwise.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// When to fence, from the start of the workload (default: a quarter of --duration).
    #[arg(long, value_parser = parse_duration)]
    pub fence_at: Option<Duration>,
    /// How long the fence holds (default: half of --duration).
    #[arg(long, value_parser = parse_duration)]
    pub fence_for: Option<Duration>,
    /// An endpoints file written by `meridian dev` (default: ./meridian-dev/endpoints.json).
    #[arg(long, value_name = "FILE")]
    pub endpoints_file: Option<PathBuf>,
    /// Clients per region (each prefers its own region and fails over to the others).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients_per_region: u64,
    /// Operations per second of each client.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Keys per keyspace the workload draws from.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub keys: u64,
    /// Seed of the operation and key draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time allowed for one client request.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long to wait for the regions to converge after the workload stops.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub converge_timeout: Duration,
    /// Where to write the history (JSONL; default: ./meridian-drill-<run>.jsonl).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Output format: a report for people, or one JSON document.
    #[arg(long, value_enum, default_value_t = CtlOutput::Table)]
    pub output: CtlOutput,
    /// Bearer token and CA of the API.
    #[command(flatten)]
    pub access: crate::cli::access::AccessArgs,
}

/// Runs `meridian drill`.
pub fn run(command: DrillCommand) -> ExitCode {
    let DrillCommand::Failover(args) = command;
    match run_failover(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_failover(args: FailoverArgs) -> Result<bool, CtlError> {
    let plan = Plan::of(&args)?;
    let regions = resolve_regions(None, args.endpoints_file.as_deref(), None, Path::new(DEFAULT_ENDPOINTS_FILE))?;
    // Node addresses as base URLs (`http://host:port`), for the admin calls; the client
    // takes them as they are.
    let mut resolved = Vec::new();
    for r in &regions {
        let mut nodes = Vec::new();
        for n in &r.nodes {
            nodes.push(meridian_client::base_url(&n.http).map_err(|e| CtlError::Usage(e.to_string()))?);
        }
        resolved.push(RegionEndpoints::new(&r.name, nodes));
    }
    let regions = resolved;
    if regions.len() < 2 {
        return Err(CtlError::Usage(format!(
            "a failover drill needs at least two regions; the endpoints list {}",
            regions.len()
        )));
    }
    if !regions.iter().any(|r| r.name == args.region) {
        let known: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        return Err(CtlError::Usage(format!("no region {:?} (regions: {})", args.region, known.join(", "))));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot start the async runtime: {e}")))?;
    let outcome = runtime.block_on(drill(&args, &plan, regions))?;
    match args.output {
        CtlOutput::Table => print!("{}", report_table(&outcome.report)),
        CtlOutput::Json => {
            println!("{}", serde_json::to_string_pretty(&outcome.report).map_err(|e| CtlError::Failed(e.to_string()))?)
        }
    }
    Ok(outcome.report.passed)
}

/// The phases of a run, resolved from the arguments.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    fence_at: Duration,
    fence_for: Duration,
    duration: Duration,
    interval: Duration,
}

impl Plan {
    fn of(args: &FailoverArgs) -> Result<Plan, CtlError> {
        let fence_at = args.fence_at.unwrap_or(args.duration / 4);
        let fence_for = args.fence_for.unwrap_or(args.duration / 2);
        if fence_at + fence_for > args.duration {
            return Err(CtlError::Usage(format!(
                "the fence ({:?} from {:?}) must end within --duration {:?}",
                fence_for, fence_at, args.duration
            )));
        }
        if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 10_000.0) {
            return Err(CtlError::Usage(format!("--rate {} must be in (0, 10000] operations per second", args.rate)));
        }
        Ok(Plan { fence_at, fence_for, duration: args.duration, interval: Duration::from_secs_f64(1.0 / args.rate) })
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// When things happened, in ms on the history's clock (`t` of its events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The workload started.
    pub start: u64,
    /// The fence request was acknowledged.
    pub fence: u64,
    /// Every node of the fenced region reported the fence.
    pub fenced_everywhere: Option<u64>,
    /// The unfence request was acknowledged.
    pub unfence: u64,
    /// The workload stopped (every client's last operation completed).
    pub stop: u64,
    /// The regions converged.
    pub converged: Option<u64>,
}

/// One client's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFigures {
    /// The client's name in the history.
    pub client: String,
    /// The region it prefers.
    pub home: String,
    /// Operations invoked.
    pub ops: u64,
    /// Acknowledged.
    pub ok: u64,
    /// Known not applied.
    pub fail: u64,
    /// Indeterminate.
    pub info: u64,
    /// Completions that were not `ok` before, during and after the fence.
    pub errors_before: u64,
    /// See `errors_before`.
    pub errors_during: u64,
    /// See `errors_before`.
    pub errors_after: u64,
    /// Not-ok completions by error code (the first word of the reason).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Acknowledged operations by the region that served them.
    pub served_by: BTreeMap<String, u64>,
    /// For a client of the fenced region: ms from the fence to its first acknowledged
    /// operation, invoked after the fence, that another region served.
    pub rto_ms: Option<u64>,
    /// For a client of the fenced region: ms from the unfence to its first acknowledged
    /// operation, invoked after the unfence, that its home region served.
    pub failback_ms: Option<u64>,
    /// The failovers the client itself recorded: ms from marking its region down to the first
    /// success elsewhere.
    pub detected_failovers_ms: Vec<u64>,
}

/// The backlog of the fenced region towards one peer at the cut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RpoFigure {
    /// The peer region.
    pub peer: String,
    /// Change-log entries of the fenced region not yet acknowledged by the peer, summed over
    /// its nodes.
    pub backlog: u64,
    /// Seconds from the peer's oldest last acknowledgement over the nodes with a backlog to
    /// the cut (a worst case); 0 with no backlog.
    pub seconds: f64,
    /// Nodes of the fenced region that did not answer (their backlog is not counted).
    pub unanswered: Vec<String>,
}

/// What convergence looked like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Whether the regions converged within --converge-timeout.
    pub converged: bool,
    /// ms from the unfence to convergence.
    pub after_heal_ms: Option<u64>,
    /// ms from the end of the workload to convergence.
    pub after_stop_ms: Option<u64>,
    /// The last Merkle root (hex) and record count of each region.
    pub roots: BTreeMap<String, (String, u64)>,
    /// Whether every region had the same root at the end.
    pub roots_equal: bool,
    /// The backlog summed over every node and peer at the end.
    pub backlog: u64,
    /// What was still wrong when it gave up.
    pub reason: Option<String>,
}

/// The checker's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// No contract broken.
    pub ok: bool,
    /// Events in the history.
    pub events: usize,
    /// Keys checked.
    pub keys: usize,
    /// The first violations (contract, keyspace, key, message).
    pub violations: Vec<String>,
    /// Violations in all.
    pub violation_count: usize,
}

/// The whole report (`--output json` prints it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The fenced region.
    pub region: String,
    /// Every region.
    pub regions: Vec<String>,
    /// Workload length, s.
    pub duration_s: f64,
    /// Operations per second of each client.
    pub rate_per_client: f64,
    /// When things happened.
    pub timeline_ms: Timeline,
    /// Per client.
    pub clients: Vec<ClientFigures>,
    /// Totals over the clients.
    pub totals: ClientFigures,
    /// Per peer of the fenced region.
    pub rpo: Vec<RpoFigure>,
    /// The backlog of the fenced region per peer when the fence was lifted.
    pub backlog_at_heal: BTreeMap<String, u64>,
    /// After the heal.
    pub convergence: Convergence,
    /// The history checker.
    pub checker: Verdict,
    /// Where the history is.
    pub history: String,
    /// Convergence and the checker both passed.
    pub passed: bool,
}

/// The error code of a not-ok completion's reason: its first word (`region_fenced: ...`).
pub fn reason_code(reason: Option<&str>) -> String {
    let r = reason.unwrap_or("");
    r.split(|c: char| c == ':' || c.is_whitespace()).next().filter(|s| !s.is_empty()).unwrap_or("unknown").to_owned()
}

/// The figures of every client, from the history and the timeline alone (plus each client's
/// home and the failovers it recorded). `fenced` is the fenced region. Clients are sorted by
/// name.
pub fn client_figures(
    events: &[Event],
    timeline: &Timeline,
    homes: &BTreeMap<String, String>,
    fenced: &str,
) -> Vec<ClientFigures> {
    let mut figures: BTreeMap<&str, ClientFigures> = homes
        .iter()
        .map(|(c, h)| (c.as_str(), ClientFigures { client: c.clone(), home: h.clone(), ..ClientFigures::default() }))
        .collect();
    let mut invoked_at: BTreeMap<u64, u64> = BTreeMap::new();
    for e in events {
        let Some(f) = figures.get_mut(e.client.as_str()) else { continue };
        match e.kind {
            EventKind::Invoke => {
                f.ops += 1;
                invoked_at.insert(e.id, e.t);
            }
            EventKind::Ok => {
                f.ok += 1;
                *f.served_by.entry(e.region.clone()).or_default() += 1;
                let invoked = invoked_at.get(&e.id).copied().unwrap_or(0);
                if f.home == fenced {
                    if f.rto_ms.is_none() && invoked >= timeline.fence && e.region != fenced {
                        f.rto_ms = Some(e.t - timeline.fence);
                    }
                    if f.failback_ms.is_none() && invoked >= timeline.unfence && e.region == fenced {
                        f.failback_ms = Some(e.t - timeline.unfence);
                    }
                }
            }
            EventKind::Fail | EventKind::Info => {
                if e.kind == EventKind::Fail {
                    f.fail += 1;
                } else {
                    f.info += 1;
                }
                *f.errors_by_code.entry(reason_code(e.reason.as_deref())).or_default() += 1;
                if e.t < timeline.fence {
                    f.errors_before += 1;
                } else if e.t < timeline.unfence {
                    f.errors_during += 1;
                } else {
                    f.errors_after += 1;
                }
            }
        }
    }
    figures.into_values().collect()
}

/// The sums of the counts of `clients` (no RTO: those are per client).
pub fn totals(clients: &[ClientFigures]) -> ClientFigures {
    let mut t = ClientFigures { client: "all".into(), home: "-".into(), ..ClientFigures::default() };
    for c in clients {
        t.ops += c.ops;
        t.ok += c.ok;
        t.fail += c.fail;
        t.info += c.info;
        t.errors_before += c.errors_before;
        t.errors_during += c.errors_during;
        t.errors_after += c.errors_after;
        for (k, v) in &c.errors_by_code {
            *t.errors_by_code.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &c.served_by {
            *t.served_by.entry(k.clone()).or_default() += v;
        }
    }
    t
}

fn ms_text(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
}

/// The report for people.
pub fn report_table(r: &DrillReport) -> String {
    let mut out = String::new();
    let t = &r.timeline_ms;
    let s = |ms: u64| format!("{:.1}", ms.saturating_sub(t.start) as f64 / 1000.0);
    out.push_str(&format!(
        "failover drill: region {} fenced for {:.1} s of a {:.1} s workload ({} regions, {} clients at {} ops/s each)\n",
        r.region,
        t.unfence.saturating_sub(t.fence) as f64 / 1000.0,
        r.duration_s,
        r.regions.len(),
        r.clients.len(),
        r.rate_per_client
    ));
    out.push_str(&format!(
        "timeline (s from start): fence {}, fenced on every node {}, unfence {}, stop {}, converged {}\n\n",
        s(t.fence),
        t.fenced_everywhere.map_or_else(|| "never".to_owned(), s),
        s(t.unfence),
        s(t.stop),
        t.converged.map_or_else(|| "no".to_owned(), s),
    ));
    out.push_str(&format!("RPO at the cut (changes of {} not yet acknowledged by the peer):\n", r.region));
    out.push_str(&format!("  {:<16} {:>8} {:>22}\n", "peer", "backlog", "since last ack (s)"));
    for p in &r.rpo {
        let missing =
            if p.unanswered.is_empty() { String::new() } else { format!("  (no answer: {})", p.unanswered.join(", ")) };
        out.push_str(&format!("  {:<16} {:>8} {:>22.3}{missing}\n", p.peer, p.backlog, p.seconds));
    }
    if !r.backlog_at_heal.is_empty() {
        let heal: Vec<String> = r.backlog_at_heal.iter().map(|(p, b)| format!("{p} {b}")).collect();
        out.push_str(&format!("  backlog when the fence was lifted: {}\n", heal.join(", ")));
    }
    out.push_str("\nclients (RTO: fence to first success elsewhere; failback: unfence to first success at home):\n");
    out.push_str(&format!(
        "  {:<22} {:<14} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9}  errors during the fence (by code)\n",
        "client", "home", "ops", "ok", "fail", "info", "rto", "failback"
    ));
    for c in r.clients.iter().chain(std::iter::once(&r.totals)) {
        let codes: Vec<String> = c.errors_by_code.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!(
            "  {:<22} {:<14} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9}  {} ({})\n",
            c.client,
            c.home,
            c.ops,
            c.ok,
            c.fail,
            c.info,
            ms_text(c.rto_ms),
            ms_text(c.failback_ms),
            c.errors_during,
            if codes.is_empty() { "none".to_owned() } else { codes.join(", ") },
        ));
    }
    let cv = &r.convergence;
    out.push('\n');
    if cv.converged {
        out.push_str(&format!(
            "convergence: {} after the workload stopped ({} after the heal); backlogs empty\n",
            ms_text(cv.after_stop_ms),
            ms_text(cv.after_heal_ms)
        ));
    } else {
        out.push_str(&format!(
            "convergence: NOT reached: {} (backlog {})\n",
            cv.reason.as_deref().unwrap_or("unknown"),
            cv.backlog
        ));
    }
    let roots: Vec<String> = cv.roots.iter().map(|(g, (root, n))| format!("{g} {root} ({n} records)")).collect();
    out.push_str(&format!("merkle roots {}: {}\n", if cv.roots_equal { "equal" } else { "DIFFER" }, roots.join(", ")));
    let c = &r.checker;
    if c.ok {
        out.push_str(&format!(
            "history checker: OK, no acknowledged write lost ({} events, {} keys)\n",
            c.events, c.keys
        ));
    } else {
        out.push_str(&format!(
            "history checker: {} VIOLATIONS ({} events, {} keys)\n",
            c.violation_count, c.events, c.keys
        ));
        for v in &c.violations {
            out.push_str(&format!("  {v}\n"));
        }
    }
    out.push_str(&format!("history: {}\nresult: {}\n", r.history, if r.passed { "PASSED" } else { "FAILED" }));
    out
}

// ---------------------------------------------------------------------------------------------
// The drill

/// What a run returns.
struct Outcome {
    report: DrillReport,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Progress on stderr, one line per phase (and a dot a second while waiting) when it is a
/// terminal or when the report goes to stdout as JSON.
fn progress(msg: &str) {
    eprintln!("drill: {msg}");
}

async fn drill(args: &FailoverArgs, plan: &Plan, regions: Vec<RegionEndpoints>) -> Result<Outcome, CtlError> {
    let access = args.access.resolve(args.endpoints_file.as_deref(), Path::new(DEFAULT_ENDPOINTS_FILE), false)?;
    let admin = access
        .reqwest()?
        .timeout(ADMIN_TIMEOUT)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| CtlError::Failed(format!("cannot build the HTTP client: {e}")))?;
    let run_id = format!("{:x}", unix_ms());
    let history_path = args.history.clone().unwrap_or_else(|| PathBuf::from(format!("meridian-drill-{run_id}.jsonl")));
    let names: Vec<String> = regions.iter().map(|r| r.name.clone()).collect();

    progress(&format!("run {run_id}: creating the drill keyspaces in {}", names.join(", ")));
    ensure_keyspaces(&admin, &regions).await?;

    // One client per slot, each preferring its own region: the endpoints with its region
    // first (equidistant regions keep the configured order, see meridian_client::regions).
    let mut workers = Vec::new();
    let mut homes = BTreeMap::new();
    for (ri, home) in regions.iter().enumerate() {
        let mut order = vec![home.clone()];
        order.extend(regions.iter().filter(|r| r.name != home.name).cloned());
        for c in 0..args.clients_per_region {
            let client = access
                .client()
                .regions(order.clone())
                .request_timeout(args.request_timeout)
                .connect_timeout(args.request_timeout.min(Duration::from_secs(1)))
                .consistency(Consistency::Quorum)
                .probe_interval(Duration::from_millis(500))
                .region_down_for(Duration::from_secs(1))
                .build()
                .await
                .map_err(|e| CtlError::Usage(format!("cannot build the client for {}: {e}", home.name)))?;
            let name = format!("{}/c{c}", home.name);
            homes.insert(name.clone(), home.name.clone());
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add((ri as u64) << 16 | c);
            workers.push(Worker {
                name,
                home: home.name.clone(),
                client,
                rng: SmallRng::seed_from_u64(seed),
                run_id: run_id.clone(),
                keys: args.keys,
                seq: 0,
            });
        }
    }

    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let done_ops = Arc::new(AtomicU64::new(0));
    let start = history.now_ms();
    progress(&format!(
        "workload: {} clients for {:.0} s; fencing {} at {:.0} s for {:.0} s",
        workers.len(),
        plan.duration.as_secs_f64(),
        args.region,
        plan.fence_at.as_secs_f64(),
        plan.fence_for.as_secs_f64()
    ));
    let mut tasks = Vec::new();
    for w in workers {
        let (h, s, d, interval) = (Arc::clone(&history), Arc::clone(&stop), Arc::clone(&done_ops), plan.interval);
        tasks.push(tokio::spawn(async move { w.run(&h, &s, &d, interval).await }));
    }
    let ticker = tokio::spawn(ticker(Arc::clone(&done_ops), Arc::clone(&stop)));

    let fenced = regions.iter().find(|r| r.name == args.region).cloned().expect("checked above");
    let began = Instant::now();
    tokio::time::sleep(plan.fence_at).await;

    // The cut.
    let fence_unix = unix_ms();
    let fence_result = fence(&admin, &fenced, true).await;
    let fence_t = history.now_ms();
    if let Err(e) = fence_result {
        stop.store(true, Ordering::Relaxed);
        return Err(e);
    }
    progress(&format!("fenced {} at {:.1} s", fenced.name, (fence_t - start) as f64 / 1000.0));
    let fenced_everywhere = wait_fenced(&admin, &fenced, true, Duration::from_secs(10)).await.then(|| history.now_ms());
    let rpo = rpo_at_cut(&admin, &fenced, &names, fence_unix).await;

    tokio::time::sleep_until((began + plan.fence_at + plan.fence_for).into()).await;
    let backlog_at_heal = backlog_towards(&admin, &fenced).await;
    let unfence_result = fence(&admin, &fenced, false).await;
    let unfence_t = history.now_ms();
    if let Err(e) = unfence_result {
        stop.store(true, Ordering::Relaxed);
        return Err(CtlError::Failed(format!(
            "could not lift the fence of {} (lift it with `meridian ctl region unfence {}`): {e}",
            fenced.name, fenced.name
        )));
    }
    progress(&format!("unfenced {} at {:.1} s", fenced.name, (unfence_t - start) as f64 / 1000.0));

    tokio::time::sleep_until((began + plan.duration).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut switches: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut touched: BTreeSet<(String, String, Kind)> = BTreeSet::new();
    for t in tasks {
        let (name, keys, client) = t.await.map_err(|e| CtlError::Failed(format!("a client task failed: {e}")))?;
        touched.extend(keys);
        let ms: Vec<u64> = client
            .failover_events()
            .iter()
            .filter(|s| s.reason == SwitchReason::Failover)
            .filter_map(|s| s.down_since.map(|d| s.at.saturating_duration_since(d).as_millis() as u64))
            .collect();
        switches.insert(name, ms);
    }
    let _ = ticker.await;
    let stop_t = history.now_ms();
    progress(&format!(
        "workload stopped at {:.1} s; waiting for convergence (at most {:.0} s)",
        (stop_t - start) as f64 / 1000.0,
        args.converge_timeout.as_secs_f64()
    ));

    let mut convergence = converge(&admin, &regions, args.converge_timeout).await;
    let converged_t = convergence.converged.then(|| history.now_ms());
    convergence.after_heal_ms = converged_t.map(|t| t - unfence_t);
    convergence.after_stop_ms = converged_t.map(|t| t - stop_t);

    history.write_jsonl(&history_path).map_err(|e| CtlError::Failed(format!("{}: {e}", history_path.display())))?;
    progress(&format!("reading the final state of {} keys through every node", touched.len()));
    let final_regions: Vec<(String, Vec<String>)> = regions
        .iter()
        .map(|r| (r.name.clone(), r.nodes.iter().map(|n| n.trim_start_matches("http://").to_owned()).collect()))
        .collect();
    let keys: Vec<(String, String, Kind)> = touched.into_iter().collect();
    let authorization = access.authorization();
    let final_state =
        tokio::task::spawn_blocking(move || collect_final_with(&final_regions, &keys, authorization.as_deref()))
            .await
            .map_err(|e| CtlError::Failed(format!("reading the final state failed: {e}")))?;
    let events = history.events();
    let verdict = verdict_of(&check(&events, &final_state));

    let timeline =
        Timeline { start, fence: fence_t, fenced_everywhere, unfence: unfence_t, stop: stop_t, converged: converged_t };
    let mut clients = client_figures(&events, &timeline, &homes, &fenced.name);
    for c in &mut clients {
        c.detected_failovers_ms = switches.remove(&c.client).unwrap_or_default();
    }
    let passed = verdict.ok && convergence.converged && convergence.roots_equal;
    let report = DrillReport {
        region: fenced.name.clone(),
        regions: names,
        duration_s: plan.duration.as_secs_f64(),
        rate_per_client: args.rate,
        totals: totals(&clients),
        clients,
        timeline_ms: timeline,
        rpo,
        backlog_at_heal,
        convergence,
        checker: verdict,
        history: history_path.display().to_string(),
        passed,
    };
    Ok(Outcome { report })
}

fn verdict_of(report: &Report) -> Verdict {
    Verdict {
        ok: report.ok,
        events: report.stats.events,
        keys: report.stats.keys,
        violations: report
            .violations
            .iter()
            .take(20)
            .map(|v| format!("contract {}: {}/{}: {}", v.contract, v.keyspace, v.key, v.message))
            .collect(),
        violation_count: report.violations.len(),
    }
}

/// A progress line about once a second while the workload runs (stderr).
async fn ticker(done: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let interactive = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = done.load(Ordering::Relaxed);
        let line = format!("{:>5.0} s  {n} operations ({} /s)", started.elapsed().as_secs_f64(), n - last);
        last = n;
        if interactive {
            eprint!("\r\x1b[2K{line}");
        } else if started.elapsed().as_secs().is_multiple_of(10) {
            eprintln!("drill: {line}");
        }
    }
    if interactive {
        eprintln!();
    }
}

// ---------------------------------------------------------------------------------------------
// Admin calls

async fn admin_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, CtlError> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| CtlError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| CtlError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        return Err(CtlError::Http {
            url: url.to_owned(),
            status,
            code: value["error"].as_str().map_or_else(|| format!("http_{status}"), str::to_owned),
            message: value["message"].as_str().unwrap_or(&text).to_owned(),
        });
    }
    Ok(value)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Lww => "lww",
        Kind::Mvr => "mvr",
        Kind::Counter => "counter",
        Kind::Set => "set",
    }
}

/// Creates the drill keyspaces in every region (idempotent) and waits until every node of
/// every region serves them.
async fn ensure_keyspaces(http: &reqwest::Client, regions: &[RegionEndpoints]) -> Result<(), CtlError> {
    for r in regions {
        for (name, kind) in KEYSPACES {
            let mut last = None;
            for node in &r.nodes {
                let url = format!("{node}/api/v1/keyspaces");
                match admin_json(
                    http,
                    reqwest::Method::POST,
                    &url,
                    Some(json!({"name": name, "type": kind_name(kind)})),
                )
                .await
                {
                    Ok(_) => {
                        last = None;
                        break;
                    }
                    Err(e @ CtlError::Http { status: 409, .. }) => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in regions {
        for node in &r.nodes {
            for (name, _) in KEYSPACES {
                let url = format!("{node}/api/v1/keyspaces/{name}");
                loop {
                    match admin_json(http, reqwest::Method::GET, &url, None).await {
                        Ok(_) => break,
                        Err(e) if Instant::now() > deadline => {
                            return Err(CtlError::Failed(format!(
                                "keyspace {name} did not reach every node of {} in 30 s: {e}",
                                r.name
                            )))
                        }
                        Err(_) => tokio::time::sleep(POLL).await,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fences (or unfences) `region` through its first node that answers.
async fn fence(http: &reqwest::Client, region: &RegionEndpoints, on: bool) -> Result<(), CtlError> {
    let verb = if on { "fence" } else { "unfence" };
    let mut last = None;
    for node in &region.nodes {
        let url = format!("{node}/api/v1/regions/{}/{verb}", meridian_client::encode_segment(&region.name));
        match admin_json(http, reqwest::Method::POST, &url, None).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| CtlError::Usage(format!("region {} lists no nodes", region.name))))
}

/// Waits until every node of `region` reports `fenced == on`; false after `timeout`.
async fn wait_fenced(http: &reqwest::Client, region: &RegionEndpoints, on: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for node in &region.nodes {
            let url = format!("{node}/api/v1/regions");
            match admin_json(http, reqwest::Method::GET, &url, None).await {
                Ok(v) if v["fenced"].as_bool() == Some(on) => {}
                _ => all = false,
            }
        }
        if all {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One node's `GET /api/v1/regions`, as far as the drill reads it.
#[derive(Debug, Deserialize)]
struct RegionsView {
    #[serde(default)]
    peers: Vec<PeerView>,
}

#[derive(Debug, Deserialize)]
struct PeerView {
    region: String,
    backlog: u64,
    last_ack_ms: Option<u64>,
}

async fn regions_views(http: &reqwest::Client, region: &RegionEndpoints) -> Vec<(String, Option<RegionsView>)> {
    let mut out = Vec::new();
    for node in &region.nodes {
        let url = format!("{node}/api/v1/regions");
        let view = admin_json(http, reqwest::Method::GET, &url, None)
            .await
            .ok()
            .and_then(|v| serde_json::from_value::<RegionsView>(v).ok());
        out.push((node.clone(), view));
    }
    out
}

/// The fenced region's backlog towards every peer at the cut (see [`RpoFigure`]).
async fn rpo_at_cut(http: &reqwest::Client, fenced: &RegionEndpoints, names: &[String], cut_ms: u64) -> Vec<RpoFigure> {
    let views = regions_views(http, fenced).await;
    names
        .iter()
        .filter(|n| **n != fenced.name)
        .map(|peer| {
            let mut f = RpoFigure { peer: peer.clone(), ..RpoFigure::default() };
            let mut last_ack_with_backlog: Option<u64> = None;
            for (node, view) in &views {
                let Some(view) = view else {
                    f.unanswered.push(node.clone());
                    continue;
                };
                if let Some(p) = view.peers.iter().find(|p| &p.region == peer) {
                    f.backlog += p.backlog;
                    if p.backlog > 0 {
                        let ack = p.last_ack_ms.unwrap_or(0);
                        last_ack_with_backlog = Some(last_ack_with_backlog.map_or(ack, |a: u64| a.min(ack)));
                    }
                }
            }
            if let Some(ack) = last_ack_with_backlog {
                f.seconds = cut_ms.saturating_sub(ack) as f64 / 1000.0;
            }
            f
        })
        .collect()
}

/// The fenced region's backlog per peer, summed over its nodes.
async fn backlog_towards(http: &reqwest::Client, region: &RegionEndpoints) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, view) in regions_views(http, region).await {
        for p in view.map(|v| v.peers).unwrap_or_default() {
            *out.entry(p.region).or_default() += p.backlog;
        }
    }
    out
}

/// Polls until no node of any region has a backlog and every region's root is the same.
async fn converge(http: &reqwest::Client, regions: &[RegionEndpoints], timeout: Duration) -> Convergence {
    let deadline = Instant::now() + timeout;
    loop {
        let mut c = Convergence::default();
        let mut problems = Vec::new();
        for r in regions {
            for (node, view) in regions_views(http, r).await {
                match view {
                    Some(v) => c.backlog += v.peers.iter().map(|p| p.backlog).sum::<u64>(),
                    None => problems.push(format!("{node} did not report its backlog")),
                }
            }
            let mut root = None;
            for node in &r.nodes {
                let url = format!("{node}/api/v1/cluster/digest/region");
                if let Ok(v) = admin_json(http, reqwest::Method::GET, &url, None).await {
                    if let (Some(h), Some(n)) = (v["root"].as_str(), v["records"].as_u64()) {
                        root = Some((h.to_owned(), n));
                        break;
                    }
                }
            }
            match root {
                Some(root) => {
                    c.roots.insert(r.name.clone(), root);
                }
                None => problems.push(format!("no node of {} gave its Merkle root", r.name)),
            }
        }
        let distinct: BTreeSet<&String> = c.roots.values().map(|(h, _)| h).collect();
        c.roots_equal = distinct.len() == 1 && c.roots.len() == regions.len();
        if c.backlog > 0 {
            problems.push(format!("{} change-log entries not yet acknowledged", c.backlog));
        }
        if !c.roots_equal {
            problems.push("the regions' Merkle roots differ".to_owned());
        }
        if problems.is_empty() {
            c.converged = true;
            return c;
        }
        if Instant::now() > deadline {
            // Name the nodes: each one's root over the ranges it replicates.
            let mut nodes = Vec::new();
            for r in regions {
                for node in &r.nodes {
                    let url = format!("{node}/api/v1/cluster/digest");
                    let root = match admin_json(http, reqwest::Method::GET, &url, None).await {
                        Ok(v) => format!("{} ({} records)", v["root"].as_str().unwrap_or("?"), v["records"]),
                        Err(e) => format!("no answer: {e}"),
                    };
                    nodes.push(format!("{}/{}: {root}", r.name, node.trim_start_matches("http://")));
                }
            }
            problems.push(format!("node roots: {}", nodes.join(", ")));
            c.reason = Some(problems.join("; "));
            return c;
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The workload

/// One client of the workload.
struct Worker {
    name: String,
    home: String,
    client: Client,
    rng: SmallRng,
    run_id: String,
    keys: u64,
    seq: u64,
}

/// How the history records a client error: reads are `fail` (they change nothing); a write
/// refused with a 4xx, or refused before effect, is `fail`; an increment that was not
/// [`ClientError::Indeterminate`] is `fail` too, because the client resends an increment only
/// when it was refused before effect and reports every other outcome as indeterminate; every
/// other write error is `info` (it may have been applied, by an attempt that timed out).
pub fn completion_of_error(op: &Op, e: &ClientError) -> Completion {
    let why = format!("{}: {e}", e.code());
    if op.is_read() {
        return Completion::Fail(why);
    }
    match e {
        ClientError::Api { status: 400..=499, .. } | ClientError::InvalidArgument(_) | ClientError::Config(_) => {
            Completion::Fail(why)
        }
        // A 2xx the client could not read was applied, or may have been.
        ClientError::Indeterminate { .. } | ClientError::BadAnswer { .. } => Completion::Info(why),
        _ if matches!(op, Op::Incr { .. }) => Completion::Fail(why),
        _ => Completion::Info(why),
    }
}

/// A value or member as the history keeps it: the UTF-8 text the drill wrote, or
/// `base64:<bytes>` for anything else (which no drill wrote, so the checker flags it).
fn text(bytes: &[u8]) -> String {
    use base64::Engine as _;
    String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|_| format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

impl Worker {
    /// Runs operations every `interval` until `stop`; returns the keys it touched and the
    /// client (for its failover record).
    async fn run(
        mut self,
        history: &History,
        stop: &AtomicBool,
        done: &AtomicU64,
        interval: Duration,
    ) -> (String, Vec<(String, String, Kind)>, Client) {
        let mut touched = BTreeSet::new();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            self.step(history, &mut touched).await;
            done.fetch_add(1, Ordering::Relaxed);
            next += interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            } else {
                // Behind (a slow answer): do not burst to catch up.
                next = now;
            }
        }
        (self.name, touched.into_iter().collect(), self.client)
    }

    /// Performs `op` with `fut` and records it; `ok` turns the answer into what the history
    /// keeps and the region that served it.
    async fn record<T>(
        &self,
        history: &History,
        op: Op,
        fut: impl std::future::Future<Output = Result<T, ClientError>>,
        ok: impl FnOnce(&T) -> (OpResult, Option<String>),
    ) -> Option<T> {
        let towards = self.client.current_region().unwrap_or_else(|| self.home.clone());
        let id = history.invoke(&self.name, &towards, op.clone());
        match fut.await {
            Ok(v) => {
                let (result, served) = ok(&v);
                let served = served.or_else(|| self.client.current_region());
                history.complete_in(id, served.as_deref(), &Completion::Ok(result));
                Some(v)
            }
            Err(e) => {
                history.complete_in(id, None, &completion_of_error(&op, &e));
                None
            }
        }
    }

    async fn step(&mut self, history: &History, touched: &mut BTreeSet<(String, String, Kind)>) {
        let roll = self.rng.random_range(0..100u32);
        let kind = match roll {
            0..45 => Kind::Lww,
            45..65 => Kind::Counter,
            65..88 => Kind::Set,
            _ => Kind::Mvr,
        };
        let (ks, _) = KEYSPACES.iter().find(|(_, k)| *k == kind).copied().expect("every kind has a keyspace");
        let key = format!("{}-{}", self.run_id, self.rng.random_range(0..self.keys));
        touched.insert((ks.to_owned(), key.clone(), kind));
        self.seq += 1;
        let value = format!("{}:{}", self.name, self.seq);
        let c = &self.client;
        let (ksn, keyn) = (ks.to_owned(), key.clone());
        match kind {
            Kind::Lww if roll < 30 => {
                let op = Op::Put { keyspace: ksn, key: keyn, value: value.clone() };
                self.record(history, op, c.put(ks, &key, value.into_bytes(), None), |a| {
                    (OpResult::written(a.version.to_string()), Some(a.region.clone()))
                })
                .await;
            }
            Kind::Lww => {
                let op = Op::Get { keyspace: ksn, key: keyn };
                self.record(history, op, c.get(ks, &key), |v| {
                    let found = v.as_ref().map(|v| (text(&v.bytes), v.version.to_string()));
                    (OpResult::lww(found.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))), None)
                })
                .await;
            }
            Kind::Counter if roll < 60 => {
                let delta = i64::from(self.rng.random_range(1..=5u32));
                let op = Op::Incr { keyspace: ksn, key: keyn, delta };
                self.record(history, op, c.incr(ks, &key, delta), |a| {
                    (OpResult::written(a.version.to_string()), Some(a.region.clone()))
                })
                .await;
            }
            Kind::Counter => {
                let op = Op::CounterGet { keyspace: ksn, key: keyn };
                self.record(history, op, c.counter(ks, &key), |n| (OpResult::counter(*n), None)).await;
            }
            Kind::Set => {
                let member = format!("m{}", self.rng.random_range(0..SET_MEMBERS));
                if roll < 80 {
                    let op = Op::Sadd { keyspace: ksn, key: keyn, members: vec![member.clone()] };
                    self.record(history, op, c.sadd(ks, &key, &[member.as_str()]), |a| {
                        (OpResult::written(a.version.to_string()), Some(a.region.clone()))
                    })
                    .await;
                    return;
                }
                // Read, then remove one member the read saw, with the read's context.
                let op = Op::Smembers { keyspace: ksn.clone(), key: keyn.clone() };
                let read = self
                    .record(history, op, c.smembers(ks, &key), |s| {
                        let members = s.members.iter().map(|m| text(m)).collect();
                        (OpResult::members(members, Some(s.context.clone())), None)
                    })
                    .await;
                let Some(read) = read else { return };
                let Some(victim) = read.members.first().map(|m| text(m)) else { return };
                let context = Some(read.context.clone()).filter(|s| !s.is_empty());
                let op = Op::Srem { keyspace: ksn, key: keyn, members: vec![victim.clone()], context: context.clone() };
                self.record(history, op, c.srem(ks, &key, &[victim.as_str()], context.as_deref()), |a| {
                    (OpResult::written(a.version.to_string()), Some(a.region.clone()))
                })
                .await;
            }
            Kind::Mvr => {
                // Read, then write with the read's context (a blind write would pile up
                // siblings to the cap).
                let op = Op::MvrGet { keyspace: ksn.clone(), key: keyn.clone() };
                let read = self
                    .record(history, op, c.mvr_get(ks, &key), |m| {
                        let siblings = m.siblings.iter().map(|s| text(s)).collect();
                        (OpResult::siblings(siblings, Some(m.context.clone()).filter(|s| !s.is_empty())), None)
                    })
                    .await;
                let Some(read) = read else { return };
                let context = Some(read.context.clone()).filter(|s| !s.is_empty());
                let op = Op::MvrPut { keyspace: ksn, key: keyn, value: value.clone(), context: context.clone() };
                self.record(history, op, c.mvr_put(ks, &key, value.into_bytes(), context.as_deref()), |a| {
                    (OpResult::written(a.version.to_string()), Some(a.region.clone()))
                })
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64, client: &str, region: &str, kind: EventKind, id: u64, reason: Option<&str>) -> Event {
        Event {
            t,
            client: client.into(),
            region: region.into(),
            kind,
            op: Op::Get { keyspace: "k".into(), key: "a".into() },
            id,
            result: OpResult::default(),
            reason: reason.map(String::from),
        }
    }

    fn homes() -> BTreeMap<String, String> {
        [("us/c0".to_owned(), "us".to_owned()), ("eu/c0".to_owned(), "eu".to_owned())].into_iter().collect()
    }

    #[test]
    fn rto_is_fence_to_the_first_success_elsewhere_invoked_after_the_fence() {
        let tl = Timeline { start: 0, fence: 100, unfence: 300, stop: 400, ..Timeline::default() };
        let events = vec![
            ev(90, "us/c0", "us", EventKind::Invoke, 1, None),
            // Invoked before the fence, answered by another region after it: not the RTO.
            ev(110, "us/c0", "eu", EventKind::Ok, 1, None),
            ev(120, "us/c0", "us", EventKind::Invoke, 2, None),
            ev(130, "us/c0", "us", EventKind::Fail, 2, Some("region_fenced: 503")),
            ev(131, "us/c0", "eu", EventKind::Invoke, 3, None),
            ev(150, "us/c0", "eu", EventKind::Ok, 3, None),
            ev(310, "us/c0", "eu", EventKind::Invoke, 4, None),
            ev(320, "us/c0", "eu", EventKind::Ok, 4, None),
            ev(330, "us/c0", "eu", EventKind::Invoke, 5, None),
            ev(345, "us/c0", "us", EventKind::Ok, 5, None),
            ev(140, "eu/c0", "eu", EventKind::Invoke, 6, None),
            ev(141, "eu/c0", "eu", EventKind::Info, 6, Some("timeout: x")),
        ];
        let f = client_figures(&events, &tl, &homes(), "us");
        let us = f.iter().find(|c| c.client == "us/c0").expect("us client");
        assert_eq!(us.rto_ms, Some(50));
        assert_eq!(us.failback_ms, Some(45));
        assert_eq!((us.ops, us.ok, us.fail, us.info), (5, 4, 1, 0));
        assert_eq!(us.errors_during, 1);
        assert_eq!(us.errors_by_code.get("region_fenced"), Some(&1));
        assert_eq!(us.served_by.get("eu"), Some(&3));
        let eu = f.iter().find(|c| c.client == "eu/c0").expect("eu client");
        assert_eq!(eu.rto_ms, None, "only clients of the fenced region have an RTO");
        assert_eq!((eu.info, eu.errors_during), (1, 1));
        let t = totals(&f);
        assert_eq!((t.ops, t.ok, t.fail, t.info), (6, 4, 1, 1));
    }

    #[test]
    fn a_client_that_never_recovers_has_no_rto() {
        let tl = Timeline { start: 0, fence: 100, unfence: 300, stop: 400, ..Timeline::default() };
        let events = vec![
            ev(120, "us/c0", "us", EventKind::Invoke, 1, None),
            ev(130, "us/c0", "us", EventKind::Info, 1, Some("exhausted: all regions")),
        ];
        let f = client_figures(&events, &tl, &homes(), "us");
        assert_eq!(f[1].client, "us/c0");
        assert_eq!((f[1].rto_ms, f[1].failback_ms), (None, None));
    }

    #[test]
    fn error_codes_are_the_first_word_of_the_reason() {
        assert_eq!(reason_code(Some("region_fenced: http://x answered 503")), "region_fenced");
        assert_eq!(reason_code(Some("timeout")), "timeout");
        assert_eq!(reason_code(None), "unknown");
        assert_eq!(reason_code(Some("")), "unknown");
    }

    #[test]
    fn reads_fail_and_uncertain_writes_are_indeterminate() {
        let get = Op::Get { keyspace: "k".into(), key: "a".into() };
        let put = Op::Put { keyspace: "k".into(), key: "a".into(), value: "v".into() };
        let incr = Op::Incr { keyspace: "k".into(), key: "a".into(), delta: 1 };
        let lost = ClientError::Transport {
            kind: meridian_client::TransportKind::Timeout,
            url: "u".into(),
            message: "m".into(),
        };
        let refused = ClientError::Api { status: 409, code: "wrong_type".into(), message: "m".into(), url: "u".into() };
        let exhausted =
            ClientError::Exhausted { attempts: 3, regions: vec!["us".into()], last: Box::new(lost.clone()) };
        let indeterminate = ClientError::Indeterminate { region: "us".into(), cause: Box::new(lost.clone()) };
        assert!(matches!(completion_of_error(&get, &lost), Completion::Fail(_)));
        assert!(matches!(completion_of_error(&put, &lost), Completion::Info(_)));
        assert!(matches!(completion_of_error(&put, &exhausted), Completion::Info(_)));
        assert!(matches!(completion_of_error(&put, &refused), Completion::Fail(_)));
        assert!(matches!(completion_of_error(&incr, &indeterminate), Completion::Info(_)));
        assert!(matches!(completion_of_error(&incr, &exhausted), Completion::Fail(_)));
        let Completion::Info(why) = completion_of_error(&put, &lost) else { panic!() };
        assert_eq!(reason_code(Some(&why)), lost.code());
    }

    #[test]
    fn the_fence_must_end_within_the_run() {
        let args = FailoverArgs {
            region: "us".into(),
            duration: Duration::from_secs(10),
            fence_at: Some(Duration::from_secs(6)),
            fence_for: Some(Duration::from_secs(5)),
            endpoints_file: None,
            clients_per_region: 1,
            rate: 10.0,
            keys: 5,
            seed: 1,
            request_timeout: Duration::from_secs(1),
            converge_timeout: Duration::from_secs(5),
            history: None,
            output: CtlOutput::Json,
            access: Default::default(),
        };
        assert!(matches!(Plan::of(&args), Err(CtlError::Usage(_))));
        let ok = FailoverArgs { fence_at: None, fence_for: None, ..args };
        let plan = Plan::of(&ok).expect("default phases");
        assert_eq!((plan.fence_at, plan.fence_for), (Duration::from_millis(2500), Duration::from_secs(5)));
    }
}
