//! The wire format (envelope v1): one JSON object, the invoke payload.
//!
//! ```json
//! {"task_runtime": 1, "task": "quickstart::make_pie", "id": "<uuid v4>",
//!  "args": {"flavor": "apple", "slices": 8}, "capture": true, "retries": 2,
//!  "sent_at_ms": 1763900000000}
//! ```
//!
//! The key `task_runtime` (the version) marks a task message. Everything a
//! worker receives goes through [`Incoming::classify`] first: a task
//! message, a bad one, Lambda's failure record of one, or not the worker's.
//!
//! Here, [`Envelope`] and [`Incoming::classify`]. Beside it: `links` (a
//! chain's next steps, a group's place), `signing` (what a signature and a
//! digest cover), [`aws_event`] (which service an event is from) and
//! [`failure_record`] (Lambda's records of events it gave up on).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod args;
pub mod aws_event;
pub mod failure_record;
mod id;
mod links;
mod payload_ref;
mod signing;

pub(crate) use self::id::{dated_at, is_dated, new_dated_id, new_id};
pub use self::args::{Args, ArgsWriter};
pub use self::links::{ChainRef, GroupRef, NextStep, callback_id, child_id, step_id};
pub use self::payload_ref::{PAYLOAD_MARKER, PayloadRef};
pub use self::signing::{args_digest, canonical};
pub(crate) use self::signing::payload_digest;

use self::failure_record::FailureRecord;
use crate::response::FailureKind;

/// The envelope version this crate writes and the newest it reads.
pub const VERSION: u64 = 1;
/// The key that marks a task message, holding the version.
pub const MARKER: &str = "task_runtime";
/// Lambda's limit for an asynchronous invoke payload, in bytes (1 MB:
/// "For asynchronous invocations, the maximum payload size is 1 MB",
/// <https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html>).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 1_048_576;
/// With `TASK_PAYLOAD_BUCKET` set, a message larger than this (256 KiB,
/// Lambda's limit before late 2025) sends its arguments through S3. The
/// margin below [`MAX_ASYNC_PAYLOAD_BYTES`] is for where a message goes
/// after its invoke: Lambda's failure record holds the whole message as
/// its `requestPayload` (and about 1 KB of its own), and an SQS queue
/// takes 256 KiB a message unless its `MaximumMessageSize` is raised (the
/// template's failure queue keeps the default:
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>);
/// a delayed call's message is the input of an EventBridge Scheduler schedule.
pub const OFFLOAD_ABOVE_BYTES: usize = 256 * 1024;
/// The longest `id` or `task` a worker accepts, in bytes (DynamoDB keys are
/// at most 2048 bytes; a caller's own ids at most 512).
pub const MAX_NAME_BYTES: usize = 1024;

