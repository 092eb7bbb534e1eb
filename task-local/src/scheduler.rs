//! The schedules of the functions served, read from their manifests
//! (`TASK_RUNTIME_MANIFEST=1`): `rate(...)` schedules and keep-warm pings
//! fire as asynchronous invokes, sped up by `--schedule-speedup`; `at(...)`
//! fires once. And EventBridge Scheduler's one-time schedules, as far as
//! delayed tasks need them: `CreateSchedule` (`POST /schedules/{Name}`) of an
//! `at(YYYY-MM-DDTHH:MM:SS)` expression in UTC whose target is a served
//! function, `GetSchedule` and `DeleteSchedule`. At its time a schedule
//! invokes its target asynchronously with its `Input`, as Scheduler does,
//! and is deleted (`ActionAfterCompletion = DELETE`). Answers come in the
//! shape aws-sdk-scheduler parses.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::emulator::{Emulator, Schedule, aws_error};
use crate::stats::now_ms;

/// Fill in EventBridge Scheduler's context attributes, as it does in a
/// target's input: the schedule's ARN, the time the run was due (the same
/// for every attempt at one tick), an execution id (new for each attempt)
/// and the attempt number.
/// <https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html>
fn fill(input: &str, schedule_arn: &str, due_ms: u64, attempt: u32) -> String {
    // `2022-03-22T18:59:43Z`: whole seconds.
    let due = crate::queue::iso8601(due_ms / 1000 * 1000).replace(".000Z", "Z");
    let execution_id = format!("{:016x}", (uuid::Uuid::new_v4().as_u128() >> 64) as u64);
    input
        .replace("<aws.scheduler.schedule-arn>", schedule_arn)
        .replace("<aws.scheduler.scheduled-time>", &due)
        .replace("<aws.scheduler.execution-id>", &execution_id)
        .replace("<aws.scheduler.attempt-number>", &attempt.to_string())
}

/// Invoke `func` asynchronously with one tick of a schedule due at
/// `due_ms`; with `--scheduler-retries`, some ticks are delivered a second
/// time as Scheduler's retry (a new execution id, attempt 2), as when
/// Scheduler did not hear Lambda accept the first.
fn deliver_tick(emu: &Arc<Emulator>, func: &Arc<crate::function::Function>, invoked_arn: &str, schedule_arn: &str, input: &str, due_ms: u64) {
    crate::queue::enqueue(emu.clone(), func.clone(), invoked_arn.to_owned(), Bytes::from(fill(input, schedule_arn, due_ms, 1)));
    if crate::queue::chance(emu.faults.scheduler_retries) {
        emu.stats.update(&func.cfg.name, |s| s.scheduler_retries += 1);
        crate::queue::enqueue(emu.clone(), func.clone(), invoked_arn.to_owned(), Bytes::from(fill(input, schedule_arn, due_ms, 2)));
    }
}

