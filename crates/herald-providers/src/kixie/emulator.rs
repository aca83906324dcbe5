//! Kixie in the sandbox: `POST /app/event` with the secrets in the body, failures as JSON envelopes
//! (sometimes under HTTP 200), and the webhook Kixie posts for each SMS sent or received, as
//! `reference/providers.md` describes.
//!
//! Checks run in this order: the path (404), the method (405), a JSON body (400), `businessid`, `apikey`
//! and `eventname` present (400), the account (401); then another `eventname` is `200 {"success":
//! false}`, `bizsms` needs `id` (400), `target` is required (400) and must be 7 to 15 digits (else a
//! failure inside a 200), `message` is required (400) and at most 1,600 characters.

use crate::emulator::{
    AcceptedMessage, AccountWebhook, Answer, Emulation, Emulator, Env, Fault, Inbound, Method, Request,
    StatusCode, Webhook, World, option_section, read_option,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The `businessid` and `apikey` the emulated account accepts (the options file's `kixie`).
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// The agent line named in Kixie's webhooks (the options file's `kixie_line`): `from`/`businessnumber`
/// when the request has no `fromNumber`, `userid`, and `email` when the request has none.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KixieLine {
    /// Default `+14155550123`.
    pub business_number: String,
    /// Default `1001`.
    pub userid: String,
    /// Default `agent@sandbox.test`.
    pub email: String,
}

impl Default for KixieLine {
    fn default() -> Self {
        KixieLine {
            business_number: "+14155550123".into(),
            userid: "1001".into(),
            email: "agent@sandbox.test".into(),
        }
    }
}

/// A valid number the emulated account refuses with `{"success": false}` inside a 200.
pub const BLOCKED_TARGET: &str = "+14155550199";

const MAX_MESSAGE_CHARS: usize = 1600;

pub(super) struct KixieEmulator;

impl Emulator for KixieEmulator {
    fn hosts(&self) -> &'static [&'static str] {
        &["apig.kixie.com"]
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["kixie", "kixie_line"]
    }

    fn options(&self, key: &str, given: Option<&Value>) -> Result<Value, String> {
        match key {
            "kixie" => option_section::<KixieOptions>(given),
            "kixie_line" => option_section::<KixieLine>(given),
            other => Err(format!("Kixie reads no option {other}")),
        }
    }

    fn start(&self, options: &Map<String, Value>) -> Box<dyn Emulation> {
        Box::new(KixieAccount {
            account: read_option(options, "kixie"),
            line: read_option(options, "kixie_line"),
        })
    }
}

struct KixieAccount {
    account: KixieOptions,
    line: KixieLine,
}

/// What Kixie's webhook for a sent SMS needs beyond the message itself.
struct Details {
    businessid: String,
    email: Option<String>,
    from_number: Option<String>,
}

fn failure(status: StatusCode, error: &str) -> Answer {
    Answer::json(status, json!({"success": false, "error": error}))
}

impl Emulation for KixieAccount {
    fn answer(&mut self, request: &Request<'_>, world: &mut dyn World) -> Answer {
        if request.path != "/app/event" {
            return Answer::text(StatusCode::NOT_FOUND, "Not Found");
        }
        if request.method != Method::POST {
            return failure(StatusCode::METHOD_NOT_ALLOWED, "Use POST for /app/event");
        }
        let Some(Value::Object(event)) = request.json else {
            return failure(StatusCode::BAD_REQUEST, "Malformed JSON body");
        };
        for field in ["businessid", "apikey", "eventname"] {
            if text(event, field).is_none() {
                return failure(StatusCode::BAD_REQUEST, &format!("Missing field: {field}"));
            }
        }
        if text(event, "businessid") != Some(self.account.businessid.as_str())
            || text(event, "apikey") != Some(self.account.apikey.as_str())
        {
            return failure(StatusCode::UNAUTHORIZED, "Invalid apikey or businessid");
        }
        let eventname = text(event, "eventname").unwrap_or_default();
        match eventname {
            "sms" | "bizsms" => send_sms(event, eventname, world),
            other => failure(StatusCode::OK, &format!("Unknown eventname: {other}")),
        }
    }

    /// Kixie reports no statuses: it posts one `outgoing` event per SMS an agent sent, to the account
    /// webhook only, and without the webhook's headers (Kixie sends none).
    fn receipts(
        &self,
        message: &AcceptedMessage,
        _statuses: &[String],
        account: Option<&AccountWebhook<'_>>,
        _env: &mut dyn Env,
    ) -> Vec<Webhook> {
        let (Some(account), Some(details)) = (account, message.details::<Details>()) else {
            return Vec::new();
        };
        let business = details.from_number.clone().unwrap_or_else(|| self.line.business_number.clone());
        let body = json!({"data": {
            "messageid": message.id,
            "from": business,
            "to": message.destination,
            "customernumber": message.destination,
            "businessnumber": business,
            "direction": "outgoing",
            "message": message.text,
            "businessid": details.businessid,
            "userid": self.line.userid,
            "email": details.email.clone().unwrap_or_else(|| self.line.email.clone()),
        }});
        vec![Webhook::json(Some(account.url.to_string()), Vec::new(), body).about("outgoing", &message.id)]
    }

