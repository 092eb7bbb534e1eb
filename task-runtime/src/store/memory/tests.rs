//! The memory store's unit tests: the rules every store keeps.

use super::*;
use crate::response::FailureKind;
use crate::store::STALE_GRACE_MS;

const FAR: u64 = 4_000_000_000; // ttl in 2096, epoch seconds

fn begin(id: &str, rid: &str, now: u64, lease: u64) -> BeginRequest {
    BeginRequest { id: id.into(), task: "t".into(), request_id: rid.into(), lease_until_ms: lease, max_attempts: 3, now_ms: now, ttl: FAR, resend: None, parent: None }
}

#[tokio::test]
async fn conditional_rules() {
    let s = MemoryStore::default();
    // caller first, then worker
    assert!(s.put_pending(PendingItem { id: "a".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: None, digest: None, parent: None }).await.unwrap_or(false));
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
    assert!(!s.put_pending(PendingItem { id: "a".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: None, digest: None, parent: None }).await.unwrap_or(true));
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
    assert_eq!(s.put_pending(PendingItem { id: "p".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: None, digest: None, parent: None }).await.ok(), Some(true));
    assert_eq!(s.put_pending(PendingItem { id: "r".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: None, digest: None, parent: None }).await.ok(), Some(true));
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
    let pending = |id: &str, run_at_ms| PendingItem { id: id.into(), task: "t".into(), now_ms: sent, ttl: FAR, run_at_ms, digest: None, parent: None };
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
    let ended = PendingItem { id: "now".into(), task: "t".into(), now_ms: sent, ttl: FAR, run_at_ms: None, digest: None, parent: None };
    assert_eq!(s.fail_unfinished(ended, f, None).await.ok(), Some(true));
    assert!(!item("now").stale(u64::MAX));
}

/// A group's child waiting for its turn has no due time: however long it
/// waits, it is not stale (a delayed call past its time is).
#[tokio::test]
async fn a_child_waiting_for_its_turn_is_never_stale() {
    let s = MemoryStore::default();
    let child = PendingItem { id: "g.7".into(), task: "t".into(), now_ms: 1_000, ttl: FAR, run_at_ms: None, digest: None, parent: None };
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
    let item = PendingItem { id: "d".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: Some(5_000), digest: None, parent: None };
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
    let old = PendingItem { id: "old".into(), task: "t".into(), now_ms: 1, ttl: 1, run_at_ms: Some(5_000), digest: None, parent: None };
    assert_eq!(s.put_pending(old).await.ok(), Some(true));
    assert_eq!(s.cancel("old", 2_000).await.ok(), Some(Cancel::NotFound), "past its ttl: gone for readers, and for cancel");
    let live = PendingItem { id: "live".into(), task: "t".into(), now_ms: 1, ttl: FAR, run_at_ms: Some(5_000), digest: None, parent: None };
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
    let record = |id: &str| PendingItem { id: id.into(), task: "t".into(), now_ms: 30, ttl: FAR, run_at_ms: None, digest: None, parent: None };
    let crashed = || Failure::new(FailureKind::Crashed, "gone");
    assert_eq!(s.fail_unfinished(record("rec-at-cap"), crashed(), Some(&at_cap)).await.ok(), Some(true));
    assert_eq!(s.fail_unfinished(record("rec-over"), crashed(), Some(&over)).await.ok(), Some(true));
    assert_eq!((kept("rec-at-cap"), kept("rec-over")), (Some(at_cap.len()), None));
}

#[tokio::test]
async fn expired_items_read_as_absent() {
    let s = MemoryStore::default();
    assert_eq!(s.put_pending(PendingItem { id: "old".into(), task: "t".into(), now_ms: 1, ttl: 1, run_at_ms: None, digest: None, parent: None }).await.ok(), Some(true));
    assert!(s.with(|items| items.contains_key("old")), "stored, then hidden by its ttl");
    assert_eq!(s.get("old").await.ok(), Some(None));
    assert_eq!(s.get("never").await.ok(), Some(None));
}
