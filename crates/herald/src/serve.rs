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

/// Where the database is: `--db`, else `HERALD_DATABASE_URL`, else `[database] url`, else the SQLite
/// file `[database] path` in the project folder.
pub fn database_path(dir: &Path, project: &CompiledProject, db: Option<PathBuf>) -> PathBuf {
    let config = &project.project.config.database;
    db.or_else(|| std::env::var("HERALD_DATABASE_URL").ok().filter(|url| !url.is_empty()).map(PathBuf::from))
        .or_else(|| config.url.clone().map(PathBuf::from))
        .unwrap_or_else(|| dir.join(&config.path))
}

/// The engine's options for a project's database. The vault's key file sits beside a SQLite file;
/// with PostgreSQL it is `herald.key` in the project folder (every node needs the same key: the same
/// file, or `HERALD_MASTER_KEY`).
pub fn engine_options(dir: &Path, project: &CompiledProject, db: Option<PathBuf>) -> EngineOptions {
    let mut options = EngineOptions::for_database(database_path(dir, project, db));
    if herald_project::is_postgres_url(&options.database.to_string_lossy()) {
        options.key_file = dir.join("herald.key");
    }
    options.workers = project.project.config.runtime.workers;
    options
}

/// A database location as herald prints it: the password of a URL is masked.
pub fn shown(database: &Path) -> String {
    let text = database.to_string_lossy();
    if !herald_project::is_postgres_url(&text) {
        return database.display().to_string();
    }
    match reqwest::Url::parse(&text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("****"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "a PostgreSQL URL that cannot be read".into(),
    }
}

pub async fn open_engine(
    dir: &Path,
    project: Arc<CompiledProject>,
    db: Option<PathBuf>,
    sandbox: Option<String>,
) -> Result<Engine> {
    let mut options = engine_options(dir, &project, db);
    options.sandbox = sandbox;
    let database = shown(&options.database);
    Engine::open(project, &options).await.with_context(|| format!("cannot open the database {database}"))
}

pub async fn serve(
    dir: PathBuf,
    listen: Option<String>,
    db: Option<PathBuf>,
    sandbox: Option<String>,
) -> Result<ExitCode> {
    let started = Instant::now();
    // The files read are the files compiled and recorded as this version: a change in between cannot
    // make the recorded version differ from the one running.
    let (project, files) = match herald_engine::load_folder(&dir) {
        Ok((project, files)) => (Arc::new(project), files),
        Err(diagnostics) => {
            eprintln!("{}", with_root(&dir, &diagnostics.to_string()));
            return Ok(ExitCode::FAILURE);
        }
    };
    for warning in &project.warnings {
        eprintln!("{warning}");
    }
    let listen = listen.unwrap_or_else(|| project.project.config.server.listen.clone());
    let flows = project.flows.len();
    let mut options = engine_options(&dir, &project, db);
    options.sandbox = sandbox.clone();
    options.project_folder = Some((dir.clone(), files));
    let database = shown(&options.database);
    let engine = Engine::open(project, &options)
        .await
        .with_context(|| format!("cannot open the database {database}"))?;
    engine.start().await?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    println!(
        "herald listening on http://{address} ({flows} flow{}, project version {}, ready in {} ms{})",
        if flows == 1 { "" } else { "s" },
        engine.version().describe(),
        started.elapsed().as_millis(),
        sandbox.map(|s| format!(", callouts go to the sandbox at {s}")).unwrap_or_default()
    );
    // The URLs to give each provider for its receipts and inbound messages.
    for (name, webhook) in &engine.project().project.webhooks {
        let url =
            webhook.def.public_url.clone().unwrap_or_else(|| format!("http://{address}/webhooks/{name}"));
        println!("  webhook {name} ({}): {url}", webhook.def.provider);
    }
    reload_on_hangup(engine.clone(), dir.clone());
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

/// SIGHUP reloads the project folder, as `herald reload` does over the API: the outcome goes to the
/// server's output, since a signal has nobody to answer.
fn reload_on_hangup(engine: Engine, dir: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            match engine.reload().await {
                Ok(reloaded) if reloaded.changed => {
                    println!(
                        "SIGHUP: project reloaded; new runs start on version {}",
                        reloaded.version.describe()
                    );
                    for warning in &reloaded.warnings {
                        eprintln!("{warning}");
                    }
                }
                Ok(reloaded) => {
                    println!("SIGHUP: the project is unchanged (version {})", reloaded.version.describe())
                }
                Err(error) => eprintln!(
                    "SIGHUP: reload refused, still running version {}:\n{}",
                    engine.version().describe(),
                    with_root(&dir, &error.to_string())
                ),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (engine, dir);
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
