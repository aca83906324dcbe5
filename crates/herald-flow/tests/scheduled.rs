//! Scheduled paths, the asynchronous path and the Wait element, driven without I/O: when a path is
//! due, what checking it against the record decides, where a Wait parks, and the load-time checks.

use chrono::{Duration, TimeZone, Utc};
use herald_expr::EvalContext;
use herald_flow::{CompiledProject, PathRecheck, RunUser, Step};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

const LEAD: &str = "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n  Status: {type: picklist, values: [Open, Working], default: Open}\n  Callback: {type: datetime}\n  Visit: {type: date}\n";

const FLOW: &str = r#"
trigger:
  object: Lead
  on: create_or_update
  conditions:
    - {field: Status, operator: EqualTo, right: Open}
start: Now
scheduled_paths:
  One_Hour_Later:
    offset: {hours: 1}
    start: Later
  Before_Callback:
    field: Callback
    offset: {minutes: 15}
    direction: before
    start: Later
  Day_Of_Visit:
    field: Visit
    offset: {days: 0}
    start: Later
async_path:
  start: Apart
variables:
  n: {type: Number, default: 0}
elements:
  Now: {assign: [{n: 1}]}
  Later: {assign: [{n: 2}]}
  Apart: {assign: [{n: 3}]}
"#;

fn project(flows: &[(&str, &str)]) -> Result<CompiledProject, String> {
    let mut files = vec![
        (PathBuf::from("herald.toml"), "[runtime]\ntimezone = \"Europe/Paris\"\n".to_string()),
        (PathBuf::from("objects/Lead.yaml"), LEAD.to_string()),
    ];
    for (name, text) in flows {
        files.push((PathBuf::from(format!("flows/{name}.yaml")), text.to_string()));
    }
    herald_flow::load_files("/test".into(), files).map_err(|d| d.to_string())
}

fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 0).unwrap())
        .with_zone(EvalContext::parse_zone("Europe/Paris").unwrap())
}

fn user() -> RunUser {
    RunUser { id: "005".into(), name: "Automated Process".into() }
}

fn lead(fields: Value) -> Map<String, Value> {
    let mut record = fields.as_object().unwrap().clone();
    record.insert("Id".into(), json!("00Q000000000000001"));
    record
}

#[test]
fn a_path_after_the_trigger_is_due_an_hour_later_and_starts_at_its_own_element() {
    let project = project(&[("Paths", FLOW)]).unwrap();
    let flow = &project.flows["Paths"];
    let path = flow.scheduled_paths.iter().find(|p| p.name == "One_Hour_Later").unwrap();
    let (mut state, due) = flow
        .new_path_run(path, lead(json!({"LastName": "A", "Status": "Open"})), None, user(), "g".into(), &cx())
        .unwrap();
    assert_eq!(due, cx().now + Duration::hours(1));
    assert_eq!(flow.path_to_recheck(&state).unwrap().path, "One_Hour_Later");
    let verdict =
        flow.recheck_path(&mut state, Some(lead(json!({"LastName": "A", "Status": "Open"}))), &cx());
    assert_eq!(verdict, PathRecheck::Runs);
    assert!(flow.path_to_recheck(&state).is_none(), "checked once");
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.variables()[0], json!(2), "the path ran its own start element, not the flow's");
    assert_eq!(state.trace()[0].kind, "Scheduled Path");
}

#[test]
fn a_due_path_whose_record_no_longer_meets_the_condition_is_skipped_without_running() {
    let project = project(&[("Paths", FLOW)]).unwrap();
    let flow = &project.flows["Paths"];
    let path = &flow.scheduled_paths[0];
    let (mut state, _) = flow
        .new_path_run(path, lead(json!({"LastName": "A", "Status": "Open"})), None, user(), "g".into(), &cx())
        .unwrap();
    let verdict =
        flow.recheck_path(&mut state, Some(lead(json!({"LastName": "A", "Status": "Working"}))), &cx());
    assert_eq!(verdict, PathRecheck::Skipped("the record no longer meets the flow's entry condition".into()));
    assert!(state.ended());
    assert_eq!(state.variables()[0], json!(0), "no element ran");
    assert!(state.trace()[0].result.starts_with("skipped: "), "{:?}", state.trace());

    let (mut gone, _) = flow
        .new_path_run(path, lead(json!({"LastName": "A", "Status": "Open"})), None, user(), "g".into(), &cx())
        .unwrap();
    assert_eq!(
        flow.recheck_path(&mut gone, None, &cx()),
        PathRecheck::Skipped("the record no longer exists".into())
    );
}

