//! The bulk phase: one Campaign and N Leads linked to it are created through the records API (setup,
//! not measured); then the Campaign's Status is set to `Launched`, its flow gets every Lead and sends
//! them through 8x8's batch endpoint, and the sandbox is watched until every Lead's phone has arrived.
//! Reported: how long from the update to the first batch and to the last recipient, messages per
//! second, herald's CPU per message and the peak memory of herald and the sandbox.

use crate::BenchError;
use crate::load::{sandbox_requests, unix_micros};
use crate::process::Usage;
use crate::report::{BulkReport, BulkRun, Spread};
use crate::scenario::{MAX_LEADS_PER_RUN, Scenario, lead_phone, phone_digits};
use crate::stats::per_second;
use indicatif::ProgressBar;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Recipients of the campaign when `--recipients` is not given.
pub const DEFAULT_RECIPIENTS: usize = 100_000;
/// The target: bulk >= 100,000 messages/s into the sandbox through batches.
pub const TARGET_MESSAGES_PER_S: f64 = 100_000.0;
/// Record requests in flight while seeding the Leads.
const SEED_CONCURRENCY: usize = 64;
/// Messages per probe request: as many as the example's flow puts in one batch.
const PROBE_MESSAGES: usize = 5_000;
const PROBE_RUNS: usize = 5;
/// The subaccount of the example's flow (the sandbox accepts any well-formed one).
const SUBACCOUNT: &str = "herald-demo-subaccount";
const SENDER: &str = "Acme";
const MESSAGE: &str = "Our spring sale starts today. Reply STOP to opt out.";
/// After the watch, how long the run may take to record its end.
const RUN_END_WAIT: Duration = Duration::from_secs(30);
/// How often the sandbox is asked for new requests while the campaign runs.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Without a new recipient for this long, the harness asks herald whether the run has ended.
const STALL: Duration = Duration::from_secs(5);

/// herald and the sandbox, as the bulk phase reaches them.
pub struct BulkTarget<'a> {
    pub client: &'a reqwest::Client,
    /// `http://127.0.0.1:PORT` of `herald serve`.
    pub api_url: &'a str,
    /// `Authorization` header value, when herald wants one.
    pub authorization: Option<&'a str>,
    pub pid: u32,
    pub sandbox_url: &'a str,
    pub sandbox_pid: u32,
}

/// The Campaign the run launches, still `Planned`.
pub fn campaign_body() -> Value {
    json!({
        "Name": "Spring sale (herald bench)",
        "Status": "Planned",
        "Message": MESSAGE,
        "Sender": SENDER,
    })
}

/// Recipient `index` of the campaign: a Lead with a unique phone (E.164, valid whatever the project's
/// default country), linked to the campaign.
pub fn recipient_body(index: u64, campaign_id: &str) -> Value {
    json!({
        "LastName": format!("Bulk{index}"),
        "Phone": lead_phone(index),
        "Campaign": campaign_id,
    })
}

/// The watch's time limit: two minutes, plus a second per thousand recipients.
pub fn watch_timeout(recipients: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(recipients as u64)
}

/// What the provider has received of the campaign so far: a tally over the sandbox's requests, fed
/// in the order the sandbox listed them. Pure: no clocks, no I/O.
#[derive(Debug, Default)]
pub struct Tally {
    /// Digits of every recipient's phone.
    expected: HashSet<String>,
    received: HashSet<String>,
    pub batches: usize,
    pub refused_batches: usize,
    pub duplicates: usize,
    pub unmatched: usize,
    /// Sandbox receipt times (µs since the epoch) of the first request that carried recipients and of
    /// the request that carried the last new one.
    pub first_batch_us: Option<i64>,
    pub last_message_us: Option<i64>,
    /// The highest request sequence seen: the next poll asks for what came after it.
    pub last_sequence: u64,
}

impl Tally {
    pub fn new(expected: HashSet<String>) -> Tally {
        Tally { expected, ..Tally::default() }
    }

    /// Distinct recipients received in accepted requests.
    pub fn messages(&self) -> usize {
        self.received.len()
    }

    pub fn complete(&self) -> bool {
        self.received.len() >= self.expected.len()
    }

