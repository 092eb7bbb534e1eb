//! [`SendOptions`]: how one call is sent (its function, id, idempotency
//! key, delay, debounce).

use std::time::{Duration, SystemTime};

/// Options for [`send`](crate::send), and a `#[task]`'s `send_with`.
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
    /// ([`TaskHandle::is_existing`](crate::TaskHandle::is_existing)) when it is the same call, its task and
    /// arguments the same; otherwise it is
    /// [`DispatchError::IdTaken`](crate::DispatchError::IdTaken), naming
    /// what differs. Needs the response store.
    pub id: Option<String>,
    /// When the call should run; until then it reads `scheduled`. On AWS it
    /// goes through EventBridge Scheduler (`TASK_SCHEDULER_ROLE_ARN`); on the
    /// local backend it is a timer. At most 366 days ahead.
    pub run_at: Option<SystemTime>,
    /// A debounce key and its window: of the calls sent with one key within
    /// the window, only the latest runs. See [`SendOptions::debounce`].
    pub debounce: Option<(String, Duration)>,
    /// An idempotency key: every send with it, within its window, is one
    /// call. See [`SendOptions::idempotency_key`].
    pub idempotency_key: Option<String>,
    /// The idempotency key's window, over the task's own
    /// (`idempotency_window`; 24 hours by default).
    pub idempotency_window: Option<Duration>,
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
    /// An idempotency key, over the task's own (`#[task(idempotency_key = ..)]`):
    /// the call's id is made from the task and the key
    /// ([`idempotency::id_for`](crate::idempotency::id_for)), so every send
    /// with it within the window ([`idempotency_window`](Self::idempotency_window),
    /// 24 hours by default) returns a handle to the first call
    /// ([`TaskHandle::is_existing`](crate::TaskHandle::is_existing) on the later ones), whose `wait` gives
    /// the first call's result or its failure; the first call alone runs.
    /// Its arguments are not compared: a key says "this is the same call"
    /// (an explicit [`id`](Self::id) compares them). Needs the response store.
    ///
    /// After the window, and once the first call can no longer be delivered
    /// (`TASK_EVENT_LIFE_SECS` past its send) and is not running, a send
    /// with the key is a new call under the same id. An [`id`](Self::id)
    /// set too wins over a key.
    ///
    /// ```
    /// use std::time::Duration;
    /// use task_runtime::SendOptions;
    /// let once = SendOptions::default().idempotency_key("charge:order-1234").idempotency_window(Duration::from_secs(3600));
    /// assert_eq!(once.idempotency_key.as_deref(), Some("charge:order-1234"));
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
    /// How long, from the first send, an idempotency key is one call (at
    /// most the response TTL, `TASK_RESPONSE_TTL_SECS`: the call's item is
    /// where the key is kept).
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = Some(window);
        self
    }
    /// Run the call at `when` (now, if it is past).
    pub fn at(mut self, when: SystemTime) -> Self {
        self.run_at = Some(when);
        self
    }
}

