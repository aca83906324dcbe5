//! Types inferred from sample JSON, as Flow's "Create HTTP Callout" infers them.

use crate::naming::{registration_type_name, sanitize_identifier};
use crate::{
    Body, BodyEncoding, Constraints, Method, ObjectType, Operation, ParamLocation, Parameter, Property,
    Response, Service, Shape, ValidatorCache,
};
use indexmap::IndexMap;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferError {
    #[error("path `{path}` must start with '/'")]
    PathNotAbsolute { path: String },
    #[error("path `{path}` has an unclosed '{{' in a path parameter")]
    UnclosedPathParameter { path: String },
    #[error("the sample {which} is a JSON {found}; a callout body sample must be a JSON object")]
    SampleNotObject { which: &'static str, found: &'static str },
    #[error("the sample {which} nests deeper than {max} levels")]
    TooDeep { which: &'static str, max: usize },
}

const MAX_DEPTH: usize = 32;

/// Adds one HTTP-callout action to `service`: path parameters from `{name}` segments, the body type
/// from `sample_request`, the `200` response type from `sample_response`.
pub fn infer_callout_action(
    service: &mut Service,
    name: &str,
    label: &str,
    method: Method,
    path: &str,
    sample_request: Option<&Value>,
    sample_response: Option<&Value>,
) -> Result<(), InferError> {
    if !path.starts_with('/') {
        return Err(InferError::PathNotAbsolute { path: path.into() });
    }
    let mut parameters = path_parameters(path)?;
    parameters.dedup_by(|a, b| a.name == b.name);

    let registration = service.name.clone();
    let action_part = sanitize_identifier(name);
    let body = match sample_request {
        None => None,
        Some(sample) => {
            let root = registration_type_name(&registration, &[&action_part, "IN", "body"]);
            let shape = shape_of(sample, &root, &mut service.types, "request", 0)?;
            if !matches!(shape, Shape::Object { .. }) {
                return Err(InferError::SampleNotObject { which: "request", found: json_kind(sample) });
            }
            Some(Body {
                name: "body".into(),
                shape,
                required: true,
                content_type: "application/json".into(),
                encoding: BodyEncoding::Json,
            })
        }
    };
    let mut responses = Vec::new();
    if let Some(sample) = sample_response {
        let root = registration_type_name(&registration, &[&action_part, "OUT", "200"]);
        let shape = shape_of(sample, &root, &mut service.types, "response", 0)?;
        responses.push(Response { status: "200".into(), shape: Some(shape), description: None });
    }
    responses.push(Response { status: "default".into(), shape: None, description: None });

    service.operations.insert(
        name.to_string(),
        Operation {
            name: name.to_string(),
            label: label.to_string(),
            method,
            path: path.to_string(),
            parameters,
            body,
            responses,
            operation_id: None,
            description: None,
            request_schema: None,
            validator: ValidatorCache::default(),
        },
    );
    Ok(())
}

fn path_parameters(path: &str) -> Result<Vec<Parameter>, InferError> {
    let mut parameters = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(InferError::UnclosedPathParameter { path: path.into() });
        };
        parameters.push(Parameter {
            name: after[..close].to_string(),
            location: ParamLocation::Path,
            shape: Shape::Text,
            required: true,
            description: None,
            constraints: Constraints::default(),
        });
        rest = &after[close + 1..];
    }
    Ok(parameters)
}

