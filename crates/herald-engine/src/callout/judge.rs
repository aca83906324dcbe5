//! Stage 9 of a callout: the answer read with the provider's rules (a success, a fault that quotes the
//! answer, a retry, or an outcome that cannot be known), the ledger's view of each message, and an
//! opt-out the provider reported.

use super::secrets::Secrets;
use super::send::Exchange;
use super::{CalloutOutcome, FAULT_BODY_CHARS, MAX_RESPONSE_BYTES, fault};
use crate::ledger::{LedgerUpdate, MessageEvent, normalize_sender};
use crate::{Engine, now_text};
use chrono::Utc;
use herald_flow::{CalloutEffect, CalloutResult, PreparedCallout, RunState};
use herald_providers::{FailureClass, MessageStatus, OutboundMessage, Verdict};
use herald_store::ConsentRow;
use rand::Rng;
use std::time::Duration;

/// What `send` learned beyond the result.
pub(crate) struct Sent {
    pub(crate) result: CalloutResult,
    pub(crate) retry_after: Option<Duration>,
    /// No complete answer came back, and the request may have arrived (a timeout, a reset).
    pub(crate) maybe_arrived: bool,
}

impl Engine {
    /// Reads a send's result with the provider's rules and the action's retry policy.
    pub(crate) fn judge(
        &self,
        effect: &CalloutEffect,
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
        let pending = state.pending();
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
        if class == FailureClass::Retryable {
            let policy = effect.retry;
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
            _ => (MessageStatus::Failed, provider.error_code(sent.result.body.as_bytes())),
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
}

/// Reads an exchange with the provider's rules: a success, or a fault that quotes the answer.
pub(crate) fn judge_exchange(prepared: &PreparedCallout, exchange: Exchange, secrets: &Secrets) -> Sent {
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
    prepared.body.as_ref().is_some_and(|body| prepared.provider.recognises_resend(body))
}
