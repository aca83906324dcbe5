//! Statements and rows: a connection with its prepared statements, the queries the reads and the
//! write transaction share, and how a row becomes one of the store's types.

use crate::{
    KeyWrap, MasterRow, MessageRow, PlacedSecret, ReceiptRow, Result, RunRow, RunStatus, SealedSecret,
    SecretRow, StoreError, StoredRecord, UserRow, VaultNode,
};
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

/// A statement's bound values.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> StoreError {
        use postgres::error::SqlState;
        match error.code() {
            // Two writers waited on each other's rows, or a lock waited too long: nothing of the
            // write was kept, and the same write may be tried again.
            Some(code)
                if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::LOCK_NOT_AVAILABLE =>
            {
                StoreError::Busy(described(&error))
            }
            _ => StoreError::Database(described(&error).into()),
        }
    }
}

/// The driver's error with its causes: its own text is only "db error" or "error connecting to
/// server", and the server's message is in the cause.
pub(super) fn described(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Round trips to the server made by every connection of this process so far (each statement,
/// preparation or batch of control statements is one): what `cargo bench -p herald-store` reports per
/// write.
static ROUND_TRIPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The round trips made so far (see `ROUND_TRIPS`).
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed)
}

fn count_trip() {
    ROUND_TRIPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// One connection and the statements prepared on it: each SQL text is parsed once per connection.
pub(super) struct Conn {
    client: Client,
    prepared: HashMap<String, Statement>,
    /// A statement found the connection gone, or the server ending it (an administrator, a
    /// restart): the driver may not have noticed it closed yet.
    broken: bool,
    /// Statements that failed on this connection: one that failed inside a transaction has made
    /// PostgreSQL refuse everything after it until a rollback, even if the write's closure went on.
    failures: u64,
}

impl Conn {
    pub(super) fn new(client: Client) -> Conn {
        Conn { client, prepared: HashMap::new(), broken: false, failures: 0 }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// How many statements have failed on this connection so far.
    pub(super) fn failures(&self) -> u64 {
        self.failures
    }

    /// Notes whether an error means the connection is gone, and converts it.
    fn checked(&mut self, error: postgres::Error) -> StoreError {
        self.failures += 1;
        let ending = error.code().is_some_and(|code| {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        });
        if ending || error.is_closed() {
            self.broken = true;
        }
        error.into()
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        count_trip();
        let statement = self.client.prepare(sql).map_err(|error| self.checked(error))?;
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        count_trip();
        self.client.query(&statement, params).map_err(|error| self.checked(error))
    }

    pub(super) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        count_trip();
        self.client.query_opt(&statement, params).map_err(|error| self.checked(error))
    }

    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row> {
        let statement = self.statement(sql)?;
        count_trip();
        self.client.query_one(&statement, params).map_err(|error| self.checked(error))
    }

    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64> {
        let statement = self.statement(sql)?;
        count_trip();
        self.client.execute(&statement, params).map_err(|error| self.checked(error))
    }

    /// Statements without values, sent at once (transaction control).
    pub(super) fn batch(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        count_trip();
        let outcome = self.client.batch_execute(sql);
        if let Err(error) = &outcome
            && (error.is_closed() || error.code().is_some_and(|code| code.code().starts_with("57P")))
        {
            self.broken = true;
        }
        outcome
    }

    /// Every row of a query, mapped.
    pub(super) fn all<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(map).collect()
    }

    /// The row of a query, mapped, if there is one.
    pub(super) fn optional<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.query_opt(sql, params)?.as_ref().map(map).transpose()
    }
}

/// Column `index` of a row; a type that does not match is an error, not a panic.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    Ok(row.try_get(index)?)
}

pub(super) const RUN_SELECT: &str = concat!("SELECT ", run_columns!(), " FROM runs");
pub(super) const RUN_BY_ID: &str = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1");
/// A record's waiting runs, read in every write that changes a record with scheduled paths (see the
/// `runs_by_record` index).
pub(super) const WAITING_RUNS_OF_RECORD: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs WHERE record_id = $1 AND status = 'waiting' ORDER BY created_at, id"
);
pub(super) const RUNS_BY_RECORD: &str =
    concat!("SELECT ", run_columns!(), " FROM runs WHERE record_id = $1 ORDER BY created_at, id");

pub(super) use crate::columns::NODE_COLUMNS;

pub(super) const WRAPS_UNDER: &str = "SELECT w.key_id, w.master_id, w.wrapped FROM vault_key_wraps w
     JOIN vault_keys k ON k.id = w.key_id WHERE w.master_id = $1 AND k.retired_at IS NULL ORDER BY w.key_id";

pub(super) const HAS_DATA_KEYS: &str = "SELECT EXISTS (SELECT 1 FROM vault_keys)";

pub(super) fn record(conn: &mut Conn, object: &str, id: &str) -> Result<Option<StoredRecord>> {
    conn.optional(
        "SELECT id, object, data FROM records WHERE id = $1 AND object = $2",
        &[&id, &object],
        record_from_row,
    )
}

pub(super) fn user(conn: &mut Conn, id: &str) -> Result<Option<UserRow>> {
    let Some(row) = conn.query_opt("SELECT name FROM users WHERE id = $1 AND active", &[&id])? else {
        return Ok(None);
    };
    let name: String = get(&row, 0)?;
    let permission_sets = conn.all(
        "SELECT permission_set FROM user_permission_sets WHERE user_id = $1 ORDER BY permission_set",
        &[&id],
        |row| get(row, 0),
    )?;
    Ok(Some(UserRow { id: id.to_string(), name, permission_sets }))
}

