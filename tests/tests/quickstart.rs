//! The README's first command, `cargo run --example quickstart`: with no AWS
//! and nothing in the environment, it prints the four outcomes with their
//! statuses and attempt counts, and exits 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::task_local::built;

#[test]
fn the_quickstart_prints_the_four_outcomes_and_exits_0() {
    let mut child = Command::new(built("examples/quickstart"))
        .env_clear() // no TASK_*, no AWS_*: the embedded local backend
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the quickstart");
    let started = Instant::now();
    while child.try_wait().expect("poll").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the quickstart did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let finals: Vec<Vec<&str>> = stdout
        .split_once("\nfinal:\n")
        .map(|(_, tail)| tail.lines().map(|l| l.split_whitespace().take(3).collect()).collect())
        .unwrap_or_default();
    assert_eq!(
        finals,
        [
            ["make_pie", "complete", "attempts=1"],
            ["bake", "complete", "attempts=3"],
            ["slice", "failed", "attempts=1"],
            ["drop_pie", "failed", "attempts=1"],
        ],
        "{stdout}"
    );
    assert!(stdout.contains("error = [failed]") && stdout.contains("error = [panic]"), "{stdout}");
    // Status changes are printed as polled; which ones a poll catches depends
    // on timing, but the last one of the retried task is its completion.
    let last_bake_poll = stdout.lines().rev().find(|l| l.starts_with("poll bake")).unwrap_or_default();
    assert_eq!(last_bake_poll.split_whitespace().collect::<Vec<_>>(), ["poll", "bake", "complete", "attempts=3"], "{stdout}");
}
