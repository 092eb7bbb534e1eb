//! Calls not sent yet ([`Call`]), and groups of them: [`group`] sends many
//! calls under one id and waits for all of them ([`GroupHandle`]);
//! [`Group::then`] adds a callback that runs once every child has ended
//! (a chord). How a child's end is counted, and why the callback runs
//! once, is in [`crate::follow_up`] and [`crate::store::group`].
//!
//! Here: [`Call`], [`Group`] and [`Chord`], built before sending. Beside it:
//! `send` (the group's record, then its children) and `handle` (a sent
//! group: status, outcomes, cancel; the chord's handle).

mod handle;
mod results;
mod send;

use std::marker::PhantomData;

use serde_json::Value;

use crate::dispatch::{SendOptions, Target, dispatch, json_type};
use crate::envelope::{Args, callback_id};
use crate::error::DispatchError;
use crate::handle::TaskHandle;
use crate::registry::TaskSpec;

pub use self::handle::{ChordHandle, GroupHandle, GroupStatus, group_status};
pub use self::results::GroupResults;
pub(crate) use self::results::of_running_callback;
use self::send::{PendingCallback, send_group};

/// A call that is not sent yet: a task, its arguments and its options.
/// Every `#[task]` has a `call` companion that builds one; [`call`] builds
/// one by name. Send it alone ([`Call::send`]), or in a [`group`].
///
/// ```
/// use task_runtime::{task, Call};
///
/// #[task]
/// async fn word_count(text: String) -> usize { text.split_whitespace().count() }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let c: Call<usize> = word_count::call("one two".into());
/// assert_eq!(c.task(), word_count::NAME);
/// assert_eq!(c.send().await?.wait().await?, 2);
/// # Ok(()) }
/// ```
#[must_use = "a Call does nothing until it is sent, alone or in a group"]
pub struct Call<T> {
    task: String,
    function: Option<String>,
    capture: bool,
    retries: Option<u8>,
    args: Result<Args, DispatchError>,
    options: SendOptions,
    /// The task's idempotency key, used when the call is sent alone.
    idempotency: Option<crate::idempotency::Idempotency>,
    _value: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("task", &self.task).field("args", &self.args).finish_non_exhaustive()
    }
}

/// A call of task `task` by name, with JSON args keyed by parameter name,
/// without its Rust types (see [`crate::send`]).
///
/// ```
/// let c = task_runtime::call("worker::word_count", serde_json::json!({"text": "a b"}));
/// assert_eq!(c.task(), "worker::word_count");
/// ```
pub fn call(task: &str, args: Value) -> Call<Value> {
    let args = match args {
        Value::Object(map) => Ok(map.into()),
        other => Err(DispatchError::ArgsNotObject { task: task.to_owned(), found: json_type(&other) }),
    };
    Call { task: task.to_owned(), function: None, capture: true, retries: None, args, options: SendOptions::default(), idempotency: None, _value: PhantomData }
}

impl<T> Call<T> {
    /// A typed call of the task `spec` (what `#[task]`'s `call` builds).
    #[doc(hidden)]
    pub fn typed(spec: &'static TaskSpec, args: Result<Args, DispatchError>) -> Self {
        Call {
            task: spec.name.to_owned(),
            function: spec.function.map(str::to_owned),
            capture: spec.capture_response,
            retries: spec.retries,
            args,
            options: SendOptions::default(),
            idempotency: spec.idempotency,
            _value: PhantomData,
        }
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// This call's own options (alone: all of them; in a group: the
    /// function and the retries, since the group gives ids and delays).
    pub fn options(mut self, options: SendOptions) -> Self {
        self.options = options;
        self
    }

    /// The same call, its value's type forgotten (a chain's first call).
    pub(crate) fn erase(self) -> Call<Value> {
        let Call { task, function, capture, retries, args, options, idempotency, .. } = self;
        Call { task, function, capture, retries, args, options, idempotency, _value: PhantomData }
    }

    /// Its task, function, capture, retries, arguments and options.
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_parts(self) -> (String, Option<String>, bool, Option<u8>, Result<Args, DispatchError>, SendOptions) {
        (self.task, self.function, self.capture, self.retries, self.args, self.options)
    }

    fn target<'a>(&'a self, options: &'a SendOptions) -> Target<'a> {
        Target::new(&self.task, self.function.as_deref(), self.capture, self.retries, options)
    }

    /// Send it alone, like calling the task.
    pub async fn send(self) -> Result<TaskHandle<T>, DispatchError> {
        let args = self.args?;
        let (task, function, capture, retries, options) = (self.task, self.function, self.capture, self.retries, self.options);
        let target = Target::new(&task, function.as_deref(), capture, retries, &options).keyed(self.idempotency.as_ref());
        let sent = dispatch(target, args).await?;
        Ok(TaskHandle::from_dispatched(sent, task))
    }
}

/// Calls to send as one group: see [`group`].
#[must_use = "a Group does nothing until it is sent"]
pub struct Group<T> {
    /// The calls, made one by one as they are sent (`map` never holds them all).
    calls: Box<dyn Iterator<Item = Call<T>> + Send>,
    len: usize,
    options: SendOptions,
    window: Option<u32>,
    /// A call of a `Vec` that could not be counted, found before anything is sent.
    refused: Option<String>,
}

impl<T> std::fmt::Debug for Group<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("len", &self.len).field("options", &self.options).field("window", &self.window).finish_non_exhaustive()
    }
}

