//! Admission control: a record write that starts runs first takes a place for each, so that a lead
//! accepted under overload is texted in milliseconds rather than behind a backlog; when every place
//! is taken the write waits, and after [`ADMISSION_WAIT`] it is refused as busy (HTTP 503).

use crate::{Engine, EngineError};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Runs a record write may start, per worker, before the next write waits for one to end.
pub(crate) const ADMITTED_PER_WORKER: usize = 8;

pub(crate) fn admission_places(workers: usize) -> usize {
    workers * ADMITTED_PER_WORKER
}

/// How long a record write waits for room before it is refused as busy (HTTP 503).
pub(crate) const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Engine {
    /// Waits (at most [`ADMISSION_WAIT`]) for places for `runs` new runs; `None` when there are none.
    pub(crate) async fn admit(&self, runs: usize) -> Result<Option<OwnedSemaphorePermit>, EngineError> {
        // A write that starts more runs than there are places takes them all, never more.
        let Ok(wanted) = u32::try_from(runs.min(admission_places(self.inner.workers))) else {
            return Ok(None);
        };
        if wanted == 0 {
            return Ok(None);
        }
        let places = Arc::clone(&self.inner.admission);
        match tokio::time::timeout(ADMISSION_WAIT, places.acquire_many_owned(wanted)).await {
            Ok(Ok(admitted)) => Ok(Some(admitted)),
            // A closed semaphore never happens; without one the write goes ahead unadmitted.
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(EngineError::Busy {
                queued: admission_places(self.inner.workers),
                waited_seconds: ADMISSION_WAIT.as_secs(),
            }),
        }
    }
}
