//! What a run found, as JSON (for machines and regressions) and Markdown (for docs/benchmarks.md).

use crate::stats::{Latency, ratio};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The whole result of one `run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub scenario_summary: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The command line that produced the report, when the caller says (shown above the tables).
    pub command: Option<String>,
    pub machine: Machine,
    /// `herald --version` of the binary that was measured.
    pub herald_version: String,
    pub startup: Vec<StartupReport>,
    pub targets: Vec<TargetReport>,
    /// herald against each peer, phase by phase.
    pub comparisons: Vec<Comparison>,
    /// A bulk scenario's campaign (the per-lead `targets` are then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<BulkReport>,
    /// Remarks the harness made while running (a phase cut short, leads that never arrived, ...).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// The 1-minute load average when the run started and when it ended (other work on the machine
    /// shares its cores with the processes measured).
    pub load_at_start: f64,
    pub load_at_end: f64,
}

/// A spread of a few repeated measurements, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    pub fn of(values_ms: &[f64]) -> Spread {
        if values_ms.is_empty() {
            return Spread::default();
        }
        let mut sorted = values_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Spread { median_ms: median, min_ms: sorted[0], max_ms: sorted[n - 1] }
    }
}

/// How fast a target starts and how much memory it holds when idle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartupReport {
    pub target: String,
    pub runs: usize,
    /// From spawn to the line saying where it listens (Node-RED: "Started flows").
    pub to_listening: Spread,
    /// From spawn to the first successful `GET /health` (herald only).
    pub to_health: Option<Spread>,
    /// Resident set when idle, after start, median over the runs.
    pub idle_rss_kib: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// `herald` or a peer's name (`node-red`); `herald on PostgreSQL, 3 nodes` for several nodes.
    pub target: String,
    /// How many `herald serve` processes shared the load (on one PostgreSQL database). Their CPU per
    /// lead is the sum over the nodes; their memory (peak RSS, RSS) the largest node's.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub nodes: usize,
    /// What the target keeps: herald commits every lead to SQLite; Node-RED keeps nothing.
    pub durability: String,
    pub phases: Vec<PhaseReport>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// How the leads of a phase were sent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Open loop: lead i is sent at start + i/rate whatever the responses (no coordinated omission).
    Fixed { rate: u32 },
    /// Closed loop: `concurrency` connections, each sending its next lead when the previous is answered.
    Max { concurrency: usize },
}

impl Load {
    pub fn label(&self) -> String {
        match self {
            Load::Fixed { rate } => format!("fixed {rate}/s"),
            Load::Max { concurrency } => format!("max, {concurrency} conns"),
        }
    }
}

/// One load phase against one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub load: Load,
    /// Leads the phase meant to send.
    pub leads: usize,
    /// Leads put on the wire.
    pub sent: usize,
    /// Leads not sent: the phase's time limit passed, or (open loop) too many were in flight.
    pub not_sent: usize,
    /// Answered 2xx.
    pub accepted: usize,
    /// Answered with another status.
    pub rejected: usize,
    /// No answer: connection errors and timeouts.
    pub transport_errors: usize,
    /// Accepted leads whose provider request the sandbox received.
    pub delivered: usize,
    /// Accepted leads whose provider request never arrived within the drain timeout.
    pub missing: usize,
    /// Provider requests beyond the first for the same lead.
    pub duplicates: usize,
    /// Provider requests of the scenario's host that matched no lead of the phase.
    pub unmatched: usize,
    /// From the first send to the last provider receipt, in seconds.
    pub duration_s: f64,
    /// Leads sent per second (from the first send to the last send).
    pub send_rate: f64,
    /// Delivered leads per second, from the first send to the last provider receipt.
    pub throughput: f64,
    /// Provider receipt minus the client's send time, per delivered lead.
    pub speed_to_lead: Latency,
    /// Time to the HTTP answer of the record request.
    pub response: Latency,
    /// Open loop: actual send time minus the scheduled time (how well the load generator kept up).
    pub send_lag: Option<Latency>,
    /// VmHWM of the target after the phase (the process's peak so far).
    pub peak_rss_kib: u64,
    /// VmRSS of the target after the phase.
    pub rss_kib: u64,
    /// Target CPU time (user + system) during the phase, per delivered lead.
    pub cpu_us_per_lead: f64,
    /// The sandbox's CPU per delivered lead (it shares the machine).
    pub sandbox_cpu_us_per_lead: f64,
    /// The load generator's CPU per delivered lead (it shares the machine).
    pub client_cpu_us_per_lead: f64,
    /// herald on PostgreSQL: the server's CPU for this phase (absent for SQLite and peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<ServerCpu>,
    /// herald on PostgreSQL: the round trips its nodes made to the server during the phase (and its
    /// drain), per delivered lead; the nodes' background work (heartbeats, polls) is included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_round_trips_per_lead: Option<f64>,
}

/// The PostgreSQL server's CPU during a phase: its processes serving the bench's database (the
/// shared ones, such as the WAL writer, left out).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerCpu {
    /// CPU time (user + system) per delivered lead, in µs.
    Measured { us_per_lead: f64 },
    /// The server's processes are not in this machine's /proc (a remote server): not measured.
    NotReadable,
}

/// One bulk campaign: a record update launches one flow run that texts every recipient through 8x8's
/// batch endpoint. Times are from the client's clock just before it sent the update to the sandbox's
/// clock at receipt (same machine, same clock).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkReport {
    /// Recipients asked for: Leads created, each with a unique phone, linked to the campaign.
    pub recipients: usize,
    /// Leads the records API created (setup, not measured).
    pub seeded: usize,
    /// Seeding: wall time in seconds, leads per second, and the connections it used.
    pub seed_s: f64,
    pub seed_rate: f64,
    pub seed_concurrency: usize,
    /// Distinct recipients whose phone reached the provider in an accepted (2xx) request.
    pub messages: usize,
    /// Accepted provider requests that carried recipients.
    pub batches: usize,
    /// Provider requests the sandbox refused (non-2xx): their recipients are not counted.
    pub refused_batches: usize,
    /// Recipients received more than once (beyond the first), and phones that are no recipient's.
    pub duplicates: usize,
    pub unmatched: usize,
    /// The update's HTTP answer (the record and its run committed), in ms.
    pub launch_response_ms: f64,
    /// From the update sent to the first batch received, and to the batch that carried the last new
    /// recipient, in ms.
    pub to_first_batch_ms: Option<f64>,
    pub to_last_message_ms: Option<f64>,
    /// Recipients received per second, from the update sent to the last one received.
    pub messages_per_s: f64,
    /// herald's CPU time (user + system) from just before the update to the last recipient seen, in
    /// ms, and per recipient received, in µs; the sandbox's per recipient too.
    pub herald_cpu_ms: f64,
    pub cpu_us_per_message: f64,
    pub sandbox_cpu_us_per_message: f64,
    /// herald's resident set just before the update (after seeding), and the peaks (VmHWM) of herald
    /// and the sandbox after the campaign; herald's peak may have been reached while seeding.
    pub herald_rss_before_kib: u64,
    pub herald_peak_rss_kib: u64,
    pub sandbox_peak_rss_kib: u64,
    /// The sandbox alone answering one batch of `probe_messages` messages (as the flow sends them),
    /// posted straight to it before the campaign: what it costs the run per batch.
    pub probe_messages: usize,
    pub sandbox_batch_ms: Option<Spread>,
    /// The campaign's flow run(s) when the watch ended: status (`finished`, `failed`, `unknown`,
    /// `running`, ...) and fault, if any.
    pub runs: Vec<BulkRun>,
    /// The watch stopped at its time limit (`timeout_s`) before every recipient had arrived.
    pub timed_out: bool,
    pub timeout_s: f64,
    /// The target (>= 100,000 messages/s into the sandbox) and whether this run met it (every
    /// recipient received, at that rate or faster).
    pub target_messages_per_s: f64,
    pub target_met: bool,
}

/// A flow run the campaign's update started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkRun {
    pub id: String,
    pub status: String,
    pub fault: Option<String>,
}

/// herald against a peer on the same phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub load: Load,
    pub peer: String,
    /// herald's throughput / the peer's (above 1: herald is faster).
    pub throughput_ratio: Option<f64>,
    /// The peer's p50 speed to lead / herald's (above 1: herald is quicker).
    pub p50_ratio: Option<f64>,
    /// The peer's p99 speed to lead / herald's (above 1: herald is quicker).
    pub p99_ratio: Option<f64>,
    /// The peer's CPU per lead / herald's (above 1: herald uses less).
    pub cpu_ratio: Option<f64>,
}

impl Comparison {
    pub fn between(herald: &PhaseReport, peer_name: &str, peer: &PhaseReport) -> Comparison {
        let latency_ratio = |p: u64, h: u64| {
            (herald.delivered > 0 && peer.delivered > 0).then(|| ratio(p as f64, h as f64)).flatten()
        };
        Comparison {
            load: herald.load,
            peer: peer_name.to_string(),
            throughput_ratio: ratio(herald.throughput, peer.throughput),
            p50_ratio: latency_ratio(peer.speed_to_lead.p50_us, herald.speed_to_lead.p50_us),
            p99_ratio: latency_ratio(peer.speed_to_lead.p99_us, herald.speed_to_lead.p99_us),
            cpu_ratio: ratio(peer.cpu_us_per_lead, herald.cpu_us_per_lead),
        }
    }
}

impl Report {
    /// Pretty JSON, the full report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Markdown tables for docs/benchmarks.md: speed to lead, resources, ratios, startup.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### Scenario `{}`: {}\n", self.scenario, self.scenario_summary);
        if let Some(command) = &self.command {
            let _ = writeln!(md, "Command: `{command}`\n");
        }
        let _ = writeln!(
            md,
            "Run {} on {} CPU{} ({}), Linux {}, {}; load average {:.2} at the start, {:.2} at the end.\n",
            self.started_at,
            self.machine.cpus,
            if self.machine.cpus == 1 { "" } else { "s" },
            if self.machine.cpu_model.is_empty() { "unknown CPU" } else { &self.machine.cpu_model },
            if self.machine.kernel.is_empty() { "?" } else { &self.machine.kernel },
            self.herald_version,
            self.machine.load_at_start,
            self.machine.load_at_end,
        );

        if let Some(bulk) = &self.bulk {
            bulk.write_markdown(&mut md);
        }
        if self.targets.iter().any(|t| !t.phases.is_empty()) {
            self.write_phases(&mut md);
        }
        self.write_rest(&mut md);
        md
    }

    /// The two per-lead tables: speed to lead, then resources.
    fn write_phases(&self, md: &mut String) {
        let _ = writeln!(md, "Speed to lead (record request sent -> provider request received), in ms:\n");
        let _ = writeln!(
            md,
            "| target | load | leads | delivered | errors | missing | p50 | p90 | p99 | p99.9 | max | throughput (leads/s) |"
        );
        let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for target in &self.targets {
            for phase in &target.phases {
                let s = &phase.speed_to_lead;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    target.target,
                    phase.load.label(),
                    phase.sent,
                    phase.delivered,
                    phase.rejected + phase.transport_errors + phase.not_sent,
                    phase.missing,
                    ms(s.p50_us),
                    ms(s.p90_us),
                    ms(s.p99_us),
                    ms(s.p999_us),
                    ms(s.max_us),
                    whole(phase.throughput),
                );
            }
        }

        let _ = writeln!(md, "\nResources and the record request itself:\n");
        // The server's column only where a target ran on PostgreSQL: other reports keep their shape.
        let server = self.targets.iter().flat_map(|t| &t.phases).any(|p| p.server_cpu.is_some());
        let _ = writeln!(
            md,
            "| target | load | peak RSS (MB) | CPU per lead (µs) |{} sandbox CPU/lead (µs) | client CPU/lead (µs) | response p50 / p99 (ms) | send rate (leads/s) |",
            if server { " PostgreSQL CPU/lead (µs) | round trips to PostgreSQL/lead |" } else { "" }
        );
        let _ = writeln!(md, "|---|---|--:|--:|{}--:|--:|--:|--:|", if server { "--:|--:|" } else { "" });
        for target in &self.targets {
            for phase in &target.phases {
                let mut server_cpu = match (server, phase.server_cpu) {
                    (false, _) => String::new(),
                    (true, None) => " - |".to_string(),
                    (true, Some(ServerCpu::NotReadable)) => " n/a |".to_string(),
                    (true, Some(ServerCpu::Measured { us_per_lead })) => format!(" {} |", whole(us_per_lead)),
                };
                if server {
                    match phase.database_round_trips_per_lead {
                        Some(trips) => server_cpu.push_str(&format!(" {trips:.1} |")),
                        None => server_cpu.push_str(" - |"),
                    }
                }
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |{server_cpu} {} | {} | {} / {} | {} |",
                    target.target,
                    phase.load.label(),
                    mb(phase.peak_rss_kib),
                    whole(phase.cpu_us_per_lead),
                    whole(phase.sandbox_cpu_us_per_lead),
                    whole(phase.client_cpu_us_per_lead),
                    ms(phase.response.p50_us),
                    ms(phase.response.p99_us),
                    whole(phase.send_rate),
                );
            }
        }
        if self.targets.iter().any(|t| t.nodes > 1) {
            let _ = writeln!(
                md,
                "\nSeveral nodes: CPU per lead is the sum over the nodes, peak RSS the largest node's."
            );
        }
        if server {
            let _ = writeln!(
                md,
                "\nPostgreSQL CPU/lead: the server's processes serving the bench's database (not its WAL \
                 writer or checkpointer), from /proc; n/a when they are not on this machine."
            );
        }
    }

    /// Ratios against peers, startup, notes.
    fn write_rest(&self, md: &mut String) {
        if !self.comparisons.is_empty() {
            let _ = writeln!(
                md,
                "\nherald against its peers, same run, same machine (above 1x: herald is better):\n"
            );
            let _ = writeln!(
                md,
                "| load | peer | throughput (herald / peer) | p50 (peer / herald) | p99 (peer / herald) | CPU per lead (peer / herald) |"
            );
            let _ = writeln!(md, "|---|---|--:|--:|--:|--:|");
            for c in &self.comparisons {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    c.load.label(),
                    c.peer,
                    times(c.throughput_ratio),
                    times(c.p50_ratio),
                    times(c.p99_ratio),
                    times(c.cpu_ratio),
                );
            }
            let durability: Vec<String> =
                self.targets.iter().map(|t| format!("{}: {}", t.target, t.durability)).collect();
            let _ = writeln!(md, "\nDurability: {}.", durability.join("; "));
        }

        if !self.startup.is_empty() {
            let _ = writeln!(
                md,
                "\nStartup (spawn -> ready; herald on an empty database, ready = its `listening on` line; \
                 Node-RED ready = its `Started flows` line) and idle memory:\n"
            );
            let _ = writeln!(
                md,
                "| target | runs | to listening line (ms), median [min-max] | to first /health (ms), median [min-max] | idle RSS (MB) |"
            );
            let _ = writeln!(md, "|---|--:|--:|--:|--:|");
            for s in &self.startup {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    s.target,
                    s.runs,
                    spread(&s.to_listening),
                    s.to_health.as_ref().map_or_else(|| "-".to_string(), spread),
                    mb(s.idle_rss_kib),
                );
            }
        }

        if !self.notes.is_empty() {
            let _ = writeln!(md, "\nNotes:\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
    }
}

impl BulkReport {
    /// Whether a run meets the target: every recipient received, at `target` messages/s or faster.
    pub fn meets(recipients: usize, messages: usize, messages_per_s: f64, target: f64) -> bool {
        recipients > 0 && messages >= recipients && messages_per_s >= target
    }

    fn write_markdown(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "Bulk campaign (the Campaign's Status set to Launched -> its flow run's 8x8 batch requests received by the sandbox), \
             times from the update sent, in ms:\n"
        );
        let _ = writeln!(
            md,
            "| recipients | messages received | batch requests | update answered | to first batch | to last message | messages/s | herald CPU per message (µs) | herald peak RSS (MB) | sandbox peak RSS (MB) | run |"
        );
        let _ = writeln!(md, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        let runs: Vec<&str> = self.runs.iter().map(|r| r.status.as_str()).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            whole(self.recipients as f64),
            whole(self.messages as f64),
            self.batches,
            ms_f(Some(self.launch_response_ms)),
            ms_f(self.to_first_batch_ms),
            ms_f(self.to_last_message_ms),
            whole(self.messages_per_s),
            tenths(self.cpu_us_per_message),
            mb(self.herald_peak_rss_kib),
            mb(self.sandbox_peak_rss_kib),
            if runs.is_empty() { "none".to_string() } else { runs.join(", ") },
        );
        let _ = write!(
            md,
            "\nSetup, not measured: {} of {} Leads created through the records API in {:.1} s ({} leads/s, {} connections); \
             herald held {} MB before the update.",
            whole(self.seeded as f64),
            whole(self.recipients as f64),
            self.seed_s,
            whole(self.seed_rate),
            self.seed_concurrency,
            mb(self.herald_rss_before_kib),
        );
        if let Some(probe) = &self.sandbox_batch_ms {
            let ceiling = if probe.median_ms > 0.0 {
                format!(
                    ", at most {} messages/s through one connection",
                    whole(self.probe_messages as f64 * 1000.0 / probe.median_ms)
                )
            } else {
                String::new()
            };
            let _ = write!(
                md,
                " The sandbox alone answers a batch of {} messages in {} ms, median [min-max]{ceiling}; \
                 during the campaign it used {} µs of CPU per message.",
                whole(self.probe_messages as f64),
                spread(probe),
                tenths(self.sandbox_cpu_us_per_message),
            );
        }
        let _ = writeln!(md, "\n");
        let reached = if self.messages >= self.recipients {
            format!("{} messages/s", whole(self.messages_per_s))
        } else {
            format!(
                "{} of {} recipients received ({} messages/s while they arrived)",
                whole(self.messages as f64),
                whole(self.recipients as f64),
                whole(self.messages_per_s)
            )
        };
        let _ = writeln!(md, "| target | reached in this run | |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| bulk >= {} messages/s through batches | {reached} | {} |\n",
            whole(self.target_messages_per_s),
            if self.target_met { "met" } else { "missed" },
        );
    }
}

/// Microseconds as milliseconds with two decimals (three below 0.1 ms).
fn ms(us: u64) -> String {
    if us < 100 { format!("{:.3}", us as f64 / 1000.0) } else { format!("{:.2}", us as f64 / 1000.0) }
}

/// Milliseconds with two decimals and thousands separated, or `-`.
fn ms_f(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => {
            let cents = (v * 100.0).round() as u64;
            format!("{}.{:02}", whole((cents / 100) as f64), cents % 100)
        }
        _ => "-".to_string(),
    }
}

/// One decimal, for small per-message figures.
fn tenths(value: f64) -> String {
    if value.is_finite() && value >= 0.0 { format!("{value:.1}") } else { "-".to_string() }
}

fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A rate or a count per lead, rounded, with thousands separated by commas.
fn whole(value: f64) -> String {
    let rounded = value.round();
    if !rounded.is_finite() || rounded < 0.0 {
        return "-".to_string();
    }
    let digits = format!("{}", rounded as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio with about two significant digits: 12x, 5.0x, 0.55x, 0.011x.
fn times(value: Option<f64>) -> String {
    value.map_or_else(
        || "-".to_string(),
        |v| match v {
            v if v >= 10.0 => format!("{v:.0}x"),
            v if v >= 1.0 => format!("{v:.1}x"),
            v if v >= 0.1 => format!("{v:.2}x"),
            v => format!("{v:.3}x"),
        },
    )
}

fn spread(s: &Spread) -> String {
    format!("{:.1} [{:.1}-{:.1}]", s.median_ms, s.min_ms, s.max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(load: Load, p50: u64, p99: u64, throughput: f64, cpu: f64) -> PhaseReport {
        PhaseReport {
            load,
            leads: 1000,
            sent: 1000,
            not_sent: 0,
            accepted: 1000,
            rejected: 0,
            transport_errors: 0,
            delivered: 998,
            missing: 2,
            duplicates: 0,
            unmatched: 0,
            duration_s: 1.0,
            send_rate: 1000.0,
            throughput,
            speed_to_lead: Latency {
                samples: 998,
                p50_us: p50,
                p90_us: p50 * 2,
                p99_us: p99,
                p999_us: p99 * 2,
                max_us: p99 * 3,
                mean_us: p50,
            },
            response: Latency { samples: 1000, p50_us: 300, p99_us: 900, ..Latency::default() },
            send_lag: None,
            peak_rss_kib: 20_480,
            rss_kib: 18_000,
            cpu_us_per_lead: cpu,
            sandbox_cpu_us_per_lead: 40.0,
            client_cpu_us_per_lead: 60.0,
            server_cpu: None,
            database_round_trips_per_lead: None,
        }
    }

    fn report() -> Report {
        let herald = phase(Load::Max { concurrency: 32 }, 800, 4_000, 12_345.6, 150.0);
        let node = phase(Load::Max { concurrency: 32 }, 4_000, 40_000, 2_469.1, 600.0);
        Report {
            scenario: "kixie".into(),
            scenario_summary: "one Kixie text per new Lead".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            command: Some("herald bench --peer node-red".into()),
            machine: Machine {
                cpus: 2,
                cpu_model: "Test CPU".into(),
                kernel: "6.1.0".into(),
                load_at_start: 0.25,
                load_at_end: 1.5,
            },
            herald_version: "herald 0.1.0".into(),
            startup: vec![StartupReport {
                target: "herald".into(),
                runs: 3,
                to_listening: Spread::of(&[30.0, 10.0, 20.0]),
                to_health: Some(Spread::of(&[11.0, 21.0, 31.0, 41.0])),
                idle_rss_kib: 10_240,
            }],
            comparisons: vec![Comparison::between(&herald, "node-red", &node)],
            bulk: None,
            targets: vec![
                TargetReport {
                    target: "herald".into(),
                    nodes: 1,
                    durability: "SQLite".into(),
                    phases: vec![herald],
                },
                TargetReport {
                    target: "node-red".into(),
                    nodes: 1,
                    durability: "memory".into(),
                    phases: vec![node],
                },
            ],
            notes: vec!["2 leads never arrived".into()],
        }
    }

    #[test]
    fn comparisons_are_ratios_in_herald_s_favour_above_one() {
        let report = report();
        let c = &report.comparisons[0];
        assert_eq!(c.throughput_ratio, Some(12_345.6 / 2_469.1));
        assert_eq!(c.p50_ratio, Some(5.0));
        assert_eq!(c.p99_ratio, Some(10.0));
        assert_eq!(c.cpu_ratio, Some(4.0));
        let mut empty = report.targets[1].phases[0].clone();
        empty.delivered = 0;
        empty.throughput = 0.0;
        let c = Comparison::between(&report.targets[0].phases[0], "node-red", &empty);
        assert_eq!((c.p99_ratio, c.throughput_ratio.map(f64::is_infinite)), (None, None));
    }

    #[test]
    fn spreads_take_the_median_of_odd_and_even_counts() {
        assert_eq!(Spread::of(&[30.0, 10.0, 20.0]), Spread { median_ms: 20.0, min_ms: 10.0, max_ms: 30.0 });
        assert_eq!(Spread::of(&[11.0, 21.0, 31.0, 41.0]).median_ms, 26.0);
        assert_eq!(Spread::of(&[]), Spread::default());
    }

    #[test]
    fn markdown_has_every_table() {
        let md = report().to_markdown();
        let expected = "### Scenario `kixie`: one Kixie text per new Lead

Command: `herald bench --peer node-red`

Run 2026-01-01T00:00:00Z on 2 CPUs (Test CPU), Linux 6.1.0, herald 0.1.0; load average 0.25 at the start, 1.50 at the end.

Speed to lead (record request sent -> provider request received), in ms:

| target | load | leads | delivered | errors | missing | p50 | p90 | p99 | p99.9 | max | throughput (leads/s) |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| herald | max, 32 conns | 1000 | 998 | 0 | 2 | 0.80 | 1.60 | 4.00 | 8.00 | 12.00 | 12,346 |
| node-red | max, 32 conns | 1000 | 998 | 0 | 2 | 4.00 | 8.00 | 40.00 | 80.00 | 120.00 | 2,469 |

Resources and the record request itself:

| target | load | peak RSS (MB) | CPU per lead (µs) | sandbox CPU/lead (µs) | client CPU/lead (µs) | response p50 / p99 (ms) | send rate (leads/s) |
|---|---|--:|--:|--:|--:|--:|--:|
| herald | max, 32 conns | 20.0 | 150 | 40 | 60 | 0.30 / 0.90 | 1,000 |
| node-red | max, 32 conns | 20.0 | 600 | 40 | 60 | 0.30 / 0.90 | 1,000 |

herald against its peers, same run, same machine (above 1x: herald is better):

| load | peer | throughput (herald / peer) | p50 (peer / herald) | p99 (peer / herald) | CPU per lead (peer / herald) |
|---|---|--:|--:|--:|--:|
| max, 32 conns | node-red | 5.0x | 5.0x | 10x | 4.0x |

Durability: herald: SQLite; node-red: memory.

Startup (spawn -> ready; herald on an empty database, ready = its `listening on` line; Node-RED ready = its `Started flows` line) and idle memory:

| target | runs | to listening line (ms), median [min-max] | to first /health (ms), median [min-max] | idle RSS (MB) |
|---|--:|--:|--:|--:|
| herald | 3 | 20.0 [10.0-30.0] | 26.0 [11.0-41.0] | 10.0 |

Notes:

- 2 leads never arrived
";
        assert_eq!(md, expected);
    }

    #[test]
    fn several_nodes_on_postgresql_show_the_server_s_cpu_and_say_how_nodes_add_up() {
        let mut report = report();
        let fixed = Load::Fixed { rate: 200 };
        let mut nodes = phase(fixed, 900, 5_000, 199.0, 2_500.0);
        nodes.server_cpu = Some(ServerCpu::Measured { us_per_lead: 1_234.4 });
        nodes.database_round_trips_per_lead = Some(7.26);
        let mut remote = nodes.clone();
        remote.server_cpu = Some(ServerCpu::NotReadable);
        remote.database_round_trips_per_lead = None;
        report.targets[1] = TargetReport {
            target: "herald on PostgreSQL, 3 nodes".into(),
            nodes: 3,
            durability: "PostgreSQL".into(),
            phases: vec![nodes, remote],
        };
        report.comparisons.clear();
        let md = report.to_markdown();
        let table = "| target | load | peak RSS (MB) | CPU per lead (µs) | PostgreSQL CPU/lead (µs) | round trips to PostgreSQL/lead | sandbox CPU/lead (µs) | client CPU/lead (µs) | response p50 / p99 (ms) | send rate (leads/s) |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|
| herald | max, 32 conns | 20.0 | 150 | - | - | 40 | 60 | 0.30 / 0.90 | 1,000 |
| herald on PostgreSQL, 3 nodes | fixed 200/s | 20.0 | 2,500 | 1,234 | 7.3 | 40 | 60 | 0.30 / 0.90 | 1,000 |
| herald on PostgreSQL, 3 nodes | fixed 200/s | 20.0 | 2,500 | n/a | - | 40 | 60 | 0.30 / 0.90 | 1,000 |

Several nodes: CPU per lead is the sum over the nodes, peak RSS the largest node's.
";
        assert!(md.contains(table), "{md}");
        assert!(md.contains("n/a when they are not on this machine"), "{md}");
        let json = report.to_json();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["targets"][1]["nodes"], 3);
        assert_eq!(value["targets"][1]["phases"][0]["database_round_trips_per_lead"], 7.26);
        assert_eq!(
            value["targets"][1]["phases"][0]["server_cpu"],
            serde_json::json!({"kind": "measured", "us_per_lead": 1_234.4})
        );
        assert_eq!(
            value["targets"][1]["phases"][1]["server_cpu"],
            serde_json::json!({"kind": "not_readable"})
        );
        // One node, and SQLite: the JSON has neither key, as before.
        assert!(value["targets"][0].get("nodes").is_none());
        assert!(value["targets"][0]["phases"][0].get("server_cpu").is_none());
        assert!(value["targets"][0]["phases"][0].get("database_round_trips_per_lead").is_none());
    }

    fn bulk_report() -> Report {
        // 100,000 recipients, the last received 1.25 s after the update: 80,000 messages/s.
        let messages_per_s = crate::stats::per_second(100_000, 1_250_000);
        let bulk = BulkReport {
            recipients: 100_000,
            seeded: 100_000,
            seed_s: 12.5,
            seed_rate: crate::stats::per_second(100_000, 12_500_000),
            seed_concurrency: 64,
            messages: 100_000,
            batches: 10,
            refused_batches: 0,
            duplicates: 0,
            unmatched: 0,
            launch_response_ms: 2.5,
            to_first_batch_ms: Some(310.25),
            to_last_message_ms: Some(1_250.0),
            messages_per_s,
            herald_cpu_ms: 1_500.0,
            cpu_us_per_message: 15.0,
            sandbox_cpu_us_per_message: 1.25,
            herald_rss_before_kib: 40_960,
            herald_peak_rss_kib: 102_400,
            sandbox_peak_rss_kib: 51_200,
            probe_messages: 10_000,
            sandbox_batch_ms: Some(Spread::of(&[8.0, 10.0, 12.5])),
            runs: vec![BulkRun { id: "run_1".into(), status: "finished".into(), fault: None }],
            timed_out: false,
            timeout_s: 220.0,
            target_messages_per_s: 100_000.0,
            target_met: BulkReport::meets(100_000, 100_000, messages_per_s, 100_000.0),
        };
        Report {
            scenario: "bulk-8x8".into(),
            scenario_summary: "a bulk campaign".into(),
            command: Some("herald bench --scenario bulk-8x8".into()),
            startup: Vec::new(),
            targets: Vec::new(),
            comparisons: Vec::new(),
            bulk: Some(bulk),
            notes: Vec::new(),
            ..report()
        }
    }

    #[test]
    fn a_bulk_campaign_has_its_own_table_and_the_target() {
        let bulk_run = bulk_report();
        let bulk = bulk_run.bulk.as_ref().unwrap();
        assert_eq!(bulk.messages_per_s, 80_000.0);
        assert!(!bulk.target_met);
        let expected = "### Scenario `bulk-8x8`: a bulk campaign

Command: `herald bench --scenario bulk-8x8`

Run 2026-01-01T00:00:00Z on 2 CPUs (Test CPU), Linux 6.1.0, herald 0.1.0; load average 0.25 at the start, 1.50 at the end.

Bulk campaign (the Campaign's Status set to Launched -> its flow run's 8x8 batch requests received by the sandbox), times from the update sent, in ms:

| recipients | messages received | batch requests | update answered | to first batch | to last message | messages/s | herald CPU per message (µs) | herald peak RSS (MB) | sandbox peak RSS (MB) | run |
|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|
| 100,000 | 100,000 | 10 | 2.50 | 310.25 | 1,250.00 | 80,000 | 15.0 | 100.0 | 50.0 | finished |

Setup, not measured: 100,000 of 100,000 Leads created through the records API in 12.5 s (8,000 leads/s, 64 connections); herald held 40.0 MB before the update. The sandbox alone answers a batch of 10,000 messages in 10.0 [8.0-12.5] ms, median [min-max], at most 1,000,000 messages/s through one connection; during the campaign it used 1.2 µs of CPU per message.

| target | reached in this run | |
|---|---|---|
| bulk >= 100,000 messages/s through batches | 80,000 messages/s | missed |

";
        assert_eq!(bulk_run.to_markdown(), expected);
        let json = bulk_run.to_json();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, bulk_run);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["bulk"]["messages_per_s"], 80_000.0);
        assert_eq!(value["bulk"]["target_met"], false);
        // Per-lead reports keep their JSON as it was: no `bulk` key.
        assert!(
            serde_json::from_str::<serde_json::Value>(&report().to_json()).unwrap().get("bulk").is_none()
        );
    }

    #[test]
    fn json_round_trips_and_names_the_load_kind() {
        let report = report();
        let json = report.to_json();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let phase = &value["targets"][0]["phases"][0];
        assert_eq!(phase["load"], serde_json::json!({"kind": "max", "concurrency": 32}));
        assert_eq!(phase["speed_to_lead"]["p99_us"], 4000);
        assert_eq!(value["startup"][0]["to_health"]["median_ms"], 26.0);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(ms(42), "0.042");
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(whole(1_234_567.4), "1,234,567");
        assert_eq!(whole(999.5), "1,000");
        assert_eq!(whole(f64::NAN), "-");
        assert_eq!(times(None), "-");
        assert_eq!(times(Some(12.4)), "12x");
        assert_eq!(times(Some(0.546)), "0.55x");
        assert_eq!(times(Some(69.07 / 6383.85)), "0.011x");
        assert_eq!(mb(1536), "1.5");
    }
}
