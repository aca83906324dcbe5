//! `herald demo`: the bundled Kixie example end to end, on a temporary database and an in-process
//! sandbox, through the real HTTP API.

use anyhow::{Context, Result, bail};
use herald_engine::{Engine, EngineOptions, RunEvent};
use herald_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

const EXAMPLE: &str = "examples/kixie-welcome-sms";

/// The example project, compiled into the binary so the demo needs no checkout.
const FILES: [(&str, &str); 10] = [
    ("herald.toml", include_str!("../../../examples/kixie-welcome-sms/herald.toml")),
    ("objects/Lead.yaml", include_str!("../../../examples/kixie-welcome-sms/objects/Lead.yaml")),
    ("objects/Task.yaml", include_str!("../../../examples/kixie-welcome-sms/objects/Task.yaml")),
    (
        "credentials/Kixie_API_Auth.yaml",
        include_str!("../../../examples/kixie-welcome-sms/credentials/Kixie_API_Auth.yaml"),
    ),
    (
        "credentials/Kixie_Endpoint.yaml",
        include_str!("../../../examples/kixie-welcome-sms/credentials/Kixie_Endpoint.yaml"),
    ),
    (
        "permissions/Kixie_Integration_User.yaml",
        include_str!("../../../examples/kixie-welcome-sms/permissions/Kixie_Integration_User.yaml"),
    ),
    (
        "permissions/Herald_API_User.yaml",
        include_str!("../../../examples/kixie-welcome-sms/permissions/Herald_API_User.yaml"),
    ),
    (
        "permissions/Herald_Admin.yaml",
        include_str!("../../../examples/kixie-welcome-sms/permissions/Herald_Admin.yaml"),
    ),
    (
        "services/KixieService.yaml",
        include_str!("../../../examples/kixie-welcome-sms/services/KixieService.yaml"),
    ),
    (
        "flows/Lead_Welcome_SMS.yaml",
        include_str!("../../../examples/kixie-welcome-sms/flows/Lead_Welcome_SMS.yaml"),
    ),
];

/// Demo credentials: the sandbox accepts exactly these, and they never leave this process.
const DEMO_BUSINESSID: &str = "demo-business-2149";
const DEMO_APIKEY: &str = "demo-apikey-7f3a9c41";

struct Lead {
    first: &'static str,
    last: &'static str,
    phone: Option<&'static str>,
    note: &'static str,
}

const LEADS: [Lead; 5] = [
    Lead { first: "Ada", last: "Lovelace", phone: Some("+14155550100"), note: "" },
    Lead { first: "Grace", last: "Hopper", phone: Some("(415) 555-0101"), note: "" },
    Lead { first: "Alan", last: "Turing", phone: Some("+44 20 7946 0018"), note: "" },
    Lead {
        first: "Katherine",
        last: "Johnson",
        phone: None,
        note: "blank phone: the entry condition is not met",
    },
    Lead {
        first: "Edsger",
        last: "Dijkstra",
        phone: Some("12"),
        note: "not a phone number: herald refuses it before any callout, and the fault path logs a Task",
    },
];

const BURST: usize = 200;

