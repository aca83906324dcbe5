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
    project_with(&[], flows)
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

    let Step::Effect(Effect::Callout(herald_flow::CalloutEffect { element, .. })) =
        flow.advance(&mut state, &cx())
    else {
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
    assert_eq!(state.pending().unwrap().inputs["apikey"], "••••••");

    // Journal, "crash", and resume from the journaled state: the pending callout is asked for again.
    let journaled: RunState = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
    let mut state = journaled;
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));

    let fault = CalloutResult {
        status: Some(500),
        body: "{\"error\":\"down\"}".into(),
        fault: Some("Sms.Send failed: HTTP 500".into()),
        micros: 10,
        left_out: Vec::new(),
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
        state.trace().iter().map(|t| (t.element.as_str(), t.result.as_str())).collect();
    assert_eq!(
        path,
        [("build", "next: route"), ("route", "next: send"), ("send", "fault: log"), ("log", "end")]
    );
    assert_eq!(state.trace()[1].outputs["outcome"], "high");
    assert_eq!(state.variables()[2], json!("00T1"), "store_id_in keeps the new Task's id");
    assert_eq!(state.outputs()["send"]["responseCode"], 500);
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
    let result = CalloutResult {
        status: Some(401),
        body: String::new(),
        fault: Some("denied".into()),
        micros: 1,
        left_out: Vec::new(),
    };
    flow.complete_callout(&mut state, result, cx().now);
    let Step::Failed { message } = flow.advance(&mut state, &cx()) else { panic!("the run must fail") };
    assert_eq!(message, "denied");
}