#[test]
fn a_field_time_source_counts_before_or_after_it_and_an_empty_field_schedules_nothing() {
    let project = project(&[("Paths", FLOW)]).unwrap();
    let flow = &project.flows["Paths"];
    let before = flow.scheduled_paths.iter().find(|p| p.name == "Before_Callback").unwrap();
    let visit = flow.scheduled_paths.iter().find(|p| p.name == "Day_Of_Visit").unwrap();
    let record = lead(json!({"LastName": "A", "Callback": "2026-11-22T10:00:00Z", "Visit": "2026-11-25"}));
    assert_eq!(
        flow.path_due(before, &record, cx().now, &cx()),
        Some(Utc.with_ymd_and_hms(2026, 11, 22, 9, 45, 0).unwrap())
    );
    // A date counts from its midnight in the project's zone (Paris is UTC+1 in November).
    assert_eq!(
        flow.path_due(visit, &record, cx().now, &cx()),
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap())
    );
    let empty = lead(json!({"LastName": "A"}));
    assert!(flow.new_path_run(before, empty, None, user(), "g".into(), &cx()).is_none());
}

#[test]
fn changing_the_time_source_field_moves_a_waiting_path_and_emptying_it_skips_the_path() {
    let project = project(&[("Paths", FLOW)]).unwrap();
    let flow = &project.flows["Paths"];
    let before = flow.scheduled_paths.iter().find(|p| p.name == "Before_Callback").unwrap();
    let record = lead(json!({"LastName": "A", "Status": "Open", "Callback": "2026-11-22T10:00:00Z"}));
    let (mut state, _) = flow.new_path_run(before, record.clone(), None, user(), "g".into(), &cx()).unwrap();
    assert_eq!(flow.rescheduled_due(&mut state, &record, &cx()), None, "same field value: unchanged");
    let moved = lead(json!({"LastName": "A", "Status": "Open", "Callback": "2026-11-23T10:00:00Z"}));
    assert_eq!(
        flow.rescheduled_due(&mut state, &moved, &cx()),
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 9, 45, 0).unwrap())
    );
    let emptied = lead(json!({"LastName": "A", "Status": "Open"}));
    assert_eq!(flow.rescheduled_due(&mut state, &emptied, &cx()), Some(cx().now), "due at once");
    assert_eq!(
        flow.recheck_path(&mut state, Some(emptied), &cx()),
        PathRecheck::Skipped("its time source Callback is now empty".into())
    );

    let after_trigger = &flow.scheduled_paths[0];
    let (mut state, _) =
        flow.new_path_run(after_trigger, record.clone(), None, user(), "g".into(), &cx()).unwrap();
    assert_eq!(
        flow.rescheduled_due(&mut state, &moved, &cx()),
        None,
        "a path after the trigger keeps its time"
    );
}

#[test]
fn the_asynchronous_path_is_a_run_from_its_own_element() {
    let project = project(&[("Paths", FLOW)]).unwrap();
    let flow = &project.flows["Paths"];
    let mut state =
        flow.new_async_run(lead(json!({"LastName": "A"})), None, user(), "g".into(), cx().now).unwrap();
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.variables()[0], json!(3));
}

const WAITING: &str = r#"
variables:
  n: {type: Number, default: 0, output: true}
start: First
elements:
  First: {assign: [{n: 1}], next: Pause}
  Pause: {wait: {minutes: 60}, next: Then}
  Then: {assign: [{n: 2}], next: Past}
  Past: {wait: {until: "{!$Flow.CurrentDateTime} - 1"}, next: Last}
  Last: {assign: [{n: 3}]}
"#;

#[test]
fn a_wait_parks_the_run_once_and_the_next_advance_goes_past_it() {
    let project = project(&[("Waits", WAITING)]).unwrap();
    let flow = &project.flows["Waits"];
    let mut state = flow.new_autolaunched_run(&Map::new(), user(), "g".into(), cx().now).unwrap();
    match flow.advance(&mut state, &cx()) {
        Step::Wait { element, until } => {
            assert_eq!(element, "Pause");
            assert_eq!(until, cx().now + Duration::minutes(60));
        }
        _ => panic!("the run did not park at the Wait"),
    }
    assert_eq!(state.variables()[0], json!(1));
    // The state survives a journal round trip, as a stored run's does.
    let mut state: herald_flow::RunState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished), "a Wait already past does not park");
    assert_eq!(state.variables()[0], json!(3));
    let waits: Vec<_> = state.trace().iter().filter(|t| t.kind == "Wait").collect();
    assert_eq!(waits[0].outputs["waited"], json!(true));
    assert_eq!(waits[1].outputs["note"], json!("the time was already past"));
}

