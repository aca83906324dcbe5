//! Callouts: choose the principal the running user may use, open its secrets, build the request on the
//! named credential's own host, send it, and read the answer with the provider's rules.

use crate::SecretPlace;
use crate::ledger::{LedgerUpdate, MessageEvent, normalize_sender, planned_rows};
use crate::limits::Wait;
use crate::{Engine, EngineError, now_text};
use chrono::{DateTime, Utc};
use herald_expr::EvalContext;
use herald_flow::{CalloutResult, CompiledFlow, PreparedCallout, RunState, RunUser, SecretSource};
use herald_openapi::{BodyEncoding, Method};
use herald_project::{PrincipalType, Protocol};
use herald_providers::{FailureClass, MessageStatus, OutboundMessage, Provider, Verdict};
use herald_store::{ConsentRow, RunStatus};
use rand::Rng;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

/// Answers larger than this are cut off and the callout fails: no provider answers a send with more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Requests larger than this are not sent: no SMS or WhatsApp send needs more.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How much of a response body a fault message quotes; the whole body stays in the trace.
const FAULT_BODY_CHARS: usize = 300;

/// The decrypted parameters of one principal, wiped from memory when dropped, and any access token
/// fetched with them (masked too, but not readable by formulas).
struct Secrets {
    values: HashMap<String, Zeroizing<String>>,
    tokens: Vec<Zeroizing<String>>,
}

impl SecretSource for Secrets {
    fn secret(&self, parameter: &str) -> Option<Arc<str>> {
        self.values.get(parameter).map(|v| Arc::from(v.as_str()))
    }
}

impl Secrets {
    fn mask(&self, text: &str) -> String {
        mask_secrets(text, self.values.values().chain(self.tokens.iter()).map(|v| v.as_str()))
    }
}

/// Replaces every occurrence of a secret value in `text`. Values shorter than four characters are
/// not masked: they would blank ordinary text and are no secret worth the name.
pub fn mask_secrets<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut masked = text.to_string();
    for secret in secrets {
        if secret.chars().count() >= 4 && masked.contains(secret) {
            masked = masked.replace(secret, herald_flow::MASK);
        }
    }
    masked
}

fn fault(message: String) -> CalloutResult {
    CalloutResult { status: None, body: String::new(), fault: Some(message), micros: 0, left_out: Vec::new() }
}

/// What became of a callout.
pub(crate) enum CalloutOutcome {
    /// Answered (a success or a fault the flow handles), or refused before sending.
    Done(CalloutResult),
    /// Failed in a way worth retrying: try again at `at` (journaled; survives a restart).
    RetryAt { at: DateTime<Utc>, error: String, micros: u64, maybe_arrived: bool },
    /// The request may have reached a provider that cannot recognise a resend: not sent again.
    Unknown { message: String },
    /// A rate limit: nothing was sent; try again after this short wait.
    Park(Duration),
    /// Every concurrent slot of the named credential is taken: try again with a permit.
    ParkOnSlot(Arc<Semaphore>),
    /// A daily budget is spent: nothing was sent; the run waits, durably, until `at`.
    WaitUntil { at: DateTime<Utc>, reason: String },
}

/// What `send` learned beyond the result.
struct Sent {
    result: CalloutResult,
    retry_after: Option<Duration>,
    /// No complete answer came back, and the request may have arrived (a timeout, a reset).
    maybe_arrived: bool,
}

/// The body as it goes on the wire.
fn encode_body(body: &Value, encoding: BodyEncoding) -> (Vec<u8>, &'static str) {
    match (encoding, body) {
        (BodyEncoding::Form, Value::Object(fields)) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                match value {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            form.append_pair(name, &form_text(item));
                        }
                    }
                    other => {
                        form.append_pair(name, &form_text(other));
                    }
                }
            }
            (form.finish().into_bytes(), "application/x-www-form-urlencoded")
        }
        (BodyEncoding::Text, Value::String(text)) => (text.clone().into_bytes(), "text/plain; charset=utf-8"),
        _ => (serde_json::to_vec(body).unwrap_or_default(), "application/json"),
    }
}

