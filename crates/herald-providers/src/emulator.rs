//! The emulator boundary: how a provider behaves in herald's sandbox, as a state machine that does no
//! I/O.
//!
//! The sandbox (`herald-sandbox`) answers as each provider does, so that flows run end to end without
//! real accounts. What a provider answers, which messages it accepts, what its receipts and inbound
//! webhooks look like and how it words a server error are knowledge of that provider, so they live in
//! its folder of this crate, beside its connector. The sandbox is the driver, in the manner of
//! quinn-proto: it receives HTTP, hands each request to the emulator, and performs the complete effects
//! it gets back (an [`Answer`] to send, [`Webhook`]s to post). It keeps what belongs to no provider: the
//! messages accepted and their deduplication, the clock and randomness (the [`World`]), fault injection
//! (latency, timeouts, cut connections), webhook delivery with retries, and the control API.
//!
//! An emulator never reads a clock, draws randomness, sleeps or opens a socket: it asks the world for
//! the time and for random bits, so a test drives it with a fixed clock and gets the same answers.
//!
//! Two traits, because the registry lists static things while an account has state:
//! - [`Emulator`] is what a connector's `emulator()` returns: the hosts it answers on and the keys of
//!   the sandbox options file it owns. It starts an [`Emulation`] from those options.
//! - [`Emulation`] is one emulated account: its options and what it remembers between requests (rate
//!   windows, opt-outs). The driver holds one per emulator and calls it one request at a time.
//!
//! Adding a provider's emulator is a file in its folder that implements both, and the connector's
//! `emulator()` returning it; the sandbox finds it through the registry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub use http::{HeaderMap, Method, StatusCode};

/// A provider's emulator, as the registry lists it.
pub trait Emulator: Send + Sync {
    /// The API hosts it answers on, in lower case. The sandbox routes `/HOST/...` here for each of them,
    /// and accepts faults, webhooks and inbound messages for them (and for no other host).
    fn hosts(&self) -> &'static [&'static str];

    /// The top-level keys of the sandbox options file it reads (`kixie`, `kixie_line`). A key may be
    /// shared by emulators of one account (8x8's SMS and Chat Apps both read `eight_by_eight`); the
    /// file may hold no key that no emulator reads.
    fn option_keys(&self) -> &'static [&'static str];

    /// Checks the value of one of its keys (`None` when the file leaves it out) and returns it complete,
    /// with defaults for all that is not set. An unknown field or a bad value is an error that says
    /// which field and why; the sandbox adds the key. [`option_section`] does this for a serde type.
    fn options(&self, key: &str, given: Option<&Value>) -> Result<Value, String>;

    /// Starts an account. `options` holds each of [`option_keys`](Self::option_keys) as
    /// [`options`](Self::options) returned it, so reading them cannot fail ([`read_option`]).
    fn start(&self, options: &Map<String, Value>) -> Box<dyn Emulation>;
}

