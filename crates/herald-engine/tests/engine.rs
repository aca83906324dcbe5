//! The engine against a real SQLite file: triggers in the record's transaction, permission faults that
//! name the missing grant, and runs interrupted mid-callout.

use chrono::Utc;
use herald_engine::{Engine, EngineOptions, RunEvent};
use herald_expr::EvalContext;
use herald_flow::{RunState, Step};
use herald_store::RunStatus;
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

fn files(permission_sets: &str, flow: &str) -> Vec<(PathBuf, String)> {
    [
        ("herald.toml", format!("[automation]\npermission_sets = [{permission_sets}]\n")),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n  Status: {type: picklist, values: [Open, Working], default: Open}\n".into(),
        ),
        ("objects/Task.yaml", "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, required: true}\n  WhoId: {type: reference, references: [Lead]}\n".into()),
        ("credentials/Kixie_API_Auth.yaml", "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Kixie_Principal\n    parameters: [businessid, apikey]\n".into()),
        ("credentials/Kixie_Endpoint.yaml", "kind: named-credential\nurl: https://apig.kixie.com\nexternal_credential: Kixie_API_Auth\nallow_formulas_in_body: true\n".into()),
        ("permissions/Kixie_Integration_User.yaml", "kind: permission-set\nexternal_credential_principal_access: [Kixie_API_Auth-Kixie_Principal]\n".into()),
        (
            "services/KixieService.yaml",
            "kind: http-callout\nnamed_credential: Kixie_Endpoint\nactions:\n  Send_SMS:\n    method: POST\n    path: /app/event\n    sample_request: {businessid: s, apikey: s, target: s, eventname: s, message: s}\n".into(),
        ),
        ("flows/F.yaml", flow.to_string()),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect()
}

const SEND: &str = r#"
trigger: {object: Lead, on: create, conditions: [{field: Phone, operator: IsBlank, right: false}]}
start: send
elements:
  send:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!$Record.Phone}"
      eventname: sms
      message: "Hi"
    fault: log
  log:
    create: Task
    fields: {Subject: "SMS failed: {!$Flow.FaultMessage}", WhoId: "{!$Record.Id}"}
"#;

async fn engine(
    dir: &tempfile::TempDir,
    permission_sets: &str,
    flow: &str,
    sandbox: Option<String>,
) -> Engine {
    let project =
        herald_flow::load_files("/t".into(), files(permission_sets, flow)).unwrap_or_else(|d| panic!("{d}"));
    let mut options = options_in(dir.path());
    options.sandbox = sandbox;
    Engine::open(Arc::new(project), &options).await.unwrap()
}

async fn finished(events: &mut tokio::sync::broadcast::Receiver<RunEvent>, run_id: &str) -> RunEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.run_id == run_id {
                return event;
            }
        }
    })
    .await
    .expect("the run finishes")
}

