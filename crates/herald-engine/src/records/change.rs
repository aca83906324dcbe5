//! A flow's Update Records and Delete Records: the change the interpreter asked for, validated like
//! every record write and committed in one transaction with the runs it starts and the run's own
//! journal, so a crash can neither lose the change nor make it (and its runs) twice. Also the
//! related records a traversal reads, and the lookup check every write makes.

use super::{Truncation, validate};
use crate::{Engine, EngineError, FieldProblem, journal, now_text, queue};
use herald_flow::{ChangeTarget, CompiledFlow, MAX_TRIGGER_DEPTH, RecordChange, RunState};
use herald_project::{FieldType, ObjectDef};
use herald_store::{NewRun, RunStatus};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// The runs one record's change started, to queue once committed.
/// Per record: its id, the version its runs start on, the runs, their hold, and the scheduled paths
/// to wake.
type StartedRuns = Vec<(
    String,
    Option<i64>,
    Vec<(String, String, Value)>,
    queue::HeldRuns,
    Vec<(String, chrono::DateTime<chrono::Utc>)>,
)>;

impl Engine {
    /// Lookup fields must hold ids of the object they point to: an id is told by its object's
    /// `key_prefix` (every lookup's target declares one, HF037). Existence is not checked: a lookup
    /// to a deleted record traverses to empty values, as a blank lookup does.
    pub(crate) fn check_lookups(&self, def: &ObjectDef, fields: &Map<String, Value>) -> Vec<FieldProblem> {
        let project = self.project();
        let project = &project.project;
        let mut problems = Vec::new();
        for (name, field) in &def.fields {
            if field.field_type != FieldType::Lookup {
                continue;
            }
            let (Some(Value::String(id)), Some(to)) = (fields.get(name), &field.to) else { continue };
            if id.is_empty() {
                continue;
            }
            let prefix = project.key_prefix(to).unwrap_or("a00");
            if !id.starts_with(prefix) || id.len() < 15 {
                let shown: String = id.chars().take(40).collect();
                problems.push(FieldProblem {
                    error_code: herald_codes::api::INVALID_CROSS_REFERENCE_KEY.id(),
                    message: format!(
                        "{}.{name} points to {to}, whose ids start with {prefix}; `{shown}` is not a {to} id",
                        def.name
                    ),
                    fields: vec![name.clone()],
                });
            }
        }
        problems
    }

    /// Loads the records a traversal asked for and hands them to the interpreter.
    pub(crate) async fn load_related(
        &self,
        flow: &CompiledFlow,
        state: &mut RunState,
        records: Vec<(String, String)>,
    ) -> Result<(), EngineError> {
        let mut loaded = Vec::with_capacity(records.len());
        for (object, id) in records {
            let record = self.inner.store.record(&object, &id).await?;
            loaded.push((id, record.map(|r| r.data)));
        }
        flow.complete_related(state, loaded);
        Ok(())
    }

