//! Statements and rows: a connection with its prepared statements, the queries the reads and the
//! write transaction share, and how a row becomes one of the store's types.

use crate::{
    KeyWrap, MasterRow, MessageRow, PlacedSecret, ReceiptRow, Result, RunRow, RunStatus, SealedSecret,
    SecretRow, StoreError, StoredRecord, UserRow, VaultNode,
};
use futures_util::future::LocalBoxFuture;
use std::borrow::Cow;
use std::collections::HashMap;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, Row, Statement};

/// A statement's bound values.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        use tokio_postgres::error::SqlState;
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
pub(super) fn described(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Round trips to the server made by the connections of one store (each statement, preparation or
/// batch of control statements is one, and so is each group of statements sent together): what
/// `/health`, `herald bench` and `cargo bench -p herald-store` report.
pub(super) type Trips = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// A value bound to a statement that is sent later than the call that gave it.
pub(super) type Owned = Box<dyn ToSql + Sync + Send>;

/// A value that can be kept for a deferred statement (see [`Conn::defer`]).
pub(super) trait Own {
    fn own(&self) -> Owned;
}

macro_rules! own_by_clone {
    ($($kind:ty),*) => {
        $(impl Own for $kind {
            fn own(&self) -> Owned {
                Box::new(self.clone())
            }
        })*
    };
}
own_by_clone!(String, Option<String>, i64, Option<i64>, i32, Option<i32>, bool, f64, Option<f64>, Vec<u8>);

impl Own for str {
    fn own(&self) -> Owned {
        Box::new(self.to_string())
    }
}

impl Own for &str {
    fn own(&self) -> Owned {
        Box::new(self.to_string())
    }
}

impl Own for Option<&str> {
    fn own(&self) -> Owned {
        Box::new(self.map(str::to_string))
    }
}

/// The values of a deferred statement, each given by reference: `owned![id, &now]`.
macro_rules! owned {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::postgres::rows::Own::own($value)),*]
    };
}
pub(super) use owned;

/// What waits to be sent with the next round trip, and which write of the writer's group gave it.
struct Pending {
    write: usize,
    what: Deferred,
}

enum Deferred {
    /// A statement whose answer nobody reads: only whether it failed matters.
    Statement(Statement, Vec<Owned>),
    /// Transaction control, sent as it is.
    Control(Cow<'static, str>),
}

/// A write of the writer's group that was rolled back alone, because one of its deferred
/// statements failed after its closure had returned.
pub(super) struct Undone {
    pub(super) write: usize,
    pub(super) error: String,
}

/// One connection and the statements prepared on it: each SQL text is parsed once per connection.
///
/// Statements are sent as a pipeline where the caller allows it: [`Conn::defer`] keeps a statement
/// whose answer is not read, and the next statement that must be answered (or [`Conn::flush`]) takes
/// every deferred one along in the same round trip. PostgreSQL runs them in order, so a write sees
/// its own deferred changes; if one fails, the ones after it fail too (the transaction refuses
/// everything until a rollback).
///
/// The writer's group ([`Conn::start_write`]) rides the same pipeline: each write's statements
/// follow a savepoint of its own, and nothing waits for a write to end before the next one runs.
/// When a deferred statement of an earlier write of the group fails, that write is rolled back to
/// its savepoint, noted in [`Conn::take_undone`], and what its failure refused (the later writes'
/// statements, and the statement being answered) is sent again: the write being run hears only its
/// own failures.
pub(super) struct Conn {
    /// The driver's runtime: the connection's task runs while a call waits for the server.
    runtime: tokio::runtime::Runtime,
    client: Client,
    trips: Trips,
    prepared: HashMap<String, Statement>,
    pending: Vec<Pending>,
    /// The write of the writer's group whose closure runs now (0 outside a group).
    write: usize,
    undone: Vec<Undone>,
    /// A write of the group changes what nodes keep in memory (see `cache`).
    changed_cached: bool,
    /// A statement found the connection gone, or the server ending it (an administrator, a
    /// restart): the driver may not have noticed it closed yet.
    broken: bool,
    /// Statements of the running write that failed on this connection: one that failed inside a
    /// transaction has made PostgreSQL refuse everything after it until a rollback, even if the
    /// write's closure went on.
    failures: u64,
}

type Answer<T> = std::result::Result<T, tokio_postgres::Error>;

/// One round trip: every item of `sent`, then `last`, written in order; each item's outcome and
/// `last`'s answer.
fn send<'s, T, F>(
    runtime: &tokio::runtime::Runtime,
    client: &'s Client,
    sent: &[Pending],
    last: &impl Fn(&'s Client) -> F,
) -> (Vec<Answer<()>>, Answer<T>)
where
    F: std::future::Future<Output = Answer<T>> + 's,
{
    runtime.block_on(async {
        if sent.is_empty() {
            return (Vec::new(), last(client).await);
        }
        let mut answered = None;
        // Each request is written when its future is first polled, and `join_all` polls them in
        // order: they reach the server in the order they were given.
        let mut requests: Vec<LocalBoxFuture<'_, Answer<()>>> = sent
            .iter()
            .map(|item| -> LocalBoxFuture<'_, Answer<()>> {
                match &item.what {
                    Deferred::Statement(statement, values) => Box::pin(async move {
                        let values = values.iter().map(|value| &**value as &(dyn ToSql + Sync));
                        client.execute_raw(statement, values).await.map(drop)
                    }),
                    Deferred::Control(sql) => Box::pin(client.batch_execute(sql)),
                }
            })
            .collect();
        requests.push(Box::pin(async {
            answered = Some(last(client).await);
            Ok(())
        }));
        let mut results = futures_util::future::join_all(requests).await;
        results.pop();
        (results, answered.expect("the last request was awaited with the others"))
    })
}

