//! Live changes to a served project: `herald reload` and SIGHUP swap in a changed folder once it
//! loads, refuse a broken one while the old version keeps serving, and every run stays on the
//! project version it started on, across a reload and a restart.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const FLOW: &str = "flows/Lead_Welcome_SMS.yaml";
const V1_TEXT: &str = "Hi {!$Record.FirstName}, thanks for reaching out! Reply STOP to opt out.";
const V2_TEXT: &str = "Version two says hello to {!$Record.FirstName}.";

/// `herald reload` against the harness's server, with a token of a user allowed to manage flows.
fn reload(h: &Harness, token: &str) -> (i32, String, String) {
    let output = Command::new(HERALD)
        .args(["reload", "--url", &h.server_url()])
        .env("HERALD_TOKEN", token)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    h.keep("herald reload", &format!("{stdout}{stderr}"));
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

/// The `message` of every request Kixie received, in order.
async fn texts(h: &Harness) -> Vec<String> {
    h.sandbox_requests()
        .await
        .iter()
        .map(|request| request.to_string())
        .map(|text| {
            if text.contains("Version two") {
                "v2".to_string()
            } else if text.contains("thanks for reaching out") {
                "v1".to_string()
            } else {
                text
            }
        })
        .collect()
}

async fn lead_run(h: &Harness, name: &str) -> String {
    let answer = h.post_lead(json!({"FirstName": name, "LastName": "Test", "Phone": "+14155550100"})).await;
    answer["runs"][0].as_str().unwrap().to_string()
}

fn setup() -> (Harness, String) {
    // Edited (even by nothing) so the harness serves a copy of the example that the test may change.
    let h = Harness::example("kixie-welcome-sms").sandbox_account().project_edit(|_| {}).start();
    let admin = h.add_user("flowadmin", &["Herald_Admin"]);
    (h, admin)
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_swaps_in_a_changed_flow_and_refuses_a_broken_one_while_the_old_keeps_serving() {
    let (h, admin) = tokio::task::spawn_blocking(setup).await.unwrap();
    assert!(h.server_output().contains("project version 1 ("), "{}", h.server_output());
    let first = lead_run(&h, "Ada").await;
    assert_eq!(h.finished_run(&first).await["version"], 1);

    let (code, stdout, _) = reload(&h, &admin);
    assert_eq!(code, 0);
    assert!(stdout.contains("Unchanged: the folder holds project version 1"), "{stdout}");

    std::fs::write(
        h.project().join(FLOW),
        std::fs::read_to_string(h.project().join(FLOW)).unwrap().replace(V1_TEXT, V2_TEXT),
    )
    .unwrap();
    let (code, stdout, stderr) = reload(&h, &admin);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Reloaded: new runs start on project version 2"), "{stdout}");
    let second = lead_run(&h, "Grace").await;
    let run = h.finished_run(&second).await;
    assert_eq!((run["status"].as_str(), run["version"].as_i64()), (Some("finished"), Some(2)), "{run}");
    assert_eq!(texts(&h).await, ["v1", "v2"]);

    // A broken change: refused with the diagnostics at file:line, and version 2 keeps running.
    let good = std::fs::read_to_string(h.project().join(FLOW)).unwrap();
    std::fs::write(h.project().join(FLOW), good.replace("start: Send_SMS", "start: Send_SMSS")).unwrap();
    let (code, stdout, stderr) = reload(&h, &admin);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("flows/Lead_Welcome_SMS.yaml:") && stderr.contains("Send_SMSS"), "{stderr}");
    assert!(stderr.contains("Reload refused"), "{stderr}");
    let third = lead_run(&h, "Linus").await;
    assert_eq!(h.finished_run(&third).await["version"], 2);
    assert_eq!(texts(&h).await, ["v1", "v2", "v2"]);

    // SIGHUP does the same; its outcome is in the server's output.
    let pid = h.server_pid().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    h.eventually("the refused SIGHUP reload in the log", Duration::from_secs(20), || async {
        h.server_output().contains("SIGHUP: reload refused, still running version 2").then_some(())
    })
    .await;
    std::fs::write(h.project().join(FLOW), good.replace(V2_TEXT, V1_TEXT)).unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    h.eventually("the SIGHUP reload back to the first files", Duration::from_secs(20), || async {
        h.server_output().contains("SIGHUP: project reloaded; new runs start on version 1").then_some(())
    })
    .await;
    let fourth = lead_run(&h, "Barbara").await;
    assert_eq!(h.finished_run(&fourth).await["version"], 1, "the same files are the same version");

    // A token without manage_flows may not reload.
    let reader = tokio::task::block_in_place(|| h.add_user("reader", &["Herald_API_User"]));
    let (code, _, stderr) = reload(&h, &reader);
    assert_eq!(code, 1);
    assert!(stderr.contains("INSUFFICIENT_ACCESS"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_waiting_on_version_1_resumes_on_version_1_after_a_reload_to_version_2_and_a_restart() {
    let (h, admin) = tokio::task::spawn_blocking(setup).await.unwrap();
    h.sandbox_put("/_sandbox/faults/apig.kixie.com", &json!({"error_rate": 1.0})).await;
    let waiting = lead_run(&h, "Ada").await;
    h.eventually("the run to wait for its retry", Duration::from_secs(30), || async {
        let run = h.get(&format!("/api/v1/runs/{waiting}")).await;
        (run["status"] == "waiting").then_some(())
    })
    .await;

    std::fs::write(
        h.project().join(FLOW),
        std::fs::read_to_string(h.project().join(FLOW)).unwrap().replace(V1_TEXT, V2_TEXT),
    )
    .unwrap();
    let (code, stdout, stderr) = reload(&h, &admin);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Across a restart the folder holds version 2 only; version 1 lives on in the database.
    tokio::task::block_in_place(|| h.restart_server());
    h.sandbox_put("/_sandbox/faults/apig.kixie.com", &json!({"error_rate": 0.0})).await;
    // The retry may come due during the restart and be sent by the restarted server, which ends the
    // run on its own; while it is still waiting, it is retried by hand (refused with 409 while an
    // attempt is in flight).
    h.eventually("the run to finish or be retried by hand", Duration::from_secs(30), || async {
        let run = h.get(&format!("/api/v1/runs/{waiting}")).await;
        match run["status"].as_str() {
            Some("finished") => Some(()),
            Some("waiting") => {
                let response = authorized(&admin)
                    .post(h.url(&format!("/api/v1/runs/{waiting}/retry")))
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    202 => Some(()),
                    409 => None,
                    status => panic!("retry by hand answered {status}: {}", response.text().await.unwrap()),
                }
            }
            _ => None,
        }
    })
    .await;
    let run = h.finished_run(&waiting).await;
    assert_eq!((run["status"].as_str(), run["version"].as_i64()), (Some("finished"), Some(1)), "{run}");
    let fresh = lead_run(&h, "Grace").await;
    assert_eq!(h.finished_run(&fresh).await["version"], 2);
    let sent: Vec<String> = texts(&h).await.into_iter().filter(|t| t == "v1" || t == "v2").collect();
    assert_eq!(sent.last().map(String::as_str), Some("v2"));
    assert_eq!(
        sent.iter().filter(|t| *t == "v1").count(),
        sent.len() - 1,
        "every attempt of the waiting run was v1: {sent:?}"
    );

    // `herald runs list` shows each run's version.
    let listing = tokio::task::block_in_place(|| h.cli_ok(&["runs", "list"]));
    let line = |run: &str| listing.lines().find(|l| l.starts_with(run)).unwrap_or_default().to_string();
    assert!(line(&waiting).contains(" v1 "), "{listing}");
    assert!(line(&fresh).contains(" v2 "), "{listing}");
    let shown = tokio::task::block_in_place(|| h.cli_ok(&["runs", "show", &waiting, "--json"]));
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["version"], 1, "{shown}");
}
