//! Runtime state: records, runs (with their journaled interpreter state), the message ledger,
//! encrypted secrets and the vault's keys, users and tokens.
//!
//! The engine and the server use [`Store`], a cheap handle over a [`Backend`]: the database behind
//! it. Every write that must be atomic with another (a record and the runs it triggers, a run's
//! journal and the ledger rows it gathered) is one closure over a [`WriteTx`], run by
//! [`Store::write`]; the backend decides where it runs and which writes share a commit.
//!
//! SQLite (`sqlite/`, WAL mode, one writer thread with group commit) is the embedded default. A new
//! backend is a folder `src/<backend>/` implementing [`Backend`] and [`WriteTx`] (the contracts are
//! written on each method), which passes the conformance suite (`conformance.rs`: call
//! `conformance_tests!` from the backend's tests, as `sqlite/tests.rs` does); [`Store::open`] is the
//! one place that picks a backend from where the database lives. Nothing outside a backend's folder
//! names its driver.

mod activity;
mod backend;
#[macro_use]
mod columns;
#[cfg(any(test, feature = "conformance"))]
#[doc(hidden)]
pub mod conformance;
pub mod copy;
mod fields;
mod ledger;
pub mod postgres;
mod sqlite;
mod vault;

pub use activity::{Bucket, Created, CreatedCount, LeadMessage};
pub use backend::{Backend, BoxFuture, Notice, Ran, RecordFilter, Write, WriteTx};
pub use copy::{CopyReport, SchemaVersion};
pub use ledger::{ConsentRow, MessageChange, MessageFilter, MessageRow, NewMessage, NewReceipt, ReceiptRow};
pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;
pub use vault::{
    ACTIVE_KEY_META, DataKeyRow, KeyWrap, MasterRetirement, MasterRow, SecretRow, VaultNode, VaultSummary,
};

use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

/// A backend's own error (its driver's), carried without naming the driver.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: BackendError },
    #[error("cannot prepare the database schema: {0}")]
    Migrate(BackendError),
    #[error("database error: {0}")]
    Database(BackendError),
    #[error("stored JSON is corrupt in {what}: {source}")]
    Corrupt { what: String, source: serde_json::Error },
    /// The transaction this write shared did not commit; nothing of it was kept.
    #[error("the database did not commit the write: {0}")]
    Commit(String),
    /// Another process held the database's write lock for longer than the busy timeout; nothing was
    /// written, and the same write may be tried again.
    #[error("the database is locked by another process: {0}")]
    Busy(String),
    /// A secret was sealed under a data key that a key rotation retired meanwhile: seal it again.
    #[error("data key {0} was retired while the secret was being stored; seal it again under the active key")]
    RetiredKey(i64),
    /// The store is closed, the process is stopping, or a write panicked (and was rolled back).
    #[error("{0}")]
    Stopped(String),
    #[error("{0} was not found")]
    Missing(String),
    /// A copy's target already holds herald's data; nothing was written to it.
    #[error(
        "the target database is not empty (it has rows in {}): copy into a new, empty database",
        tables.join(", ")
    )]
    TargetNotEmpty { tables: Vec<String> },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a commit survives once `Store::write` has returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash or kill of the process (SQLite: WAL with `synchronous = NORMAL`). A power loss or an
    /// operating-system crash may take back the last commits, whole (a record with its runs), never
    /// half. The default.
    #[default]
    ProcessCrash,
    /// A power loss too: each group commit waits until it is on disk (SQLite: `synchronous =
    /// FULL`); measured in docs/benchmarks.md ("Durability").
    PowerLoss,
}

/// How a database is opened: what a commit survives, and how many connections a server may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    pub durability: Durability,
    /// The most connections this process keeps to a PostgreSQL server: one writer, one listener and
    /// the readers (at least one). A read waits for a free reader rather than opening more. SQLite
    /// files ignore it.
    pub connections: usize,
}

impl OpenOptions {
    /// What `connections` is when nothing says otherwise.
    pub const DEFAULT_CONNECTIONS: usize = 10;
    /// The writer and the listener, which every PostgreSQL node keeps besides its readers.
    pub const FIXED_CONNECTIONS: usize = 2;

    /// The readers `connections` leaves (at least one).
    pub fn readers(&self) -> usize {
        self.connections.saturating_sub(OpenOptions::FIXED_CONNECTIONS).max(1)
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { durability: Durability::default(), connections: OpenOptions::DEFAULT_CONNECTIONS }
    }
}

/// The database, whichever backend keeps it; clones share it.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
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

