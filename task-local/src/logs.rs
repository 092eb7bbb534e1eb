//! What the instances printed, kept for CloudWatch Logs' `FilterLogEvents`
//! (as `/aws/lambda/NAME`, one stream per instance): so that log readers,
//! such as `tasks tail`, work locally as on AWS. The newest 100,000 lines
//! are kept.

use std::collections::VecDeque;
use std::sync::Mutex;

/// The most lines kept.
const MAX_EVENTS: usize = 100_000;

/// One line an instance printed.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    /// A number, increasing: the event id and the paging token.
    pub(crate) seq: u64,
    pub(crate) function: String,
    pub(crate) stream: String,
    pub(crate) timestamp_ms: u64,
    pub(crate) message: String,
}

#[derive(Debug, Default)]
pub(crate) struct Logs {
    inner: Mutex<(VecDeque<LogEvent>, u64)>,
}

impl Logs {
    pub(crate) fn push(&self, function: &str, stream: &str, timestamp_ms: u64, message: String) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (events, next) = &mut *g;
        *next += 1;
        events.push_back(LogEvent { seq: *next, function: function.to_owned(), stream: stream.to_owned(), timestamp_ms, message });
        if events.len() > MAX_EVENTS {
            events.pop_front();
        }
    }

    /// Lines of `function` from `start_ms` to `end_ms` that match `pattern`,
    /// from event `after` on, at most `limit`; and whether more remain.
    pub(crate) fn filter(&self, function: &str, start_ms: u64, end_ms: u64, pattern: &str, after: u64, limit: usize) -> (Vec<LogEvent>, bool) {
        let terms = terms(pattern);
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = g
            .0
            .iter()
            .filter(|e| e.seq > after && e.function == function && (start_ms..=end_ms).contains(&e.timestamp_ms))
            .filter(|e| terms.iter().all(|t| e.message.contains(t.as_str())));
        let page: Vec<LogEvent> = found.by_ref().take(limit).cloned().collect();
        let more = found.next().is_some();
        (page, more)
    }
}

/// The terms of a CloudWatch Logs filter pattern, as far as task-local
/// reads one: words and "quoted phrases", all of which a line must hold.
pub(crate) fn terms(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pattern.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push(quoted[..end].to_owned());
            rest = quoted.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    out.retain(|t| !t.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_words_and_quoted_phrases() {
        assert_eq!(terms(r#""id=demo-1" "task=worker::flaky" ERROR"#), ["id=demo-1", "task=worker::flaky", "ERROR"]);
        assert!(terms("  ").is_empty());
    }

    #[test]
    fn filter_pages_through_matching_lines() {
        let logs = Logs::default();
        for i in 0..5 {
            logs.push("w", "s", 10 + i, format!("line {i} id=a"));
        }
        logs.push("other", "s", 12, "line id=a".into());
        let (page, more) = logs.filter("w", 11, 100, "\"id=a\"", 0, 2);
        assert_eq!(page.iter().map(|e| e.timestamp_ms).collect::<Vec<_>>(), [11, 12]);
        assert!(more);
        let (rest, more) = logs.filter("w", 11, 100, "\"id=a\"", page[1].seq, 10);
        assert_eq!((rest.len(), more), (2, false));
    }
}
