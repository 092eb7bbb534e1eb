//! What a call costs in DynamoDB, from the store's own requests: an SDK
//! interceptor on the store's client asks DynamoDB for each request's
//! consumed capacity (`ReturnConsumedCapacity: TOTAL`, the table's and its
//! indexes'), and records the operation, the request's size and the units.
//! DynamoDB Local answers with the units DynamoDB bills: one write request
//! unit per started KB of the item (the larger of before and after, for an
//! update), one read unit per started 4 KB of a strongly consistent read.
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;

/// One request to DynamoDB.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `PutItem`, `UpdateItem`, `GetItem`, `BatchGetItem`, `Query`, ...
    pub operation: String,
    /// The request body's bytes.
    pub bytes: usize,
    /// The capacity units DynamoDB reports it consumed.
    pub units: f64,
}

impl Request {
    /// Whether it writes (and is billed in write request units).
    pub fn writes(&self) -> bool {
        matches!(self.operation.as_str(), "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems")
    }
}

/// The requests a client sent, as they ended.
#[derive(Debug, Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<Request>>>);

impl Requests {
    /// A DynamoDB client for DynamoDB Local that records into this.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(&super::sdk_config(&super::dynamodb_endpoint())).interceptor(self.clone()).build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// What was recorded since the last take.
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Units of a `ConsumedCapacity` (one object, or a list of them for batches).
fn units(v: &Value) -> f64 {
    match v {
        Value::Array(all) => all.iter().map(units).sum(),
        Value::Object(o) => o.get("CapacityUnits").and_then(Value::as_f64).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The request's operation and size, kept in its operation's config bag
/// from before it is sent (the finalizer sees no request: it was sent).
#[derive(Debug, Clone)]
struct Sent {
    operation: String,
    bytes: usize,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "count DynamoDB requests and their units"
    }

    /// Ask for the consumed capacity: a field of the JSON body.
    fn modify_before_signing(&self, context: &mut BeforeTransmitInterceptorContextMut<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let request = context.request_mut();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        let Some(bytes) = request.body().bytes() else { return Ok(()) };
        let mut body: Value = serde_json::from_slice(bytes)?;
        let Some(fields) = body.as_object_mut() else { return Ok(()) };
        fields.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        let bytes = serde_json::to_vec(&body)?;
        request.headers_mut().insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes.clone());
        cfg.interceptor_state().store_put(Sent { operation, bytes: bytes.len() });
        Ok(())
    }

    fn read_after_execution(&self, context: &FinalizerInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let Some(Sent { operation, bytes }) = cfg.load::<Sent>().cloned() else { return Ok(()) };
        let answer: Value = context.response().and_then(|r| r.body().bytes()).and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
        let units = units(&answer["ConsumedCapacity"]);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(Request { operation, bytes, units });
        Ok(())
    }
}
