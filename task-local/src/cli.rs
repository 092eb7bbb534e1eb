//! `task-local serve` options. Every per-function option takes `VALUE` (all
//! functions) or `NAME=VALUE` (one function); the latter wins.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A local AWS Lambda: the Invoke API, the Runtime API, real worker
/// processes, and the asynchronous queue with Lambda's retries.
#[derive(Debug, Parser)]
#[command(name = "task-local", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve functions on 127.0.0.1 until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Print a sample event (an S3 put, an SQS batch, an EventBridge event,
    /// a warm-up ping), or send it to a served function with --invoke.
    #[command(after_help = "Example:\n  task-local event s3-put --bucket uploads --key reports/today.csv --invoke worker")]
    Event(EventArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A function: its name and the path of its executable (repeatable).
    #[arg(long = "function", value_name = "NAME=PATH", required = true)]
    pub(crate) functions: Vec<String>,
    /// The port of the Invoke API; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 9001)]
    pub(crate) port: u16,
    /// Invocation timeout, e.g. `3s`, `500ms` [default: 3s].
    #[arg(long, value_name = "[NAME=]DURATION")]
    pub(crate) timeout: Vec<String>,
    /// Memory in MB, as AWS_LAMBDA_FUNCTION_MEMORY_SIZE [default: 128].
    #[arg(long, value_name = "[NAME=]MB")]
    pub(crate) memory: Vec<String>,
    /// Most instances at once [default: 10].
    #[arg(long, value_name = "[NAME=]N")]
    pub(crate) concurrency: Vec<String>,
    /// Retries of a failed asynchronous invocation, 0-2 [default: 2].
    #[arg(long, value_name = "[NAME=]N")]
    pub(crate) max_retry_attempts: Vec<String>,
    /// Delays before the first and second retry [default: 60s,120s, as Lambda].
    #[arg(long, value_name = "[NAME=]D1,D2")]
    pub(crate) retry_delays: Vec<String>,
    /// Drop an asynchronous event older than this [default: 6h].
    #[arg(long, value_name = "[NAME=]DURATION")]
    pub(crate) max_event_age: Vec<String>,
    /// An environment variable for every function's processes, or with
    /// `NAME:` for one function's only (repeatable; the per-function value wins)
    #[arg(long = "env", value_name = "[NAME:]K=V")]
    pub(crate) env: Vec<String>,
    /// Where events dropped after their last attempt (or past their maximum
    /// age) go, as Lambda's failure records: `FILE` appends them as JSON
    /// lines; `function:NAME` invokes that served function asynchronously
    /// with each record, as an on-failure destination does; `sqs:NAME` sends
    /// each to an SQS queue read into NAME in batches of up to 10 (with
    /// `batchItemFailures`, and a dead-letter queue), as the generated
    /// template deploys it.
    #[arg(long, value_name = "FILE|function:NAME|sqs:NAME")]
    pub(crate) on_failure: Option<String>,
    /// With `--on-failure sqs:NAME`: how long a received message stays
    /// hidden before it comes back [default: 30s].
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration_arg)]
    pub(crate) failure_queue_visibility: Duration,
    /// With `--on-failure sqs:NAME`: how long the event source mapping
    /// gathers records before invoking with less than a full batch of 10
    /// (its MaximumBatchingWindowInSeconds) [default: 0s].
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration_arg)]
    pub(crate) failure_queue_batch_window: Duration,
    /// With `--on-failure sqs:NAME`: receives before a message goes to the
    /// dead-letter queue (the redrive policy's maxReceiveCount).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub(crate) max_receive_count: u32,
    /// The on-failure destination's message limit in bytes: a record over
    /// it loses its `requestPayload`, as Lambda's records do [default: 1 MiB,
    /// SQS's; an SNS destination's is 256 KiB].
    #[arg(long, value_name = "BYTES", default_value_t = 1_048_576)]
    pub(crate) destination_limit: usize,
    /// Deliver this fraction (0 to 1) of schedule ticks a second time with a
    /// new execution id and attempt number 2, as EventBridge Scheduler does
    /// when it retries an invoke.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = fraction)]
    pub(crate) scheduler_retries: f64,
    /// Do not fire the schedules and keep-warm pings the functions declare.
    #[arg(long)]
    pub(crate) no_schedules: bool,
    /// Run the functions' `rate(...)` schedules this many times faster:
    /// 3600 fires a `rate(1 hour)` schedule every second.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = speedup)]
    pub(crate) schedule_speedup: f64,
    /// Deliver this fraction (0 to 1) of asynchronous events twice, at once,
    /// under the same request id, as Lambda occasionally does.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = fraction)]
    pub(crate) duplicate_deliveries: f64,
    /// The region functions see (AWS_REGION).
    #[arg(long, default_value = "us-east-1")]
    pub(crate) region: String,
    /// Shut down (draining, as on SIGTERM) when standard input closes: for
    /// test harnesses, so the emulator never outlives the process that started it.
    #[arg(long)]
    pub(crate) stop_on_stdin_eof: bool,
}

