//! What each path of a call costs in DynamoDB, counted from the store's own
//! requests to DynamoDB Local (`common::costs`): the local backend runs the
//! same worker as Lambda over a `DynamoStore` whose client records every
//! request, its size and the capacity units DynamoDB reports. The counts
//! are exact: a change that adds a request to a path fails here. The
//! figures are the performance guide's table "What a call costs".
//! (`TASK_LIST_CALLS` is a setting of the store: request_costs_listed.rs.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::costs::{Request, Requests};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Config, GroupResults, SendOptions, TaskError, TaskResult, group, task};

#[task(name = "costs.ok")]
async fn ok(n: u64) -> u64 {
    n
}

#[task(name = "costs.add")]
async fn add(n: u64, plus: u64) -> u64 {
    n + plus
}

#[task(name = "costs.flaky")]
async fn flaky() -> TaskResult<u32> {
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
    if attempt < 2 {
        return Err(TaskError::retry("not yet"));
    }
    Ok(attempt)
}

#[task(name = "costs.fails")]
async fn fails() -> TaskResult<u32> {
    Err(TaskError::fail("no"))
}

#[task(name = "costs.total")]
async fn total(results: GroupResults<u64>) -> u64 {
    results.into_iter().filter_map(Result::ok).sum()
}

/// Requests by operation: `PutItem×1 UpdateItem×2`, and the write and read units.
fn summary(requests: &[Request]) -> (String, f64, f64) {
    let mut ops = std::collections::BTreeMap::<&str, usize>::new();
    for r in requests {
        *ops.entry(r.operation.as_str()).or_default() += 1;
    }
    let text = ops.iter().map(|(op, n)| format!("{op}×{n}")).collect::<Vec<_>>().join(" ");
    let (w, r): (Vec<&Request>, Vec<&Request>) = requests.iter().partition(|r| r.writes());
    (text, w.iter().map(|r| r.units).sum(), r.iter().map(|r| r.units).sum())
}

fn print_row(path: &str, calls: usize, requests: &[Request]) {
    let (ops, w, r) = summary(requests);
    let bytes: usize = requests.iter().map(|r| r.bytes).sum();
    let n = calls as f64;
    // `+ 0.0`: no units print as 0.00, not -0.00.
    println!("| {path} | {ops} (for {calls}) | {:.2} | {:.2} | {} |", w / n + 0.0, r / n + 0.0, bytes / calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_path_of_a_call_makes_the_requests_it_is_known_to() {
    let table = common::table_name("costs");
    DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
    let requests = Requests::default();
    let store = Arc::new(DynamoStore::with_client(requests.client(), table));
    // With the pending write (TASK_PENDING_WRITE=true): the default's rows,
    // no caller write, are request_costs_unwritten.rs's.
    Config::local().with_local_retry_delay(Duration::ZERO).with_pending_write(true).with_store(store).install().expect("install once");
    let settle = || async {
        task_runtime::wait_for_local_tasks().await;
        requests.take()
    };
    // Reads by the caller's wait are not the call's: each path is measured
    // without them (waited for through the local backend).
    let n = 10;
    println!("| path | requests | write units a call | read units a call | request bytes a call |\n|---|---|---|---|---|");

    for _ in 0..n {
        ok(1).await.expect("sent");
    }
    let single = settle().await;
    print_row("a call, capture on", n, &single);
    // The caller's pending item, the worker's begin and its final write.
    assert_eq!(summary(&single).0, format!("PutItem×{n} UpdateItem×{}", 2 * n), "{single:?}");

    for _ in 0..n {
        task_runtime::send("costs.ok", serde_json::json!({"n": 1}), SendOptions::default().capture_response(false)).await.expect("sent");
    }
    let uncaptured = settle().await;
    print_row("a call, capture off", n, &uncaptured);
    assert_eq!(summary(&uncaptured).0, "", "no store request at all: {uncaptured:?}");

    for _ in 0..n {
        flaky().await.expect("sent");
    }
    let retried = settle().await;
    print_row("a call that fails once, retried", n, &retried);
    // Pending, two begins, the retryable failure's write and the final one.
    assert_eq!(summary(&retried).0, format!("PutItem×{n} UpdateItem×{}", 4 * n), "{retried:?}");

    for _ in 0..n {
        fails().await.expect("sent");
    }
    let failed = settle().await;
    print_row("a failed call", n, &failed);
    assert_eq!(summary(&failed).0, format!("PutItem×{n} UpdateItem×{}", 2 * n), "{failed:?}");

    for _ in 0..n {
        task_runtime::send("costs.ok", serde_json::json!({"n": 1}), SendOptions::default().delay(Duration::from_millis(200))).await.expect("sent");
    }
    let delayed = settle().await;
    print_row("a delayed call (and, on AWS, one Scheduler schedule)", n, &delayed);
    assert_eq!(summary(&delayed).0, format!("PutItem×{n} UpdateItem×{}", 2 * n), "{delayed:?}");

    // An idempotency key: the claim is the pending write (one PutItem, the
    // holder returned on refusal), so the first send costs what any call
    // does, and each send after it one refused PutItem, with no read.
    let key = format!("costs-{}", uuid::Uuid::new_v4().simple());
    let first = ok::send_with(SendOptions::default().idempotency_key(&key), 1).await.expect("sent");
    task_runtime::wait_for_local_tasks().await;
    for _ in 1..n {
        assert!(ok::send_with(SendOptions::default().idempotency_key(&key), 2).await.expect("sent").is_existing());
    }
    let keyed = settle().await;
    print_row(&format!("an idempotency key sent {n} times (one call)"), n, &keyed);
    assert_eq!(summary(&keyed).0, format!("PutItem×{n} UpdateItem×2"), "{keyed:?}");
    assert_eq!(first.wait().await.expect("ran"), 1);
    let _ = requests.take(); // the wait's reads

    let children = 100;
    let chord = group((0..children).map(|i| ok::call(i as u64)).collect()).then(total::call()).send().await.expect("sent");
    let grouped = settle().await;
    print_row("a group of 100 with a callback (all of it)", children, &grouped);
    assert_eq!(chord.wait().await.expect("the callback ran"), (0..children as u64).sum::<u64>());
    let (ops, _, _) = summary(&grouped);
    println!("  group of {children}: {ops}");
    // The group's record; a child's three writes and its count; the
    // callback put waiting with its message, released by the last child,
    // begun and finished, and its reads of the group (the record, then
    // BatchGetItem of the counter shards and the children's outcomes).
    let puts = grouped.iter().filter(|r| r.operation == "PutItem").count();
    let updates = grouped.iter().filter(|r| r.operation == "UpdateItem").count();
    assert_eq!((puts, updates), (children + 2, 3 * children + 3), "{ops}");
    let _ = requests.take(); // the wait's reads

    let chain = ok::call(1).then(add::step(1)).then(add::step(1)).send().await.expect("sent");
    let chained = settle().await;
    print_row("a chain of 3 (all of it)", 3, &chained);
    assert_eq!(chain.wait().await.expect("the chain ran"), 3);
    // Each step an ordinary call: its three writes, the next sent by the step before.
    assert_eq!(summary(&chained).0, "PutItem×3 UpdateItem×6", "{chained:?}");
}
