//! Restart recovery: the runs a stopped process left `ready` are queued again; a run left `running`
//! resumes from its journal, unless a callout was in flight to a provider that cannot recognise a
//! resend: then it ends `unknown`, never sent twice. Waiting runs are woken when due.
//!
//! A stopped process is found the same way whether it was this server's previous life or another
//! node on a shared database: its runs are owned by a node id no longer seen. On a database of one
//! server (SQLite) a starting server takes every such run at once; nodes sharing a database
//! (PostgreSQL) take a node's runs once it has not been seen for [`crate::vault::LIVE_FOR`], each
//! run by one node ([`herald_store::WriteTx::adopt_orphaned_runs`]), at start and on every sweep.

use crate::ledger;
use crate::queue::Job;
use crate::{Engine, EngineError, now_text};
use chrono::Utc;
use herald_flow::RunState;
use herald_store::{RunRow, RunStatus};
use serde::Deserialize;

/// A time no node was seen at or after: with it, every other node counts as stopped.
const NO_NODE_IS_SEEN_SINCE: &str = "9999-12-31T23:59:59.999999Z";
/// Runs taken over per write.
const ADOPT_BATCH: i64 = 500;

impl Engine {
    pub(crate) async fn recover(&self) -> Result<(), EngineError> {
        let live_since = if self.inner.store.shared() {
            crate::vault::live_since()
        } else {
            // Only this server uses the database: whatever node left a run unfinished is gone.
            NO_NODE_IS_SEEN_SINCE.to_string()
        };
        self.adopt_orphans(&live_since).await?;
        for (run_id, at) in self.inner.store.waiting_runs().await? {
            let at = chrono::DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            self.wake_at(run_id, at);
        }
        Ok(())
    }

    /// Takes over the `ready` and `running` runs of the nodes not seen since `live_since` and queues
    /// them (an interrupted one resumes, or ends `unknown`); returns how many it took.
    pub(crate) async fn adopt_orphans(&self, live_since: &str) -> Result<usize, EngineError> {
        let mut adopted = 0;
        loop {
            let runs = self.inner.store.adopt_orphaned_runs(self.node_id(), live_since, ADOPT_BATCH).await?;
            let page = runs.len();
            for run in runs {
                if run.status == RunStatus::Running && !self.resume_interrupted(&run).await? {
                    continue;
                }
                self.inner.queue.push(Job::Claim(run.id));
            }
            adopted += page;
            if page < ADOPT_BATCH as usize {
                return Ok(adopted);
            }
        }
    }

    /// A run that was running when the process stopped: resume it, unless a callout may have reached a
    /// provider that cannot recognise a resend. Returns whether it was put back in the queue.
    async fn resume_interrupted(&self, run: &RunRow) -> Result<bool, EngineError> {
        let project = match self.project_for(run.version).await {
            Ok(project) => project,
            Err(message) => {
                self.finish(run, RunStatus::Failed, run.state.to_string(), Some(&message), &mut Vec::new())
                    .await?;
                return Ok(false);
            }
        };
        let Some(flow) = project.flows.get(&run.flow) else {
            self.finish(
                run,
                RunStatus::Failed,
                run.state.to_string(),
                Some(&format!("flow {} no longer exists", run.flow)),
                &mut Vec::new(),
            )
            .await?;
            return Ok(false);
        };
        let state: Option<RunState> = RunState::deserialize(&run.state).ok();
        let in_flight = state.as_ref().and_then(|s| s.pending().filter(|p| p.sent).map(|p| (s, p)));
        if let Some((state, pending)) = in_flight {
            let credential = flow.pending_credential(state);
            // The journaled inputs have the body's shape: a `destinations` batch shows its list.
            let recognised = credential.is_some_and(|c| c.provider.recognises_resend(&pending.inputs));
            if !recognised {
                let message = format!(
                    "the callout of element {} was in flight when herald stopped; the provider may have received it and cannot recognise a resend, so it was not sent again. Check the provider's log, then retry the run if the message did not go out",
                    pending.element
                );
                let event = ledger::MessageEvent::failed(
                    herald_providers::MessageStatus::Unknown,
                    "herald",
                    &message,
                );
                let provider = credential.map_or_else(herald_providers::Provider::generic, |c| c.provider);
                let key = pending.idempotency_key.clone();
                let events = vec![(ledger::EVERY_POSITION, event)];
                let mut ledger = vec![ledger::LedgerUpdate::Answer { key, provider, events }];
                self.finish(run, RunStatus::Unknown, run.state.to_string(), Some(&message), &mut ledger)
                    .await?;
                return Ok(false);
            }
        }
        self.inner
            .store
            .save_run(&run.id, RunStatus::Ready, &run.state.to_string(), None, &now_text())
            .await?;
        Ok(true)
    }
}
