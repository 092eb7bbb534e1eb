//! The Lambda side: a task message in, the task run once, the outcome
//! stored, and a [`Reply`] for Lambda out. The local backend and
//! [`crate::run`] both go through [`Worker::handle_event`].

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::context::{BlockingBodies, counting_blocking};
use crate::envelope::failure_record::FailureRecord;
use crate::envelope::aws_event::EventKind;
use crate::envelope::{Envelope, EnvelopeError, GroupRef, Incoming, WarmUp};
use crate::follow_up::{self, Forwarder};
use crate::error::error_type;
use crate::flow::Admission;
use crate::outcome::{self, Decision, Reply, RunResult};
use crate::registry::{Registry, TaskDef};
use crate::response::{Failure, FailureKind, Status};
use crate::store::{BeginRequest, Begun, FinalState, Finished, PendingItem, ResponseStore};
use crate::time::now_ms;

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
}

impl Worker {
    /// A worker over `registry`, writing to `store` when captured.
    pub fn new(registry: &'static Registry, store: Option<Arc<dyn ResponseStore>>, settings: WorkerSettings) -> Self {
        Self { registry, store, settings, forwarder: None }
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
            let value = match value {
                Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                // A later delivery of a completed step: its value is in the store.
                None => match store.get(&call.id).await {
                    Ok(r) => r.and_then(|r| r.response).unwrap_or(Value::Null),
                    Err(e) => return Some(Reply::Error { error_type: error_type::STORE, message: e.to_string() }),
                },
            };
            let key = self.settings.signing_key.as_deref();
            if let Err(e) = follow_up::next_step(store, self.forwarder.as_ref(), call, value, key, self.settings.response_ttl).await {
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
            Incoming::NotATask => match event.and_then(EventKind::of) {
                Some(kind) => self.handle_aws_event(kind, event.cloned().unwrap_or_default(), inv).await,
                None => None,
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

    /// Lambda gave up on these events: end each captured call `failed`
    /// (unless it is already terminal). With signing on, a record counts
    /// only if its task message verifies (or is a run of a schedule of this
    /// binary). Records that came through SQS are answered one by one with
    /// `batchItemFailures`: those whose write failed come again, and those
    /// that end no call (another event's, or one whose payload Lambda left
    /// out) are logged and left to the queue's dead-letter queue, so that
    /// none blocks the others.
    async fn handle_failure_records(&self, records: Vec<FailureRecord>, inv: &Invocation) -> Reply {
        let mut kept_in_queue = Vec::new();
        let mut first_error = None;
        let (mut ended, mut left) = (0usize, 0usize);
        for record in &records {
            let keep = match self.end_by_record(record, inv).await {
                Ok(RecordOutcome::Ended(wrote)) => {
                    ended += usize::from(wrote);
                    false
                }
                Ok(RecordOutcome::NotOurs) => {
                    left += 1;
                    true
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    true
                }
            };
            if let (true, Some(m)) = (keep, &record.sqs_message_id) {
                kept_in_queue.push(json!({"itemIdentifier": m}));
            }
        }
        let through_sqs = records.iter().any(|r| r.sqs_message_id.is_some());
        match first_error {
            Some(e) if !through_sqs => Reply::Error { error_type: error_type::STORE, message: e.to_string() },
            _ => Reply::Success(json!({"failure_records": records.len(), "ended": ended, "left": left, "batchItemFailures": kept_in_queue})),
        }
    }

    /// One record: whether it ended its call (`Ended(false)`: there was
    /// nothing to end: already terminal, not captured, not verified), or is
    /// not a record this worker can end a call with.
    async fn end_by_record(&self, record: &FailureRecord, inv: &Invocation) -> Result<RecordOutcome, crate::error::StoreError> {
        let Some(payload) = record.request_payload.as_ref() else {
            // Lambda left the request out (request and response were over the
            // destination's limit): the call cannot be named. It reads stale
            // once Lambda can no longer run it (store::give_up_ms).
            tracing::error!(
                request_id = %record.request_id, condition = %record.condition,
                "a failure record without its requestPayload (too large for the destination): its call cannot be named and reads stale once its event's life is over",
            );
            return Ok(RecordOutcome::NotOurs);
        };
        let (id, task, capture, group, parent) = match Incoming::classify(payload) {
            Incoming::Task(env) => {
                if let Some(key) = &self.settings.signing_key
                    && let Err(why) = env.verify(key)
                    && !crate::schedules::is_registered_run(&env)
                {
                    // Only the caller's own message can end its call, as `refused`.
                    let span = task_span(&env.task, &env.id, inv);
                    let reply = self.refuse_unverified(&env, why).instrument(span).await;
                    return Ok(RecordOutcome::Ended(matches!(reply, Reply::Success(_))));
                }
                (env.id, env.task, env.capture, env.group, env.parent)
            }
            Incoming::Bad(EnvelopeError { id: Some(id), task, .. }) if self.settings.signing_key.is_none() => {
                (id, task.unwrap_or_default(), true, None, None)
            }
            Incoming::Bad(_) => {
                tracing::error!(request_id = %record.request_id, "ignoring a failure record whose task message cannot be read or verified");
                return Ok(RecordOutcome::Ended(false));
            }
            _ => {
                tracing::error!(
                    request_id = %record.request_id, condition = %record.condition,
                    "a failure record of an event that is not a task message: left to the failure queue's dead-letter queue",
                );
                return Ok(RecordOutcome::NotOurs);
            }
        };
        let span = task_span(&task, &id, inv);
        let failure = record.failure();
        let Some(store) = self.store.as_ref().filter(|_| capture) else {
            span.in_scope(|| tracing::error!(kind = %failure.kind, "call not captured, so nothing to end: {}", failure.message));
            return Ok(RecordOutcome::Ended(false));
        };
        let now = now_ms();
        let item = self.ended_item(id, task, now, parent);
        let message = payload.to_string();
        let ended = store.fail_unfinished(item, failure.clone(), Some(&message)).instrument(span.clone()).await;
        span.in_scope(|| match &ended {
            Ok(true) => tracing::error!(kind = %failure.kind, "ended by Lambda's failure record: {}", failure.message),
            Ok(false) => tracing::info!(condition = %record.condition, "failure record for a call that had already ended: left as it is"),
            Err(e) => tracing::error!("could not end the call from its failure record: {e}"),
        });
        let ended = ended?;
        if let Some(child) = &group {
            // Ended here, or before by a path that may have died before it counted: count it now.
            let status = match ended {
                true => Some(Status::Failed),
                false => store.get(&child.child_id()).await?.map(|r| r.status),
            };
            let after = After { group: Some(child.clone()), ..After::default() };
            if let Some(Reply::Error { message, .. }) = self.follow_up(store.as_ref(), &after, status.unwrap_or(Status::Running), None).instrument(span).await {
                return Err(crate::error::StoreError::Backend { operation: "count_ended", table: "the response store".into(), message });
            }
        }
        Ok(RecordOutcome::Ended(ended))
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

    /// Run a decoded task message; `event`, when given, is the message as it
    /// came, kept with the call if it fails.
    async fn run_message(&self, env: Envelope, event: Option<&Value>, inv: &Invocation) -> Reply {
        let span = task_span(&env.task, &env.id, inv);
        if let Some(header) = env.traceparent.as_deref()
            && let Some(trace_id) = crate::trace::trace_id_of(header)
        {
            span.record("trace_id", tracing::field::display(trace_id));
            #[cfg(feature = "opentelemetry")]
            crate::otel::continue_trace(&span, header);
        }
        async move {
            if let Some(key) = &self.settings.signing_key
                && let Err(why) = env.verify(key)
                && !crate::schedules::is_registered_run(&env)
            {
                return self.refuse_unverified(&env, why).await;
            }
            if let (Some(schedule), Some(store), true) = (&env.schedule, &self.store, env.capture) {
                let now = now_ms();
                let ttl = now / 1000 + self.settings.response_ttl.as_secs();
                if let Err(e) = store.note_latest_run(schedule, &env.id, now, ttl).await {
                    tracing::warn!("could not note this run as the schedule's latest: {e}");
                }
            }
            // The rare paths are boxed, so that the common one's future stays small.
            if env.debounce.is_some()
                && let Some(reply) = Box::pin(self.debounced(&env)).await
            {
                return reply;
            }
            let after = After::of(&env);
            let def = self.registry.get(&env.task);
            // Flow limits, before the delivery counts as an attempt.
            let mut slot = None;
            if let (Some(def), Some(store), true) = (def, &self.store, env.capture)
                && !def.spec.limits.is_none()
            {
                let now = now_ms();
                let lease = lease_until(now, self.settings.lease, inv.deadline_ms);
                match Box::pin(crate::flow::admit(store.as_ref(), &def.spec.limits, &env, lease, now)).await {
                    Ok(Admission::Run { slot: taken }) => slot = taken,
                    Ok(Admission::Later { at_ms, rate_turn_ms, why }) => return Box::pin(self.put_off(env, at_ms, rate_turn_ms, &why, inv)).await,
                    Err(e) => {
                        tracing::error!("could not check the task's limits: {e}");
                        return Reply::Error { error_type: error_type::STORE, message: e.to_string() };
                    }
                }
            }
            let work = match def {
                None => {
                    let msg = format!(
                        "no task named `{}` is registered in this worker (it has: {})",
                        env.task,
                        self.registry.names().join(", ")
                    );
                    tracing::error!("{msg}");
                    Work::Refuse(Failure::new(FailureKind::UnknownTask, msg))
                }
                Some(def) => {
                    let cap = 1 + u32::from(def.spec.retries.unwrap_or(2).min(env.retries));
                    // With a backoff, or retries declared past the function's own, the runtime sends every retry of a returned error itself.
                    let declared_past = def.spec.retries.is_some_and(|r| 1 + u32::from(r) > self.settings.max_attempts);
                    let policy = (def.spec.retry.backoff_ms.is_some() || declared_past).then_some(def.spec.retry);
                    let until_deadline = Duration::from_millis(inv.deadline_ms.saturating_sub(now_ms()))
                        .saturating_sub(self.settings.timeout_margin);
                    // The task's own limit, when it has one below the invocation's.
                    let timeout = def.spec.timeout_ms.map_or(until_deadline, |ms| until_deadline.min(Duration::from_millis(ms)));
                    let max_attempts = if policy.is_some() { cap } else { self.settings.max_attempts.min(cap) };
                    let (parent, traceparent) = (env.parent, env.traceparent);
                    Work::Run { def, args: env.args, max_attempts, timeout, callback_of: env.callback_of, policy, parent, traceparent }
                }
            };
            if env.capture {
                self.record(&env.id, &env.task, inv, work, event, &after, slot.as_deref()).await
            } else {
                self.run_uncaptured(&env.id, &env.task, inv, work).await
            }
        }
        .instrument(span)
        .await
    }

    /// A message whose signature does not verify: never run. When it is the
    /// caller's own message byte for byte (its digest is on the `pending`
    /// item: this worker lacks the caller's key, e.g. mid-rotation), the
    /// call ends `failed`, kind `refused`, so the caller sees it. Otherwise
    /// nothing is written (a forger cannot touch the store) and Lambda is
    /// told `TaskRefused`: it retries, then hands the event to the failure
    /// destination, whose record comes back here and is tried the same way.
    async fn refuse_unverified(&self, env: &Envelope, why: &str) -> Reply {
        tracing::error!("refusing task message: {why}");
        let message = format!("the message's signature {} with this worker's TASK_SIGNING_KEY: not run", why.trim_start_matches("the signature (`sig`) "));
        if let Some(store) = self.store.as_ref().filter(|_| env.capture) {
            let failure = Failure::new(FailureKind::Refused, message.clone());
            match store.refuse_pending(&env.id, &env.digest(), failure, now_ms()).await {
                Ok(true) => {
                    if let Some(error) = self.follow_up(store.as_ref(), &After::of(env), Status::Failed, None).await {
                        return error;
                    }
                    return summary_error(Some(&env.id), Some(&env.task), FailureKind::Refused, &message);
                }
                Ok(false) => {}
                Err(e) => tracing::error!("could not record the refusal: {e}"),
            }
        }
        Reply::Error { error_type: error_type::REFUSED, message: format!("task `{}` (id {}): {message}", env.task, env.id) }
    }

    /// Capture off: run, with no writes and no de-duplication.
    async fn run_uncaptured(&self, id: &str, task: &str, inv: &Invocation, work: Work) -> Reply {
        tracing::Span::current().record("attempt", inv.attempt);
        let bodies = Arc::new(BlockingBodies::default());
        let decision = work.run(id, inv, inv.attempt, &bodies).await;
        wait_for_overrun_bodies(&bodies).await;
        reply_for(id, task, inv.attempt.unwrap_or(0), &decision)
    }

    /// begin → run the work (or record its refusal), renewing the lease → finish.
    /// The work of [`record`](Self::record); with the reply, whether the
    /// call's slot may be given back (no other delivery runs its body).
    #[allow(clippy::too_many_arguments)]
    async fn record_run(&self, id: &str, task: &str, inv: &Invocation, work: Work, event: Option<&Value>, after: &After, slot: Option<&str>) -> (Reply, bool) {
        let Some(store) = &self.store else {
            return (self.run_uncaptured(id, task, inv, work).await, false);
        };
        let attempt = match self.begin(store.as_ref(), id, task, inv, work.max_attempts(), after).await {
            Ok(Begun::Started { attempts }) => attempts,
            Ok(Begun::Finished { status, attempts }) => {
                // Count it in its group, in case the path that ended it died before it did.
                if let Some(error) = self.follow_up(store.as_ref(), after, status, None).await {
                    return (error, true);
                }
                if status == Status::Cancelled {
                    tracing::info!("the call was cancelled: not run");
                    return (summary(id, task, Status::Cancelled, attempts, Some("cancelled")), true);
                }
                tracing::info!(%status, attempts, "duplicate delivery of a finished task: not run again");
                // No body of the call runs: its slot, if this delivery took it again, is free.
                return (summary(id, task, status, attempts, Some("duplicate")), true);
            }
            Ok(Begun::Exhausted { attempts }) => return Box::pin(self.end_exhausted(store.as_ref(), id, task, attempts, event, after)).await,
            Ok(Begun::Superseded { attempts }) => {
                tracing::info!(attempts, "the runtime sent this call again after an attempt; this earlier delivery is not run");
                // The re-sent delivery may be running the body under this slot: kept.
                return (summary(id, task, Status::Retrying, attempts, Some("superseded")), false);
            }
            Ok(Begun::Busy { request_id, lease_until_ms }) if request_id == inv.request_id || after.resend.is_some() => {
                let message = format!("a delivery of this same event (or the attempt that sent this one) held task `{task}` (id {id}) until this invocation's deadline; Lambda's retry will find it finished or free");
                tracing::warn!(lease_until_ms, "{message}");
                return (Reply::Error { error_type: error_type::BUSY, message }, false);
            }
            Ok(Begun::Busy { request_id, lease_until_ms }) => {
                tracing::warn!(owner = %request_id, lease_until_ms, "another delivery holds this task: not run concurrently");
                return (summary(id, task, Status::Running, 0, Some("busy")), false);
            }
            Err(e) => {
                tracing::error!("could not begin: {e}");
                return (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, true);
            }
        };
        tracing::Span::current().record("attempt", attempt);
        let heartbeat = Heartbeat { store: store.clone(), id, request_id: &inv.request_id, lease: self.settings.lease, deadline_ms: inv.deadline_ms, slot };
        let bodies = Arc::new(BlockingBodies::default());
        let mut decision = heartbeat.around(work.run(id, inv, Some(attempt), &bodies)).await;
        // Kept with a failed call, so that it can be listed and sent again.
        let message = match (&decision.state, event) {
            (FinalState::Failed(_), Some(event)) => Some(event.to_string()),
            _ => None,
        };
        let mut state = self.resend_state(&decision, attempt);
        // A retry the runtime sends itself is sent first, then written: a
        // crash in between leaves a message that may begin the next attempt
        // (it follows the latest), never a call that waits for nothing.
        if let FinalState::Resend { failure, run_at_ms, .. } = &state {
            wait_for_overrun_bodies(&bodies).await;
            if let Err(why) = Box::pin(self.send_again(event, attempt, *run_at_ms, inv)).await {
                tracing::error!("attempt {attempt} failed and could not be sent again ({why}): left to Lambda's retry");
                decision.error_type = Some(error_type::RETRY);
                state = FinalState::Retrying(failure.clone());
            }
        }
        let resent_for = match &state {
            FinalState::Resend { run_at_ms, .. } => Some(*run_at_ms),
            _ => None,
        };
        match store.finish(id, &inv.request_id, state, now_ms(), message.as_deref()).await {
            Ok(Finished::Written) if let Some(run_at_ms) = resent_for => {
                tracing::warn!(run_at_ms, "attempt {attempt} failed: sent again by the runtime for {run_at_ms}");
                let mut body = summary_value(id, task, Status::Retrying, attempt, Some("resent"));
                body["run_at_ms"] = json!(run_at_ms);
                return (Reply::Success(body), true);
            }
            Ok(Finished::Written) => {
                let value = match &decision.state {
                    FinalState::Complete(text) => Some(text.as_str()),
                    _ => None,
                };
                if let Some(error) = self.follow_up(store.as_ref(), after, decision.state.status(), value).await {
                    wait_for_overrun_bodies(&bodies).await;
                    return (error, true);
                }
            }
            Ok(Finished::NotOwner) => {
                tracing::warn!("this request no longer owns the item (its lease lapsed and another took over): outcome not written");
                // The delivery that took over runs the body under this slot: kept.
                wait_for_overrun_bodies(&bodies).await;
                return (reply_for(id, task, attempt, &decision), false);
            }
            Err(e) => {
                tracing::error!("could not write the outcome: {e}");
                wait_for_overrun_bodies(&bodies).await;
                return (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, true);
            }
        }
        // The outcome is written; only now may an overrun body hold the answer back.
        wait_for_overrun_bodies(&bodies).await;
        (reply_for(id, task, attempt, &decision), true)
    }

    /// begin, the body and finish, holding `slot` (a concurrency limit's
    /// key) from the body's start to its outcome: given back then, or when
    /// the call is found ended; kept when another delivery of the call runs
    /// its body (busy, superseded), which gives it back itself.
    #[allow(clippy::too_many_arguments)]
    async fn record(&self, id: &str, task: &str, inv: &Invocation, work: Work, event: Option<&Value>, after: &After, slot: Option<&str>) -> Reply {
        let (reply, done) = self.record_run(id, task, inv, work, event, after, slot).await;
        if done && let Some(store) = &self.store {
            give_back(store.as_ref(), slot, id).await;
        }
        reply
    }

    /// The last attempt died (its lease lapsed), and another event of the
    /// call (a duplicate invoke) must not run one more: end it `crashed`, as
    /// Lambda's failure record would.
    async fn end_exhausted(&self, store: &dyn ResponseStore, id: &str, task: &str, attempts: u32, event: Option<&Value>, after: &After) -> (Reply, bool) {
        let failure = Failure::new(FailureKind::Crashed, format!("attempt {attempts} of {attempts} died before it ended (its lease lapsed): no attempt is left"));
        let item = self.ended_item(id.to_owned(), task.to_owned(), now_ms(), after.parent.clone());
        let message = event.map(Value::to_string);
        match store.fail_unfinished(item, failure.clone(), message.as_deref()).await {
            Ok(_) => {
                tracing::error!(attempts, "the last attempt died and no attempt is left: ended crashed");
                if let Some(error) = self.follow_up(store, after, Status::Failed, None).await {
                    return (error, true);
                }
                (summary_error(Some(id), Some(task), FailureKind::Crashed, &failure.message), true)
            }
            Err(e) => (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, false),
        }
    }

    /// The item `fail_unfinished` creates for a call ended at `now` whose
    /// item is gone: readable a response TTL from then.
    fn ended_item(&self, id: String, task: String, now: u64, parent: Option<String>) -> PendingItem {
        PendingItem { id, task, now_ms: now, ttl: crate::store::ttl_after(now, self.settings.response_ttl), run_at_ms: None, digest: None, parent }
    }

    /// The state to write for `decision`: a retry the runtime sends itself
    /// is [`FinalState::Resend`], due after the decision's gap.
    fn resend_state(&self, decision: &Decision, attempt: u32) -> FinalState {
        match (&decision.state, decision.resend_in) {
            (FinalState::Retrying(failure), Some(gap)) => {
                let run_at_ms = now_ms().saturating_add(gap.as_millis() as u64);
                let ttl = crate::store::ttl_after(crate::store::give_up_ms(now_ms(), Some(run_at_ms)), self.settings.response_ttl);
                FinalState::Resend { failure: failure.clone(), run_at_ms, after_attempt: attempt, ttl }
            }
            _ => decision.state.clone(),
        }
    }

    /// Send the call again after attempt `after_attempt`, due at
    /// `run_at_ms`, marked as that attempt's re-send; `Err` says why not.
    async fn send_again(&self, event: Option<&Value>, after_attempt: u32, run_at_ms: u64, inv: &Invocation) -> Result<(), String> {
        let event = event.ok_or("the message as it came is not at hand")?;
        let mut env = serde_json::from_value::<Envelope>(event.clone()).map_err(|e| format!("the message does not decode again: {e}"))?;
        env.resend = Some(after_attempt);
        env.deferred = 0;
        env.rate_turn_ms = None;
        let wait_until = inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64);
        follow_up::send_later(self.forwarder.as_ref(), env, run_at_ms, self.settings.signing_key.as_deref(), wait_until).await
    }

    /// A debounced call that a later call of its key superseded: ended
    /// `cancelled` without running (`Some`, the answer). `None`: it is the
    /// latest, or it began before it was superseded; it runs as any call.
    async fn debounced(&self, env: &Envelope) -> Option<Reply> {
        let (Some(key), Some(store), true) = (&env.debounce, &self.store, env.capture) else { return None };
        let latest = crate::store::latest_run_id(&crate::store::flow::debounce_item(key));
        let store_error = |e: crate::error::StoreError| Some(Reply::Error { error_type: error_type::STORE, message: e.to_string() });
        let noted = match store.get(&latest).await {
            Ok(noted) => noted,
            Err(e) => return store_error(e),
        };
        let latest_id = noted.as_ref().and_then(|r| r.response.as_ref()).and_then(Value::as_str);
        if latest_id.is_none_or(|latest| latest == env.id) {
            return None;
        }
        match store.cancel(&env.id, now_ms()).await {
            Ok(crate::store::Cancel::Cancelled { .. }) => {
                tracing::info!(key = %key, latest = ?latest_id, "debounced: a later call of its key was sent, so this one ends cancelled");
                if let Some(error) = self.follow_up(store.as_ref(), &After::of(env), Status::Cancelled, None).await {
                    return Some(error);
                }
                Some(summary(&env.id, &env.task, Status::Cancelled, 0, Some("debounced")))
            }
            Ok(_) => None,
            Err(e) => store_error(e),
        }
    }

    /// Put a delivery off (a flow limit): send the message again for
    /// `at_ms`, counting the putting-off, and tell Lambda success. Not an
    /// attempt: the call's item is not touched. When the send fails, Lambda
    /// is told to retry, and its retry asks the limits again.
    async fn put_off(&self, mut env: Envelope, at_ms: u64, rate_turn_ms: Option<u64>, why: &str, inv: &Invocation) -> Reply {
        let (id, task) = (env.id.clone(), env.task.clone());
        env.deferred = env.deferred.saturating_add(1);
        env.rate_turn_ms = rate_turn_ms;
        // A reserved start may be waited for in place when it is near; a full
        // concurrency limit never holds the instance.
        let wait_until = match rate_turn_ms {
            Some(turn) if turn == at_ms => inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64),
            _ => 0,
        };
        let key = self.settings.signing_key.as_deref();
        match follow_up::send_later(self.forwarder.as_ref(), env, at_ms, key, wait_until).await {
            Ok(()) => {
                tracing::info!(at_ms, "put off, not an attempt: {why}");
                Reply::Success(json!({"id": id, "task": task, "note": "deferred", "run_at_ms": at_ms, "why": why}))
            }
            Err(e) => {
                tracing::error!("put off ({why}), but could not be sent again: {e}");
                Reply::Error { error_type: error_type::RETRY, message: format!("task `{task}` (id {id}): {why}, and it could not be sent again: {e}") }
            }
        }
    }

    /// Claim the call. A live lease held under this very request id is a
    /// concurrent delivery of the same event (Lambda may deliver one event
    /// twice) or a retry that came before a crashed attempt's lease lapsed:
    /// wait for the lease to lapse (a live owner keeps renewing it) or the
    /// call to move on, then claim again; near the deadline, give up (the
    /// caller answers `TaskBusy`, so that Lambda retries later).
    async fn begin(&self, store: &dyn ResponseStore, id: &str, task: &str, inv: &Invocation, max_attempts: u32, after: &After) -> Result<Begun, crate::error::StoreError> {
        // A group's child stays readable until its group's callback, sent
        // at the latest when Lambda gives up on this event, can have run.
        let life = if after.group.is_some() { crate::store::MAX_EVENT_LIFE_MS } else { 0 };
        loop {
            let now = now_ms();
            let req = BeginRequest {
                id: id.to_owned(),
                task: task.to_owned(),
                request_id: inv.request_id.clone(),
                lease_until_ms: lease_until(now, self.settings.lease, inv.deadline_ms),
                max_attempts,
                now_ms: now,
                // Lambda may retry until the event's life ends: readable until then, and a response TTL after.
                ttl: crate::store::ttl_after(crate::store::give_up_ms(now, None).saturating_add(life), self.settings.response_ttl),
                resend: after.resend,
                parent: after.parent.clone(),
            };
            match store.begin(req).await? {
                Begun::Busy { request_id, lease_until_ms } if request_id == inv.request_id || after.resend.is_some() => {
                    let give_up_at = inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64);
                    let wake = if request_id == inv.request_id {
                        lease_until_ms.saturating_add(1)
                    } else {
                        // A re-sent message can come before the attempt that sent it has
                        // written its end (it sends, then writes): that takes milliseconds.
                        now_ms().saturating_add(RESENT_POLL_MS).min(lease_until_ms.saturating_add(1))
                    };
                    if wake >= give_up_at {
                        return Ok(Begun::Busy { request_id, lease_until_ms });
                    }
                    tracing::info!(lease_until_ms, "another delivery holds the task: waiting for it to end");
                    tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now_ms()))).await;
                }
                begun => return Ok(begun),
            }
        }
    }
}

