//! [`TaskHandle`]: what calling a task returns, and how to get its result.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, WaitError};
use crate::response::{AsyncResponse, Status};

/// A dispatched call whose value will be a `T`.
///
/// It serializes to `{"id", "task", "capture"}`, so it can travel (to a browser, a queue) and be polled later anywhere the
/// store is reachable.
///
/// ```no_run
/// # use task_runtime::TaskHandle;
/// # async fn demo(handle: TaskHandle<u32>) -> Result<(), Box<dyn std::error::Error>> {
/// println!("sent {}", handle.id());
/// let json = serde_json::to_string(&handle)?;           // hand it on
/// let again: TaskHandle<u32> = serde_json::from_str(&json)?;
/// let value = again.wait_timeout(std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct TaskHandle<T> {
    id: String,
    task: String,
    #[serde(default = "yes")]
    capture: bool,
    /// Sent before, under a caller-chosen id: this send sent nothing.
    #[serde(skip)]
    existing: bool,
    #[serde(skip)]
    _value: PhantomData<fn() -> T>,
}

fn yes() -> bool {
    true
}

impl<T> Clone for TaskHandle<T> {
    fn clone(&self) -> Self {
        Self { existing: self.existing, ..Self::from_parts(self.id.clone(), self.task.clone(), self.capture) }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).field("task", &self.task).field("capture", &self.capture).finish()
    }
}

impl<T> PartialEq for TaskHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.task == other.task && self.capture == other.capture
    }
}

/// The first poll interval of `wait`; it grows by half each poll up to [`MAX_POLL`].
/// A sent call: its id, whether it is captured, and whether it was already
/// there (a caller-chosen id sent before: nothing was sent this time).
#[derive(Debug)]
pub(crate) struct Dispatched {
    pub(crate) id: String,
    pub(crate) capture: bool,
    pub(crate) existing: bool,
}

const FIRST_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_secs(1);

/// The pauses between polls of every `wait`: 10 ms, growing by half each
/// poll to 1 s, never past the wait's `limit`.
#[derive(Debug)]
pub(crate) struct Backoff {
    started: Instant,
    interval: Duration,
    limit: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Backoff { started: Instant::now(), interval: FIRST_POLL, limit }
    }

    /// Start the pauses over from 10 ms (the limit still counts from the start).
    pub(crate) fn restart(&mut self) {
        self.interval = FIRST_POLL;
    }

    /// Time since the wait began.
    pub(crate) fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sleep before the next poll; `Err(waited)` once the limit has passed.
    pub(crate) async fn pause(&mut self) -> Result<(), Duration> {
        if let Some(limit) = self.limit {
            let waited = self.started.elapsed();
            if waited >= limit {
                return Err(waited);
            }
            self.interval = self.interval.min(limit - waited);
        }
        tokio::time::sleep(self.interval).await;
        self.interval = (self.interval * 3 / 2).min(MAX_POLL);
        Ok(())
    }
}

/// What a read of call `id` (of task `task`) means to a waiter: its value,
/// how it ended, or `None` while it may still change.
pub(crate) fn settled<T: DeserializeOwned>(id: &str, task: &str, r: AsyncResponse) -> Option<Result<T, WaitError>> {
    Some(match r.status {
        Status::Complete => serde_json::from_value(r.response.unwrap_or(serde_json::Value::Null))
            .map_err(|source| WaitError::Decode { id: id.to_owned(), task: task.to_owned(), source }),
        Status::Failed => {
            let failure = r.error.unwrap_or_else(|| {
                crate::response::Failure::new(crate::response::FailureKind::Failed, "failed with no error recorded")
            });
            Err(WaitError::Failed { id: id.to_owned(), task: r.task, attempts: r.attempts, failure })
        }
        Status::Cancelled => Err(WaitError::Cancelled { id: id.to_owned(), task: r.task }),
        _ if r.stale => Err(WaitError::Stale { id: id.to_owned(), task: r.task, attempts: r.attempts }),
        _ => return None,
    })
}

