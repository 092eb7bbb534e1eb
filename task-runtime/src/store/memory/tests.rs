//! The memory store's unit tests: the rules every store keeps.

use super::*;
use crate::response::FailureKind;
use crate::store::STALE_GRACE_MS;

const FAR: u64 = 4_000_000_000; // ttl in 2096, epoch seconds

fn begin(id: &str, rid: &str, now: u64, lease: u64) -> BeginRequest {
    BeginRequest { id: id.into(), task: "t".into(), request_id: rid.into(), lease_until_ms: lease, max_attempts: 3, now_ms: now, ttl: FAR, resend: None, parent: None }
}

/// A pending call of task `t`, living far into the future.
fn pending_at(id: &str, now_ms: u64, parent: Option<&str>) -> PendingItem {
    PendingItem { id: id.into(), task: "t".into(), now_ms, ttl: FAR, run_at_ms: None, digest: None, parent: parent.map(str::to_owned) }
}

#[tokio::test]
async fn conditional_rules() {
    let s = MemoryStore::default();
    // caller first, then worker
    assert!(s.put_pending(pending_at("a", 1, None)).await.unwrap_or(false));
    assert_eq!(s.begin(begin("a", "r1", 10, 1000)).await.ok(), Some(Begun::Started { attempts: 1 }));
    // another request while the lease is live
    assert_eq!(
        s.begin(begin("a", "r2", 20, 2000)).await.ok(),
        Some(Begun::Busy { request_id: "r1".into(), lease_until_ms: 1000 })
    );
    // the same request again while the lease is live (a concurrent
    // duplicate of one event) does not run either
    assert_eq!(
        s.begin(begin("a", "r1", 30, 1000)).await.ok(),
        Some(Begun::Busy { request_id: "r1".into(), lease_until_ms: 1000 })
    );
    // once the lease lapsed, the same request (Lambda's retry after a crash) takes over
    assert_eq!(s.begin(begin("a", "r1", 1001, 2000)).await.ok(), Some(Begun::Started { attempts: 2 }));
    // and a lapsed lease is taken over by another request too
    assert_eq!(s.begin(begin("a", "r3", 2001, 5000)).await.ok(), Some(Begun::Started { attempts: 3 }));
    // the old owner can no longer finish
    let f = FinalState::Failed(Failure::new(FailureKind::Failed, "x"));
    assert_eq!(s.finish("a", "r1", f.clone(), 2002, None).await.ok(), Some(Finished::NotOwner));
    assert_eq!(s.finish("a", "r3", FinalState::Complete("7".into()), 2003, None).await.ok(), Some(Finished::Written));
    // a finished task is not begun again
    assert_eq!(
        s.begin(begin("a", "r3", 2004, 9000)).await.ok(),
        Some(Begun::Finished { status: Status::Complete, attempts: 3 })
    );
    // a late caller write does not overwrite
    assert!(!s.put_pending(pending_at("a", 1, None)).await.unwrap_or(true));
    let r = s.get("a").await.ok().flatten();
    assert_eq!(r.as_ref().map(|r| (r.status, r.attempts)), Some((Status::Complete, 3)));
    assert_eq!(r.and_then(|r| r.response), Some(serde_json::json!(7)));
}

/// A call its policy re-sends: after attempt 1 the item says `resend: 1`;
/// attempt 2 (that message) runs and fails, and its worker sends the call
/// again (`resend: 2`) before it writes so. That message, arriving in the
/// gap, begins; the earlier one and Lambda's own retry are superseded.
#[tokio::test]
async fn a_message_re_sent_after_the_latest_attempt_begins_before_its_resend_is_written() {
    let s = MemoryStore::default();
    let resend = |after: u32, at: u64| FinalState::Resend { failure: Failure::new(FailureKind::Failed, "x"), run_at_ms: at, after_attempt: after, ttl: FAR };
    let with = |rid: &str, now: u64, resend: Option<u32>| BeginRequest { resend, max_attempts: 9, ..begin("c", rid, now, now + 100) };
    assert_eq!(s.begin(with("r1", 10, None)).await.ok(), Some(Begun::Started { attempts: 1 }));
    assert_eq!(s.finish("c", "r1", resend(1, 20), 11, None).await.ok(), Some(Finished::Written));
    assert_eq!(s.begin(with("r2", 20, Some(1))).await.ok(), Some(Begun::Started { attempts: 2 }));
    // Attempt 2 failed and its worker sent the call again (`resend: 2`);
    // the item does not say so yet (here it reads plain `retrying`).
    assert_eq!(s.finish("c", "r2", FinalState::Retrying(Failure::new(FailureKind::Failed, "y")), 21, None).await.ok(), Some(Finished::Written));
    assert_eq!(s.begin(with("r0", 22, None)).await.ok(), Some(Begun::Superseded { attempts: 2 }), "Lambda's retry of the first event");
    assert_eq!(s.begin(with("r3", 22, Some(2))).await.ok(), Some(Begun::Started { attempts: 3 }), "re-sent after the latest attempt");
}

