//! `tasks check NAME`: is what is deployed consistent with the library's
//! rules and the worker's manifest? A part that cannot be read is never a
//! pass: it is listed as unchecked, with why.

use aws_sdk_lambda::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::cli::CheckArgs;
use crate::deployed::{read, schedules_of, sdk_error};
use crate::{Exit, Problem};

/// One inconsistency: what is wrong, and how to fix it.
struct Finding {
    check: &'static str,
    message: String,
}

/// A worker binary and the manifest it printed (`TASK_RUNTIME_MANIFEST=1`),
/// read once.
pub(crate) struct WorkerManifest {
    pub(crate) path: std::path::PathBuf,
    /// `None` when it printed none.
    pub(crate) manifest: Option<Value>,
}

impl WorkerManifest {
    pub(crate) fn read(path: &std::path::Path) -> Self {
        WorkerManifest { path: path.to_owned(), manifest: crate::template::read_manifest(path).ok() }
    }
}

/// What `tasks check` found: inconsistencies, and parts it could not read.
pub(crate) struct CheckReport {
    name: String,
    findings: Vec<Finding>,
    unchecked: Vec<String>,
}

impl CheckReport {
    /// Consistent only when every part was read: a part that could not be
    /// checked is never a pass.
    fn consistent(&self) -> bool {
        self.findings.is_empty() && self.unchecked.is_empty()
    }

    /// What `tasks check --json` prints.
    pub(crate) fn json(&self) -> Value {
        let all: Vec<Value> = self.findings.iter().map(|f| json!({"check": f.check, "message": f.message})).collect();
        json!({"function": self.name, "consistent": self.consistent(), "findings": all, "unchecked": self.unchecked})
    }

    /// What `tasks check` prints: each finding, each part not checked, and the verdict.
    pub(crate) fn print(&self, with_worker: bool) {
        for f in &self.findings {
            println!("{}: {}", f.check, f.message);
        }
        for u in &self.unchecked {
            println!("not checked: {u}");
        }
        if self.consistent() {
            println!("{} is consistent with task-runtime's rules{}", self.name, if with_worker { " and its worker's manifest" } else { "" });
        } else if self.findings.is_empty() {
            println!("{}: {} part(s) could not be checked (above), so it is not known to be consistent", self.name, self.unchecked.len());
        }
    }

    pub(crate) fn exit(&self) -> Exit {
        match (self.findings.is_empty(), self.unchecked.is_empty()) {
            (false, _) => Exit::Inconsistent,
            (true, false) => Exit::Failed, // could not check
            (true, true) => Exit::Complete,
        }
    }
}

pub(crate) async fn check(a: CheckArgs) -> Result<Exit, Problem> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let worker = a.worker.as_deref().map(WorkerManifest::read);
    let report = check_report(&sdk, &a.name, worker.as_ref()).await?;
    if a.json {
        println!("{}", report.json());
    } else {
        report.print(a.worker.is_some());
    }
    Ok(report.exit())
}

