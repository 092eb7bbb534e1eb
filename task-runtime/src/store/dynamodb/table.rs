//! Creating the table: its key, TTL and indexes, one index at a time (an
//! existing table gains the ones it lacks), and waiting until it is active.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use super::{DynamoStore, FAILED_INDEX, FAILED_INDEX_ATTRIBUTES, PARENT_INDEX, RECENT_INDEX};
use crate::error::StoreError;

impl DynamoStore {

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
}