/// Fire the schedules and keep-warm pings each served function declares in
/// its manifest, until the emulator drains.
pub(crate) async fn run_declared(emu: Arc<Emulator>, speedup: f64) {
    for func in emu.functions.values() {
        let manifest = match read_manifest(&func.cfg).await {
            Ok(m) => m,
            Err(why) => {
                complain!("task-local: {}: no schedules read from its manifest: {why}", func.cfg.name);
                continue;
            }
        };
        let declared = manifest["schedules"].as_array().into_iter().flatten().map(|s| (s["task"].as_str(), &s["expression"], &s["input"]));
        let warm = manifest["keep_warm"].as_array().into_iter().flatten().map(|k| (Some("keep-warm"), &k["every"], &k["input"]));
        for (name, expression, input) in declared.chain(warm) {
            let (Some(name), Some(expression), Some(input)) = (name, expression.as_str(), input.as_str()) else { continue };
            let (func, name, expression, input) = (func.clone(), name.to_owned(), expression.to_owned(), input.to_owned());
            // Listed (ListSchedules, GetSchedule) as the deployed template's would be.
            let schedule_name = format!("{}-{}", func.cfg.name, name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"));
            let description = describe(&emu, &schedule_name, &expression, &func.arn, &input, "NONE");
            let timer = {
                let (emu, func, expression, input) = (emu.clone(), func.clone(), expression.clone(), input.clone());
                tokio::spawn(async move { fire(emu, func, &name, &expression, &input, speedup).await })
            };
            emu.schedules.lock().unwrap_or_else(|p| p.into_inner()).insert(schedule_name, Schedule { description, timer: timer.abort_handle() });
        }
    }
}

/// Run a function with `TASK_RUNTIME_MANIFEST=1` and read the JSON it prints.
async fn read_manifest(cfg: &crate::cli::FunctionConfig) -> Result<Value, String> {
    let run = tokio::process::Command::new(&cfg.path)
        .env("TASK_RUNTIME_MANIFEST", "1")
        .envs(cfg.env.iter().cloned())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run).await.map_err(|_| "it did not answer within 10 s".to_owned())?;
    let out = out.map_err(|e| e.to_string())?;
    serde_json::from_slice(&out.stdout).map_err(|_| "it printed no manifest (not a task-runtime worker, or an older one)".to_owned())
}

/// Fire one declared schedule of `func` until the emulator drains.
async fn fire(emu: Arc<Emulator>, func: Arc<crate::function::Function>, name: &str, expression: &str, input: &str, speedup: f64) {
    let schedule_arn = format!("arn:aws:scheduler:{}:000000000000:schedule/default/{}-{name}", emu.region, func.cfg.name);
    let fire_once = |emu: &Arc<Emulator>, due_ms: u64| {
        say!("task-local: {} schedule {name} ({expression}) fired", func.cfg.name);
        deliver_tick(emu, &func, &func.arn, &schedule_arn, input, due_ms);
    };
    if let Some(at) = at_millis(expression) {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
        if !emu.draining() {
            fire_once(&emu, at);
        }
        return;
    }
    if let Some(cron) = crate::cron::Cron::parse(expression) {
        // A clock that runs `speedup` times faster than the real one.
        let (real_start, virtual_start) = (std::time::Instant::now(), now_ms());
        let virtual_now = || virtual_start + (real_start.elapsed().as_secs_f64() * speedup * 1000.0) as u64;
        say!("task-local: {} schedule {name} ({expression}) fires at its times, {speedup}x faster", func.cfg.name);
        let mut last = 0;
        while let Some(next) = cron.next_after(virtual_now().max(last)) {
            last = next;
            let wait = Duration::from_millis(next.saturating_sub(virtual_now())).div_f64(speedup);
            tokio::time::sleep(wait).await;
            if emu.draining() {
                return;
            }
            fire_once(&emu, next);
        }
        return;
    }
    let Some(period) = rate(expression) else {
        say!("task-local: {} schedule {name} ({expression}) is not fired locally: it reads rate(...), at(...) and cron(...) without L, W or #", func.cfg.name);
        return;
    };
    let period = period.div_f64(speedup);
    say!("task-local: {} schedule {name} ({expression}) fires every {period:?}", func.cfg.name);
    // Each tick is due a (sped-up) period after the last, in whole seconds.
    let (real_start, virtual_start) = (std::time::Instant::now(), now_ms());
    loop {
        tokio::time::sleep(period).await;
        if emu.draining() {
            return;
        }
        let due = virtual_start + (real_start.elapsed().as_secs_f64() * speedup * 1000.0) as u64;
        fire_once(&emu, due);
    }
}

/// The period of `rate(N minutes|hours|days)`.
fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * unit)).filter(|d| !d.is_zero())
}