/// The sample events `task-local event` makes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// An S3 `ObjectCreated:Put` notification.
    S3Put,
    /// An SQS batch of one message.
    Sqs,
    /// An EventBridge event.
    Eventbridge,
    /// A keep-warm ping.
    Warmup,
}

#[derive(Debug, Args)]
pub(crate) struct EventArgs {
    /// Which event.
    #[arg(value_enum)]
    pub(crate) kind: Kind,
    /// s3-put: the bucket.
    #[arg(long, default_value = "example-bucket")]
    pub(crate) bucket: String,
    /// s3-put: the object key (repeatable: one record each).
    #[arg(long = "key", default_value = "uploads/example.txt")]
    pub(crate) keys: Vec<String>,
    /// sqs: the message body.
    #[arg(long, default_value = "hello")]
    pub(crate) body: String,
    /// eventbridge: the source.
    #[arg(long, default_value = "my.app")]
    pub(crate) source: String,
    /// eventbridge: the detail-type.
    #[arg(long, default_value = "Order Placed")]
    pub(crate) detail_type: String,
    /// eventbridge: the detail, JSON.
    #[arg(long, default_value = "{}")]
    pub(crate) detail: String,
    /// warmup: how many instances to keep warm.
    #[arg(long, default_value_t = 1)]
    pub(crate) instances: u32,
    /// Send it to this function (synchronously) instead of printing it.
    #[arg(long, value_name = "FUNCTION")]
    pub(crate) invoke: Option<String>,
    /// With --invoke: task-local's address.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub(crate) endpoint: String,
}

/// One function's settings.
#[derive(Debug, Clone)]
pub(crate) struct FunctionConfig {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) memory_mb: u32,
    pub(crate) concurrency: usize,
    pub(crate) max_retry_attempts: u8,
    pub(crate) retry_delays: [Duration; 2],
    pub(crate) max_event_age: Duration,
    pub(crate) env: Vec<(String, String)>,
}

/// A bad option, naming the option and the value.
#[derive(Debug, thiserror::Error)]
#[error("--{option} {value:?}: {problem}")]
pub(crate) struct OptionError {
    option: &'static str,
    value: String,
    problem: String,
}

fn bad(option: &'static str, value: &str, problem: impl Into<String>) -> OptionError {
    OptionError { option, value: value.to_owned(), problem: problem.into() }
}

fn speedup(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(format!("{text:?} is not a speed-up factor of at least 1, e.g. 60")),
    }
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    duration(text).ok_or_else(|| format!("{text:?} is not a duration, e.g. 500ms, 2s, 1m"))
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction from 0 to 1, e.g. 0.1")),
    }
}

/// `150ms`, `2s`, `1m`, `6h`, or a bare number of seconds.
pub(crate) fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = t.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

impl ServeArgs {
    /// Resolve every function's settings.
    pub(crate) fn functions(&self) -> Result<Vec<FunctionConfig>, OptionError> {
        let mut out: Vec<FunctionConfig> = Vec::new();
        for spec in &self.functions {
            let (name, path) = spec.split_once('=').ok_or_else(|| bad("function", spec, "expected NAME=PATH"))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad("function", spec, "a function name has letters, digits, - and _ only"));
            }
            if out.iter().any(|f| f.name == name) {
                return Err(bad("function", spec, format!("function `{name}` is given twice")));
            }
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(bad("function", spec, format!("no executable at {}", path.display())));
            }
            out.push(FunctionConfig {
                name: name.to_owned(),
                path,
                timeout: Duration::from_secs(3),
                memory_mb: 128,
                concurrency: 10,
                max_retry_attempts: 2,
                retry_delays: [Duration::from_secs(60), Duration::from_secs(120)],
                max_event_age: Duration::from_secs(6 * 3600),
                env: Vec::new(),
            });
        }
        let names: Vec<String> = out.iter().map(|f| f.name.clone()).collect();
        apply(&mut out, &names, "timeout", &self.timeout, |f, v| {
            let d = duration(v).filter(|d| !d.is_zero() && *d <= Duration::from_secs(900)).ok_or("expected a duration up to 900s, e.g. 3s or 500ms")?;
            f.timeout = d;
            Ok(())
        })?;
        apply(&mut out, &names, "memory", &self.memory, |f, v| {
            f.memory_mb = v.parse().ok().filter(|m| (128..=10_240).contains(m)).ok_or("expected MB from 128 to 10240")?;
            Ok(())
        })?;
        apply(&mut out, &names, "concurrency", &self.concurrency, |f, v| {
            f.concurrency = v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or("expected 1 to 1000")?;
            Ok(())
        })?;
        apply(&mut out, &names, "max-retry-attempts", &self.max_retry_attempts, |f, v| {
            f.max_retry_attempts = v.parse().ok().filter(|n| *n <= 2).ok_or("expected 0, 1 or 2")?;
            Ok(())
        })?;
        apply(&mut out, &names, "retry-delays", &self.retry_delays, |f, v| {
            let d: Vec<Duration> = v.split(',').map(duration).collect::<Option<_>>().ok_or("expected two durations, e.g. 60s,120s")?;
            f.retry_delays = match d.as_slice() {
                [a] => [*a, *a],
                [a, b] => [*a, *b],
                _ => return Err("expected two durations, e.g. 60s,120s"),
            };
            Ok(())
        })?;
        apply(&mut out, &names, "max-event-age", &self.max_event_age, |f, v| {
            f.max_event_age = duration(v).filter(|d| *d >= Duration::from_secs(1)).ok_or("expected a duration of at least 1s, e.g. 6h")?;
            Ok(())
        })?;
        // `[NAME:]K=V`: the function, if any, is before a `:` in front of the `=`.
        let env_target = |kv: &str| match kv.split_once('=').and_then(|(k, _)| k.split_once(':')) {
            Some((function, _)) => (Some(function.to_owned()), kv[function.len() + 1..].to_owned()),
            None => (None, kv.to_owned()),
        };
        // Applied in order, every function's first: a function's own value is set later and wins.
        apply_split(&mut out, &names, "env", &self.env, env_target, |f, kv| {
            let (k, v) = kv.split_once('=').ok_or("expected K=V or NAME:K=V")?;
            let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`{k}` is not a variable name (letters, digits and _, not starting with a digit)"));
            }
            f.env.push((k.to_owned(), v.to_owned()));
            Ok(())
        })?;
        Ok(out)
    }
}

