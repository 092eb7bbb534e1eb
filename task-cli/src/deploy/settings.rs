//! `Tasks.toml`: the stages `tasks deploy` and the commands after it know.
//! A stage names the worker binary and the function's settings; `extends`
//! starts one stage from another. A key that is not known, or a value out
//! of range, is an error that names its line and what is allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::Problem;

/// The settings file's name, at the workspace's root.
pub(crate) const FILE: &str = "Tasks.toml";

/// `Tasks.toml` as written: stages by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    stages: BTreeMap<String, Spanned<RawStage>>,
}

/// One stage as written; every field may come from the stage it extends.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    extends: Option<Spanned<String>>,
    bin: Option<String>,
    example: Option<String>,
    package: Option<String>,
    function_name: Option<Spanned<String>>,
    region: Option<String>,
    profile: Option<String>,
    architecture: Option<Spanned<String>>,
    memory: Option<Spanned<u32>>,
    timeout: Option<Spanned<String>>,
    log_retention_days: Option<Spanned<u32>>,
    keep_warm: Option<bool>,
    api_key: Option<bool>,
    tracing: Option<bool>,
    schedules: Option<bool>,
    table: Option<String>,
    bucket: Option<Spanned<String>>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    functions: BTreeMap<String, Spanned<RawFunction>>,
}

/// A function group's own settings (`[stages.dev.functions.heavy]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    memory: Option<Spanned<u32>>,
    timeout: Option<Spanned<String>>,
    reserved_concurrency: Option<Spanned<u32>>,
}

/// The worker binary: a `[[bin]]` or an example of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binary {
    Bin(String),
    Example(String),
}

impl Binary {
    pub(crate) fn name(&self) -> &str {
        match self {
            Binary::Bin(n) | Binary::Example(n) => n,
        }
    }

    /// Cargo's arguments that select it: `--bin worker` or `--example worker`, with `-p PACKAGE`.
    pub(crate) fn cargo_args(&self, package: Option<&str>) -> Vec<String> {
        let mut args = match self {
            Binary::Bin(n) => vec!["--bin".to_owned(), n.clone()],
            Binary::Example(n) => vec!["--example".to_owned(), n.clone()],
        };
        if let Some(p) = package {
            args.extend(["-p".to_owned(), p.to_owned()]);
        }
        args
    }
}

/// One function of a stage: the default one, or a group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionSettings {
    /// `None` for the default function; else the name `#[task(function = "...")]` gives.
    pub(crate) group: Option<String>,
    /// Its Lambda name: the stage's `function_name`, with `-GROUP` for a group's.
    pub(crate) name: String,
    pub(crate) memory_mb: u32,
    pub(crate) timeout: Duration,
    pub(crate) reserved_concurrency: Option<u32>,
}

/// A stage, resolved: its own settings over those of the stages it extends, defaults after.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) binary: Binary,
    pub(crate) package: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    /// `arm64` or `x86_64`.
    pub(crate) architecture: String,
    pub(crate) log_retention_days: u32,
    pub(crate) keep_warm: bool,
    pub(crate) api_key: bool,
    pub(crate) tracing: bool,
    /// Whether its schedules are on after a deploy.
    pub(crate) schedules: bool,
    /// The response table: the stack creates it (and keeps it on undeploy) unless it exists.
    pub(crate) table: String,
    pub(crate) bucket: String,
    pub(crate) environment: BTreeMap<String, String>,
    pub(crate) tags: BTreeMap<String, String>,
    /// The default function first, then each group's, by group name.
    pub(crate) functions: Vec<FunctionSettings>,
}

impl Stage {
    /// The default function's settings.
    pub(crate) fn default_function(&self) -> &FunctionSettings {
        &self.functions[0]
    }

    /// The stack's name: the default function's.
    pub(crate) fn stack(&self) -> &str {
        &self.default_function().name
    }
}

/// A settings file read and checked: every stage in it resolves.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) path: PathBuf,
    stages: BTreeMap<String, Stage>,
}

