//! One instance of a function: a real child process with the environment a
//! Lambda function sees, and its own Runtime API on a loopback port.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::cli::FunctionConfig;
use crate::logs::Logs;
use crate::stats::now_ms;

/// How an invocation ended, as the instance saw it.
#[derive(Debug)]
pub(crate) enum Outcome {
    Success(Bytes),
    FunctionError { error_type: String, body: Bytes },
    Timeout,
    Crash(String),
    InitError(String),
}

/// One invocation handed to an instance.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) request_id: String,
    /// The function ARN the caller invoked, with its qualifier when it gave one.
    pub(crate) invoked_arn: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    function: String,
    /// This instance's log stream, as on Lambda.
    log_stream: String,
    /// Where forwarded lines are kept for `FilterLogEvents`.
    logs: Arc<Logs>,
    jobs_tx: mpsc::Sender<Job>,
    jobs_rx: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    /// The job being run: its request id and where its outcome goes.
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    /// What forwarded output is labelled with: `init` until the first
    /// invocation, then the request id of the latest one.
    log_label: Mutex<String>,
    /// One line to each output forwarder: "print all you can read now, then
    /// answer". `/next` asks before it relabels, so output the process wrote
    /// before asking for its next event keeps the previous request id.
    catch_up: Mutex<Vec<mpsc::UnboundedSender<oneshot::Sender<()>>>>,
    /// Signalled at the first `/next`: init is done.
    ready: Notify,
    init_error: Mutex<Option<String>>,
    dead: AtomicBool,
    /// The process id (0 until it is started).
    pid: AtomicU32,
    kill: Notify,
    /// Becomes true once the process has exited.
    exited: tokio::sync::watch::Sender<bool>,
}

/// The Lambda environment an instance starts with, from `port` (its Runtime API).
fn lambda_env(cfg: &FunctionConfig, region: &str, runtime_port: u16, invoke_port: u16, stream: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{runtime_port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", cfg.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", cfg.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", cfg.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream.to_owned()),
        ("AWS_REGION", region.into()),
        ("AWS_DEFAULT_REGION", region.into()),
        ("AWS_ACCESS_KEY_ID", "TASKLOCAL".into()),
        ("AWS_SECRET_ACCESS_KEY", "tasklocalsecret".into()),
        ("AWS_SESSION_TOKEN", "tasklocaltoken".into()),
        ("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{invoke_port}")),
        ("AWS_ENDPOINT_URL_SCHEDULER", format!("http://127.0.0.1:{invoke_port}")),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_rust_task_local".into()),
        ("LAMBDA_TASK_ROOT", cfg.path.parent().map(|p| p.display().to_string()).unwrap_or_default()),
        ("_HANDLER", "bootstrap".into()),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for keep in ["PATH", "RUST_LOG", "RUST_BACKTRACE"] {
        if let Ok(v) = std::env::var(keep) {
            env.push((keep.to_owned(), v));
        }
    }
    env.extend(cfg.env.iter().cloned());
    env
}

