//! Credentials and access in the console (docs/console.md, "Credentials" and "Users"): what a
//! revenue-operations admin checks and changes when a provider key rotates or someone leaves.
//!
//! Both pages need `manage_credentials`, the scope of the API's `PUT /api/v1/credentials/...`: API
//! tokens are credentials too, and whoever may set a provider's key may already act as any
//! integration. Secret values go one way only: into the vault, through the same engine call as the
//! API (`Engine::set_secret`), and never back out: a page shows whether a value is set and when, never
//! the value, its length or anything derived from it. A new API token is shown once, in the answer to
//! the POST that made it, never in a URL.

use super::pages::{Viewer, layout, message_page};
use super::{Session, csrf_refused, failure, form_field};
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use herald_engine::{Engine, EngineError};
use herald_project::{ApiScope, PrincipalType};
use herald_store::{AccountRow, SecretSetting, TokenRow, UserRow};
use maud::{Markup, html};
use std::collections::BTreeMap;

pub(super) fn routes() -> Router<Engine> {
    Router::new()
        .route("/console/credentials", get(credentials))
        .route("/console/credentials/set", post(set_value))
        .route("/console/users", get(users))
        .route("/console/users/token", post(create_token))
        .route("/console/users/revoke", get(confirm_revoke).post(revoke))
        .route("/console/users/deactivate", get(confirm_deactivate).post(deactivate))
}

/// The form's CSRF token against the session's, then the scope: a refusal, or `None` to go on.
fn refused(engine: &Engine, session: &Session, body: &[u8]) -> Option<Response> {
    let given = form_field(body, "csrf").unwrap_or_default();
    if !herald_engine::same_secret(&given, &session.csrf_token) {
        return Some(csrf_refused());
    }
    session.refused_without(engine, ApiScope::ManageCredentials)
}

/// A form field as text, empty when absent.
fn field(body: &[u8], name: &str) -> String {
    form_field(body, name).map(|value| value.trim().to_string()).unwrap_or_default()
}

/// A query or form value that names a user: empty means none.
fn some(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

// Credentials.

/// The notice after a value was set, by place: which parameter (never its value).
#[derive(serde::Deserialize, Default)]
struct SetNotice {
    external: Option<String>,
    principal: Option<String>,
    parameter: Option<String>,
    user: Option<String>,
}

/// One parameter of a principal as the page shows it.
struct ParameterView<'a> {
    name: &'a str,
    /// For a named principal, at most one (user empty); for a per-user one, each user's value.
    set: Vec<(Option<String>, &'a str)>,
}

struct PrincipalView<'a> {
    name: &'a str,
    per_user: bool,
    parameters: Vec<ParameterView<'a>>,
    /// Permission sets granting it, each with who holds it.
    granted_by: Vec<(String, Vec<String>)>,
}

struct ExternalView<'a> {
    name: &'a str,
    protocol: &'static str,
    named: Vec<(&'a str, &'a str)>,
    principals: Vec<PrincipalView<'a>>,
}

