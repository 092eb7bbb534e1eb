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

/// What EventBridge Scheduler replaces with each run's execution id.
const EXECUTION_ID: &str = "<aws.scheduler.execution-id>";

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
            let emu = emu.clone();
            tokio::spawn(async move { fire(emu, func, &name, &expression, &input, speedup).await });
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
    let fire_once = |emu: &Arc<Emulator>| {
        let input = input.replace(EXECUTION_ID, &uuid::Uuid::new_v4().to_string());
        say!("task-local: {} schedule {name} ({expression}) fired", func.cfg.name);
        crate::queue::enqueue(emu.clone(), func.clone(), func.arn.clone(), Bytes::from(input));
    };
    if let Some(at) = at_millis(expression) {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
        if !emu.draining() {
            fire_once(&emu);
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
            fire_once(&emu);
        }
        return;
    }
    let Some(period) = rate(expression) else {
        say!("task-local: {} schedule {name} ({expression}) is not fired locally: it reads rate(...), at(...) and cron(...) without L, W or #", func.cfg.name);
        return;
    };
    let period = period.div_f64(speedup);
    say!("task-local: {} schedule {name} ({expression}) fires every {period:?}", func.cfg.name);
    loop {
        tokio::time::sleep(period).await;
        if emu.draining() {
            return;
        }
        fire_once(&emu);
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
    let input = Bytes::from(req["Target"]["Input"].as_str().unwrap_or("{}").to_owned());
    let mut schedules = emu.schedules.lock().unwrap_or_else(|p| p.into_inner());
    if schedules.contains_key(&name) {
        return aws_error(StatusCode::CONFLICT, "ConflictException", format!("Schedule {name} already exists."), &call_id);
    }
    let fire = {
        let (emu, name) = (emu.clone(), name.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            // Gone from the map: deleted at this very moment; then it does not fire.
            if emu.schedules.lock().unwrap_or_else(|p| p.into_inner()).remove(&name).is_some() && !emu.draining() {
                say!("task-local: schedule {name} fired: invoking {} asynchronously", func.cfg.name);
                crate::queue::enqueue(emu.clone(), func, invoked_arn, input);
            }
        })
    };
    let arn = format!("arn:aws:scheduler:{}:000000000000:schedule/default/{name}", emu.region);
    let description = json!({
        "Arn": arn, "Name": name, "GroupName": "default", "State": "ENABLED",
        "ScheduleExpression": expression, "ScheduleExpressionTimezone": "UTC",
        "ActionAfterCompletion": req["ActionAfterCompletion"].as_str().unwrap_or("NONE"),
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": req["Target"].clone(),
    });
    schedules.insert(name, Schedule { description, timer: fire.abort_handle() });
    (StatusCode::OK, axum::Json(json!({"ScheduleArn": arn}))).into_response()
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
