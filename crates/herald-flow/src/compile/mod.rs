//! Compiles a flow definition against its project: every reference, field, action input and element
//! name is checked here, so that a mistake is found when the flow loads, not when a lead arrives.

use crate::flow::*;
use crate::logic::Logic;
use herald_codes::{self as codes, Code};
use herald_expr::{CompileError, Formula, RefId, Resolved, Resolver, Template, Type as ExprType, Value};
use herald_openapi::{BodyEncoding, Operation, ParamLocation, Shape};
use herald_project::{
    ConditionDef, Diagnostic, ElementDef, FieldType, FlowDef, FlowStatus, Located, Operator, Project,
    STANDARD_FIELDS, SourceId, TriggerEvent, YamlPath, closest, did_you_mean, url_host,
};
use herald_providers::{Provider, RetryPolicy};
use indexmap::IndexMap;
use serde_json::Value as Json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

mod collections;
mod records;
mod resources;
mod scheduled;
pub(crate) mod subflows;
pub(crate) use collections::{ITEM, RECORD, RECORDS};
pub(crate) use records::lookup_fields;

/// Maps an object field type to the formula type its values have.
pub(crate) fn expr_type(field_type: FieldType) -> ExprType {
    match field_type {
        FieldType::Number | FieldType::Currency | FieldType::Percent => ExprType::Number,
        FieldType::Checkbox => ExprType::Boolean,
        FieldType::Date => ExprType::Date,
        FieldType::Datetime => ExprType::DateTime,
        FieldType::Time => ExprType::Time,
        _ => ExprType::Text,
    }
}

/// The fields of an object, standard ones first, with their types.
pub(crate) fn object_fields(project: &Project, object: &str) -> Option<Vec<(String, FieldType)>> {
    let def = &project.objects.get(object)?.def;
    let mut fields: Vec<(String, FieldType)> =
        STANDARD_FIELDS.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    fields.extend(def.fields.iter().map(|(n, f)| (n.clone(), f.field_type)));
    Some(fields)
}

fn find_field(fields: &[(String, FieldType)], name: &str) -> Option<(String, FieldType)> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).cloned()
}

pub(crate) fn named_credentials(
    project: &Project,
    diagnostics: &mut herald_project::Diagnostics,
) -> IndexMap<String, Arc<NamedCredentialRuntime>> {
    let mut out = IndexMap::new();
    for (name, named) in &project.named_credentials {
        let def = &named.def;
        let Some(external) = project.external_credentials.get(&def.external_credential) else { continue };
        let Ok(host) = url_host(&def.url) else { continue };
        let parameters: Vec<String> =
            external.def.principals.iter().flat_map(|p| p.parameters.iter().cloned()).collect();
        let table = SlotTable::default();
        let mut headers = Vec::new();
        for (header, text) in &def.headers {
            let path = YamlPath::root().key("headers").key(header);
            let resolver = SiteResolver {
                table: &table,
                context: None,
                credential: def.allow_formulas_in_header.then_some(CredentialSite {
                    external: &def.external_credential,
                    parameters: &parameters,
                }),
                credential_refusal: Some(format!(
                    "named credential {name} does not allow formulas in HTTP headers; set allow_formulas_in_header: true"
                )),
            };
            match Template::compile(text, &resolver) {
                Ok(template) => headers.push(CredentialHeader {
                    name: header.clone(),
                    // A header whose formula reads `$Credential` carries a secret, in whatever form
                    // the formula gave it; its value is masked wherever an answer could echo it.
                    carries_secret: text.to_ascii_lowercase().contains("$credential."),
                    template,
                }),
                Err(error) => diagnostics.push(expr_diagnostic(project, named.source, &path, &error)),
            }
        }
        out.insert(
            name.clone(),
            Arc::new(NamedCredentialRuntime {
                name: name.clone(),
                url: def.url.trim_end_matches('/').to_string(),
                host,
                external_credential: def.external_credential.clone(),
                protocol: external.def.protocol,
                generate_authorization_header: def.generate_authorization_header,
                headers,
                header_slots: table.slots.into_inner(),
            }),
        );
    }
    out
}

fn expr_diagnostic(project: &Project, source: SourceId, path: &YamlPath, error: &CompileError) -> Diagnostic {
    project
        .at_value(source, path, Some(error.offset), error.code, error.message.clone())
        .maybe_hint(error.hint.clone())
        .detail(error.caret())
}

#[derive(Default)]
struct SlotTable {
    slots: RefCell<Vec<Slot>>,
    index: RefCell<HashMap<String, RefId>>,
    /// The code the last refused reference asks for (HF035, HF036) instead of the formula's HX004.
    coded: std::cell::Cell<Option<Code>>,
    /// The traversals resolved since the element being compiled began.
    touched: RefCell<Vec<RefId>>,
}

impl SlotTable {
    fn intern(&self, key: String, slot: Slot) -> RefId {
        if let Some(id) = self.index.borrow().get(&key) {
            return *id;
        }
        let mut slots = self.slots.borrow_mut();
        let id = RefId(slots.len() as u32);
        slots.push(slot);
        self.index.borrow_mut().insert(key, id);
        id
    }
}

#[derive(Clone, Copy)]
struct CredentialSite<'a> {
    external: &'a str,
    parameters: &'a [String],
}

/// What a flow's references may name.
struct FlowContext<'a> {
    object: &'a str,
    fields: Vec<(String, FieldType)>,
    /// False for an autolaunched flow: there is no `$Record`.
    record_triggered: bool,
    prior_allowed: bool,
    variables: &'a [Variable],
    /// Formulas, text templates and constants.
    resources: &'a resources::Resources,
    project: &'a Project,
    /// Elements and the outputs they provide.
    outputs: HashMap<String, Vec<(&'static str, ExprType)>>,
    /// Action elements: (service, operation), for typed response outputs.
    actions: HashMap<String, (String, String)>,
    /// Get Records elements: the records they hold.
    gets: HashMap<String, collections::StoredRecords>,
    /// Loop elements: what their current item is.
    loops: HashMap<String, collections::ItemShape>,
}

struct SiteResolver<'a> {
    table: &'a SlotTable,
    context: Option<&'a FlowContext<'a>>,
    credential: Option<CredentialSite<'a>>,
    /// Why `$Credential` is not allowed here, when it is not.
    credential_refusal: Option<String>,
}

impl Resolver for SiteResolver<'_> {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        let key = path.join(".").to_ascii_lowercase();
        self.table.coded.set(None);
        let (slot, ty) = self.slot_for(path).map_err(|message| match records::coded_message(&message) {
            Some((code, message)) => {
                self.table.coded.set(Some(code));
                message
            }
            None => message,
        })?;
        let related = matches!(slot, Slot::Related { .. });
        let id = self.table.intern(key, slot);
        if related && !self.table.touched.borrow().contains(&id) {
            self.table.touched.borrow_mut().push(id);
        }
        Ok(Resolved { id, ty })
    }
}

const GLOBALS: [&str; 7] =
    ["$Record", "$Record__Prior", "$Flow", "$User", "$GlobalConstant", "$Credential", "$Label"];

