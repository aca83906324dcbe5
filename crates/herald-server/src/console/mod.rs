//! The console: herald seen in a browser, served by `herald serve` under `/console` (docs/console.md).
//!
//! Pages are rendered on the server (maud escapes every value by default) and need no script. A
//! signed-in user holds a session: a random id in an `HttpOnly; SameSite=Strict` cookie, kept in the
//! store only as its hash, with a CSRF token that every state-changing form carries. What a user may
//! see follows the API's scopes, checked by the same function as the API's routes
//! ([`crate::auth::require_scope`]). Every console answer carries a strict Content-Security-Policy
//! and the other headers of [`security_headers`].

mod access;
mod charts;
mod debug;
mod diagram;
mod flows;
mod home;
mod messages;
mod pages;
mod records;
mod retry;

use crate::auth::require_scope;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use herald_engine::{Engine, SESSION_HOURS};
use herald_project::ApiScope;
use herald_store::{RunQuery, RunRow, RunStatus, UserRow};
use zeroize::Zeroizing;

/// The session cookie's name; its value is the session id, known only to the browser.
pub const SESSION_COOKIE: &str = "herald_session";

/// The Content-Security-Policy of every console answer: everything from herald itself, no inline
/// script or style, no plugins, no framing, forms posted only back to herald.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Runs shown on one page of the Runs list.
const RUNS_PER_PAGE: usize = 50;

/// The console's routes, each answer with [`security_headers`].
pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/console", get(home::home))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/runs", get(runs))
        .route("/console/runs/{id}", get(run))
        .route("/console/flows", get(flows::list))
        .route("/console/flows/{name}", get(flows::show))
        .route("/console/assets/console.css", get(stylesheet))
        .merge(retry::routes())
        .merge(debug::routes())
        .merge(messages::routes())
        .merge(records::routes())
        .merge(access::routes())
        .layer(axum::middleware::map_response(security_headers))
}

/// What every console answer carries: the CSP, no MIME sniffing, no referrer outside herald, no
/// framing, and no caching of pages that show a user's data.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A signed-in console user: the session's user, its CSRF token, and the session id (to sign out).
pub(crate) struct Session {
    user: UserRow,
    csrf_token: String,
    id: Zeroizing<String>,
}

impl FromRequestParts<Engine> for Session {
    type Rejection = Response;

    /// Without a live session the browser is sent to the sign-in page.
    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Session, Response> {
        let Some(id) = session_cookie(&parts.headers) else {
            return Err(Redirect::to("/console/login").into_response());
        };
        match engine.session_user(&id).await {
            Ok(Some(signed_in)) => Ok(Session { user: signed_in.user, csrf_token: signed_in.csrf_token, id }),
            Ok(None) => Err(Redirect::to("/console/login").into_response()),
            Err(error) => Err(failure(ApiError::from(error))),
        }
    }
}

impl Session {
    /// The refusal (the API's 403 message, as a page) of a user whose permission sets do not grant
    /// `scope`; `None` when they do.
    fn refused_without(&self, engine: &Engine, scope: ApiScope) -> Option<Response> {
        require_scope(engine, &self.user, scope).err().map(|error| self.refusal(error))
    }

    fn refusal(&self, error: ApiError) -> Response {
        let message = error.errors.first().map(|problem| problem.message.clone()).unwrap_or_default();
        let page = pages::message_page(&self.view(), "Not allowed", &message);
        (error.status, Html(page.into_string())).into_response()
    }

    fn view(&self) -> pages::Viewer<'_> {
        pages::Viewer { user: &self.user.name, csrf_token: &self.csrf_token }
    }
}

/// The session id of the request's `herald_session` cookie.
fn session_cookie(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| Zeroizing::new(value.to_string()))
}

/// Whether the browser reached herald over HTTPS (directly, or through a proxy that says so): the
/// session cookie is then marked `Secure`.
fn over_https(headers: &HeaderMap, uri: &Uri) -> bool {
    uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a new session, or (`id` empty, `max_age` 0) of one being ended.
fn session_cookie_header(id: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age}{secure}"
    ))
    .expect("a session id is alphanumeric")
}

