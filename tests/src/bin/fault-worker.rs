//! The tests' worker under task-local (the fault run, failure records,
//! dispatch options): tasks that complete, fail and retry, panic, outlive
//! the timeout asleep, or block their thread past it, and tasks that tell
//! which qualifier they were invoked at. A body that runs to its end appends its call id to
//! the file `FAULT_MARKS` (one `write` of one line, with `O_APPEND`), so
//! that the run can count bodies that completed more than once.

use std::io::Write;
use std::time::Duration;

use task_runtime::aws_lambda_events::event::eventbridge::EventBridgeEvent;
use task_runtime::{TaskError, TaskResult, on_event, task};

/// Append this call's id to `FAULT_MARKS`: the body ran to its end. A mark
/// that cannot be written panics the body (kind `panic`), which the fault
/// run counts against `fault.ok`: a lost mark never passes for a body that
/// did not run.
fn mark() {
    let (Ok(path), Some(ctx)) = (std::env::var("FAULT_MARKS"), task_runtime::current()) else { return };
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap_or_else(|e| panic!("FAULT_MARKS {path}: {e}"));
    f.write_all(format!("{}\n", ctx.id).as_bytes()).unwrap_or_else(|e| panic!("FAULT_MARKS {path}: {e}"));
}

/// Completes with `n`.
#[task(name = "fault.ok")]
async fn ok(n: u64) -> u64 {
    tokio::task::yield_now().await;
    mark();
    n
}

/// Twice `n`, on the function of group `heavy` (`TASK_FUNCTIONS`): the task
/// whose function `tasks check` looks for.
#[task(name = "fault.heavy", function = "heavy")]
async fn heavy(n: u64) -> u64 {
    n * 2
}

/// A retryable error until attempt `succeed_on`, then completes.
/// Sends `n` calls of `fault.traced`: a parent for `tasks tree`.
#[task(name = "fault.fan_out")]
async fn fan_out(n: u64) -> TaskResult<Vec<String>> {
    task_runtime::lambda_runtime::tracing::info!("sending {n} children");
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(traced(i).await?.id().to_owned());
    }
    Ok(ids)
}

/// Logs one line in its task span (with the trace it runs in).
#[task(name = "fault.traced")]
async fn traced(n: u64) -> u64 {
    task_runtime::lambda_runtime::tracing::info!("traced child {n}");
    n
}

#[task(name = "fault.flaky")]
async fn flaky(succeed_on: u32) -> TaskResult<u32> {
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
    if attempt < succeed_on {
        return Err(TaskError::retry(format!("attempt {attempt}: not yet")));
    }
    mark();
    Ok(attempt)
}

/// Panics: failed, kind `panic`.
#[task(name = "fault.panic")]
async fn boom(n: u64) -> u64 {
    panic!("fault run panic {n}");
}

/// Sleeps `ms`: past the timeout, the worker records `timeout` itself.
#[task(name = "fault.slow")]
async fn slow(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    mark();
    ms
}

/// Blocks its thread `ms` (a bug, but one users write): past the timeout the
/// worker cannot record anything, and Lambda kills the process.
#[task(name = "fault.block")]
async fn block(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    mark();
    ms
}

/// The function ARN this invocation was invoked as (with its qualifier).
#[task(name = "fault.whoami")]
async fn whoami() -> Option<String> {
    task_runtime::current().and_then(|c| c.invoked_function_arn)
}

/// Sends `whoami` to this same function, as named by default, and returns its id.
#[task(name = "fault.relay")]
async fn relay() -> TaskResult<String> {
    Ok(whoami().await?.id().to_owned())
}

/// Fails for good unless the file `path` exists (a call to retry once it
/// does); marks each run (`FAULT_MARKS`).
#[task(name = "fault.until")]
async fn until(path: String) -> TaskResult<String> {
    mark();
    if std::path::Path::new(&path).exists() {
        Ok(format!("{path} is there"))
    } else {
        Err(TaskError::fail(format!("{path} is not there yet")))
    }
}

/// Append `ID WHAT TIME` (epoch µs) to `FAULT_SPANS`: when bodies started,
/// ended or tried can be read back.
fn note(what: &str) {
    let (Ok(path), Some(ctx)) = (std::env::var("FAULT_SPANS"), task_runtime::current()) else { return };
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap_or_else(|e| panic!("FAULT_SPANS {path}: {e}"));
    f.write_all(format!("{} {what} {at}\n", ctx.id).as_bytes()).unwrap_or_else(|e| panic!("FAULT_SPANS {path}: {e}"));
}

/// Holds `ms`, noting `start` and `end`: how many bodies ran at once can be read back.
#[task(name = "fault.span")]
async fn span(ms: u64) -> u64 {
    hold(ms).await
}

async fn hold(ms: u64) -> u64 {
    note("start");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    note("end");
    ms
}

/// Past Lambda's retries: a retryable error until attempt `succeed_on`
/// (of 6), each attempt noted, re-sent by the runtime 200, 400, 800, 1600,
/// 3200 ms later.
#[task(name = "fault.persist", retries = 5, retry_backoff = "200ms", retry_jitter = false)]
async fn persist(succeed_on: u32) -> TaskResult<u32> {
    note("attempt");
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
    if attempt < succeed_on {
        return Err(TaskError::retry(format!("attempt {attempt}: not yet")));
    }
    mark();
    Ok(attempt)
}

