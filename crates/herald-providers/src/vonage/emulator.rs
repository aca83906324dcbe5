//! Vonage's SMS API in the sandbox: `POST /sms/json` on `rest.nexmo.com`, a form or JSON body with
//! `api_key` and `api_secret`, every outcome under HTTP 200 as a per-message `status` (`0`, or a code of
//! `codes.rs` with its `error-text`); a long text is split into parts, each its own message with its
//! own id and receipts. Delivery receipts and inbound messages are posted as JSON (the account's
//! "POST-JSON" setting) or as forms, to the message's `callback` or the account webhook; a STOP reply
//! bars the phone from that sender (status 7) until START.
//!
//! Checks run in this order: the path (404), the method (405), `api_key` and `api_secret` present (2),
//! the account (4), the rate (1), `from`, `to` and `text` present (2), `to` as 7 to 15 digits (3),
//! `type` (3), `client-ref` and `callback` of 100 characters at most (3, 23), the text's length (12),
//! then the destination: barred or opted out (7), de-activated (33).

use super::codes::submit_code;
use crate::emulator::{
    AcceptedMessage, AccountWebhook, Answer, Emulation, Emulator, Env, Fault, Inbound, Method, RateWindows,
    Request, StatusCode, Webhook, World, form_as_json, form_fields, option_section, read_option,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The emulated account's key: 8 characters, as the spec requires.
pub const DEFAULT_API_KEY: &str = "sandbox0";
pub const DEFAULT_API_SECRET: &str = "sandbox-vonage-secret";
/// A number the emulated account refuses as barred (status 7).
pub const BARRED_NUMBER: &str = "+14155550107";
/// A number the emulated account refuses as de-activated (status 33).
pub const DEACTIVATED_NUMBER: &str = "+14155550133";
/// The network the answers and receipts name (an MCCMNC).
const NETWORK: &str = "310260";
/// What each part costs the emulated account, in its currency.
const PART_PRICE: &str = "0.00750000";
const PART_PRICE_NANOS: i64 = 7_500_000;
/// The longest text the emulated account sends; longer is status 12.
const MAX_TEXT_CHARS: usize = 3200;
/// The longest `client-ref` and `callback` Vonage takes.
const MAX_REF_CHARS: usize = 100;

/// What the emulated Vonage accepts (the options file's `vonage`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VonageOptions {
    /// `(api_key, api_secret)` pairs. Default one account: `sandbox0` with `sandbox-vonage-secret`.
    pub accounts: Vec<(String, String)>,
    /// Destinations refused with status 7 (Number Barred). Default `["+14155550107"]`.
    pub barred_numbers: Vec<String>,
    /// Destinations refused with status 33 (Number De-activated). Default `["+14155550133"]`.
    pub deactivated_numbers: Vec<String>,
    /// Requests per second per api_key above which the answer is status 1 (Throttled); `None` never
    /// limits.
    pub rate_per_second: Option<u32>,
    /// How receipts and inbound messages are posted: `json` (Vonage's "POST-JSON") or `form`
    /// ("POST"). Default `json`.
    pub webhook_format: WebhookFormat,
    /// The account's balance before the first message, in its currency. Default `10`.
    pub balance: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Form,
}

impl Default for VonageOptions {
    fn default() -> Self {
        VonageOptions {
            accounts: vec![(DEFAULT_API_KEY.into(), DEFAULT_API_SECRET.into())],
            barred_numbers: vec![BARRED_NUMBER.into()],
            deactivated_numbers: vec![DEACTIVATED_NUMBER.into()],
            rate_per_second: None,
            webhook_format: WebhookFormat::Json,
            balance: "10".into(),
        }
    }
}

pub(super) struct VonageEmulator;

