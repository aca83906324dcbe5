//! What a node does on a database other nodes share (PostgreSQL): it claims the waiting runs that
//! came due whichever node parked them, splits the rate limits and daily budgets with the other
//! nodes, and applies the consent changes they announce. On a database of one server (SQLite) none of
//! it runs.

use crate::Engine;
use crate::queue::Job;
use std::time::Duration;

/// How often nodes sharing a database look for waiting runs that came due.
const DUE_POLL_EVERY: Duration = Duration::from_secs(1);

impl Engine {
    /// On a database shared by several nodes, every [`DUE_POLL_EVERY`]: claims the waiting runs that
    /// came due (parked by any node; the node that parked one also wakes it on time, the poll takes
    /// those whose node is busy or gone), and counts the live nodes, which share the rate limits.
    pub(crate) fn start_due_poll(&self) {
        if !self.inner.store.shared() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(DUE_POLL_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = engine.claim_due().await {
                    tracing::warn!(%error, "could not claim the waiting runs that came due");
                }
                let live_since = crate::vault::live_since();
                match engine.inner.store.vault_nodes().await {
                    Ok(nodes) => {
                        let live = nodes.iter().filter(|node| node.seen_at >= live_since).count();
                        engine.inner.limits.share_between(u32::try_from(live).unwrap_or(u32::MAX));
                    }
                    Err(error) => tracing::warn!(%error, "could not count the live nodes"),
                }
                engine.share_daily_budgets().await;
            }
        });
    }

    /// Reads today's calls of every node from the ledger into each daily budget, so that nodes
    /// together stay within it (overshooting by at most the calls of the last second).
    async fn share_daily_budgets(&self) {
        let now = chrono::Utc::now();
        let day_start =
            crate::limits::RateLimits::day_start(now).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        for name in self.inner.limits.daily_budgets() {
            match self.inner.store.messages_since(&name, &day_start).await {
                Ok(used) => self.inner.limits.note_used_today(
                    &name,
                    u32::try_from(used.max(0)).unwrap_or(u32::MAX),
                    now,
                ),
                Err(error) => {
                    tracing::warn!(%error, named_credential = %name, "could not read today's calls")
                }
            }
        }
    }

    /// On a shared database, applies what other nodes announce: an opt-out received by any node
    /// stops this node's sends to that phone as soon as it commits.
    pub(crate) fn follow_notices(&self) {
        let Some(mut notices) = self.inner.store.notices() else { return };
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(herald_store::Notice::Consent(row)) => engine.inner.consent.set(&row),
                    missed @ (Ok(herald_store::Notice::Resync)
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        tracing::warn!(?missed, "missed notices from other nodes; reading consent again");
                        match engine.inner.store.consents().await {
                            Ok(rows) => engine.inner.consent.replace(&rows),
                            Err(error) => tracing::warn!(%error, "could not read consent again"),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Claims the waiting runs due now, up to a batch, and queues them.
    pub(crate) async fn claim_due(&self) -> Result<usize, crate::EngineError> {
        let runs = self.inner.store.claim_due_runs(self.node_id(), &crate::now_text(), crate::queue::SWEEP_BATCH).await?;
        let claimed = runs.len();
        for run in runs {
            self.inner.queue.push(Job::Claimed(Box::new(run)));
        }
        Ok(claimed)
    }
}
