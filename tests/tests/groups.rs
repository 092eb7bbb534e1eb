//! Groups, chords and chains on the embedded local backend: the API as the README
//! writes it, through `#[task]`'s `call`, the real worker and the memory
//! store.

use std::collections::BTreeMap;
use std::sync::{Mutex, Once};
use std::time::Duration;

use serde_json::json;
use task_runtime::{
    Config, DispatchError, Failure, FailureKind, GroupHandle, GroupResults, SendOptions, Status, TaskError, TaskResult, WaitError, call,
    group, group_status, task,
};

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Config::local().with_local_retry_delay(Duration::from_millis(5)).install().expect("the first install succeeds");
    });
}

const LIMIT: Duration = Duration::from_secs(20);

#[task(name = "groups.square")]
async fn square(n: u64) -> TaskResult<u64> {
    match n {
        13 => Err(TaskError::fail(format!("{n} is unlucky"))),
        _ => Ok(n * n),
    }
}

/// How many times the callback body ran, by group.
static SUMS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

fn sums(group: &str) -> u32 {
    SUMS.lock().expect("not poisoned").get(group).copied().unwrap_or(0)
}

/// A chord's callback: reads every child's outcome through the group.
#[task(name = "groups.sum")]
async fn sum(offset: u64) -> TaskResult<u64> {
    let group = task_runtime::current().and_then(|c| c.callback_of).ok_or_else(|| TaskError::fail("not run as a callback"))?;
    *SUMS.lock().expect("not poisoned").entry(group.clone()).or_default() += 1;
    let outcomes = GroupHandle::<u64>::from_id(group).wait().await.map_err(|e| TaskError::fail(e.to_string()))?;
    Ok(offset + outcomes.into_iter().flatten().sum::<u64>())
}

#[tokio::test]
async fn a_group_waits_for_every_child_and_gives_each_outcome_in_call_order() {
    setup();
    let g = group((0..20).map(square::call).collect()).send().await.expect("sent");
    let all: Vec<Result<u64, Failure>> = g.wait_timeout(LIMIT).await.expect("every child ends");
    assert_eq!(all.len(), 20);
    for (n, outcome) in all.iter().enumerate() {
        match n {
            13 => assert!(outcome.as_ref().is_err_and(|f| f.kind == FailureKind::Failed && f.message.contains("13 is unlucky")), "{outcome:?}"),
            _ => assert_eq!(outcome.as_ref().ok(), Some(&((n * n) as u64)), "child {n}"),
        }
    }
    let status = group_status(g.id()).await.expect("reads").expect("recorded");
    assert_eq!((status.total, status.ended, status.complete, status.failed, status.cancelled), (20, 20, 19, 1, 0));
    assert!(status.all_ended() && status.callback.is_none());
    // Each child is an ordinary call with its own id.
    let child = task_runtime::get_async_response(&format!("{}.13", g.id())).await.expect("reads").expect("stored");
    assert_eq!(child.status, Status::Failed);
}

#[tokio::test]
async fn a_chord_runs_its_callback_once_with_every_outcome() {
    setup();
    let chord = group((1..=10).map(square::call).collect()).then(sum::call(1000)).send().await.expect("sent");
    assert_eq!(chord.wait_timeout(LIMIT).await.expect("the callback ran"), 1000 + (1..=10).map(|n| n * n).sum::<u64>());
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(sums(chord.group().id()), 1, "the callback body ran once");
    let status = chord.group().status().await.expect("reads").expect("recorded");
    assert_eq!(status.callback_status, Some(Status::Complete));
    assert_eq!(status.callback.as_deref(), Some(chord.callback_id()));
}

#[tokio::test]
async fn a_chord_that_needs_every_child_complete_ends_failed_naming_the_failed_child() {
    setup();
    let chord = group((10..=14).map(square::call).collect()).then(sum::call(0)).only_if_all_complete().send().await.expect("sent");
    let err = chord.wait_timeout(LIMIT).await.expect_err("the callback does not run");
    let WaitError::Failed { failure, .. } = err else { panic!("{err:?}") };
    assert!(failure.message.contains(&format!("{}.3 failed", chord.group().id())), "{}", failure.message);
    assert!(failure.message.contains("13 is unlucky") && failure.message.contains("1 of 5 did not"), "{}", failure.message);
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(sums(chord.group().id()), 0, "the callback body never ran");
}

