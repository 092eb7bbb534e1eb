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
    setup_with("function:fault", extra).await
}

/// task-local serving the tests' worker, its failure records going to `on_failure`.
async fn setup_with(on_failure: &str, extra: &[&str]) -> Setup {
    let table = common::table_name("records");
    let store = DynamoStore::with_client(common::dynamodb(), table.clone());
    store.create_table().await.expect("table");
    let mut args: Vec<String> = vec![
        "--no-schedules".into(),
        "--function".into(),
        format!("fault={}", task_local::built("fault-worker").display()),
        "--on-failure".into(),
        on_failure.into(),
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
    let pending = PendingItem { id: env.id.clone(), task: task.into(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
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

/// The route the generated template deploys: Lambda's records go to an SQS
/// queue (`--on-failure sqs:fault`) that an event source mapping reads back
/// into the worker in batches. The queue holds the records of every event of
/// the function, and Lambda drops a record's `requestPayload` when it is
/// over the destination's limit (`--destination-limit`).
#[tokio::test(flavor = "multi_thread")]
async fn through_the_failure_queue_a_task_record_ends_its_call_and_nothing_blocks_it() {
    let s = setup_with("sqs:fault", &[
        "--timeout", "1s", "--max-retry-attempts", "0",
        "--failure-queue-visibility", "300ms", "--max-receive-count", "2",
        // The three records arrive within about a second: one batch holds them all.
        "--failure-queue-batch-window", "2500ms",
        "--destination-limit", "4000",
        // The worker believes in more attempts than Lambda makes: a call it leaves
        // `retrying` is only ended by its record.
        "--env", "TASK_MAX_ATTEMPTS=3",
    ])
    .await;
    // Set up as a caller whose events live 4 s (TASK_EVENT_LIFE_SECS).
    let mut config = task_runtime::Config::lambda("fault", None).with_store(std::sync::Arc::new(DynamoStore::with_client(common::dynamodb(), s.store.table())));
    config.event_life = Duration::from_secs(4);
    config.install().expect("install once in this binary");

    // (1) A record of an EventBridge event its #[on_event] handler failed: not a task's.
    let bus = json!({"version": "0", "id": "e-1", "detail-type": "fail", "source": "my.app", "account": "123456789012",
                     "time": "2026-11-30T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    let out = s.tl.client().invoke().function_name("fault").invocation_type(InvocationType::Event).payload(Blob::new(bus.to_string())).send().await;
    assert_eq!(out.expect("invoke").status_code(), 202);
    // (2) A call whose every attempt is killed at the timeout: its record names it.
    let crashed = send(&s, "fault.block", json!({"ms": 3_000})).await;
    // (3) A call left `retrying` whose record comes without its payload (over 4000 bytes).
    let big = {
        let env = Envelope::new("fault.flaky", json!({"succeed_on": 5}).as_object().cloned().unwrap_or_default(), true, 2);
        let mut v = serde_json::to_value(&env).expect("JSON");
        v["padding"] = json!("x".repeat(6_000)); // a field the worker ignores
        let now = common::now_ms();
        let pending = PendingItem { id: env.id.clone(), task: env.task.clone(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
        s.store.put_pending(pending).await.expect("put");
        let out = s.tl.client().invoke().function_name("fault").invocation_type(InvocationType::Event).payload(Blob::new(v.to_string())).send().await;
        assert_eq!(out.expect("invoke").status_code(), 202);
        env.id
    };

    let r = terminal(&s, &crashed, Duration::from_secs(30)).await;
    assert_eq!((r.status, r.error.map(|e| e.kind)), (Status::Failed, Some(FailureKind::Crashed)));
    // The EventBridge record was left in the queue and moved to its dead-letter queue.
    let started = Instant::now();
    let queue = loop {
        let stats = s.tl.stats().await;
        if stats["failure_queue"]["dead_lettered"].as_u64() >= Some(2) {
            break stats["failure_queue"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not dead-lettered: {stats}\n{}", s.tl.tail(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let letters: Vec<Value> = queue["dead_letters"].as_array().into_iter().flatten().filter_map(|b| serde_json::from_str(b.as_str()?).ok()).collect();
    assert!(letters.iter().any(|r| r["requestPayload"]["detail-type"] == "fail"), "{queue}");
    assert!(letters.iter().any(|r| r.get("requestPayload").is_none()), "the record without its payload: {queue}");
    let f = &s.tl.stats().await["functions"]["fault"];
    assert!(f["sqs_deleted"].as_u64() >= Some(1) && f["sqs_returned"].as_u64() >= Some(2), "{f}");
    let first_batch = s.tl.lines().iter().any(|l| l.contains("failure-queue batch of 3"));
    assert!(first_batch, "the records shared a batch:\n{}", s.tl.tail(40));
    // Nothing could name call (3): it stays `retrying` until its event's life is over, then reads stale.
    let handle = task_runtime::TaskHandle::<u32>::from_id(big.clone(), "fault.flaky");
    match handle.wait_timeout(Duration::from_secs(30)).await {
        Err(task_runtime::WaitError::Stale { id, .. }) => assert_eq!(id, big),
        other => panic!("{other:?}\n{}", s.tl.tail(30)),
    }
    let r = s.store.get(&big).await.expect("get").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Retrying, 1), "left as the worker wrote it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_s_own_timeout_ends_it_well_before_the_function_s() {
    let s = setup(&[]).await;
    let id = send(&s, "fault.bounded", json!({"ms": 2_000})).await;
    let r = terminal(&s, &id, Duration::from_secs(30)).await;
    assert_eq!((r.status, r.error.as_ref().map(|e| e.kind.clone())), (Status::Failed, Some(FailureKind::Timeout)), "{r:?}");
    // Ended at its 200 ms, not at the function's 3 s timeout.
    assert!(r.updated_at - r.created_at < 1_500, "{r:?}");
    let quick = send(&s, "fault.bounded", json!({"ms": 1})).await;
    assert_eq!(terminal(&s, &quick, Duration::from_secs(30)).await.status, Status::Complete);
}

/// A failure-queue batch that holds only a record of another event (the
/// worker's EventBridge handler failed, Lambda gave up on it): the worker,
/// which has no `#[on_event]` handler of SQS events, answers each receive
/// with `batchItemFailures` and one WARN line, so the record still reaches
/// the dead-letter queue, and no receive is a function error (before, the
/// catch-all answered `NotATaskEvent` at each, counting in `Errors`).
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_batch_of_another_event_only_reaches_the_dead_letter_queue_with_no_function_error() {
    let s = setup_with("sqs:fault", &[
        "--max-retry-attempts", "0",
        "--failure-queue-visibility", "300ms", "--max-receive-count", "2",
    ])
    .await;
    let bus = json!({"version": "0", "id": "e-2", "detail-type": "fail", "source": "my.app", "account": "123456789012",
                     "time": "2026-11-30T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    let out = s.tl.client().invoke().function_name("fault").invocation_type(InvocationType::Event).payload(Blob::new(bus.to_string())).send().await;
    assert_eq!(out.expect("invoke").status_code(), 202);
    let started = Instant::now();
    let stats = loop {
        let stats = s.tl.stats().await;
        if stats["failure_queue"]["dead_lettered"].as_u64() >= Some(1) {
            break stats;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not dead-lettered: {stats}\n{}", s.tl.tail(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let f = &stats["functions"]["fault"];
    assert!(f["sqs_returned"].as_u64() >= Some(2), "each receive left the message in the queue: {f}");
    let invocations = stats["invocations"].as_array().cloned().unwrap_or_default();
    let errors: Vec<&Value> = invocations.iter().filter(|r| r["outcome"] == "error").collect();
    // The event itself failed once (its handler's error); no batch of its record did.
    assert_eq!(errors.len(), 1, "{errors:?}\n{}", s.tl.tail(30));
    assert!(errors.iter().all(|r| r["error_type"] == "EventHandlerError"), "{errors:?}");
    let warned = s.tl.lines().iter().filter(|l| l.contains("failure record(s) of events that are not task messages")).count();
    assert!(warned >= 2 && s.tl.lines().iter().any(|l| l.contains("WARN")), "one WARN a receive:\n{}", s.tl.tail(30));
}
