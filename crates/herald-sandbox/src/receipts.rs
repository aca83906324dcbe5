//! Webhooks the providers post: delivery receipts after a message is accepted, inbound messages on
//! demand, each retried as 8x8 does (after 1, 10, 30 and 90 s) when the receiver does not answer 2xx.

use crate::registry::{Origin, SentMessage};
use crate::twilio::{self, API_VERSION};
use crate::{Provider, Sandbox, client};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a host's account-level webhooks go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookTarget {
    /// An `http://` URL (the sandbox does not speak TLS).
    pub url: String,
    /// Static headers the customer configured, sent with every webhook of the host (8x8's
    /// `Authorization: Bearer <secret>`). Kixie and Twilio send none in reality.
    pub headers: BTreeMap<String, String>,
}

impl WebhookTarget {
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

/// A webhook ready to post.
#[derive(Clone, Debug)]
pub(crate) struct Post {
    pub host: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub logged_body: Value,
    pub event: &'static str,
    pub state: String,
    pub message_id: String,
    pub duplicate: bool,
}

impl Post {
    fn json(host: &str, url: &str, extra: &[(String, String)], body: Value) -> Post {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(extra.iter().cloned());
        Post {
            host: host.into(),
            url: url.into(),
            headers,
            body: body.to_string().into_bytes(),
            logged_body: body,
            event: "status",
            state: String::new(),
            message_id: String::new(),
            duplicate: false,
        }
    }

    /// A form post signed as Twilio signs its webhooks.
    fn twilio(url: &str, auth_token: &str, params: Vec<(String, String)>) -> Post {
        let signature = twilio::twilio_signature(auth_token, url, &params);
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        Post {
            host: twilio::TWILIO_HOST.into(),
            url: url.into(),
            headers: vec![
                ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
                ("X-Twilio-Signature".into(), signature),
                ("I-Twilio-Idempotency-Token".into(), format!("{:032x}", rand::random::<u128>())),
                ("User-Agent".into(), "TwilioProxy/1.1".into()),
            ],
            body: body.into_bytes(),
            logged_body: twilio::form_as_json(&params),
            event: "status",
            state: String::new(),
            message_id: String::new(),
            duplicate: false,
        }
    }

