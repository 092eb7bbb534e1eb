//! What the store is asked (a pending item, a claim) and what it answers
//! (whether a claim began, how a call finished or was cancelled).

use crate::response::{AsyncResponse, Failure, Status};

/// One call as a listing shows it: its id and what a poll returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    /// The response id.
    pub id: String,
    /// What [`get_async_response`](crate::get_async_response) returns for it.
    pub response: AsyncResponse,
}

/// The caller's first write. See [`ResponseStore`](super::ResponseStore) for a whole call.
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
    /// ([`ResponseStore::refuse_pending`](super::ResponseStore::refuse_pending)) while a forger cannot.
    pub digest: Option<String>,
    /// The call that sent this one ([`AsyncResponse::parent`]).
    pub parent: Option<String>,
}

/// The worker's claim on an attempt. See [`ResponseStore`](super::ResponseStore) for a whole call.
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
    /// [`give_up_ms`](super::give_up_ms) from now plus the response TTL, so that neither a
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

/// What [`ResponseStore::begin`](super::ResponseStore::begin) found. See [`ResponseStore`](super::ResponseStore) for a whole call.
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

/// What [`ResponseStore::cancel`](super::ResponseStore::cancel) found.
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

/// What [`ResponseStore::finish`](super::ResponseStore::finish) did.
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
/// How an id the caller chose (or an idempotency key made) is claimed:
/// [`ResponseStore::claim_id`](super::ResponseStore::claim_id).
///
/// ```
/// # use task_runtime::store::IdClaim;
/// // An explicit id: held until its item expires, its arguments compared by the caller.
/// let explicit = IdClaim { args_digest: Some("9f86d0…".into()), free_after_ms: None };
/// // A key's id: taken again once its window is over and its call can no longer run.
/// let keyed = IdClaim { args_digest: None, free_after_ms: Some(1_763_986_400_000) };
/// assert_ne!(explicit, keyed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdClaim {
    /// The digest of the call's task and arguments
    /// ([`args_digest`](crate::envelope::args_digest)), kept on the item so
    /// that a second send of the id can tell the same call from another.
    pub args_digest: Option<String>,
    /// From when, epoch ms, a send of the id may take the item over and
    /// make a new call: an idempotency key's window end, never before the
    /// first call can no longer run. The item must not be `running` or
    /// `retrying` then. `None`: only once the item has expired (`ttl`).
    pub free_after_ms: Option<u64>,
}

/// What [`ResponseStore::claim_id`](super::ResponseStore::claim_id) found.
///
/// ```
/// # use task_runtime::store::{Claimed, Holder};
/// # use task_runtime::Status;
/// let found = Claimed::Held(Holder { task: "bake".into(), args_digest: None, status: Status::Running, created_at_ms: 1 });
/// assert!(matches!(found, Claimed::Held(ref h) if h.status == Status::Running));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The `pending` (or `scheduled`) item was written: this sender sends.
    Created,
    /// A call holds the id already: nothing was written.
    Held(Holder),
}

/// The call that holds an id, as [`Claimed::Held`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its task.
    pub task: String,
    /// Its [`IdClaim::args_digest`], when its sender kept one.
    pub args_digest: Option<String>,
    /// Its status as stored.
    pub status: Status,
    /// When it was first recorded, epoch ms.
    pub created_at_ms: u64,
}
