//! Claiming a call: `begin` (a duplicate delivery waits for the lease to
//! lapse, or gives up near its deadline), and the heartbeat that renews the
//! lease, and the call's concurrency slot, while a body runs.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::outcome::Decision;
use crate::store::{BeginRequest, Begun, Finished, ResponseStore};
use crate::time::now_ms;

use super::{After, Invocation, Worker};

impl Worker {
    /// Claim the call. A live lease held under this very request id is a
    /// concurrent delivery of the same event (Lambda may deliver one event
    /// twice) or a retry that came before a crashed attempt's lease lapsed:
    /// wait for the lease to lapse (a live owner keeps renewing it) or the
    /// call to move on, then claim again; near the deadline, give up (the
    /// caller answers `TaskBusy`, so that Lambda retries later).
    pub(super) async fn begin(&self, store: &dyn ResponseStore, id: &str, task: &str, inv: &Invocation, max_attempts: u32, after: &After) -> Result<Begun, crate::error::StoreError> {
        // A group's child stays readable until its group's callback, sent
        // at the latest when Lambda gives up on this event, can have run.
        let life = if after.group.is_some() { crate::store::MAX_EVENT_LIFE_MS } else { 0 };
        loop {
            let now = now_ms();
            let req = BeginRequest {
                id: id.to_owned(),
                task: task.to_owned(),
                request_id: inv.request_id.clone(),
                lease_until_ms: lease_until(now, self.settings.lease, inv.deadline_ms),
                max_attempts,
                now_ms: now,
                // Lambda may retry until the event's life ends: readable until then, and a response TTL after.
                ttl: crate::store::ttl_after(crate::store::give_up_ms(now, None).saturating_add(life), self.settings.response_ttl),
                resend: after.resend,
                parent: after.parent.clone(),
            };
            match store.begin(req).await? {
                Begun::Busy { request_id, lease_until_ms } if request_id == inv.request_id || after.resend.is_some() => {
                    let give_up_at = inv.deadline_ms.saturating_sub(self.settings.timeout_margin.as_millis() as u64);
                    let wake = if request_id == inv.request_id {
                        lease_until_ms.saturating_add(1)
                    } else {
                        // A re-sent message can come before the attempt that sent it has
                        // written its end (it sends, then writes): that takes milliseconds.
                        now_ms().saturating_add(RESENT_POLL_MS).min(lease_until_ms.saturating_add(1))
                    };
                    if wake >= give_up_at {
                        return Ok(Begun::Busy { request_id, lease_until_ms });
                    }
                    tracing::info!(lease_until_ms, "another delivery holds the task: waiting for it to end");
                    tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now_ms()))).await;
                }
                begun => return Ok(begun),
            }
        }
    }
}

/// The end of a lease taken or renewed at `now`: one lease period on, but
/// never past the invocation's deadline.
pub(super) fn lease_until(now: u64, lease: Duration, deadline_ms: u64) -> u64 {
    now.saturating_add(lease.as_millis() as u64).min(deadline_ms)
}

/// How often a re-sent message looks again at a call whose previous
/// attempt has sent it but not yet written its end.
pub(super) const RESENT_POLL_MS: u64 = 50;

/// Renews a running call's lease every third of the lease period.
pub(super) struct Heartbeat<'a> {
    pub(super) store: Arc<dyn ResponseStore>,
    pub(super) id: &'a str,
    pub(super) request_id: &'a str,
    pub(super) lease: Duration,
    pub(super) deadline_ms: u64,
    /// The concurrency limit whose slot the call holds, renewed alongside.
    pub(super) slot: Option<&'a str>,
}

impl Heartbeat<'_> {
    /// Run `work`; if it is still running after a third of the lease, renew
    /// the lease from a task of its own (so that it beats even while the
    /// body keeps this task busy) until `work` ends. Short bodies cost
    /// nothing: no task is spawned and no write is made.
    pub(super) async fn around<F: std::future::Future<Output = Decision>>(self, work: F) -> Decision {
        let beat = self.lease / 3;
        let mut work = std::pin::pin!(work);
        if let Ok(decision) = tokio::time::timeout(beat, work.as_mut()).await {
            return decision;
        }
        let (store, id, request_id, lease, deadline_ms) =
            (self.store, self.id.to_owned(), self.request_id.to_owned(), self.lease, self.deadline_ms);
        let slot = self.slot.map(str::to_owned);
        let beating = tokio::spawn(
            async move {
                let mut tick = tokio::time::interval(beat);
                loop {
                    tick.tick().await;
                    let until = lease_until(now_ms(), lease, deadline_ms);
                    if let Some(key) = &slot {
                        match store.renew_slot(key, &id, until).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!("heartbeat: the concurrency slot of `{key}` had lapsed and was given to another call"),
                            Err(e) => tracing::warn!("heartbeat: could not renew the concurrency slot of `{key}`: {e}"),
                        }
                    }
                    match store.renew(&id, &request_id, until).await {
                        Ok(Finished::Written) => {}
                        Ok(Finished::NotOwner) => {
                            tracing::warn!("heartbeat: this request no longer owns the item; stopped renewing");
                            return;
                        }
                        // A missed beat is not fatal: the lease still holds for two more.
                        Err(e) => tracing::warn!("heartbeat: could not renew the lease: {e}"),
                    }
                }
            }
            .in_current_span(),
        );
        let decision = work.await;
        beating.abort();
        decision
    }
}
