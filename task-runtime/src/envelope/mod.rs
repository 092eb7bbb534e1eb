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

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

pub mod aws_event;
pub mod failure_record;

use self::failure_record::FailureRecord;
use crate::response::FailureKind;

/// The envelope version this crate writes and the newest it reads.
pub const VERSION: u64 = 1;
/// The key that marks a task message, holding the version.
pub const MARKER: &str = "task_runtime";
/// Lambda's limit for an asynchronous invoke payload, in bytes (1 MB).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 1_048_576;
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
    /// The arguments, keyed by parameter name.
    pub args: Map<String, Value>,
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
    /// (see [`crate::trace`]): the task's span continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A step of a chain, carried by the call before it: a call whose argument
/// `param` is the value of the step before.
///
/// ```
/// use task_runtime::envelope::{NextStep, step_id};
/// let step = NextStep { task: "reports.total".into(), args: Default::default(), param: "counts".into(), function: None, retries: 2 };
/// assert_eq!((step.param.as_str(), step_id("c", 2)), ("counts", "c.step2".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    /// The task.
    pub task: String,
    /// Its other arguments.
    pub args: Map<String, Value>,
    /// The parameter that takes the value of the step before.
    pub param: String,
    /// The function to send it to; `None`: the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The most retries (0-2).
    #[serde(default = "default_retries")]
    pub retries: u8,
}

/// A later step's place in its chain: the chain's id (its first call's)
/// and the step's number (the first call is step 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRef {
    /// The chain's id: the id of its first call.
    pub id: String,
    /// This step's number, from 1.
    pub step: u32,
}

/// The call id of step `step` (from 1) of chain `chain`.
pub fn step_id(chain: &str, step: u32) -> String {
    format!("{chain}.step{step}")
}

/// A child's place in its group, carried in the child's message, so that
/// every path that sees the child end (its worker, a duplicate delivery,
/// Lambda's failure record) can count it without a read.
///
/// ```
/// use task_runtime::envelope::GroupRef;
/// let child = GroupRef { id: "g".into(), index: 7, total: 10, shards: 3, window: None };
/// assert_eq!((child.shard(), child.shard_size(1), child.shard_size(2)), (1, 3, 3));
/// assert_eq!(child.shard_size(0), 4); // children 0, 3, 6, 9
/// assert_eq!(child.child_id(), "g.7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    /// The group's id.
    pub id: String,
    /// This child's place, from 0, in call order.
    pub index: u32,
    /// How many children the group has.
    pub total: u32,
    /// Over how many counter items its ends are counted (child `i` in shard `i % shards`).
    pub shards: u32,
    /// At most this many children run at once: child `i`'s end lets child
    /// `i + window` go (see [`crate::Group::max_concurrency`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

impl GroupRef {
    /// The shard this child is counted in.
    pub fn shard(&self) -> u32 {
        self.index % self.shards.max(1)
    }

    /// How many children shard `shard` counts.
    pub fn shard_size(&self, shard: u32) -> u32 {
        let shards = self.shards.max(1);
        self.total / shards + u32::from(shard < self.total % shards)
    }

    /// The shards that count at least one child.
    pub fn used_shards(&self) -> u32 {
        self.shards.max(1).min(self.total.max(1))
    }

    /// This child's call id.
    pub fn child_id(&self) -> String {
        child_id(&self.id, self.index)
    }

    /// The child whose turn this child's end gives, when the group runs a
    /// limited number at once and one is left.
    ///
    /// ```
    /// use task_runtime::envelope::GroupRef;
    /// let child = |index| GroupRef { id: "g".into(), index, total: 10, shards: 1, window: Some(3) };
    /// assert_eq!((child(0).next_in_turn(), child(6).next_in_turn(), child(7).next_in_turn()), (Some(3), Some(9), None));
    /// ```
    pub fn next_in_turn(&self) -> Option<u32> {
        let next = self.index.checked_add(self.window?)?;
        (next < self.total).then_some(next)
    }
}

/// The call id of child `index` of group `group`.
pub fn child_id(group: &str, index: u32) -> String {
    format!("{group}.{index}")
}

