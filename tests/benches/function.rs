//! What the worker costs inside the function, against a bare
//! `lambda_runtime` handler with the same body (`bench-bare`), both real
//! processes under task-local:
//!
//! 1. warm: synchronous invokes one at a time, the same message to each
//!    (a `#[task]` call with capture off); rounds of each interleaved, their
//!    order alternating, and the median of the rounds' per-call times
//!    compared, with the spread of the per-round ratios; the worker once at
//!    its default level (INFO: a line a call) and once at WARN;
//! 2. cold: the first invoke of a fresh function each time, in turn bare,
//!    `#[task]`, and `#[task]` with a response table configured; task-local's
//!    `Init` (to a hundredth of a millisecond, as Lambda reports it) and
//!    `Max Memory Used` of each, their medians compared;
//! 3. the size of each binary (this machine's target; `scripts/package
//!    bench-worker` gives the arm64 one Lambda loads).
//!
//! No figure is asserted anywhere. `cargo bench -p tests --bench function`
//! (`FUNCTION_ROUNDS`, default 9; `FUNCTION_CALLS`, calls a round, default
//! 2,000; `FUNCTION_COLD`, cold starts of each kind, default 30; under
//! `cargo test`, a smoke run of 2 rounds of 20 and 2 cold starts).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use common::task_local::{TaskLocal, built};
use task_runtime::envelope::Envelope;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn spread(xs: &[f64]) -> (f64, f64) {
    xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

/// The kinds of function, and their binaries' names.
const KINDS: [(&str, &str); 3] = [("bare", "bench-bare"), ("task", "bench-worker"), ("table", "bench-worker")];

/// One synchronous invoke; panics unless the function answered.
async fn invoke(lambda: &aws_sdk_lambda::Client, function: &str, payload: &[u8]) {
    let out = lambda.invoke().function_name(function).payload(Blob::new(payload.to_vec())).send().await.expect("invoke");
    assert!(out.function_error().is_none(), "{function}: {:?}", out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()));
}

/// `calls` invokes of `function`, one at a time: the time per call.
async fn per_call(lambda: &aws_sdk_lambda::Client, function: &str, payload: &[u8], calls: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        invoke(lambda, function, payload).await;
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, calls, cold) =
        if benching { (env_u32("FUNCTION_ROUNDS", 9), env_u32("FUNCTION_CALLS", 2_000), env_u32("FUNCTION_COLD", 30)) } else { (2, 20, 2) };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let path = |bin: &str| built(bin).display().to_string();
    // The warm pair, and a fresh function of each kind for every cold start.
    // `quiet`: the worker at AWS_LAMBDA_LOG_LEVEL=warn, without its INFO line a call.
    let mut args = vec!["--function".to_owned(), format!("bare={}", path("bench-bare")), "--function".into(), format!("task={}", path("bench-worker"))];
    args.extend(["--function".to_owned(), format!("quiet={}", path("bench-worker")), "--env".into(), "quiet:AWS_LAMBDA_LOG_LEVEL=warn".into()]);
    for i in 0..cold {
        for (kind, bin) in KINDS {
            args.extend(["--function".to_owned(), format!("{kind}{i}={}", path(bin))]);
        }
        // Configured as a deployed worker is; the table is never reached (capture is off).
        args.extend(["--env".to_owned(), format!("table{i}:TASK_RESPONSE_TABLE=bench-responses")]);
        args.extend(["--env".to_owned(), format!("table{i}:AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9")]);
    }
    let tl = TaskLocal::start(args);
    let lambda = tl.client();
    let order = serde_json::json!({"order": {"flavor": "apple", "slices": 8, "notes": ["no nuts", "extra crust"]}});
    let payload = Envelope::new("bench.price", order.as_object().cloned().unwrap_or_default(), false, 2).to_payload().expect("small");

    rt.block_on(async {
        // 1. Warm.
        for f in ["bare", "task", "quiet"] {
            per_call(&lambda, f, &payload, calls.min(200)).await;
        }
        println!("warm, synchronous invokes one at a time through task-local: {rounds} rounds of {calls} calls, the functions' order turning");
        for worker in ["task", "quiet"] {
            let (mut bare, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let (b, o) = if round % 2 == 0 {
                    let b = per_call(&lambda, "bare", &payload, calls).await;
                    (b, per_call(&lambda, worker, &payload, calls).await)
                } else {
                    let o = per_call(&lambda, worker, &payload, calls).await;
                    (per_call(&lambda, "bare", &payload, calls).await, o)
                };
                bare.push(b);
                ours.push(o);
                ratios.push(o / b);
            }
            let (lo, hi) = spread(&ratios);
            let label = if worker == "task" { "#[task] worker" } else { "the same at WARN" };
            println!(
                "  bare handler {:>7.1} us/call   {label:<16} {:>7.1} us/call   ratio of medians {:.3}x   median ratio {:.3}x   per-round ratios {lo:.3}x..{hi:.3}x",
                median(bare.clone()),
                median(ours.clone()),
                median(ours) / median(bare),
                median(ratios.clone()),
            );
        }

        // 2. Cold: one first invoke of each fresh function, the kinds in turn.
        for i in 0..cold {
            for k in 0..KINDS.len() {
                let (kind, _) = KINDS[(i as usize + k) % KINDS.len()];
                invoke(&lambda, &format!("{kind}{i}"), &payload).await;
            }
        }
        let stats = tl.quiet(Duration::from_secs(30)).await;
        let mut init: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut memory: HashMap<&str, Vec<f64>> = HashMap::new();
        for record in stats["invocations"].as_array().expect("invocations") {
            let (Some(function), Some(ms)) = (record["function"].as_str(), record["init_ms"].as_f64()) else { continue };
            let Some((kind, _)) = KINDS.iter().find(|(kind, _)| function.strip_prefix(kind).is_some_and(|n| n.parse::<u32>().is_ok())) else { continue };
            init.entry(kind).or_default().push(ms);
            memory.entry(kind).or_default().push(record["max_memory_used_mb"].as_f64().unwrap_or(f64::NAN));
        }
        println!("cold starts through task-local: {cold} of each kind, in turn; Init (spawn to the first /next) and Max Memory Used");
        let base_init = median(init["bare"].clone());
        let base_memory = median(memory["bare"].clone());
        for (kind, bin) in KINDS {
            let (lo, hi) = spread(&init[kind]);
            let size = std::fs::metadata(built(bin)).map(|m| m.len() as f64 / 1e6).unwrap_or(f64::NAN);
            println!(
                "  {kind:<6} Init median {:>6.2} ms ({lo:.2}..{hi:.2})  {:.3}x bare   Max Memory Used median {:>3.0} MB  {:.2}x bare   binary {size:.1} MB",
                median(init[kind].clone()),
                median(init[kind].clone()) / base_init,
                median(memory[kind].clone()),
                median(memory[kind].clone()) / base_memory,
            );
        }
    });
}
