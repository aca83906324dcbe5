//! The store's part of the hot path: one write that inserts a record and the run it starts, and
//! returns once committed. `cargo bench -p herald-store` prints its latency alone (one writer: no
//! group to share a commit with) and under 64 concurrent writers (group commit), with percentiles and
//! throughput, so that a change to the store can be compared before and after on the same machine;
//! on SQLite, then on PostgreSQL (a scratch database on the server `HERALD_TEST_POSTGRES` names, else
//! the local one; skipped with a message when none answers), with the round trips per write.
//!
//! A plain timing loop rather than a benchmark framework: what matters is the latency distribution of
//! a write under concurrency, which a per-iteration framework does not measure.

use herald_store::{NewRun, Store};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALONE: usize = 5_000;
const CONCURRENT: usize = 64;
const CONCURRENT_WRITES: usize = 40_000;
const ROUNDS: usize = 3;

fn lead(i: usize) -> Map<String, Value> {
    json!({
        "Id": format!("00Q{i:012}"), "FirstName": "Ada", "LastName": format!("Bench{i}"),
        "Company": "Analytical Engines", "Phone": format!("+1415{:07}", i % 10_000_000),
        "Email": "ada@example.com", "LeadSource": "Web", "Status": "Open - Not Contacted",
        "CreatedDate": "2026-11-21T10:00:00.000000Z", "LastModifiedDate": "2026-11-21T10:00:00.000000Z"
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The record write the engine makes for a new lead: the record and one run, in one write.
async fn write_lead(store: &Store, i: usize, state: &Arc<Value>) -> Duration {
    let (data, state) = (lead(i), Arc::clone(state));
    let started = Instant::now();
    store
        .write(move |tx| {
            let (id, run_id) = (format!("00Q{i:012}"), format!("r{i}"));
            tx.insert_record("Lead", &id, &data, "2026-11-21T10:00:00.000000Z")?;
            let run = NewRun {
                id: &run_id,
                flow: "Welcome",
                object: "Lead",
                record_id: &id,
                state: &state,
                version: None,
                owner: Some("node_bench"),
            };
            tx.insert_run(run, "2026-11-21T10:00:00.000000Z")
        })
        .await
        .unwrap();
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(phase: &str, mut latencies: Vec<Duration>, wall: Duration, trips: u64) {
    latencies.sort();
    let per_write = trips as f64 / latencies.len() as f64;
    println!(
        "{phase:<40} writes {:>6}  p50 {:>8.1} us  p99 {:>8.1} us  throughput {:>8.0} writes/s  round trips/write {per_write:>5.2}",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        latencies.len() as f64 / wall.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let state =
            Arc::new(json!({"flow": "Welcome", "pc": 0, "vars": {"greeting": "Hi Ada", "attempts": 0}}));
        for round in 1..=ROUNDS {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
            measure(&format!("round {round}: SQLite"), &store, &state).await;
        }
        let server = std::env::var("HERALD_TEST_POSTGRES")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or("postgres://root@127.0.0.1:5432/postgres".into());
        for round in 1..=ROUNDS {
            // Each round on a new database, as SQLite's rounds are on new files.
            let scratch = match herald_store::postgres::ScratchDatabase::create_on(&server, "herald_bench") {
                Ok(scratch) => scratch,
                Err(error) => return println!("PostgreSQL skipped: {error}"),
            };
            let store = Store::open(std::path::Path::new(&scratch.url)).await.unwrap();
            measure(&format!("round {round}: PostgreSQL"), &store, &state).await;
        }
    });
}

async fn measure(what: &str, store: &Store, state: &Arc<Value>) {
    let mut next = 0;
    for _ in 0..1_000 {
        write_lead(store, next, state).await;
        next += 1;
    }
    let trips = store.round_trips().unwrap_or(0);
    let started = Instant::now();
    let mut alone = Vec::with_capacity(ALONE);
    for _ in 0..ALONE {
        alone.push(write_lead(store, next, state).await);
        next += 1;
    }
    report(
        &format!("{what}, one writer"),
        alone,
        started.elapsed(),
        store.round_trips().unwrap_or(0) - trips,
    );

    let trips = store.round_trips().unwrap_or(0);
    let started = Instant::now();
    let writers: Vec<_> = (0..CONCURRENT)
        .map(|writer| {
            let (store, state) = (store.clone(), Arc::clone(state));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in (writer..CONCURRENT_WRITES).step_by(CONCURRENT) {
                    latencies.push(write_lead(&store, next + i, &state).await);
                }
                latencies
            })
        })
        .collect();
    let mut concurrent = Vec::with_capacity(CONCURRENT_WRITES);
    for writer in writers {
        concurrent.extend(writer.await.unwrap());
    }
    let trips = store.round_trips().unwrap_or(0) - trips;
    report(&format!("{what}, {CONCURRENT} writers"), concurrent, started.elapsed(), trips);
    store.close().await;
}
