//! Finding calls in DynamoDB: by what sent them (the index of calls by
//! parent, [`PARENT_INDEX`]: one level of the tree of calls at a time) and
//! by when they were sent (the index of recent calls, [`RECENT_INDEX`]).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Attrs, DynamoStore, FAILED_SHARDS, n, s};
use crate::error::StoreError;
use crate::store::StoredCall;

/// The global secondary index of calls by the call that sent them:
/// partition key `parent` (the sender's id), sort key `created_at_ms`,
/// keys only. Sparse: only a call sent from inside a task carries
/// `parent`, written with its pending item (no extra request). Each such
/// call costs one index write of its keys (under 1 KB: one write unit,
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations>),
/// once: neither key changes afterwards, so the later writes of the call
/// (begin, finish) do not touch the index. Reads fetch the calls themselves
/// with a consistent `BatchGetItem`.
pub const PARENT_INDEX: &str = "calls-by-parent";

/// The global secondary index of calls by the day they were sent:
/// partition key `listed_shard` (`YYYY-MM-DD#NN`, sharded by id as the
/// failed index is, [`FAILED_SHARDS`] shards a day, so that a burst of calls
/// never crowds one partition), sort key `created_at_ms`, keys only.
/// Written only when the store lists calls
/// ([`DynamoStore::listing_calls`], `TASK_LIST_CALLS=true`): one index
/// write of under 1 KB per call, once, since neither key changes. A listing
/// reads a day with one query per shard, and the calls with a consistent
/// `BatchGetItem`; never a scan.
pub const RECENT_INDEX: &str = "calls-by-day-shard";

/// The attribute `listed_shard` of call `id` sent at `now_ms`.
pub(super) fn listed_shard(id: &str, now_ms: u64) -> String {
    super::failure_shard(id, now_ms)
}

impl DynamoStore {
    /// The calls sent from `since_ms` on, newest first, at most `limit`.
    pub(super) async fn recent_calls(&self, since_ms: u64, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let first_day = crate::store::failure_day(since_ms);
        let mut keys: Vec<(u64, String)> = Vec::new();
        let mut day_ms = crate::time::now_ms();
        while keys.len() < limit {
            let day = crate::store::failure_day(day_ms);
            if day < first_day {
                break;
            }
            let shards: Vec<String> = (0..FAILED_SHARDS).map(|shard| format!("{day}#{shard:02}")).collect();
            let shards = shards.iter().map(|shard| self.index_keys("recent", RECENT_INDEX, "listed_shard", shard, since_ms, true, limit));
            let mut found = Vec::new();
            for shard in futures::future::join_all(shards).await {
                found.extend(shard?);
            }
            found.sort_by(|a, b| b.cmp(a));
            keys.extend(found);
            match day_ms.checked_sub(86_400_000) {
                Some(earlier) => day_ms = earlier,
                None => break,
            }
        }
        keys.truncate(limit);
        self.calls_of(keys.into_iter().map(|(_, id)| id).collect()).await
    }

    /// The calls `id` sent, oldest first, at most `limit`.
    pub(super) async fn children_of(&self, id: &str, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let keys = self.index_keys("children", PARENT_INDEX, "parent", id, 0, false, limit).await?;
        self.calls_of(keys.into_iter().map(|(_, id)| id).collect()).await
    }

    /// The calls `ids`, read consistently; one that expired is left out.
    async fn calls_of(&self, ids: Vec<String>) -> Result<Vec<StoredCall>, StoreError> {
        let found = self.get_items(&ids).await?;
        Ok(ids.into_iter().zip(found).filter_map(|(id, response)| Some(StoredCall { id, response: response? })).collect())
    }

    /// The (`created_at_ms`, id) of the items of keys-only `index` whose
    /// partition key `key_attr` is `key`, created from `since_ms` on, oldest
    /// first (newest first with `newest_first`), at most `limit`.
    #[allow(clippy::too_many_arguments)]
    async fn index_keys(
        &self,
        operation: &'static str,
        index: &str,
        key_attr: &str,
        key: &str,
        since_ms: u64,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        while out.len() < limit {
            let page = self
                .client()
                .await
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#key = :key AND #created >= :since")
                .expression_attribute_names("#key", key_attr)
                .expression_attribute_names("#created", "created_at_ms")
                .expression_attribute_values(":key", s(key))
                .expression_attribute_values(":since", n(since_ms))
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err(operation, &e))?;
            out.extend(page.items().iter().filter_map(|k| match (k.get("created_at_ms"), k.get("id")) {
                (Some(AttributeValue::N(at)), Some(AttributeValue::S(id))) => Some((at.parse().ok()?, id.clone())),
                _ => None,
            }));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