fn form_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// The first principal of `external` that the running user's permission sets grant.
    async fn principal_for(&self, external: &str, user: &RunUser) -> Result<(String, PrincipalType), String> {
        let project = &self.inner.project.project;
        let granted = self.permission_sets_of(user).await.map_err(|e| e.to_string())?;
        let Some(definition) = project.external_credentials.get(external) else {
            return Err(format!("external credential {external} is not defined"));
        };
        if definition.def.protocol == Protocol::NoAuthentication && definition.def.principals.is_empty() {
            return Ok((String::new(), PrincipalType::Named));
        }
        for principal in &definition.def.principals {
            let grant = format!("{external}-{}", principal.name);
            let has = granted
                .iter()
                .filter_map(|set| project.permission_sets.get(set))
                .any(|set| set.def.external_credential_principal_access.contains(&grant));
            if has {
                return Ok((principal.name.clone(), principal.principal_type));
            }
        }
        let grants: Vec<String> =
            definition.def.principals.iter().map(|p| format!("{external}-{}", p.name)).collect();
        let sets: Vec<&str> = project
            .permission_sets
            .values()
            .filter(|s| s.def.external_credential_principal_access.iter().any(|g| grants.contains(g)))
            .map(|s| s.def.name.as_str())
            .collect();
        let how = if user.id == crate::AUTOMATION_USER_ID {
            "add it to [automation] permission_sets in herald.toml".to_string()
        } else {
            format!("herald user add creates users with --permission-set; assign it to {}", user.name)
        };
        let assign = if sets.is_empty() {
            format!("create a permission set that grants {} and assign it", grants.join(" or "))
        } else {
            format!("assign permission set {} ({how})", sets.join(" or "))
        };
        Err(format!(
            "user {} has no access to external credential {external}: no assigned permission set grants External Credential Principal Access to {}; {assign}",
            user.name,
            grants.join(" or "),
        ))
    }

    async fn secrets(&self, external: &str, principal: &str, user_id: &str) -> Result<Secrets, String> {
        let sealed =
            self.inner.store.secrets(external, principal, user_id).await.map_err(|e| e.to_string())?;
        let place = SecretPlace::new(external, principal, user_id);
        let mut values = HashMap::new();
        for secret in &sealed {
            let value = self.inner.vault.open_secret(&place, secret).map_err(|e| e.to_string())?;
            values.insert(secret.parameter.clone(), value);
        }
        Ok(Secrets { values, tokens: Vec::new() })
    }

    pub(crate) async fn callout(
        &self,
        flow: &CompiledFlow,
        state: &mut RunState,
        run_id: Option<&str>,
        cx: &EvalContext,
        permit: Option<OwnedSemaphorePermit>,
        ledger: &mut Vec<LedgerUpdate>,
    ) -> Result<CalloutOutcome, EngineError> {
        let done = |result: CalloutResult| Ok(CalloutOutcome::Done(result));
        let Some(credential) = flow.pending_credential(state) else {
            return done(fault("the pending element is not an action".into()));
        };
        let named_name = credential.named_credential.to_string();
        let external = credential.external_credential.to_string();
        let user = state.user.clone();
        let (principal, principal_type) = match self.principal_for(&external, &user).await {
            Ok(found) => found,
            Err(message) => return done(fault(message)),
        };
        let user_id = if principal_type == PrincipalType::PerUser { user.id.as_str() } else { "" };
        let mut secrets = match self.secrets(&external, &principal, user_id).await {
            Ok(secrets) => secrets,
            Err(message) => return done(fault(message)),
        };
        let mut prepared = match flow.prepare_callout(state, &secrets, cx) {
            Ok(prepared) => prepared,
            Err(message) => return done(fault(secrets.mask(&message))),
        };
        let Some(named) = self.inner.project.named_credentials.get(&named_name).cloned() else {
            return done(fault(format!("named credential {named_name} is not loaded")));
        };
        let mut headers = match named.render_headers(&secrets, cx) {
            Ok(headers) => headers,
            Err(message) => return done(fault(secrets.mask(&message))),
        };
        headers.extend(prepared.headers.iter().cloned());
        if named.generate_authorization_header
            && named.protocol == Protocol::Custom
            && let Some(value) = secrets.secret("Authorization")
        {
            // Seed 001's setup: a Custom principal whose `Authorization` parameter holds "Bearer <key>".
            headers.push(("Authorization".into(), value.to_string()));
        }
        if named.generate_authorization_header && named.protocol == Protocol::Basic {
            use base64::Engine as _;
            let user = secrets.secret("username").unwrap_or_else(|| Arc::from(""));
            let password = secrets.secret("password").unwrap_or_else(|| Arc::from(""));
            let token = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
            );
            headers.push(("Authorization".into(), format!("Basic {}", token.as_str())));
        }
        let url = match self.target_url(&named.url, &named.host, &prepared) {
            Ok(url) => url,
            Err(message) => return done(fault(message)),
        };
        // OAuth 2.0 client credentials: a cached access token, fetched before anything is sent.
        let oauth = if named.protocol == Protocol::OAuth2ClientCredentials {
            let key = format!("{external}/{principal}/{user_id}");
            match self.access_token(&external, &key, &secrets).await {
                Ok(token) => {
                    if named.generate_authorization_header {
                        headers.push(("Authorization".into(), format!("Bearer {}", token.as_str())));
                    }
                    secrets.tokens.push(token.clone());
                    Some((key, token))
                }
                Err(message) => return done(fault(secrets.mask(&message))),
            }
        } else {
            None
        };

        // Screening first: the spec judges the body as it will be sent, destinations in E.164 and a
        // batch without the messages left out, so a typed national number or one bad member does not
        // fail a pattern that wants E.164.
        let Screened { messages, left_out } = match self.outbound_messages(&mut prepared) {
            Ok(screened) => screened,
            Err(message) => return Ok(CalloutOutcome::Done(fault(message))),
        };
        if let Some(problem) = self.schema_problems(&prepared) {
            return Ok(CalloutOutcome::Done(fault(secrets.mask(&problem))));
        }

        // Limits come after every check that can refuse the send, so a refused send spends no budget.
        let permit = match permit {
            Some(permit) => Some(permit),
            None => match self.inner.limits.slot(&named_name) {
                Ok(permit) => permit,
                Err(semaphore) => return Ok(CalloutOutcome::ParkOnSlot(semaphore)),
            },
        };
        match self.inner.limits.admit(&named_name, Utc::now()) {
            Ok(()) => {}
            Err(Wait::For(wait)) => return Ok(CalloutOutcome::Park(wait)),
            Err(Wait::Until { at, reason }) => return Ok(CalloutOutcome::WaitUntil { at, reason }),
        }

        // Journal the attempt and its ledger rows before it leaves: after a crash the engine must know
        // it may have arrived.
        flow.mark_sent(state, Utc::now());
        let element = state.pending.as_ref().map(|p| p.element.clone()).unwrap_or_default();
        let rows = planned_rows(
            &messages,
            prepared.provider,
            &named_name,
            &prepared.idempotency_key,
            run_id,
            &element,
            &now_text(),
        );
        if run_id.is_some() || !rows.is_empty() {
            let journal = run_id.map(|run_id| (run_id.to_string(), crate::journal(state)));
            self.write_with_ledger(std::mem::take(ledger), move |tx| {
                for row in &rows {
                    tx.upsert_message(row, &now_text())?;
                }
                if let Some((run_id, snapshot)) = &journal {
                    tx.save_run(run_id, RunStatus::Running, snapshot, None, &now_text())?;
                }
                Ok(())
            })
            .await?;
        }
        let mut sent = self.send(&prepared, url.clone(), headers.clone(), &secrets).await;
        if let Some((key, token)) = oauth.filter(|_| sent.result.status == Some(401)) {
            // The provider refused the token, so nothing was accepted: fetch a fresh one and try once more.
            self.inner.oauth.invalidate_token(&key, &token);
            match self.access_token(&external, &key, &secrets).await {
                Ok(fresh) => {
                    let headers: Vec<(String, String)> = headers
                        .into_iter()
                        .map(|(name, value)| {
                            if name == "Authorization" {
                                (name, format!("Bearer {}", fresh.as_str()))
                            } else {
                                (name, value)
                            }
                        })
                        .collect();
                    secrets.tokens.push(fresh);
                    sent = self.send(&prepared, url, headers, &secrets).await;
                }
                Err(message) => sent.result = fault(secrets.mask(&message)),
            }
        }
        drop(permit);
        let mut outcome = self.judge(flow, state, &prepared, &messages, sent, ledger);
        if let CalloutOutcome::Done(result) = &mut outcome {
            result.left_out = left_out.into_iter().map(|l| (l.destination, l.problem)).collect();
        }
        Ok(outcome)
    }

    /// The messages a prepared send carries, with destinations in E.164, checked before anything is
    /// sent: a destination that cannot be a phone number, a text 8x8 would refuse, or a phone that
    /// opted out. A single message with such a problem refuses the send. A batch goes out without
    /// the messages that have one (they are listed in `left_out`), so one opted-out member does not
    /// stop a campaign; a batch left with no message is refused.
    fn outbound_messages(&self, prepared: &mut PreparedCallout) -> Result<Screened, String> {
        let Some(body) = &prepared.body else { return Ok(Screened::default()) };
        let messages = prepared.provider.outbound_messages(prepared.method.as_str(), &prepared.path, body);
        let batch = messages.len() > 1;
        let mut kept = Vec::with_capacity(messages.len());
        let mut kept_positions = Vec::with_capacity(messages.len());
        let mut left_out = Vec::new();
        for (position, mut message) in messages.into_iter().enumerate() {
            match self.screen(prepared, &mut message) {
                Ok(()) => {
                    kept.push(message);
                    kept_positions.push(position);
                }
                Err(problem) if batch => left_out.push(LeftOut { destination: message.destination, problem }),
                Err(problem) => return Err(format!("{} was not sent: {problem}", prepared.action)),
            }
        }
        if batch && kept.is_empty() {
            let first = left_out.first().map(|l| l.problem.as_str()).unwrap_or_default();
            return Err(format!(
                "{} was not sent: none of its {} messages can go out (the first: {first})",
                prepared.action,
                left_out.len()
            ));
        }
        if let Some(body) = &mut prepared.body {
            if batch {
                rewrite_batch(prepared.provider, body, &kept, &kept_positions);
            } else {
                rewrite_destinations(prepared.provider, body, &kept);
            }
        }
        Ok(Screened { messages: kept, left_out })
    }

    /// Normalizes one message's destination to E.164 and says why it cannot be sent, if it cannot.
    fn screen(&self, prepared: &PreparedCallout, message: &mut OutboundMessage) -> Result<(), String> {
        let country = self.inner.project.project.config.runtime.default_country.as_deref();
        if message.channel == "sms" || message.channel == "whatsapp" || prepared.provider == Provider::Kixie {
            match herald_sms::normalize_e164(&message.destination, country) {
                Ok(e164) => message.destination = e164,
                Err(error) => {
                    return Err(format!(
                        "the destination `{}` is not a phone number that can receive messages: {error}",
                        message.destination
                    ));
                }
            }
        }
        if prepared.provider == Provider::EightByEightSms
            && let Some(text) = &message.text
            && let Some(problem) =
                herald_sms::part_limit_error(&herald_sms::inspect(text), herald_sms::MAX_PARTS_8X8)
        {
            // 8x8 refuses it (code 1004); say why before spending the round trip.
            return Err(format!("the {problem}"));
        }
        if let Some(sender) = self.inner.consent.blocking(&message.destination, message.sender.as_deref()) {
            let of = if sender.is_empty() { String::new() } else { format!(" of {sender}") };
            return Err(format!(
                "{} opted out{of} (a STOP reply); herald does not text a phone that opted out. It can opt back in by replying START",
                message.destination
            ));
        }
        Ok(())
    }

    /// Reads a send's result with the provider's rules and the action's retry policy.
    fn judge(
        &self,
        flow: &CompiledFlow,
        state: &RunState,
        prepared: &PreparedCallout,
        messages: &[OutboundMessage],
        sent: Sent,
        ledger: &mut Vec<LedgerUpdate>,
    ) -> CalloutOutcome {
        let provider = prepared.provider;
        let key = prepared.idempotency_key.clone();
        // A ledger row per message, by its position in the request.
        let positions = 0..messages.len() as i64;
        let mut answer = |events: Vec<(i64, MessageEvent)>| {
            if !events.is_empty() {
                ledger.push(LedgerUpdate::Answer { key: key.clone(), provider, events });
            }
        };
        let Some(error) = sent.result.fault.clone() else {
            let accepted = provider.accepted(sent.result.body.as_bytes());
            let events = positions
                .map(|position| {
                    let event = accepted
                        .get(position as usize)
                        .map(MessageEvent::from_accepted)
                        .unwrap_or_else(|| MessageEvent::new(MessageStatus::Queued, "answer"));
                    (position, event)
                })
                .collect();
            answer(events);
            return CalloutOutcome::Done(sent.result);
        };
        let pending = state.pending.as_ref();
        let attempts = pending.map_or(1, |p| p.attempts);
        if sent.maybe_arrived && !resend_is_recognised(prepared) {
            let message = format!(
                "{error}. The request may have reached {} before the answer was lost, and {} cannot recognise a resend, so herald did not send it again. Check the provider's log, then retry the run if the message did not go out",
                provider.name(),
                provider.name()
            );
            answer(
                positions
                    .map(|p| (p, MessageEvent::failed(MessageStatus::Unknown, "herald", &message)))
                    .collect(),
            );
            return CalloutOutcome::Unknown { message };
        }
        let class = if sent.result.status.is_none() {
            FailureClass::Retryable
        } else {
            provider.failure_class(sent.result.status, sent.result.body.as_bytes())
        };
        if class == FailureClass::Retryable
            && let Some(policy) = flow.pending_retry_policy(state)
        {
            let first = pending.and_then(|p| p.first_attempt_at).unwrap_or_else(Utc::now);
            let elapsed = (Utc::now() - first).to_std().unwrap_or_default();
            let unit: f64 = rand::thread_rng().r#gen();
            if let Some(delay) = policy.next_delay(attempts, elapsed, sent.retry_after, unit) {
                let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                return CalloutOutcome::RetryAt {
                    at,
                    error,
                    micros: sent.result.micros,
                    maybe_arrived: sent.maybe_arrived,
                };
            }
        }
        let maybe_arrived = sent.maybe_arrived || pending.is_some_and(|p| p.maybe_arrived);
        let (status, error_code) = match provider.accepted(sent.result.body.as_bytes()).first() {
            Some(accepted) if accepted.status == MessageStatus::Rejected => (MessageStatus::Rejected, None),
            _ if maybe_arrived => (MessageStatus::Unknown, None),
            _ => (
                MessageStatus::Failed,
                herald_providers::twilio::parse_error(sent.result.body.as_bytes())
                    .map(|e| e.code.to_string()),
            ),
        };
        let mut result = sent.result;
        if class == FailureClass::Retryable && attempts > 1 {
            let may = if maybe_arrived {
                format!(
                    "; an earlier attempt may have reached {} before its answer was lost, so the message may have gone out: check the provider's log",
                    provider.name()
                )
            } else {
                String::new()
            };
            result.fault = Some(format!("{error} (gave up after {attempts} attempts{may})"));
        }
        let text = result.fault.clone().unwrap_or_default();
        answer(
            positions
                .map(|p| {
                    let mut event = MessageEvent::failed(status, "answer", &text);
                    event.error_code = error_code.clone();
                    (p, event)
                })
                .collect(),
        );
        if class == FailureClass::OptedOut {
            // The provider knows the phone said STOP: keep it, so the next send is refused before it leaves.
            for message in messages {
                let row = ConsentRow {
                    phone: message.destination.clone(),
                    sender: message.sender.as_deref().map(normalize_sender).unwrap_or_default(),
                    status: "opted_out".into(),
                    keyword: None,
                    source: format!("{} error", provider.name()),
                    updated_at: now_text(),
                };
                self.inner.consent.set(&row);
                ledger.push(LedgerUpdate::Consent(row));
            }
        }
        CalloutOutcome::Done(result)
    }

    /// The access token of an OAuth 2.0 client-credentials external credential (cached until expiry).
    async fn access_token(
        &self,
        external: &str,
        key: &str,
        secrets: &Secrets,
    ) -> Result<Zeroizing<String>, String> {
        let definition = self
            .inner
            .project
            .project
            .external_credentials
            .get(external)
            .ok_or_else(|| format!("external credential {external} is not defined"))?;
        let token_url =
            definition.def.token_url.as_deref().ok_or_else(|| format!("{external} has no token_url"))?;
        let token_url = self.routed(token_url)?;
        let missing = |parameter: &str| {
            format!(
                "external credential {external} needs `{parameter}`; set it with `herald credential set {external} <principal> {parameter}`"
            )
        };
        let client_id = secrets.values.get("client_id").ok_or_else(|| missing("client_id"))?;
        let client_secret = secrets.values.get("client_secret").ok_or_else(|| missing("client_secret"))?;
        let request = crate::oauth::TokenRequest {
            token_url: &token_url,
            client_id,
            client_secret,
            scope: definition.def.scope.as_deref(),
            cache_key: key,
        };
        self.inner.oauth.token(&request).await.map_err(|error| format!("{external}: {error}"))
    }

    /// A URL as this process reaches it: through the sandbox when one is configured.
    fn routed(&self, url: &str) -> Result<String, String> {
        let Some(sandbox) = &self.inner.sandbox else { return Ok(url.to_string()) };
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("{url} has no host"))?;
        let mut routed = sandbox.clone();
        routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), parsed.path()));
        routed.set_query(parsed.query());
        Ok(routed.to_string())
    }

    /// Checks the body against the operation's schema (external services); nothing invalid is sent.
    fn schema_problems(&self, prepared: &PreparedCallout) -> Option<String> {
        let body = prepared.body.as_ref()?;
        let service = self.inner.project.project.services.get(&prepared.service)?;
        let problems = herald_openapi::validate_request(&service.def.model, &prepared.operation, body);
        if problems.is_empty() {
            return None;
        }
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Some(format!(
            "{} was not sent: the request does not match the spec: {}",
            prepared.action,
            listed.join("; ")
        ))
    }

    fn target_url(&self, base: &str, host: &str, prepared: &PreparedCallout) -> Result<reqwest::Url, String> {
        let path = &prepared.path;
        let lower = path.to_ascii_lowercase();
        let refused = path.split('/').any(|segment| segment == ".." || segment == ".")
            || path.contains("//")
            || lower.contains("%2e%2e")
            || lower.contains("%5c")
            || path.contains('\\')
            || !path.starts_with('/');
        if refused {
            return Err(format!(
                "{}: the path `{path}` is refused: it could leave the named credential's base URL",
                prepared.action
            ));
        }
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| format!("{}: cannot build a URL from {base}{path}: {e}", prepared.action))?;
        if url.host_str() != Some(host) {
            return Err(format!(
                "{}: the request would go to {:?}, not {host}; refused",
                prepared.action,
                url.host_str()
            ));
        }
        if let Some(sandbox) = &self.inner.sandbox {
            let mut routed = sandbox.clone();
            routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), url.path()));
            url = routed;
        }
        if !prepared.query.is_empty() {
            url.query_pairs_mut().extend_pairs(prepared.query.iter());
        }
        Ok(url)
    }

    /// Sends one prepared request and judges the answer by the provider's rules. A single 8x8 SMS
    /// may share a batch request with others queued on the same credential (see `coalesce`).
    async fn send(
        &self,
        prepared: &PreparedCallout,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        secrets: &Secrets,
    ) -> Sent {
        let unsent = |result: CalloutResult| Sent { result, retry_after: None, maybe_arrived: false };
        if let Some((name, _)) =
            headers.iter().find(|(_, value)| reqwest::header::HeaderValue::from_str(value).is_err())
        {
            return unsent(fault(format!(
                "{}: the header `{name}` has a value that cannot be sent in HTTP",
                prepared.action
            )));
        }
        let body = prepared.body.as_ref().map(|body| encode_body(body, prepared.body_encoding));
        if let Some((bytes, _)) = &body
            && bytes.len() > MAX_REQUEST_BYTES
        {
            return unsent(fault(format!(
                "{}: the request body is {} bytes, more than the {MAX_REQUEST_BYTES} a callout may send",
                prepared.action,
                bytes.len()
            )));
        }
        let exchange = match (self.coalescible(prepared), &prepared.body, body) {
            (true, Some(message), Some((bytes, _))) => {
                self.send_coalesced(url, headers, message, bytes).await
            }
            (_, _, body) => {
                let method = match prepared.method {
                    Method::Get => reqwest::Method::GET,
                    Method::Post => reqwest::Method::POST,
                    Method::Put => reqwest::Method::PUT,
                    Method::Patch => reqwest::Method::PATCH,
                    Method::Delete => reqwest::Method::DELETE,
                };
                exchange(&self.inner.http, method, url, &headers, body).await
            }
        };
        judge_exchange(prepared, exchange, secrets)
    }
}

