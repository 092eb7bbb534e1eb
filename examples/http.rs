//! An HTTP API and its tasks in one Lambda function (feature `http`):
//! `POST /pies?flavor=apple&slices=8` dispatches a task and answers with its
//! id at once; `GET /pies/{id}` polls it.
//!
//! Behind API Gateway, a Function URL or an ALB; locally under `task-local`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use task_runtime::{TaskResult, task};

#[derive(Debug, Serialize, Deserialize)]
struct Pie {
    flavor: String,
    slices: u32,
}

/// The work done off the request path.
#[task]
async fn bake(flavor: String, slices: u32) -> TaskResult<Pie> {
    Ok(Pie { flavor, slices })
}

#[derive(Deserialize)]
struct Order {
    flavor: String,
    slices: u32,
}

async fn order(Query(o): Query<Order>) -> Result<(StatusCode, Json<serde_json::Value>), (StatusCode, String)> {
    let handle = bake(o.flavor, o.slices).await.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "id": handle.id() }))))
}

async fn poll(Path(id): Path<String>) -> Result<Json<task_runtime::AsyncResponse>, (StatusCode, String)> {
    match task_runtime::get_async_response(&id).await {
        Ok(Some(r)) => Ok(Json(r)),
        Ok(None) => Err((StatusCode::NOT_FOUND, format!("no pie order {id}"))),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

#[tokio::main]
async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
    task_runtime::init_tracing(); // as lambda_runtime's subscriber, without its raw-event TRACE line
    let app = Router::new().route("/pies", post(order)).route("/pies/{id}", get(poll));
    task_runtime::run_http(app).await
}
