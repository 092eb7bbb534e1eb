//! A message's links to other calls: its chain's next steps, and its
//! place in a group (which child, which counter shard, whose turn).

use serde::{Deserialize, Serialize};

/// A step of a chain, carried by the call before it: a call whose argument
/// `param` is the value of the step before.
///
/// ```
/// use task_runtime::envelope::{NextStep, step_id};
/// let step = NextStep { task: "reports.total".into(), args: Default::default(), param: "counts".into(), function: None, retries: 2 };
/// assert_eq!((step.param.as_str(), step_id("c", 2)), ("counts", "c.step2".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    /// The task.
    pub task: String,
    /// Its other arguments (as a typed step wrote them: [`Args`](super::Args)).
    pub args: super::Args,
    /// The parameter that takes the value of the step before.
    pub param: String,
    /// The function to send it to; `None`: the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The most retries (0-2).
    #[serde(default = "super::default_retries")]
    pub retries: u8,
}

/// A later step's place in its chain: the chain's id (its first call's)
/// and the step's number (the first call is step 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRef {
    /// The chain's id: the id of its first call.
    pub id: String,
    /// This step's number, from 1.
    pub step: u32,
}

/// The call id of step `step` (from 1) of chain `chain`.
pub fn step_id(chain: &str, step: u32) -> String {
    format!("{chain}.step{step}")
}

/// A child's place in its group, carried in the child's message, so that
/// every path that sees the child end (its worker, a duplicate delivery,
/// Lambda's failure record) can count it without a read.
///
/// ```
/// use task_runtime::envelope::GroupRef;
/// let child = GroupRef { id: "g".into(), index: 7, total: 10, shards: 3, window: None };
/// assert_eq!((child.shard(), child.shard_size(1), child.shard_size(2)), (1, 3, 3));
/// assert_eq!(child.shard_size(0), 4); // children 0, 3, 6, 9
/// assert_eq!(child.child_id(), "g.7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    /// The group's id.
    pub id: String,
    /// This child's place, from 0, in call order.
    pub index: u32,
    /// How many children the group has.
    pub total: u32,
    /// Over how many counter items its ends are counted (child `i` in shard `i % shards`).
    pub shards: u32,
    /// At most this many children run at once: child `i`'s end lets child
    /// `i + window` go (see [`crate::Group::max_concurrency`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

impl GroupRef {
    /// The shard this child is counted in.
    pub fn shard(&self) -> u32 {
        self.index % self.shards.max(1)
    }

    /// How many children shard `shard` counts.
    pub fn shard_size(&self, shard: u32) -> u32 {
        let shards = self.shards.max(1);
        self.total / shards + u32::from(shard < self.total % shards)
    }

    /// The shards that count at least one child.
    pub fn used_shards(&self) -> u32 {
        self.shards.max(1).min(self.total.max(1))
    }

    /// This child's call id.
    pub fn child_id(&self) -> String {
        child_id(&self.id, self.index)
    }

    /// The child whose turn this child's end gives, when the group runs a
    /// limited number at once and one is left.
    ///
    /// ```
    /// use task_runtime::envelope::GroupRef;
    /// let child = |index| GroupRef { id: "g".into(), index, total: 10, shards: 1, window: Some(3) };
    /// assert_eq!((child(0).next_in_turn(), child(6).next_in_turn(), child(7).next_in_turn()), (Some(3), Some(9), None));
    /// ```
    pub fn next_in_turn(&self) -> Option<u32> {
        let next = self.index.checked_add(self.window?)?;
        (next < self.total).then_some(next)
    }
}

/// The call id of child `index` of group `group`.
pub fn child_id(group: &str, index: u32) -> String {
    format!("{group}.{index}")
}

/// The call id of the callback of group `group`.
///
/// ```
/// assert_eq!(task_runtime::envelope::callback_id("g"), "g.then");
/// ```
pub fn callback_id(group: &str) -> String {
    format!("{group}.then")
}