/// The call id of the callback of group `group`.
///
/// ```
/// assert_eq!(task_runtime::envelope::callback_id("g"), "g.then");
/// ```
pub fn callback_id(group: &str) -> String {
    format!("{group}.then")
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
        Self {
            version: VERSION,
            task: task.into(),
            id: uuid::Uuid::new_v4().to_string(),
            args,
            capture,
            retries,
            sent_at_ms: crate::time::now_ms(),
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
        let mut next = Envelope::new(step.task.clone(), args, self.capture, step.retries);
        next.id = step_id(&chain, number);
        next.then = rest.to_vec();
        next.chain = Some(ChainRef { id: chain, step: number });
        // Sent by this call's end: its child, in the same trace.
        next.parent = Some(self.id.clone());
        next.traceparent = self.traceparent.as_deref().and_then(crate::trace::TraceParent::parse).map(|t| t.child_of_call(&self.id).to_string());
        Some(next)
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

    /// HMAC-SHA256 over the [`canonical`] form of the message without `sig`:
    /// bytes that depend on the message alone, not on how serde_json was
    /// built (its `preserve_order` feature changes the order of object keys).
    fn mac(&self, key: &[u8]) -> Hmac<Sha256> {
        let unsigned = Envelope { sig: None, ..self.clone() };
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(&canonical(&serde_json::to_value(&unsigned).expect("an Envelope always serializes")));
        mac
    }

    /// Sign the message with HMAC-SHA256 (sets `sig`).
    pub fn sign(&mut self, key: &[u8]) {
        self.sig = Some(hex::encode(self.mac(key).finalize().into_bytes()));
    }

    /// SHA-256 (hex) of the whole message, signature included: what the
    /// caller stores with its `pending` item when signing is on. Only the
    /// caller's own message, byte for byte, has it.
    ///
    /// ```
    /// # use task_runtime::envelope::Envelope;
    /// let mut message = Envelope::new("t", Default::default(), true, 2);
    /// message.sign(b"key");
    /// let mut forged = message.clone();
    /// forged.task = "other".into();
    /// assert_ne!(message.digest(), forged.digest());
    /// assert_eq!(message.digest().len(), 64);
    /// ```
    pub fn digest(&self) -> String {
        payload_digest(&canonical(&serde_json::to_value(self).expect("an Envelope always serializes")))
    }

    /// Check `sig` against the key; `Err` says what is wrong.
    pub fn verify(&self, key: &[u8]) -> Result<(), &'static str> {
        let sig = self.sig.as_deref().ok_or("the message has no signature (`sig`)")?;
        let bytes = hex::decode(sig).map_err(|_| "the signature (`sig`) is not hex")?;
        self.mac(key).verify_slice(&bytes).map_err(|_| "the signature (`sig`) does not match the message")
    }
}

/// SHA-256 (hex) of bytes.
pub(crate) fn payload_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(bytes))
}

