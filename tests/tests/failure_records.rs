//! End to end: `task-local --on-failure function:NAME` hands Lambda's failure
//! records back to the real worker binary, which ends each call in DynamoDB
//! Local: `crashed` when every attempt died, `expired` when the event grew
//! too old in the queue.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::task_local::{self, TaskLocal};
use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::{PendingItem, ResponseStore};
use task_runtime::{AsyncResponse, FailureKind, Status};

struct Setup {
    tl: TaskLocal,
    store: DynamoStore,
}

async fn setup(extra: &[&str]) -> Setup {
    let table = common::table_name("records");
    let store = DynamoStore::with_client(common::dynamodb(), table.clone());
    store.create_table().await.expect("table");
    let mut args: Vec<String> = vec![
        "--no-schedules".into(),
        "--function".into(),
        format!("fault={}", task_local::built("fault-worker").display()),
        "--on-failure".into(),
        "function:fault".into(),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
        "--env".into(),
        "TASK_TIMEOUT_MARGIN_MS=300".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    Setup { tl, store }
}

/// Record the call as pending and send it, as a caller does.
async fn send(s: &Setup, task: &str, args: Value) -> String {
    let env = Envelope::new(task, args.as_object().cloned().unwrap_or_default(), true, 2);
    let now = common::now_ms();
    let pending = PendingItem { id: env.id.clone(), task: task.into(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: None };
    s.store.put_pending(pending).await.expect("put");
    let out = s
        .tl
        .client()
        .invoke()
        .function_name("fault")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(env.to_payload().expect("small")))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 202);
    env.id
}

async fn terminal(s: &Setup, id: &str, limit: Duration) -> AsyncResponse {
    let started = Instant::now();
    loop {
        let r = s.store.get(id).await.expect("get").expect("exists");
        if r.status.is_finished() {
            return r;
        }
        assert!(started.elapsed() < limit, "{id} still {r:?} after {limit:?}\n{}", s.tl.tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_every_attempt_was_killed_ends_crashed() {
    let s = setup(&["--timeout", "1s", "--max-retry-attempts", "1", "--retry-delays", "50ms"]).await;
    // Blocks its thread past the timeout: the worker cannot record anything, Lambda kills it.
    let id = send(&s, "fault.block", json!({"ms": 3_000})).await;
    let r = terminal(&s, &id, Duration::from_secs(30)).await;
    assert_eq!(r.status, Status::Failed);
    let e = r.error.expect("the failure");
    assert_eq!(e.kind, FailureKind::Crashed);
    assert!(e.message.contains("Sandbox.Timedout") && e.message.contains("2 attempt(s)"), "{}", e.message);
    let f = &s.tl.stats().await["functions"]["fault"];
    assert_eq!((f["timeout"].as_u64(), f["dropped"].as_u64()), (Some(2), Some(1)), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_event_grew_too_old_ends_expired() {
    let s = setup(&["--timeout", "2s", "--max-event-age", "1s", "--retry-delays", "1500ms"]).await;
    // Fails on attempt 1; its retry would come after the event's maximum age.
    let id = send(&s, "fault.flaky", json!({"succeed_on": 2})).await;
    let r = terminal(&s, &id, Duration::from_secs(30)).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    let e = r.error.expect("the failure");
    assert_eq!(e.kind, FailureKind::Expired);
    assert!(e.message.contains("EventAgeExceeded") && e.message.contains("TaskRetry"), "{}", e.message);
}
