//! A schedule's runs, through the worker with signing on: the message a
//! schedule sends (its task's call, named by the time it was due) runs
//! unsigned, since no key may be written into a template; any other
//! unsigned message, even one close to it, is refused.

mod common;

use serde_json::{Value, json};
use task_runtime::envelope::Envelope;
use task_runtime::schedules::{SCHEDULED_TIME, SCHEDULES, manifest, message};
use task_runtime::{Reply, error_type, task};

#[task(name = "tests.schedules.nightly", retries = 1, schedule = "cron(0 3 * * ? *)", schedule_args = (7,))]
async fn nightly(days: u32) -> u32 {
    days
}

/// The message of the run due at `due`, as Scheduler delivers it.
fn run_due(due: &str) -> Envelope {
    let def = SCHEDULES.iter().find(|d| d.spec.name == "tests.schedules.nightly").expect("registered");
    serde_json::from_str(&message(def).expect("a message").replace(SCHEDULED_TIME, due)).expect("an envelope")
}

async fn answer(env: &Envelope) -> Reply {
    let (w, _) = common::memory_worker(Some(b"a key no template holds"));
    w.handle_event(&serde_json::to_value(env).expect("JSON"), &common::invocation()).await.expect("the worker's")
}

#[test]
fn a_schedule_s_message_is_its_task_s_call_named_by_the_scheduled_time() {
    let env = run_due("2026-11-30T03:00:00Z");
    assert_eq!(env.id, "schedule:tests.schedules.nightly:2026-11-30T03:00:00Z");
    assert_eq!((env.task.as_str(), env.schedule.as_deref()), ("tests.schedules.nightly", Some("tests.schedules.nightly")));
    assert_eq!((env.capture, env.retries, env.sent_at_ms), (true, 1, 0));
    assert_eq!(Value::Object(env.args.clone().into_map()), json!({"days": 7}));
    assert!(env.sig.is_none(), "no key may be written into a template");
    let m = manifest();
    let listed = m["schedules"].as_array().into_iter().flatten().find(|s| s["task"] == "tests.schedules.nightly").expect("listed");
    assert_eq!(listed["expression"], "cron(0 3 * * ? *)");
    assert!(listed["input"].as_str().is_some_and(|i| i.contains(SCHEDULED_TIME)), "{listed}");
}

#[tokio::test]
async fn only_a_schedule_s_own_run_passes_unsigned() {
    let run = run_due("2026-11-30T03:00:00Z");
    match answer(&run).await {
        Reply::Success(v) => assert_eq!((v["status"].as_str(), v["id"].as_str()), (Some("complete"), Some(run.id.as_str())), "{v}"),
        other => panic!("the schedule's own run was refused: {other:?}"),
    }
    let refused = |why: &'static str, change: fn(&mut Envelope)| {
        let mut env = run_due("2026-11-30T04:00:00Z");
        change(&mut env);
        (why, env)
    };
    for (why, env) in [
        refused("other arguments", |e| {
            e.args.insert("days".into(), json!(365));
        }),
        refused("not marked as a run", |e| e.schedule = None),
        refused("marked as another schedule's", |e| e.schedule = Some("other".into())),
        refused("an id that is not a run's", |e| e.id = "order-7".into()),
        refused("another schedule's id", |e| e.id = "schedule:other:2026-11-30T04:00:00Z".into()),
        refused("a task with no schedule", |e| {
            e.task = "tests.schedules.plain".into();
            e.schedule = Some(e.task.clone());
            e.id = "schedule:tests.schedules.plain:x".into();
        }),
    ] {
        match answer(&env).await {
            Reply::Error { error_type: t, .. } => assert_eq!(t, error_type::REFUSED, "{why}"),
            other => panic!("{why}: run unsigned: {other:?}"),
        }
    }
}

#[task(name = "tests.schedules.plain")]
async fn plain() {}
