//! The message ledger, the receipts that update it, consent, and webhook secrets.
//!
//! The store only keeps rows; what a status change means (statuses only move forward) is decided by
//! the engine inside the same [`WriteTx`], so two writers never interleave a read and its write.

use crate::{Result, Store, StoreError, WriteTx, query_all, query_optional};
use rusqlite::{Row, params};
use serde::Serialize;

/// A message about to be sent, written in the transaction that journals the attempt.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: String,
    pub run_id: Option<String>,
    pub element: Option<String>,
    pub idempotency_key: String,
    /// The message's place in a batch request (0 for a single send).
    pub position: i64,
    pub provider: String,
    pub named_credential: String,
    pub channel: String,
    pub destination: String,
    pub sender: Option<String>,
    pub client_message_id: Option<String>,
    pub encoding: Option<String>,
    pub segments: Option<i64>,
    pub status: String,
    pub history: serde_json::Value,
}

/// One row of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageRow {
    pub id: String,
    pub run_id: Option<String>,
    pub element: Option<String>,
    pub idempotency_key: String,
    pub position: i64,
    pub provider: String,
    pub named_credential: String,
    pub channel: String,
    pub destination: String,
    pub sender: Option<String>,
    pub client_message_id: Option<String>,
    pub provider_message_id: Option<String>,
    pub encoding: Option<String>,
    pub segments: Option<i64>,
    pub status: String,
    /// `[{status, at, source, detail?}]`, oldest first; ignored events are listed too.
    pub history: serde_json::Value,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub price: Option<String>,
    pub currency: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A change to a ledger row; `None` keeps the stored value.
#[derive(Clone, Debug, Default)]
pub struct MessageChange {
    pub status: Option<String>,
    pub history: Option<serde_json::Value>,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub price: Option<String>,
    pub currency: Option<String>,
    pub segments: Option<i64>,
    pub encoding: Option<String>,
}

/// A webhook event as received.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReceiptRow {
    pub id: i64,
    pub webhook: String,
    pub provider: String,
    /// `status` or `inbound`.
    pub kind: String,
    pub message_id: Option<String>,
    pub provider_message_id: Option<String>,
    pub client_message_id: Option<String>,
    pub status: Option<String>,
    /// Whether it changed the message (a duplicate or a late, older status does not).
    pub applied: bool,
    pub body: String,
    pub received_at: String,
}

pub struct NewReceipt<'a> {
    pub webhook: &'a str,
    pub provider: &'a str,
    pub kind: &'a str,
    pub message_id: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub client_message_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub applied: bool,
    pub body: &'a str,
    pub received_at: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentRow {
    pub phone: String,
    pub sender: String,
    /// `opted_out` or `opted_in`.
    pub status: String,
    pub keyword: Option<String>,
    pub source: String,
    pub updated_at: String,
}

/// Which ledger rows to list.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub run_id: Option<String>,
    pub destination: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
}

/// `SELECT <every message column> FROM messages` followed by `$rest`, as one constant.
macro_rules! select_messages {
    ($rest:literal) => {
        concat!(
            "SELECT id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, provider_message_id, encoding, segments, status, history, error_code, error_text, price, currency, attempts, created_at, updated_at FROM messages ",
            $rest
        )
    };
}

/// `SELECT <every receipt column> FROM receipts` followed by `$rest`, as one constant.
macro_rules! select_receipts {
    ($rest:literal) => {
        concat!(
            "SELECT id, webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at FROM receipts ",
            $rest
        )
    };
}

fn message_from_row(row: &Row<'_>) -> Result<MessageRow> {
    let id: String = row.get(0)?;
    let history: String = row.get(15)?;
    let history = serde_json::from_str(&history)
        .map_err(|source| StoreError::Corrupt { what: format!("message {id}"), source })?;
    Ok(MessageRow {
        run_id: row.get(1)?,
        element: row.get(2)?,
        idempotency_key: row.get(3)?,
        position: row.get(4)?,
        provider: row.get(5)?,
        named_credential: row.get(6)?,
        channel: row.get(7)?,
        destination: row.get(8)?,
        sender: row.get(9)?,
        client_message_id: row.get(10)?,
        provider_message_id: row.get(11)?,
        encoding: row.get(12)?,
        segments: row.get(13)?,
        status: row.get(14)?,
        history,
        error_code: row.get(16)?,
        error_text: row.get(17)?,
        price: row.get(18)?,
        currency: row.get(19)?,
        attempts: row.get(20)?,
        created_at: row.get(21)?,
        updated_at: row.get(22)?,
        id,
    })
}

