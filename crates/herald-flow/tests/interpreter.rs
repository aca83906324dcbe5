//! Flow semantics, driven without any I/O: the test plays the engine, answering each effect.

use chrono::{TimeZone, Utc};
use herald_expr::EvalContext;
use herald_flow::{CalloutResult, CompiledProject, Effect, RunState, RunUser, SecretSource, Step};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;

const BASE: [(&str, &str); 6] = [
    ("herald.toml", "[automation]\npermission_sets = [\"Api\"]\n"),
    (
        "objects/Lead.yaml",
        "kind: object\nkey_prefix: 00Q\nfields:\n  FirstName: {type: text}\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n  Score: {type: number}\n  Status: {type: picklist, values: [Open, Working, Closed], default: Open}\n",
    ),
    (
        "objects/Task.yaml",
        "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, required: true}\n  WhoId: {type: reference, references: [Lead]}\n",
    ),
    (
        "credentials/Auth.yaml",
        "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: Main\n    parameters: [apikey]\n",
    ),
    (
        "credentials/Endpoint.yaml",
        "kind: named-credential\nurl: https://api.example.com\nexternal_credential: Auth\nallow_formulas_in_body: true\n",
    ),
    (
        "services/Sms.yaml",
        "kind: http-callout\nnamed_credential: Endpoint\nactions:\n  Send:\n    method: POST\n    path: /v1/{account}/send\n    sample_request: {apikey: s, to: s, text: s, count: 1}\n    sample_response: {ok: true}\n",
    ),
];

const PERMISSIONS: (&str, &str) =
    ("permissions/Api.yaml", "kind: permission-set\nexternal_credential_principal_access: [Auth-Main]\n");

fn project(flows: &[(&str, &str)]) -> Result<CompiledProject, String> {
    let mut files: Vec<(PathBuf, String)> =
        BASE.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    files.push((PERMISSIONS.0.into(), PERMISSIONS.1.into()));
    for (name, text) in flows {
        files.push((PathBuf::from(format!("flows/{name}.yaml")), text.to_string()));
    }
    herald_flow::load_files("/test".into(), files).map_err(|d| d.to_string())
}

fn record(fields: Value) -> Map<String, Value> {
    let mut record = fields.as_object().unwrap().clone();
    record.insert("Id".into(), json!("00Q000000000000001"));
    record
}

fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 0).unwrap())
}

struct Secrets;

impl SecretSource for Secrets {
    fn secret(&self, parameter: &str) -> Option<Arc<str>> {
        (parameter == "apikey").then(|| Arc::from("k-123456"))
    }
}

fn user() -> RunUser {
    RunUser { id: "005".into(), name: "Automated Process".into() }
}

#[test]
fn only_when_updated_to_meet_fires_on_the_false_to_true_transition() {
    let flow = r#"
trigger:
  object: Lead
  on: update
  conditions:
    - {field: Status, operator: EqualTo, right: Working}
  only_when_updated_to_meet: true
start: s
elements:
  s: {assign: [{n: 1}]}
variables:
  n: {type: Number}
"#;
    let project = project(&[("Working", flow)]).unwrap();
    let flow = &project.flows["Working"];
    let now = record(json!({"LastName": "A", "Status": "Working"}));
    let before_open = record(json!({"LastName": "A", "Status": "Open"}));
    let before_working = now.clone();
    assert!(flow.entry_holds(&now, Some(&before_open), &cx()).unwrap());
    assert!(!flow.entry_holds(&now, Some(&before_working), &cx()).unwrap(), "already met: no new run");
    assert!(!flow.entry_holds(&before_open, Some(&now), &cx()).unwrap());
    assert_eq!(project.triggered_flows("Lead", true).count(), 0, "an update flow does not fire on create");
    assert_eq!(project.triggered_flows("Lead", false).count(), 1);
}

