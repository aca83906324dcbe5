use super::*;
use crate::connector::Verdict;
use serde_json::json;

fn one(body: &str) -> WebhookEvent {
    let mut events = Twilio.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn err(body: &str) -> String {
    Twilio.parse_webhook(body.as_bytes()).unwrap_err().to_string()
}

fn sms(destination: &str, sender: Option<&str>, text: &str) -> OutboundMessage {
    OutboundMessage {
        destination: destination.into(),
        sender: sender.map(Into::into),
        text: Some(text.into()),
        channel: "sms".into(),
        client_message_id: None,
    }
}

#[test]
fn reads_twilio_callbacks() {
    let body = "SmsSid=SM0123&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B15558675310\
        &MessageSid=SM0123&AccountSid=AC0001&From=%2B15017122661&ApiVersion=2010-04-01&ErrorCode=30003";
    let WebhookEvent::Status(s) = one(body) else { panic!("a status") };
    assert_eq!(s.provider_message_id.as_deref(), Some("SM0123"));
    assert_eq!(s.status, MessageStatus::Undelivered);
    assert_eq!(s.raw_state, "undelivered");
    assert_eq!(s.error_code.as_deref(), Some("30003"));
    assert_eq!(s.destination.as_deref(), Some("+15558675310"));

    let optout = "MessageSid=SM9&MessageStatus=failed&ErrorCode=21610&To=%2B15558675310&NumSegments=2";
    let WebhookEvent::Status(s) = one(optout) else { panic!("a status") };
    assert_eq!(s.status, MessageStatus::Failed);
    assert_eq!(s.error_message.as_deref(), Some("recipient opted out with STOP"));
    assert_eq!(s.segments, Some(2));

    let inbound = "ToCountry=US&SmsMessageSid=SM77&NumMedia=0&SmsSid=SM77&SmsStatus=received\
        &Body=Hello+%26+thanks&To=%2B15017122661&NumSegments=1&MessageSid=SM77&AccountSid=AC0001\
        &From=%2B15558675310&ApiVersion=2010-04-01";
    assert_eq!(
        one(inbound),
        WebhookEvent::Inbound(InboundMessage {
            provider_message_id: Some("SM77".into()),
            from: "+15558675310".into(),
            to: "+15017122661".into(),
            text: "Hello & thanks".into(),
            received_at: None,
        })
    );
    assert_eq!(err("MessageSid=SM1"), "Twilio webhook: MessageStatus is missing");
    assert_eq!(err("MessageStatus=sent"), "Twilio webhook: MessageSid is missing");
    assert_eq!(err("Body=hi&From=%2B1555"), "Twilio webhook: To is missing");
    assert!(err("MessageSid=SM1&MessageStatus=teleported").contains("MessageStatus"));
}

#[test]
fn reads_twilio_requests() {
    let p = Twilio;
    let path = "/2010-04-01/Accounts/AC0001/Messages.json";
    let body = json!({"To": "+15558675310", "From": "+15017122661", "Body": "Hi"});
    assert_eq!(
        p.outbound_messages("POST", path, &body),
        vec![sms("+15558675310", Some("+15017122661"), "Hi")]
    );
    let wa = json!({"To": "whatsapp:+15558675310", "MessagingServiceSid": "MG1", "Body": "Hi"});
    let got = p.outbound_messages("POST", path, &wa);
    assert_eq!((got[0].channel.as_str(), got[0].destination.as_str()), ("whatsapp", "+15558675310"));
    assert_eq!(got[0].sender.as_deref(), Some("MG1"));
    assert_eq!(p.outbound_messages("POST", "/2010-04-01/Accounts/AC0001/Calls.json", &body), vec![]);
}

#[test]
fn error_bodies_name_the_provider_code_and_meaning() {
    let twilio = br#"{"code": 21211, "message": "The 'To' number 123 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
    assert_eq!(
        Twilio.interpret(400, twilio),
        Verdict::Failure {
            reason: "HTTP 400, Twilio error 21211: The 'To' number 123 is not a valid phone number \
                     (invalid To number)"
                .into()
        }
    );
    assert_eq!(Twilio.interpret(500, b"<html>oops</html>"), Verdict::Failure { reason: "HTTP 500".into() });
    assert_eq!(Twilio.interpret(201, br#"{"sid":"SM1","status":"queued"}"#), Verdict::Success);
}

#[test]
fn classes_failures_by_twilio_code() {
    use FailureClass::*;
    assert_eq!(Twilio.failure_class(None, b""), Retryable);
    assert_eq!(Twilio.failure_class(Some(503), b"<html>"), Retryable);
    assert_eq!(
        Twilio.failure_class(Some(429), br#"{"code":20429,"message":"Too Many Requests"}"#),
        Retryable
    );
    assert_eq!(
        Twilio.failure_class(
            Some(400),
            br#"{"code":21610,"message":"Attempt to send to unsubscribed recipient"}"#
        ),
        OptedOut
    );
    assert_eq!(
        Twilio.failure_class(Some(400), br#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#),
        InvalidDestination
    );
    assert_eq!(
        Twilio.failure_class(Some(400), br#"{"code":21614,"message":"not a mobile"}"#),
        InvalidDestination
    );
    assert_eq!(Twilio.failure_class(Some(401), br#"{"code":20003,"message":"Authenticate"}"#), Permanent);
    assert_eq!(Twilio.error_code(br#"{"code":21610,"message":"x"}"#).as_deref(), Some("21610"));
}

#[test]
fn status_words_map_to_statuses_and_received_is_not_one() {
    for word in ["accepted", "scheduled", "queued", "sending"] {
        assert_eq!(Twilio.status_word(word), Some(MessageStatus::Queued), "{word}");
    }
    assert_eq!(Twilio.status_word("sent"), Some(MessageStatus::Sent));
    assert_eq!(Twilio.status_word("canceled"), Some(MessageStatus::Failed));
    assert_eq!(Twilio.status_word("failed"), Some(MessageStatus::Failed));
    assert_eq!(Twilio.status_word("received"), None);
}

#[test]
fn defaults_retry_six_times_with_no_published_limit_and_no_resend() {
    let policy = Twilio.default_retry();
    assert_eq!((policy.max_attempts, policy.max_elapsed), (6, Duration::from_secs(3600)));
    assert_eq!(Twilio.default_rate_limit(), crate::RateLimit { per_second: None, per_day: None });
    assert_eq!(Twilio.idempotency_field(), None);
    assert!(!Twilio.recognises_resend(&json!({"To": "+15558675310"})));
}

#[test]
fn reads_answers_with_segments_and_price() {
    let body = br#"{"sid":"SM1234","status":"queued","num_segments":"2","price":null,"price_unit":"USD",
        "error_code":null,"error_message":null,"to":"+15558675310"}"#;
    let got = Twilio.accepted(body);
    assert_eq!((got[0].provider_message_id.as_deref(), got[0].segments), (Some("SM1234"), Some(2)));
    assert_eq!(
        (got[0].status, got[0].price.clone(), got[0].error.clone()),
        (MessageStatus::Queued, None, None)
    );
    let priced = Twilio.accepted(br#"{"sid":"SM1","status":"sent","price":"-0.00750","price_unit":"USD"}"#);
    assert_eq!(priced[0].price, Some(Price { total: "-0.00750".into(), currency: "USD".into() }));
    assert_eq!(priced[0].status, MessageStatus::Sent);
}

#[test]
fn a_whatsapp_destination_keeps_its_channel_prefix_when_rewritten() {
    let message = sms("+15558675310", None, "Hi");
    let mut body = json!({"To": "whatsapp:(555) 867-5310", "Body": "Hi"});
    Twilio.rewrite_single(&mut body, &message);
    assert_eq!(body["To"], "whatsapp:+15558675310");
    let mut plain = json!({"To": "555 867 5310"});
    Twilio.rewrite_single(&mut plain, &message);
    assert_eq!(plain["To"], "+15558675310");
}

#[test]
fn callbacks_are_checked_against_the_auth_token_signature() {
    let url = "https://herald.example.com/webhooks/Twilio_Status";
    let body = b"MessageSid=SM1&MessageStatus=delivered";
    let signed = signature("token-1234", url, &form_params(body));
    let headers = vec![("x-twilio-signature".to_string(), signed)];
    let request = SignedRequest { url, headers: &headers, body };
    assert_eq!(Twilio.verify_signature("token-1234", &request), Ok(()));
    assert!(Twilio.verify_signature("another-token", &request).is_err());
    let unsigned = SignedRequest { url, headers: &[], body };
    assert!(Twilio.verify_signature("token-1234", &unsigned).unwrap_err().contains("X-Twilio-Signature"));
    assert_eq!(Twilio.webhook_auth(), Some(WebhookAuth::Signed { parameter: "password" }));
}
