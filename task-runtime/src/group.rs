//! Calls not sent yet ([`Call`]), and groups of them: [`group`] sends many
//! calls under one id and waits for all of them ([`GroupHandle`]);
//! [`Group::then`] adds a callback that runs once every child has ended
//! (a chord). How a child's end is counted, and why the callback runs
//! once, is in [`crate::follow_up`] and [`crate::store::group`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::dispatch::{SendOptions, Target, check_id, dispatch, encode, json_type};
use crate::envelope::{GroupRef, callback_id, child_id};
use crate::error::{CancelError, DispatchError, StoreError, WaitError};
use crate::handle::{Backoff, TaskHandle};
use crate::registry::TaskSpec;
use crate::response::{Failure, FailureKind, Status};
use crate::store::group::{Callback, GroupItem, GroupState, MAX_GROUP_CHILDREN, Waiting, shards_for};
use crate::store::{Cancel, MAX_EVENT_LIFE_MS, MAX_KEPT_MESSAGE_BYTES, PendingItem, ResponseStore, give_up_ms, ttl_after};
use crate::time::now_ms;

/// How many children a group sends at once.
const SEND_CONCURRENCY: usize = 64;

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
    args: Result<Map<String, Value>, DispatchError>,
    options: SendOptions,
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
        Value::Object(map) => Ok(map),
        other => Err(DispatchError::ArgsNotObject { task: task.to_owned(), found: json_type(&other) }),
    };
    Call { task: task.to_owned(), function: None, capture: true, retries: None, args, options: SendOptions::default(), _value: PhantomData }
}

