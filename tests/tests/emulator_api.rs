//! The emulator's own behaviour, each test with its own `task-local`:
//! invocation types, payload limits, throttling, the on-failure file,
//! maximum event age, the environment and headers a function sees, and
//! draining on SIGTERM. Functions are the real `examples/worker` binary, or
//! a small Python runtime that reports what it was given.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::task_local::{TaskLocal, built};
use serde_json::{Value, json};

fn worker() -> String {
    format!("worker={}", built("examples/worker").display())
}

/// Wait (at most `limit`) for `check` to hold.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn dry_run_answers_204_and_runs_nothing() {
    let tl = TaskLocal::start(["--function", &worker()]);
    let out = tl.client().invoke().function_name("worker").invocation_type(InvocationType::DryRun).send().await.expect("dry run");
    assert_eq!(out.status_code(), 204);
    assert_eq!(tl.stats().await["functions"]["worker"]["invocations"], 0);
}

#[tokio::test]
async fn payloads_over_the_limits_are_request_entity_too_large() {
    let tl = TaskLocal::start(["--function", &worker()]);
    let client = tl.client();
    let big_event = json!({"name": "x".repeat(1_048_577)}).to_string();
    let err = client
        .invoke()
        .function_name("worker")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(big_event))
        .send()
        .await
        .expect_err("over 1 MB");
    let se = err.as_service_error().expect("service error");
    assert!(se.is_request_too_large_exception() || format!("{se:?}").contains("RequestEntityTooLarge"), "{se:?}");
    let big_sync = json!({"name": "x".repeat(6_291_457)}).to_string();
    let err = client.invoke().function_name("worker").payload(Blob::new(big_sync)).send().await.expect_err("over 6 MB");
    assert!(format!("{:?}", err.as_service_error()).contains("RequestEntityTooLarge"), "{err:?}");
    assert_eq!(tl.stats().await["functions"]["worker"]["invocations"], 0);
}

#[tokio::test]
async fn a_payload_that_is_not_json_is_invalid_request_content_for_either_invocation_type() {
    let tl = TaskLocal::start(["--function", &worker()]);
    let client = tl.client();
    for kind in [InvocationType::Event, InvocationType::RequestResponse] {
        let err = client
            .invoke()
            .function_name("worker")
            .invocation_type(kind.clone())
            .payload(Blob::new("{\"name\": \"ann\""))
            .send()
            .await
            .expect_err("not JSON");
        let se = err.as_service_error().expect("service error");
        assert!(se.is_invalid_request_content_exception(), "{kind:?}: {se:?}");
        assert!(format!("{se}").contains("Could not parse request body into json"), "{se}");
    }
    assert_eq!(tl.stats().await["functions"]["worker"]["invocations"], 0, "nothing ran");
}

#[tokio::test]
async fn any_qualifier_reaches_the_one_build_and_unknown_paths_are_unknown_operations() {
    let tl = TaskLocal::start(["--function", &worker()]);
    for name in ["worker:live", "arn:aws:lambda:us-east-1:123456789012:function:worker:7"] {
        let out = tl.client().invoke().function_name(name).payload(Blob::new(r#"{"name": "q"}"#)).send().await.expect(name);
        assert_eq!(out.payload().map(|p| p.as_ref().to_vec()), Some(br#"{"greeting":"hello, q"}"#.to_vec()), "{name}");
    }
    let body = common::task_local::http_get(&format!("{}/2015-03-31/functions", tl.endpoint)).await;
    let body: Value = serde_json::from_str(&body).expect("a JSON error body");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("GET /2015-03-31/functions")), "{body}");
}

#[tokio::test]
async fn a_synchronous_invoke_with_no_free_instance_is_throttled() {
    let tl = TaskLocal::start(["--function", &worker(), "--concurrency", "1", "--timeout", "5s"]);
    let client = tl.client();
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            client.invoke().function_name("worker").payload(Blob::new(json!({"name": "slow", "sleep_ms": 1500}).to_string())).send().await
        })
    };
    // Wait until the slow call holds the only instance.
    assert!(eventually(Duration::from_secs(10), async || tl.stats().await["functions"]["worker"]["running"] == 1).await);
    let once = tl.client_without_retries(); // the SDK would otherwise retry the 429
    let err = once.invoke().function_name("worker").payload(Blob::new(json!({"name": "fast"}).to_string())).send().await;
    let err = err.expect_err("throttled");
    let se = err.as_service_error().expect("service error");
    assert!(se.is_too_many_requests_exception(), "{se:?}");
    let ok = slow.await.expect("join").expect("the slow call completes");
    assert_eq!(ok.function_error(), None);
    assert!(tl.stats().await["functions"]["worker"]["throttled"].as_u64() >= Some(1));
}

