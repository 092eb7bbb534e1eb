//! Running one task message: the checks before its body (signing, a
//! debounced call, the flow limits), the body itself (panics caught, the
//! deadline kept), and its decision.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::context::BlockingBodies;
use crate::envelope::Envelope;
use crate::follow_up;
use crate::error::error_type;
use crate::flow::Admission;
use crate::outcome::Reply;
use crate::response::{Failure, FailureKind, Status};
use crate::time::now_ms;

use super::claim::lease_until;
use super::body::{Work, wait_for_overrun_bodies};
use super::reply::{reply_for, summary, summary_error};
use super::{After, Invocation, Worker, task_span};

impl Worker {
    /// Run a decoded task message; `event`, when given, is the message as it
    /// came, kept with the call if it fails.
    pub(super) async fn run_message(&self, env: Envelope, event: Option<&Value>, inv: &Invocation) -> Reply {
        let span = task_span(&env.task, &env.id, inv);
        // The trace it carries, or the one its id names.
        let trace = env.trace_context();
        if let Some(trace_id) = crate::trace::trace_id_of(&trace) {
            span.record("trace_id", tracing::field::display(trace_id));
            #[cfg(feature = "opentelemetry")]
            crate::otel::continue_trace(&span, &trace);
        }
        async move {
            if let Some(key) = &self.settings.signing_key
                && let Err(why) = env.verify(key)
                && !crate::schedules::is_registered_run(&env)
            {
                return self.refuse_unverified(&env, why).await;
            }
            if let (Some(schedule), Some(store), true) = (&env.schedule, &self.store, env.capture) {
                let now = now_ms();
                let ttl = crate::store::ttl_after(now, self.settings.response_ttl);
                if let Err(e) = store.note_latest_run(schedule, &env.id, now, ttl).await {
                    tracing::warn!("could not note this run as the schedule's latest: {e}");
                }
            }
            // The rare paths are boxed, so that the common one's future stays small.
            if env.debounce.is_some()
                && let Some(reply) = Box::pin(self.debounced(&env)).await
            {
                return reply;
            }
            let after = After::of(&env);
            let def = self.registry.get(&env.task);
            // Flow limits, before the delivery counts as an attempt.
            let mut slot = None;
            if let (Some(def), Some(store), true) = (def, &self.store, env.capture)
                && !def.spec.limits.is_none()
            {
                let now = now_ms();
                let lease = lease_until(now, self.settings.lease, inv.deadline_ms);
                match Box::pin(crate::flow::admit(store.as_ref(), &def.spec.limits, &env, lease, now)).await {
                    Ok(Admission::Run { slot: taken }) => slot = taken,
                    Ok(Admission::Later { at_ms, rate_turn_ms, why }) => return Box::pin(self.put_off(env, at_ms, rate_turn_ms, &why, inv)).await,
                    Err(e) => {
                        tracing::error!("could not check the task's limits: {e}");
                        return Reply::Error { error_type: error_type::STORE, message: e.to_string() };
                    }
                }
            }
            let work = match def {
                None => {
                    let msg = format!(
                        "no task named `{}` is registered in this worker (it has: {})",
                        env.task,
                        self.registry.names().join(", ")
                    );
                    tracing::error!("{msg}");
                    Work::Refuse(Failure::new(FailureKind::UnknownTask, msg))
                }
                Some(def) => {
                    let cap = 1 + u32::from(def.spec.retries.unwrap_or(2).min(env.retries));
                    // With a backoff, or retries declared past the function's own, the runtime sends every retry of a returned error itself.
                    let declared_past = def.spec.retries.is_some_and(|r| 1 + u32::from(r) > self.settings.max_attempts);
                    let policy = (def.spec.retry.backoff_ms.is_some() || declared_past).then_some(def.spec.retry);
                    let until_deadline = Duration::from_millis(inv.deadline_ms.saturating_sub(now_ms()))
                        .saturating_sub(self.settings.timeout_margin);
                    // The task's own limit, when it has one below the invocation's.
                    let timeout = def.spec.timeout_ms.map_or(until_deadline, |ms| until_deadline.min(Duration::from_millis(ms)));
                    let max_attempts = if policy.is_some() { cap } else { self.settings.max_attempts.min(cap) };
                    let (parent, traceparent) = (env.parent, Some(trace));
                    Work::Run { def, args: env.args.into_map(), args_ref: env.args_ref.map(Box::new), max_attempts, timeout, callback_of: env.callback_of, policy, parent, traceparent }
                }
            };
            if env.capture {
                self.record(&env.id, &env.task, inv, work, event, &after, slot.as_deref()).await
            } else {
                self.run_uncaptured(&env.id, &env.task, inv, work).await
            }
        }
        .instrument(span)
        .await
    }

