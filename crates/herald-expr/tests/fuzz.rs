//! Property tests: random input never panics the compiler or the evaluator, and well-formed
//! generated formulas compile and evaluate (to a value or an evaluation error, never a panic).

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use herald_expr::{Decimal, EvalContext, Formula, RefId, Resolved, Resolver, Scope, Template, Type, Value};
use proptest::prelude::*;

#[path = "common/gen.rs"]
mod generate;
use generate::{ALL_TYPES, Gen, Opts, Rng};

struct Env;

const FIELDS: &[(&str, Type)] = &[
    ("$Record.Phone", Type::Text),
    ("$Record.Name", Type::Text),
    ("$Record.Blank", Type::Text),
    ("$Record.Amount", Type::Number),
    ("$Record.Score", Type::Number),
    ("$Record.Flag", Type::Boolean),
    ("$Record.Day", Type::Date),
    ("$Record.NoDay", Type::Date),
    ("$Record.At", Type::DateTime),
    ("$Record.Start", Type::Time),
    ("$Record__Prior.Name", Type::Text),
];

impl Resolver for Env {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        let p = path.join(".");
        FIELDS
            .iter()
            .position(|(n, _)| *n == p)
            .map(|i| Resolved { id: RefId(i as u32), ty: FIELDS[i].1 })
            .ok_or_else(|| format!("Unknown reference {p}"))
    }
}

impl Scope for Env {
    fn value(&self, id: RefId) -> Value {
        match id.0 {
            0 => Value::text("+15551234567"),
            1 => Value::text("Ada Lovelace"),
            2 => Value::Null,
            3 => Value::Number(Decimal::from_str("1250.50").unwrap()),
            4 => Value::Null,
            5 => Value::Boolean(true),
            6 => Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
            7 => Value::Null,
            8 => Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap()),
            9 => Value::Time(chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap()),
            10 => Value::text("Ada"),
            _ => Value::Null,
        }
    }
}

fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2024, 3, 5, 23, 30, 15).unwrap())
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..100000, 0u32..10000).prop_map(|(a, b)| format!("{a}.{b}")),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("79228162514264337593543950335".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        "[a-zA-Z0-9 ;:+é-]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("\"\"".to_string()),
        Just("\"2024-02-29\"".to_string()),
        Just("\"2024-03-05 10:00:00\"".to_string()),
        Just("\"12:30:00\"".to_string()),
        Just("\"[0-9]+\"".to_string()),
        Just("\"(\"".to_string()),
        prop::sample::select(FIELDS).prop_map(|(n, _)| n.to_string()),
        prop::sample::select(FIELDS).prop_map(|(n, _)| format!("{{!{n}}}")),
        Just("TODAY()".to_string()),
        Just("NOW()".to_string()),
        Just("TIMENOW()".to_string()),
        Just("BR()".to_string()),
        Just("\"SHA-256\"".to_string()),
        Just("\"hmacSHA512\"".to_string()),
        Just("BLOB(\"k\")".to_string()),
        Just("BASE64DECODE(\"Zm9v\")".to_string()),
    ]
}

