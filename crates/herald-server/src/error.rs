//! The one error shape of the API, Salesforce's `[{errorCode, message, fields}]`, and the extractors
//! whose own refusals would otherwise be axum's plain text: a query string that does not parse and a
//! body that is not a JSON object. Keeping every refusal in one shape lets a client read any error
//! the same way (docs/errors.md, "Record API errors").

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_codes::{self as codes, api::ApiCode};
use herald_engine::{EngineError, FieldProblem};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// An API error: a status and Salesforce-style error entries.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) errors: Vec<FieldProblem>,
    /// Seconds for a `Retry-After` header (a busy server).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// An answer of one entry; its HTTP status is the one declared with `code`.
    pub(crate) fn new(code: ApiCode, message: String) -> ApiError {
        ApiError {
            status: status_of(code),
            errors: vec![FieldProblem { error_code: code.id(), message, fields: Vec::new() }],
            retry_after: None,
        }
    }

    pub(crate) fn not_found(message: String) -> ApiError {
        ApiError::new(codes::api::NOT_FOUND, message)
    }

    pub(crate) fn invalid_field(message: String) -> ApiError {
        ApiError::new(codes::api::INVALID_FIELD, message)
    }

    /// A 500 whose details stay in the log: the answer says only where to look.
    pub(crate) fn server_error(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(
            codes::api::SERVER_ERROR,
            "herald could not complete the request; see the server log".into(),
        )
    }
}

/// The HTTP status declared with `code`; declarations hold only valid error statuses (tested in
/// herald-codes), so the fallback is never taken.
fn status_of(code: ApiCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(FieldProblem::bounded(self.errors))).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
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
                ..ApiError::new(codes::api::SERVER_UNAVAILABLE, error.to_string())
            },
            EngineError::UnknownObject { .. }
            | EngineError::NotFound { .. }
            | EngineError::RunNotFound(_)
            | EngineError::UnknownFlow { .. } => ApiError::not_found(error.to_string()),
            EngineError::FlowStart(_) => ApiError::new(codes::api::INVALID_INPUT, error.to_string()),
            EngineError::NotRetryable { .. } | EngineError::NotWaiting { .. } => {
                ApiError::new(codes::api::INVALID_STATUS, error.to_string())
            }
            other => ApiError::server_error(&other),
        }
    }
}

/// `axum::extract::Query`, refusing a query string that does not fit (`?limit=ten`) with 400
/// `INVALID_FIELD` in the API's shape instead of axum's plain text.
pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::invalid_field(rejection.body_text())),
        }
    }
}

/// The body as a JSON object of field values, or 400 `JSON_PARSER_ERROR`.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            codes::api::JSON_PARSER_ERROR,
            "the body must be a JSON object of field values".into(),
        )),
        Err(error) => {
            Err(ApiError::new(codes::api::JSON_PARSER_ERROR, format!("the body is not valid JSON: {error}")))
        }
    }
}
