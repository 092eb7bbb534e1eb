//! The fault runs' killer: SIGKILLs a random instance of the emulator every
//! period, until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The processes whose parent is `parent`: the emulator's instances.
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the comm may hold spaces, so read after its ')'.
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

fn random_below(n: usize) -> usize {
    ((uuid::Uuid::new_v4().as_u128() >> 80) as usize) % n.max(1)
}

/// How many bodies ran to their end, by call id: the lines of the marks
/// file the tests' worker appends to (`FAULT_MARKS`), which is then removed.
/// A file that cannot be read fails the run: a lost mark never reads as 0.
pub fn take_marks(path: &std::path::Path) -> std::collections::HashMap<String, u32> {
    let mut bodies = std::collections::HashMap::new();
    let marked = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("the marks file {}: {e}", path.display()));
    for line in marked.lines() {
        *bodies.entry(line.to_owned()).or_default() += 1;
    }
    std::fs::remove_file(path).unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
    bodies
}

/// task-local's arguments for a fault run: the tests' worker as `fault`,
/// its timeout, retries and failure records, duplicate deliveries, and its
/// processes' settings: the response table, the marks file, a short lease.
pub fn task_local_args(table: &str, marks: &std::path::Path) -> Vec<String> {
    let envs = [
        format!("TASK_RESPONSE_TABLE={table}"),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", super::dynamodb_endpoint()),
        format!("FAULT_MARKS={}", marks.display()),
        "TASK_LEASE_MS=1500".to_owned(),
        "TASK_TIMEOUT_MARGIN_MS=300".to_owned(),
        "RUST_LOG=off".to_owned(),
        "RUST_BACKTRACE=0".to_owned(), // the panics are expected: no backtraces
    ];
    let worker = super::task_local::built("fault-worker").display().to_string();
    let (fault, tally) = (format!("fault={worker}"), format!("tally={worker}"));
    // `tally`: the same worker with a longer timeout, for callbacks that read a whole group.
    let mut args: Vec<String> = [
        "--function", &fault, "--function", &tally, "--timeout", "1s", "--timeout", "tally=60s", "--concurrency", "12", "--max-retry-attempts", "2",
        "--retry-delays", "100ms,200ms", "--on-failure", "function:fault", "--duplicate-deliveries", "0.05", "--no-schedules",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for e in envs {
        args.extend(["--env".to_owned(), e]);
    }
    args
}

/// Kills one random child of `parent` every `every` until [`Killer::stop`].
pub struct Killer {
    killing: Arc<AtomicBool>,
    kills: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Killer {
    pub fn start(parent: u32, every: Duration) -> Self {
        let killing = Arc::new(AtomicBool::new(true));
        let kills = Arc::new(AtomicU64::new(0));
        let task = {
            let (killing, kills) = (killing.clone(), kills.clone());
            tokio::spawn(async move {
                let mut next = Instant::now() + every;
                while killing.load(Ordering::SeqCst) {
                    // Short naps, so that the killer stops as soon as it is told.
                    tokio::time::sleep(Duration::from_millis(20).min(every)).await;
                    if Instant::now() < next || !killing.load(Ordering::SeqCst) {
                        continue;
                    }
                    next += every;
                    let pids = children(parent);
                    if pids.is_empty() {
                        continue;
                    }
                    let pid = pids[random_below(pids.len())];
                    let killed = tokio::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
                    if killed.is_ok_and(|s| s.success()) {
                        kills.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Killer { killing, kills, task }
    }

    /// Stop killing; how many instances were killed.
    pub async fn stop(self) -> u64 {
        self.killing.store(false, Ordering::SeqCst);
        self.task.await.expect("the killer task ended without a panic");
        self.kills.load(Ordering::SeqCst)
    }
}
