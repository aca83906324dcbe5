//! What each fuzz target does with its input, in one place: the targets in `fuzz_targets/` are one
//! line each, so the replay of `fuzz/regressions/` (by `scripts/fuzz`) runs exactly what found them.
//!
//! Every function here feeds untrusted text to a parser herald exposes to users or to the network,
//! and checks only what must hold for any input: no panic, no hang, bounded memory, and an error
//! that says something. The fixed project around a mutated file is `examples/kixie-welcome-sms`,
//! compiled into the binary so a run reads no file.

use herald_expr::{Decimal, EvalContext, Formula, RefId, Resolved, Resolver, Scope, Template, Type, Value};
use herald_providers::{Provider, SignedRequest, Verdict, WebhookAuth};
use serde_json::{Map, Value as Json};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The example project the loader targets mutate one file of.
const EXAMPLE: &[(&str, &str)] = &[
    ("herald.toml", include_str!("../../examples/kixie-welcome-sms/herald.toml")),
    ("objects/Lead.yaml", include_str!("../../examples/kixie-welcome-sms/objects/Lead.yaml")),
    ("objects/Task.yaml", include_str!("../../examples/kixie-welcome-sms/objects/Task.yaml")),
    (
        "credentials/Kixie_API_Auth.yaml",
        include_str!("../../examples/kixie-welcome-sms/credentials/Kixie_API_Auth.yaml"),
    ),
    (
        "credentials/Kixie_Endpoint.yaml",
        include_str!("../../examples/kixie-welcome-sms/credentials/Kixie_Endpoint.yaml"),
    ),
    (
        "permissions/Kixie_Integration_User.yaml",
        include_str!("../../examples/kixie-welcome-sms/permissions/Kixie_Integration_User.yaml"),
    ),
    (
        "services/KixieService.yaml",
        include_str!("../../examples/kixie-welcome-sms/services/KixieService.yaml"),
    ),
    (
        "flows/Lead_Welcome_SMS.yaml",
        include_str!("../../examples/kixie-welcome-sms/flows/Lead_Welcome_SMS.yaml"),
    ),
];

/// An object with a field of every type, so record validation reaches every branch.
const EVERY_TYPE: &str = "kind: object
label: Every Type
fields:
  Name: {type: text, length: 10, required: true}
  Notes: {type: textarea, length: 200}
  Phone: {type: phone, length: 40}
  Email: {type: email, length: 80}
  Site: {type: url}
  Stage: {type: picklist, values: [New, Done], default: New}
  Amount: {type: number}
  Price: {type: currency}
  Share: {type: percent}
  Active: {type: checkbox, default: true}
  Day: {type: date}
  At: {type: datetime}
  Start: {type: time}
  Lead: {type: reference, references: [Lead]}
";

/// The example project with `path`'s text replaced by `text` (or added, when the example has no such
/// file).
fn example_with(path: &str, text: String) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> =
        EXAMPLE.iter().map(|(p, t)| (PathBuf::from(p), (*t).to_string())).collect();
    match files.iter_mut().find(|(p, _)| p.as_os_str() == path) {
        Some((_, old)) => *old = text,
        None => files.push((PathBuf::from(path), text)),
    }
    files
}

/// Loads and compiles a project: it either compiles or reports problems, and the report renders.
fn load(files: Vec<(PathBuf, String)>) {
    if let Err(diagnostics) = herald_flow::load_files("/fuzz".into(), files) {
        assert!(!diagnostics.is_empty(), "a project that does not load must say why");
        let _ = diagnostics.to_string();
    }
}

/// Target `project_flow`: the input is a flow file of the example project.
pub fn project_flow(data: &[u8]) {
    load(example_with("flows/Lead_Welcome_SMS.yaml", String::from_utf8_lossy(data).into_owned()));
}

/// Target `project_toml`: the input is the example project's `herald.toml`.
pub fn project_toml(data: &[u8]) {
    load(example_with("herald.toml", String::from_utf8_lossy(data).into_owned()));
}

/// Target `project_object`: the input is the example project's Lead object, which its flow uses.
pub fn project_object(data: &[u8]) {
    load(example_with("objects/Lead.yaml", String::from_utf8_lossy(data).into_owned()));
}

/// The references a fuzzed formula may use, one of every type and some null.
const FIELDS: &[(&str, Type)] = &[
    ("$Record.Phone", Type::Text),
    ("$Record.Name", Type::Text),
    ("$Record.Blank", Type::Text),
    ("$Record.Amount", Type::Number),
    ("$Record.Score", Type::Number),
    ("$Record.Flag", Type::Boolean),
    ("$Record.Day", Type::Date),
    ("$Record.NoDay", Type::Date),
    ("$Record.At", Type::DateTime),
    ("$Record.Start", Type::Time),
    ("$Record__Prior.Name", Type::Text),
];

struct Fields;

impl Resolver for Fields {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        let path = path.join(".");
        FIELDS
            .iter()
            .position(|(name, _)| *name == path)
            .map(|i| Resolved { id: RefId(i as u32), ty: FIELDS[i].1 })
            .ok_or_else(|| format!("Unknown reference {path}"))
    }
}

