//! What a `#[task]` call costs the caller, against the AWS SDK call under
//! it: a `#[task]` dispatch with capture off, against a raw
//! `aws_sdk_lambda` `Invoke(Event)` of the same payload, through one
//! client, to a loopback endpoint that answers 202 at once (this binary
//! again, in a process of its own, so that its work is not counted). At 1
//! and at 32 calls in flight; rounds of each interleaved (their order
//! alternating), and the medians of the rounds compared, with the spread of
//! the per-round ratios: wall time per call, and the CPU time this process
//! spent per call (every thread's, from `/proc/self/task/*/schedstat`),
//! which is what Lambda bills a caller for and which other processes on
//! the machine disturb far less. No figure is asserted anywhere.
//!
//! `cargo bench -p tests --bench dispatch` (`DISPATCH_ROUNDS`, default 9;
//! `DISPATCH_CALLS`, calls a round, default 4,000; under `cargo test`, a
//! smoke run of 2 rounds of 100). `DISPATCH_PROFILE=SIDE` runs one side
//! alone, 32 in flight, for a profiler: `task`, `raw`, `invoker` (the
//! runtime's `LambdaInvoker` sending the same bytes) or `encode` (a raw
//! invoke of a message encoded afresh each call), e.g.
//! `DISPATCH_PROFILE=task perf record -F 2999 -g target/release/deps/dispatch-HASH --bench`.
//! Besides the raw invoke of ready bytes, a third side encodes the same
//! arguments into the same envelope afresh for each raw invoke, as any
//! caller of these arguments must: the CPU ratio against it is what the
//! runtime adds beyond encoding the call.
//! `DISPATCH_AA=1` makes the `#[task]` side a raw invoke as well: an A/A
//! run, whose ratios show the bench's own bias and noise;
//! `DISPATCH_AA_SPIN_NS=N` adds N ns of busy work before each of its calls.

use std::io::{BufRead, Write};
use std::time::Instant;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::StreamExt;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::envelope::Envelope;
use task_runtime::Config;

#[path = "../src/bench_price.rs"]
mod bench_price;

use bench_price::{order, price};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Set in the endpoint's process: serve, print the address, and stop at
/// the end of standard input.
const SERVE_VAR: &str = "DISPATCH_BENCH_SERVE";

/// Serve the endpoint: every request is answered 202, as Lambda answers an
/// `Event` invoke, and nothing is read that need not be.
fn serve() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let app = axum::Router::new().fallback(|| async { (http::StatusCode::ACCEPTED, "") });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        println!("http://{}", listener.local_addr().expect("addr"));
        std::io::stdout().flush().expect("stdout");
        tokio::spawn(async move { axum::serve(listener, app).await });
        // The bench ends (or dies): its end of the pipe closes.
        tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().for_each(drop)).await.expect("stdin");
    });
}

/// The endpoint's process and its address; it stops when the child is dropped.
fn accepting_endpoint() -> (std::process::Child, String) {
    let mut child = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(SERVE_VAR, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the endpoint");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the endpoint's address");
    (child, line.trim().to_owned())
}

