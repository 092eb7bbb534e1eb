//! End to end under task-local and DynamoDB Local, through the real lambda
//! backend: a caller-chosen id sent twice at once invokes once; a delayed
//! call goes through EventBridge Scheduler's API (task-local answers it) and
//! reads `scheduled` until its time; a cancelled one never runs; and a task
//! sent from inside a qualified invocation runs at the same qualifier.

mod common;

use std::time::{Duration, Instant};

use common::task_local::{self, TaskLocal};
use serde_json::{Value, json};
use task_runtime::backend::scheduler::schedule_name;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{SendOptions, Status, WaitError, get_async_response, send};

struct Setup {
    tl: TaskLocal,
    marks: std::path::PathBuf,
}

/// The response table of this binary's setup.
static TABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn setup_table() -> &'static str {
    TABLE.get().expect("set up")
}

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:fault";

async fn setup() -> &'static Setup {
    static SETUP: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    SETUP
        .get_or_init(|| async {
            let table = TABLE.get_or_init(|| common::table_name("options")).clone();
            DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
            let marks = std::env::temp_dir().join(format!("options-marks-{}.txt", uuid::Uuid::new_v4().simple()));
            let worker = task_local::built("fault-worker").display().to_string();
            let args = vec![
                "--no-schedules".to_owned(),
                "--function".to_owned(),
                format!("fault={worker}"),
                "--function".into(),
                format!("plain={worker}"),
                // Only the id test sends here, so its invocations can be counted.
                "--function".into(),
                format!("dedup={worker}"),
                "--env".into(),
                format!("TASK_RESPONSE_TABLE={table}"),
                "--env".into(),
                format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
                "--env".into(),
                format!("FAULT_MARKS={}", marks.display()),
                "--env".into(),
                "plain:TASK_FOLLOW_QUALIFIER=false".into(),
            ];
            let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
            common::lambda_config(&tl.endpoint, ARN, &table).install().expect("install once");
            Setup { tl, marks }
        })
        .await
}

/// How many bodies ran to their end for call `id`.
fn runs(s: &Setup, id: &str) -> usize {
    std::fs::read_to_string(&s.marks).unwrap_or_default().lines().filter(|l| *l == id).count()
}

#[test]
fn one_id_sent_twice_at_once_is_invoked_once() {
    common::block_on(async {
        let s = setup().await;
        let id = format!("order-{}", uuid::Uuid::new_v4());
        let one = || send("fault.ok", json!({"n": 5}), SendOptions::default().id(id.clone()).function("dedup"));
        let (a, b) = tokio::join!(one(), one());
        let (a, b) = (a.expect("send"), b.expect("send"));
        assert_eq!(u8::from(a.is_existing()) + u8::from(b.is_existing()), 1, "one send found the other's call");
        assert_eq!(a.wait_timeout(Duration::from_secs(30)).await.expect("completes"), json!(5));
        let stats = s.tl.quiet(Duration::from_secs(30)).await;
        assert_eq!(stats["functions"]["dedup"]["invocations"], 1, "one invoke: {}", stats["functions"]["dedup"]);
        assert_eq!(runs(s, &id), 1, "one body ran");
    })
}

#[test]
fn a_delayed_call_is_scheduled_then_complete_and_not_before_its_time() {
    common::block_on(async {
        let s = setup().await;
        let sent = Instant::now();
        let h = send("fault.ok", json!({"n": 9}), SendOptions::default().delay(Duration::from_secs(2))).await.expect("send");
        let r = get_async_response(h.id()).await.expect("read").expect("exists");
        assert_eq!(r.status, Status::Scheduled);
        let due = r.run_at.expect("run_at");
        let schedule = common::task_local::http_get(&format!("{}/schedules/{}", s.tl.endpoint, schedule_name(h.id()))).await;
        let schedule: Value = serde_json::from_str(&schedule).expect("GetSchedule answers JSON");
        assert_eq!(schedule["Target"]["Arn"], ARN);
        assert!(schedule["ScheduleExpression"].as_str().is_some_and(|e| e.starts_with("at(")), "{schedule}");
        assert_eq!(schedule["ActionAfterCompletion"], "DELETE");
        assert_eq!(h.wait_timeout(Duration::from_secs(30)).await.expect("completes"), json!(9));
        let r = get_async_response(h.id()).await.expect("read").expect("exists");
        assert!(r.updated_at >= due.saturating_sub(1000), "ran at {} for a due time of {due}", r.updated_at);
        assert!(sent.elapsed() >= Duration::from_millis(1500), "{:?}", sent.elapsed());
        assert_eq!(runs(s, h.id()), 1);
    })
}

