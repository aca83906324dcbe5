//! Percentiles and the other numbers a phase is summarised by. Pure functions, no clocks.

use serde::{Deserialize, Serialize};

/// A latency distribution in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many samples the distribution is made of.
    pub samples: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
}

impl Latency {
    /// Summarises samples (in any order). Percentiles use the nearest-rank method: the p-th percentile
    /// is the smallest sample such that at least p% of the samples are less than or equal to it.
    pub fn from_samples(samples: &mut [u64]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Latency {
            samples: samples.len(),
            p50_us: percentile_sorted(samples, 50.0),
            p90_us: percentile_sorted(samples, 90.0),
            p99_us: percentile_sorted(samples, 99.0),
            p999_us: percentile_sorted(samples, 99.9),
            max_us: samples[samples.len() - 1],
            mean_us: u64::try_from(sum / samples.len() as u128).unwrap_or(u64::MAX),
        }
    }
}

/// The nearest-rank percentile of sorted samples; 0 for no samples.
pub fn percentile_sorted(sorted: &[u64], percent: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let percent = percent.clamp(0.0, 100.0);
    // Rank in 1..=n; computed in integer thousandths of a percent so that 99.9 of 1000 is exactly 999.
    let n = sorted.len() as u128;
    let thousandths = (percent * 1000.0).round() as u128;
    let rank = (thousandths * n).div_ceil(100_000).max(1);
    sorted[usize::try_from(rank - 1).unwrap_or(0).min(sorted.len() - 1)]
}

/// Events per second over a span in microseconds; 0 when the span is empty.
pub fn per_second(count: usize, span_us: u64) -> f64 {
    if span_us == 0 || count == 0 {
        return 0.0;
    }
    count as f64 * 1_000_000.0 / span_us as f64
}

/// `numerator / denominator`, or None when the denominator is zero (a ratio that means nothing).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite()).then(|| numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_thousand() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let latency = Latency::from_samples(&mut samples);
        assert_eq!(latency.samples, 1000);
        assert_eq!(latency.p50_us, 500);
        assert_eq!(latency.p90_us, 900);
        assert_eq!(latency.p99_us, 990);
        assert_eq!(latency.p999_us, 999);
        assert_eq!(latency.max_us, 1000);
        assert_eq!(latency.mean_us, 500); // 500.5 rounds down
    }

    #[test]
    fn percentiles_of_few_samples_pick_real_samples() {
        let sorted = [10, 20, 30, 40];
        assert_eq!(percentile_sorted(&sorted, 0.0), 10);
        assert_eq!(percentile_sorted(&sorted, 25.0), 10);
        assert_eq!(percentile_sorted(&sorted, 26.0), 20);
        assert_eq!(percentile_sorted(&sorted, 50.0), 20);
        assert_eq!(percentile_sorted(&sorted, 99.0), 40);
        assert_eq!(percentile_sorted(&sorted, 100.0), 40);
        assert_eq!(percentile_sorted(&[7], 99.9), 7);
    }

    #[test]
    fn empty_samples_summarise_to_zero() {
        assert_eq!(Latency::from_samples(&mut []), Latency::default());
        assert_eq!(percentile_sorted(&[], 50.0), 0);
    }

    #[test]
    fn a_slow_tail_shows_in_p999_and_max_only() {
        let mut samples = vec![1_000; 9_990];
        samples.extend([50_000; 10]);
        let latency = Latency::from_samples(&mut samples);
        assert_eq!((latency.p50_us, latency.p99_us, latency.p999_us), (1_000, 1_000, 1_000));
        assert_eq!(latency.max_us, 50_000);
        samples.push(50_000);
        let latency = Latency::from_samples(&mut samples);
        assert_eq!(latency.p999_us, 50_000);
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(per_second(1_000, 500_000), 2_000.0);
        assert_eq!(per_second(0, 500_000), 0.0);
        assert_eq!(per_second(10, 0), 0.0);
        assert_eq!(ratio(10.0, 4.0), Some(2.5));
        assert_eq!(ratio(10.0, 0.0), None);
    }
}
