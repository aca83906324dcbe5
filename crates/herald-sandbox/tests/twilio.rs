mod common;

use common::*;
use herald_providers::twilio::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioOptions};
use herald_sandbox::SandboxOptions;
use serde_json::{Value, json};
use std::net::SocketAddr;

const TO: &str = "+14155550100";
const FROM: &str = "+14155550001";

fn messages_path(sid: &str) -> String {
    format!("/api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json")
}

async fn send_as(address: SocketAddr, path_sid: &str, auth: Option<String>, form: &str) -> (u16, Value) {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    let reply = request(address, "POST", &messages_path(path_sid), &headers, form.as_bytes()).await.unwrap();
    (reply.status, reply.json())
}

fn assert_error(reply: (u16, Value), status: u16, code: u64) {
    let (got, body) = reply;
    assert_eq!((got, body["code"].as_u64()), (status, Some(code)), "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn send(address: SocketAddr, fields: &[(&str, &str)]) -> (u16, Value) {
    let reply = twilio_send(address, fields).await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn a_valid_message_is_a_201_message_resource() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let text = "ç".repeat(71);
    let (status, body) = send(address, &[("To", TO), ("From", FROM), ("Body", &text)]).await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap();
    assert!(
        sid.starts_with("SM") && sid.len() == 34 && sid[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{sid}"
    );
    assert_eq!(body["account_sid"], DEFAULT_ACCOUNT_SID);
    assert_eq!(
        (body["to"].as_str(), body["from"].as_str(), body["body"].as_str()),
        (Some(TO), Some(FROM), Some(text.as_str()))
    );
    assert_eq!(body["status"], "queued");
    assert_eq!(body["num_segments"], "2", "71 UCS-2 characters are two parts");
    assert_eq!(body["num_media"], "0");
    assert_eq!(body["direction"], "outbound-api");
    assert!(body["price"].is_null() && body["error_code"].is_null() && body["error_message"].is_null());
    assert!(body["messaging_service_sid"].is_null());
    assert_eq!(body["price_unit"], "USD");
    assert!(chrono::DateTime::parse_from_rfc2822(body["date_created"].as_str().unwrap()).is_ok());
    assert_eq!(body["uri"], format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{sid}.json"));

    // The form is recorded as a JSON object of its fields.
    let recorded = &sandbox.requests()[0];
    assert_eq!(recorded.body, json!({"To": TO, "From": FROM, "Body": text}));
    assert_eq!(recorded.status, 201);

    let (status, body) = send(
        address,
        &[("To", TO), ("MessagingServiceSid", "MG0000000000000000000000000000000a"), ("Body", "Hi")],
    )
    .await;
    assert_eq!(status, 201);
    assert!(body["from"].is_null());
    assert_eq!(body["messaging_service_sid"], "MG0000000000000000000000000000000a");
    assert_eq!(body["num_segments"], "1");
}

#[tokio::test]
async fn credentials_are_checked_first() {
    let twilio = TwilioOptions {
        accounts: vec![
            (DEFAULT_ACCOUNT_SID.into(), DEFAULT_AUTH_TOKEN.into()),
            ("AC2".into(), "token-2".into()),
        ],
        ..TwilioOptions::default()
    };
    let options = SandboxOptions::default().with_section("twilio", twilio).unwrap();
    let (sandbox, address) = start(options).await;
    let form = "To=%2B14155550100&From=%2B14155550001&Body=Hi";
    assert_error(send_as(address, DEFAULT_ACCOUNT_SID, None, form).await, 401, 20003);
    assert_error(
        send_as(address, DEFAULT_ACCOUNT_SID, Some(basic(DEFAULT_ACCOUNT_SID, "nope")), form).await,
        401,
        20003,
    );
    assert_error(
        send_as(address, DEFAULT_ACCOUNT_SID, Some(basic("AC2", "token-2")), form).await,
        401,
        20003,
    );
    assert_error(send_as(address, DEFAULT_ACCOUNT_SID, Some("Basic %%%".into()), form).await, 401, 20003);
    assert_error(
        send_as(address, DEFAULT_ACCOUNT_SID, Some(format!("Bearer {DEFAULT_AUTH_TOKEN}")), form).await,
        401,
        20003,
    );
    // Bad credentials win over a bad message.
    assert_error(send_as(address, DEFAULT_ACCOUNT_SID, None, "").await, 401, 20003);
    let (status, body) = send_as(address, "AC2", Some(basic("AC2", "token-2")), form).await;
    assert_eq!((status, body["account_sid"].as_str()), (201, Some("AC2")));
    assert_eq!(sandbox.messages().len(), 1);
}

#[tokio::test]
async fn message_errors_carry_twilio_codes() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    assert_error(send(address, &[("From", FROM), ("Body", "Hi")]).await, 400, 21604);
    assert_error(send(address, &[("To", TO), ("Body", "Hi")]).await, 400, 21603);
    assert_error(send(address, &[("To", TO), ("From", FROM)]).await, 400, 21602);
    assert_error(send(address, &[("To", TO), ("From", FROM), ("Body", "")]).await, 400, 21602);
    let long = "a".repeat(1601);
    assert_error(send(address, &[("To", TO), ("From", FROM), ("Body", &long)]).await, 400, 21617);
    assert_eq!(send(address, &[("To", TO), ("From", FROM), ("Body", &"a".repeat(1600))]).await.0, 201);
    for bad in ["4155550100", "+04155550100", "+1 415 555 0100", "+12345", "+1234567890123456"] {
        assert_error(send(address, &[("To", bad), ("From", FROM), ("Body", "Hi")]).await, 400, 21211);
    }
    assert_error(send(address, &[("To", "+14155550999"), ("From", FROM), ("Body", "Hi")]).await, 400, 21614);
    assert_eq!(sandbox.messages().len(), 1, "only the 1600-character message was accepted");
}

#[tokio::test]
async fn paths_methods_and_rates() {
    let twilio = TwilioOptions { rate_per_second: Some(1), ..TwilioOptions::default() };
    let options = SandboxOptions::default().with_section("twilio", twilio).unwrap();
    let (_, address) = start(options).await;
    let auth = basic(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN);
    let reply =
        request(address, "POST", "/api.twilio.com/2010-04-01/Calls.json", &[("authorization", &auth)], b"")
            .await
            .unwrap();
    assert_error((reply.status, reply.json()), 404, 20404);
    let reply =
        request(address, "GET", &messages_path(DEFAULT_ACCOUNT_SID), &[("authorization", &auth)], b"")
            .await
            .unwrap();
    assert_error((reply.status, reply.json()), 405, 20004);
    // Two sends within one second with a limit of 1/s: at least one is refused (a second boundary can
    // fall between them, so three are sent).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = twilio_send(address, &[("To", TO), ("From", FROM), ("Body", "Hi")]).await;
        if reply.status == 429 {
            assert_eq!(reply.headers.get("retry-after").map(String::as_str), Some("1"));
            assert_error((reply.status, reply.json()), 429, 20429);
        }
        statuses.push(reply.status);
    }
    assert!(statuses.contains(&201) && statuses.contains(&429), "{statuses:?}");
}
