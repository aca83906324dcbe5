//! Debug as Salesforce's Flow Builder does it for record-triggered flows: on a record made up for the
//! run, or on an existing record picked by id (with field values changed for the run), and with the
//! prior values an update had, so that "only when a record is updated to meet the condition",
//! `ISCHANGED` and `PRIORVALUE` can be tried without changing the record. Rollback mode is not here:
//! the command runs the engine on a copy of the database (`Store::copy_database`), which is the one
//! way to be sure that nothing any effect writes (records, the runs they start, ledger rows) is kept.

use crate::driver::DebugOutcome;
use crate::ids::{interview_guid, record_id};
use crate::records;
use crate::{Engine, EngineError, now_text};
use herald_flow::RunUser;
use herald_project::{TriggerEvent, did_you_mean};
use serde_json::{Map, Value};

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

impl Engine {
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
