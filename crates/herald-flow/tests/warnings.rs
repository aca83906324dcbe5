//! HW001: a template whose fixed text forces UCS-2 loads, with a warning that names the character and
//! points at it.

use std::path::PathBuf;

fn project(message: &str) -> Vec<(PathBuf, String)> {
    let flow = format!(
        "trigger: {{object: Lead, on: create}}\nstart: send\nelements:\n  send:\n    action: KixieService.Send_SMS\n    inputs:\n      businessid: \"{{!$Credential.Kixie_API_Auth.businessid}}\"\n      apikey: \"{{!$Credential.Kixie_API_Auth.apikey}}\"\n      target: \"{{!$Record.Phone}}\"\n      eventname: sms\n      message: \"{message}\"\n"
    );
    [
        ("herald.toml", String::new()),
        ("objects/Lead.yaml", "kind: object\nkey_prefix: 00Q\nfields:\n  LastName: {type: text, required: true}\n  Phone: {type: phone}\n".into()),
        ("credentials/Kixie_API_Auth.yaml", "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: P\n    parameters: [businessid, apikey]\n".into()),
        ("credentials/Kixie_Endpoint.yaml", "kind: named-credential\nurl: https://apig.kixie.com\nexternal_credential: Kixie_API_Auth\nallow_formulas_in_body: true\n".into()),
        ("services/KixieService.yaml", "kind: http-callout\nnamed_credential: Kixie_Endpoint\nactions:\n  Send_SMS:\n    method: POST\n    path: /app/event\n    sample_request: {businessid: s, apikey: s, target: s, eventname: s, message: s}\n".into()),
        ("flows/F.yaml", flow),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect()
}

#[test]
fn fixed_text_that_forces_ucs2_is_a_warning_at_the_character() {
    let loaded = herald_flow::load_files("/t".into(), project("Hi {!$Record.LastName}, ça va? Reply STOP"))
        .unwrap_or_else(|d| panic!("a warning must not stop loading: {d}"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert!(warning.warning);
    assert_eq!(warning.code, "HW001");
    assert_eq!(warning.file, PathBuf::from("flows/F.yaml"));
    // `      message: "` is 16 columns; the fixed text before `ç` is `Hi `, the merge field, `, `.
    assert_eq!((warning.line, warning.column), (11, 17 + "Hi {!$Record.LastName}, ".len()));
    assert!(warning.message.contains("'ç' (U+00E7)"), "{}", warning.message);
    assert!(warning.to_string().contains("warning[HW001]"), "{warning}");
}

#[test]
fn merge_fields_and_gsm7_text_raise_no_warning() {
    // The merge field may hold anything; only the fixed text is judged at load time.
    let loaded =
        herald_flow::load_files("/t".into(), project("Hi {!$Record.LastName}! Reply STOP {}[]~")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn an_unknown_default_country_is_an_error_at_load() {
    let mut files = project("Hi");
    files[0].1 = "[runtime]\ndefault_country = \"ZZ\"\n".into();
    let problems = herald_flow::load_files("/t".into(), files).expect_err("ZZ is no country");
    let problem = problems.iter().find(|d| d.code == "HP028").unwrap_or_else(|| panic!("{problems}"));
    assert!(problem.message.contains("default_country"), "{problem}");
}

#[test]
fn a_database_url_that_is_not_postgresql_is_an_error_at_load_that_does_not_repeat_it() {
    let mut files = project("Hi");
    files[0].1 = "[database]\nurl = \"mysql://admin:hunter2@db/herald\"\n".into();
    let problems = herald_flow::load_files("/t".into(), files.clone()).expect_err("only PostgreSQL URLs");
    let problem = problems.iter().find(|d| d.code == "HP035").unwrap_or_else(|| panic!("{problems}"));
    assert_eq!(problem.line, 2, "{problem}");
    assert!(!problems.to_string().contains("hunter2"), "the URL may hold a password: {problems}");

    files[0].1 = "[database]\nurl = \"postgres://herald@db.internal:5432/herald\"\n".into();
    let loaded = herald_flow::load_files("/t".into(), files).unwrap();
    assert_eq!(
        loaded.project.config.database.url.as_deref(),
        Some("postgres://herald@db.internal:5432/herald")
    );
}

fn example(name: &str) -> herald_flow::CompiledProject {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    herald_flow::load(&dir).unwrap_or_else(|d| panic!("examples/{name} must load: {d}"))
}

#[test]
fn the_seed_chat_apps_spec_is_warned_where_it_spells_8x8_s_enum_otherwise() {
    let loaded = example("8x8-whatsapp-otp");
    let spec = PathBuf::from("services/CPaaSMessagingApps.openapi.json");
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.code == "HW003" && w.message.contains("`Template`"))
        .unwrap_or_else(|| panic!("{:#?}", loaded.warnings));
    assert!(warning.warning);
    assert_eq!(warning.file, spec);
    // The first value of `content-type`'s enum, `"Text"`, in the pasted spec.
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/8x8-whatsapp-otp").join(&spec),
    )
    .unwrap();
    let line = text.lines().position(|l| l.trim() == "\"Text\",").unwrap() + 1;
    assert_eq!(warning.line, line, "{warning}");
    assert!(warning.message.contains("are spelled `text`"), "{warning}");
    assert!(warning.message.contains("`template`"), "{warning}");
    assert!(warning.message.contains("business_messaging_api.json"), "{warning}");
    assert!(warning.to_string().contains("8x8 Chat Apps documents `text`"), "{warning}");
    // 8x8 requires `channel` in each channel override; the pasted spec makes it optional.
    assert!(loaded.warnings.iter().any(|w| w.code == "HW004" && w.message.contains("`channels[].channel`")));
}

#[test]
fn examples_on_the_providers_own_specs_load_without_warnings() {
    // Their specs are the published ones, or (seed 001) a faithful subset of them.
    for name in ["8x8-sms", "8x8-sms-official", "8x8-bulk", "twilio-sms", "vonage-sms", "kixie-welcome-sms"] {
        let loaded = example(name);
        assert!(loaded.warnings.is_empty(), "examples/{name}: {:#?}", loaded.warnings);
    }
}

#[test]
fn a_type_changed_or_a_required_field_dropped_from_vonage_s_spec_is_warned_at_its_place() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/vonage-sms");
    let (files, problems) = herald_project::read_dir(&dir);
    assert!(problems.is_empty(), "{problems}");
    let spec_path = PathBuf::from("services/VonageSMS.openapi.json");
    let mut files = files.unwrap();
    let spec = &mut files.iter_mut().find(|(path, _)| *path == spec_path).unwrap().1;
    let ttl = "\"minimum\":20000,\"type\":\"integer\"";
    assert!(spec.contains(ttl) && spec.contains("\"required\":[\"api_key\",\"from\",\"to\"]"));
    *spec = spec
        .replace(ttl, "\"minimum\":20000,\"type\":\"string\"")
        .replace("\"required\":[\"api_key\",\"from\",\"to\"]", "\"required\":[\"api_key\",\"to\"]");
    let text = spec.clone();
    let loaded =
        herald_flow::load_files(dir, files).unwrap_or_else(|d| panic!("warnings do not stop loading: {d}"));
    let at = |warning: &herald_project::Diagnostic| {
        let line = text.lines().nth(warning.line - 1).unwrap();
        line.chars().skip(warning.column - 1).take(40).collect::<String>()
    };
    let changed = loaded
        .warnings
        .iter()
        .find(|w| w.code == "HW005")
        .unwrap_or_else(|| panic!("{:#?}", loaded.warnings));
    assert_eq!(changed.file, spec_path);
    assert!(
        changed
            .message
            .contains("`ttl` is of type `string` here; the provider's published spec documents `integer`"),
        "{changed}"
    );
    assert!(at(changed).starts_with("\"type\":\"string\""), "points at the type: {}", at(changed));
    let dropped = loaded
        .warnings
        .iter()
        .find(|w| w.code == "HW004")
        .unwrap_or_else(|| panic!("{:#?}", loaded.warnings));
    assert!(
        dropped.message.contains("`from` is optional here, but the provider's published spec requires it"),
        "{dropped}"
    );
    assert!(dropped.to_string().contains("Vonage SMS documents `from` as required"), "{dropped}");
    assert_eq!(loaded.warnings.len(), 2, "nothing else differs: {:#?}", loaded.warnings);
}

#[test]
fn a_text_template_sent_as_an_sms_is_judged_by_its_own_text_at_its_line() {
    let mut files = project("{!Welcome}");
    files[5].1.push_str("text_templates:\n  Welcome:\n    text: \"Hi {!$Record.LastName}, ça va?\"\n");
    let loaded = herald_flow::load_files("/t".into(), files).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert_eq!(warning.code, "HW001");
    // `    text: "` is 11 columns; `ç` follows `Hi {!$Record.LastName}, `.
    assert_eq!((warning.line, warning.column), (14, 12 + "Hi {!$Record.LastName}, ".len()), "{warning}");
}
