//! The HTTP surface: Lambda's Invoke API, compatible with aws-sdk-lambda
//! and boto3 (`Event` invokes go to the queue, `RequestResponse` runs at
//! once, `DryRun` checks), EventBridge Scheduler's one-time schedules
//! ([`crate::scheduler`]), CloudWatch Logs' `FilterLogEvents` over what the
//! instances printed ([`crate::logs`]), and `GET /stats`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
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

async fn stats(State(emu): State<Arc<Emulator>>) -> Response {
    axum::Json(emu.stats.json()).into_response()
}

/// Any other path or method: what the Lambda service answers for it.
async fn unknown_operation(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let call_id = uuid::Uuid::new_v4().to_string();
    let message = format!(
        "task-local has no operation {method} {}; it serves POST /2015-03-31/functions/{{name}}/invocations, \
         POST/GET/DELETE /schedules/{{name}} (EventBridge Scheduler, one-time schedules) and GET /stats",
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