impl Scope for Fields {
    fn value(&self, id: RefId) -> Value {
        match id.0 {
            0 => Value::text("+15551234567"),
            1 => Value::text("Ada Lovelace"),
            3 => Value::Number(Decimal::new(125050, 2)),
            5 => Value::Boolean(true),
            6 => chrono::NaiveDate::from_ymd_opt(2024, 2, 29).map_or(Value::Null, Value::Date),
            8 => chrono::DateTime::from_timestamp(1_709_649_000, 0).map_or(Value::Null, Value::DateTime),
            9 => chrono::NaiveTime::from_hms_opt(9, 30, 0).map_or(Value::Null, Value::Time),
            10 => Value::text("Ada"),
            _ => Value::Null,
        }
    }
}

/// Target `formula`: the input is a formula and a message template; each is compiled, and evaluated
/// when it compiles.
pub fn formula(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let now = chrono::DateTime::from_timestamp(1_709_681_415, 0).unwrap_or_default();
    let cx = EvalContext::new(now);
    match Formula::compile(&src, &Fields) {
        Ok(formula) => {
            if let Err(error) = formula.eval(&Fields, &cx) {
                assert!(!error.message.is_empty());
            }
            let _ = formula.eval(&Fields, &cx.clone().with_zone(herald_expr::Tz::Asia__Kolkata));
        }
        Err(error) => {
            let _ = error.caret();
            let _ = error.line_col();
            assert!(!error.to_string().is_empty());
        }
    }
    match Template::compile(&src, &Fields) {
        Ok(template) => {
            let _ = template.render(&Fields, &cx);
        }
        Err(error) => {
            let _ = error.caret();
        }
    }
}

/// Target `openapi`: the input is a spec, JSON or YAML, imported whole.
pub fn openapi(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let options = herald_openapi::ImportOptions::default();
    match herald_openapi::import(&text, "FuzzService", "Fuzz_Endpoint", &options) {
        Ok(service) => {
            let _ = herald_openapi::describe(&service);
            // The request a flow would send, checked against each operation's own schema.
            for operation in service.operations.keys() {
                let _ = herald_openapi::validate_request(&service, operation, &Json::Object(Map::new()));
            }
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            let _ = error.position();
        }
    }
}

/// Target `webhooks`: the input is a webhook body for every provider, and for a provider that signs
/// its webhooks also a signed request. Its first line is the signature header's value, its second the
/// URL; the whole input is the body the providers parse.
pub fn webhooks(data: &[u8]) {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let signature = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let url = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let signed_body = lines.next().unwrap_or_default();
    for provider in Provider::all() {
        if let Err(error) = provider.parse_webhook(data) {
            assert!(!error.to_string().is_empty());
        }
        // Answers to herald's own requests are read by the same kind of code, from the same network.
        if let Verdict::Failure { reason } = provider.interpret(400, data) {
            assert!(!reason.is_empty());
        }
        let _ = provider.accepted(data);
        let _ = provider.failure_class(Some(500), data);
        if let Some(WebhookAuth::Signed { .. }) = provider.webhook_auth() {
            // Every header a provider might sign with carries the same fuzzed value.
            let headers: Vec<(String, String)> = ["x-twilio-signature", "x-signature", "authorization"]
                .iter()
                .map(|name| ((*name).to_string(), signature.clone()))
                .collect();
            let request = SignedRequest { url: &url, headers: &headers, body: signed_body };
            if let Err(reason) = provider.verify_signature("fuzz-signing-key", &request) {
                assert!(!reason.is_empty());
                assert!(!reason.contains("fuzz-signing-key"), "a signature error must not quote the key");
            }
        }
    }
}

/// The example project with an object of every field type, compiled once.
fn record_project() -> &'static herald_flow::CompiledProject {
    static PROJECT: OnceLock<herald_flow::CompiledProject> = OnceLock::new();
    PROJECT.get_or_init(|| {
        herald_flow::load_files("/fuzz".into(), example_with("objects/Every.yaml", EVERY_TYPE.into()))
            .unwrap_or_else(|diagnostics| panic!("the fuzz project must load: {diagnostics}"))
    })
}

/// Target `records`: the input is the JSON body of a record API write, validated as a create and as an
/// update against the Lead and the every-type object; a valid Lead then meets the entry conditions of
/// the flows it triggers, as the engine checks them before it starts a run.
pub fn records(data: &[u8]) {
    use herald_engine::records::{Truncation, validate};
    let Ok(Json::Object(input)) = serde_json::from_slice::<Json>(data) else { return };
    let project = record_project();
    let cx = project.eval_context();
    for name in ["Lead", "Every"] {
        let object = &project.project.objects[name].def;
        for (creating, truncation) in
            [(true, Truncation::Refuse), (true, Truncation::Truncate), (false, Truncation::Refuse)]
        {
            match validate(object, &input, creating, truncation) {
                Ok(validated) => {
                    let mut record = Map::new();
                    record.insert("Id".into(), Json::String("00Q000000000001AAA".into()));
                    record.extend(validated.fields);
                    for flow in project.triggered_flows(name, creating) {
                        let prior = (!creating).then_some(&input);
                        let _ = flow.entry_holds(&record, prior, &cx);
                    }
                }
                Err(problems) => {
                    assert!(!problems.is_empty());
                    assert!(problems.len() <= herald_engine::FieldProblem::MAX_LISTED + 1);
                }
            }
        }
    }
}
