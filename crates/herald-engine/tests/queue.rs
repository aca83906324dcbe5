//! No committed run depends on a restart: a caller that goes away after the commit still gets its
//! runs executed, and a `ready` run that no job holds is found by the sweep, run, and counted.

use herald_engine::{Engine, EngineOptions};
use herald_sandbox::{Sandbox, SandboxOptions};
use herald_store::RunStatus;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine's options for a test's database: a SQLite file in `dir`, or a scratch PostgreSQL
/// database with `HERALD_TEST_DATABASE=postgresql` (`scripts/test` runs this suite both ways).
fn options_in(dir: &std::path::Path) -> EngineOptions {
    let mut options = EngineOptions::for_database(herald_store::postgres::testing::database_in(dir));
    options.key_file = dir.join("h.key");
    options
}

fn files() -> Vec<(PathBuf, String)> {
    [
        ("herald.toml", "[runtime]\nworkers = 4\n[automation]\npermission_sets = [\"Senders\"]\n"),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n",
        ),
        (
            "credentials/Kixie_API_Auth.yaml",
            "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Kixie_Principal\n    parameters: [businessid, apikey]\n",
        ),
        (
            "credentials/Kixie_Endpoint.yaml",
            "kind: named-credential\nurl: https://apig.kixie.com\nexternal_credential: Kixie_API_Auth\nallow_formulas_in_body: true\nrate_limit: {per_second: 100000, per_day: 100000000}\n",
        ),
        (
            "permissions/Senders.yaml",
            "kind: permission-set\nexternal_credential_principal_access: [Kixie_API_Auth-Kixie_Principal]\n",
        ),
        (
            "services/KixieService.yaml",
            "kind: http-callout\nnamed_credential: Kixie_Endpoint\nactions:\n  Send_SMS:\n    method: POST\n    path: /app/event\n    sample_request: {businessid: s, apikey: s, target: s, eventname: s, message: s}\n",
        ),
        (
            "flows/Welcome.yaml",
            r#"
trigger: {object: Lead, on: create, conditions: [{field: Phone, operator: IsBlank, right: false}]}
run_as: automation
start: send
elements:
  send:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!$Record.Phone}"
      eventname: sms
      message: "Hi {!$Record.LastName}"
"#,
        ),
    ]
    .into_iter()
    .map(|(path, text)| (PathBuf::from(path), text.to_string()))
    .collect()
}

