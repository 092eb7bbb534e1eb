//! A call's item and the rules of its life: whether a delivery may begin
//! it, when it is stale or expired, when Lambda gives up on its event,
//! how long it lives, and the limits on what it keeps.

use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, Status};
use super::{BeginRequest, Begun, PendingItem};

/// The largest task message kept with a failed call, in bytes: enough for
/// the arguments of almost every task, and well inside DynamoDB's 400 KB
/// item. A failed call with a larger message is listed, but cannot be sent
/// again from the store.
pub const MAX_KEPT_MESSAGE_BYTES: usize = 64 * 1024;

/// The day a failure is indexed under (`failed_day`, UTC `YYYY-MM-DD`).
///
/// ```
/// assert_eq!(task_runtime::store::failure_day(1_795_774_496_789), "2026-11-27");
/// ```
pub fn failure_day(epoch_ms: u64) -> String {
    let secs = i64::try_from(epoch_ms / 1000).unwrap_or(i64::MAX);
    let text = aws_smithy_types::DateTime::from_secs(secs).fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
    text.get(..10).unwrap_or_default().to_owned()
}

/// The id under which the latest run of schedule `schedule` is noted.
///
/// ```
/// assert_eq!(task_runtime::store::latest_run_id("reports.daily"), "latest:reports.daily");
/// ```
pub fn latest_run_id(schedule: &str) -> String {
    format!("latest:{schedule}")
}

/// How long past its lease a `running` item on its last attempt must be
/// before it reads as stale: room for clocks that disagree a little.
pub const STALE_GRACE_MS: u64 = 2_000;

/// The longest an asynchronous event can live in Lambda: the largest
/// `MaximumEventAgeInSeconds` (6 hours) plus one last attempt begun just
/// before it, which runs at most 15 minutes (the largest function timeout).
/// After this, Lambda neither runs nor retries it. See
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>
/// and <https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html>.
pub const MAX_EVENT_LIFE_MS: u64 = (6 * 3600 + 15 * 60) * 1000;

/// How long EventBridge Scheduler keeps retrying a target it could not
/// invoke, by default and at most (`RetryPolicy.MaximumEventAgeInSeconds`,
/// 86400): a delayed call can reach Lambda up to a day after it was due.
/// See <https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html>.
pub const MAX_SCHEDULER_RETRY_MS: u64 = 24 * 3600 * 1000;

/// When a call that has not ended by then never will, unless a failure
/// record ends it: Lambda can no longer run or retry its event. A call sent
/// at `sent_ms`, due at `run_at_ms` when delayed. Items live
/// `TASK_RESPONSE_TTL_SECS` past this, so an unfinished call is readable
/// (as stale) until it expires.
///
/// ```
/// use task_runtime::store::{give_up_ms, MAX_EVENT_LIFE_MS, MAX_SCHEDULER_RETRY_MS};
/// assert_eq!(give_up_ms(1_000, None), 1_000 + MAX_EVENT_LIFE_MS);
/// // a call delayed a year is not given up before its time
/// let in_a_year = 366 * 86_400_000;
/// assert_eq!(give_up_ms(1_000, Some(in_a_year)), in_a_year + MAX_SCHEDULER_RETRY_MS + MAX_EVENT_LIFE_MS);
/// ```
pub fn give_up_ms(sent_ms: u64, run_at_ms: Option<u64>) -> u64 {
    give_up_within(sent_ms, run_at_ms, MAX_EVENT_LIFE_MS)
}

/// [`give_up_ms`](super::give_up_ms) for an event life of `life_ms` (`TASK_EVENT_LIFE_SECS`).
pub(crate) fn give_up_within(sent_ms: u64, run_at_ms: Option<u64>, life_ms: u64) -> u64 {
    match run_at_ms {
        Some(at) => at.max(sent_ms).saturating_add(MAX_SCHEDULER_RETRY_MS),
        None => sent_ms,
    }
    .saturating_add(life_ms)
}

/// When Lambda can no longer deliver a call sent at `sent_ms` (due at
/// `run_at_ms`), with room for clocks that disagree
/// ([`STALE_GRACE_MS`]): past it, a call that has not begun never will.
pub(crate) fn undeliverable_at(sent_ms: u64, run_at_ms: Option<u64>, life_ms: u64) -> u64 {
    give_up_within(sent_ms, run_at_ms, life_ms).saturating_add(STALE_GRACE_MS)
}

