//! Import time of the providers' official OpenAPI files (the work `herald flow validate` and
//! `herald serve` do once per external service at load). The files are the copies herald ships in
//! `crates/herald-providers/specs` (their sources are named in the README there).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

fn spec(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../herald-providers/specs").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn import(c: &mut Criterion) {
    let options = herald_openapi::ImportOptions::default();
    for (name, file, registration) in [
        ("8x8 SMS (sms_api.json, 126 KB)", "8x8/sms_api.json", "CPaaSSMS"),
        (
            "8x8 Chat Apps (business_messaging_api.json, 341 KB)",
            "8x8/business_messaging_api.json",
            "CPaaSMessagingApps",
        ),
    ] {
        let text = spec(file);
        c.bench_function(&format!("import {name}, all operations"), |b| {
            b.iter(|| herald_openapi::import(black_box(&text), registration, "NC", &options).unwrap())
        });
    }
    let twilio = spec("twilio/twilio_api_v2010.CreateMessage.json");
    let only = herald_openapi::ImportOptions { operations: Some(vec!["CreateMessage".into()]), server: None };
    c.bench_function("import Twilio 2010-04-01 trimmed to CreateMessage (40 KB)", |b| {
        b.iter(|| herald_openapi::import(black_box(&twilio), "Twilio", "NC", &only).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = import
}
criterion_main!(benches);
