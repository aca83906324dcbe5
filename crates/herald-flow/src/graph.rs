//! A compiled flow's shape, as Flow Builder draws it: the elements, and every connector between them
//! (next, fault, each decision outcome and the default outcome, a loop's "for each" and "after last"),
//! with the paths that leave Start (run immediately, each scheduled path, run asynchronously). What
//! the console draws as a diagram; it reads the links the compiler resolved, so a connector drawn is
//! one a run can take.

use crate::flow::{CompiledFlow, ElementKind, ElementKindName};

/// The elements of a flow and the connectors between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowGraph {
    /// In the order of the flow file; a connector's `target` indexes this list.
    pub elements: Vec<GraphElement>,
    /// The paths that leave Start, immediate first, then scheduled paths in file order, then the
    /// asynchronous path.
    pub paths: Vec<StartPath>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphElement {
    pub name: String,
    pub label: String,
    pub kind: ElementKindName,
    /// Where a run goes from here, in the order Flow Builder lists them: outcomes then the default
    /// outcome, for each then after last, next, then fault.
    pub connectors: Vec<Connector>,
    /// A Subflow element: the flow it calls.
    pub calls: Option<String>,
}

/// One connector: where it leads and which kind it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connector {
    pub kind: ConnectorKind,
    /// Index into [`FlowGraph::elements`].
    pub target: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Next,
    /// Taken when the element fails (an action, a records element, a subflow).
    Fault,
    /// A decision outcome: its API name and the label on its connector.
    Outcome {
        name: String,
        label: String,
    },
    /// A decision's default outcome.
    DefaultOutcome,
    /// A loop's "For Each Item".
    ForEach,
    /// A loop's "After Last Item".
    AfterLast,
}

/// A path from Start to its first element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartPath {
    pub kind: StartPathKind,
    /// Index into [`FlowGraph::elements`].
    pub target: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPathKind {
    /// The run that starts at once (every flow has it).
    Immediate,
    /// A scheduled path: its API name, label, time field (`None`: the trigger) and signed offset.
    Scheduled { name: String, label: String, field: Option<String>, offset_minutes: i64 },
    /// Salesforce's "Run Asynchronously" path.
    Asynchronous,
}

impl CompiledFlow {
    /// The flow's elements and connectors, for drawing.
    pub fn graph(&self) -> FlowGraph {
        let elements = self
            .elements
            .iter()
            .map(|element| {
                let mut connectors = Vec::new();
                let mut push = |kind: ConnectorKind, target: Option<usize>| {
                    if let Some(target) = target {
                        connectors.push(Connector { kind, target });
                    }
                };
                match &element.kind {
                    ElementKind::Decision { outcomes, default } => {
                        for outcome in outcomes {
                            let kind = ConnectorKind::Outcome {
                                name: outcome.name.clone(),
                                label: outcome.label.clone(),
                            };
                            push(kind, outcome.next);
                        }
                        push(ConnectorKind::DefaultOutcome, *default);
                    }
                    ElementKind::Loop(each) => {
                        push(ConnectorKind::ForEach, Some(each.each));
                        push(ConnectorKind::AfterLast, each.after);
                    }
                    _ => {}
                }
                push(ConnectorKind::Next, element.next);
                push(ConnectorKind::Fault, element.fault);
                let calls = match &element.kind {
                    ElementKind::Subflow(subflow) => Some(subflow.flow.clone()),
                    _ => None,
                };
                GraphElement {
                    name: element.name.clone(),
                    label: element.label.clone(),
                    kind: self.element_kind(&element.name).unwrap_or(ElementKindName::Assignment),
                    connectors,
                    calls,
                }
            })
            .collect();
        let mut paths = vec![StartPath { kind: StartPathKind::Immediate, target: self.start }];
        paths.extend(self.scheduled_paths.iter().map(|path| StartPath {
            kind: StartPathKind::Scheduled {
                name: path.name.clone(),
                label: path.label.clone(),
                field: path.field.clone(),
                offset_minutes: path.offset_minutes,
            },
            target: path.start,
        }));
        if let Some(target) = self.async_start {
            paths.push(StartPath { kind: StartPathKind::Asynchronous, target });
        }
        FlowGraph { elements, paths }
    }
}
