//! Records: validation against the object's fields, the flows a change triggers, and the one write
//! that commits a record with the runs it starts.

mod change;
mod validate;

pub use validate::*;

use crate::ids::{interview_guid, ordered_text, record_id};
use crate::queue::{self, RunQueue};
use crate::{Engine, EngineError, now_text};
use herald_flow::RunUser;
use herald_project::did_you_mean;
use herald_store::{NewRun, RunRow, RunStatus, StoredRecord};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// A validated record insert and the runs it starts, ready to write in a transaction.
pub(crate) struct PreparedInsert {
    pub(crate) object: String,
    pub(crate) id: String,
    data: Map<String, Value>,
    pub(crate) runs: Vec<(String, String, Value)>,
    /// The project version the runs start on.
    pub(crate) version: Option<i64>,
    /// Scheduled paths, inserted `waiting` in the same write.
    pub(crate) scheduled: Vec<crate::scheduled::ScheduledRun>,
    pub(crate) now: String,
    pub(crate) truncated: Vec<String>,
}

impl PreparedInsert {
    /// Writes the record and its runs, which `queue` holds from now on (see [`RunQueue::hold`]).
    pub(crate) fn write(
        &self,
        tx: &mut dyn herald_store::WriteTx,
        queue: &Arc<RunQueue>,
    ) -> Result<queue::HeldRuns, EngineError> {
        tx.insert_record(&self.object, &self.id, &self.data, &self.now)?;
        for (run_id, flow, state) in &self.runs {
            let run = NewRun {
                id: run_id,
                flow,
                object: &self.object,
                record_id: &self.id,
                state,
                version: self.version,
                owner: Some(queue.owner()),
            };
            tx.insert_run(run, &self.now)?;
        }
        for path in &self.scheduled {
            path.insert(tx, &self.object, &self.id, &self.now)?;
        }
        Ok(queue.hold(self.runs.iter().map(|(id, _, _)| id.as_str())))
    }

    /// The scheduled paths written, with when each is due (to wake them after the commit).
    pub(crate) fn scheduled_due(&self) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
        self.scheduled.iter().map(|run| (run.id.clone(), run.due)).collect()
    }
}

/// The answer to a record write: the new id and the runs it enqueued.
#[derive(Clone, Debug, Serialize)]
pub struct RecordWrite {
    pub id: String,
    pub runs: Vec<String>,
    /// Scheduled paths it started, `waiting` until they are due.
    pub scheduled: Vec<String>,
}

