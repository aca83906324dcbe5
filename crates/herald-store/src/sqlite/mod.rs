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
    AccountRow, Backend, ConsentRow, DataKeyRow, Durability, KeyWrap, MasterRow, MessageFilter, MessageRow,
    PlacedSecret, ProjectVersionRow, ReceiptRow, Result, RunRow, RunStatus, SealedSecret, SecretSetting,
    SessionRow, StaleRun, StoreError, StoredRecord, TokenRow, UserRow, VaultNode, VaultSummary, Write,
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

    fn recent_runs<'a>(
        &'a self,
        statuses: &'a [RunStatus],
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let filter = if statuses.is_empty() {
            String::new()
        } else {
            format!(" WHERE status IN ({})", placeholders(statuses.len()))
        };
        let sql = format!("{RUN_SELECT}{filter} ORDER BY created_at DESC, id LIMIT ?");
        self.runs_by_statuses(sql, statuses, limit)
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
