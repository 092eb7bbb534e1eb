//! The fault run for groups: chords through the real `task-local`, the
//! lambda backend and DynamoDB Local, under the fault run's faults: random
//! SIGKILLs of instances, children that outlive the timeout, panic or fail
//! and retry, duplicate deliveries of one event (the same request id) and
//! duplicate invokes of a child's message (a new request id). Lambda's
//! failure records go back to the worker. Every group must end, its
//! callback run once (its body's marks are counted, as the fault run
//! counts bodies), and no child be counted twice.
//!
//! `scripts/test` runs 20 groups of 20 and one of 200; `scripts/fault-run`
//! runs 200 groups of 20 and one of 2,000 (`FAULT_GROUPS`,
//! `FAULT_GROUP_SIZE`, `FAULT_BIG_GROUP`). Bounded by `FAULT_DRAIN_SECS`.

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
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::envelope::{Envelope, GroupRef};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::store::group::shards_for;
use task_runtime::store::ResponseStore;
use task_runtime::{Config, GroupStatus, Status, call, group};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What child `i` of a group is (85% complete at once).
fn child(i: u64) -> (&'static str, Value) {
    match i % 20 {
        0..17 => ("fault.ok", json!({"n": i})),
        17 => ("fault.flaky", json!({"succeed_on": 2})),
        18 => ("fault.panic", json!({"n": i})),
        _ => ("fault.slow", json!({"ms": 1_500})), // asleep past the 1 s timeout
    }
}

