//! The whole lambda path in one process: `#[task]` calls go through the
//! lambda backend to a loopback Lambda endpoint, which hands each payload
//! to the real worker (retrying function errors under one request id, as
//! Lambda does); responses live in DynamoDB Local.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::FakeLambda;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::registry::Registry;
use task_runtime::store::ResponseStore;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::worker::{Invocation, Worker, WorkerSettings};
use task_runtime::{Config, DispatchError, FailureKind, Reply, Status, TaskError, TaskResult, WaitError, task};

struct Env {
    fake: FakeLambda,
    store: Arc<DynamoStore>,
}

/// One fake Lambda and one table for the whole binary, installed once.
async fn env() -> &'static Env {
    static ENV: tokio::sync::OnceCell<Env> = tokio::sync::OnceCell::const_new();
    ENV.get_or_init(|| async {
        let store = Arc::new(DynamoStore::with_client(common::dynamodb(), common::table_name("dispatch")));
        store.create_table().await.expect("table");
        let worker = Worker::new(
            Registry::global().expect("registry"),
            Some(store.clone() as Arc<dyn ResponseStore>),
            WorkerSettings { max_attempts: 3, response_ttl: Duration::from_secs(600), timeout_margin: Duration::from_millis(50), lease: Duration::from_secs(10), signing_key: None },
        );
        let handle = tokio::runtime::Handle::current();
        let fake = FakeLambda::start(Arc::new(move |req| {
            if req.path.contains("/functions/no-such-fn/") {
                return common::aws_error(404, "ResourceNotFoundException", "Function not found: no-such-fn");
            }
            let (worker, payload) = (worker.clone(), req.body.clone());
            handle.spawn(async move {
                let request_id = uuid::Uuid::new_v4().to_string();
                for _attempt in 1..=3 {
                    let inv = Invocation { request_id: request_id.clone(), deadline_ms: common::now_ms() + 30_000, attempt: None };
                    if let Reply::Success(_) = worker.handle_payload(&payload, &inv).await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
            (202, vec![], String::new())
        }))
        .await;
        Config::lambda("worker-fn", None)
            .with_store(store.clone())
            .with_invoker(LambdaInvoker::with_client(fake.client()))
            .install()
            .expect("install once");
        Env { fake, store }
    })
    .await
}

#[task]
async fn double(n: u64) -> u64 {
    n * 2
}

#[task]
async fn flaky_until(n: u32) -> TaskResult<u32> {
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(0);
    if attempt < n { Err(TaskError::retry(format!("attempt {attempt}"))) } else { Ok(attempt) }
}

#[task]
async fn blob(data: String) -> usize {
    data.len()
}

#[test]
fn a_task_goes_pending_to_complete_through_lambda_and_dynamodb() {
    common::block_on(pending_to_complete())
}

async fn pending_to_complete() {
    let env = env().await;
    let before = env.fake.received().len();
    let h = double(21).await.expect("dispatch");
    // A poll reads it pending at once: no item yet (no pending write, the
    // default; its dated id says it was sent), or further along already.
    let r = task_runtime::get_async_response(h.id()).await.expect("read").expect("known at dispatch");
    assert!(matches!(r.status, Status::Pending | Status::Running | Status::Complete), "{r:?}");
    assert_eq!(h.wait_timeout(Duration::from_secs(20)).await.expect("value"), 42);
    let got = env.fake.received();
    let sent = &got[before..].iter().find(|c| String::from_utf8_lossy(&c.body).contains(h.id())).expect("the invoke for this id").clone();
    assert_eq!(sent.path, "/2015-03-31/functions/worker-fn/invocations");
    let env_json: serde_json::Value = serde_json::from_slice(&sent.body).expect("JSON payload");
    assert_eq!(env_json["task_runtime"], 1);
    assert_eq!(env_json["task"], double::NAME);
    assert_eq!(env_json["args"], serde_json::json!({"n": 21}));
    assert_eq!(env_json["capture"], true);
}

#[test]
fn retries_under_one_request_id_are_counted_in_dynamodb() {
    common::block_on(retries_counted())
}

async fn retries_counted() {
    env().await;
    let h = flaky_until(3).await.expect("dispatch");
    assert_eq!(h.wait_timeout(Duration::from_secs(20)).await.expect("third attempt succeeds"), 3);
    let r = task_runtime::get_async_response(h.id()).await.expect("read").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 3));

    let h = flaky_until(9).await.expect("dispatch");
    match h.wait_timeout(Duration::from_secs(20)).await {
        Err(WaitError::Failed { attempts: 3, failure, .. }) => assert_eq!(failure.kind, FailureKind::Error),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_payload_fails_at_the_call_site_and_no_request_is_made() {
    common::block_on(oversized())
}

async fn oversized() {
    let env = env().await;
    let before = env.fake.received().len();
    match blob("y".repeat(1_100_000)).await {
        Err(DispatchError::PayloadTooLarge { size, limit: 1_048_576, .. }) => assert!(size > 1_100_000),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after: Vec<_> = env.fake.received()[before..].iter().filter(|c| c.body.len() > 1_000_000).cloned().collect();
    assert!(after.is_empty(), "no request reached the endpoint");
}

#[task(function = "no-such-fn")]
async fn misdirected(n: u32) -> u32 {
    n
}

#[test]
fn a_refused_invoke_leaves_no_pending_item_behind() {
    common::block_on(refused())
}

async fn refused() {
    let env = env().await;
    match misdirected(1).await {
        Err(DispatchError::Invoke { status: Some(404), code, .. }) => {
            assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
        }
        other => panic!("{other:?}"),
    }
    // The pending write ran concurrently with the invoke; it was taken back.
    let scan = common::dynamodb()
        .scan()
        .table_name(env.store.table())
        .filter_expression("#t = :t")
        .expression_attribute_names("#t", "task")
        .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::S(misdirected::NAME.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    assert_eq!(scan.count(), 0, "items left for a call that was never sent: {:?}", scan.items());
}