    /// Counts one provider request: its status, when the sandbox received it, and its body.
    pub fn add(&mut self, scenario: &Scenario, sequence: u64, status: u16, received_us: i64, body: &Value) {
        self.last_sequence = self.last_sequence.max(sequence);
        let phones = scenario.phones_in(body);
        if phones.is_empty() {
            return;
        }
        if !(200..300).contains(&status) {
            self.refused_batches += 1;
            return;
        }
        self.batches += 1;
        self.first_batch_us = Some(self.first_batch_us.map_or(received_us, |t| t.min(received_us)));
        let mut new = false;
        for phone in phones {
            if !self.expected.contains(&phone) {
                self.unmatched += 1;
            } else if self.received.insert(phone) {
                new = true;
            } else {
                self.duplicates += 1;
            }
        }
        if new {
            self.last_message_us = Some(self.last_message_us.map_or(received_us, |t| t.max(received_us)));
        }
    }
}

/// What the phase measured around the tally.
#[derive(Debug, Default)]
pub struct Measured {
    pub recipients: usize,
    pub seeded: usize,
    pub seed_us: u64,
    /// Client clock just before the update was sent, and the update's answer time.
    pub launched_us: i64,
    pub launch_response_us: u64,
    pub herald_before: Usage,
    pub herald_after: Usage,
    pub sandbox_before: Usage,
    pub sandbox_after: Usage,
    pub probe_ms: Vec<f64>,
    pub runs: Vec<BulkRun>,
    pub timed_out: bool,
    pub timeout: Duration,
}

/// The report's numbers from what was measured. Pure.
pub fn summarise(tally: &Tally, m: &Measured) -> BulkReport {
    let since_launch = |at: Option<i64>| at.map(|t| (t - m.launched_us).max(0) as f64 / 1000.0);
    let messages = tally.messages();
    let span_us = tally.last_message_us.map_or(0, |t| u64::try_from(t - m.launched_us).unwrap_or(0));
    let messages_per_s = per_second(messages, span_us);
    let per_message = |before: Usage, after: Usage| {
        if messages == 0 { 0.0 } else { after.cpu_us.saturating_sub(before.cpu_us) as f64 / messages as f64 }
    };
    BulkReport {
        recipients: m.recipients,
        seeded: m.seeded,
        seed_s: m.seed_us as f64 / 1e6,
        seed_rate: per_second(m.seeded, m.seed_us),
        seed_concurrency: SEED_CONCURRENCY,
        messages,
        batches: tally.batches,
        refused_batches: tally.refused_batches,
        duplicates: tally.duplicates,
        unmatched: tally.unmatched,
        launch_response_ms: m.launch_response_us as f64 / 1000.0,
        to_first_batch_ms: since_launch(tally.first_batch_us),
        to_last_message_ms: since_launch(tally.last_message_us),
        messages_per_s,
        herald_cpu_ms: m.herald_after.cpu_us.saturating_sub(m.herald_before.cpu_us) as f64 / 1000.0,
        cpu_us_per_message: per_message(m.herald_before, m.herald_after),
        sandbox_cpu_us_per_message: per_message(m.sandbox_before, m.sandbox_after),
        herald_rss_before_kib: m.herald_before.rss_kib,
        herald_peak_rss_kib: m.herald_after.peak_rss_kib,
        sandbox_peak_rss_kib: m.sandbox_after.peak_rss_kib,
        probe_messages: PROBE_MESSAGES,
        sandbox_batch_ms: (!m.probe_ms.is_empty()).then(|| Spread::of(&m.probe_ms)),
        runs: m.runs.clone(),
        timed_out: m.timed_out,
        timeout_s: m.timeout.as_secs_f64(),
        target_messages_per_s: TARGET_MESSAGES_PER_S,
        target_met: BulkReport::meets(m.recipients, messages, messages_per_s, TARGET_MESSAGES_PER_S),
    }
}

