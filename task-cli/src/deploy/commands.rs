//! The commands over a stage of `Tasks.toml`: `package` (the zip and its
//! template, not deployed), `deploy`, `update`, `rollback`, `undeploy`,
//! `schedule` and `unschedule`.

use std::path::Path;

use super::aws::Aws;
use super::code;
use super::settings::{Settings, Stage};
use super::stack::{self, Applied, Param, Template};
use super::versions;
use crate::cli::{DeployArgs, PackageArgs, RollbackArgs, StageArgs, UndeployArgs, UpdateArgs};
use crate::template::{ALIAS, Layout, SCHEDULES_PARAMETER};
use crate::{Exit, Problem};

/// Tasks.toml of the directory the command runs in (or above it).
fn settings() -> Result<Settings, Problem> {
    let here = std::env::current_dir().map_err(|e| Problem(format!("no current directory: {e}")))?;
    Settings::find(&here)
}

/// The zip of `bootstrap`, its SHA-256, and its key in the stage's bucket.
fn zipped(stage: &Stage, bootstrap: &Path) -> Result<(Vec<u8>, String, String), Problem> {
    let zip = code::zip(bootstrap)?;
    let hash = code::sha256_hex(&zip);
    let key = format!("{}/{hash}.zip", stage.stack());
    Ok((zip, hash, key))
}

/// Upload the zip, saying whether it was already there.
async fn upload(aws: &Aws, stage: &Stage, zip: Vec<u8>, key: &str) -> Result<(), Problem> {
    let size = zip.len();
    if aws.upload(&stage.bucket, key, zip).await? {
        eprintln!("uploaded s3://{}/{key} ({size} bytes)", stage.bucket);
    } else {
        eprintln!("s3://{}/{key} is there already (the same bytes)", stage.bucket);
    }
    Ok(())
}

/// Whether `template` declares parameter `name` (a line `  NAME:` under `Parameters:`).
fn declares(template: &str, name: &str) -> bool {
    let parameters = template.split("\nResources:").next().unwrap_or_default();
    parameters.lines().any(|l| l == format!("  {name}:"))
}

/// A change of stack `name` that ended in `status`: the first resource that
/// failed with CloudFormation's reason, and what the state means.
fn failed(what: &str, name: &str, status: &str, failure: Option<String>, stage: &Stage) -> Problem {
    let at = failure.map(|f| format!(" at {f}")).unwrap_or_default();
    Problem(format!("{what} failed{at}; stack `{name}` is {status}: {}", stack::explain(status, &stage.name)))
}

fn schedules_value(on: bool) -> &'static str {
    if on { "ENABLED" } else { "DISABLED" }
}

/// The template of `stage` for `manifest`, its table its own and named.
pub(crate) fn stage_template(stage: &Stage, manifest: &serde_json::Value) -> String {
    crate::template::render(&Layout {
        manifest,
        binary: stage.binary.name(),
        functions: &stage.functions,
        architecture: &stage.architecture,
        api_key: stage.api_key,
        tracing: stage.tracing,
        keep_warm: stage.keep_warm,
        log_retention_days: stage.log_retention_days,
        table: Some(stage.table.clone()),
        environment: &stage.environment,
        tags: &stage.tags,
    })
}

/// `code.zip` → `code.template.yaml`, beside it.
fn template_path(zip: &Path) -> std::path::PathBuf {
    let stem = zip.file_stem().map_or_else(|| "code".into(), |s| s.to_string_lossy().into_owned());
    zip.with_file_name(format!("{stem}.template.yaml"))
}

