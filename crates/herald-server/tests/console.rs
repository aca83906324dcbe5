//! The console in process, as a browser uses it: requests go to the router with
//! `tower::ServiceExt::oneshot`, against an engine on a temporary database. What is checked: signing
//! in with a password or a pasted API token, one answer for every wrong sign-in, the session cookie's
//! attributes, CSRF refusals, signing out, scopes, escaping of what users typed, and the security
//! headers of every answer.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use herald_engine::{Engine, EngineOptions};
use herald_store::RunStatus;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;
use zeroize::Zeroizing;

const PASSWORD: &str = "correct horse battery staple";
const SCRIPT: &str = "<script>alert(1)</script>";

fn project_files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "herald.toml",
            "[runtime]\nworkers = 2\ndefault_country = \"US\"\n\n[automation]\npermission_sets = [\"Records_Reader\"]\n",
        ),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  FirstName: {type: text, length: 40}\n  LastName: {type: text, length: 80, required: true}\n  Phone: {type: phone, length: 40}\n",
        ),
        (
            "objects/Task.yaml",
            "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, length: 255, required: true}\n  WhoId: {type: reference, references: [Lead]}\n",
        ),
        (
            "flows/Lead_Call_Task.yaml",
            "kind: flow\nstatus: active\ntrigger: {object: Lead, on: create}\nstart: Create_Call_Task\nelements:\n  Create_Call_Task:\n    create: Task\n    fields: {Subject: \"Call {!$Record.LastName}\", WhoId: \"{!$Record.Id}\"}\n",
        ),
        (
            "permissions/Console_Admin.yaml",
            "kind: permission-set\napi_scopes: [read_records, write_records, read_runs]\n",
        ),
        ("permissions/Records_Reader.yaml", "kind: permission-set\napi_scopes: [read_records]\n"),
    ]
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    /// The `herald_session` cookie set by this answer: its value and its attributes.
    fn session_cookie(&self) -> Option<(String, String)> {
        let cookie = self.headers.get(header::SET_COOKIE)?.to_str().unwrap().to_string();
        let (pair, _) = cookie.split_once(';').unwrap_or((&cookie, ""));
        let value = pair.strip_prefix("herald_session=")?.to_string();
        Some((value, cookie))
    }

    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    /// The value of the hidden `csrf` field of the page's sign-out form.
    fn csrf_token(&self) -> String {
        let start = self.text.find(r#"name="csrf" value=""#).expect("a sign-out form")
            + r#"name="csrf" value=""#.len();
        self.text[start..].split('"').next().unwrap().to_string()
    }
}

/// An engine on a temporary project and database: `ada` (password and token; may read runs) and
/// `reader` (password; may read records, not runs), and a token for `ada`.
struct Console {
    _dir: tempfile::TempDir,
    engine: Engine,
    router: Router,
    token: String,
}

impl Console {
    async fn new() -> Console {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        for (path, text) in project_files() {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = herald_flow::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let mut options = EngineOptions::for_database(dir.path().join("herald.db"));
        options.workers = 2;
        let engine = Engine::open(std::sync::Arc::new(project), &options).await.unwrap();
        engine.start().await.unwrap();
        engine.create_user("ada", &["Console_Admin".into()]).await.unwrap();
        engine.create_user("reader", &["Records_Reader".into()]).await.unwrap();
        engine.create_user("nopass", &["Console_Admin".into()]).await.unwrap();
        for name in ["ada", "reader"] {
            engine.set_password(name, Zeroizing::new(PASSWORD.into())).await.unwrap();
        }
        let token = engine.create_token("ada").await.unwrap().to_string();
        let router = herald_server::router(engine.clone());
        Console { _dir: dir, engine, router, token }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        extra: &[(&str, &str)],
        body: String,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, "herald.test");
        if let Some(session) = cookie {
            request = request.header(header::COOKIE, format!("theme=dark; herald_session={session}"));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, text: String::from_utf8(bytes.to_vec()).unwrap() }
    }

    async fn get(&self, path: &str, session: Option<&str>) -> Answer {
        self.send(Method::GET, path, session, &[], String::new()).await
    }

    async fn post_form(&self, path: &str, session: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", "http://herald.test")];
        self.send(Method::POST, path, session, &form, body).await
    }

    async fn sign_in(&self, user: &str, password: &str) -> Answer {
        self.post_form("/console/login", None, &[("user", user), ("password", password)]).await
    }

