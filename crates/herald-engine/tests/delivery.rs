//! Durable delivery against the in-process sandbox: retries (Retry-After honoured, never on a 400),
//! rate limits that do not hold up other credentials, receipts duplicated and out of order, STOP then
//! START, a run that resumes at the step where it stopped in another engine, and, on PostgreSQL, a
//! waiting run taken by a node that heard of it rather than by the node that parked it.

use herald_engine::{Engine, EngineOptions, RunEvent, WebhookError, WebhookRequest};
use herald_sandbox::{FaultConfig, Sandbox, SandboxOptions};
use herald_store::{MessageFilter, RunStatus};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The engine's options for a test's database: a SQLite file in `dir`, or a scratch PostgreSQL
/// database with `HERALD_TEST_DATABASE=postgresql` (`scripts/test` runs this suite both ways).
fn options_in(dir: &std::path::Path) -> EngineOptions {
    let mut options = EngineOptions::for_database(herald_store::postgres::testing::database_in(dir));
    options.key_file = dir.join("h.key");
    options
}

const KIXIE_RATE: &str = "rate_limit: {per_second: 2}\n";

fn files(kixie_extra: &str, kixie_retry: &str, eight_retry: &str) -> Vec<(PathBuf, String)> {
    let kixie_flow = format!(
        r#"
trigger: {{object: Lead, on: create, conditions: [{{field: Company, operator: EqualTo, right: K}}]}}
run_as: automation
start: send
elements:
  send:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{{!$Credential.Kixie_API_Auth.businessid}}"
      apikey: "{{!$Credential.Kixie_API_Auth.apikey}}"
      target: "{{!$Record.Phone}}"
      eventname: sms
      message: "{{!$Record.Description}}"
{kixie_retry}    fault: log
  log:
    create: Task
    fields: {{Subject: "SMS failed: {{!$Flow.FaultMessage}}", WhoId: "{{!$Record.Id}}"}}
"#
    );
    let eight_flow = format!(
        r#"
trigger: {{object: Lead, on: create, conditions: [{{field: Company, operator: EqualTo, right: E}}]}}
run_as: automation
start: send
elements:
  send:
    action: EightByEight.Send
    inputs:
      subAccountId: acme-01
      destination: "{{!$Record.Phone}}"
      source: "+6560000000"
      text: "Hi {{!$Record.LastName}}{{!$Record.Description}}"
{eight_retry}    fault: log
  log:
    create: Task
    fields: {{Subject: "SMS failed: {{!$Flow.FaultMessage}}", WhoId: "{{!$Record.Id}}"}}
"#
    );
    let two_step = r#"
trigger: {object: Lead, on: create, conditions: [{field: Company, operator: EqualTo, right: Both}]}
run_as: automation
start: kixie
elements:
  kixie:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!$Record.Phone}"
      eventname: sms
      message: "Hi"
    next: note
  note:
    create: Task
    fields: {Subject: "Texted through Kixie", WhoId: "{!$Record.Id}"}
    next: eight
  eight:
    action: EightByEight.Send
    inputs:
      subAccountId: acme-01
      destination: "{!$Record.Phone}"
      text: "And through 8x8"
    retry: {max_attempts: 5, base_delay_ms: 60000, max_delay_ms: 60000}
"#;
    [
        ("herald.toml", "[runtime]\nworkers = 2\ndefault_country = \"US\"\n[automation]\npermission_sets = [\"Senders\"]\n".to_string()),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n  Company: {type: text}\n  Description: {type: textarea}\n".into(),
        ),
        ("objects/Task.yaml", "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, required: true, length: 255}\n  WhoId: {type: reference, references: [Lead]}\n".into()),
        ("credentials/Kixie_API_Auth.yaml", "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Kixie_Principal\n    parameters: [businessid, apikey]\n".into()),
        ("credentials/Kixie_Endpoint.yaml", format!("kind: named-credential\nurl: https://apig.kixie.com\nexternal_credential: Kixie_API_Auth\nallow_formulas_in_body: true\n{kixie_extra}")),
        ("credentials/EightByEight_Auth.yaml", "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Key\n    parameters: [Authorization]\n".into()),
        ("credentials/EightByEight_SMS.yaml", "kind: named-credential\nurl: https://sms.8x8.com\nexternal_credential: EightByEight_Auth\ngenerate_authorization_header: true\n".into()),
        ("permissions/Senders.yaml", "kind: permission-set\nexternal_credential_principal_access: [Kixie_API_Auth-Kixie_Principal, EightByEight_Auth-Key]\n".into()),
        (
            "services/KixieService.yaml",
            "kind: http-callout\nnamed_credential: Kixie_Endpoint\nactions:\n  Send_SMS:\n    method: POST\n    path: /app/event\n    sample_request: {businessid: s, apikey: s, target: s, eventname: s, message: s}\n".into(),
        ),
        (
            "services/EightByEight.yaml",
            "kind: http-callout\nnamed_credential: EightByEight_SMS\nactions:\n  Send:\n    method: POST\n    path: /api/v1/subaccounts/{subAccountId}/messages\n    sample_request: {destination: s, source: s, text: s}\n    sample_response: {umid: s, status: {code: s}}\n".into(),
        ),
        ("webhooks/EightByEight_Events.yaml", "kind: webhook\nprovider: 8x8-sms\nnamed_credential: EightByEight_SMS\n".into()),
        ("flows/Kixie_Welcome.yaml", kixie_flow),
        ("flows/EightByEight_Welcome.yaml", eight_flow),
        ("flows/Two_Steps.yaml", two_step.to_string()),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect()
}

