//! Creating the table: its key, TTL and indexes, one index at a time (an
//! existing table gains the ones it lacks, each waited for until ACTIVE),
//! and the failed calls of the older layout backfilled into the index of
//! failed calls.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification,
};

use super::item::s as string;
use super::{DynamoStore, FAILED_INDEX, FAILED_INDEX_ATTRIBUTES, PARENT_INDEX, RECENT_INDEX, failure_shard};
use crate::error::StoreError;
use crate::response::Status;

/// How long [`DynamoStore::create_table`] waits for the table and each
/// index it adds to become ACTIVE: DynamoDB backfills a new index of a
/// large table for minutes.
pub const TABLE_WAIT: Duration = Duration::from_secs(600);

/// The index of failed calls before it was sharded (partition key
/// `failed_day`): a table that has it holds failed calls the sharded index
/// does not list until they are backfilled.
const OLDER_FAILED_INDEX: &str = "failed-by-day";

/// What [`DynamoStore::create_or_upgrade_table`] is doing, as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableProgress {
    /// Waiting for the table (`index: None`) or an index to be ACTIVE.
    Waiting {
        /// The index being created, if it is one.
        index: Option<String>,
        /// How long this wait has lasted.
        waited: Duration,
    },
    /// Asking DynamoDB to create `index` (one index of a table at a time).
    Adding {
        /// The index's name.
        index: String,
    },
    /// Failed calls of the older layout given their place in the index of
    /// failed calls: one scan, a page at a time.
    Backfilling {
        /// Items read so far.
        scanned: u64,
        /// Of them, failed calls given their `failed_shard`.
        backfilled: u64,
        /// About how many items the table holds (DynamoDB updates this
        /// figure about every six hours).
        items: Option<u64>,
    },
}

/// What [`DynamoStore::create_or_upgrade_table`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableReport {
    /// The table was created by this call.
    pub created: bool,
    /// The indexes this call added to an existing table, in order.
    pub added: Vec<String>,
    /// Failed calls of the older layout backfilled into the index of
    /// failed calls; `None` when no backfill was needed.
    pub backfilled: Option<u64>,
}

impl DynamoStore {

