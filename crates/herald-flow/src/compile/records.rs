//! Record elements and record references: Update Records and Delete Records, record variables
//! (`type: Lead`, with `collection: true` for a record collection), and merge fields that traverse
//! lookup fields (`{!$Record.Owner.Name}`). Everything a record reference names is checked against
//! `objects/*.yaml` here, so a misspelt field or relationship is found when the flow loads.

use super::*;
use herald_codes as codes;

/// How many relationships one merge field may traverse, as SOQL allows from child to parent.
pub(crate) const MAX_LEVELS: usize = 5;

/// The most records one Update or Delete Records element may change: Salesforce's DML row limit of
/// one transaction.
pub(crate) const MAX_ROWS: u64 = 10_000;

/// A resolver message that carries its own code instead of the formula's HX004 (see
/// [`coded_message`]): traversal problems are HF036, record variable problems HF035.
const TRAVERSAL_MARK: char = '\u{1}';
const RECORD_VARIABLE_MARK: char = '\u{2}';

pub(super) fn traversal_error(message: String) -> String {
    format!("{TRAVERSAL_MARK}{message}")
}

pub(super) fn record_variable_error(message: String) -> String {
    format!("{RECORD_VARIABLE_MARK}{message}")
}

/// The code a resolver message asks for, and the message without its mark.
pub(super) fn coded_message(message: &str) -> Option<(Code, String)> {
    let mut chars = message.chars();
    match chars.next()? {
        TRAVERSAL_MARK => Some((codes::HF036, chars.as_str().to_string())),
        RECORD_VARIABLE_MARK => Some((codes::HF035, chars.as_str().to_string())),
        _ => None,
    }
}

/// Strips a mark from a message shown as it is (an Assignment target), with the code it asks for.
pub(super) fn split_code(message: String, default: Code) -> (Code, String) {
    coded_message(&message).unwrap_or((default, message))
}

/// The object a variable's type names, when it is an object of the project (`type: Lead`).
pub(super) fn record_object(project: &Project, type_name: &str) -> Option<String> {
    project.objects.keys().find(|name| name.eq_ignore_ascii_case(type_name)).cloned()
}

/// `rest` after a record of `object` (`[Owner, Name]`, `[Account__r, Owner, Name]`): the lookups
/// walked and the field read at the end. `available` are the fields the starting record holds (a Get
/// Records element keeps only its `store_fields`).
pub(super) fn traverse(
    project: &Project,
    object: &str,
    available: &[(String, FieldType)],
    shown: &str,
    rest: &[&str],
) -> Result<(Vec<Hop>, String, ExprType), String> {
    let Some((last, relationships)) = rest.split_last() else {
        return Err(traversal_error(format!("`{shown}`: name a field")));
    };
    if relationships.len() > MAX_LEVELS {
        return Err(traversal_error(format!(
            "`{shown}.{}` traverses {} relationships; a merge field may traverse at most {MAX_LEVELS} (store the record at level {MAX_LEVELS} in a record variable with Get Records, and traverse from it)",
            rest.join("."),
            relationships.len()
        )));
    }
    let mut current = object.to_string();
    let mut hops = Vec::new();
    for (level, relationship) in relationships.iter().enumerate() {
        let Some(def) = project.objects.get(&current).map(|o| &o.def) else {
            return Err(traversal_error(format!("unknown object `{current}`")));
        };
        let found = def.fields.iter().find(|(name, field)| {
            field.relationship_name(name).is_some_and(|r| r.eq_ignore_ascii_case(relationship))
        });
        let Some((field_name, field)) = found else {
            let relationships: Vec<String> =
                def.fields.iter().filter_map(|(name, field)| field.relationship_name(name)).collect();
            let plain = def.fields.keys().find(|name| name.eq_ignore_ascii_case(relationship));
            let hint = match plain.and_then(|name| def.fields[name].relationship_name(name)) {
                Some(by) => format!("`{relationship}` is the lookup field itself; traverse it as `{by}`"),
                None => did_you_mean(relationship, relationships.iter().map(String::as_str)).unwrap_or_else(
                    || {
                        if relationships.is_empty() {
                            format!(
                                "{current} has no lookup fields; declare one in objects/{current}.yaml, e.g. `OwnerId: {{type: lookup, to: User}}`"
                            )
                        } else {
                            format!("its relationships are: {}", relationships.join(", "))
                        }
                    },
                ),
            };
            return Err(traversal_error(format!("{current} has no relationship `{relationship}`; {hint}")));
        };
        if level == 0 && !available.iter().any(|(name, _)| name == field_name) {
            return Err(traversal_error(format!(
                "`{shown}` does not hold {current}.{field_name}, which `{relationship}` reads; add `{field_name}` to its `store_fields`"
            )));
        }
        let Some(to) = &field.to else {
            return Err(traversal_error(format!("{current}.{field_name} names no object in `to`")));
        };
        hops.push(Hop { field: field_name.clone(), object: to.clone() });
        current = to.clone();
    }
    let Some(fields) = object_fields(project, &current) else {
        return Err(traversal_error(format!("unknown object `{current}`")));
    };
    let Some((field, field_type)) = find_field(&fields, last) else {
        let hint = did_you_mean(last, fields.iter().map(|(n, _)| n.as_str()))
            .unwrap_or_else(|| format!("declare it in objects/{current}.yaml"));
        return Err(traversal_error(format!(
            "`{shown}.{}`: {current} has no field `{last}`; {hint}",
            rest.join(".")
        )));
    };
    Ok((hops, field, expr_type(field_type)))
}

