//! The HTTP surface: Lambda's Invoke API, compatible with aws-sdk-lambda
//! and boto3 (`Event` invokes go to the queue, `RequestResponse` runs at
//! once, `DryRun` checks), EventBridge Scheduler's one-time schedules
//! ([`crate::scheduler`]), CloudWatch Logs' `FilterLogEvents` over what the
//! instances printed ([`crate::logs`]), and `GET /stats`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::emulator::{Emulator, aws_error};
use crate::instance::Outcome;

/// Lambda's payload limits.
const MAX_ASYNC_PAYLOAD: usize = 1_048_576;
const MAX_SYNC_PAYLOAD: usize = 6_291_456;

pub(crate) fn router(emu: Arc<Emulator>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .route("/2015-03-31/functions/{function}", get(get_function))
        .route("/2015-03-31/functions/{function}/configuration", get(get_function_configuration))
        .route("/2019-09-25/functions/{function}/event-invoke-config", get(get_event_invoke_config))
        .route("/schedules", get(crate::scheduler::list))
        .route("/schedules/{name}", post(crate::scheduler::create).get(crate::scheduler::get).delete(crate::scheduler::delete))
        .route("/", post(json_target))
        .route("/stats", get(stats))
        .fallback(unknown_operation)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(emu)
}

/// The JSON protocol services, which name their operation in `X-Amz-Target`:
/// CloudWatch Logs' `FilterLogEvents`.
async fn json_target(State(emu): State<Arc<Emulator>>, headers: HeaderMap, body: Bytes) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    if target != "Logs_20140328.FilterLogEvents" {
        let message = format!("task-local has no operation {target:?}; of CloudWatch Logs it answers FilterLogEvents");
        return aws_error(StatusCode::BAD_REQUEST, "UnknownOperationException", message, &call_id);
    }
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", "the request body is not JSON".into(), &call_id);
    };
    let group = req["logGroupName"].as_str().unwrap_or_default();
    let Some(function) = group.strip_prefix("/aws/lambda/").filter(|f| emu.functions.contains_key(*f)) else {
        return aws_error(StatusCode::BAD_REQUEST, "ResourceNotFoundException", "The specified log group does not exist.".into(), &call_id);
    };
    let (start, end) = (req["startTime"].as_u64().unwrap_or(0), req["endTime"].as_u64().unwrap_or(u64::MAX));
    let after = req["nextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
    let limit = req["limit"].as_u64().map_or(10_000, |l| l.clamp(1, 10_000) as usize);
    let (events, more) = emu.logs.filter(function, start, end, req["filterPattern"].as_str().unwrap_or(""), after, limit);
    let next = events.last().filter(|_| more).map(|e| e.seq.to_string());
    let events: Vec<_> = events
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "logStreamName": e.stream, "timestamp": e.timestamp_ms, "ingestionTime": e.timestamp_ms,
                "message": e.message, "eventId": e.seq.to_string(),
            })
        })
        .collect();
    let mut body = serde_json::json!({"events": events, "searchedLogStreams": []});
    if let Some(next) = next {
        body["nextToken"] = serde_json::json!(next);
    }
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    resp
}

/// What `GetFunctionConfiguration` says of a function: its options, and the
/// variables `--env` gives it.
fn configuration(func: &crate::function::Function) -> serde_json::Value {
    let code = std::fs::metadata(&func.cfg.path).ok();
    let modified = code.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let last_modified = crate::queue::iso8601(modified.map_or(0, |d| d.as_millis() as u64)).replace('Z', "+0000");
    let variables: serde_json::Map<String, serde_json::Value> = func.cfg.env.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
    serde_json::json!({
        "FunctionName": func.cfg.name, "FunctionArn": func.arn, "Runtime": "provided.al2023",
        "Role": "arn:aws:iam::000000000000:role/task-local", "Handler": "bootstrap",
        "CodeSize": code.map_or(0, |m| m.len()), "Description": format!("task-local: {}", func.cfg.path.display()),
        "Timeout": func.cfg.timeout.as_secs_f64().ceil().max(1.0) as u64, "MemorySize": func.cfg.memory_mb,
        "LastModified": last_modified, "Version": "$LATEST", "Environment": {"Variables": variables},
        "Architectures": [if cfg!(target_arch = "aarch64") { "arm64" } else { "x86_64" }],
        "PackageType": "Zip", "State": "Active", "LastUpdateStatus": "Successful",
    })
}

fn not_found(function: &str, emu: &Emulator) -> Response {
    let arn = format!("arn:aws:lambda:{}:000000000000:function:{function}", emu.region);
    aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", format!("Function not found: {arn}"), &uuid::Uuid::new_v4().to_string())
}

/// `GetFunctionConfiguration`.
async fn get_function_configuration(State(emu): State<Arc<Emulator>>, Path(function): Path<String>) -> Response {
    match emu.resolve(&function) {
        Some((func, _)) => axum::Json(configuration(&func)).into_response(),
        None => not_found(&function, &emu),
    }
}

/// `GetFunction`: the configuration, and where the code is (here, a path).
async fn get_function(State(emu): State<Arc<Emulator>>, Path(function): Path<String>) -> Response {
    match emu.resolve(&function) {
        Some((func, _)) => axum::Json(serde_json::json!({
            "Configuration": configuration(&func),
            "Code": {"RepositoryType": "task-local", "Location": format!("file://{}", func.cfg.path.display())},
        }))
        .into_response(),
        None => not_found(&function, &emu),
    }
}