/// How often a re-sent message looks again at a call whose previous
/// attempt has sent it but not yet written its end.
const RESENT_POLL_MS: u64 = 50;

/// The end of a lease taken or renewed at `now`: one lease period on, but
/// never past the invocation's deadline.
fn lease_until(now: u64, lease: Duration, deadline_ms: u64) -> u64 {
    now.saturating_add(lease.as_millis() as u64).min(deadline_ms)
}

/// Renews a running call's lease every third of the lease period.
struct Heartbeat<'a> {
    store: Arc<dyn ResponseStore>,
    id: &'a str,
    request_id: &'a str,
    lease: Duration,
    deadline_ms: u64,
    /// The concurrency limit whose slot the call holds, renewed alongside.
    slot: Option<&'a str>,
}

impl Heartbeat<'_> {
    /// Run `work`; if it is still running after a third of the lease, renew
    /// the lease from a task of its own (so that it beats even while the
    /// body keeps this task busy) until `work` ends. Short bodies cost
    /// nothing: no task is spawned and no write is made.
    async fn around<F: std::future::Future<Output = Decision>>(self, work: F) -> Decision {
        let beat = self.lease / 3;
        let mut work = std::pin::pin!(work);
        if let Ok(decision) = tokio::time::timeout(beat, work.as_mut()).await {
            return decision;
        }
        let (store, id, request_id, lease, deadline_ms) =
            (self.store, self.id.to_owned(), self.request_id.to_owned(), self.lease, self.deadline_ms);
        let slot = self.slot.map(str::to_owned);
        let beating = tokio::spawn(
            async move {
                let mut tick = tokio::time::interval(beat);
                loop {
                    tick.tick().await;
                    let until = lease_until(now_ms(), lease, deadline_ms);
                    if let Some(key) = &slot {
                        match store.renew_slot(key, &id, until).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!("heartbeat: the concurrency slot of `{key}` had lapsed and was given to another call"),
                            Err(e) => tracing::warn!("heartbeat: could not renew the concurrency slot of `{key}`: {e}"),
                        }
                    }
                    match store.renew(&id, &request_id, until).await {
                        Ok(Finished::Written) => {}
                        Ok(Finished::NotOwner) => {
                            tracing::warn!("heartbeat: this request no longer owns the item; stopped renewing");
                            return;
                        }
                        // A missed beat is not fatal: the lease still holds for two more.
                        Err(e) => tracing::warn!("heartbeat: could not renew the lease: {e}"),
                    }
                }
            }
            .in_current_span(),
        );
        let decision = work.await;
        beating.abort();
        decision
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
        let chain = (!env.then.is_empty()).then(|| Envelope { args: Map::new(), ..env.clone() });
        After { group: env.group.clone(), chain, resend: env.resend, parent: env.parent.clone() }
    }
}

