use super::*;
use crate::connector::{BatchSplit, Batching, IdempotencyField};
use crate::{Price, WebhookError};
use serde_json::json;

fn one(connector: &dyn Connector, body: &str) -> WebhookEvent {
    let mut events = connector.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn err(connector: &dyn Connector, body: &str) -> String {
    connector.parse_webhook(body.as_bytes()).unwrap_err().to_string()
}

fn sms(destination: &str, sender: Option<&str>, text: &str, id: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        destination: destination.into(),
        sender: sender.map(Into::into),
        text: Some(text.into()),
        channel: "sms".into(),
        client_message_id: id.map(Into::into),
    }
}

const SMS_DLR: &str = r#"{
    "namespace": "SMS",
    "eventType": "outbound_message_status_changed",
    "description": "SMS status update",
    "payload": {
        "umid": "0f9e9c5e-3a6b-4a0c-9d55-3f0f1b0b2a11",
        "batchId": "e9c1e2d4-0000-4000-8000-000000000001",
        "clientMessageId": "run-42",
        "clientBatchId": null,
        "subAccountId": "herald_demo",
        "source": "Herald",
        "destination": "+6512345678",
        "status": {
            "state": "delivered",
            "detail": "delivered_to_recipient",
            "timestamp": "2024-05-01T10:00:05.00Z",
            "errorCode": null,
            "errorMessage": null
        },
        "price": {"total": 0.0075, "perSms": 0.0075, "currency": "EUR"},
        "smsCount": 1
    }
}"#;

#[test]
fn reads_an_8x8_sms_receipt() {
    let WebhookEvent::Status(s) = one(&Sms, SMS_DLR) else { panic!("a status") };
    assert_eq!(
        s,
        StatusUpdate {
            provider_message_id: Some("0f9e9c5e-3a6b-4a0c-9d55-3f0f1b0b2a11".into()),
            client_message_id: Some("run-42".into()),
            status: MessageStatus::Delivered,
            raw_state: "delivered".into(),
            detail: Some("delivered_to_recipient".into()),
            error_code: None,
            error_message: None,
            price: Some(Price { total: "0.0075".into(), currency: "EUR".into() }),
            segments: Some(1),
            destination: Some("+6512345678".into()),
            occurred_at: Some("2024-05-01T10:00:05.00Z".into()),
        }
    );
}

#[test]
fn reads_an_8x8_array_and_undelivered_errors() {
    let undelivered = SMS_DLR
        .replace(r#""state": "delivered""#, r#""state": "undelivered""#)
        .replace(r#""errorCode": null"#, r#""errorCode": 5"#)
        .replace(r#""errorMessage": null"#, r#""errorMessage": "Absent subscriber""#);
    let body = format!("[{SMS_DLR}, {undelivered}]");
    let events = Sms.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    let WebhookEvent::Status(s) = &events[1] else { panic!("a status") };
    assert_eq!(s.status, MessageStatus::Undelivered);
    assert_eq!(s.error_code.as_deref(), Some("5"));
    assert_eq!(s.error_message.as_deref(), Some("Absent subscriber"));
    assert_eq!(Sms.parse_webhook(b"[]").unwrap(), vec![]);
}

#[test]
fn reads_an_8x8_sms_inbound() {
    let body = r#"{"namespace":"SMS","eventType":"inbound_message_received","description":"Inbound SMS",
        "payload":{"umid":"a1b2","subAccountId":"herald_demo","timestamp":"2024-05-01T10:01:00.00Z",
        "source":"+6598765432","destination":"+6580001111","body":"STOP","encoding":"GSM7","smsCount":1,
        "price":{"total":0,"perSms":0,"currency":"EUR"}}}"#;
    assert_eq!(
        one(&Sms, body),
        WebhookEvent::Inbound(InboundMessage {
            provider_message_id: Some("a1b2".into()),
            from: "+6598765432".into(),
            to: "+6580001111".into(),
            text: "STOP".into(),
            received_at: Some("2024-05-01T10:01:00.00Z".into()),
        })
    );
}

#[test]
fn reads_8x8_chat_apps_events() {
    let status = r#"{"namespace":"ChatApps","eventType":"outbound_message_status_changed",
        "payload":{"umid":"c0ffee","batchId":null,"clientMessageId":"run-7","channel":"WhatsApp",
        "user":{"msisdn":"+6512345678","channelUserId":"6512345678"},
        "status":{"state":"read","detail":"read_by_recipient","timestamp":"2024-05-01T10:02:00Z"}}}"#;
    let WebhookEvent::Status(s) = one(&ChatApps, status) else { panic!("a status") };
    assert_eq!(s.status, MessageStatus::Read);
    assert_eq!(s.destination.as_deref(), Some("+6512345678"));
    assert_eq!(s.client_message_id.as_deref(), Some("run-7"));
    assert_eq!(s.price, None);

    let inbound = r#"{"namespace":"ChatApps","eventType":"inbound_message_received",
        "payload":{"umid":"beef","subAccountId":"herald_wa","user":{"msisdn":"+6512345678","name":"Ann"},
        "recipient":{"channel":"WhatsApp","channelId":"a1b2c3-whatsapp"},"type":"Text",
        "content":{"text":"Is my order shipped?"},"timestamp":"2024-05-01T10:03:00Z"}}"#;
    assert_eq!(
        one(&ChatApps, inbound),
        WebhookEvent::Inbound(InboundMessage {
            provider_message_id: Some("beef".into()),
            from: "+6512345678".into(),
            to: "a1b2c3-whatsapp".into(),
            text: "Is my order shipped?".into(),
            received_at: Some("2024-05-01T10:03:00Z".into()),
        })
    );
}