/// `CreateSchedule`.
pub(crate) async fn create(State(emu): State<Arc<Emulator>>, Path(name): Path<String>, body: Bytes) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    let invalid = |message: String| aws_error(StatusCode::BAD_REQUEST, "ValidationException", message, &call_id);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the request body is not JSON".into());
    };
    let expression = req["ScheduleExpression"].as_str().unwrap_or_default();
    let Some(at_ms) = at_millis(expression) else {
        return invalid(format!("task-local takes one-time schedules `at(yyyy-mm-ddThh:mm:ss)` only, not {expression:?}"));
    };
    if let Some(zone) = req["ScheduleExpressionTimezone"].as_str().filter(|z| *z != "UTC") {
        return invalid(format!("task-local takes schedules in UTC only, not {zone:?}"));
    }
    let target_arn = req["Target"]["Arn"].as_str().unwrap_or_default();
    let Some((func, invoked_arn)) = emu.resolve(target_arn) else {
        return invalid(format!("the target {target_arn:?} is not a function task-local serves"));
    };
    let input = req["Target"]["Input"].as_str().unwrap_or("{}").to_owned();
    // `State`: ENABLED (the default) or DISABLED, a schedule that never fires
    // until enabled. See
    // https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html
    // and https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-state.html.
    let state = match req["State"].as_str() {
        None | Some("ENABLED") => "ENABLED",
        Some("DISABLED") => "DISABLED",
        Some(other) => return invalid(format!("State must be ENABLED or DISABLED, not {other:?}")),
    };
    let mut schedules = emu.schedules.lock().unwrap_or_else(|p| p.into_inner());
    if schedules.contains_key(&name) {
        return aws_error(StatusCode::CONFLICT, "ConflictException", format!("Schedule {name} already exists."), &call_id);
    }
    let fire = {
        let (emu, name) = (emu.clone(), name.clone());
        tokio::spawn(async move {
            if state == "DISABLED" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            // Gone from the map: deleted at this very moment; then it does not fire.
            if emu.schedules.lock().unwrap_or_else(|p| p.into_inner()).remove(&name).is_some() && !emu.draining() {
                say!("task-local: schedule {name} fired: invoking {} asynchronously", func.cfg.name);
                let schedule_arn = format!("arn:aws:scheduler:{}:000000000000:schedule/default/{name}", emu.region);
                deliver_tick(&emu, &func, &invoked_arn, &schedule_arn, &input, at_ms);
            }
        })
    };
    let mut description = describe(&emu, &name, expression, target_arn, "", req["ActionAfterCompletion"].as_str().unwrap_or("NONE"));
    description["Target"] = req["Target"].clone();
    description["State"] = json!(state);
    let arn = description["Arn"].clone();
    schedules.insert(name, Schedule { description, timer: fire.abort_handle() });
    (StatusCode::OK, axum::Json(json!({"ScheduleArn": arn}))).into_response()
}

/// What `GetSchedule` answers for a schedule.
fn describe(emu: &Emulator, name: &str, expression: &str, target_arn: &str, input: &str, after: &str) -> Value {
    json!({
        "Arn": format!("arn:aws:scheduler:{}:000000000000:schedule/default/{name}", emu.region),
        "Name": name, "GroupName": "default", "State": "ENABLED",
        "ScheduleExpression": expression, "ScheduleExpressionTimezone": "UTC",
        "ActionAfterCompletion": after,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": target_arn, "RoleArn": "arn:aws:iam::000000000000:role/task-local", "Input": input},
    })
}