impl Engine {
    /// The object's definition in `project` (a version of the project: the caller holds it).
    pub(crate) fn object<'a>(
        project: &'a herald_flow::CompiledProject,
        object: &str,
    ) -> Result<&'a herald_project::ObjectDef, EngineError> {
        let objects = &project.project.objects;
        objects.get(object).map(|o| &o.def).ok_or_else(|| EngineError::UnknownObject {
            object: object.to_string(),
            hint: did_you_mean(object, objects.keys().map(String::as_str)),
        })
    }

    pub async fn get_record(&self, object: &str, id: &str) -> Result<StoredRecord, EngineError> {
        Engine::object(&self.project(), object)?;
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
        let insert = self.prepare_insert(object, input, actor, Truncation::Refuse, 0)?;
        // Waiting for room may be given up (the client left): nothing is written yet.
        let admitted = self.admit(insert.runs.len()).await?;
        let engine = self.clone();
        self.to_completion(async move {
            let queue = Arc::clone(&engine.inner.queue);
            let (insert, held) = engine
                .inner
                .store
                .write(move |tx| {
                    let held = insert.write(tx, &queue)?;
                    Ok::<_, EngineError>((insert, held))
                })
                .await?;
            let scheduled = insert.scheduled_due();
            engine.wake_all(scheduled.iter().cloned());
            let scheduled = scheduled.into_iter().map(|(id, _)| id).collect();
            let runs = (insert.version, insert.runs);
            let runs = engine.enqueue(&insert.object, &insert.id, &insert.now, runs, held, admitted);
            Ok(RecordWrite { id: insert.id, runs, scheduled })
        })
        .await
    }

    /// Validates a new record and decides the runs it triggers, without writing anything. `depth`:
    /// how many record writes of flows led here (0 for a client's write).
    pub(crate) fn prepare_insert(
        &self,
        object: &str,
        input: &Map<String, Value>,
        actor: &RunUser,
        truncation: Truncation,
        depth: u32,
    ) -> Result<PreparedInsert, EngineError> {
        let project = self.project();
        let def = Engine::object(&project, object)?;
        let validated = validate(def, input, true, truncation).map_err(EngineError::InvalidFields)?;
        let problems = self.check_lookups(def, &validated.fields);
        if !problems.is_empty() {
            return Err(EngineError::InvalidFields(problems));
        }
        let prefix = project.project.key_prefix(object).unwrap_or("a00").to_string();
        let id = record_id(&prefix);
        let now = now_text();
        let mut data = Map::new();
        data.insert("Id".into(), Value::String(id.clone()));
        data.extend(validated.fields);
        data.insert("CreatedDate".into(), Value::String(now.clone()));
        data.insert("LastModifiedDate".into(), Value::String(now.clone()));
        let (version, runs) = self.triggered_runs(object, &data, None, true, actor, depth);
        if depth > herald_flow::MAX_TRIGGER_DEPTH
            && let Some((_, flow, _)) = runs.first()
        {
            return Err(EngineError::RecordChange(format!(
                "creating this {object} would start flow {flow} {depth} record writes of flows deep; a chain of flows that write records stops after {}",
                herald_flow::MAX_TRIGGER_DEPTH
            )));
        }
        let scheduled = self.scheduled_runs(object, &data, None, true, actor);
        Ok(PreparedInsert {
            object: object.to_string(),
            id,
            data,
            runs,
            version,
            scheduled,
            now,
            truncated: validated.truncated,
        })
    }

    /// Updates a record; flows on update see the prior values as `$Record__Prior`.
    pub async fn update_record(
        &self,
        object: &str,
        id: &str,
        input: &Map<String, Value>,
        actor: &RunUser,
    ) -> Result<RecordWrite, EngineError> {
        let project = self.project();
        let def = Engine::object(&project, object)?;
        let fields =
            validate(def, input, false, Truncation::Refuse).map_err(EngineError::InvalidFields)?.fields;
        let problems = self.check_lookups(def, &fields);
        if !problems.is_empty() {
            return Err(EngineError::InvalidFields(problems));
        }
        let now = now_text();
        // Room for every flow that could start; the places of those that do not are given back.
        let admitted = self.admit(self.project().triggered_flows(object, false).count()).await?;
        // The prior values are read in the write itself, so no other write slips in between.
        let (engine, object_name, record_id, actor, when) =
            (self.clone(), object.to_string(), id.to_string(), actor.clone(), now.clone());
        let (object, id) = (object.to_string(), id.to_string());
        self.to_completion(async move {
            let writer = engine.clone();
            let (runs, version, held, scheduled) = engine
                .inner
                .store
                .write(move |tx| {
                    let Some(prior) = tx.record(&object_name, &record_id)? else {
                        return Err(EngineError::NotFound { object: object_name, id: record_id });
                    };
                    let mut data = prior.data.clone();
                    data.extend(fields);
                    data.insert("LastModifiedDate".into(), Value::String(when.clone()));
                    let (version, runs) =
                        writer.triggered_runs(&object_name, &data, Some(&prior.data), false, &actor, 0);
                    let paths = writer.scheduled_runs(&object_name, &data, Some(&prior.data), false, &actor);
                    tx.update_record(&record_id, &data, &when)?;
                    for (run_id, flow, state) in &runs {
                        let run = NewRun {
                            id: run_id,
                            flow,
                            object: &object_name,
                            record_id: &record_id,
                            state,
                            version,
                            owner: Some(writer.node_id()),
                        };
                        tx.insert_run(run, &when)?;
                    }
                    // Paths already waiting move when their time source field changed (before the
                    // new ones are written, which are due where they are).
                    let mut scheduled = writer.reschedule_paths(tx, &record_id, &data, &when)?;
                    for path in &paths {
                        path.insert(tx, &object_name, &record_id, &when)?;
                        scheduled.push((path.id.clone(), path.due));
                    }
                    let held = writer.inner.queue.hold(runs.iter().map(|(id, _, _)| id.as_str()));
                    Ok((
                        runs,
                        version,
                        held,
                        (scheduled, paths.into_iter().map(|p| p.id).collect::<Vec<_>>()),
                    ))
                })
                .await?;
            let (wake, scheduled) = scheduled;
            engine.wake_all(wake);
            let runs = engine.enqueue(&object, &id, &now, (version, runs), held, admitted);
            Ok(RecordWrite { id, runs, scheduled })
        })
        .await
    }

    /// Queues the runs a write started (and `held` since), each with one admission place of
    /// `admitted` (the rest are given back).
    pub(crate) fn enqueue(
        &self,
        object: &str,
        record_id: &str,
        now: &str,
        (version, runs): (Option<i64>, Vec<(String, String, Value)>),
        mut held: queue::HeldRuns,
        mut admitted: Option<OwnedSemaphorePermit>,
    ) -> Vec<String> {
        runs.into_iter()
            .map(|(run_id, flow, state)| {
                let place = admitted.as_mut().and_then(|places| places.split(1));
                let run = RunRow {
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
                    version,
                    owner: Some(self.node_id().to_string()),
                };
                self.inner.queue.push_committed(&mut held, run, place);
                run_id
            })
            .collect()
    }

    /// The runs a change starts: (run id, flow, initial state), all on the version of the project
    /// returned with them (the current one, read once). An entry condition that cannot be
    /// evaluated still starts its run, which fails at once with the reason, so that no change is
    /// silently ignored.
    pub(crate) fn triggered_runs(
        &self,
        object: &str,
        data: &Map<String, Value>,
        prior: Option<&Map<String, Value>>,
        created: bool,
        actor: &RunUser,
        depth: u32,
    ) -> (Option<i64>, Vec<(String, String, Value)>) {
        let version = self.version();
        let cx = version.project.eval_context();
        let mut runs = Vec::new();
        for flow in version.project.triggered_flows(object, created) {
            let holds = flow.entry_holds(data, prior, &cx);
            if holds == Ok(false) {
                continue;
            }
            let user = self.run_user_for(flow, actor);
            let mut state =
                flow.new_run(data.clone(), prior.cloned(), user.clone(), interview_guid(), cx.now);
            if let Err(message) = &holds {
                state.fail_before_start(format!("the entry condition could not be evaluated: {message}"));
            }
            state.set_trigger_depth(depth);
            let state = serde_json::to_value(&state).unwrap_or(Value::Null);
            runs.push((format!("run_{}", ordered_text(20)), flow.name.clone(), state));
            // "Run Asynchronously": a run of its own from its own element, queued like the first.
            if holds == Ok(true)
                && let Some(state) =
                    flow.new_async_run(data.clone(), prior.cloned(), user, interview_guid(), cx.now)
            {
                let state = serde_json::to_value(&state).unwrap_or(Value::Null);
                runs.push((format!("run_{}", ordered_text(20)), flow.name.clone(), state));
            }
        }
        (version.seq, runs)
    }
}
