//! Speed to lead, measured: starts `herald sandbox` and `herald serve` (and optionally a peer such as
//! Node-RED) as separate processes on loopback, drives leads at a fixed rate (open loop) and at maximum
//! rate (closed loop), and reports how long each lead took from the record request sent to the
//! provider request received by the sandbox, with throughput, memory, CPU per lead and startup time.
//! A bulk scenario (`bulk-8x8`) measures a campaign instead: one record update whose flow texts every
//! recipient through batch requests, reported as messages per second (see `bulk`).
//!
//! ```no_run
//! # async fn example() -> Result<(), herald_bench::BenchError> {
//! let report = herald_bench::run(herald_bench::BenchOptions::default()).await?;
//! println!("{}", report.to_markdown());
//! # Ok(())
//! # }
//! ```

mod bulk;
mod load;
mod process;
mod report;
mod scenario;
mod server_cpu;
mod stats;

pub use bulk::{DEFAULT_RECIPIENTS, TARGET_MESSAGES_PER_S};
pub use process::Usage;
pub use report::{
    BulkReport, Comparison, Load, Machine, PhaseReport, Report, ServerCpu, Spread, StartupReport,
    TargetReport,
};
pub use scenario::{SCENARIOS, Scenario, Secret};
pub use stats::{Latency, percentile_sorted};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use load::{Phase, Target};
use process::Process;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// A program the harness can run the same leads against, beside herald.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Node-RED 4 running `bench/peers/node-red/flows.json` (install with `bench/peers/node-red/install.sh`).
    NodeRed,
}

impl Peer {
    pub fn name(&self) -> &'static str {
        match self {
            Peer::NodeRed => "node-red",
        }
    }

    /// `node-red` (or `nodered`) to a peer.
    pub fn parse(name: &str) -> Result<Peer, BenchError> {
        match name.to_ascii_lowercase().as_str() {
            "node-red" | "nodered" | "node_red" => Ok(Peer::NodeRed),
            _ => Err(BenchError::UnknownPeer { name: name.to_string() }),
        }
    }
}

