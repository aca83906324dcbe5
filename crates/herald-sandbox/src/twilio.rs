//! Twilio's Programmable Messaging `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: form-encoded,
//! HTTP Basic `AccountSid:AuthToken`, errors as `{code, message, more_info, status}`.
//!
//! Checks run in Twilio's order: credentials (401, 20003), rate (429, 20429), then the message: To
//! (21604), From or MessagingServiceSid (21603), Body (21602, 21617 over 1600 characters), To's format
//! (21211), landline (21614), opted-out recipient (21610).

use crate::Answer;
use crate::registry::{Intake, NewMessage, Origin};
use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

pub const TWILIO_HOST: &str = "api.twilio.com";
pub const API_VERSION: &str = "2010-04-01";
const MAX_BODY_CHARS: usize = 1600;

/// What the emulated Twilio accepts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioOptions {
    /// `(AccountSid, AuthToken)` pairs. Default one account: `AC00000000000000000000000000000001` with
    /// token `sandbox-twilio-token`.
    pub accounts: Vec<(String, String)>,
    /// Numbers Twilio knows as landlines: sending to them is 21614. Default `["+14155550999"]`.
    pub landline_numbers: Vec<String>,
    /// Requests per second per account above which the answer is 429 (20429); `None` never limits.
    pub rate_per_second: Option<u32>,
}

pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const DEFAULT_AUTH_TOKEN: &str = "sandbox-twilio-token";

impl Default for TwilioOptions {
    fn default() -> Self {
        TwilioOptions {
            accounts: vec![(DEFAULT_ACCOUNT_SID.into(), DEFAULT_AUTH_TOKEN.into())],
            landline_numbers: vec!["+14155550999".into()],
            rate_per_second: None,
        }
    }
}

impl TwilioOptions {
    pub(crate) fn token_of(&self, sid: &str) -> Option<&str> {
        self.accounts.iter().find(|(s, _)| s == sid).map(|(_, t)| t.as_str())
    }
}

/// Recipients who texted a STOP word to a sender, as `(sender, recipient)`: Twilio refuses further
/// messages between them (21610) until START.
#[derive(Default)]
pub(crate) struct OptOuts {
    pairs: Mutex<HashSet<(String, String)>>,
}

impl OptOuts {
    pub fn set(&self, sender: &str, phone: &str, opted_out: bool) {
        if let Ok(mut pairs) = self.pairs.lock() {
            let key = (sender.to_string(), phone.to_string());
            if opted_out {
                pairs.insert(key);
            } else {
                pairs.remove(&key);
            }
        }
    }

    pub fn contains(&self, sender: &str, phone: &str) -> bool {
        self.pairs.lock().is_ok_and(|p| p.contains(&(sender.to_string(), phone.to_string())))
    }

    pub fn list(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> = self.pairs.lock().map(|p| p.iter().cloned().collect()).unwrap_or_default();
        list.sort();
        list
    }

    pub fn clear(&self) {
        if let Ok(mut pairs) = self.pairs.lock() {
            pairs.clear();
        }
    }
}

/// Requests counted per account in fixed one-second windows.
#[derive(Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateLimiter {
    fn admit(&self, account: &str, now_millis: u64, limit: u32) -> bool {
        let second = now_millis / 1000;
        let Ok(mut windows) = self.windows.lock() else { return true };
        let window = windows.entry(account.to_string()).or_insert((second, 0));
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

pub(crate) fn error(status: StatusCode, code: u32, message: String) -> Answer {
    Answer::json(
        status,
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    )
}

/// `application/x-www-form-urlencoded` pairs, in order; undecodable bytes become U+FFFD.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The form as a JSON object; a repeated name becomes a list.
pub(crate) fn form_as_json(pairs: &[(String, String)]) -> Value {
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

/// `X-Twilio-Signature`: Base64(HMAC-SHA1(auth token, URL + each parameter's name and value, sorted by
/// name)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        // HMAC takes a key of any length; this branch is unreachable.
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `^\+[1-9][0-9]{6,14}$`
pub(crate) fn valid_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        digits.starts_with(|c: char| ('1'..='9').contains(&c))
            && (7..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
    })
}

/// `SM` and 32 hex digits.
pub(crate) fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// Twilio's dates: RFC 2822 with a two-digit day.
pub(crate) fn rfc2822(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (sid, token) = decoded.split_once(':')?;
    Some((sid.to_string(), token.to_string()))
}

