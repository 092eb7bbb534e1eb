//! The baseline of `cargo bench -p tests --bench function`: the body of
//! `bench-worker`'s task behind a bare `lambda_runtime` handler, as
//! `cargo lambda new` writes one. It reads the same message (the order at
//! `args.order`, the rest ignored), so both sides decode the same bytes.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[derive(serde::Deserialize)]
struct Order {
    #[allow(dead_code)]
    flavor: String,
    slices: u32,
    notes: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Args {
    order: Order,
}

#[derive(serde::Deserialize)]
struct Message {
    args: Args,
}

async fn price(event: LambdaEvent<Message>) -> Result<u64, Error> {
    let order = event.payload.args.order;
    Ok(u64::from(order.slices) * 350 + order.notes.len() as u64)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(price)).await
}
