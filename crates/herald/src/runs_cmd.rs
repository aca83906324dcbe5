//! `herald runs`, `herald messages` and `herald webhook`: the runs and messages of a project's database.

use crate::serve::{load_project, open_engine};
use anyhow::Result;
use herald_store::{MessageFilter, RunStatus};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn statuses(names: &[String]) -> Result<Vec<RunStatus>> {
    let mut all = Vec::new();
    for name in names {
        all.extend(RunStatus::parse_list(name).map_err(anyhow::Error::msg)?);
    }
    Ok(all)
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

pub async fn list(
    dir: &Path,
    db: Option<PathBuf>,
    status: &[String],
    limit: i64,
    json: bool,
) -> Result<ExitCode> {
    let statuses = statuses(status)?;
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let runs = engine.list_runs(&statuses, limit.max(1)).await?;
    for run in &runs {
        if json {
            println!("{}", herald_server::run_json(run));
        } else {
            let detail = match (&run.next_attempt_at, &run.fault) {
                (Some(at), _) => format!("next attempt {at}"),
                (None, Some(fault)) => one_line(fault, 100),
                (None, None) => String::new(),
            };
            // The project version the run is pinned to (`v-` for a run older than versions).
            let version = run.version.map_or_else(|| "v-".to_string(), |v| format!("v{v}"));
            println!(
                "{}  {:<8}  {}  {}  {}  {}  {}",
                run.id,
                run.status.as_str(),
                run.created_at,
                run.flow,
                version,
                run.record_id,
                detail
            );
        }
    }
    if runs.is_empty() && !json {
        eprintln!("no runs");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(dir: &Path, db: Option<PathBuf>, id: &str, json: bool) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let run = engine.run(id).await?;
    let filter = MessageFilter { run_id: Some(id.to_string()), limit: 1000, ..MessageFilter::default() };
    let messages = engine.messages(&filter).await?;
    if json {
        let mut value = herald_server::run_json(&run);
        value["messages"] = serde_json::to_value(&messages)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Run {} of flow {} on {} {}", run.id, run.flow, run.object, run.record_id);
    println!("Status: {}", run.status.as_str());
    if let Some(version) = run.version {
        println!("Project version: {version}");
    }
    if let Some(at) = &run.next_attempt_at {
        println!("Next attempt: {at}");
    }
    if let Some(fault) = &run.fault {
        println!("Fault: {fault}");
    }
    println!("Created {}, updated {}", run.created_at, run.updated_at);
    if let Some(trace) = run.state.get("trace").and_then(|t| t.as_array()) {
        println!();
        for entry in trace {
            let text = |key: &str| entry.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
            match entry.get("flow").and_then(|v| v.as_str()) {
                Some(flow) => {
                    println!("    {} in {flow} ({}) -> {}", text("element"), text("kind"), text("result"))
                }
                None => println!("  {} ({}) -> {}", text("element"), text("kind"), text("result")),
            }
            if let Some(fault) = entry.get("fault").and_then(|v| v.as_str()) {
                println!("      fault: {}", one_line(fault, 200));
            }
        }
        if let Some(omitted) = run.state.get("trace_omitted").and_then(|t| t.as_object()) {
            crate::flow_cmd::print_omitted(
                omitted.iter().filter_map(|(e, c)| Some((e.as_str(), c.as_u64()?))),
            );
        }
    }
    if !messages.is_empty() {
        println!();
        for message in &messages {
            println!(
                "  message {}  {}  to {}  status {}{}",
                message.id,
                message.provider,
                message.destination,
                message.status,
                message.provider_message_id.as_deref().map(|id| format!("  id {id}")).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(
    dir: &Path,
    db: Option<PathBuf>,
    id: &str,
    from_element: Option<&str>,
) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let outcome = engine.retry_run(id, from_element).await?;
    println!(
        "Run {} will go on from {}; a `herald serve` running on this database takes it within seconds, or the next one at start (POST /api/v1/runs/{}/retry queues it at once).",
        outcome.run_id, outcome.from_element, outcome.run_id
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn wake(dir: &Path, db: Option<PathBuf>, id: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let outcome = engine.wake_run(id).await?;
    println!(
        "Run {} is due now; a `herald serve` running on this database takes it within seconds, or the next one at start (POST /api/v1/runs/{}/wake runs it at once).",
        outcome.run_id, outcome.run_id
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn messages(
    dir: &Path,
    db: Option<PathBuf>,
    filter: MessageFilter,
    json: bool,
) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    for message in engine.messages(&filter).await? {
        if json {
            println!("{}", serde_json::to_string(&message)?);
        } else {
            println!(
                "{}  {:<10}  {}  {}  to {}  {}",
                message.id,
                message.status,
                message.created_at,
                message.provider,
                message.destination,
                message.error_text.as_deref().map(|e| one_line(e, 80)).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn webhook_secret(dir: &Path, db: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let secret = engine.create_webhook_secret(name).await?;
    eprintln!(
        "Secret for webhook {name} (shown once; only its hash is stored). Configure the provider to post to /webhooks/{name} with `Authorization: Bearer <secret>` or `?secret=<secret>`:"
    );
    println!("{}", secret.as_str());
    Ok(ExitCode::SUCCESS)
}
