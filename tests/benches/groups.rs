//! Sending a group, as a ratio to sending its calls one by one, measured
//! side by side in one run, through each of three backends (each in a
//! process of its own: this binary again):
//!
//! - `endpoint`: a local Lambda endpoint (a loopback HTTP server that
//!   answers every invoke 202 and runs nothing), with the memory store or a
//!   table on DynamoDB Local (`GROUP_BENCH_STORE=dynamodb`): the caller's
//!   work and the store's, not Lambda's;
//! - `local`: the embedded local backend, whose worker runs every call in
//!   this process, on the memory store;
//! - `task-local`: the `task-local` emulator, whose real worker processes
//!   (`bench-worker`, up to 10 instances, one attempt a call) keep their
//!   items in a table on DynamoDB Local, as the caller keeps the group's.
//!
//! The sides, in turn (reversed every other round):
//!
//! - baseline: N calls sent with `send`, 64 at a time (as a caller that
//!   does fan out by hand would);
//! - one group of the same N calls made one call at a time as it is sent
//!   (`Group::from_calls` over an iterator, as a task's `map` does), with no
//!   Vec of every call;
//! - one group of them (`group(..).send()`, which sends 64 at a time too);
//! - (`endpoint` only) the same as a chord (one callback recorded).
//!
//! Each side's time is to the end of its send; with `local` and
//! `task-local` also to the end of its last call (every call's outcome
//! written, every child counted in its group), as checked from the
//! backend's count of ended calls and the group's own count. For each
//! side it prints the caller's peak resident memory during its send
//! (`VmHWM` of `/proc/self/status`, reset before each send by writing 5 to
//! `/proc/self/clear_refs`); the endpoint keeps nothing. Over the memory
//! store the peak holds the store's items too (with `local`, the worker's
//! work as well); over DynamoDB Local it is the caller's alone.
//!
//! `cargo bench -p tests --bench groups`: sizes 10,000 and 100,000
//! (`GROUP_BENCH_SIZES=10000,100000` to change them); the backends
//! `endpoint,local`, and `task-local` too when `TASK_TEST_DYNAMODB_ENDPOINT`
//! is set, as `scripts/with-test-env` sets it (`GROUP_BENCH_BACKEND` to
//! choose); rounds: 3 at up to 10,000 calls and 1 above over the endpoint
//! and local, 1 through task-local (`GROUP_BENCH_ROUNDS`).
//! `GROUP_BENCH_PENDING_WRITE=true` for callers with `TASK_PENDING_WRITE=true`.
//! Under `cargo test`, a smoke run of 300 calls through each backend.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::task_local::{TaskLocal, built};
use futures::StreamExt;
use serde_json::{Value, json};
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::store::ResponseStore;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::memory::MemoryStore;
use task_runtime::{Config, Group, SendOptions, call, group, send};

/// Set on a child process: the one backend it runs.
const RUN_VAR: &str = "GROUP_BENCH_RUN";

/// Calls of the local backend that ran.
static COUNTED: AtomicU64 = AtomicU64::new(0);

/// What the local backend runs: `bench.price`'s body, counted.
#[task_runtime::task(name = "bench.counted")]
async fn counted(order: Value) -> u64 {
    COUNTED.fetch_add(1, Ordering::Relaxed);
    order["slices"].as_u64().unwrap_or(0) * 350
}

/// Reset the peak resident memory (Linux 4.0 and later).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident memory since the last reset, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

/// The arguments of call `i`: an order, as `bench.price` takes it.
fn args(i: u64) -> Value {
    json!({"order": {"flavor": "apple", "slices": i % 16, "notes": ["no nuts", "extra crust"]}})
}

fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: a smaller smoke run there.
    let benching = std::env::args().any(|a| a == "--bench");
    if let Ok(backend) = std::env::var(RUN_VAR) {
        let sizes: Vec<u64> = env_list("GROUP_BENCH_SIZES")
            .map(|v| v.iter().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_else(|| if benching { vec![10_000, 100_000] } else { vec![300] });
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        return rt.block_on(run(&backend, &sizes, benching));
    }
    let with_dynamodb = std::env::var("TASK_TEST_DYNAMODB_ENDPOINT").is_ok_and(|e| !e.is_empty());
    let backends = env_list("GROUP_BENCH_BACKEND").unwrap_or_else(|| {
        let mut all = vec!["endpoint".to_owned(), "local".to_owned()];
        if with_dynamodb {
            all.push("task-local".to_owned());
        }
        all
    });
    for backend in backends {
        assert!(["endpoint", "local", "task-local"].contains(&backend.as_str()), "GROUP_BENCH_BACKEND: `{backend}` is none of endpoint, local, task-local");
        let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .args(std::env::args().skip(1))
            .env(RUN_VAR, &backend)
            .status()
            .expect("run the bench's child");
        assert!(status.success(), "the {backend} run failed: {status}");
    }
}

