//! Loading never panics, whatever the files hold: every mutation of the example project either loads or
//! is reported as problems.

use proptest::prelude::*;
use std::path::PathBuf;

/// The named files of an example project, read from `examples/<name>`.
fn example_files(name: &str, relatives: &[&str]) -> Vec<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    relatives
        .iter()
        .map(|relative| (PathBuf::from(relative), std::fs::read_to_string(root.join(relative)).unwrap()))
        .collect()
}

fn example() -> Vec<(PathBuf, String)> {
    example_files(
        "kixie-welcome-sms",
        &[
            "herald.toml",
            "objects/Lead.yaml",
            "objects/Task.yaml",
            "credentials/Kixie_API_Auth.yaml",
            "credentials/Kixie_Endpoint.yaml",
            "permissions/Kixie_Integration_User.yaml",
            "services/KixieService.yaml",
            "flows/Lead_Welcome_SMS.yaml",
        ],
    )
}

/// examples/8x8-bulk, whose flow reads records and loops; its flow file comes last.
fn bulk_example() -> Vec<(PathBuf, String)> {
    example_files(
        "8x8-bulk",
        &[
            "herald.toml",
            "objects/Lead.yaml",
            "objects/Task.yaml",
            "objects/Campaign.yaml",
            "credentials/X8x8_CPaaS_Authentication.yaml",
            "credentials/X8x8_SMS_API.yaml",
            "permissions/CPaaS_API_Access.yaml",
            "services/CPaaSSMS.yaml",
            "services/sms_api.json",
            "flows/Campaign_Launch_SMS.yaml",
        ],
    )
}

fn load(files: Vec<(PathBuf, String)>) {
    match herald_flow::load_files("/fuzz".into(), files) {
        Ok(_) => {}
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            // Rendering must not panic either.
            let _ = diagnostics.to_string();
        }
    }
}

#[test]
fn the_example_loads() {
    herald_flow::load_files("/fuzz".into(), example()).unwrap();
    herald_flow::load_files("/fuzz".into(), bulk_example()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn cutting_a_file_never_panics(file in 0usize..8, start in 0usize..4000, length in 0usize..200) {
        let mut files = example();
        let text = &mut files[file].1;
        let start = start % (text.len() + 1);
        let end = (start + length).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, "");
        }
        load(files);
    }

    #[test]
    fn inserting_text_never_panics(file in 0usize..8, at in 0usize..4000, insert in "[ -~\n{}\\[\\]:!$#\"'é😀]{0,40}") {
        let mut files = example();
        let text = &mut files[file].1;
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &insert);
        load(files);
    }

    #[test]
    fn arbitrary_files_never_panic(flow in "\\PC{0,300}", object in "\\PC{0,200}") {
        let mut files = example();
        files[7].1 = flow;
        files[1].1 = object;
        load(files);
    }

    #[test]
    fn mutating_a_flow_with_get_records_and_a_loop_never_panics(
        start in 0usize..3000,
        length in 0usize..80,
        insert in "[ -~\n{}\\[\\]:!$#\"'é]{0,30}",
    ) {
        let mut files = bulk_example();
        let text = &mut files.last_mut().unwrap().1;
        let start = start % (text.len() + 1);
        let end = (start + length).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &insert);
        }
        load(files);
    }
}