    fn tagged(mut self, event: &'static str, state: &str, message_id: &str) -> Post {
        self.event = event;
        self.state = state.into();
        self.message_id = message_id.into();
        self
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// 8x8's name for a status, its detail, and the error of a failed one.
fn eight_by_eight_status(status: &str) -> Value {
    let (state, detail, error) = match status {
        "sent" => ("sent", Some("delivered_to_operator"), None),
        "delivered" | "read" => (status, Some("delivered_to_recipient"), None),
        "undelivered" => (
            "undelivered",
            Some("undelivered_to_recipient"),
            Some((5, "Message could not be delivered to the recipient")),
        ),
        "failed" | "rejected" => {
            ("rejected", Some("rejected_by_operator"), Some((6, "Message was rejected by the operator")))
        }
        other => (other, None, None),
    };
    json!({
        "state": state,
        "detail": detail,
        "timestamp": now_text(),
        "errorCode": error.map(|e| e.0),
        "errorMessage": error.map(|e| e.1),
    })
}

/// What the sandbox charges per SMS part in 8x8 receipts.
const PRICE_PER_SMS: f64 = 0.035;
const PRICE_CURRENCY: &str = "EUR";

fn price(parts: u32) -> Value {
    let total = (PRICE_PER_SMS * f64::from(parts) * 10_000.0).round() / 10_000.0;
    json!({"total": total, "perSms": PRICE_PER_SMS, "currency": PRICE_CURRENCY})
}

/// The URL and static headers of `host`'s account-level webhook.
fn account_webhook(sandbox: &Sandbox, host: &str) -> Option<WebhookTarget> {
    sandbox.state.webhooks.lock().ok()?.get(host).cloned()
}

fn headers_of(target: Option<&WebhookTarget>) -> Vec<(String, String)> {
    target.map(|t| t.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// The receipt of `message` reaching `status`, or `None` when the provider has nowhere to post it.
fn status_post(sandbox: &Sandbox, message: &SentMessage, origin: &Origin, status: &str) -> Option<Post> {
    let account = account_webhook(sandbox, &message.host);
    let extra = headers_of(account.as_ref());
    let post = match origin {
        Origin::EightByEightSms { subaccount, batch, dlr_callback_url, sms_count, .. } => {
            let url = dlr_callback_url.clone().or(account.map(|a| a.url))?;
            Post::json(
                &message.host,
                &url,
                &extra,
                json!({
                    "namespace": "SMS",
                    "eventType": "outbound_message_status_changed",
                    "description": "SMS status update",
                    "payload": {
                        "umid": message.id,
                        "batchId": batch.as_ref().map(|b| &b.batch_id),
                        "clientMessageId": message.client_message_id,
                        "clientBatchId": batch.as_ref().and_then(|b| b.client_batch_id.as_ref()),
                        "subAccountId": subaccount,
                        "source": message.source,
                        "destination": message.destination,
                        "status": eight_by_eight_status(status),
                        "price": price(*sms_count),
                        "smsCount": sms_count,
                    },
                }),
            )
        }
        Origin::ChatApps { subaccount, batch, dlr_callback_url, user, channel } => {
            let url = dlr_callback_url.clone().or(account.map(|a| a.url))?;
            Post::json(
                &message.host,
                &url,
                &extra,
                json!({
                    "namespace": "ChatApps",
                    "eventType": "outbound_message_status_changed",
                    "description": "ChatApps message status update",
                    "payload": {
                        "umid": message.id,
                        "batchId": batch.as_ref().map(|b| &b.batch_id),
                        "clientMessageId": message.client_message_id,
                        "clientBatchId": batch.as_ref().and_then(|b| b.client_batch_id.as_ref()),
                        "subAccountId": subaccount,
                        "channel": channel,
                        "user": user,
                        "status": eight_by_eight_status(status),
                    },
                }),
            )
        }
        Origin::Kixie { .. } => return None,
        Origin::Twilio { account_sid, auth_token, status_callback, from, messaging_service_sid } => {
            let url = status_callback.clone()?;
            let twilio_status = match status {
                "rejected" => "failed",
                other => other,
            };
            let mut params = vec![
                ("SmsSid".to_string(), message.id.clone()),
                ("SmsStatus".to_string(), twilio_status.to_string()),
                ("MessageStatus".to_string(), twilio_status.to_string()),
                ("To".to_string(), message.destination.clone()),
                ("MessageSid".to_string(), message.id.clone()),
                ("AccountSid".to_string(), account_sid.clone()),
                ("From".to_string(), from.clone().unwrap_or_default()),
                ("ApiVersion".to_string(), API_VERSION.to_string()),
            ];
            if let Some(service) = messaging_service_sid {
                params.push(("MessagingServiceSid".into(), service.clone()));
            }
            match twilio_status {
                "undelivered" => params.push(("ErrorCode".into(), "30003".into())),
                "failed" => params.push(("ErrorCode".into(), "30008".into())),
                _ => {}
            }
            Post::twilio(&url, auth_token, params)
        }
    };
    Some(post.tagged("status", status, &message.id))
}

/// Kixie's webhook for an SMS an agent sent: one event, no status.
fn kixie_outgoing(sandbox: &Sandbox, message: &SentMessage, origin: &Origin) -> Option<Post> {
    let Origin::Kixie { businessid, email, from_number } = origin else { return None };
    let target = account_webhook(sandbox, &message.host)?;
    let line = &sandbox.state.options.kixie_line;
    let business = from_number.clone().unwrap_or_else(|| line.business_number.clone());
    let body = json!({"data": {
        "messageid": message.id,
        "from": business,
        "to": message.destination,
        "customernumber": message.destination,
        "businessnumber": business,
        "direction": "outgoing",
        "message": message.text,
        "businessid": businessid,
        "userid": line.userid,
        "email": email.clone().unwrap_or_else(|| line.email.clone()),
    }});
    Some(Post::json(&message.host, &target.url, &[], body).tagged("status", "outgoing", &message.id))
}

/// Posts the receipts of messages just accepted, on a task of their own.
pub(crate) fn schedule(sandbox: &Sandbox, host: &str, messages: Vec<(SentMessage, Origin)>) {
    let options = sandbox.receipt_options();
    let mut plans = Vec::new();
    for (message, origin) in messages {
        let posts: Vec<Post> = if matches!(origin, Origin::Kixie { .. }) {
            kixie_outgoing(sandbox, &message, &origin).into_iter().collect()
        } else {
            options
                .statuses_for(&message.destination)
                .iter()
                .filter_map(|status| status_post(sandbox, &message, &origin, status))
                .collect()
        };
        if posts.is_empty() {
            continue;
        }
        // Drawn here, on the request path, so that a seeded run does not depend on task timing.
        let (duplicates, reorder) = sandbox.state.faults.receipt_plan(host, posts.len());
        let mut posts: Vec<(Post, bool)> = posts.into_iter().zip(duplicates).collect();
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
    let result = client::post(&post.url, &post.headers, &post.body, ATTEMPT_TIMEOUT).await;
    let record = ReceiptAttempt {
        host: post.host.clone(),
        url: post.url.clone(),
        event: post.event.into(),
        state: post.state.clone(),
        message_id: post.message_id.clone(),
        body: post.logged_body.clone(),
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
    #[serde(default)]
    pub subaccount: Option<String>,
}

/// What a provider posts when `inbound.from` texts `inbound.to`, or why it cannot.
pub(crate) fn inbound_post(sandbox: &Sandbox, inbound: &Inbound) -> Result<Post, String> {
    let host = inbound.host.to_ascii_lowercase();
    let provider =
        crate::provider_of(&host).ok_or_else(|| format!("the sandbox emulates no provider at {host}"))?;
    let target = account_webhook(sandbox, &host);
    let options = &sandbox.state.options;
    let subaccount = inbound
        .subaccount
        .clone()
        .or_else(|| options.eight_by_eight.subaccounts.first().cloned())
        .unwrap_or_else(|| "sandbox-subaccount".into());
    let info = herald_sms::inspect(&inbound.text);
    let timestamp = now_text();
    let post = match provider {
        Provider::EightByEightSms => {
            let umid = crate::eightbyeight::new_uuid();
            let body = json!({
                "namespace": "SMS",
                "eventType": "inbound_message_received",
                "description": "Inbound SMS",
                "payload": {
                    "umid": umid,
                    "subAccountId": subaccount,
                    "timestamp": timestamp,
                    "source": inbound.from,
                    "destination": inbound.to,
                    "body": inbound.text,
                    "encoding": info.encoding.as_str(),
                    "smsCount": info.segments,
                    "price": price(info.segments),
                },
            });
            let url = target.as_ref().map(|t| t.url.clone()).unwrap_or_default();
            Post::json(&host, &url, &headers_of(target.as_ref()), body).tagged("inbound", "received", &umid)
        }
        Provider::ChatApps => {
            let umid = crate::eightbyeight::new_uuid();
            let body = json!({
                "namespace": "ChatApps",
                "eventType": "inbound_message_received",
                "description": "Inbound message",
                "payload": {
                    "umid": umid,
                    "subAccountId": subaccount,
                    "timestamp": timestamp,
                    "user": {"msisdn": inbound.from, "channelUserId": inbound.from.trim_start_matches('+')},
                    "recipient": {"channel": "WhatsApp", "channelId": inbound.to},
                    "type": "text",
                    "content": {"text": inbound.text},
                },
            });
            let url = target.as_ref().map(|t| t.url.clone()).unwrap_or_default();
            Post::json(&host, &url, &headers_of(target.as_ref()), body).tagged("inbound", "received", &umid)
        }
        Provider::Kixie => {
            let id = crate::kixie::new_message_id(&inbound.text, &inbound.from);
            let line = &options.kixie_line;
            let body = json!({"data": {
                "messageid": id,
                "from": inbound.from,
                "to": inbound.to,
                "customernumber": inbound.from,
                "businessnumber": inbound.to,
                "direction": "incoming",
                "message": inbound.text,
                "businessid": options.kixie.businessid,
                "userid": line.userid,
                "email": line.email,
            }});
            let url = target.as_ref().map(|t| t.url.clone()).unwrap_or_default();
            Post::json(&host, &url, &[], body).tagged("inbound", "received", &id)
        }
        Provider::Twilio => {
            match herald_sms::classify_keyword(&inbound.text) {
                Some(herald_sms::Keyword::OptOut) => {
                    sandbox.state.opt_outs.set(&inbound.to, &inbound.from, true)
                }
                Some(herald_sms::Keyword::OptIn) => {
                    sandbox.state.opt_outs.set(&inbound.to, &inbound.from, false)
                }
                _ => {}
            }
            let (account_sid, token) = options.twilio.accounts.first().cloned().unwrap_or_default();
            let sid = twilio::new_sid("SM");
            let segments = info.segments.to_string();
            let params: Vec<(String, String)> = [
                ("SmsMessageSid", sid.as_str()),
                ("NumMedia", "0"),
                ("SmsSid", &sid),
                ("SmsStatus", "received"),
                ("Body", &inbound.text),
                ("To", &inbound.to),
                ("NumSegments", &segments),
                ("MessageSid", &sid),
                ("AccountSid", &account_sid),
                ("From", &inbound.from),
                ("ApiVersion", API_VERSION),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let url = target.as_ref().map(|t| t.url.clone()).unwrap_or_default();
            Post::twilio(&url, &token, params).tagged("inbound", "received", &sid)
        }
    };
    Ok(post)
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
    fn statuses_map_to_8x8_states_and_details() {
        let failed = eight_by_eight_status("failed");
        assert_eq!((failed["state"].as_str(), failed["errorCode"].as_u64()), (Some("rejected"), Some(6)));
        let sent = eight_by_eight_status("sent");
        assert_eq!(
            (sent["detail"].as_str(), sent["errorCode"].is_null()),
            (Some("delivered_to_operator"), true)
        );
        assert_eq!(price(3), json!({"total": 0.105, "perSms": 0.035, "currency": "EUR"}));
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
