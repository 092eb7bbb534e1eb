//! The worker fed messages directly, as Lambda would deliver them: duplicate
//! and concurrent deliveries, bad messages, signatures. The store is the
//! real in-memory store; assertions read what it returns.

use std::sync::Arc;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::registry::Registry;
use task_runtime::store::ResponseStore;
use task_runtime::store::memory::MemoryStore;
use task_runtime::worker::{Invocation, Worker, WorkerSettings};
use task_runtime::{FailureKind, Reply, Status, error_type, task};

fn settings(key: Option<&[u8]>) -> WorkerSettings {
    WorkerSettings {
        max_attempts: 3,
        response_ttl: Duration::from_secs(3600),
        timeout_margin: Duration::from_millis(100),
        lease: Duration::from_secs(10),
        signing_key: key.map(Arc::from),
    }
}

fn worker(key: Option<&[u8]>) -> (Worker, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let registry = Registry::global().expect("no duplicate names in this binary");
    (Worker::new(registry, Some(store.clone() as Arc<dyn ResponseStore>), settings(key)), store)
}

fn inv(request_id: &str) -> Invocation {
    Invocation { request_id: request_id.into(), deadline_ms: now_ms() + 60_000, attempt: None }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn envelope(task: &str, args: Value) -> Envelope {
    Envelope::new(task, args.as_object().cloned().unwrap_or_default(), true, 2)
}

/// Runs of `counted` per `key`: each test counts under its own key, since
/// tests run in parallel in this binary.
static RUNS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

fn runs(key: &str) -> u32 {
    RUNS.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied().unwrap_or(0)
}

#[task]
async fn counted(key: String, pause_ms: u64) -> u32 {
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    let mut runs = RUNS.lock().unwrap_or_else(|p| p.into_inner());
    let n = runs.entry(key).or_default();
    *n += 1;
    *n
}

#[tokio::test]
async fn a_finished_task_delivered_again_is_not_rerun() {
    let (w, store) = worker(None);
    let env = envelope(counted::NAME, json!({"key": "redelivered", "pause_ms": 0}));
    let first = w.handle_envelope(env.clone(), &inv("req-1")).await;
    assert!(matches!(first, Reply::Success(_)), "{first:?}");
    // Lambda delivers the same event again, under another request id.
    let again = w.handle_envelope(env.clone(), &inv("req-2")).await;
    match again {
        Reply::Success(body) => assert_eq!((body["status"].as_str(), body["note"].as_str()), (Some("complete"), Some("duplicate"))),
        other => panic!("{other:?}"),
    }
    assert_eq!(runs("redelivered"), 1);
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 1));
}

#[tokio::test]
async fn two_concurrent_deliveries_of_one_id_run_the_body_once() {
    let (w, store) = worker(None);
    let env = envelope(counted::NAME, json!({"key": "concurrent", "pause_ms": 300}));
    let (ia, ib) = (inv("req-a"), inv("req-b"));
    let (a, b) = tokio::join!(w.handle_envelope(env.clone(), &ia), w.handle_envelope(env.clone(), &ib));
    assert_eq!(runs("concurrent"), 1);
    let notes: Vec<_> = [a, b]
        .into_iter()
        .map(|r| match r {
            Reply::Success(v) => v["note"].as_str().unwrap_or("ran").to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(notes.contains(&"ran".to_owned()) && notes.contains(&"busy".to_owned()), "{notes:?}");
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 1));
}

#[task]
async fn sometimes(fail: bool) -> task_runtime::TaskResult<u8> {
    if fail { Err(task_runtime::TaskError::retry("flaky")) } else { Ok(1) }
}

#[tokio::test]
async fn lambda_retries_under_the_same_request_id_take_over_and_count() {
    let (w, store) = worker(None);
    let env = envelope(sometimes::NAME, json!({"fail": true}));
    for attempt in 1..=3u32 {
        let reply = w.handle_envelope(env.clone(), &inv("req-same")).await;
        let r = store.get(&env.id).await.expect("read").expect("exists");
        assert_eq!(r.attempts, attempt);
        match (attempt, reply) {
            (1 | 2, Reply::Error { error_type: t, .. }) => {
                assert_eq!(t, error_type::RETRY);
                assert_eq!(r.status, Status::Retrying);
            }
            (3, Reply::Error { error_type: t, message }) => {
                assert_eq!(t, error_type::FAILED);
                assert!(message.contains("attempt 3"), "{message}");
                assert_eq!(r.status, Status::Failed);
            }
            other => panic!("{other:?}"),
        }
    }
    // A fourth delivery of a failed task is a duplicate, not a run.
    assert!(matches!(w.handle_envelope(env, &inv("req-same")).await, Reply::Success(_)));
}

