//! Rate limits and concurrency per named credential, applied before a callout leaves.
//!
//! A run over a limit is not held by its worker: it is parked (in memory for waits under a second,
//! durably as a waiting run beyond that) and the worker goes on with runs on other credentials.
//!
//! Several nodes on one database split each per-second limit evenly between the live nodes
//! ([`RateLimits::share_between`]), so that together they stay under it without a round trip to the
//! database per send. A node learns of a node joining or leaving within a second; until then the
//! sum of the shares may exceed the limit by that much (docs/scaling.md).

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits of one named credential, as configured or as the provider publishes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_second: Option<u32>,
    pub per_day: Option<u32>,
    pub concurrency: Option<u32>,
}

/// Why a callout must wait, and until when.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    /// Try again after this long (per-second limits: short waits, kept in memory).
    For(Duration),
    /// The daily budget is spent: the run waits, durably, until the next UTC day.
    Until { at: DateTime<Utc>, reason: String },
}

struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: std::time::Instant,
}

impl Bucket {
    fn new(per_second: u32) -> Bucket {
        let rate = f64::from(per_second.max(1));
        Bucket { rate, capacity: rate, tokens: rate, updated: std::time::Instant::now() }
    }

    /// This node's share of `per_second` when `nodes` share it: the rate divided, a burst of at
    /// least one send.
    fn reshare(&mut self, per_second: u32, nodes: u32) {
        self.rate = f64::from(per_second.max(1)) / f64::from(nodes.max(1));
        self.capacity = self.rate.max(1.0);
        self.tokens = self.tokens.min(self.capacity);
    }

