//! Emulated providers, so that flows run end to end without real accounts.
//!
//! herald started with `--sandbox URL` sends a callout for `https://HOST/PATH` to `URL/HOST/PATH`; the
//! sandbox dispatches by HOST to the provider that lives there, answers as that provider does, and keeps
//! every request it received (`GET /_sandbox/requests`).
//!
//! The providers themselves are not here. Each provider's emulator lives in its folder of
//! `herald-providers`, beside its connector, as a state machine that does no I/O
//! (`herald_providers::emulator`); the sandbox finds them through the provider registry
//! (`Provider::all()`, each connector's `emulator()` and its hosts) and is their driver, in the manner
//! of quinn-proto: it receives HTTP, hands each request to the emulator of its host, and performs the
//! effects it gets back. What the sandbox keeps is what belongs to no provider: the request log, the
//! messages accepted and the deduplication of resends (`/_sandbox/messages`), fault injection (5xx,
//! 429, latency, a slow answer, a connection cut after the message was accepted: `/_sandbox/faults`),
//! webhook delivery with retries on 8x8's schedule (`/_sandbox/webhooks`, `/_sandbox/receipts`,
//! `/_sandbox/inbound`), the control API, and the hosts that are not messaging providers: an OAuth 2.0
//! server and an API that wants its tokens (`oauth.rs`), and a host that only redirects.

mod client;
mod faults;
mod oauth;
mod receipts;
mod registry;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, SecondsFormat, Utc};
use herald_providers::Provider;
use herald_providers::emulator::{self, Answer, Emulation, Emulator, Env, Fault, Request};
use serde::de::{DeserializeOwned, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

pub use faults::FaultConfig;
pub use oauth::{OAUTH_API_HOST, OAUTH_TOKEN_HOST, OAuthOptions};
pub use receipts::{Inbound, ReceiptAttempt, ReceiptOptions, WebhookTarget};
pub use registry::SentMessage;

/// A host whose every answer is a redirect to another host (tests of herald's redirect refusal).
pub const REDIRECT_HOST: &str = "redirect.sandbox.test";

/// An emulator the registry lists, with the provider it belongs to.
struct Listed {
    provider: Provider,
    emulator: &'static dyn Emulator,
}

/// Every emulator of the provider registry, in its order.
fn emulators() -> &'static [Listed] {
    static EMULATORS: OnceLock<Vec<Listed>> = OnceLock::new();
    EMULATORS.get_or_init(|| {
        Provider::all()
            .filter_map(|provider| Some(Listed { provider, emulator: provider.connector().emulator()? }))
            .collect()
    })
}

/// The hosts of the emulated messaging providers, in the registry's order: the sandbox answers as a
/// provider on these, and faults, webhooks and inbound messages apply to these only.
pub fn provider_hosts() -> Vec<&'static str> {
    emulators().iter().flat_map(|listed| listed.emulator.hosts().iter().copied()).collect()
}

/// The keys of the options file the sandbox reads itself; every other key belongs to an emulator.
const SANDBOX_KEYS: [&str; 4] = ["oauth", "faults", "webhooks", "receipts"];

/// Every key the options file may hold: the sandbox's, then the emulators' in the registry's order.
fn option_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = SANDBOX_KEYS.to_vec();
        for key in emulators().iter().flat_map(|listed| listed.emulator.option_keys().iter().copied()) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    })
}

/// The emulator that checks `key` of the options file (the first that reads it).
fn emulator_reading(key: &str) -> Option<&'static dyn Emulator> {
    emulators().iter().map(|listed| listed.emulator).find(|e| e.option_keys().contains(&key))
}

