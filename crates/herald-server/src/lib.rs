//! The HTTP API. Record routes follow Salesforce's REST shapes (`/records/{Object}`, errors as
//! `[{errorCode, message, fields}]`) so the people who know that API find their way.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_engine::{Engine, EngineError, FieldProblem, WebhookError, WebhookRequest, run_user};
use herald_project::ApiScope;
use herald_store::{MessageFilter, RunRow, RunStatus, UserRow};
use serde_json::{Map, Value, json};

pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/api/v1/records/{object}", axum::routing::post(create_record))
        .route("/api/v1/records/{object}/{id}", get(get_record).patch(update_record))
        .route("/api/v1/records/{object}/{id}/runs", get(record_runs))
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/retry", axum::routing::post(retry_run))
        .route("/api/v1/messages", get(list_messages))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/receipts", get(list_receipts))
        .route("/api/v1/consent", get(list_consent))
        .route("/webhooks/{name}", axum::routing::post(webhook))
        .route("/api/v1/credentials/{external}/{principal}/{parameter}", axum::routing::put(set_credential))
        .with_state(engine)
}

/// An API error: a status and Salesforce-style error entries.
struct ApiError {
    status: StatusCode,
    errors: Vec<FieldProblem>,
    /// Seconds for a `Retry-After` header (a busy server).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            errors: vec![FieldProblem { error_code: code, message, fields: Vec::new() }],
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.errors)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::InvalidFields(problems) => {
                ApiError { status: StatusCode::BAD_REQUEST, errors: problems, retry_after: None }
            }
            EngineError::Busy { waited_seconds, .. } => ApiError {
                retry_after: Some(waited_seconds),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", error.to_string())
            },
            EngineError::UnknownObject { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string())
            }
            EngineError::NotFound { .. } | EngineError::RunNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string())
            }
            EngineError::NotRetryable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "INVALID_STATUS", error.to_string())
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
            | EngineError::UnknownUser { .. }
            | EngineError::UserRequired { .. }
            | EngineError::UserNotAllowed { .. }),
        ) => Err(ApiError::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", error.to_string())),
        Err(error) => Err(error.into()),
    }
}

#[derive(serde::Deserialize)]
struct RunQuery {
    status: Option<String>,
    limit: Option<i64>,
}

fn parse_statuses(text: Option<&str>) -> Result<Vec<RunStatus>, ApiError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    RunStatus::parse_list(text)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", message))
}

async fn list_runs(
    State(engine): State<Engine>,
    axum::extract::Query(query): axum::extract::Query<RunQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    let statuses = parse_statuses(query.status.as_deref())?;
    let runs = engine.list_runs(&statuses, query.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    let runs: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(axum::Json(json!({"runs": runs})).into_response())
}

async fn retry_run(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ManageFlows).await?;
    let from = if body.is_empty() {
        None
    } else {
        json_object(&body)?.get("fromElement").and_then(Value::as_str).map(String::from)
    };
    let outcome = engine.retry_run(&id, from.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"id": outcome.run_id, "fromElement": outcome.from_element})))
        .into_response())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageQuery {
    run_id: Option<String>,
    destination: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_messages(
    State(engine): State<Engine>,
    axum::extract::Query(query): axum::extract::Query<MessageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    let filter = MessageFilter {
        run_id: query.run_id,
        destination: query.destination,
        status: query.status,
        limit: query.limit.unwrap_or(100).clamp(1, 10_000),
    };
    let messages = engine.messages(&filter).await?;
    Ok(axum::Json(json!({"messages": messages})).into_response())
}

async fn get_message(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    match engine.message(&id).await? {
        Some(message) => Ok(axum::Json(message).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no message with id {id}"))),
    }
}

#[derive(serde::Deserialize)]
struct ReceiptQuery {
    unmatched: Option<bool>,
    limit: Option<i64>,
}

async fn list_receipts(
    State(engine): State<Engine>,
    axum::extract::Query(query): axum::extract::Query<ReceiptQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    let receipts = engine
        .receipts(query.unmatched.unwrap_or(false), query.limit.unwrap_or(100).clamp(1, 10_000))
        .await?;
    Ok(axum::Json(json!({"receipts": receipts})).into_response())
}

async fn list_consent(State(engine): State<Engine>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&engine, &headers, ApiScope::ReadRuns).await?;
    Ok(axum::Json(json!({"consent": engine.consents().await?})).into_response())
}

#[derive(serde::Deserialize)]
struct WebhookQuery {
    secret: Option<String>,
    token: Option<String>,
}

/// A provider's receipt or inbound message. Authenticated by the endpoint's own secret (or Twilio's
/// signature), not by an API token: providers cannot hold one.
async fn webhook(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<WebhookQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let url = engine.webhook_public_url(&name).unwrap_or_else(|| {
        let host = header("host").unwrap_or("localhost");
        let scheme = header("x-forwarded-proto").unwrap_or("http");
        format!("{scheme}://{host}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()))
    });
    let request = WebhookRequest {
        authorization: header("authorization"),
        twilio_signature: header("x-twilio-signature"),
        query_secret: query.secret.as_deref().or(query.token.as_deref()),
        url: &url,
        body: &body,
    };
    match engine.receive_webhook(&name, &request).await {
        Ok(report) => axum::Json(json!(report)).into_response(),
        Err(error @ WebhookError::NotFound { .. }) => {
            ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string()).into_response()
        }
        Err(error @ WebhookError::Unauthorized(_)) => {
            tracing::warn!(webhook = %name, %error, "webhook refused");
            ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", error.to_string()).into_response()
        }
        Err(error @ WebhookError::Invalid(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", error.to_string()).into_response()
        }
        Err(WebhookError::Engine(error)) => ApiError::from(error).into_response(),
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
        "nextAttemptAt": run.next_attempt_at,
        "interviewId": run.state.get("interview_id"),
        "trace": run.state.get("trace").cloned().unwrap_or(Value::Array(Vec::new())),
        "traceOmitted": run.state.get("trace_omitted").cloned().unwrap_or(Value::Object(Default::default())),
    })
}
