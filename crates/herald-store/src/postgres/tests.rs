//! The PostgreSQL backend against the conformance suite, and what only PostgreSQL does: migrations
//! shared by nodes starting together, the schema's own guards, notices between nodes, lost
//! connections, and passwords kept out of every message.

use super::testing::scratch_database;
use crate::conformance::Database;
use crate::{ACTIVE_KEY_META, ConsentRow, Notice, SealedSecret, Store, StoreError};
use std::path::Path;

/// A scratch database of its own, dropped when the test ends; `None` when no server answers.
async fn fresh() -> Option<Database> {
    let scratch = scratch_database()?;
    let url = scratch.url.clone();
    Some(Database::new(
        move || {
            let url = url.clone();
            Box::pin(async move { Store::open(Path::new(&url)).await.unwrap() })
        },
        scratch,
    ))
}

/// Every contract of the suite, as `postgres::tests::conformance::<contract>`.
mod conformance {
    crate::conformance_tests!(super::fresh());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_opening_a_new_database_together_migrate_it_once() {
    let Some(scratch) = scratch_database() else { return };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = scratch.url.clone();
            async move { Store::open(Path::new(&url)).await }
        })
        .collect();
    let stores: Vec<Store> = futures_join(opens).await;
    assert_eq!(stores.len(), 4);
    stores[0].write(|tx| tx.set_meta("k", "v")).await.unwrap();
    assert_eq!(stores[3].meta("k").await.unwrap().as_deref(), Some("v"), "one database, one schema");
    for store in &stores {
        store.close().await;
    }
}

async fn futures_join(
    opens: Vec<impl std::future::Future<Output = crate::Result<Store>> + Send + 'static>,
) -> Vec<Store> {
    let tasks: Vec<_> = opens.into_iter().map(tokio::spawn).collect();
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap().unwrap());
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_by_a_newer_herald_is_refused_with_the_versions_named() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.close().await;
    let url = scratch.url.clone();
    std::thread::spawn(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        client.batch_execute("INSERT INTO herald_schema (version, applied_at) VALUES (99, 'later')").unwrap();
    })
    .join()
    .unwrap();
    let error = Store::open(Path::new(&scratch.url)).await.unwrap_err().to_string();
    assert!(error.contains("version 99") && error.contains("upgrade herald"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_itself_refuses_to_retire_a_data_key_in_use_or_to_seal_under_a_retired_one() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    let (one, two) = store
        .write(|tx| {
            tx.add_master("m1", "t0")?;
            let one = tx.insert_data_key("t0")?;
            let two = tx.insert_data_key("t0")?;
            tx.set_meta(ACTIVE_KEY_META, &two.to_string())?;
            Ok::<_, StoreError>((one, two))
        })
        .await
        .unwrap();
    let sealed = SealedSecret {
        parameter: "p".into(),
        key_id: Some(one),
        nonce: vec![1; 12],
        ciphertext: vec![2; 20],
    };
    let in_use = sealed.clone();
    store.write(move |tx| tx.upsert_secret("EC", "P", "", &in_use, "t1")).await.unwrap();
    let url = scratch.url.clone();
    let refusals = std::thread::spawn(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        let retire = client.execute("UPDATE vault_keys SET retired_at = 't2' WHERE id = $1", &[&one]);
        client.execute("UPDATE vault_keys SET retired_at = 't2' WHERE id = $1", &[&two]).unwrap();
        let seal = client.execute(
            "INSERT INTO secrets (external_credential, principal, user_id, parameter, key_id, nonce, ciphertext, updated_at)
             VALUES ('EC', 'P', '', 'q', $1, '\\x01', '\\x02', 't3')",
            &[&two],
        );
        (super::rows::described(&retire.unwrap_err()), super::rows::described(&seal.unwrap_err()))
    })
    .join()
    .unwrap();
    assert!(refusals.0.contains("cannot be retired"), "{}", refusals.0);
    assert!(refusals.1.contains("is retired"), "{}", refusals.1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_change_committed_by_one_node_is_heard_by_another_and_a_rolled_back_one_is_not() {
    let Some(scratch) = scratch_database() else { return };
    let (one, two) = (
        Store::open(Path::new(&scratch.url)).await.unwrap(),
        Store::open(Path::new(&scratch.url)).await.unwrap(),
    );
    let mut heard = two.notices().expect("a shared database announces changes");
    // The listener connects on its own thread: wait until it hears a first change.
    let consent = |phone: &str, status: &str| ConsentRow {
        phone: phone.into(),
        sender: String::new(),
        status: status.into(),
        keyword: Some("STOP".into()),
        source: "test".into(),
        updated_at: "t1".into(),
    };
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let row = consent("+6590000000", "opted_out");
            one.write(move |tx| tx.set_consent(&row)).await.unwrap();
            if let Ok(Ok(notice)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), heard.recv()).await
            {
                return notice;
            }
        }
    })
    .await
    .expect("the other node hears the change");
    assert_eq!(first, Notice::Consent(consent("+6590000000", "opted_out")));
    while heard.try_recv().is_ok() {}

    let refused = consent("+6591111111", "opted_out");
    let _ = one
        .write(move |tx| {
            tx.set_consent(&refused)?;
            Err::<(), _>(StoreError::Missing("a reason to roll back".into()))
        })
        .await;
    let kept = consent("+6592222222", "opted_in");
    let sent = kept.clone();
    one.write(move |tx| tx.set_consent(&sent)).await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv()).await.unwrap().unwrap();
    assert_eq!(next, Notice::Consent(kept), "the rolled-back change was never announced");
    one.close().await;
    two.close().await;
}

