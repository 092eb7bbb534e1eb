//! Finding calls in DynamoDB by what sent them: the index of calls by
//! parent ([`PARENT_INDEX`]), one level of the tree of calls at a time.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Attrs, DynamoStore, n, s};
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

impl DynamoStore {
    /// The calls `id` sent, oldest first, at most `limit`.
    pub(super) async fn children_of(&self, id: &str, limit: usize) -> Result<Vec<StoredCall>, StoreError> {
        let mut ids = Vec::new();
        let mut start: Option<Attrs> = None;
        while ids.len() < limit {
            let page = self
                .client()
                .await
                .query()
                .table_name(&self.table)
                .index_name(PARENT_INDEX)
                .key_condition_expression("#parent = :parent AND #created >= :zero")
                .expression_attribute_names("#parent", "parent")
                .expression_attribute_names("#created", "created_at_ms")
                .expression_attribute_values(":parent", s(id))
                .expression_attribute_values(":zero", n(0))
                .scan_index_forward(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err("children", &e))?;
            ids.extend(page.items().iter().filter_map(|k| match k.get("id") {
                Some(AttributeValue::S(child)) => Some(child.clone()),
                _ => None,
            }));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        ids.truncate(limit);
        let found = self.get_items(&ids).await?;
        // An expired child reads `None`: left out.
        Ok(ids.into_iter().zip(found).filter_map(|(id, response)| Some(StoredCall { id, response: response? })).collect())
    }
}