#[test]
fn an_item_s_ttl_is_its_last_change_in_seconds_plus_the_response_ttl() {
    assert_eq!(crate::store::ttl_after(1_700_000_000_999, std::time::Duration::from_secs(60)), 1_700_000_060);
}

#[tokio::test]
async fn discard_pending_removes_only_a_pending_item() {
    let s = MemoryStore::default();
    assert_eq!(s.put_pending(pending_at("p", 1, None)).await.ok(), Some(true));
    assert_eq!(s.put_pending(pending_at("r", 1, None)).await.ok(), Some(true));
    assert_eq!(s.begin(begin("r", "r1", 10, 1000)).await.ok(), Some(Begun::Started { attempts: 1 }));
    for id in ["p", "r", "never"] {
        assert_eq!(s.discard_pending(id).await.ok(), Some(()), "{id}");
    }
    assert_eq!(s.get("p").await.ok(), Some(None));
    assert_eq!(s.get("r").await.ok().flatten().map(|r| r.status), Some(Status::Running));
}

#[tokio::test]
async fn a_running_item_is_stale_only_on_its_last_attempt_with_its_lease_lapsed() {
    let s = MemoryStore::default();
    let claim = |id: &str, max| BeginRequest { max_attempts: max, ..begin(id, "r1", 10, 1000) };
    assert_eq!(s.begin(claim("last", 1)).await.ok(), Some(Begun::Started { attempts: 1 }));
    assert_eq!(s.begin(claim("more", 3)).await.ok(), Some(Begun::Started { attempts: 1 }));
    let item = |id: &str| s.with(|items| items.get(id).cloned());
    let (last, more) = (item("last"), item("more"));
    assert_eq!(last.as_ref().map(|i| i.stale(1000 + STALE_GRACE_MS)), Some(false), "within the grace");
    assert_eq!(last.as_ref().map(|i| i.stale(1001 + STALE_GRACE_MS)), Some(true));
    let before_give_up = crate::store::give_up_ms(10, None);
    assert_eq!(more.as_ref().map(|i| i.stale(before_give_up)), Some(false), "a retry is still to come");
    assert_eq!(more.map(|i| i.stale(before_give_up + STALE_GRACE_MS + 1)), Some(true), "Lambda can no longer retry it");
    assert_eq!(s.renew("last", "r1", 50_000).await.ok(), Some(Finished::Written));
    assert_eq!(item("last").map(|i| i.stale(1001 + STALE_GRACE_MS)), Some(false), "renewed by its heartbeat");
}

#[tokio::test]
async fn a_call_not_ended_when_lambda_can_no_longer_run_it_is_stale() {
    // A record whose requestPayload Lambda left out cannot end its call:
    // the call must still read stale, so that wait() returns.
    let s = MemoryStore::default();
    let sent = 1_000;
    let pending = |id: &str, run_at_ms| PendingItem { run_at_ms, ..pending_at(id, sent, None) };
    assert_eq!(s.put_pending(pending("now", None)).await.ok(), Some(true));
    let in_a_year = sent + 366 * 86_400_000;
    assert_eq!(s.put_pending(pending("later", Some(in_a_year))).await.ok(), Some(true));
    let item = |id: &str| s.with(|items| items.get(id).cloned()).expect("stored");
    let give_up = crate::store::give_up_ms(sent, None) + STALE_GRACE_MS;
    assert!(!item("now").stale(give_up), "Lambda may still run it");
    assert!(item("now").stale(give_up + 1));
    assert!(!item("later").stale(give_up + 1), "a delayed call is not given up before its time");
    assert!(item("later").stale(crate::store::give_up_ms(sent, Some(in_a_year)) + STALE_GRACE_MS + 1));
    // Ended calls are never stale.
    let f = Failure::new(FailureKind::Crashed, "x");
    let ended = pending_at("now", sent, None);
    assert_eq!(s.fail_unfinished(ended, f, None).await.ok(), Some(true));
    assert!(!item("now").stale(u64::MAX));
}

