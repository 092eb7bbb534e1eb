//! The worker's entry points on AWS Lambda, over `lambda_runtime`.
//!
//! An event carrying the `task_runtime` marker goes to the [`Worker`];
//! anything else goes to your handler, deserialized as its event type.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::Service;

use crate::envelope::{Incoming, WARMUP_MARKER, WarmUp};
use crate::outcome::Reply;
use crate::worker::{Invocation, Worker};

/// Set to anything, it makes [`run`] print the worker's manifest (its tasks,
/// schedules, event handlers and keep-warm, as JSON) and exit, before the
/// Lambda runtime starts: what the template generator and task-local read.
pub const MANIFEST_VAR: &str = "TASK_RUNTIME_MANIFEST";

/// The target of lambda_runtime's log line that prints every raw event at
/// TRACE: task arguments, and an HTTP request's headers (`x-api-key`,
/// `authorization`, cookies) included.
pub const RAW_EVENT_LOG_TARGET: &str = "lambda_runtime::layers::api_response";

/// Log as lambda_runtime's default subscriber does (the level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`), except that lambda_runtime's TRACE line
/// with each raw event ([`RAW_EVENT_LOG_TARGET`]) is never written, whatever
/// the level: secrets in events do not reach the logs. Its errors still are.
/// With a subscriber of your own, add the directive
/// `lambda_runtime::layers::api_response=debug` to the same effect.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
///     task_runtime::init_tracing();
///     task_runtime::run_tasks().await
/// }
/// ```
pub fn init_tracing() {
    use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
    use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
    // Another subscriber set first (a test, the user's own) stays: not an error.
    let _ = lambda_runtime::tracing::subscriber::registry().with(level_filter()).with(line_format()).try_init();
}

/// [`init_tracing`], plus the export of its spans over OTLP/HTTP (JSON)
/// when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set: see
/// [`crate::otel`]. Returns whether the exporter is on.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     task_runtime::init_tracing_with_otlp()?;
///     task_runtime::run_tasks().await
/// }
/// ```
#[cfg(feature = "opentelemetry")]
pub fn init_tracing_with_otlp() -> Result<bool, crate::otel::OtlpError> {
    use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
    use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
    let otlp = crate::otel::layer()?;
    let on = otlp.is_some();
    lambda_runtime::tracing::subscriber::registry().with(level_filter()).with(line_format()).with(otlp).try_init()?;
    Ok(on)
}

/// The level filter of [`init_tracing`]: the level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (INFO by default).
fn level_filter() -> lambda_runtime::tracing::subscriber::filter::EnvFilter {
    use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = level.ok().and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let quiet_raw_events = format!("{RAW_EVENT_LOG_TARGET}=debug").parse().expect("a valid directive");
    EnvFilter::builder().with_default_directive(level.into()).from_env_lossy().add_directive(quiet_raw_events)
}

/// The line format of [`init_tracing`]: text, or JSON lines with
/// `AWS_LAMBDA_LOG_FORMAT=json`.
fn line_format<S>() -> impl lambda_runtime::tracing::subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'span> lambda_runtime::tracing::subscriber::registry::LookupSpan<'span>,
{
    use lambda_runtime::tracing::subscriber::{Layer, fmt};
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let text = (!json).then(|| fmt::layer().with_target(false).without_time());
    let json = json.then(|| fmt::layer().with_target(false).without_time().json());
    Layer::and_then(text, json)
}

/// Serve tasks and, for every other event, `handler` (any
/// `tower::Service<LambdaEvent<E>>`, e.g. `lambda_runtime::service_fn`).
///
/// ```no_run
/// use lambda_runtime::{service_fn, LambdaEvent};
/// use serde_json::Value;
///
/// async fn hello(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
///     Ok(serde_json::json!({"echo": event.payload}))
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     task_runtime::run(service_fn(hello)).await
/// }
/// ```
pub async fn run<S, E, R>(handler: S) -> Result<(), lambda_runtime::Error>
where
    S: Service<LambdaEvent<E>, Response = R> + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Diagnostic> + std::fmt::Debug,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    if std::env::var_os(MANIFEST_VAR).is_some() {
        // Asked for the manifest (by the template generator, or task-local): print it, start nothing.
        println!("{}", crate::schedules::manifest());
        std::process::exit(0);
    }
    let worker = Worker::from_runtime()?;
    tracing::info!("task worker starting");
    lambda_runtime::run(TaskService { worker, inner: handler, _event: std::marker::PhantomData }).await
}

/// Serve tasks only; any other event is answered with error type `NotATaskEvent`.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     task_runtime::run_tasks().await
/// }
/// ```
pub async fn run_tasks() -> Result<(), lambda_runtime::Error> {
    run(tower::service_fn(|_: LambdaEvent<Value>| async {
        Err::<Value, Diagnostic>(Diagnostic {
            error_type: "NotATaskEvent".into(),
            error_message: format!("this function runs tasks only, and the event has no `{}` key", crate::envelope::MARKER),
        })
    }))
    .await
}

/// What Lambda is told for a [`Reply`]: `Ok` for success, a `Diagnostic`
/// with the stable `errorType` for a function error (see [`Reply`]).
pub fn reply_to_result(reply: Reply) -> Result<Value, Diagnostic> {
    match reply {
        Reply::Success(v) => Ok(v),
        Reply::Error { error_type, message } => Err(Diagnostic { error_type: error_type.into(), error_message: message }),
    }
}

