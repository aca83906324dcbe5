//! Twilio in the sandbox: Programmable Messaging's `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded, HTTP Basic `AccountSid:AuthToken`, errors as `{code, message, more_info, status}`; its
//! status callbacks and inbound messages as signed form posts; STOP and START replies kept as opt-outs.
//!
//! Checks run in Twilio's order: the path (404, 20404), the credentials (401, 20003), the method (405,
//! 20004), the rate (429, 20429), then the message: To (21604), From or MessagingServiceSid (21603),
//! Body (21602, 21617 over 1600 characters), To's format (21211), landline (21614), opted-out recipient
//! (21610).

use super::signature;
use crate::emulator::{
    AcceptedMessage, AccountWebhook, Answer, Emulation, Emulator, Env, Fault, Inbound, Method, RateWindows,
    Request, StatusCode, Webhook, World, form_as_json, form_fields, option_section, read_option,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

pub const API_VERSION: &str = "2010-04-01";
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const DEFAULT_AUTH_TOKEN: &str = "sandbox-twilio-token";
const MAX_BODY_CHARS: usize = 1600;

/// What the emulated Twilio accepts (the options file's `twilio`).
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
    fn token_of(&self, sid: &str) -> Option<&str> {
        self.accounts.iter().find(|(s, _)| s == sid).map(|(_, t)| t.as_str())
    }
}

pub(super) struct TwilioEmulator;

impl Emulator for TwilioEmulator {
    fn hosts(&self) -> &'static [&'static str] {
        &["api.twilio.com"]
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["twilio"]
    }

    fn options(&self, key: &str, given: Option<&Value>) -> Result<Value, String> {
        match key {
            "twilio" => option_section::<TwilioOptions>(given),
            other => Err(format!("Twilio reads no option {other}")),
        }
    }

    fn start(&self, options: &Map<String, Value>) -> Box<dyn Emulation> {
        Box::new(TwilioAccount {
            options: read_option(options, "twilio"),
            windows: RateWindows::default(),
            opt_outs: HashSet::new(),
        })
    }
}

struct TwilioAccount {
    options: TwilioOptions,
    /// Requests counted per account.
    windows: RateWindows,
    /// Recipients who texted a STOP word to a sender, as `(sender, recipient)`: Twilio refuses further
    /// messages between them (21610) until START.
    opt_outs: HashSet<(String, String)>,
}

/// What a message's status callbacks need beyond the message itself.
struct Details {
    account_sid: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
}

