//! What providers POST back to herald: delivery receipts and inbound messages.

use serde_json::Value;

use crate::MessageStatus;
use crate::connector::Connector;
use crate::json::{at, count, text};

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

/// Reads one provider's webhook JSON, naming fields from the top of the body in its errors.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) connector: &'static dyn Connector,
    pub(crate) label: &'static str,
    /// Where the event sits in a batch (`[2].`), so errors point at the right element.
    pub(crate) prefix: String,
}

impl Ctx {
    pub(crate) fn new(connector: &'static dyn Connector) -> Ctx {
        Ctx { connector, label: connector.label(), prefix: String::new() }
    }

    pub(crate) fn json(&self, body: &[u8]) -> Result<Value, WebhookError> {
        serde_json::from_slice(body)
            .map_err(|e| WebhookError::NotJson { provider: self.label, detail: e.to_string() })
    }

    pub(crate) fn missing(&self, field: &str) -> WebhookError {
        WebhookError::Missing { provider: self.label, field: format!("{}{field}", self.prefix) }
    }

    pub(crate) fn invalid(&self, field: &str, problem: impl Into<String>) -> WebhookError {
        WebhookError::Invalid {
            provider: self.label,
            field: format!("{}{field}", self.prefix),
            problem: problem.into(),
        }
    }

    pub(crate) fn opt_text(&self, root: &Value, path: &str) -> Result<Option<String>, WebhookError> {
        match at(root, path) {
            None => Ok(None),
            Some(v) => text(v).map(Some).ok_or_else(|| self.invalid(path, "not text")),
        }
    }

    pub(crate) fn req_text(&self, root: &Value, path: &str) -> Result<String, WebhookError> {
        self.opt_text(root, path)?.ok_or_else(|| self.missing(path))
    }

    pub(crate) fn opt_count(&self, root: &Value, path: &str) -> Result<Option<u32>, WebhookError> {
        match at(root, path) {
            None => Ok(None),
            Some(v) => count(v).map(Some).ok_or_else(|| self.invalid(path, "not a count")),
        }
    }

    pub(crate) fn object<'v>(&self, root: &'v Value, path: &str) -> Result<&'v Value, WebhookError> {
        match at(root, path) {
            None => Err(self.missing(path)),
            Some(v) if v.is_object() => Ok(v),
            Some(_) => Err(self.invalid(path, "not an object")),
        }
    }

    pub(crate) fn status(&self, field: &str, word: &str) -> Result<MessageStatus, WebhookError> {
        self.connector
            .status_word(word)
            .ok_or_else(|| self.invalid(field, format!("\"{word}\", not a status {} documents", self.label)))
    }

    pub(crate) fn price(&self, root: &Value, path: &str) -> Result<Option<Price>, WebhookError> {
        if at(root, path).is_none() {
            return Ok(None);
        }
        let total = self.opt_text(root, &format!("{path}.total"))?;
        let currency = self.opt_text(root, &format!("{path}.currency"))?;
        Ok(total.map(|total| Price { total, currency: currency.unwrap_or_default() }))
    }

    /// A context for fields inside `key`, so errors name them from the top of the body.
    pub(crate) fn within(&self, key: &str) -> Ctx {
        Ctx { prefix: format!("{}{key}.", self.prefix), ..self.clone() }
    }
}