/// The `ttl` (epoch seconds) of an item that can last change at
/// `last_change_ms`: readable `response_ttl` after that.
///
/// ```
/// use std::time::Duration;
/// use task_runtime::store::{give_up_ms, ttl_after};
/// // A call sent now and due in a year stays readable a day past the day after it was due.
/// let (now, in_a_year) = (1_763_900_000_000, 1_763_900_000_000 + 366 * 86_400_000);
/// let ttl = ttl_after(give_up_ms(now, Some(in_a_year)), Duration::from_secs(86_400));
/// assert!(ttl * 1000 > in_a_year + 86_400_000);
/// ```
pub fn ttl_after(last_change_ms: u64, response_ttl: std::time::Duration) -> u64 {
    (last_change_ms / 1000).saturating_add(response_ttl.as_secs())
}

/// Whether an item whose `ttl` (epoch seconds) is `ttl` has expired at
/// `now_ms`: DynamoDB may still hold it (its TTL deletes within days), but
/// every reader treats it as gone from that second on.
pub(crate) fn expired_at(ttl: u64, now_ms: u64) -> bool {
    ttl.saturating_mul(1000) <= now_ms
}

/// One stored item: the DynamoDB item's attributes (see [`dynamodb`](super::dynamodb)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) task: String,
    pub(crate) status: Status,
    pub(crate) attempts: u32,
    pub(crate) request_id: Option<String>,
    pub(crate) lease_until_ms: Option<u64>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) digest: Option<String>,
    /// The digest of the task and arguments of a call whose id was chosen
    /// ([`IdClaim::args_digest`](super::IdClaim::args_digest)).
    pub(crate) args_digest: Option<String>,
    /// From when a send of this id may make a new call (an idempotency
    /// key's window: [`IdClaim::free_after_ms`](super::IdClaim::free_after_ms)).
    pub(crate) free_after_ms: Option<u64>,
    pub(crate) run_at_ms: Option<u64>,
    /// The attempt after which the runtime sent the call again, while that
    /// message is the only one that may begin it.
    pub(crate) resend: Option<u32>,
    /// The task message of a failed call (JSON), for a retry.
    pub(crate) message: Option<String>,
    /// The call that sent this one.
    pub(crate) parent: Option<String>,
    pub(crate) response: Option<String>,
    pub(crate) error: Option<Failure>,
    pub(crate) created_at_ms: u64,
    pub(crate) updated_at_ms: u64,
    pub(crate) ttl: u64,
}

impl Item {
    /// A new `pending` item.
    pub(crate) fn pending(p: PendingItem) -> Self {
        let PendingItem { id, task, now_ms, ttl, run_at_ms, digest, parent } = p;
        Item {
            id,
            task,
            status: if run_at_ms.is_some() { Status::Scheduled } else { Status::Pending },
            attempts: 0,
            request_id: None,
            lease_until_ms: None,
            max_attempts: None,
            digest,
            args_digest: None,
            free_after_ms: None,
            run_at_ms,
            resend: None,
            message: None,
            parent,
            response: None,
            error: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            ttl,
        }
    }

    /// Whether `begin` by `req` may take this item, and if not, why.
    pub(crate) fn begin_verdict(&self, req: &BeginRequest) -> Option<Begun> {
        // A call the runtime re-sent is begun by that message only; and a
        // message re-sent after the latest attempt is let in even before
        // that attempt's `Resend` is written (the worker sends, then writes).
        let resent_after_latest = req.resend.is_some_and(|after| after == self.attempts);
        if !self.status.is_finished() && self.resend.is_some() && self.resend != req.resend && !resent_after_latest {
            return Some(Begun::Superseded { attempts: self.attempts });
        }
        match self.status {
            Status::Scheduled | Status::Pending | Status::Retrying => None,
            Status::Complete | Status::Failed | Status::Cancelled => {
                Some(Begun::Finished { status: self.status, attempts: self.attempts })
            }
            // Only a lapsed lease is taken over, whoever asks: a concurrent
            // duplicate of the same event (same request id) waits, and a
            // retry after a crash finds the dead attempt's lease lapsed.
            Status::Running => {
                let lease = self.lease_until_ms.unwrap_or(0);
                if lease >= req.now_ms {
                    Some(Begun::Busy { request_id: self.request_id.clone().unwrap_or_default(), lease_until_ms: lease })
                } else if self.attempts >= req.max_attempts {
                    // Another event of the call (a duplicate invoke) must not run an attempt past the last.
                    Some(Begun::Exhausted { attempts: self.attempts })
                } else {
                    None
                }
            }
        }
    }

