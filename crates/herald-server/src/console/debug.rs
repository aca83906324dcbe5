//! Debug from the browser: `herald flow debug` for an admin without a shell on the server. A flow
//! runs once, on a record or from input values, and the page shows the trace the command prints.
//!
//! It always runs in rollback mode and against a sandbox, because it runs inside a live server: on a
//! copy of the database made for the run and deleted after (the engine's
//! [`Engine::debug_in_rollback`], the command's `--rollback`), so that nothing it writes (records,
//! the runs they start, ledger rows) is kept; and with every callout sent to the sandbox `herald
//! serve --sandbox` names, else to one started in this process for the run, so that no message
//! reaches a real provider. It needs `manage_flows`: a debug run reads the stored record it is given
//! and calls out with the project's credentials, which is trying out a flow, as reloading one is.

use super::pages::layout;
use super::{Session, csrf_refused, failure, form_field};
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use herald_engine::{DebugOutcome, DebugRecord, DebugStart, Engine, EngineError};
use herald_flow::{CompiledFlow, RunState, TraceEntry};
use herald_project::{ApiScope, TriggerEvent};
use herald_store::RunStatus;
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The largest SQLite database (file and write-ahead log) the console copies for a debug run: every
/// run copies it whole, so past this the command is the way (see docs/console.md).
pub(crate) const COPY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// One debug run at a time, since each copies the database; the next waits for it up to
/// [`QUEUE_WAIT`].
static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// How long a debug run waits for the one in progress before it is refused.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) fn routes() -> Router<Engine> {
    Router::new().route("/console/debug", get(debug_form).post(debug_run))
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Pick {
    flow: Option<String>,
}

/// What the form holds: its defaults for a flow, or what was posted (shown again with the result).
#[derive(Default)]
struct Form {
    flow: String,
    /// `new` (field values) or `existing` (a stored record's id).
    source: String,
    record: String,
    record_id: String,
    changes: String,
    prior: String,
    ignore_entry: bool,
    /// Input variable values as typed, by variable name.
    inputs: BTreeMap<String, String>,
}

impl Form {
    /// The empty form of `flow`: for a record-triggered flow, its object's fields as a JSON template.
    fn blank(engine: &Engine, flow: &CompiledFlow) -> Form {
        let mut form = Form { flow: flow.name.clone(), source: "new".into(), ..Form::default() };
        if let Some(trigger) = &flow.trigger {
            let project = engine.project();
            let template: Map<String, Value> = project
                .project
                .objects
                .get(&trigger.object)
                .map(|object| {
                    object
                        .def
                        .fields
                        .keys()
                        .map(|field| (field.clone(), Value::String(String::new())))
                        .collect()
                })
                .unwrap_or_default();
            form.record = serde_json::to_string_pretty(&template).unwrap_or_default();
        }
        form
    }

