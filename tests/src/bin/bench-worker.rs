//! The `#[task]` side of `cargo bench -p tests --bench function`: one task,
//! capture off, served by `run_tasks` as a deployed worker is. Its twin,
//! `bench-bare`, is the same body behind a bare `lambda_runtime` handler.

use task_runtime::task;

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    flavor: String,
    slices: u32,
    notes: Vec<String>,
}

/// The price of an order, in cents.
#[task(name = "bench.price", capture_response = false)]
async fn price(order: Order) -> u64 {
    u64::from(order.slices) * 350 + order.notes.len() as u64
}

#[tokio::main]
async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
    task_runtime::init_tracing();
    task_runtime::run_tasks().await
}
