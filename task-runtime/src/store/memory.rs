//! The in-memory store of the local backend: DynamoDB's conditional rules
//! over a map, so local runs behave like the real thing.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::flow::{self, Slot, Turn};
use super::group::{Counted, GroupItem, GroupState, Release, Waiting};
use super::{BeginRequest, Begun, Cancel, FinalState, Finished, Item, PendingItem, ResponseStore, StoredCall};
use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, Status};

/// A [`ResponseStore`] in this process's memory.
///
/// ```
/// use task_runtime::store::{memory::MemoryStore, PendingItem, ResponseStore};
/// # tokio_test_block(async {
/// let store = MemoryStore::default();
/// let item = PendingItem { id: "1".into(), task: "t".into(), now_ms: 0, ttl: u64::MAX / 1000, run_at_ms: None, digest: None, parent: None };
/// assert!(store.put_pending(item.clone()).await.unwrap());
/// assert!(!store.put_pending(item).await.unwrap()); // never overwrites
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Item>>,
    groups: Mutex<HashMap<String, MemoryGroup>>,
    /// Where each waiting child goes (its `function`), by id.
    waiting_functions: Mutex<HashMap<String, Option<String>>>,
    /// Concurrency limits: holders and their lease ends, by limit key.
    slots: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// Rate limits: the earliest next start, by limit key.
    turns: Mutex<HashMap<String, u64>>,
}

/// A group: its record and the children counted, by outcome.
#[derive(Debug)]
struct MemoryGroup {
    item: GroupItem,
    ended: HashSet<u32>,
    counts: [u32; 3],
}