/// What came back for one request, before the provider's rules judge it.
#[derive(Clone, Debug)]
pub(crate) enum Exchange {
    Answered {
        status: u16,
        body: Vec<u8>,
        truncated: bool,
        retry_after: Option<Duration>,
        micros: u64,
    },
    /// No complete answer. `what` says why ("timed out: ..."); unless the connection was refused, the
    /// request may have arrived.
    Lost {
        what: String,
        maybe_arrived: bool,
        micros: u64,
    },
}

/// Sends one request on the pooled client and reads its answer (at most [`MAX_RESPONSE_BYTES`]).
pub(crate) async fn exchange(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    headers: &[(String, String)],
    body: Option<(Vec<u8>, &'static str)>,
) -> Exchange {
    let mut request = http.request(method, url);
    for (name, value) in headers {
        // Headers may carry credentials: sensitive values are kept out of debug output.
        if let Ok(mut value) = reqwest::header::HeaderValue::from_str(value) {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
    }
    if let Some((bytes, content_type)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            // A refused connection carried nothing; anything later may have delivered the request.
            let maybe_arrived = !error.is_connect();
            return Exchange::Lost {
                what: format!("{}: {}", transport_failure(&error), error.without_url()),
                maybe_arrived,
                micros: started.elapsed().as_micros() as u64,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| herald_providers::parse_retry_after(v, Utc::now()));
    let (body, truncated, complete) = read_limited(response).await;
    let micros = started.elapsed().as_micros() as u64;
    if !complete {
        return Exchange::Lost {
            what: format!("failed: the connection broke while the answer (HTTP {status}) was being read"),
            maybe_arrived: true,
            micros,
        };
    }
    Exchange::Answered { status, body, truncated, retry_after, micros }
}

/// How a request failed before any answer, in words for a fault message.
pub(crate) fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed before an answer"
    }
}

/// Reads an exchange with the provider's rules: a success, or a fault that quotes the answer.
fn judge_exchange(prepared: &PreparedCallout, exchange: Exchange, secrets: &Secrets) -> Sent {
    let (status, body, truncated, retry_after, micros) = match exchange {
        Exchange::Lost { what, maybe_arrived, micros } => {
            let mut result = fault(secrets.mask(&format!("{} {what}", prepared.action)));
            result.micros = micros;
            return Sent { result, retry_after: None, maybe_arrived };
        }
        Exchange::Answered { status, body, truncated, retry_after, micros } => {
            (status, body, truncated, retry_after, micros)
        }
    };
    let body_text = secrets.mask(&String::from_utf8_lossy(&body));
    let verdict = if (300..400).contains(&status) {
        Verdict::Failure {
            reason: format!("HTTP {status} redirect refused (herald never follows redirects)"),
        }
    } else if truncated {
        Verdict::Failure { reason: format!("the answer exceeded {MAX_RESPONSE_BYTES} bytes") }
    } else {
        prepared.provider.interpret(status, &body)
    };
    let fault = match verdict {
        Verdict::Success => None,
        Verdict::Failure { reason } => {
            let quoted: String = body_text.chars().take(FAULT_BODY_CHARS).collect();
            let more = if body_text.chars().count() > FAULT_BODY_CHARS { "…" } else { "" };
            Some(format!("{} failed: {reason}. Response body: {quoted}{more}", prepared.action))
        }
    };
    Sent {
        result: CalloutResult { status: Some(status), body: body_text, fault, micros, left_out: Vec::new() },
        retry_after,
        maybe_arrived: false,
    }
}

/// Whether the provider can recognise a resend of this request: every message in it carries a key.
pub(crate) fn resend_is_recognised(prepared: &PreparedCallout) -> bool {
    // `destinations[]` + `template` batches have no per-message client id.
    prepared.provider.deduplicates_resends()
        && prepared.body.as_ref().is_none_or(|body| body.get("destinations").is_none())
}

/// What a send will carry after screening: the messages that go out and the ones left out of a batch.
#[derive(Default)]
pub(crate) struct Screened {
    messages: Vec<OutboundMessage>,
    left_out: Vec<LeftOut>,
}

struct LeftOut {
    destination: String,
    problem: String,
}

/// Writes a batch's kept messages back into its body, with their destinations in E.164: the
/// `destinations` list is rebuilt, and `messages` keeps only the items at `positions`. A body whose
/// messages herald could not all read is left as the flow built it.
fn rewrite_batch(provider: Provider, body: &mut Value, kept: &[OutboundMessage], positions: &[usize]) {
    let Some(pointer) = destination_pointer(provider) else { return };
    let Some(object) = body.as_object_mut() else { return };
    if let Some(Value::Array(messages)) = object.get_mut("messages")
        && !messages.is_empty()
    {
        let read_all = positions.last().is_none_or(|last| *last < messages.len());
        if !read_all {
            return;
        }
        let mut items = std::mem::take(messages).into_iter().map(Some).collect::<Vec<_>>();
        *messages = positions
            .iter()
            .zip(kept)
            .filter_map(|(position, message)| {
                let mut item = items.get_mut(*position)?.take()?;
                if let Some(slot) = item.pointer_mut(pointer) {
                    *slot = Value::String(message.destination.clone());
                }
                Some(item)
            })
            .collect();
    } else if provider == Provider::EightByEightSms && object.contains_key("destinations") {
        let destinations = kept.iter().map(|m| Value::String(m.destination.clone())).collect();
        object.insert("destinations".into(), Value::Array(destinations));
    }
}

/// Where a message's destination sits in the provider's request body (in a batch: in each message).
fn destination_pointer(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::EightByEightSms => Some("/destination"),
        Provider::EightByEightChatApps => Some("/user/msisdn"),
        Provider::Kixie => Some("/target"),
        Provider::Twilio => Some("/To"),
        Provider::Generic => None,
    }
}