/// The fields of a form body (`application/x-www-form-urlencoded`); a field given twice keeps the
/// first value.
fn form_field(body: &[u8], name: &str) -> Option<Zeroizing<String>> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| Zeroizing::new(value.into_owned()))
}

/// Whether a sign-in form was posted from another site: a browser sends `Origin` (and
/// `Sec-Fetch-Site`) with every POST, and a sign-in from elsewhere would sign the user in as someone
/// else (login CSRF). Sign-in has no session yet, hence no CSRF token to check.
fn cross_site(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|site| site == "cross-site") {
        return true;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, authority)| authority) != Some(host),
        _ => false,
    }
}

/// A failure page: the API error's status and message (a 500's details stay in the log).
fn failure(error: ApiError) -> Response {
    let message = error.errors.first().map(|problem| problem.message.clone()).unwrap_or_default();
    (error.status, Html(pages::bare_message_page("herald", &message).into_string())).into_response()
}

/// 403 for a state-changing request without the session's CSRF token.
fn csrf_refused() -> Response {
    let page = pages::bare_message_page(
        "Refused",
        "This form is out of date or did not come from this console (its CSRF token does not match your session). Reload the page and try again.",
    );
    (StatusCode::FORBIDDEN, Html(page.into_string())).into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("console.css"),
    )
        .into_response()
}

async fn login_form(State(engine): State<Engine>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers)
        && let Ok(Some(_)) = engine.session_user(&id).await
    {
        return Redirect::to("/console").into_response();
    }
    Html(pages::login(None).into_string()).into_response()
}

