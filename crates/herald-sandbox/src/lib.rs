//! Emulated providers, so that flows run end to end without real accounts.
//!
//! herald started with `--sandbox URL` sends a callout for `https://HOST/PATH` to `URL/HOST/PATH`; the
//! sandbox dispatches by HOST to the provider that lives there, answers as that provider does, and keeps
//! every request it received (`GET /_sandbox/requests`).
//!
//! Beyond answering, it behaves as the providers do around a send: it keeps every message it accepted
//! (`/_sandbox/messages`, with 8x8's clientMessageId deduplication), posts delivery receipts and inbound
//! messages to the webhooks set under `/_sandbox/webhooks`, retrying them on 8x8's schedule
//! (`/_sandbox/receipts`, `/_sandbox/inbound`), and injects the faults set under `/_sandbox/faults`
//! (5xx, 429, latency, a slow answer, a connection cut after the message was accepted).

mod client;
mod eightbyeight;
mod faults;
mod kixie;
mod oauth;
mod receipts;
mod registry;
mod twilio;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use eightbyeight::{BLOCKED_DESTINATION, EightByEightOptions};
pub use faults::FaultConfig;
pub use kixie::{BLOCKED_TARGET, KixieOptions};
pub use oauth::{OAUTH_API_HOST, OAUTH_TOKEN_HOST, OAuthOptions};
pub use receipts::{Inbound, ReceiptAttempt, ReceiptOptions, WebhookTarget};
pub use registry::SentMessage;
pub use twilio::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TWILIO_HOST, TwilioOptions, twilio_signature};

/// A host whose every answer is a redirect to another host (tests of herald's redirect refusal).
pub const REDIRECT_HOST: &str = "redirect.sandbox.test";

/// The hosts of the emulated messaging providers: faults, webhooks and inbound messages apply to these.
pub const PROVIDER_HOSTS: [&str; 10] = [
    "sms.8x8.com",
    "sms.us.8x8.com",
    "sms.8x8.uk",
    "sms.8x8.id",
    "chatapps.8x8.com",
    "chatapps.us.8x8.com",
    "chatapps.8x8.uk",
    "chatapps.8x8.id",
    "apig.kixie.com",
    TWILIO_HOST,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    EightByEightSms,
    ChatApps,
    Kixie,
    Twilio,
}

pub(crate) fn provider_of(host: &str) -> Option<Provider> {
    match host {
        "apig.kixie.com" => Some(Provider::Kixie),
        TWILIO_HOST => Some(Provider::Twilio),
        _ => match eightbyeight::product_for_host(host)? {
            eightbyeight::Product::Sms => Some(Provider::EightByEightSms),
            eightbyeight::Product::ChatApps => Some(Provider::ChatApps),
        },
    }
}

/// What the emulated providers accept, and the runtime settings the control API can change later.
/// Every field has a default, so a JSON file needs only what differs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxOptions {
    pub kixie: KixieOptions,
    pub eight_by_eight: EightByEightOptions,
    /// The OAuth 2.0 client credentials server at `auth.sandbox.test` and its API at `api.sandbox.test`.
    pub oauth: OAuthOptions,
    pub twilio: TwilioOptions,
    /// The agent line Kixie's webhooks name.
    pub kixie_line: KixieLine,
    /// Faults in force from the start, by host (as `PUT /_sandbox/faults/{host}`).
    pub faults: BTreeMap<String, FaultConfig>,
    /// Account-level webhooks from the start, by host (as `PUT /_sandbox/webhooks/{host}`).
    pub webhooks: BTreeMap<String, WebhookTarget>,
    /// As `PUT /_sandbox/receipts`.
    pub receipts: ReceiptOptions,
}

impl SandboxOptions {
    /// Why these options cannot run, if they cannot. `Sandbox::new` does not refuse bad values (it
    /// clamps them); a caller loading options from a file should call this first.
    pub fn validate(&self) -> Result<(), String> {
        for (host, config) in &self.faults {
            known_host(host)?;
            config.validate().map_err(|e| format!("faults.{host}: {e}"))?;
        }
        for (host, target) in &self.webhooks {
            known_host(host)?;
            target.validate().map_err(|e| format!("webhooks.{host}: {e}"))?;
        }
        self.receipts.validate().map_err(|e| format!("receipts: {e}"))
    }
}

