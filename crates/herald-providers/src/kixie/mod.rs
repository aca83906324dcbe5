//! Kixie: `POST https://apig.kixie.com/app/event` with the business id and API key in the JSON body.
//!
//! Kixie's answers are loosely documented: anything but `{"success": true}` is a failure, even under
//! HTTP 200. It takes no idempotency key, so a send whose outcome is unknown is never repeated. Its
//! webhooks carry no signature: the endpoint's own secret authenticates them.

use crate::connector::{Connector, Verdict, WebhookAuth};
use crate::emulator::Emulator;
use crate::json::{at, text_at};
use crate::message::segments;
use crate::webhook::Ctx;
use crate::{
    Accepted, InboundMessage, MessageStatus, OutboundMessage, RateLimit, RetryPolicy, StatusUpdate,
    WebhookError, WebhookEvent,
};
use serde_json::Value;
use std::time::Duration;

pub mod emulator;
#[cfg(test)]
mod tests;

pub struct Kixie;

impl Connector for Kixie {
    fn name(&self) -> &'static str {
        "kixie"
    }

    fn label(&self) -> &'static str {
        "Kixie"
    }

    fn serves_host(&self, host: &str) -> bool {
        host == "apig.kixie.com" || host.ends_with(".kixie.com")
    }

    fn interpret(&self, status: u16, body: &[u8]) -> Verdict {
        if !(200..300).contains(&status) {
            return Verdict::Failure { reason: self.error_reason(status, body) };
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) if map.get("success") == Some(&Value::Bool(true)) => Verdict::Success,
            Ok(Value::Object(map)) => {
                let said = map
                    .get("error")
                    .or_else(|| map.get("message"))
                    .and_then(Value::as_str)
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                Verdict::Failure { reason: format!("HTTP {status} but Kixie did not report success{said}") }
            }
            _ => Verdict::Failure {
                reason: format!("HTTP {status} but the body is not Kixie's JSON envelope"),
            },
        }
    }

    // Fewer, slower attempts: every call counts against a 10,000-a-day quota.
    fn default_retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            max_elapsed: Duration::from_secs(30 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
        }
    }

    fn default_rate_limit(&self) -> RateLimit {
        RateLimit { per_second: None, per_day: Some(10_000) }
    }

    fn outbound_messages(&self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        let segs = segments(path);
        let tail: Vec<&str> = segs.iter().rev().take(2).rev().copied().collect();
        let event = text_at(body, "eventname").unwrap_or_default().to_ascii_lowercase();
        if !method.eq_ignore_ascii_case("POST")
            || tail != ["app", "event"]
            || !matches!(event.as_str(), "sms" | "bizsms")
        {
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

    fn accepted(&self, body: &[u8]) -> Vec<Accepted> {
        let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
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

    fn destination_pointer(&self) -> Option<&'static str> {
        Some("/target")
    }

    /// Kixie only texts phones, whatever channel a request names.
    fn destination_is_phone(&self, _message: &OutboundMessage) -> bool {
        true
    }

    fn text_inputs(&self) -> &'static [&'static str] {
        &["message"]
    }

    fn webhook_auth(&self) -> Option<WebhookAuth> {
        Some(WebhookAuth::EndpointSecret)
    }

    fn webhook_credential_fields(&self) -> &'static [&'static str] {
        &["businessid", "apikey"]
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        let ctx = Ctx::new(&Kixie);
        Ok(vec![parse_event(&ctx, &ctx.json(body)?)?])
    }

    fn emulator(&self) -> Option<&dyn Emulator> {
        Some(&emulator::KixieEmulator)
    }
}

/// `{"data": {messageid, from, to, customernumber, businessnumber, direction, message, ...}}`.
fn parse_event(ctx: &Ctx, body: &Value) -> Result<WebhookEvent, WebhookError> {
    let d = ctx.object(body, "data")?;
    let dc = ctx.within("data");
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
