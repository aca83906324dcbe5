//! `herald user`, `herald token` and `herald vault`: administration against a project's database.

use crate::serve::{load_project, open_engine};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

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

pub async fn set_password(dir: &Path, db: Option<PathBuf>, name: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let password = read_password(name)?;
    let engine = open_engine(dir, project, db, None).await?;
    engine.set_password(name, password).await?;
    println!("Set the console password of {name} (only its Argon2id hash is stored).");
    Ok(ExitCode::SUCCESS)
}

/// The new password: asked twice without echo at a terminal, else the first line of standard input.
fn read_password(name: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden(&format!("New console password for {name}: "))?;
        let again = prompt_hidden("Again: ")?;
        if *first != *again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin.lock().read_line(&mut line).context("cannot read the password from standard input")?;
        Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string())
    };
    if password.is_empty() {
        bail!(
            "the password is empty; type one at the prompt, or pipe it in: printf '%s\\n' \"$PASSWORD\" | herald user password {name} --project DIR"
        );
    }
    Ok(password)
}

/// One line read from the terminal with echo off (restored afterwards, even on error).
fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let echo = EchoOff::new();
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.context("cannot read the password from the terminal")?;
    Ok(Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string()))
}

/// Turns the terminal's echo off on standard input while it lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios that tcgetattr fills in.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return EchoOff(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet);
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

pub async fn create_token(dir: &Path, db: Option<PathBuf>, user: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let issued = engine.issue_token(user).await?;
    eprintln!("Token {} for {user} (shown once; only its hash is stored):", issued.id);
    println!("{}", issued.token.as_str());
    Ok(ExitCode::SUCCESS)
}

pub async fn list_tokens(dir: &Path, db: Option<PathBuf>, user: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    // Deactivated users are listed too: their tokens may still be worth revoking before a
    // reactivation, and an admin looking them up should not be told the user does not exist.
    let accounts = engine.accounts().await?;
    let Some(account) = accounts.iter().find(|account| account.name == user) else {
        bail!("{}", engine.user_named(user).await.err().map(|e| e.to_string()).unwrap_or_default());
    };
    let tokens: Vec<_> = engine.tokens().await?.into_iter().filter(|t| t.user_id == account.id).collect();
    if tokens.is_empty() {
        eprintln!("{user} has no API tokens; create one with `herald token create {user}`.");
    }
    for token in tokens {
        let state = match (&token.revoked_at, token.revoked) {
            (Some(at), _) => format!("revoked {at}"),
            (None, true) => "revoked".to_string(),
            (None, false) => "active".to_string(),
        };
        println!("{}  created {}  {state}", token.id, token.created_at);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke_token(dir: &Path, db: Option<PathBuf>, id: &str) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    engine.revoke_token(id).await?;
    println!("Revoked {id}: it is refused from the next request on.");
    Ok(ExitCode::SUCCESS)
}

pub async fn rotate_key(dir: &Path, db: Option<PathBuf>) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let rotation = engine.rotate_key().await?;
    let progress = &rotation.progress;
    println!(
        "Rotated the master key {} to {} (fingerprints): {} secret{} re-encrypted under data key {}.",
        rotation.old_master,
        rotation.new_master,
        progress.resealed,
        if progress.resealed == 1 { "" } else { "s" },
        rotation.data_key
    );
    // The old key is retired by this command, or by a running server's upkeep once it switched.
    let in_use = progress.masters_in_use.iter().find(|m| m.master == rotation.old_master);
    if in_use.is_none() && progress.summary.live_masters <= 1 {
        println!("The old master key is retired: it opens nothing in this database any more.");
    } else if let Some(in_use) = in_use {
        let nodes: Vec<String> =
            in_use.nodes.iter().map(|node| format!("pid {} on {}", node.pid, node.host)).collect();
        println!(
            "The old master key still works for the running servers that use it ({}). A server reads its key file every {} s and switches to the new key; one keyed by {} must be restarted with the new key. The servers retire the old key once none uses it: `herald vault status` shows when.",
            nodes.join(", "),
            herald_engine::vault::UPKEEP_EVERY.as_secs(),
            herald_engine::MASTER_KEY_ENV,
        );
    }
    if progress.unreadable > 0 {
        eprintln!(
            "warning: {} secret{} failed {} integrity check and stay under the old data key; `herald vault status` lists them, and `herald credential set` sets each again.",
            progress.unreadable,
            if progress.unreadable == 1 { "" } else { "s" },
            if progress.unreadable == 1 { "its" } else { "their" },
        );
    }
    if std::env::var_os(herald_engine::MASTER_KEY_ENV).is_some() {
        println!(
            "Set {} to the value of {} before the next start of every herald process.",
            herald_engine::MASTER_KEY_ENV,
            herald_engine::NEW_MASTER_KEY_ENV
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn vault_status(dir: &Path, db: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let Ok(project) = load_project(dir) else { return Ok(ExitCode::FAILURE) };
    let engine = open_engine(dir, project, db, None).await?;
    let status = engine.vault_status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Master key in use: {} (from {})", status.master_key, status.key_source);
    println!("Data keys (new secrets are sealed under {}):", status.active_data_key);
    for key in &status.data_keys {
        let state = match &key.retired_at {
            Some(at) => format!("retired {at}"),
            None if key.id == status.active_data_key => "active".to_string(),
            None => "still in use, retired once no secret uses it".to_string(),
        };
        let plural = if key.secrets == 1 { "" } else { "s" };
        println!("  {:>4}  created {}  {:>5} secret{plural}  {state}", key.id, key.created_at, key.secrets);
    }
    println!("Master keys (fingerprints):");
    for master in &status.master_keys {
        let state = match &master.master.retired_at {
            Some(at) => format!("retired {at}"),
            None => format!(
                "wraps {} data key{}{}, used by {} live server{}",
                master.master.wrapped_keys,
                if master.master.wrapped_keys == 1 { "" } else { "s" },
                if master.in_use_here { ", in use here" } else { "" },
                master.live_nodes,
                if master.live_nodes == 1 { "" } else { "s" },
            ),
        };
        println!("  {}  added {}  {state}", master.master.id, master.master.added_at);
    }
    if status.nodes.is_empty() {
        println!("Servers holding the vault open: none");
    } else {
        println!("Servers holding the vault open:");
        for node in &status.nodes {
            println!(
                "  pid {} on {}  master key {}  started {}  seen {}{}",
                node.node.pid,
                node.node.host,
                node.node.master_id,
                node.node.started_at,
                node.node.seen_at,
                if node.live { "" } else { " (not live)" }
            );
        }
    }
    match &status.still_to_do {
        None => println!("Rotation: finished"),
        Some(left) => println!("Rotation: still finishing ({left})"),
    }
    if status.unreadable_secrets.is_empty() {
        println!("Unreadable secrets: none");
    } else {
        println!("Unreadable secrets:");
        for secret in &status.unreadable_secrets {
            let user =
                if secret.user_id.is_empty() { String::new() } else { format!(" (user {})", secret.user_id) };
            println!(
                "  {}/{}/{}{user}: {}",
                secret.external_credential, secret.principal, secret.parameter, secret.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
