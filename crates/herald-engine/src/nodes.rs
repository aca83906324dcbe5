//! What a node does on a database other nodes share (PostgreSQL): it claims the waiting runs that
//! came due whichever node parked them, splits the rate limits and daily budgets with the other
//! nodes, and applies the consent changes they announce. On a database of one server (SQLite) none of
//! it runs.
//!
//! Waking, and why this way: a run written `waiting` and due within ten seconds (a retry, a rate
//! limit, a run handed over by a process that runs none) is announced by its write's commit with its
//! due time ([`Notice::WorkDue`]); one due later (an hour-out scheduled path, a long Wait) is not,
//! since a notice per lead cost the database more than the poll below. The node that parked it wakes it itself ([`Engine::wake_at`]); every
//! other node keeps the announced times and arms one timer, for the earliest, which claims every run
//! due by then. So a run whose node is busy or has died is taken when it comes due, by whichever node
//! asks first (claims skip the rows another node has locked), without every node asking the database
//! each second. Notices sent while a node's listening connection was down are lost: when it
//! reconnects ([`Notice::Resync`]) the node claims at once, and a slow poll ([`DUE_POLL_EVERY`]) is
//! the backstop for runs whose notice it missed and for those not announced.

use crate::Engine;
use crate::queue::Job;
use chrono::{DateTime, Utc};
use herald_store::Notice;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// How often a node on a shared database claims the waiting runs that came due without being told
/// of them: the backstop. Every node hears of a waiting run when it is written and claims it when it
/// comes due, so the poll only finds a run whose notice this node missed while its listening
/// connection was down and that came due after it reconnected. Ten seconds is how late such a run
/// may be, for a claim every ten seconds per node instead of one each second.
pub const DUE_POLL_EVERY: Duration = Duration::from_secs(10);
/// How often a node on a shared database counts the live nodes (the per-second rate limits are split
/// between them) and reads every node's calls today into the daily budgets: each second, so that a
/// node joining moves the others' shares within a second, and nodes together overshoot a daily budget
/// by at most the calls of the last second.
const SHARES_EVERY: Duration = Duration::from_secs(1);
/// The least time between two claims made for announced runs: a burst of runs due microseconds apart
/// (a rate limit parking a batch) costs one claim, not one each.
const CLAIM_GAP: Duration = Duration::from_millis(100);
/// The most due times a node keeps from notices (scheduled paths an hour out leave one per lead);
/// beyond them it forgets the latest, which the node that parked them and the poll still wake.
const MAX_ANNOUNCED: usize = 10_000;

/// The due times other nodes announced and no claim has taken yet, for one timer.
#[derive(Debug, Default)]
struct Announced {
    due: BTreeSet<DateTime<Utc>>,
    last_claim: Option<Instant>,
}

impl Announced {
    fn note(&mut self, at: DateTime<Utc>) {
        self.due.insert(at);
        if self.due.len() > MAX_ANNOUNCED {
            self.due.pop_last();
        }
    }

    /// When to claim next, on the timer's clock: just after the earliest due time (a claim refuses a
    /// run not due yet), and at least [`CLAIM_GAP`] after the last claim.
    fn next_claim(&self, now: DateTime<Utc>, clock: Instant) -> Option<Instant> {
        let earliest = *self.due.first()?;
        let at = clock + (earliest - now).to_std().unwrap_or_default() + Duration::from_millis(1);
        Some(self.last_claim.map_or(at, |last| at.max(last + CLAIM_GAP)))
    }

    /// A claim is about to run: it takes every run due by `now`.
    fn claiming(&mut self, now: DateTime<Utc>, clock: Instant) {
        self.due.retain(|at| *at > now);
        self.last_claim = Some(clock);
    }
}

/// The fault a handed-over run shows until a node takes it (see [`hand_over`]).
const HANDED_OVER: &str =
    "handed over by a process that runs no flows: the first herald serve to ask takes it";

/// Writes the state of a run that this process will not run (it has no workers: `herald runs retry`
/// or `wake` from the command line) for whichever server takes it. On a shared database it waits, due
/// now: the write announces it, and the first node to claim it runs it (a `ready` run is only ever
/// started by its owner's sweep, seconds later, or by a takeover once its owner is gone). On a database
/// of one server it is made `ready`, for that server's sweep.
pub(crate) fn hand_over(
    tx: &mut dyn herald_store::WriteTx,
    shared: bool,
    run_id: &str,
    state: &str,
) -> Result<(), herald_store::StoreError> {
    let now = crate::now_text();
    if shared {
        tx.wait_run(run_id, state, &now, HANDED_OVER, &now)
    } else {
        tx.save_run(run_id, herald_store::RunStatus::Ready, state, None, &now)
    }
}

