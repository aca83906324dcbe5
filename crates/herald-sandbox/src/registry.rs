//! Every message an emulated provider accepted, with the deduplication of resends a provider asks for
//! (8x8's `clientMessageId`): the [`World`] the sandbox lends an emulator for one request.

use chrono::{DateTime, SecondsFormat, Utc};
use herald_providers::emulator::{AcceptedMessage, Env, World};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// One message a provider accepted (a request whose answer was lost counts: the provider has it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    pub host: String,
    /// The provider's name in herald (`8x8-sms`, `kixie`, ...).
    pub provider: String,
    /// The provider's id of the message (8x8's umid, Twilio's sid, ...).
    pub id: String,
    pub client_message_id: Option<String>,
    pub destination: String,
    pub source: Option<String>,
    pub text: Option<String>,
    /// How many requests carried this message: more than 1 only when the provider recognised a resend.
    pub submissions: u32,
    pub accepted_at: String,
}

/// Keeps every message an emulator accepted, and remembers deduplication keys for their window.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    messages: Chunked<SentMessage>,
    /// Dedup key -> (index in `messages`, accepted at, ms since the epoch, window in ms).
    by_key: HashMap<String, (usize, u64, u64)>,
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

    /// The world of one request to `host`, answered by the emulator of `provider`, received at `now`.
    pub fn intake<'a>(&'a self, host: &'a str, provider: &'a str, now: DateTime<Utc>) -> Collector<'a> {
        Collector {
            registry: self,
            host,
            provider,
            now,
            now_millis: u64::try_from(now.timestamp_millis()).unwrap_or(0),
            now_text: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            account_webhook: true,
            new: Vec::new(),
        }
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

/// The world of one request: the clock, random bits, and the registry it hands accepted messages to.
/// It collects the messages the request made new, for their receipts.
pub(crate) struct Collector<'a> {
    registry: &'a Registry,
    host: &'a str,
    provider: &'a str,
    now: DateTime<Utc>,
    now_millis: u64,
    now_text: String,
    /// Whether the host has an account webhook: without one, a message without a callback URL of its
    /// own has no receipts, and is not handed on for them (a batch of 10,000 then costs no receipt work).
    account_webhook: bool,
    new: Vec<AcceptedMessage>,
}

impl Collector<'_> {
    pub fn with_account_webhook(self, account_webhook: bool) -> Self {
        Collector { account_webhook, ..self }
    }

    /// The messages this request made new that may have receipts to post.
    pub fn take_new(&mut self) -> Vec<AcceptedMessage> {
        std::mem::take(&mut self.new)
    }
}

impl Env for Collector<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn random(&mut self) -> u128 {
        rand::random()
    }
}

impl World for Collector<'_> {
    fn accept(&mut self, message: AcceptedMessage) -> String {
        let Ok(mut entries) = self.registry.inner.lock() else { return message.id };
        if let Some(dedup) = &message.dedup
            && let Some(&(index, at, window)) = entries.by_key.get(&dedup.key)
            && self.now_millis.saturating_sub(at) < window
            && let Some(first) = entries.messages.get_mut(index)
        {
            first.submissions = first.submissions.saturating_add(1);
            return first.id.clone();
        }
        let index = entries.messages.len();
        if let Some(dedup) = &message.dedup {
            let window = u64::try_from(dedup.window.as_millis()).unwrap_or(u64::MAX);
            entries.by_key.insert(dedup.key.clone(), (index, self.now_millis, window));
        }
        let id = message.id.clone();
        let receipts = self.account_webhook || message.callback_url.is_some();
        let record = |message: &AcceptedMessage| SentMessage {
            host: self.host.to_string(),
            provider: self.provider.to_string(),
            id: message.id.clone(),
            client_message_id: message.client_message_id.clone(),
            destination: message.destination.clone(),
            source: message.source.clone(),
            text: message.text.clone(),
            submissions: 1,
            accepted_at: self.now_text.clone(),
        };
        entries.messages.push(record(&message));
        if receipts {
            self.new.push(message);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_providers::emulator::Dedup;
    use std::time::Duration;

    /// A day, as providers that deduplicate keep their keys.
    const DEDUP_WINDOW_MILLIS: u64 = 24 * 3600 * 1000;

    fn at(millis: u64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(i64::try_from(millis).unwrap()).unwrap()
    }

    /// A message the provider deduplicates by `key` for 24 hours, if it has one.
    fn keyed(id: &str, key: Option<&str>) -> AcceptedMessage {
        AcceptedMessage {
            id: id.into(),
            client_message_id: Some("c1".into()),
            destination: "+6591234567".into(),
            source: None,
            text: Some("Hi".into()),
            callback_url: None,
            dedup: key
                .map(|key| Dedup { key: key.into(), window: Duration::from_millis(DEDUP_WINDOW_MILLIS) }),
            details: Box::new(()),
        }
    }

    fn message(id: &str) -> AcceptedMessage {
        keyed(id, None)
    }

    #[test]
    fn a_key_seen_within_24_hours_returns_the_first_id_and_counts_the_submission() {
        let registry = Registry::default();
        let mut intake = registry.intake("api.example.test", "example", at(1_000));
        assert_eq!(intake.accept(keyed("a", Some("k"))), "a");
        assert_eq!(intake.accept(keyed("b", Some("k"))), "a");
        assert_eq!(intake.accept(keyed("c", None)), "c");
        assert_eq!(intake.take_new().len(), 2);
        let mut later = registry.intake("api.example.test", "example", at(1_000 + DEDUP_WINDOW_MILLIS));
        assert_eq!(later.accept(keyed("d", Some("k"))), "d", "the window is over");
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
        let mut intake =
            registry.intake("api.example.test", "example", at(1_000)).with_account_webhook(false);
        let sms = |id: &str, callback: Option<&str>| AcceptedMessage {
            callback_url: callback.map(str::to_string),
            client_message_id: None,
            ..message(id)
        };
        assert_eq!(intake.accept(sms("a", None)), "a");
        assert_eq!(intake.accept(sms("b", Some("http://127.0.0.1:1/dlr"))), "b");
        assert_eq!(intake.accept(message("c")), "c");
        let new: Vec<String> = intake.take_new().into_iter().map(|m| m.id).collect();
        assert_eq!(new, ["b"]);
        assert_eq!(registry.list().len(), 3, "every accepted message is kept all the same");
    }

    #[test]
    fn each_message_is_listed_under_its_host_and_provider_at_the_request_s_time() {
        let registry = Registry::default();
        let mut intake = registry.intake("api.example.test", "example", at(1_000));
        intake.accept(message("a"));
        let listed = &registry.list()[0];
        assert_eq!(
            (listed.host.as_str(), listed.provider.as_str(), listed.accepted_at.as_str()),
            ("api.example.test", "example", "1970-01-01T00:00:01.000Z")
        );
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
