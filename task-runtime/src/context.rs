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
    /// The function ARN the invocation was invoked as, with its version or
    /// alias when it had one (on Lambda and task-local; `None` on the local backend).
    pub invoked_function_arn: Option<String>,
}

tokio::task_local! {
    static CURRENT: TaskContext;
}

thread_local! {
    static CURRENT_SYNC: std::cell::RefCell<Option<TaskContext>> = const { std::cell::RefCell::new(None) };
}

tokio::task_local! {
    /// The function ARN the current Lambda invocation was invoked with
    /// (with its qualifier, when it had one): around tasks and the user's handler.
    static INVOKED: std::sync::Arc<str>;
}

thread_local! {
    static INVOKED_SYNC: std::cell::RefCell<Option<std::sync::Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// Run `fut` as part of an invocation of `arn`: a task sent from inside it
/// goes to the same qualifier (see [`crate::SendOptions`]).
pub(crate) async fn within_invocation<F: std::future::Future>(arn: std::sync::Arc<str>, fut: F) -> F::Output {
    INVOKED.scope(arn, fut).await
}

/// The function ARN of the Lambda invocation this code runs in, if any.
pub(crate) fn invoked_function_arn() -> Option<std::sync::Arc<str>> {
    INVOKED.try_with(Clone::clone).ok().or_else(|| INVOKED_SYNC.with(|c| c.borrow().clone()))
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
    let (ctx, invoked) = (current(), invoked_function_arn());
    move || {
        let previous = CURRENT_SYNC.with(|c| c.replace(ctx));
        let previous_invoked = INVOKED_SYNC.with(|c| c.replace(invoked));
        let out = f();
        CURRENT_SYNC.with(|c| *c.borrow_mut() = previous);
        INVOKED_SYNC.with(|c| *c.borrow_mut() = previous_invoked);
        out
    }
}
