//! 8x8 in the sandbox: SMS and Chat Apps (WhatsApp, Viber, RCS, ...) as 8x8's documentation and its official
//! specs (shipped in `crates/herald-providers/specs/8x8/`) describe them, on all four regions' hosts:
//! `POST /api/v1/subaccounts/{subAccountId}/messages` (single) and `.../messages/batch`; their
//! `outbound_message_status_changed` receipts and `inbound_message_received` webhooks.
//!
//! Checks run in this order: Bearer key (401, code 1200), subaccount (400 code 1001 when malformed,
//! 403 code 1201 when not this account's), rate (429 with `Retry-After`), JSON body (400 code 1000),
//! then the message itself. A single message that fails validation is a 400 with
//! `{code, message, errorId, timestamp}`; in a batch it is a `REJECTED` / `rejected` entry instead.
//!
//! SMS and Chat Apps are two emulators of one account: both read the options file's `eight_by_eight`.

use crate::emulator::{
    AcceptedMessage, AccountWebhook, Answer, Dedup, Emulation, Emulator, Env, Fault, Inbound, Method,
    RateWindows, Request, StatusCode, Webhook, World, option_section, read_option,
};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// A valid number the emulated operator rejects (`REJECTED` inside a 200).
pub const BLOCKED_DESTINATION: &str = "+6589999999";

/// What the emulated 8x8 account accepts (the options file's `eight_by_eight`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EightByEightOptions {
    /// The API key expected in `Authorization: Bearer <key>`. Default `sandbox-8x8-key`.
    pub api_key: String,
    /// The account's subaccount ids; empty (the default) accepts any well-formed id.
    pub subaccounts: Vec<String>,
    /// Approved WhatsApp templates as (name, language). Default: `("your_authentication_template_name",
    /// "en_US")`, the placeholder seed 003 uses, and `("otp_code", "en_US")`.
    pub templates: Vec<(String, String)>,
    /// Requests per second per subaccount above which the sandbox answers 429; `None` (the default)
    /// never limits. 8x8's own limit is 1800/s.
    pub rate_per_second: Option<u32>,
}

impl Default for EightByEightOptions {
    fn default() -> Self {
        EightByEightOptions {
            api_key: "sandbox-8x8-key".into(),
            subaccounts: Vec::new(),
            templates: vec![
                ("your_authentication_template_name".into(), "en_US".into()),
                ("otp_code".into(), "en_US".into()),
            ],
            rate_per_second: None,
        }
    }
}

/// Which 8x8 product an emulator answers as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Product {
    Sms,
    ChatApps,
}

/// The emulator of one 8x8 product.
pub(super) struct EightByEightEmulator(Product);

pub(super) static SMS: EightByEightEmulator = EightByEightEmulator(Product::Sms);
pub(super) static CHAT_APPS: EightByEightEmulator = EightByEightEmulator(Product::ChatApps);

impl Emulator for EightByEightEmulator {
    fn hosts(&self) -> &'static [&'static str] {
        match self.0 {
            Product::Sms => &["sms.8x8.com", "sms.us.8x8.com", "sms.8x8.uk", "sms.8x8.id"],
            Product::ChatApps => {
                &["chatapps.8x8.com", "chatapps.us.8x8.com", "chatapps.8x8.uk", "chatapps.8x8.id"]
            }
        }
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["eight_by_eight"]
    }

    fn options(&self, key: &str, given: Option<&Value>) -> Result<Value, String> {
        match key {
            "eight_by_eight" => option_section::<EightByEightOptions>(given),
            other => Err(format!("8x8 reads no option {other}")),
        }
    }

    fn start(&self, options: &Map<String, Value>) -> Box<dyn Emulation> {
        Box::new(EightByEightAccount {
            product: self.0,
            options: read_option(options, "eight_by_eight"),
            windows: RateWindows::default(),
        })
    }
}

/// One product of the emulated account.
struct EightByEightAccount {
    product: Product,
    options: EightByEightOptions,
    /// Requests counted per subaccount.
    windows: RateWindows,
}

const SUBACCOUNT_MAX: usize = 50;
const SMS_BATCH_MAX: usize = 10_000;
const CHAT_BATCH_MAX: usize = 1_000;
const SMS_MAX_PARTS: u32 = 10;
/// 8x8 keeps a clientMessageId for 24 hours.
const DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);
const CHAT_TYPES: [&str; 10] = [
    "text",
    "audio",
    "video",
    "image",
    "location",
    "file",
    "interactive",
    "template",
    "carousel",
    "richCard",
];
const CHANNELS: [&str; 9] =
    ["SMS", "WhatsApp", "Facebook", "RCS", "Viber", "Line", "WeChat", "Zalo", "Instagram"];
const SUCCESS_STATUSES: [&str; 4] = ["Accepted", "Sent", "Delivered", "Read"];
const COMPONENT_TYPES: [&str; 7] =
    ["header", "footer", "body", "button", "carousel", "call_permission_request", "request_contact_info"];
const PARAMETER_TYPES: [&str; 10] = [
    "text",
    "image",
    "gif",
    "video",
    "document",
    "location",
    "payload",
    "couponCode",
    "action",
    "ttlMinutes",
];
const SUB_TYPES: [&str; 5] = ["QuickReply", "Url", "CopyCode", "Flow", "VoiceCall"];

/// Why one message is refused: an 8x8 error code and its text.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    code: u32,
    message: String,
}

fn refuse(code: u32, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// The batch a message came in.
#[derive(Clone, Debug)]
struct Batch {
    batch_id: String,
    client_batch_id: Option<String>,
}

/// What a message's receipts need beyond the message itself.
enum Details {
    Sms { subaccount: String, batch: Option<Batch>, sms_count: u32 },
    Chat { subaccount: String, batch: Option<Batch>, user: Value, channel: String },
}

/// One request: the world it hands messages to, and where they come from.
struct Ctx<'a> {
    world: &'a mut dyn World,
    product: Product,
    subaccount: &'a str,
    batch: Option<Batch>,
}

impl Ctx<'_> {
    /// The umid to answer with: a new one, or the first submission's when 8x8 deduplicates the
    /// clientMessageId (same subaccount and product, within 24 hours).
    fn accept(&mut self, mut message: AcceptedMessage) -> String {
        message.dedup = message.client_message_id.as_ref().map(|id| Dedup {
            key: format!("{:?}\u{0}{}\u{0}{id}", self.product, self.subaccount),
            window: DEDUP_WINDOW,
        });
        self.world.accept(message)
    }

    fn uuid(&mut self) -> String {
        new_uuid(&mut *self.world)
    }

    fn now_text(&self) -> String {
        now_text(&*self.world)
    }

    fn refusal(&mut self, refusal: Refusal) -> Answer {
        error(&mut *self.world, StatusCode::BAD_REQUEST, refusal.code, &refusal.message)
    }
}