/// A reference into a record variable: `{!lead.Phone}`, or through its lookups `{!lead.Owner.Name}`.
pub(super) fn record_variable_slot(
    context: &FlowContext<'_>,
    index: usize,
    object: &str,
    path: &[&str],
) -> Result<(Slot, ExprType), String> {
    let variable = &context.variables[index];
    let fields = object_fields(context.project, object).unwrap_or_default();
    match path {
        [] => Err(record_variable_error(format!(
            "`{}` is a {object} record; name one of its fields, e.g. `{}.Id`",
            variable.name, variable.name
        ))),
        [field] => {
            let Some((field, field_type)) = find_field(&fields, field) else {
                let hint = did_you_mean(field, fields.iter().map(|(n, _)| n.as_str()))
                    .unwrap_or_else(|| format!("declare it in objects/{object}.yaml"));
                return Err(record_variable_error(format!(
                    "`{}` is a {object} record, and {object} has no field `{field}`; {hint}",
                    variable.name
                )));
            };
            let ty = expr_type(field_type);
            Ok((Slot::Variable { index, path: vec![field], ty }, ty))
        }
        _ => {
            let (hops, field, ty) = traverse(context.project, object, &fields, &variable.name, path)?;
            Ok((Slot::Related { base: RelatedBase::Variable(index), hops, field, ty }, ty))
        }
    }
}

/// An Assignment target inside a record variable: one field of the record itself.
pub(super) fn record_target(
    project: &Project,
    variable: &Variable,
    object: &str,
    path: &[&str],
) -> Result<(TargetType, Vec<String>), String> {
    let fields = object_fields(project, object).unwrap_or_default();
    match path {
        [] => Ok((TargetType::Object, Vec::new())),
        [field] => {
            let Some((field, field_type)) = find_field(&fields, field) else {
                let hint = did_you_mean(field, fields.iter().map(|(n, _)| n.as_str()))
                    .unwrap_or_else(|| format!("declare it in objects/{object}.yaml"));
                return Err(record_variable_error(format!(
                    "`{}` is a {object} record, and {object} has no field `{field}`; {hint}",
                    variable.name
                )));
            };
            Ok((TargetType::Scalar(expr_type(field_type)), vec![field]))
        }
        _ => Err(record_variable_error(format!(
            "`{}.{}` reads through a relationship; an assignment sets a field of the record itself (e.g. its lookup field `{}.{}Id`)",
            variable.name,
            path.join("."),
            variable.name,
            path[0]
        ))),
    }
}

