//! Failed, waiting and unknown runs as first-class things: list them, look at one, run it again.

use crate::queue::Job;
use crate::{Engine, EngineError, now_text};
use herald_flow::RunState;
use herald_store::{MessageFilter, MessageRow, ReceiptRow, RunQuery, RunRow, RunStatus};
use serde::{Deserialize, Serialize};

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

    /// Runs a failed, unknown or finished run again from the element where it stopped, or from
    /// `from_element`; a waiting run is retried at once. A retried send is a new message to the
    /// provider (a new idempotency key): that is what a retry by hand asks for.
    pub async fn retry_run(&self, id: &str, from_element: Option<&str>) -> Result<RetryOutcome, EngineError> {
        let run = self.run(id).await?;
        let refuse = |reason: String| EngineError::NotRetryable { id: id.to_string(), reason };
        if matches!(run.status, RunStatus::Ready | RunStatus::Running) {
            return Err(refuse(format!("it is {}; wait for it to end", run.status.as_str())));
        }
        // Retried on the version it started on, as it will run.
        let project = self.project_for(run.version).await.map_err(refuse)?;
        let flow = project
            .flows
            .get(&run.flow)
            .cloned()
            .ok_or_else(|| refuse(format!("its flow {} is not in the loaded project", run.flow)))?;
        let mut state: RunState = RunState::deserialize(&run.state)
            .map_err(|error| refuse(format!("its journaled state cannot be read: {error}")))?;
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
