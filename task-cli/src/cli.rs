//! The commands and their options.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Follow, send, wait for, tail, list and retry task-runtime calls, on AWS
/// or under task-local. Configured like the library: TASK_RESPONSE_TABLE,
/// TASK_FUNCTION, AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_*.
///
/// Exit codes: 0 complete, 1 failed or cancelled, 2 the command could not
/// run, 3 not finished, 4 unknown id.
#[derive(Debug, Parser)]
#[command(name = "tasks", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show calls: task, status, attempts, times, and the response or the failure.
    #[command(after_help = "Example:\n  tasks status 5cd2fef9-10de-4a1e-8c1d-87df7a9423a7\n  tasks status ID1 ID2 --json")]
    Status(StatusArgs),
    /// Send a task by name, with its arguments as a JSON object.
    #[command(after_help = "Example:\n  tasks send worker::word_count '{\"text\": \"one two three\"}' --wait\n  tasks send reports::build '{\"day\": \"2026-11-27\"}' --function reports --delay 10m --id report-2026-11-27")]
    Send(SendArgs),
    /// Wait for calls to end, with one progress bar over them.
    #[command(after_help = "Example:\n  tasks wait ID1 ID2 ID3 --timeout 5m")]
    Wait(WaitArgs),
    /// Show the worker's log lines (CloudWatch Logs), filtered by task or call.
    #[command(after_help = "Example:\n  tasks tail --function worker --id 5cd2fef9-10de-4a1e-8c1d-87df7a9423a7\n  tasks tail --function worker --task worker::flaky --since 1h --follow")]
    Tail(TailArgs),
    /// List the calls that ended failed.
    #[command(after_help = "Example:\n  tasks failed --since 24h --task worker::flaky")]
    Failed(FailedArgs),
    /// Create the response table (on-demand, TTL on `ttl`, its indexes);
    /// fine when it exists: an older one gets the indexes it lacks, each
    /// waited for, and its failed calls backfilled into the failed index.
    #[command(name = "create-table", after_help = "Example:\n  TASK_RESPONSE_TABLE=task-responses tasks create-table\n  tasks create-table --timeout 30m")]
    CreateTable(CreateTableArgs),
    /// What is deployed: the function's settings, asynchronous invoke
    /// config, TASK_* settings, schedules, failed calls and metrics.
    #[command(after_help = "Example:\n  tasks function tasks-worker\n  tasks function tasks-worker --json")]
    Function(FunctionArgs),
    /// Is the deployment consistent with task-runtime's rules and the
    /// worker's manifest? Exit 0 consistent, 2 a finding, 1 could not check.
    #[command(after_help = "Example:\n  tasks check tasks-worker --worker target/debug/examples/worker")]
    Check(CheckArgs),
    /// Print the CloudFormation template of a worker, made from its manifest.
    #[command(after_help = "Example:\n  cargo lambda build --release --arm64 --example worker\n  tasks template --worker target/debug/examples/worker > template.yaml")]
    Template(TemplateArgs),
    /// A web page of the calls: the function, recent and failed calls, one
    /// call with its logs and the calls it sent, retry and cancel.
    #[command(after_help = "Example:\n  tasks dashboard --port 0\n  TASKS_DASHBOARD_TOKEN=s3cret tasks dashboard --bind 0.0.0.0 --port 8080 --worker target/debug/examples/worker")]
    Dashboard(DashboardArgs),
    /// The calls under a call: the calls it sent, theirs, and so on.
    #[command(after_help = "Example:\n  tasks tree 5cd2fef9-10de-4a1e-8c1d-87df7a9423a7\n  tasks tree ID --depth 2 --json")]
    Tree(TreeArgs),
    /// Write Tasks.toml for this workspace: a `dev` stage for a binary that
    /// links task-runtime, each field commented.
    #[command(after_help = "Example:\n  tasks init")]
    Init,
    /// Write a stage's zip and its CloudFormation template beside it, without deploying.
    #[command(after_help = "Example:\n  tasks package dev -o code.zip\n  tasks package dev -o code.zip --binary target/lambda/worker/bootstrap")]
    Package(PackageArgs),
    /// Build, upload and deploy a stage of Tasks.toml: its CloudFormation
    /// stack created or updated through a change set, its events as they
    /// come, its outputs, then `tasks check`.
    #[command(after_help = "Example:\n  tasks deploy dev\n  tasks deploy prod --binary target/lambda/worker/bootstrap")]
    Deploy(DeployArgs),
    /// New code only: upload it, update each function of the stage, publish
    /// a version and move the alias `live` to it.
    #[command(after_help = "Example:\n  tasks update dev\n  tasks update dev --binary target/lambda/worker/bootstrap")]
    Update(UpdateArgs),
    /// Move the stage's alias `live` back to an earlier published version.
    #[command(after_help = "Example:\n  tasks rollback dev\n  tasks rollback dev -n 2")]
    Rollback(RollbackArgs),
    /// Delete the stage's stack; its response table, log groups and failure
    /// queues are kept unless asked.
    #[command(after_help = "Example:\n  tasks undeploy dev\n  tasks undeploy dev --remove-logs --remove-table --remove-queues")]
    Undeploy(UndeployArgs),
    /// Turn the stage's schedules on, without a deploy.
    #[command(after_help = "Example:\n  tasks schedule dev")]
    Schedule(StageArgs),
    /// Turn the stage's schedules off, without a deploy (until `tasks schedule` or the next deploy).
    #[command(after_help = "Example:\n  tasks unschedule dev")]
    Unschedule(StageArgs),
    /// Send a failed call again, with its original arguments, as `retry:ID`;
    /// or, with --failed, every failed call listed, at a bounded rate.
    #[command(after_help = "Example:\n  tasks retry 5cd2fef9-10de-4a1e-8c1d-87df7a9423a7 --wait\n  tasks retry --failed --since 6h --task worker::flaky --dry-run\n  tasks retry --failed --since 24h --rate 20/s")]
    Retry(RetryArgs),
    /// Send the messages of a dead-letter queue back through the failure
    /// queue, each shown as what it was and what became of it.
    #[command(after_help = "Example:\n  tasks redrive worker-dev-FailedDeadLetters-1A2B3C --dry-run\n  tasks redrive https://sqs.eu-west-1.amazonaws.com/123456789012/worker-dev-FailedDeadLetters-1A2B3C")]
    Redrive(RedriveArgs),
}

