//! Load-time field checks, enum checks and request validation against the 8x8 specs, plus the schema
//! features (YAML, 3.1, Swagger 2.0, allOf/oneOf/additionalProperties) and import errors.

use herald_openapi::{
    EnumCheck, ImportError, ImportOptions, PathError, Service, Shape, check_enum, field_path, import,
    validate_request,
};
use serde_json::json;

/// A spec pasted from a guide (`tests/fixtures/specs`), or a provider's published one, shipped in
/// `herald-providers/specs` (one copy serves the product and the tests).
fn spec(path: &str) -> String {
    let seed = format!("{}/tests/fixtures/specs/{path}", env!("CARGO_MANIFEST_DIR"));
    let published = format!("{}/../herald-providers/specs/{path}", env!("CARGO_MANIFEST_DIR"));
    let full = if std::path::Path::new(&seed).exists() { seed } else { published };
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"))
}

fn seed_sms() -> Service {
    import(&spec("8x8/seed-sms-minimal.json"), "CPaaSSMS", "X8x8_SMS_API", &ImportOptions::default()).unwrap()
}

fn seed_chat() -> Service {
    import(&spec("8x8/seed-chatapps-minimal.json"), "CPaaSMessagingApps", "NC", &ImportOptions::default())
        .unwrap()
}

const SMS_REQUEST: &str = "ExternalService__CPaaSSMS_SmsRequest";
const CHAT_REQUEST: &str = "ExternalService__CPaaSMessagingApps_singlex2dmessagex2drequest";
const COMPONENT: &str = "ExternalService__CPaaSMessagingApps_content_template_components";

#[test]
fn seed_001_to_and_from_are_caught_with_the_right_names() {
    let service = seed_sms();
    let err = field_path(&service, SMS_REQUEST, &["to"]).unwrap_err();
    let PathError::UnknownField { suggestion, available, .. } = &err else { panic!("{err:?}") };
    assert_eq!(suggestion.as_deref(), Some("destination"));
    assert_eq!(available, &["destination", "text", "source", "encoding", "scheduled", "expiry"]);
    let message = err.to_string();
    assert!(message.contains("did you mean `destination`"), "{message}");
    assert!(message.contains("MSISDN destination number"), "quotes the description: {message}");

    let err = field_path(&service, SMS_REQUEST, &["from"]).unwrap_err();
    assert!(matches!(&err, PathError::UnknownField { suggestion: Some(s), .. } if s == "source"), "{err}");

    // The corrected guide resolves.
    let info = field_path(&service, SMS_REQUEST, &["destination"]).unwrap();
    assert!(info.required);
    assert_eq!(info.shape, Shape::Text);
}

#[test]
fn spelling_mistakes_and_case_are_handled() {
    let service = seed_sms();
    let err = field_path(&service, SMS_REQUEST, &["destinaton"]).unwrap_err();
    assert!(matches!(&err, PathError::UnknownField { suggestion: Some(s), .. } if s == "destination"));
    // Flow references ignore case, as in Salesforce; the canonical spelling is returned.
    let info = field_path(&service, SMS_REQUEST, &["Destination"]).unwrap();
    assert_eq!(info.canonical_path, ["destination"]);
    let err = field_path(&service, SMS_REQUEST, &["zzz"]).unwrap_err();
    assert!(matches!(&err, PathError::UnknownField { suggestion: None, .. }));
    assert!(err.to_string().contains("its fields are: destination, text"), "{err}");
    let err = field_path(&service, "ExternalService__CPaaSSMS_SmsRequst", &["text"]).unwrap_err();
    assert!(err.to_string().contains("did you mean `ExternalService__CPaaSSMS_SmsRequest`?"), "{err}");
}

#[test]
fn nested_paths_lists_and_reserved_words() {
    let service = seed_chat();
    let info = field_path(&service, CHAT_REQUEST, &["content", "template", "components"]).unwrap();
    assert_eq!(info.shape, Shape::List { item: Box::new(Shape::Object { type_name: COMPONENT.into() }) });
    let info = field_path(&service, CHAT_REQUEST, &["user", "msisdn"]).unwrap();
    assert_eq!(info.owner, "ExternalService__CPaaSMessagingApps_user");
    // `type` is reserved: the API name `z0type` reaches it too, and the wire name stays `type`.
    let info = field_path(&service, CHAT_REQUEST, &["z0type"]).unwrap();
    assert_eq!((info.name.as_str(), info.api_name.as_str()), ("type", "z0type"));

    let err = field_path(&service, CHAT_REQUEST, &["content", "template", "components", "type"]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("is List of ExternalService__CPaaSMessagingApps_content_template_components"));
    assert!(message.contains("then Add that variable"), "{message}");
    let err = field_path(&service, CHAT_REQUEST, &["user", "msisdn", "x"]).unwrap_err();
    assert!(matches!(err, PathError::NotAnObject { .. }));
    let err = field_path(&service, CHAT_REQUEST, &["user", "phone"]).unwrap_err();
    assert!(
        matches!(&err, PathError::UnknownField { suggestion: Some(s), place, .. } if s == "msisdn" && place == " (at user)"),
        "{err}"
    );
    // A free-form object (`{type: object}`) is a map: any key goes.
    let info =
        field_path(&service, "ExternalService__CPaaSMessagingApps_interactive", &["action", "anything"])
            .unwrap();
    assert_eq!(info.shape, Shape::Any);
}