    fn take(&mut self, now: std::time::Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

struct Daily {
    limit: u32,
    day: chrono::NaiveDate,
    used: u32,
}

struct CredentialState {
    bucket: Option<Bucket>,
    daily: Option<Daily>,
}

/// Every named credential's limiter.
pub struct RateLimits {
    limits: HashMap<String, Limits>,
    state: Mutex<HashMap<String, CredentialState>>,
    semaphores: HashMap<String, Arc<Semaphore>>,
    /// How many live nodes share the per-second limits (1 on a database of one server).
    nodes: std::sync::atomic::AtomicU32,
}

fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    Utc.from_utc_datetime(&tomorrow.and_time(NaiveTime::MIN))
}

impl RateLimits {
    /// `used_today` seeds each daily budget with the sends the ledger already holds for today, so a
    /// restart does not grant a fresh budget.
    pub fn new(
        limits: HashMap<String, Limits>,
        used_today: &HashMap<String, u32>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut state = HashMap::new();
        let mut semaphores = HashMap::new();
        for (name, limit) in &limits {
            state.insert(
                name.clone(),
                CredentialState {
                    bucket: limit.per_second.map(Bucket::new),
                    daily: limit.per_day.map(|limit| Daily {
                        limit,
                        day: now.date_naive(),
                        used: used_today.get(name).copied().unwrap_or(0),
                    }),
                },
            );
            if let Some(concurrency) = limit.concurrency {
                semaphores.insert(name.clone(), Arc::new(Semaphore::new(concurrency.max(1) as usize)));
            }
        }
        RateLimits {
            limits,
            state: Mutex::new(state),
            semaphores,
            nodes: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// Splits every per-second limit between `nodes` live nodes from now on.
    pub fn share_between(&self, nodes: u32) {
        let nodes = nodes.max(1);
        if self.nodes.swap(nodes, std::sync::atomic::Ordering::Relaxed) == nodes {
            return;
        }
        let Ok(mut state) = self.state.lock() else { return };
        for (name, credential) in state.iter_mut() {
            if let (Some(bucket), Some(per_second)) =
                (&mut credential.bucket, self.limits.get(name).and_then(|l| l.per_second))
            {
                bucket.reshare(per_second, nodes);
            }
        }
    }

    /// The named credentials that have a daily budget.
    pub fn daily_budgets(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.limits.iter().filter(|(_, l)| l.per_day.is_some()).map(|(name, _)| name.clone()).collect();
        names.sort();
        names
    }

    /// Counts, against a credential's daily budget, the calls the ledger holds for today: on a shared
    /// database, those of every node. The budget never goes back down: this node's own calls not yet
    /// in the ledger stay counted.
    pub fn note_used_today(&self, named_credential: &str, used: u32, now: DateTime<Utc>) {
        let Ok(mut state) = self.state.lock() else { return };
        let Some(daily) = state.get_mut(named_credential).and_then(|c| c.daily.as_mut()) else { return };
        if daily.day != now.date_naive() {
            daily.day = now.date_naive();
            daily.used = 0;
        }
        daily.used = daily.used.max(used);
    }

    pub fn limits(&self, named_credential: &str) -> Limits {
        self.limits.get(named_credential).copied().unwrap_or_default()
    }

    /// Takes one send from the credential's budgets, or says how long to wait. Nothing is taken when
    /// the answer is a wait.
    pub fn admit(&self, named_credential: &str, now: DateTime<Utc>) -> Result<(), Wait> {
        let Ok(mut state) = self.state.lock() else { return Ok(()) };
        let Some(credential) = state.get_mut(named_credential) else { return Ok(()) };
        if let Some(daily) = &mut credential.daily {
            if daily.day != now.date_naive() {
                daily.day = now.date_naive();
                daily.used = 0;
            }
            if daily.used >= daily.limit {
                let at = next_day(now);
                return Err(Wait::Until {
                    at,
                    reason: format!(
                        "named credential {named_credential} has used its daily budget of {} calls ({}); the send waits until {}",
                        daily.limit,
                        now.format("%Y-%m-%d"),
                        at.to_rfc3339()
                    ),
                });
            }
        }
        if let Some(bucket) = &mut credential.bucket {
            bucket.take(std::time::Instant::now()).map_err(Wait::For)?;
        }
        if let Some(daily) = &mut credential.daily {
            daily.used += 1;
        }
        Ok(())
    }

    /// A slot among the credential's concurrent callouts: `Ok(None)` when it has no such limit,
    /// `Err(semaphore)` when every slot is taken (wait on it elsewhere, not in the worker).
    pub fn slot(&self, named_credential: &str) -> Result<Option<OwnedSemaphorePermit>, Arc<Semaphore>> {
        let Some(semaphore) = self.semaphores.get(named_credential) else { return Ok(None) };
        semaphore.clone().try_acquire_owned().map(Some).map_err(|_| semaphore.clone())
    }

    /// The start of the current UTC day, for counting today's sends.
    pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
        Utc.from_utc_datetime(&now.date_naive().and_time(NaiveTime::MIN))
    }
}

/// Every named credential's limits: its `rate_limit`, else what its provider publishes.
pub(crate) async fn credential_limits(
    project: &herald_flow::CompiledProject,
    store: &herald_store::Store,
) -> Result<RateLimits, crate::EngineError> {
    let now = Utc::now();
    let day_start = RateLimits::day_start(now).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut all = std::collections::HashMap::new();
    let mut used = std::collections::HashMap::new();
    for (name, named) in &project.project.named_credentials {
        // The provider a service on this credential declares, else the one its host belongs to.
        let provider = project
            .project
            .services
            .values()
            .find(|service| service.def.model.named_credential == *name)
            .map(|service| service.def.provider)
            .filter(|provider| !provider.is_generic())
            .unwrap_or_else(|| {
                herald_providers::Provider::detect(
                    &herald_project::url_host(&named.def.url).unwrap_or_default(),
                )
            });
        let defaults = provider.default_rate_limit();
        let configured = named.def.rate_limit.clone().unwrap_or_default();
        let limit = Limits {
            per_second: configured.per_second.or(defaults.per_second),
            per_day: configured.per_day.or(defaults.per_day),
            concurrency: configured.concurrency,
        };
        if limit.per_day.is_some() {
            used.insert(name.clone(), store.messages_since(name, &day_start).await?.max(0) as u32);
        }
        all.insert(name.clone(), limit);
    }
    Ok(RateLimits::new(all, &used, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(name: &str, limit: Limits) -> HashMap<String, Limits> {
        HashMap::from([(name.to_string(), limit)])
    }

    #[test]
    fn a_daily_budget_waits_until_the_next_utc_day() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 15, 0, 0).unwrap();
        let used = HashMap::from([("Kixie".to_string(), 9_998)]);
        let limiter = RateLimits::new(
            limits("Kixie", Limits { per_day: Some(10_000), ..Limits::default() }),
            &used,
            now,
        );
        assert_eq!(limiter.admit("Kixie", now), Ok(()));
        assert_eq!(limiter.admit("Kixie", now), Ok(()));
        let Err(Wait::Until { at, reason }) = limiter.admit("Kixie", now) else { panic!("over budget") };
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap());
        assert!(reason.contains("10000"), "{reason}");
        let tomorrow = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 1).unwrap();
        assert_eq!(limiter.admit("Kixie", tomorrow), Ok(()), "a new day has a new budget");
    }