/// A run written `waiting` until `at`, as a scheduled path's is.
fn waiting_run(tx: &mut dyn crate::WriteTx, id: &str, at: &str) -> crate::Result<()> {
    let state = serde_json::json!({});
    let run = crate::NewRun {
        id,
        flow: "F",
        object: "Lead",
        record_id: "00Q0",
        state: &state,
        version: None,
        owner: None,
    };
    tx.insert_waiting_run(run, at, "scheduled path P", "t0")
}

/// Writes waiting runs on `writer` until `listener` hears one: its listening connection is up.
async fn until_heard(writer: &Store, listener: &mut tokio::sync::broadcast::Receiver<Notice>, name: &str) {
    let probe = "2030-01-01T00:00:00.000000Z";
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        for n in 0.. {
            let id = format!("{name}-probe-{n}");
            writer.write(move |tx| waiting_run(tx, &id, probe)).await.unwrap();
            if let Ok(Ok(notice)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), listener.recv()).await
            {
                assert_eq!(notice, Notice::WorkDue { at: probe.into() });
                return;
            }
        }
    })
    .await
    .expect("the other node hears the waiting run");
}

async fn next_notice(listener: &mut tokio::sync::broadcast::Receiver<Notice>) -> Notice {
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await;
    heard.expect("a notice within 10 s").expect("the listener goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_parked_by_one_node_is_heard_as_work_due_by_another_and_a_leads_write_announces_nothing() {
    let Some(scratch) = scratch_database() else { return };
    let (one, two) = (
        Store::open(Path::new(&scratch.url)).await.unwrap(),
        Store::open(Path::new(&scratch.url)).await.unwrap(),
    );
    let (mut heard_by_one, mut heard_by_two) = (one.notices().unwrap(), two.notices().unwrap());
    until_heard(&one, &mut heard_by_two, "one").await;
    until_heard(&two, &mut heard_by_one, "two").await;
    // What the probes announced after the first one heard.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    while heard_by_one.try_recv().is_ok() || heard_by_two.try_recv().is_ok() {}

    // Two leads as a node writes them: the record and a ready run the node runs itself.
    one.write(|tx| lead_write(tx, 1)).await.unwrap();
    one.write(|tx| lead_write(tx, 2)).await.unwrap();
    // Their runs are parked (a retry, a rate limit); the second write's notice rides with its
    // statements: BEGIN, them and COMMIT in one round trip.
    let (due_1, due_2) = ("2030-01-01T00:00:01.000000Z", "2030-01-01T00:00:02.000000Z");
    one.write(move |tx| tx.wait_run("r1", "{}", due_1, "retry", "t2")).await.unwrap();
    let before = one.round_trips().unwrap();
    one.write(move |tx| tx.wait_run("r2", "{}", due_2, "retry", "t2")).await.unwrap();
    assert_eq!(one.round_trips().unwrap() - before, 1, "the notice costs no round trip of its own");

    // PostgreSQL delivers notices in commit order: anything the leads' writes announced would come
    // first.
    assert_eq!(
        next_notice(&mut heard_by_two).await,
        Notice::WorkDue { at: due_1.into() },
        "the leads' writes announced nothing"
    );
    assert_eq!(next_notice(&mut heard_by_two).await, Notice::WorkDue { at: due_2.into() });

    // A run due an hour after it is parked (a scheduled path) is left to the due poll; one due in
    // five seconds is announced.
    let (now, hour_on, soon) =
        ("2030-01-01T00:00:00.000000Z", "2030-01-01T01:00:00.000000Z", "2030-01-01T00:00:05.000000Z");
    one.write(move |tx| tx.wait_run("r1", "{}", hour_on, "scheduled path P", now)).await.unwrap();
    one.write(move |tx| tx.wait_run("r2", "{}", soon, "retry", now)).await.unwrap();
    assert_eq!(
        next_notice(&mut heard_by_two).await,
        Notice::WorkDue { at: soon.into() },
        "the hour-out run was not announced"
    );

    // The node that parked them wakes them itself: it does not hear its own notices.
    let due_3 = "2030-01-01T00:00:03.000000Z";
    two.write(move |tx| waiting_run(tx, "r3", due_3)).await.unwrap();
    assert_eq!(
        next_notice(&mut heard_by_one).await,
        Notice::WorkDue { at: due_3.into() },
        "its own notices came before, unheard"
    );
    one.close().await;
    two.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_go_on_after_the_server_drops_every_connection() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.write(|tx| tx.set_meta("k", "1")).await.unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("1"));
    let url = scratch.url.clone();
    std::thread::spawn(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        client
            .batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("1"), "a read opens a new connection");
    // The write that finds the connection gone may be refused (nothing of it kept); the next one runs.
    let mut written = false;
    for attempt in 0..20 {
        let value = attempt.to_string();
        if store.write(move |tx| tx.set_meta("k", &value)).await.is_ok() {
            written = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(written, "the writer opened a new connection");
    store.close().await;
}

#[tokio::test]
async fn a_password_in_the_url_never_appears_in_an_open_error() {
    let secret = "s3cr3t-Pa55word";
    let url = format!("postgres://herald:{secret}@127.0.0.1:1/nowhere?connect_timeout=2");
    let error = Store::open(Path::new(&url)).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("herald:****@127.0.0.1:1"), "the location is named, masked: {shown}");
    let query = format!("postgresql://h/db?user=u&password={secret}");
    assert_eq!(super::masked(&query), "postgresql://h/db?user=u&password=****");
    assert_eq!(super::masked("postgres://u@h/db"), "postgres://u@h/db");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_goes_on_after_a_failed_statement_keeps_nothing_and_spares_its_group() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    // Alone in its transaction, then among others: the writes below are submitted together.
    let careless = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    tx.set_meta(key, "written before the failure")?;
                    // A token for a user that does not exist: a foreign key refuses it, and the
                    // closure ignores the error.
                    let _ = tx.create_token("t1", "no-such-user", "hash", "t0");
                    Ok::<_, StoreError>(())
                })
                .await
        }
    };
    assert!(careless("alone").await.is_err(), "the caller hears that its write was not kept");
    let careful = |key: &'static str| {
        let store = store.clone();
        async move { store.write(move |tx| tx.set_meta(key, "kept")).await }
    };
    let (first, bad, last) = tokio::join!(careful("first"), careless("grouped"), careful("last"));
    assert!(first.is_ok() && bad.is_err() && last.is_ok(), "{first:?} {bad:?} {last:?}");
    assert_eq!(store.meta("alone").await.unwrap(), None);
    assert_eq!(store.meta("grouped").await.unwrap(), None);
    assert_eq!(store.meta("first").await.unwrap().as_deref(), Some("kept"));
    assert_eq!(store.meta("last").await.unwrap().as_deref(), Some("kept"));
    store.close().await;
}

