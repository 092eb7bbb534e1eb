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
    /// When this call is a group's callback: the group's id, whose
    /// children's outcomes [`GroupHandle::from_id`](crate::GroupHandle::from_id)
    /// reads.
    pub callback_of: Option<String>,
    /// The call that sent this one (see [`AsyncResponse::parent`](crate::AsyncResponse::parent)).
    pub parent: Option<String>,
    /// The trace context the message carried (a W3C `traceparent`; see
    /// [`crate::trace`]). Calls this task sends continue its trace.
    pub traceparent: Option<String>,
}

impl TaskContext {
    /// The trace this call runs in, when its message carried one.
    pub fn trace_id(&self) -> Option<String> {
        self.traceparent.as_deref().and_then(crate::trace::trace_id_of).map(str::to_owned)
    }
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

/// `f` of the running task's context, borrowed (what [`current`] clones).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskContext>) -> R) -> R {
    let mut f = Some(f);
    if let Ok(Some(out)) = CURRENT.try_with(|c| f.take().map(|f| f(Some(c)))) {
        return out;
    }
    let f = f.take().expect("not called by the async context");
    CURRENT_SYNC.with(|c| f(c.borrow().as_ref()))
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

/// The synchronous bodies one invocation started on tokio's blocking pool.
/// A thread there cannot be cancelled: when such a body outlives its
/// deadline, the worker records the timeout and then waits until no body
/// runs ([`BlockingBodies::idle`]) before it answers. On Lambda the wait
/// ends when the body does or when Lambda ends the sandbox at the deadline,
/// so that an overrun body never runs beside the retry of its call.
#[derive(Debug, Default)]
pub(crate) struct BlockingBodies {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one running blocking body until dropped (on its thread, when it ends or panics).
#[derive(Debug)]
pub(crate) struct BlockingBody(std::sync::Arc<BlockingBodies>);

impl Drop for BlockingBody {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl BlockingBodies {
    /// How many are running.
    pub(crate) fn running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Wait until none is running.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

tokio::task_local! {
    static BODIES: std::sync::Arc<BlockingBodies>;
}

/// Run `fut`, counting the blocking bodies it starts in `bodies`.
pub(crate) async fn counting_blocking<F: std::future::Future>(bodies: std::sync::Arc<BlockingBodies>, fut: F) -> F::Output {
    BODIES.scope(bodies, fut).await
}

/// Count a blocking body about to start, when the worker counts them.
pub(crate) fn blocking_body() -> Option<BlockingBody> {
    BODIES
        .try_with(|b| {
            b.running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            BlockingBody(b.clone())
        })
        .ok()
}
