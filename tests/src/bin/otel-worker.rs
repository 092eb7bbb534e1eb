//! A worker that exports its spans over OTLP (feature `opentelemetry`):
//! `tests/tests/otel.rs` runs it under task-local with an OTLP receiver.

use task_runtime::{TaskResult, task};

/// Sends `n` calls of `otel.leaf`: a trace of a parent and its children.
#[task(name = "otel.fan_out")]
async fn fan_out(n: u64) -> TaskResult<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(leaf(i).await?.id().to_owned());
    }
    Ok(ids)
}

#[task(name = "otel.leaf")]
async fn leaf(n: u64) -> u64 {
    n
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    task_runtime::init_tracing_with_otlp()?;
    task_runtime::run_tasks().await
}
