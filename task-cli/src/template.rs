//! `tasks template`: the CloudFormation template of a worker, made from its
//! manifest (`TASK_RUNTIME_MANIFEST=1 WORKER`), in plain CloudFormation (no
//! `AWS::Serverless` transform, which runs only on AWS's servers), so that
//! the same template deploys to AWS and to moto's CloudFormation. It holds:
//! a Lambda function per function group (all from one zip), each with a
//! version and the alias `live` that callers and schedules invoke, and its
//! retry settings and failure queue (read back by the worker); the response
//! table with TTL and its indexes; one schedule per `#[schedule]`, whose
//! input is the task message; keep-warm; the scheduler's role for delayed
//! tasks; the log groups; the bucket of arguments and results too large
//! for a message or an item, whose objects expire with the response TTL;
//! and IAM that allows what the worker does and no more. The table, the
//! bucket, the log groups and the queues are kept when the stack is
//! deleted (`DeletionPolicy: Retain`): they hold the user's data.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use task_runtime::store::dynamodb::{FAILED_INDEX, FAILED_INDEX_ATTRIBUTES, PARENT_INDEX, RECENT_INDEX};
use task_runtime::store::payloads::PAYLOAD_PREFIX;

use crate::cli::TemplateArgs;
use crate::deploy::settings::FunctionSettings;
use crate::{Exit, Problem};

/// The alias every caller and schedule invokes; `tasks update` and `tasks
/// rollback` move it.
pub(crate) const ALIAS: &str = "live";

/// What a template is made from.
#[derive(Debug)]
pub(crate) struct Layout<'a> {
    pub(crate) manifest: &'a Value,
    /// The worker binary's name (for the description).
    pub(crate) binary: &'a str,
    /// The default function first, then each group's. A name may hold `${AWS::StackName}`.
    pub(crate) functions: &'a [FunctionSettings],
    pub(crate) architecture: &'a str,
    pub(crate) api_key: bool,
    pub(crate) tracing: bool,
    pub(crate) keep_warm: bool,
    pub(crate) log_retention_days: u32,
    /// The response table's name; `None`: CloudFormation names it.
    pub(crate) table: Option<String>,
    pub(crate) environment: &'a BTreeMap<String, String>,
    pub(crate) tags: &'a BTreeMap<String, String>,
}

pub(crate) async fn template(a: TemplateArgs) -> Result<Exit, Problem> {
    let manifest = read_manifest(&a.worker)?;
    let binary = a.binary.clone().unwrap_or_else(|| a.worker.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "bootstrap".into()));
    let functions = [FunctionSettings {
        group: None,
        name: format!("${{AWS::StackName}}-{binary}"),
        memory_mb: a.memory,
        timeout: std::time::Duration::from_secs(a.timeout.into()),
        reserved_concurrency: None,
    }];
    let none = BTreeMap::new();
    let layout = Layout {
        manifest: &manifest,
        binary: &binary,
        functions: &functions,
        architecture: "arm64",
        api_key: a.api_key,
        tracing: a.tracing,
        keep_warm: true,
        log_retention_days: 14,
        table: None,
        environment: &none,
        tags: &none,
    };
    print!("{}", render(&layout));
    Ok(Exit::Complete)
}

/// The manifest `worker` prints when asked (`TASK_RUNTIME_MANIFEST=1`).
pub(crate) fn read_manifest(worker: &std::path::Path) -> Result<Value, Problem> {
    let out = std::process::Command::new(worker)
        .env(task_runtime::MANIFEST_VAR, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Problem(format!("cannot run {}: {e}", worker.display())))?;
    serde_json::from_slice(&out.stdout).map_err(|_| {
        Problem(format!("{} printed no manifest: is it a worker built with this task-runtime (it calls task_runtime::run)?", worker.display()))
    })
}

/// A YAML double-quoted scalar (JSON's string syntax is a subset of it).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `worker::hourly_report` as a CloudFormation logical id part: `WorkerHourlyReport`.
pub(crate) fn logical(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| p[..1].to_ascii_uppercase() + &p[1..])
        .collect()
}