#[test]
fn seed_003_enum_values_differ_only_in_case_and_are_refused() {
    let service = seed_chat();
    let kind = field_path(&service, CHAT_REQUEST, &["type"]).unwrap();
    assert_eq!(check_enum(&kind, "template"), EnumCheck::CaseOnly { expected: "Template".into() });
    assert_eq!(check_enum(&kind, "Template"), EnumCheck::Exact);
    let message = check_enum(&kind, "template").problem("type", "template").unwrap();
    assert!(message.contains("write `Template`"), "{message}");

    let component_type = field_path(&service, COMPONENT, &["type"]).unwrap();
    assert_eq!(check_enum(&component_type, "Button"), EnumCheck::CaseOnly { expected: "button".into() });
    let sub_type = field_path(&service, COMPONENT, &["subType"]).unwrap();
    assert_eq!(check_enum(&sub_type, "url"), EnumCheck::CaseOnly { expected: "Url".into() });
    assert_eq!(
        check_enum(&sub_type, "Link"),
        EnumCheck::Unknown {
            suggestion: None,
            allowed: vec!["QuickReply".into(), "Url".into(), "CopyCode".into()]
        }
    );
    match check_enum(&sub_type, "QuickRepl") {
        EnumCheck::Unknown { suggestion, .. } => assert_eq!(suggestion.as_deref(), Some("QuickReply")),
        other => panic!("{other:?}"),
    }
    let name = field_path(&service, CHAT_REQUEST, &["clientMessageId"]).unwrap();
    assert_eq!(check_enum(&name, "anything"), EnumCheck::NotAnEnum);
}

#[test]
fn requests_are_validated_with_paths_and_fixes() {
    let service = seed_sms();
    let good = json!({"destination": "+6591234567", "text": "Hi", "source": "8x8"});
    assert_eq!(validate_request(&service, "Send-Sms-Single", &good), []);

    // The seed 001 body as written: `to`/`from` instead of destination/source.
    let problems = validate_request(
        &service,
        "Send-Sms-Single",
        &json!({"to": "+6591234567", "from": "8x8", "text": "Hi"}),
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "destination");
    assert_eq!(problems[0].fix, "set `destination`");

    let problems = validate_request(
        &service,
        "Send-Sms-Single",
        &json!({"destination": "+65", "text": "Hi", "encoding": "utf8", "scheduled": "tomorrow"}),
    );
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"encoding") && paths.contains(&"scheduled"), "{problems:?}");
    let encoding = problems.iter().find(|p| p.path == "encoding").unwrap();
    assert_eq!(encoding.fix, "use one of: \"AUTO\", \"GSM7\", \"UCS2\"");
    let scheduled = problems.iter().find(|p| p.path == "scheduled").unwrap();
    assert!(scheduled.fix.contains("2025-01-31T09:30:00Z"), "{scheduled:?}");

    let unknown = validate_request(&service, "Send-Sms", &good);
    assert!(unknown[0].fix.contains("Send-Sms-Single"));
}

#[test]
fn the_official_sms_schema_checks_pattern_and_length() {
    let service = import(&spec("8x8/sms_api.json"), "SMS", "NC", &ImportOptions::default()).unwrap();
    let problems = validate_request(
        &service,
        "Send-Sms-Single",
        &json!({"destination": "0065 9123", "text": "Hi", "country": "SGP", "clientMessageId": "x".repeat(351)}),
    );
    let destination = problems.iter().find(|p| p.path == "destination").expect("pattern");
    assert!(destination.fix.contains("E.164"), "{destination:?}");
    assert!(problems.iter().any(|p| p.path == "country" && p.fix == "shorten it to at most 2 characters"));
    assert!(problems.iter().any(|p| p.path == "clientMessageId"));

    let batch = json!({"messages": [{"destination": "+6591234567", "text": "a"}, {"destination": "bad", "text": "b"}]});
    let problems = validate_request(&service, "Send-Many-Sms", &batch);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].path.as_str(), problems[0].pointer.as_str()),
        ("messages[1].destination", "/messages/1/destination")
    );
}