/// The Kixie agent line named in Kixie's webhooks (`from`/`businessnumber` when the request has no
/// `fromNumber`, `userid`, and `email` when the request has none).
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

fn known_host(host: &str) -> Result<String, String> {
    let host = host.to_ascii_lowercase();
    if PROVIDER_HOSTS.contains(&host.as_str()) {
        Ok(host)
    } else {
        Err(format!(
            "the sandbox emulates no messaging provider at {host}; use one of {}",
            PROVIDER_HOSTS.join(", ")
        ))
    }
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
    /// The JSON body; a form post to Twilio as a JSON object of its fields; otherwise the body as a
    /// string.
    pub body: Value,
    pub received_at: String,
    /// Microseconds since the Unix epoch, for speed-to-lead measurements across processes.
    pub received_unix_micros: i64,
    /// The HTTP status the sandbox answered (or began to answer, for a `reset`).
    pub status: u16,
    /// The fault injected into this request: `error`, `rate_429`, `timeout`, `reset` or `timeout+reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
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
    twilio: twilio::RateLimiter,
    opt_outs: twilio::OptOuts,
    faults: faults::Faults,
    registry: registry::Registry,
    webhooks: Mutex<BTreeMap<String, WebhookTarget>>,
    receipts: Mutex<ReceiptOptions>,
    receipt_log: Mutex<Vec<ReceiptAttempt>>,
}