    /// Nobody is running it and nothing will: `running` with its lease
    /// lapsed (by more than [`STALE_GRACE_MS`](super::STALE_GRACE_MS)) on the last attempt it is
    /// allowed, or not ended past [`give_up_ms`](super::give_up_ms) (Lambda dropped its event,
    /// and its failure record, if any, could not name it: e.g. a record
    /// whose `requestPayload` Lambda left out for size).
    pub(crate) fn stale(&self, now_ms: u64) -> bool {
        let lease_lapsed = self.lease_until_ms.is_none_or(|lease| lease.saturating_add(STALE_GRACE_MS) < now_ms);
        let last_attempt = self.max_attempts.is_some_and(|max| self.attempts >= max);
        let given_up = give_up_ms(self.created_at_ms, self.run_at_ms).saturating_add(STALE_GRACE_MS) < now_ms;
        match self.status {
            Status::Running => lease_lapsed && (last_attempt || given_up),
            // A child waiting for its turn in its group has no due time: it is not given up.
            Status::Scheduled if self.run_at_ms.is_none() => false,
            Status::Pending | Status::Scheduled | Status::Retrying => given_up,
            Status::Complete | Status::Failed | Status::Cancelled => false,
        }
    }

    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        expired_at(self.ttl, now_ms)
    }

    /// Whether this item still holds its id against a new call
    /// ([`ResponseStore::claim_id`](super::ResponseStore::claim_id)): until it
    /// expires, or until its key's window is over while no attempt is
    /// running or due. The same rule as the condition of
    /// `store/dynamodb/conditions.rs` `claim_id`.
    pub(crate) fn holds_id(&self, now_ms: u64) -> bool {
        let window_over = self.free_after_ms.is_some_and(|at| at < now_ms) && !matches!(self.status, Status::Running | Status::Retrying);
        !self.expired(now_ms) && !window_over
    }

    /// This item as the holder of its id ([`Claimed::Held`](super::Claimed::Held)).
    pub(crate) fn holder(&self) -> super::Holder {
        super::Holder { task: self.task.clone(), args_digest: self.args_digest.clone(), status: self.status, created_at_ms: self.created_at_ms }
    }

    pub(crate) fn to_response(&self, now_ms: u64) -> Result<AsyncResponse, StoreError> {
        let response = match &self.response {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                id: self.id.clone(),
                attribute: "response",
                problem: format!("is not JSON: {e}"),
            })?),
        };
        Ok(AsyncResponse {
            status: self.status,
            response,
            error: self.error.clone(),
            task: self.task.clone(),
            attempts: self.attempts,
            created_at: self.created_at_ms,
            updated_at: self.updated_at_ms,
            run_at: self.run_at_ms,
            stale: self.stale(now_ms),
            parent: self.parent.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures as AWS's pages give them, written out, not through the constants.
    #[test]
    fn lambda_gives_up_on_an_event_after_6_h_15_min_and_scheduler_retries_a_day() {
        let (sent, hours, minutes) = (1_000, 3_600_000, 60_000);
        assert_eq!(give_up_ms(sent, None), sent + 6 * hours + 15 * minutes);
        let due = 10 * 24 * hours;
        assert_eq!(give_up_ms(sent, Some(due)), due + 24 * hours + 6 * hours + 15 * minutes);
        // Due before it was sent (a clock behind): counted from the send.
        assert_eq!(give_up_within(5_000, Some(1_000), 7), 5_000 + 24 * hours + 7);
    }

    #[test]
    fn failures_are_indexed_by_their_utc_day_and_schedules_under_latest() {
        assert_eq!(failure_day(1_795_774_496_789), "2026-11-27");
        // The last millisecond of a day and the first of the next.
        assert_eq!(failure_day(1_795_823_999_999), "2026-11-27");
        assert_eq!(failure_day(1_795_824_000_000), "2026-11-28");
        assert_eq!(latest_run_id("reports.daily"), "latest:reports.daily");
    }
}
