//! `tasks failed` and `tasks retry`: failed calls come from the table's
//! index of failed calls (one query per day, never a scan), and a retry
//! sends the task message kept with the failed call. `tasks create-table`
//! makes the table (or brings an older one up to date) that they read.

use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::store::dynamodb::{DynamoStore, FAILED_INDEX, TableProgress};
use task_runtime::{SendOptions, Status, get_async_response};

use crate::cli::{CreateTableArgs, FailedArgs, RetryArgs};
use crate::progress::Progress;
use crate::render::{table, time};
use crate::send::{announce, dispatch_problem};
use crate::setup::{config_problem, install, now_ms, store_problem};
use crate::status::{DEFAULT_WAIT, follow, print};
use crate::{Exit, Problem};

pub(crate) async fn failed(a: FailedArgs) -> Result<Exit, Problem> {
    let config = install(None)?;
    let store = crate::setup::table(&config)?;
    let since = now_ms().saturating_sub(a.since.as_millis() as u64);
    let mut calls = store.failed_since(since, usize::MAX).await.map_err(store_problem)?;
    calls.retain(|c| a.task.as_ref().is_none_or(|t| *t == c.response.task));
    calls.truncate(a.limit);
    if a.json {
        let all: Vec<Value> = calls
            .iter()
            .map(|c| {
                let mut v = crate::render::json_of(&c.id, Some(&c.response));
                v["retryable"] = json!(c.message_kept);
                v
            })
            .collect();
        println!("{}", Value::Array(all));
        return Ok(Exit::Complete);
    }
    if calls.is_empty() {
        println!("no failed calls since {}", time(since));
        return Ok(Exit::Complete);
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            let (kind, message) = c.response.error.as_ref().map_or(("-".into(), String::new()), |e| {
                (e.kind.to_string(), task_runtime::envelope::PayloadRef::in_text(&e.message).map_or_else(|| e.message.clone(), |r| r.summary()))
            });
            let message: String = if message.chars().count() > 70 { message.chars().take(69).chain(['…']).collect() } else { message };
            let retry = if c.message_kept { "yes" } else { "no" };
            vec![c.id.clone(), c.response.task.clone(), kind, c.response.attempts.to_string(), time(c.response.updated_at), retry.into(), message]
        })
        .collect();
    print!("{}", table(&["ID", "TASK", "KIND", "ATTEMPTS", "FAILED AT", "RETRY", "MESSAGE"], &rows));
    Ok(Exit::Complete)
}

pub(crate) async fn create_table(a: CreateTableArgs) -> Result<Exit, Problem> {
    let config = install(None)?;
    let store = crate::setup::table(&config)?;
    // A spinner while DynamoDB builds, a bar over the table's items while failed calls are backfilled.
    let mut shown: Option<Progress> = None;
    let mut bar_len = None;
    let mut on_progress = |p: &TableProgress| {
        let (done, message, len) = match p {
            TableProgress::Waiting { index: Some(i), waited } => (0, format!("waiting for the index {i} to be ACTIVE ({}s)", waited.as_secs()), None),
            TableProgress::Waiting { index: None, waited } => (0, format!("waiting for the table to be ACTIVE ({}s)", waited.as_secs()), None),
            TableProgress::Adding { index } => (0, format!("adding the index {index}"), None),
            TableProgress::Backfilling { scanned, backfilled, items } => {
                (*scanned, format!("backfilling failed calls into {FAILED_INDEX}: {backfilled} of {scanned} items read"), items.filter(|n| *n > 0))
            }
            _ => return,
        };
        if shown.is_none() || len != bar_len {
            if let Some(old) = shown.take() {
                old.finish();
            }
            shown = Some(len.map_or_else(Progress::spinner, Progress::bar));
            bar_len = len;
        }
        if let Some(progress) = shown.as_mut() {
            progress.update(done, message);
        }
    };
    let report = store.create_or_upgrade_table(a.timeout, &mut on_progress).await;
    if let Some(progress) = shown {
        progress.finish();
    }
    let report = report.map_err(store_problem)?;
    let table = store.table();
    match (report.created, report.added.as_slice()) {
        (true, _) => eprintln!("created the table {table}"),
        (false, []) => eprintln!("the table {table} was whole already"),
        (false, added) => eprintln!("added to the table {table} the index(es) {}", added.join(", ")),
    }
    if let Some(n) = report.backfilled {
        eprintln!("backfilled {n} failed call(s) of the older layout into {FAILED_INDEX}: `tasks failed` lists them");
    }
    eprintln!("table {table} is ready");
    Ok(Exit::Complete)
}

pub(crate) async fn retry(a: RetryArgs) -> Result<Exit, Problem> {
    let config = install(a.function.as_deref())?;
    let store = crate::setup::table(&config)?;
    let Some(id) = a.id.as_deref() else {
        return retry_failed(&a, &config, &store).await;
    };
    let new_id = match retry_call(&config, &store, id, false).await? {
        Retried::Unknown => {
            eprintln!("tasks: no call {id}: it is unknown or has expired");
            return Ok(Exit::Unknown);
        }
        Retried::Sent { task, id: new_id } | Retried::WouldSend { task, id: new_id } => {
            eprintln!("retried {id} as a new call");
            announce(&task, &new_id, false, false);
            new_id
        }
        Retried::Already { id: new_id, status } => {
            eprintln!("call {id} was retried already, as {new_id} ({status}): nothing sent (`tasks retry {new_id}` sends that one again if it failed)");
            println!("{new_id}");
            new_id
        }
    };
    if !a.wait {
        return Ok(Exit::Complete);
    }
    let calls = follow(&[new_id], a.timeout.unwrap_or(DEFAULT_WAIT)).await?;
    print(&calls, false);
    Ok(calls.first().map_or(Exit::Unknown, |(_, r)| crate::render::exit_of(r.as_ref())))
}

