//! 8x8's SMS API: single sends, batches of `messages` or of `destinations` sharing a template, and
//! batch coalescing of single sends queued on one credential.

use super::*;
use crate::connector::{BatchSplit, Batching, IdempotencyField, WebhookAuth, rewrite_listed_messages};
use std::collections::HashMap;

pub struct Sms;

/// Messages per coalesced batch request: far under 8x8's 10,000, and under herald's request size cap
/// for any SMS.
const BATCH_MAX: usize = 500;

impl Connector for Sms {
    fn name(&self) -> &'static str {
        "8x8-sms"
    }

    fn label(&self) -> &'static str {
        "8x8 SMS"
    }

    fn serves_host(&self, host: &str) -> bool {
        serves("sms", host)
    }

    fn emulator(&self) -> Option<&dyn crate::emulator::Emulator> {
        Some(&super::emulator::SMS)
    }

    fn interpret(&self, status: u16, body: &[u8]) -> Verdict {
        interpret(self, status, body)
    }

    fn error_reason(&self, status: u16, body: &[u8]) -> String {
        error_reason(status, body)
    }

    fn class_by_code(&self, body: &[u8]) -> Option<FailureClass> {
        class_by_code(body)
    }

    fn status_word(&self, word: &str) -> Option<MessageStatus> {
        status_word(word)
    }

    fn default_retry(&self) -> RetryPolicy {
        default_retry()
    }

    fn default_rate_limit(&self) -> RateLimit {
        default_rate_limit()
    }

    fn idempotency_field(&self) -> Option<IdempotencyField> {
        Some(IdempotencyField { field: "clientMessageId", max_len: 350 })
    }

    /// A `destinations` + `template` batch carries no per-message `clientMessageId`, so 8x8 cannot
    /// recognise its resend; every other form can.
    fn recognises_resend(&self, body: &Value) -> bool {
        body.get("destinations").is_none()
    }

    fn outbound_messages(&self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        let Some(mut messages) = listed_messages(method, path, body, sms_message) else { return Vec::new() };
        if is_batch(path) {
            let template = at(body, "template").cloned().unwrap_or(Value::Null);
            let destinations = at(body, "destinations").and_then(Value::as_array).into_iter().flatten();
            messages.extend(destinations.filter_map(|d| {
                // A destination list shares the template, so no message has its own id.
                let mut m = with_destination(&template, d);
                m.as_object_mut().map(|o| o.remove("clientMessageId"));
                sms_message(&m)
            }));
        }
        messages
    }

    fn accepted(&self, body: &[u8]) -> Vec<Accepted> {
        accepted(self, body)
    }

    fn destination_pointer(&self) -> Option<&'static str> {
        Some("/destination")
    }

    /// 8x8 refuses a text of more than 10 parts (code 1004).
    fn max_parts(&self) -> Option<u32> {
        Some(10)
    }

    fn text_inputs(&self) -> &'static [&'static str] {
        &["text"]
    }

    /// A `messages` list keeps its kept items; a `destinations` list is rebuilt from the kept ones.
    fn rewrite_batch(&self, body: &mut Value, kept: &[OutboundMessage], positions: &[usize]) {
        if rewrite_listed_messages(self, body, kept, positions) {
            return;
        }
        if let Some(object) = body.as_object_mut()
            && object.contains_key("destinations")
        {
            let destinations = kept.iter().map(|m| Value::String(m.destination.clone())).collect();
            object.insert("destinations".into(), Value::Array(destinations));
        }
    }

    fn batching(&self) -> Option<&dyn Batching> {
        Some(self)
    }

    fn webhook_auth(&self) -> Option<WebhookAuth> {
        Some(WebhookAuth::EndpointSecret)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        parse_webhook(&Sms, body, false)
    }
}

impl Batching for Sms {
    /// A single SMS (a JSON object with `destination`) posted to `.../messages`.
    fn coalescible(&self, method: &str, path: &str, body: &Value) -> bool {
        method.eq_ignore_ascii_case("POST")
            && path.ends_with("/messages")
            && body.get("destination").is_some()
    }

    fn batch_request(&self, path: &str, messages: Vec<Value>) -> (String, Value) {
        (format!("{path}/batch"), json!({"messages": messages, "includeMessagesInResponse": true}))
    }

    fn split_answer(&self, status: u16, body: &[u8], messages: &[Value]) -> BatchSplit {
        match status {
            200..=299 => {}
            400 | 404 | 413 | 422 => return BatchSplit::Alone,
            _ => return BatchSplit::Shared,
        }
        let entries = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|body| body.get("messages").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        // By clientMessageId, which herald sets on every message; by position when one is missing.
        let by_client_id: HashMap<&str, &Value> = entries
            .iter()
            .filter_map(|entry| Some((entry.get("clientMessageId")?.as_str()?, entry)))
            .collect();
        let answers = messages
            .iter()
            .enumerate()
            .map(|(position, message)| {
                let client_id = message.get("clientMessageId").and_then(Value::as_str);
                client_id
                    .and_then(|id| by_client_id.get(id).copied())
                    .or_else(|| (entries.len() == messages.len()).then(|| &entries[position]))
                    .map(|entry| serde_json::to_vec(entry).unwrap_or_default())
            })
            .collect();
        BatchSplit::PerMessage(answers)
    }

    fn max_batch(&self) -> usize {
        BATCH_MAX
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
