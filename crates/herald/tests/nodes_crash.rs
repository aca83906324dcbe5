//! Crash safety across nodes (issue H11): three `herald serve` nodes on one PostgreSQL database take
//! 5,000 leads (2,500 per provider, round robin) while the sandbox fails about one request in ten
//! (5xx, 429, connections cut after the provider accepted the message), and two of the nodes are
//! SIGKILLed and started again during the load. Once every run has ended:
//!
//! - every accepted lead's run ended: delivered, or (Kixie only) `unknown` with its reason; none is
//!   lost with its node, none ended in a fault;
//! - 8x8 texted every lead exactly once (a resend by the node that took a dead node's run carries
//!   the same `clientMessageId`), and no 8x8 run is `unknown`;
//! - Kixie, which cannot recognise a resend, never texted a phone twice;
//! - the ledger has no row left `pending`;
//! - a per-second rate limit holds for the nodes together: Kixie's named credential allows 100 sends
//!   a second (Kixie's own 20 would make 2,500 leads take two minutes), and in no 5-second window did
//!   the sandbox receive more than that allows with the bursts the design admits (each node's bucket,
//!   and one second of a restarted node's whole limit before it counts the others), far below what
//!   three nodes each with the whole limit would send (1,190 in 5 s against 800 allowed when sharing
//!   was turned off, on the machine this was written on).
//!
//! The single-server version of this test, with aimed kills and every request accounted for, is
//! `crash.rs`. Without a PostgreSQL server this test says so and passes, unless
//! `HERALD_REQUIRE_POSTGRES=1`.

mod common;

use common::*;
use herald_store::postgres::testing::scratch_database;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Leads to get accepted per provider, spread over the nodes: 5,000 in all, as issue H11 asks.
const LEADS: usize = 2_500;
const POSTERS: usize = 6;
const RETRY: &str = "    retry: {max_attempts: 10, base_delay_ms: 20, max_delay_ms: 200}\n";

