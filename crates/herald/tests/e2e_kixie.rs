//! Seed 000 end to end: `herald sandbox` and `herald serve` as processes, a Lead posted over HTTP, and
//! the exact Kixie request checked at the sandbox.

mod common;

use common::*;
use serde_json::{Value, json};

const BUSINESSID: &str = "biz-e2e-4821";
const APIKEY: &str = "key-e2e-9f8e7d6c5b4a";

/// The example with the sandbox's Kixie account set to BUSINESSID and APIKEY, and `stored_apikey` in the
/// vault (a wrong one for the tests of a refused key).
fn kixie(stored_apikey: &str) -> Setup {
    Harness::example("kixie-welcome-sms")
        .credential(["Kixie_API_Auth", "Kixie_Principal", "businessid"], BUSINESSID)
        .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], stored_apikey)
        .user("webform", &["Herald_API_User", "Kixie_Integration_User"])
        .sandbox_env("HERALD_SANDBOX_KIXIE_BUSINESSID", BUSINESSID)
        .sandbox_env("HERALD_SANDBOX_KIXIE_APIKEY", APIKEY)
}

#[tokio::test]
async fn a_new_lead_sends_exactly_the_seed_body_with_the_vault_secrets() {
    let h = kixie(APIKEY).start();
    let created =
        h.post_lead(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+14155550100"})).await;
    let runs = created["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{created}");
    let run = h.finished_run(runs[0].as_str().unwrap()).await;
    assert_eq!(run["status"], "finished", "{run}");

    let requests = h.sandbox_requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["host"], "apig.kixie.com");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/app/event");
    assert_eq!(request["headers"]["content-type"], "application/json");
    assert_eq!(
        request["body"],
        json!({
            "businessid": BUSINESSID,
            "apikey": APIKEY,
            "target": "+14155550100",
            "eventname": "sms",
            "message": "Hi Ada, thanks for reaching out! Reply STOP to opt out."
        })
    );

    // The trace shows the action with secrets masked and Kixie's answer, then the Lead marked.
    let trace = run["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 2, "{run}");
    assert_eq!(trace[0]["element"], "Send_SMS");
    assert_eq!(trace[0]["inputs"]["apikey"], "••••••");
    assert_eq!(trace[0]["inputs"]["target"], "+14155550100");
    assert_eq!(trace[0]["outputs"]["responseCode"], 200);
    assert_eq!(trace[1]["element"], "Mark_Lead_Texted");
    assert_eq!(
        (trace[1]["kind"].as_str(), trace[1]["outputs"]["count"].as_u64()),
        (Some("Update Records"), Some(1))
    );

    // After the send, the Lead is marked as texted (Update Records on the triggering record).
    let lead_id = created["id"].as_str().unwrap();
    let lead = h.get(&format!("/api/v1/records/Lead/{lead_id}")).await;
    assert_eq!(lead["Welcome_SMS_Sent__c"], true, "{lead}");

    // No secret in the API's answers or the server's output.
    let everything = format!("{created}{run}{}", h.server_output());
    assert!(
        !everything.contains(APIKEY) && !everything.contains(BUSINESSID),
        "a secret leaked: {everything}"
    );
}

#[tokio::test]
async fn json_special_characters_in_fields_cannot_break_the_body() {
    let h = kixie(APIKEY).start();
    let name = r#"Zoë "the \ quote" {brace}"#;
    h.lead_run(json!({"FirstName": name, "LastName": "X", "Phone": "+14155550111"})).await;
    let requests = h.sandbox_requests().await;
    assert_eq!(
        requests[0]["body"]["message"],
        format!("Hi {name}, thanks for reaching out! Reply STOP to opt out.")
    );
}

#[tokio::test]
async fn a_refused_send_takes_the_fault_path_and_logs_a_task() {
    let h = kixie(APIKEY).start();
    let created = h
        .post_lead(
            json!({"FirstName": "Edsger", "LastName": "Dijkstra", "Phone": herald_providers::kixie::emulator::BLOCKED_TARGET}),
        )
        .await;
    let lead_id = created["id"].as_str().unwrap();
    let run = h.finished_run(created["runs"][0].as_str().unwrap()).await;
    assert_eq!(run["status"], "finished", "the fault connector handles the failure: {run}");
    let trace = run["trace"].as_array().unwrap();
    assert_eq!(trace[0]["result"], "fault: Log_SMS_Failure");
    assert_eq!(trace[1]["kind"], "Create Records");
    let task_id = trace[1]["outputs"]["Id"].as_str().unwrap();
    assert!(task_id.starts_with("00T"));
    let task = h.get(&format!("/api/v1/records/Task/{task_id}")).await;
    let subject = task["Subject"].as_str().unwrap();
    assert!(subject.starts_with("SMS failed: KixieService.Send_SMS failed: HTTP 200"), "{subject}");
    assert!(
        subject.contains(
            r#"{"success":false,"error":"Target +14155550199 is on the account's do-not-text list"}"#
        ),
        "{subject}"
    );
    assert_eq!(task["WhoId"], lead_id);
    assert_eq!(task["Priority"], "High");
    let lead = h.get(&format!("/api/v1/records/Lead/{lead_id}")).await;
    assert_eq!(lead["Welcome_SMS_Sent__c"], false, "a Lead whose text failed is not marked: {lead}");
}

#[tokio::test]
async fn a_wrong_key_is_a_401_fault_whose_task_carries_status_and_body_but_no_secret() {
    let wrong = "wrong-key-0123456789";
    let h = kixie(wrong).start();
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "L", "Phone": "+14155550100"})).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("HTTP 401"), "{fault}");
    assert!(fault.contains("Invalid apikey or businessid"), "{fault}");
    assert!(!run.to_string().contains(wrong), "the stored key leaked into the run: {run}");
}