#[tokio::test]
async fn calls_by_name_make_a_group_too() {
    setup();
    let calls = (2..5).map(|n| call("groups.square", json!({"n": n}))).collect();
    let all = group(calls).send().await.expect("sent").wait_timeout(LIMIT).await.expect("ended");
    let values: Vec<_> = all.into_iter().map(|o| o.ok()).collect();
    assert_eq!(values, vec![Some(json!(4)), Some(json!(9)), Some(json!(16))]);
}

#[task(name = "groups.fire_and_forget", capture_response = false)]
async fn fire_and_forget(n: u64) -> u64 {
    n
}

#[tokio::test]
async fn a_group_refuses_calls_it_cannot_count_and_sends_nothing() {
    setup();
    let mixed = group(vec![square::call(1), fire_and_forget::call(2)]);
    let e = mixed.send().await.expect_err("call 1 is not captured");
    assert!(matches!(&e, DispatchError::BadGroup { problem, .. } if problem.contains("call 1 (task `groups.fire_and_forget`)")), "{e}");
    let e = group(Vec::<task_runtime::Call<u64>>::new()).send().await.expect_err("empty");
    assert!(e.to_string().contains("1 to 100000 calls"), "{e}");
    let e = group(vec![call("groups.square", json!([1]))]).send().await.expect_err("args not an object");
    assert!(matches!(&e, DispatchError::GroupChild { index: 0, .. }) && e.to_string().contains("an array"), "{e}");
}

#[tokio::test]
async fn sending_a_group_again_under_its_id_sends_only_what_it_lacks() {
    setup();
    let id = format!("again-{}", uuid::Uuid::new_v4());
    let first = group((0..3).map(square::call).collect()).options(SendOptions::default().id(&id)).send().await.expect("sent");
    assert!(!first.is_existing());
    first.wait_timeout(LIMIT).await.expect("ended");
    let again = group((0..3).map(square::call).collect()).options(SendOptions::default().id(&id)).send().await.expect("sent");
    assert!(again.is_existing());
    let status = again.status().await.expect("reads").expect("recorded");
    assert_eq!((status.ended, status.complete), (3, 3), "no child ran or was counted twice");
    for i in 0..3 {
        let r = task_runtime::get_async_response(&format!("{id}.{i}")).await.expect("reads").expect("stored");
        assert_eq!(r.attempts, 1, "child {i}");
    }
}

#[tokio::test]
async fn cancelling_a_delayed_chord_ends_every_child_and_its_callback_never_runs() {
    setup();
    let chord = group((1..=4).map(square::call).collect())
        .options(SendOptions::default().delay(Duration::from_secs(3600)))
        .then(sum::call(0))
        .send()
        .await
        .expect("sent");
    assert_eq!(chord.cancel().await.expect("cancelled"), 4);
    let status = chord.group().status().await.expect("reads").expect("recorded");
    assert_eq!((status.ended, status.cancelled, status.callback_status), (4, 4, Some(Status::Cancelled)));
    let all = chord.group().wait_timeout(LIMIT).await.expect("every child ended");
    assert!(all.iter().all(|o| o.as_ref().is_err_and(|f| f.kind == FailureKind::Cancelled)), "{all:?}");
    assert!(matches!(chord.wait_timeout(LIMIT).await, Err(WaitError::Cancelled { .. })));
    assert_eq!(sums(chord.group().id()), 0);
}

#[task(name = "groups.add")]
async fn add(n: u64, plus: u64) -> TaskResult<u64> {
    if plus == 13 {
        return Err(TaskError::fail("13 is unlucky"));
    }
    Ok(n + plus)
}

