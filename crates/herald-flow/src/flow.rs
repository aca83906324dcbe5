//! A compiled flow: references resolved to slots, formulas and templates compiled, elements linked.

use crate::logic::Logic;
use herald_expr::{Formula, RefId, Template, Type as ExprType};
use herald_openapi::{Method, ParamLocation, Shape};
use herald_project::{Operator, Protocol, TriggerEvent};
use herald_providers::Provider;
use std::collections::HashMap;

#[derive(Debug)]
pub struct CompiledFlow {
    pub name: String,
    pub label: String,
    /// The record change that starts the flow; `None` for an autolaunched flow, which starts from
    /// input values instead ([`CompiledFlow::new_autolaunched_run`]).
    pub trigger: Option<RecordTrigger>,
    pub active: bool,
    pub run_as: herald_project::RunAs,
    pub only_when_updated_to_meet: bool,
    pub(crate) entry: Option<Condition>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) variables: Vec<Variable>,
    /// Formula resources, indexed by [`Slot::Formula`]; each is evaluated when it is read.
    pub(crate) formulas: Vec<FormulaResource>,
    /// Text templates, indexed by [`Slot::TextTemplate`]; each is rendered when it is read.
    pub(crate) text_templates: Vec<TextTemplateResource>,
    pub(crate) elements: Vec<Element>,
    pub(crate) element_index: HashMap<String, usize>,
    pub(crate) start: usize,
    /// Scheduled paths, in file order (record-triggered flows only).
    pub scheduled_paths: Vec<ScheduledPath>,
    /// The "Run Asynchronously" path's first element (record-triggered flows only).
    pub(crate) async_start: Option<usize>,
}

/// A scheduled path: a run of its own that waits, durably, until its time, then re-checks the
/// entry condition against the record as it is then.
#[derive(Clone, Debug)]
pub struct ScheduledPath {
    pub name: String,
    pub label: String,
    /// The Date or DateTime field the time counts from; `None`: the moment of the trigger.
    pub field: Option<String>,
    /// Signed: negative is "before" the time source.
    pub offset_minutes: i64,
    pub(crate) start: usize,
}

/// What starts a record-triggered flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTrigger {
    pub object: String,
    pub event: TriggerEvent,
}

impl CompiledFlow {
    /// Whether the flow has no trigger and starts from input values.
    pub fn is_autolaunched(&self) -> bool {
        self.trigger.is_none()
    }

    /// The variables marked `input: true` (Salesforce's "Available for input"), with their types.
    pub fn input_variables(&self) -> impl Iterator<Item = (&str, String)> {
        self.variables.iter().filter(|v| v.input).map(|v| (v.name.as_str(), v.type_name()))
    }

    /// The variables marked `output: true` (Salesforce's "Available for output"), with their types.
    pub fn output_variables(&self) -> impl Iterator<Item = (&str, String)> {
        self.variables.iter().filter(|v| v.output).map(|v| (v.name.as_str(), v.type_name()))
    }

    /// The external credentials this flow's actions use, with their named credentials.
    pub fn credential_uses(&self) -> impl Iterator<Item = CredentialUse<'_>> {
        self.elements.iter().filter_map(|element| match &element.kind {
            ElementKind::Action(action) => Some(CredentialUse {
                element: &element.name,
                named_credential: &action.named_credential,
                external_credential: &action.external_credential,
                provider: action.provider,
            }),
            _ => None,
        })
    }

    pub fn element_names(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().map(|e| e.name.as_str())
    }

    /// What kind of element `name` is, for listings.
    pub fn element_kind(&self, name: &str) -> Option<ElementKindName> {
        let element = &self.elements[*self.element_index.get(name)?];
        Some(match &element.kind {
            ElementKind::Action(_) => ElementKindName::Action,
            ElementKind::Create(_) => ElementKindName::CreateRecords,
            ElementKind::Assign(_) => ElementKindName::Assignment,
            ElementKind::Decision { .. } => ElementKindName::Decision,
            ElementKind::Get(_) => ElementKindName::GetRecords,
            ElementKind::Loop(_) => ElementKindName::Loop,
            ElementKind::Update(_) => ElementKindName::UpdateRecords,
            ElementKind::Delete(_) => ElementKindName::DeleteRecords,
            ElementKind::Subflow(_) => ElementKindName::Subflow,
            ElementKind::Wait(_) => ElementKindName::Wait,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ElementKindName {
    Action,
    #[serde(rename = "Create Records")]
    CreateRecords,
    Assignment,
    Decision,
    #[serde(rename = "Get Records")]
    GetRecords,
    Loop,
    #[serde(rename = "Update Records")]
    UpdateRecords,
    #[serde(rename = "Delete Records")]
    DeleteRecords,
    Subflow,
    Wait,
}

impl ElementKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            ElementKindName::Action => "Action",
            ElementKindName::CreateRecords => "Create Records",
            ElementKindName::Assignment => "Assignment",
            ElementKindName::Decision => "Decision",
            ElementKindName::GetRecords => "Get Records",
            ElementKindName::Loop => "Loop",
            ElementKindName::UpdateRecords => "Update Records",
            ElementKindName::DeleteRecords => "Delete Records",
            ElementKindName::Subflow => "Subflow",
            ElementKindName::Wait => "Wait",
        }
    }
}

