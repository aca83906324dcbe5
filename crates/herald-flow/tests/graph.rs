//! A compiled flow's graph (what the console draws) holds every connector the flow file writes, of the
//! right kind, and the paths that leave Start.

use herald_flow::{ConnectorKind, ElementKindName, FlowGraph, StartPathKind};
use std::path::PathBuf;

fn graph(example: &str, flow: &str) -> FlowGraph {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(example);
    let project = herald_flow::load(&root).unwrap_or_else(|d| panic!("{d}"));
    project.flows[flow].graph()
}

/// Each connector as `source -kind-> target`.
fn connectors(graph: &FlowGraph) -> Vec<String> {
    let mut found = Vec::new();
    for element in &graph.elements {
        for connector in &element.connectors {
            let kind = match &connector.kind {
                ConnectorKind::Next => "next".to_string(),
                ConnectorKind::Fault => "fault".to_string(),
                ConnectorKind::Outcome { name, label } => format!("outcome {name} ({label})"),
                ConnectorKind::DefaultOutcome => "default".to_string(),
                ConnectorKind::ForEach => "each".to_string(),
                ConnectorKind::AfterLast => "after".to_string(),
            };
            found.push(format!("{} -{kind}-> {}", element.name, graph.elements[connector.target].name));
        }
    }
    found
}

#[test]
fn the_kixie_welcome_flow_has_its_fault_connectors_and_a_scheduled_path() {
    let graph = graph("kixie-welcome-sms", "Lead_Welcome_SMS");
    assert_eq!(
        connectors(&graph),
        [
            "Send_SMS -next-> Mark_Lead_Texted",
            "Send_SMS -fault-> Log_SMS_Failure",
            "Still_Not_Contacted -outcome Not_Contacted (Not Contacted)-> Send_Follow_Up_SMS",
            "Send_Follow_Up_SMS -fault-> Log_SMS_Failure",
        ]
    );
    assert_eq!(graph.paths.len(), 2);
    assert_eq!(
        (&graph.paths[0].kind, graph.elements[graph.paths[0].target].name.as_str()),
        (&StartPathKind::Immediate, "Send_SMS")
    );
    match &graph.paths[1].kind {
        StartPathKind::Scheduled { name, label, field, offset_minutes } => {
            assert_eq!(
                (name.as_str(), label.as_str(), field, *offset_minutes),
                ("Follow_Up_After_1_Hour", "Follow up after 1 hour", &None, 60)
            );
        }
        other => panic!("a scheduled path, not {other:?}"),
    }
    assert_eq!(graph.elements[graph.paths[1].target].name, "Still_Not_Contacted");
    let kinds: Vec<ElementKindName> = graph.elements.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            ElementKindName::Action,
            ElementKindName::UpdateRecords,
            ElementKindName::CreateRecords,
            ElementKindName::Decision,
            ElementKindName::Action,
        ]
    );
    assert_eq!(graph.elements[2].label, "Log SMS Failure");
}

#[test]
fn a_loop_has_for_each_and_after_last_and_a_decision_its_default_outcome() {
    let graph = graph("8x8-bulk", "Campaign_Launch_SMS");
    let found = connectors(&graph);
    for expected in [
        "Each_Member -each-> Add_Message",
        "Each_Member -after-> Any_Left",
        "Batch_Full -outcome Full (Full)-> Send_Batch",
        "Batch_Full -default-> Each_Member",
        "Clear_Batch -next-> Each_Member",
        "Get_Members -fault-> Log_Failure",
    ] {
        assert!(found.iter().any(|c| c == expected), "{expected} in {found:#?}");
    }
    assert_eq!(found.len(), 12, "{found:#?}");
}

#[test]
fn a_subflow_element_names_the_flow_it_calls() {
    let graph = graph("8x8-sms", "Lead_Welcome_SMS_8x8");
    assert_eq!(graph.elements[0].kind, ElementKindName::Subflow);
    assert_eq!(graph.elements[0].calls.as_deref(), Some("Send_SMS_8x8"));
    assert_eq!(graph.paths.len(), 1);
}
