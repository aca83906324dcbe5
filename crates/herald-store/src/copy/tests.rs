//! Copies between backends: every row kept (compared through every read of the Store API), ids and
//! orders kept, ids continuing after the copied ones, and a target that is not empty refused.

use super::CopyReport;
use crate::postgres::testing::scratch_database;
use crate::{
    ConsentRow, MessageChange, MessageFilter, NewMessage, NewReceipt, NewRun, RunStatus, SealedSecret, Store,
    StoreError, VaultNode,
};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

const NOW: &str = "2026-11-21T10:00:00.000000Z";
const LATER: &str = "2026-11-21T10:05:00.000000Z";
/// More records than one page holds, so that the copy pages through them.
const RECORDS: usize = 1_234;

/// An id that does not sort as its record was created: the copy must keep creation order, not ids'.
fn record_id(n: usize) -> String {
    format!("{:04}-{n}", (n * 7_919) % 10_000)
}

fn message(id: &str, key: &str, position: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        run_id: Some("run-1".into()),
        element: Some("Send".into()),
        idempotency_key: key.into(),
        position,
        provider: "kixie".into(),
        named_credential: "Kixie".into(),
        channel: "sms".into(),
        destination: format!("+1415555010{position}"),
        sender: Some("+14155550000".into()),
        client_message_id: Some(format!("c-{id}")),
        encoding: Some("GSM-7".into()),
        segments: Some(1),
        status: "pending".into(),
        history: json!([{"status": "pending", "at": NOW}]),
    }
}

fn receipt<'a>(message_id: Option<&'a str>, provider_id: &'a str, applied: bool) -> NewReceipt<'a> {
    NewReceipt {
        webhook: "kixie",
        provider: "kixie",
        kind: "status",
        message_id,
        provider_message_id: Some(provider_id),
        client_message_id: None,
        status: Some("delivered"),
        applied,
        body: "{\"status\":\"delivered\"}",
        received_at: NOW,
    }
}

fn sealed(parameter: &str, key_id: Option<i64>, byte: u8) -> SealedSecret {
    SealedSecret {
        parameter: parameter.into(),
        key_id,
        nonce: vec![byte; 12],
        ciphertext: vec![byte, 0, 255, byte],
    }
}

