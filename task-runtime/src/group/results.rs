//! What a chord's callback is given: [`GroupResults`], every child's
//! outcome in call order, read once before the callback's body runs.

use serde::de::DeserializeOwned;

use crate::error::TaskError;
use crate::response::Failure;

use super::GroupHandle;

/// A chord's group, as its callback receives it: each child's outcome in
/// call order, its value or its [`Failure`] (a cancelled child is
/// [`FailureKind::Cancelled`](crate::FailureKind::Cancelled)).
///
/// A `#[task]` parameter of this type is not an argument of the call: the
/// worker fills it in when the task runs as a chord's callback, so the
/// callback is sent as `total::call()`. Run as anything else (alone, in a
/// chain), the call fails, permanently, with a message that says so; it
/// never panics.
///
/// ```
/// use task_runtime::{group, task, GroupResults};
///
/// #[task]
/// async fn count(text: String) -> usize { text.split_whitespace().count() }
///
/// /// The words of every text that was counted, and how many were not.
/// #[task]
/// async fn total(results: GroupResults<usize>) -> (usize, usize) {
///     let words = results.completed().sum();
///     (words, results.failed().count())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let texts = ["a b", "c d e", "f"];
/// let chord = count::map(texts.map(String::from)).then(total::call()).send().await?;
/// assert_eq!(chord.wait().await?, (6, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResults<T> {
    group: String,
    outcomes: Vec<Result<T, Failure>>,
}

impl<T> GroupResults<T> {
    /// Outcomes of the group `group`, in call order: how the worker builds
    /// them, and how a test of a callback's body (`total::run_inline`) can.
    ///
    /// ```
    /// use task_runtime::{Failure, FailureKind, GroupResults};
    /// let r = GroupResults::new("g1", vec![Ok(2), Err(Failure::new(FailureKind::Failed, "no"))]);
    /// assert_eq!((r.group_id(), r.len()), ("g1", 2));
    /// ```
    pub fn new(group: impl Into<String>, outcomes: Vec<Result<T, Failure>>) -> Self {
        GroupResults { group: group.into(), outcomes }
    }

    /// The group's id.
    pub fn group_id(&self) -> &str {
        &self.group
    }

    /// How many children the group has.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Whether the group has no child (never so for a group that was sent).
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Every outcome, in call order.
    pub fn outcomes(&self) -> &[Result<T, Failure>] {
        &self.outcomes
    }

    /// The values of the children that completed, in call order.
    pub fn completed(&self) -> impl Iterator<Item = &T> {
        self.outcomes.iter().filter_map(|o| o.as_ref().ok())
    }

    /// The children that did not complete: each one's index in the group
    /// (its id is `child_id`'s) and its failure.
    ///
    /// ```
    /// use task_runtime::{Failure, FailureKind, GroupResults};
    /// let r = GroupResults::new("g1", vec![Ok(2), Err(Failure::new(FailureKind::Failed, "no"))]);
    /// let failed: Vec<(usize, &str)> = r.failed().map(|(i, f)| (i, f.message.as_str())).collect();
    /// assert_eq!(failed, [(1, "no")]);
    /// ```
    pub fn failed(&self) -> impl Iterator<Item = (usize, &Failure)> {
        self.outcomes.iter().enumerate().filter_map(|(i, o)| o.as_ref().err().map(|f| (i, f)))
    }

    /// Whether every child completed.
    pub fn all_complete(&self) -> bool {
        self.outcomes.iter().all(Result::is_ok)
    }

    /// The outcomes, taken.
    pub fn into_outcomes(self) -> Vec<Result<T, Failure>> {
        self.outcomes
    }
}

impl<T> IntoIterator for GroupResults<T> {
    type Item = Result<T, Failure>;
    type IntoIter = std::vec::IntoIter<Result<T, Failure>>;

    fn into_iter(self) -> Self::IntoIter {
        self.outcomes.into_iter()
    }
}

/// The outcomes of the group whose callback is running (what `#[task]`
/// reads for a [`GroupResults`] parameter of `task`). Every child has ended
/// before a callback is sent, so this is one read of the group and its
/// children's items, 100 a request.
pub(crate) async fn of_running_callback<T: DeserializeOwned>(task: &str) -> Result<GroupResults<T>, TaskError> {
    let Some(group) = crate::context::current().and_then(|c| c.callback_of) else {
        return Err(TaskError::fail(format!(
            "task `{task}` takes its group's results (a GroupResults parameter), so it runs only as a chord's callback \
             (`group(..).then({task}::call())`); this call is not one"
        )));
    };
    match GroupHandle::<T>::from_id(group.clone()).wait().await {
        Ok(outcomes) => Ok(GroupResults { group, outcomes }),
        // The store could not be read: worth another attempt.
        Err(e @ crate::error::WaitError::Store(_)) => {
            Err(TaskError::retry(format!("the outcomes of group {group} could not be read: {e}")))
        }
        Err(e) => Err(TaskError::fail(format!("the outcomes of group {group} could not be read: {e}"))),
    }
}
