//! The road to AWS end to end, against moto's server (an AWS implementation
//! nobody here wrote): `tasks init` in a workspace of its own, then
//! `deploy --binary`, a second deploy, `update`, `rollback`, `package`,
//! `unschedule`/`schedule` and `undeploy`, each followed by what moto holds,
//! for a stage with a function of its own for a task group (two functions
//! from one zip, updated and rolled back together).
//!
//! What moto 5.2.6 lacks, named where the test meets it (read in moto's
//! source, `moto/cloudformation/parsing.py`: a type it has no model of is
//! "not supported by moto's CloudFormation implementation" and skipped):
//! - AWS::Lambda::Alias, AWS::Lambda::EventInvokeConfig and
//!   AWS::Scheduler::Schedule are skipped, so a stack has no alias `live`,
//!   no on-failure destination and no schedules. The failure queue's event
//!   source mapping on `NAME:live` then fails the whole deploy, which is
//!   how the test sees a failed deploy reported; the rest of the cycle
//!   deploys the packaged template with the mapping on the function itself
//!   (`--template`), and makes `live` with Lambda's CreateAlias, as
//!   CloudFormation would have on AWS.
//! - a failed change set is not rolled back: what it made stays.
//! - a change set is compared with the parameters the stack was created
//!   with, not its current ones (`Stack.has_parameters`): turning the
//!   schedules back to what the stack was created with is "no change" to
//!   moto, unless another parameter (here the second deploy's code) moved
//!   on. `tasks schedule` re-reads the parameter and says when it did not
//!   change.
//! - an AWS::S3::Bucket is made from its BucketEncryption and Tags only:
//!   the payload bucket has no lifecycle rule on moto (the rule is asserted
//!   in the template, tests/template.rs).

mod common;

use std::path::Path;

use common::moto::Moto;
use common::task_local;
use common::workspace::workspace;

/// The environment of `tasks` against moto at `endpoint`.
fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

struct Stage<'a> {
    dir: &'a Path,
    env: Vec<(&'static str, String)>,
}

