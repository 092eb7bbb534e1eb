//! The caller side: encode the call, record it as pending, and send it.
//! The pending write and the invoke run concurrently, except for an id the
//! caller chose or an idempotency key made (`ids.rs`): then the conditional
//! claim comes first, and only the caller that created the item sends.
//! By default (`TASK_PENDING_WRITE=false`) a call that needs no item
//! before the invoke is sent with no write, under a dated id, and the
//! worker's `begin` creates its item.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tracing::Instrument;

use crate::envelope::{Args, Envelope, GroupRef, NextStep};
use crate::error::DispatchError;
use crate::handle::{Dispatched, TaskHandle};
use crate::store::{Claimed, PendingItem};

mod ids;
mod options;

pub use self::options::SendOptions;
pub(crate) use self::ids::check_id;
pub(crate) use crate::envelope::json_type;
use crate::store::payloads::SealError;
use crate::time::now_ms;

/// Where and how one call is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) name: &'a str,
    pub(crate) function: Option<&'a str>,
    pub(crate) capture: bool,
    pub(crate) retries: Option<u8>,
    /// An id the caller chose.
    pub(crate) id: Option<&'a str>,
    /// When the call is due, epoch ms (a delay).
    pub(crate) run_at_ms: Option<u64>,
    /// The group the call is a child of.
    pub(crate) group: Option<&'a GroupRef>,
    /// The group whose callback the call is.
    pub(crate) callback_of: Option<&'a str>,
    /// The steps of a chain that follow the call.
    pub(crate) then: &'a [NextStep],
    /// A debounce key and window.
    pub(crate) debounce: Option<&'a (String, Duration)>,
    /// The task's idempotency key (`#[task(idempotency_key = ..)]`).
    pub(crate) idempotency: Option<&'a crate::idempotency::Idempotency>,
    /// The options it was sent with (read for an idempotency key and its
    /// window, over the task's): one pointer, as a call's future holds it.
    pub(crate) options: &'a SendOptions,
}

impl<'a> Target<'a> {
    /// A target for `name` with the per-call `options` over the task's own.
    pub(crate) fn new(name: &'a str, function: Option<&'a str>, capture: bool, retries: Option<u8>, options: &'a SendOptions) -> Self {
        Target {
            name,
            function: options.function.as_deref().or(function),
            capture: options.capture_response.unwrap_or(capture),
            retries: options.retries.or(retries),
            id: options.id.as_deref(),
            run_at_ms: options.run_at.map(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)),
            group: None,
            callback_of: None,
            then: &[],
            debounce: options.debounce.as_ref(),
            idempotency: None,
            options,
        }
    }

    /// The same target with the task's idempotency key, if it has one.
    pub(crate) fn keyed(self, idempotency: Option<&'a crate::idempotency::Idempotency>) -> Self {
        Target { idempotency, ..self }
    }
}

/// The longest delay: EventBridge Scheduler takes one-time schedules well
/// beyond it, but a year is what the README promises and tests.
const MAX_DELAY_MS: u64 = 366 * 86_400_000;

/// Encode one call: its message (signed when signing is on) and the
/// message's bytes, its id and delay checked; arguments too large to send
/// go through S3 when `TASK_PAYLOAD_BUCKET` is set (`Payloads::seal`).
pub(crate) async fn encode(rt: &crate::runtime::Runtime, t: &Target<'_>, args: Args) -> Result<(Envelope, Vec<u8>), DispatchError> {
    encode_as(rt, t, t.id, args, now_ms()).await
}

