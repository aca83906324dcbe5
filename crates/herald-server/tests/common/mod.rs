//! The fixture every in-process test of the router shares: requests go to the router with
//! `tower::ServiceExt::oneshot` (no socket), against an engine on a temporary database and project
//! folder, with callouts answered by the in-process sandbox. The API is reached with each user's
//! token, the console with a session cookie, as a browser would.
// Each test file uses a part of the fixture.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use herald_engine::{Engine, EngineOptions};
use herald_project::ApiScope;
use herald_sandbox::{Sandbox, SandboxOptions};
use herald_store::RunStatus;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tower::ServiceExt;

/// The values the sandbox's Kixie account accepts; set through `PUT /api/v1/credentials/...` only.
pub const BUSINESSID: &str = "biz-route-test-5c1e";
pub const APIKEY: &str = "key-route-test-9f3a7d";
/// A wrong key, set through the same route to make a callout fail; a secret all the same.
pub const WRONG_APIKEY: &str = "key-route-test-wrong-41b2";

pub const PHONE: &str = "+14155550100";

/// The console password [`Api::set_password`] gives.
pub const PASSWORD: &str = "correct horse battery staple";

/// The permission set that grants each scope alone (besides `Admin`, which grants them all).
pub const SCOPE_SETS: [(ApiScope, &str); 6] = [
    (ApiScope::ReadRecords, "Records_Reader"),
    (ApiScope::WriteRecords, "Records_Writer"),
    (ApiScope::ReadRuns, "Runs_Reader"),
    (ApiScope::ManageFlows, "Flow_Manager"),
    (ApiScope::ManageCredentials, "Credential_Manager"),
    (ApiScope::RunFlows, "Flow_Runner"),
];

/// A project like `examples/kixie-welcome-sms` (a Lead welcome SMS through Kixie, a Task on a fault,
/// a Kixie webhook), with one permission set per API scope and an external credential with a per-user
/// principal.
pub fn project_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = [
        (
            "herald.toml",
            "[runtime]\nworkers = 2\ndefault_country = \"US\"\n\n[automation]\npermission_sets = [\"Kixie_Integration_User\"]\n",
        ),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  FirstName: {type: text, length: 40}\n  LastName: {type: text, length: 80, required: true}\n  Phone: {type: phone, length: 40}\n  Email: {type: email, length: 80}\n  Status: {type: picklist, values: [Open, Working], default: Open}\n",
        ),
        (
            "objects/Task.yaml",
            "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, length: 255, required: true}\n  WhoId: {type: reference, references: [Lead]}\n",
        ),
        (
            "credentials/Kixie_API_Auth.yaml",
            "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Kixie_Principal\n    parameters: [businessid, apikey]\n",
        ),
        (
            // A per-user principal (each user keeps their own value), used by no callout: for the
            // console's and the credentials route's handling of per-user values.
            "credentials/Crm_Auth.yaml",
            "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Crm_User\n    type: per_user\n    parameters: [token]\n",
        ),
        (
            "credentials/Kixie_Endpoint.yaml",
            "kind: named-credential\nurl: https://apig.kixie.com\nexternal_credential: Kixie_API_Auth\ngenerate_authorization_header: false\nallow_formulas_in_body: true\n",
        ),
        (
            "services/KixieService.yaml",
            "kind: http-callout\nnamed_credential: Kixie_Endpoint\nprovider: kixie\nactions:\n  Send_SMS:\n    method: POST\n    path: /app/event\n    sample_request: {businessid: s, apikey: s, target: s, eventname: s, message: s}\n    sample_response: {success: true}\n",
        ),
        (
            "flows/Lead_Welcome_SMS.yaml",
            r#"kind: flow
status: active
trigger: {object: Lead, on: create, conditions: [{field: Phone, operator: IsBlank, right: false}]}
start: Send_SMS
elements:
  Send_SMS:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!$Record.Phone}"
      eventname: sms
      message: "Hi {!$Record.FirstName}, thanks for reaching out!"
    fault: Log_SMS_Failure
  Log_SMS_Failure:
    create: Task
    fields: {Subject: "SMS failed: {!$Flow.FaultMessage}", WhoId: "{!$Record.Id}"}
