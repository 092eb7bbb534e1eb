//! Asynchronous tasks on AWS Lambda.
//!
//! Mark a function `#[task]`. Calling it serializes the call, invokes a
//! Lambda function asynchronously and returns a [`TaskHandle`] at once. In
//! the Lambda, [`run`] finds the function in a link-time registry and runs
//! it; the outcome goes to DynamoDB under the call's id, where
//! [`get_async_response`] and [`TaskHandle::wait`] find it.
//!
//! ```
//! use task_runtime::{task, TaskError, TaskResult};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Pie { flavor: String, slices: u32 }
//!
//! #[task]
//! async fn make_pie(flavor: String, slices: u32) -> TaskResult<Pie> {
//!     if slices == 0 {
//!         return Err(TaskError::fail("a pie needs at least one slice"));
//!     }
//!     Ok(Pie { flavor, slices })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // With no Lambda target configured, tasks run on the local backend.
//! let handle = make_pie("apple".into(), 8).await?; // dispatched; the body has not run yet
//! let pie = handle.wait().await?;
//! assert_eq!(pie, Pie { flavor: "apple".into(), slices: 8 });
//!
//! // Run the body in place, without dispatching (tests, composition):
//! let pie = make_pie::run_inline("plum".into(), 6).await?;
//! assert_eq!(pie.slices, 6);
//! # Ok(()) }
//! ```
//!
//! Where things live: [`envelope`] decodes messages (and
//! [`envelope::failure_record`], Lambda's records of events it gave up on),
//! [`registry`] holds the tasks, `outcome` decides retries, [`worker`] runs
//! tasks, [`store`] keeps responses, [`backend`] sends messages. The
//! repository's ARCHITECTURE.md draws the layers and the life of one call.
//!
//! **The guide** is in [`_guide`]: getting started, retries and limits,
//! groups and chains, events and schedules, deploying, the local emulator,
//! the command line, observability, and the reference pages (semantics,
//! configuration, the fault run, performance).

pub mod _guide;
pub mod backend;
pub mod envelope;
pub mod idempotency;
pub mod policy;
pub mod registry;
pub mod store;
pub mod worker;

mod aws;
mod cancel;
mod chain;
mod config;
mod context;
mod dispatch;
mod error;
pub mod flow;
pub mod follow_up;
mod group;
mod handle;
mod handlers;
pub mod schedules;
#[cfg(feature = "http")]
mod http;
mod lambda;
mod outcome;
mod poll;
mod response;
mod runtime;
mod time;
pub mod trace;
#[cfg(feature = "opentelemetry")]
pub mod otel;

#[doc(hidden)]
pub mod __private;

pub use runtime::wait_for_local_tasks;
pub use cancel::cancel;
pub use config::{BackendKind, Config};
pub use context::{TaskContext, current};
pub use dispatch::{SendOptions, send};
pub use error::{BoxError, CancelError, ConfigError, DispatchError, Error, RegistryError, StoreError, TaskError, TaskResult, WaitError, error_type};
pub use chain::{Chain, ChainHandle, Step, step};
pub use group::{Call, Chord, ChordHandle, Group, GroupHandle, GroupResults, GroupStatus, call, group, group_status};
pub use handle::TaskHandle;
pub use lambda::{MANIFEST_VAR, RAW_EVENT_LOG_TARGET, init_tracing, invocation, reply_to_result, run, run_tasks};
#[cfg(feature = "opentelemetry")]
pub use lambda::init_tracing_with_otlp;
#[cfg(feature = "http")]
pub use http::{API_KEYS_VAR, ApiKeys, lambda_http, run_http};
pub use envelope::aws_event::decode_s3_key;
pub use outcome::Reply;
pub use poll::{get_async_response, get_children, latest_run};
pub use response::{AsyncResponse, Failure, FailureKind, MAX_FAILURE_MESSAGE_BYTES, Status};

