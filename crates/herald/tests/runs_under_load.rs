//! Under a load of leads posted as fast as herald takes them, with clients that give up mid-request,
//! every run that was committed ends while the server keeps running: none waits for a restart.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_run_ends_while_the_server_runs_even_when_clients_give_up() {
    let h = Harness::example("kixie-welcome-sms")
        .sandbox_account()
        .user("webform", &["Herald_API_User", "Kixie_Integration_User", "Herald_Admin"])
        // The load is larger than Kixie's default daily budget.
        .project_edit(|p| {
            p.append("credentials/Kixie_Endpoint.yaml", "rate_limit: {per_day: 100000000}\n");
            p.edit("flows/Lead_Welcome_SMS.yaml", without_scheduled_paths);
        })
        .start();
    let client = h.api();
    let url = h.url("/api/v1/records/Lead");

    // 48 clients post 3,000 leads back to back; every fifth request gives up after a millisecond or
    // two, often after herald committed the lead but before it answered.
    let (next, accepted, abandoned) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let total = 3_000;
    let clients: Vec<_> = (0..48)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            let (next, accepted, abandoned) = (next.clone(), accepted.clone(), abandoned.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let lead = json!({"LastName": format!("Load {n}"), "Phone": format!("+1415556{:04}", n)});
                    let mut request = client.post(&url).json(&lead);
                    if n % 5 == 0 {
                        request = request.timeout(Duration::from_millis(1 + (n % 3) as u64));
                    }
                    match request.send().await {
                        Ok(response) if response.status() == 201 => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(response) => {
                            panic!("lead {n}: {} {}", response.status(), response.text().await.unwrap())
                        }
                        Err(error) if error.is_timeout() => {
                            abandoned.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => panic!("lead {n}: {error}"),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let (accepted, abandoned) = (accepted.load(Ordering::Relaxed), abandoned.load(Ordering::Relaxed));
    assert!(abandoned > 0, "some clients gave up mid-request");

    // Every run the database holds ends, with the server still up and no restart.
    let runs_url = h.url("/api/v1/runs?status=ready,running&limit=10000");
    let all_url = h.url("/api/v1/runs?limit=10000");
    let runs: Vec<Value> = h
        .eventually("no run ready or running", Duration::from_secs(120), || async {
            let open: Value = client.get(&runs_url).send().await.ok()?.json().await.ok()?;
            if !open["runs"].as_array()?.is_empty() {
                return None;
            }
            let all: Value = client.get(&all_url).send().await.ok()?.json().await.ok()?;
            Some(all["runs"].as_array()?.clone())
        })
        .await;
    assert!(runs.len() >= accepted, "{} runs for {accepted} accepted leads", runs.len());
    assert!(runs.len() <= accepted + abandoned);
    let unfinished: Vec<&Value> = runs.iter().filter(|r| r["status"] != "finished").collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");

    // Each run texted once, and none of them needed the sweep's rescue.
    let requests = h.sandbox_requests().await;
    let kixie: Vec<&Value> = requests.iter().filter(|r| r["host"] == "apig.kixie.com").collect();
    assert_eq!(kixie.len(), runs.len());
    // Accepted by Kixie, so none of the runs went through the fault path.
    assert!(kixie.iter().all(|r| r["status"] == 200), "a send was refused");
    let health = h.get("/health").await;
    assert_eq!(health["sweep"]["defects"], 0, "{health}");
}