fn fields(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn update_flows_fire_only_when_the_record_comes_to_meet_the_condition() {
    let flow = r#"
trigger:
  object: Lead
  on: update
  conditions: [{field: Status, operator: EqualTo, right: Working}]
  only_when_updated_to_meet: true
start: log
elements:
  log:
    create: Task
    fields: {Subject: "Now working: {!$Record.LastName} (was {!$Record__Prior.Status})", WhoId: "{!$Record.Id}"}
"#;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "", flow, None).await;
    engine.start().await.unwrap();
    let mut events = engine.subscribe();
    let lead = engine
        .create_record("Lead", &fields(json!({"LastName": "Ng"})), &engine.automation_user().clone())
        .await
        .unwrap();
    assert!(lead.runs.is_empty(), "an update flow does not run on create");
    let write = engine
        .update_record(
            "Lead",
            &lead.id,
            &fields(json!({"Status": "Working"})),
            &engine.automation_user().clone(),
        )
        .await
        .unwrap();
    assert_eq!(write.runs.len(), 1);
    let event = finished(&mut events, &write.runs[0]).await;
    assert_eq!(event.status, RunStatus::Finished);
    let run = engine.run(&write.runs[0]).await.unwrap();
    let task_id = run.state["trace"][0]["outputs"]["Id"].as_str().unwrap().to_string();
    let task = engine.get_record("Task", &task_id).await.unwrap();
    assert_eq!(task.data["Subject"], "Now working: Ng (was Open)");
    // Still Working after another change: the condition was already met, so nothing runs.
    let again = engine
        .update_record("Lead", &lead.id, &fields(json!({"Phone": "+1"})), &engine.automation_user().clone())
        .await
        .unwrap();
    assert!(again.runs.is_empty());
}

#[tokio::test]
async fn a_user_without_the_permission_set_gets_a_fault_that_names_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "", SEND, None).await;
    engine.start().await.unwrap();
    let mut events = engine.subscribe();
    let lead = engine
        .create_record(
            "Lead",
            &fields(json!({"LastName": "Ng", "Phone": "+14155550100"})),
            &engine.automation_user().clone(),
        )
        .await
        .unwrap();
    finished(&mut events, &lead.runs[0]).await;
    let run = engine.run(&lead.runs[0]).await.unwrap();
    let fault = run.state["trace"][0]["fault"].as_str().unwrap();
    assert!(
        fault.contains("user Automated Process has no access to external credential Kixie_API_Auth"),
        "{fault}"
    );
    assert!(fault.contains("Kixie_API_Auth-Kixie_Principal"), "{fault}");
    assert!(fault.contains("assign permission set Kixie_Integration_User"), "{fault}");
}

#[tokio::test]
async fn a_callout_in_flight_at_a_crash_is_marked_unknown_and_never_resent() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = herald_sandbox::Sandbox::new(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox.clone().serve(listener));

    // First process: the run is enqueued but no worker runs it; then it gets as far as "sent".
    let run_id = {
        let engine = engine(&dir, "\"Kixie_Integration_User\"", SEND, Some(url.clone())).await;
        let lead = engine
            .create_record(
                "Lead",
                &fields(json!({"LastName": "Ng", "Phone": "+14155550100"})),
                &engine.automation_user().clone(),
            )
            .await
            .unwrap();
        let run_id = lead.runs[0].clone();
        let claimed = engine.store().claim_run(&run_id, "another-process", "t").await.unwrap().unwrap();
        let mut state: RunState = serde_json::from_value(claimed.state).unwrap();
        let flow = engine.project().flows["F"].clone();
        assert!(matches!(flow.advance(&mut state, &EvalContext::new(Utc::now())), Step::Effect(_)));
        flow.mark_sent(&mut state, Utc::now());
        engine
            .store()
            .save_run(&run_id, RunStatus::Running, &serde_json::to_string(&state).unwrap(), None, "t")
            .await
            .unwrap();
        engine.store().close().await;
        run_id
    };

    // Second process: recovery must not resend to Kixie, which has no idempotency key.
    let engine = engine(&dir, "\"Kixie_Integration_User\"", SEND, Some(url)).await;
    engine.start().await.unwrap();
    let run = engine.run(&run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Unknown);
    assert!(run.fault.as_deref().unwrap().contains("was not sent again"), "{:?}", run.fault);
    assert!(sandbox.requests().is_empty(), "nothing may be sent after the crash");
}

