//! The Lambda side: a task message in, the task run once, the outcome
//! stored, and a [`Reply`] for Lambda out. The local backend and
//! [`crate::run`] both go through [`Worker::handle_event`].
//!
//! This file routes an event to its path; the paths live beside it:
//! - `run`: one task message, from its checks (signing, debounce, flow
//!   limits) to the attempt recorded by `finish`;
//! - `finish`: the attempt recorded (`begin`, body, `finish`), a retry
//!   policy's re-send, the slot given back;
//! - `claim`: `begin` (who may run the body now) and the heartbeat that
//!   renews the lease;
//! - `body`: what a message asks once its item is owned (`Work`), the body
//!   run under its deadline with panics caught;
//! - `reply`: what a decision tells Lambda, and the calls' summaries;
//! - `records`: Lambda's failure records, which end the calls of events it
//!   gave up on.
//!
//! They use each other one way only: `run` → `finish` → `claim`, `body`,
//! `reply`, and those three use none of the others.

mod body;
mod claim;
mod finish;
mod records;
mod reply;
mod run;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::context::{BlockingBodies, counting_blocking};
use crate::envelope::aws_event::EventKind;
use crate::envelope::{Envelope, EnvelopeError, GroupRef, Incoming, WarmUp};
use crate::follow_up::{self, Forwarder};
use crate::error::error_type;
use crate::outcome::{Reply, RunResult};
use crate::registry::Registry;
use crate::response::{Failure, FailureKind, Status};
use crate::store::ResponseStore;
use crate::store::payloads::Payloads;
use crate::time::now_ms;

use self::reply::summary_error;
use self::body::{Work, run_guarded, wait_for_overrun_bodies};

/// The worker's settings, from [`crate::Config`]; see [`Worker`] for a whole example.
///
/// ```
/// use std::time::Duration;
/// use task_runtime::worker::WorkerSettings;
///
/// let settings = WorkerSettings {
///     max_attempts: 3, // Lambda's default: 1 + 2 retries
///     response_ttl: Duration::from_secs(86_400),
///     timeout_margin: Duration::from_millis(500),
///     lease: Duration::from_secs(10), // renewed every third of it while a body runs
///     signing_key: Some(b"a shared secret".as_slice().into()),
/// };
/// assert!(format!("{settings:?}").contains("<redacted>")); // the key never reaches a log
/// ```
#[derive(Clone)]
pub struct WorkerSettings {
    /// Attempts the function allows (Lambda: 1 + its retry setting).
    pub max_attempts: u32,
    /// How long stored responses live.
    pub response_ttl: Duration,
    /// Time kept back before the deadline to record a timeout.
    pub timeout_margin: Duration,
    /// How long a claim on a call holds without renewal. A running body's
    /// heartbeat renews it every third of this; a crashed attempt's claim
    /// lapses within it, and a retry may take the call over.
    pub lease: Duration,
    /// When set, unsigned or wrongly signed messages are refused.
    pub signing_key: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("max_attempts", &self.max_attempts)
            .field("response_ttl", &self.response_ttl)
            .field("timeout_margin", &self.timeout_margin)
            .field("lease", &self.lease)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One delivery of an event, as Lambda describes it; [`crate::invocation`]
/// builds it from lambda_runtime's context.
///
/// ```
/// use task_runtime::worker::Invocation;
///
/// let inv = Invocation {
///     request_id: "8f0e52b4-...".into(), // the same on Lambda's retries of one event
///     deadline_ms: 1_763_900_060_000,    // epoch ms
///     attempt: None,                     // counted by the store when there is one
/// };
/// assert!(inv.attempt.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Lambda's request id; the same on each retry of one asynchronous event.
    pub request_id: String,
    /// The invocation's deadline, epoch milliseconds.
    pub deadline_ms: u64,
    /// The attempt number when the caller knows it (the local queue does).
    pub attempt: Option<u32>,
}