    fn posted(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (key, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "flow" => form.flow = value,
                "source" => form.source = value,
                "record" => form.record = value,
                "record_id" => form.record_id = value.trim().to_string(),
                "changes" => form.changes = value,
                "prior" => form.prior = value,
                "ignore_entry" => form.ignore_entry = true,
                other => {
                    if let Some(name) = other.strip_prefix("input.") {
                        form.inputs.insert(name.to_string(), value);
                    }
                }
            }
        }
        form
    }

    /// How the flow starts, or every problem with what was typed (nothing runs then).
    fn start(&self, flow: &CompiledFlow) -> Result<DebugStart, Vec<String>> {
        let Some(trigger) = &flow.trigger else { return self.inputs(flow).map(DebugStart::Inputs) };
        let mut problems = Vec::new();
        let record = if self.source == "existing" {
            let fields = optional_object("Changed values", &self.changes, &mut problems).unwrap_or_default();
            if self.record_id.is_empty() {
                problems.push(format!(
                    "Record id: give the id of a stored {} record, or choose \"A new record\" and give its field values",
                    trigger.object
                ));
            }
            DebugRecord { id: Some(self.record_id.clone()), fields, prior: None }
        } else {
            let given = optional_object("Field values", &self.record, &mut problems);
            if given.is_none() && self.record.trim().is_empty() {
                problems.push(format!(
                    "Field values: give the new {} record's fields as a JSON object, e.g. {{\"LastName\": \"Lovelace\"}}",
                    trigger.object
                ));
            }
            // The template's untouched "" fields stay blank, as a field left empty in a form does.
            let fields = given
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, value)| !matches!(value, Value::Null) && value.as_str() != Some(""))
                .collect();
            DebugRecord { id: None, fields, prior: None }
        };
        let prior = optional_object("Prior values", &self.prior, &mut problems);
        if problems.is_empty() {
            Ok(DebugStart::Record {
                record: DebugRecord { prior, ..record },
                check_entry: !self.ignore_entry,
            })
        } else {
            Err(problems)
        }
    }

    /// The input variables' values, typed: a blank field leaves the variable at its default.
    fn inputs(&self, flow: &CompiledFlow) -> Result<Map<String, Value>, Vec<String>> {
        let mut values = Map::new();
        let mut problems = Vec::new();
        for (name, type_name) in flow.input_variables() {
            let Some(text) = self.inputs.get(name).filter(|text| !text.trim().is_empty()) else { continue };
            let value = match input_kind(&type_name) {
                InputKind::Text => Value::String(text.clone()),
                // Not a number: passed on as typed, for the engine to say what it expected.
                InputKind::Number => serde_json::from_str::<serde_json::Number>(text.trim())
                    .map(Value::Number)
                    .unwrap_or_else(|_| Value::String(text.clone())),
                InputKind::Boolean => Value::Bool(text == "true"),
                InputKind::Json => match serde_json::from_str(text) {
                    Ok(value) => value,
                    Err(error) => {
                        problems.push(format!(
                            "{name} ({type_name}): not valid JSON ({error}); give it as JSON, e.g. {}",
                            if type_name.ends_with("collection") {
                                "[\"a\", \"b\"]"
                            } else {
                                "{\"Field\": \"value\"}"
                            }
                        ));
                        continue;
                    }
                },
            };
            values.insert(name.to_string(), value);
        }
        if problems.is_empty() { Ok(values) } else { Err(problems) }
    }
}

/// How an input variable is typed into the form.
enum InputKind {
    Text,
    Number,
    Boolean,
    /// Collections and records: JSON in a text area.
    Json,
}

fn input_kind(type_name: &str) -> InputKind {
    match type_name {
        "Text" | "Date" | "DateTime" | "Time" => InputKind::Text,
        "Number" => InputKind::Number,
        "Boolean" => InputKind::Boolean,
        _ => InputKind::Json,
    }
}

/// The JSON object typed into the box `label`; `None` when the box is blank, or when it does not hold
/// one (the problem is added to `problems`).
fn optional_object(label: &str, text: &str, problems: &mut Vec<String>) -> Option<Map<String, Value>> {
    if text.trim().is_empty() {
        return None;
    }
    json_object(label, text).map_err(|problem| problems.push(problem)).ok()
}

/// A JSON object of field values typed into the box `label`, or what is wrong with it.
fn json_object(label: &str, text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => {
            Err(format!("{label}: give a JSON object of field values, e.g. {{\"Phone\": \"+14155550100\"}}"))
        }
        Err(error) => {
            Err(format!("{label}: not valid JSON ({error}); check the quotes and commas near there"))
        }
    }
}

/// What a debug run ended with, as the page shows it.
struct Ran {
    outcome: DebugOutcome,
    /// Where its callouts went.
    sandbox: String,
}

/// `GET /console/debug[?flow=NAME]`: choose a flow, then the form that runs it.
async fn debug_form(
    State(engine): State<Engine>,
    session: Session,
    pick: Result<Query<Pick>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageFlows) {
        return refused;
    }
    let pick = pick.map(|Query(pick)| pick).unwrap_or_default();
    let project = engine.project();
    let chosen = pick.flow.filter(|flow| !flow.is_empty());
    let flow = chosen.as_ref().and_then(|name| project.flows.get(name)).cloned();
    let mut problems = Vec::new();
    if let (Some(name), None) = (&chosen, &flow) {
        problems.push(unknown_flow(&engine, name));
    }
    let form = flow.as_ref().map(|flow| Form::blank(&engine, flow));
    let page = page(&engine, &session, flow.as_deref(), form.as_ref(), &problems, None);
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    (status, Html(page.into_string())).into_response()
}

