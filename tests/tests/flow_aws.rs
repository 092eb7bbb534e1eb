//! Retry policies and flow limits end to end under task-local and DynamoDB
//! Local, through the same AWS path as production: the worker binary
//! writes `retrying` with the next attempt's time and sends the call again
//! itself (a short gap waited in place and invoked through Lambda's Invoke
//! API, a longer one through EventBridge Scheduler's `CreateSchedule`).
//! Lambda delivers some events twice (`--duplicate-deliveries`): a late
//! duplicate of a delivery the runtime re-sent runs nothing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::task_local::{self, TaskLocal};
use serde_json::json;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Status, get_async_response};

struct Setup {
    tl: TaskLocal,
    marks: std::path::PathBuf,
    spans: std::path::PathBuf,
}

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:fault";
const LIMIT: Duration = Duration::from_secs(90);

async fn setup() -> &'static Setup {
    static SETUP: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    SETUP
        .get_or_init(|| async {
            let table = common::table_name("flow");
            DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
            let marks = std::env::temp_dir().join(format!("flow-marks-{}.txt", uuid::Uuid::new_v4().simple()));
            let spans = std::env::temp_dir().join(format!("flow-spans-{}.txt", uuid::Uuid::new_v4().simple()));
            let worker = task_local::built("fault-worker").display().to_string();
            let mut args: Vec<String> = ["--no-schedules", "--function", &format!("fault={worker}"), "--duplicate-deliveries", "0.3", "--retry-delays", "200ms,200ms", "--concurrency", "12"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for e in [
                format!("TASK_RESPONSE_TABLE={table}"),
                format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
                format!("FAULT_MARKS={}", marks.display()),
                format!("FAULT_SPANS={}", spans.display()),
                "TASK_SCHEDULER_ROLE_ARN=arn:aws:iam::000000000000:role/scheduler-invokes-fault".to_owned(),
            ] {
                args.extend(["--env".to_owned(), e]);
            }
            let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
            common::lambda_config(&tl.endpoint, ARN, &table).install().expect("install once");
            Setup { tl, marks, spans }
        })
        .await
}

/// Every test runs on this one runtime: the SDK clients the runtime keeps
/// (built in the first test) pool connections that must outlive any test.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime")).block_on(f)
}

/// The times (epoch µs) of each `what` line the worker noted, by call id.
fn noted(s: &Setup, what: &str) -> HashMap<String, Vec<u64>> {
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for line in std::fs::read_to_string(&s.spans).unwrap_or_default().lines() {
        let mut parts = line.split(' ');
        if let (Some(id), Some(w), Some(at)) = (parts.next(), parts.next(), parts.next().and_then(|t| t.parse().ok()))
            && w == what
        {
            out.entry(id.to_owned()).or_default().push(at);
        }
    }
    out
}

/// How many bodies ran to their end for call `id`.
fn runs(s: &Setup, id: &str) -> usize {
    std::fs::read_to_string(&s.marks).unwrap_or_default().lines().filter(|l| *l == id).count()
}

fn gaps_ms(times: &[u64]) -> Vec<u64> {
    times.windows(2).map(|w| (w[1] - w[0]) / 1000).collect()
}

#[test]
fn six_attempts_past_lambda_s_three_with_doubling_gaps_through_invoke_and_scheduler() {
    block_on(async {
        let s = setup().await;
        let h = task_runtime::send("fault.persist", json!({"succeed_on": 6}), Default::default()).await.expect("sent");
        assert_eq!(h.wait_timeout(LIMIT).await.expect("completed"), json!(6));
        let r = get_async_response(h.id()).await.expect("read").expect("recorded");
        assert_eq!((r.status, r.attempts), (Status::Complete, 6));
        let attempts = noted(s, "attempt").remove(h.id()).unwrap_or_default();
        let gaps = gaps_ms(&attempts);
        assert_eq!(gaps.len(), 5, "one body a attempt, duplicates and all: {gaps:?}");
        for (gap, least) in gaps.iter().zip([200, 400, 800, 1_600, 3_200]) {
            assert!(*gap >= least, "a gap of {gap} ms, under the policy's {least} ms: {gaps:?}");
        }
        assert_eq!(runs(s, h.id()), 1);
        let stats = s.tl.quiet(LIMIT).await;
        let fault = &stats["functions"]["fault"];
        // The runtime's re-sends answered success: Lambda retried none of them.
        assert_eq!((fault["retries"].as_u64(), fault["function_error"].as_u64()), (Some(0), Some(0)), "{fault}");
    })
}

#[test]
fn retry_after_waits_its_own_gap_through_a_one_time_schedule() {
    block_on(async {
        let s = setup().await;
        let h = task_runtime::send("fault.later", json!({"ms": 2_500}), Default::default()).await.expect("sent");
        // Between the attempts the item says when the next one is due.
        let mut next = None;
        for _ in 0..400 {
            let r = get_async_response(h.id()).await.expect("read").expect("recorded");
            if r.status == Status::Retrying {
                next = r.run_at;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(next.is_some(), "the call read retrying with its next attempt's time");
        assert_eq!(h.wait_timeout(LIMIT).await.expect("completed"), json!(2));
        let gaps = gaps_ms(&noted(s, "attempt").remove(h.id()).unwrap_or_default());
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0] >= 2_500, "retry_after(2.5 s): {gaps:?}");
    })
}
