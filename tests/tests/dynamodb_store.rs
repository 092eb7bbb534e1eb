//! The DynamoDB response store against the real DynamoDB Local: every
//! conditional path of put_pending, begin and finish, TTL, and the raw item.

mod common;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, TimeToLiveStatus};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::{BeginRequest, Begun, Cancel, FinalState, Finished, PendingItem, ResponseStore};
use task_runtime::{Failure, FailureKind, Status, StoreError};

const FAR_TTL: u64 = 4_000_000_000; // epoch seconds, in 2096

async fn store() -> DynamoStore {
    let store = DynamoStore::with_client(common::dynamodb(), common::table_name("responses"));
    store.create_table().await.expect("create the table");
    store
}

fn pending(id: &str) -> PendingItem {
    PendingItem { id: id.into(), task: "pies::bake".into(), now_ms: common::now_ms(), ttl: FAR_TTL, run_at_ms: None, digest: None, parent: None }
}

fn begin(id: &str, request_id: &str, lease_until_ms: u64) -> BeginRequest {
    BeginRequest {
        id: id.into(),
        task: "pies::bake".into(),
        request_id: request_id.into(),
        lease_until_ms,
        max_attempts: 3,
        now_ms: common::now_ms(),
        ttl: FAR_TTL,
        resend: None,
        parent: None,
    }
}

fn live() -> u64 {
    common::now_ms() + 60_000
}

#[tokio::test]
async fn create_table_is_on_demand_with_ttl_and_idempotent() {
    let store = store().await;
    store.create_table().await.expect("a second call on an existing table succeeds");
    let client = common::dynamodb();
    let t = client.describe_table().table_name(store.table()).send().await.expect("describe");
    let t = t.table().expect("table");
    assert_eq!(t.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::PayPerRequest));
    let key: Vec<_> = t.key_schema().iter().map(|k| k.attribute_name().to_owned()).collect();
    assert_eq!(key, ["id"]);
    let ttl = client.describe_time_to_live().table_name(store.table()).send().await.expect("ttl");
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    // The failed index: a day spread over shards, and what a listing shows,
    // not the kept message (a burst of failures must not throttle the table).
    let index = t.global_secondary_indexes().iter().find(|i| i.index_name() == Some(task_runtime::store::dynamodb::FAILED_INDEX)).expect("the failed index");
    let keys: Vec<_> = index.key_schema().iter().map(|k| k.attribute_name()).collect();
    assert_eq!(keys, ["failed_shard", "updated_at_ms"]);
    let projection = index.projection().expect("projection");
    assert_eq!(projection.projection_type(), Some(&aws_sdk_dynamodb::types::ProjectionType::Include));
    assert!(!projection.non_key_attributes().iter().any(|a| a == "message"), "{projection:?}");
    // Shards are spread: 64 ids of one day fall on at least 8 of the 16.
    let shards: std::collections::BTreeSet<String> = (0..64).map(|i| task_runtime::store::dynamodb::failure_shard(&format!("call-{i}"), 1_800_000_000_000)).collect();
    assert!(shards.len() >= 8, "{shards:?}");
}

#[tokio::test]
async fn put_pending_never_overwrites() {
    let s = store().await;
    assert!(s.put_pending(pending("p1")).await.expect("put"));
    assert!(!s.put_pending(pending("p1")).await.expect("second put is refused, not an error"));
    let r = s.get("p1").await.expect("get").expect("exists");
    assert_eq!((r.status, r.attempts, r.task.as_str()), (Status::Pending, 0, "pies::bake"));
}