impl SiteResolver<'_> {
    fn slot_for(&self, path: &[&str]) -> Result<(Slot, ExprType), String> {
        let Some((head, rest)) = path.split_first() else { return Err("empty reference".into()) };
        if head.starts_with('$') {
            return self.global(head, rest);
        }
        let Some(context) = self.context else {
            return Err(format!(
                "`{}` cannot be used here; only $Credential references are allowed",
                path.join(".")
            ));
        };
        if let Some(index) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(head)) {
            if let VariableType::Record(object) = &context.variables[index].ty
                && !context.variables[index].collection
            {
                return records::record_variable_slot(context, index, object, rest);
            }
            return variable_slot(context, index, rest);
        }
        if let Some(found) = context.resources.slot(head) {
            if let Some(field) = rest.first() {
                let kind = context.resources.kind_of(head).unwrap_or("resource");
                return Err(format!("`{head}` is a {kind}, a single value; it has no field `{field}`"));
            }
            return Ok(found);
        }
        if let Some((element, stored)) = context.gets.iter().find(|(e, _)| e.eq_ignore_ascii_case(head)) {
            return collections::get_slot(context.project, element, stored, rest);
        }
        if let Some((element, item)) = context.loops.iter().find(|(e, _)| e.eq_ignore_ascii_case(head)) {
            return collections::loop_slot(context, element, item, rest);
        }
        if let Some((element, outputs)) = context.outputs.iter().find(|(e, _)| e.eq_ignore_ascii_case(head)) {
            if let Some(found) = typed_response_output(context, element, rest) {
                return found;
            }
            let Some(name) = rest.first() else {
                return Err(format!(
                    "`{element}` is an element; name one of its outputs: {}",
                    names(outputs)
                ));
            };
            let Some((output, ty)) = outputs.iter().find(|(o, _)| o.eq_ignore_ascii_case(name)) else {
                let hint = did_you_mean(name, outputs.iter().map(|(o, _)| *o)).unwrap_or_default();
                return Err(format!(
                    "element `{element}` has no output `{name}` {hint}; outputs: {}",
                    names(outputs)
                ));
            };
            return Ok((
                Slot::Output {
                    element: element.clone(),
                    name: output.to_string(),
                    path: Vec::new(),
                    ty: *ty,
                },
                *ty,
            ));
        }
        let candidates: Vec<&str> = context
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .chain(context.resources.names())
            .chain(context.outputs.keys().map(String::as_str))
            .chain(context.gets.keys().map(String::as_str))
            .chain(context.loops.keys().map(String::as_str))
            .chain(GLOBALS)
            .collect();
        let hint = did_you_mean(head, candidates.iter().copied())
            .unwrap_or_else(|| "declare it under `variables:` or use a global such as $Record".into());
        Err(format!("unknown resource `{head}`; {hint}"))
    }

    fn global(&self, head: &str, rest: &[&str]) -> Result<(Slot, ExprType), String> {
        let global = GLOBALS.iter().find(|g| g.eq_ignore_ascii_case(head)).copied();
        match (global, rest) {
            (Some("$Record" | "$Record__Prior"), [field]) => {
                let context = self.context.ok_or_else(|| format!("`{head}` cannot be used here"))?;
                if !context.record_triggered {
                    return Err(no_record_message(head));
                }
                let prior = global == Some("$Record__Prior");
                if prior && !context.prior_allowed {
                    return Err(
                        "`$Record__Prior` only exists in flows triggered on update or create_or_update"
                            .into(),
                    );
                }
                let Some((field, field_type)) = find_field(&context.fields, field) else {
                    let hint = did_you_mean(field, context.fields.iter().map(|(n, _)| n.as_str()))
                        .unwrap_or_else(|| format!("declare it in objects/{}.yaml", context.object));
                    return Err(format!("{} has no field `{field}`; {hint}", context.object));
                };
                let ty = expr_type(field_type);
                Ok((if prior { Slot::Prior { field, ty } } else { Slot::Record { field, ty } }, ty))
            }
            (Some("$Record" | "$Record__Prior"), _) if self.context.is_some_and(|c| !c.record_triggered) => {
                Err(no_record_message(head))
            }
            (Some("$Record" | "$Record__Prior"), []) => {
                Err(format!("name a field: `{head}.Phone`; a whole record cannot be used as a value"))
            }
            (Some("$Record"), _) => {
                let context = self.context.ok_or_else(|| format!("`{head}` cannot be used here"))?;
                let (hops, field, ty) =
                    records::traverse(context.project, context.object, &context.fields, "$Record", rest)?;
                Ok((Slot::Related { base: RelatedBase::Record, hops, field, ty }, ty))
            }
            (Some("$Record__Prior"), _) => Err(records::traversal_error(format!(
                "`{head}.{}`: the prior values hold the record's own fields only; traverse from `$Record`",
                rest.join(".")
            ))),
            (Some("$Flow"), [name]) => match name.to_ascii_lowercase().as_str() {
                "faultmessage" => Ok((Slot::FaultMessage, ExprType::Text)),
                "currentdatetime" => Ok((Slot::CurrentDateTime, ExprType::DateTime)),
                "currentdate" => Ok((Slot::CurrentDate, ExprType::Date)),
                "interviewguid" => Ok((Slot::InterviewGuid, ExprType::Text)),
                _ => Err(format!(
                    "unknown `$Flow.{name}`; {}",
                    did_you_mean(name, ["FaultMessage", "CurrentDateTime", "CurrentDate", "InterviewGuid"])
                        .unwrap_or_else(
                            || "use FaultMessage, CurrentDateTime, CurrentDate or InterviewGuid".into()
                        )
                )),
            },
            (Some("$User"), [name]) => match name.to_ascii_lowercase().as_str() {
                "id" => Ok((Slot::UserId, ExprType::Text)),
                "username" | "name" => Ok((Slot::UserName, ExprType::Text)),
                _ => Err(format!("unknown `$User.{name}`; use $User.Id or $User.Username")),
            },
            (Some("$GlobalConstant"), [name]) => match name.to_ascii_lowercase().as_str() {
                "true" => Ok((Slot::Constant(Value::Boolean(true)), ExprType::Boolean)),
                "false" => Ok((Slot::Constant(Value::Boolean(false)), ExprType::Boolean)),
                "emptystring" => Ok((Slot::Constant(Value::text("")), ExprType::Text)),
                _ => Err(format!("unknown `$GlobalConstant.{name}`; use True, False or EmptyString")),
            },
            (Some("$Credential"), [external, parameter]) => {
                let Some(site) = self.credential else {
                    return Err(self.credential_refusal.clone().unwrap_or_else(|| {
                        "`$Credential` can only be used in the inputs of an action whose named credential allows formulas".into()
                    }));
                };
                if !site.external.eq_ignore_ascii_case(external) {
                    return Err(format!(
                        "this action's named credential uses external credential `{}`, not `{external}`",
                        site.external
                    ));
                }
                let Some(parameter) = site.parameters.iter().find(|p| p.eq_ignore_ascii_case(parameter))
                else {
                    let hint = did_you_mean(parameter, site.parameters.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("its parameters are: {}", site.parameters.join(", ")));
                    return Err(format!(
                        "external credential `{}` has no parameter `{parameter}`; {hint}",
                        site.external
                    ));
                };
                Ok((Slot::Credential { parameter: parameter.clone() }, ExprType::Text))
            }
            (Some("$Credential"), _) => Err("write `$Credential.ExternalCredential.parameter`".into()),
            (Some("$Label"), [name]) => {
                let context = self.context.ok_or("`$Label` cannot be used here")?;
                let labels = &context.project.labels;
                match labels.iter().find(|(label, _)| label.eq_ignore_ascii_case(name)) {
                    Some((_, label)) => {
                        Ok((Slot::Constant(Value::text(label.def.value.as_str())), ExprType::Text))
                    }
                    None => {
                        let hint = did_you_mean(name, labels.keys().map(String::as_str)).unwrap_or_else(|| {
                            format!("declare it in a file of labels/, e.g. labels/Labels.yaml: `{name}: {{value: ...}}`")
                        });
                        Err(format!("unknown custom label `$Label.{name}`; {hint}"))
                    }
                }
            }
            (Some(global), _) => {
                Err(format!("`{global}` needs one name after it, e.g. `{global}.{}`", example(global)))
            }
            (None, _) => {
                let hint = did_you_mean(head, GLOBALS)
                    .unwrap_or_else(|| format!("globals are {}", GLOBALS.join(", ")));
                Err(format!("unknown global `{head}`; {hint}"))
            }
        }
    }
}

/// Why an autolaunched flow cannot read `$Record`, and what it does instead.
fn no_record_message(head: &str) -> String {
    format!(
        "`{head}` only exists in a record-triggered flow, and this flow has no `trigger:` (it is autolaunched); \
         declare a variable with `input: true` and pass the value when the flow starts, or add a `trigger:`"
    )
}

fn example(global: &str) -> &'static str {
    match global {
        "$Flow" => "FaultMessage",
        "$User" => "Id",
        "$Label" => "Welcome_Text",
        _ => "True",
    }
}

/// `Send.200.status.code`: a field of the typed body of a declared response, for an action whose
/// operation declares one. `None` when `rest` does not start with a declared status.
fn typed_response_output(
    context: &FlowContext<'_>,
    element: &str,
    rest: &[&str],
) -> Option<Result<(Slot, ExprType), String>> {
    let (status, fields) = rest.split_first()?;
    let action = context.actions.get(element)?;
    let service = &context.project.services.get(&action.0)?.def.model;
    let operation = service.operations.get(&action.1)?;
    let response = operation.responses.iter().find(|r| r.status.eq_ignore_ascii_case(status))?;
    let Some(Shape::Object { type_name }) = &response.shape else {
        return Some(Err(format!(
            "response {} of {}.{} has no typed body; read `{element}.responseBody`",
            response.status, action.0, action.1
        )));
    };
    if fields.is_empty() {
        return Some(Err(format!(
            "name a field of the {} body, e.g. `{element}.{}.field`",
            response.status, response.status
        )));
    }
    Some(match herald_openapi::field_path(service, type_name, fields) {
        Ok(info) => match &info.shape {
            Shape::Object { .. } | Shape::List { .. } | Shape::Map { .. } | Shape::Any => {
                Err(format!("`{element}.{}.{}` is not a single value", response.status, fields.join(".")))
            }
            scalar => {
                let ty = shape_type(scalar);
                Ok((
                    Slot::Output {
                        element: element.to_string(),
                        name: response.status.clone(),
                        path: info.canonical_path.clone(),
                        ty,
                    },
                    ty,
                ))
            }
        },
        Err(error) => Err(format!("`{element}.{}`: {error}", rest.join("."))),
    })
}

fn names(outputs: &[(&str, ExprType)]) -> String {
    outputs.iter().map(|(o, _)| *o).collect::<Vec<_>>().join(", ")
}

