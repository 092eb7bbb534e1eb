//! The errors of sending a call and of cancelling one.

use super::{ConfigError, RegistryError, StoreError};
use crate::response::Status;

/// Calling a `#[task]` function (or [`crate::send`]) failed. Nothing was
/// sent, except for [`DispatchError::Store`], which says so.
///
/// ```no_run
/// use task_runtime::{send, DispatchError, SendOptions};
///
/// # async fn demo() {
/// match send("pies::make_pie", serde_json::json!({"flavor": "x".repeat(2 << 20)}), SendOptions::default()).await {
///     Err(DispatchError::PayloadTooLarge { size, limit, .. }) => eprintln!("{size} bytes is over {limit}: store it in S3 and pass the key"),
///     Err(DispatchError::Invoke { status: Some(404), function, .. }) => eprintln!("no function `{function}`"),
///     Err(e @ DispatchError::Store { .. }) => eprintln!("sent, but cannot be followed: {e}"),
///     Err(e) => eprintln!("{e}"),
///     Ok(handle) => println!("sent {}", handle.id()),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// An argument could not be serialized to JSON.
    #[error("task `{task}`: argument `{arg}` cannot be serialized to JSON: {source}")]
    SerializeArg {
        /// The task name.
        task: String,
        /// The parameter name.
        arg: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// `send` was given args that are not a JSON object.
    #[error("task `{task}`: args must be a JSON object keyed by parameter name, got {found}")]
    ArgsNotObject {
        /// The task name.
        task: String,
        /// The JSON type that was given.
        found: &'static str,
    },
    /// The message is larger than Lambda accepts for an asynchronous invoke.
    #[error("task `{task}`: the message is {size} bytes, over the {limit}-byte limit of an asynchronous Lambda invoke; nothing was sent (set TASK_PAYLOAD_BUCKET to send large arguments through S3)")]
    PayloadTooLarge {
        /// The task name.
        task: String,
        /// The encoded size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The arguments were too large to send, and could not be put in the
    /// payload bucket (`TASK_PAYLOAD_BUCKET`); nothing was sent.
    #[error("task `{task}`: the arguments are too large to send, and {source}; nothing was sent")]
    Payload {
        /// The task name.
        task: String,
        /// What S3 said, naming the object.
        #[source]
        source: Box<super::PayloadError>,
    },
    /// Lambda (or the emulator) refused the invoke.
    #[error("task `{task}`: invoking `{function}` failed{}: {message}", status.map(|s| format!(" (HTTP {s}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())).unwrap_or_default())]
    Invoke {
        /// The task name.
        task: String,
        /// The function name or ARN that was invoked.
        function: String,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The AWS error code, e.g. `ResourceNotFoundException`.
        code: Option<String>,
        /// What AWS said.
        message: String,
    },
    /// The message was sent (the task will run), but its pending record
    /// could not be written, so the call cannot be followed until a worker
    /// writes it. Do not simply send again: that would run the task twice.
    #[error("task `{task}` (id {id}) was sent, but its pending record could not be written: {source}")]
    Store {
        /// The task name.
        task: String,
        /// The response id.
        id: String,
        /// The store's error.
        source: StoreError,
    },
    /// A caller-chosen id is not usable.
    #[error("task `{task}`: the id {id:?} {problem}")]
    BadId {
        /// The task name.
        task: String,
        /// The id that was given.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A call holds the id already, and it is another call: another task's,
    /// or this task's with other arguments. Nothing was sent; the call that
    /// holds the id is left as it is.
    #[error("task `{task}`: the id {id:?} is held by {holder}; nothing was sent (send it with another id, or with the arguments it was first sent with)")]
    IdTaken {
        /// The task name.
        task: String,
        /// The id that was given.
        id: String,
        /// The call that holds it: its task, its status, and what differs.
        holder: String,
    },
    /// An idempotency key that cannot be used: not found in the arguments,
    /// null, a window longer than the store keeps the call, or no store.
    #[error("task `{task}`: idempotency key {problem}; nothing was sent")]
    BadIdempotencyKey {
        /// The task name.
        task: String,
        /// What is wrong, naming the key or the setting at fault.
        problem: String,
    },
    /// A caller-chosen id needs the response store: it is where the call is
    /// recorded before it is sent, so that a second send finds it.
    #[error("task `{task}`: an id chosen by the caller needs a response store (set TASK_RESPONSE_TABLE) and capture_response on")]
    IdNeedsStore {
        /// The task name.
        task: String,
    },
    /// A debounced call needs the response store: it is where the latest
    /// call sent under the key is noted, and read when each call is due.
    #[error("task `{task}`: debounce key `{key}` needs a response store (set TASK_RESPONSE_TABLE) and capture_response on")]
    DebounceNeedsStore {
        /// The task name.
        task: String,
        /// The debounce key.
        key: String,
    },
    /// A delay that Lambda cannot honour.
    #[error("task `{task}`: {problem}")]
    BadDelay {
        /// The task name.
        task: String,
        /// What is wrong with it.
        problem: String,
    },
    /// EventBridge Scheduler (or the emulator) refused the one-time schedule
    /// of a delayed task.
    #[error("task `{task}` (id {id}): scheduling it failed: {message}")]
    Schedule {
        /// The task name.
        task: String,
        /// The response id.
        id: String,
        /// What the service said.
        message: String,
    },
    /// A group that cannot be sent as it is; nothing was sent.
    #[error("group `{group}`: {problem}; nothing was sent")]
    BadGroup {
        /// The group's id.
        group: String,
        /// What is wrong, naming the call at fault.
        problem: String,
    },
    /// The store refused one of a group's writes (its record, or a child
    /// that waits for its turn); no child was sent by that write. Send the
    /// group again under the same id to finish what it started.
    #[error("group `{group}`: the store refused a write ({what}): {source}")]
    GroupStore {
        /// The group's id.
        group: String,
        /// Which write.
        what: String,
        /// The store's error.
        source: StoreError,
    },
    /// A chain that cannot be sent as it is; nothing was sent.
    #[error("chain starting with task `{task}`: {problem}; nothing was sent")]
    BadChain {
        /// The first call's task.
        task: String,
        /// What is wrong.
        problem: String,
    },
    /// A child of a group could not be sent. The children before it may
    /// have been: send the group again under the same id
    /// ([`SendOptions::id`](crate::SendOptions::id)) to send the rest
    /// (the ones sent already are not sent twice).
    #[error("group `{group}`: child {index} could not be sent: {source}")]
    GroupChild {
        /// The group's id.
        group: String,
        /// The child's place in the group, from 0.
        index: u32,
        /// Why.
        source: Box<DispatchError>,
    },
    /// Configuration is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The local backend could not build its registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A call could not be cancelled.
///
/// ```no_run
/// use task_runtime::{cancel, CancelError, Status};
///
/// # async fn demo() {
/// match cancel("0b1d...").await {
///     Ok(()) => println!("cancelled: it will never run"),
///     Err(CancelError::NotCancellable { status: Status::Complete, .. }) => println!("too late: it already ran"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// The call has started or ended: only `scheduled` and `pending` calls can be cancelled.
    #[error("call {id} is {status}: only a scheduled or pending call can be cancelled")]
    NotCancellable {
        /// The response id.
        id: String,
        /// Its status.
        status: Status,
    },
    /// No such call: unknown, or expired past its TTL.
    #[error("no call {id}: it is unknown or has expired")]
    NotFound {
        /// The response id.
        id: String,
    },
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}