pub(crate) async fn package(a: PackageArgs) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let bootstrap = code::bootstrap(stage, a.code.binary.as_deref())?;
    let manifest = code::manifest(stage, &bootstrap, a.code.worker.as_deref())?;
    let (zip, hash, key) = zipped(stage, &bootstrap)?;
    let template = stage_template(stage, &manifest);
    let template_at = template_path(&a.output);
    std::fs::write(&a.output, &zip).map_err(|e| Problem(format!("cannot write {}: {e}", a.output.display())))?;
    std::fs::write(&template_at, template).map_err(|e| Problem(format!("cannot write {}: {e}", template_at.display())))?;
    println!("{}: {} bytes, SHA-256 {hash}", a.output.display(), zip.len());
    println!("{}: the stack of stage `{}` ({} function(s))", template_at.display(), stage.name, stage.functions.len());
    let mut aws = String::new();
    for (flag, value) in [("--region", &stage.region), ("--profile", &stage.profile)] {
        if let Some(v) = value {
            aws.push_str(&format!(" {flag} {v}"));
        }
    }
    println!("to deploy them without tasks (or with `sam deploy`, which takes the same template and parameters):");
    println!("  aws{aws} s3 cp {} s3://{}/{key}", a.output.display(), stage.bucket);
    println!(
        "  aws{aws} cloudformation deploy --stack-name {} --template-file {} --capabilities CAPABILITY_IAM --parameter-overrides CodeBucket={} CodeKey={key} CodeSha256={hash}{}",
        stage.stack(),
        template_at.display(),
        stage.bucket,
        // The stage's schedules off after a deploy (`schedules = false`).
        if stage.schedules { "" } else { " Schedules=DISABLED" }
    );
    Ok(Exit::Complete)
}

/// `tasks deploy STAGE`: build, upload, create or update the stack through
/// a change set, show its events, its outputs and aliases, then check it.
pub(crate) async fn deploy(a: DeployArgs) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let name = stage.stack();
    let aws = Aws::connect(stage).await?;
    let existing = stack::describe(&aws.cfn, name).await?;
    if let Some(s) = existing.as_ref().filter(|s| s.blocks_deploy()) {
        return Err(Problem(format!("stack `{name}` is {}: {}; nothing was built or deployed", s.status, stack::explain(&s.status, &stage.name))));
    }
    let bootstrap = code::bootstrap(stage, a.code.binary.as_deref())?;
    let manifest = code::manifest(stage, &bootstrap, a.code.worker.as_deref())?;
    let template = match &a.template {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Problem(format!("--template {}: {e}", path.display())))?,
        None => stage_template(stage, &manifest),
    };
    let (zip, hash, key) = zipped(stage, &bootstrap)?;
    upload(&aws, stage, zip, &key).await?;
    let create = existing.as_ref().is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
    let mut params = vec![("CodeBucket", Param::Value(stage.bucket.clone())), ("CodeKey", Param::Value(key)), ("CodeSha256", Param::Value(hash))];
    if declares(&template, SCHEDULES_PARAMETER) {
        params.push((SCHEDULES_PARAMETER, Param::Value(schedules_value(stage.schedules).to_owned())));
    }
    eprintln!("{} stack {name} ({})", if create { "creating" } else { "updating" }, aws.region);
    match stack::apply(&aws.cfn, name, create, Template::Body(&template), params).await {
        Ok(Applied::Unchanged) => eprintln!("stack {name}: no change (this code and these settings are deployed)"),
        Ok(Applied::Ran { status, .. }) if status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE" => {}
        Ok(Applied::Ran { status, failure }) => {
            return Err(failed(&format!("the deploy of stage `{}`", stage.name), name, &status, failure, stage));
        }
        Err(Problem(why)) => {
            let left = match stack::describe(&aws.cfn, name).await {
                Ok(Some(s)) => format!("stack `{name}` is {}: {}", s.status, stack::explain(&s.status, &stage.name)),
                Ok(None) => format!("there is no stack `{name}`"),
                Err(Problem(e)) => e,
            };
            return Err(Problem(format!("{why}; {left}")));
        }
    }
    let state = stack::serving(&aws.cfn, name, &stage.name).await?;
    for (k, v) in &state.outputs {
        println!("{k}: {v}");
    }
    // Callers and schedules invoke `live`: say what it serves, or that it is missing.
    let mut exit = Exit::Complete;
    for f in &stage.functions {
        match versions::live(&aws.lambda, &f.name).await? {
            Some(v) => println!("{}: `{ALIAS}` serves version {v}", f.name),
            None => {
                println!("{}: no alias `{ALIAS}`: the stack made none, and callers that invoke it fail (an implementation without AWS::Lambda::Alias in CloudFormation?)", f.name);
                exit = Exit::Inconsistent;
            }
        }
    }
    let worker = crate::check::WorkerManifest { path: bootstrap, manifest: Some(manifest) };
    let report = crate::check::check_report(&aws.sdk, &stage.default_function().name, Some(&worker)).await?;
    report.print(true);
    Ok(exit.max(report.exit()))
}