#[tokio::test]
async fn a_run_interrupted_before_sending_resumes_and_sends_once() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = herald_sandbox::Sandbox::new(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox.clone().serve(listener));
    let run_id = {
        let engine = engine(&dir, "\"Kixie_Integration_User\"", SEND, Some(url.clone())).await;
        engine
            .set_secret("Kixie_API_Auth", "Kixie_Principal", "businessid", b"sandbox-business", None)
            .await
            .unwrap();
        engine
            .set_secret("Kixie_API_Auth", "Kixie_Principal", "apikey", b"sandbox-apikey", None)
            .await
            .unwrap();
        let lead = engine
            .create_record(
                "Lead",
                &fields(json!({"LastName": "Ng", "Phone": "+14155550100"})),
                &engine.automation_user().clone(),
            )
            .await
            .unwrap();
        // Claimed by a worker that died before the callout left.
        engine.store().claim_run(&lead.runs[0], "another-process", "t").await.unwrap().unwrap();
        engine.store().close().await;
        lead.runs[0].clone()
    };
    let engine = engine(&dir, "\"Kixie_Integration_User\"", SEND, Some(url)).await;
    let mut events = engine.subscribe();
    engine.start().await.unwrap();
    let event = finished(&mut events, &run_id).await;
    assert_eq!(event.status, RunStatus::Finished);
    assert_eq!(sandbox.requests().len(), 1);
}

#[tokio::test]
async fn oauth_tokens_are_cached_and_refreshed_once_after_a_401() {
    let files: Vec<(PathBuf, String)> = [
        ("herald.toml", "[automation]\npermission_sets = [\"Api\"]\n"),
        ("objects/Lead.yaml", "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n"),
        (
            "credentials/Auth.yaml",
            "kind: external-credential\nprotocol: oauth2_client_credentials\ntoken_url: https://auth.sandbox.test/oauth/token\nprincipals:\n  - name: Main\n    parameters: [client_id, client_secret]\n",
        ),
        ("credentials/Api.yaml", "kind: named-credential\nurl: https://api.sandbox.test\nexternal_credential: Auth\ngenerate_authorization_header: true\n"),
        ("permissions/Api.yaml", "kind: permission-set\nexternal_credential_principal_access: [Auth-Main]\n"),
        (
            "services/Messages.yaml",
            "kind: http-callout\nnamed_credential: Api\nactions:\n  Send:\n    method: POST\n    path: /v1/messages\n    sample_request: {to: s, text: s}\n",
        ),
        (
            "flows/F.yaml",
            "trigger: {object: Lead, on: create}\nstart: send\nelements:\n  send:\n    action: Messages.Send\n    inputs: {to: \"{!$Record.Phone}\", text: hi}\n",
        ),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t.to_string()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = herald_sandbox::Sandbox::new(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox.clone().serve(listener));
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let mut options = options_in(dir.path());
    options.sandbox = Some(url);
    let engine = Engine::open(Arc::new(project), &options).await.unwrap();
    engine.set_secret("Auth", "Main", "client_id", b"sandbox-client", None).await.unwrap();
    engine.set_secret("Auth", "Main", "client_secret", b"sandbox-secret", None).await.unwrap();
    engine.start().await.unwrap();
    let mut events = engine.subscribe();
    let actor = engine.automation_user().clone();
    let mut send = async |phone: &str| {
        let lead = engine
            .create_record("Lead", &fields(json!({"LastName": "L", "Phone": phone})), &actor)
            .await
            .unwrap();
        let event = finished(&mut events, &lead.runs[0]).await;
        let run = engine.run(&lead.runs[0]).await.unwrap();
        (event.status, run)
    };
    let (status, run) = send("+1").await;
    assert_eq!(status, RunStatus::Finished, "{:?}", run.state["trace"]);
    assert_eq!(run.state["trace"][0]["outputs"]["responseCode"], 201);
    send("+2").await;
    assert_eq!(sandbox.oauth_tokens_issued(), 1, "the token is cached across callouts");
    // The provider forgets every token: the next callout gets a 401, fetches once more, and succeeds.
    sandbox.revoke_oauth_tokens();
    let (status, run) = send("+3").await;
    assert_eq!(status, RunStatus::Finished, "{:?}", run.state["trace"]);
    assert_eq!(sandbox.oauth_tokens_issued(), 2);
    let api_calls = sandbox.requests().iter().filter(|r| r.host == "api.sandbox.test").count();
    assert_eq!(api_calls, 4, "three sends, one of them retried once");
    assert!(!run.state.to_string().contains("sandbox-secret"));
}

#[tokio::test]
async fn a_run_whose_secret_was_tampered_with_fails_for_a_person_without_taking_the_fault_path() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = herald_sandbox::Sandbox::new(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox.clone().serve(listener));
    let engine = engine(&dir, "\"Kixie_Integration_User\"", SEND, Some(url)).await;
    for (parameter, value) in [("businessid", "sandbox-business"), ("apikey", "sandbox-apikey")] {
        engine
            .set_secret("Kixie_API_Auth", "Kixie_Principal", parameter, value.as_bytes(), None)
            .await
            .unwrap();
    }
    // Someone with access to the database file altered the stored apikey.
    let store = engine.store();
    let mut apikey = store
        .secrets("Kixie_API_Auth", "Kixie_Principal", "")
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.parameter == "apikey")
        .unwrap();
    apikey.ciphertext[1] ^= 0x20;
    store.put_secret("Kixie_API_Auth", "Kixie_Principal", "", &apikey, "t").await.unwrap();
    engine.start().await.unwrap();
    assert_eq!(engine.health().await.status, "ok", "nothing has failed to open yet");

    let mut events = engine.subscribe();
    let automation = engine.automation_user().clone();
    let lead = engine
        .create_record("Lead", &fields(json!({"LastName": "Ng", "Phone": "+14155550100"})), &automation)
        .await;
    let run_id = lead.unwrap().runs[0].clone();
    assert_eq!(finished(&mut events, &run_id).await.status, RunStatus::Failed);
    let run = engine.run(&run_id).await.unwrap();
    let fault = run.fault.clone().unwrap();
    assert!(fault.contains("Kixie_API_Auth/Kixie_Principal/apikey"), "{fault}");
    assert!(fault.contains("herald credential set Kixie_API_Auth Kixie_Principal apikey"), "{fault}");
    assert!(fault.contains(&format!("herald runs retry {run_id}")), "{fault}");
    assert!(!fault.contains("sandbox-apikey") && !fault.contains("sandbox-business"), "{fault}");
    // Not the provider's refusal: no fault Task, nothing sent.
    assert!(engine.store().records_of("Task", 10).await.unwrap().is_empty(), "{:?}", run.state["trace"]);
    assert!(sandbox.requests().is_empty());
    let health = engine.health().await;
    assert_eq!(health.status, "degraded");
    assert_eq!((health.vault.unreadable_secrets, health.vault.failed_runs), (1, 1));

    // Setting it again heals the vault, and the retried run texts the lead.
    engine.set_secret("Kixie_API_Auth", "Kixie_Principal", "apikey", b"sandbox-apikey", None).await.unwrap();
    assert_eq!(engine.health().await.status, "ok");
    engine.retry_run(&run_id, None).await.unwrap();
    assert_eq!(finished(&mut events, &run_id).await.status, RunStatus::Finished);
    assert_eq!(sandbox.requests().len(), 1);
}

