//! Where a retry is decided: the retry table, as one function.
//!
//! | task returns | stored | told to Lambda |
//! |---|---|---|
//! | `Ok(v)` / a value | `complete`, `response = v` | success |
//! | `TaskError::retry`, `?` on an error, attempts left | `retrying` | error `TaskRetry`: Lambda retries |
//! | the same, with a retry policy or `TaskError::retry_after` | `retrying`, `run_at_ms` | success: the runtime sends it again at `run_at_ms` |
//! | the same, last attempt | `failed` | error `TaskFailed` (reaches the DLQ) |
//! | `TaskError::fail` | `failed` | success: no retry |
//! | panic | `failed`, kind `panic` | success: no retry |
//! | deadline reached, attempts left / last | `retrying` / `failed`, kind `timeout` | error `TaskTimeout` |
//! | result too large for the store | `failed`, kind `too_large` | success |
//!
//! Messages that cannot run (bad args, unknown task, newer envelope) are
//! `failed` with their kind and told to Lambda as success; see [`crate::worker`].

use std::time::Duration;

use serde_json::Value;

use crate::error::{TaskError, error_type};
use crate::policy::RetryPolicy;
use crate::response::{Failure, FailureKind};
use crate::store::FinalState;
#[cfg(test)]
use crate::store::MAX_RESPONSE_BYTES;

/// How one run of a task body ended.
#[derive(Debug)]
pub(crate) enum RunResult {
    Value(Value),
    Error(TaskError),
    Panic(String),
    Timeout(Duration),
    BadArgs(crate::registry::ArgsError),
}

/// What the worker tells Lambda about an invocation; [`crate::reply_to_result`]
/// turns it into what lambda_runtime sends.
///
/// ```
/// use task_runtime::{error_type, reply_to_result, Reply};
///
/// let retry = Reply::Error { error_type: error_type::RETRY, message: "oven cold".into() };
/// let diagnostic = reply_to_result(retry).unwrap_err();
/// assert_eq!(diagnostic.error_type, "TaskRetry"); // Lambda retries the event
/// assert!(reply_to_result(Reply::Success(serde_json::json!({"status": "complete"}))).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Success: Lambda does not retry. The body summarises what happened.
    Success(Value),
    /// A function error: Lambda retries while it has attempts.
    Error {
        /// A stable `errorType`, one of [`error_type`].
        error_type: &'static str,
        /// The error message.
        message: String,
    },
}

/// The decision for one finished run: what to store, and whether to ask for a retry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) state: FinalState,
    /// `Some(errorType)` when Lambda should be told of an error.
    pub(crate) error_type: Option<&'static str>,
    /// With `Retrying`: the runtime sends the call again after this long
    /// (its retry policy, or the body's `retry_after`), not Lambda.
    pub(crate) resend_in: Option<Duration>,
}

/// Decide. `attempt` is this attempt's number when known (from the store or
/// the local queue); `max_attempts` already includes the task's own cap.
/// `policy` is the task's retry policy when the runtime sends its retries
/// itself: a returned error is then re-sent after the policy's backoff (or
/// the error's own `retry_after`), while timeouts stay Lambda's to retry.
pub(crate) fn decide(result: RunResult, attempt: Option<u32>, max_attempts: u32, policy: Option<&RetryPolicy>) -> Decision {
    let whole = decide_whole(result, attempt, max_attempts, policy);
    Decision { state: crate::store::payloads::fit(whole.state), ..whole }
}

/// [`decide`], with the result and the failure's message whole, however
/// large: the worker keeps what is too large for the item in S3
/// (`store/payloads.rs`, `Payloads::place`), or cuts it as `decide` does.
pub(crate) fn decide_whole(result: RunResult, attempt: Option<u32>, max_attempts: u32, policy: Option<&RetryPolicy>) -> Decision {
    let whole = |kind, message: String| Failure { kind, message };
    let last = attempt.is_some_and(|a| a >= max_attempts);
    let retryable = |failure: Failure, retry_type: &'static str, resend_in: Option<Duration>| {
        if last {
            let error_type = if retry_type == error_type::TIMEOUT { retry_type } else { error_type::FAILED };
            Decision { state: FinalState::Failed(failure), error_type: Some(error_type), resend_in: None }
        } else if let (Some(after), Some(_)) = (resend_in, attempt) {
            // Re-sent by the runtime; Lambda is told success so that it does not retry too.
            Decision { state: FinalState::Retrying(failure), error_type: None, resend_in: Some(after) }
        } else {
            Decision { state: FinalState::Retrying(failure), error_type: Some(retry_type), resend_in: None }
        }
    };
    match result {
        RunResult::Value(v) => Decision { state: FinalState::Complete(v.to_string()), error_type: None, resend_in: None },
        RunResult::Error(e) if e.is_retryable() => {
            let gap = e.retry_delay().or_else(|| policy.map(|p| p.delay(attempt.unwrap_or(1), crate::policy::unit_draw())));
            retryable(whole(FailureKind::Error, e.message()), error_type::RETRY, gap)
        }
        RunResult::Error(e) => permanent(whole(FailureKind::Failed, e.message())),
        RunResult::BadArgs(e) => permanent(Failure::new(FailureKind::BadArgs, e.to_string())),
        RunResult::Panic(msg) => permanent(whole(FailureKind::Panic, format!("the task panicked: {msg}"))),
        RunResult::Timeout(after) => retryable(
            Failure::new(FailureKind::Timeout, format!("the task was still running at its deadline, after {:.1}s", after.as_secs_f64())),
            error_type::TIMEOUT,
            None,
        ),
    }
}

