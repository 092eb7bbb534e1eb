//! A task's body, run: what a message asks once the worker owns its item
//! ([`Work`]), the body under its deadline with panics caught, and the
//! wait for a synchronous body that overran. It uses nothing else of the
//! worker; `run` and `finish` both use it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value};

use crate::context::{BlockingBodies, counting_blocking};
use crate::outcome::{self, Decision, RunResult};
use crate::registry::TaskDef;
use crate::envelope::PayloadRef;
use crate::response::{Failure, FailureKind};
use crate::store::payloads::Payloads;

use super::Invocation;

/// Wait until no synchronous body of this invocation runs: one that
/// overran its deadline keeps its thread (it cannot be cancelled), and the
/// answer waits for it, so that the call's retry cannot run beside it. On
/// Lambda, the sandbox is ended at the deadline and the wait with it.
pub(super) async fn wait_for_overrun_bodies(bodies: &BlockingBodies) {
    if bodies.running() > 0 {
        tracing::warn!(
            "a synchronous body is still running past its deadline (its thread cannot be stopped): \
             the timeout is recorded, and this invocation answers once the body ends or Lambda ends the sandbox",
        );
        bodies.idle().await;
    }
}

/// Run a task future, catching panics and stopping at the deadline.
pub(super) async fn run_guarded(fut: crate::registry::TaskFuture, timeout: Duration) -> RunResult {
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
        Err(_) => RunResult::Timeout(started.elapsed()),
        Ok(Err(panic)) => RunResult::Panic(panic_message(&*panic)),
        Ok(Ok(Ok(v))) => RunResult::Value(v),
        Ok(Ok(Err(e))) => RunResult::Error(e),
    }
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

/// What a message asks of the worker once it owns the item.
pub(super) enum Work {
    /// Run the body of `def`.
    Run {
        def: &'static TaskDef,
        args: Map<String, Value>,
        /// Where the arguments are, when the message sent them through S3.
        args_ref: Option<Box<PayloadRef>>,
        max_attempts: u32,
        timeout: Duration,
        callback_of: Option<String>,
        /// The task's retry policy, when the runtime sends its retries itself.
        policy: Option<crate::policy::RetryPolicy>,
        /// The call that sent it, and the trace it runs in.
        parent: Option<String>,
        traceparent: Option<String>,
    },
    /// Do not run: record this permanent failure.
    Refuse(Failure),
}

impl Work {
    /// The attempts this call is allowed (1 for a refusal: it never retries).
    pub(super) fn max_attempts(&self) -> u32 {
        match self {
            Work::Run { max_attempts, .. } => *max_attempts,
            Work::Refuse(_) => 1,
        }
    }

    /// Run the work: the arguments read from S3 first when the message sent
    /// them there (an object gone, changed or too large fails the call
    /// `bad_payload`; one S3 could not answer is retried), and the result
    /// or failure's message too large for the item kept there (only when it
    /// is `stored`: a call that does not capture its outcome writes nothing).
    pub(super) async fn run(self, id: &str, inv: &Invocation, attempt: Option<u32>, bodies: &Arc<BlockingBodies>, payloads: &Payloads, stored: bool) -> Decision {
        match self {
            Work::Refuse(failure) => outcome::permanent(failure),
            Work::Run { def, mut args, args_ref, max_attempts, timeout, callback_of, policy, parent, traceparent } => {
                if let Some(r) = args_ref {
                    match Box::pin(payloads.fetch_json(&r, "the arguments' JSON object")).await {
                        Ok(stored) => args = stored,
                        Err(e) if e.transient => {
                            let retry = RunResult::Error(crate::error::TaskError::retry(e.to_string()));
                            return outcome::decide(retry, attempt, max_attempts, None);
                        }
                        Err(e) => {
                            tracing::error!("{e}: not run");
                            return outcome::permanent(Failure::new(FailureKind::BadPayload, format!("{e}: the task did not run")));
                        }
                    }
                }
                let ctx = crate::context::TaskContext {
                    task: def.spec.name.to_owned(),
                    id: id.to_owned(),
                    attempt,
                    request_id: inv.request_id.clone(),
                    invoked_function_arn: crate::context::invoked_function_arn().map(|a| a.to_string()),
                    callback_of,
                    parent,
                    traceparent,
                };
                let result = match (def.call)(args) {
                    Err(e) => RunResult::BadArgs(e),
                    Ok(fut) => crate::context::scope(ctx, counting_blocking(bodies.clone(), run_guarded(fut, timeout))).await,
                };
                let whole = outcome::decide_whole(result, attempt, max_attempts, policy.as_ref());
                // `place` awaits S3 (boxed) only for a value too large for the item.
                let state = if stored { payloads.place(id, whole.state).await } else { crate::store::payloads::fit(whole.state) };
                Decision { state, ..whole }
            }
        }
    }
}
