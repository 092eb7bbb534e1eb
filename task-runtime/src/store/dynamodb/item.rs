//! The item's encoding: attribute values, a stored failure, the attributes
//! a first write records, and an item decoded with the attribute at fault
//! named.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::Attrs;
use crate::store::{Item, PendingItem};
use crate::error::StoreError;
use crate::response::{Failure, FailureKind, Status};

/// `set` (an update's SET clause) and `update`, recording `parent` and
/// `listed_shard` when given: only where absent, since the caller's write
/// may have created the item first.
pub(super) fn created_with(set: &'static str, update: UpdateItemFluentBuilder, parent: Option<&str>, listed: Option<String>) -> (String, UpdateItemFluentBuilder) {
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

/// The attributes of a new `pending` (or `scheduled`) item, with its
/// listing shard when calls are listed.
pub(super) fn pending_attrs(p: PendingItem, listed: Option<String>) -> Attrs {
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
    item
}


pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A failure as stored, its message bounded (`Failure::bounded`) so that no
/// error text can push an item over DynamoDB's 400 KB.
pub(super) fn failure_attr(f: &Failure) -> AttributeValue {
    let f = f.clone().bounded();
    AttributeValue::M(HashMap::from([("kind".to_owned(), s(f.kind.as_str())), ("message".to_owned(), s(f.message))]))
}

/// Decode a stored item, naming the attribute at fault.
pub(super) fn item_from_attrs(attrs: &Attrs) -> Result<Item, StoreError> {
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
        args_digest: get_s("args_digest")?,
        free_after_ms: get_n("free_after_ms")?,
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
