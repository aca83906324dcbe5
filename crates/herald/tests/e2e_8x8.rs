//! Seeds 001 and 003 end to end: the External Services built from 8x8's minimal OpenAPI files, the
//! flows' Assignments, and the exact JSON the emulated 8x8 receives.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The API key the sandbox's 8x8 account accepts.
const KEY: &str = "sandbox-8x8-key";

/// An 8x8 example with `Bearer KEY` stored as its Authorization, and a webform user that may use it.
fn eight_by_eight(example: &str, key: &str) -> Harness {
    Harness::example(example)
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            &format!("Bearer {key}"),
        )
        .user("webform", &["Herald_API_User", "CPaaS_API_Access"])
        .start()
}

#[tokio::test]
async fn seed_001_sends_the_sms_request_with_the_corrected_field_names() {
    let h = eight_by_eight("8x8-sms", KEY);
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+6591234567"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    // The Lead's flow calls the guide's autolaunched flow as a subflow; its elements are in the trace.
    let path: Vec<(&str, &str, &str)> = run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["flow"].as_str().unwrap_or("-"), t["element"].as_str().unwrap(), t["result"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        path,
        [
            ("-", "Send_SMS", "subflow: Send_SMS_8x8"),
            ("Send_SMS_8x8", "Set_SMS_Body", "next: Send_SMS"),
            ("Send_SMS_8x8", "Send_SMS", "end"),
            ("-", "Send_SMS", "end"),
        ],
        "{run}"
    );
    assert_eq!(run["trace"][2]["outputs"]["responseCode"], 200, "{run}");
    assert_eq!(
        run["trace"][3]["outputs"]["responseCode"], 200,
        "the subflow's output, back in the Lead's flow"
    );
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request["host"], "sms.8x8.com");
    assert_eq!(request["path"], "/api/v1/subaccounts/herald-demo-subaccount/messages");
    assert_eq!(request["headers"]["authorization"], format!("Bearer {KEY}"));
    // herald adds the attempt's idempotency key as clientMessageId, so 8x8 recognises a resend.
    let key = request["body"]["clientMessageId"].as_str().unwrap_or_else(|| panic!("{request}")).to_string();
    assert!(key.starts_with("hrld-") && key.len() == 37, "{key}");
    assert_eq!(
        request["body"],
        json!({"destination": "+6591234567", "source": "8x8", "text": "Hi Ada, this is an SMS message.", "clientMessageId": key})
    );
    assert!(!run.to_string().contains(KEY), "the key leaked into the run");
}

/// Seed 001 as the guide builds it: an autolaunched flow, Debug → Run with no record, "All done.".
#[tokio::test]
async fn seed_001_as_an_autolaunched_flow_debug_runs_without_a_record_and_sends_the_sms() {
    let h = Harness::example("8x8-sms")
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            &format!("Bearer {KEY}"),
        )
        .no_server()
        .start();
    // A plain text value needs no JSON quotes; a quoted one is JSON text.
    let (code, stdout, stderr) =
        h.flow_debug_inputs("Send_SMS_8x8", &["text=Hello from herald", "recipient=\"+6598765432\""]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Debugging flow Send SMS (8x8) (Send_SMS_8x8) autolaunched"), "{stdout}");
    assert!(stdout.contains("2. Send SMS (Action: Send_SMS)"), "{stdout}");
    assert!(stdout.contains("Output variables:\n  smsBody = {\"destination\":\"+6598765432\""), "{stdout}");
    assert!(stdout.contains("  responseCode = 200\n"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked");

    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request["host"], "sms.8x8.com");
    assert_eq!(request["path"], "/api/v1/subaccounts/herald-demo-subaccount/messages");
    assert_eq!(request["headers"]["authorization"], format!("Bearer {KEY}"));
    assert_eq!(request["body"]["destination"], "+6598765432");
    assert_eq!(request["body"]["text"], "Hello from herald");

    // Without inputs the defaults hold: the guide's SMS.
    let (code, stdout, stderr) = h.flow_debug_inputs("Send_SMS_8x8", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[1]["body"]["text"], "This is an SMS message.");
}

#[tokio::test]
async fn an_8x8_rejection_inside_a_200_takes_the_fault_path() {
    let h = eight_by_eight("8x8-sms", KEY);
    let run = h
        .lead_run(
            json!({"LastName": "L", "Phone": herald_providers::eightbyeight::emulator::BLOCKED_DESTINATION}),
        )
        .await;
    // The subflow has no fault path: its failure takes the Subflow element's, which logs the Task.
    let fault = run["trace"][2]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("HTTP 200 but 8x8 rejected the message"), "{fault}");
    assert_eq!(run["trace"][2]["result"], "failed", "{run}");
    assert_eq!(run["trace"][3]["result"], "fault: Log_SMS_Failure", "{run}");
    assert_eq!(run["trace"][4]["kind"], "Create Records");
}

