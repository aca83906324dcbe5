//! `herald db copy` and `herald db migrate` as an administrator runs them: moving a SQLite file's
//! state into PostgreSQL and back, and checking a schema without changing it.

mod common;

use common::*;
use herald_store::postgres::testing::scratch_database;
use herald_store::{NewReceipt, Store, StoreError};
use serde_json::json;
use std::path::Path;

const NOW: &str = "2026-11-21T10:00:00.000000Z";
const PASSWORD: &str = "pw-never-printed";

/// The scratch database's URL with a password in it (the local server trusts its users and ignores
/// it), so that the test can see it is never printed.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => format!("{scheme}://{user}:{PASSWORD}@{host}"),
        _ => url.to_string(),
    }
}

/// A SQLite file with three Leads, a receipt and a user.
async fn a_project_database(path: &Path) {
    let store = Store::open(path).await.unwrap();
    store
        .write(|tx| {
            for (n, id) in ["00Qc", "00Qa", "00Qb"].iter().enumerate() {
                tx.insert_record("Lead", id, json!({"LastName": format!("L{n}")}).as_object().unwrap(), NOW)?;
            }
            tx.insert_receipt(&NewReceipt {
                webhook: "kixie",
                provider: "kixie",
                kind: "status",
                message_id: None,
                provider_message_id: Some("p-1"),
                client_message_id: None,
                status: Some("delivered"),
                applied: false,
                body: "{}",
                received_at: NOW,
            })?;
            tx.create_user("u-1", "webform", &["Herald_API_User".into()], NOW)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    store.close().await;
}

async fn leads(location: &Path) -> Vec<String> {
    let store = Store::open(location).await.unwrap();
    let ids = store.records_of("Lead", 100).await.unwrap().into_iter().map(|r| r.id).collect();
    store.close().await;
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn db_copy_moves_a_sqlite_file_into_postgresql_and_back_printing_counts_and_never_the_password() {
    let Some(scratch) = scratch_database() else { return };
    let url = with_password(&scratch.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.db");
    a_project_database(&file).await;

    let (code, stdout, stderr) = herald(&["db", "copy", "--from", file.to_str().unwrap(), "--to", &url], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD), "the password was printed: {stdout}{stderr}");
    assert!(stdout.contains("(sqlite) into postgres://"), "{stdout}");
    // One line per table: its name, the rows copied, "row(s)".
    let count = |table: &str| -> Vec<String> {
        let line = stdout.lines().find(|line| line.split_whitespace().next() == Some(table));
        line.map(|line| line.split_whitespace().map(String::from).collect()).unwrap_or_default()
    };
    assert_eq!(count("records"), ["records", "3", "rows"], "{stdout}");
    assert_eq!(count("receipts"), ["receipts", "1", "row"], "{stdout}");
    assert_eq!(count("vault_nodes"), Vec::<String>::new(), "live nodes are not copied: {stdout}");
    assert!(stdout.contains("the target needs the same master key"), "{stdout}");
    assert!(stdout.contains("herald.key"), "where the key goes: {stdout}");
    assert_eq!(leads(Path::new(&url)).await, ["00Qc", "00Qa", "00Qb"], "creation order kept");

    // The database now holds data: a second copy is refused and changes nothing.
    let (code, stdout, stderr) = herald(&["db", "copy", "--from", file.to_str().unwrap(), "--to", &url], "");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("not empty") && stderr.contains("records"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD), "{stdout}{stderr}");
    assert_eq!(leads(Path::new(&url)).await.len(), 3);

    let back = dir.path().join("back.db");
    let (code, stdout, stderr) = herald(&["db", "copy", "--from", &url, "--to", back.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD), "{stdout}{stderr}");
    assert_eq!(leads(&back).await, ["00Qc", "00Qa", "00Qb"]);
}

#[test]
fn db_copy_refuses_a_source_file_that_does_not_exist_and_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (missing, target) = (dir.path().join("missing.db"), dir.path().join("new.db"));
    let (code, _, stderr) =
        herald(&["db", "copy", "--from", missing.to_str().unwrap(), "--to", target.to_str().unwrap()], "");
    assert_eq!(code, 1);
    assert!(stderr.contains("there is no database at") && stderr.contains("missing.db"), "{stderr}");
    assert!(!missing.exists() && !target.exists(), "a database was made");
}

#[test]
fn db_migrate_check_counts_pending_migrations_without_applying_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.db");
    let db = file.to_str().unwrap();
    let (code, stdout, stderr) = herald(&["db", "migrate", "--db", db, "--check"], "");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("migrations pending"), "{stdout}");
    assert!(!file.exists(), "--check made the database");

    let (code, stdout, stderr) = herald(&["db", "migrate", "--db", db], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("Applied ") && stdout.contains("migrations"), "{stdout}");
    let (code, stdout, _) = herald(&["db", "migrate", "--db", db, "--check"], "");
    assert_eq!(code, 0);
    assert!(stdout.contains("is up to date"), "{stdout}");

    let Some(scratch) = scratch_database() else { return };
    let url = with_password(&scratch.url);
    for _ in 0..2 {
        let (code, stdout, stderr) = herald(&["db", "migrate", "--db", &url, "--check"], "");
        assert_eq!(code, 1, "an empty PostgreSQL database has migrations pending: {stdout}{stderr}");
        assert!(stdout.contains("pending") && stdout.contains("****"), "{stdout}");
        assert!(!stdout.contains(PASSWORD), "{stdout}");
    }
    let (code, stdout, stderr) = herald(&["db", "migrate", "--db", &url], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = herald(&["db", "migrate", "--db", &url, "--check"], "");
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
}

#[test]
fn db_migrate_finds_the_project_s_database_when_no_db_is_given() {
    let project = ProjectCopy::of("kixie-welcome-sms");
    let project_dir = project.path().to_str().unwrap();
    let (code, stdout, stderr) = herald(&["db", "migrate", "--project", project_dir, "--check"], "");
    assert_eq!(code, 1, "{stdout}{stderr}");
    let (code, stdout, stderr) = herald(&["db", "migrate", "--project", project_dir], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(project_dir), "names the project's database: {stdout}");
    let (code, _, _) = herald(&["db", "migrate", "--project", project_dir, "--check"], "");
    assert_eq!(code, 0);
}
