//! Where a dispatched message goes: AWS Lambda, or this process.

pub mod lambda;
pub mod local;

use crate::envelope::Envelope;
use crate::error::DispatchError;

/// A configured backend.
#[derive(Debug)]
pub(crate) enum Backend {
    Lambda(std::sync::Arc<lambda::LambdaInvoker>),
    Local(Box<local::LocalBackend>),
}

impl Backend {
    /// Send one encoded message. `function` is the target on the lambda backend.
    pub(crate) async fn send(&self, env: &Envelope, function: Option<&str>, payload: Vec<u8>) -> Result<(), DispatchError> {
        match self {
            Backend::Lambda(l) => {
                let function = function.ok_or(crate::error::ConfigError::NoFunction)?;
                l.invoke_event(&env.task, function, payload).await
            }
            Backend::Local(l) => l.enqueue(payload, env.retries),
        }
    }
}