fn variable_slot(context: &FlowContext<'_>, index: usize, path: &[&str]) -> Result<(Slot, ExprType), String> {
    let variable = &context.variables[index];
    let (leaf, canonical, _) = walk_type(context.project, variable, path)?;
    match leaf {
        TargetType::Scalar(ty) => Ok((Slot::Variable { index, path: canonical, ty }, ty)),
        TargetType::Collection => {
            Err(format!("`{}` is a collection; it cannot be used as a single value", variable.name))
        }
        _ => Err(format!(
            "`{}` is an object; name one of its fields, e.g. `{}.field`",
            std::iter::once(variable.name.as_str()).chain(path.iter().copied()).collect::<Vec<_>>().join("."),
            variable.name
        )),
    }
}

/// Walks `path` through a variable's type; returns the type found there, the path with each field
/// written as the spec spells it, and the field's description from the spec (for enum checks).
fn walk_type(
    project: &Project,
    variable: &Variable,
    path: &[&str],
) -> Result<(TargetType, Vec<String>, Option<herald_openapi::FieldInfo>), String> {
    if variable.collection {
        return if path.is_empty() {
            Ok((TargetType::Collection, Vec::new(), None))
        } else {
            Err(format!("`{}` is a collection; its items have no fields here", variable.name))
        };
    }
    let type_name = match &variable.ty {
        VariableType::Scalar(ty) => {
            return if path.is_empty() {
                Ok((TargetType::Scalar(*ty), Vec::new(), None))
            } else {
                Err(format!("`{}` is a {ty} variable; it has no field `{}`", variable.name, path[0]))
            };
        }
        VariableType::Object(name) => name,
        VariableType::Record(object) => {
            let (target, canonical) = records::record_target(project, variable, object, path)?;
            return Ok((target, canonical, None));
        }
    };
    if path.is_empty() {
        return Ok((TargetType::Object, Vec::new(), None));
    }
    let Some(service) = project.services.values().find(|s| s.def.model.types.contains_key(type_name)) else {
        return Ok((TargetType::Any, path.iter().map(|p| p.to_string()).collect(), None));
    };
    let info = herald_openapi::field_path(&service.def.model, type_name, path)
        .map_err(|error| format!("`{}.{}`: {error}", variable.name, path.join(".")))?;
    let target = match &info.shape {
        Shape::Object { .. } => TargetType::Object,
        Shape::List { .. } => TargetType::Collection,
        Shape::Map { .. } | Shape::Any => TargetType::Any,
        scalar => TargetType::Scalar(shape_type(scalar)),
    };
    Ok((target, info.canonical_path.clone(), Some(info)))
}

fn shape_type(shape: &Shape) -> ExprType {
    match shape {
        Shape::Number | Shape::Integer => ExprType::Number,
        Shape::Boolean => ExprType::Boolean,
        _ => ExprType::Text,
    }
}

fn find_type<'a>(project: &'a Project, name: &str) -> Option<&'a herald_openapi::ObjectType> {
    project.services.values().find_map(|s| s.def.model.types.get(name))
}

/// Collects the problems of one flow, each pointed at its place in the file.
struct FlowCompiler<'a> {
    project: &'a Project,
    def: &'a FlowDef,
    source: SourceId,
    diagnostics: Vec<Diagnostic>,
    table: SlotTable,
}

pub(crate) fn compile_flow(
    project: &Project,
    flow: &Located<FlowDef>,
) -> Result<CompiledFlow, Vec<Diagnostic>> {
    let mut compiler = FlowCompiler {
        project,
        def: &flow.def,
        source: flow.source,
        diagnostics: Vec::new(),
        table: SlotTable::default(),
    };
    let compiled = compiler.compile();
    match compiled {
        Some(flow) if compiler.diagnostics.is_empty() => Ok(flow),
        _ => Err(compiler.diagnostics),
    }
}

impl<'a> FlowCompiler<'a> {
    fn error(&mut self, path: &YamlPath, code: Code, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(self.project.at_key(self.source, path, code, message).maybe_hint(hint));
    }

    /// A formula's problem, under the code its reference asked for when it asked for one.
    fn expr_error(&self, path: &YamlPath, error: &CompileError) -> Diagnostic {
        let mut diagnostic = expr_diagnostic(self.project, self.source, path, error);
        if error.code == codes::HX004
            && let Some(code) = self.table.coded.take()
        {
            diagnostic.code = code;
        }
        diagnostic
    }

    fn value_error(&mut self, path: &YamlPath, code: Code, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(self.project.at_value(self.source, path, None, code, message).maybe_hint(hint));
    }

    fn compile(&mut self) -> Option<CompiledFlow> {
        let def = self.def;
        let root = YamlPath::root();
        let trigger_path = root.key("trigger");
        let (object, fields) = match &def.trigger {
            Some(trigger) => {
                let object = trigger.object.clone();
                let Some(fields) = object_fields(self.project, &object) else {
                    let hint = did_you_mean(&object, self.project.objects.keys().map(String::as_str))
                        .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
                    self.value_error(
                        &trigger_path.key("object"),
                        codes::HF001,
                        format!("unknown object `{object}`"),
                        hint,
                    );
                    return None;
                };
                (object, fields)
            }
            None => (String::new(), Vec::new()),
        };
        let variables = self.variables();
        let resources = self.declare_resources(&variables);
        let element_index: HashMap<String, usize> =
            def.elements.keys().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        let outputs = self.element_outputs();
        let context = FlowContext {
            object: &object,
            fields,
            record_triggered: def.trigger.is_some(),
            prior_allowed: def.trigger.as_ref().is_some_and(|t| t.on != TriggerEvent::Create),
            variables: &variables,
            resources: &resources,
            project: self.project,
            outputs,
            actions: def
                .elements
                .iter()
                .filter_map(|(name, e)| {
                    let (service, operation) = e.action.as_ref()?.split_once('.')?;
                    Some((name.clone(), (service.to_string(), operation.to_string())))
                })
                .collect(),
            gets: HashMap::new(),
            loops: HashMap::new(),
        };
        let gets = collections::stored_records(self.project, def);
        let context = FlowContext { gets, ..context };
        let loops = collections::loop_items(&context, def);
        let context = FlowContext { loops, ..context };
        let compiled_resources = self.compile_resources(&context);

        let entry = self.entry_condition(&context);
        if !self.table.touched.take().is_empty() {
            self.error(
                &trigger_path,
                codes::HF036,
                "the entry condition reads a field through a relationship; it is judged from the record alone",
                Some("start the flow on the record's own fields, and test the related field in a Decision as the first element".into()),
            );
        }
        let only_when_updated_to_meet = def.trigger.as_ref().is_some_and(|t| t.only_when_updated_to_meet);
        if only_when_updated_to_meet && def.trigger.as_ref().is_some_and(|t| t.on == TriggerEvent::Create) {
            self.error(
                &trigger_path.key("only_when_updated_to_meet"),
                codes::HF002,
                "only_when_updated_to_meet needs a flow triggered on update or create_or_update",
                Some("remove it, or set `on: update`".into()),
            );
        }
        if only_when_updated_to_meet && entry.is_none() {
            self.error(
                &trigger_path.key("only_when_updated_to_meet"),
                codes::HF002,
                "only_when_updated_to_meet needs an entry condition",
                Some("add `when:` or `conditions:`".into()),
            );
        }

        // An unknown start is reported; the elements are still checked so every problem shows at once.
        let start = self.target(&root.key("start"), &def.start, &element_index).unwrap_or(0);
        let mut elements = Vec::new();
        for (name, element) in &def.elements {
            let path = root.key("elements").key(name);
            if !herald_project::is_api_name(name) {
                self.error(
                    &path,
                    codes::HF003,
                    format!("`{name}` is not a valid element API name"),
                    Some("use letters, digits and underscores; put the display name in `label`".into()),
                );
            }
            if let Some(compiled) = self.element(name, element, &path, &context, &element_index) {
                elements.push(compiled);
            }
        }
        let (scheduled_paths, async_start) = self.paths(&context, &element_index);
        // Only on an otherwise clean flow: a refused assignment would look like a missing field.
        if self.diagnostics.is_empty() {
            self.check_required_body_fields(&elements, &variables);
        }
        if !self.diagnostics.is_empty() || elements.len() != def.elements.len() {
            return None;
        }
        let (formulas, text_templates) = compiled_resources?;
        Some(CompiledFlow {
            name: def.name.clone(),
            label: def.label.clone().unwrap_or_else(|| def.name.replace('_', " ")),
            trigger: def.trigger.as_ref().map(|t| RecordTrigger { object: object.clone(), event: t.on }),
            active: def.status == FlowStatus::Active,
            run_as: def.run_as,
            only_when_updated_to_meet,
            entry,
            slots: self.table.slots.take(),
            variables,
            formulas,
            text_templates,
            elements,
            element_index,
            start,
            scheduled_paths,
            async_start,
        })
    }

