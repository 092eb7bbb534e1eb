//! How calls are printed: text for people, JSON for scripts.

use serde_json::{Value, json};
use task_runtime::envelope::PayloadRef;
use task_runtime::{AsyncResponse, Status};

use crate::Exit;

/// `2026-11-27T10:14:56.789Z` for epoch ms.
pub(crate) fn time(epoch_ms: u64) -> String {
    let dt = aws_smithy_types::DateTime::from_millis(i64::try_from(epoch_ms).unwrap_or(i64::MAX));
    dt.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_else(|_| epoch_ms.to_string())
}

/// What a call's state means for the exit code.
pub(crate) fn exit_of(r: Option<&AsyncResponse>) -> Exit {
    match r.map(|r| r.status) {
        None => Exit::Unknown,
        Some(Status::Complete) => Exit::Complete,
        Some(Status::Failed | Status::Cancelled) => Exit::Failed,
        // Nobody runs it and no retry comes: it will not change.
        Some(_) if r.is_some_and(|r| r.stale) => Exit::Failed,
        Some(_) => Exit::Unfinished,
    }
}

/// One call as JSON: its id, whether it was found, and what a poll returns.
pub(crate) fn json_of(id: &str, r: Option<&AsyncResponse>) -> Value {
    match r {
        None => json!({"id": id, "found": false}),
        Some(r) => {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            // Read from an index (a listing), a value kept in S3 is its size and place.
            if let Some(stored) = r.response.as_ref().and_then(PayloadRef::in_value) {
                v["response"] = json!({"kept_in": stored.to_string(), "bytes": stored.size});
            }
            if let Some(stored) = r.error.as_ref().and_then(|e| PayloadRef::in_text(&e.message)) {
                v["error"]["message"] = json!(stored.summary());
            }
            v["id"] = json!(id);
            v["found"] = json!(true);
            v
        }
    }
}

/// One call as text: a block of `name  value` lines.
pub(crate) fn text_of(id: &str, r: Option<&AsyncResponse>) -> String {
    let Some(r) = r else {
        return format!("id        {id}\nstatus    unknown (no such call, or it expired)\n");
    };
    let mut out = format!("id        {id}\ntask      {}\nstatus    {}", r.task, r.status);
    if r.stale {
        out.push_str(" (stale: its worker is gone and no retry is left)");
    }
    out.push_str(&format!("\nattempts  {}\ncreated   {}\nupdated   {}\n", r.attempts, time(r.created_at), time(r.updated_at)));
    if let Some(at) = r.run_at {
        let label = match r.status {
            Status::Scheduled | Status::Pending => "runs at ",
            Status::Retrying => "next try",
            _ => "was due ",
        };
        out.push_str(&format!("{label}  {}\n", time(at)));
    }
    if let Some(p) = &r.parent {
        out.push_str(&format!("parent    {p}\n"));
    }
    if let Some(v) = &r.response {
        out.push_str(&format!("response  {v}\n"));
    }
    if let Some(f) = &r.error {
        out.push_str(&format!("failure   {f}\n"));
    }
    out
}

/// A table: a header and rows, each column as wide as its widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, (cell, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                s.push_str(&cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let t = table(&["ID", "STATUS"], &[vec!["a".into(), "complete".into()], vec!["long-id".into(), "failed".into()]]);
        assert_eq!(t, "ID       STATUS\na        complete\nlong-id  failed\n");
    }

    #[test]
    fn a_call_its_policy_retries_shows_when_its_next_attempt_is_due() {
        let r: AsyncResponse = serde_json::from_value(json!({
            "status": "retrying", "task": "partner.call", "attempts": 3, "created_at": 1, "updated_at": 2,
            "run_at": 1_795_774_496_789u64, "error": {"kind": "error", "message": "429"}, "stale": false,
        }))
        .expect("a response");
        let text = text_of("7", Some(&r));
        assert!(text.contains("next try  2026-11-27T10:14:56.789Z"), "{text}");
        let done = AsyncResponse { status: Status::Failed, ..r };
        assert!(text_of("7", Some(&done)).contains("was due   2026-11-27T10:14:56.789Z"));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(1_795_774_496_789), "2026-11-27T10:14:56.789Z");
    }
}