/// A group of calls sent as one: one id, every child sent at once (64 at a
/// time), and one handle that waits for all of them, each outcome in call
/// order. A failed child is an `Err` in its place, never a hang.
///
/// ```
/// use task_runtime::{group, task, Failure, TaskError, TaskResult};
///
/// #[task]
/// async fn square(n: u64) -> TaskResult<u64> {
///     if n == 3 { return Err(TaskError::fail("three is not allowed")) }
///     Ok(n * n)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # task_runtime::Config::local().with_local_retry_delay(std::time::Duration::ZERO).install()?;
/// let g = group((1..=4).map(square::call).collect()).send().await?;
/// let all: Vec<Result<u64, Failure>> = g.wait().await?;
/// assert_eq!(all[1].as_ref().ok(), Some(&4));
/// assert!(all[2].as_ref().is_err_and(|f| f.message.contains("three")));
///
/// let status = task_runtime::group_status(g.id()).await?.expect("recorded");
/// assert_eq!((status.total, status.complete, status.failed), (4, 3, 1));
/// # Ok(()) }
/// ```
pub fn group<T: 'static>(calls: Vec<Call<T>>) -> Group<T> {
    let refused = calls.iter().enumerate().find(|(_, c)| !c.capture || c.options.capture_response == Some(false)).map(|(index, c)| {
        format!("call {index} (task `{}`) does not capture its outcome (capture_response = false), so its end could not be counted", c.task)
    });
    Group { refused, ..Group::from_calls(calls) }
}

impl<T: 'static> Group<T> {
    /// A group of the calls `calls` makes, one by one as they are sent, so
    /// that a large input is never held as calls all at once (what
    /// `#[task]`'s `map` builds).
    ///
    /// ```
    /// use task_runtime::{task, Group};
    ///
    /// #[task]
    /// async fn thumbnail(key: String) -> String { format!("thumbs/{key}") }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let keys: Vec<String> = (0..50).map(|i| format!("photo-{i}.jpg")).collect();
    /// // At most 4 bodies at once, whatever Lambda's concurrency.
    /// let g = thumbnail::map(keys).max_concurrency(4).send().await?;
    /// assert_eq!(g.wait().await?.len(), 50);
    /// # Ok(()) }
    /// ```
    /// An iterator that does not know its length exactly (its `size_hint`)
    /// is collected first.
    pub fn from_calls<I>(calls: I) -> Self
    where
        I: IntoIterator<Item = Call<T>>,
        I::IntoIter: Send + 'static,
    {
        let calls = calls.into_iter();
        match calls.size_hint() {
            (low, Some(high)) if low == high => Group { len: low, calls: Box::new(calls), options: SendOptions::default(), window: None, refused: None },
            _ => {
                let all: Vec<Call<T>> = calls.collect();
                Group { len: all.len(), calls: Box::new(all.into_iter()), options: SendOptions::default(), window: None, refused: None }
            }
        }
    }
}

