//! `tasks tail`: the worker's log lines from CloudWatch Logs
//! (`FilterLogEvents` on `/aws/lambda/FUNCTION`), filtered by the task
//! span's fields. task-local answers the same call for the lines it
//! forwards, so this works locally by the same code path.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;

use crate::cli::TailArgs;
use crate::render::time;
use crate::setup::{config_problem, error_text, now_ms, with_hint};
use crate::{Exit, Problem};

pub(crate) async fn tail(a: TailArgs) -> Result<Exit, Problem> {
    let config = task_runtime::Config::from_env().map_err(config_problem)?;
    let function = a.function.or(config.function).ok_or_else(|| Problem("which function's logs? pass --function NAME or set TASK_FUNCTION".into()))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let logs = Logs::new(&sdk, &function);
    let pattern = filter_pattern(a.task.as_deref(), a.id.as_deref());
    let mut from = now_ms().saturating_sub(a.since.as_millis() as u64);
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        for line in logs.lines(pattern.as_deref(), from).await? {
            if !seen.insert(line.event_id.clone()) {
                continue;
            }
            from = from.max(line.at_ms);
            println!("{} {} {}", time(line.at_ms), line.stream, line.message);
        }
        if !a.follow {
            return Ok(Exit::Complete);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One line of the function's log.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LogLine {
    pub(crate) event_id: String,
    pub(crate) at_ms: u64,
    pub(crate) stream: String,
    pub(crate) message: String,
}

/// A function's log group, read with `FilterLogEvents`.
#[derive(Debug, Clone)]
pub(crate) struct Logs {
    client: aws_sdk_cloudwatchlogs::Client,
    name: String,
    group: String,
}

impl Logs {
    /// The logs of `function` (a name, an ARN or `name:qualifier`: the log group is the bare name's).
    pub(crate) fn new(sdk: &aws_config::SdkConfig, function: &str) -> Self {
        let name = function.rsplit_once(":function:").map_or(function, |(_, n)| n).split(':').next().unwrap_or_default().to_owned();
        let group = format!("/aws/lambda/{name}");
        Logs { client: aws_sdk_cloudwatchlogs::Client::new(sdk), name, group }
    }

    /// The lines from `from_ms` on that hold `pattern`, oldest first.
    pub(crate) async fn lines(&self, pattern: Option<&str>, from_ms: u64) -> Result<Vec<LogLine>, Problem> {
        let (group, name) = (&self.group, &self.name);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(i64::try_from(from_ms).unwrap_or(i64::MAX))
                .set_filter_pattern(pattern.map(str::to_owned))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| match e.code() {
                    Some("ResourceNotFoundException") => Problem(format!(
                        "there is no log group {group}: `{name}` has not logged yet, or is not the function's name"
                    )),
                    _ => Problem(with_hint(format!("reading {group}: {}", error_text(&e)))),
                })?;
            out.extend(page.events().iter().map(|e| LogLine {
                event_id: e.event_id().unwrap_or_default().to_owned(),
                at_ms: e.timestamp().map_or(0, |t| u64::try_from(t).unwrap_or(0)),
                stream: e.log_stream_name().unwrap_or("-").to_owned(),
                message: e.message().unwrap_or_default().trim_end().to_owned(),
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

/// CloudWatch Logs' filter pattern for the task span's fields: quoted
/// terms, all of which a line must hold (`"id=…" "task=…"`).
pub(crate) fn filter_pattern(task: Option<&str>, id: Option<&str>) -> Option<String> {
    let terms: Vec<String> = [task.map(|t| format!("\"task={t}\"")), id.map(|i| format!("\"id={i}\""))].into_iter().flatten().collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_quote_the_span_fields() {
        assert_eq!(filter_pattern(Some("worker::flaky"), Some("demo-1")).as_deref(), Some("\"task=worker::flaky\" \"id=demo-1\""));
        assert_eq!(filter_pattern(None, None), None);
    }
}
