//! Start the real `task-local` binary for a test; stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Build the emulator and the workers (a no-op when they are fresh), so a
/// test never runs a stale binary; in release when this is a release build
/// (a benchmark).
fn build_binaries() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = profile_dir().ends_with("release");
        let mut build = Command::new(&cargo);
        build.args(["build", "--quiet", "-p", "task-local", "-p", "tests", "--bin", "task-local", "--bin", "bench-worker", "--bin", "bench-bare"]);
        if release {
            // A benchmark: only what it runs.
            build.arg("--release");
        } else {
            build.args(["-p", "examples", "-p", "task-cli", "--bin", "fault-worker", "--bin", "tasks"]);
            build.args(["--example", "worker", "--example", "http", "--example", "quickstart", "--example", "client"]);
        }
        let status = build
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of task-local and the examples failed");
        if !release {
            // On its own: only this binary links the OTLP exporter.
            let status = Command::new(&cargo)
                .args(["build", "--quiet", "-p", "tests", "--features", "otel", "--bin", "otel-worker"])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build of otel-worker failed");
        }
    });
}

/// A binary of this workspace's target directory, built first.
pub fn built(relative: &str) -> PathBuf {
    build_binaries();
    let path = profile_dir().join(relative);
    assert!(path.is_file(), "{} is not built", path.display());
    path
}

/// `target/debug` (or `target/release`): where this test's binary was built.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent().and_then(|deps| deps.parent()).expect("target/PROFILE").to_path_buf()
}

/// A running emulator. It runs with `--stop-on-stdin-eof`, so it also stops
/// when this process ends without dropping it.
pub struct TaskLocal {
    pub endpoint: String,
    pub output: Arc<Mutex<Vec<String>>>,
    child: Child,
}

impl TaskLocal {
    /// `task-local serve --port 0 --stop-on-stdin-eof ARGS...`
    pub fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::started(args, true)
    }

    /// The same, keeping none of its output (a benchmark of thousands of
    /// invocations, whose lines would grow this process's memory).
    pub fn start_unrecorded<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::started(args, false)
    }

    fn started<I, S>(args: I, keep: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(built("task-local"))
            .args(["serve", "--port", "0", "--stop-on-stdin-eof"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start task-local");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("task-local: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                if keep {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
        let endpoint = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(e) => e,
            Err(_) => {
                let _ = child.kill();
                panic!("task-local did not print its address within 30 s");
            }
        };
        Self { endpoint, output, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let out = self.lines();
        out[out.len().saturating_sub(n)..].join("\n")
    }

    /// A Lambda client for this emulator.
    pub fn client(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&super::sdk_config(&self.endpoint))
    }

    /// A Lambda client that makes exactly one attempt (to see throttling).
    pub fn client_without_retries(&self) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::config::Builder::from(&super::sdk_config(&self.endpoint))
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// `GET /stats`.
    pub async fn stats(&self) -> serde_json::Value {
        self.stats_at("/stats").await
    }

    /// `GET /stats?invocations=false`: the counters, without the records
    /// of single invocations.
    pub async fn counts(&self) -> serde_json::Value {
        self.stats_at("/stats?invocations=false").await
    }

    async fn stats_at(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&http_get(&format!("{}{path}", self.endpoint)).await).expect("stats JSON")
    }

    /// Wait (at most `limit`) until the emulator is quiet: no event queued,
    /// waiting for a retry or running (`in_flight` in `/stats`). Counting
    /// invocations after this sees a late duplicate; after a sleep it may not.
    pub async fn quiet(&self, limit: Duration) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let stats = self.stats().await;
            if stats["in_flight"] == 0 {
                return stats;
            }
            assert!(start.elapsed() < limit, "task-local still busy after {limit:?}: {stats}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send SIGTERM and wait (at most `limit`) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for TaskLocal {
    /// SIGTERM first, so the emulator stops its instances itself; SIGKILL
    /// only if it has not exited within 5 s (its instances then exit when
    /// their Runtime API goes away).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && self.terminate(Duration::from_secs(5)).is_none()
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// GET over a plain TCP connection (HTTP/1.0: the server closes it).
pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).expect("path");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await.expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// The arguments of a task-local that serves the tests' fault worker as
/// `fault`: one attempt per call (no Lambda retry), its calls captured in
/// `table` on DynamoDB Local, INFO logs. Add more to the end.
pub fn fault_function(table: &str) -> Vec<String> {
    [
        "--no-schedules".to_owned(),
        "--function".to_owned(),
        format!("fault={}", built("fault-worker").display()),
        "--max-retry-attempts".into(),
        "0".into(),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", super::dynamodb_endpoint()),
        "--env".into(),
        "TASK_MAX_ATTEMPTS=1".into(),
        "--env".into(),
        "RUST_LOG=info".into(),
    ]
    .into()
}

/// `cmd` (a `tasks` command) with only the environment a user sets for
/// task-local at `endpoint`: function `fault`, table `table`, loopback AWS.
pub fn user_env<'a>(cmd: &'a mut Command, endpoint: &str, table: &str) -> &'a mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TASK_FUNCTION", "fault")
        .env("TASK_RESPONSE_TABLE", table)
        .env("AWS_ENDPOINT_URL_LAMBDA", endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", super::dynamodb_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// Install this process as a caller of `fault` on task-local at `endpoint`
/// (a test that sends what the CLI cannot, such as groups).
pub fn install_caller(endpoint: &str, store: task_runtime::store::dynamodb::DynamoStore) {
    task_runtime::Config::lambda("fault", None)
        .with_store(Arc::new(store))
        .with_invoker(task_runtime::backend::lambda::LambdaInvoker::with_client(aws_sdk_lambda::Client::new(&super::sdk_config(endpoint))))
        .install()
        .expect("install once");
}
