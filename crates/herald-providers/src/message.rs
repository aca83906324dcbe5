//! What a send request asks for and what the provider's success answer says it did.

use serde_json::{Value, json};

use crate::json::{at, count, merged, text_at};
use crate::{MessageStatus, Price, Provider};

/// One message a request asks the provider to send.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboundMessage {
    pub destination: String,
    pub sender: Option<String>,
    pub text: Option<String>,
    /// Lowercase: "sms", "whatsapp", "viber", ...
    pub channel: String,
    pub client_message_id: Option<String>,
}

/// One message as the provider's answer describes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
    pub client_message_id: Option<String>,
    pub status: MessageStatus,
    pub segments: Option<u32>,
    pub encoding: Option<String>,
    pub price: Option<Price>,
    /// Why the provider refused this message, when it did.
    pub error: Option<String>,
}

/// The path without query or fragment, and without a trailing slash, split into segments.
fn segments(path: &str) -> Vec<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').split('/').collect()
}

impl Provider {
    /// The messages a request sends; empty when it sends none or herald does not know the API.
    pub fn outbound_messages(self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        if !method.eq_ignore_ascii_case("POST") {
            return Vec::new();
        }
        let segs = segments(path);
        let tail: Vec<&str> = segs.iter().rev().take(2).rev().copied().collect();
        match self {
            Provider::EightByEightSms | Provider::EightByEightChatApps => {
                let one = |m: &Value| {
                    if self == Provider::EightByEightSms { sms_message(m) } else { chat_message(m) }
                };
                match tail.as_slice() {
                    [_, "messages"] => one(body).into_iter().collect(),
                    ["messages", "batch"] => {
                        let template = at(body, "template").cloned().unwrap_or(Value::Null);
                        let listed = at(body, "messages").and_then(Value::as_array).into_iter().flatten();
                        let mut out: Vec<OutboundMessage> =
                            listed.filter_map(|m| one(&merged(&template, m))).collect();
                        if self == Provider::EightByEightSms {
                            let destinations =
                                at(body, "destinations").and_then(Value::as_array).into_iter().flatten();
                            out.extend(destinations.filter_map(|d| {
                                // A destination list shares the template, so no message has its own id.
                                let mut m = merged(&template, &json!({"destination": d}));
                                m.as_object_mut().map(|o| o.remove("clientMessageId"));
                                sms_message(&m)
                            }));
                        }
                        out
                    }
                    _ => Vec::new(),
                }
            }
            Provider::Kixie => {
                let event = text_at(body, "eventname").unwrap_or_default().to_ascii_lowercase();
                if tail != ["app", "event"] || !matches!(event.as_str(), "sms" | "bizsms") {
                    return Vec::new();
                }
                let Some(destination) = text_at(body, "target") else { return Vec::new() };
                vec![OutboundMessage {
                    destination,
                    sender: text_at(body, "fromNumber"),
                    text: text_at(body, "message"),
                    channel: "sms".into(),
                    client_message_id: None,
                }]
            }
            Provider::Twilio => {
                let is_messages = matches!(
                    segs.as_slice(),
                    ["", "2010-04-01", "Accounts", sid, "Messages.json"] if !sid.is_empty()
                );
                let Some(to) = text_at(body, "To").filter(|_| is_messages) else { return Vec::new() };
                // Twilio addresses WhatsApp as `whatsapp:+15551234567`.
                let (channel, destination) = match to.split_once(':') {
                    Some((channel, number)) if !channel.starts_with('+') => {
                        (channel.to_ascii_lowercase(), number.to_string())
                    }
                    _ => ("sms".to_string(), to),
                };
                vec![OutboundMessage {
                    destination,
                    sender: text_at(body, "From").or_else(|| text_at(body, "MessagingServiceSid")),
                    text: text_at(body, "Body"),
                    channel,
                    client_message_id: None,
                }]
            }
            Provider::Generic => Vec::new(),
        }
    }

