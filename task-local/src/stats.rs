//! Counters per function, one record per invocation, the REPORT lines and
//! the shutdown summary. Served as JSON on `GET /stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Counters of one function.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct FunctionStats {
    pub(crate) invocations: u64,
    pub(crate) success: u64,
    pub(crate) function_error: u64,
    pub(crate) timeout: u64,
    pub(crate) crash: u64,
    pub(crate) init_error: u64,
    pub(crate) cold_starts: u64,
    pub(crate) retries: u64,
    pub(crate) dropped: u64,
    /// Asynchronous events delivered twice, at once, under one request id.
    pub(crate) duplicate_deliveries: u64,
    /// Schedule ticks delivered again as Scheduler's retry, with a new execution id.
    pub(crate) scheduler_retries: u64,
    /// Failure-queue batches this function was invoked with (`--on-failure sqs:NAME`).
    pub(crate) sqs_batches: u64,
    /// Their messages deleted (handled), and returned to the queue (`batchItemFailures` or an error).
    pub(crate) sqs_deleted: u64,
    pub(crate) sqs_returned: u64,
    pub(crate) throttled: u64,
    /// Asynchronous events waiting for a free instance.
    pub(crate) queue_depth: u64,
    pub(crate) running: u64,
    pub(crate) max_running: u64,
    pub(crate) instances: u64,
    pub(crate) max_instances: u64,
    /// The most resident memory any instance reached, in MB.
    pub(crate) max_memory_used_mb: u64,
}

/// One invocation, as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InvocationRecord {
    pub(crate) request_id: String,
    pub(crate) function: String,
    pub(crate) attempt: u32,
    pub(crate) cold: bool,
    /// Milliseconds to a hundredth, as Lambda's REPORT line gives them.
    pub(crate) init_ms: Option<f64>,
    pub(crate) duration_ms: f64,
    /// The function's `--memory`.
    pub(crate) memory_size_mb: u32,
    /// The instance's peak resident memory so far (`None` where it cannot be read).
    pub(crate) max_memory_used_mb: Option<u64>,
    /// `success`, `error`, `timeout`, `crash` or `init_error`.
    pub(crate) outcome: &'static str,
    /// The function's errorType, when it reported one.
    pub(crate) error_type: Option<String>,
}

/// The most records kept for `/stats`.
const MAX_RECORDS: usize = 20_000;

#[derive(Debug, Default)]
pub(crate) struct Stats {
    inner: Mutex<(BTreeMap<String, FunctionStats>, Vec<InvocationRecord>)>,
}

impl Stats {
    pub(crate) fn update(&self, function: &str, f: impl FnOnce(&mut FunctionStats)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = g.0.entry(function.to_owned()).or_default();
        f(s);
        s.max_running = s.max_running.max(s.running);
        s.max_instances = s.max_instances.max(s.instances);
    }

    pub(crate) fn record(&self, r: InvocationRecord) {
        say!("{}", report_line(&r));
        self.update(&r.function, |s| {
            s.invocations += 1;
            s.max_memory_used_mb = s.max_memory_used_mb.max(r.max_memory_used_mb.unwrap_or(0));
            s.cold_starts += u64::from(r.cold);
            match r.outcome {
                "success" => s.success += 1,
                "error" => s.function_error += 1,
                "timeout" => s.timeout += 1,
                "crash" => s.crash += 1,
                _ => s.init_error += 1,
            }
        });
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.1.len() >= MAX_RECORDS {
            g.1.remove(0);
        }
        g.1.push(r);
    }

    /// The counters, and the records of single invocations when `records`.
    pub(crate) fn json(&self, records: bool) -> serde_json::Value {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if records { serde_json::json!({"functions": g.0, "invocations": g.1}) } else { serde_json::json!({"functions": g.0}) }
    }

    pub(crate) fn summary(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from("task-local summary:\n");
        for (name, s) in &g.0 {
            out.push_str(&format!(
                "  {name}: {} invocations ({} success, {} error, {} timeout, {} crash, {} init error), {} cold starts, {} retries, {} dropped, {} throttled, at most {} running on {} instances, at most {} MB used\n",
                s.invocations, s.success, s.function_error, s.timeout, s.crash, s.init_error, s.cold_starts, s.retries, s.dropped, s.throttled, s.max_running, s.max_instances, s.max_memory_used_mb
            ));
        }
        out
    }
}

/// The REPORT line of one invocation. Lambda's gives durations to a
/// hundredth of a millisecond ("Duration: 395.99 ms ... Init Duration:
/// 265.72 ms"): <https://docs.aws.amazon.com/lambda/latest/operatorguide/log-structure.html>
fn report_line(r: &InvocationRecord) -> String {
    let init = r.init_ms.map(|ms| format!(" Init: {ms:.2} ms")).unwrap_or_default();
    let error = r.error_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
    let used = r.max_memory_used_mb.map(|mb| format!(" Max Memory Used: {mb} MB")).unwrap_or_default();
    format!(
        "REPORT RequestId: {} Function: {} Attempt: {} {}{init} Duration: {:.2} ms Memory Size: {} MB{used} Outcome: {}{error}",
        r.request_id,
        r.function,
        r.attempt,
        if r.cold { "Cold" } else { "Warm" },
        r.duration_ms,
        r.memory_size_mb,
        r.outcome
    )
}

/// `d` in milliseconds, to a hundredth.
pub(crate) fn ms_hundredths(d: std::time::Duration) -> f64 {
    (d.as_micros() / 10) as f64 / 100.0
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_gives_milliseconds_to_a_hundredth_as_lambda_does() {
        let d = std::time::Duration::from_micros(7_126);
        assert_eq!(ms_hundredths(d), 7.12);
        let r = InvocationRecord {
            request_id: "r-1".into(),
            function: "worker".into(),
            attempt: 1,
            cold: true,
            init_ms: Some(ms_hundredths(d)),
            duration_ms: ms_hundredths(std::time::Duration::from_micros(3_050)),
            memory_size_mb: 128,
            max_memory_used_mb: Some(14),
            outcome: "error",
            error_type: Some("TaskRetry".into()),
        };
        assert_eq!(
            report_line(&r),
            "REPORT RequestId: r-1 Function: worker Attempt: 1 Cold Init: 7.12 ms Duration: 3.05 ms Memory Size: 128 MB Max Memory Used: 14 MB Outcome: error (TaskRetry)"
        );
    }
}
