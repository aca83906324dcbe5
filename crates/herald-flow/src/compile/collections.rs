//! Get Records and Loop: what these elements hold, how a flow refers to it, and their checks.
//! A Get Records element's records are `{!Get_X}` (all) or `{!Get_X.Field}` (the first); a loop's
//! current item is `{!Loop_X}` or `{!Loop_X.Field}`, as in Salesforce since API version 57.

use super::*;
use herald_codes as codes;
use herald_project::{FieldType, HowMany, LoopDirection, SortOrder};

/// Output names in a run's state.
pub(crate) const RECORDS: &str = "records";
pub(crate) const RECORD: &str = "record";
pub(crate) const ITEM: &str = "item";

/// What a Get Records element stores.
#[derive(Clone, Debug)]
pub(super) struct StoredRecords {
    pub object: String,
    pub first_only: bool,
    /// The fields kept of each record, `Id` first, with their types.
    pub fields: Vec<(String, FieldType)>,
}

/// What a loop's current item is.
#[derive(Clone, Debug)]
pub(super) enum ItemShape {
    Scalar(ExprType),
    /// An item of a generated service type.
    Object(String),
    Record(StoredRecords),
}

/// `{!name}` alone: the name.
fn reference_name(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{!")?.strip_suffix('}')?.trim();
    (!inner.is_empty() && !inner.contains(['.', '{', '}', '!'])).then_some(inner)
}

/// The Get Records elements of a flow and what each stores (fields it cannot find are left out here
/// and reported when the element compiles).
pub(super) fn stored_records(project: &Project, def: &FlowDef) -> HashMap<String, StoredRecords> {
    let mut found = HashMap::new();
    for (name, element) in &def.elements {
        let Some(object) = &element.get else { continue };
        let Some(all_fields) = object_fields(project, object) else { continue };
        let fields = match &element.store_fields {
            None => all_fields,
            Some(names) => {
                let mut kept: Vec<(String, FieldType)> = Vec::new();
                for wanted in std::iter::once("Id").chain(names.iter().map(String::as_str)) {
                    if let Some(field) = find_field(&all_fields, wanted)
                        && !kept.iter().any(|(k, _)| *k == field.0)
                    {
                        kept.push(field);
                    }
                }
                kept
            }
        };
        let first_only = element.how_many.unwrap_or_default() == HowMany::First;
        found.insert(name.clone(), StoredRecords { object: object.clone(), first_only, fields });
    }
    found
}

/// What a collection reference stands for: a collection variable, or a Get Records element that stores
/// all its records.
fn collection_of(text: &str, context: &FlowContext<'_>) -> Result<(CollectionRef, ItemShape), String> {
    let Some(name) = reference_name(text) else {
        return Err(format!(
            "`{text}` is not one reference; write the collection as `{{!name}}`, e.g. `{{!Get_Members}}`"
        ));
    };
    if let Some(index) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(name)) {
        let variable = &context.variables[index];
        if !variable.collection {
            return Err(format!(
                "variable `{}` is not a collection; declare it with `collection: true`",
                variable.name
            ));
        }
        let item = match &variable.ty {
            VariableType::Scalar(ty) => ItemShape::Scalar(*ty),
            VariableType::Object(type_name) => ItemShape::Object(type_name.clone()),
            VariableType::Record(object) => ItemShape::Record(StoredRecords {
                object: object.clone(),
                first_only: false,
                fields: object_fields(context.project, object).unwrap_or_default(),
            }),
        };
        return Ok((CollectionRef::Variable(index), item));
    }
    if let Some((element, stored)) = context.gets.iter().find(|(e, _)| e.eq_ignore_ascii_case(name)) {
        if stored.first_only {
            return Err(format!(
                "`{element}` stores only the first record; set `how_many: all` on it to loop over its records"
            ));
        }
        let source = CollectionRef::Output { element: element.clone(), name: RECORDS.into() };
        return Ok((source, ItemShape::Record(stored.clone())));
    }
    let candidates: Vec<&str> = context
        .variables
        .iter()
        .filter(|v| v.collection)
        .map(|v| v.name.as_str())
        .chain(context.gets.keys().map(String::as_str))
        .collect();
    let hint = did_you_mean(name, candidates.iter().copied()).unwrap_or_else(|| {
        "loop over a collection variable or a Get Records element with `how_many: all`".into()
    });
    Err(format!("`{name}` is not a collection; {hint}"))
}

