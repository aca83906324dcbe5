//! `herald serve` and `herald sandbox`: long-running processes that print where they listen.

use anyhow::{Context, Result};
use herald_engine::{Engine, EngineOptions};
use herald_flow::CompiledProject;
use herald_sandbox::{Sandbox, SandboxOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Loads a project; on failure prints every problem to stderr and returns the exit code.
pub fn load_project(dir: &Path) -> Result<Arc<CompiledProject>, ExitCode> {
    match herald_flow::load(dir) {
        Ok(project) => Ok(Arc::new(project)),
        Err(diagnostics) => {
            eprintln!("{}", with_root(dir, &diagnostics.to_string()));
            Err(ExitCode::FAILURE)
        }
    }
}

/// Diagnostics name files relative to the project; prefix the folder so the paths can be opened.
pub(crate) fn with_root(dir: &Path, text: &str) -> String {
    let root = dir.display().to_string();
    if root == "." || root.is_empty() {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let relative = [
                "herald.toml",
                "objects/",
                "credentials/",
                "services/",
                "permissions/",
                "flows/",
                "webhooks/",
                "labels/",
            ]
            .iter()
            .any(|p| line.starts_with(p));
            if relative { format!("{}/{line}", root.trim_end_matches('/')) } else { line.to_string() }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn database_path(dir: &Path, project: &CompiledProject, db: Option<PathBuf>) -> PathBuf {
    db.unwrap_or_else(|| dir.join(&project.project.config.database.path))
}

pub async fn open_engine(
    dir: &Path,
    project: Arc<CompiledProject>,
    db: Option<PathBuf>,
    sandbox: Option<String>,
) -> Result<Engine> {
    let database = database_path(dir, &project, db);
    let mut options = EngineOptions::for_database(database.clone());
    options.sandbox = sandbox;
    options.workers = project.project.config.runtime.workers;
    Engine::open(project, &options)
        .await
        .with_context(|| format!("cannot open the database {}", database.display()))
}

pub async fn serve(
    dir: PathBuf,
    listen: Option<String>,
    db: Option<PathBuf>,
    sandbox: Option<String>,
) -> Result<ExitCode> {
    let started = Instant::now();
    let project = match load_project(&dir) {
        Ok(project) => project,
        Err(code) => return Ok(code),
    };
    for warning in &project.warnings {
        eprintln!("{warning}");
    }
    let listen = listen.unwrap_or_else(|| project.project.config.server.listen.clone());
    let flows = project.flows.len();
    let engine = open_engine(&dir, project, db, sandbox.clone()).await?;
    engine.start().await?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    println!(
        "herald listening on http://{address} ({flows} flow{}, ready in {} ms{})",
        if flows == 1 { "" } else { "s" },
        started.elapsed().as_millis(),
        sandbox.map(|s| format!(", callouts go to the sandbox at {s}")).unwrap_or_default()
    );
    // The URLs to give each provider for its receipts and inbound messages.
    for (name, webhook) in &engine.project().project.webhooks {
        let url =
            webhook.def.public_url.clone().unwrap_or_else(|| format!("http://{address}/webhooks/{name}"));
        println!("  webhook {name} ({}): {url}", webhook.def.provider);
    }
    axum::serve(listener, herald_server::router(engine.clone())).with_graceful_shutdown(shutdown()).await?;
    // A stopped server no longer keeps its master key from being retired by a rotation.
    engine.leave_vault().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn sandbox(
    listen: String,
    businessid: String,
    apikey: String,
    config: Option<PathBuf>,
) -> Result<ExitCode> {
    let options = match config {
        // A config file holds every option, the Kixie account included.
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let options = serde_json::from_str::<SandboxOptions>(&text).with_context(|| {
                format!("{} is not valid sandbox options (see docs/sandbox.md)", path.display())
            })?;
            if let Err(problem) = options.validate() {
                anyhow::bail!("{}: {problem} (see docs/sandbox.md)", path.display());
            }
            options
        }
        None => SandboxOptions::default()
            .with_section("kixie", serde_json::json!({"businessid": businessid, "apikey": apikey}))
            .map_err(|problem| anyhow::anyhow!("--kixie-businessid, --kixie-apikey: {problem}"))?,
    };
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let sandbox = Sandbox::new(options);
    println!(
        "herald sandbox listening on http://{address} (providers at /HOST/...: {}; control API under /_sandbox/, see docs/sandbox.md)",
        herald_sandbox::provider_hosts().join(", ")
    );
    tokio::select! {
        served = sandbox.serve(listener) => served?,
        () = shutdown() => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
