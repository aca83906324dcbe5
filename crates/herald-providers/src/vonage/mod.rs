//! Vonage's SMS API: `POST https://rest.nexmo.com/sms/json`, form- or JSON-encoded, with `api_key` and
//! `api_secret` in the body (formulas on the named credential's principal, like Kixie's), numbers in
//! E.164 without the `+`.
//!
//! Vonage answers HTTP 200 whether or not it took the message: each message (a long text is one per
//! part) carries a `status`, `0` or one of the codes of `codes.rs`, each judged there (throttled,
//! internal error and too many binds are retried, a barred number is an opt-out, a de-activated one an
//! invalid destination, the rest permanent). It recognises no resend, so a send whose outcome is
//! unknown is never repeated; herald's key still goes in `client-ref`, which Vonage echoes in every
//! delivery receipt, so a receipt that outruns the answer, or that reports a second part, finds its
//! message. Receipts and inbound messages are JSON or form posts (the account's "POST-JSON" or "POST"
//! webhook setting); they are not signed here: the endpoint's own secret, in the URL, authenticates
//! them.

pub mod codes;
pub mod emulator;
#[cfg(test)]
mod tests;

use crate::connector::{Connector, IdempotencyField, Verdict, WebhookAuth};
use crate::emulator::{Emulator, form_as_json, form_fields};
use crate::json::{at, count, text_at};
use crate::message::segments;
use crate::webhook::Ctx;
use crate::{
    Accepted, FailureClass, InboundMessage, MessageStatus, OutboundMessage, Price, RateLimit, StatusUpdate,
    WebhookError, WebhookEvent,
};
use codes::{SubmitCode, dlr_error, submit_code};
use serde_json::Value;

pub struct Vonage;

/// Where herald's key goes: Vonage's own reference, up to 100 characters, echoed in receipts.
const CLIENT_REF: IdempotencyField = IdempotencyField { field: "client-ref", max_len: 100 };

