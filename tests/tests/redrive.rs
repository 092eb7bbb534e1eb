//! `tasks redrive` against moto's SQS (an implementation nobody here
//! wrote): a dead-letter queue holding AWS's own sample invocation record,
//! the record of a task's call and a message that is no record at all; a
//! dry run shows them and leaves them; the redrive sends each back to the
//! queue whose redrive policy names the dead-letter queue, byte for byte,
//! and empties it; a second finds nothing.

mod common;

use std::collections::BTreeSet;

use common::moto::Moto;

fn fixture() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/aws/lambda-invocation-record.json")).expect("AWS's sample record")
}

async fn bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).visibility_timeout(30).send().await.expect("receive");
        if out.messages().is_empty() {
            return all;
        }
        all.extend(out.messages().iter().filter_map(|m| m.body().map(ToOwned::to_owned)));
    }
}

/// The messages `url` holds, visible or in flight.
async fn held(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(A::ApproximateNumberOfMessages).attribute_names(A::ApproximateNumberOfMessagesNotVisible).send().await.expect("attributes");
    let a = out.attributes().expect("attributes");
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible].iter().map(|k| a.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)).sum()
}

#[test]
fn redrive_sends_each_dead_letter_back_to_its_source_queue_and_says_what_it_was() {
    let moto = Moto::start();
    let sdk = common::sdk_config(&moto.endpoint);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dir = std::env::temp_dir();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("TASK_RESPONSE_TABLE", ""),
        ("TASK_FUNCTION", ""),
    ];
    let task_record = serde_json::json!({
        "version": "1.0",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"task_runtime": 1, "task": "worker::bake", "id": "call-42", "args": {}},
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"},
    })
    .to_string();
    let sent: BTreeSet<String> = [fixture(), task_record, "not a record".to_owned()].into();
    common::block_on(async {
        let dlq = sqs.create_queue().queue_name("failed-dlq").send().await.expect("dlq").queue_url().expect("url").to_owned();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("the dlq's ARN");
        let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": 3}).to_string();
        let failed = sqs
            .create_queue()
            .queue_name("failed")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, policy)
            .send()
            .await
            .expect("failed queue")
            .queue_url()
            .expect("url")
            .to_owned();
        for body in &sent {
            sqs.send_message().queue_url(&dlq).message_body(body).send().await.expect("a dead letter");
        }

        let (code, out, err) = common::workspace::tasks(&dir, &["redrive", "failed-dlq", "--dry-run"], &env);
        assert_eq!(code, 0, "{out}{err}");
        for says in ["the record of call call-42 (task worker::bake, RetriesExhausted, last error Runtime.ExitError)", "the record of another event of the function", "not JSON (12 bytes)", "none sent back (--dry-run)"] {
            assert!(out.contains(says), "{says:?} not in:\n{out}");
        }
        assert_eq!(bodies(&sqs, &failed).await.len(), 0, "a dry run sends nothing");

        // The dry run's messages are visible again at once; the redrive finds the source queue itself.
        let (code, out, err) = common::workspace::tasks(&dir, &["redrive", &dlq], &env);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("3 of 3 message(s) sent back from {dlq} to {failed}")), "{out}");
        assert_eq!(bodies(&sqs, &failed).await, sent, "every message, byte for byte, in the failure queue");
        assert!(!out.contains("still in the dead-letter queue"), "{out}");
        assert_eq!(held(&sqs, &dlq).await, 0, "the dead-letter queue holds none, in flight or not");
        let (code, out, _) = common::workspace::tasks(&dir, &["redrive", &dlq], &env);
        assert_eq!(code, 0);
        assert!(out.contains("no messages in"), "the dead-letter queue is empty: {out}");

        let (code, _, err) = common::workspace::tasks(&dir, &["redrive", "no-such-queue"], &env);
        assert_eq!(code, 2);
        assert!(err.contains("no queue `no-such-queue`"), "{err}");
    });
}
