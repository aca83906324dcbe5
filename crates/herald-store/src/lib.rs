//! Runtime state: records, runs (with their journaled interpreter state), encrypted secrets.
//!
//! SQLite in WAL mode is the embedded default. Every write that must be atomic with another (a record
//! and the runs it triggers) goes through one [`WriteTx`], inside [`Store::write`].

mod db;
mod fields;
mod ledger;
mod vault;

pub use ledger::{ConsentRow, MessageChange, MessageFilter, MessageRow, NewMessage, NewReceipt, ReceiptRow};
pub use vault::{
    ACTIVE_KEY_META, DataKeyRow, KeyWrap, MasterRetirement, MasterRow, SecretRow, VaultNode, VaultSummary,
};

use rusqlite::{Connection, OptionalExtension, Params, Row, params};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot prepare the database schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("stored JSON is corrupt in {what}: {source}")]
    Corrupt { what: String, source: serde_json::Error },
    /// The group transaction this write shared did not commit; nothing of it was kept.
    #[error("the database did not commit the write: {0}")]
    Commit(String),
    /// Another process held the database's write lock for longer than the busy timeout; nothing was
    /// written, and the same write may be tried again.
    #[error("the database is locked by another process: {0}")]
    Busy(String),
    /// A secret was sealed under a data key that a key rotation retired meanwhile: seal it again.
    #[error("data key {0} was retired while the secret was being stored; seal it again under the active key")]
    RetiredKey(i64),
    #[error("{0}")]
    Stopped(String),
    #[error("{0} was not found")]
    Missing(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database: writes go to one writer thread that commits them in groups (see `db`), reads to a
/// pool of reader connections that WAL lets run beside it.
#[derive(Clone)]
pub struct Store {
    db: Arc<db::Database>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRecord {
    pub id: String,
    pub object: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Enqueued, not started.
    Ready,
    /// Started by a worker (or interrupted by a crash while running).
    Running,
    /// Parked until `next_attempt_at`: a retry after a failure, or a rate limit.
    Waiting,
    Finished,
    Failed,
    /// A callout was in flight when the process stopped and the provider cannot deduplicate a resend.
    Unknown,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "ready",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "ready" => RunStatus::Ready,
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "finished" => RunStatus::Finished,
            "failed" => RunStatus::Failed,
            "unknown" => RunStatus::Unknown,
            _ => return None,
        })
    }

    /// Statuses written as a comma-separated list (`failed,unknown`), as the CLI and the API take them;
    /// the error names the unknown one and the known ones.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<RunStatus>, String> {
        text.split(',')
            .map(|name| {
                RunStatus::parse(name.trim()).ok_or_else(|| {
                    format!(
                        "unknown run status `{name}`; use ready, running, waiting, finished, failed or unknown"
                    )
                })
            })
            .collect()
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Unknown)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: String,
    pub flow: String,
    pub object: String,
    pub record_id: String,
    pub status: RunStatus,
    /// The interpreter's journaled state (JSON).
    pub state: serde_json::Value,
    pub fault: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub next_attempt_at: Option<String>,
}

/// A `ready` run as the sweep sees it.
#[derive(Clone, Debug)]
pub struct StaleRun {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A user of the API, with the permission sets assigned to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub permission_sets: Vec<String>,
}

/// A sealed secret and the place it belongs to.
#[derive(Clone, Debug)]
pub struct PlacedSecret {
    pub external_credential: String,
    pub principal: String,
    pub user_id: String,
    pub sealed: SealedSecret,
}

