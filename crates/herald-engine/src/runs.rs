//! Failed, waiting and unknown runs as first-class things: list them, look at one, run it again.

use crate::queue::Job;
use crate::{Engine, EngineError, now_text};
use herald_flow::{CompiledFlow, RunState};
use herald_providers::Provider;
use herald_store::{MessageFilter, MessageRow, ReceiptRow, RunQuery, RunRow, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What `retry_run` did.
#[derive(Clone, Debug, Serialize)]
pub struct RetryOutcome {
    pub run_id: String,
    /// The element the run goes on from.
    pub from_element: String,
    /// Whether a worker of this process took it; otherwise it was handed over (see
    /// `nodes::hand_over`): a `herald serve` running on this database takes it, or the next one at
    /// start.
    pub queued: bool,
}

/// What a retry of a run may do, for a person to read before asking for it: where it would go on from,
/// and which sends it may repeat.
#[derive(Clone, Debug)]
pub struct RetryPlan {
    pub run: RunRow,
    /// Where a retry goes on from when no element is named: the element the run stopped at.
    pub stopped_at: Option<String>,
    /// Every element of the run's flow, in file order, with its kind: a retry may name any of them.
    pub elements: Vec<(String, &'static str)>,
    /// Sends whose outcome herald does not know (ledger rows `pending` or `unknown`, or the send an
    /// `unknown` run stopped at when no row names it): they may have gone out, and a retry sends them
    /// again.
    pub uncertain: Vec<PlannedSend>,
    /// Sends the provider accepted: going on from their element, or from one that leads to it, sends
    /// them again.
    pub accepted: Vec<PlannedSend>,
}

/// One send of a run, as [`RetryPlan`] lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedSend {
    pub element: Option<String>,
    pub provider: String,
    /// The name people know the provider by ("8x8 SMS").
    pub provider_label: String,
    /// The phone number (or other address) it went to; `None` when no ledger row names it.
    pub destination: Option<String>,
    /// The ledger's status of it; `None` when no ledger row names it.
    pub status: Option<String>,
    /// Whether the provider recognises a resend that carries the same idempotency key (8x8's
    /// `clientMessageId`). A retry by hand sends with a new key, so even then it is a new message.
    pub deduplicates: bool,
    /// The body field the provider reads herald's key from, when it reads one.
    pub key_field: Option<&'static str>,
}

/// Ledger statuses of a message the provider took: a resend is a second message.
const ACCEPTED: [&str; 4] = ["queued", "sent", "delivered", "read"];
/// Ledger statuses of a message that may or may not have gone out.
const UNCERTAIN: [&str; 2] = ["pending", "unknown"];

/// The most ledger rows of one run a retry plan reads (a bulk run's batch sends can have thousands).
const PLANNED_ROWS: i64 = 1_000;

impl PlannedSend {
    fn of_row(row: &MessageRow) -> PlannedSend {
        let provider = Provider::from_name(&row.provider);
        PlannedSend {
            element: row.element.clone(),
            provider: row.provider.clone(),
            provider_label: provider.map_or_else(|| row.provider.clone(), |p| p.label().to_string()),
            destination: Some(row.destination.clone()),
            status: Some(row.status.clone()),
            deduplicates: provider.is_some_and(deduplicates),
            key_field: provider.and_then(|p| p.idempotency_field()).map(|field| field.field),
        }
    }
}

/// Whether the provider recognises a resend of a single message by herald's key.
fn deduplicates(provider: Provider) -> bool {
    provider.recognises_resend(&Value::Object(Map::new()))
}

impl Engine {
    pub async fn run(&self, id: &str) -> Result<RunRow, EngineError> {
        self.inner.store.run(id).await?.ok_or_else(|| EngineError::RunNotFound(id.to_string()))
    }

    pub async fn runs_for_record(&self, record_id: &str) -> Result<Vec<RunRow>, EngineError> {
        Ok(self.inner.store.runs_for_record(record_id).await?)
    }

    /// The newest runs first, of the given statuses (all when empty).
    pub async fn list_runs(&self, statuses: &[RunStatus], limit: i64) -> Result<Vec<RunRow>, EngineError> {
        Ok(self.inner.store.recent_runs(statuses, limit).await?)
    }

    /// One page of runs, newest first (see [`RunQuery`]).
    pub async fn runs_page(&self, query: &RunQuery) -> Result<Vec<RunRow>, EngineError> {
        Ok(self.inner.store.runs_page(query).await?)
    }

    /// A run with the flow of the version it started on (a retry runs on it) and its journaled state.
    async fn run_on_its_flow(&self, id: &str) -> Result<(RunRow, Arc<CompiledFlow>, RunState), EngineError> {
        let run = self.run(id).await?;
        let refuse = |reason: String| EngineError::NotRetryable { id: id.to_string(), reason };
        let project = self.project_for(run.version).await.map_err(refuse)?;
        let flow = project
            .flows
            .get(&run.flow)
            .cloned()
            .ok_or_else(|| refuse(format!("its flow {} is not in the loaded project", run.flow)))?;
        let state: RunState = RunState::deserialize(&run.state)
            .map_err(|error| refuse(format!("its journaled state cannot be read: {error}")))?;
        Ok((run, flow, state))
    }

    /// Runs a failed, unknown or finished run again from the element where it stopped, or from
    /// `from_element`; a waiting run is retried at once. A retried send is a new message to the
    /// provider (a new idempotency key): that is what a retry by hand asks for.
    pub async fn retry_run(&self, id: &str, from_element: Option<&str>) -> Result<RetryOutcome, EngineError> {
        let refuse = |reason: String| EngineError::NotRetryable { id: id.to_string(), reason };
        let (run, flow, mut state) = self.run_on_its_flow(id).await?;
        if matches!(run.status, RunStatus::Ready | RunStatus::Running) {
            return Err(refuse(format!("it is {}; wait for it to end", run.status.as_str())));
        }
        let from = if run.status == RunStatus::Waiting && from_element.is_none() {
            // Keep the pending attempt and its idempotency key: it is the same send, only sooner.
            flow.retry_now(&mut state).unwrap_or_default()
        } else {
            flow.restart(&mut state, from_element).map_err(refuse)?
        };
        // Held before it is ready, so the sweep does not take it first.
        let mut held = self.inner.queue.hold([id]);
        let queued = self.inner.queue.has_workers().await;
        let (engine, run_id, snapshot) = (self.clone(), id.to_string(), crate::journal(&state));
        self.to_completion(async move {
            let shared = engine.inner.store.shared();
            let id = run_id.clone();
            engine
                .inner
                .store
                .write(move |tx| {
                    if queued {
                        tx.save_run(&id, RunStatus::Ready, &snapshot, None, &now_text())
                    } else {
                        crate::nodes::hand_over(tx, shared, &id, &snapshot)
                    }
                })
                .await?;
            if queued {
                engine.inner.queue.push_held(&mut held, Job::Claim(run_id));
            }
            Ok(())
        })
        .await?;
        Ok(RetryOutcome { run_id: id.to_string(), from_element: from, queued })
    }

    /// What retrying run `id` may do (see [`RetryPlan`]), read from its journaled state, its flow as
    /// of the version it runs on and its ledger rows. Nothing is changed.
    pub async fn retry_plan(&self, id: &str) -> Result<RetryPlan, EngineError> {
        let (run, flow, state) = self.run_on_its_flow(id).await?;
        let stopped_at = flow.stopped_at(&state);
        let elements = flow
            .element_names()
            .map(|name| (name.to_string(), flow.element_kind(name).map_or("", |kind| kind.as_str())))
            .collect();
        let filter =
            MessageFilter { run_id: Some(id.to_string()), limit: PLANNED_ROWS, ..Default::default() };
        let mut rows = self.inner.store.messages(&filter).await?;
        rows.reverse();
        let of_status = |statuses: &[&str]| -> Vec<PlannedSend> {
            rows.iter()
                .filter(|row| statuses.contains(&row.status.as_str()))
                .map(PlannedSend::of_row)
                .collect()
        };
        let mut uncertain = of_status(&UNCERTAIN);
        let accepted = of_status(&ACCEPTED);
        // A send in flight to a provider whose messages herald cannot read from the request (a generic
        // API) leaves no ledger row; the run's `unknown` status still says it may have gone out.
        if run.status == RunStatus::Unknown && uncertain.is_empty() {
            let provider = stopped_at
                .as_deref()
                .and_then(|element| flow.credential_uses().find(|used| used.element == element))
                .map(|used| used.provider);
            uncertain.push(PlannedSend {
                element: stopped_at.clone(),
                provider: provider.map_or_else(String::new, |p| p.name().to_string()),
                provider_label: provider
                    .map_or_else(|| "the provider".to_string(), |p| p.label().to_string()),
                destination: None,
                status: None,
                deduplicates: provider.is_some_and(deduplicates),
                key_field: provider.and_then(|p| p.idempotency_field()).map(|field| field.field),
            });
        }
        Ok(RetryPlan { run, stopped_at, elements, uncertain, accepted })
    }

    /// Ledger rows, newest first.
    pub async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRow>, EngineError> {
        Ok(self.inner.store.messages(filter).await?)
    }

    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>, EngineError> {
        Ok(self.inner.store.message(id).await?)
    }

    /// Webhook events received, newest first; `unmatched_only` lists those no message claimed.
    pub async fn receipts(&self, unmatched_only: bool, limit: i64) -> Result<Vec<ReceiptRow>, EngineError> {
        Ok(self.inner.store.receipts(unmatched_only, limit).await?)
    }

    pub async fn consents(&self) -> Result<Vec<herald_store::ConsentRow>, EngineError> {
        Ok(self.inner.store.consents().await?)
    }
}