fn receipt_from_row(row: &Row<'_>) -> Result<ReceiptRow> {
    Ok(ReceiptRow {
        id: row.get(0)?,
        webhook: row.get(1)?,
        provider: row.get(2)?,
        kind: row.get(3)?,
        message_id: row.get(4)?,
        provider_message_id: row.get(5)?,
        client_message_id: row.get(6)?,
        status: row.get(7)?,
        applied: row.get::<_, i64>(8)? != 0,
        body: row.get(9)?,
        received_at: row.get(10)?,
    })
}

impl WriteTx<'_> {
    /// Writes a message before its request leaves; a resend of the same attempt counts one more
    /// attempt on the same row instead of adding a row.
    pub fn upsert_message(&mut self, message: &NewMessage, now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages (id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, encoding, segments, status, history, attempts, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
                 ON CONFLICT (idempotency_key, position) DO UPDATE SET attempts = attempts + 1, updated_at = excluded.updated_at",
            )?
            .execute(params![
                message.id,
                message.run_id,
                message.element,
                message.idempotency_key,
                message.position,
                message.provider,
                message.named_credential,
                message.channel,
                message.destination,
                message.sender,
                message.client_message_id,
                message.encoding,
                message.segments,
                message.status,
                message.history.to_string(),
                now,
                now
            ])?;
        Ok(())
    }

    /// The messages of one attempt, by position.
    pub fn messages_of_attempt(&mut self, idempotency_key: &str) -> Result<Vec<MessageRow>> {
        query_all(
            self.conn,
            select_messages!("WHERE idempotency_key = ? ORDER BY position"),
            [idempotency_key],
            message_from_row,
        )
    }

    /// The message a receipt speaks of: by the provider's id, else by herald's client id.
    pub fn find_message(
        &mut self,
        provider: &str,
        provider_message_id: Option<&str>,
        client_message_id: Option<&str>,
    ) -> Result<Option<MessageRow>> {
        if let Some(id) = provider_message_id {
            let found = query_optional(
                self.conn,
                select_messages!("WHERE provider = ? AND provider_message_id = ? LIMIT 1"),
                [provider, id],
                message_from_row,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        match client_message_id {
            Some(id) => query_optional(
                self.conn,
                select_messages!("WHERE provider = ? AND client_message_id = ? LIMIT 1"),
                [provider, id],
                message_from_row,
            ),
            None => Ok(None),
        }
    }

    /// Whether every message of an attempt is still `pending` (no receipt got there before the answer).
    pub fn attempt_all_pending(&mut self, idempotency_key: &str) -> Result<bool> {
        let others: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE idempotency_key = ? AND status <> 'pending'",
            )?
            .query_row([idempotency_key], |row| row.get(0))?;
        Ok(others == 0)
    }

    /// Moves every pending message of an attempt to `status`, appending `entry` (a JSON object) to
    /// each one's history, in one statement: the answer to a batch of thousands that says the same of
    /// each. Returns how many messages moved.
    pub fn answer_pending(
        &mut self,
        idempotency_key: &str,
        status: &str,
        entry: &str,
        now: &str,
    ) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE messages SET status = ?, history = json_insert(history, '$[#]', json(?)), updated_at = ?
                 WHERE idempotency_key = ? AND status = 'pending'",
            )?
            .execute(params![status, entry, now, idempotency_key])?)
    }

    pub fn update_message(&mut self, id: &str, change: &MessageChange, now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE messages SET status = COALESCE(?, status), history = COALESCE(?, history),
                    provider_message_id = COALESCE(?, provider_message_id), error_code = COALESCE(?, error_code),
                    error_text = COALESCE(?, error_text), price = COALESCE(?, price), currency = COALESCE(?, currency),
                    segments = COALESCE(?, segments), encoding = COALESCE(?, encoding), updated_at = ?
                 WHERE id = ?",
            )?
            .execute(params![
                change.status,
                change.history.as_ref().map(ToString::to_string),
                change.provider_message_id,
                change.error_code,
                change.error_text,
                change.price,
                change.currency,
                change.segments,
                change.encoding,
                now,
                id
            ])?;
        Ok(())
    }

    pub fn insert_receipt(&mut self, receipt: &NewReceipt<'_>) -> Result<i64> {
        let id = self
            .conn
            .prepare_cached(
                "INSERT INTO receipts (webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )?
            .query_row(
                params![
                    receipt.webhook,
                    receipt.provider,
                    receipt.kind,
                    receipt.message_id,
                    receipt.provider_message_id,
                    receipt.client_message_id,
                    receipt.status,
                    receipt.applied as i64,
                    receipt.body,
                    receipt.received_at
                ],
                |row| row.get(0),
            )?;
        Ok(id)
    }

    /// Status receipts that arrived before the message's provider id was known.
    pub fn unmatched_receipts(
        &mut self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Vec<ReceiptRow>> {
        query_all(
            self.conn,
            select_receipts!(
                "WHERE message_id IS NULL AND kind = 'status' AND provider = ? AND provider_message_id = ? ORDER BY id"
            ),
            [provider, provider_message_id],
            receipt_from_row,
        )
    }

    pub fn match_receipt(&mut self, id: i64, message_id: &str, applied: bool) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE receipts SET message_id = ?, applied = ? WHERE id = ?")?
            .execute(params![message_id, applied as i64, id])?;
        Ok(())
    }

    /// An opt-in lifts the phone's opt-outs whose sender was not known as well.
    pub fn lift_unknown_sender_opt_out(&mut self, phone: &str, now: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE consent SET status = 'opted_in', updated_at = ? WHERE phone = ? AND sender = '' AND status = 'opted_out'")?
            .execute([now, phone])?;
        Ok(())
    }

    pub fn set_consent(&mut self, consent: &ConsentRow) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO consent (phone, sender, status, keyword, source, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (phone, sender) DO UPDATE SET status = excluded.status, keyword = excluded.keyword,
                    source = excluded.source, updated_at = excluded.updated_at",
            )?
            .execute(params![
                consent.phone,
                consent.sender,
                consent.status,
                consent.keyword,
                consent.source,
                consent.updated_at
            ])?;
        Ok(())
    }

    /// Parks a run until `at` (a retry or a rate limit); `reason` shows as its fault meanwhile.
    /// `state` is the interpreter's state as JSON text.
    pub fn wait_run(&mut self, id: &str, state: &str, at: &str, reason: &str, now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE runs SET status = 'waiting', state = ?, fault = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
            )?
            .execute(params![state, reason, at, now, id])?;
        Ok(())
    }
}

