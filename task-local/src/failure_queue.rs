//! An SQS on-failure destination read by an event source mapping, as the
//! generated template deploys it (`--on-failure sqs:FUNCTION`): Lambda's
//! failure records of *every* event of the function land in one standard
//! queue (task messages and the events of its `#[on_event]` handlers alike),
//! and the mapping invokes FUNCTION synchronously with batches of up to 10
//! messages in SQS's event shape. With `ReportBatchItemFailures`, the
//! messages the reply names in `batchItemFailures` come back after the
//! visibility timeout and the rest are deleted; a function error fails the
//! whole batch. A message received `max_receive_count` times goes to the
//! dead-letter queue. The mapping waits up to a batching window for a batch
//! to fill (`MaximumBatchingWindowInSeconds`); its poller is
//! `queue::poll_failure_queue`. See
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>
//! and the event's shape in
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::instance::Outcome;
use crate::stats::now_ms;

/// The most messages in one batch (the template's `BatchSize`).
const BATCH_SIZE: usize = 10;

/// One message in the queue.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) id: String,
    body: String,
    sent_ms: u64,
    receive_count: u32,
    visible_at_ms: u64,
}

/// The queue and what became of its messages.
#[derive(Debug)]
pub(crate) struct FailureQueue {
    /// The function the event source mapping invokes.
    pub(crate) function: String,
    visibility: Duration,
    max_receive_count: u32,
    /// How long the mapping gathers messages before it invokes with fewer
    /// than a full batch (`MaximumBatchingWindowInSeconds`).
    window: Duration,
    messages: Mutex<Vec<Message>>,
    /// Bodies moved to the dead-letter queue, oldest first.
    dead: Mutex<Vec<String>>,
}

impl FailureQueue {
    pub(crate) fn new(function: String, visibility: Duration, max_receive_count: u32, window: Duration) -> Self {
        Self { function, visibility, max_receive_count, window, messages: Mutex::new(Vec::new()), dead: Mutex::new(Vec::new()) }
    }

    /// `SendMessage`.
    pub(crate) fn send(&self, body: String) {
        let now = now_ms();
        let message = Message { id: uuid::Uuid::new_v4().to_string(), body, sent_ms: now, receive_count: 0, visible_at_ms: now };
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).push(message);
    }

    /// What `GET /stats` shows: messages waiting or in flight, and those dead-lettered.
    pub(crate) fn json(&self) -> Value {
        let waiting = self.messages.lock().unwrap_or_else(|p| p.into_inner()).len();
        let dead = self.dead.lock().unwrap_or_else(|p| p.into_inner()).clone();
        json!({"function": self.function, "messages": waiting, "dead_lettered": dead.len(), "dead_letters": dead})
    }

    /// The visible messages, at most a batch: each received once more (and
    /// hidden for the visibility timeout); those past `max_receive_count`
    /// are moved to the dead-letter queue instead.
    pub(crate) fn receive(&self) -> Vec<Message> {
        let now = now_ms();
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        let mut dead = Vec::new();
        messages.retain(|m| {
            let over = m.visible_at_ms <= now && m.receive_count >= self.max_receive_count;
            if over {
                dead.push(m.body.clone());
            }
            !over
        });
        if !dead.is_empty() {
            complain!("task-local: {} failure-queue message(s) moved to the dead-letter queue after {} receives", dead.len(), self.max_receive_count);
            self.dead.lock().unwrap_or_else(|p| p.into_inner()).extend(dead);
        }
        // Gather until a batch is full or the oldest visible message has waited the window.
        let visible: Vec<u64> = messages.iter().filter(|m| m.visible_at_ms <= now).map(|m| m.visible_at_ms).collect();
        let waited = visible.iter().min().map_or(0, |oldest| now - oldest);
        if visible.len() < BATCH_SIZE && waited < self.window.as_millis() as u64 {
            return Vec::new();
        }
        let visible_until = now + self.visibility.as_millis() as u64;
        messages
            .iter_mut()
            .filter(|m| m.visible_at_ms <= now)
            .take(BATCH_SIZE)
            .map(|m| {
                m.receive_count += 1;
                m.visible_at_ms = visible_until;
                m.clone()
            })
            .collect()
    }

    /// `DeleteMessage` of each of `ids`.
    pub(crate) fn delete(&self, ids: &[String]) {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).retain(|m| !ids.contains(&m.id));
    }

    /// The SQS event of a batch.
    pub(crate) fn event(batch: &[Message], region: &str) -> Value {
        let records: Vec<Value> = batch
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.id,
                    "receiptHandle": format!("{}#{}", m.id, m.receive_count),
                    "body": m.body,
                    "attributes": {
                        "ApproximateReceiveCount": m.receive_count.to_string(),
                        "SentTimestamp": m.sent_ms.to_string(),
                        "SenderId": "AROAEXAMPLE:lambda",
                        "ApproximateFirstReceiveTimestamp": m.sent_ms.to_string(),
                    },
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:{region}:000000000000:task-local-failures"),
                    "awsRegion": region,
                })
            })
            .collect();
        json!({"Records": records})
    }
}

/// The message ids of `batch` that the reply asks to keep: all of them on a
/// function error or an unreadable reply, else its `batchItemFailures`.
pub(crate) fn failed_ids(batch: &[Message], outcome: &Outcome) -> Vec<String> {
    let all = || batch.iter().map(|m| m.id.clone()).collect();
    let Outcome::Success(body) = outcome else { return all() };
    let Ok(reply) = serde_json::from_slice::<Value>(body) else { return all() };
    match reply.get("batchItemFailures") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let named: Option<Vec<String>> = items.iter().map(|i| i["itemIdentifier"].as_str().map(str::to_owned)).collect();
            // An identifier that is missing or not in the batch fails the whole batch, as Lambda does.
            match named {
                Some(ids) if ids.iter().all(|id| batch.iter().any(|m| &m.id == id)) => ids,
                _ => all(),
            }
        }
        Some(_) => all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn message(id: &str) -> Message {
        Message { id: id.into(), body: "{}".into(), sent_ms: 0, receive_count: 1, visible_at_ms: 0 }
    }

    #[test]
    fn the_reply_decides_which_messages_come_back() {
        let batch = [message("a"), message("b")];
        let ok = |body: &str| Outcome::Success(Bytes::from(body.to_owned()));
        assert_eq!(failed_ids(&batch, &ok(r#"{"batchItemFailures": []}"#)), Vec::<String>::new());
        assert_eq!(failed_ids(&batch, &ok(r#"{"other": 1}"#)), Vec::<String>::new());
        assert_eq!(failed_ids(&batch, &ok(r#"{"batchItemFailures": [{"itemIdentifier": "b"}]}"#)), ["b"]);
        // Not in the batch, or not readable: the whole batch fails.
        assert_eq!(failed_ids(&batch, &ok(r#"{"batchItemFailures": [{"itemIdentifier": "z"}]}"#)), ["a", "b"]);
        assert_eq!(failed_ids(&batch, &ok("not json")), ["a", "b"]);
        assert_eq!(failed_ids(&batch, &Outcome::Timeout), ["a", "b"]);
    }

    #[test]
    fn a_message_received_too_often_is_dead_lettered() {
        let q = FailureQueue::new("f".into(), Duration::ZERO, 2, Duration::ZERO);
        q.send("one".into());
        assert_eq!(q.receive().len(), 1);
        assert_eq!(q.receive().len(), 1);
        assert!(q.receive().is_empty(), "the third receive moves it to the DLQ");
        assert_eq!(q.json()["dead_letters"], json!(["one"]));
        assert_eq!(q.json()["messages"], 0);
    }
}
