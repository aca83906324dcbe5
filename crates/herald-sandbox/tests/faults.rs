mod common;

use common::*;
use herald_sandbox::SandboxOptions;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn sms_body(i: usize) -> Value {
    json!({"destination": "+6591234567", "text": format!("hello {i}"), "clientMessageId": format!("c{i}")})
}

async fn statuses_with_seed(seed: u64) -> Vec<u16> {
    let (_, address) = start(SandboxOptions::default()).await;
    let config = json!({"error_rate": 0.25, "rate_429": 0.25, "seed": seed});
    assert_eq!(put_json(address, "/_sandbox/faults/sms.8x8.com", &config).await.status, 200);
    let mut statuses = Vec::new();
    for i in 0..80 {
        statuses.push(send_sms(address, &sms_body(i)).await.status);
    }
    statuses
}

#[tokio::test]
async fn a_seed_makes_fault_rates_reproducible() {
    let first = statuses_with_seed(42).await;
    assert_eq!(first, statuses_with_seed(42).await, "same seed, same sequence");
    assert_ne!(first, statuses_with_seed(43).await, "another seed, another sequence");
    let count = |code: u16| first.iter().filter(|s| **s == code).count();
    // 80 draws at 25 % each: far outside these bounds only with a broken generator.
    for code in [500, 429] {
        assert!((8..=32).contains(&count(code)), "{code}: {} of 80", count(code));
    }
    assert_eq!(count(200) + count(500) + count(429), 80);
}

#[tokio::test]
async fn each_provider_fails_with_its_own_bodies() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    for host in ["sms.8x8.com", "apig.kixie.com", "api.twilio.com"] {
        put_json(address, &format!("/_sandbox/faults/{host}"), &json!({"error_rate": 1.0})).await;
    }
    let reply = send_sms(address, &sms_body(1)).await;
    assert_eq!((reply.status, reply.json()["code"].as_u64()), (500, Some(2000)));
    assert_eq!(reply.json()["errorId"].as_str().map(str::len), Some(36));

    let kixie = json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": "+14155550100",
                       "eventname": "sms", "message": "Hi"});
    let reply = post_json(address, "/apig.kixie.com/app/event", &[], &kixie).await;
    assert_eq!(
        (reply.status, reply.json()),
        (500, json!({"success": false, "error": "Internal server error"}))
    );

    let reply =
        twilio_send(address, &[("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi")]).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json(),
        json!({"code": 20500, "message": "Internal Server Error",
               "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500})
    );
    assert!(sandbox.messages().is_empty(), "a 500 accepts nothing");
    assert!(sandbox.requests().iter().all(|r| r.fault.as_deref() == Some("error") && r.status == 500));

    for host in ["sms.8x8.com", "apig.kixie.com", "api.twilio.com"] {
        let config = json!({"rate_429": 1.0, "retry_after_seconds": 7});
        put_json(address, &format!("/_sandbox/faults/{host}"), &config).await;
    }
    let reply = send_sms(address, &sms_body(2)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers.get("retry-after").map(String::as_str), Some("7"));
    assert_eq!(
        reply.json(),
        json!({"code": 429, "message": "Quota exceeded. Please try again in 7 second(s)."})
    );
    let reply = post_json(address, "/apig.kixie.com/app/event", &[], &kixie).await;
    assert_eq!((reply.status, reply.json()["success"].clone()), (429, json!(false)));
    assert_eq!(reply.headers.get("retry-after").map(String::as_str), Some("7"));
    let reply =
        twilio_send(address, &[("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi")]).await;
    assert_eq!((reply.status, reply.json()["code"].as_u64()), (429, Some(20429)));
    assert_eq!(reply.headers.get("retry-after").map(String::as_str), Some("7"));
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let (_, address) = start(SandboxOptions::default()).await;
    put_json(address, "/_sandbox/faults/sms.8x8.com", &json!({"latency_ms": [150, 200]})).await;
    let started = Instant::now();
    assert_eq!(send_sms(address, &sms_body(1)).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_timeout_holds_the_answer_but_the_message_is_accepted() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    put_json(address, "/_sandbox/faults/sms.8x8.com", &json!({"timeout_rate": 1.0, "hang_ms": 400})).await;
    // A client that gives up after 100 ms: it never learns the outcome.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), send_sms(address, &sms_body(1))).await;
    assert!(gave_up.is_err());
    let messages = sandbox.messages();
    assert_eq!(messages.len(), 1, "the provider has the message");
    assert_eq!(messages[0].client_message_id.as_deref(), Some("c1"));
    // A patient client gets the normal answer.
    let started = Instant::now();
    let reply = send_sms(address, &sms_body(2)).await;
    assert_eq!((reply.status, reply.json()["status"]["code"].as_str()), (200, Some("QUEUED")));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(sandbox.requests().iter().all(|r| r.fault.as_deref() == Some("timeout")));
}

#[tokio::test]
async fn a_reset_cuts_the_answer_after_the_message_was_accepted() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    for host in ["sms.8x8.com", "api.twilio.com", "apig.kixie.com"] {
        put_json(address, &format!("/_sandbox/faults/{host}"), &json!({"reset_rate": 1.0})).await;
    }
    let error = request(
        address,
        "POST",
        SMS_PATH,
        &[("authorization", &format!("Bearer {KEY_8X8}")), ("content-type", "application/json")],
        sms_body(1).to_string().as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(error.starts_with("connection closed after"), "{error}");
    let error = request(
        address,
        "POST",
        "/api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            (
                "authorization",
                &basic(
                    herald_providers::twilio::emulator::DEFAULT_ACCOUNT_SID,
                    herald_providers::twilio::emulator::DEFAULT_AUTH_TOKEN,
                ),
            ),
        ],
        b"To=%2B14155550100&From=%2B14155550001&Body=Hi",
    )
    .await
    .unwrap_err();
    assert!(error.starts_with("connection closed after"), "{error}");
    let kixie = json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": "+14155550100",
                       "eventname": "sms", "message": "Hi"});
    assert!(
        request(address, "POST", "/apig.kixie.com/app/event", &[], kixie.to_string().as_bytes())
            .await
            .is_err()
    );
    let providers: Vec<String> = sandbox.messages().into_iter().map(|m| m.provider).collect();
    assert_eq!(providers, ["8x8-sms", "twilio", "kixie"], "all three accepted what the client never saw");
    assert!(sandbox.requests().iter().all(|r| r.fault.as_deref() == Some("reset")));
    // The server survives the cut connections.
    assert_eq!(request(address, "GET", "/_sandbox/health", &[], b"").await.unwrap().body, "ok");
}