#[tokio::test]
async fn a_number_that_cannot_exist_is_refused_before_any_callout() {
    let h = eight_by_eight("8x8-sms", KEY);
    let run = h.lead_run(json!({"LastName": "L", "Phone": "+99912345678"})).await;
    let fault = run["trace"][2]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("was not sent: the destination `+99912345678`"), "{fault}");
    assert!(fault.contains("country code that does not exist"), "{fault}");
    assert!(h.sandbox_requests().await.is_empty(), "nothing may reach 8x8");
}

#[tokio::test]
async fn a_wrong_8x8_key_is_a_401_with_8x8s_error_code() {
    let h = eight_by_eight("8x8-sms", "not-the-key-12345");
    let run = h.lead_run(json!({"LastName": "L", "Phone": "+6591234567"})).await;
    let fault = run["trace"][2]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("HTTP 401"), "{fault}");
    assert!(fault.contains("1200"), "{fault}");
    assert!(!run.to_string().contains("not-the-key-12345"));
}

#[tokio::test]
async fn seed_003_builds_the_otp_template_with_one_helper_variable_added_twice() {
    let h = eight_by_eight("8x8-whatsapp-otp", KEY);
    let run = h.lead_run(json!({"LastName": "L", "MobilePhone": "+6591234567"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["host"], "chatapps.8x8.com");
    let key = received[0]["body"]["clientMessageId"].as_str().unwrap_or_default().to_string();
    assert!(key.starts_with("hrld-"), "herald sets the idempotency key: {}", received[0]["body"]);
    assert_eq!(
        received[0]["body"],
        json!({
            "clientMessageId": key,
            "user": {"msisdn": "+6591234567"},
            "type": "Template",
            "content": {"template": {
                "name": "your_authentication_template_name",
                "language": "en_US",
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                    {"type": "button", "subType": "Url", "index": 0, "parameters": [{"type": "text", "text": "123456"}]}
                ]
            }}
        })
    );
    // The call, the subflow's three Assignments, its action, the return.
    assert_eq!(run["trace"][4]["element"], "Send_Message", "{run}");
    assert_eq!(run["trace"][4]["flow"], "Send_WhatsApp_OTP", "{run}");
    assert_eq!(run["trace"][5]["outputs"]["responseCode"], 200, "{run}");
}

#[test]
fn the_seeds_as_written_fail_validation_naming_the_field_or_value() {
    let sms = ProjectCopy::of("8x8-sms");
    let flow = "flows/Send_SMS_8x8.yaml";
    sms.replace(flow, "smsBody.destination:", "smsBody.to:");
    sms.replace(flow, "smsBody.source:", "smsBody.from:");
    let (code, _, stderr) = herald(&["flow", "validate", sms.path().to_str().unwrap()], "");
    assert_ne!(code, 0);
    assert!(stderr.contains("has no field `to`; did you mean `destination`"), "{stderr}");
    assert!(stderr.contains("has no field `from`; did you mean `source`"), "{stderr}");

    let otp = ProjectCopy::of("8x8-whatsapp-otp");
    let flow = "flows/Send_WhatsApp_OTP.yaml";
    otp.replace(flow, "messageBody.type: Template", "messageBody.type: template");
    otp.replace(flow, "componentVariable.type: button", "componentVariable.type: Button");
    otp.replace(flow, "componentVariable.subType: Url", "componentVariable.subType: url");
    let (code, _, stderr) = herald(&["flow", "validate", otp.path().to_str().unwrap()], "");
    assert_ne!(code, 0);
    for expected in ["write `Template`", "write `button`", "write `Url`"] {
        assert!(stderr.contains(expected), "{expected} missing in {stderr}");
    }
    assert!(stderr.contains("3 problems found"), "{stderr}");
}

#[test]
fn a_body_without_its_required_fields_does_not_load() {
    let sms = ProjectCopy::of("8x8-sms");
    sms.edit("flows/Send_SMS_8x8.yaml", |text| {
        text.lines().filter(|l| !l.contains("smsBody.text:")).map(|l| format!("{l}\n")).collect()
    });
    let (code, _, stderr) = herald(&["flow", "validate", sms.path().to_str().unwrap()], "");
    assert_ne!(code, 0);
    assert!(stderr.contains("error[HF029]: `smsBody` is sent as ExternalService__CPaaSSMS_SmsRequest, but its required field `text` is never assigned"), "{stderr}");
}

#[test]
fn validate_output_can_be_cut_short_by_a_pipe() {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{HERALD}' flow validate '{}' | head -c 1", example("8x8-sms").display()))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn service_show_lists_the_generated_types() {
    let (code, stdout, stderr) =
        herald(&["service", "show", example("8x8-whatsapp-otp").to_str().unwrap(), "CPaaSMessagingApps"], "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ExternalService__CPaaSMessagingApps_singlex2dmessagex2drequest"), "{stdout}");
    assert!(
        stdout.contains(
            "action CPaaSMessagingApps.Send-Message: POST /api/v1/subaccounts/{subAccountId}/messages"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_official_spec_example_sends_and_keeps_the_typed_umid() {
    let h = eight_by_eight("8x8-sms-official", KEY);
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "L", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let received = h.sandbox_requests().await;
    assert_eq!(received[0]["host"], "sms.us.8x8.com");
    let lead_id = run["trace"][0]["outputs"]["smsBody.clientMessageId"].as_str().unwrap().to_string();
    assert!(lead_id.starts_with("00Q"));
    assert_eq!(
        received[0]["body"],
        json!({"destination": "+14155550100", "source": "8x8", "text": "Hi Ada, this is an SMS message.", "encoding": "AUTO", "clientMessageId": lead_id})
    );
    let answered: Value =
        serde_json::from_str(run["trace"][1]["outputs"]["responseBody"].as_str().unwrap()).unwrap();
    let kept = &run["trace"][2]["outputs"]["umid"];
    assert!(kept.as_str().is_some_and(|u| !u.is_empty()), "{run}");
    assert_eq!(kept, &answered["umid"]);
}

#[tokio::test]
async fn the_official_spec_checks_a_typed_number_as_it_is_sent_in_e164() {
    let h = eight_by_eight("8x8-sms-official", KEY);
    // 8x8's file wants `destination` to match ^\+{0,1}[1-9]{1}[0-9]{6,14}$; default_country is SG.
    let run = h.lead_run(json!({"FirstName": "Mei", "LastName": "Tan", "Phone": "9123 4567"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["trace"][1]["fault"], Value::Null, "{run}");
    let received = h.sandbox_requests().await;
    assert_eq!(received[0]["body"]["destination"], "+6591234567");
}

#[tokio::test]
async fn a_campaign_member_with_a_bad_phone_is_left_out_even_where_the_spec_has_a_pattern() {
    let h = eight_by_eight("8x8-bulk", KEY);
    let created =
        h.post_record("Campaign", json!({"Name": "Spring", "Message": "Hi", "Sender": "Acme"})).await;
    let spring = created["id"].as_str().unwrap().to_string();
    for (name, phone) in [("Typed", "9100 0001"), ("Typo", "12"), ("Intl", "+6591000002")] {
        h.post_record("Lead", json!({"LastName": name, "Phone": phone, "Campaign": spring})).await;
    }
    let url = h.url(&format!("/api/v1/records/Campaign/{spring}"));
    let launched = h.api().patch(&url).json(&json!({"Status": "Launched"})).send().await.unwrap();
    assert!(launched.status().is_success());
    let run = h
        .eventually("the campaign's run ended", Duration::from_secs(20), || async {
            let runs: Value = h.api().get(format!("{url}/runs")).send().await.ok()?.json().await.ok()?;
            let run = runs["runs"].get(0)?.clone();
            matches!(run["status"].as_str(), Some("finished" | "failed" | "unknown")).then_some(run)
        })
        .await;
    let send = run["trace"].as_array().unwrap().iter().find(|t| t["kind"] == "Action").unwrap().clone();
    assert_eq!(send["fault"], Value::Null, "{send}");
    assert_eq!(send["outputs"]["leftOut"][0]["destination"], "12", "{send}");
    let received = h.sandbox_requests().await;
    let sent: Vec<&str> = received[0]["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["+6591000001", "+6591000002"]);
}

#[tokio::test]
async fn the_sandbox_posts_receipts_to_the_webhook_and_the_ledger_follows_them() {
    let h = eight_by_eight("8x8-sms", KEY);
    let secret = h.cli_ok(&["webhook", "secret", "EightByEight_Events"]);
    let secret = secret.trim().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let webhook = json!({
        "url": h.url("/webhooks/EightByEight_Events"),
        "headers": {"Authorization": format!("Bearer {secret}")}
    });
    h.sandbox_put("/_sandbox/webhooks/sms.8x8.com", &webhook).await;
    // Duplicated and reversed receipts: the ledger must still end at `delivered`.
    h.sandbox_put("/_sandbox/receipts", &json!({"delay_ms": 0, "time_scale": 0.001})).await;
    let faults = json!({"duplicate_receipt_rate": 1.0, "reorder_receipts": true});
    h.sandbox_put("/_sandbox/faults/sms.8x8.com", &faults).await;

    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "L", "Phone": "+6591234567"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let path = format!("/api/v1/messages?runId={}", run["id"].as_str().unwrap());
    h.eventually("both receipts posted twice, each post answered", Duration::from_secs(20), || async {
        let posts = h.sandbox_get("/_sandbox/receipts?host=sms.8x8.com").await;
        let answered = posts.as_array()?.iter().filter(|p| p["answered_status"] == 200).count();
        (answered >= 4).then_some(())
    })
    .await;
    let message = h.get(&path).await["messages"][0].clone();
    assert_eq!(message["status"], "delivered", "{message}");
    assert_eq!(message["provider"], "8x8-sms");
    assert!(message["provider_message_id"].as_str().is_some_and(|u| !u.is_empty()), "{message}");
    let history = message["history"].as_array().unwrap();
    let receipts = history.iter().filter(|e| e["source"] != "herald").count();
    assert_eq!(
        receipts, 3,
        "the answer, then `sent` and `delivered` once each; the replays add nothing: {message}"
    );
    // Reordered, `delivered` comes before `sent`; the answer (`queued`) may come before either or,
    // on a busy machine, after `delivered` (the receipt is matched by herald's client id). Whatever
    // the order, statuses only move forward: every entry after `delivered` is kept but ignored.
    let delivered = history.iter().position(|e| e["status"] == "delivered").expect("delivered");
    for (at, entry) in history.iter().enumerate().skip(1) {
        assert_eq!(entry.get("ignored").is_some(), at > delivered, "entry {at}: {message}");
    }
    assert!(
        history.iter().any(|e| e["status"] == "sent" && e.get("ignored").is_some()),
        "the late `sent` changes nothing: {message}"
    );
    let kept = h.get("/api/v1/receipts?limit=100").await;
    assert_eq!(
        kept["receipts"].as_array().unwrap().len(),
        2,
        "one receipt row per delivery, none per replay: {kept}"
    );

    // A request without the secret is refused and changes nothing.
    let forged = h
        .plain()
        .post(h.url("/webhooks/EightByEight_Events"))
        .json(&json!({"namespace": "SMS", "eventType": "outbound_message_status_changed", "payload": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(h.get(&path).await["messages"][0]["status"], "delivered");
}

/// Posts a record and returns its id.
async fn create(h: &Harness, object: &str, fields: Value) -> String {
    let created = h.post_record(object, fields).await;
    created["id"].as_str().unwrap_or_else(|| panic!("not created: {created}")).to_string()
}

#[tokio::test]
async fn a_launched_campaign_texts_every_member_in_batches() {
    let h = std::sync::Arc::new(eight_by_eight("8x8-bulk", KEY));
    let campaign =
        json!({"Name": "Spring", "Message": "Spring sale today. Reply STOP to opt out.", "Sender": "Acme"});
    let spring = create(&h, "Campaign", campaign.clone()).await;
    let other = create(&h, "Campaign", json!({"Name": "Other", "Message": "x"})).await;
    const MEMBERS: usize = 10_003;
    let mut posting = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (h, spring) = (h.clone(), spring.clone());
        posting.spawn(async move {
            for n in (worker..MEMBERS).step_by(16) {
                let phone = format!("+659{n:07}");
                create(&h, "Lead", json!({"LastName": format!("M{n}"), "Phone": phone, "Campaign": spring}))
                    .await;
            }
        });
    }
    posting.join_all().await;
    create(&h, "Lead", json!({"LastName": "No phone", "Campaign": spring})).await;
    // A member whose number cannot exist is left out of its batch; the others still go.
    create(&h, "Lead", json!({"LastName": "Bad", "Phone": "+99912345678", "Campaign": spring})).await;
    create(&h, "Lead", json!({"LastName": "Elsewhere", "Phone": "+6581111111", "Campaign": other})).await;

    let url = h.url(&format!("/api/v1/records/Campaign/{spring}"));
    let launched = h.api().patch(&url).json(&json!({"Status": "Launched"})).send().await.unwrap();
    assert!(launched.status().is_success());
    let run = h
        .eventually("the campaign's run to end", Duration::from_secs(60), || async {
            let runs: Value = h.api().get(format!("{url}/runs")).send().await.ok()?.json().await.ok()?;
            let run = runs["runs"].get(0)?.clone();
            matches!(run["status"].as_str(), Some("finished" | "failed" | "unknown")).then_some(run)
        })
        .await;
    assert_eq!(run["status"], "finished", "{}", run["fault"]);

    let received = h.sandbox_requests().await;
    let batches: Vec<Value> = received
        .into_iter()
        .filter(|r| r["path"] == "/api/v1/subaccounts/herald-demo-subaccount/messages/batch")
        .collect();
    let sent = |batch: &Value| -> Vec<String> {
        let messages = batch["body"]["messages"].as_array().unwrap();
        messages.iter().map(|m| m["destination"].as_str().unwrap().to_string()).collect()
    };
    let sends: Vec<&Value> =
        run["trace"].as_array().unwrap().iter().filter(|t| t["kind"] == "Action").collect();
    let sizes: Vec<usize> = batches.iter().map(|b| sent(b).len()).collect();
    assert_eq!(sizes, [5_000, 5_000, 3], "{:?}", sends.iter().map(|s| &s["fault"]).collect::<Vec<_>>());
    let mut phones: Vec<String> = batches.iter().flat_map(sent).collect();
    phones.sort_unstable();
    phones.dedup();
    assert_eq!(phones.len(), MEMBERS, "each member exactly once, and nobody else");
    assert!(!phones.contains(&"+6581111111".to_string()));
    let first = &batches[0]["body"]["messages"][0];
    assert_eq!(first["text"], "Spring sale today. Reply STOP to opt out.");
    assert_eq!(batches[0]["body"]["template"]["source"], "Acme");
    // Every message carries its own id, so a resend after a crash is recognised by 8x8.
    let id = first["clientMessageId"].as_str().unwrap_or_else(|| panic!("{first}"));
    assert!(id.starts_with("hrld-") && id.ends_with("-0"), "{id}");
    assert_eq!(sends.len(), 3);
    assert_eq!(sends[0]["outputs"]["200"]["acceptedCount"], 5_000);
    assert_eq!(sends[2]["outputs"]["leftOut"][0]["destination"], "+99912345678", "{}", sends[2]["outputs"]);
    let reason = sends[2]["outputs"]["leftOut"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("country code that does not exist"), "{reason}");
    // The ledger holds every message sent, each answered as queued.
    let ledger = h.get(&format!("/api/v1/messages?run_id={}&limit=10000", run["id"].as_str().unwrap())).await;
    let rows = ledger["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 10_000, "the first 10,000 of 10,003");
    for row in rows {
        assert_eq!(row["status"], "queued", "{row}");
        let history: Vec<&str> =
            row["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
        assert_eq!(history, ["pending", "queued"], "{row}");
    }
    // The loop's elements ran ~40,000 times; the trace lists the first ones and counts the rest.
    let omitted = run["traceOmitted"]["Add_Message"].as_u64().unwrap_or(0);
    let listed = run["trace"].as_array().unwrap().iter().filter(|t| t["element"] == "Add_Message").count();
    assert_eq!(omitted + listed as u64, MEMBERS as u64 + 1);
}

/// Seed 001's autolaunched flow invoked over HTTP as Salesforce's REST API invokes a flow: listed
/// with its inputs and outputs, run once per input, its outputs in the answer.
#[tokio::test]
async fn seed_001_invoked_over_http_sends_one_sms_per_input_and_answers_its_outputs() {
    let h = Harness::example("8x8-sms")
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            &format!("Bearer {KEY}"),
        )
        .user("flowclient", &["Flow_Runner", "CPaaS_API_Access"])
        .start();
    let list = h.api().get(h.url("/services/data/v60.0/actions/custom/flow")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["actions"][0]["name"], "Send_SMS_8x8", "{list}");
    assert_eq!(list["actions"][0]["inputs"][0]["name"], "recipient", "{list}");

    let body = json!({"inputs": [{"recipient": "+6598765432", "text": "Hello from herald"}, {}]});
    let url = h.url("/services/data/v60.0/actions/custom/flow/Send_SMS_8x8");
    let answer = h.api().post(url).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer[0]["isSuccess"], true, "{answer}");
    assert_eq!(answer[0]["outputValues"]["responseCode"], 200, "{answer}");
    assert_eq!(answer[0]["outputValues"]["smsBody"]["destination"], "+6598765432", "{answer}");
    assert_eq!(answer[1]["outputValues"]["Flow__InterviewStatus"], "Finished", "{answer}");
    assert!(!answer.to_string().contains(KEY), "the key leaked");

    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0]["body"]["text"], "Hello from herald");
    assert_eq!(received[1]["body"]["text"], "This is an SMS message.");
}

/// An 8x8 example with `Bearer KEY` stored, and no server (for `herald flow debug`).
fn debug_only(example: &str) -> Harness {
    Harness::example(example)
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            &format!("Bearer {KEY}"),
        )
        .no_server()
        .start()
}

/// Seed 003 as the guide builds it: the autolaunched flow, Debug → Run with no record, "All done.",
/// the guide's template in the sandbox.
#[tokio::test]
async fn seed_003_as_an_autolaunched_flow_debug_runs_without_a_record_and_sends_the_template() {
    let h = debug_only("8x8-whatsapp-otp");
    let (code, stdout, stderr) = h.flow_debug_inputs("Send_WhatsApp_OTP", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("autolaunched"), "{stdout}");
    assert!(stdout.contains("4. Send Message (Action: Send_Message)"), "{stdout}");
    assert!(stdout.contains("  responseCode = 200\n"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked");
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["host"], "chatapps.8x8.com");
    assert_eq!(received[0]["body"]["user"]["msisdn"], "+6591234567");
    assert_eq!(
        received[0]["body"]["content"]["template"]["components"][1]["parameters"][0]["text"],
        "123456"
    );
}

/// Seed 003's autolaunched flow invoked over HTTP: one message per input, `isSuccess` true.
#[tokio::test]
async fn seed_003_invoked_over_http_answers_is_success_and_sends_each_code() {
    let h = Harness::example("8x8-whatsapp-otp")
        .credential(
            ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
            &format!("Bearer {KEY}"),
        )
        .user("flowclient", &["Flow_Runner", "CPaaS_API_Access"])
        .start();
    let body = json!({"inputs": [{"recipient": "+6598765432", "otp": "987654"}]});
    let url = h.url("/services/data/v60.0/actions/custom/flow/Send_WhatsApp_OTP");
    let answer = h.api().post(url).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer[0]["actionName"], "Send_WhatsApp_OTP", "{answer}");
    assert_eq!(answer[0]["isSuccess"], true, "{answer}");
    assert_eq!(answer[0]["outputValues"]["responseCode"], 200, "{answer}");
    assert_eq!(answer[0]["outputValues"]["messageBody"]["user"]["msisdn"], "+6598765432", "{answer}");
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0]["body"]["content"]["template"]["components"][0]["parameters"][0]["text"],
        "987654"
    );
}

/// `herald flow debug` of the Lead-triggered flow prints the whole run, the subflow's elements
/// included under the Subflow element, and ends "All done." with the SMS in the sandbox.
#[tokio::test]
async fn debugging_the_lead_flow_prints_the_subflows_elements_and_ends_all_done() {
    let h = debug_only("8x8-sms");
    let record = r#"{"FirstName":"Mei","LastName":"Tan","Phone":"9123 4567"}"#;
    let (code, stdout, stderr) = h.flow_debug("Lead_Welcome_SMS_8x8", record);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "1. Send SMS (Subflow: Send_SMS)",
        "   → subflow: Send_SMS_8x8",
        "2.   Set SMS Body (Assignment: Set_SMS_Body in Send_SMS_8x8)",
        "3.   Send SMS (Action: Send_SMS in Send_SMS_8x8)",
        "4. Send SMS (Subflow: Send_SMS)",
    ] {
        assert!(stdout.contains(line), "{line} missing in {stdout}");
    }
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    let received = h.sandbox_requests().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["body"]["destination"], "+6591234567");
    assert_eq!(received[0]["body"]["text"], "Hi Mei, this is an SMS message.");
}
