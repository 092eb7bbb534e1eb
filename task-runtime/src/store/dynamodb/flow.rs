//! Flow limits in DynamoDB: a concurrency limit's `limit:KEY` item (its
//! `holders` map and `version`) and a rate limit's `rate:KEY` item
//! (`next_ms`), as [`crate::store::flow`] lays them out. Every write is
//! conditional. A map's entries are updated by document path
//! (`holders.#id`), and `SET a = a + :n` adds to a number:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{DynamoStore, n};
use crate::error::StoreError;
use crate::store::flow::{LIMIT_ITEM_LIFE_SECS, Slot, Turn, live_others, rate_item, slot_item};

/// How often a taking of a slot reads again after another instance wrote
/// between its read and its write.
const SLOT_TRIES: usize = 8;

impl DynamoStore {
    pub(super) async fn take_slot_item(&self, key: &str, holder: &str, limit: u32, lease_until_ms: u64, now_ms: u64) -> Result<Slot, StoreError> {
        let item_key = slot_item(key);
        let mut seen = (0, now_ms);
        for _ in 0..SLOT_TRIES {
            let attrs = self.read_attrs("take_slot", &item_key).await?;
            let version = attrs.as_ref().and_then(|a| a.get("version")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok());
            let holders: Vec<(String, u64)> = match attrs.as_ref().and_then(|a| a.get("holders")) {
                Some(AttributeValue::M(m)) => m.iter().filter_map(|(id, v)| Some((id.clone(), v.as_n().ok()?.parse().ok()?))).collect(),
                _ => Vec::new(),
            };
            let (live, free_at_ms) = live_others(holders.iter().map(|(id, lease)| (id.as_str(), *lease)), holder, now_ms);
            if live >= limit {
                return Ok(Slot::Full { holders: live, free_at_ms });
            }
            seen = (live, free_at_ms);
            let ttl = (lease_until_ms / 1000).saturating_add(LIMIT_ITEM_LIFE_SECS);
            let update = self
                .update(&item_key)
                .await
                .expression_attribute_names("#holders", "holders")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":ttl", n(ttl));
            let update = match version {
                // The first holder makes the item.
                None => update
                    .update_expression("SET #holders = :holders, #version = :one, #ttl = :ttl")
                    .condition_expression("attribute_not_exists(#version)")
                    .expression_attribute_values(":holders", AttributeValue::M(HashMap::from([(holder.to_owned(), n(lease_until_ms))])))
                    .expression_attribute_values(":one", n(1)),
                Some(v) => {
                    // Lapsed holders are swept out in the same write.
                    let lapsed: Vec<&String> = holders.iter().filter(|(id, lease)| id != holder && *lease < now_ms).map(|(id, _)| id).collect();
                    let mut expression = "SET #holders.#me = :lease, #version = :next, #ttl = :ttl".to_owned();
                    let mut update = update
                        .condition_expression("#version = :seen")
                        .expression_attribute_names("#me", holder)
                        .expression_attribute_values(":lease", n(lease_until_ms))
                        .expression_attribute_values(":seen", n(v))
                        .expression_attribute_values(":next", n(v + 1));
                    for (i, id) in lapsed.iter().enumerate() {
                        expression.push_str(if i == 0 { " REMOVE " } else { ", " });
                        expression.push_str(&format!("#holders.#lapsed{i}"));
                        update = update.expression_attribute_names(format!("#lapsed{i}"), id.as_str());
                    }
                    update.update_expression(expression)
                }
            };
            if self.conditional("take_slot", update).await? {
                return Ok(Slot::Taken);
            }
        }
        // Contended every time: as good as full, for now.
        Ok(Slot::Full { holders: seen.0, free_at_ms: seen.1 })
    }

    pub(super) async fn renew_slot_item(&self, key: &str, holder: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        let update = self
            .update(&slot_item(key))
            .await
            // The version moves, so that a taking that read the lease lapsed does not sweep it out.
            .update_expression("SET #holders.#me = :lease ADD #version :one")
            .condition_expression("attribute_exists(#holders.#me)")
            .expression_attribute_names("#holders", "holders")
            .expression_attribute_names("#me", holder)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":one", n(1));
        self.conditional("renew_slot", update).await
    }

    pub(super) async fn release_slot_item(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let update = self
            .update(&slot_item(key))
            .await
            .update_expression("REMOVE #holders.#me")
            .condition_expression("attribute_exists(#holders.#me)")
            .expression_attribute_names("#holders", "holders")
            .expression_attribute_names("#me", holder);
        // Not held (swept out after a lapse, or given back already): nothing to do.
        self.conditional("release_slot", update).await.map(|_| ())
    }

    pub(super) async fn take_turn_item(&self, key: &str, interval_ms: u64, now_ms: u64, ttl: u64) -> Result<Turn, StoreError> {
        let item_key = rate_item(key);
        loop {
            let due = self
                .update(&item_key)
                .await
                .update_expression("SET #next = :then, #ttl = :ttl")
                .condition_expression("attribute_not_exists(#next) OR #next <= :now")
                .expression_attribute_names("#next", "next_ms")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":then", n(now_ms.saturating_add(interval_ms)))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":ttl", n(ttl));
            if self.conditional("take_turn", due).await? {
                return Ok(Turn::Now);
            }
            // Early: reserve the next free turn, the one `next_ms` names.
            let reserve = self
                .update(&item_key)
                .await
                .update_expression("SET #next = #next + :interval, #ttl = :ttl")
                .condition_expression("#next > :now")
                .expression_attribute_names("#next", "next_ms")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":interval", n(interval_ms))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":ttl", n(ttl))
                .return_values(ReturnValue::UpdatedOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
                .send()
                .await;
            match reserve {
                Ok(out) => {
                    let old = out.attributes().and_then(|a| a.get("next_ms")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                    return old.map(Turn::At).ok_or_else(|| StoreError::Corrupt {
                        id: item_key.clone(),
                        attribute: "next_ms",
                        problem: "was not returned as a number by the reservation".into(),
                    });
                }
                // It came due in between: take it now (the first write again).
                Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => continue,
                Err(e) => return Err(self.err("take_turn", &e)),
            }
        }
    }
}
