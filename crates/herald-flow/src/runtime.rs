//! The interpreter: a run is a serializable [`RunState`]; [`CompiledFlow::advance`] moves it until it
//! needs an effect (a callout, a record to create), which the caller performs and reports back with
//! [`CompiledFlow::complete_callout`] or [`CompiledFlow::complete_create`]. Nothing here does I/O, so a
//! run can be journaled after every effect and resumed in another process.

use crate::compile::{ITEM, RECORD, RECORDS};
use crate::flow::*;
use crate::records::{RecordFilter, RecordQuery};
use chrono::{DateTime, Utc};
use herald_expr::{Decimal, EvalContext, RefId, Scope, Type as ExprType, Value};
use herald_openapi::{Method, ParamLocation, Shape};
use herald_project::Operator;
use herald_providers::{Provider, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shown in traces instead of a value that comes from a credential.
pub const MASK: &str = "••••••";

/// A run stops with a failure after this many elements, so a loop that never ends cannot spin forever.
/// Large enough for a loop over a few hundred thousand records (a bulk campaign runs about three
/// elements per recipient); Salesforce dropped its own limit of 2,000 in API version 57.
const MAX_STEPS: u32 = 2_000_000;

/// The trace keeps every element until it holds this many entries; after that, Assignment, Decision
/// and Loop entries are counted per element in `trace_omitted` instead (effects are always kept), so
/// a loop over many records neither grows the journal nor slows the run.
pub const TRACE_KEPT: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUser {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub(crate) flow: String,
    pub(crate) interview_id: String,
    pub(crate) user: RunUser,
    pub(crate) record: Map<String, Json>,
    pub(crate) prior: Option<Map<String, Json>>,
    pub(crate) variables: Vec<Json>,
    pub(crate) outputs: BTreeMap<String, Map<String, Json>>,
    pub(crate) fault_message: Option<String>,
    /// The element to run next; `None` once the run has ended.
    pub(crate) cursor: Option<String>,
    /// An effect asked for and not yet completed.
    pub(crate) pending: Option<PendingCallout>,
    /// Set when the run ended in a failure no fault connector caught.
    pub(crate) failure: Option<String>,
    pub(crate) steps: u32,
    pub(crate) trace: Vec<TraceEntry>,
    /// Entries left out of a long trace, by element (see [`TRACE_KEPT`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) trace_omitted: BTreeMap<String, u64>,
    /// Each loop in progress: how many of its items it has taken.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) loops: BTreeMap<String, usize>,
    pub(crate) started_at: DateTime<Utc>,
    /// How many times the run was retried by hand (`herald runs retry`); part of every idempotency
    /// key, so that a deliberate resend is a new message to the provider.
    #[serde(default)]
    pub(crate) generation: u32,
    /// Records reached through lookup fields, by id, as the driver loaded them for the element that
    /// reads them (`null`: no such record). Forgotten after every record write the run makes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) related: BTreeMap<String, Json>,
    /// How many record writes of flows led to this run: 0 for a run a client's write started, one
    /// more for each Update Records in between (see [`MAX_TRIGGER_DEPTH`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) depth: u32,
    /// The run of the subflow the current Subflow element called, while it runs: a frame with its own
    /// variables, cursor and pending effect, journaled with this one (see `subflow.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subflow: Option<Box<RunState>>,
    /// A scheduled path's run: which path, when it is due, and whether the entry condition was
    /// checked again against the record as it was when the path came due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scheduled: Option<crate::paths::ScheduledStart>,
    /// The Wait element the run parked at: the next `advance` goes past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) waited: Option<crate::paths::WaitMark>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// A chain of flows whose Update Records start each other (a flow on update that updates its own
/// record) stops here: the update that would start a run deeper than this fails instead.
pub const MAX_TRIGGER_DEPTH: u32 = 5;

/// The related records a run keeps at most; past it the cache starts over (a loop over many records
/// would otherwise journal every owner it met).
const RELATED_KEPT: usize = 1_000;

/// Read access to a run's state; only the interpreter changes it, through [`CompiledFlow`]'s methods.
impl RunState {
    pub fn flow(&self) -> &str {
        &self.flow
    }

    /// The flow interview's GUID.
    pub fn interview_id(&self) -> &str {
        &self.interview_id
    }

    /// The user the run acts as.
    pub fn user(&self) -> &RunUser {
        &self.user
    }

    /// The record that triggered the run.
    pub fn record(&self) -> &Map<String, Json> {
        &self.record
    }

    /// The callout or effect in progress, in the innermost subflow running.
    pub fn pending(&self) -> Option<&PendingCallout> {
        match &self.subflow {
            Some(child) => child.pending(),
            None => self.pending.as_ref(),
        }
    }

    /// Why the run failed, when no fault connector caught it.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Whether the run has ended (no element left to run).
    pub fn ended(&self) -> bool {
        self.cursor.is_none()
    }

    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Entries left out of a long trace, by element.
    pub fn trace_omitted(&self) -> &BTreeMap<String, u64> {
        &self.trace_omitted
    }

    /// Each element's outputs, by element name.
    pub fn outputs(&self) -> &BTreeMap<String, Map<String, Json>> {
        &self.outputs
    }

    /// The flow's variables, in the order the compiled flow declares them.
    pub fn variables(&self) -> &[Json] {
        &self.variables
    }

    /// Each loop in progress and how many of its items it has taken.
    pub fn loops(&self) -> &BTreeMap<String, usize> {
        &self.loops
    }

    /// How many Update Records of flows led to this run (0: a client's write started it).
    pub fn trigger_depth(&self) -> u32 {
        self.depth
    }

    /// Marks a run started by a flow's record write, `depth` writes down the chain.
    pub fn set_trigger_depth(&mut self, depth: u32) {
        self.depth = depth;
    }

    /// Ends a run before its first element: its entry condition could not be evaluated.
    pub fn fail_before_start(&mut self, message: String) {
        self.failure = Some(message);
        self.cursor = None;
    }
}

/// An effect in progress. `sent` is journaled before a callout leaves, so that after a crash the
/// engine knows the provider may have received it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingCallout {
    pub element: String,
    /// Inputs as the trace shows them (secrets masked).
    pub inputs: Json,
    #[serde(default)]
    pub sent: bool,
    pub started_at: DateTime<Utc>,
    /// Derived from the run, the element and the step, so every resend of this attempt carries the same
    /// key (8x8's `clientMessageId`) and the provider can recognise it.
    #[serde(default)]
    pub idempotency_key: String,
    /// Requests sent for this element so far (retries included).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt will be retried.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the next attempt is due, while the run waits.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// An earlier attempt may have reached the provider (its answer was lost): if the retries give up,
    /// the message may still have gone out.
    #[serde(default)]
    pub maybe_arrived: bool,
}

/// `hrld-` and 32 hex digits, short enough for every provider's client id (8x8 Chat Apps allows 50):
/// 12 of the time the send was reached (milliseconds), so that keys, and the ledger's index of them,
/// grow in creation order; 20 of a digest of the run, the element, the step and the generation. Made
/// once per send and journaled with it: resends and automatic retries reuse it.
fn idempotency_key(
    interview_id: &str,
    element: &str,
    step: u32,
    generation: u32,
    at: DateTime<Utc>,
) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{interview_id}/{element}/{step}/{generation}").as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    let millis = at.timestamp_millis().clamp(0, 0xffff_ffff_ffff);
    format!("hrld-{millis:012x}{hex}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceEntry {
    pub element: String,
    pub label: String,
    pub kind: String,
    pub inputs: Json,
    pub outputs: Json,
    /// Where the run went: `next: x`, `fault: y`, `end`, or `failed`.
    pub result: String,
    pub fault: Option<String>,
    pub at: DateTime<Utc>,
    /// How long the element took, in microseconds (the callout's round trip for actions).
    pub micros: u64,
    /// The subflow the element belongs to; `None` for the flow the run started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
}

pub enum Step {
    Effect(Effect),
    Finished,
    Failed {
        message: String,
    },
    /// A Wait element: park the run until `until` (durably, for a stored run), then call `advance`
    /// again, which goes past the Wait.
    Wait {
        element: String,
        until: DateTime<Utc>,
    },
}

#[derive(Clone, Debug)]
pub enum Effect {
    /// An action's callout: the driver opens the credential's secrets, asks for the request with
    /// [`CompiledFlow::prepare_callout`], and reports the outcome with [`CompiledFlow::complete_callout`]
    /// or [`CompiledFlow::schedule_retry`].
    Callout(CalloutEffect),
    CreateRecord {
        element: String,
        object: String,
        fields: Map<String, Json>,
    },
    /// Read the records the query asks for and report them with [`CompiledFlow::complete_get`].
    GetRecords {
        element: String,
        query: RecordQuery,
    },
    /// Update Records: write the change as one transaction (validated like every write, starting
    /// the flows it triggers) and report it with [`CompiledFlow::complete_change`].
    UpdateRecords {
        element: String,
        change: Box<RecordChange>,
    },
    /// Delete Records: delete the records in one transaction and report with
    /// [`CompiledFlow::complete_change`].
    DeleteRecords {
        element: String,
        change: Box<RecordChange>,
    },
    /// Read these records (object, id), which the element reaches through lookup fields, and hand
    /// them over with [`CompiledFlow::complete_related`] before the element runs.
    LoadRelated {
        element: String,
        records: Vec<(String, String)>,
    },
}

/// The records an Update or Delete Records element changes, and how.
#[derive(Clone, Debug)]
pub struct RecordChange {
    pub object: String,
    pub target: ChangeTarget,
    /// The most records the change may touch; more is a fault of the element, and nothing changes.
    pub max_rows: u64,
}

#[derive(Clone, Debug)]
pub enum ChangeTarget {
    /// Records by id, each with the fields to set (empty for a delete).
    Records(Vec<(String, Map<String, Json>)>),
    /// Every record the query matches (its conditions evaluated), with the fields to set on each.
    Matching { query: RecordQuery, fields: Map<String, Json> },
}

/// What a callout needs from the driver: the credentials to send with and the action's retry policy.
#[derive(Clone, Debug)]
pub struct CalloutEffect {
    pub element: String,
    pub named_credential: String,
    pub external_credential: String,
    pub provider: Provider,
    pub retry: RetryPolicy,
}

/// A callout that failed in a way worth retrying, as the driver reports it.
#[derive(Clone, Debug)]
pub struct RetryAt {
    pub at: DateTime<Utc>,
    pub error: String,
    pub micros: u64,
    /// The request may have reached the provider before its answer was lost.
    pub maybe_arrived: bool,
}

/// A callout ready to send, relative to its named credential.
#[derive(Clone, Debug)]
pub struct PreparedCallout {
    /// `KixieService.Send_SMS`, for messages.
    pub action: String,
    pub service: String,
    pub operation: String,
    pub named_credential: String,
    pub external_credential: String,
    pub provider: Provider,
    pub method: Method,
    /// The path with its parameters filled in, each percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Json>,
    pub body_encoding: herald_openapi::BodyEncoding,
    pub idempotency_key: String,
}

/// The parameters of the principal a callout runs under.
pub trait SecretSource {
    fn secret(&self, parameter: &str) -> Option<Arc<str>>;
}

/// What the engine learned from a callout.
#[derive(Clone, Debug)]
pub struct CalloutResult {
    pub status: Option<u16>,
    pub body: String,
    /// The fault, when the provider's rules call the answer a failure (or nothing was answered).
    pub fault: Option<String>,
    pub micros: u64,
    /// Messages of a batch that were not sent, as (destination, why): shown as the `leftOut` output.
    pub left_out: Vec<(String, String)>,
}

pub(crate) struct RunScope<'a> {
    flow: &'a CompiledFlow,
    record: &'a Map<String, Json>,
    prior: Option<&'a Map<String, Json>>,
    state: Option<&'a RunState>,
    secrets: Option<&'a dyn SecretSource>,
    now: DateTime<Utc>,
    tz: herald_expr::Tz,
    /// The first formula resource that failed while being read: [`Scope::value`] cannot fail, so the
    /// reader checks this after each value ([`RunScope::check`]) and the run fails as in Salesforce.
    formula_error: std::cell::RefCell<Option<String>>,
}