/// A failure no retry can fix: stored `failed`, Lambda told success.
pub(crate) fn permanent(failure: Failure) -> Decision {
    Decision { state: FinalState::Failed(failure), error_type: None, resend_in: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Status;

    fn status(d: &Decision) -> (Status, Option<&'static str>) {
        (d.state.status(), d.error_type)
    }

    #[test]
    fn a_response_of_exactly_the_store_s_limit_is_kept_and_one_byte_more_is_too_large() {
        // A JSON string's text is its characters and two quotes.
        let at_limit = serde_json::Value::String("x".repeat(MAX_RESPONSE_BYTES - 2));
        assert!(matches!(decide(RunResult::Value(at_limit), Some(1), 3, None).state, FinalState::Complete(ref t) if t.len() == MAX_RESPONSE_BYTES));
        let over = serde_json::Value::String("x".repeat(MAX_RESPONSE_BYTES - 1));
        assert!(matches!(decide(RunResult::Value(over), Some(1), 3, None).state, FinalState::Failed(ref f) if f.kind == FailureKind::TooLarge));
    }

    #[test]
    fn the_retry_table() {
        let v = decide(RunResult::Value(serde_json::json!({"ok": 1})), Some(1), 3, None);
        assert_eq!(status(&v), (Status::Complete, None));
        let r = decide(RunResult::Error(TaskError::retry("x")), Some(1), 3, None);
        assert_eq!(status(&r), (Status::Retrying, Some(error_type::RETRY)));
        let last = decide(RunResult::Error(TaskError::retry("x")), Some(3), 3, None);
        assert_eq!(status(&last), (Status::Failed, Some(error_type::FAILED)));
        let unknown = decide(RunResult::Error(TaskError::retry("x")), None, 3, None);
        assert_eq!(status(&unknown), (Status::Retrying, Some(error_type::RETRY)));
        let f = decide(RunResult::Error(TaskError::fail("x")), Some(1), 3, None);
        assert_eq!(status(&f), (Status::Failed, None));
        let p = decide(RunResult::Panic("boom".into()), Some(1), 3, None);
        assert_eq!(status(&p), (Status::Failed, None));
        let t = decide(RunResult::Timeout(Duration::from_secs(3)), Some(1), 3, None);
        assert_eq!(status(&t), (Status::Retrying, Some(error_type::TIMEOUT)));
        let t3 = decide(RunResult::Timeout(Duration::from_secs(3)), Some(3), 3, None);
        assert_eq!(status(&t3), (Status::Failed, Some(error_type::TIMEOUT)));
        let big = decide(RunResult::Value(Value::String("x".repeat(MAX_RESPONSE_BYTES))), Some(1), 3, None);
        assert!(matches!(big.state, FinalState::Failed(ref f) if f.kind == FailureKind::TooLarge), "{big:?}");
        assert_eq!(big.error_type, None);
    }

    #[test]
    fn with_a_policy_the_runtime_resends_returned_errors_and_lambda_keeps_timeouts() {
        let exact = RetryPolicy { backoff_ms: Some(100), backoff_max_ms: None, jitter: false };
        let second = decide(RunResult::Error(TaskError::retry("x")), Some(2), 9, Some(&exact));
        assert_eq!((status(&second), second.resend_in), ((Status::Retrying, None), Some(Duration::from_millis(200))));
        // The body's own delay wins, with or without a policy.
        let after = decide(RunResult::Error(TaskError::retry_after(Duration::from_secs(30), "429")), Some(1), 3, None);
        assert_eq!((status(&after), after.resend_in), ((Status::Retrying, None), Some(Duration::from_secs(30))));
        // The last attempt is the last, whoever would send the next.
        let last = decide(RunResult::Error(TaskError::retry("x")), Some(9), 9, Some(&exact));
        assert_eq!((status(&last), last.resend_in), ((Status::Failed, Some(error_type::FAILED)), None));
        // A timeout is Lambda's to retry.
        let t = decide(RunResult::Timeout(Duration::from_secs(3)), Some(1), 9, Some(&exact));
        assert_eq!((status(&t), t.resend_in), ((Status::Retrying, Some(error_type::TIMEOUT)), None));
        // With no count of attempts (no store) nothing can be re-sent under the same id.
        let blind = decide(RunResult::Error(TaskError::retry("x")), None, 9, Some(&exact));
        assert_eq!((status(&blind), blind.resend_in), ((Status::Retrying, Some(error_type::RETRY)), None));
    }
}
