//! 8x8 Chat Apps: WhatsApp, Viber, RCS and the rest, addressed by `user.msisdn`.

use super::*;
use crate::connector::{IdempotencyField, WebhookAuth};

pub struct ChatApps;

impl Connector for ChatApps {
    fn name(&self) -> &'static str {
        "8x8-chatapps"
    }

    fn label(&self) -> &'static str {
        "8x8 Chat Apps"
    }

    fn serves_host(&self, host: &str) -> bool {
        serves("chatapps", host)
    }

    fn emulator(&self) -> Option<&dyn crate::emulator::Emulator> {
        Some(&super::emulator::CHAT_APPS)
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
        Some(IdempotencyField { field: "clientMessageId", max_len: 50 })
    }

    /// Every Chat Apps message, single or in a batch, carries its own `clientMessageId`.
    fn recognises_resend(&self, _body: &Value) -> bool {
        true
    }

    fn outbound_messages(&self, method: &str, path: &str, body: &Value) -> Vec<OutboundMessage> {
        // Chat Apps batches have no destination list: a stray one sends nothing.
        listed_messages(method, path, body, chat_message).unwrap_or_default()
    }

    fn accepted(&self, body: &[u8]) -> Vec<Accepted> {
        accepted(self, body)
    }

    fn destination_pointer(&self) -> Option<&'static str> {
        Some("/user/msisdn")
    }

    fn webhook_auth(&self) -> Option<WebhookAuth> {
        Some(WebhookAuth::EndpointSecret)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        parse_webhook(&ChatApps, body, true)
    }
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
