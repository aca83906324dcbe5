//! Sending leads (open loop at a fixed rate, or closed loop at maximum rate), then collecting what the
//! sandbox received and matching it to the leads by phone number.

use crate::BenchError;
use crate::process::{Usage, clock_ticks};
use crate::report::{Load, PhaseReport, ServerCpu};
use crate::scenario::{Scenario, phone_digits};
use crate::server_cpu::{self, ServerCpuMeter};
use crate::stats::{Latency, per_second};
use indicatif::ProgressBar;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, mpsc};

/// Microseconds since the Unix epoch: the clock the sandbox stamps receipts with.
pub fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Where to send leads, and the processes whose usage a phase reports.
pub struct Target<'a> {
    /// `herald` or the peer's name, for notes.
    pub name: &'a str,
    pub client: &'a reqwest::Client,
    /// `http://HOST:PORT/api/v1/records/Lead` (or the peer's equivalent), one per node: lead i goes
    /// to node i mod n.
    pub records_urls: Vec<String>,
    /// `Authorization` header value, when the target wants one.
    pub authorization: Option<String>,
    /// The target's processes, one per node: their CPU is summed, their memory the largest one's.
    pub pids: Vec<u32>,
    pub sandbox_url: &'a str,
    pub sandbox_pid: u32,
    /// The PostgreSQL database the target keeps its state in: the server's processes serving it are
    /// measured too (see `server_cpu`).
    pub database: Option<&'a str>,
}

/// Which node lead `index` goes to: round robin, so every node takes the same share (within one)
/// whatever the order the connections send in.
pub fn node_for(index: u64, nodes: usize) -> usize {
    usize::try_from(index % nodes.max(1) as u64).unwrap_or(0)
}

/// The nodes' record URLs, shared with the sending tasks.
fn urls(target: &Target<'_>) -> Arc<[Arc<str>]> {
    target.records_urls.iter().map(|url| Arc::from(url.as_str())).collect()
}

/// One load phase's shape and bounds.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub load: Load,
    pub leads: usize,
    /// Index of the first lead (phones are unique across the phases of a run).
    pub first_index: u64,
    /// Sending stops after this long, sent or not.
    pub max_duration: Duration,
    /// Receipts are awaited until this long passes without a new one.
    pub drain_timeout: Duration,
    /// Open loop: at most this many requests in flight; a lead due beyond it is not sent.
    pub max_in_flight: usize,
}

/// What happened to one lead's record request.
#[derive(Clone, Debug)]
struct Outcome {
    index: u64,
    scheduled_us: Option<i64>,
    sent_us: i64,
    response_us: u64,
    result: Answer,
}

#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Status(u16),
    Transport,
    Skipped,
}

/// One request as `GET /_sandbox/requests` lists it.
#[derive(Deserialize)]
pub(crate) struct Received {
    #[serde(default)]
    pub sequence: u64,
    pub body: Value,
    pub received_unix_micros: i64,
    #[serde(default = "ok_status")]
    pub status: u16,
}

fn ok_status() -> u16 {
    200
}

/// The requests the sandbox lists at `url` (`/_sandbox/requests?...`).
pub(crate) async fn sandbox_requests(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<Received>, BenchError> {
    let response = client.get(url).send().await.map_err(|e| BenchError::http(url, e))?;
    if !response.status().is_success() {
        return Err(BenchError::Unexpected { url: url.to_string(), status: response.status().as_u16() });
    }
    let bytes = response.bytes().await.map_err(|e| BenchError::http(url, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| BenchError::Sandbox { url: url.to_string(), message: e.to_string() })
}

async fn send_one(
    client: reqwest::Client,
    url: Arc<str>,
    authorization: Option<Arc<str>>,
    body: Vec<u8>,
    index: u64,
    scheduled_us: Option<i64>,
) -> Outcome {
    let sent_us = unix_micros();
    let started = Instant::now();
    let mut request = client.post(&*url).header("content-type", "application/json").body(body);
    if let Some(authorization) = authorization {
        request = request.header("authorization", &*authorization);
    }
    let result = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(_) => Answer::Status(status),
                Err(_) => Answer::Transport,
            }
        }
        Err(_) => Answer::Transport,
    };
    let response_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Outcome { index, scheduled_us, sent_us, response_us, result }
}

