//! End to end: the real `task-local` emulator running the real
//! `examples/worker` binary, DynamoDB Local for responses, and dispatch
//! through the real `task_runtime` lambda backend. Each test asserts what
//! is stored and what the emulator's `/stats` reports.
//!
//! One emulator serves the whole binary (started once, on one runtime). It
//! runs with `--stop-on-stdin-eof`, so it stops, with its instances, when
//! this process ends, whether the tests pass, fail or are killed.

mod common;

use common::task_local::{self, TaskLocal};

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::store::dynamodb::DynamoStore;
use task_runtime::{Config, FailureKind, SendOptions, Status, get_async_response, send};

struct Emulator {
    tl: TaskLocal,
    table: String,
}

const CONCURRENCY: u64 = 4;
const TIMEOUT_SECS: u64 = 2;

async fn emulator() -> &'static Emulator {
    static EMU: tokio::sync::OnceCell<Emulator> = tokio::sync::OnceCell::const_new();
    EMU.get_or_init(|| async {
        let table = common::table_name("e2e");
        DynamoStore::with_client(common::dynamodb(), table.clone()).create_table().await.expect("table");
        let worker = format!("worker={}", task_local::built("examples/worker").display());
        // The same binary again, for synchronous invokes only: with its own
        // instances, they are never throttled by the asynchronous load on `worker`.
        let direct = format!("direct={}", task_local::built("examples/worker").display());
        let api = format!("api={}", task_local::built("examples/http").display());
        // Again, for warm-up pings only: its instances can be counted.
        let warm = format!("warm={}", task_local::built("examples/worker").display());
        // The HTTP app again, behind API keys (two: a rotation in progress).
        let keyed = format!("keyed={}", task_local::built("examples/http").display());
        let (timeout, concurrency) = (format!("{TIMEOUT_SECS}s"), CONCURRENCY.to_string());
        let (table_env, ddb_env) = (format!("TASK_RESPONSE_TABLE={table}"), format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()));
        let tl = tokio::task::spawn_blocking(move || {
            TaskLocal::start([
                "--function", &worker, "--function", &api, "--function", &direct, "--function", &warm, "--concurrency", "warm=3", "--function", &keyed, "--env", "keyed:TASK_API_KEYS=key-old, key-new",
                // Every level, so that a key in a debug or trace line would show.
                "--env", "keyed:RUST_LOG=trace",
                // As the generated REST API template sets it (see deploy/http-template.yaml).
                "--env", "api:AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true",
                "--timeout", &timeout, "--concurrency", &concurrency, "--concurrency", "direct=3",
                "--retry-delays", "50ms,100ms", "--max-retry-attempts", "2", "--no-schedules",
                "--env", &table_env, "--env", &ddb_env, "--env", "RUST_LOG=warn",
                // Room to record a timeout and answer before the kill, on a loaded machine.
                "--env", "TASK_TIMEOUT_MARGIN_MS=800",
                // Retries come 50 ms after a crash here (a minute on AWS): a
                // short lease lets the retry take over a crashed attempt at once.
                "--env", "TASK_LEASE_MS=1000",
            ])
        })
        .await
        .expect("start task-local");
        let endpoint = tl.endpoint.clone();
        let lambda = aws_sdk_lambda::Client::new(&common::sdk_config(&endpoint));
        Config::lambda("worker", None)
            .with_store(Arc::new(DynamoStore::with_client(common::dynamodb(), table.clone())))
            .with_invoker(LambdaInvoker::with_client(lambda))
            .install()
            .expect("install once");
        Emulator { tl, table }
    })
    .await
}

async fn stats() -> Value {
    emulator().await.tl.stats().await
}

/// The emulator's records of one request id, in order.
async fn invocations_of(request_id: &str) -> Vec<Value> {
    let s = stats().await;
    s["invocations"].as_array().into_iter().flatten().filter(|r| r["request_id"] == request_id).cloned().collect()
}

