//! Lambda's asynchronous invocation records: what Lambda sends to a
//! function's on-failure destination when it gives up on an event.
//!
//! ```json
//! {"version": "1.0", "timestamp": "2026-11-27T10:00:00.000Z",
//!  "requestContext": {"requestId": "8f0e…", "functionArn": "arn:aws:lambda:…:function:worker:$LATEST",
//!                     "condition": "RetriesExhausted", "approximateInvokeCount": 3},
//!  "requestPayload": {"task_runtime": 1, "task": "…", "id": "…", …},
//!  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
//!  "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "…"}}
//! ```
//!
//! A record reaches the worker directly (a Lambda destination) or inside SQS
//! messages (an SQS destination read by an event source mapping). Only
//! records whose `requestPayload` is a task message are the worker's; any
//! other record, or an SQS batch that holds anything else, goes to the
//! function's own handler. [`crate::worker::Worker`] turns each record into
//! a terminal state for its call.

use serde_json::Value;

use super::MARKER;
use crate::error::error_type;
use crate::response::{Failure, FailureKind};

/// One failure record whose request was a task message.
///
/// ```
/// use task_runtime::envelope::failure_record::FailureRecord;
/// use task_runtime::FailureKind;
///
/// let event = serde_json::json!({
///     "version": "1.0",
///     "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
///     "requestPayload": {"task_runtime": 1, "task": "bake", "id": "42", "args": {}},
///     "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"},
/// });
/// let record = FailureRecord::from_value(&event).expect("a record of a task message");
/// assert_eq!(record.failure().kind, FailureKind::Crashed);
/// assert!(record.failure().message.contains("Runtime.ExitError: signal: killed"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRecord {
    /// `RetriesExhausted` or `EventAgeExceeded`.
    pub condition: String,
    /// The request id of the dropped event.
    pub request_id: String,
    /// How many times Lambda invoked the function with the event.
    pub approximate_invoke_count: u32,
    /// The original task message.
    pub request_payload: Value,
    /// The last attempt's error (`responsePayload`), when it had one.
    pub last_error: Option<LastError>,
    /// The SQS message the record came in, when it came through SQS.
    pub sqs_message_id: Option<String>,
}

/// The last attempt's error, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// `errorType`, e.g. `Runtime.ExitError`, `Sandbox.Timedout`, `TaskRetry`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
}

impl FailureRecord {
    /// A record, when `value` is an asynchronous invocation record whose
    /// request was a task message; `None` for anything else.
    pub fn from_value(value: &Value) -> Option<FailureRecord> {
        let ctx = value.get("requestContext")?.as_object()?;
        let condition = ctx.get("condition")?.as_str()?;
        let payload = value.get("requestPayload")?;
        payload.as_object()?.get(MARKER)?;
        let last_error = value.get("responsePayload").and_then(Value::as_object).map(|e| LastError {
            error_type: e.get("errorType").and_then(Value::as_str).unwrap_or("Unknown").to_owned(),
            error_message: e.get("errorMessage").and_then(Value::as_str).unwrap_or("").to_owned(),
        });
        Some(FailureRecord {
            condition: condition.to_owned(),
            request_id: ctx.get("requestId").and_then(Value::as_str).unwrap_or("").to_owned(),
            approximate_invoke_count: ctx
                .get("approximateInvokeCount")
                .and_then(Value::as_u64)
                .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
            request_payload: payload.clone(),
            last_error,
            sqs_message_id: None,
        })
    }

