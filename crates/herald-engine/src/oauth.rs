//! OAuth 2.0 client credentials (RFC 6749 §4.4): fetch an access token from a token endpoint, keep it
//! until it is about to expire, and let the caller drop it when an API answers 401.
//!
//! The client authenticates with HTTP Basic (RFC 6749 §2.3.1: identifier and secret are form-urlencoded,
//! joined by `:` and base64-encoded). Tokens, secrets and the Authorization header built from them live
//! in [`Zeroizing`] buffers; no error, log line or `Debug` output of this module contains them.
//!
//! One fetch at a time per cache key: callers that ask for the same key while a fetch is under way wait
//! for it and share its token, so that four workers starting at once fetch one token, not four.

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// A cached token is used only while it has at least this long to live.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Token answers are small; a larger one is refused unread.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of the server's `error` / `error_description` an error quotes.
const MAX_QUOTED_CHARS: usize = 200;

/// What form-urlencoding leaves as is (WHATWG's set, plus `~`, which every decoder accepts).
const FORM_COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'*').remove(b'~');

/// Where and as whom to ask for a token, and under which key to keep it.
#[derive(Clone, Copy)]
pub struct TokenRequest<'a> {
    /// `https://...`; plain `http://` only on a loopback host (the sandbox).
    pub token_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Space-separated scopes; not sent when `None` or empty.
    pub scope: Option<&'a str>,
    /// Tokens are cached per key, e.g. `external credential / principal / user id`. A cached token is
    /// also tied to the URL, client, secret and scope it was fetched with: change any and it is refetched.
    pub cache_key: &'a str,
}

impl fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("token_url", &shown_url(self.token_url))
            .field("client_id", &self.client_id)
            .field("client_secret", &herald_flow::MASK)
            .field("scope", &self.scope)
            .field("cache_key", &self.cache_key)
            .finish()
    }
}

/// Why no token could be had. Names the token URL (without user info, query or fragment) and what the
/// server answered; never the client secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth token URL `{token_url}` is refused: {reason}")]
    InvalidTokenUrl { token_url: String, reason: &'static str },
    #[error("OAuth token request to {token_url} {kind}: {reason}")]
    Transport { token_url: String, kind: &'static str, reason: String },
    #[error(
        "OAuth token endpoint {token_url} refused the client credentials grant: HTTP {status}{}{}",
        error.as_ref().map(|e| format!(" {e}")).unwrap_or_default(),
        error_description.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Refused { token_url: String, status: u16, error: Option<String>, error_description: Option<String> },
    #[error(
        "OAuth token endpoint {token_url} answered HTTP {status}, a redirect; herald never follows redirects"
    )]
    Redirect { token_url: String, status: u16 },
    #[error("OAuth token endpoint {token_url} answered HTTP {status} without a usable token: {problem}")]
    InvalidResponse { token_url: String, status: u16, problem: &'static str },
    #[error(
        "OAuth token endpoint {token_url} issued a token of type `{token_type}`; herald sends Bearer tokens only"
    )]
    UnsupportedTokenType { token_url: String, token_type: String },
}

impl OAuthError {
    /// The HTTP status the token endpoint answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            OAuthError::Refused { status, .. }
            | OAuthError::Redirect { status, .. }
            | OAuthError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

struct CachedToken {
    access_token: Zeroizing<String>,
    /// `None`: the server gave no `expires_in`; kept until invalidated.
    expires_at: Option<Instant>,
    /// Of the URL, client, secret and scope the token was fetched with.
    fingerprint: [u8; 32],
}

impl CachedToken {
    fn fresh(&self, fingerprint: &[u8; 32], now: Instant) -> bool {
        self.fingerprint == *fingerprint
            && self
                .expires_at
                .is_none_or(|expires_at| now.checked_add(EXPIRY_MARGIN).is_some_and(|t| t < expires_at))
    }
}

/// One cache key: its token, and the lock that lets one caller at a time fetch.
#[derive(Default)]
struct Slot {
    fetching: tokio::sync::Mutex<()>,
    token: Mutex<Option<CachedToken>>,
}

impl Slot {
    fn fresh(&self, fingerprint: &[u8; 32]) -> Option<Zeroizing<String>> {
        let token = self.token.lock().ok()?;
        token.as_ref().filter(|t| t.fresh(fingerprint, Instant::now())).map(|t| t.access_token.clone())
    }
}

/// Fetches and caches client credentials tokens. Cheap to share: wrap it in an `Arc` or keep it in a
/// long-lived struct.
pub struct OAuthClient {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Slot>>>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.cache.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("OAuthClient").field("cache_keys", &keys).finish_non_exhaustive()
    }
}

