//! The backend conformance suite: the behaviour the engine relies on, checked against any backend.
//!
//! A backend's tests call [`conformance_tests!`](crate::conformance_tests) with an expression that
//! gives a fresh, empty [`Database`]; the macro writes one test per contract below, named as the
//! contract reads. The SQLite backend runs it in `sqlite/tests.rs`; a PostgreSQL backend runs the same
//! suite on a database of its own. A test of a backend's own mechanics (SQLite's WAL, its migrations
//! from an older herald) stays with that backend.
//!
//! Adding a contract: write `pub async fn <sentence>(database: &Database)` here and add its name to
//! the list in the macro at the end of this file.
//!
//! Compiled for this crate's tests, and for other crates with the `conformance` feature.

use crate::{
    ACTIVE_KEY_META, BoxFuture, Bucket, ConsentRow, Created, CreatedCount, MasterRetirement, MessageChange,
    MessageFilter, NewMessage, NewReceipt, NewRun, Result, RunQuery, RunRow, RunStatus, SealedSecret,
    SessionRow, Store, StoreError, VaultNode,
};
use serde_json::{Map, Value, json};
use std::any::Any;

/// An empty database for one test: how to open a store on it (again, after closing it), and whatever
/// keeps it alive until the test ends (a temporary directory, a scratch schema).
pub struct Database {
    open: Box<dyn Fn() -> BoxFuture<'static, Store> + Send + Sync>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Database {
    pub fn new(
        open: impl Fn() -> BoxFuture<'static, Store> + Send + Sync + 'static,
        keep: impl Any + Send + Sync,
    ) -> Database {
        Database { open: Box::new(open), _keep: Box::new(keep) }
    }

    /// A store on this database; each call opens it anew.
    pub async fn open(&self) -> Store {
        (self.open)().await
    }
}

fn record() -> Map<String, Value> {
    json!({"LastName": "Ng", "Phone": "+6591111111"}).as_object().unwrap().clone()
}

/// A record `id` of `Lead` with one run `run` of it, committed.
async fn lead_with_run(store: &Store, id: &str, run: &str) {
    let (id, run) = (id.to_string(), run.to_string());
    store
        .write(move |tx| {
            tx.insert_record("Lead", &id, &record(), "t0")?;
            let state = json!({"k": 1});
            tx.insert_run(
                NewRun {
                    id: &run,
                    flow: "F",
                    object: "Lead",
                    record_id: &id,
                    state: &state,
                    version: None,
                    owner: None,
                },
                "t0",
            )
        })
        .await
        .unwrap();
}

pub async fn a_record_and_its_runs_commit_together(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    assert_eq!(store.record("Lead", "00Q1").await.unwrap().unwrap().data, record());
    assert!(store.record("Contact", "00Q1").await.unwrap().is_none(), "a record is found under its object");
    let runs = store.runs_for_record("00Q1").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status, runs[0].state.clone()), (RunStatus::Ready, json!({"k": 1})));
    assert!(store.claim_run("r1", "node-a", "t1").await.unwrap().is_some());
    assert!(store.claim_run("r1", "node-a", "t1").await.unwrap().is_none(), "a run is claimed once");
}

pub async fn a_record_written_twice_under_one_id_is_refused(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    let again: Result<()> = store.write(|tx| tx.insert_record("Lead", "00Q1", &record(), "t1")).await;
    assert!(again.is_err(), "{again:?}");
}

pub async fn an_update_reads_the_prior_values_and_replaces_them_in_one_write(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    let prior = store
        .write(|tx| {
            let prior = tx.record("Lead", "00Q1")?.ok_or_else(|| StoreError::Missing("00Q1".into()))?;
            let mut data = prior.data.clone();
            data.insert("LastName".into(), json!("Tan"));
            tx.update_record("00Q1", &data, "t1")?;
            assert_eq!(tx.record("Lead", "00Q1")?.unwrap().data["LastName"], "Tan", "a write sees itself");
            Ok::<_, StoreError>(prior)
        })
        .await
        .unwrap();
    assert_eq!(prior.data["LastName"], "Ng");
    assert_eq!(store.record("Lead", "00Q1").await.unwrap().unwrap().data["LastName"], "Tan");
}

