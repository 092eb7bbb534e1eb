//! Helpers shared by the integration tests: the DynamoDB Local endpoint
//! that `scripts/test` starts, and SDK clients pointed at loopback.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod costs;
pub mod faults;
pub mod moto;
pub mod web;
pub mod task_local;
pub mod workspace;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

/// Run `f` on the one runtime of this test binary. Tests that install the
/// lambda backend share its SDK clients, and a client's pooled connections
/// belong to the runtime that opened them: a `#[tokio::test]`'s runtime ends
/// with its test, and the next test to reuse such a connection fails.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime")).block_on(f)
}

/// The DynamoDB Local endpoint; fails the test, saying how to get one, when absent.
pub fn dynamodb_endpoint() -> String {
    match std::env::var("TASK_TEST_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "TASK_TEST_DYNAMODB_ENDPOINT is not set: this test needs DynamoDB Local. Run the suite with \
             `scripts/test` (it installs and starts DynamoDB Local), or start it yourself with \
             `scripts/dynamodb-local start` and export TASK_TEST_DYNAMODB_ENDPOINT=<the endpoint it prints>."
        ),
    }
}

/// An SDK configuration for loopback: static test credentials, us-east-1.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A DynamoDB client for DynamoDB Local.
pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(&dynamodb_endpoint()))
}

/// The lambda backend's configuration for a caller under task-local at
/// `endpoint`: function `function`, the response table `table` in DynamoDB
/// Local, Scheduler's API at task-local too (with a role to name).
pub fn lambda_config(endpoint: &str, function: &str, table: &str) -> task_runtime::Config {
    let sdk = sdk_config(endpoint);
    let mut config = task_runtime::Config::lambda(function, None)
        .with_store(std::sync::Arc::new(task_runtime::store::dynamodb::DynamoStore::with_client(dynamodb(), table)))
        .with_invoker(task_runtime::backend::lambda::LambdaInvoker::with_client(aws_sdk_lambda::Client::new(&sdk)))
        .with_scheduler(task_runtime::backend::scheduler::Scheduler::with_client(aws_sdk_scheduler::Client::new(&sdk)));
    config.scheduler_role_arn = Some("arn:aws:iam::000000000000:role/scheduler-invokes-fault".into());
    config
}

/// A table name no other test uses.
pub fn table_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One request the fake Lambda endpoint received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// How the fake answers a request: status, extra headers, body.
pub type Responder = std::sync::Arc<dyn Fn(&Captured) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

/// A loopback HTTP server that records every request. Stopped when dropped.
pub struct FakeLambda {
    pub endpoint: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLambda {
    pub async fn start(respond: Responder) -> Self {
        Self::start_with(respond, true).await
    }

    /// One that answers but keeps nothing (`received` is empty): for runs
    /// of many requests whose memory is measured (the responder can count).
    pub async fn forgetful(respond: Responder) -> Self {
        Self::start_with(respond, false).await
    }

    async fn start_with(respond: Responder, keep: bool) -> Self {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::response::IntoResponse;
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let state = (requests.clone(), respond);
        let app = axum::Router::new()
            .fallback(
                move |State((log, respond)): State<(std::sync::Arc<std::sync::Mutex<Vec<Captured>>>, Responder)>,
                 method: http::Method,
                 uri: http::Uri,
                 headers: http::HeaderMap,
                 body: Bytes| async move {
                    let c = Captured { method: method.to_string(), path: uri.path().to_owned(), headers, body: body.to_vec() };
                    let (status, extra, text) = respond(&c);
                    if keep {
                        log.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                    }
                    let mut resp = (http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR), text).into_response();
                    resp.headers_mut().insert("x-amzn-requestid", http::HeaderValue::from_static("fake-request-id"));
                    for (k, v) in extra {
                        if let Ok(v) = http::HeaderValue::from_str(&v) {
                            resp.headers_mut().insert(k, v);
                        }
                    }
                    resp
                },
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { endpoint, requests, task }
    }

    pub fn received(&self) -> Vec<Captured> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A Lambda client for this endpoint whose retries back off in milliseconds.
    pub fn client(&self) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "tests"))
            .endpoint_url(&self.endpoint)
            .retry_config(
                aws_sdk_lambda::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(5)),
            )
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An AWS-style JSON error answer.
pub fn aws_error(status: u16, code: &str, message: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        status,
        vec![("x-amzn-errortype", code.to_owned()), ("content-type", "application/json".to_owned())],
        serde_json::json!({"Type": "User", "message": message}).to_string(),
    )
}

/// A loopback port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Point `cmd`'s AWS clients at loopback: Lambda at `lambda` (task-local),
/// DynamoDB at DynamoDB Local, us-east-1, and any credentials.
pub fn loopback_aws<'a>(cmd: &'a mut std::process::Command, lambda: &str) -> &'a mut std::process::Command {
    cmd.env("AWS_ENDPOINT_URL_LAMBDA", lambda)
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
}

/// The ids of the items of `table` that start with `prefix` (a scan: tests only).
pub async fn ids_with_prefix(table: &str, prefix: &str) -> Vec<(String, aws_sdk_dynamodb::types::AttributeValue)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let scan = dynamodb()
        .scan()
        .table_name(table)
        .filter_expression("begins_with(id, :prefix)")
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
        .send()
        .await
        .expect("scan");
    let mut found: Vec<(String, AttributeValue)> = scan
        .items()
        .iter()
        .filter_map(|i| Some((i.get("id")?.as_s().ok()?.clone(), i.get("attempts").cloned().unwrap_or(AttributeValue::Null(true)))))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A worker over this binary's tasks and `#[on_event]` handlers, with an
/// in-memory store and short test settings (signing on with `signing_key`).
pub fn memory_worker(signing_key: Option<&[u8]>) -> (task_runtime::worker::Worker, std::sync::Arc<task_runtime::store::memory::MemoryStore>) {
    use task_runtime::worker::{Worker, WorkerSettings};
    let settings = WorkerSettings {
        max_attempts: 3,
        response_ttl: std::time::Duration::from_secs(60),
        timeout_margin: std::time::Duration::from_millis(10),
        lease: std::time::Duration::from_secs(10),
        signing_key: signing_key.map(std::sync::Arc::from),
    };
    let store = std::sync::Arc::new(task_runtime::store::memory::MemoryStore::default());
    let registry = task_runtime::registry::Registry::global().expect("no duplicate names in this binary");
    (Worker::new(registry, Some(store.clone() as std::sync::Arc<dyn task_runtime::store::ResponseStore>), settings), store)
}

/// One delivery: a fresh request id, a deadline 30 s away.
pub fn invocation() -> task_runtime::worker::Invocation {
    task_runtime::worker::Invocation { request_id: uuid::Uuid::new_v4().to_string(), deadline_ms: now_ms() + 30_000, attempt: None }
}

/// Create the one-time schedule `name` (`at`, e.g. `at(2099-01-01T00:00:00)`)
/// for `target` in `state`, through the Scheduler API at `endpoint`
/// (task-local's), as a deployment or a caller would.
pub async fn create_one_time_schedule(endpoint: &str, name: &str, at: &str, target: aws_sdk_scheduler::types::Target, state: aws_sdk_scheduler::types::ScheduleState) {
    let window = aws_sdk_scheduler::types::FlexibleTimeWindow::builder().mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off).build().expect("window");
    aws_sdk_scheduler::Client::new(&sdk_config(endpoint))
        .create_schedule()
        .name(name)
        .schedule_expression(at)
        .state(state)
        .flexible_time_window(window)
        .target(target)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSchedule {name}: {e:?}"));
}
