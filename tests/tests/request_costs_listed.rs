//! What a listed call costs (`TASK_LIST_CALLS`, a setting of the store, so
//! in a process of its own): the same requests as a call that is not
//! listed, each item one attribute larger, and DynamoDB writes the index of
//! recent calls from them (its units are in the table's consumed capacity).
//! The performance guide's table "What a call costs" has its row.

mod common;

use std::sync::Arc;

use common::costs::Requests;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Config, task};

#[task(name = "costs.listed")]
async fn listed(n: u64) -> u64 {
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listed_call_makes_the_requests_of_any_call() {
    let table = common::table_name("costs-listed");
    DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
    let requests = Requests::default();
    let store = Arc::new(DynamoStore::with_client(requests.client(), table).listing_calls(true));
    // TASK_LIST_CALLS: the store lists, and the callers keep the pending write.
    let mut config = Config::local().with_store(store);
    config.list_calls = true;
    config.install().expect("install once");
    let n: usize = 10;
    for i in 0..n as u64 {
        listed(i).await.expect("sent");
    }
    task_runtime::wait_for_local_tasks().await;
    let sent = requests.take();
    let count = |op: &str| sent.iter().filter(|r| r.operation == op).count();
    let units: f64 = sent.iter().map(|r| r.units).sum();
    let bytes: usize = sent.iter().map(|r| r.bytes).sum();
    println!("| a listed call (TASK_LIST_CALLS) | PutItem×{} UpdateItem×{} (for {n}) | {:.2} | 0.00 | {} |", count("PutItem"), count("UpdateItem"), units / n as f64, bytes / n);
    assert_eq!((count("PutItem"), count("UpdateItem"), sent.len()), (n, 2 * n, 3 * n), "{sent:?}");
}
