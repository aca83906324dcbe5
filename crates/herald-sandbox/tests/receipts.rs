mod common;

use common::*;
use herald_sandbox::SandboxOptions;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

async fn webhook(address: SocketAddr, host: &str, url: &str, headers: Value) {
    let reply =
        put_json(address, &format!("/_sandbox/webhooks/{host}"), &json!({"url": url, "headers": headers}))
            .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn receipts(address: SocketAddr, config: Value) {
    let reply = put_json(address, "/_sandbox/receipts", &config).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn states(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.json()["payload"]["status"]["state"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn sms_receipts_go_to_the_account_webhook_with_its_static_headers() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "sms.8x8.com", &receiver.url("/hooks/8x8"), json!({"Authorization": "Bearer s3cret"}))
        .await;
    let text = "x".repeat(200);
    let answer = send_sms(
        address,
        &json!({"destination": "+6591234567", "text": text, "source": "ACME", "clientMessageId": "lead-1"}),
    )
    .await
    .json();
    let hits = receiver.wait_hits(2, WAIT).await;
    assert_eq!(states(&hits), ["sent", "delivered"]);
    for hit in &hits {
        assert_eq!(hit.path, "/hooks/8x8");
        assert_eq!(hit.header("authorization").as_deref(), Some("Bearer s3cret"));
        assert_eq!(hit.header("content-type").as_deref(), Some("application/json"));
        let body = hit.json();
        assert_eq!(
            (body["namespace"].as_str(), body["eventType"].as_str()),
            (Some("SMS"), Some("outbound_message_status_changed"))
        );
        let payload = &body["payload"];
        assert_eq!(payload["umid"], answer["umid"]);
        assert_eq!(payload["clientMessageId"], "lead-1");
        assert_eq!(payload["subAccountId"], "acme-01");
        assert_eq!(payload["source"], "ACME");
        assert_eq!(payload["destination"], "+6591234567");
        assert_eq!(payload["smsCount"], herald_sms::inspect(&text).segments);
        assert_eq!(payload["smsCount"], 2);
        assert_eq!(payload["price"]["currency"], "EUR");
        assert_eq!(payload["price"]["total"].as_f64(), Some(0.07));
        assert!(payload["status"]["errorCode"].is_null());
        assert!(
            chrono::DateTime::parse_from_rfc3339(payload["status"]["timestamp"].as_str().unwrap()).is_ok()
        );
    }
    assert_eq!(hits[0].json()["payload"]["status"]["detail"], "delivered_to_operator");
    assert_eq!(hits[1].json()["payload"]["status"]["detail"], "delivered_to_recipient");

    let log = get_json(address, "/_sandbox/receipts?host=sms.8x8.com").await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0]["event"].as_str(),
            log[0]["state"].as_str(),
            log[0]["attempt"].as_u64(),
            log[0]["answered_status"].as_u64()
        ),
        (Some("status"), Some("sent"), Some(1), Some(200))
    );
    assert_eq!(log[1]["body"], hits[1].json());
    assert_eq!(log[1]["message_id"], answer["umid"]);
    assert!(log[1]["error"].is_null());
}