/// One encrypted secret parameter as stored.
#[derive(Clone, Debug)]
pub struct SealedSecret {
    pub parameter: String,
    /// The data key it is sealed under; `None` for a value sealed under the master key itself (the
    /// form before data keys).
    pub key_id: Option<i64>,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) a SQLite database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        let db =
            tokio::task::spawn_blocking(move || db::Database::open(&path)).await.map_err(|error| {
                StoreError::Stopped(format!("opening the database did not finish: {error}"))
            })??;
        Ok(Store { db })
    }

    /// Runs `work` as one atomic write: all of it commits or none of it. Writes queued together share
    /// one commit; this returns once the commit is durable.
    pub async fn write<R, E, F>(&self, work: F) -> std::result::Result<R, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> std::result::Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.db.write(move |conn| work(&mut WriteTx { conn })).await
    }

    /// A listing, read off the async threads.
    async fn read<R, F>(&self, work: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.db.read(work).await
    }

    /// A lookup by key, read on the calling thread (see `db::Database::lookup`).
    fn lookup<R>(&self, work: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.db.lookup(work)
    }

    pub async fn record(&self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        self.lookup(|conn| record(conn, object, id))
    }

    pub async fn records_of(&self, object: &str, limit: i64) -> Result<Vec<StoredRecord>> {
        let object = object.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT id, object, data FROM records WHERE object = ? ORDER BY rowid LIMIT ?",
                params![object, limit],
                record_from_row,
            )
        })
        .await
    }

    /// The records of `object` that `select` keeps (it may also trim them), in creation order, read
    /// on a blocking thread; with `first_only`, reading stops at the first one kept. With `fields`,
    /// only those fields of each record are read (the others are skipped, not parsed into values).
    pub async fn select_records<F>(
        &self,
        object: &str,
        fields: Option<Vec<String>>,
        first_only: bool,
        mut select: F,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>>
    where
        F: FnMut(
                serde_json::Map<String, serde_json::Value>,
            ) -> Option<serde_json::Map<String, serde_json::Value>>
            + Send
            + 'static,
    {
        let object = object.to_string();
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached("SELECT id, data FROM records WHERE object = ? ORDER BY rowid")?;
            let mut rows = statement.query([&object])?;
            let mut kept = Vec::new();
            while let Some(row) = rows.next()? {
                let data = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let record =
                    fields::parse_record(data, fields.as_deref()).map_err(|source| StoreError::Corrupt {
                        what: format!("record {}", row.get::<_, String>(0).unwrap_or_default()),
                        source,
                    })?;
                if let Some(record) = select(record) {
                    kept.push(record);
                    if first_only {
                        break;
                    }
                }
            }
            Ok(kept)
        })
        .await
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        self.lookup(|conn| query_optional(conn, RUN_COLUMNS_BY_ID, [id], run_from_row))
    }

    pub async fn runs_for_record(&self, record_id: &str) -> Result<Vec<RunRow>> {
        let record_id = record_id.to_string();
        self.read(move |conn| query_all(conn, RUNS_BY_RECORD, [record_id], run_from_row)).await
    }

    pub async fn runs_with_status(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        let placeholders = vec!["?"; statuses.len()].join(",");
        let sql = format!("{RUN_SELECT} WHERE status IN ({placeholders}) ORDER BY created_at, id LIMIT ?");
        self.runs_by_statuses(sql, statuses, limit).await
    }

    /// The newest runs first, of the given statuses (all when empty).
    pub async fn recent_runs(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        let filter = if statuses.is_empty() {
            String::new()
        } else {
            format!(" WHERE status IN ({})", vec!["?"; statuses.len()].join(","))
        };
        let sql = format!("{RUN_SELECT}{filter} ORDER BY created_at DESC, id LIMIT ?");
        self.runs_by_statuses(sql, statuses, limit).await
    }

    /// Runs a run query whose only spliced-in text is one "?" per status; every value is bound.
    async fn runs_by_statuses(&self, sql: String, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        let mut values: Vec<rusqlite::types::Value> =
            statuses.iter().map(|status| status.as_str().to_string().into()).collect();
        values.push(limit.into());
        self.read(move |conn| query_all(conn, &sql, rusqlite::params_from_iter(values), run_from_row)).await
    }

    /// `ready` runs whose row nobody touched since `before`, oldest first: what the engine's sweep
    /// checks against the runs it holds. Reads the `(status, created_at)` index; ready runs are few.
    pub async fn ready_runs_untouched_since(&self, before: &str, limit: i64) -> Result<Vec<StaleRun>> {
        let before = before.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT id, created_at, updated_at FROM runs WHERE status = 'ready' AND updated_at < ? ORDER BY created_at LIMIT ?",
                params![before, limit],
                |row| Ok(StaleRun { id: row.get(0)?, created_at: row.get(1)?, updated_at: row.get(2)? }),
            )
        })
        .await
    }

    /// Takes a ready run for a worker; `None` if another worker took it first or it is not ready.
    pub async fn claim_run(&self, id: &str, now: &str) -> Result<Option<RunRow>> {
        let (id, now) = (id.to_string(), now.to_string());
        self.write(move |tx| query_optional(tx.conn, CLAIM_RUN, [now, id], run_from_row)).await
    }

    /// Journals a run's state (the interpreter's state as JSON text).
    pub async fn save_run(
        &self,
        id: &str,
        status: RunStatus,
        state: &str,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        let (id, state, fault, now) =
            (id.to_string(), state.to_string(), fault.map(String::from), now.to_string());
        self.write(move |tx| tx.save_run(&id, status, &state, fault.as_deref(), &now)).await
    }

    /// Stores a secret; `user_id` is empty for named principals and the user's id for per-user ones.
    /// A value sealed under a data key that was retired meanwhile is refused ([`StoreError::RetiredKey`]).
    pub async fn put_secret(
        &self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
        secret: &SealedSecret,
        now: &str,
    ) -> Result<()> {
        let place = [external_credential, principal, user_id, now].map(String::from);
        let secret = secret.clone();
        self.write(move |tx| {
            let [external_credential, principal, user_id, now] = &place;
            if let Some(key_id) = secret.key_id {
                let retired: Option<Option<String>> = tx
                    .conn
                    .prepare_cached("SELECT retired_at FROM vault_keys WHERE id = ?")?
                    .query_row([key_id], |row| row.get(0))
                    .optional()?;
                match retired {
                    Some(None) => {}
                    Some(Some(_)) => return Err(StoreError::RetiredKey(key_id)),
                    None => return Err(StoreError::Missing(format!("data key {key_id}"))),
                }
            }
            tx.conn.prepare_cached(
                "INSERT INTO secrets (external_credential, principal, user_id, parameter, key_id, nonce, ciphertext, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (external_credential, principal, user_id, parameter)
                 DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                    updated_at = excluded.updated_at",
            )?
            .execute(params![
                external_credential,
                principal,
                user_id,
                secret.parameter,
                secret.key_id,
                secret.nonce,
                secret.ciphertext,
                now
            ])?;
            Ok(())
        })
        .await
    }

    pub async fn secrets(
        &self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
    ) -> Result<Vec<SealedSecret>> {
        let place = [external_credential, principal, user_id];
        self.lookup(|conn| {
            query_all(
                conn,
                "SELECT parameter, key_id, nonce, ciphertext FROM secrets
                 WHERE external_credential = ? AND principal = ? AND user_id = ? ORDER BY parameter",
                place,
                |row| {
                    Ok(SealedSecret {
                        parameter: row.get(0)?,
                        key_id: row.get(1)?,
                        nonce: row.get(2)?,
                        ciphertext: row.get(3)?,
                    })
                },
            )
        })
    }

    /// Every stored secret with its place: what a rotation checks and `herald vault status` tries.
    pub async fn all_secrets(&self) -> Result<Vec<PlacedSecret>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT external_credential, principal, user_id, parameter, key_id, nonce, ciphertext FROM secrets
                 ORDER BY external_credential, principal, user_id, parameter",
                [],
                |row| {
                    Ok(PlacedSecret {
                        external_credential: row.get(0)?,
                        principal: row.get(1)?,
                        user_id: row.get(2)?,
                        sealed: SealedSecret {
                            parameter: row.get(3)?,
                            key_id: row.get(4)?,
                            nonce: row.get(5)?,
                            ciphertext: row.get(6)?,
                        },
                    })
                },
            )
        })
        .await
    }

    pub async fn create_user(
        &self,
        id: &str,
        name: &str,
        permission_sets: &[String],
        now: &str,
    ) -> Result<()> {
        let (id, name, now) = (id.to_string(), name.to_string(), now.to_string());
        let permission_sets = permission_sets.to_vec();
        self.write(move |tx| {
            tx.conn
                .prepare_cached("INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)")?
                .execute([&id, &name, &now])?;
            for set in &permission_sets {
                tx.conn
                    .prepare_cached(
                        "INSERT INTO user_permission_sets (user_id, permission_set) VALUES (?, ?)",
                    )?
                    .execute([&id, set])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        self.lookup(|conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM users WHERE name = ? AND active = 1")?
                .query_row([name], |row| row.get(0))
                .optional()?;
            id.map_or(Ok(None), |id| user(conn, &id))
        })
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        self.lookup(|conn| user(conn, id))
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.read(|conn| {
            let ids = query_all(conn, "SELECT id FROM users WHERE active = 1 ORDER BY name", [], |row| {
                Ok(row.get::<_, String>(0)?)
            })?;
            let mut users = Vec::new();
            for id in ids {
                users.extend(user(conn, &id)?);
            }
            Ok(users)
        })
        .await
    }

    /// Deactivates a user: its tokens stop working at once. Returns whether an active user was found.
    pub async fn deactivate_user(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |tx| {
            let changed = tx
                .conn
                .prepare_cached("UPDATE users SET active = 0 WHERE name = ? AND active = 1")?
                .execute([name])?;
            Ok(changed == 1)
        })
        .await
    }

    pub async fn create_token(&self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()> {
        let values = [id, user_id, hash, now].map(String::from);
        self.write(move |tx| {
            tx.conn
                .prepare_cached("INSERT INTO tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)")?
                .execute(values)?;
            Ok(())
        })
        .await
    }

    /// The active user a token hash belongs to, if the token is not revoked.
    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<UserRow>> {
        self.lookup(|conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT user_id FROM tokens WHERE hash = ? AND revoked = 0")?
                .query_row([hash], |row| row.get(0))
                .optional()?;
            id.map_or(Ok(None), |id| user(conn, &id))
        })
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?")?
                .query_row([key], |row| row.get(0))
                .optional()?)
        })
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |tx| set_meta(tx.conn, &key, &value)).await
    }

    /// Commits the writes already queued and closes the database.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// A write transaction: a record change and the runs it triggers commit together or not at all.
