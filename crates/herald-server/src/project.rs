//! `POST /api/v1/project/reload`: the server loads its project folder again and, when it loads,
//! runs new runs on the new version while the runs already started finish on theirs
//! (docs/architecture.md, "Project versions"). Scope `manage_flows`: changing what flows run is a
//! flow administrator's act, like activating a flow version in Salesforce.

use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use herald_codes as codes;
use herald_engine::{Engine, ReloadError};
use serde_json::{Value, json};

pub(crate) async fn reload(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    match engine.reload().await {
        Ok(reloaded) => {
            let version = &reloaded.version;
            Ok(Json(json!({
                "version": version.seq,
                "hash": version.hash,
                "changed": reloaded.changed,
                "flows": version.project.flows.keys().collect::<Vec<_>>(),
                "warnings": reloaded.warnings,
            })))
        }
        Err(ReloadError::Invalid(diagnostics)) => {
            tracing::warn!(version = %engine.version().describe(), "reload refused:\n{diagnostics}");
            Err(ApiError::new(codes::api::INVALID_PROJECT, diagnostics))
        }
        Err(ReloadError::NoFolder) => Err(ApiError::new(
            codes::api::INVALID_PROJECT,
            "this server was started without a project folder to reload from".into(),
        )),
        Err(ReloadError::Engine(error)) => Err(error.into()),
    }
}
