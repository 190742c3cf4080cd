//! The `meridian` command: a thin shell over the library crates.
//!
//! # Layout
//!
//! - `main.rs`: argument parsing and dispatch.
//! - `cli/server.rs`: `meridian server`, one node.
//! - `cli/dev.rs`: `meridian dev`, a local cluster of node processes.
//! - `cli/certs.rs`: `meridian certs`, development certificates.
//! - `cli/config_check.rs`: `meridian config check`.
//! - `cli/ctl.rs`: `meridian ctl`, operating a running region over its HTTP API, and data
//!   commands through the client library.
//! - `cli/bench.rs`: `meridian bench`, a load generator on the client library.
//! - `cli/drill.rs`: `meridian drill failover`, a regional failover drill with a report.
//! - `cli/token.rs`: `meridian token create|hash`, API bearer tokens.
//! - `cli/access.rs`: the token and CA options of the commands that talk to the API.
//! - `cli/logging.rs`: log set-up.
//!
//! `drill` (regional failover drills) arrives later; it is not declared before it works.

mod cli;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Meridian: a multi-region, geo-replicated key-value store with CRDT values.
#[derive(Debug, Parser)]
#[command(name = "meridian", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node until SIGTERM or SIGINT.
    Server {
        /// The node's configuration file (TOML); without one, the defaults (a single-node
        /// development region on loopback, which needs tls.allow_insecure).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Override a key, as `section.key=value` (repeatable); wins over the environment.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Join the region through this node (`host:port` of its RPC address); adds to
        /// cluster.seeds (repeatable).
        #[arg(long, value_name = "HOST:PORT")]
        join: Vec<String>,
        /// Once the node serves, write its addresses, pid and data directory to this file (JSON).
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
        /// Shut down when the parent process exits (used by `meridian dev`).
        #[arg(long, hide = true)]
        exit_with_parent: bool,
    },
    /// Start a local cluster of node processes on loopback.
    Dev {
        /// Regions (1 to 5: us-east, eu-west, ap-southeast, us-west, sa-east).
        #[arg(long, default_value_t = 3)]
        regions: usize,
        /// Nodes per region.
        #[arg(long, default_value_t = 3)]
        nodes_per_region: usize,
        /// Replicas per key.
        #[arg(long, default_value_t = 3)]
        replication_factor: usize,
        /// Directory for configurations, certificates, data and logs.
        #[arg(long, default_value = "meridian-dev")]
        base_dir: PathBuf,
        /// Write the cluster's endpoints (JSON) here once every node is ready.
        #[arg(long, value_name = "FILE")]
        endpoints_file: Option<PathBuf>,
        /// Delete the base directory's data first.
        #[arg(long)]
        clean: bool,
        /// One-way delay between every pair of regions, in ms (default: modelled on real
        /// inter-region round trips, e.g. us-east <-> eu-west 40 ms, us-east <-> ap-southeast 115 ms).
        #[arg(long, value_name = "MS")]
        wan_delay_ms: Option<u64>,
        /// Once the cluster is up, write counters, a set and a register in every region and
        /// show them converge.
        #[arg(long)]
        demo: bool,
    },
    /// Operate a running region (like nodetool): status, ring, hints, repair, decommission,
    /// digest, keyspaces, regions, a key's endpoints; and read and write data (get, put, del,
    /// incr, sadd, srem, smembers).
    Ctl(cli::ctl::CtlArgs),
    /// Generate load on a running cluster through the client library (YCSB-style workloads,
    /// open or closed loop) and report throughput and latency percentiles.
    Bench(cli::bench::BenchArgs),
    /// Operational drills against a running cluster: `meridian drill failover --region R`.
    Drill {
        #[command(subcommand)]
        command: cli::drill::DrillCommand,
    },
    /// Write development certificates (a CA per trust domain, node and region certificates).
    Certs {
        /// Directory to write into.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// A region and its nodes, as `REGION=NODE,NODE,...` (repeatable).
        #[arg(long = "region", value_name = "REGION=NODES", required = true)]
        regions: Vec<String>,
    },
    /// Replace a stopped node's data with a snapshot taken by `meridian ctl snapshot`; the node
    /// then catches up from its replicas when it starts (docs/operations.md).
    Restore {
        /// The node's configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Override a key, as `section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The snapshot directory (the `path` that `meridian ctl snapshot` printed).
        #[arg(long, value_name = "DIR", required_unless_present = "in_place")]
        snapshot: Option<PathBuf>,
        /// The data directory was already replaced out of band (a volume snapshot, a copy of
        /// the files): only mark it restored, so the node takes the same precautions.
        #[arg(long, conflicts_with = "snapshot")]
        in_place: bool,
        /// Restore even a snapshot older than storage.gc_grace_secs (deleted keys may come back).
        #[arg(long)]
        force: bool,
    },
    /// Work with node configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// API bearer tokens: make one (and its [[auth.tokens]] entry), or hash one.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a random token; print it once, with its SHA-256 and the [[auth.tokens]] entry that
    /// lets the nodes accept it.
    Create {
        /// Who the token is for ([a-z0-9_-], 1 to 64 characters).
        #[arg(long)]
        name: String,
        /// What it may do: read, write, admin (comma-separated).
        #[arg(long, value_name = "SCOPES")]
        scopes: String,
        /// Requests per second the token may make on each node (default: unlimited).
        #[arg(long, value_name = "N")]
        rate_per_sec: Option<u32>,
        /// Requests at once above the rate (default: the rate).
        #[arg(long, value_name = "N")]
        burst: Option<u32>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the SHA-256 of a token read from standard input (auth.tokens[].sha256).
    Hash,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse, layer (file < MERIDIAN_* environment < --set) and validate configuration files.
    Check {
        /// Node configuration files (TOML).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Override a key, as `section.key=value` (repeatable); wins over the environment.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server { config, set, join, ready_file, exit_with_parent } => {
            cli::server::run(cli::server::ServerArgs { config, set, join, ready_file, exit_with_parent })
        }
        Command::Certs { out, regions } => cli::certs::run(out, regions),
        Command::Dev {
            regions,
            nodes_per_region,
            replication_factor,
            base_dir,
            endpoints_file,
            clean,
            wan_delay_ms,
            demo,
        } => cli::dev::run(cli::dev::DevArgs {
            regions,
            nodes_per_region,
            replication_factor,
            base_dir,
            endpoints_file,
            clean,
            wan_delay_ms,
            demo,
        }),
        Command::Ctl(args) => cli::ctl::run(args),
        Command::Restore { config, set, snapshot, in_place, force } => {
            cli::restore::run(cli::restore::RestoreArgs { config, set, snapshot, in_place, force })
        }
        Command::Bench(args) => cli::bench::run(args),
        Command::Drill { command } => cli::drill::run(command),
        Command::Config { command: ConfigCommand::Check { files, set, output } } => {
            cli::config_check::run(&files, &set, output)
        }
        Command::Token { command: TokenCommand::Create { name, scopes, rate_per_sec, burst, output } } => {
            cli::token::create(&name, &scopes, rate_per_sec, burst, output)
        }
        Command::Token { command: TokenCommand::Hash } => cli::token::hash(),
    }
}