/// `GET /console/credentials`: every external credential, its principals and their parameters,
/// whether each value is set and when, the named credentials that use it and who is granted it.
async fn credentials(
    State(engine): State<Engine>,
    session: Session,
    notice: Result<Query<SetNotice>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageCredentials) {
        return refused;
    }
    let (settings, accounts) = match (engine.secret_settings().await, engine.accounts().await) {
        (Ok(settings), Ok(accounts)) => (settings, accounts),
        (Err(error), _) | (_, Err(error)) => return failure(ApiError::from(error)),
    };
    let names: BTreeMap<&str, &str> = accounts.iter().map(|a| (a.id.as_str(), a.name.as_str())).collect();
    let compiled = engine.project();
    let project = &compiled.project;
    let automation = &project.config.automation.permission_sets;
    let externals: Vec<ExternalView<'_>> = project
        .external_credentials
        .values()
        .map(|external| {
            let external = &external.def;
            let principals = external
                .principals
                .iter()
                .map(|principal| {
                    let grant = format!("{}-{}", external.name, principal.name);
                    let granted_by = project
                        .permission_sets
                        .values()
                        .filter(|set| set.def.external_credential_principal_access.contains(&grant))
                        .map(|set| {
                            let mut holders: Vec<String> = accounts
                                .iter()
                                .filter(|a| a.active && a.permission_sets.contains(&set.def.name))
                                .map(|a| a.name.clone())
                                .collect();
                            if automation.contains(&set.def.name) {
                                holders.insert(0, "the automation user".to_string());
                            }
                            (set.def.name.clone(), holders)
                        })
                        .collect();
                    let parameters = principal
                        .parameters
                        .iter()
                        .map(|parameter| ParameterView {
                            name: parameter,
                            set: settings
                                .iter()
                                .filter(|s| placed(s, &external.name, &principal.name, parameter))
                                .map(|s| {
                                    let user = (!s.user_id.is_empty()).then(|| {
                                        names
                                            .get(s.user_id.as_str())
                                            .map_or(s.user_id.clone(), |n| n.to_string())
                                    });
                                    (user, s.set_at.as_str())
                                })
                                .collect(),
                        })
                        .collect();
                    PrincipalView {
                        name: &principal.name,
                        per_user: principal.principal_type == PrincipalType::PerUser,
                        parameters,
                        granted_by,
                    }
                })
                .collect();
            let named = project
                .named_credentials
                .values()
                .filter(|named| named.def.external_credential == external.name)
                .map(|named| (named.def.name.as_str(), named.def.url.as_str()))
                .collect();
            ExternalView {
                name: &external.name,
                protocol: protocol_name(external.protocol),
                named,
                principals,
            }
        })
        .collect();
    let notice = notice.ok().and_then(|Query(notice)| set_notice(&externals, &notice));
    let users: Vec<&str> = accounts.iter().filter(|a| a.active).map(|a| a.name.as_str()).collect();
    Html(credentials_page(&session.view(), &externals, &users, notice.as_deref()).into_string())
        .into_response()
}

fn placed(setting: &SecretSetting, external: &str, principal: &str, parameter: &str) -> bool {
    setting.external_credential == external
        && setting.principal == principal
        && setting.parameter == parameter
}

fn protocol_name(protocol: herald_project::Protocol) -> &'static str {
    match protocol {
        herald_project::Protocol::Custom => "custom",
        herald_project::Protocol::NoAuthentication => "no authentication",
        herald_project::Protocol::Basic => "basic",
        herald_project::Protocol::OAuth2ClientCredentials => "OAuth 2.0 client credentials",
    }
}