impl<T> Call<T> {
    /// A typed call of the task `spec` (what `#[task]`'s `call` builds).
    #[doc(hidden)]
    pub fn typed(spec: &'static TaskSpec, args: Result<Map<String, Value>, DispatchError>) -> Self {
        Call {
            task: spec.name.to_owned(),
            function: spec.function.map(str::to_owned),
            capture: spec.capture_response,
            retries: spec.retries,
            args,
            options: SendOptions::default(),
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
        let Call { task, function, capture, retries, args, options, .. } = self;
        Call { task, function, capture, retries, args, options, _value: PhantomData }
    }

    /// Its task, function, capture, retries, arguments and options.
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_parts(self) -> (String, Option<String>, bool, Option<u8>, Result<Map<String, Value>, DispatchError>, SendOptions) {
        (self.task, self.function, self.capture, self.retries, self.args, self.options)
    }

    fn target<'a>(&'a self, options: &'a SendOptions) -> Target<'a> {
        Target::new(&self.task, self.function.as_deref(), self.capture, self.retries, options)
    }

    /// Send it alone, like calling the task.
    pub async fn send(self) -> Result<TaskHandle<T>, DispatchError> {
        let args = self.args?;
        let (task, function, capture, retries, options) = (self.task, self.function, self.capture, self.retries, self.options);
        let sent = dispatch(Target::new(&task, function.as_deref(), capture, retries, &options), args).await?;
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
    /// whatever crashes or duplicate deliveries happen on the way; inside
    /// it, [`TaskContext::callback_of`](crate::TaskContext::callback_of)
    /// names the group, and [`GroupHandle::from_id`] reads every outcome.
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
    /// ```
    /// use task_runtime::{group, task, GroupHandle, TaskResult};
    ///
    /// #[task]
    /// async fn count(text: String) -> usize { text.split_whitespace().count() }
    ///
    /// #[task]
    /// async fn total() -> TaskResult<usize> {
    ///     let group = task_runtime::current().and_then(|c| c.callback_of).expect("run as a callback");
    ///     let counts = GroupHandle::<usize>::from_id(group).wait().await?;
    ///     Ok(counts.into_iter().flatten().sum())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let texts = ["a b", "c d e", "f"];
    /// let chord = group(texts.iter().map(|t| count::call(t.to_string())).collect()).then(total::call()).send().await?;
    /// assert_eq!(chord.wait().await?, 6);
    /// # Ok(()) }
    /// ```
    pub async fn send(self) -> Result<ChordHandle<T, U>, DispatchError> {
        let Call { task, function, capture, retries, args, options, .. } = self.callback;
        let pending = PendingCallback { task, function, capture, retries, args: args?, options, only_if_all_complete: self.only_if_all_complete };
        let (id, existing) = send_group(self.group, Some(pending)).await?;
        let callback = TaskHandle::from_id(callback_id(&id), String::new());
        Ok(ChordHandle { group: GroupHandle { id, existing, _value: PhantomData }, callback })
    }
}

/// A chord's callback, checked and ready to encode once the group's id is known.
struct PendingCallback {
    task: String,
    function: Option<String>,
    capture: bool,
    retries: Option<u8>,
    args: Map<String, Value>,
    options: SendOptions,
    only_if_all_complete: bool,
}

/// Record the group, then send its children. Returns the group's id and
/// whether it existed already.
async fn send_group<T>(group: Group<T>, callback: Option<PendingCallback>) -> Result<(String, bool), DispatchError> {
    let Group { calls, len, options, window, refused } = group;
    let rt = crate::runtime::runtime()?;
    let id = options.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let bad = |problem: String| DispatchError::BadGroup { group: id.clone(), problem };
    check_id("group", &id).map_err(|e| bad(e.to_string()))?;
    let store = rt.store().ok_or_else(|| bad("a group needs the response store (set TASK_RESPONSE_TABLE): its children are counted there".into()))?;
    let total = u32::try_from(len).ok().filter(|n| (1..=MAX_GROUP_CHILDREN).contains(n));
    let total = total.ok_or_else(|| bad(format!("a group has 1 to {MAX_GROUP_CHILDREN} calls, and this one has {len}")))?;
    if let Some(problem) = refused {
        return Err(bad(problem));
    }
    if window == Some(0) {
        return Err(bad("max_concurrency is 0: no child could ever run".into()));
    }
    if let Some((key, _)) = &options.debounce {
        return Err(bad(format!("a group cannot be debounced (key `{key}`): every child of a group runs, and the group counts each")));
    }
    // Checked before anything is written (a Vec of calls is looked at whole;
    // `map`'s calls are all of one task, so its first one speaks for all).
    let mut calls = calls.peekable();
    if let Some(c) = calls.peek().filter(|c| !c.capture || c.options.capture_response == Some(false)) {
        return Err(bad(format!("call 0 (task `{}`) does not capture its outcome (capture_response = false), so its end could not be counted", c.task)));
    }
    let now = now_ms();
    let run_at_ms = options.run_at.map(|at| at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64));
    let callback = match callback {
        None => None,
        Some(cb) => {
            if !cb.capture || cb.options.capture_response == Some(false) {
                return Err(bad(format!("the callback (task `{}`) does not capture its outcome (capture_response = false)", cb.task)));
            }
            let cb_id = callback_id(&id);
            let mut target = Target::new(&cb.task, cb.function.as_deref(), true, cb.retries, &cb.options);
            target.id = Some(&cb_id);
            target.run_at_ms = None;
            target.callback_of = Some(&id);
            let (_, payload) = encode(rt, &target, cb.args)?;
            if payload.len() > MAX_KEPT_MESSAGE_BYTES {
                return Err(bad(format!("the callback's message is {} bytes, over the {MAX_KEPT_MESSAGE_BYTES} a group keeps", payload.len())));
            }
            // Where the caller would send it: the worker that sends it may serve another function.
            let function = target.function.or(rt.config.function.as_deref()).map(str::to_owned);
            Some(Callback { message: String::from_utf8(payload).expect("serde_json writes UTF-8"), function, only_if_all_complete: cb.only_if_all_complete })
        }
    };
    // Until the last child can end, its callback can run, and a response TTL after.
    let ttl = ttl_after(give_up_ms(now, run_at_ms).saturating_add(MAX_EVENT_LIFE_MS), rt.config.response_ttl);
    let item = GroupItem { id: id.clone(), total, shards: shards_for(total), callback, window, now_ms: now, ttl };
    let created = store.put_group(item).await.map_err(|source| DispatchError::GroupStore { group: id.clone(), what: "its record".into(), source })?;
    if !created {
        tracing::info!(group = %id, "a group with this id exists already: sending only the children not sent");
    }
    let shards = shards_for(total);
    let id_ref = &id;
    let options_ref = &options;
    futures::stream::iter(calls.enumerate())
        .map(|(index, mut c)| async move {
            let index = index as u32;
            let args = std::mem::replace(&mut c.args, Ok(Map::new()));
            let child = GroupRef { id: id_ref.clone(), index, total, shards, window };
            let child_id = child.child_id();
            let waits = window.is_some_and(|w| index >= w);
            let own = SendOptions { id: None, run_at: if waits { None } else { options_ref.run_at }, ..c.options.clone() };
            let mut target = c.target(&own);
            target.id = Some(&child_id);
            target.group = Some(&child);
            let sent = match args {
                _ if !c.capture || c.options.capture_response == Some(false) => Err(DispatchError::BadGroup {
                    group: id_ref.clone(),
                    problem: format!("call {index} (task `{}`) does not capture its outcome (capture_response = false)", c.task),
                }),
                _ if c.options.debounce.is_some() => Err(DispatchError::BadGroup {
                    group: id_ref.clone(),
                    problem: format!("call {index} (task `{}`) is debounced: every child of a group runs, and the group counts each", c.task),
                }),
                Ok(args) if waits => wait_turn(rt, &target, args).await,
                Ok(args) => dispatch(target, args).await.map(drop),
                Err(e) => Err(e),
            };
            sent.map_err(|e| DispatchError::GroupChild { group: id_ref.clone(), index, source: Box::new(e) })
        })
        .buffer_unordered(SEND_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok((id, !created))
}

/// Record a child that waits for its turn (its group runs a limited number
/// at once): its message, built and signed now, is sent when a child
/// before it ends. A child recorded before is left as it is.
async fn wait_turn(rt: &crate::runtime::Runtime, target: &Target<'_>, args: Map<String, Value>) -> Result<(), DispatchError> {
    let (env, payload) = encode(rt, target, args)?;
    let store = rt.store().ok_or_else(|| DispatchError::IdNeedsStore { task: env.task.clone() })?;
    let now = now_ms();
    let item = PendingItem {
        id: env.id.clone(),
        task: env.task.clone(),
        now_ms: now,
        // Waiting has no end it can be given: a year, then a response TTL (its release sets its own).
        ttl: ttl_after(now.saturating_add(366 * 86_400_000), rt.config.response_ttl),
        run_at_ms: None,
        digest: rt.config.signing_key.as_ref().map(|_| env.digest()),
        parent: env.parent.clone(),
    };
    let message = String::from_utf8(payload).expect("serde_json writes UTF-8");
    if message.len() > MAX_KEPT_MESSAGE_BYTES {
        return Err(DispatchError::PayloadTooLarge { task: env.task.clone(), size: message.len(), limit: MAX_KEPT_MESSAGE_BYTES });
    }
    let function = target.function.or(rt.config.function.as_deref()).map(str::to_owned);
    store
        .put_waiting(item, Waiting { message, function })
        .await
        .map(drop)
        .map_err(|source| DispatchError::GroupStore { group: target.group.map(|g| g.id.clone()).unwrap_or_default(), what: format!("child {} waiting for its turn", env.id), source })
}

/// A group's progress: how many of its children have ended, and how.
///
/// ```
/// # use task_runtime::GroupStatus;
/// fn line(s: &GroupStatus) -> String {
///     format!("{} of {} ended ({} failed)", s.ended, s.total, s.failed)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group's id.
    pub id: String,
    /// Children.
    pub total: u32,
    /// Children that have ended, whatever their outcome.
    pub ended: u32,
    /// Of those, `complete`.
    pub complete: u32,
    /// `failed`.
    pub failed: u32,
    /// `cancelled`.
    pub cancelled: u32,
    /// The callback's id, when the group has one.
    pub callback: Option<String>,
    /// The callback's status, once it is sent (or cancelled).
    pub callback_status: Option<Status>,
}

impl GroupStatus {
    /// Whether every child has ended.
    pub fn all_ended(&self) -> bool {
        self.ended >= self.total
    }