/// Runs task messages. Build one per process and share it.
///
/// [`crate::run`] drives one from lambda_runtime; it can also be driven by
/// hand, e.g. from another event source or a test:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use task_runtime::envelope::Envelope;
/// use task_runtime::registry::Registry;
/// use task_runtime::store::{memory::MemoryStore, ResponseStore};
/// use task_runtime::worker::{Invocation, Worker, WorkerSettings};
/// use task_runtime::{task, Reply, Status, TaskError, TaskResult};
///
/// #[task(name = "docs.worker.divide")]
/// async fn divide(a: u32, b: u32) -> TaskResult<u32> {
///     a.checked_div(b).ok_or_else(|| TaskError::fail("division by zero"))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::default());
/// let settings = WorkerSettings {
///     max_attempts: 3,
///     response_ttl: Duration::from_secs(3600),
///     timeout_margin: Duration::from_millis(500),
///     lease: Duration::from_secs(10),
///     signing_key: None,
/// };
/// let worker = Worker::new(Registry::global()?, Some(store.clone()), settings);
///
/// let args = serde_json::json!({"a": 8, "b": 2}).as_object().cloned().unwrap();
/// let message = Envelope::new("docs.worker.divide", args, true, 2);
/// let event = serde_json::to_value(&message)?;
/// let inv = Invocation { request_id: "req-1".into(), deadline_ms: u64::MAX / 2, attempt: None };
///
/// let reply = worker.handle_event(&event, &inv).await.expect("a task message");
/// assert!(matches!(reply, Reply::Success(_)));
/// let stored = store.get(&message.id).await?.unwrap();
/// assert_eq!((stored.status, stored.response), (Status::Complete, Some(serde_json::json!(4))));
///
/// // Anything without the `task_runtime` key is left to the function's own handler.
/// assert!(worker.handle_event(&serde_json::json!({"path": "/"}), &inv).await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    registry: &'static Registry,
    store: Option<Arc<dyn ResponseStore>>,
    settings: WorkerSettings,
    forwarder: Option<Arc<dyn Forwarder>>,
    payloads: Arc<Payloads>,
}

impl Worker {
    /// A worker over `registry`, writing to `store` when captured.
    pub fn new(registry: &'static Registry, store: Option<Arc<dyn ResponseStore>>, settings: WorkerSettings) -> Self {
        Self { registry, store, settings, forwarder: None, payloads: Arc::default() }
    }

    /// Read arguments kept in S3, and keep there results and failure
    /// messages too large for the item, through `payloads`
    /// ([`Worker::from_runtime`] sets the process's, from
    /// `TASK_PAYLOAD_BUCKET`). Without it, nothing is written to S3.
    pub fn with_payloads(mut self, payloads: Arc<Payloads>) -> Self {
        self.payloads = payloads;
        self
    }

    /// Send what the worker sends itself (a group's callback) through
    /// `forwarder`. [`Worker::from_runtime`] sets the process's backend.
    pub fn with_forwarder(mut self, forwarder: Arc<dyn Forwarder>) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    /// What a call's end sets off (see [`follow_up`]): its count in its
    /// group, and its chain's next step when it completed with `value`.
    /// `Some` is the error to answer when that failed, so that Lambda
    /// delivers the call again and what failed is tried again.
    async fn follow_up(&self, store: &dyn ResponseStore, after: &After, status: Status, value: Option<&str>) -> Option<Reply> {
        if let Some(child) = after.group.as_ref().filter(|_| status.is_finished())
            && let Err(e) = follow_up::child_ended(store, self.forwarder.as_ref(), child, status, self.settings.response_ttl).await
        {
            let message = format!("the call ended {status}, but its group `{}` could not count it: {e}", child.id);
            tracing::error!("{message}");
            return Some(Reply::Error { error_type: error_type::STORE, message });
        }
        if let (Some(call), Status::Complete) = (&after.chain, status) {
            let mut value = match value {
                Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                // A later delivery of a completed step: its value is in the store.
                None => match store.get(&call.id).await {
                    Ok(r) => r.and_then(|r| r.response).unwrap_or(Value::Null),
                    Err(e) => return Some(Reply::Error { error_type: error_type::STORE, message: e.to_string() }),
                },
            };
            // A value kept in S3 is read back: the next step is given the value.
            if let Some(stored) = crate::envelope::PayloadRef::in_value(&value) {
                match Box::pin(self.payloads.fetch_json(&stored, "JSON")).await {
                    Ok(whole) => value = whole,
                    Err(e) => return Some(Reply::Error { error_type: error_type::STORE, message: e.to_string() }),
                }
            }
            let key = self.settings.signing_key.as_deref();
            if let Err(e) = follow_up::next_step(store, self.forwarder.as_ref(), call, value, key, self.settings.response_ttl, &self.payloads).await {
                let message = format!("the call completed, but its chain's next step could not be sent: {e}");
                tracing::error!("{message}");
                return Some(Reply::Error { error_type: error_type::STORE, message });
            }
        }
        None
    }