/// `claim_id`'s rules, the same on both stores: who holds an id, and when
/// a key's window or an item's expiry lets a new call take it.
async fn claim_rules(s: &dyn ResponseStore, prefix: &str) {
    use task_runtime::store::{Claimed, IdClaim};
    let now = common::now_ms();
    let id = |name: &str| format!("{prefix}-{name}");
    let at = |name: &str, now_ms: u64| PendingItem { now_ms, ..pending(&id(name)) };
    let digest = |d: &str| IdClaim { args_digest: Some(d.into()), free_after_ms: None };
    let keyed = |free: u64| IdClaim { args_digest: None, free_after_ms: Some(free) };
    let held = |c: Claimed| match c {
        Claimed::Held(h) => (h.task, h.args_digest, h.status),
        Claimed::Created => panic!("created where a call holds the id"),
    };

    // An explicit id: the first creates, the second is told who holds it (its digest, its status).
    assert_eq!(s.claim_id(at("x", now), digest("d1")).await.expect("claim"), Claimed::Created);
    let second = s.claim_id(at("x", now), digest("d2")).await.expect("claim");
    assert_eq!(held(second), ("pies::bake".to_owned(), Some("d1".to_owned()), Status::Pending));
    assert_eq!(s.get(&id("x")).await.expect("get").map(|r| r.status), Some(Status::Pending));
    // Held however late, until the item expires (no window).
    let much_later = now + 86_400_000;
    assert!(matches!(s.claim_id(at("x", much_later), digest("d1")).await.expect("claim"), Claimed::Held(_)));

    // A key's id: held in its window, and past it while an attempt runs.
    assert_eq!(s.claim_id(at("k", now), keyed(now + 1_000)).await.expect("claim"), Claimed::Created);
    assert!(matches!(s.claim_id(at("k", now + 500), keyed(now + 1_500)).await.expect("claim"), Claimed::Held(_)));
    s.begin(BeginRequest { now_ms: now + 600, ..begin(&id("k"), "req-1", now + 60_000) }).await.expect("begin");
    let running = s.claim_id(at("k", now + 2_000), keyed(now + 3_000)).await.expect("claim");
    assert_eq!(held(running).2, Status::Running);
    // Once it has ended, past the window a send makes a new call under the id.
    s.finish(&id("k"), "req-1", FinalState::Complete("1".into()), now + 700, None).await.expect("finish");
    assert!(matches!(s.claim_id(at("k", now + 900), keyed(now + 3_000)).await.expect("claim"), Claimed::Held(_)), "still in its window");
    assert_eq!(s.claim_id(at("k", now + 2_000), keyed(now + 3_000)).await.expect("claim"), Claimed::Created);
    let fresh = s.get(&id("k")).await.expect("get").expect("there");
    assert_eq!((fresh.status, fresh.attempts, fresh.response), (Status::Pending, 0, None));

    // An expired item holds nothing.
    let mut old = at("e", now);
    old.ttl = now / 1000 - 10;
    s.put_pending(old).await.expect("put");
    assert_eq!(s.claim_id(at("e", now), digest("d")).await.expect("claim"), Claimed::Created);
}

#[tokio::test]
async fn claim_id_keeps_the_same_rules_on_dynamodb_and_in_memory() {
    claim_rules(&store().await, "claim").await;
    claim_rules(&task_runtime::store::memory::MemoryStore::default(), "claim").await;
}

#[tokio::test]
async fn discard_pending_removes_only_a_pending_item() {
    let s = store().await;
    s.put_pending(pending("d1")).await.expect("put");
    s.put_pending(pending("d2")).await.expect("put");
    s.begin(begin("d2", "req-1", live())).await.expect("begin");
    for id in ["d1", "d2", "never-written"] {
        s.discard_pending(id).await.unwrap_or_else(|e| panic!("discard {id}: {e}"));
    }
    assert_eq!(s.get("d1").await.expect("get"), None);
    assert_eq!(s.get("d2").await.expect("get").map(|r| r.status), Some(Status::Running));
}