impl<T> TaskHandle<T> {
    pub(crate) fn from_parts(id: String, task: String, capture: bool) -> Self {
        Self { id, task, capture, existing: false, _value: PhantomData }
    }

    pub(crate) fn from_dispatched(sent: Dispatched, task: String) -> Self {
        Self { existing: sent.existing, ..Self::from_parts(sent.id, task, sent.capture) }
    }

    /// `true` when the call was sent with an id that existed already
    /// ([`SendOptions::id`](crate::SendOptions::id)): nothing was sent this
    /// time, and this handle follows the first call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use task_runtime::{send, SendOptions};
    /// # #[task_runtime::task(name = "docs.handle.receipt")] async fn receipt(order: u32) -> u32 { order }
    /// let first = send("docs.handle.receipt", serde_json::json!({"order": 7}), SendOptions::default().id("receipt-7")).await?;
    /// let again = send("docs.handle.receipt", serde_json::json!({"order": 7}), SendOptions::default().id("receipt-7")).await?;
    /// assert!(!first.is_existing() && again.is_existing());
    /// assert_eq!(again.wait().await?, serde_json::json!(7));
    /// # Ok(()) }
    /// ```
    pub fn is_existing(&self) -> bool {
        self.existing
    }

    /// Cancel the call if it has not started (see [`crate::cancel`]).
    pub async fn cancel(&self) -> Result<(), crate::error::CancelError> {
        crate::cancel::cancel_as(&self.id, Some(&self.task)).await
    }

    /// A handle for a known id (e.g. one a browser sent back).
    ///
    /// ```
    /// use task_runtime::TaskHandle;
    /// let handle: TaskHandle<u32> = TaskHandle::from_id("0b1d6a3e-...", "pies::count");
    /// assert_eq!((handle.id(), handle.task()), ("0b1d6a3e-...", "pies::count"));
    /// ```
    pub fn from_id(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self::from_parts(id.into(), task.into(), true)
    }

    /// The response id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The task name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The stored response, or `None` when unknown or expired.
    pub async fn response(&self) -> Result<Option<AsyncResponse>, StoreError> {
        crate::poll::read(&self.id, Some(&self.task)).await
    }

    /// The current status, or `None` when unknown or expired.
    ///
    /// ```no_run
    /// # async fn demo(handle: task_runtime::TaskHandle<u32>) -> Result<(), task_runtime::StoreError> {
    /// use task_runtime::Status;
    /// match handle.status().await? {
    ///     Some(Status::Complete) => println!("done"),
    ///     Some(other) => println!("{other}"),
    ///     None => println!("unknown or expired"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Option<Status>, StoreError> {
        Ok(self.response().await?.map(|r| r.status))
    }
}

impl<T: DeserializeOwned> TaskHandle<T> {
    /// Poll, with backoff (10 ms growing to 1 s), until the task is
    /// `complete` (its value) or `failed` ([`WaitError::Failed`]), or reads
    /// as stale ([`WaitError::Stale`]: nobody runs it and no retry comes).
    ///
    /// ```
    /// use task_runtime::task;
    ///
    /// #[task]
    /// async fn add(a: u32, b: u32) -> u32 { a + b }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let handle = add(2, 3).await?;       // dispatched; the body has not run here
    /// assert_eq!(handle.wait().await?, 5); // on the local backend, it runs on tokio
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self) -> Result<T, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<T, WaitError> {
        self.wait_until(Some(limit)).await
    }

    async fn wait_until(&self, limit: Option<Duration>) -> Result<T, WaitError> {
        if !self.capture {
            return Err(WaitError::NotCaptured { id: self.id.clone(), task: self.task.clone() });
        }
        let mut backoff = Backoff::new(limit);
        loop {
            let Some(r) = self.response().await? else {
                return Err(WaitError::NotFound { id: self.id.clone() });
            };
            let last = r.status;
            if let Some(outcome) = settled(&self.id, &self.task, r) {
                return outcome;
            }
            if let Err(waited) = backoff.pause().await {
                return Err(WaitError::Timeout { id: self.id.clone(), task: self.task.clone(), waited, last });
            }
        }
    }
}
