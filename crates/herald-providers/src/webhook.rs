//! What providers POST back to herald: delivery receipts and inbound messages.

use serde_json::Value;

use crate::json::{at, count, text};
use crate::{MessageStatus, Provider};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WebhookEvent {
    Status(StatusUpdate),
    Inbound(InboundMessage),
}

/// A receipt for a message herald sent.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StatusUpdate {
    pub provider_message_id: Option<String>,
    pub client_message_id: Option<String>,
    pub status: MessageStatus,
    /// The provider's own word, kept because several words map to one status.
    pub raw_state: String,
    pub detail: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub price: Option<Price>,
    pub segments: Option<u32>,
    pub destination: Option<String>,
    pub occurred_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Price {
    /// Decimal as text, as the provider wrote it, so no float rounding creeps into billing.
    pub total: String,
    pub currency: String,
}

/// A message a customer sent to one of our numbers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InboundMessage {
    pub provider_message_id: Option<String>,
    /// The customer's phone.
    pub from: String,
    /// Our number or sender.
    pub to: String,
    pub text: String,
    pub received_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("{provider} webhook: the body is not JSON ({detail})")]
    NotJson { provider: &'static str, detail: String },
    #[error("{provider} webhook: {field} is missing")]
    Missing { provider: &'static str, field: String },
    #[error("{provider} webhook: {field} is {problem}")]
    Invalid { provider: &'static str, field: String, problem: String },
    #[error("{provider} webhook: unknown eventType \"{event_type}\"")]
    UnknownEvent { provider: &'static str, event_type: String },
    #[error("{provider} webhooks have no format herald knows")]
    Unsupported { provider: &'static str },
}

fn label(provider: Provider) -> &'static str {
    match provider {
        Provider::Kixie => "Kixie",
        Provider::EightByEightSms => "8x8 SMS",
        Provider::EightByEightChatApps => "8x8 Chat Apps",
        Provider::Twilio => "Twilio",
        Provider::Generic => "generic",
    }
}

/// Reads a webhook body. 8x8 bodies may be one event or a JSON array of events; a failure in any
/// event fails the whole body so the provider retries it rather than herald dropping part of it.
pub fn parse_webhook(provider: Provider, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
    let ctx = Ctx { provider, label: label(provider), prefix: String::new() };
    match provider {
        Provider::EightByEightSms | Provider::EightByEightChatApps => match ctx.json(body)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Ctx { prefix: format!("[{i}]."), ..ctx.clone() }.eight_by_eight(item))
                .collect(),
            one => Ok(vec![ctx.eight_by_eight(&one)?]),
        },
        Provider::Kixie => Ok(vec![ctx.kixie(&ctx.json(body)?)?]),
        Provider::Twilio => Ok(vec![ctx.twilio(body)?]),
        Provider::Generic => Err(WebhookError::Unsupported { provider: ctx.label }),
    }
}

#[derive(Clone)]
struct Ctx {
    provider: Provider,
    label: &'static str,
    /// Where the event sits in a batch (`[2].`), so errors point at the right element.
    prefix: String,
}

impl Ctx {
    fn json(&self, body: &[u8]) -> Result<Value, WebhookError> {
        serde_json::from_slice(body)
            .map_err(|e| WebhookError::NotJson { provider: self.label, detail: e.to_string() })
    }

    fn missing(&self, field: &str) -> WebhookError {
        WebhookError::Missing { provider: self.label, field: format!("{}{field}", self.prefix) }
    }

    fn invalid(&self, field: &str, problem: impl Into<String>) -> WebhookError {
        WebhookError::Invalid {
            provider: self.label,
            field: format!("{}{field}", self.prefix),
            problem: problem.into(),
        }
    }

    fn opt_text(&self, root: &Value, path: &str) -> Result<Option<String>, WebhookError> {
        match at(root, path) {
            None => Ok(None),
            Some(v) => text(v).map(Some).ok_or_else(|| self.invalid(path, "not text")),
        }
    }

    fn req_text(&self, root: &Value, path: &str) -> Result<String, WebhookError> {
        self.opt_text(root, path)?.ok_or_else(|| self.missing(path))
    }

    fn opt_count(&self, root: &Value, path: &str) -> Result<Option<u32>, WebhookError> {
        match at(root, path) {
            None => Ok(None),
            Some(v) => count(v).map(Some).ok_or_else(|| self.invalid(path, "not a count")),
        }
    }

    fn object<'v>(&self, root: &'v Value, path: &str) -> Result<&'v Value, WebhookError> {
        match at(root, path) {
            None => Err(self.missing(path)),
            Some(v) if v.is_object() => Ok(v),
            Some(_) => Err(self.invalid(path, "not an object")),
        }
    }

    fn status(&self, field: &str, word: &str) -> Result<MessageStatus, WebhookError> {
        MessageStatus::from_provider(self.provider, word)
            .ok_or_else(|| self.invalid(field, format!("\"{word}\", not a status {} documents", self.label)))
    }

    fn price(&self, root: &Value, path: &str) -> Result<Option<Price>, WebhookError> {
        if at(root, path).is_none() {
            return Ok(None);
        }
        let total = self.opt_text(root, &format!("{path}.total"))?;
        let currency = self.opt_text(root, &format!("{path}.currency"))?;
        Ok(total.map(|total| Price { total, currency: currency.unwrap_or_default() }))
    }

    fn eight_by_eight(&self, event: &Value) -> Result<WebhookEvent, WebhookError> {
        if !event.is_object() {
            let what = if self.prefix.is_empty() { "the body" } else { self.prefix.trim_end_matches('.') };
            return Err(WebhookError::Invalid {
                provider: self.label,
                field: what.to_string(),
                problem: "not an object".into(),
            });
        }
        let event_type = self.req_text(event, "eventType")?;
        let p = self.object(event, "payload")?;
        let pc = self.within("payload");
        let chat = self.provider == Provider::EightByEightChatApps;
        match event_type.as_str() {
            "outbound_message_status_changed" => {
                let state = pc.req_text(p, "status.state")?;
                Ok(WebhookEvent::Status(StatusUpdate {
                    provider_message_id: pc.opt_text(p, "umid")?,
                    client_message_id: pc.opt_text(p, "clientMessageId")?,
                    status: pc.status("status.state", &state)?,
                    raw_state: state,
                    detail: pc.opt_text(p, "status.detail")?,
                    error_code: pc.opt_text(p, "status.errorCode")?,
                    error_message: pc.opt_text(p, "status.errorMessage")?,
                    price: pc.price(p, "price")?,
                    segments: pc.opt_count(p, "smsCount")?,
                    destination: pc.opt_text(p, if chat { "user.msisdn" } else { "destination" })?,
                    occurred_at: pc.opt_text(p, "status.timestamp")?,
                }))
            }
            "inbound_message_received" if chat => {
                // Channels without phone numbers (Viber, RCS ids) only give a channel user id.
                let from = match pc.opt_text(p, "user.msisdn")? {
                    Some(msisdn) => msisdn,
                    None => {
                        self.opt_text(p, "user.channelUserId")?.ok_or_else(|| pc.missing("user.msisdn"))?
                    }
                };
                // A picture or file has no text; its URL is the closest thing a flow can show.
                let text = match pc.opt_text(p, "content.text")? {
                    Some(t) => t,
                    None => self.opt_text(p, "content.url")?.ok_or_else(|| pc.missing("content.text"))?,
                };
                Ok(WebhookEvent::Inbound(InboundMessage {
                    provider_message_id: pc.opt_text(p, "umid")?,
                    from,
                    to: pc.req_text(p, "recipient.channelId")?,
                    text,
                    received_at: pc.opt_text(p, "timestamp")?,
                }))
            }
            "inbound_message_received" => Ok(WebhookEvent::Inbound(InboundMessage {
                provider_message_id: pc.opt_text(p, "umid")?,
                from: pc.req_text(p, "source")?,
                to: pc.req_text(p, "destination")?,
                text: pc.req_text(p, "body")?,
                received_at: pc.opt_text(p, "timestamp")?,
            })),
            other => Err(WebhookError::UnknownEvent { provider: self.label, event_type: other.to_string() }),
        }
    }

    /// A context for fields inside `key`, so errors name them from the top of the body.
    fn within(&self, key: &str) -> Ctx {
        Ctx { prefix: format!("{}{key}.", self.prefix), ..self.clone() }
    }

    fn kixie(&self, body: &Value) -> Result<WebhookEvent, WebhookError> {
        let d = self.object(body, "data")?;
        let dc = self.within("data");
        let direction = dc.req_text(d, "direction")?;
        let id = dc.opt_text(d, "messageid")?;
        // `customernumber` is the documented field; older payloads only carry `from`/`to`.
        let customer = |fallback: &str| -> Result<String, WebhookError> {
            match dc.opt_text(d, "customernumber")? {
                Some(n) => Ok(n),
                None => dc.opt_text(d, fallback)?.ok_or_else(|| dc.missing("customernumber")),
            }
        };
        match direction.to_ascii_lowercase().as_str() {
            "incoming" => Ok(WebhookEvent::Inbound(InboundMessage {
                provider_message_id: id,
                from: customer("from")?,
                to: match dc.opt_text(d, "businessnumber")? {
                    Some(n) => n,
                    None => dc.opt_text(d, "to")?.ok_or_else(|| dc.missing("businessnumber"))?,
                },
                text: dc.req_text(d, "message")?,
                received_at: None,
            })),
            "outgoing" => Ok(WebhookEvent::Status(StatusUpdate {
                provider_message_id: id,
                client_message_id: None,
                status: MessageStatus::Sent,
                raw_state: direction,
                detail: None,
                error_code: None,
                error_message: None,
                price: None,
                segments: None,
                destination: Some(customer("to")?),
                occurred_at: None,
            })),
            _ => Err(dc.invalid("direction", format!("\"{direction}\", not incoming or outgoing"))),
        }
    }

    fn twilio(&self, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        let params = crate::twilio::form_params(body);
        // Twilio leaves optional parameters empty rather than out.
        let get = |name: &str| {
            params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
        };
        let require = |name: &str| get(name).ok_or_else(|| self.missing(name));
        let sid = get("MessageSid").or_else(|| get("SmsSid"));
        let word = get("MessageStatus").or_else(|| get("SmsStatus"));
        let has_body = params.iter().any(|(k, _)| k == "Body");
        let inbound = match &word {
            Some(w) => w.eq_ignore_ascii_case("received") || w.eq_ignore_ascii_case("receiving"),
            None => has_body,
        };
        if inbound {
            return Ok(WebhookEvent::Inbound(InboundMessage {
                provider_message_id: sid,
                from: require("From")?,
                to: require("To")?,
                // A picture sent without words arrives with an empty Body.
                text: params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.clone()).unwrap_or_default(),
                received_at: None,
            }));
        }
        let word = word.ok_or_else(|| self.missing("MessageStatus"))?;
        let error_code = get("ErrorCode");
        let meaning =
            error_code.as_deref().and_then(|c| c.parse().ok()).and_then(crate::twilio::error_meaning);
        let segments = match get("NumSegments") {
            None => None,
            Some(n) => Some(n.trim().parse().map_err(|_| self.invalid("NumSegments", "not a count"))?),
        };
        Ok(WebhookEvent::Status(StatusUpdate {
            provider_message_id: Some(sid.ok_or_else(|| self.missing("MessageSid"))?),
            client_message_id: None,
            status: self.status("MessageStatus", &word)?,
            raw_state: word,
            detail: None,
            error_message: get("ErrorMessage").or_else(|| meaning.map(str::to_string)),
            error_code,
            price: get("Price").map(|total| Price { total, currency: get("PriceUnit").unwrap_or_default() }),
            segments,
            destination: get("To"),
            occurred_at: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(provider: Provider, body: &str) -> WebhookEvent {
        let mut events = parse_webhook(provider, body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    fn err(provider: Provider, body: &str) -> String {
        parse_webhook(provider, body.as_bytes()).unwrap_err().to_string()
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
        let WebhookEvent::Status(s) = one(Provider::EightByEightSms, SMS_DLR) else { panic!("a status") };
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
        let events = parse_webhook(Provider::EightByEightSms, body.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        let WebhookEvent::Status(s) = &events[1] else { panic!("a status") };
        assert_eq!(s.status, MessageStatus::Undelivered);
        assert_eq!(s.error_code.as_deref(), Some("5"));
        assert_eq!(s.error_message.as_deref(), Some("Absent subscriber"));
        assert_eq!(parse_webhook(Provider::EightByEightSms, b"[]").unwrap(), vec![]);
    }

    #[test]
    fn reads_an_8x8_sms_inbound() {
        let body = r#"{"namespace":"SMS","eventType":"inbound_message_received","description":"Inbound SMS",
            "payload":{"umid":"a1b2","subAccountId":"herald_demo","timestamp":"2024-05-01T10:01:00.00Z",
            "source":"+6598765432","destination":"+6580001111","body":"STOP","encoding":"GSM7","smsCount":1,
            "price":{"total":0,"perSms":0,"currency":"EUR"}}}"#;
        assert_eq!(
            one(Provider::EightByEightSms, body),
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
        let WebhookEvent::Status(s) = one(Provider::EightByEightChatApps, status) else { panic!("a status") };
        assert_eq!(s.status, MessageStatus::Read);
        assert_eq!(s.destination.as_deref(), Some("+6512345678"));
        assert_eq!(s.client_message_id.as_deref(), Some("run-7"));
        assert_eq!(s.price, None);

        let inbound = r#"{"namespace":"ChatApps","eventType":"inbound_message_received",
            "payload":{"umid":"beef","subAccountId":"herald_wa","user":{"msisdn":"+6512345678","name":"Ann"},
            "recipient":{"channel":"WhatsApp","channelId":"a1b2c3-whatsapp"},"type":"Text",
            "content":{"text":"Is my order shipped?"},"timestamp":"2024-05-01T10:03:00Z"}}"#;
        assert_eq!(
            one(Provider::EightByEightChatApps, inbound),
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
        assert_eq!(
            err(Provider::EightByEightSms, &no_state),
            "8x8 SMS webhook: payload.status.state is missing"
        );
        let bad_state = SMS_DLR.replace(r#""state": "delivered""#, r#""state": "vanished""#);
        let e = err(Provider::EightByEightSms, &bad_state);
        assert!(e.starts_with("8x8 SMS webhook: payload.status.state is \"vanished\""), "{e}");
        let unknown = SMS_DLR.replace("outbound_message_status_changed", "account_suspended");
        assert_eq!(
            err(Provider::EightByEightSms, &unknown),
            "8x8 SMS webhook: unknown eventType \"account_suspended\""
        );
        let arr = format!("[{SMS_DLR}, {no_state}]");
        assert_eq!(
            err(Provider::EightByEightSms, &arr),
            "8x8 SMS webhook: [1].payload.status.state is missing"
        );
        assert_eq!(err(Provider::EightByEightSms, "[1]"), "8x8 SMS webhook: [0] is not an object");
        assert_eq!(
            err(
                Provider::EightByEightSms,
                r#"{"eventType":"inbound_message_received","payload":{"source":"+1"}}"#
            ),
            "8x8 SMS webhook: payload.destination is missing"
        );
        assert_eq!(
            err(Provider::EightByEightChatApps, r#"{"eventType":"inbound_message_received","payload":{}}"#),
            "8x8 Chat Apps webhook: payload.user.msisdn is missing"
        );
        assert_eq!(
            err(Provider::EightByEightChatApps, r#"{"payload":{}}"#),
            "8x8 Chat Apps webhook: eventType is missing"
        );
        assert!(
            err(Provider::EightByEightSms, "not json").starts_with("8x8 SMS webhook: the body is not JSON")
        );
    }

    #[test]
    fn reads_kixie_webhooks() {
        let incoming = r#"{"data":{"messageid":"98765","from":"+15551230000","to":"+15559870000",
            "customernumber":"+15551230000","businessnumber":"+15559870000","direction":"incoming",
            "message":"Yes, 3pm works","businessid":"1234","userid":"55","email":"rep@example.com"}}"#;
        assert_eq!(
            one(Provider::Kixie, incoming),
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
        let WebhookEvent::Status(s) = one(Provider::Kixie, outgoing) else { panic!("a status") };
        assert_eq!(s.status, MessageStatus::Sent);
        assert_eq!(s.provider_message_id.as_deref(), Some("12345"));
        assert_eq!(s.destination.as_deref(), Some("+15551230000"));
        assert_eq!(
            err(Provider::Kixie, r#"{"data":{"message":"x"}}"#),
            "Kixie webhook: data.direction is missing"
        );
        assert_eq!(err(Provider::Kixie, r#"{"messageid":"1"}"#), "Kixie webhook: data is missing");
        assert_eq!(
            err(Provider::Kixie, r#"{"data":{"direction":"incoming","customernumber":"+1555"}}"#),
            "Kixie webhook: data.businessnumber is missing"
        );
        assert!(err(Provider::Kixie, r#"{"data":{"direction":"sideways"}}"#).contains("data.direction"));
    }

    #[test]
    fn reads_twilio_callbacks() {
        let body = "SmsSid=SM0123&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B15558675310\
            &MessageSid=SM0123&AccountSid=AC0001&From=%2B15017122661&ApiVersion=2010-04-01&ErrorCode=30003";
        let WebhookEvent::Status(s) = one(Provider::Twilio, body) else { panic!("a status") };
        assert_eq!(s.provider_message_id.as_deref(), Some("SM0123"));
        assert_eq!(s.status, MessageStatus::Undelivered);
        assert_eq!(s.raw_state, "undelivered");
        assert_eq!(s.error_code.as_deref(), Some("30003"));
        assert_eq!(s.destination.as_deref(), Some("+15558675310"));

        let optout = "MessageSid=SM9&MessageStatus=failed&ErrorCode=21610&To=%2B15558675310&NumSegments=2";
        let WebhookEvent::Status(s) = one(Provider::Twilio, optout) else { panic!("a status") };
        assert_eq!(s.status, MessageStatus::Failed);
        assert_eq!(s.error_message.as_deref(), Some("recipient opted out with STOP"));
        assert_eq!(s.segments, Some(2));

        let inbound = "ToCountry=US&SmsMessageSid=SM77&NumMedia=0&SmsSid=SM77&SmsStatus=received\
            &Body=Hello+%26+thanks&To=%2B15017122661&NumSegments=1&MessageSid=SM77&AccountSid=AC0001\
            &From=%2B15558675310&ApiVersion=2010-04-01";
        assert_eq!(
            one(Provider::Twilio, inbound),
            WebhookEvent::Inbound(InboundMessage {
                provider_message_id: Some("SM77".into()),
                from: "+15558675310".into(),
                to: "+15017122661".into(),
                text: "Hello & thanks".into(),
                received_at: None,
            })
        );
        assert_eq!(err(Provider::Twilio, "MessageSid=SM1"), "Twilio webhook: MessageStatus is missing");
        assert_eq!(err(Provider::Twilio, "MessageStatus=sent"), "Twilio webhook: MessageSid is missing");
        assert_eq!(err(Provider::Twilio, "Body=hi&From=%2B1555"), "Twilio webhook: To is missing");
        assert!(err(Provider::Twilio, "MessageSid=SM1&MessageStatus=teleported").contains("MessageStatus"));
    }

    #[test]
    fn generic_has_no_webhook() {
        assert_eq!(err(Provider::Generic, "{}"), "generic webhooks have no format herald knows");
    }
}
