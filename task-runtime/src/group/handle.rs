//! A sent group: its status, its children's outcomes, cancelling it, and
//! the chord's handle that waits for its callback.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::envelope::{GroupRef, callback_id, child_id};
use crate::error::{CancelError, StoreError, WaitError};
use crate::handle::{Backoff, TaskHandle};
use crate::response::{Failure, FailureKind, Status};
use crate::store::group::GroupState;
use crate::store::{Cancel, PendingItem, ResponseStore};
use crate::time::now_ms;

use super::send::SEND_CONCURRENCY;

/// A group's progress: how many of its children have ended, and how.
///
/// ```
/// # use task_runtime::GroupStatus;
/// fn line(s: &GroupStatus) -> String {
///     format!("{} of {} ended ({} failed)", s.ended, s.total, s.failed)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group's id.
    pub id: String,
    /// Children.
    pub total: u32,
    /// Children that have ended, whatever their outcome.
    pub ended: u32,
    /// Of those, `complete`.
    pub complete: u32,
    /// `failed`.
    pub failed: u32,
    /// `cancelled`.
    pub cancelled: u32,
    /// The callback's id, when the group has one.
    pub callback: Option<String>,
    /// The callback's status, once it is sent (or cancelled).
    pub callback_status: Option<Status>,
}

impl GroupStatus {
    /// Whether every child has ended.
    pub fn all_ended(&self) -> bool {
        self.ended >= self.total
    }

    pub(super) fn from_state(id: &str, s: GroupState, callback_status: Option<Status>) -> Self {
        GroupStatus {
            id: id.to_owned(),
            total: s.item.total,
            ended: s.ended,
            complete: s.complete,
            failed: s.failed,
            cancelled: s.cancelled,
            callback: s.item.callback.as_ref().map(|_| callback_id(id)),
            callback_status,
        }
    }
}

/// The store of the process's runtime.
pub(super) fn store() -> Result<Arc<dyn ResponseStore>, StoreError> {
    crate::runtime::runtime()?.store().ok_or(StoreError::NotConfigured)
}

/// A group's progress; `None` when unknown or expired.
pub async fn group_status(id: &str) -> Result<Option<GroupStatus>, StoreError> {
    let store = store()?;
    let Some(state) = store.group(id).await? else { return Ok(None) };
    let callback_status = match &state.item.callback {
        Some(_) => store.get(&callback_id(id)).await?.map(|r| r.status),
        None => None,
    };
    Ok(Some(GroupStatus::from_state(id, state, callback_status)))
}

/// A sent group whose children's values are `T`s.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use task_runtime::GroupHandle;
/// let g: GroupHandle<u64> = GroupHandle::from_id("nightly-2026-11-30");
/// let outcomes = g.wait_timeout(std::time::Duration::from_secs(60)).await?;
/// println!("{} ok", outcomes.iter().filter(|o| o.is_ok()).count());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GroupHandle<T> {
    pub(super) id: String,
    pub(super) existing: bool,
    pub(super) _value: PhantomData<fn() -> T>,
}

impl<T> Clone for GroupHandle<T> {
    fn clone(&self) -> Self {
        GroupHandle { id: self.id.clone(), existing: self.existing, _value: PhantomData }
    }
}

impl<T> GroupHandle<T> {
    /// A handle for a known group id.
    pub fn from_id(id: impl Into<String>) -> Self {
        GroupHandle { id: id.into(), existing: false, _value: PhantomData }
    }

    /// The group's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `true` when a group of this id existed before this send: only the
    /// children it lacked were sent.
    pub fn is_existing(&self) -> bool {
        self.existing
    }

    /// The ids of the children, in call order, read from the group's
    /// record (one read): the caller need not know the group's size.
    /// `None` when the group is unknown or expired.
    ///
    /// ```
    /// use task_runtime::{task, GroupHandle};
    ///
    /// #[task]
    /// async fn double(n: u32) -> u32 { n * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sent = double::map([1, 2, 3]).send().await?;
    /// // Elsewhere, with only the group's id:
    /// let ids = GroupHandle::<u32>::from_id(sent.id()).child_ids().await?.expect("recorded");
    /// assert_eq!(ids.len(), 3);
    /// sent.wait().await?; // a child's item is its worker's: there once it has begun
    /// assert_eq!(task_runtime::get_async_response(&ids[2]).await?.map(|r| r.task), Some(double::NAME.to_owned()));
    /// # Ok(()) }
    /// ```
    pub async fn child_ids(&self) -> Result<Option<Vec<String>>, StoreError> {
        Ok(store()?.group(&self.id).await?.map(|state| self.child_ids_of(state.item.total)))
    }

