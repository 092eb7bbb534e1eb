//! The [`ResponseStore`] on DynamoDB: every conditional write of a call's
//! item (none reads first), and the consistent reads beside them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue,
    ReturnValuesOnConditionCheckFailure,
};

use super::{Attrs, DynamoStore, calls, created_with, pending_attrs, failed_attrs, failure_attr, failure_shard, item_from_attrs, n, s};
use crate::store::group::{Counted, GroupItem, GroupState, Release, Waiting};
use crate::store::{BeginRequest, Begun, Cancel, Claimed, FinalState, Finished, IdClaim, PendingItem, ResponseStore, StoredCall};
use crate::envelope::GroupRef;
use crate::error::StoreError;
use crate::response::{AsyncResponse, Failure, Status};

#[async_trait]
impl ResponseStore for DynamoStore {
    async fn put_pending(&self, p: PendingItem) -> Result<bool, StoreError> {
        let listed = self.list_calls.then(|| calls::listed_shard(&p.id, p.now_ms));
        let item = pending_attrs(p, listed);
        self.put_new("put_pending", item).await
    }

    async fn claim_id(&self, p: PendingItem, claim: IdClaim) -> Result<Claimed, StoreError> {
        let now_ms = p.now_ms;
        let listed = self.list_calls.then(|| calls::listed_shard(&p.id, p.now_ms));
        let mut item = pending_attrs(p, listed);
        if let Some(digest) = claim.args_digest {
            item.insert("args_digest".to_owned(), s(digest));
        }
        if let Some(at) = claim.free_after_ms {
            item.insert("free_after_ms".to_owned(), n(at));
        }
        // The same rule as Item::holds_id: an expired item, or one past its
        // key's window with no attempt running or due, gives the id up.
        // The holder comes back with the refusal, in the same request:
        // "No read capacity units are consumed" (ReturnValuesOnConditionCheckFailure,
        // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html).
        let put = self
            .client()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#id) OR #ttl <= :now_s OR (#free < :now AND NOT (#status IN (:running, :retrying)))",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#free", "free_after_ms")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":running", s(Status::Running.as_str()))
            .expression_attribute_values(":retrying", s(Status::Retrying.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claimed::Created),
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(ccf)) = e.as_service_error() else {
                    return Err(self.err("claim_id", &e));
                };
                let Some(held) = ccf.item().map(item_from_attrs).transpose()? else {
                    // A refusal always names the item that refused; DynamoDB Local too.
                    return Err(StoreError::Backend { operation: "claim_id", table: self.table.clone(), message: "the condition failed and no item came back".into() });
                };
                Ok(Claimed::Held(held.holder()))
            }
        }
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
            ("id".to_owned(), s(crate::store::latest_run_id(schedule))),
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
                 #created = if_not_exists(#created, :created), #updated = :now, #ttl = :ttl";
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
            // Created here for a call sent with no pending item: its dated id says when it was sent.
            .expression_attribute_values(":created", n(crate::envelope::dated_at(&req.id).unwrap_or(req.now_ms)))
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