/// It lives inside [`Store::write`], on the database's writer thread.
pub struct WriteTx<'c> {
    pub(crate) conn: &'c Connection,
}

/// A run to enqueue.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub flow: &'a str,
    pub object: &'a str,
    pub record_id: &'a str,
    pub state: &'a serde_json::Value,
}

impl WriteTx<'_> {
    pub fn insert_record(
        &mut self,
        object: &str,
        id: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        now: &str,
    ) -> Result<()> {
        let data = serde_json::to_string(data)
            .map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })?;
        self.conn
            .prepare_cached(
                "INSERT INTO records (id, object, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![id, object, data, now, now])?;
        Ok(())
    }

    /// The record as it is inside this transaction (for updates: the prior values).
    pub fn record(&mut self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        record(self.conn, object, id)
    }

    pub fn update_record(
        &mut self,
        id: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        now: &str,
    ) -> Result<()> {
        let data = serde_json::to_string(data)
            .map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })?;
        self.conn
            .prepare_cached("UPDATE records SET data = ?, updated_at = ? WHERE id = ?")?
            .execute(params![data, now, id])?;
        Ok(())
    }

    pub fn insert_run(&mut self, run: NewRun<'_>, now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO runs (id, flow, object, record_id, status, state, created_at, updated_at)
                 VALUES (?, ?, ?, ?, 'ready', ?, ?, ?)",
            )?
            .execute(params![run.id, run.flow, run.object, run.record_id, run.state.to_string(), now, now])?;
        Ok(())
    }

    /// Journals a run's state (JSON text) inside this transaction.
    pub fn save_run(
        &mut self,
        id: &str,
        status: RunStatus,
        state: &str,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.conn.prepare_cached(SAVE_RUN)?.execute(params![status.as_str(), state, fault, now, id])?;
        Ok(())
    }
}

