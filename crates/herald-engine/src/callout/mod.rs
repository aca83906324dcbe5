//! A callout, as explicit stages, each in a module of its own:
//!
//! 1. `principal`: the principal of the external credential the running user may use;
//! 2. `secrets`: its secret values, opened from the vault (and the mask that keeps them out of
//!    everything herald stores);
//! 3. the request, built by the interpreter from the run's values (`prepare_callout`), then `auth`:
//!    the headers that authenticate it;
//! 4. `url`: the URL, on the named credential's own host only;
//! 5. `screen`: each message the body carries (destination, text, consent), then the body as it will
//!    be sent against its schema;
//! 6. limits: a concurrency slot and the credential's rate and daily budget (`crate::limits`);
//! 7. journal: the attempt and its ledger rows committed before anything leaves;
//! 8. `send`: the request on the wire, alone or in a batch (`coalesce`);
//! 9. `judge`: the answer read with the provider's rules.
//!
//! A stage that refuses ends the callout as a fault of its element, and nothing is sent. While the
//! request is on the wire the run holds no place among the runs computing (see `driver::Holding`): a
//! slow provider delays only its own runs.

mod auth;
pub(crate) mod coalesce;
mod judge;
mod principal;
mod screen;
mod secrets;
mod send;
mod url;

pub use secrets::mask_secrets;
pub(crate) use send::{Exchange, exchange, transport_failure};

use crate::driver::Holding;
use crate::ledger::{LedgerUpdate, planned_rows};
use crate::limits::Wait;
use crate::{Engine, EngineError, now_text};
use chrono::{DateTime, Utc};
use herald_expr::EvalContext;
use herald_flow::{CalloutEffect, CalloutResult, CompiledFlow, RunState};
use herald_project::{PrincipalType, Protocol};
use herald_store::RunStatus;
use screen::Screened;
use secrets::{SecretsError, unreadable_secret_message};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Answers larger than this are cut off and the callout fails: no provider answers a send with more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Requests larger than this are not sent: no SMS or WhatsApp send needs more.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How much of a response body a fault message quotes; the whole body stays in the trace.
const FAULT_BODY_CHARS: usize = 300;

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
    /// Nothing was sent because herald cannot do its own part (a stored secret does not open): the run
    /// fails for a person to fix, and the flow's fault path, meant for the provider's refusals, is not
    /// taken.
    NeedsPerson { message: String },
    /// A rate limit: nothing was sent; try again after this short wait.
    Park(Duration),
    /// Every concurrent slot of the named credential is taken: try again with a permit.
    ParkOnSlot(Arc<Semaphore>),
    /// A daily budget is spent: nothing was sent; the run waits, durably, until `at`.
    WaitUntil { at: DateTime<Utc>, reason: String },
}