/// `tasks update STAGE`: new code on each function, a version published
/// from it, and `live` moved to it. Should one function fail, those already
/// moved go back, so that the stage serves one code.
pub(crate) async fn update(a: UpdateArgs) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let aws = Aws::connect(stage).await?;
    stack::serving(&aws.cfn, stage.stack(), &stage.name).await?;
    let lives = versions::live_all(&aws.lambda, stage.functions.iter().map(|f| f.name.as_str())).await?;
    let bootstrap = code::bootstrap(stage, a.binary.as_deref())?;
    let (zip, hash, key) = zipped(stage, &bootstrap)?;
    upload(&aws, stage, zip, &key).await?;
    let description = format!("code {hash}, tasks update");
    let mut moved: Vec<(&str, u64)> = Vec::new();
    for (name, from) in &lives {
        let step = async {
            let v = versions::publish_code(&aws.lambda, name, &stage.bucket, &key, &description).await?;
            versions::point(&aws.lambda, name, v).await?;
            Ok::<u64, Problem>(v)
        };
        match step.await {
            Ok(v) => {
                println!("{name}: `{ALIAS}` now serves version {v} (was {from})");
                moved.push((name, *from));
            }
            Err(Problem(why)) => {
                for (back, was) in &moved {
                    if versions::point(&aws.lambda, back, *was).await.is_ok() {
                        eprintln!("{back}: `{ALIAS}` moved back to version {was}");
                    }
                }
                return Err(Problem(format!("{why}; `{ALIAS}` serves what it served before on every function of stage `{}`", stage.name)));
            }
        }
    }
    println!("the stack still names the code of its last deploy; `tasks deploy {}` makes them one again", stage.name);
    Ok(Exit::Complete)
}

/// `tasks rollback STAGE -n N`: `live` of each function N published versions back.
pub(crate) async fn rollback(a: RollbackArgs) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let aws = Aws::connect(stage).await?;
    stack::serving(&aws.cfn, stage.stack(), &stage.name).await?;
    let lives = versions::live_all(&aws.lambda, stage.functions.iter().map(|f| f.name.as_str())).await?;
    // Every target is found before any alias moves.
    let mut targets = Vec::new();
    for (name, from) in lives {
        let published = versions::published(&aws.lambda, name).await?;
        let to = versions::back(&published, from, a.n, name)?.clone();
        targets.push((name, from, to));
    }
    for (name, from, to) in &targets {
        versions::point(&aws.lambda, name, to.number).await?;
        let what = if to.description.is_empty() { String::new() } else { format!(": {}", to.description) };
        println!("{name}: `{ALIAS}` now serves version {} (was {from}), published {}{what}", to.number, to.published);
    }
    Ok(Exit::Complete)
}