/// What retrying one failed call came to.
pub(crate) enum Retried {
    /// No such call.
    Unknown,
    /// Sent as the new call `id`.
    Sent { task: String, id: String },
    /// A dry run: would be sent as `id`.
    WouldSend { task: String, id: String },
    /// Retried before, as `id`, which is now `status`: nothing sent.
    Already { id: String, status: Status },
}

/// The id of the retry of call `id`: one retry per call, however many
/// times a retry is asked for, by however many commands at once (a second
/// send of an existing id sends nothing).
pub(crate) fn retry_id(id: &str) -> String {
    format!("retry:{id}")
}

/// Send failed call `id` again as `retry:ID`, from the message kept with it.
pub(crate) async fn retry_call(config: &task_runtime::Config, store: &DynamoStore, id: &str, dry_run: bool) -> Result<Retried, Problem> {
    let Some(r) = get_async_response(id).await.map_err(store_problem)? else {
        return Ok(Retried::Unknown);
    };
    if r.status != Status::Failed {
        return Err(Problem(format!("call {id} is {}: only a failed call is retried", r.status)));
    }
    retry_failed_call(config, store, id, &r.task, dry_run).await
}

/// Send call `id` of `task`, known to have failed, again as `retry:ID`.
async fn retry_failed_call(config: &task_runtime::Config, store: &DynamoStore, id: &str, task: &str, dry_run: bool) -> Result<Retried, Problem> {
    let new_id = retry_id(id);
    if let Some(existing) = get_async_response(&new_id).await.map_err(store_problem)? {
        return Ok(Retried::Already { id: new_id, status: existing.status });
    }
    let kept = store.failed_message(id).await.map_err(store_problem)?.ok_or_else(|| {
        Problem(format!(
            "the message of call {id} was not kept (over 64 KiB, or it failed under an older version): send it again with `tasks send {task} ARGS_JSON`"
        ))
    })?;
    let original: Envelope = serde_json::from_str(&kept).map_err(|e| Problem(format!("the message kept with call {id} does not decode: {e}")))?;
    if config.function.is_none() {
        return Err(config_problem(task_runtime::ConfigError::NoFunction));
    }
    if dry_run {
        return Ok(Retried::WouldSend { task: original.task, id: new_id });
    }
    let options = SendOptions::default().retries(original.retries).id(new_id.clone());
    let handle = task_runtime::send(&original.task, Value::Object(original.args.into_map()), options).await.map_err(dispatch_problem)?;
    if handle.is_existing() {
        // Another command sent it between the read above and this send.
        let status = get_async_response(&new_id).await.map_err(store_problem)?.map_or(Status::Pending, |r| r.status);
        return Ok(Retried::Already { id: new_id, status });
    }
    Ok(Retried::Sent { task: original.task, id: handle.id().to_owned() })
}

/// `tasks retry --failed`: every failed call listed, each sent again once,
/// at most one send per `a.rate`, with a bar; a line per call, then the sums.
async fn retry_failed(a: &RetryArgs, config: &task_runtime::Config, store: &DynamoStore) -> Result<Exit, Problem> {
    let since = now_ms().saturating_sub(a.since.as_millis() as u64);
    let mut calls = store.failed_since(since, usize::MAX).await.map_err(store_problem)?;
    calls.retain(|c| a.task.as_ref().is_none_or(|t| *t == c.response.task));
    calls.retain(|c| a.kind.as_ref().is_none_or(|k| c.response.error.as_ref().is_some_and(|e| e.kind.as_str() == k)));
    if calls.is_empty() {
        println!("no failed calls since {} to retry", time(since));
        return Ok(Exit::Complete);
    }
    let mut progress = Progress::bar(calls.len() as u64);
    let mut gap = tokio::time::interval(a.rate);
    gap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut rows, mut sent, mut counts) = (Vec::new(), Vec::new(), std::collections::BTreeMap::<&str, usize>::new());
    for (i, c) in calls.iter().enumerate() {
        if c.message_kept && !a.dry_run {
            gap.tick().await;
        }
        // Listed as failed: its status is not read again.
        let (what, detail) = match retry_failed_call(config, store, &c.id, &c.response.task, a.dry_run).await {
            Ok(Retried::Sent { id, .. }) => {
                sent.push(id.clone());
                ("sent", id)
            }
            Ok(Retried::WouldSend { id, .. }) => ("would send", id),
            Ok(Retried::Already { id, status }) => ("retried already", format!("{id} ({status})")),
            Ok(Retried::Unknown) => ("not sent", "it expired".to_owned()),
            Err(Problem(why)) => ("not sent", why),
        };
        *counts.entry(what).or_default() += 1;
        rows.push(vec![c.id.clone(), c.response.task.clone(), what.to_owned(), detail]);
        progress.update(i as u64 + 1, format!("{} sent, {} retried already", counts.get("sent").unwrap_or(&0), counts.get("retried already").unwrap_or(&0)));
    }
    progress.finish();
    print!("{}", table(&["ID", "TASK", "WHAT", "THE RETRY"], &rows));
    let sums: Vec<String> = counts.iter().map(|(what, n)| format!("{n} {what}")).collect();
    println!("{} failed call(s) since {}: {}", calls.len(), time(since), sums.join(", "));
    if a.wait && !sent.is_empty() {
        let ended = follow(&sent, a.timeout.unwrap_or(DEFAULT_WAIT)).await?;
        println!("{}", crate::status::summary(&ended));
        return Ok(ended.iter().map(|(_, r)| crate::render::exit_of(r.as_ref())).max().unwrap_or(Exit::Complete));
    }
    Ok(if counts.contains_key("not sent") { Exit::Failed } else { Exit::Complete })
}
