//! Flow resources besides variables: formulas (typed, recomputed when read), text templates, constants,
//! custom labels (`$Label`) and `$GlobalConstant`; their load-time checks and their values in a run.

use chrono::{TimeZone, Utc};
use herald_expr::EvalContext;
use herald_flow::{CompiledProject, Effect, RunUser, Step};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

const BASE: [(&str, &str); 3] = [
    ("herald.toml", ""),
    (
        "objects/Lead.yaml",
        "kind: object\nkey_prefix: 00Q\nfields:\n  FirstName: {type: text}\n  LastName: {type: text, required: true}\n  Score: {type: number}\n",
    ),
    (
        "objects/Task.yaml",
        "kind: object\nkey_prefix: 00T\nfields:\n  Subject: {type: text, required: true}\n",
    ),
];

fn load(extra: &[(&str, &str)]) -> Result<CompiledProject, herald_project::Diagnostics> {
    let files = BASE.iter().chain(extra).map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    herald_flow::load_files("/t".into(), files)
}

fn refused(extra: &[(&str, &str)]) -> herald_project::Diagnostics {
    match load(extra) {
        Ok(_) => panic!("the project should not load"),
        Err(problems) => problems,
    }
}

fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 0).unwrap())
}

fn user() -> RunUser {
    RunUser { id: "005".into(), name: "Automated Process".into() }
}

/// Runs an autolaunched flow made only of Assignments and Decisions; its output variables.
fn run_autolaunched(
    project: &CompiledProject,
    flow: &str,
    inputs: Value,
) -> Result<Map<String, Value>, String> {
    let flow = &project.flows[flow];
    let mut state =
        flow.new_autolaunched_run(inputs.as_object().unwrap(), user(), "guid".into(), cx().now)?;
    match flow.advance(&mut state, &cx()) {
        Step::Finished => {}
        Step::Failed { message } => return Err(message),
        Step::Effect(_) | Step::Wait { .. } => panic!("no effect or wait expected"),
    }
    Ok(flow.output_values(&state).map(|(name, value)| (name.to_string(), value.clone())).collect())
}

const RECOMPUTED: &str = r#"
variables:
  n: {type: Number, input: true, default: 1}
  before: {type: Number, output: true}
  after: {type: Number, output: true}
  label: {type: Text, output: true}
formulas:
  doubled: {type: Number, expression: "{!n} * 2"}
  describe: {type: Text, expression: "IF({!doubled} > 10, \"big\", \"small\") & {!suffix}"}
constants:
  suffix: {type: Text, value: "!"}
start: Take
elements:
  Take:
    assign:
      - before: "{!doubled}"
      - n: {add: 5}
      - after: "{!doubled}"
      - label: "{!describe}"
"#;

#[test]
fn a_formula_is_recomputed_each_time_it_is_read() {
    let project = load(&[("flows/Double.yaml", RECOMPUTED)]).unwrap_or_else(|d| panic!("{d}"));
    let outputs = run_autolaunched(&project, "Double", json!({})).unwrap();
    assert_eq!(outputs["before"], json!(2), "{outputs:?}");
    assert_eq!(outputs["after"], json!(12), "the formula follows the variable it reads: {outputs:?}");
    assert_eq!(outputs["label"], json!("big!"), "a formula reads another formula and a constant");
    let outputs = run_autolaunched(&project, "Double", json!({"n": -10})).unwrap();
    assert_eq!(outputs["label"], json!("small!"));
}

#[test]
fn a_formula_that_fails_when_read_fails_the_run_with_its_name() {
    let flow = r#"
variables:
  n: {type: Number, input: true, default: 0}
  r: {type: Number, output: true}
formulas:
  ratio: {type: Number, expression: "10 / {!n}"}
start: Take
elements:
  Take: {assign: [{r: "{!ratio}"}]}
"#;
    let project = load(&[("flows/Ratio.yaml", flow)]).unwrap_or_else(|d| panic!("{d}"));
    let error = run_autolaunched(&project, "Ratio", json!({})).unwrap_err();
    assert!(error.contains("the formula `ratio` could not be evaluated"), "{error}");
    assert_eq!(run_autolaunched(&project, "Ratio", json!({"n": 4})).unwrap()["r"], json!(2.5));
}

