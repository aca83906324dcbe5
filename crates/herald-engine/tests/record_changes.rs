//! Update and Delete Records performed by the engine against a real SQLite file: the change commits
//! with the runs it starts, update-triggered flows fire on it, a flow that keeps updating its own
//! record stops at the trigger depth cap, traversals read related records, and lookups are checked.

use herald_engine::{Engine, EngineError, EngineOptions, RunEvent};
use herald_store::RunStatus;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The engine's options for a test's database: a SQLite file in `dir`, or a scratch PostgreSQL
/// database with `HERALD_TEST_DATABASE=postgresql` (`scripts/test` runs this suite both ways).
fn options_in(dir: &std::path::Path) -> EngineOptions {
    let mut options = EngineOptions::for_database(herald_store::postgres::testing::database_in(dir));
    options.key_file = dir.join("h.key");
    options
}

fn files(flows: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = [
        ("herald.toml", String::new()),
        (
            "objects/Lead.yaml",
            "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Status: {type: picklist, values: [Open, Working], default: Open}\n  Touches: {type: number}\n  OwnerId: {type: lookup, to: User}\n".into(),
        ),
        ("objects/User.yaml", "kind: object\nkey_prefix: '005'\nfields:\n  Name: {type: text}\n".into()),
        ("objects/Task.yaml", "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, required: true}\n".into()),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect();
    for (name, flow) in flows {
        files.push((PathBuf::from(format!("flows/{name}.yaml")), flow.to_string()));
    }
    files
}

async fn engine(dir: &tempfile::TempDir, flows: &[(&str, &str)]) -> Engine {
    let project = herald_flow::load_files("/t".into(), files(flows)).unwrap_or_else(|d| panic!("{d}"));
    let engine = Engine::open(Arc::new(project), &options_in(dir.path())).await.unwrap();
    engine.start().await.unwrap();
    engine
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn create(engine: &Engine, object: &str, value: Value) -> herald_engine::RecordWrite {
    engine.create_record(object, &fields(value), &engine.automation_user().clone()).await.unwrap()
}

async fn finished(events: &mut tokio::sync::broadcast::Receiver<RunEvent>, run_id: &str) -> RunEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.run_id == run_id {
                return event;
            }
        }
    })
    .await
    .expect("the run finishes")
}

/// Waits until every run of `record_id` has ended, and returns them.
async fn settled(engine: &Engine, record_id: &str, at_least: usize) -> Vec<herald_store::RunRow> {
    for _ in 0..200 {
        let runs = engine.runs_for_record(record_id).await.unwrap();
        let ended = runs.iter().all(|r| matches!(r.status, RunStatus::Finished | RunStatus::Failed));
        if runs.len() >= at_least && ended {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the runs of {record_id} did not end");
}

const MARK: &str = r#"
trigger: {object: Lead, on: create}
start: mark
elements:
  mark:
    update: Lead
    record: "{!$Record}"
    fields: {Status: Working}
"#;

const ON_WORKING: &str = r#"
trigger:
  object: Lead
  on: update
  conditions: [{field: Status, operator: EqualTo, right: Working}]
  only_when_updated_to_meet: true
start: log
elements:
  log:
    create: Task
    fields: {Subject: "{!$Record.LastName} is worked by {!$Record.Owner.Name}"}
"#;

#[tokio::test]
async fn an_update_by_a_flow_is_stored_and_starts_the_update_triggered_flow_which_traverses_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, &[("Mark", MARK), ("On_Working", ON_WORKING)]).await;
    let mut events = engine.subscribe();
    let owner = create(&engine, "User", json!({"Name": "Grace"})).await;
    let lead = create(&engine, "Lead", json!({"LastName": "Ng", "OwnerId": owner.id})).await;
    assert_eq!(lead.runs.len(), 1);
    assert_eq!(finished(&mut events, &lead.runs[0]).await.status, RunStatus::Finished);
    assert_eq!(engine.get_record("Lead", &lead.id).await.unwrap().data["Status"], "Working");
    let runs = settled(&engine, &lead.id, 2).await;
    let on_working = runs.iter().find(|r| r.flow == "On_Working").expect("the update started On_Working");
    assert_eq!(on_working.status, RunStatus::Finished, "{:?}", on_working.fault);
    assert_eq!(on_working.state["depth"], 1, "a run started by a flow's update is one write deep");
    let task_id = on_working.state["trace"][0]["outputs"]["Id"].as_str().unwrap().to_string();
    let task = engine.get_record("Task", &task_id).await.unwrap();
    assert_eq!(task.data["Subject"], "Ng is worked by Grace");
}

