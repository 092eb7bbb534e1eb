//! The library's configuration for a command: the environment, as a worker
//! or a caller reads it, with the command's own `--function`; and errors
//! turned into what to do about them.

use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{BackendKind, Config, ConfigError, StoreError};

use crate::Problem;

/// Install the configuration: the lambda backend always (this program
/// sends to Lambda or task-local, never to itself), to `function` when given.
pub(crate) fn install(function: Option<&str>) -> Result<Config, Problem> {
    let mut config = Config::from_env().map_err(config_problem)?;
    if let Some(f) = function {
        config.function = Some(f.to_owned());
    }
    config.backend = BackendKind::Lambda;
    config.clone().install().map_err(config_problem)?;
    Ok(config)
}

/// The response table, or what to set.
pub(crate) fn table(config: &Config) -> Result<DynamoStore, Problem> {
    match &config.response_table {
        Some(t) => Ok(DynamoStore::lazy(t.clone())),
        None => Err(no_table()),
    }
}

fn no_table() -> Problem {
    Problem("no response table is configured: set TASK_RESPONSE_TABLE to the DynamoDB table the workers write to".into())
}

pub(crate) fn config_problem(e: ConfigError) -> Problem {
    match e {
        ConfigError::NoFunction => Problem("no function to send to: pass --function NAME or set TASK_FUNCTION".into()),
        other => Problem(other.to_string()),
    }
}

pub(crate) fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::NotConfigured => no_table(),
        StoreError::Config(c) => config_problem(c),
        other => Problem(with_hint(other.to_string())),
    }
}

/// An AWS error, with what to check when nothing answered.
pub(crate) fn with_hint(message: String) -> String {
    let lower = message.to_lowercase();
    if lower.contains("non-existent table") || lower.contains("requested resource not found") {
        format!("{message} (the table TASK_RESPONSE_TABLE names does not exist: create it with `tasks create-table`)")
    } else if lower.contains("specified index") || lower.contains("index not found") {
        format!("{message} (the table lacks an index this command reads: `tasks create-table` adds the missing ones)")
    } else if lower.contains("dispatch failure") || lower.contains("connection refused") || lower.contains("timed out") {
        format!(
            "{message} (nothing answered: check the endpoint, AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_LAMBDA / \
             AWS_ENDPOINT_URL_CLOUDWATCH_LOGS when you use local ones, and AWS_REGION)"
        )
    } else {
        message
    }
}

/// An error with its chain of causes, as one line of text.
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