impl RunScope<'_> {
    /// Fails when a formula resource read since the last check could not be evaluated.
    fn check(&self) -> Result<(), String> {
        match self.formula_error.borrow_mut().take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn json_value(value: Option<&Json>, ty: ExprType) -> Value {
    match value {
        None => Value::Null,
        Some(json) => Value::from_json(json, ty).unwrap_or(Value::Null),
    }
}

fn walk<'a>(mut value: &'a Json, path: &[String]) -> Option<&'a Json> {
    for segment in path {
        value = value.get(segment)?;
    }
    Some(value)
}

impl Scope for RunScope<'_> {
    fn value(&self, id: RefId) -> Value {
        let Some(slot) = self.flow.slots.get(id.0 as usize) else { return Value::Null };
        match slot {
            Slot::Record { field, ty } => json_value(self.record.get(field), *ty),
            Slot::Prior { field, ty } => json_value(self.prior.and_then(|p| p.get(field)), *ty),
            Slot::FaultMessage => {
                self.state.and_then(|s| s.fault_message.as_deref()).map_or(Value::Null, Value::text)
            }
            Slot::CurrentDateTime => Value::DateTime(self.now),
            Slot::CurrentDate => Value::Date(self.now.with_timezone(&self.tz).date_naive()),
            Slot::InterviewGuid => self.state.map_or(Value::Null, |s| Value::text(s.interview_id.as_str())),
            Slot::UserId => self.state.map_or(Value::Null, |s| Value::text(s.user.id.as_str())),
            Slot::UserName => self.state.map_or(Value::Null, |s| Value::text(s.user.name.as_str())),
            Slot::Constant(value) => value.clone(),
            Slot::Credential { parameter } => {
                self.secrets.and_then(|s| s.secret(parameter)).map_or(Value::Null, Value::Text)
            }
            Slot::Variable { index, path, ty } => {
                let variable = self.state.and_then(|s| s.variables.get(*index));
                json_value(variable.and_then(|v| walk(v, path)), *ty)
            }
            Slot::Output { element, name, path, ty } => {
                let output = self.state.and_then(|s| s.outputs.get(element)).and_then(|o| o.get(name));
                json_value(output.and_then(|o| walk(o, path)), *ty)
            }
            Slot::Related { base, hops, field, ty } => {
                let Some(state) = self.state else { return Value::Null };
                let mut record = base_record(state, self.record, base);
                for hop in hops {
                    let id = record.and_then(|r| r.get(&hop.field)).and_then(Json::as_str);
                    record = id.and_then(|id| state.related.get(id)).and_then(Json::as_object);
                }
                json_value(record.and_then(|r| r.get(field)), *ty)
            }
            Slot::Formula { index, .. } => {
                let Some(resource) = self.flow.formulas.get(*index) else { return Value::Null };
                let cx = EvalContext::new(self.now).with_zone(self.tz);
                resource.formula.eval(self, &cx).unwrap_or_else(|error| {
                    self.formula_error.borrow_mut().get_or_insert_with(|| {
                        format!("the formula `{}` could not be evaluated: {error}", resource.name)
                    });
                    Value::Null
                })
            }
            Slot::TextTemplate(index) => {
                let Some(resource) = self.flow.text_templates.get(*index) else { return Value::Null };
                let cx = EvalContext::new(self.now).with_zone(self.tz);
                match resource.template.render(self, &cx) {
                    Ok(text) => Value::text(text.as_str()),
                    Err(error) => {
                        self.formula_error.borrow_mut().get_or_insert_with(|| {
                            format!("the text template `{}` could not be rendered: {error}", resource.name)
                        });
                        Value::Null
                    }
                }
            }
        }
    }
}

/// The record a traversal starts from.
fn base_record<'a>(
    state: &'a RunState,
    record: &'a Map<String, Json>,
    base: &RelatedBase,
) -> Option<&'a Map<String, Json>> {
    match base {
        RelatedBase::Record => Some(record),
        RelatedBase::Variable(index) => state.variables.get(*index).and_then(Json::as_object),
        RelatedBase::Output { element, name } => {
            state.outputs.get(element).and_then(|o| o.get(name)).and_then(Json::as_object)
        }
    }
}

