//! `herald flow validate`, `herald flow debug` and `herald credential set`.

use crate::serve::{load_project, open_engine};
use anyhow::{Context, Result, bail};
use herald_engine::{DebugOutcome, DebugStart, RollbackSource};
use herald_flow::{RunState, TraceEntry};
use herald_store::RunStatus;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

pub fn validate(dir: &Path) -> ExitCode {
    match load_project(dir) {
        Ok(project) => {
            let p = &project.project;
            println!(
                "{}: OK — {} object{}, {} credential{}, {} service{}, {} permission set{}, {} flow{}",
                dir.display(),
                p.objects.len(),
                plural(p.objects.len()),
                p.external_credentials.len() + p.named_credentials.len(),
                plural(p.external_credentials.len() + p.named_credentials.len()),
                p.services.len(),
                plural(p.services.len()),
                p.permission_sets.len(),
                plural(p.permission_sets.len()),
                project.flows.len(),
                plural(project.flows.len()),
            );
            for flow in project.flows.values() {
                println!(
                    "  flow {} {}{}: {}",
                    flow.name,
                    started_by(flow),
                    if flow.active { "" } else { " (draft)" },
                    flow.element_names().collect::<Vec<_>>().join(" → ")
                );
                for path in &flow.scheduled_paths {
                    println!("    scheduled path {}: {}", path.name, path_time(path));
                }
            }
            for warning in &project.warnings {
                eprintln!("{warning}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// What starts a flow, for listings: `on Lead Create`, or `autolaunched`.
fn started_by(flow: &herald_flow::CompiledFlow) -> String {
    match &flow.trigger {
        Some(trigger) => format!("on {} {:?}", trigger.object, trigger.event),
        None => "autolaunched".into(),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

pub struct DebugOptions {
    pub sandbox: Option<String>,
    pub db: Option<PathBuf>,
    pub ignore_entry_condition: bool,
    pub as_user: Option<String>,
    /// `--input NAME=VALUE`, as given, for an autolaunched flow.
    pub inputs: Vec<String>,
    /// `--record-id`: run on this existing record of the flow's object.
    pub record_id: Option<String>,
    /// `--prior`: the values fields had before the update being debugged, as JSON.
    pub prior: Option<String>,
    /// `--rollback`: run on a copy of the database, deleted after, so that nothing is kept.
    pub rollback: bool,
}

/// `--input NAME=VALUE`: the value is JSON (`3`, `true`, `"text"`, `["a","b"]`); anything that does
/// not parse as JSON is taken as text as written, so `--input smsBody=Hello` needs no quotes. Text that
/// happens to be valid JSON (`42`, `true`, `null`) must be quoted to stay text: `--input code='"42"'`.
pub(crate) fn parse_inputs(given: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut inputs = serde_json::Map::new();
    for item in given {
        let Some((name, text)) = item.split_once('=') else {
            bail!("--input {item}: write NAME=VALUE, e.g. --input smsBody=Hello");
        };
        let name = name.trim();
        if name.is_empty() {
            bail!("--input {item}: the variable name before `=` is missing");
        }
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
        if inputs.insert(name.to_string(), value).is_some() {
            bail!("--input {name} is given twice; keep one");
        }
    }
    Ok(inputs)
}

pub async fn debug(dir: &Path, flow: &str, record: Option<&str>, options: DebugOptions) -> Result<ExitCode> {
    let DebugOptions { sandbox, db, ignore_entry_condition, as_user, inputs, record_id, prior, rollback } =
        options;
    let json_object = |flag: &str, text: &str| -> Result<serde_json::Map<String, Value>> {
        let value: Value = serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))?;
        let Value::Object(map) = value else { bail!("{flag} must be a JSON object of field values") };
        Ok(map)
    };
    let start = if record.is_some() || record_id.is_some() || prior.is_some() {
        if !inputs.is_empty() {
            bail!(
                "--input is for autolaunched flows; a record-triggered flow takes its values from --record or --record-id"
            );
        }
        let fields = match record {
            Some(record) => json_object("--record", record)?,
            None if record_id.is_none() => {
                bail!("--prior needs the record it was the prior of: add --record or --record-id")
            }
            None => serde_json::Map::new(),
        };
        let prior = prior.as_deref().map(|text| json_object("--prior", text)).transpose()?;
        DebugStart::Record {
            record: herald_engine::DebugRecord { id: record_id.clone(), fields, prior },
            check_entry: !ignore_entry_condition,
        }
    } else {
        DebugStart::Inputs(parse_inputs(&inputs)?)
    };
    let project = match load_project(dir) {
        Ok(project) => project,
        Err(code) => return Ok(code),
    };
    let Some(compiled) = project.flows.get(flow).cloned() else {
        let hint =
            herald_project::did_you_mean(flow, project.flows.keys().map(String::as_str)).unwrap_or_default();
        bail!("no flow named `{flow}` in {} {hint}", dir.display());
    };
    match (&start, &compiled.trigger) {
        (DebugStart::Record { .. }, None) => bail!(
            "flow {flow} is autolaunched (it has no `trigger:`): drop --record, and pass its input variables with --input NAME=VALUE"
        ),
        (DebugStart::Inputs(_), Some(trigger)) => bail!(
            "flow {flow} is triggered by a {} record: give the record with --record '{{\"Field\": \"value\"}}', or an existing one with --record-id ID",
            trigger.object
        ),
        _ => {}
    }
    let outcome = if rollback {
        // On a copy of the database taken now, deleted when the run ends: whatever the run writes
        // (records, the runs they start, ledger rows, consent) goes with it.
        let source = RollbackSource::of(&crate::serve::engine_options(dir, &project, db));
        let database = crate::serve::shown(&source.database);
        println!("Debugging flow {} ({}) {}", compiled.label, compiled.name, started_by(&compiled));
        println!(
            "Rollback mode: nothing this run writes is kept (records, runs, messages); callouts are made."
        );
        herald_engine::debug_with_rollback(
            Arc::clone(&project),
            &source,
            sandbox,
            flow,
            &start,
            as_user.as_deref(),
        )
        .await
        .with_context(|| format!("rollback mode, on a copy of the database {database}"))?
    } else {
        let engine = open_engine(dir, Arc::clone(&project), db, sandbox).await?;
        println!("Debugging flow {} ({}) {}", compiled.label, compiled.name, started_by(&compiled));
        let actor = match &as_user {
            None => engine.automation_user().clone(),
            Some(name) => herald_engine::run_user(&engine.user_named(name).await?),
        };
        engine.debug(flow, &start, &actor).await?
    };
    match outcome {
        DebugOutcome::NotTriggered { .. } => {
            println!("The record does not meet the entry condition: the flow would not start.");
            println!("(Use --ignore-entry-condition to run it anyway.)");
            Ok(ExitCode::SUCCESS)
        }
        DebugOutcome::EntryError { message } => {
            println!("The entry condition could not be evaluated: {message}");
            Ok(ExitCode::FAILURE)
        }
        DebugOutcome::Ran { state, status, fault } => {
            print_trace(&state);
            match status {
                RunStatus::Finished => {
                    print_outputs(&compiled, &state);
                    println!("All done.");
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    println!("The flow failed: {}", fault.unwrap_or_else(|| "no reason was recorded".into()));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The values of the variables marked `output: true`, in declaration order, as Salesforce's debug
/// panel lists them at the end.
fn print_outputs(flow: &herald_flow::CompiledFlow, state: &RunState) {
    let mut outputs = flow.output_values(state).peekable();
    if outputs.peek().is_none() {
        return;
    }
    println!("Output variables:");
    for (name, value) in outputs {
        println!("  {name} = {}", shown(value));
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub fn print_trace(state: &RunState) {
    println!("Run {} as {}", state.interview_id(), state.user().name);
    for (index, entry) in state.trace().iter().enumerate() {
        print_entry(index + 1, entry);
    }
    print_omitted(state.trace_omitted().iter().map(|(element, count)| (element.as_str(), *count)));
}

/// The elements a long trace stopped listing (loops over many records), with how often each ran
/// unlisted.
pub fn print_omitted<'a>(omitted: impl Iterator<Item = (&'a str, u64)>) {
    let omitted: Vec<String> = omitted.map(|(element, count)| format!("{element} ×{count}")).collect();
    if !omitted.is_empty() {
        println!(
            "… and, not listed once the trace held {} entries (every callout and record change still is): {}",
            herald_flow::TRACE_KEPT,
            omitted.join(", ")
        );
    }
}

fn print_entry(number: usize, entry: &TraceEntry) {
    let timing =
        if entry.micros > 0 { format!(" — {:.1} ms", entry.micros as f64 / 1000.0) } else { String::new() };
    // An element of a subflow is indented under the Subflow element that called it.
    let indent = if entry.flow.is_some() { "  " } else { "" };
    match &entry.flow {
        Some(flow) => {
            println!(
                "{number}. {indent}{} ({}: {} in {flow}){timing}",
                entry.label, entry.kind, entry.element
            )
        }
        None => println!("{number}. {} ({}: {}){timing}", entry.label, entry.kind, entry.element),
    }
    print_values(indent, "Inputs", &entry.inputs);
    print_values(indent, "Outputs", &entry.outputs);
    if let Some(fault) = &entry.fault {
        println!("   {indent}Fault: {fault}");
    }
    println!("   {indent}→ {}", entry.result);
}

fn print_values(indent: &str, title: &str, values: &Value) {
    let Value::Object(map) = values else { return };
    if map.is_empty() {
        return;
    }
    println!("   {indent}{title}:");
    for (name, value) in map {
        println!("     {indent}{name} = {}", shown(value));
    }
}

pub async fn set_credential(
    dir: &Path,
    db: Option<PathBuf>,
    external: &str,
    principal: &str,
    parameter: &str,
    user: Option<&str>,
) -> Result<ExitCode> {
    let project = match load_project(dir) {
        Ok(project) => project,
        Err(code) => return Ok(code),
    };
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin().read_to_end(&mut raw).context("cannot read the value from standard input")?;
    let mut value = raw.as_slice();
    while let Some((last, rest)) = value.split_last()
        && (*last == b'\n' || *last == b'\r')
    {
        value = rest;
    }
    if value.is_empty() {
        bail!(
            "no value on standard input; pipe it in, e.g. `printf %s \"$SECRET\" | herald credential set ...`"
        );
    }
    let engine = open_engine(dir, project, db, None).await?;
    engine.set_secret(external, principal, parameter, value, user).await?;
    let owner = user.map(|u| format!(" for user {u}")).unwrap_or_default();
    println!("Stored {external} / {principal} / {parameter}{owner} (encrypted, {} bytes).", value.len());
    Ok(ExitCode::SUCCESS)
}

/// When a scheduled path runs, as a person says it: `1 hour after the trigger`, `15 minutes before Callback`.
fn path_time(path: &herald_flow::ScheduledPath) -> String {
    let minutes = path.offset_minutes.unsigned_abs();
    let (count, unit) = if minutes.is_multiple_of(1440) && minutes > 0 {
        (minutes / 1440, "day")
    } else if minutes.is_multiple_of(60) && minutes > 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    let side = if path.offset_minutes < 0 { "before" } else { "after" };
    let source = path.field.as_deref().unwrap_or("the trigger");
    format!("{count} {unit}{} {side} {source}", if count == 1 { "" } else { "s" })
}
