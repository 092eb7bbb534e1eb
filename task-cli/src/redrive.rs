//! `tasks redrive DEAD_LETTER_QUEUE`: the failure records the worker could
//! not handle (moved to the dead-letter queue after three receives) sent
//! back through the failure queue, each shown as what it was (a task's
//! call, another event's record, something else) and what became of it.
//!
//! A message is sent to the failure queue first and deleted from the
//! dead-letter queue after, so none is lost: a stop between the two leaves
//! it in both, and the worker ends a call once whatever its records say.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>

use serde_json::Value;
use task_runtime::envelope::failure_record::FailureRecord;

use crate::cli::RedriveArgs;
use crate::deployed::sdk_error;
use crate::progress::Progress;
use crate::render::table;
use crate::{Exit, Problem};

/// How long a message received here stays hidden from other readers.
const HIDDEN_S: i32 = 60;

/// A queue's URL from its URL, ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`) or name.
async fn queue_url(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<String, Problem> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        return Ok(queue.to_owned());
    }
    let name = queue.rsplit(':').next().unwrap_or(queue);
    let out = sqs.get_queue_url().queue_name(name).send().await.map_err(|e| Problem(format!("no queue `{queue}`: {}", sdk_error(&e))))?;
    out.queue_url().map(ToOwned::to_owned).ok_or_else(|| Problem(format!("SQS gave no URL for queue `{queue}`")))
}

/// What a message of the dead-letter queue is, in words, and the call it
/// names (when it is the record of a task's call).
pub(crate) fn describe(body: &str) -> (String, Option<String>) {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return (format!("not JSON ({} bytes): not a failure record", body.len()), None);
    };
    let Some(record) = FailureRecord::any(&value) else {
        return ("JSON that is not a failure record (no requestContext.condition)".to_owned(), None);
    };
    let last = record.last_error.as_ref().map(|e| format!(", last error {}", e.error_type)).unwrap_or_default();
    match &record.request_payload {
        None => (format!("a record without its payload ({}{last}): it names no call", record.condition), None),
        Some(p) if record.is_task() => {
            let (task, id) = (p["task"].as_str().unwrap_or("?"), p["id"].as_str().unwrap_or("?"));
            (format!("the record of call {id} (task {task}, {}{last})", record.condition), Some(id.to_owned()))
        }
        Some(_) => (format!("the record of another event of the function ({}{last}): its handler's", record.condition), None),
    }
}

pub(crate) async fn redrive(a: RedriveArgs) -> Result<Exit, Problem> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let from = queue_url(&sqs, &a.queue).await?;
    let to = match &a.to {
        Some(q) => queue_url(&sqs, q).await?,
        // The queue whose redrive policy names this one.
        None => {
            let sources = sqs.list_dead_letter_source_queues().queue_url(&from).send().await.map_err(|e| Problem(format!("cannot list the queues that dead-letter into {from}: {}", sdk_error(&e))))?;
            match sources.queue_urls() {
                [one] => one.clone(),
                [] => return Err(Problem(format!("no queue dead-letters into {from}: name the queue to send its messages to with --to"))),
                many => return Err(Problem(format!("{} queues dead-letter into {from} ({}): name one with --to", many.len(), many.join(", ")))),
            }
        }
    };
    // The store, when configured: what became of each record's call.
    let store = crate::setup::install(None).ok().and_then(|c| crate::setup::table(&c).ok());
    let mut progress = Progress::spinner();
    let (mut rows, mut moved, mut failed) = (Vec::new(), 0usize, 0usize);
    let mut held = Vec::new();
    while rows.len() < a.limit {
        let want = (a.limit - rows.len()).min(10) as i32;
        let got = sqs
            .receive_message()
            .queue_url(&from)
            .max_number_of_messages(want)
            .visibility_timeout(HIDDEN_S)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| Problem(format!("cannot receive from {from}: {}", sdk_error(&e))))?;
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let (body, receipt, id) = (m.body().unwrap_or_default(), m.receipt_handle().unwrap_or_default(), m.message_id().unwrap_or_default());
            let (what, call) = describe(body);
            let became = if a.dry_run {
                held.push(receipt.to_owned());
                "would be sent back".to_owned()
            } else {
                match sqs.send_message().queue_url(&to).message_body(body).send().await {
                    Err(e) => {
                        failed += 1;
                        format!("not sent back ({}): left in the dead-letter queue", sdk_error(&e))
                    }
                    Ok(sent) => {
                        moved += 1;
                        let deleted = sqs.delete_message().queue_url(&from).receipt_handle(receipt).send().await;
                        let mut text = format!("sent back as {}", sent.message_id().unwrap_or("?"));
                        if let Err(e) = deleted {
                            text.push_str(&format!(", but still in the dead-letter queue too ({}): the worker ends a call once", sdk_error(&e)));
                        }
                        text
                    }
                }
            };
            let now = match (&store, &call) {
                (Some(_), Some(call)) => match task_runtime::get_async_response(call).await {
                    Ok(Some(r)) => format!("; call {call} is {}", r.status),
                    Ok(None) => format!("; call {call} is unknown or expired"),
                    Err(e) => format!("; call {call} could not be read ({e})"),
                },
                _ => String::new(),
            };
            rows.push(vec![id.to_owned(), what, format!("{became}{now}")]);
            progress.update(rows.len() as u64, format!("{} message(s) read, {moved} sent back", rows.len()));
        }
    }
    progress.finish();
    // A dry run gives its messages back at once.
    for receipt in held {
        let _ = sqs.change_message_visibility().queue_url(&from).receipt_handle(receipt).visibility_timeout(0).send().await;
    }
    if rows.is_empty() {
        println!("no messages in {from}");
        return Ok(Exit::Complete);
    }
    print!("{}", table(&["MESSAGE", "WHAT IT IS", "WHAT BECAME OF IT"], &rows));
    if a.dry_run {
        println!("{} message(s) in {from}; none sent back (--dry-run)", rows.len());
    } else {
        println!("{moved} of {} message(s) sent back from {from} to {to}{}", rows.len(), if failed > 0 { format!("; {failed} left where they were") } else { String::new() });
    }
    Ok(if failed > 0 { Exit::Failed } else { Exit::Complete })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_named_for_what_it_is() {
        let record = |payload: Value| serde_json::json!({"requestContext": {"requestId": "r", "condition": "RetriesExhausted", "approximateInvokeCount": 3}, "requestPayload": payload, "responsePayload": {"errorType": "Runtime.ExitError"}}).to_string();
        let (what, call) = describe(&record(serde_json::json!({"task_runtime": 1, "task": "bake", "id": "42", "args": {}})));
        assert_eq!(call.as_deref(), Some("42"));
        assert!(what.contains("call 42 (task bake, RetriesExhausted, last error Runtime.ExitError)"), "{what}");
        assert!(describe(&record(serde_json::json!({"Records": []}))).0.contains("another event"));
        assert!(describe(&record(Value::Null)).0.contains("without its payload"));
        assert!(describe("{\"a\": 1}").0.contains("not a failure record"));
        assert!(describe("junk").0.contains("not JSON (4 bytes)"));
    }
}
