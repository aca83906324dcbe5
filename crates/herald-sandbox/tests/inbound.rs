mod common;

use common::*;
use herald_sandbox::SandboxOptions;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

async fn webhook(address: SocketAddr, host: &str, url: &str, headers: Value) {
    let reply =
        put_json(address, &format!("/_sandbox/webhooks/{host}"), &json!({"url": url, "headers": headers}))
            .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn inbound(address: SocketAddr, body: Value) -> Reply {
    post_json(address, "/_sandbox/inbound", &[], &body).await
}

#[tokio::test]
async fn eight_by_eight_sms_posts_inbound_message_received() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "sms.8x8.com", &receiver.url("/in"), json!({"Authorization": "Bearer s"})).await;
    let reply = inbound(
        address,
        json!({"host": "sms.8x8.com", "from": "+6591234567", "to": "ACME", "text": "Hello 👋", "subaccount": "acme-01"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["answered"], 200);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "the answer waits for the delivery");
    assert_eq!(hits[0].json(), answer["posted"]);
    assert_eq!(hits[0].header("authorization").as_deref(), Some("Bearer s"));
    let body = hits[0].json();
    assert_eq!(
        (body["namespace"].as_str(), body["eventType"].as_str()),
        (Some("SMS"), Some("inbound_message_received"))
    );
    let payload = &body["payload"];
    assert_eq!(payload["subAccountId"], "acme-01");
    assert_eq!(
        (payload["source"].as_str(), payload["destination"].as_str()),
        (Some("+6591234567"), Some("ACME"))
    );
    assert_eq!((payload["body"].as_str(), payload["encoding"].as_str()), (Some("Hello 👋"), Some("UCS2")));
    assert_eq!(payload["smsCount"], 1);
    assert_eq!(payload["umid"].as_str().map(str::len), Some(36));
    assert!(payload["price"].is_object() && payload["timestamp"].is_string());
}

#[tokio::test]
async fn chat_apps_and_kixie_inbound_shapes() {
    let (_, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    webhook(address, "chatapps.8x8.com", &receiver.url("/wa"), json!({})).await;
    webhook(address, "apig.kixie.com", &receiver.url("/kixie?token=t"), json!({})).await;
    let wa = inbound(
        address,
        json!({"host": "chatapps.8x8.com", "from": "+6591234567", "to": "acme-wa", "text": "hi"}),
    )
    .await;
    assert_eq!(wa.json()["answered"], 200);
    let payload = wa.json()["posted"]["payload"].clone();
    assert_eq!(wa.json()["posted"]["namespace"], "ChatApps");
    assert_eq!(wa.json()["posted"]["eventType"], "inbound_message_received");
    assert_eq!(payload["user"]["msisdn"], "+6591234567");
    assert_eq!(payload["recipient"], json!({"channel": "WhatsApp", "channelId": "acme-wa"}));
    assert_eq!((payload["type"].as_str(), payload["content"]["text"].as_str()), (Some("text"), Some("hi")));

    let kixie = inbound(
        address,
        json!({"host": "apig.kixie.com", "from": "+14155550100", "to": "+14155550123", "text": "yes"}),
    )
    .await;
    assert_eq!(kixie.json()["answered"], 200);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].query.as_deref(), Some("token=t"));
    let data = &hits[1].json()["data"];
    assert_eq!(data["direction"], "incoming");
    assert_eq!(
        (data["from"].as_str(), data["customernumber"].as_str()),
        (Some("+14155550100"), Some("+14155550100"))
    );
    assert_eq!(
        (data["to"].as_str(), data["businessnumber"].as_str()),
        (Some("+14155550123"), Some("+14155550123"))
    );
    assert_eq!(
        (data["message"].as_str(), data["businessid"].as_str()),
        (Some("yes"), Some("sandbox-business"))
    );
    assert!(!hits[1].body.contains("apikey"));
}