pub async fn a_deleted_record_is_gone_its_runs_stay_and_another_objects_record_is_spared(
    database: &Database,
) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    lead_with_run(&store, "00Q2", "r2").await;
    let deleted = store
        .write(|tx| {
            let other_object = tx.delete_record("Contact", "00Q1")?;
            let deleted = tx.delete_record("Lead", "00Q1")?;
            assert!(tx.record("Lead", "00Q1")?.is_none(), "a write sees its own delete");
            let again = tx.delete_record("Lead", "00Q1")?;
            Ok::<_, StoreError>((other_object, deleted, again))
        })
        .await
        .unwrap();
    assert_eq!(deleted, (false, true, false), "only a record of the object named is deleted, once");
    assert!(store.record("Lead", "00Q1").await.unwrap().is_none());
    assert!(store.record("Lead", "00Q2").await.unwrap().is_some(), "the other record is spared");
    assert_eq!(store.runs_for_record("00Q1").await.unwrap().len(), 1, "the deleted record's runs stay");
    let rolled_back: Result<()> = store
        .write(|tx| {
            tx.delete_record("Lead", "00Q2")?;
            Err(StoreError::Missing("on purpose".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(store.record("Lead", "00Q2").await.unwrap().is_some(), "a failed write deletes nothing");
}

pub async fn records_are_listed_and_selected_in_creation_order_with_only_the_fields_asked(
    database: &Database,
) {
    let store = database.open().await;
    for id in ["00Q3", "00Q1", "00Q2"] {
        lead_with_run(&store, id, &format!("r{id}")).await;
    }
    let ids = |records: Vec<crate::StoredRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.records_of("Lead", 10).await.unwrap()), ["00Q3", "00Q1", "00Q2"]);
    assert_eq!(ids(store.records_of("Lead", 2).await.unwrap()), ["00Q3", "00Q1"]);
    let mut seen = 0;
    let kept = store
        .select_records("Lead", Some(vec!["Phone".into()]), false, move |record| {
            seen += 1;
            (seen != 2).then_some(record)
        })
        .await
        .unwrap();
    assert_eq!(kept, vec![json!({"Phone": "+6591111111"}).as_object().unwrap().clone(); 2]);
    let first = store.select_records("Lead", None, true, Some).await.unwrap();
    assert_eq!(first, [record()], "with first_only, reading stops at the first record kept");
}

pub async fn a_waiting_run_is_claimed_only_once_due(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q3", "r3").await;
    store
        .write(|tx| tx.wait_run("r3", r#"{"k":2}"#, "2026-11-21T10:00:00.000000Z", "retrying", "t0"))
        .await
        .unwrap();
    let waiting = store.waiting_runs().await.unwrap();
    assert_eq!(waiting, [("r3".to_string(), "2026-11-21T10:00:00.000000Z".to_string())]);
    let parked = store.run("r3").await.unwrap().unwrap();
    assert_eq!((parked.status, parked.fault.as_deref()), (RunStatus::Waiting, Some("retrying")));
    assert!(
        store.claim_run("r3", "node-a", "2026-11-21T09:59:59.999999Z").await.unwrap().is_none(),
        "not due yet"
    );
    let claimed = store.claim_run("r3", "node-a", "2026-11-21T10:00:00.000001Z").await.unwrap().unwrap();
    assert_eq!((claimed.status, claimed.next_attempt_at), (RunStatus::Running, None));
    assert_eq!(claimed.state, json!({"k": 2}));
    assert!(
        store.claim_run("r3", "node-a", "2026-11-21T10:00:01.000000Z").await.unwrap().is_none(),
        "claimed once"
    );
}

pub async fn a_run_inserted_waiting_commits_with_its_record_and_is_claimed_only_once_due(
    database: &Database,
) {
    let store = database.open().await;
    let due = "2026-11-21T10:00:00.000000Z";
    let failed: Result<()> = store
        .write(|tx| {
            tx.insert_record("Lead", "00Q5", &record(), "t0")?;
            let state = json!({"path": "Later"});
            let run = NewRun {
                id: "w1",
                flow: "F",
                object: "Lead",
                record_id: "00Q5",
                state: &state,
                version: None,
                owner: None,
            };
            tx.insert_waiting_run(run, due, "due later", "t0")?;
            Err(StoreError::Stopped("the write is given up".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(store.run("w1").await.unwrap().is_none(), "a waiting run commits with its write or not at all");
    store
        .write(|tx| {
            tx.insert_record("Lead", "00Q5", &record(), "t0")?;
            let state = json!({"path": "Later"});
            let run = NewRun {
                id: "w1",
                flow: "F",
                object: "Lead",
                record_id: "00Q5",
                state: &state,
                version: None,
                owner: None,
            };
            tx.insert_waiting_run(run, due, "due later", "t0")
        })
        .await
        .unwrap();
    let run = store.run("w1").await.unwrap().unwrap();
    assert_eq!((run.status, run.fault.as_deref()), (RunStatus::Waiting, Some("due later")));
    assert_eq!(run.next_attempt_at.as_deref(), Some(due));
    assert!(store.waiting_runs().await.unwrap().contains(&("w1".to_string(), due.to_string())));
    assert!(
        store.claim_run("w1", "node-a", "2026-11-21T09:59:59.000000Z").await.unwrap().is_none(),
        "not due yet"
    );
    assert!(store.claim_run("w1", "node-a", "2026-11-21T10:00:00.000001Z").await.unwrap().is_some());
}

pub async fn the_waiting_runs_of_a_record_are_read_inside_a_write(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q6", "ready").await;
    let waiting = store
        .write(|tx| {
            // Read first, as an update does: what the write changes afterwards is still seen.
            assert!(tx.record("Lead", "00Q6")?.is_some());
            let state = json!({});
            for (id, at) in [("w2", "2026-11-21T11:00:00.000000Z"), ("w3", "2026-11-21T12:00:00.000000Z")] {
                let run = NewRun {
                    id,
                    flow: "F",
                    object: "Lead",
                    record_id: "00Q6",
                    state: &state,
                    version: None,
                    owner: None,
                };
                tx.insert_waiting_run(run, at, "due later", "t1")?;
            }
            tx.wait_run("w3", "{}", "2026-11-21T13:00:00.000000Z", "moved", "t2")?;
            tx.waiting_runs_of_record("00Q6")
        })
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>)> =
        waiting.iter().map(|r| (r.id.as_str(), r.next_attempt_at.as_deref())).collect();
    assert_eq!(
        seen,
        [("w2", Some("2026-11-21T11:00:00.000000Z")), ("w3", Some("2026-11-21T13:00:00.000000Z"))],
        "only waiting runs, with the change made earlier in the same write"
    );
    let other: Vec<RunRow> = store.write(|tx| tx.waiting_runs_of_record("00Q1")).await.unwrap();
    assert!(other.is_empty());
}

pub async fn a_skipped_run_is_an_end_state_listed_by_its_status(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q7", "s1").await;
    store
        .write(|tx| tx.save_run("s1", RunStatus::Skipped, "{}", Some("no longer meets"), "t1"))
        .await
        .unwrap();
    assert!(RunStatus::Skipped.is_terminal());
    assert_eq!(RunStatus::parse_list("skipped").unwrap(), [RunStatus::Skipped]);
    let listed = store.recent_runs(&[RunStatus::Skipped], 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["s1"]);
    assert!(store.claim_run("s1", "node-a", "t2").await.unwrap().is_none(), "an ended run is never claimed");
}

pub async fn of_many_concurrent_claims_of_a_run_exactly_one_takes_it(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    // A second store on the same database stands for a second herald process.
    let other = database.open().await;
    let claims: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 { store.clone() } else { other.clone() };
            tokio::spawn(async move { store.claim_run("r1", "node-a", "t1").await })
        })
        .collect();
    let mut taken = 0;
    for claim in claims {
        // A claim that met the other process's lock may be refused as busy: it did not take the run.
        match claim.await.unwrap() {
            Ok(Some(_)) => taken += 1,
            Ok(None) | Err(StoreError::Busy(_)) => {}
            Err(error) => panic!("a claim failed: {error}"),
        }
    }
    assert_eq!(taken, 1);
    other.close().await;
}

pub async fn a_saved_run_keeps_its_state_and_status_and_listings_order_runs(database: &Database) {
    let store = database.open().await;
    lead_with_run(&store, "00Q1", "r1").await;
    lead_with_run(&store, "00Q2", "r2").await;
    store.save_run("r1", RunStatus::Failed, r#"{"k":9}"#, Some("boom"), "t5").await.unwrap();
    let run = store.run("r1").await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.state, run.fault.as_deref()),
        (RunStatus::Failed, json!({"k": 9}), Some("boom"))
    );
    assert_eq!(run.updated_at, "t5");
    let ids = |runs: Vec<crate::RunRow>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.runs_with_status(&[RunStatus::Ready], 10).await.unwrap()), ["r2"]);
    assert_eq!(
        ids(store.runs_with_status(&[RunStatus::Ready, RunStatus::Failed], 10).await.unwrap()),
        ["r1", "r2"]
    );
    assert_eq!(ids(store.recent_runs(&[], 10).await.unwrap()), ["r1", "r2"], "equal times: by id");
    assert_eq!(ids(store.recent_runs(&[RunStatus::Failed], 10).await.unwrap()), ["r1"]);
    let stale = store.ready_runs_untouched_since("t1", 10).await.unwrap();
    assert_eq!(stale.iter().map(|run| run.id.as_str()).collect::<Vec<_>>(), ["r2"]);
    assert!(
        store.ready_runs_untouched_since("t0", 10).await.unwrap().is_empty(),
        "touched at t0, not before"
    );
}

pub async fn users_are_found_by_token_and_carry_their_permission_sets(database: &Database) {
    let store = database.open().await;
    store
        .create_user("005a", "ada", &["Kixie_Integration_User".into(), "Herald_API_User".into()], "t0")
        .await
        .unwrap();
    assert!(store.create_user("005b", "ada", &[], "t0").await.is_err(), "names are unique");
    store.create_token("tok1", "005a", "hash1", "t0").await.unwrap();
    let user = store.user_by_token_hash("hash1").await.unwrap().unwrap();
    assert_eq!(user.name, "ada");
    assert_eq!(user.permission_sets, ["Herald_API_User", "Kixie_Integration_User"]);
    assert!(store.user_by_token_hash("other").await.unwrap().is_none());
    assert_eq!(store.user_by_name("ada").await.unwrap(), Some(user.clone()));
    assert_eq!(store.user("005a").await.unwrap(), Some(user.clone()));
    assert_eq!(store.users().await.unwrap(), [user]);
}

pub async fn a_deactivated_user_is_not_found_and_its_tokens_stop_working(database: &Database) {
    let store = database.open().await;
    store.create_user("005a", "ada", &[], "t0").await.unwrap();
    store.create_token("tok1", "005a", "hash1", "t0").await.unwrap();
    assert!(store.deactivate_user("ada").await.unwrap());
    assert!(!store.deactivate_user("ada").await.unwrap(), "no active user of that name any more");
    assert!(store.user_by_token_hash("hash1").await.unwrap().is_none());
    assert!(store.user_by_name("ada").await.unwrap().is_none());
    assert!(store.users().await.unwrap().is_empty());
}

pub async fn a_revoked_token_stops_authenticating_and_stays_listed_with_when_it_was_revoked(
    database: &Database,
) {
    let store = database.open().await;
    store.create_user("005a", "ada", &[], "t0").await.unwrap();
    store.create_token("tok1", "005a", "hash1", "t1").await.unwrap();
    store.create_token("tok2", "005a", "hash2", "t2").await.unwrap();
    assert!(store.user_by_token_hash("hash1").await.unwrap().is_some(), "read before the revocation");
    assert!(store.revoke_token("tok1", "t3").await.unwrap());
    assert!(!store.revoke_token("tok1", "t4").await.unwrap(), "a revoked token is not revoked again");
    assert!(!store.revoke_token("tok9", "t4").await.unwrap(), "no such token");
    assert!(store.user_by_token_hash("hash1").await.unwrap().is_none(), "the revoked token finds no one");
    assert_eq!(
        store.user_by_token_hash("hash2").await.unwrap().unwrap().name,
        "ada",
        "the other still works"
    );
    let tokens = store.tokens().await.unwrap();
    let listed: Vec<(&str, &str, bool, Option<&str>)> = tokens
        .iter()
        .map(|t| (t.id.as_str(), t.created_at.as_str(), t.revoked, t.revoked_at.as_deref()))
        .collect();
    assert_eq!(listed, [("tok1", "t1", true, Some("t3")), ("tok2", "t2", false, None)]);
    assert!(tokens.iter().all(|t| t.user_id == "005a"));
}

pub async fn every_user_is_listed_active_or_deactivated_with_its_sets_and_whether_it_has_a_password(
    database: &Database,
) {
    let store = database.open().await;
    store.create_user("005b", "bob", &["Z_Set".into(), "A_Set".into()], "t0").await.unwrap();
    store.create_user("005a", "ada", &[], "t1").await.unwrap();
    store.set_password_hash("005b", "$argon2id$hash", "t2").await.unwrap();
    assert!(store.deactivate_user("ada").await.unwrap());
    let accounts = store.accounts().await.unwrap();
    let listed: Vec<(&str, bool, bool, &str)> =
        accounts.iter().map(|a| (a.name.as_str(), a.active, a.has_password, a.created_at.as_str())).collect();
    assert_eq!(listed, [("ada", false, false, "t1"), ("bob", true, true, "t0")]);
    assert_eq!(accounts[1].permission_sets, ["A_Set", "Z_Set"]);
    assert_eq!(accounts[1].id, "005b");
}

pub async fn a_password_hash_is_kept_per_user_and_replaced_by_the_next(database: &Database) {
    let store = database.open().await;
    store.create_user("005a", "ada", &[], "t0").await.unwrap();
    store.create_user("005b", "bob", &[], "t0").await.unwrap();
    store.set_password_hash("005a", "$argon2id$first", "t1").await.unwrap();
    assert_eq!(store.password_hash("005a").await.unwrap().as_deref(), Some("$argon2id$first"));
    store.set_password_hash("005a", "$argon2id$second", "t2").await.unwrap();
    assert_eq!(store.password_hash("005a").await.unwrap().as_deref(), Some("$argon2id$second"));
    assert_eq!(store.password_hash("005b").await.unwrap(), None, "bob set no password");
}

pub async fn a_session_is_found_by_its_hash_until_deleted_and_expired_ones_are_swept(database: &Database) {
    let store = database.open().await;
    store.create_user("005a", "ada", &[], "t0").await.unwrap();
    let session = |created: &str, expires: &str| SessionRow {
        user_id: "005a".into(),
        csrf_token: format!("csrf-{created}"),
        created_at: created.into(),
        expires_at: expires.into(),
    };
    store.create_session("old", &session("t1", "t3")).await.unwrap();
    store.create_session("live", &session("t2", "t9")).await.unwrap();
    assert_eq!(store.session("live").await.unwrap(), Some(session("t2", "t9")));
    assert_eq!(store.session("old").await.unwrap(), Some(session("t1", "t3")), "expired later");
    store.create_session("newer", &session("t4", "t9")).await.unwrap();
    assert_eq!(store.session("old").await.unwrap(), None, "expired by t4, swept by the next sign-in");
    assert!(store.delete_session("live").await.unwrap());
    assert!(!store.delete_session("live").await.unwrap(), "deleted once");
    assert_eq!(store.session("live").await.unwrap(), None);
    assert!(store.session("newer").await.unwrap().is_some());
}

pub async fn a_failed_write_leaves_nothing_and_spares_the_writes_it_was_grouped_with(database: &Database) {
    let store = database.open().await;
    // Queued together, so a backend that groups writes puts them in one transaction.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.insert_record("Lead", &format!("00Q{i}"), &record(), "t0")?;
                        if i % 2 == 1 {
                            return Err(StoreError::Missing(format!("test failure {i}")));
                        }
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for write in writes {
        outcomes.push(write.await.unwrap());
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_ok(), i % 2 == 0, "write {i}: {outcome:?}");
        let kept = store.record("Lead", &format!("00Q{i}")).await.unwrap();
        assert_eq!(kept.is_some(), i % 2 == 0, "record of write {i}");
    }
}

