//! What each provider means beyond its spec: which answers are failures even when the HTTP status says
//! success, and which sends may be repeated safely.

use serde_json::Value;

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
    pub fn deduplicates_resends(self) -> bool {
        // 8x8 deduplicates by `clientMessageId`, but herald does not set it yet (issue H5), so no
        // provider is safe to resend to today.
        false
    }

    /// Reads an answer with the provider's rules.
    pub fn interpret(self, status: u16, body: &[u8]) -> Verdict {
        if !(200..300).contains(&status) {
            return Verdict::Failure { reason: format!("HTTP {status}") };
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
    }
}