struct Rig {
    _dir: tempfile::TempDir,
    engine: Engine,
    sandbox: Sandbox,
    events: tokio::sync::broadcast::Receiver<RunEvent>,
    /// Events read while waiting for another run.
    seen: Vec<RunEvent>,
}

async fn open_engine(dir: &std::path::Path, address: &str, files: Vec<(PathBuf, String)>) -> Engine {
    open_engine_with(dir, address, files, 2).await
}

async fn open_engine_with(
    dir: &std::path::Path,
    address: &str,
    files: Vec<(PathBuf, String)>,
    workers: usize,
) -> Engine {
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let mut options = options_in(dir);
    options.sandbox = Some(format!("http://{address}"));
    options.workers = workers;
    Engine::open(Arc::new(project), &options).await.unwrap()
}

async fn rig(files: Vec<(PathBuf, String)>) -> Rig {
    rig_with(files, 2).await
}

async fn rig_with(files: Vec<(PathBuf, String)>, workers: usize) -> Rig {
    let sandbox = Sandbox::new(SandboxOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(sandbox.clone().serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine_with(dir.path(), &address, files, workers).await;
    set_credentials(&engine).await;
    engine.start().await.unwrap();
    let events = engine.subscribe();
    Rig { _dir: dir, engine, sandbox, events, seen: Vec::new() }
}

async fn set_credentials(engine: &Engine) {
    for (external, principal, parameter, value) in [
        ("Kixie_API_Auth", "Kixie_Principal", "businessid", "sandbox-business"),
        ("Kixie_API_Auth", "Kixie_Principal", "apikey", "sandbox-apikey"),
        ("EightByEight_Auth", "Key", "Authorization", "Bearer sandbox-8x8-key"),
    ] {
        engine.set_secret(external, principal, parameter, value.as_bytes(), None).await.unwrap();
    }
}

impl Rig {
    async fn lead(&self, fields: Value) -> String {
        let write = self
            .engine
            .create_record("Lead", fields.as_object().unwrap(), &self.engine.automation_user().clone())
            .await
            .unwrap();
        write.runs.first().cloned().expect("the lead starts a run")
    }

    async fn ended(&mut self, run_id: &str) -> RunEvent {
        if let Some(index) = self.seen.iter().position(|e| e.run_id == run_id) {
            return self.seen.remove(index);
        }
        let seen = &mut self.seen;
        let events = &mut self.events;
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let event = events.recv().await.unwrap();
                if event.run_id == run_id {
                    return event;
                }
                seen.push(event);
            }
        })
        .await
        .expect("the run ends")
    }

    async fn wait_for_status(&self, run_id: &str, status: RunStatus) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.engine.run(run_id).await.unwrap().status != status {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("run {run_id} never became {status:?}"));
    }

    fn requests_to(&self, host: &str) -> Vec<herald_sandbox::ReceivedRequest> {
        self.sandbox.requests().into_iter().filter(|r| r.host == host).collect()
    }
}

/// A webhook request's headers: an `Authorization` header, or none.
fn authorization_header(value: Option<&str>) -> Vec<(String, String)> {
    value.map(|value| ("authorization".to_string(), value.to_string())).into_iter().collect()
}

fn faults(config: Value) -> FaultConfig {
    serde_json::from_value(config).unwrap()
}

