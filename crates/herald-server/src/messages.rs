//! The message ledger, the webhook receipts kept beside it, and consent (docs/delivery.md).

use crate::error::{ApiError, Query};
use axum::Json;
use axum::extract::{Path, State};
use herald_engine::Engine;
use herald_store::MessageFilter;
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageQuery {
    run_id: Option<String>,
    destination: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/messages?runId=&destination=&status=&limit=`: `{"messages": [message]}`.
pub(crate) async fn list(
    State(engine): State<Engine>,
    Query(query): Query<MessageQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = MessageFilter {
        run_id: query.run_id,
        destination: query.destination,
        status: query.status,
        limit: crate::limit(query.limit),
        ..MessageFilter::default()
    };
    Ok(Json(json!({"messages": engine.messages(&filter).await?})))
}

/// `GET /api/v1/messages/{id}`: one message.
pub(crate) async fn get(
    State(engine): State<Engine>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match engine.message(&id).await? {
        Some(message) => Ok(Json(json!(message))),
        None => Err(ApiError::not_found(format!("no message with id {id}"))),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ReceiptQuery {
    unmatched: Option<bool>,
    limit: Option<i64>,
}

/// `GET /api/v1/receipts?unmatched=true&limit=`: `{"receipts": [receipt]}`.
pub(crate) async fn receipts(
    State(engine): State<Engine>,
    Query(query): Query<ReceiptQuery>,
) -> Result<Json<Value>, ApiError> {
    let receipts = engine.receipts(query.unmatched.unwrap_or(false), crate::limit(query.limit)).await?;
    Ok(Json(json!({"receipts": receipts})))
}

/// `GET /api/v1/consent`: `{"consent": [row]}`.
pub(crate) async fn consent(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"consent": engine.consents().await?})))
}
