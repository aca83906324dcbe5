//! Records, shaped like Salesforce's sObject REST routes: create, read, update, and the runs a
//! record started.

use crate::auth::Caller;
use crate::error::{ApiError, json_object};
use crate::runs::run_json;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_engine::{Engine, run_user};
use serde_json::{Map, Value, json};

/// `POST /api/v1/records/{object}`: 201 `{"id", "success", "errors", "runs"}`.
pub(crate) async fn create(
    State(engine): State<Engine>,
    caller: Caller,
    Path(object): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = json_object(&body)?;
    let write = engine.create_record(&object, &input, &run_user(&caller.user)).await?;
    Ok((StatusCode::CREATED, Json(write_answer(write))).into_response())
}

/// `PATCH /api/v1/records/{object}/{id}`: 200 `{"id", "success", "errors", "runs"}`.
pub(crate) async fn update(
    State(engine): State<Engine>,
    caller: Caller,
    Path((object, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input = json_object(&body)?;
    let write = engine.update_record(&object, &id, &input, &run_user(&caller.user)).await?;
    Ok(Json(write_answer(write)))
}

/// `GET /api/v1/records/{object}/{id}`: the fields, after Salesforce's `attributes`.
pub(crate) async fn get(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = engine.get_record(&object, &id).await?;
    let mut body = Map::new();
    body.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/api/v1/records/{object}/{id}")}),
    );
    body.extend(record.data);
    Ok(Json(Value::Object(body)))
}

/// `GET /api/v1/records/{object}/{id}/runs`: `{"runs": [run]}`, 404 for an unknown record.
pub(crate) async fn runs(
    State(engine): State<Engine>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    engine.get_record(&object, &id).await?;
    let runs: Vec<Value> = engine.runs_for_record(&id).await?.iter().map(run_json).collect();
    Ok(Json(json!({"runs": runs})))
}

/// `{"id", "success", "errors", "runs"}`, and `scheduledRuns` (the scheduled paths started, `waiting`)
/// when there are any.
fn write_answer(write: herald_engine::RecordWrite) -> Value {
    let mut answer = json!({"id": write.id, "success": true, "errors": [], "runs": write.runs});
    if !write.scheduled.is_empty() {
        answer["scheduledRuns"] = json!(write.scheduled);
    }
    answer
}