pub(super) fn meta(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    conn.optional("SELECT value FROM meta WHERE key = $1", &[&key], |row| get(row, 0))
}

pub(super) fn masters(conn: &mut Conn) -> Result<Vec<MasterRow>> {
    conn.all(
        "SELECT m.id, m.added_at, m.retired_at,
                (SELECT COUNT(*) FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
                 WHERE w.master_id = m.id AND k.retired_at IS NULL)
         FROM vault_masters m ORDER BY m.seq",
        &[],
        |row| {
            Ok(MasterRow {
                id: get(row, 0)?,
                added_at: get(row, 1)?,
                retired_at: get(row, 2)?,
                wrapped_keys: get(row, 3)?,
            })
        },
    )
}

pub(super) fn live_nodes_using(conn: &mut Conn, master_id: &str, live_since: &str) -> Result<Vec<VaultNode>> {
    conn.all(
        &format!("SELECT {NODE_COLUMNS} FROM vault_nodes WHERE master_id = $1 AND seen_at >= $2 ORDER BY id"),
        &[&master_id, &live_since],
        node_from_row,
    )
}

fn corrupt(what: String) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

pub(super) fn record_from_row(row: &Row) -> Result<StoredRecord> {
    let id: String = get(row, 0)?;
    let data = serde_json::from_str(get(row, 2)?).map_err(corrupt(format!("record {id}")))?;
    Ok(StoredRecord { id, object: get(row, 1)?, data })
}

pub(super) fn run_from_row(row: &Row) -> Result<RunRow> {
    let id: String = get(row, 0)?;
    let state = serde_json::from_str(get(row, 5)?).map_err(corrupt(format!("run {id}")))?;
    Ok(RunRow {
        flow: get(row, 1)?,
        object: get(row, 2)?,
        record_id: get(row, 3)?,
        status: RunStatus::parse(get(row, 4)?).unwrap_or(RunStatus::Failed),
        state,
        fault: get(row, 6)?,
        created_at: get(row, 7)?,
        updated_at: get(row, 8)?,
        next_attempt_at: get(row, 9)?,
        version: get(row, 10)?,
        owner: get(row, 11)?,
        id,
    })
}

pub(super) use crate::columns::by_creation;
pub(super) fn message_from_row(row: &Row) -> Result<MessageRow> {
    let id: String = get(row, 0)?;
    let history = serde_json::from_str(get(row, 15)?).map_err(corrupt(format!("message {id}")))?;
    Ok(MessageRow {
        run_id: get(row, 1)?,
        element: get(row, 2)?,
        idempotency_key: get(row, 3)?,
        position: get(row, 4)?,
        provider: get(row, 5)?,
        named_credential: get(row, 6)?,
        channel: get(row, 7)?,
        destination: get(row, 8)?,
        sender: get(row, 9)?,
        client_message_id: get(row, 10)?,
        provider_message_id: get(row, 11)?,
        encoding: get(row, 12)?,
        segments: get(row, 13)?,
        status: get(row, 14)?,
        history,
        error_code: get(row, 16)?,
        error_text: get(row, 17)?,
        price: get(row, 18)?,
        currency: get(row, 19)?,
        attempts: get(row, 20)?,
        created_at: get(row, 21)?,
        updated_at: get(row, 22)?,
        id,
    })
}

pub(super) fn receipt_from_row(row: &Row) -> Result<ReceiptRow> {
    Ok(ReceiptRow {
        id: get(row, 0)?,
        webhook: get(row, 1)?,
        provider: get(row, 2)?,
        kind: get(row, 3)?,
        message_id: get(row, 4)?,
        provider_message_id: get(row, 5)?,
        client_message_id: get(row, 6)?,
        status: get(row, 7)?,
        applied: get(row, 8)?,
        body: get(row, 9)?,
        received_at: get(row, 10)?,
    })
}

pub(super) fn node_from_row(row: &Row) -> Result<VaultNode> {
    Ok(VaultNode {
        id: get(row, 0)?,
        pid: get(row, 1)?,
        host: get(row, 2)?,
        master_id: get(row, 3)?,
        started_at: get(row, 4)?,
        seen_at: get(row, 5)?,
    })
}

pub(super) fn sealed_from(row: &Row, first: usize) -> Result<SealedSecret> {
    Ok(SealedSecret {
        parameter: get(row, first)?,
        key_id: get(row, first + 1)?,
        nonce: get(row, first + 2)?,
        ciphertext: get(row, first + 3)?,
    })
}

/// A secret with its place, from `external_credential, principal, user_id, parameter, key_id, nonce,
/// ciphertext` starting at column `first`.
pub(super) fn placed_from(row: &Row, first: usize) -> Result<PlacedSecret> {
    Ok(PlacedSecret {
        external_credential: get(row, first)?,
        principal: get(row, first + 1)?,
        user_id: get(row, first + 2)?,
        sealed: sealed_from(row, first + 3)?,
    })
}

/// A secret with its row number, from `SELECT seq, external_credential, ... ciphertext`.
pub(super) fn secret_row(row: &Row) -> Result<SecretRow> {
    Ok(SecretRow { row: get(row, 0)?, placed: placed_from(row, 1)? })
}

pub(super) fn wrap_from_row(row: &Row) -> Result<KeyWrap> {
    Ok(KeyWrap { key_id: get(row, 0)?, master_id: get(row, 1)?, wrapped: get(row, 2)? })
}
