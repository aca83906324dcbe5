//! The engine: record changes -> triggered runs -> effects.
//!
//! A record and the runs it triggers are written in one transaction; workers woken through an
//! in-process channel drive each run with the sans-IO interpreter, perform its callouts and record
//! writes, and journal its state after every effect.

mod callout;
mod coalesce;
mod ledger;
pub mod limits;
pub mod oauth;
pub mod records;
mod runs;
pub mod vault;
mod webhooks;

pub use callout::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, mask_secrets};
pub use records::FieldProblem;
pub use runs::RetryOutcome;
pub use vault::{KeySource, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV, SecretPlace, Vault, VaultError};
pub use webhooks::{WebhookError, WebhookReport, WebhookRequest};

use chrono::{SecondsFormat, Utc};
use herald_flow::{CompiledFlow, CompiledProject, Effect, RunState, RunUser, Step};
use herald_project::{ApiScope, PrincipalType, RunAs, did_you_mean};
use herald_store::{NewRun, RunRow, RunStatus, Store, StoreError, StoredRecord, UserRow};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use zeroize::Zeroizing;

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
    #[error("run {id} cannot be retried: {reason}")]
    NotRetryable { id: String, reason: String },
    /// Admission control: the runs already waiting would make this record's runs wait too long.
    #[error(
        "herald is at capacity: {queued} runs are waiting to start or in progress, and this write waited {waited_seconds} s for room without being made; retry after {waited_seconds} s"
    )]
    Busy { queued: usize, waited_seconds: u64 },
}

/// Work for a worker: a stored run to claim, or a run parked in memory (a short rate-limit wait, a
/// concurrency slot) that goes on where it stopped.
enum Job {
    Run(String),
    /// A run this process just committed: nothing else knows of it yet, so it needs no claim (its
    /// first journal write marks it running). While the queue is short the run comes with its state;
    /// beyond [`STATES_IN_QUEUE`] only its id waits and the state is read back from the store, so a
    /// backlog costs little memory.
    Fresh(String, Option<OwnedSemaphorePermit>),
    FreshWith(Box<RunRow>, Option<OwnedSemaphorePermit>),
    Resume(Box<Parked>),
}

struct Parked {
    run: RunRow,
    flow: Arc<CompiledFlow>,
    state: RunState,
    permit: Option<OwnedSemaphorePermit>,
}

/// Where `drive` left a run.
enum DriveEnd {
    Ended(RunStatus, Option<String>),
    /// Durably parked: retry or a daily budget.
    Waiting {
        at: chrono::DateTime<Utc>,
        reason: String,
    },
    /// Parked in memory for a short wait.
    Parked {
        wait: ParkOn,
    },
}

enum ParkOn {
    Time(std::time::Duration),
    Slot(Arc<tokio::sync::Semaphore>),
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
}

impl EngineOptions {
    /// The defaults for a database path: the key file sits beside it.
    pub fn for_database(database: PathBuf) -> EngineOptions {
        let key_file = database.with_extension("key");
        EngineOptions { database, key_file, sandbox: None, workers: 4 }
    }
}

/// A validated record insert and the runs it starts, ready to write in a transaction.
struct PreparedInsert {
    object: String,
    id: String,
    data: Map<String, Value>,
    runs: Vec<(String, String, Value)>,
    now: String,
    truncated: Vec<String>,
}

impl PreparedInsert {
    fn write(&self, tx: &mut herald_store::WriteTx<'_>) -> Result<(), EngineError> {
        tx.insert_record(&self.object, &self.id, &self.data, &self.now)?;
        for (run_id, flow, state) in &self.runs {
            let run = NewRun { id: run_id, flow, object: &self.object, record_id: &self.id, state };
            tx.insert_run(run, &self.now)?;
        }
        Ok(())
    }
}

/// A run ended; sent to subscribers so that nobody has to poll.
#[derive(Clone, Debug, Serialize)]
pub struct RunEvent {
    pub run_id: String,
    pub flow: String,
    pub record_id: String,
    pub status: RunStatus,
}

/// What a debug run did.
#[derive(Debug)]
pub enum DebugOutcome {
    /// The record does not meet the entry condition: the flow would not start.
    NotTriggered {
        record: Map<String, Value>,
    },
    EntryError {
        message: String,
    },
    Ran {
        state: Box<RunState>,
        status: RunStatus,
        fault: Option<String>,
    },
}

/// The answer to a record write: the new id and the runs it enqueued.
#[derive(Clone, Debug, Serialize)]
pub struct RecordWrite {
    pub id: String,
    pub runs: Vec<String>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    project: Arc<CompiledProject>,
    store: Store,
    vault: Vault,
    http: reqwest::Client,
    sandbox: Option<reqwest::Url>,
    queue: mpsc::UnboundedSender<Job>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    limits: limits::RateLimits,
    consent: ledger::ConsentCache,
    /// Places for runs a record write starts, held from before its commit until the run ends or
    /// waits: when all are taken, record writes wait for room (admission control), so that a lead
    /// accepted under overload still goes out in milliseconds rather than behind a backlog.
    admission: Arc<Semaphore>,
    /// Fresh runs queued with their state (see [`Job::FreshWith`]).
    states_queued: std::sync::atomic::AtomicUsize,
    /// Status receipts kept without a message; while none are, no answer needs to look for them.
    unmatched_receipts: std::sync::atomic::AtomicUsize,
    events: broadcast::Sender<RunEvent>,
    oauth: oauth::OAuthClient,
    coalescer: coalesce::Coalescer,
    automation: RunUser,
    workers: usize,
}

