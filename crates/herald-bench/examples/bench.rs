//! Runs the speed-to-lead harness, as `herald bench` will.
//!
//! ```sh
//! cargo build --release -p herald && cargo run --release -p herald-bench --example bench -- \
//!     --peer node-red --markdown /tmp/bench.md --json /tmp/bench.json
//! ```

use clap::Parser;
use herald_bench::{BenchOptions, Peer};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Speed to lead: herald (and a peer) against the sandbox, as separate processes")]
struct Args {
    /// Scenario: kixie, 8x8-sms or bulk-8x8.
    #[arg(long, default_value = "kixie")]
    scenario: String,
    /// bulk-8x8 only: the Leads the campaign texts (default 100,000).
    #[arg(long)]
    recipients: Option<usize>,
    /// The herald binary (default: beside this program, or target/release/herald).
    #[arg(long)]
    herald: Option<PathBuf>,
    /// The repository root (default: the current directory or a parent).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Also run the same load against a peer: node-red.
    #[arg(long)]
    peer: Option<String>,
    /// Open-loop rate, leads per second (0 skips the fixed-rate phase).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Leads in the fixed-rate phase.
    #[arg(long, default_value_t = 10_000)]
    leads: usize,
    /// Connections of the maximum-rate phase (0 skips it).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Leads in the maximum-rate phase.
    #[arg(long, default_value_t = 20_000)]
    max_leads: usize,
    /// Warm-up leads before the measured phases.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Seconds after which a phase stops sending.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Fresh `herald serve` starts to time (0 skips).
    #[arg(long, default_value_t = 5)]
    startup_runs: usize,
    /// Write the JSON report here (default: stdout gets the Markdown only).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown report here (default: stdout).
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    no_progress: bool,
    /// How long the emulated provider takes to answer, in milliseconds (0: at once).
    #[arg(long, default_value_t = 0)]
    provider_latency_ms: u64,
    /// Also run herald on a scratch database on this PostgreSQL server (postgres://user@host:port/db).
    #[arg(long, value_name = "SERVER_URL")]
    postgres: Option<String>,
    /// With --postgres: this many `herald serve` nodes share the scratch database, leads round robin.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Run nothing: render a JSON report saved by an earlier run as Markdown.
    #[arg(long, value_name = "JSON")]
    render: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.render {
        let report = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<herald_bench::Report>(&text).map_err(|e| e.to_string()));
        return match report {
            Ok(report) => {
                print!("{}", report.to_markdown());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot read the report {}: {error}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let peer = match args.peer.as_deref().map(Peer::parse).transpose() {
        Ok(peer) => peer,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let command = std::env::args()
        .skip(1)
        // A URL's password never reaches the report.
        .fold("cargo run --release -p herald-bench --example bench --".to_string(), |line, arg| {
            line + " " + &herald_store::postgres::masked(&arg)
        });
    let options = BenchOptions {
        herald: args.herald,
        root: args.root,
        scenario: args.scenario,
        peer,
        rate: (args.rate > 0).then_some(args.rate),
        fixed_leads: args.leads,
        concurrency: (args.concurrency > 0).then_some(args.concurrency),
        max_leads: args.max_leads,
        warmup_leads: args.warmup,
        max_phase_duration: Duration::from_secs(args.max_seconds),
        startup_runs: args.startup_runs,
        recipients: args.recipients,
        provider_latency: std::time::Duration::from_millis(args.provider_latency_ms),
        progress: !args.no_progress,
        postgres: args.postgres,
        nodes: args.nodes,
        command: Some(command),
        ..BenchOptions::default()
    };
    match herald_bench::run(options).await {
        Ok(report) => {
            if let Some(path) = &args.json
                && let Err(error) = std::fs::write(path, report.to_json())
            {
                eprintln!("error: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            match &args.markdown {
                Some(path) => {
                    if let Err(error) = std::fs::write(path, report.to_markdown()) {
                        eprintln!("error: cannot write {}: {error}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
                None => print!("{}", report.to_markdown()),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
