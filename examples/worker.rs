//! A deployable Lambda worker: a plain JSON handler plus tasks, one of which
//! fans out to others. Build it for Lambda with
//! `cargo lambda build --release --example worker`, or run it locally under
//! `task-local` (see the README).
//!
//! Environment: `TASK_RESPONSE_TABLE` to capture responses; the function
//! invokes itself (`AWS_LAMBDA_FUNCTION_NAME`) unless `TASK_FUNCTION` is set.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use task_runtime::lambda_runtime::{self, LambdaEvent, service_fn};
use task_runtime::aws_lambda_events::event::s3::S3Event;
use task_runtime::{TaskError, TaskResult, on_event, task};

/// Counts the words of a text.
#[task]
async fn word_count(text: String) -> usize {
    text.split_whitespace().count()
}

/// Fan-out: dispatches one `word_count` per text and returns their ids.
#[task]
async fn count_all(texts: Vec<String>) -> TaskResult<Vec<String>> {
    let mut ids = Vec::with_capacity(texts.len());
    for text in texts {
        // A DispatchError is retryable: `?` hands it to Lambda's retry.
        ids.push(word_count(text).await?.id().to_owned());
    }
    Ok(ids)
}

/// Counts the words of a file: fails for good when it cannot be read (a
/// call to send again, `tasks retry ID`, once the file is there).
#[task]
fn count_file(path: String) -> TaskResult<usize> {
    let text = std::fs::read_to_string(&path).map_err(|e| TaskError::fail(format!("cannot read {path}: {e}")))?;
    Ok(text.split_whitespace().count())
}

/// Fails with a retryable error until attempt `succeed_on`, then returns the attempt.
#[task]
async fn flaky(succeed_on: u32) -> TaskResult<u32> {
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
    if attempt < succeed_on {
        return Err(TaskError::retry(format!("attempt {attempt} of {succeed_on}: not yet")));
    }
    Ok(attempt)
}

/// Every hour: the word count of its title (a stand-in for an hourly
/// report). Each run is a normal call, `schedule:worker::hourly_report:…`;
/// `task_runtime::latest_run("worker::hourly_report")` finds the latest.
#[task(schedule = "rate(1 hour)", schedule_args = ("the hourly report".to_string(),))]
async fn hourly_report(title: String) -> usize {
    title.split_whitespace().count()
}

// Ping every five minutes, keeping two instances warm.
task_runtime::keep_warm!(every = "rate(5 minutes)", instances = 2);

/// Fails permanently.
#[task]
fn refuse(reason: String) -> Result<(), TaskError> {
    Err(TaskError::fail(reason))
}

/// Sleeps, then returns how long it slept.
#[task]
async fn nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// Panics: recorded as `failed` with kind `panic`; Lambda is not asked to retry.
#[task]
async fn explode(what: String) -> u32 {
    panic!("{what} exploded");
}

/// Kills its own process on the first attempt (a crash); completes on a retry.
#[task]
fn crash_once(value: u32) -> u32 {
    if task_runtime::current().and_then(|c| c.attempt) == Some(1) {
        std::process::abort();
    }
    value
}

/// S3 uploads: one `word_count` per object, of its key (a stand-in for
/// reading the object); returns the calls' ids.
#[on_event]
async fn uploaded(event: S3Event) -> TaskResult<Vec<String>> {
    let mut ids = Vec::with_capacity(event.records.len());
    for record in event.records {
        // S3 sends keys URL-encoded: `red flower.txt` arrives as `red+flower.txt`.
        let key = task_runtime::decode_s3_key(&record.s3.object.key.unwrap_or_default()).replace(['/', '-', '_', '.'], " ");
        ids.push(word_count(key).await?.id().to_owned());
    }
    Ok(ids)
}

#[derive(Deserialize)]
struct Hello {
    name: String,
    /// Sleep this long first (to see a function time out).
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
}

/// The function's ordinary handler, for every event that is not a task.
async fn hello(event: LambdaEvent<Hello>) -> Result<Greeting, lambda_runtime::Error> {
    tokio::time::sleep(Duration::from_millis(event.payload.sleep_ms)).await;
    Ok(Greeting { greeting: format!("hello, {}", event.payload.name) })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    task_runtime::init_tracing(); // as lambda_runtime's subscriber, without its raw-event TRACE line
    task_runtime::run(service_fn(hello)).await
}