pub(crate) struct Request<'a> {
    pub options: &'a TwilioOptions,
    pub limiter: &'a RateLimiter,
    pub opt_outs: &'a OptOuts,
    pub now: DateTime<Utc>,
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub(crate) fn handle(request: Request<'_>, intake: &mut dyn Intake) -> Answer {
    let Request { options, limiter, opt_outs, now, method, path, headers, body } = request;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let ["", API_VERSION, "Accounts", path_sid, "Messages.json"] = segments.as_slice() else {
        return error(StatusCode::NOT_FOUND, 20404, format!("The requested resource {path} was not found"));
    };
    let authorized = basic_credentials(headers).is_some_and(|(sid, token)| {
        sid == *path_sid && options.token_of(&sid).is_some_and(|expected| expected == token)
    });
    if !authorized {
        let mut answer = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate".into());
        answer.headers.push(("www-authenticate", "Basic realm=\"Twilio API\"".into()));
        return answer;
    }
    let account_sid = path_sid.to_string();
    if method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, 20004, format!("Method {method} not allowed"));
    }
    if let Some(limit) = options.rate_per_second
        && !limiter.admit(&account_sid, u64::try_from(now.timestamp_millis()).unwrap_or(0), limit)
    {
        let mut answer = error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests".into());
        answer.headers.push(("retry-after", "1".into()));
        return answer;
    }
    let form = parse_form(body);
    let field = |name: &str| {
        form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    };
    let bad = |code: u32, message: String| error(StatusCode::BAD_REQUEST, code, message);
    let Some(to) = field("To") else {
        return bad(21604, "A 'To' phone number is required.".into());
    };
    let from = field("From");
    let service = field("MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return bad(21603, "A 'From' phone number is required.".into());
    }
    let Some(text) = field("Body") else {
        return bad(21602, "Message body is required.".into());
    };
    if text.chars().count() > MAX_BODY_CHARS {
        return bad(21617, "The concatenated message body exceeds the 1600 character limit.".into());
    }
    if !valid_e164(to) {
        return bad(21211, format!("The 'To' number {to} is not a valid phone number."));
    }
    if options.landline_numbers.iter().any(|n| n == to) {
        return bad(21614, format!("'To' number {to} is not a valid mobile number"));
    }
    let sender = from.or(service).unwrap_or_default();
    if opt_outs.contains(sender, to) {
        return bad(21610, "Attempt to send to unsubscribed recipient".into());
    }
    let auth_token = options.token_of(&account_sid).unwrap_or_default().to_string();
    let sid = intake.accept(
        None,
        NewMessage {
            id: new_sid("SM"),
            client_message_id: None,
            destination: to.to_string(),
            source: Some(sender.to_string()),
            text: Some(text.to_string()),
            origin: Origin::Twilio {
                account_sid: account_sid.clone(),
                auth_token,
                status_callback: field("StatusCallback").map(str::to_string),
                from: from.map(str::to_string),
                messaging_service_sid: service.map(str::to_string),
            },
        },
    );
    let date = rfc2822(now);
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json");
    Answer::json(
        StatusCode::CREATED,
        json!({
            "sid": sid,
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "to": to,
            "from": from,
            "messaging_service_sid": service,
            "body": text,
            "status": "queued",
            "num_segments": herald_sms::inspect(text).segments.to_string(),
            "num_media": "0",
            "direction": "outbound-api",
            "price": null,
            "price_unit": "USD",
            "date_created": date,
            "date_updated": date,
            "date_sent": null,
            "uri": uri,
            "error_code": null,
            "error_message": null,
            "subresource_uris": {"media": format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json")},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_signature_vector() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .rev()
        .collect();
        assert_eq!(
            twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn e164_and_sids() {
        assert!(valid_e164("+14155550100"));
        for bad in ["14155550100", "+04155550100", "+123456", "+1234567890123456", "+1415555010a", "+"] {
            assert!(!valid_e164(bad), "{bad}");
        }
        let sid = new_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn forms_become_json_objects_with_lists_for_repeats() {
        let pairs = parse_form(b"To=%2B1415&Body=a+b&MediaUrl=x&MediaUrl=y&MediaUrl=z&bad=%ZZ");
        assert_eq!(
            form_as_json(&pairs),
            json!({"To": "+1415", "Body": "a b", "MediaUrl": ["x", "y", "z"], "bad": "%ZZ"})
        );
    }

    #[test]
    fn dates_are_rfc_2822() {
        let at = DateTime::parse_from_rfc3339("2024-03-05T07:08:09Z").unwrap().with_timezone(&Utc);
        assert_eq!(rfc2822(at), "Tue, 05 Mar 2024 07:08:09 +0000");
    }
}