#[tokio::test]
async fn twilio_stop_opts_out_and_start_opts_back_in() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("/twilio/in");
    webhook(address, "api.twilio.com", &url, json!({})).await;
    let fields = [("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi")];
    assert_eq!(twilio_send(address, &fields).await.status, 201);

    let reply = inbound(
        address,
        json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": " stop "}),
    )
    .await;
    assert_eq!(reply.json()["answered"], 200);
    let hit = &receiver.hits()[0];
    let params = hit.form();
    let field = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(
        (field("From"), field("To"), field("Body")),
        (Some("+14155550100"), Some("+14155550001"), Some(" stop "))
    );
    assert_eq!(field("SmsStatus"), Some("received"));
    assert_eq!(field("AccountSid"), Some(herald_providers::twilio::emulator::DEFAULT_ACCOUNT_SID));
    assert!(field("MessageSid").is_some_and(|s| s.starts_with("SM") && s.len() == 34));
    let signature = hit.header("x-twilio-signature").unwrap();
    assert_eq!(
        signature,
        herald_providers::twilio::signature(
            herald_providers::twilio::emulator::DEFAULT_AUTH_TOKEN,
            &url,
            &params
        )
    );
    assert_eq!(reply.json()["posted"]["Body"], " stop ");

    assert!(sandbox.opted_out("+14155550001", "+14155550100"));
    assert_eq!(
        get_json(address, "/_sandbox/optouts").await,
        json!([{"sender": "+14155550001", "phone": "+14155550100"}])
    );
    let refused = twilio_send(address, &fields).await;
    assert_eq!((refused.status, refused.json()["code"].as_u64()), (400, Some(21610)));
    // Another sender is not affected.
    let other = [("To", "+14155550100"), ("From", "+14155550002"), ("Body", "Hi")];
    assert_eq!(twilio_send(address, &other).await.status, 201);
    // Not a keyword: a sentence with STOP in it.
    inbound(address, json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550002", "text": "please stop it"})).await;
    assert_eq!(twilio_send(address, &other).await.status, 201);

    inbound(
        address,
        json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": "Unstop"}),
    )
    .await;
    assert!(!sandbox.opted_out("+14155550001", "+14155550100"));
    assert_eq!(twilio_send(address, &fields).await.status, 201);

    for word in ["STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout"] {
        inbound(
            address,
            json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": word}),
        )
        .await;
        assert!(sandbox.opted_out("+14155550001", "+14155550100"), "{word}");
        inbound(
            address,
            json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": "start"}),
        )
        .await;
        assert!(!sandbox.opted_out("+14155550001", "+14155550100"));
    }
    assert_eq!(request(address, "DELETE", "/_sandbox/optouts", &[], b"").await.unwrap().status, 204);
}

#[tokio::test]
async fn inbound_reports_a_failed_delivery_and_retries_it() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let receiver = Receiver::start(&[500]).await;
    webhook(address, "sms.us.8x8.com", &receiver.url("/in"), json!({})).await;
    put_json(address, "/_sandbox/receipts", &json!({"time_scale": 0.001})).await;
    let reply = inbound(
        address,
        json!({"host": "sms.us.8x8.com", "from": "+14155550100", "to": "+14155550001", "text": "hi"}),
    )
    .await;
    assert_eq!((reply.status, reply.json()["answered"].as_u64()), (200, Some(500)));
    let hits = receiver.wait_hits(2, Duration::from_secs(5)).await;
    assert_eq!(hits[0].body, hits[1].body);
    let log = sandbox.receipt_attempts();
    assert_eq!(log[0].event, "inbound");
    assert_eq!((log[0].attempt, log[0].answered_status), (1, Some(500)));
}

#[tokio::test]
async fn inbound_refuses_what_it_cannot_post() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let reply =
        inbound(address, json!({"host": "sms.8x8.com", "from": "+6591234567", "to": "ACME", "text": "hi"}))
            .await;
    assert_eq!(reply.status, 409);
    assert!(reply.json()["error"].as_str().unwrap().contains("PUT /_sandbox/webhooks/sms.8x8.com"));
    let reply =
        inbound(address, json!({"host": "example.com", "from": "+1", "to": "+2", "text": "hi"})).await;
    assert_eq!(reply.status, 404);
    let reply =
        inbound(address, json!({"host": "sms.8x8.com", "from": "", "to": "ACME", "text": "hi"})).await;
    assert_eq!(reply.status, 400);
    let reply = inbound(address, json!({"host": "sms.8x8.com", "to": "ACME", "text": "hi"})).await;
    assert_eq!(reply.status, 400);
    let reply = request(address, "POST", "/_sandbox/inbound", &[], b"\xff\xfe").await.unwrap();
    assert_eq!(reply.status, 400);
    // Twilio acts on STOP and START itself: with no webhook to tell, the request still succeeds and
    // says what it changed; any other text has nowhere to go.
    let reply = inbound(
        address,
        json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": "STOP"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"posted": null, "answered": null, "error": null,
               "opt_out": {"sender": "+14155550001", "phone": "+14155550100", "opted_out": true}})
    );
    assert!(sandbox.opted_out("+14155550001", "+14155550100"));
    let reply = inbound(
        address,
        json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": "start"}),
    )
    .await;
    assert_eq!((reply.status, reply.json()["opt_out"]["opted_out"].as_bool()), (200, Some(false)));
    assert!(!sandbox.opted_out("+14155550001", "+14155550100"));
    let reply = inbound(
        address,
        json!({"host": "api.twilio.com", "from": "+14155550100", "to": "+14155550001", "text": "hello"}),
    )
    .await;
    assert_eq!(reply.status, 409);
    assert!(reply.json()["error"].as_str().unwrap().contains("PUT /_sandbox/webhooks/api.twilio.com"));
}