    /// The ids of the children of a group of `total`, in call order,
    /// without a read.
    ///
    /// ```
    /// # use task_runtime::GroupHandle;
    /// let ids = GroupHandle::<u32>::from_id("nightly").child_ids_of(2);
    /// assert_eq!(ids, ["nightly.0", "nightly.1"]);
    /// ```
    pub fn child_ids_of(&self, total: u32) -> Vec<String> {
        (0..total).map(|i| child_id(&self.id, i)).collect()
    }

    /// The group's progress; `None` when unknown or expired.
    pub async fn status(&self) -> Result<Option<GroupStatus>, StoreError> {
        group_status(&self.id).await
    }

    /// Cancel every child that has not begun, and the callback (it will not
    /// run, even when the children end). Returns how many children were
    /// cancelled. Children already running or ended are left as they are.
    pub async fn cancel(&self) -> Result<u32, CancelError> {
        let rt = crate::runtime::runtime().map_err(StoreError::from)?;
        let store = rt.store().ok_or(StoreError::NotConfigured)?;
        let Some(state) = store.group(&self.id).await? else { return Err(CancelError::NotFound { id: self.id.clone() }) };
        let now = now_ms();
        if let Some(cb) = &state.item.callback {
            // First the callback, so that the last child's cancel does not send it.
            let env: crate::envelope::Envelope = serde_json::from_str(&cb.message)
                .map_err(|e| StoreError::Corrupt { id: crate::store::group::group_key(&self.id), attribute: "callback", problem: format!("does not decode: {e}") })?;
            let item = PendingItem { id: callback_id(&self.id), task: env.task, now_ms: now, ttl: state.item.ttl, run_at_ms: None, digest: None, parent: env.parent };
            store.put_pending(item).await?;
            store.cancel(&callback_id(&self.id), now).await?;
        }
        let forwarder = crate::runtime::forwarder();
        let ids = self.child_ids_of(state.item.total);
        // The last first: a cancelled child's turn passes to the one after
        // it, which is then cancelled already, so no waiting child is sent.
        let cancelled = futures::stream::iter(ids.iter().enumerate().rev())
            .map(|(index, id)| {
                let (store, forwarder, rt) = (store.clone(), forwarder.clone(), rt);
                let child = GroupRef { id: self.id.clone(), index: index as u32, total: state.item.total, shards: state.item.shards, window: state.item.window };
                // Only the children sent at once can have a schedule; the others waited in the store.
                let sent_at_once = state.item.window.is_none_or(|w| (index as u32) < w);
                // A child with no item has not begun (sent with no pending
                // item, or waiting for its turn): recorded, then cancelled.
                let ttl = state.item.ttl;
                let unbegun = move || Some(PendingItem { id: id.clone(), task: String::new(), now_ms: now, ttl, run_at_ms: None, digest: None, parent: None });
                async move {
                    match crate::cancel::cancel_call(store.as_ref(), id, now_ms(), unbegun).await? {
                        Cancel::Cancelled { was } => {
                            if was == Status::Scheduled
                                && sent_at_once
                                && let Err(e) = rt.backend.unschedule(id).await
                            {
                                tracing::warn!(%id, "cancelled, but its schedule could not be deleted: {e}");
                            }
                            crate::follow_up::child_ended(store.as_ref(), Some(&forwarder), &child, Status::Cancelled, rt.config.response_ttl)
                                .await
                                .map_err(|e| StoreError::Backend { operation: "count_ended", table: "the response store".into(), message: e.to_string() })?;
                            Ok::<u32, StoreError>(1)
                        }
                        Cancel::NotCancellable { .. } | Cancel::NotFound => Ok(0),
                    }
                }
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .try_fold(0u32, |sum, n| async move { Ok(sum + n) })
            .await?;
        Ok(cancelled)
    }
}

/// How many reads of a group's outcomes run at once.
pub(super) const READS_AT_ONCE: usize = 8;

impl<T: DeserializeOwned> GroupHandle<T> {
    /// Poll (10 ms growing to 1 s) until every child has ended; then each
    /// child's outcome, in call order: its value, or its failure (a
    /// cancelled child is kind `cancelled`).
    pub async fn wait(&self) -> Result<Vec<Result<T, Failure>>, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<Vec<Result<T, Failure>>, WaitError> {
        self.wait_until(Some(limit)).await
    }

    pub(super) async fn wait_until(&self, limit: Option<Duration>) -> Result<Vec<Result<T, Failure>>, WaitError> {
        let state = self.ended(limit).await?;
        let store = store()?;
        let rt = crate::runtime::runtime().map_err(StoreError::from)?;
        let ids = self.child_ids_of(state.item.total);
        // 100 ids a read (BatchGetItem's most), 8 reads at once, in order;
        // a value kept in S3 read back with its child.
        let reads: Vec<Vec<Option<crate::response::AsyncResponse>>> =
            futures::stream::iter(ids.chunks(100).map(<[String]>::to_vec))
                .map(|chunk| {
                    let store = store.clone();
                    async move {
                        let mut read = store.get_many(&chunk).await?;
                        for (id, r) in chunk.iter().zip(read.iter_mut()) {
                            if let Some(r) = r {
                                crate::poll::resolve(rt, id, r).await?;
                            }
                        }
                        Ok::<_, StoreError>(read)
                    }
                })
                .buffered(READS_AT_ONCE)
                .try_collect()
                .await?;
        ids.iter().zip(reads.into_iter().flatten()).map(|(id, r)| child_outcome(id, r)).collect()
    }
}

/// One ended child's outcome.
pub(super) fn child_outcome<T: DeserializeOwned>(id: &str, r: Option<crate::response::AsyncResponse>) -> Result<Result<T, Failure>, WaitError> {
    let Some(r) = r else { return Err(WaitError::NotFound { id: id.to_owned() }) };
    Ok(match r.status {
        Status::Complete => Ok(serde_json::from_value(r.response.unwrap_or(Value::Null))
            .map_err(|source| WaitError::Decode { id: id.to_owned(), task: r.task.clone(), source })?),
        Status::Cancelled => Err(Failure::new(FailureKind::Cancelled, "cancelled before it ran")),
        _ => Err(r.error.unwrap_or_else(|| Failure::new(FailureKind::Failed, format!("{} with no error recorded", r.status)))),
    })
}

/// A sent chord: its group, and its callback's result.
#[derive(Debug)]
pub struct ChordHandle<T, U> {
    pub(super) group: GroupHandle<T>,
    pub(super) callback: TaskHandle<U>,
}

impl<T, U> ChordHandle<T, U> {
    /// The group.
    pub fn group(&self) -> &GroupHandle<T> {
        &self.group
    }

    /// The callback's id.
    pub fn callback_id(&self) -> &str {
        self.callback.id()
    }

    /// Cancel the children that have not begun, and the callback.
    pub async fn cancel(&self) -> Result<u32, CancelError> {
        self.group.cancel().await
    }
}

impl<T, U: DeserializeOwned> ChordHandle<T, U> {
    /// Wait until the callback has run, and return its value.
    ///
    /// When the callback never runs, `wait` says why:
    /// - the group was cancelled (or the callback was, with
    ///   [`cancel`](Self::cancel)): [`WaitError::Cancelled`], naming the
    ///   callback;
    /// - [`only_if_all_complete`](super::Chord::only_if_all_complete) and a child
    ///   did not complete: [`WaitError::Failed`], whose failure names the
    ///   children that did not;
    /// - a child has not ended (still running, past its timeout, waiting
    ///   for Lambda's next retry): `wait` goes on polling. A child whose
    ///   last attempt died ends `failed` when Lambda's failure record reaches
    ///   the worker (the on-failure destination `tasks template` sets up);
    ///   with no such record it never ends, and `wait` never returns. So
    ///   prefer [`wait_timeout`](Self::wait_timeout), which gives up with
    ///   [`WaitError::GroupTimeout`], saying how many children had ended.
    pub async fn wait(&self) -> Result<U, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<U, WaitError> {
        self.wait_until(Some(limit)).await
    }

    pub(super) async fn wait_until(&self, limit: Option<Duration>) -> Result<U, WaitError> {
        let mut backoff = Backoff::new(limit);
        let left = |backoff: &Backoff| limit.map(|l| l.saturating_sub(backoff.waited()));
        // The callback has no item until every child has ended.
        self.group.ended(left(&backoff)).await?;
        let store = store()?;
        while store.get(self.callback.id()).await?.is_none() {
            if let Err(waited) = backoff.pause().await {
                return Err(WaitError::Timeout { id: self.callback.id().to_owned(), task: "the callback".into(), waited, last: Status::Pending });
            }
        }
        match left(&backoff) {
            Some(l) => self.callback.wait_timeout(l).await,
            None => self.callback.wait().await,
        }
    }
}

impl<T> GroupHandle<T> {
    /// Poll until every child has ended; the group as it is then.
    pub(super) async fn ended(&self, limit: Option<Duration>) -> Result<GroupState, WaitError> {
        let store = store()?;
        let mut backoff = Backoff::new(limit);
        loop {
            let Some(state) = store.group(&self.id).await? else { return Err(WaitError::NotFound { id: self.id.clone() }) };
            if state.all_ended() {
                return Ok(state);
            }
            if let Err(waited) = backoff.pause().await {
                return Err(WaitError::GroupTimeout { id: self.id.clone(), waited, ended: state.ended, total: state.item.total });
            }
        }
    }
}
