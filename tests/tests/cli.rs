//! The `tasks` command line, end to end: the real binary, against the real
//! task-local serving the tests' worker, with DynamoDB Local. Every command
//! is run as a user would, and its output and exit code are checked.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use common::task_local::{self, TaskLocal};
use serde_json::Value;
use task_runtime::store::dynamodb::DynamoStore;

struct Setup {
    tl: TaskLocal,
    table: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let table = common::table_name("cli");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
        let tl = TaskLocal::start([
            "--no-schedules".to_owned(),
            "--function".to_owned(),
            format!("fault={}", task_local::built("fault-worker").display()),
            "--max-retry-attempts".into(),
            "0".into(),
            "--env".into(),
            format!("TASK_RESPONSE_TABLE={table}"),
            "--env".into(),
            format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
            "--env".into(),
            "TASK_MAX_ATTEMPTS=1".into(),
            "--env".into(),
            "RUST_LOG=info".into(),
            "--env".into(),
            "RUST_BACKTRACE=0".into(),
        ]);
        Setup { tl, table }
    })
}

/// `tasks ARGS...` with the environment a user would set for task-local.
fn tasks(args: &[&str]) -> Command {
    let s = setup();
    let mut cmd = Command::new(task_local::built("tasks"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TASK_FUNCTION", "fault")
        .env("TASK_RESPONSE_TABLE", &s.table)
        .env("AWS_ENDPOINT_URL_LAMBDA", &s.tl.endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", &s.tl.endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", common::dynamodb_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(60));
    cmd
}

/// Run and return (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = tasks(args).output().expect("run tasks");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Send without waiting; the id it prints.
fn sent(name: &str, args: &str) -> String {
    let (code, out, err) = run(&["send", name, args]);
    assert_eq!(code, 0, "{out}{err}");
    out.trim().to_owned()
}

fn wait_ended(id: &str) {
    let (code, out, err) = run(&["wait", id, "--timeout", "30s"]);
    assert!(code == 0 || code == 1, "{code}: {out}{err}");
}

#[test]
fn send_wait_prints_the_response() {
    let (code, out, err) = run(&["send", "fault.ok", r#"{"n": 42}"#, "--wait", "--timeout", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("status    complete") && out.contains("response  42"), "{out}");
    assert!(err.contains("sent fault.ok as "), "{err}");
}

#[test]
fn status_says_the_state_in_its_output_and_exit_code() {
    let done = sent("fault.ok", r#"{"n": 7}"#);
    let failed = sent("fault.flaky", r#"{"succeed_on": 2}"#);
    wait_ended(&done);
    wait_ended(&failed);
    let (code, out, _) = run(&["status", &done]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("response  7") && out.contains("attempts  1") && out.contains("task      fault.ok"), "{out}");
    let (code, out, _) = run(&["status", &failed]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("status    failed") && out.contains("failure   [error] attempt 1: not yet"), "{out}");
    let (code, out, _) = run(&["status", "no-such-call"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("unknown"), "{out}");
    let (code, out, _) = run(&["status", &done, &failed, "--json"]);
    assert_eq!(code, 1, "the worst of the two");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!((v[0]["status"].as_str(), v[0]["response"].as_u64()), (Some("complete"), Some(7)));
    assert_eq!(v[1]["error"]["kind"], "error");
}

#[test]
fn wait_follows_several_calls_and_sums_them_up() {
    let ok = sent("fault.ok", r#"{"n": 1}"#);
    let bad = sent("fault.panic", r#"{"n": 2}"#);
    let (code, out, _) = run(&["wait", &ok, &bad, "--timeout", "30s"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 complete, 1 failed"), "{out}");
}

#[test]
fn tail_shows_the_worker_s_lines_of_one_call() {
    let failed = sent("fault.flaky", r#"{"succeed_on": 3}"#);
    wait_ended(&failed);
    let other = sent("fault.flaky", r#"{"succeed_on": 3}"#);
    wait_ended(&other);
    // The forwarded output reaches the log store a moment after the call ends.
    let mut out = String::new();
    for _ in 0..20 {
        let (code, o, err) = run(&["tail", "--function", "fault", "--id", &failed, "--since", "5m"]);
        assert_eq!(code, 0, "{o}{err}");
        out = o;
        if out.contains("attempt 1 failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(out.contains(&format!("id={failed}")) && out.contains("attempt 1 failed"), "{out}");
    assert!(!out.contains(&other), "only the lines of the call asked for: {out}");
    let (code, _, err) = run(&["tail", "--function", "nobody"]);
    assert_eq!(code, 2);
    assert!(err.contains("no log group /aws/lambda/nobody"), "{err}");
}

#[test]
fn failed_lists_failed_calls_and_retry_sends_one_again() {
    let flag = std::env::temp_dir().join(format!("cli-flag-{}", uuid::Uuid::new_v4().simple()));
    let args = serde_json::json!({"path": flag.display().to_string()}).to_string();
    let first = sent("fault.until", &args);
    wait_ended(&first);
    let (code, out, err) = run(&["failed", "--since", "1h", "--task", "fault.until"]);
    assert_eq!(code, 0, "{out}{err}");
    let row = out.lines().find(|l| l.starts_with(&first)).unwrap_or_else(|| panic!("{first} not listed:\n{out}"));
    assert!(row.contains("fault.until") && row.contains("failed") && row.contains("yes"), "{row}");
    let (_, json, _) = run(&["failed", "--since", "1h", "--json"]);
    let listed: Value = serde_json::from_str(&json).expect("JSON");
    assert!(listed.as_array().is_some_and(|a| a.iter().any(|c| c["id"] == first.as_str() && c["retryable"] == true)), "{listed}");

    std::fs::write(&flag, b"now").expect("flag");
    let (code, out, err) = run(&["retry", &first, "--wait", "--timeout", "30s"]);
    let _ = std::fs::remove_file(&flag);
    assert_eq!(code, 0, "{out}{err}");
    let new_id = out.lines().next().unwrap_or_default().to_owned();
    assert_ne!(new_id, first);
    assert!(out.contains("status    complete") && out.contains("is there"), "{out}");
    let (code, _, err) = run(&["retry", &new_id]);
    assert_eq!(code, 2);
    assert!(err.contains("is complete: only a failed call is retried"), "{err}");
}

#[test]
fn errors_say_what_is_missing_and_how_to_fix_it() {
    let out = tasks(&["status", "x"]).env_remove("TASK_RESPONSE_TABLE").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set TASK_RESPONSE_TABLE"), "{out:?}");
    let out = tasks(&["send", "fault.ok", "{}"]).env_remove("TASK_FUNCTION").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --function NAME or set TASK_FUNCTION"), "{out:?}");
    let out = tasks(&["status", "x"]).env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing answered"), "{out:?}");
    let (code, _, err) = run(&["send", "fault.ok", "[1]"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be a JSON object"), "{err}");
    let help = tasks(&["send", "--help"]).output().expect("run");
    assert!(String::from_utf8_lossy(&help.stdout).contains("Example:"), "{help:?}");
}
