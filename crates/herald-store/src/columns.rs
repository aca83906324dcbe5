//! The column lists every backend reads rows by, in the order its row mapping expects them, so that
//! a column added to a table is added once for all backends. The statements around them are each
//! backend's own (placeholders and dialects differ).

/// Every column of a run, in the order a backend's `run_from_row` reads them.
macro_rules! run_columns {
    () => {
        "id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at, version, owner"
    };
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

/// Every column of a vault node, in the order a backend's `node_from_row` reads them.
pub(crate) const NODE_COLUMNS: &str = "id, pid, host, master_id, started_at, seen_at";

/// Runs in creation order (an `UPDATE ... RETURNING` returns its rows in no promised order).
pub(crate) fn by_creation(mut runs: Vec<crate::RunRow>) -> Vec<crate::RunRow> {
    runs.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    runs
}
