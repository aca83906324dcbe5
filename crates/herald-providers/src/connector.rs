//! The connector boundary: everything herald knows of one provider, behind one trait.
//!
//! The rest of herald never asks *which* provider it talks to; it asks the provider's connector
//! what an answer means, which messages a request carries, whether a resend is recognised, how a
//! webhook reads. Each provider is a folder of this crate that implements [`Connector`], and the
//! registry (`registry.rs`) lists them: adding a provider is a folder and a line there. The defaults
//! of the trait are the behaviour of a plain HTTP API that promises nothing beyond its status code.

use crate::emulator::Emulator;
use crate::{
    Accepted, FailureClass, MessageStatus, OutboundMessage, RateLimit, RetryPolicy, WebhookError,
    WebhookEvent,
};
use serde_json::Value;
use std::time::Duration;

/// What an answer means by the provider's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Why the answer is a failure; the caller adds the request and the body.
    Failure {
        reason: String,
    },
}

/// Where herald puts its idempotency key in a request, so the provider recognises a resend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyField {
    /// The body field (top level, and in each message of a batch).
    pub field: &'static str,
    /// The longest value the provider accepts.
    pub max_len: usize,
}

/// How a provider's webhooks prove where they come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookAuth {
    /// The provider signs nothing: the endpoint has a secret of its own (`herald webhook secret`),
    /// sent as an `Authorization` header or `?secret=`.
    EndpointSecret,
    /// The provider signs each request with a parameter of the named credential's principal.
    Signed {
        /// The credential parameter that holds the signing key (Twilio's auth token: `password`).
        parameter: &'static str,
    },
}

/// A webhook request as a signature check needs it.
pub struct SignedRequest<'a> {
    /// The full URL the provider posted to, as it signed it.
    pub url: &'a str,
    /// Header names in lower case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How single sends queued on one credential may leave together as one batch request (8x8 SMS).
pub trait Batching: Send + Sync {
    /// Whether this single send may share a batch.
    fn coalescible(&self, method: &str, path: &str, body: &Value) -> bool;
    /// The batch request for the single-send bodies `messages` posted to `path`: its path and body.
    fn batch_request(&self, path: &str, messages: Vec<Value>) -> (String, Value);
    /// How the batch's answer goes back to its messages, each in the shape of a single send's answer.
    fn split_answer(&self, status: u16, body: &[u8], messages: &[Value]) -> BatchSplit;
    /// The most messages one batch request carries.
    fn max_batch(&self) -> usize;
}

/// How a batch's answer goes back to the single sends it carried.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchSplit {
    /// Each message's own answer body; `None` where the answer does not say what became of it (it
    /// may have been sent).
    PerMessage(Vec<Option<Vec<u8>>>),
    /// The same answer for all: a rate limit, a server error, a refused key.
    Shared,
    /// Refused as a whole for its content: each message goes alone, so only a bad one fails.
    Alone,
}