/// What the emulated providers accept, and the runtime settings the control API can change later.
/// Every key has a default, so a JSON file needs only what differs.
///
/// The provider keys (`kixie`, `eight_by_eight`, ...) belong to the emulators: each checks its own and
/// fills in its defaults, when the file is read or a key is set ([`SandboxOptions::set_section`]). An
/// unknown key, or an unknown field inside one, is an error.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxOptions {
    /// The OAuth 2.0 client credentials server at `auth.sandbox.test` and its API at `api.sandbox.test`.
    pub oauth: OAuthOptions,
    /// Faults in force from the start, by host (as `PUT /_sandbox/faults/{host}`).
    pub faults: BTreeMap<String, FaultConfig>,
    /// Account-level webhooks from the start, by host (as `PUT /_sandbox/webhooks/{host}`).
    pub webhooks: BTreeMap<String, WebhookTarget>,
    /// As `PUT /_sandbox/receipts`.
    pub receipts: ReceiptOptions,
    /// Every emulator's keys, checked and complete.
    #[serde(flatten)]
    sections: Map<String, Value>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        let mut sections = Map::new();
        for key in option_keys().iter().filter(|k| !SANDBOX_KEYS.contains(k)) {
            if let Some(Ok(complete)) = emulator_reading(key).map(|e| e.options(key, None)) {
                sections.insert((*key).to_string(), complete);
            }
        }
        SandboxOptions {
            oauth: OAuthOptions::default(),
            faults: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            receipts: ReceiptOptions::default(),
            sections,
        }
    }
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

    /// A provider's key of the options (`kixie`, `eight_by_eight`, ...), complete with its defaults.
    pub fn section(&self, key: &str) -> Option<&Value> {
        self.sections.get(key)
    }

    /// Sets a provider's key of the options, as the options file would: the emulator that reads it
    /// checks it and fills in the defaults of what `value` leaves out.
    pub fn set_section(&mut self, key: &str, value: impl Serialize) -> Result<(), String> {
        let value = serde_json::to_value(value).map_err(|e| format!("{key}: {e}"))?;
        let complete = check_section(key, Some(&value))?;
        self.sections.insert(key.to_string(), complete);
        Ok(())
    }

    /// These options with a provider's key set, as [`SandboxOptions::set_section`].
    pub fn with_section(mut self, key: &str, value: impl Serialize) -> Result<SandboxOptions, String> {
        self.set_section(key, value)?;
        Ok(self)
    }
}

/// A provider key of the options file, checked and completed by the emulator that reads it.
fn check_section(key: &str, given: Option<&Value>) -> Result<Value, String> {
    let Some(emulator) = emulator_reading(key) else {
        return Err(format!(
            "no emulated provider reads the option {key}; use one of {}",
            option_keys().join(", ")
        ));
    };
    emulator.options(key, given).map_err(|e| format!("{key}: {e}"))
}

impl<'de> Deserialize<'de> for SandboxOptions {
    /// Reads the sandbox's own keys as their types, and hands every other key to the emulator that
    /// reads it, as the file goes: an error points at the key it is about.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionsVisitor;

        impl<'de> Visitor<'de> for OptionsVisitor {
            type Value = SandboxOptions;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the sandbox options, a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SandboxOptions, A::Error> {
                let mut options = SandboxOptions::default();
                let mut seen: Vec<String> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                    match key.as_str() {
                        "oauth" => options.oauth = map.next_value()?,
                        "faults" => options.faults = map.next_value()?,
                        "webhooks" => options.webhooks = map.next_value()?,
                        "receipts" => options.receipts = map.next_value()?,
                        other if emulator_reading(other).is_some() => {
                            let given: Value = map.next_value()?;
                            let complete = check_section(other, Some(&given)).map_err(A::Error::custom)?;
                            options.sections.insert(key.clone(), complete);
                        }
                        other => return Err(A::Error::unknown_field(other, option_keys())),
                    }
                    seen.push(key);
                }
                Ok(options)
            }
        }

        deserializer.deserialize_map(OptionsVisitor)
    }
}

