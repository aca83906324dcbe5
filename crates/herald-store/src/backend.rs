//! The storage interface: what a database must do for herald, whatever the database is.
//!
//! A backend implements two traits. [`Backend`] takes writes ([`Backend::submit`]) and answers reads;
//! [`WriteTx`] is the transaction a write's closure runs in, with every write operation the engine
//! composes (a record and the runs it starts, a run's journal and the ledger rows it gathered, a key
//! rotation step). The engine only sees the [`Store`](crate::Store) facade over an `Arc<dyn Backend>`.
//!
//! Why this shape:
//! - **Writes are closures run on the backend's side, synchronously.** A record and its runs, or a
//!   run's journal and its ledger updates, must commit together, and what the engine writes depends
//!   on what it reads inside the same transaction (a record's prior values, a message's status). So
//!   the engine hands over a closure over `&mut dyn WriteTx`, and the backend decides where it runs:
//!   SQLite on its writer thread, a PostgreSQL backend likely the same with the sync `postgres`
//!   client. Group commit (many callers' writes sharing one transaction, each in a savepoint) is the
//!   backend's business: [`Write`] and [`Ran`] are all it needs to run a caller's closure, undo it
//!   alone, and answer the caller once the commit is known.
//! - **The closure's result types are erased by the facade**, not by the backend: [`Write`] boxes the
//!   closure with the channel its caller waits on, so the backend sees one type, and the result
//!   (whatever `R`/`E` the caller chose) travels in the box from the closure to its caller without
//!   being downcast. That costs the same allocations the writer already made before there was a trait.
//! - **Reads return [`BoxFuture`]s**, written by hand rather than with `async-trait`: the trait must be
//!   object-safe (`dyn Backend`), and a hand-written boxed future lets a backend answer a lookup by key
//!   on the calling thread and return it ready (SQLite does: a few microseconds, less than a trip to
//!   another thread), or await a network round trip (PostgreSQL would), behind the same signature,
//!   without a macro hiding the allocation.
//!
//! Every method documents its contract; the conformance suite (`conformance.rs`) checks them against a
//! backend.

use crate::activity::{Bucket, Created, CreatedCount, LeadMessage};
use crate::copy::{Cell, Page, Row, Table};
use crate::{
    AccountRow, ConsentRow, DataKeyRow, KeyWrap, MasterRetirement, MasterRow, MessageChange, MessageFilter,
    MessageRow, NewMessage, NewReceipt, NewRun, PlacedSecret, ProjectVersionRow, ReceiptRow, RecordAt,
    Result, RunQuery, RunRow, RunStatus, SealedSecret, SecretRow, SecretSetting, SessionRow, StaleRun,
    StoreError, StoredRecord, TokenRow, UserRow, VaultNode, VaultSummary,
};
use serde_json::{Map, Value};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

/// A future a backend returns from a read.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Backend::select_records`] keeps of each record (it may also trim it).
pub type RecordFilter = Box<dyn FnMut(Map<String, Value>) -> Option<Map<String, Value>> + Send>;