/// Runs a record write may start, per worker, before the next write waits for one to end.
const ADMITTED_PER_WORKER: usize = 8;
fn admission_places(workers: usize) -> usize {
    workers * ADMITTED_PER_WORKER
}

/// How long a record write waits for room before it is refused as busy (HTTP 503).
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How many fresh runs may wait in the queue with their state; more wait as ids.
const STATES_IN_QUEUE: usize = 1024;

/// The id of the automation user (Salesforce's "Automated Process"), whose permission sets are
/// `[automation] permission_sets` in herald.toml.
pub const AUTOMATION_USER_ID: &str = "005000000000000AAA";

/// Prefix of API tokens, so a leaked one is recognisable in a scanner.
pub const TOKEN_PREFIX: &str = "hrld_";

/// A run's state as the journal keeps it: JSON text, written straight from the state.
pub(crate) fn journal(state: &RunState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "null".into())
}

pub fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_text(length: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..length).map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char).collect()
}

/// Characters of [`ordered_text`] that encode the time.
const TIME_CHARS: usize = 9;

/// `length` characters that sort in creation order: the microseconds since 1970 in base 62 (nine
/// characters last until the year 2398), then random characters. New rows then go to the end of
/// their table's B-tree, so a commit of many leads rewrites a few pages rather than one per lead.
pub(crate) fn ordered_text(length: usize) -> String {
    let mut rest = Utc::now().timestamp_micros().max(0) as u64;
    let mut time = [b'0'; TIME_CHARS];
    for slot in time.iter_mut().rev() {
        *slot = ID_ALPHABET[(rest % 62) as usize];
        rest /= 62;
    }
    let mut text: String = time.iter().map(|&b| b as char).collect();
    text.push_str(&random_text(length.saturating_sub(TIME_CHARS)));
    text.truncate(length);
    text
}

/// An 18-character id that starts with the object's key prefix, as Salesforce ids do, and, like
/// theirs, grows as records are created.
fn record_id(prefix: &str) -> String {
    format!("{prefix}{}", ordered_text(18usize.saturating_sub(prefix.len())))
}

fn interview_guid() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

impl Engine {
    /// Opens the database and the vault. Workers start with [`Engine::start`].
    pub async fn open(project: Arc<CompiledProject>, options: &EngineOptions) -> Result<Engine, EngineError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = Store::open(&options.database).await?;
        let vault = Vault::open(&store, &options.key_file).await?;
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
        let (queue, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(4096);
        let automation =
            RunUser { id: AUTOMATION_USER_ID.into(), name: project.project.config.automation.user.clone() };
        let limits = credential_limits(&project, &store).await?;
        let consent = ledger::ConsentCache::load(&store.consents().await?);
        let unmatched = store.unmatched_status_receipts().await?;
        Ok(Engine {
            inner: Arc::new(Inner {
                project,
                store,
                vault,
                oauth: oauth::OAuthClient::new(http.clone()),
                coalescer: coalesce::Coalescer::default(),
                http,
                sandbox,
                queue,
                receiver: Mutex::new(Some(receiver)),
                events,
                automation,
                limits,
                consent,
                states_queued: std::sync::atomic::AtomicUsize::new(0),
                unmatched_receipts: std::sync::atomic::AtomicUsize::new(unmatched),
                admission: Arc::new(Semaphore::new(admission_places(options.workers.max(1)))),
                workers: options.workers.max(1),
            }),
        })
    }

