//! The error a task body returns, and whether it asks for a retry.

use std::fmt;

use super::BoxError;

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