//! The response store: where outcomes live under their `response_id`.
//!
//! Three conditional writes, and no read in the happy path:
//! 1. the caller's [`ResponseStore::put_pending`] only creates (never
//!    overwrites a worker that was faster);
//! 2. the worker's [`ResponseStore::begin`] takes the item to `running`,
//!    counts the attempt and takes a short lease, unless the task is
//!    finished (a duplicate delivery) or a live lease is held on it (by
//!    another delivery, or by a concurrent delivery of the same event:
//!    Lambda's duplicates share a request id);
//! 3. while the body runs, the worker renews the lease
//!    ([`ResponseStore::renew`], its heartbeat), so a live attempt's lease
//!    never lapses and a crashed one's lapses within one lease period;
//! 4. the worker's [`ResponseStore::finish`] writes the outcome only while
//!    its request still owns the item.
//!
//! When the invoke itself fails, the caller takes its pending item back with
//! [`ResponseStore::discard_pending`] (conditional on `pending` too). When
//! Lambda gives up on an event (its failure record), the worker ends the
//! call with [`ResponseStore::fail_unfinished`], which leaves a finished
//! call as it is.
//!
//! [`memory::MemoryStore`] and [`dynamodb::DynamoStore`] keep the same rules.
//!
//! Here, the [`ResponseStore`] trait. Beside it: `requests` (what the store
//! is asked and answers), `item` (a call's item and the rules of its life:
//! `Item::begin_verdict`, `Item::stale`, [`give_up_ms`], [`ttl_after`]),
//! `group` and `flow` (the records of groups and of flow limits).

pub mod dynamodb;
pub mod flow;
pub mod group;
pub mod memory;
pub mod payloads;

mod item;
mod requests;

use async_trait::async_trait;

use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, Status};

use self::group::{Counted, GroupItem, GroupState, Release, Waiting};
pub(crate) use self::item::{Item, undeliverable_at};
pub use self::item::{MAX_EVENT_LIFE_MS, MAX_KEPT_MESSAGE_BYTES, MAX_SCHEDULER_RETRY_MS, STALE_GRACE_MS, failure_day, give_up_ms, latest_run_id, ttl_after};
pub use self::requests::{BeginRequest, Begun, Cancel, Claimed, FinalState, Finished, Holder, IdClaim, PendingItem, StoredCall};

/// The largest response (JSON text) a store accepts, in bytes. DynamoDB
/// items are at most 400 KB; this leaves room for the other attributes.
/// A larger result is stored as `failed`, kind `too_large`.
///
/// ```
/// assert!(task_runtime::store::MAX_RESPONSE_BYTES < 400 * 1024);
/// ```
pub const MAX_RESPONSE_BYTES: usize = 380 * 1024;

