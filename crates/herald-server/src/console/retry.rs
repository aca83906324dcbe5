//! Retry from the console: a failed or `unknown` run is run again from the browser, as
//! `POST /api/v1/runs/{id}/retry` does, after a page that says what may happen.
//!
//! A retry by hand is a new send (a new idempotency key, docs/delivery.md), so the one thing a person
//! must know before asking for it is which messages may then reach someone twice; the confirmation
//! page reads that from the run's ledger rows and the provider registry ([`RetryPlan`]). Only failed
//! and `unknown` runs are offered: a finished run would resend what went out, and a waiting one is
//! sent sooner with `herald runs wake`, which the console does not do.

use super::pages::{layout, url_segment};
use super::{Session, csrf_refused, form_field};
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use herald_engine::{Engine, EngineError, PlannedSend, RetryPlan};
use herald_project::ApiScope;
use herald_store::RunStatus;
use maud::{Markup, html};

/// Ledger rows listed one by one on the confirmation page; past it the page says how many more.
const SENDS_LISTED: usize = 20;

pub(super) fn routes() -> Router<Engine> {
    Router::new().route("/console/runs/{id}/retry", get(confirm).post(retry))
}

/// Whether the console offers to retry a run of this status.
pub(super) fn offered(status: RunStatus) -> bool {
    matches!(status, RunStatus::Failed | RunStatus::Unknown)
}

/// The refusal of a retry the console does not offer, worded as the engine words its own.
fn not_offered(id: &str, status: RunStatus) -> EngineError {
    let reason = match status {
        RunStatus::Finished => "it is finished; the console retries failed and unknown runs only (`herald runs retry --from-element` runs a finished run again)".to_string(),
        RunStatus::Waiting => "it is waiting; the console retries failed and unknown runs only (`herald runs wake` makes a waiting run due now)".to_string(),
        other => format!("it is {}; the console retries failed and unknown runs only", other.as_str()),
    };
    EngineError::NotRetryable { id: id.to_string(), reason }
}

/// `GET /console/runs/{id}/retry`: what retrying would do, and the form that asks for it. Needs
/// `manage_flows` (as the API's retry) and `read_runs` (it shows the run and its messages).
async fn confirm(State(engine): State<Engine>, session: Session, Path(id): Path<String>) -> Response {
    for scope in [ApiScope::ManageFlows, ApiScope::ReadRuns] {
        if let Some(refused) = session.refused_without(&engine, scope) {
            return refused;
        }
    }
    let plan = match engine.retry_plan(&id).await {
        Ok(plan) => plan,
        Err(error) => return not_retried(&session, ApiError::from(error)),
    };
    if !offered(plan.run.status) {
        return not_retried(&session, ApiError::from(not_offered(&id, plan.run.status)));
    }
    Html(page(&session, &plan).into_string()).into_response()
}