    /// Create the table (key `id`, on-demand billing) with the index of
    /// failed calls ([`FAILED_INDEX`]), of calls by parent
    /// ([`PARENT_INDEX`]) and of recent calls ([`RECENT_INDEX`]), and turn TTL on for `ttl`. Safe to call when the
    /// table exists already: a table made by an earlier version gets the
    /// indexes it lacks added and waited for, one at a time (DynamoDB
    /// creates one index per `UpdateTable`), within [`TABLE_WAIT`]; see
    /// [`create_or_upgrade_table`](Self::create_or_upgrade_table).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.create_or_upgrade_table(TABLE_WAIT, &mut |_| {}).await.map(drop)
    }

    /// [`create_table`](Self::create_table), telling `progress` what it does
    /// and giving up after `timeout` (the next run goes on where this one
    /// stopped). Each index the table lacks is added once the one before is
    /// ACTIVE. When the index of failed calls was added (or was still being
    /// created), or the table has the older index of failed calls
    /// (`failed-by-day`), the failed calls written under the older layout
    /// (`status = failed`, no `failed_shard`) are backfilled into it, in one
    /// paginated scan, so that `tasks failed` lists them.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), task_runtime::StoreError> {
    /// use task_runtime::store::dynamodb::{DynamoStore, TableProgress};
    /// let store = DynamoStore::lazy("task-responses");
    /// let report = store
    ///     .create_or_upgrade_table(std::time::Duration::from_secs(600), &mut |p| {
    ///         if let TableProgress::Adding { index } = p { println!("adding {index}") }
    ///     })
    ///     .await?;
    /// println!("added {:?}, backfilled {:?}", report.added, report.backfilled);
    /// # Ok(()) }
    /// ```
    pub async fn create_or_upgrade_table(&self, timeout: Duration, progress: &mut (dyn FnMut(&TableProgress) + Send)) -> Result<TableReport, StoreError> {
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
        let deadline = Instant::now() + timeout;
        // A new table's indexes are created with it: wait for them too.
        let mut described = self.wait_until_active(deadline, timeout, progress).await?;
        let ttl = TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build().map_err(|e| self.build_err(e))?;
        match client.update_time_to_live().table_name(&self.table).time_to_live_specification(ttl).send().await {
            Ok(_) => {}
            // Enabling TTL twice is a ValidationException ("already enabled").
            Err(e) if e.code() == Some("ValidationException") && e.message().is_some_and(|m| m.contains("already enabled")) => {}
            Err(e) => return Err(self.err("update_time_to_live", &e)),
        }
        let index_named = |t: &TableDescription, name: &str| t.global_secondary_indexes().iter().any(|p| p.index_name() == Some(name));
        // Failed calls of the older layout need their place in the index of
        // failed calls when it is new to the table (or was still being built).
        let older_layout = !fresh && (!index_named(&described, FAILED_INDEX) || index_named(&described, OLDER_FAILED_INDEX));
        // A table made by an earlier version: add the indexes it lacks, each
        // once the one before is ACTIVE. DynamoDB builds one new index of a
        // table at a time, and backfills it for minutes on a large table.
        // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.OnlineOps.html
        let mut report = TableReport { created: fresh, ..TableReport::default() };
        while let Some(next) = indexes.iter().find(|i| !index_named(&described, i.index_name())) {
            progress(&TableProgress::Adding { index: next.index_name().to_owned() });
            let create = CreateGlobalSecondaryIndexAction::builder()
                .index_name(next.index_name())
                .set_key_schema(Some(next.key_schema().to_vec()))
                .set_projection(next.projection.clone())
                .build()
                .map_err(|e| self.build_err(e))?;
            let used: Vec<&str> = next.key_schema().iter().map(|k| k.attribute_name()).collect();
            client
                .update_table()
                .table_name(&self.table)
                .set_attribute_definitions(Some(attributes.iter().filter(|a| used.contains(&a.attribute_name())).cloned().collect()))
                .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
                .send()
                .await
                .map_err(|e| self.err("update_table", &e))?;
            report.added.push(next.index_name().to_owned());
            described = self.wait_until_active(deadline, timeout, progress).await?;
        }
        if older_layout {
            let items = described.item_count().and_then(|n| u64::try_from(n).ok());
            report.backfilled = Some(self.backfill_failed(items, progress).await?);
        }
        Ok(report)
    }

    /// Wait until the table and every index of it are ACTIVE, polling
    /// `DescribeTable` every half second, until `deadline`. Real DynamoDB
    /// takes seconds to create a table, and minutes to backfill an index.
    async fn wait_until_active(&self, deadline: Instant, timeout: Duration, progress: &mut (dyn FnMut(&TableProgress) + Send)) -> Result<TableDescription, StoreError> {
        let client = self.client().await;
        let started = Instant::now();
        loop {
            let d = client.describe_table().table_name(&self.table).send().await.map_err(|e| self.err("describe_table", &e))?;
            let Some(t) = d.table() else {
                return Err(StoreError::Backend { operation: "describe_table", table: self.table.clone(), message: "the table did not describe itself".into() });
            };
            let building = t.global_secondary_indexes().iter().find(|i| i.index_status() != Some(&IndexStatus::Active));
            if t.table_status() == Some(&TableStatus::Active) && building.is_none() {
                return Ok(t.clone());
            }
            let index = building.and_then(|i| i.index_name()).map(str::to_owned);
            if Instant::now() >= deadline {
                let what = index.as_ref().map_or("the table".to_owned(), |i| format!("the index `{i}`"));
                return Err(StoreError::Backend {
                    operation: "describe_table",
                    table: self.table.clone(),
                    message: format!(
                        "{what} was still being created after {}s; DynamoDB builds an index of a large table for minutes. \
                         Run create-table again (it goes on where it stopped), with a longer --timeout",
                        timeout.as_secs()
                    ),
                });
            }
            progress(&TableProgress::Waiting { index, waited: started.elapsed() });
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Give each failed call of the older layout (`status = failed` and no
    /// `failed_shard`) the shard of the index of failed calls its failure
    /// time puts it in; one paginated scan. A call retried meanwhile (no
    /// longer `failed`) is left as it is. Returns how many were backfilled.
    async fn backfill_failed(&self, items: Option<u64>, progress: &mut (dyn FnMut(&TableProgress) + Send)) -> Result<u64, StoreError> {
        let client = self.client().await;
        let (mut scanned, mut backfilled) = (0u64, 0u64);
        let mut start = None;
        progress(&TableProgress::Backfilling { scanned, backfilled, items });
        loop {
            let page = client
                .scan()
                .table_name(&self.table)
                .filter_expression("#status = :failed AND attribute_not_exists(#shard)")
                .projection_expression("#id, #updated")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#shard", "failed_shard")
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#updated", "updated_at_ms")
                .expression_attribute_values(":failed", string(Status::Failed.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err("scan", &e))?;
            scanned += u64::try_from(page.scanned_count()).unwrap_or(0);
            for item in page.items() {
                let id = item.get("id").and_then(|v| v.as_s().ok());
                let updated = item.get("updated_at_ms").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok());
                // Without its failure time it has no day to be listed under.
                let (Some(id), Some(updated)) = (id, updated) else { continue };
                let written = client
                    .update_item()
                    .table_name(&self.table)
                    .key("id", string(id))
                    .update_expression("SET #shard = :shard")
                    .condition_expression("#status = :failed AND attribute_not_exists(#shard)")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#shard", "failed_shard")
                    .expression_attribute_values(":failed", string(Status::Failed.as_str()))
                    .expression_attribute_values(":shard", string(failure_shard(id, updated)))
                    .send()
                    .await;
                match written {
                    Ok(_) => backfilled += 1,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(self.err("update_item", &e)),
                }
            }
            progress(&TableProgress::Backfilling { scanned, backfilled, items });
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(backfilled),
            }
        }
    }
}