    /// Signs in as `user` with the fixture's password; returns the session id.
    async fn session(&self, user: &str) -> String {
        let answer = self.sign_in(user, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        answer.session_cookie().expect("a session cookie").0
    }

    /// Creates a Lead through the API with `ada`'s token and waits for its run to end.
    async fn lead(&self, fields: Value) -> String {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/records/Lead")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(fields.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let run = body["runs"][0].as_str().expect("the lead started a run").to_string();
        tokio::time::timeout(Duration::from_secs(20), async {
            while matches!(self.engine.run(&run).await.unwrap().status, RunStatus::Ready | RunStatus::Running)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the run ends");
        run
    }
}

#[tokio::test]
async fn signing_in_with_a_password_sets_an_http_only_strict_session_cookie_scoped_to_the_console() {
    let console = Console::new().await;
    let answer = console.sign_in("ada", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/console");
    let (session, cookie) = answer.session_cookie().unwrap();
    assert!(session.len() >= 40, "a long random id: {cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(cookie.split("; ").any(|part| part == attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a proxy saying otherwise: {cookie}");
    let home = console.get("/console", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("Signed in as <strong>ada</strong>"), "{}", home.text);
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_a_proxy_says_the_request_came_over_https() {
    let console = Console::new().await;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("user", "ada"), ("password", PASSWORD)])
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("x-forwarded-proto", "https")];
    let answer = console.send(Method::POST, "/console/login", None, &headers, body).await;
    let (_, cookie) = answer.session_cookie().unwrap();
    assert!(cookie.split("; ").any(|part| part == "Secure"), "{cookie}");
}

#[tokio::test]
async fn signing_in_with_an_api_token_pasted_instead_of_a_password_works() {
    let console = Console::new().await;
    let token = console.token.clone();
    let answer =
        console.post_form("/console/login", None, &[("user", ""), ("password", ""), ("token", &token)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let (session, _) = answer.session_cookie().unwrap();
    assert_ne!(session, token, "the session is not the token");
    assert_eq!(console.get("/console/runs", Some(&session)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_an_unknown_user_a_user_without_a_password_and_a_wrong_token_get_one_answer() {
    let console = Console::new().await;
    let answers = [
        console.sign_in("ada", "wrong horse").await,
        console.sign_in("nobody", PASSWORD).await,
        console.sign_in("nopass", "").await,
        console.sign_in("nopass", PASSWORD).await,
        console.post_form("/console/login", None, &[("token", "hrld_not_a_token")]).await,
    ];
    let first = &answers[0];
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert!(first.text.contains("Those sign-in details do not match an active user."), "{}", first.text);
    for answer in &answers {
        assert_eq!(
            (answer.status, &answer.text),
            (first.status, &first.text),
            "no answer tells which part was wrong"
        );
        assert!(answer.session_cookie().is_none());
        assert!(!answer.text.contains("wrong horse") && !answer.text.contains(PASSWORD));
    }
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let console = Console::new().await;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("user", "ada"), ("password", PASSWORD)])
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example")];
    let answer = console.send(Method::POST, "/console/login", None, &headers, body).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.session_cookie().is_none());
}

#[tokio::test]
async fn without_a_session_every_page_sends_the_browser_to_sign_in() {
    let console = Console::new().await;
    for path in ["/console", "/console/runs", "/console/runs/run_x"] {
        let answer = console.get(path, None).await;
        assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/login"), "{path}");
        let forged = console.get(path, Some("not-a-session")).await;
        assert_eq!(forged.location(), "/console/login", "{path}");
    }
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_and_the_session_stays() {
    let console = Console::new().await;
    let session = console.session("ada").await;
    let without = console.post_form("/console/logout", Some(&session), &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = console.post_form("/console/logout", Some(&session), &[("csrf", "guessed")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.text.contains("CSRF token does not match"), "{}", wrong.text);
    let other = console.session("ada").await;
    let others_token = console.get("/console", Some(&other)).await.csrf_token();
    let borrowed = console.post_form("/console/logout", Some(&session), &[("csrf", &others_token)]).await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN, "a token is good for its own session only");
    assert_eq!(console.get("/console", Some(&session)).await.status, StatusCode::OK, "still signed in");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let console = Console::new().await;
    let session = console.session("ada").await;
    let csrf = console.get("/console", Some(&session)).await.csrf_token();
    let answer = console.post_form("/console/logout", Some(&session), &[("csrf", &csrf)]).await;
    assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/login"));
    let (value, cookie) = answer.session_cookie().unwrap();
    assert_eq!(value, "");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let after = console.get("/console", Some(&session)).await;
    assert_eq!(after.location(), "/console/login", "the old cookie no longer signs in");
}

#[tokio::test]
async fn a_user_without_the_read_runs_scope_cannot_see_runs() {
    let console = Console::new().await;
    let run = console.lead(json!({"LastName": "Lovelace"})).await;
    let session = console.session("reader").await;
    for path in ["/console/runs".to_string(), format!("/console/runs/{run}")] {
        let answer = console.get(&path, Some(&session)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            answer
                .text
                .contains("user reader lacks the API scope read_runs; assign permission set Console_Admin"),
            "{}",
            answer.text
        );
        assert!(!answer.text.contains("Lovelace"), "nothing of the run is shown");
    }
}

#[tokio::test]
async fn a_lead_named_like_a_script_is_shown_as_text_in_the_runs_list_and_its_run() {
    let console = Console::new().await;
    let run = console.lead(json!({"LastName": SCRIPT})).await;
    let session = console.session("ada").await;

    let list = console.get("/console/runs?flow=Lead_Call_Task&status=finished", Some(&session)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains(&format!("/console/runs/{run}")), "{}", list.text);

    let page = console.get(&format!("/console/runs/{run}"), Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("<script"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.text);
    for shown in ["Create_Call_Task", "finished", "Lead_Call_Task", "Inputs", "Outputs", " ms"] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    let other_status = console.get("/console/runs?status=failed", Some(&session)).await;
    assert!(!other_status.text.contains(&run), "filtered out by status");
}

#[tokio::test]
async fn every_console_answer_carries_a_strict_content_security_policy_and_the_other_security_headers() {
    let console = Console::new().await;
    let session = console.session("ada").await;
    let answers = [
        console.get("/console/login", None).await,
        console.get("/console", None).await,
        console.get("/console", Some(&session)).await,
        console.get("/console/runs", Some(&session)).await,
        console.get("/console/assets/console.css", None).await,
        console.sign_in("ada", "wrong").await,
    ];
    for answer in &answers {
        let header = |name: &str| answer.headers.get(name).map(|v| v.to_str().unwrap().to_string());
        let csp = header("content-security-policy").expect("a CSP");
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"));
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
        assert!(
            !answer.text.contains("<script") && !answer.text.contains("style="),
            "no inline script or style"
        );
    }
    let css = &answers[4];
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}
