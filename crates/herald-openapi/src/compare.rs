//! An imported spec held against the provider's published one.
//!
//! A spec pasted from a guide can drift from the provider's own contract: seed 003's Chat Apps schema
//! spells the content type `Template` where 8x8's `business_messaging_api.json` has `template`. herald
//! validates requests against the imported spec, so such a drift passes every check at home and is
//! refused by the provider. [`compare`] finds where the two disagree, so that the loader can warn at
//! the place in the imported file.
//!
//! Operations are matched by method and path, with path parameters compared by position, not by name
//! (`{subAccountId}` and `{subaccountId}` are the same segment). For each operation found in both, the
//! parameters and the request body are walked side by side: an enum value the published spec does not
//! list (spelled differently, or not at all), a field the published spec requires that the imported
//! one leaves out or makes optional, and a different type are reported. What the imported spec leaves
//! out otherwise (operations, optional fields, descriptions) is not: a faithful subset stays quiet.

use crate::import::{child, lookup, parse, ref_target};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// What kind of disagreement was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContradictionKind {
    /// An enum value the published spec does not list (often the same word in another case).
    Enum,
    /// A field or parameter the published spec requires is missing, or optional, here.
    Required,
    /// A field or parameter has another type.
    Type,
}

/// One place where the imported spec contradicts the published one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    pub kind: ContradictionKind,
    /// The JSON pointer, in the imported spec, of the value that disagrees (`#/components/schemas/x/enum/6`).
    pub pointer: String,
    /// The operation it was found through (`Send-Message`).
    pub operation: String,
    /// What disagrees and what the published spec documents instead.
    pub message: String,
    /// What the published spec documents, as a fix (`template`).
    pub documented: String,
}

const MAX_DEPTH: usize = 32;
const MAX_REF_HOPS: usize = 32;
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Compares the operations of `imported` (only those whose `operationId` is in `operations`, when
/// given) with the same operations of `published`. Either text that does not parse gives nothing:
/// the import reports the imported one, and the published ones are tested.
pub fn compare(imported: &str, published: &str, operations: Option<&[String]>) -> Vec<Contradiction> {
    let (Ok(imported), Ok(published)) = (parse(imported), parse(published)) else { return Vec::new() };
    let mut walker =
        Walker { imported: &imported, published: &published, found: Vec::new(), seen: HashSet::new() };
    let (Some(Value::Object(ipaths)), Some(Value::Object(ppaths))) =
        (imported.get("paths"), published.get("paths"))
    else {
        return Vec::new();
    };
    for (path, item) in ipaths {
        let Some(item) = item.as_object() else { continue };
        let Some((ppath, pitem)) = ppaths.iter().find(|(p, _)| same_path(p, path)) else { continue };
        let Some(pitem) = pitem.as_object() else { continue };
        for method in METHODS {
            let (Some(operation), Some(poperation)) = (item.get(method), pitem.get(method)) else { continue };
            let id = operation.get("operationId").and_then(Value::as_str).unwrap_or(method).to_string();
            if operations.is_some_and(|wanted| !wanted.iter().any(|w| w == &id)) {
                continue;
            }
            let ipointer = child(&child("#/paths", path), method);
            let ppointer = child(&child("#/paths", ppath), method);
            walker.operation(&id, (&ipointer, operation, item), (&ppointer, poperation, pitem));
        }
    }
    walker.found
}

/// `/v1/{a}/messages` and `/v1/{b}/messages` are the same path.
fn same_path(a: &str, b: &str) -> bool {
    let segments = |p: &str| -> Vec<String> {
        p.trim_end_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') && s.ends_with('}') { "{}".to_string() } else { s.to_string() })
            .collect()
    };
    segments(a) == segments(b)
}

/// One side of a comparison: the pointer of a node and the node.
type Side<'v> = (String, &'v Value);

struct Walker<'v> {
    imported: &'v Value,
    published: &'v Value,
    found: Vec<Contradiction>,
    /// Pairs of schemas already compared, so shared and recursive schemas are walked once.
    seen: HashSet<(String, String)>,
}