impl Store {
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>> {
        self.lookup(|conn| query_optional(conn, select_messages!("WHERE id = ?"), [id], message_from_row))
    }

    /// Ledger rows, newest first.
    pub async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRow>> {
        let filter = filter.clone();
        self.read(move |conn| {
            query_all(
                conn,
                select_messages!(
                    "WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR destination = ?2) AND (?3 IS NULL OR status = ?3)
                     ORDER BY created_at DESC, id LIMIT ?4"
                ),
                params![
                    filter.run_id,
                    filter.destination,
                    filter.status,
                    if filter.limit > 0 { filter.limit } else { 100 }
                ],
                message_from_row,
            )
        })
        .await
    }

    /// How many calls went through a named credential since `since` (the daily budget after a
    /// restart).
    pub async fn messages_since(&self, named_credential: &str, since: &str) -> Result<i64> {
        let values = [named_credential, since].map(String::from);
        // Calls, not messages: each attempt of a message was a call.
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(attempts), 0) FROM messages WHERE named_credential = ? AND created_at >= ?",
                )?
                .query_row(values, |row| row.get(0))?)
        })
        .await
    }

    pub async fn receipts(&self, unmatched_only: bool, limit: i64) -> Result<Vec<ReceiptRow>> {
        self.read(move |conn| {
            query_all(
                conn,
                select_receipts!(
                    "WHERE (?1 = 0 OR (message_id IS NULL AND kind = 'status')) ORDER BY id DESC LIMIT ?2"
                ),
                params![unmatched_only as i64, limit],
                receipt_from_row,
            )
        })
        .await
    }

    /// How many status receipts wait for a message.
    pub async fn unmatched_status_receipts(&self) -> Result<usize> {
        let count: i64 = self
            .read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM receipts WHERE message_id IS NULL AND kind = 'status'",
                    )?
                    .query_row([], |row| row.get(0))?)
            })
            .await?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    pub async fn consents(&self) -> Result<Vec<ConsentRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT phone, sender, status, keyword, source, updated_at FROM consent ORDER BY phone, sender",
                [],
                |row| {
                    Ok(ConsentRow {
                        phone: row.get(0)?,
                        sender: row.get(1)?,
                        status: row.get(2)?,
                        keyword: row.get(3)?,
                        source: row.get(4)?,
                        updated_at: row.get(5)?,
                    })
                },
            )
        })
        .await
    }

    pub async fn set_webhook_secret(&self, name: &str, hash: &str, now: &str) -> Result<()> {
        let values = [name, hash, now].map(String::from);
        self.write(move |tx| {
            tx.conn
                .prepare_cached(
                    "INSERT INTO webhook_secrets (name, hash, created_at) VALUES (?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
                )?
                .execute(values)?;
            Ok(())
        })
        .await
    }

    pub async fn webhook_secret_hash(&self, name: &str) -> Result<Option<String>> {
        self.lookup(|conn| {
            query_optional(conn, "SELECT hash FROM webhook_secrets WHERE name = ?", [name], |row| {
                Ok(row.get(0)?)
            })
        })
    }

    /// Waiting runs and when each is due.
    pub async fn waiting_runs(&self) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT id, COALESCE(next_attempt_at, updated_at) FROM runs WHERE status = 'waiting'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
        .await
    }
}