/// A task message: which task, which response id, which arguments.
///
/// ```
/// use task_runtime::envelope::{Envelope, MARKER, MAX_ASYNC_PAYLOAD_BYTES};
///
/// let args = serde_json::json!({"flavor": "apple", "slices": 8}).as_object().cloned().unwrap();
/// let mut message = Envelope::new("quickstart::make_pie", args, true, 2);
/// message.sign(b"a shared secret"); // only when TASK_SIGNING_KEY is set
/// assert!(message.verify(b"a shared secret").is_ok());
/// assert!(message.verify(b"another secret").is_err());
///
/// let payload = message.to_payload().expect("well under the limit");
/// let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
/// assert_eq!(json[MARKER], 1);
/// assert!(payload.len() <= MAX_ASYNC_PAYLOAD_BYTES);
///
/// let huge = serde_json::json!({"blob": "x".repeat(MAX_ASYNC_PAYLOAD_BYTES)}).as_object().cloned().unwrap();
/// let (size, limit) = Envelope::new("t", huge, true, 2).to_payload().unwrap_err();
/// assert!(size > limit);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The envelope version; serialized as the `task_runtime` marker.
    #[serde(rename = "task_runtime")]
    pub version: u64,
    /// The registered task name.
    pub task: String,
    /// The response id (a UUID v4).
    pub id: String,
    /// The arguments, keyed by parameter name (empty when `args_ref` is
    /// set): a `Map`, or the text a typed call wrote ([`Args`]).
    pub args: Args,
    /// Where the arguments are when they were too large to send (with
    /// `TASK_PAYLOAD_BUCKET`): the worker reads and checks them before the
    /// body runs. A signature covers the reference, size and hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_ref: Option<PayloadRef>,
    /// Whether the worker writes the outcome to the response store.
    #[serde(default = "default_capture")]
    pub capture: bool,
    /// The most retries the caller allows (0-100; past the function's own,
    /// the runtime sends the call again itself).
    #[serde(default = "default_retries")]
    pub retries: u8,
    /// When the caller sent it, epoch milliseconds.
    #[serde(default)]
    pub sent_at_ms: u64,
    /// HMAC-SHA256 (hex) over the message without this field, when signing is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// The schedule this call is a run of (its task's name), when a schedule sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The group this call is a child of: whoever sees it end counts it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    /// The group whose callback this call is (its children's outcomes are
    /// read with [`GroupHandle::from_id`](crate::GroupHandle::from_id)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_of: Option<String>,
    /// The steps of a chain that follow this call, in order: when it
    /// completes, the first is sent with its value as an argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<NextStep>,
    /// This call's place in a chain, when it is a later step of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainRef>,
    /// Set when the runtime sent this message again after that attempt
    /// failed (a retry policy): only it may begin the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend: Option<u32>,
    /// How many times a concurrency or rate limit has put this delivery
    /// off (the next wait grows with it). Not an attempt.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: u32,
    /// The start this message holds under its task's rate limit, epoch ms:
    /// taken before it was put off, so it runs then without taking another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_turn_ms: Option<u64>,
    /// The debounce key this call was sent under: it runs only if it is
    /// still the latest call sent with the key when it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<String>,
    /// The call that sent this one: the id of the task that was running
    /// where it was sent (or the step before, for a chain's step; a
    /// group's callback has the group's sender). `None` for a call from outside a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The caller's trace context, as a W3C `traceparent`
    /// (see [`crate::trace`]): the task's span continues that trace. `None`
    /// for the trace the call's id names, the one a call from outside any
    /// trace starts ([`Envelope::trace_context`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn default_capture() -> bool {
    true
}
fn default_retries() -> u8 {
    2
}

/// A message that carries the marker but cannot be run. It keeps the id
/// and task name when they were readable, so the refusal can be recorded.
///
/// ```
/// use task_runtime::envelope::Incoming;
/// use task_runtime::FailureKind;
///
/// let event = serde_json::json!({"task_runtime": 1, "task": "t", "id": "7", "args": [1, 2]});
/// let Incoming::Bad(err) = Incoming::classify(&event) else { unreachable!() };
/// assert_eq!((err.kind, err.id.as_deref()), (FailureKind::BadEnvelope, Some("7")));
/// assert!(err.message.contains("does not decode"), "{}", err.message);
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EnvelopeError {
    /// `bad_envelope` or `unsupported_version`.
    pub kind: FailureKind,
    /// The response id, when the message had a readable one.
    pub id: Option<String>,
    /// The task name, when the message had a readable one.
    pub task: Option<String>,
    /// What is wrong, naming the field.
    pub message: String,
}

/// What an incoming event is; see [`Incoming::classify`].
///
/// ```
/// use task_runtime::envelope::Incoming;
/// let event = serde_json::json!({"task_runtime": 1, "task": "t", "id": "7", "args": {}});
/// assert!(matches!(Incoming::classify(&event), Incoming::Task(m) if m.id == "7"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Incoming {
    /// No `task_runtime` key: an ordinary event for the user's handler.
    NotATask,
    /// A task message that decoded.
    Task(Envelope),
    /// A task message that cannot be run.
    Bad(EnvelopeError),
    /// Lambda's records of task messages it gave up on (see
    /// [`failure_record`]): one delivered directly, or an SQS batch of them.
    FailureRecords(Vec<FailureRecord>),
    /// A keep-warm ping (`{"task_runtime_warmup": {"instances": N}}`):
    /// answered at once; runs no task and not the function's handler.
    WarmUp(WarmUp),
}

/// The key that marks a keep-warm ping.
pub const WARMUP_MARKER: &str = "task_runtime_warmup";

