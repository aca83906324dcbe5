//! The run queue: the jobs workers take, the runs this process holds, and the sweep that makes a
//! committed run that nobody holds impossible to forget.
//!
//! A run committed as `ready` is executed because a job for it is queued in this process. Anything
//! that separates the commit from the queueing (a caller that went away, a write of another process)
//! would otherwise leave the run `ready` until the next restart's recovery. So every run with a job
//! here is *held*, from the moment its job is queued until it ends or waits durably, and a periodic
//! sweep reads the `ready` runs older than a few seconds (an indexed read of a few rows) and queues
//! the ones no job holds. A run committed by this process and found by the sweep is a defect, logged
//! and counted; one made ready by another process (`herald runs retry` while `serve` runs) is simply
//! taken.

use crate::driver::Holding;
use crate::{Engine, EngineError};
use herald_flow::{CompiledFlow, RunState};
use herald_store::RunRow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// How often the sweep looks for `ready` runs that no job holds.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long a `ready` run must have been untouched before the sweep takes it: far longer than a
/// committed run waits for its job under any load admission allows.
pub const SWEEP_AFTER: Duration = Duration::from_secs(5);
/// How many stale runs one sweep takes at most; the next sweep takes more.
pub(crate) const SWEEP_BATCH: i64 = 1000;
/// How many fresh runs may wait in the queue with their state; more wait as ids.
pub(crate) const STATES_IN_QUEUE: usize = 1024;

/// Work for a worker.
pub(crate) enum Job {
    /// A stored run to claim (`ready`, or `waiting` and due): recovered, retried, woken or swept.
    Claim(String),
    /// A run this process just committed: nothing else knows of it yet, so it needs no claim (its
    /// first journal write marks it running). It comes with its state while the queue is short;
    /// beyond [`STATES_IN_QUEUE`] only its id waits and the state is read back, so a backlog costs
    /// little memory.
    Committed(CommittedRun, Option<OwnedSemaphorePermit>),
    /// A run the sweep already claimed.
    Claimed(Box<RunRow>),
    /// A run parked in memory (a short rate-limit wait, a concurrency slot) that goes on where it
    /// stopped.
    Resume(Box<Parked>),
}

pub(crate) enum CommittedRun {
    WithState(Box<RunRow>),
    IdOnly(String),
}

impl Job {
    fn run_id(&self) -> &str {
        match self {
            Job::Claim(id) | Job::Committed(CommittedRun::IdOnly(id), _) => id,
            Job::Committed(CommittedRun::WithState(run), _) | Job::Claimed(run) => &run.id,
            Job::Resume(parked) => &parked.run.id,
        }
    }
}

pub(crate) struct Parked {
    pub run: RunRow,
    pub flow: Arc<CompiledFlow>,
    pub state: RunState,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// What became of a job: the run is let go, or it stays held (parked in memory).
pub(crate) enum Disposition {
    Released,
    Parked,
}

/// What the sweep found, since the engine started.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepCounts {
    /// Runs this process committed and never queued: each one is a defect.
    pub defects: u64,
    /// Runs made ready by another process (a retry from the command line) and taken here.
    pub handed_over: u64,
}

pub(crate) struct RunQueue {
    /// This process's node id: the owner, in the store, of the runs this queue holds.
    owner: String,
    sender: mpsc::UnboundedSender<Job>,
    receiver: tokio::sync::Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// The runs with a job in this process: queued, being driven, or parked.
    held: Mutex<HashSet<String>>,
    /// Committed runs queued with their state (see [`Job::Committed`]).
    states_queued: AtomicUsize,
    defects: AtomicU64,
    handed_over: AtomicU64,
}

impl RunQueue {
    pub(crate) fn new(owner: &str) -> RunQueue {
        let (sender, receiver) = mpsc::unbounded_channel();
        RunQueue {
            owner: owner.to_string(),
            sender,
            receiver: tokio::sync::Mutex::new(Some(receiver)),
            held: Mutex::new(HashSet::new()),
            states_queued: AtomicUsize::new(0),
            defects: AtomicU64::new(0),
            handed_over: AtomicU64::new(0),
        }
    }

