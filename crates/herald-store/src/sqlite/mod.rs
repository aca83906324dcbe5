//! The SQLite backend, the embedded default: one database file in WAL mode.
//!
//! Everything that is SQLite's own lives in this folder: the connection settings (`synchronous`,
//! busy timeout), the migrations, the writer thread and its group commit, the WAL checkpoints, the
//! reader pool (`db`), and every statement (`rows`, `tx`, and the reads below). Nothing outside it
//! names rusqlite.
//!
//! Reads come in two kinds. A lookup by key takes a few microseconds, less than sending it to another
//! thread and back, so it runs on the calling thread on a pooled reader connection and its future is
//! ready at once; a listing (unbounded in size) runs on a blocking thread.

mod copy;
mod db;
mod rows;
#[cfg(test)]
mod tests;
mod tx;

use crate::backend::{BoxFuture, RecordFilter};
use crate::copy::{Cell, Page, Table};
use crate::{
    AccountRow, Backend, Bucket, ConsentRow, Created, CreatedCount, DataKeyRow, Durability, KeyWrap,
    LeadMessage, MasterRow, MessageFilter, MessageRow, PlacedSecret, ProjectVersionRow, ReceiptRow, RecordAt,
    Result, RunQuery, RunRow, RunStatus, SealedSecret, SecretSetting, SessionRow, StaleRun, StoreError,
    StoredRecord, TokenRow, UserRow, VaultNode, VaultSummary, Write,
};
use rows::{
    HAS_DATA_KEYS, NODE_COLUMNS, RUN_BY_ID, RUN_SELECT, RUNS_BY_RECORD, WRAPS_UNDER, masters,
    message_from_row, node_from_row, query_all, query_optional, receipt_from_row, record_from_row,
    run_from_row, user, wrap_from_row,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Database(error.into())
    }
}

/// A SQLite database file.
pub struct SqliteBackend {
    db: Arc<db::Database>,
}

impl SqliteBackend {
    /// Opens (creating if needed) a database file and brings its schema up to date. Blocks: call it
    /// off the async threads.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteBackend> {
        Ok(SqliteBackend { db: db::Database::open(path, durability)? })
    }

    /// Where the schema of the file at `path` stands (see [`crate::Store::pending_migrations`]).
    pub(crate) fn schema_version(path: &Path) -> Result<crate::SchemaVersion> {
        db::schema_version(path)
    }

    /// Writes a consistent copy of the database file `from` to `to` with `VACUUM INTO`, which reads
    /// one snapshot (a writer elsewhere is not blocked and its later commits are not in the copy).
    pub(crate) fn copy(from: &Path, to: &Path) -> Result<()> {
        if !from.exists() {
            return Ok(());
        }
        let conn = Connection::open_with_flags(
            from,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: from.display().to_string(), source: source.into() })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let target = to.to_str().ok_or_else(|| {
            StoreError::Stopped(format!("{} is not a path SQLite can write to", to.display()))
        })?;
        conn.execute("VACUUM INTO ?1", params![target])?;
        Ok(())
    }

    /// A lookup by key, on the calling thread.
    fn lookup<'a, R: Send + 'a>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R>,
    ) -> BoxFuture<'a, Result<R>> {
        Box::pin(std::future::ready(self.db.lookup(work)))
    }

    /// A listing, on a blocking thread.
    fn read<R, F>(&self, work: F) -> BoxFuture<'static, Result<R>>
    where
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let db = Arc::clone(&self.db);
        Box::pin(async move { db.read(work).await })
    }

    /// A run query whose only spliced-in text is one "?" per status; every value is bound.
    fn runs_by_statuses(
        &self,
        sql: String,
        statuses: &[RunStatus],
        limit: i64,
    ) -> BoxFuture<'static, Result<Vec<RunRow>>> {
        let mut values: Vec<rusqlite::types::Value> =
            statuses.iter().map(|status| status.as_str().to_string().into()).collect();
        values.push(limit.into());
        self.read(move |conn| query_all(conn, &sql, rusqlite::params_from_iter(values), run_from_row))
    }
}

