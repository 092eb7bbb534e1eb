//! Traces across calls, exported: a worker built with the feature
//! `opentelemetry` runs under task-local and sends its spans over OTLP/HTTP
//! (JSON) to a receiver in this test (the protocol's `POST /v1/traces`,
//! <https://opentelemetry.io/docs/specs/otlp/#otlphttp>). A call that sends
//! two calls makes one trace: the two children's `task` spans have the
//! parent's `task` span as their parent.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::task_local::{self, TaskLocal};
use serde_json::Value;
use task_runtime::store::dynamodb::DynamoStore;

/// The spans received, flattened: (trace id, span id, parent span id, name, attributes).
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn spans_of(body: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let attributes = s["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let v = &a["value"];
                        let text = v["stringValue"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                        (a["key"].as_str().unwrap_or_default().to_owned(), text)
                    })
                    .collect();
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_ascii_lowercase();
                out.push(Span { trace: text("traceId"), id: text("spanId"), parent: text("parentSpanId"), name: text("name"), attributes });
            }
        }
    }
    out
}

/// An OTLP/HTTP receiver on loopback: every body posted to `/v1/traces`.
fn receiver(rt: &tokio::runtime::Runtime) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                }
                axum::Json(serde_json::json!({}))
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

#[test]
fn a_call_and_the_calls_it_sends_are_one_exported_trace() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (endpoint, got) = receiver(&rt);
    let table = common::table_name("otel");
    rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".to_owned(),
        format!("otel={}", task_local::built("otel-worker").display()),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
        "--env".into(),
        format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}"),
        "--env".into(),
        "OTEL_SERVICE_NAME=otel-test".into(),
    ]);
    let mut send = std::process::Command::new(task_local::built("tasks"));
    send.args(["send", "otel.fan_out", r#"{"n": 2}"#, "--wait", "--timeout", "30s", "--json"]);
    let out = task_local::user_env(&mut send, &tl.endpoint, &table)
        .env("TASK_FUNCTION", "otel")
        .output()
        .expect("tasks send");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let sent: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let root = sent[0]["id"].as_str().expect("the call's id").to_owned();
    let children: Vec<String> = serde_json::from_value(sent[0]["response"].clone()).expect("the children's ids");

    // The three `task` spans arrive (each invocation sends its spans before it answers).
    let started = Instant::now();
    let task_spans = loop {
        let all: Vec<Span> = got.lock().unwrap_or_else(|p| p.into_inner()).iter().flat_map(spans_of).filter(|s| s.name == "task").collect();
        let ids: Vec<&str> = all.iter().filter_map(|s| s.attribute("id")).collect();
        if ids.contains(&root.as_str()) && children.iter().all(|c| ids.contains(&c.as_str())) {
            break all;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the task spans did not all arrive: {all:?}\n{}", tl.tail(30));
        std::thread::sleep(Duration::from_millis(200));
    };
    let of = |id: &str| task_spans.iter().find(|s| s.attribute("id") == Some(id)).cloned().expect("a span");
    let parent = of(&root);
    assert_eq!(parent.trace.len(), 32, "{parent:?}");
    assert_eq!(parent.attribute("task"), Some("otel.fan_out"));
    // The log lines' trace_id is the exported trace's.
    assert_eq!(parent.attribute("trace_id"), Some(parent.trace.as_str()), "{parent:?}");
    for c in &children {
        let child = of(c);
        assert_eq!(child.trace, parent.trace, "one trace: {child:?}");
        assert_eq!(child.parent, parent.id, "the child's span is under the parent's: {child:?} {parent:?}");
        assert_eq!(child.attribute("task"), Some("otel.leaf"));
    }
}