/// The request id the worker recorded for a response id.
async fn request_id_of(id: &str) -> String {
    let out = common::dynamodb()
        .get_item()
        .table_name(&emulator().await.table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("raw get");
    out.item().and_then(|i| i.get("request_id")).and_then(|v| v.as_s().ok()).cloned().expect("request_id stored")
}

/// Poll until finished; returns every status seen along the way.
async fn finish(id: &str, limit: Duration) -> (task_runtime::AsyncResponse, Vec<Status>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        if let Some(r) = get_async_response(id).await.expect("read") {
            if seen.last() != Some(&r.status) {
                seen.push(r.status);
            }
            if r.status.is_finished() {
                return (r, seen);
            }
        }
        if started.elapsed() > limit {
            let tail = emulator().await.tl.tail(15);
            panic!("{id} not finished after {limit:?}; seen {seen:?}; the emulator's last lines:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn dispatch(task: &str, args: Value) -> String {
    emulator().await;
    send(task, args, SendOptions::default()).await.expect("dispatch").id().to_owned()
}

#[test]
fn a_captured_task_goes_from_pending_to_complete() {
    common::block_on(async {
        let id = dispatch("worker::word_count", json!({"text": "three little words"})).await;
        let first = get_async_response(&id).await.expect("read").expect("recorded at dispatch");
        assert!(matches!(first.status, Status::Pending | Status::Running | Status::Complete), "{first:?}");
        let (r, seen) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!((r.status, r.attempts, r.response), (Status::Complete, 1, Some(json!(3))));
        assert!(seen.iter().all(|s| matches!(s, Status::Pending | Status::Running | Status::Complete)), "{seen:?}");
        let runs = invocations_of(&request_id_of(&id).await).await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0]["outcome"], "success");
    });
}

#[test]
fn a_task_failing_twice_completes_on_attempt_three_under_one_request_id() {
    common::block_on(async {
        let id = dispatch("worker::flaky", json!({"succeed_on": 3})).await;
        let (r, _) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!((r.status, r.attempts, r.response), (Status::Complete, 3, Some(json!(3))));
        let runs = invocations_of(&request_id_of(&id).await).await;
        let attempts: Vec<_> = runs.iter().map(|r| (r["attempt"].as_u64(), r["outcome"].as_str(), r["error_type"].as_str())).collect();
        assert_eq!(
            attempts,
            [(Some(1), Some("error"), Some("TaskRetry")), (Some(2), Some("error"), Some("TaskRetry")), (Some(3), Some("success"), None)]
        );
    });
}

#[test]
fn task_error_fail_runs_once() {
    common::block_on(async {
        let id = dispatch("worker::refuse", json!({"reason": "out of flour"})).await;
        let (r, _) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!((r.status, r.attempts), (Status::Failed, 1));
        assert_eq!(r.error.map(|e| (e.kind, e.message)), Some((FailureKind::Failed, "out of flour".to_owned())));
        tokio::time::sleep(Duration::from_millis(300)).await; // a retry would come after 50 ms
        let runs = invocations_of(&request_id_of(&id).await).await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0]["outcome"], "success", "Lambda is told not to retry");
    });
}

#[test]
fn a_task_sleeping_past_the_timeout_is_retried_and_ends_failed_with_a_timeout() {
    common::block_on(async {
        let id = dispatch("worker::nap", json!({"ms": 10_000})).await;
        let (r, _) = finish(&id, Duration::from_secs(40)).await;
        assert_eq!((r.status, r.attempts), (Status::Failed, 3));
        assert_eq!(r.error.map(|e| e.kind), Some(FailureKind::Timeout));
        let runs = invocations_of(&request_id_of(&id).await).await;
        assert_eq!(runs.len(), 3, "{runs:?}");
        // Each attempt ends at its deadline: the worker records the timeout and
        // answers `TaskTimeout` just before it, or (on a loaded machine, after
        // recording) the emulator kills it at the deadline.
        let timed_out = |r: &Value| {
            (r["outcome"] == "error" && r["error_type"] == "TaskTimeout") || r["outcome"] == "timeout"
        };
        assert!(runs.iter().all(timed_out), "{runs:?}");
    });
}

