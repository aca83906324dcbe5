//! The console's Credentials and Users pages in process: what they show (and never show: a secret
//! value in any encoding, a token after the page that created it), that their forms change what the
//! API and the callouts use, and that each change needs the session's CSRF token and the
//! `manage_credentials` scope.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use common::{APIKEY, Answer, Api, BUSINESSID, PHONE, WRONG_APIKEY, Who};
use serde_json::json;

const APIKEY_PLACE: [(&str, &str); 3] =
    [("external", "Kixie_API_Auth"), ("principal", "Kixie_Principal"), ("parameter", "apikey")];

/// Every way a value could leak into a page besides as itself: base64 (standard and URL-safe, with
/// and without padding), percent-encoded, and HTML-escaped byte by byte.
fn encodings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut all = vec![secret.to_string()];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        all.push(engine.encode(bytes));
    }
    all.push(form_urlencoded::byte_serialize(bytes).collect());
    all.push(bytes.iter().map(|b| format!("%{b:02X}")).collect());
    all.push(bytes.iter().map(|b| format!("&#{b};")).collect());
    all.push(bytes.iter().map(|b| format!("&#x{b:x};")).collect());
    all
}

fn assert_shows_no_secret(answer: &Answer, secrets: &[&str]) {
    let whole = format!("{:?} {}", answer.headers, answer.text);
    for secret in secrets {
        for encoded in encodings(secret) {
            assert!(!whole.contains(&encoded), "the answer shows {encoded:?}: {whole}");
        }
    }
}

/// Sets the Kixie `apikey` through the console's form as `session`, with `csrf` (or none).
async fn set_apikey(api: &Api, session: &str, csrf: Option<&str>, value: &str) -> Answer {
    let mut fields: Vec<(&str, &str)> = APIKEY_PLACE.to_vec();
    fields.push(("value", value));
    if let Some(csrf) = csrf {
        fields.push(("csrf", csrf));
    }
    api.post_form("/console/credentials/set", Some(session), &fields).await
}

/// The first callout's outcome of a new Lead's run: its trace's first result.
async fn callout_result(api: &Api) -> (String, String) {
    let (_, runs) = api.lead(json!({"LastName": "Byron", "Phone": PHONE})).await;
    let run = api.get(&format!("/api/v1/runs/{}", runs[0])).await.json();
    let result = run["trace"][0]["result"].as_str().unwrap_or("").to_string();
    (result, run["trace"][0]["fault"].as_str().unwrap_or("").to_string())
}

/// The ids of the tokens listed on the Users page (`<code>tok_…</code>`).
fn token_ids(page: &str) -> Vec<String> {
    page.split("<code>tok_").skip(1).map(|rest| format!("tok_{}", rest.split('<').next().unwrap())).collect()
}

/// The token shown once on the page a token's creation answers with.
fn shown_token(page: &str) -> String {
    let start = page.find("hrld_").expect("the new token on the page");
    page[start..].split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn the_credentials_page_lists_each_parameter_as_set_with_a_time_and_never_a_value_in_any_encoding() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let page = api.page("/console/credentials", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for expected in [
        "Kixie_API_Auth",
        "Kixie_Principal",
        "<code class=\"name\">businessid</code>",
        "<code class=\"name\">apikey</code>",
        "Kixie_Endpoint",
        "https://apig.kixie.com",
        "Kixie_Integration_User",
        "the automation user",
    ] {
        assert!(page.text.contains(expected), "{expected} in {}", page.text);
    }
    let kixie = page.text.split("<h2>Kixie_API_Auth").nth(1).expect("Kixie's section");
    let set: Vec<&str> = kixie.split("<span class=\"set\">set <time datetime=\"").skip(1).collect();
    assert_eq!(set.len(), 2, "businessid and apikey are set, each with a time: {kixie}");
    for time in set {
        assert!(time.starts_with("20"), "a date: {time}");
    }
    assert!(!kixie.contains("not set"), "{kixie}");
    assert_eq!(kixie.matches(r#"type="password" name="value" autocomplete="off""#).count(), 2);
    assert_shows_no_secret(&page, &[BUSINESSID, APIKEY]);
}

#[tokio::test]
async fn a_value_set_through_the_console_form_is_the_one_the_next_callout_sends_and_is_never_echoed() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;

    let wrong = set_apikey(&api, &session, Some(&csrf), WRONG_APIKEY).await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER, "{}", wrong.text);
    assert!(wrong.location().starts_with("/console/credentials?"), "{}", wrong.location());
    assert_shows_no_secret(&wrong, &[WRONG_APIKEY]);
    let (result, fault) = callout_result(&api).await;
    assert_eq!(result, "fault: Log_SMS_Failure", "the sandbox refuses the wrong key");
    assert!(fault.contains("HTTP 401"), "{fault}");

    let right = set_apikey(&api, &session, Some(&csrf), APIKEY).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    let after = api.page(right.location(), Some(&session)).await;
    assert!(
        after.text.contains("apikey of Kixie_API_Auth/Kixie_Principal set"),
        "the notice names the parameter: {}",
        after.text
    );
    assert_shows_no_secret(&right, &[APIKEY, WRONG_APIKEY]);
    assert_shows_no_secret(&after, &[APIKEY, WRONG_APIKEY]);
    let (result, _) = callout_result(&api).await;
    assert!(!result.starts_with("fault"), "the right key is sent again: {result}");
}

#[tokio::test]
async fn a_notice_link_for_a_parameter_the_project_does_not_declare_says_nothing() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let page = api
        .page(
            "/console/credentials?external=Evil&principal=%3Cb%3E&parameter=Your+account+is+locked",
            Some(&session),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("locked"), "{}", page.text);
    assert!(!page.text.contains("role=\"status\""), "{}", page.text);
}