#[test]
fn a_decision_default_and_a_missing_secret() {
    let project = project(&[("Full", FULL)]).unwrap();
    let flow = project.flows["Full"].clone();
    let mut state = start(&project, json!({"LastName": "L"}));
    let Step::Effect(Effect::Callout(_)) = flow.advance(&mut state, &cx()) else { panic!() };
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
    let Step::Effect(Effect::Callout(_)) = flow.advance(&mut state, &cx()) else { panic!() };
    let error = flow.prepare_callout(&mut state, &Nothing, &cx()).unwrap_err();
    assert!(error.contains("`apikey`, which has no value"), "{error}");
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    assert_eq!(prepared.body.unwrap()["apikey"], "Bearer k-123456");
    assert_eq!(state.pending().unwrap().inputs["apikey"], "••••••");
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
    let answer = CalloutResult {
        status: Some(200),
        body: r#"{"ok": true}"#.into(),
        fault: None,
        micros: 3,
        left_out: Vec::new(),
    };
    flow.complete_callout(&mut state, answer, cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.trace()[1].outputs["outcome"], "ok");
    assert_eq!(state.variables()[0], json!(true));

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

/// A campaign flow on Lead records: read the Working leads with a phone, loop over them, send their
/// phones in batches of three, and count the batches.
const CAMPAIGN: &str = r#"
trigger:
  object: Task
  on: create
variables:
  phones: {type: Text, collection: true}
  gathered: {type: Number, default: 0}
  batches: {type: Number, default: 0}
start: members
elements:
  members:
    get: Lead
    how_many: all
    conditions:
      - {field: Status, operator: EqualTo, right: "working"}
      - {field: Phone, operator: IsNull, right: false}
    store_fields: [Phone]
    next: each_member
  each_member:
    loop: "{!members}"
    each: add
    after: any_left
  add:
    assign:
      - phones: {add: "{!each_member.Phone}"}
      - gathered: {assign_count: "{!phones}"}
    next: full
  full:
    decision:
      - {name: yes, conditions: [{left: "{!gathered}", operator: GreaterThanOrEqualTo, right: 3}], next: send}
    default: each_member
  send:
    action: Bulk.Send
    inputs: {destinations: "{!phones}", text: "Sale!"}
    next: clear
  clear:
    assign:
      - phones: "{!$GlobalConstant.EmptyString}"
      - gathered: 0
      - batches: {add: 1}
    next: each_member
  any_left:
    decision:
      - {name: some, conditions: [{left: "{!gathered}", operator: GreaterThan, right: 0}], next: send_last}
  send_last:
    action: Bulk.Send
    inputs: {destinations: "{!phones}", text: "Sale!"}
"#;

const BULK_SERVICE: (&str, &str) = (
    "services/Bulk.yaml",
    "kind: http-callout\nnamed_credential: Endpoint\nactions:\n  Send:\n    method: POST\n    path: /v1/batch\n    sample_request: {destinations: [s], text: s}\n",
);

fn project_with(extra: &[(&str, &str)], flows: &[(&str, &str)]) -> Result<CompiledProject, String> {
    let mut files: Vec<(PathBuf, String)> =
        BASE.iter().chain(extra).map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    files.push((PERMISSIONS.0.into(), PERMISSIONS.1.into()));
    for (name, text) in flows {
        files.push((PathBuf::from(format!("flows/{name}.yaml")), text.to_string()));
    }
    herald_flow::load_files("/test".into(), files).map_err(|d| d.to_string())
}

fn lead(n: usize, status: &str, phone: Option<&str>) -> Map<String, Value> {
    let mut lead = Map::new();
    lead.insert("Id".into(), json!(format!("00Q{n:015}")));
    lead.insert("LastName".into(), json!(format!("L{n}")));
    lead.insert("Status".into(), json!(status));
    if let Some(phone) = phone {
        lead.insert("Phone".into(), json!(phone));
    }
    lead
}

/// Plays the engine for a run: answers Get Records from `leads` and every send with 200, and returns
/// the bodies sent.
fn drive(flow: &herald_flow::CompiledFlow, state: &mut RunState, leads: &[Map<String, Value>]) -> Vec<Value> {
    let mut sent = Vec::new();
    loop {
        match flow.advance(state, &cx()) {
            Step::Finished => return sent,
            Step::Failed { message } => panic!("the run failed: {message}"),
            Step::Effect(Effect::GetRecords { query, .. }) => {
                assert_eq!(query.object, "Lead");
                let kept: Vec<_> =
                    leads.iter().filter(|l| query.matches(l)).map(|l| query.keep(l.clone())).collect();
                flow.complete_get(state, Ok(query.finish(kept)), cx().now, 7);
            }
            Step::Effect(Effect::Callout(_)) => {
                let prepared = flow.prepare_callout(state, &Secrets, &cx()).unwrap();
                sent.push(prepared.body.clone().unwrap());
                // Journal and resume at every send, as the engine does, mid-loop included.
                *state = serde_json::from_str(&serde_json::to_string(&*state).unwrap()).unwrap();
                let answer = CalloutResult {
                    status: Some(200),
                    body: "{}".into(),
                    fault: None,
                    micros: 3,
                    left_out: Vec::new(),
                };
                flow.complete_callout(state, answer, cx().now);
            }
            Step::Effect(other) => panic!("unexpected effect {other:?}"),
            Step::Wait { element, .. } => panic!("unexpected Wait at {element}"),
        }
    }
}

#[test]
fn get_records_and_a_loop_send_every_matching_phone_in_batches() {
    let project = project_with(&[BULK_SERVICE], &[("Campaign", CAMPAIGN)]).unwrap();
    let flow = project.flows["Campaign"].clone();
    let mut leads: Vec<_> = (0..7).map(|n| lead(n, "Working", Some(&format!("+6581234{n:03}")))).collect();
    leads.push(lead(7, "Open", Some("+6589999999")));
    leads.push(lead(8, "Working", None));
    leads.push(lead(9, "WORKING", Some("+6581234009")));
    let mut state = flow.new_run(record(json!({"Subject": "go"})), None, user(), "guid-c".into(), cx().now);
    let sent = drive(&flow, &mut state, &leads);

    let batches: Vec<Vec<&str>> = sent
        .iter()
        .map(|b| b["destinations"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect())
        .collect();
    // Status compares without regard to case, as SOQL does; a lead without a phone or Open is left out.
    assert_eq!(
        batches,
        [
            vec!["+6581234000", "+6581234001", "+6581234002"],
            vec!["+6581234003", "+6581234004", "+6581234005"],
            vec!["+6581234006", "+6581234009"],
        ]
    );
    assert_eq!(state.variables()[2], json!(2), "two full batches counted; the last goes after the loop");
    assert!(state.loops().is_empty(), "a finished loop forgets its place");
    // Only the stored fields (and Id) are kept of each record.
    let stored = state.outputs()["members"]["records"].as_array().unwrap();
    assert_eq!(stored.len(), 8);
    assert_eq!(stored[0], json!({"Id": "00Q000000000000000", "Phone": "+6581234000"}));
    let get = &state.trace()[0];
    assert_eq!((get.kind.as_str(), get.outputs["count"].as_u64()), ("Get Records", Some(8)));
    let loops: Vec<&Value> = state.trace().iter().filter(|t| t.kind == "Loop").map(|t| &t.outputs).collect();
    assert_eq!(
        loops[0],
        &json!({"item": {"Id": "00Q000000000000000", "Phone": "+6581234000"}, "position": 1, "of": 8})
    );
    assert_eq!(loops.last().unwrap(), &&json!({"iterations": 8}));
}

#[test]
fn a_long_loop_keeps_a_bounded_trace_and_counts_what_it_leaves_out() {
    let project = project_with(&[BULK_SERVICE], &[("Campaign", CAMPAIGN)]).unwrap();
    let flow = project.flows["Campaign"].clone();
    let leads: Vec<_> = (0..600).map(|n| lead(n, "Working", Some(&format!("+658{n:07}")))).collect();
    let mut state = flow.new_run(record(json!({"Subject": "go"})), None, user(), "guid-l".into(), cx().now);
    let sent = drive(&flow, &mut state, &leads);
    assert_eq!(sent.len(), 200);
    let phones: usize = sent.iter().map(|b| b["destinations"].as_array().unwrap().len()).sum();
    assert_eq!(phones, 600);
    // Every send is in the trace; the in-memory elements stop being listed and are counted instead.
    let sends = state.trace().iter().filter(|t| t.kind == "Action").count();
    assert_eq!(sends, 200);
    let kept = state.trace().len() - sends;
    let omitted: u64 = state.trace_omitted().values().sum();
    // Get Records; the loop once per lead and once after the last; add and full once per lead;
    // clear once per batch; any_left once.
    assert_eq!(kept as u64 + omitted, 1 + 601 + 600 + 600 + 200 + 1);
    assert_eq!(
        kept,
        herald_flow::TRACE_KEPT
            - state.trace().iter().take(herald_flow::TRACE_KEPT).filter(|t| t.kind == "Action").count()
    );
    let adds_listed = state.trace().iter().filter(|t| t.element == "add").count() as u64;
    assert_eq!(state.trace_omitted()["add"] + adds_listed, 600);
}

#[test]
fn get_records_sorts_keeps_the_first_and_reads_its_fields() {
    let flow = r#"
trigger: {object: Task, on: create}
variables:
  top: {type: Text}
start: best
elements:
  best:
    get: Lead
    conditions:
      - {field: FirstName, operator: StartsWith, right: "a"}
    sort_by: Score
    sort_order: descending
    store_fields: [LastName]
    next: keep
  keep:
    assign:
      - top: "{!best.LastName}"
    next: none
  none:
    get: Lead
    conditions: [{field: Score, operator: GreaterThan, right: 1000}]
"#;
    let project = project(&[("Best", flow)]).unwrap();
    let flow = project.flows["Best"].clone();
    let lead_with = |n: usize, first: &str, score: f64| {
        let mut l = lead(n, "Open", None);
        l.insert("FirstName".into(), json!(first));
        l.insert("Score".into(), json!(score));
        l
    };
    let leads = vec![
        lead_with(1, "Ada", 5.0),
        lead_with(2, "alan", 9.0),
        lead_with(3, "Bob", 99.0),
        lead_with(4, "Al", 7.0),
    ];
    let mut state = flow.new_run(record(json!({"Subject": "go"})), None, user(), "guid-b".into(), cx().now);
    drive(&flow, &mut state, &leads);
    assert_eq!(state.variables()[0], json!("L2"), "the highest score among names starting with a/A");
    assert_eq!(state.outputs()["best"]["record"], json!({"Id": "00Q000000000000002", "LastName": "L2"}));
    assert_eq!(state.outputs()["none"]["record"], Value::Null, "no match is an empty output, not a fault");
}

#[test]
fn get_records_and_loop_mistakes_are_reported_where_they_are() {
    let cases = [
        ("loop: \"{!members}\"\n    each: add", "how_many: first", "HF032", "stores only the first record"),
        ("loop: \"{!members}\"", "how_many: all", "HF032", "needs `each`"),
        ("loop: \"{!members}\"\n    each: add\n    next: add", "how_many: all", "HF014", "not `next`"),
        ("loop: \"{!nothing}\"\n    each: add", "how_many: all", "HF032", "not a collection"),
    ];
    for (looping, how_many, code, message) in cases {
        let flow = format!(
            "trigger: {{object: Task, on: create}}\nvariables:\n  n: {{type: Number}}\nstart: members\nelements:\n  members:\n    get: Lead\n    {how_many}\n    next: each_member\n  each_member:\n    {looping}\n  add:\n    assign: [{{n: 1}}]\n"
        );
        let error = project(&[("Bad", &flow)]).unwrap_err();
        assert!(error.contains(code) && error.contains(message), "{looping}: {error}");
    }
    let get_cases = [
        ("store_fields: [Phone, Phnoe]", "HF031", "Lead has no field `Phnoe`"),
        ("conditions: [{field: Status, operator: IsChanged}]", "HF012", "does not apply to Get Records"),
        ("conditions: [{left: \"{!$Record.Subject}\", operator: IsNull}]", "HF010", "names a field of Lead"),
        ("conditions: [{field: Score, operator: EqualTo, right: true}]", "HF031", "does not fit Lead.Score"),
        ("sort_order: descending", "HF031", "without `sort_by`"),
    ];
    for (keys, code, message) in get_cases {
        let flow = format!(
            "trigger: {{object: Task, on: create}}\nstart: members\nelements:\n  members:\n    get: Lead\n    {keys}\n"
        );
        let error = project(&[("Bad", &flow)]).unwrap_err();
        assert!(error.contains(code) && error.contains(message), "{keys}: {error}");
    }
    // A field that is not stored cannot be read.
    let flow = "trigger: {object: Task, on: create}\nvariables:\n  t: {type: Text}\nstart: one\nelements:\n  one:\n    get: Lead\n    store_fields: [Phone]\n    next: read\n  read:\n    assign: [{t: \"{!one.LastName}\"}]\n";
    let error = project(&[("Bad", flow)]).unwrap_err();
    assert!(error.contains("not one of them") && error.contains("store_fields"), "{error}");
}

#[test]
fn a_loop_over_a_text_collection_runs_last_to_first_and_can_run_again() {
    let flow = r#"
trigger: {object: Task, on: create}
variables:
  names: {type: Text, collection: true, default: [a, b, c]}
  seen: {type: Text}
  rounds: {type: Number, default: 0}
start: each_name
elements:
  each_name:
    loop: "{!names}"
    direction: last_to_first
    each: note
    after: again
  note:
    assign: [{seen: {add: "{!each_name}"}}]
    next: each_name
  again:
    assign: [{rounds: {add: 1}}]
    next: twice
  twice:
    decision:
      - {name: more, conditions: [{left: "{!rounds}", operator: LessThan, right: 2}], next: each_name}
"#;
    let project = project(&[("Names", flow)]).unwrap();
    let flow = project.flows["Names"].clone();
    let mut state = flow.new_run(record(json!({"Subject": "go"})), None, user(), "guid-n".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.variables()[1], json!("cbacba"));
}

/// One mistake at a time in the FULL flow, each reported under its code (docs/errors.md, HF table).
#[test]
fn each_flow_mistake_is_reported_under_its_code() {
    let cases: &[(&str, &str, &str)] = &[
        ("HF001", "{object: Lead, on: create}", "{object: Leed, on: create}"),
        (
            "HF002",
            "{object: Lead, on: create}",
            "{object: Lead, on: create, only_when_updated_to_meet: true}",
        ),
        ("HF003", "variables:\n", "variables:\n  bad__name: {type: Text}\n"),
        ("HF004", "taskId: {type: Text}", "taskId: {type: Txt}"),
        ("HF005", "attempts: {type: Number, default: 0}", "attempts: {type: Number, default: \"ten\"}"),
        ("HF007", "        conditions: [{left", "        when: \"true\"\n        conditions: [{left"),
        (
            "HF008",
            "conditions: [{left: \"{!attempts}\", operator: GreaterThanOrEqualTo, right: 2}]",
            "when: \"LEN({!greeting})\"",
        ),
        ("HF009", "right: 2}]\n", "right: 2}]\n        logic: \"1 AND 2\"\n"),
        ("HF011", "operator: GreaterThanOrEqualTo, right: 2}", "operator: GreaterThanOrEqualTo}"),
        ("HF013", "  build:\n    assign:", "  build:\n    create: Task\n    assign:"),
        ("HF016", "action: Sms.Send", "action: Sms.Sendd"),
        ("HF017", "      to: ", "      too: "),
        ("HF018", "    fault: log\n", "    fault: log\n    outputs: {status: attempts}\n"),
        ("HF019", "store_id_in: taskId", "store_id_in: taskid2"),
        (
            "HF021",
            "create: Task\n    fields:\n      Subject: \"Failed: {!$Flow.FaultMessage}\"\n      WhoId: \"{!$Record.Id}\"",
            "create: Lead\n    fields:\n      LastName: Failed\n      Score: ten",
        ),
        ("HF022", "      Subject: \"Failed: {!$Flow.FaultMessage}\"\n", ""),
        ("HF023", "- attempts: {add: 2}", "- {attempts: {add: 2}, greeting: x}"),
        ("HF024", "- attempts: {add: 2}", "- attempts.count: {add: 2}"),
        ("HF025", "- attempts: {add: 2}", "- attempts: {addd: 2}"),
        ("HF030", "    action: Sms.Send\n", "    action: Sms.Send\n    retry: {max_attempts: 0}\n"),
    ];
    for (code, from, to) in cases {
        assert!(FULL.contains(from), "{code}: the FULL flow has no `{from}`");
        let text = errors(&FULL.replacen(from, to, 1));
        assert!(text.contains(&format!("error[{code}]")), "{code}: {text}");
    }
}

/// An autolaunched flow (no `trigger:`): typed inputs, an Assignment, a callout, outputs.
const AUTOLAUNCHED: &str = r#"
variables:
  phone: {type: Text, input: true}
  count: {type: Number, input: true, default: 1}
  tags: {type: Text, collection: true, input: true}
  greeting: {type: Text, output: true}
  code: {type: Number, output: true}
  internal: {type: Text, default: "kept"}
start: build
elements:
  build:
    assign:
      - greeting: "Hello {!phone}, {!count} time(s)"
    next: send
  send:
    action: Sms.Send
    inputs:
      account: acme
      apikey: "{!$Credential.Auth.apikey}"
      to: "{!phone}"
      text: "{!greeting}"
      count: "{!count}"
    outputs:
      responseCode: code
"#;

fn inputs(values: Value) -> Map<String, Value> {
    values.as_object().unwrap().clone()
}

#[test]
fn an_autolaunched_flow_runs_from_typed_inputs_and_shows_its_output_variables() {
    let project = project(&[("Auto", AUTOLAUNCHED)]).unwrap();
    let flow = project.flows["Auto"].clone();
    assert!(flow.is_autolaunched());
    let given = inputs(json!({"phone": "+14155550100", "count": "3", "tags": ["a", "b"]}));
    let mut state = flow.new_autolaunched_run(&given, user(), "guid-2".into(), cx().now).unwrap();
    assert!(state.record().is_empty(), "an autolaunched run has no record");

    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    // "3" was converted to the Number the variable is declared as.
    assert_eq!(
        prepared.body,
        Some(
            json!({"apikey": "k-123456", "to": "+14155550100", "text": "Hello +14155550100, 3 time(s)", "count": 3})
        )
    );
    let answer = CalloutResult {
        status: Some(200),
        body: "{\"ok\":true}".into(),
        fault: None,
        micros: 5,
        left_out: Vec::new(),
    };
    flow.complete_callout(&mut state, answer, cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));

    let outputs: Vec<(&str, Value)> = flow.output_values(&state).map(|(n, v)| (n, v.clone())).collect();
    assert_eq!(
        outputs,
        [("greeting", json!("Hello +14155550100, 3 time(s)")), ("code", json!(200))],
        "only the variables marked output, in declaration order"
    );
    assert_eq!(state.variables()[2], json!(["a", "b"]), "a collection input is kept item by item");
}

#[test]
fn an_autolaunched_flow_without_inputs_keeps_the_defaults() {
    let project = project(&[("Auto", AUTOLAUNCHED)]).unwrap();
    let flow = &project.flows["Auto"];
    let state = flow.new_autolaunched_run(&Map::new(), user(), "guid-3".into(), cx().now).unwrap();
    assert_eq!(state.variables()[1], json!(1));
    assert_eq!(state.variables()[5], json!("kept"));
}

#[test]
fn an_input_of_the_wrong_type_is_refused_naming_the_variable_and_its_type() {
    let project = project(&[("Auto", AUTOLAUNCHED)]).unwrap();
    let flow = &project.flows["Auto"];
    let given = inputs(json!({"count": "three", "tags": "a", "phone": 5}));
    let error = flow.new_autolaunched_run(&given, user(), "g".into(), cx().now).unwrap_err();
    assert!(error.contains("input `count` (Number): expected Number"), "{error}");
    assert!(error.contains("input `tags` (Text collection): expected a JSON array"), "{error}");
    assert!(
        error.contains("input `phone` (Text): expected Text (a JSON string), found the number 5; to give it as text, quote it as JSON: \"5\""),
        "{error}"
    );
    assert_eq!(error.lines().count(), 3, "every problem at once: {error}");
}

#[test]
fn an_unknown_input_or_a_variable_not_marked_input_is_refused_with_a_hint() {
    let project = project(&[("Auto", AUTOLAUNCHED)]).unwrap();
    let flow = &project.flows["Auto"];
    let error =
        flow.new_autolaunched_run(&inputs(json!({"phnoe": "x"})), user(), "g".into(), cx().now).unwrap_err();
    assert!(error.contains("flow Auto has no variable `phnoe`; did you mean `phone`?"), "{error}");
    let error = flow
        .new_autolaunched_run(&inputs(json!({"internal": "x"})), user(), "g".into(), cx().now)
        .unwrap_err();
    assert!(error.contains("`internal` is not available for input; mark it `input: true`"), "{error}");
}

#[test]
fn a_record_triggered_flow_cannot_start_from_inputs_and_an_autolaunched_one_is_never_triggered() {
    let project = project(&[("Auto", AUTOLAUNCHED), ("Full", FULL)]).unwrap();
    let error =
        project.flows["Full"].new_autolaunched_run(&Map::new(), user(), "g".into(), cx().now).unwrap_err();
    assert!(error.contains("flow Full is record-triggered (on Lead)"), "{error}");
    for object in ["Lead", "Task", ""] {
        for created in [true, false] {
            assert!(
                project.triggered_flows(object, created).all(|flow| flow.name != "Auto"),
                "{object} {created}"
            );
        }
    }
}

#[test]
fn record_in_an_autolaunched_flow_is_refused_at_its_position_with_a_hint() {
    let flow = AUTOLAUNCHED.replace("to: \"{!phone}\"", "to: \"{!$Record.Phone}\"");
    let text = errors(&flow);
    let line = flow.lines().position(|l| l.contains("$Record.Phone")).unwrap() + 1;
    assert!(text.contains(&format!("flows/Bad.yaml:{line}:")), "{text}");
    assert!(text.contains("error[HX004]"), "{text}");
    assert!(text.contains("`$Record` only exists in a record-triggered flow"), "{text}");
    assert!(text.contains("declare a variable with `input: true`"), "{text}");

    let prior = AUTOLAUNCHED.replace("to: \"{!phone}\"", "to: \"{!$Record__Prior.Phone}\"");
    assert!(errors(&prior).contains("`$Record__Prior` only exists in a record-triggered flow"));
}

#[test]
fn input_and_output_flags_in_a_record_triggered_flow_are_refused() {
    let flow = FULL.replacen("variables:\n", "variables:\n  extra: {type: Text, input: true}\n", 1);
    let text = errors(&flow);
    let (line, column) =
        flow.lines().enumerate().find_map(|(n, l)| l.find("input: true").map(|c| (n + 1, c + 1))).unwrap();
    assert!(
        text.contains(&format!(
            "flows/Bad.yaml:{line}:{column}: error[HF033]: `extra` is marked `input: true`, but this flow is record-triggered"
        )),
        "{text}"
    );
    assert!(text.contains("remove `input: true`"), "{text}");
}