/// A group's child waiting for its turn has no due time: however long it
/// waits, it is not stale (a delayed call past its time is).
#[tokio::test]
async fn a_child_waiting_for_its_turn_is_never_stale() {
    let s = MemoryStore::default();
    let child = pending_at("g.7", 1_000, None);
    let waiting = crate::store::group::Waiting { message: "{}".into(), function: None };
    assert_eq!(s.put_waiting(child, waiting).await.ok(), Some(true));
    let item = s.with(|items| items.get("g.7").cloned()).expect("stored");
    assert_eq!(item.status, Status::Scheduled);
    assert!(!item.stale(crate::store::give_up_ms(1_000, None) + STALE_GRACE_MS + 1));
}

/// A slot's holder renews its lease and keeps it past the old one; a
/// delivery that holds no slot renews nothing.
#[tokio::test]
async fn only_a_slot_s_holder_renews_it_and_the_renewal_holds_it() {
    let s = MemoryStore::default();
    assert!(matches!(s.take_slot("k", "a", 1, 100, 10).await, Ok(Slot::Taken)));
    assert_eq!(s.renew_slot("k", "a", 500).await.ok(), Some(true));
    assert_eq!(s.renew_slot("k", "b", 500).await.ok(), Some(false), "b holds no slot");
    assert_eq!(s.renew_slot("other", "a", 500).await.ok(), Some(false), "no such limit");
    // Past the first lease, the renewed one still holds the only slot.
    assert!(matches!(s.take_slot("k", "b", 1, 900, 200).await, Ok(Slot::Full { holders: 1, .. })));
}

#[tokio::test]
async fn discard_pending_takes_back_a_scheduled_item_too() {
    let s = MemoryStore::default();
    let item = PendingItem { run_at_ms: Some(5_000), ..pending_at("d", 1, None) };
    assert_eq!(s.put_pending(item.clone()).await.ok(), Some(true));
    assert_eq!(s.discard_pending("d").await.ok(), Some(()));
    assert_eq!(s.put_pending(item).await.ok(), Some(true), "a retried send of the id creates it again");
}

#[tokio::test]
async fn renew_extends_only_a_running_call_its_request_owns() {
    let s = MemoryStore::default();
    assert_eq!(s.begin(begin("h", "r1", 10, 1000)).await.ok(), Some(Begun::Started { attempts: 1 }));
    assert_eq!(s.renew("h", "r2", 5000).await.ok(), Some(Finished::NotOwner), "another request");
    assert_eq!(s.renew("h", "r1", 5000).await.ok(), Some(Finished::Written));
    assert_eq!(s.with(|items| items.get("h").and_then(|i| i.lease_until_ms)), Some(5000));
    assert_eq!(s.finish("h", "r1", FinalState::Complete("1".into()), 20, None).await.ok(), Some(Finished::Written));
    assert_eq!(s.renew("h", "r1", 9000).await.ok(), Some(Finished::NotOwner), "a finished call, even by its last owner");
    assert_eq!(s.renew("never", "r1", 9000).await.ok(), Some(Finished::NotOwner));
}