/// What a token endpoint answered, success or error (RFC 6749 §5.1, §5.2). Unknown fields are ignored.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Value>,
    error: Option<Value>,
    error_description: Option<Value>,
}

impl OAuthClient {
    /// `http` should not follow redirects (the engine's client does not).
    pub fn new(http: reqwest::Client) -> Self {
        OAuthClient { http, cache: Mutex::new(HashMap::new()) }
    }

    /// A valid access token: from the cache if it has more than [`EXPIRY_MARGIN`] to live, else fetched
    /// (`POST` form `grant_type=client_credentials`, client authenticated with HTTP Basic).
    pub async fn token(&self, request: &TokenRequest<'_>) -> Result<Zeroizing<String>, OAuthError> {
        let fingerprint = fingerprint(request);
        let slot = self.slot(request.cache_key);
        if let Some(token) = slot.fresh(&fingerprint) {
            return Ok(token);
        }
        let _fetching = slot.fetching.lock().await;
        // Whoever held the lock before may have fetched the token this caller needs.
        if let Some(token) = slot.fresh(&fingerprint) {
            return Ok(token);
        }
        let started = Instant::now();
        let (access_token, expires_in) = self.fetch(request).await?;
        // Count the lifetime from before the request left: the server started it no later than that.
        let expires_at = expires_in.map(|secs| started.checked_add(secs).unwrap_or(started));
        if let Ok(mut cached) = slot.token.lock() {
            *cached = Some(CachedToken { access_token: access_token.clone(), expires_at, fingerprint });
        }
        Ok(access_token)
    }

    /// Drops the cached token of `cache_key` (after a 401 the caller invalidates, fetches once more
    /// and retries once).
    pub fn invalidate(&self, cache_key: &str) {
        let slot = self.cache.lock().ok().and_then(|cache| cache.get(cache_key).cloned());
        if let Some(slot) = slot
            && let Ok(mut token) = slot.token.lock()
        {
            *token = None;
        }
    }

    /// Drops the cached token of `cache_key` only if it is still `rejected`, the one an API refused.
    /// When several callers get a 401 for the same token, the first one's refetch is kept instead of
    /// being dropped by the others. Returns whether it dropped the token.
    pub fn invalidate_token(&self, cache_key: &str, rejected: &str) -> bool {
        let slot = self.cache.lock().ok().and_then(|cache| cache.get(cache_key).cloned());
        let Some(slot) = slot else { return false };
        let Ok(mut token) = slot.token.lock() else { return false };
        if token.as_ref().is_some_and(|t| t.access_token.as_str() == rejected) {
            *token = None;
            return true;
        }
        false
    }

    fn slot(&self, cache_key: &str) -> Arc<Slot> {
        match self.cache.lock() {
            Ok(mut cache) => cache.entry(cache_key.to_string()).or_default().clone(),
            // A poisoned cache still works, uncached.
            Err(_) => Arc::new(Slot::default()),
        }
    }

