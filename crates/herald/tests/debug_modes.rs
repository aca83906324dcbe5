//! `herald flow debug` as Salesforce's Debug: on an existing record by id, with the prior values of an
//! update, and in rollback mode, where nothing the run writes is kept while its callouts still reach
//! the sandbox.

mod common;

use common::*;
use serde_json::json;

/// A flow on Lead update that texts when the Lead becomes "Working - Contacted", and only then.
const WORKING_FLOW: &str = r#"kind: flow
label: Lead Working SMS
status: active
trigger:
  object: Lead
  on: update
  only_when_updated_to_meet: true
  conditions:
    - field: Status
      operator: EqualTo
      right: Working - Contacted
start: Send_SMS
elements:
  Send_SMS:
    label: Send SMS
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!$Record.Phone}"
      eventname: sms
      message: "Hi {!$Record.FirstName}, we are on it."
"#;

fn debug(h: &Harness, flow: &str, extra: &[&str]) -> (i32, String, String) {
    let (project, db) = (h.project().to_str().unwrap(), h.db().to_str().unwrap());
    let mut args = vec!["flow", "debug", project, flow, "--sandbox", h.sandbox_url(), "--db", db];
    args.extend(extra);
    let (code, stdout, stderr) = herald(&args, "");
    h.keep("flow debug", &format!("{stdout}{stderr}"));
    (code, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_by_record_id_reads_the_stored_lead_and_prior_values_decide_only_when_updated() {
    let h = tokio::task::spawn_blocking(|| {
        Harness::example("kixie-welcome-sms")
            .sandbox_account()
            .project_edit(|copy| {
                std::fs::write(copy.file("flows/Lead_Working_SMS.yaml"), WORKING_FLOW).unwrap()
            })
            .start()
    })
    .await
    .unwrap();
    let created = h
        .post_lead(json!({"FirstName": "Grace", "LastName": "Hopper", "Phone": "+14155550123",
                          "Status": "Working - Contacted"}))
        .await;
    let id = created["id"].as_str().unwrap().to_string();

    // The Lead was already Working before: an update to Working does not meet the condition anew.
    let (code, stdout, stderr) = debug(
        &h,
        "Lead_Working_SMS",
        &["--record-id", &id, "--prior", r#"{"Status":"Working - Contacted"}"#],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("does not meet the entry condition"), "{stdout}");

    // From Open to Working it does, and the message reads the stored Lead's own name.
    let (code, stdout, stderr) = debug(
        &h,
        "Lead_Working_SMS",
        &["--record-id", &id, "--prior", r#"{"Status":"Open - Not Contacted"}"#],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("message = Hi Grace, we are on it."), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");

    // Changing a field on top of the stored record makes the stored values the prior ones.
    let (code, stdout, _) =
        debug(&h, "Lead_Working_SMS", &["--record-id", &id, "--record", r#"{"FirstName":"Amazing Grace"}"#]);
    assert_eq!(code, 0);
    assert!(stdout.contains("does not meet the entry condition"), "Status did not change: {stdout}");

    let (code, _, stderr) = debug(&h, "Lead_Working_SMS", &["--record-id", "00Qnothere"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no Lead record with id 00Qnothere"), "{stderr}");

    let (code, _, stderr) = debug(&h, "Lead_Welcome_SMS", &["--record-id", &id, "--prior", "{}"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("runs when a Lead is created"), "{stderr}");

    let (code, _, stderr) =
        debug(&h, "Lead_Working_SMS", &["--record-id", &id, "--prior", r#"{"Status":"Sleeping"}"#]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--prior") && stderr.contains("Sleeping"), "{stderr}");
}

/// What the database holds that a debug run could have written.
async fn written(h: &Harness) -> (usize, usize, usize) {
    let store = herald_store::Store::open(h.db()).await.unwrap();
    let tasks = store.records_of("Task", 100).await.unwrap().len();
    let runs = store.recent_runs(&[], 100).await.unwrap().len();
    let filter = herald_store::MessageFilter { limit: 100, ..Default::default() };
    let messages = store.messages(&filter).await.unwrap().len();
    store.close().await;
    (tasks, runs, messages)
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_mode_keeps_no_task_run_or_message_yet_the_request_reaches_the_sandbox() {
    // A wrong apikey: Kixie answers, the send faults, and the fault path creates a Task.
    let h = tokio::task::spawn_blocking(|| {
        Harness::example("kixie-welcome-sms")
            .sandbox_account()
            .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], "not-the-key")
            .no_server()
            .start()
    })
    .await
    .unwrap();
    let record = r#"{"FirstName":"Ada","LastName":"Lovelace","Phone":"+14155550100"}"#;
    let (code, stdout, stderr) = debug(&h, "Lead_Welcome_SMS", &["--record", record, "--rollback"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Rollback mode"), "{stdout}");
    assert!(stdout.contains("(Create Records: Log_SMS_Failure)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    assert_eq!(h.sandbox_requests().await.len(), 1, "the callout was made");
    assert_eq!(written(&h).await, (0, 0, 0), "rollback mode kept something");

    // The same debug without rollback keeps the Task and the message: what rollback discarded.
    let (code, stdout, stderr) = debug(&h, "Lead_Welcome_SMS", &["--record", record]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(h.sandbox_requests().await.len(), 2);
    let (tasks, runs, messages) = written(&h).await;
    assert_eq!((tasks, runs), (1, 0), "a debug run itself is never stored");
    assert!(messages >= 1, "the ledger has the message of the kept run");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_mode_on_a_postgresql_database_sees_its_records_and_keeps_nothing() {
    let Some(scratch) = herald_store::postgres::testing::scratch_database() else { return };
    let url = scratch.url.clone();
    let h = tokio::task::spawn_blocking(move || {
        Harness::example("kixie-welcome-sms")
            .sandbox_account()
            .database(&url)
            .project_edit(|copy| {
                std::fs::write(copy.file("flows/Lead_Working_SMS.yaml"), WORKING_FLOW).unwrap()
            })
            .no_server()
            .start()
    })
    .await
    .unwrap();
    // A Lead stored in the shared database only: rollback mode must find it in its copy.
    let store = herald_store::Store::open(h.db()).await.unwrap();
    let lead = json!({"FirstName": "Grace", "LastName": "Hopper", "Phone": "+14155550123",
                      "Status": "Working - Contacted"});
    store
        .write(move |tx| {
            tx.insert_record("Lead", "00Qstored", lead.as_object().unwrap(), "2026-11-21T10:00:00.000000Z")
        })
        .await
        .unwrap();
    store.close().await;

    let (code, stdout, stderr) = debug(
        &h,
        "Lead_Working_SMS",
        &["--record-id", "00Qstored", "--prior", r#"{"Status":"Open - Not Contacted"}"#, "--rollback"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Rollback mode"), "{stdout}");
    assert!(stdout.contains("message = Hi Grace, we are on it."), "the stored Lead was read: {stdout}");
    assert_eq!(h.sandbox_requests().await.len(), 1, "the callout was made");
    assert_eq!(written(&h).await, (0, 0, 0), "rollback mode kept something in PostgreSQL");
}