#[tokio::test]
async fn faults_are_listed_cleared_and_validated() {
    let (_, address) = start(SandboxOptions::default()).await;
    let reply =
        put_json(address, "/_sandbox/faults/SMS.8x8.UK", &json!({"error_rate": 0.5, "seed": 1})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["hang_ms"], 35000, "defaults are filled in");
    let listed = get_json(address, "/_sandbox/faults").await;
    assert_eq!(listed["sms.8x8.uk"]["error_rate"], 0.5);
    assert_eq!(listed["sms.8x8.uk"]["latency_ms"], json!([0, 0]));

    for (body, fragment) in [
        (json!({"error_rate": 2}), "error_rate"),
        (json!({"latency_ms": [9, 1]}), "latency_ms"),
        (json!({"eror_rate": 0.1}), "unknown field"),
        (json!({"latency_ms": "fast"}), "invalid"),
    ] {
        let reply = put_json(address, "/_sandbox/faults/sms.8x8.uk", &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.json()["error"].as_str().unwrap().contains(fragment), "{}", reply.body);
    }
    let reply = request(address, "PUT", "/_sandbox/faults/sms.8x8.uk", &[], b"{not json").await.unwrap();
    assert_eq!(reply.status, 400);
    let reply = put_json(address, "/_sandbox/faults/example.com", &json!({})).await;
    assert_eq!(reply.status, 404);

    let reply = request(address, "DELETE", "/_sandbox/faults/sms.8x8.uk", &[], b"").await.unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(get_json(address, "/_sandbox/faults").await, json!({}));
}

#[tokio::test]
async fn faults_can_be_configured_from_options() {
    let options: SandboxOptions =
        serde_json::from_value(json!({"faults": {"sms.8x8.com": {"error_rate": 1.0}}})).unwrap();
    options.validate().unwrap();
    let (_, address) = start(options).await;
    assert_eq!(send_sms(address, &sms_body(1)).await.status, 500);
    // Other hosts are untouched.
    let reply = post_json(
        address,
        "/sms.8x8.uk/api/v1/subaccounts/acme-01/messages",
        &[("authorization", &format!("Bearer {KEY_8X8}"))],
        &sms_body(2),
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_resend_after_a_reset_is_deduplicated_by_8x8() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    put_json(address, "/_sandbox/webhooks/sms.8x8.com", &json!({"url": receiver.url("/h")})).await;
    put_json(address, "/_sandbox/receipts", &json!({"delay_ms": 0})).await;
    put_json(address, "/_sandbox/faults/sms.8x8.com", &json!({"reset_rate": 1.0})).await;
    let body = sms_body(9).to_string();
    let auth = format!("Bearer {KEY_8X8}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    assert!(request(address, "POST", SMS_PATH, &headers, body.as_bytes()).await.is_err());
    request(address, "DELETE", "/_sandbox/faults/sms.8x8.com", &[], b"").await.unwrap();
    let retry = send_sms(address, &sms_body(9)).await.json();
    let messages = sandbox.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].id.as_str(), messages[0].submissions), (retry["umid"].as_str().unwrap(), 2));
    let hits = receiver.wait_hits(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.hits().len(), 2, "receipts of one message only: {hits:?}");
}
