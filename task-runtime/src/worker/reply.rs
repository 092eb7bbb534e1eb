//! The reply to Lambda: what an attempt's decision tells Lambda (a
//! function error asks for its retry), and the summaries of calls that end
//! without one. It uses nothing else of the worker.

use serde_json::{Value, json};

use crate::outcome::{Decision, Reply};
use crate::response::{Failure, FailureKind, Status};
use crate::store::FinalState;

/// The reply for attempt `attempt` of call `id` that ended with `d`.
pub(super) fn reply_for(id: &str, task: &str, attempt: u32, d: &Decision) -> Reply {
    let which = if attempt == 0 { "an attempt".to_owned() } else { format!("attempt {attempt}") };
    let (failure, status) = match &d.state {
        FinalState::Complete(_) => (None, Status::Complete),
        FinalState::Retrying(f) | FinalState::Resend { failure: f, .. } => (Some(f), Status::Retrying),
        FinalState::Failed(f) => (Some(f), Status::Failed),
    };
    match (d.error_type, failure) {
        (Some(error_type), Some(f)) => {
            tracing::warn!(%status, kind = %f.kind, "{which} failed: {}", f.message);
            Reply::Error { error_type, message: format!("task `{task}` (id {id}): {which} failed: {f}") }
        }
        _ => {
            match failure {
                Some(f) => tracing::error!(%status, kind = %f.kind, "task failed: {}", f.message),
                // DEBUG, not INFO: a line for every call that went as it should
                // cost a warm invoke 7 to 10% (`cargo bench -p tests --bench
                // function`), and Lambda writes START/END/REPORT for each anyway.
                None => tracing::debug!(%status, "task complete"),
            }
            let mut body = summary_value(id, task, status, attempt, None);
            if let Some(f) = failure {
                body["error"] = json!(f);
            }
            Reply::Success(body)
        }
    }
}

pub(super) fn summary_value(id: &str, task: &str, status: Status, attempts: u32, note: Option<&str>) -> Value {
    let mut v = json!({"id": id, "task": task, "status": status, "attempts": attempts});
    if let Some(note) = note {
        v["note"] = json!(note);
    }
    v
}

pub(super) fn summary(id: &str, task: &str, status: Status, attempts: u32, note: Option<&str>) -> Reply {
    Reply::Success(summary_value(id, task, status, attempts, note))
}

pub(super) fn summary_error(id: Option<&str>, task: Option<&str>, kind: FailureKind, message: &str) -> Reply {
    Reply::Success(json!({"id": id, "task": task, "status": Status::Failed, "error": Failure::new(kind, message)}))
}
