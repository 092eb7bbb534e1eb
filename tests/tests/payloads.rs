//! Arguments, results and failure messages of any size, through S3
//! (`TASK_PAYLOAD_BUCKET`), end to end: this process sends through the
//! lambda backend to the fault worker under task-local (which refuses an
//! Event invoke over 1 MB, as Lambda does), the store is DynamoDB Local
//! (which refuses an item over 400 KB), and the bucket is moto's S3, an
//! implementation nobody here wrote. Each value comes back equal; each
//! object is where its reference says, with its hash; and a message whose
//! object is changed, gone, too large or in no bucket ends its call failed
//! `bad_payload`, naming the object, while the worker goes on serving.

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::moto::Moto;
use common::task_local::{self, TaskLocal};
use serde_json::{Value, json};
use sha2::Digest;
use task_runtime::envelope::{Envelope, PayloadRef};
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{FailureKind, SendOptions, Status, WaitError, call, group, send};

const BUCKET: &str = "fault-payloads";
const LIMIT: Duration = Duration::from_secs(120);

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every object under call `id`'s prefix, with its bytes.
async fn objects(s3: &aws_sdk_s3::Client, id: &str) -> Vec<(String, Vec<u8>)> {
    let listed = s3.list_objects_v2().bucket(BUCKET).prefix(format!("payloads/{id}/")).send().await.expect("list");
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().expect("key").to_owned();
        let got = s3.get_object().bucket(BUCKET).key(&key).send().await.expect("get");
        out.push((key, got.body.collect().await.expect("body").into_bytes().to_vec()));
    }
    out
}

/// Each object is named by its hash (`payloads/ID/WHAT-<first 32 hex of its SHA-256>`).
fn assert_named_by_hash(found: &[(String, Vec<u8>)]) {
    for (key, bytes) in found {
        let hash = key.rsplit('-').next().expect("hash in the name");
        assert!(sha256(bytes).starts_with(hash), "{key}: its bytes hash to {}", sha256(bytes));
    }
}

/// Send `env` to `fault` as Lambda's Event invoke, as a caller would.
async fn invoke(lambda: &aws_sdk_lambda::Client, env: &Envelope) {
    let payload = serde_json::to_vec(env).expect("json");
    let out = lambda
        .invoke()
        .function_name("fault")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 202);
}

