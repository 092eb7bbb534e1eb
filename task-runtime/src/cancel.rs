//! Cancelling a call that has not run: [`cancel`].

use crate::error::{CancelError, StoreError};
use crate::response::Status;
use crate::store::Cancel;
use crate::time::now_ms;

/// Cancel call `id` if it has not started: a `scheduled` or `pending` call
/// becomes `cancelled`, a worker that receives it later does not run it,
/// and a scheduled call's schedule is deleted. A call that is running or
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
    let rt = crate::runtime::runtime().map_err(StoreError::from)?;
    let store = rt.store().ok_or(StoreError::NotConfigured)?;
    match store.cancel(id, now_ms()).await? {
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
