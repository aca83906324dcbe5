//! The engine: record changes -> triggered runs -> effects.
//!
//! A record and the runs it triggers are written in one transaction (`records`, with `admission`
//! before it); the run queue (`queue`) hands each run to the driver (`driver`), which takes it through
//! the sans-IO interpreter, performs its callouts (`callout`, stage by stage) and record writes, and
//! journals its state after every effect; `recovery` picks up what a stopped process left. `access`
//! holds users, tokens and scopes; `credentials` and `vault` the secrets; `ledger` and `webhooks` the
//! messages and what providers say of them.

mod access;
mod activity;
mod admission;
mod callout;
mod credentials;
mod debug;
mod driver;
mod health;
mod ids;
mod ledger;
pub mod limits;
mod nodes;
pub mod oauth;
mod queue;
pub mod records;
mod recovery;
mod runs;
mod scheduled;
mod sessions;
pub mod vault;
mod versions;
mod webhooks;

pub use access::{AUTOMATION_USER_ID, IssuedToken, TOKEN_PREFIX, run_user, same_secret};
pub use activity::{Activity, SPEED_SAMPLE_LIMIT, Slot, Speed, totals};
pub use callout::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, mask_secrets};
pub use debug::{DebugRecord, DebugStart, RollbackSource, debug_with_rollback};
pub use driver::{DebugOutcome, Interview, RunEvent};
pub use health::{Health, NodeHealth};
pub use nodes::DUE_POLL_EVERY;
pub use queue::{SWEEP_AFTER, SWEEP_EVERY, SweepCounts};
pub use records::FieldProblem;
pub use records::RecordWrite;
pub use runs::{PlannedSend, RetryOutcome, RetryPlan};
pub use scheduled::WakeOutcome;
pub use sessions::{NewSession, SESSION_HOURS, SignedIn};
pub use vault::{
    KeySource, MASTER_KEY_ENV, MasterInUse, NEW_MASTER_KEY_ENV, Rotation, RotationProgress, SecretPlace,
    UnreadableSecret, Vault, VaultError, VaultHealth, VaultMasterStatus, VaultNodeStatus, VaultStatus,
};
pub use versions::{LiveVersion, ProjectFiles, ReloadError, Reloaded, files_hash, load_folder};
pub use webhooks::{WebhookError, WebhookReport, WebhookRequest};

use admission::admission_places;
use chrono::{SecondsFormat, Utc};
use herald_flow::{CompiledProject, RunState, RunUser};
use herald_store::{Store, StoreError};
use limits::credential_limits;
use queue::RunQueue;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Semaphore, broadcast};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown object `{object}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownObject { object: String, hint: Option<String> },
    #[error("{}", .0.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<FieldProblem>),
    #[error("no {object} record with id {id}")]
    NotFound { object: String, id: String },
    #[error("no run with id {0}")]
    RunNotFound(String),
    #[error("no flow named `{name}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownFlow { name: String, hint: Option<String> },
    /// An autolaunched flow asked to run on a record, a record-triggered one without, or input values
    /// that do not fit the flow's input variables.
    #[error("{0}")]
    FlowStart(String),
    /// An Update or Delete Records element's change could not be written (nothing was).
    #[error("{0}")]
    RecordChange(String),
    #[error("external credential `{external_credential}` has no principal `{principal}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownPrincipal { external_credential: String, principal: String, hint: Option<String> },
    #[error(
        "principal `{principal}` of `{external_credential}` has no parameter `{parameter}`; its parameters are: {known}"
    )]
    UnknownParameter { external_credential: String, principal: String, parameter: String, known: String },
    /// No active user has this name; `hint` names the closest one ("did you mean `webform`?").
    #[error("no user named `{name}`; {}", hint.clone().unwrap_or_else(|| format!("create it with `herald user add {name} --permission-set ...`")))]
    UnknownUser { name: String, hint: Option<String> },
    #[error("a user named `{0}` already exists")]
    UserExists(String),
    /// No token not yet revoked has this id (`herald token list USER` lists them).
    #[error("no API token `{0}` that is not revoked; `herald token list USER` lists a user's tokens")]
    UnknownToken(String),
    /// Hashing a console password failed (never says anything about the password itself).
    #[error("cannot hash the password: {0}")]
    Password(String),
    #[error("no permission set named `{name}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownPermissionSet { name: String, hint: Option<String> },
    #[error("principal `{principal}` of `{external_credential}` is per-user: name the user with --user")]
    UserRequired { external_credential: String, principal: String },
    #[error(
        "principal `{principal}` of `{external_credential}` is a named principal shared by all users: drop --user"
    )]
    UserNotAllowed { external_credential: String, principal: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("run {id} is {status}, not waiting: only a waiting run can be woken")]
    NotWaiting { id: String, status: &'static str },
    #[error("run {id} cannot be retried: {reason}")]
    NotRetryable { id: String, reason: String },
    /// Admission control: the runs already waiting would make this record's runs wait too long.
    #[error(
        "herald is at capacity: {queued} runs are waiting to start or in progress, and this write waited {waited_seconds} s for room without being made; retry after {waited_seconds} s"
    )]
    Busy { queued: usize, waited_seconds: u64 },
}