impl Emulation for EightByEightAccount {
    fn answer(&mut self, request: &Request<'_>, world: &mut dyn World) -> Answer {
        let path = request.path;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (subaccount, batch) = match segments.as_slice() {
            ["", "api", "v1", "subaccounts", id, "messages"] => (*id, false),
            ["", "api", "v1", "subaccounts", id, "messages", "batch"] => (*id, true),
            _ => return error(world, StatusCode::NOT_FOUND, 1300, &format!("Resource not found: {path}")),
        };
        if !self.authorized(request) {
            return error(
                world,
                StatusCode::UNAUTHORIZED,
                1200,
                "Unauthorized: missing or invalid API key (Authorization: Bearer <apiKey>)",
            );
        }
        if request.method != Method::POST {
            let method = request.method;
            return error(
                world,
                StatusCode::METHOD_NOT_ALLOWED,
                1000,
                &format!("Method {method} is not allowed on {path}; use POST"),
            );
        }
        if !valid_subaccount(subaccount) {
            return error(
                world,
                StatusCode::BAD_REQUEST,
                1001,
                &format!("Illegal subAccountId: {subaccount}"),
            );
        }
        if !self.options.subaccounts.is_empty() && !self.options.subaccounts.iter().any(|s| s == subaccount) {
            return error(
                world,
                StatusCode::FORBIDDEN,
                1201,
                &format!("Forbidden: subaccount {subaccount} is not accessible with this API key"),
            );
        }
        if let Some(limit) = self.options.rate_per_second
            && !self.windows.admit(subaccount, world.now(), limit)
        {
            // The window is one second long.
            return too_many(1).with_header("retry-after", "1");
        }
        // Parsed once by the sandbox, which also logs it.
        let Some(Value::Object(body)) = request.json else {
            return error(
                world,
                StatusCode::BAD_REQUEST,
                1000,
                "Invalid request body: expected a JSON object",
            );
        };
        let mut ctx = Ctx { world, product: self.product, subaccount, batch: None };
        match (self.product, batch) {
            (Product::Sms, false) => sms_single(body, &mut ctx),
            (Product::Sms, true) => sms_batch(body, &mut ctx),
            (Product::ChatApps, false) => chat_single(&self.options, body, &mut ctx),
            (Product::ChatApps, true) => chat_batch(&self.options, body, &mut ctx),
        }
    }

    /// One `outbound_message_status_changed` event per status, to the message's `dlrCallbackUrl` or
    /// else the account webhook, with the account webhook's headers. SMS receipts carry the price
    /// (0.035 EUR per part) and `smsCount`.
    fn receipts(
        &self,
        message: &AcceptedMessage,
        statuses: &[String],
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Vec<Webhook> {
        let Some(url) = message.callback_url.clone().or_else(|| account.map(|a| a.url.to_string())) else {
            return Vec::new();
        };
        let Some(details) = message.details::<Details>() else { return Vec::new() };
        let headers = account.map(|a| a.header_list()).unwrap_or_default();
        let batch_id = |batch: &Option<Batch>| batch.as_ref().map(|b| b.batch_id.clone());
        let client_batch_id = |batch: &Option<Batch>| batch.as_ref().and_then(|b| b.client_batch_id.clone());
        statuses
            .iter()
            .map(|status| {
                let body = match details {
                    Details::Sms { subaccount, batch, sms_count } => json!({
                        "namespace": "SMS",
                        "eventType": "outbound_message_status_changed",
                        "description": "SMS status update",
                        "payload": {
                            "umid": message.id,
                            "batchId": batch_id(batch),
                            "clientMessageId": message.client_message_id,
                            "clientBatchId": client_batch_id(batch),
                            "subAccountId": subaccount,
                            "source": message.source,
                            "destination": message.destination,
                            "status": status_of(status, env),
                            "price": price(*sms_count),
                            "smsCount": sms_count,
                        },
                    }),
                    Details::Chat { subaccount, batch, user, channel } => json!({
                        "namespace": "ChatApps",
                        "eventType": "outbound_message_status_changed",
                        "description": "ChatApps message status update",
                        "payload": {
                            "umid": message.id,
                            "batchId": batch_id(batch),
                            "clientMessageId": message.client_message_id,
                            "clientBatchId": client_batch_id(batch),
                            "subAccountId": subaccount,
                            "channel": channel,
                            "user": user,
                            "status": status_of(status, env),
                        },
                    }),
                };
                Webhook::json(Some(url.clone()), headers.clone(), body).about(status, &message.id)
            })
            .collect()
    }

    /// `inbound_message_received` to the account webhook, with its headers. The subaccount is the
    /// request's, else the first of the options' `subaccounts`, else `sandbox-subaccount`.
    fn inbound(
        &mut self,
        message: &Inbound<'_>,
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Webhook {
        let subaccount = message
            .subaccount
            .map(str::to_string)
            .or_else(|| self.options.subaccounts.first().cloned())
            .unwrap_or_else(|| "sandbox-subaccount".into());
        let umid = new_uuid(env);
        let timestamp = now_text(env);
        let body = match self.product {
            Product::Sms => {
                let info = herald_sms::inspect(message.text);
                json!({
                    "namespace": "SMS",
                    "eventType": "inbound_message_received",
                    "description": "Inbound SMS",
                    "payload": {
                        "umid": umid,
                        "subAccountId": subaccount,
                        "timestamp": timestamp,
                        "source": message.from,
                        "destination": message.to,
                        "body": message.text,
                        "encoding": info.encoding.as_str(),
                        "smsCount": info.segments,
                        "price": price(info.segments),
                    },
                })
            }
            Product::ChatApps => json!({
                "namespace": "ChatApps",
                "eventType": "inbound_message_received",
                "description": "Inbound message",
                "payload": {
                    "umid": umid,
                    "subAccountId": subaccount,
                    "timestamp": timestamp,
                    "user": {"msisdn": message.from, "channelUserId": message.from.trim_start_matches('+')},
                    "recipient": {"channel": "WhatsApp", "channelId": message.to},
                    "type": "text",
                    "content": {"text": message.text},
                },
            }),
        };
        let url = account.map(|a| a.url.to_string());
        let headers = account.map(|a| a.header_list()).unwrap_or_default();
        Webhook::json(url, headers, body).about("received", &umid)
    }

    fn fault(&self, fault: Fault, env: &mut dyn Env) -> Answer {
        match fault {
            Fault::ServerError => {
                error(env, StatusCode::INTERNAL_SERVER_ERROR, 2000, "Internal server error")
            }
            Fault::TooManyRequests { retry_after_secs } => too_many(retry_after_secs),
        }
    }
}

impl EightByEightAccount {
    fn authorized(&self, request: &Request<'_>) -> bool {
        let Some(value) = request.header("authorization") else { return false };
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let key = parts.next().unwrap_or("").trim();
        scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() && key == self.options.api_key
    }
}

/// `^[A-Za-z0-9\-._&]{3,50}$`
fn valid_subaccount(id: &str) -> bool {
    (3..=SUBACCOUNT_MAX).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-._&".contains(c))
}

/// `^\+{0,1}[1-9]{1}[0-9]{6,14}$`
fn valid_msisdn(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    digits.starts_with(|c: char| ('1'..='9').contains(&c))
        && (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// 8x8's error body `{code, message, errorId, timestamp}`.
fn error(env: &mut dyn Env, status: StatusCode, code: u32, message: &str) -> Answer {
    let error_id = new_uuid(env);
    Answer::json(
        status,
        json!({"code": code, "message": message, "errorId": error_id, "timestamp": now_text(env)}),
    )
}

/// 8x8's 429 body.
fn too_many(wait: u64) -> Answer {
    Answer::json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"code": 429, "message": format!("Quota exceeded. Please try again in {wait} second(s).")}),
    )
}

/// A version-4 UUID from the world's random bits.
fn new_uuid(env: &mut dyn Env) -> String {
    let bits = env.random();
    let high = (bits >> 64) as u64;
    let low = bits as u64;
    // Written digit by digit: a batch of 10,000 makes 10,000 of them, and `format!` costs more.
    fn hex(id: &mut String, value: u64, digits: u32) {
        for shift in (0..digits).rev() {
            id.push(char::from(b"0123456789abcdef"[((value >> (shift * 4)) & 0xf) as usize]));
        }
    }
    let mut id = String::with_capacity(36);
    hex(&mut id, high >> 32, 8);
    id.push('-');
    hex(&mut id, (high >> 16) & 0xffff, 4);
    id.push_str("-4");
    hex(&mut id, high & 0x0fff, 3);
    id.push('-');
    hex(&mut id, 0x8000 | (low >> 48) & 0x3fff, 4);
    id.push('-');
    hex(&mut id, low & 0xffff_ffff_ffff, 12);
    id
}

fn now_text(env: &dyn Env) -> String {
    env.now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// 8x8's name for a status, its detail, and the error of a failed one.
fn status_of(status: &str, env: &dyn Env) -> Value {
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
        "timestamp": now_text(env),
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

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Refusal> {
    text_value(object.get(field), field)
}

fn text_value<'a>(value: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, Refusal> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(refuse(1000, format!("Invalid parameter: {field} must be a string"))),
    }
}

fn check_length(field: &str, value: Option<&str>, max: usize, code: u32) -> Result<(), Refusal> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(refuse(code, format!("Invalid parameter: {field} is longer than {max} characters")))
        }
        _ => Ok(()),
    }
}

