//! Values: JSON conversion, rendering, Salesforce equality and ordering (public API only).

use std::cmp::Ordering;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use herald_expr::{Decimal, Type, Value, compare, equals};
use serde_json::json;

fn dec(s: &str) -> Value {
    Value::Number(Decimal::from_str(s).unwrap())
}

#[test]
fn type_display() {
    assert_eq!(Type::Text.to_string(), "Text");
    assert_eq!(Type::DateTime.to_string(), "DateTime");
    assert_eq!(Type::Null.to_string(), "Null");
    assert_eq!(Type::parse("number"), Some(Type::Number));
    assert_eq!(Type::parse("nope"), None);
}

#[test]
fn blank_and_null() {
    assert!(Value::Null.is_blank());
    assert!(Value::text("").is_blank());
    assert!(!Value::text(" ").is_blank());
    assert!(!dec("0").is_blank());
    assert!(!Value::Boolean(false).is_blank());
    assert!(Value::Null.is_null());
    assert!(!Value::text("").is_null());
    assert_eq!(Value::text("x").type_of(), Type::Text);
    assert_eq!(Value::Null.type_of(), Type::Null);
}

#[test]
fn to_text() {
    assert_eq!(Value::Null.to_text(), "");
    assert_eq!(Value::text("hi").to_text(), "hi");
    assert_eq!(dec("1250.50").to_text(), "1250.50");
    assert_eq!(dec("-0.00").to_text(), "0.00");
    assert_eq!(dec("0.0000001").to_text(), "0.0000001");
    assert_eq!(dec("79228162514264337593543950335").to_text(), "79228162514264337593543950335");
    assert_eq!(Value::Boolean(true).to_text(), "true");
    assert_eq!(Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()).to_text(), "2024-02-29");
    assert_eq!(
        Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap()).to_text(),
        "2024-03-05 14:30:00Z"
    );
    assert_eq!(Value::Time(NaiveTime::from_hms_milli_opt(9, 5, 3, 7).unwrap()).to_text(), "09:05:03.007");
}

#[test]
fn to_json() {
    assert_eq!(Value::Null.to_json(), json!(null));
    assert_eq!(Value::text("a\"b").to_json(), json!("a\"b"));
    assert_eq!(dec("42").to_json(), json!(42));
    assert_eq!(dec("42.000").to_json(), json!(42));
    assert_eq!(dec("-7").to_json(), json!(-7));
    assert_eq!(dec("12.5").to_json(), json!(12.5));
    assert_eq!(dec("0.1").to_json(), json!(0.1));
    assert_eq!(dec("1250.50").to_json(), json!(1250.5));
    // More digits than a double holds: kept exact as a string.
    assert_eq!(dec("0.3333333333333333333333333333").to_json(), json!("0.3333333333333333333333333333"));
    assert_eq!(dec("79228162514264337593543950335").to_json(), json!("79228162514264337593543950335"));
    assert_eq!(dec("18446744073709551615").to_json(), json!(18446744073709551615u64));
    assert_eq!(Value::Boolean(false).to_json(), json!(false));
    assert_eq!(Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()).to_json(), json!("2024-02-29"));
    assert_eq!(
        Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap()).to_json(),
        json!("2024-03-05T14:30:00Z")
    );
    let with_ms = Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap() + chrono::TimeDelta::milliseconds(250);
    assert_eq!(Value::DateTime(with_ms).to_json(), json!("2024-03-05T14:30:00.250Z"));
    assert_eq!(
        Value::Time(NaiveTime::from_hms_milli_opt(17, 30, 0, 0).unwrap()).to_json(),
        json!("17:30:00.000")
    );
}

#[test]
fn from_json_ok() {
    let f = Value::from_json;
    assert_eq!(f(&json!(null), Type::Number).unwrap(), Value::Null);
    assert_eq!(f(&json!(null), Type::Text).unwrap(), Value::Null);
    assert_eq!(f(&json!("hi"), Type::Text).unwrap(), Value::text("hi"));
    assert_eq!(f(&json!(""), Type::Text).unwrap(), Value::text(""));
    assert!(equals(&f(&json!(12.5), Type::Number).unwrap(), &dec("12.5")));
    assert!(equals(&f(&json!(0.1), Type::Number).unwrap(), &dec("0.1")));
    assert!(equals(&f(&json!(7), Type::Number).unwrap(), &dec("7")));
    assert!(equals(&f(&json!(1e20), Type::Number).unwrap(), &dec("100000000000000000000")));
    assert!(equals(&f(&json!(1e-7), Type::Number).unwrap(), &dec("0.0000001")));
    assert_eq!(f(&json!("12.50"), Type::Number).unwrap(), dec("12.50"));
    assert_eq!(f(&json!(true), Type::Boolean).unwrap(), Value::Boolean(true));
    assert_eq!(f(&json!("false"), Type::Boolean).unwrap(), Value::Boolean(false));
    assert_eq!(
        f(&json!("2024-02-29"), Type::Date).unwrap(),
        Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
    );
    let want = Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap());
    for s in [
        "2024-03-05T14:30:00Z",
        "2024-03-05T15:30:00+01:00",
        "2024-03-05T14:30:00.000+0000",
        "2024-03-05T14:30:00",
        "2024-03-05 14:30:00",
    ] {
        assert_eq!(f(&json!(s), Type::DateTime).unwrap(), want, "{s}");
    }
    let t = Value::Time(NaiveTime::from_hms_milli_opt(17, 30, 0, 0).unwrap());
    for s in ["17:30", "17:30:00", "17:30:00.000", "17:30:00.000Z"] {
        assert_eq!(f(&json!(s), Type::Time).unwrap(), t, "{s}");
    }
}

