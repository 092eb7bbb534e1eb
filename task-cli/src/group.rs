//! Groups in `tasks status` and `tasks wait`: an id that names no call but
//! a group shows how many of its children have ended, how many failed, and
//! its callback.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_runtime::{GroupStatus, Status, group_status};

use crate::progress::Progress;
use crate::setup::store_problem;
use crate::{Exit, Problem};

/// The group `id`, when there is one.
pub(crate) async fn read(id: &str) -> Result<Option<GroupStatus>, Problem> {
    group_status(id).await.map_err(store_problem)
}

/// What a group's state means for the exit code: complete when every child
/// and the callback completed; failed when any did not; unfinished until then.
pub(crate) fn exit_of(g: &GroupStatus) -> Exit {
    let callback_open = g.callback.is_some() && !g.callback_status.is_some_and(Status::is_finished);
    if !g.all_ended() || callback_open {
        Exit::Unfinished
    } else if g.complete < g.total || g.callback_status.is_some_and(|s| s != Status::Complete) {
        Exit::Failed
    } else {
        Exit::Complete
    }
}

/// `12 of 20 ended (1 failed, 0 cancelled)`.
fn progress_line(g: &GroupStatus) -> String {
    format!("{} of {} ended ({} complete, {} failed, {} cancelled)", g.ended, g.total, g.complete, g.failed, g.cancelled)
}

/// A group as text, like a call's block.
pub(crate) fn text_of(g: &GroupStatus) -> String {
    let mut out = format!("id        {}\ngroup     {}\n", g.id, progress_line(g));
    match (&g.callback, g.callback_status) {
        (Some(id), Some(status)) => out.push_str(&format!("callback  {id} {status}\n")),
        (Some(id), None) => out.push_str(&format!("callback  {id} not sent yet (sent when every child has ended)\n")),
        (None, _) => {}
    }
    out.push_str(&format!("children  {}.0 to {}.{}\n", g.id, g.id, g.total.saturating_sub(1)));
    out
}

/// A group as JSON.
pub(crate) fn json_of(g: &GroupStatus) -> Value {
    json!({
        "id": g.id, "found": true, "kind": "group", "total": g.total, "ended": g.ended, "complete": g.complete,
        "failed": g.failed, "cancelled": g.cancelled, "callback": g.callback, "callback_status": g.callback_status,
    })
}

/// Poll group `id` until every child and its callback have ended, or
/// `limit` passed, with one bar over its children.
pub(crate) async fn follow(first: GroupStatus, limit: Duration) -> Result<GroupStatus, Problem> {
    let started = Instant::now();
    let mut progress = Progress::bar(u64::from(first.total));
    let mut g = first;
    let mut interval = Duration::from_millis(200);
    loop {
        let mut line = progress_line(&g);
        if let (Some(_), true) = (&g.callback, g.all_ended()) {
            line.push_str(&format!("; callback {}", g.callback_status.map_or("not sent yet".into(), |s| s.to_string())));
        }
        progress.update(u64::from(g.ended), line);
        if exit_of(&g) != Exit::Unfinished || started.elapsed() >= limit {
            progress.finish();
            return Ok(g);
        }
        tokio::time::sleep(interval.min(limit.saturating_sub(started.elapsed()))).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(2));
        match read(&g.id).await? {
            Some(now) => g = now,
            None => return Err(Problem(format!("group {} expired while waiting", g.id))),
        }
    }
}