/// Whether an error means the connection is gone or being ended by the server (an administrator,
/// a restart): the driver may not have noticed it closed yet.
fn is_ending(error: &tokio_postgres::Error) -> bool {
    let class = error.code().map(|code| code.code());
    error.is_closed() || class.is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
}

/// A savepoint's name for the write of the group at `index`.
fn savepoint(index: usize) -> String {
    format!("write_{index}")
}

impl Pending {
    /// Opens the savepoint of the write of the group at `write`.
    fn savepoint(write: usize) -> Pending {
        Pending { write, what: Deferred::Control(format!("SAVEPOINT {}", savepoint(write)).into()) }
    }

    /// Undoes what the write of the group at `write` did, keeping its savepoint.
    fn rollback_to(write: usize) -> Pending {
        Pending {
            write,
            what: Deferred::Control(format!("ROLLBACK TO SAVEPOINT {}", savepoint(write)).into()),
        }
    }
}

impl Conn {
    /// Connects with `connector` (TLS or not); blocks.
    pub(super) fn open<T>(config: &tokio_postgres::Config, connector: T, trips: Trips) -> Answer<Conn>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + 'static + Send,
        T::Stream: Send,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime of one thread, without I/O drivers of its own, can always be built");
        let (client, connection) = runtime.block_on(config.connect(connector))?;
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %described(&error), "a database connection ended");
            }
        });
        Ok(Conn {
            runtime,
            client,
            trips,
            prepared: HashMap::new(),
            pending: Vec::new(),
            write: 0,
            undone: Vec::new(),
            changed_cached: false,
            broken: false,
            failures: 0,
        })
    }

    fn count_trip(&self) {
        self.trips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// How many statements of the running write have failed so far.
    pub(super) fn failures(&self) -> u64 {
        self.failures
    }

    /// Notes whether an error means the connection is gone, and converts it.
    fn checked(&mut self, error: tokio_postgres::Error) -> StoreError {
        self.note_failure(&error);
        error.into()
    }

    fn note_failure(&mut self, error: &tokio_postgres::Error) {
        self.failures += 1;
        self.broken |= is_ending(error);
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        self.count_trip();
        let prepared = self.runtime.block_on(self.client.prepare(sql));
        let statement = prepared.map_err(|error| self.checked(error))?;
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Sends what is pending, then `last`'s request, in one round trip, and waits for every answer:
    /// the pending statements' first failure, and `last`'s answer ([`Conn::settled`] makes one of
    /// them). A failure of an earlier write of the group is undone here and the refused requests
    /// sent again (see the type's documentation), so the answers are the running write's own.
    fn pipelined<'s, T, F>(&'s mut self, sql: &str, last: impl Fn(&'s Client) -> F) -> (Answer<()>, Answer<T>)
    where
        F: std::future::Future<Output = Answer<T>> + 's,
    {
        // Fields one by one: the client stays lent to `last`'s futures while the rest changes.
        let client: &'s Client = &self.client;
        let mut sent = std::mem::take(&mut self.pending);
        loop {
            self.trips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // What each round trip carried, for whoever counts them
            // (`RUST_LOG=herald_store::round_trips=trace`).
            tracing::trace!(target: "herald_store::round_trips", ahead = sent.len(), sql = sql.trim_start());
            let (mut results, answer) = send(&self.runtime, client, &sent, &last);
            let Some(at) = results.iter().position(Result::is_err) else {
                return (Ok(()), answer);
            };
            let Err(error) = results.swap_remove(at) else { unreachable!("found as an error") };
            let failed = &sent[at];
            let earlier_write = failed.write < self.write && matches!(failed.what, Deferred::Statement(..));
            if is_ending(&error) {
                self.broken = true;
            }
            if !earlier_write || self.broken {
                return (Err(error), answer);
            }
            // An earlier write of the group failed: it alone is rolled back, and what PostgreSQL
            // refused after its failure goes again.
            let write = failed.write;
            self.undone.push(Undone { write, error: described(&error) });
            let mut again = vec![Pending::rollback_to(write)];
            again.extend(sent.into_iter().skip(at + 1).filter(|item| item.write != write));
            sent = again;
        }
    }

    /// One outcome of a pipeline: the first failure, counted on this connection, else the answer.
    fn settled<T>(&mut self, (ahead, last): (Answer<()>, Answer<T>)) -> Answer<T> {
        if let Err(error) = &last {
            self.note_failure(error);
        }
        match ahead {
            Err(error) => {
                self.note_failure(&error);
                Err(error)
            }
            Ok(()) => last,
        }
    }

    /// Begins the write at `index` of the writer's group: its statements follow a savepoint of its
    /// own when `grouped`, and its failures are counted afresh.
    pub(super) fn start_write(&mut self, index: usize, grouped: bool) {
        self.write = index;
        self.failures = 0;
        if grouped {
            self.pending.push(Pending::savepoint(index));
        }
    }

    /// Gives up the running write of a group: its statements not sent yet are forgotten, and what
    /// it sent is rolled back to its savepoint with the next round trip.
    pub(super) fn undo_write(&mut self) {
        let write = self.write;
        self.pending.retain(|item| item.write != write || matches!(item.what, Deferred::Control(_)));
        self.pending.push(Pending::rollback_to(write));
    }

    /// The writes of the group rolled back alone since the last call (see [`Undone`]).
    pub(super) fn take_undone(&mut self) -> Vec<Undone> {
        std::mem::take(&mut self.undone)
    }

    /// Sends the statements of a group of `writes` not sent yet, in one round trip. Any of its
    /// writes whose statement fails there is rolled back alone ([`Conn::take_undone`]); an error is
    /// the connection's, or the transaction's as a whole.
    pub(super) fn settle_group(&mut self, writes: usize) -> Answer<()> {
        self.write = writes;
        self.flush("")
    }

    /// Ends the group: later statements belong to no write. Whether a write of it changed what
    /// nodes keep in memory ([`Conn::changes_cached`]).
    pub(super) fn end_group(&mut self) -> bool {
        self.write = 0;
        self.failures = 0;
        self.pending.clear();
        self.undone.clear();
        std::mem::take(&mut self.changed_cached)
    }

    /// Notes that the running write changes users, tokens or secrets (see `cache`).
    pub(super) fn changes_cached(&mut self) {
        self.changed_cached = true;
    }

    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let answers = self.pipelined(sql, |client| client.query(&statement, params));
        Ok(self.settled(answers)?)
    }

    pub(super) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        let answers = self.pipelined(sql, |client| client.query_opt(&statement, params));
        Ok(self.settled(answers)?)
    }

    /// The row of `first`, if any, and the rows of `second`, asked in one round trip.
    pub(super) fn query_opt_and_query(
        &mut self,
        (first, first_params): (&str, Params<'_>),
        (second, second_params): (&str, Params<'_>),
    ) -> Result<(Option<Row>, Vec<Row>)> {
        let (one, two) = (self.statement(first)?, self.statement(second)?);
        let answers = self.pipelined(first, |client| {
            let (one, two) = (&one, &two);
            async move {
                let (row, rows) = futures_util::future::join(
                    client.query_opt(one, first_params),
                    client.query(two, second_params),
                )
                .await;
                Ok((row?, rows?))
            }
        });
        Ok(self.settled(answers)?)
    }

    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row> {
        let statement = self.statement(sql)?;
        let answers = self.pipelined(sql, |client| client.query_one(&statement, params));
        Ok(self.settled(answers)?)
    }

    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64> {
        let statement = self.statement(sql)?;
        let answers = self.pipelined(sql, |client| client.execute(&statement, params));
        Ok(self.settled(answers)?)
    }

    /// Keeps a statement whose answer is not read, to be sent with the next round trip (see the
    /// type's documentation). A failure shows there: in the statement that must be answered, in
    /// [`Conn::flush`], and in [`Conn::failures`].
    pub(super) fn defer(&mut self, sql: &str, values: Vec<Owned>) -> Result<()> {
        let statement = self.statement(sql)?;
        self.pending.push(Pending { write: self.write, what: Deferred::Statement(statement, values) });
        Ok(())
    }

    /// Transaction control to send with the next round trip.
    pub(super) fn defer_control(&mut self, sql: &'static str) {
        self.pending.push(Pending { write: self.write, what: Deferred::Control(sql.into()) });
    }

    /// Sends what is pending, with `then` after it (control statements), and waits for the answers.
    pub(super) fn flush(&mut self, then: &'static str) -> Answer<()> {
        if then.is_empty() && self.pending.is_empty() {
            return Ok(());
        }
        let answers = self.pipelined(then, |client| client.batch_execute(then));
        self.settled(answers)
    }

    /// Statements without values, sent at once after anything pending (transaction control).
    pub(super) fn batch(&mut self, sql: &str) -> Answer<()> {
        let answers = self.pipelined(sql, |client| client.batch_execute(sql));
        self.settled(answers)
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

    /// Every row of a query that is planned with its values each time it runs (under PostgreSQL's
    /// default `plan_cache_mode = auto`, which plans a statement's first executions with their
    /// values): for a statement whose best plan depends on them (a range over the due runs). It is
    /// prepared anew each time, which costs a round trip more.
    pub(super) fn all_planned_each_time<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query_planned_each_time(sql, params)?.iter().map(map).collect()
    }

    /// The rows of a query planned with its values each time (see `all_planned_each_time`).
    pub(super) fn query_planned_each_time(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.count_trip();
        // A statement given as text is prepared as a new one, whose first executions PostgreSQL
        // always plans with their values.
        let answers = self.pipelined(sql, |client| client.query(sql, params));
        Ok(self.settled(answers)?)
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

/// A user and its permission sets in one row, from `users u` and what follows: each lookup of a user
/// is one round trip (it was two, and a lead looks a user up twice).
macro_rules! select_user {
    ($rest:literal) => {
        concat!(
            "SELECT u.id, u.name, ARRAY(SELECT p.permission_set FROM user_permission_sets p
             WHERE p.user_id = u.id ORDER BY p.permission_set) FROM ",
            $rest
        )
    };
}
pub(super) use select_user;

pub(super) fn user_from_row(row: &Row) -> Result<UserRow> {
    Ok(UserRow { id: get(row, 0)?, name: get(row, 1)?, permission_sets: get(row, 2)? })
}

pub(super) fn user(conn: &mut Conn, id: &str) -> Result<Option<UserRow>> {
    conn.optional(select_user!("users u WHERE u.id = $1 AND u.active"), &[&id], user_from_row)
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
