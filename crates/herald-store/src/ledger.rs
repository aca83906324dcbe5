//! The message ledger, the receipts that update it, consent, and webhook secrets.
//!
//! The store only keeps rows; what a status change means (statuses only move forward) is decided by
//! the engine inside the same [`WriteTx`](crate::WriteTx), so two writers never interleave a read and
//! its write.

use crate::{Result, Store};
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    pub provider: Option<String>,
    pub channel: Option<String>,
    /// Only rows listed after this one, newest first: its `(created_at, id)`. A page follows the
    /// last row of the one before, so rows written meanwhile never shift it (keyset paging).
    pub before: Option<(String, String)>,
    pub limit: i64,
}

impl Store {
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>> {
        self.backend.message(id).await
    }

    /// Ledger rows, newest first (by `created_at`, then `id`, both descending).
    pub async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRow>> {
        self.backend.messages(filter).await
    }

    /// How many calls went through a named credential since `since` (the daily budget after a
    /// restart).
    pub async fn messages_since(&self, named_credential: &str, since: &str) -> Result<i64> {
        self.backend.messages_since(named_credential, since).await
    }

    pub async fn receipts(&self, unmatched_only: bool, limit: i64) -> Result<Vec<ReceiptRow>> {
        self.backend.receipts(unmatched_only, limit).await
    }

    /// How many status receipts wait for a message.
    pub async fn unmatched_status_receipts(&self) -> Result<usize> {
        self.backend.unmatched_status_receipts().await
    }

    /// The receipts matched to a message, in the order they were received.
    pub async fn receipts_for_message(&self, message_id: &str) -> Result<Vec<ReceiptRow>> {
        self.backend.receipts_for_message(message_id).await
    }

    pub async fn consents(&self) -> Result<Vec<ConsentRow>> {
        self.backend.consents().await
    }

    pub async fn set_webhook_secret(&self, name: &str, hash: &str, now: &str) -> Result<()> {
        let [name, hash, now] = [name, hash, now].map(String::from);
        self.write(move |tx| tx.set_webhook_secret(&name, &hash, &now)).await
    }

    pub async fn webhook_secret_hash(&self, name: &str) -> Result<Option<String>> {
        self.backend.webhook_secret_hash(name).await
    }

    /// Waiting runs and when each is due.
    pub async fn waiting_runs(&self) -> Result<Vec<(String, String)>> {
        self.backend.waiting_runs().await
    }
}
