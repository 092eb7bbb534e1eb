//! The asynchronous queue: an `Event` invoke waits for a free instance; a
//! function error is retried after the configured delays under the same
//! request id; an event past its maximum age, or out of attempts, is
//! dropped to the on-failure destination (a file, or a function invoked
//! asynchronously with Lambda's record). A fraction of events can be
//! delivered twice at once under one request id, as Lambda occasionally does.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::emulator::{Emulator, OnFailure};
use crate::failure_queue::FailureQueue;
use crate::function::Function;
use crate::stats::now_ms;
use crate::instance::Outcome;

/// Queue an event for `func`, invoked as `invoked_arn`; returns its request id at once.
pub(crate) fn enqueue(emu: Arc<Emulator>, func: Arc<Function>, invoked_arn: String, payload: Bytes) -> String {
    let request_id = uuid::Uuid::new_v4().to_string();
    let rid = request_id.clone();
    let guard = emu.track();
    tokio::spawn(async move {
        let _guard = guard;
        let received = Instant::now();
        let max_attempts = 1 + u32::from(func.cfg.max_retry_attempts);
        let mut last_error = None;
        if chance(emu.faults.duplicate_deliveries) {
            emu.stats.update(&func.cfg.name, |s| s.duplicate_deliveries += 1);
            let (emu, func, rid, invoked_arn, payload) = (emu.clone(), func.clone(), rid.clone(), invoked_arn.clone(), payload.clone());
            let guard = emu.track();
            // The twin is delivered once, alongside the first attempt; its outcome is not retried.
            tokio::spawn(async move {
                let _guard = guard;
                if let Ok(slot) = func.slots.clone().acquire_owned().await {
                    func.invoke(&emu.stats, &rid, &invoked_arn, payload, 1, &slot).await;
                }
            });
        }
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
            let outcome = func.invoke(&emu.stats, &rid, &invoked_arn, payload.clone(), attempt, &slot).await;
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

/// The failure queue's event source mapping ([`crate::failure_queue`]):
/// poll it until the emulator drains, invoking its function with batches.
pub(crate) async fn poll_failure_queue(emu: Arc<Emulator>, queue: Arc<FailureQueue>) {
    let Some((func, invoked_arn)) = emu.resolve(&queue.function) else { return };
    while !emu.draining() {
        let batch = queue.receive();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let _guard = emu.track();
        say!("task-local: failure-queue batch of {} for {}", batch.len(), func.cfg.name);
        let Ok(slot) = func.slots.clone().acquire_owned().await else { return };
        let event = FailureQueue::event(&batch, &emu.region);
        let rid = uuid::Uuid::new_v4().to_string();
        let outcome = func.invoke(&emu.stats, &rid, &invoked_arn, Bytes::from(event.to_string()), 1, &slot).await;
        drop(slot);
        let failed = crate::failure_queue::failed_ids(&batch, &outcome);
        let done: Vec<String> = batch.iter().map(|m| m.id.clone()).filter(|id| !failed.contains(id)).collect();
        emu.stats.update(&func.cfg.name, |s| {
            s.sqs_batches += 1;
            s.sqs_deleted += done.len() as u64;
            s.sqs_returned += failed.len() as u64;
        });
        queue.delete(&done);
    }
}

/// True with probability `fraction` (0 never, 1 always).
pub(crate) fn chance(fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    // The top 48 bits of a v4 UUID are random (its fixed version and
    // variant bits are lower down): uniform in [0, 1).
    let bits = (uuid::Uuid::new_v4().as_u128() >> 80) as u64;
    (bits as f64 / (1u64 << 48) as f64) < fraction
}

fn drop_event(emu: &Arc<Emulator>, func: &Function, request_id: &str, payload: &Bytes, attempts: u32, condition: &str, error: Option<Bytes>) {
    emu.stats.update(&func.cfg.name, |s| s.dropped += 1);
    complain!("task-local: dropped event {request_id} of {} after {attempts} attempt(s): {condition}", func.cfg.name);
    let record = failure_record(func, request_id, payload, attempts, condition, error, emu.faults.destination_limit);
    match &emu.on_failure {
        None => {}
        Some(OnFailure::File(file)) => {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(f, "{record}");
            let _ = f.flush();
        }
        // A shutdown drops events too, but nothing is invoked while draining.
        Some(OnFailure::Function(target)) if !emu.draining() => match emu.resolve(target) {
            Some((target, invoked_arn)) => {
                enqueue(emu.clone(), target, invoked_arn, Bytes::from(record.to_string()));
            }
            None => complain!("task-local: on-failure function {target} is not served; record of {request_id} lost"),
        },
        Some(OnFailure::Function(_)) => {}
        Some(OnFailure::Sqs(queue)) => queue.send(record.to_string()),
    }
}

/// The record Lambda sends to an on-failure destination.
///
/// "If the combined size of the request and response payloads exceeds the
/// limit, Lambda drops the payload": a record over `limit` bytes goes
/// without its `requestPayload` (and, if still over, its
/// `responsePayload`). See
/// <https://docs.aws.amazon.com/lambda/latest/api/API_OnSuccess.html> and
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>.
fn failure_record(func: &Function, request_id: &str, payload: &Bytes, attempts: u32, condition: &str, error: Option<Bytes>, limit: usize) -> serde_json::Value {
    let event = serde_json::from_slice::<serde_json::Value>(payload).unwrap_or_else(|_| String::from_utf8_lossy(payload).into());
    let error = error.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let mut record = serde_json::json!({
        "version": "1.0",
        "timestamp": iso8601(now_ms()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{}:$LATEST", func.arn),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
    });
    if attempts > 0 {
        record["responseContext"] = serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"});
        record["responsePayload"] = error.unwrap_or(serde_json::Value::Null);
    }
    for part in ["requestPayload", "responsePayload"] {
        if record.to_string().len() <= limit {
            break;
        }
        if let Some(obj) = record.as_object_mut() {
            obj.remove(part);
        }
    }
    record
}

/// `2026-11-27T10:00:00.000Z` for epoch milliseconds (UTC, proleptic Gregorian).
pub(crate) fn iso8601(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = crate::cron::civil(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_795_774_496_789), "2026-11-27T10:14:56.789Z");
    }

    #[test]
    fn chance_is_never_for_zero_and_always_for_one() {
        assert!((0..1000).all(|_| !chance(0.0)));
        assert!((0..1000).all(|_| chance(1.0)));
        let hits = (0..10_000).filter(|_| chance(0.5)).count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
    }
}
