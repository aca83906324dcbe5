//! The provider specs in `herald-providers/specs` and the guides' specs in `tests/fixtures/specs` (see the READMEs there)
//! import with every operation; `describe` output is pinned.

use herald_openapi::{BodyEncoding, ImportError, ImportOptions, Service, Shape, describe, import};
use serde_json::Value;

/// A spec pasted from a guide (`tests/fixtures/specs`), or a provider's published one, shipped in
/// `herald-providers/specs` (one copy serves the product and the tests).
fn spec(path: &str) -> String {
    let seed = format!("{}/tests/fixtures/specs/{path}", env!("CARGO_MANIFEST_DIR"));
    let published = format!("{}/../herald-providers/specs/{path}", env!("CARGO_MANIFEST_DIR"));
    let full = if std::path::Path::new(&seed).exists() { seed } else { published };
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"))
}

/// The operationIds a spec declares, counted straight from the JSON.
fn operation_ids(text: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(text).unwrap();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(op) = item.get(method) {
                ids.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

fn import_all(path: &str, registration: &str) -> Service {
    let text = spec(path);
    let service = import(&text, registration, "NC", &ImportOptions::default()).unwrap();
    let ids = operation_ids(&text);
    assert_eq!(
        service.operations.keys().cloned().collect::<Vec<_>>(),
        ids,
        "{path}: every operation, in order"
    );
    service
}

#[test]
fn seed_sms_minimal_imports_as_the_guide_names_it() {
    let service = import_all("8x8/seed-sms-minimal.json", "CPaaSSMS");
    assert!(service.types.contains_key("ExternalService__CPaaSSMS_SmsRequest"));
    assert_eq!(service.servers.len(), 4);
    insta::assert_snapshot!("seed_sms_minimal", describe(&service));
}

#[test]
fn seed_chatapps_minimal_imports_as_the_guide_names_it() {
    let service = import_all("8x8/seed-chatapps-minimal.json", "CPaaSMessagingApps");
    for name in [
        "ExternalService__CPaaSMessagingApps_singlex2dmessagex2drequest",
        "ExternalService__CPaaSMessagingApps_content_template_components",
        "ExternalService__CPaaSMessagingApps_content_template_components_parameters",
    ] {
        assert!(service.types.contains_key(name), "{name}");
    }
    let request = &service.types["ExternalService__CPaaSMessagingApps_singlex2dmessagex2drequest"];
    assert_eq!(request.properties["type"].api_name, "z0type");
    assert_eq!(request.properties["type"].constraints.enum_values[6], "Template");
    insta::assert_snapshot!("seed_chatapps_minimal", describe(&service));
}

#[test]
fn official_sms_spec_imports_every_operation() {
    let service = import_all("8x8/sms_api.json", "EightByEightSMS");
    let op = &service.operations["Send-Sms-Single"];
    assert_eq!(op.parameters[0].constraints.pattern.as_deref(), Some(r"^[A-Za-z0-9\-._&]{3,50}$"));
    let statuses: Vec<&str> = op.responses.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["200", "400", "401", "500", "426"]);
    insta::assert_snapshot!("official_sms", describe(&service));
}

#[test]
fn official_chat_apps_spec_imports_every_operation() {
    let service = import_all("8x8/business_messaging_api.json", "EightByEightChatApps");
    let body = service.body_properties(&service.operations["Send-Message"]).unwrap();
    assert_eq!(body.name, "ExternalService__EightByEightChatApps_Sendx2dMessage_IN_body");
    assert_eq!(service.operations["Upload-File"].body.as_ref().unwrap().encoding, BodyEncoding::Multipart);
    insta::assert_snapshot!("official_chat_apps", describe(&service));
}

#[test]
fn a_region_is_chosen_among_the_spec_servers() {
    let options = ImportOptions { operations: None, server: Some("https://sms.us.8x8.com/".into()) };
    let service = import(&spec("8x8/seed-sms-minimal.json"), "CPaaSSMS", "NC", &options).unwrap();
    assert_eq!(service.server.as_deref(), Some("https://sms.us.8x8.com"));
    assert_eq!(service.server_for_host("SMS.8x8.UK").unwrap().description.as_deref(), Some("Europe region"));

    let options = ImportOptions { operations: None, server: Some("https://sms.eu.8x8.com".into()) };
    let err = import(&spec("8x8/seed-sms-minimal.json"), "CPaaSSMS", "NC", &options).unwrap_err();
    assert!(matches!(err, ImportError::UnknownServer { .. }));
    assert!(err.to_string().contains("https://sms.8x8.uk"), "{err}");
}

#[test]
fn chosen_operations_only_and_did_you_mean_for_unknown_ones() {
    let text = spec("8x8/sms_api.json");
    let options = ImportOptions { operations: Some(vec!["Send-Sms-Single".into()]), server: None };
    let service = import(&text, "SMS", "NC", &options).unwrap();
    assert_eq!(service.operations.keys().collect::<Vec<_>>(), ["Send-Sms-Single"]);
    assert!(!service.types.contains_key("ExternalService__SMS_BatchSmsRequest"), "only reachable types");

    let options = ImportOptions { operations: Some(vec!["Send-Sms-Singel".into()]), server: None };
    let err = import(&text, "SMS", "NC", &options).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("did you mean `Send-Sms-Single`?"), "{message}");
    assert!(message.contains("Send-Many-Sms"), "lists the operations: {message}");
}

