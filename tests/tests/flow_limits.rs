//! Concurrency and rate limits on the local backend: the same worker and
//! the same rules (the memory store) as under task-local. Bodies count
//! themselves in and out, so that how many ran at once is read back.

use std::collections::HashMap;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use task_runtime::{Config, Status, TaskHandle, get_async_response, task};

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Config::local().with_local_retry_delay(Duration::from_millis(5)).install().expect("the first install succeeds");
    });
}

/// Bodies running now, and the most at once, by counter name.
static RUNNING: Mutex<Option<HashMap<&'static str, (usize, usize)>>> = Mutex::new(None);

struct Inside(&'static str);

impl Inside {
    fn enter(name: &'static str) -> Self {
        let mut all = RUNNING.lock().unwrap();
        let (now, most) = all.get_or_insert_with(HashMap::new).entry(name).or_default();
        *now += 1;
        *most = (*most).max(*now);
        Inside(name)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        if let Some((now, _)) = RUNNING.lock().unwrap().as_mut().and_then(|all| all.get_mut(self.0)) {
            *now -= 1;
        }
    }
}

fn most(name: &str) -> usize {
    RUNNING.lock().unwrap().as_ref().and_then(|all| all.get(name)).map_or(0, |(_, most)| *most)
}

#[task(name = "flow.resize", concurrency = 2)]
async fn resize(n: u32) -> u32 {
    let _in = Inside::enter("resize");
    tokio::time::sleep(Duration::from_millis(150)).await;
    n
}

#[task(name = "flow.sync_account", concurrency = 1, concurrency_key = "account")]
async fn sync_account(account: String) -> String {
    let _in = Inside::enter(if account == "acme" { "acme" } else { "globex" });
    let _all = Inside::enter("accounts");
    tokio::time::sleep(Duration::from_millis(150)).await;
    account
}

static SMS_STARTS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

#[task(name = "flow.send_sms", rate_limit = "5/s")]
async fn send_sms(to: String) -> String {
    SMS_STARTS.lock().unwrap().push(Instant::now());
    to
}

async fn all_complete<T: serde::de::DeserializeOwned>(handles: Vec<TaskHandle<T>>) {
    for h in handles {
        tokio::time::timeout(Duration::from_secs(60), h.wait()).await.expect("ends within 60 s").expect("completes");
        let r = get_async_response(h.id()).await.unwrap().unwrap();
        assert_eq!((r.status, r.attempts), (Status::Complete, 1), "a put-off delivery is not an attempt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_two_never_runs_three_bodies_at_once() {
    setup();
    let mut handles = Vec::new();
    for n in 0..8 {
        handles.push(resize(n).await.expect("dispatch"));
    }
    // A slot is given back when its call ends. One kept until its lease
    // lapses (10 s, the default) would hold the next call back that long:
    // 8 calls of 150 ms, 2 at a time, end well inside one lease.
    tokio::time::timeout(Duration::from_secs(9), all_complete(handles))
        .await
        .expect("every slot was given back at its call's end, not when its 10 s lease lapsed");
    assert_eq!(most("resize"), 2, "at most 2 at once, and the limit was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_per_key_runs_one_a_key_and_keys_side_by_side() {
    setup();
    let mut handles = Vec::new();
    for account in ["acme", "globex", "acme", "globex", "acme", "globex"] {
        handles.push(sync_account(account.into()).await.expect("dispatch"));
    }
    all_complete(handles).await;
    assert_eq!((most("acme"), most("globex")), (1, 1), "one at a time per account");
    assert_eq!(most("accounts"), 2, "two accounts ran side by side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spreads_a_burst_over_time() {
    setup();
    let sent = Instant::now();
    let mut handles = Vec::new();
    for i in 0..6 {
        handles.push(send_sms(format!("+1555000{i}")).await.expect("dispatch"));
    }
    all_complete(handles).await;
    let mut starts: Vec<u128> = SMS_STARTS.lock().unwrap().iter().map(|t| t.duration_since(sent).as_millis()).collect();
    starts.sort();
    assert_eq!(starts.len(), 6);
    // 5 a second: let through 200 ms apart (less 50 ms of leeway for
    // clocks); unlimited, the six start within a few ms.
    assert!(starts[5] - starts[0] >= 600, "starts {starts:?}");
}

static REINDEXED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[task(name = "flow.reindex")]
async fn reindex(version: u32) -> u32 {
    REINDEXED.lock().unwrap().push(version);
    version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debounce_runs_only_the_latest_of_a_burst() {
    setup();
    let options = || task_runtime::SendOptions::default().debounce("reindex:shop-7", Duration::from_millis(400));
    let mut handles = Vec::new();
    for version in 1..=5 {
        handles.push(reindex::send_with(options(), version).await.expect("dispatch"));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let last = handles.pop().expect("five");
    assert_eq!(tokio::time::timeout(Duration::from_secs(30), last.wait()).await.expect("in time").expect("the latest runs"), 5);
    for h in handles {
        let err = tokio::time::timeout(Duration::from_secs(30), h.wait()).await.expect("in time").expect_err("superseded");
        assert!(matches!(err, task_runtime::WaitError::Cancelled { .. }), "{err}");
    }
    assert_eq!(*REINDEXED.lock().unwrap(), [5], "only the latest body ran");
    // A send after the window is a burst of its own.
    let alone = reindex::send_with(options(), 6).await.expect("dispatch");
    assert_eq!(alone.wait().await.expect("runs"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_cannot_be_debounced_and_nothing_is_sent() {
    setup();
    let debounced = task_runtime::SendOptions::default().debounce("k", Duration::from_secs(1));
    let err = task_runtime::group(vec![task_runtime::call("flow.reindex", serde_json::json!({"version": 1}))])
        .options(debounced)
        .send()
        .await
        .expect_err("refused");
    assert!(matches!(err, task_runtime::DispatchError::BadGroup { ref problem, .. } if problem.contains("cannot be debounced")), "{err}");
}