#[test]
fn a_handler_running_past_its_deadline_is_killed_as_a_function_error() {
    common::block_on(async {
        let emu = emulator().await;
        let client = aws_sdk_lambda::Client::new(&common::sdk_config(&emu.tl.endpoint));
        let before = stats().await["functions"]["direct"]["timeout"].as_u64().unwrap_or(0);
        let out = client
            .invoke()
            .function_name("direct")
            .payload(aws_sdk_lambda::primitives::Blob::new(json!({"name": "sloth", "sleep_ms": 10_000}).to_string()))
            .send()
            .await
            .expect("a function error is still a 200");
        assert_eq!(out.function_error(), Some("Unhandled"));
        let body: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("error JSON");
        assert_eq!(body["errorType"], "Sandbox.Timedout");
        assert!(body["errorMessage"].as_str().unwrap_or("").contains(&format!("Task timed out after {TIMEOUT_SECS}.00 seconds")), "{body}");
        let after = stats().await["functions"]["direct"]["timeout"].as_u64().unwrap_or(0);
        assert!(after > before);
        // The killed instance is replaced: the next call still works.
        let ok = client
            .invoke()
            .function_name("direct")
            .payload(aws_sdk_lambda::primitives::Blob::new(json!({"name": "ann"}).to_string()))
            .send()
            .await
            .expect("invoke");
        assert_eq!(ok.function_error(), None);
    });
}