impl CompiledFlow {
    pub(crate) fn scope<'a>(
        &'a self,
        state: &'a RunState,
        secrets: Option<&'a dyn SecretSource>,
        cx: &EvalContext,
    ) -> RunScope<'a> {
        RunScope {
            flow: self,
            record: &state.record,
            prior: state.prior.as_ref(),
            state: Some(state),
            secrets,
            now: cx.now,
            tz: cx.tz,
            formula_error: Default::default(),
        }
    }

    /// Whether a change of a record starts this flow: the entry condition holds for the record as it
    /// is now and, with "only when updated to meet", did not hold before the change.
    pub fn entry_holds(
        &self,
        record: &Map<String, Json>,
        prior: Option<&Map<String, Json>>,
        cx: &EvalContext,
    ) -> Result<bool, String> {
        let Some(condition) = &self.entry else { return Ok(true) };
        let now = RunScope {
            flow: self,
            record,
            prior,
            state: None,
            secrets: None,
            now: cx.now,
            tz: cx.tz,
            formula_error: Default::default(),
        };
        if !self.condition_holds(condition, &now, cx)? {
            return Ok(false);
        }
        match (self.only_when_updated_to_meet, prior) {
            (true, Some(prior)) => {
                let before = RunScope {
                    flow: self,
                    record: prior,
                    prior: None,
                    state: None,
                    secrets: None,
                    now: cx.now,
                    tz: cx.tz,
                    formula_error: Default::default(),
                };
                Ok(!self.condition_holds(condition, &before, cx)?)
            }
            _ => Ok(true),
        }
    }

    pub fn new_run(
        &self,
        record: Map<String, Json>,
        prior: Option<Map<String, Json>>,
        user: RunUser,
        interview_id: String,
        now: DateTime<Utc>,
    ) -> RunState {
        RunState {
            flow: self.name.clone(),
            interview_id,
            user,
            record,
            prior,
            variables: self.variables.iter().map(|v| v.default.clone()).collect(),
            outputs: BTreeMap::new(),
            fault_message: None,
            cursor: Some(self.elements[self.start].name.clone()),
            pending: None,
            failure: None,
            steps: 0,
            trace: Vec::new(),
            trace_omitted: BTreeMap::new(),
            loops: BTreeMap::new(),
            started_at: now,
            generation: 0,
            related: BTreeMap::new(),
            depth: 0,
            subflow: None,
            scheduled: None,
            waited: None,
        }
    }

    /// Starts a run of an autolaunched flow from values for its input variables (Salesforce's
    /// "Available for input"); the others keep their defaults, and there is no `$Record`. Each value is
    /// checked against its variable's type, so a wrong one is refused before anything is sent. Every
    /// problem is reported at once, one per line, each naming its variable.
    pub fn new_autolaunched_run(
        &self,
        inputs: &Map<String, Json>,
        user: RunUser,
        interview_id: String,
        now: DateTime<Utc>,
    ) -> Result<RunState, String> {
        if let Some(trigger) = &self.trigger {
            return Err(format!(
                "flow {} is record-triggered (on {}); it starts from a record, not from input values",
                self.name, trigger.object
            ));
        }
        let mut state = self.new_run(Map::new(), None, user, interview_id, now);
        let mut problems = Vec::new();
        for (name, value) in inputs {
            let Some(index) = self.variables.iter().position(|v| v.name.eq_ignore_ascii_case(name)) else {
                let inputs: Vec<&str> = self.input_variables().map(|(n, _)| n).collect();
                let hint = herald_project::did_you_mean(name, inputs.iter().copied()).unwrap_or_else(|| {
                    if inputs.is_empty() {
                        "it has no input variables; declare one with `input: true`".into()
                    } else {
                        format!("its input variables are: {}", inputs.join(", "))
                    }
                });
                problems.push(format!("flow {} has no variable `{name}`; {hint}", self.name));
                continue;
            };
            let variable = &self.variables[index];
            if !variable.input {
                problems.push(format!(
                    "variable `{}` is not available for input; mark it `input: true` in the flow",
                    variable.name
                ));
                continue;
            }
            match input_value(variable, value) {
                Ok(value) => state.variables[index] = value,
                Err(error) => {
                    problems.push(format!("input `{}` ({}): {error}", variable.name, variable.type_name()))
                }
            }
        }
        if problems.is_empty() { Ok(state) } else { Err(problems.join("\n")) }
    }

    /// The variables marked `output: true` (Salesforce's "Available for output") with their values
    /// in `state`, in declaration order.
    pub fn output_values<'s>(&'s self, state: &'s RunState) -> impl Iterator<Item = (&'s str, &'s Json)> {
        self.variables
            .iter()
            .zip(&state.variables)
            .filter(|(variable, _)| variable.output)
            .map(|(variable, value)| (variable.name.as_str(), value))
    }

    pub(crate) fn element(&self, name: &str) -> Option<&Element> {
        self.element_index.get(name).map(|i| &self.elements[*i])
    }

    pub(crate) fn fail(&self, state: &mut RunState, message: String) -> Step {
        state.cursor = None;
        state.pending = None;
        state.failure = Some(message.clone());
        Step::Failed { message }
    }

    /// Runs elements until the run needs an effect or ends.
    pub fn advance(&self, state: &mut RunState, cx: &EvalContext) -> Step {
        loop {
            if state.subflow.is_some()
                && let Some(step) = self.advance_subflow(state, cx)
            {
                return step;
            }
            if let Some(failure) = &state.failure {
                return Step::Failed { message: failure.clone() };
            }
            if let Some(pending) = &state.pending {
                return match self.pending_effect(state, &pending.element.clone(), cx) {
                    Ok(effect) => Step::Effect(effect),
                    Err(message) => self.fail(state, message),
                };
            }
            let Some(cursor) = state.cursor.clone() else { return Step::Finished };
            if let Some(element) = self.element(&cursor)
                && !element.related.is_empty()
            {
                let records = self.missing_related(element, state);
                if !records.is_empty() {
                    return Step::Effect(Effect::LoadRelated { element: element.name.clone(), records });
                }
            }
            state.steps += 1;
            if state.steps > MAX_STEPS {
                return self.fail(
                    state,
                    format!("the run executed more than {MAX_STEPS} elements; check the flow for a loop"),
                );
            }
            let Some(element) = self.element(&cursor) else {
                return self
                    .fail(state, format!("element `{cursor}` no longer exists in flow {}", self.name));
            };
            let started = cx.now;
            match &element.kind {
                ElementKind::Assign(items) => {
                    let traced = keeps_trace(state, element);
                    let mut assigned = Map::new();
                    for item in items {
                        let label = || {
                            std::iter::once(self.variables[item.variable].name.as_str())
                                .chain(item.path.iter().map(String::as_str))
                                .collect::<Vec<_>>()
                                .join(".")
                        };
                        if let Some(count) = count_without_copy(item, state) {
                            *assignment_target(state, item) = Json::from(count);
                        } else {
                            let value = {
                                let scope = self.scope(state, None, cx);
                                match self.eval_value(&item.value, &scope, state, cx) {
                                    Ok(value) => value,
                                    Err(message) => {
                                        return self.fail(state, format!("{}: {message}", element.name));
                                    }
                                }
                            };
                            if let Err(message) = apply_assignment(state, item, value) {
                                let message = format!("{}: `{}`: {message}", element.name, label());
                                return self.fail(state, message);
                            }
                        }
                        if traced {
                            let after = walk(&state.variables[item.variable], &item.path);
                            assigned.insert(label(), after.map_or(Json::Null, trace_value));
                        }
                    }
                    state.cursor = element.next.map(|n| self.elements[n].name.clone());
                    if traced {
                        push_trace(
                            state,
                            element,
                            "Assignment",
                            Json::Null,
                            Json::Object(assigned),
                            started,
                            0,
                        );
                    }
                }
                ElementKind::Decision { outcomes, default } => {
                    let mut chosen = None;
                    for outcome in outcomes {
                        let holds = {
                            let scope = self.scope(state, None, cx);
                            self.condition_holds(&outcome.condition, &scope, cx)
                        };
                        match holds {
                            Ok(true) => {
                                chosen = Some((outcome.name.clone(), outcome.next));
                                break;
                            }
                            Ok(false) => {}
                            Err(message) => return self.fail(state, format!("{}: {message}", element.name)),
                        }
                    }
                    let (outcome, next) = chosen.unwrap_or_else(|| ("default".to_string(), *default));
                    state.cursor = next.map(|n| self.elements[n].name.clone());
                    if keeps_trace(state, element) {
                        let outputs = serde_json::json!({ "outcome": outcome });
                        push_trace(state, element, "Decision", Json::Null, outputs, started, 0);
                    }
                }
                ElementKind::Loop(looping) => self.take_next_item(state, element, looping, started),
                ElementKind::Wait(wait) => {
                    if let Some(until) = self.wait_step(state, element, wait, cx) {
                        return until;
                    }
                }
                ElementKind::Subflow(call) => self.enter_subflow(state, element, call, cx),
                ElementKind::Action(_)
                | ElementKind::Create(_)
                | ElementKind::Get(_)
                | ElementKind::Update(_)
                | ElementKind::Delete(_) => {
                    let key = idempotency_key(
                        &state.interview_id,
                        &element.name,
                        state.steps,
                        state.generation,
                        cx.now,
                    );
                    state.pending = Some(PendingCallout {
                        element: element.name.clone(),
                        inputs: Json::Null,
                        sent: false,
                        started_at: cx.now,
                        idempotency_key: key,
                        attempts: 0,
                        first_attempt_at: None,
                        last_error: None,
                        next_attempt_at: None,
                        maybe_arrived: false,
                    });
                    let name = element.name.clone();
                    return match self.pending_effect(state, &name, cx) {
                        Ok(effect) => Step::Effect(effect),
                        Err(message) => {
                            self.complete(state, Json::Null, Err(message), cx.now, 0);
                            continue;
                        }
                    };
                }
            }
        }
    }

    fn pending_effect(&self, state: &mut RunState, name: &str, cx: &EvalContext) -> Result<Effect, String> {
        let Some(element) = self.element(name) else {
            return Err(format!("element `{name}` no longer exists in flow {}", self.name));
        };
        match &element.kind {
            ElementKind::Action(action) => Ok(Effect::Callout(CalloutEffect {
                element: name.to_string(),
                named_credential: action.named_credential.clone(),
                external_credential: action.external_credential.clone(),
                provider: action.provider,
                retry: action.retry,
            })),
            ElementKind::Create(create) => {
                let mut fields = Map::new();
                {
                    let scope = self.scope(state, None, cx);
                    for (field, expr) in &create.fields {
                        fields.insert(field.clone(), self.eval_value(expr, &scope, state, cx)?);
                    }
                }
                if let Some(pending) = &mut state.pending {
                    pending.inputs = Json::Object(fields.clone());
                }
                Ok(Effect::CreateRecord { element: name.to_string(), object: create.object.clone(), fields })
            }
            ElementKind::Get(get) => {
                let query = self.record_query(get, state, cx)?;
                if let Some(pending) = &mut state.pending {
                    pending.inputs = query.describe();
                }
                Ok(Effect::GetRecords { element: name.to_string(), query })
            }
            ElementKind::Update(change) | ElementKind::Delete(change) => {
                let deleting = matches!(element.kind, ElementKind::Delete(_));
                let change = Box::new(self.record_change(change, state, cx)?);
                if let Some(pending) = &mut state.pending {
                    pending.inputs = change.describe();
                }
                let element = name.to_string();
                Ok(if deleting {
                    Effect::DeleteRecords { element, change }
                } else {
                    Effect::UpdateRecords { element, change }
                })
            }
            _ => Err(format!("element `{name}` performs no effect")),
        }
    }

    /// The action element a pending callout belongs to: its named and external credential.
    pub fn pending_credential(&self, state: &RunState) -> Option<CredentialUse<'_>> {
        if let (Some(flow), Some(child)) = (self.running_subflow(state), state.subflow.as_deref()) {
            return flow.pending_credential(child);
        }
        let element = self.element(&state.pending.as_ref()?.element)?;
        match &element.kind {
            ElementKind::Action(action) => Some(CredentialUse {
                element: &element.name,
                named_credential: &action.named_credential,
                external_credential: &action.external_credential,
                provider: action.provider,
            }),
            _ => None,
        }
    }

    /// Builds the pending callout's request from the run's values and the principal's secrets. The body
    /// is built as a JSON value, never as text, so no value can break its structure.
    pub fn prepare_callout(
        &self,
        state: &mut RunState,
        secrets: &dyn SecretSource,
        cx: &EvalContext,
    ) -> Result<PreparedCallout, String> {
        if let Some(prepared) = self.in_subflow(state, |flow, child| flow.prepare_callout(child, secrets, cx))
        {
            return prepared;
        }
        let name = state.pending.as_ref().map(|p| p.element.clone()).ok_or("no callout is pending")?;
        let element = self.element(&name).ok_or_else(|| format!("element `{name}` no longer exists"))?;
        let ElementKind::Action(action) = &element.kind else {
            return Err(format!("`{name}` is not an action"));
        };
        let mut path_values = Vec::new();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        let mut body: Option<Json> = None;
        let mut fields = Map::new();
        let mut shown = Map::new();
        {
            let scope = self.scope(state, Some(secrets), cx);
            for input in &action.inputs {
                if let Some(missing) =
                    input.credential_parameters.iter().find(|p| secrets.secret(p).is_none())
                {
                    return Err(format!(
                        "input `{}` of {}.{} needs the credential parameter `{missing}`, which has no value; set it with `herald credential set {} <principal> {missing}`",
                        input.name, action.service, action.operation, action.external_credential
                    ));
                }
                let value = coerce(self.eval_value(&input.value, &scope, state, cx)?, &input.shape);
                let secret = !input.credential_parameters.is_empty();
                shown.insert(
                    input.name.clone(),
                    if secret { Json::String(MASK.into()) } else { value.clone() },
                );
                match &input.target {
                    InputTarget::Parameter(ParamLocation::Path) => {
                        path_values.push((input.name.clone(), plain_text(&value)))
                    }
                    InputTarget::Parameter(ParamLocation::Query) => {
                        query.push((input.name.clone(), plain_text(&value)))
                    }
                    InputTarget::Parameter(ParamLocation::Header) => {
                        headers.push((input.name.clone(), plain_text(&value)))
                    }
                    InputTarget::Body => body = Some(value),
                    InputTarget::BodyField => {
                        fields.insert(input.name.clone(), value);
                    }
                }
            }
        }
        if !fields.is_empty() {
            let mut object = match body.take() {
                Some(Json::Object(object)) => object,
                Some(_) => return Err("the body is not an object, so fields cannot be added to it".into()),
                None => Map::new(),
            };
            object.extend(fields);
            body = Some(Json::Object(object));
        }
        let path = fill_path(&action.path, &path_values)?;
        let key = state.pending.as_ref().map(|p| p.idempotency_key.clone()).unwrap_or_default();
        if let Some(body) = &mut body
            && !key.is_empty()
            && let Some(placed) = action.provider.place_idempotency_key(body, &key)
            && let Some(field) = action.provider.idempotency_field()
        {
            shown.insert(field.field.to_string(), Json::String(placed));
        }
        if let Some(pending) = &mut state.pending {
            pending.inputs = shown_in_trace(Json::Object(shown));
        }
        Ok(PreparedCallout {
            action: format!("{}.{}", action.service, action.operation),
            service: action.service.clone(),
            operation: action.operation.clone(),
            named_credential: action.named_credential.clone(),
            external_credential: action.external_credential.clone(),
            provider: action.provider,
            method: action.method,
            path,
            query,
            headers,
            body,
            body_encoding: action.body_encoding,
            idempotency_key: key,
        })
    }

    /// Marks the pending callout as sent: journal this before the request leaves.
    pub fn mark_sent(&self, state: &mut RunState, now: DateTime<Utc>) {
        if self.in_subflow(state, |flow, child| flow.mark_sent(child, now)).is_some() {
            return;
        }
        if let Some(pending) = &mut state.pending {
            pending.sent = true;
            pending.attempts += 1;
            pending.first_attempt_at.get_or_insert(now);
            pending.next_attempt_at = None;
        }
    }

    /// The pending callout failed in a way worth retrying: it stays pending, not sent, until `at`. The
    /// trace keeps the failed attempt.
    pub fn schedule_retry(&self, state: &mut RunState, retry: RetryAt, now: DateTime<Utc>) {
        let retry = match self
            .in_subflow_with(state, retry, |flow, child, retry| flow.schedule_retry(child, retry, now))
        {
            Ok(()) => return,
            Err(retry) => retry,
        };
        let RetryAt { at, error, micros, maybe_arrived } = retry;
        let Some(pending) = state.pending.as_mut() else { return };
        pending.sent = false;
        pending.maybe_arrived |= maybe_arrived;
        pending.last_error = Some(error.clone());
        pending.next_attempt_at = Some(at);
        let (name, inputs, attempt) = (pending.element.clone(), pending.inputs.clone(), pending.attempts);
        if let Some(element) = self.element(&name) {
            let mut entry = trace_entry(element, "Action", inputs, Json::Null, now, micros);
            entry.result = format!("retry {} at {}", attempt + 1, at.to_rfc3339());
            entry.fault = Some(error);
            state.trace.push(entry);
        }
    }

    /// Makes a waiting callout due at once: the same attempt, with the same idempotency key, sooner.
    /// Returns the element it belongs to.
    pub fn retry_now(&self, state: &mut RunState) -> Option<String> {
        if let Some(element) = self.in_subflow(state, |flow, child| flow.retry_now(child)) {
            return element;
        }
        let pending = state.pending.as_mut()?;
        pending.next_attempt_at = None;
        Some(pending.element.clone())
    }

    /// The element a failed or interrupted run stopped at: the pending one, or the one whose fault
    /// ended the run.
    pub fn stopped_at(&self, state: &RunState) -> Option<String> {
        // Stopped inside a subflow: the Subflow element calls it again from its start.
        if state.subflow.is_some() {
            return state.cursor.clone();
        }
        if let Some(pending) = &state.pending {
            return Some(pending.element.clone());
        }
        state.trace.iter().rev().find(|t| t.result == "failed").map(|t| t.element.clone())
    }

    /// Prepares an ended run to run again from `element` (by default where it stopped). The retry is a
    /// new generation: its sends carry new idempotency keys, because resending is what was asked for.
    pub fn restart(&self, state: &mut RunState, element: Option<&str>) -> Result<String, String> {
        let from = match element {
            Some(name) => name.to_string(),
            None => self.stopped_at(state).ok_or_else(|| {
                "the run did not stop at an element (it finished); name one with --from-element".to_string()
            })?,
        };
        if self.element(&from).is_none() {
            let names: Vec<&str> = self.elements.iter().map(|e| e.name.as_str()).collect();
            let hint = herald_project::did_you_mean(&from, names.iter().copied())
                .unwrap_or_else(|| format!("its elements are: {}", names.join(", ")));
            return Err(format!("flow {} has no element `{from}` ({hint})", self.name));
        }
        state.pending = None;
        state.subflow = None;
        state.failure = None;
        state.fault_message = None;
        state.cursor = Some(from.clone());
        state.steps = 0;
        state.generation += 1;
        // Related records may have changed since: a retried run reads them again.
        state.related.clear();
        Ok(from)
    }

    pub fn complete_callout(&self, state: &mut RunState, result: CalloutResult, now: DateTime<Utc>) {
        let result = match self
            .in_subflow_with(state, result, |flow, child, result| flow.complete_callout(child, result, now))
        {
            Ok(()) => return,
            Err(result) => result,
        };
        let inputs = state.pending.as_ref().map(|p| p.inputs.clone()).unwrap_or(Json::Null);
        let name = state.pending.as_ref().map(|p| p.element.clone()).unwrap_or_default();
        let mut outputs = Map::new();
        if let Some(status) = result.status {
            outputs.insert("responseCode".into(), Json::from(status));
        }
        outputs.insert("responseBody".into(), Json::String(result.body.clone()));
        if !result.left_out.is_empty() {
            let left_out = result
                .left_out
                .iter()
                .map(|(destination, why)| serde_json::json!({ "destination": destination, "reason": why }));
            outputs.insert("leftOut".into(), Json::Array(left_out.collect()));
        }
        // The typed body, under the declared status it matches (`200`, then `2XX`, then `default`).
        if let (Some(status), Some(element)) = (result.status, self.element(&name))
            && let ElementKind::Action(action) = &element.kind
            && let Some(key) = matching_response(&action.responses, status)
            && let Ok(parsed) = serde_json::from_str::<Json>(&result.body)
        {
            outputs.insert(key.to_string(), parsed);
        }
        state.outputs.insert(name.clone(), outputs.clone());
        if let Some(element) = self.element(&name)
            && let ElementKind::Action(action) = &element.kind
        {
            for (output, variable) in &action.outputs {
                if let Some(value) = outputs.get(output) {
                    state.variables[*variable] = value.clone();
                }
            }
        }
        let outcome = match result.fault {
            Some(fault) => Err(fault),
            None => Ok(()),
        };
        self.complete(state, inputs, outcome.map(|()| Json::Object(outputs)), now, result.micros);
    }

    /// Completes a Create Records effect; `truncated` names the text fields cut to their length.
    pub fn complete_create(
        &self,
        state: &mut RunState,
        result: Result<String, String>,
        truncated: &[String],
        now: DateTime<Utc>,
        micros: u64,
    ) {
        let result = match self.in_subflow_with(state, result, |flow, child, result| {
            flow.complete_create(child, result, truncated, now, micros)
        }) {
            Ok(()) => return,
            Err(result) => result,
        };
        let inputs = state.pending.as_ref().map(|p| p.inputs.clone()).unwrap_or(Json::Null);
        let name = state.pending.as_ref().map(|p| p.element.clone()).unwrap_or_default();
        let outputs = result.map(|id| {
            let mut outputs = Map::new();
            outputs.insert("Id".into(), Json::String(id.clone()));
            if !truncated.is_empty() {
                outputs.insert("truncatedFields".into(), Json::from(truncated.to_vec()));
            }
            state.outputs.insert(name.clone(), outputs.clone());
            state.related.clear();
            if let Some(element) = self.element(&name)
                && let ElementKind::Create(create) = &element.kind
                && let Some(variable) = create.store_id_in
            {
                state.variables[variable] = Json::String(id);
            }
            Json::Object(outputs)
        });
        self.complete(state, inputs, outputs, now, micros);
    }

    /// Ends the pending effect: on success go to `next`; on a fault follow the fault connector, or fail.
    fn complete(
        &self,
        state: &mut RunState,
        inputs: Json,
        outcome: Result<Json, String>,
        now: DateTime<Utc>,
        micros: u64,
    ) {
        let name = state.pending.take().map(|p| p.element).unwrap_or_default();
        let Some(element) = self.element(&name) else {
            state.failure = Some(format!("element `{name}` no longer exists in flow {}", self.name));
            state.cursor = None;
            return;
        };
        let kind = match element.kind {
            ElementKind::Create(_) => "Create Records",
            ElementKind::Get(_) => "Get Records",
            ElementKind::Update(_) => "Update Records",
            ElementKind::Delete(_) => "Delete Records",
            _ => "Action",
        };
        match outcome {
            Ok(outputs) => {
                state.cursor = element.next.map(|n| self.elements[n].name.clone());
                push_trace(state, element, kind, inputs, outputs, now, micros);
            }
            Err(fault) => {
                state.fault_message = Some(fault.clone());
                match element.fault {
                    Some(target) => {
                        let target = self.elements[target].name.clone();
                        state.cursor = Some(target.clone());
                        let mut entry = trace_entry(element, kind, inputs, Json::Null, now, micros);
                        entry.result = format!("fault: {target}");
                        entry.fault = Some(fault);
                        state.trace.push(entry);
                    }
                    None => {
                        state.cursor = None;
                        state.failure = Some(fault.clone());
                        let mut entry = trace_entry(element, kind, inputs, Json::Null, now, micros);
                        entry.result = "failed".into();
                        entry.fault = Some(fault);
                        state.trace.push(entry);
                    }
                }
            }
        }
    }

    pub(crate) fn eval_value(
        &self,
        expr: &ValueExpr,
        scope: &RunScope<'_>,
        state: &RunState,
        cx: &EvalContext,
    ) -> Result<Json, String> {
        let value = self.eval_value_unchecked(expr, scope, state, cx)?;
        scope.check()?;
        Ok(value)
    }

    fn eval_value_unchecked(
        &self,
        expr: &ValueExpr,
        scope: &RunScope<'_>,
        state: &RunState,
        cx: &EvalContext,
    ) -> Result<Json, String> {
        Ok(match expr {
            ValueExpr::Literal(value) => value.clone(),
            ValueExpr::Template(template) => {
                Json::String(template.render(scope, cx).map_err(|e| e.to_string())?)
            }
            ValueExpr::Reference(id) => scope.value(*id).to_json(),
            ValueExpr::WholeVariable(index) => state.variables.get(*index).cloned().unwrap_or(Json::Null),
            ValueExpr::WholeOutput { element, name } => {
                state.outputs.get(element).and_then(|o| o.get(name)).cloned().unwrap_or(Json::Null)
            }
            ValueExpr::Object(fields) => {
                let mut object = Map::new();
                for (key, value) in fields {
                    object.insert(key.clone(), self.eval_value(value, scope, state, cx)?);
                }
                Json::Object(object)
            }
            ValueExpr::Array(items) => Json::Array(
                items.iter().map(|i| self.eval_value(i, scope, state, cx)).collect::<Result<_, _>>()?,
            ),
        })
    }

    fn condition_holds(
        &self,
        condition: &Condition,
        scope: &RunScope<'_>,
        cx: &EvalContext,
    ) -> Result<bool, String> {
        let holds = match condition {
            Condition::Formula(formula) => match formula.eval(scope, cx).map_err(|e| e.to_string())? {
                Value::Boolean(b) => b,
                _ => false,
            },
            Condition::List { items, logic } => {
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    results.push(self.item_holds(item, scope, cx)?);
                }
                logic.evaluate(&results)
            }
        };
        scope.check()?;
        Ok(holds)
    }

    fn item_holds(
        &self,
        item: &ConditionItem,
        scope: &RunScope<'_>,
        cx: &EvalContext,
    ) -> Result<bool, String> {
        let left = scope.value(item.left);
        let right_json = match scope.state {
            Some(state) => self.eval_value(&item.right, scope, state, cx)?,
            None => match &item.right {
                ValueExpr::Literal(value) => value.clone(),
                ValueExpr::Reference(id) => scope.value(*id).to_json(),
                ValueExpr::Template(template) => {
                    Json::String(template.render(scope, cx).map_err(|e| e.to_string())?)
                }
                _ => Json::Null,
            },
        };
        let flag = right_json.as_bool().unwrap_or(true);
        let right = Value::from_json(&right_json, item.left_type).unwrap_or_else(|_| match &right_json {
            Json::String(s) => Value::text(s.as_str()),
            _ => Value::Null,
        });
        use std::cmp::Ordering::*;
        Ok(match item.operator {
            Operator::EqualTo => herald_expr::equals(&left, &right),
            Operator::NotEqualTo => !herald_expr::equals(&left, &right),
            Operator::GreaterThan => herald_expr::compare(&left, &right) == Some(Greater),
            Operator::LessThan => herald_expr::compare(&left, &right) == Some(Less),
            Operator::GreaterThanOrEqualTo => {
                matches!(herald_expr::compare(&left, &right), Some(Greater | Equal))
            }
            Operator::LessThanOrEqualTo => matches!(herald_expr::compare(&left, &right), Some(Less | Equal)),
            Operator::StartsWith => !left.is_null() && left.to_text().starts_with(&right.to_text()),
            Operator::EndsWith => !left.is_null() && left.to_text().ends_with(&right.to_text()),
            Operator::Contains => !left.is_null() && left.to_text().contains(&right.to_text()),
            Operator::IsNull => left.is_null() == flag,
            Operator::IsBlank => left.is_blank() == flag,
            Operator::IsChanged => {
                let prior = item.prior.map_or(Value::Null, |id| scope.value(id));
                let changed = scope.prior.is_some() && !herald_expr::equals(&left, &prior);
                changed == flag
            }
        })
    }
}