    /// A body variable passed to an action must have every required field of its type assigned
    /// somewhere in the flow (the spec would refuse the request otherwise, after the lead waited).
    fn check_required_body_fields(&mut self, elements: &[Element], variables: &[Variable]) {
        for element in elements {
            let ElementKind::Action(action) = &element.kind else { continue };
            for input in &action.inputs {
                let (InputTarget::Body, ValueExpr::WholeVariable(index)) = (&input.target, &input.value)
                else {
                    continue;
                };
                let VariableType::Object(type_name) = &variables[*index].ty else { continue };
                let Some(object) = find_type(self.project, type_name) else { continue };
                let assigned: Vec<&str> = elements
                    .iter()
                    .filter_map(|e| match &e.kind {
                        ElementKind::Assign(items) => Some(items),
                        _ => None,
                    })
                    .flatten()
                    .filter(|item| item.variable == *index)
                    .map(|item| item.path.first().map_or("", String::as_str))
                    .collect();
                if assigned.contains(&"")
                    || variables[*index].default.as_object().is_some_and(|d| !d.is_empty())
                {
                    continue;
                }
                let missing: Vec<&str> = object
                    .properties
                    .iter()
                    .filter(|(name, property)| property.required && !assigned.contains(&name.as_str()))
                    .map(|(name, _)| name.as_str())
                    .collect();
                if !missing.is_empty() {
                    let path =
                        YamlPath::root().key("elements").key(&element.name).key("inputs").key(&input.name);
                    let variable = &variables[*index].name;
                    self.error(
                        &path,
                        codes::HF029,
                        format!("`{variable}` is sent as {type_name}, but its required field{} {} {} never assigned", if missing.len() == 1 { "" } else { "s" }, missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "), if missing.len() == 1 { "is" } else { "are" }),
                        Some(format!("assign `{variable}.{}` before this action", missing[0])),
                    );
                }
            }
        }
    }

    fn resolver<'r>(
        &'r self,
        context: &'r FlowContext<'r>,
        credential: Option<CredentialSite<'r>>,
    ) -> SiteResolver<'r> {
        SiteResolver { table: &self.table, context: Some(context), credential, credential_refusal: None }
    }

    fn variables(&mut self) -> Vec<Variable> {
        let mut variables = Vec::new();
        for (name, def) in &self.def.variables {
            let path = YamlPath::root().key("variables").key(name);
            if !herald_project::is_api_name(name) {
                self.error(&path, codes::HF003, format!("`{name}` is not a valid variable name"), None);
                continue;
            }
            let ty = match scalar_type(&def.data_type) {
                Some(ty) => VariableType::Scalar(ty),
                None if find_type(self.project, &def.data_type).is_some() => {
                    VariableType::Object(def.data_type.clone())
                }
                None if records::record_object(self.project, &def.data_type).is_some() => {
                    VariableType::Record(
                        records::record_object(self.project, &def.data_type).unwrap_or_default(),
                    )
                }
                None => {
                    let candidates: Vec<&str> = ["Text", "Number", "Boolean", "Date", "DateTime", "Time"]
                        .into_iter()
                        .chain(
                            self.project
                                .services
                                .values()
                                .flat_map(|s| s.def.model.types.keys().map(String::as_str)),
                        )
                        .chain(self.project.objects.keys().map(String::as_str))
                        .collect();
                    let hint = did_you_mean(&def.data_type, candidates.iter().copied())
                        .or_else(|| Some("use Text, Number, Boolean, Date, DateTime, Time an object of objects/ (a record variable), or a generated service type (see `herald service show`)".into()));
                    self.value_error(
                        &path.key("type"),
                        codes::HF004,
                        format!("unknown type `{}`", def.data_type),
                        hint,
                    );
                    continue;
                }
            };
            let default = match (&def.default, &ty, def.collection) {
                (None, _, true) => Json::Array(Vec::new()),
                (None, VariableType::Object(_) | VariableType::Record(_), false) => {
                    Json::Object(Default::default())
                }
                (None, VariableType::Scalar(_), false) => Json::Null,
                (Some(value), VariableType::Scalar(ty), false) => match Value::from_json(value, *ty) {
                    Ok(v) => v.to_json(),
                    Err(error) => {
                        self.value_error(
                            &path.key("default"),
                            codes::HF005,
                            format!("default does not fit {ty}: {error}"),
                            None,
                        );
                        continue;
                    }
                },
                (Some(value), _, _) => value.clone(),
            };
            if self.def.trigger.is_some() && (def.input || def.output) {
                let flag = if def.input { "input" } else { "output" };
                self.error(
                    &path.key(flag),
                    codes::HF033,
                    format!("`{name}` is marked `{flag}: true`, but this flow is record-triggered"),
                    Some(format!(
                        "only an autolaunched flow (one without `trigger:`) takes inputs and gives outputs; remove `{flag}: true`, or read the record through $Record"
                    )),
                );
                continue;
            }
            variables.push(Variable {
                name: name.clone(),
                ty,
                collection: def.collection,
                default,
                input: def.input,
                output: def.output,
            });
        }
        variables
    }

    fn element_outputs(&self) -> HashMap<String, Vec<(&'static str, ExprType)>> {
        let mut outputs = HashMap::new();
        for (name, element) in &self.def.elements {
            if element.action.is_some() {
                outputs.insert(
                    name.clone(),
                    vec![("responseCode", ExprType::Number), ("responseBody", ExprType::Text)],
                );
            } else if element.create.is_some() {
                outputs.insert(name.clone(), vec![("Id", ExprType::Text)]);
            }
        }
        outputs
    }

    fn target(&mut self, path: &YamlPath, name: &str, index: &HashMap<String, usize>) -> Option<usize> {
        if let Some(position) = index.get(name) {
            return Some(*position);
        }
        let hint = did_you_mean(name, index.keys().map(String::as_str)).or_else(|| {
            Some(format!(
                "elements are: {}",
                self.def.elements.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        });
        self.value_error(path, codes::HF006, format!("no element named `{name}`"), hint);
        None
    }

    fn optional_target(
        &mut self,
        path: &YamlPath,
        name: Option<&String>,
        index: &HashMap<String, usize>,
    ) -> Option<usize> {
        name.and_then(|name| self.target(path, name, index))
    }

    fn entry_condition(&mut self, context: &FlowContext<'_>) -> Option<Condition> {
        let trigger = self.def.trigger.as_ref()?;
        let path = YamlPath::root().key("trigger");
        if trigger.when.is_some() && !trigger.conditions.is_empty() {
            self.error(
                &path,
                codes::HF007,
                "the entry condition has both `when` and `conditions`",
                Some("keep one of them".into()),
            );
            return None;
        }
        self.condition(
            &path,
            trigger.when.as_deref(),
            &trigger.conditions,
            trigger.logic.as_deref(),
            context,
            true,
        )
    }

    fn condition(
        &mut self,
        path: &YamlPath,
        when: Option<&str>,
        conditions: &[ConditionDef],
        logic: Option<&str>,
        context: &FlowContext<'_>,
        record_shorthand: bool,
    ) -> Option<Condition> {
        if let Some(formula) = when {
            let compiled = Formula::compile(formula, &self.resolver(context, None));
            return match compiled {
                Ok(formula) if formula.result_type() == ExprType::Boolean => {
                    Some(Condition::Formula(formula))
                }
                Ok(formula) => {
                    self.value_error(
                        &path.key("when"),
                        codes::HF008,
                        format!("the condition formula returns {}, not Boolean", formula.result_type()),
                        Some("compare it, e.g. `NOT(ISBLANK({!$Record.Phone}))`".into()),
                    );
                    None
                }
                Err(error) => {
                    let diagnostic = self.expr_error(&path.key("when"), &error);
                    self.diagnostics.push(diagnostic);
                    None
                }
            };
        }
        if conditions.is_empty() {
            if logic.is_some() {
                self.error(&path.key("logic"), codes::HF007, "`logic` without `conditions`", None);
            }
            return None;
        }
        let logic = self.logic(path, logic, conditions.len())?;
        let mut items = Vec::new();
        for (index, condition) in conditions.iter().enumerate() {
            let item_path = path.key("conditions").index(index);
            if let Some(item) = self.condition_item(&item_path, condition, context, record_shorthand) {
                items.push(item);
            }
        }
        (items.len() == conditions.len()).then_some(Condition::List { items, logic })
    }

    /// How a list of `count` conditions combines (`logic` beside `conditions`).
    fn logic(&mut self, path: &YamlPath, logic: Option<&str>, count: usize) -> Option<Logic> {
        match Logic::parse(logic, count) {
            Ok(logic) => Some(logic),
            Err(message) => {
                self.value_error(
                    &path.key("logic"),
                    codes::HF009,
                    message,
                    Some("write e.g. `1 AND (2 OR 3)`".into()),
                );
                None
            }
        }
    }

    /// A condition's `right`: true or false for `IsNull`, `IsBlank` and `IsChanged` (true when left
    /// out), a value for the other operators.
    fn condition_right(
        &mut self,
        path: &YamlPath,
        right: Option<&Json>,
        operator: Operator,
        context: &FlowContext<'_>,
    ) -> Option<ValueExpr> {
        let right_path = path.key("right");
        match (right, operator) {
            (None, Operator::IsNull | Operator::IsBlank | Operator::IsChanged) => {
                Some(ValueExpr::Literal(Json::Bool(true)))
            }
            (None, _) => {
                self.error(path, codes::HF011, format!("operator {operator:?} needs a `right` value"), None);
                None
            }
            (Some(value), Operator::IsNull | Operator::IsBlank | Operator::IsChanged) => match value {
                Json::Bool(_) => Some(ValueExpr::Literal(value.clone())),
                _ => {
                    self.value_error(
                        &right_path,
                        codes::HF011,
                        format!("operator {operator:?} takes true or false"),
                        None,
                    );
                    None
                }
            },
            (Some(value), _) => self.value_expr(&right_path, value, context, None),
        }
    }

    fn condition_item(
        &mut self,
        path: &YamlPath,
        condition: &ConditionDef,
        context: &FlowContext<'_>,
        record_shorthand: bool,
    ) -> Option<ConditionItem> {
        let reference = match (&condition.field, &condition.left) {
            (Some(field), None) if record_shorthand => format!("{{!$Record.{field}}}"),
            (Some(_), None) => {
                self.error(
                    &path.key("field"),
                    codes::HF010,
                    "`field` is only for entry conditions",
                    Some("write `left: \"{!$Record.Field}\"`".into()),
                );
                return None;
            }
            (None, Some(left)) => left.clone(),
            _ => {
                self.error(path, codes::HF010, "a condition needs exactly one of `field` or `left`", None);
                return None;
            }
        };
        let left_path = if condition.field.is_some() { path.key("field") } else { path.key("left") };
        let resolver = self.resolver(context, None);
        let left = match Template::compile(&reference, &resolver) {
            Ok(template) => match template.as_single_reference() {
                Some(id) => id,
                None => {
                    self.value_error(
                        &left_path,
                        codes::HF010,
                        "the left side of a condition must be one reference",
                        Some("write e.g. `{!$Record.Phone}`".into()),
                    );
                    return None;
                }
            },
            Err(error) => {
                let error =
                    if condition.field.is_some() { CompileError { offset: 0, ..error } } else { error };
                let diagnostic = self.expr_error(&left_path, &error);
                self.diagnostics.push(diagnostic);
                return None;
            }
        };
        let left_type = slot_type(&self.table.slots.borrow()[left.0 as usize]);
        let operator = condition.operator;
        let right = self.condition_right(path, condition.right.as_ref(), operator, context)?;
        let prior = if operator == Operator::IsChanged {
            let slot = self.table.slots.borrow()[left.0 as usize].clone();
            match slot {
                Slot::Record { field, ty } if context.prior_allowed => Some(self.table.intern(
                    format!("$record__prior.{}", field.to_ascii_lowercase()),
                    Slot::Prior { field, ty },
                )),
                Slot::Record { .. } => {
                    self.error(
                        path,
                        codes::HF012,
                        "IsChanged needs a flow triggered on update or create_or_update",
                        None,
                    );
                    return None;
                }
                _ => {
                    self.error(path, codes::HF012, "IsChanged applies to a field of $Record", None);
                    return None;
                }
            }
        } else {
            None
        };
        Some(ConditionItem { left, left_type, operator, right, prior })
    }

    /// Compiles one value of a flow file. Strings with `{!` are templates (or a single typed reference,
    /// or a whole object/collection variable); mappings and lists become structures.
    fn value_expr(
        &mut self,
        path: &YamlPath,
        value: &Json,
        context: &FlowContext<'_>,
        credential: Option<CredentialSite<'_>>,
    ) -> Option<ValueExpr> {
        match value {
            Json::String(text) if text.contains("{!") => {
                if let Some(index) = whole_variable(text, context) {
                    return Some(ValueExpr::WholeVariable(index));
                }
                if let Some(CollectionRef::Output { element, name }) =
                    collections::whole_output(text, context)
                {
                    return Some(ValueExpr::WholeOutput { element, name });
                }
                let resolver = self.resolver(context, credential);
                match Template::compile(text, &resolver) {
                    Ok(template) => Some(match template.as_single_reference() {
                        Some(id) => ValueExpr::Reference(id),
                        None => ValueExpr::Template(template),
                    }),
                    Err(error) => {
                        let diagnostic = self.expr_error(path, &error);
                        self.diagnostics.push(diagnostic);
                        None
                    }
                }
            }
            Json::Object(map) => {
                let mut fields = Vec::new();
                for (key, inner) in map {
                    fields.push((key.clone(), self.value_expr(&path.key(key), inner, context, credential)?));
                }
                Some(ValueExpr::Object(fields))
            }
            Json::Array(items) => {
                let mut compiled = Vec::new();
                for (index, inner) in items.iter().enumerate() {
                    compiled.push(self.value_expr(&path.index(index), inner, context, credential)?);
                }
                Some(ValueExpr::Array(compiled))
            }
            other => Some(ValueExpr::Literal(other.clone())),
        }
    }

    fn element(
        &mut self,
        name: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
        index: &HashMap<String, usize>,
    ) -> Option<Element> {
        let kinds = [
            def.action.is_some(),
            def.create.is_some(),
            def.assign.is_some(),
            def.decision.is_some(),
            def.get.is_some(),
            def.loop_over.is_some(),
            def.update.is_some(),
            def.delete.is_some(),
            def.subflow.is_some(),
            def.wait.is_some(),
        ];
        self.table.touched.take();
        let count = kinds.iter().filter(|k| **k).count();
        if count != 1 {
            let message = if count == 0 {
                format!("element `{name}` has no kind")
            } else {
                format!("element `{name}` has more than one kind")
            };
            self.error(
                path,
                codes::HF013,
                message,
                Some(
                    "give it exactly one of `action`, `create`, `get`, `update`, `delete`, `assign`, `decision`, `loop`, `subflow` or `wait`".into(),
                ),
            );
            return None;
        }
        let next = self.optional_target(&path.key("next"), def.next.as_ref(), index);
        let fault = self.optional_target(&path.key("fault"), def.fault.as_ref(), index);
        if def.fault.is_some()
            && (def.assign.is_some()
                || def.decision.is_some()
                || def.loop_over.is_some()
                || def.wait.is_some())
        {
            self.error(
                &path.key("fault"),
                codes::HF014,
                "only actions, Create, Get, Update and Delete Records, and Subflows can fail and take a fault connector",
                None,
            );
        }
        if def.loop_over.is_some() && def.next.is_some() {
            self.error(
                &path.key("next"),
                codes::HF014,
                "a loop goes on through `each` (for each item) and `after` (after the last item), not `next`",
                Some("rename `next` to `after`".into()),
            );
        }
        if def.decision.is_some() && def.next.is_some() {
            self.error(
                &path.key("next"),
                codes::HF014,
                "a decision goes on through its outcomes and `default`, not `next`",
                None,
            );
        }
        let changes = def.update.is_some() || def.delete.is_some();
        let stray = [
            (!def.inputs.is_empty() && def.action.is_none() && def.subflow.is_none(), "inputs"),
            (!def.outputs.is_empty() && def.action.is_none() && def.subflow.is_none(), "outputs"),
            (!def.fields.is_empty() && def.create.is_none() && def.update.is_none(), "fields"),
            (def.store_id_in.is_some() && def.create.is_none(), "store_id_in"),
            (def.default.is_some() && def.decision.is_none(), "default"),
            (def.retry.is_some() && def.action.is_none(), "retry"),
            (!def.conditions.is_empty() && def.get.is_none() && !changes, "conditions"),
            (def.logic.is_some() && def.get.is_none() && !changes, "logic"),
            (def.record.is_some() && !changes, "record"),
            (def.max_rows.is_some() && !changes, "max_rows"),
            (def.store_in.is_some() && def.get.is_none(), "store_in"),
            (def.sort_by.is_some() && def.get.is_none(), "sort_by"),
            (def.sort_order.is_some() && def.get.is_none(), "sort_order"),
            (def.how_many.is_some() && def.get.is_none(), "how_many"),
            (def.store_fields.is_some() && def.get.is_none(), "store_fields"),
            (def.each.is_some() && def.loop_over.is_none(), "each"),
            (def.after.is_some() && def.loop_over.is_none(), "after"),
            (def.direction.is_some() && def.loop_over.is_none(), "direction"),
        ];
        for (is_stray, key) in stray {
            if is_stray {
                self.error(
                    &path.key(key),
                    codes::HF014,
                    format!("`{key}` does not belong to this kind of element"),
                    None,
                );
            }
        }
        let kind = if let Some(action) = &def.action {
            ElementKind::Action(self.action(action, def, path, context)?)
        } else if let Some(object) = &def.create {
            ElementKind::Create(self.create(object, def, path, context)?)
        } else if let Some(object) = &def.get {
            ElementKind::Get(self.get_records(object, def, path, context)?)
        } else if let Some(object) = &def.update {
            ElementKind::Update(self.change_records(false, object, def, path, context)?)
        } else if let Some(object) = &def.delete {
            ElementKind::Delete(self.change_records(true, object, def, path, context)?)
        } else if let Some(collection) = &def.loop_over {
            ElementKind::Loop(self.loop_element(collection, def, path, context, index)?)
        } else if let Some(called) = &def.subflow {
            ElementKind::Subflow(self.subflow(called, def, path, context)?)
        } else if let Some(items) = &def.assign {
            ElementKind::Assign(self.assign(items, &path.key("assign"), context)?)
        } else if def.wait.is_some() {
            ElementKind::Wait(self.wait_element(def, path, context)?)
        } else {
            let outcomes_def = def.decision.as_deref().unwrap_or_default();
            let mut outcomes = Vec::new();
            for (position, outcome) in outcomes_def.iter().enumerate() {
                let outcome_path = path.key("decision").index(position);
                if outcome.when.is_some() && !outcome.conditions.is_empty() {
                    self.error(
                        &outcome_path,
                        codes::HF007,
                        "an outcome has both `when` and `conditions`",
                        Some("keep one".into()),
                    );
                    continue;
                }
                let condition = self.condition(
                    &outcome_path,
                    outcome.when.as_deref(),
                    &outcome.conditions,
                    outcome.logic.as_deref(),
                    context,
                    false,
                );
                let Some(condition) = condition else {
                    if outcome.when.is_none() && outcome.conditions.is_empty() {
                        self.error(
                            &outcome_path,
                            codes::HF015,
                            format!("outcome `{}` has no condition", outcome.name),
                            Some("add `when:` or `conditions:`".into()),
                        );
                    }
                    continue;
                };
                let next = self.optional_target(&outcome_path.key("next"), outcome.next.as_ref(), index);
                let label = outcome.label.clone().unwrap_or_else(|| outcome.name.replace('_', " "));
                outcomes.push(Outcome { name: outcome.name.clone(), label, condition, next });
            }
            if outcomes_def.is_empty() {
                self.error(
                    &path.key("decision"),
                    codes::HF015,
                    "a decision needs at least one outcome",
                    None,
                );
            }
            let default = self.optional_target(&path.key("default"), def.default.as_ref(), index);
            ElementKind::Decision { outcomes, default }
        };
        Some(Element {
            name: name.to_string(),
            label: def.label.clone().unwrap_or_else(|| name.replace('_', " ")),
            kind,
            next,
            fault,
            related: self.table.touched.take(),
        })
    }

    fn action(
        &mut self,
        reference: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<ActionElement> {
        let action_path = path.key("action");
        let Some((service_name, operation_name)) = reference.split_once('.') else {
            self.value_error(
                &action_path,
                codes::HF016,
                format!("`{reference}` does not name an action"),
                Some("write `Service.Action`, e.g. KixieService.Send_SMS".into()),
            );
            return None;
        };
        let Some(service) = self.project.services.get(service_name) else {
            let hint = did_you_mean(service_name, self.project.services.keys().map(String::as_str))
                .or_else(|| Some("declare the service in services/".into()));
            self.value_error(&action_path, codes::HF016, format!("unknown service `{service_name}`"), hint);
            return None;
        };
        let model = &service.def.model;
        let Some(operation) = model.operations.get(operation_name) else {
            let available: Vec<&str> = model.operations.keys().map(String::as_str).collect();
            let hint = did_you_mean(operation_name, available.iter().copied())
                .unwrap_or_else(|| format!("{service_name} has: {}", available.join(", ")));
            self.value_error(
                &action_path,
                codes::HF016,
                format!("service `{service_name}` has no action `{operation_name}`"),
                Some(hint),
            );
            return None;
        };
        // A missing named or external credential was reported by the project loader; the inputs are
        // still checked so that every problem shows at once.
        let named = self.project.named_credentials.get(&model.named_credential);
        let external = named.and_then(|n| self.project.external_credentials.get(&n.def.external_credential));
        let parameters: Vec<String> = external
            .map(|e| e.def.principals.iter().flat_map(|p| p.parameters.iter().cloned()).collect())
            .unwrap_or_default();
        let external_name = named.map(|n| n.def.external_credential.clone()).unwrap_or_default();
        let credential =
            external.map(|_| CredentialSite { external: &external_name, parameters: &parameters });
        let named_name = model.named_credential.clone();
        let refusal = |place: &str, option: &str| {
            format!(
                "named credential {named_name} does not allow formulas in the HTTP {place}; set {option}: true in credentials/{named_name}.yaml"
            )
        };
        let allows =
            |check: fn(&herald_project::NamedCredentialDef) -> bool| named.is_some_and(|n| check(&n.def));

        let mut inputs = Vec::new();
        for (name, value) in &def.inputs {
            let input_path = path.key("inputs").key(name);
            let Some((target, shape)) = input_target(model, operation, name) else {
                let mut candidates: Vec<&str> =
                    operation.parameters.iter().map(|p| p.name.as_str()).collect();
                if let Some(body) = &operation.body {
                    candidates.push(&body.name);
                }
                if let Some(object) = model.body_properties(operation) {
                    candidates.extend(object.properties.keys().map(String::as_str));
                }
                let hint = did_you_mean(name, candidates.iter().copied())
                    .unwrap_or_else(|| format!("its inputs are: {}", candidates.join(", ")));
                self.error(
                    &input_path,
                    codes::HF017,
                    format!("action {reference} has no input `{name}`"),
                    Some(hint),
                );
                continue;
            };
            let (allowed, refused) = match target {
                InputTarget::Body | InputTarget::BodyField => {
                    (allows(|n| n.allow_formulas_in_body), refusal("body", "allow_formulas_in_body"))
                }
                InputTarget::Parameter(ParamLocation::Header) => {
                    (allows(|n| n.allow_formulas_in_header), refusal("header", "allow_formulas_in_header"))
                }
                InputTarget::Parameter(_) => {
                    (false, "credentials cannot be sent in a URL; they would be logged by every proxy".into())
                }
            };
            let resolver_site = if allowed { credential } else { None };
            let compiled = {
                let mut resolver_refusal = None;
                if !allowed {
                    resolver_refusal = Some(refused);
                }
                self.input_value(&input_path, value, context, resolver_site, resolver_refusal)
            };
            let Some((value, credential_parameters)) = compiled else { continue };
            if let Some(problem) =
                self.input_type_problem(model, operation, name, &target, &shape, &value, context)
            {
                self.value_error(&input_path, codes::HF028, problem, None);
                continue;
            }
            inputs.push(ActionInput { name: name.clone(), target, value, credential_parameters, shape });
        }
        let mut outputs = Vec::new();
        for (output, variable) in &def.outputs {
            let output_path = path.key("outputs").key(output);
            let known = ["responseCode", "responseBody"];
            let Some(output) = known.iter().find(|k| k.eq_ignore_ascii_case(output)) else {
                let hint = did_you_mean(output, known)
                    .unwrap_or_else(|| "outputs are responseCode and responseBody".into());
                self.error(
                    &output_path,
                    codes::HF018,
                    format!("action {reference} has no output `{output}`"),
                    Some(hint),
                );
                continue;
            };
            let wanted = if *output == "responseCode" { ExprType::Number } else { ExprType::Text };
            match context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(variable)) {
                Some(index)
                    if context.variables[index].ty == VariableType::Scalar(wanted)
                        && !context.variables[index].collection =>
                {
                    outputs.push((output.to_string(), index))
                }
                Some(_) => self.value_error(
                    &output_path,
                    codes::HF019,
                    format!(
                        "output {output} is {wanted}, but variable `{variable}` is not a {wanted} variable"
                    ),
                    Some(format!("declare `{variable}` with `type: {wanted}`")),
                ),
                None if context.resources.kind_of(variable).is_some() => {
                    let (message, hint) =
                        resources::read_only(context.resources, variable).unwrap_or_default();
                    self.value_error(&output_path, codes::HF043, message, Some(hint));
                }
                None => {
                    let hint = did_you_mean(variable, context.variables.iter().map(|v| v.name.as_str()));
                    self.value_error(
                        &output_path,
                        codes::HF019,
                        format!("unknown variable `{variable}`"),
                        hint,
                    );
                }
            }
        }
        Some(ActionElement {
            service: service_name.to_string(),
            operation: operation_name.to_string(),
            named_credential: model.named_credential.clone(),
            external_credential: external_name,
            provider: service.def.provider,
            method: operation.method,
            path: operation.path.clone(),
            inputs,
            outputs,
            responses: operation.responses.iter().map(|r| r.status.clone()).collect(),
            body_encoding: operation.body.as_ref().map_or(BodyEncoding::Json, |b| b.encoding),
            retry: self.retry_policy(service.def.provider, def, path),
        })
    }

    /// The provider's retry defaults with the element's `retry` settings over them.
    fn retry_policy(&mut self, provider: Provider, def: &ElementDef, path: &YamlPath) -> RetryPolicy {
        let mut policy = provider.default_retry();
        let Some(retry) = &def.retry else { return policy };
        let path = path.key("retry");
        if let Some(attempts) = retry.max_attempts {
            if attempts == 0 {
                self.value_error(
                    &path.key("max_attempts"),
                    codes::HF030,
                    "max_attempts counts the first attempt too, so it cannot be 0",
                    Some("write 1 to turn retries off".into()),
                );
            }
            policy.max_attempts = attempts.max(1);
        }
        if let Some(seconds) = retry.max_seconds {
            policy.max_elapsed = std::time::Duration::from_secs(seconds);
        }
        if let Some(ms) = retry.base_delay_ms {
            policy.base_delay = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = retry.max_delay_ms {
            policy.max_delay = std::time::Duration::from_millis(ms);
        }
        if policy.base_delay > policy.max_delay {
            self.value_error(
                &path,
                codes::HF030,
                format!(
                    "base_delay_ms ({} ms) is longer than max_delay_ms ({} ms)",
                    policy.base_delay.as_millis(),
                    policy.max_delay.as_millis()
                ),
                Some("make base_delay_ms at most max_delay_ms".into()),
            );
        }
        policy
    }

    fn input_value(
        &mut self,
        path: &YamlPath,
        value: &Json,
        context: &FlowContext<'_>,
        credential: Option<CredentialSite<'_>>,
        refusal: Option<String>,
    ) -> Option<(ValueExpr, Vec<String>)> {
        let expr = if let Some(refusal) = refusal {
            // The same compile as value_expr, with the reason $Credential is refused here.
            let resolver = SiteResolver {
                table: &self.table,
                context: Some(context),
                credential: None,
                credential_refusal: Some(refusal),
            };
            match value {
                Json::String(text) if text.contains("{!") && whole_variable(text, context).is_none() => {
                    match Template::compile(text, &resolver) {
                        Ok(template) => match template.as_single_reference() {
                            Some(id) => ValueExpr::Reference(id),
                            None => ValueExpr::Template(template),
                        },
                        Err(error) => {
                            let diagnostic = self.expr_error(path, &error);
                            self.diagnostics.push(diagnostic);
                            return None;
                        }
                    }
                }
                _ => self.value_expr(path, value, context, None)?,
            }
        } else {
            self.value_expr(path, value, context, credential)?
        };
        let mut parameters = Vec::new();
        credential_parameters(&expr, &self.table.slots.borrow(), &mut parameters);
        Some((expr, parameters))
    }

    /// Why a value cannot go into an action input: a body variable of another type, or a literal that is
    /// not one of a field's enum values.
    #[allow(clippy::too_many_arguments)]
    fn input_type_problem(
        &self,
        model: &herald_openapi::Service,
        operation: &Operation,
        name: &str,
        target: &InputTarget,
        shape: &Shape,
        value: &ValueExpr,
        context: &FlowContext<'_>,
    ) -> Option<String> {
        match (target, shape, value) {
            (InputTarget::Body, Shape::Object { type_name }, ValueExpr::WholeVariable(index)) => {
                let variable = &context.variables[*index];
                match &variable.ty {
                    VariableType::Object(found) if found == type_name && !variable.collection => None,
                    _ => Some(format!(
                        "`{name}` takes a {type_name}; variable `{}` is not one (declare it with `type: {type_name}`)",
                        variable.name
                    )),
                }
            }
            (InputTarget::BodyField, _, ValueExpr::Literal(Json::String(literal))) => {
                let Shape::Object { type_name } = &operation.body.as_ref()?.shape else { return None };
                let info = herald_openapi::field_path(model, type_name, &[name]).ok()?;
                herald_openapi::check_enum(&info, literal).problem(name, literal)
            }
            _ => None,
        }
    }

    /// The `fields:` of a Create or Update Records element, each checked against `object`'s fields and
    /// compiled; also whether every one was accepted. A field the object does not have, or a literal
    /// that does not fit its field, is reported with the element kind's codes.
    fn record_fields(
        &mut self,
        object: &str,
        object_def: &herald_project::ObjectDef,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
        reporting: RecordFieldCodes,
    ) -> (Vec<(String, ValueExpr)>, bool) {
        let mut fields = Vec::new();
        let mut ok = true;
        for (field, value) in &def.fields {
            let field_path = path.key("fields").key(field);
            let Some((name, declared)) =
                object_def.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(field))
            else {
                let is_standard = STANDARD_FIELDS.iter().any(|(s, _)| s.eq_ignore_ascii_case(field));
                let hint = if is_standard {
                    Some(format!("`{field}` is set by herald"))
                } else {
                    did_you_mean(field, object_def.fields.keys().map(String::as_str)).or_else(|| {
                        reporting.hint_declaring.then(|| format!("declare it in objects/{object}.yaml"))
                    })
                };
                self.error(
                    &field_path,
                    reporting.unknown,
                    format!("{object} has no writable field `{field}`"),
                    hint,
                );
                ok = false;
                continue;
            };
            let Some(expr) = self.value_expr(&field_path, value, context, None) else {
                ok = false;
                continue;
            };
            if let ValueExpr::Literal(literal) = &expr
                && let Err(error) = Value::from_json(literal, expr_type(declared.field_type))
            {
                self.value_error(
                    &field_path,
                    reporting.mistyped,
                    format!("{object}.{name} is a {} field: {error}", declared.field_type.name()),
                    None,
                );
                ok = false;
                continue;
            }
            fields.push((name.clone(), expr));
        }
        (fields, ok)
    }

    fn create(
        &mut self,
        object: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<CreateElement> {
        let Some(object_def) = self.project.objects.get(object) else {
            let hint = did_you_mean(object, self.project.objects.keys().map(String::as_str))
                .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
            self.value_error(&path.key("create"), codes::HF001, format!("unknown object `{object}`"), hint);
            return None;
        };
        let reporting =
            RecordFieldCodes { unknown: codes::HF020, mistyped: codes::HF021, hint_declaring: false };
        let (fields, _) = self.record_fields(object, &object_def.def, def, path, context, reporting);
        for (name, declared) in &object_def.def.fields {
            if declared.required && declared.default.is_none() && !fields.iter().any(|(f, _)| f == name) {
                self.error(
                    &path.key("fields"),
                    codes::HF022,
                    format!("{object} requires `{name}`"),
                    Some(format!("add `{name}:` under fields")),
                );
            }
        }
        let store_id_in = match &def.store_id_in {
            None => None,
            Some(variable) => {
                match context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(variable)) {
                    Some(index) if context.variables[index].ty == VariableType::Scalar(ExprType::Text) => {
                        Some(index)
                    }
                    Some(_) => {
                        self.value_error(
                            &path.key("store_id_in"),
                            codes::HF019,
                            format!("`{variable}` must be a Text variable to hold an id"),
                            None,
                        );
                        None
                    }
                    None if context.resources.kind_of(variable).is_some() => {
                        let (message, hint) =
                            resources::read_only(context.resources, variable).unwrap_or_default();
                        self.value_error(&path.key("store_id_in"), codes::HF043, message, Some(hint));
                        None
                    }
                    None => {
                        let hint = did_you_mean(variable, context.variables.iter().map(|v| v.name.as_str()));
                        self.value_error(
                            &path.key("store_id_in"),
                            codes::HF019,
                            format!("unknown variable `{variable}`"),
                            hint,
                        );
                        None
                    }
                }
            }
        };
        Some(CreateElement { object: object.to_string(), fields, store_id_in })
    }

    fn assign(
        &mut self,
        items: &[IndexMap<String, Json>],
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<Vec<AssignItem>> {
        let mut compiled = Vec::new();
        for (position, item) in items.iter().enumerate() {
            let item_path = path.index(position);
            if item.len() != 1 {
                self.error(
                    &item_path,
                    codes::HF023,
                    "each assignment item is one `target: value` pair",
                    Some("split it into separate `- target: value` items".into()),
                );
                continue;
            }
            let Some((target, value)) = item.iter().next() else { continue };
            let target_path = item_path.key(target);
            let mut segments = target.split('.');
            let head = segments.next().unwrap_or_default();
            let rest: Vec<&str> = segments.collect();
            let Some(variable) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(head))
            else {
                if let Some((message, hint)) = resources::read_only(context.resources, head) {
                    self.error(&target_path, codes::HF043, message, Some(hint));
                    continue;
                }
                let hint = did_you_mean(head, context.variables.iter().map(|v| v.name.as_str()))
                    .or_else(|| Some("declare it under `variables:`".into()));
                self.error(&target_path, codes::HF019, format!("unknown variable `{head}`"), hint);
                continue;
            };
            let (target_type, canonical, field) =
                match walk_type(self.project, &context.variables[variable], &rest) {
                    Ok(found) => found,
                    Err(message) => {
                        let (code, message) = records::split_code(message, codes::HF024);
                        self.error(&target_path, code, message, None);
                        continue;
                    }
                };
            let (operator, value) = match operator_of(value) {
                Ok(found) => found,
                Err(message) => {
                    self.value_error(
                        &target_path,
                        codes::HF025,
                        message,
                        Some(
                            "operators: equals, add, subtract, add_at_start, remove_all, assign_count".into(),
                        ),
                    );
                    continue;
                }
            };
            let Some(expr) = self.value_expr(&target_path, value, context, None) else { continue };
            if let (Some(field), ValueExpr::Literal(Json::String(literal))) = (&field, &expr)
                && let Some(problem) = herald_openapi::check_enum(field, literal).problem(target, literal)
            {
                self.value_error(&target_path, codes::HF027, problem, None);
                continue;
            }
            if let Some(message) = records::record_assignment_problem(
                &context.variables[variable],
                &rest,
                operator,
                &expr,
                context,
            ) {
                self.value_error(&target_path, codes::HF035, format!("`{target}`: {message}"), None);
                continue;
            }
            let problem =
                check_assignment(&target_type, operator, &expr, &self.table.slots.borrow(), context);
            if let Some(message) = problem {
                self.value_error(&target_path, codes::HF026, format!("`{target}`: {message}"), None);
                continue;
            }
            compiled.push(AssignItem { variable, path: canonical, operator, value: expr, target_type });
        }
        (compiled.len() == items.len()).then_some(compiled)
    }
}

fn scalar_type(name: &str) -> Option<ExprType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "text" | "string" => ExprType::Text,
        "number" | "currency" | "integer" => ExprType::Number,
        "boolean" => ExprType::Boolean,
        "date" => ExprType::Date,
        "datetime" => ExprType::DateTime,
        "time" => ExprType::Time,
        _ => return None,
    })
}

