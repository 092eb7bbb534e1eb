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
        match w.handle_envelope(env, &inv("r")).await {
            Reply::Success(v) => assert_eq!(v["error"]["kind"], "bad_envelope", "{v}"),
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
