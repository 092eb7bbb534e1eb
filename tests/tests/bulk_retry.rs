//! `tasks retry --failed`: 200 failed calls, retried by the command twice
//! (as an operator would after an outage, and again to be sure), end 200
//! complete, and no call runs twice: each is retried once, as `retry:ID`,
//! and the second run finds every retry there. Its own task-local and
//! table, so that no other test's failed calls are in its listing.

mod common;

use std::collections::BTreeMap;

use common::task_local::{self, TaskLocal};
use task_runtime::store::dynamodb::DynamoStore;

const CALLS: usize = 200;

fn run(tl: &TaskLocal, table: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(task_local::built("tasks"));
    task_local::user_env(cmd.args(args), &tl.endpoint, table);
    let out = cmd.output().expect("run tasks");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn two_bulk_retries_of_200_failed_calls_end_them_all_complete_and_run_none_twice() {
    let table = common::table_name("bulk");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
    let dir = std::env::temp_dir().join(format!("bulk-retry-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (flag, marks) = (dir.join("flag"), dir.join("marks"));
    let mut args = task_local::fault_function(&table);
    args.extend(["--env".to_owned(), format!("FAULT_MARKS={}", marks.display())]);
    let tl = TaskLocal::start(args);

    // 200 calls that fail for good while the flag is missing.
    let arg = serde_json::json!({"path": flag.display().to_string()}).to_string();
    let mut ids = Vec::new();
    for _ in 0..CALLS {
        let (code, out, err) = run(&tl, &table, &["send", "fault.until", &arg]);
        assert_eq!(code, 0, "{out}{err}");
        ids.push(out.trim().to_owned());
    }
    let mut wait: Vec<&str> = vec!["wait", "--timeout", "120s"];
    wait.extend(ids.iter().map(String::as_str));
    assert_eq!(run(&tl, &table, &wait).0, 1, "all {CALLS} failed");

    // A dry run sends nothing.
    let (code, out, err) = run(&tl, &table, &["retry", "--failed", "--since", "1h", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{CALLS} failed call(s)")) && out.contains(&format!("{CALLS} would send")), "{out}");

    // The cause fixed, the command twice.
    std::fs::write(&flag, b"now").expect("flag");
    let (code, out, err) = run(&tl, &table, &["retry", "--failed", "--since", "1h", "--task", "fault.until", "--rate", "200/s", "--wait", "--timeout", "120s"]);
    assert_eq!(code, 0, "every retry completes: {out}{err}");
    assert!(out.contains(&format!("{CALLS} sent")), "{out}");
    let (code, out, err) = run(&tl, &table, &["retry", "--failed", "--since", "1h", "--rate", "200/s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{CALLS} retried already")) && !out.contains(" sent,") && !out.contains("would send"), "the second run sends nothing: {out}");

    // Each original ran once, and each retry once, and complete.
    let mut wait: Vec<String> = vec!["wait".into(), "--timeout".into(), "60s".into()];
    wait.extend(ids.iter().map(|id| format!("retry:{id}")));
    let wait: Vec<&str> = wait.iter().map(String::as_str).collect();
    let (code, out, err) = run(&tl, &table, &wait);
    assert_eq!(code, 0, "all {CALLS} retries complete: {out}{err}");
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&marks).expect("marks").lines() {
        *runs.entry(line.to_owned()).or_default() += 1;
    }
    assert_eq!(runs.len(), 2 * CALLS, "every call and its retry ran");
    assert!(runs.values().all(|n| *n == 1), "a call ran twice: {:?}", runs.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>());
    for id in &ids {
        assert!(runs.contains_key(id) && runs.contains_key(&format!("retry:{id}")), "{id} and its retry ran");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
