//! Runs that do not start at `start` or do not go straight on: a scheduled path's run (it waits until
//! its time, then checks the entry condition again against the record as it is then), the
//! asynchronous path's run, and the Wait element. The interpreter only computes times and marks the
//! state; the driver parks the run durably and reads the record again (it does the I/O).

use crate::flow::{CompiledFlow, Element, ScheduledPath, WaitElement};
use crate::runtime::{RunState, RunUser, Step, push_trace};
use chrono::{DateTime, Duration, TimeZone, Utc};
use herald_expr::{EvalContext, Type as ExprType, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// What a scheduled path's run carries: the path, when it is due, and whether the entry condition
/// was checked again when it came due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledStart {
    pub path: String,
    pub due: DateTime<Utc>,
    #[serde(default)]
    pub rechecked: bool,
}

/// The Wait element a run parked at, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitMark {
    pub element: String,
    pub until: DateTime<Utc>,
    /// A debug run goes on at once instead of waiting; the trace says so.
    #[serde(default)]
    pub not_waited: bool,
}

/// What checking a due scheduled path against its record decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathRecheck {
    /// The record still meets the entry condition: the path runs.
    Runs,
    /// It does not (or is gone, or its time source was emptied): the path ends without running,
    /// for this reason.
    Skipped(String),
}

impl CompiledFlow {
    /// When `path` comes due for `record`, a change made at `trigger_at`; `None` when its time
    /// source is a field the record leaves empty (Salesforce does not run such a path either).
    pub fn path_due(
        &self,
        path: &ScheduledPath,
        record: &Map<String, Json>,
        trigger_at: DateTime<Utc>,
        cx: &EvalContext,
    ) -> Option<DateTime<Utc>> {
        let base = match &path.field {
            None => trigger_at,
            Some(field) => {
                let value = record.get(field)?;
                match Value::from_json(value, ExprType::DateTime) {
                    Ok(Value::DateTime(at)) => at,
                    _ => match Value::from_json(value, ExprType::Date) {
                        // A date counts from its midnight in the project's time zone.
                        Ok(Value::Date(day)) => cx
                            .tz
                            .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
                            .earliest()?
                            .with_timezone(&Utc),
                        _ => return None,
                    },
                }
            }
        };
        base.checked_add_signed(Duration::minutes(path.offset_minutes))
    }

    /// The run of a scheduled path for a record change, with the time it is due (already past means
    /// at once); `None` when the path has no time for this record.
    #[allow(clippy::too_many_arguments)]
    pub fn new_path_run(
        &self,
        path: &ScheduledPath,
        record: Map<String, Json>,
        prior: Option<Map<String, Json>>,
        user: RunUser,
        interview_id: String,
        cx: &EvalContext,
    ) -> Option<(RunState, DateTime<Utc>)> {
        let due = self.path_due(path, &record, cx.now, cx)?;
        let mut state = self.new_run(record, prior, user, interview_id, cx.now);
        state.cursor = Some(self.elements[path.start].name.clone());
        state.scheduled = Some(ScheduledStart { path: path.name.clone(), due, rechecked: false });
        Some((state, due))
    }

    /// The asynchronous path's run for a record change, when the flow has one.
    pub fn new_async_run(
        &self,
        record: Map<String, Json>,
        prior: Option<Map<String, Json>>,
        user: RunUser,
        interview_id: String,
        now: DateTime<Utc>,
    ) -> Option<RunState> {
        let start = self.async_start?;
        let mut state = self.new_run(record, prior, user, interview_id, now);
        state.cursor = Some(self.elements[start].name.clone());
        Some(state)
    }