async fn sandbox() -> (Sandbox, String) {
    let sandbox = Sandbox::new(SandboxOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(sandbox.clone().serve(listener));
    (sandbox, address)
}

async fn open(dir: &Path, sandbox: &str, sweep_every: Duration) -> Engine {
    let project = herald_flow::load_files("/t".into(), files()).unwrap_or_else(|d| panic!("{d}"));
    let mut options = options_in(dir);
    options.sandbox = Some(format!("http://{sandbox}"));
    options.workers = 4;
    options.sweep_every = sweep_every;
    Engine::open(Arc::new(project), &options).await.unwrap()
}

async fn set_credentials(engine: &Engine) {
    for (parameter, value) in [("businessid", "sandbox-business"), ("apikey", "sandbox-apikey")] {
        engine
            .set_secret("Kixie_API_Auth", "Kixie_Principal", parameter, value.as_bytes(), None)
            .await
            .unwrap();
    }
}

fn lead(n: usize) -> Map<String, Value> {
    json!({"LastName": format!("Lead {n}"), "Phone": format!("+1415556{:04}", n % 10_000)})
        .as_object()
        .unwrap()
        .clone()
}

/// Waits until the database holds `expected` runs and none of them is `ready` or `running`; returns
/// the faults of those that did not finish. Gives up (and fails the test) only after a long bound: an
/// outcome, not a timing.
async fn all_runs_ended(engine: &Engine, expected: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let runs = engine.list_runs(&[], 100_000).await.unwrap();
        let open = runs.iter().filter(|r| matches!(r.status, RunStatus::Ready | RunStatus::Running)).count();
        if runs.len() == expected && open == 0 {
            return runs
                .iter()
                .filter(|r| r.status != RunStatus::Finished)
                .map(|r| format!("{} {:?}: {}", r.id, r.status, r.fault.as_deref().unwrap_or("")))
                .collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {} runs exist and {open} are still ready or running while the engine runs",
            runs.len(),
            expected
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_whose_callers_go_away_right_after_submitting_are_still_texted() {
    let (sandbox, address) = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    // The sweep is kept out of the way: these runs must be queued by their own write.
    let engine = open(dir.path(), &address, Duration::from_secs(3600)).await;
    set_credentials(&engine).await;
    engine.start().await.unwrap();
    let user = engine.automation_user().clone();
    // In waves smaller than the admission places (4 workers x 8), so each write is admitted at once.
    let (waves, per_wave) = (10, 20);
    for wave in 0..waves {
        for n in 0..per_wave {
            // Polled once (validated, admitted, handed to the writer), then dropped, as axum drops the
            // handler of a client that disconnects.
            let fields = lead(wave * per_wave + n);
            let write = engine.create_record("Lead", &fields, &user);
            let _ = tokio::time::timeout(Duration::ZERO, write).await;
        }
        let unfinished = all_runs_ended(&engine, (wave + 1) * per_wave).await;
        assert!(unfinished.is_empty(), "{unfinished:?}");
    }
    let leads = waves * per_wave;
    let texted = sandbox.requests().iter().filter(|r| r.host == "apig.kixie.com").count();
    assert_eq!(texted, leads, "every committed lead is texted exactly once");
    assert_eq!(engine.health().await.sweep.defects, 0, "no run needed the sweep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_run_that_no_job_holds_is_swept_run_and_counted_as_a_defect() {
    let (sandbox, address) = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &address, Duration::from_millis(100)).await;
    set_credentials(&engine).await;
    engine.start().await.unwrap();
    // Another engine on the same database commits a lead but never runs it (it is never started):
    // to the running engine that run is committed and held by no job.
    let forgetful = open(dir.path(), &address, Duration::from_secs(3600)).await;
    let write =
        forgetful.create_record("Lead", &lead(1), &forgetful.automation_user().clone()).await.unwrap();
    assert_eq!(write.runs.len(), 1);
    let unfinished = all_runs_ended(&engine, 1).await;
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert_eq!(engine.run(&write.runs[0]).await.unwrap().status, RunStatus::Finished);
    assert_eq!(sandbox.requests().iter().filter(|r| r.host == "apig.kixie.com").count(), 1);
    let health = engine.health().await;
    let sweep = health.sweep;
    if health.node.shared {
        // On a database nodes share, the run belongs to the other node: it is taken over as that
        // node's orphan (it was never seen running), not counted as this node's defect.
        assert_eq!(sweep.defects + sweep.handed_over, 0, "{sweep:?}");
    } else {
        assert_eq!(sweep.defects + sweep.handed_over, 1, "{sweep:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_leaves_runs_that_are_queued_or_parked_alone_under_load() {
    let (sandbox, address) = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    // A sweep every 50 ms that takes runs untouched for 100 ms, while hundreds wait in the queue.
    let engine = open(dir.path(), &address, Duration::from_millis(50)).await;
    set_credentials(&engine).await;
    engine.start().await.unwrap();
    let user = engine.automation_user().clone();
    let leads = 600;
    let writes: Vec<_> = (0..leads)
        .map(|n| {
            let (engine, user) = (engine.clone(), user.clone());
            tokio::spawn(async move { engine.create_record("Lead", &lead(n), &user).await.unwrap() })
        })
        .collect();
    for write in writes {
        write.await.unwrap();
    }
    let unfinished = all_runs_ended(&engine, leads).await;
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert_eq!(
        sandbox.requests().iter().filter(|r| r.host == "apig.kixie.com").count(),
        leads,
        "no run was executed twice"
    );
    let sweep = engine.health().await.sweep;
    assert_eq!((sweep.defects, sweep.handed_over), (0, 0), "{sweep:?}");
}