const SAVE_RUN: &str =
    "UPDATE runs SET status = ?, state = ?, fault = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ?";
const RUNS_BY_RECORD: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs WHERE record_id = ? ORDER BY created_at, id";
const CLAIM_RUN: &str = "UPDATE runs SET status = 'running', next_attempt_at = NULL, updated_at = ?1 WHERE id = ?2 AND (status = 'ready' OR (status = 'waiting' AND COALESCE(next_attempt_at, '') <= ?1)) RETURNING id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at";
const RUN_SELECT: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs";
const RUN_COLUMNS_BY_ID: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs WHERE id = ?";

/// Every row of a query, mapped; a cached statement, so the SQL is parsed once per connection.
pub(crate) fn query_all<T>(
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
pub(crate) fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    rows.next()?.map(map).transpose()
}

fn record(conn: &Connection, object: &str, id: &str) -> Result<Option<StoredRecord>> {
    query_optional(
        conn,
        "SELECT id, object, data FROM records WHERE id = ? AND object = ?",
        [id, object],
        record_from_row,
    )
}

fn user(conn: &Connection, id: &str) -> Result<Option<UserRow>> {
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

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

fn record_from_row(row: &Row<'_>) -> Result<StoredRecord> {
    let id: String = row.get(0)?;
    let data: String = row.get(2)?;
    let data = serde_json::from_str(&data)
        .map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })?;
    Ok(StoredRecord { id, object: row.get(1)?, data })
}