pub(crate) fn slot_type(slot: &Slot) -> ExprType {
    match slot {
        Slot::Record { ty, .. }
        | Slot::Prior { ty, .. }
        | Slot::Variable { ty, .. }
        | Slot::Output { ty, .. }
        | Slot::Related { ty, .. } => *ty,
        Slot::FaultMessage
        | Slot::InterviewGuid
        | Slot::UserId
        | Slot::UserName
        | Slot::Credential { .. } => ExprType::Text,
        Slot::CurrentDateTime => ExprType::DateTime,
        Slot::CurrentDate => ExprType::Date,
        Slot::Constant(value) => value.type_of(),
        Slot::Formula { ty, .. } => *ty,
        Slot::TextTemplate(_) => ExprType::Text,
    }
}

/// `{!name}` alone, where `name` is an object or collection variable: the value is the whole variable.
fn whole_variable(text: &str, context: &FlowContext<'_>) -> Option<usize> {
    let inner = text.trim().strip_prefix("{!")?.strip_suffix('}')?.trim();
    let index = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(inner))?;
    let variable = &context.variables[index];
    (variable.collection || matches!(variable.ty, VariableType::Object(_) | VariableType::Record(_)))
        .then_some(index)
}

/// The credential parameters a value reads, so a missing one is caught before the request is built.
fn credential_parameters(expr: &ValueExpr, slots: &[Slot], found: &mut Vec<String>) {
    let mut add = |id: &RefId| {
        if let Slot::Credential { parameter } = &slots[id.0 as usize]
            && !found.contains(parameter)
        {
            found.push(parameter.clone());
        }
    };
    match expr {
        ValueExpr::Reference(id) => add(id),
        ValueExpr::Template(template) => template.references().iter().for_each(add),
        ValueExpr::Object(fields) => fields.iter().for_each(|(_, e)| credential_parameters(e, slots, found)),
        ValueExpr::Array(items) => items.iter().for_each(|e| credential_parameters(e, slots, found)),
        ValueExpr::Literal(_) | ValueExpr::WholeVariable(_) | ValueExpr::WholeOutput { .. } => {}
    }
}