    pub fn project(&self) -> &CompiledProject {
        &self.inner.project
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Starts the workers and re-enqueues the runs a previous process left unfinished.
    pub async fn start(&self) -> Result<(), EngineError> {
        let Some(receiver) = self.inner.receiver.lock().await.take() else { return Ok(()) };
        self.warm_up().await;
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..self.inner.workers {
            let engine = self.clone();
            let receiver = receiver.clone();
            tokio::spawn(async move {
                loop {
                    let next = receiver.lock().await.recv().await;
                    let Some(job) = next else { break };
                    let (run_id, result) = match job {
                        Job::Run(run_id) => {
                            let result = engine.execute(&run_id).await;
                            (run_id, result)
                        }
                        // The admission place is given back when the run ends or waits.
                        Job::FreshWith(run, _admitted) => {
                            engine.inner.states_queued.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                            let run_id = run.id.clone();
                            (run_id, engine.start_fresh(*run).await)
                        }
                        Job::Fresh(run_id, _admitted) => {
                            let result = match engine.inner.store.run(&run_id).await {
                                Ok(Some(run)) => engine.start_fresh(run).await,
                                Ok(None) => Ok(()),
                                Err(error) => Err(error.into()),
                            };
                            (run_id, result)
                        }
                        Job::Resume(parked) => {
                            let run_id = parked.run.id.clone();
                            (run_id, engine.continue_run(*parked).await)
                        }
                    };
                    if let Err(error) = result {
                        tracing::error!(run = %run_id, %error, "run could not be executed");
                    }
                }
            });
        }
        self.recover().await
    }

    /// Does now the one-time work the first lead's callout would otherwise wait for: loading the
    /// phone metadata that destinations are normalised with (about 100 ms of CPU, see
    /// `herald_sms::warm_up`). The HTTP client and its TLS roots are ready since [`Engine::open`].
    async fn warm_up(&self) {
        let country = self.inner.project.project.config.runtime.default_country.clone();
        let _ = tokio::task::spawn_blocking(move || herald_sms::warm_up(country.as_deref())).await;
    }

    async fn recover(&self) -> Result<(), EngineError> {
        let runs =
            self.inner.store.runs_with_status(&[RunStatus::Ready, RunStatus::Running], i64::MAX).await?;
        for run in runs {
            if run.status == RunStatus::Running {
                let resumable = self.resume_interrupted(&run).await?;
                if !resumable {
                    continue;
                }
            }
            let _ = self.inner.queue.send(Job::Run(run.id));
        }
        for (run_id, at) in self.inner.store.waiting_runs().await? {
            let at = chrono::DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            self.wake_at(run_id, at);
        }
        Ok(())
    }

    /// Puts a waiting run back in the queue at `at`. A sleeping task per waiting run: no polling.
    fn wake_at(&self, run_id: String, at: chrono::DateTime<Utc>) {
        let queue = self.inner.queue.clone();
        // A millisecond late rather than early: the claim refuses a run that is not due yet.
        let wait = (at - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(1);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = queue.send(Job::Run(run_id));
        });
    }

    /// A run that was running when the process stopped: resume it, unless a callout may have reached a
    /// provider that cannot recognise a resend. Returns whether it was put back in the queue.
    async fn resume_interrupted(&self, run: &RunRow) -> Result<bool, EngineError> {
        let Some(flow) = self.inner.project.flows.get(&run.flow) else {
            self.finish(
                run,
                RunStatus::Failed,
                run.state.to_string(),
                Some(&format!("flow {} no longer exists", run.flow)),
                &mut Vec::new(),
            )
            .await?;
            return Ok(false);
        };
        let state: Option<RunState> = RunState::deserialize(&run.state).ok();
        let in_flight = state.as_ref().and_then(|s| s.pending.as_ref()).is_some_and(|p| p.sent);
        if in_flight {
            let credential = state.as_ref().and_then(|s| flow.pending_credential(s));
            // A `destinations[]` batch carries no per-message key (its inputs show the field).
            let keyless = state
                .as_ref()
                .and_then(|s| s.pending.as_ref())
                .is_some_and(|p| p.inputs.get("destinations").is_some());
            if !credential.is_some_and(|c| c.provider.deduplicates_resends()) || keyless {
                let element = state
                    .as_ref()
                    .and_then(|s| s.pending.as_ref())
                    .map(|p| p.element.clone())
                    .unwrap_or_default();
                let message = format!(
                    "the callout of element {element} was in flight when herald stopped; the provider may have received it and cannot recognise a resend, so it was not sent again. Check the provider's log, then retry the run if the message did not go out"
                );
                let mut ledger = Vec::new();
                if let Some(key) =
                    state.as_ref().and_then(|s| s.pending.as_ref()).map(|p| p.idempotency_key.clone())
                {
                    let event = ledger::MessageEvent::failed(
                        herald_providers::MessageStatus::Unknown,
                        "herald",
                        &message,
                    );
                    let provider = credential.map_or(herald_providers::Provider::Generic, |c| c.provider);
                    let events = vec![(ledger::EVERY_POSITION, event)];
                    ledger.push(ledger::LedgerUpdate::Answer { key, provider, events });
                }
                self.finish(run, RunStatus::Unknown, run.state.to_string(), Some(&message), &mut ledger)
                    .await?;
                return Ok(false);
            }
        }
        self.inner
            .store
            .save_run(&run.id, RunStatus::Ready, &run.state.to_string(), None, &now_text())
            .await?;
        Ok(true)
    }

    async fn finish(
        &self,
        run: &RunRow,
        status: RunStatus,
        state: String,
        fault: Option<&str>,
        ledger: &mut Vec<ledger::LedgerUpdate>,
    ) -> Result<(), EngineError> {
        let (run_id, fault) = (run.id.clone(), fault.map(String::from));
        self.write_with_ledger(std::mem::take(ledger), move |tx| {
            Ok(tx.save_run(&run_id, status, &state, fault.as_deref(), &now_text())?)
        })
        .await?;
        let _ = self.inner.events.send(RunEvent {
            run_id: run.id.clone(),
            flow: run.flow.clone(),
            record_id: run.record_id.clone(),
            status,
        });
        Ok(())
    }

    fn object(&self, object: &str) -> Result<&herald_project::ObjectDef, EngineError> {
        let objects = &self.inner.project.project.objects;
        objects.get(object).map(|o| &o.def).ok_or_else(|| EngineError::UnknownObject {
            object: object.to_string(),
            hint: did_you_mean(object, objects.keys().map(String::as_str)),
        })
    }