/// Remarks on a bulk result: what went wrong or may have bounded it.
pub fn notes(report: &BulkReport) -> Vec<String> {
    let mut notes = Vec::new();
    if report.seeded < report.recipients {
        notes.push(format!(
            "bulk: {} of {} Leads could not be created; the campaign's recipients are the {} that were",
            report.recipients - report.seeded,
            report.recipients,
            report.seeded
        ));
    }
    if report.messages < report.seeded {
        let why = if report.timed_out {
            format!("the watch stopped at its limit of {:.0} s", report.timeout_s)
        } else {
            "the run ended without sending them".to_string()
        };
        notes.push(format!(
            "bulk: {} of {} recipients never reached the provider ({why})",
            report.seeded - report.messages,
            report.seeded
        ));
    }
    for run in report.runs.iter().filter(|r| r.status != "finished") {
        notes.push(format!(
            "bulk: run {} is `{}`{}",
            run.id,
            run.status,
            run.fault.as_ref().map(|f| format!(": {f}")).unwrap_or_default()
        ));
    }
    if report.runs.is_empty() {
        notes.push("bulk: launching the campaign started no flow run".into());
    }
    if report.refused_batches > 0 {
        notes.push(format!(
            "bulk: the sandbox refused {} batch request(s); their recipients are not counted",
            report.refused_batches
        ));
    }
    if report.duplicates + report.unmatched > 0 {
        notes.push(format!(
            "bulk: {} recipients arrived more than once and {} phones were no recipient's",
            report.duplicates, report.unmatched
        ));
    }
    // Slower than 20 ms per 10,000 messages.
    let slow = 20.0 * report.probe_messages as f64 / 10_000.0;
    if let Some(probe) = report.sandbox_batch_ms.as_ref().filter(|p| p.median_ms > slow) {
        notes.push(format!(
            "bulk: the sandbox needs {:.1} ms for a batch of {} messages: it may bound the rate measured",
            probe.median_ms, report.probe_messages
        ));
    }
    notes
}