    async fn fetch(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<(Zeroizing<String>, Option<Duration>), OAuthError> {
        let token_url = shown_url(request.token_url);
        let url = checked_url(request.token_url, &token_url)?;

        let id = Zeroizing::new(utf8_percent_encode(request.client_id, FORM_COMPONENT).to_string());
        let secret = Zeroizing::new(utf8_percent_encode(request.client_secret, FORM_COMPONENT).to_string());
        let joined = Zeroizing::new(format!("{}:{}", id.as_str(), secret.as_str()));
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(joined.as_bytes()));
        let header = Zeroizing::new(format!("Basic {}", encoded.as_str()));
        // Base64 is always a valid header value.
        let mut authorization = HeaderValue::from_str(&header).map_err(|_| OAuthError::InvalidTokenUrl {
            token_url: token_url.clone(),
            reason: "the client credentials cannot form an Authorization header",
        })?;
        authorization.set_sensitive(true);
        // A server that echoes what it received must not leak it through our errors.
        let mask = |text: &str| -> String {
            crate::mask_secrets(text, [request.client_secret, secret.as_str(), encoded.as_str()])
        };

        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = request.scope.map(str::trim).filter(|s| !s.is_empty()) {
            form.push(("scope", scope));
        }
        let sent = self
            .http
            .post(url)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                let kind = crate::callout::transport_failure(&error);
                return Err(OAuthError::Transport { token_url, kind, reason: mask(&error_chain(&error)) });
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(OAuthError::Redirect { token_url, status: status.as_u16() });
        }
        let invalid = |problem| OAuthError::InvalidResponse {
            token_url: token_url.clone(),
            status: status.as_u16(),
            problem,
        };
        let mut body = Zeroizing::new(Vec::new());
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                        return Err(invalid("the answer is larger than 64 KiB"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return Err(invalid("the answer was cut off")),
            }
        }
        // Never quote a parse error: it could quote the token.
        let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let quoted = |value: Option<&Value>| value.and_then(Value::as_str).map(|text| quote(&mask(text)));
            return Err(OAuthError::Refused {
                token_url,
                status: status.as_u16(),
                error: answer.as_ref().and_then(|a| quoted(a.error.as_ref())),
                error_description: answer.as_ref().and_then(|a| quoted(a.error_description.as_ref())),
            });
        }
        let Some(answer) = answer else {
            return Err(invalid("the answer is not a JSON token response"));
        };
        let access_token = Zeroizing::new(answer.access_token.unwrap_or_default());
        if access_token.trim().is_empty() {
            return Err(invalid("`access_token` is missing or empty"));
        }
        if HeaderValue::from_str(&format!("Bearer {}", access_token.as_str())).is_err() {
            return Err(invalid("`access_token` cannot be sent in an Authorization header"));
        }
        match answer.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                return Err(OAuthError::UnsupportedTokenType { token_url, token_type: quote(&mask(other)) });
            }
            None => return Err(invalid("`token_type` is missing")),
        }
        let expires_in = match answer.expires_in {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_f64().unwrap_or(0.0)),
            // Some servers send it as a string ("3599").
            Some(Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() => Some(secs),
                _ => return Err(invalid("`expires_in` is not a number")),
            },
            Some(_) => return Err(invalid("`expires_in` is not a number")),
        };
        let expires_in =
            expires_in.map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 10.0 * 365.0 * 86400.0)));
        Ok((access_token, expires_in))
    }
}

/// A hash of everything the token depends on, so that a rotated secret or an edited scope is not
/// answered with the token of the old one.
fn fingerprint(request: &TokenRequest<'_>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in
        [request.token_url, request.client_id, request.client_secret, request.scope.unwrap_or("").trim()]
    {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// The token URL as errors show it: without user info, query or fragment.
fn shown_url(text: &str) -> String {
    if let Ok(mut url) = reqwest::Url::parse(text) {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        return url.to_string();
    }
    let cut = text.split(['?', '#']).next().unwrap_or("");
    match cut.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or("");
            quote(&format!("{scheme}://{host}{path}"))
        }
        None => quote(cut),
    }
}