#[tokio::test]
async fn cancel_finds_no_expired_call_and_the_latest_run_is_noted() {
    let s = MemoryStore::default();
    let old = PendingItem { ttl: 1, run_at_ms: Some(5_000), ..pending_at("old", 1, None) };
    assert_eq!(s.put_pending(old).await.ok(), Some(true));
    assert_eq!(s.cancel("old", 2_000).await.ok(), Some(Cancel::NotFound), "past its ttl: gone for readers, and for cancel");
    let live = PendingItem { run_at_ms: Some(5_000), ..pending_at("live", 1, None) };
    assert_eq!(s.put_pending(live).await.ok(), Some(true));
    assert_eq!(s.cancel("live", 2_000).await.ok(), Some(Cancel::Cancelled { was: Status::Scheduled }));
    assert_eq!(s.note_latest_run("reports", "schedule:reports:x", 10, FAR).await.ok(), Some(()));
    let noted = s.get(&crate::store::latest_run_id("reports")).await.ok().flatten();
    assert_eq!(noted.map(|r| (r.status, r.response)), Some((Status::Complete, Some(serde_json::json!("schedule:reports:x")))));
}

#[tokio::test]
async fn a_failed_call_keeps_its_message_up_to_64_kib() {
    let s = MemoryStore::default();
    // The figure the docs give, not the constant: a changed cap must fail here.
    let at_cap = "m".repeat(64 * 1024);
    let over = "m".repeat(64 * 1024 + 1);
    let kept = |id: &str| s.with(|items| items.get(id).and_then(|i| i.message.as_ref().map(String::len)));
    let fail = || FinalState::Failed(Failure::new(FailureKind::Failed, "no"));
    for (id, message) in [("at-cap", &at_cap), ("over", &over)] {
        assert_eq!(s.begin(begin(id, "r", 10, 1000)).await.ok(), Some(Begun::Started { attempts: 1 }));
        assert_eq!(s.finish(id, "r", fail(), 20, Some(message)).await.ok(), Some(Finished::Written));
    }
    assert_eq!((kept("at-cap"), kept("over")), (Some(at_cap.len()), None));
    let record = |id: &str| pending_at(id, 30, None);
    let crashed = || Failure::new(FailureKind::Crashed, "gone");
    assert_eq!(s.fail_unfinished(record("rec-at-cap"), crashed(), Some(&at_cap)).await.ok(), Some(true));
    assert_eq!(s.fail_unfinished(record("rec-over"), crashed(), Some(&over)).await.ok(), Some(true));
    assert_eq!((kept("rec-at-cap"), kept("rec-over")), (Some(at_cap.len()), None));
}

#[tokio::test]
async fn expired_items_read_as_absent() {
    let s = MemoryStore::default();
    assert_eq!(s.put_pending(PendingItem { ttl: 1, ..pending_at("old", 1, None) }).await.ok(), Some(true));
    assert!(s.with(|items| items.contains_key("old")), "stored, then hidden by its ttl");
    assert_eq!(s.get("old").await.ok(), Some(None));
    assert_eq!(s.get("never").await.ok(), Some(None));
}

fn group_item(id: &str, total: u32, now_ms: u64, ttl: u64) -> GroupItem {
    GroupItem { id: id.into(), total, shards: 1, callback: None, window: None, now_ms, ttl }
}

/// The scenario `dynamodb_groups.rs` runs against DynamoDB Local, on this store.
#[tokio::test]
async fn every_child_is_counted_once_by_outcome_and_the_group_ends_with_its_last() {
    let s = MemoryStore::default();
    let now = crate::time::now_ms();
    assert_eq!(s.put_group(group_item("g", 3, now, FAR)).await.ok(), Some(true));
    assert_eq!(s.put_group(group_item("g", 3, now, FAR)).await.ok(), Some(false), "never overwritten while it lives");
    let child = |index| GroupRef { id: "g".into(), index, total: 3, shards: 1, window: None };
    let counted = |c: Result<Counted, StoreError>| c.map(|c| (c.newly, c.all_ended)).ok();
    assert_eq!(counted(s.count_ended(&child(0), Status::Complete, now, FAR).await), Some((true, false)));
    assert_eq!(counted(s.count_ended(&child(0), Status::Complete, now, FAR).await), Some((false, false)), "counted once");
    assert_eq!(counted(s.count_ended(&child(1), Status::Failed, now, FAR).await), Some((true, false)));
    // No child past the group's total is counted.
    assert_eq!(counted(s.count_ended(&child(3), Status::Complete, now, FAR).await), Some((false, false)));
    let state = s.group("g").await.ok().flatten().expect("recorded");
    assert_eq!((state.ended, state.complete, state.failed, state.cancelled), (2, 1, 1, 0));
    assert_eq!(counted(s.count_ended(&child(2), Status::Cancelled, now, FAR).await), Some((true, true)));
    let state = s.group("g").await.ok().flatten().expect("recorded");
    assert_eq!((state.ended, state.complete, state.failed, state.cancelled), (3, 1, 1, 1));
    assert_eq!(s.group("never").await.ok(), Some(None));
}

