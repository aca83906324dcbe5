//! The Flows pages: `/console/flows` lists the flows of the project version the server runs, and
//! `/console/flows/{name}` draws one as Flow Builder does (the drawing is `diagram.rs`), with the
//! configuration of the element clicked (`?element=NAME`) as its flow file gives it, and the load
//! warnings that concern it.
//!
//! Both need the `read_runs` scope: a run's trace already shows each element it went through, with
//! its inputs and outputs, so whoever may read runs may see the flows that made them; a flow file
//! holds no secret (a `$Credential` merge field is formula text, resolved only inside a callout).

use super::diagram::{self, Graph, Node, NodeKind, START};
use super::pages::{self, Viewer};
use super::{Session, failure};
use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use herald_engine::{Engine, LiveVersion};
use herald_flow::{CompiledFlow, CompiledProject, StartPathKind};
use herald_project::{
    ApiScope, ConditionDef, Diagnostic, ElementDef, FlowDef, FlowStatus, RunAs, SourceFile, TriggerEvent,
    YamlPath,
};
use maud::{Markup, html};
use serde_json::Value;

#[derive(serde::Deserialize, Default)]
pub(crate) struct FlowQuery {
    element: Option<String>,
    /// `?warnings=open`: the list of load warnings open (the Flows list links to it).
    warnings: Option<String>,
}

/// `GET /console/flows`: every flow of the version the server runs.
pub(super) async fn list(State(engine): State<Engine>, session: Session) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let version = engine.version();
    Html(list_page(&session.view(), &version).into_string()).into_response()
}

/// `GET /console/flows/{name}?element=NAME`: the flow's diagram, and the configuration of one of
/// its elements.
pub(super) async fn show(
    State(engine): State<Engine>,
    session: Session,
    Path(name): Path<String>,
    query: Result<Query<FlowQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let element = query.element.filter(|element| !element.is_empty());
    let version = engine.version();
    let project = &version.project;
    let Some(flow) = project.flows.get(&name) else {
        let error = ApiError::from(herald_engine::EngineError::UnknownFlow {
            hint: herald_project::did_you_mean(&name, project.flows.keys().map(String::as_str)),
            name,
        });
        let message = error.errors.first().map(|problem| problem.message.clone()).unwrap_or_default();
        let page = pages::layout(
            Some(&session.view()),
            "Flow not found",
            html! {
                h1 { "Flow not found" }
                p.problem { (message) }
                p { a href="/console/flows" { "All flows" } }
            },
        );
        return (error.status, Html(page.into_string())).into_response();
    };
    let Some(located) = project.project.flows.get(&name) else {
        return failure(ApiError::server_error(&format_args!("flow {name} compiled without its definition")));
    };
    let view = FlowView {
        flow,
        def: &located.def,
        source: project.project.source(located.source),
        project,
        version: &version,
        selected: element.as_deref(),
        warnings_open: query.warnings.as_deref() == Some("open"),
    };
    Html(flow_page(&session.view(), &view).into_string()).into_response()
}

// ---------------------------------------------------------------------------------------------
// Load warnings, and the element each concerns

/// A load warning, and the boxes it concerns (element names, or [`START`]; none: the whole flow).
struct Concern<'p> {
    warning: &'p Diagnostic,
    elements: Vec<String>,
}

/// The lines of a key's block in a YAML file: its key's line to its last line (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lines {
    first: usize,
    last: usize,
    column: usize,
}

impl Lines {
    fn holds(&self, line: usize) -> bool {
        (self.first..=self.last).contains(&line)
    }
}

/// Where the block of the key at `path` stands in `source`: from the key's line, every following
/// line indented deeper (or a list item at its own indentation), blank lines and comments inside it
/// included. `None` when the file does not write that key.
fn block(source: &SourceFile, path: &YamlPath, key: &str) -> Option<Lines> {
    let position = source.locator.key(path);
    let lines: Vec<&str> = source.text.lines().collect();
    let line = lines.get(position.line.checked_sub(1)?)?;
    let at: String = line.chars().skip(position.column.saturating_sub(1)).collect();
    let written =
        at.starts_with(key) || at.strip_prefix(['"', '\'']).is_some_and(|rest| rest.starts_with(key));
    if !written {
        return None;
    }
    let indent = position.column - 1;
    let mut last = position.line;
    for (index, text) in lines.iter().enumerate().skip(position.line) {
        let content = text.trim_start_matches(' ');
        if content.trim().is_empty() || content.starts_with('#') {
            continue;
        }
        let depth = text.len() - content.len();
        let item = depth == indent && (content.starts_with("- ") || content.trim_end() == "-");
        if depth > indent || item {
            last = index + 1;
        } else {
            break;
        }
    }
    Some(Lines { first: position.line, last, column: position.column })
}

fn element_lines(source: &SourceFile, name: &str) -> Option<Lines> {
    block(source, &YamlPath::root().key("elements").key(name), name)
}