impl Sandbox {
    pub fn new(options: SandboxOptions) -> Sandbox {
        let faults = faults::Faults::default();
        for (host, config) in &options.faults {
            faults.set(&host.to_ascii_lowercase(), config.clone());
        }
        let webhooks = options
            .webhooks
            .iter()
            .map(|(host, target)| (host.to_ascii_lowercase(), target.clone()))
            .collect();
        Sandbox {
            state: Arc::new(SandboxState {
                requests: Mutex::new(Vec::new()),
                eight_by_eight: eightbyeight::RateLimiter::default(),
                oauth: oauth::OAuthState::default(),
                twilio: twilio::RateLimiter::default(),
                opt_outs: twilio::OptOuts::default(),
                faults,
                registry: registry::Registry::default(),
                webhooks: Mutex::new(webhooks),
                receipts: Mutex::new(options.receipts.clone()),
                receipt_log: Mutex::new(Vec::new()),
                options,
            }),
        }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Every message a provider accepted, oldest first.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.state.registry.list()
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn receipt_attempts(&self) -> Vec<ReceiptAttempt> {
        self.state.receipt_log.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// As `PUT /_sandbox/faults/{host}`.
    pub fn set_faults(&self, host: &str, config: FaultConfig) -> Result<(), String> {
        let host = known_host(host)?;
        config.validate()?;
        self.state.faults.set(&host, config);
        Ok(())
    }

    /// As `PUT /_sandbox/webhooks/{host}`.
    pub fn set_webhook(&self, host: &str, target: WebhookTarget) -> Result<(), String> {
        let host = known_host(host)?;
        target.validate()?;
        if let Ok(mut webhooks) = self.state.webhooks.lock() {
            webhooks.insert(host, target);
        }
        Ok(())
    }

    /// As `PUT /_sandbox/receipts`.
    pub fn set_receipt_options(&self, options: ReceiptOptions) -> Result<(), String> {
        options.validate()?;
        if let Ok(mut receipts) = self.state.receipts.lock() {
            *receipts = options;
        }
        Ok(())
    }

    pub fn receipt_options(&self) -> ReceiptOptions {
        self.state.receipts.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Whether `phone` texted a STOP word to the Twilio sender `sender` (and not START since).
    pub fn twilio_opted_out(&self, sender: &str, phone: &str) -> bool {
        self.state.opt_outs.contains(sender, phone)
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
            .route("/_sandbox/faults", get(list_faults))
            .route("/_sandbox/faults/{host}", put(set_faults).delete(clear_faults))
            .route("/_sandbox/messages", get(list_messages).delete(clear_messages))
            .route("/_sandbox/webhooks", get(list_webhooks))
            .route("/_sandbox/webhooks/{host}", put(set_webhook).delete(clear_webhook))
            .route("/_sandbox/receipts", get(list_receipts).put(set_receipts).delete(clear_receipts))
            .route("/_sandbox/receipts/config", get(receipt_config))
            .route("/_sandbox/inbound", post(inbound))
            .route("/_sandbox/optouts", get(list_opt_outs).delete(clear_opt_outs))
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

    /// Hands the request to the provider at `host`; returns its answer and the messages it accepted
    /// for the first time. `recorded` is the body as the request list keeps it (parsed once: 8x8
    /// reads the same JSON).
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        host: &str,
        received: DateTime<Utc>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        recorded: &Value,
    ) -> (Answer, Vec<(SentMessage, registry::Origin)>) {
        let state = &self.state;
        let now_millis = u64::try_from(received.timestamp_millis()).unwrap_or(0);
        let account_webhook = state.webhooks.lock().is_ok_and(|w| w.contains_key(host));
        let mut intake = state
            .registry
            .intake(host, now_millis, received.to_rfc3339_opts(SecondsFormat::Millis, true))
            .with_account_webhook(account_webhook);
        let answer = match host {
            "apig.kixie.com" => kixie::handle_with(&state.options.kixie, method, path, body, &mut intake),
            TWILIO_HOST => twilio::handle(
                twilio::Request {
                    options: &state.options.twilio,
                    limiter: &state.twilio,
                    opt_outs: &state.opt_outs,
                    now: received,
                    method,
                    path,
                    headers,
                    body,
                },
                &mut intake,
            ),
            OAUTH_TOKEN_HOST => oauth::handle_token(
                &state.options.oauth,
                &state.oauth,
                now_millis,
                method,
                path,
                headers,
                body,
            ),
            OAUTH_API_HOST => oauth::handle_api(&state.oauth, now_millis, method, path, headers, body),
            // A hostile API for tests: every request is redirected to another host.
            REDIRECT_HOST => Answer {
                status: StatusCode::FOUND,
                content_type: "text/plain; charset=utf-8",
                body: "Moved".into(),
                headers: vec![("location", format!("https://elsewhere.example{path}"))],
            },
            _ if eightbyeight::product_for_host(host).is_some() => eightbyeight::handle_with(
                &state.options.eight_by_eight,
                &state.eight_by_eight,
                host,
                now_millis,
                method,
                path,
                headers,
                recorded,
                &mut intake,
            ),
            _ => Answer::json(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("the sandbox emulates no provider at {host}")}),
            ),
        };
        (answer, intake.into_new())
    }
}

#[derive(Deserialize)]
struct RequestFilter {
    host: Option<String>,
}

impl RequestFilter {
    fn admits(&self, host: &str) -> bool {
        self.host.as_ref().is_none_or(|h| h.eq_ignore_ascii_case(host))
    }
}

#[derive(Deserialize)]
struct RequestsQuery {
    host: Option<String>,
    /// Only the requests whose `sequence` is greater: a client that polls while requests arrive reads
    /// each one once, instead of everything so far at every poll.
    after: Option<u64>,
}

async fn list_requests(State(sandbox): State<Sandbox>, Query(query): Query<RequestsQuery>) -> Response {
    let filter = RequestFilter { host: query.host };
    let after = query.after.unwrap_or(0);
    // Sequences grow by one from 1, so the requests after `after` start at index `after`; only those
    // that are listed are copied.
    let requests: Vec<ReceivedRequest> = match sandbox.state.requests.lock() {
        Ok(all) => all
            .get(usize::try_from(after).unwrap_or(usize::MAX).min(all.len())..)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.sequence > after && filter.admits(&r.host))
            .cloned()
            .collect(),
        Err(_) => Vec::new(),
    };
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
    axum::Json(json!({"issued": sandbox.oauth_tokens_issued(), "held": held})).into_response()
}

