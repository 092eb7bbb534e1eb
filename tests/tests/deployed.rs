//! `tasks function` and `tasks check` against task-local serving the worker
//! example: what is deployed is read through the Lambda API (task-local
//! answers GetFunctionConfiguration and GetFunctionEventInvokeConfig from
//! its own options), and the check names what disagrees.

mod common;

use std::process::Output;
use std::time::Duration;

use common::task_local::{self, TaskLocal};
use serde_json::Value;
use task_runtime::store::dynamodb::DynamoStore;

fn start(extra: &[&str], table: &str) -> TaskLocal {
    let mut args: Vec<String> = vec![
        "--function".into(),
        format!("worker={}", task_local::built("examples/worker").display()),
        "--timeout".into(),
        "7s".into(),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        "TASK_SIGNING_KEY=not-shown".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    TaskLocal::start(args)
}

fn tasks(tl: &TaskLocal, args: &[&str]) -> Output {
    tasks_with_scheduler(tl, args, &tl.endpoint)
}

/// `tasks` with EventBridge Scheduler at `scheduler`.
fn tasks_with_scheduler(tl: &TaskLocal, args: &[&str], scheduler: &str) -> Output {
    tasks_env(tl, args, &[("AWS_ENDPOINT_URL_SCHEDULER", scheduler)])
}

/// `tasks` with `env` set over the loopback endpoints.
fn tasks_env(tl: &TaskLocal, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(task_local::built("tasks"));
    common::loopback_aws(&mut cmd, &tl.endpoint).env("AWS_ENDPOINT_URL_SCHEDULER", &tl.endpoint).env("AWS_ENDPOINT_URL_CLOUDWATCH", &tl.endpoint);
    cmd.envs(env.iter().copied()).args(args).output().expect("run tasks")
}

/// The `check` names of the findings of a `tasks check --json` output.
fn checks_of(out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {out:?}"));
    v["findings"].as_array().into_iter().flatten().filter_map(|f| f["check"].as_str().map(str::to_owned)).collect()
}

/// The messages of the findings of one `check` in a `tasks check --json` output.
fn messages_of(v: &Value, check: &str) -> Vec<String> {
    v["findings"].as_array().into_iter().flatten().filter(|f| f["check"] == check).filter_map(|f| f["message"].as_str().map(str::to_owned)).collect()
}

fn table() -> String {
    let table = common::table_name("deployed");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
    table
}

#[test]
fn function_reports_what_is_deployed_and_check_names_the_attempts_that_disagree() {
    let table = table();
    let tl = start(&["--no-schedules", "--max-retry-attempts", "1", "--env", "TASK_MAX_ATTEMPTS=3"], &table);
    let out = tasks(&tl, &["function", "worker", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let f: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((f["name"].as_str(), f["timeout_s"].as_u64(), f["memory_mb"].as_u64()), (Some("worker"), Some(7), Some(128)), "{f}");
    assert_eq!((f["max_retry_attempts"].as_u64(), f["max_event_age_s"].as_u64()), (Some(1), Some(21_600)), "{f}");
    assert_eq!(f["task_settings"]["TASK_MAX_ATTEMPTS"], "3");
    assert_eq!(f["task_settings"]["TASK_SIGNING_KEY"], "set", "a secret is shown as set: {f}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-shown"));
    assert_eq!(f["calls_last_24h"]["failed"], 0, "{f}");
    assert!(f["metrics_last_24h"]["unavailable"].as_str().is_some_and(|w| w.contains("CloudWatch")), "{f}");
    assert!(f["code_size_bytes"].as_u64() > Some(0));

    let check = tasks(&tl, &["check", "worker"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{check:?}");
    assert!(text.contains("TASK_MAX_ATTEMPTS is 3 but Lambda makes 2 attempt(s)"), "{text}");
    assert!(text.contains("no on-failure destination"), "{text}");
    let json = tasks(&tl, &["check", "worker", "--json"]);
    let v: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let checks: Vec<&str> = v["findings"].as_array().into_iter().flatten().filter_map(|f| f["check"].as_str()).collect();
    assert_eq!(checks, ["max_attempts", "on_failure"], "{v}");
}

#[test]
fn a_consistent_deployment_passes_and_an_unknown_function_cannot_be_checked() {
    let table = table();
    let tl = start(&["--max-retry-attempts", "1", "--env", "TASK_MAX_ATTEMPTS=2", "--on-failure", "function:worker"], &table);
    let worker = task_local::built("examples/worker").display().to_string();
    let check = tasks(&tl, &["check", "worker", "--worker", &worker]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert!(text.contains("worker is consistent"), "{text}");
    assert!(!text.contains("not checked"), "every part was read, the worker's schedules through ListSchedules: {text}");

    // The hourly report's schedule replaced by a disabled one of the same input: named.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let scheduler = aws_sdk_scheduler::Client::new(&common::sdk_config(&tl.endpoint));
        let listed = scheduler.list_schedules().send().await.expect("ListSchedules");
        let mut hourly = None;
        for s in listed.schedules() {
            let got = scheduler.get_schedule().name(s.name().unwrap_or_default()).send().await.expect("GetSchedule");
            if got.target().and_then(|t| t.input()).is_some_and(|i| i.contains("the hourly report")) {
                hourly = Some(got);
            }
        }
        let hourly = hourly.expect("the hourly report's schedule is deployed");
        let target = hourly.target().cloned().expect("its target");
        scheduler.delete_schedule().name(hourly.name().unwrap_or_default()).send().await.expect("DeleteSchedule");
        common::create_one_time_schedule(&tl.endpoint, "hourly-disabled", "at(2099-01-01T00:00:00)", target, aws_sdk_scheduler::types::ScheduleState::Disabled).await;
    });
    let disabled = tasks(&tl, &["check", "worker", "--worker", &worker]);
    let text = String::from_utf8_lossy(&disabled.stdout);
    assert_eq!(disabled.status.code(), Some(2), "{disabled:?}");
    assert!(text.contains("schedule `hourly-disabled` of `worker::hourly_report` is DISABLED: enable it"), "{text}");

    // A part that cannot be read is not a pass: exit 1, naming the part.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let blind = tasks_with_scheduler(&tl, &["check", "worker", "--worker", &worker], &dead);
    let text = String::from_utf8_lossy(&blind.stdout);
    assert_eq!(blind.status.code(), Some(1), "{blind:?}");
    assert!(text.contains("not checked: schedules: EventBridge Scheduler") && !text.contains("is consistent"), "{text}");
    let json = tasks_with_scheduler(&tl, &["check", "worker", "--worker", &worker, "--json"], &dead);
    let v: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!((v["consistent"].as_bool(), json.status.code()), (Some(false), Some(1)), "{v}");
    // A table that cannot be read (no answer, rather than "no such table") is not checked, not missing.
    let no_dynamodb = tasks_env(&tl, &["check", "worker", "--json"], &[("AWS_ENDPOINT_URL_DYNAMODB", &dead), ("AWS_MAX_ATTEMPTS", "1")]);
    let v: Value = serde_json::from_slice(&no_dynamodb.stdout).expect("JSON");
    assert_eq!(no_dynamodb.status.code(), Some(1), "{v}");
    assert!(checks_of(&no_dynamodb).is_empty(), "{v}");
    assert!(v["unchecked"].as_array().into_iter().flatten().any(|u| u.as_str().is_some_and(|u| u.starts_with("response table: "))), "{v}");

    // In text, `tasks function` says why a part is unavailable, not raw JSON.
    let f = tasks(&tl, &["function", "worker"]);
    let text = String::from_utf8_lossy(&f.stdout);
    assert!(text.contains("unavailable: CloudWatch: HTTP ") && !text.contains("{\"unavailable\""), "{text}");
    let unknown = tasks(&tl, &["check", "nobody"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there is no function `nobody`"), "{unknown:?}");
    std::thread::sleep(Duration::from_millis(1));
}

/// A table made without TTL (as by hand, not `tasks create-table`).
fn table_without_ttl() -> String {
    table_made_by_hand("no-ttl")
}

/// A table whose TTL is on another attribute than `ttl`.
fn table_with_ttl_elsewhere() -> String {
    let table = table_made_by_hand("ttl-elsewhere");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let spec = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder().enabled(true).attribute_name("expires").build().expect("spec");
        common::dynamodb().update_time_to_live().table_name(&table).time_to_live_specification(spec).send().await.expect("TTL on `expires`");
    });
    table
}

fn table_made_by_hand(prefix: &str) -> String {
    let table = common::table_name(prefix);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
        common::dynamodb()
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
            .attribute_definitions(AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().expect("attribute"))
            .send()
            .await
            .expect("a table without TTL");
    });
    table
}

#[test]
fn check_names_each_rule_a_deployment_breaks() {
    let table = table_without_ttl();
    let worker = task_local::built("examples/worker").display().to_string();
    let tl = TaskLocal::start([
        // No schedules are deployed (task-local lists none with --no-schedules).
        "--no-schedules".to_owned(),
        "--function".into(), format!("worker={worker}"),
        "--function".into(), format!("other={worker}"),
        "--function".into(), format!("lost={worker}"),
        "--timeout".into(), "worker=2s".into(),
        "--on-failure".into(), "function:worker".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        // A margin that leaves the body no time at all.
        "--env".into(), "worker:TASK_TIMEOUT_MARGIN_MS=5000".into(),
        // worker signs what it sends to `other`, which has no key.
        "--env".into(), "worker:TASK_SIGNING_KEY=k".into(),
        "--env".into(), "worker:TASK_FUNCTION=other".into(),
        "--env".into(), "lost:TASK_RESPONSE_TABLE=no-such-table".into(),
        "--function".into(), format!("elsewhere={worker}"),
        "--env".into(), format!("elsewhere:TASK_RESPONSE_TABLE={}", table_with_ttl_elsewhere()),
    ]);
    let check = tasks(&tl, &["check", "worker", "--worker", &worker, "--json"]);
    assert_eq!(check.status.code(), Some(2), "{check:?}");
    let v: Value = serde_json::from_slice(&check.stdout).expect("JSON");
    let mut found: Vec<&str> = v["findings"].as_array().into_iter().flatten().filter_map(|f| f["check"].as_str()).collect();
    found.dedup();
    assert_eq!(found, ["table_ttl", "timeout", "schedules", "signing"], "{v}");
    assert_eq!(v["consistent"], false);
    let text = String::from_utf8_lossy(&tasks(&tl, &["check", "worker", "--worker", &worker]).stdout).into_owned();
    for says in ["has no TTL on `ttl`", "is not larger than TASK_TIMEOUT_MARGIN_MS (5000 ms)", "schedule of `worker::hourly_report`", "`worker` signs its messages (TASK_SIGNING_KEY) and `other` does not"] {
        assert!(text.contains(says), "{says:?} not in:\n{text}");
    }
    let lost = tasks(&tl, &["check", "lost", "--json"]);
    let v: Value = serde_json::from_slice(&lost.stdout).expect("JSON");
    let found: Vec<&str> = v["findings"].as_array().into_iter().flatten().filter_map(|f| f["check"].as_str()).collect();
    assert!(found.contains(&"table"), "{v}");
    assert_eq!(lost.status.code(), Some(2));
    // TTL on, but on another attribute: `ttl` items never expire.
    let elsewhere = tasks(&tl, &["check", "elsewhere", "--json"]);
    assert!(checks_of(&elsewhere).contains(&"table_ttl".to_owned()), "{elsewhere:?}");
}

#[test]
fn check_names_a_task_whose_own_timeout_the_function_cannot_give() {
    let table = table();
    let worker = task_local::built("fault-worker").display().to_string();
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".into(), format!("fault={worker}"),
        "--timeout".into(), "fault=1s".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
    ]);
    let check = tasks(&tl, &["check", "fault", "--worker", &worker, "--json"]);
    let v: Value = serde_json::from_slice(&check.stdout).expect("JSON");
    let named = messages_of(&v, "task_timeout");
    assert_eq!(named.len(), 1, "only fault.patient (2 s); fault.bounded (200 ms) fits: {v}");
    assert!(named[0].contains("`fault.patient` has a timeout of 2000 ms") && named[0].contains("1 s less TASK_TIMEOUT_MARGIN_MS 500 ms"), "{}", named[0]);
    drop(tl);
    // 2 s less a 1,500 ms margin leaves a body 500 ms: the function's
    // timeout is larger than the margin, and still only fault.patient is too long.
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".into(), format!("fault={worker}"),
        "--timeout".into(), "fault=2s".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(), "TASK_TIMEOUT_MARGIN_MS=1500".into(),
    ]);
    let check = tasks(&tl, &["check", "fault", "--worker", &worker, "--json"]);
    let v: Value = serde_json::from_slice(&check.stdout).expect("JSON");
    assert!(!checks_of(&check).contains(&"timeout".to_owned()), "2 s is larger than 1,500 ms: {v}");
    let named = messages_of(&v, "task_timeout");
    assert_eq!(named.len(), 1, "only fault.patient (2 s); fault.bounded (200 ms) fits in 500 ms: {v}");
    assert!(named[0].contains("`fault.patient`"), "{}", named[0]);
}

