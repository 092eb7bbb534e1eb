//! Where a delivery is let through its task's flow limits, or put off.
//!
//! Before a delivery of a task with `rate_limit` or `concurrency` begins
//! (and before it counts as an attempt), the worker asks `admit`:
//! 1. **rate**: the delivery takes the next start of the task's rate limit
//!    ([`ResponseStore::take_turn`]); one that is not due yet is sent again
//!    for its reserved start, carrying it (`rate_turn_ms`) so that it does
//!    not take another;
//! 2. **concurrency**: it takes a slot ([`ResponseStore::take_slot`]), held
//!    while the body runs (the heartbeat renews it) and given back after
//!    the outcome is written; with every slot held, it is sent again a
//!    little later ([`deferral_gap`]), with jitter, and holds no Lambda
//!    instance while it waits.
//!
//! A put-off delivery is not an attempt: the call stays `pending` (or
//! `retrying`) and its attempt count does not move. A task with neither
//! option never comes here: no read, no write.

use std::time::Duration;

use serde_json::Value;

use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::policy::Limits;
use crate::store::ResponseStore;
use crate::store::flow::{Slot, Turn, limit_key};

/// How early a reserved start may arrive and still run: clocks differ a little.
const EARLY_MS: u64 = 50;

/// The first gap before a delivery put off by a full concurrency limit is
/// tried again; it doubles with each putting-off, to [`MAX_DEFERRAL_MS`].
pub const DEFERRAL_MS: u64 = 1_000;
/// The longest gap before a put-off delivery is tried again.
pub const MAX_DEFERRAL_MS: u64 = 30_000;

/// What [`admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Run now; `slot` is the concurrency limit's key when a slot was taken.
    Run { slot: Option<String> },
    /// Send the message again for `at_ms`, holding the rate limit's start
    /// `rate_turn_ms` when it took one.
    Later { at_ms: u64, rate_turn_ms: Option<u64>, why: String },
}

/// The gap before a delivery put off `deferred` times before is tried
/// again: exponential from [`DEFERRAL_MS`], capped, drawn from its upper
/// half (`unit` in `[0, 1)`), so that deliveries put off together spread out.
///
/// ```
/// use task_runtime::flow::deferral_gap;
/// assert_eq!(deferral_gap(0, 0.0).as_millis(), 500);
/// assert_eq!(deferral_gap(10, 0.999).as_millis(), 29_985);
/// ```
pub fn deferral_gap(deferred: u32, unit: f64) -> Duration {
    let full = DEFERRAL_MS.saturating_mul(1u64 << deferred.min(16)).min(MAX_DEFERRAL_MS);
    Duration::from_millis(full / 2 + (full as f64 / 2.0 * unit.clamp(0.0, 1.0)) as u64)
}

/// The key of the limit keyed by argument `param` (`None`: one limit for the task).
fn key_of(env: &Envelope, param: Option<&str>) -> String {
    limit_key(&env.task, param.map(|p| env.args.get(p).unwrap_or(&Value::Null)))
}

