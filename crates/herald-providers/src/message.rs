//! What a send request asks for and what the provider's success answer says it did.

use crate::{MessageStatus, Price};

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
pub(crate) fn segments(path: &str) -> Vec<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').split('/').collect()
}
