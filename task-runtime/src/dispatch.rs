//! The caller side: encode the call, record it as pending, and send it.
//! The pending write and the invoke run concurrently, except for an id the
//! caller chose: then the conditional pending write comes first, and only
//! the caller that created it sends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::Instrument;

use crate::envelope::{Envelope, GroupRef, NextStep};
use crate::error::DispatchError;
use crate::handle::{Dispatched, TaskHandle};
use crate::store::PendingItem;
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
        }
    }
}

/// The longest delay: EventBridge Scheduler takes one-time schedules well
/// beyond it, but a year is what the README promises and tests.
const MAX_DELAY_MS: u64 = 366 * 86_400_000;
/// The longest caller-chosen id (DynamoDB allows 2048 bytes in a key).
const MAX_ID_BYTES: usize = 512;

/// Encode one call: its message (signed when signing is on) and the
/// message's bytes, its id and delay checked; arguments too large to send
/// go through S3 when `TASK_PAYLOAD_BUCKET` is set (`Payloads::seal`).
pub(crate) async fn encode(rt: &crate::runtime::Runtime, t: &Target<'_>, args: Map<String, Value>) -> Result<(Envelope, Vec<u8>), DispatchError> {
    let captured = t.capture && rt.store().is_some();
    // The caller's cap: up to the function's own retries, or more from a
    // task that declares them (the runtime sends those itself; SendOptions
    // caps at 2). No cap (a call by name): the task's own, which the worker knows.
    let retries = match t.retries {
        Some(r) if r > 2 => r,
        Some(r) => r.min((rt.config.max_attempts - 1) as u8),
        None => crate::policy::MAX_RETRIES,
    };
    let mut env = Envelope::new(t.name, args, captured, retries);
    if let Some(id) = t.id {
        check_id(t.name, id)?;
        if !captured {
            return Err(DispatchError::IdNeedsStore { task: t.name.to_owned() });
        }
        env.id = id.to_owned();
    }
    let now = now_ms();
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
        let traceparent = || crate::trace::outgoing(&env.id, running.map(|c| (c.id.as_str(), c.traceparent.as_deref()))).to_string();
        // With spans exported, the span running now is the parent (the task's, or the caller's own).
        #[cfg(feature = "opentelemetry")]
        let traceparent = || crate::otel::current_traceparent().unwrap_or_else(traceparent);
        (parent, traceparent())
    });
    env.parent = parent;
    env.traceparent = Some(traceparent);
    // Not boxed: `seal` boxes its S3 path, taken only for a message too large to send.
    let payload = rt.payloads.seal(&mut env, rt.config.signing_key.as_deref()).await.map_err(|e| match e {
        SealError::TooLarge { size, limit } => DispatchError::PayloadTooLarge { task: t.name.to_owned(), size, limit },
        SealError::Payload(source) => DispatchError::Payload { task: t.name.to_owned(), source: Box::new(source) },
    })?;
    Ok((env, payload))
}