/// The canonical form of a JSON value, which signatures and digests cover:
/// JSON text with no whitespace, every object's keys in ascending order of
/// their UTF-8 bytes (whatever order the map keeps), strings and numbers as
/// serde_json writes them (`"\u001f"`-style escapes for control characters
/// only, shortest round-trip floats). Python's
/// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
/// gives the same bytes for messages of plain strings and integers.
///
/// ```
/// use task_runtime::envelope::canonical;
/// let v: serde_json::Value = serde_json::from_str(r#"{"b": [1, {"d": 1, "c": "é"}], "a": null}"#).unwrap();
/// assert_eq!(String::from_utf8(canonical(&v)).unwrap(), r#"{"a":null,"b":[1,{"c":"é","d":1}]}"#);
/// ```
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string always serializes");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar always serializes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_group_s_children_are_spread_over_its_shards_in_turn() {
        let child = |index| GroupRef { id: "g".into(), index, total: 7, shards: 3, window: None };
        let shards: Vec<u32> = (0..7).map(|i| child(i).shard()).collect();
        assert_eq!(shards, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!((child(0).shard_size(0), child(0).shard_size(1), child(0).shard_size(2)), (3, 2, 2));
        assert_eq!((child(0).used_shards(), GroupRef { id: "g".into(), index: 0, total: 2, shards: 3, window: None }.used_shards()), (3, 2));
        assert_eq!(child(5).child_id(), "g.5");
    }

    #[test]
    fn a_child_s_end_is_the_turn_of_the_child_a_window_later_while_there_is_one() {
        let child = |index, window| GroupRef { id: "g".into(), index, total: 10, shards: 1, window };
        assert_eq!(child(6, Some(3)).next_in_turn(), Some(9));
        assert_eq!(child(7, Some(3)).next_in_turn(), None, "child 10 does not exist");
        assert_eq!(child(0, None).next_in_turn(), None, "no window: every child was sent at once");
    }

    #[test]
    fn a_message_without_capture_or_retries_reads_as_captured_with_two_retries() {
        let bare = json!({"task_runtime": 1, "task": "t", "id": "1", "args": {}});
        let Incoming::Task(env) = Incoming::classify(&bare) else { panic!("a task message") };
        assert_eq!((env.capture, env.retries), (true, 2));
    }

    #[test]
    fn version_zero_is_refused_and_version_one_is_read() {
        let message = |v: u64| json!({"task_runtime": v, "task": "t", "id": "1", "args": {}});
        let Incoming::Bad(err) = Incoming::classify(&message(0)) else { panic!("version 0 is no version") };
        assert_eq!(err.kind, FailureKind::BadEnvelope);
        assert!(err.message.contains("positive integer version"), "{}", err.message);
        assert!(matches!(Incoming::classify(&message(1)), Incoming::Task(_)));
    }

    #[test]
    fn ids_and_task_names_up_to_the_limit_are_read_and_longer_ones_refused() {
        let message = |id: &str, task: &str| json!({"task_runtime": 1, "task": task, "id": id, "args": {}});
        let (at, over) = ("i".repeat(MAX_NAME_BYTES), "i".repeat(MAX_NAME_BYTES + 1));
        assert!(matches!(Incoming::classify(&message(&at, &at)), Incoming::Task(_)));
        for (id, task) in [(&over, &at), (&at, &over)] {
            let Incoming::Bad(err) = Incoming::classify(&message(id, task)) else { panic!("over the limit") };
            assert!(err.message.contains("longer than 1024 bytes"), "{}", err.message);
        }
    }

    #[test]
    fn a_payload_of_exactly_the_limit_is_sent() {
        let mut env = Envelope::new("t", Map::new(), true, 2);
        let base = env.to_payload().map(|p| p.len()).unwrap_or(usize::MAX);
        // A string argument grows the payload by its length plus `"x":""` (and a comma).
        env.args.insert("x".into(), json!(""));
        let with_empty = env.to_payload().map(|p| p.len()).unwrap_or(usize::MAX);
        env.args.insert("x".into(), json!("y".repeat(MAX_ASYNC_PAYLOAD_BYTES - with_empty)));
        assert_eq!(env.to_payload().map(|p| p.len()), Ok(MAX_ASYNC_PAYLOAD_BYTES));
        env.args.insert("x".into(), json!("y".repeat(MAX_ASYNC_PAYLOAD_BYTES - with_empty + 1)));
        assert_eq!(env.to_payload().map(|p| p.len()), Err((MAX_ASYNC_PAYLOAD_BYTES + 1, MAX_ASYNC_PAYLOAD_BYTES)));
        assert!(base < with_empty);
    }

    #[test]
    fn canonical_form_separates_every_element_and_member() {
        let v = json!({"b": [1, 2, 3], "a": {"y": true, "x": null}});
        assert_eq!(String::from_utf8(canonical(&v)).ok().as_deref(), Some(r#"{"a":{"x":null,"y":true},"b":[1,2,3]}"#));
    }

    #[test]
    fn round_trips_and_matches_the_documented_shape() {
        let env = Envelope::new("q::make_pie", json!({"flavor": "apple"}).as_object().cloned().unwrap_or_default(), true, 2);
        let v = serde_json::to_value(&env).unwrap_or_default();
        assert_eq!(v["task_runtime"], 1);
        assert_eq!(v["args"]["flavor"], "apple");
        assert!(v.get("sig").is_none());
        assert_eq!(Incoming::classify(&v), Incoming::Task(env));
    }

    #[test]
    fn malformed_messages_name_the_field() {
        let cases = [
            (json!({"task_runtime": "one"}), "task_runtime"),
            (json!({"task_runtime": 1, "task": 5, "id": "x", "args": {}}), "invalid type"),
            (json!({"task_runtime": 1, "task": "t", "args": {}}), "missing field `id`"),
            (json!({"task_runtime": 1, "task": "t", "id": "x", "args": [1]}), "invalid type"),
            (json!({"task_runtime": 1, "task": "t", "id": "", "args": {}}), "`id` is empty"),
        ];
        for (event, expected) in cases {
            match Incoming::classify(&event) {
                Incoming::Bad(e) => {
                    assert_eq!(e.kind, FailureKind::BadEnvelope, "{event}");
                    assert!(e.message.contains(expected), "{event}: {}", e.message);
                }
                other => panic!("{event} classified as {other:?}"),
            }
        }
    }

    #[test]
    fn newer_version_is_unsupported_and_keeps_the_id() {
        let e = json!({"task_runtime": 2, "task": "t", "id": "abc", "args": {}, "new_field": true});
        match Incoming::classify(&e) {
            Incoming::Bad(err) => {
                assert_eq!(err.kind, FailureKind::UnsupportedVersion);
                assert_eq!(err.id.as_deref(), Some("abc"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signatures_verify_only_with_the_same_key_and_message() {
        let mut env = Envelope::new("t", Map::new(), true, 2);
        assert_eq!(env.verify(b"k"), Err("the message has no signature (`sig`)"));
        env.sign(b"k");
        assert_eq!(env.verify(b"k"), Ok(()));
        assert!(env.verify(b"other").is_err());
        env.task = "evil".into();
        assert!(env.verify(b"k").is_err());
    }

    #[test]
    fn the_signature_covers_the_canonical_form_whatever_the_key_order() {
        // A message as a caller built with serde_json's `preserve_order`
        // sends it: keys in the order they were inserted, not sorted.
        let text = r#"{"task_runtime":1,"task":"t","id":"7","args":{"slices":8,"flavor":"apple"},"capture":true,"retries":2,"sent_at_ms":5}"#;
        let unsorted: Value = serde_json::from_str(text).unwrap_or_default();
        let env = Envelope::deserialize(&unsorted).expect("decodes");
        // The canonical bytes, and their HMAC-SHA256 under "k", computed
        // independently with Python:
        //   json.dumps(m, sort_keys=True, separators=(",", ":"))
        //   hmac.new(b"k", that, hashlib.sha256).hexdigest()
        let canonical_text = r#"{"args":{"flavor":"apple","slices":8},"capture":true,"id":"7","retries":2,"sent_at_ms":5,"task":"t","task_runtime":1}"#;
        assert_eq!(String::from_utf8_lossy(&canonical(&unsorted)), canonical_text);
        let mut signed = env.clone();
        signed.sign(b"k");
        assert_eq!(signed.sig.as_deref(), Some(CANONICAL_TEST_SIG));
        // The bytes as sent, keys unsorted, still verify.
        let mut sent = unsorted.clone();
        sent["sig"] = json!(CANONICAL_TEST_SIG);
        let received = Envelope::deserialize(&sent).expect("decodes");
        assert_eq!(received.verify(b"k"), Ok(()));
    }

    /// See `the_signature_covers_the_canonical_form_whatever_the_key_order`.
    const CANONICAL_TEST_SIG: &str = "98a82f34a8798da1455bb0f3c7bb560a675c7889a00ae11037ce056364a982cc";

    #[test]
    fn ids_and_task_names_too_long_to_store_are_refused() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for event in [json!({"task_runtime": 1, "task": "t", "id": long, "args": {}}), json!({"task_runtime": 1, "task": long, "id": "1", "args": {}})] {
            match Incoming::classify(&event) {
                Incoming::Bad(e) => {
                    assert!(e.message.contains("longer than 1024 bytes"), "{}", e.message);
                    assert!(e.id.as_ref().is_none_or(|id| id.len() <= MAX_NAME_BYTES) && e.task.as_ref().is_none_or(|t| t.len() <= MAX_NAME_BYTES));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn oversized_payload_reports_size_and_limit() {
        let mut args = Map::new();
        args.insert("blob".into(), Value::String("x".repeat(MAX_ASYNC_PAYLOAD_BYTES)));
        let env = Envelope::new("t", args, true, 2);
        let (size, limit) = env.to_payload().err().unwrap_or_default();
        assert!(size > MAX_ASYNC_PAYLOAD_BYTES);
        assert_eq!(limit, MAX_ASYNC_PAYLOAD_BYTES);
    }
}