/// Where the code comes from: cargo-lambda's build, or a ready `bootstrap`.
#[derive(Debug, Args)]
pub(crate) struct CodeArgs {
    /// A ready `bootstrap` built for Lambda, in place of cargo-lambda's build.
    #[arg(long)]
    pub(crate) binary: Option<std::path::PathBuf>,
    /// A build of the worker that runs here, asked for its manifest
    /// [default: the bootstrap when it runs here, else a `cargo build`].
    #[arg(long)]
    pub(crate) worker: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
    #[command(flatten)]
    pub(crate) code: CodeArgs,
    /// Deploy this template (one of `tasks package`, edited) in place of the
    /// one generated from the worker's manifest.
    #[arg(long)]
    pub(crate) template: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
    /// A ready `bootstrap` built for Lambda, in place of cargo-lambda's build.
    #[arg(long)]
    pub(crate) binary: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
    /// How many published versions back.
    #[arg(short = 'n', long = "number", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) n: u32,
}

#[derive(Debug, Args)]
pub(crate) struct UndeployArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
    /// Delete the functions' log groups too.
    #[arg(long)]
    pub(crate) remove_logs: bool,
    /// Delete the response table too: every call's state and result.
    #[arg(long)]
    pub(crate) remove_table: bool,
    /// Delete the failure queue and its dead-letter queue too, with the records in them.
    #[arg(long)]
    pub(crate) remove_queues: bool,
    /// Empty and delete the payload bucket too: arguments and results too large for the table.
    #[arg(long)]
    pub(crate) remove_payloads: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RedriveArgs {
    /// The dead-letter queue: its URL, ARN or name (the stack's output `FailureDeadLetters`).
    pub(crate) queue: String,
    /// Where to send its messages [default: the queue whose redrive policy names it].
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// At most this many messages.
    #[arg(long, default_value_t = 1000)]
    pub(crate) limit: usize,
    /// Show the messages, and send none back.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StageArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Call ids.
    #[arg(required = true)]
    pub(crate) ids: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The task's registered name, e.g. `worker::word_count`.
    pub(crate) name: String,
    /// Its arguments: a JSON object keyed by parameter name.
    pub(crate) args: String,
    /// The function to invoke [default: TASK_FUNCTION].
    #[arg(long)]
    pub(crate) function: Option<String>,
    /// Do not write the outcome to the response table.
    #[arg(long)]
    pub(crate) no_capture: bool,
    /// Use this id: a second send of it with the same arguments sends
    /// nothing and follows the first call; with others it is refused.
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// An idempotency key: every send with it within --key-window is one
    /// call (its id is made from the task and the key).
    #[arg(long, conflicts_with = "id")]
    pub(crate) key: Option<String>,
    /// With --key: how long the key is one call [default: 24h].
    #[arg(long, value_parser = duration, requires = "key")]
    pub(crate) key_window: Option<Duration>,
    /// Run it after this long, e.g. `10m`.
    #[arg(long, value_parser = duration)]
    pub(crate) delay: Option<Duration>,
    /// Wait for it to end, showing its progress, and print its response.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: give up after this long [default: 15m].
    #[arg(long, value_parser = duration)]
    pub(crate) timeout: Option<Duration>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Call ids.
    #[arg(required = true)]
    pub(crate) ids: Vec<String>,
    /// Give up after this long [default: 15m].
    #[arg(long, value_parser = duration)]
    pub(crate) timeout: Option<Duration>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The function whose logs to read [default: TASK_FUNCTION].
    #[arg(long)]
    pub(crate) function: Option<String>,
    /// Only lines of this task.
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// Only lines of this call.
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// From this long ago.
    #[arg(long, value_parser = duration, default_value = "10m")]
    pub(crate) since: Duration,
    /// Keep reading new lines until Ctrl-C.
    #[arg(long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FailedArgs {
    /// From this long ago.
    #[arg(long, value_parser = duration, default_value = "24h")]
    pub(crate) since: Duration,
    /// Only calls of this task.
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CreateTableArgs {
    /// Give up waiting for the table and the indexes it adds after this
    /// long in all (a new index of a large table takes minutes); run it
    /// again to go on where it stopped.
    #[arg(long, value_parser = duration, default_value = "10m")]
    pub(crate) timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct FunctionArgs {
    /// The function's name or ARN.
    pub(crate) name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The function's name or ARN.
    pub(crate) name: String,
    /// The worker binary, to check its schedules are deployed and enabled.
    #[arg(long)]
    pub(crate) worker: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TemplateArgs {
    /// The worker binary (any build of it: it is only asked for its manifest).
    #[arg(long)]
    pub(crate) worker: std::path::PathBuf,
    /// cargo-lambda's binary name [default: the worker's file name].
    #[arg(long)]
    pub(crate) binary: Option<String>,
    /// The function's timeout, seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u32,
    /// The function's memory, MB.
    #[arg(long, default_value_t = 128)]
    pub(crate) memory: u32,
    /// An HTTP app (`run_http`): put an API Gateway REST API in front of it
    /// that requires an API key, with a usage plan.
    #[arg(long)]
    pub(crate) api_key: bool,
    /// Turn on X-Ray active tracing for the function: Lambda samples
    /// invocations and X-Ray links them through the SDK's trace header.
    #[arg(long)]
    pub(crate) tracing: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The port; 0 picks a free one (the first line printed names it).
    #[arg(long, default_value_t = 7878)]
    pub(crate) port: u16,
    /// The address to listen on. Beyond the loopback address a token is required.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: std::net::IpAddr,
    /// A token every request must carry (`Authorization: Bearer TOKEN`, or
    /// `?token=TOKEN`); `TASKS_DASHBOARD_TOKEN` keeps it out of `ps`.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The function shown and whose logs are read (default: TASK_FUNCTION).
    #[arg(long)]
    pub(crate) function: Option<String>,
    /// The worker binary, whose manifest names its schedules and rules (as `tasks check --worker`).
    #[arg(long)]
    pub(crate) worker: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TreeArgs {
    /// The call at the top.
    pub(crate) id: String,
    /// How many levels below it to read.
    #[arg(long, default_value_t = 10)]
    pub(crate) depth: u32,
    /// The most calls to read below it, in all (one query per call that sent some).
    #[arg(long, default_value_t = 1000)]
    pub(crate) limit: usize,
    /// Print JSON: each call as `tasks status --json` does, with its `children`.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PackageArgs {
    /// The stage of Tasks.toml.
    pub(crate) stage: String,
    /// Where to write the zip; the template goes beside it (`code.template.yaml`).
    #[arg(short, long, default_value = "code.zip")]
    pub(crate) output: std::path::PathBuf,
    #[command(flatten)]
    pub(crate) code: CodeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The failed call's id.
    #[arg(required_unless_present = "failed", conflicts_with = "failed")]
    pub(crate) id: Option<String>,
    /// Every failed call that `tasks failed` lists (with --since, --task,
    /// --kind), each sent again once: a call retried already is left.
    #[arg(long)]
    pub(crate) failed: bool,
    /// With --failed: from this long ago.
    #[arg(long, value_parser = duration, default_value = "24h", requires = "failed")]
    pub(crate) since: Duration,
    /// With --failed: only calls of this task.
    #[arg(long, requires = "failed")]
    pub(crate) task: Option<String>,
    /// With --failed: only calls that failed so (`permanent`, `retryable`, `panic`, `timeout`, ...).
    #[arg(long, requires = "failed")]
    pub(crate) kind: Option<String>,
    /// With --failed: say what would be sent, and send nothing.
    #[arg(long, requires = "failed")]
    pub(crate) dry_run: bool,
    /// With --failed: at most this many sends, `N/s` or `N/m`.
    #[arg(long, value_parser = rate, default_value = "50/s", requires = "failed")]
    pub(crate) rate: Duration,
    /// The function to invoke [default: TASK_FUNCTION].
    #[arg(long)]
    pub(crate) function: Option<String>,
    /// Wait for the new call to end and print its response.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: give up after this long [default: 15m].
    #[arg(long, value_parser = duration)]
    pub(crate) timeout: Option<Duration>,
}

/// `50/s` or `600/m`: the gap between two sends.
pub(crate) fn rate(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a rate like 50/s or 600/m");
    let (n, per) = text.trim().split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let per = match per.trim() {
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(bad()),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(per / n))
}

/// `500ms`, `30s`, `10m`, `24h`, `7d`, or a bare number of seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 10m, 24h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m, h or d)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a duration like 30s, 10m, 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each subcommand's about is its own (a doc comment above the wrong
    /// variant once gave `dashboard` the about of `retry`, and `retry` none):
    /// every command is listed here with a word of its purpose, and its
    /// about must hold that word and no other command's about be the same.
    #[test]
    fn every_subcommand_has_its_own_about() {
        use clap::CommandFactory;
        let purpose = [
            ("status", "Show calls"),
            ("send", "Send a task"),
            ("wait", "Wait"),
            ("tail", "log"),
            ("failed", "failed"),
            ("create-table", "table"),
            ("function", "deployed"),
            ("check", "consistent"),
            ("template", "template"),
            ("dashboard", "web page"),
            ("tree", "calls under"),
            ("retry", "failed call again"),
            ("init", "Tasks.toml"),
            ("package", "zip"),
            ("deploy", "change set"),
            ("update", "New code"),
            ("rollback", "back"),
            ("undeploy", "Delete"),
            ("schedule", "on"),
            ("unschedule", "off"),
            ("redrive", "dead-letter"),
        ];
        let cli = Cli::command();
        let mut names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        names.sort_unstable();
        let mut listed: Vec<&str> = purpose.iter().map(|(n, _)| *n).collect();
        listed.sort_unstable();
        assert_eq!(names, listed, "a subcommand was added or removed: list it here with a word of its purpose");
        let mut abouts = std::collections::HashSet::new();
        for (name, word) in purpose {
            let sub = cli.find_subcommand(name).expect("listed above");
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(about.contains(word), "`tasks {name}`'s about should speak of {word:?}, and is {about:?}");
            assert!(abouts.insert(about.clone()), "`tasks {name}` shares its about with another command: {about:?}");
        }
    }

    #[test]
    fn rates_are_gaps_between_sends() {
        assert_eq!(rate("50/s"), Ok(Duration::from_millis(20)));
        assert_eq!(rate("600/m"), Ok(Duration::from_millis(100)));
        for bad in ["50", "0/s", "-1/s", "5/h", "x/s"] {
            assert!(rate(bad).is_err_and(|e| e.contains("50/s")), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(duration("45"), Ok(Duration::from_secs(45)));
        assert!(duration("soon").is_err());
        assert!(duration("5y").is_err_and(|e| e.contains("unknown unit")));
    }
}