impl NamedCredentialRuntime {
    /// The custom headers, with credential formulas filled from the principal's secrets.
    pub fn render_headers(
        &self,
        secrets: &dyn SecretSource,
        cx: &EvalContext,
    ) -> Result<Vec<RenderedHeader>, String> {
        let scope = HeaderScope { slots: &self.header_slots, secrets };
        self.headers
            .iter()
            .map(|header| {
                Ok(RenderedHeader {
                    name: header.name.clone(),
                    value: header.template.render(&scope, cx).map_err(|e| e.to_string())?,
                    carries_secret: header.carries_secret,
                })
            })
            .collect()
    }
}

/// A named credential's custom header, rendered for one request.
pub struct RenderedHeader {
    pub name: String,
    pub value: String,
    /// Its formula reads a `$Credential` value: the value is a secret in some form.
    pub carries_secret: bool,
}

struct HeaderScope<'a> {
    slots: &'a [Slot],
    secrets: &'a dyn SecretSource,
}

impl Scope for HeaderScope<'_> {
    fn value(&self, id: RefId) -> Value {
        match self.slots.get(id.0 as usize) {
            Some(Slot::Credential { parameter }) => {
                self.secrets.secret(parameter).map_or(Value::Null, Value::Text)
            }
            Some(Slot::Constant(value)) => value.clone(),
            _ => Value::Null,
        }
    }
}