fn check_date(field: &str, value: Option<&str>, code: u32) -> Result<(), Refusal> {
    match value {
        Some(v) if DateTime::parse_from_rfc3339(v).is_err() => Err(refuse(
            code,
            format!("Invalid {field}: '{v}' is not an ISO 8601 date-time such as 2025-01-31T09:30:00Z"),
        )),
        _ => Ok(()),
    }
}

fn check_url(field: &str, value: Option<&str>) -> Result<(), Refusal> {
    match value {
        Some(v) if !(v.starts_with("https://") || v.starts_with("http://")) || v.contains(' ') => {
            Err(refuse(1000, format!("Invalid parameter: {field} '{v}' is not an absolute URL")))
        }
        _ => Ok(()),
    }
}

fn check_enum(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), Refusal> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(refuse(
            1000,
            format!("Invalid parameter: {field} '{v}' is not one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------------
// SMS

/// A valid SMS, ready to be answered as QUEUED (or REJECTED for an unassigned country code).
struct SmsAccepted {
    destination: String,
    client_message_id: Option<String>,
    encoding: &'static str,
    rejected: Option<&'static str>,
    source: Option<String>,
    text: String,
    dlr_callback_url: Option<String>,
    parts: u32,
}

/// The segments of the last text inspected: a batch's messages usually share their template's text,
/// which is then inspected once rather than once per destination.
#[derive(Default)]
struct Segments {
    last: Option<(String, herald_sms::SegmentInfo)>,
}

impl Segments {
    fn of(&mut self, text: &str) -> &herald_sms::SegmentInfo {
        if self.last.as_ref().is_some_and(|(seen, _)| seen != text) {
            self.last = None;
        }
        let (_, info) = self.last.get_or_insert_with(|| (text.to_string(), herald_sms::inspect(text)));
        info
    }
}

/// A message's fields as 8x8 reads them: the message's own over its batch's template, or, in a batch
/// of `destinations`, the template's with one destination. Looked up where they are, so that a batch
/// of thousands copies no message.
#[derive(Clone, Copy)]
struct Fields<'a> {
    own: &'a Map<String, Value>,
    under: Option<&'a Map<String, Value>>,
    destination: Option<&'a Value>,
}

impl<'a> Fields<'a> {
    fn of(own: &'a Map<String, Value>) -> Self {
        Fields { own, under: None, destination: None }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        if field == "destination" && self.destination.is_some() {
            return self.destination;
        }
        self.own.get(field).or_else(|| self.under?.get(field))
    }

    fn text(&self, field: &str) -> Result<Option<&'a str>, Refusal> {
        text_value(self.get(field), field)
    }
}

fn check_sms(message: Fields<'_>, segments: &mut Segments) -> Result<SmsAccepted, Refusal> {
    let Some(destination) = message.text("destination")? else {
        return Err(refuse(1002, "Invalid MSISDN: destination is required"));
    };
    if !valid_msisdn(destination) {
        return Err(refuse(1002, "Invalid MSISDN format (not E.164 international number)"));
    }
    let Some(body) = message.text("text")? else {
        return Err(refuse(1004, "Invalid text: text is required"));
    };
    if let Some(source) = message.text("source")? {
        let numeric = source.trim_start_matches('+').chars().all(|c| c.is_ascii_digit());
        let max = if numeric { 16 } else { 11 };
        if source.is_empty()
            || source.chars().count() > max
            || !source.chars().all(|c| c.is_ascii_alphanumeric() || " +-._".contains(c))
        {
            return Err(refuse(
                1005,
                format!(
                    "Invalid source '{source}': use up to 11 letters and digits, or a number of up to 16 digits"
                ),
            ));
        }
    }
    if let Some(country) = message.text("country")?
        && !(country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(refuse(
            1009,
            format!("Invalid country '{country}': use an ISO 3166-1 alpha-2 code such as SG"),
        ));
    }
    let client_message_id = message.text("clientMessageId")?;
    check_length("clientMessageId", client_message_id, 350, 1000)?;
    let requested = message.text("encoding")?.unwrap_or("AUTO");
    if !["AUTO", "GSM7", "UCS2"].contains(&requested) {
        return Err(refuse(1003, format!("Invalid encoding '{requested}': use AUTO, GSM7 or UCS2")));
    }
    let info = segments.of(body);
    let encoding = match requested {
        "GSM7" if info.encoding == herald_sms::Encoding::Ucs2 => {
            return Err(refuse(
                1003,
                "Invalid encoding: the text holds characters GSM7 cannot carry; use AUTO or UCS2",
            ));
        }
        "GSM7" => "GSM7",
        "UCS2" => "UCS2",
        _ => info.encoding.as_str(),
    };
    let parts = if encoding == "UCS2" && info.encoding == herald_sms::Encoding::Gsm7 {
        let units: usize = body.chars().map(char::len_utf16).sum();
        if units <= 70 { 1 } else { units.div_ceil(67) as u32 }
    } else {
        info.segments
    };
    if parts > SMS_MAX_PARTS {
        return Err(refuse(
            1004,
            format!("Invalid text: {parts} parts, more than the {SMS_MAX_PARTS} allowed"),
        ));
    }
    check_date("scheduled", message.text("scheduled")?, 1011)?;
    check_date("expiry", message.text("expiry")?, 1006)?;
    check_url("dlrCallbackUrl", message.text("dlrCallbackUrl")?)?;
    check_enum("track", message.text("track")?, &["None", "Outcome"])?;
    // No country uses +999, and the sandbox's operator blocks one well-formed number: the ways to
    // produce an operator-side rejection (herald itself refuses +999 before sending).
    let rejected = if destination.trim_start_matches('+').starts_with("999") {
        Some("Destination number is not reachable (unassigned country code)")
    } else if destination.trim_start_matches('+') == BLOCKED_DESTINATION.trim_start_matches('+') {
        Some("Destination number is blocked by the operator")
    } else {
        None
    };
    Ok(SmsAccepted {
        destination: destination.to_string(),
        client_message_id: client_message_id.map(str::to_string),
        encoding,
        rejected,
        source: message.text("source")?.map(str::to_string),
        text: body.to_string(),
        dlr_callback_url: message.text("dlrCallbackUrl")?.map(str::to_string),
        parts,
    })
}

/// Checks a batch's size against the product's limit and gives it its id.
fn start_batch(
    ctx: &mut Ctx,
    count: usize,
    max: usize,
    client_batch_id: Option<&str>,
) -> Result<String, Refusal> {
    if count == 0 {
        return Err(refuse(1000, "Invalid parameter: messages must hold at least one message"));
    }
    if count > max {
        return Err(refuse(1100, format!("Bulk limit exceeded: {count} messages, at most {max}")));
    }
    let batch_id = ctx.uuid();
    ctx.batch =
        Some(Batch { batch_id: batch_id.clone(), client_batch_id: client_batch_id.map(str::to_string) });
    Ok(batch_id)
}

/// Hands a checked SMS to the registry (unless the operator rejects it); whether it was queued, and
/// its entry of the answer when `entry` asks for one (a single send, or a batch that includes its
/// messages in the response: a batch that does not builds no entry per message).
fn sms_result(accepted: SmsAccepted, ctx: &mut Ctx, entry: bool) -> (bool, Option<Value>) {
    let SmsAccepted {
        destination,
        client_message_id,
        encoding,
        rejected,
        source,
        text,
        dlr_callback_url,
        parts,
    } = accepted;
    let (code, description) = match rejected {
        Some(reason) => ("REJECTED", reason),
        None => ("QUEUED", "SMS is accepted and queued for processing"),
    };
    let answered = entry.then(|| (client_message_id.clone(), destination.clone()));
    // A message rejected inside a 200 never reaches an operator: no record, no receipts.
    let umid = if rejected.is_some() {
        entry.then(|| ctx.uuid())
    } else {
        let id = ctx.uuid();
        let details = Details::Sms {
            subaccount: ctx.subaccount.to_string(),
            batch: ctx.batch.clone(),
            sms_count: parts,
        };
        Some(ctx.accept(AcceptedMessage {
            id,
            client_message_id,
            destination,
            source,
            text: Some(text),
            callback_url: dlr_callback_url,
            dedup: None,
            details: Box::new(details),
        }))
    };
    let entry = answered.map(|(client_message_id, destination)| {
        json!({
            "umid": umid,
            "clientMessageId": client_message_id,
            "destination": destination,
            "encoding": encoding,
            "status": {"code": code, "description": description},
        })
    });
    (rejected.is_none(), entry)
}

fn sms_single(request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match check_sms(Fields::of(request), &mut Segments::default()) {
        Ok(accepted) => {
            let (_, entry) = sms_result(accepted, ctx, true);
            Answer::json(StatusCode::OK, entry.unwrap_or(Value::Null))
        }
        Err(refusal) => ctx.refusal(refusal),
    }
}

fn sms_batch(request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match sms_batch_inner(request, ctx) {
        Ok(answer) => answer,
        Err(refusal) => ctx.refusal(refusal),
    }
}

fn sms_batch_inner(request: &Map<String, Value>, ctx: &mut Ctx) -> Result<Answer, Refusal> {
    let client_batch_id = text(request, "clientBatchId")?;
    check_length("clientBatchId", client_batch_id, 20, 1000)?;
    let no_template = Map::new();
    let template = match request.get("template") {
        None | Some(Value::Null) => &no_template,
        Some(Value::Object(t)) => t,
        Some(_) => return Err(refuse(1000, "Invalid parameter: template must be an object")),
    };
    // Each message is the template with the message's own fields (or its destination) over it.
    let (messages, destinations) = match (request.get("messages"), request.get("destinations")) {
        (Some(Value::Array(list)), _) => {
            let Some(items) = list.iter().map(Value::as_object).collect::<Option<Vec<_>>>() else {
                return Err(refuse(1000, "Invalid parameter: each of messages must be an object"));
            };
            (items, None)
        }
        (None, Some(Value::Array(list))) => (Vec::new(), Some(list.as_slice())),
        _ => {
            return Err(refuse(
                1000,
                "Invalid parameter: messages (or destinations with a template) is required",
            ));
        }
    };
    let count = destinations.map_or(messages.len(), <[Value]>::len);
    let batch_id = start_batch(ctx, count, SMS_BATCH_MAX, client_batch_id)?;
    let include = includes_messages(request);
    let mut results = Vec::with_capacity(if include { count } else { 0 });
    let mut accepted_count = 0;
    let mut segments = Segments::default();
    for i in 0..count {
        let fields = match destinations {
            Some(list) => Fields { own: template, under: None, destination: Some(&list[i]) },
            None => Fields { own: messages[i], under: Some(template), destination: None },
        };
        let (queued, entry) = match check_sms(fields, &mut segments) {
            Ok(accepted) => sms_result(accepted, ctx, include),
            Err(refusal) => (
                false,
                include.then(|| {
                    json!({
                        "umid": ctx.uuid(),
                        "clientMessageId": fields.get("clientMessageId"),
                        "destination": fields.get("destination"),
                        "encoding": fields.get("encoding").cloned().unwrap_or(json!("AUTO")),
                        "status": {"code": "REJECTED", "description": refusal.message},
                    })
                }),
            ),
        };
        accepted_count += usize::from(queued);
        results.extend(entry);
    }
    Ok(batch_answer(request, batch_id, client_batch_id, count, results, accepted_count))
}

fn includes_messages(request: &Map<String, Value>) -> bool {
    request.get("includeMessagesInResponse") == Some(&Value::Bool(true))
}

// ---------------------------------------------------------------------------------------------------
// Chat Apps

fn check_chat(
    options: &EightByEightOptions,
    message: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<Value, Refusal> {
    let Some(Value::Object(user)) = message.get("user") else {
        return Err(refuse(1000, "Invalid parameter: user is required (an object with msisdn)"));
    };
    let msisdn = text(user, "msisdn")?;
    if msisdn.is_none() && text(user, "channelUserId")?.is_none() && text(user, "lineUserId")?.is_none() {
        return Err(refuse(1002, "Invalid MSISDN: user.msisdn is required"));
    }
    if let Some(number) = msisdn {
        // National numbers are allowed with user.country; international ones must be E.164.
        let national = text(user, "country")?.is_some() && !number.starts_with('+');
        let digits_ok = number.trim_start_matches('+').chars().all(|c| c.is_ascii_digit());
        if !(valid_msisdn(number) || (national && digits_ok && number.len() >= 5)) {
            return Err(refuse(
                1002,
                format!("Invalid MSISDN format (not E.164 international number): {number}"),
            ));
        }
    }
    check_length("user.country", text(user, "country")?, 2, 1009)?;
    let Some(kind) = text(message, "type")? else {
        return Err(refuse(1000, "Invalid parameter: type is required"));
    };
    // 8x8 accepts the message type in any case.
    let Some(kind) = CHAT_TYPES.iter().find(|t| t.eq_ignore_ascii_case(kind)) else {
        return Err(refuse(
            1000,
            format!("Invalid parameter: type '{kind}' is not one of {}", CHAT_TYPES.join(", ")),
        ));
    };
    let Some(Value::Object(content)) = message.get("content") else {
        return Err(refuse(1000, "Invalid parameter: content is required (an object)"));
    };
    check_length("content.text", text(content, "text")?, 35_000, 1004)?;
    check_length("content.fallbackText", text(content, "fallbackText")?, 35_000, 1004)?;
    match *kind {
        "text" if text(content, "text")?.is_none_or(str::is_empty) => {
            return Err(refuse(1004, "Invalid text: content.text is required for type text"));
        }
        "image" | "video" | "audio" | "file" => {
            let Some(url) = text(content, "url")? else {
                return Err(refuse(
                    1000,
                    format!("Invalid parameter: content.url is required for type {kind}"),
                ));
            };
            check_url("content.url", Some(url))?;
        }
        "template" => check_template(options, content)?,
        _ => {}
    }
    let client_message_id = text(message, "clientMessageId")?;
    check_length("clientMessageId", client_message_id, 50, 1000)?;
    check_date("scheduled", text(message, "scheduled")?, 1011)?;
    check_date("expiry", text(message, "expiry")?, 1006)?;
    check_url("dlrCallbackUrl", text(message, "dlrCallbackUrl")?)?;
    check_channels(message)?;
    let channel = message
        .get("channels")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("channel"))
        .and_then(Value::as_str)
        .unwrap_or("WhatsApp");
    let id = ctx.uuid();
    let details = Details::Chat {
        subaccount: ctx.subaccount.to_string(),
        batch: ctx.batch.clone(),
        user: Value::Object(user.clone()),
        channel: channel.to_string(),
    };
    let umid = ctx.accept(AcceptedMessage {
        id,
        client_message_id: client_message_id.map(str::to_string),
        destination: msisdn
            .or(text(user, "channelUserId")?)
            .or(text(user, "lineUserId")?)
            .unwrap_or_default()
            .to_string(),
        source: None,
        text: text(content, "text")?.or(text(content, "fallbackText")?).map(str::to_string),
        callback_url: text(message, "dlrCallbackUrl")?.map(str::to_string),
        dedup: None,
        details: Box::new(details),
    });
    Ok(json!({
        "umid": umid,
        "user": Value::Object(user.clone()),
        "clientMessageId": client_message_id,
        "status": {"state": "queued", "timestamp": ctx.now_text()},
    }))
}

fn check_channels(message: &Map<String, Value>) -> Result<(), Refusal> {
    let Some(channels) = message.get("channels") else { return Ok(()) };
    let Value::Array(channels) = channels else {
        return Err(refuse(1000, "Invalid parameter: channels must be a list"));
    };
    for (i, channel) in channels.iter().enumerate() {
        let Value::Object(channel) = channel else {
            return Err(refuse(1000, format!("Invalid parameter: channels[{i}] must be an object")));
        };
        let Some(name) = text(channel, "channel")? else {
            return Err(refuse(1000, format!("Invalid parameter: channels[{i}].channel is required")));
        };
        check_enum(&format!("channels[{i}].channel"), Some(name), &CHANNELS)?;
        check_enum(
            &format!("channels[{i}].successStatus"),
            text(channel, "successStatus")?,
            &SUCCESS_STATUSES,
        )?;
        if let Some(after) = channel.get("fallbackAfter")
            && !after.as_u64().is_some_and(|s| (10..=86_400).contains(&s))
        {
            return Err(refuse(
                1000,
                format!("Invalid parameter: channels[{i}].fallbackAfter must be 10..86400 seconds"),
            ));
        }
    }
    Ok(())
}

fn check_template(options: &EightByEightOptions, content: &Map<String, Value>) -> Result<(), Refusal> {
    let Some(Value::Object(template)) = content.get("template") else {
        return Err(refuse(1000, "Invalid parameter: content.template is required for type template"));
    };
    let (Some(name), Some(language)) = (text(template, "name")?, text(template, "language")?) else {
        return Err(refuse(
            1000,
            "Invalid parameter: content.template.name and content.template.language are required",
        ));
    };
    if let Some(components) = template.get("components") {
        let Value::Array(components) = components else {
            return Err(refuse(1000, "Invalid parameter: content.template.components must be a list"));
        };
        for (i, component) in components.iter().enumerate() {
            let at = format!("content.template.components[{i}]");
            let Value::Object(component) = component else {
                return Err(refuse(1000, format!("Invalid parameter: {at} must be an object")));
            };
            let kind = text(component, "type")?.unwrap_or("body");
            check_enum(&format!("{at}.type"), Some(kind), &COMPONENT_TYPES)?;
            if kind == "button" {
                let Some(sub_type) = text(component, "subType")? else {
                    return Err(refuse(
                        1000,
                        format!("Invalid parameter: {at}.subType is required for a button"),
                    ));
                };
                check_enum(&format!("{at}.subType"), Some(sub_type), &SUB_TYPES)?;
                if component.get("index").and_then(Value::as_u64).is_none_or(|n| n > 9) {
                    return Err(refuse(
                        1000,
                        format!("Invalid parameter: {at}.index must be 0..9 for a button"),
                    ));
                }
            }
            if let Some(parameters) = component.get("parameters") {
                let Value::Array(parameters) = parameters else {
                    return Err(refuse(1000, format!("Invalid parameter: {at}.parameters must be a list")));
                };
                for (j, parameter) in parameters.iter().enumerate() {
                    let Value::Object(parameter) = parameter else {
                        return Err(refuse(
                            1000,
                            format!("Invalid parameter: {at}.parameters[{j}] must be an object"),
                        ));
                    };
                    let Some(kind) = text(parameter, "type")? else {
                        return Err(refuse(
                            1000,
                            format!("Invalid parameter: {at}.parameters[{j}].type is required"),
                        ));
                    };
                    check_enum(&format!("{at}.parameters[{j}].type"), Some(kind), &PARAMETER_TYPES)?;
                }
            }
        }
    }
    if !options.templates.iter().any(|(n, l)| n == name && l == language) {
        return Err(refuse(
            3038,
            format!("Template not found for provided name and language: {name} ({language})"),
        ));
    }
    Ok(())
}

fn chat_single(options: &EightByEightOptions, request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match check_chat(options, request, ctx) {
        Ok(accepted) => Answer::json(StatusCode::OK, accepted),
        Err(refusal) => ctx.refusal(refusal),
    }
}

fn chat_batch(options: &EightByEightOptions, request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match chat_batch_inner(options, request, ctx) {
        Ok(answer) => answer,
        Err(refusal) => ctx.refusal(refusal),
    }
}

fn chat_batch_inner(
    options: &EightByEightOptions,
    request: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<Answer, Refusal> {
    let client_batch_id = text(request, "clientBatchId")?;
    check_length("clientBatchId", client_batch_id, 100, 1000)?;
    let template = match request.get("template") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(t)) => t.clone(),
        Some(_) => return Err(refuse(1000, "Invalid parameter: template must be an object")),
    };
    let Some(Value::Array(list)) = request.get("messages") else {
        return Err(refuse(1000, "Invalid parameter: messages is required"));
    };
    let batch_id = start_batch(ctx, list.len(), CHAT_BATCH_MAX, client_batch_id)?;
    let mut results = Vec::with_capacity(list.len());
    let mut accepted_count = 0;
    for item in list {
        let Value::Object(item) = item else {
            return Err(refuse(1000, "Invalid parameter: each of messages must be an object"));
        };
        let mut merged = template.clone();
        merged.extend(item.clone());
        let result = match check_chat(options, &merged, ctx) {
            Ok(accepted) => {
                accepted_count += 1;
                accepted
            }
            Err(refusal) => json!({
                "umid": ctx.uuid(),
                "user": merged.get("user"),
                "clientMessageId": merged.get("clientMessageId"),
                "status": {"state": "rejected", "timestamp": ctx.now_text(), "errorCode": refusal.code, "errorMessage": refusal.message},
            }),
        };
        results.push(result);
    }
    Ok(batch_answer(request, batch_id, client_batch_id, list.len(), results, accepted_count))
}

