//! The `#[task]` side of `cargo bench -p tests --bench function`: one task,
//! capture off, served by `run_tasks` as a deployed worker is. Its twin,
//! `bench-bare`, is the same body behind a bare `lambda_runtime` handler.

#[path = "../bench_price.rs"]
mod bench_price;

#[tokio::main]
async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
    task_runtime::init_tracing();
    task_runtime::run_tasks().await
}