#[test]
fn a_cancelled_call_never_runs_and_its_schedule_is_deleted() {
    common::block_on(async {
        let s = setup().await;
        let h = send("fault.ok", json!({"n": 3}), SendOptions::default().delay(Duration::from_secs(2))).await.expect("send");
        h.cancel().await.expect("cancel");
        let gone = common::task_local::http_get(&format!("{}/schedules/{}", s.tl.endpoint, schedule_name(h.id()))).await;
        assert!(gone.contains("does not exist"), "{gone}");
        let waited = h.wait().await;
        assert!(matches!(waited, Err(WaitError::Cancelled { .. })), "{waited:?}");
        // Past its due time, and nothing left in task-local's queue: it never ran.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        s.tl.quiet(Duration::from_secs(30)).await;
        assert_eq!(runs(s, h.id()), 0, "never ran");
        assert_eq!(get_async_response(h.id()).await.expect("read").map(|r| r.status), Some(Status::Cancelled));
        match h.cancel().await {
            Err(e) => assert!(e.to_string().contains("is cancelled"), "{e}"),
            Ok(()) => panic!("a cancelled call cannot be cancelled again"),
        }
    })
}

/// Send `relay` to `target`; it sends `whoami` to its own function by name;
/// returns the ARN `whoami` was invoked as.
async fn relayed(target: &str) -> String {
    let relay = send("fault.relay", json!({}), SendOptions::default().function(target)).await.expect("send");
    let child: String = serde_json::from_value(relay.wait_timeout(Duration::from_secs(30)).await.expect("relay completes")).expect("an id");
    let whoami = task_runtime::TaskHandle::<Option<String>>::from_id(child, "fault.whoami");
    whoami.wait_timeout(Duration::from_secs(30)).await.expect("whoami completes").expect("an ARN")
}

#[test]
fn a_task_sent_from_a_qualified_invocation_runs_at_the_same_qualifier() {
    common::block_on(async {
        setup().await;
        assert_eq!(relayed("fault:live").await, format!("{ARN}:live"));
        assert_eq!(relayed("fault").await, ARN, "an unqualified caller sends unqualified");
        // Opted out (TASK_FOLLOW_QUALIFIER=false): as named.
        assert_eq!(relayed("plain:live").await, "arn:aws:lambda:us-east-1:000000000000:function:plain");
    })
}

/// The raw `ttl` (epoch seconds) of item `id`.
async fn raw_ttl(id: &str) -> u64 {
    let table = setup_table();
    let item = common::dynamodb().get_item().table_name(table).key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into())).consistent_read(true).send().await.expect("get");
    item.item().and_then(|i| i.get("ttl")).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).expect("a ttl")
}

#[test]
fn a_call_delayed_past_the_response_ttl_stays_readable_until_it_runs_and_can_be_cancelled() {
    common::block_on(async {
        setup().await;
        // Responses live a day (the default); this call is due in 30 days.
        let h = send("fault.ok", json!({"n": 1}), SendOptions::default().delay(Duration::from_secs(30 * 86_400))).await.expect("send");
        let r = get_async_response(h.id()).await.expect("read").expect("exists");
        let due_s = r.run_at.expect("run_at") / 1000;
        let ttl = raw_ttl(h.id()).await;
        assert!(ttl >= due_s + 86_400, "the item outlives its due time by the response TTL: ttl {ttl}, due {due_s}");
        h.cancel().await.expect("a call due in 30 days is still there to cancel");
    })
}

