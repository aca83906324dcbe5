//! Values, types and Salesforce comparison semantics.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The static type of a formula expression or of a reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Text,
    Number,
    Boolean,
    Date,
    DateTime,
    Time,
    /// Binary data (Salesforce's BlobValue), made by `BLOB()`, `BASE64DECODE()`, `HASH()` and
    /// `HMAC()` in credential formulas. A Blob has no text form of its own: templates refuse it and
    /// it must be encoded with `BASE64ENCODE()` or `HEX()` first.
    Blob,
    /// The type of the literal `null`; it unifies with every other type.
    Null,
}

impl Type {
    /// The name used in messages and in `herald formula eval` output.
    pub fn name(self) -> &'static str {
        match self {
            Type::Text => "Text",
            Type::Number => "Number",
            Type::Boolean => "Boolean",
            Type::Date => "Date",
            Type::DateTime => "DateTime",
            Type::Time => "Time",
            Type::Blob => "Blob",
            Type::Null => "Null",
        }
    }

    /// Parses a type name as written by [`Type::name`] (case-insensitive).
    pub fn parse(name: &str) -> Option<Type> {
        const ALL: [Type; 8] = [
            Type::Text,
            Type::Number,
            Type::Boolean,
            Type::Date,
            Type::DateTime,
            Type::Time,
            Type::Blob,
            Type::Null,
        ];
        ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A run-time value.
///
/// `Debug` prints a Blob as its length only (`Blob(<32 bytes>)`): a Blob often holds a secret
/// (`BLOB($Credential.X.password)`) and debug output ends up in logs.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Text(Arc<str>),
    Number(Decimal),
    Boolean(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Time(NaiveTime),
    Blob(Arc<[u8]>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Value::Number(d) => f.debug_tuple("Number").field(d).finish(),
            Value::Boolean(b) => f.debug_tuple("Boolean").field(b).finish(),
            Value::Date(d) => f.debug_tuple("Date").field(d).finish(),
            Value::DateTime(dt) => f.debug_tuple("DateTime").field(dt).finish(),
            Value::Time(t) => f.debug_tuple("Time").field(t).finish(),
            Value::Blob(b) => write!(f, "Blob(<{} bytes>)", b.len()),
        }
    }
}

/// A stored value could not be converted to the declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub message: String,
}

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ValueError { message: message.into() }
    }
}

impl Value {
    /// A Text value.
    pub fn text(s: impl Into<Arc<str>>) -> Value {
        Value::Text(s.into())
    }

    /// A Blob value.
    pub fn blob(bytes: impl Into<Arc<[u8]>>) -> Value {
        Value::Blob(bytes.into())
    }

    /// The type of this value (`Type::Null` for `Value::Null`).
    pub fn type_of(&self) -> Type {
        match self {
            Value::Null => Type::Null,
            Value::Text(_) => Type::Text,
            Value::Number(_) => Type::Number,
            Value::Boolean(_) => Type::Boolean,
            Value::Date(_) => Type::Date,
            Value::DateTime(_) => Type::DateTime,
            Value::Time(_) => Type::Time,
            Value::Blob(_) => Type::Blob,
        }
    }

