//! The errors a process can fail to start with: configuration, and two
//! tasks with one name.

/// A problem with configuration: an environment variable or a value set in code.
///
/// ```
/// use task_runtime::{Config, ConfigError};
///
/// let env = |k: &str| (k == "TASK_MAX_ATTEMPTS").then(|| "5".to_string());
/// let err = Config::from_lookup(env).unwrap_err();
/// assert!(matches!(err, ConfigError::Invalid { var: "TASK_MAX_ATTEMPTS", .. }));
/// assert!(err.to_string().starts_with("environment variable TASK_MAX_ATTEMPTS=\"5\" is invalid"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable, e.g. `TASK_MAX_ATTEMPTS`.
        var: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The lambda backend needs a function to invoke.
    #[error("the lambda backend needs a function to invoke: set TASK_FUNCTION (or run inside Lambda, where AWS_LAMBDA_FUNCTION_NAME is set)")]
    NoFunction,
    /// [`crate::Config::install`] was called after the runtime was set up.
    #[error("the task runtime is already configured: call Config::install before the first dispatch or poll")]
    AlreadyInstalled,
}

/// Two tasks share one name, so the worker cannot start.
///
/// ```
/// use task_runtime::registry::{ArgsError, Registry, TaskDef, TaskFuture, TaskSpec};
///
/// fn call(_: serde_json::Map<String, serde_json::Value>) -> Result<TaskFuture, ArgsError> {
///     Ok(Box::pin(async { Ok(serde_json::Value::Null) }))
/// }
/// const SPEC: TaskSpec = TaskSpec { name: "send_mail", function: None, capture_response: true, retries: None, timeout_ms: None, retry: task_runtime::policy::RetryPolicy::LAMBDA, limits: task_runtime::policy::Limits::NONE, idempotency: None };
/// static A: TaskDef = TaskDef { spec: SPEC, rust_path: "a::send_mail", location: "src/a.rs:3", call };
/// static B: TaskDef = TaskDef { spec: SPEC, rust_path: "b::send_mail", location: "src/b.rs:9", call };
///
/// let err = Registry::from_defs([&A, &B]).unwrap_err();
/// assert_eq!((err.first.as_str(), err.second.as_str()), ("a::send_mail", "b::send_mail"));
/// assert!(err.to_string().contains("src/b.rs:9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task name `{name}` is registered twice: by `{first}` ({first_location}) and by `{second}` ({second_location}); give one of them #[task(name = \"...\")]")]
pub struct RegistryError {
    /// The shared task name.
    pub name: String,
    /// The Rust path of the first function.
    pub first: String,
    /// Where the first function is defined.
    pub first_location: String,
    /// The Rust path of the second function.
    pub second: String,
    /// Where the second function is defined.
    pub second_location: String,
}

/// Any error the runtime can fail to start with.
///
/// ```
/// fn start() -> Result<task_runtime::worker::Worker, task_runtime::Error> {
///     task_runtime::worker::Worker::from_runtime() // bad configuration, or two tasks with one name
/// }
/// # let _ = start;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two tasks share a name.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}