#[test]
fn a_debug_run_goes_past_a_wait_at_once_and_says_so() {
    let project = project(&[("Waits", WAITING)]).unwrap();
    let flow = &project.flows["Waits"];
    let mut state = flow.new_autolaunched_run(&Map::new(), user(), "g".into(), cx().now).unwrap();
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Wait { .. }));
    flow.skip_wait(&mut state);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    let wait = state.trace().iter().find(|t| t.element == "Pause").unwrap();
    assert_eq!(wait.outputs["waited"], json!(false));
    assert!(wait.outputs["note"].as_str().unwrap().contains("does not wait"));
}

fn errors(flow: &str) -> String {
    project(&[("Bad", flow)]).unwrap_err()
}

fn position(flow: &str, needle: &str) -> String {
    let (line, column) =
        flow.lines().enumerate().find_map(|(n, l)| l.find(needle).map(|c| (n + 1, c + 1))).unwrap();
    format!("flows/Bad.yaml:{line}:{column}")
}

#[test]
fn path_and_wait_mistakes_are_reported_at_their_keys_under_their_codes() {
    let autolaunched_path = "start: a\nscheduled_paths:\n  Later: {offset: {hours: 1}, start: a}\nelements:\n  a: {assign: [{n: 1}]}\nvariables:\n  n: {type: Number}\n";
    let text = errors(autolaunched_path);
    assert!(
        text.contains(&format!("{}: error[HF050]", position(autolaunched_path, "scheduled_paths"))),
        "{text}"
    );

    let wait_in_trigger = FLOW.replace("  Later: {assign: [{n: 2}]}", "  Later: {wait: {minutes: 5}}");
    let text = errors(&wait_in_trigger);
    assert!(text.contains("error[HF050]: a Wait element needs an autolaunched flow"), "{text}");

    let two_units = FLOW.replace("offset: {hours: 1}", "offset: {hours: 1, days: 2}");
    let text = errors(&two_units);
    assert!(
        text.contains(&format!("{}: error[HF051]", position(&two_units, "offset: {hours: 1, days"))),
        "{text}"
    );
    assert!(text.contains("more than one unit"), "{text}");

    let before_trigger = FLOW.replace("offset: {hours: 1}\n", "offset: {hours: 1}\n    direction: before\n");
    assert!(errors(&before_trigger).contains("error[HF051]"), "before the trigger");

    let text_field = FLOW.replace("field: Callback", "field: Phone");
    let text = errors(&text_field);
    assert!(text.contains(&format!("{}: error[HF052]", position(&text_field, "Phone"))), "{text}");
    assert!(text.contains("a phone field"), "{text}");
    let typo = FLOW.replace("field: Callback", "field: Calback");
    assert!(errors(&typo).contains("did you mean `Callback`?"), "{}", errors(&typo));

    let both =
        WAITING.replace("{wait: {minutes: 60}", "{wait: {minutes: 60, until: \"{!$Flow.CurrentDateTime}\"}");
    assert!(errors(&both).contains("error[HF053]: a Wait has both"), "{}", errors(&both));
    let number = WAITING.replace("\"{!$Flow.CurrentDateTime} - 1\"", "\"1 + 1\"");
    assert!(errors(&number).contains("returns Number, not DateTime"), "{}", errors(&number));
    let no_length = WAITING.replace("{wait: {minutes: 60}", "{wait: {}");
    assert!(
        errors(&no_length).contains("error[HF051]: the Wait has no length of time"),
        "{}",
        errors(&no_length)
    );

    let bad_name = FLOW.replace("One_Hour_Later:", "One-Hour:");
    assert!(errors(&bad_name).contains("error[HF054]: `One-Hour` is not a valid scheduled path API name"));
    let unknown_start = FLOW.replace("start: Apart", "start: Aprat");
    assert!(errors(&unknown_start).contains("error[HF006]: no element named `Aprat`"));
}

#[test]
fn scheduled_paths_on_a_flow_started_by_every_update_load_with_a_warning_unless_only_updates_that_meet_it_start_it()
 {
    let loaded = project(&[("Lead_Paths", FLOW)]).unwrap();
    let warnings: Vec<String> =
        loaded.warnings.iter().filter(|w| w.code == "HW006").map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(warnings[0].contains("flows/Lead_Paths.yaml:9:3:"), "at the first path: {}", warnings[0]);
    assert!(warnings[0].contains("only_when_updated_to_meet: true"), "{}", warnings[0]);

    let met = FLOW
        .replace("  on: create_or_update\n", "  on: create_or_update\n  only_when_updated_to_meet: true\n");
    let on_create = FLOW.replace("on: create_or_update", "on: create");
    for flow in [met, on_create] {
        let loaded = project(&[("Lead_Paths", &flow)]).unwrap();
        assert!(loaded.warnings.iter().all(|w| w.code != "HW006"), "{:?}", loaded.warnings);
    }
}