impl Emulator for VonageEmulator {
    fn hosts(&self) -> &'static [&'static str] {
        &["rest.nexmo.com"]
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["vonage"]
    }

    fn options(&self, key: &str, given: Option<&Value>) -> Result<Value, String> {
        match key {
            "vonage" => {
                let value = option_section::<VonageOptions>(given)?;
                let balance = value.get("balance").and_then(Value::as_str).unwrap_or_default();
                if nanos(balance).is_none() {
                    return Err(format!("balance: {balance:?} is not a decimal amount such as \"10.5\""));
                }
                Ok(value)
            }
            other => Err(format!("Vonage reads no option {other}")),
        }
    }

    fn start(&self, options: &Map<String, Value>) -> Box<dyn Emulation> {
        let options: VonageOptions = read_option(options, "vonage");
        Box::new(VonageAccount {
            balance_nanos: nanos(&options.balance).unwrap_or_default(),
            options,
            windows: RateWindows::default(),
            opt_outs: HashSet::new(),
        })
    }
}

struct VonageAccount {
    options: VonageOptions,
    /// The remaining balance, in billionths.
    balance_nanos: i64,
    /// Requests counted per api_key.
    windows: RateWindows,
    /// Phones that texted a STOP word to a sender, as `(sender, phone)`, digits only.
    opt_outs: HashSet<(String, String)>,
}

/// What a part's receipts need beyond the message itself.
struct Details {
    api_key: String,
    from: String,
    client_ref: Option<String>,
}

impl VonageAccount {
    fn listed(list: &[String], number: &str) -> bool {
        list.iter().any(|listed| digits(listed) == number)
    }

    fn post(&self, url: Option<String>, fields: Vec<(String, String)>) -> Webhook {
        match self.options.webhook_format {
            WebhookFormat::Json => {
                let body: Map<String, Value> =
                    fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                Webhook::json(url, Vec::new(), Value::Object(body))
            }
            WebhookFormat::Form => {
                let body =
                    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields.iter()).finish();
                Webhook {
                    url,
                    headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
                    body: body.into_bytes(),
                    logged: form_as_json(&fields),
                    state: String::new(),
                    message_id: String::new(),
                }
            }
        }
    }
}

