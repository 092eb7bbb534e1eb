//! Lambda's failure records: the calls of events Lambda gave up on, ended
//! `failed`, and the SQS batch answered message by message.


use serde_json::json;
use tracing::Instrument;

use crate::envelope::failure_record::FailureRecord;
use crate::envelope::{EnvelopeError, Incoming};
use crate::error::error_type;
use crate::outcome::Reply;
use crate::response::Status;
use crate::time::now_ms;

use super::{After, Invocation, Worker, task_span};

impl Worker {
    /// Lambda gave up on these events: end each captured call `failed`
    /// (unless it is already terminal). With signing on, a record counts
    /// only if its task message verifies (or is a run of a schedule of this
    /// binary). Records that came through SQS are answered one by one with
    /// `batchItemFailures`: those whose write failed come again, and those
    /// that end no call (another event's, or one whose payload Lambda left
    /// out) are logged and left to the queue's dead-letter queue, so that
    /// none blocks the others.
    pub(super) async fn handle_failure_records(&self, records: Vec<FailureRecord>, inv: &Invocation) -> Reply {
        let mut kept_in_queue = Vec::new();
        let mut first_error = None;
        let (mut ended, mut left) = (0usize, 0usize);
        let mut other_events = Vec::new();
        for record in &records {
            let keep = match self.end_by_record(record, inv).await {
                Ok(RecordOutcome::Ended(wrote)) => {
                    ended += usize::from(wrote);
                    false
                }
                Ok(RecordOutcome::OtherEvent) => {
                    left += 1;
                    other_events.push(record.sqs_message_id.as_deref().unwrap_or(record.request_id.as_str()));
                    true
                }
                Ok(RecordOutcome::NotOurs) => {
                    left += 1;
                    true
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    true
                }
            };
            if let (true, Some(m)) = (keep, &record.sqs_message_id) {
                kept_in_queue.push(json!({"itemIdentifier": m}));
            }
        }
        if !other_events.is_empty() {
            // Once for the batch, at WARN: a record of another event is not
            // this function's error (its own handler already failed, and
            // logged it), and is kept for the dead-letter queue.
            tracing::warn!(
                messages = ?other_events,
                "{} failure record(s) of events that are not task messages: left in the failure queue for its dead-letter queue",
                other_events.len(),
            );
        }
        let through_sqs = records.iter().any(|r| r.sqs_message_id.is_some());
        match first_error {
            Some(e) if !through_sqs => Reply::Error { error_type: error_type::STORE, message: e.to_string() },
            _ => Reply::Success(json!({"failure_records": records.len(), "ended": ended, "left": left, "batchItemFailures": kept_in_queue})),
        }
    }

    /// One record: whether it ended its call (`Ended(false)`: there was
    /// nothing to end: already terminal, not captured, not verified), or is
    /// not a record this worker can end a call with.
    pub(super) async fn end_by_record(&self, record: &FailureRecord, inv: &Invocation) -> Result<RecordOutcome, crate::error::StoreError> {
        let Some(payload) = record.request_payload.as_ref() else {
            // Lambda left the request out (request and response were over the
            // destination's limit): the call cannot be named. It reads stale
            // once Lambda can no longer run it (store::give_up_ms).
            tracing::error!(
                request_id = %record.request_id, condition = %record.condition,
                "a failure record without its requestPayload (too large for the destination): its call cannot be named and reads stale once its event's life is over",
            );
            return Ok(RecordOutcome::NotOurs);
        };
        let (id, task, capture, group, parent) = match Incoming::classify(payload) {
            Incoming::Task(env) => {
                if let Some(key) = &self.settings.signing_key
                    && let Err(why) = env.verify(key)
                    && !crate::schedules::is_registered_run(&env)
                {
                    // Only the caller's own message can end its call, as `refused`.
                    let span = task_span(&env.task, &env.id, inv);
                    let reply = self.refuse_unverified(&env, why).instrument(span).await;
                    return Ok(RecordOutcome::Ended(matches!(reply, Reply::Success(_))));
                }
                (env.id, env.task, env.capture, env.group, env.parent)
            }
            Incoming::Bad(EnvelopeError { id: Some(id), task, .. }) if self.settings.signing_key.is_none() => {
                (id, task.unwrap_or_default(), true, None, None)
            }
            Incoming::Bad(_) => {
                tracing::error!(request_id = %record.request_id, "ignoring a failure record whose task message cannot be read or verified");
                return Ok(RecordOutcome::Ended(false));
            }
            _ => return Ok(RecordOutcome::OtherEvent),
        };
        let span = task_span(&task, &id, inv);
        let failure = record.failure();
        let Some(store) = self.store.as_ref().filter(|_| capture) else {
            span.in_scope(|| tracing::error!(kind = %failure.kind, "call not captured, so nothing to end: {}", failure.message));
            return Ok(RecordOutcome::Ended(false));
        };
        let now = now_ms();
        let item = self.ended_item(id, task, now, parent);
        let message = payload.to_string();
        let ended = store.fail_unfinished(item, failure.clone(), Some(&message)).instrument(span.clone()).await;
        span.in_scope(|| match &ended {
            Ok(true) => tracing::error!(kind = %failure.kind, "ended by Lambda's failure record: {}", failure.message),
            Ok(false) => tracing::info!(condition = %record.condition, "failure record for a call that had already ended: left as it is"),
            Err(e) => tracing::error!("could not end the call from its failure record: {e}"),
        });
        let ended = ended?;
        if let Some(child) = &group {
            // Ended here, or before by a path that may have died before it counted: count it now.
            let status = match ended {
                true => Some(Status::Failed),
                false => store.get(&child.child_id()).await?.map(|r| r.status),
            };
            let after = After { group: Some(child.clone()), ..After::default() };
            if let Some(Reply::Error { message, .. }) = self.follow_up(store.as_ref(), &after, status.unwrap_or(Status::Running), None).instrument(span).await {
                return Err(crate::error::StoreError::Backend { operation: "count_ended", table: "the response store".into(), message });
            }
        }
        Ok(RecordOutcome::Ended(ended))
    }
}

/// What one failure record came to.
pub(super) enum RecordOutcome {
    /// A task record: `true` when it ended its call.
    Ended(bool),
    /// A task's record the worker cannot end a call with (no payload):
    /// left to the queue's DLQ.
    NotOurs,
    /// A record of an event that is not a task message: left to the
    /// queue's DLQ, and logged once for its batch.
    OtherEvent,
}