/// A database herald can keep its state in.
///
/// Every timestamp is RFC 3339 text in UTC with microseconds (`2026-11-21T10:00:00.000000Z`), written
/// by the engine; a backend compares them as text, which orders them in time.
pub trait Backend: Send + Sync + 'static {
    /// Takes one write and answers its caller through it, exactly once.
    ///
    /// The contract: run the write ([`Write::run`]) inside a transaction, alone or with other writes
    /// (group commit), in a savepoint of its own. When [`Ran::succeeded`] is false, undo that
    /// savepoint (its statements only; the others of the group stay). Once the transaction's outcome
    /// is known, answer every write that ran in it: [`Ran::committed`] after a durable commit,
    /// [`Ran::failed`] when it did not commit. A write that cannot run (the transaction did not begin,
    /// the backend is closed) is answered with [`Write::refuse`]: [`StoreError::Busy`] when another
    /// process holds the database and the same write may be tried again, [`StoreError::Stopped`]
    /// after [`Backend::close`]. Writes taken before `close` are run, not dropped.
    fn submit(&self, write: Write);

    /// Whether several herald servers may use this database at once, each a node taking its share of
    /// the work: then a node must not take a run another live node holds, and takes over those of a
    /// node no longer seen ([`WriteTx::adopt_orphaned_runs`]). When false (one server per database,
    /// SQLite's case), a starting server takes every run left unfinished at once.
    fn shared(&self) -> bool;

    /// What other nodes on a shared database changed that a node keeps in memory, as each change
    /// commits (PostgreSQL: `LISTEN`/`NOTIFY`). `None` for a database of one server. A receiver that
    /// lags behind loses notices (`RecvError::Lagged`): it must read the state again.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        None
    }

    /// The database's kind as herald names it (`sqlite`, `postgresql`), for `/health` and messages.
    fn kind(&self) -> &'static str;

    /// Round trips to a database server made by this process so far (each request, or group of
    /// requests sent together, that waited for the server's answer): what a lead costs on a store
    /// reached over a network. `None` for an embedded database.
    fn round_trips(&self) -> Option<u64> {
        None
    }

    /// Runs or refuses every write already submitted, then releases the database; later writes are
    /// refused with [`StoreError::Stopped`].
    fn close(&self) -> BoxFuture<'_, ()>;

    /// A record by object and id.
    fn record<'a>(&'a self, object: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>>;

    /// Up to `limit` records of `object`, in creation order.
    fn records_of<'a>(&'a self, object: &'a str, limit: i64) -> BoxFuture<'a, Result<Vec<StoredRecord>>>;

    /// Up to `limit` records of `object`, newest first (creation order reversed), each with its
    /// position in that order; with `before`, only those created before the record at that position.
    /// A backend should read them by an index on object and creation order, not sort the object's
    /// records: the console pages through them 50 at a time.
    fn records_newest_first<'a>(
        &'a self,
        object: &'a str,
        before: Option<i64>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RecordAt>>>;

    /// The records of `object` that `select` keeps, in creation order; with `first_only`, reading
    /// stops at the first one kept. With `fields`, a record holds only those fields (a backend should
    /// skip the others rather than build values for them: a Get Records over 100,000 records).
    fn select_records<'a>(
        &'a self,
        object: &'a str,
        fields: Option<Vec<String>>,
        first_only: bool,
        select: RecordFilter,
    ) -> BoxFuture<'a, Result<Vec<Map<String, Value>>>>;

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>>>;

    /// The runs a record started, oldest first (by `created_at`, then id).
    fn runs_for_record<'a>(&'a self, record_id: &'a str) -> BoxFuture<'a, Result<Vec<RunRow>>>;

    /// Up to `limit` runs of the given statuses, oldest first (by `created_at`, then id).
    fn runs_with_status<'a>(
        &'a self,
        statuses: &'a [RunStatus],
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RunRow>>>;

    /// One page of the runs `query` asks for, newest first (by `created_at` descending, then id).
    fn runs_page<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>>;

    /// How many rows of `table` were created in each bucket since `since`, by the table's key (a
    /// record's object, a run's or a message's status). Reads the table's `created_at` index.
    fn created_per_bucket<'a>(
        &'a self,
        table: Created,
        bucket: Bucket,
        since: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CreatedCount>>>;

    /// The messages of the runs started by records created in `[from, to)`, newest records first,
    /// at most `limit` (see [`LeadMessage`]).
    fn lead_messages<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<LeadMessage>>>;

    /// Up to `limit` `ready` runs whose row nobody touched since `before` (`updated_at < before`),
    /// oldest first: what the engine's sweep checks against the runs it holds. Ready runs are few; a
    /// backend should read them by an index on status.
    fn ready_runs_untouched_since<'a>(
        &'a self,
        before: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<StaleRun>>>;

    /// Every `waiting` run's id and when it is due (`next_attempt_at`, else `updated_at`).
    fn waiting_runs(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>>;

    /// The secrets stored at one place, by parameter name.
    fn secrets<'a>(
        &'a self,
        external_credential: &'a str,
        principal: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SealedSecret>>>;

    /// Every stored secret with its place, ordered by place and parameter.
    fn all_secrets(&self) -> BoxFuture<'_, Result<Vec<PlacedSecret>>>;

    /// Every stored secret's place and when its value was last set ([`WriteTx::upsert_secret`]'s
    /// `now`; [`WriteTx::reseal_secret`] leaves it), ordered by place and parameter.
    fn secret_settings(&self) -> BoxFuture<'_, Result<Vec<SecretSetting>>>;

    /// The wrappings of every data key not retired under one master key, by key id.
    fn wraps_under<'a>(&'a self, master_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyWrap>>>;

    /// Whether any data key exists yet, retired or not.
    fn has_data_keys(&self) -> BoxFuture<'_, Result<bool>>;

    /// Every data key, oldest first, with the number of secrets sealed under it.
    fn data_keys(&self) -> BoxFuture<'_, Result<Vec<DataKeyRow>>>;

    /// Every master key that ever wrapped a data key, in the order they were added, with the number of
    /// live data keys each still wraps.
    fn vault_masters(&self) -> BoxFuture<'_, Result<Vec<MasterRow>>>;

    /// Every registered vault node, live or not, by `started_at` then id.
    fn vault_nodes(&self) -> BoxFuture<'_, Result<Vec<VaultNode>>>;

    /// Live data keys, live master keys, and secrets sealed under a data key other than the one the
    /// meta key [`ACTIVE_KEY_META`](crate::ACTIVE_KEY_META) names.
    fn vault_summary(&self) -> BoxFuture<'_, Result<VaultSummary>>;

    /// An active user by id, with its permission sets in name order.
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>>;

    /// An active user by name.
    fn user_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>>;

    /// The active user a token hash belongs to, if the token is not revoked.
    fn user_by_token_hash<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<UserRow>>>;

    /// Every active user, by name.
    fn users(&self) -> BoxFuture<'_, Result<Vec<UserRow>>>;

    /// Every user, active or deactivated, by name, with whether a console password is set.
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountRow>>>;

    /// Every API token, revoked or not, by user id, creation time and id.
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRow>>>;

    /// The console password hash (a PHC string) of a user, `None` when none was set.
    fn password_hash<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// The console session kept under `hash`, expired or not.
    fn session<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<SessionRow>>>;

    fn meta<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// A project version by its sequence number, with its files as stored.
    fn project_version(&self, seq: i64) -> BoxFuture<'_, Result<Option<ProjectVersionRow>>>;

    fn webhook_secret_hash<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    fn message<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<MessageRow>>>;

    /// Ledger rows matching every filter that is set, newest first (by `created_at`, then id, both
    /// descending), after `filter.before` when set; at most `filter.limit`, or 100 when it is not
    /// positive. A backend should read them by an index on creation time (or on destination, when
    /// one is given), never sort the whole ledger.
    fn messages<'a>(&'a self, filter: &'a MessageFilter) -> BoxFuture<'a, Result<Vec<MessageRow>>>;

    /// The sum of `attempts` of the messages sent through a named credential since `since` (each
    /// attempt was a call).
    fn messages_since<'a>(&'a self, named_credential: &'a str, since: &'a str) -> BoxFuture<'a, Result<i64>>;

    /// Up to `limit` receipts, newest first (by id descending); with `unmatched_only`, only status
    /// receipts not matched to a message.
    fn receipts(&self, unmatched_only: bool, limit: i64) -> BoxFuture<'_, Result<Vec<ReceiptRow>>>;

    /// The receipts matched to a message, oldest first (by id); read by an index on the message.
    fn receipts_for_message<'a>(&'a self, message_id: &'a str) -> BoxFuture<'a, Result<Vec<ReceiptRow>>>;

    /// How many status receipts wait for a message.
    fn unmatched_status_receipts(&self) -> BoxFuture<'_, Result<usize>>;

    /// Every consent row, by phone then sender.
    fn consents(&self) -> BoxFuture<'_, Result<Vec<ConsentRow>>>;

    /// Up to `limit` rows of `table` for a copy (see `copy`): its [`Table::columns`] in that order,
    /// each a [`Cell`] of the column's kind (`Null` for NULL), in the table's
    /// [`Order`](crate::copy::Order), starting after the cursor `after` (`None`: from the first row).
    /// The page's `next` is the cursor after its last row, to give back as `after`; `None` when the
    /// page holds fewer than `limit` rows. A table ordered by key takes its key values as cursor
    /// ([`Table::key_of`]); one ordered by insertion, whatever position the backend keeps.
    fn export_rows<'a>(
        &'a self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Page>>;
}