    pub async fn get_record(&self, object: &str, id: &str) -> Result<StoredRecord, EngineError> {
        self.object(object)?;
        self.inner
            .store
            .record(object, id)
            .await?
            .ok_or_else(|| EngineError::NotFound { object: object.to_string(), id: id.to_string() })
    }

    /// Inserts a record and, in the same transaction, the runs of every flow it triggers. Returns once
    /// committed; the runs execute afterwards.
    pub async fn create_record(
        &self,
        object: &str,
        input: &Map<String, Value>,
        actor: &RunUser,
    ) -> Result<RecordWrite, EngineError> {
        let insert = self.prepare_insert(object, input, actor, records::Truncation::Refuse)?;
        let admitted = self.admit(insert.runs.len()).await?;
        let insert = self
            .inner
            .store
            .write(move |tx| {
                insert.write(tx)?;
                Ok::<_, EngineError>(insert)
            })
            .await?;
        let runs = self.enqueue(&insert.object, &insert.id, &insert.now, insert.runs, admitted);
        Ok(RecordWrite { id: insert.id, runs })
    }

    /// Validates a new record and decides the runs it triggers, without writing anything.
    fn prepare_insert(
        &self,
        object: &str,
        input: &Map<String, Value>,
        actor: &RunUser,
        truncation: records::Truncation,
    ) -> Result<PreparedInsert, EngineError> {
        let def = self.object(object)?;
        let validated =
            records::validate(def, input, true, truncation).map_err(EngineError::InvalidFields)?;
        let prefix = self.inner.project.project.key_prefix(object).unwrap_or("a00").to_string();
        let id = record_id(&prefix);
        let now = now_text();
        let mut data = Map::new();
        data.insert("Id".into(), Value::String(id.clone()));
        data.extend(validated.fields);
        data.insert("CreatedDate".into(), Value::String(now.clone()));
        data.insert("LastModifiedDate".into(), Value::String(now.clone()));
        let runs = self.triggered_runs(object, &data, None, true, actor);
        Ok(PreparedInsert { object: object.to_string(), id, data, runs, now, truncated: validated.truncated })
    }

    /// Updates a record; flows on update see the prior values as `$Record__Prior`.
    pub async fn update_record(
        &self,
        object: &str,
        id: &str,
        input: &Map<String, Value>,
        actor: &RunUser,
    ) -> Result<RecordWrite, EngineError> {
        let def = self.object(object)?;
        let fields = records::validate(def, input, false, records::Truncation::Refuse)
            .map_err(EngineError::InvalidFields)?
            .fields;
        let now = now_text();
        // Room for every flow that could start; the places of those that do not are given back.
        let admitted = self.admit(self.inner.project.triggered_flows(object, false).count()).await?;
        // The prior values are read in the write itself, so no other write slips in between.
        let (engine, object_name, record_id, actor, when) =
            (self.clone(), object.to_string(), id.to_string(), actor.clone(), now.clone());
        let runs = self
            .inner
            .store
            .write(move |tx| {
                let Some(prior) = tx.record(&object_name, &record_id)? else {
                    return Err(EngineError::NotFound { object: object_name, id: record_id });
                };
                let mut data = prior.data.clone();
                data.extend(fields);
                data.insert("LastModifiedDate".into(), Value::String(when.clone()));
                let runs = engine.triggered_runs(&object_name, &data, Some(&prior.data), false, &actor);
                tx.update_record(&record_id, &data, &when)?;
                for (run_id, flow, state) in &runs {
                    let run = NewRun { id: run_id, flow, object: &object_name, record_id: &record_id, state };
                    tx.insert_run(run, &when)?;
                }
                Ok(runs)
            })
            .await?;
        Ok(RecordWrite { id: id.to_string(), runs: self.enqueue(object, id, &now, runs, admitted) })
    }

    /// Waits (at most [`ADMISSION_WAIT`]) for places for `runs` new runs; `None` when there are none.
    async fn admit(&self, runs: usize) -> Result<Option<OwnedSemaphorePermit>, EngineError> {
        // A write that starts more runs than there are places takes them all, never more.
        let Ok(wanted) = u32::try_from(runs.min(admission_places(self.inner.workers))) else {
            return Ok(None);
        };
        if wanted == 0 {
            return Ok(None);
        }
        let places = Arc::clone(&self.inner.admission);
        match tokio::time::timeout(ADMISSION_WAIT, places.acquire_many_owned(wanted)).await {
            Ok(Ok(admitted)) => Ok(Some(admitted)),
            // A closed semaphore never happens; without one the write goes ahead unadmitted.
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(EngineError::Busy {
                queued: admission_places(self.inner.workers),
                waited_seconds: ADMISSION_WAIT.as_secs(),
            }),
        }
    }

