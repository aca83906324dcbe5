//! Record validation: every field a client sends is checked against the object's declaration, and
//! every problem names the field.
//!
//! An answer lists at most [`FieldProblem::MAX_LISTED`] problems and counts the rest, and quotes at most
//! [`EXCERPT_CHARS`] characters of any name or value the client sent: a 1.3 MB body of 100,000 unknown
//! fields once drew a 9.3 MB answer. Problems past the limit are counted without being built.

use herald_codes::{self as codes, api::ApiCode};
use herald_project::{FieldDef, FieldType, ObjectDef, STANDARD_FIELDS, did_you_mean};
use serde::Serialize;
use serde_json::{Map, Value};

/// One problem with one field, in the shape Salesforce's REST API answers (`errorCode`, `fields`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    #[serde(rename = "errorCode")]
    pub error_code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

/// The most characters of a field name or value quoted back in a problem.
pub const EXCERPT_CHARS: usize = 80;

impl FieldProblem {
    /// The most problems an answer lists; one more entry, [`MORE_ERRORS`](codes::api::MORE_ERRORS), counts the rest.
    pub const MAX_LISTED: usize = 25;

    fn new(code: ApiCode, field: &str, message: String) -> FieldProblem {
        FieldProblem { error_code: code.id(), message, fields: vec![excerpt(field)] }
    }

    /// The entry that stands for `count` problems not listed.
    fn more(count: usize) -> FieldProblem {
        FieldProblem {
            error_code: codes::api::MORE_ERRORS.id(),
            message: format!(
                "{count} more problem{} not listed; fix the ones above and send the record again to see them",
                if count == 1 { " is" } else { "s are" }
            ),
            fields: Vec::new(),
        }
    }

    /// At most [`Self::MAX_LISTED`] problems and a [`MORE_ERRORS`](codes::api::MORE_ERRORS) entry counting the others; a list
    /// that is already that short is returned as it is.
    pub fn bounded(mut problems: Vec<FieldProblem>) -> Vec<FieldProblem> {
        if problems.len() > Self::MAX_LISTED + 1 {
            let rest = problems.len() - Self::MAX_LISTED;
            problems.truncate(Self::MAX_LISTED);
            problems.push(FieldProblem::more(rest));
        }
        problems
    }
}

/// The first [`EXCERPT_CHARS`] characters of a text the client sent, with `…` when it was longer.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The problems found so far: the first [`FieldProblem::MAX_LISTED`] built, the others only counted.
#[derive(Default)]
struct Problems {
    listed: Vec<FieldProblem>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: impl FnOnce() -> FieldProblem) {
        if self.listed.len() < FieldProblem::MAX_LISTED {
            self.listed.push(problem());
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn into_vec(mut self) -> Vec<FieldProblem> {
        if self.more > 0 {
            self.listed.push(FieldProblem::more(self.more));
        }
        self.listed
    }
}

/// What to do with a text longer than its field allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// API writes: refuse with STRING_TOO_LONG.
    Refuse,
    /// Records a flow creates: cut to the field's length (Salesforce's "allow field truncation"), so a
    /// fault path that logs a long fault message still logs it.
    Truncate,
}

/// The fields as they will be stored, and which of them were cut to their length.
#[derive(Debug)]
pub struct Validated {
    pub fields: Map<String, Value>,
    pub truncated: Vec<String>,
}