fn known_host(host: &str) -> Result<String, String> {
    let host = host.to_ascii_lowercase();
    if emulators().iter().any(|listed| listed.emulator.hosts().contains(&host.as_str())) {
        Ok(host)
    } else {
        Err(format!(
            "the sandbox emulates no messaging provider at {host}; use one of {}",
            provider_hosts().join(", ")
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
    /// The JSON body; a form-encoded body (`application/x-www-form-urlencoded`) as a JSON object of its
    /// fields; otherwise the body as a string.
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

/// One emulated provider: its account, and the hosts it answers on.
struct Emulated {
    /// The provider's name, as `/_sandbox/messages` lists it.
    provider: &'static str,
    hosts: &'static [&'static str],
    /// Called for one request at a time: the emulation is a state machine.
    account: Mutex<Box<dyn Emulation>>,
}

impl Emulated {
    /// The account, for one call. An emulator that panicked in an earlier call has left nothing half
    /// done that matters more than answering the next request, so a poisoned lock is taken as it is.
    fn account(&self) -> MutexGuard<'_, Box<dyn Emulation>> {
        self.account.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct SandboxState {
    options: SandboxOptions,
    requests: Mutex<Vec<ReceivedRequest>>,
    emulated: Vec<Emulated>,
    oauth: oauth::OAuthState,
    faults: faults::Faults,
    registry: registry::Registry,
    webhooks: Mutex<BTreeMap<String, WebhookTarget>>,
    receipts: Mutex<ReceiptOptions>,
    receipt_log: Mutex<Vec<ReceiptAttempt>>,
}

/// The clock and random bits of a control call (an inbound message, a fault answer's envelope).
struct ControlEnv {
    now: DateTime<Utc>,
}

impl Env for ControlEnv {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn random(&mut self) -> u128 {
        rand::random()
    }
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
        let emulated = emulators()
            .iter()
            .map(|listed| {
                let own: Map<String, Value> = listed
                    .emulator
                    .option_keys()
                    .iter()
                    .filter_map(|key| Some(((*key).to_string(), options.sections.get(*key)?.clone())))
                    .collect();
                Emulated {
                    provider: listed.provider.name(),
                    hosts: listed.emulator.hosts(),
                    account: Mutex::new(listed.emulator.start(&own)),
                }
            })
            .collect();
        Sandbox {
            state: Arc::new(SandboxState {
                requests: Mutex::new(Vec::new()),
                emulated,
                oauth: oauth::OAuthState::default(),
                faults,
                registry: registry::Registry::default(),
                webhooks: Mutex::new(webhooks),
                receipts: Mutex::new(options.receipts.clone()),
                receipt_log: Mutex::new(Vec::new()),
                options,
            }),
        }
    }

    /// The emulated provider at `host` (lower case).
    fn emulated(&self, host: &str) -> Option<&Emulated> {
        self.state.emulated.iter().find(|e| e.hosts.contains(&host))
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

    /// Whether `phone` texted a STOP word to `sender` (and not START since), at a provider that keeps
    /// such opt-outs itself.
    pub fn opted_out(&self, sender: &str, phone: &str) -> bool {
        let pair = (sender.to_string(), phone.to_string());
        self.opt_outs().contains(&pair)
    }

    /// The opt-outs every emulated provider keeps, as `(sender, phone)`.
    fn opt_outs(&self) -> Vec<(String, String)> {
        self.state.emulated.iter().flat_map(|e| e.account().opt_outs()).collect()
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

    /// Answers a request to a host that is not a messaging provider.
    fn answer_other(
        &self,
        host: &str,
        received: DateTime<Utc>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let state = &self.state;
        let now_millis = u64::try_from(received.timestamp_millis()).unwrap_or(0);
        match host {
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
            REDIRECT_HOST => Answer::text(StatusCode::FOUND, "Moved")
                .with_header("location", format!("https://elsewhere.example{path}")),
            _ => Answer::json(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("the sandbox emulates no provider at {host}")}),
            ),
        }
    }

    /// Hands a request to the emulated provider at `host`, and schedules the receipts of the messages
    /// it accepted.
    fn answer_emulated(
        &self,
        emulated: &Emulated,
        host: &str,
        received: DateTime<Utc>,
        request: &Request<'_>,
    ) -> Answer {
        let state = &self.state;
        let account_webhook = state.webhooks.lock().ok().and_then(|w| w.get(host).cloned());
        let mut world = state
            .registry
            .intake(host, emulated.provider, received)
            .with_account_webhook(account_webhook.is_some());
        let mut account = emulated.account();
        let answer = account.answer(request, &mut world);
        let accepted = world.take_new();
        if !accepted.is_empty() {
            // Built before any hang or reset: the provider has the message whatever becomes of the answer.
            let options = self.receipt_options();
            let receipts = receipts::receipts_of(
                account.as_ref(),
                &accepted,
                &options,
                account_webhook.as_ref(),
                &mut world,
            );
            drop(account);
            receipts::schedule(self, host, receipts, options);
        }
        answer
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
    let host = inbound.host.to_ascii_lowercase();
    let Some(emulated) = sandbox.emulated(&host) else {
        return control_error(StatusCode::NOT_FOUND, format!("the sandbox emulates no provider at {host}"));
    };
    let target = sandbox.state.webhooks.lock().ok().and_then(|w| w.get(&host).cloned());
    let message = emulator::Inbound {
        from: &inbound.from,
        to: &inbound.to,
        text: &inbound.text,
        subaccount: inbound.subaccount.as_deref(),
    };
    let account = target.as_ref().map(WebhookTarget::view);
    let pair = (inbound.to.clone(), inbound.from.clone());
    let opted_out_before = emulated.account().opt_outs().contains(&pair);
    let webhook = emulated.account().inbound(&message, account.as_ref(), &mut ControlEnv { now: Utc::now() });
    let opted_out = emulated.account().opt_outs().contains(&pair);
    if webhook.url.is_none() && opted_out != opted_out_before {
        // A provider that acts on STOP and START itself (Twilio) did what the request was for,
        // webhook or not.
        let opt_out = json!({"sender": inbound.to, "phone": inbound.from, "opted_out": opted_out});
        return axum::Json(json!({"posted": null, "answered": null, "error": null, "opt_out": opt_out}))
            .into_response();
    }
    if webhook.url.is_none() {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "posted": webhook.logged,
                "answered": null,
                "error": format!("no webhook for {host}: PUT /_sandbox/webhooks/{host} first"),
            })),
        )
            .into_response();
    }
    let logged = webhook.logged.clone();
    let options = sandbox.receipt_options();
    let post = receipts::Post { host, event: "inbound", duplicate: false, webhook };
    let result = receipts::deliver(&sandbox, post, &options).await;
    axum::Json(json!({"posted": logged, "answered": result.as_ref().ok(), "error": result.err()}))
        .into_response()
}

