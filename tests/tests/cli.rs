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
    /// The runtime this process sends groups on (its SDK clients' pools live on it).
    rt: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let table = common::table_name("cli");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
        let mut args = task_local::fault_function(&table);
        args.extend(["--env".to_owned(), "RUST_BACKTRACE=0".to_owned()]);
        let tl = TaskLocal::start(args);
        // This process sends groups (the CLI cannot), through the same task-local.
        task_local::install_caller(&tl.endpoint, DynamoStore::with_client(common::dynamodb(), table.clone()));
        Setup { tl, table, rt }
    })
}

/// `tasks ARGS...` with the environment a user would set for task-local.
fn tasks(args: &[&str]) -> Command {
    let s = setup();
    let mut std_cmd = std::process::Command::new(task_local::built("tasks"));
    task_local::user_env(std_cmd.args(args), &s.tl.endpoint, &s.table);
    let mut cmd = Command::from_std(std_cmd);
    cmd.timeout(Duration::from_secs(60));
    cmd
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
fn status_and_wait_show_a_group_s_children_ended_and_its_callback() {
    let s = setup();
    let calls = |path: &str| vec![
        task_runtime::call("fault.ok", serde_json::json!({"n": 1})),
        task_runtime::call("fault.ok", serde_json::json!({"n": 2})),
        task_runtime::call("fault.until", serde_json::json!({"path": path})),
    ];
    let tally = || task_runtime::call("fault.tally", serde_json::json!({}));
    let chord = s.rt.block_on(task_runtime::group(calls("/")).then(tally()).send()).expect("sent");
    let g = chord.group().id().to_owned();
    let (code, out, err) = run(&["wait", &g, "--timeout", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("group     3 of 3 ended (3 complete, 0 failed, 0 cancelled)"), "{out}");
    assert!(out.contains(&format!("callback  {g}.then complete")), "{out}");
    let (code, out, _) = run(&["status", &g, "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!((v[0]["kind"].as_str(), v[0]["ended"].as_u64(), v[0]["callback_status"].as_str()), (Some("group"), Some(3), Some("complete")));
    // A failed child: the group fails (exit 1), and each child is a call of its own.
    let failing = s.rt.block_on(task_runtime::group(calls("/nonexistent/never")).send()).expect("sent");
    let (code, out, err) = run(&["wait", failing.id(), "--timeout", "30s"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("3 of 3 ended (2 complete, 1 failed, 0 cancelled)") && !out.contains("callback"), "{out}");
    let (code, out, _) = run(&["status", &format!("{}.2", failing.id())]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("task      fault.until") && out.contains("is not there yet"), "{out}");
}

/// The `trace_id=` of the first line of `tail --id ID` that has one.
fn trace_in_logs(id: &str) -> String {
    for _ in 0..40 {
        let (code, out, err) = run(&["tail", "--function", "fault", "--id", id, "--since", "5m"]);
        assert_eq!(code, 0, "{out}{err}");
        if let Some(at) = out.find("trace_id=") {
            return out[at + 9..].chars().take_while(char::is_ascii_hexdigit).collect();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("no line of {id} names its trace");
}

#[test]
fn tree_draws_the_calls_a_call_sent_and_their_log_lines_share_one_trace() {
    let root = sent("fault.fan_out", r#"{"n": 3}"#);
    wait_ended(&root);
    let mut tree = Value::Null;
    for _ in 0..120 {
        let (code, out, err) = run(&["tree", &root, "--json"]);
        assert!(code == 0 || code == 3, "{code}: {out}{err}");
        tree = serde_json::from_str(&out).expect("JSON");
        if code == 0 && tree["children"].as_array().is_some_and(|c| c.len() == 3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let children = tree["children"].as_array().expect("children");
    assert_eq!(children.len(), 3, "{tree}");
    assert!(children.iter().all(|c| c["task"] == "fault.traced" && c["status"] == "complete" && c["parent"] == root.as_str()), "{tree}");
    let (code, text, err) = run(&["tree", &root]);
    assert_eq!(code, 0, "{text}{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("{root}  fault.fan_out  complete")), "{text}");
    assert_eq!((lines.len(), lines[1].starts_with("├─ "), lines[3].starts_with("└─ ")), (4, true, true), "{text}");
    // `status` names the parent; an unknown id exits 4.
    let child = children[0]["id"].as_str().expect("id");
    let (_, out, _) = run(&["status", child]);
    assert!(out.contains(&format!("parent    {root}")), "{out}");
    assert_eq!(run(&["tree", "no-such-call"]).0, 4);

    // The children's log lines carry the trace of the call that sent them.
    let trace = trace_in_logs(&root);
    assert_eq!(trace.len(), 32, "{trace}");
    for c in children {
        assert_eq!(trace_in_logs(c["id"].as_str().expect("id")), trace);
    }
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
    assert_eq!(new_id, format!("retry:{first}"), "a call's retry has an id of its own");
    assert!(out.contains("status    complete") && out.contains("is there"), "{out}");
    // Asked again, the retry there is, not a second one.
    let (code, out, err) = run(&["retry", &first]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("was retried already, as {new_id} (complete): nothing sent")), "{err}");
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

#[test]
fn send_with_an_id_a_delay_or_no_capture_and_the_status_of_each() {
    let s = setup();
    // A delay goes through EventBridge Scheduler (task-local's), which needs the function's ARN and a role.
    let id = format!("cli-later-{}", uuid::Uuid::new_v4().simple());
    let later = |extra: &[&str]| {
        let mut args = vec!["send", "fault.ok", r#"{"n": 5}"#, "--id", &id, "--delay", "1h"];
        args.extend_from_slice(extra);
        tasks(&args)
            .env("TASK_FUNCTION", "arn:aws:lambda:us-east-1:000000000000:function:fault")
            .env("TASK_SCHEDULER_ROLE_ARN", "arn:aws:iam::000000000000:role/scheduler")
            .env("AWS_ENDPOINT_URL_SCHEDULER", &s.tl.endpoint)
            .output()
            .expect("run")
    };
    let first = later(&[]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), id);
    let (code, out, _) = run(&["status", &id]);
    assert_eq!(code, 3, "scheduled is not finished: {out}");
    assert!(out.contains("status    scheduled"), "{out}");
    // The same id again: the call that exists, nothing sent.
    let again = later(&[]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"), "{again:?}");
    // The same id with other arguments: refused, naming the holder.
    let (code, _, err) = run(&["send", "fault.ok", r#"{"n": 7}"#, "--id", &id]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is held by a call of this task with other arguments (scheduled)"), "{err}");

    // An idempotency key: the second send follows the first call, whatever its arguments.
    let key = format!("cli-key-{}", uuid::Uuid::new_v4().simple());
    let (code, first, err) = run(&["send", "fault.ok", r#"{"n": 8}"#, "--key", &key, "--key-window", "1h"]);
    assert_eq!(code, 0, "{err}");
    assert!(first.trim().starts_with("idem:fault.ok:"), "{first}");
    let (code, out, err) = run(&["send", "fault.ok", r#"{"n": 9}"#, "--key", &key, "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exists already (the same id, or the same key)"), "{err}");
    assert!(out.contains(first.trim()) && out.contains("8"), "the first call's result: {out}");
    let (code, _, err) = run(&["send", "fault.ok", "{}", "--key-window", "1h"]);
    assert_eq!(code, 2, "--key-window needs --key: {err}");

    // Without capture nothing is stored: its id is unknown to `status`.
    let (code, out, err) = run(&["send", "fault.ok", r#"{"n": 6}"#, "--no-capture"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = run(&["status", out.trim()]);
    assert_eq!(code, 4, "nothing was stored for an uncaptured call");
}

#[test]
fn create_table_makes_a_table_with_its_index_and_status_finds_a_schedule_s_latest_run() {
    let s = setup();
    let table = common::table_name("cli-made");
    let out = tasks(&["create-table"]).env("TASK_RESPONSE_TABLE", &table).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let described = rt.block_on(common::dynamodb().describe_table().table_name(&table).send()).expect("the table exists");
    let mut indexes: Vec<_> = described.table().map(|t| t.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect()).unwrap_or_default();
    indexes.sort_unstable();
    use task_runtime::store::dynamodb::{FAILED_INDEX, PARENT_INDEX, RECENT_INDEX};
    assert_eq!(indexes, [RECENT_INDEX, PARENT_INDEX, FAILED_INDEX]);
    let again = tasks(&["create-table"]).env("TASK_RESPONSE_TABLE", &table).output().expect("run");
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains(&format!("the table {table} was whole already")), "{again:?}");

    // A table made before its indexes, with a call that failed then: each
    // index is added and waited for, and the failed call backfilled.
    let older = common::table_name("cli-older");
    let client = common::dynamodb();
    let key = aws_sdk_dynamodb::types::KeySchemaElement::builder().attribute_name("id").key_type(aws_sdk_dynamodb::types::KeyType::Hash).build().expect("key");
    let id_attr = aws_sdk_dynamodb::types::AttributeDefinition::builder().attribute_name("id").attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S).build().expect("attr");
    rt.block_on(client.create_table().table_name(&older).billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest).key_schema(key).attribute_definitions(id_attr).send()).expect("an older table");
    let now = common::now_ms();
    let (sv, nv) = (|v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned()), |v: u64| aws_sdk_dynamodb::types::AttributeValue::N(v.to_string()));
    let put = client.put_item().table_name(&older).item("id", sv("older-1")).item("task", sv("fault.flaky")).item("status", sv("failed"));
    rt.block_on(put.item("attempts", nv(3)).item("created_at_ms", nv(now)).item("updated_at_ms", nv(now)).item("ttl", nv(now / 1000 + 3600)).send()).expect("put");
    let out = tasks(&["create-table", "--timeout", "2m"]).env("TASK_RESPONSE_TABLE", &older).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(err.contains(&format!("added to the table {older} the index(es) {FAILED_INDEX}, {PARENT_INDEX}, {RECENT_INDEX}")), "{err}");
    assert!(err.contains("backfilled 1 failed call(s)"), "{err}");
    let listed = tasks(&["failed", "--since", "1h", "--json"]).env("TASK_RESPONSE_TABLE", &older).output().expect("run");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("older-1"), "{listed:?}");

    // A run of fault.tick's schedule, delivered as Scheduler would: `latest:fault.tick` names it.
    let manifest: Value = serde_json::from_slice(&std::process::Command::new(task_local::built("fault-worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest").stdout).expect("JSON");
    let input = manifest["schedules"][0]["input"].as_str().expect("a schedule").replace("<aws.scheduler.scheduled-time>", "2026-11-30T12:00:00Z");
    let lambda = s.tl.client();
    rt.block_on(lambda.invoke().function_name("fault").payload(aws_sdk_lambda::primitives::Blob::new(input)).send()).expect("invoke");
    let (code, out, err) = run(&["status", "latest:fault.tick", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v[0]["response"], "schedule:fault.tick:2026-11-30T12:00:00Z", "{v}");
}

#[test]
fn tail_follow_prints_the_lines_of_a_call_made_after_it_started() {
    let s = setup();
    let mut follow = std::process::Command::new(task_local::built("tasks"));
    follow
        .args(["tail", "--function", "fault", "--follow", "--since", "1s"])
        .env("TASK_FUNCTION", "fault")
        .env("TASK_RESPONSE_TABLE", &s.table)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", &s.tl.endpoint);
    let mut child = common::loopback_aws(&mut follow, &s.tl.endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tasks tail --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // A call made once tail is already following.
    std::thread::sleep(Duration::from_millis(500));
    let id = sent("fault.flaky", r#"{"succeed_on": 3}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(&id) => break true,
            Ok(line) => seen.push(line),
            Err(_) if std::time::Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no line of {id} within 30 s; saw {seen:?}");
}
