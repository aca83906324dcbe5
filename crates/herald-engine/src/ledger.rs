//! The message ledger as the engine keeps it: rows written before a send, answers and receipts applied
//! only forward, consent from inbound keywords and provider errors.

use crate::{Engine, EngineError, now_text};
use herald_providers::{Accepted, MessageStatus, OutboundMessage, Provider, StatusUpdate};
use herald_store::{ConsentRow, MessageChange, MessageRow, NewMessage, WriteTx};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// One thing that happened to a message, from herald's answer handling or a provider's receipt.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MessageEvent {
    pub status: MessageStatus,
    /// `answer`, `receipt:<webhook>`, `herald`.
    pub source: String,
    pub detail: Option<String>,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub provider_message_id: Option<String>,
    pub price: Option<String>,
    pub currency: Option<String>,
    pub segments: Option<i64>,
    pub encoding: Option<String>,
}

impl MessageEvent {
    pub fn new(status: MessageStatus, source: &str) -> MessageEvent {
        MessageEvent {
            status,
            source: source.to_string(),
            detail: None,
            error_code: None,
            error_text: None,
            provider_message_id: None,
            price: None,
            currency: None,
            segments: None,
            encoding: None,
        }
    }

    pub fn failed(status: MessageStatus, source: &str, error: &str) -> MessageEvent {
        let mut event = MessageEvent::new(status, source);
        event.error_text = Some(error.chars().take(500).collect());
        event
    }

    pub fn from_accepted(accepted: &Accepted) -> MessageEvent {
        let mut event = MessageEvent::new(accepted.status, "answer");
        event.provider_message_id = accepted.provider_message_id.clone();
        event.segments = accepted.segments.map(i64::from);
        event.encoding = accepted.encoding.clone();
        event.error_text = accepted.error.clone();
        if let Some(price) = &accepted.price {
            event.price = Some(price.total.clone());
            event.currency = Some(price.currency.clone());
        }
        event
    }

    pub fn from_receipt(update: &StatusUpdate, webhook: &str) -> MessageEvent {
        let mut event = MessageEvent::new(update.status, &format!("receipt:{webhook}"));
        event.detail = update.detail.clone().or_else(|| Some(update.raw_state.clone()));
        event.error_code = update.error_code.clone();
        event.error_text = update.error_message.clone();
        event.provider_message_id = update.provider_message_id.clone();
        event.segments = update.segments.map(i64::from);
        if let Some(price) = &update.price {
            event.price = Some(price.total.clone());
            event.currency = Some(price.currency.clone());
        }
        event
    }
}

/// The position of an event that concerns every message of an attempt.
pub(crate) const EVERY_POSITION: i64 = -1;

/// A ledger write that waits for the run's next journal transaction, so a send costs no commit of
/// its own.
#[derive(Clone, Debug)]
pub(crate) enum LedgerUpdate {
    /// What the answer to an attempt said, per message position.
    Answer {
        key: String,
        provider: Provider,
        events: Vec<(i64, MessageEvent)>,
    },
    Consent(ConsentRow),
}

