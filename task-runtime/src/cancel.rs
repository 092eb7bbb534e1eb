//! Cancelling a call that has not run: [`cancel`].

use crate::error::{CancelError, StoreError};
use crate::response::Status;
use crate::store::{Cancel, PendingItem, ResponseStore};
use crate::time::now_ms;

/// Cancel call `id` if it has not started: a `scheduled` or `pending` call
/// becomes `cancelled`, a worker that receives it later does not run it,
/// and a scheduled call's schedule is deleted. A call sent with no pending
/// item (the default for a call with no id, delay or debounce) that has
/// not begun is recorded as `cancelled` (two writes, on this path alone). A call that is running or
/// has ended is [`CancelError::NotCancellable`], naming its status.
///
/// ```
/// use std::time::Duration;
/// use task_runtime::{cancel, task, CancelError, Status, WaitError};
///
/// #[task(name = "docs.cancel.remind")]
/// async fn remind(who: String) -> String { format!("hello {who}") }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = remind::after(Duration::from_secs(3600), "ann".into()).await?;
/// assert_eq!(handle.status().await?, Some(Status::Scheduled));
/// cancel(handle.id()).await?;
/// assert!(matches!(handle.wait().await, Err(WaitError::Cancelled { .. })));
/// assert!(matches!(cancel(handle.id()).await, Err(CancelError::NotCancellable { status: Status::Cancelled, .. })));
/// # Ok(()) }
/// ```
pub async fn cancel(id: &str) -> Result<(), CancelError> {
    cancel_as(id, None).await
}

/// [`cancel`] of a call of `task` (recorded if the call has no item yet).
pub(crate) async fn cancel_as(id: &str, task: Option<&str>) -> Result<(), CancelError> {
    let rt = crate::runtime::runtime().map_err(StoreError::from)?;
    let store = rt.store().ok_or(StoreError::NotConfigured)?;
    let now = now_ms();
    // A dated id with no item: sent with no pending item, and not begun.
    let unbegun = || {
        let sent = crate::store::not_yet_begun(id, now, rt.config.event_life, rt.config.response_ttl)?.created_at;
        let ttl = crate::store::ttl_after(crate::store::give_up_ms(sent, None), rt.config.response_ttl);
        Some(PendingItem { id: id.to_owned(), task: task.unwrap_or_default().to_owned(), now_ms: sent, ttl, run_at_ms: None, digest: None, parent: None })
    };
    match cancel_call(store.as_ref(), id, now, unbegun).await? {
        Cancel::Cancelled { was } => {
            if was == Status::Scheduled
                && let Err(e) = rt.backend.unschedule(id).await
            {
                // The call is cancelled all the same: when the schedule fires, the worker runs nothing.
                tracing::warn!(%id, "cancelled, but its schedule could not be deleted: {e}");
            }
            Ok(())
        }
        Cancel::NotCancellable { status } => Err(CancelError::NotCancellable { id: id.to_owned(), status }),
        Cancel::NotFound => {
            // An item made before ttls counted from a delay's due time may
            // have expired while its schedule waits: take the schedule down
            // all the same (nothing to delete is fine).
            if let Err(e) = rt.backend.unschedule(id).await {
                tracing::debug!(%id, "no call, and no schedule deleted: {e}");
            }
            Err(CancelError::NotFound { id: id.to_owned() })
        }
    }
}

/// `store.cancel(id)`; when the call has no item and `unbegun` gives the
/// one it would have (a call sent with no pending item that has not
/// begun), that item is written first and cancelled, so that the worker's
/// `begin` finds it cancelled and runs nothing. A `begin` that comes
/// between the two writes wins: the cancel then finds the call running.
pub(crate) async fn cancel_call(
    store: &dyn ResponseStore,
    id: &str,
    now: u64,
    unbegun: impl FnOnce() -> Option<PendingItem>,
) -> Result<Cancel, StoreError> {
    match store.cancel(id, now).await? {
        Cancel::NotFound => match unbegun() {
            Some(item) => {
                store.put_pending(item).await?;
                store.cancel(id, now).await
            }
            None => Ok(Cancel::NotFound),
        },
        other => Ok(other),
    }
}
