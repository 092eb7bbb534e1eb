//! OpenTelemetry (feature `opentelemetry`): the worker's `task` spans, and
//! the spans of your own code under them, exported over OTLP/HTTP (JSON)
//! through `tracing-opentelemetry`, continuing the trace each message
//! carries (see [`crate::trace`]).
//!
//! [`init_tracing_with_otlp`](crate::init_tracing_with_otlp) is [`init_tracing`](crate::init_tracing) plus
//! the exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: on Lambda, the local
//! collector of the AWS Distro for OpenTelemetry layer
//! (`http://localhost:4318`). The exporter speaks plain HTTP, as to that
//! collector; spans are batched, and sent before each invocation answers
//! (Lambda freezes the process between invocations).
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     task_runtime::init_tracing_with_otlp()?;
//!     task_runtime::run_tasks().await
//! }
//! ```
//!
//! Without an exporter installed, the worker's spans cost what they cost
//! without the feature: every hook below returns at once.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The provider, once an exporter is installed.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The error of an exporter that could not be built.
pub type OtlpError = Box<dyn std::error::Error + Send + Sync>;

/// The tracing layer that exports spans over OTLP/HTTP (JSON), when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
/// set (the exporter reads the standard `OTEL_*` variables); `None`
/// otherwise. `service.name` is `OTEL_SERVICE_NAME`, else the function's
/// name. [`init_tracing_with_otlp`](crate::init_tracing_with_otlp) adds it.
pub fn layer<S>() -> Result<Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>, OtlpError>
where
    S: tracing::Subscriber + for<'span> lambda_runtime::tracing::subscriber::registry::LookupSpan<'span>,
{
    let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"].iter().any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()));
    if !endpoint {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpJson).build()?;
    let service = std::env::var("OTEL_SERVICE_NAME").or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME")).unwrap_or_else(|_| "task-runtime".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("task-runtime");
    if PROVIDER.set(provider).is_err() {
        return Err("an OTLP exporter is installed already".into());
    }
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Make the worker's `span` a child of the caller's `traceparent`.
pub(crate) fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if !enabled() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The `traceparent` of the span running now, when it is exported: a
/// message sent from it names it as the parent.
pub(crate) fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// Send the spans buffered so far; the worker calls it before each
/// invocation answers. Blocking: run on the blocking pool.
pub(crate) async fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let provider = provider.clone();
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }
}