"#,
        ),
        (
            "flows/Kixie_Send.yaml",
            r#"kind: flow
label: Send a Kixie SMS
variables:
  phone: {type: Text, input: true}
  text: {type: Text, input: true, default: "Hello"}
  code: {type: Number, output: true}
  internal: {type: Text}
start: Send_SMS
elements:
  Send_SMS:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!phone}"
      eventname: sms
      message: "{!text}"
    outputs: {responseCode: code}
"#,
        ),
        (
            "flows/Kixie_Later.yaml",
            r#"kind: flow
label: Send a Kixie SMS later
variables:
  phone: {type: Text, input: true}
  code: {type: Number, output: true}
start: Pause
elements:
  Pause:
    wait: {minutes: 60}
    next: Send_SMS
  Send_SMS:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!phone}"
      eventname: sms
      message: "Later"
    outputs: {responseCode: code}
"#,
        ),
        ("webhooks/Kixie_Events.yaml", "kind: webhook\nprovider: kixie\nnamed_credential: Kixie_Endpoint\n"),
        (
            "permissions/Kixie_Integration_User.yaml",
            "kind: permission-set\nexternal_credential_principal_access: [Kixie_API_Auth-Kixie_Principal]\n",
        ),
        (
            "permissions/Admin.yaml",
            "kind: permission-set\napi_scopes: [read_records, write_records, read_runs, manage_flows, manage_credentials, run_flows]\n",
        ),
    ]
    .into_iter()
    .map(|(path, text)| (path.to_string(), text.to_string()))
    .collect();
    for (scope, set) in SCOPE_SETS {
        files.push((
            format!("permissions/{set}.yaml"),
            format!("kind: permission-set\napi_scopes: [{}]\n", scope.name()),
        ));
    }
    files
}

