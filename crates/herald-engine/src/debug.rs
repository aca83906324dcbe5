//! Debug as Salesforce's Flow Builder does it for record-triggered flows: on a record made up for the
//! run, or on an existing record picked by id (with field values changed for the run), and with the
//! prior values an update had, so that "only when a record is updated to meet the condition",
//! `ISCHANGED` and `PRIORVALUE` can be tried without changing the record.
//!
//! Rollback mode is here too, in one place for `herald flow debug --rollback` and the console's
//! Debug page: the run goes to a new engine opened on a copy of the database
//! (`Store::copy_database`) in a temporary folder, deleted when the run ends. A copy is the one way
//! to be sure that nothing any effect writes (records, the runs they start, ledger rows, consent) is
//! kept, whatever the flow does; its cost is the copy, which grows with the database.

use crate::driver::DebugOutcome;
use crate::ids::{interview_guid, record_id};
use crate::records;
use crate::{Engine, EngineError, EngineOptions, KeySource, now_text};
use herald_flow::{CompiledProject, RunUser};
use herald_project::{TriggerEvent, did_you_mean};
use herald_store::{Store, StoreError};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The record a debug run of a record-triggered flow starts on.
#[derive(Clone, Debug, Default)]
pub struct DebugRecord {
    /// An existing record's id (`--record-id`): its stored values are `$Record`.
    pub id: Option<String>,
    /// Field values (`--record`): the whole record when there is no `id`, else the values changed for
    /// this run on top of the stored ones.
    pub fields: Map<String, Value>,
    /// The values some fields had before the update being debugged (`--prior`); the other fields had
    /// the values they have now. `None`: as when an existing record is changed by `fields` (its stored
    /// values are the prior ones), else as a create (no prior record).
    pub prior: Option<Map<String, Value>>,
}

/// How a debug run starts: a record-triggered flow on a record, an autolaunched one from values for
/// its input variables.
#[derive(Clone, Debug)]
pub enum DebugStart {
    Record {
        record: DebugRecord,
        /// Whether a record that does not meet the entry condition stops the run before it starts.
        check_entry: bool,
    },
    Inputs(Map<String, Value>),
}

/// The database a rollback run copies, and where the vault's master key is read for the copy (its
/// secrets are sealed under the same key).
#[derive(Clone, Debug)]
pub struct RollbackSource {
    pub database: PathBuf,
    /// The master key file; used when `HERALD_MASTER_KEY` is not set.
    pub key_file: PathBuf,
    pub workers: usize,
}

impl RollbackSource {
    /// The database and key file an engine was opened with.
    pub fn of(options: &EngineOptions) -> RollbackSource {
        RollbackSource {
            database: options.database.clone(),
            key_file: options.key_file.clone(),
            workers: options.workers,
        }
    }
}

/// Runs `flow` once as Debug does, in rollback mode: on a copy of `source`'s database, taken now in a
/// temporary folder and deleted before this returns, so nothing the run writes is kept. Callouts go
/// to `sandbox` when given, else where the project says. `as_user` names the user the change is made
/// as (the automation user when `None`).
pub async fn debug_with_rollback(
    project: Arc<CompiledProject>,
    source: &RollbackSource,
    sandbox: Option<String>,
    flow: &str,
    start: &DebugStart,
    as_user: Option<&str>,
) -> Result<DebugOutcome, EngineError> {
    let folder = tempfile::Builder::new().prefix("herald-rollback-").tempdir().map_err(|error| {
        EngineError::Store(StoreError::Stopped(format!(
            "cannot make a folder for the rollback copy: {error}"
        )))
    })?;
    let copied = folder.path().join("rollback.db");
    Store::copy_database(&source.database, &copied).await?;
    let mut options = EngineOptions::for_database(copied);
    if source.key_file.exists() {
        options.key_file = source.key_file.clone();
    }
    options.sandbox = sandbox;
    options.workers = source.workers;
    let engine = Engine::open(project, &options).await?;
    let outcome = async {
        let actor = match as_user {
            None => engine.automation_user().clone(),
            Some(name) => crate::run_user(&engine.user_named(name).await?),
        };
        engine.debug(flow, start, &actor).await
    }
    .await;
    // Closed before the folder goes, so that no write of the run lands in a file being deleted.
    engine.store().close().await;
    drop(engine);
    drop(folder);
    outcome
}

impl Engine {
    /// Runs `flow` once as Debug does, from `start`: effects are real (callouts, record writes), the
    /// run itself is not stored. See [`Engine::debug_in_rollback`] to keep nothing.
    pub async fn debug(
        &self,
        flow: &str,
        start: &DebugStart,
        actor: &RunUser,
    ) -> Result<DebugOutcome, EngineError> {
        match start {
            DebugStart::Record { record, check_entry } => {
                self.debug_run_on(flow, record, *check_entry, actor).await
            }
            DebugStart::Inputs(inputs) => self.debug_run_autolaunched(flow, inputs, actor).await,
        }
    }