#[test]
fn a_task_that_aborts_its_process_on_attempt_one_completes_on_the_retry() {
    common::block_on(async {
        let id = dispatch("worker::crash_once", json!({"value": 7})).await;
        let (r, _) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!((r.status, r.attempts, r.response), (Status::Complete, 2, Some(json!(7))));
        let runs = invocations_of(&request_id_of(&id).await).await;
        let outcomes: Vec<_> = runs.iter().map(|r| r["outcome"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(outcomes, ["crash", "success"]);
    });
}

#[test]
fn five_hundred_concurrent_tasks_complete_within_the_concurrency_limit() {
    common::block_on(async {
        emulator().await;
        let sends = (0..500).map(|i| send("worker::word_count", json!({"text": "w ".repeat(i % 7 + 1)}), SendOptions::default()));
        let handles: Vec<_> = futures::future::join_all(sends).await.into_iter().map(|h| h.expect("dispatch")).collect();
        let started = Instant::now();
        let mut left: Vec<(usize, String)> = handles.iter().enumerate().map(|(i, h)| (i, h.id().to_owned())).collect();
        while !left.is_empty() {
            let mut still = Vec::new();
            for (i, id) in left {
                let r = get_async_response(&id).await.expect("read").expect("exists");
                match r.status {
                    Status::Complete => assert_eq!(r.response, Some(json!(i % 7 + 1))),
                    Status::Failed => panic!("{id} failed: {r:?}"),
                    _ => still.push((i, id)),
                }
            }
            left = still;
            assert!(started.elapsed() < Duration::from_secs(120), "{} tasks unfinished", left.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = &stats().await["functions"]["worker"];
        assert!(s["max_instances"].as_u64().unwrap_or(99) <= CONCURRENCY, "{s}");
        assert!(s["max_running"].as_u64().unwrap_or(99) <= CONCURRENCY, "{s}");
        assert!(s["success"].as_u64().unwrap_or(0) >= 500, "{s}");
    });
}

#[test]
fn fan_out_dispatches_from_inside_the_worker() {
    common::block_on(async {
        let id = dispatch("worker::count_all", json!({"texts": ["a b", "c d e"]})).await;
        let (r, _) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!(r.status, Status::Complete, "{r:?}");
        let ids: Vec<String> = serde_json::from_value(r.response.expect("ids")).expect("a list of ids");
        let mut counts = Vec::new();
        for child in ids {
            counts.push(finish(&child, Duration::from_secs(30)).await.0.response);
        }
        assert_eq!(counts, [Some(json!(2)), Some(json!(3))]);
    });
}

#[test]
fn a_synchronous_invoke_of_an_unknown_function_is_resource_not_found() {
    common::block_on(async {
        let emu = emulator().await;
        let client = aws_sdk_lambda::Client::new(&common::sdk_config(&emu.tl.endpoint));
        let err = client.invoke().function_name("no-such-function").send().await.expect_err("404");
        let se = err.as_service_error().expect("a service error");
        assert!(se.is_resource_not_found_exception(), "{se:?}");
        assert!(se.to_string().contains("no-such-function"), "{se}");
    });
}

/// Invoke synchronously; returns the function-error header and the body.
async fn invoke_sync(payload: Value) -> (Option<String>, Value) {
    let emu = emulator().await;
    let client = aws_sdk_lambda::Client::new(&common::sdk_config(&emu.tl.endpoint));
    let out = client
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:direct")
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke");
    let body = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).unwrap_or(Value::Null);
    (out.function_error().map(str::to_owned), body)
}

fn envelope(task: &str, args: Value) -> Value {
    json!({"task_runtime": 1, "task": task, "id": uuid::Uuid::new_v4().to_string(), "args": args, "capture": true, "retries": 2})
}

#[test]
fn the_worker_reports_each_row_of_the_retry_table_to_lambda() {
    common::block_on(async {
        // value: success
        let (err, body) = invoke_sync(envelope("worker::word_count", json!({"text": "a b"}))).await;
        assert_eq!((err, body["status"].as_str()), (None, Some("complete")));
        // retryable error with attempts left: a function error Lambda retries
        let (err, body) = invoke_sync(envelope("worker::flaky", json!({"succeed_on": 3}))).await;
        assert_eq!((err.as_deref(), body["errorType"].as_str()), (Some("Unhandled"), Some("TaskRetry")));
        // TaskError::fail: success, so Lambda does not retry
        let (err, body) = invoke_sync(envelope("worker::refuse", json!({"reason": "no"}))).await;
        assert_eq!((err, body["status"].as_str(), body["error"]["kind"].as_str()), (None, Some("failed"), Some("failed")));
        // panic: success, failed with kind panic
        let (err, body) = invoke_sync(envelope("worker::explode", json!({"what": "the oven"}))).await;
        assert_eq!((err, body["error"]["kind"].as_str()), (None, Some("panic")));
        // args that do not decode, an unknown task, a newer envelope: success, failed
        let (err, body) = invoke_sync(envelope("worker::word_count", json!({"text": 5}))).await;
        assert_eq!((err, body["error"]["kind"].as_str()), (None, Some("bad_args")));
        let (err, body) = invoke_sync(envelope("worker::nobody", json!({}))).await;
        assert_eq!((err, body["error"]["kind"].as_str()), (None, Some("unknown_task")));
        let mut newer = envelope("worker::word_count", json!({"text": "x"}));
        newer["task_runtime"] = json!(2);
        let (err, body) = invoke_sync(newer).await;
        assert_eq!((err, body["error"]["kind"].as_str()), (None, Some("unsupported_version")));
        // not a task: the fallback handler
        let (err, body) = invoke_sync(json!({"name": "ann"})).await;
        assert_eq!((err, body), (None, json!({"greeting": "hello, ann"})));
    });
}

#[test]
fn the_emulator_reports_each_invocation_on_stdout() {
    common::block_on(async {
        let id = dispatch("worker::word_count", json!({"text": "report me"})).await;
        finish(&id, Duration::from_secs(30)).await;
        let rid = request_id_of(&id).await;
        let lines = emulator().await.tl.lines();
        let report = lines.iter().find(|l| l.starts_with("REPORT") && l.contains(&rid)).expect("a REPORT line");
        assert!(report.contains("Function: worker") && report.contains("Attempt: 1") && report.contains("Outcome: success"), "{report}");
        assert!(report.contains("Cold") || report.contains("Warm"), "{report}");

        // The worker's own output (an error line, as it runs with RUST_LOG=warn)
        // is forwarded under the invocation's request id.
        let id = dispatch("worker::refuse", json!({"reason": "log me"})).await;
        finish(&id, Duration::from_secs(30)).await;
        let rid = request_id_of(&id).await;
        let lines = emulator().await.tl.lines();
        let logged = lines.iter().find(|l| l.contains("log me") && l.contains(&id)).unwrap_or_else(|| panic!("no log line for {id}: {:?}", lines.iter().filter(|l| l.contains("log me")).collect::<Vec<_>>()));
        assert!(logged.starts_with("[worker #") && logged.contains(&format!(" {rid}] ")), "{logged}");
    });
}

/// An API Gateway HTTP API (payload v2) event.
fn http_event(method: &str, path: &str, query: &str) -> Value {
    let params: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"host": "api.example.com", "user-agent": "e2e"},
        "queryStringParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "e2e"},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:06:00:00 +0000", "timeEpoch": 1_795_500_000_000u64
        },
        "isBase64Encoded": false
    })
}

