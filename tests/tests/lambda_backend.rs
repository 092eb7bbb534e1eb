//! The lambda backend's requests, checked against a loopback endpoint that
//! records them: path, invocation type, function name or ARN, payload, and
//! how AWS errors map to `DispatchError`.

mod common;

use std::sync::Arc;

use common::{FakeLambda, aws_error};
use task_runtime::DispatchError;
use task_runtime::backend::lambda::LambdaInvoker;

async fn accepting() -> FakeLambda {
    FakeLambda::start(Arc::new(|_| (202, vec![], String::new()))).await
}

#[tokio::test]
async fn an_event_invoke_posts_the_payload_with_invocation_type_event() {
    let fake = accepting().await;
    let invoker = LambdaInvoker::with_client(fake.client());
    let payload = br#"{"task_runtime":1,"task":"t","id":"1","args":{}}"#.to_vec();
    invoker.invoke_event("t", "my-function", payload.clone()).await.expect("202 is success");
    let got = fake.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/2015-03-31/functions/my-function/invocations");
    assert_eq!(got[0].headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()), Some("Event"));
    assert_eq!(got[0].body, payload);
}

#[tokio::test]
async fn names_arns_and_qualified_arns_are_all_sent_as_given() {
    let fake = accepting().await;
    let invoker = LambdaInvoker::with_client(fake.client());
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:my-function";
    for function in ["my-function", arn, &format!("{arn}:live")] {
        invoker.invoke_event("t", function, b"{}".to_vec()).await.expect("accepted");
    }
    let paths: Vec<String> = fake.received().into_iter().map(|c| c.path).collect();
    assert_eq!(paths[0], "/2015-03-31/functions/my-function/invocations");
    assert!(paths[1].contains("123456789012") && paths[1].contains("function") && paths[1].ends_with("my-function/invocations"), "{}", paths[1]);
    assert!(paths[2].contains("my-function") && paths[2].contains("live"), "{}", paths[2]);
}

async fn error_for(status: u16, code: &'static str, message: &'static str) -> (DispatchError, usize) {
    let fake = FakeLambda::start(Arc::new(move |_| aws_error(status, code, message))).await;
    let invoker = LambdaInvoker::with_client(fake.client());
    let err = invoker.invoke_event("pies::bake", "my-function", b"{}".to_vec()).await.expect_err("refused");
    (err, fake.received().len())
}

#[tokio::test]
async fn a_missing_function_is_resource_not_found_and_not_retried() {
    let (err, requests) = error_for(404, "ResourceNotFoundException", "Function not found: my-function").await;
    match &err {
        DispatchError::Invoke { status: Some(404), code: Some(code), message, function, task } => {
            assert_eq!(code, "ResourceNotFoundException");
            assert_eq!(message, "Function not found: my-function");
            assert_eq!((function.as_str(), task.as_str()), ("my-function", "pies::bake"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(requests, 1);
    let text = err.to_string();
    assert!(text.contains("HTTP 404") && text.contains("ResourceNotFoundException"), "{text}");
}

#[tokio::test]
async fn a_payload_lambda_refuses_as_too_large_is_request_entity_too_large() {
    let (err, requests) = error_for(413, "RequestEntityTooLargeException", "Request must be smaller than 1048576 bytes").await;
    assert!(
        matches!(&err, DispatchError::Invoke { status: Some(413), code: Some(c), .. } if c == "RequestEntityTooLargeException"),
        "{err:?}"
    );
    assert_eq!(requests, 1);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_reported() {
    let (err, requests) = error_for(429, "TooManyRequestsException", "Rate exceeded").await;
    assert!(
        matches!(&err, DispatchError::Invoke { status: Some(429), code: Some(c), .. } if c == "TooManyRequestsException"),
        "{err:?}"
    );
    assert_eq!(requests, 3, "the SDK's standard retry makes 3 attempts");
}

#[tokio::test]
async fn a_server_error_is_retried_by_the_sdk() {
    let (err, requests) = error_for(500, "ServiceException", "internal").await;
    assert!(matches!(&err, DispatchError::Invoke { status: Some(500), .. }), "{err:?}");
    assert_eq!(requests, 3);
}

#[tokio::test]
async fn a_success_other_than_202_is_an_error() {
    let fake = FakeLambda::start(Arc::new(|_| (200, vec![], "{}".into()))).await;
    let invoker = LambdaInvoker::with_client(fake.client());
    let err = invoker.invoke_event("t", "f", b"{}".to_vec()).await.expect_err("200 is not an async accept");
    assert!(err.to_string().contains("expected 202"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_dispatch_error_without_status() {
    let fake = accepting().await;
    let client = fake.client();
    drop(fake); // nothing listens there now
    let err = LambdaInvoker::with_client(client).invoke_event("t", "f", b"{}".to_vec()).await.expect_err("no server");
    assert!(matches!(err, DispatchError::Invoke { status: None, .. }), "{err:?}");
}
