//! Statements and rows: the queries the reads and the write transaction share, and how a row becomes
//! one of the store's types.

use crate::{
    KeyWrap, MasterRow, MessageRow, PlacedSecret, ReceiptRow, Result, RunRow, RunStatus, SealedSecret,
    SecretRow, StoreError, StoredRecord, UserRow, VaultNode,
};
use rusqlite::{Connection, OptionalExtension, Params, Row, params};

pub(super) const RUN_COLUMNS: &str = run_columns!();
pub(super) const RUN_SELECT: &str = concat!("SELECT ", run_columns!(), " FROM runs");
pub(super) const RUN_BY_ID: &str = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = ?");
pub(super) const RUNS_BY_RECORD: &str =
    concat!("SELECT ", run_columns!(), " FROM runs WHERE record_id = ? ORDER BY created_at, id");
/// A record's waiting runs, read in every write that changes a record with scheduled paths. `+status`
/// keeps SQLite off the status index, which it would otherwise prefer and walk through every waiting
/// run of every record (a scheduled path an hour out leaves one per lead: the walk grew with the
/// load, and the benchmark fell from thousands of leads a second to under a hundred).
pub(super) const WAITING_RUNS_OF_RECORD: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs WHERE record_id = ? AND +status = 'waiting' ORDER BY created_at, id"
);
pub(super) const CLAIM_RUN: &str = concat!(
    "UPDATE runs SET status = 'running', owner = ?3, next_attempt_at = NULL, updated_at = ?1 WHERE id = ?2 AND (status = 'ready' OR (status = 'waiting' AND COALESCE(next_attempt_at, '') <= ?1)) RETURNING ",
    run_columns!()
);
pub(super) const SAVE_RUN: &str =
    "UPDATE runs SET status = ?, state = ?, fault = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ?";

pub(super) use crate::columns::NODE_COLUMNS;

pub(super) const WRAPS_UNDER: &str = "SELECT w.key_id, w.master_id, w.wrapped FROM vault_key_wraps w
     JOIN vault_keys k ON k.id = w.key_id WHERE w.master_id = ? AND k.retired_at IS NULL ORDER BY w.key_id";

pub(super) const HAS_DATA_KEYS: &str = "SELECT EXISTS (SELECT 1 FROM vault_keys)";

/// Every row of a query, mapped; a cached statement, so the SQL is parsed once per connection.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut mapped = Vec::new();
    while let Some(row) = rows.next()? {
        mapped.push(map(row)?);
    }
    Ok(mapped)
}

/// The first row of a query, mapped, if there is one.
pub(super) fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    rows.next()?.map(map).transpose()
}

pub(super) fn record(conn: &Connection, object: &str, id: &str) -> Result<Option<StoredRecord>> {
    query_optional(
        conn,
        "SELECT id, object, data FROM records WHERE id = ? AND object = ?",
        [id, object],
        record_from_row,
    )
}

pub(super) fn user(conn: &Connection, id: &str) -> Result<Option<UserRow>> {
    let Some(name) = conn
        .prepare_cached("SELECT name FROM users WHERE id = ? AND active = 1")?
        .query_row([id], |row| row.get::<_, String>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let permission_sets = query_all(
        conn,
        "SELECT permission_set FROM user_permission_sets WHERE user_id = ? ORDER BY permission_set",
        [id],
        |row| Ok(row.get::<_, String>(0)?),
    )?;
    Ok(Some(UserRow { id: id.to_string(), name, permission_sets }))
}

pub(super) fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub(super) fn masters(conn: &Connection) -> Result<Vec<MasterRow>> {
    query_all(
        conn,
        "SELECT m.id, m.added_at, m.retired_at,
                (SELECT COUNT(*) FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
                 WHERE w.master_id = m.id AND k.retired_at IS NULL)
         FROM vault_masters m ORDER BY m.rowid",
        [],
        |row| {
            Ok(MasterRow {
                id: row.get(0)?,
                added_at: row.get(1)?,
                retired_at: row.get(2)?,
                wrapped_keys: row.get(3)?,
            })
        },
    )
}

pub(super) fn live_nodes_using(
    conn: &Connection,
    master_id: &str,
    live_since: &str,
) -> Result<Vec<VaultNode>> {
    query_all(
        conn,
        &format!("SELECT {NODE_COLUMNS} FROM vault_nodes WHERE master_id = ? AND seen_at >= ? ORDER BY id"),
        params![master_id, live_since],
        node_from_row,
    )
}

pub(super) fn record_from_row(row: &Row<'_>) -> Result<StoredRecord> {
    let id: String = row.get(0)?;
    let data: String = row.get(2)?;
    let data = serde_json::from_str(&data)
        .map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })?;
    Ok(StoredRecord { id, object: row.get(1)?, data })
}

pub(super) fn run_from_row(row: &Row<'_>) -> Result<RunRow> {
    let id: String = row.get(0)?;
    let state: String = row.get(5)?;
    let status: String = row.get(4)?;
    let state = serde_json::from_str(&state)
        .map_err(|source| StoreError::Corrupt { what: format!("run {id}"), source })?;
    Ok(RunRow {
        flow: row.get(1)?,
        object: row.get(2)?,
        record_id: row.get(3)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        state,
        fault: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        next_attempt_at: row.get(9)?,
        version: row.get(10)?,
        owner: row.get(11)?,
        id,
    })
}

pub(super) use crate::columns::by_creation;
pub(super) fn message_from_row(row: &Row<'_>) -> Result<MessageRow> {
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

pub(super) fn receipt_from_row(row: &Row<'_>) -> Result<ReceiptRow> {
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

pub(super) fn node_from_row(row: &Row<'_>) -> Result<VaultNode> {
    Ok(VaultNode {
        id: row.get(0)?,
        pid: row.get(1)?,
        host: row.get(2)?,
        master_id: row.get(3)?,
        started_at: row.get(4)?,
        seen_at: row.get(5)?,
    })
}

/// A secret with its row number, from `SELECT rowid, external_credential, principal, user_id,
/// parameter, key_id, nonce, ciphertext`.
pub(super) fn secret_row(row: &Row<'_>) -> Result<SecretRow> {
    Ok(SecretRow {
        row: row.get(0)?,
        placed: PlacedSecret {
            external_credential: row.get(1)?,
            principal: row.get(2)?,
            user_id: row.get(3)?,
            sealed: SealedSecret {
                parameter: row.get(4)?,
                key_id: row.get(5)?,
                nonce: row.get(6)?,
                ciphertext: row.get(7)?,
            },
        },
    })
}

pub(super) fn wrap_from_row(row: &Row<'_>) -> Result<KeyWrap> {
    Ok(KeyWrap { key_id: row.get(0)?, master_id: row.get(1)?, wrapped: row.get(2)? })
}
