//! Helpers for tests that run herald as separate processes, as a user would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// An HTTP client for talking to herald and the sandbox over loopback.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `herald user add NAME --permission-set ...` then `herald token create NAME`; returns the token.
pub fn user_with_token(project: &Path, db: &Path, name: &str, sets: &[&str]) -> String {
    let mut args = vec!["user", "add", name];
    for set in sets {
        args.extend(["--permission-set", set]);
    }
    args.extend(["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    let (code, stdout, stderr) = herald(&args, "");
    assert_eq!(code, 0, "user add failed: {stdout}{stderr}");
    let (code, stdout, stderr) = herald(
        &["token", "create", name, "--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "token create failed: {stderr}");
    let token = stdout.trim().to_string();
    assert!(token.starts_with("hrld_"), "{token}");
    token
}

/// A client that sends `Authorization: Bearer TOKEN` on every request.
pub fn authorized(token: &str) -> reqwest::Client {
    let _ = client();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// A child process that is killed when the test ends, with everything it printed kept.
pub struct Process {
    child: Child,
    pub url: String,
    output: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `herald ARGS` and waits for its "listening on http://..." line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(HERALD);
        command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        command.env_remove("HERALD_MASTER_KEY");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("herald starts");
        let output = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        output.lock().unwrap().push_str(&first);
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}; output: {}", output.lock().unwrap()))
            .to_string();
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Process { child, url, output }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `herald ARGS` to completion with `stdin`, returning (exit code, stdout, stderr).
pub fn herald(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(HERALD)
        .args(args)
        .env_remove("HERALD_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Polls until `check` returns Some, or panics after `limit`. Tests wait for outcomes, never for time.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "gave up waiting after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Copies a project folder so a test can break or extend it.
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

/// `herald credential set EXTERNAL PRINCIPAL PARAMETER` with the value on stdin; the command must
/// succeed without echoing the value.
pub fn set_credential(project: &Path, db: &Path, credential: [&str; 3], value: &str) {
    let [external, principal, parameter] = credential;
    let args = [
        "credential",
        "set",
        external,
        principal,
        parameter,
        "--project",
        project.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = herald(&args, value);
    assert_eq!(code, 0, "credential set failed: {stdout}{stderr}");
    assert!(!stdout.contains(value) && !stderr.contains(value), "the CLI echoed a secret");
}

/// `herald serve` on a free loopback port, its callouts routed to the sandbox at `sandbox`.
pub fn serve(project: &Path, db: &Path, sandbox: &str) -> Process {
    serve_on(project, db, sandbox, "127.0.0.1:0", &[])
}

/// `herald serve` on `listen` with extra environment (`HERALD_LOG`, ...).
pub fn serve_on(project: &Path, db: &Path, sandbox: &str, listen: &str, env: &[(&str, &str)]) -> Process {
    Process::start(
        &[
            "serve",
            "--project",
            project.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--listen",
            listen,
            "--sandbox",
            sandbox,
        ],
        env,
    )
}