pub(crate) fn push_trace(
    state: &mut RunState,
    element: &Element,
    kind: &str,
    inputs: Json,
    outputs: Json,
    at: DateTime<Utc>,
    micros: u64,
) {
    let entry = trace_entry(element, kind, inputs, outputs, at, micros);
    state.trace.push(TraceEntry {
        result: match &state.cursor {
            Some(next) => format!("next: {next}"),
            None => "end".into(),
        },
        ..entry
    });
}

pub(crate) fn trace_entry(
    element: &Element,
    kind: &str,
    inputs: Json,
    outputs: Json,
    at: DateTime<Utc>,
    micros: u64,
) -> TraceEntry {
    TraceEntry {
        element: element.name.clone(),
        label: element.label.clone(),
        kind: kind.to_string(),
        inputs,
        outputs,
        result: String::new(),
        fault: None,
        at,
        micros,
        flow: None,
    }
}

fn matching_response(declared: &[String], status: u16) -> Option<&str> {
    let exact = status.to_string();
    let class = format!("{}XX", status / 100);
    declared
        .iter()
        .find(|d| **d == exact)
        .or_else(|| declared.iter().find(|d| d.eq_ignore_ascii_case(&class)))
        .or_else(|| declared.iter().find(|d| d.eq_ignore_ascii_case("default")))
        .map(String::as_str)
}

