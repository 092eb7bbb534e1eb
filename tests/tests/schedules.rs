//! End to end: a schedule declared next to its task (`examples/worker`'s
//! `hourly_report`, `rate(1 hour)`) is read from the worker's manifest and
//! fired by task-local, sped up; each run is a normal captured call whose
//! latest run can be found; one tick delivered twice, or retried by
//! Scheduler with a new execution id, runs once; and the keep-warm ping the
//! worker declares is fired too.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::task_local::{self, TaskLocal};
use serde_json::{Value, json};
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Config, Status, get_async_response, latest_run};

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_schedule_runs_as_calls_whose_latest_can_be_found_and_a_tick_runs_once() {
    let table = common::table_name("schedules");
    DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
    let worker = format!("worker={}", task_local::built("examples/worker").display());
    let args = [
        "--function".to_owned(), worker,
        // rate(1 hour) every 2 s; the 5-minute keep-warm ping every 1/6 s.
        "--schedule-speedup".into(), "1800".into(),
        // Every tick is delivered again as Scheduler's retry, with a new execution id.
        "--scheduler-retries".into(), "1".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(), format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
    ];
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    let lambda = aws_sdk_lambda::Client::new(&common::sdk_config(&tl.endpoint));
    Config::lambda("worker", None)
        .with_store(Arc::new(DynamoStore::with_client(common::dynamodb(), table.clone())))
        .with_invoker(LambdaInvoker::with_client(lambda.clone()))
        .install()
        .expect("install once");

    // The schedule fires on its own: find its latest run, and see it complete.
    let started = Instant::now();
    let run = loop {
        if let Some(id) = latest_run("worker::hourly_report").await.expect("read") {
            break id;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no run noted in 30 s:\n{}", tl.tail(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(run.starts_with("schedule:worker::hourly_report:"), "{run}");
    let handle = task_runtime::TaskHandle::<usize>::from_id(run.clone(), "worker::hourly_report");
    assert_eq!(handle.wait_timeout(Duration::from_secs(30)).await.expect("completes"), 3, "words in its title");
    let lines = tl.lines();
    assert!(lines.iter().any(|l| l.contains("schedule worker::hourly_report (rate(1 hour)) fires every 2s")), "{}", tl.tail(20));
    assert!(lines.iter().any(|l| l.contains("schedule keep-warm (rate(5 minutes)) fired")), "{}", tl.tail(20));

    // Scheduler retried every tick with a new execution id: each tick is
    // still one call, named by the time it was due, run once.
    assert!(tl.stats().await["functions"]["worker"]["scheduler_retries"].as_u64() >= Some(1), "{}", tl.stats().await);
    let runs = common::ids_with_prefix(&table, "schedule:worker::hourly_report:").await;
    assert!(!runs.is_empty());
    for (id, attempts) in &runs {
        let due = id.trim_start_matches("schedule:worker::hourly_report:");
        // `2026-11-30T10:00:00Z`: the scheduled time, the same for every attempt at the tick.
        let shape: String = due.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
        assert_eq!(shape, "0000-00-00T00:00:00Z", "a run named by its scheduled time: {id}");
        assert_eq!(attempts.as_n().map(String::as_str), Ok("1"), "{id}: the retried delivery did not run it again");
    }

    // One tick delivered twice (the same scheduled time) runs once.
    let manifest: Value = {
        let out = std::process::Command::new(task_local::built("examples/worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest");
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let input = manifest["schedules"][0]["input"].as_str().expect("the schedule's message").replace("<aws.scheduler.scheduled-time>", "tick-42");
    // Delivered twice, one after the other, each answered before the next:
    // the worker's answers say what it did, with no sleep to guess by.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let out = lambda.invoke().function_name("worker").invocation_type(InvocationType::RequestResponse).payload(Blob::new(input.clone())).send().await.expect("invoke");
        let body: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
        answers.push(body);
    }
    assert_eq!((answers[0]["status"].as_str(), answers[0]["note"].as_str()), (Some("complete"), None), "{answers:?}");
    assert_eq!((answers[1]["status"].as_str(), answers[1]["note"].as_str()), (Some("complete"), Some("duplicate")), "{answers:?}");
    // No caller wrote a pending item: the worker's begin created it.
    let r = get_async_response("schedule:worker::hourly_report:tick-42").await.expect("read").expect("exists");
    assert_eq!((r.status, r.response, r.attempts), (Status::Complete, Some(json!(3)), 1), "the second delivery did not run it again");
}

/// A `cron(...)` schedule (the tests' worker's `fault.tick`, every minute)
/// fires on a clock sped up 120 times: every half second.
#[tokio::test(flavor = "multi_thread")]
async fn a_cron_schedule_fires_on_a_sped_up_clock() {
    let table = common::table_name("cron");
    let store = DynamoStore::with_client(common::dynamodb(), table.clone());
    store.create_table().await.expect("table");
    let args = [
        "--function".to_owned(), format!("fault={}", task_local::built("fault-worker").display()),
        "--schedule-speedup".into(), "120".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(), format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
    ];
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    // Three runs, each named by the minute it was due, within 30 s: without
    // the speed-up, three runs of an every-minute cron take two minutes.
    let started = Instant::now();
    let runs = loop {
        let due: Vec<String> = common::ids_with_prefix(&table, "schedule:fault.tick:").await.into_iter().map(|(id, _)| id).collect();
        if due.len() >= 3 {
            break due;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "fewer than 3 runs of fault.tick in 30 s ({due:?}):\n{}", tl.tail(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Due a minute apart on the sped-up clock, at the top of each minute.
    assert!(runs.iter().all(|id| id.ends_with(":00Z")), "{runs:?}");
    // The latest run is noted too.
    use task_runtime::store::ResponseStore;
    let note = store.get(&task_runtime::store::latest_run_id("fault.tick")).await.expect("read").expect("a latest run");
    assert!(note.response.as_ref().and_then(|v| v.as_str()).is_some_and(|id| id.starts_with("schedule:fault.tick:")), "{note:?}");
    assert!(tl.lines().iter().any(|l| l.contains("schedule fault.tick (cron(* * * * ? *)) fires at its times, 120x faster")), "{}", tl.tail(20));
}
