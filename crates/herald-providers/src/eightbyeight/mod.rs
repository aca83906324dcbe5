//! 8x8: the SMS API and Chat Apps (WhatsApp, Viber, RCS, ...), two connectors with one house style.
//!
//! Both take `POST /api/v1/subaccounts/{subAccountId}/messages` (and `/messages/batch`) with a Bearer
//! key, answer errors as `{code, message, errorId, timestamp}`, may refuse a message inside a 200
//! (`REJECTED`), and deduplicate a resend by the `clientMessageId` herald sets: the only providers
//! here where a send whose outcome is unknown may safely go out again. Their receipts are JSON, one
//! event or an array, unsigned (a static Authorization header chosen by the customer).

mod chatapps;
pub mod emulator;
mod sms;

pub use chatapps::ChatApps;
pub use sms::Sms;

use crate::connector::{Connector, Verdict};
use crate::json::{at, count, merged, text_at};
use crate::message::segments;
use crate::webhook::Ctx;
use crate::{
    Accepted, FailureClass, InboundMessage, MessageStatus, OutboundMessage, Price, RateLimit, RetryPolicy,
    StatusUpdate, WebhookError, WebhookEvent,
};
use serde_json::{Value, json};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// Whether `host` is the `product` host of one of 8x8's regions (`sms.8x8.com`, `sms.us.8x8.com`, ...).
fn serves(product: &str, host: &str) -> bool {
    host.strip_prefix(product).is_some_and(|rest| rest.starts_with('.')) && host.contains(".8x8.")
}

/// A 2xx answer may still refuse the message: `status.code` (SMS) or `status.state` (Chat Apps)
/// `rejected`.
fn interpret(connector: &dyn Connector, status: u16, body: &[u8]) -> Verdict {
    if !(200..300).contains(&status) {
        return Verdict::Failure { reason: connector.error_reason(status, body) };
    }
    let rejected = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let status = v.get("status")?;
        let code = status.get("code").or_else(|| status.get("state"))?.as_str()?;
        code.eq_ignore_ascii_case("rejected")
            .then(|| status.get("description").and_then(Value::as_str).unwrap_or("rejected").to_string())
    });
    match rejected {
        Some(why) => {
            Verdict::Failure { reason: format!("HTTP {status} but 8x8 rejected the message: {why}") }
        }
        None => Verdict::Success,
    }
}

/// "HTTP {status}, 8x8 error {code}: {message}" when the body is 8x8's error JSON.
fn error_reason(status: u16, body: &[u8]) -> String {
    let error = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let code = text_at(&v, "code")?;
        Some((code, text_at(&v, "message").unwrap_or_default()))
    });
    match error {
        Some((code, message)) => format!("HTTP {status}, 8x8 error {code}: {message}"),
        None => format!("HTTP {status}"),
    }
}

/// 8x8's code 1002 is an invalid MSISDN, whatever the HTTP status.
fn class_by_code(body: &[u8]) -> Option<FailureClass> {
    let value: Value = serde_json::from_slice(body).ok()?;
    (value.get("code")?.as_u64()? == 1002).then_some(FailureClass::InvalidDestination)
}

fn status_word(word: &str) -> Option<MessageStatus> {
    match word.trim().to_ascii_lowercase().as_str() {
        "queued" => Some(MessageStatus::Queued),
        "rejected" => Some(MessageStatus::Rejected),
        "sent" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "undelivered" => Some(MessageStatus::Undelivered),
        "read" => Some(MessageStatus::Read),
        _ => None,
    }
}

fn default_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        max_elapsed: Duration::from_secs(3600),
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(60),
    }
}

/// 1,800 requests a second per subaccount.
fn default_rate_limit() -> RateLimit {
    RateLimit { per_second: Some(1800), per_day: None }
}

/// The messages of a single send (`.../messages`) or of a batch (`.../messages/batch`, each item of
/// `messages` laid over `template`), read with `one`.
fn listed_messages(
    method: &str,
    path: &str,
    body: &Value,
    one: fn(&Value) -> Option<OutboundMessage>,
) -> Option<Vec<OutboundMessage>> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let segs = segments(path);
    let tail: Vec<&str> = segs.iter().rev().take(2).rev().copied().collect();
    match tail.as_slice() {
        [_, "messages"] => Some(one(body).into_iter().collect()),
        ["messages", "batch"] => {
            let template = at(body, "template").cloned().unwrap_or(Value::Null);
            let listed = at(body, "messages").and_then(Value::as_array).into_iter().flatten();
            Some(listed.filter_map(|m| one(&merged(&template, m))).collect())
        }
        _ => None,
    }
}

/// Whether a batch path was asked (the `destinations` form of SMS batches reads it too).
fn is_batch(path: &str) -> bool {
    segments(path).ends_with(&["messages", "batch"])
}

/// The messages an answer describes: one entry, or each of `messages`.
fn accepted(connector: &dyn Connector, body: &[u8]) -> Vec<Accepted> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    match at(&value, "messages").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(|m| accepted_one(connector, m)).collect(),
        None => accepted_one(connector, &value).into_iter().collect(),
    }
}

fn accepted_one(connector: &dyn Connector, m: &Value) -> Option<Accepted> {
    if !m.is_object() || (at(m, "umid").is_none() && at(m, "status").is_none()) {
        return None;
    }
    // SMS answers `status.code` in capitals, Chat Apps `status.state` in lowercase.
    let word = text_at(m, "status.code").or_else(|| text_at(m, "status.state"));
    let status = word.as_deref().and_then(|w| connector.status_word(w)).unwrap_or(MessageStatus::Queued);
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

/// 8x8 bodies may be one event or a JSON array of events.
fn parse_webhook(
    connector: &'static dyn Connector,
    body: &[u8],
    chat: bool,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let ctx = Ctx::new(connector);
    match ctx.json(body)? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_event(&Ctx { prefix: format!("[{i}]."), ..ctx.clone() }, item, chat))
            .collect(),
        one => Ok(vec![parse_event(&ctx, &one, chat)?]),
    }
}

fn parse_event(ctx: &Ctx, event: &Value, chat: bool) -> Result<WebhookEvent, WebhookError> {
    if !event.is_object() {
        let what = if ctx.prefix.is_empty() { "the body" } else { ctx.prefix.trim_end_matches('.') };
        return Err(WebhookError::Invalid {
            provider: ctx.label,
            field: what.to_string(),
            problem: "not an object".into(),
        });
    }
    let event_type = ctx.req_text(event, "eventType")?;
    let p = ctx.object(event, "payload")?;
    let pc = ctx.within("payload");
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
                None => ctx.opt_text(p, "user.channelUserId")?.ok_or_else(|| pc.missing("user.msisdn"))?,
            };
            // A picture or file has no text; its URL is the closest thing a flow can show.
            let text = match pc.opt_text(p, "content.text")? {
                Some(t) => t,
                None => ctx.opt_text(p, "content.url")?.ok_or_else(|| pc.missing("content.text"))?,
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
        other => Err(WebhookError::UnknownEvent { provider: ctx.label, event_type: other.to_string() }),
    }
}

/// A message a `destinations` list addresses, sharing the batch's template.
fn with_destination(template: &Value, destination: &Value) -> Value {
    merged(template, &json!({"destination": destination}))
}
