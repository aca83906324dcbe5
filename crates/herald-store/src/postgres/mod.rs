//! The PostgreSQL backend: one database that several herald servers (nodes) share.
//!
//! Everything that is PostgreSQL's own lives in this folder: the connection settings, the migrations
//! (`migrations/`, applied under an advisory lock so nodes starting together do not race), the writer
//! thread and its group commit (`writer`), the pool of reader connections, every statement (`rows`,
//! `tx`, and the reads below), and the connection that hears other nodes (`listen`). Nothing outside
//! it names the driver.
//!
//! Why the synchronous `postgres` client: a write is a closure the engine runs inside the
//! transaction, reading and writing as it goes ([`WriteTx`](crate::WriteTx) is synchronous), so the
//! writer is a thread of its own as on SQLite; reads run on tokio's blocking threads with a pooled
//! connection each, so a slow query never holds an async worker.
//!
//! Durability: with [`Durability::ProcessCrash`] (the default) the writer sets `synchronous_commit =
//! off`: a commit is in the server's memory and its write-ahead log buffer before herald hears of it,
//! so a crash or kill of herald loses nothing, and a crash of the database server's machine may take
//! back the last fraction of a second of commits, whole. [`Durability::PowerLoss`] keeps PostgreSQL's
//! default, a flush per commit.
//!
//! Connections use TLS when the URL says `sslmode=require` (`tls`), verified against the system's
//! trusted roots; otherwise they are made in the clear.

mod cache;
mod copy;
mod listen;
mod rows;
mod scratch;
#[cfg(any(test, feature = "conformance"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod tls;
mod tx;
mod writer;

use crate::backend::{BoxFuture, RecordFilter};
use crate::copy::{Cell, Page, Table};
use crate::{
    AccountRow, Backend, Bucket, ConsentRow, Created, CreatedCount, DataKeyRow, Durability, KeyWrap,
    LeadMessage, MasterRow, MessageFilter, MessageRow, Notice, OpenOptions, PlacedSecret, ProjectVersionRow,
    ReceiptRow, RecordAt, Result, RunQuery, RunRow, RunStatus, SealedSecret, SecretSetting, SessionRow,
    StaleRun, StoreError, StoredRecord, TokenRow, UserRow, VaultNode, VaultSummary, Write,
};
use rows::{
    Conn, HAS_DATA_KEYS, NODE_COLUMNS, RUN_BY_ID, RUN_SELECT, RUNS_BY_RECORD, Trips, WRAPS_UNDER, described,
    get, masters, message_from_row, node_from_row, placed_from, receipt_from_row, record_from_row,
    run_from_row, sealed_from, select_user, user, user_from_row, wrap_from_row,
};
pub use scratch::ScratchDatabase;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::broadcast;
use writer::Command;

/// The schema, one file per version; a database records the versions applied in `herald_schema`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_waiting_runs_by_record.sql"),
    include_str!("migrations/0003_console.sql"),
    include_str!("migrations/0004_created_indexes.sql"),
    include_str!("migrations/0005_console_pages.sql"),
    include_str!("migrations/0006_secret_set_at_token_revoked_at.sql"),
];

/// Any constant of herald's own: the advisory lock nodes take while one of them migrates.
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64;

/// The ledger filtered by run, destination, status, provider and channel, each optional, after a
/// keyset (`$6`, `$7`: the last row of the page before): a plan that does not know which are given
/// cannot use an index for any of them, so it is planned with its values each time.
const MESSAGES_FILTERED: &str = select_messages!(
    "WHERE ($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR destination = $2)
     AND ($3::text IS NULL OR status = $3) AND ($5::text IS NULL OR provider = $5)
     AND ($8::text IS NULL OR channel = $8)
     AND ($6::text IS NULL OR (created_at, id) < ($6::text, $7::text))
     ORDER BY created_at DESC, id DESC LIMIT $4"
);