/// `tasks undeploy STAGE`: delete the stack; say what it kept (the table,
/// log groups and queues) and how to remove it, removing what was asked
/// (`--remove-table`, `--remove-logs`, `--remove-queues`).
pub(crate) async fn undeploy(a: UndeployArgs) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let name = stage.stack();
    let aws = Aws::connect(stage).await?;
    let Some(state) = stack::describe(&aws.cfn, name).await? else {
        return Err(Problem(format!("stage `{}` is not deployed (no stack `{name}`): nothing to undeploy", stage.name)));
    };
    let resources = stack::resources(&aws.cfn, name).await?;
    eprintln!("deleting stack {name} ({})", aws.region);
    let (status, failure) = stack::delete(&aws.cfn, &state).await?;
    if status != "DELETE_COMPLETE" {
        return Err(failed(&format!("the deletion of stack `{name}`"), name, &status, failure, stage));
    }
    println!("stack {name}: deleted");
    let kinds = [
        (Kept::Table, a.remove_table, "--remove-table"),
        (Kept::LogGroup, a.remove_logs, "--remove-logs"),
        (Kept::Queue, a.remove_queues, "--remove-queues"),
        (Kept::Bucket, a.remove_payloads, "--remove-payloads"),
    ];
    for (kind, remove, flag) in kinds {
        for (_, _, id) in resources.iter().filter(|(t, _, id)| t == kind.resource_type() && !id.is_empty()) {
            if remove {
                kind.delete(&aws.sdk, id).await.map_err(|why| Problem(format!("the stack is deleted, but not {} {id}: {why}", kind.name())))?;
                println!("{} {id}: deleted", kind.name());
            } else {
                println!("kept {} {id}{}: `{}` deletes it (`{flag}` does, with the stack)", kind.name(), kind.holding(), kind.command(id));
            }
        }
    }
    Ok(Exit::Complete)
}

/// What a stack keeps when it is deleted (`DeletionPolicy: Retain`).
#[derive(Clone, Copy)]
enum Kept {
    Table,
    LogGroup,
    Queue,
    Bucket,
}

impl Kept {
    fn resource_type(self) -> &'static str {
        match self {
            Kept::Table => "AWS::DynamoDB::Table",
            Kept::LogGroup => "AWS::Logs::LogGroup",
            Kept::Queue => "AWS::SQS::Queue",
            Kept::Bucket => "AWS::S3::Bucket",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kept::Table => "table",
            Kept::LogGroup => "log group",
            Kept::Queue => "queue",
            Kept::Bucket => "bucket",
        }
    }

    /// What the user would lose with it.
    fn holding(self) -> &'static str {
        match self {
            Kept::Table => " (every call's state and result)",
            Kept::LogGroup => "",
            Kept::Queue => " and the failure records in it",
            Kept::Bucket => " (arguments and results too large for the table, until they expire)",
        }
    }

    /// The AWS CLI command that deletes `id`.
    fn command(self, id: &str) -> String {
        match self {
            Kept::Table => format!("aws dynamodb delete-table --table-name {id}"),
            Kept::LogGroup => format!("aws logs delete-log-group --log-group-name {id}"),
            Kept::Queue => format!("aws sqs delete-queue --queue-url {id}"),
            Kept::Bucket => format!("aws s3 rb s3://{id} --force"),
        }
    }

    /// Delete `id` (a physical id: the table's name, the group's name, the queue's URL).
    async fn delete(self, sdk: &aws_config::SdkConfig, id: &str) -> Result<(), String> {
        use crate::deployed::sdk_error;
        match self {
            Kept::Table => aws_sdk_dynamodb::Client::new(sdk).delete_table().table_name(id).send().await.map(drop).map_err(|e| sdk_error(&e)),
            Kept::LogGroup => aws_sdk_cloudwatchlogs::Client::new(sdk).delete_log_group().log_group_name(id).send().await.map(drop).map_err(|e| sdk_error(&e)),
            Kept::Queue => aws_sdk_sqs::Client::new(sdk).delete_queue().queue_url(id).send().await.map(drop).map_err(|e| sdk_error(&e)),
            Kept::Bucket => empty_and_delete(sdk, id).await,
        }
    }
}