/// Runs one phase against one target and reports it.
pub async fn run_phase(
    scenario: &Scenario,
    target: &Target<'_>,
    phase: Phase,
    progress: &ProgressBar,
) -> Result<(PhaseReport, Vec<String>), BenchError> {
    clear_sandbox(target.client, target.sandbox_url).await?;
    let server = target.database.map(|database| {
        let meter = Arc::new(Mutex::new(ServerCpuMeter::start(Path::new("/proc"), database)));
        let sampling = meter.clone();
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(server_cpu::SAMPLE_EVERY).await;
                if let Ok(mut meter) = sampling.lock() {
                    meter.sample();
                }
            }
        });
        (meter, sampler)
    });
    let trips_before = database_round_trips(target).await;
    let before = (Usage::of_all(&target.pids), Usage::of(target.sandbox_pid), Usage::of(0));
    progress.set_length(phase.leads as u64);
    progress.set_position(0);
    progress.set_message(format!("{}: sending", phase.load.label()));

    let outcomes = match phase.load {
        Load::Fixed { rate } => open_loop(scenario, target, phase, rate, progress).await,
        Load::Max { concurrency } => closed_loop(scenario, target, phase, concurrency, progress).await,
    };

    progress.set_message(format!("{}: waiting for the provider to receive every lead", phase.load.label()));
    let accepted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.result, Answer::Status(s) if (200..300).contains(&s)))
        .collect();
    let mut by_phone: HashMap<String, &Outcome> = HashMap::with_capacity(accepted.len());
    for outcome in &accepted {
        by_phone.insert(phone_digits(&crate::scenario::lead_phone(outcome.index)), outcome);
    }
    let received = drain(scenario, target, &by_phone, phase.drain_timeout, progress).await;
    let server_ticks = server.map(|(meter, sampler)| {
        sampler.abort();
        let mut meter = meter.lock().unwrap_or_else(|e| e.into_inner());
        meter.sample();
        meter.used_ticks()
    });
    let received = received?;
    let after = (Usage::of_all(&target.pids), Usage::of(target.sandbox_pid), Usage::of(0));
    let trips_after = database_round_trips(target).await;

    let mut notes = Vec::new();
    let mut first_receipt: HashMap<&str, i64> = HashMap::new();
    let (mut duplicates, mut unmatched) = (0, 0);
    for request in &received {
        for phone in scenario.phones_in(&request.body) {
            match by_phone.get_key_value(&phone) {
                Some((key, _)) => match first_receipt.get_mut(key.as_str()) {
                    Some(at) => {
                        duplicates += 1;
                        *at = (*at).min(request.received_unix_micros);
                    }
                    None => {
                        first_receipt.insert(key.as_str(), request.received_unix_micros);
                    }
                },
                None => unmatched += 1,
            }
        }
    }
    let mut speed: Vec<u64> = first_receipt
        .iter()
        .map(|(phone, at)| u64::try_from(at - by_phone[*phone].sent_us).unwrap_or(0))
        .collect();
    let mut response: Vec<u64> =
        outcomes.iter().filter(|o| o.result != Answer::Skipped).map(|o| o.response_us).collect();
    let mut lag: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.result != Answer::Skipped)
        .filter_map(|o| o.scheduled_us.map(|s| u64::try_from(o.sent_us - s).unwrap_or(0)))
        .collect();

    let sent: Vec<&Outcome> = outcomes.iter().filter(|o| o.result != Answer::Skipped).collect();
    let first_send = sent.iter().map(|o| o.sent_us).min().unwrap_or(0);
    let last_send = sent.iter().map(|o| o.sent_us).max().unwrap_or(0);
    let last_receipt = first_receipt.values().copied().max().unwrap_or(first_send);
    let span_us = u64::try_from(last_receipt - first_send).unwrap_or(0);
    let delivered = first_receipt.len();
    let per_lead = |b: Usage, a: Usage| {
        if delivered == 0 { 0.0 } else { a.cpu_us.saturating_sub(b.cpu_us) as f64 / delivered as f64 }
    };
    let not_sent =
        outcomes.iter().filter(|o| o.result == Answer::Skipped).count() + phase.leads - outcomes.len();
    let rejected =
        outcomes.iter().filter(|o| matches!(o.result, Answer::Status(s) if !(200..300).contains(&s))).count();
    let transport_errors = outcomes.iter().filter(|o| o.result == Answer::Transport).count();
    let missing = accepted.len() - delivered;
    if not_sent > 0 {
        notes.push(format!(
            "{}, {}: {not_sent} of {} leads were not sent (the phase's time limit, or too many requests in flight)",
            target.name,
            phase.load.label(),
            phase.leads
        ));
    }
    if missing > 0 {
        notes.push(format!(
            "{}, {}: {missing} accepted leads never reached the provider within {:?} of the last receipt",
            target.name,
            phase.load.label(),
            phase.drain_timeout
        ));
    }
    if rejected + transport_errors > 0 {
        notes.push(format!(
            "{}, {}: {rejected} record requests were refused and {transport_errors} got no answer",
            target.name,
            phase.load.label()
        ));
    }
    let carrying = received.iter().filter(|request| !scenario.phones_in(&request.body).is_empty()).count();
    if carrying > 0 && carrying < delivered {
        notes.push(format!(
            "{}, {}: {delivered} messages reached the provider in {carrying} requests ({:.1} per request: sends coalesced into batches)",
            target.name,
            phase.load.label(),
            delivered as f64 / carrying as f64
        ));
    }
    let send_lag = matches!(phase.load, Load::Fixed { .. }).then(|| Latency::from_samples(&mut lag));
    if let Some(lag) = send_lag.as_ref().filter(|l| l.p99_us > 1_000) {
        notes.push(format!(
            "{}, {}: the load generator fell behind its schedule (send lag p99 {:.2} ms, max {:.2} ms)",
            target.name,
            phase.load.label(),
            lag.p99_us as f64 / 1000.0,
            lag.max_us as f64 / 1000.0
        ));
    }
    let report = PhaseReport {
        load: phase.load,
        leads: phase.leads,
        sent: sent.len(),
        not_sent,
        accepted: accepted.len(),
        rejected,
        transport_errors,
        delivered,
        missing,
        duplicates,
        unmatched,
        duration_s: span_us as f64 / 1e6,
        send_rate: per_second(
            sent.len().saturating_sub(1),
            u64::try_from(last_send - first_send).unwrap_or(0),
        ),
        throughput: per_second(delivered, span_us),
        speed_to_lead: Latency::from_samples(&mut speed),
        response: Latency::from_samples(&mut response),
        send_lag,
        peak_rss_kib: after.0.peak_rss_kib,
        rss_kib: after.0.rss_kib,
        cpu_us_per_lead: per_lead(before.0, after.0),
        sandbox_cpu_us_per_lead: per_lead(before.1, after.1),
        client_cpu_us_per_lead: per_lead(before.2, after.2),
        database_round_trips_per_lead: match (trips_before, trips_after) {
            (Some(before), Some(after)) if delivered > 0 => {
                Some(after.saturating_sub(before) as f64 / delivered as f64)
            }
            _ => None,
        },
        server_cpu: server_ticks.map(|ticks| match ticks {
            Some(ticks) => ServerCpu::Measured {
                us_per_lead: if delivered == 0 {
                    0.0
                } else {
                    (ticks * 1_000_000 / clock_ticks()) as f64 / delivered as f64
                },
            },
            None => ServerCpu::NotReadable,
        }),
    };
    Ok((report, notes))
}

