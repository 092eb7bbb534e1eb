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

/// The id of the latest run of the schedule of task `task` (see
/// [`crate::schedules`]), or `None` when it has not run (or its note expired).
///
/// ```no_run
/// # async fn demo() -> Result<(), task_runtime::StoreError> {
/// if let Some(id) = task_runtime::latest_run("reports.daily").await? {
///     println!("{:?}", task_runtime::get_async_response(&id).await?.map(|r| r.status));
/// }
/// # Ok(()) }
/// ```
pub async fn latest_run(task: &str) -> Result<Option<String>, StoreError> {
    let note = get_async_response(&crate::store::latest_run_id(task)).await?;
    Ok(note.and_then(|r| r.response).and_then(|v| v.as_str().map(str::to_owned)))
}
