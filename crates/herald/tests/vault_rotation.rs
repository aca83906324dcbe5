//! A key rotation under load, as an operator runs it: leads keep flowing into `herald serve` while
//! `herald vault rotate-key` runs as a separate process on the same database. Every lead is texted
//! with the right credentials, a value set through the API right after the rotation still opens after
//! a restart, and the old master key is retired once the server picked up the new key file.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUSINESSID: &str = "biz-rotate-5310";
const APIKEY: &str = "key-rotate-77aa01bc";

fn vault_status(h: &Harness) -> Value {
    let stdout = h.cli_ok(&["vault", "status", "--json"]);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

async fn kixie_requests(h: &Harness) -> Vec<Value> {
    h.sandbox_requests().await.into_iter().filter(|r| r["host"] == "apig.kixie.com").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_posted_during_a_key_rotation_are_all_texted_and_the_old_key_is_retired() {
    let h = Harness::example("kixie-welcome-sms")
        .credential(["Kixie_API_Auth", "Kixie_Principal", "businessid"], BUSINESSID)
        .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], APIKEY)
        .user("webform", &["Herald_API_User", "Kixie_Integration_User", "Herald_Admin"])
        .sandbox_env("HERALD_SANDBOX_KIXIE_BUSINESSID", BUSINESSID)
        .sandbox_env("HERALD_SANDBOX_KIXIE_APIKEY", APIKEY)
        // The load is larger than Kixie's default daily budget.
        .project_edit(|p| {
            p.append("credentials/Kixie_Endpoint.yaml", "rate_limit: {per_day: 100000000}\n");
            p.edit("flows/Lead_Welcome_SMS.yaml", without_scheduled_paths);
        })
        .start();
    let client = h.api().clone();
    let old_master = vault_status(&h)["masterKey"].as_str().unwrap().to_string();

    // Four clients post leads back to back until told to stop.
    let (stop, posted, runs) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let url = h.url("/api/v1/records/Lead");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            let (stop, posted, runs) = (stop.clone(), posted.clone(), runs.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = posted.fetch_add(1, Ordering::Relaxed);
                    assert!(n < 9_000, "the rotation took too long");
                    let lead = json!({"LastName": format!("Rotate {n}"), "Phone": format!("+1415557{n:04}")});
                    let response = client.post(&url).json(&lead).send().await.unwrap();
                    assert_eq!(response.status(), 201, "lead {n}");
                    let created: Value = response.json().await.unwrap();
                    runs.lock().unwrap().push(created["runs"][0].as_str().unwrap().to_string());
                }
            })
        })
        .collect();
    h.eventually("100 leads posted", Duration::from_secs(30), || async {
        (posted.load(Ordering::Relaxed) >= 100).then_some(())
    })
    .await;

    // The rotation, as its own process, while the leads flow.
    let stdout = tokio::task::block_in_place(|| h.cli_ok(&["vault", "rotate-key"]));
    assert!(stdout.contains(&format!("Rotated the master key {old_master} to ")), "{stdout}");
    // The server switched to the new key file within seconds, so the command saw the old key retired.
    assert!(stdout.contains("The old master key is retired"), "{stdout}");
    let rotated_at = posted.load(Ordering::Relaxed);

    // A value set through the API right after the rotation, sealed by the running server.
    let put = client
        .put(h.url("/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey"))
        .body(APIKEY)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    h.eventually("100 more leads posted", Duration::from_secs(30), || async {
        (posted.load(Ordering::Relaxed) >= rotated_at + 100).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    // Every run finished without a fault, and every lead was texted with the right credentials.
    let run_ids = runs.lock().unwrap().clone();
    let open_url = h.url("/api/v1/runs?status=ready,running,waiting&limit=10000");
    let all: Vec<Value> = h
        .eventually("every run ended", Duration::from_secs(120), || async {
            let open: Value = client.get(&open_url).send().await.ok()?.json().await.ok()?;
            if !open["runs"].as_array()?.is_empty() {
                return None;
            }
            let all: Value =
                client.get(h.url("/api/v1/runs?limit=10000")).send().await.ok()?.json().await.ok()?;
            Some(all["runs"].as_array()?.clone())
        })
        .await;
    assert_eq!(all.len(), run_ids.len());
    let faulted: Vec<&Value> = all
        .iter()
        .filter(|run| {
            run["status"] != "finished"
                || !run["fault"].is_null()
                // The text, then the Update Records that marks the Lead texted.
                || run["trace"].as_array().unwrap().len() != 2
                || run["trace"][1]["element"] != "Mark_Lead_Texted"
        })
        .collect();
    assert!(
        faulted.is_empty(),
        "{} of {} runs did not just text: {:?}",
        faulted.len(),
        all.len(),
        faulted.first()
    );
    let requests = kixie_requests(&h).await;
    assert_eq!(requests.len(), run_ids.len());
    for request in &requests {
        assert_eq!(
            (request["body"]["businessid"].as_str(), request["body"]["apikey"].as_str()),
            (Some(BUSINESSID), Some(APIKEY))
        );
    }

    // The server read the new key file, so the old master key was retired; the rotation is finished.
    let status = h
        .eventually("the rotation finished", Duration::from_secs(30), || async {
            let status = vault_status(&h);
            (status["rotationPending"] == false).then_some(status)
        })
        .await;
    let new_master = status["masterKey"].as_str().unwrap();
    assert_ne!(new_master, old_master);
    let masters = status["masterKeys"].as_array().unwrap();
    let old = masters.iter().find(|m| m["id"] == old_master.as_str()).unwrap();
    assert!(old["retiredAt"].is_string(), "{status:#}");
    let live: Vec<&Value> =
        status["nodes"].as_array().unwrap().iter().filter(|n| n["live"] == true).collect();
    assert_eq!(live.len(), 1, "{status:#}");
    assert_eq!(live[0]["masterId"], new_master, "the server switched to the new key file");
    let keys = status["dataKeys"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["retiredAt"].is_string() || k["id"] == status["activeDataKey"]),
        "{status:#}"
    );
    let health: Value = client.get(h.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["vault"]["masterKey"], new_master, "{health}");
    assert_eq!(
        (health["vault"]["rotationPending"].as_bool(), health["vault"]["unreadableSecrets"].as_u64()),
        (Some(false), Some(0))
    );

    // After a restart, the value set through the API after the rotation still opens.
    h.restart_server();
    let run = h.lead_run(json!({"LastName": "After restart", "Phone": "+14155559999"})).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert!(run["fault"].is_null(), "{run}");
    let last = kixie_requests(&h).await.pop().unwrap();
    assert_eq!(last["body"]["target"], "+14155559999");
    assert_eq!(last["body"]["apikey"], APIKEY);
}
