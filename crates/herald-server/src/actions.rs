//! Autolaunched flows as invocable actions, in the shape of Salesforce's REST route
//! `/services/data/vXX.X/actions/custom/flow/...`, so a client written for Salesforce's "Run Flows"
//! calls herald unchanged (docs/project-format.md, "Invoking an autolaunched flow over HTTP").
//! Interviews run in memory while the request waits; they are not stored as runs, except one that
//! reaches a Wait element: it is stored as a `waiting` run and answered as paused, with its run id.

use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use herald_codes as codes;
use herald_engine::{Engine, run_user};
use herald_store::RunStatus;
use serde_json::{Map, Value, json};

/// The most interviews one request may start.
pub(crate) const MAX_INTERVIEWS: usize = 200;

/// `GET /services/data/v{version}/actions/custom/flow`: the active autolaunched flows.
pub(crate) async fn list(
    State(engine): State<Engine>,
    Path(version): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_version(&version)?;
    let actions: Vec<Value> = engine
        .project()
        .flows
        .values()
        .filter(|flow| flow.is_autolaunched() && flow.active)
        .map(|flow| {
            let params = |vars: Vec<(&str, String)>| -> Vec<Value> {
                vars.into_iter()
                    .map(|(name, ty)| json!({"name": name, "type": ty, "required": false}))
                    .collect()
            };
            json!({
                "name": flow.name,
                "label": flow.label,
                "type": "FLOW",
                "inputs": params(flow.input_variables().collect()),
                "outputs": params(flow.output_variables().collect()),
            })
        })
        .collect();
    Ok(Json(json!({"actions": actions})))
}

/// `POST /services/data/v{version}/actions/custom/flow/{flow}` with `{"inputs": [{...}]}`: 200 and
/// one result per element of `inputs`, in order.
pub(crate) async fn invoke(
    State(engine): State<Engine>,
    caller: Caller,
    Path((version, flow)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_version(&version)?;
    let inputs = parse_inputs(&body)?;
    let interviews = engine.invoke_autolaunched(&flow, &inputs, &run_user(&caller.user)).await?;
    let results: Vec<Value> = interviews
        .into_iter()
        .map(|interview| {
            if let (RunStatus::Waiting, Some(run_id)) = (interview.status, &interview.run_id) {
                // Salesforce answers a paused interview as a success with status Paused; herald adds
                // the stored run's id, to follow it on /api/v1/runs/{id}.
                let mut outputs = interview.outputs;
                outputs.insert("Flow__InterviewStatus".into(), json!("Paused"));
                return json!({"actionName": flow, "errors": null, "isSuccess": true, "outputValues": outputs, "runId": run_id});
            }
            let finished = interview.status == RunStatus::Finished;
            let mut outputs = interview.outputs;
            let status = if finished { "Finished" } else { "Error" };
            outputs.insert("Flow__InterviewStatus".into(), json!(status));
            let errors = (!finished).then(|| {
                let message = interview
                    .fault
                    .unwrap_or_else(|| format!("the interview ended {}", interview.status.as_str()));
                json!([{"statusCode": FLOW_FAILED, "message": message, "fields": []}])
            });
            json!({"actionName": flow, "errors": errors, "isSuccess": finished, "outputValues": outputs})
        })
        .collect();
    Ok(Json(Value::Array(results)))
}

/// The `statusCode` of an interview that did not finish (it failed, or its outcome is unknown).
const FLOW_FAILED: &str = "FLOW_FAILED";

/// `v` and a version like `60.0`, as Salesforce's paths carry it; anything else is no route.
fn check_version(version: &str) -> Result<(), ApiError> {
    let valid = version.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        [major, minor].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no API version `{version}`; use a version such as v60.0")))
    }
}

/// The body `{"inputs": [{...}, ...]}`: one JSON object of input values per interview.
fn parse_inputs(body: &[u8]) -> Result<Vec<Map<String, Value>>, ApiError> {
    let shape = "the body must be {\"inputs\": [{...}, ...]}, one object of input values per interview";
    let parser_error = |message: String| ApiError::new(codes::api::JSON_PARSER_ERROR, message);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| parser_error(format!("the body is not valid JSON: {e}; {shape}")))?;
    let Some(Value::Array(items)) = value.get("inputs") else {
        return Err(parser_error(shape.into()));
    };
    if items.is_empty() || items.len() > MAX_INTERVIEWS {
        return Err(ApiError::new(
            codes::api::INVALID_INPUT,
            format!("`inputs` holds {} elements; send 1 to {MAX_INTERVIEWS}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(parser_error(format!("inputs[{index}] is not an object; {shape}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v_and_two_dotted_numbers_are_a_version() {
        for good in ["v60.0", "v1.10"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["60.0", "v60", "v60.", "v.0", "v60.0.1", "vx.0", "V60.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
