//! What a poll returns: [`AsyncResponse`], [`Status`] and [`Failure`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;


/// Where a task is in its life. Serialized lowercase.
///
/// ```
/// use task_runtime::Status;
///
/// let status: Status = "retrying".parse().unwrap();
/// assert_eq!(status, Status::Retrying);
/// assert!(!status.is_finished()); // Lambda will try again
/// assert_eq!(serde_json::to_string(&Status::Complete).unwrap(), r#""complete""#);
/// assert!("done".parse::<Status>().unwrap_err().contains("not one of scheduled, pending"));
/// assert!(Status::Cancelled.is_finished()); // it will never run
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Sent with a delay: it runs at `run_at`, unless cancelled first.
    Scheduled,
    /// Sent; no worker has started it yet.
    Pending,
    /// A worker is running it.
    Running,
    /// An attempt failed with a retryable error; Lambda will try again.
    Retrying,
    /// Finished with a value.
    Complete,
    /// Finished with an error; it will not run again.
    Failed,
    /// Cancelled before it ran ([`crate::cancel`]); it will never run.
    Cancelled,
}

impl Status {
    /// The lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Retrying => "retrying",
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// `complete`, `failed` or `cancelled`: the task will not run (again).
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Complete | Status::Failed | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "scheduled" => Status::Scheduled,
            "pending" => Status::Pending,
            "running" => Status::Running,
            "retrying" => Status::Retrying,
            "complete" => Status::Complete,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            other => {
                return Err(format!(
                    "is {other:?}, not one of scheduled, pending, running, retrying, complete, failed, cancelled (written by a newer version?)"
                ));
            }
        })
    }
}

macro_rules! failure_kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// The stable kind of a failure, stored in `error.kind`.
        ///
        /// Reading is forward compatible: a kind this version does not know
        /// (a newer worker wrote it) is [`FailureKind::Other`] with its text.
        ///
        /// ```
        /// use task_runtime::FailureKind;
        ///
        /// assert_eq!(FailureKind::BadArgs.as_str(), "bad_args");
        /// assert_eq!("unknown_task".parse::<FailureKind>(), Ok(FailureKind::UnknownTask));
        /// assert_eq!(serde_json::to_string(&FailureKind::TooLarge).unwrap(), r#""too_large""#);
        /// // A kind from a newer worker keeps its text.
        /// let newer: FailureKind = serde_json::from_str(r#""quota_exceeded""#).unwrap();
        /// assert_eq!(newer, FailureKind::Other("quota_exceeded".into()));
        /// assert_eq!(newer.as_str(), "quota_exceeded");
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FailureKind {
            $($(#[$doc])* $variant,)*
            /// A kind this version does not know, with its stored text.
            Other(String),
        }
        impl FailureKind {
            /// The stored string, e.g. `"panic"`.
            pub fn as_str(&self) -> &str {
                match self { $(FailureKind::$variant => $text,)* FailureKind::Other(text) => text }
            }
        }
        impl FromStr for FailureKind {
            type Err = std::convert::Infallible;
            /// Never fails: an unknown text is [`FailureKind::Other`].
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($text => FailureKind::$variant,)*
                    other => FailureKind::Other(other.to_owned()),
                })
            }
        }
    };
}

failure_kinds! {
    /// The task returned a retryable error (`TaskError::retry` or `?`).
    Error = "error",
    /// The task returned `TaskError::fail`.
    Failed = "failed",
    /// The task panicked.
    Panic = "panic",
    /// The task ran past its deadline.
    Timeout = "timeout",
    /// The arguments did not decode into the task's parameter types.
    BadArgs = "bad_args",
    /// No task of that name is registered in the worker.
    UnknownTask = "unknown_task",
    /// The envelope is newer than the worker understands.
    UnsupportedVersion = "unsupported_version",
    /// The message carries the marker but does not decode.
    BadEnvelope = "bad_envelope",
    /// The result is larger than the response store accepts.
    TooLarge = "too_large",
    /// The last attempt died without recording an outcome (a crash, an
    /// out-of-memory kill, `Sandbox.Timedout`); Lambda's failure record said so.
    Crashed = "crashed",
    /// The event waited in Lambda's queue past its maximum age
    /// (`EventAgeExceeded`) and was dropped.
    Expired = "expired",
    /// The message's signature did not verify with this worker's key; the
    /// body did not run.
    Refused = "refused",
    /// The call was cancelled before it ran ([`crate::cancel`], or its
    /// group's cancel); how a group's child or a chord's callback reads one.
    Cancelled = "cancelled",
    /// The call's arguments kept in S3 (`TASK_PAYLOAD_BUCKET`) could not be
    /// used: the object is gone, was changed (its SHA-256 differs), is over
    /// `TASK_PAYLOAD_MAX`, or cannot be read. The body did not run.
    BadPayload = "bad_payload",
}

