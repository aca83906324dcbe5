//! Update Records, Delete Records, record variables and lookup traversal, driven without I/O: the
//! test plays the engine, answering each effect from records held in memory.

use chrono::{TimeZone, Utc};
use herald_expr::EvalContext;
use herald_flow::{ChangeTarget, CompiledProject, Effect, RunState, RunUser, Step};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

const OBJECTS: [(&str, &str); 4] = [
    ("herald.toml", ""),
    (
        "objects/Lead.yaml",
        "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n  Status: {type: picklist, values: [Open, Working], default: Open}\n  Texted__c: {type: checkbox}\n  OwnerId: {type: lookup, to: User}\n  Account__c: {type: lookup, to: Account}\n",
    ),
    (
        "objects/User.yaml",
        "kind: object\nkey_prefix: '005'\nfields:\n  Name: {type: text}\n  ManagerId: {type: lookup, to: User}\n",
    ),
    (
        "objects/Account.yaml",
        "kind: object\nkey_prefix: '001'\nfields:\n  Name: {type: text}\n  OwnerId: {type: lookup, to: User}\n  ParentId: {type: lookup, to: Account}\n",
    ),
];

fn project(flow: &str) -> Result<CompiledProject, String> {
    project_with(&[], flow)
}

fn project_with(extra: &[(&str, &str)], flow: &str) -> Result<CompiledProject, String> {
    let mut files: Vec<(PathBuf, String)> =
        OBJECTS.iter().chain(extra).map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    files.push(("flows/F.yaml".into(), flow.to_string()));
    herald_flow::load_files("/test".into(), files).map_err(|d| d.to_string())
}

fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2026, 11, 21, 9, 30, 0).unwrap())
}

