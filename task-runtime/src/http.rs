//! One function for an HTTP app and its tasks (feature `http`): API
//! Gateway, Function URL and ALB events go to your app through
//! `lambda_http`; task messages go to the worker.

use lambda_runtime::Diagnostic;
use tower::Service;

pub use lambda_http;

/// Serve `app` (an axum `Router`, or any `tower::Service<lambda_http::Request>`)
/// and every `#[task]` of this binary from one Lambda function.
///
/// ```no_run
/// use axum::{routing::get, Router};
///
/// #[tokio::main]
/// async fn main() -> Result<(), task_runtime::lambda_runtime::Error> {
///     let app = Router::new().route("/", get(|| async { "hello" }));
///     task_runtime::run_http(app).await
/// }
/// ```
pub async fn run_http<S, R, E>(app: S) -> Result<(), lambda_runtime::Error>
where
    S: Service<lambda_http::Request, Response = R, Error = E> + 'static,
    S::Future: Send + 'static,
    R: lambda_http::IntoResponse + 'static,
    E: std::fmt::Debug + Into<Diagnostic> + Send + 'static,
{
    crate::lambda::run(lambda_http::Adapter::<'static, R, S>::from(app)).await
}