    /// Queues the runs a write started, each with one admission place of `admitted` (the rest are
    /// given back).
    fn enqueue(
        &self,
        object: &str,
        record_id: &str,
        now: &str,
        runs: Vec<(String, String, Value)>,
        mut admitted: Option<OwnedSemaphorePermit>,
    ) -> Vec<String> {
        use std::sync::atomic::Ordering;
        runs.into_iter()
            .map(|(run_id, flow, state)| {
                let place = admitted.as_mut().and_then(|places| places.split(1));
                let job = if self.inner.states_queued.fetch_add(1, Ordering::Relaxed) < STATES_IN_QUEUE {
                    Job::FreshWith(
                        Box::new(RunRow {
                            id: run_id.clone(),
                            flow,
                            object: object.to_string(),
                            record_id: record_id.to_string(),
                            status: RunStatus::Ready,
                            state,
                            fault: None,
                            created_at: now.to_string(),
                            updated_at: now.to_string(),
                            next_attempt_at: None,
                        }),
                        place,
                    )
                } else {
                    self.inner.states_queued.fetch_sub(1, Ordering::Relaxed);
                    Job::Fresh(run_id.clone(), place)
                };
                let _ = self.inner.queue.send(job);
                run_id
            })
            .collect()
    }

    /// The runs a change starts: (run id, flow, initial state). An entry condition that cannot be
    /// evaluated still starts its run, which fails at once with the reason, so that no change is
    /// silently ignored.
    fn triggered_runs(
        &self,
        object: &str,
        data: &Map<String, Value>,
        prior: Option<&Map<String, Value>>,
        created: bool,
        actor: &RunUser,
    ) -> Vec<(String, String, Value)> {
        let cx = self.inner.project.eval_context();
        let mut runs = Vec::new();
        for flow in self.inner.project.triggered_flows(object, created) {
            let holds = flow.entry_holds(data, prior, &cx);
            if holds == Ok(false) {
                continue;
            }
            let user = self.run_user_for(flow, actor);
            let mut state = flow.new_run(data.clone(), prior.cloned(), user, interview_guid(), cx.now);
            if let Err(message) = holds {
                state.failure = Some(format!("the entry condition could not be evaluated: {message}"));
                state.cursor = None;
            }
            let state = serde_json::to_value(&state).unwrap_or(Value::Null);
            runs.push((format!("run_{}", ordered_text(20)), flow.name.clone(), state));
        }
        runs
    }

    async fn execute(&self, run_id: &str) -> Result<(), EngineError> {
        let Some(run) = self.inner.store.claim_run(run_id, &now_text()).await? else {
            // A timer may fire a little early, or an older timer may fire after the run went back to
            // waiting: wake it again when it is due.
            if let Some(run) = self.inner.store.run(run_id).await?
                && run.status == RunStatus::Waiting
                && let Some(at) = run.next_attempt_at.as_deref()
                && let Ok(at) = chrono::DateTime::parse_from_rfc3339(at)
            {
                self.wake_at(run.id, at.with_timezone(&Utc));
            }
            return Ok(());
        };
        self.start_fresh(run).await
    }