/// What to run. `BenchOptions::default()` is the documented run: the Kixie scenario, 10,000 leads at
/// 1,000 leads/s, then 20,000 leads at maximum rate over 64 connections, herald only.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The herald binary. Default: `herald` beside the current executable (or one folder up, for
    /// cargo examples), else `target/release/herald` under the repository root.
    pub herald: Option<PathBuf>,
    /// The repository root (holds `examples/` and `bench/`). Default: the current directory or the
    /// nearest parent holding `examples/kixie-welcome-sms`.
    pub root: Option<PathBuf>,
    /// A scenario name from `SCENARIOS`: `kixie`, `8x8-sms` or `bulk-8x8`.
    pub scenario: String,
    /// Also run the same phases against a peer, and compare.
    pub peer: Option<Peer>,
    /// Open-loop rate in leads per second; `None` skips the fixed-rate phase.
    pub rate: Option<u32>,
    /// Leads sent in the fixed-rate phase.
    pub fixed_leads: usize,
    /// Connections of the closed-loop (maximum rate) phase; `None` skips it.
    pub concurrency: Option<usize>,
    /// Leads sent in the maximum-rate phase.
    pub max_leads: usize,
    /// Leads sent (closed loop, 8 connections) before the measured phases, to warm connections and
    /// caches; not reported.
    pub warmup_leads: usize,
    /// Sending in one phase stops after this long, whatever is left.
    pub max_phase_duration: Duration,
    /// A phase ends when the sandbox has received every accepted lead, or when this long passes
    /// without a new receipt.
    pub drain_timeout: Duration,
    /// Open loop: requests in flight beyond this are not sent (and reported as not sent).
    pub max_in_flight: usize,
    /// How many fresh `herald serve` starts to time for the startup table (0 skips it).
    pub startup_runs: usize,
    /// A progress bar on stderr.
    pub progress: bool,
    /// Shown above the tables: the command that produced the report.
    pub command: Option<String>,
    /// Bulk scenarios: the Leads the campaign texts (`None`: `DEFAULT_RECIPIENTS`). The other scenarios
    /// refuse it. The per-lead options (rate, leads, concurrency, warm-up) do not apply to bulk.
    pub recipients: Option<usize>,
    /// How long the emulated provider takes to answer each request (the sandbox's `latency_ms` on the
    /// scenario's host), for herald and the peer alike. Zero answers at once.
    pub provider_latency: Duration,
    /// A PostgreSQL server (`postgres://…`; its own database is only used to connect): herald runs the
    /// phases a second time on a scratch database created there (and dropped after), and the report
    /// compares it with the run on SQLite, as with a peer.
    pub postgres: Option<String>,
    /// How many `herald serve` processes take the PostgreSQL run's leads, each on its own port, all on
    /// the one scratch database and the one sandbox; leads go to them round robin. More than one needs
    /// `postgres`.
    pub nodes: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            herald: None,
            root: None,
            scenario: "kixie".into(),
            peer: None,
            rate: Some(1_000),
            fixed_leads: 10_000,
            concurrency: Some(64),
            max_leads: 20_000,
            warmup_leads: 500,
            max_phase_duration: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            max_in_flight: 2_000,
            startup_runs: 5,
            progress: true,
            command: None,
            recipients: None,
            provider_latency: Duration::ZERO,
            postgres: None,
            nodes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown scenario `{name}`; the scenarios are: {known}")]
    UnknownScenario { name: String, known: String },
    #[error("scenario `{name}` is not available yet: {reason}")]
    ScenarioNotAvailable { name: &'static str, reason: &'static str },
    #[error("unknown peer `{name}`; the peers are: node-red")]
    UnknownPeer { name: String },
    #[error("peer {peer} does not implement scenario `{scenario}`")]
    PeerScenario { peer: &'static str, scenario: &'static str },
    #[error("no herald binary at {}; build it with `cargo build --release -p herald` or pass its path", path.display())]
    HeraldNotFound { path: PathBuf },
    #[error("cannot find {what} under {}: run from the repository root or pass the root", root.display())]
    RootNotFound { what: String, root: PathBuf },
    #[error("Node-RED is not installed at {}; run bench/peers/node-red/install.sh", path.display())]
    PeerNotInstalled { path: PathBuf },
    #[error("the options ask for nothing: set a rate or a concurrency")]
    NothingToRun,
    #[error("--recipients applies to bulk scenarios (bulk-8x8) only, not to `{scenario}`")]
    RecipientsNotBulk { scenario: &'static str },
    #[error("a bulk campaign needs at least one recipient")]
    NoRecipients,
    #[error("{0}")]
    Bulk(String),
    #[error("the PostgreSQL run: {0}")]
    Database(String),
    #[error("--nodes must be at least 1")]
    NoNodes,
    #[error(
        "--nodes {nodes} needs --postgres SERVER_URL: several `herald serve` nodes share one PostgreSQL \
         database (a SQLite file belongs to one server); add --postgres postgres://user@host:port/db or \
         leave --nodes out"
    )]
    NodesWithoutPostgres { nodes: usize },
    #[error("--nodes applies to the per-lead scenarios (kixie, 8x8-sms), not to `{scenario}`")]
    NodesNotPerLead { scenario: &'static str },
    #[error("at most {max} leads per run (phones are numbered uniquely), asked for {asked}")]
    TooManyLeads { asked: u64, max: u64 },
    #[error("cannot start {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
    #[error("{what} did not say it was ready within {limit:?}; it printed:\n{output}")]
    NotReady { what: String, limit: Duration, output: String },
    #[error("{what} exited ({status}); it printed:\n{output}")]
    Exited { what: String, status: String, output: String },
    #[error("request to {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Unexpected { url: String, status: u16 },
    #[error("the sandbox's request list at {url} is not what the harness expects: {message}")]
    Sandbox { url: String, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BenchError {
    fn http(url: &str, error: reqwest::Error) -> BenchError {
        BenchError::Http { url: url.to_string(), message: error.to_string() }
    }
}

const READY_LIMIT: Duration = Duration::from_secs(30);
const IDLE_SETTLE: Duration = Duration::from_millis(500);

/// Runs the benchmark described by `options` and returns its report. Every process it starts is
/// stopped before it returns (or when the returned future is dropped).
pub async fn run(options: BenchOptions) -> Result<Report, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = Scenario::by_name(&options.scenario)?;
    let recipients = recipients(scenario, &options)?;
    check_nodes(scenario, &options)?;
    if !scenario.bulk && options.rate.is_none() && options.concurrency.is_none() {
        return Err(BenchError::NothingToRun);
    }
    let total = match recipients {
        Some(recipients) => recipients as u64,
        None => (options.warmup_leads + options.fixed_leads + options.max_leads) as u64,
    };
    if total > scenario::MAX_LEADS_PER_RUN {
        return Err(BenchError::TooManyLeads { asked: total, max: scenario::MAX_LEADS_PER_RUN });
    }
    let root = find_root(options.root.as_deref(), scenario)?;
    let herald = find_herald(options.herald.as_deref(), &root)?;
    let project = root.join(scenario.project);
    let node_red = match options.peer {
        Some(Peer::NodeRed) => {
            if !scenario.node_red {
                return Err(BenchError::PeerScenario { peer: "node-red", scenario: scenario.name });
            }
            let dir = root.join("bench/peers/node-red");
            let red = dir.join("node_modules/node-red/red.js");
            if !red.is_file() {
                return Err(BenchError::PeerNotInstalled { path: red });
            }
            Some(dir)
        }
        None => None,
    };

    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BenchError::Http { url: String::new(), message: e.to_string() })?;
    let progress = if options.progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let herald_version = herald_version(&herald).await;
    let mut report = Report {
        scenario: scenario.name.to_string(),
        scenario_summary: scenario.summary.to_string(),
        started_at,
        command: options.command.clone(),
        machine: machine(),
        herald_version,
        startup: Vec::new(),
        targets: Vec::new(),
        comparisons: Vec::new(),
        bulk: None,
        notes: Vec::new(),
    };

    // A bulk campaign lasts a few seconds and goes first: just after the fresh starts below, a new
    // sandbox was seen answering batches 2-3x slower for a while (on this project's machine). The
    // per-lead phases keep their order.
    if options.startup_runs > 0 && recipients.is_none() {
        progress.set_prefix("startup");
        report
            .startup
            .push(herald_startup(&herald, &project, &client, options.startup_runs, &progress).await?);
    }

    let phases = if recipients.is_some() { Vec::new() } else { phases(&options) };
    progress.set_prefix("herald");
    if let Some(recipients) = recipients {
        let (bulk, notes) =
            run_herald_bulk(&herald, &project, scenario, &client, recipients, &progress).await?;
        report.bulk = Some(bulk);
        report.notes.extend(notes);
    } else {
        let herald_target = run_herald(
            &herald,
            &project,
            scenario,
            &client,
            &options,
            RunOn { phases: &phases, postgres: None, nodes: 1 },
            &progress,
        )
        .await?;
        report.notes.extend(herald_target.1);
        report.targets.push(herald_target.0);
        if let Some(server) = options.postgres.as_deref() {
            progress.set_prefix("postgres");
            let (target, notes) = run_herald(
                &herald,
                &project,
                scenario,
                &client,
                &options,
                RunOn { phases: &phases, postgres: Some(server), nodes: options.nodes },
                &progress,
            )
            .await?;
            report.notes.extend(notes);
            for (h, p) in report.targets[0].phases.iter().zip(&target.phases) {
                report.comparisons.push(Comparison::between(h, &target.target, p));
            }
            report.targets.push(target);
        }
    }

    if options.startup_runs > 0 && recipients.is_some() {
        progress.set_prefix("startup");
        report
            .startup
            .push(herald_startup(&herald, &project, &client, options.startup_runs, &progress).await?);
    }

    if let Some(dir) = node_red {
        progress.set_prefix("node-red");
        let (target, startup, notes) =
            run_node_red(&herald, &dir, scenario, &client, &options, &phases, &progress).await?;
        report.notes.extend(notes);
        report.startup.push(startup);
        for (h, p) in report.targets[0].phases.iter().zip(&target.phases) {
            report.comparisons.push(Comparison::between(h, Peer::NodeRed.name(), p));
        }
        report.targets.push(target);
    }
    progress.finish_and_clear();
    report.machine.load_at_end = load_average();
    let busy = report.machine.load_at_start.max(report.machine.load_at_end);
    // The run itself keeps about 1.5 cores busy; a higher load means other work shared the machine.
    if busy > report.machine.cpus as f64 {
        report.notes.push(format!(
            "the machine was busy (load average up to {busy:.2} on {} CPUs): other work shared the cores, \
             so these numbers are pessimistic",
            report.machine.cpus
        ));
    }
    Ok(report)
}