fn unix_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub async fn run() -> Result<ExitCode> {
    println!(
        "herald demo: seed 000, a new Lead texted through Kixie's /app/event by a record-triggered flow.\n"
    );
    let files = FILES.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect();
    let project = match herald_flow::load_files(PathBuf::from(EXAMPLE), files) {
        Ok(project) => Arc::new(project),
        Err(diagnostics) => bail!("the bundled example does not load:\n{diagnostics}"),
    };
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;

    // The bundled example is Kixie's, so the sandbox's Kixie account takes the demo's credentials.
    let account = json!({"businessid": DEMO_BUSINESSID, "apikey": DEMO_APIKEY});
    let options = SandboxOptions::default()
        .with_section("kixie", account)
        .map_err(|problem| anyhow::anyhow!("the demo's sandbox options: {problem}"))?;
    let sandbox = Sandbox::new(options);
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox_url = format!("http://{}", sandbox_listener.local_addr()?);
    tokio::spawn(sandbox.clone().serve(sandbox_listener));

    let mut options = EngineOptions::for_database(temp.path().join("herald.db"));
    options.sandbox = Some(sandbox_url.clone());
    options.workers = project.project.config.runtime.workers;
    let engine = Engine::open(Arc::clone(&project), &options).await?;
    engine
        .set_secret("Kixie_API_Auth", "Kixie_Principal", "businessid", DEMO_BUSINESSID.as_bytes(), None)
        .await?;
    engine.set_secret("Kixie_API_Auth", "Kixie_Principal", "apikey", DEMO_APIKEY.as_bytes(), None).await?;
    // The web form that posts leads: it may write records and its flows may call Kixie.
    let sets = ["Herald_API_User".to_string(), "Kixie_Integration_User".to_string()];
    engine.create_user("webform", &sets).await?;
    let token = engine.create_token("webform").await?;
    engine.start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let server_engine = engine.clone();
    tokio::spawn(async move { axum::serve(listener, herald_server::router(server_engine)).await });

    println!("Project    {EXAMPLE} (bundled): flow Lead_Welcome_SMS on Lead create when Phone is not blank");
    println!("Database   {} (temporary; secrets encrypted)", options.database.display());
    println!("API        {api}");
    println!("Sandbox    {sandbox_url} (emulated Kixie at apig.kixie.com)");
    println!(
        "User       webform (permission sets Herald_API_User, Kixie_Integration_User; its API token stays in this process)\n"
    );

    let mut headers = reqwest::header::HeaderMap::new();
    let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.as_str()))?;
    bearer.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, bearer);
    let client = reqwest::Client::builder().default_headers(headers).build()?;
    let mut events = engine.subscribe();
    let mut latencies = Vec::new();
    let (mut skipped, mut logged, mut failed) = (0, 0, 0);
    for lead in &LEADS {
        let mut fields = json!({"FirstName": lead.first, "LastName": lead.last, "Company": "Demo Co", "LeadSource": "Web"});
        if let Some(phone) = lead.phone {
            fields["Phone"] = json!(phone);
        }
        let sent = unix_micros();
        let answer: Value = client
            .post(format!("{api}/api/v1/records/Lead"))
            .json(&fields)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        let runs: Vec<String> = answer["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(String::from))
            .collect();
        let who = format!("{} {}", lead.first, lead.last);
        let phone = lead.phone.unwrap_or("(none)");
        println!("Lead {id}  {who:<18} Phone {phone}");
        if !lead.note.is_empty() {
            println!("    ({})", lead.note);
        }
        if runs.is_empty() {
            println!("    no flow started: nothing was sent, nothing to clean up\n");
            skipped += 1;
            continue;
        }
        for run_id in runs {
            let event = wait_for(&mut events, &run_id).await?;
            let run: Value = client.get(format!("{api}/api/v1/runs/{run_id}")).send().await?.json().await?;
            // herald sends the number in E.164, whatever the lead typed.
            let e164 = lead.phone.and_then(|p| herald_sms::normalize_e164(p, Some("US")).ok());
            let received = sandbox
                .requests()
                .into_iter()
                .rev()
                .find(|r| r.body.get("target").and_then(Value::as_str) == e164.as_deref());
            let trace = run["trace"].as_array().cloned().unwrap_or_default();
            let task = trace
                .iter()
                .find(|e| e["kind"] == "Create Records")
                .and_then(|e| e["outputs"]["Id"].as_str());
            match (event.status.as_str(), task) {
                ("finished", None) => {
                    let latency =
                        received.as_ref().map(|r| r.received_unix_micros - sent).unwrap_or_default();
                    latencies.push(latency);
                    let body = received.map(|r| r.body).unwrap_or(Value::Null);
                    println!(
                        "    texted: Kixie received {{\"target\": {}, \"eventname\": {}, \"message\": {}}}",
                        body["target"], body["eventname"], body["message"]
                    );
                    println!(
                        "    speed to lead: {:.2} ms (record request sent -> Kixie request received)\n",
                        latency as f64 / 1000.0
                    );
                }
                ("finished", Some(task_id)) => {
                    let task: Value = client
                        .get(format!("{api}/api/v1/records/Task/{task_id}"))
                        .send()
                        .await?
                        .json()
                        .await?;
                    println!("    the send failed; the fault path created Task {task_id}:");
                    println!("    Subject: {}\n", task["Subject"].as_str().unwrap_or_default());
                    logged += 1;
                }
                (status, _) => {
                    println!(
                        "    run {run_id} ended {status}: {}\n",
                        run["fault"].as_str().unwrap_or_default()
                    );
                    failed += 1;
                }
            }
        }
    }

    let (elapsed, mut burst) = burst(&client, &api, &sandbox, &mut events).await?;
    burst.sort_unstable();
    latencies.sort_unstable();
    let texted_in_burst = burst.len();
    println!(
        "Burst      {BURST} leads posted concurrently: {texted_in_burst} texted in {:.0} ms; speed to lead p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64() * 1000.0,
        percentile(&burst, 0.50),
        percentile(&burst, 0.99),
    );
    println!(
        "\nAll done: {} lead{} texted, {skipped} skipped (blank phone), {logged} refused and logged as a Task.",
        latencies.len(),
        if latencies.len() == 1 { "" } else { "s" }
    );
    println!(
        "See docs/benchmarks.md for measured speed under load (`herald demo` is a tour, not a benchmark)."
    );
    if failed > 0 || texted_in_burst != BURST {
        eprintln!(
            "error: {failed} run(s) failed and {} burst lead(s) were not texted",
            BURST - texted_in_burst
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_for(events: &mut broadcast::Receiver<RunEvent>, run_id: &str) -> Result<RunEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event.run_id == run_id => return Ok(event),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(error)) => bail!("the engine stopped: {error}"),
            Err(_) => bail!("run {run_id} did not finish within 30 s"),
        }
    }
}