#[test]
fn custom_logic_formulas_and_is_changed() {
    let logic = r#"
trigger:
  object: Lead
  on: create_or_update
  logic: 1 AND (2 OR 3)
  conditions:
    - {field: Phone, operator: IsBlank, right: false}
    - {field: Score, operator: GreaterThan, right: 10}
    - {field: FirstName, operator: StartsWith, right: "VIP"}
start: s
elements:
  s: {assign: [{n: 1}]}
variables:
  n: {type: Number}
"#;
    let formula = r#"
trigger:
  object: Lead
  on: update
  when: "AND(NOT(ISBLANK({!$Record.Phone})), {!$Record.Score} > 10, {!$Record__Prior.Score} <= 10)"
start: s
elements:
  s: {assign: [{n: 1}]}
variables:
  n: {type: Number}
"#;
    let changed = r#"
trigger:
  object: Lead
  on: update
  conditions:
    - {field: Phone, operator: IsChanged, right: true}
start: s
elements:
  s: {assign: [{n: 1}]}
variables:
  n: {type: Number}
"#;
    let project = project(&[("Logic", logic), ("Formula", formula), ("Changed", changed)]).unwrap();
    let logic = &project.flows["Logic"];
    assert!(logic.entry_holds(&record(json!({"Phone": "1", "Score": 11})), None, &cx()).unwrap());
    assert!(
        logic
            .entry_holds(&record(json!({"Phone": "1", "Score": 1, "FirstName": "VIP Ada"})), None, &cx())
            .unwrap()
    );
    assert!(
        !logic
            .entry_holds(&record(json!({"Phone": "1", "Score": 1, "FirstName": "Ada"})), None, &cx())
            .unwrap()
    );
    assert!(!logic.entry_holds(&record(json!({"Score": 50})), None, &cx()).unwrap());

    let formula = &project.flows["Formula"];
    let prior = record(json!({"Phone": "1", "Score": 5}));
    assert!(formula.entry_holds(&record(json!({"Phone": "1", "Score": 11})), Some(&prior), &cx()).unwrap());
    let prior_high = record(json!({"Phone": "1", "Score": 12}));
    assert!(
        !formula.entry_holds(&record(json!({"Phone": "1", "Score": 11})), Some(&prior_high), &cx()).unwrap()
    );

    let changed = &project.flows["Changed"];
    let prior = record(json!({"Phone": "1"}));
    assert!(changed.entry_holds(&record(json!({"Phone": "2"})), Some(&prior), &cx()).unwrap());
    assert!(!changed.entry_holds(&record(json!({"Phone": "1"})), Some(&prior), &cx()).unwrap());
}

const FULL: &str = r#"
trigger: {object: Lead, on: create}
variables:
  greeting: {type: Text, default: "Hello"}
  attempts: {type: Number, default: 0}
  taskId: {type: Text}
start: build
elements:
  build:
    assign:
      - greeting: {add: " {!$Record.FirstName}"}
      - attempts: {add: 2}
    next: route
  route:
    decision:
      - name: high
        conditions: [{left: "{!attempts}", operator: GreaterThanOrEqualTo, right: 2}]
        next: send
    default: log
  send:
    action: Sms.Send
    inputs:
      account: "{!$Record.LastName}"
      apikey: "{!$Credential.Auth.apikey}"
      to: "{!$Record.Phone}"
      text: "{!greeting}, you scored {!$Record.Score}"
      count: "{!attempts}"
    fault: log
  log:
    create: Task
    fields:
      Subject: "Failed: {!$Flow.FaultMessage}"
      WhoId: "{!$Record.Id}"
    store_id_in: taskId
"#;

fn start(project: &CompiledProject, fields: Value) -> RunState {
    let flow = &project.flows["Full"];
    flow.new_run(record(fields), None, user(), "guid-1".into(), cx().now)
}

#[test]
fn a_run_assigns_decides_calls_out_and_takes_the_fault_path() {
    let project = project(&[("Full", FULL)]).unwrap();
    let flow = project.flows["Full"].clone();
    let mut state =
        start(&project, json!({"FirstName": "Ada", "LastName": "a b&c", "Phone": "+1415", "Score": 12.50}));

    let Step::Effect(Effect::Callout { element }) = flow.advance(&mut state, &cx()) else {
        panic!("expected a callout")
    };
    assert_eq!(element, "send");
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    // The path parameter is percent-encoded, so a value cannot add path segments.
    assert_eq!(prepared.path, "/v1/a%20b%26c/send");
    assert_eq!(
        prepared.body,
        Some(json!({"apikey": "k-123456", "to": "+1415", "text": "Hello Ada, you scored 12.5", "count": 2}))
    );
    // The trace keeps the inputs with the credential masked.
    assert_eq!(state.pending.as_ref().unwrap().inputs["apikey"], "••••••");

    // Journal, "crash", and resume from the journaled state: the pending callout is asked for again.
    let journaled: RunState = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
    let mut state = journaled;
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout { .. })));

    let fault = CalloutResult {
        status: Some(500),
        body: "{\"error\":\"down\"}".into(),
        fault: Some("Sms.Send failed: HTTP 500".into()),
        micros: 10,
    };
    flow.complete_callout(&mut state, fault, cx().now);
    let Step::Effect(Effect::CreateRecord { object, fields, .. }) = flow.advance(&mut state, &cx()) else {
        panic!("expected the fault path's Create Records")
    };
    assert_eq!(object, "Task");
    assert_eq!(fields["Subject"], "Failed: Sms.Send failed: HTTP 500");
    assert_eq!(fields["WhoId"], "00Q000000000000001");
    flow.complete_create(&mut state, Ok("00T1".into()), &[], cx().now, 5);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));

    let path: Vec<(&str, &str)> =
        state.trace.iter().map(|t| (t.element.as_str(), t.result.as_str())).collect();
    assert_eq!(
        path,
        [("build", "next: route"), ("route", "next: send"), ("send", "fault: log"), ("log", "end")]
    );
    assert_eq!(state.trace[1].outputs["outcome"], "high");
    assert_eq!(state.variables[2], json!("00T1"), "store_id_in keeps the new Task's id");
    assert_eq!(state.outputs["send"]["responseCode"], 500);
}

