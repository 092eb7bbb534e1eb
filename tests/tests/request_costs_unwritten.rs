//! What a call costs with no caller write (`TASK_PENDING_WRITE=false`, a
//! setting of the runtime, so in a process of its own): a call that runs
//! once is the worker's two writes, `begin` (which creates the item) and
//! its final write; a group child three, its count the third; and ids of
//! your own, delays and idempotency keys keep the caller's write, which
//! they need before the invoke. A handle whose call has no item yet reads
//! it as pending until Lambda can no longer deliver it, then as stale. The
//! performance guide's table "What a call costs" has these rows.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::costs::{Request, Requests};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Config, GroupResults, SendOptions, TaskHandle, WaitError, group, task};

#[task(name = "costs.unwritten")]
async fn ok(n: u64) -> u64 {
    n
}

#[task(name = "costs.unwritten_total")]
async fn total(results: GroupResults<u64>) -> u64 {
    results.into_iter().filter_map(Result::ok).sum()
}

fn count(sent: &[Request], op: &str) -> usize {
    sent.iter().filter(|r| r.operation == op).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_pending_write_a_call_is_two_writes_and_a_group_child_three() {
    let table = common::table_name("costs-unwritten");
    DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
    let requests = Requests::default();
    let store = Arc::new(DynamoStore::with_client(requests.client(), table));
    Config::local().with_local_retry_delay(Duration::ZERO).with_pending_write(false).with_store(store).install().expect("install once");
    let n: usize = 10;

    let mut handles = Vec::new();
    for i in 0..n as u64 {
        handles.push(ok(i).await.expect("sent"));
    }
    task_runtime::wait_for_local_tasks().await;
    let single = requests.take();
    let units: f64 = single.iter().map(|r| r.units).sum();
    println!("| a call, capture on, TASK_PENDING_WRITE=false | UpdateItem×{} (for {n}) | {:.2} |", count(&single, "UpdateItem"), units / n as f64);
    assert_eq!((count(&single, "UpdateItem"), single.len()), (2 * n, 2 * n), "begin and the final write alone: {single:?}");
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(h.wait().await.expect("ran"), i as u64);
    }
    let _ = requests.take(); // the waits' reads

    // An id of your own and a delay keep the caller's write: the claim, the `scheduled` item.
    ok::send_with(SendOptions::default().id(format!("own-{}", uuid::Uuid::new_v4().simple())), 1).await.expect("sent");
    ok::send_with(SendOptions::default().delay(Duration::from_millis(100)), 1).await.expect("sent");
    task_runtime::wait_for_local_tasks().await;
    let kept = requests.take();
    assert_eq!((count(&kept, "PutItem"), count(&kept, "UpdateItem")), (2, 4), "{kept:?}");

    let children = 100;
    let chord = group((0..children).map(|i| ok::call(i as u64)).collect()).then(total::call()).send().await.expect("sent");
    task_runtime::wait_for_local_tasks().await;
    let grouped = requests.take();
    println!(
        "| a group of 100 with a callback, TASK_PENDING_WRITE=false | PutItem×{} UpdateItem×{} (for {children}) |",
        count(&grouped, "PutItem"),
        count(&grouped, "UpdateItem")
    );
    // The group's record and the callback's waiting item; each child's begin,
    // final write and count; the callback released, begun and finished.
    assert_eq!((count(&grouped, "PutItem"), count(&grouped, "UpdateItem")), (2, 3 * children + 3), "{grouped:?}");
    assert_eq!(chord.wait().await.expect("the callback ran"), (0..children as u64).sum::<u64>());

    // A call with no item yet reads as pending until it can no longer be
    // delivered: its dated id (a version-8 UUID, its first 48 bits the send
    // time) says it was sent, and when.
    let dated = |sent_ms: u64| {
        let mut bytes = [7u8; 16];
        bytes[..6].copy_from_slice(&sent_ms.to_be_bytes()[2..]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
    };
    let waiting = TaskHandle::<u64>::from_id(dated(common::now_ms()), "t");
    match waiting.wait_timeout(Duration::from_millis(200)).await {
        Err(WaitError::Timeout { last, .. }) => assert_eq!(last, task_runtime::Status::Pending),
        other => panic!("not begun yet reads as pending: {other:?}"),
    }
    let read = task_runtime::get_async_response(waiting.id()).await.expect("reads").expect("pending");
    assert_eq!((read.status, read.attempts, read.stale), (task_runtime::Status::Pending, 0, false));
    // Sent 7 hours ago: past the 6 hours Lambda keeps an event, within the response TTL.
    let lost = TaskHandle::<u64>::from_id(dated(common::now_ms() - 7 * 3_600_000), "t");
    assert!(matches!(lost.wait().await, Err(WaitError::Stale { attempts: 0, .. })), "past its delivery, with no item: stale");
    let plain = TaskHandle::<u64>::from_id(uuid::Uuid::new_v4().to_string(), "t");
    assert!(matches!(plain.wait().await, Err(WaitError::NotFound { .. })), "an id that is not dated: unknown");
}