/// The CPU time every thread of this process has run, in ns.
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// One raw `Invoke(Event)` of `payload` to the bench's function; 202 or it panics.
async fn invoke_raw(lambda: &aws_sdk_lambda::Client, payload: Vec<u8>) {
    let sent = lambda.invoke().function_name("bench").invocation_type(InvocationType::Event).payload(Blob::new(payload)).send().await;
    assert_eq!(sent.expect("invoke").status_code(), 202);
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

/// `calls` calls of `one`, `in_flight` at a time: the wall time and this
/// process's CPU time per call, in ns.
async fn per_call<F, Fut>(calls: u32, in_flight: usize, one: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (started, cpu) = (Instant::now(), cpu_ns());
    futures::stream::iter(0..calls).map(|_| one()).buffer_unordered(in_flight).collect::<Vec<()>>().await;
    let wall = started.elapsed().as_secs_f64() * 1e9;
    (wall / f64::from(calls), (cpu_ns() - cpu) as f64 / f64::from(calls))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn spread(xs: &[f64]) -> (f64, f64) {
    xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

fn main() {
    if std::env::var_os(SERVE_VAR).is_some() {
        return serve();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // `cargo test --all-targets` runs this too, without `--bench`: a smaller smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if benching { (env_u32("DISPATCH_ROUNDS", 9), env_u32("DISPATCH_CALLS", 4_000)) } else { (2, 100) };
    let (_endpoint, endpoint) = accepting_endpoint();
    let lambda = client(&endpoint);
    Config::lambda("bench", None).with_invoker(LambdaInvoker::with_client(lambda.clone())).install().expect("install");
    // The raw call sends what a `#[task]` call sends: the same envelope's bytes.
    let args = serde_json::json!({"order": order()}).as_object().cloned().unwrap_or_default();
    let payload = Envelope::new(price::NAME, args, false, 2).to_payload().expect("small");
    let raw = || invoke_raw(&lambda, payload.clone());
    // DISPATCH_AA=1: the second side sends raw too, so that the bench's own
    // bias shows (an A/A test: its ratios should be 1).
    let aa = std::env::var_os("DISPATCH_AA").is_some();
    // DISPATCH_AA_SPIN_NS=N: the A/A side first spins N ns of CPU, as if it
    // encoded a message: how much a little work per call costs at 32 in flight.
    let spin = std::time::Duration::from_nanos(u64::from(env_u32("DISPATCH_AA_SPIN_NS", 0)));
    let ours = || async {
        if aa {
            let started = Instant::now();
            while started.elapsed() < spin {
                std::hint::spin_loop();
            }
            invoke_raw(&lambda, payload.clone()).await;
        } else {
            price(order()).await.expect("dispatch");
        }
    };
    // A raw invoke whose caller encodes its arguments each call, as anyone
    // sending these arguments must: the same envelope, built afresh.
    let encoded = || async {
        let args = serde_json::json!({"order": order()}).as_object().cloned().unwrap_or_default();
        invoke_raw(&lambda, Envelope::new(price::NAME, args, false, 2).to_payload().expect("small")).await;
    };
    if let Ok(side) = std::env::var("DISPATCH_PROFILE") {
        let invoker = LambdaInvoker::with_client(lambda.clone());
        let by_invoker = || async {
            invoker.invoke_event(price::NAME, "bench", payload.clone()).await.expect("invoke");
        };
        let started = Instant::now();
        let per = rt.block_on(async {
            match side.as_str() {
                "raw" => per_call(calls * 5, 32, raw).await,
                "invoker" => per_call(calls * 5, 32, by_invoker).await,
                "encode" => per_call(calls * 5, 32, encoded).await,
                _ => per_call(calls * 5, 32, ours).await,
            }
        });
        let raw_future = lambda.invoke().function_name("bench").invocation_type(InvocationType::Event).payload(Blob::new(payload.clone())).send();
        println!("future sizes: #[task] call {} bytes, raw invoke {} bytes", std::mem::size_of_val(&price(order())), std::mem::size_of_val(&raw_future));
        println!("{side} only: {} calls, {:.0} ns a call, {:.0} ns of CPU a call, {:?} in all", calls * 5, per.0, per.1, started.elapsed());
        return;
    }
    // Warm both paths (connections, lazily built clients).
    rt.block_on(async {
        per_call(calls.min(500), 32, raw).await;
        per_call(calls.min(500), 32, ours).await;
    });
    println!("dispatch, capture off: {rounds} rounds of {calls} calls each, the three sides in turn, each first in its turn");
    for in_flight in [1usize, 32] {
        // Per round, (wall, cpu) of each side.
        let (mut raw_t, mut enc_t, mut ours_t) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (r, e, o) = rt.block_on(async {
                match round % 3 {
                    0 => {
                        let r = per_call(calls, in_flight, raw).await;
                        let e = per_call(calls, in_flight, encoded).await;
                        (r, e, per_call(calls, in_flight, ours).await)
                    }
                    1 => {
                        let o = per_call(calls, in_flight, ours).await;
                        let r = per_call(calls, in_flight, raw).await;
                        (r, per_call(calls, in_flight, encoded).await, o)
                    }
                    _ => {
                        let e = per_call(calls, in_flight, encoded).await;
                        let o = per_call(calls, in_flight, ours).await;
                        (per_call(calls, in_flight, raw).await, e, o)
                    }
                }
            });
            raw_t.push(r);
            enc_t.push(e);
            ours_t.push(o);
        }
        let line = |what: &str, base_name: &str, base: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
            let ratios: Vec<f64> = ours_t.iter().zip(base).map(|(o, r)| pick(o) / pick(r)).collect();
            let (lo, hi) = spread(&ratios);
            let (r, o) = (median(base.iter().map(pick).collect()), median(ours_t.iter().map(pick).collect()));
            println!(
                "{in_flight:>2} in flight, {what}: {base_name} {r:>7.0} ns/call   #[task] {o:>7.0} ns/call   ratio of medians {:.3}x   median ratio {:.3}x   per-round ratios {lo:.3}x..{hi:.3}x",
                o / r,
                median(ratios.clone())
            );
        };
        line("wall", "raw Invoke(Event)", &raw_t, |x| x.0);
        line("CPU ", "raw Invoke(Event)", &raw_t, |x| x.1);
        line("CPU ", "raw, args encoded", &enc_t, |x| x.1);
    }
}