/// A provider that answers 400 and echoes what it was sent: the `Authorization` header as it came,
/// and the body's `token` re-encoded as JSON (so a `"` in it comes back escaped).
/// Also returns how many requests reached it.
async fn echoing_provider() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&reached);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let (head, body) = loop {
                    let read = socket.read(&mut buffer).await.unwrap();
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length || read == 0 {
                            break (head.to_string(), body.to_string());
                        }
                    }
                };
                let authorization = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: "))
                    })
                    .unwrap_or_default()
                    .to_string();
                let sent: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let echo =
                    json!({"error": "bad request", "authorization": authorization, "token": sent["token"]})
                        .to_string();
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{echo}",
                    echo.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, reached)
}

#[tokio::test]
async fn a_provider_echoing_the_basic_header_or_a_json_escaped_secret_gets_both_masked_in_the_fault_the_trace_and_the_task()
 {
    let (provider, _) = echoing_provider().await;
    let files: Vec<(PathBuf, String)> = [
        ("herald.toml", "[automation]\npermission_sets = [\"Api\"]\n".to_string()),
        ("objects/Lead.yaml", "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n".into()),
        ("objects/Task.yaml", "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, length: 2000, required: true}\n".into()),
        (
            "credentials/Auth.yaml",
            "kind: external-credential\nprotocol: basic\nprincipals:\n  - name: Main\n    parameters: [username, password, token]\n".into(),
        ),
        (
            "credentials/Api.yaml",
            format!("kind: named-credential\nurl: {provider}\nexternal_credential: Auth\ngenerate_authorization_header: true\nallow_formulas_in_body: true\n"),
        ),
        ("permissions/Api.yaml", "kind: permission-set\nexternal_credential_principal_access: [Auth-Main]\n".into()),
        (
            "services/Messages.yaml",
            "kind: http-callout\nnamed_credential: Api\nactions:\n  Send:\n    method: POST\n    path: /v1/messages\n    sample_request: {to: s, token: s}\n".into(),
        ),
        (
            "flows/F.yaml",
            "trigger: {object: Lead, on: create}\nstart: send\nelements:\n  send:\n    action: Messages.Send\n    inputs: {to: \"{!$Record.Phone}\", token: \"{!$Credential.Auth.token}\"}\n    fault: log\n  log:\n    create: Task\n    fields: {Subject: \"{!$Flow.FaultMessage}\"}\n".into(),
        ),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let engine = Engine::open(Arc::new(project), &options_in(dir.path())).await.unwrap();
    let token = r#"tok"en-4242"#;
    for (parameter, value) in [("username", "api-user"), ("password", "hunter2-pass"), ("token", token)] {
        engine.set_secret("Auth", "Main", parameter, value.as_bytes(), None).await.unwrap();
    }
    engine.start().await.unwrap();
    let mut events = engine.subscribe();
    let actor = engine.automation_user().clone();
    let lead = engine
        .create_record("Lead", &fields(json!({"LastName": "L", "Phone": "+14155550100"})), &actor)
        .await
        .unwrap();
    assert_eq!(finished(&mut events, &lead.runs[0]).await.status, RunStatus::Finished);
    let run = engine.run(&lead.runs[0]).await.unwrap();
    let tasks = engine.store().records_of("Task", 10).await.unwrap();
    assert_eq!(tasks.len(), 1, "the fault path logged the refusal");
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("api-user:hunter2-pass")
    };
    let escaped = r#"tok\"en-4242"#;
    let fault = run.fault.clone().unwrap_or_default();
    for (place, text) in [
        ("the trace", run.state.to_string()),
        ("the task", serde_json::to_string(&tasks[0].data).unwrap()),
        ("the fault", fault),
    ] {
        for secret in [basic.as_str(), escaped, token, "hunter2-pass"] {
            assert!(!text.contains(secret), "{place} shows {secret}: {text}");
        }
    }
    let subject = tasks[0].data["Subject"].as_str().unwrap();
    assert!(subject.contains("\"authorization\":\"••••••\""), "the echo was there, masked: {subject}");
    assert!(subject.contains("\"token\":\"••••••\""), "{subject}");
}

