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

/// The spans file of the run whose marks file is `marks`.
pub fn spans_of(marks: &std::path::Path) -> std::path::PathBuf {
    marks.with_extension("spans")
}

/// How many bodies of call `id` ran to their end, by the marks file.
pub fn runs(marks: &std::path::Path, id: &str) -> usize {
    std::fs::read_to_string(marks).unwrap_or_default().lines().filter(|l| *l == id).count()
}

/// The fault worker served by task-local as `fault` (Lambda delivering a
/// third of its events twice, retrying after 200 ms), over a new table in
/// DynamoDB Local, with its marks and spans files; the runtime of this
/// process installed to send to it.
pub struct Served {
    pub tl: super::task_local::TaskLocal,
    pub marks: std::path::PathBuf,
    pub spans: std::path::PathBuf,
}

impl Served {
    /// Start it; `prefix` names the table and the files.
    pub async fn start(prefix: &str) -> Self {
        let table = super::table_name(prefix);
        task_runtime::store::dynamodb::DynamoStore::with_client(super::dynamodb(), table.clone()).create_table().await.expect("table");
        let marks = std::env::temp_dir().join(format!("{prefix}-marks-{}.txt", uuid::Uuid::new_v4().simple()));
        let spans = spans_of(&marks);
        let worker = super::task_local::built("fault-worker").display().to_string();
        let mut args: Vec<String> = ["--no-schedules", "--function", &format!("fault={worker}"), "--duplicate-deliveries", "0.3", "--retry-delays", "200ms,200ms", "--concurrency", "12"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for e in [
            format!("TASK_RESPONSE_TABLE={table}"),
            format!("AWS_ENDPOINT_URL_DYNAMODB={}", super::dynamodb_endpoint()),
            format!("FAULT_MARKS={}", marks.display()),
            format!("FAULT_SPANS={}", spans.display()),
            "TASK_SCHEDULER_ROLE_ARN=arn:aws:iam::000000000000:role/scheduler-invokes-fault".to_owned(),
        ] {
            args.extend(["--env".to_owned(), e]);
        }
        let tl = tokio::task::spawn_blocking(move || super::task_local::TaskLocal::start(args)).await.expect("start");
        super::lambda_config(&tl.endpoint, "arn:aws:lambda:us-east-1:000000000000:function:fault", &table).install().expect("install once");
        Served { tl, marks, spans }
    }

    /// How many bodies of call `id` ran to their end.
    pub fn runs(&self, id: &str) -> usize {
        runs(&self.marks, id)
    }

    /// The most bodies of the calls `ids` that ran at once.
    pub fn most_at_once(&self, ids: &[String]) -> usize {
        most_at_once(&self.spans, &ids.iter().cloned().collect())
    }
}

/// The most bodies that ran at once, from the notes (`ID WHAT TIME_µs`) in
/// `spans` of the calls in `ids`: each from its `start` to its `end`, or,
/// killed on the way, to 50 ms past its last note (it notes every 50 ms).
pub fn most_at_once(spans: &std::path::Path, ids: &std::collections::HashSet<String>) -> usize {
    let mut bodies: std::collections::HashMap<&str, Vec<(u64, &str)>> = std::collections::HashMap::new();
    let text = std::fs::read_to_string(spans).unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.split(' ');
        if let (Some(id), Some(what), Some(at)) = (parts.next(), parts.next(), parts.next().and_then(|t| t.parse::<u64>().ok()))
            && ids.contains(id)
        {
            bodies.entry(id).or_default().push((at, what));
        }
    }
    let mut events: Vec<(u64, i32)> = Vec::new();
    for notes in bodies.values_mut() {
        notes.sort();
        // A call's notes may hold several bodies (a retry after a kill): each `start` opens one.
        let mut open: Option<u64> = None;
        let mut last = 0;
        for (at, what) in notes.iter() {
            match *what {
                "start" => {
                    if let Some(started) = open.take() {
                        events.extend([(started, 1), (last + 50_000, -1)]);
                    }
                    open = Some(*at);
                }
                "end" => {
                    if let Some(started) = open.take() {
                        events.extend([(started, 1), (*at, -1)]);
                    }
                }
                _ => {}
            }
            last = *at;
        }
        if let Some(started) = open {
            events.extend([(started, 1), (last + 50_000, -1)]);
        }
    }
    // An end before a start at the same instant: touching spans do not overlap.
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in events {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// task-local's arguments for a fault run: the tests' worker as `fault`,
/// its timeout, retries and failure records, duplicate deliveries, and its
/// processes' settings: the response table, the marks file, a short lease.
pub fn task_local_args(table: &str, marks: &std::path::Path) -> Vec<String> {
    let envs = [
        format!("TASK_RESPONSE_TABLE={table}"),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", super::dynamodb_endpoint()),
        format!("FAULT_MARKS={}", marks.display()),
        // When bodies of fault.pair ran (`spans_of(marks)`), and the role
        // the runtime's delayed sends (retries, put-off deliveries) name.
        format!("FAULT_SPANS={}", spans_of(marks).display()),
        "TASK_SCHEDULER_ROLE_ARN=arn:aws:iam::000000000000:role/scheduler-invokes-fault".to_owned(),
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