#[test]
fn check_names_tasks_whose_retry_policy_or_limits_the_deployment_cannot_keep() {
    let table = table();
    let worker = task_local::built("fault-worker").display().to_string();
    // No scheduler role: the runtime cannot send a retry or a put-off delivery later.
    let tl = TaskLocal::start(["--no-schedules".to_owned(), "--function".into(), format!("fault={worker}"), "--env".into(), format!("TASK_RESPONSE_TABLE={table}")]);
    let v: Value = serde_json::from_slice(&tasks(&tl, &["check", "fault", "--worker", &worker, "--json"]).stdout).expect("JSON");
    let retries = messages_of(&v, "task_retries");
    // fault.persist with a backoff, fault.stubborn past Lambda's 2 without one.
    assert_eq!(retries.len(), 2, "only fault.persist and fault.stubborn send their own retries: {v}");
    assert!(retries[0].contains("`fault.persist` retries 5 time(s), the runtime sending them") && retries[0].contains("TASK_SCHEDULER_ROLE_ARN"), "{}", retries[0]);
    assert!(retries[1].contains("`fault.stubborn` retries 3 time(s)"), "{}", retries[1]);
    let limits = messages_of(&v, "task_limits");
    for task in ["fault.pair", "fault.single", "fault.metered"] {
        assert!(limits.iter().any(|m| m.contains(&format!("`{task}`"))), "{task}: {limits:#?}");
    }
    drop(tl);
    // Lambda retrying none: fault.bounded's 0 retries are Lambda's own, not the runtime's.
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".into(), format!("fault={worker}"),
        "--max-retry-attempts".into(), "0".into(),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
    ]);
    let v: Value = serde_json::from_slice(&tasks(&tl, &["check", "fault", "--worker", &worker, "--json"]).stdout).expect("JSON");
    let retries = messages_of(&v, "task_retries");
    assert!(!retries.iter().any(|m| m.contains("`fault.bounded`")), "retries equal to Lambda's are Lambda's: {retries:#?}");
    drop(tl);
    // With the role (as the generated template sets it), both are kept.
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".into(), format!("fault={worker}"),
        "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(), "TASK_SCHEDULER_ROLE_ARN=arn:aws:iam::000000000000:role/scheduler".into(),
    ]);
    let v: Value = serde_json::from_slice(&tasks(&tl, &["check", "fault", "--worker", &worker, "--json"]).stdout).expect("JSON");
    assert_eq!((messages_of(&v, "task_retries").len(), messages_of(&v, "task_limits").len()), (0, 0), "{v}");
}