/// The blocks Start shows: the trigger, the scheduled paths, the asynchronous path; an autolaunched
/// flow's variables.
fn start_lines(source: &SourceFile, def: &FlowDef) -> Vec<(&'static str, Lines)> {
    let keys: &[&'static str] =
        if def.trigger.is_some() { &["trigger", "scheduled_paths", "async_path"] } else { &["variables"] };
    keys.iter().filter_map(|key| Some((*key, block(source, &YamlPath::root().key(key), key)?))).collect()
}

/// Whether the element's text reads the resource `name` (`{!Name}`, `{!Name.field}`).
fn reads(text: &str, name: &str) -> bool {
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    text.split("{!").skip(1).any(|part| {
        part.trim_start().strip_prefix(&name).is_some_and(|rest| rest.trim_start().starts_with(['}', '.']))
    })
}

/// The text of `lines` of `source`.
fn excerpt(source: &SourceFile, lines: Lines) -> Vec<(usize, &str)> {
    source
        .text
        .lines()
        .enumerate()
        .skip(lines.first - 1)
        .take(lines.last + 1 - lines.first)
        .map(|(i, text)| (i + 1, text))
        .collect()
}

/// The operation a spec warning names (`... (operation Send-Message; ...)`).
fn operation_named(message: &str) -> Option<&str> {
    let rest = &message[message.find("(operation ")? + "(operation ".len()..];
    rest.split([';', ')']).next().map(str::trim)
}

/// The load warnings that concern flow `name`: those in its file (on the element, Start or resource
/// whose lines hold them), and those of the OpenAPI files its actions call (on those actions).
fn concerns<'p>(project: &'p CompiledProject, name: &str) -> Vec<Concern<'p>> {
    let Some(located) = project.project.flows.get(name) else { return Vec::new() };
    let (def, source) = (&located.def, project.project.source(located.source));
    let elements: Vec<(&String, Option<Lines>)> =
        def.elements.keys().map(|element| (element, element_lines(source, element))).collect();
    let start = start_lines(source, def);
    let resources: Vec<(&String, Option<Lines>)> = [
        ("text_templates", def.text_templates.keys().collect::<Vec<_>>()),
        ("formulas", def.formulas.keys().collect()),
        ("constants", def.constants.keys().collect()),
    ]
    .into_iter()
    .flat_map(|(kind, names)| {
        names.into_iter().map(move |resource| {
            (resource, block(source, &YamlPath::root().key(kind).key(resource), resource))
        })
    })
    .collect();
    let mut found = Vec::new();
    for warning in &project.warnings {
        let mut on = Vec::new();
        if warning.file == source.path {
            // The innermost block that holds the line: on one line, the last key before the column.
            let holding = elements
                .iter()
                .filter_map(|(element, lines)| lines.filter(|l| l.holds(warning.line)).map(|l| (l, *element)))
                .filter(|(l, _)| l.first < warning.line || l.column <= warning.column)
                .max_by_key(|(l, _)| (l.first, l.column));
            if let Some((_, element)) = holding {
                on.push(element.clone());
            } else if start.iter().any(|(_, lines)| lines.holds(warning.line)) {
                on.push(START.to_string());
            } else if let Some((resource, _)) =
                resources.iter().find(|(_, lines)| lines.is_some_and(|l| l.holds(warning.line)))
            {
                for (element, lines) in &elements {
                    let text = lines.map(|l| {
                        excerpt(source, l).into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("\n")
                    });
                    if text.is_some_and(|text| reads(&text, resource)) {
                        on.push((*element).clone());
                    }
                }
            }
            found.push(Concern { warning, elements: on });
            continue;
        }
        for (element, element_def) in &def.elements {
            let Some((service, operation)) = element_def.action.as_deref().and_then(|a| a.split_once('.'))
            else {
                continue;
            };
            let spec = project.project.services.get(service).and_then(|s| s.def.spec.as_ref());
            if spec == Some(&warning.file)
                && operation_named(&warning.message).is_none_or(|named| named == operation)
            {
                on.push(element.clone());
            }
        }
        if !on.is_empty() {
            found.push(Concern { warning, elements: on });
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Describing a flow

fn event_text(event: TriggerEvent) -> &'static str {
    match event {
        TriggerEvent::Create => "A record is created",
        TriggerEvent::Update => "A record is updated",
        TriggerEvent::CreateOrUpdate => "A record is created or updated",
    }
}

fn status_text(status: FlowStatus) -> &'static str {
    match status {
        FlowStatus::Active => "active",
        FlowStatus::Draft => "draft",
    }
}

fn version_text(version: &LiveVersion) -> String {
    match version.seq {
        Some(_) => version.describe(),
        None => "unrecorded (this server keeps no versions)".into(),
    }
}

