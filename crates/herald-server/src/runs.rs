//! Runs: list them, read one with its trace, and retry one that failed, waits or ended `unknown`
//! (docs/delivery.md, "Runs, messages and receipts over the API").

use crate::error::{ApiError, Query, json_object};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_engine::Engine;
use herald_store::{RunRow, RunStatus};
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
pub(crate) struct RunQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/runs?status=failed,unknown&limit=N`: `{"runs": [run]}`.
pub(crate) async fn list(
    State(engine): State<Engine>,
    Query(query): Query<RunQuery>,
) -> Result<Json<Value>, ApiError> {
    let statuses = match query.status.as_deref() {
        Some(text) => RunStatus::parse_list(text).map_err(ApiError::invalid_field)?,
        None => Vec::new(),
    };
    let runs = engine.list_runs(&statuses, crate::limit(query.limit)).await?;
    let runs: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(Json(json!({"runs": runs})))
}

/// `GET /api/v1/runs/{id}`: one run.
pub(crate) async fn get(
    State(engine): State<Engine>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run_json(&engine.run(&id).await?)))
}

/// `POST /api/v1/runs/{id}/retry`, body optional `{"fromElement": "Send_SMS"}`: 202
/// `{"id", "fromElement"}`.
pub(crate) async fn retry(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let from = if body.is_empty() {
        None
    } else {
        json_object(&body)?.get("fromElement").and_then(Value::as_str).map(String::from)
    };
    let outcome = engine.retry_run(&id, from.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": outcome.run_id, "fromElement": outcome.from_element}))))
}

/// `POST /api/v1/runs/{id}/wake`: a `waiting` run (a scheduled path, a Wait, a retry) is made due now:
/// 202 `{"id", "queued"}`; 400 `INVALID_STATUS` for a run that is not waiting.
pub(crate) async fn wake(
    State(engine): State<Engine>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let outcome = engine.wake_run(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": outcome.run_id, "queued": outcome.queued}))))
}

/// A run as the API shows it: status, fault and the per-element trace (secrets already masked).
pub fn run_json(run: &RunRow) -> Value {
    json!({
        "id": run.id,
        "flow": run.flow,
        "object": run.object,
        "recordId": run.record_id,
        "status": run.status,
        "fault": run.fault,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
        "nextAttemptAt": run.next_attempt_at,
        "version": run.version,
        // The node that runs it while ready or running; after that, the last one that did.
        "node": run.owner,
        "interviewId": run.state.get("interview_id"),
        "trace": run.state.get("trace").cloned().unwrap_or(Value::Array(Vec::new())),
        "traceOmitted": run.state.get("trace_omitted").cloned().unwrap_or(Value::Object(Default::default())),
    })
}
