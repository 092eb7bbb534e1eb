//! The index of failed calls (`failed-by-day-shard`): what a failure adds
//! to its item, the shard it is listed under, and the listing by day.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

use super::{Attrs, DynamoStore, item_from_attrs, n, s};
use crate::error::StoreError;
use crate::response::{AsyncResponse, Status};

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

impl DynamoStore {

    /// The calls that ended `failed` from `since_ms` on (epoch ms), newest
    /// first, at most `limit`; read from the index of failed calls, one
    /// query per shard of each day ([`FAILED_SHARDS`], run at once), never
    /// a scan.
    pub async fn failed_since(&self, since_ms: u64, limit: usize) -> Result<Vec<FailedCall>, StoreError> {
        let now = crate::time::now_ms();
        let first_day = crate::store::failure_day(since_ms);
        let mut out = Vec::new();
        let mut day_ms = now;
        loop {
            let day = crate::store::failure_day(day_ms);
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
}

/// The attributes a failure adds to an update: `failed_shard` (the index of
/// failed calls) and, when it fits, the task message (with its size in
/// `message_bytes`, which the index shows). Returns the `SET` clauses to
/// append and the update with their names and values.
pub(super) fn failed_attrs(update: UpdateItemFluentBuilder, id: &str, now_ms: u64, message: Option<&str>) -> (&'static str, UpdateItemFluentBuilder) {
    let update = update.expression_attribute_names("#shard", "failed_shard").expression_attribute_values(":shard", s(failure_shard(id, now_ms)));
    match message.filter(|m| m.len() <= crate::store::MAX_KEPT_MESSAGE_BYTES) {
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
    format!("{}#{:02}", crate::store::failure_day(epoch_ms), hash % u64::from(FAILED_SHARDS))
}
