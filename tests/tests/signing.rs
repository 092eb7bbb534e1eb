//! Signed messages end to end, under task-local and DynamoDB Local, through
//! the caller's own dispatch path: a worker that cannot verify the caller's
//! genuine message (a key rotation not yet everywhere) ends the call
//! `refused` through `DynamoStore::refuse_pending`, matched by the digest the
//! caller stored; a forgery of the same id cannot; and with signing on, a
//! run of a schedule (unsigned by design) that crashed is still ended by its
//! failure record.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use common::task_local::{self, TaskLocal};
use serde_json::{Value, json};
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::envelope::Envelope;
use task_runtime::store::{PendingItem, ResponseStore};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{AsyncResponse, Config, FailureKind, SendOptions, Status, get_async_response, send};

/// task-local serving the tests' worker with signing key `key`, over a new table.
async fn serve(key: &str) -> (TaskLocal, String) {
    let table = common::table_name("signing");
    DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
    let args = vec![
        "--no-schedules".to_owned(),
        "--function".into(),
        format!("fault={}", task_local::built("fault-worker").display()),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
        // A worker faster than the caller's pending write finds nothing to
        // refuse yet and answers TaskRefused: Lambda's retry (soon, here) ends it.
        "--retry-delays".into(),
        "200ms,200ms".into(),
        "--env".into(),
        format!("TASK_SIGNING_KEY={key}"),
    ];
    let tl = tokio::task::spawn_blocking(move || TaskLocal::start(args)).await.expect("start");
    (tl, table)
}

async fn setup() -> (TaskLocal, String) {
    // The worker still has the old key.
    let (tl, table) = serve("old-key").await;
    let mut config = Config::lambda("fault", None)
        .with_store(Arc::new(DynamoStore::with_client(common::dynamodb(), table.clone())))
        .with_invoker(LambdaInvoker::with_client(tl.client()));
    // The caller has the new one.
    config.signing_key = Some(Arc::from(b"new-key".as_slice()));
    config.install().expect("install once");
    (tl, table)
}

async fn finished(tl: &TaskLocal, id: &str) -> AsyncResponse {
    let started = Instant::now();
    loop {
        if let Some(r) = get_async_response(id).await.expect("read").filter(|r| r.status.is_finished()) {
            return r;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{id} did not end:\n{}", tl.tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_messages_under_a_key_rotation_and_a_crashed_scheduled_run() {
    let (tl, table) = setup().await;
    let store = DynamoStore::with_client(common::dynamodb(), table);

    // 1. The caller's genuine message, which this worker cannot verify: refused, and visible.
    let h = send("fault.ok", json!({"n": 1}), SendOptions::default()).await.expect("send");
    let r = finished(&tl, h.id()).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 0), "{r:?}");
    let e = r.error.expect("error");
    assert_eq!(e.kind, FailureKind::Refused);
    assert!(e.message.contains("TASK_SIGNING_KEY"), "{}", e.message);

    // 2. A forgery under the id of a pending call cannot end it.
    let mut genuine = Envelope::new("fault.ok", json!({"n": 2}).as_object().cloned().unwrap_or_default(), true, 2);
    genuine.sign(b"new-key");
    let now = common::now_ms();
    let item = PendingItem { id: genuine.id.clone(), task: genuine.task.clone(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: Some(genuine.digest()), parent: None };
    assert!(store.put_pending(item).await.expect("put"));
    let mut forged = genuine.clone();
    forged.args.insert("n".into(), json!(666));
    forged.sign(b"a guess");
    let out = tl.client().invoke().function_name("fault").payload(Blob::new(forged.to_payload().expect("small"))).send().await.expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"), "refused, and told to Lambda");
    assert_eq!(store.get(&genuine.id).await.expect("read").map(|r| r.status), Some(Status::Pending));

    // 3. With signing on, a schedule's run (unsigned: its message is in the
    //    template) that crashed is ended by Lambda's failure record.
    let manifest: Value = {
        let out = std::process::Command::new(task_local::built("fault-worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest");
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let input = manifest["schedules"][0]["input"].as_str().expect("fault.tick's message").replace("<aws.scheduler.scheduled-time>", "2026-11-30T10:00:00Z");
    let record = json!({
        "version": "1.0", "timestamp": "2026-11-30T10:00:05.000Z",
        "requestContext": {"requestId": "r-tick", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:fault:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": serde_json::from_str::<Value>(&input).expect("JSON"),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"},
    });
    let out = tl.client().invoke().function_name("fault").payload(Blob::new(record.to_string())).send().await.expect("invoke");
    assert_eq!(out.function_error(), None);
    let r = store.get("schedule:fault.tick:2026-11-30T10:00:00Z").await.expect("read").expect("ended by its record");
    assert_eq!((r.status, r.error.map(|e| e.kind)), (Status::Failed, Some(FailureKind::Crashed)));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_signing_on_a_schedule_s_own_message_runs_unsigned_and_an_altered_one_does_not() {
    let (tl, _) = serve("any-key").await;
    let manifest: Value = {
        let out = std::process::Command::new(task_local::built("fault-worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest");
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let input = manifest["schedules"][0]["input"].as_str().expect("fault.tick's message").replace("<aws.scheduler.scheduled-time>", "2026-11-30T11:00:00Z");
    // As the template holds it: unsigned, and it runs.
    let out = tl.client().invoke().function_name("fault").payload(Blob::new(input.clone())).send().await.expect("invoke");
    let body: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
    assert_eq!((out.function_error(), body["status"].as_str()), (None, Some("complete")), "{body}");
    // The same message under another task name: not a schedule of this binary, refused.
    let mut altered: Value = serde_json::from_str(&input).expect("JSON");
    altered["task"] = json!("fault.ok");
    altered["schedule"] = json!("fault.ok");
    altered["id"] = json!("schedule:fault.ok:2026-11-30T11:00:00Z");
    altered["args"] = json!({"n": 1});
    let out = tl.client().invoke().function_name("fault").payload(Blob::new(altered.to_string())).send().await.expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"), "refused: TaskRefused");
}
