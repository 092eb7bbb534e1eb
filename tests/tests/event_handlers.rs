//! `#[on_event]` handlers, driven through the worker with realistic samples
//! of each event: SQS, SNS, EventBridge and DynamoDB Streams reach their
//! typed handlers; an event no handler takes is left to the function's own
//! handler; errors are told to Lambda as the task rules say.

mod common;

use serde_json::{Value, json};
use task_runtime::aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use task_runtime::aws_lambda_events::event::eventbridge::EventBridgeEvent;
use task_runtime::aws_lambda_events::event::sns::SnsEvent;
use task_runtime::aws_lambda_events::event::sqs::SqsEvent;
use task_runtime::worker::{Invocation, Worker};
use task_runtime::{Reply, TaskError, TaskResult, on_event};

#[on_event]
async fn orders(event: SqsEvent) -> TaskResult<Vec<String>> {
    let bodies: Vec<String> = event.records.into_iter().filter_map(|r| r.body).collect();
    if bodies.iter().any(|b| b == "retry me") {
        return Err(TaskError::retry("the shop is closed"));
    }
    if bodies.iter().any(|b| b == "drop me") {
        return Err(TaskError::fail("not an order"));
    }
    Ok(bodies)
}

#[on_event]
async fn alerts(event: SnsEvent) -> Vec<String> {
    event.records.into_iter().map(|r| r.sns.message).collect()
}

#[on_event]
async fn placed(event: EventBridgeEvent) -> String {
    format!("{} from {}", event.detail_type, event.source)
}

#[on_event]
async fn changes(event: DynamoDbEvent) -> usize {
    event.records.len()
}

fn worker() -> Worker {
    common::memory_worker(None).0
}

fn inv() -> Invocation {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Invocation { request_id: "req".into(), deadline_ms: now + 5_000, attempt: None }
}

fn sqs(body: &str) -> Value {
    json!({"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183", "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                       "ApproximateFirstReceiveTimestamp": "1545082649185"},
        "messageAttributes": {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue", "awsRegion": "us-east-2",
    }]})
}

async fn handle(event: Value) -> Option<Reply> {
    worker().handle_event(&event, &inv()).await
}

#[tokio::test]
async fn each_kind_of_event_reaches_its_typed_handler() {
    assert_eq!(handle(sqs("order 7")).await, Some(Reply::Success(json!(["order 7"]))));
    let sns = json!({"Records": [{
        "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:alerts:2bcfbf39", "EventSource": "aws:sns",
        "Sns": {"SignatureVersion": "1", "Timestamp": "2019-01-02T12:45:07.000Z", "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "Message": "disk full", "MessageAttributes": {}, "Type": "Notification",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/unsubscribe", "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
                "Subject": "alert"},
    }]});
    assert_eq!(handle(sns).await, Some(Reply::Success(json!(["disk full"]))));
    let bridge = json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Order Placed", "source": "my.shop",
                        "account": "123456789012", "time": "2026-11-27T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {"order": 7}});
    assert_eq!(handle(bridge).await, Some(Reply::Success(json!("Order Placed from my.shop"))));
    let stream = json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.0", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"Id": {"N": "101"}}, "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                     "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2015-06-27T00:48:05.899",
    }]});
    assert_eq!(handle(stream).await, Some(Reply::Success(json!(1))));
}

#[tokio::test]
async fn an_event_no_handler_takes_is_left_to_the_function_s_own_handler() {
    let s3 = json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
    assert_eq!(handle(s3).await, None);
    assert_eq!(handle(json!({"name": "ann"})).await, None);
}

#[tokio::test]
async fn handler_errors_follow_the_task_rules() {
    match handle(sqs("retry me")).await {
        Some(Reply::Error { error_type, message }) => assert_eq!((error_type, message.as_str()), ("EventHandlerError", "the shop is closed")),
        other => panic!("{other:?}"),
    }
    match handle(sqs("drop me")).await {
        Some(Reply::Success(v)) => assert_eq!(v, json!({"handled": false, "error": "not an order"})),
        other => panic!("{other:?}"),
    }
    let broken = json!({"Records": [{"eventSource": "aws:sqs", "body": 7}]});
    match handle(broken).await {
        Some(Reply::Error { error_type, message }) => {
            assert_eq!(error_type, "InvalidEvent");
            assert!(message.contains("event_handlers::orders") && message.contains("does not decode"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