/// A value as a text field of a request expects it.
fn coerce(value: Json, shape: &Shape) -> Json {
    match (shape, value) {
        (Shape::Text, Json::Number(n)) => Json::String(n.to_string()),
        (Shape::Text, Json::Bool(b)) => Json::String(b.to_string()),
        (_, value) => value,
    }
}

fn plain_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn fill_path(template: &str, values: &[(String, String)]) -> Result<String, String> {
    let mut path = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("unclosed path parameter")?;
        let name = &after[..close];
        let value = values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("path parameter `{name}` has no value; map it in the action's inputs"))?;
        if value == "." || value == ".." || value.contains(['/', '\\']) {
            return Err(format!(
                "path parameter `{name}` is `{value}`: a value with `/`, `\\` or dot segments could leave the API path, so it is refused"
            ));
        }
        path.extend(percent_encoding::utf8_percent_encode(value, PATH_SEGMENT));
        rest = &after[close + 1..];
    }
    path.push_str(rest);
    Ok(path)
}

/// Everything but RFC 3986 unreserved characters is escaped, so a value can never add a path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The place an assignment writes, made on the way when the path does not exist yet.
fn assignment_target<'s>(state: &'s mut RunState, item: &AssignItem) -> &'s mut Json {
    let mut target = &mut state.variables[item.variable];
    for segment in &item.path {
        if !target.is_object() {
            *target = Json::Object(Map::new());
        }
        let Json::Object(map) = target else { unreachable_object() };
        target = map.entry(segment.clone()).or_insert(Json::Null);
    }
    target
}