/// `https://`, or `http://` to a loopback address; no user info.
fn checked_url(text: &str, shown: &str) -> Result<reqwest::Url, OAuthError> {
    let refuse = |reason| OAuthError::InvalidTokenUrl { token_url: shown.to_string(), reason };
    let url = reqwest::Url::parse(text).map_err(|_| refuse("it is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it carries user info; client credentials belong in the principal"));
    }
    let Some(host) = url.host_str() else { return Err(refuse("it has no host")) };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(refuse("the client secret would travel unencrypted; use https")),
        _ => Err(refuse("only https URLs are supported")),
    }
}

/// Server text fit for an error message: one line, bounded.
fn quote(text: &str) -> String {
    let mut quoted: String =
        text.chars().take(MAX_QUOTED_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > MAX_QUOTED_CHARS {
        quoted.push('…');
    }
    quoted
}

/// A reqwest error and its causes, without the URL (errors name the shown URL themselves).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        let part = match cause.downcast_ref::<reqwest::Error>() {
            Some(_) if text.is_empty() => String::new(),
            _ => cause.to_string(),
        };
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = cause.source();
    }
    if text.is_empty() { "no cause given".to_string() } else { quote(&text) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_sandbox::{OAuthOptions, Sandbox, SandboxOptions};
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "sandbox-secret";

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    async fn sandbox(options: OAuthOptions) -> (Sandbox, SocketAddr) {
        let mut sandbox_options = SandboxOptions::default();
        sandbox_options.oauth = options;
        let sandbox = Sandbox::new(sandbox_options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(sandbox.clone().serve(listener));
        (sandbox, address)
    }

    fn token_url(address: SocketAddr) -> String {
        format!("http://{address}/auth.sandbox.test/oauth/token")
    }

    fn request<'a>(url: &'a str, secret: &'a str) -> TokenRequest<'a> {
        TokenRequest {
            token_url: url,
            client_id: "sandbox-client",
            client_secret: secret,
            scope: Some("sms.send"),
            cache_key: "Api/Service/",
        }
    }

    /// `POST /v1/messages` on the sandbox's API with a Bearer token; its status.
    async fn send(http: &reqwest::Client, address: SocketAddr, token: &str) -> u16 {
        let url = format!("http://{address}/api.sandbox.test/v1/messages");
        let response =
            http.post(url).bearer_auth(token).json(&serde_json::json!({"to": "+14155550100"})).send();
        response.await.unwrap().status().as_u16()
    }

    /// A one-request-at-a-time HTTP server that answers every request with `status` and `body`.
    async fn canned(status: u16, body: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut received = Vec::new();
                let mut buffer = [0u8; 4096];
                // Read the head, then as much body as it announces.
                loop {
                    let n = stream.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    received.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if received.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nlocation: https://elsewhere.example/\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        address
    }

    #[tokio::test]
    async fn two_calls_fetch_one_token() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let client = OAuthClient::new(http());
        let first = client.token(&request(&url, SECRET)).await.unwrap();
        let second = client.token(&request(&url, SECRET)).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(sandbox.oauth_tokens_issued(), 1);
        assert_eq!(send(&http(), address, &second).await, 201);
        // Another key is another token.
        let other = TokenRequest { cache_key: "Api/Service/005000000000001AAA", ..request(&url, SECRET) };
        assert_ne!(client.token(&other).await.unwrap(), first);
        assert_eq!(sandbox.oauth_tokens_issued(), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let client = Arc::new(OAuthClient::new(http()));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move { client.token(&request(&url, SECRET)).await.unwrap() })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap());
        }
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(sandbox.oauth_tokens_issued(), 1);
    }

    #[tokio::test]
    async fn an_expired_or_nearly_expired_token_is_refetched() {
        for lifetime in [0, EXPIRY_MARGIN.as_secs()] {
            let options = OAuthOptions { token_lifetime_secs: lifetime, ..OAuthOptions::default() };
            let (sandbox, address) = sandbox(options).await;
            let url = token_url(address);
            let client = OAuthClient::new(http());
            let first = client.token(&request(&url, SECRET)).await.unwrap();
            let second = client.token(&request(&url, SECRET)).await.unwrap();
            assert_ne!(first, second, "lifetime {lifetime}");
            assert_eq!(sandbox.oauth_tokens_issued(), 2, "lifetime {lifetime}");
        }
        // Just over the margin: kept.
        let options =
            OAuthOptions { token_lifetime_secs: EXPIRY_MARGIN.as_secs() + 5, ..OAuthOptions::default() };
        let (sandbox, address) = sandbox(options).await;
        let url = token_url(address);
        let client = OAuthClient::new(http());
        client.token(&request(&url, SECRET)).await.unwrap();
        client.token(&request(&url, SECRET)).await.unwrap();
        assert_eq!(sandbox.oauth_tokens_issued(), 1);
    }

    #[tokio::test]
    async fn a_401_is_answered_by_invalidating_refetching_once_and_retrying() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let http = http();
        let client = OAuthClient::new(http.clone());
        let key = "Api/Service/";
        let token = client.token(&request(&url, SECRET)).await.unwrap();
        assert_eq!(send(&http, address, &token).await, 201);

        assert_eq!(sandbox.revoke_oauth_tokens(), 1);
        // The cache does not know: it answers the revoked token, and the API refuses it.
        let stale = client.token(&request(&url, SECRET)).await.unwrap();
        assert_eq!(stale, token);
        assert_eq!(send(&http, address, &stale).await, 401);

        assert!(client.invalidate_token(key, &stale));
        let fresh = client.token(&request(&url, SECRET)).await.unwrap();
        assert_ne!(fresh, stale);
        assert_eq!(send(&http, address, &fresh).await, 201);
        assert_eq!(sandbox.oauth_tokens_issued(), 2);

        // A second caller that got the same 401 late does not drop the fresh token.
        assert!(!client.invalidate_token(key, &stale));
        assert_eq!(client.token(&request(&url, SECRET)).await.unwrap(), fresh);
        assert_eq!(sandbox.oauth_tokens_issued(), 2);

        client.invalidate(key);
        client.invalidate("no such key");
        assert_ne!(client.token(&request(&url, SECRET)).await.unwrap(), fresh);
        assert_eq!(sandbox.oauth_tokens_issued(), 3);
    }

    #[tokio::test]
    async fn the_sandbox_control_route_revokes_every_token() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let http = http();
        let token = OAuthClient::new(http.clone()).token(&request(&url, SECRET)).await.unwrap();
        let control = format!("http://{address}/_sandbox/oauth/tokens");
        let counts: serde_json::Value = http.get(&control).send().await.unwrap().json().await.unwrap();
        assert_eq!(counts, serde_json::json!({"issued": 1, "held": 1}));
        assert_eq!(http.delete(&control).send().await.unwrap().status().as_u16(), 204);
        assert_eq!(send(&http, address, &token).await, 401);
        assert_eq!(sandbox.oauth_tokens_issued(), 1);
    }

    #[tokio::test]
    async fn a_changed_secret_or_scope_is_not_answered_from_the_cache() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let client = OAuthClient::new(http());
        client.token(&request(&url, SECRET)).await.unwrap();
        let error = client.token(&request(&url, "rotated-secret-value")).await.unwrap_err();
        assert_eq!(error.status(), Some(401));
        let narrower = TokenRequest { scope: None, ..request(&url, SECRET) };
        client.token(&narrower).await.unwrap();
        assert_eq!(sandbox.oauth_tokens_issued(), 2);
    }

    #[tokio::test]
    async fn a_refused_client_names_the_url_and_the_error_but_not_the_secret() {
        let (sandbox, address) = sandbox(OAuthOptions::default()).await;
        let url = token_url(address);
        let client = OAuthClient::new(http());
        let wrong = "wrong-secret-4f9a";
        let error = client.token(&request(&url, wrong)).await.unwrap_err();
        let OAuthError::Refused { status, error: code, .. } = &error else { panic!("{error:?}") };
        assert_eq!((*status, code.as_deref()), (401, Some("invalid_client")));
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(text.contains(&url) && text.contains("invalid_client"), "{text}");
            assert!(!text.contains(wrong), "{text}");
        }
        assert!(!format!("{:?}", request(&url, wrong)).contains(wrong));
        assert_eq!(sandbox.oauth_tokens_issued(), 0);
    }

    #[tokio::test]
    async fn a_server_echoing_the_credentials_does_not_leak_them_into_errors() {
        let basic = base64::engine::general_purpose::STANDARD.encode("sandbox-client:s3cret%2Bvalue");
        let body: &'static str = Box::leak(
            format!(
                r#"{{"error":"invalid_client","error_description":"got secret s3cret+value and header Basic {basic}"}}"#
            )
            .into_boxed_str(),
        );
        let address = canned(401, body).await;
        let url = format!("http://{address}/token?tenant=abc");
        let client = OAuthClient::new(http());
        let request = TokenRequest { client_secret: "s3cret+value", ..request(&url, SECRET) };
        let error = client.token(&request).await.unwrap_err().to_string();
        assert!(!error.contains("s3cret") && !error.contains(&basic), "{error}");
        assert!(error.contains(&format!("http://{address}/token")) && !error.contains("tenant"), "{error}");
        assert!(error.contains("got secret ••••••"), "{error}");
    }

    #[tokio::test]
    async fn unusable_answers_are_errors_that_quote_no_token() {
        let cases: [(u16, &'static str, &str); 5] = [
            (200, r#"{"access_token":"tok-123456789","token_type":"mac"}"#, "of type `mac`"),
            (200, r#"{"access_token":"tok-123456789"}"#, "`token_type` is missing"),
            (
                200,
                r#"{"access_token":"tok-123456789","token_type":"Bearer","expires_in":[1]}"#,
                "`expires_in`",
            ),
            (200, r#"{"access_token":"tok-123456789" oops"#, "not a JSON token response"),
            (302, "", "redirect"),
        ];
        for (status, body, expected) in cases {
            let address = canned(status, body).await;
            let url = format!("http://{address}/token");
            let error = OAuthClient::new(http()).token(&request(&url, SECRET)).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("tok-123456789") && !error.contains(SECRET), "{error}");
        }
    }

    #[tokio::test]
    async fn a_token_without_expiry_is_kept_and_a_string_expiry_is_understood() {
        for body in [
            r#"{"access_token":"tok-a","token_type":"bearer"}"#,
            r#"{"access_token":"tok-a","token_type":"Bearer","expires_in":"3599"}"#,
        ] {
            let address = canned(200, body).await;
            let url = format!("http://{address}/token");
            let client = OAuthClient::new(http());
            assert_eq!(client.token(&request(&url, SECRET)).await.unwrap().as_str(), "tok-a");
            // The canned server would answer again; the cache must not ask.
            assert_eq!(client.token(&request(&url, SECRET)).await.unwrap().as_str(), "tok-a");
        }
    }

    #[tokio::test]
    async fn insecure_or_malformed_token_urls_are_refused_before_sending() {
        let client = OAuthClient::new(http());
        for (url, expected) in [
            ("http://auth.example.com/token", "unencrypted"),
            ("https://user:pw@auth.example.com/token", "user info"),
            ("ftp://auth.example.com/token", "only https"),
            ("not a url", "not an absolute URL"),
        ] {
            let error = client.token(&request(url, SECRET)).await.unwrap_err();
            assert!(matches!(error, OAuthError::InvalidTokenUrl { .. }), "{error:?}");
            let text = error.to_string();
            assert!(text.contains(expected) && !text.contains("pw@"), "{text}");
        }
        let error = client.token(&request("http://127.0.0.1:9/token", SECRET)).await.unwrap_err();
        assert!(matches!(error, OAuthError::Transport { .. }), "{error:?}");
        assert!(!error.to_string().contains(SECRET));
    }
}