/// Let `env` through `limits`, or say when to send it again. `lease_until_ms`
/// is how long a slot taken now holds unless renewed.
pub(crate) async fn admit(store: &dyn ResponseStore, limits: &Limits, env: &Envelope, lease_until_ms: u64, now_ms: u64) -> Result<Admission, StoreError> {
    let mut turn = env.rate_turn_ms;
    if let Some(rate) = limits.rate {
        match turn {
            // A start reserved before, come early (Scheduler's minute, say): again for then.
            Some(at) if at > now_ms.saturating_add(EARLY_MS) => {
                return Ok(Admission::Later { at_ms: at, rate_turn_ms: Some(at), why: "its reserved start under the rate limit is not due yet".into() });
            }
            Some(_) => {}
            None => {
                let key = key_of(env, limits.rate_key);
                let ttl = crate::store::ttl_after(now_ms.saturating_add(rate.per_ms), Duration::from_secs(crate::store::flow::LIMIT_ITEM_LIFE_SECS));
                match store.take_turn(&key, rate.interval_ms(), now_ms, ttl).await? {
                    Turn::Now => turn = Some(now_ms),
                    Turn::At(at) => {
                        let why = format!("rate limit `{key}` ({} per {} ms): its start is reserved for {at}", rate.count, rate.per_ms);
                        return Ok(Admission::Later { at_ms: at, rate_turn_ms: Some(at), why });
                    }
                }
            }
        }
    }
    let Some(limit) = limits.concurrency else { return Ok(Admission::Run { slot: None }) };
    let key = key_of(env, limits.concurrency_key);
    match store.take_slot(&key, &env.id, limit, lease_until_ms, now_ms).await? {
        Slot::Taken => Ok(Admission::Run { slot: Some(key) }),
        Slot::Full { holders, .. } => {
            let at_ms = now_ms.saturating_add(deferral_gap(env.deferred, crate::policy::unit_draw()).as_millis() as u64);
            let why = format!("concurrency limit `{key}` ({limit} at once) is full: {holders} running");
            // A start it took under the rate limit stays its own.
            Ok(Admission::Later { at_ms, rate_turn_ms: turn.filter(|_| limits.rate.is_some()), why })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Rate;
    use crate::store::memory::MemoryStore;

    fn env(id: &str, account: &str) -> Envelope {
        let mut e = Envelope::new("sync", serde_json::json!({"account": account}).as_object().cloned().unwrap_or_default(), true, 2);
        e.id = id.into();
        e
    }

    #[test]
    fn the_gap_of_a_put_off_delivery_doubles_to_its_cap_drawn_from_its_upper_half() {
        let ms = |deferred, unit| deferral_gap(deferred, unit).as_millis();
        assert_eq!((ms(0, 0.0), ms(0, 0.5), ms(0, 0.999)), (500, 750, 999));
        assert_eq!((ms(1, 0.0), ms(2, 0.0), ms(4, 0.0)), (1_000, 2_000, 8_000));
        assert_eq!((ms(5, 0.0), ms(5, 0.999), ms(u32::MAX, 0.0)), (15_000, 29_985, 15_000), "capped at 30 s");
    }

    #[tokio::test]
    async fn one_at_a_time_per_key_and_a_rate_turn_is_taken_once() {
        let store = MemoryStore::default();
        let per_account = Limits { concurrency: Some(1), concurrency_key: Some("account"), ..Limits::NONE };
        let run = admit(&store, &per_account, &env("1", "acme"), 10_000, 1_000).await.unwrap();
        assert_eq!(run, Admission::Run { slot: Some("sync#acme".into()) });
        assert!(matches!(admit(&store, &per_account, &env("2", "acme"), 10_000, 1_000).await.unwrap(), Admission::Later { rate_turn_ms: None, .. }));
        assert!(matches!(admit(&store, &per_account, &env("3", "globex"), 10_000, 1_000).await.unwrap(), Admission::Run { .. }));

        let rated = Limits { rate: Some(Rate { count: 10, per_ms: 1_000 }), ..Limits::NONE };
        assert_eq!(admit(&store, &rated, &env("4", "x"), 0, 5_000).await.unwrap(), Admission::Run { slot: None });
        let Admission::Later { at_ms, rate_turn_ms, .. } = admit(&store, &rated, &env("5", "x"), 0, 5_000).await.unwrap() else { panic!("over the rate") };
        assert_eq!((at_ms, rate_turn_ms), (5_100, Some(5_100)));
        // Sent again holding its start: early, it is put off again; on time, it runs without taking another.
        let held = Envelope { rate_turn_ms: Some(5_100), ..env("5", "x") };
        assert!(matches!(admit(&store, &rated, &held, 0, 4_000).await.unwrap(), Admission::Later { at_ms: 5_100, .. }));
        assert!(matches!(admit(&store, &rated, &held, 0, 5_049).await.unwrap(), Admission::Later { at_ms: 5_100, .. }));
        // Up to EARLY_MS early is on time (clocks differ a little).
        assert_eq!(admit(&store, &rated, &held, 0, 5_050).await.unwrap(), Admission::Run { slot: None });
        assert_eq!(admit(&store, &rated, &held, 0, 5_100).await.unwrap(), Admission::Run { slot: None });
        let Admission::Later { at_ms, .. } = admit(&store, &rated, &env("6", "x"), 0, 5_100).await.unwrap() else { panic!("over the rate") };
        assert_eq!(at_ms, 5_200, "the held start was not taken twice");
    }
}