#[tokio::test]
async fn an_event_out_of_retries_is_written_to_the_on_failure_file() {
    let file = std::env::temp_dir().join(format!("task-local-failures-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let tl = TaskLocal::start([
        "--function", &worker(), "--max-retry-attempts", "1", "--retry-delays", "20ms",
        "--on-failure", &file.display().to_string(),
    ]);
    // Not a task, and not a Hello: the handler's event does not decode: a function error.
    let event = json!({"nobody": "here"});
    let out = tl
        .client()
        .invoke()
        .function_name("worker")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("queued");
    assert_eq!(out.status_code(), 202);
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    assert!(eventually(Duration::from_secs(20), async || !read().is_empty()).await, "{}", tl.tail(20));
    let line: Value = serde_json::from_str(read().lines().next().unwrap_or("")).expect("a JSON line");
    assert_eq!(line["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(line["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(line["requestPayload"], event);
    assert_eq!(line["responsePayload"]["errorType"], "InvalidEvent");
    let s = tl.stats().await;
    let f = &s["functions"]["worker"];
    assert_eq!((f["invocations"].as_u64(), f["retries"].as_u64(), f["dropped"].as_u64()), (Some(2), Some(1), Some(1)), "{f}");
    let rid = line["requestContext"]["requestId"].as_str().unwrap_or_default().to_owned();
    let attempts: Vec<_> = s["invocations"].as_array().into_iter().flatten().filter(|r| r["request_id"] == rid.as_str()).map(|r| r["attempt"].clone()).collect();
    assert_eq!(attempts, [json!(1), json!(2)], "both attempts under one request id");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn an_event_older_than_the_maximum_age_is_dropped() {
    let file = std::env::temp_dir().join(format!("task-local-age-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let tl = TaskLocal::start([
        "--function", &worker(), "--max-event-age", "1s", "--retry-delays", "1500ms",
        "--on-failure", &file.display().to_string(),
    ]);
    tl.client()
        .invoke()
        .function_name("worker")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(json!({"nobody": "here"}).to_string()))
        .send()
        .await
        .expect("queued");
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    assert!(eventually(Duration::from_secs(20), async || !read().is_empty()).await, "{}", tl.tail(20));
    let line: Value = serde_json::from_str(read().lines().next().unwrap_or("")).expect("a JSON line");
    assert_eq!(line["requestContext"]["condition"], "EventAgeExceeded");
    assert_eq!(line["requestContext"]["approximateInvokeCount"], 1);
    let _ = std::fs::remove_file(&file);
}

/// A Lambda runtime in Python that answers each event with what it saw.
const PY_RUNTIME: &str = r#"#!/usr/bin/env python3
import json, os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        seen = {"headers": {k.lower(): v for k, v in r.headers.items()}, "event": json.loads(r.read()),
                "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "TZ", "EXTRA"))}}
    print("handling", rid, flush=True)
    if isinstance(seen["event"], dict) and "hold_mb" in seen["event"]:
        ballast = b"x" * (seen["event"]["hold_mb"] << 20)
        time.sleep(seen["event"].get("hold_s", 1))
    req = urllib.request.Request(api + rid + "/response", data=json.dumps(seen).encode(), method="POST")
    urllib.request.urlopen(req).read()
"#;

/// `task-local` serving [`PY_RUNTIME`] as the function `echo`; the folder
/// holding the script is removed when the returned guard drops.
fn python_echo(args: &[&str]) -> (TaskLocal, TempDir) {
    let dir = TempDir(std::env::temp_dir().join(format!("task-local-py-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).expect("dir");
    let script = dir.0.join("bootstrap");
    std::fs::write(&script, PY_RUNTIME).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let function = format!("echo={}", script.display());
    (TaskLocal::start(["--function", function.as_str()].iter().chain(args)), dir)
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_function_sees_the_lambda_environment_and_headers() {
    let (tl, _dir) = python_echo(&[
        "--memory", "512", "--timeout", "7s", "--env", "EXTRA_SETTING=on",
        "--env", "echo:EXTRA_MODE=own", "--env", "EXTRA_MODE=shared",
    ]);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let out = tl.client().invoke().function_name("echo").payload(Blob::new(r#"{"hi": 1}"#)).send().await.expect("invoke");
    let seen: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
    let env = &seen["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/echo");
    assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"].as_str().is_some_and(|s| s.contains("[$LATEST]")), "{env}");
    assert!(env["AWS_ACCESS_KEY_ID"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(env["AWS_ENDPOINT_URL_LAMBDA"], tl.endpoint.as_str());
    assert!(env["AWS_LAMBDA_RUNTIME_API"].as_str().is_some_and(|s| s.starts_with("127.0.0.1:")));
    assert_eq!(env["EXTRA_SETTING"], "on");
    assert_eq!(env["EXTRA_MODE"], "own", "a function's own --env wins over the shared one");
    assert_eq!(seen["event"], json!({"hi": 1}));
    let h = &seen["headers"];
    assert_eq!(h["lambda-runtime-invoked-function-arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo");
    assert!(h["lambda-runtime-trace-id"].as_str().is_some_and(|t| t.starts_with("Root=1-")));
    let deadline: u64 = h["lambda-runtime-deadline-ms"].as_str().and_then(|d| d.parse().ok()).expect("deadline");
    assert!(deadline >= before + 6_000 && deadline <= before + 60_000, "deadline {deadline} vs now {before}");
    assert_eq!(out.executed_version(), Some("$LATEST"));
    // The function's stdout is forwarded with its name and request id.
    let rid = h["lambda-runtime-aws-request-id"].as_str().unwrap_or_default().to_owned();
    assert!(eventually(Duration::from_secs(5), async || tl.lines().iter().any(|l| l.contains("[echo #1") && l.contains(&rid) && l.contains("handling"))).await, "{}", tl.tail(10));
    // A second call reuses the warm instance.
    tl.client().invoke().function_name("echo").payload(Blob::new("{}")).send().await.expect("invoke");
    let f = &tl.stats().await["functions"]["echo"];
    assert_eq!((f["invocations"].as_u64(), f["cold_starts"].as_u64(), f["instances"].as_u64()), (Some(2), Some(1), Some(1)), "{f}");
    assert!(f["max_memory_used_mb"].as_u64().is_some_and(|mb| (1..512).contains(&mb)), "{f}");
    let report = tl.lines().into_iter().find(|l| l.starts_with("REPORT") && l.contains(&rid)).expect("a REPORT line");
    assert!(report.contains("Memory Size: 512 MB Max Memory Used: "), "{report}");
}

#[tokio::test]
async fn an_instance_over_its_memory_is_killed_and_the_next_call_gets_a_new_one() {
    let (tl, _dir) = python_echo(&["--memory", "128", "--timeout", "20s"]);
    let out = tl.client().invoke().function_name("echo").payload(Blob::new(r#"{"hold_mb": 200, "hold_s": 10}"#)).send().await.expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
    assert_eq!(body["errorType"], "Runtime.ExitError", "{body}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("signal: killed") && message.contains("its memory is 128 MB"), "{message}");
    let f = tl.stats().await["functions"]["echo"].clone();
    assert_eq!(f["crash"], 1, "{f}");
    assert!(f["max_memory_used_mb"].as_u64() > Some(128), "{f}");
    // Killed well before its 10 s sleep ended, and the next call starts afresh.
    let records = tl.stats().await["invocations"].clone();
    // `?invocations=false`: the same counters, without the records.
    let counts = tl.counts().await;
    assert_eq!((counts["functions"]["echo"]["crash"].as_u64(), counts.get("invocations")), (Some(1), None), "{counts}");
    assert!(records[0]["duration_ms"].as_f64().is_some_and(|ms| ms < 8_000.0), "{records}");
    let out = tl.client().invoke().function_name("echo").payload(Blob::new("{}")).send().await.expect("invoke");
    assert_eq!(out.function_error(), None);
    assert_eq!(tl.stats().await["functions"]["echo"]["cold_starts"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_running_invocations_then_stops() {
    let mut tl = TaskLocal::start(["--function", &worker(), "--timeout", "5s"]);
    let client = tl.client();
    let running = tokio::spawn(async move {
        client.invoke().function_name("worker").payload(Blob::new(json!({"name": "last", "sleep_ms": 1000}).to_string())).send().await
    });
    assert!(eventually(Duration::from_secs(10), async || tl.stats().await["functions"]["worker"]["running"] == 1).await);
    let status = tokio::task::block_in_place(|| tl.terminate(Duration::from_secs(15)));
    assert_eq!(status.map(|s| s.success()), Some(true), "{}", tl.tail(10));
    let answered = running.await.expect("join").expect("the running invocation was let finish");
    let body: Value = serde_json::from_slice(answered.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
    assert_eq!(body, json!({"greeting": "hello, last"}));
    let lines = tl.lines();
    assert!(lines.iter().any(|l| l.starts_with("task-local summary:")), "{}", tl.tail(10));
    assert!(lines.iter().any(|l| l.contains("worker: 1 invocations (1 success")), "{}", tl.tail(10));
}

/// boto3 against the emulator: the Invoke API as Python clients see it.
const BOTO3_CLIENT: &str = r#"
import json, sys, boto3, botocore
c = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test",
                 config=botocore.config.Config(retries={"max_attempts": 1}))
out = {}
r = c.invoke(FunctionName="worker", Payload=json.dumps({"name": "py"}))
out["sync"] = {"status": r["StatusCode"], "payload": json.loads(r["Payload"].read()), "error": r.get("FunctionError")}
r = c.invoke(FunctionName="worker", InvocationType="Event", Payload=json.dumps({"name": "later"}))
out["event"] = r["StatusCode"]
r = c.invoke(FunctionName="worker", Payload=json.dumps({"nobody": 1}))
out["function_error"] = {"error": r.get("FunctionError"), "payload": json.loads(r["Payload"].read())}
try:
    c.invoke(FunctionName="missing", Payload=b"{}")
except c.exceptions.ResourceNotFoundException as e:
    out["missing"] = {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
print(json.dumps(out))
"#;

#[tokio::test]
async fn boto3_can_invoke_the_emulator() {
    let pythonpath = std::env::var("TASK_TEST_PYTHONPATH").unwrap_or_else(|_| {
        panic!("TASK_TEST_PYTHONPATH is not set: this test needs boto3. Run the suite with `scripts/test` (it installs boto3 into .pydeps).")
    });
    let tl = TaskLocal::start(["--function", &worker()]);
    let endpoint = tl.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").env("PYTHONPATH", pythonpath).args(["-c", BOTO3_CLIENT, &endpoint]).output()
    })
    .await
    .expect("join")
    .expect("run python3");
    assert!(out.status.success(), "boto3 script failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(got["sync"], json!({"status": 200, "payload": {"greeting": "hello, py"}, "error": null}));
    assert_eq!(got["event"], 202);
    assert_eq!(got["function_error"]["error"], "Unhandled");
    assert_eq!(got["function_error"]["payload"]["errorType"], "InvalidEvent");
    assert_eq!(got["missing"], json!({"code": "ResourceNotFoundException", "status": 404}));
}