/// `ListSchedules` (`GET /schedules`, one page, `NamePrefix` and `State`
/// honoured): the declared schedules and the one-time ones.
pub(crate) async fn list(State(emu): State<Arc<Emulator>>, axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>) -> Response {
    let schedules = emu.schedules.lock().unwrap_or_else(|p| p.into_inner());
    let mut listed: Vec<Value> = schedules
        .iter()
        .filter(|(name, _)| q.get("NamePrefix").is_none_or(|p| name.starts_with(p.as_str())))
        .filter(|(_, s)| q.get("State").is_none_or(|state| s.description["State"] == state.as_str()))
        .map(|(_, s)| {
            let d = &s.description;
            json!({"Arn": d["Arn"], "Name": d["Name"], "GroupName": d["GroupName"], "State": d["State"], "Target": {"Arn": d["Target"]["Arn"]}})
        })
        .collect();
    listed.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    (StatusCode::OK, axum::Json(json!({"Schedules": listed}))).into_response()
}

/// `GetSchedule`.
pub(crate) async fn get(State(emu): State<Arc<Emulator>>, Path(name): Path<String>) -> Response {
    let schedules = emu.schedules.lock().unwrap_or_else(|p| p.into_inner());
    match schedules.get(&name) {
        Some(s) => (StatusCode::OK, axum::Json(s.description.clone())).into_response(),
        None => not_found(&name),
    }
}

/// `DeleteSchedule`: the timer is stopped; it never fires.
pub(crate) async fn delete(State(emu): State<Arc<Emulator>>, Path(name): Path<String>) -> Response {
    let removed = emu.schedules.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
    match removed {
        Some(s) => {
            s.timer.abort();
            (StatusCode::OK, axum::Json(json!({}))).into_response()
        }
        None => not_found(&name),
    }
}

fn not_found(name: &str) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", format!("Schedule {name} does not exist."), &call_id)
}

/// Epoch ms of `at(2026-11-27T10:30:00)`, read as UTC.
fn at_millis(expression: &str) -> Option<u64> {
    let inner = expression.trim().strip_prefix("at(")?.strip_suffix(')')?;
    let (date, time) = inner.split_once('T')?;
    let num = |s: &str| s.parse::<i64>().ok();
    let d: Vec<i64> = date.split('-').map(num).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(num).collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), t.as_slice()) else { return None };
    let valid = (1..=12).contains(m) && (1..=31).contains(day) && (0..24).contains(hh) && (0..60).contains(mm) && (0..60).contains(ss);
    if !valid {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let (y, m) = if *m <= 2 { (y - 1, m + 9) } else { (*y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_attributes_are_filled_in_and_the_scheduled_time_is_the_tick_s() {
        let input = r#"{"id": "schedule:t:<aws.scheduler.scheduled-time>", "x": "<aws.scheduler.execution-id>", "n": "<aws.scheduler.attempt-number>", "a": "<aws.scheduler.schedule-arn>"}"#;
        let (first, retry) = (fill(input, "arn:s", 1_795_774_496_789, 1), fill(input, "arn:s", 1_795_774_496_789, 2));
        let (first, retry): (Value, Value) = (serde_json::from_str(&first).unwrap_or_default(), serde_json::from_str(&retry).unwrap_or_default());
        assert_eq!(first["id"], "schedule:t:2026-11-27T10:14:56Z");
        assert_eq!(first["id"], retry["id"], "one tick, one scheduled time");
        assert_ne!(first["x"], retry["x"], "a new execution id for each attempt");
        assert_eq!((first["n"].as_str(), retry["n"].as_str(), first["a"].as_str()), (Some("1"), Some("2"), Some("arn:s")));
    }

    #[test]
    fn rates() {
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(rate("cron(0 8 * * ? *)"), None);
        assert_eq!(rate("rate(0 days)"), None);
    }

    #[test]
    fn at_expressions_read_as_utc() {
        assert_eq!(at_millis("at(1970-01-01T00:00:00)"), Some(0));
        assert_eq!(at_millis("at(2026-11-27T10:14:56)"), Some(1_795_774_496_000));
        assert_eq!(at_millis("at(2000-02-29T00:00:00)"), Some(951_782_400_000));
        assert_eq!(at_millis("rate(5 minutes)"), None);
        assert_eq!(at_millis("at(2026-13-01T00:00:00)"), None);
    }
}