/// A page of an object's records, newest first, read backwards along `records_by_object`
/// (object, seq).
const RECORDS_NEWEST_FIRST: &str = "SELECT id, object, data, seq FROM records
     WHERE object = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3";

/// How many notices a node may fall behind before it must read the state again.
const NOTICE_BACKLOG: usize = 1024;

/// Whether a database location is a PostgreSQL URL rather than a SQLite file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A PostgreSQL URL as herald prints it: the password, wherever it is written, becomes `****`.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = rest.find(['/', '?']).map_or((rest, ""), |at| rest.split_at(at));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=****"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A PostgreSQL database.
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: tokio_postgres::Config,
    commands: mpsc::Sender<Command>,
    idle_readers: Mutex<Vec<Conn>>,
    /// One permit per reader connection the node may have: a read waits for one before it takes a
    /// connection, so a burst of reads queues here instead of opening connections it then closes
    /// (measured: one new server process per five leads at full load, each preparing every
    /// statement again).
    readers: Arc<tokio::sync::Semaphore>,
    trips: Trips,
    /// Users and sealed secrets every lead reads, kept while the node hears their changes.
    cache: Arc<cache::ReadCache>,
    notices: broadcast::Sender<Notice>,
    stop_listening: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Drop for Inner {
    /// A connection of the synchronous client owns a small runtime, which must not be dropped on an
    /// async thread: the idle readers are closed on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle_readers.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::Builder::new().name("herald-db-close".into()).spawn(move || drop(idle));
        }
    }
}

fn connect(config: &tokio_postgres::Config, location: &str, trips: &Trips) -> Result<Conn> {
    let trips = Arc::clone(trips);
    let conn = if tls::wanted(config.get_ssl_mode()) {
        Conn::open(config, tls::connector(), trips)
    } else {
        Conn::open(config, tokio_postgres::NoTls, trips)
    };
    conn.map_err(|source| StoreError::Open { path: masked(location), source: described(&source).into() })
}