/// Checks `input` against `object` and returns the normalized fields (declared names, declared types).
/// On create, required fields must be present and not blank, and defaults are applied.
pub fn validate(
    object: &ObjectDef,
    input: &Map<String, Value>,
    creating: bool,
    truncation: Truncation,
) -> Result<Validated, Vec<FieldProblem>> {
    let mut problems = Problems::default();
    let mut fields = Map::new();
    let mut truncated = Vec::new();
    for (name, value) in input {
        if name == "attributes" {
            continue;
        }
        let Some((declared_name, def)) = object.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            if let Some((standard, _)) = STANDARD_FIELDS.iter().find(|(s, _)| s.eq_ignore_ascii_case(name)) {
                problems.push(|| {
                    FieldProblem::new(
                        codes::api::INVALID_FIELD_FOR_INSERT_UPDATE,
                        standard,
                        format!("{standard} is set by herald and cannot be written"),
                    )
                });
                continue;
            }
            problems.push(|| {
                let hint = did_you_mean(name, object.fields.keys().map(String::as_str))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                FieldProblem::new(
                    codes::api::INVALID_FIELD,
                    name,
                    format!("No such field `{}` on {}{hint}", excerpt(name), object.name),
                )
            });
            continue;
        };
        let value = match (truncation, def.length, value) {
            (Truncation::Truncate, Some(max), Value::String(text))
                if def.field_type.is_text_like() && text.chars().count() > max =>
            {
                truncated.push(declared_name.clone());
                let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
                cut.push('…');
                Value::String(cut)
            }
            _ => value.clone(),
        };
        match check_value(&object.name, declared_name, def, &value) {
            Ok(value) => {
                fields.insert(declared_name.clone(), value);
            }
            Err(problem) => problems.push(|| problem),
        }
    }
    for (name, def) in &object.fields {
        let present = fields.get(name);
        if creating
            && present.is_none()
            && let Some(default) = &def.default
        {
            fields.insert(name.clone(), default.clone());
            continue;
        }
        let missing = match present {
            None => creating,
            Some(value) => is_blank(value),
        };
        if def.required && missing {
            let verb = if creating { "is missing" } else { "cannot be blanked" };
            problems.push(|| {
                FieldProblem::new(
                    codes::api::REQUIRED_FIELD_MISSING,
                    name,
                    format!("Required field `{name}` {verb} on {}", object.name),
                )
            });
        }
    }
    if problems.is_empty() { Ok(Validated { fields, truncated }) } else { Err(problems.into_vec()) }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn check_value(object: &str, name: &str, def: &FieldDef, value: &Value) -> Result<Value, FieldProblem> {
    let wrong = |expected: &str| {
        FieldProblem::new(
            codes::api::INVALID_TYPE,
            name,
            format!(
                "{object}.{name} is a {} field and takes {expected}, not {}",
                def.field_type.name(),
                describe(value)
            ),
        )
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    match def.field_type {
        t if t.is_text_like() => {
            let Value::String(text) = value else { return Err(wrong("a string")) };
            if let Some(max) = def.length
                && text.chars().count() > max
            {
                return Err(FieldProblem::new(
                    codes::api::STRING_TOO_LONG,
                    name,
                    format!("{object}.{name} takes at most {max} characters, got {}", text.chars().count()),
                ));
            }
            if t == FieldType::Picklist && !text.is_empty() && !def.values.iter().any(|v| v == text) {
                return Err(FieldProblem::new(
                    codes::api::INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST,
                    name,
                    format!(
                        "`{}` is not a value of {object}.{name}; allowed: {}",
                        excerpt(text),
                        def.values.join(", ")
                    ),
                ));
            }
            if t == FieldType::Email && !text.is_empty() && !looks_like_email(text) {
                return Err(FieldProblem::new(
                    codes::api::INVALID_EMAIL_ADDRESS,
                    name,
                    format!("{object}.{name}: `{}` is not an email address", excerpt(text)),
                ));
            }
            Ok(value.clone())
        }
        FieldType::Number | FieldType::Currency | FieldType::Percent => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
        FieldType::Checkbox => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(wrong("true or false")),
        },
        FieldType::Date => typed(value, herald_expr::Type::Date).ok_or_else(|| wrong("a date `YYYY-MM-DD`")),
        FieldType::Datetime => typed(value, herald_expr::Type::DateTime)
            .ok_or_else(|| wrong("a date-time `2024-05-01T09:30:00Z`")),
        FieldType::Time => typed(value, herald_expr::Type::Time).ok_or_else(|| wrong("a time `HH:MM:SS`")),
        _ => Err(wrong("a value")),
    }
}