#[tokio::test]
async fn a_chain_passes_each_value_on_and_resolves_to_the_last() {
    setup();
    let chain = square::call(3).then(add::step(1)).then(add::step(100)).send().await.expect("sent");
    assert_eq!(chain.wait_timeout(LIMIT).await.expect("every step completed"), 110);
    // Each step is an ordinary call with its own id.
    let ids = chain.call_ids();
    assert_eq!(ids, vec![chain.id().to_owned(), format!("{}.step1", chain.id()), format!("{}.step2", chain.id())]);
    let second = task_runtime::get_async_response(&ids[1]).await.expect("reads").expect("stored");
    assert_eq!((second.task.as_str(), second.response), ("groups.add", Some(json!(10))));
}

#[tokio::test]
async fn a_failed_step_stops_the_chain_and_the_handle_names_it() {
    setup();
    let chain = square::call(2).then(add::step(13)).then(add::step(1)).send().await.expect("sent");
    let err = chain.wait_timeout(LIMIT).await.expect_err("step 1 fails");
    let WaitError::ChainStep { step, source, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*step, 1, "{err}");
    assert!(matches!(&**source, WaitError::Failed { failure, .. } if failure.message.contains("13 is unlucky")), "{err}");
    task_runtime::wait_for_local_tasks().await;
    assert_eq!(task_runtime::get_async_response(&chain.call_ids()[2]).await.expect("reads"), None, "the step after is never sent");
}

#[tokio::test]
async fn chains_by_name_and_chains_that_cannot_be_sent() {
    setup();
    let chain = call("groups.square", json!({"n": 4})).then(task_runtime::step("groups.add", "n", json!({"plus": 4}))).send().await.expect("sent");
    assert_eq!(chain.wait_timeout(LIMIT).await.expect("completed"), json!(20));
    let e = fire_and_forget::call(1).then(add::step(1)).send().await.expect_err("not captured");
    assert!(matches!(&e, DispatchError::BadChain { task, .. } if task == "groups.fire_and_forget"), "{e}");
    let e = call("groups.square", json!({"n": 1})).then(task_runtime::step("groups.add", "n", json!(1))).send().await.expect_err("args");
    assert!(matches!(&e, DispatchError::ArgsNotObject { task, found: "a number" } if task == "groups.add"), "{e}");
}

/// Bodies of `groups.held` running now, and the most at once.
static HELD: (std::sync::atomic::AtomicU32, std::sync::atomic::AtomicU32) = (std::sync::atomic::AtomicU32::new(0), std::sync::atomic::AtomicU32::new(0));

