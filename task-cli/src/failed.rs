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
            let (kind, message) = c.response.error.as_ref().map_or(("-".into(), String::new()), |e| (e.kind.to_string(), e.message.clone()));
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
    let Some((task, id)) = retry_call(&config, &store, &a.id).await? else {
        eprintln!("tasks: no call {}: it is unknown or has expired", a.id);
        return Ok(Exit::Unknown);
    };
    eprintln!("retried {} as a new call", a.id);
    announce(&task, &id, false, false);
    if !a.wait {
        return Ok(Exit::Complete);
    }
    let calls = follow(&[id], a.timeout.unwrap_or(DEFAULT_WAIT)).await?;
    print(&calls, false);
    Ok(calls.first().map_or(Exit::Unknown, |(_, r)| crate::render::exit_of(r.as_ref())))
}

/// Send failed call `id` again, from the message kept with it: its task
/// and the new call's id, or `None` when no call `id` exists.
pub(crate) async fn retry_call(config: &task_runtime::Config, store: &DynamoStore, id: &str) -> Result<Option<(String, String)>, Problem> {
    let Some(r) = get_async_response(id).await.map_err(store_problem)? else {
        return Ok(None);
    };
    if r.status != Status::Failed {
        return Err(Problem(format!("call {id} is {}: only a failed call is retried", r.status)));
    }
    let kept = store.failed_message(id).await.map_err(store_problem)?.ok_or_else(|| {
        Problem(format!(
            "the message of call {id} was not kept (over 64 KiB, or it failed under an older version): send it again with `tasks send {} ARGS_JSON`",
            r.task
        ))
    })?;
    let original: Envelope = serde_json::from_str(&kept).map_err(|e| Problem(format!("the message kept with call {id} does not decode: {e}")))?;
    if config.function.is_none() {
        return Err(config_problem(task_runtime::ConfigError::NoFunction));
    }
    let options = SendOptions::default().retries(original.retries);
    let handle = task_runtime::send(&original.task, Value::Object(original.args), options).await.map_err(dispatch_problem)?;
    Ok(Some((original.task, handle.id().to_owned())))
}