/// Writes the normalized destinations back into a single send's body.
fn rewrite_destinations(provider: Provider, body: &mut Value, messages: &[OutboundMessage]) {
    let [message] = messages else { return };
    let Some(pointer) = destination_pointer(provider) else { return };
    if let Some(slot) = body.pointer_mut(pointer)
        && let Some(written) = slot.as_str()
    {
        // Twilio's `whatsapp:+E164` names the channel: keep the prefix.
        let prefix = written.split_once(':').map(|(p, _)| format!("{p}:")).unwrap_or_default();
        *slot = Value::String(format!("{prefix}{}", message.destination));
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; says whether more was sent and whether the answer came whole.
async fn read_limited(mut response: reqwest::Response) -> (Vec<u8>, bool, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true, true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, false, true),
            Err(_) => return (body, false, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(destination: &str) -> OutboundMessage {
        OutboundMessage {
            destination: destination.into(),
            sender: None,
            text: Some("Hi".into()),
            channel: "sms".into(),
            client_message_id: None,
        }
    }

    #[test]
    fn a_batch_keeps_only_the_messages_screening_let_through_in_e164() {
        let kept = [message("+6591111111"), message("+6593333333")];
        let mut listed = serde_json::json!({"messages": [
            {"destination": "91111111", "clientMessageId": "a"},
            {"destination": "+999", "clientMessageId": "b"},
            {"destination": "9333 3333", "clientMessageId": "c"}
        ], "template": {"text": "Hi"}});
        rewrite_batch(Provider::EightByEightSms, &mut listed, &kept, &[0, 2]);
        assert_eq!(
            listed["messages"],
            serde_json::json!([
                {"destination": "+6591111111", "clientMessageId": "a"},
                {"destination": "+6593333333", "clientMessageId": "c"}
            ])
        );
        let mut shared =
            serde_json::json!({"destinations": ["91111111", "+999", "9333 3333"], "template": {}});
        rewrite_batch(Provider::EightByEightSms, &mut shared, &kept, &[0, 2]);
        assert_eq!(shared["destinations"], serde_json::json!(["+6591111111", "+6593333333"]));
        let mut chat =
            serde_json::json!({"messages": [{"user": {"msisdn": "91111111"}}, {"user": {"msisdn": "x"}}]});
        rewrite_batch(Provider::EightByEightChatApps, &mut chat, &kept[..1], &[0]);
        assert_eq!(chat["messages"], serde_json::json!([{"user": {"msisdn": "+6591111111"}}]));
    }

    #[test]
    fn masks_secret_values_but_not_short_ones() {
        let text = "apikey=abcd1234 businessid=77 again abcd1234";
        let masked = mask_secrets(text, ["abcd1234", "77"]);
        assert_eq!(masked, "apikey=•••••• businessid=77 again ••••••");
    }
}
