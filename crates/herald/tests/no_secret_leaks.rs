//! No secret value ever appears in what herald prints, logs, traces or answers: the demo and every
//! example, with logging at its most verbose, on success and failure paths.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Everything herald said during a scenario (the sandbox's own request log is the provider's side and
/// is left out: it must hold the secrets, that is the point of a callout).
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn add(&mut self, what: &str, text: &str) {
        self.0.push_str(&format!("--- {what}\n{text}\n"));
    }

    fn assert_clean(&self, secrets: &[&str]) {
        for secret in secrets {
            if let Some(at) = self.0.find(secret) {
                let start = at.saturating_sub(200);
                panic!("secret found in output near: {}", &self.0[start..(at + 200).min(self.0.len())]);
            }
        }
    }
}

struct Example {
    name: &'static str,
    external: &'static str,
    principal: &'static str,
    /// (parameter, value) pairs; values are what the sandbox accepts, so success paths run too.
    secrets: &'static [(&'static str, &'static str)],
    sets: &'static [&'static str],
    leads: &'static [&'static str],
    /// Parameters that identify rather than authenticate (Twilio's Account SID is the Basic username
    /// and also the path of every request), so their values may appear.
    identifiers: &'static [&'static str],
}

const EXAMPLES: [Example; 5] = [
    Example {
        name: "kixie-welcome-sms",
        external: "Kixie_API_Auth",
        principal: "Kixie_Principal",
        secrets: &[("businessid", "sandbox-business"), ("apikey", "sandbox-apikey")],
        sets: &["Herald_API_User", "Kixie_Integration_User"],
        leads: &[
            r#"{"FirstName":"Ada","LastName":"L","Phone":"+14155550100"}"#,
            r#"{"FirstName":"Bad","LastName":"L","Phone":"12"}"#,
        ],
        identifiers: &[],
    },
    Example {
        name: "8x8-sms",
        external: "X8x8_CPaaS_Authentication",
        principal: "X8x8_API_Key_Principal",
        secrets: &[("Authorization", "Bearer sandbox-8x8-key")],
        sets: &["Herald_API_User", "CPaaS_API_Access"],
        leads: &[r#"{"LastName":"L","Phone":"+6591234567"}"#, r#"{"LastName":"L","Phone":"+99912345678"}"#],
        identifiers: &[],
    },
    Example {
        name: "8x8-sms-official",
        external: "X8x8_CPaaS_Authentication",
        principal: "X8x8_API_Key_Principal",
        secrets: &[("Authorization", "Bearer sandbox-8x8-key")],
        sets: &["Herald_API_User", "CPaaS_API_Access"],
        leads: &[r#"{"LastName":"L","Phone":"+14155550100"}"#],
        identifiers: &[],
    },
    Example {
        name: "8x8-whatsapp-otp",
        external: "X8x8_CPaaS_Authentication",
        principal: "X8x8_API_Key_Principal",
        secrets: &[("Authorization", "Bearer sandbox-8x8-key")],
        sets: &["Herald_API_User", "CPaaS_API_Access"],
        leads: &[r#"{"LastName":"L","MobilePhone":"+6591234567"}"#],
        identifiers: &[],
    },
    Example {
        name: "twilio-sms",
        external: "Twilio_Auth",
        principal: "Twilio_Principal",
        secrets: &[("username", "AC00000000000000000000000000000001"), ("password", "sandbox-twilio-token")],
        sets: &["Herald_API_User", "Twilio_Integration_User"],
        leads: &[
            r#"{"FirstName":"Ada","LastName":"L","Phone":"+14155550100"}"#,
            r#"{"FirstName":"Land","LastName":"L","Phone":"+14155550999"}"#,
        ],
        identifiers: &["username"],
    },
];

const VERBOSE: [(&str, &str); 1] = [("HERALD_LOG", "trace")];

#[test]
fn the_demo_prints_no_secret_even_at_trace_level() {
    let output = std::process::Command::new(HERALD).arg("demo").envs(VERBOSE).output().unwrap();
    assert!(output.status.success());
    let mut transcript = Transcript::default();
    transcript.add("demo stdout", &String::from_utf8_lossy(&output.stdout));
    transcript.add("demo stderr", &String::from_utf8_lossy(&output.stderr));
    assert!(transcript.0.len() > 1000, "trace logging produced output");
    transcript.assert_clean(&["demo-business-2149", "demo-apikey-7f3a9c41"]);
}

#[tokio::test]
async fn every_example_keeps_its_secrets_out_of_logs_traces_answers_and_errors() {
    for example in &EXAMPLES {
        let mut transcript = Transcript::default();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.db");
        let project = common::example(example.name);
        let location = ["--project", project.to_str().unwrap(), "--db", db.to_str().unwrap()];
        for (parameter, value) in example.secrets {
            let mut args = vec!["credential", "set", example.external, example.principal, parameter];
            args.extend(location);
            let (code, out, err) = herald(&args, value);
            assert_eq!(code, 0, "{out}{err}");
            transcript.add("credential set", &format!("{out}{err}"));
        }
        let mut args = vec!["user", "add", "webform"];
        for set in example.sets {
            args.extend(["--permission-set", set]);
        }
        args.extend(location);
        let (_, out, err) = herald(&args, "");
        transcript.add("user add", &format!("{out}{err}"));
        let mut args = vec!["token", "create", "webform"];
        args.extend(location);
        let (_, token, err) = herald(&args, "");
        transcript.add("token create stderr", &err);
        let (_, out, err) = herald(&["flow", "validate", project.to_str().unwrap()], "");
        transcript.add("validate", &format!("{out}{err}"));

        let sandbox = Process::start(&["sandbox", "--listen", "127.0.0.1:0"], &[]);
        let mut server = common::serve_on(&project, &db, &sandbox.url, "127.0.0.1:0", &VERBOSE);
        let _ = client();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", token.trim()).parse().unwrap());
        let api = reqwest::Client::builder().default_headers(headers).build().unwrap();
        for lead in example.leads {
            let fields: Value = serde_json::from_str(lead).unwrap();
            let response =
                api.post(format!("{}/api/v1/records/Lead", server.url)).json(&fields).send().await.unwrap();
            let created: Value = response.json().await.unwrap();
            transcript.add("create", &created.to_string());
            for run in created["runs"].as_array().into_iter().flatten() {
                let url = format!("{}/api/v1/runs/{}", server.url, run.as_str().unwrap());
                let finished: Value = eventually("the run to end", Duration::from_secs(20), || async {
                    let run: Value = api.get(&url).send().await.ok()?.json().await.ok()?;
                    matches!(run["status"].as_str(), Some("finished" | "failed")).then_some(run)
                })
                .await;
                transcript.add("run", &finished.to_string());
                for entry in finished["trace"].as_array().into_iter().flatten() {
                    if let Some(id) = entry["outputs"]["Id"].as_str() {
                        let task =
                            api.get(format!("{}/api/v1/records/Task/{id}", server.url)).send().await.unwrap();
                        transcript.add("task", &task.text().await.unwrap());
                    }
                }
            }
        }
        // Error answers too.
        for body in [json!({"Nope": 1}), json!({"LastName": 5})] {
            let response =
                api.post(format!("{}/api/v1/records/Lead", server.url)).json(&body).send().await.unwrap();
            transcript.add("error", &response.text().await.unwrap());
        }
        let response = api
            .put(format!("{}/api/v1/credentials/{}/{}/nope", server.url, example.external, example.principal))
            .body("x")
            .send()
            .await
            .unwrap();
        transcript.add("credential error", &response.text().await.unwrap());

        // Debug prints every element with its inputs.
        let record = example.leads[0];
        let flow = herald(&["flow", "validate", project.to_str().unwrap()], "").1;
        let flow_name = flow
            .lines()
            .find_map(|l| l.trim().strip_prefix("flow "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_string();
        let mut args = vec![
            "flow",
            "debug",
            project.to_str().unwrap(),
            &flow_name,
            "--record",
            record,
            "--sandbox",
            &sandbox.url,
        ];
        args.extend(["--db", db.to_str().unwrap()]);
        let (code, out, err) = herald(&args, "");
        assert_eq!(code, 0, "{out}{err}");
        if example.name == "kixie-welcome-sms" {
            assert!(out.contains("apikey = ••••••"), "debug shows the credential input masked: {out}");
        }
        transcript.add("debug", &format!("{out}{err}"));

        server.kill();
        transcript.add("server output", &server.output());
        let values: Vec<&str> = example
            .secrets
            .iter()
            .filter(|(parameter, _)| !example.identifiers.contains(parameter))
            .map(|(_, v)| *v)
            .collect();
        transcript.assert_clean(&values);
        // The bare key inside "Bearer <key>" too.
        let bare: Vec<&str> = values.iter().filter_map(|v| v.strip_prefix("Bearer ")).collect();
        transcript.assert_clean(&bare);
    }
}