/// The campaign's size for a bulk scenario (`None` for the per-lead ones, which refuse the option).
fn recipients(scenario: &Scenario, options: &BenchOptions) -> Result<Option<usize>, BenchError> {
    match (scenario.bulk, options.recipients) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(BenchError::RecipientsNotBulk { scenario: scenario.name }),
        (true, Some(0)) => Err(BenchError::NoRecipients),
        (true, asked) => Ok(Some(asked.unwrap_or(DEFAULT_RECIPIENTS))),
    }
}

/// Several nodes share a PostgreSQL database, and take per-lead load.
fn check_nodes(scenario: &Scenario, options: &BenchOptions) -> Result<(), BenchError> {
    match options.nodes {
        0 => Err(BenchError::NoNodes),
        1 => Ok(()),
        nodes if options.postgres.is_none() => Err(BenchError::NodesWithoutPostgres { nodes }),
        _ if scenario.bulk => Err(BenchError::NodesNotPerLead { scenario: scenario.name }),
        _ => Ok(()),
    }
}

/// The measured phases, with lead numbering that never repeats within a run.
fn phases(options: &BenchOptions) -> Vec<Phase> {
    let mut phases = Vec::new();
    let mut next = options.warmup_leads as u64;
    let base = |load, leads, first_index| Phase {
        load,
        leads,
        first_index,
        max_duration: options.max_phase_duration,
        drain_timeout: options.drain_timeout,
        max_in_flight: options.max_in_flight,
    };
    if let Some(rate) = options.rate {
        phases.push(base(Load::Fixed { rate }, options.fixed_leads, next));
        next += options.fixed_leads as u64;
    }
    if let Some(concurrency) = options.concurrency {
        phases.push(base(Load::Max { concurrency }, options.max_leads, next));
    }
    phases
}

