//! examples/vonage-sms end to end: `herald sandbox` emulating Vonage's SMS API and `herald serve` as
//! processes. The External Service built from Vonage's own OpenAPI file sends a form body carrying the
//! vault's api_key and api_secret; Vonage's delivery receipts, posted to herald's webhook with the
//! endpoint secret in the URL, move the message ledger to `delivered`; a status 4 inside Vonage's HTTP
//! 200 takes the fault path as a credential problem; a STOP reply stops the next text before any
//! callout.

mod common;

use common::*;
use herald_providers::vonage::emulator::{DEFAULT_API_KEY, DEFAULT_API_SECRET};
use serde_json::{Value, json};
use std::time::Duration;

/// The sender the example's flow texts from, as Vonage writes numbers.
const OUR_NUMBER: &str = "14155550123";
const WAIT: Duration = Duration::from_secs(20);
const HOST: &str = "rest.nexmo.com";

/// The example with the sandbox's Vonage account in the vault, its webhook's secret created and the
/// account's webhook (receipts and inbound SMS) pointed at herald with it, and receipts at once.
async fn start(setup: Setup) -> Harness {
    let h = setup.server_env("HERALD_LOG", "trace").start();
    let secret = h.cli_ok(&["webhook", "secret", "Vonage_Events"]);
    // Vonage sends no header of its own: the secret rides in the URL it is configured with.
    let url = h.url(&format!("/webhooks/Vonage_Events?secret={}", secret.trim()));
    h.sandbox_put(&format!("/_sandbox/webhooks/{HOST}"), &json!({"url": url, "headers": {}})).await;
    let receipts = json!({"delay_ms": 0, "time_scale": 0.001, "statuses": ["sent", "delivered"]});
    h.sandbox_put("/_sandbox/receipts", &receipts).await;
    h
}

async fn received(h: &Harness) -> Vec<Value> {
    serde_json::from_value(h.sandbox_get(&format!("/_sandbox/requests?host={HOST}")).await).unwrap()
}

async fn messages_of(h: &Harness, run_id: &str) -> Vec<Value> {
    let list = h.get(&format!("/api/v1/messages?runId={run_id}")).await;
    list["messages"].as_array().cloned().unwrap_or_default()
}

/// The Task a run's fault path created.
async fn task_of(h: &Harness, run: &Value) -> Value {
    let id = run["trace"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|entry| entry["outputs"]["Id"].as_str())
        .unwrap_or_else(|| panic!("no Task in {run}"))
        .to_string();
    h.get(&format!("/api/v1/records/Task/{id}")).await
}

#[test]
fn the_example_validates_and_vonage_s_spec_imports_with_a_form_body() {
    let project = example("vonage-sms");
    let (code, stdout, stderr) = herald(&["flow", "validate", project.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("flow Lead_Welcome_SMS_Vonage on Lead Create: Send_SMS → Log_SMS_Failure"),
        "{stdout}"
    );
    let (code, stdout, stderr) = herald(&["service", "show", project.to_str().unwrap(), "VonageSMS"], "");
    assert_eq!(code, 0, "{stderr}");
    for expected in ["action VonageSMS.send-an-sms: POST /{format}", "(application/x-www-form-urlencoded)"] {
        assert!(stdout.contains(expected), "{expected} missing from {stdout}");
    }
}

#[tokio::test]
async fn a_debug_run_reaches_the_emulated_vonage_with_the_vault_s_key_and_secret_and_shows_neither() {
    let h = Harness::example("vonage-sms").sandbox_account().no_server().start();
    let record = r#"{"FirstName":"Ada","LastName":"Lovelace","Phone":"(415) 555-0100"}"#;
    let (code, stdout, stderr) = h.flow_debug("Lead_Welcome_SMS_Vonage", record);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("responseCode = 200"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    for secret in [DEFAULT_API_KEY, DEFAULT_API_SECRET] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "debug shows {secret}: {stdout}{stderr}"
        );
    }
    assert!(stdout.contains("api_secret = ••••••"), "the credential input is shown masked: {stdout}");

    // What Vonage received: a form body with the vault's values, the phone as Vonage writes it, and
    // herald's key as client-ref.
    let requests = received(&h).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!((request["method"].as_str(), request["path"].as_str()), (Some("POST"), Some("/sms/json")));
    let content_type = request["headers"]["content-type"].as_str().unwrap_or_default();
    assert!(content_type.starts_with("application/x-www-form-urlencoded"), "{request}");
    let body = &request["body"];
    assert_eq!(body["api_key"], DEFAULT_API_KEY);
    assert_eq!(body["api_secret"], DEFAULT_API_SECRET);
    assert_eq!(body["to"], "14155550100");
    assert_eq!(body["from"], OUR_NUMBER);
    assert_eq!(body["text"], "Hi Ada, thanks for reaching out! Reply STOP to opt out.");
    assert!(body["client-ref"].as_str().is_some_and(|r| r.starts_with("hrld-")), "{body}");
    assert_eq!(request["status"], 200);
}