/// The loops of a flow whose collection resolves, with their item's shape.
pub(super) fn loop_items(context: &FlowContext<'_>, def: &FlowDef) -> HashMap<String, ItemShape> {
    def.elements
        .iter()
        .filter_map(|(name, element)| {
            let (_, item) = collection_of(element.loop_over.as_deref()?, context).ok()?;
            Some((name.clone(), item))
        })
        .collect()
}

/// `{!Get_X}` or `{!Loop_X}` alone, where it stands for records or a record: the whole output.
pub(super) fn whole_output(text: &str, context: &FlowContext<'_>) -> Option<CollectionRef> {
    let name = reference_name(text)?;
    if let Some((element, stored)) = context.gets.iter().find(|(e, _)| e.eq_ignore_ascii_case(name)) {
        let output = if stored.first_only { RECORD } else { RECORDS };
        return Some(CollectionRef::Output { element: element.clone(), name: output.into() });
    }
    let (element, item) = context.loops.iter().find(|(e, _)| e.eq_ignore_ascii_case(name))?;
    match item {
        ItemShape::Scalar(_) => None,
        ItemShape::Object(_) | ItemShape::Record(_) => {
            Some(CollectionRef::Output { element: element.clone(), name: ITEM.into() })
        }
    }
}

fn record_field_slot(
    project: &Project,
    element: &str,
    output: &str,
    stored: &StoredRecords,
    rest: &[&str],
) -> Result<(Slot, ExprType), String> {
    match rest {
        [field] => {
            let Some((field, field_type)) = find_field(&stored.fields, field) else {
                let stored_names: Vec<&str> = stored.fields.iter().map(|(n, _)| n.as_str()).collect();
                let hint = did_you_mean(field, stored_names.iter().copied())
                    .map(|hint| format!("; {hint}"))
                    .unwrap_or_default();
                return Err(format!(
                    "`{element}` holds {} records with the fields {}; `{field}` is not one of them{hint} (add it to `store_fields`, or declare it in objects/{}.yaml)",
                    stored.object,
                    stored_names.join(", "),
                    stored.object
                ));
            };
            let ty = expr_type(field_type);
            Ok((
                Slot::Output { element: element.to_string(), name: output.into(), path: vec![field], ty },
                ty,
            ))
        }
        [] => Err(format!("`{element}` is a {} record; name a field, e.g. `{element}.Id`", stored.object)),
        _ => {
            let (hops, field, ty) =
                super::records::traverse(project, &stored.object, &stored.fields, element, rest)?;
            let base = RelatedBase::Output { element: element.to_string(), name: output.into() };
            Ok((Slot::Related { base, hops, field, ty }, ty))
        }
    }
}

/// A reference that starts with a Get Records element.
pub(super) fn get_slot(
    project: &Project,
    element: &str,
    stored: &StoredRecords,
    rest: &[&str],
) -> Result<(Slot, ExprType), String> {
    if !stored.first_only {
        return Err(format!(
            "`{element}` holds a collection of {} records (`how_many: all`): loop over it with a Loop element and read the loop's item, or set `how_many: first`",
            stored.object
        ));
    }
    record_field_slot(project, element, RECORD, stored, rest)
}

