//! Delayed calls on AWS: one EventBridge Scheduler schedule per call, a
//! one-time `at(...)` whose target is the function and whose input is the
//! task message, deleted by the service after it fires
//! (`ActionAfterCompletion = DELETE`). Lambda's own asynchronous queue has
//! no delay; Scheduler takes one-time schedules a year ahead and more.
//!
//! The schedule is named after the call's id ([`schedule_name`]), so that
//! cancelling a call deletes its schedule without a lookup.

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// Creates and deletes one-time schedules. Built once; the client is made on first use.
///
/// ```no_run
/// use task_runtime::backend::scheduler::Scheduler;
/// use task_runtime::Config;
///
/// # fn main() -> Result<(), task_runtime::ConfigError> {
/// // A client of your own (another endpoint, region or credentials):
/// # let client: aws_sdk_scheduler::Client = unimplemented!();
/// Config::from_env()?.with_scheduler(Scheduler::with_client(client)).install()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Scheduler {
    client: crate::aws::LazyClient<aws_sdk_scheduler::Client>,
}

impl Scheduler {
    /// A scheduler whose client is built from the environment on first use.
    pub fn lazy() -> Self {
        Self::default()
    }

    /// A scheduler whose client is built from `sdk` on first use.
    pub fn from_sdk_config(sdk: aws_config::SdkConfig) -> Self {
        Self { client: crate::aws::LazyClient::new(Some(sdk)) }
    }

    /// A scheduler over a client you built.
    pub fn with_client(client: aws_sdk_scheduler::Client) -> Self {
        Self { client: crate::aws::LazyClient::with(client) }
    }

    async fn client(&self) -> &aws_sdk_scheduler::Client {
        self.client.get(aws_sdk_scheduler::Client::new).await
    }

    /// Schedule `payload` to be sent to `function_arn` at `at_ms` (epoch ms,
    /// UTC), as `role_arn`. `Err` is what the service said.
    pub(crate) async fn create(&self, id: &str, function_arn: &str, role_arn: &str, payload: &[u8], at_ms: u64) -> Result<(), String> {
        let target = Target::builder()
            .arn(function_arn)
            .role_arn(role_arn)
            .input(String::from_utf8_lossy(payload))
            .build()
            .map_err(|e| e.to_string())?;
        let window = FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(|e| e.to_string())?;
        self.client()
            .await
            .create_schedule()
            .name(schedule_name(id))
            .schedule_expression(at_expression(at_ms))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .target(target)
            .action_after_completion(ActionAfterCompletion::Delete)
            .description(format!("task-runtime call {id}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }

    /// Delete the schedule of call `id`; one that is gone already (it fired,
    /// or was never made) is not an error.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), String> {
        match self.client().await.delete_schedule().name(schedule_name(id)).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn describe<E>(e: &aws_sdk_scheduler::error::SdkError<E, aws_sdk_scheduler::config::http::HttpResponse>) -> String
where
    E: aws_sdk_scheduler::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code, message) = crate::aws::describe(e);
    match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s}, {c}: {message}"),
        (Some(s), None) => format!("HTTP {s}: {message}"),
        _ => message,
    }
}

/// The schedule of call `id`: `task-<id>` when the id fits Scheduler's
/// names (letters, digits, `-_.`, at most 64 characters), else
/// `task-<SHA-256 of the id, 40 hex digits>`.
///
/// ```
/// use task_runtime::backend::scheduler::schedule_name;
/// assert_eq!(schedule_name("0b1d6a3e-4f1c-4a7e-9d2b-1c2d3e4f5a6b"), "task-0b1d6a3e-4f1c-4a7e-9d2b-1c2d3e4f5a6b");
/// assert_eq!(schedule_name("order 7/receipt").len(), 45);
/// ```
pub fn schedule_name(id: &str) -> String {
    let fits = id.len() <= 59 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fits {
        format!("task-{id}")
    } else {
        format!("task-{}", &crate::envelope::payload_digest(id.as_bytes())[..40])
    }
}

/// `at(2026-11-27T10:30:00)` for epoch ms, in UTC, rounded up to the second.
fn at_expression(at_ms: u64) -> String {
    let secs = at_ms.div_ceil(1000);
    let text = DateTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX)).fmt(Format::DateTime).unwrap_or_default();
    format!("at({})", text.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_are_utc_seconds() {
        assert_eq!(at_expression(1_795_774_496_000), "at(2026-11-27T10:14:56)");
        assert_eq!(at_expression(1_795_774_496_001), "at(2026-11-27T10:14:57)");
    }

    #[test]
    fn schedule_names_fit_the_service() {
        let long = "x".repeat(80);
        for id in ["ok-id_1.2", "with space", "ünïcode", long.as_str()] {
            let name = schedule_name(id);
            assert!(name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{name}");
        }
    }
}
