//! Typed handlers of AWS events, registered with `#[on_event]` the way
//! tasks are: a link-time slice, one handler per kind of event, found by the
//! event's shape ([`EventKind::of`]). No hand-written `match` on the event.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::envelope::aws_event::EventKind;
use crate::error::{RegistryError, TaskError};
use crate::registry::ArgsError;

/// A running handler's future: its value as JSON, or its error.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;

/// An AWS event type a handler can take, and the kind of event it is.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an AWS event an #[on_event] handler can take",
    note = "take one of aws_lambda_events' S3Event, SqsEvent, SnsEvent, EventBridgeEvent or dynamodb::Event (re-exported as task_runtime::aws_lambda_events)"
)]
pub trait AwsEvent: DeserializeOwned + Send + 'static {
    /// Which events reach a handler of this type.
    const KIND: EventKind;
}

impl AwsEvent for aws_lambda_events::event::s3::S3Event {
    const KIND: EventKind = EventKind::S3;
}
impl AwsEvent for aws_lambda_events::event::sqs::SqsEvent {
    const KIND: EventKind = EventKind::Sqs;
}
impl AwsEvent for aws_lambda_events::event::sns::SnsEvent {
    const KIND: EventKind = EventKind::Sns;
}
impl AwsEvent for aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> {
    const KIND: EventKind = EventKind::EventBridge;
}
impl AwsEvent for aws_lambda_events::event::dynamodb::Event {
    const KIND: EventKind = EventKind::DynamoDbStream;
}

/// One `#[on_event]` function.
#[derive(Debug)]
pub struct HandlerDef {
    /// The kind of event it takes.
    pub kind: EventKind,
    /// Its Rust path.
    pub rust_path: &'static str,
    /// Where it is defined, `file:line`.
    pub location: &'static str,
    /// Decode the event and start the handler.
    pub call: fn(Value) -> Result<HandlerFuture, ArgsError>,
}

/// Every `#[on_event]` handler linked into this binary.
#[linkme::distributed_slice]
pub static HANDLERS: [HandlerDef];

/// Whether the handlers linked in are one per kind of event: checked when
/// a worker starts, so that two handlers of one kind fail the start, naming
/// both, rather than the first such event.
pub(crate) fn check() -> Result<(), RegistryError> {
    handler(EventKind::S3).map(|_| ())
}

/// The handler of each kind of event; two for one kind are an error naming both.
pub(crate) fn handler(kind: EventKind) -> Result<Option<&'static HandlerDef>, RegistryError> {
    static BY_KIND: OnceLock<Result<HashMap<EventKind, &'static HandlerDef>, RegistryError>> = OnceLock::new();
    let by_kind = BY_KIND.get_or_init(|| {
        let mut map: HashMap<EventKind, &'static HandlerDef> = HashMap::new();
        for def in HANDLERS.iter() {
            if let Some(first) = map.insert(def.kind, def) {
                return Err(RegistryError {
                    name: format!("the {} event handler", def.kind),
                    first: first.rust_path.to_owned(),
                    first_location: first.location.to_owned(),
                    second: def.rust_path.to_owned(),
                    second_location: def.location.to_owned(),
                });
            }
        }
        Ok(map)
    });
    by_kind.as_ref().map(|m| m.get(&kind).copied()).map_err(Clone::clone)
}
