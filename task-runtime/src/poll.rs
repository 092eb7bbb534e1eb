//! Reading a call's outcome: [`get_async_response`], over the runtime's store.

use crate::error::StoreError;
use crate::response::{AsyncResponse, Status};

/// Read a stored response: `None` when the id is unknown or expired.
///
/// A call that has not ended once Lambda can no longer run it (its event's
/// life, `TASK_EVENT_LIFE_SECS`, is over) reads `stale`: e.g. one whose
/// failure record came without its `requestPayload`, so that nothing could
/// name the call to end it.
///
/// ```no_run
/// # async fn demo() -> Result<(), task_runtime::StoreError> {
/// if let Some(r) = task_runtime::get_async_response("0b1d...").await? {
///     println!("{} after {} attempt(s)", r.status, r.attempts);
/// }
/// # Ok(()) }
/// ```
pub async fn get_async_response(id: &str) -> Result<Option<AsyncResponse>, StoreError> {
    read(id, None).await
}

/// [`get_async_response`], naming `task` where the store does not: a call
/// not begun yet, or cancelled before it began (`crate::cancel`).
pub(crate) async fn read(id: &str, task: Option<&str>) -> Result<Option<AsyncResponse>, StoreError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().ok_or(StoreError::NotConfigured)?;
    let now = crate::time::now_ms();
    let Some(mut r) = store.get(id).await? else {
        return Ok(crate::store::not_yet_begun(id, now, rt.config.event_life, rt.config.response_ttl).map(|r| AsyncResponse { task: task.unwrap_or_default().to_owned(), ..r }));
    };
    if r.task.is_empty()
        && let Some(task) = task
    {
        task.clone_into(&mut r.task);
    }
    r.stale |= given_up(&r, rt.config.event_life, now);
    resolve(rt, id, &mut r).await?;
    Ok(Some(r))
}


/// The calls that call `id` sent (see [`AsyncResponse::parent`]), oldest
/// first (by the millisecond each was recorded), at most `limit`, each as [`get_async_response`] reads it: one
/// level of the tree of calls. On DynamoDB this reads the index
/// [`PARENT_INDEX`](crate::store::dynamodb::PARENT_INDEX), which
/// `tasks create-table` creates.
///
/// ```
/// use task_runtime::{task, TaskResult};
///
/// #[task(name = "docs.tree.leaf")]
/// async fn leaf(n: u32) -> TaskResult<u32> { Ok(n) }
///
/// #[task(name = "docs.tree.fan_out")]
/// async fn fan_out(n: u32) -> TaskResult<u32> {
///     for i in 0..n {
///         leaf(i).await.map_err(task_runtime::TaskError::retry)?;
///     }
///     Ok(n)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = fan_out(3).await?;
/// root.wait().await?;
/// task_runtime::wait_for_local_tasks().await;
/// let children = task_runtime::get_children(root.id(), 100).await?;
/// assert_eq!(children.len(), 3);
/// assert!(children.iter().all(|c| c.response.parent.as_deref() == Some(root.id())));
/// # Ok(()) }
/// ```
pub async fn get_children(id: &str, limit: usize) -> Result<Vec<crate::store::StoredCall>, StoreError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().ok_or(StoreError::NotConfigured)?;
    let mut children = store.children(id, limit).await?;
    let now = crate::time::now_ms();
    for c in &mut children {
        c.response.stale |= given_up(&c.response, rt.config.event_life, now);
        resolve(rt, &c.id, &mut c.response).await?;
    }
    Ok(children)
}

/// `r` (call `id`) with its result or failure message read back from S3,
/// when it was kept there (see [`crate::store::payloads`]).
pub(crate) async fn resolve(rt: &crate::runtime::Runtime, id: &str, r: &mut AsyncResponse) -> Result<(), StoreError> {
    if !crate::store::payloads::Payloads::holds_references(r) {
        return Ok(());
    }
    // Boxed: an S3 read is an SDK future, awaited only for a value kept there.
    crate::aws::boxed(rt.payloads.resolve(r)).await.map_err(|source| StoreError::Payload { id: id.to_owned(), source: Box::new(source) })
}

/// Whether `r` still waits (pending, scheduled, retrying) though its
/// event's life (`event_life` from when it was sent, or due) is over.
fn given_up(r: &AsyncResponse, event_life: std::time::Duration, now_ms: u64) -> bool {
    // A running call is judged by the store, which knows whether its lease is live.
    let waiting = matches!(r.status, Status::Pending | Status::Scheduled | Status::Retrying);
    let life_ms = event_life.as_millis() as u64;
    waiting && crate::store::undeliverable_at(r.created_at, r.run_at, life_ms) < now_ms
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: Status, created_at: u64, run_at: Option<u64>) -> AsyncResponse {
        serde_json::from_value(serde_json::json!({
            "status": status, "response": null, "error": null, "task": "t", "attempts": 1,
            "created_at": created_at, "updated_at": created_at, "run_at": run_at,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_dated_id_with_no_item_reads_pending_then_stale_then_nothing() {
        let (life, ttl) = (std::time::Duration::from_secs(10), std::time::Duration::from_secs(100));
        let sent = 1_796_000_000_000;
        let id = crate::envelope::new_dated_id(sent);
        let at = |ms: u64| crate::store::not_yet_begun(&id, sent + ms, life, ttl);
        let pending = at(0).expect("sent just now");
        assert_eq!((pending.status, pending.stale, pending.attempts, pending.created_at), (Status::Pending, false, 0, sent));
        let last_pending = 10_000 + crate::store::STALE_GRACE_MS;
        assert!(!at(last_pending).expect("still deliverable").stale);
        assert!(at(last_pending + 1).expect("kept as an item would be").stale);
        assert!(at(last_pending + 100_000).expect("the ttl's last ms").stale);
        assert_eq!(at(last_pending + 100_001), None, "expired as an item would have");
        // Any other id with no item is unknown.
        assert_eq!(crate::store::not_yet_begun(&crate::envelope::new_id(), sent, life, ttl), None);
        assert_eq!(crate::store::not_yet_begun("order-7", sent, life, ttl), None);
    }

    #[test]
    fn a_call_still_open_after_its_event_s_life_is_given_up() {
        let life = std::time::Duration::from_secs(10);
        let after = |ms: u64| 1_000 + ms + crate::store::STALE_GRACE_MS;
        assert!(!given_up(&read(Status::Retrying, 1_000, None), life, after(10_000)));
        assert!(given_up(&read(Status::Retrying, 1_000, None), life, after(10_001)));
        assert!(given_up(&read(Status::Pending, 1_000, None), life, after(10_001)));
        assert!(!given_up(&read(Status::Complete, 1_000, None), life, u64::MAX / 2));
        // Delayed: the life counts from when it was due (plus Scheduler's retries).
        assert!(!given_up(&read(Status::Scheduled, 1_000, Some(50_000)), life, after(10_001)));
    }
}