impl MemoryStore {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Item>) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update of a
        // plain map; the map itself is still usable.
        let mut guard = self.items.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A waiting child's message and function.
    fn waiting(&self, id: &str, item: &Item) -> Waiting {
        let function = self.waiting_functions.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned().flatten();
        Waiting { message: item.message.clone().unwrap_or_default(), function }
    }

    fn with_groups<R>(&self, f: impl FnOnce(&mut HashMap<String, MemoryGroup>) -> R) -> R {
        let mut guard = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl ResponseStore for MemoryStore {
    async fn put_pending(&self, p: PendingItem) -> Result<bool, StoreError> {
        Ok(self.with(|items| {
            if items.get(&p.id).is_some_and(|i| !i.expired(p.now_ms)) {
                return false;
            }
            items.insert(p.id.clone(), Item::pending(p));
            true
        }))
    }

    async fn discard_pending(&self, id: &str) -> Result<(), StoreError> {
        self.with(|items| {
            if items.get(id).is_some_and(|i| matches!(i.status, Status::Pending | Status::Scheduled)) {
                items.remove(id);
            }
        });
        Ok(())
    }

    async fn refuse_pending(&self, id: &str, digest: &str, failure: Failure, now_ms: u64) -> Result<bool, StoreError> {
        Ok(self.with(|items| match items.get_mut(id) {
            Some(item) if item.status == Status::Pending && item.digest.as_deref() == Some(digest) => {
                item.status = Status::Failed;
                item.error = Some(failure.bounded());
                item.updated_at_ms = now_ms;
                true
            }
            _ => false,
        }))
    }

    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Cancel, StoreError> {
        Ok(self.with(|items| match items.get_mut(id) {
            Some(item) if item.expired(now_ms) => Cancel::NotFound,
            Some(item) if matches!(item.status, Status::Scheduled | Status::Pending) => {
                let was = item.status;
                item.status = Status::Cancelled;
                item.updated_at_ms = now_ms;
                Cancel::Cancelled { was }
            }
            Some(item) => Cancel::NotCancellable { status: item.status },
            None => Cancel::NotFound,
        }))
    }

    async fn note_latest_run(&self, schedule: &str, run_id: &str, now_ms: u64, ttl: u64) -> Result<(), StoreError> {
        let id = super::latest_run_id(schedule);
        let mut item = Item::pending(PendingItem { id: id.clone(), task: schedule.to_owned(), now_ms, ttl, run_at_ms: None, digest: None, parent: None });
        item.status = Status::Complete;
        item.response = Some(serde_json::Value::String(run_id.to_owned()).to_string());
        self.with(|items| items.insert(id, item));
        Ok(())
    }

    async fn begin(&self, req: BeginRequest) -> Result<Begun, StoreError> {
        Ok(self.with(|items| {
            let item = items
                .entry(req.id.clone())
                .or_insert_with(|| Item::pending(PendingItem { id: req.id.clone(), task: req.task.clone(), now_ms: req.now_ms, ttl: req.ttl, run_at_ms: None, digest: None, parent: req.parent.clone() }));
            if let Some(refused) = item.begin_verdict(&req) {
                return refused;
            }
            item.status = Status::Running;
            item.attempts += 1;
            item.request_id = Some(req.request_id);
            item.lease_until_ms = Some(req.lease_until_ms);
            item.max_attempts = Some(req.max_attempts);
            item.updated_at_ms = req.now_ms;
            item.ttl = req.ttl;
            Begun::Started { attempts: item.attempts }
        }))
    }

    async fn renew(&self, id: &str, request_id: &str, lease_until_ms: u64) -> Result<Finished, StoreError> {
        Ok(self.with(|items| match items.get_mut(id) {
            Some(item) if item.status == Status::Running && item.request_id.as_deref() == Some(request_id) => {
                item.lease_until_ms = Some(lease_until_ms);
                Finished::Written
            }
            _ => Finished::NotOwner,
        }))
    }

    async fn fail_unfinished(&self, p: PendingItem, failure: Failure, message: Option<&str>) -> Result<bool, StoreError> {
        Ok(self.with(|items| {
            let (now_ms, ttl) = (p.now_ms, p.ttl);
            let item = items.entry(p.id.clone()).or_insert_with(|| Item::pending(PendingItem { digest: None, run_at_ms: None, ..p }));
            if item.status.is_finished() {
                return false;
            }
            item.status = Status::Failed;
            item.error = Some(failure.bounded());
            item.message = message.filter(|m| m.len() <= super::MAX_KEPT_MESSAGE_BYTES).map(str::to_owned);
            item.updated_at_ms = now_ms;
            item.ttl = ttl;
            true
        }))
    }

    async fn finish(&self, id: &str, request_id: &str, state: FinalState, now_ms: u64, message: Option<&str>) -> Result<Finished, StoreError> {
        Ok(self.with(|items| {
            let Some(item) = items.get_mut(id) else { return Finished::NotOwner };
            if item.status != Status::Running || item.request_id.as_deref() != Some(request_id) {
                return Finished::NotOwner;
            }
            item.status = state.status();
            item.updated_at_ms = now_ms;
            match state {
                FinalState::Complete(text) => {
                    item.response = Some(text);
                    item.error = None;
                    item.message = None;
                }
                FinalState::Retrying(f) => item.error = Some(f.bounded()),
                FinalState::Resend { failure, run_at_ms, after_attempt, ttl } => {
                    item.error = Some(failure.bounded());
                    item.run_at_ms = Some(run_at_ms);
                    item.resend = Some(after_attempt);
                    item.ttl = item.ttl.max(ttl);
                }
                FinalState::Failed(f) => {
                    item.error = Some(f.bounded());
                    item.message = message.filter(|m| m.len() <= super::MAX_KEPT_MESSAGE_BYTES).map(str::to_owned);
                }
            }
            Finished::Written
        }))
    }

    async fn take_slot(&self, key: &str, holder: &str, limit: u32, lease_until_ms: u64, now_ms: u64) -> Result<Slot, StoreError> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let holders = slots.entry(key.to_owned()).or_default();
        let (live, free_at_ms) = flow::live_others(holders.iter().map(|(id, lease)| (id.as_str(), *lease)), holder, now_ms);
        if live >= limit {
            return Ok(Slot::Full { holders: live, free_at_ms });
        }
        holders.retain(|id, lease| *lease >= now_ms || id == holder);
        holders.insert(holder.to_owned(), lease_until_ms);
        Ok(Slot::Taken)
    }

    async fn renew_slot(&self, key: &str, holder: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match slots.get_mut(key).and_then(|h| h.get_mut(holder)) {
            Some(lease) => {
                *lease = lease_until_ms;
                true
            }
            None => false,
        })
    }

    async fn release_slot(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        if let Some(holders) = self.slots.lock().unwrap_or_else(|p| p.into_inner()).get_mut(key) {
            holders.remove(holder);
        }
        Ok(())
    }

    async fn take_turn(&self, key: &str, interval_ms: u64, now_ms: u64, _ttl: u64) -> Result<Turn, StoreError> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let next = turns.entry(key.to_owned()).or_insert(0);
        if *next <= now_ms {
            *next = now_ms.saturating_add(interval_ms);
            return Ok(Turn::Now);
        }
        let at = *next;
        *next = at.saturating_add(interval_ms);
        Ok(Turn::At(at))
    }

    async fn get(&self, id: &str) -> Result<Option<AsyncResponse>, StoreError> {
        let now = crate::time::now_ms();
        self.with(|items| match items.get(id) {
            Some(item) if item.expired(now) => {
                items.remove(id);
                Ok(None)
            }
            Some(item) => item.to_response(now).map(Some),
            None => Ok(None),
        })
    }

    async fn children(&self, id: &str, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let now = crate::time::now_ms();
        let mut found = self.with(|items| {
            items
                .values()
                .filter(|i| i.parent.as_deref() == Some(id) && !i.expired(now))
                .map(|i| Ok((i.created_at_ms, StoredCall { id: i.id.clone(), response: i.to_response(now)? })))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        found.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(found.into_iter().take(limit).map(|(_, call)| call).collect())
    }

    async fn recent(&self, since_ms: u64, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let now = crate::time::now_ms();
        let mut found = self.with(|items| {
            items
                .values()
                // The notes of schedules' latest runs are not calls.
                .filter(|i| i.created_at_ms >= since_ms && !i.expired(now) && !i.id.starts_with("latest:"))
                .map(|i| Ok((i.created_at_ms, StoredCall { id: i.id.clone(), response: i.to_response(now)? })))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        found.sort_by(|a, b| (b.0, &b.1.id).cmp(&(a.0, &a.1.id)));
        Ok(found.into_iter().take(limit).map(|(_, call)| call).collect())
    }

    async fn put_group(&self, group: GroupItem) -> Result<bool, StoreError> {
        Ok(self.with_groups(|groups| {
            if groups.get(&group.id).is_some_and(|g| g.item.ttl.saturating_mul(1000) > group.now_ms) {
                return false;
            }
            groups.insert(group.id.clone(), MemoryGroup { item: group, ended: HashSet::new(), counts: [0; 3] });
            true
        }))
    }

    async fn count_ended(&self, child: &GroupRef, status: Status, _now_ms: u64, ttl: u64) -> Result<Counted, StoreError> {
        let counter = match status {
            Status::Complete => 0,
            Status::Failed => 1,
            Status::Cancelled => 2,
            other => return Err(super::group::not_an_end(child, other)),
        };
        self.with_groups(|groups| {
            let group = groups.get_mut(&child.id).ok_or_else(|| super::group::no_group(child))?;
            group.item.ttl = group.item.ttl.max(ttl);
            let newly = child.index < group.item.total && group.ended.insert(child.index);
            if newly {
                group.counts[counter] += 1;
            }
            Ok(Counted { newly, all_ended: group.ended.len() as u32 >= group.item.total })
        })
    }

    async fn put_waiting(&self, p: PendingItem, waiting: Waiting) -> Result<bool, StoreError> {
        let id = p.id.clone();
        let created = self.with(|items| {
            if items.get(&p.id).is_some_and(|i| !i.expired(p.now_ms)) {
                return false;
            }
            let mut item = Item::pending(PendingItem { run_at_ms: None, ..p });
            item.status = Status::Scheduled;
            item.message = Some(waiting.message);
            items.insert(item.id.clone(), item);
            true
        });
        if created {
            self.waiting_functions.lock().unwrap_or_else(|p| p.into_inner()).insert(id, waiting.function);
        }
        Ok(created)
    }

    async fn release(&self, id: &str, now_ms: u64, ttl: u64) -> Result<Release, StoreError> {
        Ok(self.with(|items| match items.get_mut(id) {
            Some(item) if item.expired(now_ms) => Release::NotFound,
            Some(item) if item.status == Status::Scheduled && item.run_at_ms.is_none() && item.message.is_some() => {
                item.status = Status::Pending;
                item.updated_at_ms = now_ms;
                item.ttl = ttl;
                Release::Released(self.waiting(id, item))
            }
            Some(item) if item.status == Status::Pending && item.message.is_some() => Release::Pending(self.waiting(id, item)),
            Some(item) => Release::Gone(item.status),
            None => Release::NotFound,
        }))
    }

    async fn group(&self, id: &str) -> Result<Option<GroupState>, StoreError> {
        let now = crate::time::now_ms();
        Ok(self.with_groups(|groups| {
            let g = groups.get(id).filter(|g| g.item.ttl.saturating_mul(1000) > now)?;
            let [complete, failed, cancelled] = g.counts;
            Some(GroupState { item: g.item.clone(), ended: g.ended.len() as u32, complete, failed, cancelled })
        }))
    }
}

#[cfg(test)]
mod tests {
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
        let at_cap = "m".repeat(crate::store::MAX_KEPT_MESSAGE_BYTES);
        let over = "m".repeat(crate::store::MAX_KEPT_MESSAGE_BYTES + 1);
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
}