impl Connector for Vonage {
    fn name(&self) -> &'static str {
        "vonage-sms"
    }

    fn label(&self) -> &'static str {
        "Vonage SMS"
    }

    fn serves_host(&self, host: &str) -> bool {
        host == "rest.nexmo.com"
    }

    fn interpret(&self, status: u16, body: &[u8]) -> Verdict {
        if !(200..300).contains(&status) {
            return Verdict::Failure { reason: self.error_reason(status, body) };
        }
        match answer(body) {
            Some(Answer { refused: None, .. }) => Verdict::Success,
            Some(Answer { refused: Some(refused), .. }) => Verdict::Failure {
                reason: format!("HTTP {status} but Vonage refused the message: {refused}"),
            },
            None => Verdict::Failure {
                reason: format!(
                    "HTTP {status} but the body is not Vonage's answer (`messages`, each with a `status`)"
                ),
            },
        }
    }

    fn error_reason(&self, status: u16, body: &[u8]) -> String {
        match answer(body).and_then(|a| a.refused) {
            Some(refused) => format!("HTTP {status}, Vonage {refused}"),
            None => format!("HTTP {status}"),
        }
    }

    fn error_code(&self, body: &[u8]) -> Option<String> {
        answer(body)?.refused.map(|r| r.status)
    }

    fn class_by_code(&self, body: &[u8]) -> Option<FailureClass> {
        answer(body)?.refused?.meaning.map(|m| m.class)
    }

    /// The `status` of a delivery receipt.
    fn status_word(&self, word: &str) -> Option<MessageStatus> {
        match word.trim().to_ascii_lowercase().as_str() {
            // Taken by the carrier, or held by it until the handset is reachable.
            "accepted" | "buffered" => Some(MessageStatus::Sent),
            "delivered" => Some(MessageStatus::Delivered),
            "expired" => Some(MessageStatus::Undelivered),
            "failed" => Some(MessageStatus::Failed),
            "rejected" => Some(MessageStatus::Rejected),
            // The carrier said nothing that tells: kept as a receipt, it moves no message.
            "unknown" => Some(MessageStatus::Unknown),
            _ => None,
        }
    }

    /// Vonage's default outbound throughput per API key.
    fn default_rate_limit(&self) -> RateLimit {
        RateLimit { per_second: Some(30), per_day: None }
    }

    fn idempotency_field(&self) -> Option<IdempotencyField> {
        Some(CLIENT_REF)
    }

    /// Vonage deduplicates nothing, but echoes `client-ref` in each receipt: the key is set on every
    /// send so that receipts find their message, while [`Connector::recognises_resend`] stays false and
    /// a send whose outcome is unknown is still never repeated.
    fn place_idempotency_key(&self, body: &mut Value, key: &str) -> Option<String> {
        let object = body.as_object_mut()?;
        if object.contains_key(CLIENT_REF.field) {
            return None;
        }
        let key: String = key.chars().take(CLIENT_REF.max_len).collect();
        object.insert(CLIENT_REF.field.to_string(), Value::String(key.clone()));
        Some(key)
    }

    fn outbound_messages(&self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        // The spec's server is `https://rest.nexmo.com/sms`, so an external service's path is `/json`;
        // an HTTP callout on `https://rest.nexmo.com` says `/sms/json`.
        let is_send = method.eq_ignore_ascii_case("POST")
            && matches!(segments(path).as_slice(), ["", "json"] | ["", "sms", "json"]);
        let Some(to) = text_at(body, "to").filter(|_| is_send) else { return Vec::new() };
        vec![OutboundMessage {
            destination: to,
            sender: text_at(body, "from").map(|from| plus_if_number(&from)),
            text: text_at(body, "text"),
            channel: "sms".into(),
            client_message_id: text_at(body, CLIENT_REF.field),
        }]
    }

    /// One message, however many parts Vonage split it into: the first part's id (later parts'
    /// receipts find it by `client-ref`), the parts as segments, the price when it is one part.
    fn accepted(&self, body: &[u8]) -> Vec<Accepted> {
        let Some(answer) = answer(body).filter(|a| a.refused.is_none()) else { return Vec::new() };
        let first = &answer.messages[0];
        let parts = at(&answer.body, "message-count").and_then(count).unwrap_or(answer.messages.len() as u32);
        vec![Accepted {
            provider_message_id: text_at(first, "message-id"),
            client_message_id: text_at(first, "client-ref"),
            status: MessageStatus::Queued,
            segments: Some(parts),
            encoding: None,
            // Vonage names no currency: prices are in the account's.
            price: (parts == 1)
                .then(|| text_at(first, "message-price"))
                .flatten()
                .map(|total| Price { total, currency: String::new() }),
            error: None,
        }]
    }

    fn destination_pointer(&self) -> Option<&'static str> {
        Some("/to")
    }

    /// The SMS API only texts phones.
    fn destination_is_phone(&self, _message: &OutboundMessage) -> bool {
        true
    }

    /// Vonage wants E.164 without the `+` (`447700900000`).
    fn write_destination(&self, _written: &str, e164: &str) -> String {
        e164.trim_start_matches('+').to_string()
    }

    fn text_inputs(&self) -> &'static [&'static str] {
        &["text"]
    }

    fn webhook_auth(&self) -> Option<WebhookAuth> {
        Some(WebhookAuth::EndpointSecret)
    }

    fn webhook_credential_fields(&self) -> &'static [&'static str] {
        // Vonage names the account's key in every receipt and inbound message.
        &["api-key", "api_key", "api-secret", "api_secret"]
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        let ctx = Ctx::new(&Vonage);
        let fields = if body.trim_ascii_start().starts_with(b"{") {
            ctx.json(body)?
        } else {
            form_as_json(&form_fields(body))
        };
        Ok(vec![parse_event(&ctx, &fields)?])
    }

    fn emulator(&self) -> Option<&dyn Emulator> {
        Some(&emulator::VonageEmulator)
    }
}

