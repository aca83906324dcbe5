//! Seed 000 end to end: `herald sandbox` and `herald serve` as processes, a Lead posted over HTTP, and
//! the exact Kixie request checked at the sandbox.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const BUSINESSID: &str = "biz-e2e-4821";
const APIKEY: &str = "key-e2e-9f8e7d6c5b4a";

struct Setup {
    dir: tempfile::TempDir,
    project: std::path::PathBuf,
    sandbox: Process,
    server: Process,
    client: reqwest::Client,
}

/// Stores the credentials with `herald credential set` (values on stdin), then starts both processes.
fn setup(stored_apikey: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("herald.db");
    let project = example("kixie-welcome-sms");
    for (parameter, value) in [("businessid", BUSINESSID), ("apikey", stored_apikey)] {
        set_credential(&project, &db, ["Kixie_API_Auth", "Kixie_Principal", parameter], value);
    }
    let token = user_with_token(&project, &db, "webform", &["Herald_API_User", "Kixie_Integration_User"]);
    let sandbox = Process::start(
        &["sandbox", "--listen", "127.0.0.1:0"],
        &[("HERALD_SANDBOX_KIXIE_BUSINESSID", BUSINESSID), ("HERALD_SANDBOX_KIXIE_APIKEY", APIKEY)],
    );
    let server = common::serve(&project, &db, &sandbox.url);
    Setup { dir, project, sandbox, server, client: authorized(&token) }
}

