//! The console in process, as a browser uses it: requests go to the router with
//! `tower::ServiceExt::oneshot`, against an engine on a temporary database. What is checked: signing
//! in with a password or a pasted API token, one answer for every wrong sign-in, the session cookie's
//! attributes, CSRF refusals, signing out, scopes, escaping of what users typed, and the security
//! headers of every answer.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use common::{Api, PASSWORD, PHONE};
use serde_json::json;

const SCRIPT: &str = "<script>alert(1)</script>";

/// The fixture with passwords for `admin` (every scope) and `only_read_records` (may read records,
/// not runs); `no_scopes` has no password.
async fn console() -> Api {
    let api = Api::new().await;
    for user in ["admin", "only_read_records"] {
        api.set_password(user).await;
    }
    api
}

#[tokio::test]
async fn signing_in_with_a_password_sets_an_http_only_strict_session_cookie_scoped_to_the_console() {
    let console = console().await;
    let answer = console.sign_in("admin", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/console");
    let (session, cookie) = answer.session_cookie().unwrap();
    assert!(session.len() >= 40, "a long random id: {cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(cookie.split("; ").any(|part| part == attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a proxy saying otherwise: {cookie}");
    let home = console.page("/console", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("Signed in as <strong>admin</strong>"), "{}", home.text);
}

/// `admin`'s password sign-in, posted with one more header (a proxy's, a browser's `Origin`).
async fn admin_signs_in_with(console: &Api, (name, value): (&str, &str)) -> common::Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("user", "admin"), ("password", PASSWORD)])
        .finish();
    let headers =
        [("content-type", "application/x-www-form-urlencoded".to_string()), (name, value.to_string())];
    console.request(Method::POST, "/console/login", &headers, Body::from(body)).await
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_a_proxy_says_the_request_came_over_https() {
    let console = console().await;
    let answer = admin_signs_in_with(&console, ("x-forwarded-proto", "https")).await;
    let (_, cookie) = answer.session_cookie().unwrap();
    assert!(cookie.split("; ").any(|part| part == "Secure"), "{cookie}");
}