/// How the engine is set up for one process.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub database: PathBuf,
    /// The master key file, used when `HERALD_MASTER_KEY` is not set.
    pub key_file: PathBuf,
    /// Send every callout for `https://HOST/PATH` to `SANDBOX/HOST/PATH` instead.
    pub sandbox: Option<String>,
    pub workers: usize,
    /// How often the sweep looks for `ready` runs that no job holds ([`SWEEP_EVERY`]).
    pub sweep_every: std::time::Duration,
    /// How often a node on a shared database polls for waiting runs that came due, besides hearing of
    /// them ([`DUE_POLL_EVERY`]).
    pub due_poll_every: std::time::Duration,
    /// The folder the project was read from, and its files as read: given, the engine records them as
    /// a project version, pins every run it starts to it, and can reload the folder
    /// ([`Engine::reload`]). `herald serve` gives them; one-off commands need not.
    pub project_folder: Option<(PathBuf, ProjectFiles)>,
}

impl EngineOptions {
    /// The defaults for a database path: the key file sits beside it.
    pub fn for_database(database: PathBuf) -> EngineOptions {
        let key_file = database.with_extension("key");
        EngineOptions {
            database,
            key_file,
            sandbox: None,
            workers: 4,
            sweep_every: SWEEP_EVERY,
            due_poll_every: DUE_POLL_EVERY,
            project_folder: None,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// The database's location as opened (a SQLite path or a PostgreSQL URL): Debug's rollback mode
    /// copies it.
    database: PathBuf,
    /// The project version new runs start on, and the older ones runs are still on.
    versions: versions::Versions,
    store: Store,
    vault: Vault,
    http: reqwest::Client,
    sandbox: Option<reqwest::Url>,
    queue: Arc<RunQueue>,
    limits: limits::RateLimits,
    consent: ledger::ConsentCache,
    /// Places for runs a record write starts, held from before its commit until the run's first
    /// request leaves (or it ends or waits before that): when all are taken, record writes wait for
    /// room (admission control), so that a lead accepted under overload still goes out in
    /// milliseconds rather than behind a backlog.
    admission: Arc<Semaphore>,
    /// Status receipts kept without a message; while none are, no answer needs to look for them.
    unmatched_receipts: std::sync::atomic::AtomicUsize,
    events: broadcast::Sender<RunEvent>,
    oauth: oauth::OAuthClient,
    coalescer: callout::coalesce::Coalescer,
    automation: RunUser,
    workers: usize,
    /// Places for the runs computing at once (`[runtime] workers`); a run gives its place up while its
    /// request is on the wire (see `driver::Holding`).
    computing: Arc<Semaphore>,
    sweep_every: std::time::Duration,
    due_poll_every: std::time::Duration,
}

/// A run's state as the journal keeps it: JSON text, written straight from the state.
pub(crate) fn journal(state: &RunState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "null".into())
}

pub fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Engine {
    /// Opens the database and the vault. Workers start with [`Engine::start`].
    pub async fn open(project: Arc<CompiledProject>, options: &EngineOptions) -> Result<Engine, EngineError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let durability = match project.project.config.database.synchronous {
            herald_project::Synchronous::Normal => herald_store::Durability::ProcessCrash,
            herald_project::Synchronous::Full => herald_store::Durability::PowerLoss,
        };
        let connections = project.project.config.database.connections;
        let store =
            Store::open_with(&options.database, herald_store::OpenOptions { durability, connections })
                .await?;
        let vault = Vault::open(&store, &options.key_file).await?;
        let queue = Arc::new(RunQueue::new(vault.node_id()));
        let http = reqwest::Client::builder()
            // A redirect could carry credentials to another host: redirects are answers, not hops.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Http(e.to_string()))?;
        let sandbox = match &options.sandbox {
            None => None,
            Some(url) => Some(
                reqwest::Url::parse(url.trim_end_matches('/'))
                    .map_err(|e| EngineError::Http(format!("--sandbox {url}: {e}")))?,
            ),
        };
        let (events, _) = broadcast::channel(4096);
        let automation =
            RunUser { id: AUTOMATION_USER_ID.into(), name: project.project.config.automation.user.clone() };
        let limits = credential_limits(&project, &store).await?;
        let consent = ledger::ConsentCache::load(&store.consents().await?);
        let unmatched = store.unmatched_status_receipts().await?;
        let (live, folder) = match &options.project_folder {
            None => (LiveVersion { seq: None, hash: String::new(), project }, None),
            Some((folder, files)) => {
                let hash = files_hash(files);
                let encoded = versions::encode(files);
                let key = hash.clone();
                let seq = store.write(move |tx| tx.add_project_version(&key, &encoded, &now_text())).await?;
                (LiveVersion { seq: Some(seq), hash, project }, Some(folder.clone()))
            }
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                database: options.database.clone(),
                versions: versions::Versions::new(live, folder),
                store,
                vault,
                oauth: oauth::OAuthClient::new(http.clone()),
                coalescer: callout::coalesce::Coalescer::default(),
                http,
                sandbox,
                queue,
                events,
                automation,
                limits,
                consent,
                unmatched_receipts: std::sync::atomic::AtomicUsize::new(unmatched),
                admission: Arc::new(Semaphore::new(admission_places(options.workers.max(1)))),
                workers: options.workers.max(1),
                computing: Arc::new(Semaphore::new(options.workers.max(1))),
                sweep_every: options.sweep_every,
                due_poll_every: options.due_poll_every,
            }),
        })
    }

    /// This process's id among the herald nodes on the database (see `vault_nodes`).
    pub fn node_id(&self) -> &str {
        self.inner.queue.owner()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Runs `operation` to its end even if the caller stops waiting for it. What follows a commit
    /// (queueing the runs it started, remembering an opt-out) must never be skipped because an HTTP
    /// client went away after the commit: the commit is kept either way.
    pub(crate) async fn to_completion<T: Send + 'static>(
        &self,
        operation: impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, EngineError> {
        match tokio::spawn(operation).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(EngineError::Store(StoreError::Stopped("herald is shutting down".into()))),
        }
    }
}
