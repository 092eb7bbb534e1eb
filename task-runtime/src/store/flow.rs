//! The records of flow limits, shared by every instance through the store.
//!
//! A concurrency limit is one item `limit:TASK` (or `limit:TASK#VALUE` per
//! key) whose `holders` map names each call that holds a slot and until
//! when (`lease_until_ms`, renewed by the body's heartbeat, so that a slot
//! held by a crashed attempt frees itself like a call's lease), with a
//! `version` that every taking and renewal bumps. Taking a slot reads the
//! item, counts the live holders, and writes itself in only if the version
//! is still the one it read (optimistic concurrency), sweeping out lapsed
//! holders in the same write: one read and one write.
//!
//! A rate limit is one item `rate:TASK` (or `rate:TASK#VALUE`) holding
//! `next_ms`, the earliest moment the next start may take place: a start
//! sets it one interval on, only if it is due (`next_ms <= now`); a start
//! that is early reserves the next free turn instead by moving `next_ms`
//! one interval later and taking the old value, and is sent again for
//! then. One write under the limit, two over it. (GCRA with no burst, as
//! Celery's `rate_limit`: starts are spread evenly.)

/// What [`ResponseStore::take_slot`](super::ResponseStore::take_slot) found.
///
/// ```
/// use task_runtime::store::flow::Slot;
/// let full = Slot::Full { holders: 5, free_at_ms: 1_000 };
/// assert_ne!(full, Slot::Taken);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// This call holds a slot now.
    Taken,
    /// Every slot is held by a live call.
    Full {
        /// How many hold one.
        holders: u32,
        /// When the first of their leases ends unless renewed, epoch ms.
        free_at_ms: u64,
    },
}

/// What [`ResponseStore::take_turn`](super::ResponseStore::take_turn) gave.
///
/// ```
/// use task_runtime::store::flow::Turn;
/// assert!(matches!(Turn::At(5_000), Turn::At(at) if at > 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Start now.
    Now,
    /// This start is reserved for then, epoch ms.
    At(u64),
}

/// How long a limit's item outlives its last lease or turn, seconds: a day.
pub(crate) const LIMIT_ITEM_LIFE_SECS: u64 = 86_400;

/// The item of the concurrency limit `key` (see [`limit_key`]).
pub(crate) fn slot_item(key: &str) -> String {
    format!("limit:{key}")
}

/// The item of the rate limit `key`.
pub(crate) fn rate_item(key: &str) -> String {
    format!("rate:{key}")
}

/// The key of a limit of `task`: the task's name, and with a keyed limit
/// the value of its argument (a string as it is, anything else as JSON).
///
/// ```
/// use task_runtime::store::flow::limit_key;
/// use serde_json::json;
/// assert_eq!(limit_key("sync", None), "sync");
/// assert_eq!(limit_key("sync", Some(&json!("acme"))), "sync#acme");
/// assert_eq!(limit_key("sync", Some(&json!(42))), "sync#42");
/// ```
pub fn limit_key(task: &str, value: Option<&serde_json::Value>) -> String {
    match value {
        None => task.to_owned(),
        Some(serde_json::Value::String(s)) => format!("{task}#{s}"),
        Some(other) => format!("{task}#{other}"),
    }
}

/// What names the latest call sent under a debounce key: noted as a
/// schedule's latest run is
/// ([`ResponseStore::note_latest_run`](super::ResponseStore::note_latest_run)),
/// so the item is `latest:debounce:KEY`.
pub(crate) fn debounce_item(key: &str) -> String {
    format!("debounce:{key}")
}

/// Of `holders` (call id, lease end), those that are live at `now` other
/// than `me`, and the first of their lease ends: the rule both stores use.
pub(crate) fn live_others<'a>(holders: impl Iterator<Item = (&'a str, u64)>, me: &str, now_ms: u64) -> (u32, u64) {
    holders
        .filter(|(id, lease)| *id != me && *lease >= now_ms)
        .fold((0, u64::MAX), |(n, first), (_, lease)| (n + 1, first.min(lease)))
}
