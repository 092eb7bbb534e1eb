//! Sending a group, as a ratio to sending its calls one by one, measured
//! side by side in one run against a local Lambda endpoint (a loopback HTTP
//! server that answers every invoke 202), so that the figure is the
//! runtime's work and the store's, not Lambda's:
//!
//! - baseline: N calls sent with `send`, 64 at a time (as a caller that
//!   does fan out by hand would);
//! - ours: one group of the same N calls (`group(..).send()`, which sends
//!   64 at a time too), the same as a chord (one callback recorded), and
//!   the group made one call at a time as it is sent (`Group::from_calls`
//!   over an iterator, as a task's `map` does), with no Vec of every call.
//!
//! For each kind of send it also prints the caller's peak resident memory
//! during it (`VmHWM` of `/proc/self/status`, reset before each send by
//! writing 5 to `/proc/self/clear_refs`); the endpoint keeps nothing. Over
//! the memory store the peak holds the store's items too; over DynamoDB
//! Local it is the caller's alone.
//!
//! `cargo bench -p tests --bench groups` (sizes 10,000 and 100,000; the
//! in-memory store). `GROUP_BENCH_SIZES=10000,100000` to change them, and
//! `GROUP_BENCH_STORE=dynamodb` (with `TASK_TEST_DYNAMODB_ENDPOINT`, as
//! `scripts/with-test-env` sets it) for a table on DynamoDB Local, and
//! `GROUP_BENCH_PENDING_WRITE=false` for callers with `TASK_PENDING_WRITE=false`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::store::ResponseStore;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::memory::MemoryStore;
use task_runtime::{Config, Group, SendOptions, call, group, send};

/// Reset the peak resident memory (Linux 4.0 and later).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident memory since the last reset, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: a smaller smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = std::env::var("GROUP_BENCH_SIZES")
        .or_else(|_| std::env::var("GROUP_BENCH_N"))
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| if benching { vec![10_000, 100_000] } else { vec![500] });
    let dynamodb = std::env::var("GROUP_BENCH_STORE").is_ok_and(|s| s == "dynamodb");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let invokes = Arc::new(AtomicU64::new(0));
        let counted = invokes.clone();
        let fake = common::FakeLambda::forgetful(Arc::new(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            (202, vec![], String::new())
        }))
        .await;
        // How many invokes the endpoint answered since the last count.
        let count = || invokes.swap(0, Ordering::Relaxed);
        let store: Arc<dyn ResponseStore> = if dynamodb {
            let table = common::table_name("group-bench");
            let store = DynamoStore::with_client(common::dynamodb(), table);
            store.create_table().await.expect("table");
            Arc::new(store)
        } else {
            Arc::new(MemoryStore::default())
        };
        // `GROUP_BENCH_PENDING_WRITE=false`: no caller write (TASK_PENDING_WRITE).
        let pending_write = std::env::var("GROUP_BENCH_PENDING_WRITE").map_or(true, |v| v != "false");
        Config::lambda("bench", None)
            .with_store(store)
            .with_invoker(LambdaInvoker::with_client(fake.client()))
            .with_pending_write(pending_write)
            .install()
            .expect("install");
        let args = |i: u64| json!({"order": i, "flavor": "apple", "notes": ["no nuts", "extra crust"]});
        // Warm the client's connections.
        send("bench.price", args(0), SendOptions::default()).await.expect("send");
        assert_eq!(count(), 1);
        let store_name = if dynamodb { "DynamoDB Local" } else { "the memory store" };

        for n in sizes {
            // The largest sizes once: a round of 100,000 on DynamoDB Local is minutes.
            let rounds = if benching && n <= 10_000 { 3 } else { 1 };
            let (mut singles, mut groups, mut chords) = (Duration::MAX, Duration::MAX, Duration::MAX);
            let mut invoked = 0;
            let mut streamed = Duration::MAX;
            // The lowest peak of the rounds: memory freed by one send stays resident
            // (the allocator keeps it), so a send's peak can read the one before's.
            let mut peaks = [f64::MAX; 4];
            for _ in 0..rounds {
                reset_peak();
                let t = Instant::now();
                futures::stream::iter(0..n)
                    .map(|i| async move { send("bench.price", args(i), SendOptions::default()).await.expect("send") })
                    .buffer_unordered(64)
                    .for_each(|_| async {})
                    .await;
                singles = singles.min(t.elapsed());
                invoked += count();
                peaks[0] = peaks[0].min(peak_mb());

                // The same group made one call at a time as it is sent
                // (`Group::from_calls` over an iterator, as `map` does): no
                // Vec of every call in the caller, so its peak is the runtime's.
                reset_peak();
                let t = Instant::now();
                Group::from_calls((0..n).map(move |i| call("bench.price", args(i)))).send().await.expect("group");
                streamed = streamed.min(t.elapsed());
                invoked += count();
                peaks[3] = peaks[3].min(peak_mb());

                reset_peak();
                let t = Instant::now();
                group((0..n).map(|i| call("bench.price", args(i))).collect()).send().await.expect("group");
                groups = groups.min(t.elapsed());
                invoked += count();
                peaks[1] = peaks[1].min(peak_mb());

                reset_peak();
                let t = Instant::now();
                group((0..n).map(|i| call("bench.price", args(i))).collect()).then(call("bench.total", json!({}))).send().await.expect("chord");
                chords = chords.min(t.elapsed());
                invoked += count();
                peaks[2] = peaks[2].min(peak_mb());
            }
            assert_eq!(invoked, rounds * 4 * n, "every call was invoked once");
            let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
            println!("sending {n} calls (best of {rounds}), local endpoint + {store_name}:");
            println!("  {n} single sends, 64 at a time   {:>8.1} us/call   (baseline)     peak {:>6.1} MB", per(singles), peaks[0]);
            println!("  one group of {n}                 {:>8.1} us/call   ratio {:.2}x    peak {:>6.1} MB", per(groups), groups.as_secs_f64() / singles.as_secs_f64(), peaks[1]);
            println!("  one chord of {n}                 {:>8.1} us/call   ratio {:.2}x    peak {:>6.1} MB", per(chords), chords.as_secs_f64() / singles.as_secs_f64(), peaks[2]);
            println!("  one group of {n}, made as sent   {:>8.1} us/call   ratio {:.2}x    peak {:>6.1} MB", per(streamed), streamed.as_secs_f64() / singles.as_secs_f64(), peaks[3]);
        }
    });
}
