//! A caller for a deployed worker (or one under `task-local`): makes sure
//! the response table exists, dispatches tasks of `examples/worker` by name
//! with [`task_runtime::send`], and follows each to its result.
//!
//! ```sh
//! TASK_FUNCTION=worker TASK_RESPONSE_TABLE=task-responses \
//! AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:9001 AWS_ENDPOINT_URL_DYNAMODB=$DDB \
//! cargo run --example client
//! ```
//!
//! Configuration comes from the environment (see the README): without
//! `TASK_FUNCTION` the calls run on the local backend, where the worker's
//! tasks are not registered, so every call ends `unknown_task`.

use std::time::{Duration, Instant};

use serde_json::json;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{BackendKind, Config, SendOptions, Status, TaskHandle, send};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    if config.backend == BackendKind::Lambda {
        let table = config
            .response_table
            .clone()
            .ok_or("TASK_RESPONSE_TABLE is not set: this example follows tasks to their results")?;
        DynamoStore::lazy(&table).create_table().await?; // fine if it exists
        println!("table {table} ready");
    }
    config.install()?;

    let calls = [
        ("worker::word_count", json!({"text": "the quick brown fox"})),
        ("worker::flaky", json!({"succeed_on": 2})),
        ("worker::refuse", json!({"reason": "out of flour"})),
    ];
    let mut handles = Vec::new();
    for (task, args) in calls {
        let handle = send(task, args, SendOptions::default()).await?;
        println!("sent {task} as {}", handle.id());
        handles.push(handle);
    }
    for handle in &handles {
        follow(handle).await?;
    }
    Ok(())
}

/// Prints each status change of one call, then its outcome.
async fn follow(handle: &TaskHandle<serde_json::Value>) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut last = None;
    loop {
        let r = handle.response().await?;
        let status = r.as_ref().map(|r| r.status);
        if status != last {
            println!("  {} {}: {}", handle.task(), handle.id(), status.map_or("unknown".into(), |s| s.to_string()));
            last = status;
        }
        match r {
            Some(r) if r.status == Status::Complete => {
                println!("  -> {} after {} attempt(s)", r.response.unwrap_or_default(), r.attempts);
                return Ok(());
            }
            Some(r) if r.status == Status::Failed => {
                let why = r.error.map(|e| e.to_string()).unwrap_or_default(); // "[kind] message"
                println!("  -> failed after {} attempt(s): {why}", r.attempts);
                return Ok(());
            }
            _ if started.elapsed() > Duration::from_secs(120) => {
                return Err(format!("{} did not finish within 120 s", handle.id()).into());
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
