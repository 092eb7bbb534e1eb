//! The link-time registry of tasks: a linkme slice that `#[task]` adds to,
//! and the name -> definition map the worker builds from it once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::{RegistryError, TaskError};

/// The future a registered task returns: its value as JSON, or its error.
///
/// ```
/// use task_runtime::registry::TaskFuture;
/// let fut: TaskFuture = Box::pin(async { Ok(serde_json::json!(4)) });
/// # drop(fut);
/// ```
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;

/// The options of a task, fixed at compile time by `#[task(...)]`.
///
/// ```
/// use task_runtime::task;
///
/// #[task(name = "docs.spec.nap", retries = 1, capture_response = false)]
/// async fn nap(ms: u64) {}
///
/// assert_eq!(nap::SPEC.name, "docs.spec.nap");
/// assert_eq!(nap::SPEC.retries, Some(1));
/// assert!(!nap::SPEC.capture_response);
/// assert_eq!(nap::SPEC.function, None); // the configured default
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpec {
    /// The registered name (default `module_path::fn_name`).
    pub name: &'static str,
    /// The function to invoke, when not the configured default.
    pub function: Option<&'static str>,
    /// Whether the outcome is written to the response store.
    pub capture_response: bool,
    /// The most retries this task allows (0-100); `None` leaves it to the
    /// function. More than the function's own (Lambda's at most 2) are sent
    /// again by the runtime; see [`RetryPolicy`](crate::policy::RetryPolicy).
    pub retries: Option<u8>,
    /// This task's own time limit in ms (`#[task(timeout = "30s")]`), below
    /// the function's: a body still running then ends as a `timeout`,
    /// retried like any timeout. `None`: the invocation's deadline.
    pub timeout_ms: Option<u64>,
    /// How returned errors are retried (`retry_backoff`, `retry_backoff_max`, `retry_jitter`).
    pub retry: crate::policy::RetryPolicy,
    /// How many bodies may run at once, and how fast they start.
    pub limits: crate::policy::Limits,
    /// The idempotency key and its window (`idempotency_key`, `idempotency_window`).
    pub idempotency: Option<crate::idempotency::Idempotency>,
}

/// Arguments that do not decode into the task's parameters. The worker
/// stores it as `failed`, kind `bad_args`.
///
/// ```
/// use task_runtime::registry::ArgsError;
/// let e = ArgsError { task: "bake".into(), arg: "slices".into(), problem: "is missing".into() };
/// assert_eq!(e.to_string(), "task `bake`: argument `slices` is missing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task `{task}`: argument `{arg}` {problem}")]
pub struct ArgsError {
    /// The task name.
    pub task: String,
    /// The parameter at fault.
    pub arg: String,
    /// What is wrong: missing, unexpected, or serde's message.
    pub problem: String,
}

/// One registered task. `#[task]` emits one per function.
///
/// ```
/// use task_runtime::registry::Registry;
/// use task_runtime::task;
///
/// #[task(name = "docs.def.shout")]
/// fn shout(word: String) -> String { word.to_uppercase() }
///
/// let def = Registry::global().unwrap().get("docs.def.shout").unwrap();
/// assert!(def.rust_path.ends_with("::shout"));
/// let args = serde_json::json!({"word": 3}).as_object().cloned().unwrap();
/// let err = (def.call)(args).err().unwrap(); // a number is not a String
/// assert_eq!(err.arg, "word");
/// ```
#[derive(Debug)]
pub struct TaskDef {
    /// The task's options.
    pub spec: TaskSpec,
    /// The Rust path of the function, e.g. `quickstart::make_pie`.
    pub rust_path: &'static str,
    /// Where it is defined, `file:line`.
    pub location: &'static str,
    /// Decode the arguments and start the body.
    pub call: fn(Map<String, Value>) -> Result<TaskFuture, ArgsError>,
}

/// Every task linked into this binary.
#[linkme::distributed_slice]
pub static TASKS: [TaskDef];

/// Name -> definition, built once per process.
///
/// ```
/// use task_runtime::registry::Registry;
/// use task_runtime::task;
///
/// #[task(name = "docs.registry.ping")]
/// async fn ping() -> String { "pong".into() }
///
/// let registry = Registry::global().expect("no two tasks share a name");
/// assert!(registry.names().contains(&"docs.registry.ping"));
/// assert!(registry.get("docs.registry.nope").is_none());
/// ```
#[derive(Debug)]
pub struct Registry {
    by_name: HashMap<&'static str, &'static TaskDef>,
}

impl Registry {
    /// Build from definitions; two with one name are an error naming both.
    pub fn from_defs(defs: impl IntoIterator<Item = &'static TaskDef>) -> Result<Self, RegistryError> {
        let mut by_name: HashMap<&'static str, &'static TaskDef> = HashMap::new();
        for def in defs {
            if let Some(first) = by_name.insert(def.spec.name, def) {
                let (first, second) = if first.location <= def.location { (first, def) } else { (def, first) };
                return Err(RegistryError {
                    name: def.spec.name.to_owned(),
                    first: first.rust_path.to_owned(),
                    first_location: first.location.to_owned(),
                    second: second.rust_path.to_owned(),
                    second_location: second.location.to_owned(),
                });
            }
        }
        Ok(Self { by_name })
    }

    /// The registry of every `#[task]` in this binary, built on first use.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static GLOBAL: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry::from_defs(TASKS.iter())).as_ref().map_err(Clone::clone)
    }

    /// The task registered under `name`.
    pub fn get(&self, name: &str) -> Option<&'static TaskDef> {
        self.by_name.get(name).copied()
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: Map<String, Value>) -> Result<TaskFuture, ArgsError> {
        Ok(Box::pin(async { Ok(Value::Null) }))
    }
    static A: TaskDef = TaskDef {
        spec: TaskSpec { name: "dup", function: None, capture_response: true, retries: None, timeout_ms: None, retry: crate::policy::RetryPolicy::LAMBDA, limits: crate::policy::Limits::NONE, idempotency: None },
        rust_path: "crate_a::one",
        location: "src/a.rs:1",
        call: never,
    };
    static B: TaskDef = TaskDef {
        spec: TaskSpec { name: "dup", function: None, capture_response: true, retries: None, timeout_ms: None, retry: crate::policy::RetryPolicy::LAMBDA, limits: crate::policy::Limits::NONE, idempotency: None },
        rust_path: "crate_b::two",
        location: "src/b.rs:9",
        call: never,
    };

    #[test]
    fn duplicate_names_name_both_functions() {
        let err = Registry::from_defs([&A, &B]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`dup`"), "{err}");
        assert!(err.contains("crate_a::one (src/a.rs:1)") || err.contains("`crate_a::one` (src/a.rs:1)"), "{err}");
        assert!(err.contains("`crate_b::two` (src/b.rs:9)"), "{err}");
    }

    #[test]
    fn distinct_names_register() {
        let r = Registry::from_defs([&A]).ok();
        assert!(r.as_ref().and_then(|r| r.get("dup")).is_some());
        assert!(r.and_then(|r| r.get("other")).is_none());
    }
}