    /// Starts (or resumes) a run this worker owns: claimed from the store, or just committed here.
    async fn start_fresh(&self, run: RunRow) -> Result<(), EngineError> {
        let Some(flow) = self.inner.project.flows.get(&run.flow).cloned() else {
            let message = format!("flow {} is not in the loaded project", run.flow);
            return self
                .finish(&run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                .await;
        };
        let state = match RunState::deserialize(&run.state) {
            Ok(state) => state,
            Err(error) => {
                let message = format!("the state of this run cannot be read: {error}");
                return self
                    .finish(&run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                    .await;
            }
        };
        self.continue_run(Parked { run, flow, state, permit: None }).await
    }

    /// Drives a claimed run until it ends or parks, and journals where it stopped.
    async fn continue_run(&self, parked: Parked) -> Result<(), EngineError> {
        let Parked { run, flow, mut state, permit } = parked;
        let mut ledger = Vec::new();
        let end = self.drive(&flow, &mut state, Some(&run.id), permit, &mut ledger).await?;
        match end {
            DriveEnd::Ended(status, fault) => {
                self.finish(&run, status, journal(&state), fault.as_deref(), &mut ledger).await
            }
            DriveEnd::Waiting { at, reason } => {
                let snapshot = journal(&state);
                let due = at.to_rfc3339_opts(SecondsFormat::Micros, true);
                let run_id = run.id.clone();
                self.write_with_ledger(ledger, move |tx| {
                    Ok(tx.wait_run(&run_id, &snapshot, &due, &reason, &now_text())?)
                })
                .await?;
                self.wake_at(run.id.clone(), at);
                Ok(())
            }
            DriveEnd::Parked { wait } => {
                self.write_ledger(ledger).await?;
                // The run stays `running` in the store with nothing in flight: a crash meanwhile
                // resumes it from its last journal.
                let queue = self.inner.queue.clone();
                tokio::spawn(async move {
                    let permit = match wait {
                        ParkOn::Time(wait) => {
                            tokio::time::sleep(wait).await;
                            None
                        }
                        ParkOn::Slot(semaphore) => semaphore.acquire_owned().await.ok(),
                    };
                    let _ = queue.send(Job::Resume(Box::new(Parked { run, flow, state, permit })));
                });
                Ok(())
            }
        }
    }

    /// Runs the interpreter until the run ends or must wait, performing each effect; journals after
    /// every effect when the run is stored (`run_id`). Ledger writes gathered on the way are left in
    /// `ledger` for the caller's journal transaction.
    async fn drive(
        &self,
        flow: &Arc<CompiledFlow>,
        state: &mut RunState,
        run_id: Option<&str>,
        mut permit: Option<OwnedSemaphorePermit>,
        ledger: &mut Vec<ledger::LedgerUpdate>,
    ) -> Result<DriveEnd, EngineError> {
        loop {
            let cx = self.inner.project.eval_context();
            match flow.advance(state, &cx) {
                Step::Finished => return Ok(DriveEnd::Ended(RunStatus::Finished, None)),
                Step::Failed { message } => return Ok(DriveEnd::Ended(RunStatus::Failed, Some(message))),
                Step::Effect(Effect::CreateRecord { object, fields, .. }) => {
                    // The record, the runs it triggers and this run's next state commit together, so a
                    // crash can neither lose the record nor create it twice.
                    let started = Instant::now();
                    let actor = state.user.clone();
                    match self.prepare_insert(&object, &fields, &actor, records::Truncation::Truncate) {
                        Ok(insert) => {
                            let micros = started.elapsed().as_micros() as u64;
                            flow.complete_create(
                                state,
                                Ok(insert.id.clone()),
                                &insert.truncated,
                                Utc::now(),
                                micros,
                            );
                            let journal = run_id.map(|run_id| (run_id.to_string(), journal(state)));
                            let insert = self
                                .write_with_ledger(std::mem::take(ledger), move |tx| {
                                    insert.write(tx)?;
                                    if let Some((run_id, snapshot)) = &journal {
                                        tx.save_run(run_id, RunStatus::Running, snapshot, None, &now_text())?;
                                    }
                                    Ok(insert)
                                })
                                .await?;
                            // Runs started from inside a run never wait for admission: the worker
                            // that would wait holds a place itself.
                            self.enqueue(&insert.object, &insert.id, &insert.now, insert.runs, None);
                            continue;
                        }
                        Err(error) => {
                            let message = format!("Create Records on {object} failed: {error}");
                            let micros = started.elapsed().as_micros() as u64;
                            flow.complete_create(state, Err(message), &[], Utc::now(), micros);
                        }
                    }
                }
                Step::Effect(Effect::GetRecords { query, .. }) => {
                    // A read: nothing to journal before it, and after a crash it is simply read again.
                    let started = Instant::now();
                    let object = query.object.clone();
                    let matcher = query.clone();
                    let read = self
                        .inner
                        .store
                        .select_records(
                            &query.object,
                            query.fields_read(),
                            query.stops_at_first(),
                            move |record| matcher.matches(&record).then(|| matcher.keep(record)),
                        )
                        .await;
                    let micros = started.elapsed().as_micros() as u64;
                    let result = read
                        .map(|records| query.finish(records))
                        .map_err(|error| format!("Get Records on {object} failed: {error}"));
                    flow.complete_get(state, result, Utc::now(), micros);
                }
                Step::Effect(Effect::Callout { .. }) => {
                    // No journal write after the answer: the next write (the next callout's attempt, a
                    // Create Records transaction, or the run's end) follows after pure steps only. A
                    // crash in between leaves the attempt journaled as sent, so the run is resent only
                    // where the provider deduplicates, and otherwise becomes `unknown`.
                    let outcome = self.callout(flow, state, run_id, &cx, permit.take(), ledger).await?;
                    match outcome {
                        callout::CalloutOutcome::Done(result) => {
                            flow.complete_callout(state, result, Utc::now())
                        }
                        callout::CalloutOutcome::RetryAt { at, error, micros, maybe_arrived } => {
                            flow.schedule_retry(state, error.clone(), at, Utc::now(), micros);
                            if let Some(pending) = state.pending.as_mut() {
                                pending.maybe_arrived |= maybe_arrived;
                            }
                            let attempts = state.pending.as_ref().map_or(1, |p| p.attempts);
                            let reason = format!(
                                "attempt {attempts} failed; retrying at {}: {error}",
                                at.to_rfc3339()
                            );
                            if run_id.is_none() {
                                // A debug run has no journal to park in: it waits in place.
                                tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
                                continue;
                            }
                            return Ok(DriveEnd::Waiting { at, reason });
                        }
                        callout::CalloutOutcome::Unknown { message } => {
                            return Ok(DriveEnd::Ended(RunStatus::Unknown, Some(message)));
                        }
                        callout::CalloutOutcome::WaitUntil { at, reason } => {
                            if run_id.is_none() {
                                return Ok(DriveEnd::Ended(RunStatus::Failed, Some(reason)));
                            }
                            return Ok(DriveEnd::Waiting { at, reason });
                        }
                        callout::CalloutOutcome::Park(wait) => {
                            if run_id.is_none() {
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                            return Ok(DriveEnd::Parked { wait: ParkOn::Time(wait) });
                        }
                        callout::CalloutOutcome::ParkOnSlot(semaphore) => {
                            if run_id.is_none() {
                                permit = semaphore.acquire_owned().await.ok();
                                continue;
                            }
                            return Ok(DriveEnd::Parked { wait: ParkOn::Slot(semaphore) });
                        }
                    }
                }
            }
        }
    }

    /// Runs `flow` once on `record` as Debug does: effects are real (callouts, Create Records), the run
    /// itself is not stored. The record's `Id` is kept if given.
    pub async fn debug_run(
        &self,
        flow_name: &str,
        record: &Map<String, Value>,
        check_entry: bool,
        actor: &RunUser,
    ) -> Result<DebugOutcome, EngineError> {
        let flows = &self.inner.project.flows;
        let Some(flow) = flows.get(flow_name).cloned() else {
            return Err(EngineError::UnknownFlow {
                name: flow_name.to_string(),
                hint: did_you_mean(flow_name, flows.keys().map(String::as_str)),
            });
        };
        let def = self.object(&flow.object)?;
        let mut input = record.clone();
        let id = input.remove("Id").and_then(|v| v.as_str().map(String::from));
        let fields = records::validate(def, &input, true, records::Truncation::Refuse)
            .map_err(EngineError::InvalidFields)?
            .fields;
        let prefix = self.inner.project.project.key_prefix(&flow.object).unwrap_or("a00").to_string();
        let now = now_text();
        let mut data = Map::new();
        data.insert("Id".into(), Value::String(id.unwrap_or_else(|| record_id(&prefix))));
        data.extend(fields);
        data.insert("CreatedDate".into(), Value::String(now.clone()));
        data.insert("LastModifiedDate".into(), Value::String(now));
        let cx = self.inner.project.eval_context();
        if check_entry {
            match flow.entry_holds(&data, None, &cx) {
                Ok(true) => {}
                Ok(false) => return Ok(DebugOutcome::NotTriggered { record: data }),
                Err(message) => return Ok(DebugOutcome::EntryError { message }),
            }
        }
        let user = self.run_user_for(&flow, actor);
        let mut state = flow.new_run(data, None, user, interview_guid(), cx.now);
        let mut ledger = Vec::new();
        let end = self.drive(&flow, &mut state, None, None, &mut ledger).await?;
        self.write_ledger(ledger).await?;
        let (status, fault) = match end {
            DriveEnd::Ended(status, fault) => (status, fault),
            DriveEnd::Waiting { reason, .. } => (RunStatus::Failed, Some(reason)),
            DriveEnd::Parked { .. } => (RunStatus::Failed, Some("the run could not go on".into())),
        };
        Ok(DebugOutcome::Ran { state: Box::new(state), status, fault })
    }

    pub async fn run(&self, id: &str) -> Result<RunRow, EngineError> {
        self.inner.store.run(id).await?.ok_or_else(|| EngineError::RunNotFound(id.to_string()))
    }

    pub async fn runs_for_record(&self, record_id: &str) -> Result<Vec<RunRow>, EngineError> {
        Ok(self.inner.store.runs_for_record(record_id).await?)
    }

    /// Stores one secret parameter, encrypted. The principal and parameter must be declared; a per-user
    /// principal needs the user it belongs to.
    pub async fn set_secret(
        &self,
        external: &str,
        principal: &str,
        parameter: &str,
        value: &[u8],
        user: Option<&str>,
    ) -> Result<(), EngineError> {
        let externals = &self.inner.project.project.external_credentials;
        let Some(definition) = externals.get(external) else {
            return Err(EngineError::UnknownPrincipal {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                hint: did_you_mean(external, externals.keys().map(String::as_str))
                    .map(|h| format!("no external credential `{external}`; {h}")),
            });
        };
        let Some(declared) = definition.def.principals.iter().find(|p| p.name == principal) else {
            return Err(EngineError::UnknownPrincipal {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                hint: did_you_mean(principal, definition.def.principals.iter().map(|p| p.name.as_str())),
            });
        };
        if !declared.parameters.iter().any(|p| p == parameter) {
            return Err(EngineError::UnknownParameter {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                parameter: parameter.to_string(),
                known: declared.parameters.join(", "),
            });
        }
        let user_id = match (declared.principal_type, user) {
            (PrincipalType::Named, None) => String::new(),
            (PrincipalType::PerUser, Some(name)) => self.user_named(name).await?.id,
            (PrincipalType::Named, Some(_)) => {
                return Err(EngineError::UserNotAllowed {
                    external_credential: external.into(),
                    principal: principal.into(),
                });
            }
            (PrincipalType::PerUser, None) => {
                return Err(EngineError::UserRequired {
                    external_credential: external.into(),
                    principal: principal.into(),
                });
            }
        };
        let place = SecretPlace::new(external, principal, &user_id);
        let sealed = self.inner.vault.seal(&place, parameter, value);
        self.inner.store.put_secret(external, principal, &user_id, &sealed, &now_text()).await?;
        Ok(())
    }

    /// Re-encrypts every secret under a new master key (see [`Vault::rotate`]).
    pub async fn rotate_key(&self) -> Result<usize, EngineError> {
        Ok(self.inner.vault.rotate(&self.inner.store).await?)
    }

    /// The user a run of `flow` acts as when `actor` made the change (`run_as` in the flow file).
    fn run_user_for(&self, flow: &CompiledFlow, actor: &RunUser) -> RunUser {
        match flow.run_as {
            RunAs::TriggeringUser => actor.clone(),
            RunAs::Automation => self.inner.automation.clone(),
        }
    }

    pub fn automation_user(&self) -> &RunUser {
        &self.inner.automation
    }

    /// The active user named `name`, or [`EngineError::UnknownUser`] with the closest name.
    pub async fn user_named(&self, name: &str) -> Result<UserRow, EngineError> {
        match self.inner.store.user_by_name(name).await? {
            Some(user) => Ok(user),
            None => Err(self.unknown_user(name).await?),
        }
    }

    async fn unknown_user(&self, name: &str) -> Result<EngineError, EngineError> {
        let users = self.inner.store.users().await?;
        let hint = did_you_mean(name, users.iter().map(|user| user.name.as_str()));
        Ok(EngineError::UnknownUser { name: name.to_string(), hint })
    }

    /// Creates an API user holding `permission_sets`, which must exist in the project.
    pub async fn create_user(&self, name: &str, permission_sets: &[String]) -> Result<UserRow, EngineError> {
        let known = &self.inner.project.project.permission_sets;
        for set in permission_sets {
            if !known.contains_key(set) {
                return Err(EngineError::UnknownPermissionSet {
                    name: set.clone(),
                    hint: did_you_mean(set, known.keys().map(String::as_str)),
                });
            }
        }
        if self.inner.store.user_by_name(name).await?.is_some() {
            return Err(EngineError::UserExists(name.to_string()));
        }
        let id = format!("005{}", random_text(15));
        self.inner.store.create_user(&id, name, permission_sets, &now_text()).await?;
        self.user_named(name).await
    }

    /// Deactivates a user; its API tokens are refused from the next request on.
    pub async fn deactivate_user(&self, name: &str) -> Result<(), EngineError> {
        if self.inner.store.deactivate_user(name).await? {
            Ok(())
        } else {
            Err(self.unknown_user(name).await?)
        }
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, EngineError> {
        Ok(self.inner.store.users().await?)
    }

    /// Creates an API token for `user`; the token is returned once and only its hash is stored.
    pub async fn create_token(&self, user: &str) -> Result<Zeroizing<String>, EngineError> {
        let user = self.user_named(user).await?;
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", random_text(32)));
        let id = format!("tok_{}", random_text(16));
        self.inner.store.create_token(&id, &user.id, &secret_hash(&token), &now_text()).await?;
        Ok(token)
    }

    /// The user a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Option<UserRow>, EngineError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self.inner.store.user_by_token_hash(&secret_hash(token)).await?)
    }

    /// The API scopes `user`'s permission sets grant.
    pub fn scopes(&self, user: &UserRow) -> BTreeSet<ApiScope> {
        let sets = &self.inner.project.project.permission_sets;
        user.permission_sets
            .iter()
            .filter_map(|name| sets.get(name))
            .flat_map(|set| set.def.api_scopes.iter().copied())
            .collect()
    }

    /// The permission sets that grant `scope`, for messages that say what to assign.
    pub fn permission_sets_granting(&self, scope: ApiScope) -> Vec<String> {
        self.inner
            .project
            .project
            .permission_sets
            .values()
            .filter(|set| set.def.api_scopes.contains(&scope))
            .map(|set| set.def.name.clone())
            .collect()
    }

    /// The permission sets of the user a run acts as.
    pub(crate) async fn permission_sets_of(&self, user: &RunUser) -> Result<Vec<String>, EngineError> {
        if user.id == AUTOMATION_USER_ID {
            return Ok(self.inner.project.project.config.automation.permission_sets.clone());
        }
        Ok(self.inner.store.user(&user.id).await?.map(|u| u.permission_sets).unwrap_or_default())
    }
}

/// Every named credential's limits: its `rate_limit`, else what its provider publishes.
async fn credential_limits(
    project: &CompiledProject,
    store: &Store,
) -> Result<limits::RateLimits, EngineError> {
    let now = Utc::now();
    let day_start = limits::RateLimits::day_start(now).to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut all = std::collections::HashMap::new();
    let mut used = std::collections::HashMap::new();
    for (name, named) in &project.project.named_credentials {
        // The provider a service on this credential declares, else the one its host belongs to.
        let provider = project
            .project
            .services
            .values()
            .find(|service| service.def.model.named_credential == *name)
            .map(|service| service.def.provider)
            .filter(|provider| *provider != herald_providers::Provider::Generic)
            .unwrap_or_else(|| {
                herald_providers::Provider::detect(
                    &herald_project::url_host(&named.def.url).unwrap_or_default(),
                )
            });
        let defaults = provider.default_rate_limit();
        let configured = named.def.rate_limit.clone().unwrap_or_default();
        let limit = limits::Limits {
            per_second: configured.per_second.or(defaults.per_second),
            per_day: configured.per_day.or(defaults.per_day),
            concurrency: configured.concurrency,
        };
        if limit.per_day.is_some() {
            used.insert(name.clone(), store.messages_since(name, &day_start).await?.max(0) as u32);
        }
        all.insert(name.clone(), limit);
    }
    Ok(limits::RateLimits::new(all, &used, now))
}

/// The SHA-256 (hex) kept instead of an API token or a webhook secret.
fn secret_hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The acting user of an API request.
pub fn run_user(user: &UserRow) -> RunUser {
    RunUser { id: user.id.clone(), name: user.name.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_and_keep_their_length() {
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(record_id("00Q"));
            std::thread::sleep(std::time::Duration::from_micros(2));
        }
        assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("00Q")), "{ids:?}");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids in creation order sort in creation order");
        assert_eq!(ordered_text(4).len(), 4);
        assert_eq!(ordered_text(20).len(), 20);
    }
}
