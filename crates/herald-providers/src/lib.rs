//! What each provider means beyond its spec: which answers are failures even when the HTTP status says
//! success, and which sends may be repeated safely; what their requests, answers and webhooks say about
//! each message; and how failures are retried.

use serde_json::Value;

mod json;
pub mod message;
pub mod policy;
pub mod status;
pub mod twilio;
pub mod webhook;

pub use message::{Accepted, OutboundMessage};
pub use policy::{FailureClass, RateLimit, RetryPolicy, parse_retry_after};
pub use status::MessageStatus;
pub use twilio::{TwilioError, error_meaning, form_params, parse_error, signature, verify_signature};
pub use webhook::{InboundMessage, Price, StatusUpdate, WebhookError, WebhookEvent, parse_webhook};

/// The providers herald knows. `Generic` is any other HTTP API: a 2xx is a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Kixie,
    #[serde(rename = "8x8-sms")]
    EightByEightSms,
    #[serde(rename = "8x8-chatapps")]
    EightByEightChatApps,
    Twilio,
    Generic,
}

const NAMES: [(&str, Provider); 5] = [
    ("kixie", Provider::Kixie),
    ("8x8-sms", Provider::EightByEightSms),
    ("8x8-chatapps", Provider::EightByEightChatApps),
    ("twilio", Provider::Twilio),
    ("generic", Provider::Generic),
];

impl Provider {
    pub fn from_name(name: &str) -> Option<Provider> {
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, p)| *p)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, p)| *p == self).map_or("generic", |(n, _)| n)
    }

    /// The provider behind a host, for services that do not name one.
    pub fn detect(host: &str) -> Provider {
        let host = host.to_ascii_lowercase();
        if host == "apig.kixie.com" || host.ends_with(".kixie.com") {
            Provider::Kixie
        } else if host.starts_with("sms.") && host.contains(".8x8.") {
            Provider::EightByEightSms
        } else if host.starts_with("chatapps.") && host.contains(".8x8.") {
            Provider::EightByEightChatApps
        } else if host == "api.twilio.com" {
            Provider::Twilio
        } else {
            Provider::Generic
        }
    }

    /// Whether a send whose outcome is unknown (a crash mid-request) may be sent again: only where the
    /// provider deduplicates by a key herald sets.
    ///
    /// The engine sets 8x8's `clientMessageId` (see `idempotency_field`) from the run's idempotency key,
    /// and 8x8 answers a repeat of the same `clientMessageId` without sending the message again. Kixie and
    /// Twilio take no such key, and a generic API promises nothing, so a resend there may text twice.
    pub fn deduplicates_resends(self) -> bool {
        matches!(self, Provider::EightByEightSms | Provider::EightByEightChatApps)
    }

    /// Reads an answer with the provider's rules.
    pub fn interpret(self, status: u16, body: &[u8]) -> Verdict {
        if !(200..300).contains(&status) {
            return Verdict::Failure { reason: self.error_reason(status, body) };
        }
        match self {
            Provider::Kixie => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) if map.get("success") == Some(&Value::Bool(true)) => Verdict::Success,
                Ok(Value::Object(map)) => {
                    let said = map
                        .get("error")
                        .or_else(|| map.get("message"))
                        .and_then(Value::as_str)
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    Verdict::Failure {
                        reason: format!("HTTP {status} but Kixie did not report success{said}"),
                    }
                }
                _ => Verdict::Failure {
                    reason: format!("HTTP {status} but the body is not Kixie's JSON envelope"),
                },
            },
            Provider::EightByEightSms | Provider::EightByEightChatApps => {
                let rejected = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                    let status = v.get("status")?;
                    let code = status.get("code").or_else(|| status.get("state"))?.as_str()?;
                    code.eq_ignore_ascii_case("rejected").then(|| {
                        status.get("description").and_then(Value::as_str).unwrap_or("rejected").to_string()
                    })
                });
                match rejected {
                    Some(why) => Verdict::Failure {
                        reason: format!("HTTP {status} but 8x8 rejected the message: {why}"),
                    },
                    None => Verdict::Success,
                }
            }
            Provider::Twilio | Provider::Generic => Verdict::Success,
        }
    }
}