const OPS: &[&str] = &["+", "-", "*", "/", "^", "&", "=", "==", "<>", "!=", "<", ">", "<=", ">=", "&&", "||"];

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let names: Vec<&'static str> = herald_expr::FUNCTIONS.iter().map(|f| f.name).collect();
        prop_oneof![
            (inner.clone(), prop::sample::select(OPS), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("!{a}")),
            (prop::sample::select(names), prop::collection::vec(inner.clone(), 0..5))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

fn exercise(src: &str) {
    if let Ok(f) = Formula::compile(src, &Env) {
        let _ = f.eval(&Env, &cx());
        let _ = f.eval(&Env, &cx().with_zone(chrono_tz::Asia::Kolkata));
    } else if let Err(e) = Formula::compile(src, &Env) {
        let _ = e.caret();
        let _ = e.line_col();
        let _ = e.to_string();
    }
    match Template::compile(src, &Env) {
        Ok(t) => {
            let _ = t.render(&Env, &cx());
        }
        Err(e) => {
            let _ = e.caret();
        }
    }
}

proptest! {
    // 2000 cases per property; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,60}") {
        exercise(&src);
    }

    #[test]
    fn random_formula_like_text_never_panics(
        src in "[A-Z(){}!$.,\"' 0-9+*/^&|=<>-]{0,50}"
    ) {
        exercise(&src);
    }

    #[test]
    fn generated_formulas_never_panic(src in expr()) {
        exercise(&src);
        exercise(&format!("Hi {{!{src}}} there"));
    }

    #[test]
    fn typed_well_formed_formulas_evaluate(a in any::<i32>(), b in any::<i32>(), s in "[a-z]{0,8}") {
        let src = format!(
            "IF({a} > {b}, TEXT({a} - {b}), \"{s}\" & TEXT(MOD({a}, IF({b} = 0, 1, {b}))))"
        );
        let f = Formula::compile(&src, &Env).unwrap();
        prop_assert_eq!(f.result_type(), Type::Text);
        let v = f.eval(&Env, &cx()).unwrap();
        let want = if a > b {
            (i64::from(a) - i64::from(b)).to_string()
        } else {
            let m = if b == 0 { 1 } else { i64::from(b) };
            format!("{s}{}", i64::from(a) % m)
        };
        prop_assert_eq!(v, Value::text(want));
    }

    #[test]
    fn typed_generated_formulas_compile_and_never_panic(seed in any::<u64>(), depth in 1u32..6) {
        let mut rng = Rng::new(seed);
        let ty = ALL_TYPES[rng.below(6) as usize];
        let opts = Opts { refs: true, nulls: true, clock: true, inexact: true };
        let src = Gen { rng: &mut rng, opts }.expr(ty, depth);
        let f = Formula::compile(&src, &Env);
        prop_assert!(f.is_ok(), "{}: {}", src, f.err().map(|e| e.to_string()).unwrap_or_default());
        let f = f.unwrap();
        match f.eval(&Env, &cx()) {
            Ok(v) => prop_assert!(
                v.is_null() || v.type_of() == f.result_type(),
                "{}: {:?} is not {}", src, v, f.result_type()
            ),
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn binary_functions_never_panic_and_round_trip(
        text in "\\PC{0,40}",
        alg in prop::sample::select(vec![
            "SHA-256", "sha256", "SHA-512", "SHA-1", "MD5", "hmacSHA256", "HmacSHA1", "hmac-md5", "",
            "SHA-3", "x", "hmac",
        ]),
        b64 in "[A-Za-z0-9+/=_ -]{0,16}",
    ) {
        let lit = serde_json::Value::String(text.clone()).to_string();
        let alg_lit = serde_json::Value::String(alg.to_string()).to_string();
        let b64_lit = serde_json::Value::String(b64.clone()).to_string();
        let round = format!("BASE64DECODE(BASE64ENCODE(BLOB({lit}))) = BLOB({lit})");
        let f = Formula::compile(&round, &Env).unwrap();
        prop_assert_eq!(f.eval(&Env, &cx()).unwrap(), Value::Boolean(true));
        let hex = Formula::compile(&format!("HEX(BLOB({lit}))"), &Env).unwrap().eval(&Env, &cx()).unwrap();
        let want: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        prop_assert_eq!(hex, Value::text(want));
        for src in [
            format!("HEX(HASH({alg_lit}, BLOB({lit})))"),
            format!("BASE64ENCODE(HMAC({alg_lit}, {lit}, BLOB({lit})))"),
            format!("HEX(HASH(LOWER({alg_lit}), {lit}))"),
            format!("BASE64ENCODE(HMAC(TRIM({alg_lit}), BASE64DECODE({b64_lit}), {lit}))"),
            format!("HEX(BASE64DECODE({b64_lit}))"),
            format!("Sig {{!HEX(HMAC({alg_lit}, {lit}, {lit}))}}"),
        ] {
            exercise(&src);
        }
    }

    #[test]
    fn decimal_addition_is_exact(a in -1_000_000_000i64..1_000_000_000, b in 0u32..1000) {
        let src = format!("{a}.{b:03} + 0.001 - 0.001 = {a}.{b:03}");
        let f = Formula::compile(&src, &Env).unwrap();
        prop_assert_eq!(f.eval(&Env, &cx()).unwrap(), Value::Boolean(true));
    }
}