/// A send's answer: `{"message-count": "1", "messages": [{"status": "0", "message-id": ...}, ...]}`.
struct Answer {
    body: Value,
    messages: Vec<Value>,
    /// The first part Vonage did not take, if any.
    refused: Option<Refused>,
}

struct Refused {
    status: String,
    error_text: Option<String>,
    meaning: Option<&'static SubmitCode>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(meaning) = self.meaning {
            write!(f, " ({})", meaning.name)?;
        }
        if let Some(text) = &self.error_text {
            write!(f, ": {}", text.trim_end_matches('.'))?;
        }
        if let Some(meaning) = self.meaning {
            write!(f, "; {}", meaning.hint)?;
        }
        Ok(())
    }
}

/// Reads an answer; `None` when it is not Vonage's JSON with at least one message and a status each.
fn answer(body: &[u8]) -> Option<Answer> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let messages = body.get("messages")?.as_array()?.clone();
    if messages.is_empty() || messages.iter().any(|m| text_at(m, "status").is_none()) {
        return None;
    }
    let refused = messages.iter().find_map(|m| {
        let status = text_at(m, "status")?;
        (status.trim() != "0").then(|| Refused {
            meaning: submit_code(&status),
            error_text: text_at(m, "error-text"),
            status,
        })
    });
    Some(Answer { body, messages, refused })
}

/// Vonage writes numbers as digits without `+`; herald keeps E.164, so consent and receipts compare
/// alike. An alphanumeric sender stays as it is.
fn plus_if_number(value: &str) -> String {
    let value = value.trim();
    if (7..=15).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{value}")
    } else {
        value.to_string()
    }
}

/// A delivery receipt (`messageId`, `status`, ...) or an inbound message (`msisdn`, `text`, ...); every
/// value is text.
fn parse_event(ctx: &Ctx, fields: &Value) -> Result<WebhookEvent, WebhookError> {
    let inbound = at(fields, "status").is_none()
        && at(fields, "msisdn").is_some()
        && (at(fields, "text").is_some() || at(fields, "keyword").is_some());
    if inbound {
        return Ok(WebhookEvent::Inbound(InboundMessage {
            provider_message_id: ctx.opt_text(fields, "messageId")?,
            from: plus_if_number(&ctx.req_text(fields, "msisdn")?),
            to: plus_if_number(&ctx.req_text(fields, "to")?),
            // A binary message has no text.
            text: ctx.opt_text(fields, "text")?.unwrap_or_default(),
            received_at: ctx.opt_text(fields, "message-timestamp")?,
        }));
    }
    let word = ctx.req_text(fields, "status")?;
    let error_code = ctx.opt_text(fields, "err-code")?.filter(|c| c.trim() != "0");
    Ok(WebhookEvent::Status(StatusUpdate {
        provider_message_id: Some(ctx.req_text(fields, "messageId")?),
        client_message_id: ctx.opt_text(fields, "client-ref")?,
        status: ctx.status("status", &word)?,
        raw_state: word,
        detail: None,
        error_message: error_code.as_deref().and_then(dlr_error).map(str::to_string),
        error_code,
        price: ctx.opt_text(fields, "price")?.map(|total| Price { total, currency: String::new() }),
        segments: None,
        destination: ctx.opt_text(fields, "msisdn")?.map(|n| plus_if_number(&n)),
        occurred_at: match ctx.opt_text(fields, "scts")? {
            Some(scts) => Some(scts_time(&scts).ok_or_else(|| ctx.invalid("scts", "not YYMMDDHHMM"))?),
            None => ctx.opt_text(fields, "message-timestamp")?,
        },
    }))
}

/// When the carrier reported, from `scts` (`YYMMDDHHMM`, UTC), as RFC 3339.
fn scts_time(scts: &str) -> Option<String> {
    let scts = scts.trim();
    if scts.len() != 10 || !scts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = chrono::NaiveDateTime::parse_from_str(&format!("20{scts}"), "%Y%m%d%H%M").ok()?;
    Some(time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
