//! Twilio's request signatures (X-Twilio-Signature) and error bodies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Twilio sorts by name; a repeated name is ordered by value so the result does not depend on the
    // order in which the body listed them.
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `X-Twilio-Signature` for a POST to `url` (the full URL Twilio called, query included) with `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` is the one Twilio would send. The comparison takes the same time wherever the
/// first wrong byte is, so a forger cannot find the signature byte by byte.
pub fn verify_signature(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

/// The parameters of a form-encoded body, in body order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Twilio's JSON error body `{code, message, more_info, status}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TwilioError {
    pub code: u32,
    pub message: String,
}

/// The error in a Twilio answer, if the body is Twilio's error JSON.
pub fn parse_error(body: &[u8]) -> Option<TwilioError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = match value.get("code")? {
        Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let message = value.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    Some(TwilioError { code, message })
}

/// What a Twilio error code means, in words a user can act on.
pub fn error_meaning(code: u32) -> Option<&'static str> {
    Some(match code {
        20003 => "authentication failed",
        20429 => "too many requests",
        21211 => "invalid To number",
        21603 => "From number missing",
        21604 => "To number missing",
        21610 => "recipient opted out with STOP",
        21614 => "To is not a mobile number",
        21617 => "body too long",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published_params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn matches_the_published_vector() {
        assert_eq!(signature("12345", URL, &published_params()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        let mut shuffled = published_params();
        shuffled.reverse();
        assert_eq!(signature("12345", URL, &shuffled), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify_signature("12345", URL, &shuffled, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn forged_signatures_fail() {
        let params = published_params();
        assert!(!verify_signature("12345", URL, &params, "1/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify_signature("54321", URL, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify_signature(
            "12345",
            "https://mycompany.com/myapp.php",
            &params,
            &signature("12345", URL, &params)
        ));
        let mut tampered = params.clone();
        tampered[2].1 = "9999".into();
        assert!(!verify_signature("12345", URL, &tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify_signature("12345", URL, &params, "not base64!"));
        assert!(!verify_signature("12345", URL, &params, ""));
    }

    #[test]
    fn form_params_decode_the_body() {
        let p = form_params(b"MessageSid=SM1&Body=Hello+there%21&To=%2B15551234567");
        assert_eq!(
            p,
            vec![
                ("MessageSid".to_string(), "SM1".to_string()),
                ("Body".to_string(), "Hello there!".to_string()),
                ("To".to_string(), "+15551234567".to_string()),
            ]
        );
    }

    #[test]
    fn reads_error_bodies() {
        let body = br#"{"code": 21211, "message": "The 'To' number 123 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let e = parse_error(body).unwrap();
        assert_eq!(e.code, 21211);
        assert_eq!(e.message, "The 'To' number 123 is not a valid phone number.");
        assert_eq!(error_meaning(e.code), Some("invalid To number"));
        assert_eq!(error_meaning(21610), Some("recipient opted out with STOP"));
        assert_eq!(error_meaning(99999), None);
        assert_eq!(parse_error(br#"{"code":"20429","message":"Too Many Requests"}"#).unwrap().code, 20429);
        assert_eq!(parse_error(b"<html>bad gateway</html>"), None);
        assert_eq!(parse_error(br#"{"sid":"SM1"}"#), None);
        assert_eq!(parse_error(br#"{"code":-1}"#), None);
    }
}
