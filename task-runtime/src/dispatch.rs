//! The caller side: encode the call, record it as pending, and send it.
//! The pending write and the invoke run concurrently, never one after the other.

use serde_json::{Map, Value};

use crate::envelope::Envelope;
use crate::error::DispatchError;
use crate::handle::TaskHandle;
use crate::store::PendingItem;
use crate::time::now_ms;

/// Where and how one call is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) name: &'a str,
    pub(crate) function: Option<&'a str>,
    pub(crate) capture: bool,
    pub(crate) retries: Option<u8>,
}

/// Send one call; returns its id and whether its response is captured.
pub(crate) async fn dispatch(t: Target<'_>, args: Map<String, Value>) -> Result<(String, bool), DispatchError> {
    let rt = crate::runtime::runtime()?;
    let store = rt.store().filter(|_| t.capture);
    let retries = t.retries.unwrap_or(2).min((rt.config.max_attempts - 1) as u8);
    let mut env = Envelope::new(t.name, args, store.is_some(), retries);
    if let Some(key) = &rt.config.signing_key {
        env.sign(key);
    }
    let payload = env
        .to_payload()
        .map_err(|(size, limit)| DispatchError::PayloadTooLarge { task: t.name.to_owned(), size, limit })?;
    let function = t.function.or(rt.config.function.as_deref());
    let span = tracing::debug_span!("dispatch", task = %t.name, id = %env.id);
    let _enter = span.enter();
    match store {
        None => rt.backend.send(&env, function, payload).await?,
        Some(store) => {
            let now = now_ms();
            let pending = PendingItem {
                id: env.id.clone(),
                task: t.name.to_owned(),
                now_ms: now,
                ttl: now / 1000 + rt.config.response_ttl.as_secs(),
                digest: rt.config.signing_key.as_ref().map(|_| crate::envelope::payload_digest(&payload)),
            };
            let (written, sent) = tokio::join!(store.put_pending(pending), rt.backend.send(&env, function, payload));
            if let Err(refused) = sent {
                // Never sent: take the pending item back so nothing reads as
                // pending for a call that does not exist.
                if let Ok(true) = written
                    && let Err(e) = store.discard_pending(&env.id).await
                {
                    tracing::warn!(error = %e, "the invoke failed and its pending item could not be removed; it expires by ttl");
                }
                return Err(refused);
            }
            // `false` means the worker got there first: fine.
            written.map_err(|source| DispatchError::Store { task: t.name.to_owned(), id: env.id.clone(), source })?;
        }
    }
    tracing::debug!("dispatched");
    Ok((env.id, env.capture))
}

/// Options for [`send`].
///
/// ```
/// use task_runtime::SendOptions;
///
/// let options = SendOptions::default().function("reports-worker").retries(5).capture_response(false);
/// assert_eq!(options.retries, Some(2)); // Lambda retries an async event at most twice
/// assert_eq!(options.function.as_deref(), Some("reports-worker"));
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
        other => {
            let found = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            return Err(DispatchError::ArgsNotObject { task: task.to_owned(), found });
        }
    };
    let target = Target {
        name: task,
        function: options.function.as_deref(),
        capture: options.capture_response.unwrap_or(true),
        retries: options.retries,
    };
    let (id, captured) = dispatch(target, args).await?;
    Ok(TaskHandle::from_parts(id, task.to_owned(), captured))
}
