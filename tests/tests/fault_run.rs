//! The fault run: N task calls through the real `task-local` and DynamoDB
//! Local, with the faults Lambda has in production injected all along:
//! random SIGKILLs of instances, tasks that outlive the timeout (asleep, and
//! blocking their thread), panics, retryable failures, duplicate invokes of
//! one message (new request ids) and duplicate deliveries of one event (the
//! same request id). Lambda's failure records go back to the worker
//! (`--on-failure function:fault`). Afterwards every id is read back.
//!
//! `scripts/test` runs it with 500 tasks; `scripts/fault-run` with 10,000
//! (`FAULT_TASKS`). It prints one report and fails when any id is left
//! non-terminal. Bounded: the drain gives up after `FAULT_DRAIN_SECS`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::task_local::TaskLocal;
use futures::StreamExt;
use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::{PendingItem, ResponseStore};
use task_runtime::{AsyncResponse, Status};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What call `i` is: a task and its arguments (72% complete at once; 4%
/// retry past Lambda's two, sent again by the runtime; 4% share a
/// concurrency limit of 2).
fn call(i: u64) -> (&'static str, Value) {
    match i % 100 {
        0..72 => ("fault.ok", json!({"n": i})),
        72..76 => ("fault.persist", json!({"succeed_on": 5})),
        76..80 => ("fault.pair", json!({"ms": 300})),
        80..87 => ("fault.flaky", json!({"succeed_on": 2})),
        87..92 => ("fault.flaky", json!({"succeed_on": 4})), // never: fails after 3 attempts
        92..95 => ("fault.panic", json!({"n": i})),
        95..98 => ("fault.slow", json!({"ms": 1_500})), // asleep past the 1 s timeout
        _ => ("fault.block", json!({"ms": 1_500})),     // blocking its thread past it
    }
}

/// How call `i` must end when no kill touched it: `Complete`, or the kind
/// of its failure. A call whose every attempt was killed ends `crashed`
/// instead, whatever it is.
fn expected(i: u64) -> Result<(), &'static str> {
    match i % 100 {
        0..87 => Ok(()),
        87..92 => Err("error"),
        92..95 => Err("panic"),
        95..98 => Err("timeout"),
        // The worker cannot record anything while its thread is blocked: Lambda kills it at the timeout.
        _ => Err("crashed"),
    }
}

/// How a call ended: `Ok` when complete, else its failure's kind.
fn outcome(r: &AsyncResponse) -> Result<(), String> {
    match (r.status, &r.error) {
        (Status::Complete, _) => Ok(()),
        (_, Some(e)) => Err(e.kind.to_string()),
        (status, None) => Err(format!("{status} without an error")),
    }
}

/// One fault run at a time: each loads the machine's two cores on its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_call_ends_terminal_under_kills_timeouts_panics_and_duplicates() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(true, env_u64("FAULT_TASKS", 500)));
}

/// The same run with no caller write (`TASK_PENDING_WRITE=false`): the
/// worker's `begin` creates every item, and every rule still holds.
#[test]
fn every_call_ends_terminal_with_no_pending_write_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(false, env_u64("FAULT_TASKS_UNWRITTEN", 200)));
}

