//! Finishing a call: the attempt recorded around its run (`begin`, the
//! body, `finish`), a retry policy's re-send, the exhausted call ended, the
//! concurrency slot given back, and the reply to Lambda.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::context::BlockingBodies;
use crate::envelope::Envelope;
use crate::follow_up;
use crate::error::error_type;
use crate::outcome::{Decision, Reply};
use crate::response::{Failure, FailureKind, Status};
use crate::store::{Begun, FinalState, Finished, PendingItem, ResponseStore};
use crate::time::now_ms;

use super::claim::Heartbeat;
use super::body::{Work, wait_for_overrun_bodies};
use super::reply::{reply_for, summary, summary_error, summary_value};
use super::{After, Invocation, Worker};

impl Worker {
    /// begin → run the work (or record its refusal), renewing the lease → finish.
    /// The work of [`record`](Self::record); with the reply, whether the
    /// call's slot may be given back (no other delivery runs its body).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_run(&self, id: &str, task: &str, inv: &Invocation, work: Work, event: Option<&Value>, after: &After, slot: Option<&str>) -> (Reply, bool) {
        let Some(store) = &self.store else {
            return (self.run_uncaptured(id, task, inv, work).await, false);
        };
        let attempt = match self.begin(store.as_ref(), id, task, inv, work.max_attempts(), after).await {
            Ok(Begun::Started { attempts }) => attempts,
            Ok(Begun::Finished { status, attempts }) => {
                // Count it in its group, in case the path that ended it died before it did.
                if let Some(error) = self.follow_up(store.as_ref(), after, status, None).await {
                    return (error, true);
                }
                if status == Status::Cancelled {
                    tracing::info!("the call was cancelled: not run");
                    return (summary(id, task, Status::Cancelled, attempts, Some("cancelled")), true);
                }
                tracing::info!(%status, attempts, "duplicate delivery of a finished task: not run again");
                // No body of the call runs: its slot, if this delivery took it again, is free.
                return (summary(id, task, status, attempts, Some("duplicate")), true);
            }
            Ok(Begun::Exhausted { attempts }) => return Box::pin(self.end_exhausted(store.as_ref(), id, task, attempts, event, after)).await,
            Ok(Begun::Superseded { attempts }) => {
                tracing::info!(attempts, "the runtime sent this call again after an attempt; this earlier delivery is not run");
                // The re-sent delivery may be running the body under this slot: kept.
                return (summary(id, task, Status::Retrying, attempts, Some("superseded")), false);
            }
            Ok(Begun::Busy { request_id, lease_until_ms }) if request_id == inv.request_id || after.resend.is_some() => {
                let message = format!("a delivery of this same event (or the attempt that sent this one) held task `{task}` (id {id}) until this invocation's deadline; Lambda's retry will find it finished or free");
                tracing::warn!(lease_until_ms, "{message}");
                return (Reply::Error { error_type: error_type::BUSY, message }, false);
            }
            Ok(Begun::Busy { request_id, lease_until_ms }) => {
                tracing::warn!(owner = %request_id, lease_until_ms, "another delivery holds this task: not run concurrently");
                return (summary(id, task, Status::Running, 0, Some("busy")), false);
            }
            Err(e) => {
                tracing::error!("could not begin: {e}");
                return (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, true);
            }
        };
        tracing::Span::current().record("attempt", attempt);
        let heartbeat = Heartbeat { store: store.clone(), id, request_id: &inv.request_id, lease: self.settings.lease, deadline_ms: inv.deadline_ms, slot };
        let bodies = Arc::new(BlockingBodies::default());
        let mut decision = heartbeat.around(work.run(id, inv, Some(attempt), &bodies, &self.payloads, true)).await;
        // Kept with a failed call, so that it can be listed and sent again.
        let message = match (&decision.state, event) {
            (FinalState::Failed(_), Some(event)) => Some(event.to_string()),
            _ => None,
        };
        let mut state = self.resend_state(&decision, attempt);
        // A retry the runtime sends itself is sent first, then written: a
        // crash in between leaves a message that may begin the next attempt
        // (it follows the latest), never a call that waits for nothing.
        if let FinalState::Resend { failure, run_at_ms, .. } = &state {
            wait_for_overrun_bodies(&bodies).await;
            if let Err(why) = Box::pin(self.send_again(event, attempt, *run_at_ms, inv)).await {
                tracing::error!("attempt {attempt} failed and could not be sent again ({why}): left to Lambda's retry");
                decision.error_type = Some(error_type::RETRY);
                state = FinalState::Retrying(failure.clone());
            }
        }
        let resent_for = match &state {
            FinalState::Resend { run_at_ms, .. } => Some(*run_at_ms),
            _ => None,
        };
        match store.finish(id, &inv.request_id, state, now_ms(), message.as_deref()).await {
            Ok(Finished::Written) if let Some(run_at_ms) = resent_for => {
                tracing::warn!(run_at_ms, "attempt {attempt} failed: sent again by the runtime for {run_at_ms}");
                let mut body = summary_value(id, task, Status::Retrying, attempt, Some("resent"));
                body["run_at_ms"] = json!(run_at_ms);
                return (Reply::Success(body), true);
            }
            Ok(Finished::Written) => {
                let value = match &decision.state {
                    FinalState::Complete(text) => Some(text.as_str()),
                    _ => None,
                };
                if let Some(error) = self.follow_up(store.as_ref(), after, decision.state.status(), value).await {
                    wait_for_overrun_bodies(&bodies).await;
                    return (error, true);
                }
            }
            Ok(Finished::NotOwner) => {
                tracing::warn!("this request no longer owns the item (its lease lapsed and another took over): outcome not written");
                // The delivery that took over runs the body under this slot: kept.
                wait_for_overrun_bodies(&bodies).await;
                return (reply_for(id, task, attempt, &decision), false);
            }
            Err(e) => {
                tracing::error!("could not write the outcome: {e}");
                wait_for_overrun_bodies(&bodies).await;
                return (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, true);
            }
        }
        // The outcome is written; only now may an overrun body hold the answer back.
        wait_for_overrun_bodies(&bodies).await;
        (reply_for(id, task, attempt, &decision), true)
    }

    /// begin, the body and finish, holding `slot` (a concurrency limit's
    /// key) from the body's start to its outcome: given back then, or when
    /// the call is found ended; kept when another delivery of the call runs
    /// its body (busy, superseded), which gives it back itself.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record(&self, id: &str, task: &str, inv: &Invocation, work: Work, event: Option<&Value>, after: &After, slot: Option<&str>) -> Reply {
        let (reply, done) = self.record_run(id, task, inv, work, event, after, slot).await;
        if done && let Some(store) = &self.store {
            give_back(store.as_ref(), slot, id).await;
        }
        reply
    }

    /// The last attempt died (its lease lapsed), and another event of the
    /// call (a duplicate invoke) must not run one more: end it `crashed`, as
    /// Lambda's failure record would.
    pub(super) async fn end_exhausted(&self, store: &dyn ResponseStore, id: &str, task: &str, attempts: u32, event: Option<&Value>, after: &After) -> (Reply, bool) {
        let failure = Failure::new(FailureKind::Crashed, format!("attempt {attempts} of {attempts} died before it ended (its lease lapsed): no attempt is left"));
        let item = self.ended_item(id.to_owned(), task.to_owned(), now_ms(), after.parent.clone());
        let message = event.map(Value::to_string);
        match store.fail_unfinished(item, failure.clone(), message.as_deref()).await {
            Ok(_) => {
                tracing::error!(attempts, "the last attempt died and no attempt is left: ended crashed");
                if let Some(error) = self.follow_up(store, after, Status::Failed, None).await {
                    return (error, true);
                }
                (summary_error(Some(id), Some(task), FailureKind::Crashed, &failure.message), true)
            }
            Err(e) => (Reply::Error { error_type: error_type::STORE, message: e.to_string() }, false),
        }
    }

    /// The item `fail_unfinished` creates for a call ended at `now` whose
    /// item is gone: readable a response TTL from then.
    pub(super) fn ended_item(&self, id: String, task: String, now: u64, parent: Option<String>) -> PendingItem {
        PendingItem { id, task, now_ms: now, ttl: crate::store::ttl_after(now, self.settings.response_ttl), run_at_ms: None, digest: None, parent }
    }

    /// The state to write for `decision`: a retry the runtime sends itself
    /// is [`FinalState::Resend`], due after the decision's gap.
    pub(super) fn resend_state(&self, decision: &Decision, attempt: u32) -> FinalState {
        match (&decision.state, decision.resend_in) {
            (FinalState::Retrying(failure), Some(gap)) => {
                let run_at_ms = now_ms().saturating_add(gap.as_millis() as u64);
                let ttl = crate::store::ttl_after(crate::store::give_up_ms(now_ms(), Some(run_at_ms)), self.settings.response_ttl);
                FinalState::Resend { failure: failure.clone(), run_at_ms, after_attempt: attempt, ttl }
            }
            _ => decision.state.clone(),
        }
    }

    /// Send the call again after attempt `after_attempt`, due at
    /// `run_at_ms`, marked as that attempt's re-send; `Err` says why not.
    pub(super) async fn send_again(&self, event: Option<&Value>, after_attempt: u32, run_at_ms: u64, inv: &Invocation) -> Result<(), String> {
        let event = event.ok_or("the message as it came is not at hand")?;
        let mut env = serde_json::from_value::<Envelope>(event.clone()).map_err(|e| format!("the message does not decode again: {e}"))?;
        env.resend = Some(after_attempt);
        env.deferred = 0;
        env.rate_turn_ms = None;
        let wait_until = inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64);
        follow_up::send_later(self.forwarder.as_ref(), env, run_at_ms, self.settings.signing_key.as_deref(), wait_until).await
    }
}

/// Give back call `id`'s slot of the concurrency limit `slot`, if any; one
/// that cannot be given back lapses within a lease.
pub(super) async fn give_back(store: &dyn ResponseStore, slot: Option<&str>, id: &str) {
    if let Some(key) = slot
        && let Err(e) = store.release_slot(key, id).await
    {
        tracing::warn!("could not give back the concurrency slot of `{key}`: {e}");
    }
}