impl Engine {
    /// Performs the callout `effect` asks for, stage by stage (see the module's documentation).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn callout(
        &self,
        flow: &CompiledFlow,
        effect: &CalloutEffect,
        state: &mut RunState,
        run_id: Option<&str>,
        cx: &EvalContext,
        holding: &mut Holding,
        ledger: &mut Vec<LedgerUpdate>,
    ) -> Result<CalloutOutcome, EngineError> {
        let done = |result: CalloutResult| Ok(CalloutOutcome::Done(result));
        let (external, named_name) = (effect.external_credential.as_str(), effect.named_credential.as_str());
        // 1. The principal the running user may use.
        let user = state.user().clone();
        let (principal, principal_type) = match self.principal_for(external, &user).await {
            Ok(found) => found,
            Err(message) => return done(fault(message)),
        };
        let user_id = if principal_type == PrincipalType::PerUser { user.id.as_str() } else { "" };
        // 2. Its secrets. One that does not open is herald's to fix, not a fault of the provider.
        let mut secrets = match self.secrets(external, &principal, user_id).await {
            Ok(secrets) => secrets,
            Err(SecretsError::Other(message)) => return done(fault(message)),
            Err(SecretsError::Unreadable(error)) => {
                self.inner.vault.note_failed_run();
                let per_user = (!user_id.is_empty()).then_some(&user.name);
                let message = unreadable_secret_message(&error, per_user, run_id);
                tracing::error!(run = run_id.unwrap_or("debug"), "{message}");
                return Ok(CalloutOutcome::NeedsPerson { message });
            }
        };
        // 3. The request, and the headers that authenticate it.
        let mut prepared = match flow.prepare_callout(state, &secrets, cx) {
            Ok(prepared) => prepared,
            Err(message) => return done(fault(secrets.mask(&message))),
        };
        let Some(named) = self.project().named_credentials.get(named_name).cloned() else {
            return done(fault(format!("named credential {named_name} is not loaded")));
        };
        let mut headers = match auth::headers(&named, &mut secrets, &prepared, cx) {
            Ok(headers) => headers,
            Err(message) => return done(fault(secrets.mask(&message))),
        };
        // 4. The URL, on the named credential's host only.
        let url = match self.target_url(&named.url, &named.host, &prepared) {
            Ok(url) => url,
            Err(message) => return done(fault(message)),
        };
        // OAuth 2.0 client credentials: a cached access token, fetched before anything is sent.
        let oauth = if named.protocol == Protocol::OAuth2ClientCredentials {
            let key = format!("{external}/{principal}/{user_id}");
            match self.access_token(external, &key, &secrets).await {
                Ok(token) => {
                    if named.generate_authorization_header {
                        headers.push(("Authorization".into(), format!("Bearer {}", token.as_str())));
                    }
                    secrets.sends(&token);
                    Some((key, token))
                }
                Err(message) => return done(fault(secrets.mask(&message))),
            }
        } else {
            None
        };
        // 5. Screening: each message first, then the schema judges the body as it will be sent
        // (destinations in E.164, a batch without the messages left out), so a typed national number
        // or one bad member does not fail a pattern that wants E.164.
        let Screened { messages, left_out } = match self.outbound_messages(&mut prepared) {
            Ok(screened) => screened,
            Err(message) => return done(fault(message)),
        };
        if let Some(problem) = self.schema_problems(&prepared) {
            return done(fault(secrets.mask(&problem)));
        }
        // 6. Limits, after every check that can refuse the send, so a refused send spends no budget.
        let slot = match holding.slot.take() {
            Some(slot) => Some(slot),
            None => match self.inner.limits.slot(named_name) {
                Ok(slot) => slot,
                Err(semaphore) => return Ok(CalloutOutcome::ParkOnSlot(semaphore)),
            },
        };
        match self.inner.limits.admit(named_name, Utc::now()) {
            Ok(()) => {}
            Err(Wait::For(wait)) => return Ok(CalloutOutcome::Park(wait)),
            Err(Wait::Until { at, reason }) => return Ok(CalloutOutcome::WaitUntil { at, reason }),
        }
        // 7. The journal: the attempt and its ledger rows, before the request leaves, so that after a
        // crash the engine knows it may have arrived.
        flow.mark_sent(state, Utc::now());
        let rows = planned_rows(
            &messages,
            prepared.provider,
            named_name,
            &prepared.idempotency_key,
            run_id,
            &effect.element,
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
        // 8. The request on the wire: the run computes nothing meanwhile, so it gives its place up.
        holding.on_the_wire();
        let mut sent = self.send(&prepared, url.clone(), headers.clone(), &secrets).await;
        if let Some((key, token)) = oauth.filter(|_| sent.result.status == Some(401)) {
            // The provider refused the token, so nothing was accepted: fetch a fresh one and try once more.
            self.inner.oauth.invalidate_token(&key, &token);
            match self.access_token(external, &key, &secrets).await {
                Ok(fresh) => {
                    let headers = auth::with_bearer(headers, &fresh);
                    secrets.sends(&fresh);
                    sent = self.send(&prepared, url, headers, &secrets).await;
                }
                Err(message) => sent.result = fault(secrets.mask(&message)),
            }
        }
        drop(slot);
        holding.back_from_the_wire().await;
        // 9. The answer, by the provider's rules.
        let mut outcome = self.judge(effect, state, &prepared, &messages, sent, ledger);
        if let CalloutOutcome::Done(result) = &mut outcome {
            result.left_out = left_out.into_iter().map(|l| (l.destination, l.problem)).collect();
        }
        Ok(outcome)
    }
}
