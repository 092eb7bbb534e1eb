//! The task the dispatch and function benchmarks send and run: one
//! argument of a few fields, capture off. Included by path where it is
//! used (`tests/benches/dispatch.rs`, `src/bin/bench-worker.rs`), so that
//! each binary registers it in its own registry.

/// An order, as a caller would send one.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub(crate) struct Order {
    pub(crate) flavor: String,
    pub(crate) slices: u32,
    pub(crate) notes: Vec<String>,
}

/// The price of an order, in cents.
#[task_runtime::task(name = "bench.price", capture_response = false)]
pub(crate) async fn price(order: Order) -> u64 {
    u64::from(order.slices) * 350 + order.notes.len() as u64
}

/// The order every benchmarked call sends.
#[allow(dead_code)]
pub(crate) fn order() -> Order {
    Order { flavor: "apple".into(), slices: 8, notes: vec!["no nuts".into(), "extra crust".into()] }
}
