//! Reading a call's outcome: [`get_async_response`], over the runtime's store.

use crate::error::StoreError;
use crate::response::AsyncResponse;

/// Read a stored response: `None` when the id is unknown or expired.
///
/// ```no_run
/// # async fn demo() -> Result<(), task_runtime::StoreError> {
/// if let Some(r) = task_runtime::get_async_response("0b1d...").await? {
///     println!("{} after {} attempt(s)", r.status, r.attempts);
/// }
/// # Ok(()) }
/// ```
pub async fn get_async_response(id: &str) -> Result<Option<AsyncResponse>, StoreError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().ok_or(StoreError::NotConfigured)?;
    store.get(id).await
}