#[tokio::test]
async fn a_malformed_envelope_with_an_id_is_recorded_and_not_retried() {
    let (w, store) = worker(None);
    let event = json!({"task_runtime": 1, "id": "bad-1", "task": counted::NAME, "args": "not an object"});
    let reply = w.handle_event(&event, &inv("r")).await.expect("a task message");
    assert!(matches!(reply, Reply::Success(_)), "{reply:?}");
    let r = store.get("bad-1").await.expect("read").expect("recorded");
    assert_eq!(r.status, Status::Failed);
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::BadEnvelope);
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[tokio::test]
async fn a_malformed_payload_without_an_id_is_refused_without_panic() {
    let (w, _) = worker(None);
    for payload in [&b"{not json"[..], b"[1,2]", b"{\"task_runtime\": true}"] {
        match w.handle_payload(payload, &inv("r")).await {
            Reply::Success(v) => assert_eq!(v["status"], "failed", "{v}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_newer_envelope_version_is_failed_unsupported_version() {
    let (w, store) = worker(None);
    let event = json!({"task_runtime": 2, "id": "v2", "task": counted::NAME, "args": {}, "new": "field"});
    let reply = w.handle_event(&event, &inv("r")).await.expect("a task message");
    assert!(matches!(reply, Reply::Success(_)), "{reply:?}");
    let e = store.get("v2").await.expect("read").expect("recorded").error.expect("error");
    assert_eq!(e.kind, FailureKind::UnsupportedVersion);
    assert!(e.message.contains("version 2") && e.message.contains("version 1"), "{}", e.message);
}

#[tokio::test]
async fn a_non_task_event_is_left_to_the_handler() {
    let (w, _) = worker(None);
    assert_eq!(w.handle_event(&json!({"httpMethod": "GET"}), &inv("r")).await, None);
}

#[tokio::test]
async fn with_a_signing_key_unsigned_or_forged_messages_are_refused_and_nothing_is_written() {
    let key = b"k3y";
    let (w, store) = worker(Some(key));
    let unsigned = envelope(counted::NAME, json!({"key": "signing", "pause_ms": 0}));
    let mut forged = unsigned.clone();
    forged.sign(b"wrong key");
    for env in [unsigned, forged] {
        let id = env.id.clone();
        // Nothing of this message is stored: Lambda is told, so the event
        // reaches the failure destination after its retries.
        match w.handle_envelope(env, &inv("r")).await {
            Reply::Error { error_type: t, message } => {
                assert_eq!(t, error_type::REFUSED);
                assert!(message.contains("not run"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.get(&id).await.expect("read"), None, "nothing written");
    }
    assert_eq!(runs("signing"), 0, "nothing ran");
    let mut good = envelope(counted::NAME, json!({"key": "signing", "pause_ms": 0}));
    good.sign(key);
    assert!(matches!(w.handle_envelope(good.clone(), &inv("r")).await, Reply::Success(_)));
    assert_eq!(store.get(&good.id).await.expect("read").map(|r| r.status), Some(Status::Complete));
    assert_eq!(runs("signing"), 1);
}

#[task]
async fn sleepy(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test]
async fn a_task_at_its_deadline_is_recorded_as_a_timeout() {
    let (w, store) = worker(None);
    let env = envelope(sleepy::NAME, json!({"ms": 5_000}));
    let short = Invocation { request_id: "r".into(), deadline_ms: now_ms() + 400, attempt: None };
    match w.handle_envelope(env.clone(), &short).await {
        Reply::Error { error_type: t, .. } => assert_eq!(t, error_type::TIMEOUT),
        other => panic!("{other:?}"),
    }
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!(r.status, Status::Retrying);
    assert_eq!(r.error.map(|e| e.kind), Some(FailureKind::Timeout));
}

/// Whether the body of `stubborn` has ended, per key.
static ENDED: Mutex<BTreeMap<String, bool>> = Mutex::new(BTreeMap::new());

/// A synchronous body: its thread cannot be stopped at the deadline.
#[task]
fn stubborn(key: String, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ENDED.lock().unwrap_or_else(|p| p.into_inner()).insert(key, true);
    ms
}

#[tokio::test]
async fn a_synchronous_body_past_its_deadline_is_recorded_and_never_outlives_the_answer() {
    // Lambda's retry may land in the same sandbox as soon as this invocation
    // answers: a body still running then would run beside it.
    let (w, store) = worker(None);
    let env = envelope(stubborn::NAME, json!({"key": "overrun", "ms": 1_200}));
    let short = Invocation { request_id: "r".into(), deadline_ms: now_ms() + 400, attempt: None };
    let reply = w.handle_envelope(env.clone(), &short).await;
    assert!(matches!(reply, Reply::Error { error_type: error_type::TIMEOUT, .. }), "{reply:?}");
    let ended = ENDED.lock().unwrap_or_else(|p| p.into_inner()).get("overrun").copied();
    assert_eq!(ended, Some(true), "the answer came while the body was still running");
    // The timeout was recorded at the deadline, not the body's late result.
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.error.map(|e| e.kind), r.response), (Status::Retrying, Some(FailureKind::Timeout), None));
}

fn worker_with_lease(lease: Duration, key: Option<&[u8]>) -> (Worker, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let registry = Registry::global().expect("no duplicate names in this binary");
    let settings = WorkerSettings { lease, ..settings(key) };
    (Worker::new(registry, Some(store.clone() as Arc<dyn ResponseStore>), settings), store)
}

#[tokio::test]
async fn two_concurrent_deliveries_under_one_request_id_run_the_body_once() {
    // Lambda may deliver one asynchronous event twice: both carry its request id.
    // The body outlives several lease periods, so only the heartbeat keeps
    // the second delivery from taking over.
    let (w, store) = worker_with_lease(Duration::from_millis(300), None);
    let env = envelope(counted::NAME, json!({"key": "same-request", "pause_ms": 1_000}));
    let i = inv("req-dup");
    let (a, b) = tokio::join!(w.handle_envelope(env.clone(), &i), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        w.handle_envelope(env.clone(), &i).await
    });
    assert_eq!(runs("same-request"), 1);
    assert!(matches!(a, Reply::Success(_)), "{a:?}");
    match b {
        Reply::Success(v) => assert_eq!((v["status"].as_str(), v["note"].as_str()), (Some("complete"), Some("duplicate"))),
        other => panic!("{other:?}"),
    }
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 1));
}

/// An attempt's claim on `env`, under `request_id`, with a lease of `lease_ms`.
fn claim(env: &Envelope, request_id: &str, lease_ms: u64) -> task_runtime::store::BeginRequest {
    task_runtime::store::BeginRequest {
        id: env.id.clone(),
        task: env.task.clone(),
        request_id: request_id.into(),
        lease_until_ms: now_ms() + lease_ms,
        max_attempts: 3,
        now_ms: now_ms(),
        ttl: now_ms() / 1000 + 3600,
        resend: None, parent: None,
    }
}

#[tokio::test]
async fn a_retry_after_a_crash_takes_over_once_the_dead_attempt_s_lease_lapses() {
    let (w, store) = worker_with_lease(Duration::from_millis(400), None);
    let env = envelope(counted::NAME, json!({"key": "after-crash", "pause_ms": 0}));
    // The first attempt claimed the call and died: its lease is never renewed.
    store.begin(claim(&env, "req-crash", 400)).await.expect("begin");
    // Lambda's retry, same request id, comes before the lease lapsed: it waits, then runs.
    let started = std::time::Instant::now();
    let reply = w.handle_envelope(env.clone(), &inv("req-crash")).await;
    assert!(matches!(reply, Reply::Success(_)), "{reply:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the lease: {:?}", started.elapsed());
    assert_eq!(runs("after-crash"), 1);
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 2));
}

