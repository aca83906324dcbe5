//! An OAuth 2.0 authorization server for the client credentials grant (RFC 6749 §4.4) and an API that
//! accepts the Bearer tokens it issued (RFC 6750), so that herald's token cache and its refresh on a 401
//! can be tested end to end.
//!
//! - `auth.sandbox.test`: `POST /oauth/token` with `grant_type=client_credentials`, the client
//!   authenticated with HTTP Basic (or, as RFC 6749 §2.3.1 also allows, `client_id` and
//!   `client_secret` in the form). Answers `{access_token, token_type: "Bearer", expires_in}`;
//!   `401 invalid_client` for a wrong client, `400 unsupported_grant_type` for another grant.
//! - `api.sandbox.test`: `POST /v1/messages` with `Authorization: Bearer <token>`: `201 {id, status:
//!   "queued"}` when the token was issued here, has not expired and has not been revoked, else
//!   `401 {"error": "invalid_token"}`.
//!
//! `DELETE /_sandbox/oauth/tokens` (or [`crate::Sandbox::revoke_oauth_tokens`]) revokes every token
//! issued so far, so that a test can force the refresh path.

use axum::http::{HeaderMap, Method, StatusCode, header};
use herald_providers::emulator::Answer;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// The host of the emulated authorization server.
pub const OAUTH_TOKEN_HOST: &str = "auth.sandbox.test";
/// The host of the emulated API that wants the authorization server's Bearer tokens.
pub const OAUTH_API_HOST: &str = "api.sandbox.test";

/// What the emulated authorization server accepts and issues.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthOptions {
    /// Default `sandbox-client`.
    pub client_id: String,
    /// Default `sandbox-secret`.
    pub client_secret: String,
    /// The `expires_in` of every issued token, in seconds; the API refuses a token once it is that old.
    /// Default 3600.
    pub token_lifetime_secs: u64,
    /// The scopes a client may ask for; empty (the default) grants any scope.
    pub allowed_scopes: Vec<String>,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        OAuthOptions {
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            token_lifetime_secs: 3600,
            allowed_scopes: Vec::new(),
        }
    }
}

/// The tokens issued and not revoked, with when each expires, and how many were ever issued.
#[derive(Debug, Default)]
pub(crate) struct OAuthState {
    inner: Mutex<Issued>,
}

#[derive(Debug, Default)]
struct Issued {
    /// Token -> expiry in milliseconds since the Unix epoch.
    tokens: HashMap<String, u64>,
    count: u64,
    messages: u64,
}

impl OAuthState {
    fn issue(&self, now_millis: u64, lifetime_secs: u64) -> String {
        let Ok(mut issued) = self.inner.lock() else { return String::new() };
        issued.count += 1;
        let count = issued.count;
        let token = format!("sbx_at_{count}_{:016x}", fnv(&count.to_le_bytes()) ^ now_nanos());
        issued.tokens.insert(token.clone(), now_millis.saturating_add(lifetime_secs.saturating_mul(1000)));
        token
    }

    /// Whether `token` was issued here, is not revoked and has not expired at `now_millis`.
    fn valid(&self, token: &str, now_millis: u64) -> bool {
        self.inner
            .lock()
            .is_ok_and(|issued| issued.tokens.get(token).is_some_and(|&expiry| now_millis < expiry))
    }

    fn next_message(&self) -> u64 {
        self.inner.lock().map_or(0, |mut issued| {
            issued.messages += 1;
            issued.messages
        })
    }

    /// Revokes every token issued so far; returns how many were still held.
    pub(crate) fn revoke_all(&self) -> usize {
        self.inner.lock().map_or(0, |mut issued| {
            let revoked = issued.tokens.len();
            issued.tokens.clear();
            revoked
        })
    }

    /// How many tokens were issued since the sandbox started (revoked ones included).
    pub(crate) fn issued(&self) -> u64 {
        self.inner.lock().map_or(0, |issued| issued.count)
    }

