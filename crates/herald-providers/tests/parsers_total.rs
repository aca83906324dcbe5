//! Every parser reads untrusted input from the network: none may panic, whatever the bytes.

use herald_providers::twilio::{form_params, parse_error, signature, verify_signature};
use herald_providers::{FailureClass, Provider, Verdict};
use proptest::prelude::*;
use serde_json::Value;

const PATHS: [&str; 5] = [
    "/api/v1/subaccounts/herald_demo/messages",
    "/api/v1/subaccounts/herald_demo/messages/batch",
    "/app/event",
    "/2010-04-01/Accounts/AC0001/Messages.json",
    "/",
];

/// Keys and words the parsers look for, so generated JSON reaches deep into them rather than failing
/// at the first field.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "eventType",
            "payload",
            "status",
            "state",
            "code",
            "umid",
            "messages",
            "template",
            "destinations",
            "destination",
            "source",
            "text",
            "user",
            "msisdn",
            "content",
            "channels",
            "channel",
            "data",
            "direction",
            "customernumber",
            "businessnumber",
            "message",
            "messageid",
            "success",
            "sid",
            "num_segments",
            "price",
            "total",
            "currency",
            "smsCount",
            "To",
            "From",
            "Body",
            "target",
            "eventname",
            "recipient",
            "channelId",
            "errorCode",
            "description",
            "outbound_message_status_changed",
            "inbound_message_received",
            "delivered",
            "REJECTED",
            "queued",
            "incoming",
            "outgoing",
            "sms",
            "bizsms",
            "whatsapp:+1555",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn check_bytes(body: &[u8], status: u16) -> Result<(), TestCaseError> {
    for p in Provider::all() {
        let webhook = p.parse_webhook(body);
        if p.is_generic() {
            prop_assert!(webhook.is_err());
        }
        if let Err(e) = webhook {
            prop_assert!(!e.to_string().is_empty());
        }
        match p.interpret(status, body) {
            Verdict::Failure { reason } => {
                let head = format!("HTTP {status}");
                prop_assert!(reason.starts_with(&head), "{reason}");
            }
            Verdict::Success => prop_assert!((200..300).contains(&status)),
        }
        let accepted = p.accepted(body);
        if p == Provider::named("kixie") {
            prop_assert_eq!(accepted.len(), 1);
        }
        if p.is_generic() {
            prop_assert!(accepted.is_empty());
        }
        prop_assert_eq!(p.failure_class(None, body), FailureClass::Retryable);
        let class = p.failure_class(Some(status), body);
        if (500..600).contains(&status) && p.is_generic() {
            prop_assert_eq!(class, FailureClass::Retryable);
        }
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            for path in PATHS {
                let sent = p.outbound_messages("POST", path, &value);
                if p.is_generic() {
                    prop_assert!(sent.is_empty());
                }
                prop_assert!(p.outbound_messages("GET", path, &value).is_empty());
            }
        }
    }
    if let Some(e) = parse_error(body) {
        prop_assert!(serde_json::from_slice::<Value>(body).is_ok(), "{e:?} from non-JSON");
    }
    let params = form_params(body);
    prop_assert!(params.len() <= body.len() + 1);
    let text = String::from_utf8_lossy(body);
    for p in Provider::all() {
        if let Some(s) = p.status_word(&text) {
            // Only Twilio has words of its own for a status (`accepted`, `canceled`, ...).
            prop_assert!(text.trim().eq_ignore_ascii_case(s.as_str()) || p == Provider::named("twilio"));
        }
    }
    let sig = signature(&text, &text, &params);
    prop_assert!(verify_signature(&text, &text, &params, &sig));
    prop_assert!(!verify_signature(&text, &text, &params, &text) || text == sig);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), status in any::<u16>()) {
        check_bytes(&body, status)?;
    }

    #[test]
    fn arbitrary_json(value in json(), status in prop::sample::select(vec![200u16, 201, 400, 429, 500])) {
        check_bytes(value.to_string().as_bytes(), status)?;
        // The same JSON as a one-element batch: 8x8 must read it as it reads the bare object.
        let single = Provider::named("8x8-sms").parse_webhook(value.to_string().as_bytes());
        let batch = Provider::named("8x8-sms").parse_webhook(format!("[{value}]").as_bytes());
        if value.is_object() {
            prop_assert_eq!(single.ok(), batch.ok());
        }
    }

    #[test]
    fn arbitrary_form_bodies(pairs in prop::collection::vec((word(), word()), 0..10)) {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        check_bytes(body.as_bytes(), 200)?;
        let params = form_params(body.as_bytes());
        let expected: Vec<(String, String)> = pairs.clone();
        prop_assert_eq!(params, expected);
    }

    #[test]
    fn a_well_formed_8x8_receipt_round_trips(
        umid in ".{1,40}",
        state in prop::sample::select(vec!["queued", "rejected", "sent", "delivered", "undelivered", "read"]),
        count in any::<u32>(),
    ) {
        let body = serde_json::json!({
            "namespace": "SMS", "eventType": "outbound_message_status_changed",
            "payload": {"umid": umid, "status": {"state": state}, "smsCount": count}
        });
        let events = Provider::named("8x8-sms").parse_webhook(body.to_string().as_bytes()).unwrap();
        let [herald_providers::WebhookEvent::Status(s)] = events.as_slice() else {
            return Err(TestCaseError::fail(format!("{events:?}")));
        };
        prop_assert_eq!(s.provider_message_id.as_deref(), Some(umid.as_str()));
        prop_assert_eq!(s.status.as_str(), state);
        prop_assert_eq!(s.segments, Some(count));
    }
}