#[test]
fn path_parameters_that_could_leave_the_path_are_refused() {
    let project = project(&[("Full", FULL)]).unwrap();
    let flow = project.flows["Full"].clone();
    for name in ["..", "a/b", "a\\b", "."] {
        let mut state = start(&project, json!({"LastName": name, "Phone": "+1415"}));
        assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(_)));
        let error = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap_err();
        assert!(error.contains("could leave the API path"), "{name}: {error}");
    }
}

#[test]
fn a_fault_without_a_fault_connector_fails_the_run() {
    let flow = FULL.replace("    fault: log\n", "");
    let project = project(&[("Full", &flow)]).unwrap();
    let flow = project.flows["Full"].clone();
    let mut state = start(&project, json!({"FirstName": "Ada", "LastName": "L", "Phone": "+1415"}));
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(_)));
    flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    let result =
        CalloutResult { status: Some(401), body: String::new(), fault: Some("denied".into()), micros: 1 };
    flow.complete_callout(&mut state, result, cx().now);
    let Step::Failed { message } = flow.advance(&mut state, &cx()) else { panic!("the run must fail") };
    assert_eq!(message, "denied");
}

#[test]
fn a_decision_default_and_a_missing_secret() {
    let project = project(&[("Full", FULL)]).unwrap();
    let flow = project.flows["Full"].clone();
    let mut state = start(&project, json!({"LastName": "L"}));
    let Step::Effect(Effect::Callout { .. }) = flow.advance(&mut state, &cx()) else { panic!() };
    struct Nothing;
    impl SecretSource for Nothing {
        fn secret(&self, _: &str) -> Option<Arc<str>> {
            None
        }
    }
    let error = flow.prepare_callout(&mut state, &Nothing, &cx()).unwrap_err();
    assert!(error.contains("needs the credential parameter `apikey`, which has no value"), "{error}");
    assert!(error.contains("herald credential set Auth"), "{error}");

    // A credential inside a longer text is caught too, not sent empty.
    let inside = FULL
        .replace("apikey: \"{!$Credential.Auth.apikey}\"", "apikey: \"Bearer {!$Credential.Auth.apikey}\"");
    let project = self::project(&[("Full", &inside)]).unwrap();
    let flow = project.flows["Full"].clone();
    let mut state = start(&project, json!({"LastName": "L"}));
    let Step::Effect(Effect::Callout { .. }) = flow.advance(&mut state, &cx()) else { panic!() };
    let error = flow.prepare_callout(&mut state, &Nothing, &cx()).unwrap_err();
    assert!(error.contains("`apikey`, which has no value"), "{error}");
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    assert_eq!(prepared.body.unwrap()["apikey"], "Bearer k-123456");
    assert_eq!(state.pending.as_ref().unwrap().inputs["apikey"], "••••••");
}

fn errors(flow: &str) -> String {
    project(&[("Bad", flow)]).unwrap_err()
}

