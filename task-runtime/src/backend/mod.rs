//! Where a dispatched message goes: AWS Lambda (now, or later through
//! EventBridge Scheduler), or this process.

pub mod lambda;
pub mod local;
pub mod scheduler;

use std::sync::Arc;

use crate::envelope::Envelope;
use crate::error::{ConfigError, DispatchError};

/// A configured backend.
#[derive(Debug)]
pub(crate) enum Backend {
    Lambda {
        invoker: Arc<lambda::LambdaInvoker>,
        scheduler: Arc<scheduler::Scheduler>,
        /// The role EventBridge Scheduler assumes to invoke the function.
        scheduler_role_arn: Option<String>,
    },
    Local(Box<local::LocalBackend>),
}

impl Backend {
    /// Send one encoded message, now or at `run_at_ms` (epoch ms). `function`
    /// is the target on the lambda backend.
    pub(crate) async fn send(&self, env: &Envelope, function: Option<&str>, payload: Vec<u8>, run_at_ms: Option<u64>) -> Result<(), DispatchError> {
        match self {
            Backend::Lambda { invoker, scheduler, scheduler_role_arn } => {
                let function = function.ok_or(ConfigError::NoFunction)?;
                let Some(at) = run_at_ms else {
                    return invoker.invoke_event(&env.task, function, payload).await;
                };
                let delay_error = |problem: String| DispatchError::BadDelay { task: env.task.clone(), problem };
                let role = scheduler_role_arn.as_deref().ok_or_else(|| {
                    delay_error(
                        "a delayed task on AWS needs TASK_SCHEDULER_ROLE_ARN: the IAM role EventBridge Scheduler assumes \
                         to invoke the function (it needs lambda:InvokeFunction on it)"
                            .into(),
                    )
                })?;
                let arn = function_arn(function, crate::context::invoked_function_arn().as_deref()).ok_or_else(|| {
                    delay_error(format!(
                        "a delayed task needs the function's ARN for EventBridge Scheduler, and `{function}` is a name \
                         (set TASK_FUNCTION to arn:aws:lambda:REGION:ACCOUNT:function:{function}, or send from inside Lambda)"
                    ))
                })?;
                scheduler.create(&env.schedule_key(), &arn, role, &payload, at).await.map_err(|message| DispatchError::Schedule {
                    task: env.task.clone(),
                    id: env.id.clone(),
                    message,
                })
            }
            Backend::Local(l) => l.enqueue(payload, env.retries, run_at_ms),
        }
    }

    /// Remove the schedule of a cancelled call (the local backend's timer
    /// finds the call cancelled and runs nothing).
    pub(crate) async fn unschedule(&self, id: &str) -> Result<(), String> {
        match self {
            Backend::Lambda { scheduler, .. } => scheduler.delete(id).await,
            Backend::Local(_) => Ok(()),
        }
    }
}

/// The ARN of `function`: as given when it is one, else built from the
/// region and account of the invocation this code runs in.
fn function_arn(function: &str, invoked: Option<&str>) -> Option<String> {
    if function.starts_with("arn:") {
        return Some(function.to_owned());
    }
    let parts: Vec<&str> = invoked?.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "lambda", region, account, "function", ..] => {
            Some(format!("arn:{partition}:lambda:{region}:{account}:function:{function}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_name_becomes_an_arn_in_the_caller_s_account() {
        let invoked = Some("arn:aws:lambda:eu-west-1:123456789012:function:web:live");
        assert_eq!(function_arn("worker", invoked).as_deref(), Some("arn:aws:lambda:eu-west-1:123456789012:function:worker"));
        assert_eq!(function_arn("arn:aws:lambda:us-east-1:1:function:x", None).as_deref(), Some("arn:aws:lambda:us-east-1:1:function:x"));
        assert_eq!(function_arn("worker", None), None);
    }
}
