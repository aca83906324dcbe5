//! The run driver: takes a run it owns through the interpreter, performs each effect (a callout, a
//! record write, a read), journals where the run stopped, and ends it, parks it in memory for a
//! short wait, or leaves it waiting durably.

use crate::callout;
use crate::ids::interview_guid;
use crate::ledger;
use crate::queue::{Disposition, Job, Parked};
use crate::records;
use crate::{Engine, EngineError, FieldProblem, journal, now_text};
use chrono::{SecondsFormat, Utc};
use herald_flow::{CompiledFlow, Effect, RetryAt, RunState, RunUser, Step};
use herald_project::did_you_mean;
use herald_store::{RunRow, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a run holds while it is driven: a place among the runs computing at once (`[runtime]
/// workers`), its admission place until its first request leaves, and a concurrency slot of a named
/// credential it waited for. While a request is on the wire the run gives up its place and its
/// admission place: a run waiting on a provider holds nothing another run needs, so in-flight
/// callouts are bounded by each credential's limits, not by a pool sized for an instant provider.
pub(crate) struct Holding {
    places: Option<Arc<Semaphore>>,
    computing: Option<OwnedSemaphorePermit>,
    admitted: Option<OwnedSemaphorePermit>,
    pub(crate) slot: Option<OwnedSemaphorePermit>,
}

impl Holding {
    pub(crate) fn new(places: &Arc<Semaphore>, computing: OwnedSemaphorePermit) -> Holding {
        Holding { places: Some(Arc::clone(places)), computing: Some(computing), admitted: None, slot: None }
    }

    /// A debug run computes outside the workers' places.
    pub(crate) fn unlimited() -> Holding {
        Holding { places: None, computing: None, admitted: None, slot: None }
    }

    pub(crate) fn with_admission(mut self, admitted: Option<OwnedSemaphorePermit>) -> Holding {
        self.admitted = admitted;
        self
    }

    pub(crate) fn with_slot(mut self, slot: Option<OwnedSemaphorePermit>) -> Holding {
        self.slot = slot;
        self
    }

    /// The run's request leaves: it computes nothing until the answer comes, and it is no longer a
    /// lead waiting to be texted.
    pub(crate) fn on_the_wire(&mut self) {
        self.computing = None;
        self.admitted = None;
    }

    /// The answer came: the run takes a place among the runs computing again (first come, first
    /// served) before it goes on.
    pub(crate) async fn back_from_the_wire(&mut self) {
        if let Some(places) = &self.places
            && self.computing.is_none()
        {
            self.computing = Arc::clone(places).acquire_owned().await.ok();
        }
    }
}

/// Where `drive` left a run.
pub(crate) enum DriveEnd {
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
    /// An interview that is not stored reached a Wait: the caller stores it as a waiting run.
    Suspended {
        at: chrono::DateTime<Utc>,
        reason: String,
    },
}

pub(crate) enum ParkOn {
    Time(std::time::Duration),
    Slot(Arc<tokio::sync::Semaphore>),
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

/// One interview of an invoked autolaunched flow ([`Engine::invoke_autolaunched`]).
#[derive(Debug)]
pub struct Interview {
    pub status: RunStatus,
    pub fault: Option<String>,
    /// The output variables with their values at the end, in declaration order.
    pub outputs: Map<String, Value>,
    /// The stored run an interview became when it reached a Wait (`status` is then `waiting`).
    pub run_id: Option<String>,
}

impl Engine {
    pub(crate) async fn finish(
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

    pub(crate) async fn execute(&self, run_id: &str, holding: Holding) -> Result<Disposition, EngineError> {
        let Some(run) = self.inner.store.claim_run(run_id, self.node_id(), &now_text()).await? else {
            // A timer may fire a little early, or an older timer may fire after the run went back to
            // waiting: wake it again when it is due.
            if let Some(run) = self.inner.store.run(run_id).await?
                && run.status == RunStatus::Waiting
                && let Some(at) = run.next_attempt_at.as_deref()
                && let Ok(at) = chrono::DateTime::parse_from_rfc3339(at)
            {
                self.wake_at(run.id, at.with_timezone(&Utc));
            }
            return Ok(Disposition::Released);
        };
        self.start_fresh(run, holding).await
    }

    /// Starts (or resumes) a run this worker owns: claimed from the store, or just committed here.
    pub(crate) async fn start_fresh(
        &self,
        run: RunRow,
        holding: Holding,
    ) -> Result<Disposition, EngineError> {
        // A run goes on with the version of the project it started on, never a newer one's flows.
        let project = match self.project_for(run.version).await {
            Ok(project) => project,
            Err(message) => {
                self.finish(&run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                    .await?;
                return Ok(Disposition::Released);
            }
        };
        let Some(flow) = project.flows.get(&run.flow).cloned() else {
            let message = format!("flow {} is not in the loaded project", run.flow);
            self.finish(&run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                .await?;
            return Ok(Disposition::Released);
        };
        let state = match RunState::deserialize(&run.state) {
            Ok(state) => state,
            Err(error) => {
                let message = format!("the state of this run cannot be read: {error}");
                self.finish(&run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                    .await?;
                return Ok(Disposition::Released);
            }
        };
        let Some(state) = self.recheck_due_path(&run, &flow, state).await? else {
            return Ok(Disposition::Released);
        };
        self.continue_run(Parked { run, flow, state, permit: None }, holding).await
    }

    /// Drives a claimed run until it ends or parks, and journals where it stopped.
    pub(crate) async fn continue_run(
        &self,
        parked: Parked,
        holding: Holding,
    ) -> Result<Disposition, EngineError> {
        let Parked { run, flow, mut state, permit } = parked;
        let mut holding = holding.with_slot(permit);
        let mut ledger = Vec::new();
        let end = self.drive(&flow, &mut state, Some(&run.id), true, &mut holding, &mut ledger).await?;
        match end {
            DriveEnd::Ended(status, fault) => {
                self.finish(&run, status, journal(&state), fault.as_deref(), &mut ledger).await?;
                Ok(Disposition::Released)
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
                Ok(Disposition::Released)
            }
            DriveEnd::Suspended { .. } => unreachable_for_stored_runs(),
            DriveEnd::Parked { wait } => {
                self.write_ledger(ledger).await?;
                // The store keeps the run as it was (`ready`, or `running` with nothing in flight) and
                // this process holds it, so the sweep leaves it alone; a crash meanwhile resumes it
                // from its last journal.
                let queue = Arc::clone(&self.inner.queue);
                tokio::spawn(async move {
                    let permit = match wait {
                        ParkOn::Time(wait) => {
                            tokio::time::sleep(wait).await;
                            None
                        }
                        ParkOn::Slot(semaphore) => semaphore.acquire_owned().await.ok(),
                    };
                    queue.push(Job::Resume(Box::new(Parked { run, flow, state, permit })));
                });
                Ok(Disposition::Parked)
            }
        }
    }

    /// Runs the interpreter until the run ends or must wait, performing each effect; journals after
    /// every effect when the run is stored (`run_id`). Ledger writes gathered on the way are left in
    /// `ledger` for the caller's journal transaction. A run that is not stored waits for a scheduled
    /// retry in place when `retry_in_place`, and otherwise ends `failed` there, saying so.
    async fn drive(
        &self,
        flow: &Arc<CompiledFlow>,
        state: &mut RunState,
        run_id: Option<&str>,
        retry_in_place: bool,
        holding: &mut Holding,
        ledger: &mut Vec<ledger::LedgerUpdate>,
    ) -> Result<DriveEnd, EngineError> {
        loop {
            let cx = self.project().eval_context();
            match flow.advance(state, &cx) {
                Step::Finished => return Ok(DriveEnd::Ended(RunStatus::Finished, None)),
                Step::Failed { message } => return Ok(DriveEnd::Ended(RunStatus::Failed, Some(message))),
                Step::Wait { element, until } => {
                    let reason = format!(
                        "Wait element {element}: waiting until {}",
                        until.to_rfc3339_opts(SecondsFormat::Micros, true)
                    );
                    match (run_id, retry_in_place) {
                        (Some(_), _) => return Ok(DriveEnd::Waiting { at: until, reason }),
                        // A debug run does not sleep: it goes past the Wait, and the trace says so.
                        (None, true) => flow.skip_wait(state),
                        (None, false) => return Ok(DriveEnd::Suspended { at: until, reason }),
                    }
                }
                Step::Effect(Effect::CreateRecord { object, fields, .. }) => {
                    // The record, the runs it triggers and this run's next state commit together, so a
                    // crash can neither lose the record nor create it twice.
                    let started = Instant::now();
                    let actor = state.user().clone();
                    let depth = state.trigger_depth() + 1;
                    match self.prepare_insert(&object, &fields, &actor, records::Truncation::Truncate, depth)
                    {
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
                            let queue = Arc::clone(&self.inner.queue);
                            let (insert, held) = self
                                .write_with_ledger(std::mem::take(ledger), move |tx| {
                                    let held = insert.write(tx, &queue)?;
                                    if let Some((run_id, snapshot)) = &journal {
                                        tx.save_run(run_id, RunStatus::Running, snapshot, None, &now_text())?;
                                    }
                                    Ok((insert, held))
                                })
                                .await?;
                            self.wake_all(insert.scheduled_due());
                            // Runs started from inside a run never wait for admission: the worker
                            // that would wait holds a place itself.
                            let runs = (insert.version, insert.runs);
                            self.enqueue(&insert.object, &insert.id, &insert.now, runs, held, None);
                            continue;
                        }
                        Err(error) => {
                            let message = format!("Create Records on {object} failed: {error}");
                            let micros = started.elapsed().as_micros() as u64;
                            flow.complete_create(state, Err(message), &[], Utc::now(), micros);
                        }
                    }
                }
                Step::Effect(Effect::UpdateRecords { change, .. }) => {
                    self.change_records(flow, state, run_id, *change, false, ledger).await?;
                }
                Step::Effect(Effect::DeleteRecords { change, .. }) => {
                    self.change_records(flow, state, run_id, *change, true, ledger).await?;
                }
                Step::Effect(Effect::LoadRelated { records, .. }) => {
                    // A read: after a crash it is simply read again.
                    self.load_related(flow, state, records).await?;
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
                Step::Effect(Effect::Callout(effect)) => {
                    // No journal write after the answer: the next write (the next callout's attempt, a
                    // Create Records transaction, or the run's end) follows after pure steps only. A
                    // crash in between leaves the attempt journaled as sent, so the run is resent only
                    // where the provider deduplicates, and otherwise becomes `unknown`.
                    let outcome = self.callout(flow, &effect, state, run_id, &cx, holding, ledger).await?;
                    match outcome {
                        callout::CalloutOutcome::Done(result) => {
                            flow.complete_callout(state, result, Utc::now())
                        }
                        callout::CalloutOutcome::RetryAt { at, error, micros, maybe_arrived } => {
                            let retry = RetryAt { at, error: error.clone(), micros, maybe_arrived };
                            flow.schedule_retry(state, retry, Utc::now());
                            let attempts = state.pending().map_or(1, |p| p.attempts);
                            let reason = format!(
                                "attempt {attempts} failed; retrying at {}: {error}",
                                at.to_rfc3339()
                            );
                            if run_id.is_none() && !retry_in_place {
                                return Ok(DriveEnd::Ended(
                                    RunStatus::Failed,
                                    Some(format!(
                                        "{reason}; this interview is not stored, so nothing retries it: invoke the flow again later"
                                    )),
                                ));
                            }
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
                        callout::CalloutOutcome::NeedsPerson { message } => {
                            // herald's problem, not the provider's: the flow's fault path is not taken.
                            return Ok(DriveEnd::Ended(RunStatus::Failed, Some(message)));
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
                                holding.slot = semaphore.acquire_owned().await.ok();
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
    /// itself is not stored. The record's `Id` is kept if given. See [`Engine::debug_run_on`] for an
    /// existing record and prior values.
    pub async fn debug_run(
        &self,
        flow_name: &str,
        record: &Map<String, Value>,
        check_entry: bool,
        actor: &RunUser,
    ) -> Result<DebugOutcome, EngineError> {
        let start = crate::DebugRecord { id: None, fields: record.clone(), prior: None };
        self.debug_run_on(flow_name, &start, check_entry, actor).await
    }

    /// Runs the autolaunched flow `flow_name` once from `inputs` (values for its input variables) as
    /// Salesforce's Debug → Run does: effects are real, the run itself is not stored.
    pub async fn debug_run_autolaunched(
        &self,
        flow_name: &str,
        inputs: &Map<String, Value>,
        actor: &RunUser,
    ) -> Result<DebugOutcome, EngineError> {
        let project = self.project();
        let flows = &project.flows;
        let Some(flow) = flows.get(flow_name).cloned() else {
            return Err(EngineError::UnknownFlow {
                name: flow_name.to_string(),
                hint: did_you_mean(flow_name, flows.keys().map(String::as_str)),
            });
        };
        let cx = self.project().eval_context();
        let user = self.run_user_for(&flow, actor);
        let state = flow
            .new_autolaunched_run(inputs, user, interview_guid(), cx.now)
            .map_err(EngineError::FlowStart)?;
        let (state, status, fault) = self.drive_unstored(&flow, state, true).await?;
        Ok(DebugOutcome::Ran { state: Box::new(state), status, fault })
    }

    /// Runs the active autolaunched flow `flow_name` once per element of `inputs`, one after the
    /// other, as the API's invocable action does. Every element is checked before the first
    /// interview starts, so bad input runs nothing: [`EngineError::InvalidFields`] lists each problem
    /// (`INVALID_INPUT`, `fields` naming `inputs[i]`). Interviews are not stored (not in the runs
    /// list); their callouts take the normal path (principal access, rate limits, the message
    /// ledger, masking). One whose callout schedules a retry ends `failed` instead of holding the
    /// request open until then.
    pub async fn invoke_autolaunched(
        &self,
        flow_name: &str,
        inputs: &[Map<String, Value>],
        actor: &RunUser,
    ) -> Result<Vec<Interview>, EngineError> {
        let project = self.project();
        let flows = &project.flows;
        let Some(flow) = flows.get(flow_name).cloned() else {
            return Err(EngineError::UnknownFlow {
                name: flow_name.to_string(),
                hint: did_you_mean(flow_name, flows.keys().map(String::as_str)),
            });
        };
        if let Some(trigger) = &flow.trigger {
            return Err(EngineError::FlowStart(format!(
                "flow {flow_name} is record-triggered (on {}); only autolaunched flows (no `trigger:`) can be invoked, a record change starts this one",
                trigger.object
            )));
        }
        if !flow.active {
            return Err(EngineError::FlowStart(format!(
                "flow {flow_name} is a draft; set `status: active` in its file to invoke it"
            )));
        }
        let cx = self.project().eval_context();
        let user = self.run_user_for(&flow, actor);
        let mut states = Vec::with_capacity(inputs.len());
        let mut problems = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            match flow.new_autolaunched_run(input, user.clone(), interview_guid(), cx.now) {
                Ok(state) => states.push(state),
                Err(message) => problems.extend(message.lines().map(|line| FieldProblem {
                    error_code: herald_codes::api::INVALID_INPUT.id(),
                    message: format!("inputs[{index}]: {line}"),
                    fields: vec![format!("inputs[{index}]")],
                })),
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::InvalidFields(problems));
        }
        let mut interviews = Vec::with_capacity(states.len());
        for state in states {
            let (state, status, fault, until) = self.drive_unstored_until(&flow, state, false).await?;
            let outputs = flow.output_values(&state).map(|(name, value)| (name.to_string(), value.clone()));
            // An interview that reached a Wait goes on later as a stored run: the caller gets its id.
            let run_id = match (until, &fault) {
                (Some(until), Some(reason)) => {
                    Some(self.store_waiting_interview(&flow, &state, until, reason).await?)
                }
                _ => None,
            };
            interviews.push(Interview { status, fault, outputs: outputs.collect(), run_id });
        }
        Ok(interviews)
    }

    /// Drives a run that is not stored to its end; a wait it cannot take in place ends it `failed`,
    /// except a Wait element, which leaves it `waiting` with the time (for the caller to store).
    pub(crate) async fn drive_unstored(
        &self,
        flow: &Arc<CompiledFlow>,
        state: RunState,
        retry_in_place: bool,
    ) -> Result<(RunState, RunStatus, Option<String>), EngineError> {
        let (state, status, fault, _) = self.drive_unstored_until(flow, state, retry_in_place).await?;
        Ok((state, status, fault))
    }

    async fn drive_unstored_until(
        &self,
        flow: &Arc<CompiledFlow>,
        mut state: RunState,
        retry_in_place: bool,
    ) -> Result<(RunState, RunStatus, Option<String>, Option<chrono::DateTime<Utc>>), EngineError> {
        let mut ledger = Vec::new();
        let end = self
            .drive(flow, &mut state, None, retry_in_place, &mut Holding::unlimited(), &mut ledger)
            .await?;
        self.write_ledger(ledger).await?;
        let (status, fault, until) = match end {
            DriveEnd::Ended(status, fault) => (status, fault, None),
            DriveEnd::Waiting { reason, .. } => (RunStatus::Failed, Some(reason), None),
            DriveEnd::Parked { .. } => (RunStatus::Failed, Some("the run could not go on".into()), None),
            DriveEnd::Suspended { at, reason } => (RunStatus::Waiting, Some(reason), Some(at)),
        };
        Ok((state, status, fault, until))
    }
}

/// A stored run parks durably at a Wait (`DriveEnd::Waiting`); only unstored interviews suspend.
fn unreachable_for_stored_runs() -> Result<Disposition, EngineError> {
    Err(EngineError::FlowStart("a stored run cannot be suspended in memory".into()))
}
