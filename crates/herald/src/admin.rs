//! `herald user`, `herald token` and `herald vault`: administration against a project's database.

use crate::serve::{load_project, open_engine};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub async fn add_user(
    dir: &Path,
    db: Option<PathBuf>,
    name: &str,
    permission_sets: &[String],
) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let user = engine.create_user(name, permission_sets).await?;
    let scopes: Vec<&str> = engine.scopes(&user).iter().map(|s| s.name()).collect();
    println!(
        "Created user {} ({}) with permission sets {}; API scopes: {}",
        user.name,
        user.id,
        user.permission_sets.join(", "),
        if scopes.is_empty() { "none".to_string() } else { scopes.join(", ") }
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn deactivate_user(dir: &Path, db: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    engine.deactivate_user(name).await?;
    println!("Deactivated {name}: its API tokens are refused from now on.");
    Ok(ExitCode::SUCCESS)
}

pub async fn list_users(dir: &Path, db: Option<PathBuf>) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    for user in engine.users().await? {
        println!("{}  {}  {}", user.id, user.name, user.permission_sets.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn create_token(dir: &Path, db: Option<PathBuf>, user: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let token = engine.create_token(user).await?;
    eprintln!("Token for {user} (shown once; only its hash is stored):");
    println!("{}", token.as_str());
    Ok(ExitCode::SUCCESS)
}

pub async fn rotate_key(dir: &Path, db: Option<PathBuf>) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let count = engine.rotate_key().await?;
    println!("Re-encrypted {count} secret{} under a new master key.", if count == 1 { "" } else { "s" });
    if std::env::var_os(herald_engine::MASTER_KEY_ENV).is_some() {
        println!(
            "Set {} to the value of {} before the next start.",
            herald_engine::MASTER_KEY_ENV,
            herald_engine::NEW_MASTER_KEY_ENV
        );
    }
    Ok(ExitCode::SUCCESS)
}