/// What one failure record came to.
enum RecordOutcome {
    /// A task record: `true` when it ended its call.
    Ended(bool),
    /// Not one the worker can end a call with: left to the queue's DLQ.
    NotOurs,
}

/// What a message asks of the worker once it owns the item.
enum Work {
    /// Run the body of `def`.
    Run {
        def: &'static TaskDef,
        args: Map<String, Value>,
        max_attempts: u32,
        timeout: Duration,
        callback_of: Option<String>,
        /// The task's retry policy, when the runtime sends its retries itself.
        policy: Option<crate::policy::RetryPolicy>,
        /// The call that sent it, and the trace it runs in.
        parent: Option<String>,
        traceparent: Option<String>,
    },
    /// Do not run: record this permanent failure.
    Refuse(Failure),
}

impl Work {
    /// The attempts this call is allowed (1 for a refusal: it never retries).
    fn max_attempts(&self) -> u32 {
        match self {
            Work::Run { max_attempts, .. } => *max_attempts,
            Work::Refuse(_) => 1,
        }
    }

    async fn run(self, id: &str, inv: &Invocation, attempt: Option<u32>, bodies: &Arc<BlockingBodies>) -> Decision {
        match self {
            Work::Refuse(failure) => outcome::permanent(failure),
            Work::Run { def, args, max_attempts, timeout, callback_of, policy, parent, traceparent } => {
                let ctx = crate::context::TaskContext {
                    task: def.spec.name.to_owned(),
                    id: id.to_owned(),
                    attempt,
                    request_id: inv.request_id.clone(),
                    invoked_function_arn: crate::context::invoked_function_arn().map(|a| a.to_string()),
                    callback_of,
                    parent,
                    traceparent,
                };
                let result = match (def.call)(args) {
                    Err(e) => RunResult::BadArgs(e),
                    Ok(fut) => crate::context::scope(ctx, counting_blocking(bodies.clone(), run_guarded(fut, timeout))).await,
                };
                outcome::decide(result, attempt, max_attempts, policy.as_ref())
            }
        }
    }
}