impl Provider {
    /// "HTTP {status}", followed by the provider's own code and message when its error body has them.
    fn error_reason(self, status: u16, body: &[u8]) -> String {
        let head = format!("HTTP {status}");
        match self {
            Provider::Twilio => match twilio::parse_error(body) {
                Some(e) => {
                    let meaning = error_meaning(e.code).map(|m| format!(" ({m})")).unwrap_or_default();
                    format!("{head}, Twilio error {}: {}{meaning}", e.code, e.message.trim_end_matches('.'))
                }
                None => head,
            },
            Provider::EightByEightSms | Provider::EightByEightChatApps => {
                let error = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                    let code = json::text_at(&v, "code")?;
                    Some((code, json::text_at(&v, "message").unwrap_or_default()))
                });
                match error {
                    Some((code, message)) => format!("{head}, 8x8 error {code}: {message}"),
                    None => head,
                }
            }
            Provider::Kixie | Provider::Generic => head,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Why the answer is a failure; the caller adds the request and the body.
    Failure {
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kixie_needs_success_true() {
        assert_eq!(Provider::Kixie.interpret(200, br#"{"success":true}"#), Verdict::Success);
        let Verdict::Failure { reason } =
            Provider::Kixie.interpret(200, br#"{"success":false,"error":"bad target"}"#)
        else {
            panic!("a false success flag must fail")
        };
        assert!(reason.contains("bad target"), "{reason}");
        assert!(matches!(Provider::Kixie.interpret(200, b"OK"), Verdict::Failure { .. }));
        assert!(matches!(Provider::Kixie.interpret(401, br#"{"success":true}"#), Verdict::Failure { .. }));
    }

    #[test]
    fn eight_by_eight_rejected_in_200_is_a_failure() {
        let body = br#"{"umid":"1","status":{"code":"REJECTED","description":"Invalid MSISDN"}}"#;
        assert!(matches!(Provider::EightByEightSms.interpret(200, body), Verdict::Failure { .. }));
        let ok = br#"{"umid":"1","status":{"code":"QUEUED"}}"#;
        assert_eq!(Provider::EightByEightSms.interpret(200, ok), Verdict::Success);
    }

    #[test]
    fn detects_providers_by_host_and_name() {
        assert_eq!(Provider::detect("apig.kixie.com"), Provider::Kixie);
        assert_eq!(Provider::detect("sms.us.8x8.com"), Provider::EightByEightSms);
        assert_eq!(Provider::detect("chatapps.8x8.uk"), Provider::EightByEightChatApps);
        assert_eq!(Provider::detect("example.com"), Provider::Generic);
        assert_eq!(Provider::from_name("KIXIE"), Some(Provider::Kixie));
        assert!(Provider::names().all(|n| Provider::from_name(n).is_some()));
        assert!(!Provider::Kixie.deduplicates_resends());
        assert!(!Provider::Twilio.deduplicates_resends());
        assert!(!Provider::Generic.deduplicates_resends());
        assert!(Provider::EightByEightSms.deduplicates_resends());
        assert!(Provider::EightByEightChatApps.deduplicates_resends());
    }

    #[test]
    fn error_bodies_name_the_provider_code_and_meaning() {
        let twilio = br#"{"code": 21211, "message": "The 'To' number 123 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            Provider::Twilio.interpret(400, twilio),
            Verdict::Failure {
                reason: "HTTP 400, Twilio error 21211: The 'To' number 123 is not a valid phone number \
                         (invalid To number)"
                    .into()
            }
        );
        assert_eq!(
            Provider::Twilio.interpret(500, b"<html>oops</html>"),
            Verdict::Failure { reason: "HTTP 500".into() }
        );
        assert_eq!(Provider::Twilio.interpret(201, br#"{"sid":"SM1","status":"queued"}"#), Verdict::Success);
        let eight =
            br#"{"code":1002,"message":"Invalid MSISDN","errorId":"4f0b2c1e-0000-4000-8000-000000000000",
            "timestamp":"2024-05-01T10:00:00Z"}"#;
        assert_eq!(
            Provider::EightByEightSms.interpret(400, eight),
            Verdict::Failure { reason: "HTTP 400, 8x8 error 1002: Invalid MSISDN".into() }
        );
        let quota = br#"{"code":429,"message":"Quota exceeded. Please try again in 1 second(s)."}"#;
        let Verdict::Failure { reason } = Provider::EightByEightChatApps.interpret(429, quota) else {
            panic!("a 429 is a failure")
        };
        assert_eq!(reason, "HTTP 429, 8x8 error 429: Quota exceeded. Please try again in 1 second(s).");
        assert_eq!(
            Provider::Kixie.interpret(401, b"Unauthorized"),
            Verdict::Failure { reason: "HTTP 401".into() }
        );
    }
}