/// Applies `event` to `row` if it moves the status forward; records it in the history either way.
/// Returns whether the status changed.
pub(crate) fn apply_event(
    tx: &mut dyn WriteTx,
    row: &MessageRow,
    event: &MessageEvent,
    now: &str,
) -> Result<bool, EngineError> {
    let current = MessageStatus::parse(&row.status).unwrap_or(MessageStatus::Pending);
    let advances = current.advances_to(event.status);
    let mut history = match &row.history {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let mut entry = json!({"status": event.status.as_str(), "at": now, "source": event.source});
    if let Some(detail) = &event.detail {
        entry["detail"] = json!(detail);
    }
    if let Some(error) = &event.error_text {
        entry["error"] = json!(error);
    }
    if !advances {
        entry["ignored"] =
            json!(if current == event.status { "duplicate" } else { "older than the current status" });
    }
    history.push(entry);
    let mut change = MessageChange { history: Some(Value::Array(history)), ..MessageChange::default() };
    // The provider's id and price are facts whatever the order they arrive in.
    change.provider_message_id =
        event.provider_message_id.clone().filter(|_| row.provider_message_id.is_none());
    change.price = event.price.clone();
    change.currency = event.currency.clone();
    change.segments = event.segments;
    change.encoding = event.encoding.clone();
    if advances {
        change.status = Some(event.status.as_str().to_string());
        change.error_code = event.error_code.clone();
        change.error_text = event.error_text.clone();
    }
    tx.update_message(&row.id, &change, now)?;
    Ok(advances)
}

/// The status every event gives, when they are all the same plain answer (no provider id, price,
/// error or detail) for one position each: what a batch answer without per-message details says.
fn same_plain_status(events: &[(i64, MessageEvent)]) -> Option<MessageStatus> {
    let plain = MessageEvent::new(events.first()?.1.status, "answer");
    let same = events.iter().all(|(position, event)| *position != EVERY_POSITION && *event == plain);
    (same && events.len() > 1).then_some(plain.status)
}

/// Phones that opted out, by sender (`""`: the provider did not say which sender).
#[derive(Default)]
pub(crate) struct ConsentCache {
    opted_out: Mutex<HashMap<String, HashSet<String>>>,
}

impl ConsentCache {
    pub fn load(rows: &[ConsentRow]) -> ConsentCache {
        let cache = ConsentCache::default();
        for row in rows {
            cache.set(row);
        }
        cache
    }

    /// Forgets everything known and keeps `rows` (consent read again from the database).
    pub fn replace(&self, rows: &[ConsentRow]) {
        let fresh = ConsentCache::load(rows);
        let Ok(mut map) = self.opted_out.lock() else { return };
        *map = fresh.opted_out.into_inner().unwrap_or_default();
    }

    pub fn set(&self, row: &ConsentRow) {
        let Ok(mut map) = self.opted_out.lock() else { return };
        let senders = map.entry(row.phone.clone()).or_default();
        if row.status == "opted_out" {
            senders.insert(row.sender.clone());
        } else {
            senders.remove(&row.sender);
            // START to any of our numbers also lifts an opt-out whose sender was not known.
            senders.remove("");
        }
    }

    /// The sender the phone opted out of, if that blocks a send from `sender`. A send whose sender
    /// is not named (the provider's default) is blocked by an opt-out of any sender.
    pub fn blocking(&self, phone: &str, sender: Option<&str>) -> Option<String> {
        let map = self.opted_out.lock().ok()?;
        let senders = map.get(phone)?;
        senders
            .iter()
            .find(|s| {
                s.is_empty()
                    || sender.is_none()
                    || sender.map(normalize_sender).as_deref() == Some(s.as_str())
            })
            .cloned()
    }
}

/// A sender as consent keys it: E.164 for numbers, as written for alphanumeric sender ids.
pub(crate) fn normalize_sender(sender: &str) -> String {
    herald_sms::normalize_e164(sender, None).unwrap_or_else(|_| sender.trim().to_string())
}

/// The ledger rows of one attempt.
pub(crate) fn planned_rows(
    messages: &[OutboundMessage],
    provider: Provider,
    named_credential: &str,
    key: &str,
    run_id: Option<&str>,
    element: &str,
    now: &str,
) -> Vec<NewMessage> {
    messages
        .iter()
        .enumerate()
        .map(|(position, message)| {
            let (encoding, segments) = match (&message.text, message.channel.as_str()) {
                (Some(text), "sms") => {
                    let info = herald_sms::inspect(text);
                    (Some(info.encoding.as_str().to_string()), Some(i64::from(info.segments)))
                }
                _ => (None, None),
            };
            NewMessage {
                // In creation order, like the other ids; a resend of the attempt keeps the first row.
                id: format!("msg_{}_{position}", crate::ids::ordered_text(20)),
                run_id: run_id.map(String::from),
                element: Some(element.to_string()),
                idempotency_key: key.to_string(),
                position: position as i64,
                provider: provider.name().to_string(),
                named_credential: named_credential.to_string(),
                channel: message.channel.clone(),
                destination: message.destination.clone(),
                sender: message.sender.clone(),
                client_message_id: message.client_message_id.clone(),
                encoding,
                segments,
                status: MessageStatus::Pending.as_str().to_string(),
                history: json!([{"status": "pending", "at": now, "source": "herald"}]),
            }
        })
        .collect()
}

impl Engine {
    /// Writes the ledger updates a run gathered, inside the run's journal transaction (on the
    /// database's writer thread).
    pub(crate) fn flush_ledger(
        &self,
        tx: &mut dyn WriteTx,
        updates: Vec<LedgerUpdate>,
    ) -> Result<(), EngineError> {
        let now = now_text();
        for update in updates {
            match update {
                LedgerUpdate::Answer { key, provider, events } => {
                    if let Some(status) = same_plain_status(&events)
                        && tx.attempt_all_pending(&key)?
                    {
                        // Read and rewritten one by one, a batch of 5,000 cost more than its send.
                        let entry = json!({"status": status.as_str(), "at": now, "source": "answer"});
                        tx.answer_pending(&key, status.as_str(), &entry.to_string(), &now)?;
                        continue;
                    }
                    let rows = tx.messages_of_attempt(&key)?;
                    // A batch answers thousands of positions: find each row by its position directly.
                    let by_position: HashMap<i64, usize> =
                        rows.iter().enumerate().map(|(index, row)| (row.position, index)).collect();
                    for (position, event) in events {
                        let matching: &[MessageRow] = if position == EVERY_POSITION {
                            &rows
                        } else {
                            match by_position.get(&position) {
                                Some(index) => std::slice::from_ref(&rows[*index]),
                                None => &[],
                            }
                        };
                        for row in matching {
                            apply_event(tx, row, &event, &now)?;
                            // A receipt may have come before the answer told herald the provider's id.
                            if provider.idempotency_field().is_none()
                                && self.inner.unmatched_receipts.load(std::sync::atomic::Ordering::Relaxed)
                                    > 0
                                && let Some(id) = &event.provider_message_id
                            {
                                self.apply_unmatched(tx, provider, id, &row.id)?;
                            }
                        }
                    }
                }
                // The consent cache already holds it: a refusal should not wait for the commit.
                LedgerUpdate::Consent(row) => tx.set_consent(&row)?,
            }
        }
        Ok(())
    }

    /// Writes ledger updates in a transaction of their own (a run that parks, a debug run).
    pub(crate) async fn write_ledger(&self, updates: Vec<LedgerUpdate>) -> Result<(), EngineError> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write_with_ledger(updates, |_| Ok(())).await
    }

    /// One write: the ledger updates a run gathered, then `work` (its journal), committed together.
    pub(crate) async fn write_with_ledger<R: Send + 'static>(
        &self,
        updates: Vec<LedgerUpdate>,
        work: impl FnOnce(&mut dyn WriteTx) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        let engine = self.clone();
        self.inner
            .store
            .write(move |tx| {
                engine.flush_ledger(tx, updates)?;
                work(tx)
            })
            .await
    }

    /// Applies, in arrival order, the receipts kept while their message had no provider id yet.
    fn apply_unmatched(
        &self,
        tx: &mut dyn WriteTx,
        provider: Provider,
        provider_message_id: &str,
        message_id: &str,
    ) -> Result<(), EngineError> {
        let receipts = tx.unmatched_receipts(provider.name(), provider_message_id)?;
        for receipt in receipts {
            let events = provider.parse_webhook(receipt.body.as_bytes()).unwrap_or_default();
            let mut applied = false;
            for event in events {
                if let herald_providers::WebhookEvent::Status(update) = event
                    && update.provider_message_id.as_deref() == Some(provider_message_id)
                {
                    let now = now_text();
                    let Some(row) = tx.find_message(provider.name(), Some(provider_message_id), None)? else {
                        continue;
                    };
                    applied |=
                        apply_event(tx, &row, &MessageEvent::from_receipt(&update, &receipt.webhook), &now)?;
                }
            }
            tx.match_receipt(receipt.id, message_id, applied)?;
            let _ = self.inner.unmatched_receipts.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
        }
        Ok(())
    }

    pub(crate) fn remember_consents(&self, rows: &[ConsentRow]) {
        for row in rows {
            self.inner.consent.set(row);
        }
    }
}
