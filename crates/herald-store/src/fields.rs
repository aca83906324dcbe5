//! Reading some fields of a stored record: a Get Records element that keeps two fields of a
//! hundred thousand records should not build a value for every other field first.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The record stored as `data`, with only `fields` (every field when `None`).
pub(crate) fn parse_record(
    data: &str,
    fields: Option<&[String]>,
) -> Result<Map<String, Value>, serde_json::Error> {
    let Some(fields) = fields else { return serde_json::from_str(data) };
    let mut deserializer = serde_json::Deserializer::from_str(data);
    let record = OnlyFields(fields).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(record)
}

struct OnlyFields<'f>(&'f [String]);

impl<'de> DeserializeSeed<'de> for OnlyFields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OnlyFields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a record's fields as a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut record = Map::new();
        while let Some(Key(key)) = access.next_key()? {
            if self.0.iter().any(|field| *field == key) {
                record.insert(key.into_owned(), access.next_value()?);
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(record)
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a field name")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_named_fields_are_kept_and_a_bad_record_is_an_error() {
        let data = r#"{"Id":"00Q1","Name":"A \"quoted\" name","Ph\u006fne":"+6591111111","Nested":{"x":[1,2]},"Score":3}"#;
        let fields = ["Id".to_string(), "Phone".to_string(), "Score".to_string()];
        let record = parse_record(data, Some(&fields)).unwrap();
        assert_eq!(Value::Object(record), json!({"Id": "00Q1", "Phone": "+6591111111", "Score": 3}));
        assert_eq!(parse_record(data, None).unwrap().len(), 5);
        assert!(parse_record(r#"{"Id":"00Q1","Phone":}"#, Some(&fields)).is_err());
        assert!(parse_record(r#"{"Id":"00Q1"} trailing"#, Some(&fields)).is_err());
    }
}
