//! `tasks init`: write `Tasks.toml` for the workspace it runs in, with a
//! `dev` stage for a binary that links task-runtime and a comment on each
//! field. It never overwrites a file that is there.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::settings::{Binary, FILE};
use crate::{Exit, Problem};

/// A binary of the workspace that links task-runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) package: String,
    pub(crate) binary: Binary,
}

/// The workspace's root and the binaries in it that link task-runtime
/// (`cargo metadata`): its own `tasks` excepted.
pub(crate) fn workspace(dir: &Path) -> Result<(PathBuf, Vec<Candidate>), Problem> {
    let m = metadata(dir)?;
    Ok((PathBuf::from(m["workspace_root"].as_str().unwrap_or(".")), candidates(&m)))
}

/// `cargo metadata --no-deps` of the workspace `dir` is in.
pub(crate) fn metadata(dir: &Path) -> Result<Value, Problem> {
    let out = std::process::Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .output()
        .map_err(|e| Problem(format!("cannot run `cargo metadata`: {e}")))?;
    if !out.status.success() {
        return Err(Problem(format!("`cargo metadata` in {} failed: is it a Cargo workspace?\n{}", dir.display(), String::from_utf8_lossy(&out.stderr).trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Problem(format!("`cargo metadata` printed no JSON: {e}")))
}

fn candidates(m: &Value) -> Vec<Candidate> {
    let mut found = Vec::new();
    for p in m["packages"].as_array().into_iter().flatten() {
        let package = p["name"].as_str().unwrap_or_default();
        let links = p["dependencies"].as_array().into_iter().flatten().any(|d| d["name"] == "task-runtime");
        if !links || package == "task-cli" {
            continue;
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let name = t["name"].as_str().unwrap_or_default().to_owned();
            match t["kind"][0].as_str() {
                Some("bin") => found.push(Candidate { package: package.to_owned(), binary: Binary::Bin(name) }),
                Some("example") => found.push(Candidate { package: package.to_owned(), binary: Binary::Example(name) }),
                _ => {}
            }
        }
    }
    // A binary called `worker` first, then bins before examples.
    found.sort_by_key(|c| (c.binary.name() != "worker", matches!(c.binary, Binary::Example(_))));
    found
}

/// The file's text for a stage of `chosen`, naming the other candidates.
pub(crate) fn render(chosen: &Candidate, others: &[Candidate], bucket: &str) -> String {
    let (key, name) = match &chosen.binary {
        Binary::Bin(n) => ("bin", n),
        Binary::Example(n) => ("example", n),
    };
    let mut t = format!(
        "# Tasks.toml: the stages of `tasks deploy STAGE` (and update, rollback, undeploy,\n\
         # package, schedule, unschedule). Written by `tasks init`. A stage may start from\n\
         # another with `extends = \"dev\"`; an unknown key is an error.\n\n\
         [stages.dev]\n\
         # The worker: a [[bin]] (`bin = ...`) or an example (`example = ...`) that links task-runtime.\n\
         {key} = \"{name}\"\n\
         package = \"{package}\"\n",
        package = chosen.package
    );
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|c| format!("{} ({})", c.binary.name(), c.package)).collect();
        t.push_str(&format!("# Others that link task-runtime: {}\n", list.join(", ")));
    }
    t.push_str(&format!(
        "# The S3 bucket for the code's zip; created when missing.\n\
         bucket = \"{bucket}\"\n\
         # The function's name (and the stack's) [default: BINARY-STAGE].\n\
         # function_name = \"{name}-dev\"\n\
         # region = \"eu-west-1\"          # [default: AWS_REGION, or the profile's]\n\
         # profile = \"default\"           # [default: AWS_PROFILE]\n\
         architecture = \"arm64\"          # or \"x86_64\"\n\
         memory = 128                    # MB, 128 to 10240\n\
         timeout = \"60s\"                 # up to 15m\n\
         log_retention_days = 14\n\
         keep_warm = true                # deploy the keep-warm pings the code declares\n\
         schedules = true                # the schedules are on after a deploy\n\
         api_key = false                 # an HTTP app (run_http) behind an API key\n\
         tracing = false                 # X-Ray active tracing\n\
         # table = \"{name}-dev-responses\" # the response table [default: FUNCTION-responses]\n\
         # environment = {{ RUST_LOG = \"info\" }}\n\
         # tags = {{ team = \"pies\" }}\n\n\
         # A function of its own for the tasks marked #[task(function = \"heavy\")]:\n\
         # [stages.dev.functions.heavy]\n\
         # memory = 3008\n\
         # timeout = \"15m\"\n\
         # reserved_concurrency = 10\n"
    ));
    t
}

pub(crate) async fn init() -> Result<Exit, Problem> {
    let here = std::env::current_dir().map_err(|e| Problem(format!("no current directory: {e}")))?;
    let (root, found) = workspace(&here)?;
    let path = root.join(FILE);
    if path.exists() {
        return Err(Problem(format!("{} exists already: tasks init does not overwrite it (edit it, or remove it first)", path.display())));
    }
    let Some((chosen, others)) = found.split_first() else {
        return Err(Problem(format!("no binary in the workspace at {} links task-runtime: add one that calls task_runtime::run", root.display())));
    };
    let bucket = format!("tasks-code-{}", hex::encode(unique()));
    std::fs::write(&path, render(chosen, others, &bucket)).map_err(|e| Problem(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {} with a stage `dev` for {} ({})", path.display(), chosen.binary.name(), chosen.package);
    println!("next: tasks deploy dev (or `tasks package dev -o code.zip` for the zip and its template, not deployed)");
    Ok(Exit::Complete)
}

/// Four bytes that make the bucket's name this workspace's own.
fn unique() -> [u8; 4] {
    use sha2::Digest;
    let seed = format!("{:?}{:?}", std::time::SystemTime::now(), std::env::current_dir().ok());
    let d = sha2::Sha256::digest(seed.as_bytes());
    [d[0], d[1], d[2], d[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_it_writes_reads_back_as_a_dev_stage() {
        let chosen = Candidate { package: "examples".into(), binary: Binary::Example("worker".into()) };
        let other = Candidate { package: "examples".into(), binary: Binary::Example("http".into()) };
        let text = render(&chosen, &[other], "tasks-code-0a1b2c3d");
        let s = super::super::settings::Settings::parse(Path::new(FILE), &text).unwrap_or_else(|Problem(why)| panic!("{why}\n{text}"));
        let dev = s.stage("dev").unwrap_or_else(|Problem(why)| panic!("{why}"));
        assert_eq!(dev.binary, Binary::Example("worker".into()));
        assert_eq!(dev.stack(), "worker-dev");
        assert_eq!(dev.bucket, "tasks-code-0a1b2c3d");
        assert!(text.contains("Others that link task-runtime: http (examples)"));
    }

    #[test]
    fn a_worker_comes_first_and_the_cli_is_left_out() {
        let m = serde_json::json!({"packages": [
            {"name": "task-cli", "dependencies": [{"name": "task-runtime"}], "targets": [{"kind": ["bin"], "name": "tasks"}]},
            {"name": "examples", "dependencies": [{"name": "task-runtime"}], "targets": [{"kind": ["example"], "name": "client"}, {"kind": ["example"], "name": "worker"}, {"kind": ["lib"], "name": "x"}]},
            {"name": "other", "dependencies": [], "targets": [{"kind": ["bin"], "name": "unrelated"}]}
        ]});
        let names: Vec<String> = candidates(&m).iter().map(|c| c.binary.name().to_owned()).collect();
        assert_eq!(names, ["worker", "client"]);
    }
}
