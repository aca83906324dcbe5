//! The size of what the API answers, against a real engine: a flood of bad fields draws a bounded
//! answer, and a body over the limit is refused before it is parsed.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_engine::{Engine, EngineOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

async fn engine(dir: &tempfile::TempDir) -> (Engine, String) {
    let files: Vec<(PathBuf, String)> = [
        ("herald.toml", ""),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n",
        ),
        ("permissions/Writer.yaml", "kind: permission-set\napi_scopes: [write_records]\n"),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t.to_string()))
    .collect();
    let project = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    let engine =
        Engine::open(Arc::new(project), &EngineOptions::for_database(dir.path().join("h.db"))).await.unwrap();
    engine.create_user("webform", &["Writer".into()]).await.unwrap();
    let token = engine.create_token("webform").await.unwrap().to_string();
    (engine, token)
}

async fn post(engine: &Engine, token: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/api/v1/records/Lead")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = herald_server::router(engine.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, bytes.to_vec())
}

/// Finding 9: a 1.3 MB record of 100,000 unknown keys drew a 9.3 MB answer.
#[tokio::test]
async fn a_record_with_100000_unknown_fields_gets_25_errors_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(&dir).await;
    let mut record = serde_json::Map::new();
    // Short keys, so that the body fits under the 1 MiB limit (the 1.3 MB original is now a 413).
    for i in 0..100_000 {
        record.insert(format!("{i:x}"), Value::from(1));
    }
    let body = serde_json::to_vec(&record).unwrap();
    assert!(body.len() > 900_000 && body.len() < herald_server::MAX_BODY_BYTES, "{}", body.len());
    let (status, answer) = post(&engine, &token, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.len() < 8 * 1024, "the answer is {} bytes", answer.len());
    let errors: Vec<Value> = serde_json::from_slice(&answer).unwrap();
    assert_eq!(errors.len(), 26);
    assert_eq!(errors[0]["errorCode"], "INVALID_FIELD");
    assert_eq!(errors[25]["errorCode"], "MORE_ERRORS");
    assert!(errors[25]["message"].as_str().unwrap().starts_with("99976 more problems are not listed"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, token) = engine(&dir).await;
    let body = format!("{{\"LastName\": \"{}\"}}", "x".repeat(herald_server::MAX_BODY_BYTES));
    let (status, _) = post(&engine, &token, body.into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
