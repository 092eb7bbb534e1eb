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

pub mod dynamodb;
pub mod flow;
pub mod group;
pub mod memory;

use async_trait::async_trait;

use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, Status};

use self::group::{Counted, GroupItem, GroupState, Release, Waiting};

/// The largest response (JSON text) a store accepts, in bytes. DynamoDB
/// items are at most 400 KB; this leaves room for the other attributes.
/// A larger result is stored as `failed`, kind `too_large`.
///
/// ```
/// assert!(task_runtime::store::MAX_RESPONSE_BYTES < 400 * 1024);
/// ```
pub const MAX_RESPONSE_BYTES: usize = 380 * 1024;

/// One call as a listing shows it: its id and what a poll returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    /// The response id.
    pub id: String,
    /// What [`get_async_response`](crate::get_async_response) returns for it.
    pub response: AsyncResponse,
}

/// The caller's first write. See [`ResponseStore`] for a whole call.
///
/// ```
/// # use task_runtime::store::PendingItem;
/// let item = PendingItem { id: "42".into(), task: "bake".into(), now_ms: 1_763_900_000_000, ttl: 1_763_986_400, run_at_ms: None, digest: None, parent: None };
/// assert!(item.ttl * 1000 > item.now_ms); // ttl is in seconds, now in milliseconds
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingItem {
    /// The response id.
    pub id: String,
    /// The task name.
    pub task: String,
    /// Now, epoch ms.
    pub now_ms: u64,
    /// Expiry, epoch seconds.
    pub ttl: u64,
    /// When a delayed call is due, epoch ms: the item is `scheduled` until then.
    pub run_at_ms: Option<u64>,
    /// With signing on: the message's [`Envelope::digest`](crate::envelope::Envelope::digest),
    /// so that a worker that cannot verify the genuine message (a key
    /// rotation not yet everywhere) can end the call `refused`
    /// ([`ResponseStore::refuse_pending`]) while a forger cannot.
    pub digest: Option<String>,
    /// The call that sent this one ([`AsyncResponse::parent`]).
    pub parent: Option<String>,
}

/// The worker's claim on an attempt. See [`ResponseStore`] for a whole call.
///
/// ```
/// # use task_runtime::store::BeginRequest;
/// let now_ms = 1_763_900_000_000;
/// let claim = BeginRequest {
///     id: "42".into(), task: "bake".into(), request_id: "8f0e-...".into(),
///     lease_until_ms: now_ms + 10_000, // renewed by the heartbeat while the body runs
///     max_attempts: 3,
///     now_ms, ttl: now_ms / 1000 + 86_400,
///     resend: None, // a message the runtime sent again names the attempt it follows
///     parent: None, // the call that sent it, if a task did
/// };
/// assert!(claim.lease_until_ms > claim.now_ms);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeginRequest {
    /// The response id.
    pub id: String,
    /// The task name.
    pub task: String,
    /// The Lambda request id (the same on every retry of one event).
    pub request_id: String,
    /// Until when the claim holds unless renewed, epoch ms: now plus the
    /// lease period, at most the invocation's deadline.
    pub lease_until_ms: u64,
    /// The attempts this call is allowed (the function's, capped by the
    /// task's and the message's retries); stored so that a reader can tell
    /// that no retry is left to come.
    pub max_attempts: u32,
    /// Now, epoch ms.
    pub now_ms: u64,
    /// Expiry, epoch seconds: the item's new `ttl` (the worker sets it to
    /// [`give_up_ms`] from now plus the response TTL, so that neither a
    /// delay nor a retry outlives the item).
    pub ttl: u64,
    /// The attempt after which the runtime sent this message again (its
    /// retry policy): an item that awaits such a re-send is begun only by
    /// it, so that a late duplicate of an earlier delivery runs nothing.
    /// `None` for every other message.
    pub resend: Option<u32>,
    /// The call that sent this one, from its message: recorded when the
    /// worker creates the item (it came before the caller's pending write).
    pub parent: Option<String>,
}