#[test]
fn a_text_template_renders_the_record_constants_and_labels_when_read() {
    let flow = r#"
trigger: {object: Lead, on: create}
constants:
  code: {type: Number, value: 4711}
text_templates:
  welcome:
    text: "Hi {!$Record.FirstName}, your code is {!code}. {!$Label.Opt_Out}"
start: Log
elements:
  Log:
    create: Task
    fields:
      Subject: "{!welcome}"
"#;
    let labels = "Opt_Out:\n  value: Reply STOP to opt out.\n  description: Seed 000's opt-out line\n";
    let project =
        load(&[("flows/Welcome.yaml", flow), ("labels/Sms.yaml", labels)]).unwrap_or_else(|d| panic!("{d}"));
    let flow = &project.flows["Welcome"];
    let mut record = Map::new();
    record.insert("Id".into(), json!("00Q000000000000001"));
    record.insert("FirstName".into(), json!("Ada"));
    let mut state = flow.new_run(record, None, user(), "guid".into(), cx().now);
    let Step::Effect(Effect::CreateRecord { fields, .. }) = flow.advance(&mut state, &cx()) else {
        panic!("expected Create Records")
    };
    assert_eq!(fields["Subject"], json!("Hi Ada, your code is 4711. Reply STOP to opt out."));
}

#[test]
fn global_constants_are_typed_values() {
    let flow = r#"
variables:
  yes: {type: Boolean, output: true}
  blank: {type: Boolean, output: true}
formulas:
  both: {type: Boolean, expression: "AND({!$GlobalConstant.True}, NOT({!$GlobalConstant.False}))"}
start: Take
elements:
  Take:
    assign:
      - yes: "{!both}"
      - blank: "{!$GlobalConstant.False}"
"#;
    let project = load(&[("flows/G.yaml", flow)]).unwrap_or_else(|d| panic!("{d}"));
    let outputs = run_autolaunched(&project, "G", json!({})).unwrap();
    assert_eq!(outputs["yes"], json!(true));
    assert_eq!(outputs["blank"], json!(false));
}

#[test]
fn a_formula_whose_expression_is_not_of_its_type_is_refused_at_its_line() {
    let flow = "variables:\n  x: {type: Number}\nformulas:\n  total:\n    type: Number\n    expression: \"UPPER('a')\"\nstart: s\nelements:\n  s: {assign: [{x: \"{!total}\"}]}\n";
    let problems = refused(&[("flows/F.yaml", flow)]);
    let problem = problems.iter().find(|d| d.code == "HF040").unwrap_or_else(|| panic!("{problems}"));
    assert_eq!(problem.file, PathBuf::from("flows/F.yaml"));
    assert_eq!(problem.line, 6, "{problem}");
    assert!(problem.message.contains("declared Number, but its expression returns Text"), "{problem}");
    let unknown =
        "formulas:\n  total: {type: Numbr, expression: \"1\"}\nstart: s\nelements:\n  s: {assign: []}\n";
    let problems = refused(&[("flows/F.yaml", unknown)]);
    let problem = problems.iter().find(|d| d.code == "HF040").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.to_string().contains("did you mean `Number`?"), "{problem}");
}