impl Emulation for TwilioAccount {
    fn answer(&mut self, request: &Request<'_>, world: &mut dyn World) -> Answer {
        let path = request.path;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let ["", API_VERSION, "Accounts", path_sid, "Messages.json"] = segments.as_slice() else {
            return error(
                StatusCode::NOT_FOUND,
                20404,
                format!("The requested resource {path} was not found"),
            );
        };
        let authorized = basic_credentials(request).is_some_and(|(sid, token)| {
            sid == *path_sid && self.options.token_of(&sid).is_some_and(|expected| expected == token)
        });
        if !authorized {
            return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate".into())
                .with_header("www-authenticate", "Basic realm=\"Twilio API\"");
        }
        let account_sid = path_sid.to_string();
        if request.method != Method::POST {
            let method = request.method;
            return error(StatusCode::METHOD_NOT_ALLOWED, 20004, format!("Method {method} not allowed"));
        }
        let now = world.now();
        if let Some(limit) = self.options.rate_per_second
            && !self.windows.admit(&account_sid, now, limit)
        {
            return error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests".into())
                .with_header("retry-after", "1");
        }
        let form = form_fields(request.body);
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
        if self.options.landline_numbers.iter().any(|n| n == to) {
            return bad(21614, format!("'To' number {to} is not a valid mobile number"));
        }
        let sender = from.or(service).unwrap_or_default();
        if self.opt_outs.contains(&(sender.to_string(), to.to_string())) {
            return bad(21610, "Attempt to send to unsubscribed recipient".into());
        }
        let id = new_sid(world);
        let sid = world.accept(AcceptedMessage {
            id,
            client_message_id: None,
            destination: to.to_string(),
            source: Some(sender.to_string()),
            text: Some(text.to_string()),
            callback_url: field("StatusCallback").map(str::to_string),
            // Twilio has no idempotency key: every accepted request is a new message.
            dedup: None,
            details: Box::new(Details {
                account_sid: account_sid.clone(),
                from: from.map(str::to_string),
                messaging_service_sid: service.map(str::to_string),
            }),
        });
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

    /// A signed form post per status, to the message's `StatusCallback` only (Twilio has no account
    /// webhook for statuses). `rejected` is sent as `failed`; `undelivered` carries error 30003,
    /// `failed` 30008.
    fn receipts(
        &self,
        message: &AcceptedMessage,
        statuses: &[String],
        _account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Vec<Webhook> {
        let (Some(url), Some(details)) = (&message.callback_url, message.details::<Details>()) else {
            return Vec::new();
        };
        let token = self.options.token_of(&details.account_sid).unwrap_or_default();
        statuses
            .iter()
            .map(|status| {
                let twilio_status = match status.as_str() {
                    "rejected" => "failed",
                    other => other,
                };
                let mut params = vec![
                    ("SmsSid".to_string(), message.id.clone()),
                    ("SmsStatus".to_string(), twilio_status.to_string()),
                    ("MessageStatus".to_string(), twilio_status.to_string()),
                    ("To".to_string(), message.destination.clone()),
                    ("MessageSid".to_string(), message.id.clone()),
                    ("AccountSid".to_string(), details.account_sid.clone()),
                    ("From".to_string(), details.from.clone().unwrap_or_default()),
                    ("ApiVersion".to_string(), API_VERSION.to_string()),
                ];
                if let Some(service) = &details.messaging_service_sid {
                    params.push(("MessagingServiceSid".into(), service.clone()));
                }
                match twilio_status {
                    "undelivered" => params.push(("ErrorCode".into(), "30003".into())),
                    "failed" => params.push(("ErrorCode".into(), "30008".into())),
                    _ => {}
                }
                signed_post(Some(url.clone()), token, params, env).about(status, &message.id)
            })
            .collect()
    }

    /// A STOP word records an opt-out of `from` from the sender `to`, a START word lifts it; the post is
    /// signed with the first account's token.
    fn inbound(
        &mut self,
        message: &Inbound<'_>,
        account: Option<&AccountWebhook<'_>>,
        env: &mut dyn Env,
    ) -> Webhook {
        let pair = (message.to.to_string(), message.from.to_string());
        match herald_sms::classify_keyword(message.text) {
            Some(herald_sms::Keyword::OptOut) => {
                self.opt_outs.insert(pair);
            }
            Some(herald_sms::Keyword::OptIn) => {
                self.opt_outs.remove(&pair);
            }
            _ => {}
        }
        let (account_sid, token) = self.options.accounts.first().cloned().unwrap_or_default();
        let sid = new_sid(env);
        let segments = herald_sms::inspect(message.text).segments.to_string();
        let params: Vec<(String, String)> = [
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("SmsSid", &sid),
            ("SmsStatus", "received"),
            ("Body", message.text),
            ("To", message.to),
            ("NumSegments", &segments),
            ("MessageSid", &sid),
            ("AccountSid", &account_sid),
            ("From", message.from),
            ("ApiVersion", API_VERSION),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        signed_post(account.map(|a| a.url.to_string()), &token, params, env).about("received", &sid)
    }

    fn fault(&self, fault: Fault, _env: &mut dyn Env) -> Answer {
        match fault {
            Fault::ServerError => {
                error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal Server Error".to_string())
            }
            Fault::TooManyRequests { .. } => {
                error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests".to_string())
            }
        }
    }

    fn opt_outs(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> = self.opt_outs.iter().cloned().collect();
        list.sort();
        list
    }

    fn clear_opt_outs(&mut self) {
        self.opt_outs.clear();
    }
}

fn error(status: StatusCode, code: u32, message: String) -> Answer {
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

/// A form post signed as Twilio signs its webhooks.
fn signed_post(
    url: Option<String>,
    auth_token: &str,
    params: Vec<(String, String)>,
    env: &mut dyn Env,
) -> Webhook {
    let signed = signature(auth_token, url.as_deref().unwrap_or_default(), &params);
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    Webhook {
        url,
        headers: vec![
            ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
            ("X-Twilio-Signature".into(), signed),
            ("I-Twilio-Idempotency-Token".into(), format!("{:032x}", env.random())),
            ("User-Agent".into(), "TwilioProxy/1.1".into()),
        ],
        body: body.into_bytes(),
        logged: form_as_json(&params),
        state: String::new(),
        message_id: String::new(),
    }
}

/// `^\+[1-9][0-9]{6,14}$`
fn valid_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        digits.starts_with(|c: char| ('1'..='9').contains(&c))
            && (7..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
    })
}

/// `SM` and 32 hex digits.
fn new_sid(env: &mut dyn Env) -> String {
    format!("SM{:032x}", env.random())
}

/// Twilio's dates: RFC 2822 with a two-digit day.
fn rfc2822(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

fn basic_credentials(request: &Request<'_>) -> Option<(String, String)> {
    let value = request.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (sid, token) = decoded.split_once(':')?;
    Some((sid.to_string(), token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::testing::{Recorder, answer};
    use crate::twilio::verify_signature;

    fn basic(sid: &str, token: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}")))
    }

    fn send(account: &mut dyn Emulation, world: &mut Recorder, form: &str) -> (u16, Value) {
        let path = format!("/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json");
        let auth = basic(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN);
        let reply = answer(account, world, Method::POST, &path, &[("authorization", &auth)], form.as_bytes());
        (reply.status.as_u16(), serde_json::from_str(&reply.body).unwrap())
    }

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
            signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn e164_and_sids() {
        assert!(valid_e164("+14155550100"));
        for bad in ["14155550100", "+04155550100", "+123456", "+1234567890123456", "+1415555010a", "+"] {
            assert!(!valid_e164(bad), "{bad}");
        }
        let sid = new_sid(&mut Recorder::default());
        assert_eq!(sid.len(), 34);
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn dates_are_rfc_2822() {
        let at = DateTime::parse_from_rfc3339("2024-03-05T07:08:09Z").unwrap().with_timezone(&Utc);
        assert_eq!(rfc2822(at), "Tue, 05 Mar 2024 07:08:09 +0000");
    }

    #[test]
    fn status_callbacks_are_signed_form_posts_to_the_message_s_callback_only() {
        let mut world = Recorder::default();
        let mut account = TwilioEmulator.start(&Map::new());
        let (status, body) = send(
            account.as_mut(),
            &mut world,
            "To=%2B14155550100&From=%2B14155550001&Body=Hi&StatusCallback=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        );
        assert_eq!(status, 201, "{body}");
        let message = world.accepted.remove(0);
        assert_eq!(message.callback_url.as_deref(), Some("http://127.0.0.1:9/cb"));
        let statuses = ["sent".to_string(), "rejected".to_string()];
        let posts = account.receipts(&message, &statuses, None, &mut world);
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[1].logged["MessageStatus"], "failed");
        assert_eq!(posts[1].logged["ErrorCode"], "30008");
        assert_eq!(posts[1].state, "rejected");
        let signed = posts[0].headers.iter().find(|(k, _)| k == "X-Twilio-Signature").unwrap();
        assert!(verify_signature(
            DEFAULT_AUTH_TOKEN,
            "http://127.0.0.1:9/cb",
            &form_fields(&posts[0].body),
            &signed.1
        ));

        let (_, body) = send(account.as_mut(), &mut world, "To=%2B14155550100&From=%2B14155550001&Body=Hi");
        assert_eq!(body["status"], "queued");
        let without = world.accepted.remove(0);
        assert!(account.receipts(&without, &statuses, None, &mut world).is_empty(), "no StatusCallback");
    }

    #[test]
    fn a_stop_reply_refuses_later_sends_until_start() {
        let mut world = Recorder::default();
        let mut account = TwilioEmulator.start(&Map::new());
        let stop = Inbound { from: "+14155550100", to: "+14155550001", text: "STOP", subaccount: None };
        let webhook = account.inbound(&stop, None, &mut world);
        assert_eq!((webhook.url, webhook.state.as_str()), (None, "received"));
        assert_eq!(account.opt_outs(), [("+14155550001".to_string(), "+14155550100".to_string())]);
        let form = "To=%2B14155550100&From=%2B14155550001&Body=Hi";
        assert_eq!(send(account.as_mut(), &mut world, form).1["code"], 21610);
        account.inbound(&Inbound { text: "start", ..stop }, None, &mut world);
        assert_eq!(send(account.as_mut(), &mut world, form).0, 201);
    }
}