#[test]
fn from_json_errors_name_the_expected_type() {
    let e = Value::from_json(&json!(5), Type::Text).unwrap_err();
    assert_eq!(e.to_string(), "expected Text (a JSON string), found the number 5");
    let e = Value::from_json(&json!("abc"), Type::Number).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected Number (a JSON number or a numeric string), found the string \"abc\""
    );
    let e = Value::from_json(&json!("2024-02-30"), Type::Date).unwrap_err();
    assert!(e.to_string().starts_with("expected Date"), "{e}");
    let e = Value::from_json(&json!([1]), Type::Boolean).unwrap_err();
    assert_eq!(e.to_string(), "expected Boolean (true or false), found an array");
    let e = Value::from_json(&json!({"a": 1}), Type::DateTime).unwrap_err();
    assert!(e.to_string().contains("found an object"), "{e}");
    let e = Value::from_json(&json!(1), Type::Null).unwrap_err();
    assert!(e.to_string().starts_with("expected Null"), "{e}");
    assert!(Value::from_json(&json!("1e999999"), Type::Number).is_err());
    assert!(Value::from_json(&json!("25:00"), Type::Time).is_err());
}

#[test]
fn json_round_trip() {
    let values = [
        dec("0.1"),
        dec("-123.456"),
        dec("1000000"),
        dec("0.3333333333333333333333333333"),
        Value::text("x"),
        Value::Boolean(true),
        Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
        Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 59).unwrap()),
        Value::Time(NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap()),
    ];
    for v in values {
        let back = Value::from_json(&v.to_json(), v.type_of()).unwrap();
        assert!(equals(&v, &back), "{v:?} -> {back:?}");
    }
}

#[test]
fn equality_rules() {
    assert!(equals(&Value::Null, &Value::Null));
    assert!(!equals(&Value::Null, &Value::text("")));
    assert!(!equals(&Value::Null, &dec("0")));
    assert!(equals(&Value::text("a"), &Value::text("a")));
    assert!(!equals(&Value::text("a"), &Value::text("A")));
    assert!(equals(&dec("1.0"), &dec("1")));
    assert!(!equals(&dec("1"), &Value::text("1")));
    assert!(equals(&Value::Boolean(true), &Value::Boolean(true)));
}

#[test]
fn ordering_rules() {
    assert_eq!(compare(&dec("1"), &dec("2")), Some(Ordering::Less));
    assert_eq!(compare(&dec("2.0"), &dec("2")), Some(Ordering::Equal));
    assert_eq!(compare(&Value::text("b"), &Value::text("a")), Some(Ordering::Greater));
    assert_eq!(compare(&Value::text("B"), &Value::text("a")), Some(Ordering::Less));
    assert_eq!(compare(&Value::Null, &dec("1")), None);
    assert_eq!(compare(&Value::Null, &Value::Null), None);
    assert_eq!(compare(&dec("1"), &Value::text("1")), None);
    assert_eq!(compare(&Value::Boolean(false), &Value::Boolean(true)), None);
    let d1 = Value::Date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
    let d2 = Value::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap());
    assert_eq!(compare(&d1, &d2), Some(Ordering::Less));
}

#[test]
fn formula_is_send_sync_and_clone() {
    fn assert_traits<T: Send + Sync + Clone>() {}
    assert_traits::<herald_expr::Formula>();
    assert_traits::<herald_expr::Template>();
    assert_traits::<herald_expr::CompileError>();
    assert_traits::<herald_expr::EvalError>();
}

#[test]
fn blob_values() {
    let secret = Value::blob(b"s3cr3t:p@ss".as_slice());
    assert_eq!(Type::parse("blob"), Some(Type::Blob));
    assert_eq!(Type::Blob.to_string(), "Blob");
    assert_eq!(secret.type_of(), Type::Blob);
    // Rendering by a caller holding a Blob: standard base64 with padding.
    assert_eq!(Value::blob(b"f".as_slice()).to_text(), "Zg==");
    assert_eq!(secret.to_json(), json!("czNjcjN0OnBAc3M="));
    assert_eq!(Value::from_json(&json!("czNjcjN0OnBAc3M="), Type::Blob).unwrap(), secret);
    assert_eq!(Value::from_json(&json!("czNjcjN0OnBAc3M"), Type::Blob).unwrap(), secret);
    assert_eq!(Value::from_json(&json!(null), Type::Blob).unwrap(), Value::Null);
    // The rejected string is not quoted (it may be a secret).
    let e = Value::from_json(&json!("not base64: hunter2!"), Type::Blob).unwrap_err();
    assert!(e.message.contains("expected Blob") && !e.message.contains("hunter2"), "{e}");
    assert!(Value::from_json(&json!(12), Type::Blob).unwrap_err().message.contains("expected Blob"));
    // Debug shows the length only.
    assert_eq!(format!("{secret:?}"), "Blob(<11 bytes>)");
    assert!(!format!("{:?}", Some(secret.clone())).contains("115"));
    // Equality is byte by byte; Blobs are not ordered; an empty Blob is blank.
    assert!(equals(&secret, &Value::blob(b"s3cr3t:p@ss".to_vec())));
    assert!(!equals(&secret, &Value::text("s3cr3t:p@ss")));
    assert_eq!(compare(&secret, &secret), None);
    assert!(Value::blob(Vec::new()).is_blank());
    assert!(!secret.is_blank() && !secret.is_null());
}