/// The batch response both APIs share: counts, and the messages only when asked for.
fn batch_answer(
    request: &Map<String, Value>,
    batch_id: String,
    client_batch_id: Option<&str>,
    count: usize,
    results: Vec<Value>,
    accepted_count: usize,
) -> Answer {
    let mut body = json!({
        "batchId": batch_id,
        "clientBatchId": client_batch_id,
        "acceptedCount": accepted_count,
        "rejectedCount": count - accepted_count,
    });
    if includes_messages(request) {
        body["messages"] = Value::Array(results);
    }
    Answer::json(StatusCode::OK, body)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::testing::Recorder;
    use crate::emulator::{AccountWebhook, HeaderMap, Inbound};
    use http::HeaderValue;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// The account a test talks to, kept across its calls as the sandbox keeps it (its rate windows).
    #[derive(Default)]
    struct RateLimiter(RefCell<Option<Box<dyn Emulation>>>);

    fn start(options: &EightByEightOptions, host: &str) -> Box<dyn Emulation> {
        let emulator = if host.starts_with("chatapps.") { &CHAT_APPS } else { &SMS };
        assert!(emulator.hosts().contains(&host), "{host}");
        let options =
            Map::from_iter([("eight_by_eight".to_string(), serde_json::to_value(options).unwrap())]);
        emulator.start(&options)
    }

    /// One request at `now_millis`, the body parsed as the sandbox parses it.
    #[allow(clippy::too_many_arguments)]
    fn handle(
        options: &EightByEightOptions,
        limiter: &RateLimiter,
        host: &str,
        now_millis: u64,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let mut account = limiter.0.borrow_mut();
        let account = account.get_or_insert_with(|| start(options, host));
        let json = serde_json::from_slice::<Value>(body).ok();
        let request = Request { method, path, headers, body, json: json.as_ref() };
        account.answer(&request, &mut Recorder::at_millis(i64::try_from(now_millis).unwrap()))
    }

    const SUB: &str = "/api/v1/subaccounts/acme-01/messages";

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {key}")).unwrap());
        headers
    }

    fn call_with(
        options: &EightByEightOptions,
        limiter: &RateLimiter,
        host: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value, Answer) {
        let answer = handle(
            options,
            limiter,
            host,
            5_000,
            &Method::POST,
            path,
            &bearer("sandbox-8x8-key"),
            body.to_string().as_bytes(),
        );
        let json = serde_json::from_str(&answer.body).unwrap();
        (answer.status.as_u16(), json, answer)
    }

    fn call(host: &str, path: &str, body: Value) -> (u16, Value) {
        let (status, json, _) =
            call_with(&EightByEightOptions::default(), &RateLimiter::default(), host, path, body);
        (status, json)
    }

    fn sms(body: Value) -> (u16, Value) {
        call("sms.8x8.com", SUB, body)
    }

    fn chat(body: Value) -> (u16, Value) {
        call("chatapps.8x8.com", SUB, body)
    }

    fn assert_error(result: (u16, Value), status: u16, code: u64) -> Value {
        let (got, body) = result;
        assert_eq!((got, body["code"].as_u64()), (status, Some(code)), "{body}");
        assert_eq!(body["errorId"].as_str().unwrap().len(), 36);
        assert!(DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
        body
    }

    #[test]
    fn accepts_a_single_sms_on_every_region() {
        for host in ["sms.8x8.com", "sms.us.8x8.com", "sms.8x8.uk", "sms.8x8.id"] {
            let (status, body) = call(
                host,
                SUB,
                json!({"destination": "+6591234567", "text": "Hi", "source": "8x8", "clientMessageId": "c1"}),
            );
            assert_eq!(status, 200, "{host}");
            assert_eq!(
                body["status"],
                json!({"code": "QUEUED", "description": "SMS is accepted and queued for processing"})
            );
            assert_eq!(
                (body["destination"].as_str(), body["encoding"].as_str()),
                (Some("+6591234567"), Some("GSM7"))
            );
            assert_eq!(body["clientMessageId"], "c1");
            assert_eq!(body["umid"].as_str().unwrap().len(), 36);
        }
        assert_eq!(sms(json!({"destination": "+6591234567", "text": "Hi 👋"})).1["encoding"], "UCS2");
    }

    #[test]
    fn wrong_or_missing_key_is_401_with_code_1200() {
        for headers in [bearer("nope"), HeaderMap::new(), {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static("Basic sandbox-8x8-key"));
            h
        }] {
            let answer = handle(
                &EightByEightOptions::default(),
                &RateLimiter::default(),
                "sms.8x8.uk",
                0,
                &Method::POST,
                SUB,
                &headers,
                b"{}",
            );
            let body: Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!((answer.status.as_u16(), body["code"].as_u64()), (401, Some(1200)));
        }
    }

    #[test]
    fn sms_validation_codes_follow_the_spec() {
        assert_error(sms(json!({"text": "Hi"})), 400, 1002);
        let body = assert_error(sms(json!({"destination": "065 9123 4567", "text": "Hi"})), 400, 1002);
        assert_eq!(body["message"], "Invalid MSISDN format (not E.164 international number)");
        assert_error(sms(json!({"destination": "+6591234567"})), 400, 1004);
        assert_error(sms(json!({"destination": "+6591234567", "text": "x".repeat(1531)})), 400, 1004);
        assert_eq!(sms(json!({"destination": "+6591234567", "text": "x".repeat(1530)})).0, 200);
        assert_error(
            sms(json!({"destination": "+6591234567", "text": "Hi", "source": "TwelveLetters"})),
            400,
            1005,
        );
        assert_error(sms(json!({"destination": "+6591234567", "text": "Hi", "encoding": "utf8"})), 400, 1003);
        assert_error(
            sms(json!({"destination": "+6591234567", "text": "Hi", "encoding": "GSM7", "source": "x"})
                .merge_text("日本")),
            400,
            1003,
        );
        assert_error(sms(json!({"destination": "+6591234567", "text": "Hi", "country": "SGP"})), 400, 1009);
        assert_error(
            sms(json!({"destination": "+6591234567", "text": "Hi", "scheduled": "tomorrow"})),
            400,
            1011,
        );
        assert_error(
            sms(json!({"destination": "+6591234567", "text": "Hi", "expiry": "2025-13-01"})),
            400,
            1006,
        );
        assert_error(
            sms(json!({"destination": "+6591234567", "text": "Hi", "clientMessageId": "x".repeat(351)})),
            400,
            1000,
        );
        assert_error(sms(json!({"destination": "+6591234567", "text": "Hi", "track": "outcome"})), 400, 1000);
        assert_error(sms(json!({"destination": 6591234567u64, "text": "Hi"})), 400, 1000);
    }

    trait MergeText {
        fn merge_text(self, text: &str) -> Value;
    }

    impl MergeText for Value {
        fn merge_text(mut self, text: &str) -> Value {
            self["text"] = json!(text);
            self
        }
    }

    #[test]
    fn a_plus_999_destination_is_rejected_inside_a_200() {
        let (status, body) = sms(json!({"destination": "+9991234567", "text": "Hi"}));
        assert_eq!((status, body["status"]["code"].as_str()), (200, Some("REJECTED")));
    }

    #[test]
    fn subaccounts_paths_and_bodies() {
        assert_error(call("sms.8x8.com", "/api/v1/subaccounts/a!/messages", json!({})), 400, 1001);
        assert_error(call("sms.8x8.com", "/api/v1/other", json!({})), 404, 1300);
        let options =
            EightByEightOptions { subaccounts: vec!["mine".into()], ..EightByEightOptions::default() };
        let (status, body, _) = call_with(&options, &RateLimiter::default(), "sms.8x8.com", SUB, json!({}));
        assert_eq!((status, body["code"].as_u64()), (403, Some(1201)));
        let answer = handle(
            &EightByEightOptions::default(),
            &RateLimiter::default(),
            "sms.8x8.com",
            0,
            &Method::POST,
            SUB,
            &bearer("sandbox-8x8-key"),
            b"{oops",
        );
        assert_eq!(answer.status.as_u16(), 400);
        let answer = handle(
            &EightByEightOptions::default(),
            &RateLimiter::default(),
            "sms.8x8.com",
            0,
            &Method::GET,
            SUB,
            &bearer("sandbox-8x8-key"),
            b"",
        );
        assert_eq!(answer.status.as_u16(), 405);
    }

    #[test]
    fn sms_batch_rejects_per_message() {
        let (status, body) = call(
            "sms.us.8x8.com",
            &format!("{SUB}/batch"),
            json!({"clientBatchId": "b1", "includeMessagesInResponse": true, "template": {"source": "ACME"},
                   "messages": [{"destination": "+14155550100", "text": "a"}, {"destination": "12", "text": "b"}]}),
        );
        assert_eq!(status, 200);
        assert_eq!((body["acceptedCount"].as_u64(), body["rejectedCount"].as_u64()), (Some(1), Some(1)));
        assert_eq!(body["clientBatchId"], "b1");
        assert_eq!(body["messages"][0]["status"]["code"], "QUEUED");
        assert_eq!(body["messages"][1]["status"]["code"], "REJECTED");
        assert_eq!(
            body["messages"][1]["status"]["description"],
            "Invalid MSISDN format (not E.164 international number)"
        );

        let (_, body) = call(
            "sms.8x8.com",
            &format!("{SUB}/batch"),
            json!({"destinations": ["+6591234567", "+6591234568"], "template": {"text": "hello"}}),
        );
        assert_eq!(body["acceptedCount"], 2);
        assert!(body.get("messages").is_none(), "messages only when asked");
        assert_error(
            call(
                "sms.8x8.com",
                &format!("{SUB}/batch"),
                json!({"clientBatchId": "x".repeat(21), "messages": []}),
            ),
            400,
            1000,
        );
        let many: Vec<Value> =
            (0..10_001).map(|_| json!({"destination": "+6591234567", "text": "a"})).collect();
        assert_error(call("sms.8x8.com", &format!("{SUB}/batch"), json!({"messages": many})), 400, 1100);
    }

    #[test]
    fn a_batch_message_s_own_fields_win_over_its_template() {
        let template = json!({"source": "ACME", "text": "from the template", "encoding": "UCS2",
                              "destination": "+6590000000"});
        let (_, body) = call(
            "sms.8x8.com",
            &format!("{SUB}/batch"),
            json!({"includeMessagesInResponse": true, "template": template, "messages": [
                {"destination": "+6591234567"},
                {"destination": "+6591234568", "text": "own text", "encoding": "GSM7"},
                // A field set to null is unset, whatever the template says.
                {"destination": "+6591234569", "text": null},
                {"text": "no destination of its own"}]}),
        );
        let entries = body["messages"].as_array().unwrap();
        let summary: Vec<(&str, &str, &str)> = entries
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap_or("-"),
                    m["encoding"].as_str().unwrap_or("-"),
                    m["status"]["code"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("+6591234567", "UCS2", "QUEUED"),
                ("+6591234568", "GSM7", "QUEUED"),
                ("+6591234569", "UCS2", "REJECTED"),
                ("+6590000000", "UCS2", "QUEUED"),
            ]
        );
        assert_eq!(entries[2]["status"]["description"], "Invalid text: text is required");
        // In a batch of destinations, each destination replaces the template's.
        let (_, body) = call(
            "sms.8x8.com",
            &format!("{SUB}/batch"),
            json!({"includeMessagesInResponse": true, "template": template, "destinations": ["+6591234570"]}),
        );
        assert_eq!(body["messages"][0]["destination"], "+6591234570");
        assert_eq!(body["acceptedCount"], 1);
    }

    fn whatsapp_otp(kind: &str, button: &str, sub_type: &str, template: &str) -> Value {
        json!({
            "user": {"msisdn": "+6512345678"},
            "type": kind,
            "content": {"template": {"name": template, "language": "en_US", "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                {"type": button, "subType": sub_type, "index": 0, "parameters": [{"type": "text", "text": "123456"}]}
            ]}}
        })
    }

    #[test]
    fn accepts_the_seed_003_otp_with_corrected_enums_on_every_region() {
        for host in ["chatapps.8x8.com", "chatapps.us.8x8.com", "chatapps.8x8.uk", "chatapps.8x8.id"] {
            let (status, body) = call(
                host,
                SUB,
                whatsapp_otp("template", "button", "Url", "your_authentication_template_name"),
            );
            assert_eq!(status, 200, "{host}: {body}");
            assert_eq!(body["status"]["state"], "queued");
            assert_eq!(body["user"]["msisdn"], "+6512345678");
        }
        // The message type is accepted in any case.
        assert_eq!(chat(whatsapp_otp("Template", "button", "Url", "otp_code")).0, 200);
    }

    #[test]
    fn chat_apps_enforces_the_spec_enums_the_seed_gets_wrong() {
        let body = assert_error(chat(whatsapp_otp("template", "Button", "Url", "otp_code")), 400, 1000);
        assert!(body["message"].as_str().unwrap().contains("components[1].type 'Button'"), "{body}");
        let body = assert_error(chat(whatsapp_otp("template", "button", "url", "otp_code")), 400, 1000);
        assert!(body["message"].as_str().unwrap().contains("subType 'url'"), "{body}");
    }

    #[test]
    fn unknown_template_is_3038() {
        let body = assert_error(chat(whatsapp_otp("template", "button", "Url", "nope")), 400, 3038);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Template not found for provided name and language")
        );
        let options = EightByEightOptions {
            templates: vec![("nope".into(), "en_US".into())],
            ..EightByEightOptions::default()
        };
        let (status, ..) = call_with(
            &options,
            &RateLimiter::default(),
            "chatapps.8x8.com",
            SUB,
            whatsapp_otp("template", "button", "Url", "nope"),
        );
        assert_eq!(status, 200);
    }

    #[test]
    fn chat_apps_validation() {
        assert_error(chat(json!({"type": "text", "content": {"text": "hi"}})), 400, 1000);
        assert_error(
            chat(json!({"user": {"msisdn": "abc"}, "type": "text", "content": {"text": "hi"}})),
            400,
            1002,
        );
        assert_error(
            chat(json!({"user": {"msisdn": "+6512345678"}, "type": "sticker", "content": {}})),
            400,
            1000,
        );
        assert_error(
            chat(json!({"user": {"msisdn": "+6512345678"}, "type": "text", "content": {}})),
            400,
            1004,
        );
        assert_error(
            chat(
                json!({"user": {"msisdn": "+6512345678"}, "type": "text", "content": {"text": "x".repeat(35_001)}}),
            ),
            400,
            1004,
        );
        assert_error(
            chat(json!({"user": {"msisdn": "+6512345678"}, "type": "image", "content": {}})),
            400,
            1000,
        );
        assert_error(
            chat(
                json!({"user": {"msisdn": "+6512345678"}, "type": "text", "content": {"text": "hi"}, "clientMessageId": "x".repeat(51)}),
            ),
            400,
            1000,
        );
        assert_error(
            chat(
                json!({"user": {"msisdn": "+6512345678"}, "type": "text", "content": {"text": "hi"}, "channels": [{"channel": "WhatsApp", "fallbackAfter": 5}]}),
            ),
            400,
            1000,
        );
        assert_error(
            chat(
                json!({"user": {"msisdn": "+6512345678"}, "type": "text", "content": {"text": "hi"}, "channels": [{"channel": "whatsapp"}]}),
            ),
            400,
            1000,
        );
        let ok = json!({"user": {"msisdn": "91234567", "country": "SG"}, "type": "text", "content": {"text": "hi"},
                        "channels": [{"channel": "WhatsApp", "fallbackAfter": 60, "successStatus": "Delivered"}, {"channel": "SMS"}]});
        assert_eq!(chat(ok).0, 200);
    }

    #[test]
    fn chat_apps_batch_rejects_unknown_templates_per_message() {
        let (status, body) = call(
            "chatapps.8x8.uk",
            &format!("{SUB}/batch"),
            json!({"clientBatchId": "wa-1", "includeMessagesInResponse": true,
            "template": {"type": "template", "content": {"template": {"name": "otp_code", "language": "en_US"}}},
            "messages": [
                {"user": {"msisdn": "+6512345678"}},
                {"user": {"msisdn": "+6512345679"}, "content": {"template": {"name": "gone", "language": "en_US"}}}
            ]}),
        );
        assert_eq!(status, 200);
        assert_eq!((body["acceptedCount"].as_u64(), body["rejectedCount"].as_u64()), (Some(1), Some(1)));
        let rejected = &body["messages"][1]["status"];
        assert_eq!(
            (rejected["state"].as_str(), rejected["errorCode"].as_u64()),
            (Some("rejected"), Some(3038))
        );
        let many: Vec<Value> = (0..1_001).map(|_| json!({"user": {"msisdn": "+6512345678"}})).collect();
        assert_error(call("chatapps.8x8.com", &format!("{SUB}/batch"), json!({"messages": many})), 400, 1100);
    }

    #[test]
    fn above_the_rate_a_429_with_retry_after() {
        let options = EightByEightOptions { rate_per_second: Some(2), ..EightByEightOptions::default() };
        let limiter = RateLimiter::default();
        let body = json!({"destination": "+6591234567", "text": "Hi"});
        let at = |millis: u64| {
            handle(
                &options,
                &limiter,
                "sms.8x8.com",
                millis,
                &Method::POST,
                SUB,
                &bearer("sandbox-8x8-key"),
                body.to_string().as_bytes(),
            )
        };
        assert_eq!(at(10_000).status.as_u16(), 200);
        assert_eq!(at(10_500).status.as_u16(), 200);
        let limited = at(10_900);
        assert_eq!(limited.status.as_u16(), 429);
        assert_eq!(limited.headers, [("retry-after", "1".to_string())]);
        let json: Value = serde_json::from_str(&limited.body).unwrap();
        assert_eq!(json, json!({"code": 429, "message": "Quota exceeded. Please try again in 1 second(s)."}));
        // A new second, a new window; another subaccount has its own.
        assert_eq!(at(11_000).status.as_u16(), 200);
        let other = handle(
            &options,
            &limiter,
            "sms.8x8.com",
            10_950,
            &Method::POST,
            "/api/v1/subaccounts/other/messages",
            &bearer("sandbox-8x8-key"),
            body.to_string().as_bytes(),
        );
        assert_eq!(other.status.as_u16(), 200);
    }

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let mut env = Recorder::default();
        let a = new_uuid(&mut env);
        let b = new_uuid(&mut env);
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_eq!(a.len(), 36);
        let dashes: Vec<usize> = a.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert!(b"89ab".contains(&a.as_bytes()[19]), "{a}");
    }

    #[test]
    fn a_client_message_id_is_deduplicated_per_product_and_subaccount_for_24_hours() {
        let limiter = RateLimiter::default();
        let mut world = Recorder::default();
        let body = json!({"destination": "+6591234567", "text": "Hi", "clientMessageId": "c1"}).to_string();
        let headers = bearer("sandbox-8x8-key");
        let mut account = limiter.0.borrow_mut();
        let account = account.get_or_insert_with(|| start(&EightByEightOptions::default(), "sms.8x8.com"));
        for path in [SUB, "/api/v1/subaccounts/acme-02/messages"] {
            let json = serde_json::from_str::<Value>(&body).unwrap();
            let request = Request {
                method: &Method::POST,
                path,
                headers: &headers,
                body: body.as_bytes(),
                json: Some(&json),
            };
            assert_eq!(account.answer(&request, &mut world).status, StatusCode::OK);
        }
        let keys: Vec<&Dedup> = world.accepted.iter().filter_map(|m| m.dedup.as_ref()).collect();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0].key, keys[1].key, "another subaccount, another key");
        assert_eq!(keys[0].window, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn receipts_go_to_the_dlr_callback_or_the_account_webhook_with_its_headers() {
        let limiter = RateLimiter::default();
        let mut world = Recorder::default();
        let headers = bearer("sandbox-8x8-key");
        let mut account = limiter.0.borrow_mut();
        let account = account.get_or_insert_with(|| start(&EightByEightOptions::default(), "sms.8x8.com"));
        let batch = json!({"clientBatchId": "b1", "template": {"text": "Hello"}, "messages": [
            {"destination": "+6591234567"},
            {"destination": "+6591234568", "dlrCallbackUrl": "http://127.0.0.1:9/own"}]});
        let body = batch.to_string();
        let request = Request {
            method: &Method::POST,
            path: &format!("{SUB}/batch"),
            headers: &headers,
            body: body.as_bytes(),
            json: Some(&batch),
        };
        assert_eq!(account.answer(&request, &mut world).status, StatusCode::OK);
        let messages: Vec<AcceptedMessage> = world.accepted.drain(..).collect();
        let statuses = ["sent".to_string(), "failed".to_string()];
        assert!(account.receipts(&messages[0], &statuses, None, &mut world).is_empty(), "nowhere to post");
        let secret = BTreeMap::from([("Authorization".to_string(), "Bearer s".to_string())]);
        let target = AccountWebhook { url: "http://127.0.0.1:9/account", headers: &secret };
        let posts = account.receipts(&messages[0], &statuses, Some(&target), &mut world);
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].url.as_deref(), Some("http://127.0.0.1:9/account"));
        assert!(posts[0].headers.contains(&("Authorization".to_string(), "Bearer s".to_string())));
        let payload = &posts[1].logged["payload"];
        assert_eq!(
            (payload["status"]["state"].as_str(), payload["status"]["errorCode"].as_u64()),
            (Some("rejected"), Some(6))
        );
        assert_eq!((payload["clientBatchId"].as_str(), payload["smsCount"].as_u64()), (Some("b1"), Some(1)));
        assert_eq!(payload["price"], json!({"total": 0.035, "perSms": 0.035, "currency": "EUR"}));
        let own = account.receipts(&messages[1], &statuses, Some(&target), &mut world);
        assert_eq!(own[0].url.as_deref(), Some("http://127.0.0.1:9/own"));
    }

    #[test]
    fn statuses_map_to_8x8_states_and_details() {
        let env = Recorder::default();
        let failed = status_of("failed", &env);
        assert_eq!((failed["state"].as_str(), failed["errorCode"].as_u64()), (Some("rejected"), Some(6)));
        let sent = status_of("sent", &env);
        assert_eq!(
            (sent["detail"].as_str(), sent["errorCode"].is_null()),
            (Some("delivered_to_operator"), true)
        );
        assert_eq!(price(3), json!({"total": 0.105, "perSms": 0.035, "currency": "EUR"}));
    }

    #[test]
    fn inbound_messages_name_the_first_subaccount_unless_told_another() {
        let options =
            EightByEightOptions { subaccounts: vec!["acme-01".into()], ..EightByEightOptions::default() };
        let mut account = start(&options, "chatapps.8x8.com");
        let message = Inbound { from: "+6591234567", to: "acme-wa", text: "hi", subaccount: None };
        let webhook = account.inbound(&message, None, &mut Recorder::default());
        assert_eq!((webhook.url, webhook.state.as_str()), (None, "received"));
        assert_eq!(webhook.logged["payload"]["subAccountId"], "acme-01");
        assert_eq!(webhook.logged["payload"]["user"]["channelUserId"], "6591234567");
        let told = Inbound { subaccount: Some("acme-02"), ..message };
        let webhook = account.inbound(&told, None, &mut Recorder::default());
        assert_eq!(webhook.logged["payload"]["subAccountId"], "acme-02");
    }

    #[test]
    fn faults_are_answered_in_8x8_s_words() {
        let account = start(&EightByEightOptions::default(), "sms.8x8.com");
        let error = account.fault(Fault::ServerError, &mut Recorder::default());
        let body: Value = serde_json::from_str(&error.body).unwrap();
        assert_eq!((error.status.as_u16(), body["code"].as_u64()), (500, Some(2000)));
        let many = account.fault(Fault::TooManyRequests { retry_after_secs: 7 }, &mut Recorder::default());
        assert!(many.headers.is_empty(), "the sandbox adds Retry-After");
        assert_eq!(
            serde_json::from_str::<Value>(&many.body).unwrap(),
            json!({"code": 429, "message": "Quota exceeded. Please try again in 7 second(s)."})
        );
    }
}