/// Lambda's memory range, MB.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>
const MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=10_240;
/// Lambda's longest timeout, 15 minutes.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html>
const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// The values CloudWatch Logs takes for `RetentionInDays`.
/// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>
const RETENTION_DAYS: [u32; 22] = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

impl Settings {
    /// Find `Tasks.toml` in `dir` or a directory above it, and read it.
    pub(crate) fn find(dir: &Path) -> Result<Self, Problem> {
        let path = dir
            .ancestors()
            .map(|d| d.join(FILE))
            .find(|p| p.is_file())
            .ok_or_else(|| Problem(format!("no {FILE} in {} or a directory above it: run `tasks init` to write one", dir.display())))?;
        let text = std::fs::read_to_string(&path).map_err(|e| Problem(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&path, &text)
    }

    /// Read `text` (the contents of `path`).
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, Problem> {
        let at = |line: usize, what: String| Problem(format!("{}:{line}: {what}", path.display()));
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            at(line, e.message().trim_end().to_owned())
        })?;
        if file.stages.is_empty() {
            return Err(at(1, "no stage: add one, e.g. `[stages.dev]` with `bin = \"worker\"` and `bucket = \"...\"`".to_owned()));
        }
        let mut stages = BTreeMap::new();
        for name in file.stages.keys() {
            let stage = resolve(&file, name, text).map_err(|(offset, why)| at(line_of(text, offset), why))?;
            stages.insert(name.clone(), stage);
        }
        Ok(Settings { path: path.to_owned(), stages })
    }

    /// The stage `name`, or an error that lists the known ones.
    pub(crate) fn stage(&self, name: &str) -> Result<&Stage, Problem> {
        self.stages.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.stages.keys().map(String::as_str).collect();
            Problem(format!("no stage `{name}` in {}: its stages are {}", self.path.display(), known.join(", ")))
        })
    }
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Stage `name` over the stages it extends: a field a stage sets wins; the
/// tables (`environment`, `tags`, `functions`) merge key by key.
fn merged(file: &File, name: &str) -> Result<RawStage, (usize, String)> {
    let mut chain: Vec<&Spanned<RawStage>> = Vec::new();
    let mut next = Some(name.to_owned());
    while let Some(n) = next {
        let Some(stage) = file.stages.get(&n) else {
            let from = chain.last().and_then(|s| s.get_ref().extends.as_ref()).map_or(0, |e| e.span().start);
            let known: Vec<&str> = file.stages.keys().map(String::as_str).collect();
            return Err((from, format!("`extends = \"{n}\"`: there is no stage `{n}` (stages: {})", known.join(", "))));
        };
        if chain.iter().any(|s| std::ptr::eq(*s, stage)) {
            return Err((stage.span().start, format!("stage `{name}` extends itself through `{n}`: `extends` may not go round")));
        }
        chain.push(stage);
        next = stage.get_ref().extends.as_ref().map(|e| e.get_ref().clone());
    }
    let mut out = RawStage::default();
    for stage in chain.iter().rev().map(|s| s.get_ref().clone()) {
        macro_rules! over {
            ($($field:ident),*) => { $( if stage.$field.is_some() { out.$field = stage.$field; } )* };
        }
        // One of `bin` and `example`: a stage that names one drops the other it extends.
        if stage.bin.is_some() || stage.example.is_some() {
            out.bin = None;
            out.example = None;
        }
        over!(bin, example, package, function_name, region, profile, architecture, memory, timeout, log_retention_days, keep_warm, api_key, tracing, schedules, table, bucket);
        out.environment.extend(stage.environment);
        out.tags.extend(stage.tags);
        out.functions.extend(stage.functions);
    }
    Ok(out)
}