#[test]
fn formulas_that_read_each_other_in_a_cycle_are_refused() {
    let flow = r#"
variables:
  x: {type: Number}
formulas:
  a: {type: Number, expression: "{!b} + 1"}
  b: {type: Number, expression: "{!c} + 1"}
  c: {type: Number, expression: "{!a} + 1"}
  fine: {type: Number, expression: "{!x} + 1"}
start: s
elements:
  s: {assign: [{x: "{!fine}"}]}
"#;
    let problems = refused(&[("flows/F.yaml", flow)]);
    let problem = problems.iter().find(|d| d.code == "HF041").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("a -> b -> c -> a"), "{problem}");
    assert_eq!(problem.line, 5, "at the first formula of the cycle: {problem}");
    let template_cycle = "text_templates:\n  t: {text: \"x {!t}\"}\nstart: s\nelements:\n  s: {assign: []}\n";
    let problems = refused(&[("flows/F.yaml", template_cycle)]);
    assert!(problems.iter().any(|d| d.code == "HF041"), "{problems}");
}

#[test]
fn a_constant_is_typed_and_read_only() {
    let assigned = r#"
variables:
  x: {type: Text}
constants:
  sender: {type: Text, value: "8x8"}
start: s
elements:
  s: {assign: [{sender: "other"}]}
"#;
    let problems = refused(&[("flows/F.yaml", assigned)]);
    let problem = problems.iter().find(|d| d.code == "HF043").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("`sender` is a constant"), "{problem}");
    assert_eq!(problem.line, 8, "{problem}");
    let mistyped =
        "constants:\n  limit: {type: Number, value: many}\nstart: s\nelements:\n  s: {assign: []}\n";
    let problems = refused(&[("flows/F.yaml", mistyped)]);
    let problem = problems.iter().find(|d| d.code == "HF040").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("the constant `limit` is declared Number"), "{problem}");
    let formula_output = "variables:\n  x: {type: Text}\nformulas:\n  f: {type: Text, expression: \"'a'\"}\nstart: s\nelements:\n  s: {create: Task, fields: {Subject: s}, store_id_in: f}\n";
    let problems = refused(&[("flows/F.yaml", formula_output)]);
    let problem = problems.iter().find(|d| d.code == "HF043").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("`f` is a formula"), "{problem}");
}

#[test]
fn a_resource_may_not_take_the_name_of_a_variable_element_or_other_resource() {
    let flow = r#"
variables:
  total: {type: Number}
formulas:
  Total: {type: Number, expression: "1"}
  s: {type: Number, expression: "2"}
constants:
  k: {type: Number, value: 1}
text_templates:
  K: {text: hello}
start: s
elements:
  s: {assign: [{total: 1}]}
"#;
    let problems = refused(&[("flows/F.yaml", flow)]);
    let found: Vec<String> =
        problems.iter().filter(|d| d.code == "HF042").map(|d| d.message.clone()).collect();
    assert_eq!(found.len(), 3, "{problems}");
    assert!(found.iter().any(|m| m.contains("`Total` is already a variable")), "{found:?}");
    assert!(found.iter().any(|m| m.contains("`s` is already an element")), "{found:?}");
    assert!(found.iter().any(|m| m.contains("`K` is already a resource under `constants:`")), "{found:?}");
}

#[test]
fn an_unknown_label_is_refused_with_the_closest_name() {
    let flow = "variables:\n  x: {type: Text}\nstart: s\nelements:\n  s: {assign: [{x: \"{!$Label.Welcome_Txt}\"}]}\n";
    let labels = "Welcome_Text: {value: Hello}\n";
    let problems = refused(&[("flows/F.yaml", flow), ("labels/Sms.yaml", labels)]);
    let problem = problems.iter().find(|d| d.code == "HX004").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("unknown custom label `$Label.Welcome_Txt`"), "{problem}");
    assert!(problem.message.contains("did you mean `Welcome_Text`?"), "{problem}");
}

