//! What a running task can know about itself: [`current`].

/// The task being run, as the worker sees it; [`current`] returns it.
///
/// ```
/// use task_runtime::{task, TaskResult};
///
/// #[task]
/// async fn audit(note: String) -> TaskResult<String> {
///     Ok(match task_runtime::current() {
///         Some(ctx) => format!("{note}: {} ({}) attempt {:?}", ctx.task, ctx.id, ctx.attempt),
///         None => note, // run in place with `audit::run_inline`
///     })
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskContext {
    /// The registered task name.
    pub task: String,
    /// The response id.
    pub id: String,
    /// This attempt's number (1-3), when known: always with a response
    /// store, and on the local backend.
    pub attempt: Option<u32>,
    /// The Lambda request id (the same on every retry of one event).
    pub request_id: String,
}

tokio::task_local! {
    static CURRENT: TaskContext;
}

thread_local! {
    static CURRENT_SYNC: std::cell::RefCell<Option<TaskContext>> = const { std::cell::RefCell::new(None) };
}

/// The task running on this task (or thread, for a sync task); `None`
/// outside a task, and in a body run with `run_inline`.
///
/// ```
/// use task_runtime::{task, TaskError, TaskResult};
///
/// #[task]
/// async fn charge(order: u64) -> TaskResult<u64> {
///     let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
///     if attempt < 2 {
///         return Err(TaskError::retry("the payment service is warming up"));
///     }
///     Ok(order)
/// }
/// ```
pub fn current() -> Option<TaskContext> {
    CURRENT.try_with(Clone::clone).ok().or_else(|| CURRENT_SYNC.with(|c| c.borrow().clone()))
}

/// Run `fut` with `ctx` as [`current`].
pub(crate) async fn scope<F: std::future::Future>(ctx: TaskContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// Run a blocking closure with the caller's context visible on its thread.
pub(crate) fn carry<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let ctx = current();
    move || {
        let previous = CURRENT_SYNC.with(|c| c.replace(ctx));
        let out = f();
        CURRENT_SYNC.with(|c| *c.borrow_mut() = previous);
        out
    }
}