fn user() -> RunUser {
    RunUser { id: "005".into(), name: "Automated Process".into() }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// The records the test's engine holds, by id.
struct Records(Vec<Map<String, Value>>);

impl Records {
    fn get(&self, id: &str) -> Option<Map<String, Value>> {
        self.0.iter().find(|r| r["Id"] == id).cloned()
    }
}

/// Plays the engine: Get Records and related records from `records`; Update and Delete Records
/// change them. Returns the changes asked for, in order.
fn drive(
    flow: &herald_flow::CompiledFlow,
    state: &mut RunState,
    records: &mut Records,
) -> Result<Vec<(String, ChangeTarget)>, String> {
    let mut changes = Vec::new();
    loop {
        match flow.advance(state, &cx()) {
            Step::Finished => return Ok(changes),
            Step::Failed { message } => return Err(message),
            Step::Effect(Effect::GetRecords { query, .. }) => {
                let kept: Vec<_> = records
                    .0
                    .iter()
                    .filter(|r| r["Id"].as_str().unwrap().starts_with("00Q") && query.matches(r))
                    .map(|r| query.keep(r.clone()))
                    .collect();
                flow.complete_get(state, Ok(query.finish(kept)), cx().now, 1);
            }
            Step::Effect(Effect::LoadRelated { records: wanted, .. }) => {
                let loaded = wanted.into_iter().map(|(_, id)| (id.clone(), records.get(&id))).collect();
                flow.complete_related(state, loaded);
                // Journal and resume, as the engine may.
                *state = serde_json::from_str(&serde_json::to_string(&*state).unwrap()).unwrap();
            }
            Step::Effect(Effect::UpdateRecords { change, .. }) => {
                let ids: Vec<(String, Map<String, Value>)> = match &change.target {
                    ChangeTarget::Records(rows) => rows.clone(),
                    ChangeTarget::Matching { query, fields } => records
                        .0
                        .iter()
                        .filter(|r| r["Id"].as_str().unwrap().starts_with("00Q") && query.matches(r))
                        .map(|r| (r["Id"].as_str().unwrap().to_string(), fields.clone()))
                        .collect(),
                };
                for (id, fields) in &ids {
                    if let Some(record) = records.0.iter_mut().find(|r| r["Id"] == id.as_str()) {
                        record.extend(fields.clone());
                    }
                }
                flow.complete_change(state, Ok(ids.len()), cx().now, 1);
                changes.push(("update".to_string(), change.target));
            }
            Step::Effect(Effect::DeleteRecords { change, .. }) => {
                let before = records.0.len();
                match &change.target {
                    ChangeTarget::Records(rows) => {
                        records.0.retain(|r| !rows.iter().any(|(id, _)| r["Id"] == id.as_str()))
                    }
                    ChangeTarget::Matching { query, .. } => records.0.retain(|r| !query.matches(r)),
                }
                flow.complete_change(state, Ok(before - records.0.len()), cx().now, 1);
                changes.push(("delete".to_string(), change.target));
            }
            Step::Effect(other) => panic!("unexpected effect {other:?}"),
            Step::Wait { .. } => panic!("no Wait in these flows"),
        }
    }
}

fn people() -> Records {
    Records(vec![
        object(json!({"Id": "005000000000000001", "Name": "Grace", "ManagerId": "005000000000000002"})),
        object(json!({"Id": "005000000000000002", "Name": "Ada"})),
        object(
            json!({"Id": "001000000000000001", "Name": "Acme", "OwnerId": "005000000000000002", "ParentId": "001000000000000002"}),
        ),
        object(json!({"Id": "001000000000000002", "Name": "Acme Holdings", "OwnerId": "005000000000000001"})),
        object(
            json!({"Id": "00Q000000000000001", "LastName": "Ng", "Status": "Open", "Phone": "+1 415", "OwnerId": "005000000000000001", "Account__c": "001000000000000001"}),
        ),
        object(json!({"Id": "00Q000000000000002", "LastName": "Tan", "Status": "Open"})),
        object(json!({"Id": "00Q000000000000003", "LastName": "Lee", "Status": "Working"})),
    ])
}

fn start(project: &CompiledProject, records: &Records) -> RunState {
    let lead = records.get("00Q000000000000001").unwrap();
    project.flows["F"].new_run(lead, None, user(), "guid".into(), cx().now)
}

#[test]
fn traversals_read_the_related_records_the_driver_loads_before_the_element_runs() {
    let flow = r#"
trigger: {object: Lead, on: create}
variables:
  owner: {type: Text}
  boss: {type: Text}
  parent_owner: {type: Text}
  missing: {type: Text}
start: read
elements:
  read:
    assign:
      - owner: "{!$Record.Owner.Name}"
      - boss: "{!$Record.Owner.Manager.Name}"
      - parent_owner: "{!$Record.Account__r.Parent.Owner.Name}"
      - missing: "{!$Record.Owner.Manager.Manager.Name}"
"#;
    let project = project(flow).unwrap();
    let mut records = people();
    let mut state = start(&project, &records);
    drive(&project.flows["F"], &mut state, &mut records).unwrap();
    assert_eq!(state.variables()[..4], [json!("Grace"), json!("Ada"), json!("Grace"), Value::Null]);
}

#[test]
fn a_lead_without_an_owner_traverses_to_empty_values_without_loading_anything() {
    let flow = "trigger: {object: Lead, on: create}\nvariables:\n  owner: {type: Text, default: x}\nstart: read\nelements:\n  read:\n    assign: [{owner: \"{!$Record.Owner.Name}\"}]\n";
    let project = project(flow).unwrap();
    let mut records = people();
    let lead = records.get("00Q000000000000002").unwrap();
    let mut state = project.flows["F"].new_run(lead, None, user(), "guid".into(), cx().now);
    match project.flows["F"].advance(&mut state, &cx()) {
        Step::Finished => {}
        _ => panic!("a blank lookup needs no related record"),
    }
    assert_eq!(state.variables()[0], Value::Null);
    let _ = drive(&project.flows["F"], &mut state, &mut records);
}

#[test]
fn update_records_by_the_triggering_record_sets_its_fields() {
    let flow = r#"
trigger: {object: Lead, on: create}
start: mark
elements:
  mark:
    update: Lead
    record: "{!$Record}"
    fields:
      Texted__c: true
      Status: Working
"#;
    let project = project(flow).unwrap();
    let mut records = people();
    let mut state = start(&project, &records);
    let changes = drive(&project.flows["F"], &mut state, &mut records).unwrap();
    let ChangeTarget::Records(rows) = &changes[0].1 else { panic!("by record") };
    assert_eq!(
        rows,
        &[("00Q000000000000001".to_string(), object(json!({"Texted__c": true, "Status": "Working"})))]
    );
    assert_eq!(records.get("00Q000000000000001").unwrap()["Texted__c"], true);
    let trace = &state.trace()[0];
    assert_eq!((trace.kind.as_str(), trace.outputs["count"].as_u64()), ("Update Records", Some(1)));
}

#[test]
fn update_records_by_conditions_changes_every_match_and_delete_by_conditions_removes_them() {
    let flow = r#"
trigger: {object: Lead, on: create}
start: work
elements:
  work:
    update: Lead
    conditions:
      - {field: Status, operator: EqualTo, right: Open}
      - {field: Phone, operator: IsNull, right: true}
    fields: {Status: Working}
    next: purge
  purge:
    delete: Lead
    conditions: [{field: LastName, operator: EqualTo, right: lee}]
"#;
    let project = project(flow).unwrap();
    let mut records = people();
    let mut state = start(&project, &records);
    let changes = drive(&project.flows["F"], &mut state, &mut records).unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(records.get("00Q000000000000002").unwrap()["Status"], "Working", "Open without a phone");
    assert_eq!(records.get("00Q000000000000001").unwrap()["Status"], "Open", "has a phone: not matched");
    assert!(records.get("00Q000000000000003").is_none(), "deleted; names compare without case");
    assert_eq!(state.trace()[1].kind, "Delete Records");
}

#[test]
fn record_variables_are_stored_from_get_records_assigned_and_updated_and_collections_deleted() {
    let flow = r#"
trigger: {object: Lead, on: create}
variables:
  lead: {type: Lead}
  leads: {type: Lead, collection: true}
  owner: {type: Text}
start: find
elements:
  find:
    get: Lead
    conditions: [{field: LastName, operator: EqualTo, right: Ng}]
    store_in: lead
    next: change
  change:
    assign:
      - lead.Status: Working
      - owner: "{!lead.Owner.Name}"
    next: save
  save:
    update: Lead
    record: "{!lead}"
    next: all
  all:
    get: Lead
    how_many: all
    conditions: [{field: Status, operator: EqualTo, right: Working}]
    store_in: leads
    next: each
  each:
    loop: "{!leads}"
    each: noop
    after: remove
  noop:
    assign: [{owner: "{!each.LastName}"}]
    next: each
  remove:
    delete: Lead
    record: "{!leads}"
"#;
    let project = project(flow).unwrap();
    let mut records = people();
    let mut state = start(&project, &records);
    let changes = drive(&project.flows["F"], &mut state, &mut records).unwrap();
    let ChangeTarget::Records(rows) = &changes[0].1 else { panic!("by record") };
    assert_eq!(rows[0].0, "00Q000000000000001");
    assert_eq!(rows[0].1["Status"], "Working", "the variable's values are written");
    assert!(!rows[0].1.contains_key("Id"), "standard fields are not written");
    let ChangeTarget::Records(deleted) = &changes[1].1 else { panic!("by collection") };
    let ids: Vec<&str> = deleted.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["00Q000000000000001", "00Q000000000000003"]);
    assert_eq!(state.variables()[2], json!("Lee"), "the loop went over the record collection");
}

