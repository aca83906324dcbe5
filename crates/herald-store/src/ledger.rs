//! The message ledger, the receipts that update it, consent, and webhook secrets.
//!
//! The store only keeps rows; what a status change means (statuses only move forward) is decided by
//! the engine inside the same [`WriteTx`], so two writers never interleave a read and its write.

use crate::{Result, Store, StoreError, WriteTx};
use serde::Serialize;
use sqlx::Row;

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

const MESSAGE_COLUMNS: &str = "id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, provider_message_id, encoding, segments, status, history, error_code, error_text, price, currency, attempts, created_at, updated_at";

fn message_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<MessageRow> {
    let id: String = row.get(0);
    let history: String = row.get(15);
    let history = serde_json::from_str(&history)
        .map_err(|source| StoreError::Corrupt { what: format!("message {id}"), source })?;
    Ok(MessageRow {
        run_id: row.get(1),
        element: row.get(2),
        idempotency_key: row.get(3),
        position: row.get(4),
        provider: row.get(5),
        named_credential: row.get(6),
        channel: row.get(7),
        destination: row.get(8),
        sender: row.get(9),
        client_message_id: row.get(10),
        provider_message_id: row.get(11),
        encoding: row.get(12),
        segments: row.get(13),
        status: row.get(14),
        history,
        error_code: row.get(16),
        error_text: row.get(17),
        price: row.get(18),
        currency: row.get(19),
        attempts: row.get(20),
        created_at: row.get(21),
        updated_at: row.get(22),
        id,
    })
}

fn receipt_from_row(row: &sqlx::sqlite::SqliteRow) -> ReceiptRow {
    ReceiptRow {
        id: row.get(0),
        webhook: row.get(1),
        provider: row.get(2),
        kind: row.get(3),
        message_id: row.get(4),
        provider_message_id: row.get(5),
        client_message_id: row.get(6),
        status: row.get(7),
        applied: row.get::<i64, _>(8) != 0,
        body: row.get(9),
        received_at: row.get(10),
    }
}

const RECEIPT_COLUMNS: &str = "id, webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at";