#[tokio::test]
async fn begin_counts_attempts_and_respects_leases() {
    let s = store().await;
    s.put_pending(pending("b1")).await.expect("put");
    assert_eq!(s.begin(begin("b1", "req-1", live())).await.expect("begin"), Begun::Started { attempts: 1 });
    // Another request while the lease is live: not run concurrently.
    match s.begin(begin("b1", "req-2", live())).await.expect("begin") {
        Begun::Busy { request_id, .. } => assert_eq!(request_id, "req-1"),
        other => panic!("{other:?}"),
    }
    // The same request id while the lease is live (Lambda delivered the event twice): not run either.
    match s.begin(begin("b1", "req-1", live())).await.expect("begin") {
        Begun::Busy { request_id, .. } => assert_eq!(request_id, "req-1"),
        other => panic!("{other:?}"),
    }
    // Lambda's retry after a crash comes under the same request id once the
    // dead attempt's lease lapsed: it takes over.
    s.renew("b1", "req-1", common::now_ms() - 1).await.expect("renew");
    assert_eq!(s.begin(begin("b1", "req-1", live())).await.expect("begin"), Begun::Started { attempts: 2 });
    // A retrying item is begun again by anyone.
    s.finish("b1", "req-1", FinalState::Retrying(Failure::new(FailureKind::Error, "flaky")), common::now_ms(), None).await.expect("finish");
    assert_eq!(s.begin(begin("b1", "req-3", live())).await.expect("begin"), Begun::Started { attempts: 3 });
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish() {
    let s = store().await;
    assert_eq!(s.begin(begin("l1", "req-old", common::now_ms() - 1)).await.expect("begin"), Begun::Started { attempts: 1 });
    assert_eq!(s.begin(begin("l1", "req-new", live())).await.expect("begin"), Begun::Started { attempts: 2 });
    let late = s.finish("l1", "req-old", FinalState::Complete("1".into()), common::now_ms(), None).await.expect("finish");
    assert_eq!(late, Finished::NotOwner);
    let done = s.finish("l1", "req-new", FinalState::Complete("2".into()), common::now_ms(), None).await.expect("finish");
    assert_eq!(done, Finished::Written);
    assert_eq!(s.get("l1").await.expect("get").and_then(|r| r.response), Some(serde_json::json!(2)));
}

#[tokio::test]
async fn a_finished_item_is_a_duplicate_and_finish_without_begin_is_refused() {
    let s = store().await;
    assert_eq!(s.finish("f1", "req-1", FinalState::Complete("0".into()), common::now_ms(), None).await.expect("finish"), Finished::NotOwner);
    s.begin(begin("f1", "req-1", live())).await.expect("begin");
    s.finish("f1", "req-1", FinalState::Failed(Failure::new(FailureKind::Failed, "no")), common::now_ms(), None).await.expect("finish");
    assert_eq!(
        s.begin(begin("f1", "req-2", live())).await.expect("begin"),
        Begun::Finished { status: Status::Failed, attempts: 1 }
    );
    assert_eq!(
        s.begin(begin("f1", "req-1", live())).await.expect("begin"),
        Begun::Finished { status: Status::Failed, attempts: 1 }
    );
}

#[tokio::test]
async fn a_caller_write_after_the_worker_finished_changes_nothing() {
    let s = store().await;
    // The worker was faster than the caller's put_pending.
    assert_eq!(s.begin(begin("w1", "req-1", live())).await.expect("begin"), Begun::Started { attempts: 1 });
    s.finish("w1", "req-1", FinalState::Complete("{\"ok\":true}".into()), common::now_ms(), None).await.expect("finish");
    assert!(!s.put_pending(pending("w1")).await.expect("put"));
    let r = s.get("w1").await.expect("get").expect("exists");
    assert_eq!((r.status, r.attempts), (Status::Complete, 1));
    assert_eq!(r.response, Some(serde_json::json!({"ok": true})));
}

#[tokio::test]
async fn an_item_past_its_ttl_reads_as_absent() {
    let s = store().await;
    let mut p = pending("t1");
    p.ttl = common::now_ms() / 1000 - 10;
    s.put_pending(p).await.expect("put");
    // DynamoDB deletes expired items lazily; the item is still there raw...
    let raw = common::dynamodb()
        .get_item()
        .table_name(s.table())
        .key("id", AttributeValue::S("t1".into()))
        .send()
        .await
        .expect("raw get");
    assert!(raw.item().is_some());
    // ...but a poll treats it as absent, like an unknown id.
    assert_eq!(s.get("t1").await.expect("get"), None);
    assert_eq!(s.get("never-written").await.expect("get"), None);
}

#[tokio::test]
async fn the_stored_item_has_the_documented_attributes() {
    let s = store().await;
    s.put_pending(pending("a1")).await.expect("put");
    s.begin(begin("a1", "req-9", 1_900_000_000_000)).await.expect("begin");
    s.finish("a1", "req-9", FinalState::Failed(Failure::new(FailureKind::Panic, "boom")), 1_800_000_000_000, None).await.expect("finish");
    let raw = common::dynamodb()
        .get_item()
        .table_name(s.table())
        .key("id", AttributeValue::S("a1".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("raw get");
    let item = raw.item().expect("item");
    let s_of = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n_of = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(s_of("id").as_deref(), Some("a1"));
    assert_eq!(s_of("task").as_deref(), Some("pies::bake"));
    assert_eq!(s_of("status").as_deref(), Some("failed"));
    assert_eq!(n_of("attempts").as_deref(), Some("1"));
    assert_eq!(s_of("request_id").as_deref(), Some("req-9"));
    assert_eq!(n_of("lease_until_ms").as_deref(), Some("1900000000000"));
    assert_eq!(n_of("max_attempts").as_deref(), Some("3"));
    assert_eq!(n_of("updated_at_ms").as_deref(), Some("1800000000000"));
    assert!(n_of("created_at_ms").is_some());
    assert_eq!(n_of("ttl").as_deref(), Some("4000000000"));
    let error = item.get("error").and_then(|v| v.as_m().ok()).expect("error is a map");
    assert_eq!(error.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str), Some("panic"));
    assert_eq!(error.get("message").and_then(|v| v.as_s().ok()).map(String::as_str), Some("boom"));
    assert!(item.get("response").is_none());
    let mut keys: Vec<_> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "attempts", "created_at_ms", "error", "failed_shard", "id", "lease_until_ms", "max_attempts", "request_id", "status",
            "task", "ttl", "updated_at_ms"
        ]
    );
    let shard = s_of("failed_shard").expect("failed_shard");
    assert_eq!(shard, task_runtime::store::dynamodb::failure_shard("a1", 1_800_000_000_000));
    assert!(shard.starts_with("2027-01-15#"), "the day of updated_at_ms 1800000000000, UTC, and a shard: {shard}");

    // A complete item stores the response as JSON text and no error.
    s.put_pending(pending("a2")).await.expect("put");
    s.begin(begin("a2", "r", live())).await.expect("begin");
    s.finish("a2", "r", FinalState::Complete("{\"slices\":8}".into()), common::now_ms(), None).await.expect("finish");
    let raw = common::dynamodb().get_item().table_name(s.table()).key("id", AttributeValue::S("a2".into())).send().await.expect("get");
    let item = raw.item().expect("item");
    assert_eq!(item.get("response").and_then(|v| v.as_s().ok()).map(String::as_str), Some("{\"slices\":8}"));
    assert!(item.get("error").is_none());
}