#[test]
fn eight_by_eight_errors_name_the_provider_and_field() {
    let no_state = SMS_DLR.replace(r#""state": "delivered","#, "");
    assert_eq!(err(&Sms, &no_state), "8x8 SMS webhook: payload.status.state is missing");
    let bad_state = SMS_DLR.replace(r#""state": "delivered""#, r#""state": "vanished""#);
    let e = err(&Sms, &bad_state);
    assert!(e.starts_with("8x8 SMS webhook: payload.status.state is \"vanished\""), "{e}");
    let unknown = SMS_DLR.replace("outbound_message_status_changed", "account_suspended");
    assert_eq!(err(&Sms, &unknown), "8x8 SMS webhook: unknown eventType \"account_suspended\"");
    let arr = format!("[{SMS_DLR}, {no_state}]");
    assert_eq!(err(&Sms, &arr), "8x8 SMS webhook: [1].payload.status.state is missing");
    assert_eq!(err(&Sms, "[1]"), "8x8 SMS webhook: [0] is not an object");
    assert_eq!(
        err(&Sms, r#"{"eventType":"inbound_message_received","payload":{"source":"+1"}}"#),
        "8x8 SMS webhook: payload.destination is missing"
    );
    assert_eq!(
        err(&ChatApps, r#"{"eventType":"inbound_message_received","payload":{}}"#),
        "8x8 Chat Apps webhook: payload.user.msisdn is missing"
    );
    assert_eq!(err(&ChatApps, r#"{"payload":{}}"#), "8x8 Chat Apps webhook: eventType is missing");
    assert!(err(&Sms, "not json").starts_with("8x8 SMS webhook: the body is not JSON"));
}

const SMS_PATH: &str = "/api/v1/subaccounts/herald_demo/messages";

#[test]
fn reads_8x8_sms_requests() {
    let p = Sms;
    let body =
        json!({"destination": "+6512345678", "text": "Hi", "source": "Herald", "clientMessageId": "k1"});
    assert_eq!(
        p.outbound_messages("POST", SMS_PATH, &body),
        vec![sms("+6512345678", Some("Herald"), "Hi", Some("k1"))]
    );
    assert_eq!(p.outbound_messages("GET", SMS_PATH, &body), vec![]);
    assert_eq!(p.outbound_messages("POST", "/api/v1/subaccounts/herald_demo/balance", &body), vec![]);

    let batch = json!({
        "template": {"source": "Herald", "text": "Sale today"},
        "messages": [
            {"destination": "+6511111111", "clientMessageId": "b1"},
            {"destination": "+6522222222", "text": "VIP sale", "source": "VIP"},
            {"text": "no destination"}
        ]
    });
    assert_eq!(
        p.outbound_messages("post", &format!("{SMS_PATH}/batch?x=1"), &batch),
        vec![
            sms("+6511111111", Some("Herald"), "Sale today", Some("b1")),
            sms("+6522222222", Some("VIP"), "VIP sale", None),
        ]
    );
    let destinations = json!({"destinations": ["+6511111111", 6522222222u64], "template": {"text": "Hello"}});
    assert_eq!(
        p.outbound_messages("POST", &format!("{SMS_PATH}/batch/"), &destinations),
        vec![sms("+6511111111", None, "Hello", None), sms("6522222222", None, "Hello", None)]
    );
}

#[test]
fn reads_8x8_chat_apps_requests() {
    let p = ChatApps;
    let body = json!({
        "user": {"msisdn": "+6512345678"}, "type": "text", "content": {"text": "Your order shipped"},
        "clientMessageId": "run-1"
    });
    let got = p.outbound_messages("POST", SMS_PATH, &body);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].channel, "whatsapp");
    assert_eq!(got[0].destination, "+6512345678");
    assert_eq!(got[0].text.as_deref(), Some("Your order shipped"));
    assert_eq!(got[0].client_message_id.as_deref(), Some("run-1"));

    let template = json!({
        "user": {"msisdn": "+6512345678"}, "type": "template",
        "content": {"template": {"name": "order_update", "language": "en"}, "fallbackText": "Order update"},
        "channels": [{"channel": "WhatsApp", "fallbackAfter": 60}, {"channel": "SMS"}]
    });
    let got = p.outbound_messages("POST", SMS_PATH, &template);
    assert_eq!((got[0].channel.as_str(), got[0].text.as_deref()), ("whatsapp", Some("Order update")));

    let batch = json!({
        "template": {"type": "text", "content": {"text": "Hello"}, "channels": [{"channel": "Viber"}]},
        "messages": [{"user": {"msisdn": "+6511111111"}}, {"user": {"msisdn": "+6522222222"}, "content": {"text": "Hi VIP"}}]
    });
    let got = p.outbound_messages("POST", &format!("{SMS_PATH}/batch"), &batch);
    assert_eq!(got.iter().map(|m| m.text.as_deref().unwrap()).collect::<Vec<_>>(), ["Hello", "Hi VIP"]);
    assert!(got.iter().all(|m| m.channel == "viber"));
    // Chat Apps batches have no destination list; a stray one sends nothing.
    let stray = json!({"template": {"content": {"text": "x"}}, "destinations": ["+6511111111"]});
    assert_eq!(p.outbound_messages("POST", &format!("{SMS_PATH}/batch"), &stray), vec![]);
}

#[test]
fn reads_8x8_answers() {
    let p = Sms;
    let single = br#"{"umid":"bda3d56d-1424-e711-813c-06ed3428fe67","clientMessageId":"1234",
        "destination":"6500000000","encoding":"GSM7",
        "status":{"code":"QUEUED","description":"SMS is accepted and queued for processing"}}"#;
    assert_eq!(
        p.accepted(single),
        vec![Accepted {
            provider_message_id: Some("bda3d56d-1424-e711-813c-06ed3428fe67".into()),
            client_message_id: Some("1234".into()),
            status: MessageStatus::Queued,
            segments: None,
            encoding: Some("GSM7".into()),
            price: None,
            error: None,
        }]
    );
    let batch = br#"{"batchId":"f1ea","clientBatchId":"demo","acceptedCount":1,"rejectedCount":1,"messages":[
        {"umid":"a","clientMessageId":"c1","destination":"6500000001","encoding":"GSM7","status":{"code":"QUEUED"}},
        {"umid":"b","clientMessageId":"c2","destination":"65","encoding":"GSM7","status":{"code":"REJECTED",
         "description":"Invalid MSISDN format (not E.164 international number)"}}]}"#;
    let got = p.accepted(batch);
    assert_eq!(
        got.iter().map(|a| a.status).collect::<Vec<_>>(),
        [MessageStatus::Queued, MessageStatus::Rejected]
    );
    assert_eq!(got[1].error.as_deref(), Some("Invalid MSISDN format (not E.164 international number)"));
    assert_eq!(got[1].client_message_id.as_deref(), Some("c2"));
    assert_eq!(p.accepted(br#"{"batchId":"f1ea","acceptedCount":2,"rejectedCount":0}"#), vec![]);

    let chat = ChatApps;
    let got = chat.accepted(br#"{"umid":"u1","user":{"msisdn":"+65"},"clientMessageId":"r1","status":{"state":"queued","timestamp":"2024-05-01T10:00:00Z"}}"#);
    assert_eq!((got[0].status, got[0].provider_message_id.as_deref()), (MessageStatus::Queued, Some("u1")));
    let got = chat.accepted(br#"{"messages":[{"umid":"u2","status":{"state":"rejected","errorCode":3038,"errorMessage":"Template not found for provided name and language"}}]}"#);
    assert_eq!(got[0].status, MessageStatus::Rejected);
    assert_eq!(got[0].error.as_deref(), Some("3038: Template not found for provided name and language"));
    assert_eq!(chat.accepted(b"OK"), vec![]);
}

#[test]
fn eight_by_eight_rejected_in_200_is_a_failure() {
    let body = br#"{"umid":"1","status":{"code":"REJECTED","description":"Invalid MSISDN"}}"#;
    assert!(matches!(Sms.interpret(200, body), Verdict::Failure { .. }));
    let ok = br#"{"umid":"1","status":{"code":"QUEUED"}}"#;
    assert_eq!(Sms.interpret(200, ok), Verdict::Success);
}

#[test]
fn serves_every_regions_host_of_its_product() {
    for host in ["sms.8x8.com", "sms.us.8x8.com", "sms.8x8.uk", "sms.8x8.id"] {
        assert!(Sms.serves_host(host) && !ChatApps.serves_host(host), "{host}");
    }
    for host in ["chatapps.8x8.com", "chatapps.us.8x8.com", "chatapps.8x8.uk", "chatapps.8x8.id"] {
        assert!(ChatApps.serves_host(host) && !Sms.serves_host(host), "{host}");
    }
    assert!(!Sms.serves_host("smsx.8x8.com") && !Sms.serves_host("sms.example.com"));
}

#[test]
fn error_bodies_name_the_8x8_code() {
    let invalid =
        br#"{"code":1002,"message":"Invalid MSISDN","errorId":"4f0b2c1e-0000-4000-8000-000000000000",
        "timestamp":"2024-05-01T10:00:00Z"}"#;
    assert_eq!(
        Sms.interpret(400, invalid),
        Verdict::Failure { reason: "HTTP 400, 8x8 error 1002: Invalid MSISDN".into() }
    );
    let quota = br#"{"code":429,"message":"Quota exceeded. Please try again in 1 second(s)."}"#;
    let Verdict::Failure { reason } = ChatApps.interpret(429, quota) else { panic!("a 429 is a failure") };
    assert_eq!(reason, "HTTP 429, 8x8 error 429: Quota exceeded. Please try again in 1 second(s).");
}

#[test]
fn classes_failures_by_8x8_code_then_status() {
    use FailureClass::*;
    assert_eq!(
        Sms.failure_class(Some(400), br#"{"code":1002,"message":"Invalid MSISDN"}"#),
        InvalidDestination
    );
    assert_eq!(Sms.failure_class(Some(400), br#"{"code":1004,"message":"Invalid text"}"#), Permanent);
    assert_eq!(Sms.failure_class(Some(429), br#"{"code":429,"message":"Quota exceeded."}"#), Retryable);
    assert_eq!(Sms.failure_class(Some(500), br#"{"code":2000,"message":"Internal"}"#), Retryable);
    let rejected = br#"{"umid":"1","status":{"code":"REJECTED","description":"Invalid MSISDN"}}"#;
    assert!(matches!(Sms.interpret(200, rejected), Verdict::Failure { .. }));
    assert_eq!(Sms.failure_class(Some(200), rejected), Permanent);
}

#[test]
fn defaults_retry_six_times_within_an_hour_at_1800_a_second() {
    let policy = Sms.default_retry();
    assert_eq!((policy.max_attempts, policy.max_elapsed), (6, Duration::from_secs(3600)));
    assert_eq!((policy.base_delay, policy.max_delay), (Duration::from_millis(500), Duration::from_secs(60)));
    assert_eq!(ChatApps.default_retry(), policy);
    assert_eq!(Sms.default_rate_limit().per_second, Some(1800));
    assert_eq!(Sms.max_parts(), Some(10));
    assert_eq!(ChatApps.max_parts(), None);
}

#[test]
fn resends_are_recognised_by_client_message_id_except_in_a_destination_list() {
    assert_eq!(Sms.idempotency_field(), Some(IdempotencyField { field: "clientMessageId", max_len: 350 }));
    assert_eq!(
        ChatApps.idempotency_field(),
        Some(IdempotencyField { field: "clientMessageId", max_len: 50 })
    );
    assert!(Sms.recognises_resend(&json!({"destination": "+6591234567", "clientMessageId": "k"})));
    assert!(Sms.recognises_resend(&json!({"messages": [{"destination": "+6591234567"}]})));
    assert!(!Sms.recognises_resend(&json!({"destinations": ["+6591234567"], "template": {}})));
    assert!(ChatApps.recognises_resend(&json!({"user": {"msisdn": "+6591234567"}})));
}

#[test]
fn status_words_map_to_statuses() {
    assert_eq!(Sms.status_word("QUEUED"), Some(MessageStatus::Queued));
    assert_eq!(Sms.status_word("undelivered"), Some(MessageStatus::Undelivered));
    assert_eq!(ChatApps.status_word("read"), Some(MessageStatus::Read));
    assert_eq!(Sms.status_word("sending"), None);
}

fn message(destination: &str) -> OutboundMessage {
    OutboundMessage {
        destination: destination.into(),
        sender: None,
        text: Some("Hi".into()),
        channel: "sms".into(),
        client_message_id: None,
    }
}

#[test]
fn a_batch_keeps_only_the_messages_screening_let_through_in_e164() {
    let kept = [message("+6591111111"), message("+6593333333")];
    let mut listed = json!({"messages": [
        {"destination": "91111111", "clientMessageId": "a"},
        {"destination": "+999", "clientMessageId": "b"},
        {"destination": "9333 3333", "clientMessageId": "c"}
    ], "template": {"text": "Hi"}});
    Sms.rewrite_batch(&mut listed, &kept, &[0, 2]);
    assert_eq!(
        listed["messages"],
        json!([
            {"destination": "+6591111111", "clientMessageId": "a"},
            {"destination": "+6593333333", "clientMessageId": "c"}
        ])
    );
    let mut shared = json!({"destinations": ["91111111", "+999", "9333 3333"], "template": {}});
    Sms.rewrite_batch(&mut shared, &kept, &[0, 2]);
    assert_eq!(shared["destinations"], json!(["+6591111111", "+6593333333"]));
    let mut chat = json!({"messages": [{"user": {"msisdn": "91111111"}}, {"user": {"msisdn": "x"}}]});
    ChatApps.rewrite_batch(&mut chat, &kept[..1], &[0]);
    assert_eq!(chat["messages"], json!([{"user": {"msisdn": "+6591111111"}}]));
}

fn single(client_id: &str) -> Value {
    json!({"destination": "+6591234567", "text": "hi", "clientMessageId": client_id})
}

#[test]
fn only_single_sms_posted_to_messages_share_a_batch() {
    assert!(Sms.coalescible("POST", "/api/v1/subaccounts/a/messages", &single("a")));
    assert!(!Sms.coalescible("POST", "/api/v1/subaccounts/a/messages/batch", &single("a")));
    assert!(!Sms.coalescible("POST", "/api/v1/subaccounts/a/messages", &json!({"messages": []})));
    assert!(ChatApps.batching().is_none());
    let (path, body) = Sms.batch_request("/api/v1/subaccounts/a/messages", vec![single("a"), single("b")]);
    assert_eq!(path, "/api/v1/subaccounts/a/messages/batch");
    assert_eq!(body["includeMessagesInResponse"], true);
    assert_eq!(body["messages"][1]["clientMessageId"], "b");
}

#[test]
fn each_message_gets_its_own_entry_of_a_batch_answer_by_client_id_whatever_the_order() {
    let batch = [single("a"), single("b")];
    let answer = json!({"batchId": "x", "acceptedCount": 1, "rejectedCount": 1, "messages": [
        {"umid": "2", "clientMessageId": "b", "status": {"code": "REJECTED", "description": "Invalid MSISDN"}},
        {"umid": "1", "clientMessageId": "a", "status": {"code": "QUEUED", "description": "ok"}},
    ]});
    let BatchSplit::PerMessage(answers) =
        Sms.split_answer(200, &serde_json::to_vec(&answer).unwrap(), &batch)
    else {
        panic!("not split")
    };
    let entry = |i: usize| serde_json::from_slice::<Value>(answers[i].as_ref().unwrap()).unwrap();
    assert_eq!(entry(0)["umid"], "1");
    assert_eq!(entry(1)["status"]["code"], "REJECTED");
}

#[test]
fn a_message_missing_from_a_batch_answer_has_no_answer_of_its_own() {
    let batch = [single("a"), single("b")];
    let answer = br#"{"messages": [{"umid": "1", "clientMessageId": "a"}]}"#;
    let BatchSplit::PerMessage(answers) = Sms.split_answer(200, answer, &batch) else { panic!("not split") };
    assert!(answers[0].is_some() && answers[1].is_none());
}

#[test]
fn a_refused_batch_goes_alone_and_a_busy_one_is_shared() {
    let batch = [single("a"), single("b")];
    assert_eq!(Sms.split_answer(400, br#"{"code": 1000}"#, &batch), BatchSplit::Alone);
    assert_eq!(Sms.split_answer(429, br#"{"code": 429}"#, &batch), BatchSplit::Shared);
    assert_eq!(Sms.split_answer(503, b"{}", &batch), BatchSplit::Shared);
}

#[test]
fn a_non_object_event_is_refused_with_its_place() {
    let error = Sms.parse_webhook(b"[1]").unwrap_err();
    assert!(matches!(error, WebhookError::Invalid { .. }), "{error}");
}