/// `POST /console/debug`, the form of [`Form`] with `csrf`: runs the flow once in rollback mode
/// against the sandbox and shows its trace under the form.
async fn debug_run(State(engine): State<Engine>, session: Session, body: Bytes) -> Response {
    let given = form_field(&body, "csrf").unwrap_or_default();
    if !herald_engine::same_secret(&given, &session.csrf_token) {
        return csrf_refused();
    }
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageFlows) {
        return refused;
    }
    let form = Form::posted(&body);
    let project = engine.project();
    let Some(flow) = project.flows.get(&form.flow).cloned() else {
        let problems = [unknown_flow(&engine, &form.flow)];
        let page = page(&engine, &session, None, None, &problems, None);
        return (StatusCode::NOT_FOUND, Html(page.into_string())).into_response();
    };
    let start = match form.start(&flow) {
        Ok(start) => start,
        Err(problems) => {
            let page = page(&engine, &session, Some(&flow), Some(&form), &problems, None);
            return (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response();
        }
    };
    if let Some(bytes) = engine.database_bytes().filter(|bytes| *bytes > COPY_LIMIT_BYTES) {
        let problem = format!(
            "The database is {} MB, and a debug run from the console copies it whole (rollback mode) up to {} MB. Run `herald flow debug PROJECT {} --rollback --sandbox URL` on the server instead.",
            bytes / (1024 * 1024),
            COPY_LIMIT_BYTES / (1024 * 1024),
            flow.name
        );
        let page = page(&engine, &session, Some(&flow), Some(&form), &[problem], None);
        return (StatusCode::SERVICE_UNAVAILABLE, Html(page.into_string())).into_response();
    }
    let Ok(Ok(_running)) = tokio::time::timeout(QUEUE_WAIT, ONE_AT_A_TIME.acquire()).await else {
        let problem = "Another debug run has been in progress for a minute (each copies the database, one at a time); try again in a moment.".to_string();
        let page = page(&engine, &session, Some(&flow), Some(&form), &[problem], None);
        return (StatusCode::SERVICE_UNAVAILABLE, Html(page.into_string())).into_response();
    };
    let sandbox = match Sandbox::for_debug(&engine).await {
        Ok(sandbox) => sandbox,
        Err(problem) => {
            let page = page(&engine, &session, Some(&flow), Some(&form), &[problem], None);
            return (StatusCode::SERVICE_UNAVAILABLE, Html(page.into_string())).into_response();
        }
    };
    tracing::info!(user = %session.user.name, flow = %flow.name, "console debug run (rollback mode)");
    let outcome = engine.debug_in_rollback(&flow.name, &start, None, Some(sandbox.url.clone())).await;
    let shown = sandbox.described();
    drop(sandbox);
    match outcome {
        Ok(outcome) => {
            let ran = Ran { outcome, sandbox: shown };
            Html(page(&engine, &session, Some(&flow), Some(&form), &[], Some(&ran)).into_string())
                .into_response()
        }
        // What was typed does not fit the flow or the record (an unknown field, a bad value, no such
        // record): said on the form, as the command says it. Anything else is a failure page.
        Err(
            error @ (EngineError::InvalidFields(_)
            | EngineError::FlowStart(_)
            | EngineError::NotFound { .. }
            | EngineError::UnknownObject { .. }),
        ) => {
            let problems = problems_of(error);
            let page = page(&engine, &session, Some(&flow), Some(&form), &problems, None);
            (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response()
        }
        Err(error) => failure(ApiError::from(error)),
    }
}

/// An engine error as lines for the form, in the form's words: the engine names the command's flags.
fn problems_of(error: EngineError) -> Vec<String> {
    let lines = match error {
        EngineError::InvalidFields(problems) => problems.into_iter().map(|problem| problem.message).collect(),
        other => vec![other.to_string()],
    };
    lines
        .into_iter()
        .map(|line| {
            line.replace("--prior", "Prior values")
                .replace("--record-id", "Record id")
                .replace("--record", "Field values")
        })
        .collect()
}

fn unknown_flow(engine: &Engine, name: &str) -> String {
    let project = engine.project();
    let hint =
        herald_project::did_you_mean(name, project.flows.keys().map(String::as_str)).unwrap_or_default();
    format!("There is no flow named {name}. {hint}").trim().to_string()
}

/// Where a debug run's callouts go: the server's sandbox, or one started in this process for the
/// run and stopped when this is dropped.
struct Sandbox {
    url: String,
    own: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Sandbox {
    async fn for_debug(engine: &Engine) -> Result<Sandbox, String> {
        if let Some(url) = engine.sandbox_url() {
            return Ok(Sandbox { url: url.trim_end_matches('/').to_string(), own: None });
        }
        let refused = |error: std::io::Error| {
            format!(
                "No sandbox can be started for this debug run ({error}), and a debug run never calls a real provider. Start herald serve with --sandbox URL."
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(refused)?;
        let address = listener.local_addr().map_err(refused)?;
        let sandbox = herald_sandbox::Sandbox::new(herald_sandbox::SandboxOptions::default());
        let own = tokio::spawn(sandbox.serve(listener));
        Ok(Sandbox { url: format!("http://{address}"), own: Some(own) })
    }

    fn described(&self) -> String {
        match &self.own {
            None => format!("the sandbox at {} (herald serve --sandbox)", self.url),
            Some(_) => format!(
                "a sandbox started for this run at {}, with the sandbox's default accounts: a provider whose credentials differ answers 401 here (start herald serve with --sandbox to use a sandbox set up with your accounts)",
                self.url
            ),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            own.abort();
        }
    }
}

fn started_by(flow: &CompiledFlow) -> String {
    match &flow.trigger {
        Some(trigger) => format!("on {} {:?}", trigger.object, trigger.event),
        None => "autolaunched".into(),
    }
}

fn page(
    engine: &Engine,
    session: &Session,
    flow: Option<&CompiledFlow>,
    form: Option<&Form>,
    problems: &[String],
    ran: Option<&Ran>,
) -> Markup {
    let project = engine.project();
    let names: Vec<&String> = project.flows.keys().collect();
    let chosen = flow.map(|flow| flow.name.as_str());
    layout(
        Some(&session.view()),
        "Debug",
        html! {
            h1 { "Debug a flow" }
            p.hint {
                "Runs a flow once, as " code { "herald flow debug --rollback" } " does, and shows each element it ran. "
                "Nothing it writes is kept (records, runs, messages: it runs on a copy of the database), "
                "and its callouts go to the sandbox, never to a provider."
            }
            form.filter.pick method="get" action="/console/debug" {
                label { "Flow "
                    select name="flow" {
                        @for name in &names {
                            option value=(name) selected[chosen == Some(name.as_str())] { (name) }
                        }
                    }
                }
                button type="submit" { "Choose" }
            }
            @if !problems.is_empty() {
                div.problem role="alert" {
                    p { "Nothing ran:" }
                    ul { @for problem in problems { li { (problem) } } }
                }
            }
            @if let (Some(flow), Some(form)) = (flow, form) {
                h2 { (flow.label) " " span.kind { "(" (flow.name) ", " (started_by(flow)) ")" } }
                (debug_form_of(session, flow, form))
            }
            @if let (Some(flow), Some(ran)) = (flow, ran) {
                (result(flow, ran))
            }
        },
    )
}

fn debug_form_of(session: &Session, flow: &CompiledFlow, form: &Form) -> Markup {
    html! {
        form.debug method="post" action="/console/debug" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            input type="hidden" name="flow" value=(flow.name);
            @if let Some(trigger) = &flow.trigger {
                fieldset {
                    legend { "The " (trigger.object) " record" }
                    label.choice {
                        input type="radio" name="source" value="new" checked[form.source != "existing"];
                        " A new record: its field values as JSON (fields left \"\" stay blank)"
                    }
                    textarea name="record" rows=(form.record.lines().count().clamp(6, 24)) spellcheck="false" { (form.record) }
                    label.choice {
                        input type="radio" name="source" value="existing" checked[form.source == "existing"];
                        " An existing record"
                    }
                    label { "Record id " input type="text" name="record_id" value=(form.record_id) placeholder="00Q…"; }
                    label {
                        "Values changed for this run (JSON, optional): the update being debugged"
                        textarea name="changes" rows="3" spellcheck="false" { (form.changes) }
                    }
                }
                @if trigger.event != TriggerEvent::Create {
                    label {
                        "Prior values (JSON, optional): what these fields held before the update, for ISCHANGED and PRIORVALUE"
                        textarea name="prior" rows="3" spellcheck="false" { (form.prior) }
                    }
                }
                label.choice {
                    input type="checkbox" name="ignore_entry" value="yes" checked[form.ignore_entry];
                    " Ignore the entry condition"
                }
            } @else {
                fieldset {
                    legend { "Input variables" }
                    @let inputs: Vec<(&str, String)> = flow.input_variables().collect();
                    @if inputs.is_empty() { p.empty { "This flow has no input variables." } }
                    @for (name, type_name) in &inputs {
                        @let value = form.inputs.get(*name).map(String::as_str).unwrap_or("");
                        @let field = format!("input.{name}");
                        label {
                            span { (name) " " span.kind { "(" (type_name) ")" } }
                            @match input_kind(type_name) {
                                InputKind::Text => { input type="text" name=(field) value=(value); }
                                InputKind::Number => { input type="number" step="any" name=(field) value=(value); }
                                InputKind::Boolean => {
                                    select name=(field) {
                                        option value="" selected[value.is_empty()] { "(default)" }
                                        option value="true" selected[value == "true"] { "true" }
                                        option value="false" selected[value == "false"] { "false" }
                                    }
                                }
                                InputKind::Json => { textarea name=(field) rows="3" spellcheck="false" { (value) } }
                            }
                        }
                    }
                    p.hint { "A field left blank keeps the variable's default." }
                }
            }
            button type="submit" { "Run in rollback mode" }
        }
    }
}

/// The outcome, as `herald flow debug` prints it.
fn result(flow: &CompiledFlow, ran: &Ran) -> Markup {
    html! {
        section.debug-result {
            h2 { "Result" }
            p.hint { "Rollback mode: nothing this run wrote was kept. Callouts went to " (ran.sandbox) "." }
            @match &ran.outcome {
                DebugOutcome::NotTriggered { .. } => {
                    p.outcome { "The record does not meet the entry condition: the flow would not start." }
                    p.hint { "(Tick \"Ignore the entry condition\" to run it anyway.)" }
                }
                DebugOutcome::EntryError { message } => {
                    p.outcome.failed { "The entry condition could not be evaluated: " (message) }
                }
                DebugOutcome::Ran { state, status, fault } => {
                    (trace(state))
                    @if *status == RunStatus::Finished {
                        (outputs(flow, state))
                        p.outcome.done { "All done." }
                    } @else {
                        p.outcome.failed { "The flow failed: " (fault.as_deref().unwrap_or("no reason was recorded")) }
                    }
                }
            }
        }
    }
}

fn trace(state: &RunState) -> Markup {
    let omitted: Vec<String> =
        state.trace_omitted().iter().map(|(element, count)| format!("{element} ×{count}")).collect();
    html! {
        p { "Run " code { (state.interview_id()) } " as " (state.user().name) }
        ol.trace {
            @for entry in state.trace() { (trace_entry(entry)) }
        }
        @if !omitted.is_empty() {
            p.hint {
                "… and, not listed once the trace held " (herald_flow::TRACE_KEPT)
                " entries (every callout and record change still is): " (omitted.join(", "))
            }
        }
    }
}

fn trace_entry(entry: &TraceEntry) -> Markup {
    html! {
        li.element.subflow[entry.flow.is_some()] {
            h3 {
                (entry.label) " " span.kind { "(" (entry.kind) ": " (entry.element)
                    @if let Some(flow) = &entry.flow { " in " (flow) }
                ")" }
            }
            @if entry.micros > 0 { p.timing { (format!("{:.1} ms", entry.micros as f64 / 1000.0)) } }
            div.io {
                (values("Inputs", &entry.inputs))
                (values("Outputs", &entry.outputs))
            }
            @if let Some(fault) = &entry.fault { p.fault { "Fault: " (fault) } }
            p.result { "→ " (entry.result) }
        }
    }
}

/// An element's inputs or outputs, a name and value a line, as the command prints them (masked as
/// the trace holds them).
fn values(title: &str, values: &Value) -> Markup {
    html! {
        @if let Value::Object(map) = values {
            @if !map.is_empty() {
                section {
                    h4 { (title) }
                    dl.values {
                        @for (name, value) in map { dt { (name) } dd { (shown(value)) } }
                    }
                }
            }
        }
    }
}

fn outputs(flow: &CompiledFlow, state: &RunState) -> Markup {
    let outputs: Vec<(&str, &Value)> = flow.output_values(state).collect();
    html! {
        @if !outputs.is_empty() {
            h3 { "Output variables" }
            dl.values.outputs {
                @for (name, value) in &outputs { dt { (name) } dd { (shown(value)) } }
            }
        }
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
