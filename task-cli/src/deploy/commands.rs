//! The commands over a stage of `Tasks.toml`. Today: `tasks package`, the
//! zip and its template without deploying.

use std::path::Path;

use super::code;
use super::settings::{Settings, Stage};
use crate::cli::PackageArgs;
use crate::template::Layout;
use crate::{Exit, Problem};

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
    let here = std::env::current_dir().map_err(|e| Problem(format!("no current directory: {e}")))?;
    let settings = Settings::find(&here)?;
    let stage = settings.stage(&a.stage)?;
    let bootstrap = code::bootstrap(stage, a.binary.as_deref())?;
    let manifest = code::manifest(stage, &bootstrap, a.worker.as_deref())?;
    let zip = code::zip(&bootstrap)?;
    let hash = code::sha256_hex(&zip);
    let template = stage_template(stage, &manifest);
    let template_at = template_path(&a.output);
    std::fs::write(&a.output, &zip).map_err(|e| Problem(format!("cannot write {}: {e}", a.output.display())))?;
    std::fs::write(&template_at, template).map_err(|e| Problem(format!("cannot write {}: {e}", template_at.display())))?;
    let key = format!("{}/{hash}.zip", stage.stack());
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