async fn call_api(event: Value) -> Value {
    call_function("api", event).await
}

async fn call_function(function: &str, event: Value) -> Value {
    let emu = emulator().await;
    let out = emu
        .tl
        .client()
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .expect("invoke api");
    assert_eq!(out.function_error(), None, "{:?}", out.payload());
    serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("a JSON response")
}

#[test]
fn an_http_app_and_its_tasks_run_in_one_function() {
    common::block_on(async {
        let posted = call_api(http_event("POST", "/pies", "flavor=apple&slices=8")).await;
        assert_eq!(posted["statusCode"], 202, "{posted}");
        let body: Value = serde_json::from_str(posted["body"].as_str().unwrap_or("")).expect("JSON body");
        let id = body["id"].as_str().expect("an id").to_owned();
        // The function dispatched the task to itself, through the emulator.
        let (r, _) = finish(&id, Duration::from_secs(30)).await;
        assert_eq!((r.status, r.task.as_str()), (Status::Complete, "http::bake"));
        assert_eq!(r.response, Some(json!({"flavor": "apple", "slices": 8})));
        let polled = call_api(http_event("GET", &format!("/pies/{id}"), "")).await;
        assert_eq!(polled["statusCode"], 200, "{polled}");
        let body: Value = serde_json::from_str(polled["body"].as_str().unwrap_or("")).expect("JSON body");
        assert_eq!((body["status"].as_str(), body["attempts"].as_u64()), (Some("complete"), Some(1)));
        let missing = call_api(http_event("GET", "/pies/nope", "")).await;
        assert_eq!(missing["statusCode"], 404, "{missing}");
    });
}

#[test]
fn an_s3_event_reaches_its_typed_handler_and_fans_out_to_tasks_that_complete() {
    common::block_on(async {
        let emu = emulator().await;
        // The sample event task-local makes (as `sam local generate-event s3 put`), sent to `direct`.
        let endpoint = emu.tl.endpoint.trim_start_matches("http://").to_owned();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(task_local::built("task-local"))
                .args(["event", "s3-put", "--bucket", "uploads", "--key", "reports/2026-11-27/summary.csv", "--key", "red flower"])
                .args(["--invoke", "direct", "--endpoint", &endpoint])
                .output()
                .expect("run task-local event")
        })
        .await
        .expect("join");
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        let body: Value = serde_json::from_slice(&out.stdout).expect("the handler's answer, JSON");
        let ids: Vec<String> = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(ids.len(), 2);
        let mut counts = Vec::new();
        for id in &ids {
            let (r, _) = finish(id, Duration::from_secs(30)).await;
            assert_eq!(r.status, Status::Complete, "{r:?}");
            counts.push(r.response);
        }
        // "reports 2026 11 27 summary csv" and "red flower": S3 sent it as
        // `red+flower` (URL-encoded), and the handler decoded it.
        assert_eq!(counts, [Some(json!(6)), Some(json!(2))], "word counts of the keys");
    });
}

