//! Sending a group, as a ratio to sending its calls one by one, measured
//! side by side in one run against a local Lambda endpoint (a loopback HTTP
//! server that answers every invoke 202) and the in-memory store, so that
//! the figure is the runtime's work, not the network's:
//!
//! - baseline: N calls sent with `send`, 64 at a time (as a caller that
//!   does fan out by hand would);
//! - ours: one group of the same N calls (`group(..).send()`, which sends
//!   64 at a time too), and the same as a chord (one callback recorded).
//!
//! `cargo bench -p tests --bench groups` (N = 10,000; `GROUP_BENCH_N` to change it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::store::memory::MemoryStore;
use task_runtime::{Config, SendOptions, call, group, send};

fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: a smaller smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("GROUP_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(if benching { 10_000 } else { 500 });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let fake = common::FakeLambda::start(Arc::new(|_| (202, vec![], String::new()))).await;
        Config::lambda("bench", None)
            .with_store(Arc::new(MemoryStore::default()))
            .with_invoker(LambdaInvoker::with_client(fake.client()))
            .install()
            .expect("install");
        let args = |i: u64| json!({"order": i, "flavor": "apple", "notes": ["no nuts", "extra crust"]});
        // Warm the client's connections.
        send("bench.price", args(0), SendOptions::default()).await.expect("send");

        let rounds = if benching { 3 } else { 1 };
        let (mut singles, mut groups, mut chords) = (Duration::MAX, Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            let t = Instant::now();
            futures::stream::iter(0..n)
                .map(|i| async move { send("bench.price", args(i), SendOptions::default()).await.expect("send") })
                .buffer_unordered(64)
                .for_each(|_| async {})
                .await;
            singles = singles.min(t.elapsed());

            let t = Instant::now();
            group((0..n).map(|i| call("bench.price", args(i))).collect()).send().await.expect("group");
            groups = groups.min(t.elapsed());

            let t = Instant::now();
            group((0..n).map(|i| call("bench.price", args(i))).collect()).then(call("bench.total", json!({}))).send().await.expect("chord");
            chords = chords.min(t.elapsed());
        }
        let invokes = fake.received().len() as u64;
        assert_eq!(invokes, 1 + rounds * 3 * n, "every call was invoked once");
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!("sending {n} calls (best of {rounds}), local endpoint + memory store:");
        println!("  {n} single sends, 64 at a time   {:>8.1} us/call   (baseline)", per(singles));
        println!("  one group of {n}                 {:>8.1} us/call   ratio {:.2}x", per(groups), groups.as_secs_f64() / singles.as_secs_f64());
        println!("  one chord of {n}                 {:>8.1} us/call   ratio {:.2}x", per(chords), chords.as_secs_f64() / singles.as_secs_f64());
    });
}
