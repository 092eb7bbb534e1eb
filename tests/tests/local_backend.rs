//! The embedded local backend, end to end: dispatch through `#[task]`, the
//! real worker, the in-memory store; every assertion reads what
//! `get_async_response` returns.

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use task_runtime::{
    AsyncResponse, Config, DispatchError, FailureKind, SendOptions, Status, TaskError, TaskResult, WaitError,
    get_async_response, send, task,
};

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The panic rows panic on purpose: keep their noise out of the output.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains("exploded") {
                default(info);
            }
        }));
        Config::local()
            .with_local_retry_delay(Duration::from_millis(5))
            .install()
            .expect("the first install succeeds");
    });
}

async fn finished(id: &str) -> AsyncResponse {
    for _ in 0..2000 {
        if let Some(r) = get_async_response(id).await.expect("the memory store reads")
            && r.status.is_finished() {
                task_runtime::wait_for_local_tasks().await;
                return r;
            }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {id} did not finish within 10 s");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pie {
    flavor: String,
    slices: u32,
}

#[task]
async fn make_pie(flavor: String, slices: u32) -> TaskResult<Pie> {
    Ok(Pie { flavor, slices })
}

#[tokio::test]
async fn a_value_is_complete_after_one_attempt() {
    setup();
    let h = make_pie("apple".into(), 8).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Complete, 1));
    assert_eq!(r.response, Some(serde_json::json!({"flavor": "apple", "slices": 8})));
    assert_eq!(r.error, None);
    assert_eq!(r.task, make_pie::NAME);
    assert!(r.created_at > 0 && r.updated_at >= r.created_at);
    assert_eq!(h.wait().await.expect("complete"), Pie { flavor: "apple".into(), slices: 8 });
}

static SLOW_STARTED: AtomicU32 = AtomicU32::new(0);

#[task]
async fn slow_square(n: u64) -> u64 {
    SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    n * n
}

#[tokio::test]
async fn the_call_returns_before_the_body_runs() {
    setup();
    let before = SLOW_STARTED.load(Ordering::SeqCst);
    let h = slow_square(7).await.expect("dispatch");
    let first = get_async_response(h.id()).await.expect("read").expect("pending item exists");
    assert!(matches!(first.status, Status::Pending | Status::Running), "{first:?}");
    assert_eq!(first.response, None);
    assert_eq!(h.wait_timeout(Duration::from_secs(10)).await.expect("value"), 49);
    assert_eq!(SLOW_STARTED.load(Ordering::SeqCst), before + 1);
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);


#[task]
async fn flaky(until: u32) -> TaskResult<u32> {
    let n = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if n < until {
        // `?` on a std::error::Error is a retryable failure.
        "not a number".parse::<u32>()?;
    }
    Ok(n)
}

#[tokio::test]
async fn retryable_errors_are_retried_and_attempts_are_counted() {
    setup();
    let h = flaky(3).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Complete, 3));
    assert_eq!(r.response, Some(serde_json::json!(3)));
}

#[task]
async fn always_retry(tag: String) -> TaskResult<()> {
    Err(TaskError::retry(format!("still broken: {tag}")))
}

#[tokio::test]
async fn the_last_retryable_failure_is_failed_after_max_attempts() {
    setup();
    let h = always_retry("x".into()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 3));
    let e = r.error.expect("error stored");
    assert_eq!(e.kind, FailureKind::Error);
    assert_eq!(e.message, "still broken: x");
    match h.wait().await {
        Err(WaitError::Failed { attempts: 3, failure, .. }) => assert_eq!(failure.kind, FailureKind::Error),
        other => panic!("{other:?}"),
    }
}

#[task(retries = 1)]
async fn capped(tag: String) -> TaskResult<()> {
    Err(TaskError::retry(tag))
}

#[tokio::test]
async fn the_retries_option_caps_attempts() {
    setup();
    let h = capped("once more".into()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 2));
}

static FAIL_CALLS: AtomicU32 = AtomicU32::new(0);

#[task]
fn permanent(reason: String) -> Result<(), TaskError> {
    FAIL_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(TaskError::fail(reason))
}

