//! End to end: a schedule declared next to its task (`examples/worker`'s
//! `hourly_report`, `rate(1 hour)`) is read from the worker's manifest and
//! fired by task-local, sped up; each run is a normal captured call whose
//! latest run can be found; one tick delivered twice runs once; and the
//! keep-warm ping the worker declares is fired too.

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
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(), format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
    ];
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    let lambda = aws_sdk_lambda::Client::new(&common::sdk_config(&tl.endpoint));
    Config::lambda("worker", None)
        .with_store(Arc::new(DynamoStore::with_client(common::dynamodb(), table)))
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

    // One tick delivered twice (the same execution id) runs once.
    let manifest: Value = {
        let out = std::process::Command::new(task_local::built("examples/worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest");
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let input = manifest["schedules"][0]["input"].as_str().expect("the schedule's message").replace("<aws.scheduler.execution-id>", "tick-42");
    for _ in 0..2 {
        let sent = lambda.invoke().function_name("worker").invocation_type(InvocationType::Event).payload(Blob::new(input.clone())).send().await;
        assert_eq!(sent.expect("invoke").status_code(), 202);
    }
    // No caller wrote a pending item: the worker's begin creates it.
    let id = "schedule:worker::hourly_report:tick-42";
    let started = Instant::now();
    let r = loop {
        match get_async_response(id).await.expect("read") {
            Some(r) if r.status.is_finished() => break r,
            _ => assert!(started.elapsed() < Duration::from_secs(30), "tick-42 did not finish:\n{}", tl.tail(20)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((r.status, r.response), (Status::Complete, Some(json!(3))));
    let r = get_async_response(id).await.expect("read").expect("exists");
    assert_eq!(r.attempts, 1, "the second delivery did not run it again");
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
    // This test's table is not the installed one: read the note with the store itself.
    use task_runtime::store::ResponseStore;
    let started = Instant::now();
    let run = loop {
        let note = store.get(&task_runtime::store::latest_run_id("fault.tick")).await.expect("read");
        if let Some(id) = note.and_then(|r| r.response).and_then(|v| v.as_str().map(str::to_owned)) {
            break id;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "fault.tick never ran:\n{}", tl.tail(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(run.starts_with("schedule:fault.tick:"), "{run}");
    assert!(tl.lines().iter().any(|l| l.contains("schedule fault.tick (cron(* * * * ? *)) fires at its times, 120x faster")), "{}", tl.tail(20));
}
