//! Retry policies on the local backend: retries past Lambda's two, sent
//! again by the runtime after growing gaps; a body's own `retry_after`; the
//! item reading `retrying` with its next attempt's time meanwhile. The gaps
//! are checked from below only (a timer never fires early), never from
//! above: these machines are noisy.

use std::collections::HashMap;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use task_runtime::{Config, Status, TaskError, TaskResult, get_async_response, task};

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Lambda's own retries come after 5 ms here: a gap much longer than
        // that is the runtime's.
        Config::local().with_local_retry_delay(Duration::from_millis(5)).install().expect("the first install succeeds");
    });
}

/// When each attempt of each call began.
static STARTS: Mutex<Option<HashMap<String, Vec<Instant>>>> = Mutex::new(None);

/// Note this attempt's start; the number of attempts so far.
fn started() -> usize {
    let id = task_runtime::current().expect("inside a task").id;
    let mut starts = STARTS.lock().unwrap();
    let list = starts.get_or_insert_with(HashMap::new).entry(id).or_default();
    list.push(Instant::now());
    list.len()
}

fn gaps_ms(id: &str) -> Vec<u128> {
    let starts = STARTS.lock().unwrap();
    let list = starts.as_ref().and_then(|s| s.get(id)).cloned().unwrap_or_default();
    list.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
}

#[task(name = "retry.flaky", retries = 5, retry_backoff = "100ms", retry_jitter = false)]
async fn flaky(succeed_on: usize) -> TaskResult<usize> {
    let attempt = started();
    if attempt < succeed_on {
        return Err(TaskError::retry(format!("attempt {attempt}: not yet")));
    }
    Ok(attempt)
}

#[task(name = "retry.slow_down")]
async fn slow_down() -> TaskResult<String> {
    if started() == 1 {
        return Err(TaskError::retry_after(Duration::from_millis(1_500), "partner says: slow down"));
    }
    Ok("sent".into())
}

/// Retries past the function's own (3 attempts here), with no backoff.
#[task(name = "retry.past", retries = 3)]
async fn past(succeed_on: usize) -> TaskResult<usize> {
    let attempt = started();
    if attempt < succeed_on {
        return Err(TaskError::retry(format!("attempt {attempt}: not yet")));
    }
    Ok(attempt)
}

#[task(name = "retry.never", retries = 3, retry_backoff = "10ms")]
async fn never() -> TaskResult<()> {
    started();
    Err(TaskError::retry("still down"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_attempts_past_lambda_s_three_with_gaps_that_double() {
    setup();
    let h = flaky(6).await.expect("dispatch");
    let value = tokio::time::timeout(Duration::from_secs(30), h.wait()).await.expect("ends within 30 s").expect("completes");
    assert_eq!(value, 6, "the sixth attempt completes: three more than Lambda's own");
    let r = get_async_response(h.id()).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (Status::Complete, 6));
    let gaps = gaps_ms(h.id());
    assert_eq!(gaps.len(), 5, "{gaps:?}");
    for (gap, least) in gaps.iter().zip([100, 200, 400, 800, 1_600]) {
        assert!(*gap >= least, "a gap of {gap} ms, under the policy's {least} ms: {gaps:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_sets_the_gap_and_the_item_shows_when_the_next_attempt_is_due() {
    setup();
    let h = slow_down().await.expect("dispatch");
    // Between the attempts: `retrying`, with the next attempt's time.
    let mut seen = None;
    for _ in 0..200 {
        let r = get_async_response(h.id()).await.unwrap().unwrap();
        if r.status == Status::Retrying {
            seen = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let retrying = seen.expect("the call reads retrying between its attempts");
    let run_at = retrying.run_at.expect("a retrying call the runtime re-sends has its next attempt's time");
    assert!(run_at >= retrying.updated_at + 1_400, "due {} ms after the failure", run_at - retrying.updated_at);
    assert_eq!(retrying.error.as_ref().map(|e| e.message.as_str()), Some("partner says: slow down"));
    let value = tokio::time::timeout(Duration::from_secs(30), h.wait()).await.expect("ends within 30 s");
    assert_eq!(value.expect("completes"), "sent");
    let gaps = gaps_ms(h.id());
    assert!(gaps[0] >= 1_500, "retry_after(1.5 s), not Lambda's 5 ms: {gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_of_the_policy_s_attempts_ends_failed() {
    setup();
    let h = never().await.expect("dispatch");
    let err = tokio::time::timeout(Duration::from_secs(30), h.wait()).await.expect("ends within 30 s").expect_err("fails");
    let r = get_async_response(h.id()).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (Status::Failed, 4), "{err}");
    assert!(r.run_at.is_some_and(|at| at <= r.updated_at), "a failed call's run_at is when its last attempt was due: {r:?}");
}

/// The manifest (what `tasks check` and the template read) lists the
/// options a task declares, and nothing for the ones it does not.
#[test]
fn the_manifest_lists_only_the_options_each_task_declares() {
    let manifest = task_runtime::schedules::manifest();
    let task = |name: &str| manifest["tasks"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name)).cloned().expect(name);
    let flaky = task("retry.flaky");
    assert_eq!((flaky["retries"].as_u64(), flaky["retry_backoff_ms"].as_u64()), (Some(5), Some(100)), "{flaky}");
    assert_eq!(flaky["retry_jitter"], false, "{flaky}");
    for absent in ["retry_backoff_max_ms", "concurrency", "concurrency_key", "rate_limit", "rate_limit_key"] {
        assert!(flaky.get(absent).is_none(), "{absent} is not declared: {flaky}");
    }
    let plain = task("retry.slow_down");
    for absent in ["retry_backoff_ms", "retry_jitter", "concurrency", "rate_limit"] {
        assert!(plain.get(absent).is_none(), "{absent} is not declared: {plain}");
    }
}

#[tokio::test]
async fn retries_declared_past_the_function_s_own_are_sent_by_the_runtime_even_without_a_backoff() {
    setup();
    let h = past(4).await.expect("dispatch");
    let value = tokio::time::timeout(Duration::from_secs(30), h.wait()).await.expect("ends within 30 s");
    assert_eq!(value.expect("completes on its fourth attempt, one past Lambda's three"), 4);
    let r = get_async_response(h.id()).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (Status::Complete, 4));
}