/// A reference that starts with a Loop element: its current item.
pub(super) fn loop_slot(
    context: &FlowContext<'_>,
    element: &str,
    item: &ItemShape,
    rest: &[&str],
) -> Result<(Slot, ExprType), String> {
    match item {
        ItemShape::Record(stored) => record_field_slot(context.project, element, ITEM, stored, rest),
        ItemShape::Scalar(ty) if rest.is_empty() => Ok((
            Slot::Output { element: element.to_string(), name: ITEM.into(), path: Vec::new(), ty: *ty },
            *ty,
        )),
        ItemShape::Scalar(ty) => {
            Err(format!("the items of `{element}` are {ty} values; they have no field `{}`", rest[0]))
        }
        ItemShape::Object(type_name) => {
            if rest.is_empty() {
                return Err(format!(
                    "the items of `{element}` are {type_name} objects; name a field, e.g. `{element}.field`"
                ));
            }
            let Some(service) =
                context.project.services.values().find(|s| s.def.model.types.contains_key(type_name))
            else {
                return Err(format!("unknown type `{type_name}`"));
            };
            let info = herald_openapi::field_path(&service.def.model, type_name, rest)
                .map_err(|error| format!("`{element}.{}`: {error}", rest.join(".")))?;
            match &info.shape {
                Shape::Object { .. } | Shape::List { .. } | Shape::Map { .. } | Shape::Any => {
                    Err(format!("`{element}.{}` is not a single value", rest.join(".")))
                }
                scalar => {
                    let ty = shape_type(scalar);
                    let path = info.canonical_path.clone();
                    Ok((Slot::Output { element: element.to_string(), name: ITEM.into(), path, ty }, ty))
                }
            }
        }
    }
}