/// Rows of a table created per period since `?2`, by its key; `?1` is the period's prefix length.
pub(super) fn created_per_bucket_sql(table: Created) -> String {
    let (name, key) = (table.table(), table.key());
    format!(
        "SELECT substr(created_at, 1, ?1) AS bucket, {key}, COUNT(*) FROM {name}
         WHERE created_at >= ?2 GROUP BY bucket, {key} ORDER BY bucket, {key}"
    )
}

/// The messages of the runs of the records created in `[?1, ?2)`, newest records first.
pub(super) const LEAD_MESSAGES: &str = "SELECT rec.id, rec.created_at, m.created_at, m.status, m.history
     FROM records rec JOIN runs r ON r.record_id = rec.id JOIN messages m ON m.run_id = r.id
     WHERE rec.created_at >= ?1 AND rec.created_at < ?2
     ORDER BY rec.created_at DESC, m.created_at LIMIT ?3";

/// A page of an object's records, newest first: `records_by_object` holds the object and (as every
/// SQLite index does) the rowid, which is creation order, so the page is read off the index's end.
pub(super) const RECORDS_NEWEST_FIRST: &str = "SELECT id, object, data, rowid FROM records
     WHERE object = ?1 AND (?2 IS NULL OR rowid < ?2) ORDER BY rowid DESC LIMIT ?3";

/// A message's receipts, by `receipts_by_message`.
pub(super) const RECEIPTS_OF_MESSAGE: &str = select_receipts!("WHERE message_id = ? ORDER BY id");

/// The ledger query for `filter`, with only the conditions it sets: SQLite plans a statement once,
/// and `(? IS NULL OR destination = ?)` would keep it from the destination index.
pub(super) fn messages_query(filter: &MessageFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let given = [
        ("run_id = ?", &filter.run_id),
        ("destination = ?", &filter.destination),
        ("status = ?", &filter.status),
        ("provider = ?", &filter.provider),
        ("channel = ?", &filter.channel),
    ];
    for (condition, value) in given {
        if let Some(value) = value {
            conditions.push(condition);
            values.push(value.clone().into());
        }
    }
    if let Some((created_at, id)) = &filter.before {
        conditions.push("(created_at, id) < (?, ?)");
        values.push(created_at.clone().into());
        values.push(id.clone().into());
    }
    values.push((if filter.limit > 0 { filter.limit } else { 100 }).into());
    let filtered =
        if conditions.is_empty() { String::new() } else { format!("WHERE {} ", conditions.join(" AND ")) };
    (format!("{}{filtered}ORDER BY created_at DESC, id DESC LIMIT ?", select_messages!("")), values)
}

fn placeholders(count: usize) -> String {
    vec!["?"; count].join(",")
}

impl Backend for SqliteBackend {
    fn submit(&self, write: Write) {
        self.db.submit(write);
    }