/// Give back call `id`'s slot of the concurrency limit `slot`, if any; one
/// that cannot be given back lapses within a lease.
async fn give_back(store: &dyn ResponseStore, slot: Option<&str>, id: &str) {
    if let Some(key) = slot
        && let Err(e) = store.release_slot(key, id).await
    {
        tracing::warn!("could not give back the concurrency slot of `{key}`: {e}");
    }
}

/// Wait until no synchronous body of this invocation runs: one that
/// overran its deadline keeps its thread (it cannot be cancelled), and the
/// answer waits for it, so that the call's retry cannot run beside it. On
/// Lambda, the sandbox is ended at the deadline and the wait with it.
async fn wait_for_overrun_bodies(bodies: &BlockingBodies) {
    if bodies.running() > 0 {
        tracing::warn!(
            "a synchronous body is still running past its deadline (its thread cannot be stopped): \
             the timeout is recorded, and this invocation answers once the body ends or Lambda ends the sandbox",
        );
        bodies.idle().await;
    }
}

/// Run a task future, catching panics and stopping at the deadline.
async fn run_guarded(fut: crate::registry::TaskFuture, timeout: Duration) -> RunResult {
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
        Err(_) => RunResult::Timeout(started.elapsed()),
        Ok(Err(panic)) => RunResult::Panic(panic_message(&*panic)),
        Ok(Ok(Ok(v))) => RunResult::Value(v),
        Ok(Ok(Err(e))) => RunResult::Error(e),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

fn reply_for(id: &str, task: &str, attempt: u32, d: &Decision) -> Reply {
    let which = if attempt == 0 { "an attempt".to_owned() } else { format!("attempt {attempt}") };
    let (failure, status) = match &d.state {
        FinalState::Complete(_) => (None, Status::Complete),
        FinalState::Retrying(f) | FinalState::Resend { failure: f, .. } => (Some(f), Status::Retrying),
        FinalState::Failed(f) => (Some(f), Status::Failed),
    };
    match (d.error_type, failure) {
        (Some(error_type), Some(f)) => {
            tracing::warn!(%status, kind = %f.kind, "{which} failed: {}", f.message);
            Reply::Error { error_type, message: format!("task `{task}` (id {id}): {which} failed: {f}") }
        }
        _ => {
            match failure {
                Some(f) => tracing::error!(%status, kind = %f.kind, "task failed: {}", f.message),
                // DEBUG, not INFO: a line for every call that went as it should
                // cost a warm invoke 7 to 10% (`cargo bench -p tests --bench
                // function`), and Lambda writes START/END/REPORT for each anyway.
                None => tracing::debug!(%status, "task complete"),
            }
            let mut body = summary_value(id, task, status, attempt, None);
            if let Some(f) = failure {
                body["error"] = json!(f);
            }
            Reply::Success(body)
        }
    }
}

fn summary_value(id: &str, task: &str, status: Status, attempts: u32, note: Option<&str>) -> Value {
    let mut v = json!({"id": id, "task": task, "status": status, "attempts": attempts});
    if let Some(note) = note {
        v["note"] = json!(note);
    }
    v
}

fn summary(id: &str, task: &str, status: Status, attempts: u32, note: Option<&str>) -> Reply {
    Reply::Success(summary_value(id, task, status, attempts, note))
}

fn summary_error(id: Option<&str>, task: Option<&str>, kind: FailureKind, message: &str) -> Reply {
    Reply::Success(json!({"id": id, "task": task, "status": Status::Failed, "error": Failure::new(kind, message)}))
}