impl<'v> Walker<'v> {
    fn operation(
        &mut self,
        id: &str,
        (ipointer, operation, item): (&str, &'v Value, &'v Map<String, Value>),
        (ppointer, poperation, pitem): (&str, &'v Value, &'v Map<String, Value>),
    ) {
        let item_pointer = ipointer.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        let pitem_pointer = ppointer.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        let iparams = self.parameters(true, &item_pointer, item, ipointer, operation);
        let pparams = self.parameters(false, &pitem_pointer, pitem, ppointer, poperation);
        for (pp, pparam) in &pparams {
            let location = pparam.get("in").and_then(Value::as_str).unwrap_or("");
            let name = pparam.get("name").and_then(Value::as_str).unwrap_or("");
            let required = pparam.get("required").and_then(Value::as_bool).unwrap_or(false);
            let matching = iparams.iter().find(|(_, i)| {
                i.get("in").and_then(Value::as_str) == Some(location)
                    && i.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name))
            });
            let Some((ip, iparam)) = matching else {
                // Path parameters were matched with the path itself.
                if required && location != "path" {
                    self.report(
                        ContradictionKind::Required,
                        format!("{ipointer}/parameters"),
                        id,
                        format!("the {location} parameter `{name}` is required by the provider's published spec, and this operation does not declare it"),
                        format!("a required {location} parameter `{name}`; declare it"),
                    );
                }
                continue;
            };
            if required && !iparam.get("required").and_then(Value::as_bool).unwrap_or(false) {
                self.report(
                    ContradictionKind::Required,
                    ip.clone(),
                    id,
                    format!("the {location} parameter `{name}` is optional here, but the provider's published spec requires it"),
                    "it as required; add `required: true`".into(),
                );
            }
            if let (Some(ischema), Some(pschema)) = (iparam.get("schema"), pparam.get("schema")) {
                self.schema(id, name, (child(ip, "schema"), ischema), (child(pp, "schema"), pschema), 0);
            }
        }
        let ibody =
            operation.get("requestBody").map(|b| self.resolve(true, child(ipointer, "requestBody"), b));
        let pbody =
            poperation.get("requestBody").map(|b| self.resolve(false, child(ppointer, "requestBody"), b));
        let (Some((ib, ibody)), Some((pb, pbody))) = (ibody, pbody) else { return };
        let (Some(Value::Object(icontent)), Some(Value::Object(pcontent))) =
            (ibody.get("content"), pbody.get("content"))
        else {
            return;
        };
        for (media, imedia) in icontent {
            let Some(pmedia) = pcontent.get(media) else { continue };
            let (Some(ischema), Some(pschema)) = (imedia.get("schema"), pmedia.get("schema")) else {
                continue;
            };
            let ip = child(&child(&child(&ib, "content"), media), "schema");
            let pp = child(&child(&child(&pb, "content"), media), "schema");
            self.schema(id, "body", (ip, ischema), (pp, pschema), 0);
        }
    }

    /// The parameters of an operation and of its path item, each resolved, with its pointer.
    fn parameters(
        &self,
        imported: bool,
        item_pointer: &str,
        item: &'v Map<String, Value>,
        operation_pointer: &str,
        operation: &'v Value,
    ) -> Vec<Side<'v>> {
        let mut out = Vec::new();
        let lists = [
            (operation_pointer.to_string(), operation.get("parameters")),
            (item_pointer.to_string(), item.get("parameters")),
        ];
        for (pointer, list) in lists {
            let Some(Value::Array(list)) = list else { continue };
            for (index, parameter) in list.iter().enumerate() {
                let at = child(&child(&pointer, "parameters"), &index.to_string());
                out.push(self.resolve(imported, at, parameter));
            }
        }
        out
    }

    /// Follows `$ref`s from `node`; the node they lead to and its pointer.
    fn resolve(&self, imported: bool, mut pointer: String, mut node: &'v Value) -> Side<'v> {
        let doc = if imported { self.imported } else { self.published };
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else { break };
            let Ok(target) = ref_target(reference, &pointer) else { break };
            let Some(found) = lookup(doc, &target) else { break };
            pointer = target;
            node = found;
        }
        (pointer, node)
    }

    /// Compares two schemas found at the same place of the same operation; `field` names the place
    /// for messages (`content.type`).
    fn schema(&mut self, id: &str, field: &str, imported: Side<'v>, published: Side<'v>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let (ip, inode) = self.resolve(true, imported.0, imported.1);
        let (pp, pnode) = self.resolve(false, published.0, published.1);
        if !self.seen.insert((ip.clone(), pp.clone())) {
            return;
        }
        let ifl = self.flatten(true, ip, inode);
        let pfl = self.flatten(false, pp, pnode);
        if let (Some((at, itype)), Some((_, ptype))) = (&ifl.ty, &pfl.ty)
            && itype != ptype
            && !(itype == "integer" && ptype == "number")
        {
            self.report(
                ContradictionKind::Type,
                at.clone(),
                id,
                format!(
                    "`{field}` is of type `{itype}` here; the provider's published spec documents `{ptype}`"
                ),
                format!("the type `{ptype}`"),
            );
            return;
        }
        if let (Some((at, ienum)), Some((_, penum))) = (&ifl.enumeration, &pfl.enumeration) {
            self.enumeration(id, field, at, ienum, penum);
        }
        for name in &pfl.required {
            let declared = ifl.properties.iter().any(|(n, _, _)| n == name);
            if !declared && !ifl.properties.is_empty() {
                let at = ifl.properties_pointer.clone().unwrap_or_else(|| ifl.pointer.clone());
                self.report(
                    ContradictionKind::Required,
                    at,
                    id,
                    format!("`{field}` does not declare the field `{name}`, which the provider's published spec requires"),
                    format!("a required field `{name}`; declare it and list it in `required`"),
                );
            } else if declared && !ifl.required.contains(name) {
                let at = ifl
                    .properties
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, p, _)| p.clone())
                    .unwrap_or_default();
                self.report(
                    ContradictionKind::Required,
                    at,
                    id,
                    format!(
                        "`{}` is optional here, but the provider's published spec requires it",
                        if field == "body" { name.clone() } else { format!("{field}.{name}") }
                    ),
                    format!("`{name}` as required; list it in `required`"),
                );
            }
        }
        for (name, ipointer, inode) in &ifl.properties {
            if let Some((_, ppointer, pnode)) = pfl.properties.iter().find(|(n, _, _)| n == name) {
                let nested = if field == "body" { name.clone() } else { format!("{field}.{name}") };
                self.schema(id, &nested, (ipointer.clone(), inode), (ppointer.clone(), pnode), depth + 1);
            }
        }
        if let (Some(items), Some(pitems)) = (ifl.items, pfl.items) {
            self.schema(id, &format!("{field}[]"), items, pitems, depth + 1);
        }
    }

    /// One contradiction for the values spelled otherwise, one for the values not listed at all, each
    /// at the first such value.
    fn enumeration(&mut self, id: &str, field: &str, at: &str, imported: &[Value], published: &[Value]) {
        let listed: Vec<&str> = published.iter().filter_map(Value::as_str).collect();
        if listed.is_empty() {
            return;
        }
        let mut respelled: Vec<(usize, &str, &str)> = Vec::new();
        let mut unlisted: Vec<(usize, &str)> = Vec::new();
        for (index, value) in imported.iter().enumerate() {
            let Some(value) = value.as_str() else { continue };
            if listed.contains(&value) {
                continue;
            }
            match listed.iter().find(|l| l.eq_ignore_ascii_case(value)) {
                Some(spelled) => respelled.push((index, value, spelled)),
                None => unlisted.push((index, value)),
            }
        }
        let quoted = |values: &mut dyn Iterator<Item = &str>| {
            values.map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
        };
        if let Some((first, _, _)) = respelled.first() {
            let values = quoted(&mut respelled.iter().map(|(_, v, _)| *v));
            let spelled = quoted(&mut respelled.iter().map(|(_, _, s)| *s));
            let (verb, them) = if respelled.len() == 1 { ("is", "it") } else { ("are", "them") };
            self.report(
                ContradictionKind::Enum,
                child(at, &first.to_string()),
                id,
                format!("`{field}`: {values} {verb} spelled {spelled} in the provider's published spec"),
                format!("{spelled}; write {them} that way"),
            );
        }
        if let Some((first, _)) = unlisted.first() {
            let values = quoted(&mut unlisted.iter().map(|(_, v)| *v));
            let all = quoted(&mut listed.iter().copied());
            self.report(
                ContradictionKind::Enum,
                child(at, &first.to_string()),
                id,
                format!("`{field}`: the provider's published spec does not list {values}"),
                format!("only {all}"),
            );
        }
    }

    /// A schema's type, enum, properties, required fields and items, with `allOf` merged in.
    fn flatten(&self, imported: bool, pointer: String, node: &'v Value) -> Flat<'v> {
        let mut flat = Flat { pointer: pointer.clone(), ..Flat::default() };
        self.flatten_into(imported, pointer, node, &mut flat, 0);
        flat
    }

    fn flatten_into(
        &self,
        imported: bool,
        pointer: String,
        node: &'v Value,
        flat: &mut Flat<'v>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(map) = node.as_object() else { return };
        if flat.ty.is_none()
            && let Some(ty) = type_of(map.get("type"))
        {
            flat.ty = Some((child(&pointer, "type"), ty));
        }
        if flat.enumeration.is_none()
            && let Some(Value::Array(values)) = map.get("enum")
        {
            flat.enumeration = Some((child(&pointer, "enum"), values.clone()));
        }
        if let Some(Value::Object(properties)) = map.get("properties") {
            let at = child(&pointer, "properties");
            flat.properties_pointer.get_or_insert_with(|| at.clone());
            for (name, schema) in properties {
                flat.properties.push((name.clone(), child(&at, name), schema));
            }
        }
        if let Some(Value::Array(required)) = map.get("required") {
            flat.required.extend(required.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if flat.items.is_none()
            && let Some(items) = map.get("items")
        {
            flat.items = Some((child(&pointer, "items"), items));
        }
        if let Some(Value::Array(all)) = map.get("allOf") {
            for (index, member) in all.iter().enumerate() {
                let (at, member) =
                    self.resolve(imported, child(&child(&pointer, "allOf"), &index.to_string()), member);
                self.flatten_into(imported, at, member, flat, depth + 1);
            }
        }
    }

    fn report(
        &mut self,
        kind: ContradictionKind,
        pointer: String,
        operation: &str,
        message: String,
        documented: String,
    ) {
        // A schema shared by several operations is reported once, at its one place.
        if self.found.iter().any(|c| c.pointer == pointer && c.kind == kind && c.message == message) {
            return;
        }
        self.found.push(Contradiction {
            kind,
            pointer,
            operation: operation.to_string(),
            message,
            documented,
        });
    }
}

#[derive(Default)]
struct Flat<'v> {
    pointer: String,
    ty: Option<(String, String)>,
    enumeration: Option<(String, Vec<Value>)>,
    properties_pointer: Option<String>,
    properties: Vec<(String, String, &'v Value)>,
    required: Vec<String>,
    items: Option<Side<'v>>,
}

/// `type: string`, or OpenAPI 3.1's `type: [string, "null"]`: the first type that is not null.
fn type_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(ty) => Some(ty.clone()),
        Value::Array(types) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").map(str::to_string)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(body: Value, parameters: Value) -> String {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/v1/{account}/messages": {"post": {
                "operationId": "Send",
                "parameters": parameters,
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}},
                "responses": {"200": {"description": "ok"}}
            }}},
            "components": {"schemas": {"Message": body}}
        })
        .to_string()
    }

    fn published() -> String {
        spec(
            json!({"type": "object", "required": ["to", "type"], "properties": {
                "to": {"type": "string"},
                "type": {"type": "string", "enum": ["text", "template"]},
                "count": {"type": "integer"},
                "extra": {"type": "string"}
            }}),
            json!([{"name": "account", "in": "path", "required": true, "schema": {"type": "string"}},
                   {"name": "mode", "in": "query", "required": true, "schema": {"type": "string", "enum": ["fast"]}}]),
        )
    }

    #[test]
    fn a_faithful_subset_is_quiet() {
        let subset = spec(
            json!({"type": "object", "required": ["to", "type"], "properties": {
                "to": {"type": "string"},
                "type": {"type": "string", "enum": ["text"]}
            }}),
            json!([{"name": "acct", "in": "path", "required": true, "schema": {"type": "string"}},
                   {"name": "mode", "in": "query", "required": true, "schema": {"type": "string"}}]),
        );
        assert_eq!(compare(&subset, &published(), None), Vec::new());
        assert_eq!(compare(&published(), &published(), None), Vec::new());
    }

    #[test]
    fn enums_spelled_otherwise_required_fields_and_types_are_contradictions() {
        let drifted = spec(
            json!({"type": "object", "required": ["type"], "properties": {
                "to": {"type": "string"},
                "type": {"type": "string", "enum": ["Text", "Template", "Video"]},
                "count": {"type": "string"}
            }}),
            json!([{"name": "account", "in": "path", "required": true, "schema": {"type": "string"}}]),
        );
        let found = compare(&drifted, &published(), None);
        let kinds = |kind| found.iter().filter(|c| c.kind == kind).collect::<Vec<_>>();
        let enums = kinds(ContradictionKind::Enum);
        assert_eq!(enums.len(), 2, "one for the values spelled otherwise, one for the others: {found:#?}");
        assert_eq!(enums[0].pointer, "#/components/schemas/Message/properties/type/enum/0");
        assert!(
            enums[0].message.contains("`Text`, `Template` are spelled `text`, `template`"),
            "{}",
            enums[0].message
        );
        assert!(enums[0].documented.starts_with("`text`, `template`"), "{}", enums[0].documented);
        assert_eq!(enums[1].pointer, "#/components/schemas/Message/properties/type/enum/2");
        assert!(enums[1].message.contains("does not list `Video`"), "{}", enums[1].message);
        let required = kinds(ContradictionKind::Required);
        assert!(required.iter().any(|c| c.message.contains("`to` is optional here")), "{required:#?}");
        assert!(
            required.iter().any(|c| c.message.contains("query parameter `mode` is required")),
            "{required:#?}"
        );
        let types = kinds(ContradictionKind::Type);
        assert_eq!(types.len(), 1, "{found:#?}");
        assert_eq!(types[0].pointer, "#/components/schemas/Message/properties/count/type");
        assert!(
            types[0].message.contains(
                "`count` is of type `string` here; the provider's published spec documents `integer`"
            )
        );
        assert_eq!(
            compare(&drifted, &published(), Some(&["Other".to_string()])),
            Vec::new(),
            "only the operations imported"
        );
    }
}
