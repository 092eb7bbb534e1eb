//! The errors of the response store, and of waiting for a call's end.

use std::time::Duration;

use super::ConfigError;
use crate::response::{Failure, Status};

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
    /// A result or failure message kept in S3 could not be read back
    /// (gone, changed, over `TASK_PAYLOAD_MAX`, or S3 refused).
    #[error("response `{id}`: {source}")]
    Payload {
        /// The response id.
        id: String,
        /// What is wrong, naming the object.
        #[source]
        source: Box<super::PayloadError>,
    },
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