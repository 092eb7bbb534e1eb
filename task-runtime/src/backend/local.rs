//! The local backend: the same [`Worker`] that runs in Lambda, on tokio in
//! this process, behind a queue that behaves like Lambda's asynchronous
//! invoke: one request id per event, up to `max_attempts` attempts, and a
//! delay before each retry.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{DispatchError, RegistryError};
use crate::follow_up::Forwarder;
use crate::outcome::Reply;
use crate::registry::Registry;
use crate::store::ResponseStore;
use crate::time::now_ms;
use crate::store::payloads::Payloads;
use crate::worker::{Invocation, Worker, WorkerSettings};

/// How long a local invocation may run: Lambda's maximum, 15 minutes.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs dispatched messages in this process.
#[derive(Debug)]
pub(crate) struct LocalBackend {
    store: Arc<dyn ResponseStore>,
    settings: WorkerSettings,
    retry_delay: Duration,
    worker: OnceLock<Result<Worker, RegistryError>>,
    in_flight: watch::Sender<usize>,
    /// How the worker sends a group's callback: back to this queue.
    forwarder: Arc<dyn Forwarder>,
    /// Where the worker keeps what is too large for its item.
    payloads: Arc<Payloads>,
}

impl LocalBackend {
    pub(crate) fn new(store: Arc<dyn ResponseStore>, settings: WorkerSettings, retry_delay: Duration, forwarder: Arc<dyn Forwarder>, payloads: Arc<Payloads>) -> Self {
        Self { store, settings, retry_delay, worker: OnceLock::new(), in_flight: watch::Sender::new(0), forwarder, payloads }
    }

    fn worker(&self) -> Result<Worker, RegistryError> {
        self.worker
            .get_or_init(|| {
                Registry::global()
                    .map(|r| Worker::new(r, Some(self.store.clone()), self.settings.clone()).with_forwarder(self.forwarder.clone()).with_payloads(self.payloads.clone()))
            })
            .clone()
    }

    /// Queue a message, like `Invoke` with `InvocationType=Event`: returns at
    /// once; the work runs on tokio. At most `1 + retries` attempts (and no
    /// more than the configured maximum), as if the function's own retry
    /// setting were the task's. With `run_at_ms` (epoch ms), a timer holds
    /// it until then.
    pub(crate) fn enqueue(&self, payload: Vec<u8>, retries: u8, run_at_ms: Option<u64>) -> Result<(), DispatchError> {
        let worker = self.worker()?;
        let max_attempts = self.settings.max_attempts.min(1 + u32::from(retries));
        let delay = self.retry_delay;
        let guard = InFlight::new(self.in_flight.clone());
        tokio::spawn(async move {
            let _guard = guard;
            if let Some(at) = run_at_ms {
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
            }
            let request_id = crate::envelope::new_id();
            for attempt in 1..=max_attempts {
                let deadline_ms = now_ms() + LOCAL_TIMEOUT.as_millis() as u64;
                let inv = Invocation { request_id: request_id.clone(), deadline_ms, attempt: Some(attempt) };
                match worker.handle_payload(&payload, &inv).await {
                    Reply::Success(_) => return,
                    Reply::Error { error_type, message } if attempt < max_attempts => {
                        tracing::debug!(%request_id, attempt, error_type, "local invoke failed, retrying in {delay:?}: {message}");
                        tokio::time::sleep(delay).await;
                    }
                    Reply::Error { error_type, message } => {
                        tracing::error!(%request_id, attempt, error_type, "local event dropped after {max_attempts} attempt(s): {message}");
                    }
                }
            }
        });
        Ok(())
    }

    /// Wait until every queued message has finished its last attempt.
    pub(crate) async fn idle(&self) {
        let mut rx = self.in_flight.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Counts a queued message until its last attempt ends, even by panic.
#[derive(Debug)]
struct InFlight(watch::Sender<usize>);

impl InFlight {
    fn new(tx: watch::Sender<usize>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(tx)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}
