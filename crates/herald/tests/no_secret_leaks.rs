//! No secret value ever appears in what herald prints, logs, traces or answers, or in any console
//! page: the demo and every example, with logging at its most verbose, on success and failure paths.

mod common;

use common::*;
use serde_json::json;

struct Example {
    name: &'static str,
    /// Leads to post; the first is also run through `herald flow debug`. The values stored are the
    /// sandbox's account, so success paths run too.
    leads: &'static [&'static str],
    /// Parameters that identify rather than authenticate (Twilio's Account SID is the Basic username
    /// and also the path of every request; Vonage's api_key comes back in every receipt as `api-key`),
    /// so their values may appear.
    identifiers: &'static [&'static str],
}

const EXAMPLES: [Example; 6] = [
    Example {
        name: "kixie-welcome-sms",
        leads: &[
            r#"{"FirstName":"Ada","LastName":"L","Phone":"+14155550100"}"#,
            r#"{"FirstName":"Bad","LastName":"L","Phone":"12"}"#,
        ],
        identifiers: &[],
    },
    Example {
        name: "8x8-sms",
        leads: &[r#"{"LastName":"L","Phone":"+6591234567"}"#, r#"{"LastName":"L","Phone":"+99912345678"}"#],
        identifiers: &[],
    },
    Example {
        name: "8x8-sms-official",
        leads: &[r#"{"LastName":"L","Phone":"+14155550100"}"#],
        identifiers: &[],
    },
    Example {
        name: "8x8-whatsapp-otp",
        leads: &[r#"{"LastName":"L","MobilePhone":"+6591234567"}"#],
        identifiers: &[],
    },
    Example {
        name: "twilio-sms",
        leads: &[
            r#"{"FirstName":"Ada","LastName":"L","Phone":"+14155550100"}"#,
            r#"{"FirstName":"Land","LastName":"L","Phone":"+14155550999"}"#,
        ],
        identifiers: &["username"],
    },
    Example {
        name: "vonage-sms",
        leads: &[
            r#"{"FirstName":"Ada","LastName":"L","Phone":"+14155550100"}"#,
            r#"{"FirstName":"Barred","LastName":"L","Phone":"+14155550107"}"#,
        ],
        identifiers: &["api_key"],
    },
];

#[test]
fn the_demo_prints_no_secret_even_at_trace_level() {
    let output = std::process::Command::new(HERALD).arg("demo").env("HERALD_LOG", "trace").output().unwrap();
    assert!(output.status.success());
    let transcript =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(transcript.len() > 1000, "trace logging produced output");
    for secret in ["demo-business-2149", "demo-apikey-7f3a9c41"] {
        if let Some(at) = transcript.find(secret) {
            let start = transcript.floor_char_boundary(at.saturating_sub(200));
            let end = transcript.ceil_char_boundary((at + 200).min(transcript.len()));
            panic!("secret found in output near: {}", &transcript[start..end]);
        }
    }
}

#[tokio::test]
async fn every_example_keeps_its_secrets_out_of_logs_traces_answers_and_errors() {
    for example in &EXAMPLES {
        let h = Harness::example(example.name).sandbox_account().server_env("HERALD_LOG", "trace").start();
        let project = h.project().to_str().unwrap();
        let (_, out, err) = herald(&["flow", "validate", project], "");
        h.keep("validate", &format!("{out}{err}"));

        for lead in example.leads {
            let created = h.post_lead(serde_json::from_str(lead).unwrap()).await;
            for run in created["runs"].as_array().into_iter().flatten() {
                let finished = h.finished_run(run.as_str().unwrap()).await;
                assert_ne!(finished["status"], "unknown", "{finished}");
                for entry in finished["trace"].as_array().into_iter().flatten() {
                    if let Some(id) = entry["outputs"]["Id"].as_str() {
                        h.get(&format!("/api/v1/records/Task/{id}")).await;
                    }
                }
            }
        }
        // Error answers too.
        for body in [json!({"Nope": 1}), json!({"LastName": 5})] {
            let response = h.api().post(h.url("/api/v1/records/Lead")).json(&body).send().await.unwrap();
            h.keep("error", &response.text().await.unwrap());
        }
        let [external, principal, _] = sandbox_account(example.name).credentials[0].0;
        let path = format!("/api/v1/credentials/{external}/{principal}/nope");
        let response = h.api().put(h.url(&path)).body("x").send().await.unwrap();
        h.keep("credential error", &response.text().await.unwrap());

        // Debug prints every element with its inputs.
        let flow = herald(&["flow", "validate", project], "").1;
        let flow_name = flow
            .lines()
            .find_map(|l| l.trim().strip_prefix("flow "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_string();
        let (code, out, err) = h.flow_debug(&flow_name, example.leads[0]);
        assert_eq!(code, 0, "{out}{err}");
        if example.name == "kixie-welcome-sms" {
            assert!(out.contains("apikey = ••••••"), "debug shows the credential input masked: {out}");
        }

        // Every console page the API user can reach, as a browser would see it.
        let pages = h.crawl_console(300).await;
        assert!(
            pages.len() > 3,
            "the console was crawled: {:?}",
            pages.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        assert!(pages.iter().any(|(path, _, _)| path.starts_with("/console/runs/")), "a run page was read");
        for (path, status, _) in &pages {
            assert!(*status < 500, "{path} answered {status}");
        }

        let values: Vec<&str> = sandbox_account(example.name)
            .credentials
            .iter()
            .filter(|([_, _, parameter], _)| !example.identifiers.contains(parameter))
            .map(|(_, value)| *value)
            .collect();
        // The bare key inside "Bearer <key>" too.
        let bare = values.iter().filter_map(|v| v.strip_prefix("Bearer "));
        h.assert_no_secret(&values.iter().copied().chain(bare).collect::<Vec<_>>());
    }
}