    /// The records of an SQS batch, when every message's body is a failure
    /// record of a task message; `None` when the event is not an SQS batch
    /// or any message is something else (the batch is the handler's then).
    ///
    /// ```
    /// use task_runtime::envelope::failure_record::FailureRecord;
    ///
    /// let record = serde_json::json!({
    ///     "requestContext": {"requestId": "r-1", "condition": "EventAgeExceeded", "approximateInvokeCount": 1},
    ///     "requestPayload": {"task_runtime": 1, "task": "bake", "id": "42", "args": {}},
    /// });
    /// let batch = serde_json::json!({"Records": [
    ///     {"messageId": "m-1", "eventSource": "aws:sqs", "body": record.to_string()},
    /// ]});
    /// let records = FailureRecord::from_sqs_batch(&batch).expect("one record");
    /// assert_eq!(records[0].sqs_message_id.as_deref(), Some("m-1"));
    ///
    /// let mixed = serde_json::json!({"Records": [
    ///     {"messageId": "m-1", "eventSource": "aws:sqs", "body": record.to_string()},
    ///     {"messageId": "m-2", "eventSource": "aws:sqs", "body": "an order"},
    /// ]});
    /// assert!(FailureRecord::from_sqs_batch(&mixed).is_none()); // the handler's
    /// ```
    pub fn from_sqs_batch(value: &Value) -> Option<Vec<FailureRecord>> {
        let messages = value.get("Records")?.as_array()?;
        if messages.is_empty() {
            return None;
        }
        messages
            .iter()
            .map(|m| {
                if m.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
                    return None;
                }
                let body: Value = serde_json::from_str(m.get("body")?.as_str()?).ok()?;
                let mut record = FailureRecord::from_value(&body)?;
                record.sqs_message_id = Some(m.get("messageId").and_then(Value::as_str).unwrap_or("").to_owned());
                Some(record)
            })
            .collect()
    }

    /// The terminal failure this record means for its call:
    /// - `EventAgeExceeded`: kind `expired`;
    /// - the last attempt returned one of the worker's own retryable errors
    ///   (`TaskRetry`, `TaskFailed`; the stored count had fallen behind
    ///   Lambda's): kind `error`; `TaskTimeout`: kind `timeout`;
    /// - anything else (`Runtime.ExitError`, `Sandbox.Timedout`, out of
    ///   memory, `TaskStoreError`, no error at all): kind `crashed`.
    ///
    /// The message names the condition, the attempts and the last error.
    pub fn failure(&self) -> Failure {
        let attempts = self.approximate_invoke_count;
        let last = self
            .last_error
            .as_ref()
            .map(|e| format!("; the last attempt ended with {}: {}", e.error_type, e.error_message))
            .unwrap_or_default();
        let kind = match (self.condition.as_str(), self.last_error.as_ref().map(|e| e.error_type.as_str())) {
            ("EventAgeExceeded", _) => FailureKind::Expired,
            (_, Some(error_type::RETRY | error_type::FAILED)) => FailureKind::Error,
            (_, Some(error_type::TIMEOUT)) => FailureKind::Timeout,
            _ => FailureKind::Crashed,
        };
        let why = match self.condition.as_str() {
            "EventAgeExceeded" => "it waited in the queue past the function's maximum event age",
            "RetriesExhausted" => "no retries were left",
            _ => "for a reason this version does not know",
        };
        Failure::new(kind, format!("Lambda gave up on the event after {attempts} attempt(s): {why} ({}){last}", self.condition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(condition: &str, error_type: Option<&str>) -> Value {
        let mut v = json!({
            "version": "1.0",
            "requestContext": {"requestId": "r", "functionArn": "arn", "condition": condition, "approximateInvokeCount": 3},
            "requestPayload": {"task_runtime": 1, "task": "t", "id": "1", "args": {}},
        });
        if let Some(t) = error_type {
            v["responsePayload"] = json!({"errorType": t, "errorMessage": "m"});
        }
        v
    }

    #[test]
    fn kinds_follow_the_condition_and_the_last_error() {
        let kind = |c, t| FailureRecord::from_value(&record(c, t)).map(|r| r.failure().kind);
        assert_eq!(kind("EventAgeExceeded", None), Some(FailureKind::Expired));
        assert_eq!(kind("EventAgeExceeded", Some("TaskRetry")), Some(FailureKind::Expired));
        assert_eq!(kind("RetriesExhausted", Some("Runtime.ExitError")), Some(FailureKind::Crashed));
        assert_eq!(kind("RetriesExhausted", Some("Sandbox.Timedout")), Some(FailureKind::Crashed));
        assert_eq!(kind("RetriesExhausted", Some("TaskRetry")), Some(FailureKind::Error));
        assert_eq!(kind("RetriesExhausted", Some("TaskTimeout")), Some(FailureKind::Timeout));
        assert_eq!(kind("RetriesExhausted", None), Some(FailureKind::Crashed));
        assert_eq!(kind("SomethingNew", Some("X")), Some(FailureKind::Crashed));
    }

    #[test]
    fn records_of_other_events_are_not_the_worker_s() {
        let mut other = record("RetriesExhausted", None);
        other["requestPayload"] = json!({"order": 7});
        assert_eq!(FailureRecord::from_value(&other), None);
        assert_eq!(FailureRecord::from_value(&json!({"requestContext": {}})), None);
        assert_eq!(FailureRecord::from_sqs_batch(&json!({"Records": []})), None);
        let not_sqs = json!({"Records": [{"eventSource": "aws:s3", "body": record("RetriesExhausted", None).to_string()}]});
        assert_eq!(FailureRecord::from_sqs_batch(&not_sqs), None);
    }
}
