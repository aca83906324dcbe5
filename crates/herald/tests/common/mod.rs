//! Shared by the tests that run herald as separate processes, as a user would: the harness that sets up
//! the sandbox, the server, the credentials and the API user (`harness.rs`), the processes themselves
//! (`process.rs`), the sandbox's accounts per example (`accounts.rs`), and waiting for an outcome.
#![allow(dead_code)]

mod accounts;
mod harness;
mod process;

// Each test file uses a part of these.
#[allow(unused_imports)]
pub use {accounts::*, harness::*, process::*};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// A flow file without its `scheduled_paths:` block (and the comment lines just before it). For the
/// tests that count one run per lead and wait until no run is waiting: a follow-up an hour later
/// would keep them waiting. The follow-up itself is tested in `scheduled_paths.rs`.
pub fn without_scheduled_paths(flow: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut inside = false;
    for line in flow.lines() {
        if line.starts_with("scheduled_paths:") {
            inside = true;
            while kept.last().is_some_and(|l| l.starts_with('#')) {
                kept.pop();
            }
            continue;
        }
        if inside && (line.starts_with(' ') || line.is_empty()) {
            continue;
        }
        inside = false;
        kept.push(line);
    }
    kept.join("\n") + "\n"
}

/// An HTTP client for talking to herald and the sandbox over loopback.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap()
}

/// A client that sends `Authorization: Bearer TOKEN` on every request. A request that gets no answer
/// within a minute fails instead of hanging the test.
pub fn authorized(token: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Polls until `check` returns Some, or panics after `limit` naming `what`. Tests wait for outcomes,
/// never for time. With a harness, prefer `Harness::eventually`, which also watches the server.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(limit, check).await.unwrap_or_else(|| panic!("gave up waiting for {what} (for {limit:?})"))
}

/// Calls `check` until it returns Some, at first every 10 ms and then less often (at most every 100 ms);
/// None once `limit` has passed. A check that hangs is cut off at the limit.
pub async fn poll_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, check()).await {
            Ok(Some(value)) => return Some(value),
            Ok(None) => {}
            Err(_) => return None,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(100));
    }
}

/// A loopback port nobody listens on now, for a server that must know its address before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Copies a project folder, leaving out databases and key files.
pub fn copy_project(from: &Path, to: &Path) {
    for entry in walk(from) {
        let relative = entry.strip_prefix(from).unwrap();
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if !path.extension().is_some_and(|e| e == "db" || e == "key" || e == "db-wal" || e == "db-shm")
        {
            files.push(path);
        }
    }
    files
}