/// `GetFunctionEventInvokeConfig`, from `--max-retry-attempts`,
/// `--max-event-age` and `--on-failure function:NAME`.
async fn get_event_invoke_config(State(emu): State<Arc<Emulator>>, Path(function): Path<String>) -> Response {
    let Some((func, _)) = emu.resolve(&function) else { return not_found(&function, &emu) };
    let on_failure = match &emu.on_failure {
        Some(crate::emulator::OnFailure::Function(target)) => emu.resolve(target).map(|(t, _)| t.arn.clone()),
        _ => None,
    };
    let mut destination = serde_json::json!({"OnSuccess": {}, "OnFailure": {}});
    if let Some(arn) = on_failure {
        destination["OnFailure"] = serde_json::json!({"Destination": arn});
    }
    axum::Json(serde_json::json!({
        "FunctionArn": format!("{}:$LATEST", func.arn),
        "MaximumRetryAttempts": func.cfg.max_retry_attempts,
        "MaximumEventAgeInSeconds": func.cfg.max_event_age.as_secs(),
        "LastModified": std::fs::metadata(&func.cfg.path).ok().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64()),
        "DestinationConfig": destination,
    }))
    .into_response()
}

/// `GET /stats`; `?invocations=false` leaves out the records of single
/// invocations (up to 20,000 of them), for a caller that polls the counts
/// while thousands of events run.
async fn stats(State(emu): State<Arc<Emulator>>, Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    let mut stats = emu.stats.json(query.get("invocations").is_none_or(|v| v != "false"));
    // Zero when nothing is queued, waiting for a retry, running or being dropped: the emulator is quiet.
    stats["in_flight"] = serde_json::json!(emu.in_flight());
    if let Some(crate::emulator::OnFailure::Sqs(queue)) = &emu.on_failure {
        stats["failure_queue"] = queue.json();
    }
    axum::Json(stats).into_response()
}

/// Any other path or method: what the Lambda service answers for it.
async fn unknown_operation(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    let message = format!(
        "task-local has no operation {method} {}; it serves POST /2015-03-31/functions/{{name}}/invocations, \
         POST/GET/DELETE /schedules/{{name}} (EventBridge Scheduler, one-time schedules) and GET /stats (?invocations=false: the counts only)",
        uri.path()
    );
    aws_error(StatusCode::NOT_FOUND, "UnknownOperationException", message, &call_id)
}

/// Lambda accepts only JSON payloads (an empty body is passed on as is):
/// the refusal for one that is not.
fn refuse_non_json(body: &[u8], request_id: &str) -> Option<Response> {
    if body.is_empty() {
        return None;
    }
    let e = serde_json::from_slice::<serde::de::IgnoredAny>(body).err()?;
    let message = format!("Could not parse request body into json: {e}");
    Some(aws_error(StatusCode::BAD_REQUEST, "InvalidRequestContentException", message, request_id))
}

async fn invoke(State(emu): State<Arc<Emulator>>, Path(function): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    if emu.draining() {
        return aws_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceException", "task-local is shutting down".into(), &call_id);
    }
    let Some((func, invoked_arn)) = emu.resolve(&function) else {
        let arn = format!("arn:aws:lambda:{}:000000000000:function:{function}", emu.region);
        return aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", format!("Function not found: {arn}"), &call_id);
    };
    let kind = headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse");
    match kind {
        "DryRun" => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&call_id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
        "Event" => {
            if body.len() > MAX_ASYNC_PAYLOAD {
                let msg = format!("{} byte payload is too large for the Event invocation type (limit {MAX_ASYNC_PAYLOAD} bytes)", body.len());
                return aws_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", msg, &call_id);
            }
            if let Some(refused) = refuse_non_json(&body, &call_id) {
                return refused;
            }
            let rid = crate::queue::enqueue(emu.clone(), func, invoked_arn, body);
            let mut r = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&rid) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
        "RequestResponse" => {
            if body.len() > MAX_SYNC_PAYLOAD {
                let msg = format!("{} byte payload is too large for the RequestResponse invocation type (limit {MAX_SYNC_PAYLOAD} bytes)", body.len());
                return aws_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", msg, &call_id);
            }
            if let Some(refused) = refuse_non_json(&body, &call_id) {
                return refused;
            }
            let Ok(slot) = func.slots.clone().try_acquire_owned() else {
                emu.stats.update(&func.cfg.name, |s| s.throttled += 1);
                return aws_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.".into(), &call_id);
            };
            let _tracked = emu.track();
            let outcome = func.invoke(&emu.stats, &call_id, &invoked_arn, body, 1, &slot).await;
            drop(slot);
            let error = func.error_body(&call_id, &outcome);
            let mut r = match (outcome, error) {
                (Outcome::Success(b), _) => (StatusCode::OK, b).into_response(),
                (_, e) => {
                    let mut r = (StatusCode::OK, e.unwrap_or_default()).into_response();
                    r.headers_mut().insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
                    r
                }
            };
            let h = r.headers_mut();
            h.insert("x-amz-executed-version", HeaderValue::from_static("$LATEST"));
            if let Ok(v) = HeaderValue::from_str(&call_id) {
                h.insert("x-amzn-requestid", v);
            }
            r
        }
        other => aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            format!("X-Amz-Invocation-Type {other:?} is not one of Event, RequestResponse, DryRun"),
            &call_id,
        ),
    }
}