#[tokio::test]
async fn a_dlr_callback_url_overrides_the_account_webhook_and_batches_carry_their_ids() {
    let (_, address) = start(SandboxOptions::default()).await;
    let account = Receiver::start(&[]).await;
    let per_message = Receiver::start(&[]).await;
    webhook(address, "sms.8x8.com", &account.url("/account"), json!({})).await;
    receipts(address, json!({"statuses": ["delivered"], "delay_ms": 0})).await;
    let batch = json!({"clientBatchId": "b-7", "template": {"dlrCallbackUrl": per_message.url("/dlr?t=1")},
                       "messages": [{"destination": "+6591234567", "text": "a"}]});
    let reply = post_json(
        address,
        &format!("{SMS_PATH}/batch"),
        &[("authorization", &format!("Bearer {KEY_8X8}"))],
        &batch,
    )
    .await
    .json();
    let hits = per_message.wait_hits(1, WAIT).await;
    assert_eq!(hits[0].query.as_deref(), Some("t=1"));
    let payload = hits[0].json()["payload"].clone();
    assert_eq!(
        (payload["batchId"].clone(), payload["clientBatchId"].clone()),
        (reply["batchId"].clone(), json!("b-7"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(account.hits().is_empty());
}

#[tokio::test]
async fn a_failed_receipt_is_retried_on_the_scaled_schedule() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[500, 503]).await;
    webhook(address, "sms.8x8.com", &receiver.url("/hooks"), json!({})).await;
    receipts(address, json!({"statuses": ["delivered"], "time_scale": 0.01, "delay_ms": 0})).await;
    send_sms(address, &json!({"destination": "+6591234567", "text": "Hi"})).await;
    let hits = receiver.wait_hits(3, WAIT).await;
    assert_eq!(hits[0].body, hits[2].body, "a retry posts the same receipt");
    // 1 s and 10 s scaled by 0.01.
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(10));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(100));
    let log = wait_for(WAIT, "three logged attempts", || {
        let log = sandbox.receipt_attempts();
        (log.len() >= 3).then_some(log)
    })
    .await;
    let attempts: Vec<(u32, Option<u16>)> = log.iter().map(|a| (a.attempt, a.answered_status)).collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.hits().len(), 3, "no retry after a 2xx");
}

#[tokio::test]
async fn delivery_gives_up_after_five_attempts_and_logs_connection_errors() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    webhook(address, "sms.8x8.com", &format!("http://{closed}/gone"), json!({})).await;
    receipts(address, json!({"statuses": ["delivered"], "time_scale": 0.001, "delay_ms": 0})).await;
    send_sms(address, &json!({"destination": "+6591234567", "text": "Hi"})).await;
    let log = wait_for(WAIT, "five attempts", || {
        let log = sandbox.receipt_attempts();
        (log.len() >= 5).then_some(log)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sandbox.receipt_attempts().len(), 5, "given up after 1 + 4 retries");
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(
        log.iter()
            .all(|a| a.answered_status.is_none()
                && a.error.as_deref().is_some_and(|e| e.starts_with("connect")))
    );
}

#[tokio::test]
async fn receipts_never_hold_up_the_answer() {
    let (_, address) = start(SandboxOptions::default()).await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    webhook(address, "sms.8x8.com", &format!("http://{silent_address}/"), json!({})).await;
    receipts(address, json!({"delay_ms": 0})).await;
    let started = Instant::now();
    for i in 0..5 {
        let reply = send_sms(address, &json!({"destination": "+6591234567", "text": format!("m{i}")})).await;
        assert_eq!(reply.status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn duplicate_and_reordered_receipts() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "sms.8x8.com", &receiver.url("/h"), json!({})).await;
    receipts(address, json!({"delay_ms": 0})).await;
    put_json(
        address,
        "/_sandbox/faults/sms.8x8.com",
        &json!({"duplicate_receipt_rate": 1.0, "reorder_receipts": true}),
    )
    .await;
    send_sms(address, &json!({"destination": "+6591234567", "text": "Hi"})).await;
    let hits = receiver.wait_hits(4, WAIT).await;
    assert_eq!(states(&hits), ["delivered", "delivered", "sent", "sent"]);
    assert_eq!(hits[0].body, hits[1].body, "a duplicate is the same receipt");
    let duplicates: Vec<bool> = sandbox.receipt_attempts().iter().map(|a| a.duplicate).collect();
    assert_eq!(duplicates, [false, true, false, true]);
}

#[tokio::test]
async fn undelivered_destinations_end_undelivered_with_an_error() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "sms.8x8.com", &receiver.url("/h"), json!({})).await;
    receipts(address, json!({"delay_ms": 0, "undelivered_destinations": ["+6590000000"]})).await;
    send_sms(address, &json!({"destination": "+6590000000", "text": "Hi"})).await;
    let hits = receiver.wait_hits(2, WAIT).await;
    assert_eq!(states(&hits), ["sent", "undelivered"]);
    let status = &hits[1].json()["payload"]["status"];
    assert!(status["errorCode"].as_u64().is_some() && status["errorMessage"].is_string(), "{status}");
}