    /// How many issued tokens are neither revoked nor forgotten (expired ones included).
    pub(crate) fn held(&self) -> usize {
        self.inner.lock().map_or(0, |issued| issued.tokens.len())
    }
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Answer {
    let mut answer = Answer::json(status, json!({"error": error, "error_description": description}));
    answer.headers.push(("cache-control", "no-store".into()));
    answer.headers.push(("pragma", "no-cache".into()));
    answer
}

fn invalid_client(description: &str, used_basic: bool) -> Answer {
    let mut answer = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if used_basic {
        answer.headers.push(("www-authenticate", format!("Basic realm=\"{OAUTH_TOKEN_HOST}\"")));
    }
    answer
}

/// `POST /oauth/token` on [`OAUTH_TOKEN_HOST`].
pub(crate) fn handle_token(
    options: &OAuthOptions,
    state: &OAuthState,
    now_millis: u64,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    if path != "/oauth/token" {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", &format!("no endpoint at {path}"));
    }
    if method != Method::POST {
        let mut answer =
            oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "use POST for /oauth/token");
        answer.headers.push(("allow", "POST".into()));
        return answer;
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Some(form) = parse_form(body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "malformed form body");
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if ["grant_type", "scope", "client_id", "client_secret"]
        .iter()
        .any(|name| form.iter().filter(|(k, _)| k == name).count() > 1)
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "a parameter is repeated");
    }

    // Client authentication: HTTP Basic, or the client's credentials in the body, never both.
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let basic = authorization.and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    let in_body = field("client_secret").is_some();
    let (client_id, client_secret) = match (basic, in_body) {
        (Some(_), true) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the client authenticated both with HTTP Basic and in the body",
            );
        }
        (Some(encoded), false) => {
            let decoded = decode_base64(encoded).and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return invalid_client("malformed HTTP Basic credentials", true);
            };
            // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
            match (form_decode(id), form_decode(secret)) {
                (Some(id), Some(secret)) => (id, secret),
                _ => return invalid_client("malformed HTTP Basic credentials", true),
            }
        }
        (None, true) => (
            field("client_id").unwrap_or_default().to_string(),
            field("client_secret").unwrap_or_default().to_string(),
        ),
        (None, false) => return invalid_client("client authentication is required", false),
    };
    if client_id != options.client_id || client_secret != options.client_secret {
        return invalid_client("unknown client or wrong client secret", basic.is_some());
    }
    if let Some(id) = field("client_id")
        && id != client_id
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id differs from the client");
    }

    match field("grant_type") {
        None => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required");
        }
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type `{other}` is not supported; use client_credentials"),
            );
        }
    }
    let scope = field("scope").map(str::trim).filter(|s| !s.is_empty());
    if let Some(scope) = scope
        && !options.allowed_scopes.is_empty()
    {
        let unknown: Vec<&str> = scope
            .split(' ')
            .filter(|s| !s.is_empty() && !options.allowed_scopes.iter().any(|a| a == s))
            .collect();
        if !unknown.is_empty() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("scope not granted to this client: {}", unknown.join(" ")),
            );
        }
    }

    let token = state.issue(now_millis, options.token_lifetime_secs);
    let mut answer = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": options.token_lifetime_secs,
    });
    if let Some(scope) = scope {
        answer["scope"] = json!(scope);
    }
    let mut answer = Answer::json(StatusCode::OK, answer);
    answer.headers.push(("cache-control", "no-store".into()));
    answer.headers.push(("pragma", "no-cache".into()));
    answer
}

/// An RFC 6750 §3 answer to a request without a usable token.
fn invalid_token(description: &str, token_given: bool) -> Answer {
    let mut answer = Answer::json(
        StatusCode::UNAUTHORIZED,
        json!({"error": "invalid_token", "error_description": description}),
    );
    let challenge = if token_given {
        format!(
            "Bearer realm=\"{OAUTH_API_HOST}\", error=\"invalid_token\", error_description=\"{description}\""
        )
    } else {
        format!("Bearer realm=\"{OAUTH_API_HOST}\"")
    };
    answer.headers.push(("www-authenticate", challenge));
    answer
}