    fn inbound(
        &mut self,
        message: &Inbound<'_>,
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Webhook {
        let id = new_message_id(env);
        let body = json!({"data": {
            "messageid": id,
            "from": message.from,
            "to": message.to,
            "customernumber": message.from,
            "businessnumber": message.to,
            "direction": "incoming",
            "message": message.text,
            "businessid": self.account.businessid,
            "userid": self.line.userid,
            "email": self.line.email,
        }});
        Webhook::json(account.map(|a| a.url.to_string()), Vec::new(), body).about("received", &id)
    }

    fn fault(&self, fault: Fault, _env: &mut dyn Env) -> Answer {
        match fault {
            Fault::ServerError => failure(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
            Fault::TooManyRequests { .. } => {
                failure(StatusCode::TOO_MANY_REQUESTS, "Too many requests: API call quota exceeded")
            }
        }
    }
}

fn send_sms(event: &Map<String, Value>, eventname: &str, world: &mut dyn World) -> Answer {
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
    let id = new_message_id(world);
    let id = world.accept(AcceptedMessage {
        id,
        client_message_id: None,
        destination: target.to_string(),
        source: text(event, "fromNumber").map(str::to_string),
        text: Some(message.to_string()),
        callback_url: None,
        dedup: None,
        details: Box::new(Details {
            businessid: text(event, "businessid").unwrap_or_default().to_string(),
            email: text(event, "email").map(str::to_string),
            from_number: text(event, "fromNumber").map(str::to_string),
        }),
    });
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

/// `kx` and 16 hex digits.
fn new_message_id(env: &mut dyn Env) -> String {
    format!("kx{:016x}", env.random() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::testing::{Recorder, answer};
    use std::collections::BTreeMap;

    fn account() -> Box<dyn Emulation> {
        KixieEmulator.start(&Map::new())
    }

    fn handle(method: Method, path: &str, body: &[u8]) -> Answer {
        answer(account().as_mut(), &mut Recorder::default(), method, path, &[], body)
    }

    fn call(body: Value) -> (u16, Value) {
        let answer = handle(Method::POST, "/app/event", body.to_string().as_bytes());
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
        let answer = handle(Method::POST, "/app/event", b"{not json");
        assert_eq!(answer.status.as_u16(), 400);
        assert_eq!(handle(Method::POST, "/other", b"{}").status.as_u16(), 404);
    }

    #[test]
    fn an_accepted_sms_is_handed_to_the_world_and_its_id_answered() {
        let mut world = Recorder::default();
        let mut account = account();
        let body = json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": "+14155550100",
                          "eventname": "sms", "message": "Hi", "fromNumber": "+14155550001"});
        let reply = answer(
            account.as_mut(),
            &mut world,
            Method::POST,
            "/app/event",
            &[],
            body.to_string().as_bytes(),
        );
        let reply: Value = serde_json::from_str(&reply.body).unwrap();
        let id = reply["data"]["messageid"].as_str().unwrap();
        assert!(id.starts_with("kx") && id.len() == 18, "{id}");
        assert_eq!(world.accepted.len(), 1);
        let message = &world.accepted[0];
        assert_eq!(
            (message.id.as_str(), message.source.as_deref(), message.dedup.is_none()),
            (id, Some("+14155550001"), true)
        );
    }

    #[test]
    fn its_webhook_for_a_sent_sms_goes_to_the_account_webhook_without_headers() {
        let mut world = Recorder::default();
        let mut account = account();
        let body = event("+14155550100");
        answer(account.as_mut(), &mut world, Method::POST, "/app/event", &[], body.to_string().as_bytes());
        let message = &world.accepted.remove(0);
        let statuses = ["sent".to_string(), "delivered".to_string()];
        assert!(account.receipts(message, &statuses, None, &mut world).is_empty(), "nowhere to post");
        let headers = BTreeMap::from([("Authorization".to_string(), "Bearer s".to_string())]);
        let target = AccountWebhook { url: "http://127.0.0.1:9/k", headers: &headers };
        let posts = account.receipts(message, &statuses, Some(&target), &mut world);
        assert_eq!(posts.len(), 1, "one event, whatever the statuses");
        assert_eq!(posts[0].url.as_deref(), Some("http://127.0.0.1:9/k"));
        assert_eq!(posts[0].headers, [("Content-Type".to_string(), "application/json".to_string())]);
        assert_eq!(posts[0].state, "outgoing");
        let data = &posts[0].logged["data"];
        assert_eq!(
            (data["direction"].as_str(), data["businessnumber"].as_str(), data["userid"].as_str()),
            (Some("outgoing"), Some("+14155550123"), Some("1001"))
        );
    }

    #[test]
    fn faults_are_answered_in_kixie_s_envelope() {
        let account = account();
        let error = account.fault(Fault::ServerError, &mut Recorder::default());
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.body, json!({"success": false, "error": "Internal server error"}).to_string());
        let many = account.fault(Fault::TooManyRequests { retry_after_secs: 3 }, &mut Recorder::default());
        assert_eq!(many.status, StatusCode::TOO_MANY_REQUESTS);
    }
}