/// Apply `[NAME=]VALUE` options: plain values first, then per-function ones.
fn apply(
    functions: &mut [FunctionConfig],
    names: &[String],
    option: &'static str,
    values: &[String],
    set: impl Fn(&mut FunctionConfig, &str) -> Result<(), &'static str>,
) -> Result<(), OptionError> {
    let split = |v: &str| match v.split_once('=') {
        Some((n, val)) if names.iter().any(|x| x == n) => (Some(n.to_owned()), val.to_owned()),
        Some((n, _)) if !n.is_empty() && !n.starts_with(|c: char| c.is_ascii_digit()) => (Some(n.to_owned()), String::new()),
        _ => (None, v.to_owned()),
    };
    apply_split(functions, names, option, values, split, |f, v| set(f, v).map_err(str::to_owned))
}

/// Apply options whose function (if any) `split` tells from the value:
/// plain values first, then per-function ones.
fn apply_split(
    functions: &mut [FunctionConfig],
    names: &[String],
    option: &'static str,
    values: &[String],
    split: impl Fn(&str) -> (Option<String>, String),
    set: impl Fn(&mut FunctionConfig, &str) -> Result<(), String>,
) -> Result<(), OptionError> {
    for pass in [false, true] {
        for raw in values {
            let (target, value) = split(raw);
            if target.is_some() != pass {
                continue;
            }
            if let Some(t) = &target
                && !names.contains(t) {
                    return Err(bad(option, raw, format!("no function named `{t}`")));
                }
            for f in functions.iter_mut().filter(|f| target.as_ref().is_none_or(|t| *t == f.name)) {
                set(f, &value).map_err(|p| bad(option, raw, p))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("6h"), Some(Duration::from_secs(21_600)));
        assert_eq!(duration("soon"), None);
        assert_eq!(duration("5d"), None);
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        let mut argv = vec!["task-local".to_owned(), "serve".into(), "--function".into(), format!("a={exe}"), "--function".into(), format!("b={exe}")];
        argv.extend(extra.iter().map(|s| s.to_string()));
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Serve(a)) => a,
            Ok(other) => panic!("not serve: {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn per_function_values_override_plain_ones() {
        let f = args(&["--timeout", "b=10s", "--timeout", "2s", "--retry-delays", "10ms,20ms", "--concurrency", "a=4"]).functions();
        let f = f.unwrap_or_default();
        assert_eq!(f[0].timeout, Duration::from_secs(2));
        assert_eq!(f[1].timeout, Duration::from_secs(10));
        assert_eq!(f[0].retry_delays, [Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!((f[0].concurrency, f[1].concurrency), (4, 10));
    }

    #[test]
    fn env_applies_to_every_function_or_to_one_and_the_function_s_own_wins() {
        let f = args(&["--env", "b:MODE=slow", "--env", "MODE=fast", "--env", "TABLE=t=1"]).functions().unwrap_or_default();
        let env = |i: usize| f[i].env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        assert_eq!(env(0), ["MODE=fast", "TABLE=t=1"]);
        assert_eq!(env(1), ["MODE=fast", "TABLE=t=1", "MODE=slow"]); // set in this order: the last wins
        let e = args(&["--env", "c:MODE=x"]).functions().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no function named `c`"), "{e}");
        let e = args(&["--env", "1X=y"]).functions().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("`1X` is not a variable name"), "{e}");
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = args(&["--max-retry-attempts", "3"]).functions().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("--max-retry-attempts \"3\"") && e.contains("0, 1 or 2"), "{e}");
        let e = args(&["--timeout", "zzz=3s"]).functions().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no function named `zzz`"), "{e}");
    }
}