/// `POST /v1/messages` on [`OAUTH_API_HOST`].
pub(crate) fn handle_api(
    state: &OAuthState,
    now_millis: u64,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    if path.trim_end_matches('/') != "/v1/messages" {
        return Answer::json(StatusCode::NOT_FOUND, json!({"error": "not_found", "path": path}));
    }
    if method != Method::POST {
        let mut answer = Answer::json(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "method_not_allowed"}));
        answer.headers.push(("allow", "POST".into()));
        return answer;
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = authorization.and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return invalid_token("a Bearer token is required", false);
    };
    if !state.valid(token, now_millis) {
        return invalid_token("the access token is unknown, expired or revoked", true);
    }
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
        return Answer::json(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the body must be a JSON object"}),
        );
    };
    let id = format!("msg_{:06}", state.next_message());
    let mut answer = Map::new();
    answer.insert("id".into(), json!(id));
    answer.insert("status".into(), json!("queued"));
    if let Some(to) = message.get("to") {
        answer.insert("to".into(), to.clone());
    }
    Answer::json(StatusCode::CREATED, Value::Object(answer))
}

/// `application/x-www-form-urlencoded` pairs; `None` when a percent escape or UTF-8 is malformed.
fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

/// Decodes one form-urlencoded component: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Standard base64 with optional padding (what HTTP Basic uses).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
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
    use axum::http::HeaderValue;

    const NOW: u64 = 1_700_000_000_000;

    fn encode_base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut buf = [0u8; 3];
            buf[..chunk.len()].copy_from_slice(chunk);
            let bits = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn form_headers(basic: Option<(&str, &str)>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        if let Some((id, secret)) = basic {
            let value = format!("Basic {}", encode_base64(format!("{id}:{secret}").as_bytes()));
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        }
        headers
    }

    fn token_call(
        options: &OAuthOptions,
        state: &OAuthState,
        headers: &HeaderMap,
        body: &str,
    ) -> (u16, Value) {
        let answer =
            handle_token(options, state, NOW, &Method::POST, "/oauth/token", headers, body.as_bytes());
        (answer.status.as_u16(), serde_json::from_str(&answer.body).unwrap())
    }

    fn fetch(state: &OAuthState) -> String {
        let headers = form_headers(Some(("sandbox-client", "sandbox-secret")));
        let (status, body) =
            token_call(&OAuthOptions::default(), state, &headers, "grant_type=client_credentials");
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    fn api_call(state: &OAuthState, now: u64, token: Option<&str>) -> (u16, Value) {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        }
        let answer = handle_api(
            state,
            now,
            &Method::POST,
            "/v1/messages",
            &headers,
            br#"{"to":"+14155550100","text":"Hi"}"#,
        );
        (answer.status.as_u16(), serde_json::from_str(&answer.body).unwrap())
    }

    #[test]
    fn issues_a_bearer_token_to_a_client_using_basic_auth() {
        let state = OAuthState::default();
        let headers = form_headers(Some(("sandbox-client", "sandbox-secret")));
        let (status, body) = token_call(
            &OAuthOptions::default(),
            &state,
            &headers,
            "grant_type=client_credentials&scope=sms.send",
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "sms.send");
        assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(state.issued(), 1);
    }

    #[test]
    fn accepts_client_credentials_in_the_body_and_form_encoded_basic_credentials() {
        let options = OAuthOptions { client_secret: "s3cr:t+/=".into(), ..OAuthOptions::default() };
        let state = OAuthState::default();
        let body = "grant_type=client_credentials&client_id=sandbox-client&client_secret=s3cr%3At%2B%2F%3D";
        assert_eq!(token_call(&options, &state, &form_headers(None), body).0, 200);
        let headers = form_headers(Some(("sandbox-client", "s3cr%3At%2B%2F%3D")));
        assert_eq!(token_call(&options, &state, &headers, "grant_type=client_credentials").0, 200);
        assert_eq!(state.issued(), 2);
    }

    #[test]
    fn refuses_a_wrong_or_missing_client_with_401_invalid_client() {
        let state = OAuthState::default();
        let options = OAuthOptions::default();
        let headers = form_headers(Some(("sandbox-client", "bad-4f9a")));
        let answer = handle_token(
            &options,
            &state,
            NOW,
            &Method::POST,
            "/oauth/token",
            &headers,
            b"grant_type=client_credentials",
        );
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(
            answer
                .headers
                .iter()
                .any(|(name, value)| *name == "www-authenticate" && value.starts_with("Basic"))
        );
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(!answer.body.contains("bad-4f9a") && !answer.body.contains("sandbox-secret"));
        let (status, body) =
            token_call(&options, &state, &form_headers(None), "grant_type=client_credentials");
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        let garbage = {
            let mut headers = form_headers(None);
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
            headers
        };
        assert_eq!(token_call(&options, &state, &garbage, "grant_type=client_credentials").0, 401);
        assert_eq!(state.issued(), 0);
    }

    #[test]
    fn refuses_other_grants_and_malformed_requests_with_400() {
        let state = OAuthState::default();
        let options = OAuthOptions::default();
        let headers = form_headers(Some(("sandbox-client", "sandbox-secret")));
        let (status, body) = token_call(&options, &state, &headers, "grant_type=password&username=a");
        assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
        let (status, body) = token_call(&options, &state, &headers, "scope=x");
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
        let (status, body) = token_call(
            &options,
            &state,
            &headers,
            "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret",
        );
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
        let mut json_headers = headers.clone();
        json_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let (status, body) =
            token_call(&options, &state, &json_headers, r#"{"grant_type":"client_credentials"}"#);
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
        let answer = handle_token(&options, &state, NOW, &Method::GET, "/oauth/token", &headers, b"");
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        let answer = handle_token(&options, &state, NOW, &Method::POST, "/token", &headers, b"");
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(state.issued(), 0);
    }

    #[test]
    fn refuses_scopes_outside_the_allowed_ones() {
        let options = OAuthOptions { allowed_scopes: vec!["sms.send".into()], ..OAuthOptions::default() };
        let state = OAuthState::default();
        let headers = form_headers(Some(("sandbox-client", "sandbox-secret")));
        let (status, body) =
            token_call(&options, &state, &headers, "grant_type=client_credentials&scope=sms.send+admin");
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
        let (status, _) =
            token_call(&options, &state, &headers, "grant_type=client_credentials&scope=sms.send");
        assert_eq!(status, 200);
    }

    #[test]
    fn the_api_accepts_issued_tokens_until_they_expire_or_are_revoked() {
        let state = OAuthState::default();
        let token = fetch(&state);
        let (status, body) = api_call(&state, NOW, Some(&token));
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "queued");
        assert!(body["id"].as_str().is_some_and(|id| id.starts_with("msg_")));

        let (status, body) = api_call(&state, NOW + 3600 * 1000, Some(&token));
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));

        assert_eq!(state.revoke_all(), 1);
        let (status, body) = api_call(&state, NOW, Some(&token));
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
        let fresh = fetch(&state);
        assert_ne!(fresh, token);
        assert_eq!(api_call(&state, NOW, Some(&fresh)).0, 201);
        assert_eq!(state.issued(), 2);
    }

    #[test]
    fn the_api_refuses_missing_and_unknown_tokens() {
        let state = OAuthState::default();
        let (status, body) = api_call(&state, NOW, None);
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
        let (status, body) = api_call(&state, NOW, Some("made-up"));
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
        let token = fetch(&state);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        let answer = handle_api(&state, NOW, &Method::POST, "/v1/messages", &headers, b"not json");
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let answer = handle_api(&state, NOW, &Method::GET, "/v1/messages", &headers, b"");
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn a_zero_lifetime_token_is_issued_already_expired() {
        let options = OAuthOptions { token_lifetime_secs: 0, ..OAuthOptions::default() };
        let state = OAuthState::default();
        let headers = form_headers(Some(("sandbox-client", "sandbox-secret")));
        let (status, body) = token_call(&options, &state, &headers, "grant_type=client_credentials");
        assert_eq!((status, body["expires_in"].as_u64()), (200, Some(0)));
        assert_eq!(api_call(&state, NOW, body["access_token"].as_str()).0, 401);
    }

    #[test]
    fn decodes_base64_and_form_components() {
        for text in ["", "a", "ab", "abc", "sandbox-client:sandbox-secret"] {
            assert_eq!(decode_base64(&encode_base64(text.as_bytes())).unwrap(), text.as_bytes());
        }
        assert_eq!(decode_base64("YWJj"), Some(b"abc".to_vec()));
        assert!(decode_base64("a").is_none() && decode_base64("a$==").is_none());
        assert_eq!(form_decode("a+b%2Bc%3A").as_deref(), Some("a b+c:"));
        assert!(form_decode("%zz").is_none() && form_decode("%4").is_none());
    }
}