impl PostgresBackend {
    /// Connects to the database at `url`, creates or updates herald's tables, and starts the writer
    /// and the listener. Blocks: call it off the async threads.
    pub fn open(url: &str, options: OpenOptions) -> Result<PostgresBackend> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|source: tokio_postgres::Error| {
            StoreError::Open { path: masked(url), source: described(&source).into() }
        })?;
        config.application_name("herald");
        // PostgreSQL keeps a plan per statement of a connection (`plan_cache_mode = auto`, its
        // default): planning every statement with its values was a third of the server's CPU per
        // lead. A kept plan is made once per connection, often while herald's tables are still
        // empty, so the statements that keep theirs find rows by key or by an index that matches
        // better than any other whatever the tables hold (`runs_waiting_by_record`, tested); those
        // whose best plan depends on their values (listings and filters, the claims of due and
        // orphaned runs, the daily budgets' sums) are planned afresh each time
        // (`Conn::query_planned_each_time`). A plan kept on small tables and then walking an index
        // of every waiting run took the benchmark's leads per second down thirty-fold.
        let location = url.to_string();
        let writer_session = match options.durability {
            Durability::ProcessCrash => "SET synchronous_commit = off",
            Durability::PowerLoss => "SET synchronous_commit = on",
        };
        let trips = Trips::default();
        let writer_process = listen::WriterProcess::default();
        let open_writer = {
            let (config, location, trips) = (config.clone(), location.clone(), Arc::clone(&trips));
            let writer_process = Arc::clone(&writer_process);
            move || -> Result<Conn> {
                let mut conn = connect(&config, &location, &trips)?;
                conn.batch(writer_session)?;
                // Once per connection, so the listener can tell this node's own work notices.
                let process: i32 = get(&conn.query_one("SELECT pg_backend_pid()", &[])?, 0)?;
                writer_process.store(process, std::sync::atomic::Ordering::Relaxed);
                Ok(conn)
            }
        };
        let mut writer_conn = open_writer()?;
        migrate(&mut writer_conn)?;
        let start_error = |error: std::io::Error| {
            StoreError::Stopped(format!("cannot start the database threads: {error}"))
        };
        let (commands, queue) = mpsc::channel();
        let cache = Arc::new(cache::ReadCache::default());
        let forget = Arc::clone(&cache);
        std::thread::Builder::new()
            .name("herald-db-writer".into())
            .spawn(move || writer::write_loop(writer_conn, Box::new(open_writer), queue, &forget))
            .map_err(start_error)?;
        let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
        let (stop_listening, stop) = tokio::sync::oneshot::channel();
        let mut listen_config = config.clone();
        listen_config.application_name("herald-listen");
        listen::start(listen_config, notices.clone(), writer_process, Arc::clone(&cache), stop)
            .map_err(start_error)?;
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                config,
                commands,
                idle_readers: Mutex::new(Vec::new()),
                readers: Arc::new(tokio::sync::Semaphore::new(options.readers())),
                trips,
                cache,
                notices,
                stop_listening: Mutex::new(Some(stop_listening)),
            }),
        })
    }

    /// Where the schema of the database at `url` stands (see [`crate::Store::pending_migrations`]):
    /// reads `herald_schema`, changes nothing. Blocks: call it off the async threads.
    pub(crate) fn schema_version(url: &str) -> Result<crate::SchemaVersion> {
        let config: tokio_postgres::Config = url.parse().map_err(|source: tokio_postgres::Error| {
            StoreError::Open { path: masked(url), source: described(&source).into() }
        })?;
        let mut conn = connect(&config, url, &Trips::default())?;
        let known = MIGRATIONS.len();
        let tracked: bool = get(&conn.query_one("SELECT to_regclass('herald_schema') IS NOT NULL", &[])?, 0)?;
        if !tracked {
            return Ok(crate::SchemaVersion { applied: 0, known });
        }
        let applied: i64 =
            get(&conn.query_one("SELECT COALESCE(MAX(version), 0) FROM herald_schema", &[])?, 0)?;
        Ok(crate::SchemaVersion { applied: usize::try_from(applied).unwrap_or(0), known })
    }

    /// A read on a blocking thread, with a pooled connection. A read that fails because the
    /// connection was lost (a database restart, a dropped idle connection) is tried once more on a
    /// new one.
    fn read<R, F>(&self, work: F) -> BoxFuture<'static, Result<R>>
    where
        F: Fn(&mut Conn) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let place = Arc::clone(&inner.readers)
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Stopped("the database's readers are closed".into()))?;
            // The place goes with the connection into the blocking thread, so a read whose caller
            // gave up still holds it until its connection is back in the pool.
            tokio::task::spawn_blocking(move || {
                let _place = place;
                match inner.with_reader(&work) {
                    (Err(_), true) => inner.with_reader(&work).0,
                    (outcome, _) => outcome,
                }
            })
            .await
            .map_err(|error| StoreError::Stopped(format!("a database read did not finish: {error}")))?
        })
    }
}

impl Inner {
    /// Runs `work` on an idle reader connection, or a new one; also says whether the connection
    /// turned out to be lost.
    fn with_reader<R>(&self, work: &impl Fn(&mut Conn) -> Result<R>) -> (Result<R>, bool) {
        let idle = self.idle_readers.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let mut conn = match idle {
            Some(conn) => conn,
            None => match connect(&self.config, "the PostgreSQL database", &self.trips) {
                Ok(conn) => conn,
                Err(error) => return (Err(error), false),
            },
        };
        let outcome = work(&mut conn);
        let lost = conn.is_closed();
        if !lost && let Ok(mut idle) = self.idle_readers.lock() {
            idle.push(conn);
        }
        (outcome, lost)
    }
}

