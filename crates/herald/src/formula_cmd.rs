//! `herald formula eval`: one formula against a record and variables given as JSON.

use herald_expr::{EvalContext, Formula, RefId, Resolved, Resolver, Scope, Type, Value};
use serde_json::{Map, Value as Json};
use std::cell::RefCell;
use std::process::ExitCode;

/// References resolve to the record's fields (`$Record.X`) and to `--var` values, typed from their JSON.
struct JsonResolver {
    record: Map<String, Json>,
    vars: Map<String, Json>,
    slots: RefCell<Vec<Value>>,
}

impl Resolver for JsonResolver {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        let found = match path {
            [head, field] if head.eq_ignore_ascii_case("$Record") => {
                lookup(&self.record, field).ok_or_else(|| format!("--record has no field `{field}`"))?
            }
            [name, rest @ ..] if !name.starts_with('$') => {
                let mut value = lookup(&self.vars, name)
                    .ok_or_else(|| format!("unknown variable `{name}`; pass it with --var {name}=JSON"))?;
                for segment in rest {
                    value = value
                        .get(*segment)
                        .ok_or_else(|| format!("`{}` has no field `{segment}`", path.join(".")))?;
                }
                value
            }
            _ => {
                return Err(format!(
                    "`{}` is not available here; use $Record.Field or a --var",
                    path.join(".")
                ));
            }
        };
        let (value, ty) = typed(found);
        let mut slots = self.slots.borrow_mut();
        slots.push(value);
        Ok(Resolved { id: RefId((slots.len() - 1) as u32), ty })
    }
}

fn lookup<'a>(map: &'a Map<String, Json>, name: &str) -> Option<&'a Json> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn typed(json: &Json) -> (Value, Type) {
    match json {
        Json::Bool(b) => (Value::Boolean(*b), Type::Boolean),
        Json::Number(_) => match Value::from_json(json, Type::Number) {
            Ok(value) => (value, Type::Number),
            Err(_) => (Value::Null, Type::Number),
        },
        Json::String(s) => (Value::text(s.as_str()), Type::Text),
        _ => (Value::Null, Type::Text),
    }
}

struct Slots(Vec<Value>);

impl Scope for Slots {
    fn value(&self, id: RefId) -> Value {
        self.0.get(id.0 as usize).cloned().unwrap_or(Value::Null)
    }
}

fn parse_object(text: Option<&str>, what: &str) -> Result<Map<String, Json>, String> {
    match text {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(Json::Object(map)) => Ok(map),
            Ok(_) => Err(format!("{what} must be a JSON object")),
            Err(error) => Err(format!("{what} is not valid JSON: {error}")),
        },
    }
}

pub fn eval(expression: &str, record: Option<&str>, vars: &[String]) -> ExitCode {
    match evaluate(expression, record, vars) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn evaluate(expression: &str, record: Option<&str>, vars: &[String]) -> Result<String, String> {
    let record = parse_object(record, "--record")?;
    let mut variables = Map::new();
    for var in vars {
        let Some((name, json)) = var.split_once('=') else {
            return Err(format!("--var {var}: write NAME=JSON, e.g. --var count=3"));
        };
        let value = serde_json::from_str(json).unwrap_or_else(|_| Json::String(json.to_string()));
        variables.insert(name.to_string(), value);
    }
    let resolver = JsonResolver { record, vars: variables, slots: RefCell::new(Vec::new()) };
    let formula = Formula::compile(expression, &resolver)
        .map_err(|error| format!("error[{}]: {error}\n{}", error.code, error.caret()))?;
    let scope = Slots(resolver.slots.into_inner());
    let value =
        formula.eval(&scope, &EvalContext::new(chrono::Utc::now())).map_err(|e| format!("error: {e}"))?;
    Ok(json_line(&value))
}

/// `{"type": ..., "value": ...}` with a Number written exactly as held (no binary floating point).
fn json_line(value: &Value) -> String {
    let rendered = match value {
        Value::Number(number) => number.normalize().to_string(),
        other => other.to_json().to_string(),
    };
    format!("{{\"type\":\"{}\",\"value\":{rendered}}}", value.type_of())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_against_a_record_and_variables() {
        let line = evaluate(
            "IF(ISBLANK({!$Record.MobilePhone}), {!$Record.Phone}, {!$Record.MobilePhone})",
            Some(r#"{"Phone": "+14155550100", "MobilePhone": ""}"#),
            &[],
        )
        .unwrap();
        assert_eq!(line, r#"{"type":"Text","value":"+14155550100"}"#);
        assert_eq!(evaluate("0.1 + 0.2", None, &[]).unwrap(), r#"{"type":"Number","value":0.3}"#);
        assert_eq!(evaluate("n * 2", None, &["n=21".into()]).unwrap(), r#"{"type":"Number","value":42}"#);
        assert_eq!(
            evaluate("DATE(2024,2,29) + 365", None, &[]).unwrap(),
            r#"{"type":"Date","value":"2025-02-28"}"#
        );
    }

    #[test]
    fn reports_errors_with_a_caret() {
        let error = evaluate("LENGHT('x')", None, &[]).unwrap_err();
        assert!(error.contains("LEN"), "{error}");
        assert!(error.contains('^'), "{error}");
    }
}