async fn revoke_oauth_tokens(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.revoke_oauth_tokens();
    StatusCode::NO_CONTENT
}

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// A control body; an empty one is `{}` (all defaults).
fn parse_control<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

async fn list_faults(State(sandbox): State<Sandbox>) -> Response {
    axum::Json(sandbox.state.faults.list()).into_response()
}

async fn set_faults(State(sandbox): State<Sandbox>, Path(host): Path<String>, body: Bytes) -> Response {
    let host = match known_host(&host) {
        Ok(host) => host,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    let config: FaultConfig = match parse_control(&body) {
        Ok(config) => config,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    match sandbox.set_faults(&host, config.clone()) {
        Ok(()) => axum::Json(config).into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(sandbox): State<Sandbox>, Path(host): Path<String>) -> StatusCode {
    sandbox.state.faults.clear(&host.to_ascii_lowercase());
    StatusCode::NO_CONTENT
}

async fn list_messages(State(sandbox): State<Sandbox>, Query(filter): Query<RequestFilter>) -> Response {
    let messages: Vec<SentMessage> =
        sandbox.messages().into_iter().filter(|m| filter.admits(&m.host)).collect();
    axum::Json(messages).into_response()
}

async fn clear_messages(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.state.registry.clear();
    StatusCode::NO_CONTENT
}

async fn list_webhooks(State(sandbox): State<Sandbox>) -> Response {
    let webhooks = sandbox.state.webhooks.lock().map(|w| w.clone()).unwrap_or_default();
    axum::Json(webhooks).into_response()
}

async fn set_webhook(State(sandbox): State<Sandbox>, Path(host): Path<String>, body: Bytes) -> Response {
    if let Err(e) = known_host(&host) {
        return control_error(StatusCode::NOT_FOUND, e);
    }
    let target: WebhookTarget = match parse_control(&body) {
        Ok(target) => target,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    match sandbox.set_webhook(&host, target.clone()) {
        Ok(()) => axum::Json(target).into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_webhook(State(sandbox): State<Sandbox>, Path(host): Path<String>) -> StatusCode {
    if let Ok(mut webhooks) = sandbox.state.webhooks.lock() {
        webhooks.remove(&host.to_ascii_lowercase());
    }
    StatusCode::NO_CONTENT
}

async fn list_receipts(State(sandbox): State<Sandbox>, Query(filter): Query<RequestFilter>) -> Response {
    let attempts: Vec<ReceiptAttempt> =
        sandbox.receipt_attempts().into_iter().filter(|a| filter.admits(&a.host)).collect();
    axum::Json(attempts).into_response()
}

async fn set_receipts(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let options: ReceiptOptions = match parse_control(&body) {
        Ok(options) => options,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    match sandbox.set_receipt_options(options.clone()) {
        Ok(()) => axum::Json(options).into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_receipts(State(sandbox): State<Sandbox>) -> StatusCode {
    if let Ok(mut log) = sandbox.state.receipt_log.lock() {
        log.clear();
    }
    StatusCode::NO_CONTENT
}

async fn receipt_config(State(sandbox): State<Sandbox>) -> Response {
    axum::Json(sandbox.receipt_options()).into_response()
}

/// Makes the provider post an inbound message to the host's webhook, and waits for the first attempt.
async fn inbound(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let inbound: Inbound = match serde_json::from_slice(&body) {
        Ok(inbound) => inbound,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    if inbound.from.trim().is_empty() || inbound.to.trim().is_empty() {
        return control_error(StatusCode::BAD_REQUEST, "from and to are required");
    }
    let post = match receipts::inbound_post(&sandbox, &inbound) {
        Ok(post) => post,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    if post.url.is_empty() {
        let host = inbound.host.to_ascii_lowercase();
        // Twilio acts on STOP and START itself, webhook or not: the request did what it was for.
        let keyword = herald_sms::classify_keyword(&inbound.text);
        if host == TWILIO_HOST
            && let Some(keyword @ (herald_sms::Keyword::OptOut | herald_sms::Keyword::OptIn)) = keyword
        {
            let opt_out = json!({
                "sender": inbound.to,
                "phone": inbound.from,
                "opted_out": keyword == herald_sms::Keyword::OptOut,
            });
            return axum::Json(json!({"posted": null, "answered": null, "error": null, "opt_out": opt_out}))
                .into_response();
        }
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "posted": post.logged_body,
                "answered": null,
                "error": format!("no webhook for {host}: PUT /_sandbox/webhooks/{host} first"),
            })),
        )
            .into_response();
    }
    let logged = post.logged_body.clone();
    let options = sandbox.receipt_options();
    let result = receipts::deliver(&sandbox, post, &options).await;
    axum::Json(json!({"posted": logged, "answered": result.as_ref().ok(), "error": result.err()}))
        .into_response()
}

async fn list_opt_outs(State(sandbox): State<Sandbox>) -> Response {
    let list: Vec<Value> = sandbox
        .state
        .opt_outs
        .list()
        .into_iter()
        .map(|(sender, phone)| json!({"sender": sender, "phone": phone}))
        .collect();
    axum::Json(list).into_response()
}

async fn clear_opt_outs(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.state.opt_outs.clear();
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

fn recorded_body(host: &str, headers: &HeaderMap, body: &[u8]) -> Value {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if host == TWILIO_HOST && form {
        return twilio::form_as_json(&twilio::parse_form(body));
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

/// hyper buffers a response's head and first body bytes and writes them only when its buffer is full or
/// the body waits; a body that ends short of its Content-Length makes it drop the connection, so
/// without the buffer filled the client would get nothing at all. Filling it makes the head and the
/// start of the body reach the client before the cut: what a provider that accepted the message and
/// then lost the connection looks like.
const CUT_PADDING: usize = 420 * 1024;

fn cut_response(answer: &Answer) -> Response {
    let mut sent = answer.body.len() / 2;
    while !answer.body.is_char_boundary(sent) {
        sent -= 1;
    }
    // Blanks after the first half keep what arrives readable as the start of the JSON it was.
    let mut partial = answer.body[..sent].to_string();
    partial.push_str(&" ".repeat(CUT_PADDING));
    let promised = partial.len() + answer.body.len() - sent + 1;
    let body = Body::from_stream(Body::from(partial).into_data_stream());
    let mut response = (answer.status, [("content-type", answer.content_type)], body).into_response();
    response.headers_mut().insert("content-length", axum::http::HeaderValue::from(promised));
    response
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
    let plan = sandbox.state.faults.draw(&host);
    let recorded = recorded_body(&host, &headers, &body);
    if let Some(latency) = plan.latency {
        tokio::time::sleep(latency).await;
    }
    let answer = match plan.failure {
        Some(faults::Failure::Error) => faults::error_answer(&host),
        Some(faults::Failure::TooMany { retry_after }) => faults::too_many_answer(&host, retry_after),
        None => {
            let (answer, accepted) =
                sandbox.dispatch(&host, received, &method, &path, &headers, &body, &recorded);
            // Before any hang or reset: the provider has the message whatever becomes of the answer.
            receipts::schedule(&sandbox, &host, accepted);
            answer
        }
    };
    let query_text = (!query.is_empty())
        .then(|| query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    sandbox.record(ReceivedRequest {
        sequence: 0,
        body: recorded,
        host,
        method: method.to_string(),
        path,
        query: query_text,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        received_at: received.to_rfc3339_opts(SecondsFormat::Micros, true),
        received_unix_micros: received.timestamp_micros(),
        status: answer.status.as_u16(),
        fault: plan.label(),
    });
    if let Some(hang) = plan.hang {
        tokio::time::sleep(hang).await;
    }
    let mut response = if plan.reset {
        cut_response(&answer)
    } else {
        (answer.status, [("content-type", answer.content_type)], answer.body).into_response()
    };
    for (name, value) in answer.headers {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