/// Brings the schema up to date, one node at a time; refuses a database a newer herald wrote.
fn migrate(conn: &mut Conn) -> Result<()> {
    let failed = |error: tokio_postgres::Error| StoreError::Migrate(described(&error).into());
    conn.batch(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS herald_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)"
    ))
    .map_err(failed)?;
    let outcome = (|| {
        let current: i64 =
            get(&conn.query_one("SELECT COALESCE(MAX(version), 0) FROM herald_schema", &[])?, 0)?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(StoreError::Migrate(
                format!(
                    "the database's schema is version {current}, written by a newer herald; this herald knows versions up to {known}: upgrade herald"
                )
                .into(),
            ));
        }
        for (version, sql) in (1i64..).zip(MIGRATIONS).skip(current as usize) {
            conn.batch(sql).map_err(failed)?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            conn.execute(
                "INSERT INTO herald_schema (version, applied_at) VALUES ($1, $2)",
                &[&version, &now],
            )?;
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => conn.batch("COMMIT").map_err(failed),
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            Err(error)
        }
    }
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

fn statuses(statuses: &[RunStatus]) -> Vec<String> {
    statuses.iter().map(|status| status.as_str().to_string()).collect()
}

impl Backend for PostgresBackend {
    fn submit(&self, write: Write) {
        if let Err(mpsc::SendError(Command::Write(write))) = self.inner.commands.send(Command::Write(write)) {
            write.refuse(StoreError::Stopped("the database writer has stopped".into()));
        }
    }

    /// Several nodes share a PostgreSQL database: row locks decide which node takes a run.
    fn shared(&self) -> bool {
        true
    }

