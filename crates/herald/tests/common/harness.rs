//! The end-to-end harness. Every test that runs herald as a user does (`herald sandbox`, `herald serve`,
//! the CLI against the same database) starts it the same way, so the set-up lives here once and a test
//! states only what makes it special:
//!
//! ```ignore
//! let h = Harness::example("kixie-welcome-sms")
//!     .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], "a-wrong-key")
//!     .user("webform", &["Herald_API_User", "Kixie_Integration_User"])
//!     .sandbox_env("HERALD_SANDBOX_KIXIE_APIKEY", "the-right-key")
//!     .project_edit(|p| p.replace("credentials/Kixie_Endpoint.yaml", "apig.kixie.com", "other.test"))
//!     .start();
//! let run = h.lead_run(json!({"LastName": "L", "Phone": "+14155550100"})).await;
//! ```
//!
//! `start` makes, in order: the project (the example itself, or a copy when the test edits it), a
//! temporary database, `herald sandbox` with the sandbox's environment, each credential through
//! `herald credential set` (value on stdin, never echoed), the API user and its token through
//! `herald user add` and `herald token create`, and `herald serve` on that database with its callouts
//! routed to the sandbox. A new example needs nothing here but, for `sandbox_account`, its line in
//! `accounts.rs`.
//!
//! The harness keeps a transcript of what herald said to the test (CLI output, API answers read through
//! it, the output of every server it ran) for `assert_no_secret`. The sandbox's answers are left out: the
//! provider's side holds the secrets by design.

use super::*;
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a run may take to end after its record was written.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

type Edit = Box<dyn FnOnce(&ProjectCopy) + Send>;

/// What a harness starts with; `Harness::example` makes one, `start` starts it.
pub struct Setup {
    example: String,
    edits: Vec<Edit>,
    credentials: Vec<([String; 3], String)>,
    user: Option<(String, Vec<String>)>,
    sandbox_env: Vec<(String, String)>,
    server_env: Vec<(String, String)>,
    listen: String,
    server: bool,
    database: Option<String>,
}

