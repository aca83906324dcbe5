//! `herald db`: copying herald's state between databases (a SQLite file, a PostgreSQL database) and
//! bringing a database's schema up to date.

use anyhow::{Context, Result, bail};
use herald_store::postgres::{is_url, masked};
use herald_store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A database location as herald prints it: a URL's password masked.
fn shown(location: &Path) -> String {
    let text = location.to_string_lossy();
    if is_url(&text) { masked(&text) } else { location.display().to_string() }
}

fn postgres(location: &Path) -> bool {
    is_url(&location.to_string_lossy())
}

/// Where the vault's key file is for a database (see `serve::engine_options`).
fn key_file(location: &Path) -> String {
    if postgres(location) {
        "herald.key in the project folder".into()
    } else {
        location.with_extension("key").display().to_string()
    }
}

/// `herald db copy`: every table of `from` into the empty database `to`.
pub async fn copy(from: &Path, to: &Path) -> Result<ExitCode> {
    if from == to {
        bail!(
            "--from and --to name the same database ({}): name a new, empty database with --to",
            shown(from)
        );
    }
    if !postgres(from) && !from.exists() {
        bail!(
            "there is no database at {}: --from names an existing SQLite file or a postgres:// URL",
            shown(from)
        );
    }
    let source = Store::open(from)
        .await
        .with_context(|| format!("cannot open the source database {}", shown(from)))?;
    let target =
        Store::open(to).await.with_context(|| format!("cannot open the target database {}", shown(to)))?;
    let copied = source.copy_into(&target).await;
    source.close().await;
    target.close().await;
    let report = match copied {
        Ok(report) => report,
        Err(error @ StoreError::TargetNotEmpty { .. }) => {
            bail!("{error}; nothing was copied into {}", shown(to))
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "the copy into {} stopped part-way: drop what it wrote (a new database, or delete the file) and run it again",
                    shown(to)
                )
            });
        }
    };
    println!("Copied {} ({}) into {} ({}):", shown(from), source.kind(), shown(to), target.kind());
    let width = report.tables.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (table, rows) in &report.tables {
        println!("  {table:<width$}  {rows:>9} row{}", if *rows == 1 { "" } else { "s" });
    }
    let total: u64 = report.tables.iter().map(|(_, rows)| rows).sum();
    println!("  {:<width$}  {total:>9} rows", "total");
    println!(
        "Secrets were copied sealed, never decrypted: the target needs the same master key. The key file \
         stays where it is ({}); give the target the same key ({}), or the same HERALD_MASTER_KEY.",
        key_file(from),
        key_file(to)
    );
    if postgres(to) {
        println!(
            "Point every node at the new database: [database] url in herald.toml, HERALD_DATABASE_URL, or --db."
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald db migrate`: brings the schema up to date, or with `check` only says whether it is.
pub async fn migrate(location: &Path, check: bool) -> Result<ExitCode> {
    let shown = shown(location);
    let status = Store::pending_migrations(location)
        .await
        .with_context(|| format!("cannot read the schema of {shown}"))?;
    if status.newer() {
        bail!(
            "the schema of {shown} is version {}, written by a newer herald; this herald knows versions up to {}: upgrade herald",
            status.applied,
            status.known
        );
    }
    let pending = status.pending();
    let plural = if pending == 1 { "" } else { "s" };
    if check {
        if pending == 0 {
            println!("The schema of {shown} is up to date (version {}).", status.known);
            return Ok(ExitCode::SUCCESS);
        }
        if !postgres(location) && !location.exists() {
            println!(
                "There is no database at {shown} yet: {pending} migration{plural} pending; `herald db migrate` (or any command that opens it) makes it."
            );
        } else {
            println!(
                "{pending} migration{plural} pending for {shown} (schema version {} of {}): run `herald db migrate` to apply them.",
                status.applied, status.known
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    Store::open(location)
        .await
        .with_context(|| format!("cannot migrate the database {shown}"))?
        .close()
        .await;
    if pending == 0 {
        println!("The schema of {shown} was already up to date (version {}).", status.known);
    } else {
        println!(
            "Applied {pending} migration{plural} to {shown}: its schema is at version {}.",
            status.known
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The database `herald db migrate` works on: `--db`, else the project's (see `serve::database_path`).
pub fn location(project: &Path, db: Option<PathBuf>) -> Result<PathBuf, ExitCode> {
    if let Some(db) = db {
        return Ok(db);
    }
    let compiled = crate::serve::load_project(project)?;
    Ok(crate::serve::database_path(project, &compiled, None))
}
