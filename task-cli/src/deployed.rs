//! `tasks function NAME`: what is deployed (`tasks check NAME`, in
//! `check.rs`, reads it through the same functions). Both read through the AWS SDKs, so they work against AWS and task-local
//! alike; a part that cannot be read is shown as unavailable, with why.

use std::collections::BTreeMap;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::cli::FunctionArgs;
use crate::setup::{error_text, now_ms, with_hint};
use crate::{Exit, Problem};

/// Variables whose values are secrets: shown only as "set".
pub(crate) const SECRETS: [&str; 2] = ["TASK_SIGNING_KEY", "TASK_API_KEYS"];

/// What is read of one deployed function.
pub(crate) struct Deployed {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) runtime: String,
    pub(crate) architectures: Vec<String>,
    pub(crate) memory_mb: i32,
    pub(crate) timeout_s: i32,
    pub(crate) code_size: i64,
    /// Lambda's hash of the code (base64 SHA-256): the same for functions deployed from one zip.
    pub(crate) code_sha256: String,
    pub(crate) last_modified: String,
    pub(crate) env: BTreeMap<String, String>,
    /// (retries, max event age in seconds, on-failure destination); Lambda's
    /// defaults when the function has no asynchronous invoke config.
    pub(crate) retries: i32,
    pub(crate) max_event_age_s: i32,
    pub(crate) on_failure: Option<String>,
}

pub(crate) async fn read(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<Deployed, Problem> {
    let c = lambda.get_function_configuration().function_name(name).send().await.map_err(|e| match e.code() {
        Some("ResourceNotFoundException") => Problem(format!("there is no function `{name}`")),
        _ => Problem(with_hint(format!("reading the configuration of `{name}`: {}", error_text(&e)))),
    })?;
    let (retries, max_event_age_s, on_failure) = match lambda.get_function_event_invoke_config().function_name(name).send().await {
        Ok(i) => (
            i.maximum_retry_attempts().unwrap_or(2),
            i.maximum_event_age_in_seconds().unwrap_or(21_600),
            i.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination()).map(str::to_owned),
        ),
        // No asynchronous invoke config: Lambda's defaults.
        Err(e) if e.code() == Some("ResourceNotFoundException") => (2, 21_600, None),
        Err(e) => return Err(Problem(with_hint(format!("reading the asynchronous invoke config of `{name}`: {}", error_text(&e))))),
    };
    let env = c.environment().and_then(|e| e.variables()).map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    Ok(Deployed {
        name: c.function_name().unwrap_or(name).to_owned(),
        arn: c.function_arn().unwrap_or_default().to_owned(),
        runtime: c.runtime().map_or("-".into(), |r| r.as_str().to_owned()),
        architectures: c.architectures().iter().map(|a| a.as_str().to_owned()).collect(),
        memory_mb: c.memory_size().unwrap_or(128),
        timeout_s: c.timeout().unwrap_or(3),
        code_size: c.code_size(),
        code_sha256: c.code_sha256().unwrap_or_default().to_owned(),
        last_modified: c.last_modified().unwrap_or("-").to_owned(),
        env,
        retries,
        max_event_age_s,
        on_failure,
    })
}

/// Where each task group runs (`#[task(function = "GROUP")]`), read from
/// the function's settings as the runtime reads them: `default` is where a
/// task without `function =` goes (TASK_FUNCTION, else the function `name` itself).
pub(crate) fn function_groups(name: &str, env: &BTreeMap<String, String>) -> Value {
    match task_runtime::Config::from_lookup(|k| env.get(k).cloned()) {
        Ok(c) => {
            let mut groups: serde_json::Map<String, Value> = c.functions.iter().map(|(g, f)| (g.clone(), json!(f))).collect();
            if !groups.is_empty() {
                groups.insert("default".to_owned(), json!(c.function_for(None).unwrap_or(name)));
            }
            Value::Object(groups)
        }
        Err(e) => json!({"unavailable": e.to_string()}),
    }
}

/// `TASK_*` variables, secrets as "set".
pub(crate) fn task_settings(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(k, _)| k.starts_with("TASK_"))
        .map(|(k, v)| (k.clone(), if SECRETS.contains(&k.as_str()) { "set".to_owned() } else { v.clone() }))
        .collect()
}

/// A JSON string as its text, anything else as JSON.
pub(crate) fn text_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// A part that was read, or why it could not be.
fn part<T: serde::Serialize>(read: Result<T, String>) -> Value {
    match read {
        Ok(v) => json!(v),
        Err(why) => json!({"unavailable": why}),
    }
}