#[test]
fn more_records_than_max_rows_fault_the_element_before_anything_is_written() {
    let flow = r#"
trigger: {object: Lead, on: create}
variables:
  leads: {type: Lead, collection: true}
start: all
elements:
  all:
    get: Lead
    how_many: all
    store_in: leads
    next: remove
  remove:
    delete: Lead
    record: "{!leads}"
    max_rows: 2
"#;
    let project = project(flow).unwrap();
    let mut records = people();
    let mut state = start(&project, &records);
    let failure = drive(&project.flows["F"], &mut state, &mut records).unwrap_err();
    assert!(failure.contains("more than the element's max_rows (2)"), "{failure}");
    assert_eq!(records.0.len(), 7, "nothing was deleted");
}

fn error(flow: &str) -> String {
    project(flow).unwrap_err()
}

#[test]
fn record_mistakes_are_reported_at_their_place_with_a_fix() {
    let head = "trigger: {object: Lead, on: create}\nvariables:\n  lead: {type: Lead}\n  t: {type: Text}\nstart: a\nelements:\n  a:\n";
    let cases = [
        ("    assign: [{t: \"{!lead.Phnoe}\"}]", "HF035", "did you mean `Phone`"),
        ("    assign: [{lead.Stauts: Open}]", "HF035", "Lead has no field `Stauts`"),
        ("    assign: [{t: \"{!$Record.Ownr.Name}\"}]", "HF036", "did you mean `Owner`"),
        ("    assign: [{t: \"{!$Record.OwnerId.Name}\"}]", "HF036", "traverse it as `Owner`"),
        ("    assign: [{t: \"{!$Record.Owner.Nmae}\"}]", "HF036", "User has no field `Nmae`"),
        (
            "    assign: [{t: \"{!$Record.Owner.Manager.Manager.Manager.Manager.Manager.Name}\"}]",
            "HF036",
            "at most 5",
        ),
        ("    update: Lead\n    fields: {Status: Working}", "HF034", "neither `record` nor `conditions`"),
        ("    update: Lead\n    record: \"{!$Record}\"", "HF034", "sets no field"),
        (
            "    update: Lead\n    record: \"{!$Record}\"\n    fields: {Stat: Open}",
            "HF034",
            "no writable field `Stat`",
        ),
        ("    update: Lead\n    record: \"{!$Record}\"\n    fields: {Texted__c: maybe}", "HF034", "checkbox"),
        ("    delete: Account\n    record: \"{!$Record}\"", "HF034", "holds Lead records"),
        ("    delete: Lead\n    record: \"{!t}\"", "HF035", "not a record variable"),
        (
            "    delete: Lead\n    conditions: [{field: Status, operator: EqualTo, right: Open}]\n    max_rows: 20000",
            "HF038",
            "between 1 and 10000",
        ),
        ("    get: Lead\n    how_many: all\n    store_in: lead", "HF035", "cannot hold all the records"),
        (
            "    get: Account\n    next: b\n  b:\n    assign: [{lead: \"{!a}\"}]",
            "HF035",
            "the value holds Account records",
        ),
    ];
    for (element, code, message) in cases {
        let error = error(&format!("{head}{element}\n"));
        assert!(error.contains(code) && error.contains(message), "{element}: {error}");
        assert!(error.contains("flows/F.yaml:"), "a position: {error}");
    }
    let entry = "trigger:\n  object: Lead\n  on: create\n  when: \"{!$Record.Owner.Name} = 'Ada'\"\nstart: a\nelements:\n  a:\n    assign: []\n";
    let error = error(entry);
    assert!(error.contains("HF036") && error.contains("Decision"), "{error}");
}