impl Stage<'_> {
    fn tasks(&self, args: &[&str]) -> (i32, String, String) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, out, err) = common::workspace::tasks(self.dir, args, &env);
        eprintln!("$ tasks {}\n{out}{err}(exit {code})", args.join(" "));
        (code, out, err)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_stage_deploys_updates_rolls_back_and_undeploys_against_moto() {
    let moto = Moto::start();
    let dir = workspace("deploy");
    let stage = Stage { dir: &dir, env: env(&moto.endpoint) };
    let sdk = common::sdk_config(&moto.endpoint);
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());

    let (code, out, _) = stage.tasks(&["init"]);
    assert_eq!(code, 0);
    assert!(out.contains("next: tasks deploy dev"), "{out}");
    let settings = std::fs::read_to_string(dir.join("Tasks.toml")).expect("Tasks.toml");
    let bucket = settings.lines().find_map(|l| l.strip_prefix("bucket = \"")).and_then(|l| l.split('"').next()).expect("a bucket").to_owned();
    // A second stage, for the deploy that fails, with names of its own; and
    // a function of its own for the group `heavy` (`#[task(function = "heavy")]`).
    std::fs::write(dir.join("Tasks.toml"), format!("{settings}\n[stages.broken]\nextends = \"dev\"\nfunction_name = \"worker-broken\"\n\n[stages.dev.functions.heavy]\nmemory = 512\ntimeout = \"5m\"\n")).expect("write");
    let worker = task_local::built("examples/worker");

    common::block_on(async {
        // The generated template on moto: the mapping on `worker-broken:live`
        // finds no alias (moto skips AWS::Lambda::Alias), and the deploy says so.
        let (code, _, err) = stage.tasks(&["deploy", "broken", "--binary", s(&worker)]);
        assert_eq!(code, 2);
        assert!(err.contains(&format!("created bucket {bucket}")), "the bucket is made when missing: {err}");
        assert!(err.contains("worker-broken:live"), "the reason names what was missing: {err}");
        assert!(err.contains("stack `worker-broken` is REVIEW_IN_PROGRESS"), "the deploy says the state it left: {err}");

        // The package, and its template with the mapping on the function (moto's gap).
        let (code, out, _) = stage.tasks(&["package", "dev", "-o", "code.zip", "--binary", s(&worker)]);
        assert_eq!(code, 0);
        assert!(out.contains(&format!("s3://{bucket}/worker-dev/")), "{out}");
        let template = std::fs::read_to_string(dir.join("code.template.yaml")).expect("the template");
        let edited = template
            .replace("    DependsOn: WorkerAlias\n    Properties:\n      EventSourceArn", "    Properties:\n      EventSourceArn")
            .replace("FunctionName: !Sub \"worker-dev:live\"\n      BatchSize", "FunctionName: !Ref Worker\n      BatchSize");
        assert_ne!(edited, template, "the mapping's lines are in the template");
        std::fs::write(dir.join("moto.template.yaml"), &edited).expect("write");

        // deploy: the bucket made, the zip under its hash, the stack created.
        let (code, out, err) = stage.tasks(&["deploy", "dev", "--binary", s(&worker), "--template", "moto.template.yaml"]);
        assert!(err.contains(&format!("uploaded s3://{bucket}/worker-dev/")) && err.contains("creating stack worker-dev"), "{err}");
        assert!(err.contains("CREATE_COMPLETE"), "the stack's events are shown: {err}");
        assert!(out.contains("worker-dev: no alias `live`"), "the missing alias is named: {out}");
        assert_eq!(code, 2, "a stage without its alias is not consistent");
        let stack = cfn.describe_stacks().stack_name("worker-dev").send().await.expect("the stack");
        let stack = &stack.stacks()[0];
        assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
        let key = stack.parameters().iter().find(|p| p.parameter_key() == Some("CodeKey")).and_then(|p| p.parameter_value()).expect("CodeKey").to_owned();
        assert!(key.starts_with("worker-dev/") && key.ends_with(".zip"), "{key}");
        s3.head_object().bucket(&bucket).key(&key).send().await.expect("the zip is in the bucket under its key");
        let resources: Vec<String> = cfn
            .list_stack_resources()
            .stack_name("worker-dev")
            .send()
            .await
            .expect("resources")
            .stack_resource_summaries()
            .iter()
            .map(|r| format!("{}:{}", r.logical_resource_id().unwrap_or_default(), r.resource_type().unwrap_or_default()))
            .collect();
        for expected in ["Worker:AWS::Lambda::Function", "WorkerVersion:AWS::Lambda::Version", "Responses:AWS::DynamoDB::Table", "Failed:AWS::SQS::Queue", "FailureRecords:AWS::Lambda::EventSourceMapping", "FunctionHeavy:AWS::Lambda::Function", "FunctionHeavyVersion:AWS::Lambda::Version"] {
            assert!(resources.iter().any(|r| r == expected), "the stack holds {expected}: {resources:?}");
        }
        // The payload bucket. Its lifecycle rule (objects expire a day after
        // the response TTL) is asserted in the template (tests/template.rs):
        // moto's CloudFormation makes the bucket from BucketEncryption and
        // Tags only (moto/s3/models.py, `create_from_cloudformation_json`),
        // so it has no lifecycle configuration here to read back.
        let payloads = physical_id(&cfn, "Payloads").await;
        s3.head_bucket().bucket(&payloads).send().await.expect("the payload bucket");
        s3.put_object().bucket(&payloads).key("payloads/call-1/result-00").body(b"\"kept\"".to_vec().into()).send().await.expect("an object to empty");
        for f in FUNCTIONS {
            assert_eq!(versions(&lambda, f).await, vec![1], "the stack published version 1 of {f}");
            // What CloudFormation makes on AWS, made by hand on moto.
            lambda.create_alias().function_name(f).name("live").function_version("1").send().await.expect("create alias live");
        }
        let memory = |f: &'static str| {
            let lambda = lambda.clone();
            async move { lambda.get_function_configuration().function_name(f).send().await.expect("the function").memory_size() }
        };
        assert_eq!((memory("worker-dev").await, memory("worker-dev-heavy").await), (Some(128), Some(512)), "a function per group, each with its settings");
        ddb.put_item()
            .table_name("worker-dev-responses")
            .item("id", aws_sdk_dynamodb::types::AttributeValue::S("call-1".into()))
            .item("status", aws_sdk_dynamodb::types::AttributeValue::S("complete".into()))
            .send()
            .await
            .expect("a call's item in the stage's table");

        // update: new code, version 2, `live` on it.
        let newer = dir.join("bootstrap-2");
        let mut bytes = std::fs::read(&worker).expect("the worker");
        bytes.extend_from_slice(b"another build");
        std::fs::write(&newer, bytes).expect("write");
        std::fs::set_permissions(&newer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let (code, out, _) = stage.tasks(&["update", "dev", "--binary", s(&newer)]);
        assert_eq!(code, 0);
        for f in FUNCTIONS {
            assert!(out.contains(&format!("{f}: `live` now serves version 2 (was 1)")), "{out}");
            assert_eq!(versions(&lambda, f).await, vec![1, 2]);
            assert_eq!(alias(&lambda, f).await, "2");
        }

        // rollback: back to 1, and no further.
        let (code, out, _) = stage.tasks(&["rollback", "dev"]);
        assert_eq!(code, 0);
        assert_eq!(out.matches("`live` now serves version 1 (was 2), published ").count(), 2, "{out}");
        for f in FUNCTIONS {
            assert_eq!(alias(&lambda, f).await, "1");
        }
        let (code, _, err) = stage.tasks(&["rollback", "dev"]);
        assert_eq!(code, 2);
        assert!(err.contains("no version 1 before version 1"), "{err}");
        for f in FUNCTIONS {
            assert_eq!(alias(&lambda, f).await, "1", "a refused rollback moves nothing");
        }

        // A second deploy updates the stack: the new code's key.
        let (code, out, err) = stage.tasks(&["deploy", "dev", "--binary", s(&newer), "--template", "moto.template.yaml"]);
        assert!(err.contains("updating stack worker-dev") && err.contains("UPDATE_COMPLETE"), "{err}");
        assert_eq!(code, 2, "still no alias `live` made by the stack: {out}");
        let key = parameter(&cfn, "CodeKey").await;
        assert!(err.contains(&format!("uploaded s3://{bucket}/{key}")) || err.contains(&format!("s3://{bucket}/{key} is there already")), "the stack names the new zip: {key}");
        assert_eq!(cfn.describe_stacks().stack_name("worker-dev").send().await.expect("the stack").stacks()[0].stack_status().map(|s| s.as_str()), Some("UPDATE_COMPLETE"));

        // unschedule / schedule: the stack's parameter, its template kept.
        let (code, out, _) = stage.tasks(&["unschedule", "dev"]);
        assert_eq!(code, 0);
        assert!(out.contains("schedules DISABLED"), "{out}");
        assert!(out.contains("lists no AWS::Scheduler::Schedule"), "moto's gap is named: {out}");
        assert_eq!(parameter(&cfn, "Schedules").await, "DISABLED");
        assert_eq!(parameter(&cfn, "CodeKey").await, key, "the other parameters are kept");
        let (code, out, _) = stage.tasks(&["schedule", "dev"]);
        assert_eq!(code, 0);
        assert!(out.contains("schedules ENABLED"), "{out}");
        assert_eq!(parameter(&cfn, "Schedules").await, "ENABLED");

        // undeploy: no stack; the table kept with its items, and said so.
        let (code, out, _) = stage.tasks(&["undeploy", "dev", "--remove-queues", "--remove-payloads"]);
        assert_eq!(code, 0);
        assert!(out.contains("kept table worker-dev-responses") && out.contains("kept log group /aws/lambda/worker-dev"), "{out}");
        assert_eq!(out.matches(": deleted").count(), 4, "the stack, its two queues and the emptied payload bucket: {out}");
        assert!(s3.head_bucket().bucket(&payloads).send().await.is_err(), "the payload bucket is gone");
        let queues = sqs.list_queues().queue_name_prefix("worker-dev-").send().await.expect("queues");
        assert!(queues.queue_urls().is_empty(), "the queues are gone: {:?}", queues.queue_urls());
        let gone = cfn.describe_stacks().stack_name("worker-dev").send().await;
        assert!(gone.is_err() || gone.as_ref().is_ok_and(|o| o.stacks().iter().all(|s| s.stack_status().map(|s| s.as_str()) == Some("DELETE_COMPLETE"))), "no stack: {gone:?}");
        let item = ddb.get_item().table_name("worker-dev-responses").key("id", aws_sdk_dynamodb::types::AttributeValue::S("call-1".into())).send().await.expect("the kept table");
        assert!(item.item().is_some(), "the table kept its items");
        let (code, _, err) = stage.tasks(&["undeploy", "dev"]);
        assert_eq!(code, 2);
        assert!(err.contains("not deployed"), "{err}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_credentials_no_cargo_lambda_and_an_unknown_stage_are_named_before_anything_is_done() {
    let moto = Moto::start();
    let dir = workspace("deploy-errors");
    let stage = Stage { dir: &dir, env: env(&moto.endpoint) };
    assert_eq!(stage.tasks(&["init"]).0, 0);

    let (code, _, err) = stage.tasks(&["deploy", "prod"]);
    assert_eq!(code, 2);
    assert!(err.contains("no stage `prod`") && err.contains("dev"), "{err}");

    // No credentials anywhere aws-config looks.
    let nowhere = dir.join("no-such-file");
    let bare = Stage {
        dir: &dir,
        env: vec![
            ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", String::new()),
            ("AWS_SECRET_ACCESS_KEY", String::new()),
            ("AWS_SESSION_TOKEN", String::new()),
            ("AWS_PROFILE", String::new()),
            ("AWS_CONFIG_FILE", s(&nowhere).to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", s(&nowhere).to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ],
    };
    let (code, _, err) = bare.tasks(&["deploy", "dev", "--binary", s(&task_local::built("examples/worker"))]);
    assert_eq!(code, 2);
    assert!(err.contains("no AWS credentials") && err.contains("nothing was built or deployed"), "{err}");

    // No cargo-lambda on PATH (only cargo), and no --binary: how to get it.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let cargo = std::process::Command::new("sh").args(["-c", "command -v cargo"]).output().expect("which cargo");
    let cargo = String::from_utf8_lossy(&cargo.stdout).trim().to_owned();
    std::os::unix::fs::symlink(&cargo, bin.join("cargo")).expect("link cargo");
    let mut no_lambda = env(&moto.endpoint);
    no_lambda.push(("PATH", s(&bin).to_owned()));
    no_lambda.push(("CARGO_HOME", std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()))));
    let stage = Stage { dir: &dir, env: no_lambda };
    let (code, _, err) = stage.tasks(&["deploy", "dev"]);
    assert_eq!(code, 2);
    assert!(err.contains("pip install cargo-lambda") && err.contains("cargo install cargo-lambda") && err.contains("--binary"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stage's functions: the default one and group `heavy`'s.
const FUNCTIONS: [&str; 2] = ["worker-dev", "worker-dev-heavy"];

/// The published versions of function `f`.
async fn versions(lambda: &aws_sdk_lambda::Client, f: &str) -> Vec<u64> {
    let out = lambda.list_versions_by_function().function_name(f).send().await.expect("versions");
    let mut v: Vec<u64> = out.versions().iter().filter_map(|v| v.version()?.parse().ok()).collect();
    v.sort_unstable();
    v
}

/// The version `live` of function `f` serves.
async fn alias(lambda: &aws_sdk_lambda::Client, f: &str) -> String {
    lambda.get_alias().function_name(f).name("live").send().await.expect("alias live").function_version().unwrap_or_default().to_owned()
}

/// A parameter of stack worker-dev.
async fn parameter(cfn: &aws_sdk_cloudformation::Client, key: &str) -> String {
    let out = cfn.describe_stacks().stack_name("worker-dev").send().await.expect("the stack");
    out.stacks()[0].parameters().iter().find(|p| p.parameter_key() == Some(key)).and_then(|p| p.parameter_value()).unwrap_or_default().to_owned()
}

/// The physical id of the stack `worker-dev`'s resource `logical`.
async fn physical_id(cfn: &aws_sdk_cloudformation::Client, logical: &str) -> String {
    let found = cfn.describe_stack_resource().stack_name("worker-dev").logical_resource_id(logical).send().await.expect("the resource");
    found.stack_resource_detail().and_then(|d| d.physical_resource_id()).expect("its physical id").to_owned()
}
