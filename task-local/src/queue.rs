//! The asynchronous queue: an `Event` invoke waits for a free instance; a
//! function error is retried after the configured delays under the same
//! request id; an event past its maximum age, or out of attempts, is
//! dropped to the on-failure file.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;

use crate::emulator::Emulator;
use crate::function::{Function, now_ms};
use crate::instance::Outcome;

/// Queue an event; returns its request id at once.
pub(crate) fn enqueue(emu: Arc<Emulator>, func: Arc<Function>, payload: Bytes) -> String {
    let request_id = uuid::Uuid::new_v4().to_string();
    let rid = request_id.clone();
    let guard = emu.track();
    tokio::spawn(async move {
        let _guard = guard;
        let received = Instant::now();
        let max_attempts = 1 + u32::from(func.cfg.max_retry_attempts);
        let mut last_error = None;
        for attempt in 1..=max_attempts {
            if received.elapsed() > func.cfg.max_event_age {
                drop_event(&emu, &func, &rid, &payload, attempt - 1, "EventAgeExceeded", last_error);
                return;
            }
            emu.stats.update(&func.cfg.name, |s| s.queue_depth += 1);
            let slot = func.slots.clone().acquire_owned().await;
            emu.stats.update(&func.cfg.name, |s| s.queue_depth -= 1);
            let Ok(slot) = slot else { return };
            if emu.draining() {
                drop_event(&emu, &func, &rid, &payload, attempt - 1, "Shutdown", last_error);
                return;
            }
            let outcome = func.invoke(&emu.stats, &rid, payload.clone(), attempt, &slot).await;
            drop(slot);
            if let Outcome::Success(_) = outcome {
                return;
            }
            last_error = func.error_body(&rid, &outcome);
            if attempt < max_attempts {
                emu.stats.update(&func.cfg.name, |s| s.retries += 1);
                tokio::time::sleep(func.cfg.retry_delays[(attempt - 1) as usize]).await;
            }
        }
        drop_event(&emu, &func, &rid, &payload, max_attempts, "RetriesExhausted", last_error);
    });
    request_id
}

fn drop_event(emu: &Emulator, func: &Function, request_id: &str, payload: &Bytes, attempts: u32, condition: &str, error: Option<Bytes>) {
    emu.stats.update(&func.cfg.name, |s| s.dropped += 1);
    let event = serde_json::from_slice::<serde_json::Value>(payload).unwrap_or_else(|_| String::from_utf8_lossy(payload).into());
    let error = error.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let line = serde_json::json!({
        "timestamp_ms": now_ms(),
        "requestContext": {"requestId": request_id, "functionArn": func.arn, "condition": condition, "approximateInvokeCount": attempts},
        "requestPayload": event,
        "responsePayload": error,
    });
    complain!("task-local: dropped event {request_id} of {} after {attempts} attempt(s): {condition}", func.cfg.name);
    if let Some(file) = &emu.on_failure {
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{line}");
        let _ = f.flush();
    }
}
