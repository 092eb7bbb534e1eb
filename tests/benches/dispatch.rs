//! What a `#[task]` call costs the caller, against the AWS SDK call under
//! it: a `#[task]` dispatch with capture off, against a raw
//! `aws_sdk_lambda` `Invoke(Event)` of the same payload, through one
//! client, to a loopback endpoint that answers 202 at once. At 1 and at 32
//! calls in flight; rounds of each interleaved (their order alternating),
//! and the median of the rounds' per-call times compared, with the spread
//! of the per-round ratios. No figure is asserted anywhere.
//!
//! `cargo bench -p tests --bench dispatch` (`DISPATCH_ROUNDS`, default 9;
//! `DISPATCH_CALLS`, calls a round, default 4,000; under `cargo test`, a
//! smoke run of 2 rounds of 100). `DISPATCH_PROFILE=task` (or `raw`) runs
//! only that side, 32 in flight, for a profiler:
//! `perf record -F 2000 -g target/release/deps/dispatch-* --bench`.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::StreamExt;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::envelope::Envelope;
use task_runtime::{Config, task};

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Order {
    flavor: String,
    slices: u32,
    notes: Vec<String>,
}

#[task(name = "bench.price", capture_response = false)]
async fn price(order: Order) -> u64 {
    u64::from(order.slices) * 350 + order.notes.len() as u64
}

fn order() -> Order {
    Order { flavor: "apple".into(), slices: 8, notes: vec!["no nuts".into(), "extra crust".into()] }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A loopback endpoint that answers every request 202, as Lambda answers an
/// `Event` invoke, and reads nothing it does not need.
async fn accepting_endpoint() -> String {
    let app = axum::Router::new().fallback(|| async { (http::StatusCode::ACCEPTED, "") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    endpoint
}

fn client(endpoint: &str) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("bench", "bench", None, None, "bench"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// `calls` calls of `one`, `in_flight` at a time: the time per call.
async fn per_call<F, Fut>(calls: u32, in_flight: usize, one: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    futures::stream::iter(0..calls).map(|_| one()).buffer_unordered(in_flight).collect::<Vec<()>>().await;
    started.elapsed() / calls
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // `cargo test --all-targets` runs this too, without `--bench`: a smaller smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if benching { (env_u32("DISPATCH_ROUNDS", 9), env_u32("DISPATCH_CALLS", 4_000)) } else { (2, 100) };
    let endpoint = rt.block_on(accepting_endpoint());
    let lambda = client(&endpoint);
    Config::lambda("bench", None).with_invoker(LambdaInvoker::with_client(lambda.clone())).install().expect("install");
    // The raw call sends what a `#[task]` call sends: the same envelope's bytes.
    let args = serde_json::json!({"order": order()}).as_object().cloned().unwrap_or_default();
    let payload = Envelope::new(price::NAME, args, false, 2).to_payload().expect("small");
    let raw = || {
        let (lambda, payload) = (lambda.clone(), payload.clone());
        async move {
            let sent = lambda.invoke().function_name("bench").invocation_type(InvocationType::Event).payload(Blob::new(payload)).send().await;
            assert_eq!(sent.expect("invoke").status_code(), 202);
        }
    };
    let ours = || async {
        price(order()).await.expect("dispatch");
    };
    if let Ok(side) = std::env::var("DISPATCH_PROFILE") {
        let started = Instant::now();
        let per = rt.block_on(async {
            match side.as_str() {
                "raw" => per_call(calls * 5, 32, raw).await,
                _ => per_call(calls * 5, 32, ours).await,
            }
        });
        println!("future sizes: #[task] call {} bytes, raw invoke {} bytes", std::mem::size_of_val(&price(order())), std::mem::size_of_val(&lambda.invoke().function_name("bench").invocation_type(InvocationType::Event).payload(Blob::new(payload.clone())).send()));
        println!("{side} only: {} calls, {per:?} a call, {:?} in all", calls * 5, started.elapsed());
        return;
    }
    // Warm both paths (connections, lazily built clients).
    rt.block_on(async {
        per_call(calls.min(500), 32, raw).await;
        per_call(calls.min(500), 32, ours).await;
    });
    println!("dispatch, capture off: {rounds} rounds of {calls} calls each, raw first and task first in turn");
    for in_flight in [1usize, 32] {
        let (mut raw_ns, mut ours_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (r, o) = rt.block_on(async {
                if round % 2 == 0 {
                    let r = per_call(calls, in_flight, raw).await;
                    (r, per_call(calls, in_flight, ours).await)
                } else {
                    let o = per_call(calls, in_flight, ours).await;
                    (per_call(calls, in_flight, raw).await, o)
                }
            });
            let (r, o) = (r.as_secs_f64() * 1e9, o.as_secs_f64() * 1e9);
            raw_ns.push(r);
            ours_ns.push(o);
            ratios.push(o / r);
        }
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!(
            "{in_flight:>2} in flight: raw Invoke(Event) {:>7.0} ns/call   #[task] {:>7.0} ns/call   ratio of medians {:.3}x   per-round ratios {lo:.3}x..{hi:.3}x",
            median(raw_ns.clone()),
            median(ours_ns.clone()),
            median(ours_ns) / median(raw_ns)
        );
    }
}
