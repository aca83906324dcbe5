//! What an attacker or a careless admin can put in a project folder: links to secrets, special files,
//! huge or deeply nested files, headers that would reframe a request. Each is refused with a clear
//! diagnostic, and nothing of a refused file ever appears in one.

use herald_project::{Diagnostics, load_dir, load_files};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "c2VjcmV0LW1hc3Rlci1rZXktdGhhdC1tdXN0LW5vdC1sZWFr";

const CREDENTIAL: &str =
    "kind: external-credential\nprotocol: custom\nprincipals:\n  - name: P\n    parameters: [apikey]\n";
const ENDPOINT: &str = "kind: named-credential\nurl: https://api.example.com\nexternal_credential: Auth\n";

/// A small valid project on disk, with a master key file beside it as `herald credential set` leaves it.
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("P");
    for (path, text) in [
        ("herald.toml", ""),
        ("herald.key", SECRET),
        ("objects/Lead.yaml", "kind: object\nfields:\n  LastName: {type: text}\n"),
        ("credentials/Auth.yaml", CREDENTIAL),
        ("credentials/Endpoint.yaml", ENDPOINT),
        ("flows/.keep", ""),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    (dir, root)
}

/// Loads the folder on another thread, so that a loader that blocks (on a FIFO) fails the test instead
/// of hanging it.
fn load(root: &Path) -> Diagnostics {
    let root = root.to_path_buf();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(load_dir(&root).1);
    });
    receiver.recv_timeout(Duration::from_secs(120)).expect("the loader returns")
}

fn find<'a>(diagnostics: &'a Diagnostics, code: &str, file: &str) -> &'a herald_project::Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.code == code && d.file == Path::new(file))
        .unwrap_or_else(|| panic!("no {code} for {file} in:\n{diagnostics}"))
}

fn assert_secret_absent(diagnostics: &Diagnostics) {
    let text = diagnostics.to_string();
    assert!(!text.contains(SECRET) && !text.contains(&SECRET[..20]), "a refused file leaked:\n{text}");
}

#[test]
fn the_example_project_shape_loads_without_problems() {
    let (_dir, root) = project();
    let diagnostics = load(&root);
    assert!(diagnostics.is_empty(), "{diagnostics}");
}

#[cfg(unix)]
#[test]
fn a_link_to_the_master_key_inside_the_project_is_refused_unread() {
    let (_dir, root) = project();
    std::os::unix::fs::symlink("../herald.key", root.join("flows/Key.yaml")).unwrap();
    let diagnostics = load(&root);
    let refused = find(&diagnostics, "HP029", "flows/Key.yaml");
    assert!(refused.message.contains("link to herald.key, which is not a project file"), "{refused}");
    assert_eq!(diagnostics.len(), 1, "{diagnostics}");
    assert_secret_absent(&diagnostics);
}

#[cfg(unix)]
#[test]
fn a_link_that_leaves_the_project_is_refused_unread() {
    let (dir, root) = project();
    let outside = dir.path().join("passwd");
    std::fs::write(&outside, format!("root:x:0:0:{SECRET}:/root:/bin/bash\n")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("flows/Passwd.yaml")).unwrap();
    std::os::unix::fs::symlink("../../passwd", root.join("objects/Task.yaml")).unwrap();
    let diagnostics = load(&root);
    for file in ["flows/Passwd.yaml", "objects/Task.yaml"] {
        let refused = find(&diagnostics, "HP029", file);
        assert!(refused.message.contains("leads outside the project folder"), "{refused}");
        assert!(refused.hint.as_deref().unwrap().contains("replace the link with the file itself"));
    }
    assert_secret_absent(&diagnostics);
}

#[cfg(unix)]
#[test]
fn a_linked_folder_that_leaves_the_project_is_refused_as_a_whole() {
    let (dir, root) = project();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("Webhook.yaml"), SECRET).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("webhooks")).unwrap();
    let diagnostics = load(&root);
    let refused = find(&diagnostics, "HP029", "webhooks");
    assert!(refused.message.contains("the folder webhooks/ is a link"), "{refused}");
    assert_secret_absent(&diagnostics);
}

