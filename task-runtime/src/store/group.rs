//! Groups in the store: the group's record, and how each child's end is
//! counted once.
//!
//! A group of N children is one item, `group:ID`, written by the caller
//! before any child is sent, and [`GroupRef::used_shards`] counter items,
//! `group:ID#S`. Child `i` is counted in shard `i % shards`: the shard's
//! number set `ended` gets `i` added, only if it is not there yet, so a
//! second count of one child (a duplicate delivery, Lambda's retry after
//! a crash, a failure record of a call that had ended) changes nothing.
//! When a shard has counted all of its children, the shard's number is
//! added the same way to the group item's `ended_shards`; when that holds
//! every shard, every child has ended. No item is written by every child:
//! a shard takes at most 250 of them (DynamoDB gives one item about 1,000
//! writes a second, and a write costs a unit per KB of the item, so a
//! shard's set stays near 1 KB); see
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html>.

use crate::envelope::GroupRef;
use crate::response::Status;

/// The most children one group may have.
pub const MAX_GROUP_CHILDREN: u32 = 100_000;

/// The most children one counter shard takes, until there are [`MAX_SHARDS`].
pub const CHILDREN_PER_SHARD: u32 = 250;

/// The most counter shards of one group: reading a group's counts is one
/// `BatchGetItem` of at most 100 keys.
pub const MAX_SHARDS: u32 = 100;

/// How many counter shards a group of `total` children uses.
///
/// ```
/// use task_runtime::store::group::shards_for;
/// assert_eq!((shards_for(1), shards_for(250), shards_for(251), shards_for(10_000), shards_for(100_000)), (1, 1, 2, 40, 100));
/// ```
pub fn shards_for(total: u32) -> u32 {
    total.div_ceil(CHILDREN_PER_SHARD).clamp(1, MAX_SHARDS)
}

/// The key of group `id`'s item.
///
/// ```
/// assert_eq!(task_runtime::store::group::group_key("g"), "group:g");
/// ```
pub fn group_key(id: &str) -> String {
    format!("group:{id}")
}

/// The key of counter shard `shard` of group `id`.
pub fn shard_key(id: &str, shard: u32) -> String {
    format!("group:{id}#{shard}")
}

/// What runs when every child has ended (a chord's callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// Its task message (JSON text, signed by the caller when signing is on),
    /// sent as it is under the id [`callback_id`](crate::envelope::callback_id).
    pub message: String,
    /// The function to send it to; `None`: the worker's default.
    pub function: Option<String>,
    /// Run it only when every child completed; otherwise the callback's call
    /// ends `failed`, naming the failed children.
    pub only_if_all_complete: bool,
}

/// A group as the caller records it, before it sends any child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupItem {
    /// The group's id.
    pub id: String,
    /// How many children.
    pub total: u32,
    /// Over how many counter shards ([`shards_for`]).
    pub shards: u32,
    /// What to send when every child has ended.
    pub callback: Option<Callback>,
    /// At most this many children run at once (the others wait their turn).
    pub window: Option<u32>,
    /// Now, epoch ms.
    pub now_ms: u64,
    /// Expiry, epoch seconds.
    pub ttl: u64,
}

/// A group as read back: its record and its counts, summed over its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The record.
    pub item: GroupItem,
    /// Children that have ended, whatever their outcome.
    pub ended: u32,
    /// Of those, `complete`.
    pub complete: u32,
    /// `failed`.
    pub failed: u32,
    /// `cancelled`.
    pub cancelled: u32,
}

impl GroupState {
    /// Whether every child has ended.
    pub fn all_ended(&self) -> bool {
        self.ended >= self.item.total
    }
}

/// What [`ResponseStore::release`](super::ResponseStore::release) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// It was waiting; now it is `pending`: send it.
    Released(Waiting),
    /// Released before and still `pending` (its sender may have died before
    /// sending): send it again; a worker runs it once.
    Pending(Waiting),
    /// Begun, ended or cancelled: nothing to send.
    Gone(Status),
    /// No such call.
    NotFound,
}

/// A child that waits for its turn: what to send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Its task message (JSON text, signed by the caller when signing is on).
    pub message: String,
    /// The function to send it to; `None`: the default.
    pub function: Option<String>,
}

/// What counting one child's end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// This count added the child (`false`: it was counted before).
    pub newly: bool,
    /// Every child of the group has ended (this one included).
    pub all_ended: bool,
}

/// The counter a child's final status adds one to.
pub(crate) fn outcome_counter(status: Status) -> Option<&'static str> {
    match status {
        Status::Complete => Some("complete"),
        Status::Failed => Some("failed"),
        Status::Cancelled => Some("cancelled"),
        _ => None,
    }
}

/// A count of a child that has not ended.
pub(crate) fn not_an_end(child: &GroupRef, status: Status) -> crate::error::StoreError {
    crate::error::StoreError::Corrupt {
        id: child.child_id(),
        attribute: "status",
        problem: format!("is `{status}`, which does not end a child of group `{}`", child.id),
    }
}

/// A child of a group that is not recorded (expired, or never written).
pub(crate) fn no_group(child: &GroupRef) -> crate::error::StoreError {
    crate::error::StoreError::Corrupt {
        id: group_key(&child.id),
        attribute: "id",
        problem: format!("is missing: child {} of {} cannot be counted (the group expired, or was never recorded)", child.index, child.total),
    }
}