fn typed(value: &Value, ty: herald_expr::Type) -> Option<Value> {
    if !value.is_string() {
        return None;
    }
    herald_expr::Value::from_json(value, ty).ok().map(|v| v.to_json())
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.contains(' ')
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{}\"", s.chars().take(40).collect::<String>()),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lead() -> ObjectDef {
        yaml_object(
            "kind: object\nname: Lead\nfields:\n  LastName: {type: text, length: 5, required: true}\n  Phone: {type: phone}\n  Score: {type: number}\n  Status: {type: picklist, values: [Open, Closed], default: Open}\n  Email: {type: email}\n",
        )
    }

    fn yaml_object(text: &str) -> ObjectDef {
        let (project, diagnostics) = herald_project::load_files(
            "/p".into(),
            vec![("herald.toml".into(), String::new()), ("objects/Lead.yaml".into(), text.into())],
        );
        assert!(diagnostics.is_empty(), "{diagnostics}");
        project.unwrap().objects["Lead"].def.clone()
    }

    #[test]
    fn normalizes_names_and_applies_defaults() {
        let input = json!({"lastname": "Ng", "PHONE": "+1 415"}).as_object().unwrap().clone();
        let fields = validate(&lead(), &input, true, Truncation::Refuse).unwrap().fields;
        assert_eq!(fields["LastName"], "Ng");
        assert_eq!(fields["Phone"], "+1 415");
        assert_eq!(fields["Status"], "Open");
    }

    #[test]
    fn names_every_bad_field() {
        let input = json!({"Phne": "1", "Score": "ten", "LastName": "toolong", "Status": "Maybe", "Email": "x", "Id": "1"});
        let problems = validate(&lead(), input.as_object().unwrap(), true, Truncation::Refuse).unwrap_err();
        let codes: Vec<(&str, &str)> =
            problems.iter().map(|p| (p.error_code, p.fields[0].as_str())).collect();
        assert!(codes.contains(&("INVALID_FIELD", "Phne")), "{codes:?}");
        assert!(problems.iter().any(|p| p.message.contains("did you mean `Phone`")));
        assert!(codes.contains(&("INVALID_TYPE", "Score")));
        assert!(codes.contains(&("STRING_TOO_LONG", "LastName")));
        assert!(codes.contains(&("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Status")));
        assert!(codes.contains(&("INVALID_EMAIL_ADDRESS", "Email")));
        assert!(codes.contains(&("INVALID_FIELD_FOR_INSERT_UPDATE", "Id")));
    }

    #[test]
    fn required_fields_on_create_only() {
        let input = json!({"Phone": "1"}).as_object().unwrap().clone();
        let problems = validate(&lead(), &input, true, Truncation::Refuse).unwrap_err();
        assert_eq!(problems[0].error_code, "REQUIRED_FIELD_MISSING");
        assert!(validate(&lead(), &input, false, Truncation::Refuse).is_ok());
        let blanking = json!({"LastName": ""}).as_object().unwrap().clone();
        assert!(validate(&lead(), &blanking, false, Truncation::Refuse).is_err());
        for empty in [json!({"LastName": ""}), json!({"LastName": null})] {
            let problems =
                validate(&lead(), empty.as_object().unwrap(), true, Truncation::Refuse).unwrap_err();
            assert_eq!(problems[0].error_code, "REQUIRED_FIELD_MISSING", "a blank required field on create");
        }
    }

    /// Finding 9: 100,000 unknown keys (1.3 MB) drew a 9.3 MB answer.
    #[test]
    fn a_flood_of_bad_fields_is_answered_with_the_first_25_and_a_count() {
        let mut input = Map::new();
        for i in 0..100_000 {
            input.insert(format!("Unknown_{i}_{}", "x".repeat(200)), json!(1));
        }
        let problems = validate(&lead(), &input, true, Truncation::Refuse).unwrap_err();
        assert_eq!(problems.len(), FieldProblem::MAX_LISTED + 1);
        assert!(problems[..25].iter().all(|p| p.error_code == "INVALID_FIELD"));
        let last = problems.last().unwrap();
        // 100,000 unknown fields and the missing LastName, less the 25 listed.
        assert_eq!(last.error_code, "MORE_ERRORS");
        assert!(last.message.starts_with("99976 more problems are not listed"), "{}", last.message);
        let answer = serde_json::to_string(&problems).unwrap();
        assert!(answer.len() < 16 * 1024, "{} bytes", answer.len());
        assert!(problems[0].fields[0].chars().count() <= EXCERPT_CHARS + 1, "names are quoted as excerpts");
    }

    #[test]
    fn a_short_list_stays_as_it_is_and_a_long_one_is_cut_to_the_limit() {
        let one = vec![FieldProblem::new(codes::api::INVALID_FIELD, "a", "m".into())];
        assert_eq!(FieldProblem::bounded(one.clone()), one);
        let many = vec![FieldProblem::new(codes::api::INVALID_FIELD, "a", "m".into()); 1000];
        let bounded = FieldProblem::bounded(many);
        assert_eq!(bounded.len(), 26);
        assert_eq!(
            bounded[25].message,
            "975 more problems are not listed; fix the ones above and send the record again to see them"
        );
    }

    #[test]
    fn flow_writes_truncate_long_text_and_say_so() {
        let input = json!({"LastName": "Lovelace"}).as_object().unwrap().clone();
        assert!(validate(&lead(), &input, true, Truncation::Refuse).is_err());
        let validated = validate(&lead(), &input, true, Truncation::Truncate).unwrap();
        assert_eq!(validated.fields["LastName"], "Love…");
        assert_eq!(validated.truncated, ["LastName"]);
    }
}