#[cfg(unix)]
#[test]
fn a_link_to_another_project_file_is_followed() {
    let (_dir, root) = project();
    std::fs::write(root.join("objects/Contact.yaml"), "kind: object\nfields:\n  LastName: {type: text}\n")
        .unwrap();
    std::os::unix::fs::symlink("../objects/Contact.yaml", root.join("flows/Alias.yaml")).unwrap();
    let diagnostics = load(&root);
    // Followed and read: a flow file holding an object is reported for its kind, not refused.
    assert!(diagnostics.iter().all(|d| d.code != "HP029"), "{diagnostics}");
    assert!(diagnostics.iter().any(|d| d.code == "HP004" && d.file == Path::new("flows/Alias.yaml")));
}

#[cfg(unix)]
#[test]
fn a_link_to_nothing_is_reported_as_unreadable() {
    let (_dir, root) = project();
    std::os::unix::fs::symlink("Gone.yaml", root.join("flows/Dangling.yaml")).unwrap();
    let diagnostics = load(&root);
    assert!(find(&diagnostics, "HP002", "flows/Dangling.yaml").message.contains("link to nothing"));
}

#[cfg(unix)]
#[test]
fn a_fifo_in_flows_is_refused_without_being_opened() {
    let (_dir, root) = project();
    let fifo = root.join("flows/Pipe.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let diagnostics = load(&root);
    let refused = find(&diagnostics, "HP030", "flows/Pipe.yaml");
    assert!(refused.message.contains("is a FIFO (named pipe), not a regular file"), "{refused}");
    assert!(refused.message.contains("did not open it"), "{refused}");
}

#[test]
fn a_file_over_its_size_limit_is_refused_unread() {
    let (_dir, root) = project();
    let big = std::fs::File::create(root.join("flows/Big.yaml")).unwrap();
    big.set_len(herald_project::MAX_YAML_BYTES as u64 + 1).unwrap();
    let diagnostics = load(&root);
    let refused = find(&diagnostics, "HP031", "flows/Big.yaml");
    assert!(
        refused.message.contains("herald reads files of at most 2 MiB (2097152 bytes) here"),
        "{refused}"
    );
    assert!(refused.hint.as_deref().unwrap().contains("split the flow"), "{refused}");

    // In memory too (the bundled example, tests): the limit belongs to the loader, not to the disk.
    let text = format!("kind: flow\ndescription: {}\n", "x".repeat(herald_project::MAX_YAML_BYTES));
    let (_, diagnostics) =
        load_files("/m".into(), vec![("herald.toml".into(), String::new()), ("flows/F.yaml".into(), text)]);
    find(&diagnostics, "HP031", "flows/F.yaml");
}

/// The flow of finding 5: 100,000 `[` then 100,000 `]` (200 KB) once kept the YAML scanner busy for
/// minutes. It is refused at the first level past the limit, before any serde parser sees it.
#[test]
fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
    for text in [
        format!("kind: flow\ndescription: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("kind: flow\ndescription:\n  {}x\n", "- ".repeat(100_000)),
    ] {
        let (_, diagnostics) = load_files(
            "/m".into(),
            vec![("herald.toml".into(), String::new()), ("flows/Deep.yaml".into(), text)],
        );
        let refused = find(&diagnostics, "HP032", "flows/Deep.yaml");
        assert!(refused.message.contains("nests deeper than 64 levels"), "{refused}");
        assert!(refused.line >= 2, "points at the place: {refused}");
        assert_eq!(diagnostics.len(), 1, "{diagnostics}");
    }
}

/// Finding 6: 1.5 million elements (57 MB) reached 5.3 GB. A file is refused at its first node past
/// the limit, so what the loader builds stays in proportion to the limit.
#[test]
fn a_file_with_too_many_nodes_is_refused_before_it_is_parsed() {
    let mut text = String::from("kind: flow\nvariables:\n");
    for i in 0..60_000 {
        text.push_str(&format!("  v{i}: {{type: Text}}\n"));
    }
    let (_, diagnostics) = load_files(
        "/m".into(),
        vec![("herald.toml".into(), String::new()), ("flows/Wide.yaml".into(), text)],
    );
    let refused = find(&diagnostics, "HP033", "flows/Wide.yaml");
    assert!(refused.message.contains("more than 100000 keys, values and list items"), "{refused}");
    // Four nodes a line (key, mapping, key, value): the 100,001st is on line 25,001.
    assert_eq!(refused.line, 25_001, "{refused}");
}

#[test]
fn a_file_that_is_one_string_is_reported_without_its_value() {
    let (_dir, root) = project();
    // A hard link, a copy, or a key pasted by mistake: the loader may read it, but must not echo it.
    std::fs::write(root.join("flows/Key.yaml"), SECRET).unwrap();
    std::fs::write(root.join("objects/Task.yaml"), format!("kind: object\nfields: {SECRET}\n")).unwrap();
    let diagnostics = load(&root);
    let flow = find(&diagnostics, "HP003", "flows/Key.yaml");
    assert!(flow.message.contains("invalid type: string, expected"), "{flow}");
    let object = find(&diagnostics, "HP003", "objects/Task.yaml");
    assert!(object.message.contains("fields: invalid type: string, expected a map"), "{object}");
    assert_secret_absent(&diagnostics);
}

#[test]
fn a_megabyte_key_is_quoted_as_a_short_excerpt() {
    // An explicit key (`? key`), since a plain one may be at most 1024 characters.
    let key = "k".repeat(1_000_000);
    let text = format!("kind: flow\n? {key}\n: 1\n");
    let (_, diagnostics) =
        load_files("/m".into(), vec![("herald.toml".into(), String::new()), ("flows/F.yaml".into(), text)]);
    let unknown = find(&diagnostics, "HP003", "flows/F.yaml");
    assert!(unknown.message.contains("unknown field `kkkk"), "{unknown}");
    assert!(unknown.message.chars().count() < 700, "{} characters", unknown.message.chars().count());
}

#[test]
fn named_credentials_cannot_set_framing_routing_or_hop_by_hop_headers() {
    let endpoint = format!(
        "{ENDPOINT}headers:\n  X-Api-Version: '2'\n  Host: evil.example\n  transfer-encoding: chunked\n"
    );
    let (_, diagnostics) = load_files(
        "/m".into(),
        vec![
            ("herald.toml".into(), String::new()),
            ("credentials/Auth.yaml".into(), CREDENTIAL.into()),
            ("credentials/Endpoint.yaml".into(), endpoint),
        ],
    );
    let codes: Vec<(&str, usize, usize)> =
        diagnostics.iter().map(|d| (d.code.id(), d.line, d.column)).collect();
    assert_eq!(codes, [("HP034", 6, 3), ("HP034", 7, 3)], "{diagnostics}");
    let host = &diagnostics.0[0];
    assert!(
        host.message
            .contains("cannot set the header `Host`: herald sets Host from the named credential's URL"),
        "{host}"
    );
    assert_eq!(host.hint.as_deref(), Some("remove the header: herald and its HTTP client set it themselves"));
}

#[test]
fn a_spec_header_parameter_named_host_is_refused_at_its_line_in_the_spec() {
    let spec = r#"{
  "openapi": "3.0.0",
  "paths": {
    "/sms": {
      "post": {
        "operationId": "send",
        "parameters": [
          {"name": "Host", "in": "header", "schema": {"type": "string"}}
        ]
      }
    }
  }
}
"#;
    let (_, diagnostics) = load_files(
        "/m".into(),
        vec![
            ("herald.toml".into(), String::new()),
            ("credentials/Auth.yaml".into(), CREDENTIAL.into()),
            ("credentials/Endpoint.yaml".into(), ENDPOINT.into()),
            (
                "services/Svc.yaml".into(),
                "kind: external-service\nnamed_credential: Endpoint\nspec: Svc.json\n".into(),
            ),
            ("services/Svc.json".into(), spec.into()),
        ],
    );
    let refused = find(&diagnostics, "HP034", "services/Svc.json");
    assert_eq!((refused.line, refused.column), (8, 12), "{refused}");
    assert!(refused.message.contains("header parameter `Host` cannot come from a spec"), "{refused}");
}
