//! What the console's home page counts: rows created per minute or hour, and the messages of the
//! leads of a period, from which speed to lead is measured. Reads only, each over a `created_at`
//! index, so that a busy day costs a range scan rather than a walk of every table.

use serde_json::Value;

/// A table whose new rows are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// Records, counted by object.
    Records,
    /// Runs, counted by status.
    Runs,
    /// Ledger rows, counted by status.
    Messages,
}

impl Created {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Created::Records => "records",
            Created::Runs => "runs",
            Created::Messages => "messages",
        }
    }

    /// The column the counts are split by.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Created::Records => "object",
            Created::Runs | Created::Messages => "status",
        }
    }
}

/// The width of a count's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
}

impl Bucket {
    /// How many leading characters of an RFC 3339 UTC time (`2026-12-03T15:04:05.123456Z`) name the
    /// period it falls in: `2026-12-03T15:04` is a minute, `2026-12-03T15` an hour.
    pub fn prefix_len(self) -> usize {
        match self {
            Bucket::Minute => 16,
            Bucket::Hour => 13,
        }
    }
}

/// Rows created in one period with one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedCount {
    /// The period, as the leading characters of its times (see [`Bucket::prefix_len`]).
    pub bucket: String,
    /// The object of records, the status of runs and messages.
    pub key: String,
    pub count: i64,
}

/// A ledger row of a run that a record started, with the record's creation: speed to lead runs from
/// the record's `created_at` to the provider's answer in the row's history.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadMessage {
    pub record_id: String,
    pub record_created_at: String,
    pub message_created_at: String,
    pub status: String,
    /// `[{status, at, source, …}]`, oldest first (see [`crate::MessageRow::history`]).
    pub history: Value,
}

impl crate::Store {
    /// How many rows of `table` were created in each period since `since`, split by object or status,
    /// oldest period first.
    pub async fn created_per_bucket(
        &self,
        table: Created,
        bucket: Bucket,
        since: &str,
    ) -> crate::Result<Vec<CreatedCount>> {
        self.backend.created_per_bucket(table, bucket, since).await
    }

    /// The ledger rows of the runs started by records created in `[from, to)`: newest records first,
    /// each record's rows oldest first, at most `limit` rows.
    pub async fn lead_messages(&self, from: &str, to: &str, limit: i64) -> crate::Result<Vec<LeadMessage>> {
        self.backend.lead_messages(from, to, limit).await
    }
}
