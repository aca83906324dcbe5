//! Random and mutated specs never panic the importer, the validator, `describe` or `field_path`.

use herald_openapi::{ImportOptions, describe, field_path, import, validate_request};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "type",
    "properties",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "$ref",
    "required",
    "enum",
    "additionalProperties",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "pattern",
    "format",
    "content",
    "schema",
    "application/json",
    "application/x-www-form-urlencoded",
    "responses",
    "200",
    "default",
    "paths",
    "post",
    "get",
    "requestBody",
    "parameters",
    "in",
    "name",
    "operationId",
    "components",
    "schemas",
    "A",
    "B",
    "x",
    "servers",
    "url",
];
const TEXTS: &[&str] = &[
    "object",
    "string",
    "array",
    "integer",
    "number",
    "boolean",
    "null",
    "file",
    "#/components/schemas/A",
    "#/components/schemas/B",
    "#/x",
    "#",
    "#/paths",
    "other.json#/A",
    "path",
    "query",
    "header",
    "body",
    "formData",
    "cookie",
    "[",
    "^a+$",
    "date-time",
    "uri",
    "3.0.0",
    "3.1.0",
    "2.0",
    "A",
    "%7B",
    "~1",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        prop::sample::select(TEXTS).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()
            )),
        ]
    })
}

fn exercise(text: &str, body: &Value) {
    let Ok(service) = import(text, "Fuzz", "NC", &ImportOptions::default()) else { return };
    let _ = describe(&service);
    for name in service.operations.keys() {
        let _ = validate_request(&service, name, body);
    }
    for type_name in service.types.keys() {
        let _ = field_path(&service, type_name, &["A", "x"]);
        let _ = field_path(&service, type_name, &["type"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_json_document(doc in json_value(), body in json_value()) {
        exercise(&doc.to_string(), &body);
    }

    #[test]
    fn any_schema_in_a_valid_skeleton(schema in json_value(), a in json_value(), body in json_value(), version in prop::sample::select(&["3.0.0", "3.1.0"][..])) {
        let doc = json!({
            "openapi": version,
            "paths": {"/p/{id}": {"post": {
                "operationId": "op",
                "parameters": [{"name": "id", "in": "path", "schema": a.clone()}],
                "requestBody": {"content": {"application/json": {"schema": schema}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}
            }}},
            "components": {"schemas": {"A": a, "B": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/A"}}}}}
        });
        exercise(&doc.to_string(), &body);
    }

    #[test]
    fn swagger_skeleton(parameter in json_value(), body in json_value()) {
        let doc = json!({"swagger": "2.0", "paths": {"/p": {"post": {"parameters": [parameter], "responses": {}}}}});
        exercise(&doc.to_string(), &body);
    }

    #[test]
    fn mutated_seed_spec(replacement in json_value(), pick in any::<prop::sample::Index>(), body in json_value()) {
        let text = std::fs::read_to_string(format!("{}/tests/fixtures/specs/8x8/seed-chatapps-minimal.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        let mut pointers = Vec::new();
        collect_pointers(&doc, String::new(), &mut pointers);
        let target = pick.get(&pointers).clone();
        if let Some(slot) = doc.pointer_mut(&target) {
            *slot = replacement;
        }
        exercise(&doc.to_string(), &body);
    }
}

fn collect_pointers(value: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_pointers(v, format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_pointers(v, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn yaml_bombs_and_odd_text_do_not_panic() {
    for text in
        ["", "   ", "\u{feff}{}", "a: &a [*a]", "- 1\n- 2", "openapi: 3.0.0\npaths: 7", "{\"openapi\": 3.0}"]
    {
        let _ = import(text, "Fuzz", "NC", &ImportOptions::default());
    }
}