impl Engine {
    /// On a database shared by several nodes: claims the waiting runs that came due every
    /// `due_poll_every` (the backstop, see [`DUE_POLL_EVERY`]), and every [`SHARES_EVERY`] counts the
    /// live nodes, which share the rate limits, and shares the daily budgets.
    pub(crate) fn start_due_poll(&self, due_poll_every: Duration) {
        if !self.inner.store.shared() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(due_poll_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = engine.claim_due().await {
                    tracing::warn!(%error, "could not claim the waiting runs that came due");
                }
            }
        });
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SHARES_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
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
    /// stops this node's sends to that phone as soon as it commits, and a run another node parked is
    /// claimed when it comes due.
    pub(crate) fn follow_notices(&self) {
        let Some(mut notices) = self.inner.store.notices() else { return };
        let engine = self.clone();
        tokio::spawn(async move {
            let mut announced = Announced::default();
            loop {
                let next_claim = announced.next_claim(Utc::now(), Instant::now());
                let timer = async move {
                    match next_claim {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    notice = notices.recv() => match notice {
                        Ok(Notice::Consent(row)) => engine.inner.consent.set(&row),
                        // A time that cannot be read is claimed for at once: a claim takes only runs due.
                        Ok(Notice::WorkDue { at }) => announced.note(
                            DateTime::parse_from_rfc3339(&at).map_or_else(|_| Utc::now(), |at| at.with_timezone(&Utc)),
                        ),
                        missed @ (Ok(Notice::Resync) | Err(RecvError::Lagged(_))) => {
                            tracing::warn!(
                                ?missed,
                                "missed notices from other nodes; reading consent again and claiming the due runs"
                            );
                            match engine.inner.store.consents().await {
                                Ok(rows) => engine.inner.consent.replace(&rows),
                                Err(error) => tracing::warn!(%error, "could not read consent again"),
                            }
                            announced.note(Utc::now());
                        }
                        Err(RecvError::Closed) => break,
                    },
                    () = timer => {
                        announced.claiming(Utc::now(), Instant::now());
                        match engine.claim_due().await {
                            // More are due than a claim takes: the next claim follows after the gap.
                            Ok(claimed) if claimed as i64 >= crate::queue::SWEEP_BATCH => {
                                announced.note(Utc::now())
                            }
                            Ok(_) => {}
                            Err(error) => tracing::warn!(%error, "could not claim the runs other nodes announced"),
                        }
                    }
                }
            }
        });
    }

    /// Claims the waiting runs due now, up to a batch, and queues them.
    pub(crate) async fn claim_due(&self) -> Result<usize, crate::EngineError> {
        let runs = self
            .inner
            .store
            .claim_due_runs(self.node_id(), &crate::now_text(), crate::queue::SWEEP_BATCH)
            .await?;
        let claimed = runs.len();
        for run in runs {
            self.inner.queue.push(Job::Claimed(Box::new(run)));
        }
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn many_announced_times_arm_one_timer_for_the_earliest_and_a_claim_keeps_the_later_ones() {
        let (now, clock) = (at(0), Instant::now());
        let mut announced = Announced::default();
        assert_eq!(announced.next_claim(now, clock), None, "nothing announced, no timer");
        for seconds in [30, 5, 60, 5] {
            announced.note(at(seconds));
        }
        let first = announced.next_claim(now, clock).unwrap();
        assert!(
            first > clock + Duration::from_secs(5) && first < clock + Duration::from_secs(6),
            "{first:?}"
        );

        announced.claiming(at(5), first);
        let second = announced.next_claim(at(5), first).unwrap();
        assert!(second > first + Duration::from_secs(25), "the 30 s one is next: {second:?}");
        assert_eq!(announced.due.len(), 2, "30 s and 60 s are kept");
    }

    #[test]
    fn a_time_already_due_is_claimed_at_once_but_not_sooner_than_the_gap_after_the_last_claim() {
        let (now, clock) = (at(10), Instant::now());
        let mut announced = Announced::default();
        announced.note(at(3));
        assert!(announced.next_claim(now, clock).unwrap() <= clock + Duration::from_millis(1));
        announced.claiming(now, clock);
        announced.note(at(10));
        assert_eq!(announced.next_claim(now, clock), Some(clock + CLAIM_GAP));
    }

    #[test]
    fn past_the_most_times_kept_the_latest_are_forgotten() {
        let mut announced = Announced::default();
        for seconds in 0..=MAX_ANNOUNCED as i64 {
            announced.note(at(seconds));
        }
        assert_eq!(announced.due.len(), MAX_ANNOUNCED);
        assert_eq!(announced.due.first(), Some(&at(0)));
        assert_eq!(announced.due.last(), Some(&at(MAX_ANNOUNCED as i64 - 1)));
    }
}
