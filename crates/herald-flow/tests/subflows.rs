//! Subflow elements, driven without any I/O: the test plays the engine. A called flow runs as a frame
//! inside the caller's one serialisable state, so its callouts, journaling and faults behave as the
//! caller's own.

use chrono::{TimeZone, Utc};
use herald_expr::EvalContext;
use herald_flow::{CalloutResult, CompiledProject, Effect, RunState, RunUser, SecretSource, Step};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;

const BASE: [(&str, &str); 7] = [
    ("herald.toml", "[automation]\npermission_sets = [\"Api\"]\n"),
    (
        "objects/Lead.yaml",
        "kind: object\nkey_prefix: 00Q\nfields:\n  FirstName: {type: text}\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n",
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
        "kind: http-callout\nnamed_credential: Endpoint\nactions:\n  Send:\n    method: POST\n    path: /v1/send\n    sample_request: {apikey: s, to: s, text: s}\n    sample_response: {ok: true}\n",
    ),
    ("permissions/Api.yaml", "kind: permission-set\nexternal_credential_principal_access: [Auth-Main]\n"),
];

/// The called flow: sends `text` to `recipient` and gives back the response code and what it sent.
const SEND_TEXT: &str = r#"
variables:
  recipient: {type: Text, input: true}
  text: {type: Text, input: true, default: "Hello"}
  attempts: {type: Number, input: true, default: 1}
  code: {type: Number, output: true}
  sent: {type: Text, output: true}
  internal: {type: Text}
start: compose
elements:
  compose:
    assign:
      - sent: "{!text} ({!attempts})"
    next: send
  send:
    action: Sms.Send
    inputs:
      apikey: "{!$Credential.Auth.apikey}"
      to: "{!recipient}"
      text: "{!sent}"
    outputs:
      responseCode: code
"#;

/// A Lead-triggered flow that calls it and logs a Task when it fails.
const WELCOME: &str = r#"
trigger: {object: Lead, on: create}
variables:
  status: {type: Number}
  message: {type: Text}
start: call_send
elements:
  call_send:
    subflow: Send_Text
    inputs:
      recipient: "{!$Record.Phone}"
      text: "Hi {!$Record.FirstName}"
    outputs:
      code: status
      sent: message
    next: after
    fault: log
  after:
    assign:
      - message: {add: " ok"}
  log:
    create: Task
    fields:
      Subject: "Failed: {!$Flow.FaultMessage}"
      WhoId: "{!$Record.Id}"
"#;