/// The invocation a Lambda context describes: for driving a
/// [`Worker`](crate::worker::Worker) from your own lambda_runtime service.
///
/// ```no_run
/// use lambda_runtime::{service_fn, LambdaEvent};
/// use task_runtime::worker::Worker;
/// use task_runtime::{invocation, reply_to_result};
///
/// # async fn demo() -> Result<(), lambda_runtime::Error> {
/// let worker = Worker::from_runtime()?;
/// lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
///     let worker = worker.clone();
///     async move {
///         let inv = invocation(&event.context);
///         match worker.handle_event(&event.payload, &inv).await {
///             Some(reply) => reply_to_result(reply),
///             None => Ok(serde_json::json!({"ignored": true})),
///         }
///     }
/// }))
/// .await
/// # }
/// ```
pub fn invocation(ctx: &lambda_runtime::Context) -> Invocation {
    Invocation { request_id: ctx.request_id.clone(), deadline_ms: ctx.deadline, attempt: None }
}

/// Answer a keep-warm ping at once, running nothing. A ping for `N > 1`
/// instances first fans out `N - 1` concurrent warm-up invokes of this same
/// function (as it was invoked, qualifier included), each held briefly so
/// that Lambda gives each its own instance, and holds itself as long.
async fn keep_warm(ping: WarmUp, own_arn: &str) -> Reply {
    const HOLD_MS: u64 = 250;
    let fan_out = ping.instances.saturating_sub(1);
    if fan_out == 0 || ping.hold_ms > 0 {
        return crate::worker::Worker::warm(ping).await;
    }
    let Ok(crate::runtime::Runtime { backend: crate::backend::Backend::Lambda { invoker, .. }, .. }) = crate::runtime::runtime() else {
        return Reply::Success(serde_json::json!({"warm": true, "fanned_out": 0, "note": "no Lambda backend to fan out with"}));
    };
    let payload = serde_json::json!({WARMUP_MARKER: {"instances": 1, "hold_ms": HOLD_MS}}).to_string().into_bytes();
    let pings = (0..fan_out).map(|_| invoker.invoke_sync(own_arn, payload.clone()));
    let (answers, _) = futures::join!(futures::future::join_all(pings), tokio::time::sleep(std::time::Duration::from_millis(HOLD_MS)));
    let warmed = answers.iter().filter(|a| a.is_ok()).count();
    if let Some(Err(e)) = answers.iter().find(|a| a.is_err()) {
        tracing::warn!("keep-warm: {} of {fan_out} warm-up invokes failed, e.g. {e}", fan_out as usize - warmed);
    }
    Reply::Success(serde_json::json!({"warm": true, "fanned_out": fan_out, "warmed": warmed}))
}

/// Routes task messages to the worker and everything else to `inner`.
struct TaskService<S, E> {
    worker: Worker,
    inner: S,
    _event: std::marker::PhantomData<fn(E)>,
}

type BoxFut = Pin<Box<dyn Future<Output = Result<Value, Diagnostic>> + Send>>;

impl<S, E, R> Service<LambdaEvent<Value>> for TaskService<S, E>
where
    S: Service<LambdaEvent<E>, Response = R>,
    S::Future: Send + 'static,
    S::Error: Into<Diagnostic>,
    E: DeserializeOwned,
    R: Serialize,
{
    type Response = Value;
    type Error = Diagnostic;
    type Future = BoxFut;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Diagnostic>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> BoxFut {
        let (payload, ctx) = event.into_parts();
        let incoming = Incoming::classify(&payload);
        // An AWS event goes to the worker when an #[on_event] handler takes
        // it, or it is a failure queue's batch no handler takes.
        let ours = match &incoming {
            Incoming::NotATask => self.worker.takes(&payload),
            _ => true,
        };
        match incoming {
            Incoming::NotATask if !ours => {
                let event: E = match serde_json::from_value(payload) {
                    Ok(e) => e,
                    Err(e) => {
                        let d = Diagnostic {
                            error_type: "InvalidEvent".into(),
                            error_message: format!("the event does not decode as the handler's event type: {e}"),
                        };
                        return Box::pin(async move { Err(d) });
                    }
                };
                let invoked: std::sync::Arc<str> = ctx.invoked_function_arn.as_str().into();
                let fut = self.inner.call(LambdaEvent::new(event, ctx));
                Box::pin(async move {
                    let response = crate::context::within_invocation(invoked, fut).await.map_err(Into::into)?;
                    serde_json::to_value(response).map_err(|e| Diagnostic {
                        error_type: "InvalidResponse".into(),
                        error_message: format!("the handler's response does not serialize to JSON: {e}"),
                    })
                })
            }
            Incoming::WarmUp(ping) => {
                let own = ctx.invoked_function_arn.clone();
                Box::pin(async move { reply_to_result(keep_warm(ping, &own).await) })
            }
            incoming => {
                let worker = self.worker.clone();
                let inv = invocation(&ctx);
                let invoked: std::sync::Arc<str> = ctx.invoked_function_arn.as_str().into();
                Box::pin(async move {
                    let handled = worker.handle_classified(incoming, Some(&payload), &inv);
                    let reply = crate::context::within_invocation(invoked, handled).await;
                    // Lambda may freeze the process once this answers: send the spans first.
                    #[cfg(feature = "opentelemetry")]
                    crate::otel::flush().await;
                    match reply {
                        Some(reply) => reply_to_result(reply),
                        None => Err(Diagnostic { error_type: "NotATaskEvent".into(), error_message: "not a task message".into() }),
                    }
                })
            }
        }
    }
}
