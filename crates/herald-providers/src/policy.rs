//! When a failed send may be tried again, how soon, and how fast herald may send at all.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The same request may succeed later.
    Retryable,
    /// Repeating the request will fail the same way.
    Permanent,
    /// The recipient sent STOP; sending again breaks the law in the US.
    OptedOut,
    /// The destination is not a number that can receive the message.
    InvalidDestination,
}

/// How often and for how long a failed send is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// How long to wait before the next attempt, or `None` to give up.
    ///
    /// Full jitter (a uniform wait between zero and the exponential cap) spreads the retries of many
    /// runs that failed together, so they do not hit a recovering provider in one burst. `random_unit`
    /// is a uniform draw from [0, 1]; the caller supplies it so this stays deterministic to test. A
    /// provider's `Retry-After` is a floor even above `max_delay`: retrying sooner only earns another 429.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
        random_unit: f64,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let cap = 2u32
            .checked_pow(attempts_made.saturating_sub(1))
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |d| d.min(self.max_delay));
        let unit = if random_unit.is_nan() { 1.0 } else { random_unit.clamp(0.0, 1.0) };
        let jittered = Duration::try_from_secs_f64(cap.as_secs_f64() * unit).unwrap_or(cap).min(cap);
        let delay = jittered.max(retry_after.unwrap_or(Duration::ZERO));
        (elapsed.saturating_add(delay) <= self.max_elapsed).then_some(delay)
    }
}

/// A `Retry-After` header value: delta-seconds or an HTTP-date (a past date means now).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let when = DateTime::parse_from_rfc2822(value).map(|d| d.with_timezone(&Utc)).ok().or_else(|| {
        // The two obsolete HTTP-date forms RFC 9110 still requires recipients to accept.
        ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .map(|d| d.and_utc())
    })?;
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

/// How fast a provider accepts requests; `None` means no published limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: Option<u32>,
    pub per_day: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// Six attempts over an hour, from half a second to a minute apart.
    fn policy_of_six() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(3600),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_with_full_jitter() {
        let p = policy_of_six();
        let z = Duration::ZERO;
        assert_eq!(p.next_delay(1, z, None, 1.0), Some(Duration::from_millis(500)));
        assert_eq!(p.next_delay(2, z, None, 1.0), Some(Duration::from_secs(1)));
        assert_eq!(p.next_delay(3, z, None, 0.5), Some(Duration::from_secs(1)));
        assert_eq!(p.next_delay(5, z, None, 1.0), Some(Duration::from_secs(8)));
        assert_eq!(p.next_delay(2, z, None, 0.0), Some(Duration::ZERO));
        let huge = RetryPolicy { max_attempts: 100, ..p };
        assert_eq!(huge.next_delay(60, z, None, 1.0), Some(Duration::from_secs(60)));
        assert_eq!(p.next_delay(6, z, None, 0.5), None);
        assert_eq!(p.next_delay(2, Duration::from_secs(3600), None, 0.5), None);
        assert_eq!(p.next_delay(2, Duration::from_secs(3599), None, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_is_a_floor_even_above_the_cap() {
        let p = policy_of_six();
        let z = Duration::ZERO;
        assert_eq!(p.next_delay(1, z, Some(Duration::from_secs(1)), 0.0), Some(Duration::from_secs(1)));
        assert_eq!(p.next_delay(1, z, Some(Duration::from_secs(300)), 1.0), Some(Duration::from_secs(300)));
        assert_eq!(p.next_delay(1, Duration::from_secs(3500), Some(Duration::from_secs(300)), 1.0), None);
    }

    #[test]
    fn parses_retry_after() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 1 ", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:05 2015", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (1u32..20, 0u64..100_000, 0u64..10_000, 0u64..200_000).prop_map(|(a, e, b, m)| RetryPolicy {
            max_attempts: a,
            max_elapsed: Duration::from_secs(e),
            base_delay: Duration::from_millis(b),
            max_delay: Duration::from_millis(m),
        })
    }

    proptest! {
        #[test]
        fn next_delay_respects_its_bounds(
            p in policy(),
            attempts in 0u32..70,
            elapsed in 0u64..200_000,
            retry_after in proptest::option::of(0u64..100_000),
            unit in proptest::num::f64::ANY,
        ) {
            let retry_after = retry_after.map(Duration::from_secs);
            let elapsed = Duration::from_secs(elapsed);
            match p.next_delay(attempts, elapsed, retry_after, unit) {
                Some(d) => {
                    prop_assert!(attempts < p.max_attempts);
                    prop_assert!(d >= retry_after.unwrap_or_default());
                    prop_assert!(d <= p.max_delay.max(retry_after.unwrap_or_default()));
                    prop_assert!(elapsed + d <= p.max_elapsed);
                }
                // Giving up early is only right when even the longest possible wait would overrun.
                None if attempts < p.max_attempts => {
                    prop_assert!(elapsed + p.max_delay.max(retry_after.unwrap_or_default()) > p.max_elapsed)
                }
                None => {}
            }
            if attempts >= p.max_attempts {
                prop_assert_eq!(p.next_delay(attempts, elapsed, retry_after, unit), None);
            }
        }

        #[test]
        fn retry_after_reads_any_text(s in "[0-9]{1,25}|.*", secs in -10_000_000_000i64..10_000_000_000) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let got = parse_retry_after(&s, now);
            if s.bytes().all(|b| b.is_ascii_digit()) {
                prop_assert_eq!(got, s.parse::<u64>().ok().map(Duration::from_secs));
            }
        }
    }
}