/// Where the calls go, and how this run learns that they ended.
enum Backend {
    /// A loopback endpoint that answers 202 and counts.
    Endpoint { _fake: common::FakeLambda, invokes: Arc<AtomicU64> },
    /// The local backend (`COUNTED` counts what ran).
    Local,
    /// task-local, whose `/stats` counts what ended.
    TaskLocal { tl: TaskLocal, ended: u64 },
}

impl Backend {
    /// Install this process's runtime for backend `name`: the backend, and
    /// how its figures are labelled.
    async fn install(name: &str, pending_write: bool) -> (Self, String) {
        let config = |config: Config| config.with_pending_write(pending_write).install().expect("install");
        match name {
            "local" => {
                config(Config::local());
                (Self::Local, "the local backend + the memory store".to_owned())
            }
            "task-local" => {
                let table = common::table_name("group-bench");
                let store = DynamoStore::with_client(common::dynamodb(), table.clone());
                store.create_table().await.expect("table");
                let tl = tokio::task::spawn_blocking(move || TaskLocal::start_unrecorded(worker_args(&table))).await.expect("start task-local");
                config(Config::lambda("bench", None).with_store(Arc::new(store)).with_invoker(LambdaInvoker::with_client(tl.client())));
                (Self::TaskLocal { tl, ended: 0 }, "task-local (bench-worker, 10 instances) + DynamoDB Local".to_owned())
            }
            _ => {
                let invokes = Arc::new(AtomicU64::new(0));
                let counted = invokes.clone();
                let fake = common::FakeLambda::forgetful(Arc::new(move |_| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    (202, vec![], String::new())
                }))
                .await;
                let dynamodb = std::env::var("GROUP_BENCH_STORE").is_ok_and(|s| s == "dynamodb");
                let store: Arc<dyn ResponseStore> = if dynamodb {
                    let store = DynamoStore::with_client(common::dynamodb(), common::table_name("group-bench"));
                    store.create_table().await.expect("table");
                    Arc::new(store)
                } else {
                    Arc::new(MemoryStore::default())
                };
                config(Config::lambda("bench", None).with_store(store).with_invoker(LambdaInvoker::with_client(fake.client())));
                let label = if dynamodb { "local endpoint + DynamoDB Local" } else { "local endpoint + the memory store" };
                (Self::Endpoint { _fake: fake, invokes }, label.to_owned())
            }
        }
    }

    /// The task the calls name: one the backend's worker runs.
    fn task(&self) -> &'static str {
        if matches!(self, Self::Local) { "bench.counted" } else { "bench.price" }
    }

    /// Whether calls run (and a side's end is its last call's).
    fn runs(&self) -> bool {
        !matches!(self, Self::Endpoint { .. })
    }

    /// Wait (at most `limit`) until `n` more calls have ended: invoked, for
    /// the endpoint; run, for the others. Panics if fewer did or one failed.
    async fn ended(&mut self, n: u64, limit: Duration) {
        let started = Instant::now();
        match self {
            Self::Endpoint { invokes, .. } => assert_eq!(invokes.swap(0, Ordering::Relaxed), n, "every call was invoked once"),
            Self::Local => {
                task_runtime::wait_for_local_tasks().await;
                assert_eq!(COUNTED.swap(0, Ordering::Relaxed), n, "every call ran once");
            }
            Self::TaskLocal { tl, ended } => loop {
                let counts = tl.counts().await;
                let f = &counts["functions"]["bench"];
                let count = |k: &str| f[k].as_u64().unwrap_or(0);
                if counts["in_flight"] == 0 && count("invocations") >= *ended + n {
                    assert_eq!((count("invocations"), count("success")), (*ended + n, *ended + n), "every call ran once and succeeded: {counts}");
                    *ended += n;
                    break;
                }
                assert!(started.elapsed() < limit, "{n} calls not ended within {limit:?}: {counts}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            },
        }
    }
}

/// task-local serving `bench-worker` as `bench`, its items in `table`.
fn worker_args(table: &str) -> Vec<String> {
    let worker = format!("bench={}", built("bench-worker").display());
    let mut args: Vec<String> = ["--function", &worker, "--max-retry-attempts", "0", "--no-schedules"].iter().map(|s| s.to_string()).collect();
    for env in [format!("TASK_RESPONSE_TABLE={table}"), format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()), "RUST_LOG=off".to_owned()] {
        args.extend(["--env".to_owned(), env]);
    }
    args
}