#[tokio::test]
async fn a_blank_phone_triggers_nothing() {
    let h = kixie(APIKEY).start();
    for fields in [
        json!({"FirstName": "K", "LastName": "Johnson"}),
        json!({"FirstName": "K", "LastName": "J", "Phone": ""}),
    ] {
        let created = h.post_lead(fields).await;
        assert_eq!(created["runs"], json!([]), "{created}");
        let lead_id = created["id"].as_str().unwrap();
        let runs = h.get(&format!("/api/v1/records/Lead/{lead_id}/runs")).await;
        assert_eq!(runs["runs"], json!([]));
    }
    // A lead with a phone afterwards is the first and only request the sandbox sees.
    h.lead_run(json!({"LastName": "After", "Phone": "+14155550199"})).await;
    let requests = h.sandbox_requests().await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["body"]["target"], "+14155550199");
}

#[tokio::test]
async fn the_records_api_names_bad_fields() {
    let h = kixie(APIKEY).start();
    let url = h.url("/api/v1/records/Lead");
    let response =
        h.api().post(&url).json(&json!({"LastName": "X", "Phne": "1", "FirstName": 7})).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let errors: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        errors.as_array().unwrap().iter().map(|e| e["fields"][0].as_str().unwrap()).collect();
    assert!(fields.contains(&"Phne") && fields.contains(&"FirstName"), "{errors}");
    assert!(errors.to_string().contains("did you mean `Phone`"), "{errors}");

    let response = h.api().post(&url).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = h.api().post(h.url("/api/v1/records/Leed")).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 404);

    // PATCH updates and GET shows the change; an update does not re-run a create-triggered flow.
    let created = h.post_lead(json!({"LastName": "Before"})).await;
    let id = created["id"].as_str().unwrap();
    let record_url = format!("{url}/{id}");
    let patched: Value = h
        .api()
        .patch(&record_url)
        .json(&json!({"LastName": "After", "Phone": "+14155550123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["runs"], json!([]));
    let record = h.get(&format!("/api/v1/records/Lead/{id}")).await;
    assert_eq!(record["LastName"], "After");
    assert_eq!(record["attributes"]["type"], "Lead");
    let missing = h.api().get(format!("{url}/00Qnothere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_api_needs_a_token_and_the_scope_of_each_route() {
    let h = kixie(APIKEY).start();
    let url = h.url("/api/v1/records/Lead");
    let lead = json!({"LastName": "X"});
    let anonymous = h.plain().post(&url).json(&lead).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    let forged = authorized("hrld_notarealtokennotarealtoken00").post(&url).json(&lead).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(h.plain().get(h.url("/health")).send().await.unwrap().status(), 200);

    // A deactivated user's token stops working at once.
    let token = h.add_user("leaver", &["Herald_API_User"]);
    assert_eq!(authorized(&token).post(&url).json(&lead).send().await.unwrap().status(), 201);
    h.cli_ok(&["user", "deactivate", "leaver"]);
    assert_eq!(authorized(&token).post(&url).json(&lead).send().await.unwrap().status(), 401);

    // A user whose permission sets grant no API scope gets a 403 that says what to assign.
    let token = h.add_user("caller", &["Kixie_Integration_User"]);
    let denied = authorized(&token).post(&url).json(&lead).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    let message = body[0]["message"].as_str().unwrap();
    assert!(message.contains("user caller lacks the API scope write_records"), "{message}");
    assert!(message.contains("assign permission set Herald_API_User or Herald_Admin"), "{message}");
    // The webform may write records but not manage credentials.
    let put = h
        .api()
        .put(h.url("/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
}

#[tokio::test]
async fn a_triggering_user_without_the_permission_set_gets_the_grant_named_in_the_task() {
    let h = kixie(APIKEY).user("intake", &["Herald_API_User"]).start();
    let run = h.lead_run(json!({"LastName": "L", "Phone": "+14155550100"})).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("user intake has no access to external credential Kixie_API_Auth"), "{fault}");
    assert!(fault.contains("assign permission set Kixie_Integration_User"), "{fault}");
    assert_eq!(run["trace"][1]["kind"], "Create Records");
    assert!(h.sandbox_requests().await.is_empty(), "nothing may be sent without the grant");
}

#[tokio::test]
async fn an_admin_sets_a_secret_through_the_api_and_it_is_used_but_never_shown() {
    let h = kixie("an-old-wrong-key-000").start();
    let admin = authorized(&h.add_user("admin", &["Herald_Admin", "Kixie_Integration_User"]));
    let put = admin
        .put(h.url("/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey"))
        .body(APIKEY)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    assert!(put.text().await.unwrap().is_empty());
    let bad = admin
        .put(h.url("/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikye"))
        .body(APIKEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(!bad.text().await.unwrap().contains(APIKEY));
    let run = h.lead_run(json!({"LastName": "L", "Phone": "+14155550100"})).await;
    assert_eq!(run["trace"][0]["outputs"]["responseCode"], 200, "{run}");
    assert!(!h.server_output().contains(APIKEY));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_not_followed() {
    let h = kixie(APIKEY)
        .project_edit(|p| {
            p.replace(
                "credentials/Kixie_Endpoint.yaml",
                "https://apig.kixie.com",
                "https://redirect.sandbox.test",
            )
        })
        .start();
    let run = h.lead_run(json!({"LastName": "L", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("HTTP 302 redirect refused"), "{fault}");
    assert_eq!(h.sandbox_requests().await.len(), 1, "the redirect must not be followed");
}

#[tokio::test]
async fn a_stop_reply_through_kixies_webhook_stops_the_next_text_before_any_callout() {
    let h = kixie(APIKEY).start();
    let secret = h.cli_ok(&["webhook", "secret", "Kixie_Events"]);
    // Kixie sends no header of its own: the secret rides in the URL it is configured with.
    let url = h.url(&format!("/webhooks/Kixie_Events?secret={}", secret.trim()));
    h.sandbox_put("/_sandbox/webhooks/apig.kixie.com", &json!({"url": url, "headers": {}})).await;
    let inbound =
        json!({"host": "apig.kixie.com", "from": "+14155550177", "to": "+14155550123", "text": "stop"});
    let answer = h.sandbox_post("/_sandbox/inbound", &inbound).await;
    assert_eq!(answer["answered"], 200, "herald took the webhook: {answer}");

    let run = h.lead_run(json!({"LastName": "Opted", "Phone": "(415) 555-0177"})).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("+14155550177 opted out"), "{fault}");
    assert!(h.sandbox_requests().await.iter().all(|r| r["path"] != "/app/event"), "no text went out");
    let consent = h.get("/api/v1/consent").await;
    assert_eq!(consent["consent"][0]["status"], "opted_out", "{consent}");
    assert_eq!(consent["consent"][0]["source"], "inbound:Kixie_Events", "{consent}");
}