    /// One server per file: SQLite's writer lock serialises processes, but herald's queue, rate
    /// limits and consent live in the server's memory.
    fn shared(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.db.close())
    }

    fn record<'a>(&'a self, object: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        self.lookup(|conn| rows::record(conn, object, id))
    }

    fn records_of<'a>(&'a self, object: &'a str, limit: i64) -> BoxFuture<'a, Result<Vec<StoredRecord>>> {
        let object = object.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT id, object, data FROM records WHERE object = ? ORDER BY rowid LIMIT ?",
                params![object, limit],
                record_from_row,
            )
        })
    }

    fn records_newest_first<'a>(
        &'a self,
        object: &'a str,
        before: Option<i64>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RecordAt>>> {
        let object = object.to_string();
        self.read(move |conn| {
            query_all(conn, RECORDS_NEWEST_FIRST, params![object, before, limit], |row| {
                let position = row.get(3)?;
                Ok(RecordAt { position, record: record_from_row(row)? })
            })
        })
    }

    fn select_records<'a>(
        &'a self,
        object: &'a str,
        fields: Option<Vec<String>>,
        first_only: bool,
        mut select: RecordFilter,
    ) -> BoxFuture<'a, Result<Vec<Map<String, Value>>>> {
        let object = object.to_string();
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached("SELECT id, data FROM records WHERE object = ? ORDER BY rowid")?;
            let mut rows = statement.query([&object])?;
            let mut kept = Vec::new();
            while let Some(row) = rows.next()? {
                let data = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let record = crate::fields::parse_record(data, fields.as_deref()).map_err(|source| {
                    StoreError::Corrupt {
                        what: format!("record {}", row.get::<_, String>(0).unwrap_or_default()),
                        source,
                    }
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
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>>> {
        self.lookup(|conn| query_optional(conn, RUN_BY_ID, [id], run_from_row))
    }

    fn runs_for_record<'a>(&'a self, record_id: &'a str) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let record_id = record_id.to_string();
        self.read(move |conn| query_all(conn, RUNS_BY_RECORD, [record_id], run_from_row))
    }

    fn runs_with_status<'a>(
        &'a self,
        statuses: &'a [RunStatus],
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let sql = format!(
            "{RUN_SELECT} WHERE status IN ({}) ORDER BY created_at, id LIMIT ?",
            placeholders(statuses.len())
        );
        self.runs_by_statuses(sql, statuses, limit)
    }

    fn runs_page<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let mut conditions = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if !query.statuses.is_empty() {
            conditions.push(format!("status IN ({})", placeholders(query.statuses.len())));
            values.extend(query.statuses.iter().map(|status| status.as_str().to_string().into()));
        }
        if let Some(flow) = &query.flow {
            conditions.push("flow = ?".to_string());
            values.push(flow.clone().into());
        }
        if let Some((created_at, id)) = &query.after {
            conditions.push("(created_at < ? OR (created_at = ? AND id > ?))".to_string());
            values.extend([created_at.clone().into(), created_at.clone().into(), id.clone().into()]);
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!("{RUN_SELECT}{filter} ORDER BY created_at DESC, id LIMIT ?");
        values.push(query.limit.into());
        self.read(move |conn| query_all(conn, &sql, rusqlite::params_from_iter(values), run_from_row))
    }

    fn created_per_bucket<'a>(
        &'a self,
        table: Created,
        bucket: Bucket,
        since: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CreatedCount>>> {
        let since = since.to_string();
        let sql = created_per_bucket_sql(table);
        let width = bucket.prefix_len() as i64;
        self.read(move |conn| {
            query_all(conn, &sql, params![width, since], |row| {
                Ok(CreatedCount { bucket: row.get(0)?, key: row.get(1)?, count: row.get(2)? })
            })
        })
    }

    fn lead_messages<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<LeadMessage>>> {
        let (from, to) = (from.to_string(), to.to_string());
        self.read(move |conn| {
            query_all(conn, LEAD_MESSAGES, params![from, to, limit], |row| {
                let record_id: String = row.get(0)?;
                let history: String = row.get(4)?;
                let history = serde_json::from_str(&history).map_err(|source| StoreError::Corrupt {
                    what: format!("a message of record {record_id}"),
                    source,
                })?;
                Ok(LeadMessage {
                    record_id,
                    record_created_at: row.get(1)?,
                    message_created_at: row.get(2)?,
                    status: row.get(3)?,
                    history,
                })
            })
        })
    }

    fn ready_runs_untouched_since<'a>(
        &'a self,
        before: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<StaleRun>>> {
        let before = before.to_string();
        // Reads the `(status, created_at)` index.
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT id, created_at, updated_at, owner FROM runs WHERE status = 'ready' AND updated_at < ? ORDER BY created_at LIMIT ?",
                params![before, limit],
                |row| {
                    Ok(StaleRun {
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        updated_at: row.get(2)?,
                        owner: row.get(3)?,
                    })
                },
            )
        })
    }

    fn waiting_runs(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT id, COALESCE(next_attempt_at, updated_at) FROM runs WHERE status = 'waiting'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
    }

    fn secrets<'a>(
        &'a self,
        external_credential: &'a str,
        principal: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SealedSecret>>> {
        self.lookup(|conn| {
            query_all(
                conn,
                "SELECT parameter, key_id, nonce, ciphertext FROM secrets
                 WHERE external_credential = ? AND principal = ? AND user_id = ? ORDER BY parameter",
                [external_credential, principal, user_id],
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

    fn all_secrets(&self) -> BoxFuture<'_, Result<Vec<PlacedSecret>>> {
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
    }

    fn secret_settings(&self) -> BoxFuture<'_, Result<Vec<SecretSetting>>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT external_credential, principal, user_id, parameter, set_at FROM secrets
                 ORDER BY external_credential, principal, user_id, parameter",
                [],
                |row| {
                    Ok(SecretSetting {
                        external_credential: row.get(0)?,
                        principal: row.get(1)?,
                        user_id: row.get(2)?,
                        parameter: row.get(3)?,
                        set_at: row.get(4)?,
                    })
                },
            )
        })
    }

    fn wraps_under<'a>(&'a self, master_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyWrap>>> {
        self.lookup(|conn| query_all(conn, WRAPS_UNDER, [master_id], wrap_from_row))
    }

    fn has_data_keys(&self) -> BoxFuture<'_, Result<bool>> {
        self.lookup(|conn| Ok(conn.prepare_cached(HAS_DATA_KEYS)?.query_row([], |r| r.get(0))?))
    }

    fn data_keys(&self) -> BoxFuture<'_, Result<Vec<DataKeyRow>>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT k.id, k.created_at, k.retired_at, (SELECT COUNT(*) FROM secrets s WHERE s.key_id = k.id)
                 FROM vault_keys k ORDER BY k.id",
                [],
                |row| {
                    Ok(DataKeyRow {
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        retired_at: row.get(2)?,
                        secrets: row.get(3)?,
                    })
                },
            )
        })
    }

    fn vault_masters(&self) -> BoxFuture<'_, Result<Vec<MasterRow>>> {
        self.read(masters)
    }

    fn vault_nodes(&self) -> BoxFuture<'_, Result<Vec<VaultNode>>> {
        self.read(|conn| {
            query_all(
                conn,
                &format!("SELECT {NODE_COLUMNS} FROM vault_nodes ORDER BY started_at, id"),
                [],
                node_from_row,
            )
        })
    }

    fn vault_summary(&self) -> BoxFuture<'_, Result<VaultSummary>> {
        // A few indexed reads.
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM vault_keys WHERE retired_at IS NULL),
                            (SELECT COUNT(*) FROM vault_masters WHERE retired_at IS NULL),
                            (SELECT COUNT(*) FROM secrets WHERE key_id IS NOT NULL AND key_id !=
                                (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'vault.active_key'))",
                )?
                .query_row([], |row| {
                    Ok(VaultSummary {
                        live_data_keys: row.get(0)?,
                        live_masters: row.get(1)?,
                        secrets_on_old_keys: row.get(2)?,
                    })
                })?)
        })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        self.lookup(|conn| user(conn, id))
    }

    fn user_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        self.lookup(|conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM users WHERE name = ? AND active = 1")?
                .query_row([name], |row| row.get(0))
                .optional()?;
            id.map_or(Ok(None), |id| user(conn, &id))
        })
    }

    fn user_by_token_hash<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        self.lookup(|conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT user_id FROM tokens WHERE hash = ? AND revoked = 0")?
                .query_row([hash], |row| row.get(0))
                .optional()?;
            id.map_or(Ok(None), |id| user(conn, &id))
        })
    }

    fn users(&self) -> BoxFuture<'_, Result<Vec<UserRow>>> {
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
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRow>>> {
        self.read(|conn| {
            let mut accounts = query_all(
                conn,
                "SELECT id, name, active, created_at, EXISTS (SELECT 1 FROM user_passwords p WHERE p.user_id = users.id)
                 FROM users ORDER BY name",
                [],
                |row| {
                    Ok(AccountRow {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        permission_sets: Vec::new(),
                        active: row.get::<_, i64>(2)? != 0,
                        created_at: row.get(3)?,
                        has_password: row.get::<_, i64>(4)? != 0,
                    })
                },
            )?;
            for account in &mut accounts {
                account.permission_sets = query_all(
                    conn,
                    "SELECT permission_set FROM user_permission_sets WHERE user_id = ? ORDER BY permission_set",
                    [&account.id],
                    |row| Ok(row.get::<_, String>(0)?),
                )?;
            }
            Ok(accounts)
        })
    }

    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRow>>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT id, user_id, created_at, revoked_at, revoked FROM tokens ORDER BY user_id, created_at, id",
                [],
                |row| {
                    Ok(TokenRow {
                        id: row.get(0)?,
                        user_id: row.get(1)?,
                        created_at: row.get(2)?,
                        revoked_at: row.get(3)?,
                        revoked: row.get::<_, i64>(4)? != 0,
                    })
                },
            )
        })
    }

    fn password_hash<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached("SELECT hash FROM user_passwords WHERE user_id = ?")?
                .query_row([user_id], |row| row.get(0))
                .optional()?)
        })
    }

    fn session<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT user_id, csrf_token, created_at, expires_at FROM console_sessions WHERE hash = ?",
                )?
                .query_row([hash], |row| {
                    Ok(SessionRow {
                        user_id: row.get(0)?,
                        csrf_token: row.get(1)?,
                        created_at: row.get(2)?,
                        expires_at: row.get(3)?,
                    })
                })
                .optional()?)
        })
    }

    fn project_version(&self, seq: i64) -> BoxFuture<'_, Result<Option<ProjectVersionRow>>> {
        self.lookup(move |conn| {
            query_optional(
                conn,
                "SELECT seq, hash, files, created_at FROM project_versions WHERE seq = ?",
                [seq],
                |row| {
                    Ok(ProjectVersionRow {
                        seq: row.get(0)?,
                        hash: row.get(1)?,
                        files: row.get(2)?,
                        created_at: row.get(3)?,
                    })
                },
            )
        })
    }

    fn meta<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.lookup(|conn| rows::meta(conn, key))
    }

    fn webhook_secret_hash<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.lookup(|conn| {
            query_optional(conn, "SELECT hash FROM webhook_secrets WHERE name = ?", [name], |row| {
                Ok(row.get(0)?)
            })
        })
    }

    fn message<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<MessageRow>>> {
        self.lookup(|conn| query_optional(conn, select_messages!("WHERE id = ?"), [id], message_from_row))
    }

    fn messages<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<Vec<MessageRow>>> {
        let (sql, values) = messages_query(filter);
        self.read(move |conn| query_all(conn, &sql, rusqlite::params_from_iter(values), message_from_row))
    }

    fn messages_since<'a>(&'a self, named_credential: &'a str, since: &'a str) -> BoxFuture<'a, Result<i64>> {
        let values = [named_credential, since].map(String::from);
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(attempts), 0) FROM messages WHERE named_credential = ? AND created_at >= ?",
                )?
                .query_row(values, |row| row.get(0))?)
        })
    }

    fn receipts(&self, unmatched_only: bool, limit: i64) -> BoxFuture<'_, Result<Vec<ReceiptRow>>> {
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
    }

    fn receipts_for_message<'a>(&'a self, message_id: &'a str) -> BoxFuture<'a, Result<Vec<ReceiptRow>>> {
        let message_id = message_id.to_string();
        self.read(move |conn| query_all(conn, RECEIPTS_OF_MESSAGE, [message_id], receipt_from_row))
    }

    fn unmatched_status_receipts(&self) -> BoxFuture<'_, Result<usize>> {
        self.read(|conn| {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM receipts WHERE message_id IS NULL AND kind = 'status'")?
                .query_row([], |row| row.get(0))?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
    }

    fn consents(&self) -> BoxFuture<'_, Result<Vec<ConsentRow>>> {
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
    }

    fn export_rows<'a>(
        &'a self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Page>> {
        self.read(move |conn| copy::export(conn, table, after, limit))
    }
}