#[tokio::test]
async fn paths_that_decode_to_dot_segments_or_hold_control_characters_never_leave() {
    let (provider, reached) = echoing_provider().await;
    let paths = [r"/.%2e/steal", r"/a/.%2e/.%2e/steal", r"/a/%2e./steal", r"/a/.\t./steal", r"/a/\t/x"];
    let mut files: Vec<(PathBuf, String)> = vec![
        ("herald.toml".into(), "[automation]\npermission_sets = [\"Api\"]\n".into()),
        ("objects/Lead.yaml".into(), "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n".into()),
        ("credentials/Auth.yaml".into(), "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Main\n    parameters: [key]\n".into()),
        ("credentials/Api.yaml".into(), format!("kind: named-credential\nurl: {provider}/base\nexternal_credential: Auth\n")),
        ("permissions/Api.yaml".into(), "kind: permission-set\nexternal_credential_principal_access: [Auth-Main]\n".into()),
    ];
    let mut service = String::from("kind: http-callout\nnamed_credential: Api\nactions:\n");
    for (i, path) in paths.iter().enumerate() {
        service.push_str(&format!(
            "  Steal{i}:\n    method: POST\n    path: \"{path}\"\n    sample_request: {{to: s}}\n"
        ));
        files.push((
            format!("flows/F{i}.yaml").into(),
            format!("trigger: {{object: Lead, on: create}}\nstart: send\nelements:\n  send:\n    action: Svc.Steal{i}\n    inputs: {{to: x}}\n"),
        ));
    }
    files.push(("services/Svc.yaml".into(), service));
    let dir = tempfile::tempdir().unwrap();
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let engine = Engine::open(Arc::new(project), &options_in(dir.path())).await.unwrap();
    engine.set_secret("Auth", "Main", "key", b"k", None).await.unwrap();
    engine.start().await.unwrap();
    let mut events = engine.subscribe();
    let actor = engine.automation_user().clone();
    let lead = engine.create_record("Lead", &fields(json!({"LastName": "L"})), &actor).await.unwrap();
    assert_eq!(lead.runs.len(), paths.len());
    let mut ended = std::collections::HashSet::new();
    while ended.len() < lead.runs.len() {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv()).await.unwrap().unwrap();
        if lead.runs.contains(&event.run_id) {
            assert_eq!(event.status, RunStatus::Failed);
            ended.insert(event.run_id);
        }
    }
    for run_id in &lead.runs {
        let fault = engine.run(run_id).await.unwrap().fault.unwrap();
        assert!(
            fault.contains("is refused, since it could leave the named credential's base URL"),
            "{fault}"
        );
    }
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0, "no request left");
}

