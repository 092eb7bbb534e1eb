//! `tasks dashboard`: a web page of the calls, served by the CLI from what
//! the CLI already reads (the response table and its indexes, CloudWatch
//! Logs and metrics, the Lambda and Scheduler APIs), so it works against AWS
//! and task-local alike. The page (`page.html`, no build step) reads the
//! JSON API under `/api` (see [`api`]) and polls it while it is open.
//!
//! It binds 127.0.0.1 unless told otherwise. With a token (`--token` or
//! `TASKS_DASHBOARD_TOKEN`) every request must carry it, whatever its
//! source address; bound beyond the loopback address it refuses to start
//! without one.

mod api;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::cli::DashboardArgs;
use crate::check::WorkerManifest;
use crate::setup::install;
use crate::tail::Logs;
use crate::{Exit, Problem};

/// The variable a token can be given in (so that it stays out of `ps`).
pub(crate) const TOKEN_VAR: &str = "TASKS_DASHBOARD_TOKEN";

/// What every request reads.
pub(crate) struct Dashboard {
    config: task_runtime::Config,
    sdk: aws_config::SdkConfig,
    /// The function the overview shows and whose logs are read.
    function: Option<String>,
    logs: Option<Logs>,
    /// The response table (its client built once).
    store: task_runtime::store::dynamodb::DynamoStore,
    /// The worker's manifest, read once at start.
    worker: Option<WorkerManifest>,
    token: Option<String>,
}

pub(crate) async fn dashboard(a: DashboardArgs) -> Result<Exit, Problem> {
    let token = a.token.clone().or_else(|| std::env::var(TOKEN_VAR).ok()).filter(|t| !t.is_empty());
    if !is_loopback(a.bind) && token.is_none() {
        return Err(Problem(format!(
            "refusing to listen on {} without a token: anyone who can reach it could read calls and retry or cancel them; \
             pass --token TOKEN or set {TOKEN_VAR}, or bind 127.0.0.1",
            a.bind
        )));
    }
    let config = install(a.function.as_deref())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let function = config.function.clone();
    let logs = function.as_deref().map(|f| Logs::new(&sdk, f));
    let store = crate::setup::table(&config)?;
    let worker = a.worker.as_deref().map(WorkerManifest::read);
    let state = Arc::new(Dashboard { config, sdk, function, logs, store, worker, token });
    let app = api::routes()
        .route("/", axum::routing::get(page))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(a.bind, a.port))
        .await
        .map_err(|e| Problem(format!("cannot listen on {}:{}: {e}", a.bind, a.port)))?;
    let addr = listener.local_addr().map_err(|e| Problem(format!("cannot read the address listened on: {e}")))?;
    // The first line, for people and for scripts (with --port 0, the port
    // chosen). Written without println!, which panics when whoever started
    // the dashboard has stopped reading its output.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{addr}");
    if state.token.is_some() {
        let _ = writeln!(out, "open http://{addr}/?token=… (the token given); every request needs it");
    }
    let _ = out.flush();
    axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| Problem(format!("the dashboard stopped: {e}")))?;
    Ok(Exit::Complete)
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// The page: one file, no build step; its script reads the API.
async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// With a token set, a request must carry it: `Authorization: Bearer TOKEN`,
/// or `?token=TOKEN` (how the page is first opened). 401 otherwise.
async fn require_token(State(d): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let Some(expected) = &d.token else { return next.run(request).await };
    let bearer = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let query = request.uri().query().unwrap_or_default().split('&').find_map(|kv| kv.strip_prefix("token="));
    let given = bearer.or(query).unwrap_or_default();
    if same(given.as_bytes(), expected.as_bytes()) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(serde_json::json!({"error": "a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN"}))).into_response()
    }
}

/// Compare in time that does not depend on where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT") && !same(b"secret", b"secret2") && !same(b"", b"x"));
    }

    #[test]
    fn only_loopback_addresses_go_without_a_token() {
        assert!(is_loopback("127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(is_loopback("::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(!is_loopback(IpAddr::from([0, 0, 0, 0])) && !is_loopback(IpAddr::from([192, 168, 1, 5])));
    }
}