#[tokio::test]
async fn chat_apps_receipts_have_the_chat_apps_shape() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "chatapps.8x8.uk", &receiver.url("/wa"), json!({"Authorization": "Bearer wa"})).await;
    receipts(address, json!({"delay_ms": 0, "statuses": ["sent", "delivered", "read"]})).await;
    let answer = post_json(
        address,
        "/chatapps.8x8.uk/api/v1/subaccounts/acme-01/messages",
        &[("authorization", &format!("Bearer {KEY_8X8}"))],
        &json!({"user": {"msisdn": "+447700900123"}, "type": "text", "content": {"text": "Hi"},
                "clientMessageId": "wa-1", "channels": [{"channel": "WhatsApp"}]}),
    )
    .await
    .json();
    let hits = receiver.wait_hits(3, WAIT).await;
    assert_eq!(states(&hits), ["sent", "delivered", "read"]);
    let body = hits[2].json();
    assert_eq!(
        (body["namespace"].as_str(), body["eventType"].as_str()),
        (Some("ChatApps"), Some("outbound_message_status_changed"))
    );
    let payload = &body["payload"];
    assert_eq!(payload["umid"], answer["umid"]);
    assert_eq!(payload["clientMessageId"], "wa-1");
    assert_eq!(payload["channel"], "WhatsApp");
    assert_eq!(payload["user"]["msisdn"], "+447700900123");
    assert_eq!(hits[0].header("authorization").as_deref(), Some("Bearer wa"));
}

