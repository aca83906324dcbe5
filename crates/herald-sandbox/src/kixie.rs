//! Kixie's `POST /app/event`: secrets in the body, failures as JSON envelopes (sometimes with HTTP 200),
//! as `reference/providers.md` describes.

use crate::Answer;
use crate::registry::{Intake, NewMessage, Origin};
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// The `businessid` and `apikey` the emulated account accepts.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KixieOptions {
    pub businessid: String,
    pub apikey: String,
}

impl Default for KixieOptions {
    fn default() -> Self {
        KixieOptions { businessid: "sandbox-business".into(), apikey: "sandbox-apikey".into() }
    }
}

const MAX_MESSAGE_CHARS: usize = 1600;

/// A valid number the emulated account refuses with `{"success": false}` inside a 200.
pub const BLOCKED_TARGET: &str = "+14155550199";

fn failure(status: StatusCode, error: &str) -> Answer {
    Answer::json(status, json!({"success": false, "error": error}))
}

#[cfg(test)]
pub(crate) fn handle(options: &KixieOptions, method: &Method, path: &str, body: &[u8]) -> Answer {
    handle_with(options, method, path, body, &mut crate::registry::Discard)
}

pub(crate) fn handle_with(
    options: &KixieOptions,
    method: &Method,
    path: &str,
    body: &[u8],
    intake: &mut dyn Intake,
) -> Answer {
    if path != "/app/event" {
        return Answer::text(StatusCode::NOT_FOUND, "Not Found");
    }
    if method != Method::POST {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "Use POST for /app/event");
    }
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(body) else {
        return failure(StatusCode::BAD_REQUEST, "Malformed JSON body");
    };
    for field in ["businessid", "apikey", "eventname"] {
        if text(&event, field).is_none() {
            return failure(StatusCode::BAD_REQUEST, &format!("Missing field: {field}"));
        }
    }
    if text(&event, "businessid") != Some(options.businessid.as_str())
        || text(&event, "apikey") != Some(options.apikey.as_str())
    {
        return failure(StatusCode::UNAUTHORIZED, "Invalid apikey or businessid");
    }
    let eventname = text(&event, "eventname").unwrap_or_default();
    match eventname {
        "sms" | "bizsms" => send_sms(&event, eventname, intake),
        other => failure(StatusCode::OK, &format!("Unknown eventname: {other}")),
    }
}

fn send_sms(event: &Map<String, Value>, eventname: &str, intake: &mut dyn Intake) -> Answer {
    if eventname == "bizsms" && text(event, "id").is_none() {
        return failure(StatusCode::BAD_REQUEST, "Missing field: id");
    }
    let Some(target) = text(event, "target") else {
        return failure(StatusCode::BAD_REQUEST, "Missing field: target");
    };
    let Some(digits) = phone_digits(target) else {
        return failure(StatusCode::OK, &format!("Invalid target phone number: {target}"));
    };
    let Some(message) = text(event, "message") else {
        return failure(StatusCode::BAD_REQUEST, "Missing field: message");
    };
    if digits == BLOCKED_TARGET.trim_start_matches('+') {
        return failure(StatusCode::OK, &format!("Target {target} is on the account's do-not-text list"));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return failure(StatusCode::OK, &format!("Message longer than {MAX_MESSAGE_CHARS} characters"));
    }
    // Kixie has no idempotency key: every accepted request is a new message.
    let id = intake.accept(
        None,
        NewMessage {
            id: new_message_id(message, &digits),
            client_message_id: None,
            destination: target.to_string(),
            source: text(event, "fromNumber").map(str::to_string),
            text: Some(message.to_string()),
            origin: Origin::Kixie {
                businessid: text(event, "businessid").unwrap_or_default().to_string(),
                email: text(event, "email").map(str::to_string),
                from_number: text(event, "fromNumber").map(str::to_string),
            },
        },
    );
    Answer::json(
        StatusCode::OK,
        json!({"success": true, "message": "SMS queued", "data": {"messageid": id, "target": target}}),
    )
}

fn text<'a>(event: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    event.get(field).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The digits of a dialable number (7 to 15 of them, an optional leading `+`, common separators).
fn phone_digits(target: &str) -> Option<String> {
    let trimmed = target.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if !rest.chars().all(|c| c.is_ascii_digit() || " -().".contains(c)) {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (7..=15).contains(&digits.len()).then_some(digits)
}

pub(crate) fn new_message_id(message: &str, phone: &str) -> String {
    format!("kx{:016x}", fnv(message.as_bytes()) ^ fnv(phone.as_bytes()) ^ now_nanos())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: Value) -> (u16, Value) {
        let answer =
            handle(&KixieOptions::default(), &Method::POST, "/app/event", body.to_string().as_bytes());
        (answer.status.as_u16(), serde_json::from_str(&answer.body).unwrap())
    }

    fn event(target: &str) -> Value {
        json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": target, "eventname": "sms", "message": "Hi"})
    }

    #[test]
    fn accepts_a_valid_sms() {
        let (status, body) = call(event("+14155550100"));
        assert_eq!(status, 200);
        assert_eq!(body["success"], true);
    }

    #[test]
    fn refuses_wrong_credentials_with_401() {
        let mut bad = event("+14155550100");
        bad["apikey"] = json!("nope");
        let (status, body) = call(bad);
        assert_eq!((status, body["success"].clone()), (401, json!(false)));
    }

    #[test]
    fn an_invalid_target_fails_inside_a_200() {
        let (status, body) = call(event("12"));
        assert_eq!(status, 200);
        assert_eq!(body["success"], false);
        assert!(body["error"].as_str().unwrap().contains("Invalid target"));
    }

    #[test]
    fn missing_fields_and_bad_json_are_400() {
        let mut missing = event("+14155550100");
        missing.as_object_mut().unwrap().remove("message");
        assert_eq!(call(missing).0, 400);
        let answer = handle(&KixieOptions::default(), &Method::POST, "/app/event", b"{not json");
        assert_eq!(answer.status.as_u16(), 400);
        assert_eq!(handle(&KixieOptions::default(), &Method::POST, "/other", b"{}").status.as_u16(), 404);
    }
}
