//! Setting one secret parameter of an external credential's principal. The value is the raw request
//! body; it goes to the vault and is never returned, logged or put in an error.

use crate::error::{ApiError, Query};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_codes as codes;
use herald_engine::{Engine, EngineError};
use zeroize::Zeroizing;

#[derive(serde::Deserialize)]
pub(crate) struct CredentialQuery {
    /// The user a per-user principal's value belongs to.
    user: Option<String>,
}

/// `PUT /api/v1/credentials/{external}/{principal}/{parameter}[?user=NAME]`: 204.
pub(crate) async fn set(
    State(engine): State<Engine>,
    Path((external, principal, parameter)): Path<(String, String, String)>,
    Query(query): Query<CredentialQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let value = Zeroizing::new(body.to_vec());
    if value.is_empty() {
        return Err(ApiError::new(
            codes::api::REQUIRED_FIELD_MISSING,
            "the request body must hold the value".into(),
        ));
    }
    match engine.set_secret(&external, &principal, &parameter, &value, query.user.as_deref()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(
            error @ (EngineError::UnknownPrincipal { .. }
            | EngineError::UnknownParameter { .. }
            | EngineError::UnknownUser { .. }
            | EngineError::UserRequired { .. }
            | EngineError::UserNotAllowed { .. }),
        ) => Err(ApiError::invalid_field(error.to_string())),
        Err(error) => Err(error.into()),
    }
}