/// A keep-warm ping: keep `instances` instances warm (the ping fans out
/// `instances - 1` concurrent warm-up invokes of the function), each held
/// `hold_ms` so that they land on distinct instances.
///
/// ```
/// use task_runtime::envelope::{Incoming, WarmUp};
/// let ping = serde_json::json!({"task_runtime_warmup": {"instances": 3}});
/// assert_eq!(Incoming::classify(&ping), Incoming::WarmUp(WarmUp { instances: 3, hold_ms: 0 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUp {
    /// How many instances to keep warm (1: only this one).
    pub instances: u32,
    /// How long to hold this invocation before answering, in ms (fanned-out pings).
    pub hold_ms: u64,
}

impl Incoming {
    /// Classify an event: not a task, a task, or a bad task message.
    ///
    /// ```
    /// use task_runtime::envelope::Incoming;
    /// let e = serde_json::json!({"task_runtime": 9, "task": "t", "id": "1", "args": {}});
    /// match Incoming::classify(&e) {
    ///     Incoming::Bad(err) => assert!(err.message.contains("version 9")),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(Incoming::classify(&serde_json::json!({"path": "/"})), Incoming::NotATask);
    /// ```
    pub fn classify(event: &Value) -> Incoming {
        let Some(obj) = event.as_object() else { return Incoming::NotATask };
        let Some(version) = obj.get(MARKER) else {
            if let Some(ping) = obj.get(WARMUP_MARKER) {
                let number = |k: &str, max: u64| ping.get(k).and_then(Value::as_u64).map_or(0, |n| n.min(max));
                return Incoming::WarmUp(WarmUp { instances: number("instances", 100).max(1) as u32, hold_ms: number("hold_ms", 5_000) });
            }
            if let Some(record) = FailureRecord::from_value(event) {
                return Incoming::FailureRecords(vec![record]);
            }
            return FailureRecord::from_sqs_batch(event).map_or(Incoming::NotATask, Incoming::FailureRecords);
        };
        // An id or a task name too long to store is not kept: the refusal
        // then writes nothing, rather than an item DynamoDB would refuse.
        let id = obj.get("id").and_then(Value::as_str).filter(|id| id.len() <= MAX_NAME_BYTES).map(str::to_owned);
        let task = obj.get("task").and_then(Value::as_str).filter(|t| t.len() <= MAX_NAME_BYTES).map(str::to_owned);
        let bad = |kind, message: String| {
            Incoming::Bad(EnvelopeError { kind, id: id.clone(), task: task.clone(), message })
        };
        match version.as_u64() {
            Some(v) if v > VERSION => {
                return bad(
                    FailureKind::UnsupportedVersion,
                    format!("envelope version {v} is newer than this worker understands (version {VERSION}); deploy a newer task-runtime"),
                );
            }
            Some(v) if v >= 1 => {}
            _ => {
                return bad(
                    FailureKind::BadEnvelope,
                    format!("field `{MARKER}` must be a positive integer version, got {version}"),
                );
            }
        }
        match Envelope::deserialize(event) {
            Ok(env) if env.id.is_empty() => bad(FailureKind::BadEnvelope, "field `id` is empty".into()),
            Ok(env) if env.id.len() > MAX_NAME_BYTES || env.task.len() > MAX_NAME_BYTES => bad(
                FailureKind::BadEnvelope,
                format!("field `id` ({} bytes) or `task` ({} bytes) is longer than {MAX_NAME_BYTES} bytes", env.id.len(), env.task.len()),
            ),
            Ok(env) => Incoming::Task(env),
            Err(e) => bad(FailureKind::BadEnvelope, format!("task message does not decode: {e}")),
        }
    }
}

impl Envelope {
    /// A new v1 message with a fresh UUID v4 id.
    pub fn new(task: impl Into<String>, args: Map<String, Value>, capture: bool, retries: u8) -> Self {
        Self::sent(task.into(), new_id(), args.into(), capture, retries, crate::time::now_ms())
    }

    /// A new v1 message under `id`, sent at `sent_at_ms`: what the caller's
    /// dispatch builds, with the id and the time it has already (no second
    /// id drawn, no second clock read).
    pub(crate) fn sent(task: String, id: String, args: Args, capture: bool, retries: u8, sent_at_ms: u64) -> Self {
        Self {
            version: VERSION,
            task,
            id,
            args,
            args_ref: None,
            capture,
            retries,
            sent_at_ms,
            sig: None,
            schedule: None,
            group: None,
            callback_of: None,
            then: Vec::new(),
            chain: None,
            resend: None,
            deferred: 0,
            rate_turn_ms: None,
            debounce: None,
            parent: None,
            traceparent: None,
        }
    }

