//! The in-memory store of the local backend: DynamoDB's conditional rules
//! over a map, so local runs behave like the real thing.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::flow::{self, Slot, Turn};
use super::group::{Counted, GroupItem, GroupState, Release, Waiting};
use super::item::expired_at;
use super::{BeginRequest, Begun, Cancel, Claimed, FinalState, Finished, IdClaim, Item, PendingItem, ResponseStore, StoredCall};
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

    async fn claim_id(&self, p: PendingItem, claim: IdClaim) -> Result<Claimed, StoreError> {
        Ok(self.with(|items| {
            if let Some(held) = items.get(&p.id).filter(|i| i.holds_id(p.now_ms)) {
                return Claimed::Held(held.holder());
            }
            let item = Item { args_digest: claim.args_digest, free_after_ms: claim.free_after_ms, ..Item::pending(p) };
            items.insert(item.id.clone(), item);
            Claimed::Created
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
                // Created here for a call sent with no pending item: its dated id says when it was sent.
                .or_insert_with(|| {
                    let sent = crate::envelope::dated_at(&req.id).unwrap_or(req.now_ms);
                    Item::pending(PendingItem { id: req.id.clone(), task: req.task.clone(), now_ms: sent, ttl: req.ttl, run_at_ms: None, digest: None, parent: req.parent.clone() })
                });
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
            if groups.get(&group.id).is_some_and(|g| !expired_at(g.item.ttl, group.now_ms)) {
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
            let g = groups.get(id).filter(|g| !expired_at(g.item.ttl, now))?;
            let [complete, failed, cancelled] = g.counts;
            Some(GroupState { item: g.item.clone(), ended: g.ended.len() as u32, complete, failed, cancelled })
        }))
    }
}

#[cfg(test)]
mod tests;