fn failure_record(message: &Envelope, condition: &str, error_type: &str) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-27T10:00:00.000Z",
        "requestContext": {"requestId": "req-gone", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:w:$LATEST",
                           "condition": condition, "approximateInvokeCount": 3},
        "requestPayload": serde_json::to_value(message).expect("json"),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": "RequestId: req-gone Error: signal: killed"},
    })
}

#[tokio::test]
async fn lambda_s_failure_record_ends_a_call_its_crashed_attempt_left_running() {
    let (w, store) = worker(None);
    let env = envelope(counted::NAME, json!({"key": "never", "pause_ms": 0}));
    store.begin(claim(&env, "req-gone", 60_000)).await.expect("begin");
    let reply = w.handle_event(&failure_record(&env, "RetriesExhausted", "Runtime.ExitError"), &inv("req-record")).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    let r = store.get(&env.id).await.expect("read").expect("exists");
    assert_eq!(r.status, Status::Failed);
    let e = r.error.expect("the failure");
    assert_eq!(e.kind, FailureKind::Crashed);
    assert!(e.message.contains("Runtime.ExitError") && e.message.contains("RetriesExhausted"), "{}", e.message);
    assert_eq!(runs("never"), 0, "a record never runs the body");
}

#[tokio::test]
async fn a_failure_record_leaves_a_finished_call_as_it_is_and_expired_events_end_expired() {
    let (w, store) = worker(None);
    let done = envelope(counted::NAME, json!({"key": "record-done", "pause_ms": 0}));
    w.handle_envelope(done.clone(), &inv("req-1")).await;
    w.handle_event(&failure_record(&done, "RetriesExhausted", "Runtime.ExitError"), &inv("req-r1")).await;
    assert_eq!(store.get(&done.id).await.expect("read").map(|r| r.status), Some(Status::Complete));

    // Never delivered (too old in the queue): the pending item ends expired.
    let old = envelope(counted::NAME, json!({"key": "record-old", "pause_ms": 0}));
    let pending = task_runtime::store::PendingItem { id: old.id.clone(), task: old.task.clone(), now_ms: now_ms(), ttl: now_ms() / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
    store.put_pending(pending).await.expect("put");
    let mut record = failure_record(&old, "EventAgeExceeded", "");
    record.as_object_mut().map(|r| r.remove("responsePayload"));
    w.handle_event(&record, &inv("req-r2")).await;
    let r = store.get(&old.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.error.map(|e| e.kind)), (Status::Failed, Some(FailureKind::Expired)));
}