/// "apikey of Kixie_API_Auth/Kixie_Principal set", when the redirect names a parameter the project
/// declares and a value is stored there: a crafted link cannot make the page say anything else.
fn set_notice(externals: &[ExternalView<'_>], notice: &SetNotice) -> Option<String> {
    let (external, principal, parameter) =
        (some(&notice.external)?, some(&notice.principal)?, some(&notice.parameter)?);
    let user = some(&notice.user);
    let found = externals
        .iter()
        .filter(|e| e.name == external)
        .flat_map(|e| &e.principals)
        .filter(|p| p.name == principal)
        .flat_map(|p| &p.parameters)
        .find(|p| p.name == parameter)?;
    found.set.iter().any(|(owner, _)| owner.as_deref() == user).then(|| match user {
        Some(user) => format!("{parameter} of {external}/{principal} set for {user}"),
        None => format!("{parameter} of {external}/{principal} set"),
    })
}

fn credentials_page(
    viewer: &Viewer<'_>,
    externals: &[ExternalView<'_>],
    users: &[&str],
    notice: Option<&str>,
) -> Markup {
    layout(
        Some(viewer),
        "Credentials",
        html! {
            h1 { "Credentials" }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            p.hint {
                "Values are encrypted in herald's vault and never shown again, here or anywhere else. "
                "Setting one replaces the value the next callout uses."
            }
            @if externals.is_empty() { p.empty { "This project declares no external credential." } }
            @for external in externals {
                section.credential {
                    h2 { (external.name) " " span.kind { (external.protocol) } }
                    p.uses {
                        "Used by "
                        @if external.named.is_empty() { "no named credential" }
                        @for (i, (named, url)) in external.named.iter().enumerate() {
                            @if i > 0 { ", " }
                            strong { (named) } " (" code { (url) } ")"
                        }
                        "."
                    }
                    @for principal in &external.principals {
                        div.principal {
                            h3 {
                                (principal.name) " "
                                span.kind { @if principal.per_user { "per-user principal" } @else { "named principal" } }
                            }
                            p.grants {
                                "Granted by "
                                @if principal.granted_by.is_empty() { "no permission set" }
                                @for (i, (set, holders)) in principal.granted_by.iter().enumerate() {
                                    @if i > 0 { "; " }
                                    strong { (set) }
                                    " (held by "
                                    @if holders.is_empty() { "no one" } @else { (holders.join(", ")) }
                                    ")"
                                }
                                "."
                            }
                            ul.parameters {
                                @for parameter in &principal.parameters {
                                    li.parameter {
                                        div.state {
                                            code.name { (parameter.name) }
                                            @if parameter.set.is_empty() {
                                                " " span.unset { "not set" }
                                            }
                                            @for (user, at) in &parameter.set {
                                                " " span.set {
                                                    "set"
                                                    @if let Some(user) = user { " for " (user) }
                                                    " " time datetime=(at) { (at) }
                                                }
                                            }
                                        }
                                        form.value method="post" action="/console/credentials/set" {
                                            input type="hidden" name="csrf" value=(viewer.csrf_token);
                                            input type="hidden" name="external" value=(external.name);
                                            input type="hidden" name="principal" value=(principal.name);
                                            input type="hidden" name="parameter" value=(parameter.name);
                                            @if principal.per_user {
                                                label { "User "
                                                    select name="user" required {
                                                        @for user in users { option value=(user) { (user) } }
                                                    }
                                                }
                                            }
                                            label {
                                                span.label { "New value of " (parameter.name) }
                                                input type="password" name="value" autocomplete="off" placeholder="new value" required;
                                            }
                                            button type="submit" { "Set" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `POST /console/credentials/set`: one parameter's value (form fields `external`, `principal`,
/// `parameter`, `value`, and `user` for a per-user principal), sealed by the vault exactly as the
/// API's `PUT` seals it; answered with a redirect that names the parameter, never the value.
async fn set_value(State(engine): State<Engine>, session: Session, body: Bytes) -> Response {
    if let Some(refused) = refused(&engine, &session, &body) {
        return refused;
    }
    let (external, principal, parameter) =
        (field(&body, "external"), field(&body, "principal"), field(&body, "parameter"));
    let user = Some(field(&body, "user")).filter(|user| !user.is_empty());
    // Not trimmed: a value is kept exactly as typed, as the API keeps its body.
    let value = form_field(&body, "value").unwrap_or_default();
    if value.is_empty() {
        let page = message_page(
            &session.view(),
            "Nothing set",
            &format!("Type a value for {parameter} of {external}/{principal}; an empty value is not stored."),
        );
        return (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response();
    }
    match engine.set_secret(&external, &principal, &parameter, value.as_bytes(), user.as_deref()).await {
        Ok(()) => {
            tracing::info!(by = %session.user.name, %external, %principal, %parameter, user = user.as_deref().unwrap_or(""), "console: credential value set");
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("external", &external).append_pair("principal", &principal);
            query.append_pair("parameter", &parameter);
            if let Some(user) = &user {
                query.append_pair("user", user);
            }
            Redirect::to(&format!("/console/credentials?{}", query.finish())).into_response()
        }
        Err(
            error @ (EngineError::UnknownPrincipal { .. }
            | EngineError::UnknownParameter { .. }
            | EngineError::UnknownUser { .. }
            | EngineError::UserRequired { .. }
            | EngineError::UserNotAllowed { .. }),
        ) => {
            let page = message_page(&session.view(), "Nothing set", &error.to_string());
            (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response()
        }
        Err(error) => failure(ApiError::from(error)),
    }
}

// Users and tokens.

#[derive(serde::Deserialize, Default)]
struct UsersNotice {
    revoked: Option<String>,
    deactivated: Option<String>,
}

/// `GET /console/users`: every user, active or deactivated, with permission sets, API scopes, whether
/// a password is set, and their tokens (ids and dates).
async fn users(
    State(engine): State<Engine>,
    session: Session,
    notice: Result<Query<UsersNotice>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageCredentials) {
        return refused;
    }
    let (accounts, tokens) = match (engine.accounts().await, engine.tokens().await) {
        (Ok(accounts), Ok(tokens)) => (accounts, tokens),
        (Err(error), _) | (_, Err(error)) => return failure(ApiError::from(error)),
    };
    let notice = notice.map(|Query(notice)| notice).unwrap_or_default();
    // Only what the store confirms is announced: a crafted link cannot make the page claim a
    // revocation that did not happen.
    let notice = if let Some(id) = some(&notice.revoked) {
        tokens.iter().find(|t| t.id == id && t.revoked).map(|t| format!("Token {} revoked.", t.id))
    } else if let Some(name) = some(&notice.deactivated) {
        accounts.iter().find(|a| a.name == name && !a.active).map(|a| format!("{} deactivated.", a.name))
    } else {
        None
    };
    let scopes = |account: &AccountRow| -> Vec<&'static str> {
        let user = UserRow {
            id: account.id.clone(),
            name: account.name.clone(),
            permission_sets: account.permission_sets.clone(),
        };
        engine.scopes(&user).iter().map(|scope| scope.name()).collect()
    };
    let rows: Vec<(&AccountRow, Vec<&'static str>, Vec<&TokenRow>)> = accounts
        .iter()
        .map(|account| {
            (account, scopes(account), tokens.iter().filter(|t| t.user_id == account.id).collect())
        })
        .collect();
    Html(users_page(&session.view(), &rows, notice.as_deref()).into_string()).into_response()
}

fn users_page(
    viewer: &Viewer<'_>,
    rows: &[(&AccountRow, Vec<&'static str>, Vec<&TokenRow>)],
    notice: Option<&str>,
) -> Markup {
    layout(
        Some(viewer),
        "Users",
        html! {
            h1 { "Users" }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            p.hint {
                "Add users with " code { "herald user add NAME --permission-set SET" } ". "
                "A token is shown once, when it is created; only its id is listed here."
            }
            @if rows.is_empty() { p.empty { "No users yet." } }
            @for (account, scopes, tokens) in rows {
                section.user {
                    h2 {
                        (account.name) " "
                        @if account.active { span.status.finished { "active" } }
                        @else { span.status.failed { "deactivated" } }
                    }
                    dl.facts {
                        dt { "Permission sets" }
                        dd { @if account.permission_sets.is_empty() { "none" } @else { (account.permission_sets.join(", ")) } }
                        dt { "API scopes" }
                        dd { @if scopes.is_empty() { "none" } @else { (scopes.join(", ")) } }
                        dt { "Console password" }
                        dd { @if account.has_password { "set" } @else { "not set" } }
                        dt { "Created" }
                        dd { (account.created_at) }
                    }
                    h3 { "API tokens" }
                    @if tokens.is_empty() {
                        p.empty { "No tokens." }
                    } @else {
                        ul.tokens {
                            @for token in tokens {
                                li.token {
                                    code { (token.id) }
                                    " created " (token.created_at) " "
                                    @if token.revoked {
                                        span.status.failed { "revoked" }
                                        @if let Some(at) = &token.revoked_at { " " (at) }
                                    } @else {
                                        span.status.finished { "active" }
                                        " "
                                        a.revoke href=(format!("/console/users/revoke?token={}", token_query(&token.id))) { "Revoke…" }
                                    }
                                }
                            }
                        }
                    }
                    @if account.active {
                        div.actions {
                            form method="post" action="/console/users/token" {
                                input type="hidden" name="csrf" value=(viewer.csrf_token);
                                input type="hidden" name="user" value=(account.name);
                                button type="submit" { "Create a token for " (account.name) }
                            }
                            a.deactivate href=(format!("/console/users/deactivate?user={}", token_query(&account.name))) { "Deactivate…" }
                        }
                    }
                }
            }
        },
    )
}

/// A value as one query-string value.
fn token_query(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `POST /console/users/token` (form field `user`): a new API token, shown in this answer only.
async fn create_token(State(engine): State<Engine>, session: Session, body: Bytes) -> Response {
    if let Some(refused) = refused(&engine, &session, &body) {
        return refused;
    }
    let user = field(&body, "user");
    let issued = match engine.issue_token(&user).await {
        Ok(issued) => issued,
        Err(error @ EngineError::UnknownUser { .. }) => {
            let page = message_page(&session.view(), "No token created", &error.to_string());
            return (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response();
        }
        Err(error) => return failure(ApiError::from(error)),
    };
    tracing::info!(by = %session.user.name, %user, token = %issued.id, "console: API token created");
    let page = layout(
        Some(&session.view()),
        "New API token",
        html! {
            h1 { "New API token for " (user) }
            p.warning role="alert" {
                strong { "Copy it now: it will not be shown again." }
                " herald keeps only its hash; if it is lost, create another and revoke this one."
            }
            p { code.secret id="new-token" { (issued.token.as_str()) } }
            p { "Its id, which names it in the Users page and in " code { "herald token revoke" } ": " code.token-id { (issued.id) } }
            p { a href="/console/users" { "Back to Users" } }
        },
    );
    Html(page.into_string()).into_response()
}

#[derive(serde::Deserialize)]
struct TokenChoice {
    token: Option<String>,
}

/// `GET /console/users/revoke?token=ID`: asks before revoking (the page needs no script).
async fn confirm_revoke(
    State(engine): State<Engine>,
    session: Session,
    choice: Result<Query<TokenChoice>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageCredentials) {
        return refused;
    }
    let id = choice.ok().and_then(|Query(choice)| choice.token).unwrap_or_default();
    let (tokens, accounts) = match (engine.tokens().await, engine.accounts().await) {
        (Ok(tokens), Ok(accounts)) => (tokens, accounts),
        (Err(error), _) | (_, Err(error)) => return failure(ApiError::from(error)),
    };
    let Some(token) = tokens.iter().find(|t| t.id == id && !t.revoked) else {
        let page = message_page(&session.view(), "No such token", &EngineError::UnknownToken(id).to_string());
        return (StatusCode::NOT_FOUND, Html(page.into_string())).into_response();
    };
    let owner = accounts.iter().find(|a| a.id == token.user_id).map_or("", |a| a.name.as_str());
    let view = session.view();
    let page = layout(
        Some(&view),
        "Revoke a token",
        html! {
            h1 { "Revoke token " code { (token.id) } "?" }
            p { "Token of " strong { (owner) } ", created " (token.created_at) ". Whatever uses it gets 401 from its next request on; this cannot be undone." }
            form.confirm method="post" action="/console/users/revoke" {
                input type="hidden" name="csrf" value=(view.csrf_token);
                input type="hidden" name="token" value=(token.id);
                button.danger type="submit" { "Revoke" }
                " " a href="/console/users" { "Cancel" }
            }
        },
    );
    Html(page.into_string()).into_response()
}

/// `POST /console/users/revoke` (form field `token`, an id).
async fn revoke(State(engine): State<Engine>, session: Session, body: Bytes) -> Response {
    if let Some(refused) = refused(&engine, &session, &body) {
        return refused;
    }
    let id = field(&body, "token");
    match engine.revoke_token(&id).await {
        Ok(()) => {
            tracing::info!(by = %session.user.name, token = %id, "console: API token revoked");
            Redirect::to(&format!("/console/users?revoked={}", token_query(&id))).into_response()
        }
        Err(error @ EngineError::UnknownToken(_)) => {
            let page = message_page(&session.view(), "No such token", &error.to_string());
            (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
        }
        Err(error) => failure(ApiError::from(error)),
    }
}

#[derive(serde::Deserialize)]
struct UserChoice {
    user: Option<String>,
}

/// `GET /console/users/deactivate?user=NAME`: asks before deactivating.
async fn confirm_deactivate(
    State(engine): State<Engine>,
    session: Session,
    choice: Result<Query<UserChoice>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageCredentials) {
        return refused;
    }
    let name = choice.ok().and_then(|Query(choice)| choice.user).unwrap_or_default();
    let user = match engine.user_named(&name).await {
        Ok(user) => user,
        Err(error @ EngineError::UnknownUser { .. }) => {
            let page = message_page(&session.view(), "No such user", &error.to_string());
            return (StatusCode::NOT_FOUND, Html(page.into_string())).into_response();
        }
        Err(error) => return failure(ApiError::from(error)),
    };
    let view = session.view();
    let page = layout(
        Some(&view),
        "Deactivate a user",
        html! {
            h1 { "Deactivate " (user.name) "?" }
            p {
                "Its API tokens are refused from the next request on and its console sessions end."
            }
            @if user.name == view.user { p.warning { "This is you: you will be signed out." } }
            form.confirm method="post" action="/console/users/deactivate" {
                input type="hidden" name="csrf" value=(view.csrf_token);
                input type="hidden" name="user" value=(user.name);
                button.danger type="submit" { "Deactivate" }
                " " a href="/console/users" { "Cancel" }
            }
        },
    );
    Html(page.into_string()).into_response()
}

/// `POST /console/users/deactivate` (form field `user`).
async fn deactivate(State(engine): State<Engine>, session: Session, body: Bytes) -> Response {
    if let Some(refused) = refused(&engine, &session, &body) {
        return refused;
    }
    let name = field(&body, "user");
    match engine.deactivate_user(&name).await {
        Ok(()) => {
            tracing::info!(by = %session.user.name, user = %name, "console: user deactivated");
            Redirect::to(&format!("/console/users?deactivated={}", token_query(&name))).into_response()
        }
        Err(error @ EngineError::UnknownUser { .. }) => {
            let page = message_page(&session.view(), "No such user", &error.to_string());
            (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
        }
        Err(error) => failure(ApiError::from(error)),
    }
}
