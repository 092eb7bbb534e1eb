use task_runtime::task;

#[task(idempotency_key = "order.id")]
async fn not_a_parameter(basket: u64) {}

#[task(idempotency_window = "1h")]
async fn window_without_key(order: u64) {}

#[task(idempotency_key = "order", idempotency_window = "1 day")]
async fn bad_window(order: u64) {}

#[task(idempotency_key = 42)]
async fn not_a_key(order: u64) {}

fn key_of(order: &u64) -> u64 {
    *order
}

// A key function takes a reference to each argument, in order.
#[task(idempotency_key = key_of)]
async fn wrong_arity(order: u64, note: String) {}

fn main() {}
