//! `herald flow validate`, `herald flow debug` and `herald credential set`.

use crate::serve::{load_project, open_engine};
use anyhow::{Context, Result, bail};
use herald_engine::DebugOutcome;
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
                    "  flow {} on {} {:?}{}: {}",
                    flow.name,
                    flow.object,
                    flow.event,
                    if flow.active { "" } else { " (draft)" },
                    flow.element_names().collect::<Vec<_>>().join(" → ")
                );
            }
            for warning in &project.warnings {
                eprintln!("{warning}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
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
}

pub async fn debug(dir: &Path, flow: &str, record: &str, options: DebugOptions) -> Result<ExitCode> {
    let DebugOptions { sandbox, db, ignore_entry_condition, as_user } = options;
    let record: Value = serde_json::from_str(record).context("--record is not valid JSON")?;
    let Value::Object(record) = record else { bail!("--record must be a JSON object of field values") };
    let project = match load_project(dir) {
        Ok(project) => project,
        Err(code) => return Ok(code),
    };
    let Some(compiled) = project.flows.get(flow).cloned() else {
        let hint =
            herald_project::did_you_mean(flow, project.flows.keys().map(String::as_str)).unwrap_or_default();
        bail!("no flow named `{flow}` in {} {hint}", dir.display());
    };
    let engine = open_engine(dir, Arc::clone(&project), db, sandbox).await?;
    println!(
        "Debugging flow {} ({}) on {} {:?}",
        compiled.label, compiled.name, compiled.object, compiled.event
    );
    let actor = match &as_user {
        None => engine.automation_user().clone(),
        Some(name) => herald_engine::run_user(&engine.user_named(name).await?),
    };
    match engine.debug_run(flow, &record, !ignore_entry_condition, &actor).await? {
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
    println!("{number}. {} ({}: {}){timing}", entry.label, entry.kind, entry.element);
    print_values("Inputs", &entry.inputs);
    print_values("Outputs", &entry.outputs);
    if let Some(fault) = &entry.fault {
        println!("   Fault: {fault}");
    }
    println!("   → {}", entry.result);
}

fn print_values(title: &str, values: &Value) {
    let Value::Object(map) = values else { return };
    if map.is_empty() {
        return;
    }
    println!("   {title}:");
    for (name, value) in map {
        let shown = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        println!("     {name} = {shown}");
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