    /// The node id runs are written and claimed under (see [`herald_store::RunRow::owner`]).
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// Queues a job; its run is held until [`RunQueue::release`].
    pub(crate) fn push(&self, job: Job) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(job.run_id().to_string());
        // The receiver lives as long as the engine: a send only fails while it shuts down, and the
        // run then stays `ready` for the next start's recovery.
        let _ = self.sender.send(job);
    }

    /// Holds runs about to be committed, from inside their write: the sweep then never mistakes a
    /// run whose commit is still on its way to the queue for a forgotten one. Dropping the guard
    /// (the write failed) lets them go.
    pub(crate) fn hold<'a>(self: &Arc<Self>, run_ids: impl IntoIterator<Item = &'a str>) -> HeldRuns {
        let ids: Vec<String> = run_ids.into_iter().map(String::from).collect();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(ids.iter().cloned());
        HeldRuns { queue: Arc::clone(self), ids }
    }

    /// A run just committed (held by `held`), with its state while few wait that way.
    pub(crate) fn push_committed(
        &self,
        held: &mut HeldRuns,
        run: RunRow,
        admitted: Option<OwnedSemaphorePermit>,
    ) {
        let committed = if self.states_queued.fetch_add(1, Ordering::Relaxed) < STATES_IN_QUEUE {
            CommittedRun::WithState(Box::new(run))
        } else {
            self.states_queued.fetch_sub(1, Ordering::Relaxed);
            CommittedRun::IdOnly(run.id)
        };
        self.push_held(held, Job::Committed(committed, admitted));
    }

    /// Queues the job of a run `held` holds: from now on the job holds it.
    pub(crate) fn push_held(&self, held: &mut HeldRuns, job: Job) {
        held.ids.retain(|id| id != job.run_id());
        self.push(job);
    }

    /// A worker took a committed run with its state off the queue.
    pub(crate) fn took_state(&self) {
        self.states_queued.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, run_id: &str) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(run_id);
    }

    fn holds(&self, run_id: &str) -> bool {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).contains(run_id)
    }

    /// The receiving end, once: the workers share it.
    pub(crate) async fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Job>> {
        self.receiver.lock().await.take()
    }

    /// Whether workers take the queue's jobs (the engine was started).
    pub(crate) async fn has_workers(&self) -> bool {
        self.receiver.lock().await.is_none()
    }

    /// How many runs this process holds: queued, being driven, or parked.
    pub(crate) fn held_count(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn sweep_counts(&self) -> SweepCounts {
        SweepCounts {
            defects: self.defects.load(Ordering::Relaxed),
            handed_over: self.handed_over.load(Ordering::Relaxed),
        }
    }
}

/// Runs held from inside the write that commits them until their jobs are queued; whatever is still
/// in it when it is dropped is let go.
pub(crate) struct HeldRuns {
    queue: Arc<RunQueue>,
    ids: Vec<String>,
}

impl Drop for HeldRuns {
    fn drop(&mut self) {
        for id in &self.ids {
            self.queue.release(id);
        }
    }
}

impl Engine {
    /// Starts the workers and re-enqueues the runs a previous process left unfinished.
    pub async fn start(&self) -> Result<(), EngineError> {
        let Some(mut receiver) = self.inner.queue.take_receiver().await else { return Ok(()) };
        self.warm_up().await;
        // One dispatcher: it takes the next job, then a place among the runs computing (never the other
        // way round: a place held while no job comes would keep a run back from the wire waiting),
        // and drives the job in a task of its own. A run gives its place up while its request is on
        // the wire.
        let (engine, places) = (self.clone(), Arc::clone(&self.inner.computing));
        tokio::spawn(async move {
            loop {
                let Some(job) = receiver.recv().await else { break };
                let Ok(place) = Arc::clone(&places).acquire_owned().await else { break };
                let engine = engine.clone();
                let holding = Holding::new(&places, place);
                tokio::spawn(async move { engine.work(job, holding).await });
            }
        });
        self.recover().await?;
        self.start_sweep(self.inner.sweep_every);
        self.start_due_poll(self.inner.due_poll_every);
        self.follow_notices();
        self.start_vault_upkeep();
        Ok(())
    }