    /// Performs an Update Records (`deleting` false) or Delete Records effect: the records are
    /// chosen, validated, written with the runs they start and the run's next journal in one
    /// transaction, and the interpreter told. A fault of the element changes nothing.
    pub(crate) async fn change_records(
        &self,
        flow: &Arc<CompiledFlow>,
        state: &mut RunState,
        run_id: Option<&str>,
        change: RecordChange,
        deleting: bool,
        ledger: &mut Vec<crate::ledger::LedgerUpdate>,
    ) -> Result<(), EngineError> {
        let started = Instant::now();
        let verb = if deleting { "Delete Records" } else { "Update Records" };
        let object = change.object.clone();
        let prepared = self.prepare_change(change, deleting).await;
        let (rows, matching) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                let micros = started.elapsed().as_micros() as u64;
                flow.complete_change(
                    state,
                    Err(format!("{verb} on {object} failed: {message}")),
                    chrono::Utc::now(),
                    micros,
                );
                return Ok(());
            }
        };
        // The run's state as it will be once the change commits, journaled in the same write.
        let rows_asked = rows.len();
        let mut after = state.clone();
        flow.complete_change(
            &mut after,
            Ok(rows.len()),
            chrono::Utc::now(),
            started.elapsed().as_micros() as u64,
        );
        let snapshot = run_id.map(|id| (id.to_string(), journal(&after)));
        let actor = after.user().clone();
        let depth = state.trigger_depth() + 1;
        // A debug run's record (`flow debug --record`) was never stored: changing it changes nothing.
        let unstored = match run_id {
            None => state.record().get("Id").and_then(Value::as_str).map(String::from),
            Some(_) => None,
        };
        let engine = self.clone();
        let (write_object, now) = (object.clone(), now_text());
        let written = self
            .write_with_ledger(std::mem::take(ledger), move |tx| {
                // Everything is checked before the first row is written: a refusal leaves no row
                // changed, while the ledger updates flushed above still commit.
                let mut planned = Vec::new();
                for (id, fields) in &rows {
                    let Some(prior) = tx.record(&write_object, id)? else {
                        if matching.is_some() || unstored.as_deref() == Some(id.as_str()) {
                            continue; // deleted since it was read: nothing left to change
                        }
                        return Ok(Err(format!("no {write_object} record with id {id}; it may have been deleted")));
                    };
                    if let Some(query) = &matching
                        && !query.matches(&with_id(&prior.data, id))
                    {
                        continue; // changed since it was read and no longer matches
                    }
                    if deleting {
                        planned.push((id.clone(), None));
                        continue;
                    }
                    let mut data = prior.data.clone();
                    data.extend(fields.clone());
                    data.insert("LastModifiedDate".into(), Value::String(now.clone()));
                    let (version, runs) =
                        engine.triggered_runs(&write_object, &data, Some(&prior.data), false, &actor, depth);
                    let paths = engine.scheduled_runs(&write_object, &data, Some(&prior.data), false, &actor);
                    if depth > MAX_TRIGGER_DEPTH
                        && let Some((_, flow, _)) = runs.first()
                    {
                        return Ok(Err(format!(
                            "updating {write_object} {id} would start flow {flow} once more, {depth} record writes of flows deep; a chain of flows that update records stops after {MAX_TRIGGER_DEPTH} (a flow on update that updates its own record: add an entry condition the update makes false, or `only_when_updated_to_meet: true`)"
                        )));
                    }
                    planned.push((id.clone(), Some((data, version, runs, paths))));
                }
                let mut started_runs: StartedRuns = Vec::new();
                let count = planned.len();
                for (id, plan) in planned {
                    let Some((data, version, runs, paths)) = plan else {
                        tx.delete_record(&write_object, &id)?;
                        continue;
                    };
                    tx.update_record(&id, &data, &now)?;
                    for (run_id, flow, state) in &runs {
                        let run = NewRun {
                            id: run_id,
                            flow,
                            object: &write_object,
                            record_id: &id,
                            state,
                            version,
                            owner: Some(engine.node_id()),
                        };
                        tx.insert_run(run, &now)?;
                    }
                    // As a client's update: waiting paths move with their time source field, new
                    // ones are written waiting.
                    let mut wake = engine.reschedule_paths(tx, &id, &data, &now)?;
                    for path in &paths {
                        path.insert(tx, &write_object, &id, &now)?;
                        wake.push((path.id.clone(), path.due));
                    }
                    let held = engine.inner.queue.hold(runs.iter().map(|(id, _, _)| id.as_str()));
                    started_runs.push((id, version, runs, held, wake));
                }
                if let Some((run_id, snapshot)) = &snapshot {
                    tx.save_run(run_id, RunStatus::Running, snapshot, None, &now_text())?;
                }
                Ok(Ok((started_runs, now, count)))
            })
            .await?;
        let micros = started.elapsed().as_micros() as u64;
        match written {
            Ok((started_runs, now, count)) => {
                if count == rows_asked {
                    *state = after;
                } else {
                    // Records deleted or changed since they were read: the trace counts what was
                    // written (the journal catches up at the run's next write).
                    flow.complete_change(state, Ok(count), chrono::Utc::now(), micros);
                }
                for (record_id, version, runs, held, wake) in started_runs {
                    self.wake_all(wake);
                    // Runs started from inside a run never wait for admission (see Create Records).
                    self.enqueue(&object, &record_id, &now, (version, runs), held, None);
                }
            }
            Err(message) => {
                let fault = format!("{verb} on {object} failed: {message}");
                flow.complete_change(state, Err(fault), chrono::Utc::now(), micros);
            }
        }
        Ok(())
    }

    /// The records a change touches, each with its validated fields, and the query to re-check them
    /// against when they were chosen by conditions.
    async fn prepare_change(
        &self,
        change: RecordChange,
        deleting: bool,
    ) -> Result<(Vec<(String, Map<String, Value>)>, Option<herald_flow::RecordQuery>), String> {
        let project = self.project();
        let def = Engine::object(&project, &change.object).map_err(|e| e.to_string())?;
        let check = |fields: &Map<String, Value>| -> Result<Map<String, Value>, String> {
            if deleting {
                return Ok(Map::new());
            }
            let validated =
                validate(def, fields, false, Truncation::Truncate).map_err(|problems| describe(&problems))?;
            let problems = self.check_lookups(def, &validated.fields);
            if problems.is_empty() { Ok(validated.fields) } else { Err(describe(&problems)) }
        };
        match change.target {
            ChangeTarget::Records(records) => {
                let mut rows = Vec::with_capacity(records.len());
                for (id, fields) in records {
                    rows.push((id, check(&fields)?));
                }
                Ok((rows, None))
            }
            ChangeTarget::Matching { query, fields } => {
                let fields = check(&fields)?;
                let matcher = query.clone();
                let ids = self
                    .inner
                    .store
                    .select_records(&change.object, None, false, move |record| {
                        let id = record.get("Id").cloned().unwrap_or(Value::Null);
                        matcher.matches(&record).then(|| Map::from_iter([("Id".to_string(), id)]))
                    })
                    .await
                    .map_err(|error| error.to_string())?;
                if ids.len() as u64 > change.max_rows {
                    return Err(format!(
                        "{} records match the conditions, more than the element's max_rows ({}); nothing was changed (narrow the conditions, or raise max_rows up to 10000)",
                        ids.len(),
                        change.max_rows
                    ));
                }
                let rows = ids
                    .into_iter()
                    .filter_map(|record| record.get("Id").and_then(Value::as_str).map(String::from))
                    .map(|id| (id, fields.clone()))
                    .collect();
                Ok((rows, Some(query)))
            }
        }
    }
}

/// A stored record's data with its id, as a query judges it.
fn with_id(data: &Map<String, Value>, id: &str) -> Map<String, Value> {
    let mut record = data.clone();
    record.entry("Id").or_insert_with(|| Value::String(id.to_string()));
    record
}

fn describe(problems: &[FieldProblem]) -> String {
    problems.iter().map(|p| format!("{}: {}", p.error_code, p.message)).collect::<Vec<_>>().join("; ")
}
