//! `deploy/template.yaml` is what `tasks template` makes of `examples/worker`
//! today, and `deploy/http-template.yaml` of `examples/http` behind an API
//! key: a change that is not regenerated fails here. (`scripts/test` runs
//! cfn-lint on both, and `scripts/template-names.py`.)

mod common;

use common::task_local;

#[test]
fn the_committed_template_is_generated_from_the_worker_s_manifest() {
    let worker = task_local::built("examples/worker");
    let out = std::process::Command::new(task_local::built("tasks"))
        .args(["template", "--worker"])
        .arg(&worker)
        .output()
        .expect("run tasks template");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/template.yaml")).expect("deploy/template.yaml");
    assert!(
        generated == committed,
        "deploy/template.yaml is out of date; regenerate it with\n  cargo build --example worker -p examples && cargo run -p task-cli -- template --worker target/debug/examples/worker > deploy/template.yaml"
    );
    // Every DynamoDB operation the store makes is allowed: BatchGetItem reads
    // a group's shards and outcomes (a missing one would be AccessDenied on AWS only).
    assert!(!committed.contains("Transform:"), "the template is plain CloudFormation");
    for operation in ["PutItem", "UpdateItem", "DeleteItem", "GetItem", "BatchGetItem", "Query"] {
        assert!(committed.contains(&format!("- dynamodb:{operation}\n")), "the function's role does not allow dynamodb:{operation}");
    }
    for expected in [
        "ScheduleWorkerHourlyReport:",
        "ScheduleExpression: \"rate(1 hour)\"",
        // One id per tick, whichever attempt of Scheduler's delivers it.
        "schedule:worker::hourly_report:<aws.scheduler.scheduled-time>",
        // On and off without a deploy (`tasks schedule` / `unschedule`), invoking the alias.
        "State: !Ref Schedules",
        "Arn: !Ref WorkerAlias",
        "KeepWarm:",
        // Plain CloudFormation: it deploys to AWS and to moto alike.
        "Type: AWS::Lambda::Function",
        "Type: AWS::Lambda::Alias",
        "Name: live",
        "Type: AWS::Lambda::EventInvokeConfig",
        "Type: AWS::Lambda::EventSourceMapping",
        // The user's data outlives the stack.
        "DeletionPolicy: Retain",
        "task_runtime_warmup",
        "AttributeName: ttl",
        "IndexName: failed-by-day-shard",
        "ProjectionType: INCLUDE",
        // `tasks tree`: the calls each call sent.
        "IndexName: calls-by-parent",
        // The dashboard's recent calls (TASK_LIST_CALLS).
        "IndexName: calls-by-day-shard",
        "ProjectionType: KEYS_ONLY",
        "maxReceiveCount: 3",
        "dynamodb:DeleteItem",
        "aws:SourceAccount: !Ref AWS::AccountId",
        "RetentionInDays: 14",
        // Arguments and results too large for a message or an item: the
        // bucket, its objects expiring a day after the response TTL, and
        // the role's reads and writes of them only.
        "Type: AWS::S3::Bucket",
        "TASK_PAYLOAD_BUCKET: !Ref Payloads",
        "Prefix: payloads/\n            ExpirationInDays: 2",
        "- s3:GetObject\n                  - s3:PutObject\n                Resource: !Sub \"${Payloads.Arn}/payloads/*\"",
        "RestrictPublicBuckets: true",
    ] {
        assert!(committed.contains(expected), "the template lacks {expected:?}");
    }
}

#[test]
fn the_committed_http_template_requires_an_api_key() {
    let http = task_local::built("examples/http");
    let out = std::process::Command::new(task_local::built("tasks"))
        .args(["template", "--api-key", "--worker"])
        .arg(&http)
        .output()
        .expect("run tasks template");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/http-template.yaml")).expect("deploy/http-template.yaml");
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "deploy/http-template.yaml is out of date; regenerate it with\n  cargo build --example http -p examples && cargo run -p task-cli -- template --api-key --worker target/debug/examples/http > deploy/http-template.yaml"
    );
    for expected in [
        "Type: AWS::ApiGateway::RestApi",
        "ApiKeyRequired: true",
        "Type: AWS::ApiGateway::UsagePlan",
        "Type: AWS::ApiGateway::UsagePlanKey",
        "HttpMethod: ANY",
        "Type: AWS_PROXY",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: \"true\"",
    ] {
        assert!(committed.contains(expected), "the template lacks {expected:?}");
    }
}