fn input_target(
    model: &herald_openapi::Service,
    operation: &Operation,
    name: &str,
) -> Option<(InputTarget, Shape)> {
    if let Some(parameter) = operation.parameters.iter().find(|p| p.name == name) {
        return Some((InputTarget::Parameter(parameter.location), parameter.shape.clone()));
    }
    if let Some(body) = &operation.body
        && body.name == name
    {
        return Some((InputTarget::Body, body.shape.clone()));
    }
    let properties = model.body_properties(operation)?;
    let property = properties.properties.get(name)?;
    Some((InputTarget::BodyField, property.shape.clone()))
}

fn operator_of(value: &Json) -> Result<(AssignOperator, &Json), String> {
    let Json::Object(map) = value else { return Ok((AssignOperator::Equals, value)) };
    if map.len() != 1 {
        return Ok((AssignOperator::Equals, value));
    }
    let Some((key, inner)) = map.iter().next() else { return Ok((AssignOperator::Equals, value)) };
    let normalized: String = key.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
    let operator = match normalized.as_str() {
        "equals" | "assign" => AssignOperator::Equals,
        "add" => AssignOperator::Add,
        "subtract" => AssignOperator::Subtract,
        "addatstart" => AssignOperator::AddAtStart,
        "removeall" => AssignOperator::RemoveAll,
        "assigncount" | "equalscount" => AssignOperator::AssignCount,
        _ => {
            let known = ["equals", "add", "subtract", "add_at_start", "remove_all", "assign_count"];
            return match closest(key, known) {
                Some(near) => Err(format!("unknown assignment operator `{key}`; did you mean `{near}`?")),
                // A one-key mapping that is not an operator is a literal object.
                None => Ok((AssignOperator::Equals, value)),
            };
        }
    };
    Ok((operator, inner))
}