pub async fn a_panicking_write_is_rolled_back_and_the_writer_goes_on(database: &Database) {
    let store = database.open().await;
    let outcome: Result<()> = store
        .write(|tx| {
            tx.insert_record("Lead", "00QP", &record(), "t0")?;
            panic!("a bug in a write");
        })
        .await;
    assert!(matches!(outcome, Err(StoreError::Stopped(_))), "{outcome:?}");
    assert!(store.record("Lead", "00QP").await.unwrap().is_none());
    store.write(|tx| tx.insert_record("Lead", "00QQ", &record(), "t0")).await.unwrap();
    assert!(store.record("Lead", "00QQ").await.unwrap().is_some());
}

pub async fn writes_queued_before_close_are_committed_and_later_ones_refused(database: &Database) {
    let store = database.open().await;
    let pending: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.write(move |tx| tx.insert_record("Lead", &format!("00Q{i}"), &record(), "t0")).await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    for write in pending {
        write.await.unwrap().unwrap();
    }
    store.close().await;
    let refused = store.set_meta("k", "v").await;
    assert!(matches!(refused, Err(StoreError::Stopped(_))), "{refused:?}");
    let reopened = database.open().await;
    assert_eq!(reopened.records_of("Lead", 100).await.unwrap().len(), 50);
}

pub async fn meta_values_are_set_replaced_and_deleted(database: &Database) {
    let store = database.open().await;
    assert!(store.meta("k").await.unwrap().is_none());
    store.set_meta("k", "1").await.unwrap();
    store.set_meta("k", "2").await.unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("2"));
    store.write(|tx| tx.delete_meta("k")).await.unwrap();
    assert!(store.meta("k").await.unwrap().is_none());
}

fn message(id: &str, key: &str, position: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        run_id: Some("r1".into()),
        element: Some("Send".into()),
        idempotency_key: key.into(),
        position,
        provider: "p".into(),
        named_credential: "NC".into(),
        channel: "sms".into(),
        destination: format!("+659111111{position}"),
        sender: None,
        client_message_id: Some(format!("c-{id}")),
        encoding: None,
        segments: None,
        status: "pending".into(),
        history: json!([]),
    }
}