#[test]
fn every_group_ends_and_its_callback_runs_once_under_kills_and_duplicates() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let groups = env_u64("FAULT_GROUPS", 20);
    let size = env_u64("FAULT_GROUP_SIZE", 20);
    let big = env_u64("FAULT_BIG_GROUP", 200);
    let kill_every = Duration::from_millis(env_u64("FAULT_KILL_EVERY_MS", 300));
    let children_total = groups * size + big;
    let drain_limit = Duration::from_secs(env_u64("FAULT_DRAIN_SECS", 120 + children_total / 25));
    let table = common::table_name("group-fault");
    let store = Arc::new(DynamoStore::with_client(common::dynamodb(), table.clone()));
    store.create_table().await.expect("table");
    let marks = std::env::temp_dir().join(format!("group-fault-marks-{}.txt", uuid::Uuid::new_v4().simple()));
    let args = common::faults::task_local_args(&table, &marks);
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start task-local");
    let lambda = tl.client();
    Config::lambda("fault", None)
        .with_store(store.clone())
        .with_invoker(LambdaInvoker::with_client(lambda.clone()))
        .install()
        .expect("install once");
    let killer = common::faults::Killer::start(tl.pid(), kill_every);

    // Send the chords, several at once; then invoke every 20th child's message again (a new request id).
    let started = Instant::now();
    let sizes: Vec<u64> = std::iter::repeat_n(size, groups as usize).chain(std::iter::once(big).filter(|n| *n > 0)).collect();
    let sent: Vec<(String, u64)> = futures::stream::iter(sizes)
        .map(|n| async move {
            let calls = (0..n).map(|i| {
                let (task, args) = child(i);
                call(task, args)
            });
            // The callback reads every outcome: on a function with more time (a 10,000-child group
            // takes 100 batch reads, more than the fault function's 1 s in a debug build).
            let tally = call("fault.tally", json!({})).options(task_runtime::SendOptions::default().function("tally"));
            let chord = group(calls.collect()).then(tally).send().await.expect("sent");
            (chord.group().id().to_owned(), n)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let duplicates = AtomicU64::new(0);
    futures::stream::iter(sent.iter().flat_map(|(g, n)| (0..*n).filter(|i| i % 20 == 7).map(move |i| (g.clone(), i, *n))))
        .for_each_concurrent(16, |(g, i, n)| {
            let (lambda, duplicates) = (lambda.clone(), &duplicates);
            async move {
                let (task, args) = child(i);
                let mut env = Envelope::new(task, args.as_object().cloned().unwrap_or_default(), true, 2);
                let place = GroupRef { id: g, index: i as u32, total: n as u32, shards: shards_for(n as u32), window: None };
                env.id = place.child_id();
                env.group = Some(place);
                let out = lambda.invoke().function_name("fault").invocation_type(InvocationType::Event).payload(Blob::new(env.to_payload().expect("small"))).send().await;
                assert_eq!(out.expect("invoke").status_code(), 202);
                duplicates.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
    let sent_in = started.elapsed();

    // Drain: until every group has ended and its callback too, or the limit.
    let drain_started = Instant::now();
    let mut open: Vec<String> = sent.iter().map(|(g, _)| g.clone()).collect();
    let mut last: HashMap<String, GroupStatus> = HashMap::new();
    while !open.is_empty() && drain_started.elapsed() < drain_limit {
        let reads: Vec<(String, Option<GroupStatus>)> = futures::stream::iter(open.clone())
            .map(|g| async move {
                let s = task_runtime::group_status(&g).await.expect("read");
                (g, s)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        open.clear();
        for (g, s) in reads {
            let s = s.unwrap_or_else(|| panic!("group {g} is not recorded"));
            let ended = s.all_ended() && s.callback_status.is_some_and(Status::is_finished);
            if !ended {
                open.push(g.clone());
            }
            last.insert(g, s);
        }
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let drain = drain_started.elapsed();
    let kills = killer.stop().await;
    let stats = tl.stats().await;
    drop(tl);

    let bodies = common::faults::take_marks(&marks);

    // Every child's final state, read back, against its group's counts.
    let mut callbacks = (0u64, 0u64, 0u64); // complete, failed, run twice
    let mut callback_failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut miscounted = Vec::new();
    let mut twice = Vec::new();
    for (g, n) in &sent {
        let Some(s) = last.get(g) else { continue };
        let ids: Vec<String> = (0..*n as u32).map(|i| format!("{g}.{i}")).collect();
        let mut complete = 0;
        let mut ended = 0;
        for chunk in ids.chunks(100) {
            for r in store.get_many(chunk).await.expect("read").into_iter().flatten() {
                ended += u32::from(r.status.is_finished());
                complete += u32::from(r.status == Status::Complete);
            }
        }
        if (s.ended, s.complete) != (ended, complete) || s.ended != s.complete + s.failed + s.cancelled || s.ended > s.total {
            miscounted.push(format!("{g}: counted {s:?}, children read {ended} ended, {complete} complete"));
        }
        let callback = format!("{g}.then");
        let cb = store.get(&callback).await.expect("read");
        match cb.as_ref().map(|r| r.status) {
            Some(Status::Complete) => callbacks.0 += 1,
            Some(Status::Failed) => {
                callbacks.1 += 1;
                let kind = cb.as_ref().and_then(|r| r.error.as_ref()).map_or("(none)".into(), |e| e.kind.to_string());
                *callback_failures.entry(kind).or_default() += 1;
            }
            _ => {}
        }
        let runs = bodies.get(&callback).copied().unwrap_or(0);
        if runs > 1 {
            callbacks.2 += 1;
            twice.push(format!("{callback}: {runs} bodies in {:?} attempts", cb.map(|r| r.attempts)));
        }
    }
    let f = &stats["functions"]["fault"];
    println!("group fault run: {} groups ({groups} of {size}, one of {big}), {children_total} children, through task-local + DynamoDB Local", sent.len());
    println!("  sent                      {} groups in {:.1}s", sent.len(), sent_in.as_secs_f64());
    println!("  duplicate invokes         {} (a child's message again, new request id)", duplicates.load(Ordering::SeqCst));
    println!("  duplicate deliveries      {} (same event, same request id)", f["duplicate_deliveries"]);
    println!("  kills (SIGKILL)           {kills}");
    println!("  invocations               {} (crash {}, timeout {}, dropped to the failure record {})", f["invocations"], f["crash"], f["timeout"], f["dropped"]);
    println!("  groups not ended          {}", open.len());
    println!("  callbacks                 {} complete, {} failed {callback_failures:?}", callbacks.0, callbacks.1);
    println!("  callback bodies run twice {} (a kill after the body, before its outcome was written)", callbacks.2);
    println!("  groups miscounted         {}", miscounted.len());
    println!("  drain                     {:.1}s after the last send", drain.as_secs_f64());
    for t in twice.iter().take(5) {
        println!("    {t}");
    }
    assert!(open.is_empty(), "{} groups not ended after {drain:?}, e.g. {:?}", open.len(), open.iter().take(3).map(|g| last.get(g)).collect::<Vec<_>>());
    assert!(miscounted.is_empty(), "{} groups counted wrongly, e.g. {:?}", miscounted.len(), miscounted.iter().take(3).collect::<Vec<_>>());
    // The faults happened.
    assert!(kills > 0, "no instance was killed");
    assert!(f["duplicate_deliveries"].as_u64() > Some(0), "no event was delivered twice: {f}");
    // Each group's callback was sent and ran: a body ran to its end for each
    // complete callback; more than one only on a retry after a kill.
    for (g, _) in &sent {
        let callback = format!("{g}.then");
        let r = store.get(&callback).await.expect("read").unwrap_or_else(|| panic!("{callback} was never sent"));
        let runs = bodies.get(&callback).copied().unwrap_or(0);
        if r.status == Status::Complete {
            assert!(runs >= 1, "{callback} is complete, but its body never ran to its end");
        }
        assert!(runs <= r.attempts.max(1), "{callback}: {runs} bodies in {} attempt(s): a duplicate ran beside another", r.attempts);
    }
}