fn apply_assignment(state: &mut RunState, item: &AssignItem, value: Json) -> Result<(), String> {
    let target = assignment_target(state, item);
    let is_blank_text = matches!(&value, Json::String(s) if s.is_empty());
    match (item.operator, &item.target_type) {
        (AssignOperator::Equals, TargetType::Collection) if is_blank_text || value.is_null() => {
            *target = Json::Array(Vec::new());
        }
        (AssignOperator::Equals, TargetType::Scalar(ty)) => {
            *target = match Value::from_json(&value, *ty) {
                Ok(v) => v.to_json(),
                Err(_) if *ty == ExprType::Text => Json::String(plain_text(&value)),
                Err(error) => return Err(error.to_string()),
            };
        }
        (AssignOperator::Equals, _) => *target = value,
        (AssignOperator::Add | AssignOperator::AddAtStart, TargetType::Collection | TargetType::Any) => {
            if !target.is_array() {
                *target = Json::Array(Vec::new());
            }
            let Json::Array(items) = target else { unreachable_object() };
            if item.operator == AssignOperator::Add {
                items.push(value);
            } else {
                items.insert(0, value);
            }
        }
        (AssignOperator::RemoveAll, _) => {
            if let Json::Array(items) = target {
                items.retain(|existing| *existing != value);
            }
        }
        (AssignOperator::AssignCount, _) => {
            let count = match &value {
                Json::Array(items) => items.len(),
                Json::Null => 0,
                _ => 1,
            };
            *target = Json::from(count);
        }
        (AssignOperator::Add | AssignOperator::Subtract, TargetType::Scalar(ty)) => {
            let current = Value::from_json(target, *ty).map_err(|e| e.to_string())?;
            let sign = if item.operator == AssignOperator::Add { Decimal::ONE } else { -Decimal::ONE };
            *target = match (current, *ty) {
                (Value::Text(text), ExprType::Text) => Json::String(format!("{text}{}", plain_text(&value))),
                (Value::Null, ExprType::Text) => Json::String(plain_text(&value)),
                (current, ExprType::Number) => {
                    let base = match current {
                        Value::Number(n) => n,
                        _ => Decimal::ZERO,
                    };
                    let delta = match Value::from_json(&value, ExprType::Number).map_err(|e| e.to_string())? {
                        Value::Number(n) => n,
                        _ => Decimal::ZERO,
                    };
                    Value::Number(base + sign * delta).to_json()
                }
                (Value::Date(date), ExprType::Date) => {
                    let days = number_as_days(&value)? * if sign.is_sign_negative() { -1 } else { 1 };
                    Value::Date(date + chrono::Duration::days(days)).to_json()
                }
                (Value::DateTime(at), ExprType::DateTime) => {
                    let days = number_as_days(&value)? * if sign.is_sign_negative() { -1 } else { 1 };
                    Value::DateTime(at + chrono::Duration::days(days)).to_json()
                }
                (Value::Null, _) => return Err("the target is empty; assign it a value first".into()),
                _ => return Err("cannot add to this value".into()),
            };
        }
        (operator, _) => return Err(format!("{operator:?} does not apply here")),
    }
    Ok(())
}

fn number_as_days(value: &Json) -> Result<i64, String> {
    value.as_i64().ok_or_else(|| format!("{value} is not a whole number of days"))
}

#[cold]
fn unreachable_object() -> ! {
    // Both call sites replace the value with the matching variant on the line before.
    panic!("a value just set to an object or array is neither")
}

impl CompiledFlow {
    /// A Loop element: the next item goes to the loop's `item` output and the run to `each`; after the
    /// last one the loop forgets its place (so it can run again) and the run goes `after`. The
    /// collection is read where it lives, never copied; an item changed meanwhile is seen changed.
    fn take_next_item(
        &self,
        state: &mut RunState,
        element: &Element,
        looping: &LoopElement,
        at: DateTime<Utc>,
    ) {
        let taken = state.loops.get(&element.name).copied().unwrap_or(0);
        let items = match &looping.collection {
            CollectionRef::Variable(index) => state.variables.get(*index),
            CollectionRef::Output { element, name } => state.outputs.get(element).and_then(|o| o.get(name)),
        };
        let items = items.and_then(Json::as_array).map_or(&[][..], Vec::as_slice);
        let position = if looping.reverse { items.len().checked_sub(taken + 1) } else { Some(taken) };
        let item = position.and_then(|p| items.get(p)).cloned();
        let count = items.len();
        let traced = keeps_trace(state, element);
        let outputs = match item {
            Some(item) => {
                let shown = if traced { trace_value(&item) } else { Json::Null };
                state.loops.insert(element.name.clone(), taken + 1);
                state.outputs.entry(element.name.clone()).or_default().insert(ITEM.into(), item);
                state.cursor = Some(self.elements[looping.each].name.clone());
                serde_json::json!({ "item": shown, "position": taken + 1, "of": count })
            }
            None => {
                state.loops.remove(&element.name);
                state.cursor = looping.after.map(|n| self.elements[n].name.clone());
                serde_json::json!({ "iterations": taken })
            }
        };
        if traced {
            push_trace(state, element, "Loop", Json::Null, outputs, at, 0);
        }
    }

    /// The query of a Get Records element, its conditions' values taken from the run.
    fn record_query(
        &self,
        get: &GetElement,
        state: &RunState,
        cx: &EvalContext,
    ) -> Result<RecordQuery, String> {
        self.query_of(
            &get.object,
            &get.filters,
            &get.logic,
            get.sort.clone(),
            get.first_only,
            get.fields.clone(),
            state,
            cx,
        )
    }

    /// A query on `object`'s records, its conditions' values taken from the run.
    #[allow(clippy::too_many_arguments)]
    fn query_of(
        &self,
        object: &str,
        filters: &[FilterItem],
        logic: &crate::logic::Logic,
        sort: Option<(String, ExprType, bool)>,
        first_only: bool,
        fields: Option<Vec<String>>,
        state: &RunState,
        cx: &EvalContext,
    ) -> Result<RecordQuery, String> {
        let scope = self.scope(state, None, cx);
        let mut evaluated = Vec::with_capacity(filters.len());
        for filter in filters {
            let right = self.eval_value(&filter.right, &scope, state, cx)?;
            let flag = right.as_bool().unwrap_or(true);
            let value = match &right {
                Json::Bool(_) if matches!(filter.operator, Operator::IsNull | Operator::IsBlank) => {
                    Value::Null
                }
                _ => Value::from_json(&right, filter.ty)
                    .map_err(|error| format!("the condition on {object}.{}: {error}", filter.field))?,
            };
            evaluated.push(RecordFilter {
                field: filter.field.clone(),
                ty: filter.ty,
                operator: filter.operator,
                right: value,
                flag,
            });
        }
        Ok(RecordQuery {
            object: object.to_string(),
            filters: evaluated,
            logic: logic.clone(),
            sort,
            first_only,
            fields,
        })
    }

    /// Completes a Get Records effect with the records read (already finished by the query), or
    /// the reason they could not be read. No record found is not a fault: the output is empty.
    pub fn complete_get(
        &self,
        state: &mut RunState,
        result: Result<Vec<Map<String, Json>>, String>,
        now: DateTime<Utc>,
        micros: u64,
    ) {
        let result = match self.in_subflow_with(state, result, |flow, child, result| {
            flow.complete_get(child, result, now, micros)
        }) {
            Ok(()) => return,
            Err(result) => result,
        };
        let inputs = state.pending.as_ref().map(|p| p.inputs.clone()).unwrap_or(Json::Null);
        let name = state.pending.as_ref().map(|p| p.element.clone()).unwrap_or_default();
        let (first_only, store_in) = match self.element(&name).map(|e| &e.kind) {
            Some(ElementKind::Get(get)) => (get.first_only, get.store_in),
            _ => (false, None),
        };
        let outcome = result.map(|records| {
            let count = records.len();
            let shown: Vec<Json> = records.iter().take(TRACE_RECORDS).cloned().map(Json::Object).collect();
            let mut output = Map::new();
            let stored = if first_only {
                let first = records.into_iter().next().map_or(Json::Null, Json::Object);
                output.insert(RECORD.into(), first.clone());
                first
            } else {
                let all = Json::Array(records.into_iter().map(Json::Object).collect());
                output.insert(RECORDS.into(), all.clone());
                all
            };
            if let Some(variable) = store_in.and_then(|index| state.variables.get_mut(index)) {
                *variable = match stored {
                    // An empty record variable is an empty record, as a new one is.
                    Json::Null => Json::Object(Map::new()),
                    stored => stored,
                };
            }
            state.outputs.insert(name.clone(), output);
            serde_json::json!({ "count": count, "records": shown })
        });
        self.complete(state, inputs, outcome, now, micros);
    }
}

impl CompiledFlow {
    /// The related records `element` reads that the run does not hold yet: for each of its
    /// traversals, the first record on the way that was not loaded.
    fn missing_related(&self, element: &Element, state: &RunState) -> Vec<(String, String)> {
        let mut missing: Vec<(String, String)> = Vec::new();
        for id in &element.related {
            let Some(Slot::Related { base, hops, .. }) = self.slots.get(id.0 as usize) else { continue };
            let mut record = base_record(state, &state.record, base);
            for hop in hops {
                let Some(id) = record.and_then(|r| r.get(&hop.field)).and_then(Json::as_str) else { break };
                if id.is_empty() {
                    break;
                }
                match state.related.get(id) {
                    Some(found) => record = found.as_object(),
                    None => {
                        if !missing.iter().any(|(_, m)| m == id) {
                            missing.push((hop.object.clone(), id.to_string()));
                        }
                        break;
                    }
                }
            }
        }
        missing
    }