#[tokio::test]
async fn failure_records_through_sqs_end_their_calls_and_a_queue_of_orders_goes_to_the_handler() {
    let (w, store) = worker(None);
    let a = envelope(counted::NAME, json!({"key": "sqs-a", "pause_ms": 0}));
    let b = envelope(counted::NAME, json!({"key": "sqs-b", "pause_ms": 0}));
    let message = |id: &str, body: String| json!({"messageId": id, "eventSource": "aws:sqs", "body": body});
    let batch = json!({"Records": [
        message("m-a", failure_record(&a, "RetriesExhausted", "Sandbox.Timedout").to_string()),
        message("m-b", failure_record(&b, "EventAgeExceeded", "TaskRetry").to_string()),
    ]});
    match w.handle_event(&batch, &inv("req-sqs")).await {
        Some(Reply::Success(v)) => assert_eq!((v["ended"].as_u64(), v["batchItemFailures"].as_array().map(Vec::len)), (Some(2), Some(0))),
        other => panic!("{other:?}"),
    }
    let kind = |id: String| {
        let store = store.clone();
        async move { store.get(&id).await.expect("read").and_then(|r| r.error).map(|e| e.kind) }
    };
    assert_eq!(kind(a.id.clone()).await, Some(FailureKind::Crashed));
    assert_eq!(kind(b.id.clone()).await, Some(FailureKind::Expired));

    let orders = json!({"Records": [message("m-1", "{\"order\": 7}".into())]});
    assert_eq!(w.handle_event(&orders, &inv("req-orders")).await, None);
}