/// One emulated account: its options and its state between requests.
///
/// The driver calls it for one request at a time, and runs every effect it returns.
pub trait Emulation: Send {
    /// Answers a request to one of the emulator's hosts as the provider does, and hands each message it
    /// accepts to `world` (which keeps it, and tells a recognised resend by its [`Dedup`] key).
    fn answer(&mut self, request: &Request<'_>, world: &mut dyn World) -> Answer;

    /// The webhooks that report what became of `message`, a message this account accepted and handed
    /// to the world: one per status of `statuses` (the sandbox's receipt options, in order), or what
    /// the provider posts instead (Kixie: one event for the sent SMS, whatever the statuses). Each goes
    /// to the message's own callback or to `account`; none when the provider has nowhere to post.
    fn receipts(
        &self,
        message: &AcceptedMessage,
        statuses: &[String],
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Vec<Webhook>;

    /// The webhook the provider posts when someone texts one of the account's numbers, in the
    /// provider's format, signed if the provider signs. With no `account` webhook its `url` is `None`:
    /// the sandbox shows the body and posts nothing. A provider that keeps STOP replies itself
    /// records them here.
    fn inbound(
        &mut self,
        message: &Inbound<'_>,
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Webhook;

    /// The provider's own answer to a fault the sandbox injects (its 500 body, its 429 body). The
    /// sandbox adds `Retry-After` to a 429.
    fn fault(&self, fault: Fault, env: &mut dyn Env) -> Answer;

    /// The opt-outs the provider keeps itself, as `(sender, phone)`: recipients who texted a STOP word,
    /// to whom it refuses to send (Twilio's 21610). Listed by `GET /_sandbox/optouts`.
    fn opt_outs(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Forgets those opt-outs (`DELETE /_sandbox/optouts`).
    fn clear_opt_outs(&mut self) {}
}

/// What the sandbox lends an emulator besides its messages: the time and random bits.
pub trait Env {
    /// The sandbox's clock: when the request, or the control call, arrived.
    fn now(&self) -> DateTime<Utc>;

    /// 128 random bits, for ids (8x8's umid, Twilio's sid, ...).
    fn random(&mut self) -> u128;
}

/// What the sandbox keeps for a request: the messages the provider accepted.
pub trait World: Env {
    /// Keeps a message the provider accepted and returns the id to answer with: the message's own, or,
    /// when its [`Dedup`] key was seen within the window, the first message's (a recognised resend adds
    /// a submission to that message and makes no new one).
    fn accept(&mut self, message: AcceptedMessage) -> String;
}

/// A request to one of the emulator's hosts.
pub struct Request<'a> {
    pub method: &'a Method,
    /// The path on the provider's host, from its `/`, without the query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The body parsed as JSON, `None` when it is not JSON. The sandbox parses it once, for its request
    /// log and for the emulator: a batch of thousands of messages is not parsed twice.
    pub json: Option<&'a Value>,
}

impl Request<'_> {
    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What an emulator answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
    /// Extra response headers (`retry-after`, `www-authenticate`, ...).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: StatusCode, body: Value) -> Answer {
        Answer { status, content_type: "application/json", body: body.to_string(), headers: Vec::new() }
    }

    pub fn text(status: StatusCode, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

/// A message the provider accepted, as the emulator hands it to the [`World`].
pub struct AcceptedMessage {
    /// The provider's id for it (8x8's umid, Twilio's sid, Kixie's messageid).
    pub id: String,
    pub client_message_id: Option<String>,
    pub destination: String,
    pub source: Option<String>,
    pub text: Option<String>,
    /// Where this message's own receipts go (8x8's `dlrCallbackUrl`, Twilio's `StatusCallback`).
    /// Without one, and without an account webhook for the host, the message has no receipts and the
    /// sandbox does not hand it back to [`Emulation::receipts`].
    pub callback_url: Option<String>,
    /// How the provider recognises a resend of it, if it does.
    pub dedup: Option<Dedup>,
    /// What its receipts need beyond the fields above, in the emulator's own type; the sandbox hands it
    /// back untouched to [`Emulation::receipts`], which reads it with [`AcceptedMessage::details`].
    pub details: Box<dyn Any + Send + Sync>,
}

impl AcceptedMessage {
    /// The emulator's details, when they are a `T`.
    pub fn details<T: 'static>(&self) -> Option<&T> {
        self.details.downcast_ref()
    }
}

impl std::fmt::Debug for AcceptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedMessage")
            .field("id", &self.id)
            .field("client_message_id", &self.client_message_id)
            .field("destination", &self.destination)
            .field("source", &self.source)
            .field("text", &self.text)
            .field("callback_url", &self.callback_url)
            .field("dedup", &self.dedup)
            .finish_non_exhaustive()
    }
}

/// A provider's deduplication of resends: a message with the same key accepted less than `window`
/// ago is the same message (8x8: `clientMessageId`, per product and subaccount, for 24 hours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedup {
    pub key: String,
    pub window: Duration,
}