/// Posts BURST leads at once and waits for every text; returns the wall time and each lead's speed to
/// lead in microseconds.
async fn burst(
    client: &reqwest::Client,
    api: &str,
    sandbox: &Sandbox,
    events: &mut broadcast::Receiver<RunEvent>,
) -> Result<(Duration, Vec<i64>)> {
    let started = std::time::Instant::now();
    let mut posts = Vec::new();
    for n in 0..BURST {
        let client = client.clone();
        let url = format!("{api}/api/v1/records/Lead");
        let phone = format!("+1415555{:04}", 2000 + n);
        posts.push(tokio::spawn(async move {
            let sent = unix_micros();
            let answer: Value = client
                .post(url)
                .json(&json!({"FirstName": "Burst", "LastName": format!("Lead {n}"), "Phone": phone}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok((phone, sent, answer["runs"][0].as_str().unwrap_or_default().to_string()))
        }));
    }
    let mut sent_at = std::collections::HashMap::new();
    let mut pending = std::collections::HashSet::new();
    for post in posts {
        let (phone, sent, run) = post.await??;
        sent_at.insert(phone, sent);
        pending.insert(run);
    }
    while !pending.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .context("the burst did not finish within 30 s")?;
        if let Ok(event) = event {
            pending.remove(&event.run_id);
        }
    }
    let elapsed = started.elapsed();
    let latencies = sandbox
        .requests()
        .iter()
        .filter_map(|r| {
            let target = r.body.get("target")?.as_str()?;
            Some(r.received_unix_micros - sent_at.get(target)?)
        })
        .collect();
    Ok((elapsed, latencies))
}

fn percentile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
}