#[tokio::test]
async fn task_error_fail_is_failed_and_runs_once() {
    setup();
    let h = permanent("no flour".into()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    assert_eq!(r.error.map(|e| (e.kind, e.message)), Some((FailureKind::Failed, "no flour".to_owned())));
    assert_eq!(FAIL_CALLS.load(Ordering::SeqCst), 1);
}

#[task]
async fn explode(what: String) -> u32 {
    panic!("{what} exploded");
}

#[task]
fn explode_sync(what: String) -> u32 {
    panic!("{what} exploded in a thread");
}

#[tokio::test]
async fn a_panic_is_failed_with_kind_panic_and_not_retried() {
    setup();
    let h = explode("the oven".into()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::Panic);
    assert!(e.message.contains("the oven exploded"), "{}", e.message);

    let h = explode_sync("the mixer".into()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    assert!(r.error.expect("error").message.contains("the mixer exploded in a thread"));
}

#[task]
async fn huge(bytes: usize) -> String {
    "x".repeat(bytes)
}

#[tokio::test]
async fn a_result_too_large_for_the_store_is_failed_too_large() {
    setup();
    let h = huge(500 * 1024).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::TooLarge);
    assert!(e.message.contains("512002 bytes") && e.message.contains("389120-byte"), "{}", e.message);
}

#[tokio::test]
async fn args_of_the_wrong_type_are_failed_bad_args_naming_the_argument() {
    setup();
    let h = send(make_pie::NAME, serde_json::json!({"flavor": "fig", "slices": "eight"}), SendOptions::default())
        .await
        .expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::BadArgs);
    assert!(e.message.contains("argument `slices`") && e.message.contains("expected u32"), "{}", e.message);

    let h = send(make_pie::NAME, serde_json::json!({"flavor": "fig"}), SendOptions::default()).await.expect("dispatch");
    let e = finished(h.id()).await.error.expect("error");
    assert!(e.message.contains("argument `slices` is missing"), "{}", e.message);

    let h = send(make_pie::NAME, serde_json::json!({"flavor": "fig", "slices": 2, "sugar": 1}), SendOptions::default())
        .await
        .expect("dispatch");
    let e = finished(h.id()).await.error.expect("error");
    assert!(e.message.contains("argument `sugar` is not a parameter"), "{}", e.message);
}

#[tokio::test]
async fn an_unknown_task_is_failed_unknown_task() {
    setup();
    let h = send("nobody::has_this", serde_json::json!({}), SendOptions::default()).await.expect("dispatch");
    let r = finished(h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 1));
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::UnknownTask);
    assert!(e.message.contains("`nobody::has_this`"), "{}", e.message);
}

#[tokio::test]
async fn send_refuses_args_that_are_not_an_object() {
    setup();
    match send(make_pie::NAME, serde_json::json!([1, 2]), SendOptions::default()).await {
        Err(DispatchError::ArgsNotObject { found: "an array", .. }) => {}
        other => panic!("{other:?}"),
    }
}

static BIG_RAN: AtomicU32 = AtomicU32::new(0);

#[task]
async fn takes_a_blob(blob: String) -> usize {
    BIG_RAN.fetch_add(1, Ordering::SeqCst);
    blob.len()
}