    /// Does now the one-time work the first lead's callout would otherwise wait for: loading the
    /// phone metadata that destinations are normalised with (about 100 ms of CPU, see
    /// `herald_sms::warm_up`). The HTTP client and its TLS roots are ready since [`Engine::open`].
    async fn warm_up(&self) {
        let country = self.project().project.config.runtime.default_country.clone();
        let _ = tokio::task::spawn_blocking(move || herald_sms::warm_up(country.as_deref())).await;
    }

    /// Performs one job; its run stays held only while it is parked in memory.
    async fn work(&self, job: Job, holding: Holding) {
        let (run_id, result) = match job {
            Job::Claim(run_id) => {
                let result = self.execute(&run_id, holding).await;
                (run_id, result)
            }
            Job::Claimed(run) => {
                let run_id = run.id.clone();
                (run_id, self.start_fresh(*run, holding).await)
            }
            // The admission place is given back when the run's first request leaves, or when it
            // ends, waits or parks before that.
            Job::Committed(CommittedRun::WithState(run), admitted) => {
                self.inner.queue.took_state();
                let run_id = run.id.clone();
                (run_id, self.start_fresh(*run, holding.with_admission(admitted)).await)
            }
            Job::Committed(CommittedRun::IdOnly(run_id), admitted) => {
                let result = match self.inner.store.run(&run_id).await {
                    Ok(Some(run)) => self.start_fresh(run, holding.with_admission(admitted)).await,
                    Ok(None) => Ok(Disposition::Released),
                    Err(error) => Err(error.into()),
                };
                (run_id, result)
            }
            Job::Resume(parked) => {
                let run_id = parked.run.id.clone();
                (run_id, self.continue_run(*parked, holding).await)
            }
        };
        match result {
            Ok(Disposition::Parked) => {}
            Ok(Disposition::Released) => self.inner.queue.release(&run_id),
            Err(error) => {
                // Whatever the run's row says now, the sweep or the next start takes it from there.
                tracing::error!(run = %run_id, %error, "run could not be executed");
                self.inner.queue.release(&run_id);
            }
        }
    }

    /// Puts a waiting run back in the queue at `at`. A sleeping task per waiting run: no polling.
    pub(crate) fn wake_at(&self, run_id: String, at: chrono::DateTime<chrono::Utc>) {
        let queue = Arc::clone(&self.inner.queue);
        // A millisecond late rather than early: the claim refuses a run that is not due yet.
        let wait =
            (at - chrono::Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(1);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            queue.push(Job::Claim(run_id));
        });
    }

    /// Every `every`, queues the `ready` runs untouched for [`SWEEP_AFTER`] that no job holds.
    pub(crate) fn start_sweep(&self, every: Duration) {
        let engine = self.clone();
        let started = crate::now_text();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(error) = engine.sweep(&started, every).await {
                    tracing::warn!(%error, "the sweep for forgotten ready runs could not read the runs");
                }
            }
        });
    }

    async fn sweep(&self, started: &str, every: Duration) -> Result<(), crate::EngineError> {
        let age = SWEEP_AFTER.min(every * 2);
        let before = (chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let queue = &self.inner.queue;
        let shared = self.inner.store.shared();
        if shared {
            self.adopt_orphans(&crate::vault::live_since()).await?;
        }
        for stale in self.inner.store.ready_runs_untouched_since(&before, SWEEP_BATCH).await? {
            if queue.holds(&stale.id) {
                continue;
            }
            // Another node's run is that node's to start; if it stops, the adoption above takes it.
            if shared && stale.owner.as_deref().is_some_and(|owner| owner != self.node_id()) {
                continue;
            }
            // Claimed here, so a run that ended since the read is not counted, and a run that is
            // claimed elsewhere at the same moment executes once.
            let Some(run) = self.inner.store.claim_run(&stale.id, self.node_id(), &crate::now_text()).await?
            else {
                continue;
            };
            // Committed by this process and never touched again: its job was lost.
            if stale.created_at == stale.updated_at && stale.created_at.as_str() >= started {
                queue.defects.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    run = %stale.id,
                    created_at = %stale.created_at,
                    "defect: a committed run was ready with no job to run it; the sweep queued it"
                );
            } else {
                queue.handed_over.fetch_add(1, Ordering::Relaxed);
                tracing::info!(run = %stale.id, "a run made ready outside this process was queued by the sweep");
            }
            queue.push(Job::Claimed(Box::new(run)));
        }
        Ok(())
    }
}
