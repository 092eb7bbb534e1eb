//! The DynamoDB response store. Item layout (key `id`, TTL attribute `ttl`):
//! `id, task, status, attempts (N), request_id, lease_until_ms (N),
//! max_attempts (N), digest (S, with signing on), run_at_ms (N, for a
//! delayed call), response (S: JSON text),
//! error (M: kind, message), created_at_ms, updated_at_ms, ttl (N, epoch seconds)`.
//!
//! Readers ignore attributes they do not know, and read a failure kind they
//! do not know as [`FailureKind::Other`]: a newer worker may add both.
//!
//! Every write is conditional and none reads first; `get` is consistent.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use super::group::{Counted, GroupItem, GroupState, Release, Waiting};
use super::{BeginRequest, Begun, Cancel, FinalState, Finished, Item, PendingItem, ResponseStore, StoredCall};
use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, FailureKind, Status};

mod calls;
mod flow;
mod groups;

pub use calls::{PARENT_INDEX, RECENT_INDEX};

type Attrs = HashMap<String, AttributeValue>;

/// The global secondary index of failed calls: partition key
/// `failed_shard` (`YYYY-MM-DD#NN`: the UTC day and one of
/// [`FAILED_SHARDS`] shards, from the id), sort key `updated_at_ms`.
/// Sparse: only failed items carry `failed_shard`, so it costs one index
/// write per failed call and nothing for the others.
///
/// Two AWS rules shape it. A write to the table is throttled when one of
/// its indexes cannot keep up, and one partition key value takes about
/// 1,000 writes a second: a day in one key would let a burst of failures
/// throttle healthy calls, so a day is spread over shards
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations>,
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html>).
/// And each index write costs a write unit per KB of what it projects: the
/// index holds what a listing shows ([`FAILED_INDEX_ATTRIBUTES`]), not the
/// kept message (up to 64 KiB), so a failed call costs at most about 9 index
/// write units (an 8 KiB error) instead of 65.
pub const FAILED_INDEX: &str = "failed-by-day-shard";

/// How many shards a day of failed calls is spread over: listing a day
/// takes this many queries (run at once).
pub const FAILED_SHARDS: u32 = 16;

/// The attributes the index of failed calls projects besides its keys and `id`.
pub const FAILED_INDEX_ATTRIBUTES: [&str; 9] =
    ["task", "status", "attempts", "error", "created_at_ms", "ttl", "max_attempts", "run_at_ms", "message_bytes"];

/// One failed call, as [`DynamoStore::failed_since`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCall {
    /// The response id.
    pub id: String,
    /// What a poll returns for it.
    pub response: AsyncResponse,
    /// Whether its task message was kept (it can be sent again).
    pub message_kept: bool,
}