#[test]
fn the_seed_003_body_fails_where_the_enums_differ() {
    let service = seed_chat();
    let body = json!({
        "user": {"msisdn": "+6512345678"},
        "type": "template",
        "content": {"template": {"name": "otp", "language": "en_US", "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
            {"type": "Button", "subType": "url", "index": 0, "parameters": [{"type": "text", "text": "123456"}]}
        ]}}
    });
    let problems = validate_request(&service, "Send-Message", &body);
    let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["content.template.components[1].subType", "content.template.components[1].type", "type"]
    );
    let kind = problems.iter().find(|p| p.path == "type").unwrap();
    assert!(kind.message.contains("the spec's value is \"Template\""), "{kind:?}");

    let mut fixed = body.clone();
    fixed["type"] = json!("Template");
    fixed["content"]["template"]["components"][1]["type"] = json!("button");
    fixed["content"]["template"]["components"][1]["subType"] = json!("Url");
    assert_eq!(validate_request(&service, "Send-Message", &fixed), []);
}

#[test]
fn the_compiled_validator_is_kept_and_shared_by_clones() {
    let service = seed_sms();
    let operation = &service.operations["Send-Sms-Single"];
    assert_eq!(format!("{:?}", operation.validator), "ValidatorCache(empty)");
    let copy = service.clone();
    validate_request(&service, "Send-Sms-Single", &json!({}));
    assert_eq!(format!("{:?}", copy.operations["Send-Sms-Single"].validator), "ValidatorCache(compiled)");
}

const YAML_31: &str = r##"
openapi: 3.1.0
info: {title: t, version: "1"}
servers:
  - url: https://{region}.example.com
    variables: {region: {default: eu}}
paths:
  /things/{id}:
    parameters:
      - {name: id, in: path, schema: {type: string}}
    post:
      operationId: make.thing v2
      parameters:
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, maximum: 10}}
        - {name: session, in: cookie, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [kind, pet]
              properties:
                kind: {type: string, enum: [a, b]}
                from: {type: [string, "null"]}
                pet: {$ref: "#/components/schemas/Pet"}
                labels: {type: object, additionalProperties: {type: integer}}
                extra: {type: object, properties: {x: {type: string}}, additionalProperties: true}
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Pet"}
        4xx: {description: client error}
        default:
          description: other
          content:
            application/json:
              schema: {type: object, properties: {code: {type: integer}}}
components:
  schemas:
    Named:
      type: object
      required: [name]
      properties: {name: {type: string, maxLength: 5}}
    Pet:
      allOf:
        - $ref: "#/components/schemas/Named"
        - type: object
          properties:
            owner: {type: object, properties: {name: {type: string}}}
            animal:
              oneOf:
                - {$ref: "#/components/schemas/Cat"}
                - {$ref: "#/components/schemas/Dog"}
            parent: {$ref: "#/components/schemas/Pet"}
    Cat: {type: object, required: [meow], properties: {meow: {type: boolean}}}
    Dog: {type: object, properties: {bark: {type: boolean}}}
"##;

#[test]
fn yaml_3_1_with_allof_oneof_maps_and_recursion() {
    let service = import(YAML_31, "Zoo", "NC", &ImportOptions::default()).unwrap();
    assert_eq!(service.servers[0].url, "https://eu.example.com");
    let operation = &service.operations["make_thing_v2"];
    assert_eq!(operation.operation_id.as_deref(), Some("make.thing v2"));
    let names: Vec<&str> = operation.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["id", "X-Trace", "limit"], "cookies are not sent");
    let body = service.body_properties(operation).unwrap();
    assert_eq!(body.name, "ExternalService__Zoo_makex5fthingx5fv2_IN_body");
    assert_eq!(body.properties["from"].api_name, "z0from");
    assert!(body.properties["from"].constraints.nullable);
    assert_eq!(body.properties["labels"].shape, Shape::Map { value: Box::new(Shape::Integer) });
    assert_eq!(
        service.types["ExternalService__Zoo_makex5fthingx5fv2_IN_body_extra"].additional_properties,
        Some(Shape::Any)
    );

    let pet = &service.types["ExternalService__Zoo_Pet"];
    assert_eq!(pet.properties.keys().collect::<Vec<_>>(), ["name", "owner", "animal", "parent"]);
    assert!(pet.properties["name"].required, "allOf merges required");
    assert_eq!(
        pet.properties["parent"].shape,
        Shape::Object { type_name: "ExternalService__Zoo_Pet".into() }
    );
    assert!(service.types.contains_key("ExternalService__Zoo_Pet_owner"));
    let animal = &service.types["ExternalService__Zoo_Pet_animal"];
    assert_eq!(animal.alternatives, ["ExternalService__Zoo_Cat", "ExternalService__Zoo_Dog"]);
    assert!(!animal.properties["meow"].required, "a union's fields are optional");

    let statuses: Vec<&str> = operation.responses.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["200", "4XX", "default"]);
    assert!(service.types.contains_key("ExternalService__Zoo_makex5fthingx5fv2_OUT_default"));

    // Validation follows the recursive refs and the oneOf.
    let ok =
        json!({"kind": "a", "pet": {"name": "Rex", "animal": {"bark": true}, "parent": {"name": "Max"}}});
    assert_eq!(validate_request(&service, "make_thing_v2", &ok), []);
    let bad =
        json!({"kind": "c", "from": null, "pet": {"name": "Rexxxxx", "parent": {}}, "labels": {"a": "x"}});
    let mut paths: Vec<String> =
        validate_request(&service, "make_thing_v2", &bad).into_iter().map(|p| p.path).collect();
    paths.sort();
    assert_eq!(paths, ["kind", "labels.a", "pet.name", "pet.parent.name"]);
}

