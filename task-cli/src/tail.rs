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
    // A name, an ARN or name:qualifier: the log group is the bare name's.
    let name = function.rsplit_once(":function:").map_or(function.as_str(), |(_, n)| n).split(':').next().unwrap_or_default().to_owned();
    let group = format!("/aws/lambda/{name}");
    let pattern = filter_pattern(a.task.as_deref(), a.id.as_deref());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let mut from = now_ms().saturating_sub(a.since.as_millis() as u64);
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let mut token: Option<String> = None;
        loop {
            let page = client
                .filter_log_events()
                .log_group_name(&group)
                .start_time(i64::try_from(from).unwrap_or(i64::MAX))
                .set_filter_pattern(pattern.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| match e.code() {
                    Some("ResourceNotFoundException") => Problem(format!(
                        "there is no log group {group}: `{name}` has not logged yet, or is not the function's name"
                    )),
                    _ => Problem(with_hint(format!("reading {group}: {}", error_text(&e)))),
                })?;
            for e in page.events() {
                let id = e.event_id().unwrap_or_default().to_owned();
                if !seen.insert(id) {
                    continue;
                }
                let ts = e.timestamp().map_or(0, |t| u64::try_from(t).unwrap_or(0));
                from = from.max(ts);
                println!("{} {} {}", time(ts), e.log_stream_name().unwrap_or("-"), e.message().unwrap_or_default().trim_end());
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        if !a.follow {
            return Ok(Exit::Complete);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// CloudWatch Logs' filter pattern for the task span's fields: quoted
/// terms, all of which a line must hold (`"id=…" "task=…"`).
fn filter_pattern(task: Option<&str>, id: Option<&str>) -> Option<String> {
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
