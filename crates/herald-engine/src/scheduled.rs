//! Runs that wait for their time: scheduled paths (written with the record change that triggered
//! them, in its transaction, so a crash after the commit cannot lose one), the Wait element of a
//! stored run, and waking a waiting run by hand. A scheduled path is checked again against the
//! record as it is when it comes due; one whose record no longer meets the entry condition ends
//! `skipped` without sending anything.

use crate::ids::{interview_guid, ordered_text};
use crate::queue::Job;
use crate::{Engine, EngineError, journal, now_text};
use chrono::{DateTime, SecondsFormat, Utc};
use herald_flow::{CompiledFlow, PathRecheck, RunState, RunUser};
use herald_store::{NewRun, RunRow, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A scheduled path's run, ready to insert as `waiting` in the write of its record.
#[derive(Clone, Debug)]
pub(crate) struct ScheduledRun {
    pub(crate) id: String,
    pub(crate) flow: String,
    pub(crate) state: Value,
    pub(crate) due: DateTime<Utc>,
    pub(crate) reason: String,
    /// The project version the path's run is pinned to.
    pub(crate) version: Option<i64>,
}

impl ScheduledRun {
    pub(crate) fn insert(
        &self,
        tx: &mut dyn herald_store::WriteTx,
        object: &str,
        record_id: &str,
        now: &str,
    ) -> Result<(), herald_store::StoreError> {
        let run = NewRun {
            id: &self.id,
            flow: &self.flow,
            object,
            record_id,
            state: &self.state,
            version: self.version,
            owner: None,
        };
        tx.insert_waiting_run(run, &due_text(self.due), &self.reason, now)
    }
}

fn due_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn path_reason(path: &str, due: DateTime<Utc>) -> String {
    format!("scheduled path {path} is due at {}", due_text(due))
}

/// What `wake_run` did.
#[derive(Clone, Debug, Serialize)]
pub struct WakeOutcome {
    pub run_id: String,
    /// Whether a worker of this process took it; otherwise it was handed over (see
    /// `nodes::hand_over`): a `herald serve` on this database takes it, or the next one at start.
    pub queued: bool,
}

impl Engine {
    /// The scheduled paths a change starts, for the flows whose entry condition holds (as for the
    /// immediate path). A path whose time source field is empty starts nothing.
    pub(crate) fn scheduled_runs(
        &self,
        object: &str,
        data: &Map<String, Value>,
        prior: Option<&Map<String, Value>>,
        created: bool,
        actor: &RunUser,
    ) -> Vec<ScheduledRun> {
        let version = self.version();
        let cx = version.project.eval_context();
        let mut runs = Vec::new();
        for flow in version.project.triggered_flows(object, created) {
            if flow.scheduled_paths.is_empty() || flow.entry_holds(data, prior, &cx) != Ok(true) {
                continue;
            }
            let user = self.run_user_for(flow, actor);
            for path in &flow.scheduled_paths {
                let started = flow.new_path_run(
                    path,
                    data.clone(),
                    prior.cloned(),
                    user.clone(),
                    interview_guid(),
                    &cx,
                );
                let Some((state, due)) = started else { continue };
                runs.push(ScheduledRun {
                    id: format!("run_{}", ordered_text(20)),
                    flow: flow.name.clone(),
                    state: serde_json::to_value(&state).unwrap_or(Value::Null),
                    due,
                    reason: path_reason(&path.name, due),
                    version: version.seq,
                });
            }
        }
        runs
    }

    /// Moves the waiting scheduled paths of a record whose time source field changed, inside the
    /// write that changes it. Returns the runs moved and their new times, to wake after the commit.
    pub(crate) fn reschedule_paths(
        &self,
        tx: &mut dyn herald_store::WriteTx,
        record_id: &str,
        data: &Map<String, Value>,
        now: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, EngineError> {
        let cx = self.project().eval_context();
        let mut moved = Vec::new();
        for run in tx.waiting_runs_of_record(record_id)? {
            // The run's own version's flow; one not compiled in this process keeps its time.
            let Some(project) = self.project_if_compiled(run.version) else { continue };
            let Some(flow) = project.flows.get(&run.flow) else { continue };
            let Ok(mut state) = RunState::deserialize(&run.state) else { continue };
            let Some(due) = flow.rescheduled_due(&mut state, data, &cx) else { continue };
            let path = flow.scheduled_of(&state).map(|s| s.path.clone()).unwrap_or_default();
            tx.wait_run(&run.id, &journal(&state), &due_text(due), &path_reason(&path, due), now)?;
            moved.push((run.id, due));
        }
        Ok(moved)
    }

    /// Wakes, when due, the runs a committed write parked.
    pub(crate) fn wake_all(&self, runs: impl IntoIterator<Item = (String, DateTime<Utc>)>) {
        for (id, due) in runs {
            self.wake_at(id, due);
        }
    }

    /// A scheduled path's run that came due: reads its record again and checks the entry condition.
    /// Returns the state to go on with, or `None` when the run ended `skipped` here.
    pub(crate) async fn recheck_due_path(
        &self,
        run: &RunRow,
        flow: &Arc<CompiledFlow>,
        mut state: RunState,
    ) -> Result<Option<RunState>, EngineError> {
        if flow.path_to_recheck(&state).is_none() {
            return Ok(Some(state));
        }
        let record = self.inner.store.record(&run.object, &run.record_id).await?.map(|r| r.data);
        let cx = self.project().eval_context();
        match flow.recheck_path(&mut state, record, &cx) {
            PathRecheck::Runs => Ok(Some(state)),
            PathRecheck::Skipped(reason) => {
                let reason = format!("skipped: {reason}");
                self.finish(run, RunStatus::Skipped, journal(&state), Some(&reason), &mut Vec::new()).await?;
                Ok(None)
            }
        }
    }

    /// Stores an interview of an invoked autolaunched flow that reached a Wait: from now on it is a
    /// run like any other, `waiting` until `until`, resumed by the queue (or after a restart).
    pub(crate) async fn store_waiting_interview(
        &self,
        flow: &CompiledFlow,
        state: &RunState,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<String, EngineError> {
        let id = format!("run_{}", ordered_text(20));
        let version = self.version().seq;
        let (run_id, flow_name, snapshot, reason) = (
            id.clone(),
            flow.name.clone(),
            serde_json::to_value(state).unwrap_or(Value::Null),
            reason.to_string(),
        );
        self.inner
            .store
            .write(move |tx| {
                let run = NewRun {
                    id: &run_id,
                    flow: &flow_name,
                    object: "",
                    record_id: "",
                    state: &snapshot,
                    version,
                    owner: None,
                };
                tx.insert_waiting_run(run, &due_text(until), &reason, &now_text())
            })
            .await?;
        self.wake_at(id.clone(), until);
        Ok(id)
    }

    /// Makes a waiting run due now (a scheduled path, a Wait, a retry or a daily limit): it goes on
    /// as it would have at its time, a scheduled path still checked against its record first. For
    /// tests and admins, so nobody waits an hour to see a follow-up.
    pub async fn wake_run(&self, id: &str) -> Result<WakeOutcome, EngineError> {
        let run = self.run(id).await?;
        if run.status != RunStatus::Waiting {
            return Err(EngineError::NotWaiting { id: id.to_string(), status: run.status.as_str() });
        }
        let snapshot = match RunState::deserialize(&run.state) {
            Ok(mut state) => {
                if let Some(flow) =
                    self.project_if_compiled(run.version).as_ref().and_then(|p| p.flows.get(&run.flow))
                {
                    // A retry keeps its attempt and idempotency key: the same send, only sooner.
                    flow.retry_now(&mut state);
                }
                journal(&state)
            }
            // The driver reports an unreadable state when it takes the run.
            Err(_) => run.state.to_string(),
        };
        let mut held = self.inner.queue.hold([id]);
        let queued = self.inner.queue.has_workers().await;
        let (engine, run_id, record_id) = (self.clone(), id.to_string(), run.record_id.clone());
        let shared = self.inner.store.shared();
        self.to_completion(async move {
            // Only a run still waiting: one a timer claimed meanwhile is left alone.
            let woke = engine
                .inner
                .store
                .write({
                    let run_id = run_id.clone();
                    move |tx| {
                        let still_waiting =
                            tx.waiting_runs_of_record(&record_id)?.iter().any(|r| r.id == run_id);
                        if still_waiting && queued {
                            tx.save_run(&run_id, RunStatus::Ready, &snapshot, None, &now_text())?;
                        } else if still_waiting {
                            crate::nodes::hand_over(tx, shared, &run_id, &snapshot)?;
                        }
                        Ok::<_, EngineError>(still_waiting)
                    }
                })
                .await?;
            if woke && queued {
                engine.inner.queue.push_held(&mut held, Job::Claim(run_id));
            }
            Ok(())
        })
        .await?;
        Ok(WakeOutcome { run_id: id.to_string(), queued })
    }
}