#[tokio::test]
async fn signing_in_with_an_api_token_pasted_instead_of_a_password_works() {
    let console = console().await;
    let token = console.tokens["admin"].clone();
    let answer =
        console.post_form("/console/login", None, &[("user", ""), ("password", ""), ("token", &token)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let (session, _) = answer.session_cookie().unwrap();
    assert_ne!(session, token, "the session is not the token");
    assert_eq!(console.page("/console/runs", Some(&session)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_an_unknown_user_a_user_without_a_password_and_a_wrong_token_get_one_answer() {
    let console = console().await;
    let answers = [
        console.sign_in("admin", "wrong horse").await,
        console.sign_in("nobody", PASSWORD).await,
        console.sign_in("no_scopes", "").await,
        console.sign_in("no_scopes", PASSWORD).await,
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
    let console = console().await;
    let answer = admin_signs_in_with(&console, ("origin", "https://evil.example")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.session_cookie().is_none());
}

#[tokio::test]
async fn without_a_session_every_page_sends_the_browser_to_sign_in() {
    let console = console().await;
    for path in ["/console", "/console/runs", "/console/runs/run_x"] {
        let answer = console.page(path, None).await;
        assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/login"), "{path}");
        let forged = console.page(path, Some("not-a-session")).await;
        assert_eq!(forged.location(), "/console/login", "{path}");
    }
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_and_the_session_stays() {
    let console = console().await;
    let session = console.session("admin").await;
    let without = console.post_form("/console/logout", Some(&session), &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = console.post_form("/console/logout", Some(&session), &[("csrf", "guessed")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.text.contains("CSRF token does not match"), "{}", wrong.text);
    let other = console.session("admin").await;
    let others_token = console.page("/console", Some(&other)).await.csrf_token();
    let borrowed = console.post_form("/console/logout", Some(&session), &[("csrf", &others_token)]).await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN, "a token is good for its own session only");
    assert_eq!(console.page("/console", Some(&session)).await.status, StatusCode::OK, "still signed in");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let console = console().await;
    let session = console.session("admin").await;
    let csrf = console.page("/console", Some(&session)).await.csrf_token();
    let answer = console.post_form("/console/logout", Some(&session), &[("csrf", &csrf)]).await;
    assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/login"));
    let (value, cookie) = answer.session_cookie().unwrap();
    assert_eq!(value, "");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let after = console.page("/console", Some(&session)).await;
    assert_eq!(after.location(), "/console/login", "the old cookie no longer signs in");
}

#[tokio::test]
async fn a_user_without_the_read_runs_scope_cannot_see_runs() {
    let console = console().await;
    let (_, runs) = console.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let session = console.session("only_read_records").await;
    for path in ["/console/runs".to_string(), format!("/console/runs/{}", runs[0])] {
        let answer = console.page(&path, Some(&session)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            answer.text.contains(
                "user only_read_records lacks the API scope read_runs; assign permission set Admin or Runs_Reader"
            ),
            "{}",
            answer.text
        );
        assert!(!answer.text.contains("Lovelace"), "nothing of the run is shown");
    }
}

#[tokio::test]
async fn a_lead_named_like_a_script_is_shown_as_text_in_the_runs_list_and_its_run() {
    let console = console().await;
    let (lead, runs) =
        console.lead(json!({"FirstName": SCRIPT, "LastName": "Lovelace", "Phone": PHONE})).await;
    let run = &runs[0];
    let session = console.session("admin").await;

    let list = console.page("/console/runs?flow=Lead_Welcome_SMS&status=finished", Some(&session)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains(&format!("/console/runs/{run}")), "{}", list.text);

    let page = console.page(&format!("/console/runs/{run}"), Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("<script"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.text);
    assert!(page.text.contains(&format!("href=\"/console/records/Lead/{lead}\"")), "the record is a link");
    for shown in ["Send_SMS", "finished", "Lead_Welcome_SMS", "Inputs", "Outputs", " ms"] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    let other_status = console.page("/console/runs?status=failed", Some(&session)).await;
    assert!(!other_status.text.contains(run.as_str()), "filtered out by status");
}

#[tokio::test]
async fn every_console_answer_carries_a_strict_content_security_policy_and_the_other_security_headers() {
    let console = console().await;
    let session = console.session("admin").await;
    let answers = [
        console.page("/console/login", None).await,
        console.page("/console", None).await,
        console.page("/console", Some(&session)).await,
        console.page("/console/runs", Some(&session)).await,
        console.page("/console/assets/console.css", None).await,
        console.sign_in("admin", "wrong").await,
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

#[tokio::test]
async fn the_home_page_shows_speed_to_lead_and_what_the_last_hour_created_with_links_to_the_lists() {
    let console = console().await;
    for name in ["Ada", "Grace"] {
        console.lead(json!({"FirstName": name, "LastName": "L", "Phone": PHONE})).await;
    }
    let session = console.session("admin").await;
    let home = console.page("/console", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK);
    let text = &home.text;
    assert!(text.contains("Speed to lead, last hour"), "{text}");
    assert!(text.contains("ms over 2 leads"), "two leads texted, each one sample: {text}");
    assert!(text.contains("Records created, last hour</h2><p class=\"figure\">2</p>"), "{text}");
    assert!(text.contains("<a href=\"/console/runs\">2</a>"), "two runs, linked to the list: {text}");
    assert!(text.contains("<a href=\"/console/runs?status=failed\">0</a>"), "{text}");
    assert!(text.contains("<a href=\"/console/messages\">2</a>"), "{text}");
    assert_eq!(text.matches("<svg").count(), 5, "five charts");
    assert!(
        text.contains("class=\"line p50\"") || text.contains("class=\"dot p50\""),
        "speed is drawn: {text}"
    );
}

#[tokio::test]
async fn a_failed_send_counts_as_a_message_not_sent_and_gives_no_speed_to_lead() {
    let console = console().await;
    console.set_secret("apikey", common::WRONG_APIKEY).await;
    console.lead(json!({"LastName": "L", "Phone": PHONE})).await;
    let session = console.session("admin").await;
    let home = console.page("/console", Some(&session)).await;
    assert!(home.text.contains("no leads texted"), "{}", home.text);
    assert!(home.text.contains("Messages not sent, last 24 hours</h2><p class=\"figure\"><a href=\"/console/messages?status=failed\">1</a>"), "{}", home.text);
}

#[tokio::test]
async fn a_user_without_the_read_runs_scope_sees_who_they_are_on_the_home_page_but_no_figures() {
    let console = console().await;
    console.lead(json!({"LastName": "L", "Phone": PHONE})).await;
    let session = console.session("only_read_records").await;
    let home = console.page("/console", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("Signed in as <strong>only_read_records</strong>"), "{}", home.text);
    assert!(home.text.contains("need the read_runs API scope"), "{}", home.text);
    assert!(!home.text.contains("Speed to lead") && !home.text.contains("<svg"), "{}", home.text);
}

#[tokio::test]
async fn the_runs_list_pages_through_every_run_once_newest_first() {
    let console = console().await;
    let mut started = Vec::new();
    for n in 0..53 {
        let (_, runs) = console.lead(json!({"LastName": format!("L{n}"), "Phone": PHONE})).await;
        started.extend(runs);
    }
    let session = console.session("admin").await;
    let run_links = |text: &str| -> Vec<String> {
        text.split("href=\"/console/runs/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let first = console.page("/console/runs?flow=Lead_Welcome_SMS", Some(&session)).await;
    let first_runs = run_links(&first.text);
    assert_eq!(first_runs.len(), 50, "{}", first.text);
    assert_eq!(first_runs[0], started[52], "the newest run first");
    let next =
        first.text.split("rel=\"next\" href=\"").nth(1).expect("an Older link").split('"').next().unwrap();
    let second = console.page(&next.replace("&amp;", "&"), Some(&session)).await;
    let second_runs = run_links(&second.text);
    assert_eq!(second_runs.len(), 3, "{}", second.text);
    assert!(!second.text.contains("rel=\"next\""), "the last page");
    assert!(second.text.contains("rel=\"first\""), "a way back to the newest");
    let mut listed: Vec<String> = first_runs.into_iter().chain(second_runs).collect();
    listed.sort();
    started.sort();
    assert_eq!(listed, started, "every run once");
}

#[tokio::test]
async fn the_stylesheet_closes_every_block_it_opens() {
    let console = console().await;
    let css = console.page("/console/assets/console.css", None).await.text;
    let mut depth = 0i32;
    for (line, text) in css.lines().enumerate() {
        depth += text.matches('{').count() as i32 - text.matches('}').count() as i32;
        assert!(depth >= 0, "line {}: a `}}` closes nothing", line + 1);
        if text.trim_start().starts_with("/*") && !text.starts_with(' ') {
            assert_eq!(depth, 0, "line {}: a section starts inside an open block", line + 1);
        }
    }
    assert_eq!(depth, 0, "every block is closed");
}

#[tokio::test]
async fn the_runs_list_shows_the_runs_started_before_a_time() {
    let console = console().await;
    let (_, runs) = console.lead(json!({"LastName": "L", "Phone": PHONE})).await;
    let session = console.session("admin").await;
    let later = (chrono::Utc::now() + chrono::Duration::minutes(2)).format("%Y-%m-%dT%H:%M").to_string();
    let shown = console.page(&format!("/console/runs?before={later}"), Some(&session)).await;
    assert!(shown.text.contains(&format!("/console/runs/{}", runs[0])), "{}", shown.text);
    assert!(shown.text.contains(&format!("value=\"{later}\"")), "the form keeps the time: {}", shown.text);
    let earlier = console.page("/console/runs?before=2020-01-01T00:00", Some(&session)).await;
    assert!(!earlier.text.contains(&runs[0]), "{}", earlier.text);
    assert!(earlier.text.contains("No runs match."), "{}", earlier.text);
}