/// The logical id of a function: `Worker` for the default one, `FunctionHeavy` for group `heavy`'s.
pub(crate) fn function_id(f: &FunctionSettings) -> String {
    f.group.as_deref().map_or_else(|| "Worker".to_owned(), |g| format!("Function{}", logical(g)))
}

/// Every function of the stack and its versions and aliases (`NAME:QUALIFIER`)
/// as a YAML list indented `indent` spaces: not other functions whose names start alike.
fn function_arns(functions: &[FunctionSettings], indent: usize) -> String {
    let mut out = Vec::new();
    for f in functions {
        let arn = format!("arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{}", f.name);
        out.push(format!("{:indent$}- !Sub \"{arn}\"\n{:indent$}- !Sub \"{arn}:*\"", "", ""));
    }
    out.join("\n")
}

/// The function group `task` runs in (its manifest's `function`), when the stack has it.
fn function_of<'a>(layout: &'a Layout<'_>, task: &str) -> &'a FunctionSettings {
    let group = layout.manifest["tasks"].as_array().into_iter().flatten().find(|t| t["name"] == task).and_then(|t| t["function"].as_str());
    layout.functions.iter().find(|f| f.group.is_some() && f.group.as_deref() == group).unwrap_or(&layout.functions[0])
}

/// Twelve hex digits of SHA-256: what a version's description carries of its function's settings.
fn short_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..6])
}

/// The parameter that turns the schedules on and off (a template without schedules has none).
pub(crate) const SCHEDULES_PARAMETER: &str = "Schedules";

/// Whether the template has a schedule: a `#[schedule]`, or keep-warm when on.
pub(crate) fn has_schedules(layout: &Layout<'_>) -> bool {
    let some = |k: &str| layout.manifest[k].as_array().is_some_and(|a| !a.is_empty());
    some("schedules") || (layout.keep_warm && some("keep_warm"))
}

