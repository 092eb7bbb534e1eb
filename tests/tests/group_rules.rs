//! The worker's fan-in rules, driven directly (memory store, a forwarder
//! that records what it is asked to send): a child is counted by every
//! path that sees it end, and a group's callback is sent when the last
//! child is counted, also when the path that ended it died before it did.

mod common;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use task_runtime::envelope::{Envelope, GroupRef, callback_id};
use task_runtime::follow_up::Forwarder;
use task_runtime::store::group::{Callback, GroupItem};
use task_runtime::store::memory::MemoryStore;
use task_runtime::store::{BeginRequest, FinalState, ResponseStore};
use task_runtime::worker::Worker;
use task_runtime::{Reply, Status, task};

const FAR_TTL: u64 = 4_000_000_000;

#[task(name = "group_rules.double")]
async fn double(n: u64) -> u64 {
    n * 2
}

/// Records each message it is asked to send; fails while `refuse` is set.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<String>>,
    refuse: Mutex<bool>,
}

#[async_trait::async_trait]
impl Forwarder for Recorder {
    async fn forward(&self, message: &Envelope, _payload: Vec<u8>, _function: Option<&str>, _run_at_ms: Option<u64>) -> Result<(), String> {
        if *self.refuse.lock().expect("lock") {
            return Err("the backend is down".into());
        }
        self.sent.lock().expect("lock").push(message.id.clone());
        Ok(())
    }
}

impl Recorder {
    fn sent(&self) -> Vec<String> {
        self.sent.lock().expect("lock").clone()
    }
}

/// A worker with a recording forwarder, and a recorded group `id` of `total`
/// children with a callback.
async fn setup(id: &str, total: u32) -> (Worker, Arc<MemoryStore>, Arc<Recorder>) {
    let (worker, store) = common::memory_worker(None);
    let recorder = Arc::new(Recorder::default());
    let worker = worker.with_forwarder(recorder.clone());
    let mut callback = Envelope::new(double::NAME, json!({"n": 0}).as_object().cloned().expect("object"), true, 2);
    callback.id = callback_id(id);
    callback.callback_of = Some(id.into());
    let message = serde_json::to_string(&callback).expect("json");
    let item = GroupItem {
        id: id.into(),
        total,
        shards: 1,
        callback: Some(Callback { message, function: None, only_if_all_complete: false }),
        window: None,
        now_ms: common::now_ms(),
        ttl: FAR_TTL,
    };
    assert!(store.put_group(item).await.expect("recorded"));
    (worker, store, recorder)
}

fn child(group: &str, index: u32, total: u32) -> Envelope {
    let mut env = Envelope::new(double::NAME, json!({"n": index}).as_object().cloned().expect("object"), true, 2);
    let place = GroupRef { id: group.into(), index, total, shards: 1, window: None };
    env.id = place.child_id();
    env.group = Some(place);
    env
}

/// End `env`'s call as a worker would, but count nothing: the process died
/// after its outcome was written.
async fn ended_uncounted(store: &MemoryStore, env: &Envelope) {
    let now = common::now_ms();
    let claim = BeginRequest { id: env.id.clone(), task: env.task.clone(), request_id: "req-died".into(), lease_until_ms: now + 60_000, max_attempts: 3, now_ms: now, ttl: FAR_TTL, resend: None, parent: None };
    store.begin(claim).await.expect("begin");
    store.finish(&env.id, "req-died", FinalState::Complete("0".into()), now, None).await.expect("finish");
}

fn event(env: &Envelope) -> Value {
    serde_json::to_value(env).expect("json")
}

async fn ended(store: &MemoryStore, group: &str) -> u32 {
    store.group(group).await.expect("read").expect("recorded").ended
}

#[tokio::test]
async fn a_child_whose_worker_died_before_counting_is_counted_by_its_next_delivery_which_sends_the_callback() {
    let (w, store, sent) = setup("died", 2).await;
    let (first, second) = (child("died", 0, 2), child("died", 1, 2));
    let reply = w.handle_event(&event(&first), &common::invocation()).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    assert_eq!((ended(&store, "died").await, sent.sent()), (1, vec![]));
    ended_uncounted(&store, &second).await;
    assert_eq!(ended(&store, "died").await, 1, "the dead worker counted nothing");
    // Lambda's retry of the dead invocation finds the call finished: it counts it, and the group has ended.
    let reply = w.handle_event(&event(&second), &common::invocation()).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    assert_eq!((ended(&store, "died").await, sent.sent()), (2, vec![callback_id("died")]));
    assert_eq!(store.get(&callback_id("died")).await.expect("read").map(|r| r.status), Some(Status::Pending));
    // While the callback is pending, a further duplicate sends it again (its sender may have died before the send);
    // once it has begun, nothing sends it any more.
    w.handle_event(&event(&second), &common::invocation()).await;
    assert_eq!(sent.sent().len(), 2);
    let now = common::now_ms();
    let claim = BeginRequest { id: callback_id("died"), task: double::NAME.into(), request_id: "req-cb".into(), lease_until_ms: now + 60_000, max_attempts: 3, now_ms: now, ttl: FAR_TTL, resend: None, parent: None };
    store.begin(claim).await.expect("begin");
    w.handle_event(&event(&first), &common::invocation()).await;
    w.handle_event(&event(&second), &common::invocation()).await;
    assert_eq!(sent.sent().len(), 2, "a begun callback is not sent again");
    assert_eq!(ended(&store, "died").await, 2, "no child counted twice");
}