impl From<&str> for FailureKind {
    fn from(text: &str) -> Self {
        text.parse().unwrap_or_else(|never: std::convert::Infallible| match never {})
    }
}

impl Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(FailureKind::from(text.as_ref()))
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored error: a stable kind and a message.
///
/// ```
/// use task_runtime::{Failure, FailureKind};
///
/// let failure = Failure::new(FailureKind::Panic, "dropped the pie");
/// assert_eq!(failure.to_string(), "[panic] dropped the pie");
/// assert_eq!(
///     serde_json::to_value(&failure).unwrap(),
///     serde_json::json!({"kind": "panic", "message": "dropped the pie"}),
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The error's text, with its chain of causes.
    pub message: String,
}

/// The longest failure message kept, in bytes: a longer one is cut, and
/// says so. With the kept message (at most
/// [`MAX_KEPT_MESSAGE_BYTES`](crate::store::MAX_KEPT_MESSAGE_BYTES)) a failed
/// item stays far below DynamoDB's 400 KB, whatever a task raises.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 8 * 1024;

impl Failure {
    /// A failure of `kind` with `message`, cut to [`MAX_FAILURE_MESSAGE_BYTES`].
    ///
    /// ```
    /// use task_runtime::{Failure, FailureKind};
    /// let f = Failure::new(FailureKind::Failed, "x".repeat(1_000_000));
    /// assert!(f.message.len() <= task_runtime::MAX_FAILURE_MESSAGE_BYTES);
    /// assert!(f.message.ends_with("(cut from 1000000 bytes)"), "{}", f.message);
    /// ```
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }.bounded()
    }

    /// The failure with its message cut to [`MAX_FAILURE_MESSAGE_BYTES`]
    /// (at a character boundary), noting the length it had.
    pub fn bounded(mut self) -> Self {
        if self.message.len() > MAX_FAILURE_MESSAGE_BYTES {
            let note = format!("… (cut from {} bytes)", self.message.len());
            let mut end = MAX_FAILURE_MESSAGE_BYTES - note.len();
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            self.message.truncate(end);
            self.message.push_str(&note);
        }
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.kind, self.message)
    }
}

/// The stored outcome of one task call, as [`get_async_response`](crate::poll::get_async_response) returns it.
///
/// It serializes as the JSON a browser can poll:
///
/// ```
/// use task_runtime::{AsyncResponse, FailureKind, Status};
///
/// let polled: AsyncResponse = serde_json::from_value(serde_json::json!({
///     "status": "failed", "response": null,
///     "error": {"kind": "failed", "message": "out of flour"},
///     "task": "bakery::bake", "attempts": 1,
///     "created_at": 1763900000000u64, "updated_at": 1763900000150u64,
/// })).unwrap(); // `stale` may be left out: it reads as false
/// assert!(!polled.stale);
/// assert_eq!(polled.status, Status::Failed);
/// assert_eq!(polled.error.unwrap().kind, FailureKind::Failed);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncResponse {
    /// Where the task is.
    pub status: Status,
    /// The task's value, once `complete`.
    pub response: Option<Value>,
    /// The last error, when `retrying` or `failed`.
    pub error: Option<Failure>,
    /// The task name.
    pub task: String,
    /// Attempts started so far (0 while `pending`).
    pub attempts: u32,
    /// When the call was recorded, epoch milliseconds.
    pub created_at: u64,
    /// When the record last changed, epoch milliseconds.
    pub updated_at: u64,
    /// When a delayed call is due, epoch milliseconds; for a call its retry
    /// policy re-sends, when its latest attempt is (`retrying`: the next
    /// one) or was due. `None` for a call sent without a delay and never re-sent.
    #[serde(default)]
    pub run_at: Option<u64>,
    /// Not ended, and nothing will run it: `running` on the last attempt
    /// Lambda allows with its lease lapsed (its heartbeat stopped), or still
    /// waiting (pending, scheduled, retrying) when Lambda can no longer run
    /// its event (`TASK_EVENT_LIFE_SECS` after it was sent or due; e.g. its
    /// failure record came without the `requestPayload` that names it).
    /// Lambda's failure record, when the function has a failure destination,
    /// ends such a call as `failed`; until then a poll says it is stale, and
    /// [`TaskHandle::wait`](crate::TaskHandle::wait) stops with
    /// [`WaitError::Stale`](crate::WaitError::Stale) instead of spinning.
    #[serde(default)]
    pub stale: bool,
    /// The call that sent this one: the task that was running where it was
    /// sent (the step before, for a chain's step; the
    /// call that sent the group, for its callback). `None` for a call sent from outside a task.
    /// `tasks tree ID` draws the calls under one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}