/// `POST /console/runs/{id}/retry`, a form of `csrf`, `confirm` and optional `from`: the retry, by
/// the same engine call as the API's; then the run's page, which says it was retried.
async fn retry(
    State(engine): State<Engine>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let given = form_field(&body, "csrf").unwrap_or_default();
    if !herald_engine::same_secret(&given, &session.csrf_token) {
        return csrf_refused();
    }
    if let Some(refused) = session.refused_without(&engine, ApiScope::ManageFlows) {
        return refused;
    }
    if form_field(&body, "confirm").is_none_or(|confirm| confirm.as_str() != "yes") {
        let page = super::pages::message_page(
            &session.view(),
            "Not retried",
            "The retry was not confirmed: open the run's Retry… page and press Retry.",
        );
        return (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response();
    }
    let run = match engine.run(&id).await {
        Ok(run) => run,
        Err(error) => return not_retried(&session, ApiError::from(error)),
    };
    if !offered(run.status) {
        return not_retried(&session, ApiError::from(not_offered(&id, run.status)));
    }
    let from = form_field(&body, "from").filter(|from| !from.is_empty());
    match engine.retry_run(&id, from.as_deref().map(|from| from.as_str())).await {
        Ok(outcome) => {
            tracing::info!(user = %session.user.name, run = %outcome.run_id, from = %outcome.from_element, "console retry");
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("retried", &outcome.from_element);
            Redirect::to(&format!("/console/runs/{}?{}", url_segment(&outcome.run_id), query.finish()))
                .into_response()
        }
        Err(error) => not_retried(&session, ApiError::from(error)),
    }
}

/// Why a run was not (or cannot be) retried, with the API's status and message: 404 for a run that
/// does not exist, 409 for one the retry refuses.
fn not_retried(session: &Session, error: ApiError) -> Response {
    let message = error.errors.first().map(|problem| problem.message.clone()).unwrap_or_default();
    let page = super::pages::message_page(&session.view(), "Not retried", &message);
    (error.status, Html(page.into_string())).into_response()
}

fn page(session: &Session, plan: &RetryPlan) -> Markup {
    let run = &plan.run;
    let run_page = format!("/console/runs/{}", url_segment(&run.id));
    layout(
        Some(&session.view()),
        &format!("Retry run {}", run.id),
        html! {
            h1 { "Retry run " code { (run.id) } "?" }
            dl.run {
                dt { "Status" } dd { span class=(format!("status {}", run.status.as_str())) { (run.status.as_str()) } }
                dt { "Flow" } dd { (run.flow) }
                dt { "Record" } dd { (run.object) " " code { (run.record_id) } }
                @if let Some(fault) = &run.fault { dt { "Fault" } dd.fault { (fault) } }
            }
            section.resends {
                h2 { "What may be sent twice" }
                (resends(plan))
            }
            form.retry method="post" action=(format!("{run_page}/retry")) {
                input type="hidden" name="csrf" value=(session.csrf_token);
                input type="hidden" name="confirm" value="yes";
                label {
                    "Go on from "
                    select name="from" {
                        @for (name, kind) in &plan.elements {
                            option value=(name) selected[plan.stopped_at.as_deref() == Some(name.as_str())] {
                                (name) " (" (kind) ")"
                                @if plan.stopped_at.as_deref() == Some(name.as_str()) { " — where it stopped" }
                            }
                        }
                    }
                }
                p.hint {
                    "The run keeps its variables, outputs and trace, and goes on from this element on the project version it started on. "
                    "Its sends get new idempotency keys: a retry is a new message to the provider."
                }
                div.buttons {
                    button type="submit" { "Retry" }
                    a href=(run_page) { "Cancel" }
                }
            }
        },
    )
}

/// What the retry may repeat: sends whose outcome is unknown, and sends already accepted.
fn resends(plan: &RetryPlan) -> Markup {
    html! {
        @if plan.uncertain.is_empty() && plan.accepted.is_empty() {
            p.safe {
                "Nothing will be sent twice: no send of this run reached a provider (each was refused, or never made), "
                "so what the retry sends goes out once."
            }
        }
        @if !plan.uncertain.is_empty() {
            p.warning { "The outcome of these sends is not known: they may have reached the provider, and the retry sends them again." }
            ul.sends {
                @for send in plan.uncertain.iter().take(SENDS_LISTED) { li { (uncertain(send)) } }
            }
            (more(plan.uncertain.len()))
            p.hint { "Check the provider's log first: retry only if the message did not go out." }
        }
        @if !plan.accepted.is_empty() {
            p { "These sends were accepted by the provider. Going on from their element, or from an element that leads to it, sends them again:" }
            ul.sends {
                @for send in plan.accepted.iter().take(SENDS_LISTED) {
                    li {
                        (send.provider_label) " accepted " (element_of(send)) " to " (destination(send))
                        " (" (send.status.as_deref().unwrap_or("")) "): it would receive it again."
                    }
                }
            }
            (more(plan.accepted.len()))
        }
    }
}

fn uncertain(send: &PlannedSend) -> Markup {
    let to = destination(send);
    html! {
        strong { (send.provider_label) } ", " (element_of(send)) " to " (to) ": "
        @match (send.deduplicates, send.key_field) {
            (true, Some(field)) => {
                (send.provider_label) " deduplicates a resend by " code { (field) } ", but a retry sends with a new "
                code { (field) } " (a new idempotency key), so " (send.provider_label) " takes it as a new message: "
                strong { (to) " may receive this message twice." }
            }
            _ => {
                (send.provider_label) " does not deduplicate resends: "
                strong { (to) " may receive this message twice." }
            }
        }
    }
}

fn element_of(send: &PlannedSend) -> String {
    send.element.as_deref().map_or_else(|| "a send".to_string(), |element| format!("the send of {element}"))
}

fn destination(send: &PlannedSend) -> String {
    send.destination.clone().unwrap_or_else(|| "its destination".to_string())
}

fn more(count: usize) -> Markup {
    html! {
        @if count > SENDS_LISTED { p.hint { "… and " (count - SENDS_LISTED) " more (see the run's messages in the API)." } }
    }
}
