//! The dashboard's JSON API: everything the page shows, for scripts too.
//! `GET /api` lists the routes. Errors are `{"error": "…"}` with a status
//! code; a part that cannot be read (no function configured, an index
//! missing) is `{"unavailable": "why"}` in place of its value.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use task_runtime::store::ResponseStore;
use task_runtime::{Status, get_async_response, get_children};

use super::Dashboard;
use crate::Problem;
use crate::render::json_of;
use crate::setup::{now_ms, store_problem};

type Shared = State<Arc<Dashboard>>;

/// The routes, with what each returns: `GET /api`.
const ROUTES: [(&str, &str); 9] = [
    ("GET /api/overview", "the function (`tasks function`), its check (`tasks check`), and the calls of the last day by status"),
    ("GET /api/calls?status=&task=&since=24h&limit=100", "recent calls, newest first (status=failed reads the failed index; others need TASK_LIST_CALLS=true)"),
    ("GET /api/calls/{id}", "one call: its state, its kept message, its parent and children, its log lines, and what may be done to it"),
    ("GET /api/calls/{id}/tree?depth=10", "the calls under a call (`tasks tree --json`)"),
    ("POST /api/calls/{id}/retry", "send a failed call again from its kept message (`tasks retry`): the new call's id"),
    ("POST /api/calls/{id}/cancel", "cancel a call that has not started (`scheduled` or `pending`)"),
    ("GET /api/groups/{id}", "a group's progress and its callback"),
    ("GET /api/schedules", "the function's schedules, and each one's latest run"),
    ("GET /api", "this list"),
];

pub(super) fn routes() -> Router<Arc<Dashboard>> {
    Router::new()
        .route("/api", get(|| async { Json(json!(ROUTES.iter().map(|(r, what)| json!({"route": r, "returns": what})).collect::<Vec<_>>())) }))
        .route("/api/overview", get(overview))
        .route("/api/calls", get(calls))
        .route("/api/calls/{id}", get(call))
        .route("/api/calls/{id}/tree", get(tree))
        .route("/api/calls/{id}/retry", post(retry))
        .route("/api/calls/{id}/cancel", post(cancel))
        .route("/api/groups/{id}", get(group))
        .route("/api/schedules", get(schedules))
}

/// An error answer: a status and what went wrong.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<Problem> for ApiError {
    fn from(Problem(why): Problem) -> Self {
        ApiError(StatusCode::BAD_GATEWAY, why)
    }
}

/// A part that was read, or why it could not be.
fn part(read: Result<Value, Problem>) -> Value {
    read.unwrap_or_else(|Problem(why)| json!({"unavailable": why}))
}

async fn overview(State(d): Shared) -> Json<Value> {
    let function = match &d.function {
        None => Err(Problem("no function: pass --function NAME or set TASK_FUNCTION".into())),
        Some(f) => crate::deployed::function_report(&d.sdk, f).await,
    };
    let check = match &d.function {
        None => Err(Problem("no function to check".into())),
        Some(f) => crate::check::check_report(&d.sdk, f, d.worker.as_ref()).await.map(|r| r.json()),
    };
    let since = now_ms().saturating_sub(86_400_000);
    // With the index of recent calls off, a count of it reads 0 however many
    // calls ran: when it is off here and holds nothing, say so (and count the
    // failed calls, which are always indexed). Workers that list calls still
    // fill it, and then it is counted.
    let calls_last_24h = match recent(&d, since, 10_000).await {
        Ok(calls) if calls.is_empty() && !d.config.list_calls => {
            let failed = d.store.failed_since(since, 10_000).await.map(|f| json!(f.len())).unwrap_or(Value::Null);
            json!({"since_ms": since, "listing_off": LISTING_OFF, "failed": failed})
        }
        read => part(read.map(|calls| {
            let mut counts = serde_json::Map::new();
            for c in &calls {
                let n = counts.entry(c.response.status.to_string()).or_insert(json!(0));
                *n = json!(n.as_u64().unwrap_or(0) + 1);
            }
            json!({"since_ms": since, "calls": calls.len(), "by_status": counts})
        })),
    };
    let hourly = match &d.function {
        None => Err(Problem("no function".into())),
        Some(f) => crate::deployed::metrics_by_hour(&d.sdk, f).await.map_err(Problem),
    };
    Json(json!({
        "function": part(function), "check": part(check), "calls_last_24h": calls_last_24h,
        "metrics_by_hour": part(hourly), "now_ms": now_ms(),
    }))
}