fn shape_of(
    sample: &Value,
    type_name: &str,
    types: &mut IndexMap<String, ObjectType>,
    which: &'static str,
    depth: usize,
) -> Result<Shape, InferError> {
    if depth > MAX_DEPTH {
        return Err(InferError::TooDeep { which, max: MAX_DEPTH });
    }
    Ok(match sample {
        Value::Null => Shape::Any,
        Value::Bool(_) => Shape::Boolean,
        Value::Number(number) if number.is_i64() || number.is_u64() => Shape::Integer,
        Value::Number(_) => Shape::Number,
        Value::String(_) => Shape::Text,
        Value::Array(items) => {
            let item = match items.first() {
                Some(first) => shape_of(first, type_name, types, which, depth + 1)?,
                None => Shape::Any,
            };
            Shape::List { item: Box::new(item) }
        }
        Value::Object(fields) => {
            let mut properties = IndexMap::new();
            for (field, value) in fields {
                let child = format!("{type_name}_{}", sanitize_identifier(field));
                let shape = shape_of(value, &child, types, which, depth + 1)?;
                properties.insert(field.clone(), Property::new(field, shape, false));
            }
            types.insert(type_name.to_string(), ObjectType::new(type_name, properties));
            Shape::Object { type_name: type_name.to_string() }
        }
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn infers_the_kixie_body_from_the_seed_sample() {
        let mut service = Service::new("KixieService", "Kixie_Endpoint");
        let request = json!({"businessid": "string", "apikey": "string", "target": "string", "eventname": "string", "message": "string"});
        infer_callout_action(
            &mut service,
            "Send_SMS",
            "Send SMS",
            Method::Post,
            "/app/event",
            Some(&request),
            Some(&json!({"success": true})),
        )
        .unwrap();
        let operation = &service.operations["Send_SMS"];
        let body = service.body_properties(operation).unwrap();
        // `_` is the hierarchy separator, so the action's own underscore is escaped (salesforce.md).
        assert_eq!(body.name, "ExternalService__KixieService_Sendx5fSMS_IN_body");
        assert_eq!(
            body.properties.keys().collect::<Vec<_>>(),
            ["businessid", "apikey", "target", "eventname", "message"]
        );
        assert!(body.properties.values().all(|p| p.shape == Shape::Text));
        let ok = service.types.get("ExternalService__KixieService_Sendx5fSMS_OUT_200").unwrap();
        assert_eq!(ok.properties["success"].shape, Shape::Boolean);
    }

    #[test]
    fn nested_objects_and_lists_get_their_own_types() {
        let mut service = Service::new("Svc", "NC");
        let request = json!({"user": {"msisdn": "+1"}, "tags": ["a"], "n": 1.5, "none": null});
        infer_callout_action(&mut service, "Go", "Go", Method::Post, "/x/{id}", Some(&request), None)
            .unwrap();
        assert!(service.types.contains_key("ExternalService__Svc_Go_IN_body_user"));
        let body = service.body_properties(&service.operations["Go"]).unwrap();
        assert_eq!(body.properties["tags"].shape, Shape::List { item: Box::new(Shape::Text) });
        assert_eq!(body.properties["n"].shape, Shape::Number);
        assert_eq!(body.properties["none"].shape, Shape::Any);
        assert_eq!(service.operations["Go"].parameters[0].name, "id");
    }

    #[test]
    fn refuses_bad_paths_and_scalar_bodies() {
        let mut service = Service::new("Svc", "NC");
        let err = infer_callout_action(&mut service, "A", "A", Method::Post, "app", None, None).unwrap_err();
        assert!(matches!(err, InferError::PathNotAbsolute { .. }));
        let err =
            infer_callout_action(&mut service, "A", "A", Method::Post, "/a/{x", None, None).unwrap_err();
        assert!(matches!(err, InferError::UnclosedPathParameter { .. }));
        let err =
            infer_callout_action(&mut service, "A", "A", Method::Post, "/a", Some(&json!("text")), None)
                .unwrap_err();
        assert_eq!(err, InferError::SampleNotObject { which: "request", found: "string" });
    }

    #[test]
    fn deep_samples_are_refused_not_overflowed() {
        let mut sample = json!("leaf");
        for _ in 0..100 {
            sample = json!({ "a": sample });
        }
        let mut service = Service::new("Svc", "NC");
        let err = infer_callout_action(&mut service, "A", "A", Method::Post, "/a", Some(&sample), None)
            .unwrap_err();
        assert!(matches!(err, InferError::TooDeep { .. }));
    }
}