/// What `tasks function --json` prints of function `name`.
pub(crate) async fn function_report(sdk: &aws_config::SdkConfig, name: &str) -> Result<Value, Problem> {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let d = read(&lambda, name).await?;
    Ok(report_of(sdk, &d).await)
}

async fn report_of(sdk: &aws_config::SdkConfig, d: &Deployed) -> Value {
    let schedules = schedules_of(sdk, &d.arn).await.map(|s| s.into_iter().map(|(name, state, _)| json!({"name": name, "state": state})).collect::<Vec<_>>());
    let calls = calls_by_status(sdk, &d.env).await;
    let metrics = metrics(sdk, &d.name).await;
    json!({
        "name": d.name, "arn": d.arn, "runtime": d.runtime, "architectures": d.architectures,
        "memory_mb": d.memory_mb, "timeout_s": d.timeout_s, "code_size_bytes": d.code_size, "last_modified": d.last_modified,
        "max_retry_attempts": d.retries, "max_event_age_s": d.max_event_age_s, "on_failure": d.on_failure,
        "task_settings": task_settings(&d.env),
        "function_groups": function_groups(&d.name, &d.env),
        "schedules": part(schedules), "calls_last_24h": part(calls), "metrics_last_24h": part(metrics),
    })
}

pub(crate) async fn function(a: FunctionArgs) -> Result<Exit, Problem> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let d = read(&lambda, &a.name).await?;
    let report = report_of(&sdk, &d).await;
    if a.json {
        println!("{report}");
        return Ok(Exit::Complete);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Object(o) if o.len() == 1 && o.contains_key("unavailable") => format!("unavailable: {}", text_of(&o["unavailable"])),
        other => other.to_string(),
    };
    println!("function       {}\narn            {}", d.name, d.arn);
    println!("runtime        {} ({})", d.runtime, d.architectures.join(", "));
    println!("memory         {} MB\ntimeout        {} s\ncode size      {} bytes\nlast modified  {}", d.memory_mb, d.timeout_s, d.code_size, d.last_modified);
    println!("async invokes  {} retries, events kept {} s, on failure: {}", d.retries, d.max_event_age_s, d.on_failure.as_deref().unwrap_or("none"));
    for (k, v) in task_settings(&d.env) {
        println!("  {k}={v}");
    }
    match function_groups(&d.name, &d.env) {
        Value::Object(groups) if !groups.is_empty() => {
            for (group, function) in groups {
                println!("group {group:<8} {}", text_of(&function));
            }
        }
        Value::Object(_) => println!("groups         none: every task runs on the default function"),
        other => println!("groups         {}", text(&other)),
    }
    for key in ["schedules", "calls_last_24h", "metrics_last_24h"] {
        println!("{:<14} {}", key.replace('_', " "), text(&report[key]));
    }
    Ok(Exit::Complete)
}