/// A [`ResponseStore`] in a DynamoDB table. The client is built once, on first use.
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
    /// ([`RECENT_INDEX`]), so that [`ResponseStore::recent`] lists it:
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

    /// Create the table (key `id`, on-demand billing) with the index of
    /// failed calls ([`FAILED_INDEX`]), of calls by parent
    /// ([`PARENT_INDEX`]) and of recent calls ([`RECENT_INDEX`]), and turn TTL on for `ttl`. Safe to call when the
    /// table exists already: a table made by an earlier version gets the
    /// indexes it lacks added, one at a time (DynamoDB creates one index per
    /// `UpdateTable`: when two are missing, the second is named in an error,
    /// to be added by calling this again once the first is ACTIVE).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let client = self.client().await;
        let attr = |name: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(t).build().map_err(|e| self.build_err(e))
        };
        let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build().map_err(|e| self.build_err(e));
        let failed_projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(FAILED_INDEX_ATTRIBUTES.iter().map(|a| (*a).to_owned()).collect()))
            .build();
        // An index of calls by `hash` and `created_at_ms`, keys only (see calls.rs).
        let keys_only = |name: &str, hash: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key("created_at_ms", KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .map_err(|e| self.build_err(e))
        };
        let indexes = [
            GlobalSecondaryIndex::builder()
                .index_name(FAILED_INDEX)
                .key_schema(key("failed_shard", KeyType::Hash)?)
                .key_schema(key("updated_at_ms", KeyType::Range)?)
                .projection(failed_projection)
                .build()
                .map_err(|e| self.build_err(e))?,
            keys_only(PARENT_INDEX, "parent")?,
            keys_only(RECENT_INDEX, "listed_shard")?,
        ];
        let attributes = [
            attr("id", ScalarAttributeType::S)?,
            attr("failed_shard", ScalarAttributeType::S)?,
            attr("updated_at_ms", ScalarAttributeType::N)?,
            attr("parent", ScalarAttributeType::S)?,
            attr("listed_shard", ScalarAttributeType::S)?,
            attr("created_at_ms", ScalarAttributeType::N)?,
        ];
        let created = client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("id", KeyType::Hash)?)
            .set_attribute_definitions(Some(attributes.to_vec()))
            .set_global_secondary_indexes(Some(indexes.to_vec()))
            .send()
            .await;
        let fresh = match created {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceInUseException") => false,
            Err(e) => return Err(self.err("create_table", &e)),
        };
        // A new table's indexes are created with it: wait for them too.
        let described = self.wait_until_active(fresh).await?;
        let ttl = TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build().map_err(|e| self.build_err(e))?;
        match client.update_time_to_live().table_name(&self.table).time_to_live_specification(ttl).send().await {
            Ok(_) => {}
            // Enabling TTL twice is a ValidationException ("already enabled").
            Err(e) if e.code() == Some("ValidationException") && e.message().is_some_and(|m| m.contains("already enabled")) => {}
            Err(e) => return Err(self.err("update_time_to_live", &e)),
        }
        // A table made by an earlier version: add the indexes it lacks. DynamoDB
        // builds one new index of a table at a time (and backfills it for
        // minutes on a large table), so this adds the first one missing, and
        // names the next, to be added by running this again once it is ACTIVE.
        // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.OnlineOps.html
        let present = described.global_secondary_indexes();
        let missing: Vec<&GlobalSecondaryIndex> = indexes.iter().filter(|i| !present.iter().any(|p| p.index_name() == Some(i.index_name()))).collect();
        let Some(first) = missing.first() else { return Ok(()) };
        let still_building = |name: &str| StoreError::Backend {
            operation: "update_table",
            table: self.table.clone(),
            message: format!(
                "the index `{name}` is still being created; run create-table again once it is ACTIVE \
                 to add the index `{}` (DynamoDB creates one index of a table at a time)",
                missing.iter().skip(usize::from(name == first.index_name())).map(|i| i.index_name()).collect::<Vec<_>>().join("`, `"),
            ),
        };
        if let Some(busy) = present.iter().find(|i| i.index_status() != Some(&IndexStatus::Active)) {
            return Err(still_building(busy.index_name().unwrap_or("?")));
        }
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(first.index_name())
            .set_key_schema(Some(first.key_schema().to_vec()))
            .set_projection(first.projection.clone())
            .build()
            .map_err(|e| self.build_err(e))?;
        let used: Vec<&str> = first.key_schema().iter().map(|k| k.attribute_name()).collect();
        client
            .update_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(attributes.iter().filter(|a| used.contains(&a.attribute_name())).cloned().collect()))
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await
            .map_err(|e| self.err("update_table", &e))?;
        // Not waited for: the table serves while the index backfills, and
        // what reads the index works once it is ACTIVE.
        if missing.len() > 1 { Err(still_building(first.index_name())) } else { Ok(()) }
    }

    /// Wait (bounded: a minute) until the table is ACTIVE, and with
    /// `indexes`, its indexes too; real DynamoDB takes seconds to create a table.
    async fn wait_until_active(&self, indexes: bool) -> Result<aws_sdk_dynamodb::types::TableDescription, StoreError> {
        let client = self.client().await;
        let mut last = None;
        for _ in 0..120 {
            let d = client.describe_table().table_name(&self.table).send().await.map_err(|e| self.err("describe_table", &e))?;
            if let Some(t) = d.table() {
                let indexes_active = !indexes || t.global_secondary_indexes().iter().all(|i| i.index_status() == Some(&IndexStatus::Active));
                if t.table_status() == Some(&TableStatus::Active) && indexes_active {
                    return Ok(t.clone());
                }
                last = Some(t.clone());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        last.ok_or_else(|| StoreError::Backend {
            operation: "describe_table",
            table: self.table.clone(),
            message: "the table did not describe itself".into(),
        })
    }

    /// The calls that ended `failed` from `since_ms` on (epoch ms), newest
    /// first, at most `limit`; read from the index of failed calls, one
    /// query per shard of each day ([`FAILED_SHARDS`], run at once), never
    /// a scan.
    pub async fn failed_since(&self, since_ms: u64, limit: usize) -> Result<Vec<FailedCall>, StoreError> {
        let now = crate::time::now_ms();
        let first_day = super::failure_day(since_ms);
        let mut out = Vec::new();
        let mut day_ms = now;
        loop {
            let day = super::failure_day(day_ms);
            if day < first_day {
                break;
            }
            let shards = (0..FAILED_SHARDS).map(|shard| self.failed_in_shard(format!("{day}#{shard:02}"), since_ms));
            let mut found: Vec<(u64, FailedCall)> = Vec::new();
            for shard in futures::future::join_all(shards).await {
                found.extend(shard?);
            }
            found.sort_by_key(|a| std::cmp::Reverse(a.0));
            for (_, call) in found {
                // The index is eventually consistent: a call retried since may show.
                if call.response.status == Status::Failed {
                    out.push(call);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match day_ms.checked_sub(86_400_000) {
                Some(earlier) => day_ms = earlier,
                None => break,
            }
        }
        Ok(out)
    }

    /// The failed calls of one shard key updated from `since_ms` on, with their `updated_at_ms`.
    async fn failed_in_shard(&self, shard: String, since_ms: u64) -> Result<Vec<(u64, FailedCall)>, StoreError> {
        let now = crate::time::now_ms();
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let page = self
                .client()
                .await
                .query()
                .table_name(&self.table)
                .index_name(FAILED_INDEX)
                .key_condition_expression("#shard = :shard AND #updated >= :since")
                .expression_attribute_names("#shard", "failed_shard")
                .expression_attribute_names("#updated", "updated_at_ms")
                .expression_attribute_values(":shard", s(&shard))
                .expression_attribute_values(":since", n(since_ms))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err("failed_since", &e))?;
            for attrs in page.items() {
                let item = item_from_attrs(attrs)?;
                if item.expired(now) {
                    continue;
                }
                let message_kept = item.message.is_some() || attrs.contains_key("message_bytes");
                out.push((item.updated_at_ms, FailedCall { id: item.id.clone(), response: item.to_response(now)?, message_kept }));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// The task message kept with failed call `id` (JSON), if it was kept.
    pub async fn failed_message(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.read("failed_message", id).await?.and_then(|item| item.message))
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

/// `set` (an update's SET clause) and `update`, recording `parent` and
/// `listed_shard` when given: only where absent, since the caller's write
/// may have created the item first.
fn created_with(set: &'static str, update: UpdateItemFluentBuilder, parent: Option<&str>, listed: Option<String>) -> (String, UpdateItemFluentBuilder) {
    let mut expression = set.to_owned();
    let mut update = update;
    if let Some(p) = parent {
        expression.push_str(", #parent = if_not_exists(#parent, :parent)");
        update = update.expression_attribute_names("#parent", "parent").expression_attribute_values(":parent", s(p));
    }
    if let Some(shard) = listed {
        expression.push_str(", #listed = if_not_exists(#listed, :listed)");
        update = update.expression_attribute_names("#listed", "listed_shard").expression_attribute_values(":listed", s(shard));
    }
    (expression, update)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
/// A failure as stored, its message bounded (`Failure::bounded`) so that no
/// error text can push an item over DynamoDB's 400 KB.
fn failure_attr(f: &Failure) -> AttributeValue {
    let f = f.clone().bounded();
    AttributeValue::M(HashMap::from([("kind".to_owned(), s(f.kind.as_str())), ("message".to_owned(), s(f.message))]))
}

/// The attributes a failure adds to an update: `failed_shard` (the index of
/// failed calls) and, when it fits, the task message (with its size in
/// `message_bytes`, which the index shows). Returns the `SET` clauses to
/// append and the update with their names and values.
fn failed_attrs(update: UpdateItemFluentBuilder, id: &str, now_ms: u64, message: Option<&str>) -> (&'static str, UpdateItemFluentBuilder) {
    let update = update.expression_attribute_names("#shard", "failed_shard").expression_attribute_values(":shard", s(failure_shard(id, now_ms)));
    match message.filter(|m| m.len() <= super::MAX_KEPT_MESSAGE_BYTES) {
        Some(m) => (
            ", #shard = :shard, #message = :message, #message_bytes = :message_bytes",
            update
                .expression_attribute_names("#message", "message")
                .expression_attribute_values(":message", s(m))
                .expression_attribute_names("#message_bytes", "message_bytes")
                .expression_attribute_values(":message_bytes", n(m.len())),
        ),
        None => (", #shard = :shard", update),
    }
}

/// The index key a failure of call `id` at `epoch_ms` is listed under:
/// its UTC day and a shard of it chosen by the id (FNV-1a), `2026-11-27#05`.
///
/// ```
/// use task_runtime::store::dynamodb::failure_shard;
/// let key = failure_shard("order-7", 1_795_774_496_789);
/// assert!(key.starts_with("2026-11-27#") && key.len() == "2026-11-27#05".len());
/// assert_eq!(key, failure_shard("order-7", 1_795_774_496_789 + 1)); // stable
/// ```
pub fn failure_shard(id: &str, epoch_ms: u64) -> String {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}#{:02}", super::failure_day(epoch_ms), hash % u64::from(FAILED_SHARDS))
}


/// Decode a stored item, naming the attribute at fault.
pub(crate) fn item_from_attrs(attrs: &Attrs) -> Result<Item, StoreError> {
    let id = match attrs.get("id") {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => "<unknown>".to_owned(),
    };
    let corrupt = |attribute: &'static str, problem: String| StoreError::Corrupt { id: id.clone(), attribute, problem };
    let get_s = |name: &'static str| -> Result<Option<String>, StoreError> {
        match attrs.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(other) => Err(corrupt(name, format!("should be a string (S), found {other:?}"))),
        }
    };
    let get_n = |name: &'static str| -> Result<Option<u64>, StoreError> {
        match attrs.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v.parse::<u64>().map(Some).map_err(|_| corrupt(name, format!("should be a whole number, found {v:?}"))),
            Some(other) => Err(corrupt(name, format!("should be a number (N), found {other:?}"))),
        }
    };
    let status = get_s("status")?.ok_or_else(|| corrupt("status", "is missing".into()))?;
    let status: Status = status.parse().map_err(|e| corrupt("status", e))?;
    let error = match attrs.get("error") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::M(m)) => {
            let kind = match m.get("kind") {
                // A kind this version does not know reads as FailureKind::Other.
                Some(AttributeValue::S(k)) => FailureKind::from(k.as_str()),
                _ => return Err(corrupt("error", "has no string `kind`".into())),
            };
            let message = match m.get("message") {
                Some(AttributeValue::S(msg)) => msg.clone(),
                _ => return Err(corrupt("error", "has no string `message`".into())),
            };
            Some(Failure { kind, message })
        }
        Some(other) => return Err(corrupt("error", format!("should be a map (M), found {other:?}"))),
    };
    Ok(Item {
        id: id.clone(),
        task: get_s("task")?.unwrap_or_default(),
        status,
        attempts: get_n("attempts")?.unwrap_or(0) as u32,
        request_id: get_s("request_id")?,
        lease_until_ms: get_n("lease_until_ms")?,
        max_attempts: get_n("max_attempts")?.map(|m| m.min(u64::from(u32::MAX)) as u32),
        digest: get_s("digest")?,
        message: get_s("message")?,
        parent: get_s("parent")?,
        run_at_ms: get_n("run_at_ms")?,
        resend: get_n("resend")?.map(|r| r.min(u64::from(u32::MAX)) as u32),
        response: get_s("response")?,
        error,
        created_at_ms: get_n("created_at_ms")?.unwrap_or(0),
        updated_at_ms: get_n("updated_at_ms")?.unwrap_or(0),
        ttl: get_n("ttl")?.ok_or_else(|| corrupt("ttl", "is missing".into()))?,
    })
}