/// A host's account-level webhook, as configured in the sandbox (`PUT /_sandbox/webhooks/{host}`).
#[derive(Clone, Copy, Debug)]
pub struct AccountWebhook<'a> {
    pub url: &'a str,
    /// Static headers the customer configured (8x8's `Authorization: Bearer <secret>`); a provider that
    /// sends none in reality ignores them.
    pub headers: &'a BTreeMap<String, String>,
}

impl AccountWebhook<'_> {
    pub fn header_list(&self) -> Vec<(String, String)> {
        self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// `POST /_sandbox/inbound`: someone texts one of the account's numbers.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'a> {
    /// The customer's phone.
    pub from: &'a str,
    /// The account's number (or channel id).
    pub to: &'a str,
    pub text: &'a str,
    /// The subaccount to report, for providers whose webhooks name one (8x8's `subAccountId`).
    pub subaccount: Option<&'a str>,
}

/// A webhook ready to post.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Where it goes; `None` when the account has no webhook to post it to.
    pub url: Option<String>,
    /// Every header to send but `Host`, `Content-Length` and `Connection`, `Content-Type` included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body as the sandbox's receipt log and control answers show it (a form as an object of its
    /// fields).
    pub logged: Value,
    /// The status it reports (`sent`, `delivered`, ...), `outgoing` for Kixie's event, `received` for
    /// an inbound message.
    pub state: String,
    /// The provider's id of the message it is about.
    pub message_id: String,
}

impl Webhook {
    /// A JSON post: `Content-Type: application/json`, then `headers`.
    pub fn json(url: Option<String>, headers: Vec<(String, String)>, body: Value) -> Webhook {
        let mut all = vec![("Content-Type".to_string(), "application/json".to_string())];
        all.extend(headers);
        Webhook {
            url,
            headers: all,
            body: body.to_string().into_bytes(),
            logged: body,
            state: String::new(),
            message_id: String::new(),
        }
    }

    /// What it reports, and about which message.
    pub fn about(mut self, state: &str, message_id: &str) -> Webhook {
        self.state = state.to_string();
        self.message_id = message_id.to_string();
        self
    }
}

/// A fault the sandbox injects instead of letting the emulator answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The provider failed internally (a 500 in its own words). The message is not accepted.
    ServerError,
    /// The provider refuses for the rate (a 429 in its own words). The message is not accepted.
    TooManyRequests { retry_after_secs: u64 },
}

/// One key of the options file read as `T`, with `T::default()` when the file leaves it out; returned
/// complete. `T` should refuse unknown fields (`#[serde(default, deny_unknown_fields)]`).
pub fn option_section<T: Serialize + DeserializeOwned + Default>(
    given: Option<&Value>,
) -> Result<Value, String> {
    let parsed = match given {
        None => T::default(),
        Some(value) => T::deserialize(value).map_err(|e| e.to_string())?,
    };
    serde_json::to_value(parsed).map_err(|e| e.to_string())
}

/// One key of the options an emulator starts with, as `T` (its default if it is missing or does not
/// read, which [`Emulator::options`] has ruled out).
pub fn read_option<T: DeserializeOwned + Default>(options: &Map<String, Value>, key: &str) -> T {
    options.get(key).and_then(|value| T::deserialize(value).ok()).unwrap_or_default()
}

/// The pairs of an `application/x-www-form-urlencoded` body, in order; undecodable bytes become U+FFFD.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A form as a JSON object, as logs show it; a repeated name becomes a list.
pub fn form_as_json(pairs: &[(String, String)]) -> Value {
    let mut object = Map::new();
    for (name, value) in pairs {
        match object.get_mut(name) {
            None => {
                object.insert(name.clone(), Value::String(value.clone()));
            }
            Some(Value::Array(list)) => list.push(Value::String(value.clone())),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value.clone())]);
            }
        }
    }
    Value::Object(object)
}