#[tokio::test]
async fn an_empty_value_or_an_undeclared_parameter_is_refused_and_nothing_changes() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let before = api.engine.secret_settings().await.unwrap();
    let empty = set_apikey(&api, &session, Some(&csrf), "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text);
    let fields = [
        ("csrf", csrf.as_str()),
        ("external", "Kixie_API_Auth"),
        ("principal", "Kixie_Principal"),
        ("parameter", "password"),
        ("value", WRONG_APIKEY),
    ];
    let unknown = api.post_form("/console/credentials/set", Some(&session), &fields).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("has no parameter `password`"), "{}", unknown.text);
    assert_shows_no_secret(&unknown, &[WRONG_APIKEY]);
    assert_eq!(api.engine.secret_settings().await.unwrap(), before);
}

#[tokio::test]
async fn setting_a_value_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let before = api.engine.secret_settings().await.unwrap();
    let without = set_apikey(&api, &session, None, WRONG_APIKEY).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let other = api.session("only_manage_credentials").await;
    let others_csrf = api.csrf(&other).await;
    let borrowed = set_apikey(&api, &session, Some(&others_csrf), WRONG_APIKEY).await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN);
    assert_eq!(api.engine.secret_settings().await.unwrap(), before, "no value was set");
    let (result, _) = callout_result(&api).await;
    assert!(!result.starts_with("fault"), "the key is still the right one: {result}");
}