fn resolve(file: &File, name: &str, text: &str) -> Result<Stage, (usize, String)> {
    let raw = merged(file, name)?;
    let own = file.stages[name].span().start;
    let binary = match (raw.bin, raw.example) {
        (Some(b), None) => Binary::Bin(b),
        (None, Some(e)) => Binary::Example(e),
        (Some(_), Some(_)) => return Err((own, format!("stage `{name}` names both `bin` and `example`: the worker is one of them"))),
        (None, None) => return Err((own, format!("stage `{name}` names no worker: add `bin = \"NAME\"` (a [[bin]]) or `example = \"NAME\"`"))),
    };
    let function_name = match raw.function_name {
        Some(f) => checked_name(f.get_ref(), f.span().start)?,
        None => format!("{}-{name}", binary.name()),
    };
    let architecture = match raw.architecture {
        Some(a) if ["arm64", "x86_64"].contains(&a.get_ref().as_str()) => a.into_inner(),
        Some(a) => return Err((a.span().start, format!("architecture {:?}: Lambda's are \"arm64\" and \"x86_64\"", a.get_ref()))),
        None => "arm64".to_owned(),
    };
    let log_retention_days = match raw.log_retention_days {
        Some(d) if RETENTION_DAYS.contains(d.get_ref()) => *d.get_ref(),
        Some(d) => return Err((d.span().start, format!("log_retention_days = {}: CloudWatch Logs keeps logs for one of {RETENTION_DAYS:?} days", d.get_ref()))),
        None => 14,
    };
    let bucket = match raw.bucket {
        Some(b) if valid_bucket(b.get_ref()) => b.into_inner(),
        Some(b) => return Err((b.span().start, format!("bucket {:?} is not an S3 bucket name: 3-63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit", b.get_ref()))),
        None => return Err((own, format!("stage `{name}` has no `bucket`: the S3 bucket for its code (created when missing), e.g. `bucket = \"tasks-code-{}\"`", suffix_hint(text)))),
    };
    let mut functions = vec![FunctionSettings {
        group: None,
        name: function_name.clone(),
        memory_mb: memory(raw.memory.as_ref(), 128)?,
        timeout: timeout(raw.timeout.as_ref(), Duration::from_secs(60))?,
        reserved_concurrency: None,
    }];
    for (group, f) in &raw.functions {
        let fname = checked_name(&format!("{function_name}-{group}"), f.span().start)?;
        let f = f.get_ref();
        functions.push(FunctionSettings {
            group: Some(group.clone()),
            name: fname,
            memory_mb: memory(f.memory.as_ref(), functions[0].memory_mb)?,
            timeout: timeout(f.timeout.as_ref(), functions[0].timeout)?,
            reserved_concurrency: f.reserved_concurrency.as_ref().map(|c| *c.get_ref()),
        });
    }
    Ok(Stage {
        name: name.to_owned(),
        binary,
        package: raw.package,
        region: raw.region,
        profile: raw.profile,
        architecture,
        log_retention_days,
        keep_warm: raw.keep_warm.unwrap_or(true),
        api_key: raw.api_key.unwrap_or(false),
        tracing: raw.tracing.unwrap_or(false),
        schedules: raw.schedules.unwrap_or(true),
        table: raw.table.unwrap_or_else(|| format!("{function_name}-responses")),
        bucket,
        environment: raw.environment,
        tags: raw.tags,
        functions,
    })
}

/// A Lambda function name: 1-64 of letters, digits, `-` and `_`.
/// <https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html>
fn checked_name(name: &str, offset: usize) -> Result<String, (usize, String)> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err((offset, format!("function name {name:?}: Lambda's are 1-64 letters, digits, `-` and `_`")));
    }
    Ok(name.to_owned())
}

fn memory(m: Option<&Spanned<u32>>, default: u32) -> Result<u32, (usize, String)> {
    match m {
        Some(m) if MEMORY_MB.contains(m.get_ref()) => Ok(*m.get_ref()),
        Some(m) => Err((m.span().start, format!("memory = {}: Lambda gives a function {} to {} MB", m.get_ref(), MEMORY_MB.start(), MEMORY_MB.end()))),
        None => Ok(default),
    }
}

fn timeout(t: Option<&Spanned<String>>, default: Duration) -> Result<Duration, (usize, String)> {
    let Some(t) = t else { return Ok(default) };
    match crate::cli::duration(t.get_ref()) {
        Ok(d) if d >= Duration::from_secs(1) && d <= MAX_TIMEOUT => Ok(Duration::from_secs(d.as_secs())),
        Ok(_) => Err((t.span().start, format!("timeout {:?}: Lambda's timeout is 1 s to 15 m", t.get_ref()))),
        Err(why) => Err((t.span().start, format!("timeout: {why}"))),
    }
}

