//! Schedules declared next to their task (`#[task(schedule = "rate(1 hour)",
//! schedule_args = (..))]`), keep-warm declared with [`keep_warm!`](crate::keep_warm!), and the
//! worker's manifest of both (with its tasks and event handlers) that the
//! SAM template and task-local are made from.
//!
//! Each run of a schedule is a normal task call: its id is
//! `schedule:TASK:<scheduled time>`, so a duplicate delivery or a retry of
//! one tick runs once, and the latest run is noted under `latest:TASK` ([`crate::latest_run`]).

use serde_json::{Map, Value, json};

use crate::envelope::{Envelope, MARKER, VERSION, WARMUP_MARKER};
use crate::error::DispatchError;
use crate::registry::TaskSpec;

/// One scheduled task, as `#[task(schedule = ..)]` declares it.
#[derive(Debug)]
pub struct ScheduleDef {
    /// The task.
    pub spec: TaskSpec,
    /// `rate(...)`, `cron(...)` or `at(...)`, checked at compile time.
    pub expression: &'static str,
    /// The arguments of each run.
    pub args: fn() -> Result<Map<String, Value>, DispatchError>,
}

/// Every scheduled task linked into this binary.
#[linkme::distributed_slice]
pub static SCHEDULES: [ScheduleDef];

/// A keep-warm ping, as [`keep_warm!`](crate::keep_warm!) declares it.
#[derive(Debug)]
pub struct KeepWarm {
    /// How often: `rate(...)` or `cron(...)`.
    pub every: &'static str,
    /// How many instances to keep warm.
    pub instances: u32,
}

/// Every keep-warm declaration linked into this binary (one is enough).
#[linkme::distributed_slice]
pub static KEEP_WARM: [KeepWarm];

/// Keep this function warm: ping it `every` so often, fanning out to keep
/// `instances` instances warm (see the README's keep-warm section). The
/// ping goes into the function's manifest, and from there into its
/// template and task-local.
///
/// ```
/// task_runtime::keep_warm!(every = "rate(5 minutes)", instances = 3);
/// ```
#[macro_export]
macro_rules! keep_warm {
    (every = $every:literal, instances = $instances:literal $(,)?) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::KEEP_WARM)]
            #[linkme(crate = $crate::__private::linkme)]
            static __KEEP_WARM: $crate::__private::KeepWarm = $crate::__private::KeepWarm { every: $every, instances: $instances };
        };
    };
}

/// The id prefix of the runs of schedule `task`.
pub(crate) fn run_id_prefix(task: &str) -> String {
    format!("schedule:{task}:")
}

/// The placeholder EventBridge Scheduler replaces with the time a run was
/// due (`2022-03-22T18:59:43Z`): the same for every attempt at one tick.
/// (Not `<aws.scheduler.execution-id>`: Scheduler assigns one "for each
/// attempted invocation of a target", so a retried tick would run twice.)
/// <https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html>
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// The message a schedule sends: the task message, its id made of the
/// time the run was due ([`SCHEDULED_TIME`], filled in by the scheduler),
/// so that every delivery and every retry of one tick is one call.
pub fn message(def: &ScheduleDef) -> Result<String, DispatchError> {
    let mut env = Envelope::new(def.spec.name, (def.args)()?, def.spec.capture_response, def.spec.retries.unwrap_or(2));
    env.id = format!("{}{SCHEDULED_TIME}", run_id_prefix(def.spec.name));
    env.sent_at_ms = 0;
    env.schedule = Some(def.spec.name.to_owned());
    Ok(serde_json::to_string(&env).unwrap_or_default())
}

/// Whether `env` is, argument for argument, a run of a schedule of this
/// binary: then it needs no signature (a schedule's message is written into
/// the template, where no key may be; anyone who could send it could only
/// make the same run happen).
pub(crate) fn is_registered_run(env: &Envelope) -> bool {
    env.schedule.as_deref() == Some(env.task.as_str())
        && env.id.starts_with(&run_id_prefix(&env.task))
        && SCHEDULES.iter().any(|d| d.spec.name == env.task && (d.args)().is_ok_and(|args| args == *env.args))
}

/// The worker's manifest: its tasks, schedules (with their messages),
/// event handlers and keep-warm pings, as JSON.
pub fn manifest() -> Value {
    let mut tasks: Vec<Value> = crate::registry::TASKS
        .iter()
        .map(|d| {
            let (retry, limits) = (&d.spec.retry, &d.spec.limits);
            let mut task = json!({"name": d.spec.name, "capture_response": d.spec.capture_response, "retries": d.spec.retries, "timeout_ms": d.spec.timeout_ms});
            // Only what a task declares, so that a task without options reads as before.
            let options = [
                ("function", json!(d.spec.function)),
                ("retry_backoff_ms", json!(retry.backoff_ms)),
                ("retry_backoff_max_ms", json!(retry.backoff_max_ms)),
                ("retry_jitter", if retry.jitter { Value::Null } else { json!(false) }),
                ("concurrency", json!(limits.concurrency)),
                ("concurrency_key", json!(limits.concurrency_key)),
                ("rate_limit", limits.rate.map_or(Value::Null, |r| json!({"count": r.count, "per_ms": r.per_ms}))),
                ("rate_limit_key", json!(limits.rate_key)),
            ];
            for (name, value) in options.into_iter().filter(|(_, v)| !v.is_null()) {
                task[name] = value;
            }
            task
        })
        .collect();
    tasks.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut schedules: Vec<Value> = SCHEDULES
        .iter()
        .map(|d| match message(d) {
            Ok(input) => json!({"task": d.spec.name, "expression": d.expression, "input": input}),
            Err(e) => json!({"task": d.spec.name, "expression": d.expression, "error": e.to_string()}),
        })
        .collect();
    schedules.sort_by(|a, b| a["task"].as_str().cmp(&b["task"].as_str()));
    let mut handlers: Vec<&str> = crate::handlers::HANDLERS.iter().map(|h| h.kind.as_str()).collect();
    handlers.sort_unstable();
    let keep_warm: Vec<Value> = KEEP_WARM
        .iter()
        .map(|k| json!({"every": k.every, "instances": k.instances, "input": json!({WARMUP_MARKER: {"instances": k.instances}}).to_string()}))
        .collect();
    json!({MARKER: VERSION, "tasks": tasks, "schedules": schedules, "event_handlers": handlers, "keep_warm": keep_warm})
}