/// Check function `name` against the library's rules, and against the
/// manifest of `worker` when given.
pub(crate) async fn check_report(sdk: &aws_config::SdkConfig, name: &str, worker: Option<&WorkerManifest>) -> Result<CheckReport, Problem> {
    let sdk = sdk.clone();
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let d = read(&lambda, name).await.map_err(|Problem(why)| Problem(format!("cannot check: {why}")))?;
    let mut findings = Vec::new();
    let mut unchecked = Vec::new();
    let mut find = |check: &'static str, message: String| findings.push(Finding { check, message });

    // TASK_MAX_ATTEMPTS = Lambda's MaximumRetryAttempts + 1.
    let max_attempts: i32 = d.env.get("TASK_MAX_ATTEMPTS").and_then(|v| v.trim().parse().ok()).unwrap_or(3);
    if max_attempts != d.retries + 1 {
        find(
            "max_attempts",
            format!(
                "TASK_MAX_ATTEMPTS is {max_attempts} but Lambda makes {} attempt(s) (MaximumRetryAttempts={}): final states will be wrong; \
                 set TASK_MAX_ATTEMPTS={} or MaximumRetryAttempts={}",
                d.retries + 1,
                d.retries,
                d.retries + 1,
                (max_attempts - 1).clamp(0, 2)
            ),
        );
    }
    // A failure destination, so that calls whose last attempt died still end.
    if d.on_failure.is_none() {
        find(
            "on_failure",
            "no on-failure destination: a call whose last attempt crashes stays `running`; send failure records to an SQS queue \
             the worker reads (see deploy/template.yaml)"
                .to_owned(),
        );
    }
    // The response table exists, with TTL on `ttl`.
    match d.env.get("TASK_RESPONSE_TABLE") {
        None => unchecked.push("response table: TASK_RESPONSE_TABLE is not set, so nothing is captured".to_owned()),
        Some(table) => {
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            match ddb.describe_time_to_live().table_name(table).send().await {
                Ok(t) => {
                    let ttl = t.time_to_live_description();
                    let on = ttl.and_then(|t| t.time_to_live_status()).is_some_and(|s| s.as_str() == "ENABLED" || s.as_str() == "ENABLING");
                    if !(on && ttl.and_then(|t| t.attribute_name()) == Some("ttl")) {
                        find("table_ttl", format!("table `{table}` has no TTL on `ttl`: old responses are never deleted; run `tasks create-table`"));
                    }
                }
                Err(e) if e.code() == Some("ResourceNotFoundException") => {
                    find("table", format!("table `{table}` (TASK_RESPONSE_TABLE) does not exist: create it with `tasks create-table`"));
                }
                Err(e) => unchecked.push(format!("response table: {}", sdk_error(&e))),
            }
        }
    }
    // The timeout leaves room for the margin in which the worker records a timeout.
    let margin_ms: i64 = d.env.get("TASK_TIMEOUT_MARGIN_MS").and_then(|v| v.trim().parse().ok()).unwrap_or(500);
    if i64::from(d.timeout_s) * 1000 <= margin_ms {
        find("timeout", format!("the timeout ({} s) is not larger than TASK_TIMEOUT_MARGIN_MS ({margin_ms} ms): raise the timeout or lower the margin", d.timeout_s));
    }
    // Every schedule of the worker's manifest exists and is enabled.
    if let Some(worker) = worker {
        let manifest = worker.manifest.as_ref();
        // A task's own timeout is below what the function gives a body.
        let budget_ms = i64::from(d.timeout_s) * 1000 - margin_ms;
        let role = d.env.contains_key("TASK_SCHEDULER_ROLE_ARN");
        let table = d.env.contains_key("TASK_RESPONSE_TABLE");
        for t in manifest.as_ref().and_then(|m| m["tasks"].as_array()).into_iter().flatten() {
            let name = t["name"].as_str().unwrap_or_default();
            // Retries past Lambda's, or with a backoff, are sent again by the
            // runtime: delayed sends through EventBridge Scheduler, counted in the table.
            let declared = t["retries"].as_i64();
            let resends = t["retry_backoff_ms"].is_u64() || declared.is_some_and(|r| r > i64::from(d.retries));
            if resends && !(role && table) {
                find(
                    "task_retries",
                    format!(
                        "task `{name}` retries {} time(s), the runtime sending them (its retry policy; Lambda's own are {}), which needs TASK_SCHEDULER_ROLE_ARN and TASK_RESPONSE_TABLE: without them its retries past Lambda's are lost; deploy the generated template, or set both",
                        declared.unwrap_or(2),
                        d.retries
                    ),
                );
            }
            let limited = t["concurrency"].is_u64() || t["rate_limit"].is_object();
            if limited && !(role && table) {
                find(
                    "task_limits",
                    format!(
                        "task `{name}` has a concurrency or rate limit, which is kept in TASK_RESPONSE_TABLE and puts deliveries off through EventBridge Scheduler (TASK_SCHEDULER_ROLE_ARN): without both its limit is not kept"
                    ),
                );
            }
            if let Some(ms) = t["timeout_ms"].as_i64().filter(|ms| *ms >= budget_ms) {
                find(
                    "task_timeout",
                    format!(
                        "task `{}` has a timeout of {ms} ms, not below what the function gives a body ({} s less TASK_TIMEOUT_MARGIN_MS {margin_ms} ms): \
                         the invocation's deadline ends it first; lower the task's timeout or raise the function's",
                        t["name"].as_str().unwrap_or_default(),
                        d.timeout_s
                    ),
                );
            }
        }
        // Every task's function exists and runs the same code as the
        // default one (all groups deploy from one zip), so that it hosts the task.
        let routes = task_runtime::Config::from_lookup(|k| d.env.get(k).cloned());
        let mut code_of: std::collections::BTreeMap<String, Result<String, String>> = std::collections::BTreeMap::new();
        let default_target = routes.as_ref().ok().and_then(|c| c.function_for(None)).unwrap_or(&d.name).to_owned();
        for t in manifest.as_ref().and_then(|m| m["tasks"].as_array()).into_iter().flatten() {
            let (name, Some(group)) = (t["name"].as_str().unwrap_or_default(), t["function"].as_str()) else { continue };
            let target = match &routes {
                Ok(c) => c.function_for(Some(group)).unwrap_or(group).to_owned(),
                Err(e) => {
                    find("task_function", format!("the function's settings do not parse ({e}), so where task `{name}` (function = \"{group}\") runs is not known"));
                    continue;
                }
            };
            for f in [&target, &default_target] {
                if !code_of.contains_key(f) {
                    let code = read(&lambda, f).await.map(|t| t.code_sha256).map_err(|Problem(why)| why);
                    code_of.insert(f.clone(), code);
                }
            }
            match (&code_of[&target], &code_of[&default_target]) {
                (Err(why), _) => find(
                    "task_function",
                    format!("task `{name}` runs on `{target}` (its `function = \"{group}\"`), and {why}: add [stages.STAGE.functions.{group}] to Tasks.toml and `tasks deploy`, or deploy a function of that name"),
                ),
                (Ok(there), Ok(here)) if there != here && target != default_target => find(
                    "task_function",
                    format!("task `{name}` runs on `{target}`, whose code is not the default function's (`{default_target}`): it may not have the task; deploy both from one zip (`tasks deploy`)"),
                ),
                _ => {}
            }
        }
        match (manifest, schedules_of(&sdk, &d.arn).await) {
            (None, _) => unchecked.push(format!("schedules: {} printed no manifest", worker.path.display())),
            (_, Err(why)) => unchecked.push(format!("schedules: {why}")),
            (Some(m), Ok(deployed)) => {
                for s in m["schedules"].as_array().into_iter().flatten() {
                    let (task, input) = (s["task"].as_str().unwrap_or_default(), s["input"].as_str().unwrap_or_default());
                    match deployed.iter().find(|(_, _, i)| i.as_deref() == Some(input)) {
                        None => find("schedules", format!("the schedule of `{task}` ({}) is not deployed: regenerate the template with `tasks template`", s["expression"])),
                        Some((name, state, _)) if state != "ENABLED" => find("schedules", format!("schedule `{name}` of `{task}` is {state}: enable it")),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    // Signing: the function and the function it dispatches to agree.
    let target = d.env.get("TASK_FUNCTION").filter(|t| t.split(':').next() != Some(d.name.as_str()) && !t.contains(&format!(":function:{}", d.name)));
    if let Some(target) = target {
        match read(&lambda, target).await {
            Ok(t) => {
                let (here, there) = (d.env.contains_key("TASK_SIGNING_KEY"), t.env.contains_key("TASK_SIGNING_KEY"));
                if here != there {
                    let (with, without) = if here { (&d.name, &t.name) } else { (&t.name, &d.name) };
                    find("signing", format!("`{with}` signs its messages (TASK_SIGNING_KEY) and `{without}` does not: set the same key on both, or on neither"));
                }
            }
            Err(Problem(why)) => unchecked.push(format!("signing: {why}")),
        }
    }

    Ok(CheckReport { name: d.name, findings, unchecked })
}