#[test]
fn the_compiler_catches_mistakes_with_positions_and_hints() {
    let credential_in_task =
        FULL.replace("WhoId: \"{!$Record.Id}\"", "WhoId: \"{!$Credential.Auth.apikey}\"");
    let text = errors(&credential_in_task);
    assert!(text.contains("`$Credential` can only be used in the inputs of an action"), "{text}");

    let prior_on_create = FULL.replace("{!$Record.Score}\"", "{!$Record__Prior.Score}\"");
    let text = errors(&prior_on_create);
    assert!(text.contains("`$Record__Prior` only exists in flows triggered on update"), "{text}");

    let bad_input = FULL.replace("      to: ", "      too: ");
    let text = errors(&bad_input);
    assert!(
        text.contains("action Sms.Send has no input `too`") && text.contains("did you mean `to`?"),
        "{text}"
    );

    let type_mismatch = FULL.replace("- attempts: {add: 2}", "- attempts: {add: \"{!$Record.FirstName}\"}");
    let text = errors(&type_mismatch);
    assert!(text.contains("error[HF026]"), "{text}");

    let bad_formula = FULL.replace(
        "conditions: [{left: \"{!attempts}\", operator: GreaterThanOrEqualTo, right: 2}]",
        "when: \"LEN({!greeting})\"",
    );
    let text = errors(&bad_formula);
    assert!(text.contains("returns Number, not Boolean"), "{text}");

    let unknown_var = FULL.replace("store_id_in: taskId", "store_id_in: taskid2");
    let text = errors(&unknown_var);
    assert!(text.contains("unknown variable `taskid2`") && text.contains("did you mean `taskId`?"), "{text}");

    let loop_logic = FULL.replace("  route:\n    decision:", "  route:\n    next: build\n    decision:");
    let text = errors(&loop_logic);
    assert!(text.contains("a decision goes on through its outcomes"), "{text}");

    // Every problem is reported, each with file:line:column.
    let many = FULL
        .replace("to: \"{!$Record.Phone}\"", "to: \"{!$Record.Phon}\"")
        .replace("next: route", "next: rout");
    let text = errors(&many);
    assert!(text.contains("flows/Bad.yaml:") && text.contains("2 problems found"), "{text}");
}

#[test]
fn loops_are_bounded() {
    let flow = r#"
trigger: {object: Lead, on: create}
variables:
  n: {type: Number, default: 0}
start: a
elements:
  a:
    assign: [{n: {add: 1}}]
    next: b
  b:
    decision:
      - name: again
        when: "{!n} > -1"
        next: a
"#;
    let project = project(&[("Loop", flow)]).unwrap();
    let flow = project.flows["Loop"].clone();
    let mut state = flow.new_run(record(json!({"LastName": "L"})), None, user(), "g".into(), cx().now);
    let Step::Failed { message } = flow.advance(&mut state, &cx()) else { panic!("a loop must stop") };
    assert!(message.contains("check the flow for a loop"), "{message}");
}

#[test]
fn the_time_zone_comes_from_herald_toml() {
    let load = |toml: &str| {
        let mut files: Vec<(PathBuf, String)> =
            BASE.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
        files[0].1 = toml.to_string();
        herald_flow::load_files("/tz".into(), files)
    };
    let project = load("[runtime]\ntimezone = \"America/New_York\"\n").unwrap();
    assert_eq!(project.timezone, herald_expr::Tz::America__New_York);
    assert_eq!(project.eval_context().tz, herald_expr::Tz::America__New_York);
    assert_eq!(load("").unwrap().timezone, herald_expr::Tz::UTC);
    let error = load("[runtime]\ntimezone = \"Mars/Olympus\"\n").unwrap_err().to_string();
    assert!(error.contains("herald.toml: error[HP023]: [runtime] timezone"), "{error}");
}

#[test]
fn a_flow_branches_on_the_typed_response_body() {
    let flow = r#"
trigger: {object: Lead, on: create}
variables:
  accepted: {type: Boolean}
start: send
elements:
  send:
    action: Sms.Send
    inputs:
      account: acme
      apikey: "{!$Credential.Auth.apikey}"
      to: "{!$Record.Phone}"
      text: hi
    next: check
  check:
    decision:
      - name: ok
        conditions: [{left: "{!send.200.ok}", operator: EqualTo, right: true}]
        next: note
    default: note
  note:
    assign: [{accepted: "{!send.200.ok}"}]
"#;
    let project = project(&[("Typed", flow)]).unwrap();
    let flow = project.flows["Typed"].clone();
    let mut state =
        flow.new_run(record(json!({"LastName": "L", "Phone": "+1"})), None, user(), "g".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(_)));
    flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    let answer = CalloutResult { status: Some(200), body: r#"{"ok": true}"#.into(), fault: None, micros: 3 };
    flow.complete_callout(&mut state, answer, cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.trace[1].outputs["outcome"], "ok");
    assert_eq!(state.variables[0], json!(true));

    let unknown = r#"
trigger: {object: Lead, on: create}
variables:
  accepted: {type: Boolean}
start: send
elements:
  send:
    action: Sms.Send
    inputs: {account: acme}
    next: note
  note:
    assign: [{accepted: "{!send.200.okay}"}]
"#;
    let error = project_error(unknown);
    assert!(error.contains("has no field `okay`"), "{error}");
}

fn project_error(flow: &str) -> String {
    project(&[("Bad", flow)]).unwrap_err()
}