/// `POST /console/login`, a form of `user` and `password`, or of `token` (an API token pasted).
async fn login(State(engine): State<Engine>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    if cross_site(&headers) {
        return csrf_refused();
    }
    let token = form_field(&body, "token").filter(|token| !token.trim().is_empty());
    let found = match token {
        Some(token) => engine.authenticate(token.trim()).await,
        None => {
            let user = form_field(&body, "user").unwrap_or_default();
            let password = form_field(&body, "password").unwrap_or_default();
            engine.check_password(user.trim(), password).await
        }
    };
    let user = match found {
        Ok(Some(user)) => user,
        // One answer for an unknown user, a user without a password, a wrong password and a wrong
        // token: it must not tell which names exist.
        Ok(None) => {
            let page = pages::login(Some("Those sign-in details do not match an active user."));
            return (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response();
        }
        Err(error) => return failure(ApiError::from(error)),
    };
    let session = match engine.start_session(&user).await {
        Ok(session) => session,
        Err(error) => return failure(ApiError::from(error)),
    };
    tracing::info!(user = %user.name, "console sign-in");
    let cookie = session_cookie_header(&session.id, SESSION_HOURS * 3600, over_https(&headers, &uri));
    let mut response = Redirect::to("/console").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// `POST /console/logout`, a form carrying the session's `csrf` token: ends the session.
async fn logout(
    State(engine): State<Engine>,
    headers: HeaderMap,
    uri: Uri,
    session: Session,
    body: Bytes,
) -> Response {
    let given = form_field(&body, "csrf").unwrap_or_default();
    if !herald_engine::same_secret(&given, &session.csrf_token) {
        return csrf_refused();
    }
    if let Err(error) = engine.end_session(&session.id).await {
        return failure(ApiError::from(error));
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header("", 0, over_https(&headers, &uri)));
    response
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct RunFilter {
    flow: Option<String>,
    status: Option<String>,
    record: Option<String>,
    /// Only runs started at or before this minute, UTC (`2026-12-03T15:04`, as a `datetime-local`
    /// field sends it).
    before: Option<String>,
    /// The cursor of the page: the `created_at` and id of the last run of the page before, as
    /// [`run_cursor`] writes them.
    after: Option<String>,
}

/// The cursor after `run`: its `created_at`, a space, its id (neither holds a space).
fn run_cursor(run: &RunRow) -> String {
    format!("{} {}", run.created_at, run.id)
}

/// `GET /console/runs?flow=&status=&record=&after=`: the newest runs first, a page at a time, each
/// page read by the store from where the last one ended (keyset paging: every page costs the same).
async fn runs(
    State(engine): State<Engine>,
    session: Session,
    filter: Result<Query<RunFilter>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    // A filter that does not parse shows the newest runs of every flow and status.
    let filter = filter.map(|Query(filter)| filter).unwrap_or_default();
    let flow = filter.flow.filter(|flow| !flow.is_empty());
    let record = filter.record.filter(|record| !record.is_empty());
    let status = filter.status.as_deref().filter(|status| !status.is_empty()).and_then(RunStatus::parse);
    let before = filter.before.filter(|before| !before.is_empty());
    // A time is a cursor before every run of a later minute: `created_at <= its last instant`.
    let until = before.as_deref().and_then(|before| {
        chrono::NaiveDateTime::parse_from_str(before, "%Y-%m-%dT%H:%M")
            .ok()
            .map(|minute| format!("{}:59.999999Z", minute.format("%Y-%m-%dT%H:%M")))
    });
    let after: Option<(String, String)> = filter
        .after
        .as_deref()
        .and_then(|cursor| cursor.split_once(' '))
        .map(|(at, id)| (at.to_string(), id.to_string()))
        .or_else(|| until.map(|at| (at, String::new())));
    let wanted = |run: &RunRow| {
        flow.as_ref().is_none_or(|flow| &run.flow == flow) && status.is_none_or(|status| run.status == status)
    };
    let listed = match &record {
        // A record's runs are few: read them all and page here, in the store's order.
        Some(record) => engine.runs_for_record(record).await.map(|mut runs| {
            runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
            runs.into_iter()
                .filter(|run| wanted(run))
                .filter(|run| {
                    after.as_ref().is_none_or(|(at, id)| {
                        run.created_at < *at || (run.created_at == *at && run.id > *id)
                    })
                })
                .take(RUNS_PER_PAGE + 1)
                .collect()
        }),
        None => {
            let query = RunQuery {
                statuses: status.into_iter().collect(),
                flow: flow.clone(),
                after: after.clone(),
                limit: RUNS_PER_PAGE as i64 + 1,
            };
            engine.runs_page(&query).await
        }
    };
    let mut shown: Vec<RunRow> = match listed {
        Ok(runs) => runs,
        Err(error) => return failure(ApiError::from(error)),
    };
    let next = if shown.len() > RUNS_PER_PAGE {
        shown.truncate(RUNS_PER_PAGE);
        shown.last().map(run_cursor)
    } else {
        None
    };
    let flows: Vec<String> = engine.project().flows.keys().cloned().collect();
    let view = pages::RunsView {
        runs: &shown,
        flows: &flows,
        flow: flow.as_deref(),
        status,
        record: record.as_deref(),
        before: before.as_deref(),
        paged: filter.after.is_some(),
        next,
    };
    Html(pages::runs(&session.view(), &view).into_string()).into_response()
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct RunNotice {
    retried: Option<String>,
}

/// `GET /console/runs/{id}[?retried=ELEMENT]`: a run as the API shows it (secrets masked), with its
/// trace and fault; `retried` is the notice a retry from the console leaves.
async fn run(
    State(engine): State<Engine>,
    session: Session,
    Path(id): Path<String>,
    notice: Result<Query<RunNotice>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let notice = notice.map(|Query(notice)| notice).unwrap_or_default();
    match engine.run(&id).await {
        Ok(run) => {
            let retry = retry::offered(run.status)
                && session.refused_without(&engine, ApiScope::ManageFlows).is_none();
            let page = pages::run(&session.view(), &crate::run_json(&run), retry, notice.retried.as_deref());
            Html(page.into_string()).into_response()
        }
        Err(error) => {
            let error = ApiError::from(error);
            let message = error.errors.first().map(|problem| problem.message.clone()).unwrap_or_default();
            let page = pages::message_page(&session.view(), "Run not found", &message);
            (error.status, Html(page.into_string())).into_response()
        }
    }
}