/// The template for `layout`.
pub(crate) fn render(layout: &Layout<'_>) -> String {
    let mut t = String::new();
    let w = &mut t;
    let binary = layout.binary;
    let _ = writeln!(w, "# Generated by `tasks template` from the worker's manifest. Do not edit: regenerate it.");
    let _ = writeln!(w, "AWSTemplateFormatVersion: \"2010-09-09\"");
    let _ = writeln!(w, "Description: {}", q(&format!("task-runtime worker {binary}: tasks, schedules, failure records")));
    let _ = writeln!(w, "Parameters:");
    let _ = writeln!(w, "  CodeBucket:\n    Type: String\n    Description: {}", q("the S3 bucket of the zip that holds `bootstrap`"));
    let _ = writeln!(w, "  CodeKey:\n    Type: String\n    Description: {}", q("the zip's key in CodeBucket (`tasks deploy` uploads it under its SHA-256)"));
    let _ = writeln!(w, "  CodeSha256:\n    Type: String\n    Default: \"unknown\"\n    Description: {}", q("the zip's SHA-256: a new one publishes a new version"));
    if has_schedules(layout) {
        let _ = writeln!(w, "  {SCHEDULES_PARAMETER}:\n    Type: String\n    Default: ENABLED\n    AllowedValues:\n      - ENABLED\n      - DISABLED");
        let _ = writeln!(w, "    Description: {}", q("whether the worker's schedules run (`tasks schedule` / `tasks unschedule`)"));
    }
    let _ = writeln!(w, "Resources:");
    table(w, layout.table.as_deref());
    payload_bucket(w, layout);
    let (table_ref, table_arn) = ("!Ref Responses", "!GetAtt Responses.Arn");
    let default_timeout = layout.functions[0].timeout.as_secs();
    // The failure queue: Lambda's records of every event of the functions. A
    // record the worker cannot end a call with (another event's) is left in
    // it and moves to the dead-letter queue after three receives, so that it
    // never blocks the rest. AWS advises a visibility timeout of six times
    // the function's timeout for an SQS event source.
    // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
    let _ = writeln!(w, "  FailedDeadLetters:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:\n      MessageRetentionPeriod: 1209600");
    let _ = writeln!(w, "  Failed:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:");
    let _ = writeln!(w, "      VisibilityTimeout: {}\n      MessageRetentionPeriod: 1209600", (default_timeout * 6).max(30));
    let _ = writeln!(w, "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt FailedDeadLetters.Arn\n        maxReceiveCount: 3");
    let _ = writeln!(w, "  SchedulerInvokes:\n    Type: AWS::IAM::Role\n    Properties:");
    let _ = writeln!(w, "      AssumeRolePolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Principal:\n              Service: scheduler.amazonaws.com\n            Action: sts:AssumeRole");
    // Only this account's schedules may use the role (the confused-deputy guard AWS advises).
    // https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html
    let _ = writeln!(w, "            Condition:\n              StringEquals:\n                aws:SourceAccount: !Ref AWS::AccountId");
    let _ = writeln!(w, "      Policies:\n        - PolicyName: invoke-worker\n          PolicyDocument:\n            Version: \"2012-10-17\"\n            Statement:\n              - Effect: Allow\n                Action: lambda:InvokeFunction");
    let _ = writeln!(w, "                Resource:\n{}", function_arns(layout.functions, 18));
    role(w, layout, table_arn);
    let groups: Vec<String> = layout.functions.iter().filter_map(|f| f.group.as_ref().map(|g| format!("{g}={}:{ALIAS}", f.name))).collect();
    for f in layout.functions {
        function(w, layout, f, table_ref, &groups);
    }
    // The failure records, read by the default function at its alias.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventsourcemapping.html
    let default = &layout.functions[0];
    let _ = writeln!(w, "  FailureRecords:\n    Type: AWS::Lambda::EventSourceMapping\n    DependsOn: WorkerAlias\n    Properties:");
    let _ = writeln!(w, "      EventSourceArn: !GetAtt Failed.Arn\n      FunctionName: !Sub \"{}:{ALIAS}\"\n      BatchSize: 10\n      FunctionResponseTypes:\n        - ReportBatchItemFailures", default.name);
    for s in layout.manifest["schedules"].as_array().into_iter().flatten() {
        let (task, expression, input) = (s["task"].as_str().unwrap_or_default(), s["expression"].as_str().unwrap_or_default(), s["input"].as_str().unwrap_or_default());
        let f = function_of(layout, task);
        schedule(w, &format!("Schedule{}", logical(task)), &format!("task {task}"), expression, input, &function_id(f));
    }
    if layout.keep_warm {
        for (i, k) in layout.manifest["keep_warm"].as_array().into_iter().flatten().enumerate() {
            let suffix = if i == 0 { String::new() } else { i.to_string() };
            let description = format!("keep {} instances warm", k["instances"]);
            schedule(w, &format!("KeepWarm{suffix}"), &description, k["every"].as_str().unwrap_or_default(), k["input"].as_str().unwrap_or_default(), "Worker");
        }
    }
    if layout.api_key {
        crate::deploy::api::resources(w);
    }
    // The functions' ARNs and the aliases' (Ref of an alias is its ARN).
    let _ = writeln!(w, "Outputs:\n  Function:\n    Value: !GetAtt Worker.Arn\n  Alias:\n    Value: !Ref WorkerAlias");
    for f in &layout.functions[1..] {
        let id = function_id(f);
        let _ = writeln!(w, "  {id}:\n    Value: !GetAtt {id}.Arn\n  {id}Alias:\n    Value: !Ref {id}Alias");
    }
    let _ = writeln!(w, "  ResponseTable:\n    Value: {table_ref}\n  PayloadBucket:\n    Value: !Ref Payloads\n  FailureQueue:\n    Value: !Ref Failed\n  FailureDeadLetters:\n    Value: !Ref FailedDeadLetters");
    if layout.api_key {
        crate::deploy::api::outputs(w);
    }
    t
}

