//! What a call's end sets off: its count in its group (fan-in) and the
//! group's callback, sent exactly once; and the next step of its chain.
//!
//! Every path that sees a child end calls `child_ended`: the worker that
//! wrote its outcome, a later delivery that finds it finished, Lambda's
//! failure record, a cancel. Counting is idempotent
//! ([`ResponseStore::count_ended`]), so a path may count a child that
//! another already counted. When a count finds every child ended, it sends
//! the callback under its derived id ([`callback_id`]): the pending write
//! only creates, and a worker never runs a call twice, so however many
//! paths send it, its body runs once. When the process dies between the
//! count and the send, the invocation fails, Lambda delivers the child
//! again (or its failure record), and that path finds the child counted,
//! every child ended, and the callback still `pending` or absent: it sends.
//!
//! A call the runtime retries itself, or a delivery a flow limit puts off,
//! is sent again with `send_later`.
//!
//! A chain's next step goes the same way (`next_step`): its id is derived
//! from the chain's, created only if absent and sent while `pending`, by
//! the worker that completed the step before, or by any later delivery of
//! that step.

use std::sync::Arc;

use async_trait::async_trait;

use crate::envelope::{Envelope, GroupRef, callback_id, child_id};
use crate::error::StoreError;
use crate::response::{Failure, FailureKind, Status};
use crate::store::group::Release;
use crate::store::payloads::SealError;
use crate::store::{MAX_EVENT_LIFE_MS, PendingItem, ResponseStore, give_up_ms, ttl_after};
use crate::time::now_ms;

/// Sends a task message that is built already (a group's callback) through
/// the process's backend: Lambda, or the local queue.
#[async_trait]
pub trait Forwarder: Send + Sync + std::fmt::Debug {
    /// Send `payload` (the bytes of `message`) to `function`, or to the
    /// configured function when `None`; at `run_at_ms` (epoch ms) when
    /// given (a re-sent retry, a delivery put off by a limit), else now.
    async fn forward(&self, message: &Envelope, payload: Vec<u8>, function: Option<&str>, run_at_ms: Option<u64>) -> Result<(), String>;
}

/// The longest gap a worker waits out itself before it sends a message
/// again, instead of through a delayed send: EventBridge Scheduler invokes
/// with 60-second precision
/// (<https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html>),
/// so a gap this short would be lost in it; waiting it costs a second of
/// billed time at most.
pub const WAIT_IN_PLACE_MS: u64 = 1_000;

/// Send `message` again, due at `run_at_ms` (epoch ms), to the function
/// this code runs in (the backend's default outside Lambda): signed with
/// `key` when signing is on. A gap of at most [`WAIT_IN_PLACE_MS`] that
/// ends before `wait_until_ms` (this invocation's deadline, less its
/// margin) is waited here and the message invoked; a longer one is a
/// delayed send (EventBridge Scheduler on AWS, a timer locally). `Err` is
/// what the backend said.
pub(crate) async fn send_later(forwarder: Option<&Arc<dyn Forwarder>>, mut message: Envelope, run_at_ms: u64, key: Option<&[u8]>, wait_until_ms: u64) -> Result<(), String> {
    let forwarder = forwarder.ok_or("this worker has no backend to send with")?;
    message.sig = None;
    if let Some(key) = key {
        message.sign(key);
    }
    let payload = message.to_payload().map_err(|(size, limit)| format!("the message is {size} bytes, over Lambda's {limit}"))?;
    let function = crate::context::invoked_function_arn();
    let now = now_ms();
    let at = if run_at_ms <= now.saturating_add(WAIT_IN_PLACE_MS) && run_at_ms < wait_until_ms {
        tokio::time::sleep(std::time::Duration::from_millis(run_at_ms.saturating_sub(now))).await;
        None
    } else {
        Some(run_at_ms)
    };
    forwarder.forward(&message, payload, function.as_deref(), at).await
}

/// Why a child's end could not be carried to its group.
#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    /// The store refused a write or a read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The callback (or a chain's next step) could not be sent.
    #[error("`{group}`: {id} could not be sent: {message}")]
    Send {
        /// The group (or chain).
        group: String,
        /// The callback's (or step's) id.
        id: String,
        /// What the backend said.
        message: String,
    },
}

/// How long the group's items are kept from now: until a callback sent
/// now can no longer change, and a response TTL after.
fn group_ttl(now: u64, response_ttl: std::time::Duration) -> u64 {
    ttl_after(give_up_ms(now, None), response_ttl)
}