#[tokio::test]
async fn a_flow_that_updates_its_own_record_on_every_update_stops_at_the_depth_cap() {
    let again = r#"
trigger: {object: Lead, on: update}
start: touch
elements:
  touch:
    update: Lead
    record: "{!$Record}"
    fields: {Touches: "{!$Record.Touches}"}
"#;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, &[("Again", again)]).await;
    let lead = create(&engine, "Lead", json!({"LastName": "Ng", "Touches": 0})).await;
    engine
        .update_record("Lead", &lead.id, &fields(json!({"Touches": 1})), &engine.automation_user().clone())
        .await
        .unwrap();
    let runs = settled(&engine, &lead.id, 6).await;
    // Depths 0 to 5 run; the run at depth 5 would start a sixth and fails instead.
    assert_eq!(runs.len(), 6, "{runs:?}");
    let failed: Vec<_> = runs.iter().filter(|r| r.status == RunStatus::Failed).collect();
    assert_eq!(failed.len(), 1);
    let fault = failed[0].fault.as_deref().unwrap();
    assert!(fault.contains("stops after 5") && fault.contains("Again"), "{fault}");
    assert_eq!(failed[0].state["depth"], 5);
}

#[tokio::test]
async fn update_and_delete_by_conditions_change_only_the_matches_and_refuse_past_max_rows() {
    let sweep = r#"
trigger: {object: Task, on: create}
start: work
elements:
  work:
    update: Lead
    conditions: [{field: Status, operator: EqualTo, right: Open}]
    fields: {Status: Working}
    max_rows: 2
    next: purge
  purge:
    delete: Lead
    conditions: [{field: LastName, operator: StartsWith, right: "x"}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, &[("Sweep", sweep)]).await;
    let mut events = engine.subscribe();
    let a = create(&engine, "Lead", json!({"LastName": "Ada"})).await;
    let x = create(&engine, "Lead", json!({"LastName": "xavier", "Status": "Working"})).await;
    let task = create(&engine, "Task", json!({"Subject": "sweep"})).await;
    assert_eq!(finished(&mut events, &task.runs[0]).await.status, RunStatus::Finished);
    assert_eq!(engine.get_record("Lead", &a.id).await.unwrap().data["Status"], "Working");
    assert!(matches!(engine.get_record("Lead", &x.id).await, Err(EngineError::NotFound { .. })), "deleted");

    // Three Open leads are more than max_rows: the element faults and none changes.
    let open: Vec<String> = [
        create(&engine, "Lead", json!({"LastName": "B"})).await.id,
        create(&engine, "Lead", json!({"LastName": "C"})).await.id,
        create(&engine, "Lead", json!({"LastName": "D"})).await.id,
    ]
    .into();
    let task = create(&engine, "Task", json!({"Subject": "sweep"})).await;
    let event = finished(&mut events, &task.runs[0]).await;
    assert_eq!(event.status, RunStatus::Failed);
    let run = engine.run(&task.runs[0]).await.unwrap();
    assert!(
        run.fault.as_deref().unwrap().contains("more than the element's max_rows (2)"),
        "{:?}",
        run.fault
    );
    for id in open {
        assert_eq!(engine.get_record("Lead", &id).await.unwrap().data["Status"], "Open");
    }
}

#[tokio::test]
async fn a_lookup_takes_only_an_id_of_the_object_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, &[]).await;
    let task = create(&engine, "Task", json!({"Subject": "not a user"})).await;
    let refused = engine
        .create_record(
            "Lead",
            &fields(json!({"LastName": "Ng", "OwnerId": task.id})),
            &engine.automation_user().clone(),
        )
        .await
        .unwrap_err();
    let EngineError::InvalidFields(problems) = refused else { panic!("{refused:?}") };
    assert_eq!(problems[0].error_code, "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(problems[0].fields, ["OwnerId"]);
    let user = create(&engine, "User", json!({"Name": "Grace"})).await;
    create(&engine, "Lead", json!({"LastName": "Ng", "OwnerId": user.id})).await;
}