#[test]
fn twilio_create_message_imports_with_a_form_body() {
    let options = ImportOptions { operations: Some(vec!["CreateMessage".into()]), server: None };
    let service =
        import(&spec("twilio/twilio_api_v2010.CreateMessage.json"), "Twilio", "Twilio_API", &options)
            .unwrap();
    let operation = &service.operations["CreateMessage"];
    assert_eq!(operation.path, "/2010-04-01/Accounts/{AccountSid}/Messages.json");
    let body = operation.body.as_ref().unwrap();
    assert_eq!(body.encoding, BodyEncoding::Form);
    assert_eq!(body.content_type, "application/x-www-form-urlencoded");
    let fields = service.body_properties(operation).unwrap();
    for field in ["To", "From", "Body", "MessagingServiceSid", "StatusCallback"] {
        assert!(fields.properties.contains_key(field), "{field}");
    }
    assert!(fields.properties["To"].required);
    assert_eq!(service.servers[0].url, "https://api.twilio.com");
    assert!(matches!(operation.responses[0].shape, Some(Shape::Object { .. })));
    assert_eq!(operation.responses[0].status, "201");
}

#[test]
fn vonage_sms_imports_with_a_form_body_and_credentials_in_it() {
    let service = import_all("vonage/sms.json", "VonageSMS");
    let operation = &service.operations["send-an-sms"];
    assert_eq!(operation.path, "/{format}");
    assert_eq!(operation.parameters[0].name, "format");
    assert_eq!(operation.parameters[0].constraints.enum_values, ["json", "xml"]);
    let body = operation.body.as_ref().unwrap();
    assert_eq!(body.encoding, BodyEncoding::Form);
    assert_eq!(body.content_type, "application/x-www-form-urlencoded");
    let fields = service.body_properties(operation).unwrap();
    for field in ["api_key", "api_secret", "from", "to", "text", "client-ref", "callback", "type"] {
        assert!(fields.properties.contains_key(field), "{field}");
    }
    for required in ["api_key", "from", "to"] {
        assert!(fields.properties[required].required, "{required}");
    }
    assert_eq!(fields.properties["api_key"].constraints.max_length, Some(8));
    assert_eq!(fields.properties["to"].constraints.pattern.as_deref(), Some(r"\d{7,15}"));
    assert_eq!(service.servers[0].url, "https://rest.nexmo.com/sms");
    let statuses: Vec<&str> = operation.responses.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["200"], "one answer, success and refusal alike");
}