/// Retries past Lambda's with no backoff: the runtime sends them too
/// (`tasks check` must say so when it cannot).
#[task(name = "fault.stubborn", retries = 3)]
async fn stubborn() -> TaskResult<u32> {
    Err(TaskError::retry("not yet"))
}

/// At most 2 at once across every instance: holds `ms`, noting `start`,
/// `alive` every 50 ms, and `end`, so that a body killed on the way is
/// known to have ended within 50 ms of its last `alive`.
#[task(name = "fault.pair", concurrency = 2)]
async fn pair(ms: u64) -> u64 {
    note("start");
    for _ in 0..ms.div_ceil(50) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        note("alive");
    }
    note("end");
    mark();
    ms
}

/// One at a time per `key`: holds `ms`, noting `start` and `end`.
#[task(name = "fault.single", concurrency = 1, concurrency_key = "key")]
async fn single(key: String, ms: u64) -> String {
    hold(ms).await;
    key
}

/// At most 5 starts a second: notes `start`.
#[task(name = "fault.metered", rate_limit = "5/s")]
async fn metered(n: u64) -> u64 {
    note("start");
    n
}

/// The first attempt asks for the next one `ms` later (`retry_after`).
#[task(name = "fault.later")]
async fn later(ms: u64) -> TaskResult<u32> {
    note("attempt");
    let attempt = task_runtime::current().and_then(|c| c.attempt).unwrap_or(1);
    if attempt == 1 {
        return Err(TaskError::retry_after(Duration::from_millis(ms), "come back later"));
    }
    mark();
    Ok(attempt)
}

/// Sleeps `ms` under its own 200 ms limit (the function's is longer): a
/// long sleep ends as `timeout` well before the invocation's deadline.
#[task(name = "fault.bounded", timeout = "200ms", retries = 0)]
async fn bounded(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    mark();
    ms
}

/// A limit above a 1 s function's (less its margin): `tasks check` names it.
#[task(name = "fault.patient", timeout = "2s")]
async fn patient() -> u64 {
    0
}

/// A group's callback: the sum of its children's numeric values (failed
/// children, and values that are not numbers, count 0).
#[task(name = "fault.tally")]
async fn tally() -> TaskResult<u64> {
    let group = task_runtime::current().and_then(|c| c.callback_of).ok_or_else(|| TaskError::fail("not run as a group's callback"))?;
    let outcomes = task_runtime::GroupHandle::<serde_json::Value>::from_id(group).wait().await.map_err(|e| TaskError::retry(e.to_string()))?;
    mark();
    Ok(outcomes.into_iter().flatten().filter_map(|v| v.as_u64()).sum())
}

/// Its argument back: with `TASK_PAYLOAD_BUCKET`, a large one comes and
/// goes through S3.
#[task(name = "fault.echo")]
async fn echo(blob: String) -> String {
    blob
}

/// A result of `bytes` bytes (a JSON string of `r`s, less its quotes).
#[task(name = "fault.bulk")]
async fn bulk(bytes: usize) -> String {
    "r".repeat(bytes)
}

/// Fails for good with a message of `bytes` bytes.
#[task(name = "fault.loud")]
async fn loud(bytes: usize) -> TaskResult<String> {
    Err(TaskError::fail("e".repeat(bytes)))
}

/// A group's callback: the total length of its children's string values.
#[task(name = "fault.lengths")]
async fn lengths() -> TaskResult<usize> {
    let group = task_runtime::current().and_then(|c| c.callback_of).ok_or_else(|| TaskError::fail("not run as a group's callback"))?;
    let outcomes = task_runtime::GroupHandle::<String>::from_id(group).wait().await.map_err(|e| TaskError::retry(e.to_string()))?;
    outcomes.into_iter().map(|o| o.map(|s| s.len()).map_err(|f| TaskError::fail(f.to_string()))).sum()
}

/// Every minute (`cron`): what task-local's cron schedules are tested with.
#[task(name = "fault.tick", schedule = "cron(* * * * ? *)")]
async fn tick() -> String {
    "tick".into()
}

/// EventBridge events: one whose detail-type is `fail` fails (retried, then
/// dropped to the failure destination, as any event a handler cannot take).
#[on_event]
async fn bus(event: EventBridgeEvent) -> TaskResult<String> {
    match event.detail_type.as_str() {
        "fail" => Err(TaskError::retry("this event always fails")),
        other => Ok(format!("took {other:?}")),
    }
}

#[tokio::main]
async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
    task_runtime::init_tracing(); // as lambda_runtime's subscriber, without its raw-event TRACE line
    task_runtime::run_tasks().await
}

/// One call per order, however often it is sent: its id is made from
/// `order` (the tests' caller declares the same task to send it typed).
#[task(name = "fault.keyed", idempotency_key = "order")]
async fn keyed(order: String, n: u64) -> String {
    mark();
    format!("{order}:{n}")
}