impl FlowCompiler<'_> {
    pub(super) fn get_records(
        &mut self,
        object: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<GetElement> {
        let Some(fields) = object_fields(self.project, object) else {
            let hint = did_you_mean(object, self.project.objects.keys().map(String::as_str))
                .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
            self.value_error(&path.key("get"), codes::HF001, format!("unknown object `{object}`"), hint);
            return None;
        };
        let mut ok = true;
        let field_named = |compiler: &mut Self, ok: &mut bool, at: &YamlPath, name: &str| {
            let found = find_field(&fields, name);
            if found.is_none() {
                let hint = did_you_mean(name, fields.iter().map(|(n, _)| n.as_str()))
                    .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
                compiler.value_error(at, codes::HF031, format!("{object} has no field `{name}`"), hint);
                *ok = false;
            }
            found
        };
        let mut stored = None;
        if let Some(names) = &def.store_fields {
            let mut kept = vec!["Id".to_string()];
            for (position, name) in names.iter().enumerate() {
                if let Some((field, _)) =
                    field_named(self, &mut ok, &path.key("store_fields").index(position), name)
                    && !kept.contains(&field)
                {
                    kept.push(field);
                }
            }
            stored = Some(kept);
        }
        let sort = match &def.sort_by {
            Some(name) => {
                field_named(self, &mut ok, &path.key("sort_by"), name).map(|(field, field_type)| {
                    (field, expr_type(field_type), def.sort_order == Some(SortOrder::Descending))
                })
            }
            None => {
                if def.sort_order.is_some() {
                    self.error(
                        &path.key("sort_order"),
                        codes::HF031,
                        "`sort_order` without `sort_by`",
                        Some("name the field to sort by in `sort_by`".into()),
                    );
                    ok = false;
                }
                None
            }
        };
        let (filters, logic) = match self.record_filters(object, def, path, context) {
            Some(found) => found,
            None => {
                ok = false;
                (Vec::new(), Logic::parse(None, 0).ok()?)
            }
        };
        let store_in = self.store_in(object, def, path, context, &mut ok);
        ok.then(|| GetElement {
            object: object.to_string(),
            filters,
            logic,
            sort,
            first_only: def.how_many.unwrap_or_default() == HowMany::First,
            fields: stored,
            store_in,
        })
    }

    /// The conditions of a Get, Update or Delete Records element on the fields of `object`.
    pub(super) fn record_filters(
        &mut self,
        object: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<(Vec<FilterItem>, Logic)> {
        let fields = object_fields(self.project, object)?;
        let mut ok = true;
        let field_named = |compiler: &mut Self, ok: &mut bool, at: &YamlPath, name: &str| {
            let found = find_field(&fields, name);
            if found.is_none() {
                let hint = did_you_mean(name, fields.iter().map(|(n, _)| n.as_str()))
                    .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
                compiler.value_error(at, codes::HF031, format!("{object} has no field `{name}`"), hint);
                *ok = false;
            }
            found
        };
        let logic = self.logic(path, def.logic.as_deref(), def.conditions.len())?;
        let mut filters = Vec::new();
        for (position, condition) in def.conditions.iter().enumerate() {
            let item_path = path.key("conditions").index(position);
            let Some(name) = &condition.field else {
                self.error(
                    &item_path,
                    codes::HF010,
                    format!("a Get Records condition names a field of {object} with `field`"),
                    Some("write e.g. `{field: Phone, operator: IsNull, right: false}`".into()),
                );
                ok = false;
                continue;
            };
            if condition.left.is_some() {
                self.error(
                    &item_path.key("left"),
                    codes::HF010,
                    "a condition needs exactly one of `field` or `left`",
                    None,
                );
                ok = false;
                continue;
            }
            let Some((field, field_type)) = field_named(self, &mut ok, &item_path.key("field"), name) else {
                continue;
            };
            let ty = expr_type(field_type);
            let operator = condition.operator;
            if operator == Operator::IsChanged {
                self.value_error(
                    &item_path.key("operator"),
                    codes::HF012,
                    "IsChanged compares the triggering record with its prior values; it does not apply to Get Records",
                    None,
                );
                ok = false;
                continue;
            }
            // A literal value is checked against the field now; text may hold merge fields, checked at
            // run time. `IsNull`/`IsBlank` take true or false, checked by `condition_right`.
            let compared = !matches!(operator, Operator::IsNull | Operator::IsBlank);
            if let Some(value) = condition.right.as_ref().filter(|v| compared && !v.is_string())
                && let Err(error) = Value::from_json(value, ty)
            {
                self.value_error(
                    &item_path.key("right"),
                    codes::HF031,
                    format!("`right` does not fit {object}.{field} ({ty}): {error}"),
                    None,
                );
                ok = false;
                continue;
            }
            let Some(right) = self.condition_right(&item_path, condition.right.as_ref(), operator, context)
            else {
                ok = false;
                continue;
            };
            filters.push(FilterItem { field, ty, operator, right });
        }
        ok.then_some((filters, logic))
    }

    /// Get Records' `store_in`: a record variable of the same object, a collection when every record
    /// is kept.
    fn store_in(
        &mut self,
        object: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
        ok: &mut bool,
    ) -> Option<usize> {
        let name = def.store_in.as_ref()?;
        let at = path.key("store_in");
        let all = def.how_many.unwrap_or_default() == HowMany::All;
        let wanted =
            if all { format!("`type: {object}, collection: true`") } else { format!("`type: {object}`") };
        let Some(index) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(name)) else {
            let hint = did_you_mean(name, context.variables.iter().map(|v| v.name.as_str()))
                .unwrap_or_else(|| format!("declare it under `variables:` with {wanted}"));
            self.value_error(&at, codes::HF035, format!("unknown variable `{name}`"), Some(hint));
            *ok = false;
            return None;
        };
        let variable = &context.variables[index];
        let fits = matches!(&variable.ty, VariableType::Record(held) if held == object)
            && variable.collection == all;
        if !fits {
            let how = if all { "all the records (`how_many: all`)" } else { "the first record" };
            self.value_error(
                &at,
                codes::HF035,
                format!(
                    "`{}` is a {} variable; it cannot hold {how} of {object}",
                    variable.name,
                    variable.type_name()
                ),
                Some(format!("declare `{}` with {wanted}", variable.name)),
            );
            *ok = false;
            return None;
        }
        Some(index)
    }

    pub(super) fn loop_element(
        &mut self,
        collection: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
        index: &HashMap<String, usize>,
    ) -> Option<LoopElement> {
        let collection = match collection_of(collection, context) {
            Ok((collection, _)) => Some(collection),
            Err(message) => {
                self.value_error(&path.key("loop"), codes::HF032, message, None);
                None
            }
        };
        let each = match &def.each {
            Some(name) => self.target(&path.key("each"), name, index),
            None => {
                self.error(
                    path,
                    codes::HF032,
                    "a loop needs `each`: the element run for each item",
                    Some("add `each: <element>`, and connect the last element of the loop body back to this loop".into()),
                );
                None
            }
        };
        let after = self.optional_target(&path.key("after"), def.after.as_ref(), index);
        Some(LoopElement {
            collection: collection?,
            each: each?,
            after,
            reverse: def.direction == Some(LoopDirection::LastToFirst),
        })
    }
}