/// The response table: on demand, TTL on `ttl`, its three indexes; kept when the stack goes.
fn table(w: &mut String, name: Option<&str>) {
    let _ = writeln!(w, "  Responses:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:");
    if let Some(name) = name {
        let _ = writeln!(w, "      TableName: {}", q(name));
    }
    let _ = writeln!(w, "      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:");
    for (name, ty) in [("id", "S"), ("failed_shard", "S"), ("updated_at_ms", "N"), ("parent", "S"), ("created_at_ms", "N"), ("listed_shard", "S")] {
        let _ = writeln!(w, "        - AttributeName: {name}\n          AttributeType: {ty}");
    }
    let _ = writeln!(w, "      KeySchema:\n        - AttributeName: id\n          KeyType: HASH");
    // The index of failed calls, sharded by day and projecting what a listing shows (see FAILED_INDEX).
    let _ = writeln!(w, "      GlobalSecondaryIndexes:\n        - IndexName: {FAILED_INDEX}");
    let _ = writeln!(w, "          KeySchema:\n            - AttributeName: failed_shard\n              KeyType: HASH\n            - AttributeName: updated_at_ms\n              KeyType: RANGE");
    let _ = writeln!(w, "          Projection:\n            ProjectionType: INCLUDE\n            NonKeyAttributes:");
    for a in FAILED_INDEX_ATTRIBUTES {
        let _ = writeln!(w, "              - {a}");
    }
    // The index of calls by the call that sent them, keys only (see PARENT_INDEX): `tasks tree`.
    let _ = writeln!(w, "        - IndexName: {PARENT_INDEX}");
    let _ = writeln!(w, "          KeySchema:\n            - AttributeName: parent\n              KeyType: HASH\n            - AttributeName: created_at_ms\n              KeyType: RANGE");
    let _ = writeln!(w, "          Projection:\n            ProjectionType: KEYS_ONLY");
    // The index of recent calls, keys only (see RECENT_INDEX): written with TASK_LIST_CALLS=true.
    let _ = writeln!(w, "        - IndexName: {RECENT_INDEX}");
    let _ = writeln!(w, "          KeySchema:\n            - AttributeName: listed_shard\n              KeyType: HASH\n            - AttributeName: created_at_ms\n              KeyType: RANGE");
    let _ = writeln!(w, "          Projection:\n            ProjectionType: KEYS_ONLY");
    let _ = writeln!(w, "      TimeToLiveSpecification:\n        AttributeName: ttl\n        Enabled: true");
}

/// The bucket of values too large for a message or an item
/// (`TASK_PAYLOAD_BUCKET`): private, its objects under `payloads/` expiring
/// a day after the response TTL (rounded up to days: a call's item lives
/// its TTL from when the call can no longer run). Kept when the stack goes,
/// like the table. A lifecycle rule's `Prefix` and `ExpirationInDays`:
/// <https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-s3-bucket-rule.html>
fn payload_bucket(w: &mut String, layout: &Layout<'_>) {
    let _ = writeln!(w, "  Payloads:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:");
    let _ = writeln!(w, "      PublicAccessBlockConfiguration:\n        BlockPublicAcls: true\n        BlockPublicPolicy: true\n        IgnorePublicAcls: true\n        RestrictPublicBuckets: true");
    let _ = writeln!(w, "      LifecycleConfiguration:\n        Rules:\n          - Id: expire-payloads\n            Status: Enabled\n            Prefix: {PAYLOAD_PREFIX}\n            ExpirationInDays: {}", payload_days(layout));
}

/// Days an object in the payload bucket is kept: the response TTL
/// (`TASK_RESPONSE_TTL_SECS` of the stage's environment, default a day) in
/// whole days, and one more.
fn payload_days(layout: &Layout<'_>) -> u64 {
    let ttl = layout.environment.get("TASK_RESPONSE_TTL_SECS").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(86_400);
    ttl.div_ceil(86_400) + 1
}

