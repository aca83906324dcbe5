//! The SQLite backend against the conformance suite, and what only SQLite does: the schema's own
//! guards on the vault's keys.

use crate::conformance::Database;
use crate::{ACTIVE_KEY_META, SealedSecret, Store};
use rusqlite::Connection;

/// An empty database file in a directory of its own, removed when the test ends.
async fn fresh() -> Database {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conformance.db");
    Database::new(
        move || {
            let path = path.clone();
            Box::pin(async move { Store::open(&path).await.unwrap() })
        },
        dir,
    )
}

/// Every contract of the suite, as `sqlite::tests::conformance::<contract>`.
mod conformance {
    crate::conformance_tests!(super::fresh());
}

#[tokio::test]
async fn the_schema_itself_refuses_to_retire_a_data_key_in_use_or_to_seal_under_a_retired_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let store = Store::open(&path).await.unwrap();
    store
        .write(|tx| {
            tx.add_master("m1", "t0")?;
            for _ in 0..2 {
                let id = tx.insert_data_key("t0")?;
                tx.insert_wrap(id, "m1", &[id as u8; 56], "t0")?;
            }
            tx.set_meta(ACTIVE_KEY_META, "2")
        })
        .await
        .unwrap();
    let sealed = SealedSecret {
        parameter: "apikey".into(),
        key_id: Some(1),
        nonce: vec![1; 24],
        ciphertext: vec![2; 40],
    };
    store.put_secret("X", "P", "", &sealed, "t").await.unwrap();
    store.put_secret("X", "Q", "", &SealedSecret { key_id: Some(2), ..sealed }, "t").await.unwrap();
    store.close().await;

    // Whoever writes to the file, herald or not, meets the triggers.
    let conn = Connection::open(&path).unwrap();
    let in_use = conn.execute("UPDATE vault_keys SET retired_at = 't2' WHERE id = 1", []).unwrap_err();
    assert!(in_use.to_string().contains("cannot be retired"), "{in_use}");
    conn.execute("UPDATE secrets SET key_id = 2 WHERE key_id = 1", []).unwrap();
    conn.execute("UPDATE vault_keys SET retired_at = 't2' WHERE id = 1", []).unwrap();
    let sealed_under_retired = conn.execute("UPDATE secrets SET key_id = 1", []).unwrap_err();
    assert!(sealed_under_retired.to_string().contains("retired"), "{sealed_under_retired}");
}

#[tokio::test]
async fn a_copy_holds_what_was_committed_and_writes_to_it_never_reach_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (path, copy) = (dir.path().join("h.db"), dir.path().join("copy.db"));
    let store = Store::open(&path).await.unwrap();
    store.set_meta("k", "before").await.unwrap();
    Store::copy_database(&path, &copy).await.unwrap();
    let copied = Store::open(&copy).await.unwrap();
    assert_eq!(copied.meta("k").await.unwrap().as_deref(), Some("before"));
    copied.set_meta("k", "in the copy").await.unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("before"));
    store.close().await;
    copied.close().await;

    let absent = dir.path().join("absent.db");
    Store::copy_database(&absent, &dir.path().join("none.db")).await.unwrap();
    assert!(!dir.path().join("none.db").exists(), "nothing to copy, nothing made");
}

#[test]
fn a_records_waiting_runs_are_read_through_the_record_index_not_every_waiting_run() {
    let (_dir, conn) = plan_database();
    let plan = plan_of(&conn, super::rows::WAITING_RUNS_OF_RECORD, ["r1"]);
    assert!(plan.iter().any(|step| step.contains("runs_by_record")), "{plan:?}");
    assert!(!plan.iter().any(|step| step.contains("runs_by_status")), "{plan:?}");
}

/// A migrated, empty database to ask SQLite for query plans (the folder keeps it alive).
fn plan_database() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { Store::open(&path).await.unwrap().close().await });
    let conn = Connection::open(&path).unwrap();
    (dir, conn)
}

/// The query plan of `sql` with `params`, one step a line.
fn plan_of(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map(params, |row| row.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_home_pages_counts_and_lead_messages_read_a_range_of_the_creation_indexes() {
    let (_dir, conn) = plan_database();
    for (table, index) in [
        (crate::Created::Records, "records_by_creation"),
        (crate::Created::Runs, "runs_by_creation"),
        (crate::Created::Messages, "messages_by_time"),
    ] {
        let plan = plan_of(&conn, &super::created_per_bucket_sql(table), rusqlite::params![16, "t"]);
        assert!(plan.iter().any(|step| step.contains(index) && step.contains("created_at>?")), "{plan:?}");
    }
    let plan = plan_of(&conn, super::LEAD_MESSAGES, rusqlite::params!["a", "b", 10]);
    assert!(plan.iter().any(|step| step.contains("records_by_creation")), "{plan:?}");
    assert!(plan.iter().any(|step| step.contains("runs_by_record")), "{plan:?}");
    assert!(plan.iter().any(|step| step.contains("messages_by_run")), "{plan:?}");
}

#[test]
fn a_page_of_the_ledger_and_of_an_objects_records_is_read_along_an_index_not_sorted() {
    let (_dir, conn) = plan_database();
    let page = |filter: crate::MessageFilter| {
        let (sql, values) = super::messages_query(&filter);
        plan_of(&conn, &sql, rusqlite::params_from_iter(values))
    };
    let before = Some(("2026-01-01T00:00:00.000000Z".to_string(), "m9".to_string()));
    let newest = page(crate::MessageFilter { limit: 50, before: before.clone(), ..Default::default() });
    assert!(newest.iter().any(|step| step.contains("messages_by_time")), "{newest:?}");
    let by_phone = page(crate::MessageFilter {
        destination: Some("+6591111111".into()),
        status: Some("sent".into()),
        limit: 50,
        before,
        ..Default::default()
    });
    assert!(by_phone.iter().any(|step| step.contains("messages_by_destination")), "{by_phone:?}");
    for plan in [&newest, &by_phone] {
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "no sort: {plan:?}");
    }
    let records = plan_of(&conn, super::RECORDS_NEWEST_FIRST, rusqlite::params!["Lead", 900i64, 50i64]);
    assert!(records.iter().any(|step| step.contains("records_by_object")), "{records:?}");
    assert!(!records.iter().any(|step| step.contains("TEMP B-TREE")), "{records:?}");
    let receipts = plan_of(&conn, super::RECEIPTS_OF_MESSAGE, ["m1"]);
    assert!(receipts.iter().any(|step| step.contains("receipts_by_message")), "{receipts:?}");
}