#[test]
fn lookup_fields_are_checked_when_the_project_loads() {
    let flow = "trigger: {object: Lead, on: create}\nstart: a\nelements:\n  a:\n    assign: []\n";
    let cases = [
        (
            "kind: object\nkey_prefix: a01\nfields:\n  OwnerId: {type: lookup, to: Usr}\n",
            "points to unknown object `Usr`",
        ),
        (
            "kind: object\nkey_prefix: a01\nfields:\n  Owner: {type: lookup, to: User}\n",
            "has no relationship name",
        ),
        (
            "kind: object\nkey_prefix: a01\nfields:\n  Name: {type: text, to: User}\n",
            "only belongs to a lookup field",
        ),
        (
            "kind: object\nkey_prefix: a01\nfields:\n  Parent: {type: text}\n  ParentId: {type: lookup, to: User}\n",
            "also `Parent`",
        ),
        (
            "kind: object\nkey_prefix: a01\nfields:\n  HostId: {type: lookup, to: Note}\n",
            "declares no `key_prefix`",
        ),
    ];
    for (object, message) in cases {
        let error = project_with(
            &[("objects/Visit.yaml", object), ("objects/Note.yaml", "kind: object\nfields: {}\n")],
            flow,
        )
        .unwrap_err();
        assert!(
            error.contains("HF037") && error.contains(message) && error.contains("objects/Visit.yaml:"),
            "{object}: {error}"
        );
    }
}

#[test]
fn an_autolaunched_flow_takes_a_record_as_input_and_an_empty_record_updates_nothing() {
    let flow = r#"
variables:
  lead: {type: Lead, input: true}
  found: {type: Lead}
start: mark
elements:
  mark:
    update: Lead
    record: "{!lead}"
    fields: {Texted__c: true}
    next: find
  find:
    get: Lead
    conditions: [{field: LastName, operator: EqualTo, right: Nobody}]
    store_in: found
    next: again
  again:
    update: Lead
    record: "{!found}"
    fields: {Texted__c: true}
"#;
    let project = project(flow).unwrap();
    let flow = &project.flows["F"];
    let inputs = object(json!({"lead": {"Id": "00Q000000000000002", "LastName": "Tan"}}));
    let mut state = flow.new_autolaunched_run(&inputs, user(), "guid".into(), cx().now).unwrap();
    let mut records = people();
    let changes = drive(flow, &mut state, &mut records).unwrap();
    assert_eq!(records.get("00Q000000000000002").unwrap()["Texted__c"], true);
    let ChangeTarget::Records(none) = &changes[1].1 else { panic!("by record") };
    assert!(none.is_empty(), "Get Records found nothing: the empty record changes nothing");
    assert_eq!(state.trace()[2].outputs["count"], 0);
    let refused = flow.new_autolaunched_run(&object(json!({"lead": "00Q1"})), user(), "g".into(), cx().now);
    assert!(refused.unwrap_err().contains("expected a JSON object of Lead's fields"));
}
