//! The emulator's shared state: its functions, counters, failure
//! destination, and the work in flight that a shutdown drains.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::function::Function;
use crate::stats::Stats;

/// Where events go that Lambda gives up on.
#[derive(Debug)]
pub(crate) enum OnFailure {
    /// Appended as JSON lines.
    File(Mutex<File>),
    /// Invoked asynchronously on this function, with Lambda's record.
    Function(String),
    /// Sent to an SQS queue that an event source mapping reads into this
    /// function in batches, as the generated template deploys it.
    Sqs(Arc<crate::failure_queue::FailureQueue>),
}

/// The faults task-local injects, as AWS occasionally behaves.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// The fraction of asynchronous events delivered twice at once.
    pub(crate) duplicate_deliveries: f64,
    /// The fraction of schedule ticks EventBridge Scheduler delivers a
    /// second time, as a retry with a new execution id.
    pub(crate) scheduler_retries: f64,
    /// The on-failure destination's message limit, in bytes: a record over
    /// it loses its `requestPayload`, as Lambda's do.
    pub(crate) destination_limit: usize,
}

#[derive(Debug)]
pub(crate) struct Emulator {
    pub(crate) functions: HashMap<String, Arc<Function>>,
    pub(crate) stats: Stats,
    /// What the instances printed, for `FilterLogEvents`.
    pub(crate) logs: Arc<crate::logs::Logs>,
    pub(crate) on_failure: Option<OnFailure>,
    /// The faults injected.
    pub(crate) faults: Faults,
    /// One-time schedules by name: what they are, and their timers.
    pub(crate) schedules: Mutex<HashMap<String, crate::emulator::Schedule>>,
    pub(crate) region: String,
    draining: AtomicBool,
    in_flight: watch::Sender<usize>,
}

/// A one-time schedule (EventBridge Scheduler) and the timer that fires it.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// What GetSchedule answers.
    pub(crate) description: serde_json::Value,
    pub(crate) timer: tokio::task::AbortHandle,
}

/// Counts work in flight until dropped.
#[derive(Debug)]
pub(crate) struct Tracked(watch::Sender<usize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Emulator {
    pub(crate) fn new(functions: Vec<Function>, logs: Arc<crate::logs::Logs>, on_failure: Option<OnFailure>, faults: Faults, region: &str) -> Self {
        let stats = Stats::default();
        for f in &functions {
            stats.update(&f.cfg.name, |_| {});
        }
        Self {
            functions: functions.into_iter().map(|f| (f.cfg.name.clone(), Arc::new(f))).collect(),
            stats,
            logs,
            on_failure,
            faults,
            schedules: Mutex::new(HashMap::new()),
            region: region.to_owned(),
            draining: AtomicBool::new(false),
            in_flight: watch::Sender::new(0),
        }
    }

    pub(crate) fn track(&self) -> Tracked {
        self.in_flight.send_modify(|n| *n += 1);
        Tracked(self.in_flight.clone())
    }

    /// Events queued, waiting for a retry or running, and other work in flight.
    pub(crate) fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Stop accepting, wait for what runs (at most `limit`), stop every instance.
    pub(crate) async fn drain(&self, limit: std::time::Duration) {
        self.draining.store(true, Ordering::SeqCst);
        let mut rx = self.in_flight.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
        for f in self.functions.values() {
            f.stop_all().await;
        }
    }

    /// A function by name, ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`),
    /// partial ARN (`ACCOUNT:function:NAME`) or `NAME:QUALIFIER`. There is one
    /// build of each function, so every qualifier (a version, an alias,
    /// `$LATEST`) resolves to it: production ARNs work unchanged locally.
    ///
    /// Returns the function and the ARN it was invoked as: with the
    /// qualifier, when one was given, as Lambda tells the function.
    pub(crate) fn resolve(&self, name: &str) -> Option<(Arc<Function>, String)> {
        let parts: Vec<&str> = name.split(':').collect();
        let (short, qualifier) = match parts.as_slice() {
            ["arn", _, "lambda", _, _, "function", n, rest @ ..] | [_, "function", n, rest @ ..] | [n, rest @ ..] => (*n, rest.first()),
            [] => return None,
        };
        let f = self.functions.get(short)?.clone();
        let invoked = match qualifier {
            Some(q) if !q.is_empty() => format!("{}:{q}", f.arn),
            _ => f.arn.clone(),
        };
        Some((f, invoked))
    }
}

/// An error in the shape the AWS SDKs parse.
pub(crate) fn aws_error(status: StatusCode, code: &str, message: String, request_id: &str) -> Response {
    let body = serde_json::json!({"Type": "User", "message": message, "Message": message});
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}