/// Which credential an action element calls out with.
#[derive(Clone, Copy, Debug)]
pub struct CredentialUse<'a> {
    pub element: &'a str,
    pub named_credential: &'a str,
    pub external_credential: &'a str,
    pub provider: Provider,
}

/// A named credential ready for callouts: its base URL, protocol and compiled custom headers.
#[derive(Debug)]
pub struct NamedCredentialRuntime {
    pub name: String,
    pub url: String,
    pub host: String,
    pub external_credential: String,
    pub protocol: Protocol,
    pub generate_authorization_header: bool,
    pub(crate) headers: Vec<CredentialHeader>,
    pub(crate) header_slots: Vec<Slot>,
}

/// One of a named credential's custom headers.
#[derive(Debug)]
pub(crate) struct CredentialHeader {
    pub(crate) name: String,
    pub(crate) template: Template,
    pub(crate) carries_secret: bool,
}

/// What a reference stands for at run time.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    Record {
        field: String,
        ty: ExprType,
    },
    Prior {
        field: String,
        ty: ExprType,
    },
    FaultMessage,
    CurrentDateTime,
    CurrentDate,
    InterviewGuid,
    UserId,
    UserName,
    Constant(herald_expr::Value),
    Credential {
        parameter: String,
    },
    Variable {
        index: usize,
        path: Vec<String>,
        ty: ExprType,
    },
    /// An element's output; `path` walks into a typed response body (`Send.200.status.code`).
    Output {
        element: String,
        name: String,
        path: Vec<String>,
        ty: ExprType,
    },
    /// A field of a record reached through lookup fields (`$Record.Owner.Name`): read from the
    /// related records the driver loaded for the element ([`crate::Effect::LoadRelated`]).
    Related {
        base: RelatedBase,
        hops: Vec<Hop>,
        field: String,
        ty: ExprType,
    },
    /// A formula resource, by its index in [`CompiledFlow::formulas`], of its declared type.
    Formula {
        index: usize,
        ty: ExprType,
    },
    /// A text template, by its index in [`CompiledFlow::text_templates`].
    TextTemplate(usize),
}

/// A formula resource: recomputed from the run's state each time it is read, as Salesforce does.
#[derive(Debug)]
pub(crate) struct FormulaResource {
    pub name: String,
    pub formula: Formula,
}

/// A text template resource: rendered from the run's state each time it is read.
#[derive(Debug)]
pub(crate) struct TextTemplateResource {
    pub name: String,
    pub template: Template,
}

/// The record a traversal starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RelatedBase {
    Record,
    Variable(usize),
    Output { element: String, name: String },
}

/// One step of a traversal: the lookup field read, and the object its id belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub field: String,
    pub object: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Variable {
    pub name: String,
    pub ty: VariableType,
    pub collection: bool,
    pub default: serde_json::Value,
    /// "Available for input": a run of an autolaunched flow may set it.
    pub input: bool,
    /// "Available for output": its value is shown when the run ends.
    pub output: bool,
}

