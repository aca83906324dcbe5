//! The connections: one writer thread that commits queued writes in groups, and a pool of readers.
//!
//! Every write is a closure run on the writer thread inside a savepoint of the current group
//! transaction. The thread runs the first queued write, then every write already queued behind it (up
//! to [`GROUP_LIMIT`] writes or [`GROUP_WINDOW`] of work), and commits them with one `COMMIT`: a write
//! is never held back to wait for others, and under load many leads share one commit. A write that
//! fails rolls back its own savepoint only; each caller hears of its write once the group is
//! committed, so an answer never speaks of something a crash could still lose.
//!
//! The statements run on the thread that owns the connection: with SQLite each statement costs a few
//! microseconds, less than handing it to another thread and back.

use super::tx::SqliteTx;
use crate::{Durability, Ran, Result, SchemaVersion, StoreError, Write};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many writes share one commit.
const GROUP_LIMIT: usize = 512;
/// A group stops taking more writes after this much work, which bounds how long the first write of a
/// group waits for its commit.
const GROUP_WINDOW: Duration = Duration::from_micros(300);
/// Idle reader connections kept open.
const IDLE_READERS: usize = 8;
/// How long a statement waits for a lock another process holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the writer waits for readers before starting the WAL over; it tries again later.
const RESTART_WAIT: Duration = Duration::from_millis(20);
/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// A WAL longer than this (in 4 KiB pages: 64 MiB) makes the writer finish the checkpoint itself,
/// so that the WAL starts over.
const WAL_LIMIT_PAGES: i32 = 16 * 1024;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_users_tokens.sql"),
    include_str!("migrations/0003_ledger.sql"),
    include_str!("migrations/0004_vault_keys.sql"),
    include_str!("migrations/0005_webhook_deliveries.sql"),
    include_str!("migrations/0007_project_versions.sql"),
    include_str!("migrations/0008_run_owners.sql"),
    include_str!("migrations/0009_console.sql"),
    include_str!("migrations/0010_created_indexes.sql"),
    include_str!("migrations/0011_console_pages.sql"),
    include_str!("migrations/0012_secret_set_at_token_revoked_at.sql"),
];

enum Command {
    Write(Write),
    /// Finish the queued writes, close the connection, then answer.
    Stop(tokio::sync::oneshot::Sender<()>),
}

pub(crate) struct Database {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    idle_readers: Mutex<Vec<Connection>>,
    /// The checkpointer thread and the sender whose drop stops it.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

fn open_connection(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let open_error = |source: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        source: source.into(),
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // With WAL, NORMAL survives a process crash; only a power loss may drop the last commits.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(open_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Brings the schema up to date. A database made before herald tracked its schema in `user_version`
/// (by sqlx, in `_sqlx_migrations`) starts from the migrations that table lists as applied.
fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == 0 {
        let applied = applied_migrations(conn)?;
        if applied != 0 {
            conn.pragma_update(None, "user_version", applied)?;
        }
    }
    let migrations = rusqlite_migration::Migrations::new(
        MIGRATIONS.iter().map(|sql| rusqlite_migration::M::up(sql)).collect(),
    );
    migrations.to_latest(conn).map_err(|error| StoreError::Migrate(error.into()))
}

/// The migrations applied to an open database: `user_version`, or for a database an earlier herald
/// migrated with sqlx (`user_version` 0), those its `_sqlx_migrations` table lists as applied.
fn applied_migrations(conn: &Connection) -> Result<i64> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version != 0 {
        return Ok(version);
    }
    let legacy: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        [],
        |row| row.get(0),
    )?;
    if legacy == 0 {
        return Ok(0);
    }
    Ok(conn.query_row("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1", [], |row| row.get(0))?)
}

/// Where the schema of the file at `path` stands, read only; a file that does not exist has nothing
/// applied (and is not made).
pub(super) fn schema_version(path: &Path) -> Result<SchemaVersion> {
    let known = MIGRATIONS.len();
    if !path.exists() {
        return Ok(SchemaVersion { applied: 0, known });
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source: source.into() })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let applied = applied_migrations(&conn)?;
    Ok(SchemaVersion { applied: usize::try_from(applied).unwrap_or(0), known })
}

