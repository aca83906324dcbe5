//! Requests checked against the operation's JSON Schema before anything is sent.

use crate::Service;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError};
use serde::Serialize;
use serde_json::Value;

/// One reason a request body does not match the spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestProblem {
    /// Where, as a flow writes it: `content.template.components[1].subType` (empty: the whole body).
    pub path: String,
    /// Where, as a JSON pointer into the body: `/content/template/components/1/subType`.
    pub pointer: String,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for RequestProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.path.is_empty() { "body" } else { self.path.as_str() };
        write!(f, "`{place}`: {}; {}", self.message, self.fix)
    }
}

/// Every problem of `body` against the request schema of `operation` (empty: valid, or nothing to
/// check because the operation came from a sample rather than a spec). The schema is compiled once per
/// operation and kept in [`crate::Operation::validator`].
pub fn validate_request(service: &Service, operation: &str, body: &Value) -> Vec<RequestProblem> {
    let Some(found) = service.operations.get(operation) else {
        let known: Vec<&str> = service.operations.keys().map(String::as_str).collect();
        return vec![RequestProblem {
            path: String::new(),
            pointer: String::new(),
            message: format!("service `{}` has no operation `{operation}`", service.name),
            fix: format!("use one of: {}", known.join(", ")),
        }];
    };
    let Some(schema) = &found.request_schema else { return Vec::new() };
    match found.validator.get_or_compile(schema) {
        Ok(validator) => validator.iter_errors(body).map(|error| problem(&error)).collect(),
        Err(message) => vec![RequestProblem {
            path: String::new(),
            pointer: String::new(),
            message: format!("the spec's request schema for `{operation}` cannot be compiled: {message}"),
            fix: "correct that schema in the spec file and import it again".into(),
        }],
    }
}

pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| error.to_string())
}

fn problem(error: &ValidationError<'_>) -> RequestProblem {
    let pointer = error.instance_path().as_str().to_string();
    let mut path = dotted(&pointer);
    let instance: &Value = error.instance();
    let shown = short(instance);
    let (message, fix) = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_string);
            path = join(&path, &name);
            (format!("required field `{name}` is missing"), format!("set `{name}`"))
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> =
                options.as_array().map(|o| o.iter().map(short).collect()).unwrap_or_default();
            let case_twin = options.as_array().and_then(|o| {
                o.iter()
                    .filter_map(Value::as_str)
                    .find(|a| instance.as_str().is_some_and(|i| a.eq_ignore_ascii_case(i)))
            });
            let message = match case_twin {
                Some(twin) => {
                    format!("{shown} is not allowed: the spec's value is \"{twin}\" (the case differs)")
                }
                None => format!("{shown} is not one of the allowed values"),
            };
            (message, format!("use one of: {}", allowed.join(", ")))
        }
        ValidationErrorKind::Constant { expected_value } => {
            (format!("{shown} is not the required value"), format!("use {}", short(expected_value)))
        }
        ValidationErrorKind::Pattern { pattern } => {
            (format!("{shown} does not match the pattern `{pattern}`"), pattern_fix(pattern))
        }
        ValidationErrorKind::MaxLength { limit } => (
            format!("the text is {} characters long, more than the {limit} allowed", char_count(instance)),
            format!("shorten it to at most {limit} characters"),
        ),
        ValidationErrorKind::MinLength { limit } => (
            format!("the text is {} characters long, fewer than the {limit} required", char_count(instance)),
            format!("give at least {limit} characters"),
        ),
        ValidationErrorKind::MaxItems { limit } => (
            format!("the list has more than {limit} items"),
            format!("send at most {limit} items (split the batch)"),
        ),
        ValidationErrorKind::MinItems { limit } => {
            (format!("the list has fewer than {limit} items"), format!("add at least {limit} item(s)"))
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            (format!("{shown} is below the minimum {limit}"), format!("use a value of at least {limit}"))
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            (format!("{shown} is above the maximum {limit}"), format!("use a value of at most {limit}"))
        }
        ValidationErrorKind::Type { kind } => {
            let expected = format!("{kind:?}")
                .replace("Single(", "")
                .replace("Multiple(", "")
                .replace(')', "")
                .to_lowercase();
            (
                format!("{shown} is a {}, the spec expects {expected}", json_kind(instance)),
                format!("give a value of type {expected}"),
            )
        }
        ValidationErrorKind::Format { format } => {
            (format!("{shown} is not a valid {format}"), format_fix(format))
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => (
            format!("field(s) {} are not in the spec", unexpected.join(", ")),
            "remove them or check their spelling".into(),
        ),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => (
            "the value matches none of the alternatives the spec allows".into(),
            "shape it like one of the alternatives (see `herald service show`)".into(),
        ),
        ValidationErrorKind::OneOfMultipleValid { .. } => (
            "the value matches more than one alternative of a oneOf".into(),
            "remove the fields that make it ambiguous".into(),
        ),
        ValidationErrorKind::UniqueItems => {
            ("the list holds duplicates".into(), "remove the repeated items".into())
        }
        _ => (error.to_string(), "change the value so that it satisfies the spec".into()),
    };
    RequestProblem { path, pointer, message, fix }
}

fn pattern_fix(pattern: &str) -> String {
    if pattern.contains("[1-9]") && pattern.contains("[0-9]") && pattern.contains('+') {
        format!(
            "write the number in E.164 international form, e.g. +6591234567 (pattern `{pattern}`); no spaces, dashes or leading 0"
        )
    } else {
        format!("give a value matching `{pattern}`")
    }
}

fn format_fix(format: &str) -> String {
    match format {
        "date-time" => "write an ISO 8601 date-time with an offset, e.g. 2025-01-31T09:30:00Z".into(),
        "date" => "write an ISO 8601 date, e.g. 2025-01-31".into(),
        "uri" | "url" => "write an absolute URL, e.g. https://example.com/receipts".into(),
        "uuid" => "write a UUID, e.g. 123e4567-e89b-12d3-a456-426614174000".into(),
        "email" => "write an email address, e.g. name@example.com".into(),
        other => format!("write a valid {other}"),
    }
}

/// `/content/template/components/1/subType` -> `content.template.components[1].subType`.
pub(crate) fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn char_count(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}...", text.chars().take(57).collect::<String>()) } else { text }
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