/// The object of the records a whole value holds, when it is known: a record variable, a Get
/// Records element, a Loop over records.
fn records_object(expr: &ValueExpr, context: &FlowContext<'_>) -> Option<String> {
    match expr {
        ValueExpr::WholeVariable(index) => match &context.variables[*index].ty {
            VariableType::Record(object) => Some(object.clone()),
            _ => None,
        },
        ValueExpr::WholeOutput { element, .. } => {
            if let Some(stored) = context.gets.get(element) {
                return Some(stored.object.clone());
            }
            match context.loops.get(element) {
                Some(collections::ItemShape::Record(stored)) => Some(stored.object.clone()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Why a whole record (or records) cannot go into a record variable: they are of another object.
pub(super) fn record_assignment_problem(
    variable: &Variable,
    path: &[&str],
    operator: AssignOperator,
    value: &ValueExpr,
    context: &FlowContext<'_>,
) -> Option<String> {
    let VariableType::Record(object) = &variable.ty else { return None };
    if !path.is_empty() || operator == AssignOperator::AssignCount {
        return None;
    }
    let held = records_object(value, context)?;
    (held != *object)
        .then(|| format!("`{}` holds {object} records, and the value holds {held} records", variable.name))
}

impl FlowCompiler<'_> {
    /// An Update Records (`deleting` false) or Delete Records element.
    pub(super) fn change_records(
        &mut self,
        deleting: bool,
        object: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<ChangeElement> {
        let key = if deleting { "delete" } else { "update" };
        let Some(object_def) = self.project.objects.get(object) else {
            let hint = did_you_mean(object, self.project.objects.keys().map(String::as_str))
                .or_else(|| Some(format!("declare it in objects/{object}.yaml")));
            self.value_error(&path.key(key), codes::HF001, format!("unknown object `{object}`"), hint);
            return None;
        };
        let max_rows = match def.max_rows {
            None => MAX_ROWS,
            Some(rows) if (1..=MAX_ROWS).contains(&rows) => rows,
            Some(rows) => {
                self.value_error(
                    &path.key("max_rows"),
                    codes::HF038,
                    format!("max_rows is {rows}; it must be between 1 and {MAX_ROWS} (the DML row limit of one transaction)"),
                    Some(format!("write at most {MAX_ROWS}, or narrow the conditions and run the element in a loop")),
                );
                return None;
            }
        };
        let target = match (&def.record, def.conditions.is_empty()) {
            (Some(_), false) => {
                self.error(
                    path,
                    codes::HF034,
                    "the element has both `record` and `conditions`",
                    Some(
                        "keep one: `record:` for a record you hold, `conditions:` to find the records".into(),
                    ),
                );
                return None;
            }
            (None, true) => {
                self.error(
                    path,
                    codes::HF034,
                    format!("which {object} records? the element has neither `record` nor `conditions`"),
                    Some("add `record: \"{!$Record}\"` (or a record variable), or `conditions:` on the object's fields".into()),
                );
                return None;
            }
            (Some(reference), true) => {
                if def.logic.is_some() {
                    self.error(&path.key("logic"), codes::HF034, "`logic` without `conditions`", None);
                    return None;
                }
                self.record_source(reference, object, &path.key("record"), context)?
            }
            (None, false) => {
                let (filters, logic) = self.record_filters(object, def, path, context)?;
                ChangeSource::Conditions { filters, logic }
            }
        };
        let reporting =
            RecordFieldCodes { unknown: codes::HF034, mistyped: codes::HF034, hint_declaring: true };
        let (fields, ok) = self.record_fields(object, &object_def.def, def, path, context, reporting);
        if !deleting && def.fields.is_empty() && !matches!(target, ChangeSource::Records(_)) {
            self.error(
                path,
                codes::HF034,
                "the element sets no field",
                Some("add `fields:` with the values to set, e.g. `Status: Working - Contacted`".into()),
            );
            return None;
        }
        ok.then(|| ChangeElement { object: object.to_string(), target, fields, max_rows })
    }

    /// `record:` of an Update or Delete Records element: one reference to a record or records of
    /// `object`.
    fn record_source(
        &mut self,
        reference: &str,
        object: &str,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<ChangeSource> {
        let name = reference.trim().strip_prefix("{!").and_then(|r| r.strip_suffix('}')).map(str::trim);
        let Some(name) = name.filter(|n| !n.is_empty() && !n.contains(['.', '{', '}', '!'])) else {
            self.value_error(
                path,
                codes::HF034,
                format!("`{reference}` is not one reference to a record"),
                Some("write `\"{!$Record}\"`, a record variable `\"{!lead}\"`, or a Get Records element `\"{!Get_Lead}\"`".into()),
            );
            return None;
        };
        let wrong_object = |compiler: &mut Self, holds: &str| {
            compiler.value_error(
                path,
                codes::HF034,
                format!("`{name}` holds {holds} records, but the element changes {object} records"),
                Some(format!("use a reference to {object} records, or change the element's object")),
            );
        };
        if name.eq_ignore_ascii_case("$Record") {
            if !context.record_triggered {
                self.value_error(path, codes::HF034, no_record_message("$Record"), None);
                return None;
            }
            if context.object != object {
                wrong_object(self, context.object);
                return None;
            }
            return Some(ChangeSource::Triggering);
        }
        if let Some(index) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(name)) {
            let variable = &context.variables[index];
            return match &variable.ty {
                VariableType::Record(held) if held == object => {
                    Some(ChangeSource::Records(CollectionRef::Variable(index)))
                }
                VariableType::Record(held) => {
                    let held = held.clone();
                    wrong_object(self, &held);
                    None
                }
                _ => {
                    self.value_error(
                        path,
                        codes::HF035,
                        format!(
                            "`{}` is a {} variable, not a record variable",
                            variable.name,
                            variable.type_name()
                        ),
                        Some(format!(
                            "declare it with `type: {object}` (and `collection: true` for several records)"
                        )),
                    );
                    None
                }
            };
        }
        if let Some((element, stored)) = context.gets.iter().find(|(e, _)| e.eq_ignore_ascii_case(name)) {
            if stored.object != object {
                let held = stored.object.clone();
                wrong_object(self, &held);
                return None;
            }
            let output = if stored.first_only { RECORD } else { RECORDS };
            return Some(ChangeSource::Records(CollectionRef::Output {
                element: element.clone(),
                name: output.into(),
            }));
        }
        if let Some((element, collections::ItemShape::Record(stored))) =
            context.loops.iter().find(|(e, _)| e.eq_ignore_ascii_case(name))
        {
            if stored.object != object {
                let held = stored.object.clone();
                wrong_object(self, &held);
                return None;
            }
            return Some(ChangeSource::Records(CollectionRef::Output {
                element: element.clone(),
                name: ITEM.into(),
            }));
        }
        let candidates: Vec<&str> = context
            .variables
            .iter()
            .filter(|v| matches!(v.ty, VariableType::Record(_)))
            .map(|v| v.name.as_str())
            .chain(context.gets.keys().map(String::as_str))
            .chain(["$Record"])
            .collect();
        let hint = did_you_mean(name, candidates.iter().copied())
            .or_else(|| Some(format!("declare a record variable with `type: {object}`")));
        self.value_error(path, codes::HF034, format!("`{name}` is not a record"), hint);
        None
    }
}

/// Checks every lookup field of every object: it names an object of the project that has its own
/// `key_prefix` (the write check reads it), and its relationship name is its object's only one.
pub(crate) fn lookup_fields(project: &Project, diagnostics: &mut herald_project::Diagnostics) {
    for (object, located) in &project.objects {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (name, field) in &located.def.fields {
            let path = YamlPath::root().key("fields").key(name);
            if field.field_type != FieldType::Lookup {
                for (key, given) in
                    [("to", field.to.is_some()), ("relationship", field.relationship.is_some())]
                {
                    if given {
                        diagnostics.push(
                            project
                                .at_key(
                                    located.source,
                                    &path.key(key),
                                    codes::HF037,
                                    format!(
                                        "`{key}` only belongs to a lookup field, and `{name}` is a {} field",
                                        field.field_type.name()
                                    ),
                                )
                                .hint(format!(
                                    "write `type: lookup` to make `{name}` a lookup, or remove `{key}`"
                                )),
                        );
                    }
                }
                continue;
            }
            let Some(to) = &field.to else {
                diagnostics.push(
                    project
                        .at_key(
                            located.source,
                            &path,
                            codes::HF037,
                            format!("lookup `{name}` does not say which object it points to"),
                        )
                        .hint("add `to: <Object>`, e.g. `to: Account`"),
                );
                continue;
            };
            match project.objects.get(to) {
                None => {
                    let hint = did_you_mean(to, project.objects.keys().map(String::as_str))
                        .unwrap_or_else(|| format!("declare it in objects/{to}.yaml"));
                    diagnostics.push(
                        project
                            .at_value(
                                located.source,
                                &path.key("to"),
                                None,
                                codes::HF037,
                                format!("lookup `{name}` points to unknown object `{to}`"),
                            )
                            .hint(hint),
                    );
                }
                Some(target) if target.def.key_prefix.is_none() => {
                    diagnostics.push(
                        project
                            .at_value(located.source, &path.key("to"), None, codes::HF037, format!("lookup `{name}` points to {to}, which declares no `key_prefix`, so its ids cannot be told from other objects' ids"))
                            .hint(format!("add `key_prefix: <3 letters or digits>` to objects/{to}.yaml")),
                    );
                }
                Some(_) => {}
            }
            let Some(relationship) = field.relationship_name(name) else {
                diagnostics.push(
                    project
                        .at_key(located.source, &path, codes::HF037, format!("lookup `{name}` has no relationship name: it ends neither in `Id` nor in `__c`"))
                        .hint(format!("add `relationship: <Name>`, or rename it `{name}Id` or `{name}__c`")),
                );
                continue;
            };
            if !herald_project::is_api_name(&relationship) && !relationship.ends_with("__r") {
                diagnostics.push(project.at_key(
                    located.source,
                    &path.key("relationship"),
                    codes::HF037,
                    format!("`{relationship}` is not a valid relationship name"),
                ));
            }
            let clash = located
                .def
                .fields
                .keys()
                .map(String::as_str)
                .find(|other| other.eq_ignore_ascii_case(&relationship));
            let twice = seen.iter().find(|(r, _)| r.eq_ignore_ascii_case(&relationship)).map(|(_, f)| *f);
            if let Some(other) = clash.or(twice) {
                diagnostics.push(
                    project
                        .at_key(located.source, &path, codes::HF037, format!("the relationship name `{relationship}` of `{name}` is also `{other}` on {object}; a merge field could not tell them apart"))
                        .hint("give it another name with `relationship:`"),
                );
            }
            seen.push((relationship, name.as_str()));
        }
    }
}