/// The transaction a write runs in. Every change made through it commits with the others of the same
/// write, or none does; reads through it see the write's own changes.
pub trait WriteTx {
    // Records and runs.

    /// Inserts a record; an id already used (by a record of any object) is an error.
    fn insert_record(&mut self, object: &str, id: &str, data: &Map<String, Value>, now: &str) -> Result<()>;

    /// The record as it is inside this transaction (for updates: the prior values).
    fn record(&mut self, object: &str, id: &str) -> Result<Option<StoredRecord>>;

    /// Replaces a record's data.
    fn update_record(&mut self, id: &str, data: &Map<String, Value>, now: &str) -> Result<()>;

    /// Deletes a record of `object`; whether there was one. Its runs stay, listed under its id.
    fn delete_record(&mut self, object: &str, id: &str) -> Result<bool>;

    /// Enqueues a run as `ready`.
    fn insert_run(&mut self, run: NewRun<'_>, now: &str) -> Result<()>;

    /// Journals a run's state (the interpreter's state as JSON text) and status; clears when it was due.
    fn save_run(
        &mut self,
        id: &str,
        status: RunStatus,
        state: &str,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()>;

    /// Enqueues a run as `waiting` until `at` (a scheduled path, a stored Wait): claimed only once
    /// due, like a run parked by [`WriteTx::wait_run`]; `reason` is its fault meanwhile.
    /// On a shared database every other node hears of it once it commits ([`Notice::WorkDue`]).
    fn insert_waiting_run(&mut self, run: NewRun<'_>, at: &str, reason: &str, now: &str) -> Result<()>;

    /// The `waiting` runs of a record, oldest first, as this transaction sees them (to move a
    /// scheduled path when the record changes, in the write that changes it).
    fn waiting_runs_of_record(&mut self, record_id: &str) -> Result<Vec<RunRow>>;

    /// Parks a run as `waiting` until `at` (a retry or a rate limit); `reason` is its fault meanwhile.
    /// On a shared database every other node hears of it once it commits ([`Notice::WorkDue`]).
    fn wait_run(&mut self, id: &str, state: &str, at: &str, reason: &str, now: &str) -> Result<()>;

    /// Takes a run for a worker of node `owner`: a `ready` run, or a `waiting` one whose
    /// `next_attempt_at` is not after `now`, becomes `running` (with no due time) under that owner and
    /// is returned; any other run gives `None`.
    ///
    /// The contract several herald processes on one database rely on: of any number of concurrent
    /// claims of one run, from any process, at most one returns it, and a waiting run is never
    /// returned before it is due.
    fn claim_run(&mut self, id: &str, owner: &str, now: &str) -> Result<Option<RunRow>>;

    /// Takes over, for node `owner`, up to `limit` runs left `ready` or `running` by another node not
    /// seen (in `vault_nodes`) since `live_since`, or by no node: their owner becomes `owner`, their
    /// status stays, and they are returned oldest first (by `created_at`, then id). The caller then
    /// treats them as a restart treats its own: a `running` one was interrupted. Of concurrent
    /// takeovers by several nodes, each run goes to one; runs `owner` already holds are not returned.
    fn adopt_orphaned_runs(&mut self, owner: &str, live_since: &str, limit: i64) -> Result<Vec<RunRow>>;

    /// Claims for node `owner`, as [`WriteTx::claim_run`] does one by one, up to `limit` `waiting`
    /// runs due at `now`, the earliest due first: the runs any node parked (retries, scheduled
    /// paths, Waits), taken by whichever node asks first. Concurrent calls never return a run twice.
    fn claim_due_runs(&mut self, owner: &str, now: &str, limit: i64) -> Result<Vec<RunRow>>;

    // The message ledger, receipts and consent (see `ledger`).

    /// Writes a message before its request leaves; a second write of the same (idempotency key,
    /// position) counts one more attempt on the row instead of adding one.
    fn upsert_message(&mut self, message: &NewMessage, now: &str) -> Result<()>;

    /// The messages of one attempt, by position.
    fn messages_of_attempt(&mut self, idempotency_key: &str) -> Result<Vec<MessageRow>>;

    /// The message a receipt speaks of: by the provider's id, else by herald's client id.
    fn find_message(
        &mut self,
        provider: &str,
        provider_message_id: Option<&str>,
        client_message_id: Option<&str>,
    ) -> Result<Option<MessageRow>>;

    /// Whether every message of an attempt is still `pending`.
    fn attempt_all_pending(&mut self, idempotency_key: &str) -> Result<bool>;

    /// Moves every `pending` message of an attempt to `status` and appends `entry` (a JSON object, as
    /// text) to each one's history, without reading them one by one (a batch of thousands). Returns
    /// how many moved.
    fn answer_pending(
        &mut self,
        idempotency_key: &str,
        status: &str,
        entry: &str,
        now: &str,
    ) -> Result<usize>;

    /// Changes the fields of a message that `change` sets; the others keep their value.
    fn update_message(&mut self, id: &str, change: &MessageChange, now: &str) -> Result<()>;

    /// Stores a webhook event; returns its id, greater than every id before it.
    fn insert_receipt(&mut self, receipt: &NewReceipt<'_>) -> Result<i64>;

    /// Status receipts not matched to a message that carry this provider message id, oldest first.
    fn unmatched_receipts(&mut self, provider: &str, provider_message_id: &str) -> Result<Vec<ReceiptRow>>;

    fn match_receipt(&mut self, id: i64, message_id: &str, applied: bool) -> Result<()>;

    /// An opt-in lifts the phone's opt-outs whose sender was not known (`sender` empty).
    fn lift_unknown_sender_opt_out(&mut self, phone: &str, now: &str) -> Result<()>;

    /// Inserts or replaces the consent of (phone, sender). On a shared database every node hears of
    /// it once it commits ([`Notice::Consent`]).
    fn set_consent(&mut self, consent: &ConsentRow) -> Result<()>;

    /// Notes a webhook delivery by the digest of its endpoint and body; returns `false`, and notes
    /// nothing, when a delivery with that digest was noted before (a replay), even by another process.
    fn first_delivery(&mut self, digest: &str, webhook: &str, now: &str) -> Result<bool>;

    /// Inserts or replaces a webhook's secret hash.
    fn set_webhook_secret(&mut self, name: &str, hash: &str, now: &str) -> Result<()>;

    // Users and tokens.

    /// Creates an active user with its permission sets; a name already used is an error.
    fn create_user(&mut self, id: &str, name: &str, permission_sets: &[String], now: &str) -> Result<()>;

    /// Deactivates the active user of that name; returns whether there was one.
    fn deactivate_user(&mut self, name: &str) -> Result<bool>;

    fn create_token(&mut self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()>;

    /// Revokes the token `id` at `now`: from the commit on, no process finds a user by its hash
    /// (a backend that keeps users in memory forgets them). Returns whether a token not yet revoked
    /// had that id.
    fn revoke_token(&mut self, id: &str, now: &str) -> Result<bool>;

    /// Inserts or replaces a user's console password hash.
    fn set_password_hash(&mut self, user_id: &str, hash: &str, now: &str) -> Result<()>;

    /// Keeps a console session under `hash`, and deletes every session expired at
    /// `session.created_at` (so they do not pile up).
    fn create_session(&mut self, hash: &str, session: &SessionRow) -> Result<()>;

    /// Deletes the session kept under `hash`; returns whether there was one.
    fn delete_session(&mut self, hash: &str) -> Result<bool>;

    // Secrets and the vault (see `vault`).

    /// Inserts or replaces the secret of (external credential, principal, user id, parameter), set at
    /// `now`. The caller has checked its data key (see [`WriteTx::data_key_retired`]).
    fn upsert_secret(
        &mut self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
        secret: &SealedSecret,
        now: &str,
    ) -> Result<()>;

    /// Whether a data key is retired; `None` when there is no such key.
    fn data_key_retired(&mut self, key_id: i64) -> Result<Option<bool>>;

    fn has_data_keys(&mut self) -> Result<bool>;

    /// The master key added last that is not retired: the one a rotation moved to.
    fn newest_master(&mut self) -> Result<Option<String>>;

    /// Registers a master key by fingerprint; one already known is left as it is.
    fn add_master(&mut self, id: &str, now: &str) -> Result<()>;

    /// A new data key's row; returns its id, never one used before (retired keys keep their rows).
    fn insert_data_key(&mut self, now: &str) -> Result<i64>;

    /// Inserts or replaces the wrapping of a data key under a master key.
    fn insert_wrap(&mut self, key_id: i64, master_id: &str, wrapped: &[u8], now: &str) -> Result<()>;

    /// The wrappings of every data key not retired under one master key, by key id.
    fn wraps_under(&mut self, master_id: &str) -> Result<Vec<KeyWrap>>;

    /// The ids of the data keys not retired, ascending.
    fn live_data_keys(&mut self) -> Result<Vec<i64>>;

    /// Up to `limit` secrets not sealed under `key_id` (those sealed under the master key itself
    /// included) whose row number is above `after`, by row number: a re-encryption pages with it.
    fn secrets_not_under(&mut self, key_id: i64, after: i64, limit: i64) -> Result<Vec<SecretRow>>;

    /// Up to `limit` secrets sealed under the master key itself, row number above `after`, by row number.
    fn legacy_secrets(&mut self, after: i64, limit: i64) -> Result<Vec<SecretRow>>;

    /// Replaces a secret's data key, nonce and ciphertext where it is stored; when its value was set
    /// stays as it was (the value did not change).
    fn reseal_secret(&mut self, placed: &PlacedSecret, now: &str) -> Result<()>;

    /// Retires every data key but `keep` that no secret uses: its wrappings are deleted, its row keeps
    /// the date. Returns their ids.
    fn retire_unused_data_keys(&mut self, keep: i64, now: &str) -> Result<Vec<i64>>;

    /// Whether a data key not retired is wrapped under `master_id` and under no other master key.
    fn master_wraps_a_key_alone(&mut self, master_id: &str) -> Result<bool>;

    /// Deletes a master key's wrappings and dates its retirement (a retired one keeps its date).
    fn retire_master_rows(&mut self, master_id: &str, now: &str) -> Result<()>;

    /// Every master key that ever wrapped a data key, in the order they were added.
    fn vault_masters(&mut self) -> Result<Vec<MasterRow>>;

    /// The nodes that use `master_id` and were seen at or after `live_since`, by id.
    fn live_nodes_using(&mut self, master_id: &str, live_since: &str) -> Result<Vec<VaultNode>>;

    /// Records that a node is alive and the master key it uses (a known node keeps its start), and
    /// forgets every node not seen since `forget_before`.
    fn see_vault_node(&mut self, node: &VaultNode, forget_before: &str) -> Result<()>;

    fn remove_vault_node(&mut self, id: &str) -> Result<()>;

    // Project versions.

    /// Records a version of the project (its files, as the caller encoded them) under its content
    /// hash and returns its sequence number: a new one, greater than every one before, or the one
    /// already recorded for that hash (the same files loaded again are the same version).
    fn add_project_version(&mut self, hash: &str, files: &str, now: &str) -> Result<i64>;

    // The meta table.

    fn meta(&mut self, key: &str) -> Result<Option<String>>;

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()>;

    fn delete_meta(&mut self, key: &str) -> Result<()>;

    // Copies (see `copy`).

    /// Inserts rows that [`Backend::export_rows`] read from another database, as they are (ids
    /// included), in the order given: a table ordered by insertion reads them back in that order.
    /// Afterwards a new row of a table whose ids the database generates (receipts, data keys, project
    /// versions) gets an id greater than every one imported.
    fn import_rows(&mut self, table: &Table, rows: &[Row]) -> Result<()>;

    /// Retires master key `master_id` (deletes its wrappings) unless a process seen since `live_since`
    /// uses it, it is the newest master key, or a data key not retired is wrapped under it alone. The
    /// rule lives here, once, over the operations above; a backend does not reimplement it.
    fn retire_master(&mut self, master_id: &str, live_since: &str, now: &str) -> Result<MasterRetirement> {
        if self.newest_master()?.as_deref() == Some(master_id) {
            return Ok(MasterRetirement::Needed);
        }
        let users = self.live_nodes_using(master_id, live_since)?;
        if !users.is_empty() {
            return Ok(MasterRetirement::InUse(users));
        }
        if self.master_wraps_a_key_alone(master_id)? {
            return Ok(MasterRetirement::Needed);
        }
        self.retire_master_rows(master_id, now)?;
        Ok(MasterRetirement::Retired)
    }
}

/// A change announced to every node on a shared database (see [`Backend::notices`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A phone's consent changed (an opt-out or an opt-in): sends to it stop, or may go on.
    Consent(ConsentRow),
    /// Another process wrote a run that waits until `at` (RFC 3339 text, as every timestamp): a
    /// retry, a rate limit, a scheduled path, a Wait, or a run handed over to whichever node takes it
    /// first. Claim the due runs then ([`WriteTx::claim_due_runs`]), in case the node that wrote it
    /// cannot (busy, or stopped by then). A store does not hear it for its own writes: a node wakes
    /// the runs it parks itself.
    WorkDue { at: String },
    /// Notices may have been lost (the connection that hears them was opened again): read what a
    /// node keeps in memory again, as after a lag.
    Resync,
}

/// One caller's write, as a backend receives it: the closure to run, with its result type erased, and
/// the way back to its caller.
pub struct Write(Box<dyn Job>);

/// A write that has run, waiting for its transaction's outcome to answer its caller.
pub struct Ran {
    succeeded: bool,
    answer: Box<dyn Answer>,
}

impl Write {
    /// Runs the closure in `tx`. A closure that panics counts as failed (its caller hears
    /// [`StoreError::Stopped`]), so the backend's thread goes on.
    pub fn run(self, tx: &mut dyn WriteTx) -> Ran {
        self.0.run(tx)
    }

    /// Answers the caller with `error` without running its closure.
    pub fn refuse(self, error: StoreError) {
        self.0.refuse(error)
    }

    pub(crate) fn new<R, E, F>(
        work: F,
        caller: tokio::sync::oneshot::Sender<std::result::Result<R, E>>,
    ) -> Write
    where
        F: FnOnce(&mut dyn WriteTx) -> std::result::Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        Write(Box::new(Typed { work, caller }))
    }
}

impl Ran {
    /// Whether the closure succeeded; when it did not, the backend undoes its statements.
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// The transaction it ran in committed durably: the caller hears its closure's outcome.
    pub fn committed(self) {
        self.answer.send(None)
    }

    /// The transaction it ran in did not commit: the caller hears `error`, or its closure's own error
    /// when the closure failed.
    pub fn failed(self, error: StoreError) {
        self.answer.send(Some(error))
    }
}

trait Job: Send {
    fn run(self: Box<Self>, tx: &mut dyn WriteTx) -> Ran;
    fn refuse(self: Box<Self>, error: StoreError);
}

trait Answer: Send {
    fn send(self: Box<Self>, failure: Option<StoreError>);
}

struct Typed<F, R, E> {
    work: F,
    caller: tokio::sync::oneshot::Sender<std::result::Result<R, E>>,
}

/// A closure's outcome, kept until the commit is known.
struct Outcome<R, E> {
    outcome: std::result::Result<R, E>,
    caller: tokio::sync::oneshot::Sender<std::result::Result<R, E>>,
}

impl<F, R, E> Job for Typed<F, R, E>
where
    F: FnOnce(&mut dyn WriteTx) -> std::result::Result<R, E> + Send + 'static,
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut dyn WriteTx) -> Ran {
        let Typed { work, caller } = *self;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(tx))).unwrap_or_else(|_| {
            Err(E::from(StoreError::Stopped("a database write panicked; it was rolled back".into())))
        });
        Ran { succeeded: outcome.is_ok(), answer: Box::new(Outcome { outcome, caller }) }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.caller.send(Err(E::from(error)));
    }
}

impl<R, E> Answer for Outcome<R, E>
where
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn send(self: Box<Self>, failure: Option<StoreError>) {
        let Outcome { outcome, caller } = *self;
        let outcome = match (outcome, failure) {
            (Ok(value), None) => Ok(value),
            (Err(error), _) => Err(error),
            (Ok(_), Some(failure)) => Err(E::from(failure)),
        };
        let _ = caller.send(outcome);
    }
}
