//! 8x8 SMS and Chat Apps (WhatsApp, Viber, RCS, ...) as 8x8's documentation and official specs (copies
//! in `crates/herald-openapi/tests/fixtures/specs/8x8/`) describe them, on all four regions' hosts:
//! `POST /api/v1/subaccounts/{subAccountId}/messages` (single) and `.../messages/batch`.
//!
//! Checks run in this order: Bearer key (401, code 1200), subaccount (400 code 1001 when malformed,
//! 403 code 1201 when not this account's), rate (429 with `Retry-After`), JSON body (400 code 1000),
//! then the message itself. A single message that fails validation is a 400 with
//! `{code, message, errorId, timestamp}`; in a batch it is a `REJECTED` / `rejected` entry instead.

use crate::Answer;
use crate::registry::{Batch, Intake, NewMessage, Origin};
use axum::http::{HeaderMap, Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A valid number the emulated operator rejects (`REJECTED` inside a 200).
pub const BLOCKED_DESTINATION: &str = "+6589999999";

/// What the emulated 8x8 account accepts.
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

/// Which 8x8 product a host serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Product {
    Sms,
    ChatApps,
}

pub(crate) fn product_for_host(host: &str) -> Option<Product> {
    match host {
        "sms.8x8.com" | "sms.us.8x8.com" | "sms.8x8.uk" | "sms.8x8.id" => Some(Product::Sms),
        "chatapps.8x8.com" | "chatapps.us.8x8.com" | "chatapps.8x8.uk" | "chatapps.8x8.id" => {
            Some(Product::ChatApps)
        }
        _ => None,
    }
}

/// Requests counted per (product, subaccount) in fixed one-second windows.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<(Product, String), (u64, u32)>>,
}

impl RateLimiter {
    /// `Err(seconds to wait)` when this request is over `limit` in the current second.
    fn admit(&self, key: (Product, String), now_millis: u64, limit: u32) -> Result<(), u64> {
        let second = now_millis / 1000;
        let Ok(mut windows) = self.windows.lock() else { return Ok(()) };
        let window = windows.entry(key).or_insert((second, 0));
        if window.0 != second {
            *window = (second, 0);
        }
        if window.1 >= limit {
            return Err(1);
        }
        window.1 += 1;
        Ok(())
    }
}

const SUBACCOUNT_MAX: usize = 50;
const SMS_BATCH_MAX: usize = 10_000;
const CHAT_BATCH_MAX: usize = 1_000;
const SMS_MAX_PARTS: u32 = 10;
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

/// One request's view of the message registry.
struct Ctx<'a> {
    intake: &'a mut dyn Intake,
    product: Product,
    subaccount: &'a str,
    batch: Option<Batch>,
}

impl Ctx<'_> {
    /// The umid to answer with: a new one, or the first submission's when 8x8 deduplicates the
    /// clientMessageId (same subaccount and product, within 24 hours).
    fn accept(&mut self, message: NewMessage) -> String {
        let key = message
            .client_message_id
            .as_ref()
            .map(|id| format!("{:?}\u{0}{}\u{0}{id}", self.product, self.subaccount));
        self.intake.accept(key, message)
    }
}