/// Round trips the target's nodes have made to their database server so far, summed over the nodes
/// (`/health`'s `node.databaseRoundTrips`); `None` for a target without a database server (SQLite,
/// a peer) or a node that does not answer.
async fn database_round_trips(target: &Target<'_>) -> Option<u64> {
    target.database?;
    let mut total = 0;
    for url in &target.records_urls {
        let base = url.split("/api/").next()?;
        let health: serde_json::Value =
            target.client.get(format!("{base}/health")).send().await.ok()?.json().await.ok()?;
        total += health["node"]["databaseRoundTrips"].as_u64()?;
    }
    Some(total)
}

/// Lead i is due at start + i/rate; it is sent then whatever happened to the others.
async fn open_loop(
    scenario: &Scenario,
    target: &Target<'_>,
    phase: Phase,
    rate: u32,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let runtime = tokio::runtime::Handle::current();
    let client = target.client.clone();
    let urls = urls(target);
    let authorization: Option<Arc<str>> = target.authorization.clone().map(Into::into);
    let in_flight = Arc::new(Semaphore::new(phase.max_in_flight.max(1)));
    let bodies: Vec<Vec<u8>> = (0..phase.leads as u64)
        .map(|i| serde_json::to_vec(&scenario.lead_body(phase.first_index + i)).unwrap_or_default())
        .collect();
    let interval_ns = 1_000_000_000f64 / f64::from(rate.max(1));
    let first_index = phase.first_index;
    let max_duration = phase.max_duration;
    // A thread, not a timer task: std's sleep is accurate to tens of microseconds, tokio's timer to a
    // millisecond, and the schedule must not drift or bunch up.
    let scheduler = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let start_unix = unix_micros();
        for (i, body) in bodies.into_iter().enumerate() {
            let offset = Duration::from_nanos((i as f64 * interval_ns) as u64);
            if offset > max_duration {
                break;
            }
            let due = start + offset;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let index = first_index + i as u64;
            let scheduled_us = start_unix + i64::try_from(offset.as_micros()).unwrap_or(0);
            match in_flight.clone().try_acquire_owned() {
                Ok(permit) => {
                    let tx = tx.clone();
                    let url = urls[node_for(index, urls.len())].clone();
                    let (client, authorization) = (client.clone(), authorization.clone());
                    runtime.spawn(async move {
                        let outcome =
                            send_one(client, url, authorization, body, index, Some(scheduled_us)).await;
                        drop(permit);
                        let _ = tx.send(outcome);
                    });
                }
                Err(_) => {
                    let _ = tx.send(Outcome {
                        index,
                        scheduled_us: Some(scheduled_us),
                        sent_us: scheduled_us,
                        response_us: 0,
                        result: Answer::Skipped,
                    });
                }
            }
        }
    });
    let outcomes = collect(rx, phase.leads, progress).await;
    let _ = scheduler.await;
    outcomes
}