/// [`encode`] under id `id` (the target's own, or one chosen for it), so
/// that a call's future holds one `Target`, not a copy with another id;
/// sent at `now` (epoch ms), the time its caller read.
async fn encode_as(rt: &crate::runtime::Runtime, t: &Target<'_>, id: Option<&str>, args: Args, now: u64) -> Result<(Envelope, Vec<u8>), DispatchError> {
    let captured = t.capture && rt.store().is_some();
    // The caller's cap: up to the function's own retries, or more from a
    // task that declares them (the runtime sends those itself; SendOptions
    // caps at 2). No cap (a call by name): the task's own, which the worker knows.
    let retries = match t.retries {
        Some(r) if r > 2 => r,
        Some(r) => r.min((rt.config.max_attempts - 1) as u8),
        None => crate::policy::MAX_RETRIES,
    };
    // Checked where it was chosen (`ids::choose`, a group's `send_group`).
    if id.is_some() && !captured {
        return Err(DispatchError::IdNeedsStore { task: t.name.to_owned() });
    }
    let id = id.map_or_else(crate::envelope::new_id, str::to_owned);
    let mut env = Envelope::sent(t.name.to_owned(), id, args, captured, retries, now);
    if let Some(at) = t.run_at_ms
        && at > now.saturating_add(MAX_DELAY_MS)
    {
        let problem = format!("a delay of {} days is over the longest, 366 days", (at - now) / 86_400_000);
        return Err(DispatchError::BadDelay { task: t.name.to_owned(), problem });
    }
    if let Some((key, _)) = t.debounce {
        if !captured {
            return Err(DispatchError::DebounceNeedsStore { task: t.name.to_owned(), key: key.clone() });
        }
        env.debounce = Some(key.clone());
    }
    env.group = t.group.cloned();
    env.callback_of = t.callback_of.map(str::to_owned);
    env.then = t.then.to_vec();
    // The tree of calls and the trace: who sent it, from which trace.
    // Read in place: the running task's context is not cloned for it.
    let (parent, traceparent) = crate::context::with_current(|running| {
        let parent = running.map(|c| c.id.clone());
        // None: the trace the call's id names, which its worker derives.
        let traceparent = || crate::trace::carried(&env.id, running.map(|c| (c.id.as_str(), c.traceparent.as_deref())));
        // With spans exported, the span running now is the parent (the task's, or the caller's own).
        #[cfg(feature = "opentelemetry")]
        let traceparent = || crate::otel::current_traceparent().or_else(traceparent);
        (parent, traceparent())
    });
    env.parent = parent;
    env.traceparent = traceparent;
    // Not boxed: `seal` boxes its S3 path, taken only for a message too large to send.
    let payload = rt.payloads.seal(&mut env, rt.config.signing_key.as_deref()).await.map_err(|e| match e {
        SealError::TooLarge { size, limit } => DispatchError::PayloadTooLarge { task: t.name.to_owned(), size, limit },
        SealError::Payload(source) => DispatchError::Payload { task: t.name.to_owned(), source: Box::new(source) },
    })?;
    Ok((env, payload))
}

pub(crate) async fn dispatch(t: Target<'_>, args: Args) -> Result<Dispatched, DispatchError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().filter(|_| t.capture);
    let now = now_ms();
    // An id the caller chose, or its idempotency key's: claimed before it is sent.
    let chosen = ids::choose(rt, &t, &args, now)?;
    // A debounced call is due a window after it is sent (or later).
    let window_end = t.debounce.map(|(_, window)| now.saturating_add(window.as_millis() as u64));
    let run_at_ms = t.run_at_ms.max(window_end).filter(|at| *at > now);
    // No pending write (`TASK_PENDING_WRITE`, off by default): the worker's
    // `begin` creates the item, as it does whenever it comes first. Not
    // where something needs the item before the invoke: a chosen id's or a
    // key's claim (a group child's id is its group's), a delay's
    // `scheduled`, a debounce's latest, a signed message's digest, a
    // listed call's entry. The call's id is dated (`envelope::new_dated_id`):
    // a poll that finds no item reads it pending until it can no longer be delivered.
    let unwritten = store.is_some()
        && !rt.config.pending_write
        && !rt.config.list_calls
        && run_at_ms.is_none()
        && rt.config.signing_key.is_none()
        && (chosen.is_none() || t.group.is_some());
    let (env, payload) = {
        let dated = (unwritten && chosen.is_none()).then(|| crate::envelope::new_dated_id(now));
        encode_as(rt, &t, chosen.as_ref().map(|c| c.id.as_str()).or(dated.as_deref()), args, now).await?
    };
    let function = rt.config.function_for(t.function);
    let followed = match (function, rt.config.follow_qualifier) {
        (Some(f), true) => crate::context::invoked_function_arn().and_then(|arn| with_callers_qualifier(f, &arn)),
        _ => None,
    };
    let function = followed.as_deref().or(function);
    // The span covers the sends, as an instrumented future: a guard held
    // across `.await` would leave it entered on this thread for whatever
    // else runs there while the send waits.
    let span = tracing::debug_span!("dispatch", task = %t.name, id = %env.id);
    async {
        let digest = rt.config.signing_key.as_ref().map(|_| env.digest());
        // On the heap: the SDK's future inside is several KB (see `crate::aws::boxed`).
        let send = crate::aws::boxed(rt.backend.send(&env, function, payload, run_at_ms));
        let Some(store) = store else {
            send.await?;
            return Ok(Dispatched { id: env.id.clone(), capture: false, existing: false });
        };
        if unwritten {
            send.await?;
            tracing::debug!("dispatched, its item left to the worker");
            return Ok(Dispatched { id: env.id.clone(), capture: true, existing: false });
        }
        let pending = PendingItem {
            id: env.id.clone(),
            task: t.name.to_owned(),
            now_ms: now,
            // Readable until the call can no longer run, and a response TTL after that.
            ttl: crate::store::ttl_after(crate::store::give_up_ms(now, run_at_ms), rt.config.response_ttl),
            run_at_ms,
            digest,
            parent: env.parent.clone(),
        };
        let stored = |source| DispatchError::Store { task: t.name.to_owned(), id: env.id.clone(), source };
        if let Some(key) = &env.debounce {
            // Noted before the send, so that when this call is due it finds itself the latest.
            let ttl = crate::store::ttl_after(crate::store::give_up_ms(now, run_at_ms), rt.config.response_ttl);
            store.note_latest_run(&crate::store::flow::debounce_item(key), &env.id, now, ttl).await.map_err(stored)?;
        }
        if let Some(chosen) = &chosen {
            // A chosen id: record first, send only if this caller created
            // the record, so two sends of one id make one invoke.
            if let Claimed::Held(holder) = store.claim_id(pending, chosen.claim.clone()).await.map_err(stored)? {
                ids::same_call(t.name, chosen, &holder)?;
                tracing::info!(status = %holder.status, "a call with this id exists already: not sent again");
                return Ok(Dispatched { id: env.id.clone(), capture: true, existing: true });
            }
            if let Err(refused) = send.await {
                take_back(store.as_ref(), &env.id).await;
                return Err(refused);
            }
        } else {
            let (written, sent) = tokio::join!(store.put_pending(pending), send);
            if let Err(refused) = sent {
                // Never sent: take the pending item back so nothing reads as
                // pending for a call that does not exist.
                if let Ok(true) = written {
                    take_back(store.as_ref(), &env.id).await;
                }
                return Err(refused);
            }
            // `false` means the worker got there first: fine.
            if let Err(e) = written {
                // Take back what was created: a schedule can be deleted (an
                // invoke cannot; its worker creates the item when it begins).
                // Boxed as the send is: in place, the SDK's DeleteSchedule future
                // made every call's future 5 KB larger, moved at each poll
                // (tests/tests/future_size.rs).
                if run_at_ms.is_some()
                    && let Err(u) = crate::aws::boxed(rt.backend.unschedule(&env.id)).await
                {
                    tracing::warn!(error = %u, "the pending write failed and the schedule could not be deleted: the call may still run");
                }
                return Err(stored(e));
            }
        }
        tracing::debug!("dispatched");
        Ok(Dispatched { id: env.id.clone(), capture: true, existing: false })
    }
    .instrument(span)
    .await
}