    /// A scheduled path's run that has come due and not yet been checked against its record.
    pub fn path_to_recheck<'s>(&self, state: &'s RunState) -> Option<&'s ScheduledStart> {
        state.scheduled.as_ref().filter(|s| !s.rechecked)
    }

    /// The scheduled path a run belongs to, if any.
    pub fn scheduled_of<'s>(&self, state: &'s RunState) -> Option<&'s ScheduledStart> {
        state.scheduled.as_ref()
    }

    /// Checks a due scheduled path against its record as it is now (`None`: deleted): the run goes on
    /// with this record as `$Record` when it still meets the entry condition (and its time source is
    /// still set), and otherwise ends without running an element. Either way the trace says so.
    pub fn recheck_path(
        &self,
        state: &mut RunState,
        record: Option<Map<String, Json>>,
        cx: &EvalContext,
    ) -> PathRecheck {
        let Some(scheduled) = state.scheduled.as_mut() else { return PathRecheck::Runs };
        scheduled.rechecked = true;
        let name = scheduled.path.clone();
        let path = self.scheduled_paths.iter().find(|p| p.name == name);
        let verdict = match (record, path) {
            (_, None) => {
                PathRecheck::Skipped(format!("flow {} no longer has the scheduled path {name}", self.name))
            }
            (None, _) => PathRecheck::Skipped("the record no longer exists".into()),
            (Some(record), Some(path)) => {
                let emptied = path.field.as_ref().filter(|f| record.get(*f).is_none_or(Json::is_null));
                let holds = self.entry_holds(&record, state.prior.as_ref(), cx);
                state.record = record;
                match (emptied, holds) {
                    (Some(field), _) => PathRecheck::Skipped(format!("its time source {field} is now empty")),
                    (None, Ok(true)) => PathRecheck::Runs,
                    (None, Ok(false)) => {
                        PathRecheck::Skipped("the record no longer meets the flow's entry condition".into())
                    }
                    (None, Err(error)) => {
                        PathRecheck::Skipped(format!("the entry condition could not be evaluated: {error}"))
                    }
                }
            }
        };
        let (result, outputs) = match &verdict {
            PathRecheck::Runs => (
                format!("next: {}", state.cursor.as_deref().unwrap_or_default()),
                json!({"entryConditionHolds": true}),
            ),
            PathRecheck::Skipped(reason) => {
                state.cursor = None;
                (format!("skipped: {reason}"), json!({"entryConditionHolds": false}))
            }
        };
        let due = state.scheduled.as_ref().map(|s| s.due.to_rfc3339());
        state.trace.push(crate::runtime::TraceEntry {
            element: name.clone(),
            label: path.map_or_else(|| name.clone(), |p| p.label.clone()),
            kind: "Scheduled Path".into(),
            inputs: json!({"due": due}),
            outputs,
            result,
            fault: None,
            at: cx.now,
            micros: 0,
            flow: None,
        });
        verdict
    }

    /// A waiting scheduled path's due time after its record changed: recomputed when its time source
    /// is a field (Salesforce's rule), so a later date moves it later and an earlier one sooner.
    /// `None` when nothing changes. A field emptied makes it due at once: it then ends skipped.
    pub fn rescheduled_due(
        &self,
        state: &mut RunState,
        record: &Map<String, Json>,
        cx: &EvalContext,
    ) -> Option<DateTime<Utc>> {
        let scheduled = state.scheduled.as_mut().filter(|s| !s.rechecked)?;
        let path = self.scheduled_paths.iter().find(|p| p.name == scheduled.path)?;
        path.field.as_ref()?;
        let due = self.path_due(path, record, cx.now, cx).unwrap_or(cx.now);
        (due != scheduled.due).then(|| {
            scheduled.due = due;
            due
        })
    }

    /// A debug run does not sleep: the Wait it reached is passed at once, and the trace says so.
    pub fn skip_wait(&self, state: &mut RunState) {
        if let Some(mark) = state.waited.as_mut() {
            mark.not_waited = true;
        }
    }

    /// The Wait element at the cursor: `Some(Step::Wait)` to park, or `None` once it is passed (the
    /// run was parked at it, or its time is already past), with the cursor moved on.
    pub(crate) fn wait_step(
        &self,
        state: &mut RunState,
        element: &Element,
        wait: &WaitElement,
        cx: &EvalContext,
    ) -> Option<Step> {
        let next = element.next.map(|n| self.elements[n].name.clone());
        if let Some(mark) = state.waited.take_if(|m| m.element == element.name) {
            state.cursor = next;
            let outputs = if mark.not_waited {
                json!({"waited": false, "note": "herald flow debug does not wait: it went on at once"})
            } else {
                json!({"waited": true})
            };
            push_trace(state, element, "Wait", json!({"until": mark.until.to_rfc3339()}), outputs, cx.now, 0);
            return None;
        }
        let until = match wait {
            WaitElement::Minutes(minutes) => cx.now + Duration::minutes(*minutes),
            WaitElement::Until(formula) => {
                let value = {
                    let scope = self.scope(state, None, cx);
                    formula.eval(&scope, cx)
                };
                match value {
                    Ok(Value::DateTime(at)) => at,
                    Ok(_) => {
                        return Some(self.fail(
                            state,
                            format!("{}: the Wait's `until` formula gave no DateTime", element.name),
                        ));
                    }
                    Err(error) => return Some(self.fail(state, format!("{}: {error}", element.name))),
                }
            }
        };
        if until <= cx.now {
            state.cursor = next;
            let outputs = json!({"waited": false, "note": "the time was already past"});
            push_trace(state, element, "Wait", json!({"until": until.to_rfc3339()}), outputs, cx.now, 0);
            return None;
        }
        state.waited = Some(WaitMark { element: element.name.clone(), until, not_waited: false });
        Some(Step::Wait { element: element.name.clone(), until })
    }
}