#[tokio::test]
async fn retry_after_is_honoured_and_retries_end_in_the_fault_path() {
    let retry = "    retry: {max_attempts: 3, base_delay_ms: 1, max_delay_ms: 5}\n";
    let mut rig = rig(files("", "", retry)).await;
    rig.sandbox
        .set_faults("sms.8x8.com", faults(json!({"rate_429": 1.0, "retry_after_seconds": 1})))
        .unwrap();
    let run_id = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567"})).await;
    let event = rig.ended(&run_id).await;
    assert_eq!(event.status, RunStatus::Finished, "the fault connector takes the final failure");
    let requests = rig.requests_to("sms.8x8.com");
    assert_eq!(requests.len(), 3, "three attempts in all");
    for pair in requests.windows(2) {
        let gap = pair[1].received_unix_micros - pair[0].received_unix_micros;
        assert!(gap >= 1_000_000, "a retry came {gap} µs after a 429 that said Retry-After: 1");
    }
    let keys: Vec<&Value> = requests.iter().map(|r| &r.body["clientMessageId"]).collect();
    assert!(keys.iter().all(|k| *k == keys[0] && k.is_string()), "every attempt carries one key: {keys:?}");
    let run = rig.engine.run(&run_id).await.unwrap();
    let trace = run.state["trace"].as_array().unwrap();
    assert_eq!(trace.iter().filter(|t| t["result"].as_str().unwrap_or("").starts_with("retry")).count(), 2);
    let fault =
        trace.iter().find_map(|t| t["fault"].as_str().filter(|_| t["result"] == "fault: log")).unwrap();
    assert!(fault.contains("HTTP 429") && fault.contains("gave up after 3 attempts"), "{fault}");
    let filter = MessageFilter { run_id: Some(run_id.clone()), limit: 10, ..MessageFilter::default() };
    let messages = rig.engine.messages(&filter).await.unwrap();
    assert_eq!(messages.len(), 1, "one message, however many attempts");
    assert_eq!((messages[0].status.as_str(), messages[0].attempts), ("failed", 3));
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let retry = "    retry: {max_attempts: 5, base_delay_ms: 1, max_delay_ms: 5}\n";
    let mut rig = rig(files("", retry, "")).await;
    // A blank message: Kixie answers 400 "Missing field: message".
    let run_id = rig.lead(json!({"LastName": "Ng", "Company": "K", "Phone": "+14155550100"})).await;
    rig.ended(&run_id).await;
    assert_eq!(rig.requests_to("apig.kixie.com").len(), 1, "a 400 is the caller's mistake: no retry");
    let run = rig.engine.run(&run_id).await.unwrap();
    assert_eq!(run.state["trace"][0]["result"], "fault: log");
    assert!(run.state["trace"][0]["fault"].as_str().unwrap().contains("HTTP 400"));
}

#[tokio::test]
async fn server_errors_are_retried_and_8x8_gets_each_message_once() {
    let retry = "    retry: {max_attempts: 6, base_delay_ms: 1, max_delay_ms: 10}\n";
    let mut rig = rig(files("", "", retry)).await;
    rig.sandbox
        .set_faults("sms.8x8.com", faults(json!({"error_rate": 0.5, "reset_rate": 0.2, "seed": 7})))
        .unwrap();
    let mut runs = Vec::new();
    for n in 0..12 {
        runs.push(
            rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": format!("+659123{n:04}")})).await,
        );
    }
    for run in &runs {
        assert_eq!(rig.ended(run).await.status, RunStatus::Finished);
    }
    // Messages carried, counting each message of a coalesced batch request.
    let carried: usize = rig
        .requests_to("sms.8x8.com")
        .iter()
        .map(|r| r.body["messages"].as_array().map_or(1, Vec::len))
        .sum();
    assert!(carried > runs.len(), "faults were injected and retried: {carried} messages sent");
    let messages = rig.sandbox.messages();
    let mut destinations: Vec<&str> = messages.iter().map(|m| m.destination.as_str()).collect();
    destinations.sort();
    destinations.dedup();
    assert_eq!(destinations.len(), messages.len(), "8x8 delivered a destination twice");
    let texted =
        rig.engine.messages(&MessageFilter { limit: 100, ..MessageFilter::default() }).await.unwrap();
    assert_eq!(texted.len(), runs.len(), "one ledger row per lead");
    for message in &texted {
        let at_8x8 = messages.iter().any(|m| m.destination == message.destination);
        match message.status.as_str() {
            "queued" => assert!(at_8x8 && message.provider_message_id.is_some(), "{message:?}"),
            // Gave up after an attempt whose answer was lost: it may or may not have gone out.
            "unknown" => {
                assert!(message.error_text.as_deref().unwrap_or("").contains("may have"), "{message:?}")
            }
            "failed" => assert!(
                !at_8x8,
                "marked failed but 8x8 has it: {message:?}\n{:#?}",
                rig.requests_to("sms.8x8.com")
                    .iter()
                    .filter(|r| r.body["destination"] == message.destination.as_str())
                    .map(|r| (r.status, r.fault.clone()))
                    .collect::<Vec<_>>()
            ),
            other => panic!("unexpected status {other}: {message:?}"),
        }
    }
}

#[tokio::test]
async fn a_kixie_answer_lost_after_arrival_is_flagged_unknown_not_resent() {
    let retry = "    retry: {max_attempts: 5, base_delay_ms: 1, max_delay_ms: 5}\n";
    let mut rig = rig(files("", retry, "")).await;
    rig.sandbox.set_faults("apig.kixie.com", faults(json!({"reset_rate": 1.0}))).unwrap();
    let run_id = rig
        .lead(json!({"LastName": "Ng", "Company": "K", "Phone": "+14155550100", "Description": "Hi"}))
        .await;
    assert_eq!(rig.ended(&run_id).await.status, RunStatus::Unknown);
    assert_eq!(rig.requests_to("apig.kixie.com").len(), 1, "never sent twice");
    let run = rig.engine.run(&run_id).await.unwrap();
    assert!(run.fault.as_deref().unwrap_or("").contains("cannot recognise a resend"), "{:?}", run.fault);
    let listed = rig.engine.list_runs(&[RunStatus::Unknown], 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [run_id.as_str()]);
    let messages =
        rig.engine.messages(&MessageFilter { limit: 10, ..MessageFilter::default() }).await.unwrap();
    assert_eq!(messages[0].status, "unknown");
}