#[test]
fn a_label_defined_twice_or_badly_named_is_refused_at_its_line() {
    let first = "Welcome_Text: {value: Hello}\n";
    let second = "Other: {value: x}\nwelcome_text:\n  value: Hi\n2bad: {value: y}\n";
    let problems = refused(&[("labels/A.yaml", first), ("labels/B.yaml", second)]);
    let twice = problems
        .iter()
        .find(|d| d.code == "HF044" && d.message.contains("already defined in labels/A.yaml"))
        .unwrap_or_else(|| panic!("{problems}"));
    assert_eq!((twice.file.clone(), twice.line), (PathBuf::from("labels/B.yaml"), 2), "{twice}");
    assert!(problems.iter().any(|d| d.code == "HF044" && d.message.contains("`2bad`")), "{problems}");
    let unknown_key = problems_of_label("Welcome_Text: {valu: Hello}\n");
    assert!(unknown_key.iter().any(|d| d.code == "HP003"), "{unknown_key}");
}

fn problems_of_label(text: &str) -> herald_project::Diagnostics {
    refused(&[("labels/Sms.yaml", text)])
}

#[test]
fn a_text_template_with_html_tags_loads_with_a_warning_at_the_tag() {
    let flow = "variables:\n  x: {type: Text}\ntext_templates:\n  body:\n    text: \"Hi {!x},<br>welcome\"\nstart: s\nelements:\n  s: {assign: [{x: \"{!body}\"}]}\n";
    let project =
        load(&[("flows/F.yaml", flow)]).unwrap_or_else(|d| panic!("a warning must not stop loading: {d}"));
    let warning = project
        .warnings
        .iter()
        .find(|w| w.code == "HW002")
        .unwrap_or_else(|| panic!("{:?}", project.warnings));
    assert!(warning.warning);
    assert_eq!(warning.file, PathBuf::from("flows/F.yaml"));
    // `    text: "` is 11 columns; the tag follows `Hi {!x},`.
    assert_eq!((warning.line, warning.column), (5, 12 + "Hi {!x},".len()), "{warning}");
    assert!(warning.message.contains("`<br>`"), "{warning}");
    let plain = "variables:\n  x: {type: Text}\ntext_templates:\n  body: {text: \"Reply <STOP> to opt out\"}\nstart: s\nelements:\n  s: {assign: [{x: \"{!body}\"}]}\n";
    let project = load(&[("flows/F.yaml", plain)]).unwrap();
    assert!(project.warnings.is_empty(), "{:?}", project.warnings);
}

#[test]
fn a_resource_is_a_single_value_without_fields() {
    let flow = "variables:\n  x: {type: Text}\nconstants:\n  k: {type: Text, value: a}\nstart: s\nelements:\n  s: {assign: [{x: \"{!k.field}\"}]}\n";
    let problems = refused(&[("flows/F.yaml", flow)]);
    let problem = problems.iter().find(|d| d.code == "HX004").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("`k` is a constant, a single value"), "{problem}");
}

#[test]
fn a_chain_of_formulas_longer_than_64_is_refused_and_one_of_64_runs() {
    let chain = |length: usize| {
        let mut flow = String::from(
            "variables:\n  x: {type: Number, output: true}\nformulas:\n  f0: {type: Number, expression: \"1\"}\n",
        );
        for i in 1..length {
            flow.push_str(&format!("  f{i}: {{type: Number, expression: \"{{!f{}}} + 1\"}}\n", i - 1));
        }
        flow.push_str(&format!("start: s\nelements:\n  s: {{assign: [{{x: \"{{!f{}}}\"}}]}}\n", length - 1));
        flow
    };
    let (ok, long, huge) = (chain(64), chain(65), chain(5000));
    let project = load(&[("flows/F.yaml", ok.as_str())]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(run_autolaunched(&project, "F", json!({})).unwrap()["x"], json!(64));
    let problems = refused(&[("flows/F.yaml", long.as_str())]);
    let problem = problems.iter().find(|d| d.code == "HF041").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("`f64` reads 65 resources deep"), "{problem}");
    // Thousands of formulas in a chain are refused without exhausting the stack.
    assert!(refused(&[("flows/F.yaml", huge.as_str())]).iter().any(|d| d.code == "HF041"));
}