impl Instance {
    /// Start a process and wait (up to 10 s, Lambda's init limit) for its
    /// first `/next`. Returns the instance and its init duration.
    pub(crate) async fn start(
        cfg: &FunctionConfig,
        logs: Arc<Logs>,
        region: &str,
        invoke_port: u16,
        id: u64,
    ) -> Result<(Arc<Instance>, Duration), String> {
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let inst = Arc::new(Instance {
            id,
            function: cfg.name.clone(),
            log_stream: format!("2026/01/01/[$LATEST]{:032x}", u128::from(id) << 64 | u128::from(uuid::Uuid::new_v4().as_u64_pair().0)),
            logs,
            jobs_tx,
            jobs_rx: tokio::sync::Mutex::new(jobs_rx),
            current: Mutex::new(None),
            log_label: Mutex::new("init".to_owned()),
            catch_up: Mutex::new(Vec::new()),
            ready: Notify::new(),
            init_error: Mutex::new(None),
            dead: AtomicBool::new(false),
            pid: AtomicU32::new(0),
            kill: Notify::new(),
            exited: tokio::sync::watch::Sender::new(false),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind a Runtime API port: {e}"))?;
        let runtime_port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(inst.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let started = Instant::now();
        let mut child = tokio::process::Command::new(&cfg.path)
            .env_clear()
            .envs(lambda_env(cfg, region, runtime_port, invoke_port, &inst.log_stream))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                server.abort();
                format!("cannot start {}: {e}", cfg.path.display())
            })?;
        inst.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(BufReader::new(out), inst.clone(), false, inst.forwarder()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(BufReader::new(err), inst.clone(), true, inst.forwarder()));
        }
        let waiter = inst.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                () = waiter.kill.notified() => {
                    let _ = child.kill().await;
                    "killed".to_owned()
                }
            };
            waiter.dead.store(true, Ordering::SeqCst);
            waiter.exited.send_replace(true);
            server.abort();
            if let Some((_, reply)) = waiter.current.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = reply.send(Outcome::Crash(format!("Runtime exited with error: {status}")));
            }
            waiter.ready.notify_one();
        });

        let ready = tokio::time::timeout(Duration::from_secs(10), inst.ready.notified()).await;
        if let Some(e) = inst.init_error.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            inst.stop();
            return Err(e);
        }
        if ready.is_err() {
            inst.stop();
            return Err("init did not finish within 10 s".to_owned());
        }
        if inst.is_dead() {
            return Err("the process exited during init".to_owned());
        }
        Ok((inst, started.elapsed()))
    }

    /// The process's resident memory now and at its peak, in MB (rounded
    /// up), from `/proc`: `None` where there is no `/proc`, or once the
    /// process has gone.
    pub(crate) fn memory_mb(&self) -> Option<Memory> {
        let pid = self.pid.load(Ordering::SeqCst);
        if pid == 0 || self.is_dead() {
            return None;
        }
        Memory::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Kill the process (timeout, shutdown).
    pub(crate) fn stop(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }

    /// Wait (at most `limit`) until the process has exited.
    pub(crate) async fn exited(&self, limit: Duration) {
        let mut rx = self.exited.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|e| *e)).await;
    }

    /// Hand a job to the process; its `/next` picks it up.
    pub(crate) async fn run(&self, job: Job) -> Result<(), Job> {
        self.jobs_tx.send(job).await.map_err(|e| e.0)
    }

    fn finish(&self, request_id: &str, outcome: Outcome) -> StatusCode {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match cur.take() {
            Some((id, reply)) if id == request_id => {
                let _ = reply.send(outcome);
                StatusCode::ACCEPTED
            }
            other => {
                *cur = other;
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// Resident memory of an instance, in MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    pub(crate) now: u64,
    pub(crate) peak: u64,
}

impl Memory {
    /// From `/proc/PID/status`: `VmRSS` (now) and `VmHWM` (peak), in kB.
    fn parse(status: &str) -> Option<Memory> {
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        let mb = |kb: u64| kb.div_ceil(1024);
        Some(Memory { now: mb(kb("VmRSS:")?), peak: mb(kb("VmHWM:")?) })
    }
}

/// Print each line of one output stream with the function, instance and
/// request id; on a catch-up request, print whatever can be read at once,
/// then answer.
async fn forward<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    inst: Arc<Instance>,
    stderr: bool,
    mut catch_up: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let print = |line: String| {
        inst.logs.push(&inst.function, &inst.log_stream, now_ms(), line.clone());
        let rid = inst.log_label.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if stderr {
            complain!("[{} #{} {rid}] {line}", inst.function, inst.id);
        } else {
            say!("[{} #{} {rid}] {line}", inst.function, inst.id);
        }
    };
    let mut lines = reader.lines();
    loop {
        // `next_line` is cancel-safe: a line half read stays buffered.
        tokio::select! {
            biased;
            line = lines.next_line() => match line {
                Ok(Some(line)) => print(line),
                _ => return,
            },
            Some(done) = catch_up.recv() => {
                // A zero timeout polls the read once: what is ready, not what may come.
                while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::ZERO, lines.next_line()).await {
                    print(line);
                }
                let _ = done.send(());
            }
        }
    }
}

impl Instance {
    /// A catch-up channel for one output forwarder.
    fn forwarder(&self) -> mpsc::UnboundedReceiver<oneshot::Sender<()>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.catch_up.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Let the forwarders print what the process has written so far (at
    /// most 100 ms, so slow output never holds up an invocation).
    async fn catch_up_output(&self) {
        let asked: Vec<_> = self
            .catch_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|tx| {
                let (done, answer) = oneshot::channel();
                tx.send(done).ok().map(|()| answer)
            })
            .collect();
        for answer in asked {
            let _ = tokio::time::timeout(Duration::from_millis(100), answer).await;
        }
    }
}

async fn next(State(inst): State<Arc<Instance>>) -> Response {
    inst.catch_up_output().await;
    inst.ready.notify_one();
    let job = inst.jobs_rx.lock().await.recv().await;
    let Some(job) = job else { return StatusCode::GONE.into_response() };
    let trace = format!("Root=1-{:08x}-{}", job.deadline_ms / 1000, &uuid::Uuid::new_v4().simple().to_string()[..24]);
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", job.request_id.clone()),
        ("lambda-runtime-deadline-ms", job.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", job.invoked_arn.clone()),
        ("lambda-runtime-trace-id", trace),
        ("content-type", "application/json".to_owned()),
    ];
    for (k, v) in pairs {
        if let Ok(v) = v.parse() {
            headers.insert(k, v);
        }
    }
    inst.log_label.lock().unwrap_or_else(|p| p.into_inner()).clone_from(&job.request_id);
    *inst.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((job.request_id, job.reply));
    (StatusCode::OK, headers, job.payload).into_response()
}

async fn response(State(inst): State<Arc<Instance>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    inst.finish(&id, Outcome::Success(body))
}

async fn error(State(inst): State<Arc<Instance>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let error_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_owned))
        .or_else(|| headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .unwrap_or_else(|| "Unhandled".to_owned());
    inst.finish(&id, Outcome::FunctionError { error_type, body })
}

async fn init_error(State(inst): State<Arc<Instance>>, body: Bytes) -> StatusCode {
    *inst.init_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("init error: {}", String::from_utf8_lossy(&body)));
    inst.ready.notify_one();
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::Memory;

    #[test]
    fn memory_is_read_from_proc_status_in_mb_rounded_up() {
        let status = "Name:\tworker\nVmHWM:\t   13692 kB\nVmRSS:\t    8192 kB\nThreads:\t3\n";
        assert_eq!(Memory::parse(status), Some(Memory { now: 8, peak: 14 }));
        assert_eq!(Memory::parse("Name:\tzombie\n"), None);
    }
}