/// `concurrency` connections, each sending its next lead as soon as the previous one is answered.
async fn closed_loop(
    scenario: &Scenario,
    target: &Target<'_>,
    phase: Phase,
    concurrency: usize,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let next = Arc::new(AtomicU64::new(0));
    let urls = urls(target);
    let authorization: Option<Arc<str>> = target.authorization.clone().map(Into::into);
    let deadline = Instant::now() + phase.max_duration;
    for _ in 0..concurrency.max(1) {
        let (tx, next, urls, authorization) = (tx.clone(), next.clone(), urls.clone(), authorization.clone());
        let client = target.client.clone();
        let scenario = *scenario;
        let (leads, first_index) = (phase.leads as u64, phase.first_index);
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= leads || Instant::now() >= deadline {
                    break;
                }
                let index = first_index + i;
                let body = serde_json::to_vec(&scenario.lead_body(index)).unwrap_or_default();
                let url = urls[node_for(index, urls.len())].clone();
                let outcome = send_one(client.clone(), url, authorization.clone(), body, index, None).await;
                if tx.send(outcome).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    collect(rx, phase.leads, progress).await
}

async fn collect(
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    leads: usize,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(leads);
    while let Some(outcome) = rx.recv().await {
        outcomes.push(outcome);
        progress.inc(1);
    }
    outcomes
}

async fn clear_sandbox(client: &reqwest::Client, sandbox: &str) -> Result<(), BenchError> {
    let url = format!("{sandbox}/_sandbox/requests");
    let response = client.delete(&url).send().await.map_err(|e| BenchError::http(&url, e))?;
    if !response.status().is_success() {
        return Err(BenchError::Unexpected { url, status: response.status().as_u16() });
    }
    Ok(())
}

/// Polls the sandbox until every accepted lead has reached the provider, or until `timeout` passes
/// without a new one; returns what it received for the scenario's host.
async fn drain(
    scenario: &Scenario,
    target: &Target<'_>,
    by_phone: &HashMap<String, &Outcome>,
    timeout: Duration,
    progress: &ProgressBar,
) -> Result<Vec<Received>, BenchError> {
    let url = format!("{}/_sandbox/requests?host={}", target.sandbox_url, scenario.provider_host);
    progress.set_length(by_phone.len() as u64);
    let mut last_progress = Instant::now();
    let mut last_count = usize::MAX;
    let mut previous: Option<(Instant, usize)> = None;
    loop {
        let polled_at = Instant::now();
        let received = sandbox_requests(target.client, &url).await?;
        let matched = received
            .iter()
            .flat_map(|r| scenario.phones_in(&r.body))
            .filter(|p| by_phone.contains_key(p))
            .collect::<std::collections::HashSet<_>>()
            .len();
        progress.set_position(matched as u64);
        if matched >= by_phone.len() {
            return Ok(received);
        }
        if matched != last_count {
            last_count = matched;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= timeout {
            return Ok(received);
        }
        let pause = poll_pause(previous, (polled_at, matched), by_phone.len());
        previous = Some((polled_at, matched));
        tokio::time::sleep(pause).await;
    }
}

/// How long to wait before asking the sandbox again: about half the time the remaining leads should
/// take at the rate seen since the last poll, so that a long backlog is not slowed by polls (each one
/// makes the sandbox serialise everything it received) and the end is still seen promptly.
fn poll_pause(previous: Option<(Instant, usize)>, now: (Instant, usize), total: usize) -> Duration {
    const MIN: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);
    let Some((then, before)) = previous else { return MIN };
    let elapsed = now.0.saturating_duration_since(then).as_secs_f64();
    let gained = now.1.saturating_sub(before);
    if gained == 0 || elapsed <= 0.0 {
        return Duration::from_millis(500);
    }
    let remaining = total.saturating_sub(now.1) as f64;
    Duration::from_secs_f64(remaining / (gained as f64 / elapsed) / 2.0).clamp(MIN, MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_go_round_robin_so_every_node_takes_an_equal_share() {
        let mut taken = [0; 3];
        for index in 500..1_500 {
            taken[node_for(index, 3)] += 1;
        }
        assert_eq!(taken, [333, 333, 334]);
        assert_eq!((node_for(500, 3), node_for(501, 3), node_for(502, 3), node_for(503, 3)), (2, 0, 1, 2));
        assert!((0..10).all(|index| node_for(index, 1) == 0), "one node takes every lead");
        assert_eq!(node_for(7, 0), 0, "no nodes is read as one");
    }

    #[test]
    fn polls_slow_down_for_a_long_backlog_and_speed_up_near_the_end() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(poll_pause(None, (t0, 0), 100), Duration::from_millis(50));
        // 500 per second, 10,000 to go: 20 s left, capped at 2 s.
        assert_eq!(poll_pause(Some((t0, 0)), (t1, 500), 10_500), Duration::from_secs(2));
        // 500 per second, 100 to go: 0.2 s left, so 0.1 s.
        assert_eq!(poll_pause(Some((t0, 0)), (t1, 500), 600), Duration::from_millis(100));
        assert_eq!(poll_pause(Some((t0, 500)), (t1, 500), 600), Duration::from_millis(500));
        assert_eq!(poll_pause(Some((t0, 0)), (t1, 599), 600), Duration::from_millis(50));
    }
}
