//! Differential test: herald-expr against the npm package `formulon` (a public Salesforce formula
//! evaluator) on generated formulas.
//!
//! Needs node and the harness's node_modules; install them with
//! `npm ci --prefix crates/herald-expr/tests/formulon`. Without them the test prints why and
//! passes without comparing.
//!
//! The generator avoids the constructs where formulon knowingly departs from Salesforce's
//! documented behaviour (listed in docs/formulas.md, "Differences from formulon"): binary floating
//! point (formulon's numbers are JavaScript doubles, so numbers are compared with a relative
//! tolerance and TEXT() of a computed number is not generated), multi-character LPAD/RPAD padding,
//! MID with a start below 1, SUBSTITUTE of an empty text, and nulls (formulon throws on many).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use herald_expr::{EvalContext, Formula, NoReferences, Value};

#[path = "common/gen.rs"]
mod generate;
use generate::{ALL_TYPES, Gen, Opts, Rng};

const CASES: u64 = 1500;

fn harness_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/formulon")
}

fn skip_reason() -> Option<String> {
    let dir = harness_dir();
    if !dir.join("node_modules/formulon").is_dir() {
        return Some(format!(
            "{} is missing (install with: npm ci --prefix crates/herald-expr/tests/formulon)",
            dir.join("node_modules/formulon").display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not installed".to_string()),
    }
}

/// Runs every formula through the node harness; returns one JSON answer per formula.
fn formulon(formulas: &[String]) -> Vec<serde_json::Value> {
    let mut child = Command::new("node")
        .arg("harness.js")
        .current_dir(harness_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = formulas
        .iter()
        .enumerate()
        .map(|(id, f)| serde_json::json!({"id": id, "formula": f}).to_string() + "\n")
        .collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("write to node");
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut answers = vec![serde_json::Value::Null; formulas.len()];
    for line in BufReader::new(stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("read")).expect("json");
        let id = v["id"].as_u64().expect("id") as usize;
        answers[id] = v;
    }
    writer.join().expect("writer");
    assert!(child.wait().expect("node").success(), "node harness failed");
    answers
}

/// Compares herald's value with formulon's answer; Err describes the difference.
fn same(h: &Value, f: &serde_json::Value) -> Result<(), String> {
    let ty = f["type"].as_str().unwrap_or("");
    let fv = &f["value"];
    let ok = match (h, ty) {
        (Value::Null, _) => fv.is_null() || ty == "null",
        (Value::Number(d), "number") => {
            let Some(x) = fv.as_f64() else {
                return Err(format!("formulon number {fv}"));
            };
            let h = d.to_string().parse::<f64>().unwrap_or(f64::NAN);
            (h - x).abs() <= 1e-9 * h.abs().max(1.0)
        }
        (Value::Text(s), "text") => fv.as_str() == Some(&**s),
        (Value::Boolean(b), "checkbox") => fv.as_bool() == Some(*b),
        (Value::Date(d), "date") => {
            fv.as_str().is_some_and(|s| s.starts_with(&d.format("%Y-%m-%d").to_string()))
        }
        (Value::DateTime(dt), "datetime") => fv
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|x| x.with_timezone(&Utc) == *dt),
        (Value::Time(t), "time") => {
            fv.as_str().is_some_and(|s| s.get(11..23) == Some(&t.format("%H:%M:%S%.3f").to_string()))
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("herald {h:?}, formulon {f}")) }
}

#[test]
fn herald_agrees_with_formulon() {
    if let Some(why) = skip_reason() {
        // CI sets HERALD_REQUIRE_REFERENCE=1 so that a missing reference fails instead of passing quietly.
        assert!(
            std::env::var_os("HERALD_REQUIRE_REFERENCE").is_none_or(|v| v != "1"),
            "HERALD_REQUIRE_REFERENCE=1 but {why}"
        );
        eprintln!("SKIPPED herald_agrees_with_formulon: {why}");
        return;
    }
    let opts = Opts { refs: false, nulls: false, clock: false, inexact: false };
    let mut formulas = Vec::new();
    for seed in 0..CASES {
        let mut rng = Rng::new(seed);
        let ty = ALL_TYPES[rng.below(ALL_TYPES.len() as u64) as usize];
        let depth = 1 + rng.below(4) as u32;
        formulas.push(Gen { rng: &mut rng, opts }.expr(ty, depth));
    }
    let answers = formulon(&formulas);
    let cx = EvalContext::new(DateTime::parse_from_rfc3339("2024-03-05T12:00:00Z").unwrap().to_utc());
    let (mut compared, mut skipped, mut failures) = (0, 0, Vec::new());
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for (src, answer) in formulas.iter().zip(&answers) {
        let f = Formula::compile(src, &NoReferences)
            .unwrap_or_else(|e| panic!("generated formula does not compile: {src}: {e}"));
        let h = f.eval(&NoReferences, &cx);
        match (h, answer.get("error")) {
            // formulon cannot evaluate it (not implemented, or an exception): nothing to compare.
            (_, Some(e)) => {
                skipped += 1;
                let e = e.as_str().unwrap_or("");
                let key: String = e.split(['.', '(']).next().unwrap_or(e).chars().take(90).collect();
                *reasons.entry(key).or_default() += 1;
            }
            (Ok(v), None) => {
                compared += 1;
                if let Err(diff) = same(&v, answer) {
                    failures.push(format!("{src}\n    {diff}"));
                }
            }
            (Err(e), None) => {
                compared += 1;
                failures.push(format!("{src}\n    herald error {e}, formulon {answer}"));
            }
        }
    }
    println!("formulon differential: {compared} compared, {skipped} skipped (formulon error)");
    for (reason, n) in &reasons {
        println!("  skipped {n:4}: {reason}");
    }
    assert!(compared >= CASES as usize / 2, "too few comparable formulas: {compared}");
    assert!(
        failures.is_empty(),
        "{} of {compared} formulas differ:\n{}",
        failures.len(),
        failures.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}