/// Runs the bulk phase against herald and the sandbox.
pub async fn run(
    scenario: &Scenario,
    target: &BulkTarget<'_>,
    recipients: usize,
    progress: &ProgressBar,
) -> Result<(BulkReport, Vec<String>), BenchError> {
    let mut measured = Measured { recipients, timeout: watch_timeout(recipients), ..Measured::default() };

    progress.set_message(format!("timing the sandbox's answer to a batch of {PROBE_MESSAGES}"));
    measured.probe_ms = probe_sandbox(scenario, target).await?;

    progress.set_message("creating the campaign");
    let campaign = post_json(target, &records_url(target, scenario.object), &campaign_body()).await?;
    let campaign_id = campaign
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            BenchError::Bulk(format!("creating the {} answered no id: {campaign}", scenario.object))
        })?
        .to_string();

    let started = Instant::now();
    let (created, refusal) = seed(target, &campaign_id, recipients, progress).await?;
    measured.seed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    measured.seeded = created.len();
    let expected: HashSet<String> = created.iter().map(|&i| phone_digits(&lead_phone(i))).collect();
    drop(created);
    // Let herald finish what seeding left behind (WAL checkpoints) before its CPU is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    clear(target.client, &format!("{}/_sandbox/requests", target.sandbox_url)).await?;

    progress.set_length(expected.len() as u64);
    progress.set_position(0);
    progress.set_message("campaign launched: waiting for every recipient at the provider");
    let mut tally = Tally::new(expected);
    measured.herald_before = Usage::of(target.pid);
    measured.sandbox_before = Usage::of(target.sandbox_pid);
    let campaign_url = format!("{}/{campaign_id}", records_url(target, scenario.object));
    measured.launched_us = unix_micros();
    let sent = Instant::now();
    let launched = send(target, target.client.patch(&campaign_url).json(&json!({"Status": "Launched"})))
        .await
        .map_err(|e| BenchError::Bulk(format!("launching the campaign: {e}")))?;
    measured.launch_response_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
    let started_runs = launched.get("runs").and_then(Value::as_array).map_or(0, Vec::len);

    let deadline = Instant::now() + measured.timeout;
    let mut last_new = Instant::now();
    let mut last_run_check = Instant::now();
    let mut ended = started_runs == 0;
    loop {
        let before = tally.messages();
        poll(scenario, target, &mut tally).await?;
        progress.set_position(tally.messages() as u64);
        if tally.complete() || ended {
            break;
        }
        if tally.messages() > before {
            last_new = Instant::now();
        } else if last_new.elapsed() >= STALL && last_run_check.elapsed() >= STALL {
            // Asked only when nothing arrives: a run's record (its trace included) may be large.
            last_run_check = Instant::now();
            let runs = campaign_runs(target, &campaign_url).await?;
            // One more poll after the run has ended, for what it sent just before.
            ended = !runs.is_empty() && runs.iter().all(|r| ended_status(&r.status));
        }
        if Instant::now() >= deadline {
            measured.timed_out = true;
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    measured.herald_after = Usage::of(target.pid);
    measured.sandbox_after = Usage::of(target.sandbox_pid);
    // The run may still be journaling its end when its last batch has arrived: wait a little for its
    // final status (not measured).
    progress.set_message("waiting for the campaign's run to end");
    let limit = Instant::now() + RUN_END_WAIT;
    loop {
        measured.runs = campaign_runs(target, &campaign_url).await?;
        if measured.runs.iter().all(|r| ended_status(&r.status)) || Instant::now() >= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let report = summarise(&tally, &measured);
    let mut notes = notes(&report);
    if let Some(refusal) = refusal {
        let refusal: String = refusal.chars().take(300).collect();
        notes.push(format!("bulk: the first Lead refused while seeding: {refusal}"));
    }
    Ok((report, notes))
}

/// A run in one of these will not send anything more.
fn ended_status(status: &str) -> bool {
    ["finished", "failed", "unknown"].contains(&status)
}

fn records_url(target: &BulkTarget<'_>, object: &str) -> String {
    format!("{}/api/v1/records/{object}", target.api_url)
}

/// Sends a request with herald's authorization; the JSON answer of a 2xx, else an error naming the
/// status and the start of the body.
async fn send(target: &BulkTarget<'_>, mut request: reqwest::RequestBuilder) -> Result<Value, String> {
    if let Some(authorization) = target.authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return Err(format!("HTTP {status}: {}", text.chars().take(500).collect::<String>()));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn post_json(target: &BulkTarget<'_>, url: &str, body: &Value) -> Result<Value, BenchError> {
    send(target, target.client.post(url).json(body))
        .await
        .map_err(|message| BenchError::Http { url: url.to_string(), message })
}

/// Creates `recipients` Leads of the campaign over `SEED_CONCURRENCY` keep-alive connections; returns
/// the indexes of those created, and the first refusal if any. Stops early when the first thousand all
/// fail (the project refuses them: no point in 100,000 more refusals).
async fn seed(
    target: &BulkTarget<'_>,
    campaign_id: &str,
    recipients: usize,
    progress: &ProgressBar,
) -> Result<(Vec<u64>, Option<String>), BenchError> {
    progress.set_length(recipients as u64);
    progress.set_position(0);
    progress.set_message(format!("creating {recipients} Leads of the campaign (setup, not measured)"));
    let url: Arc<str> = records_url(target, "Lead").into();
    let authorization: Option<Arc<str>> = target.authorization.map(Into::into);
    let campaign_id: Arc<str> = campaign_id.into();
    let next = Arc::new(AtomicU64::new(0));
    let succeeded = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let total = (recipients as u64).min(MAX_LEADS_PER_RUN);
    let mut tasks = Vec::with_capacity(SEED_CONCURRENCY);
    for _ in 0..SEED_CONCURRENCY {
        let (client, url, authorization, campaign_id) =
            (target.client.clone(), url.clone(), authorization.clone(), campaign_id.clone());
        let (next, succeeded, first_error, progress) =
            (next.clone(), succeeded.clone(), first_error.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total || (index >= 1_000 && succeeded.load(Ordering::Relaxed) == 0) {
                    break;
                }
                let body = serde_json::to_vec(&recipient_body(index, &campaign_id)).unwrap_or_default();
                let mut request = client.post(&*url).header("content-type", "application/json").body(body);
                if let Some(authorization) = &authorization {
                    request = request.header("authorization", &**authorization);
                }
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(bytes) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes))),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                        created.push(index);
                    }
                    Err(error) => {
                        first_error.lock().await.get_or_insert(error);
                    }
                }
                progress.inc(1);
            }
            created
        }));
    }
    let mut created = Vec::with_capacity(recipients);
    for task in tasks {
        created.extend(task.await.unwrap_or_default());
    }
    let first_error = first_error.lock().await.take();
    if created.is_empty() {
        return Err(BenchError::Bulk(format!(
            "no Lead of the campaign could be created: {}",
            first_error.as_deref().unwrap_or("nothing was sent")
        )));
    }
    Ok((created, first_error))
}