/// The EventBridge Scheduler schedules whose target is `arn` (its own
/// versions and aliases too): (name, state, input).
pub(crate) async fn schedules_of(sdk: &aws_config::SdkConfig, arn: &str) -> Result<Vec<(String, String, Option<String>)>, String> {
    let scheduler = aws_sdk_scheduler::Client::new(sdk);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = scheduler.list_schedules().set_next_token(token).send().await.map_err(|e| format!("EventBridge Scheduler: {}", sdk_error(&e)))?;
        for s in page.schedules() {
            let target = s.target().map(|t| t.arn()).unwrap_or_default();
            if target == arn || target.starts_with(&format!("{arn}:")) {
                let name = s.name().unwrap_or_default().to_owned();
                let input = scheduler.get_schedule().name(&name).send().await.ok().and_then(|g| g.target().and_then(|t| t.input().map(str::to_owned)));
                out.push((name, s.state().map_or("-".into(), |x| x.as_str().to_owned()), input));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// Failed calls of the last day, from the table's index of failed calls
/// (the other statuses are not indexed: reading them would be a scan).
pub(crate) async fn calls_by_status(sdk: &aws_config::SdkConfig, env: &BTreeMap<String, String>) -> Result<Value, String> {
    let table = env.get("TASK_RESPONSE_TABLE").ok_or("the function has no TASK_RESPONSE_TABLE: its calls are not captured")?;
    let store = task_runtime::store::dynamodb::DynamoStore::from_sdk_config(sdk.clone(), table.clone());
    let since = now_ms().saturating_sub(86_400_000);
    let failed = store.failed_since(since, 100_000).await.map_err(|e| first_line(&e.to_string()))?;
    Ok(json!({"failed": failed.len(), "other statuses": "not indexed (counting them would scan the table)"}))
}

/// The Lambda metrics the function's reports show.
const METRICS: [&str; 4] = ["Invocations", "Errors", "Throttles", "AsyncEventsDropped"];

/// Each of [`METRICS`] of function `name` over the last day, summed over
/// periods of `period_s` seconds: per metric, (period start in epoch ms,
/// sum), oldest first.
async fn metric_sums(sdk: &aws_config::SdkConfig, name: &str, period_s: i32) -> Result<Vec<(&'static str, Vec<(i64, f64)>)>, String> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let now = now_ms();
    let end = aws_smithy_types::DateTime::from_millis(now as i64);
    let start = aws_smithy_types::DateTime::from_millis(now.saturating_sub(86_400_000) as i64);
    let mut request = cw.get_metric_data().start_time(start).end_time(end).scan_by(ScanBy::TimestampAscending);
    for (i, m) in METRICS.iter().enumerate() {
        let metric = Metric::builder()
            .namespace("AWS/Lambda")
            .metric_name(*m)
            .dimensions(Dimension::builder().name("FunctionName").value(name).build())
            .build();
        let stat = MetricStat::builder().metric(metric).period(period_s).stat("Sum").build();
        request = request.metric_data_queries(MetricDataQuery::builder().id(format!("m{i}")).metric_stat(stat).build());
    }
    let out = request.send().await.map_err(|e| format!("CloudWatch: {}", sdk_error(&e)))?;
    Ok(METRICS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let points = out
                .metric_data_results()
                .iter()
                .filter(|r| r.id() == Some(&format!("m{i}")))
                .flat_map(|r| r.timestamps().iter().zip(r.values()).map(|(t, v)| (t.to_millis().unwrap_or(0), *v)))
                .collect();
            (*m, points)
        })
        .collect())
}

/// Invocations, Errors, Throttles and AsyncEventsDropped of the last day.
pub(crate) async fn metrics(sdk: &aws_config::SdkConfig, name: &str) -> Result<Value, String> {
    let sums = metric_sums(sdk, name, 86_400).await?;
    Ok(Value::Object(sums.into_iter().map(|(m, points)| (m.to_owned(), json!(points.iter().map(|(_, v)| v).sum::<f64>()))).collect()))
}

/// The same four metrics of the last day, hour by hour: for each, the
/// hours' start (epoch ms) and sums, oldest first (the dashboard's chart).
pub(crate) async fn metrics_by_hour(sdk: &aws_config::SdkConfig, name: &str) -> Result<Value, String> {
    let sums = metric_sums(sdk, name, 3600).await?;
    Ok(Value::Object(sums.into_iter().map(|(m, points)| (m.to_owned(), json!(points.iter().map(|(t, v)| json!([t, v])).collect::<Vec<_>>()))).collect()))
}

pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

/// An SDK error in one line, led by the HTTP status when there was an
/// answer: a body the SDK could not read (an HTML error page from a proxy,
/// say) otherwise shows as a decoder's complaint ("unexpected type 0x3c").
pub(crate) fn sdk_error<E: std::error::Error + 'static>(e: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>) -> String {
    use aws_sdk_lambda::error::SdkError;
    let text = first_line(&error_text(e));
    match e {
        SdkError::ResponseError(r) => format!("HTTP {}, with a body that is not the service's answer ({text})", r.raw().status().as_u16()),
        // A body the SDK could not read as the service's error is shown as
        // it came (moto's CloudFormation passes on Lambda's JSON error so).
        SdkError::ServiceError(r) if text.contains("unhandled error") => {
            let body = r.raw().body().bytes().map(|b| first_line(&String::from_utf8_lossy(b))).unwrap_or_default();
            format!("HTTP {}: {text}; the body: {body}", r.raw().status().as_u16())
        }
        SdkError::ServiceError(r) => format!("HTTP {}: {text}", r.raw().status().as_u16()),
        _ => text,
    }
}

/// The EventBridge Scheduler schedules of function `name` (name and state).
pub(crate) async fn function_schedules(sdk: &aws_config::SdkConfig, name: &str) -> Result<Value, Problem> {
    let d = read(&aws_sdk_lambda::Client::new(sdk), name).await?;
    let schedules = schedules_of(sdk, &d.arn).await.map_err(Problem)?;
    Ok(schedules.into_iter().map(|(name, state, _)| json!({"name": name, "state": state})).collect())
}
