//! The ids a caller chooses, and those idempotency keys make: checked, and
//! claimed in the store before anything is sent, so that sends of one id
//! make one call; and what a later send of the id is told (a handle to the
//! call that holds it, or [`DispatchError::IdTaken`]).


use super::Target;
use crate::error::DispatchError;
use crate::idempotency::{DEFAULT_WINDOW_MS, ID_PREFIX, id_for};
use crate::store::{Holder, IdClaim, undeliverable_at};

/// The longest caller-chosen id (DynamoDB allows 2048 bytes in a key).
const MAX_ID_BYTES: usize = 512;

/// An id chosen for a call, and how the store is to claim it.
#[derive(Debug)]
pub(super) struct Chosen {
    pub(super) id: String,
    pub(super) claim: IdClaim,
}

/// The id of a call that has one, before anything is written: the caller's
/// own ([`SendOptions::id`](super::SendOptions::id), its task and arguments'
/// digest kept to compare), a group's child or callback (made by the
/// group), or the one its idempotency key makes (kept until the key's
/// window is over). `None`: the call gets a fresh id.
///
/// Boxed: it lives across the sends' awaits, and most calls have none.
pub(super) fn choose(rt: &crate::runtime::Runtime, t: &Target<'_>, args: &crate::envelope::Args, now_ms: u64) -> Result<Option<Box<Chosen>>, DispatchError> {
    if let Some(id) = t.id {
        if t.group.is_some() || t.callback_of.is_some() {
            return Ok(Some(Box::new(Chosen { id: id.to_owned(), claim: IdClaim::default() })));
        }
        check_id(t.name, id)?;
        let claim = IdClaim { args_digest: Some(crate::envelope::args_digest(t.name, args)), free_after_ms: None };
        return Ok(Some(Box::new(Chosen { id: id.to_owned(), claim })));
    }
    let bad = |problem: String| DispatchError::BadIdempotencyKey { task: t.name.to_owned(), problem };
    let key = match (t.options.idempotency_key.as_deref(), t.idempotency) {
        (Some(key), _) => key.to_owned(),
        (None, Some(spec)) => spec.key_of(args).map_err(bad)?,
        (None, None) => return Ok(None),
    };
    if !t.capture || rt.store().is_none() {
        return Err(bad("needs a response store (set TASK_RESPONSE_TABLE) and capture_response on: the key's call is recorded there".into()));
    }
    let window_ms = t.options.idempotency_window.map(|w| w.as_millis() as u64).or(t.idempotency.map(|i| i.window_ms)).unwrap_or(DEFAULT_WINDOW_MS);
    let kept_ms = rt.config.response_ttl.as_millis() as u64;
    if window_ms > kept_ms {
        return Err(bad(format!(
            "window of {} s is longer than the response TTL of {} s (TASK_RESPONSE_TTL_SECS): the call's item, which keeps the key, would be gone before the window ends",
            window_ms / 1000,
            kept_ms / 1000
        )));
    }
    // Never free before the first call can no longer be delivered: a late
    // delivery of its message would otherwise run as the new call.
    let undeliverable = undeliverable_at(now_ms, t.run_at_ms, rt.config.event_life.as_millis() as u64);
    let free_after_ms = now_ms.saturating_add(window_ms).max(undeliverable);
    Ok(Some(Box::new(Chosen { id: id_for(t.name, &key), claim: IdClaim { args_digest: None, free_after_ms: Some(free_after_ms) } })))
}

/// What a send of `chosen`'s id is told when `holder` holds it: `Ok` when
/// it is the same call (a key's, or the same task with the same arguments;
/// a holder with no digest kept is taken as the same), else what differs.
pub(super) fn same_call(task: &str, chosen: &Chosen, holder: &Holder) -> Result<(), DispatchError> {
    let taken = |holder: String| DispatchError::IdTaken { task: task.to_owned(), id: chosen.id.clone(), holder };
    if holder.task != task {
        return Err(taken(format!("a call of task `{}` ({})", holder.task, holder.status)));
    }
    match (&chosen.claim.args_digest, &holder.args_digest) {
        (Some(ours), Some(theirs)) if ours != theirs => Err(taken(format!("a call of this task with other arguments ({})", holder.status))),
        _ => Ok(()),
    }
}

/// A caller-chosen id: not empty, at most 512 bytes, no control characters,
/// not one of the runtime's own (`latest:…`, `schedule:…`, `group:…`,
/// `idem:…`).
pub(crate) fn check_id(task: &str, id: &str) -> Result<(), DispatchError> {
    let problem = if id.is_empty() {
        "is empty"
    } else if id.len() > MAX_ID_BYTES {
        "is longer than 512 bytes"
    } else if id.chars().any(char::is_control) {
        "holds a control character"
    } else if ["latest:", "schedule:", "group:", ID_PREFIX].iter().any(|p| id.starts_with(p)) {
        // The runtime's own ids: the latest run of a schedule, its runs, groups' records, idempotency keys' calls.
        "starts with `latest:`, `schedule:`, `group:` or `idem:`, which the runtime keeps for schedules, groups and idempotency keys"
    } else if crate::envelope::is_dated(id) {
        // A dated id with no item reads as a call not yet begun (envelope/id.rs).
        "is a version-8 UUID, which the runtime keeps for the ids of calls sent with no pending item"
    } else {
        return Ok(());
    };
    Err(DispatchError::BadId { task: task.to_owned(), id: id.to_owned(), problem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Status;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("t", "order-7").is_ok());
        let dated = crate::envelope::new_dated_id(1_796_000_000_000);
        for bad in ["", "a\nb", &"x".repeat(513), "latest:reports", "schedule:reports:2026-11-30T00:00:00Z", "group:g", "idem:t:0f", &dated] {
            assert!(matches!(check_id("t", bad), Err(DispatchError::BadId { .. })), "{bad:?}");
        }
    }

    #[test]
    fn a_held_id_is_the_same_call_only_with_the_same_task_and_arguments() {
        let chosen = |digest: Option<&str>| Chosen { id: "order-7".into(), claim: IdClaim { args_digest: digest.map(str::to_owned), free_after_ms: None } };
        let holder = |task: &str, digest: Option<&str>| Holder { task: task.into(), args_digest: digest.map(str::to_owned), status: Status::Complete, created_at_ms: 1 };
        assert!(same_call("charge", &chosen(Some("a")), &holder("charge", Some("a"))).is_ok());
        // Kept before digests were (or a key's call, whose arguments are not compared).
        assert!(same_call("charge", &chosen(Some("a")), &holder("charge", None)).is_ok());
        assert!(same_call("charge", &chosen(None), &holder("charge", Some("b"))).is_ok());
        let other = same_call("charge", &chosen(Some("a")), &holder("charge", Some("b"))).expect_err("refused").to_string();
        assert!(other.contains(r#"the id "order-7" is held by a call of this task with other arguments (complete)"#), "{other}");
        let task = same_call("charge", &chosen(Some("a")), &holder("refund", Some("a"))).expect_err("refused").to_string();
        assert!(task.contains("held by a call of task `refund` (complete)"), "{task}");
    }
}
