//! The readable listing `herald service show` prints.

use crate::{Constraints, ParamLocation, Property, Service, Shape};
use std::fmt::Write;

/// Each operation's inputs and outputs with their generated type names, then every generated type with
/// its fields (JSON name, API name when it differs, shape, required, constraints, first line of the
/// description).
pub fn describe(service: &Service) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "service {}", service.name);
    let _ = writeln!(out, "  named credential: {}", service.named_credential);
    if !service.servers.is_empty() {
        let _ = writeln!(out, "  servers:");
        for server in &service.servers {
            let chosen =
                if service.server.as_deref() == Some(server.url.as_str()) { "  [chosen]" } else { "" };
            match &server.description {
                Some(d) => {
                    let _ = writeln!(out, "    {}  ({}){chosen}", server.url, first_line(d));
                }
                None => {
                    let _ = writeln!(out, "    {}{chosen}", server.url);
                }
            }
        }
    }
    for operation in service.operations.values() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "action {}.{}: {} {}",
            service.name,
            operation.name,
            operation.method.as_str(),
            operation.path
        );
        if let Some(id) = &operation.operation_id
            && id != &operation.name
        {
            let _ = writeln!(out, "  operationId: {id}");
        }
        if operation.label != operation.name {
            let _ = writeln!(out, "  label: {}", first_line(&operation.label));
        }
        let _ = writeln!(out, "  inputs:");
        if operation.parameters.is_empty() && operation.body.is_none() {
            let _ = writeln!(out, "    (none)");
        }
        for parameter in &operation.parameters {
            let location = match parameter.location {
                ParamLocation::Path => "path",
                ParamLocation::Query => "query",
                ParamLocation::Header => "header",
            };
            let _ = writeln!(
                out,
                "    {} ({location}): {}{}{}",
                parameter.name,
                parameter.shape.describe(),
                if parameter.required { ", required" } else { "" },
                constraint_text(&parameter.constraints),
            );
        }
        if let Some(body) = &operation.body {
            let _ = writeln!(
                out,
                "    {} ({}): {}{}",
                body.name,
                body.content_type,
                body.shape.describe(),
                if body.required { ", required" } else { "" }
            );
        }
        let _ = writeln!(out, "  outputs:");
        let _ = writeln!(out, "    responseCode: Integer");
        for response in &operation.responses {
            let shape = response.shape.as_ref().map_or_else(|| "(no body)".to_string(), Shape::describe);
            let _ = writeln!(out, "    {}: {shape}", response.status);
        }
    }
    if !service.types.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "types:");
    }
    for object in service.types.values() {
        let _ = writeln!(out, "  {}", object.name);
        if !object.alternatives.is_empty() {
            let _ = writeln!(out, "    (one of: {})", object.alternatives.join(" | "));
        }
        if object.properties.is_empty() {
            let _ = writeln!(out, "    (no fields)");
        }
        for (name, property) in &object.properties {
            let _ = writeln!(out, "    {}", property_line(name, property));
        }
        if let Some(extra) = &object.additional_properties {
            let _ = writeln!(out, "    (any other key): {}", extra.describe());
        }
    }
    out
}

fn property_line(name: &str, property: &Property) -> String {
    let mut line = name.to_string();
    if property.api_name != name {
        let _ = write!(line, " [{}]", property.api_name);
    }
    let _ = write!(line, ": {}", property.shape.describe());
    if property.required {
        line.push_str(", required");
    }
    line.push_str(&constraint_text(&property.constraints));
    if let Some(description) = &property.description {
        let _ = write!(line, "  -- {}", first_line(description));
    }
    line
}

fn constraint_text(constraints: &Constraints) -> String {
    let mut parts = Vec::new();
    if !constraints.enum_values.is_empty() {
        parts.push(format!("one of {}", constraints.enum_values.join("|")));
    }
    if let Some(pattern) = &constraints.pattern {
        parts.push(format!("pattern {pattern}"));
    }
    match (constraints.min_length, constraints.max_length) {
        (Some(min), Some(max)) => parts.push(format!("length {min}..{max}")),
        (Some(min), None) => parts.push(format!("length >= {min}")),
        (None, Some(max)) => parts.push(format!("length <= {max}")),
        (None, None) => {}
    }
    match (constraints.min_items, constraints.max_items) {
        (Some(min), Some(max)) => parts.push(format!("items {min}..{max}")),
        (Some(min), None) => parts.push(format!("items >= {min}")),
        (None, Some(max)) => parts.push(format!("items <= {max}")),
        (None, None) => {}
    }
    match (&constraints.minimum, &constraints.maximum) {
        (Some(min), Some(max)) => parts.push(format!("range {min}..{max}")),
        (Some(min), None) => parts.push(format!(">= {min}")),
        (None, Some(max)) => parts.push(format!("<= {max}")),
        (None, None) => {}
    }
    if let Some(format) = &constraints.format {
        parts.push(format!("format {format}"));
    }
    if let Some(default) = &constraints.default {
        parts.push(format!("default {default}"));
    }
    if constraints.nullable {
        parts.push("nullable".into());
    }
    if parts.is_empty() { String::new() } else { format!(", {}", parts.join(", ")) }
}

fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.chars().count() > 80 {
        format!("{}...", line.chars().take(77).collect::<String>())
    } else {
        line.into()
    }
}