impl<T> Group<T> {
    /// Run at most `n` children at once, across every instance: the first
    /// `n` are sent, the others wait in the store, and each child's end
    /// sends the next (child `i`'s end is child `i + n`'s turn). Enforced by
    /// the runtime, whatever Lambda's concurrency.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.window = Some(n);
        self
    }

    /// The group's options: an id of the caller's (sending a group whose id
    /// exists sends only the children that were not sent), a delay for
    /// every child.
    pub fn options(mut self, options: SendOptions) -> Self {
        self.options = options;
        self
    }

    /// Send `callback` once every child has ended (a chord). It runs once,
    /// whatever crashes or duplicate deliveries happen on the way. A
    /// [`GroupResults`] parameter of the callback's task receives every
    /// child's outcome; otherwise
    /// [`TaskContext::callback_of`](crate::TaskContext::callback_of) names
    /// the group, and [`GroupHandle::from_id`] reads them.
    pub fn then<U>(self, callback: Call<U>) -> Chord<T, U> {
        Chord { group: self, callback, only_if_all_complete: false }
    }

    /// Send every child; see [`group`].
    pub async fn send(self) -> Result<GroupHandle<T>, DispatchError> {
        let (id, existing) = send_group(self, None).await?;
        Ok(GroupHandle { id, existing, _value: PhantomData })
    }
}

/// A group with a callback: see [`Group::then`].
#[must_use = "a Chord does nothing until it is sent"]
#[derive(Debug)]
pub struct Chord<T, U> {
    group: Group<T>,
    callback: Call<U>,
    only_if_all_complete: bool,
}

impl<T, U> Chord<T, U> {
    /// The group's options, as [`Group::options`] takes them (an id of the
    /// caller's, a delay for every child), set on the chord: before or
    /// after `.then`, the same. The callback's own options are its call's.
    ///
    /// ```
    /// use task_runtime::{group, task, GroupResults, SendOptions};
    ///
    /// #[task]
    /// async fn double(n: u32) -> u32 { n * 2 }
    ///
    /// #[task]
    /// async fn sum(results: GroupResults<u32>) -> u32 { results.completed().sum() }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let chord = double::map([1, 2, 3]).then(sum::call()).options(SendOptions::default().id("doubles-1")).send().await?;
    /// assert_eq!(chord.group().id(), "doubles-1");
    /// assert_eq!(chord.wait().await?, 12);
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: SendOptions) -> Self {
        self.group.options = options;
        self
    }

    /// Run the callback only when every child completed. Otherwise it does
    /// not run, and its call ends `failed`, naming the children that did not
    /// complete. (By default it runs with every outcome, failures included.)
    pub fn only_if_all_complete(mut self) -> Self {
        self.only_if_all_complete = true;
        self
    }

    /// Send every child; the callback follows when all have ended. The
    /// handle resolves to the callback's own result.
    ///
    /// The callback takes its group's outcomes as a [`GroupResults`]
    /// parameter, failed children included, so it can count and report
    /// them rather than drop them:
    ///
    /// ```
    /// use task_runtime::{group, task, GroupResults, TaskError, TaskResult};
    ///
    /// #[task]
    /// async fn count(text: String) -> TaskResult<usize> {
    ///     if text.is_empty() { return Err(TaskError::fail("nothing to count")) }
    ///     Ok(text.split_whitespace().count())
    /// }
    ///
    /// /// The words counted, and a line for each text that could not be.
    /// #[task]
    /// async fn total(results: GroupResults<usize>) -> (usize, Vec<String>) {
    ///     let words = results.completed().sum();
    ///     let failed = results.failed().map(|(i, f)| format!("text {i}: {}", f.message)).collect();
    ///     (words, failed)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # task_runtime::Config::local().with_local_retry_delay(std::time::Duration::ZERO).install()?;
    /// let texts = ["a b", "", "c d e"];
    /// let chord = group(texts.iter().map(|t| count::call(t.to_string())).collect()).then(total::call()).send().await?;
    /// let (words, failed) = chord.wait().await?;
    /// assert_eq!(words, 5);
    /// assert_eq!(failed, ["text 1: nothing to count"]);
    /// # Ok(()) }
    /// ```
    ///
    /// The handle's [`wait`](ChordHandle::wait) says what it returns when
    /// the callback never runs.
    pub async fn send(self) -> Result<ChordHandle<T, U>, DispatchError> {
        let Call { task, function, capture, retries, args, options, .. } = self.callback;
        let pending = PendingCallback { task, function, capture, retries, args: args?, options, only_if_all_complete: self.only_if_all_complete };
        let (id, existing) = send_group(self.group, Some(pending)).await?;
        let callback = TaskHandle::from_id(callback_id(&id), String::new());
        Ok(ChordHandle { group: GroupHandle { id, existing, _value: PhantomData }, callback })
    }
}