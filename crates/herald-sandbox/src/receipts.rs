//! Webhooks the providers post: delivery receipts after a message is accepted, inbound messages on
//! demand, each retried as 8x8 does (after 1, 10, 30 and 90 s) when the receiver does not answer 2xx.
//!
//! What each webhook says, where it goes and how it is signed is the emulator's
//! ([`Emulation::receipts`], [`Emulation::inbound`]); when it is posted, how often, what is logged and
//! the duplicated or reordered receipts of fault injection are the sandbox's.

use crate::{Sandbox, client};
use chrono::{SecondsFormat, Utc};
use herald_providers::emulator::{AcceptedMessage, AccountWebhook, Emulation, Env, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a host's account-level webhooks go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookTarget {
    /// An `http://` URL (the sandbox does not speak TLS).
    pub url: String,
    /// Static headers the customer configured, sent with the host's webhooks by providers that send
    /// them (8x8's `Authorization: Bearer <secret>`); the emulator decides.
    pub headers: BTreeMap<String, String>,
}

impl WebhookTarget {
    /// The target as an emulator sees it.
    pub(crate) fn view(&self) -> AccountWebhook<'_> {
        AccountWebhook { url: &self.url, headers: &self.headers }
    }

    pub fn validate(&self) -> Result<(), String> {
        client::split_url(&self.url)?;
        for (name, value) in &self.headers {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("not a valid header name: {name:?}"));
            }
            if axum::http::HeaderValue::from_str(value).is_err() || value.contains(['\r', '\n']) {
                return Err(format!("not a valid value for header {name}"));
            }
        }
        Ok(())
    }
}

/// How receipts are emitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptOptions {
    /// Multiplies the retry schedule (1, 10, 30, 90 s): 0.001 makes it milliseconds. Default 1.
    pub time_scale: f64,
    /// The statuses each accepted message goes through, in order. Default `["sent", "delivered"]`;
    /// empty sends no receipts. Known: queued, sent, delivered, read, undelivered, failed (8x8's
    /// `rejected`, also accepted under that name).
    pub statuses: Vec<String>,
    /// Destinations whose messages end `undelivered` (with an error code) instead of delivered/read.
    pub undelivered_destinations: Vec<String>,
    /// Wait before the first receipt of a message. Default 50.
    pub delay_ms: u64,
}

impl Default for ReceiptOptions {
    fn default() -> Self {
        ReceiptOptions {
            time_scale: 1.0,
            statuses: vec!["sent".into(), "delivered".into()],
            undelivered_destinations: Vec::new(),
            delay_ms: 50,
        }
    }
}

const KNOWN_STATUSES: [&str; 7] =
    ["queued", "sent", "delivered", "read", "undelivered", "failed", "rejected"];

impl ReceiptOptions {
    pub fn validate(&self) -> Result<(), String> {
        if !self.time_scale.is_finite() || !(0.0..=1000.0).contains(&self.time_scale) {
            return Err(format!("time_scale must be between 0 and 1000, got {}", self.time_scale));
        }
        if let Some(unknown) = self.statuses.iter().find(|s| !KNOWN_STATUSES.contains(&s.as_str())) {
            return Err(format!("unknown status {unknown:?}; use {}", KNOWN_STATUSES.join(", ")));
        }
        if self.delay_ms > 3_600_000 {
            return Err("delay_ms must not exceed 3600000".into());
        }
        Ok(())
    }

    /// The statuses a message to `destination` goes through.
    fn statuses_for(&self, destination: &str) -> Vec<String> {
        let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
        let target = digits(destination);
        if !self.undelivered_destinations.iter().any(|d| digits(d) == target) {
            return self.statuses.clone();
        }
        let mut statuses: Vec<String> =
            self.statuses.iter().filter(|s| !matches!(s.as_str(), "delivered" | "read")).cloned().collect();
        if !statuses.iter().any(|s| s == "undelivered") {
            statuses.push("undelivered".into());
        }
        statuses
    }

    /// The waits before attempts 2 to 5.
    fn retry_delays(&self) -> Vec<Duration> {
        RETRY_SECONDS
            .iter()
            .map(|s| Duration::try_from_secs_f64(s * self.time_scale).unwrap_or(Duration::ZERO))
            .collect()
    }
}

/// 8x8's documented retry schedule.
const RETRY_SECONDS: [f64; 4] = [1.0, 10.0, 30.0, 90.0];
/// How long one attempt waits for the receiver's status line.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One delivery attempt of one webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptAttempt {
    pub host: String,
    pub url: String,
    /// `status` (a receipt of an outbound message, and Kixie's outgoing SMS event) or `inbound`.
    pub event: String,
    /// The status posted (`sent`, `delivered`, ...), `received` for inbound, `outgoing` for Kixie's event.
    pub state: String,
    pub message_id: String,
    /// The posted body; a form body as a JSON object of its fields.
    pub body: Value,
    /// 1 for the first try, up to 5.
    pub attempt: u32,
    /// True for the second copy `duplicate_receipt_rate` posts.
    pub duplicate: bool,
    pub answered_status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