/// Count `child`'s end as `status`; when every child has ended, send the
/// group's callback (or end it `failed`, when it runs only on success).
pub(crate) async fn child_ended(
    store: &dyn ResponseStore,
    forwarder: Option<&Arc<dyn Forwarder>>,
    child: &GroupRef,
    status: Status,
    response_ttl: std::time::Duration,
) -> Result<(), FollowUpError> {
    let now = now_ms();
    let counted = store.count_ended(child, status, now, group_ttl(now, response_ttl)).await?;
    tracing::debug!(group = %child.id, index = child.index, newly = counted.newly, all_ended = counted.all_ended, "child counted");
    if counted.all_ended {
        send_callback(store, forwarder, &child.id, response_ttl).await?;
    } else if child.window.is_some() {
        next_in_turn(store, forwarder, child, response_ttl).await?;
    }
    Ok(())
}

/// In a group that runs at most `window` children at once, child `i`'s end
/// is child `i + window`'s turn: release it from waiting and send it (again,
/// while it is `pending`: its sender may have died). A child cancelled while
/// it waited is counted, and the turn passes on to the one after it.
async fn next_in_turn(
    store: &dyn ResponseStore,
    forwarder: Option<&Arc<dyn Forwarder>>,
    child: &GroupRef,
    response_ttl: std::time::Duration,
) -> Result<(), FollowUpError> {
    let mut at = child.clone();
    while let Some(next) = at.next_in_turn() {
        let id = child_id(&child.id, next);
        let now = now_ms();
        let waiting = match store.release(&id, now, ttl_after(give_up_ms(now, None).saturating_add(MAX_EVENT_LIFE_MS), response_ttl)).await? {
            Release::Released(w) | Release::Pending(w) => w,
            Release::Gone(Status::Cancelled) => {
                at = GroupRef { index: next, ..at };
                // Boxed: a turn passed on through cancelled children counts each of them.
                let counted = store.count_ended(&at, Status::Cancelled, now, group_ttl(now, response_ttl)).await?;
                if counted.all_ended {
                    return Box::pin(send_callback(store, forwarder, &child.id, response_ttl)).await;
                }
                if !counted.newly {
                    // Whoever counted it passed its turn on.
                    return Ok(());
                }
                continue;
            }
            Release::Gone(_) | Release::NotFound => return Ok(()),
        };
        let send_error = |message: String| FollowUpError::Send { group: child.id.clone(), id: id.clone(), message };
        let env: Envelope = serde_json::from_str(&waiting.message).map_err(|e| send_error(format!("its kept message does not decode: {e}")))?;
        let forwarder = forwarder.ok_or_else(|| send_error("this worker has no backend to send it with (build it with Worker::from_runtime)".into()))?;
        forwarder.forward(&env, waiting.message.into_bytes(), waiting.function.as_deref(), None).await.map_err(send_error)?;
        tracing::debug!(group = %child.id, next, "the next child's turn: sent");
        return Ok(());
    }
    Ok(())
}

/// Send group `group`'s callback, once every child has ended: create its
/// `pending` item (only if absent) and send it while it is `pending`.
async fn send_callback(
    store: &dyn ResponseStore,
    forwarder: Option<&Arc<dyn Forwarder>>,
    group: &str,
    response_ttl: std::time::Duration,
) -> Result<(), FollowUpError> {
    let Some(state) = store.group(group).await? else {
        return Err(StoreError::Corrupt { id: crate::store::group::group_key(group), attribute: "id", problem: "is missing: its callback cannot be sent".into() }.into());
    };
    let Some(callback) = state.item.callback.clone() else { return Ok(()) };
    let id = callback_id(group);
    let send_error = |message: String| FollowUpError::Send { group: group.to_owned(), id: id.clone(), message };
    let env: Envelope = serde_json::from_str(&callback.message).map_err(|e| send_error(format!("its stored message does not decode: {e}")))?;
    let now = now_ms();
    let item = PendingItem {
        id: id.clone(),
        task: env.task.clone(),
        now_ms: now,
        ttl: ttl_after(give_up_ms(now, None), response_ttl),
        run_at_ms: None,
        digest: env.sig.as_ref().map(|_| env.digest()),
        parent: env.parent.clone(),
    };
    if callback.only_if_all_complete && state.complete < state.item.total {
        let failure = Failure::new(FailureKind::Failed, not_all_complete(store, group, &state).await?);
        if store.fail_unfinished(item, failure, None).await? {
            tracing::warn!(group, callback = %id, "not every child completed: the callback ends failed, not run");
        }
        return Ok(());
    }
    if send_once(store, forwarder, item, &env, callback.message.clone().into_bytes(), callback.function.as_deref()).await.map_err(|e| match e {
        SendOnce::Store(e) => FollowUpError::Store(e),
        SendOnce::Send(message) => send_error(message),
    })? {
        tracing::info!(group, callback = %id, "every child ended: callback sent");
    }
    Ok(())
}

enum SendOnce {
    Store(StoreError),
    Send(String),
}