impl Emulation for VonageAccount {
    fn answer(&mut self, request: &Request<'_>, world: &mut dyn World) -> Answer {
        if request.path.trim_end_matches('/') != "/sms/json" {
            return Answer::text(StatusCode::NOT_FOUND, "Not Found");
        }
        if request.method != Method::POST {
            return Answer::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        let fields = Fields::of(request);
        let (Some(api_key), Some(api_secret)) = (fields.get("api_key"), fields.get("api_secret")) else {
            let missing = if fields.get("api_key").is_none() { "api_key" } else { "api_secret" };
            return refusal(2, &format!("Missing {missing}"));
        };
        let known = self.options.accounts.iter().any(|(key, secret)| key == api_key && secret == api_secret);
        if !known {
            return refusal(4, "Bad Credentials");
        }
        let api_key = api_key.to_string();
        if let Some(limit) = self.options.rate_per_second
            && !self.windows.admit(&api_key, world.now(), limit)
        {
            return refusal(1, "Throughput Rate Exceeded - please wait [ 1000 ] and retry");
        }
        let mut missing = ["from", "to", "text"].into_iter().filter(|f| fields.get(f).is_none());
        if let Some(field) = missing.next() {
            return refusal(2, &format!("Missing {field} param"));
        }
        let (from, to, text) = (
            fields.get("from").unwrap_or_default(),
            fields.get("to").unwrap_or_default(),
            fields.get("text").unwrap_or_default(),
        );
        if !(7..=15).contains(&to.len()) || !to.bytes().all(|b| b.is_ascii_digit()) {
            return refusal(3, "Invalid to address");
        }
        if !matches!(fields.get("type").unwrap_or("text"), "text" | "unicode") {
            return refusal(3, "Invalid message type");
        }
        let client_ref = fields.get("client-ref");
        if client_ref.is_some_and(|r| r.chars().count() > MAX_REF_CHARS) {
            return refusal(3, "Invalid client-ref: longer than 100 characters");
        }
        let callback = fields.get("callback");
        if callback.is_some_and(|c| c.chars().count() > MAX_REF_CHARS || !c.starts_with("http")) {
            return refusal(23, "Invalid callback url");
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return refusal(12, "Message too long");
        }
        let sender = digits(from);
        if Self::listed(&self.options.barred_numbers, to)
            || self.opt_outs.contains(&(sender.clone(), to.to_string()))
        {
            return refusal(7, "Number barred");
        }
        if Self::listed(&self.options.deactivated_numbers, to) {
            return refusal(33, "Number de-activated");
        }
        let parts = herald_sms::split_parts(text);
        let count = parts.len();
        let mut messages = Vec::with_capacity(count);
        for part in parts {
            let id = new_message_id(world);
            let id = world.accept(AcceptedMessage {
                id,
                client_message_id: client_ref.map(str::to_string),
                destination: format!("+{to}"),
                source: Some(from.to_string()),
                text: Some(part),
                callback_url: callback.map(str::to_string),
                // Vonage recognises no resend: every accepted request is a new message.
                dedup: None,
                details: Box::new(Details {
                    api_key: api_key.clone(),
                    from: from.to_string(),
                    client_ref: client_ref.map(str::to_string),
                }),
            });
            self.balance_nanos -= PART_PRICE_NANOS;
            let mut message = json!({
                "to": to,
                "message-id": id,
                "status": "0",
                "remaining-balance": amount(self.balance_nanos),
                "message-price": PART_PRICE,
                "network": NETWORK,
            });
            if let Some(client_ref) = client_ref {
                message["client-ref"] = json!(client_ref);
            }
            messages.push(message);
        }
        Answer::json(StatusCode::OK, json!({"message-count": count.to_string(), "messages": messages}))
    }

    /// One receipt per status, as Vonage words it: `sent` is `accepted`, `undelivered` is `expired`
    /// (err-code 2, the handset stayed unreachable), `failed` carries err-code 99 and `rejected` 6; Vonage
    /// reports no `queued` or `read`. To the message's `callback`, else the account webhook.
    fn receipts(
        &self,
        message: &AcceptedMessage,
        statuses: &[String],
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Vec<Webhook> {
        let Some(details) = message.details::<Details>() else { return Vec::new() };
        let Some(url) = message.callback_url.clone().or_else(|| account.map(|a| a.url.to_string())) else {
            return Vec::new();
        };
        let now = env.now();
        statuses
            .iter()
            .filter_map(|status| {
                let (word, err_code) = match status.as_str() {
                    "sent" => ("accepted", "0"),
                    "delivered" => ("delivered", "0"),
                    "undelivered" => ("expired", "2"),
                    "failed" => ("failed", "99"),
                    "rejected" => ("rejected", "6"),
                    _ => return None,
                };
                let mut fields = vec![
                    ("msisdn", digits(&message.destination)),
                    ("to", details.from.clone()),
                    ("network-code", NETWORK.to_string()),
                    ("messageId", message.id.clone()),
                    ("price", PART_PRICE.to_string()),
                    ("status", word.to_string()),
                    ("scts", now.format("%y%m%d%H%M").to_string()),
                    ("err-code", err_code.to_string()),
                    ("api-key", details.api_key.clone()),
                    ("message-timestamp", now.format("%Y-%m-%d %H:%M:%S").to_string()),
                ];
                if let Some(client_ref) = &details.client_ref {
                    fields.push(("client-ref", client_ref.clone()));
                }
                let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                Some(self.post(Some(url.clone()), fields).about(status, &message.id))
            })
            .collect()
    }

    /// A STOP word bars `from` from texting to the number `to` again, a START word lifts it.
    fn inbound(
        &mut self,
        message: &Inbound<'_>,
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Webhook {
        let pair = (digits(message.to), digits(message.from));
        match herald_sms::classify_keyword(message.text) {
            Some(herald_sms::Keyword::OptOut) => {
                self.opt_outs.insert(pair);
            }
            Some(herald_sms::Keyword::OptIn) => {
                self.opt_outs.remove(&pair);
            }
            _ => {}
        }
        let id = new_message_id(env);
        let now = env.now();
        let info = herald_sms::inspect(message.text);
        let kind = if info.encoding == herald_sms::Encoding::Gsm7 { "text" } else { "unicode" };
        let keyword = message.text.split_whitespace().next().unwrap_or_default().to_uppercase();
        let api_key = self.options.accounts.first().map(|(k, _)| k.clone()).unwrap_or_default();
        let fields = [
            ("msisdn", digits(message.from)),
            ("to", digits(message.to)),
            ("messageId", id.clone()),
            ("text", message.text.to_string()),
            ("type", kind.to_string()),
            ("keyword", keyword),
            ("api-key", api_key),
            ("message-timestamp", now.format("%Y-%m-%d %H:%M:%S").to_string()),
        ];
        let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        self.post(account.map(|a| a.url.to_string()), fields).about("received", &id)
    }

    /// Vonage's own words for a platform fault (status 5) and for the rate (status 1).
    fn fault(&self, fault: Fault, _env: &mut dyn Env) -> Answer {
        let (status, code, text) = match fault {
            Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, 5, "Internal Error"),
            Fault::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                1,
                "Throughput Rate Exceeded - please wait [ 1000 ] and retry",
            ),
        };
        Answer { status, ..refusal(code, text) }
    }

    fn opt_outs(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> =
            self.opt_outs.iter().map(|(sender, phone)| (format!("+{sender}"), format!("+{phone}"))).collect();
        list.sort();
        list
    }

    fn clear_opt_outs(&mut self) {
        self.opt_outs.clear();
    }
}

/// A request's parameters, from a JSON object or a form, empty values left out.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn of(request: &Request<'_>) -> Fields {
        let pairs = match request.json {
            Some(Value::Object(object)) => object
                .iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((k.clone(), text))
                })
                .collect(),
            _ => form_fields(request.body),
        };
        Fields(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }
}

