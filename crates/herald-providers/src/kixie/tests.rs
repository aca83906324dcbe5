use super::*;
use crate::FailureClass;
use serde_json::json;

fn sms(destination: &str, sender: Option<&str>, text: &str) -> OutboundMessage {
    OutboundMessage {
        destination: destination.into(),
        sender: sender.map(Into::into),
        text: Some(text.into()),
        channel: "sms".into(),
        client_message_id: None,
    }
}

fn one(body: &str) -> WebhookEvent {
    let mut events = Kixie.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn err(body: &str) -> String {
    Kixie.parse_webhook(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn success_needs_success_true_even_under_http_200() {
    assert_eq!(Kixie.interpret(200, br#"{"success":true}"#), Verdict::Success);
    let Verdict::Failure { reason } = Kixie.interpret(200, br#"{"success":false,"error":"bad target"}"#)
    else {
        panic!("a false success flag must fail")
    };
    assert!(reason.contains("bad target"), "{reason}");
    assert!(matches!(Kixie.interpret(200, b"OK"), Verdict::Failure { .. }));
    assert!(matches!(Kixie.interpret(401, br#"{"success":true}"#), Verdict::Failure { .. }));
    assert_eq!(Kixie.interpret(401, b"Unauthorized"), Verdict::Failure { reason: "HTTP 401".into() });
}

#[test]
fn a_refusal_is_permanent_and_nothing_is_ever_resent() {
    let refused = br#"{"success":false,"error":"bad target"}"#;
    assert_eq!(Kixie.failure_class(Some(200), refused), FailureClass::Permanent);
    assert_eq!(Kixie.failure_class(Some(403), b"Forbidden"), FailureClass::Permanent);
    assert_eq!(Kixie.failure_class(None, b""), FailureClass::Retryable);
    assert_eq!(Kixie.idempotency_field(), None);
    assert!(!Kixie.recognises_resend(&json!({"target": "+15551230000"})));
}

#[test]
fn retries_are_few_and_slow_under_a_daily_quota() {
    let policy = Kixie.default_retry();
    assert_eq!((policy.max_attempts, policy.max_elapsed), (4, Duration::from_secs(1800)));
    assert_eq!((policy.base_delay, policy.max_delay), (Duration::from_secs(1), Duration::from_secs(120)));
    assert_eq!(Kixie.default_rate_limit(), RateLimit { per_second: None, per_day: Some(10_000) });
}

#[test]
fn serves_kixie_hosts_only() {
    assert!(Kixie.serves_host("apig.kixie.com"));
    assert!(Kixie.serves_host("eu.kixie.com"));
    assert!(!Kixie.serves_host("kixie.com.example"));
}

#[test]
fn reads_sms_and_team_sms_requests() {
    let sms_body = json!({"businessid": "1", "apikey": "k", "target": "+15551230000", "eventname": "sms",
        "message": "Hi", "email": "rep@example.com"});
    assert_eq!(
        Kixie.outbound_messages("POST", "/app/event", &sms_body),
        vec![sms("+15551230000", None, "Hi")]
    );
    let biz = json!({"businessid": "1", "apikey": "k", "target": "+15551230000", "eventname": "bizsms",
        "message": "Hi team", "id": "9", "fromNumber": "+15559870000"});
    assert_eq!(
        Kixie.outbound_messages("POST", "/app/event", &biz),
        vec![sms("+15551230000", Some("+15559870000"), "Hi team")]
    );
    let call = json!({"target": "+15551230000", "eventname": "call"});
    assert_eq!(Kixie.outbound_messages("POST", "/app/event", &call), vec![]);
    assert_eq!(Kixie.outbound_messages("POST", "/app/other", &sms_body), vec![]);
    assert_eq!(Kixie.outbound_messages("GET", "/app/event", &sms_body), vec![]);
}

#[test]
fn reads_answers_with_or_without_a_message_id() {
    assert_eq!(
        Kixie.accepted(br#"{"success":true,"messageid":"m1"}"#)[0].provider_message_id.as_deref(),
        Some("m1")
    );
    assert_eq!(
        Kixie.accepted(br#"{"success":true,"data":{"messageid":77}}"#)[0].provider_message_id.as_deref(),
        Some("77")
    );
    let plain = Kixie.accepted(br#"{"success":true}"#);
    assert_eq!(
        (plain.len(), plain[0].status, plain[0].provider_message_id.clone()),
        (1, MessageStatus::Sent, None)
    );
    let no = Kixie.accepted(br#"{"success":false,"error":"bad target"}"#);
    assert_eq!((no[0].status, no[0].error.as_deref()), (MessageStatus::Rejected, Some("bad target")));
}

#[test]
fn a_target_is_always_a_phone_and_is_rewritten_in_place() {
    let message = sms("+15551230000", None, "Hi");
    assert!(Kixie.destination_is_phone(&OutboundMessage { channel: "voice".into(), ..message.clone() }));
    let mut body = json!({"target": "(555) 123-0000", "eventname": "sms"});
    Kixie.rewrite_single(&mut body, &message);
    assert_eq!(body["target"], "+15551230000");
}

#[test]
fn reads_webhooks_in_both_directions() {
    let incoming = r#"{"data":{"messageid":"98765","from":"+15551230000","to":"+15559870000",
        "customernumber":"+15551230000","businessnumber":"+15559870000","direction":"incoming",
        "message":"Yes, 3pm works","businessid":"1234","userid":"55","email":"rep@example.com"}}"#;
    assert_eq!(
        one(incoming),
        WebhookEvent::Inbound(InboundMessage {
            provider_message_id: Some("98765".into()),
            from: "+15551230000".into(),
            to: "+15559870000".into(),
            text: "Yes, 3pm works".into(),
            received_at: None,
        })
    );
    let outgoing = r#"{"data":{"messageid":12345,"from":"+15559870000","to":"+15551230000",
        "customernumber":"+15551230000","businessnumber":"+15559870000","direction":"outgoing",
        "message":"Your appointment is at 3pm","businessid":"1234"}}"#;
    let WebhookEvent::Status(s) = one(outgoing) else { panic!("a status") };
    assert_eq!(s.status, MessageStatus::Sent);
    assert_eq!(s.provider_message_id.as_deref(), Some("12345"));
    assert_eq!(s.destination.as_deref(), Some("+15551230000"));
    assert_eq!(err(r#"{"data":{"message":"x"}}"#), "Kixie webhook: data.direction is missing");
    assert_eq!(err(r#"{"messageid":"1"}"#), "Kixie webhook: data is missing");
    assert_eq!(
        err(r#"{"data":{"direction":"incoming","customernumber":"+1555"}}"#),
        "Kixie webhook: data.businessnumber is missing"
    );
    assert!(err(r#"{"data":{"direction":"sideways"}}"#).contains("data.direction"));
    assert_eq!(Kixie.webhook_auth(), Some(WebhookAuth::EndpointSecret));
}