/// A webhook ready to post, and what the receipt log says of it.
#[derive(Clone, Debug)]
pub(crate) struct Post {
    pub host: String,
    /// `status` or `inbound`.
    pub event: &'static str,
    pub duplicate: bool,
    pub webhook: Webhook,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The receipts of the messages a request just accepted, in the emulator's words: a list per message.
pub(crate) fn receipts_of(
    emulation: &dyn Emulation,
    messages: &[AcceptedMessage],
    options: &ReceiptOptions,
    account: Option<&WebhookTarget>,
    env: &mut dyn Env,
) -> Vec<Vec<Webhook>> {
    let account = account.map(WebhookTarget::view);
    messages
        .iter()
        .map(|message| {
            let statuses = options.statuses_for(&message.destination);
            let mut webhooks = emulation.receipts(message, &statuses, account.as_ref(), env);
            webhooks.retain(|w| w.url.is_some());
            webhooks
        })
        .filter(|webhooks| !webhooks.is_empty())
        .collect()
}

/// Posts the receipts of messages just accepted (a list per message), on a task of their own.
pub(crate) fn schedule(sandbox: &Sandbox, host: &str, receipts: Vec<Vec<Webhook>>, options: ReceiptOptions) {
    let mut plans = Vec::new();
    for webhooks in receipts {
        // Drawn here, on the request path, so that a seeded run does not depend on task timing.
        let (duplicates, reorder) = sandbox.state.faults.receipt_plan(host, webhooks.len());
        let mut posts: Vec<(Post, bool)> = webhooks
            .into_iter()
            .map(|webhook| Post { host: host.to_string(), event: "status", duplicate: false, webhook })
            .zip(duplicates)
            .collect();
        if reorder {
            posts.reverse();
        }
        plans.push(posts);
    }
    if plans.is_empty() {
        return;
    }
    let sandbox = sandbox.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(options.delay_ms)).await;
        for posts in plans {
            for (post, duplicate) in posts {
                let copy = duplicate.then(|| Post { duplicate: true, ..post.clone() });
                // The outcome is in the receipt log; nobody waits for it here.
                let _ = deliver(&sandbox, post, &options).await;
                if let Some(copy) = copy {
                    let _ = deliver(&sandbox, copy, &options).await;
                }
            }
        }
    });
}

/// Makes a first attempt and waits for it; the retries, if needed, go on in the background so that a
/// failing receipt does not hold back the next (8x8's receipts can arrive out of order for that reason).
pub(crate) async fn deliver(sandbox: &Sandbox, post: Post, options: &ReceiptOptions) -> Result<u16, String> {
    let result = attempt(sandbox, &post, 1).await;
    if !matches!(result, Ok(status) if (200..300).contains(&status)) {
        let sandbox = sandbox.clone();
        let delays = options.retry_delays();
        tokio::spawn(async move {
            for (n, delay) in delays.into_iter().enumerate() {
                tokio::time::sleep(delay).await;
                let number = u32::try_from(n).unwrap_or(0) + 2;
                if matches!(attempt(&sandbox, &post, number).await, Ok(s) if (200..300).contains(&s)) {
                    return;
                }
            }
        });
    }
    result
}

async fn attempt(sandbox: &Sandbox, post: &Post, number: u32) -> Result<u16, String> {
    let webhook = &post.webhook;
    let url = webhook.url.as_deref().unwrap_or_default();
    let result = client::post(url, &webhook.headers, &webhook.body, ATTEMPT_TIMEOUT).await;
    let record = ReceiptAttempt {
        host: post.host.clone(),
        url: url.to_string(),
        event: post.event.into(),
        state: webhook.state.clone(),
        message_id: webhook.message_id.clone(),
        body: webhook.logged.clone(),
        attempt: number,
        duplicate: post.duplicate,
        answered_status: result.as_ref().ok().copied(),
        error: result.as_ref().err().cloned(),
        at: now_text(),
    };
    if let Ok(mut log) = sandbox.state.receipt_log.lock() {
        log.push(record);
    }
    result
}

/// `POST /_sandbox/inbound`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    pub host: String,
    pub from: String,
    pub to: String,
    pub text: String,
    /// The subaccount to report, for providers whose webhooks name one; others ignore it.
    #[serde(default)]
    pub subaccount: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undelivered_destinations_end_undelivered() {
        let options = ReceiptOptions {
            statuses: vec!["queued".into(), "sent".into(), "delivered".into(), "read".into()],
            undelivered_destinations: vec!["+1 415 555 0100".into()],
            ..ReceiptOptions::default()
        };
        assert_eq!(options.statuses_for("+14155550100"), ["queued", "sent", "undelivered"]);
        assert_eq!(options.statuses_for("+14155550101"), ["queued", "sent", "delivered", "read"]);
    }

    #[test]
    fn the_retry_schedule_scales() {
        let options = ReceiptOptions { time_scale: 0.001, ..ReceiptOptions::default() };
        assert_eq!(options.retry_delays(), [1, 10, 30, 90].map(Duration::from_millis));
        assert!(
            ReceiptOptions { time_scale: f64::INFINITY, ..ReceiptOptions::default() }.validate().is_err()
        );
        assert!(ReceiptOptions { time_scale: -1.0, ..ReceiptOptions::default() }.validate().is_err());
        assert!(
            ReceiptOptions { statuses: vec!["lost".into()], ..ReceiptOptions::default() }.validate().is_err()
        );
    }

    #[test]
    fn webhook_targets_refuse_bad_urls_and_headers() {
        let ok = WebhookTarget { url: "http://127.0.0.1:9/h".into(), headers: BTreeMap::new() };
        assert!(ok.validate().is_ok());
        let mut bad_header = ok.clone();
        bad_header.headers.insert("Bad Name".into(), "x".into());
        assert!(bad_header.validate().is_err());
        let mut bad_value = ok.clone();
        bad_value.headers.insert("Authorization".into(), "a\r\nInjected: 1".into());
        assert!(bad_value.validate().is_err());
        assert!(WebhookTarget { url: "https://x.test/".into(), ..ok }.validate().is_err());
    }
}
