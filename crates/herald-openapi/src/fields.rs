//! Load-time checks the flow compiler runs on assignments: does `smsBody.to` exist, is `url` an allowed
//! value of `subType`?

use crate::{Constraints, ObjectType, Property, Service, Shape};
use serde::Serialize;

/// What one field path leads to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    /// The generated type that owns the last field.
    pub owner: String,
    /// The field's JSON name, the one sent on the wire (`destination`).
    pub name: String,
    /// The field's API name (`z0type` for `type`).
    pub api_name: String,
    /// The path in the spec's spelling: a flow may write `Content.Template` or `z0type`; the request
    /// uses these names.
    pub canonical_path: Vec<String>,
    pub shape: Shape,
    pub required: bool,
    pub description: Option<String>,
    pub constraints: Constraints,
}

/// Why a field path does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("service `{service}` generates no type `{type_name}`{suggestion}")]
    UnknownType { service: String, type_name: String, suggestion: String },
    #[error("an empty field path; name a field of `{type_name}`")]
    EmptyPath { type_name: String },
    #[error("`{type_name}`{place} has no field `{field}`; {hint}")]
    UnknownField {
        type_name: String,
        /// ` (at content.template)` when the field is not at the top of the path, else empty.
        place: String,
        field: String,
        /// The field the author most likely meant (JSON name).
        suggestion: Option<String>,
        /// Every field of the type, in the spec's order.
        available: Vec<String>,
        hint: String,
    },
    #[error("`{walked}` is {shape}; it has no field `{field}`; {fix}")]
    NotAnObject { walked: String, shape: String, field: String, fix: String },
}

/// Follows `path` (field names, as a flow writes them after the variable) from the generated type
/// `type_name`. A part matches a property by its JSON name, by its API name (`z0type`), or either of
/// them ignoring case (flow references are case-insensitive, as in Salesforce); the answer carries the
/// spec's spelling in [`FieldInfo::canonical_path`]. A map (`additionalProperties`) takes any key.
// A load-time check, never on the hot path: a large error that carries every field is worth it.
#[allow(clippy::result_large_err)]
pub fn field_path(service: &Service, type_name: &str, path: &[&str]) -> Result<FieldInfo, PathError> {
    let Some(mut object) = service.types.get(type_name) else {
        let suggestion = closest(type_name, service.types.keys().map(String::as_str), 0.85)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(PathError::UnknownType {
            service: service.name.clone(),
            type_name: type_name.into(),
            suggestion,
        });
    };
    if path.is_empty() {
        return Err(PathError::EmptyPath { type_name: type_name.into() });
    }
    let mut canonical: Vec<String> = Vec::new();
    let mut index = 0;
    loop {
        let field = path[index];
        let Some((name, property)) = find_property(object, field) else {
            return Err(unknown_field(object, &canonical, field));
        };
        canonical.push(name.clone());
        index += 1;
        let mut shape = &property.shape;
        // Map keys: any text, then the value's shape.
        while let Shape::Map { value } = shape {
            if index == path.len() {
                break;
            }
            canonical.push(path[index].to_string());
            index += 1;
            shape = value;
        }
        if index == path.len() {
            return Ok(FieldInfo {
                owner: object.name.clone(),
                name: name.clone(),
                api_name: property.api_name.clone(),
                canonical_path: canonical,
                shape: shape.clone(),
                required: property.required,
                description: property.description.clone(),
                constraints: property.constraints.clone(),
            });
        }
        let walked = canonical.join(".");
        match shape {
            Shape::Object { type_name: inner } => match service.types.get(inner) {
                Some(next) => object = next,
                None => {
                    return Err(PathError::UnknownType {
                        service: service.name.clone(),
                        type_name: inner.clone(),
                        suggestion: String::new(),
                    });
                }
            },
            Shape::List { item } => {
                let fix = match item.as_ref() {
                    Shape::Object { type_name } => format!(
                        "set the fields on a variable of type {type_name}, then Add that variable to `{walked}`"
                    ),
                    other => format!("Add {} values to `{walked}`", other.describe()),
                };
                return Err(PathError::NotAnObject {
                    walked,
                    shape: shape.describe(),
                    field: path[index].to_string(),
                    fix,
                });
            }
            other => {
                return Err(PathError::NotAnObject {
                    walked: walked.clone(),
                    shape: other.describe(),
                    field: path[index].to_string(),
                    fix: format!("assign a value to `{walked}` itself"),
                });
            }
        }
    }
}

fn find_property<'t>(object: &'t ObjectType, field: &str) -> Option<(&'t String, &'t Property)> {
    let properties = &object.properties;
    properties.get_key_value(field).or_else(|| properties.iter().find(|(_, p)| p.api_name == field)).or_else(
        || {
            properties
                .iter()
                .find(|(n, p)| n.eq_ignore_ascii_case(field) || p.api_name.eq_ignore_ascii_case(field))
        },
    )
}

/// Names people give the same thing: the seed 001 guide writes `to`/`from` where 8x8 says
/// `destination`/`source`.
const SYNONYMS: &[&[&str]] = &[
    &[
        "to",
        "recipient",
        "recipients",
        "destination",
        "destinations",
        "msisdn",
        "phone",
        "phonenumber",
        "mobile",
        "mobilenumber",
        "number",
        "target",
        "receiver",
        "tonumber",
        "toaddress",
        "address",
    ],
    &["from", "source", "sender", "senderid", "originator", "fromnumber", "sourceaddress", "sourcenumber"],
    &["body", "message", "text", "msg", "messagetext", "messagebody", "content", "sms"],
    &["clientmessageid", "reference", "ref", "externalid", "correlationid", "messageid", "customid"],
    &["sendat", "scheduled", "schedule", "sendtime", "deliverat", "scheduledat", "scheduletime"],
    &["validity", "expiry", "expires", "ttl", "expiresat", "validityperiod", "expiration"],
    &[
        "callback",
        "callbackurl",
        "webhook",
        "statuscallback",
        "dlrcallbackurl",
        "dlrurl",
        "deliveryreporturl",
    ],
    &["encoding", "charset", "coding", "datacoding"],
    &["country", "countrycode", "region"],
    &["lang", "language", "locale", "languagecode"],
    &["kind", "type", "messagetype", "contenttype"],
];

