//! EventBridge Scheduler's one-time schedules, as far as delayed tasks need
//! them: `CreateSchedule` (`POST /schedules/{Name}`) of an
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
    fn at_expressions_read_as_utc() {
        assert_eq!(at_millis("at(1970-01-01T00:00:00)"), Some(0));
        assert_eq!(at_millis("at(2026-11-27T10:14:56)"), Some(1_795_774_496_000));
        assert_eq!(at_millis("at(2000-02-29T00:00:00)"), Some(951_782_400_000));
        assert_eq!(at_millis("rate(5 minutes)"), None);
        assert_eq!(at_millis("at(2026-13-01T00:00:00)"), None);
    }
}
