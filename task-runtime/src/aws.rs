//! The AWS SDK configuration, loaded once from aws-config's standard chain
//! (honouring `AWS_REGION`, `AWS_ENDPOINT_URL_LAMBDA`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, ...) and shared by every client.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

/// The process's SDK configuration, loaded on first use.
pub(crate) async fn sdk_config() -> &'static SdkConfig {
    static SHARED: OnceCell<SdkConfig> = OnceCell::const_new();
    SHARED.get_or_init(|| aws_config::load_defaults(BehaviorVersion::latest())).await
}

/// The given SDK configuration, or the shared one from the environment.
/// An SDK client built once, on first use: from a given SDK configuration,
/// or from the environment's; or one the user built.
#[derive(Debug)]
pub(crate) struct LazyClient<C> {
    client: OnceCell<C>,
    sdk: Option<SdkConfig>,
}

impl<C> LazyClient<C> {
    /// Built from `sdk` (the environment's when `None`) on first use.
    pub(crate) fn new(sdk: Option<SdkConfig>) -> Self {
        Self { client: OnceCell::new(), sdk }
    }

    /// This client.
    pub(crate) fn with(client: C) -> Self {
        Self { client: OnceCell::new_with(Some(client)), sdk: None }
    }

    /// The client, built with `make` the first time.
    pub(crate) async fn get(&self, make: fn(&SdkConfig) -> C) -> &C {
        if let Some(client) = self.client.get() {
            return client;
        }
        // Boxed: loading the configuration is a future of tens of KB that
        // every call's future would otherwise carry (see `boxed`).
        boxed(self.client.get_or_init(|| async {
            // Once per client and process: what "clients are built lazily" is checked by.
            tracing::debug!(client = std::any::type_name::<C>(), "building an AWS SDK client");
            make(&config_or_env(self.sdk.as_ref()).await)
        }))
        .await
    }
}

impl<C> Default for LazyClient<C> {
    fn default() -> Self {
        Self::new(None)
    }
}

pub(crate) async fn config_or_env(given: Option<&SdkConfig>) -> SdkConfig {
    match given {
        Some(c) => c.clone(),
        None => sdk_config().await.clone(),
    }
}

/// `fut` on the heap. An SDK operation's future is several KB (an
/// `Invoke`'s, 5.5 KB; loading the configuration, tens of KB), and every
/// future that awaits one in place carries it and is moved with it. With
/// both in place, a `#[task]` call's future was 27,360 bytes, and moving it
/// showed in a profile of 32 dispatches in flight as `memmove`; the send
/// boxed once in `dispatch`, it is about 2 KB.
pub(crate) fn boxed<F: std::future::Future>(fut: F) -> std::pin::Pin<Box<F>> {
    Box::pin(fut)
}

/// What an SDK error says: the HTTP status when there was a response, the
/// AWS error code, and the message.
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let message = se.err().message().map_or_else(|| chain(err), str::to_owned);
            (Some(se.raw().status().as_u16()), se.err().code().map(str::to_owned), message)
        }
        SdkError::ResponseError(re) => (Some(re.raw().status().as_u16()), None, chain(err)),
        other => (None, None, chain(other)),
    }
}

/// The error and its causes, one `: ` apart, with a hint when the cause is
/// that no AWS credentials were found.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    for cause in crate::error::causes(err) {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    if text.contains("loading credentials") || text.contains("no credentials") {
        text.push_str(
            " (no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; \
             for DynamoDB Local and task-local any values will do)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("an error occurred while loading credentials")]
    struct Inner;

    #[test]
    fn the_chain_reads_as_one_sentence_with_a_hint_for_credentials() {
        let text = chain(&Outer(Inner));
        assert!(text.starts_with("dispatch failure: an error occurred while loading credentials (no AWS credentials found"), "{text}");
    }
}