#[async_trait]
impl ResponseStore for DynamoStore {
    async fn put_pending(&self, p: PendingItem) -> Result<bool, StoreError> {
        let listed = self.list_calls.then(|| calls::listed_shard(&p.id, p.now_ms));
        let mut item: Attrs = HashMap::from([
            ("id".to_owned(), s(p.id)),
            ("task".to_owned(), s(p.task)),
            ("status".to_owned(), s(if p.run_at_ms.is_some() { Status::Scheduled } else { Status::Pending }.as_str())),
            ("attempts".to_owned(), n(0)),
            ("created_at_ms".to_owned(), n(p.now_ms)),
            ("updated_at_ms".to_owned(), n(p.now_ms)),
            ("ttl".to_owned(), n(p.ttl)),
        ]);
        if let Some(digest) = p.digest {
            item.insert("digest".to_owned(), s(digest));
        }
        if let Some(at) = p.run_at_ms {
            item.insert("run_at_ms".to_owned(), n(at));
        }
        if let Some(shard) = listed {
            item.insert("listed_shard".to_owned(), s(shard));
        }
        if let Some(parent) = p.parent {
            item.insert("parent".to_owned(), s(parent));
        }
        self.put_new("put_pending", item).await
    }

    async fn discard_pending(&self, id: &str) -> Result<(), StoreError> {
        let delete = self
            .client()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("id", s(id))
            .condition_expression("#status IN (:pending, :scheduled)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":scheduled", s(Status::Scheduled.as_str()))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            // absent, or a worker has begun it: not ours to remove
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(self.err("discard_pending", &e)),
        }
    }

