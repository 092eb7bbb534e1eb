//! `tasks status` and `tasks wait`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use task_runtime::{AsyncResponse, get_async_response};

use crate::cli::{StatusArgs, WaitArgs};
use crate::group;
use crate::progress::Progress;
use crate::render::{exit_of, json_of, text_of};
use crate::setup::{install, store_problem};
use crate::{Exit, Problem};

/// How long `wait` waits unless told.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(15 * 60);

async fn read(id: &str) -> Result<Option<AsyncResponse>, Problem> {
    get_async_response(id).await.map_err(store_problem)
}

pub(crate) async fn status(a: StatusArgs) -> Result<Exit, Problem> {
    install(None)?;
    let (mut calls, mut groups) = (Vec::new(), Vec::new());
    for id in &a.ids {
        match read(id).await? {
            None if let Some(g) = group::read(id).await? => groups.push(g),
            r => calls.push((id.clone(), r)),
        }
    }
    print_all(&calls, &groups, a.json);
    Ok(exit_all(&calls, &groups))
}

/// The exit code of calls and groups together: the worst of them.
fn exit_all(calls: &[(String, Option<AsyncResponse>)], groups: &[task_runtime::GroupStatus]) -> Exit {
    let calls = calls.iter().map(|(_, r)| exit_of(r.as_ref()));
    calls.chain(groups.iter().map(group::exit_of)).max().unwrap_or(Exit::Complete)
}

/// Print calls, then groups.
fn print_all(calls: &[(String, Option<AsyncResponse>)], groups: &[task_runtime::GroupStatus], json: bool) {
    if groups.is_empty() {
        return print(calls, json);
    }
    if json {
        let all: Vec<_> = calls.iter().map(|(id, r)| json_of(id, r.as_ref())).chain(groups.iter().map(group::json_of)).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        let blocks: Vec<_> = calls.iter().map(|(id, r)| text_of(id, r.as_ref())).chain(groups.iter().map(group::text_of)).collect();
        print!("{}", blocks.join("\n"));
    }
}

/// Print calls: a JSON array, or text blocks.
pub(crate) fn print(calls: &[(String, Option<AsyncResponse>)], json: bool) {
    if json {
        let all: Vec<_> = calls.iter().map(|(id, r)| json_of(id, r.as_ref())).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        let blocks: Vec<_> = calls.iter().map(|(id, r)| text_of(id, r.as_ref())).collect();
        print!("{}", blocks.join("\n"));
    }
}

pub(crate) async fn wait(a: WaitArgs) -> Result<Exit, Problem> {
    install(None)?;
    let limit = a.timeout.unwrap_or(DEFAULT_WAIT);
    let started = Instant::now();
    // An id that names no call but a group is followed as a group, with one bar.
    let (mut ids, mut groups) = (Vec::new(), Vec::new());
    for id in &a.ids {
        match read(id).await? {
            None if let Some(g) = group::read(id).await? => groups.push(group::follow(g, limit.saturating_sub(started.elapsed())).await?),
            _ => ids.push(id.clone()),
        }
    }
    let calls = if ids.is_empty() { Vec::new() } else { follow(&ids, limit.saturating_sub(started.elapsed())).await? };
    print_all(&calls, &groups, a.json);
    if !a.json && !calls.is_empty() {
        println!("\n{}", summary(&calls));
    }
    Ok(exit_all(&calls, &groups))
}

/// Poll `ids` (backing off from 200 ms to 2 s) until each has ended or is
/// unknown, or `limit` passed; show progress meanwhile. Returns the last read of each.
pub(crate) async fn follow(ids: &[String], limit: Duration) -> Result<Vec<(String, Option<AsyncResponse>)>, Problem> {
    let started = Instant::now();
    let mut progress = if ids.len() == 1 { Progress::spinner() } else { Progress::bar(ids.len() as u64) };
    let mut last: BTreeMap<&str, Option<AsyncResponse>> = BTreeMap::new();
    let mut interval = Duration::from_millis(200);
    loop {
        for id in ids {
            let settled = last.get(id.as_str()).is_some_and(|r| exit_of(r.as_ref()) != Exit::Unfinished);
            if !settled {
                last.insert(id, read(id).await?);
            }
        }
        let calls: Vec<(String, Option<AsyncResponse>)> = ids.iter().map(|id| (id.clone(), last.get(id.as_str()).cloned().flatten())).collect();
        let done = calls.iter().filter(|(_, r)| exit_of(r.as_ref()) != Exit::Unfinished).count();
        let message = match calls.as_slice() {
            [(id, Some(r))] => format!("{id}: {} (attempt {})", r.status, r.attempts),
            _ => summary(&calls),
        };
        progress.update(done as u64, message);
        if done == calls.len() || started.elapsed() >= limit {
            progress.finish();
            return Ok(calls);
        }
        tokio::time::sleep(interval.min(limit.saturating_sub(started.elapsed()))).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(2));
    }
}

/// `3 complete, 1 failed, 2 not finished`: the counts that are not zero.
pub(crate) fn summary(calls: &[(String, Option<AsyncResponse>)]) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (_, r) in calls {
        let what = match (exit_of(r.as_ref()), r.as_ref().map(|r| r.status)) {
            (Exit::Complete, _) => "1 complete",
            (Exit::Failed, Some(task_runtime::Status::Cancelled)) => "3 cancelled",
            (Exit::Failed, _) => "2 failed",
            (Exit::Unfinished, _) => "4 not finished",
            (Exit::Unknown | Exit::Inconsistent, _) => "5 unknown",
        };
        *counts.entry(what).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {}", &k[2..])).collect();
    parts.join(", ")
}
