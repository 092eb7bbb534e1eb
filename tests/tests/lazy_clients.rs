//! "Clients are built once, lazily: a worker that never dispatches never
//! builds a Lambda client" (README, Configuration), checked on the worker
//! binary under task-local: its debug log names every SDK client it builds.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::task_local::{self, TaskLocal};
use serde_json::json;
use task_runtime::envelope::Envelope;
use task_runtime::store::ResponseStore;
use task_runtime::store::dynamodb::DynamoStore;

async fn run_to_end(tl: &TaskLocal, store: &DynamoStore, task: &str, args: serde_json::Value) {
    let env = Envelope::new(task, args.as_object().cloned().unwrap_or_default(), true, 0);
    let out = tl.client().invoke().function_name("fault").invocation_type(InvocationType::Event).payload(Blob::new(env.to_payload().expect("small"))).send().await;
    assert_eq!(out.expect("invoke").status_code(), 202);
    let started = Instant::now();
    while !store.get(&env.id).await.expect("read").is_some_and(|r| r.status.is_finished()) {
        assert!(started.elapsed() < Duration::from_secs(30), "{task} did not end:\n{}", tl.tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn built(tl: &TaskLocal, client: &str) -> usize {
    tl.lines().iter().filter(|l| l.contains("building an AWS SDK client") && l.contains(client)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_builds_its_lambda_client_only_when_it_dispatches_and_then_once() {
    let table = common::table_name("lazy");
    let store = DynamoStore::with_client(common::dynamodb(), table.clone());
    store.create_table().await.expect("table");
    let args = vec![
        "--no-schedules".to_owned(),
        "--function".into(),
        format!("fault={}", task_local::built("fault-worker").display()),
        "--concurrency".into(),
        "1".into(),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
        "--env".into(),
        "RUST_LOG=task_runtime=debug".into(),
    ];
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    for _ in 0..3 {
        run_to_end(&tl, &store, "fault.ok", json!({"n": 1})).await;
    }
    assert_eq!(built(&tl, "aws_sdk_dynamodb"), 1, "the store's client, once:\n{}", tl.tail(30));
    assert_eq!(built(&tl, "aws_sdk_lambda"), 0, "no Lambda client for a worker that only runs tasks:\n{}", tl.tail(30));
    // A task that sends a task builds it, once.
    run_to_end(&tl, &store, "fault.relay", json!({})).await;
    run_to_end(&tl, &store, "fault.relay", json!({})).await;
    assert_eq!(built(&tl, "aws_sdk_lambda"), 1, "{}", tl.tail(30));
}