impl Variable {
    /// The type as a flow file writes it, for messages: `Text`, `Number collection`.
    pub fn type_name(&self) -> String {
        let base = match &self.ty {
            VariableType::Scalar(ty) => ty.to_string(),
            VariableType::Object(name) | VariableType::Record(name) => name.clone(),
        };
        if self.collection { format!("{base} collection") } else { base }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VariableType {
    Scalar(ExprType),
    /// A generated type from a service (`ExternalService__...`).
    Object(String),
    /// A record of an object of the project (`type: Lead`).
    Record(String),
}

#[derive(Debug)]
pub(crate) struct Element {
    pub name: String,
    pub label: String,
    pub kind: ElementKind,
    pub next: Option<usize>,
    pub fault: Option<usize>,
    /// The traversals (`Slot::Related`) the element reads: their records are loaded before it runs.
    pub related: Vec<RefId>,
}

#[derive(Debug)]
pub(crate) enum ElementKind {
    Action(ActionElement),
    Create(CreateElement),
    Assign(Vec<AssignItem>),
    Decision { outcomes: Vec<Outcome>, default: Option<usize> },
    Get(GetElement),
    Loop(LoopElement),
    Update(ChangeElement),
    Delete(ChangeElement),
    Subflow(SubflowElement),
    Wait(WaitElement),
}

/// An Update Records or Delete Records element.
#[derive(Debug)]
pub(crate) struct ChangeElement {
    pub object: String,
    pub target: ChangeSource,
    /// Update Records: the values set (empty with a record source: the record's own values are written).
    pub fields: Vec<(String, ValueExpr)>,
    pub max_rows: u64,
}

/// Which records an Update or Delete Records element changes.
#[derive(Debug)]
pub(crate) enum ChangeSource {
    /// `{!$Record}`: the triggering record.
    Triggering,
    /// A record or a collection of records: a variable or a Get Records / Loop output.
    Records(CollectionRef),
    Conditions {
        filters: Vec<FilterItem>,
        logic: Logic,
    },
}

/// A Subflow element: the autolaunched flow it calls, the values of its input variables, and which of
/// its output variables go into this flow's variables.
#[derive(Debug)]
pub(crate) struct SubflowElement {
    pub flow: String,
    /// The subflow's input variable, and its value computed in the calling flow.
    pub inputs: Vec<(String, ValueExpr)>,
    /// The subflow's output variable, and the calling flow's variable that receives it.
    pub outputs: Vec<(String, usize)>,
    /// The compiled subflow, set once every flow of the project has compiled (a flow can be called
    /// before it is compiled, in file order); recursion is refused at load, so these links never cycle.
    pub child: std::sync::OnceLock<std::sync::Arc<CompiledFlow>>,
}

/// A Wait element: a fixed length of time, or until a DateTime formula's value.
#[derive(Debug)]
pub(crate) enum WaitElement {
    Minutes(i64),
    Until(Formula),
}

#[derive(Debug)]
pub(crate) struct GetElement {
    pub object: String,
    pub filters: Vec<FilterItem>,
    pub logic: Logic,
    /// The field sorted by, its type, and whether the order is descending.
    pub sort: Option<(String, ExprType, bool)>,
    pub first_only: bool,
    /// The fields kept of each record, `Id` first; `None` keeps every field.
    pub fields: Option<Vec<String>>,
    /// The record (collection) variable that also receives the records.
    pub store_in: Option<usize>,
}

/// One condition of a Get Records element: a field of the object read, compared with a value.
#[derive(Debug)]
pub(crate) struct FilterItem {
    pub field: String,
    pub ty: ExprType,
    pub operator: Operator,
    pub right: ValueExpr,
}

#[derive(Debug)]
pub(crate) struct LoopElement {
    pub collection: CollectionRef,
    pub each: usize,
    pub after: Option<usize>,
    pub reverse: bool,
}

/// Where a whole collection or record lives in a run's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CollectionRef {
    Variable(usize),
    /// `state.outputs[element][name]`: a Get Records element's records, a loop's current item.
    Output {
        element: String,
        name: String,
    },
}

#[derive(Debug)]
pub(crate) struct ActionElement {
    pub service: String,
    pub operation: String,
    pub named_credential: String,
    pub external_credential: String,
    pub provider: Provider,
    pub method: Method,
    pub path: String,
    pub inputs: Vec<ActionInput>,
    pub outputs: Vec<(String, usize)>,
    /// The declared response statuses (`200`, `2XX`, `default`), for the typed body outputs.
    pub responses: Vec<String>,
    pub body_encoding: herald_openapi::BodyEncoding,
    /// The provider's defaults with the element's `retry` settings over them.
    pub retry: herald_providers::RetryPolicy,
}

#[derive(Debug)]
pub(crate) struct ActionInput {
    pub name: String,
    pub target: InputTarget,
    pub value: ValueExpr,
    /// The credential parameters the value reads; non-empty means the trace shows it masked.
    pub credential_parameters: Vec<String>,
    pub shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputTarget {
    Parameter(ParamLocation),
    Body,
    BodyField,
}

#[derive(Debug)]
pub(crate) struct CreateElement {
    pub object: String,
    pub fields: Vec<(String, ValueExpr)>,
    pub store_id_in: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct AssignItem {
    pub variable: usize,
    pub path: Vec<String>,
    pub operator: AssignOperator,
    pub value: ValueExpr,
    /// The declared target, for coercing and for messages.
    pub target_type: TargetType,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TargetType {
    Scalar(ExprType),
    Object,
    Collection,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AssignOperator {
    Equals,
    Add,
    Subtract,
    AddAtStart,
    RemoveAll,
    AssignCount,
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub name: String,
    /// What Flow Builder writes on the outcome's connector: the `label`, else the name.
    pub label: String,
    pub condition: Condition,
    pub next: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum Condition {
    Formula(Formula),
    List { items: Vec<ConditionItem>, logic: Logic },
}

#[derive(Debug)]
pub(crate) struct ConditionItem {
    pub left: RefId,
    pub left_type: ExprType,
    pub operator: Operator,
    pub right: ValueExpr,
    /// For IsChanged: the prior value of the same field.
    pub prior: Option<RefId>,
}

/// A value in a flow file: a literal, a text with merge fields, a single typed reference, a whole
/// object or collection variable, or a structure of these.
#[derive(Debug)]
pub(crate) enum ValueExpr {
    Literal(serde_json::Value),
    Template(Template),
    Reference(RefId),
    WholeVariable(usize),
    /// A whole output that is a collection or a record (`{!Get_Members}`, `{!Each_Member}`).
    WholeOutput {
        element: String,
        name: String,
    },
    Object(Vec<(String, ValueExpr)>),
    Array(Vec<ValueExpr>),
}
