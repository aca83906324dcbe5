//! Lenient reading of provider JSON, shared by the webhook, answer and request readers.

use serde_json::Value;

/// The value at a dotted path; `null` counts as absent because providers send `null` for "not set".
pub(crate) fn at<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let found = path.split('.').try_fold(root, |v, key| v.get(key))?;
    (!found.is_null()).then_some(found)
}

/// A scalar as text. Providers send ids, phone numbers and prices as strings or numbers
/// interchangeably, so both are accepted.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn text_at(root: &Value, path: &str) -> Option<String> {
    at(root, path).and_then(text)
}

/// A count sent as a number or as digits in a string (Twilio's `num_segments`).
pub(crate) fn count(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `overlay` laid over `base`, objects merged key by key, anything else replaced: how 8x8 combines a
/// batch's `template` with each message.
pub(crate) fn merged(base: &Value, overlay: &Value) -> Value {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let m = match out.get(k) {
                    Some(existing) => merged(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), m);
            }
            Value::Object(out)
        }
        (_, o) if o.is_null() => base.clone(),
        (_, o) => o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_paths_and_scalars() {
        let v = json!({"a": {"b": 12, "c": "x", "d": null}});
        assert_eq!(text_at(&v, "a.b").as_deref(), Some("12"));
        assert_eq!(text_at(&v, "a.c").as_deref(), Some("x"));
        assert!(at(&v, "a.d").is_none());
        assert!(at(&v, "a.c.z").is_none());
        assert_eq!(count(&json!("3")), Some(3));
        assert_eq!(count(&json!(-3)), None);
    }

    #[test]
    fn merges_objects_deeply() {
        let base = json!({"source": "Herald", "content": {"text": "hi", "sms": {"source": "H"}}});
        let over = json!({"destination": "+6512345678", "content": {"text": "bye"}, "source": null});
        assert_eq!(
            merged(&base, &over),
            json!({"source": "Herald", "content": {"text": "bye", "sms": {"source": "H"}}, "destination": "+6512345678"})
        );
    }
}
