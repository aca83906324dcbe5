//! Fault injection per provider host: when the provider answers with its own 5xx or 429 (the body is
//! the emulator's, see `Emulation::fault`), latency, a slow provider that still accepts the message, and
//! a connection cut after the message was accepted. The draws are the sandbox's, so every provider gets
//! the same faults from the same seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// What can go wrong at one provider host. Every rate is a probability in `0.0..=1.0`; all default to 0 /
/// off, so a host with a default config behaves as if it had none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Answer the provider's own 500 error body; the message is not accepted.
    pub error_rate: f64,
    /// Answer the provider's own 429 body with `Retry-After: retry_after_seconds`; not accepted.
    pub rate_429: f64,
    /// Default 1.
    pub retry_after_seconds: u64,
    /// `[min, max]`: a uniform delay before answering. Default `[0, 0]`.
    pub latency_ms: [u64; 2],
    /// Hold the answer for `hang_ms`, then answer normally: the message is accepted, the client may
    /// well have given up.
    pub timeout_rate: f64,
    /// Default 35000 (longer than most clients wait).
    pub hang_ms: u64,
    /// Process the request normally, then cut the connection part-way through the body: the provider
    /// accepted the message, the client cannot know it.
    pub reset_rate: f64,
    /// Post each receipt of a message accepted here twice.
    pub duplicate_receipt_rate: f64,
    /// Post a message's statuses in reverse order.
    pub reorder_receipts: bool,
    /// Seeds this host's random draws, so that a run is reproducible.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            error_rate: 0.0,
            rate_429: 0.0,
            retry_after_seconds: 1,
            latency_ms: [0, 0],
            timeout_rate: 0.0,
            hang_ms: 35_000,
            reset_rate: 0.0,
            duplicate_receipt_rate: 0.0,
            reorder_receipts: false,
            seed: None,
        }
    }
}

/// Longest latency or hang the sandbox accepts: an hour is already beyond any client's patience.
const MAX_DELAY_MS: u64 = 3_600_000;

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_429", self.rate_429),
            ("timeout_rate", self.timeout_rate),
            ("reset_rate", self.reset_rate),
            ("duplicate_receipt_rate", self.duplicate_receipt_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if self.error_rate + self.rate_429 > 1.0 {
            return Err("error_rate + rate_429 must not exceed 1".into());
        }
        let [min, max] = self.latency_ms;
        if min > max {
            return Err(format!("latency_ms must be [min, max] with min <= max, got [{min}, {max}]"));
        }
        if max > MAX_DELAY_MS || self.hang_ms > MAX_DELAY_MS {
            return Err(format!("latency_ms and hang_ms must not exceed {MAX_DELAY_MS}"));
        }
        Ok(())
    }
}

/// What happens to one request, drawn before it is handled.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    pub latency: Option<Duration>,
    pub failure: Option<Failure>,
    pub hang: Option<Duration>,
    pub reset: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    Error,
    TooMany { retry_after: u64 },
}

impl FaultPlan {
    pub fn label(&self) -> Option<String> {
        match (&self.failure, self.hang.is_some(), self.reset) {
            (Some(Failure::Error), ..) => Some("error".into()),
            (Some(Failure::TooMany { .. }), ..) => Some("rate_429".into()),
            (None, true, true) => Some("timeout+reset".into()),
            (None, true, false) => Some("timeout".into()),
            (None, false, true) => Some("reset".into()),
            (None, false, false) => None,
        }
    }
}

struct HostFaults {
    config: FaultConfig,
    rng: StdRng,
}

/// The fault configs in force, each with its own random generator so that one host's traffic does not
/// shift another's draws.
#[derive(Default)]
pub(crate) struct Faults {
    hosts: Mutex<BTreeMap<String, HostFaults>>,
}

impl Faults {
    pub fn set(&self, host: &str, config: FaultConfig) {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        if let Ok(mut hosts) = self.hosts.lock() {
            hosts.insert(host.to_string(), HostFaults { config, rng });
        }
    }

    pub fn clear(&self, host: &str) -> bool {
        self.hosts.lock().map(|mut h| h.remove(host).is_some()).unwrap_or(false)
    }

    pub fn list(&self) -> BTreeMap<String, FaultConfig> {
        self.hosts
            .lock()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.config.clone())).collect())
            .unwrap_or_default()
    }

    /// Draws the same number of values for every request, whatever the outcome, so that a seeded run
    /// gives the same sequence however earlier requests turned out.
    pub fn draw(&self, host: &str) -> FaultPlan {
        let Ok(mut hosts) = self.hosts.lock() else { return FaultPlan::default() };
        let Some(HostFaults { config, rng }) = hosts.get_mut(host) else { return FaultPlan::default() };
        let [min, max] = config.latency_ms;
        let latency = if min < max { rng.gen_range(min..=max) } else { min };
        let failure_draw: f64 = rng.r#gen();
        let hang_draw: f64 = rng.r#gen();
        let reset_draw: f64 = rng.r#gen();
        let failure = if failure_draw < config.error_rate {
            Some(Failure::Error)
        } else if failure_draw < config.error_rate + config.rate_429 {
            Some(Failure::TooMany { retry_after: config.retry_after_seconds })
        } else {
            None
        };
        let accepted = failure.is_none();
        FaultPlan {
            latency: (latency > 0).then(|| Duration::from_millis(latency)),
            hang: (accepted && hang_draw < config.timeout_rate)
                .then(|| Duration::from_millis(config.hang_ms)),
            reset: accepted && reset_draw < config.reset_rate,
            failure,
        }
    }

    /// For each receipt of a newly accepted message: is it posted twice? And are the statuses reversed?
    pub fn receipt_plan(&self, host: &str, receipts: usize) -> (Vec<bool>, bool) {
        let Ok(mut hosts) = self.hosts.lock() else { return (vec![false; receipts], false) };
        let Some(HostFaults { config, rng }) = hosts.get_mut(host) else {
            return (vec![false; receipts], false);
        };
        let duplicates = (0..receipts).map(|_| rng.r#gen::<f64>() < config.duplicate_receipt_rate).collect();
        (duplicates, config.reorder_receipts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_rates_outside_zero_to_one_and_inverted_latency() {
        assert!(FaultConfig::default().validate().is_ok());
        for bad in [
            FaultConfig { error_rate: 1.5, ..FaultConfig::default() },
            FaultConfig { reset_rate: -0.1, ..FaultConfig::default() },
            FaultConfig { timeout_rate: f64::NAN, ..FaultConfig::default() },
            FaultConfig { error_rate: 0.6, rate_429: 0.6, ..FaultConfig::default() },
            FaultConfig { latency_ms: [10, 5], ..FaultConfig::default() },
            FaultConfig { hang_ms: u64::MAX, ..FaultConfig::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_seed_makes_the_draws_reproducible() {
        let config = FaultConfig {
            error_rate: 0.2,
            rate_429: 0.2,
            reset_rate: 0.5,
            latency_ms: [1, 9],
            seed: Some(7),
            ..FaultConfig::default()
        };
        let run = || {
            let faults = Faults::default();
            faults.set("api.example.test", config.clone());
            (0..50).map(|_| format!("{:?}", faults.draw("api.example.test"))).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.iter().any(|p| p.contains("Error")) && first.iter().any(|p| p.contains("TooMany")));
        assert!(first.iter().any(|p| p.contains("reset: true")));
        assert!(Faults::default().draw("api.example.test").failure.is_none(), "no config, no fault");
    }
}