    fn notices(&self) -> Option<broadcast::Receiver<Notice>> {
        Some(self.inner.notices.subscribe())
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.inner.trips.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(stop) = self.inner.stop_listening.lock().ok().and_then(|mut stop| stop.take()) {
                let _ = stop.send(());
            }
            let (done, stopped) = tokio::sync::oneshot::channel();
            if self.inner.commands.send(Command::Stop(done)).is_ok() {
                let _ = stopped.await;
            }
            let idle =
                self.inner.idle_readers.lock().map(|mut idle| std::mem::take(&mut *idle)).unwrap_or_default();
            let _ = tokio::task::spawn_blocking(move || drop(idle)).await;
        })
    }

    fn record<'a>(&'a self, object: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        let [object, id] = [object, id].map(String::from);
        self.read(move |conn| rows::record(conn, &object, &id))
    }

    fn records_of<'a>(&'a self, object: &'a str, limit: i64) -> BoxFuture<'a, Result<Vec<StoredRecord>>> {
        let object = object.to_string();
        self.read(move |conn| {
            conn.all_planned_each_time(
                "SELECT id, object, data FROM records WHERE object = $1 ORDER BY seq LIMIT $2",
                &[&object, &limit],
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
            conn.all_planned_each_time(RECORDS_NEWEST_FIRST, &[&object, &before, &limit], |row| {
                Ok(RecordAt { position: get(row, 3)?, record: record_from_row(row)? })
            })
        })
    }

    fn select_records<'a>(
        &'a self,
        object: &'a str,
        fields: Option<Vec<String>>,
        first_only: bool,
        select: RecordFilter,
    ) -> BoxFuture<'a, Result<Vec<Map<String, Value>>>> {
        let object = object.to_string();
        let select = Mutex::new(select);
        self.read(move |conn| {
            let mut select = select.lock().unwrap_or_else(|e| e.into_inner());
            let mut kept = Vec::new();
            // A page at a time: a Get Records over 100,000 records never holds them all as rows.
            let mut after = 0i64;
            loop {
                let page = conn.query_planned_each_time(
                    "SELECT id, data, seq FROM records WHERE object = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
                    &[&object, &after],
                )?;
                let Some(last) = page.last() else { break };
                after = get(last, 2)?;
                for row in &page {
                    let record = crate::fields::parse_record(get(row, 1)?, fields.as_deref()).map_err(|source| {
                        StoreError::Corrupt { what: format!("record {}", get::<String>(row, 0).unwrap_or_default()), source }
                    })?;
                    if let Some(record) = select(record) {
                        kept.push(record);
                        if first_only {
                            return Ok(kept);
                        }
                    }
                }
            }
            Ok(kept)
        })
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>>> {
        let id = id.to_string();
        self.read(move |conn| conn.optional(RUN_BY_ID, &[&id], run_from_row))
    }

    fn runs_for_record<'a>(&'a self, record_id: &'a str) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let record_id = record_id.to_string();
        self.read(move |conn| conn.all(RUNS_BY_RECORD, &[&record_id], run_from_row))
    }

    fn runs_with_status<'a>(
        &'a self,
        wanted: &'a [RunStatus],
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let wanted = statuses(wanted);
        self.read(move |conn| {
            conn.all_planned_each_time(
                &format!("{RUN_SELECT} WHERE status = ANY($1) ORDER BY created_at, id LIMIT $2"),
                &[&wanted, &limit],
                run_from_row,
            )
        })
    }

    fn runs_page<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        let wanted = statuses(&query.statuses);
        let (after_at, after_id) = query.after.clone().unzip();
        let (flow, limit) = (query.flow.clone(), query.limit);
        self.read(move |conn| {
            conn.all_planned_each_time(
                &format!(
                    "{RUN_SELECT} WHERE (cardinality($1::text[]) = 0 OR status = ANY($1))
                     AND ($2::text IS NULL OR flow = $2)
                     AND ($3::text IS NULL OR created_at < $3 OR (created_at = $3 AND id > $4))
                     ORDER BY created_at DESC, id LIMIT $5"
                ),
                &[&wanted, &flow, &after_at, &after_id, &limit],
                run_from_row,
            )
        })
    }

    fn created_per_bucket<'a>(
        &'a self,
        table: Created,
        bucket: Bucket,
        since: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CreatedCount>>> {
        let (name, key) = (table.table(), table.key());
        let sql = format!(
            "SELECT substr(created_at, 1, $1) AS bucket, {key}, COUNT(*) FROM {name}
             WHERE created_at >= $2 GROUP BY bucket, {key} ORDER BY bucket, {key}"
        );
        let width = bucket.prefix_len() as i32;
        let since = since.to_string();
        self.read(move |conn| {
            conn.all_planned_each_time(&sql, &[&width, &since], |row| {
                Ok(CreatedCount { bucket: get(row, 0)?, key: get(row, 1)?, count: get(row, 2)? })
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
            conn.all_planned_each_time(
                "SELECT rec.id, rec.created_at, m.created_at, m.status, m.history
                 FROM records rec JOIN runs r ON r.record_id = rec.id JOIN messages m ON m.run_id = r.id
                 WHERE rec.created_at >= $1 AND rec.created_at < $2
                 ORDER BY rec.created_at DESC, m.created_at LIMIT $3",
                &[&from, &to, &limit],
                |row| {
                    let record_id: String = get(row, 0)?;
                    let history = serde_json::from_str(get(row, 4)?).map_err(|source| {
                        StoreError::Corrupt { what: format!("a message of record {record_id}"), source }
                    })?;
                    Ok(LeadMessage {
                        record_id,
                        record_created_at: get(row, 1)?,
                        message_created_at: get(row, 2)?,
                        status: get(row, 3)?,
                        history,
                    })
                },
            )
        })
    }

    fn ready_runs_untouched_since<'a>(
        &'a self,
        before: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<StaleRun>>> {
        let before = before.to_string();
        self.read(move |conn| {
            conn.all_planned_each_time(
                "SELECT id, created_at, updated_at, owner FROM runs WHERE status = 'ready' AND updated_at < $1 ORDER BY created_at LIMIT $2",
                &[&before, &limit],
                |row| {
                    Ok(StaleRun {
                        id: get(row, 0)?,
                        created_at: get(row, 1)?,
                        updated_at: get(row, 2)?,
                        owner: get(row, 3)?,
                    })
                },
            )
        })
    }

    fn waiting_runs(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>> {
        self.read(|conn| {
            conn.all_planned_each_time(
                "SELECT id, COALESCE(next_attempt_at, updated_at) FROM runs WHERE status = 'waiting'",
                &[],
                |row| Ok((get(row, 0)?, get(row, 1)?)),
            )
        })
    }

    fn secrets<'a>(
        &'a self,
        external_credential: &'a str,
        principal: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SealedSecret>>> {
        let place = (external_credential.to_string(), principal.to_string(), user_id.to_string());
        if let Some(kept) = self.inner.cache.secrets(&place) {
            return Box::pin(std::future::ready(Ok(kept)));
        }
        let ticket = self.inner.cache.ticket();
        let cache = Arc::clone(&self.inner.cache);
        let read = self.read({
            let place = place.clone();
            move |conn| {
                conn.all(
                    "SELECT parameter, key_id, nonce, ciphertext FROM secrets
                     WHERE external_credential = $1 AND principal = $2 AND user_id = $3 ORDER BY parameter",
                    &[&place.0, &place.1, &place.2],
                    |row| sealed_from(row, 0),
                )
            }
        });
        Box::pin(async move {
            let secrets = read.await?;
            if let Some(ticket) = ticket {
                cache.keep_secrets(ticket, place, &secrets);
            }
            Ok(secrets)
        })
    }

    fn all_secrets(&self) -> BoxFuture<'_, Result<Vec<PlacedSecret>>> {
        self.read(|conn| {
            conn.all(
                "SELECT external_credential, principal, user_id, parameter, key_id, nonce, ciphertext FROM secrets
                 ORDER BY external_credential, principal, user_id, parameter",
                &[],
                |row| placed_from(row, 0),
            )
        })
    }

    fn secret_settings(&self) -> BoxFuture<'_, Result<Vec<SecretSetting>>> {
        self.read(|conn| {
            conn.all(
                "SELECT external_credential, principal, user_id, parameter, set_at FROM secrets
                 ORDER BY external_credential, principal, user_id, parameter",
                &[],
                |row| {
                    Ok(SecretSetting {
                        external_credential: get(row, 0)?,
                        principal: get(row, 1)?,
                        user_id: get(row, 2)?,
                        parameter: get(row, 3)?,
                        set_at: get(row, 4)?,
                    })
                },
            )
        })
    }

    fn wraps_under<'a>(&'a self, master_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyWrap>>> {
        let master_id = master_id.to_string();
        self.read(move |conn| conn.all(WRAPS_UNDER, &[&master_id], wrap_from_row))
    }

    fn has_data_keys(&self) -> BoxFuture<'_, Result<bool>> {
        self.read(|conn| get(&conn.query_one(HAS_DATA_KEYS, &[])?, 0))
    }

    fn data_keys(&self) -> BoxFuture<'_, Result<Vec<DataKeyRow>>> {
        self.read(|conn| {
            conn.all(
                "SELECT k.id, k.created_at, k.retired_at, (SELECT COUNT(*) FROM secrets s WHERE s.key_id = k.id)
                 FROM vault_keys k ORDER BY k.id",
                &[],
                |row| {
                    Ok(DataKeyRow {
                        id: get(row, 0)?,
                        created_at: get(row, 1)?,
                        retired_at: get(row, 2)?,
                        secrets: get(row, 3)?,
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
            conn.all(
                &format!("SELECT {NODE_COLUMNS} FROM vault_nodes ORDER BY started_at, id"),
                &[],
                node_from_row,
            )
        })
    }

    fn vault_summary(&self) -> BoxFuture<'_, Result<VaultSummary>> {
        self.read(|conn| {
            let row = conn.query_one(
                "SELECT (SELECT COUNT(*) FROM vault_keys WHERE retired_at IS NULL),
                        (SELECT COUNT(*) FROM vault_masters WHERE retired_at IS NULL),
                        (SELECT COUNT(*) FROM secrets WHERE key_id IS NOT NULL AND key_id IS DISTINCT FROM
                            (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'vault.active_key'))",
                &[],
            )?;
            Ok(VaultSummary {
                live_data_keys: get(&row, 0)?,
                live_masters: get(&row, 1)?,
                secrets_on_old_keys: get(&row, 2)?,
            })
        })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        if let Some(kept) = self.inner.cache.user(id) {
            return Box::pin(std::future::ready(Ok(Some(kept))));
        }
        let (ticket, cache) = (self.inner.cache.ticket(), Arc::clone(&self.inner.cache));
        let id = id.to_string();
        let read = self.read(move |conn| user(conn, &id));
        Box::pin(async move {
            let found = read.await?;
            if let (Some(ticket), Some(user)) = (ticket, &found) {
                cache.keep_user(ticket, user);
            }
            Ok(found)
        })
    }

    fn user_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.optional(select_user!("users u WHERE u.name = $1 AND u.active"), &[&name], user_from_row)
        })
    }

    fn user_by_token_hash<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>> {
        if let Some(kept) = self.inner.cache.user_by_token(hash) {
            return Box::pin(std::future::ready(Ok(Some(kept))));
        }
        let (ticket, cache) = (self.inner.cache.ticket(), Arc::clone(&self.inner.cache));
        let hash = hash.to_string();
        let read = self.read({
            let hash = hash.clone();
            move |conn| {
                conn.optional(
                    select_user!(
                        "tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1 AND NOT t.revoked AND u.active"
                    ),
                    &[&hash],
                    user_from_row,
                )
            }
        });
        Box::pin(async move {
            let found = read.await?;
            if let (Some(ticket), Some(user)) = (ticket, &found) {
                cache.keep_user_by_token(ticket, hash, user);
            }
            Ok(found)
        })
    }

    fn users(&self) -> BoxFuture<'_, Result<Vec<UserRow>>> {
        self.read(|conn| conn.all(select_user!("users u WHERE u.active ORDER BY u.name"), &[], user_from_row))
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRow>>> {
        self.read(|conn| {
            conn.all(
                "SELECT u.id, u.name, ARRAY(SELECT p.permission_set FROM user_permission_sets p
                    WHERE p.user_id = u.id ORDER BY p.permission_set),
                    u.active, u.created_at, EXISTS (SELECT 1 FROM user_passwords w WHERE w.user_id = u.id)
                 FROM users u ORDER BY u.name",
                &[],
                |row| {
                    Ok(AccountRow {
                        id: get(row, 0)?,
                        name: get(row, 1)?,
                        permission_sets: get(row, 2)?,
                        active: get(row, 3)?,
                        created_at: get(row, 4)?,
                        has_password: get(row, 5)?,
                    })
                },
            )
        })
    }

    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRow>>> {
        self.read(|conn| {
            conn.all(
                "SELECT id, user_id, created_at, revoked, revoked_at FROM tokens ORDER BY user_id, created_at, id",
                &[],
                |row| {
                    Ok(TokenRow {
                        id: get(row, 0)?,
                        user_id: get(row, 1)?,
                        created_at: get(row, 2)?,
                        revoked: get(row, 3)?,
                        revoked_at: get(row, 4)?,
                    })
                },
            )
        })
    }

    fn password_hash<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let user_id = user_id.to_string();
        self.read(move |conn| {
            conn.optional("SELECT hash FROM user_passwords WHERE user_id = $1", &[&user_id], |row| {
                get(row, 0)
            })
        })
    }

    fn session<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        let hash = hash.to_string();
        self.read(move |conn| {
            conn.optional(
                "SELECT user_id, csrf_token, created_at, expires_at FROM console_sessions WHERE hash = $1",
                &[&hash],
                |row| {
                    Ok(SessionRow {
                        user_id: get(row, 0)?,
                        csrf_token: get(row, 1)?,
                        created_at: get(row, 2)?,
                        expires_at: get(row, 3)?,
                    })
                },
            )
        })
    }

    fn meta<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let key = key.to_string();
        self.read(move |conn| rows::meta(conn, &key))
    }

    fn project_version(&self, seq: i64) -> BoxFuture<'_, Result<Option<ProjectVersionRow>>> {
        self.read(move |conn| {
            conn.optional(
                "SELECT seq, hash, files, created_at FROM project_versions WHERE seq = $1",
                &[&seq],
                |row| {
                    Ok(ProjectVersionRow {
                        seq: get(row, 0)?,
                        hash: get(row, 1)?,
                        files: get(row, 2)?,
                        created_at: get(row, 3)?,
                    })
                },
            )
        })
    }

    fn webhook_secret_hash<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.optional("SELECT hash FROM webhook_secrets WHERE name = $1", &[&name], |row| get(row, 0))
        })
    }

    fn message<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<MessageRow>>> {
        let id = id.to_string();
        self.read(move |conn| conn.optional(select_messages!("WHERE id = $1"), &[&id], message_from_row))
    }

    fn messages<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<Vec<MessageRow>>> {
        let filter = filter.clone();
        let limit = if filter.limit > 0 { filter.limit } else { 100 };
        let (before_at, before_id) = filter.before.clone().unzip();
        self.read(move |conn| {
            conn.all_planned_each_time(
                MESSAGES_FILTERED,
                &[
                    &filter.run_id,
                    &filter.destination,
                    &filter.status,
                    &limit,
                    &filter.provider,
                    &before_at,
                    &before_id,
                    &filter.channel,
                ],
                message_from_row,
            )
        })
    }

    fn messages_since<'a>(&'a self, named_credential: &'a str, since: &'a str) -> BoxFuture<'a, Result<i64>> {
        let values = owned(&[named_credential, since]);
        self.read(move |conn| {
            let rows = conn.query_planned_each_time(
                "SELECT COALESCE(SUM(attempts), 0)::BIGINT FROM messages WHERE named_credential = $1 AND created_at >= $2",
                &[&values[0], &values[1]],
            )?;
            rows.first().map_or(Ok(0), |row| get(row, 0))
        })
    }

    fn receipts(&self, unmatched_only: bool, limit: i64) -> BoxFuture<'_, Result<Vec<ReceiptRow>>> {
        self.read(move |conn| {
            conn.all_planned_each_time(
                select_receipts!(
                    "WHERE (NOT $1 OR (message_id IS NULL AND kind = 'status')) ORDER BY id DESC LIMIT $2"
                ),
                &[&unmatched_only, &limit],
                receipt_from_row,
            )
        })
    }

    fn receipts_for_message<'a>(&'a self, message_id: &'a str) -> BoxFuture<'a, Result<Vec<ReceiptRow>>> {
        let message_id = message_id.to_string();
        self.read(move |conn| {
            conn.all(select_receipts!("WHERE message_id = $1 ORDER BY id"), &[&message_id], receipt_from_row)
        })
    }

    fn unmatched_status_receipts(&self) -> BoxFuture<'_, Result<usize>> {
        self.read(|conn| {
            let row = conn.query_one(
                "SELECT COUNT(*) FROM receipts WHERE message_id IS NULL AND kind = 'status'",
                &[],
            )?;
            Ok(usize::try_from(get::<i64>(&row, 0)?).unwrap_or(0))
        })
    }

    fn consents(&self) -> BoxFuture<'_, Result<Vec<ConsentRow>>> {
        self.read(|conn| {
            conn.all(
                "SELECT phone, sender, status, keyword, source, updated_at FROM consent ORDER BY phone, sender",
                &[],
                tx::consent_from_row,
            )
        })
    }

    fn export_rows<'a>(
        &'a self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Page>> {
        self.read(move |conn| copy::export(conn, table, after.clone(), limit))
    }
}