impl Setup {
    /// Keeps herald's state in this database (a PostgreSQL URL) instead of a SQLite file of the
    /// test's own. The project is then a copy, since the vault's key file goes into its folder.
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_string());
        self
    }

    /// Stores `value` for a credential parameter with `herald credential set`; a second value for the same
    /// parameter replaces the first.
    pub fn credential(mut self, [external, principal, parameter]: [&str; 3], value: &str) -> Self {
        let key = [external.to_string(), principal.to_string(), parameter.to_string()];
        self.credentials.retain(|(existing, _)| existing != &key);
        self.credentials.push((key, value.to_string()));
        self
    }

    /// The sandbox's default account for the example's provider (see `accounts.rs`), and an API user
    /// `webform` with the permission sets that let its flows use it.
    pub fn sandbox_account(mut self) -> Self {
        let account = sandbox_account(&self.example);
        for (credential, value) in account.credentials {
            self = self.credential(*credential, value);
        }
        self.user("webform", account.permission_sets)
    }

    /// The API user the harness acts as: `herald user add NAME --permission-set ...`, then a token.
    pub fn user(mut self, name: &str, permission_sets: &[&str]) -> Self {
        self.user = Some((name.to_string(), permission_sets.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// An environment variable of `herald sandbox` (its Kixie account, say).
    pub fn sandbox_env(mut self, key: &str, value: &str) -> Self {
        self.sandbox_env.push((key.to_string(), value.to_string()));
        self
    }

    /// An environment variable of `herald serve` (`HERALD_LOG`, say), kept across restarts.
    pub fn server_env(mut self, key: &str, value: &str) -> Self {
        self.server_env.push((key.to_string(), value.to_string()));
        self
    }

    /// `herald serve --listen ADDRESS`, for a test that must know the address before the server starts
    /// (the default is a free loopback port, `127.0.0.1:0`).
    pub fn listen(mut self, address: &str) -> Self {
        self.listen = address.to_string();
        self
    }

    /// Changes the project before herald sees it; the example is copied first, so examples/ stays as is.
    pub fn project_edit(mut self, edit: impl FnOnce(&ProjectCopy) + Send + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// The sandbox, the database and the CLI only, for tests of commands that use them without a server
    /// (`herald flow debug`).
    pub fn no_server(mut self) -> Self {
        self.server = false;
        self
    }

    /// Sets everything up and starts the processes. Blocking: from a multi-threaded runtime that is busy
    /// with other work, call it in `spawn_blocking`.
    pub fn start(self) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = self.database.as_ref().map_or_else(|| dir.path().join("herald.db"), PathBuf::from);
        let (project, copy) = if self.edits.is_empty() && self.database.is_none() {
            (example(&self.example), None)
        } else {
            let copy = ProjectCopy::of(&self.example);
            for edit in self.edits {
                edit(&copy);
            }
            (copy.path().to_path_buf(), Some(copy))
        };
        let sandbox_env: Vec<(&str, &str)> =
            self.sandbox_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut harness = Harness {
            server: Mutex::new(None),
            server_url: Mutex::new(String::new()),
            sandbox: Process::start(&["sandbox", "--listen", "127.0.0.1:0"], &sandbox_env),
            api: None,
            token: None,
            plain: client(),
            transcript: Mutex::new(String::new()),
            listen: self.listen,
            server_env: self.server_env,
            project,
            db,
            _copy: copy,
            _dir: dir,
        };
        for ([external, principal, parameter], value) in &self.credentials {
            let args = ["credential", "set", external, principal, parameter];
            let (code, stdout, stderr) = harness.run(&args, value);
            harness.keep(&args.join(" "), &format!("{stdout}{stderr}"));
            assert_eq!(code, 0, "credential set {external} {principal} {parameter} failed: {stdout}{stderr}");
            assert!(
                !stdout.contains(value.as_str()) && !stderr.contains(value.as_str()),
                "the CLI echoed a secret"
            );
        }
        if let Some((name, sets)) = &self.user {
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            let token = harness.add_user(name, &sets);
            harness.api = Some(authorized(&token));
            harness.token = Some(token);
        }
        if self.server {
            harness.start_server();
        }
        harness
    }
}

/// herald, its sandbox and their database, for one test; everything is killed and deleted when it drops.
pub struct Harness {
    server: Mutex<Option<Process>>,
    /// The last server's address, kept while it is killed.
    server_url: Mutex<String>,
    sandbox: Process,
    api: Option<reqwest::Client>,
    /// The API user's token, to sign in to the console with.
    token: Option<String>,
    plain: reqwest::Client,
    transcript: Mutex<String>,
    listen: String,
    server_env: Vec<(String, String)>,
    project: PathBuf,
    db: PathBuf,
    // Dropped after the processes that use them.
    _copy: Option<ProjectCopy>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A harness for `examples/NAME`; add what the test needs, then `start`.
    pub fn example(name: &str) -> Setup {
        Setup {
            example: name.to_string(),
            edits: Vec::new(),
            credentials: Vec::new(),
            user: None,
            sandbox_env: Vec::new(),
            server_env: Vec::new(),
            listen: "127.0.0.1:0".to_string(),
            server: true,
            database: None,
        }
    }

    pub fn project(&self) -> &Path {
        &self.project
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    // ---- processes

    /// Starts `herald serve` on the harness's database, callouts routed to the sandbox.
    pub fn start_server(&self) {
        let mut server = self.server.lock().unwrap();
        assert!(server.is_none(), "the server is running already");
        let process = self.serve(&self.listen);
        *self.server_url.lock().unwrap() = process.url.clone();
        *server = Some(process);
    }

    /// Starts one more `herald serve` on the harness's database (a node beside the harness's own
    /// server), on a port of its own; the caller keeps, kills and restarts it.
    pub fn start_node(&self) -> Process {
        self.serve("127.0.0.1:0")
    }

    fn serve(&self, listen: &str) -> Process {
        let env: Vec<(&str, &str)> = self.server_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (project, db) = (self.project.to_str().unwrap(), self.db.to_str().unwrap());
        let args =
            ["serve", "--project", project, "--db", db, "--listen", listen, "--sandbox", &self.sandbox.url];
        Process::start(&args, &env)
    }

    /// SIGKILLs the server and waits until it is gone; its output joins the transcript. False if no
    /// server was running.
    pub fn kill_server(&self) -> bool {
        let Some(mut process) = self.server.lock().unwrap().take() else { return false };
        process.kill();
        self.keep("server output (killed)", &process.output());
        true
    }

    /// Kills the server, if one runs, and starts another on the same database and address.
    pub fn restart_server(&self) {
        self.kill_server();
        self.start_server();
    }

    /// The server's address (`http://127.0.0.1:PORT`); after a kill, the last one's.
    pub fn server_url(&self) -> String {
        let url = self.server_url.lock().unwrap().clone();
        assert!(!url.is_empty(), "this harness has no server");
        url
    }

    /// The running server's process id.
    pub fn server_pid(&self) -> u32 {
        self.server.lock().unwrap().as_ref().expect("no server runs").id()
    }

    /// What the running server printed so far (empty when none runs).
    pub fn server_output(&self) -> String {
        self.server.lock().unwrap().as_ref().map(Process::output).unwrap_or_default()
    }

    pub fn sandbox_url(&self) -> &str {
        &self.sandbox.url
    }

    /// The server's URL for `path` (`/api/v1/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server_url())
    }

    // ---- the CLI on the harness's project and database

    /// `herald ARGS --project P --db D`; the output joins the transcript.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let (code, stdout, stderr) = self.run(args, "");
        self.keep(&args.join(" "), &format!("{stdout}{stderr}"));
        (code, stdout, stderr)
    }

    /// `cli` for a command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.cli(args);
        assert_eq!(code, 0, "herald {} failed: {stdout}{stderr}", args.join(" "));
        stdout
    }

    /// `herald user add NAME --permission-set ...` and `herald token create NAME`; returns the token.
    pub fn add_user(&self, name: &str, permission_sets: &[&str]) -> String {
        let mut args = vec!["user", "add", name];
        for set in permission_sets {
            args.extend(["--permission-set", set]);
        }
        self.cli_ok(&args);
        // The token is printed once, for the test to use; only the command's stderr joins the transcript.
        let (code, stdout, stderr) = self.run(&["token", "create", name], "");
        self.keep("token create stderr", &stderr);
        assert_eq!(code, 0, "token create {name} failed: {stderr}");
        let token = stdout.trim().to_string();
        assert!(token.starts_with("hrld_"), "{token}");
        token
    }

    /// `herald flow debug PROJECT FLOW --record RECORD --sandbox URL --db D`.
    pub fn flow_debug(&self, flow: &str, record: &str) -> (i32, String, String) {
        let (project, db) = (self.project.to_str().unwrap(), self.db.to_str().unwrap());
        let args =
            ["flow", "debug", project, flow, "--record", record, "--sandbox", &self.sandbox.url, "--db", db];
        let (code, stdout, stderr) = herald(&args, "");
        self.keep("flow debug", &format!("{stdout}{stderr}"));
        (code, stdout, stderr)
    }

    /// `herald flow debug PROJECT FLOW --input NAME=VALUE ... --sandbox URL --db D`, for an autolaunched
    /// flow.
    pub fn flow_debug_inputs(&self, flow: &str, inputs: &[&str]) -> (i32, String, String) {
        let (project, db) = (self.project.to_str().unwrap(), self.db.to_str().unwrap());
        let mut args = vec!["flow", "debug", project, flow, "--sandbox", &self.sandbox.url, "--db", db];
        for input in inputs {
            args.extend(["--input", input]);
        }
        let (code, stdout, stderr) = herald(&args, "");
        self.keep("flow debug", &format!("{stdout}{stderr}"));
        (code, stdout, stderr)
    }

    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let location = ["--project", self.project.to_str().unwrap(), "--db", self.db.to_str().unwrap()];
        herald(&[args, &location[..]].concat(), stdin)
    }

    // ---- the API, as the harness's user

    /// A client that sends the API user's token.
    pub fn api(&self) -> &reqwest::Client {
        self.api.as_ref().expect("this harness has no API user: add .user(...) or .sandbox_account()")
    }

    /// A client without a token, for the sandbox, webhooks and anonymous requests.
    pub fn plain(&self) -> &reqwest::Client {
        &self.plain
    }

    /// `POST /api/v1/records/OBJECT`, which must answer 201; returns the answer.
    pub async fn post_record(&self, object: &str, fields: Value) -> Value {
        let path = format!("/api/v1/records/{object}");
        let response = self.api().post(self.url(&path)).json(&fields).send().await;
        let response = response.unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap();
        self.keep(&format!("POST {path}"), &text);
        assert_eq!(status, 201, "POST {path} {fields}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    pub async fn post_lead(&self, fields: Value) -> Value {
        self.post_record("Lead", fields).await
    }

    /// Posts a Lead and returns its (first) run once it has ended.
    pub async fn lead_run(&self, fields: Value) -> Value {
        let created = self.post_lead(fields).await;
        let run = created["runs"][0].as_str().unwrap_or_else(|| panic!("no run: {created}"));
        self.finished_run(run).await
    }

    /// `GET PATH`, which must answer 200 with JSON.
    pub async fn get(&self, path: &str) -> Value {
        let response =
            self.api().get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap();
        self.keep(&format!("GET {path}"), &text);
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// The run once it has ended: finished, failed or unknown (the statuses after which nothing more
    /// happens to it without a person). Fails after `RUN_LIMIT` with the run as last seen.
    pub async fn finished_run(&self, run_id: &str) -> Value {
        let path = format!("/api/v1/runs/{run_id}");
        let last = Mutex::new(Value::Null);
        let run = self
            .poll(RUN_LIMIT, || async {
                let run: Value = self.api().get(self.url(&path)).send().await.ok()?.json().await.ok()?;
                *last.lock().unwrap() = run.clone();
                matches!(run["status"].as_str(), Some("finished" | "failed" | "unknown")).then_some(run)
            })
            .await;
        let last = last.into_inner().unwrap();
        let run = run.unwrap_or_else(|| self.gave_up(&format!("run {run_id} to end; last seen: {last}")));
        self.keep(&format!("GET {path}"), &run.to_string());
        run
    }

    // ---- the sandbox

    /// Every request the sandbox received, oldest first.
    pub async fn sandbox_requests(&self) -> Vec<Value> {
        serde_json::from_value(self.sandbox_get("/_sandbox/requests").await).unwrap()
    }

    /// `GET PATH` of the sandbox, which must answer 200 with JSON.
    pub async fn sandbox_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.sandbox.url);
        let response = self.plain.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {url}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
    }

    /// `PUT PATH` of the sandbox's control API (faults, receipts, webhooks), which must answer 200.
    pub async fn sandbox_put(&self, path: &str, body: &Value) {
        let url = format!("{}{path}", self.sandbox.url);
        let response =
            self.plain.put(&url).json(body).send().await.unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        let status = response.status();
        assert_eq!(status, 200, "PUT {url} {body}: {}", response.text().await.unwrap());
    }

    /// `POST PATH` of the sandbox (`/_sandbox/inbound`); returns its JSON answer, whatever the status.
    pub async fn sandbox_post(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.sandbox.url);
        let response =
            self.plain.post(&url).json(body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let text = response.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
    }

    // ---- waiting

    /// Polls `check` until it returns Some. Fails at once, with its output, if the server dies meanwhile,
    /// and after `limit` with `what` and the end of the server's output.
    pub async fn eventually<T, F, Fut>(&self, what: &str, limit: Duration, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match self.poll(limit, check).await {
            Some(value) => value,
            None => self.gave_up(&format!("{what} (for {limit:?})")),
        }
    }

    /// `poll_until` that fails at once if the server dies: Some once `check` returns it, None after
    /// `limit`. For a test that writes its own message on giving up (see `gave_up`).
    pub async fn poll<T, F, Fut>(&self, limit: Duration, mut check: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        poll_until(limit, || {
            self.assert_server_alive();
            check()
        })
        .await
    }

    fn assert_server_alive(&self) {
        let mut server = self.server.lock().unwrap();
        let Some(status) = server.as_mut().and_then(Process::exited) else { return };
        let mut process = server.take().unwrap();
        process.kill();
        panic!("`{}` ended ({status}) on its own; its output:\n{}", process.command(), process.output());
    }

    /// Fails the test: gave up waiting for `what`, with the end of the server's output.
    pub fn gave_up(&self, what: &str) -> ! {
        let output = self.server_output();
        let tail: String = output.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("gave up waiting for {what}\nthe end of the server's output:\n{tail}");
    }

    // ---- what herald said

    /// Signs the API user in to the console with their token; returns the session cookie's value.
    pub async fn console_session(&self) -> String {
        let token = self.token.as_deref().expect("the harness has an API user");
        // The sign-in answers 303 with the cookie: read it there, not after following the redirect.
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response =
            client.post(self.url("/console/login")).form(&[("token", token)]).send().await.unwrap();
        let cookie = response.headers().get("set-cookie").expect("a session cookie").to_str().unwrap();
        let pair = cookie.split(';').next().unwrap();
        pair.strip_prefix("herald_session=").expect("the session cookie").to_string()
    }

    /// Every console page reachable by links from the home page, up to `limit` pages, as the API user
    /// sees them: (path, status, HTML), each kept in the transcript. Only GETs: nothing is changed.
    pub async fn crawl_console(&self, limit: usize) -> Vec<(String, u16, String)> {
        let session = self.console_session().await;
        let mut queue = std::collections::VecDeque::from(["/console".to_string()]);
        let mut seen: std::collections::HashSet<String> = queue.iter().cloned().collect();
        let mut pages = Vec::new();
        while let Some(path) = queue.pop_front() {
            if pages.len() >= limit {
                break;
            }
            let response = self
                .plain()
                .get(self.url(&path))
                .header("cookie", format!("herald_session={session}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            self.keep(&format!("console {path}"), &text);
            for link in text.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()) {
                let link = link.replace("&amp;", "&");
                let link = link.split('#').next().unwrap_or_default().to_string();
                if link.starts_with("/console")
                    && !link.starts_with("/console/assets")
                    && seen.insert(link.clone())
                {
                    queue.push_back(link);
                }
            }
            pages.push((path, status, text));
        }
        pages
    }

    /// Adds `text` to the transcript that `assert_no_secret` searches.
    pub fn keep(&self, what: &str, text: &str) {
        self.transcript.lock().unwrap().push_str(&format!("--- {what}\n{text}\n"));
    }

    /// Kills the server, so that its output is complete, and asserts that none of `secrets` appears in
    /// anything herald said to the test: CLI output, API answers read through the harness, and the output
    /// of every server it ran.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        self.kill_server();
        let transcript = self.transcript.lock().unwrap();
        assert!(transcript.len() > 1000, "the transcript is too short to mean anything: {transcript}");
        for secret in secrets {
            if let Some(at) = transcript.find(secret) {
                let start = transcript.floor_char_boundary(at.saturating_sub(200));
                let end = transcript.ceil_char_boundary((at + 200).min(transcript.len()));
                panic!("a secret is in herald's output, near: {}", &transcript[start..end]);
            }
        }
    }
}

/// A copy of an example in its own temporary folder, for a test that changes or breaks it.
pub struct ProjectCopy {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl ProjectCopy {
    /// Copies `examples/NAME` (without any database or key file in it).
    pub fn of(name: &str) -> ProjectCopy {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(name);
        copy_project(&example(name), &root);
        ProjectCopy { dir, root }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The path of FILE, relative to the project.
    pub fn file(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    /// Rewrites FILE with `change`.
    pub fn edit(&self, file: &str, change: impl FnOnce(&str) -> String) {
        let path = self.file(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(&path, change(&text)).unwrap();
    }

    /// Replaces every `from` in FILE with `to`; `from` must be there.
    pub fn replace(&self, file: &str, from: &str, to: &str) {
        let name = self.name();
        self.edit(file, |text| {
            assert!(text.contains(from), "`{from}` is not in examples/{name}/{file}: {text}");
            text.replace(from, to)
        });
    }

    /// Adds `text` to the end of FILE.
    pub fn append(&self, file: &str, text: &str) {
        self.edit(file, |content| format!("{content}{text}"));
    }

    fn name(&self) -> String {
        self.root.strip_prefix(self.dir.path()).unwrap().display().to_string()
    }
}