/// What [`ResponseStore::begin`] found. See [`ResponseStore`] for a whole call.
///
/// ```
/// # use task_runtime::store::Begun;
/// fn should_run(found: &Begun) -> bool {
///     matches!(found, Begun::Started { .. }) // Finished: duplicate; Busy: another request runs it
/// }
/// assert!(!should_run(&Begun::Busy { request_id: "other".into(), lease_until_ms: 0 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// This request owns the item; this is attempt number `attempts`.
    Started {
        /// The attempt count, this one included.
        attempts: u32,
    },
    /// The task already finished, or was cancelled: not run (again).
    Finished {
        /// `complete`, `failed` or `cancelled`.
        status: Status,
        /// Attempts it took.
        attempts: u32,
    },
    /// The runtime sent this call again after an attempt, and this
    /// delivery is not that message (a late duplicate of an earlier one):
    /// not run; the re-sent message runs the next attempt.
    Superseded {
        /// Attempts so far.
        attempts: u32,
    },
    /// The call is `running` on its last allowed attempt, whose lease
    /// lapsed (that attempt died): no attempt is left to run. The caller
    /// ends it `failed`, kind `crashed` (as Lambda's failure record would).
    Exhausted {
        /// Attempts so far.
        attempts: u32,
    },
    /// Another request holds a live lease: not run concurrently.
    Busy {
        /// The request that holds it.
        request_id: String,
        /// Until when, epoch ms.
        lease_until_ms: u64,
    },
}

/// The outcome the worker writes.
///
/// ```
/// # use task_runtime::store::FinalState;
/// # use task_runtime::{Failure, FailureKind, Status};
/// assert_eq!(FinalState::Complete("8".into()).status(), Status::Complete);
/// assert_eq!(FinalState::Failed(Failure::new(FailureKind::Panic, "boom")).status(), Status::Failed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalState {
    /// `complete`, with the value as JSON text.
    Complete(String),
    /// `retrying`: Lambda will try again.
    Retrying(Failure),
    /// `failed`: it will not run again.
    Failed(Failure),
    /// `retrying`, sent again by the runtime (its retry policy) to run at
    /// `run_at_ms`: only the message re-sent after attempt `after_attempt`
    /// may begin it ([`BeginRequest::resend`]). The worker writes it once
    /// that message is sent; when the send fails it writes `Retrying`
    /// instead, and Lambda's retry is the fallback.
    Resend {
        /// What failed.
        failure: Failure,
        /// When the next attempt is due, epoch ms.
        run_at_ms: u64,
        /// The attempt that failed.
        after_attempt: u32,
        /// The item's new expiry, epoch seconds (past the delay).
        ttl: u64,
    },
}

impl FinalState {
    /// The status this state is stored as.
    pub fn status(&self) -> Status {
        match self {
            FinalState::Complete(_) => Status::Complete,
            FinalState::Retrying(_) | FinalState::Resend { .. } => Status::Retrying,
            FinalState::Failed(_) => Status::Failed,
        }
    }
}

/// What [`ResponseStore::cancel`] found.
///
/// ```
/// # use task_runtime::store::Cancel;
/// # use task_runtime::Status;
/// let refused = Cancel::NotCancellable { status: Status::Running };
/// assert_ne!(refused, Cancel::Cancelled { was: Status::Pending });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Cancelled; it was `scheduled` or `pending`.
    Cancelled {
        /// The status it had.
        was: Status,
    },
    /// It had already started or ended.
    NotCancellable {
        /// The status it has.
        status: Status,
    },
    /// No such call (unknown or expired).
    NotFound,
}

/// What [`ResponseStore::finish`] did.
///
/// ```
/// # use task_runtime::store::Finished;
/// // A worker whose lease was taken over finds it has nothing to say.
/// let outcome = Finished::NotOwner;
/// assert_ne!(outcome, Finished::Written);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Written.
    Written,
    /// Not written: this request no longer owns the item.
    NotOwner,
}

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

/// [`give_up_ms`] for an event life of `life_ms` (`TASK_EVENT_LIFE_SECS`).
pub(crate) fn give_up_within(sent_ms: u64, run_at_ms: Option<u64>, life_ms: u64) -> u64 {
    match run_at_ms {
        Some(at) => at.max(sent_ms).saturating_add(MAX_SCHEDULER_RETRY_MS),
        None => sent_ms,
    }
    .saturating_add(life_ms)
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

/// One stored item: the DynamoDB item's attributes (see [`dynamodb`]).
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
    /// lapsed (by more than [`STALE_GRACE_MS`]) on the last attempt it is
    /// allowed, or not ended past [`give_up_ms`] (Lambda dropped its event,
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
        self.ttl.saturating_mul(1000) <= now_ms
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
