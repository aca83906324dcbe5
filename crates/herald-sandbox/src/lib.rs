//! Emulated providers, so that flows run end to end without real accounts.
//!
//! herald started with `--sandbox URL` sends a callout for `https://HOST/PATH` to `URL/HOST/PATH`; the
//! sandbox dispatches by HOST to the provider that lives there, answers as that provider does, and keeps
//! every request it received (`GET /_sandbox/requests`).

mod eightbyeight;
mod kixie;
mod oauth;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use eightbyeight::EightByEightOptions;
pub use kixie::KixieOptions;
pub use oauth::{OAUTH_API_HOST, OAUTH_TOKEN_HOST, OAuthOptions};

/// A host whose every answer is a redirect to another host (tests of herald's redirect refusal).
pub const REDIRECT_HOST: &str = "redirect.sandbox.test";

/// What the emulated providers accept.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    pub kixie: KixieOptions,
    pub eight_by_eight: EightByEightOptions,
    /// The OAuth 2.0 client credentials server at `auth.sandbox.test` and its API at `api.sandbox.test`.
    pub oauth: OAuthOptions,
}

/// One request as the sandbox received it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceivedRequest {
    pub sequence: u64,
    pub host: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The JSON body, or the body as a string when it is not JSON.
    pub body: Value,
    pub received_at: String,
    /// Microseconds since the Unix epoch, for speed-to-lead measurements across processes.
    pub received_unix_micros: i64,
    /// The HTTP status the sandbox answered.
    pub status: u16,
}

#[derive(Clone)]
pub struct Sandbox {
    state: Arc<SandboxState>,
}

struct SandboxState {
    options: SandboxOptions,
    requests: Mutex<Vec<ReceivedRequest>>,
    eight_by_eight: eightbyeight::RateLimiter,
    oauth: oauth::OAuthState,
}

impl Sandbox {
    pub fn new(options: SandboxOptions) -> Sandbox {
        Sandbox {
            state: Arc::new(SandboxState {
                options,
                requests: Mutex::new(Vec::new()),
                eight_by_eight: eightbyeight::RateLimiter::default(),
                oauth: oauth::OAuthState::default(),
            }),
        }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Revokes every OAuth access token issued so far, so that the next API call answers 401 and the
    /// client must fetch a new one. Returns how many were revoked.
    pub fn revoke_oauth_tokens(&self) -> usize {
        self.state.oauth.revoke_all()
    }

    /// How many OAuth access tokens `auth.sandbox.test` has issued (revoked ones included).
    pub fn oauth_tokens_issued(&self) -> u64 {
        self.state.oauth.issued()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/_sandbox/requests", get(list_requests).delete(clear_requests))
            .route("/_sandbox/oauth/tokens", get(oauth_tokens).delete(revoke_oauth_tokens))
            .route("/_sandbox/health", get(|| async { "ok" }))
            .route("/{host}/{*path}", axum::routing::any(provider))
            .with_state(self.clone())
    }

    /// Serves until the listener fails or the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    fn record(&self, request: ReceivedRequest) {
        if let Ok(mut requests) = self.state.requests.lock() {
            let sequence = requests.len() as u64 + 1;
            requests.push(ReceivedRequest { sequence, ..request });
        }
    }
}

#[derive(Deserialize)]
struct RequestFilter {
    host: Option<String>,
}

async fn list_requests(State(sandbox): State<Sandbox>, Query(filter): Query<RequestFilter>) -> Response {
    let requests: Vec<ReceivedRequest> = sandbox
        .requests()
        .into_iter()
        .filter(|r| filter.host.as_ref().is_none_or(|h| h.eq_ignore_ascii_case(&r.host)))
        .collect();
    axum::Json(requests).into_response()
}

async fn clear_requests(State(sandbox): State<Sandbox>) -> StatusCode {
    if let Ok(mut requests) = sandbox.state.requests.lock() {
        requests.clear();
    }
    StatusCode::NO_CONTENT
}

/// `{"issued": N, "held": M}`: tokens issued since the start, and those not revoked.
async fn oauth_tokens(State(sandbox): State<Sandbox>) -> Response {
    let held = sandbox.state.oauth.held();
    axum::Json(serde_json::json!({"issued": sandbox.oauth_tokens_issued(), "held": held})).into_response()
}

async fn revoke_oauth_tokens(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.revoke_oauth_tokens();
    StatusCode::NO_CONTENT
}

/// What an emulated provider answers.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
    /// Extra response headers (`retry-after`, ...).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: StatusCode, body: Value) -> Answer {
        Answer { status, content_type: "application/json", body: body.to_string(), headers: Vec::new() }
    }

    pub fn text(status: StatusCode, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            headers: Vec::new(),
        }
    }
}

async fn provider(
    State(sandbox): State<Sandbox>,
    Path((host, path)): Path<(String, String)>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Utc::now();
    let host = host.to_ascii_lowercase();
    let path = format!("/{path}");
    let answer = match host.as_str() {
        "apig.kixie.com" => kixie::handle(&sandbox.state.options.kixie, &method, &path, &body),
        OAUTH_TOKEN_HOST => oauth::handle_token(
            &sandbox.state.options.oauth,
            &sandbox.state.oauth,
            u64::try_from(received.timestamp_millis()).unwrap_or(0),
            &method,
            &path,
            &headers,
            &body,
        ),
        OAUTH_API_HOST => oauth::handle_api(
            &sandbox.state.oauth,
            u64::try_from(received.timestamp_millis()).unwrap_or(0),
            &method,
            &path,
            &headers,
            &body,
        ),
        // A hostile API for tests: every request is redirected to another host.
        REDIRECT_HOST => Answer {
            status: StatusCode::FOUND,
            content_type: "text/plain; charset=utf-8",
            body: "Moved".into(),
            headers: vec![("location", format!("https://elsewhere.example{path}"))],
        },
        "sms.8x8.com"
        | "sms.us.8x8.com"
        | "sms.8x8.uk"
        | "sms.8x8.id"
        | "chatapps.8x8.com"
        | "chatapps.us.8x8.com"
        | "chatapps.8x8.uk"
        | "chatapps.8x8.id" => eightbyeight::handle(
            &sandbox.state.options.eight_by_eight,
            &sandbox.state.eight_by_eight,
            &host,
            u64::try_from(received.timestamp_millis()).unwrap_or(0),
            &method,
            &path,
            &headers,
            &body,
        ),
        _ => Answer::json(
            StatusCode::BAD_GATEWAY,
            serde_json::json!({"error": format!("the sandbox emulates no provider at {host}")}),
        ),
    };
    let query_text = (!query.is_empty())
        .then(|| query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    sandbox.record(ReceivedRequest {
        sequence: 0,
        host,
        method: method.to_string(),
        path,
        query: query_text,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
        received_at: received.to_rfc3339_opts(SecondsFormat::Micros, true),
        received_unix_micros: received.timestamp_micros(),
        status: answer.status.as_u16(),
    });
    let mut response = (answer.status, [("content-type", answer.content_type)], answer.body).into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
