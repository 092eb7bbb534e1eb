//! What `#[task]` expands to. Not public API: names here may change in any release.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use linkme;
pub use serde_json;

pub use crate::handlers::{AwsEvent, HANDLERS, HandlerDef, HandlerFuture};
pub use crate::schedules::{KEEP_WARM, KeepWarm, SCHEDULES, ScheduleDef};
pub use crate::registry::{ArgsError, TASKS, TaskDef, TaskFuture, TaskSpec};
pub use crate::dispatch::SendOptions;
use crate::dispatch::{Target, dispatch};
use crate::envelope::{Args, ArgsWriter};
use crate::error::{DispatchError, TaskError};
use crate::handle::TaskHandle;

/// Compile-time check that an argument type can travel in a message.
pub const fn assert_arg<T: Serialize + DeserializeOwned>() {}

/// Compile-time check that a task's value can be stored and read back.
pub const fn assert_output<T: Serialize + DeserializeOwned>() {}

/// Serialize one argument into the message.
pub fn put_arg<T: Serialize + ?Sized>(args: &mut Map<String, Value>, task: &str, name: &str, value: &T) -> Result<(), DispatchError> {
    let v = serde_json::to_value(value)
        .map_err(|source| DispatchError::SerializeArg { task: task.to_owned(), arg: name.to_owned(), source })?;
    args.insert(name.to_owned(), v);
    Ok(())
}

/// The arguments of a typed call (`#[task]`'s dispatching function, its
/// `call` and `step`): each one written in turn straight into the message's
/// JSON text ([`ArgsWriter`]); the first that fails is the call's error.
#[derive(Debug)]
pub struct CallArgs {
    task: &'static str,
    args: Result<ArgsWriter, DispatchError>,
}

impl CallArgs {
    /// No arguments yet, for task `task`.
    pub fn new(task: &'static str) -> Self {
        Self { task, args: Ok(ArgsWriter::new()) }
    }

    /// Add one argument (unless an earlier one failed).
    pub fn put<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        if let Ok(args) = &mut self.args
            && let Err(source) = args.put(name, value)
        {
            self.args = Err(DispatchError::SerializeArg { task: self.task.to_owned(), arg: name.to_owned(), source });
        }
    }

    /// The arguments, or the first argument's error.
    pub fn finish(self) -> Result<Args, DispatchError> {
        self.args.map(ArgsWriter::finish)
    }
}

/// Take and decode one argument. A missing one decodes from `null`, so an
/// `Option` parameter may be left out.
pub fn take_arg<T: DeserializeOwned>(args: &mut Map<String, Value>, task: &str, name: &str) -> Result<T, ArgsError> {
    let err = |problem: String| ArgsError { task: task.to_owned(), arg: name.to_owned(), problem };
    match args.remove(name) {
        Some(v) => serde_json::from_value(v).map_err(|e| err(format!("does not decode: {e}"))),
        None => serde_json::from_value(Value::Null).map_err(|_| err("is missing".to_owned())),
    }
}

/// Argument `name` decoded from a call's arguments, left in place (for an
/// idempotency key's function); `Err` says what is wrong.
pub fn peek_arg<T: DeserializeOwned>(args: &Map<String, Value>, name: &str) -> Result<T, String> {
    serde_json::from_value(args.get(name).cloned().unwrap_or(Value::Null)).map_err(|e| format!("argument `{name}` does not decode: {e}"))
}

/// An idempotency key function's value, as JSON.
pub fn key_value<K: Serialize + ?Sized>(key: &K) -> Result<Value, String> {
    serde_json::to_value(key).map_err(|e| format!("its value cannot be serialized to JSON: {e}"))
}

/// After every parameter is taken: anything left is an unexpected argument.
pub fn no_more_args(args: Map<String, Value>, task: &str) -> Result<(), ArgsError> {
    match args.into_iter().next() {
        None => Ok(()),
        Some((name, _)) => Err(ArgsError { task: task.to_owned(), arg: name, problem: "is not a parameter of this task".to_owned() }),
    }
}

/// A fallible task's result, as JSON.
pub fn fallible<T: Serialize, E: Into<TaskError>>(result: Result<T, E>) -> Result<Value, TaskError> {
    value(result.map_err(Into::into)?)
}

/// An infallible task's value, as JSON.
pub fn value<T: Serialize>(v: T) -> Result<Value, TaskError> {
    serde_json::to_value(v).map_err(|e| TaskError::fail(format!("the task's value cannot be serialized to JSON: {e}")))
}

/// Run a synchronous body on tokio's blocking pool; a panic is resumed so
/// that the worker records it.
pub async fn blocking(f: impl FnOnce() -> Result<Value, TaskError> + Send + 'static) -> Result<Value, TaskError> {
    // Counted while it runs, so that the worker never answers while it does.
    let counted = crate::context::blocking_body();
    let f = move || {
        let _counted = counted;
        f()
    };
    match tokio::task::spawn_blocking(crate::context::carry(f)).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(TaskError::retry(format!("the task's thread was cancelled: {e}"))),
    }
}

/// Send a typed call.
pub async fn send<T>(spec: &'static TaskSpec, options: SendOptions, args: Args) -> Result<TaskHandle<T>, DispatchError> {
    let target = Target::new(spec.name, spec.function, spec.capture_response, spec.retries, &options).keyed(spec.idempotency.as_ref());
    let sent = dispatch(target, args).await?;
    Ok(TaskHandle::from_dispatched(sent, spec.name.to_owned()))
}

/// A `GroupResults` parameter of task `task`: its group's outcomes, when
/// it runs as a chord's callback.
pub async fn group_results<T: DeserializeOwned>(task: &str) -> Result<crate::group::GroupResults<T>, TaskError> {
    crate::group::of_running_callback(task).await
}

/// Decode the event an `#[on_event]` handler takes.
pub fn decode_event<T: DeserializeOwned>(event: Value, handler: &str) -> Result<T, ArgsError> {
    serde_json::from_value(event).map_err(|e| ArgsError {
        task: handler.to_owned(),
        arg: "event".to_owned(),
        problem: format!("does not decode as the handler's event type: {e}"),
    })
}