/// Marks a function as a task: calling it dispatches instead of running.
///
/// On `async fn` and plain `fn`. The function keeps its name and
/// parameters, becomes `async`, and returns
/// `Result<TaskHandle<T>, DispatchError>`, where `T` is the value of the
/// original return type (the `Ok` type of a `Result` or `TaskResult`, or the
/// type itself). Alongside it the macro emits a type of the same name with:
///
/// - `NAME`: the registered name (default `module_path!()::fn_name`);
/// - `run_inline(args..)`: the original body, run in place (tests,
///   composition); `async` exactly when the original was;
/// - `SPEC`: the registry entry the worker finds the task by.
///
/// Options, all optional:
///
/// | option | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the name in messages and the registry | `module_path::fn_name` |
/// | `function = "..."` | the Lambda function (name or ARN) to invoke | `TASK_FUNCTION` |
/// | `capture_response = bool` | write the outcome to the response store | `true` |
/// | `retries = 0..=2` | cap Lambda's retries for this task | the function's own |
/// | `timeout = "30s"` | this task's own limit (`ms`, `s`, `m`; at most 15 minutes): a body still running then ends as a `timeout`, retried like any | the invocation's deadline |
///
/// Arguments must be plain identifiers of owned `Serialize +
/// DeserializeOwned` types; references, lifetimes, generics, `self` and
/// patterns are refused at compile time with an error on the token at fault.
///
/// ```
/// use task_runtime::{task, TaskError};
///
/// #[derive(Debug)]
/// struct OvenCold;
/// impl std::fmt::Display for OvenCold {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("the oven is cold") }
/// }
/// impl std::error::Error for OvenCold {}
///
/// // A sync fn, at most one retry, under a stable name.
/// #[task(name = "pies.bake", retries = 1)]
/// fn bake(minutes: u32) -> Result<String, OvenCold> {
///     if minutes == 0 { return Err(OvenCold) } // `Err` of any error: retried
///     Ok(format!("baked for {minutes} min"))
/// }
///
/// // Fire and forget: nothing is written to the response store.
/// #[task(capture_response = false)]
/// async fn log_sale(flavor: String) {
///     println!("sold one {flavor}");
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert_eq!(bake::NAME, "pies.bake");
/// let handle = bake(40).await?;                   // TaskHandle<String>
/// assert_eq!(handle.wait().await?, "baked for 40 min");
/// assert_eq!(bake::run_inline(5)?, "baked for 5 min"); // a sync fn stays sync in place
///
/// log_sale("apple".into()).await?;
/// task_runtime::wait_for_local_tasks().await;     // let local work finish
/// # let _ = TaskError::fail("unused");
/// # Ok(()) }
/// ```
pub use task_macro::task;

/// Re-exported so that users need no direct dependency for the worker's types.
pub use lambda_runtime;

/// Re-exported: the AWS event types `#[on_event]` handlers take.
pub use aws_lambda_events;

/// Routes AWS events to this function: S3, SQS, SNS, EventBridge and
/// DynamoDB Streams events, by its argument's type
/// ([`aws_lambda_events`]'s), with no `match` on the event's shape. One
/// handler per kind of event. Task messages, failure records and warm-up
/// pings are handled first; an event no handler claims still reaches the
/// handler given to [`run`]. Return a value, or a `Result` whose error is
/// retried like a task's (`TaskError::fail` is not).
///
/// ```
/// use task_runtime::aws_lambda_events::event::s3::S3Event;
/// use task_runtime::{on_event, task, TaskResult};
///
/// #[task]
/// async fn thumbnail(bucket: String, key: String) -> TaskResult<String> {
///     Ok(format!("s3://{bucket}/thumbs/{key}"))
/// }
///
/// /// One task per uploaded object: the handler fans out and returns their ids.
/// #[on_event]
/// async fn uploaded(event: S3Event) -> TaskResult<Vec<String>> {
///     let mut ids = Vec::new();
///     for record in event.records {
///         let (bucket, key) = (record.s3.bucket.name.unwrap_or_default(), record.s3.object.key.unwrap_or_default());
///         ids.push(thumbnail(bucket, key).await?.id().to_owned());
///     }
///     Ok(ids)
/// }
/// # let _ = uploaded;
/// ```
pub use task_macro::on_event;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The crate's own README (its crates.io page), compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
