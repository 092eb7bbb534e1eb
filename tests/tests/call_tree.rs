//! The tree of calls and traces across calls, on the embedded local
//! backend: each call records the call that sent it, `get_children` reads
//! one level, and a task's trace continues in the calls it sends.

use std::sync::Mutex;
use std::time::Duration;

use task_runtime::{AsyncResponse, Config, Status, TaskError, TaskResult, get_async_response, get_children, task};

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        Config::local().with_local_retry_delay(Duration::from_millis(5)).install().expect("the first install succeeds");
    });
}

async fn finished(id: &str) -> AsyncResponse {
    for _ in 0..2000 {
        if let Some(r) = get_async_response(id).await.expect("the memory store reads")
            && r.status.is_finished()
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {id} did not finish within 10 s");
}

/// What each run of a task saw of itself: (id, parent, trace id).
static SEEN: Mutex<Vec<(String, Option<String>, Option<String>)>> = Mutex::new(Vec::new());

fn note() {
    if let Some(ctx) = task_runtime::current() {
        let trace = ctx.trace_id();
        SEEN.lock().unwrap_or_else(|p| p.into_inner()).push((ctx.id, ctx.parent, trace));
    }
}

fn seen(id: &str) -> (Option<String>, Option<String>) {
    let all = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let (_, parent, trace) = all.iter().find(|(i, _, _)| i == id).unwrap_or_else(|| panic!("{id} never ran"));
    (parent.clone(), trace.clone())
}

#[task]
async fn leaf(n: u32) -> u32 {
    note();
    n
}

#[task]
async fn branch(n: u32) -> TaskResult<Vec<String>> {
    note();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(leaf(i).await.map_err(TaskError::retry)?.id().to_owned());
    }
    Ok(ids)
}

#[task]
async fn root(branches: u32) -> TaskResult<Vec<String>> {
    note();
    let mut ids = Vec::new();
    for i in 1..=branches {
        ids.push(branch(i).await.map_err(TaskError::retry)?.id().to_owned());
    }
    Ok(ids)
}

#[tokio::test]
async fn each_call_names_the_call_that_sent_it_and_children_are_listed_in_order() {
    setup();
    let top = root(2).await.expect("dispatch");
    let branches: Vec<String> = top.wait().await.expect("complete");
    for b in &branches {
        finished(b).await;
    }
    task_runtime::wait_for_local_tasks().await;

    // A call from outside any task has no parent.
    assert_eq!(get_async_response(top.id()).await.expect("read").map(|r| r.parent), Some(None));
    let children = get_children(top.id(), 100).await.expect("children");
    let mut listed: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
    assert!(children.windows(2).all(|w| w[0].response.created_at <= w[1].response.created_at), "oldest first");
    listed.sort();
    let mut sent = branches.clone();
    sent.sort();
    assert_eq!(listed, sent);
    assert!(children.iter().all(|c| c.response.parent.as_deref() == Some(top.id()) && c.response.task == branch::NAME));
    // The second branch sent two leaves, each with the branch as its parent.
    let leaves = get_children(&branches[1], 100).await.expect("children");
    assert_eq!(leaves.len(), 2);
    for l in &leaves {
        let r = finished(&l.id).await;
        assert_eq!((r.status, r.parent.as_deref(), r.task.as_str()), (Status::Complete, Some(branches[1].as_str()), leaf::NAME));
    }
    // A limit is kept, and a leaf has no children.
    assert_eq!(get_children(top.id(), 1).await.expect("children").len(), 1);
    assert!(get_children(&leaves[0].id, 100).await.expect("children").is_empty());
}

#[tokio::test]
async fn a_trace_runs_from_the_first_call_through_every_call_it_sent() {
    setup();
    let top = root(1).await.expect("dispatch");
    let branches: Vec<String> = top.wait().await.expect("complete");
    let leaves: Vec<String> = finished(&branches[0]).await.response.and_then(|v| serde_json::from_value(v).ok()).expect("the leaf ids");
    finished(&leaves[0]).await;
    let (top_parent, top_trace) = seen(top.id());
    assert_eq!(top_parent, None);
    let trace = top_trace.expect("a call from outside a task starts a trace");
    assert_eq!(trace.len(), 32);
    let (branch_parent, branch_trace) = seen(&branches[0]);
    let (leaf_parent, leaf_trace) = seen(&leaves[0]);
    assert_eq!((branch_parent.as_deref(), branch_trace.as_deref()), (Some(top.id()), Some(trace.as_str())));
    assert_eq!((leaf_parent.as_deref(), leaf_trace.as_deref()), (Some(branches[0].as_str()), Some(trace.as_str())));

    // Another call from outside starts another trace.
    let other = root(0).await.expect("dispatch");
    other.wait().await.expect("complete");
    assert_ne!(seen(other.id()).1, Some(trace));
}

#[tokio::test]
async fn a_chain_step_is_the_child_of_the_step_before() {
    setup();
    let h = leaf::call(4).then(leaf::step()).send().await.expect("dispatch");
    let ids = h.call_ids();
    let (first, last) = (ids[0].clone(), ids[1].clone());
    assert_eq!(h.wait().await.expect("complete"), 4);
    finished(&last).await;
    let r = get_async_response(&last).await.expect("read").expect("found");
    assert_eq!(r.parent.as_deref(), Some(first.as_str()));
    assert_eq!(get_children(&first, 10).await.expect("children").into_iter().map(|c| c.id).collect::<Vec<_>>(), vec![last.clone()]);
    assert_eq!(seen(&last).1, seen(&first).1, "one trace");
}