    fn from_state(id: &str, s: GroupState, callback_status: Option<Status>) -> Self {
        GroupStatus {
            id: id.to_owned(),
            total: s.item.total,
            ended: s.ended,
            complete: s.complete,
            failed: s.failed,
            cancelled: s.cancelled,
            callback: s.item.callback.as_ref().map(|_| callback_id(id)),
            callback_status,
        }
    }
}

/// The store of the process's runtime.
fn store() -> Result<Arc<dyn ResponseStore>, StoreError> {
    crate::runtime::runtime()?.store().ok_or(StoreError::NotConfigured)
}

/// A group's progress; `None` when unknown or expired.
pub async fn group_status(id: &str) -> Result<Option<GroupStatus>, StoreError> {
    let store = store()?;
    let Some(state) = store.group(id).await? else { return Ok(None) };
    let callback_status = match &state.item.callback {
        Some(_) => store.get(&callback_id(id)).await?.map(|r| r.status),
        None => None,
    };
    Ok(Some(GroupStatus::from_state(id, state, callback_status)))
}

/// A sent group whose children's values are `T`s.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use task_runtime::GroupHandle;
/// let g: GroupHandle<u64> = GroupHandle::from_id("nightly-2026-11-30");
/// let outcomes = g.wait_timeout(std::time::Duration::from_secs(60)).await?;
/// println!("{} ok", outcomes.iter().filter(|o| o.is_ok()).count());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GroupHandle<T> {
    id: String,
    existing: bool,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for GroupHandle<T> {
    fn clone(&self) -> Self {
        GroupHandle { id: self.id.clone(), existing: self.existing, _value: PhantomData }
    }
}

impl<T> GroupHandle<T> {
    /// A handle for a known group id.
    pub fn from_id(id: impl Into<String>) -> Self {
        GroupHandle { id: id.into(), existing: false, _value: PhantomData }
    }