/// A record and its position in its object's creation order: what a page of records newest first
/// hands back so the next page can start after its last record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordAt {
    pub position: i64,
    pub record: StoredRecord,
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
    /// A scheduled path that came due for a record that no longer met the flow's entry condition:
    /// it ended without running an element (the reason is its `fault`).
    Skipped,
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
            RunStatus::Skipped => "skipped",
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
            "skipped" => RunStatus::Skipped,
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
                        "unknown run status `{name}`; use ready, running, waiting, finished, failed, unknown or skipped"
                    )
                })
            })
            .collect()
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Unknown | RunStatus::Skipped)
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
    /// The project version the run started on and stays on (`None`: recorded before versions were).
    pub version: Option<i64>,
    /// The node that runs it while it is `ready` or `running` (see [`WriteTx::claim_run`]); after
    /// that, the last one that did.
    pub owner: Option<String>,
}

/// Which runs a listing wants, newest first (by `created_at` descending, then id), a page at a time.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    /// Only runs of these statuses; every status when empty.
    pub statuses: Vec<RunStatus>,
    /// Only runs of this flow.
    pub flow: Option<String>,
    /// Only the runs listed after this one, given by its `(created_at, id)`: the last run of the
    /// previous page. Keyset paging: a page costs the same however deep it is.
    pub after: Option<(String, String)>,
    pub limit: i64,
}

/// One recorded version of the project: its files as the engine encoded them.
#[derive(Clone, Debug)]
pub struct ProjectVersionRow {
    pub seq: i64,
    /// SHA-256 of the files, hex.
    pub hash: String,
    pub files: String,
    pub created_at: String,
}

/// A `ready` run as the sweep sees it.
#[derive(Clone, Debug)]
pub struct StaleRun {
    pub id: String,
    pub owner: Option<String>,
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

/// A console session, kept under the SHA-256 of its id (the cookie's value), which is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub user_id: String,
    /// The token every state-changing console request must carry in its form.
    pub csrf_token: String,
    pub created_at: String,
    pub expires_at: String,
}

/// A user as listed for an administrator: active or deactivated, with whether a console password is
/// set (never its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    /// In name order.
    pub permission_sets: Vec<String>,
    pub active: bool,
    pub created_at: String,
    pub has_password: bool,
}

/// An API token as listed: its id (not secret) and dates, never its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub created_at: String,
    pub revoked: bool,
    /// When it was revoked (kept since tokens could be revoked; `None` for a token never revoked).
    pub revoked_at: Option<String>,
}

/// Where a secret value is stored and when it was last set; never the value, its length or its
/// ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSetting {
    pub external_credential: String,
    pub principal: String,
    /// Empty for a named principal; the user's id for a per-user one.
    pub user_id: String,
    pub parameter: String,
    /// When the value was last set (a key rotation reseals it without changing this).
    pub set_at: String,
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

/// A run to enqueue.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub flow: &'a str,
    pub object: &'a str,
    pub record_id: &'a str,
    pub state: &'a serde_json::Value,
    /// The project version it starts on.
    pub version: Option<i64>,
    /// The node that will run it (`None`: whichever node claims it, as for a run that waits).
    pub owner: Option<&'a str>,
}

impl Store {
    /// Opens the database at `location`, creating it if needed, and brings its schema up to date:
    /// a PostgreSQL database when `location` is a `postgres://` or `postgresql://` URL, else a SQLite
    /// file. This is the one place a backend is chosen, so callers never name one.
    pub async fn open(location: &Path) -> Result<Store> {
        Store::open_with(location, OpenOptions::default()).await
    }

    /// [`Store::open`], with commits as durable as `options` asks and at most its connections.
    pub async fn open_with(location: &Path, options: OpenOptions) -> Result<Store> {
        let path = location.to_path_buf();
        let opened =
            tokio::task::spawn_blocking(move || match path.to_str().filter(|text| postgres::is_url(text)) {
                Some(url) => PostgresBackend::open(url, options).map(Store::with_backend),
                None => SqliteBackend::open(&path, options.durability).map(Store::with_backend),
            });
        opened
            .await
            .map_err(|error| StoreError::Stopped(format!("opening the database did not finish: {error}")))?
    }

    /// Copies the database at `location` as it is committed now (also while a server writes to it)
    /// into the new SQLite file `copy`, which must not exist yet; a SQLite `location` that does not
    /// exist gives nothing to copy, and `copy` is left absent. Debug's rollback mode runs on such a
    /// copy and deletes it after, so that nothing it writes reaches the database.
    ///
    /// A SQLite file is copied as one snapshot (`VACUUM INTO`); a PostgreSQL database is copied row
    /// by row with [`Store::copy_into`], a table at a time (not one snapshot: a write committed
    /// meanwhile may be in it or not).
    pub async fn copy_database(location: &Path, copy: &Path) -> Result<()> {
        if location.to_str().is_some_and(postgres::is_url) {
            let source = Store::open(location).await?;
            let target = Store::open(copy).await?;
            let copied = source.copy_into(&target).await;
            source.close().await;
            target.close().await;
            return copied.map(|_| ());
        }
        let (from, to) = (location.to_path_buf(), copy.to_path_buf());
        tokio::task::spawn_blocking(move || SqliteBackend::copy(&from, &to))
            .await
            .map_err(|error| StoreError::Stopped(format!("copying the database did not finish: {error}")))?
    }

