//! examples/twilio-sms end to end: `herald sandbox` emulating Twilio and `herald serve` as processes.
//! The External Service built from Twilio's own OpenAPI file sends a form-encoded request with HTTP
//! Basic auth; Twilio's signed status callbacks move the message ledger to `delivered`; forged
//! callbacks are refused; a landline (21614) and an opted-out phone (21610) take the fault path, and
//! after a 21610 or an inbound STOP herald refuses the phone before any callout.

mod common;

use common::*;
use herald_providers::twilio::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use herald_providers::twilio::signature as twilio_signature;
use serde_json::{Value, json};
use std::time::Duration;

/// The sender the example's flow texts from.
const OUR_NUMBER: &str = "+14155550123";
/// A number the emulated Twilio knows as a landline (21614).
const LANDLINE: &str = "+14155550999";
const WAIT: Duration = Duration::from_secs(20);

/// Base64 (standard alphabet, padded), to build the Basic header herald must send.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic_header() -> String {
    format!("Basic {}", base64(format!("{DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}").as_bytes()))
}

/// The example against the sandbox's Twilio account, its StatusCallback pointing at herald.
struct Twilio {
    h: Harness,
    /// herald's status callback URL, which the flow sends with every message.
    callback: String,
}

impl std::ops::Deref for Twilio {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.h
    }
}

