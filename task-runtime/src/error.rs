//! Every error type of the crate. Each one carries the facts at fault (task
//! name, id, size and limit, variable and value), and each failure that
//! reaches Lambda or the store has a stable kind string ([`FailureKind`]).

use std::fmt;
use std::time::Duration;

use crate::response::{Failure, Status};

/// A boxed error that can cross threads: what [`TaskError`] wraps.
///
/// ```
/// let e: task_runtime::BoxError = "anything that is an error".into();
/// assert_eq!(task_runtime::TaskError::retry(e).message(), "anything that is an error");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error a task body returns. It says whether Lambda should try again.
///
/// `?` on any [`std::error::Error`] converts into a *retryable* `TaskError`;
/// use [`TaskError::fail`] for an error that no retry can fix.
///
/// ```
/// use task_runtime::{TaskError, TaskResult};
///
/// fn parse_slices(s: &str) -> TaskResult<u32> {
///     if s.is_empty() {
///         return Err(TaskError::fail("no slice count given")); // permanent
///     }
///     Ok(s.parse::<u32>()?) // a ParseIntError becomes a retryable TaskError
/// }
/// assert!(parse_slices("x").unwrap_err().is_retryable());
/// assert!(!parse_slices("").unwrap_err().is_retryable());
/// ```
pub struct TaskError {
    retryable: bool,
    /// The gap before the next attempt, when the body chose it.
    retry_after: Option<std::time::Duration>,
    source: BoxError,
}

/// The result type of a fallible task: `Result<T, TaskError>`.
///
/// ```
/// use task_runtime::{task, TaskResult};
///
/// #[task]
/// async fn halve(width: String) -> TaskResult<u32> {
///     let width: u32 = width.parse()?; // `?` on any error: retryable
///     Ok(width / 2)
/// }
/// ```
pub type TaskResult<T> = Result<T, TaskError>;

impl TaskError {
    /// A failure worth another attempt (Lambda retries it while attempts remain).
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self { retryable: true, retry_after: None, source: error.into() }
    }

    /// A failure worth another attempt after `delay` exactly (a `429`'s
    /// `Retry-After`, say): the runtime sends the call again itself, as a
    /// delayed call under the same id, instead of Lambda at its own delays.
    /// The attempt counts against the task's `retries` like any other.
    ///
    /// ```
    /// use std::time::Duration;
    /// use task_runtime::TaskError;
    /// let e = TaskError::retry_after(Duration::from_secs(30), "partner says: slow down");
    /// assert!(e.is_retryable());
    /// assert_eq!(e.retry_delay(), Some(Duration::from_secs(30)));
    /// ```
    pub fn retry_after(delay: std::time::Duration, error: impl Into<BoxError>) -> Self {
        Self { retryable: true, retry_after: Some(delay), source: error.into() }
    }

    /// A permanent failure: stored as `failed`, and Lambda is told not to retry.
    pub fn fail(error: impl Into<BoxError>) -> Self {
        Self { retryable: false, retry_after: None, source: error.into() }
    }

    /// The delay [`TaskError::retry_after`] set.
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Whether this error asks for another attempt.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The wrapped error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The message stored in the response: the error and its chain of sources.
    ///
    /// ```
    /// let io = std::io::Error::other("disk full");
    /// let e = task_runtime::TaskError::fail(io);
    /// assert_eq!(e.message(), "disk full");
    /// assert_eq!(e.to_string(), "permanent task error: disk full");
    /// assert!(e.inner().is::<std::io::Error>());
    /// ```
    pub fn message(&self) -> String {
        let mut text = self.source.to_string();
        for cause in causes(&*self.source) {
            text.push_str(": ");
            text.push_str(&cause.to_string());
        }
        text
    }
}

/// The chain of `err`'s sources, nearest first (not `err` itself).
pub(crate) fn causes<'a>(err: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(err.source(), |e| e.source())
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(error: E) -> Self {
        Self::retry(error)
    }
}

/// So that `?` works in functions returning `Box<dyn Error + Send + Sync>`.
impl From<TaskError> for BoxError {
    fn from(e: TaskError) -> Self {
        e.source
    }
}

/// So that `?` works in functions returning `Box<dyn Error>`.
impl From<TaskError> for Box<dyn std::error::Error + 'static> {
    fn from(e: TaskError) -> Self {
        e.source
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("retryable", &self.retryable)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.retryable { "retryable" } else { "permanent" };
        write!(f, "{how} task error: {}", self.message())
    }
}