/// S3's bucket naming rules, the general-purpose ones.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..")
}

/// Eight hex digits to make a bucket name one's own (from the file's text,
/// so the hint is the same each time it is shown).
fn suffix_hint(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(Path::new("Tasks.toml"), text).map_err(|Problem(why)| why)
    }

    const TWO: &str = r#"
[stages.dev]
example = "worker"
bucket = "tasks-code-1234abcd"
memory = 256
environment = { RUST_LOG = "info" }

[stages.dev.functions.heavy]
memory = 3008
timeout = "15m"
reserved_concurrency = 10

[stages.prod]
extends = "dev"
region = "eu-west-1"
schedules = false
environment = { TASK_LIST_CALLS = "true" }
"#;

    #[test]
    fn a_stage_starts_from_the_one_it_extends() {
        let s = parse(TWO).expect("valid");
        let dev = s.stage("dev").expect("dev");
        assert_eq!(dev.binary, Binary::Example("worker".into()));
        assert_eq!(dev.stack(), "worker-dev");
        assert_eq!(dev.table, "worker-dev-responses");
        assert_eq!(dev.architecture, "arm64");
        assert_eq!(dev.functions[1], FunctionSettings { group: Some("heavy".into()), name: "worker-dev-heavy".into(), memory_mb: 3008, timeout: Duration::from_secs(900), reserved_concurrency: Some(10) });
        let prod = s.stage("prod").expect("prod");
        assert_eq!(prod.stack(), "worker-prod");
        assert_eq!(prod.default_function().memory_mb, 256);
        assert_eq!(prod.functions[1].name, "worker-prod-heavy");
        assert_eq!(prod.region.as_deref(), Some("eu-west-1"));
        assert!(!prod.schedules && dev.schedules);
        assert_eq!(prod.environment.len(), 2, "environments merge: {:?}", prod.environment);
    }

    #[test]
    fn an_unknown_stage_lists_the_known_ones() {
        let s = parse(TWO).expect("valid");
        let Problem(why) = s.stage("staging").expect_err("unknown");
        assert!(why.contains("no stage `staging`") && why.contains("dev, prod"), "{why}");
    }

    #[test]
    fn a_bad_key_or_value_names_its_line() {
        let cases = [
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\nmemroy = 256\n", "Tasks.toml:4:", "memroy"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\n\nmemory = 20000\n", "Tasks.toml:5:", "128 to 10240 MB"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\ntimeout = \"20m\"\n", "Tasks.toml:4:", "1 s to 15 m"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"Tasks_Code\"\n", "Tasks.toml:3:", "not an S3 bucket name"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\narchitecture = \"x86\"\n", "Tasks.toml:4:", "arm64"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\n[stages.prod]\nextends = \"stage\"\n", "Tasks.toml:5:", "no stage `stage`"),
            ("[stages.a]\nextends = \"b\"\n[stages.b]\nextends = \"a\"\n", "Tasks.toml:", "may not go round"),
            ("[stages.dev]\nbucket = \"tasks-code-a\"\n", "Tasks.toml:1:", "names no worker"),
            ("[stages.dev]\nexample = \"w\"\n", "Tasks.toml:1:", "has no `bucket`"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\n[stages.dev.functions.heavy]\nmemory = 3008\ncpus = 2\n", "Tasks.toml:6:", "cpus"),
            ("[stages.dev]\nexample = \"w\"\nbucket = \"tasks-code-a\"\nlog_retention_days = 10\n", "Tasks.toml:4:", "keeps logs"),
            ("", "Tasks.toml:1:", "no stage"),
        ];
        for (text, at, what) in cases {
            let why = parse(text).expect_err(text);
            assert!(why.starts_with(at) && why.contains(what), "{text:?} gave {why:?}, not {at}… {what}");
        }
        // The unknown key's error lists the allowed ones.
        let why = parse(cases[0].0).expect_err("bad key");
        assert!(why.contains("expected one of") && why.contains("`memory`"), "{why}");
    }
}
