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