#[tokio::test]
async fn a_url_that_asks_for_tls_is_refused_by_a_server_without_it_and_never_sent_in_the_clear() {
    let Some(scratch) = scratch_database() else { return };
    // The local test server has no TLS: with sslmode=require herald must not fall back to plain text.
    let url = format!("{}?sslmode=require", scratch.url);
    let error = Store::open(Path::new(&url)).await.unwrap_err().to_string();
    assert!(error.contains("TLS") || error.contains("SSL"), "{error}");
    let plain = Store::open(Path::new(&scratch.url)).await.unwrap();
    plain.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_waiting_runs_are_read_by_its_index_even_before_the_table_has_statistics() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.close().await;
    let url = scratch.url.clone();
    let plan = std::thread::spawn(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        // Thousands of waiting runs of other records, as scheduled paths an hour out leave them, and
        // no ANALYZE yet: the planner works from its defaults.
        client
            .batch_execute(
                "INSERT INTO runs (id, flow, object, record_id, status, state, created_at, updated_at, next_attempt_at)
                 SELECT 'r' || g, 'F', 'Lead', 'rec' || g, 'waiting', '{}', 't0', 't0', 't1' FROM generate_series(1, 5000) g",
            )
            .unwrap();
        let rows = client.query(&format!("EXPLAIN {}", super::rows::WAITING_RUNS_OF_RECORD), &[&"rec7"]).unwrap();
        rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
    })
    .join()
    .unwrap();
    assert!(plan.contains("runs_waiting_by_record") && !plan.contains("runs_due"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_the_writer_keeps_for_a_records_waiting_runs_made_on_an_empty_table_reads_its_index() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.close().await;
    let url = scratch.url.clone();
    let plan = std::thread::spawn(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        // A plan without the values, made while the table is empty: the one a new writer keeps.
        client.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
        let sql = format!("PREPARE waiting(text) AS {}", super::rows::WAITING_RUNS_OF_RECORD);
        client.batch_execute(&sql).unwrap();
        let rows = client.query("EXPLAIN EXECUTE waiting('rec7')", &[]).unwrap();
        rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
    })
    .join()
    .unwrap();
    // runs_due matches status = 'waiting' too, and would read every waiting run of every record.
    assert!(plan.contains("runs_waiting_by_record") && plan.contains("Index Cond"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_listing_reads_the_index_of_the_filter_given_however_often_it_runs() {
    let Some(scratch) = scratch_database() else { return };
    let url = scratch.url.clone();
    let backend = tokio::task::spawn_blocking(move || {
        super::PostgresBackend::open(&url, crate::OpenOptions::default())
    })
    .await
    .unwrap()
    .unwrap();
    // PostgreSQL plans a kept statement with its values five times, then may keep a plan that
    // knows none of them, which cannot tell which of the optional filters is given: listings are
    // prepared afresh each time, so the eighth run is planned as the first.
    for _ in 0..8 {
        let plan = backend
            .read(|conn| {
                let sql = format!("EXPLAIN {}", super::MESSAGES_FILTERED);
                let none: Option<String> = None;
                let rows = conn.query_planned_each_time(
                    &sql,
                    &[&Some("r1"), &none, &none, &10i64, &none, &none, &none, &none],
                )?;
                rows.iter().map(|row| super::rows::get::<String>(row, 0)).collect::<crate::Result<Vec<_>>>()
            })
            .await
            .unwrap()
            .join("\n");
        assert!(plan.contains("messages_by_run"), "{plan}");
    }
    crate::Backend::close(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_the_ledger_and_of_an_objects_records_is_read_along_an_index_not_sorted() {
    let Some(scratch) = scratch_database() else { return };
    let url = scratch.url.clone();
    let backend = tokio::task::spawn_blocking(move || {
        super::PostgresBackend::open(&url, crate::OpenOptions::default())
    })
    .await
    .unwrap()
    .unwrap();
    let explain = |sql: &'static str, values: Vec<Option<String>>, limit: i64| {
        backend.read(move |conn| {
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
            for value in &values[..3] {
                params.push(value);
            }
            params.push(&limit);
            for value in &values[3..] {
                params.push(value);
            }
            let rows = conn.query_planned_each_time(&format!("EXPLAIN {sql}"), &params)?;
            rows.iter().map(|row| super::rows::get::<String>(row, 0)).collect::<crate::Result<Vec<_>>>()
        })
    };
    let none = || None::<String>;
    let by_phone = explain(
        super::MESSAGES_FILTERED,
        vec![
            none(),
            Some("+6591111111".into()),
            none(),
            none(),
            Some("t9".into()),
            Some("m9".into()),
            none(),
        ],
        50,
    )
    .await
    .unwrap()
    .join("\n");
    assert!(by_phone.contains("messages_by_destination"), "{by_phone}");
    let records = backend
        .read(|conn| {
            let sql = format!("EXPLAIN {}", super::RECORDS_NEWEST_FIRST);
            let rows = conn.query_planned_each_time(&sql, &[&"Lead", &Some(900i64), &50i64])?;
            rows.iter().map(|row| super::rows::get::<String>(row, 0)).collect::<crate::Result<Vec<_>>>()
        })
        .await
        .unwrap()
        .join("\n");
    assert!(records.contains("records_by_object") && !records.contains("Sort"), "{records}");
    crate::Backend::close(&backend).await;
}

/// A lead's write: its record, its run, and the run's journal, none of whose answers is read.
fn lead_write(tx: &mut dyn crate::WriteTx, n: usize) -> crate::Result<()> {
    let (id, run) = (format!("00Q{n}"), format!("r{n}"));
    let data = serde_json::json!({"LastName": "Ng"}).as_object().unwrap().clone();
    tx.insert_record("Lead", &id, &data, "t0")?;
    let state = serde_json::json!({"k": n});
    let new = crate::NewRun {
        id: &run,
        flow: "F",
        object: "Lead",
        record_id: &id,
        state: &state,
        version: None,
        owner: Some("node-a"),
    };
    tx.insert_run(new, "t0")?;
    tx.save_run(&run, crate::RunStatus::Running, "{\"k\":0}", None, "t1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sends_its_statements_together_and_a_failed_one_refuses_that_write_alone() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    // The first write prepares its statements, one round trip each, once per connection.
    store.write(|tx| lead_write(tx, 0)).await.unwrap();
    let before = store.round_trips().unwrap();
    store.write(|tx| lead_write(tx, 1)).await.unwrap();
    assert_eq!(
        store.round_trips().unwrap() - before,
        1,
        "BEGIN, three statements and COMMIT in one round trip"
    );
    let run = store.run("r1").await.unwrap().unwrap();
    assert_eq!((run.status, run.state), (crate::RunStatus::Running, serde_json::json!({"k": 0})));

    // 00Q1 exists: the second write's insert fails when its statements are sent, after its
    // closure returned Ok. It alone is rolled back; the writes around it in its group commit.
    let write = |n: usize| {
        let store = store.clone();
        async move { store.write(move |tx| lead_write(tx, n)).await }
    };
    let (first, taken, last) = tokio::join!(write(2), write(1), write(3));
    assert!(first.is_ok() && last.is_ok(), "{first:?} {last:?}");
    let refused = taken.unwrap_err().to_string();
    assert!(refused.contains("duplicate key") && refused.contains("00Q1"), "{refused}");
    assert_eq!(
        store.run("r1").await.unwrap().unwrap().state,
        serde_json::json!({"k": 0}),
        "nothing of it kept"
    );
    assert!(store.run("r2").await.unwrap().is_some() && store.run("r3").await.unwrap().is_some());
    store.close().await;
}

/// A write whose closure is given as a box, to queue several of different closures.
type BoxedWrite = Box<dyn FnOnce(&mut dyn crate::WriteTx) -> crate::Result<Option<String>> + Send>;

/// Queues `work` on `store` and waits until it is queued before the caller gives the next one (the
/// order of a group).
async fn queued(store: &Store, work: BoxedWrite) -> tokio::task::JoinHandle<crate::Result<Option<String>>> {
    let store = store.clone();
    let task = tokio::spawn(async move { store.write(work).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_of_an_earlier_write_found_by_a_later_writes_read_undoes_that_write_alone() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.write(|tx| lead_write(tx, 1)).await.unwrap();
    // The writer is held inside a write while three more queue up, so that they share one group.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (entered, writer_held) = std::sync::mpsc::channel::<()>();
    let held = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(move |_| -> crate::Result<()> {
                    entered.send(()).unwrap();
                    gate.recv_timeout(std::time::Duration::from_secs(30)).ok();
                    Ok(())
                })
                .await
        }
    });
    tokio::task::spawn_blocking(move || writer_held.recv().unwrap()).await.unwrap();
    // 00Q1 exists: this insert fails when its statements are sent, which is with the next write's read.
    let taken = queued(&store, Box::new(|tx| lead_write(tx, 1).map(|()| None))).await;
    let reader = queued(
        &store,
        Box::new(|tx| {
            let seen = tx.record("Lead", "00Q1")?.map(|record| record.data["LastName"].to_string());
            let data = serde_json::json!({"LastName": "Reads"}).as_object().unwrap().clone();
            tx.insert_record("Lead", "00Q5", &data, "t0")?;
            Ok(seen)
        }),
    )
    .await;
    let last = queued(&store, Box::new(|tx| lead_write(tx, 3).map(|()| None))).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    let refused = taken.await.unwrap().unwrap_err().to_string();
    assert!(refused.contains("duplicate key") && refused.contains("00Q1"), "{refused}");
    assert_eq!(
        reader.await.unwrap().unwrap().as_deref(),
        Some("\"Ng\""),
        "the read was answered, not refused"
    );
    assert_eq!(last.await.unwrap().unwrap(), None);
    assert!(store.record("Lead", "00Q5").await.unwrap().is_some(), "the reading write committed");
    assert!(store.run("r3").await.unwrap().is_some(), "the last write committed");
    assert_eq!(
        store.run("r1").await.unwrap().unwrap().state,
        serde_json::json!({"k": 0}),
        "nothing of the refused write kept"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reads_waits_for_the_readers_the_settings_allow_instead_of_opening_more() {
    let Some(scratch) = scratch_database() else { return };
    let options = crate::OpenOptions { connections: 4, ..crate::OpenOptions::default() };
    let store = Store::open_with(Path::new(&scratch.url), options).await.unwrap();
    store.write(|tx| tx.set_meta("k", "v")).await.unwrap();
    let reads: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.meta("k").await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap().as_deref(), Some("v"));
    }
    // Counted from another connection, which is not the store's.
    let url = scratch.url.clone();
    let database = url.rsplit('/').next().unwrap().to_string();
    let opened = tokio::task::spawn_blocking(move || {
        let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'herald%'",
                &[&database],
            )
            .unwrap();
        row.get::<_, i64>(0)
    })
    .await
    .unwrap();
    assert!(opened <= 4, "the writer, the listener and at most two readers: {opened} connections");
    store.close().await;
}

#[test]
fn a_scratch_database_left_by_a_process_that_ended_is_dropped_by_the_next_with_its_prefix() {
    let Some(scratch) = scratch_database() else { return };
    let server = scratch.url.clone();
    let mut admin = server.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
    // No process has this id (above the largest Linux allows, 2^22), so its database is a leftover.
    let leftover = "herald_leftover_4194305_0_1";
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {leftover}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {leftover}")).unwrap();
    let exists = |admin: &mut postgres::Client| {
        admin
            .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&leftover])
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(exists(&mut admin), 1);
    let next = super::ScratchDatabase::create_on(&server, "herald_leftover").unwrap();
    assert_eq!(exists(&mut admin), 0, "dropped when the next database of its prefix was made");
    drop(next);
}

/// Reads `read` until it answers as `expected` (a notice from another connection takes a moment).
async fn eventually<T: PartialEq + std::fmt::Debug, F: std::future::Future<Output = T>>(
    expected: T,
    read: impl Fn() -> F,
) {
    let mut last = read().await;
    for _ in 0..500 {
        if last == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        last = read().await;
    }
    assert_eq!(last, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_secrets_read_on_every_lead_cost_no_round_trip_until_any_node_changes_them() {
    let Some(scratch) = scratch_database() else { return };
    let (node, other) = (
        Store::open(Path::new(&scratch.url)).await.unwrap(),
        Store::open(Path::new(&scratch.url)).await.unwrap(),
    );
    node.write(|tx| {
        tx.create_user("u1", "webform", &["Herald_API_User".to_string()], "t0")?;
        tx.create_token("tok1", "u1", "hash1", "t0")?;
        tx.create_token("tok2", "u1", "hash2", "t0")?;
        tx.upsert_secret("Kixie", "P", "", &sealed("apikey", b"one"), "t0")
    })
    .await
    .unwrap();
    let user_of = |store: &Store| {
        let store = store.clone();
        move || {
            let store = store.clone();
            async move { store.user_by_token_hash("hash1").await.unwrap().map(|user| user.name) }
        }
    };
    // Once the node hears changes, what it read once is answered from memory.
    let kept = || async {
        let first = node.user_by_token_hash("hash1").await.unwrap();
        let before = node.round_trips().unwrap();
        let again = node.user_by_token_hash("hash1").await.unwrap();
        let secrets = node.secrets("Kixie", "P", "").await.unwrap();
        let _ = node.secrets("Kixie", "P", "").await.unwrap();
        (first == again && secrets.len() == 1, node.round_trips().unwrap() - before)
    };
    eventually((true, 0), kept).await;

    // Another node revokes one token: this node stops accepting it once that commits, and not the other.
    assert!(node.user_by_token_hash("hash2").await.unwrap().is_some());
    other.write(|tx| tx.revoke_token("tok2", "t1")).await.unwrap();
    let second_token_user = || {
        let node = node.clone();
        async move { node.user_by_token_hash("hash2").await.unwrap().map(|user| user.name) }
    };
    eventually(None, second_token_user).await;
    assert_eq!(user_of(&node)().await.as_deref(), Some("webform"));

    // Another node deactivates the user: this node stops accepting its token once that commits.
    other.write(|tx| tx.deactivate_user("webform")).await.unwrap();
    eventually(None, user_of(&node)).await;

    // A secret set through this node is read back new at once, not as it was kept.
    node.write(|tx| tx.upsert_secret("Kixie", "P", "", &sealed("apikey", b"two"), "t1")).await.unwrap();
    let read = node.secrets("Kixie", "P", "").await.unwrap();
    assert_eq!(read[0].ciphertext, b"two".to_vec());
    // ...and through the other node, once that commits.
    other.write(|tx| tx.upsert_secret("Kixie", "P", "", &sealed("apikey", b"three"), "t2")).await.unwrap();
    let node_secrets = || {
        let node = node.clone();
        async move { node.secrets("Kixie", "P", "").await.unwrap()[0].ciphertext.clone() }
    };
    eventually(b"three".to_vec(), node_secrets).await;
    node.close().await;
    other.close().await;
}

fn sealed(parameter: &str, ciphertext: &[u8]) -> SealedSecret {
    SealedSecret {
        parameter: parameter.into(),
        key_id: None,
        nonce: vec![0; 12],
        ciphertext: ciphertext.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reads_its_record_and_the_records_waiting_runs_in_one_round_trip() {
    let Some(scratch) = scratch_database() else { return };
    let store = Store::open(Path::new(&scratch.url)).await.unwrap();
    store.write(|tx| lead_write(tx, 1)).await.unwrap();
    let update = |tx: &mut dyn crate::WriteTx| {
        let record = tx.record("Lead", "00Q1")?.expect("the record");
        tx.update_record("00Q1", &record.data, "t2")?;
        tx.waiting_runs_of_record("00Q1")
    };
    // The first time prepares its statements.
    store.write(update).await.unwrap();
    let before = store.round_trips().unwrap();
    let waiting = store.write(update).await.unwrap();
    assert!(waiting.is_empty());
    assert_eq!(
        store.round_trips().unwrap() - before,
        2,
        "the record and its waiting runs together, then the update with COMMIT"
    );
    store.close().await;
}