fn warmup(options: &BenchOptions) -> Option<Phase> {
    (options.warmup_leads > 0).then_some(Phase {
        load: Load::Max { concurrency: 8 },
        leads: options.warmup_leads,
        first_index: 0,
        max_duration: options.max_phase_duration,
        drain_timeout: options.drain_timeout,
        max_in_flight: options.max_in_flight,
    })
}

/// Starts `herald sandbox`; with a `latency`, the scenario's provider host answers after it.
async fn start_sandbox(herald: &Path, host: &str, latency: Duration) -> Result<Process, BenchError> {
    let mut command = Command::new(herald);
    command.args([
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--kixie-businessid",
        "sandbox-business",
        "--kixie-apikey",
        "sandbox-apikey",
    ]);
    // The sandbox reads its options file when it starts, so the file need not outlive the start.
    let options = tempfile::tempdir()?;
    if !latency.is_zero() {
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let config = serde_json::json!({
            "kixie": {"businessid": "sandbox-business", "apikey": "sandbox-apikey"},
            "faults": {host: {"latency_ms": [millis, millis]}},
        });
        let path = options.path().join("sandbox.json");
        std::fs::write(&path, config.to_string())?;
        command.arg("--config").arg(path);
    }
    command.env("HERALD_LOG", "error");
    Process::start("herald sandbox", command, "listening on http://", READY_LIMIT).await
}

fn serve_command(herald: &Path, project: &Path, db: &Path, sandbox: Option<&str>) -> Command {
    let mut command = Command::new(herald);
    command.arg("serve").arg("--project").arg(project).arg("--listen").arg("127.0.0.1:0").arg("--db").arg(db);
    if let Some(sandbox) = sandbox {
        command.arg("--sandbox").arg(sandbox);
    }
    command.env("HERALD_LOG", "error");
    command
}

