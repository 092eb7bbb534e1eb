//! `tasks failed` and `tasks retry`: failed calls come from the table's
//! index of failed calls (one query per day, never a scan), and a retry
//! sends the task message kept with the failed call.

use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{SendOptions, Status, get_async_response};

use crate::cli::{FailedArgs, RetryArgs};
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

pub(crate) async fn create_table() -> Result<Exit, Problem> {
    let config = install(None)?;
    let store = crate::setup::table(&config)?;
    store.create_table().await.map_err(store_problem)?;
    eprintln!("table {} is ready", store.table());
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