impl WriteTx {
    /// Writes a message before its request leaves; a resend of the same attempt counts one more
    /// attempt on the same row instead of adding a row.
    pub async fn upsert_message(&mut self, message: &NewMessage, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO messages (id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, encoding, segments, status, history, attempts, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
             ON CONFLICT (idempotency_key, position) DO UPDATE SET attempts = attempts + 1, updated_at = excluded.updated_at",
        )
        .bind(&message.id)
        .bind(&message.run_id)
        .bind(&message.element)
        .bind(&message.idempotency_key)
        .bind(message.position)
        .bind(&message.provider)
        .bind(&message.named_credential)
        .bind(&message.channel)
        .bind(&message.destination)
        .bind(&message.sender)
        .bind(&message.client_message_id)
        .bind(&message.encoding)
        .bind(message.segments)
        .bind(&message.status)
        .bind(message.history.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The messages of one attempt, by position.
    pub async fn messages_of_attempt(&mut self, idempotency_key: &str) -> Result<Vec<MessageRow>> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE idempotency_key = ? ORDER BY position");
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(idempotency_key).fetch_all(&mut *self.tx).await?;
        rows.iter().map(message_from_row).collect()
    }

    /// The message a receipt speaks of: by the provider's id, else by herald's client id.
    pub async fn find_message(
        &mut self,
        provider: &str,
        provider_message_id: Option<&str>,
        client_message_id: Option<&str>,
    ) -> Result<Option<MessageRow>> {
        if let Some(id) = provider_message_id {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE provider = ? AND provider_message_id = ? LIMIT 1"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(provider)
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
            if let Some(row) = row {
                return message_from_row(&row).map(Some);
            }
        }
        if let Some(id) = client_message_id {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE provider = ? AND client_message_id = ? LIMIT 1"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(provider)
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
            return row.map(|row| message_from_row(&row)).transpose();
        }
        Ok(None)
    }

    pub async fn update_message(&mut self, id: &str, change: &MessageChange, now: &str) -> Result<()> {
        sqlx::query(
            "UPDATE messages SET status = COALESCE(?, status), history = COALESCE(?, history),
                provider_message_id = COALESCE(?, provider_message_id), error_code = COALESCE(?, error_code),
                error_text = COALESCE(?, error_text), price = COALESCE(?, price), currency = COALESCE(?, currency),
                segments = COALESCE(?, segments), encoding = COALESCE(?, encoding), updated_at = ?
             WHERE id = ?",
        )
        .bind(&change.status)
        .bind(change.history.as_ref().map(ToString::to_string))
        .bind(&change.provider_message_id)
        .bind(&change.error_code)
        .bind(&change.error_text)
        .bind(&change.price)
        .bind(&change.currency)
        .bind(change.segments)
        .bind(&change.encoding)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_receipt(&mut self, receipt: &NewReceipt<'_>) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO receipts (webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(receipt.webhook)
        .bind(receipt.provider)
        .bind(receipt.kind)
        .bind(receipt.message_id)
        .bind(receipt.provider_message_id)
        .bind(receipt.client_message_id)
        .bind(receipt.status)
        .bind(receipt.applied as i64)
        .bind(receipt.body)
        .bind(receipt.received_at)
        .fetch_one(&mut *self.tx)
        .await?
        .get(0);
        Ok(id)
    }

    /// Status receipts that arrived before the message's provider id was known.
    pub async fn unmatched_receipts(
        &mut self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Vec<ReceiptRow>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE message_id IS NULL AND kind = 'status' AND provider = ? AND provider_message_id = ? ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(provider)
            .bind(provider_message_id)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows.iter().map(receipt_from_row).collect())
    }

    pub async fn match_receipt(&mut self, id: i64, message_id: &str, applied: bool) -> Result<()> {
        sqlx::query("UPDATE receipts SET message_id = ?, applied = ? WHERE id = ?")
            .bind(message_id)
            .bind(applied as i64)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// An opt-in lifts the phone's opt-outs whose sender was not known as well.
    pub async fn lift_unknown_sender_opt_out(&mut self, phone: &str, now: &str) -> Result<()> {
        sqlx::query("UPDATE consent SET status = 'opted_in', updated_at = ? WHERE phone = ? AND sender = '' AND status = 'opted_out'")
            .bind(now)
            .bind(phone)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn set_consent(&mut self, consent: &ConsentRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO consent (phone, sender, status, keyword, source, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (phone, sender) DO UPDATE SET status = excluded.status, keyword = excluded.keyword,
                source = excluded.source, updated_at = excluded.updated_at",
        )
        .bind(&consent.phone)
        .bind(&consent.sender)
        .bind(&consent.status)
        .bind(&consent.keyword)
        .bind(&consent.source)
        .bind(&consent.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Parks a run until `at` (a retry or a rate limit); `reason` shows as its fault meanwhile.
    pub async fn wait_run(
        &mut self,
        id: &str,
        state: &serde_json::Value,
        at: &str,
        reason: &str,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET status = 'waiting', state = ?, fault = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(state.to_string())
        .bind(reason)
        .bind(at)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.map(|row| message_from_row(&row)).transpose()
    }

    /// Ledger rows, newest first.
    pub async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR destination = ?2) AND (?3 IS NULL OR status = ?3)
             ORDER BY created_at DESC, id LIMIT ?4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&filter.run_id)
            .bind(&filter.destination)
            .bind(&filter.status)
            .bind(if filter.limit > 0 { filter.limit } else { 100 })
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// How many calls went through a named credential since `since` (the daily budget after a
    /// restart).
    pub async fn messages_since(&self, named_credential: &str, since: &str) -> Result<i64> {
        // Calls, not messages: each attempt of a message was a call.
        Ok(sqlx::query(
            "SELECT COALESCE(SUM(attempts), 0) FROM messages WHERE named_credential = ? AND created_at >= ?",
        )
        .bind(named_credential)
        .bind(since)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    pub async fn receipts(&self, unmatched_only: bool, limit: i64) -> Result<Vec<ReceiptRow>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE (?1 = 0 OR (message_id IS NULL AND kind = 'status')) ORDER BY id DESC LIMIT ?2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(unmatched_only as i64)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(receipt_from_row).collect())
    }

    /// How many status receipts wait for a message.
    pub async fn unmatched_status_receipts(&self) -> Result<usize> {
        let count: i64 =
            sqlx::query("SELECT COUNT(*) FROM receipts WHERE message_id IS NULL AND kind = 'status'")
                .fetch_one(&self.pool)
                .await?
                .get(0);
        Ok(usize::try_from(count).unwrap_or(0))
    }

    pub async fn consents(&self) -> Result<Vec<ConsentRow>> {
        let rows = sqlx::query(
            "SELECT phone, sender, status, keyword, source, updated_at FROM consent ORDER BY phone, sender",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| ConsentRow {
                phone: row.get(0),
                sender: row.get(1),
                status: row.get(2),
                keyword: row.get(3),
                source: row.get(4),
                updated_at: row.get(5),
            })
            .collect())
    }

    pub async fn set_webhook_secret(&self, name: &str, hash: &str, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_secrets (name, hash, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
        )
        .bind(name)
        .bind(hash)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn webhook_secret_hash(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT hash FROM webhook_secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.get(0)))
    }

    /// Waiting runs and when each is due.
    pub async fn waiting_runs(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, COALESCE(next_attempt_at, updated_at) FROM runs WHERE status = 'waiting'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}