#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn handle(
    options: &EightByEightOptions,
    limiter: &RateLimiter,
    host: &str,
    now_millis: u64,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let mut discard = crate::registry::Discard;
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    handle_with(options, limiter, host, now_millis, method, path, headers, &body, &mut discard)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn handle_with(
    options: &EightByEightOptions,
    limiter: &RateLimiter,
    host: &str,
    now_millis: u64,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    intake: &mut dyn Intake,
) -> Answer {
    let Some(product) = product_for_host(host) else {
        return error(StatusCode::NOT_FOUND, 1300, "Resource not found");
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (subaccount, batch) = match segments.as_slice() {
        ["", "api", "v1", "subaccounts", id, "messages"] => (*id, false),
        ["", "api", "v1", "subaccounts", id, "messages", "batch"] => (*id, true),
        _ => return error(StatusCode::NOT_FOUND, 1300, &format!("Resource not found: {path}")),
    };
    if !authorized(options, headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            1200,
            "Unauthorized: missing or invalid API key (Authorization: Bearer <apiKey>)",
        );
    }
    if method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            1000,
            &format!("Method {method} is not allowed on {path}; use POST"),
        );
    }
    if !valid_subaccount(subaccount) {
        return error(StatusCode::BAD_REQUEST, 1001, &format!("Illegal subAccountId: {subaccount}"));
    }
    if !options.subaccounts.is_empty() && !options.subaccounts.iter().any(|s| s == subaccount) {
        return error(
            StatusCode::FORBIDDEN,
            1201,
            &format!("Forbidden: subaccount {subaccount} is not accessible with this API key"),
        );
    }
    if let Some(limit) = options.rate_per_second
        && let Err(wait) = limiter.admit((product, subaccount.to_string()), now_millis, limit)
    {
        let mut answer = Answer::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"code": 429, "message": format!("Quota exceeded. Please try again in {wait} second(s).")}),
        );
        answer.headers.push(("retry-after", wait.to_string()));
        return answer;
    }
    // Parsed once by the caller, which also records it.
    let Value::Object(request) = body else {
        return error(StatusCode::BAD_REQUEST, 1000, "Invalid request body: expected a JSON object");
    };
    let mut ctx = Ctx { intake, product, subaccount, batch: None };
    match (product, batch) {
        (Product::Sms, false) => sms_single(request, &mut ctx),
        (Product::Sms, true) => sms_batch(request, &mut ctx),
        (Product::ChatApps, false) => chat_single(options, request, &mut ctx),
        (Product::ChatApps, true) => chat_batch(options, request, &mut ctx),
    }
}

fn authorized(options: &EightByEightOptions, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else { return false };
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let key = parts.next().unwrap_or("").trim();
    scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() && key == options.api_key
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

pub(crate) fn error(status: StatusCode, code: u32, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"code": code, "message": message, "errorId": new_uuid(), "timestamp": now_text()}),
    )
}

fn refusal_answer(refusal: Refusal) -> Answer {
    error(StatusCode::BAD_REQUEST, refusal.code, &refusal.message)
}

static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// A random-looking version-4 UUID (no dependency on a UUID crate).
pub(crate) fn new_uuid() -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let high = mix(n ^ nanos.rotate_left(17));
    let low = mix(high ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
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

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
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
    let batch_id = new_uuid();
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
        entry.then(new_uuid)
    } else {
        Some(ctx.accept(NewMessage {
            id: new_uuid(),
            client_message_id,
            destination,
            source,
            text: Some(text),
            origin: Origin::EightByEightSms {
                subaccount: ctx.subaccount.to_string(),
                batch: ctx.batch.clone(),
                dlr_callback_url,
                sms_count: parts,
            },
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
        Err(refusal) => refusal_answer(refusal),
    }
}

fn sms_batch(request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match sms_batch_inner(request, ctx) {
        Ok(answer) => answer,
        Err(refusal) => refusal_answer(refusal),
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
                        "umid": new_uuid(),
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
    let umid = ctx.accept(NewMessage {
        id: new_uuid(),
        client_message_id: client_message_id.map(str::to_string),
        destination: msisdn
            .or(text(user, "channelUserId")?)
            .or(text(user, "lineUserId")?)
            .unwrap_or_default()
            .to_string(),
        source: None,
        text: text(content, "text")?.or(text(content, "fallbackText")?).map(str::to_string),
        origin: Origin::ChatApps {
            subaccount: ctx.subaccount.to_string(),
            batch: ctx.batch.clone(),
            dlr_callback_url: text(message, "dlrCallbackUrl")?.map(str::to_string),
            user: Value::Object(user.clone()),
            channel: channel.to_string(),
        },
    });
    Ok(json!({
        "umid": umid,
        "user": Value::Object(user.clone()),
        "clientMessageId": client_message_id,
        "status": {"state": "queued", "timestamp": now_text()},
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
        Err(refusal) => refusal_answer(refusal),
    }
}

fn chat_batch(options: &EightByEightOptions, request: &Map<String, Value>, ctx: &mut Ctx) -> Answer {
    match chat_batch_inner(options, request, ctx) {
        Ok(answer) => answer,
        Err(refusal) => refusal_answer(refusal),
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
                "umid": new_uuid(),
                "user": merged.get("user"),
                "clientMessageId": merged.get("clientMessageId"),
                "status": {"state": "rejected", "timestamp": now_text(), "errorCode": refusal.code, "errorMessage": refusal.message},
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
    use axum::http::HeaderValue;

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
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_eq!(a.len(), 36);
        let dashes: Vec<usize> = a.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert!(b"89ab".contains(&a.as_bytes()[19]), "{a}");
    }
}
