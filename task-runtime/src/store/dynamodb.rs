//! The DynamoDB response store. Item layout (key `id`, TTL attribute `ttl`):
//! `id, task, status, attempts (N), request_id, lease_until_ms (N),
//! max_attempts (N), digest (S, with signing on), run_at_ms (N, for a
//! delayed call), response (S: JSON text),
//! error (M: kind, message), created_at_ms, updated_at_ms, ttl (N, epoch seconds)`.
//!
//! Readers ignore attributes they do not know, and read a failure kind they
//! do not know as [`FailureKind::Other`](crate::FailureKind::Other): a newer worker may add both.
//!
//! Every write is conditional and none reads first; `get` is consistent.
//!
//! This file holds the store and the helpers every request shares; beside
//! it: `conditions` (the [`ResponseStore`](super::ResponseStore) impl: each conditional write),
//! `item` (attributes in and out), `table` (`create_table`), `failed` (the
//! index of failed calls), `calls` (the indexes of calls by parent and by
//! day), `groups` and `flow` (a group's counters, and the items of
//! concurrency and rate limits).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Finished, Item};
use crate::error::StoreError;
use crate::response::Status;

mod calls;
mod conditions;
mod failed;
mod flow;
mod groups;
mod item;
mod table;

pub use table::{TABLE_WAIT, TableProgress, TableReport};

pub use calls::{PARENT_INDEX, RECENT_INDEX};
pub use failed::{FAILED_INDEX, FAILED_INDEX_ATTRIBUTES, FAILED_SHARDS, FailedCall, failure_shard};
use failed::failed_attrs;
use item::{created_with, failure_attr, item_from_attrs, n, pending_attrs, s};

type Attrs = HashMap<String, AttributeValue>;

/// A [`ResponseStore`](super::ResponseStore) in a DynamoDB table. The client is built once, on first use.
///
/// ```no_run
/// # async fn demo() -> Result<(), task_runtime::StoreError> {
/// use task_runtime::store::dynamodb::DynamoStore;
/// let store = DynamoStore::lazy("task-responses");
/// store.create_table().await?; // on-demand billing, TTL on `ttl`; fine if it exists
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DynamoStore {
    table: String,
    client: crate::aws::LazyClient<Client>,
    /// Whether calls are indexed by the day they were sent ([`RECENT_INDEX`]).
    list_calls: bool,
}

impl DynamoStore {
    /// A store over `table`, with a client built from the environment on first use.
    pub fn lazy(table: impl Into<String>) -> Self {
        Self { table: table.into(), client: crate::aws::LazyClient::new(None), list_calls: false }
    }

    /// A store over `table`, with a client built from `sdk` on first use.
    pub fn from_sdk_config(sdk: aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self { table: table.into(), client: crate::aws::LazyClient::new(Some(sdk)), list_calls: false }
    }

    /// A store over `table` with a client you built.
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self { table: table.into(), client: crate::aws::LazyClient::with(client), list_calls: false }
    }

    /// Index every call this store creates by the day it was sent
    /// ([`RECENT_INDEX`]), so that [`ResponseStore::recent`](super::ResponseStore::recent) lists it:
    /// one index write per call. The runtime turns it on with `TASK_LIST_CALLS=true`.
    pub fn listing_calls(mut self, on: bool) -> Self {
        self.list_calls = on;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn client(&self) -> &Client {
        self.client.get(Client::new).await
    }

    fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        operation: &'static str,
        e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> StoreError {
        let (status, code, message) = crate::aws::describe(e);
        let message = match (status, code) {
            (Some(s), Some(c)) => format!("HTTP {s}, {c}: {message}"),
            (Some(s), None) => format!("HTTP {s}: {message}"),
            _ => message,
        };
        StoreError::Backend { operation, table: self.table.clone(), message }
    }

    /// Read item `id`, consistently.
    async fn read(&self, operation: &'static str, id: &str) -> Result<Option<Item>, StoreError> {
        self.read_attrs(operation, id).await?.as_ref().map(item_from_attrs).transpose()
    }

    /// Create `item` only if no item has its id: `false` when one has.
    async fn put_new(&self, operation: &'static str, item: Attrs) -> Result<bool, StoreError> {
        let put = self.client().await.put_item().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(id)").send().await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(self.err(operation, &e)),
        }
    }

    /// An update of item `id`.
    async fn update(&self, id: &str) -> UpdateItemFluentBuilder {
        self.client().await.update_item().table_name(&self.table).key("id", s(id))
    }

    /// Send a conditional update: `false` when its condition failed.
    async fn conditional(&self, operation: &'static str, update: UpdateItemFluentBuilder) -> Result<bool, StoreError> {
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(self.err(operation, &e)),
        }
    }

    /// An update of `id` conditional on `request_id` owning it (`running`, its request id).
    async fn owned_update(&self, id: &str, request_id: &str) -> UpdateItemFluentBuilder {
        self.update(id)
            .await
            .condition_expression("#status = :running AND #rid = :rid")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#rid", "request_id")
            .expression_attribute_values(":running", s(Status::Running.as_str()))
            .expression_attribute_values(":rid", s(request_id))
    }

    /// Send an [`owned_update`](Self::owned_update): a failed condition is `NotOwner`.
    async fn send_owned(&self, operation: &'static str, update: UpdateItemFluentBuilder) -> Result<Finished, StoreError> {
        Ok(if self.conditional(operation, update).await? { Finished::Written } else { Finished::NotOwner })
    }

    fn build_err(&self, e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
        StoreError::Backend { operation: "create_table", table: self.table.clone(), message: e.to_string() }
    }
}

