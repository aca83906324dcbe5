//! Every message a provider accepted, with 8x8's deduplication by `clientMessageId`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// One message a provider accepted (a request whose answer was lost counts: the provider has it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    pub host: String,
    /// `8x8-sms`, `8x8-chatapps`, `kixie` or `twilio`.
    pub provider: String,
    /// 8x8's umid, Twilio's sid, Kixie's messageid.
    pub id: String,
    pub client_message_id: Option<String>,
    pub destination: String,
    pub source: Option<String>,
    pub text: Option<String>,
    /// How many requests carried this message: more than 1 only when 8x8 deduplicated a resend.
    pub submissions: u32,
    pub accepted_at: String,
}

/// What a provider handler knows about a message it accepts.
#[derive(Clone, Debug)]
pub(crate) struct NewMessage {
    pub id: String,
    pub client_message_id: Option<String>,
    pub destination: String,
    pub source: Option<String>,
    pub text: Option<String>,
    pub origin: Origin,
}

/// What the receipts of a message need beyond the public record.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    EightByEightSms {
        subaccount: String,
        batch: Option<Batch>,
        dlr_callback_url: Option<String>,
        sms_count: u32,
    },
    ChatApps {
        subaccount: String,
        batch: Option<Batch>,
        dlr_callback_url: Option<String>,
        user: Value,
        channel: String,
    },
    Kixie {
        businessid: String,
        email: Option<String>,
        from_number: Option<String>,
    },
    Twilio {
        account_sid: String,
        auth_token: String,
        status_callback: Option<String>,
        from: Option<String>,
        messaging_service_sid: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Batch {
    pub batch_id: String,
    pub client_batch_id: Option<String>,
}

impl Origin {
    /// Where this message's own receipts go (8x8's `dlrCallbackUrl`, Twilio's `StatusCallback`), if
    /// anywhere: without one, only the host's account webhook gets them.
    fn callback_url(&self) -> Option<&str> {
        match self {
            Origin::EightByEightSms { dlr_callback_url, .. } | Origin::ChatApps { dlr_callback_url, .. } => {
                dlr_callback_url.as_deref()
            }
            Origin::Twilio { status_callback, .. } => status_callback.as_deref(),
            Origin::Kixie { .. } => None,
        }
    }

    fn provider(&self) -> &'static str {
        match self {
            Origin::EightByEightSms { .. } => "8x8-sms",
            Origin::ChatApps { .. } => "8x8-chatapps",
            Origin::Kixie { .. } => "kixie",
            Origin::Twilio { .. } => "twilio",
        }
    }
}

/// A handler's way to hand over an accepted message. Returns the id to answer with: the first
/// submission's id when `dedup_key` matches a message accepted less than 24 hours ago.
pub(crate) trait Intake {
    fn accept(&mut self, dedup_key: Option<String>, message: NewMessage) -> String;
}

/// Records nothing: for handlers called outside a running sandbox (unit tests).
#[cfg(test)]
pub(crate) struct Discard;

#[cfg(test)]
impl Intake for Discard {
    fn accept(&mut self, _: Option<String>, message: NewMessage) -> String {
        message.id
    }
}

/// 8x8 keeps a clientMessageId for 24 hours.
const DEDUP_WINDOW_MILLIS: u64 = 24 * 3600 * 1000;

#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    messages: Chunked<SentMessage>,
    /// Dedup key -> (index in `messages`, accepted at, ms since the epoch).
    by_key: HashMap<String, (usize, u64)>,
}

impl Registry {
    pub fn list(&self) -> Vec<SentMessage> {
        self.inner.lock().map(|e| e.messages.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.inner.lock() {
            *entries = Entries::default();
        }
    }

    /// An intake for one request to `host`.
    pub fn intake<'a>(&'a self, host: &'a str, now_millis: u64, now_text: String) -> Collector<'a> {
        Collector { registry: self, host, now_millis, now_text, account_webhook: true, new: Vec::new() }
    }
}

/// Messages in fixed-size chunks: hundreds of thousands of them (a bulk campaign) are appended without
/// a growing vector copying all of them, into fresh pages, at every doubling.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

const CHUNK: usize = 4096;

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Chunked<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(item);
            self.len += 1;
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

/// Collects the messages one request made new, for their receipts.
pub(crate) struct Collector<'a> {
    registry: &'a Registry,
    host: &'a str,
    now_millis: u64,
    now_text: String,
    /// Whether the host has an account webhook: without one, a message without a callback URL of its
    /// own has no receipts, and is not handed on for them (a batch of 10,000 then costs no receipt work).
    account_webhook: bool,
    new: Vec<(SentMessage, Origin)>,
}

