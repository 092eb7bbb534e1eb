//! The lambda backend: aws-sdk-lambda `Invoke` with `InvocationType=Event`.
//! Throttling and 5xx are retried by the SDK's standard retry; every other
//! failure is a [`DispatchError::Invoke`] naming what AWS answered.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::error::DispatchError;

/// Sends messages with asynchronous Lambda invokes. The client is built
/// once, on first use.
///
/// ```no_run
/// use task_runtime::backend::lambda::LambdaInvoker;
/// use task_runtime::Config;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // A client of your own: here, one that talks to `task-local` on port 9001.
/// let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url("http://127.0.0.1:9001").load().await;
/// let invoker = LambdaInvoker::with_client(aws_sdk_lambda::Client::new(&sdk));
/// invoker.invoke_event("demo", "worker", br#"{"ping": true}"#.to_vec()).await?;
/// Config::lambda("worker", None).with_invoker(invoker).install()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct LambdaInvoker {
    client: crate::aws::LazyClient<aws_sdk_lambda::Client>,
}

impl LambdaInvoker {
    /// An invoker whose client is built from the environment on first use.
    pub fn lazy() -> Self {
        Self::default()
    }

    /// An invoker whose client is built from `sdk` on first use.
    pub fn from_sdk_config(sdk: aws_config::SdkConfig) -> Self {
        Self { client: crate::aws::LazyClient::new(Some(sdk)) }
    }

    /// An invoker over a client you built (custom endpoint, test transport, ...).
    pub fn with_client(client: aws_sdk_lambda::Client) -> Self {
        Self { client: crate::aws::LazyClient::with(client) }
    }

    async fn client(&self) -> &aws_sdk_lambda::Client {
        self.client.get(aws_sdk_lambda::Client::new).await
    }

    /// Invoke `function` (name, ARN or qualified ARN) asynchronously with `payload`.
    /// 202 is success.
    pub async fn invoke_event(&self, task: &str, function: &str, payload: Vec<u8>) -> Result<(), DispatchError> {
        let fail = |status, code, message| DispatchError::Invoke {
            task: task.to_owned(),
            function: function.to_owned(),
            status,
            code,
            message,
        };
        let out = self.invoke(function, InvocationType::Event, payload).await.map_err(|(status, code, message)| fail(status, code, message))?;
        match out.status_code() {
            202 => Ok(()),
            other => Err(fail(
                u16::try_from(other).ok(),
                None,
                format!("expected 202 Accepted for an asynchronous invoke, got {other}"),
            )),
        }
    }

    /// Invoke `function` synchronously (`RequestResponse`) with `payload`:
    /// what a keep-warm ping fans out. `Ok` is the function's answer; a
    /// function error is `Err` too.
    pub async fn invoke_sync(&self, function: &str, payload: Vec<u8>) -> Result<Vec<u8>, DispatchError> {
        let fail = |status, code, message| DispatchError::Invoke { task: "(warm-up)".to_owned(), function: function.to_owned(), status, code, message };
        let out = self.invoke(function, InvocationType::RequestResponse, payload).await.map_err(|(status, code, message)| fail(status, code, message))?;
        let body = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        match out.function_error() {
            None => Ok(body),
            Some(kind) => Err(fail(Some(200), Some(kind.to_owned()), String::from_utf8_lossy(&body).into_owned())),
        }
    }

    /// One `Invoke`; an error as (HTTP status, AWS code, message).
    async fn invoke(
        &self,
        function: &str,
        kind: InvocationType,
        payload: Vec<u8>,
    ) -> Result<aws_sdk_lambda::operation::invoke::InvokeOutput, (Option<u16>, Option<String>, String)> {
        self.client()
            .await
            .invoke()
            .function_name(function)
            .invocation_type(kind)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| crate::aws::describe(&e))
    }
}