    async fn refuse_pending(&self, id: &str, digest: &str, failure: Failure, now_ms: u64) -> Result<bool, StoreError> {
        let update = self
            .update(id)
            .await
            .update_expression("SET #status = :failed, #error = :error, #updated = :now, #shard = :shard")
            .condition_expression("#status = :pending AND #digest = :digest")
            .expression_attribute_names("#shard", "failed_shard")
            .expression_attribute_values(":shard", s(failure_shard(id, now_ms)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#digest", "digest")
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":digest", s(digest))
            .expression_attribute_values(":error", failure_attr(&failure))
            .expression_attribute_values(":now", n(now_ms));
        self.conditional("refuse_pending", update).await
    }

    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Cancel, StoreError> {
        let update = self
            .update(id)
            .await
            .update_expression("SET #status = :cancelled, #updated = :now")
            .condition_expression("#status IN (:scheduled, :pending) AND #ttl > :now_s")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":cancelled", s(Status::Cancelled.as_str()))
            .expression_attribute_values(":scheduled", s(Status::Scheduled.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match update {
            Ok(out) => {
                let was = out.attributes().map(item_from_attrs).transpose()?.map_or(Status::Pending, |i| i.status);
                Ok(Cancel::Cancelled { was })
            }
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(ccf)) =
                    e.as_service_error()
                else {
                    return Err(self.err("cancel", &e));
                };
                // Absent (the condition fails on a missing item too, with no item returned), expired, or begun.
                match ccf.item().map(item_from_attrs).transpose()? {
                    Some(item) if !item.expired(now_ms) => Ok(Cancel::NotCancellable { status: item.status }),
                    _ => Ok(Cancel::NotFound),
                }
            }
        }
    }