/// Times `runs` fresh starts of `herald serve` on an empty database: spawn to the "listening" line, and
/// spawn to the first successful `GET /health`; then the idle resident set.
async fn herald_startup(
    herald: &Path,
    project: &Path,
    client: &reqwest::Client,
    runs: usize,
    progress: &ProgressBar,
) -> Result<StartupReport, BenchError> {
    progress.set_length(runs as u64);
    progress.set_position(0);
    progress.set_message("timing fresh starts of herald serve");
    let (mut listening, mut health, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let temp = tempfile::tempdir()?;
        let command = serve_command(herald, project, &temp.path().join("herald.db"), None);
        let mut serve = Process::start("herald serve", command, "listening on http://", READY_LIMIT).await?;
        listening.push(serve.to_ready.as_secs_f64() * 1000.0);
        let url = format!("{}/health", serve.url);
        let limit = Instant::now() + READY_LIMIT;
        loop {
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            serve.check_alive()?;
            if Instant::now() > limit {
                return Err(BenchError::NotReady {
                    what: "herald serve /health".into(),
                    limit: READY_LIMIT,
                    output: serve.output(),
                });
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        health.push(serve.spawned_at.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(IDLE_SETTLE).await;
        idle.push(Usage::of(serve.pid).rss_kib);
        serve.stop().await;
        progress.inc(1);
    }
    idle.sort_unstable();
    Ok(StartupReport {
        target: "herald".into(),
        runs,
        to_listening: Spread::of(&listening),
        to_health: Some(Spread::of(&health)),
        idle_rss_kib: idle.get(idle.len() / 2).copied().unwrap_or(0),
    })
}

/// herald's `token` command exists from the API-users work on; older binaries take unauthenticated
/// record requests.
async fn herald_has_tokens(herald: &Path) -> bool {
    Command::new(herald)
        .args(["token", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Copies a project and lifts its named credentials' provider limits (Kixie's 10,000 calls a day,
/// 8x8's 1,800 requests a second): one bench run sends more than a day's quota to a sandbox that does
/// not enforce them. A named credential that sets `rate_limit` itself keeps it.
fn copy_without_provider_limits(from: &Path, to: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "node_modules" {
                copy_without_provider_limits(&entry.path(), &target)?;
            }
            continue;
        }
        if entry.path().extension().is_some_and(|e| e == "db" || e == "key") {
            continue;
        }
        let mut text = std::fs::read(entry.path())?;
        let named = std::str::from_utf8(&text).is_ok_and(|t| {
            t.lines().any(|l| l.trim() == "kind: named-credential") && !t.contains("rate_limit:")
        });
        if named {
            text.extend_from_slice(b"\n# herald bench: provider limits lifted for the sandbox\nrate_limit: {per_second: 100000000, per_day: 2000000000}\n");
        }
        std::fs::write(target, text)?;
    }
    Ok(())
}

/// A bench user holding the scenario project's API and integration permission sets, and its token.
async fn create_api_token(herald: &Path, project: &Path, db: &Path) -> Result<String, BenchError> {
    let mut sets = Vec::new();
    for set in ["Herald_API_User", "Kixie_Integration_User", "CPaaS_API_Access"] {
        if project.join("permissions").join(format!("{set}.yaml")).is_file() {
            sets.push(set);
        }
    }
    let mut command = Command::new(herald);
    command.args(["user", "add", "bench"]);
    for set in &sets {
        command.args(["--permission-set", set]);
    }
    command.arg("--project").arg(project).arg("--db").arg(db);
    process::run_with_stdin("herald user add", command, b"").await?;
    let mut command = Command::new(herald);
    command.args(["token", "create", "bench"]).arg("--project").arg(project).arg("--db").arg(db);
    command.stdin(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let output = command
        .output()
        .await
        .map_err(|source| BenchError::Spawn { what: "herald token create".into(), source })?;
    if !output.status.success() {
        return Err(BenchError::Exited {
            what: "herald token create".into(),
            status: output.status.to_string(),
            output: String::from_utf8_lossy(&output.stdout).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// herald serving a copy of the scenario's project (credentials set, a bench user's token made) and
/// the sandbox it calls, both as separate processes on loopback; on PostgreSQL, possibly several
/// `herald serve` nodes on the one database, calling the one sandbox.
struct HeraldUnderTest {
    /// Holds the database and the project copy until the processes have stopped.
    _temp: tempfile::TempDir,
    /// One or more nodes; the first is the one a single-node run has.
    serve: Vec<Process>,
    sandbox: Process,
    /// `Bearer <token>` when the binary has API tokens.
    authorization: Option<String>,
    /// The scratch PostgreSQL database herald keeps its state in, dropped after the processes.
    scratch: Option<herald_store::postgres::ScratchDatabase>,
}

impl HeraldUnderTest {
    async fn start(
        herald: &Path,
        project: &Path,
        scenario: &Scenario,
        provider_latency: Duration,
        postgres: Option<&str>,
        nodes: usize,
        progress: &ProgressBar,
    ) -> Result<HeraldUnderTest, BenchError> {
        let temp = tempfile::tempdir()?;
        let database = postgres
            .map(|server| herald_store::postgres::ScratchDatabase::create_on(server, "herald_bench"))
            .transpose()
            .map_err(BenchError::Database)?;
        let db = database.as_ref().map_or_else(|| temp.path().join("herald.db"), |d| PathBuf::from(&d.url));
        let copy = temp.path().join("project");
        copy_without_provider_limits(project, &copy)?;
        let project = copy.as_path();
        progress.set_message("setting credentials");
        for secret in scenario.secrets {
            let mut command = Command::new(herald);
            command
                .args(["credential", "set", secret.external_credential, secret.principal, secret.parameter])
                .arg("--project")
                .arg(project)
                .arg("--db")
                .arg(&db);
            process::run_with_stdin("herald credential set", command, secret.value.as_bytes()).await?;
        }
        let authorization = if herald_has_tokens(herald).await {
            Some(format!("Bearer {}", create_api_token(herald, project, &db).await?))
        } else {
            None
        };
        let sandbox = start_sandbox(herald, scenario.provider_host, provider_latency).await?;
        let mut serve = Vec::with_capacity(nodes.max(1));
        for node in 0..nodes.max(1) {
            if nodes > 1 {
                progress.set_message(format!("starting node {} of {nodes}", node + 1));
            }
            let what =
                if nodes > 1 { format!("herald serve (node {})", node + 1) } else { "herald serve".into() };
            serve.push(
                Process::start(
                    &what,
                    serve_command(herald, project, &db, Some(&sandbox.url)),
                    "listening on http://",
                    READY_LIMIT,
                )
                .await?,
            );
        }
        Ok(HeraldUnderTest { _temp: temp, serve, sandbox, authorization, scratch: database })
    }

    /// The database's name on the PostgreSQL server, for the server's CPU.
    fn database(&self) -> Option<&str> {
        self.scratch.as_ref().and_then(|d| server_cpu::database_of(&d.url))
    }

    /// Stops every process; an error if one had died before.
    async fn stop(self) -> Result<(), BenchError> {
        let (serve, mut sandbox) = (self.serve, self.sandbox);
        let mut alive = sandbox.check_alive();
        for mut node in serve {
            alive = alive.and(node.check_alive());
            node.stop().await;
        }
        sandbox.stop().await;
        alive
    }
}

const HERALD_DURABILITY: &str =
    "every record and run committed to SQLite (WAL, synchronous=NORMAL) before the 201";
const HERALD_POSTGRES_DURABILITY: &str = "every record and run committed to PostgreSQL (synchronous_commit=off: survives a kill of herald) before the 201";

/// How a run of herald is named in the tables.
fn target_name(postgres: bool, nodes: usize) -> String {
    match (postgres, nodes) {
        (false, _) => "herald".into(),
        (true, 0 | 1) => "herald on PostgreSQL".into(),
        (true, nodes) => format!("herald on PostgreSQL, {nodes} nodes"),
    }
}

/// One run of herald under the bench: the phases, and where herald keeps its state (a SQLite file,
/// or a scratch database on this PostgreSQL server, shared by `nodes` servers).
#[derive(Clone, Copy)]
struct RunOn<'a> {
    phases: &'a [Phase],
    postgres: Option<&'a str>,
    nodes: usize,
}

async fn run_herald(
    herald: &Path,
    project: &Path,
    scenario: &Scenario,
    client: &reqwest::Client,
    options: &BenchOptions,
    on: RunOn<'_>,
    progress: &ProgressBar,
) -> Result<(TargetReport, Vec<String>), BenchError> {
    let RunOn { phases, postgres, nodes } = on;
    let under_test = HeraldUnderTest::start(
        herald,
        project,
        scenario,
        options.provider_latency,
        postgres,
        nodes,
        progress,
    )
    .await?;
    let name = target_name(postgres.is_some(), nodes);
    let target = Target {
        name: &name,
        client,
        records_urls: under_test
            .serve
            .iter()
            .map(|node| format!("{}/api/v1/records/{}", node.url, scenario.object))
            .collect(),
        authorization: under_test.authorization.clone(),
        pids: under_test.serve.iter().map(|node| node.pid).collect(),
        sandbox_url: &under_test.sandbox.url,
        sandbox_pid: under_test.sandbox.pid,
        database: under_test.database(),
    };
    let result = drive(scenario, &target, options, phases, progress).await;
    let alive = under_test.stop().await;
    let (phases, notes) = result?;
    alive?;
    let durability = if postgres.is_some() { HERALD_POSTGRES_DURABILITY } else { HERALD_DURABILITY };
    let nodes = nodes.max(1);
    Ok((TargetReport { target: name, nodes, durability: durability.into(), phases }, notes))
}

/// The bulk phase against herald: seed the recipients, launch the campaign, count what 8x8 receives.
async fn run_herald_bulk(
    herald: &Path,
    project: &Path,
    scenario: &Scenario,
    client: &reqwest::Client,
    recipients: usize,
    progress: &ProgressBar,
) -> Result<(BulkReport, Vec<String>), BenchError> {
    // A campaign is measured against an instant provider: its batches are few, and the point is
    // herald's own work per recipient.
    let under_test =
        HeraldUnderTest::start(herald, project, scenario, Duration::ZERO, None, 1, progress).await?;
    let target = bulk::BulkTarget {
        client,
        api_url: &under_test.serve[0].url,
        authorization: under_test.authorization.as_deref(),
        pid: under_test.serve[0].pid,
        sandbox_url: &under_test.sandbox.url,
        sandbox_pid: under_test.sandbox.pid,
    };
    let result = bulk::run(scenario, &target, recipients, progress).await;
    let alive = under_test.stop().await;
    let report = result?;
    alive?;
    Ok(report)
}

async fn run_node_red(
    herald: &Path,
    dir: &Path,
    scenario: &Scenario,
    client: &reqwest::Client,
    options: &BenchOptions,
    phases: &[Phase],
    progress: &ProgressBar,
) -> Result<(TargetReport, StartupReport, Vec<String>), BenchError> {
    let sandbox = start_sandbox(herald, scenario.provider_host, options.provider_latency).await?;
    let user_dir = tempfile::tempdir()?;
    let port = process::free_port()?;
    let mut command = Command::new("node");
    command
        .arg(dir.join("node_modules/node-red/red.js"))
        .arg("--settings")
        .arg(dir.join("settings.js"))
        .arg("--userDir")
        .arg(user_dir.path())
        .arg("--port")
        .arg(port.to_string())
        .arg(dir.join("flows.json"))
        .env("SANDBOX_URL", &sandbox.url)
        .env("NODE_RED_PORT", port.to_string());
    progress.set_message("starting Node-RED");
    let mut red = Process::start("Node-RED", command, "Started flows", READY_LIMIT).await?;
    red.url = format!("http://127.0.0.1:{port}");
    let to_ready = red.to_ready.as_secs_f64() * 1000.0;
    tokio::time::sleep(IDLE_SETTLE).await;
    let startup = StartupReport {
        target: "node-red".into(),
        runs: 1,
        to_listening: Spread::of(&[to_ready]),
        to_health: None,
        idle_rss_kib: Usage::of(red.pid).rss_kib,
    };
    let target = Target {
        name: "node-red",
        client,
        records_urls: vec![format!("{}/api/v1/records/{}", red.url, scenario.object)],
        authorization: None,
        pids: vec![red.pid],
        sandbox_url: &sandbox.url,
        sandbox_pid: sandbox.pid,
        database: None,
    };
    let result = drive(scenario, &target, options, phases, progress).await;
    let (mut red, mut sandbox) = (red, sandbox);
    let alive = red.check_alive().and(sandbox.check_alive());
    red.stop().await;
    sandbox.stop().await;
    let (phases, notes) = result?;
    alive?;
    Ok((
        TargetReport {
            target: "node-red".into(),
            nodes: 1,
            durability: "nothing kept: leads live only in memory".into(),
            phases,
        },
        startup,
        notes,
    ))
}

/// Warm-up, then every measured phase, against one target.
async fn drive(
    scenario: &Scenario,
    target: &Target<'_>,
    options: &BenchOptions,
    phases: &[Phase],
    progress: &ProgressBar,
) -> Result<(Vec<PhaseReport>, Vec<String>), BenchError> {
    if let Some(warmup) = warmup(options) {
        progress.set_message("warm-up");
        load::run_phase(scenario, target, warmup, progress).await?;
    }
    let mut reports = Vec::new();
    let mut notes = Vec::new();
    for phase in phases {
        let (report, phase_notes) = load::run_phase(scenario, target, *phase, progress).await?;
        reports.push(report);
        notes.extend(phase_notes);
    }
    Ok((reports, notes))
}

async fn herald_version(herald: &Path) -> String {
    Command::new(herald)
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "herald (unknown version)".into())
}

fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default(),
        load_at_start: load_average(),
        load_at_end: 0.0,
    }
}

/// The 1-minute load average (0 where /proc/loadavg cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0)
}

fn find_root(root: Option<&Path>, scenario: &Scenario) -> Result<PathBuf, BenchError> {
    if let Some(root) = root {
        return if root.join(scenario.project).is_dir() {
            Ok(root.to_path_buf())
        } else {
            Err(BenchError::RootNotFound { what: scenario.project.into(), root: root.to_path_buf() })
        };
    }
    let cwd = std::env::current_dir()?;
    cwd.ancestors()
        .find(|dir| dir.join(scenario.project).is_dir())
        .map(Path::to_path_buf)
        .ok_or(BenchError::RootNotFound { what: scenario.project.into(), root: cwd })
}

fn find_herald(herald: Option<&Path>, root: &Path) -> Result<PathBuf, BenchError> {
    if let Some(path) = herald {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(BenchError::HeraldNotFound { path: path.to_path_buf() })
        };
    }
    let name = format!("herald{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        candidates.push(dir.join(&name));
        if let Some(up) = dir.parent() {
            candidates.push(up.join(&name)); // target/release/examples/bench -> target/release/herald
        }
    }
    candidates.push(root.join("target/release").join(&name));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| BenchError::HeraldNotFound { path: candidates.last().cloned().unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_future_can_be_spawned_and_the_error_is_anyhow_friendly() {
        fn send<T: Send>(_: &T) {}
        fn error<E: std::error::Error + Send + Sync + 'static>() {}
        let future = run(BenchOptions::default());
        send(&future);
        drop(future); // never polled: nothing starts
        error::<BenchError>();
    }

    #[test]
    fn phases_number_leads_after_the_warm_up_without_overlap() {
        let options =
            BenchOptions { warmup_leads: 500, fixed_leads: 1000, max_leads: 2000, ..Default::default() };
        let phases = phases(&options);
        assert_eq!(phases.len(), 2);
        assert_eq!((phases[0].load, phases[0].first_index), (Load::Fixed { rate: 1000 }, 500));
        assert_eq!((phases[1].load, phases[1].first_index), (Load::Max { concurrency: 64 }, 1500));
        let only_max = BenchOptions { rate: None, ..options };
        assert_eq!(phases_of(&only_max), vec![Load::Max { concurrency: 64 }]);
    }

    fn phases_of(options: &BenchOptions) -> Vec<Load> {
        phases(options).iter().map(|p| p.load).collect()
    }

    #[test]
    fn recipients_are_for_bulk_scenarios_only() {
        let bulk = Scenario::by_name("bulk-8x8").unwrap();
        let kixie = Scenario::by_name("kixie").unwrap();
        let asked = |recipients| BenchOptions { recipients, ..Default::default() };
        assert_eq!(recipients(bulk, &asked(None)).unwrap(), Some(DEFAULT_RECIPIENTS));
        assert_eq!(recipients(bulk, &asked(Some(5_000))).unwrap(), Some(5_000));
        assert!(matches!(recipients(bulk, &asked(Some(0))), Err(BenchError::NoRecipients)));
        assert_eq!(recipients(kixie, &asked(None)).unwrap(), None);
        let error = recipients(kixie, &asked(Some(10))).unwrap_err();
        assert!(error.to_string().contains("bulk-8x8"), "{error}");
    }

    #[test]
    fn several_nodes_need_postgres_and_a_per_lead_scenario() {
        let kixie = Scenario::by_name("kixie").unwrap();
        let bulk = Scenario::by_name("bulk-8x8").unwrap();
        let server = Some("postgres://root@127.0.0.1:5432/postgres".to_string());
        let asked = |nodes, postgres: &Option<String>| BenchOptions {
            nodes,
            postgres: postgres.clone(),
            ..Default::default()
        };
        assert!(check_nodes(kixie, &asked(1, &None)).is_ok(), "one node runs on SQLite as before");
        assert!(check_nodes(kixie, &asked(1, &server)).is_ok());
        assert!(check_nodes(kixie, &asked(3, &server)).is_ok());
        let error = check_nodes(kixie, &asked(3, &None)).unwrap_err();
        assert!(matches!(error, BenchError::NodesWithoutPostgres { nodes: 3 }), "{error}");
        assert!(error.to_string().contains("--postgres postgres://"), "the error says the fix: {error}");
        assert!(matches!(check_nodes(kixie, &asked(0, &server)), Err(BenchError::NoNodes)));
        let error = check_nodes(bulk, &asked(2, &server)).unwrap_err();
        assert!(error.to_string().contains("bulk-8x8"), "{error}");
    }

    #[test]
    fn the_target_says_where_herald_kept_its_state_and_on_how_many_nodes() {
        assert_eq!(target_name(false, 1), "herald");
        assert_eq!(target_name(true, 1), "herald on PostgreSQL");
        assert_eq!(target_name(true, 3), "herald on PostgreSQL, 3 nodes");
    }

    #[test]
    fn peers_by_name() {
        assert_eq!(Peer::parse("Node-RED").unwrap(), Peer::NodeRed);
        assert!(Peer::parse("n8n").unwrap_err().to_string().contains("node-red"));
    }
}
