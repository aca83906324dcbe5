//! Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, Basic
//! auth. Errors carry Twilio's own code (21610: the recipient said STOP); status callbacks are form
//! posts signed with the account's auth token (`X-Twilio-Signature`). No idempotency key exists, so a
//! send whose outcome is unknown is never repeated.

pub mod emulator;
mod signature;

pub use signature::{TwilioError, error_meaning, form_params, parse_error, signature, verify_signature};

use crate::connector::{Connector, SignedRequest, WebhookAuth};
use crate::emulator::Emulator;
use crate::json::{at, count, text_at};
use crate::message::segments;
use crate::webhook::Ctx;
use crate::{
    Accepted, FailureClass, InboundMessage, MessageStatus, OutboundMessage, Price, RetryPolicy, StatusUpdate,
    WebhookError, WebhookEvent,
};
use serde_json::Value;
use std::time::Duration;

#[cfg(test)]
mod tests;

pub struct Twilio;

/// The header Twilio signs its callbacks in.
const SIGNATURE_HEADER: &str = "x-twilio-signature";

impl Connector for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn label(&self) -> &'static str {
        "Twilio"
    }

    fn serves_host(&self, host: &str) -> bool {
        host == "api.twilio.com"
    }

    fn error_reason(&self, status: u16, body: &[u8]) -> String {
        match parse_error(body) {
            Some(e) => {
                let meaning = error_meaning(e.code).map(|m| format!(" ({m})")).unwrap_or_default();
                format!(
                    "HTTP {status}, Twilio error {}: {}{meaning}",
                    e.code,
                    e.message.trim_end_matches('.')
                )
            }
            None => format!("HTTP {status}"),
        }
    }

    fn error_code(&self, body: &[u8]) -> Option<String> {
        parse_error(body).map(|e| e.code.to_string())
    }

    fn class_by_code(&self, body: &[u8]) -> Option<FailureClass> {
        match parse_error(body)?.code {
            20429 => Some(FailureClass::Retryable),
            21610 => Some(FailureClass::OptedOut),
            21211 | 21614 => Some(FailureClass::InvalidDestination),
            _ => None,
        }
    }

    /// Words that describe inbound messages (`received`) are not outbound statuses.
    fn status_word(&self, word: &str) -> Option<MessageStatus> {
        match word.trim().to_ascii_lowercase().as_str() {
            "accepted" | "scheduled" | "queued" | "sending" => Some(MessageStatus::Queued),
            "sent" => Some(MessageStatus::Sent),
            "delivered" => Some(MessageStatus::Delivered),
            "undelivered" => Some(MessageStatus::Undelivered),
            "read" => Some(MessageStatus::Read),
            // A cancelled scheduled message will never be sent, which is what `Failed` tells the user.
            "failed" | "canceled" => Some(MessageStatus::Failed),
            _ => None,
        }
    }

    fn default_retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(3600),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }

    fn outbound_messages(&self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        let is_messages = method.eq_ignore_ascii_case("POST")
            && matches!(
                segments(path).as_slice(),
                ["", "2010-04-01", "Accounts", sid, "Messages.json"] if !sid.is_empty()
            );
        let Some(to) = text_at(body, "To").filter(|_| is_messages) else { return Vec::new() };
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

    fn accepted(&self, body: &[u8]) -> Vec<Accepted> {
        let Some(value) = serde_json::from_slice::<Value>(body).ok().filter(|v| at(v, "sid").is_some())
        else {
            return Vec::new();
        };
        let status =
            text_at(&value, "status").and_then(|w| self.status_word(&w)).unwrap_or(MessageStatus::Queued);
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
            price: text_at(&value, "price")
                .map(|total| Price { total, currency: text_at(&value, "price_unit").unwrap_or_default() }),
            error,
        }]
    }

    fn destination_pointer(&self) -> Option<&'static str> {
        Some("/To")
    }

    /// Twilio addresses WhatsApp as `whatsapp:+15551234567`: the channel prefix is kept.
    fn write_destination(&self, written: &str, e164: &str) -> String {
        match written.split_once(':') {
            Some((prefix, _)) => format!("{prefix}:{e164}"),
            None => e164.to_string(),
        }
    }

    fn text_inputs(&self) -> &'static [&'static str] {
        &["Body"]
    }

    /// Callbacks are signed with the account's auth token, the principal's `password`.
    fn webhook_auth(&self) -> Option<WebhookAuth> {
        Some(WebhookAuth::Signed { parameter: "password" })
    }

    fn verify_signature(&self, key: &str, request: &SignedRequest<'_>) -> Result<(), String> {
        let Some(given) = request.header(SIGNATURE_HEADER) else {
            return Err("Twilio callbacks carry X-Twilio-Signature; this request has none".into());
        };
        if verify_signature(key, request.url, &form_params(request.body), given) {
            Ok(())
        } else {
            Err(format!(
                "X-Twilio-Signature does not match this request for {} (a forged request, or public_url differs from the URL Twilio is configured with)",
                request.url
            ))
        }
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        Ok(vec![parse_callback(&Ctx::new(&Twilio), body)?])
    }

    fn emulator(&self) -> Option<&dyn Emulator> {
        Some(&emulator::TwilioEmulator)
    }
}

/// A status callback or an inbound message, form-encoded; Twilio leaves optional parameters empty.
fn parse_callback(ctx: &Ctx, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let params = form_params(body);
    let get =
        |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let require = |name: &str| get(name).ok_or_else(|| ctx.missing(name));
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
    let word = word.ok_or_else(|| ctx.missing("MessageStatus"))?;
    let error_code = get("ErrorCode");
    let meaning = error_code.as_deref().and_then(|c| c.parse().ok()).and_then(error_meaning);
    let segments = match get("NumSegments") {
        None => None,
        Some(n) => Some(n.trim().parse().map_err(|_| ctx.invalid("NumSegments", "not a count"))?),
    };
    Ok(WebhookEvent::Status(StatusUpdate {
        provider_message_id: Some(sid.ok_or_else(|| ctx.missing("MessageSid"))?),
        client_message_id: None,
        status: ctx.status("MessageStatus", &word)?,
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