/// A response store. Implementations keep the conditional rules above.
///
/// A renewal and a failure record, on the in-memory store:
///
/// ```
/// use task_runtime::store::{memory::MemoryStore, BeginRequest, Finished, PendingItem, ResponseStore};
/// use task_runtime::{Failure, FailureKind, Status};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::default();
/// let ttl = u64::MAX / 1000;
/// let claim = BeginRequest {
///     id: "7".into(), task: "bake".into(), request_id: "req-1".into(),
///     lease_until_ms: 10_000, max_attempts: 1, now_ms: 0, ttl, resend: None, parent: None,
/// };
/// store.begin(claim).await?;
/// assert_eq!(store.renew("7", "req-1", 20_000).await?, Finished::Written);   // the heartbeat
/// assert_eq!(store.renew("7", "req-2", 20_000).await?, Finished::NotOwner);
///
/// // The process died; Lambda's failure record ends the call.
/// let item = PendingItem { id: "7".into(), task: "bake".into(), now_ms: 30_000, ttl, run_at_ms: None, digest: None, parent: None };
/// let crashed = Failure::new(FailureKind::Crashed, "Runtime.ExitError");
/// assert!(store.fail_unfinished(item.clone(), crashed.clone(), None).await?);
/// assert!(!store.fail_unfinished(item, crashed, None).await?); // already terminal: left as it is
/// assert_eq!(store.get("7").await?.unwrap().status, Status::Failed);
/// # Ok::<(), task_runtime::StoreError>(())
/// # }).unwrap();
/// ```
///
/// One call's life, through the trait, on the in-memory store:
///
/// ```
/// use task_runtime::store::{memory::MemoryStore, BeginRequest, Begun, FinalState, Finished, PendingItem, ResponseStore};
/// use task_runtime::{Failure, FailureKind, Status};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::default();
/// let ttl = u64::MAX / 1000;
/// store.put_pending(PendingItem { id: "42".into(), task: "bake".into(), now_ms: 1, ttl, run_at_ms: None, digest: None, parent: None }).await?;
///
/// let attempt = |request_id: &str, now_ms| BeginRequest {
///     id: "42".into(), task: "bake".into(), request_id: request_id.into(),
///     lease_until_ms: now_ms + 5, max_attempts: 3, now_ms, ttl, resend: None, parent: None,
/// };
/// // Lambda's first delivery claims attempt 1 and fails with a retryable error.
/// assert_eq!(store.begin(attempt("req-1", 10)).await?, Begun::Started { attempts: 1 });
/// let retry = FinalState::Retrying(Failure::new(FailureKind::Error, "oven cold"));
/// assert_eq!(store.finish("42", "req-1", retry, 20, None).await?, Finished::Written);
///
/// // The retry (same request id) claims attempt 2 and completes.
/// assert_eq!(store.begin(attempt("req-1", 30)).await?, Begun::Started { attempts: 2 });
/// store.finish("42", "req-1", FinalState::Complete("\"pie\"".into()), 40, None).await?;
///
/// // A duplicate delivery is not run again.
/// assert!(matches!(store.begin(attempt("req-2", 50)).await?, Begun::Finished { status: Status::Complete, attempts: 2 }));
/// let read = store.get("42").await?.unwrap();
/// assert_eq!((read.status, read.attempts), (Status::Complete, 2));
/// assert_eq!(store.get("unknown").await?, None);
/// # Ok::<(), task_runtime::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ResponseStore: Send + Sync + std::fmt::Debug {
    /// Create the `pending` item; `false` when it already exists (the worker was first).
    async fn put_pending(&self, item: PendingItem) -> Result<bool, StoreError>;
    /// Create the `pending` item of a call whose id the caller chose (or an
    /// idempotency key made), keeping `claim`'s digest on it; or, when a
    /// call holds the id already, write nothing and say which
    /// ([`Claimed::Held`], read in the same request). An item past its
    /// `ttl`, or past `claim.free_after_ms` and not `running` or
    /// `retrying`, no longer holds the id: it is replaced.
    async fn claim_id(&self, item: PendingItem, claim: IdClaim) -> Result<Claimed, StoreError>;
    /// Remove the item only while it is still `pending` or `scheduled`: the
    /// caller's undo when the invoke (or the schedule) failed, so no call
    /// that was never sent reads as pending, and a retried send of the same
    /// id sends. An item a worker has begun (or an absent one) is left alone.
    async fn discard_pending(&self, id: &str) -> Result<(), StoreError>;
    /// End a `pending` call `failed` with `failure` (kind `refused`), only
    /// when its stored digest is `digest`: the message came from the caller
    /// that wrote the item, byte for byte, and this worker could not verify
    /// it. `false` when nothing was written.
    async fn refuse_pending(&self, id: &str, digest: &str, failure: Failure, now_ms: u64) -> Result<bool, StoreError>;
    /// Cancel a call that has not started: `scheduled` or `pending` becomes
    /// `cancelled`, so that a worker that receives it later does not run it.
    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Cancel, StoreError>;
    /// Note `run_id` as the latest run of schedule `schedule`: the item
    /// `latest:SCHEDULE`, a `complete` call whose response is the run's id
    /// (so `get_async_response("latest:SCHEDULE")` and `tasks status` read it).
    async fn note_latest_run(&self, schedule: &str, run_id: &str, now_ms: u64, ttl: u64) -> Result<(), StoreError>;
    /// Claim an attempt.
    async fn begin(&self, req: BeginRequest) -> Result<Begun, StoreError>;
    /// Extend the lease of a `running` item, only while `request_id` owns
    /// it: the heartbeat of a running body.
    async fn renew(&self, id: &str, request_id: &str, lease_until_ms: u64) -> Result<Finished, StoreError>;
    /// Write the outcome, only while `request_id` owns the item. With a
    /// `failed` state, `message` (the task message, JSON) is kept with the
    /// item, so that the call can be listed and sent again (`tasks failed`,
    /// `tasks retry`); it is ignored otherwise.
    async fn finish(&self, id: &str, request_id: &str, state: FinalState, now_ms: u64, message: Option<&str>)
    -> Result<Finished, StoreError>;
    /// End a call that Lambda gave up on: `failed` with `failure`, unless it
    /// is already `complete` or `failed` (then `false`, and nothing is
    /// written). An absent item is created from `item` (its pending write
    /// was lost), so the id still ends terminal. `message` is kept as with
    /// [`finish`](Self::finish).
    async fn fail_unfinished(&self, item: PendingItem, failure: Failure, message: Option<&str>) -> Result<bool, StoreError>;
    /// Read, consistently; `None` when unknown or past its ttl.
    async fn get(&self, id: &str) -> Result<Option<AsyncResponse>, StoreError>;
    /// Read many, consistently, in the order asked (a group's children).
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<AsyncResponse>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }
    /// The calls `id` sent (whose [`parent`](AsyncResponse::parent) it
    /// is), oldest first (calls recorded in the same millisecond in any
    /// order), at most `limit`: one level of the tree of calls.
    async fn children(&self, id: &str, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let _ = (id, limit);
        Err(unsupported("children", "index of calls by the call that sent them"))
    }
    /// The calls sent from `since_ms` on (epoch ms), newest first, at most
    /// `limit`. On DynamoDB only calls created while the store lists calls
    /// (`TASK_LIST_CALLS=true`) are found.
    async fn recent(&self, since_ms: u64, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let _ = (since_ms, limit);
        Err(unsupported("recent", "index of calls by when they were sent"))
    }
    /// Record a group before its children are sent; `false` when a group
    /// of this id exists (nothing is written). See [`group`].
    async fn put_group(&self, group: GroupItem) -> Result<bool, StoreError> {
        let _ = group;
        Err(unsupported("put_group", "groups"))
    }
    /// Count `child`'s end, once, as `status` (`complete`, `failed` or
    /// `cancelled`); a second count of one child changes nothing. `ttl`
    /// (epoch seconds) keeps the group's items at least that long.
    async fn count_ended(&self, child: &GroupRef, status: Status, now_ms: u64, ttl: u64) -> Result<Counted, StoreError> {
        let _ = (child, status, now_ms, ttl);
        Err(unsupported("count_ended", "groups"))
    }
    /// Read a group and its counts; `None` when unknown or past its ttl.
    async fn group(&self, id: &str) -> Result<Option<GroupState>, StoreError> {
        let _ = id;
        Err(unsupported("group", "groups"))
    }
    /// Record a child that waits for its turn (its group runs a limited
    /// number at once): `scheduled` with no due time, its task message kept
    /// to be sent when [`release`](Self::release)d. `false` when it exists.
    async fn put_waiting(&self, item: PendingItem, waiting: Waiting) -> Result<bool, StoreError> {
        let _ = (item, waiting);
        Err(unsupported("put_waiting", "groups"))
    }
    /// Take a slot of the concurrency limit `key` (at most `limit` holders
    /// at once) for call `holder`, until `lease_until_ms` unless renewed. A
    /// holder whose lease lapsed before `now_ms` no longer counts (and is
    /// swept out). A call that holds one already takes it again. See [`flow`].
    async fn take_slot(&self, key: &str, holder: &str, limit: u32, lease_until_ms: u64, now_ms: u64) -> Result<flow::Slot, StoreError> {
        let _ = (key, holder, limit, lease_until_ms, now_ms);
        Err(unsupported("take_slot", "concurrency or rate limits"))
    }
    /// Extend `holder`'s slot of `key` (the body's heartbeat); `false` when
    /// it holds none (it lapsed and was swept out).
    async fn renew_slot(&self, key: &str, holder: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        let _ = (key, holder, lease_until_ms);
        Err(unsupported("renew_slot", "concurrency or rate limits"))
    }
    /// Give `holder`'s slot of `key` back.
    async fn release_slot(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let _ = (key, holder);
        Err(unsupported("release_slot", "concurrency or rate limits"))
    }
    /// Take the next start of the rate limit `key`, whose starts are
    /// `interval_ms` apart: now when it is due, else a reserved later one.
    /// `ttl` (epoch seconds) keeps the item at least that long.
    async fn take_turn(&self, key: &str, interval_ms: u64, now_ms: u64, ttl: u64) -> Result<flow::Turn, StoreError> {
        let _ = (key, interval_ms, now_ms, ttl);
        Err(unsupported("take_turn", "concurrency or rate limits"))
    }
    /// Give a waiting child its turn: `scheduled` (with its message) becomes
    /// `pending`, and its message is returned to be sent.
    async fn release(&self, id: &str, now_ms: u64, ttl: u64) -> Result<Release, StoreError> {
        let _ = (id, now_ms, ttl);
        Err(unsupported("release", "groups"))
    }
}

