//! Groups in DynamoDB: the group item `group:ID` and its counter shards
//! `group:ID#S`, as [`crate::store::group`] lays them out. Every write is
//! conditional; a count that finds its child counted already reads the
//! item instead (a consistent read, on the rare paths that count twice).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};

use super::{Attrs, DynamoStore, item_from_attrs, n, s};
use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Status};
use crate::store::PendingItem;
use crate::store::group::{Callback, Counted, GroupItem, GroupState, Release, Waiting, group_key, no_group, not_an_end, outcome_counter, shard_key};

/// `BatchGetItem` takes at most 100 keys
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>).
const BATCH_GET_KEYS: usize = 100;

impl DynamoStore {
    pub(super) async fn put_group_item(&self, g: GroupItem) -> Result<bool, StoreError> {
        let mut item: Attrs = HashMap::from([
            ("id".to_owned(), s(group_key(&g.id))),
            ("kind".to_owned(), s("group")),
            ("total".to_owned(), n(g.total)),
            ("shards".to_owned(), n(g.shards)),
            ("created_at_ms".to_owned(), n(g.now_ms)),
            ("ttl".to_owned(), n(g.ttl)),
        ]);
        if let Some(window) = g.window {
            item.insert("window".to_owned(), n(window));
        }
        if let Some(cb) = g.callback {
            item.insert("callback".to_owned(), s(cb.message));
            if let Some(f) = cb.function {
                item.insert("callback_function".to_owned(), s(f));
            }
            item.insert("only_if_all_complete".to_owned(), AttributeValue::Bool(cb.only_if_all_complete));
        }
        self.put_new("put_group", item).await
    }