/// Wait for call `id` to end and give its failure.
async fn failure_of(id: &str) -> task_runtime::Failure {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(r) = task_runtime::get_async_response(id).await.expect("read")
            && r.status.is_finished()
        {
            assert_eq!(r.status, Status::Failed, "{id}: {r:?}");
            return r.error.expect("a failure");
        }
        assert!(std::time::Instant::now() < deadline, "{id} did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn values_of_any_size_go_through_s3_and_come_back_equal_and_a_bad_object_fails_its_call() {
    let moto = Moto::start();
    let table = common::table_name("payloads");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto_sdk = common::sdk_config(&moto.endpoint);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&moto_sdk).force_path_style(true).build());
    rt.block_on(async {
        DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
        s3.create_bucket().bucket(BUCKET).send().await.expect("bucket");
    });
    let mut args = task_local::fault_function(&table);
    for e in [format!("TASK_PAYLOAD_BUCKET={BUCKET}"), format!("AWS_ENDPOINT_URL_S3={}", moto.endpoint)] {
        args.extend(["--env".to_owned(), e]);
    }
    let tl = TaskLocal::start(args);
    // This process: the lambda backend to task-local, the table, and S3 at moto.
    let mut config = common::lambda_config(&tl.endpoint, "fault", &table).with_payload_bucket(BUCKET);
    config.aws = Some(moto_sdk.clone());
    config.install().expect("install once");
    let lambda = aws_sdk_lambda::Client::new(&common::sdk_config(&tl.endpoint));

    rt.block_on(async {
        // A 5 MB argument, sent back as a 5 MB result.
        let blob: String = (0..5_000_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let h = send("fault.echo", json!({"blob": blob}), SendOptions::default()).await.expect("a 5 MB argument is sent");
        let back: Value = h.wait_timeout(LIMIT).await.expect("echoed");
        assert_eq!(back.as_str().map(str::len), Some(blob.len()));
        assert!(back.as_str() == Some(blob.as_str()), "the argument came back changed");
        let found = objects(&s3, h.id()).await;
        let kinds: Vec<&str> = found.iter().map(|(k, _)| k.rsplit('/').next().and_then(|n| n.split('-').next()).unwrap_or("")).collect();
        assert_eq!(kinds.len(), 2, "its arguments and its result: {kinds:?}");
        assert!(kinds.contains(&"args") && kinds.contains(&"result"), "{kinds:?}");
        assert_named_by_hash(&found);
        let args = found.iter().find(|(k, _)| k.contains("/args-")).map(|(_, b)| b.clone()).expect("args");
        assert_eq!(serde_json::from_slice::<Value>(&args).expect("json")["blob"].as_str().map(str::len), Some(5_000_000));

        // A 20 MB result.
        let h = send("fault.bulk", json!({"bytes": 20_000_000}), SendOptions::default()).await.expect("sent");
        let back: Value = h.wait_timeout(LIMIT).await.expect("a 20 MB result");
        assert!(back.as_str().is_some_and(|s| s.len() == 20_000_000 && s.bytes().all(|b| b == b'r')));
        let found = objects(&s3, h.id()).await;
        assert_eq!(found.len(), 1, "the result only: the message was small");
        assert_named_by_hash(&found);
        let big = h.id().to_owned();

        // A 2 MB error message, whole.
        let h = send("fault.loud", json!({"bytes": 2_000_000}), SendOptions::default()).await.expect("sent");
        match h.wait_timeout(LIMIT).await {
            Err(WaitError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Failed);
                assert!(failure.message.len() >= 2_000_000 && failure.message.contains(&"e".repeat(2_000_000)), "{} bytes", failure.message.len());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(objects(&s3, h.id()).await.len(), 1, "the message in one object");
        let loud = h.id().to_owned();

        // The CLI reads through it too: `tasks wait` gives the 20 MB value,
        // `tasks status` the whole message, `tasks failed` its size and place.
        let tasks = |args: &[&str]| {
            let mut cmd = std::process::Command::new(task_local::built("tasks"));
            task_local::user_env(cmd.args(args), &tl.endpoint, &table).env("AWS_ENDPOINT_URL_S3", &moto.endpoint);
            let out = cmd.output().expect("run tasks");
            (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let (code, out, err) = tasks(&["wait", "--json", &big]);
        assert_eq!(code, 0, "{err}");
        let read: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(read[0]["response"].as_str().map(str::len), Some(20_000_000), "{err}");
        let (code, out, err) = tasks(&["status", &loud]);
        assert_eq!(code, 1, "{err}");
        assert!(out.contains(&"e".repeat(2_000_000)), "{} bytes: {err}", out.len());
        let (code, out, err) = tasks(&["failed", "--since", "1h"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("(2000000 bytes, kept in s3://{BUCKET}/payloads/")), "{out}");
        let (code, out, err) = tasks(&["failed", "--since", "1h", "--json"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("(2000000 bytes, kept in s3://{BUCKET}/payloads/{loud}/error-")) && out.len() < 100_000, "{out}");

        // A chord whose ten children each return 1 MB: the callback reads them all.
        let calls: Vec<_> = (0..10).map(|_| call("fault.bulk", json!({"bytes": 1_000_000}))).collect();
        let chord = group(calls).then(call("fault.lengths", json!({}))).send().await.expect("sent");
        let total: Value = chord.wait_timeout(LIMIT).await.expect("the callback ran");
        assert_eq!(total, json!(10_000_000));
        let children: Vec<Result<String, _>> = task_runtime::GroupHandle::<String>::from_id(chord.group().id()).wait().await.expect("children");
        assert!(children.iter().all(|c| c.as_ref().is_ok_and(|s| s.len() == 1_000_000)));

        // Objects that are not what the message says: each call fails, naming it.
        let put = |key: &str, bytes: Vec<u8>| s3.put_object().bucket(BUCKET).key(key).body(ByteStream::from(bytes)).send();
        let args = serde_json::to_vec(&json!({"blob": "the arguments as sent"})).expect("json");
        let message = |key: &str, bucket: &str, size: u64| {
            let mut env = Envelope::new("fault.echo", Default::default(), true, 0);
            env.args_ref = Some(PayloadRef { bucket: bucket.into(), key: key.into(), size, sha256: sha256(&args) });
            env
        };
        // Changed after it was written.
        // (The same size, so that only its hash tells.)
        let altered = String::from_utf8(args.clone()).expect("utf8").replace("as sent", "AS SENT").into_bytes();
        assert_eq!(altered.len(), args.len());
        put("payloads/changed/args", altered).await.expect("put");
        let changed = message("payloads/changed/args", BUCKET, args.len() as u64);
        // Deleted.
        let deleted = message("payloads/deleted/args", BUCKET, args.len() as u64);
        // Over TASK_PAYLOAD_MAX (100 MiB by default): not read at all.
        put("payloads/huge/args", args.clone()).await.expect("put");
        let huge = message("payloads/huge/args", BUCKET, 200 << 20);
        // In no bucket.
        let nowhere = message("payloads/nowhere/args", "no-such-bucket", args.len() as u64);
        for env in [&changed, &deleted, &huge, &nowhere] {
            invoke(&lambda, env).await;
        }
        for (env, says) in [(&changed, "was changed after it was written"), (&deleted, "NoSuchKey"), (&huge, "over TASK_PAYLOAD_MAX"), (&nowhere, "NoSuchBucket")] {
            let failure = failure_of(&env.id).await;
            let object = env.args_ref.as_ref().map(ToString::to_string).expect("ref");
            assert_eq!(failure.kind, FailureKind::BadPayload, "{failure}");
            assert!(failure.message.contains(&object) && failure.message.contains(says), "{object}: {failure}");
        }
        // The worker is up: the next call runs.
        let h = send("fault.echo", json!({"blob": "still here"}), SendOptions::default()).await.expect("sent");
        assert_eq!(h.wait_timeout(LIMIT).await.expect("ran"), json!("still here"));

        // The caller's side: a bucket that is not there is named, and nothing is sent.
        let missing = task_runtime::store::payloads::Payloads::new(Some("no-such-bucket".into()), 1 << 20, Some(moto_sdk.clone()));
        let e = missing.put("x", "args", b"{}".to_vec()).await.expect_err("no bucket");
        assert!(e.to_string().contains("s3://no-such-bucket/payloads/x/args-") && e.to_string().contains("NoSuchBucket"), "{e}");
        let e = missing.put("x", "args", vec![b' '; 2 << 20]).await.expect_err("too large");
        assert!(e.to_string().contains("over TASK_PAYLOAD_MAX (1048576 bytes)"), "{e}");
    });
    drop(tl);
    drop(moto);
}