    /// Where the schema of the database at `location` stands against the migrations this herald
    /// knows, without changing it: a SQLite file that does not exist is not made (nothing is
    /// applied yet), a database is only read.
    pub async fn pending_migrations(location: &Path) -> Result<SchemaVersion> {
        let path = location.to_path_buf();
        tokio::task::spawn_blocking(move || match path.to_str().filter(|text| postgres::is_url(text)) {
            Some(url) => PostgresBackend::schema_version(url),
            None => SqliteBackend::schema_version(&path),
        })
        .await
        .map_err(|error| StoreError::Stopped(format!("reading the schema did not finish: {error}")))?
    }

    /// A store over a backend already open.
    pub fn with_backend(backend: impl Backend) -> Store {
        Store { backend: Arc::new(backend) }
    }

    /// Runs `work` as one atomic write: all of it commits or none of it. The backend may commit it
    /// together with other writes queued beside it; this returns once the commit is durable. A `work`
    /// that fails (or panics: [`StoreError::Stopped`]) leaves nothing and spares the writes it shared
    /// a commit with.
    pub async fn write<R, E, F>(&self, work: F) -> std::result::Result<R, E>
    where
        F: FnOnce(&mut dyn WriteTx) -> std::result::Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (caller, answer) = tokio::sync::oneshot::channel();
        self.backend.submit(Write::new(work, caller));
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Stopped("the database writer stopped".into()))))
    }

    /// Commits the writes already queued and closes the database; later writes are refused.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    pub async fn record(&self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        self.backend.record(object, id).await
    }

    /// Up to `limit` records of `object`, in creation order.
    pub async fn records_of(&self, object: &str, limit: i64) -> Result<Vec<StoredRecord>> {
        self.backend.records_of(object, limit).await
    }

    /// Up to `limit` records of `object`, newest first, each with its position; with `before`, those
    /// created before the record at that position (the next page after it).
    pub async fn records_newest_first(
        &self,
        object: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RecordAt>> {
        self.backend.records_newest_first(object, before, limit).await
    }

    /// The records of `object` that `select` keeps (it may also trim them), in creation order, read
    /// off the async threads; with `first_only`, reading stops at the first one kept. With `fields`,
    /// only those fields of each record are read (the others are skipped, not parsed into values).
    pub async fn select_records<F>(
        &self,
        object: &str,
        fields: Option<Vec<String>>,
        first_only: bool,
        select: F,
    ) -> Result<Vec<Map<String, Value>>>
    where
        F: FnMut(Map<String, Value>) -> Option<Map<String, Value>> + Send + 'static,
    {
        self.backend.select_records(object, fields, first_only, Box::new(select)).await
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        self.backend.run(id).await
    }

    pub async fn runs_for_record(&self, record_id: &str) -> Result<Vec<RunRow>> {
        self.backend.runs_for_record(record_id).await
    }

    /// Up to `limit` runs of the given statuses, oldest first.
    pub async fn runs_with_status(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        self.backend.runs_with_status(statuses, limit).await
    }

    /// The newest runs first, of the given statuses (all when empty).
    pub async fn recent_runs(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>> {
        self.runs_page(&RunQuery { statuses: statuses.to_vec(), limit, ..RunQuery::default() }).await
    }

    /// One page of runs, newest first; the next page starts after the last run of this one
    /// ([`RunQuery::after`]).
    pub async fn runs_page(&self, query: &RunQuery) -> Result<Vec<RunRow>> {
        self.backend.runs_page(query).await
    }

    /// `ready` runs whose row nobody touched since `before`, oldest first: what the engine's sweep
    /// checks against the runs it holds.
    pub async fn ready_runs_untouched_since(&self, before: &str, limit: i64) -> Result<Vec<StaleRun>> {
        self.backend.ready_runs_untouched_since(before, limit).await
    }

    /// Takes a ready run, or a waiting one that is due, for a worker; `None` if another worker (of
    /// this process or another) took it first, or it is not ready. See [`WriteTx::claim_run`].
    pub async fn claim_run(&self, id: &str, owner: &str, now: &str) -> Result<Option<RunRow>> {
        let (id, owner, now) = (id.to_string(), owner.to_string(), now.to_string());
        self.write(move |tx| tx.claim_run(&id, &owner, &now)).await
    }

    /// See [`WriteTx::adopt_orphaned_runs`].
    pub async fn adopt_orphaned_runs(
        &self,
        owner: &str,
        live_since: &str,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let (owner, live_since) = (owner.to_string(), live_since.to_string());
        self.write(move |tx| tx.adopt_orphaned_runs(&owner, &live_since, limit)).await
    }

    /// See [`WriteTx::claim_due_runs`].
    pub async fn claim_due_runs(&self, owner: &str, now: &str, limit: i64) -> Result<Vec<RunRow>> {
        let (owner, now) = (owner.to_string(), now.to_string());
        self.write(move |tx| tx.claim_due_runs(&owner, &now, limit)).await
    }

    /// Whether several herald servers may share this database at once (see [`Backend::shared`]).
    pub fn shared(&self) -> bool {
        self.backend.shared()
    }

    /// What other nodes changed, as it commits (see [`Backend::notices`]).
    pub fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        self.backend.notices()
    }

    /// The database's kind (see [`Backend::kind`]).
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Round trips to the database server so far (see [`Backend::round_trips`]).
    pub fn round_trips(&self) -> Option<u64> {
        self.backend.round_trips()
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
    /// A value sealed under a data key that was retired meanwhile is refused ([`StoreError::RetiredKey`]),
    /// in the same transaction that would store it.
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
                match tx.data_key_retired(key_id)? {
                    Some(false) => {}
                    Some(true) => return Err(StoreError::RetiredKey(key_id)),
                    None => return Err(StoreError::Missing(format!("data key {key_id}"))),
                }
            }
            tx.upsert_secret(external_credential, principal, user_id, &secret, now)
        })
        .await
    }

    pub async fn secrets(
        &self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
    ) -> Result<Vec<SealedSecret>> {
        self.backend.secrets(external_credential, principal, user_id).await
    }

    /// Every stored secret with its place: what a rotation checks and `herald vault status` tries.
    pub async fn all_secrets(&self) -> Result<Vec<PlacedSecret>> {
        self.backend.all_secrets().await
    }

    /// Where each secret value is stored and when it was last set, ordered by place and parameter.
    pub async fn secret_settings(&self) -> Result<Vec<SecretSetting>> {
        self.backend.secret_settings().await
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
        self.write(move |tx| tx.create_user(&id, &name, &permission_sets, &now)).await
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        self.backend.user_by_name(name).await
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        self.backend.user(id).await
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.backend.users().await
    }

    /// Deactivates a user: its tokens stop working at once. Returns whether an active user was found.
    pub async fn deactivate_user(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |tx| tx.deactivate_user(&name)).await
    }

    pub async fn create_token(&self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()> {
        let [id, user_id, hash, now] = [id, user_id, hash, now].map(String::from);
        self.write(move |tx| tx.create_token(&id, &user_id, &hash, &now)).await
    }

    /// Revokes a token by id: it stops authenticating from the next request on. Returns whether a
    /// token not yet revoked had that id.
    pub async fn revoke_token(&self, id: &str, now: &str) -> Result<bool> {
        let [id, now] = [id, now].map(String::from);
        self.write(move |tx| tx.revoke_token(&id, &now)).await
    }

    /// Every user, active or deactivated, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>> {
        self.backend.accounts().await
    }

    /// Every API token, revoked or not, by user and creation time.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>> {
        self.backend.tokens().await
    }

    /// The active user a token hash belongs to, if the token is not revoked.
    pub async fn user_by_token_hash(&self, hash: &str) -> Result<Option<UserRow>> {
        self.backend.user_by_token_hash(hash).await
    }

    /// Sets (or replaces) a user's console password hash (a PHC string; never the password).
    pub async fn set_password_hash(&self, user_id: &str, hash: &str, now: &str) -> Result<()> {
        let [user_id, hash, now] = [user_id, hash, now].map(String::from);
        self.write(move |tx| tx.set_password_hash(&user_id, &hash, &now)).await
    }

    /// The console password hash of a user, `None` when no password was set.
    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        self.backend.password_hash(user_id).await
    }

    /// Keeps a console session under the hash of its id; sessions expired by `session.created_at`
    /// are deleted in the same write.
    pub async fn create_session(&self, hash: &str, session: &SessionRow) -> Result<()> {
        let (hash, session) = (hash.to_string(), session.clone());
        self.write(move |tx| tx.create_session(&hash, &session)).await
    }

    /// The console session kept under `hash`, expired or not (the caller compares `expires_at`).
    pub async fn session(&self, hash: &str) -> Result<Option<SessionRow>> {
        self.backend.session(hash).await
    }

    /// Deletes a console session; returns whether there was one.
    pub async fn delete_session(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_string();
        self.write(move |tx| tx.delete_session(&hash)).await
    }

    pub async fn project_version(&self, seq: i64) -> Result<Option<ProjectVersionRow>> {
        self.backend.project_version(seq).await
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.backend.meta(key).await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |tx| tx.set_meta(&key, &value)).await
    }
}