#[tokio::test]
async fn a_user_without_manage_credentials_gets_403_from_every_page_and_form_and_changes_nothing() {
    let api = Api::new().await;
    let session = api.session("all_but_manage_credentials").await;
    let csrf = api.csrf(&session).await;
    for path in ["/console/credentials", "/console/users", "/console/users/revoke?token=x"] {
        let answer = api.page(path, Some(&session)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(answer.text.contains("manage_credentials"), "names the scope: {}", answer.text);
        assert!(answer.text.contains("Credential_Manager"), "names the set that grants it: {}", answer.text);
    }
    let before = api.engine.secret_settings().await.unwrap();
    assert_eq!(set_apikey(&api, &session, Some(&csrf), WRONG_APIKEY).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.engine.secret_settings().await.unwrap(), before);
    let tokens = api.engine.tokens().await.unwrap();
    let made =
        api.post_form("/console/users/token", Some(&session), &[("csrf", &csrf), ("user", "admin")]).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    assert!(!made.text.contains("hrld_"));
    let fields = [("csrf", csrf.as_str()), ("token", tokens[0].id.as_str())];
    let revoke = api.post_form("/console/users/revoke", Some(&session), &fields).await;
    assert_eq!(revoke.status, StatusCode::FORBIDDEN);
    assert_eq!(api.engine.tokens().await.unwrap(), tokens, "no token made or revoked");

    let allowed = api.session("only_manage_credentials").await;
    for path in ["/console/credentials", "/console/users"] {
        assert_eq!(api.page(path, Some(&allowed)).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_users_page_lists_every_user_with_sets_scopes_password_and_token_ids_but_no_token() {
    let api = Api::new().await;
    api.set_password("only_read_runs").await;
    api.engine.deactivate_user("no_scopes").await.unwrap();
    let session = api.session("admin").await;
    let page = api.page("/console/users", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let section = |name: &str| -> String {
        let start =
            page.text.find(&format!("<h2>{name} <span")).unwrap_or_else(|| panic!("{name}: {}", page.text));
        page.text[start..].split("</section>").next().unwrap().to_string()
    };
    let admin = section("admin");
    assert!(admin.contains("Admin, Kixie_Integration_User"), "{admin}");
    assert!(admin.contains("manage_credentials"), "{admin}");
    assert!(section("only_read_runs").contains("<dd>set</dd>"), "a password is set");
    assert!(admin.contains("<dd>not set</dd>"), "no password for admin");
    let deactivated = section("no_scopes");
    assert!(deactivated.contains("deactivated"), "{deactivated}");
    assert!(!deactivated.contains("Create a token"), "no new tokens for a deactivated user");
    let ids = token_ids(&page.text);
    assert_eq!(ids.len(), api.tokens.len(), "one token per user: {ids:?}");
    let tokens: Vec<&str> = api.tokens.values().map(String::as_str).collect();
    assert_shows_no_secret(&page, &tokens);
}

#[tokio::test]
async fn a_token_created_in_the_console_is_shown_once_and_signs_in_to_the_api() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let made = api
        .post_form("/console/users/token", Some(&session), &[("csrf", &csrf), ("user", "only_read_runs")])
        .await;
    assert_eq!(made.status, StatusCode::OK, "shown in the answer, not behind a redirect: {}", made.text);
    assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
    assert!(made.text.contains("it will not be shown again"), "{}", made.text);
    let token = shown_token(&made.text);
    assert!(token.len() > 30, "{token}");
    assert!(!format!("{:?}", made.headers).contains(&token), "not in a header");

    let bearer = format!("Bearer {token}");
    let runs = api.send(Method::GET, "/api/v1/runs", Who::Header(&bearer), Body::empty()).await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.text);
    let users = api.page("/console/users", Some(&session)).await;
    assert_shows_no_secret(&users, &[&token]);
    assert_eq!(token_ids(&users.text).len(), api.tokens.len() + 1, "listed by its id");
}

#[tokio::test]
async fn a_revoked_token_gets_401_from_the_api_and_cannot_sign_in_to_the_console() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let made = api
        .post_form("/console/users/token", Some(&session), &[("csrf", &csrf), ("user", "only_read_runs")])
        .await;
    let token = shown_token(&made.text);
    let before = token_ids(&api.page("/console/users", Some(&session)).await.text);
    let id = api
        .engine
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .find(|id| made.text.contains(id))
        .unwrap();
    assert!(before.contains(&id));

    let confirm = api.page(&format!("/console/users/revoke?token={id}"), Some(&session)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text.contains("only_read_runs"), "names whose token it is: {}", confirm.text);
    assert!(confirm.text.contains(r#"action="/console/users/revoke""#));
    let revoked =
        api.post_form("/console/users/revoke", Some(&session), &[("csrf", &csrf), ("token", &id)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.text);
    let listed = api.page(revoked.location(), Some(&session)).await;
    assert!(listed.text.contains(&format!("Token {id} revoked.")), "{}", listed.text);

    let bearer = format!("Bearer {token}");
    let runs = api.send(Method::GET, "/api/v1/runs", Who::Header(&bearer), Body::empty()).await;
    assert_eq!(runs.status, StatusCode::UNAUTHORIZED);
    assert_eq!(runs.error_code(), "INVALID_SESSION_ID");
    let sign_in = api.post_form("/console/login", None, &[("token", &token)]).await;
    assert_eq!(sign_in.status, StatusCode::UNAUTHORIZED);
    assert!(sign_in.session_cookie().is_none());
    let again =
        api.post_form("/console/users/revoke", Some(&session), &[("csrf", &csrf), ("token", &id)]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "revoked once");
    let other = format!("Bearer {}", api.tokens["only_read_runs"]);
    let runs = api.send(Method::GET, "/api/v1/runs", Who::Header(&other), Body::empty()).await;
    assert_eq!(runs.status, StatusCode::OK, "the user's other token still works");
}

#[tokio::test]
async fn a_revoke_without_the_sessions_csrf_token_changes_nothing() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let tokens = api.engine.tokens().await.unwrap();
    let target = tokens.iter().find(|t| !t.revoked).unwrap().id.clone();
    let without = api.post_form("/console/users/revoke", Some(&session), &[("token", &target)]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = api
        .post_form("/console/users/revoke", Some(&session), &[("csrf", "guess"), ("token", &target)])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let token = api.post_form("/console/users/token", Some(&session), &[("user", "admin")]).await;
    assert_eq!(token.status, StatusCode::FORBIDDEN, "creating a token needs it too");
    assert_eq!(api.engine.tokens().await.unwrap(), tokens);
}

#[tokio::test]
async fn a_user_deactivated_from_the_console_loses_its_tokens_and_its_sessions() {
    let api = Api::new().await;
    let admin = api.session("admin").await;
    let victim = api.session("only_read_runs").await;
    let csrf = api.csrf(&admin).await;
    let confirm = api.page("/console/users/deactivate?user=only_read_runs", Some(&admin)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let without =
        api.post_form("/console/users/deactivate", Some(&admin), &[("user", "only_read_runs")]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert_eq!(api.page("/console/runs", Some(&victim)).await.status, StatusCode::OK, "still active");
    let done = api
        .post_form("/console/users/deactivate", Some(&admin), &[("csrf", &csrf), ("user", "only_read_runs")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert!(api.page(done.location(), Some(&admin)).await.text.contains("only_read_runs deactivated."));
    assert_eq!(api.page("/console/runs", Some(&victim)).await.location(), "/console/login");
    let bearer = format!("Bearer {}", api.tokens["only_read_runs"]);
    let runs = api.send(Method::GET, "/api/v1/runs", Who::Header(&bearer), Body::empty()).await;
    assert_eq!(runs.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_name_written_like_markup_is_shown_as_text_on_the_users_pages() {
    let api = Api::new().await;
    let name = "<script>alert(1)</script>";
    api.engine.create_user(name, &["Runs_Reader".to_string()]).await.unwrap();
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let users = api.page("/console/users", Some(&session)).await;
    let confirm =
        api.page("/console/users/deactivate?user=%3Cscript%3Ealert(1)%3C%2Fscript%3E", Some(&session)).await;
    let made =
        api.post_form("/console/users/token", Some(&session), &[("csrf", &csrf), ("user", name)]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    for page in [&users, &confirm, &made] {
        assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.text);
        assert!(!page.text.contains(name), "{}", page.text);
    }
}

#[tokio::test]
async fn a_per_user_value_is_set_for_the_user_chosen_and_listed_under_that_users_name() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let page = api.page("/console/credentials", Some(&session)).await;
    let crm = page.text.split("<h2>Crm_Auth").nth(1).expect("the per-user credential").to_string();
    assert!(crm.contains("per-user principal") && crm.contains("not set"), "{crm}");
    assert!(crm.contains(r#"<option value="only_read_runs">"#), "a choice of users: {crm}");

    let place = [
        ("csrf", csrf.as_str()),
        ("external", "Crm_Auth"),
        ("principal", "Crm_User"),
        ("parameter", "token"),
    ];
    let secret = "crm-token-of-only-read-runs-51f0";
    let no_user = api
        .post_form("/console/credentials/set", Some(&session), &[&place[..], &[("value", secret)]].concat())
        .await;
    assert_eq!(no_user.status, StatusCode::BAD_REQUEST);
    assert!(no_user.text.contains("is per-user"), "{}", no_user.text);

    let fields = [&place[..], &[("user", "only_read_runs"), ("value", secret)]].concat();
    let set = api.post_form("/console/credentials/set", Some(&session), &fields).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.text);
    let after = api.page(set.location(), Some(&session)).await;
    assert!(after.text.contains("token of Crm_Auth/Crm_User set for only_read_runs"), "{}", after.text);
    let crm = after.text.split("<h2>Crm_Auth").nth(1).unwrap().to_string();
    assert!(crm.contains(r#"<span class="set">set for only_read_runs <time"#), "{crm}");
    assert_shows_no_secret(&set, &[secret]);
    assert_shows_no_secret(&after, &[secret]);
    let settings = api.engine.secret_settings().await.unwrap();
    let crm_values: Vec<&str> =
        settings.iter().filter(|s| s.external_credential == "Crm_Auth").map(|s| s.user_id.as_str()).collect();
    assert_eq!(crm_values.len(), 1);
    assert!(crm_values[0].starts_with("005"), "kept under the user's id: {crm_values:?}");
}
