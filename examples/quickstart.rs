//! Four typed tasks on the embedded local backend: no AWS, no Java, no network.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! One task succeeds, one fails twice with a retryable error and then
//! succeeds, one fails permanently, and one panics. The program prints each
//! dispatch, each status change it polls, and the final outcome of each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use task_runtime::{Status, TaskError, TaskResult, get_async_response, task};

#[derive(Debug, Serialize, Deserialize)]
struct Pie {
    flavor: String,
    slices: u32,
}

/// Succeeds at once.
#[task]
async fn make_pie(flavor: String, slices: u32) -> TaskResult<Pie> {
    Ok(Pie { flavor, slices })
}

static OVEN_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice with a retryable error, then succeeds on attempt 3.
#[task]
async fn bake(flavor: String) -> TaskResult<String> {
    let call = OVEN_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if call < 3 {
        // `?` on any std::error::Error is retryable too; this says it outright.
        return Err(TaskError::retry(format!("the oven is still heating (call {call})")));
    }
    Ok(format!("a golden {flavor} pie"))
}

/// Fails permanently: no retry can fix this.
#[task]
fn slice(slices: u32) -> Result<u32, TaskError> {
    if slices == 0 {
        return Err(TaskError::fail("cannot cut a pie into 0 slices"));
    }
    Ok(360 / slices)
}

/// Panics: recorded as `failed` with kind `panic`, and not retried.
#[task]
async fn drop_pie(flavor: String) -> String {
    panic!("dropped the {flavor} pie on the floor");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Quiet the default panic message: the panic is recorded and printed below.
    std::panic::set_hook(Box::new(|_| {}));
    task_runtime::Config::from_env()?.with_local_retry_delay(Duration::from_millis(150)).install()?;

    let mut ids = Vec::new();
    let h = make_pie("apple".into(), 8).await?;
    println!("dispatched make_pie(\"apple\", 8)  -> id {}", h.id());
    ids.push(("make_pie", h.id().to_owned()));
    let h = bake("cherry".into()).await?;
    println!("dispatched bake(\"cherry\")        -> id {}", h.id());
    ids.push(("bake", h.id().to_owned()));
    let h = slice(0).await?;
    println!("dispatched slice(0)               -> id {}", h.id());
    ids.push(("slice", h.id().to_owned()));
    let h = drop_pie("plum".into()).await?;
    println!("dispatched drop_pie(\"plum\")      -> id {}", h.id());
    ids.push(("drop_pie", h.id().to_owned()));
    println!("(every call returned at once; the bodies run on the local backend)\n");

    let mut seen: HashMap<&str, (Status, u32)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all_done = true;
        for (name, id) in &ids {
            let Some(r) = get_async_response(id).await? else { continue };
            let now = (r.status, r.attempts);
            if seen.get(name) != Some(&now) {
                println!("poll {name:<9} {:<9} attempts={}", r.status.to_string(), r.attempts);
                seen.insert(name, now);
            }
            all_done &= r.status.is_finished();
        }
        if all_done || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    println!("\nfinal:");
    for (name, id) in &ids {
        let r = get_async_response(id).await?.ok_or("response vanished")?;
        let outcome = match (&r.response, &r.error) {
            (Some(v), _) => format!("response = {v}"),
            (None, Some(e)) => format!("error = {e}"),
            _ => String::new(),
        };
        println!("  {name:<9} {:<9} attempts={}  {outcome}", r.status.to_string(), r.attempts);
    }
    task_runtime::wait_for_local_tasks().await;
    Ok(())
}