#[tokio::test]
async fn a_rate_limited_credential_does_not_hold_up_another() {
    let mut rig = rig(files(KIXIE_RATE, "", "")).await;
    let mut kixie = Vec::new();
    let mut eight = Vec::new();
    for n in 0..8 {
        let phone = format!("+1415555{n:04}");
        kixie.push(
            rig.lead(json!({"LastName": "K", "Company": "K", "Phone": phone, "Description": "Hi"})).await,
        );
        let phone = format!("+659123{n:04}");
        eight.push(rig.lead(json!({"LastName": "E", "Company": "E", "Phone": phone})).await);
    }
    for run in kixie.iter().chain(&eight) {
        assert_eq!(rig.ended(run).await.status, RunStatus::Finished);
    }
    let requests = rig.sandbox.requests();
    // The request that carried a host's nth message (8x8 sends may share a batch request).
    let position = |host: &str, nth: usize| {
        let mut carried = 0;
        requests
            .iter()
            .filter(|r| r.host == host)
            .find(|r| {
                carried += r.body["messages"].as_array().map_or(1, Vec::len);
                carried > nth
            })
            .map(|r| r.sequence)
            .unwrap()
    };
    // Kixie may send 2 at once, then one every 500 ms; 8x8 has no such limit and must not wait.
    assert!(
        position("sms.8x8.com", 7) < position("apig.kixie.com", 4),
        "8x8 sends waited behind Kixie's rate limit"
    );
    let kixie_times: Vec<i64> =
        requests.iter().filter(|r| r.host == "apig.kixie.com").map(|r| r.received_unix_micros).collect();
    let span = kixie_times.last().unwrap() - kixie_times.first().unwrap();
    assert!(span >= 2_500_000, "8 Kixie sends at 2/s with a burst of 2 take at least 3 s; took {span} µs");
}

