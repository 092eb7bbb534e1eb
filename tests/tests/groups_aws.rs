//! Groups end to end under task-local and DynamoDB Local, through the real
//! lambda backend: the caller records the group and sends each child to
//! the worker binary; the worker that counts the last child sends the
//! callback through Lambda's Invoke API. Lambda delivers some events twice
//! (`--duplicate-deliveries`), and still every body runs once.

mod common;

use std::time::Duration;

use common::task_local;
use serde_json::{Value, json};
use task_runtime::{SendOptions, Status, WaitError, call, group};

use common::faults::Served as Setup;

const LIMIT: Duration = Duration::from_secs(60);

async fn setup() -> &'static Setup {
    static SETUP: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    SETUP.get_or_init(|| Setup::start("groups")).await
}

/// Every test runs on this one runtime: the SDK clients the runtime keeps
/// (built in the first test) pool connections that must outlive any test.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime")).block_on(f)
}

#[test]
fn a_chord_under_duplicate_deliveries_runs_every_body_and_its_callback_once() {
    block_on(async {
        let s = setup().await;
        let mut calls: Vec<_> = (0..40u64).map(|n| call("fault.ok", json!({"n": n}))).collect();
        calls.push(call("fault.until", json!({"path": "/nonexistent/never"})));
        let chord = group(calls).then(call("fault.tally", json!({}))).send().await.expect("sent");
        let total = chord.wait_timeout(LIMIT).await.expect("the callback ran");
        assert_eq!(total, json!((0..40u64).sum::<u64>()));
        let g = chord.group().id().to_owned();
        let status = chord.group().status().await.expect("read").expect("recorded");
        assert_eq!((status.total, status.ended, status.complete, status.failed), (41, 41, 40, 1));
        assert_eq!(status.callback_status, Some(Status::Complete));
        let stats = s.tl.quiet(LIMIT).await;
        let fault = &stats["functions"]["fault"];
        assert!(fault["duplicate_deliveries"].as_u64().is_some_and(|n| n > 0), "some events came twice: {fault}");
        assert_eq!(s.runs(chord.callback_id()), 1, "the callback body ran once");
        for i in 0..40 {
            assert_eq!(s.runs(&format!("{g}.{i}")), 1, "child {i}");
        }
    })
}

#[test]
fn a_chord_that_needs_every_child_complete_fails_naming_the_child() {
    block_on(async {
        let s = setup().await;
        let calls = vec![call("fault.ok", json!({"n": 1})), call("fault.until", json!({"path": "/nonexistent/never"}))];
        let chord = group(calls).then(call("fault.tally", json!({}))).only_if_all_complete().send().await.expect("sent");
        let Err(WaitError::Failed { failure, .. }) = chord.wait_timeout(LIMIT).await else { panic!("the callback must not run") };
        assert!(failure.message.contains(&format!("{}.1 failed", chord.group().id())) && failure.message.contains("is not there yet"), "{}", failure.message);
        s.tl.quiet(LIMIT).await;
        assert_eq!(s.runs(chord.callback_id()), 0);
    })
}

#[test]
fn a_delayed_group_cancelled_takes_its_schedules_down_and_its_callback_never_runs() {
    block_on(async {
        let s = setup().await;
        let chord = group((0..3u64).map(|n| call("fault.ok", json!({"n": n}))).collect::<Vec<_>>())
            .options(SendOptions::default().delay(Duration::from_secs(3600)))
            .then(call("fault.tally", json!({})))
            .send()
            .await
            .expect("sent");
        let schedules: Value = serde_json::from_str(&task_local::http_get(&format!("{}/schedules", s.tl.endpoint)).await).expect("json");
        let named = |v: &Value| {
            let names = v["Schedules"].as_array().into_iter().flatten().filter_map(|s| s["Name"].as_str());
            names.filter(|name| name.contains(chord.group().id())).count()
        };
        assert_eq!(named(&schedules), 3, "one schedule a child: {schedules}");
        assert_eq!(chord.cancel().await.expect("cancelled"), 3);
        let schedules: Value = serde_json::from_str(&task_local::http_get(&format!("{}/schedules", s.tl.endpoint)).await).expect("json");
        assert_eq!(named(&schedules), 0, "{schedules}");
        assert!(matches!(chord.wait_timeout(LIMIT).await, Err(WaitError::Cancelled { .. })));
        assert_eq!(s.runs(chord.callback_id()), 0);
    })
}

#[test]
fn a_chain_under_duplicate_deliveries_runs_each_step_once_and_stops_at_a_failed_one() {
    block_on(async {
        let s = setup().await;
        let same = || task_runtime::step("fault.ok", "n", json!({}));
        let chain = call("fault.ok", json!({"n": 5})).then(same()).then(same()).then(same()).send().await.expect("sent");
        assert_eq!(chain.wait_timeout(LIMIT).await.expect("completed"), json!(5));
        let stopped = call("fault.ok", json!({"n": 1}))
            // `1` is no path: step 1 fails (bad_args) and the chain stops there.
            .then(task_runtime::step("fault.until", "path", json!({})))
            .then(same())
            .send()
            .await
            .expect("sent");
        let err = stopped.wait_timeout(LIMIT).await.expect_err("step 1 fails");
        assert!(matches!(&err, WaitError::ChainStep { step: 1, .. }), "{err}");
        s.tl.quiet(LIMIT).await;
        for id in chain.call_ids() {
            assert_eq!(s.runs(&id), 1, "{id}");
        }
        let ids = stopped.call_ids();
        assert_eq!((s.runs(&ids[0]), s.runs(&ids[2])), (1, 0), "the step after the failed one never ran");
    })
}

#[test]
fn a_map_with_max_concurrency_runs_at_most_that_many_at_once_across_instances() {
    block_on(async {
        let s = setup().await;
        let calls = (0..12).map(|_| call("fault.span", json!({"ms": 150})));
        let chord = task_runtime::Group::from_calls(calls.collect::<Vec<_>>())
            .max_concurrency(2)
            .then(call("fault.tally", json!({})))
            .send()
            .await
            .expect("sent");
        assert_eq!(chord.wait_timeout(LIMIT).await.expect("the callback ran"), json!(12 * 150));
        let ids: Vec<String> = (0..12).map(|i| format!("{}.{i}", chord.group().id())).collect();
        s.tl.quiet(LIMIT).await;
        assert_eq!(s.most_at_once(&ids), 2, "at most 2 bodies at once, and 2 reached");
        for id in &ids {
            let r = task_runtime::get_async_response(id).await.expect("read").expect("stored");
            assert_eq!(r.status, Status::Complete, "{id}");
        }
    })
}