#[tokio::test]
async fn an_oversized_payload_is_refused_at_dispatch_and_nothing_is_sent() {
    setup();
    let err = takes_a_blob("x".repeat(1_048_576)).await.expect_err("too large");
    match &err {
        DispatchError::PayloadTooLarge { size, limit, task } => {
            assert!(*size > 1_048_576, "{size}");
            assert_eq!(*limit, 1_048_576);
            assert_eq!(task, takes_a_blob::NAME);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("1048576-byte limit") && text.contains("nothing was sent"), "{text}");
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(BIG_RAN.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_ids_give_none() {
    setup();
    assert_eq!(get_async_response("00000000-0000-4000-8000-000000000000").await.expect("read"), None);
    assert_eq!(get_async_response("").await.expect("read"), None);
}

#[task(capture_response = false)]
async fn fire_and_forget(n: u32) -> u32 {
    n
}

#[tokio::test]
async fn an_uncaptured_task_has_no_response_and_wait_says_why() {
    setup();
    let h = fire_and_forget(1).await.expect("dispatch");
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(get_async_response(h.id()).await.expect("read"), None);
    let waited = h.wait().await;
    assert!(matches!(waited, Err(WaitError::NotCaptured { .. })), "{waited:?}");
}

static ONCE_CALLS: AtomicU32 = AtomicU32::new(0);

#[task(capture_response = false, retries = 0)]
async fn uncaptured_once(tag: String) -> TaskResult<()> {
    ONCE_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(TaskError::retry(tag))
}

#[tokio::test]
async fn an_uncaptured_task_is_not_retried_past_its_cap() {
    setup();
    uncaptured_once("no store to dedupe".into()).await.expect("dispatch");
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(ONCE_CALLS.load(Ordering::SeqCst), 1);
}

#[task(name = "pies.count")]
async fn count(n: u32) -> u32 {
    n + 1
}

#[tokio::test]
async fn a_thousand_concurrent_tasks_all_complete() {
    setup();
    let handles = futures::future::join_all((0..1000).map(count)).await;
    let handles: Vec<_> = handles.into_iter().map(|h| h.expect("dispatch")).collect();
    task_runtime::wait_for_local_tasks().await;
    let mut complete = 0;
    for (i, h) in handles.iter().enumerate() {
        let r = get_async_response(h.id()).await.expect("read").expect("exists");
        assert_eq!((r.status, r.attempts, r.task.as_str()), (Status::Complete, 1, "pies.count"));
        assert_eq!(r.response, Some(serde_json::json!(i + 1)));
        complete += 1;
    }
    assert_eq!(complete, 1000);
}

#[tokio::test]
async fn a_handle_round_trips_through_json() {
    setup();
    let h = make_pie("pear".into(), 4).await.expect("dispatch");
    let json = serde_json::to_string(&h).expect("serialize");
    let back: task_runtime::TaskHandle<Pie> = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, h);
    assert_eq!(back.wait().await.expect("value").flavor, "pear");
}

#[tokio::test]
async fn run_inline_runs_the_body_in_place() {
    let pie = make_pie::run_inline("lime".into(), 3).await.expect("ok");
    assert_eq!(pie, Pie { flavor: "lime".into(), slices: 3 });
    assert_eq!(halve::run_inline(8).expect("even"), 4);
    assert!(!halve::run_inline(3).expect_err("odd").is_retryable());
}

#[task]
fn halve(n: u32) -> Result<u32, TaskError> {
    if n % 2 == 1 { Err(TaskError::fail(format!("{n} is odd"))) } else { Ok(n / 2) }
}

/// Runs of `tally` per key (tests run in parallel in this binary).
static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u32>> = std::sync::Mutex::new(std::collections::BTreeMap::new());

fn tally_of(key: &str) -> u32 {
    TALLY.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied().unwrap_or(0)
}

#[task]
async fn tally(key: String) -> u64 {
    *TALLY.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += 1;
    task_runtime::current().map(|c| c.attempt.unwrap_or(0)).unwrap_or(0).into()
}

#[tokio::test]
async fn one_id_sent_twice_at_once_runs_once() {
    setup();
    let id = format!("receipt-{}", uuid::Uuid::new_v4());
    let send_once = || tally::send_with(SendOptions::default().id(id.clone()), "same-id".into());
    let (a, b) = tokio::join!(send_once(), send_once());
    let (a, b) = (a.expect("dispatch"), b.expect("dispatch"));
    assert_eq!((a.id(), b.id()), (id.as_str(), id.as_str()));
    assert_eq!([a.is_existing(), b.is_existing()].iter().filter(|e| **e).count(), 1, "one send found the other's call");
    assert_eq!(finished(&id).await.status, Status::Complete);
    // And once more, later: still the first call.
    let again = send("local_backend::tally", serde_json::json!({"key": "same-id"}), SendOptions::default().id(id.clone())).await.expect("dispatch");
    assert!(again.is_existing());
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(tally_of("same-id"), 1);
}

#[tokio::test]
async fn a_bad_id_is_refused_naming_it() {
    setup();
    match tally::send_with(SendOptions::default().id(""), "x".into()).await {
        Err(DispatchError::BadId { problem, .. }) => assert_eq!(problem, "is empty"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_delayed_call_is_scheduled_then_complete_and_not_before_its_time() {
    setup();
    let sent = std::time::Instant::now();
    let h = tally::after(Duration::from_millis(400), "delayed".into()).await.expect("dispatch");
    let r = get_async_response(h.id()).await.expect("read").expect("exists");
    assert_eq!(r.status, Status::Scheduled);
    assert!(r.run_at.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tally_of("delayed"), 0, "not before its time");
    assert_eq!(get_async_response(h.id()).await.expect("read").map(|r| r.status), Some(Status::Scheduled));
    assert_eq!(h.wait().await.expect("completes"), 1);
    assert!(sent.elapsed() >= Duration::from_millis(400), "{:?}", sent.elapsed());
    assert_eq!(tally_of("delayed"), 1);
}

#[tokio::test]
async fn a_cancelled_call_never_runs_and_a_finished_one_cannot_be_cancelled() {
    setup();
    let h = tally::after(Duration::from_millis(300), "cancelled".into()).await.expect("dispatch");
    h.cancel().await.expect("a scheduled call can be cancelled");
    let waited = h.wait().await;
    assert!(matches!(waited, Err(WaitError::Cancelled { .. })), "{waited:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(tally_of("cancelled"), 0, "the timer fired and ran nothing");
    assert_eq!(get_async_response(h.id()).await.expect("read").map(|r| r.status), Some(Status::Cancelled));

    let done = tally("done".into()).await.expect("dispatch");
    done.wait().await.expect("completes");
    match task_runtime::cancel(done.id()).await {
        Err(e @ task_runtime::CancelError::NotCancellable { status: Status::Complete, .. }) => {
            assert!(e.to_string().contains("is complete"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(task_runtime::cancel("no-such-call").await, Err(task_runtime::CancelError::NotFound { .. })));
}

#[task(name = "local.overrun", timeout = "50ms", retries = 1)]
async fn overrun(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test]
async fn a_task_s_own_timeout_ends_a_body_that_overruns_it_and_is_retried_like_a_timeout() {
    setup();
    let slow = overrun(2_000).await.expect("dispatch");
    let r = finished(slow.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 2), "{r:?}");
    assert_eq!(r.error.as_ref().map(|f| f.kind.clone()), Some(FailureKind::Timeout), "{r:?}");
    // Far below the local backend's 15-minute invocation: the task's 50 ms.
    assert!(r.updated_at - r.created_at < 1_500, "{r:?}");
    let quick = overrun(1).await.expect("dispatch");
    assert_eq!(finished(quick.id()).await.status, Status::Complete);
    assert_eq!(overrun::SPEC.timeout_ms, Some(50));
}
