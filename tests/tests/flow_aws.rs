//! Retry policies and flow limits end to end under task-local and DynamoDB
//! Local, through the same AWS path as production: the worker binary
//! writes `retrying` with the next attempt's time and sends the call again
//! itself (a short gap waited in place and invoked through Lambda's Invoke
//! API, a longer one through EventBridge Scheduler's `CreateSchedule`).
//! Lambda delivers some events twice (`--duplicate-deliveries`): a late
//! duplicate of a delivery the runtime re-sent runs nothing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use task_runtime::{Status, get_async_response};

use common::faults::Served as Setup;

const LIMIT: Duration = Duration::from_secs(90);

async fn setup() -> &'static Setup {
    static SETUP: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    SETUP.get_or_init(|| Setup::start("flow")).await
}

/// The times (epoch µs) of each `what` line the worker noted, by call id.
fn noted(s: &Setup, what: &str) -> HashMap<String, Vec<u64>> {
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for line in std::fs::read_to_string(&s.spans).unwrap_or_default().lines() {
        let mut parts = line.split(' ');
        if let (Some(id), Some(w), Some(at)) = (parts.next(), parts.next(), parts.next().and_then(|t| t.parse().ok()))
            && w == what
        {
            out.entry(id.to_owned()).or_default().push(at);
        }
    }
    out
}

fn gaps_ms(times: &[u64]) -> Vec<u64> {
    times.windows(2).map(|w| (w[1] - w[0]) / 1000).collect()
}

#[test]
fn six_attempts_past_lambda_s_three_with_doubling_gaps_through_invoke_and_scheduler() {
    common::block_on(async {
        let s = setup().await;
        let h = task_runtime::send("fault.persist", json!({"succeed_on": 6}), Default::default()).await.expect("sent");
        assert_eq!(h.wait_timeout(LIMIT).await.expect("completed"), json!(6));
        let r = get_async_response(h.id()).await.expect("read").expect("recorded");
        assert_eq!((r.status, r.attempts), (Status::Complete, 6));
        let attempts = noted(s, "attempt").remove(h.id()).unwrap_or_default();
        let gaps = gaps_ms(&attempts);
        assert_eq!(gaps.len(), 5, "one body a attempt, duplicates and all: {gaps:?}");
        for (gap, least) in gaps.iter().zip([200, 400, 800, 1_600, 3_200]) {
            assert!(*gap >= least, "a gap of {gap} ms, under the policy's {least} ms: {gaps:?}");
        }
        assert_eq!(s.runs(h.id()), 1);
        // Each failed attempt was sent again by the runtime, and none fell back to Lambda's retry.
        let lines: Vec<String> = s.tl.lines().into_iter().filter(|l| l.contains(&format!("id={}", h.id()))).collect();
        let resent = lines.iter().filter(|l| l.contains("sent again by the runtime")).count();
        assert_eq!(resent, 5, "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("could not be sent again")), "{lines:#?}");
    })
}

#[test]
fn retry_after_waits_its_own_gap_through_a_one_time_schedule() {
    common::block_on(async {
        let s = setup().await;
        let h = task_runtime::send("fault.later", json!({"ms": 2_500}), Default::default()).await.expect("sent");
        // Between the attempts the item says when the next one is due.
        let mut next = None;
        for _ in 0..400 {
            let r = get_async_response(h.id()).await.expect("read").expect("recorded");
            if r.status == Status::Retrying {
                next = r.run_at;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(next.is_some(), "the call read retrying with its next attempt's time");
        assert_eq!(h.wait_timeout(LIMIT).await.expect("completed"), json!(2));
        let gaps = gaps_ms(&noted(s, "attempt").remove(h.id()).unwrap_or_default());
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0] >= 2_500, "retry_after(2.5 s): {gaps:?}");
    })
}

async fn send_all(task: &str, args: impl IntoIterator<Item = serde_json::Value>) -> Vec<task_runtime::TaskHandle<serde_json::Value>> {
    let mut handles = Vec::new();
    for a in args {
        handles.push(task_runtime::send(task, a, Default::default()).await.expect("sent"));
    }
    for h in &handles {
        h.wait_timeout(LIMIT).await.expect("completed");
        let r = get_async_response(h.id()).await.expect("read").expect("recorded");
        assert_eq!(r.attempts, 1, "a put-off delivery is not an attempt: {r:?}");
    }
    handles
}

fn ids(handles: &[task_runtime::TaskHandle<serde_json::Value>]) -> Vec<String> {
    handles.iter().map(|h| h.id().to_owned()).collect()
}

#[test]
fn concurrency_two_holds_across_instances_under_duplicate_deliveries() {
    common::block_on(async {
        let s = setup().await;
        let handles = send_all("fault.pair", (0..8).map(|_| json!({"ms": 400}))).await;
        assert_eq!(s.most_at_once(&ids(&handles)), 2, "at most 2 at once, and the limit was reached");
    })
}

#[test]
fn concurrency_one_per_key_is_a_singleton_per_key() {
    common::block_on(async {
        let s = setup().await;
        let keys = ["a", "b", "a", "b", "a", "b"];
        let handles = send_all("fault.single", keys.iter().map(|k| json!({"key": k, "ms": 300}))).await;
        let of = |key: &str| -> Vec<String> { handles.iter().zip(keys).filter(|(_, k)| *k == key).map(|(h, _)| h.id().to_owned()).collect() };
        assert_eq!((s.most_at_once(&of("a")), s.most_at_once(&of("b"))), (1, 1));
        assert_eq!(s.most_at_once(&ids(&handles)), 2, "the two keys ran side by side");
    })
}

#[test]
fn a_rate_limit_spreads_a_burst_across_instances() {
    common::block_on(async {
        let s = setup().await;
        let handles = send_all("fault.metered", (0..6).map(|n| json!({"n": n}))).await;
        let starts = noted(s, "start");
        let mut times: Vec<u64> = ids(&handles).iter().flat_map(|id| starts.get(id).cloned().unwrap_or_default()).collect();
        times.sort();
        assert_eq!(times.len(), 6, "each body once");
        // 5 a second: the starts are let through 200 ms apart (less 50 ms of
        // leeway for clocks), so the six spread over a second; a body starts
        // a begin's write after, which varies (cold starts), so the spread is
        // checked with room for that. Unlimited, the six start within ~0.2 s.
        let spread_ms = (times[5] - times[0]) / 1000;
        assert!(spread_ms >= 600, "starts (µs) {times:?}");
    })
}

#[test]
fn debounce_runs_only_the_latest_through_one_time_schedules() {
    common::block_on(async {
        let s = setup().await;
        let key = format!("k-{}", uuid::Uuid::new_v4().simple());
        let options = || task_runtime::SendOptions::default().debounce(key.clone(), Duration::from_millis(1_500));
        let mut handles = Vec::new();
        for n in 0..4 {
            handles.push(task_runtime::send("fault.ok", json!({"n": n}), options()).await.expect("sent"));
        }
        let last = handles.pop().expect("four");
        assert_eq!(last.wait_timeout(LIMIT).await.expect("the latest runs"), json!(3));
        for h in &handles {
            assert!(matches!(h.wait_timeout(LIMIT).await, Err(task_runtime::WaitError::Cancelled { .. })));
            assert_eq!(s.runs(h.id()), 0);
        }
        assert_eq!(s.runs(last.id()), 1);
    })
}