async fn start() -> Twilio {
    // herald must listen where the flow's StatusCallback says, so the port is chosen before it starts.
    let listen = format!("127.0.0.1:{}", free_port());
    let callback = format!("http://{listen}/webhooks/Twilio_Status");
    let status_callback = format!("StatusCallback: {callback}");
    let h = Harness::example("twilio-sms")
        .sandbox_account()
        .project_edit(move |p| {
            let original = "StatusCallback: http://127.0.0.1:8080/webhooks/Twilio_Status";
            p.replace("flows/Lead_Welcome_SMS_Twilio.yaml", original, &status_callback);
        })
        .listen(&listen)
        // At its most verbose, so the secret check covers every log line.
        .server_env("HERALD_LOG", "trace")
        .start();
    let (code, stdout, stderr) = herald(&["flow", "validate", h.project().to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(h.server_url(), format!("http://{listen}"), "{}", h.server_output());
    // Receipts at once, through every status Twilio reports for a delivered SMS.
    let receipts = json!({"delay_ms": 0, "time_scale": 0.001, "statuses": ["queued", "sent", "delivered"]});
    h.sandbox_put("/_sandbox/receipts", &receipts).await;
    Twilio { h, callback }
}

impl Twilio {
    /// What the emulated Twilio received.
    async fn received(&self) -> Vec<Value> {
        serde_json::from_value(self.sandbox_get("/_sandbox/requests?host=api.twilio.com").await).unwrap()
    }

    async fn messages_of(&self, run_id: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/messages?runId={run_id}")).await;
        list["messages"].as_array().cloned().unwrap_or_default()
    }

    async fn receipts(&self) -> Vec<Value> {
        self.get("/api/v1/receipts").await["receipts"].as_array().cloned().unwrap_or_default()
    }

    async fn consent(&self) -> Vec<Value> {
        self.get("/api/v1/consent").await["consent"].as_array().cloned().unwrap_or_default()
    }

    /// Posts a status callback with the given form body and signature header to herald's webhook.
    async fn callback(&self, body: &[(String, String)], signature: Option<&str>) -> (u16, String) {
        let form = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>();
        let mut request = self.plain().post(&self.callback).form(&form);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.keep("webhook answer", &text);
        (status, text)
    }

    /// The Task a run's fault path created.
    async fn task_of(&self, run: &Value) -> Value {
        let id = run["trace"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|entry| entry["outputs"]["Id"].as_str())
            .unwrap_or_else(|| panic!("no Task in {run}"))
            .to_string();
        self.get(&format!("/api/v1/records/Task/{id}")).await
    }

    /// Nothing the test read from herald, and nothing herald printed, holds the auth token or the Basic
    /// header built from it.
    fn assert_no_secret(&self) {
        let basic = basic_header();
        self.h.assert_no_secret(&[DEFAULT_AUTH_TOKEN, basic.trim_start_matches("Basic ")]);
    }
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn a_lead_is_texted_through_twilio_and_the_signed_callbacks_deliver_it() {
    let t = start().await;
    let run = t.lead_run(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["trace"][0]["element"], "Send_SMS", "{run}");
    assert_eq!(run["trace"][0]["outputs"]["responseCode"], 201, "{run}");
    assert_eq!(run["trace"][1]["element"], "Keep_Message_Sid", "{run}");

    // The request as Twilio got it: form-encoded, HTTP Basic, the fields the flow set and no others.
    let received = t.received().await;
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"));
    assert_eq!(request["status"], 201);
    let content_type = request["headers"]["content-type"].as_str().unwrap_or_default();
    assert!(content_type.starts_with("application/x-www-form-urlencoded"), "{request}");
    assert_eq!(request["headers"]["authorization"], basic_header());
    assert_eq!(
        request["body"],
        json!({
            "To": "+14155550100",
            "From": OUR_NUMBER,
            "Body": "Hi Ada, thanks for reaching out! Reply STOP to opt out.",
            "StatusCallback": t.callback,
        })
    );

    // The typed 201 answer gives the flow Twilio's sid; the ledger keeps it too.
    let answered: Value =
        serde_json::from_str(run["trace"][0]["outputs"]["responseBody"].as_str().unwrap()).unwrap();
    let sid = answered["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(run["trace"][1]["outputs"]["messageSid"], sid.as_str(), "{run}");
    let run_id = run["id"].as_str().unwrap();
    let messages = t.messages_of(run_id).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["provider"], "twilio");
    assert_eq!(message["destination"], "+14155550100");
    assert_eq!(message["provider_message_id"], sid.as_str());

    // queued, sent, delivered: each a signed form post to the StatusCallback, each accepted.
    let delivered = t
        .eventually("the message delivered", WAIT, || async {
            let messages = t.messages_of(run_id).await;
            let message = messages.first()?.clone();
            (message["status"] == "delivered").then_some(message)
        })
        .await;
    let history: Vec<&str> =
        delivered["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    for status in ["queued", "sent", "delivered"] {
        assert!(history.contains(&status), "{status} missing from {history:?}");
    }
    let attempts: Vec<Value> = t
        .eventually("three callback attempts", WAIT, || async {
            let url = format!("{}/_sandbox/receipts?host=api.twilio.com", t.sandbox_url());
            let attempts: Vec<Value> = t.plain().get(url).send().await.ok()?.json().await.ok()?;
            (attempts.len() >= 3).then_some(attempts)
        })
        .await;
    for attempt in &attempts {
        assert_eq!(attempt["answered_status"], 200, "herald refused a genuine callback: {attempt}");
        assert_eq!(attempt["url"], t.callback.as_str());
    }
    let receipts_before = t.receipts().await;
    assert!(receipts_before.len() >= 3, "{receipts_before:?}");

    // Forgeries: a read receipt would move the message on if herald believed it.
    let read = form(&[
        ("MessageSid", &sid),
        ("SmsSid", &sid),
        ("MessageStatus", "read"),
        ("SmsStatus", "read"),
        ("AccountSid", DEFAULT_ACCOUNT_SID),
        ("From", OUR_NUMBER),
        ("To", "+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ]);
    let wrong_key = twilio_signature("not-the-auth-token", &t.callback, &read);
    let (status, body) = t.callback(&read, Some(&wrong_key)).await;
    assert_eq!(status, 401, "signed with another token: {body}");
    assert!(body.contains("X-Twilio-Signature does not match"), "{body}");
    let (status, body) = t.callback(&read, None).await;
    assert_eq!(status, 401, "unsigned: {body}");
    // Signed correctly for a `delivered` receipt, then the status changed in transit.
    let genuine = read
        .iter()
        .map(|(k, v)| (k.clone(), if v == "read" { "delivered".to_string() } else { v.clone() }))
        .collect::<Vec<_>>();
    let signature = twilio_signature(DEFAULT_AUTH_TOKEN, &t.callback, &genuine);
    let (status, body) = t.callback(&read, Some(&signature)).await;
    assert_eq!(status, 401, "a body changed after signing: {body}");
    // Signed for another URL (what a mismatched public_url looks like).
    let elsewhere =
        twilio_signature(DEFAULT_AUTH_TOKEN, "https://herald.example.com/webhooks/Twilio_Status", &read);
    let (status, body) = t.callback(&read, Some(&elsewhere)).await;
    assert_eq!(status, 401, "signed for another URL: {body}");

    let after = &t.messages_of(run_id).await[0];
    assert_eq!(after["status"], "delivered", "a forged callback changed the message: {after}");
    assert_eq!(after["history"], delivered["history"], "a forged callback reached the history");
    assert_eq!(t.receipts().await.len(), receipts_before.len(), "a forged callback was kept");

    // The genuine form of the same receipt is accepted: it is a repeat, so it changes nothing either.
    let (status, body) = t.callback(&genuine, Some(&signature)).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((report["matched"].as_u64(), report["applied"].as_u64()), (Some(1), Some(0)), "{report}");
    assert_eq!(t.messages_of(run_id).await[0]["status"], "delivered");

    t.assert_no_secret();
}

#[tokio::test]
async fn a_landline_is_a_clear_21614_fault_and_the_fault_path_logs_a_task() {
    let t = start().await;
    let run = t.lead_run(json!({"FirstName": "Lin", "LastName": "Land", "Phone": LANDLINE})).await;
    assert_eq!(run["status"], "finished", "the fault path completes: {run}");
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("TwilioMessaging.CreateMessage"), "{fault}");
    assert!(fault.contains("Twilio error 21614"), "{fault}");
    assert!(fault.contains("not a mobile number"), "{fault}");
    assert_eq!(run["trace"][1]["element"], "Log_SMS_Failure", "{run}");
    let task = t.task_of(&run).await;
    let subject = task["Subject"].as_str().unwrap();
    assert!(subject.starts_with("SMS failed: ") && subject.contains("21614"), "{task}");
    assert_eq!(task["WhoId"], run["recordId"]);
    assert_eq!(task["Priority"], "High");
    let received = t.received().await;
    assert_eq!(received.len(), 1, "a permanent error is not retried: {received:?}");
    assert_eq!(received[0]["status"], 400);
    let messages = t.messages_of(run["id"].as_str().unwrap()).await;
    assert_eq!(messages[0]["status"], "failed", "{messages:?}");
    assert_eq!(messages[0]["error_code"], "21614", "{messages:?}");

    t.assert_no_secret();
}

#[tokio::test]
async fn a_stop_makes_twilio_refuse_with_21610_and_then_herald_refuses_before_any_callout() {
    let t = start().await;
    let phone = "+14155550111";
    // The phone texts STOP to our number. Twilio's inbound webhook is not pointed at herald here, so
    // only Twilio knows: nothing is posted, and the sandbox says what Twilio recorded.
    let stop = json!({"host": "api.twilio.com", "from": phone, "to": OUR_NUMBER, "text": "STOP"});
    let answer =
        t.plain().post(format!("{}/_sandbox/inbound", t.sandbox_url())).json(&stop).send().await.unwrap();
    assert_eq!(answer.status(), 200, "the STOP step of examples/twilio-sms/README.md");
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["posted"], Value::Null, "{answer}");
    assert_eq!(answer["opt_out"], json!({"sender": OUR_NUMBER, "phone": phone, "opted_out": true}));
    let opted_out: Vec<Value> = serde_json::from_value(t.sandbox_get("/_sandbox/optouts").await).unwrap();
    assert_eq!(opted_out, vec![json!({"sender": OUR_NUMBER, "phone": phone})]);

    let run = t.lead_run(json!({"FirstName": "Sam", "LastName": "Stop", "Phone": phone})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("Twilio error 21610"), "{fault}");
    assert!(fault.contains("opted out"), "{fault}");
    let task = t.task_of(&run).await;
    assert!(task["Subject"].as_str().unwrap().contains("21610"), "{task}");
    let sent = t.received().await.len();
    assert_eq!(sent, 1);
    let messages = t.messages_of(run["id"].as_str().unwrap()).await;
    assert_eq!(messages[0]["status"], "failed", "{messages:?}");
    assert_eq!(messages[0]["error_code"], "21610", "{messages:?}");
    // herald keeps what Twilio said.
    let consent = t.consent().await;
    assert!(
        consent.iter().any(|c| c["phone"] == phone && c["status"] == "opted_out"),
        "no opt-out recorded: {consent:?}"
    );

    // A second lead with the same phone: refused by herald, nothing reaches Twilio.
    let again = t.lead_run(json!({"FirstName": "Sam", "LastName": "Again", "Phone": phone})).await;
    assert_eq!(again["status"], "finished", "{again}");
    let fault = again["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{again}"));
    assert!(fault.contains("was not sent") && fault.contains("opted out"), "{fault}");
    assert!(t.task_of(&again).await["Subject"].as_str().unwrap().contains("opted out"));
    assert_eq!(t.received().await.len(), sent, "herald called Twilio for an opted-out phone");

    t.assert_no_secret();
}

#[tokio::test]
async fn an_inbound_stop_posted_to_herald_is_honoured_before_twilio_is_asked() {
    let t = start().await;
    let phone = "+14155550122";
    // Twilio's inbound webhook for our number points at herald's endpoint this time.
    let target = json!({"url": t.callback});
    t.sandbox_put("/_sandbox/webhooks/api.twilio.com", &target).await;
    let stop = json!({"host": "api.twilio.com", "from": phone, "to": OUR_NUMBER, "text": "stop"});
    let answer = t.sandbox_post("/_sandbox/inbound", &stop).await;
    assert_eq!(answer["answered"], 200, "herald refused Twilio's signed inbound post: {answer}");
    let consent = t.consent().await;
    let row = consent.iter().find(|c| c["phone"] == phone).unwrap_or_else(|| panic!("{consent:?}"));
    assert_eq!(row["status"], "opted_out");
    assert_eq!(row["source"], "inbound:Twilio_Status");

    let run = t.lead_run(json!({"LastName": "Quiet", "Phone": phone})).await;
    assert_eq!(run["status"], "finished", "{run}");
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("was not sent") && fault.contains("opted out"), "{fault}");
    assert!(t.received().await.is_empty(), "nothing may reach Twilio");

    t.assert_no_secret();
}

#[test]
fn the_trimmed_twilio_spec_imports_with_a_form_body_and_the_201_answer() {
    let (code, stdout, stderr) =
        herald(&["service", "show", example("twilio-sms").to_str().unwrap(), "TwilioMessaging"], "");
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "action TwilioMessaging.CreateMessage: POST /2010-04-01/Accounts/{AccountSid}/Messages.json",
        "AccountSid (path): Text, required",
        "body (application/x-www-form-urlencoded): ExternalService__TwilioMessaging_CreateMessage_IN_body",
        "201: ExternalService__TwilioMessaging_apix2ev2010x2eaccountx2emessage",
        "StatusCallback: Text, format uri",
    ] {
        assert!(stdout.contains(expected), "{expected} missing from {stdout}");
    }
    let (code, stdout, stderr) = herald(&["flow", "validate", example("twilio-sms").to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
}
