use super::codes::SUBMIT_CODES;
use super::*;
use serde_json::json;

fn refused(code: &str, text: &str) -> Vec<u8> {
    json!({"message-count": "1", "messages": [{"status": code, "error-text": text}]}).to_string().into_bytes()
}

const OK: &str = r#"{"message-count":"1","messages":[{"to":"447700900000","message-id":"0A0000000123ABCD1",
    "status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"12345",
    "client-ref":"hrld-1"}]}"#;

fn one(body: &str) -> WebhookEvent {
    let mut events = Vonage.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn err(body: &str) -> String {
    Vonage.parse_webhook(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn a_status_0_answer_is_a_success_and_any_other_is_a_failure_inside_the_200() {
    assert_eq!(Vonage.interpret(200, OK.as_bytes()), Verdict::Success);
    let Verdict::Failure { reason } = Vonage.interpret(200, &refused("4", "Bad Credentials")) else {
        panic!("status 4 must fail")
    };
    assert!(reason.starts_with("HTTP 200 but Vonage refused the message: status 4 (Invalid Credentials): Bad Credentials; the api_key or api_secret"), "{reason}");
    assert!(reason.contains("herald credential set"), "the fix is named: {reason}");
    assert!(matches!(Vonage.interpret(200, b"{}"), Verdict::Failure { .. }));
    assert!(matches!(Vonage.interpret(200, br#"{"messages":[]}"#), Verdict::Failure { .. }));
    assert!(matches!(Vonage.interpret(200, b"<mt-submission-response/>"), Verdict::Failure { .. }));
    assert_eq!(
        Vonage.interpret(500, &refused("5", "Internal Error")),
        Verdict::Failure {
            reason: "HTTP 500, Vonage status 5 (Internal Error): Internal Error; a fault of Vonage's platform; herald retries".into()
        }
    );
    assert_eq!(Vonage.interpret(502, b"Bad Gateway"), Verdict::Failure { reason: "HTTP 502".into() });
    // One refused part refuses the send.
    let mixed = r#"{"message-count":"2","messages":[{"status":"0","message-id":"A"},{"status":"9","error-text":"Quota Exceeded"}]}"#;
    assert!(matches!(Vonage.interpret(200, mixed.as_bytes()), Verdict::Failure { .. }));
    assert_eq!(Vonage.error_code(mixed.as_bytes()).as_deref(), Some("9"));
}

#[test]
fn each_documented_status_has_its_class() {
    let class = |code: &str| Vonage.failure_class(Some(200), &refused(code, "x"));
    for retried in ["1", "5", "10"] {
        assert_eq!(class(retried), FailureClass::Retryable, "{retried}");
    }
    assert_eq!(class("7"), FailureClass::OptedOut);
    assert_eq!(class("33"), FailureClass::InvalidDestination);
    for permanent in ["2", "3", "4", "6", "8", "9", "11", "12", "14", "15", "22", "23", "29", "32"] {
        assert_eq!(class(permanent), FailureClass::Permanent, "{permanent}");
    }
    // An undocumented status under a 200 was sent: it is not repeated.
    assert_eq!(class("99"), FailureClass::Permanent);
    assert_eq!(Vonage.failure_class(Some(503), b""), FailureClass::Retryable);
    assert_eq!(Vonage.failure_class(None, b""), FailureClass::Retryable);
    assert_eq!(SUBMIT_CODES.len(), 19, "every code of the spec's x-errors");
    assert_eq!(Vonage.error_code(&refused("4", "Bad Credentials")).as_deref(), Some("4"));
    assert_eq!(Vonage.error_code(OK.as_bytes()), None);
}

#[test]
fn the_codes_table_is_the_spec_s_x_errors() {
    let spec: Value = serde_json::from_str(
        crate::specs::published("vonage-sms").next().expect("Vonage's spec is shipped").text,
    )
    .unwrap();
    let documented: Vec<u32> =
        spec["x-errors"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect::<Vec<_>>();
    let mut ours: Vec<u32> = SUBMIT_CODES.iter().map(|c| c.code).collect();
    let mut documented = documented;
    documented.sort();
    ours.sort();
    assert_eq!(ours, documented);
    for code in SUBMIT_CODES {
        let description = spec["x-errors"][code.code.to_string()]["description"].as_str().unwrap();
        assert!(description.starts_with(code.name), "{}: {} vs {description}", code.code, code.name);
    }
}

#[test]
fn reads_a_send_as_one_sms_to_a_phone_with_its_reference() {
    let body = json!({"api_key": "k", "api_secret": "s", "from": "14155550123", "to": "14155550100",
                      "text": "Hi", "client-ref": "hrld-1"});
    let expected = vec![OutboundMessage {
        destination: "14155550100".into(),
        sender: Some("+14155550123".into()),
        text: Some("Hi".into()),
        channel: "sms".into(),
        client_message_id: Some("hrld-1".into()),
    }];
    assert_eq!(Vonage.outbound_messages("POST", "/json", &body), expected);
    assert_eq!(Vonage.outbound_messages("POST", "/sms/json", &body), expected);
    assert_eq!(Vonage.outbound_messages("POST", "/sms/xml", &body), vec![]);
    assert_eq!(Vonage.outbound_messages("GET", "/sms/json", &body), vec![]);
    let alphanumeric = json!({"from": "Acme Inc", "to": "14155550100", "text": "Hi"});
    assert_eq!(
        Vonage.outbound_messages("POST", "/json", &alphanumeric)[0].sender.as_deref(),
        Some("Acme Inc")
    );
}

#[test]
fn the_destination_is_written_as_e164_digits_without_the_plus() {
    let message = Vonage.outbound_messages("POST", "/json", &json!({"to": "(415) 555-0100"})).remove(0);
    assert!(Vonage.destination_is_phone(&message));
    let mut body = json!({"to": "(415) 555-0100", "text": "Hi"});
    Vonage.rewrite_single(&mut body, &OutboundMessage { destination: "+14155550100".into(), ..message });
    assert_eq!(body["to"], "14155550100");
}

#[test]
fn herald_s_key_goes_in_client_ref_on_every_send_but_no_resend_is_claimed() {
    let mut body = json!({"to": "14155550100", "text": "Hi"});
    assert_eq!(Vonage.place_idempotency_key(&mut body, "hrld-abc").as_deref(), Some("hrld-abc"));
    assert_eq!(body["client-ref"], "hrld-abc");
    assert!(!Vonage.recognises_resend(&body), "Vonage deduplicates nothing");
    let mut own = json!({"to": "14155550100", "client-ref": "mine"});
    assert_eq!(Vonage.place_idempotency_key(&mut own, "hrld-abc"), None);
    assert_eq!(own["client-ref"], "mine", "a reference the flow set is kept");
    let long = "k".repeat(150);
    let mut body = json!({});
    assert_eq!(Vonage.place_idempotency_key(&mut body, &long).map(|k| k.len()), Some(100));
}

#[test]
fn reads_the_accepted_message_its_parts_and_price() {
    let accepted = Vonage.accepted(OK.as_bytes());
    assert_eq!(
        accepted,
        vec![Accepted {
            provider_message_id: Some("0A0000000123ABCD1".into()),
            client_message_id: Some("hrld-1".into()),
            status: MessageStatus::Queued,
            segments: Some(1),
            encoding: None,
            price: Some(Price { total: "0.03330000".into(), currency: String::new() }),
            error: None,
        }]
    );
    let two = r#"{"message-count":"2","messages":[{"status":"0","message-id":"A","message-price":"0.1"},
        {"status":"0","message-id":"B","message-price":"0.1"}]}"#;
    let accepted = Vonage.accepted(two.as_bytes());
    assert_eq!(accepted.len(), 1, "one message, however many parts");
    assert_eq!((accepted[0].provider_message_id.as_deref(), accepted[0].segments), (Some("A"), Some(2)));
    assert_eq!(accepted[0].price, None, "no sum of a multipart price");
    assert!(Vonage.accepted(&refused("4", "Bad Credentials")).is_empty());
}

#[test]
fn reads_delivery_receipts_as_json_or_form() {
    let json_dlr = r#"{"msisdn":"447700900000","to":"AcmeInc","network-code":"12345","messageId":"0A0000001234567B",
        "price":"0.03330000","status":"delivered","scts":"2001011400","err-code":"0","api-key":"abcd1234",
        "message-timestamp":"2020-01-01 12:00:00","client-ref":"hrld-1"}"#;
    let WebhookEvent::Status(s) = one(json_dlr) else { panic!("a status") };
    assert_eq!(
        s,
        StatusUpdate {
            provider_message_id: Some("0A0000001234567B".into()),
            client_message_id: Some("hrld-1".into()),
            status: MessageStatus::Delivered,
            raw_state: "delivered".into(),
            detail: None,
            error_code: None,
            error_message: None,
            price: Some(Price { total: "0.03330000".into(), currency: String::new() }),
            segments: None,
            destination: Some("+447700900000".into()),
            occurred_at: Some("2020-01-01T14:00:00Z".into()),
        }
    );
    let form = "msisdn=447700900000&to=AcmeInc&messageId=0A0000001234567B&status=expired&err-code=2&message-timestamp=2020-01-01+12%3A00%3A00";
    let WebhookEvent::Status(s) = one(form) else { panic!("a status") };
    assert_eq!(s.status, MessageStatus::Undelivered);
    assert_eq!(s.error_code.as_deref(), Some("2"));
    assert_eq!(s.error_message.as_deref(), Some("Absent Subscriber - Temporary"));
    assert_eq!(s.occurred_at.as_deref(), Some("2020-01-01 12:00:00"));
    assert_eq!(s.client_message_id, None);
}

#[test]
fn receipt_words_map_to_statuses() {
    for (word, status) in [
        ("accepted", MessageStatus::Sent),
        ("buffered", MessageStatus::Sent),
        ("delivered", MessageStatus::Delivered),
        ("expired", MessageStatus::Undelivered),
        ("failed", MessageStatus::Failed),
        ("rejected", MessageStatus::Rejected),
        ("unknown", MessageStatus::Unknown),
    ] {
        assert_eq!(Vonage.status_word(word), Some(status), "{word}");
    }
    assert_eq!(Vonage.status_word("queued"), None);
    assert!(!MessageStatus::Delivered.advances_to(Vonage.status_word("unknown").unwrap()));
}

#[test]
fn reads_an_inbound_message_with_numbers_in_e164() {
    let inbound = r#"{"msisdn":"447700900001","to":"447700900000","messageId":"0A0000000123ABCD1","text":"Stop",
        "type":"text","keyword":"STOP","api-key":"abcd1234","message-timestamp":"2020-01-01 12:00:00"}"#;
    assert_eq!(
        one(inbound),
        WebhookEvent::Inbound(InboundMessage {
            provider_message_id: Some("0A0000000123ABCD1".into()),
            from: "+447700900001".into(),
            to: "+447700900000".into(),
            text: "Stop".into(),
            received_at: Some("2020-01-01 12:00:00".into()),
        })
    );
    let form = "msisdn=447700900001&to=447700900000&messageId=X&text=Hello&type=text&keyword=HELLO";
    let WebhookEvent::Inbound(m) = one(form) else { panic!("inbound") };
    assert_eq!(m.text, "Hello");
}

#[test]
fn a_webhook_it_cannot_read_names_the_field() {
    assert_eq!(err(r#"{"messageId":"A"}"#), "Vonage SMS webhook: status is missing");
    assert_eq!(err(r#"{"status":"delivered"}"#), "Vonage SMS webhook: messageId is missing");
    assert!(
        err(r#"{"status":"sideways","messageId":"A"}"#)
            .contains("\"sideways\", not a status Vonage SMS documents")
    );
    assert!(
        err(r#"{"status":"delivered","messageId":"A","scts":"yesterday"}"#)
            .contains("scts is not YYMMDDHHMM")
    );
    assert!(err("{not json").contains("not JSON"));
    assert_eq!(err(r#"{"msisdn":"1","text":"x"}"#), "Vonage SMS webhook: to is missing");
}

#[test]
fn serves_its_host_and_is_authenticated_by_the_endpoint_secret() {
    assert!(Vonage.serves_host("rest.nexmo.com"));
    assert!(!Vonage.serves_host("api.nexmo.com"), "the Messages API is another API");
    assert_eq!(Vonage.webhook_auth(), Some(WebhookAuth::EndpointSecret));
    assert_eq!(Vonage.default_rate_limit(), RateLimit { per_second: Some(30), per_day: None });
    assert_eq!(Vonage.text_inputs(), ["text"]);
    assert_eq!(Vonage.max_parts(), None);
}