    async fn note_latest_run(&self, schedule: &str, run_id: &str, now_ms: u64, ttl: u64) -> Result<(), StoreError> {
        let item: Attrs = HashMap::from([
            ("id".to_owned(), s(super::latest_run_id(schedule))),
            ("task".to_owned(), s(schedule)),
            ("status".to_owned(), s(Status::Complete.as_str())),
            ("attempts".to_owned(), n(0)),
            ("response".to_owned(), s(serde_json::Value::String(run_id.to_owned()).to_string())),
            ("created_at_ms".to_owned(), n(now_ms)),
            ("updated_at_ms".to_owned(), n(now_ms)),
            ("ttl".to_owned(), n(ttl)),
        ]);
        self.client()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("note_latest_run", &e))
    }

    async fn begin(&self, req: BeginRequest) -> Result<Begun, StoreError> {
        const SET: &str = "SET #status = :running, #attempts = if_not_exists(#attempts, :zero) + :one, #rid = :rid, \
                 #lease = :lease, #max = :max, #task = if_not_exists(#task, :task), \
                 #created = if_not_exists(#created, :now), #updated = :now, #ttl = :ttl";
        let listed = self.list_calls.then(|| calls::listed_shard(&req.id, req.now_ms));
        let (expression, update) = created_with(SET, self.update(&req.id).await, req.parent.as_deref(), listed);
        let update = update
            .update_expression(expression)
            // Only a lapsed lease is taken over, whoever asks, and not past the
            // last attempt (see Item::begin_verdict).
            // A call the runtime re-sent is begun only by the re-sent message,
            // or one re-sent after the latest attempt (Item::begin_verdict too).
            .condition_expression(
                "attribute_not_exists(#id) OR ((#status IN (:scheduled, :pending, :retrying) OR (#status = :running AND #lease < :now AND #attempts < :max)) \
                 AND (attribute_not_exists(#resend) OR #resend = :resend OR #attempts = :resend))",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#resend", "resend")
            .expression_attribute_values(":resend", n(req.resend.unwrap_or(0)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#rid", "request_id")
            .expression_attribute_names("#lease", "lease_until_ms")
            .expression_attribute_names("#max", "max_attempts")
            .expression_attribute_names("#task", "task")
            .expression_attribute_names("#created", "created_at_ms")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":running", s(Status::Running.as_str()))
            .expression_attribute_values(":scheduled", s(Status::Scheduled.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":retrying", s(Status::Retrying.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":rid", s(&req.request_id))
            .expression_attribute_values(":lease", n(req.lease_until_ms))
            .expression_attribute_values(":max", n(req.max_attempts))
            .expression_attribute_values(":task", s(&req.task))
            .expression_attribute_values(":now", n(req.now_ms))
            .expression_attribute_values(":ttl", n(req.ttl))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match update {
            Ok(out) => {
                let attempts = match out.attributes().and_then(|a| a.get("attempts")) {
                    Some(AttributeValue::N(v)) => v.parse::<u32>().ok(),
                    _ => None,
                };
                let attempts = attempts.ok_or_else(|| StoreError::Corrupt {
                    id: req.id.clone(),
                    attribute: "attempts",
                    problem: "was not returned as a number by begin".into(),
                })?;
                Ok(Begun::Started { attempts })
            }
            Err(e) => {
                let Some(ccf) = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => Some(c),
                    _ => None,
                }) else {
                    return Err(self.err("begin", &e));
                };
                let old = ccf.item().ok_or_else(|| StoreError::Backend {
                    operation: "begin",
                    table: self.table.clone(),
                    message: "the condition failed but DynamoDB returned no item (ReturnValuesOnConditionCheckFailure unsupported?)".into(),
                })?;
                let item = item_from_attrs(old)?;
                // The item failed the condition, so the verdict is a refusal.
                Ok(item.begin_verdict(&req).unwrap_or(Begun::Busy {
                    request_id: item.request_id.unwrap_or_default(),
                    lease_until_ms: item.lease_until_ms.unwrap_or(0),
                }))
            }
        }
    }

    async fn finish(&self, id: &str, request_id: &str, state: FinalState, now_ms: u64, message: Option<&str>) -> Result<Finished, StoreError> {
        let status = state.status();
        let mut update = self
            .owned_update(id, request_id)
            .await
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":now", n(now_ms));
        update = match &state {
            FinalState::Complete(text) => update
                // A child that waited for its turn kept its message until now.
                .update_expression("SET #status = :status, #updated = :now, #response = :response REMOVE #error, #message, #message_bytes")
                .expression_attribute_names("#response", "response")
                .expression_attribute_names("#error", "error")
                .expression_attribute_names("#message", "message")
                .expression_attribute_names("#message_bytes", "message_bytes")
                .expression_attribute_values(":response", s(text.clone())),
            FinalState::Retrying(f) => update
                .update_expression("SET #status = :status, #updated = :now, #error = :error")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", failure_attr(f)),
            FinalState::Resend { failure, run_at_ms, after_attempt, ttl } => update
                .update_expression("SET #status = :status, #updated = :now, #error = :error, #run_at = :at, #resend = :after, #ttl = :ttl")
                .expression_attribute_names("#error", "error")
                .expression_attribute_names("#run_at", "run_at_ms")
                .expression_attribute_names("#resend", "resend")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":error", failure_attr(failure))
                .expression_attribute_values(":at", n(*run_at_ms))
                .expression_attribute_values(":after", n(*after_attempt))
                .expression_attribute_values(":ttl", n(*ttl)),
            FinalState::Failed(f) => {
                let update = update.expression_attribute_names("#error", "error").expression_attribute_values(":error", failure_attr(f));
                let (set, update) = failed_attrs(update, id, now_ms, message);
                update.update_expression(format!("SET #status = :status, #updated = :now, #error = :error{set}"))
            }
        };
        self.send_owned("finish", update).await
    }

    async fn take_slot(&self, key: &str, holder: &str, limit: u32, lease_until_ms: u64, now_ms: u64) -> Result<crate::store::flow::Slot, StoreError> {
        self.take_slot_item(key, holder, limit, lease_until_ms, now_ms).await
    }

    async fn renew_slot(&self, key: &str, holder: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        self.renew_slot_item(key, holder, lease_until_ms).await
    }

    async fn release_slot(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.release_slot_item(key, holder).await
    }

    async fn take_turn(&self, key: &str, interval_ms: u64, now_ms: u64, ttl: u64) -> Result<crate::store::flow::Turn, StoreError> {
        self.take_turn_item(key, interval_ms, now_ms, ttl).await
    }

    async fn renew(&self, id: &str, request_id: &str, lease_until_ms: u64) -> Result<Finished, StoreError> {
        let update = self
            .owned_update(id, request_id)
            .await
            .update_expression("SET #lease = :lease")
            .expression_attribute_names("#lease", "lease_until_ms")
            .expression_attribute_values(":lease", n(lease_until_ms));
        self.send_owned("renew", update).await
    }

    async fn fail_unfinished(&self, p: PendingItem, failure: Failure, message: Option<&str>) -> Result<bool, StoreError> {
        const SET: &str = "SET #status = :failed, #error = :error, #updated = :now, #task = if_not_exists(#task, :task), \
                 #attempts = if_not_exists(#attempts, :zero), #created = if_not_exists(#created, :now), #ttl = :ttl";
        let listed = self.list_calls.then(|| calls::listed_shard(&p.id, p.now_ms));
        let (expression, update) = created_with(SET, self.update(&p.id).await, p.parent.as_deref(), listed);
        let (set, update) = failed_attrs(update, &p.id, p.now_ms, message);
        let update = update
            .update_expression(format!("{expression}{set}"))
            .condition_expression("attribute_not_exists(#id) OR #status IN (:scheduled, :pending, :running, :retrying)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#task", "task")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#created", "created_at_ms")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":scheduled", s(Status::Scheduled.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":running", s(Status::Running.as_str()))
            .expression_attribute_values(":retrying", s(Status::Retrying.as_str()))
            .expression_attribute_values(":error", failure_attr(&failure))
            .expression_attribute_values(":now", n(p.now_ms))
            .expression_attribute_values(":task", s(p.task))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":ttl", n(p.ttl));
        // `false`: complete or failed already, left as it is.
        self.conditional("fail_unfinished", update).await
    }

    async fn get(&self, id: &str) -> Result<Option<AsyncResponse>, StoreError> {
        let Some(item) = self.read("get", id).await? else { return Ok(None) };
        // DynamoDB deletes expired items lazily (within days): hide them now.
        let now = crate::time::now_ms();
        if item.expired(now) {
            return Ok(None);
        }
        item.to_response(now).map(Some)
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<AsyncResponse>>, StoreError> {
        self.get_items(ids).await
    }

    async fn children(&self, id: &str, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        self.children_of(id, limit).await
    }

    async fn recent(&self, since_ms: u64, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        self.recent_calls(since_ms, limit).await
    }

    async fn put_group(&self, group: GroupItem) -> Result<bool, StoreError> {
        self.put_group_item(group).await
    }

    async fn count_ended(&self, child: &GroupRef, status: Status, _now_ms: u64, ttl: u64) -> Result<Counted, StoreError> {
        self.count_child(child, status, ttl).await
    }

    async fn group(&self, id: &str) -> Result<Option<GroupState>, StoreError> {
        self.read_group(id).await
    }

    async fn put_waiting(&self, item: PendingItem, waiting: Waiting) -> Result<bool, StoreError> {
        self.put_waiting_item(item, waiting).await
    }

    async fn release(&self, id: &str, now_ms: u64, ttl: u64) -> Result<Release, StoreError> {
        self.release_item(id, now_ms, ttl).await
    }
}