    /// The message of the step after this call, which completed with
    /// `value`: `None` when no step follows.
    ///
    /// ```
    /// use task_runtime::envelope::{Envelope, NextStep};
    /// let mut first = Envelope::new("count", Default::default(), true, 2);
    /// first.then = vec![NextStep { task: "double".into(), args: Default::default(), param: "n".into(), function: None, retries: 1 }];
    /// let next = first.next_step(serde_json::json!(21)).expect("a step follows");
    /// assert_eq!((next.id.as_str(), next.args["n"].clone(), next.then.len()), (format!("{}.step1", first.id).as_str(), serde_json::json!(21), 0));
    /// assert!(next.next_step(serde_json::json!(42)).is_none());
    /// ```
    pub fn next_step(&self, value: Value) -> Option<Envelope> {
        let (step, rest) = self.then.split_first()?;
        let (chain, number) = match &self.chain {
            Some(c) => (c.id.clone(), c.step + 1),
            None => (self.id.clone(), 1),
        };
        let mut args = step.args.clone();
        args.insert(step.param.clone(), value);
        let mut next = Envelope::new(step.task.clone(), args.into_map(), self.capture, step.retries);
        next.id = step_id(&chain, number);
        next.then = rest.to_vec();
        next.chain = Some(ChainRef { id: chain, step: number });
        // Sent by this call's end: its child, in the same trace.
        next.parent = Some(self.id.clone());
        next.traceparent = crate::trace::TraceParent::parse(&self.trace_context()).map(|t| t.child_of_call(&self.id).to_string());
        Some(next)
    }

    /// The trace this call runs in, as a W3C `traceparent`: the one the
    /// message carries, or else the trace its id names
    /// ([`TraceParent::root_of`](crate::trace::TraceParent::root_of)): a
    /// caller leaves that one out of the message, since the id gives it.
    ///
    /// ```
    /// use task_runtime::envelope::Envelope;
    /// use task_runtime::trace::TraceParent;
    /// let mut env = Envelope::new("t", Default::default(), true, 2);
    /// assert_eq!(env.trace_context(), TraceParent::root_of(&env.id).to_string());
    /// let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// env.traceparent = Some(h.into());
    /// assert_eq!(env.trace_context(), h);
    /// ```
    pub fn trace_context(&self) -> String {
        match &self.traceparent {
            Some(header) => header.clone(),
            None => crate::trace::TraceParent::root_of(&self.id).to_string(),
        }
    }

    /// What names this message's one-time schedule when it is sent later:
    /// its id, and for a message the runtime sends again, which sending it
    /// is (`ID.retryN` after attempt N, `ID.waitN` when put off N times),
    /// so that no two sendings of one call share a schedule.
    ///
    /// ```
    /// use task_runtime::envelope::Envelope;
    /// let mut env = Envelope::new("t", Default::default(), true, 8);
    /// env.id = "7".into();
    /// assert_eq!(env.schedule_key(), "7");
    /// env.resend = Some(3);
    /// assert_eq!(env.schedule_key(), "7.retry3");
    /// env.deferred = 2;
    /// assert_eq!(env.schedule_key(), "7.retry3.wait2");
    /// ```
    pub fn schedule_key(&self) -> String {
        let mut key = self.id.clone();
        if let Some(n) = self.resend {
            key.push_str(&format!(".retry{n}"));
        }
        if self.deferred > 0 {
            key.push_str(&format!(".wait{}", self.deferred));
        }
        key
    }

    /// The bytes of the message, checked against [`MAX_ASYNC_PAYLOAD_BYTES`].
    ///
    /// Returns `Err((size, limit))` when too large.
    pub fn to_payload(&self) -> Result<Vec<u8>, (usize, usize)> {
        let bytes = serde_json::to_vec(self).expect("an Envelope always serializes");
        if bytes.len() > MAX_ASYNC_PAYLOAD_BYTES {
            return Err((bytes.len(), MAX_ASYNC_PAYLOAD_BYTES));
        }
        Ok(bytes)
    }
}

/// What kind of JSON value `v` is, for an error that names it.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