fn failure_record(message: &Envelope) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-30T10:00:00.000Z",
        "requestContext": {"requestId": "req-gone", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:w:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": serde_json::to_value(message).expect("json"),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "RequestId: req-gone Error: signal: killed"},
    })
}

#[tokio::test]
async fn failure_records_count_the_child_they_end_and_the_child_that_had_ended() {
    let (w, store, sent) = setup("records", 2).await;
    let (crashed, finished) = (child("records", 0, 2), child("records", 1, 2));
    // Child 0 crashed while running; its record ends it failed and counts it.
    let now = common::now_ms();
    let claim = BeginRequest { id: crashed.id.clone(), task: crashed.task.clone(), request_id: "req-gone".into(), lease_until_ms: now + 60_000, max_attempts: 3, now_ms: now, ttl: FAR_TTL, resend: None, parent: None };
    store.begin(claim).await.expect("begin");
    let reply = w.handle_event(&failure_record(&crashed), &common::invocation()).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    let state = store.group("records").await.expect("read").expect("recorded");
    assert_eq!((state.ended, state.failed), (1, 1));
    // Child 1 completed, but its worker died before counting; the record (of the invocation that died) counts it.
    ended_uncounted(&store, &finished).await;
    w.handle_event(&failure_record(&finished), &common::invocation()).await;
    let state = store.group("records").await.expect("read").expect("recorded");
    assert_eq!((state.ended, state.failed, state.complete), (2, 1, 1));
    assert_eq!(sent.sent(), vec![callback_id("records")]);
}

#[tokio::test]
async fn a_callback_that_cannot_be_sent_fails_the_delivery_so_that_lambda_tries_again() {
    let (w, store, sent) = setup("down", 1).await;
    let only = child("down", 0, 1);
    *sent.refuse.lock().expect("lock") = true;
    let reply = w.handle_event(&event(&only), &common::invocation()).await;
    let Some(Reply::Error { error_type, message }) = reply else { panic!("{reply:?}") };
    assert_eq!(error_type, task_runtime::error_type::STORE);
    assert!(message.contains("the backend is down") && message.contains("group `down`"), "{message}");
    assert_eq!(store.get(&only.id).await.expect("read").map(|r| r.status), Some(Status::Complete), "the child's outcome stands");
    *sent.refuse.lock().expect("lock") = false;
    let reply = w.handle_event(&event(&only), &common::invocation()).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    assert_eq!(sent.sent(), vec![callback_id("down")]);
}

#[tokio::test]
async fn a_completed_step_whose_worker_died_before_sending_the_next_is_followed_by_its_next_delivery() {
    let (w, store, sent) = setup("unused-group", 1).await;
    let mut first = Envelope::new(double::NAME, json!({"n": 4}).as_object().cloned().expect("object"), true, 2);
    first.then = vec![task_runtime::envelope::NextStep { task: double::NAME.into(), args: Default::default(), param: "n".into(), function: None, retries: 2 }];
    ended_uncounted(&store, &first).await; // complete, value 0, and nothing sent
    assert!(sent.sent().is_empty());
    let reply = w.handle_event(&event(&first), &common::invocation()).await;
    assert!(matches!(reply, Some(Reply::Success(_))), "{reply:?}");
    let next = task_runtime::envelope::step_id(&first.id, 1);
    assert_eq!(sent.sent(), vec![next.clone()]);
    assert_eq!(store.get(&next).await.expect("read").map(|r| (r.status, r.task)), Some((Status::Pending, double::NAME.to_owned())));
    // A step that failed sends nothing.
    let mut failing = first.clone();
    failing.id = "failing-step".into();
    let now = common::now_ms();
    let claim = BeginRequest { id: failing.id.clone(), task: failing.task.clone(), request_id: "req-f".into(), lease_until_ms: now + 60_000, max_attempts: 1, now_ms: now, ttl: FAR_TTL, resend: None, parent: None };
    store.begin(claim).await.expect("begin");
    let failed = FinalState::Failed(task_runtime::Failure::new(task_runtime::FailureKind::Failed, "no"));
    store.finish(&failing.id, "req-f", failed, now, None).await.expect("finish");
    w.handle_event(&event(&failing), &common::invocation()).await;
    assert_eq!(sent.sent().len(), 1);
}