/// A refused request, as Vonage answers it: HTTP 200 with one message's status and error-text.
fn refusal(code: u32, text: &str) -> Answer {
    debug_assert!(submit_code(&code.to_string()).is_some(), "undocumented status {code}");
    Answer::json(
        StatusCode::OK,
        json!({"message-count": "1", "messages": [{"status": code.to_string(), "error-text": text}]}),
    )
}

fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// 16 upper-case hex digits, as Vonage's message ids.
fn new_message_id(env: &mut dyn Env) -> String {
    format!("{:016X}", env.random() as u64)
}

/// A decimal amount in billionths (`"10.5"` -> 10_500_000_000).
fn nanos(amount: &str) -> Option<i64> {
    let (whole, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    if whole.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<9}").parse().ok()?;
    whole.checked_mul(1_000_000_000)?.checked_add(fraction)
}

/// Billionths as Vonage writes amounts: eight decimals.
fn amount(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    format!("{sign}{}.{:08}", nanos / 1_000_000_000, (nanos % 1_000_000_000) / 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::testing::{Recorder, answer};
    use std::collections::BTreeMap;

    fn account() -> Box<dyn Emulation> {
        VonageEmulator.start(&Map::new())
    }

    fn send(account: &mut dyn Emulation, world: &mut Recorder, form: &str) -> Value {
        let reply = answer(account, world, Method::POST, "/sms/json", &[], form.as_bytes());
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    const CREDENTIALS: &str = "api_key=sandbox0&api_secret=sandbox-vonage-secret";

    fn status_of(answer: &Value) -> (&str, &str) {
        let m = &answer["messages"][0];
        (m["status"].as_str().unwrap(), m["error-text"].as_str().unwrap_or_default())
    }

    #[test]
    fn accepts_a_form_send_and_answers_each_part_with_its_id_price_and_reference() {
        let mut world = Recorder::default();
        let mut account = account();
        let reply = send(
            account.as_mut(),
            &mut world,
            &format!("{CREDENTIALS}&from=14155550123&to=14155550100&text=Hi&client-ref=hrld-1"),
        );
        assert_eq!(reply["message-count"], "1");
        let message = &reply["messages"][0];
        assert_eq!((message["status"].as_str(), message["to"].as_str()), (Some("0"), Some("14155550100")));
        assert_eq!(message["client-ref"], "hrld-1");
        assert_eq!(message["remaining-balance"], "9.99250000");
        let id = message["message-id"].as_str().unwrap();
        assert!(id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(world.accepted.len(), 1);
        assert_eq!(world.accepted[0].destination, "+14155550100");
        assert_eq!(world.accepted[0].client_message_id.as_deref(), Some("hrld-1"));
    }

    #[test]
    fn accepts_a_json_send_and_splits_a_long_text_into_parts() {
        let mut world = Recorder::default();
        let mut account = account();
        let body = json!({"api_key": "sandbox0", "api_secret": "sandbox-vonage-secret", "from": "Acme",
                          "to": "14155550100", "text": "x".repeat(200)});
        let reply =
            answer(account.as_mut(), &mut world, Method::POST, "/sms/json", &[], body.to_string().as_bytes());
        let reply: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(reply["message-count"], "2");
        let ids: Vec<&str> =
            reply["messages"].as_array().unwrap().iter().map(|m| m["message-id"].as_str().unwrap()).collect();
        assert_ne!(ids[0], ids[1]);
        assert_eq!(world.accepted.len(), 2, "a receipt per part");
    }

    #[test]
    fn every_refusal_is_a_status_inside_a_200() {
        let mut world = Recorder::default();
        let mut account = account();
        let mut check = |form: &str, code: &str, text: &str| {
            let reply = send(account.as_mut(), &mut world, form);
            assert_eq!(status_of(&reply), (code, text), "{form}");
        };
        check("api_key=sandbox0&from=1&to=14155550100&text=Hi", "2", "Missing api_secret");
        check("api_key=sandbox0&api_secret=nope&from=1&to=14155550100&text=Hi", "4", "Bad Credentials");
        check(&format!("{CREDENTIALS}&to=14155550100&text=Hi"), "2", "Missing from param");
        check(&format!("{CREDENTIALS}&from=A&to=%2B14155550100&text=Hi"), "3", "Invalid to address");
        check(&format!("{CREDENTIALS}&from=A&to=14155550100&text=Hi&type=wap"), "3", "Invalid message type");
        check(
            &format!("{CREDENTIALS}&from=A&to=14155550100&text=Hi&callback=ftp://x"),
            "23",
            "Invalid callback url",
        );
        check(
            &format!("{CREDENTIALS}&from=A&to=14155550100&text={}", "x".repeat(3201)),
            "12",
            "Message too long",
        );
        check(&format!("{CREDENTIALS}&from=A&to=14155550107&text=Hi"), "7", "Number barred");
        check(&format!("{CREDENTIALS}&from=A&to=14155550133&text=Hi"), "33", "Number de-activated");
        assert!(world.accepted.is_empty());
        let other = answer(account.as_mut(), &mut world, Method::POST, "/sms/xml", &[], b"");
        assert_eq!(other.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn over_the_rate_is_status_1() {
        let options = json!({"vonage": VonageEmulator.options("vonage", Some(&json!({"rate_per_second": 1}))).unwrap()});
        let mut account = VonageEmulator.start(options.as_object().unwrap());
        let mut world = Recorder::default();
        let form = format!("{CREDENTIALS}&from=A&to=14155550100&text=Hi");
        assert_eq!(status_of(&send(account.as_mut(), &mut world, &form)).0, "0");
        assert_eq!(status_of(&send(account.as_mut(), &mut world, &form)).0, "1");
    }

    #[test]
    fn receipts_go_to_the_callback_else_the_account_webhook_in_vonage_s_words() {
        let mut world = Recorder::default();
        let mut account = account();
        send(
            account.as_mut(),
            &mut world,
            &format!("{CREDENTIALS}&from=14155550123&to=14155550100&text=Hi&client-ref=k1"),
        );
        let message = world.accepted.remove(0);
        let statuses = ["queued", "sent", "delivered"].map(String::from);
        assert!(account.receipts(&message, &statuses, None, &mut world).is_empty(), "nowhere to post");
        let headers = BTreeMap::new();
        let target = AccountWebhook { url: "http://127.0.0.1:9/dlr", headers: &headers };
        let posts = account.receipts(&message, &statuses, Some(&target), &mut world);
        assert_eq!(posts.len(), 2, "no queued receipt");
        assert_eq!(posts[0].url.as_deref(), Some("http://127.0.0.1:9/dlr"));
        assert_eq!((posts[0].logged["status"].as_str(), posts[0].state.as_str()), (Some("accepted"), "sent"));
        let dlr = &posts[1].logged;
        assert_eq!(dlr["status"], "delivered");
        assert_eq!(dlr["msisdn"], "14155550100");
        assert_eq!(dlr["to"], "14155550123");
        assert_eq!(dlr["client-ref"], "k1");
        assert_eq!(dlr["err-code"], "0");
        assert_eq!(dlr["messageId"], message.id.as_str());
        assert_eq!(posts[1].headers, [("Content-Type".to_string(), "application/json".to_string())]);

        send(
            account.as_mut(),
            &mut world,
            &format!("{CREDENTIALS}&from=A&to=14155550100&text=Hi&callback=http://127.0.0.1:9/own"),
        );
        let own = world.accepted.remove(0);
        let posts = account.receipts(&own, &["undelivered".to_string()], Some(&target), &mut world);
        assert_eq!(posts[0].url.as_deref(), Some("http://127.0.0.1:9/own"));
        assert_eq!(
            (posts[0].logged["status"].as_str(), posts[0].logged["err-code"].as_str()),
            (Some("expired"), Some("2"))
        );
    }

    #[test]
    fn form_webhooks_when_the_account_says_post() {
        let options = VonageEmulator.options("vonage", Some(&json!({"webhook_format": "form"}))).unwrap();
        let mut account = VonageEmulator.start(json!({"vonage": options}).as_object().unwrap());
        let stop = Inbound { from: "+14155550100", to: "+14155550123", text: "stop", subaccount: None };
        let webhook = account.inbound(&stop, None, &mut Recorder::default());
        assert_eq!(webhook.headers[0].1, "application/x-www-form-urlencoded");
        let fields = form_fields(&webhook.body);
        assert!(fields.contains(&("keyword".to_string(), "STOP".to_string())), "{fields:?}");
        assert!(fields.contains(&("msisdn".to_string(), "14155550100".to_string())), "{fields:?}");
    }

    #[test]
    fn a_stop_reply_bars_the_phone_from_that_sender_until_start() {
        let mut world = Recorder::default();
        let mut account = account();
        let stop = Inbound { from: "+14155550100", to: "+14155550123", text: "STOP", subaccount: None };
        let webhook = account.inbound(&stop, None, &mut world);
        assert_eq!((webhook.url, webhook.state.as_str()), (None, "received"));
        assert_eq!(webhook.logged["keyword"], "STOP");
        assert_eq!(account.opt_outs(), [("+14155550123".to_string(), "+14155550100".to_string())]);
        let form = format!("{CREDENTIALS}&from=14155550123&to=14155550100&text=Hi");
        assert_eq!(status_of(&send(account.as_mut(), &mut world, &form)).0, "7");
        let other_sender = format!("{CREDENTIALS}&from=14155550999&to=14155550100&text=Hi");
        assert_eq!(status_of(&send(account.as_mut(), &mut world, &other_sender)).0, "0");
        account.inbound(&Inbound { text: "START", ..stop }, None, &mut world);
        assert_eq!(status_of(&send(account.as_mut(), &mut world, &form)).0, "0");
    }

    #[test]
    fn faults_are_answered_in_vonage_s_envelope() {
        let account = account();
        let error = account.fault(Fault::ServerError, &mut Recorder::default());
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = serde_json::from_str(&error.body).unwrap();
        assert_eq!(body["messages"][0]["status"], "5");
        let many = account.fault(Fault::TooManyRequests { retry_after_secs: 1 }, &mut Recorder::default());
        assert_eq!(many.status, StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn amounts_read_and_print_to_eight_decimals() {
        assert_eq!(nanos("10"), Some(10_000_000_000));
        assert_eq!(nanos("0.0075"), Some(7_500_000));
        assert_eq!(nanos("ten"), None);
        assert_eq!(nanos("1.2.3"), None);
        assert_eq!(amount(9_992_500_000), "9.99250000");
        assert_eq!(amount(-7_500_000), "-0.00750000");
        assert!(
            VonageEmulator
                .options("vonage", Some(&json!({"balance": "lots"})))
                .unwrap_err()
                .contains("balance")
        );
    }
}
