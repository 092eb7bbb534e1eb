//! One function for an HTTP app and its tasks (feature `http`): API
//! Gateway, Function URL and ALB events go to your app through
//! `lambda_http`; task messages go to the worker. With `TASK_API_KEYS` set,
//! requests need an `x-api-key` header holding one of the keys
//! ([`ApiKeys`]): for a Function URL or a local run, where no API Gateway
//! checks keys.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, IntoResponse, Request, Response};
use lambda_runtime::Diagnostic;
use sha2::{Digest, Sha256};
use tower::Service;

pub use lambda_http;

/// The variable of the accepted API keys, comma-separated: several at once,
/// so that a key can be rotated (add the new one, move callers, drop the old).
pub const API_KEYS_VAR: &str = "TASK_API_KEYS";

/// The keys an HTTP app accepts in `x-api-key`. Compared in constant time
/// (SHA-256 digests, XOR-folded); a key is never logged.
///
/// ```
/// use task_runtime::lambda_http::http::{HeaderMap, HeaderValue, StatusCode};
/// use task_runtime::ApiKeys;
///
/// let keys = ApiKeys::new(["key-2026-11", "key-2026-12"]); // rotating: both accepted
/// let mut headers = HeaderMap::new();
/// assert_eq!(keys.check(&headers).unwrap_err().0, StatusCode::UNAUTHORIZED);
/// headers.insert("x-api-key", HeaderValue::from_static("key-2026-12"));
/// assert!(keys.check(&headers).is_ok());
/// headers.insert("x-api-key", HeaderValue::from_static("guess"));
/// assert_eq!(keys.check(&headers).unwrap_err().0, StatusCode::FORBIDDEN);
/// assert!(!format!("{keys:?}").contains("key-2026"));
/// ```
#[derive(Clone)]
pub struct ApiKeys {
    digests: Arc<[[u8; 32]]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s), <redacted>)", self.digests.len())
    }
}

impl ApiKeys {
    /// Accept these keys (empty ones are ignored).
    pub fn new<K: AsRef<str>>(keys: impl IntoIterator<Item = K>) -> Self {
        let digests: Vec<[u8; 32]> =
            keys.into_iter().map(|k| k.as_ref().trim().to_owned()).filter(|k| !k.is_empty()).map(|k| Sha256::digest(k.as_bytes()).into()).collect();
        Self { digests: digests.into() }
    }

    /// The keys of `TASK_API_KEYS`, or `None` when it is unset or empty (no check).
    pub fn from_env() -> Option<Self> {
        let keys = Self::new(std::env::var(API_KEYS_VAR).ok()?.split(','));
        (!keys.digests.is_empty()).then_some(keys)
    }

    /// `Ok` when `x-api-key` holds an accepted key; else the status to
    /// answer (401 without a key, 403 with a wrong one) and why.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
        let Some(given) = headers.get("x-api-key").and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty()) else {
            return Err((StatusCode::UNAUTHORIZED, "this API needs an x-api-key header"));
        };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        // Every key is compared, each in constant time.
        let matched = self.digests.iter().fold(false, |found, d| found | (d.iter().zip(&given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0));
        if matched { Ok(()) } else { Err((StatusCode::FORBIDDEN, "the x-api-key is not one this API accepts")) }
    }
}

/// `app`, behind the key check when there are keys.
struct Guarded<S> {
    inner: S,
    keys: Option<ApiKeys>,
}

type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, R, E> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'static,
    R: IntoResponse + 'static,
    E: Send + 'static,
{
    type Response = Response<Body>;
    type Error = E;
    type Future = ResponseFuture<E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> ResponseFuture<E> {
        if let Some(Err((status, why))) = self.keys.as_ref().map(|k| k.check(req.headers())) {
            tracing::warn!(%status, "refused a request: {why}");
            let body = serde_json::json!({"message": why}).to_string();
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status;
            resp.headers_mut().insert("content-type", lambda_http::http::HeaderValue::from_static("application/json"));
            return Box::pin(async move { Ok(resp) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let converting = fut.await?.into_response(); // the response itself need not be Send
            Ok(converting.await)
        })
    }
}

/// Serve `app` (an axum `Router`, or any `tower::Service<lambda_http::Request>`)
/// and every `#[task]` of this binary from one Lambda function. With
/// `TASK_API_KEYS` set, a request without an accepted `x-api-key` is
/// answered 401 or 403 with a JSON body, and never reaches `app`.
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
    let guarded = Guarded { inner: app, keys: ApiKeys::from_env() };
    crate::lambda::run(lambda_http::Adapter::<'static, Response<Body>, Guarded<S>>::from(guarded)).await
}
