//! The HTTP API. Record routes follow Salesforce's REST shapes (`/records/{Object}`, errors as
//! `[{errorCode, message, fields}]`) so the people who know that API find their way.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_engine::{Engine, EngineError, FieldProblem, run_user};
use herald_project::ApiScope;
use herald_store::{RunRow, UserRow};
use serde_json::{Map, Value, json};

pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/api/v1/records/{object}", axum::routing::post(create_record))
        .route("/api/v1/records/{object}/{id}", get(get_record).patch(update_record))
        .route("/api/v1/records/{object}/{id}/runs", get(record_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/credentials/{external}/{principal}/{parameter}", axum::routing::put(set_credential))
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

/// The user behind the request's bearer token, if it holds `scope`: 401 without a valid token, 403
/// without the scope (naming the permission sets that grant it).
async fn authorize(engine: &Engine, headers: &HeaderMap, scope: ApiScope) -> Result<UserRow, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "this route needs `Authorization: Bearer <token>`; create a token with `herald token create USER`".into(),
        ));
    };
    let Some(user) = engine.authenticate(token).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "the bearer token is not valid (unknown, revoked, or its user was removed)".into(),
        ));
    };
    if !engine.scopes(&user).contains(&scope) {
        let granting = engine.permission_sets_granting(scope);
        let fix = if granting.is_empty() {
            format!("add `api_scopes: [{}]` to a permission set and assign it", scope.name())
        } else {
            format!("assign permission set {}", granting.join(" or "))
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_ACCESS",
            format!("user {} lacks the API scope {}; {fix}", user.name, scope.name()),
        ));
    }
    Ok(user)
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = authorize(&engine, &headers, ApiScope::WriteRecords).await?;
    let input = json_object(&body)?;
    let write = engine.create_record(&object, &input, &run_user(&user)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": write.id, "success": true, "errors": [], "runs": write.runs})),
    )
        .into_response())
}

async fn update_record(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = authorize(&engine, &headers, ApiScope::WriteRecords).await?;
    let input = json_object(&body)?;
    let write = engine.update_record(&object, &id, &input, &run_user(&user)).await?;
    Ok(axum::Json(json!({"id": write.id, "success": true, "errors": [], "runs": write.runs})).into_response())
}

async fn get_record(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRecords).await?;
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    engine.get_record(&object, &id).await?;
    let runs: Vec<Value> = engine.runs_for_record(&id).await?.iter().map(run_json).collect();
    Ok(axum::Json(json!({"runs": runs})).into_response())
}

async fn get_run(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    let run = engine.run(&id).await?;
    Ok(axum::Json(run_json(&run)).into_response())
}

#[derive(serde::Deserialize)]
struct CredentialQuery {
    user: Option<String>,
}

/// Sets one secret parameter. The value is the raw request body; it is never returned or logged.
async fn set_credential(
    State(engine): State<Engine>,
    Path((external, principal, parameter)): Path<(String, String, String)>,
    axum::extract::Query(query): axum::extract::Query<CredentialQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ManageCredentials).await?;
    let value = zeroize::Zeroizing::new(body.to_vec());
    if value.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "REQUIRED_FIELD_MISSING",
            "the request body must hold the value".into(),
        ));
    }
    match engine.set_secret(&external, &principal, &parameter, &value, query.user.as_deref()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(
            error @ (EngineError::UnknownPrincipal { .. }
            | EngineError::UnknownParameter { .. }
            | EngineError::UnknownUser(_)
            | EngineError::UserRequired { .. }
            | EngineError::UserNotAllowed { .. }),
        ) => Err(ApiError::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", error.to_string())),
        Err(error) => Err(error.into()),
    }
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