#[tokio::test]
async fn the_async_path_is_its_own_run_and_a_scheduled_path_already_due_runs_at_once() {
    // Two Create Records paths, so nothing calls out: the async path logs one Task, and a path due
    // 0 minutes after the trigger (already due when written) logs another after its re-check.
    let flow = r#"
trigger: {object: Lead, on: create}
start: now
async_path: {start: apart}
scheduled_paths:
  At_Once: {offset: {minutes: 0}, start: later}
elements:
  now:
    create: Task
    fields: {Subject: "immediate", WhoId: "{!$Record.Id}"}
  apart:
    create: Task
    fields: {Subject: "asynchronous", WhoId: "{!$Record.Id}"}
  later:
    create: Task
    fields: {Subject: "scheduled {!$Record.Status}", WhoId: "{!$Record.Id}"}
"#;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "", flow, None).await;
    engine.start().await.unwrap();
    let user = engine.automation_user().clone();
    let lead = engine.create_record("Lead", &fields(json!({"LastName": "Ng"})), &user).await.unwrap();
    assert_eq!(lead.runs.len(), 2, "the immediate and the asynchronous path");
    assert_eq!(lead.scheduled.len(), 1);
    let mut subjects = Vec::new();
    for run_id in lead.runs.iter().chain(&lead.scheduled) {
        // Polled, not awaited as events: the three runs end in any order.
        let run = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let run = engine.run(run_id).await.unwrap();
                if run.status.is_terminal() {
                    return run;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the run ends");
        assert_eq!(run.status, RunStatus::Finished, "{run_id}: {:?}", run.fault);
        let entry = run.state["trace"].as_array().unwrap().last().unwrap().clone();
        let task = engine.get_record("Task", entry["outputs"]["Id"].as_str().unwrap()).await.unwrap();
        subjects.push(task.data["Subject"].as_str().unwrap().to_string());
    }
    assert_eq!(subjects, ["immediate", "asynchronous", "scheduled Open"]);
    let scheduled = engine.run(&lead.scheduled[0]).await.unwrap();
    assert_eq!(scheduled.state["trace"][0]["kind"], "Scheduled Path");
}
