//! Property tests: whatever reaches a worker (any JSON value, any bytes,
//! near-misses of task messages, failure records and SQS batches) is
//! classified without panicking, and the worker always answers.

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use task_runtime::envelope::{Envelope, Incoming, MARKER};
use task_runtime::registry::Registry;
use task_runtime::store::ResponseStore;
use task_runtime::store::memory::MemoryStore;
use task_runtime::{Reply, task};
use task_runtime::worker::{Invocation, Worker, WorkerSettings};

#[task(name = "prop.echo")]
async fn echo(n: i64, text: String) -> String {
    format!("{n} {text}")
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn worker(signing: bool) -> Worker {
    let settings = WorkerSettings {
        max_attempts: 3,
        response_ttl: Duration::from_secs(60),
        timeout_margin: Duration::from_millis(10),
        lease: Duration::from_secs(10),
        signing_key: signing.then(|| Arc::from(b"prop-key".as_slice())),
    };
    let store: Arc<dyn ResponseStore> = Arc::new(MemoryStore::default());
    Worker::new(Registry::global().expect("one registry"), Some(store), settings)
}

fn inv() -> Invocation {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Invocation { request_id: uuid::Uuid::new_v4().to_string(), deadline_ms: now + 2_000, attempt: None }
}

/// Keys a worker looks at, so that generated objects often come close to
/// a real task message, failure record or SQS batch.
const KEYS: &[&str] = &[
    MARKER, "task", "id", "args", "capture", "retries", "sent_at_ms", "sig", "n", "text", "requestContext", "condition",
    "requestId", "approximateInvokeCount", "requestPayload", "responsePayload", "errorType", "errorMessage", "Records",
    "eventSource", "body", "messageId", "version",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        prop_oneof![Just("prop.echo".to_owned()), Just("aws:sqs".to_owned()), Just("RetriesExhausted".to_owned()), ".{0,12}"]
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS).prop_map(str::to_owned), inner.clone()), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
            // Nested JSON as a string, as SQS bodies carry it.
            inner.prop_map(|v| Value::String(v.to_string())),
        ]
    })
}

/// A valid task message with one field replaced by anything.
fn mutated_message() -> impl Strategy<Value = Value> {
    (prop::sample::select(&KEYS[..8]), json_value()).prop_map(|(key, value)| {
        let args = json!({"n": 7, "text": "pie"}).as_object().cloned().unwrap_or_default();
        let mut v = serde_json::to_value(Envelope::new("prop.echo", args, true, 2)).unwrap_or_default();
        v[key] = value;
        v
    })
}

/// A failure record, or an SQS batch of them, around a (possibly broken) message.
fn record_like() -> impl Strategy<Value = Value> {
    (prop_oneof![mutated_message(), json_value()], json_value(), any::<bool>()).prop_map(|(payload, error, sqs)| {
        let record = json!({
            "version": "1.0",
            "requestContext": {"requestId": "r", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": payload,
            "responsePayload": error,
        });
        if sqs { json!({"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": record.to_string()}]}) } else { record }
    })
}

fn any_event() -> impl Strategy<Value = Value> {
    prop_oneof![json_value(), mutated_message(), record_like()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn classify_never_panics_and_a_marked_message_is_never_the_handler_s(event in any_event()) {
        let incoming = Incoming::classify(&event);
        if event.get(MARKER).is_some() {
            prop_assert!(matches!(incoming, Incoming::Task(_) | Incoming::Bad(_)), "{event} -> {incoming:?}");
        }
    }

    #[test]
    fn the_worker_answers_every_event(event in any_event(), signing in any::<bool>()) {
        let w = worker(signing);
        let reply = runtime().block_on(w.handle_event(&event, &inv()));
        if event.get(MARKER).is_some() {
            // The worker's own reply, never the handler's, and it names the call when it can.
            let id = event.get("id").and_then(Value::as_str).filter(|id| !id.is_empty() && id.len() <= 1024);
            match (&reply, id) {
                (None, _) => prop_assert!(false, "a task message went to the handler: {event}"),
                (Some(Reply::Success(v)), Some(id)) => prop_assert!(v["id"] == id || v.to_string().contains(id), "{v} does not name {id}"),
                (Some(Reply::Error { message, .. }), Some(id)) => prop_assert!(message.contains(id), "{message} does not name {id}"),
                (Some(_), None) => {}
            }
        }
    }

    #[test]
    fn the_worker_answers_any_bytes(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any_event().prop_map(|v| v.to_string().into_bytes()),
        any_event().prop_map(|v| { let mut b = v.to_string().into_bytes(); b.truncate(b.len() / 2); b }),
    ]) {
        let w = worker(false);
        let reply = runtime().block_on(w.handle_payload(&bytes, &inv()));
        if serde_json::from_slice::<Value>(&bytes).is_err() {
            // Not JSON: refused as a bad envelope, not run, not retried.
            prop_assert!(matches!(&reply, Reply::Success(v) if v["status"] == "failed" && v["error"]["kind"] == "bad_envelope"), "{reply:?}");
        }
    }
}