    #[test]
    fn a_per_second_limit_admits_a_burst_then_asks_to_wait() {
        let now = Utc::now();
        let limiter = RateLimits::new(
            limits("EightByEight", Limits { per_second: Some(5), ..Limits::default() }),
            &HashMap::new(),
            now,
        );
        for _ in 0..5 {
            assert_eq!(limiter.admit("EightByEight", now), Ok(()));
        }
        let Err(Wait::For(wait)) = limiter.admit("EightByEight", now) else { panic!("the sixth must wait") };
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
        assert_eq!(limiter.admit("Other", now), Ok(()), "other credentials are not limited by it");
    }

    #[test]
    fn nodes_sharing_a_per_second_limit_each_take_their_share() {
        let limiter = RateLimits::new(
            limits("EightByEight", Limits { per_second: Some(30), ..Limits::default() }),
            &HashMap::new(),
            Utc::now(),
        );
        limiter.share_between(3);
        let mut state = limiter.state.lock().unwrap();
        let bucket = state.get_mut("EightByEight").unwrap().bucket.as_mut().unwrap();
        // At one instant (no refill), a third of the burst, then a third of the rate.
        let at = bucket.updated;
        assert_eq!((0..30).take_while(|_| bucket.take(at).is_ok()).count(), 10);
        assert_eq!(bucket.take(at), Err(Duration::from_millis(100)));
        drop(state);
        limiter.share_between(1);
        let state = limiter.state.lock().unwrap();
        let bucket = state["EightByEight"].bucket.as_ref().unwrap();
        assert_eq!((bucket.rate, bucket.capacity), (30.0, 30.0), "alone again: the whole limit");
    }

    #[test]
    fn a_daily_budget_counts_the_calls_other_nodes_wrote_to_the_ledger_and_never_goes_back_down() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 15, 0, 0).unwrap();
        let limiter = RateLimits::new(
            limits("Kixie", Limits { per_day: Some(10), ..Limits::default() }),
            &HashMap::new(),
            now,
        );
        assert_eq!(limiter.daily_budgets(), ["Kixie"]);
        for _ in 0..3 {
            assert_eq!(limiter.admit("Kixie", now), Ok(()));
        }
        // The other nodes made 6 calls today: 9 in all, so one is left.
        limiter.note_used_today("Kixie", 9, now);
        assert_eq!(limiter.admit("Kixie", now), Ok(()));
        assert!(matches!(limiter.admit("Kixie", now), Err(Wait::Until { .. })), "the shared budget is spent");
        // A ledger read older than this node's own last calls takes nothing back.
        limiter.note_used_today("Kixie", 2, now);
        assert!(matches!(limiter.admit("Kixie", now), Err(Wait::Until { .. })));
        let tomorrow = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 1).unwrap();
        limiter.note_used_today("Kixie", 0, tomorrow);
        assert_eq!(limiter.admit("Kixie", tomorrow), Ok(()), "a new day has a new budget");
    }

    #[test]
    fn concurrency_slots_run_out_and_come_back() {
        let limiter = RateLimits::new(
            limits("Twilio", Limits { concurrency: Some(1), ..Limits::default() }),
            &HashMap::new(),
            Utc::now(),
        );
        let first = limiter.slot("Twilio").expect("a free slot").expect("a permit");
        assert!(limiter.slot("Twilio").is_err(), "the only slot is taken");
        drop(first);
        assert!(limiter.slot("Twilio").is_ok());
        assert!(matches!(limiter.slot("Kixie"), Ok(None)));
    }
}