/// The functions' role: what the worker does, and no more.
fn role(w: &mut String, layout: &Layout<'_>, table_arn: &str) {
    let _ = writeln!(w, "  WorkerRole:\n    Type: AWS::IAM::Role\n    Properties:");
    let _ = writeln!(w, "      AssumeRolePolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Principal:\n              Service: lambda.amazonaws.com\n            Action: sts:AssumeRole");
    let _ = writeln!(w, "      Policies:\n        - PolicyName: worker\n          PolicyDocument:\n            Version: \"2012-10-17\"\n            Statement:");
    // Its own log groups only (what AWSLambdaBasicExecutionRole allows on every group).
    let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - logs:CreateLogStream\n                  - logs:PutLogEvents\n                Resource:");
    for f in layout.functions {
        let _ = writeln!(w, "                  - !Sub \"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{}:*\"", f.name);
    }
    // BatchGetItem: a group's counter shards and its children's outcomes, 100
    // keys a request (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
    let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - dynamodb:PutItem\n                  - dynamodb:UpdateItem\n                  - dynamodb:DeleteItem\n                  - dynamodb:GetItem\n                  - dynamodb:BatchGetItem\n                  - dynamodb:Query");
    let _ = writeln!(w, "                Resource:\n                  - {table_arn}\n                  - !Sub \"${{Responses.Arn}}/index/*\"");
    // The payload bucket: its objects only, written and read (no listing, no deleting).
    let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - s3:GetObject\n                  - s3:PutObject");
    let _ = writeln!(w, "                Resource: !Sub \"${{Payloads.Arn}}/{PAYLOAD_PREFIX}*\"");
    let _ = writeln!(w, "              - Effect: Allow\n                Action: lambda:InvokeFunction");
    let _ = writeln!(w, "                Resource:\n{}", function_arns(layout.functions, 18));
    let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - scheduler:CreateSchedule\n                  - scheduler:DeleteSchedule");
    let _ = writeln!(w, "                Resource: !Sub \"arn:${{AWS::Partition}}:scheduler:${{AWS::Region}}:${{AWS::AccountId}}:schedule/default/task-*\"");
    let _ = writeln!(w, "              - Effect: Allow\n                Action: iam:PassRole\n                Resource: !GetAtt SchedulerInvokes.Arn");
    // The failure queue: Lambda sends the records with the function's role
    // (an on-failure destination), and polls them with it (the event source).
    // https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
    let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - sqs:SendMessage\n                  - sqs:ReceiveMessage\n                  - sqs:DeleteMessage\n                  - sqs:ChangeMessageVisibility\n                  - sqs:GetQueueAttributes");
    let _ = writeln!(w, "                Resource: !GetAtt Failed.Arn");
    if layout.tracing {
        // X-Ray active tracing: the segments the function sends.
        // https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html
        let _ = writeln!(w, "              - Effect: Allow\n                Action:\n                  - xray:PutTraceSegments\n                  - xray:PutTelemetryRecords\n                Resource: \"*\"");
    }
}

