//! The CLI as a user runs it: validate, debug, demo and the small tools.

mod common;

use common::*;
use std::path::Path;

/// The 1-based line and column where `needle` first appears in `file`.
fn position(file: &Path, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(file).unwrap();
    for (number, line) in text.lines().enumerate() {
        if let Some(column) = line.find(needle) {
            return (number + 1, column + 1);
        }
    }
    panic!("{needle} not in {}", file.display());
}

#[test]
fn validate_accepts_the_example() {
    let (code, stdout, stderr) =
        herald(&["flow", "validate", example("kixie-welcome-sms").to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout
            .contains("flow Lead_Welcome_SMS on Lead Create: Send_SMS → Mark_Lead_Texted → Log_SMS_Failure"),
        "{stdout}"
    );
}

#[test]
fn validate_accepts_the_autolaunched_example() {
    let (code, stdout, stderr) = herald(&["flow", "validate", example("8x8-sms").to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("flow Send_SMS_8x8 autolaunched: Set_SMS_Body → Send_SMS"), "{stdout}");
}

#[test]
fn debug_refuses_a_record_for_an_autolaunched_flow_and_inputs_for_a_record_triggered_one() {
    let autolaunched = example("8x8-sms");
    let args = ["flow", "debug", autolaunched.to_str().unwrap(), "Send_SMS_8x8", "--record", "{}"];
    let (code, stdout, stderr) = herald(&args, "");
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("flow Send_SMS_8x8 is autolaunched (it has no `trigger:`): drop --record"),
        "{stderr}"
    );

    let triggered = example("8x8-sms");
    let args = ["flow", "debug", triggered.to_str().unwrap(), "Lead_Welcome_SMS_8x8"];
    let (code, _, stderr) = herald(&args, "");
    assert_ne!(code, 0);
    assert!(
        stderr.contains(
            "flow Lead_Welcome_SMS_8x8 is triggered by a Lead record: give the record with --record"
        ),
        "{stderr}"
    );

    let args = [
        "flow",
        "debug",
        triggered.to_str().unwrap(),
        "Lead_Welcome_SMS_8x8",
        "--record",
        "{}",
        "--input",
        "a=1",
    ];
    let (code, _, stderr) = herald(&args, "");
    assert_ne!(code, 0);
    assert!(stderr.contains("--input is for autolaunched flows"), "{stderr}");

    let args = ["flow", "debug", autolaunched.to_str().unwrap(), "Send_SMS_8x8", "--input", "text"];
    let (code, _, stderr) = herald(&args, "");
    assert_ne!(code, 0);
    assert!(stderr.contains("--input text: write NAME=VALUE"), "{stderr}");
}

#[test]
fn debug_names_the_input_that_does_not_fit_before_anything_is_sent() {
    let h = Harness::example("8x8-sms").no_server().start();
    // `5` is valid JSON, so it is a number, not text.
    let (code, stdout, stderr) = h.flow_debug_inputs("Send_SMS_8x8", &["text=5", "recipent=+6598765432"]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("input `text` (Text): expected Text (a JSON string), found the number 5; to give it as text, quote it as JSON: \"5\""),
        "{stderr}"
    );
    assert!(stderr.contains("no variable `recipent`; did you mean `recipient`?"), "{stderr}");
    assert!(!stdout.contains("All done."), "{stdout}");
}

#[test]
fn validate_reports_every_problem_of_a_broken_project_with_file_line_and_column() {
    let project = ProjectCopy::of("kixie-welcome-sms");
    let (flow, endpoint) = ("flows/Lead_Welcome_SMS.yaml", "credentials/Kixie_Endpoint.yaml");
    project.replace(flow, "target: \"{!$Record.Phone}\"", "target: \"{!$Record.Phne}\"");
    project.replace(flow, "fault: Log_SMS_Failure", "fault: Log_SMS_Failur");
    project.replace(flow, "      WhoId:", "      WhoIdd:");
    project.replace(endpoint, "external_credential: Kixie_API_Auth", "external_credential: Kixie_API_Aut");
    let (flow, endpoint) = (project.file(flow), project.file(endpoint));

    let (code, stdout, stderr) = herald(&["flow", "validate", project.path().to_str().unwrap()], "");
    assert_ne!(code, 0, "a broken project must fail: {stdout}");
    let root = project.path().display().to_string();

    let (line, column) = position(&flow, "{!$Record.Phne}");
    // The column points at `$Record.Phne` inside the quoted template.
    let expected = format!("{root}/flows/Lead_Welcome_SMS.yaml:{line}:{}:", column + 2);
    assert!(stderr.contains(&expected), "expected {expected} in:\n{stderr}");
    assert!(stderr.contains("Lead has no field `Phne`; did you mean `Phone`?"), "{stderr}");

    let (fault_line, fault_column) = position(&flow, "Log_SMS_Failur");
    assert!(
        stderr.contains(&format!("flows/Lead_Welcome_SMS.yaml:{fault_line}:{fault_column}: error[HF006]: no element named `Log_SMS_Failur`")),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `Log_SMS_Failure`?"), "{stderr}");

    let (line, column) = position(&flow, "WhoIdd");
    assert!(
        stderr.contains(&format!(
            "flows/Lead_Welcome_SMS.yaml:{line}:{column}: error[HF020]: Task has no writable field `WhoIdd`"
        )),
        "{stderr}"
    );

    let (line, column) = position(&endpoint, "Kixie_API_Aut");
    assert!(
        stderr.contains(&format!("credentials/Kixie_Endpoint.yaml:{line}:{column}: error[HP016]: unknown external credential `Kixie_API_Aut`")),
        "{stderr}"
    );
    assert!(stderr.contains("problems found; the project was not loaded."), "{stderr}");
}

#[test]
fn validate_reports_yaml_and_schema_errors_with_positions() {
    let project = ProjectCopy::of("kixie-welcome-sms");
    let flow = "flows/Lead_Welcome_SMS.yaml";
    project.replace(flow, "    action: KixieService.Send_SMS", "    actoin: KixieService.Send_SMS");
    project.replace(
        "objects/Lead.yaml",
        "  Phone: {type: phone, length: 40}",
        "  Phone: {type: phone, length: 40",
    );
    let (code, _, stderr) = herald(&["flow", "validate", project.path().to_str().unwrap()], "");
    assert_ne!(code, 0);
    let (line, column) = position(&project.file(flow), "actoin");
    assert!(
        stderr.contains(&format!("flows/Lead_Welcome_SMS.yaml:{line}:{column}: error[HP003]: ")),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `actoin`"), "{stderr}");
    assert!(stderr.contains("hint: did you mean `action`?"), "{stderr}");
    assert!(stderr.contains("objects/Lead.yaml:"), "{stderr}");
}

#[test]
fn a_folder_without_herald_toml_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = herald(&["flow", "validate", dir.path().to_str().unwrap()], "");
    assert_ne!(code, 0);
    assert!(stderr.contains("is not a herald project: it has no herald.toml"), "{stderr}");
}

#[test]
fn the_demo_runs_end_to_end() {
    let (code, stdout, stderr) = herald(&["demo"], "");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("All done: 3 leads texted, 1 skipped (blank phone), 1 refused and logged as a Task."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Subject: SMS failed: KixieService.Send_SMS was not sent: the destination `12`"),
        "{stdout}"
    );
    assert!(stdout.contains("\"target\": \"+14155550101\""), "a typed number goes out in E.164: {stdout}");
    assert!(stdout.contains("200 texted"), "{stdout}");
    for secret in ["demo-business-2149", "demo-apikey-7f3a9c41"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "the demo printed a secret");
    }
}

#[test]
fn debug_runs_the_flow_once_and_ends_with_all_done() {
    let h = Harness::example("kixie-welcome-sms").sandbox_account().no_server().start();
    let record = r#"{"FirstName":"Ada","LastName":"Lovelace","Phone":"+14155550100"}"#;
    let (code, stdout, stderr) = h.flow_debug("Lead_Welcome_SMS", record);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1. Send SMS (Action: Send_SMS)"), "{stdout}");
    assert!(stdout.contains("apikey = ••••••"), "{stdout}");
    assert!(stdout.contains("message = Hi Ada, thanks for reaching out! Reply STOP to opt out."), "{stdout}");
    assert!(stdout.contains("responseCode = 200"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    assert!(!stdout.contains("sandbox-apikey"), "{stdout}");

    let (code, stdout, _) = h.flow_debug("Lead_Welcome_SMS", r#"{"LastName":"NoPhone"}"#);
    assert_eq!(code, 0);
    assert!(stdout.contains("does not meet the entry condition"), "{stdout}");
}

#[test]
fn debug_without_credentials_shows_the_fault_then_the_task() {
    let h = Harness::example("kixie-welcome-sms").no_server().start();
    let record = r#"{"FirstName":"Ada","LastName":"Lovelace","Phone":"+14155550100"}"#;
    let (code, stdout, stderr) = h.flow_debug("Lead_Welcome_SMS", record);
    assert_eq!(code, 0, "the fault path handles it: {stdout}{stderr}");
    assert!(
        stdout.contains(
            "Fault: input `businessid` of KixieService.Send_SMS needs the credential parameter `businessid`, which has no value"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("2. Log SMS Failure (Create Records: Log_SMS_Failure)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
}

#[test]
fn credential_set_refuses_unknown_names_and_empty_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let project = example("kixie-welcome-sms");
    let base = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let mut args = vec!["credential", "set", "Kixie_API_Auth", "Kixie_Principal", "apikye"];
    args.extend(base);
    let (code, _, stderr) = herald(&args, "secret-value");
    assert_ne!(code, 0);
    assert!(stderr.contains("has no parameter `apikye`; its parameters are: businessid, apikey"), "{stderr}");
    assert!(!stderr.contains("secret-value"));
    let mut args = vec!["credential", "set", "Kixie_API_Auth", "Kixie_Principal", "apikey"];
    args.extend(base);
    let (code, _, stderr) = herald(&args, "\n");
    assert_ne!(code, 0);
    assert!(stderr.contains("no value on standard input"), "{stderr}");
}

#[test]
fn formula_sms_and_phone_tools_print_one_json_line() {
    let (code, stdout, _) = herald(
        &["formula", "eval", "\"Hi \" & UPPER({!$Record.FirstName})", "--record", r#"{"FirstName":"ada"}"#],
        "",
    );
    assert_eq!((code, stdout.trim()), (0, r#"{"type":"Text","value":"Hi ADA"}"#));
    let (code, _, stderr) = herald(&["formula", "eval", "IF(true, 1)"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("IF expects 3 arguments, got 2"), "{stderr}");

    let (code, stdout, _) = herald(&["sms", "inspect", "Hello"], "");
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(info["encoding"], "GSM7");
    assert_eq!(info["segments"], 1);
    assert_eq!(info["units"], 5);

    let (code, stdout, _) = herald(&["phone", "normalize", "(415) 555-0100", "--country", "US"], "");
    assert_eq!((code, stdout.trim()), (0, r#"{"e164":"+14155550100"}"#));
    let (code, _, stderr) = herald(&["phone", "normalize", "555-0100"], "");
    assert_eq!(code, 2);
    assert!(!stderr.is_empty());
}

#[test]
fn free_text_arguments_may_start_with_a_minus() {
    let (code, stdout, stderr) = herald(&["formula", "eval", "-3 + 1"], "");
    assert_eq!((code, stdout.trim()), (0, r#"{"type":"Number","value":-2}"#), "{stderr}");
    let (code, stdout, stderr) = herald(&["formula", "eval", "-n", "--var", "n=5"], "");
    assert_eq!((code, stdout.trim()), (0, r#"{"type":"Number","value":-5}"#), "{stderr}");

    let (code, stdout, stderr) = herald(&["sms", "inspect", "-fine print"], "");
    assert_eq!(code, 0, "{stderr}");
    let info: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(info["units"], 11, "the minus is part of the text: {stdout}");

    // A text that is exactly a flag's name still needs `--`, as with any Unix tool.
    let (code, stdout, stderr) = herald(&["sms", "inspect", "--", "--help"], "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""units":6"#), "{stdout}");
}

#[test]
fn a_mistyped_user_name_gets_the_closest_user_instead_of_an_offer_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let project = example("kixie-welcome-sms");
    let location = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let mut add = vec!["user", "add", "webform", "--permission-set", "Herald_API_User"];
    add.extend(location);
    let (code, _, stderr) = herald(&add, "");
    assert_eq!(code, 0, "{stderr}");
    let project_dir = project.to_str().unwrap();
    let record = r#"{"LastName":"Ng","Phone":"+14155550100"}"#;
    let commands: [Vec<&str>; 3] = [
        vec!["token", "create", "webfrom"],
        vec!["user", "deactivate", "webfrom"],
        vec!["flow", "debug", project_dir, "Lead_Welcome_SMS", "--record", record, "--as", "webfrom"],
    ];
    for command in commands {
        let mut args = command.clone();
        if command[0] == "flow" {
            args.extend(["--db", db.to_str().unwrap()]);
        } else {
            args.extend(location);
        }
        let (code, _, stderr) = herald(&args, "");
        assert_ne!(code, 0, "{command:?}");
        assert!(stderr.contains("no user named `webfrom`; did you mean `webform`?"), "{command:?}: {stderr}");
        assert!(!stderr.contains("herald user add"), "{command:?}: {stderr}");
    }
    // A name like no user's still says how to create it.
    let (code, _, stderr) = herald(&[&["token", "create", "crm-sync"][..], &location].concat(), "");
    assert_ne!(code, 0);
    assert!(
        stderr.contains(
            "no user named `crm-sync`; create it with `herald user add crm-sync --permission-set ...`"
        ),
        "{stderr}"
    );
}

#[test]
fn runs_commands_explain_unknown_statuses_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let project = example("kixie-welcome-sms");
    let location = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let (code, _, stderr) = herald(&[&["runs", "list"][..], &location].concat(), "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no runs"), "{stderr}");
    let (code, _, stderr) = herald(&[&["runs", "list", "--status", "stuck"][..], &location].concat(), "");
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown run status `stuck`") && stderr.contains("waiting"), "{stderr}");
    let (code, _, stderr) = herald(&[&["runs", "retry", "run_nope"][..], &location].concat(), "");
    assert_ne!(code, 0);
    assert!(stderr.contains("no run with id run_nope"), "{stderr}");
    let (code, _, stderr) = herald(&[&["webhook", "secret", "Kixie_Event"][..], &location].concat(), "");
    assert_ne!(code, 0);
    assert!(stderr.contains("no webhook named `Kixie_Event`") && stderr.contains("Kixie_Events"), "{stderr}");
}

fn services_listing(project: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.join("services"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Finding 8: an import naming an unknown credential printed "Wrote…", exited 0 and left a project
/// that no longer loaded (HP016).
#[test]
fn service_import_that_would_break_the_project_writes_nothing_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("8x8-sms"), &project);
    let spec = dir.path().join("ok.json");
    std::fs::copy(project.join("services/CPaaSSMS.openapi.json"), &spec).unwrap();
    let before = services_listing(&project);
    let args = ["service", "import", spec.to_str().unwrap(), "--name", "Svc2", "--credential", "Nope"];
    let (code, stdout, stderr) = herald(&[&args[..], &["--project", project.to_str().unwrap()]].concat(), "");
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("Wrote"), "{stdout}");
    assert!(
        stderr.contains("services/Svc2.yaml:2:19: error[HP016]: unknown named credential `Nope`"),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was written"), "{stderr}");
    assert_eq!(services_listing(&project), before, "the folder is untouched");
    let (code, _, stderr) = herald(&["flow", "validate", project.to_str().unwrap()], "");
    assert_eq!(code, 0, "the project still loads: {stderr}");
}

#[test]
fn service_import_writes_both_files_whole_and_the_project_loads() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("8x8-sms"), &project);
    let spec = dir.path().join("ok.json");
    std::fs::copy(project.join("services/CPaaSSMS.openapi.json"), &spec).unwrap();
    let (code, stdout, stderr) = herald(
        &[
            "service",
            "import",
            spec.to_str().unwrap(),
            "--name",
            "Svc2",
            "--credential",
            "X8x8_SMS_API",
            "--operation",
            "Send-Sms-Single",
            "--project",
            project.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("Wrote services/Svc2.yaml and services/Svc2.openapi.json:"), "{stdout}");
    let written = std::fs::read_to_string(project.join("services/Svc2.yaml")).unwrap();
    assert!(written.contains("operations: [\"Send-Sms-Single\"]"), "{written}");
    assert_eq!(
        std::fs::read(project.join("services/Svc2.openapi.json")).unwrap(),
        std::fs::read(&spec).unwrap()
    );
    let listing = services_listing(&project);
    assert!(listing.iter().all(|name| !name.ends_with(".tmp")), "no temporary file is left: {listing:?}");
    let (code, _, stderr) = herald(&["flow", "validate", project.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_spec_with_a_host_header_parameter_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("8x8-sms"), &project);
    let spec = dir.path().join("host.json");
    let text = "{\n  \"openapi\": \"3.0.0\",\n  \"paths\": {\"/sms\": {\"post\": {\"operationId\": \"send\",\n    \"parameters\": [{\"name\": \"Host\", \"in\": \"header\"}]}}}\n}\n";
    std::fs::write(&spec, text).unwrap();
    let before = services_listing(&project);
    let (code, _, stderr) = herald(
        &[
            "service",
            "import",
            spec.to_str().unwrap(),
            "--name",
            "Evil",
            "--credential",
            "X8x8_SMS_API",
            "--project",
            project.to_str().unwrap(),
        ],
        "",
    );
    assert_ne!(code, 0);
    let expected = format!(
        "{}:4:21: error[HP034]: `#/paths/~1sms/post/parameters/0/name`: header parameter `Host` cannot come from a spec",
        spec.display()
    );
    assert!(stderr.contains(&expected), "expected {expected} in:\n{stderr}");
    assert_eq!(services_listing(&project), before);
}

/// Finding 2: with the master key file beside the database, a link `flows/Key.yaml -> ../herald.key`
/// made every command that loads the project print the key inside a parse error.
#[cfg(unix)]
#[test]
fn a_link_to_the_master_key_is_refused_by_every_command_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("kixie-welcome-sms"), &project);
    let p = project.to_str().unwrap();
    let (code, _, stderr) = herald(
        &["credential", "set", "Kixie_API_Auth", "Kixie_Principal", "apikey", "--project", p],
        "a-secret-apikey",
    );
    assert_eq!(code, 0, "{stderr}");
    let key = std::fs::read_to_string(project.join("herald.key")).expect("the key file beside the database");
    let key = key.trim();
    assert!(key.len() >= 32, "{key}");
    std::os::unix::fs::symlink("../herald.key", project.join("flows/Key.yaml")).unwrap();
    for args in [
        vec!["flow", "validate", p],
        vec!["serve", "--project", p, "--listen", "127.0.0.1:0"],
        vec!["user", "list", "--project", p],
        vec!["runs", "list", "--project", p],
    ] {
        let (code, stdout, stderr) = herald(&args, "");
        assert_ne!(code, 0, "{args:?}: {stdout}");
        assert!(
            stderr.contains("flows/Key.yaml: error[HP029]: the file is a link to herald.key"),
            "{args:?}: {stderr}"
        );
        assert!(!stdout.contains(key) && !stderr.contains(key), "{args:?} printed the master key");
    }
}

#[test]
fn service_import_of_a_spec_that_contradicts_the_provider_s_writes_it_and_shows_the_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    copy_project(&example("8x8-whatsapp-otp"), &project);
    let spec = dir.path().join("seed.json");
    std::fs::copy(project.join("services/CPaaSMessagingApps.openapi.json"), &spec).unwrap();
    let (code, stdout, stderr) = herald(
        &[
            "service",
            "import",
            spec.to_str().unwrap(),
            "--name",
            "Chat2",
            "--credential",
            "X8x8_Messaging_API",
            "--operation",
            "Send-Message",
            "--project",
            project.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "a warning does not refuse the import: {stdout}{stderr}");
    assert!(stdout.starts_with("Wrote services/Chat2.yaml and services/Chat2.openapi.json:"), "{stdout}");
    let warning = format!("{}/services/Chat2.openapi.json:295:11: warning[HW003]", project.display());
    assert!(stderr.contains(&warning), "expected {warning} in:\n{stderr}");
    assert!(stderr.contains("8x8 Chat Apps documents `text`"), "{stderr}");
}

#[test]
fn a_console_password_is_read_from_standard_input_and_never_printed_and_an_empty_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let project = example("kixie-welcome-sms");
    let location = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let (code, _, stderr) =
        herald(&[&["user", "add", "ada", "--permission-set", "Herald_API_User"][..], &location].concat(), "");
    assert_eq!(code, 0, "{stderr}");

    let set = [&["user", "password", "ada"][..], &location].concat();
    let (code, stdout, stderr) = herald(&set, "Tr0ub4dor&3\n");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Set the console password of ada"), "{stdout}");
    assert!(!format!("{stdout}{stderr}").contains("Tr0ub4dor"), "the password is never printed");

    let (code, _, stderr) = herald(&set, "\n");
    assert_ne!(code, 0);
    assert!(stderr.contains("the password is empty"), "{stderr}");

    let (code, _, stderr) = herald(&[&["user", "password", "adda"][..], &location].concat(), "secret\n");
    assert_ne!(code, 0);
    assert!(stderr.contains("no user named `adda`; did you mean `ada`?"), "{stderr}");
}

#[test]
fn a_token_is_listed_by_its_id_and_revoked_once_by_it_without_ever_printing_the_token_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let project = example("kixie-welcome-sms");
    let location = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let (code, _, stderr) =
        herald(&[&["user", "add", "ada", "--permission-set", "Herald_API_User"][..], &location].concat(), "");
    assert_eq!(code, 0, "{stderr}");
    let (code, token, stderr) = herald(&[&["token", "create", "ada"][..], &location].concat(), "");
    assert_eq!(code, 0, "{stderr}");
    let token = token.trim().to_string();
    let id = stderr
        .split_whitespace()
        .find(|word| word.starts_with("tok_"))
        .expect("the id on stderr")
        .to_string();

    let list = [&["token", "list", "ada"][..], &location].concat();
    let (code, listed, stderr) = herald(&list, "");
    assert_eq!(code, 0, "{stderr}");
    assert!(listed.contains(&id) && listed.contains("active"), "{listed}");

    let revoke = [&["token", "revoke", &id][..], &location].concat();
    let (code, stdout, stderr) = herald(&revoke, "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("Revoked {id}")), "{stdout}");
    let (_, listed, _) = herald(&list, "");
    assert!(listed.contains(&format!("{id}  created ")) && listed.contains("revoked 20"), "{listed}");
    assert!(!listed.contains(&token), "a listing never shows a token");

    let (code, _, stderr) = herald(&revoke, "");
    assert_ne!(code, 0, "a token is revoked once");
    assert!(stderr.contains(&format!("no API token `{id}` that is not revoked")), "{stderr}");
    let (code, _, stderr) = herald(&[&["token", "list", "adda"][..], &location].concat(), "");
    assert_ne!(code, 0);
    assert!(stderr.contains("no user named `adda`; did you mean `ada`?"), "{stderr}");
}
