//! The AWS SDK configuration, loaded once from aws-config's standard chain
//! (honouring `AWS_REGION`, `AWS_ENDPOINT_URL_LAMBDA`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, ...) and shared by every client.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

/// The process's SDK configuration, loaded on first use.
pub(crate) async fn sdk_config() -> &'static SdkConfig {
    static SHARED: OnceCell<SdkConfig> = OnceCell::const_new();
    SHARED.get_or_init(|| aws_config::load_defaults(BehaviorVersion::latest())).await
}

/// The given SDK configuration, or the shared one from the environment.
pub(crate) async fn config_or_env(given: Option<&SdkConfig>) -> SdkConfig {
    match given {
        Some(c) => c.clone(),
        None => sdk_config().await.clone(),
    }
}

/// What an SDK error says: the HTTP status when there was a response, the
/// AWS error code, and the message.
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let message = se.err().message().map_or_else(|| DisplayErrorContext(err).to_string(), str::to_owned);
            (Some(se.raw().status().as_u16()), se.err().code().map(str::to_owned), message)
        }
        SdkError::ResponseError(re) => (Some(re.raw().status().as_u16()), None, DisplayErrorContext(err).to_string()),
        other => (None, None, DisplayErrorContext(other).to_string()),
    }
}