/// A database holding rows of every table, written through the store's own writes.
async fn fill(store: &Store) {
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(200) {
        let chunk = chunk.to_vec();
        store
            .write(move |tx| {
                for n in chunk {
                    let object = if n % 5 == 0 { "Contact" } else { "Lead" };
                    let data = json!({"LastName": format!("Name {n}"), "N": n, "Phone": "+14155550100"});
                    tx.insert_record(object, &record_id(n), data.as_object().unwrap(), NOW)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }
    store
        .write(|tx| {
            tx.update_record(&record_id(1), json!({"LastName": "Changed"}).as_object().unwrap(), LATER)?;
            tx.delete_record("Lead", &record_id(2))?;
            let state = json!({"at": "Send", "vars": {"n": 1}});
            let run = |id, owner| NewRun {
                id,
                flow: "Welcome",
                object: "Lead",
                record_id: "0001-1",
                state: &state,
                version: Some(1),
                owner,
            };
            tx.insert_run(run("run-1", Some("node-a")), NOW)?;
            tx.insert_run(run("run-2", None), NOW)?;
            tx.save_run("run-2", RunStatus::Failed, "{\"at\":\"End\"}", Some("the provider said no"), LATER)?;
            tx.insert_waiting_run(run("run-3", None), LATER, "scheduled path", NOW)?;
            tx.upsert_message(&message("m-1", "key-1", 0), NOW)?;
            tx.upsert_message(&message("m-2", "key-1", 1), NOW)?;
            tx.upsert_message(&message("m-2", "key-1", 1), LATER)?;
            let change = MessageChange {
                status: Some("delivered".into()),
                provider_message_id: Some("p-1".into()),
                price: Some("0.0075".into()),
                currency: Some("USD".into()),
                ..MessageChange::default()
            };
            tx.update_message("m-1", &change, LATER)?;
            let first = tx.insert_receipt(&receipt(None, "p-9", false))?;
            tx.insert_receipt(&receipt(Some("m-1"), "p-1", true))?;
            tx.insert_receipt(&receipt(None, "p-8", false))?;
            tx.match_receipt(first, "m-2", false)?;
            tx.set_consent(&ConsentRow {
                phone: "+14155550100".into(),
                sender: String::new(),
                status: "opted_out".into(),
                keyword: Some("STOP".into()),
                source: "kixie".into(),
                updated_at: NOW.into(),
            })?;
            tx.set_consent(&ConsentRow {
                phone: "+14155550101".into(),
                sender: "+14155550000".into(),
                status: "opted_in".into(),
                keyword: None,
                source: "api".into(),
                updated_at: LATER.into(),
            })?;
            assert!(tx.first_delivery("digest-1", "kixie", NOW)?);
            tx.set_webhook_secret("kixie", "hash-of-secret", NOW)?;
            tx.create_user("u-1", "webform", &["Herald_API_User".into(), "Kixie_User".into()], NOW)?;
            tx.create_user("u-2", "gone", &["Herald_API_User".into()], NOW)?;
            tx.deactivate_user("gone")?;
            tx.create_token("t-1", "u-1", "token-hash", NOW)?;
            // Master keys added in an order their ids do not sort in.
            tx.add_master("zz-master", NOW)?;
            tx.add_master("aa-master", LATER)?;
            let keys = [tx.insert_data_key(NOW)?, tx.insert_data_key(NOW)?, tx.insert_data_key(LATER)?];
            for key in keys {
                tx.insert_wrap(key, "zz-master", &[key as u8; 40], NOW)?;
                tx.insert_wrap(key, "aa-master", &[key as u8 + 1; 40], LATER)?;
            }
            tx.upsert_secret("Kixie", "Principal", "", &sealed("apikey", Some(keys[2]), 7), NOW)?;
            tx.upsert_secret("Kixie", "Principal", "u-1", &sealed("token", Some(keys[2]), 8), NOW)?;
            tx.upsert_secret("Acme", "Named", "", &sealed("legacy", None, 9), NOW)?;
            tx.retire_unused_data_keys(keys[2], LATER)?;
            tx.retire_master_rows("zz-master", LATER)?;
            tx.set_meta(crate::ACTIVE_KEY_META, &keys[2].to_string())?;
            tx.set_meta("project.hash", "abc")?;
            tx.add_project_version("hash-1", "{\"files\":1}", NOW)?;
            tx.add_project_version("hash-2", "{\"files\":2}", LATER)?;
            let node = VaultNode {
                id: "node-a".into(),
                pid: 42,
                host: "h".into(),
                master_id: "aa-master".into(),
                started_at: NOW.into(),
                seen_at: NOW.into(),
            };
            tx.see_vault_node(&node, NOW)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

/// Everything the Store API reads back from a database, as text: two databases that give the same
/// text hold the same state as herald sees it.
async fn everything(store: &Store) -> String {
    let mut text = String::new();
    for object in ["Lead", "Contact"] {
        for record in store.records_of(object, 100_000).await.unwrap() {
            writeln!(text, "record {record:?}").unwrap();
        }
    }
    writeln!(text, "record by id {:?}", store.record("Lead", &record_id(1)).await.unwrap()).unwrap();
    for run in store.recent_runs(&[], 1000).await.unwrap() {
        writeln!(text, "run {run:?}").unwrap();
        writeln!(text, "by id {:?}", store.run(&run.id).await.unwrap()).unwrap();
    }
    writeln!(text, "runs of record {:?}", store.runs_for_record("0001-1").await.unwrap()).unwrap();
    writeln!(text, "waiting {:?}", store.backend.waiting_runs().await.unwrap()).unwrap();
    let filter = MessageFilter { limit: 1000, ..MessageFilter::default() };
    for message in store.backend.messages(&filter).await.unwrap() {
        writeln!(text, "message {message:?}").unwrap();
    }
    writeln!(text, "attempts {}", store.backend.messages_since("Kixie", NOW).await.unwrap()).unwrap();
    writeln!(text, "receipts {:?}", store.backend.receipts(false, 1000).await.unwrap()).unwrap();
    writeln!(text, "unmatched {}", store.backend.unmatched_status_receipts().await.unwrap()).unwrap();
    writeln!(text, "consent {:?}", store.backend.consents().await.unwrap()).unwrap();
    writeln!(text, "webhook {:?}", store.backend.webhook_secret_hash("kixie").await.unwrap()).unwrap();
    writeln!(text, "users {:?}", store.users().await.unwrap()).unwrap();
    writeln!(text, "by token {:?}", store.user_by_token_hash("token-hash").await.unwrap()).unwrap();
    writeln!(text, "gone {:?}", store.user("u-2").await.unwrap()).unwrap();
    for key in [crate::ACTIVE_KEY_META, "project.hash"] {
        writeln!(text, "meta {key} {:?}", store.meta(key).await.unwrap()).unwrap();
    }
    for placed in store.all_secrets().await.unwrap() {
        writeln!(text, "secret {placed:?}").unwrap();
    }
    writeln!(text, "data keys {:?}", store.backend.data_keys().await.unwrap()).unwrap();
    writeln!(text, "masters {:?}", store.backend.vault_masters().await.unwrap()).unwrap();
    for master in ["zz-master", "aa-master"] {
        writeln!(text, "wraps {master} {:?}", store.backend.wraps_under(master).await.unwrap()).unwrap();
    }
    writeln!(text, "summary {:?}", store.backend.vault_summary().await.unwrap()).unwrap();
    for seq in 1..=3 {
        writeln!(text, "version {seq} {:?}", store.project_version(seq).await.unwrap()).unwrap();
    }
    text
}

async fn copy(from: &Store, to: &Store) -> CopyReport {
    from.copy_into(to).await.unwrap()
}

/// After a copy, the ids a database generates continue after the copied ones.
async fn assert_ids_continue(store: &Store) {
    let (receipt, key, version) = store
        .write(|tx| {
            let receipt = tx.insert_receipt(&receipt(None, "p-new", false))?;
            let key = tx.insert_data_key(LATER)?;
            let version = tx.add_project_version("hash-3", "{}", LATER)?;
            Ok::<_, StoreError>((receipt, key, version))
        })
        .await
        .unwrap();
    assert_eq!((receipt, key, version), (4, 4, 3), "new ids follow the copied ones");
    store
        .write(|tx| tx.insert_record("Lead", "new-one", json!({}).as_object().unwrap(), LATER))
        .await
        .unwrap();
    let leads = store.records_of("Lead", 100_000).await.unwrap();
    assert_eq!(
        leads.last().map(|r| r.id.as_str()),
        Some("new-one"),
        "a new record comes after the copied ones"
    );
}

fn check_report(report: &CopyReport) {
    assert_eq!(report.rows("records"), RECORDS as u64 - 1);
    assert_eq!(report.rows("receipts"), 3);
    assert_eq!(report.rows("secrets"), 3);
    assert_eq!(report.rows("vault_keys"), 3);
    assert_eq!(report.rows("project_versions"), 2);
    assert_eq!(report.rows("vault_nodes"), 0, "live processes are not copied");
    assert_eq!(report.tables.len(), super::TABLES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_from_sqlite_to_postgresql_and_back_keeps_every_row_id_and_order() {
    let Some(scratch) = scratch_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source.db")).await.unwrap();
    fill(&source).await;
    let expected = everything(&source).await;
    assert!(expected.contains("0001-1") && expected.contains("aa-master"), "{expected}");

    let shared = Store::open(Path::new(&scratch.url)).await.unwrap();
    check_report(&copy(&source, &shared).await);
    assert_eq!(everything(&shared).await, expected, "PostgreSQL holds what the SQLite file held");
    assert!(shared.backend.vault_nodes().await.unwrap().is_empty(), "live processes are not copied");

    let back = Store::open(&dir.path().join("back.db")).await.unwrap();
    check_report(&copy(&shared, &back).await);
    assert_eq!(everything(&back).await, expected, "the file made back from PostgreSQL holds the same");

    assert_ids_continue(&shared).await;
    assert_ids_continue(&back).await;
    for store in [source, shared, back] {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_between_two_sqlite_files_keeps_every_row_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source.db")).await.unwrap();
    fill(&source).await;
    let target = Store::open(&dir.path().join("target.db")).await.unwrap();
    check_report(&copy(&source, &target).await);
    assert_eq!(everything(&target).await, everything(&source).await);
    assert_ids_continue(&target).await;
}

/// A copy into `target`, which holds one record, is refused and leaves it as it was.
async fn assert_refused(source: &Store, target: &Store) {
    target
        .write(|tx| tx.insert_record("Lead", "mine", json!({"x": 1}).as_object().unwrap(), NOW))
        .await
        .unwrap();
    let before = everything(target).await;
    let refused = source.copy_into(target).await;
    match refused {
        Err(StoreError::TargetNotEmpty { tables }) => assert_eq!(tables, ["records"]),
        other => panic!("a target holding a record was not refused: {other:?}"),
    }
    let message = source.copy_into(target).await.unwrap_err().to_string();
    assert!(message.contains("not empty") && message.contains("records"), "{message}");
    assert_eq!(everything(target).await, before, "the refused target was changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_holds_data_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source.db")).await.unwrap();
    fill(&source).await;
    let file = Store::open(&dir.path().join("used.db")).await.unwrap();
    assert_refused(&source, &file).await;
    let Some(scratch) = scratch_database() else { return };
    let shared = Store::open(Path::new(&scratch.url)).await.unwrap();
    assert_refused(&source, &shared).await;
    shared.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_s_copy_of_a_postgresql_database_is_a_sqlite_file_with_its_records() {
    let Some(scratch) = scratch_database() else { return };
    let shared = Store::open(Path::new(&scratch.url)).await.unwrap();
    fill(&shared).await;
    let expected = everything(&shared).await;
    shared.close().await;
    let dir = tempfile::tempdir().unwrap();
    let copied = dir.path().join("rollback.db");
    Store::copy_database(Path::new(&scratch.url), &copied).await.unwrap();
    let file = Store::open(&copied).await.unwrap();
    assert_eq!(file.kind(), "sqlite");
    assert_eq!(everything(&file).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_migrations_are_counted_without_applying_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let fresh = Store::pending_migrations(&path).await.unwrap();
    assert!(fresh.pending() > 0 && fresh.applied == 0, "{fresh:?}");
    assert!(!path.exists(), "checking made the file");
    Store::open(&path).await.unwrap().close().await;
    let opened = Store::pending_migrations(&path).await.unwrap();
    assert_eq!((opened.pending(), opened.applied), (0, fresh.known));

    let Some(scratch) = scratch_database() else { return };
    let url = Path::new(&scratch.url);
    let fresh = Store::pending_migrations(url).await.unwrap();
    assert!(fresh.pending() > 0 && fresh.applied == 0, "{fresh:?}");
    assert_eq!(Store::pending_migrations(url).await.unwrap(), fresh, "checking migrated the database");
    Store::open(url).await.unwrap().close().await;
    assert_eq!(Store::pending_migrations(url).await.unwrap().pending(), 0);
}
