//! A task's retry policy and flow limits, as `#[task(...)]` declares them:
//! plain data, and the arithmetic of backoff and rate.
//!
//! | option | field | what it does |
//! |---|---|---|
//! | `retries = N` (0-100) | [`TaskSpec::retries`](crate::registry::TaskSpec::retries) | attempts after the first |
//! | `retry_backoff = "1s"` | [`RetryPolicy::backoff_ms`] | the first gap; each next one doubles |
//! | `retry_backoff_max = "10m"` | [`RetryPolicy::backoff_max_ms`] | the longest gap |
//! | `retry_jitter = false` | [`RetryPolicy::jitter`] | exact gaps instead of full jitter |
//! | `concurrency = N`, `concurrency_key = "arg"` | [`Limits::concurrency`] | at most N bodies at once (per value of `arg`) |
//! | `rate_limit = "100/m"`, `rate_limit_key = "arg"` | [`Limits::rate`] | at most N starts per period (per value of `arg`) |

use std::time::Duration;

/// How a task's returned errors are retried. See the module's table.
///
/// ```
/// use task_runtime::policy::RetryPolicy;
///
/// let exact = RetryPolicy { backoff_ms: Some(100), backoff_max_ms: None, jitter: false };
/// let gaps: Vec<u64> = (1..=3).map(|attempt| exact.delay(attempt, 0.5).as_millis() as u64).collect();
/// assert_eq!(gaps, [100, 200, 400]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The gap after the first attempt, ms; doubled after each next one.
    /// `None`: no backoff declared.
    pub backoff_ms: Option<u64>,
    /// The longest gap, ms ([`DEFAULT_BACKOFF_MAX_MS`] when `None`).
    pub backoff_max_ms: Option<u64>,
    /// Full jitter: each gap is drawn evenly from zero to its exponential value.
    pub jitter: bool,
}

/// The first gap when a task retries past Lambda's but declares no
/// `retry_backoff`: one second.
pub const DEFAULT_BACKOFF_MS: u64 = 1_000;
/// The longest gap when a task declares no `retry_backoff_max`: ten minutes.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 600_000;
/// The most retries a task may declare.
pub const MAX_RETRIES: u8 = 100;

impl RetryPolicy {
    /// No policy: Lambda's own retries, at Lambda's delays.
    pub const LAMBDA: RetryPolicy = RetryPolicy { backoff_ms: None, backoff_max_ms: None, jitter: true };

    /// The gap before the attempt after `attempt` (1 for the first), with
    /// `unit` in `[0, 1)` the random draw of full jitter.
    ///
    /// ```
    /// use task_runtime::policy::RetryPolicy;
    /// let p = RetryPolicy { backoff_ms: Some(1_000), backoff_max_ms: Some(5_000), jitter: true };
    /// assert_eq!(p.delay(10, 0.999).as_millis(), 4_995); // capped, then jittered
    /// assert_eq!(p.delay(1, 0.0).as_millis(), 0);
    /// ```
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.backoff_ms.unwrap_or(DEFAULT_BACKOFF_MS);
        let cap = self.backoff_max_ms.unwrap_or(DEFAULT_BACKOFF_MAX_MS).max(base);
        let shift = attempt.saturating_sub(1).min(40);
        let exp = base.saturating_mul(1u64 << shift).min(cap);
        let ms = if self.jitter { (exp as f64 * unit.clamp(0.0, 1.0)) as u64 } else { exp };
        Duration::from_millis(ms)
    }
}

/// A rate: `count` starts per `per_ms`.
///
/// ```
/// use task_runtime::policy::Rate;
/// let r = Rate { count: 100, per_ms: 60_000 }; // rate_limit = "100/m"
/// assert_eq!(r.interval_ms(), 600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many starts.
    pub count: u32,
    /// Per how long, ms.
    pub per_ms: u64,
}

impl Rate {
    /// The gap between two starts, ms (at least 1).
    pub fn interval_ms(&self) -> u64 {
        (self.per_ms / u64::from(self.count.max(1))).max(1)
    }
}

/// How many bodies of a task may run at once, and how fast they may start.
///
/// ```
/// use task_runtime::policy::{Limits, Rate};
/// let l = Limits { concurrency: Some(1), concurrency_key: Some("account"), ..Limits::NONE };
/// assert!(!l.is_none());
/// assert!(Limits::NONE.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many bodies at once, across every instance and function.
    pub concurrency: Option<u32>,
    /// The argument whose value keys the concurrency limit.
    pub concurrency_key: Option<&'static str>,
    /// At most this many starts per period.
    pub rate: Option<Rate>,
    /// The argument whose value keys the rate limit.
    pub rate_key: Option<&'static str>,
}

impl Limits {
    /// No limit.
    pub const NONE: Limits = Limits { concurrency: None, concurrency_key: None, rate: None, rate_key: None };

    /// Whether no limit is set (the worker's path makes no extra write).
    pub fn is_none(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none()
    }
}

/// A draw in `[0, 1)` for jitter.
pub(crate) fn unit_draw() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // std's hasher keys are random per process and step per use.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_full_jitter_stays_below_it() {
        let p = RetryPolicy { backoff_ms: Some(1_000), backoff_max_ms: Some(10_000), jitter: false };
        let gaps: Vec<u128> = (1..=6).map(|a| p.delay(a, 0.3).as_millis()).collect();
        assert_eq!(gaps, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        let j = RetryPolicy { jitter: true, ..p };
        for _ in 0..200 {
            let d = j.delay(3, unit_draw()).as_millis();
            assert!(d < 4_000, "{d}");
        }
        // Huge attempt numbers neither overflow nor pass the cap.
        assert_eq!(p.delay(u32::MAX, 0.0).as_millis(), 10_000);
        // No backoff declared: one second, doubling, to ten minutes.
        assert_eq!(RetryPolicy { jitter: false, ..RetryPolicy::LAMBDA }.delay(2, 0.0).as_millis(), 2_000);
    }

    #[test]
    fn full_jitter_draws_spread_over_zero_to_one() {
        let draws: Vec<f64> = (0..200).map(|_| unit_draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)), "{draws:?}");
        let distinct: std::collections::BTreeSet<u64> = draws.iter().map(|d| (d * 1e6) as u64).collect();
        assert!(distinct.len() > 150, "draws repeat: {} distinct of 200", distinct.len());
        assert!(draws.iter().any(|d| *d < 0.25) && draws.iter().any(|d| *d > 0.75), "{draws:?}");
    }

    #[test]
    fn only_a_task_with_no_limit_skips_the_limits() {
        assert!(Limits::NONE.is_none());
        assert!(!Limits { concurrency: Some(1), ..Limits::NONE }.is_none());
        assert!(!Limits { rate: Some(Rate { count: 1, per_ms: 1_000 }), ..Limits::NONE }.is_none());
    }

    #[test]
    fn a_rate_s_interval_is_at_least_one_ms() {
        assert_eq!(Rate { count: 3, per_ms: 3_600_000 }.interval_ms(), 1_200_000);
        assert_eq!(Rate { count: 5_000, per_ms: 1_000 }.interval_ms(), 1);
    }
}