/// One function with its log group, version, alias `live` and asynchronous invoke config.
fn function(w: &mut String, layout: &Layout<'_>, f: &FunctionSettings, table_ref: &str, groups: &[String]) {
    let id = function_id(f);
    let default = &layout.functions[0];
    let _ = writeln!(w, "  {id}Logs:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:");
    let _ = writeln!(w, "      LogGroupName: !Sub \"/aws/lambda/{}\"\n      RetentionInDays: {}", f.name, layout.log_retention_days);
    let mut props = String::new();
    let p = &mut props;
    let _ = writeln!(p, "      FunctionName: !Sub \"{}\"\n      Code:\n        S3Bucket: !Ref CodeBucket\n        S3Key: !Ref CodeKey", f.name);
    let _ = writeln!(p, "      Handler: bootstrap\n      Runtime: provided.al2023\n      Architectures:\n        - {}\n      Role: !GetAtt WorkerRole.Arn", layout.architecture);
    let _ = writeln!(p, "      Timeout: {}\n      MemorySize: {}", f.timeout.as_secs(), f.memory_mb);
    if let Some(n) = f.reserved_concurrency {
        let _ = writeln!(p, "      ReservedConcurrentExecutions: {n}");
    }
    if layout.tracing {
        let _ = writeln!(p, "      TracingConfig:\n        Mode: Active");
    }
    let _ = writeln!(p, "      Environment:\n        Variables:\n          TASK_RESPONSE_TABLE: {table_ref}\n          TASK_MAX_ATTEMPTS: \"3\"\n          TASK_SCHEDULER_ROLE_ARN: !GetAtt SchedulerInvokes.Arn\n          TASK_PAYLOAD_BUCKET: !Ref Payloads");
    // Every function sends a task of the default group to the default
    // function's alias, and one of a group to its group's (`TASK_FUNCTIONS`).
    let _ = writeln!(p, "          TASK_FUNCTION: !Sub \"{}:{ALIAS}\"", default.name);
    if !groups.is_empty() {
        let _ = writeln!(p, "          TASK_FUNCTIONS: !Sub {}", q(&groups.join(",")));
    }
    if layout.api_key {
        // A REST API puts its stage in each request's path (`/live/pies`), and
        // lambda_http keeps it there unless told otherwise: the app's routes
        // (`/pies`) would never match. Found by feeding AWS's sample REST event
        // to examples/http (tests/emulator.rs).
        let _ = writeln!(p, "          AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: \"true\"");
    }
    for (k, v) in layout.environment {
        let _ = writeln!(p, "          {k}: {}", q(v));
    }
    if !layout.tags.is_empty() {
        let _ = writeln!(p, "      Tags:");
        for (k, v) in layout.tags {
            let _ = writeln!(p, "        - Key: {}\n          Value: {}", q(k), q(v));
        }
    }
    let _ = writeln!(w, "  {id}:\n    Type: AWS::Lambda::Function\n    DependsOn: {id}Logs\n    Properties:\n{props}", props = props.trim_end());
    // A version is published when the code or the function's settings change
    // (its description changes, and with it the resource), and kept when the
    // next replaces it, so that `tasks rollback` can go back to it.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-version.html
    let _ = writeln!(w, "  {id}Version:\n    Type: AWS::Lambda::Version\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n    Properties:");
    let _ = writeln!(w, "      FunctionName: !Ref {id}\n      Description: !Sub \"code ${{CodeSha256}}, settings {}\"", short_hash(&props));
    let _ = writeln!(w, "  {id}Alias:\n    Type: AWS::Lambda::Alias\n    Properties:\n      FunctionName: !Ref {id}\n      FunctionVersion: !GetAtt {id}Version.Version\n      Name: {ALIAS}");
    // Lambda's retries of an event and where its record goes after the last,
    // for the alias every caller invokes.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventinvokeconfig.html
    let _ = writeln!(w, "  {id}AsyncConfig:\n    Type: AWS::Lambda::EventInvokeConfig\n    DependsOn: {id}Alias\n    Properties:\n      FunctionName: !Ref {id}\n      Qualifier: {ALIAS}");
    let _ = writeln!(w, "      MaximumRetryAttempts: 2\n      MaximumEventAgeInSeconds: 21600\n      DestinationConfig:\n        OnFailure:\n          Destination: !GetAtt Failed.Arn");
}