    /// The messages a success answer describes, in the order of the request. Empty when the answer
    /// lists none (an 8x8 batch sent without `includeMessagesInResponse`) or is not the provider's JSON.
    pub fn accepted(self, body: &[u8]) -> Vec<Accepted> {
        let value = serde_json::from_slice::<Value>(body).ok();
        match self {
            Provider::EightByEightSms | Provider::EightByEightChatApps => {
                let Some(value) = value else { return Vec::new() };
                match at(&value, "messages").and_then(Value::as_array) {
                    Some(list) => list.iter().filter_map(|m| eight_by_eight_accepted(self, m)).collect(),
                    None => eight_by_eight_accepted(self, &value).into_iter().collect(),
                }
            }
            Provider::Twilio => {
                let Some(value) = value.filter(|v| at(v, "sid").is_some()) else { return Vec::new() };
                let status = text_at(&value, "status")
                    .and_then(|w| MessageStatus::from_provider(self, &w))
                    .unwrap_or(MessageStatus::Queued);
                let error = match (text_at(&value, "error_code"), text_at(&value, "error_message")) {
                    (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                    (c, m) => m.or(c),
                };
                vec![Accepted {
                    provider_message_id: text_at(&value, "sid"),
                    client_message_id: None,
                    status,
                    segments: at(&value, "num_segments").and_then(count),
                    encoding: None,
                    price: text_at(&value, "price").map(|total| Price {
                        total,
                        currency: text_at(&value, "price_unit").unwrap_or_default(),
                    }),
                    error,
                }]
            }
            Provider::Kixie => {
                let value = value.unwrap_or(Value::Null);
                let id = ["messageid", "id", "data.messageid"].iter().find_map(|p| text_at(&value, p));
                let refused = at(&value, "success") == Some(&Value::Bool(false));
                vec![Accepted {
                    provider_message_id: id,
                    client_message_id: None,
                    status: if refused { MessageStatus::Rejected } else { MessageStatus::Sent },
                    segments: None,
                    encoding: None,
                    price: None,
                    error: refused.then(|| {
                        text_at(&value, "error")
                            .or_else(|| text_at(&value, "message"))
                            .unwrap_or_else(|| "Kixie did not report success".into())
                    }),
                }]
            }
            Provider::Generic => Vec::new(),
        }
    }

    /// The request field where a provider takes a caller's id for deduplication, and its maximum length.
    pub fn idempotency_field(self) -> Option<(&'static str, usize)> {
        match self {
            Provider::EightByEightSms => Some(("clientMessageId", 350)),
            Provider::EightByEightChatApps => Some(("clientMessageId", 50)),
            Provider::Kixie | Provider::Twilio | Provider::Generic => None,
        }
    }
}

fn sms_message(m: &Value) -> Option<OutboundMessage> {
    Some(OutboundMessage {
        destination: text_at(m, "destination")?,
        sender: text_at(m, "source"),
        text: text_at(m, "text"),
        channel: "sms".into(),
        client_message_id: text_at(m, "clientMessageId"),
    })
}

fn chat_message(m: &Value) -> Option<OutboundMessage> {
    let channel = at(m, "channels")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| text_at(c, "channel"))
        .map_or_else(|| "whatsapp".to_string(), |c| c.to_ascii_lowercase());
    Some(OutboundMessage {
        destination: text_at(m, "user.msisdn").or_else(|| text_at(m, "user.channelUserId"))?,
        sender: None,
        text: text_at(m, "content.text").or_else(|| text_at(m, "content.fallbackText")),
        channel,
        client_message_id: text_at(m, "clientMessageId"),
    })
}

