//! What the runtime costs per task, as ratios against a baseline measured
//! in the same run (no absolute numbers are asserted anywhere):
//!
//! 1. the local backend: dispatch → worker → store → poll, against
//!    `tokio::spawn` of the same body with a oneshot for its result;
//! 2. the worker alone (decode, registry, begin, run, finish in the memory
//!    store), against calling the body directly;
//! 3. the wire format: envelope encode + classify, against serde_json of
//!    the bare arguments.
//!
//! `cargo bench -p tests --bench overhead`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use task_runtime::envelope::{Envelope, Incoming};
use task_runtime::registry::Registry;
use task_runtime::store::ResponseStore;
use task_runtime::store::memory::MemoryStore;
use task_runtime::worker::{Invocation, Worker, WorkerSettings};
use task_runtime::{Config, task};

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Order {
    flavor: String,
    slices: u32,
    notes: Vec<String>,
}

#[task]
async fn price(order: Order) -> u64 {
    u64::from(order.slices) * 350 + order.notes.len() as u64
}

fn order() -> Order {
    Order { flavor: "apple".into(), slices: 8, notes: vec!["no nuts".into(), "extra crust".into()] }
}

fn report(name: &str, n: u32, base: Duration, ours: Duration) {
    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(n);
    println!(
        "{name:<44} baseline {:>9.0} ns/task   task-runtime {:>9.0} ns/task   ratio {:>6.1}x",
        per(base),
        per(ours),
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    Config::local().with_local_retry_delay(Duration::from_millis(1)).install().expect("install");
    let n = 20_000u32;

    // 1. local backend round trip vs tokio::spawn + oneshot
    let base = rt.block_on(async {
        let t = Instant::now();
        let mut rxs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let o = order();
            tokio::spawn(async move {
                let _ = tx.send(price::run_inline(o).await);
            });
            rxs.push(rx);
        }
        for rx in rxs {
            black_box(rx.await.ok());
        }
        t.elapsed()
    });
    let ours = rt.block_on(async {
        let t = Instant::now();
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(price(order()).await.expect("dispatch"));
        }
        task_runtime::wait_for_local_tasks().await;
        for h in &handles {
            black_box(h.wait().await.expect("value"));
        }
        t.elapsed()
    });
    report("local backend: dispatch..wait vs spawn+oneshot", n, base, ours);

    // 2. the worker path vs calling the body
    let worker = Worker::new(
        Registry::global().expect("registry"),
        Some(Arc::new(MemoryStore::default()) as Arc<dyn ResponseStore>),
        WorkerSettings { max_attempts: 3, response_ttl: Duration::from_secs(60), timeout_margin: Duration::ZERO, lease: Duration::from_secs(10), signing_key: None },
    );
    let args = serde_json::json!({"order": order()});
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let env = Envelope::new(price::NAME, args.as_object().cloned().unwrap_or_default(), true, 2);
            serde_json::to_vec(&env).expect("encode")
        })
        .collect();
    let base = rt.block_on(async {
        let t = Instant::now();
        for _ in 0..n {
            black_box(price::run_inline(black_box(order())).await);
        }
        t.elapsed()
    });
    let ours = rt.block_on(async {
        let t = Instant::now();
        for p in &payloads {
            let inv = Invocation { request_id: "bench".into(), deadline_ms: u64::MAX / 2, attempt: None };
            black_box(worker.handle_payload(p, &inv).await);
        }
        t.elapsed()
    });
    report("worker: payload..stored vs body call", n, base, ours);

    // 3. the wire format vs bare serde_json
    let base = {
        let t = Instant::now();
        for _ in 0..n {
            let bytes = serde_json::to_vec(&order()).expect("encode");
            black_box(serde_json::from_slice::<Order>(&bytes).expect("decode"));
        }
        t.elapsed()
    };
    let ours = {
        let t = Instant::now();
        for _ in 0..n {
            let mut m = serde_json::Map::new();
            m.insert("order".into(), serde_json::to_value(order()).expect("value"));
            let bytes = Envelope::new(price::NAME, m, true, 2).to_payload().expect("size");
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            match Incoming::classify(&v) {
                Incoming::Task(env) => {
                    black_box(serde_json::from_value::<Order>(env.args["order"].clone()).expect("decode"));
                }
                other => panic!("{other:?}"),
            }
        }
        t.elapsed()
    };
    report("wire: envelope encode+classify vs serde_json", n, base, ours);
}