/// A world for unit tests: a fixed clock, reproducible random bits, and every accepted message kept
/// (no deduplication: that is the sandbox's).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub struct Recorder {
        pub now: DateTime<Utc>,
        pub counter: u64,
        pub accepted: Vec<AcceptedMessage>,
    }

    impl Recorder {
        pub fn at_millis(millis: i64) -> Recorder {
            Recorder {
                now: DateTime::from_timestamp_millis(millis).unwrap_or_default(),
                counter: 0,
                accepted: Vec::new(),
            }
        }
    }

    impl Default for Recorder {
        fn default() -> Self {
            Recorder::at_millis(1_790_000_000_000)
        }
    }

    impl Env for Recorder {
        fn now(&self) -> DateTime<Utc> {
            self.now
        }

        /// splitmix64, twice.
        fn random(&mut self) -> u128 {
            let mut next = || {
                self.counter = self.counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.counter;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            (u128::from(next()) << 64) | u128::from(next())
        }
    }

    impl World for Recorder {
        fn accept(&mut self, message: AcceptedMessage) -> String {
            let id = message.id.clone();
            self.accepted.push(message);
            id
        }
    }

    /// A request with these headers and body (parsed as JSON when it is).
    pub fn answer(
        emulation: &mut dyn Emulation,
        world: &mut Recorder,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = http::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            map.append(name, http::HeaderValue::from_str(value).expect("a header value"));
        }
        let json = serde_json::from_slice::<Value>(body).ok();
        let request = Request { method: &method, path, headers: &map, body, json: json.as_ref() };
        emulation.answer(&request, world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;
    use serde_json::json;

    #[test]
    fn forms_become_json_objects_with_lists_for_repeats() {
        let pairs = form_fields(b"To=%2B1415&Body=a+b&MediaUrl=x&MediaUrl=y&MediaUrl=z&bad=%ZZ");
        assert_eq!(
            form_as_json(&pairs),
            json!({"To": "+1415", "Body": "a b", "MediaUrl": ["x", "y", "z"], "bad": "%ZZ"})
        );
    }

    #[test]
    fn every_emulator_s_defaults_are_valid_and_complete() {
        for provider in Provider::all() {
            let Some(emulator) = provider.emulator() else { continue };
            for key in emulator.option_keys() {
                let complete =
                    emulator.options(key, None).unwrap_or_else(|e| panic!("{provider} {key}: {e}"));
                assert!(complete.is_object(), "{provider} {key}: {complete}");
                assert_eq!(
                    emulator.options(key, Some(&complete)).as_ref(),
                    Ok(&complete),
                    "{provider} {key}"
                );
                assert!(
                    emulator.options(key, Some(&json!({"no_such_field": 1}))).is_err(),
                    "{provider} {key}"
                );
            }
        }
    }

    #[test]
    fn no_two_emulators_answer_on_the_same_host() {
        let mut hosts: Vec<&str> = Provider::all()
            .filter_map(|p| p.connector().emulator())
            .flat_map(|e| e.hosts().iter().copied())
            .collect();
        let count = hosts.len();
        hosts.sort_unstable();
        hosts.dedup();
        assert_eq!(hosts.len(), count, "{hosts:?}");
        assert!(hosts.iter().all(|h| *h == h.to_ascii_lowercase()));
    }

    #[test]
    fn an_emulator_answers_only_on_hosts_its_connector_serves() {
        for provider in Provider::all() {
            let Some(emulator) = provider.emulator() else { continue };
            for host in emulator.hosts() {
                assert_eq!(Provider::detect(host), provider, "{host}");
            }
        }
    }
}

/// Requests counted per key (an account, a subaccount, an API key) in fixed one-second windows: the
/// way the emulated providers rate-limit.
#[derive(Debug, Default)]
pub struct RateWindows(HashMap<String, (i64, u32)>);

impl RateWindows {
    /// Counts a request of `key` at `now`; `false`, counting nothing, when `limit` requests of `key`
    /// were already counted in that second.
    pub fn admit(&mut self, key: &str, now: DateTime<Utc>, limit: u32) -> bool {
        let second = now.timestamp();
        let window = self.0.entry(key.to_string()).or_insert((second, 0));
        if window.0 != second {
            *window = (second, 0);
        }
        if window.1 >= limit {
            return false;
        }
        window.1 += 1;
        true
    }
}