#[tokio::test]
async fn kixie_posts_its_outgoing_event_without_the_apikey() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "apig.kixie.com", &receiver.url("/kixie?token=abc"), json!({})).await;
    let answer = post_json(
        address,
        "/apig.kixie.com/app/event",
        &[],
        &json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": "+14155550100",
                "eventname": "sms", "message": "Hello", "email": "rep@acme.test"}),
    )
    .await
    .json();
    let hits = receiver.wait_hits(1, WAIT).await;
    assert_eq!(hits[0].query.as_deref(), Some("token=abc"));
    assert!(!hits[0].body.contains("sandbox-apikey") && !hits[0].body.contains("apikey"));
    assert!(hits[0].header("authorization").is_none());
    let data = &hits[0].json()["data"];
    assert_eq!(data["messageid"], answer["data"]["messageid"]);
    assert_eq!(data["direction"], "outgoing");
    assert_eq!(
        (data["to"].as_str(), data["customernumber"].as_str()),
        (Some("+14155550100"), Some("+14155550100"))
    );
    assert_eq!(
        (data["from"].as_str(), data["businessnumber"].as_str()),
        (Some("+14155550123"), Some("+14155550123"))
    );
    assert_eq!((data["message"].as_str(), data["email"].as_str()), (Some("Hello"), Some("rep@acme.test")));
    assert_eq!(
        (data["businessid"].as_str(), data["userid"].as_str()),
        (Some("sandbox-business"), Some("1001"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.hits().len(), 1, "one event per message, no statuses");
}

/// Twilio's algorithm, written out again here so that the sandbox is checked against an independent copy.
fn expected_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let data: String =
        std::iter::once(url.to_string()).chain(sorted.iter().map(|(k, v)| format!("{k}{v}"))).collect();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_independent_signature_matches_the_published_vector() {
    let params: Vec<(String, String)> = [
        ("To", "+18005551212"),
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("Caller", "+12349013030"),
        ("From", "+12349013030"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(expected_signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert_eq!(herald_providers::twilio::signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

#[tokio::test]
async fn twilio_status_callbacks_are_signed_over_the_exact_url() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    receipts(address, json!({"delay_ms": 0, "undelivered_destinations": ["+14155550177"]})).await;
    let callback = receiver.url("/twilio/status?lead=42&x=a%20b");
    let ok = twilio_send(
        address,
        &[("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi"), ("StatusCallback", &callback)],
    )
    .await
    .json();
    let failed = twilio_send(
        address,
        &[("To", "+14155550177"), ("From", "+14155550001"), ("Body", "Hi"), ("StatusCallback", &callback)],
    )
    .await
    .json();
    let hits = receiver.wait_hits(4, WAIT).await;
    for hit in &hits {
        assert_eq!(hit.header("content-type").as_deref(), Some("application/x-www-form-urlencoded"));
        let params = hit.form();
        let signature = hit.header("x-twilio-signature").unwrap();
        assert_eq!(
            signature,
            expected_signature(herald_providers::twilio::emulator::DEFAULT_AUTH_TOKEN, &callback, &params)
        );
        assert_ne!(signature, expected_signature("wrong-token", &callback, &params));
        assert_eq!(hit.query.as_deref(), Some("lead=42&x=a%20b"));
    }
    let field = |hit: &Hit, name: &str| hit.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let of = |sid: &Value| -> Vec<Hit> {
        hits.iter().filter(|h| field(h, "MessageSid").as_deref() == sid.as_str()).cloned().collect()
    };
    let ok_hits = of(&ok["sid"]);
    assert_eq!(
        ok_hits.iter().map(|h| field(h, "MessageStatus").unwrap()).collect::<Vec<_>>(),
        ["sent", "delivered"]
    );
    assert_eq!(
        field(&ok_hits[0], "AccountSid").as_deref(),
        Some(herald_providers::twilio::emulator::DEFAULT_ACCOUNT_SID)
    );
    assert_eq!(field(&ok_hits[0], "From").as_deref(), Some("+14155550001"));
    assert_eq!(field(&ok_hits[0], "To").as_deref(), Some("+14155550100"));
    assert_eq!(field(&ok_hits[1], "ErrorCode"), None);
    let failed_hits = of(&failed["sid"]);
    assert_eq!(field(&failed_hits[1], "MessageStatus").as_deref(), Some("undelivered"));
    assert_eq!(field(&failed_hits[1], "ErrorCode").as_deref(), Some("30003"));
}

#[tokio::test]
async fn webhook_control_validates_and_lists() {
    let (_, address) = start(SandboxOptions::default()).await;
    let reply =
        put_json(address, "/_sandbox/webhooks/sms.8x8.com", &json!({"url": "https://herald.test/h"})).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("http://"));
    let reply = put_json(
        address,
        "/_sandbox/webhooks/sms.8x8.com",
        &json!({"url": "http://h.test/", "headers": {"X": "a\nb"}}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        put_json(address, "/_sandbox/webhooks/nowhere.test", &json!({"url": "http://h.test/"})).await.status,
        404
    );
    webhook(address, "sms.8x8.com", "http://h.test/a", json!({"Authorization": "Bearer z"})).await;
    assert_eq!(
        get_json(address, "/_sandbox/webhooks").await,
        json!({"sms.8x8.com": {"url": "http://h.test/a", "headers": {"Authorization": "Bearer z"}}})
    );
    assert_eq!(
        request(address, "DELETE", "/_sandbox/webhooks/sms.8x8.com", &[], b"").await.unwrap().status,
        204
    );
    assert_eq!(get_json(address, "/_sandbox/webhooks").await, json!({}));

    assert_eq!(put_json(address, "/_sandbox/receipts", &json!({"statuses": ["lost"]})).await.status, 400);
    assert_eq!(put_json(address, "/_sandbox/receipts", &json!({"time_scale": -1})).await.status, 400);
    receipts(address, json!({"time_scale": 0.5})).await;
    let config = get_json(address, "/_sandbox/receipts/config").await;
    assert_eq!(
        config,
        json!({"time_scale": 0.5, "statuses": ["sent", "delivered"], "undelivered_destinations": [], "delay_ms": 50})
    );
}