impl Collector<'_> {
    pub fn with_account_webhook(self, account_webhook: bool) -> Self {
        Collector { account_webhook, ..self }
    }

    /// The messages this request made new that may have receipts to post.
    pub fn into_new(self) -> Vec<(SentMessage, Origin)> {
        self.new
    }
}

impl Intake for Collector<'_> {
    fn accept(&mut self, dedup_key: Option<String>, message: NewMessage) -> String {
        let Ok(mut entries) = self.registry.inner.lock() else { return message.id };
        if let Some(key) = &dedup_key
            && let Some(&(index, at)) = entries.by_key.get(key)
            && self.now_millis.saturating_sub(at) < DEDUP_WINDOW_MILLIS
            && let Some(first) = entries.messages.get_mut(index)
        {
            first.submissions = first.submissions.saturating_add(1);
            return first.id.clone();
        }
        let record = SentMessage {
            host: self.host.to_string(),
            provider: message.origin.provider().to_string(),
            id: message.id.clone(),
            client_message_id: message.client_message_id,
            destination: message.destination,
            source: message.source,
            text: message.text,
            submissions: 1,
            accepted_at: self.now_text.clone(),
        };
        let index = entries.messages.len();
        let id = message.id;
        if self.account_webhook || message.origin.callback_url().is_some() {
            entries.messages.push(record.clone());
            self.new.push((record, message.origin));
        } else {
            entries.messages.push(record);
        }
        if let Some(key) = dedup_key {
            entries.by_key.insert(key, (index, self.now_millis));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> NewMessage {
        NewMessage {
            id: id.into(),
            client_message_id: Some("c1".into()),
            destination: "+6591234567".into(),
            source: None,
            text: Some("Hi".into()),
            origin: Origin::Kixie { businessid: "b".into(), email: None, from_number: None },
        }
    }

    #[test]
    fn a_key_seen_within_24_hours_returns_the_first_id_and_counts_the_submission() {
        let registry = Registry::default();
        let mut intake = registry.intake("sms.8x8.com", 1_000, "t".into());
        assert_eq!(intake.accept(Some("k".into()), message("a")), "a");
        assert_eq!(intake.accept(Some("k".into()), message("b")), "a");
        assert_eq!(intake.accept(None, message("c")), "c");
        assert_eq!(intake.into_new().len(), 2);
        let mut later = registry.intake("sms.8x8.com", 1_000 + DEDUP_WINDOW_MILLIS, "t".into());
        assert_eq!(later.accept(Some("k".into()), message("d")), "d", "the window is over");
        let list = registry.list();
        assert_eq!(
            list.iter().map(|m| (m.id.as_str(), m.submissions)).collect::<Vec<_>>(),
            [("a", 2), ("c", 1), ("d", 1)]
        );
        registry.clear();
        assert!(registry.list().is_empty());
    }

    #[test]
    fn without_a_webhook_only_messages_with_their_own_callback_are_handed_on_for_receipts() {
        let registry = Registry::default();
        let mut intake = registry.intake("sms.8x8.com", 1_000, "t".into()).with_account_webhook(false);
        let sms = |id: &str, callback: Option<&str>| NewMessage {
            origin: Origin::EightByEightSms {
                subaccount: "acme".into(),
                batch: None,
                dlr_callback_url: callback.map(str::to_string),
                sms_count: 1,
            },
            client_message_id: None,
            ..message(id)
        };
        assert_eq!(intake.accept(None, sms("a", None)), "a");
        assert_eq!(intake.accept(None, sms("b", Some("http://127.0.0.1:1/dlr"))), "b");
        assert_eq!(intake.accept(None, message("c")), "c");
        let new: Vec<String> = intake.into_new().into_iter().map(|(m, _)| m.id).collect();
        assert_eq!(new, ["b"]);
        assert_eq!(registry.list().len(), 3, "every accepted message is kept all the same");
    }

    #[test]
    fn chunks_keep_order_and_indexes_across_their_boundaries() {
        let mut chunked = Chunked::default();
        for i in 0..(2 * CHUNK + 3) {
            chunked.push(i);
        }
        assert_eq!(chunked.len(), 2 * CHUNK + 3);
        assert_eq!(chunked.chunks.len(), 3);
        *chunked.get_mut(CHUNK).unwrap() += 1_000_000;
        assert_eq!(chunked.get_mut(2 * CHUNK + 3), None);
        let all: Vec<usize> = chunked.iter().copied().collect();
        assert_eq!(all.len(), 2 * CHUNK + 3);
        assert_eq!(
            (all[CHUNK - 1], all[CHUNK], all[2 * CHUNK + 2]),
            (CHUNK - 1, CHUNK + 1_000_000, 2 * CHUNK + 2)
        );
    }
}
