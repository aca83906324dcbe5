//! Several herald servers (nodes) on one PostgreSQL database (issue H11), end to end: real `herald
//! serve` processes, the sandbox answering with a provider's latency, a node SIGKILLed mid-load.
//!
//! - Leads posted to any node are each texted once; a lead accepted by a node that is then killed
//!   is texted by another once the dead node has not been seen for `LIVE_FOR` (15 s), and 8x8's
//!   deduplication by `clientMessageId` keeps a callout that was in flight at the kill from
//!   becoming a second message.
//! - An opt-out taken by one node stops the sends of another at once (consent is announced with
//!   PostgreSQL's `NOTIFY`).
//!
//! Without a PostgreSQL server these tests say so and pass, unless `HERALD_REQUIRE_POSTGRES=1`.

mod common;

use common::*;
use herald_store::postgres::testing::scratch_database;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const EIGHT_BY_EIGHT: &str = "sms.8x8.com";

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
}

/// Posts a Lead to the node at `base`; returns its run's id.
async fn post_lead(client: &reqwest::Client, base: &str, phone: &str) -> String {
    let url = format!("{base}/api/v1/records/Lead");
    let body = json!({"FirstName": "Ada", "LastName": "Node", "Phone": phone});
    let response = client.post(&url).json(&body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "POST {url}: {text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    created["runs"][0].as_str().unwrap_or_else(|| panic!("no run: {created}")).to_string()
}

/// The node's id and its count of live nodes, from `/health`.
async fn health(client: &reqwest::Client, base: &str) -> (String, u64) {
    let health = get_json(client, &format!("{base}/health")).await;
    let node = &health["node"];
    assert_eq!(node["database"], "postgresql", "{health}");
    assert_eq!(node["shared"], true, "{health}");
    (node["id"].as_str().unwrap().to_string(), node["liveNodes"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leads_spread_over_three_nodes_are_texted_once_each_and_a_killed_nodes_runs_are_finished_by_the_others()
 {
    let Some(database) = scratch_database() else { return };
    let url = database.url.clone();
    let h = tokio::task::spawn_blocking(move || {
        Harness::example("8x8-sms")
            .sandbox_account()
            .database(&url)
            .project_edit(|p| p.edit("flows/Lead_Welcome_SMS_8x8.yaml", without_scheduled_paths))
            .start()
    })
    .await
    .unwrap();
    let h = Arc::new(h);
    let nodes = {
        let h = h.clone();
        tokio::task::spawn_blocking(move || [h.start_node(), h.start_node()]).await.unwrap()
    };
    let [mut doomed, survivor] = nodes;
    let api = h.api().clone();
    let bases = [h.server_url(), doomed.url.clone(), survivor.url.clone()];
    let doomed_id = health(&api, &doomed.url).await.0;
    h.eventually("three live nodes", Duration::from_secs(20), || async {
        (health(&api, &bases[0]).await.1 == 3).then_some(())
    })
    .await;

    // Providers answer in 100-400 ms; while the doomed node works, 8x8 answers slower still, so that
    // it is killed with runs ready, running and in flight.
    let latency = |range: [u64; 2]| json!({"latency_ms": range, "seed": 11});
    h.sandbox_put(&format!("/_sandbox/faults/{EIGHT_BY_EIGHT}"), &latency([100, 400])).await;
    let mut runs: HashMap<String, (String, usize)> = HashMap::new();
    for n in 0..30 {
        let phone = format!("+6592{n:06}");
        let node = n % 3;
        runs.insert(post_lead(&api, &bases[node], &phone).await, (phone, node));
    }
    h.sandbox_put(&format!("/_sandbox/faults/{EIGHT_BY_EIGHT}"), &latency([1500, 2500])).await;
    let before = h.sandbox_get(&format!("/_sandbox/requests?host={EIGHT_BY_EIGHT}")).await;
    let before = before.as_array().unwrap().len();
    let posts: Vec<_> = (30..70)
        .map(|n| {
            let (api, base) = (api.clone(), doomed.url.clone());
            tokio::spawn(async move {
                let phone = format!("+6592{n:06}");
                (post_lead(&api, &base, &phone).await, phone)
            })
        })
        .collect();
    for post in posts {
        let (run, phone) = post.await.unwrap();
        runs.insert(run, (phone, 1));
    }
    h.eventually("a callout of the doomed node in flight", Duration::from_secs(20), || async {
        let requests = h.sandbox_get(&format!("/_sandbox/requests?host={EIGHT_BY_EIGHT}")).await;
        (requests.as_array().unwrap().len() > before).then_some(())
    })
    .await;
    doomed.kill();
    h.keep("doomed node output", &doomed.output());
    let held: Vec<Value> =
        get_json(&api, &format!("{}/api/v1/runs?status=ready,running&limit=1000", bases[0])).await["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|run| run["node"] == doomed_id.as_str())
            .cloned()
            .collect();
    assert!(!held.is_empty(), "the doomed node was killed with no run unfinished: nothing to take over");
    h.sandbox_put(&format!("/_sandbox/faults/{EIGHT_BY_EIGHT}"), &latency([100, 400])).await;
    for n in 70..90 {
        let phone = format!("+6592{n:06}");
        let node = if n % 2 == 0 { 0 } else { 2 };
        runs.insert(post_lead(&api, &bases[node], &phone).await, (phone, node));
    }

    // The others see the doomed node go, take its runs and finish them.
    h.eventually("the killed node to be no longer live", Duration::from_secs(40), || async {
        (health(&api, &bases[0]).await.1 == 2).then_some(())
    })
    .await;
    let active = format!("{}/api/v1/runs?status=ready,running,waiting&limit=5", bases[0]);
    h.eventually("every run to end", Duration::from_secs(60), || async {
        get_json(&api, &active).await["runs"].as_array().unwrap().is_empty().then_some(())
    })
    .await;

    let mut adopted = 0;
    for (id, (phone, node)) in &runs {
        let run = get_json(&api, &format!("{}/api/v1/runs/{id}", bases[2])).await;
        assert_eq!(run["status"], "finished", "the run of {phone} (posted to node {node}): {run}");
        if held.iter().any(|h| h["id"] == id.as_str()) {
            assert_ne!(run["node"], doomed_id.as_str(), "a held run was finished by another node: {run}");
            adopted += 1;
        }
    }
    assert_eq!(adopted, held.len());
    let sent = h.sandbox_get(&format!("/_sandbox/messages?host={EIGHT_BY_EIGHT}")).await;
    let mut per_phone: HashMap<String, usize> = HashMap::new();
    for message in sent.as_array().unwrap() {
        *per_phone.entry(message["destination"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for (phone, _) in runs.values() {
        assert_eq!(
            per_phone.get(phone.trim_start_matches('+')).or(per_phone.get(phone)),
            Some(&1),
            "{phone}: {per_phone:?}"
        );
    }
    assert_eq!(per_phone.len(), runs.len(), "messages only to the leads' phones");
    let ledger = get_json(&api, &format!("{}/api/v1/messages?limit=1000", bases[0])).await;
    let pending: Vec<&Value> =
        ledger["messages"].as_array().unwrap().iter().filter(|m| m["status"] == "pending").collect();
    assert!(pending.is_empty(), "ledger rows left pending: {pending:?}");
    drop(survivor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_taken_by_one_node_stops_the_sends_of_another_at_once() {
    let Some(database) = scratch_database() else { return };
    let url = database.url.clone();
    // Twilio's inbound webhook points at the first node, whose port is chosen before it starts.
    let listen = format!("127.0.0.1:{}", free_port());
    let inbound = format!("http://{listen}/webhooks/Twilio_Status");
    let h = tokio::task::spawn_blocking(move || {
        Harness::example("twilio-sms").sandbox_account().database(&url).listen(&listen).start()
    })
    .await
    .unwrap();
    let other = tokio::task::block_in_place(|| h.start_node());
    let api = h.api().clone();
    let phone = "+14155550177";
    // The second node reads consent once at start and then only hears of changes: the opt-out below
    // must reach it as a notice, not by a read.
    assert!(
        get_json(&api, &format!("{}/api/v1/consent", other.url)).await["consent"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    h.sandbox_put("/_sandbox/webhooks/api.twilio.com", &json!({"url": inbound})).await;
    let stop = json!({"host": "api.twilio.com", "from": phone, "to": "+14155550123", "text": "STOP"});
    let answer = h.sandbox_post("/_sandbox/inbound", &stop).await;
    assert_eq!(answer["answered"], 200, "the first node took the STOP: {answer}");

    let run = post_lead(&api, &other.url, phone).await;
    let run = h.finished_run(&run).await;
    let fault = run["trace"][0]["fault"].as_str().unwrap_or_else(|| panic!("{run}"));
    assert!(fault.contains("opted out"), "the other node refused the phone before any callout: {fault}");
    let requests = h.sandbox_get("/_sandbox/requests?host=api.twilio.com").await;
    assert!(requests.as_array().unwrap().is_empty(), "nothing reached Twilio: {requests}");
}