const SWAGGER: &str = r##"{
  "swagger": "2.0", "info": {"title": "t", "version": "1"},
  "host": "api.example.com", "basePath": "/v1", "schemes": ["https"],
  "paths": {
    "/send": {"post": {"operationId": "send", "consumes": ["application/json"],
      "parameters": [{"name": "payload", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Msg"}}],
      "responses": {"200": {"description": "ok", "schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}}},
    "/form": {"post": {"operationId": "form", "consumes": ["application/x-www-form-urlencoded"],
      "parameters": [{"name": "To", "in": "formData", "type": "string", "required": true},
                     {"name": "Count", "in": "formData", "type": "integer"}],
      "responses": {"201": {"description": "created"}}}}
  },
  "definitions": {"Msg": {"type": "object", "required": ["to"], "properties": {"to": {"type": "string", "x-nullable": true}}}}
}"##;

#[test]
fn swagger_2_body_and_form_parameters() {
    let service = import(SWAGGER, "Old", "NC", &ImportOptions::default()).unwrap();
    assert_eq!(service.servers[0].url, "https://api.example.com/v1");
    let send = &service.operations["send"];
    let body = send.body.as_ref().unwrap();
    assert_eq!((body.name.as_str(), body.required), ("payload", true));
    assert_eq!(body.shape, Shape::Object { type_name: "ExternalService__Old_Msg".into() });
    assert!(service.types.contains_key("ExternalService__Old_send_OUT_200"));
    assert_eq!(validate_request(&service, "send", &json!({}))[0].path, "to");

    let form = &service.operations["form"];
    assert_eq!(form.body.as_ref().unwrap().encoding, herald_openapi::BodyEncoding::Form);
    let fields = service.body_properties(form).unwrap();
    assert_eq!(fields.name, "ExternalService__Old_form_IN_body");
    assert!(fields.properties["To"].required);
    assert_eq!(fields.properties["Count"].shape, Shape::Integer);
    assert_eq!(validate_request(&service, "form", &json!({"Count": "x"})).len(), 2);
}

fn import_err(text: &str) -> ImportError {
    import(text, "Svc", "NC", &ImportOptions::default()).unwrap_err()
}

#[test]
fn import_errors_name_the_place_and_the_fix() {
    let err = import_err(
        r##"{"openapi": "3.0.0", "paths": {"/a": {"post": {"operationId": "a", "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sms"}}}}}}}, "components": {"schemas": {"SmsRequest": {"type": "object"}}}}"##,
    );
    let message = err.to_string();
    assert!(
        message.contains("`#/paths/~1a/post/requestBody/content/application~1json/schema/$ref`"),
        "{message}"
    );
    assert!(message.contains("did you mean `#/components/schemas/SmsRequest`?"), "{message}");

    let err = import_err(
        r##"{"openapi": "3.0.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "other.yaml#/x"}}}}}}"##,
    );
    assert!(matches!(err, ImportError::ExternalRef { .. }), "{err}");
    assert!(err.to_string().contains("never fetches"));

    let err = import_err(
        r##"{"openapi": "3.0.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/x"}}}}}, "x": {"$ref": "#/x"}}"##,
    );
    assert!(matches!(err, ImportError::RefLoop { .. }), "{err}");

    assert!(matches!(
        import_err(r##"{"openapi": "4.0.0", "paths": {}}"##),
        ImportError::UnsupportedVersion { .. }
    ));
    assert!(matches!(import_err(r##"{"openapi": "3.0.0", "paths": {}}"##), ImportError::NoOperations));
    assert!(matches!(import_err("{\"openapi\": "), ImportError::Parse { .. }));
    assert!(matches!(import_err("[1, 2]"), ImportError::NotAnObject { found: "array" }));
    let err = import_err(
        r##"{"openapi": "3.0.0", "paths": {"/a": {"post": {"parameters": [{"name": "x", "in": "body"}]}}}}"##,
    );
    assert!(err.to_string().contains("`#/paths/~1a/post/parameters/0/in`"), "{err}");

    let err =
        import(&spec("8x8/seed-sms-minimal.json"), "8x8_SMS", "NC", &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::InvalidRegistration { .. }));
    assert!(err.to_string().contains("start with a letter"));
}

#[test]
fn deep_schemas_are_refused_not_overflowed() {
    // Nesting in the text itself stops at the JSON parser's limit; a chain of named schemas stops here.
    let mut schemas = serde_json::Map::new();
    for i in 0..200 {
        let next = json!({"$ref": format!("#/components/schemas/S{}", i + 1)});
        schemas.insert(format!("S{i}"), json!({"type": "object", "properties": {"a": next}}));
    }
    schemas.insert("S200".into(), json!({"type": "string"}));
    let body = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}});
    let doc = json!({"openapi": "3.0.0", "paths": {"/a": {"post": {"requestBody": body}}}, "components": {"schemas": schemas}});
    let err = import_err(&doc.to_string());
    assert!(matches!(err, ImportError::TooDeep { .. }), "{err}");
}

#[test]
fn header_parameters_that_would_reframe_or_reroute_the_request_are_refused() {
    for name in
        ["Host", "content-length", "Transfer-Encoding", "Connection", "Proxy-Authorization", "Upgrade"]
    {
        let spec = json!({"openapi": "3.0.0", "paths": {"/sms": {"post": {
            "operationId": "send",
            "parameters": [{"name": "X-Trace", "in": "header"}, {"name": name, "in": "header"}]
        }}}});
        let err = import_err(&spec.to_string());
        assert!(matches!(err, ImportError::ForbiddenHeader { .. }), "{name}: {err}");
        assert_eq!(err.pointer(), Some("#/paths/~1sms/post/parameters/1/name"), "{name}");
        assert!(
            err.to_string().contains(&format!("header parameter `{name}` cannot come from a spec")),
            "{err}"
        );
    }
    let allowed = json!({"openapi": "3.0.0", "paths": {"/sms": {"post": {
        "operationId": "send", "parameters": [{"name": "Idempotency-Key", "in": "header"}]
    }}}});
    assert!(import(&allowed.to_string(), "Svc", "NC", &ImportOptions::default()).is_ok());
}

#[test]
fn deeply_nested_or_oversized_specs_are_refused_before_parsing() {
    // 100,000 levels of YAML flow nesting once took minutes inside the YAML scanner.
    let deep_yaml = format!("openapi: 3.0.0\npaths: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let err = import_err(&deep_yaml);
    assert!(matches!(err, ImportError::Limit { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("nests deeper than 128 levels"), "{err}");

    let deep_json =
        format!("{{\"openapi\": \"3.0.0\", \"paths\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(import_err(&deep_json), ImportError::Limit { line: 1, .. }));

    let wide = format!("openapi: 3.0.0\npaths:\n  x: [{}]\n", vec!["1"; 600_000].join(","));
    let err = import_err(&wide);
    assert!(err.to_string().contains("holds more than 500000 values"), "{err}");

    let big = format!(
        "{{\"openapi\": \"3.0.0\", \"x\": \"{}\"}}",
        "a".repeat(herald_openapi::limits::MAX_SPEC_BYTES)
    );
    assert!(matches!(import_err(&big), ImportError::TooLarge { .. }));
}

#[test]
fn an_unknown_operation_lists_a_bounded_number_of_the_others() {
    let mut paths = serde_json::Map::new();
    for i in 0..500 {
        paths.insert(format!("/p{i}"), json!({"get": {"operationId": format!("op{i}")}}));
    }
    let spec = json!({"openapi": "3.0.0", "paths": paths}).to_string();
    let options = ImportOptions { operations: Some(vec!["nope".into()]), server: None };
    let err = import(&spec, "Svc", "NC", &options).unwrap_err().to_string();
    assert!(err.contains("op0, op1") && err.contains(" and 480 more"), "{err}");
    assert!(!err.contains("op499"), "{err}");
}