#[tokio::test]
async fn a_failure_queue_batch_is_answered_per_message_and_a_record_of_another_event_blocks_nothing() {
    // The destination is the function's: records of its S3 events land in
    // the same queue as those of its task messages.
    let (w, store) = worker(None);
    let a = envelope(counted::NAME, json!({"key": "mixed-a", "pause_ms": 0}));
    let mut upload = failure_record(&a, "RetriesExhausted", "EventHandlerError");
    upload["requestPayload"] = json!({"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "a+b.txt"}}}]});
    // Lambda leaves the payload out of a record over the destination's limit.
    let b = envelope(counted::NAME, json!({"key": "mixed-b", "pause_ms": 0}));
    let mut bare = failure_record(&b, "RetriesExhausted", "Runtime.ExitError");
    bare.as_object_mut().map(|o| o.remove("requestPayload"));
    let message = |id: &str, body: String| json!({"messageId": id, "eventSource": "aws:sqs", "body": body});
    let batch = json!({"Records": [
        message("m-upload", upload.to_string()),
        message("m-task", failure_record(&a, "RetriesExhausted", "Sandbox.Timedout").to_string()),
        message("m-bare", bare.to_string()),
    ]});
    match w.handle_event(&batch, &inv("req-mixed")).await {
        Some(Reply::Success(v)) => {
            assert_eq!((v["ended"].as_u64(), v["left"].as_u64()), (Some(1), Some(2)), "{v}");
            // Only the records the worker could not use stay in the queue (and go on to its DLQ).
            assert_eq!(v["batchItemFailures"], json!([{"itemIdentifier": "m-upload"}, {"itemIdentifier": "m-bare"}]), "{v}");
        }
        other => panic!("{other:?}"),
    }
    let r = store.get(&a.id).await.expect("read").expect("ended");
    assert_eq!((r.status, r.error.map(|e| e.kind)), (Status::Failed, Some(FailureKind::Crashed)));
    // Sent directly (a Lambda destination), a record without its payload is acknowledged.
    match w.handle_event(&bare, &inv("req-bare")).await {
        Some(Reply::Success(v)) => assert_eq!((v["ended"].as_u64(), v["left"].as_u64()), (Some(0), Some(1)), "{v}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn with_signing_on_only_a_record_of_a_verified_message_counts() {
    let key: &[u8] = b"record-key";
    let (w, store) = worker(Some(key));
    let mut forged = envelope(counted::NAME, json!({"key": "forged", "pause_ms": 0}));
    forged.sign(b"another key");
    let mut genuine = envelope(counted::NAME, json!({"key": "genuine", "pause_ms": 0}));
    genuine.sign(key);
    for env in [&forged, &genuine] {
        let pending = task_runtime::store::PendingItem { id: env.id.clone(), task: env.task.clone(), now_ms: now_ms(), ttl: now_ms() / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
        store.put_pending(pending).await.expect("put");
        w.handle_event(&failure_record(env, "RetriesExhausted", "Runtime.ExitError"), &inv("req-rec")).await;
    }
    assert_eq!(store.get(&forged.id).await.expect("read").map(|r| r.status), Some(Status::Pending), "a forger cannot fail a call");
    assert_eq!(store.get(&genuine.id).await.expect("read").map(|r| r.status), Some(Status::Failed));
}

#[tokio::test]
async fn a_genuine_message_this_worker_cannot_verify_ends_its_call_refused_and_a_forgery_cannot() {
    // The caller signs with a new key the worker does not have yet (a rotation).
    let (w, store) = worker(Some(b"old key"));
    let mut genuine = envelope(counted::NAME, json!({"key": "rotation", "pause_ms": 0}));
    genuine.sign(b"new key");
    let pending = |env: &Envelope| task_runtime::store::PendingItem {
        id: env.id.clone(),
        task: env.task.clone(),
        now_ms: now_ms(),
        ttl: now_ms() / 1000 + 3600,
        run_at_ms: None,
        digest: Some(env.digest()),
        parent: None,
    };
    store.put_pending(pending(&genuine)).await.expect("put");
    // A forger replays the id with other arguments: nothing is written.
    let mut forged = genuine.clone();
    forged.args.insert("pause_ms".into(), json!(1));
    assert!(matches!(w.handle_envelope(forged, &inv("r-forged")).await, Reply::Error { error_type: error_type::REFUSED, .. }));
    assert_eq!(store.get(&genuine.id).await.expect("read").map(|r| r.status), Some(Status::Pending));
    // The genuine message: the call ends refused, visible to its caller; Lambda is told success.
    assert!(matches!(w.handle_envelope(genuine.clone(), &inv("r-genuine")).await, Reply::Success(_)));
    let r = store.get(&genuine.id).await.expect("read").expect("exists");
    assert_eq!((r.status, r.error.map(|e| e.kind)), (Status::Failed, Some(FailureKind::Refused)));
    assert_eq!(runs("rotation"), 0, "nothing ran");
}

/// The in-memory store, counting the heartbeat's renewals and, when
/// `records_fail`, refusing the write that ends a call by its failure record.
#[derive(Debug, Default)]
struct CountingRenewals {
    inner: MemoryStore,
    renewals: std::sync::atomic::AtomicU32,
    records_fail: bool,
}

#[async_trait::async_trait]
impl ResponseStore for CountingRenewals {
    async fn put_pending(&self, item: task_runtime::store::PendingItem) -> Result<bool, task_runtime::StoreError> {
        self.inner.put_pending(item).await
    }
    async fn claim_id(&self, item: task_runtime::store::PendingItem, claim: task_runtime::store::IdClaim) -> Result<task_runtime::store::Claimed, task_runtime::StoreError> {
        self.inner.claim_id(item, claim).await
    }
    async fn discard_pending(&self, id: &str) -> Result<(), task_runtime::StoreError> {
        self.inner.discard_pending(id).await
    }
    async fn refuse_pending(&self, id: &str, digest: &str, failure: task_runtime::Failure, now_ms: u64) -> Result<bool, task_runtime::StoreError> {
        self.inner.refuse_pending(id, digest, failure, now_ms).await
    }
    async fn cancel(&self, id: &str, now_ms: u64) -> Result<task_runtime::store::Cancel, task_runtime::StoreError> {
        self.inner.cancel(id, now_ms).await
    }
    async fn note_latest_run(&self, schedule: &str, run_id: &str, now_ms: u64, ttl: u64) -> Result<(), task_runtime::StoreError> {
        self.inner.note_latest_run(schedule, run_id, now_ms, ttl).await
    }
    async fn begin(&self, req: task_runtime::store::BeginRequest) -> Result<task_runtime::store::Begun, task_runtime::StoreError> {
        self.inner.begin(req).await
    }
    async fn renew(&self, id: &str, request_id: &str, lease_until_ms: u64) -> Result<task_runtime::store::Finished, task_runtime::StoreError> {
        self.renewals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.renew(id, request_id, lease_until_ms).await
    }
    async fn finish(
        &self,
        id: &str,
        request_id: &str,
        state: task_runtime::store::FinalState,
        now_ms: u64,
        message: Option<&str>,
    ) -> Result<task_runtime::store::Finished, task_runtime::StoreError> {
        self.inner.finish(id, request_id, state, now_ms, message).await
    }
    async fn fail_unfinished(&self, item: task_runtime::store::PendingItem, failure: task_runtime::Failure, message: Option<&str>) -> Result<bool, task_runtime::StoreError> {
        if self.records_fail {
            return Err(task_runtime::StoreError::Backend { operation: "fail_unfinished", table: "test".into(), message: "throttled".into() });
        }
        self.inner.fail_unfinished(item, failure, message).await
    }
    async fn get(&self, id: &str) -> Result<Option<task_runtime::AsyncResponse>, task_runtime::StoreError> {
        self.inner.get(id).await
    }
}

#[tokio::test]
async fn a_short_body_costs_no_heartbeat_write_and_a_long_one_renews_its_lease() {
    let store = Arc::new(CountingRenewals::default());
    let registry = Registry::global().expect("registry");
    let settings = WorkerSettings { lease: Duration::from_millis(600), ..settings(None) };
    let w = Worker::new(registry, Some(store.clone() as Arc<dyn ResponseStore>), settings);
    let renewals = || store.renewals.load(std::sync::atomic::Ordering::SeqCst);
    // Shorter than a third of the lease: no write.
    w.handle_envelope(envelope(counted::NAME, json!({"key": "short-body", "pause_ms": 0})), &inv("r-short")).await;
    assert_eq!(renewals(), 0, "a short body renewed its lease");
    // Five lease-thirds long: renewed about every 200 ms.
    w.handle_envelope(envelope(counted::NAME, json!({"key": "long-body", "pause_ms": 1_000})), &inv("r-long")).await;
    assert!((2..=6).contains(&renewals()), "{} renewals for a 1 s body on a 600 ms lease", renewals());
}

#[tokio::test]
async fn a_delivery_waiting_for_its_own_request_s_lease_near_its_deadline_answers_task_busy() {
    let (w, store) = worker_with_lease(Duration::from_secs(30), None);
    let env = envelope(counted::NAME, json!({"key": "busy", "pause_ms": 0}));
    // The same event's first delivery holds a live lease (it is still running, or died just now).
    let claim = task_runtime::store::BeginRequest {
        id: env.id.clone(),
        task: env.task.clone(),
        request_id: "req-same".into(),
        lease_until_ms: now_ms() + 30_000,
        max_attempts: 3,
        now_ms: now_ms(),
        ttl: now_ms() / 1000 + 3600,
        resend: None, parent: None,
    };
    store.begin(claim).await.expect("claim");
    // This delivery's deadline comes before the lease lapses: it gives up at once and Lambda retries.
    let near = Invocation { request_id: "req-same".into(), deadline_ms: now_ms() + 2_000, attempt: None };
    let started = std::time::Instant::now();
    match w.handle_envelope(env.clone(), &near).await {
        Reply::Error { error_type: t, message } => {
            assert_eq!(t, error_type::BUSY);
            assert!(message.contains(&env.id), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "it did not wait out its deadline");
    assert_eq!(runs("busy"), 0, "not run beside the first delivery");
}

/// Runs what the worker sends again on the same worker, delivered before
/// the send returns (an invoke whose event starts before its 202 comes back).
#[derive(Debug, Default)]
struct EagerForwarder {
    worker: std::sync::OnceLock<Worker>,
}

#[async_trait::async_trait]
impl task_runtime::follow_up::Forwarder for EagerForwarder {
    async fn forward(&self, _message: &Envelope, payload: Vec<u8>, _function: Option<&str>, _run_at_ms: Option<u64>) -> Result<(), String> {
        let worker = self.worker.get().cloned().ok_or("no worker yet")?;
        tokio::spawn(async move { worker.handle_payload(&payload, &inv("req-resent")).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }
}

#[task(name = "worker_rules.once_more")]
async fn once_more() -> task_runtime::TaskResult<u32> {
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(0);
    if attempt == 1 {
        return Err(task_runtime::TaskError::retry_after(Duration::from_millis(10), "again, please"));
    }
    Ok(attempt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_sent_message_that_comes_before_its_attempt_wrote_its_end_still_runs_the_next_attempt() {
    let store = Arc::new(MemoryStore::default());
    let forwarder = Arc::new(EagerForwarder::default());
    let registry = Registry::global().expect("no duplicate names in this binary");
    let w = Worker::new(registry, Some(store.clone() as Arc<dyn ResponseStore>), settings(None)).with_forwarder(forwarder.clone());
    forwarder.worker.set(w.clone()).expect("set once");
    let env = envelope(once_more::NAME, json!({}));
    let payload = env.to_payload().expect("small");
    let first = w.handle_payload(&payload, &inv("req-first")).await;
    assert!(matches!(&first, Reply::Success(body) if body["note"] == "resent"), "{first:?}");
    for _ in 0..200 {
        let r = store.get(&env.id).await.expect("read").expect("stored");
        if r.status == Status::Complete {
            assert_eq!((r.attempts, r.response), (2, Some(json!(2))));
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the call never ran its second attempt: {:?}", store.get(&env.id).await);
}

#[tokio::test]
async fn a_record_of_a_malformed_message_ends_its_call_only_with_signing_off_and_never_stays_in_the_queue() {
    let key: &[u8] = b"record-key";
    for signing in [None, Some(key)] {
        let (w, store) = worker(signing);
        let carrier = envelope(counted::NAME, json!({"key": "malformed", "pause_ms": 0}));
        let pending = task_runtime::store::PendingItem { id: carrier.id.clone(), task: carrier.task.clone(), now_ms: now_ms(), ttl: now_ms() / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
        store.put_pending(pending).await.expect("put");
        // Its id is readable, its arguments are not an object: `Incoming::Bad` with the id.
        let mut record = failure_record(&carrier, "RetriesExhausted", "Runtime.ExitError");
        record["requestPayload"] = json!({"task_runtime": 1, "task": counted::NAME, "id": carrier.id, "args": [1, 2]});
        let batch = json!({"Records": [{"messageId": "m-bad", "eventSource": "aws:sqs", "body": record.to_string()}]});
        let reply = w.handle_event(&batch, &inv("req-bad")).await;
        let Some(Reply::Success(v)) = reply else { panic!("{reply:?}") };
        // Read or not, a record of a task message is done with: never left in the queue.
        assert_eq!(v["batchItemFailures"], json!([]), "signing {}: {v}", signing.is_some());
        let status = store.get(&carrier.id).await.expect("read").map(|r| r.status);
        match signing {
            // Without a key, the id is enough to end the call.
            None => assert_eq!((status, v["ended"].as_u64()), (Some(Status::Failed), Some(1)), "{v}"),
            // With one, a message that cannot be verified ends nothing: a forger could name any id.
            Some(_) => assert_eq!((status, v["ended"].as_u64()), (Some(Status::Pending), Some(0)), "{v}"),
        }
    }
}

#[tokio::test]
async fn a_record_whose_write_fails_is_retried_by_lambda_directly_and_stays_in_the_queue_through_sqs() {
    let store = Arc::new(CountingRenewals { records_fail: true, ..CountingRenewals::default() });
    let w = Worker::new(Registry::global().expect("registry"), Some(store.clone()), settings(None));
    let env = envelope(counted::NAME, json!({"key": "unwritten", "pause_ms": 0}));
    let record = failure_record(&env, "RetriesExhausted", "Runtime.ExitError");
    // Straight from Lambda's destination: an error, so that Lambda delivers the record again.
    let reply = w.handle_event(&record, &inv("req-direct")).await;
    assert!(matches!(&reply, Some(Reply::Error { error_type: error_type::STORE, .. })), "{reply:?}");
    // Through the failure queue: success, with the message kept in the queue for another try.
    let batch = json!({"Records": [{"messageId": "m-unwritten", "eventSource": "aws:sqs", "body": record.to_string()}]});
    let reply = w.handle_event(&batch, &inv("req-sqs")).await;
    let Some(Reply::Success(v)) = reply else { panic!("{reply:?}") };
    assert_eq!(v["batchItemFailures"], json!([{"itemIdentifier": "m-unwritten"}]), "{v}");
}

/// Records when each message it is asked to send should run (`None`: now).
#[derive(Debug, Default)]
struct WhenRecorder {
    sent: Mutex<Vec<(String, Option<u64>)>>,
}

#[async_trait::async_trait]
impl task_runtime::follow_up::Forwarder for WhenRecorder {
    async fn forward(&self, message: &Envelope, _payload: Vec<u8>, _function: Option<&str>, run_at_ms: Option<u64>) -> Result<(), String> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push((message.id.clone(), run_at_ms));
        Ok(())
    }
}

impl WhenRecorder {
    fn sent(&self) -> Vec<(String, Option<u64>)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn recording_worker() -> (Worker, Arc<MemoryStore>, Arc<WhenRecorder>) {
    let (w, store) = worker(None);
    let recorder = Arc::new(WhenRecorder::default());
    (w.with_forwarder(recorder.clone()), store, recorder)
}

/// Exactly the function's own retries (1 + 2 = its 3 attempts), no backoff.
#[task(name = "worker_rules.declared_exactly", retries = 2)]
async fn declared_exactly() -> task_runtime::TaskResult<u8> {
    Err(task_runtime::TaskError::retry("not yet"))
}

#[tokio::test]
async fn retries_declared_equal_to_the_function_s_own_are_left_to_lambda() {
    let (w, store, recorder) = recording_worker();
    let env = envelope(declared_exactly::NAME, json!({}));
    // As Lambda delivers it: the runtime could send the message again.
    let reply = w.handle_payload(&env.to_payload().expect("small"), &inv("req-exact")).await;
    // Lambda's own retry covers it: an error for Lambda, nothing sent by the runtime.
    assert!(matches!(&reply, Reply::Error { error_type: error_type::RETRY, .. }), "{reply:?}");
    assert_eq!(recorder.sent(), [], "the runtime sent a retry Lambda would have made");
    let r = store.get(&env.id).await.expect("read").expect("stored");
    assert_eq!((r.status, r.attempts), (Status::Retrying, 1));
}

/// Two a second: a second delivery at once is 500 ms after the first.
#[task(name = "worker_rules.rated", rate_limit = "2/s")]
async fn rated(n: u32) -> u32 {
    n
}

#[tokio::test]
async fn a_delivery_whose_rate_limited_start_is_near_waits_for_it_in_place() {
    let (w, store, recorder) = recording_worker();
    let first = envelope(rated::NAME, json!({"n": 1}));
    assert!(matches!(w.handle_envelope(first, &inv("req-r1")).await, Reply::Success(_)));
    let second = envelope(rated::NAME, json!({"n": 2}));
    let reply = w.handle_envelope(second.clone(), &inv("req-r2")).await;
    let Reply::Success(v) = &reply else { panic!("{reply:?}") };
    assert_eq!(v["note"], "deferred", "{v}");
    // Its reserved start was under a second away and before the deadline:
    // waited here and invoked now, not scheduled.
    assert_eq!(recorder.sent(), [(second.id.clone(), None)]);
    // Not an attempt: the call's item is not touched (here, never written).
    assert!(store.get(&second.id).await.expect("read").is_none());
}

/// Held open by the test until it says so.
static HELD: tokio::sync::Notify = tokio::sync::Notify::const_new();
static ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// One at a time; its rate limit lets every delivery start at once (one a
/// millisecond), so a delivery holds its rate turn when the slot is taken.
#[task(name = "worker_rules.single", concurrency = 1, rate_limit = "1000/s")]
async fn single(n: u32) -> u32 {
    ENTERED.notify_one();
    HELD.notified().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_put_off_by_a_full_concurrency_limit_is_scheduled_and_never_holds_the_instance() {
    let (w, _store, recorder) = recording_worker();
    let first = envelope(single::NAME, json!({"n": 1}));
    let running = tokio::spawn({
        let w = w.clone();
        async move { w.handle_envelope(first, &inv("req-c1")).await }
    });
    ENTERED.notified().await;
    // Past the first's rate turn (a timer never fires early): the second takes one of its own now.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = envelope(single::NAME, json!({"n": 2}));
    let reply = w.handle_envelope(second.clone(), &inv("req-c2")).await;
    let Reply::Success(v) = &reply else { panic!("{reply:?}") };
    assert_eq!(v["note"], "deferred", "{v}");
    // Its next try is 0.5 to 1 s away, near enough to wait for, and it holds
    // a rate turn for now: but a full limit may stay full, so it goes to the
    // scheduler.
    let sent = recorder.sent();
    assert!(matches!(sent.as_slice(), [(id, Some(_))] if *id == second.id), "{sent:?}");
    HELD.notify_one();
    assert!(matches!(running.await.expect("joined"), Reply::Success(_)));
}

/// AWS's own samples (tests/fixtures/aws; conformance.rs lists them).
fn aws_sample(name: &str) -> Value {
    let path = format!("{}/fixtures/aws/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("JSON")
}

/// A failure queue's batch of records of events that are not task messages
/// (Lambda gave up on another handler of the function): with no
/// `#[on_event]` handler of SQS events in this binary, the worker answers
/// it, each message named in `batchItemFailures` (left for the dead-letter
/// queue), and not the catch-all handler, whose error would count in the
/// function's `Errors` at each receive. AWS's sample SQS event is the
/// envelope, AWS's sample invocation record (ORDER_IDS) each body.
#[tokio::test]
async fn a_failure_batch_of_other_events_only_is_left_to_the_dead_letter_queue_without_an_error() {
    let (w, _) = worker(None);
    let sqs = aws_sample("example-sqs-event.json");
    let record = aws_sample("lambda-invocation-record.json");
    let message = |id: &str| {
        let mut m = sqs["Records"][0].clone();
        m["messageId"] = json!(id);
        m["body"] = json!(record.to_string());
        m
    };
    let batch = json!({"Records": [message("orders-1"), message("orders-2")]});
    assert!(w.takes(&batch), "the worker answers the failure queue's batch");
    match w.handle_event(&batch, &inv("foreign")).await {
        Some(Reply::Success(v)) => {
            assert_eq!(v["batchItemFailures"], json!([{"itemIdentifier": "orders-1"}, {"itemIdentifier": "orders-2"}]), "{v}");
            assert_eq!((v["ended"].as_u64(), v["left"].as_u64()), (Some(0), Some(2)), "{v}");
        }
        other => panic!("answered {other:?}"),
    }
    // AWS's sample itself (an ordinary message) is still the function's handler's.
    assert!(!w.takes(&sqs));
    assert!(w.handle_event(&sqs, &inv("plain")).await.is_none());
}