/// Asks the sandbox for the requests after the last one seen, and counts them.
async fn poll(scenario: &Scenario, target: &BulkTarget<'_>, tally: &mut Tally) -> Result<(), BenchError> {
    let url = format!(
        "{}/_sandbox/requests?host={}&after={}",
        target.sandbox_url, scenario.provider_host, tally.last_sequence
    );
    let received = sandbox_requests(target.client, &url).await?;
    for request in received {
        if request.sequence != 0 && request.sequence <= tally.last_sequence {
            continue; // a sandbox without `after` lists everything again
        }
        tally.add(scenario, request.sequence, request.status, request.received_unix_micros, &request.body);
    }
    Ok(())
}

/// The flow runs of the campaign record, with their status and fault.
async fn campaign_runs(target: &BulkTarget<'_>, campaign_url: &str) -> Result<Vec<BulkRun>, BenchError> {
    let url = format!("{campaign_url}/runs");
    let answer = send(target, target.client.get(&url).timeout(Duration::from_secs(120)))
        .await
        .map_err(|message| BenchError::Http { url, message })?;
    Ok(runs_of(&answer))
}

/// `{"runs": [{"id", "status", "fault"}, ...]}` as herald's records API answers it.
pub fn runs_of(answer: &Value) -> Vec<BulkRun> {
    let text = |run: &Value, key: &str| run.get(key).and_then(Value::as_str).map(str::to_string);
    answer
        .get("runs")
        .and_then(Value::as_array)
        .map(|runs| {
            runs.iter()
                .map(|run| BulkRun {
                    id: text(run, "id").unwrap_or_default(),
                    status: text(run, "status").unwrap_or_else(|| "?".into()),
                    fault: text(run, "fault"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A batch as the example's flow sends it: one SmsRequest per recipient (with the id herald gives each
/// message), the sender in the template.
pub fn messages_body(destinations: &[String], id_prefix: &str) -> Value {
    let messages: Vec<Value> = destinations
        .iter()
        .enumerate()
        .map(|(i, phone)| json!({"destination": phone, "text": MESSAGE, "clientMessageId": format!("{id_prefix}-{i}")}))
        .collect();
    json!({"messages": messages, "template": {"source": SENDER, "encoding": "AUTO"}})
}

/// Posts `PROBE_RUNS` batches of `PROBE_MESSAGES` straight to the sandbox, as herald would, and times
/// each answer (ms); then makes the sandbox forget them. The phones are outside the campaign's.
async fn probe_sandbox(scenario: &Scenario, target: &BulkTarget<'_>) -> Result<Vec<f64>, BenchError> {
    let Some(secret) = scenario.secrets.iter().find(|s| s.parameter.eq_ignore_ascii_case("authorization"))
    else {
        return Ok(Vec::new());
    };
    let path = scenario.provider_path.replace("{subAccountId}", SUBACCOUNT);
    let url = format!("{}/{}{path}", target.sandbox_url, scenario.provider_host);
    let destinations: Vec<String> =
        (0..PROBE_MESSAGES as u64).map(|i| lead_phone(MAX_LEADS_PER_RUN - i)).collect();
    let mut times = Vec::with_capacity(PROBE_RUNS);
    for run in 0..PROBE_RUNS {
        // Ids of herald's shape (`hrld-<time><random>-<position>`), new at each run: 8x8 would
        // answer a resend without taking its messages again.
        let prefix = format!("hrld-0000bench{run:04}probe0000000000");
        let body = serde_json::to_vec(&messages_body(&destinations, &prefix)).unwrap_or_default();
        let started = Instant::now();
        let response = target
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", secret.value)
            .body(body)
            .send()
            .await
            .map_err(|e| BenchError::http(&url, e))?;
        let status = response.status();
        let answer = response.bytes().await.map_err(|e| BenchError::http(&url, e))?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let accepted = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|a| a.get("acceptedCount").and_then(Value::as_u64));
        if !status.is_success() || accepted != Some(PROBE_MESSAGES as u64) {
            return Err(BenchError::Bulk(format!(
                "the sandbox did not accept a batch of {PROBE_MESSAGES} at {url}: HTTP {status}, {}",
                String::from_utf8_lossy(&answer).chars().take(300).collect::<String>()
            )));
        }
    }
    for what in ["requests", "messages"] {
        clear(target.client, &format!("{}/_sandbox/{what}", target.sandbox_url)).await?;
    }
    Ok(times)
}

async fn clear(client: &reqwest::Client, url: &str) -> Result<(), BenchError> {
    let response = client.delete(url).send().await.map_err(|e| BenchError::http(url, e))?;
    if !response.status().is_success() {
        return Err(BenchError::Unexpected { url: url.to_string(), status: response.status().as_u16() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SCENARIOS;

    fn bulk() -> &'static Scenario {
        SCENARIOS.iter().find(|s| s.name == "bulk-8x8").unwrap()
    }

    fn phones(range: std::ops::Range<u64>) -> Vec<String> {
        range.map(lead_phone).collect()
    }

    /// Send-Many-Sms with a template and a list of destinations.
    fn batch_body(destinations: &[String]) -> Value {
        json!({"destinations": destinations, "template": {"source": SENDER, "text": MESSAGE}})
    }

    #[test]
    fn a_batch_body_s_destinations_are_its_recipients() {
        let body = batch_body(&phones(0..10_000));
        let found = bulk().phones_in(&body);
        assert_eq!(found.len(), 10_000);
        assert_eq!(found[0], "14152000000");
        assert_eq!(found[9_999], "14152009999");
        // Batches of whole messages count too, as the example's flow sends them; a template alone
        // carries no recipient.
        let messages = messages_body(&phones(7..9), "hrld-x");
        assert_eq!(messages["messages"][1]["clientMessageId"], "hrld-x-1");
        assert_eq!(messages["messages"][1]["text"], MESSAGE);
        assert_eq!(bulk().phones_in(&messages), vec!["14152000007", "14152000008"]);
        assert!(bulk().phones_in(&json!({"template": {"text": "Hi"}})).is_empty());
    }

    #[test]
    fn recipients_are_leads_of_the_campaign_with_unique_e164_phones() {
        let lead = recipient_body(41, "701000000000001");
        assert_eq!(lead["Phone"], "+14152000041");
        assert_eq!(lead["Campaign"], "701000000000001");
        assert_eq!(lead["LastName"], "Bulk41");
        assert_eq!(campaign_body()["Status"], "Planned");
        assert_eq!(watch_timeout(100_000), Duration::from_secs(220));
    }

    #[test]
    fn the_tally_counts_each_recipient_once_and_times_first_and_last() {
        let expected: HashSet<String> = phones(0..25_000).iter().map(|p| phone_digits(p)).collect();
        let mut tally = Tally::new(expected);
        let s = bulk();
        tally.add(s, 1, 200, 1_000_500, &batch_body(&phones(0..10_000)));
        tally.add(s, 2, 200, 1_001_000, &batch_body(&phones(10_000..20_000)));
        assert!(!tally.complete());
        // A refused request counts nothing; a request with no recipient is ignored.
        tally.add(s, 3, 400, 1_001_100, &batch_body(&phones(20_000..25_000)));
        tally.add(s, 4, 200, 1_001_150, &json!({"unrelated": true}));
        // A resend of a recipient and a stranger's phone.
        let mut last = phones(20_000..25_000);
        last.push(lead_phone(3));
        last.push(lead_phone(99_999));
        tally.add(s, 5, 200, 1_002_000, &batch_body(&last));
        assert!(tally.complete());
        assert_eq!((tally.messages(), tally.batches, tally.refused_batches), (25_000, 3, 1));
        assert_eq!((tally.duplicates, tally.unmatched, tally.last_sequence), (1, 1, 5));
        assert_eq!((tally.first_batch_us, tally.last_message_us), (Some(1_000_500), Some(1_002_000)));
        // A late request holding only duplicates does not move the last message.
        tally.add(s, 6, 200, 1_009_000, &batch_body(&phones(0..1)));
        assert_eq!(tally.last_message_us, Some(1_002_000));
    }

    fn measured(recipients: usize) -> Measured {
        Measured {
            recipients,
            seeded: recipients,
            seed_us: 12_500_000,
            launched_us: 1_000_000,
            launch_response_us: 2_500,
            herald_before: Usage { rss_kib: 40_000, peak_rss_kib: 60_000, cpu_us: 5_000_000 },
            herald_after: Usage { rss_kib: 70_000, peak_rss_kib: 90_000, cpu_us: 5_800_000 },
            sandbox_before: Usage { rss_kib: 10_000, peak_rss_kib: 12_000, cpu_us: 100_000 },
            sandbox_after: Usage { rss_kib: 30_000, peak_rss_kib: 35_000, cpu_us: 300_000 },
            probe_ms: vec![9.0, 8.0, 10.0],
            runs: vec![BulkRun { id: "run_1".into(), status: "finished".into(), fault: None }],
            timed_out: false,
            timeout: watch_timeout(recipients),
        }
    }

    #[test]
    fn the_summary_rates_recipients_from_the_update_to_the_last_one() {
        let expected: HashSet<String> = phones(0..20_000).iter().map(|p| phone_digits(p)).collect();
        let mut tally = Tally::new(expected);
        tally.add(bulk(), 1, 200, 1_100_000, &batch_body(&phones(0..10_000)));
        tally.add(bulk(), 2, 200, 1_250_000, &batch_body(&phones(10_000..20_000)));
        let report = summarise(&tally, &measured(20_000));
        // 20,000 messages in the 0.25 s from the update to the last batch.
        assert_eq!(report.messages_per_s, 80_000.0);
        assert_eq!((report.to_first_batch_ms, report.to_last_message_ms), (Some(100.0), Some(250.0)));
        assert_eq!(report.cpu_us_per_message, 40.0);
        assert_eq!(report.sandbox_cpu_us_per_message, 10.0);
        assert_eq!((report.herald_rss_before_kib, report.herald_peak_rss_kib), (40_000, 90_000));
        assert_eq!(report.seed_rate, 1_600.0);
        assert_eq!(report.sandbox_batch_ms.as_ref().map(|s| s.median_ms), Some(9.0));
        assert!(!report.target_met);
        assert!(notes(&report).is_empty(), "{:?}", notes(&report));
    }

    #[test]
    fn a_fast_complete_run_meets_the_target_and_a_short_one_does_not() {
        let expected: HashSet<String> = phones(0..20_000).iter().map(|p| phone_digits(p)).collect();
        let mut tally = Tally::new(expected);
        tally.add(bulk(), 1, 200, 1_100_000, &batch_body(&phones(0..20_000)));
        let report = summarise(&tally, &measured(20_000));
        assert_eq!(report.messages_per_s, 200_000.0);
        assert!(report.target_met);
        // As fast, but a recipient short: missed, with the reason in the notes.
        let mut m = measured(20_001);
        m.seeded = 20_001;
        m.timed_out = true;
        m.runs[0].status = "failed".into();
        m.runs[0].fault = Some("HTTP 400".into());
        let report = summarise(&tally, &m);
        assert!(!report.target_met);
        let notes = notes(&report).join("\n");
        assert!(notes.contains("1 of 20001 recipients never reached the provider"), "{notes}");
        assert!(notes.contains("`failed`: HTTP 400"), "{notes}");
    }

    #[test]
    fn runs_are_read_from_the_records_api_answer() {
        let answer = json!({"runs": [
            {"id": "run_1", "status": "failed", "fault": "boom", "trace": []},
            {"id": "run_2", "status": "finished", "fault": null},
        ]});
        let runs = runs_of(&answer);
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].status.as_str(), runs[0].fault.as_deref()), ("failed", Some("boom")));
        assert_eq!(runs[1].fault, None);
        assert!(runs_of(&json!({})).is_empty());
    }
}
