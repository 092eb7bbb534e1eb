//! Sending a group: its record written first (with its callback, if a
//! chord), then its children, at most `max_concurrency` running at once.

use futures::{StreamExt, TryStreamExt};

use crate::dispatch::{SendOptions, Target, check_id, dispatch, encode};
use crate::envelope::{Args, GroupRef, callback_id};
use crate::error::DispatchError;
use crate::store::group::{Callback, GroupItem, MAX_GROUP_CHILDREN, Waiting, shards_for};
use crate::store::{MAX_EVENT_LIFE_MS, MAX_KEPT_MESSAGE_BYTES, PendingItem, give_up_ms, ttl_after};
use crate::time::now_ms;

use super::Group;

/// How many children a group sends at once.
pub(super) const SEND_CONCURRENCY: usize = 64;

/// A chord's callback, checked and ready to encode once the group's id is known.
pub(super) struct PendingCallback {
    pub(super) task: String,
    pub(super) function: Option<String>,
    pub(super) capture: bool,
    pub(super) retries: Option<u8>,
    pub(super) args: Args,
    pub(super) options: SendOptions,
    pub(super) only_if_all_complete: bool,
}

/// Record the group, then send its children. Returns the group's id and
/// whether it existed already.
pub(super) async fn send_group<T>(group: Group<T>, callback: Option<PendingCallback>) -> Result<(String, bool), DispatchError> {
    let Group { calls, len, options, window, refused } = group;
    let rt = crate::runtime::runtime()?;
    let id = options.id.clone().unwrap_or_else(crate::envelope::new_id);
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
            let (_, payload) = encode(rt, &target, cb.args).await?;
            if payload.len() > MAX_KEPT_MESSAGE_BYTES {
                return Err(bad(format!("the callback's message is {} bytes, over the {MAX_KEPT_MESSAGE_BYTES} a group keeps", payload.len())));
            }
            // Where the caller would send it: the worker that sends it may serve another function.
            let function = rt.config.function_for(target.function).map(str::to_owned);
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
            let args = std::mem::replace(&mut c.args, Ok(Args::default()));
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
pub(super) async fn wait_turn(rt: &crate::runtime::Runtime, target: &Target<'_>, args: Args) -> Result<(), DispatchError> {
    let (env, payload) = encode(rt, target, args).await?;
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
    let function = rt.config.function_for(target.function).map(str::to_owned);
    store
        .put_waiting(item, Waiting { message, function })
        .await
        .map(drop)
        .map_err(|source| DispatchError::GroupStore { group: target.group.map(|g| g.id.clone()).unwrap_or_default(), what: format!("child {} waiting for its turn", env.id), source })
}