    /// The group's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `true` when a group of this id existed before this send: only the
    /// children it lacked were sent.
    pub fn is_existing(&self) -> bool {
        self.existing
    }

    /// The ids of the children, in call order.
    pub fn child_ids(&self, total: u32) -> Vec<String> {
        (0..total).map(|i| child_id(&self.id, i)).collect()
    }

    /// The group's progress; `None` when unknown or expired.
    pub async fn status(&self) -> Result<Option<GroupStatus>, StoreError> {
        group_status(&self.id).await
    }

    /// Cancel every child that has not begun, and the callback (it will not
    /// run, even when the children end). Returns how many children were
    /// cancelled. Children already running or ended are left as they are.
    pub async fn cancel(&self) -> Result<u32, CancelError> {
        let rt = crate::runtime::runtime().map_err(StoreError::from)?;
        let store = rt.store().ok_or(StoreError::NotConfigured)?;
        let Some(state) = store.group(&self.id).await? else { return Err(CancelError::NotFound { id: self.id.clone() }) };
        let now = now_ms();
        if let Some(cb) = &state.item.callback {
            // First the callback, so that the last child's cancel does not send it.
            let env: crate::envelope::Envelope = serde_json::from_str(&cb.message)
                .map_err(|e| StoreError::Corrupt { id: crate::store::group::group_key(&self.id), attribute: "callback", problem: format!("does not decode: {e}") })?;
            let item = PendingItem { id: callback_id(&self.id), task: env.task, now_ms: now, ttl: state.item.ttl, run_at_ms: None, digest: None, parent: env.parent };
            store.put_pending(item).await?;
            store.cancel(&callback_id(&self.id), now).await?;
        }
        let forwarder = crate::runtime::forwarder();
        let ids = self.child_ids(state.item.total);
        // The last first: a cancelled child's turn passes to the one after
        // it, which is then cancelled already, so no waiting child is sent.
        let cancelled = futures::stream::iter(ids.iter().enumerate().rev())
            .map(|(index, id)| {
                let (store, forwarder, rt) = (store.clone(), forwarder.clone(), rt);
                let child = GroupRef { id: self.id.clone(), index: index as u32, total: state.item.total, shards: state.item.shards, window: state.item.window };
                // Only the children sent at once can have a schedule; the others waited in the store.
                let sent_at_once = state.item.window.is_none_or(|w| (index as u32) < w);
                async move {
                    match store.cancel(id, now_ms()).await? {
                        Cancel::Cancelled { was } => {
                            if was == Status::Scheduled
                                && sent_at_once
                                && let Err(e) = rt.backend.unschedule(id).await
                            {
                                tracing::warn!(%id, "cancelled, but its schedule could not be deleted: {e}");
                            }
                            crate::follow_up::child_ended(store.as_ref(), Some(&forwarder), &child, Status::Cancelled, rt.config.response_ttl)
                                .await
                                .map_err(|e| StoreError::Backend { operation: "count_ended", table: "the response store".into(), message: e.to_string() })?;
                            Ok::<u32, StoreError>(1)
                        }
                        Cancel::NotCancellable { .. } | Cancel::NotFound => Ok(0),
                    }
                }
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .try_fold(0u32, |sum, n| async move { Ok(sum + n) })
            .await?;
        Ok(cancelled)
    }
}

/// How many reads of a group's outcomes run at once.
const READS_AT_ONCE: usize = 8;


impl<T: DeserializeOwned> GroupHandle<T> {
    /// Poll (10 ms growing to 1 s) until every child has ended; then each
    /// child's outcome, in call order: its value, or its failure (a
    /// cancelled child is kind `cancelled`).
    pub async fn wait(&self) -> Result<Vec<Result<T, Failure>>, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<Vec<Result<T, Failure>>, WaitError> {
        self.wait_until(Some(limit)).await
    }

    async fn wait_until(&self, limit: Option<Duration>) -> Result<Vec<Result<T, Failure>>, WaitError> {
        let state = self.ended(limit).await?;
        let store = store()?;
        let ids = self.child_ids(state.item.total);
        // 100 ids a read (BatchGetItem's most), 8 reads at once, in order.
        let reads: Vec<Vec<Option<crate::response::AsyncResponse>>> =
            futures::stream::iter(ids.chunks(100).map(<[String]>::to_vec))
                .map(|chunk| {
                    let store = store.clone();
                    async move { store.get_many(&chunk).await }
                })
                .buffered(READS_AT_ONCE)
                .try_collect()
                .await?;
        ids.iter().zip(reads.into_iter().flatten()).map(|(id, r)| child_outcome(id, r)).collect()
    }
}

/// One ended child's outcome.
fn child_outcome<T: DeserializeOwned>(id: &str, r: Option<crate::response::AsyncResponse>) -> Result<Result<T, Failure>, WaitError> {
    let Some(r) = r else { return Err(WaitError::NotFound { id: id.to_owned() }) };
    Ok(match r.status {
        Status::Complete => Ok(serde_json::from_value(r.response.unwrap_or(Value::Null))
            .map_err(|source| WaitError::Decode { id: id.to_owned(), task: r.task.clone(), source })?),
        Status::Cancelled => Err(Failure::new(FailureKind::Other("cancelled".into()), "cancelled before it ran")),
        _ => Err(r.error.unwrap_or_else(|| Failure::new(FailureKind::Failed, format!("{} with no error recorded", r.status)))),
    })
}

/// A sent chord: its group, and its callback's result.
#[derive(Debug)]
pub struct ChordHandle<T, U> {
    group: GroupHandle<T>,
    callback: TaskHandle<U>,
}

impl<T, U> ChordHandle<T, U> {
    /// The group.
    pub fn group(&self) -> &GroupHandle<T> {
        &self.group
    }

    /// The callback's id.
    pub fn callback_id(&self) -> &str {
        self.callback.id()
    }

    /// Cancel the children that have not begun, and the callback.
    pub async fn cancel(&self) -> Result<u32, CancelError> {
        self.group.cancel().await
    }
}

impl<T, U: DeserializeOwned> ChordHandle<T, U> {
    /// Wait until the callback has run, and return its value.
    pub async fn wait(&self) -> Result<U, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<U, WaitError> {
        self.wait_until(Some(limit)).await
    }

    async fn wait_until(&self, limit: Option<Duration>) -> Result<U, WaitError> {
        let mut backoff = Backoff::new(limit);
        let left = |backoff: &Backoff| limit.map(|l| l.saturating_sub(backoff.waited()));
        // The callback has no item until every child has ended.
        self.group.ended(left(&backoff)).await?;
        let store = store()?;
        while store.get(self.callback.id()).await?.is_none() {
            if let Err(waited) = backoff.pause().await {
                return Err(WaitError::Timeout { id: self.callback.id().to_owned(), task: "the callback".into(), waited, last: Status::Pending });
            }
        }
        match left(&backoff) {
            Some(l) => self.callback.wait_timeout(l).await,
            None => self.callback.wait().await,
        }
    }
}

impl<T> GroupHandle<T> {
    /// Poll until every child has ended; the group as it is then.
    async fn ended(&self, limit: Option<Duration>) -> Result<GroupState, WaitError> {
        let store = store()?;
        let mut backoff = Backoff::new(limit);
        loop {
            let Some(state) = store.group(&self.id).await? else { return Err(WaitError::NotFound { id: self.id.clone() }) };
            if state.all_ended() {
                return Ok(state);
            }
            if let Err(waited) = backoff.pause().await {
                return Err(WaitError::GroupTimeout { id: self.id.clone(), waited, ended: state.ended, total: state.item.total });
            }
        }
    }
}
