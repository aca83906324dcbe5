//! The HTTP API. Record routes follow Salesforce's REST shapes (`/records/{Object}`, errors as
//! `[{errorCode, message, fields}]`) so the people who know that API find their way.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_engine::{Engine, EngineError, FieldProblem};
use herald_store::RunRow;
use serde_json::{Map, Value, json};

pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/api/v1/records/{object}", axum::routing::post(create_record))
        .route("/api/v1/records/{object}/{id}", get(get_record).patch(update_record))
        .route("/api/v1/records/{object}/{id}/runs", get(record_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .with_state(engine)
}

/// An API error: a status and Salesforce-style error entries.
struct ApiError {
    status: StatusCode,
    errors: Vec<FieldProblem>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError { status, errors: vec![FieldProblem { error_code: code, message, fields: Vec::new() }] }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.errors)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::InvalidFields(problems) => {
                ApiError { status: StatusCode::BAD_REQUEST, errors: problems }
            }
            EngineError::UnknownObject { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string())
            }
            EngineError::NotFound { .. } | EngineError::RunNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string())
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SERVER_ERROR",
                    "herald could not complete the request; see the server log".into(),
                )
            }
        }
    }
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the body must be a JSON object of field values".into(),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            format!("the body is not valid JSON: {error}"),
        )),
    }
}

async fn create_record(
    State(engine): State<Engine>,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = json_object(&body)?;
    let write = engine.create_record(&object, &input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": write.id, "success": true, "errors": [], "runs": write.runs})),
    )
        .into_response())
}

async fn update_record(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = json_object(&body)?;
    let write = engine.update_record(&object, &id, &input).await?;
    Ok(axum::Json(json!({"id": write.id, "success": true, "errors": [], "runs": write.runs})).into_response())
}

async fn get_record(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = engine.get_record(&object, &id).await?;
    let mut body = Map::new();
    body.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/api/v1/records/{object}/{id}")}),
    );
    body.extend(record.data);
    Ok(axum::Json(Value::Object(body)).into_response())
}

async fn record_runs(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    engine.get_record(&object, &id).await?;
    let runs: Vec<Value> = engine.runs_for_record(&id).await?.iter().map(run_json).collect();
    Ok(axum::Json(json!({"runs": runs})).into_response())
}

async fn get_run(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = engine.run(&id).await?;
    Ok(axum::Json(run_json(&run)).into_response())
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
        "interviewId": run.state.get("interview_id"),
        "trace": run.state.get("trace").cloned().unwrap_or(Value::Array(Vec::new())),
    })
}