    /// Salesforce ISBLANK: Null, or Text that is empty (or an empty Blob). A space, zero or false
    /// is not blank.
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Text(s) => s.is_empty(),
            Value::Blob(b) => b.is_empty(),
            _ => false,
        }
    }

    /// Salesforce ISNULL: only the Null value.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// How the value renders as a merge field in a text template (UTC for DateTime).
    ///
    /// Null -> "", Number exactly as held (no exponent), Boolean "true"/"false", Date `YYYY-MM-DD`,
    /// DateTime `YYYY-MM-DD HH:MM:SSZ` (UTC, as Salesforce's TEXT() writes it), Time `HH:MM:SS.sss`,
    /// Blob standard base64 with padding. (A formula cannot render a Blob implicitly: templates,
    /// `&` and `TEXT()` refuse it at compile time. This base64 form only serves callers that hold a
    /// Blob value, so that it is never lost or written as raw bytes.)
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }

    /// Appends [`Value::to_text`] to `out` without an intermediate allocation.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Text(s) => out.push_str(s),
            Value::Number(d) => write_decimal(out, *d),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Date(d) => write_date(out, *d),
            Value::DateTime(dt) => {
                let _ = write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%SZ"));
            }
            Value::Time(t) => write_time(out, *t),
            Value::Blob(b) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode_string(b, out);
            }
        }
    }

    /// The JSON form of the value (see the crate docs for the rules).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Text(s) => serde_json::Value::String(s.to_string()),
            Value::Number(d) => decimal_to_json(*d),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Date(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(dt) => {
                serde_json::Value::String(dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            Value::Time(t) => {
                let mut s = String::new();
                write_time(&mut s, *t);
                serde_json::Value::String(s)
            }
            Value::Blob(_) => serde_json::Value::String(self.to_text()),
        }
    }

    /// Converts a stored JSON field value into a Value of the declared type. JSON null gives Null.
    pub fn from_json(v: &serde_json::Value, ty: Type) -> Result<Value, ValueError> {
        use serde_json::Value as J;
        if v.is_null() {
            return Ok(Value::Null);
        }
        let found = || match v {
            J::Null => "null".to_string(),
            J::Bool(b) => format!("the boolean {b}"),
            J::Number(n) => format!("the number {n}"),
            J::String(s) => format!("the string {}", json_quote(s)),
            J::Array(_) => "an array".to_string(),
            J::Object(_) => "an object".to_string(),
        };
        let err =
            |extra: &str| ValueError::new(format!("expected {}{}, found {}", ty.name(), extra, found()));
        match ty {
            Type::Null => Err(err("")),
            Type::Text => match v {
                J::String(s) => Ok(Value::text(s.as_str())),
                _ => Err(err(" (a JSON string)")),
            },
            Type::Number => match v {
                J::Number(n) => {
                    parse_decimal(&n.to_string()).map(Value::Number).ok_or_else(|| err(" (out of range)"))
                }
                J::String(s) => parse_decimal(s.trim())
                    .map(Value::Number)
                    .ok_or_else(|| err(" (a JSON number or a numeric string)")),
                _ => Err(err(" (a JSON number)")),
            },
            Type::Boolean => match v {
                J::Bool(b) => Ok(Value::Boolean(*b)),
                J::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Boolean(true)),
                J::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Boolean(false)),
                _ => Err(err(" (true or false)")),
            },
            Type::Date => match v {
                J::String(s) => parse_date(s).map(Value::Date).ok_or_else(|| err(" (a string YYYY-MM-DD)")),
                _ => Err(err(" (a string YYYY-MM-DD)")),
            },
            Type::DateTime => match v {
                J::String(s) => parse_datetime_json(s)
                    .map(Value::DateTime)
                    .ok_or_else(|| err(" (an RFC 3339 string such as 2024-03-05T14:30:00Z)")),
                _ => Err(err(" (an RFC 3339 string such as 2024-03-05T14:30:00Z)")),
            },
            Type::Time => match v {
                J::String(s) => parse_time(s).map(Value::Time).ok_or_else(|| err(" (a string HH:MM:SS.sss)")),
                _ => Err(err(" (a string HH:MM:SS.sss)")),
            },
            // The string is not quoted in the error: a Blob often holds a secret.
            Type::Blob => match v {
                J::String(s) => decode_base64(s).map(Value::blob).ok_or_else(|| {
                    ValueError::new("expected Blob (a base64 string), found a string that is not base64")
                }),
                _ => Err(err(" (a base64 string)")),
            },
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::text(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::text(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}
impl From<Decimal> for Value {
    fn from(d: Decimal) -> Value {
        Value::Number(d)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(Decimal::from(n))
    }
}
impl From<NaiveDate> for Value {
    fn from(d: NaiveDate) -> Value {
        Value::Date(d)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(d: DateTime<Utc>) -> Value {
        Value::DateTime(d)
    }
}
impl From<NaiveTime> for Value {
    fn from(t: NaiveTime) -> Value {
        Value::Time(t)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Standard base64 (`A-Z a-z 0-9 + /`), with or without `=` padding, surrounding white space
/// ignored. None when the text is not base64.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s.trim()).ok()
}

fn json_quote(s: &str) -> String {
    let mut short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        short.push('…');
    }
    serde_json::Value::String(short).to_string()
}

pub(crate) fn write_decimal(out: &mut String, d: Decimal) {
    if d.is_zero() {
        let _ = write!(out, "{}", Decimal::new(0, d.scale()));
    } else {
        let _ = write!(out, "{d}");
    }
}

pub(crate) fn write_date(out: &mut String, d: NaiveDate) {
    let _ = write!(out, "{}", d.format("%Y-%m-%d"));
}

pub(crate) fn write_time(out: &mut String, t: NaiveTime) {
    let _ = write!(out, "{}", t.format("%H:%M:%S%.3f"));
}

fn decimal_to_json(d: Decimal) -> serde_json::Value {
    let n = d.normalize();
    if n.scale() == 0 {
        if let Some(i) = n.to_i64() {
            return serde_json::Value::from(i);
        }
        if let Some(u) = n.to_u64() {
            return serde_json::Value::from(u);
        }
    }
    if let Some(f) = n.to_f64()
        && let Some(num) = serde_json::Number::from_f64(f)
        && parse_decimal(&num.to_string()) == Some(n)
    {
        return serde_json::Value::Number(num);
    }
    let mut s = String::new();
    write_decimal(&mut s, n);
    serde_json::Value::String(s)
}

/// Parses a decimal written plainly (`-12.50`) or with an exponent (`1e-7`, as JSON may write it).
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    if s.is_empty() {
        return None;
    }
    let ok = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !ok {
        return None;
    }
    if s.contains(['e', 'E']) {
        Decimal::from_scientific(s).ok()
    } else {
        let body = s.strip_prefix('+').unwrap_or(s);
        if body.starts_with(['+', '-']) && s.starts_with('+') {
            return None;
        }
        Decimal::from_str_exact(body).or_else(|_| Decimal::from_str(body)).ok()
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// `HH:MM`, `HH:MM:SS`, `HH:MM:SS.sss`, optionally followed by `Z`.
pub(crate) fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M")).ok()
}

/// RFC 3339 and the Salesforce REST form `2024-03-05T14:30:00.000+0000`.
pub(crate) fn parse_datetime_json(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    let s2 = s.strip_suffix('Z').unwrap_or(s);
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(s2, f) {
            return Some(ndt.and_utc());
        }
    }
    None
}

/// Salesforce equality, as used by `=` and by flow Decision elements.
///
/// Null equals Null and nothing else; text comparison is case-sensitive; numbers compare by value
/// (`1.0 = 1`); values of different types are not equal.
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::Boolean(x), Value::Boolean(y)) => x == y,
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::DateTime(x), Value::DateTime(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x == y,
        (Value::Blob(x), Value::Blob(y)) => x == y,
        _ => false,
    }
}

/// Salesforce ordering for `<`, `>`, `<=`, `>=`: None when the values are not comparable
/// (different types, a Null, Booleans or Blobs). Text orders by Unicode code point, case-sensitively.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
