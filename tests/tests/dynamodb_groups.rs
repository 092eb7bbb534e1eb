//! Groups in the DynamoDB store, against DynamoDB Local: a child's end is
//! counted once however often it is counted, the counts are spread over
//! shards, the group ends exactly when its last child is counted, and
//! many items read back in order.

mod common;

use futures::StreamExt;
use task_runtime::envelope::GroupRef;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::group::{Callback, GroupItem, shards_for};
use task_runtime::store::{PendingItem, ResponseStore};
use task_runtime::{Status, StoreError};

const FAR_TTL: u64 = 4_000_000_000;

async fn store() -> DynamoStore {
    let store = DynamoStore::with_client(common::dynamodb(), common::table_name("groups"));
    store.create_table().await.expect("create the table");
    store
}

fn group_item(id: &str, total: u32, callback: Option<Callback>) -> GroupItem {
    GroupItem { id: id.into(), total, shards: shards_for(total), callback, window: None, now_ms: common::now_ms(), ttl: FAR_TTL }
}

#[tokio::test]
async fn every_child_is_counted_once_and_the_group_ends_with_its_last_child() {
    let s = store().await;
    let total = 600; // three shards of 200
    assert_eq!(shards_for(total), 3);
    assert!(s.put_group(group_item("g", total, None)).await.expect("put"));
    assert!(!s.put_group(group_item("g", total, None)).await.expect("a second put is refused, not an error"));
    let child = |index| GroupRef { id: "g".into(), index, total, shards: 3, window: None };
    let status = |index: u32| if index.is_multiple_of(7) { Status::Failed } else { Status::Complete };
    // Every child but the last, each counted twice at once (a duplicate delivery beside the first).
    let counts: Vec<_> = futures::stream::iter((0..total - 1).flat_map(|i| [i, i]))
        .map(|i| {
            let s = &s;
            async move { (i, s.count_ended(&child(i), status(i), common::now_ms(), FAR_TTL).await.expect("counted")) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(counts.iter().all(|(_, c)| !c.all_ended), "the group has not ended before its last child");
    for i in 0..total - 1 {
        let newly = counts.iter().filter(|(j, c)| *j == i && c.newly).count();
        assert_eq!(newly, 1, "child {i} counted newly exactly once");
    }
    let before = s.group("g").await.expect("read").expect("recorded");
    assert_eq!((before.ended, before.all_ended()), (total - 1, false));
    let last = s.count_ended(&child(total - 1), Status::Cancelled, common::now_ms(), FAR_TTL).await.expect("counted");
    assert!(last.newly && last.all_ended, "{last:?}");
    let again = s.count_ended(&child(total - 1), Status::Cancelled, common::now_ms(), FAR_TTL).await.expect("counted");
    assert!(!again.newly && again.all_ended, "a later count finds the group ended: {again:?}");
    let after = s.group("g").await.expect("read").expect("recorded");
    let failed = (0..total - 1).filter(|i| i.is_multiple_of(7)).count() as u32;
    assert_eq!((after.ended, after.failed, after.cancelled, after.complete), (total, failed, 1, total - 1 - failed));
    // The counters are spread: no shard item counts more than its share.
    let client = common::dynamodb();
    for shard in 0..3 {
        let key = format!("group:g#{shard}");
        let item = client.get_item().table_name(s.table()).key("id", aws_sdk_dynamodb::types::AttributeValue::S(key.clone())).send().await.expect("get");
        let n = item.item().and_then(|i| i.get("n")).and_then(|v| v.as_n().ok()).cloned();
        assert_eq!(n.as_deref(), Some("200"), "{key}");
    }
}

#[tokio::test]
async fn a_group_keeps_its_callback_and_a_count_without_a_group_is_an_error_naming_it() {
    let s = store().await;
    let callback = Callback { message: r#"{"task_runtime":1}"#.into(), function: Some("worker".into()), only_if_all_complete: true };
    assert!(s.put_group(group_item("with-callback", 2, Some(callback.clone()))).await.expect("put"));
    let read = s.group("with-callback").await.expect("read").expect("recorded");
    assert_eq!((read.item.total, read.item.callback, read.ended), (2, Some(callback), 0));
    assert_eq!(s.group("never").await.expect("read"), None);
    let orphan = GroupRef { id: "never".into(), index: 0, total: 1, shards: 1, window: None };
    let err = s.count_ended(&orphan, Status::Complete, common::now_ms(), FAR_TTL).await.expect_err("no such group");
    assert!(matches!(&err, StoreError::Corrupt { id, .. } if id == "group:never"), "{err}");
    let err = s.count_ended(&orphan, Status::Running, common::now_ms(), FAR_TTL).await.expect_err("running is no end");
    assert!(err.to_string().contains("`running`"), "{err}");
}

#[tokio::test]
async fn many_items_read_back_in_the_order_asked_past_one_batch() {
    let s = store().await;
    let ids: Vec<String> = (0..250).map(|i| format!("many-{i}")).collect();
    for id in ids.iter().step_by(2) {
        let item = PendingItem { id: id.clone(), task: "t".into(), now_ms: common::now_ms(), ttl: FAR_TTL, run_at_ms: None, digest: None, parent: None };
        assert!(s.put_pending(item).await.expect("put"));
    }
    let read = s.get_many(&ids).await.expect("read");
    assert_eq!(read.len(), 250);
    for (i, r) in read.iter().enumerate() {
        assert_eq!(r.is_some(), i % 2 == 0, "item {i}");
    }
}

#[tokio::test]
async fn a_waiting_child_is_released_once_and_then_read_as_pending_until_it_begins() {
    use task_runtime::store::group::{Release, Waiting};
    let s = store().await;
    let item = PendingItem { id: "w.3".into(), task: "t".into(), now_ms: common::now_ms(), ttl: FAR_TTL, run_at_ms: None, digest: None, parent: None };
    let waiting = Waiting { message: r#"{"task_runtime":1,"task":"t","id":"w.3","args":{}}"#.into(), function: Some("worker".into()) };
    assert!(s.put_waiting(item.clone(), waiting.clone()).await.expect("put"));
    assert!(!s.put_waiting(item, waiting.clone()).await.expect("a second put is refused"));
    let r = s.get("w.3").await.expect("read").expect("stored");
    assert_eq!((r.status, r.run_at, r.stale), (Status::Scheduled, None, false), "waiting, with no due time, never stale");
    assert_eq!(s.release("w.3", common::now_ms(), FAR_TTL).await.expect("release"), Release::Released(waiting.clone()));
    assert_eq!(s.release("w.3", common::now_ms(), FAR_TTL).await.expect("release"), Release::Pending(waiting), "released before, not begun: send again");
    assert_eq!(s.cancel("w.3", common::now_ms()).await.expect("cancel"), task_runtime::store::Cancel::Cancelled { was: Status::Pending });
    assert_eq!(s.release("w.3", common::now_ms(), FAR_TTL).await.expect("release"), Release::Gone(Status::Cancelled));
    assert_eq!(s.release("never", common::now_ms(), FAR_TTL).await.expect("release"), Release::NotFound);
    // A delayed call is not a waiting child: it is never released.
    let delayed = PendingItem { id: "delayed".into(), task: "t".into(), now_ms: common::now_ms(), ttl: FAR_TTL, run_at_ms: Some(common::now_ms() + 60_000), digest: None, parent: None };
    assert!(s.put_pending(delayed).await.expect("put"));
    assert_eq!(s.release("delayed", common::now_ms(), FAR_TTL).await.expect("release"), Release::Gone(Status::Scheduled));
}