#[tokio::test]
async fn a_lead_is_texted_through_vonage_and_its_receipts_deliver_it() {
    let h = start(Harness::example("vonage-sms").sandbox_account()).await;
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["trace"][0]["element"], "Send_SMS", "{run}");
    assert_eq!(run["trace"][0]["outputs"]["responseCode"], 200, "{run}");
    assert_eq!(run["trace"][0]["inputs"]["api_secret"], "••••••", "{run}");

    let answer: Value =
        serde_json::from_str(run["trace"][0]["outputs"]["responseBody"].as_str().unwrap()).unwrap();
    let message_id = answer["messages"][0]["message-id"].as_str().unwrap().to_string();
    let client_ref = answer["messages"][0]["client-ref"].as_str().unwrap().to_string();
    let run_id = run["id"].as_str().unwrap();
    let messages = messages_of(&h, run_id).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["provider"], "vonage-sms");
    assert_eq!(message["destination"], "+14155550100");
    assert_eq!(message["sender"], "+14155550123");
    assert_eq!(message["provider_message_id"], message_id.as_str());
    assert_eq!(message["client_message_id"], client_ref.as_str());

    // accepted (sent), then delivered: each a JSON post to the account webhook, each accepted.
    let delivered = h
        .eventually("the message delivered", WAIT, || async {
            let message = messages_of(&h, run_id).await.first()?.clone();
            (message["status"] == "delivered").then_some(message)
        })
        .await;
    let history: Vec<&str> =
        delivered["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert!(history.contains(&"sent") && history.contains(&"delivered"), "{history:?}");
    let attempts: Vec<Value> = h
        .eventually("two receipt attempts", WAIT, || async {
            let attempts = h.sandbox_get(&format!("/_sandbox/receipts?host={HOST}")).await;
            let attempts: Vec<Value> = serde_json::from_value(attempts).ok()?;
            (attempts.len() >= 2).then_some(attempts)
        })
        .await;
    for attempt in &attempts {
        assert_eq!(attempt["answered_status"], 200, "herald refused a genuine receipt: {attempt}");
    }

    h.assert_no_secret(&[DEFAULT_API_SECRET]);
}