/// Why an assignment cannot work, judged from the declared types.
fn check_assignment(
    target: &TargetType,
    operator: AssignOperator,
    value: &ValueExpr,
    slots: &[Slot],
    context: &FlowContext<'_>,
) -> Option<String> {
    let value_kind = match value {
        ValueExpr::Reference(id) => ValueKind::Scalar(slot_type(&slots[id.0 as usize])),
        ValueExpr::Template(_) => ValueKind::Scalar(ExprType::Text),
        ValueExpr::Literal(Json::Null) => ValueKind::Null,
        ValueExpr::Literal(Json::String(_)) => ValueKind::Scalar(ExprType::Text),
        ValueExpr::Literal(Json::Number(_)) => ValueKind::Scalar(ExprType::Number),
        ValueExpr::Literal(Json::Bool(_)) => ValueKind::Scalar(ExprType::Boolean),
        ValueExpr::Literal(Json::Array(_)) | ValueExpr::Array(_) => ValueKind::List,
        ValueExpr::Literal(Json::Object(_)) | ValueExpr::Object(_) => ValueKind::Object,
        ValueExpr::WholeVariable(index) => {
            if context.variables[*index].collection {
                ValueKind::List
            } else {
                ValueKind::Object
            }
        }
        ValueExpr::WholeOutput { name, .. } if name == collections::RECORDS => ValueKind::List,
        ValueExpr::WholeOutput { .. } => ValueKind::Object,
    };
    let is_empty_string = matches!(value, ValueExpr::Reference(id) if matches!(&slots[id.0 as usize], Slot::Constant(v) if v.is_blank()));
    match (target, operator) {
        (TargetType::Collection, AssignOperator::Equals) if is_empty_string => None,
        (TargetType::Collection, AssignOperator::Equals) if value_kind != ValueKind::List => {
            Some("a collection takes a collection; use `{add: ...}` to append one item, or `{!$GlobalConstant.EmptyString}` to clear it".into())
        }
        (TargetType::Collection, AssignOperator::Add | AssignOperator::AddAtStart | AssignOperator::RemoveAll) => None,
        (TargetType::Collection, AssignOperator::Subtract) => Some("subtract does not apply to a collection; use remove_all".into()),
        (TargetType::Scalar(ExprType::Number), AssignOperator::AssignCount) => None,
        (_, AssignOperator::AssignCount) => Some("assign_count needs a Number target".into()),
        (TargetType::Object, AssignOperator::Equals) if matches!(value_kind, ValueKind::Object | ValueKind::Null) => None,
        (TargetType::Object, _) => Some("an object takes an object variable, e.g. `{!otherVariable}`".into()),
        (TargetType::Scalar(ty), AssignOperator::Equals) => match value_kind {
            ValueKind::Null => None,
            ValueKind::Scalar(found) if found == *ty || *ty == ExprType::Text => None,
            ValueKind::Scalar(found) => Some(format!("a {ty} target cannot take a {found} value")),
            _ => Some(format!("a {ty} target takes a single value")),
        },
        (TargetType::Scalar(ty), AssignOperator::Add | AssignOperator::Subtract) => match (ty, value_kind) {
            (ExprType::Number, ValueKind::Scalar(ExprType::Number)) => None,
            (ExprType::Text, ValueKind::Scalar(_)) if operator == AssignOperator::Add => None,
            (ExprType::Date | ExprType::DateTime, ValueKind::Scalar(ExprType::Number)) => None,
            _ => Some(format!("{operator:?} does not apply to a {ty} target with this value")),
        },
        (TargetType::Scalar(ty), _) => Some(format!("{operator:?} does not apply to a {ty} target")),
        (TargetType::Any, _) => None,
        (TargetType::Collection, AssignOperator::Equals) => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueKind {
    Scalar(ExprType),
    Null,
    List,
    Object,
}

/// How [`FlowCompiler::record_fields`] reports for one element kind: the code of a field the object
/// does not have, the code of a literal of the wrong type, and whether a field with no near name gets
/// the hint to declare it.
#[derive(Clone, Copy)]
struct RecordFieldCodes {
    unknown: Code,
    mistyped: Code,
    hint_declaring: bool,
}