    /// Handle an event: `None` when it is not a task message (hand it to the
    /// user's handler), otherwise what to tell Lambda.
    pub async fn handle_event(&self, event: &Value, inv: &Invocation) -> Option<Reply> {
        self.handle_classified(Incoming::classify(event), Some(event), inv).await
    }

    /// Handle an event already classified by [`Incoming::classify`]. (A
    /// call that fails is kept without its message, so it cannot be sent
    /// again with `tasks retry`: prefer [`handle_event`](Self::handle_event).)
    pub async fn handle_incoming(&self, incoming: Incoming, inv: &Invocation) -> Option<Reply> {
        self.handle_classified(incoming, None, inv).await
    }

    /// Handle a classified event; `event` is the event itself, kept with a
    /// call that fails (serialized only then).
    pub(crate) async fn handle_classified(&self, incoming: Incoming, event: Option<&Value>, inv: &Invocation) -> Option<Reply> {
        match incoming {
            Incoming::NotATask => match (event.and_then(|e| self.foreign_failure_batch(e)), event.and_then(EventKind::of)) {
                (Some(records), _) => Some(self.handle_failure_records(records, inv).await),
                (None, Some(kind)) => self.handle_aws_event(kind, event.cloned().unwrap_or_default(), inv).await,
                (None, None) => None,
            },
            Incoming::WarmUp(ping) => Some(Self::warm(ping).await),
            Incoming::Task(env) => Some(self.run_message(env, event, inv).await),
            Incoming::Bad(err) => Some(self.handle_bad(err, inv).await),
            Incoming::FailureRecords(records) => Some(self.handle_failure_records(records, inv).await),
        }
    }

    /// Answer a warm-up ping: hold it `hold_ms` (a fanned-out ping, so that
    /// the pings land on distinct instances), run nothing.
    pub(crate) async fn warm(ping: WarmUp) -> Reply {
        if ping.hold_ms > 0 {
            tokio::time::sleep(Duration::from_millis(ping.hold_ms)).await;
        }
        Reply::Success(json!({"warm": true}))
    }

    /// Whether the worker answers `event`, which [`Incoming::classify`] found
    /// not to be a task's: an `#[on_event]` handler takes its kind, or it is
    /// a failure queue's batch of other events' records that no handler
    /// takes (see [`handle_event`](Self::handle_event)). Otherwise it is the
    /// function's own handler's.
    pub fn takes(&self, event: &Value) -> bool {
        EventKind::of(event).is_some_and(|kind| self.handles(kind)) || self.foreign_failure_batch(event).is_some()
    }

    /// A batch of the failure queue that holds only records of events that
    /// are not task messages (Lambda gave up on the worker's S3 handler,
    /// say), when no `#[on_event]` handler takes SQS events: the worker
    /// answers it, leaving each message to the dead-letter queue with
    /// `batchItemFailures`, rather than the catch-all handler, whose error
    /// would count in the function's `Errors` at every receive.
    fn foreign_failure_batch(&self, event: &Value) -> Option<Vec<crate::envelope::failure_record::FailureRecord>> {
        if EventKind::of(event) != Some(EventKind::Sqs) || self.handles(EventKind::Sqs) {
            return None;
        }
        crate::envelope::failure_record::FailureRecord::every_one_of_sqs_batch(event)
    }

    /// Whether an `#[on_event]` handler takes events of `kind`.
    pub fn handles(&self, kind: EventKind) -> bool {
        crate::handlers::handler(kind).is_ok_and(|h| h.is_some())
    }