/// What the overview and the Calls page say when the index of recent calls
/// is off (`TASK_LIST_CALLS` not `true`, the default): why no call is
/// listed, how to list them, and what it costs.
const LISTING_OFF: &str = "Calls are not listed: the index of recent calls is off. Set TASK_LIST_CALLS=true where calls are sent \
     (callers and workers) to list the calls sent from then on; it costs one index write per call. Failed calls are always listed, \
     and any call opens by its id.";

/// Recent calls, from the store's index of recent calls.
async fn recent(d: &Dashboard, since_ms: u64, limit: usize) -> Result<Vec<task_runtime::store::StoredCall>, Problem> {
    d.store.recent(since_ms, limit).await.map_err(store_problem)
}

#[derive(Debug, Deserialize)]
struct CallsQuery {
    status: Option<String>,
    task: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

async fn calls(State(d): Shared, Query(q): Query<CallsQuery>) -> Result<Json<Value>, ApiError> {
    let since = q.since.as_deref().map(crate::cli::duration).transpose().map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("since: {e}")))?;
    let since_ms = now_ms().saturating_sub(since.unwrap_or(Duration::from_secs(86_400)).as_millis() as u64);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<Status>().map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("status: {e}")))?),
    };
    let task = q.task.filter(|t| !t.is_empty());
    let keep = |r: &task_runtime::AsyncResponse| status.is_none_or(|s| r.status == s) && task.as_ref().is_none_or(|t| *t == r.task);
    let (listed, source): (Vec<Value>, &str) = if status == Some(Status::Failed) {
        let failed = d.store.failed_since(since_ms, usize::MAX).await.map_err(store_problem)?;
        let rows = failed.into_iter().filter(|c| keep(&c.response)).take(limit).map(|c| {
            let mut v = json_of(&c.id, Some(&c.response));
            v["retryable"] = json!(c.message_kept);
            v
        });
        (rows.collect(), "the index of failed calls")
    } else {
        // Read past the limit, so that a filter still finds `limit` calls.
        let read = recent(&d, since_ms, limit.saturating_mul(10).min(10_000)).await?;
        (read.into_iter().filter(|c| keep(&c.response)).take(limit).map(|c| json_of(&c.id, Some(&c.response))).collect(), "the index of recent calls")
    };
    // "Not listed" only when nothing is: workers that list calls still fill the index.
    let note = (!d.config.list_calls && status != Some(Status::Failed)).then_some(if listed.is_empty() {
        LISTING_OFF
    } else {
        "only calls sent with TASK_LIST_CALLS=true are listed here; failed calls are always listed (status=failed)"
    });
    Ok(Json(json!({"calls": listed, "source": source, "since_ms": since_ms, "note": note, "listing": d.config.list_calls})))
}

async fn call(State(d): Shared, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let r = get_async_response(&id).await.map_err(store_problem)?;
    let Some(r) = r else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no call {id}: it is unknown or has expired")));
    };
    let children = get_children(&id, 200).await.map(|c| c.iter().map(|c| json_of(&c.id, Some(&c.response))).collect::<Vec<_>>());
    let children = part(children.map(Value::from).map_err(store_problem));
    // The kept message of a failed call: its arguments, and whether it can be sent again.
    let message = match r.status {
        Status::Failed => {
            let kept = d.store.failed_message(&id).await.map_err(store_problem)?;
            kept.and_then(|m| serde_json::from_str::<Value>(&m).ok())
        }
        _ => None,
    };
    let logs = match &d.logs {
        None => json!({"unavailable": "no function: pass --function NAME or set TASK_FUNCTION"}),
        Some(logs) => {
            let pattern = crate::tail::filter_pattern(None, Some(&id));
            part(logs.lines(pattern.as_deref(), r.created_at.saturating_sub(60_000)).await.map(|l| json!(l)))
        }
    };
    // A group's child (`G.N`) or callback (`G.then`): its group's progress.
    let group = match id.rsplit_once('.') {
        Some((g, n)) if n == "then" || n.parse::<u32>().is_ok() => crate::group::read(g).await.ok().flatten().map(|g| crate::group::json_of(&g)),
        _ => None,
    };
    let can_retry = r.status == Status::Failed && message.is_some();
    let can_cancel = matches!(r.status, Status::Scheduled | Status::Pending);
    Ok(Json(json!({
        "call": json_of(&id, Some(&r)),
        // Arguments sent through S3: where they are (the page does not fetch them).
        "args": message.as_ref().map(|m| if m["args_ref"].is_object() { json!({"kept_in_s3": m["args_ref"]}) } else { m["args"].clone() }),
        "children": children,
        "logs": logs,
        "group": group,
        "actions": {"retry": can_retry, "cancel": can_cancel},
    })))
}