fn receipt(umid: &str, state: &str) -> Vec<u8> {
    json!({
        "namespace": "SMS",
        "eventType": "outbound_message_status_changed",
        "description": "status changed",
        "payload": {
            "umid": umid,
            "subAccountId": "acme-01",
            "destination": "+6591234567",
            "status": {"state": state, "detail": format!("{state}_detail"), "timestamp": "2026-11-21T10:00:00Z"},
            "price": {"total": 0.035, "perSms": 0.035, "currency": "EUR"},
            "smsCount": 1
        }
    })
    .to_string()
    .into_bytes()
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[tokio::test]
async fn receipts_out_of_order_only_move_the_status_forward_and_a_replayed_one_adds_nothing() {
    let mut rig = rig(files("", "", "")).await;
    let secret = rig.engine.create_webhook_secret("EightByEight_Events").await.unwrap();
    let run_id = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567"})).await;
    rig.ended(&run_id).await;
    let filter = MessageFilter { run_id: Some(run_id.clone()), limit: 10, ..MessageFilter::default() };
    let message = rig.engine.messages(&filter).await.unwrap().remove(0);
    let umid = message.provider_message_id.clone().expect("the answer's umid is kept");
    assert_eq!(message.status, "queued");

    let authorization = bearer(&secret);
    let engine = rig.engine.clone();
    let deliver = |body: &[u8]| {
        let body = body.to_vec();
        let engine = engine.clone();
        let authorization = authorization.clone();
        async move {
            let headers = authorization_header(Some(&authorization));
            let request = WebhookRequest {
                headers: &headers,
                query_secret: None,
                url: "http://herald.test/webhooks/EightByEight_Events",
                body: &body,
            };
            engine.receive_webhook("EightByEight_Events", &request).await.unwrap()
        }
    };
    assert_eq!(deliver(&receipt(&umid, "delivered")).await.applied, 1);
    assert_eq!(
        deliver(&receipt(&umid, "sent")).await.applied,
        0,
        "an older status arriving late changes nothing"
    );
    let all_receipts = rig.engine.receipts(false, 100).await.unwrap().len();
    let replay = deliver(&receipt(&umid, "delivered")).await;
    assert!(replay.replayed && replay.applied == 0, "a replayed delivery changes nothing: {replay:?}");
    assert_eq!(rig.engine.receipts(false, 100).await.unwrap().len(), all_receipts, "and adds no receipt");
    let unknown = deliver(&receipt("no-such-umid", "delivered")).await;
    assert_eq!((unknown.matched, unknown.unmatched), (0, 1));

    let message = rig.engine.message(&message.id).await.unwrap().unwrap();
    assert_eq!(message.status, "delivered");
    assert_eq!(message.price.as_deref(), Some("0.035"));
    let history = message.history.as_array().unwrap();
    let receipts: Vec<&Value> =
        history.iter().filter(|h| h["source"] == "receipt:EightByEight_Events").collect();
    assert_eq!(receipts.len(), 2, "every receipt but the replay is in the history: {history:?}");
    assert_eq!(receipts.iter().filter(|h| h.get("ignored").is_some()).count(), 1);
    let kept = rig.engine.receipts(true, 10).await.unwrap();
    assert_eq!(kept.len(), 1, "an unmatched receipt is kept, not dropped");
    assert_eq!(kept[0].provider_message_id.as_deref(), Some("no-such-umid"));
}

#[tokio::test]
async fn webhooks_refuse_a_missing_or_wrong_secret() {
    let rig = rig(files("", "", "")).await;
    let body = receipt("x", "delivered");
    let (bearer_x, bearer_wrong, none) = (
        authorization_header(Some("Bearer x")),
        authorization_header(Some("Bearer whsec_wrong")),
        authorization_header(None),
    );
    let request = |headers| WebhookRequest {
        headers,
        query_secret: None,
        url: "http://herald.test/webhooks/EightByEight_Events",
        body: b"",
    };
    let no_secret_yet = rig.engine.receive_webhook("EightByEight_Events", &request(&bearer_x)).await;
    assert!(
        matches!(no_secret_yet, Err(WebhookError::Unauthorized(m)) if m.contains("herald webhook secret"))
    );
    let secret = rig.engine.create_webhook_secret("EightByEight_Events").await.unwrap();
    let wrong = rig.engine.receive_webhook("EightByEight_Events", &request(&bearer_wrong)).await;
    assert!(matches!(wrong, Err(WebhookError::Unauthorized(_))));
    let missing = rig.engine.receive_webhook("EightByEight_Events", &request(&none)).await;
    assert!(matches!(missing, Err(WebhookError::Unauthorized(_))));
    let by_query = WebhookRequest {
        headers: &none,
        query_secret: Some(&secret),
        url: "http://herald.test/webhooks/EightByEight_Events?secret=x",
        body: &body,
    };
    let report = rig.engine.receive_webhook("EightByEight_Events", &by_query).await.unwrap();
    assert_eq!(report.unmatched, 1);
    let unknown = rig.engine.receive_webhook("Nope", &request(&none)).await;
    assert!(matches!(unknown, Err(WebhookError::NotFound { .. })));
}

fn inbound(from: &str, text: &str) -> Vec<u8> {
    json!({
        "namespace": "SMS",
        "eventType": "inbound_message_received",
        "description": "inbound",
        "payload": {"umid": format!("in-{text}"), "subAccountId": "acme-01", "timestamp": "2026-11-21T10:00:00Z",
                    "source": from, "destination": "+6560000000", "body": text, "encoding": "GSM7", "smsCount": 1}
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn stop_opts_a_phone_out_and_start_opts_it_back_in() {
    let mut rig = rig(files("", "", "")).await;
    let secret = rig.engine.create_webhook_secret("EightByEight_Events").await.unwrap();
    let authorization = bearer(&secret);
    let engine = rig.engine.clone();
    let post = |text: &'static str| {
        let engine = engine.clone();
        let authorization = authorization.clone();
        async move {
            let body = inbound("+6591234567", text);
            let headers = authorization_header(Some(&authorization));
            let request = WebhookRequest {
                headers: &headers,
                query_secret: None,
                url: "http://herald.test/webhooks/EightByEight_Events",
                body: &body,
            };
            engine.receive_webhook("EightByEight_Events", &request).await.unwrap()
        }
    };
    assert_eq!(post("Stop").await.opt_outs, 1);
    let refused = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+65 9123 4567"})).await;
    rig.ended(&refused).await;
    assert!(rig.requests_to("sms.8x8.com").is_empty(), "an opted-out phone gets no callout");
    let run = rig.engine.run(&refused).await.unwrap();
    let fault = run.state["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("+6591234567 opted out") && fault.contains("START"), "{fault}");

    assert_eq!(post("START").await.opt_ins, 1);
    let sent = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567"})).await;
    rig.ended(&sent).await;
    assert_eq!(rig.requests_to("sms.8x8.com").len(), 1, "after START the phone is texted again");
    let consent = rig.engine.consents().await.unwrap();
    assert_eq!(consent.len(), 1);
    assert_eq!((consent[0].status.as_str(), consent[0].keyword.as_deref()), ("opted_in", Some("START")));
}

#[tokio::test]
async fn a_waiting_run_resumes_at_its_step_in_another_engine() {
    let sandbox = Sandbox::new(SandboxOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(sandbox.clone().serve(listener));
    sandbox.set_faults("sms.8x8.com", faults(json!({"error_rate": 1.0}))).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // First process: the Kixie step and the Task succeed, the 8x8 step fails and waits a minute.
    let first = open_engine(dir.path(), &address, files("", "", "")).await;
    set_credentials(&first).await;
    first.start().await.unwrap();
    let write = first
        .create_record(
            "Lead",
            json!({"LastName": "Ng", "Company": "Both", "Phone": "+14155550100"}).as_object().unwrap(),
            &first.automation_user().clone(),
        )
        .await
        .unwrap();
    let run_id = write.runs[0].clone();
    let waiting = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let run = first.run(&run_id).await.unwrap();
            if run.status == RunStatus::Waiting {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run waits for its retry");
    assert!(waiting.next_attempt_at.is_some());
    first.store().close().await;

    // Second process on the same database: the retry goes on from the 8x8 step.
    sandbox.set_faults("sms.8x8.com", FaultConfig::default()).unwrap();
    let second = open_engine(dir.path(), &address, files("", "", "")).await;
    second.start().await.unwrap();
    let mut events = second.subscribe();
    let outcome = second.retry_run(&run_id, None).await.unwrap();
    assert_eq!(outcome.from_element, "eight");
    let event = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.run_id == run_id {
                return event;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event.status, RunStatus::Finished);
    let requests = sandbox.requests();
    assert_eq!(requests.iter().filter(|r| r.host == "apig.kixie.com").count(), 1, "step 1 is not redone");
    let eight: Vec<_> = requests.iter().filter(|r| r.host == "sms.8x8.com").collect();
    assert_eq!(eight.len(), 2, "the failed attempt and the retry");
    assert_eq!(
        eight[0].body["clientMessageId"], eight[1].body["clientMessageId"],
        "the same attempt, resent"
    );
    let tasks = second.store().records_of("Task", 10).await.unwrap();
    assert_eq!(tasks.len(), 1, "the Task of step 2 is not created twice");
}

#[tokio::test]
async fn a_failed_run_is_retried_from_a_named_element_as_a_new_send() {
    let retry = "    retry: {max_attempts: 3, base_delay_ms: 60000, max_delay_ms: 60000}\n";
    let mut rig = rig(files("", "", retry)).await;
    rig.sandbox.set_faults("sms.8x8.com", faults(json!({"error_rate": 1.0}))).unwrap();
    let retry_off = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567"})).await;
    // The retry is a minute away (or less, with full jitter): take the run out of its wait by hand.
    rig.wait_for_status(&retry_off, RunStatus::Waiting).await;
    rig.sandbox.set_faults("sms.8x8.com", FaultConfig::default()).unwrap();
    let outcome = rig.engine.retry_run(&retry_off, None).await.unwrap();
    assert_eq!(outcome.from_element, "send");
    assert_eq!(rig.ended(&retry_off).await.status, RunStatus::Finished);
    let refused = rig.engine.retry_run(&retry_off, Some("nope")).await;
    assert!(refused.unwrap_err().to_string().contains("has no element `nope`"));
    let again = rig.engine.retry_run(&retry_off, Some("send")).await.unwrap();
    assert_eq!(again.from_element, "send");
    assert_eq!(rig.ended(&retry_off).await.status, RunStatus::Finished);
    let requests = rig.requests_to("sms.8x8.com");
    let last = &requests[requests.len() - 1].body["clientMessageId"];
    let before = &requests[requests.len() - 2].body["clientMessageId"];
    assert_ne!(last, before, "a retry by hand is a new message: a new idempotency key");
    assert_eq!(rig.sandbox.messages().len(), 2);
}

#[tokio::test]
async fn an_8x8_text_over_ten_parts_is_refused_before_any_callout() {
    let mut rig = rig(files("", "", "")).await;
    let long = "x".repeat(153 * 10);
    let run_id = rig
        .lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567", "Description": long}))
        .await;
    rig.ended(&run_id).await;
    let run = rig.engine.run(&run_id).await.unwrap();
    let fault = run.state["trace"][0]["fault"].as_str().unwrap_or_default().to_string();
    assert!(fault.contains("was not sent") && fault.contains("11 parts"), "{fault}");
    assert!(rig.requests_to("sms.8x8.com").is_empty());
}

#[tokio::test]
async fn concurrent_8x8_sends_share_batch_requests_and_each_run_gets_its_own_answer() {
    let mut rig = rig_with(files("", "", ""), 16).await;
    // A slow answer keeps the lane's requests in flight, so the sends behind them queue up.
    rig.sandbox.set_faults("sms.8x8.com", faults(json!({"latency_ms": [40, 40]}))).unwrap();
    let blocked = herald_providers::eightbyeight::emulator::BLOCKED_DESTINATION;
    let mut runs = Vec::new();
    for n in 0..24 {
        let phone = if n == 17 { blocked.to_string() } else { format!("+659123{n:04}") };
        runs.push((phone.clone(), rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": phone})).await));
    }
    // The blocked number's run takes its fault path (a Task) and finishes too.
    for (phone, run) in &runs {
        assert_eq!(rig.ended(run).await.status, RunStatus::Finished, "{phone}");
    }
    let requests = rig.requests_to("sms.8x8.com");
    let batches: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/messages/batch")).collect();
    assert!(!batches.is_empty(), "no batch request among {} requests", requests.len());
    assert!(requests.len() < runs.len(), "{} requests for {} sends", requests.len(), runs.len());
    assert!(batches.iter().all(|b| b.body["messages"].as_array().is_some_and(|m| m.len() >= 2)));

    let accepted = rig.sandbox.messages();
    assert_eq!(accepted.len(), runs.len() - 1, "every message but the blocked one was accepted once");
    let ledger =
        rig.engine.messages(&MessageFilter { limit: 100, ..MessageFilter::default() }).await.unwrap();
    assert_eq!(ledger.len(), runs.len());
    for (phone, run) in &runs {
        let row = ledger.iter().find(|m| &m.destination == phone).expect("a ledger row per lead");
        let state = rig.engine.run(run).await.unwrap().state;
        if phone == blocked {
            assert_eq!(row.status, "rejected", "{row:?}");
            let fault = state["trace"][0]["fault"].as_str().unwrap_or_default().to_string();
            assert!(fault.contains("blocked by the operator"), "{fault}");
            let tasks = rig.engine.store().records_of("Task", 10).await.unwrap();
            assert_eq!(tasks.len(), 1, "the fault path ran for the blocked number only");
        } else {
            // Its own umid, as 8x8 gave it for this destination, in the ledger and the flow's output.
            let at_8x8 = accepted.iter().find(|m| &m.destination == phone).expect("accepted");
            assert_eq!(row.provider_message_id.as_deref(), Some(at_8x8.id.as_str()), "{row:?}");
            assert_eq!(row.status, "queued");
            let body = state["trace"][0]["outputs"]["responseBody"].as_str().unwrap_or_default();
            assert!(body.contains(&at_8x8.id), "the run's answer is its own message's entry: {body}");
        }
    }
}

#[tokio::test]
async fn an_abandoned_8x8_send_gives_its_place_in_the_lane_back() {
    let mut rig = rig_with(files("", "", ""), 8).await;
    rig.sandbox.set_faults("sms.8x8.com", faults(json!({"latency_ms": [1000, 1000]}))).unwrap();
    // Two debug runs take both places of the lane; their callers give up while 8x8 is slow.
    let debug_runs: Vec<_> = (0..2)
        .map(|n| {
            let engine = rig.engine.clone();
            tokio::spawn(async move {
                let record = json!({"LastName": "Ng", "Company": "E", "Phone": format!("+65912399{n:02}")});
                let user = engine.automation_user().clone();
                engine.debug_run("EightByEight_Welcome", record.as_object().unwrap(), true, &user).await
            })
        })
        .collect();
    // Both sends are on their way (8x8 answers after a second).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for run in debug_runs {
        run.abort();
    }
    let run = rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": "+6591230001"})).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), rig.ended(&run)).await;
    assert_eq!(ended.expect("the lane was free again").status, RunStatus::Finished);
    let state = rig.engine.run(&run).await.unwrap().state;
    assert_eq!(state["trace"][0]["fault"], Value::Null, "{:#}", state["trace"]);
}

#[tokio::test]
async fn a_record_write_waits_for_room_when_runs_not_yet_sent_fill_every_place() {
    // One worker: 8 places for runs whose request has not left yet. The engine is not started, so
    // the first 8 leads' runs wait in the queue, each holding its place.
    let sandbox = Sandbox::new(SandboxOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(sandbox.clone().serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine_with(dir.path(), &address, files("", "", ""), 1).await;
    set_credentials(&engine).await;
    let user = engine.automation_user().clone();
    let mut runs = Vec::new();
    for n in 0..8 {
        let fields = json!({"LastName": "Ng", "Company": "E", "Phone": format!("+659123{n:04}")});
        runs.push(
            engine.create_record("Lead", fields.as_object().unwrap(), &user).await.unwrap().runs[0].clone(),
        );
    }
    let waiting = engine.clone();
    let ninth = tokio::spawn(async move {
        let fields = json!({"LastName": "Ng", "Company": "E", "Phone": "+6591239999"});
        waiting.create_record("Lead", fields.as_object().unwrap(), &waiting.automation_user().clone()).await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!ninth.is_finished(), "the 9th lead was accepted while 8 unsent runs held every place");
    let mut events = engine.subscribe();
    engine.start().await.unwrap();
    let written = tokio::time::timeout(Duration::from_secs(10), ninth)
        .await
        .expect("admitted once a run's request left")
        .unwrap()
        .unwrap();
    let mut ended = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while ended.len() < 9 {
            let event = events.recv().await.unwrap();
            assert_eq!(event.status, RunStatus::Finished, "{event:?}");
            ended.insert(event.run_id);
        }
    })
    .await
    .expect("every run ends");
    assert!(runs.iter().chain(&written.runs).all(|run| ended.contains(run)));
}

#[tokio::test]
async fn runs_waiting_on_a_slow_provider_hold_no_place_so_new_leads_are_admitted_at_once() {
    // One worker: 8 places. The provider takes 400 ms to answer; 16 leads are accepted while the
    // first runs are still waiting for their answers.
    let mut rig = rig_with(files("", "", ""), 1).await;
    rig.sandbox.set_faults("sms.8x8.com", faults(json!({"latency_ms": [400, 400]}))).unwrap();
    let mut runs = Vec::new();
    for n in 0..16 {
        runs.push(
            rig.lead(json!({"LastName": "Ng", "Company": "E", "Phone": format!("+659123{n:04}")})).await,
        );
    }
    assert_ne!(
        rig.engine.run(&runs[0]).await.unwrap().status,
        RunStatus::Finished,
        "the 16th lead was accepted before the first run's answer came"
    );
    for run in &runs {
        assert_eq!(rig.ended(run).await.status, RunStatus::Finished);
    }
    // All 16 were on the wire together, not one worker's worth at a time.
    let requests = rig.requests_to("sms.8x8.com");
    let messages: usize =
        requests.iter().map(|r| r.body.get("messages").and_then(Value::as_array).map_or(1, Vec::len)).sum();
    assert_eq!(messages, 16);
}

/// A node on the shared PostgreSQL database `url` whose backstop poll for due runs never comes within
/// a test: a waiting run it takes, it took because it heard of it.
async fn node(dir: &std::path::Path, url: &str, address: &str, files: Vec<(PathBuf, String)>) -> Engine {
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let mut options = EngineOptions::for_database(url.into());
    options.key_file = dir.join("h.key");
    options.sandbox = Some(format!("http://{address}"));
    options.due_poll_every = Duration::from_secs(3600);
    Engine::open(Arc::new(project), &options).await.unwrap()
}

/// Waits until `listener` hears what `writer` commits (its listening connection is up), by writing
/// the consent of a phone no test texts.
async fn until_listening(writer: &Engine, listener: &Engine) {
    let mut heard = listener.store().notices().expect("a shared database announces changes");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let probe = herald_store::ConsentRow {
                phone: "+10000000000".into(),
                sender: String::new(),
                status: "opted_in".into(),
                keyword: None,
                source: "probe".into(),
                updated_at: herald_engine::now_text(),
            };
            writer.store().write(move |tx| tx.set_consent(&probe)).await.unwrap();
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
                return;
            }
        }
    })
    .await
    .expect("the node hears the other");
}

async fn sandbox_with_8x8_failing() -> (Sandbox, String) {
    let sandbox = Sandbox::new(SandboxOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(sandbox.clone().serve(listener));
    sandbox.set_faults("sms.8x8.com", faults(json!({"error_rate": 1.0}))).unwrap();
    (sandbox, address)
}

/// Creates an 8x8 lead on `engine` and waits until its run waits for a retry; returns the run's id.
async fn parked_lead(engine: &Engine) -> String {
    let fields = json!({"LastName": "Ng", "Company": "E", "Phone": "+6591234567"});
    let write =
        engine.create_record("Lead", fields.as_object().unwrap(), &engine.automation_user().clone()).await;
    let run_id = write.unwrap().runs[0].clone();
    tokio::time::timeout(Duration::from_secs(20), async {
        while engine.run(&run_id).await.unwrap().status != RunStatus::Waiting {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the run waits for its retry");
    run_id
}

async fn ended(events: &mut tokio::sync::broadcast::Receiver<RunEvent>, run_id: &str) -> RunEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.run_id == run_id {
                return event;
            }
        }
    })
    .await
    .expect("the run ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_parked_by_a_node_that_then_stops_is_taken_by_another_when_due_without_its_poll() {
    let Some(database) = herald_store::postgres::testing::scratch_database() else { return };
    let (sandbox, address) = sandbox_with_8x8_failing().await;
    let dir = tempfile::tempdir().unwrap();
    // Retried two seconds after the failure: time enough to stop the node that parked it.
    let files = || files("", "", "    retry: {max_attempts: 3, base_delay_ms: 2000, max_delay_ms: 2000}\n");
    let one = node(dir.path(), &database.url, &address, files()).await;
    let two = node(dir.path(), &database.url, &address, files()).await;
    set_credentials(&one).await;
    one.start().await.unwrap();
    two.start().await.unwrap();
    until_listening(&one, &two).await;
    let mut events = two.subscribe();

    let run_id = parked_lead(&one).await;
    // Its own timer then finds the database closed.
    one.store().close().await;
    sandbox.set_faults("sms.8x8.com", FaultConfig::default()).unwrap();

    assert_eq!(ended(&mut events, &run_id).await.status, RunStatus::Finished);
    assert_eq!(
        two.run(&run_id).await.unwrap().owner.as_deref(),
        Some(two.node_id()),
        "the other node took it"
    );
    let sent = sandbox.requests().into_iter().filter(|r| r.host == "sms.8x8.com").count();
    assert_eq!(sent, 2, "the failed attempt and its retry, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_woken_from_the_command_line_is_taken_by_a_serving_node_at_once() {
    let Some(database) = herald_store::postgres::testing::scratch_database() else { return };
    let (sandbox, address) = sandbox_with_8x8_failing().await;
    let dir = tempfile::tempdir().unwrap();
    // Retried an hour after the failure: only being woken runs it within the test.
    let files =
        || files("", "", "    retry: {max_attempts: 3, base_delay_ms: 3600000, max_delay_ms: 3600000}\n");
    let serving = node(dir.path(), &database.url, &address, files()).await;
    set_credentials(&serving).await;
    serving.start().await.unwrap();
    let run_id = parked_lead(&serving).await;
    sandbox.set_faults("sms.8x8.com", FaultConfig::default()).unwrap();
    let mut events = serving.subscribe();

    // `herald runs wake` opens an engine that runs no flows.
    let command_line = node(dir.path(), &database.url, &address, files()).await;
    until_listening(&command_line, &serving).await;
    let outcome = command_line.wake_run(&run_id).await.unwrap();
    assert!(!outcome.queued, "the command line runs nothing itself");

    assert_eq!(ended(&mut events, &run_id).await.status, RunStatus::Finished);
    let sent = sandbox.requests().into_iter().filter(|r| r.host == "sms.8x8.com").count();
    assert_eq!(sent, 2, "the failed attempt and its retry, once");
}