    /// A message whose signature does not verify: never run. When it is the
    /// caller's own message byte for byte (its digest is on the `pending`
    /// item: this worker lacks the caller's key, e.g. mid-rotation), the
    /// call ends `failed`, kind `refused`, so the caller sees it. Otherwise
    /// nothing is written (a forger cannot touch the store) and Lambda is
    /// told `TaskRefused`: it retries, then hands the event to the failure
    /// destination, whose record comes back here and is tried the same way.
    pub(super) async fn refuse_unverified(&self, env: &Envelope, why: &str) -> Reply {
        tracing::error!("refusing task message: {why}");
        let message = format!("the message's signature {} with this worker's TASK_SIGNING_KEY: not run", why.trim_start_matches("the signature (`sig`) "));
        if let Some(store) = self.store.as_ref().filter(|_| env.capture) {
            let failure = Failure::new(FailureKind::Refused, message.clone());
            match store.refuse_pending(&env.id, &env.digest(), failure, now_ms()).await {
                Ok(true) => {
                    if let Some(error) = self.follow_up(store.as_ref(), &After::of(env), Status::Failed, None).await {
                        return error;
                    }
                    return summary_error(Some(&env.id), Some(&env.task), FailureKind::Refused, &message);
                }
                Ok(false) => {}
                Err(e) => tracing::error!("could not record the refusal: {e}"),
            }
        }
        Reply::Error { error_type: error_type::REFUSED, message: format!("task `{}` (id {}): {message}", env.task, env.id) }
    }

    /// Capture off: run, with no writes and no de-duplication.
    pub(super) async fn run_uncaptured(&self, id: &str, task: &str, inv: &Invocation, work: Work) -> Reply {
        tracing::Span::current().record("attempt", inv.attempt);
        let bodies = Arc::new(BlockingBodies::default());
        let decision = work.run(id, inv, inv.attempt, &bodies, &self.payloads, false).await;
        wait_for_overrun_bodies(&bodies).await;
        reply_for(id, task, inv.attempt.unwrap_or(0), &decision)
    }

    /// A debounced call that a later call of its key superseded: ended
    /// `cancelled` without running (`Some`, the answer). `None`: it is the
    /// latest, or it began before it was superseded; it runs as any call.
    pub(super) async fn debounced(&self, env: &Envelope) -> Option<Reply> {
        let (Some(key), Some(store), true) = (&env.debounce, &self.store, env.capture) else { return None };
        let latest = crate::store::latest_run_id(&crate::store::flow::debounce_item(key));
        let store_error = |e: crate::error::StoreError| Some(Reply::Error { error_type: error_type::STORE, message: e.to_string() });
        let noted = match store.get(&latest).await {
            Ok(noted) => noted,
            Err(e) => return store_error(e),
        };
        let latest_id = noted.as_ref().and_then(|r| r.response.as_ref()).and_then(Value::as_str);
        if latest_id.is_none_or(|latest| latest == env.id) {
            return None;
        }
        match store.cancel(&env.id, now_ms()).await {
            Ok(crate::store::Cancel::Cancelled { .. }) => {
                tracing::info!(key = %key, latest = ?latest_id, "debounced: a later call of its key was sent, so this one ends cancelled");
                if let Some(error) = self.follow_up(store.as_ref(), &After::of(env), Status::Cancelled, None).await {
                    return Some(error);
                }
                Some(summary(&env.id, &env.task, Status::Cancelled, 0, Some("debounced")))
            }
            Ok(_) => None,
            Err(e) => store_error(e),
        }
    }

    /// Put a delivery off (a flow limit): send the message again for
    /// `at_ms`, counting the putting-off, and tell Lambda success. Not an
    /// attempt: the call's item is not touched. When the send fails, Lambda
    /// is told to retry, and its retry asks the limits again.
    pub(super) async fn put_off(&self, mut env: Envelope, at_ms: u64, rate_turn_ms: Option<u64>, why: &str, inv: &Invocation) -> Reply {
        let (id, task) = (env.id.clone(), env.task.clone());
        env.deferred = env.deferred.saturating_add(1);
        env.rate_turn_ms = rate_turn_ms;
        // A reserved start may be waited for in place when it is near; a full
        // concurrency limit never holds the instance.
        let wait_until = match rate_turn_ms {
            Some(turn) if turn == at_ms => inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64),
            _ => 0,
        };
        let key = self.settings.signing_key.as_deref();
        match follow_up::send_later(self.forwarder.as_ref(), env, at_ms, key, wait_until).await {
            Ok(()) => {
                tracing::info!(at_ms, "put off, not an attempt: {why}");
                Reply::Success(json!({"id": id, "task": task, "note": "deferred", "run_at_ms": at_ms, "why": why}))
            }
            Err(e) => {
                tracing::error!("put off ({why}), but could not be sent again: {e}");
                Reply::Error { error_type: error_type::RETRY, message: format!("task `{task}` (id {id}): {why}, and it could not be sent again: {e}") }
            }
        }
    }
}