#[test]
fn a_warm_up_ping_runs_nothing_and_keeps_three_instances_warm() {
    common::block_on(async {
        let emu = emulator().await;
        let client = aws_sdk_lambda::Client::new(&common::sdk_config(&emu.tl.endpoint));
        let out = client
            .invoke()
            .function_name("warm")
            .payload(aws_sdk_lambda::primitives::Blob::new(json!({"task_runtime_warmup": {"instances": 3}}).to_string()))
            .send()
            .await
            .expect("invoke");
        let body: Value = serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
        // The function's own handler (which wants a name) was not reached: no error.
        assert_eq!(out.function_error(), None, "{body}");
        assert_eq!((body["warm"].as_bool(), body["fanned_out"].as_u64(), body["warmed"].as_u64()), (Some(true), Some(2), Some(2)), "{body}");
        let f = &stats().await["functions"]["warm"];
        assert_eq!((f["invocations"].as_u64(), f["instances"].as_u64(), f["cold_starts"].as_u64()), (Some(3), Some(3), Some(3)), "{f}");
    });
}

#[test]
fn with_api_keys_a_request_needs_one_of_them_and_rotation_accepts_both() {
    common::block_on(async {
        let with_key = |key: Option<&str>| {
            let mut e = http_event("GET", "/pies/nope", "");
            if let Some(k) = key {
                e["headers"]["x-api-key"] = json!(k);
            }
            e
        };
        let missing = call_function("keyed", with_key(None)).await;
        assert_eq!(missing["statusCode"], 401, "{missing}");
        assert!(missing["body"].as_str().unwrap_or("").contains("needs an x-api-key"), "{missing}");
        let wrong = call_function("keyed", with_key(Some("key-guess"))).await;
        assert_eq!(wrong["statusCode"], 403, "{wrong}");
        let body: Value = serde_json::from_str(wrong["body"].as_str().unwrap_or("")).expect("a JSON body");
        assert_eq!(body["message"], "the x-api-key is not one this API accepts");
        // Both keys of the rotation reach the app (which answers 404 for this order).
        for key in ["key-old", "key-new"] {
            let accepted = call_function("keyed", with_key(Some(key))).await;
            assert_eq!(accepted["statusCode"], 404, "{key}: {accepted}");
        }
        // A key never reaches the log.
        let lines = emulator().await.tl.lines();
        let leaked: Vec<&String> = lines.iter().filter(|l| l.contains("key-guess") || l.contains("key-old") || l.contains("key-new")).collect();
        assert!(leaked.is_empty(), "a key was logged: {leaked:#?}");
        // And the trace level was on, so the test could see one.
        assert!(lines.iter().any(|l| l.starts_with("[keyed #") && l.contains("TRACE")), "no TRACE line from `keyed`");
    });
}

/// AWS's sample event `name` (tests/fixtures/aws), as a JSON value.
fn aws_sample(name: &str) -> Value {
    let path = format!("{}/fixtures/aws/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("a fixture")).expect("JSON")
}

#[test]
fn rest_api_and_alb_events_reach_the_app_and_are_answered_in_their_own_shape() {
    common::block_on(async {
        // API Gateway REST API (payload 1.0), AWS's sample (stage `testStage`)
        // pointed at the app's route; without the template's
        // AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH, the app would see `/testStage/pies`.
        let mut rest = aws_sample("example-apigw-request.json");
        rest["httpMethod"] = json!("POST");
        rest["path"] = json!("/pies");
        rest["resource"] = json!("/pies");
        rest["queryStringParameters"] = json!({"flavor": "plum", "slices": "6"});
        rest["multiValueQueryStringParameters"] = json!({"flavor": ["plum"], "slices": ["6"]});
        rest["body"] = Value::Null;
        let answer = call_api(rest).await;
        assert_eq!(answer["statusCode"], 202, "{answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("")).expect("JSON body");
        let (r, _) = finish(body["id"].as_str().expect("an id"), Duration::from_secs(30)).await;
        assert_eq!(r.response, Some(json!({"flavor": "plum", "slices": 6})));
        // An Application Load Balancer (AWS's sample, GET /): no such route, answered 404 as an ALB expects.
        let answer = call_api(aws_sample("example-alb-lambda-target-request-headers-only.json")).await;
        assert_eq!(answer["statusCode"], 404, "{answer}");
        assert!(answer.get("statusDescription").is_some(), "an ALB answer carries statusDescription: {answer}");
    });
}