fn project(flows: &[(&str, &str)]) -> Result<CompiledProject, String> {
    let mut files: Vec<(PathBuf, String)> =
        BASE.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    for (name, text) in flows {
        files.push((PathBuf::from(format!("flows/{name}.yaml")), text.to_string()));
    }
    herald_flow::load_files("/test".into(), files).map_err(|d| d.to_string())
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

fn lead() -> Map<String, Value> {
    json!({"Id": "00Q000000000000001", "LastName": "Lovelace", "FirstName": "Ada", "Phone": "+14155550100"})
        .as_object()
        .unwrap()
        .clone()
}

fn answer(status: u16, fault: Option<&str>) -> CalloutResult {
    CalloutResult {
        status: Some(status),
        body: "{\"ok\":true}".into(),
        fault: fault.map(String::from),
        micros: 7,
        left_out: Vec::new(),
    }
}

/// Journals the state and reads it back, as a crash and a restart would.
fn journaled(state: &RunState) -> RunState {
    serde_json::from_value(serde_json::to_value(state).unwrap()).unwrap()
}

#[test]
fn a_subflow_sends_with_the_callers_values_and_gives_back_its_outputs() {
    let project = project(&[("Send_Text", SEND_TEXT), ("Welcome", WELCOME)]).unwrap();
    let flow = project.flows["Welcome"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-1".into(), cx().now);

    let Step::Effect(Effect::Callout(effect)) = flow.advance(&mut state, &cx()) else {
        panic!("the subflow's callout is the run's effect")
    };
    assert_eq!(effect.element, "send");
    assert_eq!(flow.pending_credential(&state).unwrap().external_credential, "Auth");
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    assert_eq!(
        prepared.body,
        Some(json!({"apikey": "k-123456", "to": "+14155550100", "text": "Hi Ada (1)"}))
    );
    flow.mark_sent(&mut state, cx().now);
    assert!(state.pending().is_some_and(|p| p.sent), "the subflow's attempt is journaled as sent");

    // A crash while the subflow's request is on the wire: the journal brings back the same attempt.
    let key = state.pending().unwrap().idempotency_key.clone();
    let mut state = journaled(&state);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    assert_eq!(state.pending().unwrap().idempotency_key, key, "a resend keeps its idempotency key");

    flow.complete_callout(&mut state, answer(200, None), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    assert_eq!(state.variables()[0], json!(200), "the output `code` went into `status`");
    assert_eq!(state.variables()[1], json!("Hi Ada (1) ok"), "`sent` went into `message`, then on");

    let path: Vec<(Option<&str>, &str, &str)> =
        state.trace().iter().map(|t| (t.flow.as_deref(), t.element.as_str(), t.result.as_str())).collect();
    assert_eq!(
        path,
        [
            (None, "call_send", "subflow: Send_Text"),
            (Some("Send_Text"), "compose", "next: send"),
            (Some("Send_Text"), "send", "end"),
            (None, "call_send", "next: after"),
            (None, "after", "end"),
        ]
    );
    assert_eq!(state.trace()[0].inputs, json!({"recipient": "+14155550100", "text": "Hi Ada"}));
    assert_eq!(state.trace()[3].outputs, json!({"code": 200, "sent": "Hi Ada (1)"}));
}

#[test]
fn each_call_of_a_subflow_has_its_own_idempotency_keys() {
    let twice = r#"
trigger: {object: Lead, on: create}
start: first
elements:
  first:
    subflow: Send_Text
    inputs: {recipient: "{!$Record.Phone}"}
    next: second
  second:
    subflow: Send_Text
    inputs: {recipient: "{!$Record.Phone}"}
"#;
    let project = project(&[("Send_Text", SEND_TEXT), ("Twice", twice)]).unwrap();
    let flow = project.flows["Twice"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-2".into(), cx().now);
    let mut keys = Vec::new();
    while let Step::Effect(Effect::Callout(_)) = flow.advance(&mut state, &cx()) {
        flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
        keys.push(state.pending().unwrap().idempotency_key.clone());
        flow.complete_callout(&mut state, answer(200, None), cx().now);
    }
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_ne!(keys[0], keys[1], "the same element of two calls is two messages");
    assert!(state.ended() && state.failure().is_none());
}

#[test]
fn a_fault_the_subflow_does_not_catch_takes_the_subflow_elements_fault_path() {
    let project = project(&[("Send_Text", SEND_TEXT), ("Welcome", WELCOME)]).unwrap();
    let flow = project.flows["Welcome"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-3".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    flow.complete_callout(&mut state, answer(500, Some("Sms.Send failed: HTTP 500")), cx().now);

    let Step::Effect(Effect::CreateRecord { fields, .. }) = flow.advance(&mut state, &cx()) else {
        panic!("expected the caller's fault path")
    };
    assert_eq!(fields["Subject"], "Failed: subflow Send_Text failed: Sms.Send failed: HTTP 500");
    flow.complete_create(&mut state, Ok("00T1".into()), &[], cx().now, 3);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished));
    let results: Vec<&str> = state.trace().iter().map(|t| t.result.as_str()).collect();
    assert_eq!(results, ["subflow: Send_Text", "next: send", "failed", "fault: log", "end"]);

    // Without a fault connector on the Subflow element, the run fails, stopped at that element.
    let project = project_without_fault();
    let flow = project.flows["Welcome"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-4".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    flow.complete_callout(&mut state, answer(500, Some("Sms.Send failed: HTTP 500")), cx().now);
    let Step::Failed { message } = flow.advance(&mut state, &cx()) else { panic!("the run fails") };
    assert!(message.contains("subflow Send_Text failed: Sms.Send failed: HTTP 500"), "{message}");
    assert_eq!(flow.stopped_at(&state).as_deref(), Some("call_send"), "a retry calls the subflow again");
}

fn project_without_fault() -> CompiledProject {
    project(&[("Send_Text", SEND_TEXT), ("Welcome", &WELCOME.replace("    fault: log\n", ""))]).unwrap()
}

#[test]
fn a_retry_inside_a_subflow_waits_in_the_subflow_and_is_traced_there() {
    let project = project(&[("Send_Text", SEND_TEXT), ("Welcome", WELCOME)]).unwrap();
    let flow = project.flows["Welcome"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-5".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    flow.mark_sent(&mut state, cx().now);
    let at = cx().now + chrono::Duration::seconds(30);
    let retry = herald_flow::RetryAt { at, error: "HTTP 503".into(), micros: 4, maybe_arrived: false };
    flow.schedule_retry(&mut state, retry, cx().now);
    assert_eq!(state.pending().unwrap().next_attempt_at, Some(at));
    let last = state.trace().last().unwrap();
    assert_eq!((last.flow.as_deref(), last.element.as_str()), (Some("Send_Text"), "send"));
    assert_eq!(flow.retry_now(&mut state).as_deref(), Some("send"));
    let mut state = journaled(&state);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
}

fn errors(flows: &[(&str, &str)]) -> String {
    project(flows).unwrap_err()
}

#[test]
fn a_subflow_call_is_checked_against_the_called_flow_when_the_project_loads() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "HF045",
            "subflow: Send_Text",
            "subflow: Send_Txt",
            "no flow named `Send_Txt`\n  hint: did you mean `Send_Text`?",
        ),
        ("HF046", "      recipient: ", "      recipiant: ", "`Send_Text` has no variable `recipiant`"),
        ("HF046", "      text: \"Hi", "      text: 42\n      x: \"Hi", "no variable `x`"),
        (
            "HF047",
            "      code: status",
            "      internal: status",
            "`internal` of `Send_Text` is not available for output",
        ),
        ("HF047", "      sent: message", "      code: message2", "unknown variable `message2`"),
    ];
    for (code, from, to, expected) in cases {
        assert!(WELCOME.contains(from), "{code}: WELCOME has no `{from}`");
        let text = errors(&[("Send_Text", SEND_TEXT), ("Welcome", &WELCOME.replacen(from, to, 1))]);
        assert!(text.contains(&format!("error[{code}]")), "{code}: {text}");
        assert!(text.contains(expected), "{code}: {expected} missing in {text}");
    }
    // Positions point into the calling flow's file.
    let text = errors(&[("Send_Text", SEND_TEXT), ("Welcome", &WELCOME.replace("Send_Text", "Send_Txt"))]);
    assert!(text.contains("flows/Welcome.yaml:9:14: error[HF045]"), "{text}");

    let wrong_type = WELCOME
        .replace("      text: \"Hi {!$Record.FirstName}\"", "      attempts: \"{!$Record.FirstName}\"");
    let text = errors(&[("Send_Text", SEND_TEXT), ("Welcome", &wrong_type)]);
    assert!(
        text.contains(
            "error[HF046]: input `attempts` of `Send_Text` (Number): a Number target cannot take a Text value"
        ),
        "{text}"
    );

    let not_input = WELCOME.replace("      text: \"Hi", "      internal: \"Hi");
    let text = errors(&[("Send_Text", SEND_TEXT), ("Welcome", &not_input)]);
    assert!(text.contains("variable `internal` of `Send_Text` is not available for input"), "{text}");
    assert!(text.contains("mark it `input: true` in flows/Send_Text.yaml"), "{text}");

    let into_date = WELCOME.replace("  status: {type: Number}", "  status: {type: Date}");
    let text = errors(&[("Send_Text", SEND_TEXT), ("Welcome", &into_date)]);
    assert!(
        text.contains("`status` is Date, so it cannot take `code` of `Send_Text`, which is Number"),
        "{text}"
    );

    // A record-triggered flow cannot be called.
    let text = errors(&[
        ("Send_Text", SEND_TEXT),
        ("Welcome", WELCOME),
        ("Other", &WELCOME.replace("Send_Text", "Welcome")),
    ]);
    assert!(
        text.contains("`Welcome` is record-triggered (on Lead); only an autolaunched flow can be called"),
        "{text}"
    );
}

fn caller(name: &str, calls: &str) -> (String, String) {
    let text = format!("start: call\nelements:\n  call:\n    subflow: {calls}\n");
    (name.to_string(), text)
}

#[test]
fn subflows_that_call_each_other_are_refused_naming_the_cycle() {
    let (a, b, c) = (caller("A", "B"), caller("B", "C"), caller("C", "A"));
    let text = errors(&[(&a.0, &a.1), (&b.0, &b.1), (&c.0, &c.1)]);
    assert!(text.contains("error[HF048]: subflows call each other in a cycle: A → B → C → A"), "{text}");
    assert_eq!(text.matches("HF048").count(), 1, "one cycle, reported once: {text}");

    let own = caller("Self", "Self");
    let text = errors(&[(&own.0, &own.1)]);
    assert!(
        text.contains(
            "flows/Self.yaml:4:14: error[HF048]: flow `Self` calls itself as a subflow (Self → Self)"
        ),
        "{text}"
    );
}

#[test]
fn subflows_nested_deeper_than_the_limit_are_refused_and_the_limit_itself_loads() {
    let chain = |levels: usize| -> Vec<(String, String)> {
        let mut flows: Vec<(String, String)> =
            (0..levels).map(|i| caller(&format!("F{i}"), &format!("F{}", i + 1))).collect();
        flows.push((
            format!("F{levels}"),
            "start: done\nelements:\n  done:\n    assign: [{n: 1}]\nvariables:\n  n: {type: Number}\n".into(),
        ));
        flows
    };
    let eight = chain(8);
    let refs: Vec<(&str, &str)> = eight.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert!(project(&refs).is_ok(), "8 levels are allowed");
    let nine = chain(9);
    let refs: Vec<(&str, &str)> = nine.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let text = project(&refs).unwrap_err();
    assert!(text.contains("flows/F0.yaml:4:14: error[HF049]: subflows are nested 9 levels deep here (F0 → F1 → F2 → F3 → F4 → F5 → F6 → F7 → F8 → F9); at most 8 are allowed"), "{text}");
    assert_eq!(text.matches("HF049").count(), 1, "{text}");
}

#[test]
fn a_number_given_to_a_text_input_or_output_arrives_as_text() {
    let caller = r#"
trigger: {object: Lead, on: create}
variables:
  shown: {type: Text}
start: call_send
elements:
  call_send:
    subflow: Send_Text
    inputs: {recipient: "{!$Record.Phone}", text: 42}
    outputs: {code: shown}
"#;
    let project = project(&[("Send_Text", SEND_TEXT), ("Numbers", caller)]).unwrap();
    let flow = project.flows["Numbers"].clone();
    let mut state = flow.new_run(lead(), None, user(), "guid-6".into(), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Effect(Effect::Callout(_))));
    let prepared = flow.prepare_callout(&mut state, &Secrets, &cx()).unwrap();
    assert_eq!(prepared.body.unwrap()["text"], "42 (1)");
    flow.complete_callout(&mut state, answer(200, None), cx().now);
    assert!(matches!(flow.advance(&mut state, &cx()), Step::Finished), "{:?}", state.failure());
    assert_eq!(state.variables()[0], json!("200"), "the Number output is text in a Text variable");
}