fn run_from_row(row: &Row<'_>) -> Result<RunRow> {
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
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_record_and_its_runs_commit_together() {
        let (_dir, store) = store().await;
        let data = json!({"LastName": "Ng"}).as_object().unwrap().clone();
        let written = data.clone();
        store
            .write(move |tx| {
                tx.insert_record("Lead", "00Q1", &written, "t0")?;
                let state = json!({"k": 1});
                tx.insert_run(
                    NewRun { id: "r1", flow: "F", object: "Lead", record_id: "00Q1", state: &state },
                    "t0",
                )
            })
            .await
            .unwrap();
        assert_eq!(store.record("Lead", "00Q1").await.unwrap().unwrap().data, data);
        let runs = store.runs_for_record("00Q1").await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunStatus::Ready);
        assert!(store.claim_run("r1", "t1").await.unwrap().is_some());
        assert!(store.claim_run("r1", "t1").await.unwrap().is_none(), "a run is claimed once");
    }

    #[tokio::test]
    async fn a_waiting_run_is_claimed_only_once_due() {
        let (_dir, store) = store().await;
        let data = json!({}).as_object().unwrap().clone();
        let state = json!({"k": 1});
        store
            .write(move |tx| {
                tx.insert_record("Lead", "00Q3", &data, "t0")?;
                tx.insert_run(
                    NewRun { id: "r3", flow: "F", object: "Lead", record_id: "00Q3", state: &state },
                    "t0",
                )?;
                tx.wait_run("r3", &state.to_string(), "2026-11-21T10:00:00.000000Z", "retrying", "t0")
            })
            .await
            .unwrap();
        assert!(store.claim_run("r3", "2026-11-21T09:59:59.999999Z").await.unwrap().is_none(), "not due yet");
        let claimed = store.claim_run("r3", "2026-11-21T10:00:00.000001Z").await.unwrap().unwrap();
        assert_eq!((claimed.status, claimed.next_attempt_at), (RunStatus::Running, None));
    }

    #[tokio::test]
    async fn users_tokens_and_permission_sets() {
        let (_dir, store) = store().await;
        store.create_user("005a", "ada", &["Kixie_Integration_User".into()], "t0").await.unwrap();
        assert!(store.create_user("005b", "ada", &[], "t0").await.is_err(), "names are unique");
        store.create_token("tok1", "005a", "hash1", "t0").await.unwrap();
        let user = store.user_by_token_hash("hash1").await.unwrap().unwrap();
        assert_eq!(user.name, "ada");
        assert_eq!(user.permission_sets, ["Kixie_Integration_User"]);
        assert!(store.user_by_token_hash("other").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_spares_the_writes_it_was_grouped_with() {
        let (_dir, store) = store().await;
        let data = json!({}).as_object().unwrap().clone();
        // Queued together, so the writer groups them into one transaction.
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let (store, data) = (store.clone(), data.clone());
                tokio::spawn(async move {
                    store
                        .write(move |tx| {
                            tx.insert_record("Lead", &format!("00Q{i}"), &data, "t0")?;
                            if i % 2 == 1 {
                                return Err(StoreError::Missing(format!("test failure {i}")));
                            }
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for write in writes {
            outcomes.push(write.await.unwrap());
        }
        for (i, outcome) in outcomes.iter().enumerate() {
            assert_eq!(outcome.is_ok(), i % 2 == 0, "write {i}: {outcome:?}");
            let kept = store.record("Lead", &format!("00Q{i}")).await.unwrap();
            assert_eq!(kept.is_some(), i % 2 == 0, "record of write {i}");
        }
    }

    #[tokio::test]
    async fn a_panicking_write_is_rolled_back_and_the_writer_goes_on() {
        let (_dir, store) = store().await;
        let data = json!({}).as_object().unwrap().clone();
        let first = data.clone();
        let outcome: Result<()> = store
            .write(move |tx| {
                tx.insert_record("Lead", "00QP", &first, "t0")?;
                panic!("a bug in a write");
            })
            .await;
        assert!(matches!(outcome, Err(StoreError::Stopped(_))), "{outcome:?}");
        assert!(store.record("Lead", "00QP").await.unwrap().is_none());
        store.write(move |tx| tx.insert_record("Lead", "00QQ", &data, "t0")).await.unwrap();
        assert!(store.record("Lead", "00QQ").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn writes_queued_before_close_are_committed_and_later_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.unwrap();
        let data = json!({}).as_object().unwrap().clone();
        let pending: Vec<_> = (0..50)
            .map(|i| {
                let (store, data) = (store.clone(), data.clone());
                tokio::spawn(async move {
                    store.write(move |tx| tx.insert_record("Lead", &format!("00Q{i}"), &data, "t0")).await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        for write in pending {
            write.await.unwrap().unwrap();
        }
        store.close().await;
        let refused = store.set_meta("k", "v").await;
        assert!(matches!(refused, Err(StoreError::Stopped(_))), "{refused:?}");
        let reopened = Store::open(&path).await.unwrap();
        assert_eq!(reopened.records_of("Lead", 100).await.unwrap().len(), 50);
    }

    #[tokio::test]
    async fn secrets_are_upserted_per_parameter() {
        let (_dir, store) = store().await;
        let sealed = SealedSecret {
            parameter: "apikey".into(),
            key_id: None,
            nonce: vec![1; 24],
            ciphertext: vec![2; 40],
        };
        store.put_secret("X", "P", "", &sealed, "t0").await.unwrap();
        let again = SealedSecret { ciphertext: vec![3; 40], ..sealed.clone() };
        store.put_secret("X", "P", "", &again, "t1").await.unwrap();
        store.put_secret("X", "P", "005u1", &sealed, "t1").await.unwrap();
        let stored = store.secrets("X", "P", "").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].ciphertext, vec![3; 40]);
        assert_eq!(store.secrets("X", "P", "005u1").await.unwrap()[0].ciphertext, vec![2; 40]);
        assert_eq!(store.all_secrets().await.unwrap().len(), 2);
    }
}