/// The kinds of send, in their order in a round.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Singles,
    MadeAsSent,
    Group,
    Chord,
}

impl Side {
    fn label(self, n: u64) -> String {
        match self {
            Self::Singles => format!("{n} single sends, 64 at a time"),
            Self::MadeAsSent => format!("one group of {n}, made as sent"),
            Self::Group => format!("one group of {n}"),
            Self::Chord => format!("one chord of {n}"),
        }
    }
}

/// Send `n` calls as `side`: the group's id, when it is one.
async fn send_side(side: Side, task: &'static str, n: u64) -> Option<String> {
    match side {
        Side::Singles => {
            futures::stream::iter(0..n)
                .map(|i| async move { send(task, args(i), SendOptions::default()).await.expect("send") })
                .buffer_unordered(64)
                .for_each(|_| async {})
                .await;
            None
        }
        // No Vec of every call in the caller, so its peak is the runtime's.
        Side::MadeAsSent => Some(Group::from_calls((0..n).map(move |i| call(task, args(i)))).send().await.expect("group").id().to_owned()),
        Side::Group => Some(group((0..n).map(|i| call(task, args(i))).collect()).send().await.expect("group").id().to_owned()),
        Side::Chord => {
            let chord = group((0..n).map(|i| call(task, args(i))).collect()).then(call("bench.total", json!({}))).send().await.expect("chord");
            Some(chord.group().id().to_owned())
        }
    }
}

/// Per side: the best send time, the best time to the last call's end, the lowest peak.
#[derive(Clone, Copy)]
struct Best {
    sent: Duration,
    ended: Duration,
    peak: f64,
}

async fn run(name: &str, sizes: &[u64], benching: bool) {
    let pending_write = std::env::var("GROUP_BENCH_PENDING_WRITE").is_ok_and(|v| v == "true");
    let (mut backend, label) = Backend::install(name, pending_write).await;
    let task = backend.task();
    // Warm the client's connections (and, through task-local, an instance).
    send(task, args(0), SendOptions::default()).await.expect("send");
    backend.ended(1, Duration::from_secs(60)).await;
    let sides: &[Side] = if backend.runs() { &[Side::Singles, Side::MadeAsSent, Side::Group] } else { &[Side::Singles, Side::MadeAsSent, Side::Group, Side::Chord] };
    let rounds_set = std::env::var("GROUP_BENCH_ROUNDS").ok().and_then(|r| r.parse::<u32>().ok());
    let write = if pending_write { ", TASK_PENDING_WRITE=true" } else { "" };
    for &n in sizes {
        // The largest sizes once: a round of 100,000 on DynamoDB Local is minutes.
        let rounds = rounds_set.unwrap_or(if benching && n <= 10_000 && !matches!(backend, Backend::TaskLocal { .. }) { 3 } else { 1 });
        let mut best = vec![Best { sent: Duration::MAX, ended: Duration::MAX, peak: f64::MAX }; sides.len()];
        for round in 0..rounds {
            let order: Vec<usize> = if round % 2 == 0 { (0..sides.len()).collect() } else { (0..sides.len()).rev().collect() };
            for k in order {
                let side = sides[k];
                reset_peak();
                let t = Instant::now();
                let group = send_side(side, task, n).await;
                let sent = t.elapsed();
                let peak = peak_mb();
                // A chord's callback is recorded, not sent, until its group ends.
                backend.ended(n, Duration::from_secs(120 + n / 50)).await;
                let ended = t.elapsed();
                if let (Some(g), true) = (group, backend.runs()) {
                    let status = task_runtime::group_status(&g).await.expect("read the group").expect("the group is recorded");
                    assert_eq!((status.ended, status.complete), (n as u32, n as u32), "every child counted once, complete");
                }
                let b = &mut best[k];
                (b.sent, b.ended, b.peak) = (b.sent.min(sent), b.ended.min(ended), b.peak.min(peak));
            }
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        let base = best[0];
        println!("sending {n} calls (best of {rounds}), {label}{write}:");
        for (k, side) in sides.iter().enumerate() {
            let b = best[k];
            let ratio = |d: Duration, of: Duration| if k == 0 { "(baseline) ".to_owned() } else { format!("ratio {:.2}x", d.as_secs_f64() / of.as_secs_f64()) };
            let ended = if backend.runs() { format!("   ended {:>7.1} us/call {}", per(b.ended), ratio(b.ended, base.ended)) } else { String::new() };
            println!("  {:<34} sent {:>7.1} us/call {}{ended}   peak {:>6.1} MB", side.label(n), per(b.sent), ratio(b.sent, base.sent), b.peak);
        }
    }
}
