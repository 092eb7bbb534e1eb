//! Every error type of the crate. Each one carries the facts at fault (task
//! name, id, size and limit, variable and value), and each failure that
//! reaches Lambda or the store has a stable kind string ([`FailureKind`]).
//!
//! By where they arise: `task` ([`TaskError`], a body's own), `dispatch`
//! (sending and cancelling), `store` (the store, and waiting for an end),
//! `startup` (configuration, the registry); here, the `errorType` values.

mod dispatch;
mod payload;
mod startup;
mod store;
mod task;

pub use dispatch::{CancelError, DispatchError};
pub use payload::PayloadError;
pub use startup::{ConfigError, Error, RegistryError};
pub use store::{StoreError, WaitError};
pub(crate) use task::causes;
pub use task::{TaskError, TaskResult};

/// A boxed error that can cross threads: what [`TaskError`] wraps.
///
/// ```
/// let e: task_runtime::BoxError = "anything that is an error".into();
/// assert_eq!(task_runtime::TaskError::retry(e).message(), "anything that is an error");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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