#[tokio::test]
async fn a_malformed_stored_item_is_an_error_naming_the_attribute() {
    let s = store().await;
    common::dynamodb()
        .put_item()
        .table_name(s.table())
        .item("id", AttributeValue::S("bad".into()))
        .item("status", AttributeValue::S("exploded".into()))
        .item("ttl", AttributeValue::N(FAR_TTL.to_string()))
        .send()
        .await
        .expect("raw put");
    match s.get("bad").await {
        Err(StoreError::Corrupt { id, attribute: "status", problem }) => {
            assert_eq!(id, "bad");
            assert!(problem.contains("\"exploded\""), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_table_is_a_backend_error_naming_the_operation_and_table() {
    let s = DynamoStore::with_client(common::dynamodb(), "no-such-table");
    match s.get("x").await {
        Err(e @ StoreError::Backend { operation: "get", .. }) => {
            let text = e.to_string();
            assert!(text.contains("`no-such-table`") && text.contains("ResourceNotFoundException"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn renew_extends_only_the_owner_s_lease() {
    let s = store().await;
    s.begin(begin("r1", "req-1", common::now_ms() + 1_000)).await.expect("begin");
    assert_eq!(s.renew("r1", "req-2", live()).await.expect("renew"), Finished::NotOwner);
    assert_eq!(s.renew("r1", "req-1", live()).await.expect("renew"), Finished::Written);
    let lease = common::dynamodb()
        .get_item()
        .table_name(s.table())
        .key("id", AttributeValue::S("r1".into()))
        .send()
        .await
        .expect("get_item")
        .item()
        .and_then(|i| i.get("lease_until_ms").cloned());
    let lease: u64 = match lease {
        Some(AttributeValue::N(n)) => n.parse().expect("a number"),
        other => panic!("{other:?}"),
    };
    assert!(lease > common::now_ms() + 30_000, "renewed to a minute from now, found {lease}");
    s.finish("r1", "req-1", FinalState::Complete("1".into()), common::now_ms(), None).await.expect("finish");
    assert_eq!(s.renew("r1", "req-1", live()).await.expect("renew"), Finished::NotOwner, "a finished item is not renewed");
}

#[tokio::test]
async fn fail_unfinished_ends_open_calls_and_leaves_finished_ones() {
    let s = store().await;
    let crashed = Failure::new(FailureKind::Crashed, "Runtime.ExitError");
    // running (a crashed last attempt), pending (killed before begin), retrying, absent
    s.begin(begin("u-running", "req-1", live())).await.expect("begin");
    s.put_pending(pending("u-pending")).await.expect("put");
    s.begin(begin("u-retrying", "req-1", live())).await.expect("begin");
    s.finish("u-retrying", "req-1", FinalState::Retrying(Failure::new(FailureKind::Error, "x")), common::now_ms(), None).await.expect("finish");
    for id in ["u-running", "u-pending", "u-retrying", "u-absent"] {
        assert!(s.fail_unfinished(pending(id), crashed.clone(), None).await.expect("fail_unfinished"), "{id}");
        let r = s.get(id).await.expect("get").expect("exists");
        assert_eq!((r.status, r.error.as_ref()), (Status::Failed, Some(&crashed)), "{id}");
        assert_eq!(r.task, "pies::bake", "{id}");
    }
    // complete stays complete
    s.begin(begin("u-done", "req-1", live())).await.expect("begin");
    s.finish("u-done", "req-1", FinalState::Complete("5".into()), common::now_ms(), None).await.expect("finish");
    assert!(!s.fail_unfinished(pending("u-done"), crashed.clone(), None).await.expect("fail_unfinished"));
    let r = s.get("u-done").await.expect("get").expect("exists");
    assert_eq!((r.status, r.response), (Status::Complete, Some(serde_json::json!(5))));
}

#[tokio::test]
async fn a_running_item_on_its_last_attempt_with_a_lapsed_lease_reads_stale() {
    let s = store().await;
    let lapsed = common::now_ms() - 10_000;
    s.begin(BeginRequest { max_attempts: 1, ..begin("s-last", "req-1", lapsed) }).await.expect("begin");
    s.begin(BeginRequest { max_attempts: 3, ..begin("s-more", "req-1", lapsed) }).await.expect("begin");
    s.begin(BeginRequest { max_attempts: 1, ..begin("s-live", "req-1", live()) }).await.expect("begin");
    let stale = |id: &'static str| {
        let s = &s;
        async move { s.get(id).await.expect("get").map(|r| r.stale) }
    };
    assert_eq!(stale("s-last").await, Some(true));
    assert_eq!(stale("s-more").await, Some(false), "a retry is still to come");
    assert_eq!(stale("s-live").await, Some(false), "its heartbeat still renews it");
}

#[tokio::test]
async fn a_failure_kind_this_version_does_not_know_reads_as_other() {
    let s = store().await;
    let newer = Failure::new(FailureKind::Other("quota_exceeded".into()), "a newer worker wrote this");
    s.begin(begin("k1", "req-1", live())).await.expect("begin");
    s.finish("k1", "req-1", FinalState::Failed(newer.clone()), common::now_ms(), None).await.expect("finish");
    let r = s.get("k1").await.expect("an unknown kind is not an error").expect("exists");
    assert_eq!(r.error, Some(newer));
}

#[tokio::test]
async fn cancel_ends_only_a_call_that_has_not_started_and_a_cancelled_one_never_begins() {
    let s = store().await;
    let scheduled = PendingItem { run_at_ms: Some(common::now_ms() + 60_000), ..pending("c-scheduled") };
    s.put_pending(scheduled).await.expect("put");
    assert_eq!(s.get("c-scheduled").await.expect("get").map(|r| (r.status, r.run_at.is_some())), Some((Status::Scheduled, true)));
    s.put_pending(pending("c-pending")).await.expect("put");
    s.begin(begin("c-running", "req-1", live())).await.expect("begin");
    let now = common::now_ms();
    assert_eq!(s.cancel("c-scheduled", now).await.expect("cancel"), Cancel::Cancelled { was: Status::Scheduled });
    assert_eq!(s.cancel("c-pending", now).await.expect("cancel"), Cancel::Cancelled { was: Status::Pending });
    assert_eq!(s.cancel("c-running", now).await.expect("cancel"), Cancel::NotCancellable { status: Status::Running });
    assert_eq!(s.cancel("c-scheduled", now).await.expect("cancel"), Cancel::NotCancellable { status: Status::Cancelled });
    assert_eq!(s.cancel("c-absent", now).await.expect("cancel"), Cancel::NotFound);
    // The schedule fires anyway: the worker's begin finds it cancelled.
    assert_eq!(
        s.begin(begin("c-scheduled", "req-2", live())).await.expect("begin"),
        Begun::Finished { status: Status::Cancelled, attempts: 0 }
    );
    // And a scheduled call that was not cancelled begins when it fires.
    s.put_pending(PendingItem { run_at_ms: Some(now), ..pending("c-fires") }).await.expect("put");
    assert_eq!(s.begin(begin("c-fires", "req-3", live())).await.expect("begin"), Begun::Started { attempts: 1 });
}

#[tokio::test]
async fn failed_calls_are_listed_from_their_index_with_their_message() {
    let s = store().await;
    let since = common::now_ms() - 1_000;
    let boom = Failure::new(FailureKind::Failed, "no flour");
    s.begin(begin("x-failed", "req-1", live())).await.expect("begin");
    let message = r#"{"task_runtime":1,"task":"pies::bake","id":"x-failed","args":{"n":1}}"#;
    s.finish("x-failed", "req-1", FinalState::Failed(boom.clone()), common::now_ms(), Some(message)).await.expect("finish");
    s.fail_unfinished(pending("x-crashed"), Failure::new(FailureKind::Crashed, "killed"), Some(message)).await.expect("record");
    s.begin(begin("x-done", "req-1", live())).await.expect("begin");
    s.finish("x-done", "req-1", FinalState::Complete("1".into()), common::now_ms(), Some(message)).await.expect("finish");
    let listed = s.failed_since(since, 100).await.expect("query the index");
    let ids: Vec<&str> = listed.iter().map(|f| f.id.as_str()).collect();
    assert!(ids.contains(&"x-failed") && ids.contains(&"x-crashed"), "{ids:?}");
    assert!(!ids.contains(&"x-done"), "only failed calls: {ids:?}");
    let failed = listed.iter().find(|f| f.id == "x-failed").expect("listed");
    assert_eq!((failed.response.status, failed.response.error.as_ref(), failed.message_kept), (Status::Failed, Some(&boom), true));
    assert_eq!(s.failed_message("x-failed").await.expect("read").as_deref(), Some(message));
    assert_eq!(s.failed_message("x-done").await.expect("read"), None, "kept only when the call failed");
    assert!(s.failed_since(common::now_ms() + 60_000, 100).await.expect("query").is_empty());
}

#[tokio::test]
async fn the_parent_is_recorded_by_whichever_write_creates_the_item_and_children_are_read_from_its_index() {
    let s = store().await;
    let child = |id: &str, at: u64| PendingItem { parent: Some("p".into()), now_ms: at, ..pending(id) };
    let t0 = common::now_ms();
    // The caller's pending write records it.
    assert!(s.put_pending(child("c1", t0)).await.expect("put"));
    // The worker came first: its begin records it, and the caller's write finds the item.
    let first = BeginRequest { parent: Some("p".into()), now_ms: t0 + 1, ..begin("c2", "req-1", live()) };
    assert_eq!(s.begin(first).await.expect("begin"), Begun::Started { attempts: 1 });
    assert!(!s.put_pending(child("c2", t0 + 1)).await.expect("put"));
    // Lambda's failure record of a call whose pending write was lost.
    let crashed = Failure::new(FailureKind::Crashed, "Runtime.ExitError");
    assert!(s.fail_unfinished(child("c3", t0 + 2), crashed, None).await.expect("fail"));
    // Another parent's child, and a call with none.
    s.put_pending(PendingItem { parent: Some("q".into()), ..pending("other") }).await.expect("put");
    s.put_pending(pending("orphan")).await.expect("put");
    // A later begin of an item with a parent keeps it.
    s.finish("c2", "req-1", FinalState::Retrying(Failure::new(FailureKind::Error, "again")), t0 + 3, None).await.expect("finish");
    s.begin(BeginRequest { parent: Some("not-this".into()), ..begin("c2", "req-1", live()) }).await.expect("begin again");

    // The index is eventually consistent on AWS (DynamoDB Local is not): read until all are there.
    let mut found = Vec::new();
    for _ in 0..50 {
        found = s.children("p", 100).await.expect("query the index");
        if found.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ids: Vec<_> = found.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"], "oldest first");
    assert!(found.iter().all(|c| c.response.parent.as_deref() == Some("p")));
    assert_eq!((found[1].response.status, found[2].response.status), (Status::Running, Status::Failed));
    assert_eq!(s.get("orphan").await.expect("get").map(|r| r.parent), Some(None));
    assert_eq!(s.children("p", 2).await.expect("query").len(), 2, "the limit is kept");
    assert!(s.children("c1", 100).await.expect("query").is_empty());
}

#[tokio::test]
async fn begin_and_a_failure_record_move_the_ttl_to_when_the_call_can_last_be_read() {
    let s = store().await;
    let ttl_of = |id: &'static str| {
        let table = s.table().to_owned();
        async move {
            let raw = common::dynamodb().get_item().table_name(table).key("id", AttributeValue::S(id.into())).consistent_read(true).send().await.expect("get");
            raw.item().and_then(|i| i.get("ttl")).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok()).expect("ttl")
        }
    };
    // A call whose item would expire soon: the run that begins it sets the ttl anew.
    let soon = common::now_ms() / 1000 + 60;
    s.put_pending(PendingItem { ttl: soon, ..pending("t1") }).await.expect("put");
    s.begin(begin("t1", "r", live())).await.expect("begin");
    assert_eq!(ttl_of("t1").await, FAR_TTL, "begin sets the worker's ttl, not the caller's");
    // Lambda's record of a call is its last change: its ttl counts from then.
    s.put_pending(pending("t2")).await.expect("put");
    let ended = PendingItem { ttl: soon + 1, ..pending("t2") };
    assert!(s.fail_unfinished(ended, Failure::new(FailureKind::Crashed, "gone"), None).await.expect("fail"));
    assert_eq!(ttl_of("t2").await, soon + 1);
}

#[tokio::test]
async fn a_scheduled_item_is_taken_back_and_an_error_message_is_bounded() {
    let s = store().await;
    s.put_pending(PendingItem { run_at_ms: Some(common::now_ms() + 60_000), ..pending("s1") }).await.expect("put");
    s.discard_pending("s1").await.expect("discard");
    assert_eq!(s.get("s1").await.expect("get"), None, "a scheduled item is taken back too");
    // Whatever a task raises, the item stays far under DynamoDB's 400 KB.
    s.put_pending(pending("big")).await.expect("put");
    s.begin(begin("big", "r", live())).await.expect("begin");
    let huge = Failure { kind: FailureKind::Failed, message: "é".repeat(300_000) };
    let message = "m".repeat(64 * 1024);
    let written = s.finish("big", "r", FinalState::Failed(huge), common::now_ms(), Some(&message)).await.expect("a write DynamoDB accepts");
    assert_eq!(written, Finished::Written);
    let r = s.get("big").await.expect("get").expect("exists");
    let e = r.error.expect("error");
    assert!(e.message.len() <= task_runtime::MAX_FAILURE_MESSAGE_BYTES && e.message.ends_with("(cut from 600000 bytes)"), "{}", e.message.len());
    assert_eq!(s.failed_message("big").await.expect("read").map(|m| m.len()), Some(message.len()));
}

#[tokio::test]
async fn a_task_message_over_64_kib_is_not_kept_and_the_listing_says_so() {
    let s = store().await;
    s.put_pending(pending("huge-args")).await.expect("put");
    s.begin(begin("huge-args", "r", live())).await.expect("begin");
    let message = "m".repeat(64 * 1024 + 1);
    let failed = FinalState::Failed(Failure::new(FailureKind::Failed, "no"));
    assert_eq!(s.finish("huge-args", "r", failed, common::now_ms(), Some(&message)).await.expect("finish"), Finished::Written);
    assert_eq!(s.failed_message("huge-args").await.expect("read"), None, "over the cap: not kept");
    let listed = s.failed_since(common::now_ms() - 60_000, 100).await.expect("list");
    let call = listed.iter().find(|c| c.id == "huge-args").expect("listed all the same");
    assert!(!call.message_kept, "the listing says it cannot be sent again");
}

/// Records the name of every DynamoDB operation a client sends.
#[derive(Debug, Clone, Default)]
struct Operations(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for Operations {
    fn name(&self) -> &'static str {
        "record operations"
    }
    /// DynamoDB names the operation in each request's `X-Amz-Target` (`DynamoDB_20120810.Query`).
    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(operation);
        Ok(())
    }
}

#[tokio::test]
async fn listing_failed_calls_is_16_queries_a_day_and_never_a_scan() {
    let s = store().await;
    // One failed call today, so that the listing has something to find.
    s.begin(begin("listed", "req-1", live())).await.expect("begin");
    let failed = FinalState::Failed(Failure::new(FailureKind::Failed, "no"));
    assert_eq!(s.finish("listed", "req-1", failed, common::now_ms(), None).await.expect("finish"), Finished::Written);
    let ops = Operations::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&common::sdk_config(&common::dynamodb_endpoint())).interceptor(ops.clone()).build();
    let counted = DynamoStore::with_client(aws_sdk_dynamodb::Client::from_conf(conf), s.table());
    // --since two days back: three days (the day before yesterday, yesterday, today).
    let listed = counted.failed_since(common::now_ms() - 2 * 86_400_000, 100).await.expect("list");
    assert!(listed.iter().any(|c| c.id == "listed"), "{listed:?}");
    let sent = ops.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let queries = sent.iter().filter(|o| *o == "Query").count();
    assert_eq!((queries, sent.len()), (3 * task_runtime::store::dynamodb::FAILED_SHARDS as usize, queries), "only queries, 16 a day: {sent:?}");
}

/// The rules of a call its retry policy re-sends, on any store: after a
/// `Resend` finish only the re-sent message begins the next attempt (a late
/// duplicate of the earlier delivery is `Superseded`, and runs nothing), or
/// one re-sent after the latest attempt.
async fn resend_rules(s: &dyn ResponseStore, id: &str) {
    // A task whose policy allows nine attempts.
    let begin_of_nine = |id: &str, rid: &str, lease| BeginRequest { max_attempts: 9, ..begin(id, rid, lease) };
    s.put_pending(pending(id)).await.expect("put");
    assert_eq!(s.begin(begin_of_nine(id, "req-1", live())).await.expect("begin"), Begun::Started { attempts: 1 });
    let at = common::now_ms() + 60_000;
    let failure = Failure::new(FailureKind::Error, "partner down");
    let resend = FinalState::Resend { failure, run_at_ms: at, after_attempt: 1, ttl: FAR_TTL };
    assert_eq!(s.finish(id, "req-1", resend, common::now_ms(), None).await.expect("finish"), Finished::Written);
    let r = s.get(id).await.expect("get").expect("exists");
    assert_eq!((r.status, r.run_at), (Status::Retrying, Some(at)), "{r:?}");
    // A duplicate of the first delivery (no resend), or of another sending, runs nothing.
    assert_eq!(s.begin(begin_of_nine(id, "req-1", live())).await.expect("begin"), Begun::Superseded { attempts: 1 });
    let other = BeginRequest { resend: Some(7), ..begin_of_nine(id, "req-x", live()) };
    assert_eq!(s.begin(other).await.expect("begin"), Begun::Superseded { attempts: 1 });
    // The re-sent message begins attempt 2; a Lambda retry of it (same resend) may take over a lapsed lease.
    let resent = BeginRequest { resend: Some(1), ..begin_of_nine(id, "req-2", common::now_ms() - 1) };
    assert_eq!(s.begin(resent.clone()).await.expect("begin"), Begun::Started { attempts: 2 });
    assert_eq!(s.begin(resent).await.expect("begin"), Begun::Started { attempts: 3 });
    // The worker sends before it writes: a message re-sent after attempt 3
    // may begin attempt 4 though its attempt's Resend was never written (the
    // worker died in between); one re-sent after an older attempt may not.
    let stale = BeginRequest { resend: Some(2), ..begin_of_nine(id, "req-4", common::now_ms() - 1) };
    assert_eq!(s.begin(stale).await.expect("begin"), Begun::Superseded { attempts: 3 });
    let after_latest = BeginRequest { resend: Some(3), ..begin_of_nine(id, "req-4", live()) };
    assert_eq!(s.begin(after_latest).await.expect("begin"), Begun::Started { attempts: 4 });
    s.finish(id, "req-4", FinalState::Complete("1".into()), common::now_ms(), None).await.expect("finish");
    assert!(matches!(s.begin(BeginRequest { resend: Some(4), ..begin_of_nine(id, "req-5", live()) }).await.expect("begin"), Begun::Finished { .. }));
}

#[tokio::test]
async fn a_re_sent_call_is_begun_only_by_the_re_sent_message_on_dynamodb_and_in_memory() {
    resend_rules(&store().await, "resend-1").await;
    resend_rules(&task_runtime::store::memory::MemoryStore::default(), "resend-1").await;
}

/// A concurrency limit's slots and a rate limit's turns, on any store.
async fn flow_rules(s: &dyn ResponseStore, key: &str) {
    use task_runtime::store::flow::{Slot, Turn};
    let now = common::now_ms();
    let (live, lapsed) = (now + 60_000, now - 1);
    assert_eq!(s.take_slot(key, "a", 2, live, now).await.expect("take"), Slot::Taken);
    assert_eq!(s.take_slot(key, "b", 2, lapsed + 30_000, now).await.expect("take"), Slot::Taken);
    assert_eq!(s.take_slot(key, "c", 2, live, now).await.expect("take"), Slot::Full { holders: 2, free_at_ms: lapsed + 30_000 });
    assert_eq!(s.take_slot(key, "a", 2, live, now).await.expect("take"), Slot::Taken, "a holder takes its own slot again");
    s.release_slot(key, "a").await.expect("release");
    s.release_slot(key, "a").await.expect("a second release is no error");
    assert_eq!(s.take_slot(key, "c", 2, live, now).await.expect("take"), Slot::Taken);
    // b's lease lapses (its process died): it no longer counts, and the next taking sweeps it out.
    let later = now + 40_000;
    assert_eq!(s.take_slot(key, "d", 2, live, later).await.expect("take"), Slot::Taken);
    assert!(!s.renew_slot(key, "b", live).await.expect("renew"), "a swept-out holder cannot renew");
    assert!(s.renew_slot(key, "c", live + 1).await.expect("renew"));
    assert_eq!(s.take_slot(key, "e", 2, live, later).await.expect("take"), Slot::Full { holders: 2, free_at_ms: live });
    // Turns of a rate limit 100 ms apart.
    let ttl = FAR_TTL;
    assert_eq!(s.take_turn(key, 100, 1_000, ttl).await.expect("turn"), Turn::Now);
    assert_eq!(s.take_turn(key, 100, 1_000, ttl).await.expect("turn"), Turn::At(1_100));
    assert_eq!(s.take_turn(key, 100, 1_050, ttl).await.expect("turn"), Turn::At(1_200));
    assert_eq!(s.take_turn(key, 100, 1_500, ttl).await.expect("turn"), Turn::Now, "due again once the reserved turns passed");
    assert_eq!(s.take_turn(key, 100, 1_500, ttl).await.expect("turn"), Turn::At(1_600));
}

#[tokio::test]
async fn concurrency_slots_and_rate_turns_keep_one_rule_on_dynamodb_and_in_memory() {
    flow_rules(&store().await, "sync#acme").await;
    flow_rules(&task_runtime::store::memory::MemoryStore::default(), "sync#acme").await;
}

/// A call on its last attempt whose lease lapsed is not taken over by one
/// more (another event of it, say a duplicate invoke): begin says
/// `Exhausted`, on any store.
async fn last_attempt_rules(s: &dyn ResponseStore, id: &str) {
    let lapsed = common::now_ms() - 1;
    let two = |rid: &str| BeginRequest { max_attempts: 2, ..begin(id, rid, lapsed) };
    assert_eq!(s.begin(two("req-1")).await.expect("begin"), Begun::Started { attempts: 1 });
    assert_eq!(s.begin(two("req-1")).await.expect("begin"), Begun::Started { attempts: 2 }, "attempt 1 died: its retry takes over");
    assert_eq!(s.begin(two("req-2")).await.expect("begin"), Begun::Exhausted { attempts: 2 }, "attempt 2 died too, and it was the last");
    assert_eq!(s.get(id).await.expect("get").expect("exists").attempts, 2);
}

#[tokio::test]
async fn no_attempt_past_the_last_on_dynamodb_and_in_memory() {
    last_attempt_rules(&store().await, "last-1").await;
    last_attempt_rules(&task_runtime::store::memory::MemoryStore::default(), "last-1").await;
}

#[tokio::test]
async fn a_store_that_lists_calls_finds_them_newest_first_and_one_that_does_not_writes_no_index() {
    let table = common::table_name("recent");
    let listing = DynamoStore::with_client(common::dynamodb(), table.clone()).listing_calls(true);
    listing.create_table().await.expect("table");
    let quiet = DynamoStore::with_client(common::dynamodb(), table.clone());
    let t0 = common::now_ms();
    let at = |id: &str, ms: u64| PendingItem { now_ms: t0 + ms, ..pending(id) };
    listing.put_pending(at("r1", 0)).await.expect("put");
    // Created by the worker's begin, and by a failure record: listed too.
    listing.begin(BeginRequest { now_ms: t0 + 1, ..begin("r2", "req-1", live()) }).await.expect("begin");
    listing.fail_unfinished(at("r3", 2), Failure::new(FailureKind::Crashed, "gone"), None).await.expect("fail");
    // Not listed: a store that does not list calls.
    quiet.put_pending(at("q1", 3)).await.expect("put");

    let mut found = Vec::new();
    for _ in 0..50 {
        found = listing.recent(t0, 100).await.expect("query the index");
        if found.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ids: Vec<_> = found.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["r3", "r2", "r1"], "newest first, and only what was listed");
    assert_eq!(found[0].response.status, Status::Failed);
    assert_eq!(listing.recent(t0, 2).await.expect("query").len(), 2, "the limit is kept");
    assert!(listing.recent(t0 + 60_000, 100).await.expect("query").is_empty(), "nothing sent since then");
    let raw = common::dynamodb().get_item().table_name(&table).key("id", AttributeValue::S("q1".into())).consistent_read(true).send().await.expect("get");
    assert!(raw.item().is_some_and(|i| !i.contains_key("listed_shard")), "no index write without TASK_LIST_CALLS");
}