#[test]
fn check_finds_the_function_of_each_task_and_function_shows_the_groups() {
    let table = table();
    let fault = task_local::built("fault-worker").display().to_string();
    let routed = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "--function".into(), format!("fault={fault}"),
            "--env".into(), format!("TASK_RESPONSE_TABLE={table}"),
            "--env".into(), "fault:TASK_FUNCTIONS=heavy=fault-heavy".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        TaskLocal::start(args)
    };
    // fault.heavy's group routes to fault-heavy, which is not deployed.
    let tl = routed(&[]);
    let check = tasks(&tl, &["check", "fault", "--worker", &fault, "--json"]);
    let v: Value = serde_json::from_slice(&check.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {check:?}"));
    let messages = messages_of(&v, "task_function");
    assert_eq!(messages.len(), 1, "{v}");
    assert!(messages[0].contains("task `fault.heavy` runs on `fault-heavy`") && messages[0].contains("[stages.STAGE.functions.heavy]"), "{}", messages[0]);
    let shown = String::from_utf8_lossy(&tasks(&tl, &["function", "fault"]).stdout).into_owned();
    assert!(shown.contains("group heavy    fault-heavy") && shown.contains("group default  fault"), "{shown}");
    drop(tl);
    // Deployed, from the same binary: found, and no finding.
    let tl = routed(&["--function", &format!("fault-heavy={fault}")]);
    let check = tasks(&tl, &["check", "fault", "--worker", &fault, "--json"]);
    assert!(!checks_of(&check).iter().any(|c| c == "task_function"), "{check:?}");
}