pub async fn runs_are_paged_newest_first_each_page_after_the_last_run_of_the_one_before(database: &Database) {
    let store = database.open().await;
    // Two runs share each time, so that a page boundary falls between equal times.
    for (run, at) in [("a", "t1"), ("b", "t1"), ("c", "t2"), ("d", "t2"), ("e", "t3")] {
        owned_run(&store, run, None, at).await;
    }
    store.save_run("c", RunStatus::Failed, "{}", Some("boom"), "t4").await.unwrap();
    let ids = |runs: Vec<crate::RunRow>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let mut query = RunQuery { limit: 2, ..RunQuery::default() };
    let mut pages = Vec::new();
    loop {
        let page = store.runs_page(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.after = Some((last.created_at.clone(), last.id.clone()));
        pages.push(ids(page));
    }
    assert_eq!(pages, [vec!["e", "c"], vec!["d", "a"], vec!["b"]], "newest first, equal times by id");
    let failed = RunQuery { statuses: vec![RunStatus::Failed], limit: 10, ..RunQuery::default() };
    assert_eq!(ids(store.runs_page(&failed).await.unwrap()), ["c"]);
    let other_flow = RunQuery { flow: Some("G".into()), limit: 10, ..RunQuery::default() };
    assert!(store.runs_page(&other_flow).await.unwrap().is_empty());
    let flow = RunQuery {
        flow: Some("F".into()),
        statuses: vec![RunStatus::Ready],
        after: Some(("t2".into(), "c".into())),
        limit: 10,
    };
    assert_eq!(ids(store.runs_page(&flow).await.unwrap()), ["d", "a", "b"]);
}

pub async fn rows_created_are_counted_per_minute_and_per_hour_by_object_or_status(database: &Database) {
    let store = database.open().await;
    for (run, at) in [
        ("a", "2026-12-03T15:04:05.000001Z"),
        ("b", "2026-12-03T15:04:59.999999Z"),
        ("c", "2026-12-03T15:05:00.000000Z"),
        ("d", "2026-12-03T16:00:00.000000Z"),
        ("old", "2026-12-03T14:59:59.999999Z"),
    ] {
        owned_run(&store, run, None, at).await;
    }
    store.save_run("b", RunStatus::Failed, "{}", None, "2026-12-03T16:00:00.000000Z").await.unwrap();
    let since = "2026-12-03T15:00:00.000000Z";
    let counts = |rows: Vec<CreatedCount>| {
        rows.into_iter().map(|row| (row.bucket, row.key, row.count)).collect::<Vec<_>>()
    };
    let per_minute = store.created_per_bucket(Created::Runs, Bucket::Minute, since).await.unwrap();
    let owned = |rows: &[(&str, &str, i64)]| {
        rows.iter().map(|(b, k, c)| (b.to_string(), k.to_string(), *c)).collect::<Vec<_>>()
    };
    assert_eq!(
        counts(per_minute),
        owned(&[
            ("2026-12-03T15:04", "failed", 1),
            ("2026-12-03T15:04", "ready", 1),
            ("2026-12-03T15:05", "ready", 1),
            ("2026-12-03T16:00", "ready", 1),
        ])
    );
    let per_hour = store.created_per_bucket(Created::Records, Bucket::Hour, since).await.unwrap();
    assert_eq!(counts(per_hour), owned(&[("2026-12-03T15", "Lead", 3), ("2026-12-03T16", "Lead", 1)]));
}

pub async fn the_messages_of_records_created_in_a_period_come_with_the_records_creation(database: &Database) {
    let store = database.open().await;
    owned_run(&store, "r1", None, "2026-12-03T15:00:00.000000Z").await;
    owned_run(&store, "r2", None, "2026-12-03T15:30:00.000000Z").await;
    owned_run(&store, "r3", None, "2026-12-03T17:00:00.000000Z").await;
    for (id, run, at) in [
        ("m1", "r1", "2026-12-03T15:00:00.250000Z"),
        ("m2", "r2", "2026-12-03T15:30:00.100000Z"),
        ("m3", "r3", "2026-12-03T17:00:00.100000Z"),
    ] {
        let mut sent = message(id, &format!("k-{id}"), 0);
        sent.run_id = Some(run.to_string());
        sent.history = json!([{"status": "pending", "at": at, "source": "herald"}]);
        store.write(move |tx| tx.upsert_message(&sent, at)).await.unwrap();
    }
    let found =
        store.lead_messages("2026-12-03T15:00:00.000000Z", "2026-12-03T16:00:00.000000Z", 10).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|m| (m.record_id.as_str(), m.record_created_at.as_str(), m.message_created_at.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("00Qr2", "2026-12-03T15:30:00.000000Z", "2026-12-03T15:30:00.100000Z"),
            ("00Qr1", "2026-12-03T15:00:00.000000Z", "2026-12-03T15:00:00.250000Z"),
        ],
        "newest record first; the record at 17:00 is outside the period"
    );
    assert_eq!(found[0].history[0]["source"], "herald");
    assert_eq!(found[0].status, "pending");
    let newest = store.lead_messages("2026-12-03T00:00:00.000000Z", "2026-12-04T00:00:00.000000Z", 1).await;
    assert_eq!(newest.unwrap()[0].record_id, "00Qr3", "the limit keeps the newest");
}

pub async fn a_resent_message_counts_one_more_attempt_on_its_row(database: &Database) {
    let store = database.open().await;
    store
        .write(|tx| tx.upsert_message(&message("m1", "k1", 0), "2026-01-01T00:00:00.000000Z"))
        .await
        .unwrap();
    store
        .write(|tx| tx.upsert_message(&message("m1-again", "k1", 0), "2026-01-01T00:00:01.000000Z"))
        .await
        .unwrap();
    let rows = store.messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id.as_str(), rows[0].attempts), ("m1", 2));
    assert_eq!(
        store.messages_since("NC", "2026-01-01T00:00:00.000000Z").await.unwrap(),
        2,
        "each attempt was a call"
    );
    assert_eq!(store.messages_since("NC", "2026-01-02T00:00:00.000000Z").await.unwrap(), 0);
    assert_eq!(store.message("m1").await.unwrap().unwrap().client_message_id.as_deref(), Some("c-m1"));
}