#[test]
fn a_delayed_send_whose_schedule_was_refused_takes_its_item_back_and_can_be_sent_again() {
    common::block_on(async {
        let s = setup().await;
        let id = format!("later-{}", uuid::Uuid::new_v4());
        // EventBridge Scheduler refuses a target that does not exist (task-local: not served).
        let refused = send("fault.ok", json!({"n": 4}), SendOptions::default().id(id.clone()).function("nobody").delay(Duration::from_secs(1))).await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(get_async_response(&id).await.expect("read"), None, "the scheduled item was taken back");
        let again = send("fault.ok", json!({"n": 4}), SendOptions::default().id(id.clone()).delay(Duration::from_secs(1))).await.expect("send again");
        assert!(!again.is_existing(), "the retried send is a new call, not the refused one");
        assert_eq!(again.wait_timeout(Duration::from_secs(30)).await.expect("completes"), json!(4));
        assert_eq!(runs(s, &id), 1);
    })
}

#[test]
fn an_id_the_runtime_keeps_for_schedules_is_refused() {
    common::block_on(async {
        setup().await;
        for id in ["latest:fault.tick", "schedule:fault.tick:2026-11-30T10:00:00Z"] {
            match send("fault.ok", json!({"n": 1}), SendOptions::default().id(id)).await {
                Err(e) => assert!(e.to_string().contains("keeps for schedules"), "{e}"),
                Ok(h) => panic!("{id} was sent as {}", h.id()),
            }
        }
    })
}

#[test]
fn cancelling_a_call_whose_item_is_gone_still_takes_its_schedule_down() {
    common::block_on(async {
        let s = setup().await;
        // A schedule left by a call whose item expired (as items made before
        // ttls counted from the due time could): no item, a live schedule.
        let id = format!("orphan-{}", uuid::Uuid::new_v4().simple());
        let target = fault_ok_target(r#"{"task_runtime":1,"task":"fault.ok","id":"x","args":{"n":1}}"#);
        common::create_one_time_schedule(&s.tl.endpoint, &schedule_name(&id), "at(2099-01-01T00:00:00)", target, aws_sdk_scheduler::types::ScheduleState::Enabled).await;
        match task_runtime::cancel(&id).await {
            Err(task_runtime::CancelError::NotFound { .. }) => {}
            other => panic!("{other:?}"),
        }
        let gone = common::task_local::http_get(&format!("{}/schedules/{}", s.tl.endpoint, schedule_name(&id))).await;
        assert!(gone.contains("does not exist"), "the schedule was left in place: {gone}");
    })
}

#[test]
fn a_schedule_created_disabled_never_fires_and_one_enabled_beside_it_does() {
    common::block_on(async {
        let s = setup().await;
        // Both due in two seconds, at the same second.
        let due = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 2;
        let at = aws_smithy_types::DateTime::from_secs(due as i64).fmt(aws_smithy_types::date_time::Format::DateTime).expect("a date");
        let at = format!("at({})", at.trim_end_matches('Z'));
        let (on, off) = (format!("on-{}", uuid::Uuid::new_v4().simple()), format!("off-{}", uuid::Uuid::new_v4().simple()));
        for (id, state) in [(&on, aws_sdk_scheduler::types::ScheduleState::Enabled), (&off, aws_sdk_scheduler::types::ScheduleState::Disabled)] {
            let target = fault_ok_target(&json!({"task_runtime": 1, "task": "fault.ok", "id": id, "args": {"n": 1}}).to_string());
            common::create_one_time_schedule(&s.tl.endpoint, &schedule_name(id), &at, target, state).await;
        }
        // Waited on the enabled one's call, not on a sleep: once it has run, the other was due too.
        let started = Instant::now();
        while get_async_response(&on).await.expect("read").map(|r| r.status) != Some(Status::Complete) {
            assert!(started.elapsed() < Duration::from_secs(30), "the enabled schedule never fired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(get_async_response(&off).await.expect("read").map(|r| r.status), None, "the disabled schedule fired");
        let listed = common::task_local::http_get(&format!("{}/schedules/{}", s.tl.endpoint, schedule_name(&off))).await;
        assert!(listed.contains("\"DISABLED\""), "{listed}");
    })
}

/// A schedule's target: `fault` invoked with `input`.
fn fault_ok_target(input: &str) -> aws_sdk_scheduler::types::Target {
    aws_sdk_scheduler::types::Target::builder()
        .arn(ARN)
        .role_arn("arn:aws:iam::000000000000:role/scheduler-invokes-fault")
        .input(input)
        .build()
        .expect("target")
}