    /// Hands over the records a [`Effect::LoadRelated`] asked for: each id with its record, or `None`
    /// when there is no such record (the traversal then reads empty values, as a lookup left blank).
    pub fn complete_related(&self, state: &mut RunState, records: Vec<(String, Option<Map<String, Json>>)>) {
        let records = match self
            .in_subflow_with(state, records, |flow, child, records| flow.complete_related(child, records))
        {
            Ok(()) => return,
            Err(records) => records,
        };
        if state.related.len() + records.len() > RELATED_KEPT {
            state.related.clear();
        }
        for (id, record) in records {
            state.related.insert(id, record.map_or(Json::Null, Json::Object));
        }
    }

    /// The change an Update or Delete Records element asks for, its values taken from the run. More
    /// records than the element's `max_rows` is refused here, before anything is written.
    fn record_change(
        &self,
        change: &ChangeElement,
        state: &RunState,
        cx: &EvalContext,
    ) -> Result<RecordChange, String> {
        let mut fields = Map::new();
        {
            let scope = self.scope(state, None, cx);
            for (field, expr) in &change.fields {
                fields.insert(field.clone(), self.eval_value(expr, &scope, state, cx)?);
            }
        }
        let records = match &change.target {
            ChangeSource::Conditions { filters, logic } => {
                let query = self.query_of(&change.object, filters, logic, None, false, None, state, cx)?;
                let target = ChangeTarget::Matching { query, fields };
                return Ok(RecordChange { object: change.object.clone(), target, max_rows: change.max_rows });
            }
            ChangeSource::Triggering => vec![Json::Object(state.record.clone())],
            ChangeSource::Records(source) => {
                let value = match source {
                    CollectionRef::Variable(index) => state.variables.get(*index),
                    CollectionRef::Output { element, name } => {
                        state.outputs.get(element).and_then(|o| o.get(name))
                    }
                };
                match value {
                    Some(Json::Array(items)) => items.clone(),
                    Some(Json::Object(record)) if record.is_empty() => Vec::new(),
                    Some(record @ Json::Object(_)) => vec![record.clone()],
                    _ => Vec::new(),
                }
            }
        };
        if records.len() as u64 > change.max_rows {
            return Err(format!(
                "{} {} records given, more than the element's max_rows ({}); nothing was changed",
                records.len(),
                change.object,
                change.max_rows
            ));
        }
        let mut target = Vec::with_capacity(records.len());
        for record in records {
            let Some(record) = record.as_object() else {
                return Err(format!("an item that is not a {} record was given", change.object));
            };
            let Some(id) = record.get("Id").and_then(Json::as_str).filter(|id| !id.is_empty()) else {
                return Err(format!(
                    "a {} record without an Id was given; store it with Get Records (or its Id from Create Records) first",
                    change.object
                ));
            };
            // Without `fields:`, the record's own values are written, as Salesforce's "use the IDs and
            // all field values from a record".
            let values = if change.fields.is_empty() {
                record
                    .iter()
                    .filter(|(name, _)| {
                        !herald_project::STANDARD_FIELDS.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
                    })
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            } else {
                fields.clone()
            };
            target.push((id.to_string(), values));
        }
        Ok(RecordChange {
            object: change.object.clone(),
            target: ChangeTarget::Records(target),
            max_rows: change.max_rows,
        })
    }

    /// Completes an Update or Delete Records effect with how many records it changed, or why it
    /// failed (nothing was changed then).
    pub fn complete_change(
        &self,
        state: &mut RunState,
        result: Result<usize, String>,
        now: DateTime<Utc>,
        micros: u64,
    ) {
        let result = match self.in_subflow_with(state, result, |flow, child, result| {
            flow.complete_change(child, result, now, micros)
        }) {
            Ok(()) => return,
            Err(result) => result,
        };
        let inputs = state.pending.as_ref().map(|p| p.inputs.clone()).unwrap_or(Json::Null);
        state.related.clear();
        let outcome = result.map(|count| serde_json::json!({ "count": count }));
        self.complete(state, inputs, outcome, now, micros);
    }
}

impl RecordChange {
    /// The change as a trace shows it.
    pub fn describe(&self) -> Json {
        match &self.target {
            ChangeTarget::Records(records) => serde_json::json!({
                "object": self.object,
                "ids": records.iter().take(TRACE_RECORDS).map(|(id, _)| id.clone()).collect::<Vec<_>>(),
                "count": records.len(),
                "fields": records.first().map_or(Json::Null, |(_, fields)| Json::Object(fields.clone())),
            }),
            ChangeTarget::Matching { query, fields } => {
                let mut described = query.describe();
                if let Some(map) = described.as_object_mut() {
                    map.remove("howMany");
                    map.insert("fields".into(), Json::Object(fields.clone()));
                }
                described
            }
        }
    }
}

/// A Get Records trace entry shows this many of the records read.
const TRACE_RECORDS: usize = 10;

/// Whether this element's entry goes into the trace, counting it in `trace_omitted` when not.
pub(crate) fn keeps_trace(state: &mut RunState, element: &Element) -> bool {
    if state.trace.len() < TRACE_KEPT {
        return true;
    }
    match state.trace_omitted.get_mut(&element.name) {
        Some(count) => *count += 1,
        None => {
            state.trace_omitted.insert(element.name.clone(), 1);
        }
    }
    false
}

/// An `assign_count` of a whole collection, counted where it lives instead of copied first.
fn count_without_copy(item: &AssignItem, state: &RunState) -> Option<usize> {
    if item.operator != AssignOperator::AssignCount {
        return None;
    }
    let value = match &item.value {
        ValueExpr::WholeVariable(index) => state.variables.get(*index),
        ValueExpr::WholeOutput { element, name } => state.outputs.get(element).and_then(|o| o.get(name)),
        _ => return None,
    };
    Some(match value {
        Some(Json::Array(items)) => items.len(),
        None | Some(Json::Null) => 0,
        Some(_) => 1,
    })
}

/// Inputs as a trace shows them: every long list inside as its size and its last items (a batch of
/// 10,000 destinations is journaled with the run at each send; the ledger keeps every message).
fn shown_in_trace(value: Json) -> Json {
    match value {
        Json::Array(ref items) if items.len() > 2 * TRACE_LIST_ITEMS => trace_value(&value),
        Json::Array(items) => Json::Array(items.into_iter().map(shown_in_trace).collect()),
        Json::Object(map) => Json::Object(map.into_iter().map(|(k, v)| (k, shown_in_trace(v))).collect()),
        other => other,
    }
}

/// How many of a long list's last items a trace shows.
const TRACE_LIST_ITEMS: usize = 5;

/// A value as a trace shows it: a long list as its size and its last items, so that adding to a
/// collection in a loop does not copy the whole collection into each entry.
pub(crate) fn trace_value(value: &Json) -> Json {
    match value {
        Json::Array(items) if items.len() > 2 * TRACE_LIST_ITEMS => serde_json::json!({
            "count": items.len(),
            "last": items[items.len() - TRACE_LIST_ITEMS..].to_vec(),
        }),
        other => other.clone(),
    }
}

/// An input value converted to its variable's type: a scalar as formulas would read it (`"12"` is a
/// Number), a collection item by item, a generated type as a JSON object.
pub(crate) fn input_value(variable: &Variable, value: &Json) -> Result<Json, String> {
    let one = |item: &Json| match &variable.ty {
        VariableType::Scalar(ty) => Value::from_json(item, *ty).map(|v| v.to_json()).map_err(|error| {
            // `--input code=42` reads 42 as JSON; say how to keep it text.
            match (ty, item) {
                (ExprType::Text, Json::Number(_) | Json::Bool(_)) => {
                    format!("{error}; to give it as text, quote it as JSON: \"{item}\"")
                }
                _ => error.to_string(),
            }
        }),
        VariableType::Object(name) | VariableType::Record(name) => match item {
            Json::Object(_) | Json::Null => Ok(item.clone()),
            _ => Err(format!("expected a JSON object of {name}'s fields")),
        },
    };
    if !variable.collection {
        return one(value);
    }
    match value {
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| one(item).map_err(|error| format!("item {index}: {error}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        Json::Null => Ok(Json::Array(Vec::new())),
        _ => Err("expected a JSON array (the variable is a collection)".into()),
    }
}
