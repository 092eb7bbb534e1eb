//! AWS's own sample events (`tests/fixtures/aws/`, each with its source
//! named in the README there), fed to the worker as they are: each reaches
//! the handler AWS's shape says it should, the failure record of the Lambda
//! Developer Guide is read as Lambda writes it, and no SQS batch that holds
//! a task's record fails because of what else it holds.

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use task_runtime::aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use task_runtime::aws_lambda_events::event::eventbridge::EventBridgeEvent;
use task_runtime::aws_lambda_events::event::s3::S3Event;
use task_runtime::aws_lambda_events::event::sns::SnsEvent;
use task_runtime::aws_lambda_events::event::sqs::SqsEvent;
use task_runtime::envelope::Envelope;
use task_runtime::envelope::aws_event::EventKind;
use task_runtime::store::ResponseStore;
use task_runtime::worker::Worker;
use task_runtime::{FailureKind, Reply, Status, on_event, task};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/aws");

/// Every fixture this file uses; a file in the folder that is not here fails the suite.
const USED: [&str; 10] = [
    "lambda-invocation-record.json",
    "example-s3-event.json",
    "example-sqs-event.json",
    "example-sns-event.json",
    "example-eventbridge-event-obj.json",
    "example-eventbridge-schedule.json",
    "example-dynamodb-event.json",
    "example-apigw-request.json",
    "example-apigw-v2-request-no-authorizer.json",
    "example-alb-lambda-target-request-headers-only.json",
];

fn fixture(name: &str) -> Value {
    assert!(USED.contains(&name), "{name} is not listed in USED");
    let text = std::fs::read_to_string(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

#[on_event]
async fn uploads(event: S3Event) -> Vec<String> {
    event.records.into_iter().filter_map(|r| r.s3.object.key).map(|k| task_runtime::decode_s3_key(&k)).collect()
}

#[on_event]
async fn queue(event: SqsEvent) -> usize {
    event.records.len()
}

#[on_event]
async fn topic(event: SnsEvent) -> Vec<String> {
    event.records.into_iter().map(|r| r.sns.message).collect()
}

#[on_event]
async fn bus(event: EventBridgeEvent) -> String {
    format!("{} from {}", event.detail_type, event.source)
}

#[on_event]
async fn stream(event: DynamoDbEvent) -> usize {
    event.records.len()
}

#[task(name = "conformance.noop")]
async fn noop() {}

fn worker() -> (Worker, std::sync::Arc<task_runtime::store::memory::MemoryStore>) {
    common::memory_worker(None)
}

fn inv() -> task_runtime::worker::Invocation {
    common::invocation()
}

async fn answer(w: &Worker, event: &Value) -> Value {
    match w.handle_event(event, &inv()).await {
        Some(Reply::Success(v)) => v,
        other => panic!("{other:?} for {event}"),
    }
}

#[test]
fn every_fixture_in_the_folder_is_used() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .expect("tests/fixtures/aws")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let used: BTreeSet<String> = USED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(on_disk, used);
}

#[tokio::test]
async fn each_sample_event_reaches_the_handler_its_shape_names() {
    let (w, _) = worker();
    // S3 sends keys URL-encoded: AWS's own sample has `Happy%20Face.jpg`.
    assert_eq!(answer(&w, &fixture("example-s3-event.json")).await, json!(["Happy Face.jpg"]));
    assert_eq!(answer(&w, &fixture("example-sqs-event.json")).await, json!(1));
    let sns = answer(&w, &fixture("example-sns-event.json")).await;
    assert_eq!(sns.as_array().map(Vec::len), Some(1), "{sns}");
    assert_eq!(answer(&w, &fixture("example-eventbridge-schedule.json")).await, json!("Scheduled Event from aws.events"));
    let obj = answer(&w, &fixture("example-eventbridge-event-obj.json")).await;
    assert!(obj.as_str().is_some_and(|s| s.contains(" from ")), "{obj}");
    assert_eq!(answer(&w, &fixture("example-dynamodb-event.json")).await, json!(2));
    // HTTP events are the web app's: no #[on_event] kind, not a task.
    for http in ["example-apigw-request.json", "example-apigw-v2-request-no-authorizer.json", "example-alb-lambda-target-request-headers-only.json"] {
        let event = fixture(http);
        assert_eq!(EventKind::of(&event), None, "{http}");
        assert!(w.handle_event(&event, &inv()).await.is_none(), "{http} is left to the function's handler");
    }
}

#[tokio::test]
async fn the_developer_guide_s_failure_record_is_read_as_lambda_writes_it() {
    let (w, store) = worker();
    let record = fixture("lambda-invocation-record.json");
    // Its request (ORDER_IDS) is not a task message: sent directly, the record is the function's handler's.
    assert!(w.handle_event(&record, &inv()).await.is_none());
    // The same record of a task message ends the call: the last attempt had
    // no errorType ("Process exited before completing request"), so it crashed.
    let call = Envelope::new(noop::NAME, Default::default(), true, 2);
    let mut ours = record.clone();
    ours["requestPayload"] = serde_json::to_value(&call).expect("JSON");
    let v = answer(&w, &ours).await;
    assert_eq!(v["ended"], 1, "{v}");
    let r = store.get(&call.id).await.expect("read").expect("ended");
    let e = r.error.expect("error");
    assert_eq!((r.status, e.kind), (Status::Failed, FailureKind::Crashed));
    assert!(e.message.contains("3 attempt(s)") && e.message.contains("Process exited before completing request"), "{}", e.message);

    // Through the failure queue, beside the sample's record of another event:
    // the task's record ends its call, the other is left for the dead-letter queue.
    let second = Envelope::new(noop::NAME, Default::default(), true, 2);
    let mut ours = record.clone();
    ours["requestPayload"] = serde_json::to_value(&second).expect("JSON");
    let sqs = fixture("example-sqs-event.json");
    let message = |id: &str, body: &Value| {
        let mut m = sqs["Records"][0].clone();
        m["messageId"] = json!(id);
        m["body"] = json!(body.to_string());
        m
    };
    let batch = json!({"Records": [message("orders", &record), message("task", &ours)]});
    let v = answer(&w, &batch).await;
    assert_eq!(v["batchItemFailures"], json!([{"itemIdentifier": "orders"}]), "{v}");
    assert_eq!(store.get(&second.id).await.expect("read").map(|r| r.status), Some(Status::Failed));

    // An SQS batch of ordinary messages with a task record in it is not a failure queue's: the handler's.
    let mut mixed = sqs.clone();
    if let Some(records) = mixed["Records"].as_array_mut() {
        records.push(message("task", &ours));
    }
    assert_eq!(answer(&w, &mixed).await, json!(2), "the SQS handler took both");
}
