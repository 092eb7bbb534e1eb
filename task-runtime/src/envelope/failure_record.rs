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
//! messages (an SQS destination read by an event source mapping). The
//! destination is the function's, so it receives the records of *all* its
//! events: task messages, and the events of its `#[on_event]` handlers.
//! - Directly: a record of a task message, or one without a
//!   `requestPayload` (Lambda leaves it out when request and response are
//!   over the destination's limit), is the worker's; any other record goes
//!   to the function's own handler.
//! - Through SQS: a batch whose every message is a record is the worker's.
//!   Each message is answered on its own (`batchItemFailures`): a task
//!   record ends its call; any other record is logged and left in the queue,
//!   whose redrive policy moves it to the dead-letter queue, so that it never
//!   blocks the others and nothing is lost.
//!
//! [`crate::worker::Worker`] turns each task record into a terminal state
//! for its call. See
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>
//! and <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>.

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
    /// The original event: a task message, another event of the function,
    /// or `None` when Lambda left it out (request and response were over
    /// the destination's limit).
    pub request_payload: Option<Value>,
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
    /// request was a task message or was left out; `None` for anything else
    /// (a record of another event is the function's handler's).
    pub fn from_value(value: &Value) -> Option<FailureRecord> {
        Self::any(value).filter(|r| r.request_payload.is_none() || r.is_task())
    }

    /// Any asynchronous invocation record (`requestContext.condition` set),
    /// whatever its request was.
    pub fn any(value: &Value) -> Option<FailureRecord> {
        let ctx = value.get("requestContext")?.as_object()?;
        let condition = ctx.get("condition")?.as_str()?;
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
            request_payload: value.get("requestPayload").filter(|p| !p.is_null()).cloned(),
            last_error,
            sqs_message_id: None,
        })
    }

    /// Whether the record's request was a task message.
    ///
    /// ```
    /// use task_runtime::envelope::failure_record::FailureRecord;
    /// let record = |payload: serde_json::Value| serde_json::json!({
    ///     "requestContext": {"requestId": "r", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
    ///     "requestPayload": payload,
    /// });
    /// let upload = FailureRecord::any(&record(serde_json::json!({"Records": []}))).unwrap();
    /// assert!(!upload.is_task());
    /// let task = FailureRecord::any(&record(serde_json::json!({"task_runtime": 1, "task": "t", "id": "1", "args": {}}))).unwrap();
    /// assert!(task.is_task());
    /// ```
    pub fn is_task(&self) -> bool {
        self.request_payload.as_ref().and_then(Value::as_object).is_some_and(|p| p.contains_key(MARKER))
    }

    /// The records of an SQS batch, when every message's body is an
    /// asynchronous invocation record and one at least is the worker's (a
    /// task message's, or one without its payload); `None` when the event is
    /// not an SQS batch or holds anything else (the batch is the handler's then).
    ///
    /// ```
    /// use task_runtime::envelope::failure_record::FailureRecord;
    ///
    /// let record = |payload: serde_json::Value| serde_json::json!({
    ///     "requestContext": {"requestId": "r-1", "condition": "EventAgeExceeded", "approximateInvokeCount": 1},
    ///     "requestPayload": payload,
    /// }).to_string();
    /// let task = record(serde_json::json!({"task_runtime": 1, "task": "bake", "id": "42", "args": {}}));
    /// let upload = record(serde_json::json!({"Records": [{"eventSource": "aws:s3"}]}));
    /// let batch = serde_json::json!({"Records": [
    ///     {"messageId": "m-1", "eventSource": "aws:sqs", "body": task},
    ///     {"messageId": "m-2", "eventSource": "aws:sqs", "body": upload},
    /// ]});
    /// let records = FailureRecord::from_sqs_batch(&batch).expect("the failure queue's batch");
    /// assert_eq!(records[0].sqs_message_id.as_deref(), Some("m-1"));
    /// assert!(records[0].is_task() && !records[1].is_task()); // m-2 is left to the dead-letter queue
    ///
    /// let orders = serde_json::json!({"Records": [
    ///     {"messageId": "m-1", "eventSource": "aws:sqs", "body": task},
    ///     {"messageId": "m-3", "eventSource": "aws:sqs", "body": "an order"},
    /// ]});
    /// assert!(FailureRecord::from_sqs_batch(&orders).is_none()); // the handler's
    /// ```
    pub fn from_sqs_batch(value: &Value) -> Option<Vec<FailureRecord>> {
        let records = Self::every_one_of_sqs_batch(value)?;
        records.iter().any(|r| r.is_task() || r.request_payload.is_none()).then_some(records)
    }

    /// The records of an SQS batch whose every message's body is an
    /// asynchronous invocation record, of whatever event: a failure queue's
    /// batch, even one that holds only other events' records (Lambda gave
    /// up on the worker's own S3 handler, say). `None` when the event is not
    /// an SQS batch or a message is anything else.
    ///
    /// ```
    /// use task_runtime::envelope::failure_record::FailureRecord;
    /// let record = serde_json::json!({
    ///     "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
    ///     "requestPayload": {"Records": []},
    /// }).to_string();
    /// let batch = serde_json::json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": record}]});
    /// assert!(FailureRecord::from_sqs_batch(&batch).is_none()); // no record of the worker's
    /// assert_eq!(FailureRecord::every_one_of_sqs_batch(&batch).map(|r| r.len()), Some(1));
    /// ```
    pub fn every_one_of_sqs_batch(value: &Value) -> Option<Vec<FailureRecord>> {
        let messages = value.get("Records")?.as_array()?;
        let records: Vec<FailureRecord> = messages
            .iter()
            .map(|m| {
                if m.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
                    return None;
                }
                let body: Value = serde_json::from_str(m.get("body")?.as_str()?).ok()?;
                let mut record = FailureRecord::any(&body)?;
                record.sqs_message_id = Some(m.get("messageId").and_then(Value::as_str).unwrap_or("").to_owned());
                Some(record)
            })
            .collect::<Option<_>>()?;
        (!records.is_empty()).then_some(records)
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
        // The message says why Lambda gave up, in words.
        let why = |c| FailureRecord::from_value(&record(c, Some("TaskRetry"))).map(|r| r.failure().message).unwrap_or_default();
        assert!(why("RetriesExhausted").contains("no retries were left"), "{}", why("RetriesExhausted"));
        assert!(why("EventAgeExceeded").contains("past the function's maximum event age"), "{}", why("EventAgeExceeded"));
        assert!(why("SomethingNew").contains("a reason this version does not know"), "{}", why("SomethingNew"));
        assert!(why("RetriesExhausted").contains("after 3 attempt(s)") && why("RetriesExhausted").contains("TaskRetry: m"));
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
        // A failure queue holding records of other events only is the handler's.
        let others = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": other.to_string()}]});
        assert_eq!(FailureRecord::from_sqs_batch(&others), None);
    }

    #[test]
    fn a_record_without_its_payload_is_the_worker_s() {
        let mut bare = record("RetriesExhausted", Some("Runtime.ExitError"));
        bare.as_object_mut().map(|o| o.remove("requestPayload"));
        let r = FailureRecord::from_value(&bare).map(|r| (r.request_payload.is_none(), r.request_id));
        assert_eq!(r, Some((true, "r".to_owned())));
        let batch = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": bare.to_string()}]});
        assert_eq!(FailureRecord::from_sqs_batch(&batch).map(|r| r.len()), Some(1));
    }
}