#[tokio::test]
async fn a_group_past_its_ttl_reads_as_absent_and_may_be_recorded_again() {
    let s = MemoryStore::default();
    let ttl = crate::time::now_ms() / 1000 + 3600;
    assert_eq!(s.put_group(group_item("old", 2, 1, ttl)).await.ok(), Some(true));
    assert!(s.group("old").await.ok().flatten().is_some(), "alive for another hour");
    // Its last living millisecond, and the first after.
    assert_eq!(s.put_group(group_item("old", 2, ttl * 1000 - 1, FAR)).await.ok(), Some(false));
    assert_eq!(s.put_group(group_item("old", 2, ttl * 1000, FAR)).await.ok(), Some(true));
    let short = crate::time::now_ms() / 1000;
    assert_eq!(s.put_group(group_item("gone", 2, 1, short)).await.ok(), Some(true));
    assert_eq!(s.group("gone").await.ok(), Some(None), "its ttl has passed");
}

/// As `dynamodb_groups.rs` checks it against DynamoDB Local.
#[tokio::test]
async fn a_waiting_child_is_released_once_and_then_read_as_pending_until_it_begins() {
    use crate::store::group::{Release, Waiting};
    let s = MemoryStore::default();
    let now = crate::time::now_ms();
    let waiting = Waiting { message: r#"{"task_runtime":1}"#.into(), function: Some("worker".into()) };
    // A due time on the way in is not kept: a waiting child waits for its turn, not a time.
    let item = PendingItem { run_at_ms: Some(now + 60_000), ..pending_at("w.3", now, None) };
    assert_eq!(s.put_waiting(item.clone(), waiting.clone()).await.ok(), Some(true));
    assert_eq!(s.put_waiting(item, waiting.clone()).await.ok(), Some(false), "a second put is refused");
    let r = s.get("w.3").await.ok().flatten().expect("stored");
    assert_eq!((r.status, r.run_at), (Status::Scheduled, None));
    assert_eq!(s.release("w.3", now, FAR).await.ok(), Some(Release::Released(waiting.clone())));
    assert_eq!(s.get("w.3").await.ok().flatten().map(|r| r.status), Some(Status::Pending));
    assert_eq!(s.release("w.3", now, FAR).await.ok(), Some(Release::Pending(waiting)), "released before, not begun: send again");
    assert_eq!(s.begin(begin("w.3", "r", now, now + 1_000)).await.ok(), Some(Begun::Started { attempts: 1 }));
    assert_eq!(s.release("w.3", now, FAR).await.ok(), Some(Release::Gone(Status::Running)));
    assert_eq!(s.release("never", now, FAR).await.ok(), Some(Release::NotFound));
    // A delayed call and a pending call sent directly are not waiting children.
    let delayed = PendingItem { run_at_ms: Some(now + 60_000), ..pending_at("delayed", now, None) };
    assert_eq!(s.put_pending(delayed).await.ok(), Some(true));
    assert_eq!(s.release("delayed", now, FAR).await.ok(), Some(Release::Gone(Status::Scheduled)));
    assert_eq!(s.put_pending(pending_at("direct", now, None)).await.ok(), Some(true));
    assert_eq!(s.release("direct", now, FAR).await.ok(), Some(Release::Gone(Status::Pending)));
    // Past its ttl, a waiting child is gone.
    let old = PendingItem { ttl: 1, ..pending_at("old", 1, None) };
    assert_eq!(s.put_waiting(old, Waiting { message: "{}".into(), function: None }).await.ok(), Some(true));
    assert_eq!(s.release("old", now, FAR).await.ok(), Some(Release::NotFound));
}

/// As `dynamodb_store.rs` checks the parent index and the recent-calls index.
#[tokio::test]
async fn children_and_recent_calls_are_read_in_order_within_the_limit() {
    let s = MemoryStore::default();
    let t0 = crate::time::now_ms();
    for (i, id) in ["c2", "c1", "c3"].into_iter().enumerate() {
        assert_eq!(s.put_pending(pending_at(id, t0 + i as u64, Some("p"))).await.ok(), Some(true));
    }
    assert_eq!(s.put_pending(pending_at("other", t0 + 5, Some("q"))).await.ok(), Some(true));
    assert_eq!(s.put_pending(PendingItem { ttl: 1, ..pending_at("expired", t0 + 6, Some("p")) }).await.ok(), Some(true));
    assert_eq!(s.note_latest_run("reports", "schedule:reports:x", t0 + 7, FAR).await.ok(), Some(()));
    let ids = |calls: Result<Vec<StoredCall>, StoreError>| calls.ok().map(|c| c.into_iter().map(|c| c.id).collect::<Vec<_>>());
    // Children, oldest first; never an expired one, never another parent's.
    assert_eq!(ids(s.children("p", 100).await), Some(vec!["c2".into(), "c1".into(), "c3".into()]));
    assert_eq!(ids(s.children("p", 2).await), Some(vec!["c2".into(), "c1".into()]));
    assert_eq!(ids(s.children("c1", 100).await), Some(vec![]));
    // Recent calls, newest first, from `since` on; never a schedule's note.
    assert_eq!(ids(s.recent(t0 + 1, 100).await), Some(vec!["other".into(), "c3".into(), "c1".into()]));
    assert_eq!(ids(s.recent(t0, 2).await), Some(vec!["other".into(), "c3".into()]));
    assert_eq!(ids(s.recent(t0 + 60_000, 100).await), Some(vec![]));
}

#[tokio::test]
async fn a_concurrency_limit_counts_live_holders_and_a_slot_given_back_is_free() {
    let s = MemoryStore::default();
    assert!(matches!(s.take_slot("k", "a", 2, 1_000, 10).await, Ok(Slot::Taken)));
    assert!(matches!(s.take_slot("k", "b", 2, 1_000, 10).await, Ok(Slot::Taken)));
    assert!(matches!(s.take_slot("k", "c", 2, 1_000, 20).await, Ok(Slot::Full { holders: 2, free_at_ms: 1_000 })));
    // A holder asking again keeps its own slot.
    assert!(matches!(s.take_slot("k", "a", 2, 2_000, 30).await, Ok(Slot::Taken)));
    assert_eq!(s.release_slot("k", "b").await.ok(), Some(()));
    assert!(matches!(s.take_slot("k", "c", 2, 1_500, 40).await, Ok(Slot::Taken)));
    assert!(matches!(s.take_slot("k", "d", 2, 1_500, 50).await, Ok(Slot::Full { holders: 2, free_at_ms: 1_500 })));
    // Past c's lease, its slot is free again, and a's is still held.
    assert!(matches!(s.take_slot("k", "d", 2, 3_000, 1_501).await, Ok(Slot::Taken)));
    assert!(matches!(s.take_slot("k", "e", 2, 3_000, 1_502).await, Ok(Slot::Full { holders: 2, free_at_ms: 2_000 })));
    // Lapsed holders are dropped when a slot is taken: only the live ones stay.
    assert_eq!(s.slots.lock().map(|s| s.get("k").map(HashMap::len)).ok().flatten(), Some(2));
}

#[tokio::test]
async fn a_failure_record_for_a_call_with_no_item_creates_it_failed_with_no_due_time() {
    let s = MemoryStore::default();
    let record = PendingItem { run_at_ms: Some(9_000), digest: Some("d".into()), ..pending_at("lost", 1_000, None) };
    let crashed = Failure::new(FailureKind::Crashed, "every attempt died");
    assert_eq!(s.fail_unfinished(record, crashed, None).await.ok(), Some(true));
    let r = s.get("lost").await.ok().flatten().expect("created");
    // As DynamoDB writes it: status, error, task, attempts, times; no due time.
    assert_eq!((r.status, r.attempts, r.run_at, r.task.as_str()), (Status::Failed, 0, None, "t"));
}