/// Delete bucket `bucket` after every object in it (S3 deletes only an empty bucket).
async fn empty_and_delete(sdk: &aws_config::SdkConfig, bucket: &str) -> Result<(), String> {
    use crate::deployed::sdk_error;
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s3 = crate::deploy::aws::s3_client(sdk);
    loop {
        let listed = s3.list_objects_v2().bucket(bucket).send().await.map_err(|e| sdk_error(&e))?;
        let keys: Vec<ObjectIdentifier> = listed.contents().iter().filter_map(|o| ObjectIdentifier::builder().set_key(o.key().map(str::to_owned)).build().ok()).collect();
        if keys.is_empty() {
            break;
        }
        let delete = Delete::builder().set_objects(Some(keys)).build().map_err(|e| e.to_string())?;
        s3.delete_objects().bucket(bucket).delete(delete).send().await.map_err(|e| sdk_error(&e))?;
    }
    s3.delete_bucket().bucket(bucket).send().await.map(drop).map_err(|e| sdk_error(&e))
}

/// `tasks schedule STAGE` (`on`) and `tasks unschedule STAGE`: the stack's
/// `Schedules` parameter changed, its template and other parameters kept.
/// The next `tasks deploy` sets it from the stage's `schedules` again.
pub(crate) async fn schedule(a: StageArgs, on: bool) -> Result<Exit, Problem> {
    let settings = settings()?;
    let stage = settings.stage(&a.stage)?;
    let name = stage.stack();
    let aws = Aws::connect(stage).await?;
    let state = stack::serving(&aws.cfn, name, &stage.name).await?;
    let want = schedules_value(on);
    match state.parameters.get(SCHEDULES_PARAMETER) {
        None => return Err(Problem(format!("stage `{}` has no schedules: its worker declares none, and keep-warm is off", stage.name))),
        Some(now) if now == want => println!("stack {name}: schedules are {want} already"),
        Some(_) => {
            let params = state.parameters.keys().map(|k| (k.as_str(), if k == SCHEDULES_PARAMETER { Param::Value(want.to_owned()) } else { Param::Previous })).collect();
            match stack::apply(&aws.cfn, name, false, Template::Previous, params).await? {
                Applied::Ran { status, failure } if status != "UPDATE_COMPLETE" => {
                    return Err(failed(&format!("turning the schedules of stage `{}` {}", stage.name, if on { "on" } else { "off" }), name, &status, failure, stage));
                }
                Applied::Ran { .. } => {}
                Applied::Unchanged => eprintln!("stack {name}: CloudFormation found nothing to change"),
            }
            // Said only when the stack shows it.
            let now = stack::serving(&aws.cfn, name, &stage.name).await?.parameters.get(SCHEDULES_PARAMETER).cloned().unwrap_or_default();
            if now != want {
                return Err(Problem(format!("stack `{name}`'s {SCHEDULES_PARAMETER} is still {now}, not {want}: the schedules of stage `{}` were not turned {}", stage.name, if on { "on" } else { "off" })));
            }
            println!("stack {name}: schedules {want}");
        }
    }
    let scheduler = aws_sdk_scheduler::Client::new(&aws.sdk);
    let schedules: Vec<_> = stack::resources(&aws.cfn, name).await?.into_iter().filter(|(t, _, _)| t == "AWS::Scheduler::Schedule").collect();
    if schedules.is_empty() {
        println!("the stack lists no AWS::Scheduler::Schedule (an implementation without them in CloudFormation?): no schedule's state to show");
    }
    for (_, logical, id) in schedules {
        match scheduler.get_schedule().name(&id).send().await {
            Ok(s) => println!("{logical} ({id}): {}", s.state().map(|s| s.as_str()).unwrap_or("?")),
            Err(e) => println!("{logical} ({id}): cannot read it: {}", crate::deployed::sdk_error(&e)),
        }
    }
    Ok(Exit::Complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_declared_only_under_parameters() {
        let t = "Parameters:\n  CodeKey:\n    Type: String\n  Schedules:\n    Type: String\nResources:\n  Other:\n";
        assert!(declares(t, "Schedules"));
        assert!(!declares(t, "Other"), "a resource is not a parameter");
        assert!(!declares(t, "Code"));
    }
}