fn eight_by_eight_accepted(provider: Provider, m: &Value) -> Option<Accepted> {
    if !m.is_object() || (at(m, "umid").is_none() && at(m, "status").is_none()) {
        return None;
    }
    // SMS answers `status.code` in capitals, Chat Apps `status.state` in lowercase.
    let word = text_at(m, "status.code").or_else(|| text_at(m, "status.state"));
    let status = word.as_deref().and_then(|w| MessageStatus::from_provider(provider, w));
    let status = status.unwrap_or(MessageStatus::Queued);
    let error = (status == MessageStatus::Rejected).then(|| {
        let said = text_at(m, "status.errorMessage").or_else(|| text_at(m, "status.description"));
        match (text_at(m, "status.errorCode"), said) {
            (Some(code), Some(said)) => format!("{code}: {said}"),
            (code, said) => said.or(code).unwrap_or_else(|| "rejected".into()),
        }
    });
    Some(Accepted {
        provider_message_id: text_at(m, "umid"),
        client_message_id: text_at(m, "clientMessageId"),
        status,
        segments: at(m, "smsCount").and_then(count),
        encoding: text_at(m, "encoding"),
        price: text_at(m, "price.total")
            .map(|total| Price { total, currency: text_at(m, "price.currency").unwrap_or_default() }),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMS_PATH: &str = "/api/v1/subaccounts/herald_demo/messages";

    fn sms(destination: &str, sender: Option<&str>, text: &str, id: Option<&str>) -> OutboundMessage {
        OutboundMessage {
            destination: destination.into(),
            sender: sender.map(Into::into),
            text: Some(text.into()),
            channel: "sms".into(),
            client_message_id: id.map(Into::into),
        }
    }

    #[test]
    fn reads_8x8_sms_requests() {
        let p = Provider::EightByEightSms;
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
        let destinations =
            json!({"destinations": ["+6511111111", 6522222222u64], "template": {"text": "Hello"}});
        assert_eq!(
            p.outbound_messages("POST", &format!("{SMS_PATH}/batch/"), &destinations),
            vec![sms("+6511111111", None, "Hello", None), sms("6522222222", None, "Hello", None)]
        );
    }

    #[test]
    fn reads_8x8_chat_apps_requests() {
        let p = Provider::EightByEightChatApps;
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
    fn reads_kixie_requests() {
        let p = Provider::Kixie;
        let sms_body = json!({"businessid": "1", "apikey": "k", "target": "+15551230000", "eventname": "sms",
            "message": "Hi", "email": "rep@example.com"});
        assert_eq!(
            p.outbound_messages("POST", "/app/event", &sms_body),
            vec![sms("+15551230000", None, "Hi", None)]
        );
        let biz = json!({"businessid": "1", "apikey": "k", "target": "+15551230000", "eventname": "bizsms",
            "message": "Hi team", "id": "9", "fromNumber": "+15559870000"});
        assert_eq!(
            p.outbound_messages("POST", "/app/event", &biz),
            vec![sms("+15551230000", Some("+15559870000"), "Hi team", None)]
        );
        let call = json!({"target": "+15551230000", "eventname": "call"});
        assert_eq!(p.outbound_messages("POST", "/app/event", &call), vec![]);
        assert_eq!(p.outbound_messages("POST", "/app/other", &sms_body), vec![]);
    }

    #[test]
    fn reads_twilio_requests() {
        let p = Provider::Twilio;
        let path = "/2010-04-01/Accounts/AC0001/Messages.json";
        let body = json!({"To": "+15558675310", "From": "+15017122661", "Body": "Hi"});
        assert_eq!(
            p.outbound_messages("POST", path, &body),
            vec![sms("+15558675310", Some("+15017122661"), "Hi", None)]
        );
        let wa = json!({"To": "whatsapp:+15558675310", "MessagingServiceSid": "MG1", "Body": "Hi"});
        let got = p.outbound_messages("POST", path, &wa);
        assert_eq!((got[0].channel.as_str(), got[0].destination.as_str()), ("whatsapp", "+15558675310"));
        assert_eq!(got[0].sender.as_deref(), Some("MG1"));
        assert_eq!(p.outbound_messages("POST", "/2010-04-01/Accounts/AC0001/Calls.json", &body), vec![]);
        assert_eq!(Provider::Generic.outbound_messages("POST", path, &body), vec![]);
    }

    #[test]
    fn reads_8x8_answers() {
        let p = Provider::EightByEightSms;
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

        let chat = Provider::EightByEightChatApps;
        let got = chat.accepted(br#"{"umid":"u1","user":{"msisdn":"+65"},"clientMessageId":"r1","status":{"state":"queued","timestamp":"2024-05-01T10:00:00Z"}}"#);
        assert_eq!(
            (got[0].status, got[0].provider_message_id.as_deref()),
            (MessageStatus::Queued, Some("u1"))
        );
        let got = chat.accepted(br#"{"messages":[{"umid":"u2","status":{"state":"rejected","errorCode":3038,"errorMessage":"Template not found for provided name and language"}}]}"#);
        assert_eq!(got[0].status, MessageStatus::Rejected);
        assert_eq!(got[0].error.as_deref(), Some("3038: Template not found for provided name and language"));
        assert_eq!(chat.accepted(b"OK"), vec![]);
    }

    #[test]
    fn reads_twilio_and_kixie_answers() {
        let body = br#"{"sid":"SM1234","status":"queued","num_segments":"2","price":null,"price_unit":"USD",
            "error_code":null,"error_message":null,"to":"+15558675310"}"#;
        let got = Provider::Twilio.accepted(body);
        assert_eq!((got[0].provider_message_id.as_deref(), got[0].segments), (Some("SM1234"), Some(2)));
        assert_eq!(
            (got[0].status, got[0].price.clone(), got[0].error.clone()),
            (MessageStatus::Queued, None, None)
        );
        let priced = Provider::Twilio
            .accepted(br#"{"sid":"SM1","status":"sent","price":"-0.00750","price_unit":"USD"}"#);
        assert_eq!(priced[0].price, Some(Price { total: "-0.00750".into(), currency: "USD".into() }));
        assert_eq!(priced[0].status, MessageStatus::Sent);

        let k = Provider::Kixie;
        assert_eq!(
            k.accepted(br#"{"success":true,"messageid":"m1"}"#)[0].provider_message_id.as_deref(),
            Some("m1")
        );
        assert_eq!(
            k.accepted(br#"{"success":true,"data":{"messageid":77}}"#)[0].provider_message_id.as_deref(),
            Some("77")
        );
        let plain = k.accepted(br#"{"success":true}"#);
        assert_eq!(
            (plain.len(), plain[0].status, plain[0].provider_message_id.clone()),
            (1, MessageStatus::Sent, None)
        );
        let no = k.accepted(br#"{"success":false,"error":"bad target"}"#);
        assert_eq!((no[0].status, no[0].error.as_deref()), (MessageStatus::Rejected, Some("bad target")));
    }

    #[test]
    fn idempotency_fields() {
        assert_eq!(Provider::EightByEightSms.idempotency_field(), Some(("clientMessageId", 350)));
        assert_eq!(Provider::EightByEightChatApps.idempotency_field(), Some(("clientMessageId", 50)));
        assert_eq!(Provider::Kixie.idempotency_field(), None);
        assert_eq!(Provider::Twilio.idempotency_field(), None);
    }
}
