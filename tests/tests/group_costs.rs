//! What a group costs in store operations, counted: the figures of the
//! README's table "Writes per child". The local backend runs the same
//! worker as Lambda over a store that counts each operation before it
//! hands it to the memory store (each operation is one DynamoDB request in
//! `DynamoStore`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use task_runtime::envelope::GroupRef;
use task_runtime::store::group::{Counted, GroupItem, GroupState};
use task_runtime::store::memory::MemoryStore;
use task_runtime::store::{BeginRequest, Begun, Cancel, FinalState, Finished, PendingItem, ResponseStore};
use task_runtime::{AsyncResponse, Config, Failure, Status, StoreError, group};

#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    ops: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counting {
    fn note(&self, op: &'static str) {
        *self.ops.lock().expect("lock").entry(op).or_default() += 1;
    }
    fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.ops.lock().expect("lock"))
    }
}

#[async_trait]
impl ResponseStore for Counting {
    async fn put_pending(&self, item: PendingItem) -> Result<bool, StoreError> {
        self.note("put_pending");
        self.inner.put_pending(item).await
    }
    async fn claim_id(&self, item: PendingItem, claim: task_runtime::store::IdClaim) -> Result<task_runtime::store::Claimed, StoreError> {
        self.note("claim_id");
        self.inner.claim_id(item, claim).await
    }
    async fn discard_pending(&self, id: &str) -> Result<(), StoreError> {
        self.note("discard_pending");
        self.inner.discard_pending(id).await
    }
    async fn refuse_pending(&self, id: &str, digest: &str, failure: Failure, now_ms: u64) -> Result<bool, StoreError> {
        self.note("refuse_pending");
        self.inner.refuse_pending(id, digest, failure, now_ms).await
    }
    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Cancel, StoreError> {
        self.note("cancel");
        self.inner.cancel(id, now_ms).await
    }
    async fn note_latest_run(&self, schedule: &str, run_id: &str, now_ms: u64, ttl: u64) -> Result<(), StoreError> {
        self.note("note_latest_run");
        self.inner.note_latest_run(schedule, run_id, now_ms, ttl).await
    }
    async fn begin(&self, req: BeginRequest) -> Result<Begun, StoreError> {
        self.note("begin");
        self.inner.begin(req).await
    }
    async fn renew(&self, id: &str, request_id: &str, lease_until_ms: u64) -> Result<Finished, StoreError> {
        self.note("renew");
        self.inner.renew(id, request_id, lease_until_ms).await
    }
    async fn finish(&self, id: &str, request_id: &str, state: FinalState, now_ms: u64, message: Option<&str>) -> Result<Finished, StoreError> {
        self.note("finish");
        self.inner.finish(id, request_id, state, now_ms, message).await
    }
    async fn fail_unfinished(&self, item: PendingItem, failure: Failure, message: Option<&str>) -> Result<bool, StoreError> {
        self.note("fail_unfinished");
        self.inner.fail_unfinished(item, failure, message).await
    }
    async fn get(&self, id: &str) -> Result<Option<AsyncResponse>, StoreError> {
        self.note("get");
        self.inner.get(id).await
    }
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<AsyncResponse>>, StoreError> {
        self.note("get_many");
        self.inner.get_many(ids).await
    }
    async fn put_group(&self, group: GroupItem) -> Result<bool, StoreError> {
        self.note("put_group");
        self.inner.put_group(group).await
    }
    async fn count_ended(&self, child: &GroupRef, status: Status, now_ms: u64, ttl: u64) -> Result<Counted, StoreError> {
        self.note("count_ended");
        self.inner.count_ended(child, status, now_ms, ttl).await
    }
    async fn group(&self, id: &str) -> Result<Option<GroupState>, StoreError> {
        self.note("group");
        self.inner.group(id).await
    }
}

#[task_runtime::task(name = "costs.ok")]
async fn ok(n: u64) -> u64 {
    n
}

#[task_runtime::task(name = "costs.callback")]
async fn callback() -> u64 {
    0
}

#[tokio::test]
async fn a_child_costs_one_write_more_than_a_single_call() {
    let store = Arc::new(Counting::default());
    Config::local().with_local_retry_delay(Duration::ZERO).with_store(store.clone()).install().expect("install once");
    let n = 100u64;

    // n single calls, then the same n as a group with a callback.
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(ok(i).await.expect("sent"));
    }
    task_runtime::wait_for_local_tasks().await;
    let singles = store.take();
    let chord = group((0..n).map(ok::call).collect()).then(callback::call()).send().await.expect("sent");
    task_runtime::wait_for_local_tasks().await;
    let grouped = store.take();
    println!("{n} single calls: {singles:?}\n{n} children and a callback: {grouped:?}");

    // A single call: no write of the caller's (no pending write, the
    // default), the worker's begin (which creates the item) and finish.
    assert_eq!(singles, BTreeMap::from([("begin", n), ("finish", n)]));
    // A child: the same two, and its count. The group: its record, and for
    // the callback one read of the group and a call's three writes (its
    // item waits in the store until the last child ends).
    let expected = BTreeMap::from([
        ("put_group", 1),
        ("put_pending", 1),
        ("begin", n + 1),
        ("finish", n + 1),
        ("count_ended", n),
        ("group", 1),
    ]);
    assert_eq!(grouped, expected);
    assert_eq!(chord.wait().await.expect("ran"), 0);
    drop(handles);
}