pub async fn the_ledger_is_filtered_by_provider_and_channel_and_paged_newest_first_after_a_keyset(
    database: &Database,
) {
    let store = database.open().await;
    store
        .write(|tx| {
            for n in 0..7i64 {
                let mut row = message(&format!("m{n}"), &format!("k{n}"), 0);
                row.provider = if n % 2 == 0 { "kixie".into() } else { "twilio".into() };
                row.channel = if n == 6 { "whatsapp".into() } else { "sms".into() };
                // Two rows share each second: the id orders them.
                tx.upsert_message(&row, &format!("2026-01-01T00:00:0{}.000000Z", n / 2))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let ids = |rows: Vec<crate::MessageRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    let first = store.messages(&MessageFilter { limit: 3, ..MessageFilter::default() }).await.unwrap();
    assert_eq!(ids(first.clone()), ["m6", "m5", "m4"]);
    let last = first.last().unwrap();
    let after = Some((last.created_at.clone(), last.id.clone()));
    let second = store
        .messages(&MessageFilter { limit: 3, before: after.clone(), ..MessageFilter::default() })
        .await
        .unwrap();
    assert_eq!(ids(second), ["m3", "m2", "m1"], "the next page starts after the last row, ties by id");
    let kixie = MessageFilter { provider: Some("kixie".into()), limit: 10, ..MessageFilter::default() };
    assert_eq!(ids(store.messages(&kixie).await.unwrap()), ["m6", "m4", "m2", "m0"]);
    let kixie_sms = MessageFilter { channel: Some("sms".into()), before: after, ..kixie };
    assert_eq!(ids(store.messages(&kixie_sms).await.unwrap()), ["m2", "m0"]);
    let nobody = MessageFilter { provider: Some("vonage".into()), ..MessageFilter::default() };
    assert!(store.messages(&nobody).await.unwrap().is_empty());
}

pub async fn a_messages_receipts_are_listed_in_the_order_they_came_and_no_other_messages(
    database: &Database,
) {
    let store = database.open().await;
    store
        .write(|tx| {
            tx.upsert_message(&message("m1", "k1", 0), "t0")?;
            tx.upsert_message(&message("m2", "k2", 0), "t0")?;
            for (message_id, status, at) in
                [(Some("m1"), "sent", "t1"), (Some("m2"), "sent", "t1"), (None, "delivered", "t2")]
            {
                tx.insert_receipt(&NewReceipt {
                    webhook: "hook",
                    provider: "p",
                    kind: "status",
                    message_id,
                    provider_message_id: Some("pm1"),
                    client_message_id: None,
                    status: Some(status),
                    applied: message_id.is_some(),
                    body: "{}",
                    received_at: at,
                })?;
            }
            // The delivered receipt came before its message was known, and is matched later.
            let waiting = tx.unmatched_receipts("p", "pm1")?;
            tx.match_receipt(waiting[0].id, "m1", true)
        })
        .await
        .unwrap();
    let receipts = store.receipts_for_message("m1").await.unwrap();
    let seen: Vec<_> =
        receipts.iter().map(|r| (r.status.as_deref(), r.received_at.as_str(), r.applied)).collect();
    assert_eq!(seen, [(Some("sent"), "t1", true), (Some("delivered"), "t2", true)]);
    assert!(store.receipts_for_message("m3").await.unwrap().is_empty());
}

pub async fn an_objects_records_are_paged_newest_first_after_a_position(database: &Database) {
    let store = database.open().await;
    store
        .write(|tx| {
            for n in 0..5 {
                tx.insert_record("Lead", &format!("00Q{n}"), &record(), "t0")?;
                tx.insert_record("Task", &format!("00T{n}"), &record(), "t0")?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let ids = |page: &[crate::RecordAt]| page.iter().map(|at| at.record.id.clone()).collect::<Vec<_>>();
    let first = store.records_newest_first("Lead", None, 2).await.unwrap();
    assert_eq!(ids(&first), ["00Q4", "00Q3"]);
    assert_eq!(first[0].record.data, record());
    let second = store.records_newest_first("Lead", Some(first[1].position), 2).await.unwrap();
    assert_eq!(ids(&second), ["00Q2", "00Q1"]);
    let last = store.records_newest_first("Lead", Some(second[1].position), 2).await.unwrap();
    assert_eq!(ids(&last), ["00Q0"], "another object's records are not on its pages");
    assert!(store.records_newest_first("Contact", None, 2).await.unwrap().is_empty());
}

pub async fn the_pending_messages_of_an_attempt_are_answered_together(database: &Database) {
    let store = database.open().await;
    let moved = store
        .write(|tx| {
            for position in 0..3 {
                tx.upsert_message(&message(&format!("m{position}"), "k1", position), "t0")?;
            }
            tx.upsert_message(&message("other", "k2", 0), "t0")?;
            assert!(tx.attempt_all_pending("k1")?);
            tx.update_message(
                "m2",
                &MessageChange { status: Some("failed".into()), ..MessageChange::default() },
                "t1",
            )?;
            assert!(!tx.attempt_all_pending("k1")?);
            tx.answer_pending("k1", "sent", r#"{"status":"sent","at":"t2","source":"answer"}"#, "t2")
        })
        .await
        .unwrap();
    assert_eq!(moved, 2);
    let rows = store.write(|tx| tx.messages_of_attempt("k1")).await.unwrap();
    let statuses: Vec<_> = rows.iter().map(|row| (row.position, row.status.as_str())).collect();
    assert_eq!(statuses, [(0, "sent"), (1, "sent"), (2, "failed")]);
    assert_eq!(rows[0].history, json!([{"status": "sent", "at": "t2", "source": "answer"}]));
    assert_eq!(store.message("other").await.unwrap().unwrap().status, "pending");
}

pub async fn a_message_change_keeps_the_fields_it_does_not_set(database: &Database) {
    let store = database.open().await;
    store.write(|tx| tx.upsert_message(&message("m1", "k1", 0), "t0")).await.unwrap();
    let change = MessageChange {
        status: Some("delivered".into()),
        provider_message_id: Some("pm1".into()),
        price: Some("0.05".into()),
        ..MessageChange::default()
    };
    store.write(move |tx| tx.update_message("m1", &change, "t1")).await.unwrap();
    let later = MessageChange { error_code: Some("E1".into()), ..MessageChange::default() };
    store.write(move |tx| tx.update_message("m1", &later, "t2")).await.unwrap();
    let row = store.message("m1").await.unwrap().unwrap();
    assert_eq!(
        (
            row.status.as_str(),
            row.provider_message_id.as_deref(),
            row.price.as_deref(),
            row.error_code.as_deref()
        ),
        ("delivered", Some("pm1"), Some("0.05"), Some("E1"))
    );
    assert_eq!((row.destination, row.updated_at), (message("m1", "k1", 0).destination, "t2".to_string()));
}

pub async fn a_receipt_finds_its_message_by_provider_id_else_by_client_id(database: &Database) {
    let store = database.open().await;
    store
        .write(|tx| {
            tx.upsert_message(&message("m1", "k1", 0), "t0")?;
            tx.upsert_message(&message("m2", "k2", 0), "t0")?;
            let change =
                MessageChange { provider_message_id: Some("pm1".into()), ..MessageChange::default() };
            tx.update_message("m1", &change, "t1")?;
            assert_eq!(tx.find_message("p", Some("pm1"), Some("c-m2"))?.unwrap().id, "m1");
            assert_eq!(tx.find_message("p", Some("unknown"), Some("c-m2"))?.unwrap().id, "m2");
            assert!(tx.find_message("other", Some("pm1"), Some("c-m1"))?.is_none(), "ids are per provider");
            assert!(tx.find_message("p", None, None)?.is_none());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

fn receipt<'a>(provider_message_id: &'a str, body: &'a str) -> NewReceipt<'a> {
    NewReceipt {
        webhook: "hook",
        provider: "p",
        kind: "status",
        message_id: None,
        provider_message_id: Some(provider_message_id),
        client_message_id: None,
        status: Some("delivered"),
        applied: false,
        body,
        received_at: "t0",
    }
}

pub async fn receipts_wait_unmatched_until_their_message_is_known(database: &Database) {
    let store = database.open().await;
    let ids = store
        .write(|tx| {
            let first = tx.insert_receipt(&receipt("pm1", "a"))?;
            let second = tx.insert_receipt(&receipt("pm1", "b"))?;
            tx.insert_receipt(&receipt("pm2", "c"))?;
            Ok::<_, StoreError>((first, second))
        })
        .await
        .unwrap();
    assert!(ids.1 > ids.0, "receipt ids grow");
    assert_eq!(store.unmatched_status_receipts().await.unwrap(), 3);
    let waiting = store.write(|tx| tx.unmatched_receipts("p", "pm1")).await.unwrap();
    assert_eq!(waiting.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), ["a", "b"], "oldest first");
    store.write(|tx| tx.upsert_message(&message("m1", "k1", 0), "t0")).await.unwrap();
    store.write(move |tx| tx.match_receipt(ids.0, "m1", true)).await.unwrap();
    assert_eq!(store.unmatched_status_receipts().await.unwrap(), 2);
    let all = store.receipts(false, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), ["c", "b", "a"], "newest first");
    assert_eq!((all[2].message_id.as_deref(), all[2].applied), (Some("m1"), true));
    assert_eq!(store.receipts(true, 10).await.unwrap().len(), 2);
    assert_eq!(store.receipts(false, 1).await.unwrap().len(), 1);
}

fn consent(phone: &str, sender: &str, status: &str) -> ConsentRow {
    ConsentRow {
        phone: phone.into(),
        sender: sender.into(),
        status: status.into(),
        keyword: Some("STOP".into()),
        source: "hook".into(),
        updated_at: "t0".into(),
    }
}

pub async fn an_opt_in_lifts_the_opt_outs_whose_sender_was_unknown(database: &Database) {
    let store = database.open().await;
    store
        .write(|tx| {
            tx.set_consent(&consent("+6591", "", "opted_out"))?;
            tx.set_consent(&consent("+6591", "S1", "opted_out"))?;
            tx.set_consent(&consent("+6592", "", "opted_out"))?;
            tx.set_consent(&consent("+6592", "", "opted_in"))?;
            tx.lift_unknown_sender_opt_out("+6591", "t1")
        })
        .await
        .unwrap();
    let consents: Vec<_> =
        store.consents().await.unwrap().into_iter().map(|c| (c.phone, c.sender, c.status)).collect();
    let row =
        |phone: &str, sender: &str, status: &str| (phone.to_string(), sender.to_string(), status.to_string());
    assert_eq!(
        consents,
        [row("+6591", "", "opted_in"), row("+6591", "S1", "opted_out"), row("+6592", "", "opted_in")]
    );
}

pub async fn a_webhook_secret_hash_is_replaced_by_the_next(database: &Database) {
    let store = database.open().await;
    assert!(store.webhook_secret_hash("hook").await.unwrap().is_none());
    store.set_webhook_secret("hook", "h1", "t0").await.unwrap();
    store.set_webhook_secret("hook", "h2", "t1").await.unwrap();
    assert_eq!(store.webhook_secret_hash("hook").await.unwrap().as_deref(), Some("h2"));
}

pub async fn a_webhook_delivery_is_first_once_even_from_another_process_and_a_refused_write_notes_nothing(
    database: &Database,
) {
    let (one, other) = (database.open().await, database.open().await);
    let first = |store: &Store, digest: &'static str| {
        let store = store.clone();
        async move { store.write(move |tx| tx.first_delivery(digest, "hook", "t0")).await.unwrap() }
    };
    assert!(first(&one, "d1").await);
    assert!(!first(&one, "d1").await, "a replay is not first");
    assert!(!first(&other, "d1").await, "nor through another store on the same database");
    assert!(first(&other, "d2").await);
    // A delivery whose write fails after noting it was not applied, so it is not noted either.
    let failed: Result<()> = one
        .write(|tx| {
            tx.first_delivery("d3", "hook", "t0")?;
            Err(StoreError::Missing("the message".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(first(&one, "d3").await, "the failed delivery's retry is applied");
}

pub async fn secrets_are_upserted_per_parameter(database: &Database) {
    let store = database.open().await;
    let sealed = SealedSecret {
        parameter: "apikey".into(),
        key_id: None,
        nonce: vec![1; 24],
        ciphertext: vec![2; 40],
    };
    store.put_secret("X", "P", "", &sealed, "t0").await.unwrap();
    let again = SealedSecret { ciphertext: vec![3; 40], ..sealed.clone() };
    store.put_secret("X", "P", "", &again, "t1").await.unwrap();
    store.put_secret("X", "P", "005u1", &sealed, "t1").await.unwrap();
    let stored = store.secrets("X", "P", "").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].ciphertext, vec![3; 40]);
    assert_eq!(store.secrets("X", "P", "005u1").await.unwrap()[0].ciphertext, vec![2; 40]);
    assert_eq!(store.all_secrets().await.unwrap().len(), 2);
    let missing = store.put_secret("X", "P", "", &SealedSecret { key_id: Some(7), ..sealed }, "t2").await;
    assert!(matches!(missing, Err(StoreError::Missing(_))), "an unknown data key: {missing:?}");
}

pub async fn a_secret_is_listed_with_when_its_value_was_set_which_a_reseal_does_not_move(
    database: &Database,
) {
    let store = database.open().await;
    let value = |ciphertext: u8| SealedSecret {
        parameter: "apikey".into(),
        key_id: None,
        nonce: vec![1; 24],
        ciphertext: vec![ciphertext; 40],
    };
    store.put_secret("X", "P", "", &value(1), "t0").await.unwrap();
    store.put_secret("X", "P", "", &value(2), "t1").await.unwrap();
    store.put_secret("X", "P", "005u1", &value(3), "t2").await.unwrap();
    let placed = crate::PlacedSecret {
        external_credential: "X".into(),
        principal: "P".into(),
        user_id: String::new(),
        sealed: value(4),
    };
    store.write(move |tx| tx.reseal_secret(&placed, "t9")).await.unwrap();
    let settings = store.secret_settings().await.unwrap();
    let listed: Vec<(&str, &str, &str, &str, &str)> = settings
        .iter()
        .map(|s| {
            (
                s.external_credential.as_str(),
                s.principal.as_str(),
                s.user_id.as_str(),
                s.parameter.as_str(),
                s.set_at.as_str(),
            )
        })
        .collect();
    assert_eq!(listed, [("X", "P", "", "apikey", "t1"), ("X", "P", "005u1", "apikey", "t2")]);
    assert_eq!(store.secrets("X", "P", "").await.unwrap()[0].ciphertext, vec![4; 40], "the reseal was kept");
}

fn sealed(key_id: i64) -> SealedSecret {
    SealedSecret {
        parameter: "apikey".into(),
        key_id: Some(key_id),
        nonce: vec![1; 24],
        ciphertext: vec![2; 40],
    }
}

/// Two data keys (1, 2), both wrapped under master "m1"; 2 also under "m2", the newest.
async fn two_keys(database: &Database) -> Store {
    let store = database.open().await;
    let ids = store
        .write(|tx| {
            assert!(!tx.has_data_keys()?);
            tx.add_master("m1", "t0")?;
            let mut ids = Vec::new();
            for _ in 0..2 {
                let id = tx.insert_data_key("t0")?;
                tx.insert_wrap(id, "m1", &[id as u8; 56], "t0")?;
                ids.push(id);
            }
            tx.add_master("m2", "t1")?;
            tx.insert_wrap(ids[1], "m2", &[9; 56], "t1")?;
            tx.set_meta(ACTIVE_KEY_META, &ids[1].to_string())?;
            Ok::<_, StoreError>(ids)
        })
        .await
        .unwrap();
    assert_eq!(ids, [1, 2], "data keys are numbered from 1");
    store
}

pub async fn a_data_key_a_secret_uses_is_never_retired_and_nothing_is_sealed_under_a_retired_one(
    database: &Database,
) {
    let store = two_keys(database).await;
    assert!(store.has_data_keys().await.unwrap());
    store.put_secret("X", "P", "", &sealed(1), "t").await.unwrap();
    assert!(store.write(|tx| tx.retire_unused_data_keys(2, "t2")).await.unwrap().is_empty());
    assert_eq!(store.vault_summary().await.unwrap().secrets_on_old_keys, 1);

    store.put_secret("X", "P", "", &sealed(2), "t").await.unwrap();
    assert_eq!(store.write(|tx| tx.retire_unused_data_keys(2, "t2")).await.unwrap(), [1]);
    assert!(store.wraps_under("m1").await.unwrap().iter().all(|w| w.key_id == 2));
    let refused = store.put_secret("X", "P", "", &sealed(1), "t").await;
    assert!(matches!(refused, Err(StoreError::RetiredKey(1))), "{refused:?}");
    let keys = store.data_keys().await.unwrap();
    assert_eq!(keys[0].retired_at.as_deref(), Some("t2"), "a retired key keeps its row");
    assert_eq!((keys[1].secrets, keys[1].retired_at.clone()), (1, None));
    assert_eq!(store.write(|tx| tx.live_data_keys()).await.unwrap(), [2]);
    let summary = store.vault_summary().await.unwrap();
    assert_eq!((summary.live_data_keys, summary.live_masters, summary.secrets_on_old_keys), (1, 2, 0));
}

pub async fn a_master_key_is_retired_only_when_no_live_node_uses_it_and_nothing_needs_it(
    database: &Database,
) {
    let store = two_keys(database).await;
    // Data key 1 is wrapped under m1 alone: m1 is needed.
    assert_eq!(store.write(|tx| tx.retire_master("m1", "t5", "t9")).await.unwrap(), MasterRetirement::Needed);
    store.write(|tx| tx.insert_wrap(1, "m2", &[8; 56], "t1")).await.unwrap();
    // The newest master key is never retired.
    assert_eq!(store.write(|tx| tx.retire_master("m2", "t5", "t9")).await.unwrap(), MasterRetirement::Needed);
    let node = VaultNode {
        id: "n1".into(),
        pid: 7,
        host: "h".into(),
        master_id: "m1".into(),
        started_at: "t0".into(),
        seen_at: "t6".into(),
    };
    store.see_vault_node(&node, "t0").await.unwrap();
    let in_use = store.write(|tx| tx.retire_master("m1", "t5", "t9")).await.unwrap();
    assert_eq!(in_use, MasterRetirement::InUse(vec![node.clone()]));
    // Not seen since t5 any more: it no longer holds the key back.
    assert_eq!(
        store.write(|tx| tx.retire_master("m1", "t7", "t9")).await.unwrap(),
        MasterRetirement::Retired
    );
    assert!(store.wraps_under("m1").await.unwrap().is_empty());
    let masters = store.vault_masters().await.unwrap();
    assert_eq!(masters[0].retired_at.as_deref(), Some("t9"));
    assert_eq!(masters[1].wrapped_keys, 2);
    assert_eq!(store.vault_master("m2").await.unwrap().unwrap().wrapped_keys, 2);
    assert!(store.vault_master("m3").await.unwrap().is_none());
    assert_eq!(store.write(|tx| tx.newest_master()).await.unwrap().as_deref(), Some("m2"));
    // Nodes not seen for long are forgotten, and a stopping node takes itself away.
    store
        .see_vault_node(&VaultNode { id: "n2".into(), seen_at: "t8".into(), ..node.clone() }, "t7")
        .await
        .unwrap();
    assert_eq!(store.vault_nodes().await.unwrap().iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["n2"]);
    store.remove_vault_node("n2").await.unwrap();
    assert!(store.vault_nodes().await.unwrap().is_empty());
}

pub async fn a_reencryption_pages_through_the_secrets_not_under_the_active_key(database: &Database) {
    let store = two_keys(database).await;
    let legacy = SealedSecret { key_id: None, ..sealed(1) };
    for (principal, secret) in [("A", &sealed(1)), ("B", &legacy), ("C", &sealed(2)), ("D", &sealed(1))] {
        store.put_secret("X", principal, "", secret, "t").await.unwrap();
    }
    let principals =
        |rows: Vec<crate::SecretRow>| rows.into_iter().map(|r| r.placed.principal).collect::<Vec<_>>();
    let first = store.write(|tx| tx.secrets_not_under(2, 0, 2)).await.unwrap();
    let after = first.last().unwrap().row;
    assert_eq!(principals(first), ["A", "B"]);
    assert_eq!(principals(store.write(move |tx| tx.secrets_not_under(2, after, 2)).await.unwrap()), ["D"]);
    assert_eq!(principals(store.write(|tx| tx.legacy_secrets(0, 10)).await.unwrap()), ["B"]);
    let mut moved = store.write(|tx| tx.secrets_not_under(2, 0, 10)).await.unwrap();
    store
        .write(move |tx| {
            for row in &mut moved {
                row.placed.sealed = SealedSecret { ciphertext: vec![7; 40], ..sealed(2) };
                tx.reseal_secret(&row.placed, "t3")?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert!(store.write(|tx| tx.secrets_not_under(2, 0, 10)).await.unwrap().is_empty());
    assert_eq!(store.secrets("X", "B", "").await.unwrap()[0].ciphertext, vec![7; 40]);
}

/// One test per contract above, against the backend `$database` (an expression giving a future of a
/// fresh [`Database`](crate::conformance::Database)) opens.
pub async fn project_versions_are_numbered_in_order_found_by_hash_and_runs_keep_theirs(database: &Database) {
    let store = database.open().await;
    let add = |hash: &'static str, files: &'static str| {
        let store = store.clone();
        async move { store.write(move |tx| tx.add_project_version(hash, files, "t0")).await.unwrap() }
    };
    let first = add("aaa", r#"[["herald.toml","a"]]"#).await;
    let second = add("bbb", r#"[["herald.toml","b"]]"#).await;
    assert!(second > first, "a new version gets a greater number");
    assert_eq!(add("aaa", "ignored").await, first, "the same files are the same version");
    let stored = store.project_version(first).await.unwrap().unwrap();
    assert_eq!((stored.hash.as_str(), stored.files.as_str()), ("aaa", r#"[["herald.toml","a"]]"#));
    assert!(store.project_version(second + 1).await.unwrap().is_none());
    store
        .write(move |tx| {
            tx.insert_record("Lead", "00Qv", &record(), "t0")?;
            let state = json!({});
            let run = NewRun {
                id: "rv",
                flow: "F",
                object: "Lead",
                record_id: "00Qv",
                state: &state,
                version: Some(second),
                owner: None,
            };
            tx.insert_run(run, "t0")
        })
        .await
        .unwrap();
    assert_eq!(store.run("rv").await.unwrap().unwrap().version, Some(second));
    assert_eq!(
        store.claim_run("rv", "node-a", "t1").await.unwrap().unwrap().version,
        Some(second),
        "a claim returns it"
    );
    lead_with_run(&store, "00Qw", "rw").await;
    assert_eq!(store.runs_for_record("00Qw").await.unwrap()[0].version, None);
}

/// A run of `owner` (None: of no node), ready, under a record of its own.
async fn owned_run(store: &Store, id: &str, owner: Option<&str>, at: &str) {
    let (id, owner, at) = (id.to_string(), owner.map(String::from), at.to_string());
    store
        .write(move |tx| {
            let record_id = format!("00Q{id}");
            tx.insert_record("Lead", &record_id, &record(), &at)?;
            let state = json!({});
            let run = NewRun {
                id: &id,
                flow: "F",
                object: "Lead",
                record_id: &record_id,
                state: &state,
                version: None,
                owner: owner.as_deref(),
            };
            tx.insert_run(run, &at)
        })
        .await
        .unwrap();
}

async fn seen(store: &Store, node: &str, at: &str) {
    let node = VaultNode {
        id: node.into(),
        pid: 1,
        host: "h".into(),
        master_id: "m".into(),
        started_at: "t0".into(),
        seen_at: at.into(),
    };
    store.see_vault_node(&node, "t0").await.unwrap();
}

pub async fn a_node_takes_over_the_runs_of_a_node_no_longer_seen_and_each_goes_to_one_node(
    database: &Database,
) {
    let store = database.open().await;
    seen(&store, "alive", "t5").await;
    seen(&store, "gone", "t1").await;
    seen(&store, "n3", "t5").await;
    owned_run(&store, "r1", Some("alive"), "t1").await;
    owned_run(&store, "r2", Some("gone"), "t2").await;
    owned_run(&store, "r3", Some("gone"), "t3").await;
    owned_run(&store, "r4", None, "t4").await;
    owned_run(&store, "r5", Some("gone"), "t4").await;
    owned_run(&store, "r6", Some("n3"), "t4").await;
    // r3 was running on the node that went; r5 had ended.
    assert!(store.claim_run("r3", "gone", "t3").await.unwrap().is_some());
    store.save_run("r5", RunStatus::Finished, "{}", None, "t4").await.unwrap();

    let adopted = store.adopt_orphaned_runs("n3", "t3", 100).await.unwrap();
    let summary: Vec<_> = adopted.iter().map(|r| (r.id.as_str(), r.status, r.owner.as_deref())).collect();
    assert_eq!(
        summary,
        [
            ("r2", RunStatus::Ready, Some("n3")),
            ("r3", RunStatus::Running, Some("n3")),
            ("r4", RunStatus::Ready, Some("n3")),
        ],
        "the live node's runs, the ended run and n3's own run stay where they are"
    );
    assert_eq!(store.run("r1").await.unwrap().unwrap().owner.as_deref(), Some("alive"));
    assert!(store.adopt_orphaned_runs("n4", "t3", 100).await.unwrap().is_empty(), "n3 is alive");

    // Two nodes adopting at once split the orphans between them.
    for n in 0..20 {
        owned_run(&store, &format!("o{n}"), Some("gone"), "t6").await;
    }
    seen(&store, "n4", "t5").await;
    let (first, second) =
        tokio::join!(store.adopt_orphaned_runs("n3", "t3", 7), store.adopt_orphaned_runs("n4", "t3", 100));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut all: Vec<String> = first.iter().chain(&second).map(|r| r.id.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!((all.len(), first.len() + second.len()), (20, 20), "each orphan goes to one node");
}

pub async fn due_waiting_runs_are_claimed_once_by_whichever_node_asks_first(database: &Database) {
    let store = database.open().await;
    for (id, due) in [("w3", "t30"), ("w1", "t10"), ("w2", "t20")] {
        owned_run(&store, id, Some("parker"), "t0").await;
        store.write(move |tx| tx.wait_run(id, "{}", due, "retrying", "t1")).await.unwrap();
    }
    let due: Vec<_> = store
        .claim_due_runs("a", "t25", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.status, r.owner, r.next_attempt_at))
        .collect();
    assert_eq!(
        due,
        [
            ("w1".to_string(), RunStatus::Running, Some("a".to_string()), None),
            ("w2".to_string(), RunStatus::Running, Some("a".to_string()), None),
        ]
    );
    assert!(store.claim_due_runs("b", "t25", 10).await.unwrap().is_empty(), "claimed once");
    let later = store.claim_due_runs("b", "t35", 10).await.unwrap();
    assert_eq!(later.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["w3"]);
    assert_eq!(store.run("w3").await.unwrap().unwrap().owner.as_deref(), Some("b"));
}

#[macro_export]
macro_rules! conformance_tests {
    ($database:expr) => {
        $crate::conformance_tests!(@each $database;
            a_record_and_its_runs_commit_together,
            a_record_written_twice_under_one_id_is_refused,
            an_update_reads_the_prior_values_and_replaces_them_in_one_write,
            records_are_listed_and_selected_in_creation_order_with_only_the_fields_asked,
            a_deleted_record_is_gone_its_runs_stay_and_another_objects_record_is_spared,
            a_waiting_run_is_claimed_only_once_due,
            of_many_concurrent_claims_of_a_run_exactly_one_takes_it,
            a_saved_run_keeps_its_state_and_status_and_listings_order_runs,
            users_are_found_by_token_and_carry_their_permission_sets,
            a_deactivated_user_is_not_found_and_its_tokens_stop_working,
            a_password_hash_is_kept_per_user_and_replaced_by_the_next,
            a_revoked_token_stops_authenticating_and_stays_listed_with_when_it_was_revoked,
            every_user_is_listed_active_or_deactivated_with_its_sets_and_whether_it_has_a_password,
            a_session_is_found_by_its_hash_until_deleted_and_expired_ones_are_swept,
            a_failed_write_leaves_nothing_and_spares_the_writes_it_was_grouped_with,
            a_panicking_write_is_rolled_back_and_the_writer_goes_on,
            writes_queued_before_close_are_committed_and_later_ones_refused,
            meta_values_are_set_replaced_and_deleted,
            a_resent_message_counts_one_more_attempt_on_its_row,
            the_pending_messages_of_an_attempt_are_answered_together,
            the_ledger_is_filtered_by_provider_and_channel_and_paged_newest_first_after_a_keyset,
            a_messages_receipts_are_listed_in_the_order_they_came_and_no_other_messages,
            an_objects_records_are_paged_newest_first_after_a_position,
            a_message_change_keeps_the_fields_it_does_not_set,
            a_receipt_finds_its_message_by_provider_id_else_by_client_id,
            receipts_wait_unmatched_until_their_message_is_known,
            an_opt_in_lifts_the_opt_outs_whose_sender_was_unknown,
            a_webhook_secret_hash_is_replaced_by_the_next,
            a_webhook_delivery_is_first_once_even_from_another_process_and_a_refused_write_notes_nothing,
            secrets_are_upserted_per_parameter,
            a_secret_is_listed_with_when_its_value_was_set_which_a_reseal_does_not_move,
            a_data_key_a_secret_uses_is_never_retired_and_nothing_is_sealed_under_a_retired_one,
            a_master_key_is_retired_only_when_no_live_node_uses_it_and_nothing_needs_it,
            a_reencryption_pages_through_the_secrets_not_under_the_active_key,
            project_versions_are_numbered_in_order_found_by_hash_and_runs_keep_theirs,
            a_run_inserted_waiting_commits_with_its_record_and_is_claimed_only_once_due,
            the_waiting_runs_of_a_record_are_read_inside_a_write,
            a_skipped_run_is_an_end_state_listed_by_its_status,
            runs_are_paged_newest_first_each_page_after_the_last_run_of_the_one_before,
            rows_created_are_counted_per_minute_and_per_hour_by_object_or_status,
            the_messages_of_records_created_in_a_period_come_with_the_records_creation,
            a_node_takes_over_the_runs_of_a_node_no_longer_seen_and_each_goes_to_one_node,
            due_waiting_runs_are_claimed_once_by_whichever_node_asks_first,
        );
    };
    (@each $database:expr; $($contract:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $contract() {
                // A backend that cannot have its database here (no server) gives `None`: skipped.
                let Some(database): Option<$crate::conformance::Database> = $database.await.into() else {
                    return;
                };
                $crate::conformance::$contract(&database).await;
            }
        )*
    };
}