/// A problem with configuration: an environment variable or a value set in code.
///
/// ```
/// use task_runtime::{Config, ConfigError};
///
/// let env = |k: &str| (k == "TASK_MAX_ATTEMPTS").then(|| "5".to_string());
/// let err = Config::from_lookup(env).unwrap_err();
/// assert!(matches!(err, ConfigError::Invalid { var: "TASK_MAX_ATTEMPTS", .. }));
/// assert!(err.to_string().starts_with("environment variable TASK_MAX_ATTEMPTS=\"5\" is invalid"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable, e.g. `TASK_MAX_ATTEMPTS`.
        var: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The lambda backend needs a function to invoke.
    #[error("the lambda backend needs a function to invoke: set TASK_FUNCTION (or run inside Lambda, where AWS_LAMBDA_FUNCTION_NAME is set)")]
    NoFunction,
    /// [`crate::Config::install`] was called after the runtime was set up.
    #[error("the task runtime is already configured: call Config::install before the first dispatch or poll")]
    AlreadyInstalled,
}

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
    #[error("task `{task}`: the message is {size} bytes, over the {limit}-byte limit of an asynchronous Lambda invoke; nothing was sent")]
    PayloadTooLarge {
        /// The task name.
        task: String,
        /// The encoded size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
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

/// Two tasks share one name, so the worker cannot start.
///
/// ```
/// use task_runtime::registry::{ArgsError, Registry, TaskDef, TaskFuture, TaskSpec};
///
/// fn call(_: serde_json::Map<String, serde_json::Value>) -> Result<TaskFuture, ArgsError> {
///     Ok(Box::pin(async { Ok(serde_json::Value::Null) }))
/// }
/// const SPEC: TaskSpec = TaskSpec { name: "send_mail", function: None, capture_response: true, retries: None, timeout_ms: None, retry: task_runtime::policy::RetryPolicy::LAMBDA, limits: task_runtime::policy::Limits::NONE };
/// static A: TaskDef = TaskDef { spec: SPEC, rust_path: "a::send_mail", location: "src/a.rs:3", call };
/// static B: TaskDef = TaskDef { spec: SPEC, rust_path: "b::send_mail", location: "src/b.rs:9", call };
///
/// let err = Registry::from_defs([&A, &B]).unwrap_err();
/// assert_eq!((err.first.as_str(), err.second.as_str()), ("a::send_mail", "b::send_mail"));
/// assert!(err.to_string().contains("src/b.rs:9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task name `{name}` is registered twice: by `{first}` ({first_location}) and by `{second}` ({second_location}); give one of them #[task(name = \"...\")]")]
pub struct RegistryError {
    /// The shared task name.
    pub name: String,
    /// The Rust path of the first function.
    pub first: String,
    /// Where the first function is defined.
    pub first_location: String,
    /// The Rust path of the second function.
    pub second: String,
    /// Where the second function is defined.
    pub second_location: String,
}

/// The response store (DynamoDB or memory) could not do what was asked.
///
/// ```
/// use task_runtime::StoreError;
///
/// let e = StoreError::Corrupt { id: "42".into(), attribute: "attempts", problem: "is not a number".into() };
/// assert_eq!(e.to_string(), "stored response `42` is malformed: attribute `attempts` is not a number");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No store is configured, so responses are not captured.
    #[error("no response store is configured: set TASK_RESPONSE_TABLE to capture responses")]
    NotConfigured,
    /// The store's service answered with an error.
    #[error("response store: {operation} on `{table}` failed: {message}")]
    Backend {
        /// `put_pending`, `begin`, `finish`, `get`, `create_table`.
        operation: &'static str,
        /// The table name (`memory` for the in-memory store).
        table: String,
        /// What the service said.
        message: String,
    },
    /// A stored item does not have the shape this crate writes.
    #[error("stored response `{id}` is malformed: attribute `{attribute}` {problem}")]
    Corrupt {
        /// The response id.
        id: String,
        /// The attribute at fault.
        attribute: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Configuration is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Waiting for a task's result did not produce a value.
///
/// ```no_run
/// use std::time::Duration;
/// use task_runtime::{TaskHandle, WaitError};
///
/// # async fn demo(handle: TaskHandle<String>) {
/// match handle.wait_timeout(Duration::from_secs(30)).await {
///     Ok(value) => println!("{value}"),
///     Err(WaitError::Failed { failure, attempts, .. }) => eprintln!("gave up after {attempts}: {failure}"),
///     Err(WaitError::Timeout { last, .. }) => eprintln!("still {last}; poll again later"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The task ended `failed`.
    #[error("task `{task}` (id {id}) failed after {attempts} attempt(s): {failure}")]
    Failed {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
        /// How many attempts ran.
        attempts: u32,
        /// The kind and message that were stored.
        failure: Failure,
    },
    /// No response exists for this id: unknown, or expired past its TTL.
    #[error("no response for id {id}: it is unknown or has expired")]
    NotFound {
        /// The response id.
        id: String,
    },
    /// The task was sent with `capture_response = false`, so there is nothing to wait for.
    #[error("task `{task}` (id {id}) was sent with capture_response = false: there is no response to wait for")]
    NotCaptured {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
    },
    /// `wait_timeout` ran out.
    #[error("task `{task}` (id {id}) was still {last} after {waited:?}")]
    Timeout {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
        /// How long we waited.
        waited: Duration,
        /// The last status seen.
        last: Status,
    },
    /// The call has not ended and nothing will run it (see
    /// [`AsyncResponse::stale`](crate::AsyncResponse::stale)): its last
    /// allowed attempt died, or Lambda's life for its event is over, so
    /// waiting longer would not change it.
    #[error(
        "task `{task}` (id {id}) is stale after {attempts} attempt(s): nothing will run it again (its last allowed \
         attempt stopped renewing its lease, or Lambda's life for its event is over) and no failure record ended it; \
         give the function a failure destination so that Lambda's records end such calls as `failed`"
    )]
    Stale {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
        /// Attempts started.
        attempts: u32,
    },
    /// A step of a chain did not complete, so the chain stopped there.
    #[error("chain {chain} stopped at step {step}: {source}")]
    ChainStep {
        /// The chain's id (its first call's).
        chain: String,
        /// The step, from 0 (the first call).
        step: u32,
        /// How that step ended.
        source: Box<WaitError>,
    },
    /// `GroupHandle::wait_timeout` ran out before every child ended.
    #[error("group `{id}`: {ended} of {total} children had ended after {waited:?}")]
    GroupTimeout {
        /// The group's id.
        id: String,
        /// How long we waited.
        waited: Duration,
        /// Children ended by then.
        ended: u32,
        /// Children in the group.
        total: u32,
    },
    /// The call was cancelled before it ran.
    #[error("task `{task}` (id {id}) was cancelled before it ran")]
    Cancelled {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
    },
    /// The stored response is not of the handle's type.
    #[error("task `{task}` (id {id}): the stored response does not decode as the handle's type: {source}")]
    Decode {
        /// The response id.
        id: String,
        /// The task name.
        task: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `errorType` values the worker reports to Lambda. Stable: alarms and
/// on-failure consumers can match on them.
///
/// ```
/// use task_runtime::error_type;
/// let is_ours = |error_type: &str| {
///     [error_type::RETRY, error_type::FAILED, error_type::TIMEOUT, error_type::STORE, error_type::BUSY, error_type::REFUSED]
///         .contains(&error_type)
/// };
/// assert!(is_ours("TaskTimeout"));
/// ```
pub mod error_type {
    /// A retryable error with attempts left: Lambda retries.
    pub const RETRY: &str = "TaskRetry";
    /// A retryable error on the last attempt: reaches the DLQ / on-failure destination.
    pub const FAILED: &str = "TaskFailed";
    /// The body ran past the invocation's deadline.
    pub const TIMEOUT: &str = "TaskTimeout";
    /// The response store could not be written: Lambda retries and the retry takes over.
    pub const STORE: &str = "TaskStoreError";
    /// A delivery of this same event held the task until this invocation's
    /// deadline (a crashed attempt's lease that had not lapsed yet, or a
    /// concurrent twin still running): Lambda retries, and the retry finds
    /// the task finished or free.
    pub const BUSY: &str = "TaskBusy";
    /// The message's signature did not verify and no `pending` item of the
    /// same message could be ended `refused`: Lambda retries, then sends the
    /// event to the failure destination (visible there and in metrics).
    pub const REFUSED: &str = "TaskRefused";
}

/// Any error the runtime can fail to start with.
///
/// ```
/// fn start() -> Result<task_runtime::worker::Worker, task_runtime::Error> {
///     task_runtime::worker::Worker::from_runtime() // bad configuration, or two tasks with one name
/// }
/// # let _ = start;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two tasks share a name.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}