    /// Add `child` to its shard's `ended` set, once; when that completes the
    /// shard, add the shard to the group's `ended_shards`, once.
    /// `ADD` to a number set creates it when absent, and a condition may
    /// test `contains(set, value)`:
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>,
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>.
    pub(super) async fn count_child(&self, child: &GroupRef, status: Status, ttl: u64) -> Result<Counted, StoreError> {
        let outcome = outcome_counter(status).ok_or_else(|| not_an_end(child, status))?;
        let (key, shard) = (shard_key(&child.id, child.shard()), child.shard());
        let update = self
            .update(&key)
            .await
            .update_expression("ADD #ended :index_set, #n :one, #outcome :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#ended) OR NOT contains(#ended, :index)")
            .expression_attribute_names("#ended", "ended")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#outcome", outcome)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":index_set", AttributeValue::Ns(vec![child.index.to_string()]))
            .expression_attribute_values(":index", n(child.index))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let (newly, counted) = match update {
            Ok(out) => (true, number(out.attributes(), "n")),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => {
                (false, number(self.read_attrs("count_ended", &key).await?.as_ref(), "n"))
            }
            Err(e) => return Err(self.err("count_ended", &e)),
        };
        if counted < child.shard_size(shard) {
            return Ok(Counted { newly, all_ended: false });
        }
        let update = self
            .update(&group_key(&child.id))
            .await
            .update_expression("ADD #done :shard_set, #nd :one SET #ttl = :ttl")
            .condition_expression("attribute_exists(id) AND (attribute_not_exists(#done) OR NOT contains(#done, :shard))")
            .expression_attribute_names("#done", "ended_shards")
            .expression_attribute_names("#nd", "shards_ended")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":shard_set", AttributeValue::Ns(vec![shard.to_string()]))
            .expression_attribute_values(":shard", n(shard))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let shards_ended = match update {
            Ok(out) => number(out.attributes(), "shards_ended"),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => {
                let group = self.read_attrs("count_ended", &group_key(&child.id)).await?.ok_or_else(|| no_group(child))?;
                number(Some(&group), "shards_ended")
            }
            Err(e) => return Err(self.err("count_ended", &e)),
        };
        Ok(Counted { newly, all_ended: shards_ended >= child.used_shards() })
    }

    pub(super) async fn read_group(&self, id: &str) -> Result<Option<GroupState>, StoreError> {
        let Some(attrs) = self.read_attrs("group", &group_key(id)).await? else { return Ok(None) };
        let key = group_key(id);
        let corrupt = |attribute: &'static str| StoreError::Corrupt { id: key.clone(), attribute, problem: "is missing or not a number".into() };
        let get_n = |k: &'static str| attrs.get(k).and_then(|v| v.as_n().ok()).and_then(|t| t.parse::<u64>().ok());
        let total = get_n("total").ok_or_else(|| corrupt("total"))? as u32;
        let shards = get_n("shards").ok_or_else(|| corrupt("shards"))? as u32;
        let ttl = get_n("ttl").ok_or_else(|| corrupt("ttl"))?;
        if crate::store::item::expired_at(ttl, crate::time::now_ms()) {
            return Ok(None);
        }
        let callback = attrs.get("callback").and_then(|v| v.as_s().ok()).map(|message| Callback {
            message: message.clone(),
            function: attrs.get("callback_function").and_then(|v| v.as_s().ok()).cloned(),
            only_if_all_complete: attrs.get("only_if_all_complete").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        });
        let window = get_n("window").map(|w| w as u32);
        let item = GroupItem { id: id.to_owned(), total, shards, callback, window, now_ms: get_n("created_at_ms").unwrap_or(0), ttl };
        let used = GroupRef { id: id.to_owned(), index: 0, total, shards, window: None }.used_shards();
        let keys: Vec<String> = (0..used).map(|shard| shard_key(id, shard)).collect();
        let found = self.batch_get("group", &keys).await?;
        let mut state = GroupState { item, ended: 0, complete: 0, failed: 0, cancelled: 0 };
        for shard in found.values() {
            state.ended += number(Some(shard), "n");
            state.complete += number(Some(shard), "complete");
            state.failed += number(Some(shard), "failed");
            state.cancelled += number(Some(shard), "cancelled");
        }
        Ok(Some(state))
    }

    /// A child waiting for its turn: `scheduled`, no due time, its message kept.
    pub(super) async fn put_waiting_item(&self, p: PendingItem, waiting: Waiting) -> Result<bool, StoreError> {
        let message = waiting.message.as_str();
        let mut item: Attrs = HashMap::from([
            ("id".to_owned(), s(p.id)),
            ("task".to_owned(), s(p.task)),
            ("status".to_owned(), s(Status::Scheduled.as_str())),
            ("attempts".to_owned(), n(0)),
            ("created_at_ms".to_owned(), n(p.now_ms)),
            ("updated_at_ms".to_owned(), n(p.now_ms)),
            ("ttl".to_owned(), n(p.ttl)),
            ("message".to_owned(), s(message)),
            ("message_bytes".to_owned(), n(message.len())),
        ]);
        if let Some(digest) = p.digest {
            item.insert("digest".to_owned(), s(digest));
        }
        if let Some(function) = waiting.function {
            item.insert("function".to_owned(), s(function));
        }
        self.put_new("put_waiting", item).await
    }

    /// `scheduled` with a kept message and no due time becomes `pending`.
    pub(super) async fn release_item(&self, id: &str, now_ms: u64, ttl: u64) -> Result<Release, StoreError> {
        let update = self
            .update(id)
            .await
            .update_expression("SET #status = :pending, #updated = :now, #ttl = :ttl")
            .condition_expression("#status = :scheduled AND attribute_exists(#message) AND attribute_not_exists(#run_at)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#message", "message")
            .expression_attribute_names("#run_at", "run_at_ms")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":scheduled", s(Status::Scheduled.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":ttl", n(ttl))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let text = |attrs: Option<&Attrs>, name: &str| attrs.and_then(|a| a.get(name)).and_then(|v| v.as_s().ok()).cloned();
        let waiting = |attrs: Option<&Attrs>| text(attrs, "message").map(|message| Waiting { message, function: text(attrs, "function") });
        match update {
            Ok(out) => Ok(Release::Released(waiting(out.attributes()).unwrap_or(Waiting { message: String::new(), function: None }))),
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(ccf)) = e.as_service_error() else {
                    return Err(self.err("release", &e));
                };
                let Some(old) = ccf.item() else { return Ok(Release::NotFound) };
                let item = item_from_attrs(old)?;
                Ok(match (item.status, waiting(Some(old))) {
                    _ if item.expired(now_ms) => Release::NotFound,
                    (Status::Pending, Some(m)) => Release::Pending(m),
                    (status, _) => Release::Gone(status),
                })
            }
        }
    }

    pub(super) async fn get_items(&self, ids: &[String]) -> Result<Vec<Option<AsyncResponse>>, StoreError> {
        let found = self.batch_get("get_many", ids).await?;
        let now = crate::time::now_ms();
        ids.iter()
            .map(|id| match found.get(id) {
                None => Ok(None),
                Some(attrs) => {
                    let item = item_from_attrs(attrs)?;
                    if item.expired(now) { Ok(None) } else { item.to_response(now).map(Some) }
                }
            })
            .collect()
    }

    /// Read items by key, consistently, 100 keys a request, until DynamoDB
    /// has returned every key it has (`UnprocessedKeys` are asked again).
    async fn batch_get(&self, operation: &'static str, ids: &[String]) -> Result<HashMap<String, Attrs>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_KEYS) {
            let keys: Vec<Attrs> = chunk.iter().map(|id| HashMap::from([("id".to_owned(), s(id.clone()))])).collect();
            let mut ask = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(|e| {
                StoreError::Backend { operation, table: self.table.clone(), message: e.to_string() }
            })?;
            loop {
                let out = self
                    .client()
                    .await
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(|e| self.err(operation, &e))?;
                for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(id) = item.get("id").and_then(|v| v.as_s().ok()) {
                        found.insert(id.clone(), item.clone());
                    }
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        ask = rest.clone();
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Read item `key`'s attributes, consistently.
    pub(super) async fn read_attrs(&self, operation: &'static str, key: &str) -> Result<Option<Attrs>, StoreError> {
        let out = self
            .client()
            .await
            .get_item()
            .table_name(&self.table)
            .key("id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(operation, &e))?;
        Ok(out.item().cloned())
    }
}

/// Attribute `name` of `attrs` as a count (0 when absent).
fn number(attrs: Option<&Attrs>, name: &str) -> u32 {
    attrs.and_then(|a| a.get(name)).and_then(|v| v.as_n().ok()).and_then(|t| t.parse().ok()).unwrap_or(0)
}
