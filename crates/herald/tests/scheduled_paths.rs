//! The Kixie example's scheduled follow-up end to end, with `herald sandbox` and `herald serve` as
//! processes: the follow-up is written with the Lead, survives a kill -9 of the server as a `waiting`
//! run (as does the Lead's mark, set by Update Records after the welcome), and, woken (nobody waits an hour in a test), sends exactly one follow-up SMS; a Lead that no
//! longer meets the entry condition when its path comes due gets none.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const BUSINESSID: &str = "biz-e2e-4821";
const APIKEY: &str = "key-e2e-9f8e7d6c5b4a";

fn kixie() -> Setup {
    Harness::example("kixie-welcome-sms")
        .credential(["Kixie_API_Auth", "Kixie_Principal", "businessid"], BUSINESSID)
        .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], APIKEY)
        .user("webform", &["Herald_API_User", "Kixie_Integration_User"])
        .sandbox_env("HERALD_SANDBOX_KIXIE_BUSINESSID", BUSINESSID)
        .sandbox_env("HERALD_SANDBOX_KIXIE_APIKEY", APIKEY)
}

/// The messages the sandbox's Kixie received for `phone`, oldest first.
async fn texts_to(h: &Harness, phone: &str) -> Vec<String> {
    h.sandbox_requests()
        .await
        .iter()
        .filter(|r| r["host"] == "apig.kixie.com" && r["body"]["target"] == phone)
        .map(|r| r["body"]["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `POST /api/v1/runs/{id}/wake` with an admin's token (scope `manage_flows`); returns the status.
async fn wake(h: &Harness, admin: &str, run_id: &str) -> (u16, Value) {
    let response =
        authorized(admin).post(h.url(&format!("/api/v1/runs/{run_id}/wake"))).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The run once it has ended in any end state, `skipped` included.
async fn ended(h: &Harness, run_id: &str) -> Value {
    h.eventually(&format!("run {run_id} to end"), Duration::from_secs(30), || async {
        let run = h.get(&format!("/api/v1/runs/{run_id}")).await;
        matches!(run["status"].as_str(), Some("finished" | "failed" | "unknown" | "skipped")).then_some(run)
    })
    .await
}

#[tokio::test]
async fn the_follow_up_survives_a_kill_as_a_waiting_run_and_is_sent_exactly_once_when_woken() {
    let h = kixie().start();
    let phone = "+14155550142";
    let created = h.post_lead(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": phone})).await;
    let scheduled =
        created["scheduledRuns"].as_array().unwrap_or_else(|| panic!("no scheduled path: {created}"));
    assert_eq!(scheduled.len(), 1, "{created}");
    let follow_up = scheduled[0].as_str().unwrap().to_string();
    let welcome = h.finished_run(created["runs"][0].as_str().unwrap()).await;
    assert_eq!(welcome["status"], "finished", "{welcome}");
    let welcome_text = "Hi Ada, thanks for reaching out! Reply STOP to opt out.";
    assert_eq!(texts_to(&h, phone).await, [welcome_text]);
    let lead_path = format!("/api/v1/records/Lead/{}", created["id"].as_str().unwrap());
    assert_eq!(h.get(&lead_path).await["Welcome_SMS_Sent__c"], true, "Mark_Lead_Texted ran after the send");

    // kill -9 after the commit: the follow-up was written with the Lead, so the restart finds it.
    assert!(h.kill_server());
    h.start_server();
    assert_eq!(h.get(&lead_path).await["Welcome_SMS_Sent__c"], true, "the mark survived the kill");
    let waiting = h.get("/api/v1/runs?status=waiting").await;
    let run = waiting["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == follow_up.as_str())
        .unwrap_or_else(|| panic!("the follow-up is not waiting after the restart: {waiting}"))
        .clone();
    assert_eq!(run["flow"], "Lead_Welcome_SMS");
    assert_eq!(run["recordId"], created["id"]);
    let due = run["nextAttemptAt"].as_str().unwrap();
    assert!(due > run["createdAt"].as_str().unwrap(), "due after it was written: {run}");
    assert!(
        run["fault"].as_str().unwrap().starts_with("scheduled path Follow_Up_After_1_Hour is due at"),
        "{run}"
    );
    // `herald runs list` shows it too, with when it is due.
    let listed = h.cli_ok(&["runs", "list", "--status", "waiting"]);
    assert!(listed.contains(&follow_up), "{listed}");

    // Waking needs manage_flows: the web form's token is refused.
    let refused = h.api().post(h.url(&format!("/api/v1/runs/{follow_up}/wake"))).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let admin = h.add_user("admin", &["Herald_Admin"]);
    let (status, answer) = wake(&h, &admin, &follow_up).await;
    assert_eq!(status, 202, "{answer}");
    let run = ended(&h, &follow_up).await;
    assert_eq!(run["status"], "finished", "{run}");
    let trace = run["trace"].as_array().unwrap();
    assert_eq!(trace[0]["kind"], "Scheduled Path");
    assert_eq!(trace[0]["outputs"]["entryConditionHolds"], true);
    assert!(
        trace.iter().any(|t| t["element"] == "Send_Follow_Up_SMS" && t["outputs"]["responseCode"] == 200)
    );

    let texts = texts_to(&h, phone).await;
    assert_eq!(texts.len(), 2, "one welcome and one follow-up: {texts:?}");
    assert_eq!(texts[0], welcome_text, "the welcome was not sent twice");
    assert!(texts[1].starts_with("Hi Ada, just checking in"), "{texts:?}");

    // A run that is no longer waiting cannot be woken again.
    let (status, answer) = wake(&h, &admin, &follow_up).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer[0]["errorCode"], "INVALID_STATUS", "{answer}");
}

#[tokio::test]
async fn a_lead_whose_phone_was_removed_before_the_follow_up_is_skipped_and_not_texted_again() {
    let h = kixie().start();
    let phone = "+14155550143";
    let created = h.post_lead(json!({"FirstName": "Grace", "LastName": "Hopper", "Phone": phone})).await;
    let id = created["id"].as_str().unwrap();
    let follow_up = created["scheduledRuns"][0].as_str().unwrap().to_string();
    h.finished_run(created["runs"][0].as_str().unwrap()).await;
    let patched =
        h.api().patch(h.url(&format!("/api/v1/records/Lead/{id}"))).json(&json!({"Phone": ""})).send();
    assert_eq!(patched.await.unwrap().status(), 200);

    // `herald runs wake` works on the database; the running server's sweep takes the run up.
    let woke = h.cli_ok(&["runs", "wake", &follow_up]);
    assert!(woke.contains("is due now"), "{woke}");
    let run = ended(&h, &follow_up).await;
    assert_eq!(run["status"], "skipped", "{run}");
    assert_eq!(run["fault"], "skipped: the record no longer meets the flow's entry condition", "{run}");
    assert_eq!(run["trace"].as_array().unwrap().len(), 1, "no element ran: {run}");
    assert_eq!(texts_to(&h, phone).await.len(), 1, "only the welcome");
}

#[tokio::test]
async fn flow_debug_prints_a_wait_and_goes_on_at_once_instead_of_sleeping() {
    let h = Harness::example("8x8-sms")
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            "Bearer sandbox-8x8-key",
        )
        .project_edit(|p| {
            p.replace(
                "flows/Send_SMS_8x8.yaml",
                "    next: Send_SMS\n",
                "    next: Pause\n  Pause:\n    wait: {minutes: 60}\n    next: Send_SMS\n",
            )
        })
        .no_server()
        .start();
    let (code, stdout, stderr) = h.flow_debug_inputs("Send_SMS_8x8", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("2. Pause (Wait: Pause)"), "{stdout}");
    assert!(stdout.contains("waited = false"), "{stdout}");
    assert!(stdout.contains("herald flow debug does not wait: it went on at once"), "{stdout}");
    assert!(stdout.contains("3. Send SMS (Action: Send_SMS)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    assert_eq!(h.sandbox_requests().await.len(), 1, "the send after the Wait went out");
}

#[test]
fn validate_lists_the_kixie_examples_scheduled_path_with_its_time() {
    let project = example("kixie-welcome-sms");
    let (code, stdout, stderr) = herald(&["flow", "validate", project.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("    scheduled path Follow_Up_After_1_Hour: 1 hour after the trigger"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_path_counted_from_a_field_moves_when_the_field_changes_and_is_skipped_when_it_is_emptied() {
    let h = kixie()
        .project_edit(|p| {
            p.append("objects/Lead.yaml", "  Callback: {type: datetime}\n");
            p.replace(
                "flows/Lead_Welcome_SMS.yaml",
                "scheduled_paths:\n",
                "scheduled_paths:\n  Before_Callback:\n    field: Callback\n    offset: {minutes: 15}\n    direction: before\n    start: Send_Follow_Up_SMS\n",
            );
        })
        .start();
    let created = h
        .post_lead(json!({"FirstName": "Alan", "LastName": "Turing", "Phone": "+14155550144",
            "Callback": "2030-01-01T10:00:00Z"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let scheduled = created["scheduledRuns"].as_array().unwrap();
    assert_eq!(scheduled.len(), 2, "{created}");
    let before_callback = h.get(&format!("/api/v1/records/Lead/{id}/runs")).await["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fault"].as_str().is_some_and(|f| f.contains("Before_Callback")))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run_path = format!("/api/v1/runs/{before_callback}");
    assert_eq!(h.get(&run_path).await["nextAttemptAt"], "2030-01-01T09:45:00.000000Z");

    let lead = h.url(&format!("/api/v1/records/Lead/{id}"));
    let moved = h.api().patch(&lead).json(&json!({"Callback": "2030-01-02T10:00:00Z"})).send().await.unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(
        h.get(&run_path).await["nextAttemptAt"],
        "2030-01-02T09:45:00.000000Z",
        "moved with its field, in the update's write"
    );

    let emptied = h.api().patch(&lead).json(&json!({"Callback": null})).send().await.unwrap();
    assert_eq!(emptied.status(), 200);
    let run = ended(&h, &before_callback).await;
    assert_eq!(run["status"], "skipped", "{run}");
    assert_eq!(run["fault"], "skipped: its time source Callback is now empty", "{run}");
}