#[task(name = "groups.held")]
async fn held(n: u64) -> u64 {
    use std::sync::atomic::Ordering::SeqCst;
    let now = HELD.0.fetch_add(1, SeqCst) + 1;
    HELD.1.fetch_max(now, SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    HELD.0.fetch_sub(1, SeqCst);
    n
}

#[tokio::test]
async fn a_map_runs_at_most_its_max_concurrency_at_once_and_every_item() {
    setup();
    let chord = held::map(0..30u64).max_concurrency(3).then(sum::call(0)).send().await.expect("sent");
    let status = chord.group().status().await.expect("reads").expect("recorded");
    assert!(status.ended < 30, "not all at once: {status:?}");
    assert_eq!(chord.wait_timeout(LIMIT).await.expect("the callback ran"), (0..30).sum::<u64>());
    assert_eq!(HELD.1.load(std::sync::atomic::Ordering::SeqCst), 3, "at most 3 bodies at once, and 3 reached");
    let outcomes = chord.group().wait().await.expect("ended");
    assert_eq!(outcomes.into_iter().map(|o| o.ok()).collect::<Vec<_>>(), (0..30).map(Some).collect::<Vec<_>>());
    let e = held::map(vec![1]).max_concurrency(0).send().await.expect_err("zero");
    assert!(e.to_string().contains("max_concurrency is 0"), "{e}");
}

#[tokio::test]
async fn cancelling_a_map_cancels_the_children_waiting_for_their_turn() {
    setup();
    let g = square::map(0..20u64)
        .max_concurrency(2)
        .options(SendOptions::default().delay(Duration::from_secs(3600)))
        .send()
        .await
        .expect("sent");
    assert_eq!(g.cancel().await.expect("cancelled"), 20);
    let status = g.status().await.expect("reads").expect("recorded");
    assert_eq!((status.ended, status.cancelled), (20, 20));
    // (No wait for local tasks: the two sent at once hold their hour-long timers.)
}

/// A chord's callback that takes its group's outcomes as an argument: the
/// squares that completed, and each child that did not, by index.
#[task(name = "groups.report")]
async fn report(results: GroupResults<u64>) -> (u64, Vec<(usize, String)>) {
    let failed = results.failed().map(|(i, f)| (i, format!("{}: {}", f.kind, f.message))).collect();
    (results.completed().sum(), failed)
}

#[tokio::test]
async fn a_callback_takes_its_groups_results_as_an_argument_failed_children_included() {
    setup();
    let chord = group((11..=14).map(square::call).collect()).then(report::call()).send().await.expect("sent");
    let (total, failed) = chord.wait_timeout(LIMIT).await.expect("the callback ran");
    assert_eq!(total, 121 + 144 + 196);
    assert_eq!(failed, [(2, "failed: 13 is unlucky".to_owned())], "the failed child is counted and named");
}

#[tokio::test]
async fn a_results_callback_sent_alone_fails_once_and_says_it_runs_only_as_a_callback() {
    setup();
    let handle = report::call().send().await.expect("sent");
    let err = handle.wait_timeout(LIMIT).await.expect_err("not a callback");
    let WaitError::Failed { failure, attempts, .. } = err else { panic!("{err:?}") };
    assert!(failure.message.contains("runs only as a chord's callback"), "{}", failure.message);
    assert_eq!(attempts, 1, "a permanent failure: no retry could make it a callback");
}

#[tokio::test]
async fn a_chord_takes_the_groups_options_after_then() {
    setup();
    let id = format!("chord-options-{}", uuid::Uuid::new_v4());
    let chord = square::map([1, 2, 3]).then(report::call()).options(SendOptions::default().id(&id)).send().await.expect("sent");
    assert_eq!(chord.group().id(), id);
    assert_eq!(chord.wait_timeout(LIMIT).await.expect("the callback ran"), (14, vec![]));
}

#[tokio::test]
async fn child_ids_reads_the_groups_size() {
    setup();
    let sent = square::map(0..5u64).send().await.expect("sent");
    let ids = GroupHandle::<u64>::from_id(sent.id()).child_ids().await.expect("reads").expect("recorded");
    assert_eq!(ids, sent.child_ids_of(5));
    // Each child's item is there once it has run (a child is sent with no
    // pending write: its `begin` creates it).
    sent.wait().await.expect("the group ran");
    for id in &ids {
        assert!(task_runtime::get_async_response(id).await.expect("reads").is_some(), "{id} is a child");
    }
    let unknown = GroupHandle::<u64>::from_id(format!("no-such-group-{}", uuid::Uuid::new_v4()));
    assert_eq!(unknown.child_ids().await.expect("reads"), None);
}

#[task(name = "groups.slow")]
async fn slow(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test]
async fn a_chord_whose_child_has_not_ended_gives_up_saying_how_many_ended() {
    setup();
    let chord = slow::map([0, 30_000]).then(report::call()).send().await.expect("sent");
    let err = chord.wait_timeout(Duration::from_millis(500)).await.expect_err("a child is still running");
    let WaitError::GroupTimeout { id, ended, total, .. } = err else { panic!("{err:?}") };
    assert_eq!((id.as_str(), total), (chord.group().id(), 2));
    assert!(ended < 2, "{ended} of 2 ended");
}

/// A synchronous callback takes its group's results too (read before its
/// body goes to the blocking pool).
#[task(name = "groups.report_sync")]
fn report_sync(results: GroupResults<u64>) -> usize {
    results.failed().count() * 100 + results.completed().count()
}

#[tokio::test]
async fn a_synchronous_callback_takes_its_groups_results() {
    setup();
    let chord = square::map([2, 13, 4]).then(report_sync::call()).send().await.expect("sent");
    assert_eq!(chord.wait_timeout(LIMIT).await.expect("the callback ran"), 102);
}