/// Create `item` (only if absent) and send `message` while it is
/// `pending`: `true` when it was sent now. A call found begun or ended is
/// not sent again; one found `pending` is (the sender before may have died
/// between its write and its send), and its worker runs it once.
async fn send_once(
    store: &dyn ResponseStore,
    forwarder: Option<&Arc<dyn Forwarder>>,
    item: PendingItem,
    message: &Envelope,
    payload: Vec<u8>,
    function: Option<&str>,
) -> Result<bool, SendOnce> {
    let id = item.id.clone();
    if !store.put_pending(item).await.map_err(SendOnce::Store)? {
        match store.get(&id).await.map_err(SendOnce::Store)? {
            Some(r) if r.status == Status::Pending => tracing::info!(%id, "sent before and still pending: sending it again (a worker runs it once)"),
            _ => return Ok(false),
        }
    }
    let forwarder = forwarder.ok_or_else(|| SendOnce::Send("this worker has no backend to send it with (build it with Worker::from_runtime)".into()))?;
    forwarder.forward(message, payload, function, None).await.map_err(SendOnce::Send)?;
    Ok(true)
}

/// Send the step of `call`'s chain that follows it, with `value` (what
/// `call` completed with) as its argument; nothing when no step follows. A
/// message over Lambda's limit ends the step `failed`, kind `too_large`.
pub(crate) async fn next_step(
    store: &dyn ResponseStore,
    forwarder: Option<&Arc<dyn Forwarder>>,
    call: &Envelope,
    value: serde_json::Value,
    signing_key: Option<&[u8]>,
    response_ttl: std::time::Duration,
    payloads: &crate::store::payloads::Payloads,
) -> Result<(), FollowUpError> {
    let Some(mut next) = call.next_step(value) else { return Ok(()) };
    // Signed (its arguments through S3 when too large) before its digest is taken.
    let sealed = payloads.seal(&mut next, signing_key).await;
    let now = now_ms();
    let item = PendingItem {
        id: next.id.clone(),
        task: next.task.clone(),
        now_ms: now,
        ttl: ttl_after(give_up_ms(now, None), response_ttl),
        run_at_ms: None,
        digest: signing_key.map(|_| next.digest()),
        parent: next.parent.clone(),
    };
    let payload = match sealed {
        Ok(p) => p,
        Err(SealError::TooLarge { size, limit }) => {
            let failure = Failure::new(FailureKind::TooLarge, format!("the value of the step before makes this step's message {size} bytes, over Lambda's {limit} (set TASK_PAYLOAD_BUCKET to send it through S3)"));
            store.fail_unfinished(item, failure, None).await?;
            return Ok(());
        }
        Err(SealError::Payload(e)) if e.transient => return Err(FollowUpError::Send { group: next.chain.as_ref().map(|c| c.id.clone()).unwrap_or_default(), id: next.id.clone(), message: e.to_string() }),
        Err(SealError::Payload(e)) => {
            store.fail_unfinished(item, Failure::new(FailureKind::BadPayload, format!("this step's arguments could not be sent through S3: {e}")), None).await?;
            return Ok(());
        }
    };
    let function = call.then.first().and_then(|s| s.function.clone());
    let send_error = |message: String| FollowUpError::Send { group: next.chain.as_ref().map(|c| c.id.clone()).unwrap_or_default(), id: next.id.clone(), message };
    match send_once(store, forwarder, item, &next, payload, function.as_deref()).await {
        Ok(sent) => {
            if sent {
                tracing::info!(step = %next.id, "chain: next step sent");
            }
            Ok(())
        }
        Err(SendOnce::Store(e)) => Err(e.into()),
        Err(SendOnce::Send(m)) => Err(send_error(m)),
    }
}

/// The message of a callback that does not run: which children did not complete.
async fn not_all_complete(store: &dyn ResponseStore, group: &str, state: &crate::store::group::GroupState) -> Result<String, StoreError> {
    const NAMED: usize = 10;
    let ids: Vec<String> = (0..state.item.total).map(|i| child_id(group, i)).collect();
    let mut named = Vec::new();
    for chunk in ids.chunks(100) {
        for (id, r) in chunk.iter().zip(store.get_many(chunk).await?) {
            let line = match r {
                Some(r) if r.status == Status::Complete => continue,
                Some(r) => match r.error {
                    Some(f) => format!("{id} {} ({}: {})", r.status, f.kind, f.message.chars().take(200).collect::<String>()),
                    None => format!("{id} {}", r.status),
                },
                None => format!("{id} expired"),
            };
            named.push(line);
        }
        if named.len() >= NAMED {
            break;
        }
    }
    named.truncate(NAMED);
    let not_complete = state.item.total.saturating_sub(state.complete);
    let more = (not_complete as usize).saturating_sub(named.len());
    let mut text = format!(
        "the callback runs only when every child completes, and {not_complete} of {} did not ({} failed, {} cancelled): {}",
        state.item.total, state.failed, state.cancelled, named.join("; ")
    );
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    Ok(text)
}