fn normalise(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase()
}

fn synonyms_of(field: &str) -> Option<&'static [&'static str]> {
    let key = normalise(field);
    SYNONYMS.iter().copied().find(|group| group.contains(&key.as_str()))
}

/// The field most likely meant by `field`, with why: a synonym, a similar spelling, or a description
/// that mentions the word.
fn suggest<'t>(object: &'t ObjectType, field: &str) -> Option<(&'t String, &'static str)> {
    let names: Vec<&String> = object.properties.keys().collect();
    if let Some(group) = synonyms_of(field) {
        // Closest to the front of the group's list wins (`destination` before `number`).
        if let Some(best) = group.iter().filter_map(|syn| names.iter().find(|n| normalise(n) == *syn)).next()
        {
            return Some((best, "synonym"));
        }
    }
    if let Some(best) = closest(field, names.iter().map(|n| n.as_str()), 0.8) {
        return names.iter().find(|n| n.as_str() == best).map(|n| (*n, "spelling"));
    }
    let words: Vec<String> = match synonyms_of(field) {
        Some(group) => group.iter().map(|s| s.to_string()).collect(),
        None if field.len() >= 4 => vec![normalise(field)],
        None => Vec::new(),
    };
    let stop = ["to", "from", "number", "address", "text", "message", "type", "content", "body", "sms"];
    object
        .properties
        .iter()
        .find(|(_, p)| {
            p.description.as_deref().is_some_and(|d| {
                d.split(|c: char| !c.is_ascii_alphanumeric())
                    .map(str::to_ascii_lowercase)
                    .any(|w| words.iter().any(|x| *x == w && !stop.contains(&x.as_str())))
            })
        })
        .map(|(n, _)| (n, "description"))
}

fn unknown_field(object: &ObjectType, canonical: &[String], field: &str) -> PathError {
    let available: Vec<String> = object.properties.keys().cloned().collect();
    let suggestion = suggest(object, field);
    let fields = format!("its fields are: {}", available.join(", "));
    let hint = match suggestion {
        Some((name, why)) => {
            let described = object.properties[name]
                .description
                .as_deref()
                .map(|d| format!(" (\"{}\")", first_line(d)))
                .unwrap_or_default();
            let reason = match why {
                "synonym" => format!(" (`{field}` is another name for what this spec calls `{name}`)"),
                "description" => " (its description mentions it)".to_string(),
                _ => String::new(),
            };
            format!("did you mean `{name}`{described}{reason}? {fields}")
        }
        None => fields,
    };
    PathError::UnknownField {
        type_name: object.name.clone(),
        place: if canonical.is_empty() { String::new() } else { format!(" (at {})", canonical.join(".")) },
        field: field.into(),
        suggestion: suggestion.map(|(n, _)| n.clone()),
        available,
        hint,
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > 80 {
        format!("{}...", line.chars().take(77).collect::<String>())
    } else {
        line.into()
    }
}

fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>, threshold: f64) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= threshold)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// How a literal compares with a field's enum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnumCheck {
    /// The field has no enum: any value of its shape goes.
    NotAnEnum,
    /// The value is one of the allowed values, spelled as the spec spells it.
    Exact,
    /// The value differs from an allowed value only in case (`template` for `Template`). herald refuses
    /// it: values are sent exactly as written, and the schema's enum is case-sensitive.
    CaseOnly { expected: String },
    /// Not an allowed value at all.
    Unknown { suggestion: Option<String>, allowed: Vec<String> },
}

impl EnumCheck {
    /// The compiler's message for a refused value, or `None` when the value is fine.
    pub fn problem(&self, field: &str, value: &str) -> Option<String> {
        match self {
            EnumCheck::NotAnEnum | EnumCheck::Exact => None,
            EnumCheck::CaseOnly { expected } => Some(format!(
                "`{value}` is not an allowed value of `{field}`: the spec spells it `{expected}` (only the case differs, and the spec's values are case-sensitive); write `{expected}`"
            )),
            EnumCheck::Unknown { suggestion, allowed } => Some(match suggestion {
                Some(s) => format!(
                    "`{value}` is not an allowed value of `{field}`; did you mean `{s}`? allowed: {}",
                    allowed.join(", ")
                ),
                None => {
                    format!("`{value}` is not an allowed value of `{field}`; allowed: {}", allowed.join(", "))
                }
            }),
        }
    }
}

/// Compares a literal value with the enum of the field `info` describes.
pub fn check_enum(info: &FieldInfo, value: &str) -> EnumCheck {
    let allowed = &info.constraints.enum_values;
    if allowed.is_empty() {
        return EnumCheck::NotAnEnum;
    }
    if allowed.iter().any(|a| a == value) {
        return EnumCheck::Exact;
    }
    if let Some(expected) = allowed.iter().find(|a| a.eq_ignore_ascii_case(value)) {
        return EnumCheck::CaseOnly { expected: expected.clone() };
    }
    EnumCheck::Unknown {
        suggestion: closest(value, allowed.iter().map(String::as_str), 0.75).map(str::to_string),
        allowed: allowed.clone(),
    }
}