/// Who a request comes from.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anonymous,
    /// A user of the fixture, by name.
    User(&'a str),
    /// A raw `Authorization` header value.
    Header(&'a str),
    /// A console session id, sent in the `herald_session` cookie.
    Session(&'a str),
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The single error of an error answer, checked to have the documented shape.
    pub fn error(&self) -> (String, String, Vec<String>) {
        let body = self.json();
        let errors = body.as_array().unwrap_or_else(|| panic!("errors come as an array: {body}"));
        assert_eq!(errors.len(), 1, "{body}");
        let error = errors[0].as_object().unwrap();
        let keys: Vec<&str> = error.keys().map(String::as_str).collect();
        assert_eq!(keys, ["errorCode", "message", "fields"], "{body}");
        let fields = error["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().into()).collect();
        (error["errorCode"].as_str().unwrap().into(), error["message"].as_str().unwrap().into(), fields)
    }

    pub fn error_code(&self) -> String {
        self.error().0
    }

    /// The `herald_session` cookie set by this answer: its value and its attributes.
    pub fn session_cookie(&self) -> Option<(String, String)> {
        let cookie = self.headers.get(header::SET_COOKIE)?.to_str().unwrap().to_string();
        let (pair, _) = cookie.split_once(';').unwrap_or((&cookie, ""));
        let value = pair.strip_prefix("herald_session=")?.to_string();
        Some((value, cookie))
    }

    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    /// The value of the hidden `csrf` field of a console page (its sign-out form has one).
    pub fn csrf_token(&self) -> String {
        let start = self.text.find(r#"name="csrf" value=""#).expect("a form with a CSRF token")
            + r#"name="csrf" value=""#.len();
        self.text[start..].split('"').next().unwrap().to_string()
    }
}

/// An engine on a temporary project and database, its router, and a token for each user:
/// `admin` (every scope, may call Kixie), `only_<scope>` and `all_but_<scope>` for each scope, and
/// `no_scopes`. The Kixie secrets are set through the credentials route. Every answer is kept.
pub struct Api {
    _dir: tempfile::TempDir,
    pub engine: Engine,
    /// The in-process sandbox the engine's callouts go to: its faults, and what it received.
    pub sandbox: Sandbox,
    pub router: Router,
    pub tokens: BTreeMap<String, String>,
    pub answers: Mutex<Vec<String>>,
}

impl Api {
    pub async fn new() -> Api {
        Api::build(project_files(), true).await
    }

    /// The fixture, with the engine's callouts sent to the in-process sandbox (`herald serve
    /// --sandbox`) or, with `callouts_to_sandbox` false, where the project says (the sandbox still
    /// runs, and receives nothing).
    pub async fn with_sandbox(callouts_to_sandbox: bool) -> Api {
        Api::build(project_files(), callouts_to_sandbox).await
    }

    /// The fixture on other project files (which keep [`project_files`]' permission sets and Kixie
    /// credential, for the users and secrets).
    pub async fn with_project(files: Vec<(String, String)>) -> Api {
        Api::build(files, true).await
    }

    async fn build(files: Vec<(String, String)>, callouts_to_sandbox: bool) -> Api {
        let kixie = json!({"businessid": BUSINESSID, "apikey": APIKEY});
        let sandbox = Sandbox::new(SandboxOptions::default().with_section("kixie", kixie).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(sandbox.clone().serve(listener));

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = herald_flow::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let mut options = EngineOptions::for_database(dir.path().join("herald.db"));
        options.sandbox = callouts_to_sandbox.then(|| format!("http://{address}"));
        options.workers = 2;
        let engine = Engine::open(std::sync::Arc::new(project), &options).await.unwrap();
        engine.start().await.unwrap();

        let mut users: Vec<(String, Vec<&str>)> =
            vec![("admin".into(), vec!["Admin", "Kixie_Integration_User"])];
        users.push(("no_scopes".into(), vec!["Kixie_Integration_User"]));
        for (scope, set) in SCOPE_SETS {
            users.push((format!("only_{}", scope.name()), vec![set]));
            let others = SCOPE_SETS.iter().filter(|(s, _)| *s != scope).map(|(_, set)| *set).collect();
            users.push((format!("all_but_{}", scope.name()), others));
        }
        let mut tokens = BTreeMap::new();
        for (name, sets) in users {
            let sets: Vec<String> = sets.into_iter().map(String::from).collect();
            engine.create_user(&name, &sets).await.unwrap();
            tokens.insert(name.clone(), engine.create_token(&name).await.unwrap().to_string());
        }
        let router = herald_server::router(engine.clone());
        let api = Api { _dir: dir, engine, sandbox, router, tokens, answers: Mutex::new(Vec::new()) };
        api.set_secret("businessid", BUSINESSID).await;
        api.set_secret("apikey", APIKEY).await;
        api
    }

    pub async fn set_secret(&self, parameter: &str, value: &str) {
        let path = format!("/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/{parameter}");
        let answer = self.send(Method::PUT, &path, Who::User("admin"), value.to_string()).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
        assert_eq!(answer.text, "", "a 204 has no body");
    }

    /// A request to the router; every answer is kept (see `answers`), headers and body.
    pub async fn send(&self, method: Method, path: &str, from: Who<'_>, body: impl Into<Body>) -> Answer {
        let authorization = match from {
            Who::Anonymous | Who::Session(_) => None,
            Who::User(name) => Some(format!("Bearer {}", self.tokens[name])),
            Who::Header(value) => Some(value.to_string()),
        };
        let mut headers = vec![(header::CONTENT_TYPE.as_str(), "application/json".to_string())];
        if let Some(value) = authorization {
            headers.push((header::AUTHORIZATION.as_str(), value));
        }
        if let Who::Session(session) = from {
            headers.push((header::COOKIE.as_str(), format!("theme=dark; herald_session={session}")));
        }
        self.request(method, path, &headers, body.into()).await
    }

    /// A request with exactly these headers (and `Host: herald.test`), its answer kept.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, "herald.test");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.answers.lock().unwrap().push(format!("{headers:?} {text}"));
        Answer { status, headers, text }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Who::User("admin"), Body::empty()).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Who::User("admin"), body.to_string()).await
    }

    /// Creates a Lead as `admin` and waits for the runs it started to end.
    pub async fn lead(&self, fields: Value) -> (String, Vec<String>) {
        let answer = self.post_json("/api/v1/records/Lead", fields).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        let body = answer.json();
        let runs: Vec<String> =
            body["runs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        for run in &runs {
            self.ended(run).await;
        }
        (body["id"].as_str().unwrap().to_string(), runs)
    }

    /// Invokes the autolaunched `flow` as `admin` with one interview of `inputs`; returns the run it
    /// became at a Wait (the flow must reach one, as `Kixie_Later` does).
    pub async fn waiting_run(&self, flow: &str, inputs: Value) -> String {
        let path = format!("/services/data/v60.0/actions/custom/flow/{flow}");
        let answer = self.post_json(&path, json!({"inputs": [inputs]})).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let result = answer.json()[0].clone();
        result["runId"].as_str().unwrap_or_else(|| panic!("{flow} did not wait: {result}")).to_string()
    }

    /// Wakes a waiting run as `admin` and waits for it to end.
    pub async fn wake(&self, run_id: &str) -> RunStatus {
        let answer = self.post_json(&format!("/api/v1/runs/{run_id}/wake"), json!({})).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        self.ended(run_id).await
    }

    /// Every answer so far, as kept by [`Api::request`], checked to hold none of the Kixie secrets.
    pub fn assert_no_secret(&self) {
        let answers = self.answers.lock().unwrap();
        for secret in [BUSINESSID, APIKEY, WRONG_APIKEY] {
            if let Some(answer) = answers.iter().find(|answer| answer.contains(secret)) {
                panic!("a secret in an answer: {answer}");
            }
        }
    }

    pub async fn ended(&self, run_id: &str) -> RunStatus {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let status = self.engine.run(run_id).await.unwrap().status;
                if !matches!(status, RunStatus::Ready | RunStatus::Running) {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the run ends")
    }

    /// `POST /webhooks/Kixie_Events` with a Kixie inbound message. Kixie's own payloads also carry
    /// `businessid`; it is left out here because receipts are stored and listed as received, unmasked
    /// (`GET /api/v1/receipts` would show it).
    pub async fn kixie_inbound(&self, query: &str, text: &str) -> Answer {
        let body = json!({"data": {"messageid": format!("in-{text}"), "direction": "incoming",
            "customernumber": PHONE, "businessnumber": "+14155550123", "message": text}});
        let path = format!("/webhooks/Kixie_Events{query}");
        self.send(Method::POST, &path, Who::Anonymous, body.to_string()).await
    }

    // The console, as a browser uses it.

    /// A console page as `session` (or no one) sees it.
    pub async fn page(&self, path: &str, session: Option<&str>) -> Answer {
        let from = session.map_or(Who::Anonymous, Who::Session);
        self.send(Method::GET, path, from, Body::empty()).await
    }

    /// A form posted from a console page (same origin), as `session` or no one.
    pub async fn post_form(&self, path: &str, session: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("origin", "http://herald.test".to_string()),
        ];
        if let Some(session) = session {
            headers.push(("cookie", format!("herald_session={session}")));
        }
        self.request(Method::POST, path, &headers, Body::from(body)).await
    }

    /// Gives `user` the password [`PASSWORD`].
    pub async fn set_password(&self, user: &str) {
        self.engine.set_password(user, zeroize::Zeroizing::new(PASSWORD.into())).await.unwrap();
    }

    pub async fn sign_in(&self, user: &str, password: &str) -> Answer {
        self.post_form("/console/login", None, &[("user", user), ("password", password)]).await
    }

    /// Signs `user` in to the console with their API token (no Argon2 work); returns the session id.
    pub async fn session(&self, user: &str) -> String {
        let answer = self.post_form("/console/login", None, &[("token", &self.tokens[user])]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        answer.session_cookie().expect("a session cookie").0
    }

    /// The CSRF token of `session`, read from the console's home page.
    pub async fn csrf(&self, session: &str) -> String {
        self.page("/console", Some(session)).await.csrf_token()
    }
}

/// A route's path with every `{parameter}` filled with a value of the fixture.
pub fn concrete(path: &str) -> String {
    path.replace("{object}", "Lead")
        .replace("{id}", "00Q000000000000AAA")
        .replace("{external}", "Kixie_API_Auth")
        .replace("{principal}", "Kixie_Principal")
        .replace("{parameter}", "apikey")
        .replace("{version}", "v60.0")
        .replace("{flow}", "Kixie_Send")
}

pub fn set_granting(scope: ApiScope) -> &'static str {
    SCOPE_SETS.iter().find(|(s, _)| *s == scope).unwrap().1
}
