//! One function: its instances (started on demand, kept warm, never more
//! than `concurrency`), and one invocation run on them with its deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::cli::FunctionConfig;
use crate::instance::{Instance, Job, Outcome};
use crate::logs::Logs;
use crate::stats::{InvocationRecord, Stats, ms_hundredths, now_ms};

#[derive(Debug)]
pub(crate) struct Function {
    pub(crate) cfg: FunctionConfig,
    pub(crate) arn: String,
    region: String,
    invoke_port: u16,
    logs: Arc<Logs>,
    /// One permit per instance that may run: the concurrency limit.
    pub(crate) slots: Arc<Semaphore>,
    idle: Mutex<Vec<Arc<Instance>>>,
    all: Mutex<Vec<Arc<Instance>>>,
    next_id: AtomicU64,
}

impl Function {
    pub(crate) fn new(cfg: FunctionConfig, region: &str, invoke_port: u16, logs: Arc<Logs>) -> Self {
        Self {
            arn: format!("arn:aws:lambda:{region}:000000000000:function:{}", cfg.name),
            slots: Arc::new(Semaphore::new(cfg.concurrency)),
            region: region.to_owned(),
            invoke_port,
            logs,
            idle: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            cfg,
        }
    }

    /// An idle warm instance, or a new one (cold).
    async fn instance(&self, stats: &Stats) -> Result<(Arc<Instance>, Option<std::time::Duration>), String> {
        loop {
            let warm = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match warm {
                Some(i) if i.is_dead() => continue,
                Some(i) => return Ok((i, None)),
                None => break,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (inst, init) = Instance::start(&self.cfg, self.logs.clone(), &self.region, self.invoke_port, id).await?;
        self.all.lock().unwrap_or_else(|p| p.into_inner()).push(inst.clone());
        stats.update(&self.cfg.name, |s| s.instances += 1);
        Ok((inst, Some(init)))
    }

    fn retire(&self, inst: &Arc<Instance>, stats: &Stats) {
        inst.stop();
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let before = all.len();
        all.retain(|i| !Arc::ptr_eq(i, inst));
        if all.len() < before {
            stats.update(&self.cfg.name, |s| s.instances -= 1);
        }
    }

    /// Run one invocation on an instance. The caller holds a slot permit.
    pub(crate) async fn invoke(
        &self,
        stats: &Stats,
        request_id: &str,
        invoked_arn: &str,
        payload: Bytes,
        attempt: u32,
        _slot: &OwnedSemaphorePermit,
    ) -> Outcome {
        stats.update(&self.cfg.name, |s| s.running += 1);
        let started = Instant::now();
        let (outcome, cold, init, memory_mb) = match self.instance(stats).await {
            Err(e) => (Outcome::InitError(e), true, None, None),
            Ok((inst, init)) => {
                let deadline_ms = now_ms() + self.cfg.timeout.as_millis() as u64;
                let (tx, rx) = oneshot::channel();
                let job = Job { request_id: request_id.to_owned(), invoked_arn: invoked_arn.to_owned(), payload, deadline_ms, reply: tx };
                let limit = u64::from(self.cfg.memory_mb);
                let outcome = match inst.run(job).await {
                    Err(_) => Outcome::Crash("the instance stopped before the invocation".into()),
                    Ok(()) => {
                        let finished = async { tokio::select! { o = rx => Ok(o), used = over_memory(&inst, limit) => Err(used) } };
                        match tokio::time::timeout(self.cfg.timeout, finished).await {
                            Err(_) => Outcome::Timeout,
                            Ok(Err(used)) => Outcome::Crash(format!("Runtime exited with error: signal: killed (it used {used} MB; its memory is {limit} MB)")),
                            Ok(Ok(Err(_))) => Outcome::Crash("the instance stopped mid-invocation".into()),
                            Ok(Ok(Ok(o))) => o,
                        }
                    }
                };
                // Read before an instance over its memory is retired (killed).
                let peak = inst.memory_mb().map(|m| m.peak);
                match outcome {
                    Outcome::Success(_) | Outcome::FunctionError { .. } if !inst.is_dead() => {
                        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(inst);
                    }
                    _ => self.retire(&inst, stats),
                }
                (outcome, init.is_some(), init, peak)
            }
        };
        stats.update(&self.cfg.name, |s| s.running -= 1);
        let (name, error_type) = match &outcome {
            Outcome::Success(_) => ("success", None),
            Outcome::FunctionError { error_type, .. } => ("error", Some(error_type.clone())),
            Outcome::Timeout => ("timeout", None),
            Outcome::Crash(_) => ("crash", None),
            Outcome::InitError(_) => ("init_error", None),
        };
        let total = started.elapsed();
        stats.record(InvocationRecord {
            request_id: request_id.to_owned(),
            function: self.cfg.name.clone(),
            attempt,
            cold,
            init_ms: init.map(ms_hundredths),
            duration_ms: ms_hundredths(total.saturating_sub(init.unwrap_or_default())),
            memory_size_mb: self.cfg.memory_mb,
            max_memory_used_mb: memory_mb,
            outcome: name,
            error_type,
        });
        outcome
    }

    /// Stop every instance and wait (briefly) for each process to exit.
    pub(crate) async fn stop_all(&self) {
        let all: Vec<_> = self.all.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        for inst in &all {
            inst.stop();
        }
        for inst in &all {
            inst.exited(std::time::Duration::from_secs(3)).await;
        }
    }

    /// The error body Lambda returns for an outcome that is not a success.
    pub(crate) fn error_body(&self, request_id: &str, outcome: &Outcome) -> Option<Bytes> {
        let (t, m) = match outcome {
            Outcome::Success(_) => return None,
            Outcome::FunctionError { body, .. } => return Some(body.clone()),
            Outcome::Timeout => ("Sandbox.Timedout", format!("RequestId: {request_id} Error: Task timed out after {:.2} seconds", self.cfg.timeout.as_secs_f64())),
            Outcome::Crash(why) => ("Runtime.ExitError", format!("RequestId: {request_id} Error: {why}")),
            Outcome::InitError(why) => ("Runtime.InitError", format!("RequestId: {request_id} Error: {why}")),
        };
        Some(Bytes::from(serde_json::json!({"errorType": t, "errorMessage": m}).to_string()))
    }
}

/// Resolves, with the MB in use, once the instance's resident memory goes
/// over `limit_mb`, as Lambda kills a function that runs out of memory.
/// Checked every 20 ms; never resolves where memory cannot be read.
async fn over_memory(inst: &Instance, limit_mb: u64) -> u64 {
    let period = std::time::Duration::from_millis(20);
    // The first look is one period in: a short invocation reads /proc only once, at its end.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        match inst.memory_mb() {
            Some(m) if m.now > limit_mb => return m.now,
            Some(_) => {}
            None => std::future::pending::<()>().await,
        }
    }
}