async fn run(pending_write: bool, tasks: u64) {
    let kill_every = Duration::from_millis(env_u64("FAULT_KILL_EVERY_MS", 300));
    let drain_limit = Duration::from_secs(env_u64("FAULT_DRAIN_SECS", 120 + tasks / 25));
    let table = common::table_name("fault");
    let store = Arc::new(DynamoStore::with_client(common::dynamodb(), table.clone()));
    store.create_table().await.expect("table");
    let marks = std::env::temp_dir().join(format!("fault-marks-{}.txt", uuid::Uuid::new_v4().simple()));
    let args = common::faults::task_local_args(&table, &marks);
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start task-local");
    let lambda = tl.client();
    let started = Instant::now();

    // The killer: one random instance every `kill_every`, until every id is terminal.
    let killer = common::faults::Killer::start(tl.pid(), kill_every);

    // Send: the pending write (unless `pending_write` is off), then the
    // invoke; every 20th message twice (a new request id).
    let duplicates = Arc::new(AtomicU64::new(0));
    let sent: Vec<(u64, String)> = futures::stream::iter(0..tasks)
        .map(|i| {
            let (store, lambda, duplicates) = (store.clone(), lambda.clone(), duplicates.clone());
            async move {
                let (task, args) = call(i);
                // No retries cap from the caller (as a call by name): each task's own.
                let env = Envelope::new(task, args.as_object().cloned().unwrap_or_default(), true, task_runtime::policy::MAX_RETRIES);
                let payload = env.to_payload().expect("small");
                let now = common::now_ms();
                if pending_write {
                    let pending = PendingItem { id: env.id.clone(), task: task.to_owned(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
                    store.put_pending(pending).await.expect("put_pending");
                }
                let times = if i % 20 == 7 { 2 } else { 1 };
                for _ in 0..times {
                    let sent = lambda
                        .invoke()
                        .function_name("fault")
                        .invocation_type(InvocationType::Event)
                        .payload(Blob::new(payload.clone()))
                        .send()
                        .await
                        .expect("invoke");
                    assert_eq!(sent.status_code(), 202);
                }
                duplicates.fetch_add(times - 1, Ordering::SeqCst);
                (i, env.id)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let ids: Vec<String> = sent.iter().map(|(_, id)| id.clone()).collect();
    let sent_in = started.elapsed();

    // Drain: read every unfinished id until none is left, or the limit.
    let drain_started = Instant::now();
    let mut finals: HashMap<String, AsyncResponse> = HashMap::new();
    let mut open: Vec<String> = ids.clone();
    let mut last_seen: HashMap<String, Option<AsyncResponse>> = HashMap::new();
    while !open.is_empty() && drain_started.elapsed() < drain_limit {
        let reads: Vec<(String, Option<AsyncResponse>)> = futures::stream::iter(open.clone())
            .map(|id| {
                let store = store.clone();
                async move {
                    let r = store.get(&id).await.expect("get");
                    (id, r)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        open.clear();
        for (id, r) in reads {
            match r {
                Some(r) if r.status.is_finished() => {
                    finals.insert(id, r);
                }
                other => {
                    last_seen.insert(id.clone(), other);
                    open.push(id);
                }
            }
        }
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let drain = drain_started.elapsed();
    let kills = killer.stop().await;
    let stats = tl.stats().await;
    drop(tl);

    // fault.pair: never more than 2 bodies at once, and no slot left taken.
    let pairs: std::collections::HashSet<String> = sent.iter().filter(|(i, _)| call(*i).0 == "fault.pair").map(|(_, id)| id.clone()).collect();
    let spans = common::faults::spans_of(&marks);
    let pair_most = common::faults::most_at_once(&spans, &pairs);
    let _ = std::fs::remove_file(&spans);
    // A slot whose holder was killed frees itself when its lease lapses
    // (TASK_LEASE_MS, 1.5 s in this run): a call that a failure record ended
    // just now may have left one still live. Read once that has passed.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let limit_item = common::dynamodb().get_item().table_name(&table).key("id", aws_sdk_dynamodb::types::AttributeValue::S("limit:fault.pair".into())).consistent_read(true).send().await.expect("read the limit");
    let now_ms = common::now_ms();
    let leases: Vec<u64> = match limit_item.item().and_then(|i| i.get("holders")) {
        Some(aws_sdk_dynamodb::types::AttributeValue::M(m)) => m.values().filter_map(|v| v.as_n().ok()?.parse().ok()).collect(),
        _ => Vec::new(),
    };
    let slots_taken = leases.iter().filter(|lease| **lease >= now_ms).count();
    // Retries past Lambda's: attempts the persisting calls took, complete ones.
    let persisted: Vec<u32> = sent.iter().filter(|(i, _)| call(*i).0 == "fault.persist").filter_map(|(_, id)| finals.get(id)).filter(|r| r.status == Status::Complete).map(|r| r.attempts).collect();

    // Bodies that ran to their end, per id.
    let completions = common::faults::take_marks(&marks);
    let twice: Vec<&String> = completions.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();

    let complete = finals.values().filter(|r| r.status == Status::Complete).count();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for r in finals.values().filter(|r| r.status == Status::Failed) {
        *failed.entry(r.error.as_ref().map_or("(none)".into(), |e| e.kind.to_string())).or_default() += 1;
    }
    let mut non_terminal: BTreeMap<String, usize> = BTreeMap::new();
    for id in &open {
        let what = match last_seen.get(id).and_then(|r| r.as_ref()) {
            Some(r) if r.stale => format!("{} (stale)", r.status),
            Some(r) => r.status.to_string(),
            None => "missing".to_owned(),
        };
        *non_terminal.entry(what).or_default() += 1;
    }
    let f = &stats["functions"]["fault"];
    println!("fault run: {tasks} tasks through task-local + DynamoDB Local{}", if pending_write { "" } else { ", no pending write (the worker's begin creates each item)" });
    println!("  sent                     {} in {:.1}s", ids.len(), sent_in.as_secs_f64());
    println!("  duplicate invokes        {} (same message, new request id)", duplicates.load(Ordering::SeqCst));
    println!("  duplicate deliveries     {} (same event, same request id)", f["duplicate_deliveries"]);
    println!("  kills (SIGKILL)          {kills}");
    println!("  invocations              {} (crash {}, timeout {}, dropped to the failure record {})", f["invocations"], f["crash"], f["timeout"], f["dropped"]);
    println!("  complete                 {complete}");
    println!("  failed by kind           {failed:?}");
    println!("  non-terminal             {} {non_terminal:?}", open.len());
    println!("  bodies completed twice   {} (of {} that completed)", twice.len(), completions.len());
    println!("  past Lambda's retries    {} fault.persist calls complete, attempts {:?}..{:?} (5 without kills)", persisted.len(), persisted.iter().min(), persisted.iter().max());
    println!("  concurrency = 2          {} fault.pair calls, at most {pair_most} bodies at once; slots taken after the run {slots_taken} (swept-out or lapsed entries {})", pairs.len(), leases.len() - slots_taken);
    println!("  drain                    {:.1}s after the last send (kills went on until every id was terminal)", drain.as_secs_f64());
    for id in twice.iter().take(5) {
        println!("    completed twice: {id} -> {:?}", finals.get(*id).map(|r| (r.status, r.attempts)));
    }
    assert!(open.is_empty(), "{} ids not terminal after {drain:?}: {non_terminal:?}, e.g. {:?}", open.len(), open.iter().take(3).collect::<Vec<_>>());

    assert!(pair_most <= 2, "fault.pair ran {pair_most} bodies at once under concurrency = 2");
    assert!(pairs.is_empty() || pair_most == 2, "the limit of 2 was never reached: the run proves nothing about it");
    assert_eq!(slots_taken, 0, "slots of fault.pair still taken after every call ended");
    assert!(persisted.iter().all(|a| *a >= 5), "a persisting call completed before its fifth attempt: {persisted:?}");

    // The faults happened: a run without them proves nothing.
    assert!(kills > 0, "no instance was killed");
    assert!(duplicates.load(Ordering::SeqCst) > 0, "no message was invoked twice");
    assert!(f["duplicate_deliveries"].as_u64() > Some(0), "no event was delivered twice: {f}");

    // Each call ended as its kind should; only a killed call may differ, as `crashed`.
    let mut wrong = Vec::new();
    let mut crashed_by_kills = 0u64;
    for (i, id) in &sent {
        let Some(r) = finals.get(id) else { continue };
        let got = outcome(r);
        let want = expected(*i).map_err(str::to_owned);
        if got == want {
            continue;
        }
        if got.as_ref().err().map(String::as_str) == Some("crashed") {
            crashed_by_kills += 1;
        } else {
            wrong.push(format!("{} {id}: {got:?}, expected {want:?} ({r:?})", call(*i).0));
        }
    }
    assert!(wrong.is_empty(), "{} calls ended wrongly, e.g. {:?}", wrong.len(), wrong.iter().take(3).collect::<Vec<_>>());
    // A call ends crashed only when its last attempt died: each such call took a kill.
    assert!(crashed_by_kills <= kills, "{crashed_by_kills} calls crashed, more than the {kills} kills could have caused");

    // The marks add up: every complete call's body ran to its end; a body
    // that ran to its end belongs to a complete call, or to one killed right
    // after it (before the outcome was written) on its last attempt; and a
    // body that completed twice did so on a retry after a crash, never beside
    // a duplicate delivery.
    for (id, r) in &finals {
        let marks = completions.get(id).copied().unwrap_or(0);
        match outcome(r) {
            Ok(()) => assert!(marks >= 1, "{id} is complete but no body of it ran to its end"),
            Err(kind) if marks > 0 => assert_eq!(kind, "crashed", "{id}: a body ran to its end, yet it ended {r:?}"),
            Err(_) => {}
        }
        if marks > 1 {
            assert!(r.attempts >= marks || outcome(r).is_err(), "{id}: {marks} bodies completed in {} attempt(s): a duplicate ran beside another", r.attempts);
        }
    }
    let unknown: Vec<&String> = completions.keys().filter(|id| !finals.contains_key(*id)).collect();
    assert!(unknown.is_empty(), "marks of calls that were never sent: {unknown:?}");
}