/// An EventBridge Scheduler schedule that invokes function `target`'s alias
/// with `input`, on or off with the `Schedules` parameter. No `Name`:
/// CloudFormation names it uniquely, so that two stacks live in one account.
/// <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-scheduler-schedule.html>
fn schedule(w: &mut String, id: &str, description: &str, expression: &str, input: &str, target: &str) {
    let _ = writeln!(w, "  {id}:\n    Type: AWS::Scheduler::Schedule\n    Properties:");
    let _ = writeln!(w, "      Description: {}\n      ScheduleExpression: {}\n      State: !Ref {SCHEDULES_PARAMETER}\n      FlexibleTimeWindow:\n        Mode: \"OFF\"", q(description), q(expression));
    let _ = writeln!(w, "      Target:\n        Arn: !Ref {target}Alias\n        RoleArn: !GetAtt SchedulerInvokes.Arn\n        Input: {}", q(input));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions() -> Vec<FunctionSettings> {
        let f = |group: Option<&str>, name: &str| FunctionSettings { group: group.map(str::to_owned), name: name.to_owned(), memory_mb: 128, timeout: std::time::Duration::from_secs(60), reserved_concurrency: None };
        vec![f(None, "w-dev"), f(Some("heavy"), "w-dev-heavy")]
    }

    fn layout<'a>(manifest: &'a Value, functions: &'a [FunctionSettings], none: &'a BTreeMap<String, String>) -> Layout<'a> {
        Layout { manifest, binary: "w", functions, architecture: "arm64", api_key: false, tracing: false, keep_warm: true, log_retention_days: 14, table: None, environment: none, tags: none }
    }

    #[test]
    fn logical_ids_are_alphanumeric() {
        assert_eq!(logical("worker::hourly_report"), "WorkerHourlyReport");
        assert_eq!(logical("pies.bake"), "PiesBake");
    }

    #[test]
    fn tracing_is_on_only_when_asked() {
        let manifest = serde_json::json!({"schedules": [], "keep_warm": []});
        let (f, none) = (functions(), BTreeMap::new());
        let on = render(&Layout { tracing: true, ..layout(&manifest, &f, &none) });
        assert!(on.contains("\n      TracingConfig:\n        Mode: Active\n") && on.contains("xray:PutTraceSegments"));
        assert!(!render(&layout(&manifest, &f, &none)).contains("Tracing"));
    }

    #[test]
    fn each_group_has_its_function_and_a_schedule_targets_its_task_s() {
        let manifest = serde_json::json!({
            "tasks": [{"name": "w::crunch", "function": "heavy"}, {"name": "w::tick"}],
            "schedules": [{"task": "w::crunch", "expression": "rate(1 day)", "input": "{}"}, {"task": "w::tick", "expression": "rate(1 hour)", "input": "{}"}],
            "keep_warm": []
        });
        let (f, none) = (functions(), BTreeMap::new());
        let t = render(&layout(&manifest, &f, &none));
        for expected in [
            "  FunctionHeavy:\n    Type: AWS::Lambda::Function",
            "FunctionName: !Sub \"w-dev-heavy\"",
            "TASK_FUNCTIONS: !Sub \"heavy=w-dev-heavy:live\"",
            "TASK_FUNCTION: !Sub \"w-dev:live\"",
            "  ScheduleWCrunch:\n    Type: AWS::Scheduler::Schedule",
            "function:w-dev-heavy:*",
        ] {
            assert!(t.contains(expected), "the template lacks {expected:?}");
        }
        let crunch = &t[t.find("  ScheduleWCrunch:").unwrap_or(0)..];
        assert!(crunch.contains("Arn: !Ref FunctionHeavyAlias"), "w::crunch's schedule invokes the heavy function");
        let tick = &t[t.find("  ScheduleWTick:").unwrap_or(0)..];
        assert!(tick.contains("Arn: !Ref WorkerAlias"));
    }

    #[test]
    fn a_change_of_settings_publishes_a_new_version() {
        let manifest = serde_json::json!({"schedules": [], "keep_warm": []});
        let none = BTreeMap::new();
        let mut f = functions();
        let before = render(&layout(&manifest, &f, &none));
        f[0].memory_mb = 512;
        let after = render(&layout(&manifest, &f, &none));
        let description = |t: &str| t.lines().find(|l| l.contains("Description: !Sub \"code ${CodeSha256}")).map(str::to_owned);
        assert!(description(&before).is_some());
        assert_ne!(description(&before), description(&after));
    }
}