impl Database {
    pub(crate) fn open(path: &Path, durability: Durability) -> Result<Arc<Database>> {
        let mut writer = open_connection(path, true)?;
        if durability == Durability::PowerLoss {
            // Every commit waits for the WAL to reach the disk (one fsync per group of writes).
            writer.pragma_update(None, "synchronous", "FULL")?;
        }
        migrate(&mut writer)?;
        // Checkpoints (copying the WAL into the database file, with two fsyncs) run on a thread of
        // their own, so commits never wait for them. While writes keep coming that thread never
        // catches up with the last frame, and the WAL only starts over once it has: past
        // WAL_LIMIT_PAGES the writer finishes the checkpoint itself (see `restart_long_wal`).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.wal_hook(Some(note_wal_length));
        // Held by whoever checkpoints, so the writer waits for the checkpointer on a lock, not in
        // SQLite's busy handler (which sleeps 1, 2, 5, 10 ... ms).
        let checkpointing = Arc::new(Mutex::new(()));
        let writer_checkpointing = Arc::clone(&checkpointing);
        let checkpoints = open_connection(path, false)?;
        let start_error = |error: std::io::Error| {
            StoreError::Stopped(format!("cannot start the database threads: {error}"))
        };
        let (stop_checkpoints, stopped) = mpsc::channel();
        let checkpointer = std::thread::Builder::new()
            .name("herald-db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, stopped, checkpointing))
            .map_err(start_error)?;
        let (commands, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("herald-db-writer".into())
            .spawn(move || write_loop(writer, queue, writer_checkpointing))
            .map_err(start_error)?;
        Ok(Arc::new(Database {
            path: path.to_path_buf(),
            commands,
            idle_readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(Some((stop_checkpoints, checkpointer))),
        }))
    }

    /// Queues a write for the next group transaction (see [`crate::Backend::submit`]).
    pub(crate) fn submit(&self, write: Write) {
        if let Err(mpsc::SendError(Command::Write(write))) = self.commands.send(Command::Write(write)) {
            write.refuse(StoreError::Stopped("the database writer has stopped".into()));
        }
    }

    /// Runs `work` on a reader connection, off the async threads: for reads whose size the caller
    /// does not bound (listings).
    pub(crate) async fn read<R, F>(self: &Arc<Self>, work: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let database = Arc::clone(self);
        tokio::task::spawn_blocking(move || database.lookup(work))
            .await
            .map_err(|error| StoreError::Stopped(format!("a database read did not finish: {error}")))?
    }

    /// Runs `work` on a reader connection on the calling thread: for lookups by key, which take a few
    /// microseconds, less than sending them to another thread and back. WAL readers do not wait for
    /// the writer.
    pub(crate) fn lookup<R>(&self, work: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let idle = self.idle_readers.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let conn = match idle {
            Some(conn) => conn,
            None => open_connection(&self.path, false)?,
        };
        let outcome = work(&conn);
        if let Ok(mut idle) = self.idle_readers.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
        outcome
    }

    /// Commits what is queued, empties the WAL into the database file and closes the connections.
    pub(crate) async fn close(&self) {
        // The checkpointer stops first: the writer's last checkpoint must not find it mid-way.
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut checkpointer| checkpointer.take());
        if let Some((stop, thread)) = checkpointer {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let (done, stopped) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
        if let Ok(mut idle) = self.idle_readers.lock() {
            idle.clear();
        }
    }
}

/// Copies committed pages from the WAL into the database file every [`CHECKPOINT_EVERY`], without
/// blocking the writer (PASSIVE), until told to stop. Whenever writes pause it catches up, and the
/// next write starts the WAL over.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, checkpointing: Arc<Mutex<()>>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let _checkpointing = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(%error, "WAL checkpoint skipped");
        }
    }
}

thread_local! {
    /// The WAL's length in pages after the writer's last commit (each writer is a thread of its own).
    static WAL_PAGES: std::cell::Cell<std::ffi::c_int> = const { std::cell::Cell::new(0) };
}

/// Called by SQLite on the writer after each commit with the WAL's length.
fn note_wal_length(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Past [`WAL_LIMIT_PAGES`] (writes that never pause), the writer copies what the checkpointer has
/// not yet (little, as it keeps up) and the next write starts the WAL over, reusing the file rather
/// than growing it.
fn restart_long_wal(conn: &Connection, checkpointing: &Mutex<()>) {
    if WAL_PAGES.get() <= WAL_LIMIT_PAGES {
        return;
    }
    let _checkpointing = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
    // A long read (a listing) must not hold the writer: wait a little for readers, else retry later.
    let _ = conn.busy_timeout(RESTART_WAIT);
    match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get::<_, i64>(0)) {
        Ok(0) => WAL_PAGES.set(0),
        Ok(_) => tracing::debug!("the WAL could not start over yet (a reader); trying after the next commit"),
        Err(error) => {
            tracing::warn!(%error, "the WAL could not be started over; it keeps growing until it can")
        }
    }
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
}