/// The error of a store that does not implement `operation`: it keeps no
/// `what` (the default of the trait's optional methods).
fn unsupported(operation: &'static str, what: &str) -> StoreError {
    StoreError::Backend { operation, table: "this store".into(), message: format!("it keeps no {what} (use MemoryStore or DynamoStore)") }
}

/// What a poll that finds no item reads for `id`: for a dated id (a call
/// sent with no pending item, `envelope::new_dated_id`), `pending` until
/// Lambda can no longer deliver it, then stale (never begun, and nothing
/// will run it) for as long as an item would have been kept; then, as for
/// any other id, nothing. A call that began has an item at least as long
/// (its `begin` counts its ttl from later), so an absent item within that
/// time is a call that has not begun.
pub(crate) fn not_yet_begun(id: &str, now_ms: u64, event_life: std::time::Duration, response_ttl: std::time::Duration) -> Option<crate::response::AsyncResponse> {
    let sent = crate::envelope::dated_at(id)?;
    let undeliverable = undeliverable_at(sent, None, event_life.as_millis() as u64);
    if now_ms > undeliverable.saturating_add(response_ttl.as_millis() as u64) {
        return None;
    }
    Some(crate::response::AsyncResponse {
        status: crate::response::Status::Pending,
        response: None,
        error: None,
        task: String::new(),
        attempts: 0,
        created_at: sent,
        updated_at: sent,
        run_at: None,
        stale: undeliverable < now_ms,
        parent: None,
    })
}