/// Everything herald knows of one provider beyond its spec.
pub trait Connector: Send + Sync + 'static {
    /// The name project files use (`provider: kixie`) and the ledger keeps.
    fn name(&self) -> &'static str;

    /// The name people know it by, for messages ("8x8 SMS").
    fn label(&self) -> &'static str;

    /// Whether `host` (lower case) is one of the provider's API hosts.
    fn serves_host(&self, _host: &str) -> bool {
        false
    }

    // Answers.

    /// Reads an answer: a 2xx is a success unless the provider says otherwise inside it.
    fn interpret(&self, status: u16, body: &[u8]) -> Verdict {
        if (200..300).contains(&status) {
            Verdict::Success
        } else {
            Verdict::Failure { reason: self.error_reason(status, body) }
        }
    }

    /// "HTTP {status}", followed by the provider's own code and message when its error body has them.
    fn error_reason(&self, status: u16, _body: &[u8]) -> String {
        format!("HTTP {status}")
    }

    /// The provider's error code in a failed answer, kept in the ledger.
    fn error_code(&self, _body: &[u8]) -> Option<String> {
        None
    }

    /// Classes a failed send. `status` is `None` when no answer came (timeout, connection reset).
    /// A 2xx that `interpret` refused is `Permanent`: it was sent, so sending it again would
    /// duplicate it.
    fn failure_class(&self, status: Option<u16>, body: &[u8]) -> FailureClass {
        let Some(status) = status else { return FailureClass::Retryable };
        if let Some(class) = self.class_by_code(body) {
            return class;
        }
        match status {
            429 | 500..=599 => FailureClass::Retryable,
            _ => FailureClass::Permanent,
        }
    }

    /// A failure class the provider's own error code decides, before the HTTP status does.
    fn class_by_code(&self, _body: &[u8]) -> Option<FailureClass> {
        None
    }

    /// The provider's word for a message status, in its answers and receipts.
    fn status_word(&self, word: &str) -> Option<MessageStatus> {
        MessageStatus::parse(word)
    }

    fn default_retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(30 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }

    /// The provider's published limits; `None` where it publishes none.
    fn default_rate_limit(&self) -> RateLimit {
        RateLimit { per_second: None, per_day: None }
    }

    // Resends.

    /// Where herald sets its idempotency key so that the provider deduplicates a resend.
    fn idempotency_field(&self) -> Option<IdempotencyField> {
        None
    }

    /// Sets herald's idempotency key where the provider reads it: on each message of a `messages`
    /// list (`<key>-<index>`), else on the body itself when the provider can recognise a resend of
    /// it. A value the flow set itself is kept: it is the key then. Returns what was set on the body
    /// itself.
    fn place_idempotency_key(&self, body: &mut Value, key: &str) -> Option<String> {
        let field = self.idempotency_field()?.field;
        let recognised = self.recognises_resend(body);
        let object = body.as_object_mut()?;
        if let Some(Value::Array(messages)) = object.get_mut("messages") {
            for (index, message) in messages.iter_mut().enumerate() {
                if let Value::Object(message) = message
                    && !message.contains_key(field)
                {
                    message.insert(field.to_string(), Value::String(format!("{key}-{index}")));
                }
            }
            return None;
        }
        if !recognised || object.contains_key(field) {
            return None;
        }
        object.insert(field.to_string(), Value::String(key.to_string()));
        Some(key.to_string())
    }

    /// Whether the provider recognises a resend of a request with this body (or these inputs):
    /// only then may a send whose outcome is unknown (a crash mid-request) be sent again.
    fn recognises_resend(&self, _body: &Value) -> bool {
        false
    }

    // Messages.

    /// The messages a request sends; empty when it sends none or herald does not know the API.
    fn outbound_messages(&self, _method: &str, _path: &str, _body: &Value) -> Vec<OutboundMessage> {
        Vec::new()
    }

    /// The messages a success answer describes, in the order of the request.
    fn accepted(&self, _body: &[u8]) -> Vec<Accepted> {
        Vec::new()
    }

    /// Where a message's destination sits in a single send's body (in a batch: in each message), as
    /// a JSON pointer.
    fn destination_pointer(&self) -> Option<&'static str> {
        None
    }

    /// Whether a message's destination must be a phone number (normalised to E.164 before sending).
    fn destination_is_phone(&self, message: &OutboundMessage) -> bool {
        message.channel == "sms" || message.channel == "whatsapp"
    }

    /// How a destination is written in a request, from its E.164 form (`written` is how the flow
    /// wrote it).
    fn write_destination(&self, written: &str, e164: &str) -> String {
        let _ = written;
        e164.to_string()
    }

    /// The most SMS parts the provider sends for one message, when it refuses longer texts.
    fn max_parts(&self) -> Option<u32> {
        None
    }

    /// The request fields that hold a message's text (for the load-time encoding warning).
    fn text_inputs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Writes a single send's normalised destination back into its body.
    fn rewrite_single(&self, body: &mut Value, message: &OutboundMessage) {
        let Some(pointer) = self.destination_pointer() else { return };
        if let Some(slot) = body.pointer_mut(pointer)
            && let Some(written) = slot.as_str()
        {
            *slot = Value::String(self.write_destination(written, &message.destination));
        }
    }

    /// Writes a batch's kept messages back into its body, with their destinations normalised: the
    /// `messages` list keeps only the items at `positions`. A body whose messages herald could not
    /// all read is left as the flow built it.
    fn rewrite_batch(&self, body: &mut Value, kept: &[OutboundMessage], positions: &[usize]) {
        rewrite_listed_messages(self, body, kept, positions);
    }

    /// How single sends may share batch requests, for providers that take batches.
    fn batching(&self) -> Option<&dyn Batching> {
        None
    }

    // Webhooks.

    /// How the provider's webhooks authenticate; `None` when herald reads no webhook of it.
    fn webhook_auth(&self) -> Option<WebhookAuth> {
        None
    }

    /// Whether a signed webhook request carries the signature `key` makes. Only called for
    /// [`WebhookAuth::Signed`] providers; the comparison must take the same time whatever the input.
    fn verify_signature(&self, _key: &str, _request: &SignedRequest<'_>) -> Result<(), String> {
        Err(format!("{} webhooks carry no signature herald checks", self.label()))
    }

    /// Reads a webhook body. A failure in any event fails the whole body, so the provider retries it
    /// rather than herald dropping part of it.
    fn parse_webhook(&self, _body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
        Err(WebhookError::Unsupported { provider: self.label() })
    }

    /// The fields of its webhook bodies that carry the account's own credentials (Kixie posts its
    /// `businessid` back). herald keeps receipts with these values masked, since anyone who may read
    /// receipts may not read credentials.
    fn webhook_credential_fields(&self) -> &'static [&'static str] {
        &[]
    }

    // The sandbox.

    /// How the provider behaves in herald's sandbox, when the sandbox emulates it: its hosts, its
    /// options, its answers, receipts, inbound webhooks and error bodies (see `emulator.rs`).
    fn emulator(&self) -> Option<&dyn Emulator> {
        None
    }
}

/// The usual batch rewrite: the body's `messages` list keeps the items at `positions`, each with its
/// destination written from `kept`. Returns whether the body had such a list.
pub fn rewrite_listed_messages<C: Connector + ?Sized>(
    connector: &C,
    body: &mut Value,
    kept: &[OutboundMessage],
    positions: &[usize],
) -> bool {
    let Some(pointer) = connector.destination_pointer() else { return false };
    let Some(Value::Array(messages)) = body.get_mut("messages") else { return false };
    if messages.is_empty() {
        return false;
    }
    if positions.last().is_some_and(|last| *last >= messages.len()) {
        return true;
    }
    let mut items = std::mem::take(messages).into_iter().map(Some).collect::<Vec<_>>();
    *messages = positions
        .iter()
        .zip(kept)
        .filter_map(|(position, message)| {
            let mut item = items.get_mut(*position)?.take()?;
            if let Some(slot) = item.pointer_mut(pointer) {
                let written = slot.as_str().unwrap_or_default().to_string();
                *slot = Value::String(connector.write_destination(&written, &message.destination));
            }
            Some(item)
        })
        .collect();
    true
}