/// Remove the pending item of a call whose send was refused.
async fn take_back(store: &dyn crate::store::ResponseStore, id: &str) {
    if let Err(e) = store.discard_pending(id).await {
        tracing::warn!(error = %e, "the invoke failed and its pending item could not be removed; it expires by ttl");
    }
}

/// `target` at the caller's qualifier, when `target` is the caller's own
/// function named without one and the caller was invoked at one
/// (`arn:…:function:NAME:QUALIFIER`); `None` leaves `target` as it is.
fn with_callers_qualifier(target: &str, invoked_arn: &str) -> Option<String> {
    let (own, qualifier) = match invoked_arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, qualifier] if !qualifier.is_empty() => (*name, *qualifier),
        _ => return None,
    };
    let named = match target.split(':').collect::<Vec<_>>().as_slice() {
        [name] | [_, "function", name] | ["arn", _, "lambda", _, _, "function", name] => *name,
        _ => return None, // qualified already, or not a function reference we know
    };
    (named == own).then(|| format!("{target}:{qualifier}"))
}

/// Dispatch a task by name, with JSON args keyed by parameter name, without
/// its Rust types (like Zappa's `run()`).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use task_runtime::{send, SendOptions};
/// let handle = send("pies::make_pie", serde_json::json!({"flavor": "plum", "slices": 6}), SendOptions::default()).await?;
/// let pie: serde_json::Value = handle.wait().await?;
/// # Ok(()) }
/// ```
pub async fn send(task: &str, args: Value, options: SendOptions) -> Result<TaskHandle<Value>, DispatchError> {
    let args = match args {
        Value::Object(map) => map,
        other => return Err(DispatchError::ArgsNotObject { task: task.to_owned(), found: json_type(&other) }),
    };
    let sent = dispatch(Target::new(task, None, true, None, &options), args.into()).await?;
    Ok(TaskHandle::from_dispatched(sent, task.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_for_the_caller_s_own_function_follows_its_qualifier() {
        let live = "arn:aws:lambda:eu-west-1:123456789012:function:worker:live";
        assert_eq!(with_callers_qualifier("worker", live).as_deref(), Some("worker:live"));
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:worker";
        assert_eq!(with_callers_qualifier(arn, live), Some(format!("{arn}:live")));
        assert_eq!(with_callers_qualifier("123456789012:function:worker", live).as_deref(), Some("123456789012:function:worker:live"));
        // Another function, an explicit qualifier, or an unqualified caller: as named.
        assert_eq!(with_callers_qualifier("reports", live), None);
        assert_eq!(with_callers_qualifier("worker:$LATEST", live), None);
        assert_eq!(with_callers_qualifier("worker", arn), None);
    }
}