/// `1 hour after the trigger`, `2 days before CloseDate`.
fn offset_text(field: Option<&str>, offset_minutes: i64) -> String {
    let minutes = offset_minutes.unsigned_abs();
    let (count, unit) = if minutes > 0 && minutes.is_multiple_of(1440) {
        (minutes / 1440, "day")
    } else if minutes > 0 && minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    let side = if offset_minutes < 0 { "before" } else { "after" };
    format!("{count} {unit}{} {side} {}", if count == 1 { "" } else { "s" }, field.unwrap_or("the trigger"))
}

/// A condition as one line: `Phone IsBlank false`.
fn condition_text(condition: &ConditionDef) -> String {
    let left = condition.field.as_deref().or(condition.left.as_deref()).unwrap_or("");
    let mut text = format!("{left} {:?}", condition.operator);
    if let Some(right) = &condition.right {
        text.push(' ');
        text.push_str(&scalar_text(right));
    }
    text
}

/// A scalar as written (a string without quotes); anything else as YAML flow text.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => yaml_flow(other),
    }
}

/// A value as YAML's flow style: `{add: "{!message}"}`.
fn yaml_flow(value: &Value) -> String {
    match value {
        Value::String(text) => yaml_string(text),
        Value::Array(items) => format!("[{}]", items.iter().map(yaml_flow).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(key, value)| format!("{key}: {}", yaml_flow(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// A string as YAML writes it: plain when that reads back the same, else double-quoted.
fn yaml_string(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !text.ends_with(char::is_whitespace)
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains(['{', '}', '[', ']', ',', '\n'])
        && serde_json::from_str::<Value>(text).map_or(true, |v| v.is_string())
        && !matches!(text.to_lowercase().as_str(), "true" | "false" | "null" | "yes" | "no" | "~");
    if plain { text.to_string() } else { Value::String(text.to_string()).to_string() }
}

/// A value as YAML's block style, for nested values (an action's body).
fn yaml_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                match value {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_block(value, indent + 2, out);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_block(value, indent, out);
                    }
                    other => out.push_str(&format!("{pad}{key}: {}\n", yaml_flow(other))),
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let mut inner = String::new();
                yaml_block(item, indent + 2, &mut inner);
                let inner = inner.trim_start();
                out.push_str(&format!("{pad}- {inner}"));
                if !inner.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", yaml_flow(other))),
    }
}

/// A value of a flow file, shown as text: a scalar as written, a structure as YAML.
fn value_markup(value: &Value) -> Markup {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut text = String::new();
            yaml_block(value, 0, &mut text);
            html! { pre.value { (text.trim_end()) } }
        }
        Value::Array(items) if !items.is_empty() => {
            let mut text = String::new();
            yaml_block(value, 0, &mut text);
            html! { pre.value { (text.trim_end()) } }
        }
        other => html! { code { (scalar_text(other)) } },
    }
}

/// What the Flows list and a flow's page say about how it starts.
struct Starts {
    /// `Record-triggered: Lead` or `Autolaunched`.
    summary: String,
    lines: Vec<String>,
}

fn starts(flow: &CompiledFlow, def: &FlowDef) -> Starts {
    match (&flow.trigger, &def.trigger) {
        (Some(trigger), Some(trigger_def)) => {
            let mut lines = vec![event_text(trigger.event).to_string()];
            if let Some(when) = &trigger_def.when {
                lines.push(format!("When {when}"));
            } else if !trigger_def.conditions.is_empty() {
                let joined: Vec<String> = trigger_def.conditions.iter().map(condition_text).collect();
                let logic = trigger_def.logic.as_deref().unwrap_or("and").to_uppercase();
                let logic =
                    if matches!(logic.as_str(), "AND" | "OR") { format!(" {logic} ") } else { "; ".into() };
                lines.push(format!("When {}", joined.join(&logic)));
                if !matches!(
                    trigger_def.logic.as_deref().map(str::to_lowercase).as_deref(),
                    None | Some("and" | "or")
                ) {
                    lines.push(format!("Logic {}", trigger_def.logic.as_deref().unwrap_or("")));
                }
            }
            if flow.only_when_updated_to_meet {
                lines.push("Only when updated to meet the condition".into());
            }
            Starts { summary: format!("Record-triggered: {}", trigger.object), lines }
        }
        _ => {
            let inputs: Vec<String> =
                flow.input_variables().map(|(name, ty)| format!("{name} ({ty})")).collect();
            let outputs: Vec<String> =
                flow.output_variables().map(|(name, ty)| format!("{name} ({ty})")).collect();
            let mut lines = Vec::new();
            lines.push(if inputs.is_empty() {
                "No inputs".into()
            } else {
                format!("Inputs: {}", inputs.join(", "))
            });
            if !outputs.is_empty() {
                lines.push(format!("Outputs: {}", outputs.join(", ")));
            }
            Starts { summary: "Autolaunched (no trigger)".into(), lines }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The list

fn list_page(viewer: &Viewer<'_>, version: &LiveVersion) -> Markup {
    let project = &version.project;
    pages::layout(
        Some(viewer),
        "Flows",
        html! {
            h1 { "Flows" }
            p.hint {
                "Project version " strong { (version_text(version)) } ": the flows new runs start on. "
                "A run that started earlier goes on with the version it started on."
            }
            @if project.flows.is_empty() {
                p.empty { "This project has no flows." }
            } @else {
                table.flows {
                    thead { tr { th { "API Name" } th { "Label" } th { "Starts" } th { "Status" } th { "Version" } th { "Warnings" } } }
                    tbody {
                        @for (name, flow) in &project.flows {
                            @if let Some(located) = project.project.flows.get(name) {
                                @let def = &located.def;
                                @let how = starts(flow, def);
                                @let warnings = concerns(project, name).len();
                                tr {
                                    td { a href=(diagram::flow_href(name)) { code { (name) } } }
                                    td { (flow.label) }
                                    td.starts {
                                        strong { (how.summary) }
                                        @for line in &how.lines { br; (line) }
                                        @for path in &flow.scheduled_paths {
                                            br; "Scheduled path " em { (path.label) } ": " (offset_text(path.field.as_deref(), path.offset_minutes))
                                        }
                                        @if def.async_path.is_some() { br; "Run asynchronously" }
                                    }
                                    td { span class=(format!("status {}", status_text(def.status))) { (status_text(def.status)) } }
                                    td { (version.seq.map_or("—".to_string(), |seq| format!("v{seq}"))) }
                                    td {
                                        @if warnings > 0 {
                                            a.warning-count href=(format!("{}?warnings=open#warnings", diagram::flow_href(name))) { (warnings) }
                                        } @else { "0" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// A flow

struct FlowView<'a> {
    flow: &'a CompiledFlow,
    def: &'a FlowDef,
    source: &'a SourceFile,
    project: &'a CompiledProject,
    version: &'a LiveVersion,
    selected: Option<&'a str>,
    warnings_open: bool,
}

/// What the Start box says.
fn start_node(view: &FlowView<'_>, warnings: usize) -> Node {
    let mut how = starts(view.flow, view.def);
    if view.flow.is_autolaunched() {
        // The box names the variables; their types are in Start's panel.
        let names = |found: Vec<&str>| found.join(", ");
        how.lines = vec![match names(view.flow.input_variables().map(|(name, _)| name).collect()) {
            inputs if inputs.is_empty() => "No inputs".to_string(),
            inputs => format!("Inputs: {inputs}"),
        }];
        let outputs = names(view.flow.output_variables().map(|(name, _)| name).collect());
        if !outputs.is_empty() {
            how.lines.push(format!("Outputs: {outputs}"));
        }
    }
    let label = match &view.flow.trigger {
        Some(trigger) => format!("Record-Triggered: {}", trigger.object),
        None => "Autolaunched Flow (No Trigger)".into(),
    };
    Node { name: START.into(), kind: NodeKind::Start, label, details: how.lines, warnings, calls: None }
}

fn flow_page(viewer: &Viewer<'_>, view: &FlowView<'_>) -> Markup {
    let (flow, def) = (view.flow, view.def);
    let concerns = concerns(view.project, &flow.name);
    let count_on = |name: &str| concerns.iter().filter(|c| c.elements.iter().any(|e| e == name)).count();
    let graph = Graph::of_flow(&flow.graph(), start_node(view, count_on(START)), count_on);
    let layout = diagram::layout(&graph);
    let selected = view.selected.filter(|name| graph.nodes.iter().any(|node| node.name == *name));
    let title = format!("{} ({})", flow.label, flow.name);
    let runs = {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("flow", &flow.name).finish();
        format!("/console/runs?{query}")
    };
    let debug = {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("flow", &flow.name).finish();
        format!("/console/debug?{query}")
    };
    let how = starts(flow, def);
    pages::layout(
        Some(viewer),
        &flow.label,
        html! {
            div.flow-page {
                p.crumbs { a href="/console/flows" { "Flows" } " ›" }
                h1 { (flow.label) }
                p.flow-meta {
                    code { (flow.name) } " · "
                    span class=(format!("status {}", status_text(def.status))) { (status_text(def.status)) } " · "
                    (how.summary) " · project version " (version_text(view.version))
                }
                @if let Some(description) = &def.description { p.description { (description) } }
                p.flow-links {
                    a href=(runs) { "Runs of this flow" }
                    a href=(debug) { "Debug" }
                    span.source { "Defined in " code { (view.source.path.display()) } }
                }
                @if !concerns.is_empty() {
                    // Open when short, or when asked for; each in full in its element's panel.
                    details.warnings #warnings open[view.warnings_open || concerns.len() <= 3] {
                        summary { "Load warnings (" (concerns.len()) ")" (warned_elements(&concerns)) }
                        ul { @for concern in &concerns { li { (warning_line(concern)) } } }
                    }
                }
                div.flow-view {
                    div.diagram { (diagram::svg(&graph, &layout, selected, &format!("Flow diagram of {title}"))) }
                    section.element-panel #element {
                        @match view.selected {
                            Some(name) if name == START => (start_panel(view, &concerns)),
                            Some(name) => {
                                @if let Some(element) = def.elements.get(name) {
                                    (element_panel(view, name, element, &concerns))
                                } @else {
                                    h2 { "No such element" }
                                    p.problem {
                                        "This flow has no element " code { (name) } "."
                                        @if let Some(best) = herald_project::closest(name, def.elements.keys().map(String::as_str)) {
                                            " Did you mean " a href=(diagram::element_href(best)) { code { (best) } } "?"
                                        }
                                    }
                                    (element_index(view))
                                }
                            }
                            None => {
                                h2 { "Elements" }
                                p.hint { "Click an element in the diagram, or here, to see its configuration." }
                                (element_index(view))
                            }
                        }
                    }
                }
            }
        },
    )
}

/// ` — on Send SMS (2), Start (1)`: where the warnings are.
fn warned_elements(concerns: &[Concern<'_>]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for element in concerns.iter().flat_map(|c| &c.elements) {
        match counts.iter_mut().find(|(name, _)| name == element) {
            Some((_, count)) => *count += 1,
            None => counts.push((element, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let named: Vec<String> = counts
        .iter()
        .map(|(name, count)| format!("{} ({count})", if *name == START { "Start" } else { name }))
        .collect();
    format!(" — on {}", named.join(", "))
}

/// A warning in one line: code, place, message (the hint is in the element's panel).
fn warning_line(concern: &Concern<'_>) -> Markup {
    let warning = concern.warning;
    html! {
        span.warning-code { (warning.code) } " "
        code.place { (place_of(warning)) } " "
        span.message { (warning.message) }
        @if !concern.elements.is_empty() {
            " — on "
            @for (i, element) in concern.elements.iter().enumerate() {
                @if i > 0 { ", " }
                a href=(diagram::element_href(element)) { @if element == START { "Start" } @else { code { (element) } } }
            }
        }
    }
}

/// `file:line:column`, or the file alone when the warning concerns all of it.
fn place_of(warning: &Diagnostic) -> String {
    if warning.line > 0 {
        format!("{}:{}:{}", warning.file.display(), warning.line, warning.column)
    } else {
        warning.file.display().to_string()
    }
}

/// A warning in full, in its element's panel: code, place, message, hint.
fn warning_markup(concern: &Concern<'_>) -> Markup {
    let warning = concern.warning;
    let place = place_of(warning);
    html! {
        span.warning-code { (warning.code) } " "
        code.place { (place) } " "
        span.message { (warning.message) }
        @if let Some(hint) = &warning.hint { br; span.hint { (hint) } }
    }
}

/// Every element as a link: the diagram's boxes as a list (keyboard and screen reader friendly).
fn element_index(view: &FlowView<'_>) -> Markup {
    let graph = view.flow.graph();
    html! {
        ul.element-index {
            li { a href=(diagram::element_href(START)) { "Start" } }
            @for element in &graph.elements {
                li {
                    a href=(diagram::element_href(&element.name)) { (element.label) }
                    " " span.kind { (element.kind.as_str()) } " " code { (element.name) }
                }
            }
        }
    }
}

/// A connector's target, as a link to its element.
fn target_link(name: &str) -> Markup {
    html! { a href=(diagram::element_href(name)) { code { (name) } } }
}

fn conditions_table(conditions: &[ConditionDef]) -> Markup {
    html! {
        table.config {
            thead { tr { th { "#" } th { "Resource" } th { "Operator" } th { "Value" } } }
            tbody {
                @for (i, condition) in conditions.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { code { (condition.field.as_deref().or(condition.left.as_deref()).unwrap_or("")) } }
                        td { (format!("{:?}", condition.operator)) }
                        td { @if let Some(right) = &condition.right { (value_markup(right)) } }
                    }
                }
            }
        }
    }
}

fn values_table(head: (&str, &str), rows: Vec<(&str, Markup)>) -> Markup {
    html! {
        table.config {
            thead { tr { th { (head.0) } th { (head.1) } } }
            tbody { @for (key, value) in rows { tr { td { code { (key) } } td { (value) } } } }
        }
    }
}

/// An element's configuration, key by key as its flow file writes it.
fn element_config(view: &FlowView<'_>, element: &ElementDef) -> Vec<(&'static str, Markup)> {
    let mut rows: Vec<(&'static str, Markup)> = Vec::new();
    let text = |value: &str| html! { code { (value) } };
    if let Some(action) = &element.action {
        rows.push(("Action", text(action)));
    }
    if let Some(called) = &element.subflow {
        let link = if view.project.flows.contains_key(called) {
            html! { a href=(diagram::flow_href(called)) { code { (called) } } }
        } else {
            text(called)
        };
        rows.push(("Flow", link));
    }
    for (key, object) in [
        ("Create", &element.create),
        ("Get", &element.get),
        ("Update", &element.update),
        ("Delete", &element.delete),
    ] {
        if let Some(object) = object {
            rows.push(("Object", html! { (key) " records of " code { (object) } }));
        }
    }
    if let Some(record) = &element.record {
        rows.push(("Record", text(record)));
    }
    if let Some(collection) = &element.loop_over {
        rows.push(("Collection", text(collection)));
        let direction = match element.direction.unwrap_or_default() {
            herald_project::LoopDirection::FirstToLast => "first item to last item",
            herald_project::LoopDirection::LastToFirst => "last item to first item",
        };
        rows.push(("Direction", html! { (direction) }));
    }
    if !element.conditions.is_empty() {
        rows.push(("Conditions", conditions_table(&element.conditions)));
    }
    if let Some(logic) = &element.logic {
        rows.push(("Condition logic", text(logic)));
    }
    if let Some(field) = &element.sort_by {
        let order = match element.sort_order.unwrap_or_default() {
            herald_project::SortOrder::Ascending => "ascending",
            herald_project::SortOrder::Descending => "descending",
        };
        rows.push(("Sort by", html! { code { (field) } " " (order) }));
    }
    if let Some(how_many) = element.how_many {
        let how = match how_many {
            herald_project::HowMany::First => "only the first record",
            herald_project::HowMany::All => "all records",
        };
        rows.push(("How many", html! { (how) }));
    }
    if let Some(fields) = &element.store_fields {
        rows.push(("Fields kept", html! { code { (fields.join(", ")) } }));
    }
    if let Some(store_in) = &element.store_in {
        rows.push(("Store in", text(store_in)));
    }
    if !element.fields.is_empty() {
        let rows_of =
            element.fields.iter().map(|(field, value)| (field.as_str(), value_markup(value))).collect();
        rows.push(("Field values", values_table(("Field", "Value"), rows_of)));
    }
    if let Some(store_id_in) = &element.store_id_in {
        rows.push(("Store the id in", text(store_id_in)));
    }
    if let Some(items) = &element.assign {
        rows.push((
            "Set variable values",
            html! {
                table.config {
                    thead { tr { th { "Variable" } th { "Operator" } th { "Value" } } }
                    tbody {
                        @for item in items {
                            @for (target, value) in item {
                                @let (operator, value) = assignment_operator(value);
                                tr { td { code { (target) } } td { (operator) } td { (value_markup(value)) } }
                            }
                        }
                    }
                }
            },
        ));
    }
    if let Some(outcomes) = &element.decision {
        rows.push((
            "Outcomes",
            html! {
                ol.outcomes {
                    @for outcome in outcomes {
                        li {
                            @match &outcome.label {
                                Some(label) => { strong { (label) } " " code { (outcome.name) } }
                                None => { strong { code { (outcome.name) } } }
                            }
                            @if let Some(when) = &outcome.when { p { "When " code { (when) } } }
                            @if !outcome.conditions.is_empty() { (conditions_table(&outcome.conditions)) }
                            @if let Some(logic) = &outcome.logic { p { "Condition logic " code { (logic) } } }
                            p { "Then: " @match &outcome.next { Some(next) => (target_link(next)), None => "end" } }
                        }
                    }
                }
            },
        ));
        rows.push((
            "Default outcome",
            match &element.default {
                Some(next) => target_link(next),
                None => html! { "end" },
            },
        ));
    }
    if !element.inputs.is_empty() {
        let rows_of =
            element.inputs.iter().map(|(input, value)| (input.as_str(), value_markup(value))).collect();
        rows.push(("Inputs", values_table(("Input", "Value"), rows_of)));
    }
    if !element.outputs.is_empty() {
        let rows_of =
            element.outputs.iter().map(|(output, variable)| (output.as_str(), text(variable))).collect();
        rows.push(("Outputs", values_table(("Output", "Stored in"), rows_of)));
    }
    if element.action.is_some() {
        let retry = match &element.retry {
            None => html! { "not set: the provider's defaults" },
            Some(retry) => html! {
                ul.plain {
                    @if let Some(v) = retry.max_attempts { li { "max_attempts: " (v) } }
                    @if let Some(v) = retry.max_seconds { li { "max_seconds: " (v) } }
                    @if let Some(v) = retry.base_delay_ms { li { "base_delay_ms: " (v) } }
                    @if let Some(v) = retry.max_delay_ms { li { "max_delay_ms: " (v) } }
                }
            },
        };
        rows.push(("Retry policy", retry));
    }
    if let Some(wait) = &element.wait {
        let mut parts = Vec::new();
        for (unit, value) in [("minutes", wait.minutes), ("hours", wait.hours), ("days", wait.days)] {
            if let Some(value) = value {
                parts.push(format!("{value} {unit}"));
            }
        }
        rows.push((
            "Wait",
            html! {
                @if !parts.is_empty() { (parts.join(", ")) }
                @if let Some(until) = &wait.until { "until " code { (until) } }
            },
        ));
    }
    if let Some(max_rows) = element.max_rows {
        rows.push(("Max rows", html! { (max_rows) }));
    }
    if let Some(each) = &element.each {
        rows.push(("For each item", target_link(each)));
    }
    if let Some(after) = &element.after {
        rows.push(("After last item", target_link(after)));
    }
    if element.decision.is_none() && element.loop_over.is_none() {
        rows.push((
            "Next",
            match &element.next {
                Some(next) => target_link(next),
                None => html! { "end" },
            },
        ));
    }
    if let Some(fault) = &element.fault {
        rows.push(("Fault path", html! { span.fault { (target_link(fault)) } }));
    }
    rows
}

/// An assignment item's operator and value: `{add: X}` is Add X; a plain value is Equals. Keys are
/// read as the compiler reads them (any case, underscores ignored).
fn assignment_operator(value: &Value) -> (&'static str, &Value) {
    if let Value::Object(map) = value
        && map.len() == 1
        && let Some((key, inner)) = map.iter().next()
    {
        let normalized: String = key.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
        let operator = match normalized.as_str() {
            "equals" | "assign" => Some("Equals"),
            "add" => Some("Add"),
            "subtract" => Some("Subtract"),
            "addatstart" => Some("Add at start"),
            "removeall" => Some("Remove all"),
            "assigncount" | "equalscount" => Some("Equals count"),
            _ => None,
        };
        if let Some(operator) = operator {
            return (operator, inner);
        }
    }
    ("Equals", value)
}

fn yaml_excerpt(source: &SourceFile, lines: Lines) -> Markup {
    html! {
        pre.yaml {
            @for (number, text) in excerpt(source, lines) {
                span.line-number { (format!("{number:>4}")) } " " (text) "\n"
            }
        }
    }
}

/// The load warnings on one box, in full; folded when there are many.
fn element_warnings(name: &str, concerns: &[Concern<'_>]) -> Markup {
    let mine: Vec<&Concern<'_>> = concerns.iter().filter(|c| c.elements.iter().any(|e| e == name)).collect();
    html! {
        @if !mine.is_empty() {
            details.element-warnings open[mine.len() <= 2] {
                summary { "Load warnings (" (mine.len()) ")" }
                ul.warnings { @for concern in mine { li { (warning_markup(concern)) } } }
            }
        }
    }
}

fn element_panel(view: &FlowView<'_>, name: &str, element: &ElementDef, concerns: &[Concern<'_>]) -> Markup {
    let label = element.label.clone().unwrap_or_else(|| name.replace('_', " "));
    let lines = element_lines(view.source, name);
    html! {
        h2 { (label) }
        p.element-meta { span.kind { (view.flow.element_kind(name).map_or("", |kind| kind.as_str())) } " · " code { (name) } " · " a href=(diagram::flow_href(&view.flow.name)) { "close" } }
        (element_warnings(name, concerns))
        dl.config {
            @for (term, value) in element_config(view, element) {
                dt { (term) } dd { (value) }
            }
        }
        @if let Some(lines) = lines {
            h3 { "As written in " code { (view.source.path.display()) } ", lines " (lines.first) "–" (lines.last) }
            (yaml_excerpt(view.source, lines))
        }
    }
}

fn start_panel(view: &FlowView<'_>, concerns: &[Concern<'_>]) -> Markup {
    let (flow, def) = (view.flow, view.def);
    let graph = flow.graph();
    let run_as = match def.run_as {
        RunAs::TriggeringUser => "the user whose change triggered it",
        RunAs::Automation => "the automation user (herald.toml [automation])",
    };
    let variables: Vec<(&String, &herald_project::VariableDef)> = def.variables.iter().collect();
    html! {
        h2 { "Start" }
        p.element-meta { span.kind { (starts(flow, def).summary) } " · " a href=(diagram::flow_href(&flow.name)) { "close" } }
        (element_warnings(START, concerns))
        dl.config {
            @if let Some(trigger) = &def.trigger {
                dt { "Object" } dd { code { (trigger.object) } }
                dt { "Trigger" } dd { (event_text(trigger.on)) }
                @if let Some(when) = &trigger.when { dt { "Entry condition" } dd { code { (when) } } }
                @if !trigger.conditions.is_empty() { dt { "Entry conditions" } dd { (conditions_table(&trigger.conditions)) } }
                @if let Some(logic) = &trigger.logic { dt { "Condition logic" } dd { code { (logic) } } }
                @if trigger.only_when_updated_to_meet {
                    dt { "Run" } dd { "only when a record is updated to meet the condition requirements" }
                }
                dt { "Runs as" } dd { (run_as) }
            } @else {
                dt { "Type" } dd { "Autolaunched Flow (No Trigger): started with values for its input variables" }
            }
            dt { "Status" } dd { (status_text(def.status)) }
            dt { "Paths" }
            dd {
                ul.plain {
                    @for path in &graph.paths {
                        li {
                            @match &path.kind {
                                StartPathKind::Immediate => { "Run immediately" }
                                StartPathKind::Scheduled { name, label, field, offset_minutes } => {
                                    "Scheduled path " strong { (label) } " " code { (name) } ": " (offset_text(field.as_deref(), *offset_minutes))
                                }
                                StartPathKind::Asynchronous => {
                                    "Run asynchronously"
                                    @if let Some(label) = def.async_path.as_ref().and_then(|a| a.label.as_ref()) { " (" (label) ")" }
                                }
                            }
                            " → " (target_link(&graph.elements[path.target].name))
                        }
                    }
                }
            }
            @if !variables.is_empty() {
                dt { "Variables" }
                dd {
                    table.config {
                        thead { tr { th { "Name" } th { "Type" } th { "Available for" } th { "Default" } } }
                        tbody {
                            @for (name, variable) in &variables {
                                tr {
                                    td { code { (name) } }
                                    td { (variable.data_type) @if variable.collection { " collection" } }
                                    td {
                                        (match (variable.input, variable.output) {
                                            (true, true) => "input and output",
                                            (true, false) => "input",
                                            (false, true) => "output",
                                            (false, false) => "",
                                        })
                                    }
                                    td { @if let Some(default) = &variable.default { (value_markup(default)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for (key, lines) in start_lines(view.source, def) {
            h3 { "As written in " code { (view.source.path.display()) } " (" code { (key) } "), lines " (lines.first) "–" (lines.last) }
            (yaml_excerpt(view.source, lines))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The flow file `text` as the project loader keeps it.
    fn source(text: &str) -> SourceFile {
        let files =
            vec![(PathBuf::from("herald.toml"), String::new()), (PathBuf::from("flows/F.yaml"), text.into())];
        let (project, _) = herald_project::load_files(PathBuf::from("/p"), files);
        let project = project.expect("the files are read");
        project.source(project.flows["F"].source).clone()
    }

    const FLOW: &str = "kind: flow\ntrigger:\n  object: Lead\n  on: create\n  conditions:\n  - field: Phone\n    operator: IsBlank\nstart: A\nelements:\n  A:\n    action: S.Send\n    inputs:\n      message: \"{!Greeting}\"\n\n    # a comment inside\n    next: B\n  \"B\":\n    create: Task\n# a comment after\ntext_templates:\n  Greeting: {text: \"<p>Hi</p>\"}\n";

    #[test]
    fn a_keys_block_runs_to_its_last_deeper_line() {
        let source = source(FLOW);
        assert_eq!(element_lines(&source, "A"), Some(Lines { first: 10, last: 16, column: 3 }));
        assert_eq!(element_lines(&source, "B"), Some(Lines { first: 17, last: 18, column: 3 }));
        assert_eq!(element_lines(&source, "C"), None, "an element the file does not write");
        let trigger = block(&source, &YamlPath::root().key("trigger"), "trigger").unwrap();
        assert_eq!((trigger.first, trigger.last), (2, 7), "an indentless list belongs to its key");
    }

    #[test]
    fn an_element_reads_a_resource_by_merge_field() {
        assert!(reads("message: \"{!Greeting}\"", "greeting"));
        assert!(reads("x: \"{! Greeting.text }\"", "Greeting"));
        assert!(!reads("x: \"{!Greetings}\"", "Greeting"));
        assert!(!reads("Greeting: 1", "Greeting"));
    }

    #[test]
    fn spec_warnings_name_their_operation() {
        assert_eq!(
            operation_named("`x` is optional (operation Send-Message; 8x8's spec)"),
            Some("Send-Message")
        );
        assert_eq!(operation_named("no operation here"), None);
    }

    #[test]
    fn values_show_as_yaml_text() {
        let body = serde_json::json!({"messages": "{!messages}", "template": {"source": "{!$Record.Sender}", "encoding": "AUTO"}});
        let mut text = String::new();
        yaml_block(&body, 0, &mut text);
        assert_eq!(
            text,
            "messages: \"{!messages}\"\ntemplate:\n  source: \"{!$Record.Sender}\"\n  encoding: AUTO\n"
        );
        assert_eq!(yaml_flow(&serde_json::json!({"add": "{!message}"})), "{add: \"{!message}\"}");
        assert_eq!(yaml_string("true"), "\"true\"");
        assert_eq!(yaml_string("Open - Not Contacted"), "Open - Not Contacted");
        assert_eq!(offset_text(None, 60), "1 hour after the trigger");
        assert_eq!(offset_text(Some("CloseDate"), -2880), "2 days before CloseDate");
        let count = serde_json::json!({"Assign_Count": "{!messages}"});
        assert_eq!(assignment_operator(&count), ("Equals count", &serde_json::json!("{!messages}")));
        let literal = serde_json::json!({"destination": "+6591234567"});
        assert_eq!(
            assignment_operator(&literal),
            ("Equals", &literal),
            "a one-key object that is no operator"
        );
    }
}