struct Provider {
    name: &'static str,
    example: &'static str,
    flow_file: &'static str,
    action_line: &'static str,
    host: &'static str,
    /// Whether the provider deduplicates a resend (8x8's clientMessageId), so no run may be unknown.
    deduplicates: bool,
    /// The named credential's file, and a per-second limit written into it for the test.
    rate_limit: Option<(&'static str, u32)>,
    phone_prefix: &'static str,
}

const EIGHT_BY_EIGHT: Provider = Provider {
    name: "8x8",
    example: "8x8-sms",
    flow_file: "flows/Send_SMS_8x8.yaml",
    action_line: "    action: CPaaSSMS.Send-Sms-Single\n",
    host: "sms.8x8.com",
    deduplicates: true,
    rate_limit: None,
    phone_prefix: "+659300",
};

/// Kixie's per-second limit in the test: high enough that 2,500 leads take about 25 s, not two
/// minutes at Kixie's real 20, and low enough that three nodes not sharing it would send well beyond
/// what the window below allows (a debug build on two cores sends about 240 a second).
const KIXIE_PER_SECOND: u32 = 100;

const KIXIE: Provider = Provider {
    name: "Kixie",
    example: "kixie-welcome-sms",
    flow_file: "flows/Lead_Welcome_SMS.yaml",
    action_line: "    action: KixieService.Send_SMS\n",
    host: "apig.kixie.com",
    deduplicates: false,
    rate_limit: Some(("credentials/Kixie_Endpoint.yaml", KIXIE_PER_SECOND)),
    phone_prefix: "+1415556",
};

/// The nodes' addresses; a restarted node has a new one.
struct Nodes {
    urls: Mutex<Vec<String>>,
    accepted: Mutex<Vec<(String, String)>>,
    accepted_count: AtomicUsize,
    attempts: AtomicUsize,
}

impl Nodes {
    fn url(&self, n: usize) -> String {
        let urls = self.urls.lock().unwrap();
        urls[n % urls.len()].clone()
    }
}

/// Posts leads round robin until `LEADS` were accepted. A post that may have reached a node is never
/// repeated: the next one has a new phone.
async fn post_leads(provider: &'static Provider, nodes: Arc<Nodes>, client: reqwest::Client) {
    while nodes.accepted_count.load(Ordering::SeqCst) < LEADS {
        let n = nodes.attempts.fetch_add(1, Ordering::SeqCst);
        assert!(n < 3 * LEADS, "{}: more than {} post attempts", provider.name, 3 * LEADS);
        // Numbered from 1000: four digits, clear of the fixed numbers the examples use.
        let phone = format!("{}{:04}", provider.phone_prefix, 1000 + n);
        let body = json!({"FirstName": format!("Lead{n}"), "LastName": "Nodes", "Phone": phone});
        let mut tries = 0;
        let answer = loop {
            let url = format!("{}/api/v1/records/Lead", nodes.url(n + tries));
            match client.post(&url).json(&body).send().await {
                Ok(response) => {
                    let status = response.status();
                    break response.text().await.map(|text| (status, text));
                }
                // No connection, so nothing was sent: post the same lead to the next node.
                Err(error) if error.is_connect() => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => break Err(error),
            }
        };
        if let Ok((status, text)) = answer {
            assert!(status == 201 || status.is_server_error(), "{}: {status} {text}", provider.name);
            if status == 201 {
                let created: Value = serde_json::from_str(&text).unwrap();
                let run = created["runs"][0].as_str().unwrap().to_string();
                nodes.accepted.lock().unwrap().push((run, phone));
                nodes.accepted_count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
}

async fn nodes_under_faults_with_two_killed(provider: &'static Provider) {
    let Some(database) = scratch_database() else { return };
    let url = database.url.clone();
    let h = tokio::task::spawn_blocking(move || {
        Harness::example(provider.example)
            .sandbox_account()
            .database(&url)
            .project_edit(move |p| {
                let action = provider.action_line;
                p.replace(provider.flow_file, action, &format!("{action}{RETRY}"));
                p.edit(provider.flow_file, without_scheduled_paths);
                if let Some((file, per_second)) = provider.rate_limit {
                    p.append(file, &format!("rate_limit:\n  per_second: {per_second}\n"));
                }
            })
            .start()
    })
    .await
    .unwrap();
    let h = Arc::new(h);
    let faults = json!({"error_rate": 0.04, "rate_429": 0.03, "retry_after_seconds": 1, "reset_rate": 0.03,
                        "latency_ms": [0, 15], "seed": 4242});
    h.sandbox_put(&format!("/_sandbox/faults/{}", provider.host), &faults).await;
    let started = {
        let h = h.clone();
        tokio::task::spawn_blocking(move || vec![h.start_node(), h.start_node()]).await.unwrap()
    };
    let urls = vec![h.server_url(), started[0].url.clone(), started[1].url.clone()];
    let processes = Arc::new(Mutex::new(started));
    let nodes = Arc::new(Nodes {
        urls: Mutex::new(urls),
        accepted: Mutex::new(Vec::new()),
        accepted_count: AtomicUsize::new(0),
        attempts: AtomicUsize::new(0),
    });
    let api = h.api().clone();
    let posters: Vec<_> =
        (0..POSTERS).map(|_| tokio::spawn(post_leads(provider, nodes.clone(), api.clone()))).collect();
    // Kill each extra node once, a third and two thirds into the load, and start it again.
    for (victim, at) in [(0usize, LEADS / 3), (1, 2 * LEADS / 3)] {
        while nodes.accepted_count.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (h, processes, nodes) = (h.clone(), processes.clone(), nodes.clone());
        tokio::task::spawn_blocking(move || {
            let mut processes = processes.lock().unwrap();
            processes[victim].kill();
            h.keep(&format!("node {victim} output (killed)"), &processes[victim].output());
            std::thread::sleep(Duration::from_millis(300));
            processes[victim] = h.start_node();
            nodes.urls.lock().unwrap()[victim + 1] = processes[victim].url.clone();
        })
        .await
        .unwrap();
    }
    for poster in posters {
        poster.await.unwrap();
    }

    let base = h.server_url();
    let active = format!("{base}/api/v1/runs?status=ready,running,waiting&limit=5");
    h.eventually(&format!("{}: every run to end", provider.name), Duration::from_secs(120), || async {
        get_json(&api, &active).await["runs"].as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;

    let accepted = std::mem::take(&mut *nodes.accepted.lock().unwrap());
    assert!(accepted.len() >= LEADS, "{} leads accepted", accepted.len());
    let sent = h.sandbox_get(&format!("/_sandbox/messages?host={}", provider.host)).await;
    let mut texts: HashMap<String, usize> = HashMap::new();
    for message in sent.as_array().unwrap() {
        let destination = message["destination"].as_str().unwrap().trim_start_matches('+').to_string();
        *texts.entry(destination).or_default() += 1;
    }
    let mut unknown = 0;
    for (run_id, phone) in &accepted {
        let run = get_json(&api, &format!("{base}/api/v1/runs/{run_id}")).await;
        let texted = texts.get(phone.trim_start_matches('+')).copied().unwrap_or(0);
        match run["status"].as_str() {
            Some("finished") => {
                let trace = run["trace"].as_array().unwrap();
                let sent = trace.iter().rev().find(|e| e["element"] == "Send_SMS");
                assert!(
                    sent.is_some_and(|e| e["fault"].is_null()),
                    "{}: {phone}'s run finished without its send accepted: {run}",
                    provider.name
                );
                assert_eq!(texted, 1, "{}: {phone} delivered, texted {texted} times: {run}", provider.name);
            }
            Some("unknown") if !provider.deduplicates => {
                unknown += 1;
                assert!(texted <= 1, "{}: {phone} texted {texted} times: {run}", provider.name);
                assert!(
                    run["fault"].as_str().is_some_and(|f| !f.is_empty()),
                    "an unknown run says why: {run}"
                );
            }
            _ => panic!("{}: {phone}'s run ended {}: {run}", provider.name, run["status"]),
        }
    }
    assert!(texts.values().all(|&n| n == 1), "{}: a phone texted twice: {texts:?}", provider.name);
    if let Some((_, per_second)) = provider.rate_limit {
        let requests = h.sandbox_get(&format!("/_sandbox/requests?host={}", provider.host)).await;
        let mut times: Vec<chrono::DateTime<chrono::Utc>> = requests
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["received_at"].as_str().unwrap().parse().unwrap())
            .collect();
        times.sort();
        let window = chrono::Duration::seconds(5);
        let busiest = (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| **t - times[i] < window).count())
            .max()
            .unwrap_or(0);
        // 5 s of the limit, the nodes' buckets full at the start (one limit in all), and one second of
        // the whole limit for each of the two restarted nodes before they count the others. Every
        // term is a multiple of the limit, so the bound keeps its meaning at any limit; the limit
        // must only stay below what the nodes can send, or a missing share would go unseen.
        let allowed = (5 + 1 + 2) * per_second as usize;
        assert!(
            busiest <= allowed,
            "{}: {busiest} requests in 5 s, more than the {allowed} a shared limit of {per_second}/s allows",
            provider.name
        );
        eprintln!("{}: at most {busiest} requests in any 5 s (allowed {allowed})", provider.name);
    }
    let ledger = get_json(&api, &format!("{base}/api/v1/messages?limit=10000")).await;
    let rows = ledger["messages"].as_array().unwrap();
    assert!(
        rows.len() < 10_000,
        "{}: the ledger is longer than one page; a pending row could hide",
        provider.name
    );
    let pending = rows.iter().filter(|m| m["status"] == "pending").count();
    assert_eq!(pending, 0, "{}: ledger rows left pending", provider.name);
    eprintln!(
        "{}: {} leads accepted in {} posts over 3 nodes, 2 kills, {} texted, {unknown} unknown",
        provider.name,
        accepted.len(),
        nodes.attempts.load(Ordering::SeqCst),
        texts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_by_eight_texts_every_lead_once_across_three_nodes_when_two_are_killed_under_faults() {
    nodes_under_faults_with_two_killed(&EIGHT_BY_EIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kixie_never_texts_a_phone_twice_across_three_nodes_when_two_are_killed_under_faults() {
    nodes_under_faults_with_two_killed(&KIXIE).await;
}