pub(crate) async fn dispatch(t: Target<'_>, args: Map<String, Value>) -> Result<Dispatched, DispatchError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().filter(|_| t.capture);
    let (env, payload) = encode(rt, &t, args).await?;
    let now = now_ms();
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
        // A debounced call is due a window after it is sent (or later).
        let window_end = t.debounce.map(|(_, window)| now.saturating_add(window.as_millis() as u64));
        let run_at_ms = t.run_at_ms.max(window_end).filter(|at| *at > now);
        let digest = rt.config.signing_key.as_ref().map(|_| env.digest());
        // On the heap: the SDK's future inside is several KB (see `crate::aws::boxed`).
        let send = crate::aws::boxed(rt.backend.send(&env, function, payload, run_at_ms));
        let Some(store) = store else {
            send.await?;
            return Ok(Dispatched { id: env.id.clone(), capture: false, existing: false });
        };
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
        if t.id.is_some() {
            // A caller-chosen id: record first, send only if this caller created
            // the record, so two sends of one id make one invoke.
            if !store.put_pending(pending).await.map_err(|source| DispatchError::Store { task: t.name.to_owned(), id: env.id.clone(), source })? {
                tracing::info!("a call with this id exists already: not sent again");
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

/// A caller-chosen id: not empty, at most 512 bytes, no control characters,
/// not one of the runtime's own (`latest:…`, `schedule:…`).
pub(crate) fn check_id(task: &str, id: &str) -> Result<(), DispatchError> {
    let problem = if id.is_empty() {
        "is empty"
    } else if id.len() > MAX_ID_BYTES {
        "is longer than 512 bytes"
    } else if id.chars().any(char::is_control) {
        "holds a control character"
    } else if id.starts_with("latest:") || id.starts_with("schedule:") || id.starts_with("group:") {
        // The runtime's own ids: the latest run of a schedule, its runs, and groups' records.
        "starts with `latest:`, `schedule:` or `group:`, which the runtime keeps for schedules and groups"
    } else {
        return Ok(());
    };
    Err(DispatchError::BadId { task: task.to_owned(), id: id.to_owned(), problem })
}

/// What kind of JSON value `v` is, for an error that names it.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Options for [`send`].
///
/// ```
/// use task_runtime::SendOptions;
///
/// use std::time::Duration;
///
/// let options = SendOptions::default().function("reports-worker").retries(5).capture_response(false);
/// assert_eq!(options.retries, Some(2)); // Lambda retries an async event at most twice
/// assert_eq!(options.function.as_deref(), Some("reports-worker"));
///
/// // Run in ten minutes, once: a second send of this id (an API Gateway
/// // retry of the web request, say) finds the first call and sends nothing.
/// let later = SendOptions::default().delay(Duration::from_secs(600)).id("order-1234-receipt");
/// assert!(later.run_at.is_some());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// The function to invoke, in place of the configured default.
    pub function: Option<String>,
    /// Write the outcome to the store (default `true`).
    pub capture_response: Option<bool>,
    /// The most retries to allow (0-2; default 2).
    pub retries: Option<u8>,
    /// The call's id, chosen by the caller: sending an id that exists
    /// already sends nothing and returns a handle to the existing call
    /// ([`TaskHandle::is_existing`]). Needs the response store.
    pub id: Option<String>,
    /// When the call should run; until then it reads `scheduled`. On AWS it
    /// goes through EventBridge Scheduler (`TASK_SCHEDULER_ROLE_ARN`); on the
    /// local backend it is a timer. At most 366 days ahead.
    pub run_at: Option<SystemTime>,
    /// A debounce key and its window: of the calls sent with one key within
    /// the window, only the latest runs. See [`SendOptions::debounce`].
    pub debounce: Option<(String, Duration)>,
}

impl SendOptions {
    /// Invoke `function` instead of the default.
    pub fn function(mut self, function: impl Into<String>) -> Self {
        self.function = Some(function.into());
        self
    }
    /// Whether to capture the response.
    pub fn capture_response(mut self, capture: bool) -> Self {
        self.capture_response = Some(capture);
        self
    }
    /// Cap the retries (0-2).
    pub fn retries(mut self, retries: u8) -> Self {
        self.retries = Some(retries.min(2));
        self
    }
    /// Use this id for the call (idempotent enqueueing).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Run the call after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(SystemTime::now() + delay);
        self
    }
    /// Debounce: the call is due `window` after it is sent, and runs only
    /// if no later call was sent with `key` by then; the earlier ones end
    /// `cancelled` when they come due. Needs the response store.
    ///
    /// Each send notes itself the key's latest (one write, the item
    /// `latest:debounce:KEY`) and is sent delayed (on AWS one EventBridge
    /// Scheduler schedule, with its 60-second precision); each call reads the
    /// key when it is due (one read), and a superseded one ends `cancelled`
    /// (one write) without running.
    ///
    /// ```
    /// use std::time::Duration;
    /// use task_runtime::SendOptions;
    /// let options = SendOptions::default().debounce("reindex:shop-7", Duration::from_secs(30));
    /// assert_eq!(options.debounce.as_ref().map(|(k, _)| k.as_str()), Some("reindex:shop-7"));
    /// ```
    pub fn debounce(mut self, key: impl Into<String>, window: Duration) -> Self {
        self.debounce = Some((key.into(), window));
        self
    }
    /// Run the call at `when` (now, if it is past).
    pub fn at(mut self, when: SystemTime) -> Self {
        self.run_at = Some(when);
        self
    }
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
    let sent = dispatch(Target::new(task, None, true, None, &options), args).await?;
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

    #[test]
    fn ids_are_checked() {
        assert!(check_id("t", "order-7").is_ok());
        for bad in ["", "a\nb", &"x".repeat(513), "latest:reports", "schedule:reports:2026-11-30T00:00:00Z", "group:g"] {
            assert!(matches!(check_id("t", bad), Err(DispatchError::BadId { .. })), "{bad:?}");
        }
    }
}