#[tokio::test]
async fn a_form_receipt_that_names_only_the_client_ref_finds_its_message() {
    let h = start(Harness::example("vonage-sms").sandbox_account()).await;
    h.sandbox_put("/_sandbox/receipts", &json!({"statuses": []})).await;
    let run = h.lead_run(json!({"LastName": "Parts", "Phone": "+14155550102"})).await;
    let run_id = run["id"].as_str().unwrap();
    let message = messages_of(&h, run_id).await.remove(0);
    assert_eq!(message["status"], "queued", "{message}");

    // The receipt of a second part: another messageId, the same client-ref, posted as a form.
    let secret = h.cli_ok(&["webhook", "secret", "Vonage_Events"]);
    let url = h.url(&format!("/webhooks/Vonage_Events?secret={}", secret.trim()));
    let client_ref = message["client_message_id"].as_str().unwrap();
    let form = [
        ("msisdn", "14155550102"),
        ("to", OUR_NUMBER),
        ("messageId", "0B00000000000002"),
        ("status", "delivered"),
        ("err-code", "0"),
        ("price", "0.00750000"),
        ("client-ref", client_ref),
        ("message-timestamp", "2026-12-02 10:00:00"),
    ];
    let response = h.plain().post(&url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!((report["matched"].as_u64(), report["applied"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(messages_of(&h, run_id).await[0]["status"], "delivered");

    // Without the secret, nothing is believed.
    let forged = [("messageId", "0B00000000000002"), ("status", "failed"), ("client-ref", client_ref)];
    let response = h.plain().post(h.url("/webhooks/Vonage_Events")).form(&forged).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_status_4_answer_is_a_credential_fault_and_the_fault_path_logs_a_task() {
    let wrong = "not-the-vonage-secret";
    let setup = Harness::example("vonage-sms")
        .sandbox_account()
        .credential(["Vonage_Auth", "Vonage_Principal", "api_secret"], wrong);
    let h = start(setup).await;
    let run = h.lead_run(json!({"FirstName": "Kay", "LastName": "Wrong", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "the fault path completes: {run}");
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(
        fault.contains("VonageSMS.send-an-sms failed: HTTP 200 but Vonage refused the message"),
        "{fault}"
    );
    assert!(fault.contains("status 4 (Invalid Credentials): Bad Credentials"), "{fault}");
    assert!(fault.contains("herald credential set"), "the fix is named: {fault}");
    assert_eq!(run["trace"][1]["element"], "Log_SMS_Failure", "{run}");
    let task = task_of(&h, &run).await;
    assert!(task["Subject"].as_str().unwrap().contains("status 4 (Invalid Credentials)"), "{task}");

    let requests = received(&h).await;
    assert_eq!(requests.len(), 1, "a credential problem is not retried: {requests:?}");
    let messages = messages_of(&h, run["id"].as_str().unwrap()).await;
    assert_eq!(
        (messages[0]["status"].as_str(), messages[0]["error_code"].as_str()),
        (Some("failed"), Some("4"))
    );

    h.assert_no_secret(&[wrong, DEFAULT_API_SECRET]);
}

#[tokio::test]
async fn a_stop_reply_through_vonage_s_webhook_stops_the_next_text_before_any_callout() {
    let h = start(Harness::example("vonage-sms").sandbox_account()).await;
    let phone = "+14155550111";
    let stop = json!({"host": HOST, "from": phone, "to": format!("+{OUR_NUMBER}"), "text": "STOP"});
    let answer = h.sandbox_post("/_sandbox/inbound", &stop).await;
    assert_eq!(answer["answered"], 200, "herald took Vonage's inbound post: {answer}");
    assert_eq!(answer["posted"]["keyword"], "STOP", "{answer}");
    let consent = h.get("/api/v1/consent").await;
    let row = &consent["consent"][0];
    assert_eq!(
        (row["phone"].as_str(), row["sender"].as_str()),
        (Some(phone), Some("+14155550123")),
        "{consent}"
    );
    assert_eq!(
        (row["status"].as_str(), row["source"].as_str()),
        (Some("opted_out"), Some("inbound:Vonage_Events"))
    );

    let run = h.lead_run(json!({"LastName": "Quiet", "Phone": "(415) 555-0111"})).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("+14155550111 opted out"), "{fault}");
    assert!(received(&h).await.is_empty(), "nothing may reach Vonage");

    // A number Vonage itself bars (status 7) is an opt-out herald keeps too.
    let barred = h.lead_run(json!({"LastName": "Barred", "Phone": "+14155550107"})).await;
    let fault = barred["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{barred}"));
    assert!(fault.contains("status 7 (Number Barred)"), "{fault}");
    let consent = h.get("/api/v1/consent").await;
    let kept = consent["consent"].as_array().unwrap().iter().any(|c| {
        c["phone"] == "+14155550107" && c["status"] == "opted_out" && c["source"] == "vonage-sms error"
    });
    assert!(kept, "{consent}");
}