impl Setup {
    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("herald.db")
    }

    async fn post_lead(&self, fields: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/api/v1/records/Lead", self.server.url))
            .json(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    async fn finished_run(&self, run_id: &str) -> Value {
        let url = format!("{}/api/v1/runs/{run_id}", self.server.url);
        eventually(Duration::from_secs(20), || async {
            let run: Value = self.client.get(&url).send().await.ok()?.json().await.ok()?;
            matches!(run["status"].as_str(), Some("finished" | "failed" | "unknown")).then_some(run)
        })
        .await
    }

    async fn sandbox_requests(&self) -> Vec<Value> {
        let url = format!("{}/_sandbox/requests", self.sandbox.url);
        self.client.get(url).send().await.unwrap().json().await.unwrap()
    }
}

#[tokio::test]
async fn a_new_lead_sends_exactly_the_seed_body_with_the_vault_secrets() {
    let setup = setup(APIKEY);
    let created =
        setup.post_lead(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+14155550100"})).await;
    let runs = created["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{created}");
    let run = setup.finished_run(runs[0].as_str().unwrap()).await;
    assert_eq!(run["status"], "finished", "{run}");

    let requests = setup.sandbox_requests().await;
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

    // The trace shows the action with secrets masked and Kixie's answer.
    let trace = run["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0]["element"], "Send_SMS");
    assert_eq!(trace[0]["inputs"]["apikey"], "••••••");
    assert_eq!(trace[0]["inputs"]["target"], "+14155550100");
    assert_eq!(trace[0]["outputs"]["responseCode"], 200);

    // No secret in the API's answers or the server's output.
    let everything = format!("{created}{run}{}", setup.server.output());
    assert!(
        !everything.contains(APIKEY) && !everything.contains(BUSINESSID),
        "a secret leaked: {everything}"
    );
}

#[tokio::test]
async fn json_special_characters_in_fields_cannot_break_the_body() {
    let setup = setup(APIKEY);
    let name = r#"Zoë "the \ quote" {brace}"#;
    let created = setup.post_lead(json!({"FirstName": name, "LastName": "X", "Phone": "+14155550111"})).await;
    setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    let requests = setup.sandbox_requests().await;
    assert_eq!(
        requests[0]["body"]["message"],
        format!("Hi {name}, thanks for reaching out! Reply STOP to opt out.")
    );
}

#[tokio::test]
async fn a_refused_send_takes_the_fault_path_and_logs_a_task() {
    let setup = setup(APIKEY);
    let created = setup
        .post_lead(
            json!({"FirstName": "Edsger", "LastName": "Dijkstra", "Phone": herald_sandbox::BLOCKED_TARGET}),
        )
        .await;
    let lead_id = created["id"].as_str().unwrap();
    let run = setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    assert_eq!(run["status"], "finished", "the fault connector handles the failure: {run}");
    let trace = run["trace"].as_array().unwrap();
    assert_eq!(trace[0]["result"], "fault: Log_SMS_Failure");
    assert_eq!(trace[1]["kind"], "Create Records");
    let task_id = trace[1]["outputs"]["Id"].as_str().unwrap();
    assert!(task_id.starts_with("00T"));
    let task: Value = setup
        .client
        .get(format!("{}/api/v1/records/Task/{task_id}", setup.server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
}

#[tokio::test]
async fn a_wrong_key_is_a_401_fault_whose_task_carries_status_and_body_but_no_secret() {
    let wrong = "wrong-key-0123456789";
    let setup = setup(wrong);
    let created =
        setup.post_lead(json!({"FirstName": "Ada", "LastName": "L", "Phone": "+14155550100"})).await;
    let run = setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("HTTP 401"), "{fault}");
    assert!(fault.contains("Invalid apikey or businessid"), "{fault}");
    assert!(!run.to_string().contains(wrong), "the stored key leaked into the run: {run}");
}

#[tokio::test]
async fn a_blank_phone_triggers_nothing() {
    let setup = setup(APIKEY);
    for fields in [
        json!({"FirstName": "K", "LastName": "Johnson"}),
        json!({"FirstName": "K", "LastName": "J", "Phone": ""}),
    ] {
        let created = setup.post_lead(fields).await;
        assert_eq!(created["runs"], json!([]), "{created}");
        let lead_id = created["id"].as_str().unwrap();
        let runs: Value = setup
            .client
            .get(format!("{}/api/v1/records/Lead/{lead_id}/runs", setup.server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(runs["runs"], json!([]));
    }
    // A lead with a phone afterwards is the first and only request the sandbox sees.
    let created = setup.post_lead(json!({"LastName": "After", "Phone": "+14155550199"})).await;
    setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    let requests = setup.sandbox_requests().await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["body"]["target"], "+14155550199");
}

#[tokio::test]
async fn the_records_api_names_bad_fields() {
    let setup = setup(APIKEY);
    let url = format!("{}/api/v1/records/Lead", setup.server.url);
    let response = setup
        .client
        .post(&url)
        .json(&json!({"LastName": "X", "Phne": "1", "FirstName": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let errors: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        errors.as_array().unwrap().iter().map(|e| e["fields"][0].as_str().unwrap()).collect();
    assert!(fields.contains(&"Phne") && fields.contains(&"FirstName"), "{errors}");
    assert!(errors.to_string().contains("did you mean `Phone`"), "{errors}");

    let response = setup.client.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = setup
        .client
        .post(format!("{}/api/v1/records/Leed", setup.server.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // PATCH updates and GET shows the change; an update does not re-run a create-triggered flow.
    let created: Value = setup
        .client
        .post(&url)
        .json(&json!({"LastName": "Before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let record_url = format!("{url}/{id}");
    let patched: Value = setup
        .client
        .patch(&record_url)
        .json(&json!({"LastName": "After", "Phone": "+14155550123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["runs"], json!([]));
    let record: Value = setup.client.get(&record_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(record["LastName"], "After");
    assert_eq!(record["attributes"]["type"], "Lead");
    let missing = setup.client.get(format!("{url}/00Qnothere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_api_needs_a_token_and_the_scope_of_each_route() {
    let setup = setup(APIKEY);
    let url = format!("{}/api/v1/records/Lead", setup.server.url);
    let lead = json!({"LastName": "X"});
    let anonymous = client().post(&url).json(&lead).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    let forged = authorized("hrld_notarealtokennotarealtoken00").post(&url).json(&lead).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(client().get(format!("{}/health", setup.server.url)).send().await.unwrap().status(), 200);

    // A deactivated user's token stops working at once.
    let token = user_with_token(&setup.project, &setup.db(), "leaver", &["Herald_API_User"]);
    assert_eq!(authorized(&token).post(&url).json(&lead).send().await.unwrap().status(), 201);
    let db = setup.db();
    let args = [
        "user",
        "deactivate",
        "leaver",
        "--project",
        setup.project.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];
    assert_eq!(herald(&args, "").0, 0);
    assert_eq!(authorized(&token).post(&url).json(&lead).send().await.unwrap().status(), 401);

    // A user whose permission sets grant no API scope gets a 403 that says what to assign.
    let token = user_with_token(&setup.project, &setup.db(), "caller", &["Kixie_Integration_User"]);
    let denied = authorized(&token).post(&url).json(&lead).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    let message = body[0]["message"].as_str().unwrap();
    assert!(message.contains("user caller lacks the API scope write_records"), "{message}");
    assert!(message.contains("assign permission set Herald_API_User or Herald_Admin"), "{message}");
    // The webform may write records but not manage credentials.
    let put = setup
        .client
        .put(format!("{}/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey", setup.server.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
}

#[tokio::test]
async fn a_triggering_user_without_the_permission_set_gets_the_grant_named_in_the_task() {
    let setup = setup(APIKEY);
    let token = user_with_token(&setup.project, &setup.db(), "intake", &["Herald_API_User"]);
    let client = authorized(&token);
    let created: Value = client
        .post(format!("{}/api/v1/records/Lead", setup.server.url))
        .json(&json!({"LastName": "L", "Phone": "+14155550100"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("user intake has no access to external credential Kixie_API_Auth"), "{fault}");
    assert!(fault.contains("assign permission set Kixie_Integration_User"), "{fault}");
    assert_eq!(run["trace"][1]["kind"], "Create Records");
    assert!(setup.sandbox_requests().await.is_empty(), "nothing may be sent without the grant");
}

#[tokio::test]
async fn an_admin_sets_a_secret_through_the_api_and_it_is_used_but_never_shown() {
    let setup = setup("an-old-wrong-key-000");
    let token =
        user_with_token(&setup.project, &setup.db(), "admin", &["Herald_Admin", "Kixie_Integration_User"]);
    let admin = authorized(&token);
    let put = admin
        .put(format!("{}/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey", setup.server.url))
        .body(APIKEY)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    assert!(put.text().await.unwrap().is_empty());
    let bad = admin
        .put(format!("{}/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikye", setup.server.url))
        .body(APIKEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(!bad.text().await.unwrap().contains(APIKEY));
    let created = setup.post_lead(json!({"LastName": "L", "Phone": "+14155550100"})).await;
    let run = setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    assert_eq!(run["trace"][0]["outputs"]["responseCode"], 200, "{run}");
    assert!(!setup.server.output().contains(APIKEY));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("kixie-welcome-sms"), &project);
    let endpoint = project.join("credentials/Kixie_Endpoint.yaml");
    let text = std::fs::read_to_string(&endpoint)
        .unwrap()
        .replace("https://apig.kixie.com", "https://redirect.sandbox.test");
    std::fs::write(&endpoint, text).unwrap();
    let db = dir.path().join("h.db");
    for (parameter, value) in [("businessid", BUSINESSID), ("apikey", APIKEY)] {
        set_credential(&project, &db, ["Kixie_API_Auth", "Kixie_Principal", parameter], value);
    }
    let token = user_with_token(&project, &db, "webform", &["Herald_API_User", "Kixie_Integration_User"]);
    let sandbox = Process::start(&["sandbox", "--listen", "127.0.0.1:0"], &[]);
    let server = common::serve(&project, &db, &sandbox.url);
    let client = authorized(&token);
    let created: Value = client
        .post(format!("{}/api/v1/records/Lead", server.url))
        .json(&json!({"LastName": "L", "Phone": "+14155550100"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{}/api/v1/runs/{}", server.url, created["runs"][0].as_str().unwrap());
    let run: Value = eventually(Duration::from_secs(20), || async {
        let run: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
        (run["status"] == "finished").then_some(run)
    })
    .await;
    let fault = run["trace"][0]["fault"].as_str().unwrap();
    assert!(fault.contains("HTTP 302 redirect refused"), "{fault}");
    let requests: Vec<Value> =
        client.get(format!("{}/_sandbox/requests", sandbox.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests.len(), 1, "the redirect must not be followed");
}

#[tokio::test]
async fn a_stop_reply_through_kixies_webhook_stops_the_next_text_before_any_callout() {
    let setup = setup(APIKEY);
    let db = setup.dir.path().join("herald.db");
    let args = ["webhook", "secret", "Kixie_Events", "--project", setup.project.to_str().unwrap()];
    let (code, secret, err) = herald(&[&args[..], &["--db", db.to_str().unwrap()]].concat(), "");
    assert_eq!(code, 0, "{err}");
    // Kixie sends no header of its own: the secret rides in the URL it is configured with.
    let url =
        format!("{}/webhooks/Kixie_Events?secret={}", setup.server.url.trim_end_matches('/'), secret.trim());
    let plain = client();
    let put = plain
        .put(format!("{}/_sandbox/webhooks/apig.kixie.com", setup.sandbox.url))
        .json(&json!({"url": url, "headers": {}}));
    assert_eq!(put.send().await.unwrap().status(), 200);
    let inbound =
        json!({"host": "apig.kixie.com", "from": "+14155550177", "to": "+14155550123", "text": "stop"});
    let answer: Value = plain
        .post(format!("{}/_sandbox/inbound", setup.sandbox.url))
        .json(&inbound)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["answered"], 200, "herald took the webhook: {answer}");

    let created = setup.post_lead(json!({"LastName": "Opted", "Phone": "(415) 555-0177"})).await;
    let run = setup.finished_run(created["runs"][0].as_str().unwrap()).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("+14155550177 opted out"), "{fault}");
    assert!(setup.sandbox_requests().await.iter().all(|r| r["path"] != "/app/event"), "no text went out");
    let consent: Value = setup
        .client
        .get(format!("{}/api/v1/consent", setup.server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(consent["consent"][0]["status"], "opted_out", "{consent}");
    assert_eq!(consent["consent"][0]["source"], "inbound:Kixie_Events", "{consent}");
}