/// Runs one write inside a savepoint: its failure (or panic) undoes only its own statements. `None`
/// when the savepoint could not be made or let go; the write's caller has been answered then.
fn in_savepoint(conn: &Connection, write: Write) -> Option<Ran> {
    if let Err(error) = control(conn, "SAVEPOINT write") {
        write.refuse(error.into());
        return None;
    }
    let ran = write.run(&mut SqliteTx::new(conn));
    let ended = if ran.succeeded() {
        control(conn, "RELEASE write")
    } else {
        control(conn, "ROLLBACK TO write").and_then(|()| control(conn, "RELEASE write"))
    };
    match ended {
        Ok(()) => Some(ran),
        Err(error) => {
            ran.failed(error.into());
            None
        }
    }
}

/// Runs a transaction-control statement, prepared once per connection.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn write_loop(conn: Connection, queue: mpsc::Receiver<Command>, checkpointing: Arc<Mutex<()>>) {
    let mut group: Vec<Write> = Vec::with_capacity(GROUP_LIMIT);
    let mut stop = None;
    while stop.is_none() {
        match queue.recv() {
            Ok(Command::Write(job)) => group.push(job),
            Ok(Command::Stop(done)) => stop = Some(done),
            Err(_) => break,
        }
        commit_group(&conn, &mut group, || match queue.try_recv() {
            Ok(Command::Write(job)) => Some(job),
            Ok(Command::Stop(done)) => {
                stop = Some(done);
                None
            }
            Err(_) => None,
        });
        restart_long_wal(&conn, &checkpointing);
    }
    // Writes queued behind a stop still run, so none is dropped.
    while let Ok(Command::Write(job)) = queue.try_recv() {
        group.push(job);
        commit_group(&conn, &mut group, || None);
    }
    // Leave the WAL empty for whoever opens the database next.
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(%error, "final WAL checkpoint skipped");
    }
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Runs `group` and the writes `more` yields (within the group's limits) in one transaction, commits,
/// then tells each caller how its write went.
fn commit_group(conn: &Connection, group: &mut Vec<Write>, mut more: impl FnMut() -> Option<Write>) {
    if group.is_empty() {
        return;
    }
    if let Err(error) = control(conn, "BEGIN IMMEDIATE") {
        // Another process held the write lock past the busy timeout: the write may be tried again.
        let busy = error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
        let message = error.to_string();
        for write in group.drain(..) {
            let error =
                if busy { StoreError::Busy(message.clone()) } else { StoreError::Commit(message.clone()) };
            write.refuse(error);
        }
        return;
    }
    let started = Instant::now();
    let mut ran: Vec<Ran> = group.drain(..).filter_map(|write| in_savepoint(conn, write)).collect();
    let mut taken = ran.len();
    while taken < GROUP_LIMIT && started.elapsed() < GROUP_WINDOW {
        let Some(write) = more() else { break };
        taken += 1;
        ran.extend(in_savepoint(conn, write));
    }
    match control(conn, "COMMIT") {
        Ok(()) => ran.into_iter().for_each(Ran::committed),
        Err(error) => {
            let _ = control(conn, "ROLLBACK");
            let message = error.to_string();
            for ran in ran {
                ran.failed(StoreError::Commit(message.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_migrated_by_an_earlier_herald_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // The schema and bookkeeping an earlier herald (migrating with sqlx, which knew the first
            // three migrations) left behind.
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL);
                 INSERT INTO _sqlx_migrations VALUES (1, 1), (2, 1), (3, 1);
                 INSERT INTO meta (key, value) VALUES ('kept', 'yes');",
            )
            .unwrap();
        }
        let database = Database::open(&path, Durability::default()).unwrap();
        let kept: String = database
            .lookup(|conn| Ok(conn.query_row("SELECT value FROM meta WHERE key = 'kept'", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(kept, "yes");
        let version: i64 =
            database.lookup(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_sustained_writes_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let store = crate::Store::open(&path).await.unwrap();
        let filler = "x".repeat(4000);
        // About 160 MB of rows, written by many concurrent writers as the engine's runs do.
        for round in 0..80 {
            let writes: Vec<_> = (0..500)
                .map(|i| {
                    let (store, filler) = (store.clone(), filler.clone());
                    tokio::spawn(async move { store.set_meta(&format!("k{round}-{i}"), &filler).await })
                })
                .collect();
            for write in writes {
                write.await.unwrap().unwrap();
            }
        }
        let wal = std::fs::metadata(dir.path().join("busy.db-wal")).map(|m| m.len()).unwrap_or(0);
        // The limit, plus at most one group's frames written before the writer checked.
        let limit = u64::try_from(WAL_LIMIT_PAGES).unwrap() * 4096;
        assert!(wal < limit + (16 << 20), "the WAL grew to {} MB", wal >> 20);
        store.close().await;
        let wal = std::fs::metadata(dir.path().join("busy.db-wal")).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal, 0, "close leaves the WAL empty");
    }
}
