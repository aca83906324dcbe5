//! Runtime state: records, runs (with their journaled interpreter state), encrypted secrets.
//!
//! SQLite in WAL mode is the embedded default. Every write that must be atomic with another (a record
//! and the runs it triggers) goes through one [`WriteTx`].

mod ledger;

pub use ledger::{ConsentRow, MessageChange, MessageFilter, MessageRow, NewMessage, NewReceipt, ReceiptRow};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot prepare the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored JSON is corrupt in {what}: {source}")]
    Corrupt { what: String, source: serde_json::Error },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct Store {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one writer connection. SQLite takes one writer at a time anyway; queueing writers here,
    /// in the pool, replaces SQLite's busy-wait sleeps (1, 2, 5 ... 100 ms) with a fair async wait.
    writer: SqlitePool,
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
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) a SQLite database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL survives a process crash; only a power loss may drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let open_error = |source| StoreError::Open { path: path.display().to_string(), source };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let pool =
            SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(open_error)?;
        Ok(Store { pool, writer })
    }

    pub async fn begin(&self) -> Result<WriteTx> {
        // BEGIN IMMEDIATE takes the write lock at once, so two writers never deadlock on upgrade.
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx })
    }

    pub async fn record(&self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        record(&self.pool, object, id).await
    }

    pub async fn records_of(&self, object: &str, limit: i64) -> Result<Vec<StoredRecord>> {
        let rows =
            sqlx::query("SELECT id, object, data FROM records WHERE object = ? ORDER BY rowid LIMIT ?")
                .bind(object)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(RUN_COLUMNS_BY_ID).bind(id).fetch_optional(&self.pool).await?;
        row.map(|row| run_from_row(&row)).transpose()
    }

    pub async fn runs_for_record(&self, record_id: &str) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(RUNS_BY_RECORD).bind(record_id).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn runs_with_status(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        let placeholders = vec!["?"; statuses.len()].join(",");
        let sql = format!("{RUN_SELECT} WHERE status IN ({placeholders}) ORDER BY created_at, id LIMIT ?");
        // Only "?" placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for status in statuses {
            query = query.bind(status.as_str());
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The newest runs first, of the given statuses (all when empty).
    pub async fn recent_runs(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        let filter = if statuses.is_empty() {
            String::new()
        } else {
            format!(" WHERE status IN ({})", vec!["?"; statuses.len()].join(","))
        };
        let sql = format!("{RUN_SELECT}{filter} ORDER BY created_at DESC, id LIMIT ?");
        // Only "?" placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for status in statuses {
            query = query.bind(status.as_str());
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Takes a ready run for a worker; `None` if another worker took it first or it is not ready.
    pub async fn claim_run(&self, id: &str, now: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(CLAIM_RUN).bind(now).bind(id).fetch_optional(&self.writer).await?;
        row.map(|row| run_from_row(&row)).transpose()
    }

    /// Journals a run's state.
    pub async fn save_run(
        &self,
        id: &str,
        status: RunStatus,
        state: &serde_json::Value,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        save_run(&self.writer, id, status, state, fault, now).await
    }

    /// Stores a secret; `user_id` is empty for named principals and the user's id for per-user ones.
    pub async fn put_secret(
        &self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
        secret: &SealedSecret,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO secrets (external_credential, principal, user_id, parameter, nonce, ciphertext, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (external_credential, principal, user_id, parameter)
             DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        )
        .bind(external_credential)
        .bind(principal)
        .bind(user_id)
        .bind(&secret.parameter)
        .bind(&secret.nonce)
        .bind(&secret.ciphertext)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn secrets(
        &self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
    ) -> Result<Vec<SealedSecret>> {
        let rows = sqlx::query(
            "SELECT parameter, nonce, ciphertext FROM secrets
             WHERE external_credential = ? AND principal = ? AND user_id = ? ORDER BY parameter",
        )
        .bind(external_credential)
        .bind(principal)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SealedSecret { parameter: row.get(0), nonce: row.get(1), ciphertext: row.get(2) })
            .collect())
    }

    /// Every stored secret with its place, for re-encrypting under a new key.
    pub async fn all_secrets(&self) -> Result<Vec<PlacedSecret>> {
        let rows = sqlx::query(
            "SELECT external_credential, principal, user_id, parameter, nonce, ciphertext FROM secrets
             ORDER BY external_credential, principal, user_id, parameter",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| PlacedSecret {
                external_credential: row.get(0),
                principal: row.get(1),
                user_id: row.get(2),
                sealed: SealedSecret { parameter: row.get(3), nonce: row.get(4), ciphertext: row.get(5) },
            })
            .collect())
    }

    /// Replaces every secret and a meta value in one transaction: a key rotation either happens whole or
    /// not at all.
    pub async fn rewrite_secrets(
        &self,
        secrets: &[PlacedSecret],
        meta: (&str, &str),
        now: &str,
    ) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for placed in secrets {
            let updated = sqlx::query(
                "UPDATE secrets SET nonce = ?, ciphertext = ?, updated_at = ?
                 WHERE external_credential = ? AND principal = ? AND user_id = ? AND parameter = ?",
            )
            .bind(&placed.sealed.nonce)
            .bind(&placed.sealed.ciphertext)
            .bind(now)
            .bind(&placed.external_credential)
            .bind(&placed.principal)
            .bind(&placed.user_id)
            .bind(&placed.sealed.parameter)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::Database(sqlx::Error::RowNotFound));
            }
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(meta.0)
            .bind(meta.1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_user(
        &self,
        id: &str,
        name: &str,
        permission_sets: &[String],
        now: &str,
    ) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for set in permission_sets {
            sqlx::query("INSERT INTO user_permission_sets (user_id, permission_set) VALUES (?, ?)")
                .bind(id)
                .bind(set)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query("SELECT id FROM users WHERE name = ? AND active = 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.user(&row.get::<String, _>(0)).await,
            None => Ok(None),
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let Some(row) = sqlx::query("SELECT id, name FROM users WHERE id = ? AND active = 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let permission_sets = sqlx::query_scalar(
            "SELECT permission_set FROM user_permission_sets WHERE user_id = ? ORDER BY permission_set",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(UserRow { id: row.get(0), name: row.get(1), permission_sets }))
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE active = 1 ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut users = Vec::new();
        for id in ids {
            if let Some(user) = self.user(&id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Deactivates a user: its tokens stop working at once. Returns whether an active user was found.
    pub async fn deactivate_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET active = 0 WHERE name = ? AND active = 1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn create_token(&self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()> {
        sqlx::query("INSERT INTO tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The active user a token hash belongs to, if the token is not revoked.
    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<UserRow>> {
        let user_id: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM tokens WHERE hash = ? AND revoked = 0")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        match user_id {
            Some(id) => self.user(&id).await,
            None => Ok(None),
        }
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// A write transaction: a record change and the runs it triggers commit together or not at all.
pub struct WriteTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

/// A run to enqueue.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub flow: &'a str,
    pub object: &'a str,
    pub record_id: &'a str,
    pub state: &'a serde_json::Value,
}

impl WriteTx {
    pub async fn insert_record(
        &mut self,
        object: &str,
        id: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        now: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO records (id, object, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(object)
            .bind(serde_json::Value::Object(data.clone()).to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The record as it is inside this transaction (for updates: the prior values).
    pub async fn record(&mut self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        record(&mut *self.tx, object, id).await
    }

    pub async fn update_record(
        &mut self,
        id: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        now: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE records SET data = ?, updated_at = ? WHERE id = ?")
            .bind(serde_json::Value::Object(data.clone()).to_string())
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_run(&mut self, run: NewRun<'_>, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (id, flow, object, record_id, status, state, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'ready', ?, ?, ?)",
        )
        .bind(run.id)
        .bind(run.flow)
        .bind(run.object)
        .bind(run.record_id)
        .bind(run.state.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Journals a run's state inside this transaction.
    pub async fn save_run(
        &mut self,
        id: &str,
        status: RunStatus,
        state: &serde_json::Value,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        save_run(&mut *self.tx, id, status, state, fault, now).await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

const SAVE_RUN: &str =
    "UPDATE runs SET status = ?, state = ?, fault = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ?";
const RUNS_BY_RECORD: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs WHERE record_id = ? ORDER BY created_at, id";
const CLAIM_RUN: &str = "UPDATE runs SET status = 'running', next_attempt_at = NULL, updated_at = ?1 WHERE id = ?2 AND (status = 'ready' OR (status = 'waiting' AND COALESCE(next_attempt_at, '') <= ?1)) RETURNING id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at";
const RUN_SELECT: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs";
const RUN_COLUMNS_BY_ID: &str = "SELECT id, flow, object, record_id, status, state, fault, created_at, updated_at, next_attempt_at FROM runs WHERE id = ?";

async fn record<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    object: &str,
    id: &str,
) -> Result<Option<StoredRecord>> {
    let row = sqlx::query("SELECT id, object, data FROM records WHERE id = ? AND object = ?")
        .bind(id)
        .bind(object)
        .fetch_optional(executor)
        .await?;
    row.map(|row| record_from_row(&row)).transpose()
}

async fn save_run<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    id: &str,
    status: RunStatus,
    state: &serde_json::Value,
    fault: Option<&str>,
    now: &str,
) -> Result<()> {
    sqlx::query(SAVE_RUN)
        .bind(status.as_str())
        .bind(state.to_string())
        .bind(fault)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<StoredRecord> {
    let id: String = row.get(0);
    let data: String = row.get(2);
    let data = serde_json::from_str(&data)
        .map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })?;
    Ok(StoredRecord { id, object: row.get(1), data })
}

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunRow> {
    let id: String = row.get(0);
    let state: String = row.get(5);
    let status: String = row.get(4);
    let state = serde_json::from_str(&state)
        .map_err(|source| StoreError::Corrupt { what: format!("run {id}"), source })?;
    Ok(RunRow {
        flow: row.get(1),
        object: row.get(2),
        record_id: row.get(3),
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        state,
        fault: row.get(6),
        created_at: row.get(7),
        updated_at: row.get(8),
        next_attempt_at: row.get(9),
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
        let mut tx = store.begin().await.unwrap();
        tx.insert_record("Lead", "00Q1", &data, "t0").await.unwrap();
        let state = json!({"k": 1});
        tx.insert_run(NewRun { id: "r1", flow: "F", object: "Lead", record_id: "00Q1", state: &state }, "t0")
            .await
            .unwrap();
        tx.commit().await.unwrap();
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
        let mut tx = store.begin().await.unwrap();
        tx.insert_record("Lead", "00Q3", &data, "t0").await.unwrap();
        tx.insert_run(NewRun { id: "r3", flow: "F", object: "Lead", record_id: "00Q3", state: &state }, "t0")
            .await
            .unwrap();
        tx.wait_run("r3", &state, "2026-11-21T10:00:00.000000Z", "retrying", "t0").await.unwrap();
        tx.commit().await.unwrap();
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
    async fn a_dropped_transaction_leaves_nothing() {
        let (_dir, store) = store().await;
        let data = json!({}).as_object().unwrap().clone();
        let mut tx = store.begin().await.unwrap();
        tx.insert_record("Lead", "00Q2", &data, "t0").await.unwrap();
        drop(tx);
        assert!(store.record("Lead", "00Q2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn secrets_are_upserted_per_parameter() {
        let (_dir, store) = store().await;
        let sealed = SealedSecret { parameter: "apikey".into(), nonce: vec![1; 24], ciphertext: vec![2; 40] };
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