async fn list_opt_outs(State(sandbox): State<Sandbox>) -> Response {
    let list: Vec<Value> = sandbox
        .opt_outs()
        .into_iter()
        .map(|(sender, phone)| json!({"sender": sender, "phone": phone}))
        .collect();
    axum::Json(list).into_response()
}

async fn clear_opt_outs(State(sandbox): State<Sandbox>) -> StatusCode {
    for emulated in &sandbox.state.emulated {
        emulated.account().clear_opt_outs();
    }
    StatusCode::NO_CONTENT
}

/// The body as the request log keeps it: the JSON body, a form as an object of its fields, or else
/// the body as text. `json` is the body parsed once, for the log and for the emulator.
fn recorded_body(headers: &HeaderMap, body: &[u8], json: Option<Value>) -> Value {
    if let Some(json) = json {
        return json;
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form {
        return emulator::form_as_json(&emulator::form_fields(body));
    }
    Value::String(String::from_utf8_lossy(body).into())
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

/// The provider's own answer to an injected 5xx or 429 (a plain JSON error at a host no emulator
/// answers on); a 429 carries `Retry-After`.
fn fault_answer(emulated: Option<&Emulated>, failure: &faults::Failure) -> Answer {
    let (fault, retry_after) = match failure {
        faults::Failure::Error => (Fault::ServerError, None),
        faults::Failure::TooMany { retry_after } => {
            (Fault::TooManyRequests { retry_after_secs: *retry_after }, Some(*retry_after))
        }
    };
    let answer = match emulated {
        Some(emulated) => emulated.account().fault(fault, &mut ControlEnv { now: Utc::now() }),
        None if retry_after.is_some() => {
            Answer::json(StatusCode::TOO_MANY_REQUESTS, json!({"error": "Too many requests"}))
        }
        None => Answer::json(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "Internal server error"})),
    };
    match retry_after {
        Some(seconds) => answer.with_header("retry-after", seconds.to_string()),
        None => answer,
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
    let plan = sandbox.state.faults.draw(&host);
    // Parsed once, for the emulator and for the request log.
    let json = serde_json::from_slice::<Value>(&body).ok();
    if let Some(latency) = plan.latency {
        tokio::time::sleep(latency).await;
    }
    let emulated = sandbox.emulated(&host);
    let answer = match (&plan.failure, emulated) {
        (Some(failure), _) => fault_answer(emulated, failure),
        (None, Some(emulated)) => {
            let request =
                Request { method: &method, path: &path, headers: &headers, body: &body, json: json.as_ref() };
            sandbox.answer_emulated(emulated, &host, received, &request)
        }
        (None, None) => sandbox.answer_other(&host, received, &method, &path, &headers, &body),
    };
    let recorded = recorded_body(&headers, &body, json);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_emulator_claims_a_key_or_a_host_the_sandbox_keeps_for_itself() {
        assert!(!emulators().is_empty());
        for listed in emulators() {
            for key in listed.emulator.option_keys() {
                assert!(!SANDBOX_KEYS.contains(key), "{}: {key}", listed.provider);
            }
            for host in listed.emulator.hosts() {
                assert!(![OAUTH_TOKEN_HOST, OAUTH_API_HOST, REDIRECT_HOST].contains(host), "{host}");
            }
        }
    }

    #[test]
    fn default_options_hold_every_emulator_key_complete_and_refuse_unknown_ones() {
        let defaults = SandboxOptions::default();
        for key in option_keys().iter().filter(|k| !SANDBOX_KEYS.contains(k)) {
            let section = defaults.section(key).unwrap_or_else(|| panic!("no default for {key}"));
            assert!(section.is_object(), "{key}: {section}");
            let refused = defaults.clone().with_section(key, json!({"no_such_field": 1})).unwrap_err();
            assert!(refused.starts_with(&format!("{key}: ")), "{refused}");
        }
        let unknown = defaults.with_section("no_such_key", json!({})).unwrap_err();
        assert!(unknown.contains("no emulated provider reads the option no_such_key"), "{unknown}");
    }

    #[test]
    fn a_section_set_in_code_is_completed_and_read_back_from_a_file_alike() {
        let key = option_keys().iter().find(|k| !SANDBOX_KEYS.contains(k)).expect("an emulator key");
        let complete = SandboxOptions::default().section(key).cloned().expect("its default");
        let set = SandboxOptions::default().with_section(key, json!({})).unwrap();
        assert_eq!(set.section(key), Some(&complete), "an empty section is the defaults");
        let file = serde_json::to_value(&set).unwrap();
        let read: SandboxOptions = serde_json::from_value(file).unwrap();
        assert_eq!(read.section(key), Some(&complete));
        let twice = serde_json::from_str::<SandboxOptions>(&format!("{{\"{key}\": {{}}, \"{key}\": {{}}}}"));
        assert!(twice.unwrap_err().to_string().contains("duplicate field"));
    }
}