    /// [`debug_with_rollback`] on a copy of this engine's database and its current project version:
    /// what a running server does to debug a flow without keeping anything.
    pub async fn debug_in_rollback(
        &self,
        flow: &str,
        start: &DebugStart,
        as_user: Option<&str>,
        sandbox: Option<String>,
    ) -> Result<DebugOutcome, EngineError> {
        let key_file = match &self.inner.vault.source {
            KeySource::File(path) => path.clone(),
            // The copy's vault reads the same variable.
            KeySource::Environment => PathBuf::new(),
        };
        let source =
            RollbackSource { database: self.inner.database.clone(), key_file, workers: self.inner.workers };
        debug_with_rollback(self.project(), &source, sandbox, flow, start, as_user).await
    }

    /// How many bytes a rollback copy of this engine's database starts from: the SQLite file and its
    /// write-ahead log; `None` for PostgreSQL, whose size is not read here.
    pub fn database_bytes(&self) -> Option<u64> {
        let database: &Path = &self.inner.database;
        if herald_project::is_postgres_url(&database.to_string_lossy()) {
            return None;
        }
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Some(size(database) + size(Path::new(&wal)))
    }

    /// Where callouts go instead of the providers, when the engine was opened with a sandbox.
    pub fn sandbox_url(&self) -> Option<&str> {
        self.inner.sandbox.as_ref().map(|url| url.as_str())
    }

    /// Runs a record-triggered flow once as Debug does, on `start`: effects are real (callouts,
    /// record writes), the run itself is not stored.
    pub async fn debug_run_on(
        &self,
        flow_name: &str,
        start: &DebugRecord,
        check_entry: bool,
        actor: &RunUser,
    ) -> Result<DebugOutcome, EngineError> {
        let project = self.project();
        let Some(flow) = project.flows.get(flow_name).cloned() else {
            return Err(EngineError::UnknownFlow {
                name: flow_name.to_string(),
                hint: did_you_mean(flow_name, project.flows.keys().map(String::as_str)),
            });
        };
        let Some(trigger) = &flow.trigger else {
            return Err(EngineError::FlowStart(format!(
                "flow {flow_name} is autolaunched (it has no `trigger:`), so it runs without a record; pass input values instead"
            )));
        };
        if start.prior.is_some() && trigger.event == TriggerEvent::Create {
            return Err(EngineError::FlowStart(format!(
                "flow {flow_name} runs when a {} is created, when there are no prior values: drop --prior, or debug a flow that runs on update",
                trigger.object
            )));
        }
        let object = trigger.object.clone();
        let def = project
            .project
            .objects
            .get(&object)
            .map(|o| &o.def)
            .ok_or_else(|| EngineError::UnknownObject { object: object.clone(), hint: None })?;
        let now = now_text();
        let (data, stored) = match &start.id {
            Some(id) => {
                let Some(stored) = self.store().record(&object, id).await? else {
                    return Err(EngineError::NotFound { object, id: id.clone() });
                };
                let changes = records::validate(def, &start.fields, false, records::Truncation::Refuse)
                    .map_err(EngineError::InvalidFields)?
                    .fields;
                let mut data = stored.data.clone();
                if !changes.is_empty() {
                    data.extend(changes);
                    data.insert("LastModifiedDate".into(), Value::String(now.clone()));
                }
                (data, Some(stored.data))
            }
            None => {
                let mut input = start.fields.clone();
                let id = input.remove("Id").and_then(|v| v.as_str().map(String::from));
                let fields = records::validate(def, &input, true, records::Truncation::Refuse)
                    .map_err(EngineError::InvalidFields)?
                    .fields;
                let prefix = project.project.key_prefix(&object).unwrap_or("a00").to_string();
                let mut data = Map::new();
                data.insert("Id".into(), Value::String(id.unwrap_or_else(|| record_id(&prefix))));
                data.extend(fields);
                data.insert("CreatedDate".into(), Value::String(now.clone()));
                data.insert("LastModifiedDate".into(), Value::String(now));
                (data, None)
            }
        };
        let prior = match (&start.prior, stored) {
            (Some(given), stored) => {
                let before = records::validate(def, given, false, records::Truncation::Refuse)
                    .map_err(|problems| {
                        EngineError::InvalidFields(
                            problems
                                .into_iter()
                                .map(|mut p| {
                                    p.message = format!("--prior: {}", p.message);
                                    p
                                })
                                .collect(),
                        )
                    })?
                    .fields;
                let mut prior = stored.unwrap_or_else(|| data.clone());
                prior.extend(before);
                Some(prior)
            }
            (None, Some(stored)) if !start.fields.is_empty() => Some(stored),
            (None, _) => None,
        };
        let cx = project.eval_context();
        if check_entry {
            match flow.entry_holds(&data, prior.as_ref(), &cx) {
                Ok(true) => {}
                Ok(false) => return Ok(DebugOutcome::NotTriggered { record: data }),
                Err(message) => return Ok(DebugOutcome::EntryError { message }),
            }
        }
        let user = self.run_user_for(&flow, actor);
        let state = flow.new_run(data, prior, user, interview_guid(), cx.now);
        let (state, status, fault) = self.drive_unstored(&flow, state, true).await?;
        Ok(DebugOutcome::Ran { state: Box::new(state), status, fault })
    }
}