    /// Run the `#[on_event]` handler of `kind` on `event`; `None` when there
    /// is none (the function's own handler gets the event). Its error is told
    /// to Lambda as `EventHandlerError` (retried) unless it is
    /// `TaskError::fail`; an event that does not decode is `InvalidEvent`.
    pub async fn handle_aws_event(&self, kind: EventKind, event: Value, inv: &Invocation) -> Option<Reply> {
        let def = match crate::handlers::handler(kind) {
            Ok(Some(def)) => def,
            Ok(None) => return None,
            Err(e) => return Some(Reply::Error { error_type: "EventHandlerConflict", message: e.to_string() }),
        };
        let span = tracing::error_span!("event", kind = %kind, handler = %def.rust_path, request_id = %inv.request_id);
        let timeout = Duration::from_millis(inv.deadline_ms.saturating_sub(now_ms())).saturating_sub(self.settings.timeout_margin);
        let bodies = Arc::new(BlockingBodies::default());
        let reply = async {
            let result = match (def.call)(event) {
                Err(e) => RunResult::BadArgs(e),
                Ok(fut) => counting_blocking(bodies.clone(), run_guarded(fut, timeout)).await,
            };
            wait_for_overrun_bodies(&bodies).await;
            let error = |error_type: &'static str, message: String| {
                tracing::error!(error_type, "{message}");
                Reply::Error { error_type, message }
            };
            match result {
                RunResult::Value(v) => Reply::Success(v),
                RunResult::Error(e) if e.is_retryable() => error("EventHandlerError", e.message()),
                RunResult::Error(e) => {
                    tracing::error!("event handler failed (not retried): {}", e.message());
                    Reply::Success(json!({"handled": false, "error": e.message()}))
                }
                RunResult::Panic(m) => error("EventHandlerError", format!("the event handler panicked: {m}")),
                RunResult::Timeout(after) => error("EventHandlerError", format!("the event handler was still running at its deadline, after {:.1}s", after.as_secs_f64())),
                RunResult::BadArgs(e) => error("InvalidEvent", e.to_string()),
            }
        }
        .instrument(span)
        .await;
        Some(reply)
    }

    /// Handle raw payload bytes (the local queue's path).
    pub async fn handle_payload(&self, payload: &[u8], inv: &Invocation) -> Reply {
        let event = match serde_json::from_slice::<Value>(payload) {
            Ok(v) => v,
            Err(e) => return summary_error(None, None, FailureKind::BadEnvelope, &format!("payload is not JSON: {e}")),
        };
        match self.handle_event(&event, inv).await {
            Some(reply) => reply,
            None => summary_error(None, None, FailureKind::BadEnvelope, &format!("payload has no `{}` key", crate::envelope::MARKER)),
        }
    }

    async fn handle_bad(&self, err: EnvelopeError, inv: &Invocation) -> Reply {
        let task = err.task.clone().unwrap_or_default();
        let id = err.id.clone().unwrap_or_default();
        let span = task_span(&task, &id, inv);
        let _enter = span.enter();
        tracing::error!(kind = %err.kind, "refusing task message: {}", err.message);
        // With signing on, a message that cannot be verified writes nothing.
        match &err.id {
            Some(id) if self.settings.signing_key.is_none() => {
                drop(_enter);
                let work = Work::Refuse(Failure::new(err.kind, err.message));
                self.record(id, &task, inv, work, None, &After::default(), None).instrument(span).await
            }
            _ => summary_error(err.id.as_deref(), err.task.as_deref(), err.kind, &err.message),
        }
    }

    /// Handle a decoded task message.
    pub async fn handle_envelope(&self, env: Envelope, inv: &Invocation) -> Reply {
        self.run_message(env, None, inv).await
    }
}

/// What follows a call's end: its group, and its chain's remaining steps.
#[derive(Debug, Default)]
struct After {
    group: Option<GroupRef>,
    /// The call's message without its arguments, when steps follow it.
    chain: Option<Envelope>,
    /// The attempt after which the runtime sent this message again.
    resend: Option<u32>,
    /// The call that sent this one: recorded by `begin` when the worker
    /// creates the item, and by a failure record's end.
    parent: Option<String>,
}

impl After {
    fn of(env: &Envelope) -> Self {
        let chain = (!env.then.is_empty()).then(|| Envelope { args: Default::default(), ..env.clone() });
        After { group: env.group.clone(), chain, resend: env.resend, parent: env.parent.clone() }
    }
}

/// The span every line about one task message is logged in: `task`, `id`,
/// `attempt` (once known), `request_id` and `trace_id` (when the message
/// carries a trace context, see [`crate::trace`]). It is an ERROR-level span so that
/// it is enabled whenever any event is: with `AWS_LAMBDA_LOG_LEVEL=WARN` (or
/// `RUST_LOG=warn`) a warning still says which task, call and attempt it is
/// about.
fn task_span(task: &str, id: &str, inv: &Invocation) -> tracing::Span {
    tracing::error_span!("task", task = %task, id = %id, attempt = tracing::field::Empty, request_id = %inv.request_id, trace_id = tracing::field::Empty)
}