#[derive(Debug, Deserialize)]
struct TreeQuery {
    depth: Option<u32>,
}

async fn tree(Path(id): Path<String>, Query(q): Query<TreeQuery>) -> Result<Json<Value>, ApiError> {
    let root = crate::tree::read_tree(&id, q.depth.unwrap_or(10).min(50), 1000).await?;
    if root.response.is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no call {id}: it is unknown or has expired")));
    }
    Ok(Json(crate::tree::json_of(&root)))
}

async fn retry(State(d): Shared, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    use crate::failed::Retried;
    match crate::failed::retry_call(&d.config, &d.store, &id, false).await {
        Ok(Retried::Sent { task, id: new_id } | Retried::WouldSend { task, id: new_id }) => Ok(Json(json!({"retried": id, "task": task, "id": new_id}))),
        // Retried before: the retry there is, not a second one.
        Ok(Retried::Already { id: new_id, status }) => Ok(Json(json!({"retried": id, "id": new_id, "existing": true, "status": status}))),
        Ok(Retried::Unknown) => Err(ApiError(StatusCode::NOT_FOUND, format!("no call {id}: it is unknown or has expired"))),
        Err(Problem(why)) => Err(ApiError(StatusCode::CONFLICT, why)),
    }
}

async fn cancel(Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    use task_runtime::CancelError;
    match task_runtime::cancel(&id).await {
        Ok(()) => Ok(Json(json!({"cancelled": id}))),
        Err(e @ CancelError::NotFound { .. }) => Err(ApiError(StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ CancelError::NotCancellable { .. }) => Err(ApiError(StatusCode::CONFLICT, e.to_string())),
        Err(e) => Err(ApiError(StatusCode::BAD_GATEWAY, e.to_string())),
    }
}

async fn group(Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    match crate::group::read(&id).await? {
        Some(g) => Ok(Json(crate::group::json_of(&g))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no group {id}"))),
    }
}

async fn schedules(State(d): Shared) -> Result<Json<Value>, ApiError> {
    let Some(function) = &d.function else {
        return Ok(Json(json!({"unavailable": "no function: pass --function NAME or set TASK_FUNCTION"})));
    };
    let deployed = crate::deployed::function_schedules(&d.sdk, function).await?;
    // The latest run of each of the worker's declared schedules, noted by
    // the worker, and for a `rate(…)` schedule when the next is due.
    let mut latest = Vec::new();
    for (task, expression) in declared_schedules(d.worker.as_ref()) {
        let id = task_runtime::latest_run(&task).await.map_err(store_problem)?;
        let run = match &id {
            Some(id) => get_async_response(id).await.map_err(store_problem)?.map(|r| (json_of(id, Some(&r)), r.created_at)),
            None => None,
        };
        let next = match (&run, rate_ms(&expression)) {
            (Some((_, at)), Some(every)) => json!(at.saturating_add(every)),
            _ => Value::Null,
        };
        latest.push(json!({"task": task, "expression": expression, "latest_run": run.map(|(r, _)| r), "next_run_ms": next}));
    }
    Ok(Json(json!({"deployed": deployed, "declared": latest})))
}

/// The period of a `rate(N unit)` expression, in ms.
///
/// EventBridge Scheduler's rate expressions: `rate(value unit)`, unit one of
/// minute(s), hour(s), day(s)
/// (<https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#rate-based>).
fn rate_ms(expression: &str) -> Option<u64> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_ms = match unit.trim() {
        "minute" | "minutes" => 60_000,
        "hour" | "hours" => 3_600_000,
        "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(n * unit_ms)
}

/// The (task, expression) of each schedule the worker's manifest declares.
fn declared_schedules(worker: Option<&crate::check::WorkerManifest>) -> Vec<(String, String)> {
    let schedules = worker.and_then(|w| w.manifest.as_ref()).and_then(|m| m["schedules"].as_array());
    schedules.into_iter().flatten().filter_map(|s| Some((s["task"].as_str()?.to_owned(), s["expression"].as_str().unwrap_or_default().to_owned()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_give_their_period() {
        assert_eq!(rate_ms("rate(1 hour)"), Some(3_600_000));
        assert_eq!(rate_ms("rate(5 minutes)"), Some(300_000));
        assert_eq!(rate_ms("rate(2 days)"), Some(172_800_000));
        assert_eq!(rate_ms("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_ms("rate(1 fortnight)"), None);
    }
}
