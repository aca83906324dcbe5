//! `herald flow run`: an autolaunched flow run on a served project through the REST route, with the
//! server and token from the environment.

mod common;

use common::*;
use std::process::Command;

const KEY: &str = "sandbox-8x8-key";

/// `herald flow run ARGS` with HERALD_URL and HERALD_TOKEN set (the token only when given).
fn flow_run(url: &str, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(HERALD);
    command.args(["flow", "run"]).args(args).env("HERALD_URL", url).env_remove("HERALD_TOKEN");
    if let Some(token) = token {
        command.env("HERALD_TOKEN", token);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_run_invokes_the_served_autolaunched_flow_and_fails_loudly_when_it_does_not_succeed() {
    let h = tokio::task::spawn_blocking(|| {
        Harness::example("8x8-sms")
            .credential(
                ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
                &format!("Bearer {KEY}"),
            )
            .start()
    })
    .await
    .unwrap();
    let token = h.add_user("flowclient", &["Flow_Runner", "CPaaS_API_Access"]);
    let url = h.server_url();

    let (code, stdout, stderr) = flow_run(
        &url,
        Some(&token),
        &["Send_SMS_8x8", "--input", "recipient=+6598765432", "--input", "text=Hi"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Output variables:"), "{stdout}");
    assert!(stdout.contains("responseCode = 200"), "{stdout}");
    assert!(stdout.trim_end().ends_with("All done."), "{stdout}");
    let requests = h.sandbox_requests().await;
    assert_eq!(requests.len(), 1, "one SMS request reached the sandbox");
    assert!(requests[0].to_string().contains("+6598765432"), "{}", requests[0]);

    // An input of the wrong type: 400 from the server, its message shown, nothing sent.
    let (code, _, stderr) = flow_run(&url, Some(&token), &["Send_SMS_8x8", "--input", "recipient=[1,2]"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("INVALID_INPUT") && stderr.contains("recipient"), "{stderr}");
    assert_eq!(h.sandbox_requests().await.len(), 1);

    // The provider refuses (a wrong key): isSuccess false, the error printed, exit 1.
    h.sandbox_put("/_sandbox/faults/sms.8x8.com", &serde_json::json!({"error_rate": 1.0})).await;
    let (code, stdout, stderr) = flow_run(&url, Some(&token), &["Send_SMS_8x8"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("The flow failed."), "{stdout}");
    assert!(stderr.contains("FLOW_FAILED"), "{stderr}");

    let (code, _, stderr) = flow_run(&url, None, &["Send_SMS_8x8"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("HERALD_TOKEN is not set"), "{stderr}");
    let (code, _, stderr) = flow_run(&url, Some("hrld_not_a_token"), &["Send_SMS_8x8"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("INVALID_SESSION_ID") && stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains("hrld_not_a_token"), "the token is never printed: {stderr}");
}
